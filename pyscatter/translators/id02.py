"""ESRF ID02 raw files: LIMA HDF5, one or many files of a series, into one USID file.

A LIMA file (``LIMA-x.y`` in the root ``creator`` attribute) holds::

    /entry_0000                      NXentry; start_time (ISO 8601, UTC), end_time, title
      <instrument>/                  NXinstrument: "ESRF-ID02" or "instrument"
        <detector>/                  NXdetector: "eiger2", "id02-eiger2-saxs" …
          data                       (frames, rows, cols), one frame per chunk, bitshuffle-LZ4 or gzip
          header/                    NXcollection of string datasets: Center_1, Center_2, PSize_1/2,
                                     SampleDistance, WaveLength, Dummy, DDummy, BSize_1/2, Title …
          acquisition/               exposure_time, latency_time, nb_frames …
      measurement/data               soft link to the data

The instrument and detector groups are found by ``NX_class``, so both of ID02's layouts
(``ESRF-ID02/eiger2`` and ``instrument/id02-eiger2-saxs``) and fabio's LIMA writer are read alike.
LIMA allocates the planned number of frames; an aborted acquisition leaves the last chunks
unwritten. Those frames are missing positions (zeros, ``valid_positions`` false).

**Positions.** The files of a series become the slow position dimension (``series``):

* ``"field"``: the magnetic field written in each file's ``Title`` (``sampleA_250mT_001`` → 250 mT,
  ``1.2T`` → 1200 mT, ``-50mT``), else in its file name; dim ``Field`` [mT], files sorted by field
  (kept in acquisition order when a field repeats, e.g. a hysteresis loop);
* ``"temperature"``: the same with ``300K`` … (dim ``Temperature`` [K]); ``"field,temperature"`` (any
  order, slow to fast) nests them;
* ``"time"``: each file's ``start_time``; dim ``Time`` [s] from the earliest;
* ``"frames"``: every frame of every file in file order, one dim ``Frame`` (or ``grid`` /
  ``positions`` over them: raster maps, snake scans, aborted rows as in the images translator);
* ``"auto"``: ``"frames"`` for one file or files of one acquisition (same title), ``"field"`` when
  every title names a field, else ``"time"``.

With several frames per file, a fast dimension ``Frame`` follows the series dimension. Per-position
extras: ``Time`` (seconds since ``time_origin``: the file's start time plus the frame number times
exposure + latency time, when recorded), ``Monitor`` (see ``monitor``/``scalers``) and
``valid_positions`` when frames are missing.

**Geometry.** From the ESRF header keys through pyFAI's ``setSPD`` (every file of the series must
agree), unless ``poni`` is given; ``Dummy``/``DDummy`` (``Dummy = 0``: none) become the ``Mask`` of the
pixels of the first frame holding the dummy value, and are recorded.

**Zero copy.** ``link=True`` copies the compressed chunks as they are stored (no decoding, same
filters; ``Raw_Data`` stays 2-D USID and the file is self-contained); ``link="vds"`` makes
``Raw_Data`` an HDF5 virtual dataset over the source files (nothing copied; the sources must stay
beside it). ``benchmarks/bench_translate.py`` measures both against decoding and re-encoding.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

import h5py
import numpy as np

from pyscatter.errors import FileFormatError, InputError
from pyscatter.io.raw import (
    MeasurementSpec,
    RawChunk,
    VirtualFrames,
    write_measurement,
    write_virtual_measurement,
)
from pyscatter.io.usid import Dim, compression_options
from pyscatter.translators.base import Translator, check_output, expand_sources, natural_key
from pyscatter.translators.esrf import (
    GEOMETRY_KEYS,
    LimaFile,
    _detectors,
    _entry,
    dummy_mask,
    esrf_dummy,
    esrf_geometry,
    find_datasets,
    geometry_record,
    header_number,
    is_lima,
    parse_field_mT,
    parse_temperature_K,
    read_lima,
)
from pyscatter.translators.images import (
    _describe,
    _file_record,
    _load_mask,
    _poni_geometry,
    _versions,
)
from pyscatter.translators.positions import (
    INCOMPLETE,
    Positions,
    grid_positions,
    index_positions,
    infer_grid,
    read_positions_csv,
)

__all__ = ["ID02Translator", "LimaFile", "SERIES", "read_lima"]

logger = logging.getLogger(__name__)

#: Accepted ``series`` values (besides comma-separated title quantities like "field,temperature").
SERIES = ("auto", "field", "temperature", "time", "frames")
#: Quantities read from titles: name → (dim name, unit, parser).
_TITLE_QUANTITIES = {
    "field": ("Field", "mT", parse_field_mT),
    "temperature": ("Temperature", "K", parse_temperature_K),
}
#: ``link`` values.
LINKS = (False, True, "chunks", "vds")
_HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"


# --------------------------------------------------------------------------- frames


class _LimaFrames:
    """The frames of a series in position order: decoded arrays or stored chunks, or None."""

    def __init__(self, files: list[LimaFile], pos: Positions, *, chunks: bool) -> None:
        self.files, self.pos, self.chunks = files, pos, chunks
        self.offsets = np.cumsum([0] + [f.n_frames for f in files])
        self._open: tuple[int, h5py.File] | None = None

    def __len__(self) -> int:
        return self.pos.n_positions

    def locate(self, index: int) -> tuple[int, int]:
        i = int(np.searchsorted(self.offsets, index, side="right")) - 1
        return i, index - int(self.offsets[i])

    def _dataset(self, i: int) -> h5py.Dataset:
        if self._open is None or self._open[0] != i:
            self.close()
            try:
                self._open = (i, h5py.File(self.files[i].path, "r"))
            except OSError as err:
                raise FileFormatError(f"{self.files[i].path}: cannot open it ({err})") from err
        return self._open[1][self.files[i].data_path]

    def __getitem__(self, position: int) -> Any:
        index = self.pos.source_index(position)
        if index < 0:
            return None
        i, j = self.locate(index)
        lima = self.files[i]
        if not lima.written[j]:
            return None
        dset = self._dataset(i)
        try:
            if self.chunks:
                mask, data = dset.id.read_direct_chunk((j, 0, 0))
                return RawChunk(bytes(data), int(mask))
            frame = np.empty((1, *lima.frame_shape), dtype=lima.dtype)
            dset.read_direct(frame, source_sel=np.s_[j : j + 1])
            return frame[0]
        except (OSError, ValueError, RuntimeError) as err:
            raise FileFormatError(
                f"{lima.path}: frame {j} cannot be read ({err}); the file may be truncated or "
                "corrupt"
            ) from err

    def close(self) -> None:
        if self._open is not None:
            self._open[1].close()
            self._open = None


# --------------------------------------------------------------------------- translator


class ID02Translator(Translator):
    """ESRF ID02 LIMA HDF5 files (one or a series) → one USID file. See :meth:`translate`."""

    name: ClassVar[str] = "id02"
    extensions: ClassVar[tuple[str, ...]] = (".h5", ".hdf5", ".nxs")
    description: ClassVar[str] = "ESRF ID02 / LIMA HDF5 detector files (field, time series, maps)"

    def can_read(self, path: str | os.PathLike) -> bool:
        """An HDF5 file written by LIMA (``creator``), or whose NXdetector has an ESRF ``header/``.

        The header must hold ESRF keys (``Center_1``, ``SampleDistance``, ``Title`` …): a NeXus
        file (NXsas …) whose detector merely has a member named ``header`` is not ID02's.
        """
        try:
            path = Path(path)
            if not path.is_file() or not path.name.lower().endswith(self.extensions):
                return False
            with open(path, "rb") as handle:
                if handle.read(8) != _HDF5_SIGNATURE:
                    return False
            with h5py.File(path, "r") as h5:
                return not _not_lima(h5)
        except Exception:  # noqa: BLE001 - can_read never raises
            return False

    def translate(  # type: ignore[override]  # keyword options of this format only
        self,
        sources: Any,
        h5_path: str | os.PathLike,
        *,
        series: str = "auto",
        detector: str | None = None,
        positions: str | os.PathLike | None = None,
        grid: Mapping[str, int] | str | None = None,
        snake: bool | str = "auto",
        incomplete: str = "pad",
        poni: str | os.PathLike | Mapping[str, Any] | None = None,
        header_geometry: bool = True,
        mask: str | os.PathLike | np.ndarray | None = None,
        monitor: str | None = None,
        scalers: Any = None,
        link: bool | str = False,
        overwrite: bool = False,
        compression: str | None = "bslz4",
        progress: bool = False,
        resume: bool = True,
    ) -> Path:
        """Translate LIMA HDF5 files into one USID file.

        Parameters
        ----------
        sources : str, path, list of them
            LIMA files, glob patterns or a folder (its ``.h5``/``.hdf5``/``.nxs`` files), used in
            natural order of their paths. Every file must be a LIMA file (scalers files given as
            ``scalers`` are left out).
        h5_path : str or path
            The USID file to write.
        series : str
            How files become positions: ``"auto"``, ``"field"``, ``"temperature"``,
            ``"time"``, ``"frames"`` or title quantities slow to fast (``"temperature,field"``);
            see the module notes.
        detector : str, optional
            The detector group, when a file has several.
        positions, grid, snake, incomplete
            Over the frames of ``series="frames"`` (all frames of all files, in order), as in
            :meth:`pyscatter.translators.images.ImageStackTranslator.translate`: a positions CSV
            (one row per frame) or an index grid, snake scans reordered, an aborted scan padded
            (``incomplete="pad"``, with ``valid_positions``), dropped or refused.
        poni : path or dict, optional
            pyFAI geometry; overrides the header's.
        header_geometry : bool
            Read the geometry from the ESRF header keys (default); False: none unless ``poni``.
        mask : path or ndarray, optional
            (rows, cols), nonzero = masked; combined with the header's dummy pixels.
        monitor : str, optional
            Name of the monitor: a dataset of the ``scalers`` files (e.g. ``Intensity1UnCor``,
            one value per frame), else a dataset of that name in the LIMA files, else a numeric
            header key (one value per file). Stored per position as ``Monitor``.
        scalers : path, list of paths or glob, optional
            ID02 scalers (metadata) HDF5 files: one per LIMA file, or one for all frames of the
            series in order. With ``scalers`` and no ``monitor``, the error lists the candidates.
        link : {False, True, "chunks", "vds"}
            False: decode and re-encode the frames with ``compression``. True or ``"chunks"``:
            copy the compressed chunks as stored (every file one frame per chunk with the same
            filters and dtype). ``"vds"``: a virtual ``Raw_Data`` over the source files.
        overwrite : bool
            Replace an existing ``h5_path``.
        compression : {"bslz4", "gzip", "none"}
            Of ``Raw_Data`` when ``link`` is False.
        progress : bool
            Show a progress bar.
        resume : bool
            Continue an interrupted translation of the same sources and options.

        Returns
        -------
        Path
            ``h5_path``, which appears only once complete.

        Raises
        ------
        ExistingResultsError
            ``h5_path`` exists and ``overwrite`` is false.
        InputError
            Bad options; files of different frame shapes, dtypes, geometries; a title without
            the quantity asked for; an ESRF header missing a geometry key (named, with how to
            give the geometry instead).
        FileFormatError
            A missing, truncated, corrupt or non-LIMA file (named in the message).
        """
        h5_path = check_output(h5_path, overwrite)
        link = _check_options(link, compression, incomplete, snake, series, positions, grid)
        scaler_files = _scaler_files(scalers)
        excluded = {os.path.realpath(p) for p in scaler_files} | {os.path.realpath(h5_path)}
        for extra in (positions, poni, mask):
            if isinstance(extra, (str, os.PathLike)):
                excluded.add(os.path.realpath(extra))
        paths = [
            p
            for p in expand_sources(sources, extensions=self.extensions)
            if os.path.realpath(p) not in excluded
        ]
        if not paths:
            raise InputError(f"no LIMA files in {sources!r}")
        files = [_read_id02(p, detector) for p in paths]
        _check_consistent(files, link)
        first = files[0]
        chosen = _choose_series(series, files, positions, grid)
        monitor_values, monitor_source = _monitor(files, monitor, scaler_files)
        pos, order_files = _series_positions(chosen, files, positions, grid, snake, incomplete)
        if order_files is not None:
            if monitor_values is not None:
                monitor_values = _reorder(monitor_values, [f.n_frames for f in files], order_files)
            files = [files[i] for i in order_files]
        pos = _mark_unwritten(pos, files)
        geometry, geometry_source = self._geometry(files, poni, header_geometry)
        mask_arr, dummies = _mask(files, mask)
        options = dict(
            series=series,
            detector=detector,
            positions=positions,
            grid=grid,
            snake=snake,
            incomplete=incomplete,
            poni=poni,
            header_geometry=header_geometry,
            mask=mask,
            monitor=monitor,
            scalers=[str(p) for p in scaler_files] or None,
            link=link,
            compression=compression,
        )
        attrs = self._attributes(files, chosen, link, pos, options, geometry_source, dummies)
        pos.with_valid_dataset()
        extra = dict(pos.extra)
        extra_attrs: dict[str, dict[str, Any]] = {
            k: {"units": u} for k, u in pos.extra_units.items()
        }
        times = _frame_times(files)
        if times is not None:
            origin, per_frame, how = times
            extra["Time"] = pos.arrange(per_frame)
            extra_attrs["Time"] = {"units": "s", "time_origin": origin, "source": how}
            attrs["time_origin"] = origin
        if monitor_values is not None:
            extra["Monitor"] = pos.arrange(monitor_values)
            extra_attrs["Monitor"] = {"units": "counts", "source": monitor_source}
            attrs["monitor"] = monitor
            attrs["monitor_source"] = monitor_source
        rows, cols = first.frame_shape
        spec = MeasurementSpec(
            position_dims=pos.dims,
            spec_dims=[Dim("Row", "pixel", np.arange(rows)), Dim("Col", "pixel", np.arange(cols))],
            dtype=first.dtype,
            position_values=pos.values,
            attrs=attrs,
            geometry=geometry,
            mask=mask_arr,
            extra=extra,
            extra_attrs=extra_attrs,
            raw_filters=first.filters if link == "chunks" else None,
        )
        logger.info(
            "translating %d LIMA files (%d positions of %s %s, series %s, link %s) into %s",
            len(files),
            pos.n_positions,
            first.frame_shape,
            first.dtype,
            chosen,
            link,
            h5_path,
        )
        if link == "vds":
            logger.warning(
                "%s: Raw_Data will be a virtual dataset over the LIMA files: nothing is copied, "
                "but HDF5 maps their 3-D frames onto 2-D rows element by element, so reading it "
                "is about 15× slower than a copy (benchmarks/bench_translate.py); link=True "
                "copies the compressed chunks as fast, self-contained and read at full speed",
                h5_path,
            )
            return write_virtual_measurement(
                h5_path, spec, _virtual_mappings(files, pos), overwrite=overwrite
            )
        frames = _LimaFrames(files, pos, chunks=link == "chunks")
        try:
            return write_measurement(
                h5_path,
                spec,
                frames,
                compression=compression,
                overwrite=overwrite,
                progress=progress,
                resume=resume,
            )
        finally:
            frames.close()

    def _attributes(
        self,
        files: list[LimaFile],
        chosen: str,
        link: Any,
        pos: Positions,
        options: dict[str, Any],
        geometry_source: str | None,
        dummies: tuple[float, float] | None,
    ) -> dict[str, Any]:
        """``Measurement_000`` attributes: provenance, series, geometry and dummy sources."""
        first = files[0]
        records = [
            {
                **_file_record(f.path),
                "title": f.title,
                "start_time": f.start_time.isoformat() if f.start_time else None,
                "frames": f.n_frames,
                "written_frames": int(f.written.sum()),
                "dataset": f.data_path,
            }
            for f in files
        ]
        attrs: dict[str, Any] = {
            "translator": self.name,
            "tool": f"pyscatter.translators.{self.name}",
            "instrument": "ESRF ID02",
            "versions": _versions(),
            "sources": records,
            "n_sources": len(files),
            "series": chosen,
            "link": str(link),
            "orientation": "as stored by LIMA",
            "options": {k: _describe(v) for k, v in options.items()},
            **pos.record(),
        }
        esrf = geometry_record(first.header)
        if esrf:
            attrs["esrf_header"] = esrf
        if "BSize_1" in first.header or "BSize_2" in first.header:
            attrs["binning"] = [first.header.get("BSize_2", "1"), first.header.get("BSize_1", "1")]
        if geometry_source:
            attrs["geometry_source"] = geometry_source
        if dummies is not None:
            attrs["dummy"], attrs["delta_dummy"] = dummies
            attrs["dummy_source"] = (
                f"ESRF header Dummy/DDummy of {first.path.name}; the pixels of its first frame "
                "holding it are in Mask"
            )
        return attrs

    def _geometry(
        self, files: list[LimaFile], poni: Any, header_geometry: bool
    ) -> tuple[dict | None, str | None]:
        first = files[0]
        if poni is not None:
            return _poni_geometry(poni, first.frame_shape, first.header), "poni"
        if not header_geometry:
            return None, None
        config = esrf_geometry(first.header, first.frame_shape, where=str(first.path))
        if config is None:
            return None, None
        reference = {k: first.header.get(k) for k in GEOMETRY_KEYS}
        for f in files[1:]:
            other = {k: f.header.get(k) for k in GEOMETRY_KEYS}
            if other != reference:
                changed = [k for k in GEOMETRY_KEYS if other[k] != reference[k]]
                raise InputError(
                    f"{f.path}: header geometry differs from {first.path.name} "
                    f"({', '.join(f'{k}: {reference[k]} vs {other[k]}' for k in changed)}); one "
                    "file holds one geometry: translate them separately, or give poni=FILE"
                )
        return config, (
            f"ESRF header of {first.path.name} (SampleDistance, WaveLength, Center_1/2, "
            "PSize_1/2 via pyFAI setSPD)"
        )


# --------------------------------------------------------------------------- helpers


#: ESRF header keys that make a ``header/`` group ID02's (besides a LIMA ``creator``).
_ESRF_KEYS = (*GEOMETRY_KEYS, "Title", "Dummy", "DDummy", "BSize_1", "BSize_2", "ExposureTime")


def _not_lima(h5: h5py.File) -> str:
    """Why ``h5`` is not an ID02/LIMA file (empty text when it is one)."""
    creator = h5.attrs.get("creator", "")
    if isinstance(creator, bytes):
        creator = creator.decode(errors="replace")
    if str(creator).startswith("LIMA") and is_lima(h5):
        return ""
    entry = _entry(h5)
    detectors = _detectors(entry).values() if entry is not None else ()
    headers = [d["header"] for d in detectors if isinstance(d.get("header"), h5py.Group)]
    if any(key in header for header in headers for key in _ESRF_KEYS):
        return ""
    what = f"creator {creator!r}" if creator else "no 'creator' attribute"
    definition = ""
    for name in h5:
        value = h5[name].get("definition") if isinstance(h5[name], h5py.Group) else None
        if isinstance(value, h5py.Dataset):
            text = value[()]
            definition = text.decode() if isinstance(text, bytes) else str(text)
            break
    looks = f"a NeXus {definition} file" if definition else "another HDF5 layout"
    return (
        f"{what} (not LIMA-…) and no detector header/ with ESRF keys "
        f"({', '.join(_ESRF_KEYS[:4])} …): {looks}, not an ESRF ID02 LIMA file. Translate it "
        "with format='nexus' (--format nexus), which reads NeXus geometry and NXdata axes"
    )


def _read_id02(path: Path, detector: str | None) -> LimaFile:
    """:func:`read_lima` of a file that must be ID02's (refused with the reason otherwise)."""
    lima = read_lima(path, detector=detector)  # missing, not HDF5, no 3-D detector data
    with h5py.File(path, "r") as h5:
        reason = _not_lima(h5)
    if reason:
        raise FileFormatError(f"{path}: {reason}")
    return lima


