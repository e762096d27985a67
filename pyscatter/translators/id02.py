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
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

import h5py
import numpy as np

from pyscatter.errors import FileFormatError, InputError
from pyscatter.io.geometry_series import VARIES_ATTR, series_extras
from pyscatter.io.raw import (
    MeasurementSpec,
    RawChunk,
    VirtualFrames,
    write_measurement,
    write_virtual_measurement,
)
from pyscatter.io.usid import Dim, compression_options
from pyscatter.translators.base import Translator, check_output, expand_sources
from pyscatter.translators.common import (
    HDF5_SIGNATURE,
    attr_text,
    check_link,
    check_scan_options,
    describe,
    file_record,
    image_dims,
    load_mask,
    versions,
)
from pyscatter.translators.esrf import (
    LimaFile,
    _detectors,
    _entry,
    dummy_mask,
    esrf_dummy,
    is_lima,
    read_lima,
)
from pyscatter.translators.geometry_readers import (
    GEOMETRY_KEYS,
    esrf_geometries,
    esrf_header_geometry,
    geometry_record,
    poni_geometry,
)
from pyscatter.translators.id02_series import (
    SERIES,
    check_series,
    choose_series,
    frame_times,
    lima_monitor,
    mark_unwritten,
    reorder_frames,
    scaler_files,
    series_positions,
)
from pyscatter.translators.positions import Positions

__all__ = ["ID02Translator", "LimaFile", "SERIES", "read_lima"]

logger = logging.getLogger(__name__)

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
                if handle.read(8) != HDF5_SIGNATURE:
                    return False
            with h5py.File(path, "r") as h5:
                return not _not_lima(h5)
        except Exception:  # noqa: BLE001 - can_read never raises
            return False

    # over 80 lines: a 63-line docstring and one keyword per option; the body is ~50 lines
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
        scalers_found = scaler_files(scalers)
        files = self._files(sources, detector, scalers_found, (h5_path, positions, poni, mask))
        _check_consistent(files, link)
        chosen = choose_series(series, files, positions, grid)
        monitor_values, monitor_source = lima_monitor(files, monitor, scalers_found)
        pos, order_files = series_positions(chosen, files, positions, grid, snake, incomplete)
        if order_files is not None:
            if monitor_values is not None:
                counts = [f.n_frames for f in files]
                monitor_values = reorder_frames(monitor_values, counts, order_files)
            files = [files[i] for i in order_files]
        pos = mark_unwritten(pos, files)
        geometry, geometry_source, per_frame_geometry = self._geometry(files, poni, header_geometry)
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
            scalers=[str(p) for p in scalers_found] or None,
            link=link,
            compression=compression,
        )
        attrs = self._attributes(files, chosen, link, pos, options, geometry_source, dummies)
        extra, extra_attrs = _extras(pos, files, attrs, monitor, monitor_values, monitor_source)
        if per_frame_geometry is not None:  # each position's (a distance or energy series)
            per_frame, per_frame_attrs, varies = per_frame_geometry
            extra.update({k: pos.arrange(v) for k, v in per_frame.items()})
            extra_attrs.update(per_frame_attrs)
            attrs[VARIES_ATTR] = varies
        spec = MeasurementSpec(
            position_dims=pos.dims,
            spec_dims=image_dims(files[0].frame_shape),
            dtype=files[0].dtype,
            position_values=pos.values,
            attrs=attrs,
            geometry=geometry,
            mask=mask_arr,
            extra=extra,
            extra_attrs=extra_attrs,
            raw_filters=files[0].filters if link == "chunks" else None,
        )
        return _write(
            h5_path, spec, files, pos, chosen, link, compression, overwrite, progress, resume
        )

    def _files(
        self, sources: Any, detector: str | None, scalers: list[Path], not_lima: tuple
    ) -> list[LimaFile]:
        """The LIMA files of ``sources`` (minus scalers, the output and other option files)."""
        excluded = {os.path.realpath(p) for p in scalers}
        for extra in not_lima:
            if isinstance(extra, (str, os.PathLike)):
                excluded.add(os.path.realpath(extra))
        paths = [
            p
            for p in expand_sources(sources, extensions=self.extensions)
            if os.path.realpath(p) not in excluded
        ]
        if not paths:
            raise InputError(f"no LIMA files in {sources!r}")
        return [_read_id02(p, detector) for p in paths]

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
                **file_record(f.path),
                "title": f.title,
                "start_time": f.start_time.isoformat() if f.start_time else None,
                "frames": f.n_frames,
                "written_frames": int(f.written.sum()),
                "dataset": f.data_path,
            }
            for f in files
        ]
        attrs: dict[str, Any] = {
            **self.provenance(),
            "instrument": "ESRF ID02",
            "versions": versions(),
            "sources": records,
            "n_sources": len(files),
            "series": chosen,
            "link": str(link),
            "orientation": "as stored by LIMA",
            "options": {k: describe(v) for k, v in options.items()},
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
    ) -> tuple[dict | None, str | None, tuple | None]:
        """``poni``, else the ESRF header of the first file, else none; and, when the files'
        headers give different geometries (a distance or energy series), the geometry of every
        frame (:func:`~pyscatter.io.geometry_series.series_extras`)."""
        first = files[0]
        if poni is not None:
            return poni_geometry(poni, first.frame_shape, first.header), "poni", None
        if not header_geometry:
            return None, None, None
        found = esrf_header_geometry(first.header, first.frame_shape, where=str(first.path))
        if found is None:
            return None, None, None
        configs = esrf_geometries(
            [f.header for f in files], [f.path for f in files], first.frame_shape
        )
        per_frame = [c for f, c in zip(files, configs, strict=True) for _ in range(f.n_frames)]
        series = series_extras(per_frame, source=f"the header of each file ({found[1]})")
        return found[0], found[1], series


