"""SPEC data files, read with silx (:class:`silx.io.specfile.SpecFile`): MCA spectra, images, counters.

One SPEC scan becomes one USID measurement. Several scans (``scans=[1, 3]`` or ``scans="all"``)
become ``Measurement_000``, ``Measurement_001`` … of **one** file, in the order asked, each
recording its scan (``spec_scan = "3.1"``, number and order as silx numbers them) and command.

Positions come from the scan command (``#S``) and the data columns (``#L``): a ``mesh`` is a 2-D
grid (its first motor fastest), a ``timescan`` a ``Time`` dim, any other scan the column of its
first motor, or ``motors=[…]`` the columns given, with the grid inferred; see
:mod:`pyscatter.translators.spec_scans`, which parses the scans with silx. An aborted mesh keeps
its complete rows (``spec_points_dropped``).

What becomes the main dataset of each scan:

* with ``image_pattern``: one detector image per point (``Channel_000``, dims ``Row``, ``Col``),
  read by fabio (:mod:`pyscatter.translators.common`);
* MCA spectra (``@A`` lines): one ``Channel_NNN`` per analyser (several ``@A`` lines per point are
  several analysers), dim ``Channel`` whose values are the channel numbers (``#@CHANN``), or the
  energies ``a + b·ch + c·ch²`` when a ``#@CALIB a b c`` line or the ``mca_calibration`` option
  gives a calibration (recorded as ``mca_calibration`` with ``mca_calibration_source``, unit
  ``energy_unit``, keV by default); after the image channel when both exist. Counting times
  (``#@CTIME preset live real``, one line per point or one for the scan) become ``Preset_Time``,
  ``Live_Time`` and ``Real_Time`` (s) beside the spectra when there is one line per point (one
  line for the scan, the times of one point only, is kept as the attribute ``mca_ctime``), and
  how to correct the dead time is recorded on the channel as ``dead_time`` (see
  :func:`dead_time_record`): from a percent column (``dead_time_column``), a correction-factor
  column (``dead_time_factor_column``), live and real time columns, else per-point ``#@CTIME``. The counts stay as measured: the XRF processes apply
  the correction (:mod:`pyscatter.processes.xrf`);
* neither: the counters themselves, (points, counters), dim ``Counter`` (names in the
  ``counter_names`` attribute).

Every column of the scan is also kept as ``Counters/<name>`` beside the first main dataset
(float64, one value per position; repeated names get ``_2``, ``_3`` …), so any of them can serve
as a monitor: ``monitor="I0"`` records ``monitor = "Counters/I0"`` on the measurement.

Real BioCAT and APS files put no image names in the scan header: images are found from
``image_pattern`` with the placeholders ``{scan}`` (scan number), ``{order}``, ``{point}`` (point
index from 0), ``{file}`` (the SPEC file name without its suffix) and any column whose name is a
Python identifier (its value at that point, as an integer when integral), with format specs,
relative to the SPEC file's folder: BioCAT writes ``GI2_A9_19_{scan:03d}_{point:04d}.tiff``.

An interrupted translation resumes (``resume=True``): the scans already complete are kept, their
images neither read nor hashed again, and the interrupted scan continues from its recorded frames
(:mod:`pyscatter.io.measurements`).

Examples
--------
>>> import tempfile, h5py
>>> from pathlib import Path
>>> folder = Path(tempfile.mkdtemp())
>>> _ = (folder / "demo.spec").write_text(
...     "#F demo.spec\\n#E 1000\\n\\n#S 1  ascan  th 0 1 2 1\\n#N 2\\n#L th  I0\\n"
...     "0 10\\n0.5 11\\n1 12\\n")
>>> out = SpecTranslator().translate(folder / "demo.spec", folder / "demo.h5", scan=1)
>>> from pyscatter.io.usid import main_datasets, dims_of
>>> with h5py.File(out) as h5:
...     main = main_datasets(h5)[0]
...     [(d.name, d.values.tolist()) for d in dims_of(main, "Position")]
[('th', [0.0, 0.5, 1.0])]
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from pyscatter.errors import FileFormatError, InputError
from pyscatter.io.geometry_series import VARIES_ATTR, apply_geometry_from, parse_geometry_from
from pyscatter.io.measurements import ChannelData, MeasurementPlan, write_measurements
from pyscatter.io.raw import MeasurementSpec
from pyscatter.io.usid import Dim, compression_options
from pyscatter.translators.base import Translator, check_output, single_source
from pyscatter.translators.common import (
    check_flip,
    file_record,
    flip_frame,
    image_dims,
    load_mask,
    orientation,
    read_frame,
    read_image,
    versions,
)
from pyscatter.translators.geometry_from import spec_lookup
from pyscatter.translators.geometry_readers import poni_geometry
from pyscatter.translators.spec_scans import (
    McaSpectra,
    NoDataError,
    SpecScan,
    check_mca_calibration,  # re-exported: they used to live here
    open_spec,
    parse_scan,
    read_scan,
    resolve_key,
    scan_keys,
)

__all__ = ["McaSpectra", "SpecScan", "SpecTranslator", "image_files", "read_scan", "scan_keys"]

logger = logging.getLogger(__name__)

#: First lines of a SPEC file (``#S`` for files without a file header, as sardana writes them).
_SPEC_STARTS = ("#F ", "#E ", "#S ")


# --------------------------------------------------------------------------- images per point


_FORMATTER = string.Formatter()


def image_files(
    spec_path: str | os.PathLike,
    scan: SpecScan,
    pattern: str,
    *,
    first_point: int = 0,
    check: bool = True,
) -> list[Path]:
    """The image of every point of ``scan``: ``pattern`` filled in, relative to the SPEC folder.

    ``first_point``: the point number of the scan's first row (``pyscatter watch`` names the
    images of the points read so far); ``check``: refuse missing images.

    Raises
    ------
    InputError
        A placeholder that is not ``scan``, ``order``, ``point``, ``file`` or a column name.
    FileFormatError
        An image that does not exist (the first missing one is named).
    """
    spec_path = Path(spec_path)
    fields = {f for _, f, _, _ in _FORMATTER.parse(pattern) if f}
    base = {"scan": scan.number, "order": scan.order, "file": spec_path.stem}
    columns = {name: k for k, name in enumerate(scan.labels) if name.isidentifier()}
    unknown = sorted(f for f in fields if f not in base and f != "point" and f not in columns)
    if unknown:
        raise InputError(
            f"image_pattern {pattern!r}: unknown placeholder {', '.join(map(repr, unknown))}; "
            f"use {{scan}}, {{order}}, {{point}}, {{file}} or a column of scan {scan.key} "
            f"({', '.join(columns)})"
        )
    files = []
    for point in range(scan.n_points):
        values: dict[str, Any] = dict(base, point=first_point + point)
        for name in fields & set(columns):
            value = float(scan.columns[point, columns[name]])
            values[name] = int(value) if value.is_integer() else value
        try:
            name = pattern.format(**values)
        except (ValueError, TypeError) as err:
            raise InputError(f"image_pattern {pattern!r}: {err}") from err
        path = Path(name)
        files.append(path if path.is_absolute() else spec_path.parent / path)
    missing = [f for f in files if check and not f.is_file()]
    if missing:
        raise FileFormatError(
            f"{spec_path}: scan {scan.key}: {len(missing)} of {len(files)} images missing, "
            f"first {missing[0]} (image_pattern {pattern!r})"
        )
    return files


class _ImageFrames:
    """The images of a scan by point index (read one at a time, so a resumed run reads few)."""

    def __init__(self, files: Sequence[Path], first: np.ndarray, flip: str | None) -> None:
        self.files, self.shape, self.dtype, self.flip = files, first.shape, first.dtype, flip

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, point: int) -> np.ndarray:
        frame = read_frame(self.files[point], self.shape, self.dtype, self.files[0])
        return flip_frame(frame, self.flip)


# --------------------------------------------------------------------------- translator


@dataclass(frozen=True)
class _Options:
    """What to make of every scan: images, monitor, MCA energy unit, image geometry."""

    image_pattern: str | None
    monitor: str | None
    energy_unit: str
    poni: Any
    mask: Any
    flip: str | None
    dummy: float | None
    mca_calibration: tuple[float, float, float] | None = None
    dead_time_column: str | None = None
    dead_time_factor_column: str | None = None
    live_time_column: str | None = None
    real_time_column: str | None = None
    geometry_from: dict[str, tuple[str, str]] | None = None

    def record(self) -> dict[str, Any]:
        def describe(value: Any) -> Any:
            if value is None or isinstance(value, (str, os.PathLike)):
                return None if value is None else str(value)
            return "array" if isinstance(value, np.ndarray) else "dict"

        out = dict(
            image_pattern=self.image_pattern,
            monitor=self.monitor,
            energy_unit=self.energy_unit,
            poni=describe(self.poni),
            mask=describe(self.mask),
            flip=self.flip,
            dummy=self.dummy,
        )
        # the MCA options only when given: translations without them keep their recorded
        # options, so their partial files still resume and their files are still reused
        more = dict(
            mca_calibration=None if self.mca_calibration is None else list(self.mca_calibration),
            dead_time_column=self.dead_time_column,
            dead_time_factor_column=self.dead_time_factor_column,
            live_time_column=self.live_time_column,
            real_time_column=self.real_time_column,
            geometry_from=None
            if self.geometry_from is None
            else {k: list(v) for k, v in self.geometry_from.items()},
        )
        out.update({k: v for k, v in more.items() if v is not None})
        return out

    def dead_time_columns(self) -> dict[str, str]:
        """The dead-time columns asked for, by option name."""
        named = dict(
            dead_time_column=self.dead_time_column,
            dead_time_factor_column=self.dead_time_factor_column,
            live_time_column=self.live_time_column,
            real_time_column=self.real_time_column,
        )
        return {k: v for k, v in named.items() if v is not None}


def _looks_like_spec(path: Path) -> bool:
    with open(path, "rb") as handle:
        head = handle.read(4096)
    if b"\x00" in head:
        return False
    lines = [ln for ln in head.decode("latin-1").splitlines() if ln.strip()]
    return bool(lines) and lines[0].startswith(_SPEC_STARTS)


class SpecTranslator(Translator):
    """SPEC files (``#F``/``#S``/``#L`` text) read with silx: MCA spectra, images, counters.

    See :meth:`translate` and the module documentation.
    """

    name: ClassVar[str] = "spec"
    extensions: ClassVar[tuple[str, ...]] = (".spec", ".spc", ".dat", ".spe")
    description: ClassVar[str] = "SPEC scans (silx): MCA spectra, one image per point, counters"

    def can_read(self, path: str | os.PathLike) -> bool:
        """A text file whose first line is a SPEC ``#F``, ``#E`` or ``#S`` line (any file name)."""
        try:
            path = Path(path)
            return path.is_file() and _looks_like_spec(path)
        except Exception:  # noqa: BLE001 - can_read never raises
            return False

    # over 80 lines: a 54-line docstring and one keyword per option; the body is ~35 lines
    def translate(  # type: ignore[override]  # keyword options of this format only
        self,
        sources: str | os.PathLike,
        h5_path: str | os.PathLike,
        *,
        scan: int | str | None = None,
        scans: Sequence[int | str] | str | None = None,
        motors: Sequence[str] | str | None = None,
        image_pattern: str | None = None,
        monitor: str | None = None,
        energy_unit: str = "keV",
        poni: str | os.PathLike | Mapping[str, Any] | None = None,
        mask: str | os.PathLike | np.ndarray | None = None,
        flip: str | None = None,
        dummy: float | None = None,
        mca_calibration: Sequence[float] | None = None,
        dead_time_column: str | None = None,
        dead_time_factor_column: str | None = None,
        live_time_column: str | None = None,
        real_time_column: str | None = None,
        geometry_from: Mapping[str, Any] | str | None = None,
        overwrite: bool = False,
        compression: str | None = "bslz4",
        progress: bool = False,
        resume: bool = True,
    ) -> Path:
        """Write one or several scans of a SPEC file as one USID file.

        Parameters
        ----------
        sources : str or path
            One SPEC file.
        h5_path : str or path
            The USID HDF5 file to write.
        scan : int or str, optional
            One scan: its number (the first scan of that number) or ``"number.order"``.
        scans : list of int or str, or "all", optional
            Several scans, each its own ``Measurement_NNN`` in the order given. ``"all"`` takes
            every scan with data lines (scans without are skipped with a logged warning and
            listed in the file attribute ``spec_skipped_scans``); an explicitly named scan without
            data is an error. Default (neither ``scan`` nor ``scans``): ``"all"``.
        motors : list of str or comma-separated str, optional
            Columns to use as position dims, slow to fast (``"samy,samz"``); default: worked out
            from the scan command (see the module documentation).
        image_pattern : str, optional
            File name of the image of each point, with ``{scan}``, ``{order}``, ``{point}``,
            ``{file}`` or column placeholders (``"GI2_A9_19_{scan:03d}_{point:04d}.tiff"``),
            relative to the SPEC file's folder.
        monitor : str, optional
            A column to record as the monitor (``monitor = "Counters/<name>"``).
        energy_unit : str
            Unit of the ``#@CALIB`` (or ``mca_calibration``) energies (SPEC does not record
            it); keV by default, which the XRF processes expect (they also take eV).
        mca_calibration : (a, b) or (a, b, c), optional
            Energy = a + b·ch + c·ch² of every MCA of the scans, replacing their ``#@CALIB``
            (recorded with ``mca_calibration_source = "given"``).
        dead_time_column : str, optional
            A column holding the dead time in percent of every point.
        dead_time_factor_column : str, optional
            A column holding the dead-time correction factor (≥ 1) of every point.
        live_time_column, real_time_column : str, optional
            Columns holding the live and real counting times (both or neither). Without any
            dead-time option, the ``#@CTIME`` times are used when the scan has them.
        poni, mask, flip, dummy
            Geometry, mask, orientation and invalid-pixel value of the images, as for the
            ``images`` translator (:meth:`~pyscatter.translators.images.ImageStackTranslator.translate`).
        geometry_from : dict or str, optional
            Geometry parameters of every point from a column of the scan (``#L``), else a motor
            (``#P``, one value for the scan): ``{"energy": "Energy"}`` or
            ``"energy=Energy:keV,distance=Det:mm"``
            (:func:`~pyscatter.io.geometry_series.parse_geometry_from`), over ``poni``
            (required); recorded per position when it varies.
        overwrite : bool
            Replace an existing ``h5_path``; otherwise refuse.
        compression : {"bslz4", "gzip", "none"}
        progress : bool
            Show a progress bar (one per scan and channel).
        resume : bool
            Continue an interrupted translation of the same file, scans and options: the scans
            already complete are kept (their images are not read again), the interrupted one
            continues from its recorded frames (:mod:`pyscatter.io.measurements`).

        Returns
        -------
        Path
            ``h5_path``; the file appears only once every scan is written.

        Raises
        ------
        ExistingResultsError
            ``h5_path`` exists and ``overwrite`` is false.
        InputError
            Bad options, no such scan, an unknown column, a placeholder or monitor.
        FileFormatError
            Not a SPEC file, a scan without data lines (the message names the file and scan),
            an image that is missing or unreadable.
        """
        h5_path = check_output(h5_path, overwrite)
        path = single_source(sources, "spec", "a SPEC file")
        flip = check_flip(flip)
        compression_options(compression)
        if scan is not None and scans is not None:
            raise InputError("give scan (one) or scans (several or 'all'), not both")
        if image_pattern is None and any(v is not None for v in (poni, mask, flip, dummy)):
            raise InputError("poni, mask, flip and dummy apply to images: give image_pattern too")
        parsed_from = _geometry_from(geometry_from, image_pattern, poni)
        opts = _Options(
            image_pattern,
            monitor,
            energy_unit,
            poni,
            mask,
            flip,
            dummy,
            check_mca_calibration(mca_calibration),
            dead_time_column,
            dead_time_factor_column,
            live_time_column,
            real_time_column,
            parsed_from,
        )
        _check_dead_time_options(opts)
        parsed, skipped = self._parse(path, scan, scans, motors)
        record = file_record(path)
        options = dict(
            opts.record(), scan=scan, scans=scans, motors=motors, compression=compression
        )
        plans = [self._plan(path, s, record, opts, options) for s in parsed]
        file_attrs: dict[str, Any] = {
            "spec_file": str(path.resolve()),
            "spec_scans": [s.key for s in parsed],
        }
        if skipped:
            file_attrs["spec_skipped_scans"] = skipped
        logger.info("translating %d SPEC scan(s) of %s into %s", len(parsed), path, h5_path)
        return write_measurements(
            h5_path,
            plans,
            file_attrs=file_attrs,
            compression=compression,
            overwrite=overwrite,
            progress=progress,
            resume=resume,
        )

    def _parse(
        self, path: Path, scan: Any, scans: Any, motors: Any
    ) -> tuple[list[SpecScan], list[str]]:
        """The scans asked for, parsed (silx), and those of ``scans="all"`` without data."""
        sf = open_spec(path)
        try:
            keys = list(sf.keys())
            wanted, explicit = self._wanted(path, keys, scan, scans)
            parsed, skipped = [], []
            for key in wanted:
                try:
                    parsed.append(parse_scan(path, sf[key], key, motors))
                except NoDataError as err:
                    if explicit:
                        raise
                    logger.warning("%s (skipped)", err)
                    skipped.append(key)
        finally:
            sf.close()
        if not parsed:
            raise FileFormatError(f"{path}: none of its {len(keys)} scans has data lines")
        return parsed, skipped

    def _plan(
        self, path: Path, s: SpecScan, record: dict, opts: _Options, options: dict
    ) -> MeasurementPlan:
        """One scan's measurement: keyed by the SPEC file, the scan, the options and its images
        (names, sizes, times), built (image checksums, first image, geometry) only when needed."""
        files = image_files(path, s, opts.image_pattern) if opts.image_pattern else []
        stats = [(str(f), f.stat().st_size, f.stat().st_mtime_ns) for f in files]
        text = json.dumps([record["sha256"], s.key, options, stats], sort_keys=True, default=str)
        build = functools.partial(self._channels, path, s, record, opts, options, files)
        return MeasurementPlan(hashlib.sha256(text.encode()).hexdigest(), build)

    @staticmethod
    def _wanted(path: Path, keys: list[str], scan: Any, scans: Any) -> tuple[list[str], bool]:
        if not keys:
            raise FileFormatError(f"{path}: silx finds no scan (#S line) in it")
        if scan is not None:
            return [resolve_key(path, keys, scan)], True
        if scans is None or (isinstance(scans, str) and scans == "all"):
            return keys, False
        if isinstance(scans, (str, int)):
            raise InputError(f"scans must be a list of scans or 'all', got {scans!r}")
        wanted = [resolve_key(path, keys, s) for s in scans]
        if not wanted:
            raise InputError("scans: an empty list; give scan numbers or 'all'")
        duplicates = sorted({k for k in wanted if wanted.count(k) > 1})
        if duplicates:
            raise InputError(f"scans: repeated {', '.join(duplicates)}")
        return wanted, True

    def _channels(
        self,
        path: Path,
        s: SpecScan,
        record: dict,
        opts: _Options,
        options: dict,
        files: Sequence[Path],
    ) -> list[ChannelData]:
        """The main datasets of one scan: images, MCA analysers, else the counters."""
        where = f"{path}: scan {s.key}"
        counters = {f"Counters/{name}": s.columns[:, k].copy() for k, name in enumerate(s.labels)}
        attrs: dict[str, Any] = {
            **self.provenance(),
            "versions": versions("silx"),
            "sources": [record],
            "spec_file": str(path.resolve()),
            "spec_scan": s.key,
            "spec_number": s.number,
            "spec_order": s.order,
            "spec_command": s.command,
            "spec_date": s.header.get("D", ""),
            "spec_header": s.header,
            "positions_source": s.positions.source,
            "counters": s.labels,
            "options": options,
        }
        if s.n_dropped:
            attrs["spec_points_dropped"] = s.n_dropped
        if opts.monitor is not None:
            if opts.monitor not in s.labels:
                raise InputError(
                    f"{where}: monitor {opts.monitor!r} is not a column; its columns are "
                    f"{', '.join(s.labels)}"
                )
            attrs["monitor"] = f"Counters/{opts.monitor}"
        for option, column in opts.dead_time_columns().items():
            if column not in s.labels:
                raise InputError(
                    f"{where}: {option} {column!r} is not a column; its columns are "
                    f"{', '.join(s.labels)}"
                )
        pos = s.positions
        extra = dict(pos.extra, **counters)
        if pos.extra_units:
            attrs["measured_units"] = pos.extra_units
        channels: list[ChannelData] = []
        if opts.image_pattern is not None:
            channels.append(_image_channel(files, s, opts, attrs, extra))
        for mca in s.mcas:
            channels.append(_mca_channel(mca, s, opts, attrs, extra if not channels else {},
                                         f"Channel_{len(channels):03d}"))  # fmt: skip
        if not channels:
            spec = MeasurementSpec(
                position_dims=pos.dims,
                spec_dims=[Dim("Counter", "", np.arange(len(s.labels)))],
                dtype=np.float64,
                position_values=pos.values,
                quantity="Counters",
                units="a.u.",
                attrs=dict(attrs, kind="counters"),
                extra=extra,
            )
            channels.append(ChannelData(spec, s.columns, {"counter_names": s.labels}))
        return channels


def _image_channel(
    files: Sequence[Path], s: SpecScan, opts: _Options, attrs: dict, extra: dict
) -> ChannelData:
    """The images of a scan: checksums of every file, geometry and mask from the first."""
    flip = opts.flip
    first, header = read_image(files[0])
    geometry = None if opts.poni is None else poni_geometry(opts.poni, first.shape, header)
    extra_attrs: dict[str, dict[str, Any]] = {}
    if opts.geometry_from is not None:  # a geometry parameter per point from a column or motor
        geometry, series, source = apply_geometry_from(
            geometry, None, opts.geometry_from, spec_lookup(s), len(files), base_source="poni"
        )
        attrs = dict(attrs, geometry_source=source)
        if series is not None:
            extra = dict(extra, **series[0])
            extra_attrs, attrs[VARIES_ATTR] = series[1], series[2]
    mask_arr = load_mask(opts.mask, first.shape)
    if mask_arr is not None:
        mask_arr = flip_frame(mask_arr, flip)
    image_attrs = dict(
        attrs,
        kind="images",
        sources=attrs["sources"] + [file_record(f) for f in files],
        image_pattern=opts.image_pattern,
        orientation=orientation(flip, False),
        flip=flip or "none",
    )
    if opts.dummy is not None:
        image_attrs["dummy"] = float(opts.dummy)
    spec = MeasurementSpec(
        position_dims=s.positions.dims,
        spec_dims=image_dims(first.shape),
        dtype=first.dtype,
        position_values=s.positions.values,
        attrs=image_attrs,
        geometry=geometry,
        mask=mask_arr,
        extra=extra,
        extra_attrs=extra_attrs,
    )
    return ChannelData(spec, _ImageFrames(files, first, flip))


def _geometry_from(value: Any, image_pattern: str | None, poni: Any) -> dict | None:
    """``geometry_from`` parsed; refused without images or without a PONI to start from."""
    if value is None:
        return None
    parsed = parse_geometry_from(value)
    if image_pattern is None:
        raise InputError("geometry_from applies to images: give image_pattern too")
    if poni is None:
        raise InputError(
            f"geometry_from {', '.join(parsed)}: needs a base geometry (detector, pixel size, "
            "the keys the columns do not give); SPEC files hold none: give poni=FILE (--poni)"
        )
    return parsed


# --------------------------------------------------------------------------- MCA channels


def _check_dead_time_options(opts: _Options) -> None:
    """One way of giving the dead time; live and real time together."""
    named = opts.dead_time_columns()
    kinds = {"percent" if "dead_time_column" in named else None,
             "factor" if "dead_time_factor_column" in named else None,
             "live_real" if {"live_time_column", "real_time_column"} & set(named) else None}  # fmt: skip
    kinds.discard(None)
    if len(kinds) > 1:
        raise InputError(
            f"dead time: give one of dead_time_column, dead_time_factor_column or "
            f"live_time_column with real_time_column; got {', '.join(sorted(named))}"
        )
    if kinds == {"live_real"} and len({"live_time_column", "real_time_column"} & set(named)) < 2:
        raise InputError("dead time: live_time_column and real_time_column go together")


def dead_time_record(opts: _Options, mca: McaSpectra, channel: str) -> dict[str, Any]:
    """How the dead time of an MCA channel is corrected, as recorded on it (``dead_time``).

    Dataset paths are relative to the measurement group: the columns are
    ``Channel_000/Counters/<name>``, the ``#@CTIME`` times ``<channel>/Live_Time`` …

    ``{"kind": "percent", "percent": path}`` (factor ``1 / (1 - percent / 100)``),
    ``{"kind": "factor", "factor": path}``, ``{"kind": "live_real", "live_time": path,
    "real_time": path}`` (factor ``real / live``) or ``{"kind": "none"}``; ``source`` says
    where the values come from.
    """
    counters = "Channel_000/Counters/"
    if opts.dead_time_column is not None:
        return {"kind": "percent", "percent": counters + opts.dead_time_column,
                "source": f"column {opts.dead_time_column!r}"}  # fmt: skip
    if opts.dead_time_factor_column is not None:
        column = opts.dead_time_factor_column
        return {"kind": "factor", "factor": counters + column, "source": f"column {column!r}"}
    if opts.live_time_column is not None and opts.real_time_column is not None:
        return {"kind": "live_real", "live_time": counters + opts.live_time_column,
                "real_time": counters + opts.real_time_column,
                "source": f"columns {opts.live_time_column!r}, {opts.real_time_column!r}"}  # fmt: skip
    if mca.ctime is not None and mca.ctime_source == "per point":
        return {"kind": "live_real", "live_time": f"{channel}/Live_Time",
                "real_time": f"{channel}/Real_Time", "source": f"#@CTIME ({mca.ctime_source})"}  # fmt: skip
    return {"kind": "none"}


def _hint_dead_time(s: SpecScan) -> None:
    """Say which columns look like dead time when none is recorded."""
    hints = [n for n in s.labels if any(w in n.lower() for w in ("dead", "dt", "live", "real"))]
    if hints:
        logger.warning(
            "%s: no dead time recorded for the MCA spectra; columns %s may hold it "
            "(--dead-time-column, --dead-time-factor-column, --live-time-column with "
            "--real-time-column)",
            s.where,
            ", ".join(hints),
        )


def _mca_channel(
    mca: McaSpectra, s: SpecScan, opts: _Options, attrs: dict, extra: dict, channel: str
) -> ChannelData:
    """One MCA analyser: spectra as measured, energy axis, counting times, dead-time record."""
    given = opts.mca_calibration is not None
    calibration = opts.mca_calibration if given else mca.calibration
    calibrated = calibration is not None
    axis = McaSpectra(mca.index, mca.spectra, mca.channels, calibration).axis()
    extra = dict(extra)
    extra_attrs: dict[str, dict[str, Any]] = {}
    if mca.ctime is not None and mca.ctime_source == "per point":
        for k, name in enumerate(("Preset_Time", "Live_Time", "Real_Time")):
            extra[name] = np.ascontiguousarray(mca.ctime[:, k])
            extra_attrs[name] = {"units": "s", "source": "#@CTIME (per point)"}
    spec = MeasurementSpec(
        position_dims=s.positions.dims,
        spec_dims=[Dim("Channel", opts.energy_unit if calibrated else "channel", axis)],
        dtype=mca.spectra.dtype,
        position_values=s.positions.values,
        attrs=dict(attrs, kind="mca"),
        extra=extra,
        extra_attrs=extra_attrs,
    )
    chan_attrs: dict[str, Any] = {
        "mca_index": mca.index,
        "mca_channels": [int(mca.channels[0]), int(mca.channels[-1])],
        "mca_calibration": list(calibration) if calibration is not None else "none",
        "mca_axis": f"energy ({opts.energy_unit})" if calibrated else "channel number",
    }
    if given:
        chan_attrs["mca_calibration_source"] = "given"
        if mca.calibration is not None:
            chan_attrs["mca_calibration_file"] = list(mca.calibration)
    elif calibrated:
        chan_attrs["mca_calibration_source"] = "#@CALIB"
    if mca.ctime is not None and mca.ctime_source == "scan header":
        chan_attrs["mca_ctime"] = mca.ctime[0].tolist()  # preset, live, real of one point only
    dead_time = dead_time_record(opts, mca, channel)
    if dead_time["kind"] != "none":
        chan_attrs["dead_time"] = dead_time
    else:
        _hint_dead_time(s)
    return ChannelData(spec, mca.spectra, chan_attrs)