def _check_options(link, compression, incomplete, snake, series, positions, grid) -> Any:
    if link not in LINKS and not (isinstance(link, str) and link in ("true", "false")):
        raise InputError(
            f"unsupported link={link!r}; expected False, True (copy compressed chunks), "
            "'chunks' or 'vds' (virtual dataset)"
        )
    link = {True: "chunks", "true": "chunks", "false": False}.get(link, link)
    if link is False:
        compression_options(compression)
    if incomplete not in INCOMPLETE:
        raise InputError(
            f"unsupported incomplete={incomplete!r}; expected one of {', '.join(INCOMPLETE)}"
        )
    if snake not in (True, False, "auto"):
        raise InputError(f"unsupported snake={snake!r}; expected True, False or 'auto'")
    if not isinstance(series, str):
        raise InputError(f"series must be a string, got {series!r}")
    quantities = [q.strip() for q in series.split(",")]
    if series not in SERIES and not all(q in _TITLE_QUANTITIES for q in quantities):
        raise InputError(
            f"unsupported series={series!r}; expected one of {', '.join(SERIES)} or title "
            f"quantities slow to fast like 'temperature,field'"
        )
    if positions is not None and grid is not None:
        raise InputError("give at most one of positions, grid")
    if (positions is not None or grid is not None) and series not in ("auto", "frames"):
        raise InputError(
            f"positions/grid apply to the frames (series='frames'), not to series={series!r}"
        )
    return link