# --------------------------------------------------------------------------- writing


def _extras(
    pos: Positions,
    files: list[LimaFile],
    attrs: dict[str, Any],
    monitor: str | None,
    monitor_values: np.ndarray | None,
    monitor_source: str | None,
) -> tuple[dict[str, np.ndarray], dict[str, dict[str, Any]]]:
    """Per-position datasets (``valid_positions``, ``Time``, ``Monitor`` …) and their attributes;
    ``attrs`` gets ``time_origin`` and the monitor's name and source."""
    pos.with_valid_dataset()
    extra = dict(pos.extra)
    extra_attrs: dict[str, dict[str, Any]] = {k: {"units": u} for k, u in pos.extra_units.items()}
    times = frame_times(files)
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
    return extra, extra_attrs


def _write(
    h5_path: Path,
    spec: MeasurementSpec,
    files: list[LimaFile],
    pos: Positions,
    chosen: str,
    link: Any,
    compression: str | None,
    overwrite: bool,
    progress: bool,
    resume: bool,
) -> Path:
    """Frames decoded, copied as chunks or mapped virtually, into ``h5_path``."""
    first = files[0]
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


# --------------------------------------------------------------------------- helpers


#: ESRF header keys that make a ``header/`` group ID02's (besides a LIMA ``creator``).
_ESRF_KEYS = (*GEOMETRY_KEYS, "Title", "Dummy", "DDummy", "BSize_1", "BSize_2", "ExposureTime")


def _not_lima(h5: h5py.File) -> str:
    """Why ``h5`` is not an ID02/LIMA file (empty text when it is one)."""
    creator = attr_text(h5, "creator")
    if creator.startswith("LIMA") and is_lima(h5):
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
    link = check_link(link)
    if link is False:
        compression_options(compression)
    check_scan_options(incomplete, snake)
    check_series(series, positions, grid)
    return link


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


def _mask(files: list[LimaFile], mask: Any) -> tuple[np.ndarray | None, tuple[float, float] | None]:
    first = files[0]
    mask_arr = load_mask(mask, first.frame_shape)
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


def _virtual_mappings(files: list[LimaFile], pos: Positions) -> list[VirtualFrames]:
    """Runs of consecutive positions on consecutive written frames of one file."""
    offsets = np.cumsum([0] + [f.n_frames for f in files])
    mappings: list[VirtualFrames] = []
    run: list[int] | None = None  # [file, first frame, count, first position]
    for g in range(pos.n_positions):
        index = pos.source_index(g)
        if index < 0:
            _flush_run(run, files, mappings)
            run = None
            continue
        i = int(np.searchsorted(offsets, index, side="right")) - 1
        j = index - int(offsets[i])
        if not files[i].written[j]:
            _flush_run(run, files, mappings)
            run = None
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