def _scaler_files(scalers: Any) -> list[Path]:
    if scalers is None:
        return []
    return expand_sources(scalers, extensions=(".h5", ".hdf5", ".nxs"))


def _check_consistent(files: list[LimaFile], link: Any) -> None:
    first = files[0]
    for f in files:
        if f.frame_shape != first.frame_shape:
            raise InputError(
                f"{f.path}: frames of shape {f.frame_shape}; the first file ({first.path.name}) "
                f"has {first.frame_shape}"
            )
        if f.dtype != first.dtype and (
            link or f.dtype.kind != first.dtype.kind or not np.can_cast(f.dtype, first.dtype)
        ):
            raise InputError(
                f"{f.path}: frames of dtype {f.dtype}; the first file ({first.path.name}) has "
                f"{first.dtype}, and every file must fit it"
            )
        if link == "chunks":
            if not f.one_frame_per_chunk:
                raise InputError(
                    f"{f.path}: chunks {f.chunks} are not one frame each; link=True copies "
                    "whole-frame chunks: use link='vds' or link=False"
                )
            if f.filters != first.filters:
                raise InputError(
                    f"{f.path}: compressed differently ({f.filters}) from {first.path.name} "
                    f"({first.filters}); link=True keeps one filter pipeline: use link='vds' or "
                    "link=False"
                )


def _choose_series(series: str, files: list[LimaFile], positions: Any, grid: Any) -> str:
    if series != "auto":
        return series
    if positions is not None or grid is not None or len(files) == 1:
        return "frames"
    titles = {f.title for f in files}
    if len(titles) == 1:
        return "frames"  # one acquisition split over several files
    try:
        fields = [parse_field_mT(f.title) for f in files]
    except InputError:
        fields = [None]
    if all(v is not None for v in fields) and len(set(fields)) > 1:
        return "field"
    if all(f.start_time is not None for f in files):
        return "time"
    return "frames"


def _file_quantity(f: LimaFile, quantity: str) -> float:
    dim, unit, parse = _TITLE_QUANTITIES[quantity]
    for text in (f.title, f.path.stem):
        try:
            value = parse(text)
        except InputError as err:
            raise InputError(f"{f.path}: {err}") from err
        if value is not None:
            return value
    example = "250mT or 1.2T" if quantity == "field" else "300K"
    raise InputError(
        f"{f.path}: no {quantity} in its title {f.title!r} or its name (expected e.g. "
        f"{example}); pick another series (time, frames) or rename"
    )


def _series_positions(
    series: str,
    files: list[LimaFile],
    positions: Any,
    grid: Any,
    snake: Any,
    incomplete: str,
) -> tuple[Positions, list[int] | None]:
    """Positions over the frames, and the order of the files (None: as given)."""
    n_total = sum(f.n_frames for f in files)
    if series == "frames":
        if positions is not None:
            labels, values = read_positions_csv(positions)
            written = np.concatenate([f.written for f in files])
            # an aborted acquisition: the scan log lists the frames measured, LIMA allocated all
            measured = int(np.argmin(written)) if not written.all() else n_total
            if values.shape[0] != n_total and not (
                values.shape[0] == measured and not written[measured:].any()
            ):
                raise InputError(
                    f"positions file {positions}: {values.shape[0]} rows for {n_total} frames "
                    f"({measured} written before the first missing one) of all files, in order"
                )
            src = f"positions file {Path(positions).resolve()}"
            return infer_grid(values, labels, source=src, snake=snake, incomplete=incomplete), None
        if grid is not None:
            return grid_positions(
                grid, n_total, what="frames", snake=snake is True, incomplete=incomplete
            ), None
        return index_positions(n_total, "Frame", source="frames of the files in order"), None
    if series == "time":
        if any(f.start_time is None for f in files):
            missing = next(f for f in files if f.start_time is None)
            raise InputError(f"{missing.path}: no start_time; series='time' needs one per file")
        t0 = min(f.start_time for f in files)  # type: ignore[type-var]
        values = np.array([[(f.start_time - t0).total_seconds()] for f in files])  # type: ignore[operator]
        labels = [("Time", "s")]
        source = f"start_time of each file, seconds from {t0.isoformat()}"
    else:
        quantities = [q.strip() for q in series.split(",")]
        values = np.array([[_file_quantity(f, q) for q in quantities] for f in files])
        labels = [_TITLE_QUANTITIES[q][:2] for q in quantities]
        source = f"{series} written in each file's Title (else its name)"
    order = _file_order(values, files)
    values = values[order]
    if values.shape[1] == 1:
        outer = Positions([Dim(*labels[0], values[:, 0])], values=values, source=source)
        if len(set(values[:, 0])) < len(values):
            outer.notes.append(
                f"{labels[0][0]} repeats (e.g. a hysteresis loop): files kept in acquisition "
                "order, not sorted"
            )
            logger.info("%s", outer.notes[-1])
    else:
        outer = infer_grid(values, labels, source=source, snake=False, incomplete="error")
        if outer.dims[0].name == "Position":
            raise InputError(
                f"the files' {series} values do not form a grid "
                f"({', '.join(f.path.name for f in files)}); pick series with one quantity"
            )
    return _with_frames(outer, [files[i] for i in order]), order


def _file_order(values: np.ndarray, files: list[LimaFile]) -> list[int]:
    """Sorted by the values (slow first); acquisition order when a 1-D value repeats."""
    n = len(files)
    acquisition = sorted(
        range(n),
        key=lambda i: (
            files[i].start_time.timestamp() if files[i].start_time else 0.0,
            natural_key(str(files[i].path)),
        ),
    )
    if values.shape[1] == 1 and len(set(values[:, 0])) < n:
        return acquisition
    rank = {i: r for r, i in enumerate(acquisition)}
    return sorted(range(n), key=lambda i: (*values[i], rank[i]))


def _with_frames(outer: Positions, files: list[LimaFile]) -> Positions:
    """The series dims, then ``Frame`` when files hold several frames."""
    per_file = max(f.n_frames for f in files)
    offsets = np.cumsum([0] + [f.n_frames for f in files])
    if per_file == 1:
        outer.order = None
        return outer
    order = np.full(outer.n_positions * per_file, -1, dtype=np.int64)
    for i, f in enumerate(files):
        order[i * per_file : i * per_file + f.n_frames] = offsets[i] + np.arange(f.n_frames)
    frame = Dim("Frame", "", np.arange(per_file, dtype=np.float64))
    values = None
    if outer.values is not None:
        values = np.column_stack(
            [np.repeat(outer.values, per_file, axis=0), np.tile(frame.values, len(files))]
        )
    pos = Positions(
        [*outer.dims, frame],
        values=values,
        source=outer.source + "; frames of each file",
        order=order,
        notes=outer.notes,
    )
    short = [f.path.name for f in files if f.n_frames < per_file]
    if short:
        note = (
            f"files hold different numbers of frames; the missing frames of {', '.join(short)} "
            "are marked false in valid_positions"
        )
        pos.notes.append(note)
        logger.warning("%s", note)
    return pos


def _mark_unwritten(pos: Positions, files: list[LimaFile]) -> Positions:
    """Positions whose frame was never written (an aborted acquisition) become missing."""
    written = np.concatenate([f.written for f in files])
    order = pos.order if pos.order is not None else np.arange(pos.n_positions, dtype=np.int64)
    ok = order >= 0
    lost = ok & ~written[np.where(ok, order, 0)]
    if lost.any():
        pos.order = np.where(lost, -1, order)
        names = [f.path.name for f in files if not f.written.all()]
        note = (
            f"{int(lost.sum())} frames were never written (an aborted acquisition) in "
            f"{', '.join(names)}; they are marked false in valid_positions and stored as zeros"
        )
        pos.notes.append(note)
        logger.warning("%s", note)
    return pos


def _mask(files: list[LimaFile], mask: Any) -> tuple[np.ndarray | None, tuple[float, float] | None]:
    first = files[0]
    mask_arr = _load_mask(mask, first.frame_shape)
    dummies = esrf_dummy(first.header, where=str(first.path))
    if dummies is None:
        return mask_arr, None
    written = np.flatnonzero(first.written)
    if written.size == 0:
        return mask_arr, dummies
    frames = _LimaFrames(
        [first], Positions([Dim("Frame", "", np.arange(first.n_frames))]), chunks=False
    )
    try:
        frame = frames[int(written[0])]
    finally:
        frames.close()
    from_dummy = dummy_mask(frame, *dummies).astype(np.uint8)
    return (from_dummy if mask_arr is None else (mask_arr | from_dummy)), dummies


def _frame_times(files: list[LimaFile]) -> tuple[str, np.ndarray, str] | None:
    if any(f.start_time is None for f in files):
        return None
    t0 = min(f.start_time for f in files)  # type: ignore[type-var]
    parts = []
    for f in files:
        start = (f.start_time - t0).total_seconds()  # type: ignore[operator]
        step = f.frame_period or 0.0
        parts.append(start + step * np.arange(f.n_frames))
    timed = all(f.frame_period for f in files)
    how = "start_time of each file" + (
        " + frame number × (exposure_time + latency_time) of its acquisition group"
        if timed
        else " (no frame timing recorded: every frame of a file gets its start time)"
    )
    return t0.isoformat(), np.concatenate(parts), how


_MONITOR_HINTS = re.compile(r"^(Intensity\d|I\d|HS32C|mon|monitor)", re.IGNORECASE)


def _monitor(
    files: list[LimaFile], monitor: str | None, scalers: list[Path]
) -> tuple[np.ndarray | None, str | None]:
    """Per-frame monitor values (all frames of the files in order) and where they come from."""
    counts = [f.n_frames for f in files]
    if scalers:
        if monitor is None:
            candidates: set[str] = set()
            with h5py.File(scalers[0], "r") as h5:
                h5.visititems(
                    lambda p, o: (
                        candidates.add(p.rsplit("/", 1)[-1])
                        if isinstance(o, h5py.Dataset)
                        and o.ndim == 1
                        and _MONITOR_HINTS.match(p.rsplit("/", 1)[-1])
                        else None
                    )
                )
            raise InputError(
                f"scalers given but no monitor: pass monitor=NAME (e.g. one of "
                f"{', '.join(sorted(candidates)) or 'the datasets of ' + str(scalers[0])})"
            )
        arrays, where = [], []
        for path in scalers:
            try:
                with h5py.File(path, "r") as h5:
                    found = find_datasets(h5, monitor)
                    if not found:
                        raise InputError(f"{path}: no 1-D dataset named {monitor!r}")
                    arrays.append(np.asarray(found[0][()], dtype=np.float64))
                    where.append(f"{path.name}:{found[0].name}")
            except OSError as err:
                raise FileFormatError(f"{path}: cannot open it as HDF5 ({err})") from err
        if len(arrays) == len(files):
            for path, arr, n in zip(scalers, arrays, counts, strict=True):
                if arr.size != n:
                    raise InputError(
                        f"{path}: {monitor} has {arr.size} values for {n} frames of its LIMA file"
                    )
            return np.concatenate(arrays), "scalers " + ", ".join(where)
        if len(arrays) == 1 and arrays[0].size == sum(counts):
            return arrays[0], "scalers " + where[0]
        raise InputError(
            f"{len(scalers)} scalers files with {[a.size for a in arrays]} {monitor} values for "
            f"{len(files)} LIMA files of {counts} frames: give one scalers file per LIMA file, "
            "or one for all frames"
        )
    if monitor is None:
        return None, None
    values = []
    for f in files:
        with h5py.File(f.path, "r") as h5:
            found = [d for d in find_datasets(h5, monitor) if d.size == f.n_frames]
            if found:
                values.append(np.asarray(found[0][()], dtype=np.float64))
                continue
        number = header_number(f.header, monitor, where=str(f.path))
        if number is None:
            keys = ", ".join(sorted(f.header)) or "none"
            raise InputError(
                f"{f.path}: no monitor {monitor!r}: no dataset of that name with one value per "
                f"frame, no such header key (its keys: {keys}); give the scalers files with "
                "scalers=PATHS"
            )
        values.append(np.full(f.n_frames, number))
    return np.concatenate(values), f"{monitor!r} in each LIMA file (dataset, else header key)"


def _reorder(per_frame: np.ndarray, counts: list[int], order: list[int]) -> np.ndarray:
    """Per-frame values of files in one order → the same files in ``order``."""
    parts = np.split(per_frame, np.cumsum(counts)[:-1])
    return np.concatenate([parts[i] for i in order])


def _virtual_mappings(files: list[LimaFile], pos: Positions) -> list[VirtualFrames]:
    """Runs of consecutive positions on consecutive written frames of one file."""
    offsets = np.cumsum([0] + [f.n_frames for f in files])
    mappings: list[VirtualFrames] = []
    run: list[int] | None = None  # [file, first frame, count, first position]
    for g in range(pos.n_positions):
        index = pos.source_index(g)
        if index < 0:
            run = _flush_run(run, files, mappings)
            continue
        i = int(np.searchsorted(offsets, index, side="right")) - 1
        j = index - int(offsets[i])
        if not files[i].written[j]:
            run = _flush_run(run, files, mappings)
            continue
        if run is not None and run[0] == i and run[1] + run[2] == j and run[3] + run[2] == g:
            run[2] += 1
        else:
            _flush_run(run, files, mappings)
            run = [i, j, 1, g]
    _flush_run(run, files, mappings)
    return mappings


def _flush_run(run: list[int] | None, files: list[LimaFile], out: list[VirtualFrames]) -> None:
    if run is not None:
        f = files[run[0]]
        out.append(VirtualFrames(str(f.path), f.data_path, f.shape, run[1], run[2], run[3]))
    return None
