"""SPEC data files, read with silx (:class:`silx.io.specfile.SpecFile`): MCA spectra, images, counters.

One SPEC scan becomes one USID measurement. Several scans (``scans=[1, 3]`` or ``scans="all"``)
become ``Measurement_000``, ``Measurement_001`` … of **one** file, in the order asked, each
recording its scan (``spec_scan = "3.1"``, number and order as silx numbers them) and command.

Positions come from the scan command (``#S``) and the data columns (``#L``):

* ``mesh``, ``dmesh``, ``hklmesh`` (any command ending in ``mesh``): a 2-D grid. SPEC moves the
  *first* motor of the command fastest, so the dims are (second motor, first motor), slow to fast,
  with sizes ``intervals + 1`` from the command. Nominal values are the means of the read-backs
  of each level; the read-backs are kept as position values. An aborted mesh keeps its complete
  rows (with a logged warning and ``spec_points_dropped``);
* ``timescan``, ``loopscan``, ``tseries``: one dim ``Time`` in seconds (the ``Time`` column, else
  ``Epoch`` or ``Seconds``, else the point index);
* every other scan (``ascan``, ``dscan``, ``a2scan``, ``cscan``, ``uascan``, ``hklscan`` …): one dim
  named after the column of the first motor of the command (the motor mnemonic is mapped to its
  name through the file header's ``#o``/``#O`` lines), else after the first column, with the
  measured values;
* ``motors=["samy", "samz"]`` instead: these columns, slow to fast, with the grid they form
  inferred as for image headers (:func:`pyscatter.translators.positions.infer_grid`).

What becomes the main dataset of each scan:

* with ``image_pattern``: one detector image per point (``Channel_000``, dims ``Row``, ``Col``),
  read by fabio through the image translator's helpers;
* MCA spectra (``@A`` lines): one ``Channel_NNN`` per analyser (several ``@A`` lines per point are
  several analysers), dim ``Channel`` whose values are the channel numbers (``#@CHANN``), or the
  energies ``a + b·ch + c·ch²`` when a ``#@CALIB a b c`` line gives a calibration (recorded as
  ``mca_calibration``, unit ``energy_unit``); after the image channel when both exist;
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

import datetime as _dt
import hashlib
import json
import logging
import os
import re
import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import h5py
import numpy as np

from pyscatter.errors import FileFormatError, InputError
from pyscatter.io.integrity import frame_crc, write_checksums
from pyscatter.io.raw import MeasurementSpec, raw_compression, write_measurement
from pyscatter.io.usid import Dim, compression_options, create_main, write_ancillary
from pyscatter.translators.base import Translator, check_output, single_source
from pyscatter.translators.images import (
    _check_flip,
    _file_record,
    _flip,
    _load_mask,
    _orientation,
    _poni_geometry,
    _versions,
    read_image,
)
from pyscatter.translators.positions import Positions, infer_grid, parse_label
from pyscatter.translators.spec_lines import check_data_lines

__all__ = ["SpecScan", "SpecTranslator", "read_scan", "scan_keys"]

logger = logging.getLogger(__name__)

#: Scan commands whose points are a time series (one dim ``Time``).
TIME_SCANS = ("timescan", "loopscan", "tseries")
#: Columns holding the time of a time series, in order of preference.
TIME_COLUMNS = ("Time", "Epoch", "Seconds")
#: First lines of a SPEC file (``#S`` for files without a file header, as sardana writes them).
_SPEC_STARTS = ("#F ", "#E ", "#S ")


# --------------------------------------------------------------------------- parsing (silx)


class _NoDataError(FileFormatError):
    """A scan without data lines (skipped by ``scans="all"``, an error when asked for by name)."""


@dataclass
class McaSpectra:
    """The spectra of one MCA analyser over the points of a scan.

    Attributes
    ----------
    index : int
        Analyser number within a point (0 for the first ``@A`` line).
    spectra : ndarray
        (n_points, n_channels) counts.
    channels : ndarray
        (n_channels,) channel numbers (``#@CHANN``, else 0 … n-1).
    calibration : tuple of 3 float, or None
        ``#@CALIB a b c``: energy = a + b·ch + c·ch²; None when the scan has no ``#@CALIB``.
    """

    index: int
    spectra: np.ndarray
    channels: np.ndarray
    calibration: tuple[float, float, float] | None = None

    def axis(self) -> np.ndarray:
        """Energies when calibrated, else channel numbers; float64 (n_channels,)."""
        ch = self.channels.astype(np.float64)
        if self.calibration is None:
            return ch
        a, b, c = self.calibration
        return a + b * ch + c * ch**2


@dataclass
class SpecScan:
    """One SPEC scan as silx reads it, with its position dims worked out.

    Attributes
    ----------
    key : str
        ``"number.order"`` (silx's key, e.g. ``"22.1"``).
    number, order : int
    command : str
        The ``#S`` line after the scan number (``"mesh  sz 0 1 2  sy 0 2 1  0.1"``).
    labels : list of str
        Column names (``#L``), unique (repeats get ``_2`` …).
    columns : ndarray
        (n_points, n_labels) float64, the data lines (only complete mesh rows).
    positions : Positions
        Position dims, slow to fast.
    mcas : list of McaSpectra
    header : dict
        silx's ``scan_header_dict`` (``#D``, ``#T`` …).
    n_dropped : int
        Points of an aborted mesh left out (incomplete last row).
    """

    key: str
    number: int
    order: int
    command: str
    labels: list[str]
    columns: np.ndarray
    positions: Positions
    mcas: list[McaSpectra] = field(default_factory=list)
    header: dict = field(default_factory=dict)
    n_dropped: int = 0

    @property
    def n_points(self) -> int:
        return int(self.columns.shape[0])

    @property
    def kind(self) -> str:
        """The command name (``"mesh"``, ``"ascan"`` …)."""
        parts = self.command.split()
        return parts[0] if parts else ""

    def column(self, name: str) -> np.ndarray:
        return self.columns[:, self.labels.index(name)]


def _open(path: Path):
    from silx.io.specfile import SpecFile

    if not path.is_file():
        raise FileFormatError(f"{path}: no such file")
    try:
        return SpecFile(str(path))
    except Exception as err:  # noqa: BLE001 - silx raises SfError subclasses and OSError
        raise FileFormatError(f"{path}: not a SPEC file silx can read ({err})") from err


def scan_keys(path: str | os.PathLike) -> list[str]:
    """The scans of a SPEC file, as silx keys ``"number.order"``, in file order."""
    sf = _open(Path(path))
    try:
        return list(sf.keys())
    finally:
        sf.close()


def _resolve_key(path: Path, keys: Sequence[str], scan: Any) -> str:
    """``22``, ``"22"`` or ``"22.2"`` → the silx key; the first occurrence when no order is given."""
    text = str(scan).strip()
    if isinstance(scan, (bool, float)) or not re.fullmatch(r"\d+(\.\d+)?", text):
        raise InputError(f"scan {scan!r}: expected a scan number (22) or number.order ('22.2')")
    if "." in text:
        if text in keys:
            return text
    else:
        for key in keys:
            if key.split(".")[0] == text:
                return key
    shown = ", ".join(keys[:30]) + (" …" if len(keys) > 30 else "")
    raise InputError(f"{path}: no scan {text}; its scans are {shown}")


def _unique(labels: Sequence[str]) -> list[str]:
    seen: dict[str, int] = {}
    out = []
    for label in labels:
        name = label.replace("/", "_").strip() or "column"
        seen[name] = seen.get(name, 0) + 1
        out.append(name if seen[name] == 1 else f"{name}_{seen[name]}")
    return out


def _mnemonics(scan: Any) -> dict[str, str]:
    """Motor mnemonic → motor name, from the file header's ``#o``/``#O`` lines (as silx gives them)."""
    header = scan.file_header_dict
    names = list(scan.motor_names)
    mnes: list[str] = []
    k = 0
    while f"o{k}" in header:
        mnes += str(header[f"o{k}"]).split()
        k += 1
    return dict(zip(mnes, names, strict=False)) if len(mnes) == len(names) else {}


def read_scan(
    path: str | os.PathLike,
    scan: int | str,
    *,
    motors: Sequence[str] | str | None = None,
) -> SpecScan:
    """Read one scan of a SPEC file with silx and work out its position dims.

    Parameters
    ----------
    path : str or path
        The SPEC file.
    scan : int or str
        Scan number (the first scan of that number), or ``"number.order"``.
    motors : list of str or comma-separated str, optional
        Columns to use as position dims, slow to fast (grid inferred); default: from the command.

    Returns
    -------
    SpecScan

    Raises
    ------
    FileFormatError
        The file is missing or not SPEC; the scan has no data lines, or data lines that do not
        match its ``#L`` labels, or MCA spectra that do not divide among its points.
    InputError
        No such scan, or a motor that is not a column of the scan.
    """
    path = Path(path)
    sf = _open(path)
    try:
        key = _resolve_key(path, list(sf.keys()), scan)
        return _parse_scan(path, sf[key], key, motors)
    finally:
        sf.close()


def _parse_scan(path: Path, s: Any, key: str, motors: Any) -> SpecScan:
    command = str(s.scan_header_dict.get("S", "")).strip()
    command = command.split(None, 1)[1] if len(command.split(None, 1)) > 1 else command
    where = f"{path}: scan {key} ({command or 'no #S command'})"
    try:
        data = np.asarray(s.data, dtype=np.float64)
    except Exception as err:  # noqa: BLE001 - silx raises SfError on corrupt scans
        raise FileFormatError(f"{where}: silx cannot read its data ({err})") from err
    if data.size == 0 or data.ndim != 2:
        raise _NoDataError(f"{where}: the scan has no data lines")
    labels = _unique(list(s.labels))
    if data.shape[0] != len(labels):
        raise FileFormatError(
            f"{where}: {data.shape[0]} values per data line for {len(labels)} column labels (#L)"
        )
    check_data_lines(path, int(s.index), where, len(labels), data.shape[1])
    columns = np.ascontiguousarray(data.T)  # silx gives (n_labels, n_points)
    mcas = _read_mcas(where, s, columns.shape[0])
    scan = SpecScan(
        key=key,
        number=int(s.number),
        order=int(s.order),
        command=command,
        labels=labels,
        columns=columns,
        positions=Positions([]),
        mcas=mcas,
        header={k: str(v) for k, v in s.scan_header_dict.items()},
    )
    if motors is not None:
        scan.positions = _motor_positions(where, scan, motors)
    elif scan.kind.endswith("mesh"):
        scan.positions = _mesh_positions(where, scan, _mnemonics(s))
    elif scan.kind in TIME_SCANS:
        scan.positions = _time_positions(scan)
    else:
        scan.positions = _line_positions(scan, _mnemonics(s))
    return scan


def _read_mcas(where: str, s: Any, n_points: int) -> list[McaSpectra]:
    mca = s.mca
    total = len(mca)
    if total == 0:
        return []
    if total % n_points:
        raise FileFormatError(
            f"{where}: {total} MCA spectra (@A lines) do not divide among its {n_points} points"
        )
    n_mca = total // n_points
    has_calib = "CALIB" in s.mca_header_dict
    calibs, chans = list(mca.calibration), list(mca.channels)
    out = []
    for k in range(n_mca):
        rows = [np.asarray(mca[i * n_mca + k]) for i in range(n_points)]
        declared = bool(chans) and "CHANN" in s.mca_header_dict  # else silx counts the first one
        n_chann = np.asarray(chans[min(k, len(chans) - 1)]).size if declared else 0
        _refuse_short_spectra(where, k, n_mca, [r.size for r in rows], n_chann)
        spectra = np.stack(rows)
        if _numbered_lines(spectra, k, n_points):
            logger.info(
                "%s: MCA lines numbered '@A%d': silx reads the number as a first channel; dropped",
                where,
                k + 1,
            )
            spectra = spectra[:, 1:]
        n_ch = spectra.shape[1]
        ch = np.asarray(chans[min(k, len(chans) - 1)]) if chans else np.arange(n_ch)
        if ch.size != n_ch:
            ch = np.arange(n_ch)
        calib = None
        if has_calib and calibs:
            a, b, c = (float(v) for v in calibs[min(k, len(calibs) - 1)])
            calib = (a, b, c)
        out.append(McaSpectra(k, _counts(spectra), ch.astype(np.int64), calib))
    return out


def _refuse_short_spectra(
    where: str, k: int, n_mca: int, lengths: Sequence[int], n_chann: int
) -> None:
    """Refuse spectra with fewer channels than ``#@CHANN`` or than the scan's other spectra.

    A SPEC file cut while a spectrum was written (a copy of a file still being written, a full
    disk) leaves a shorter last spectrum; silx reads it as it is.
    """
    full = max(max(lengths), n_chann)  # numbered APS lines ('@A1 v0 …') have one value more
    short = [i for i, n in enumerate(lengths) if n < full]
    if not short:
        return
    i = short[0]
    expected = f"#@CHANN says {n_chann}" if n_chann >= max(lengths) else f"the others have {full}"
    more = f" (and {len(short) - 1} more)" if len(short) > 1 else ""
    raise FileFormatError(
        f"{where}: point {i} of {len(lengths)}: MCA spectrum {k + 1} of {n_mca} (@A line) has "
        f"{lengths[i]} channels; "
        f"{expected}{more}. The file looks cut while that spectrum was written; refusing a "
        "shorter spectrum: copy the file again once it is complete"
    )


def _numbered_lines(spectra: np.ndarray, k: int, n_points: int) -> bool:
    """Whether analyser ``k`` was written as ``@A<k+1> v0 v1 …`` (APS files with several SDDs).

    silx takes the text after ``@A`` as the spectrum, so the analyser number becomes a first
    channel: a first value equal to ``k + 1`` at every one of several points gives it away.
    """
    return n_points > 1 and spectra.shape[1] > 1 and bool(np.all(spectra[:, 0] == k + 1))


def _counts(spectra: np.ndarray) -> np.ndarray:
    """Integral counts as int32/int64 (they are counts); anything else stays float64."""
    if np.all(np.isfinite(spectra)) and np.array_equal(spectra, np.round(spectra)):
        lo, hi = float(spectra.min()), float(spectra.max())
        info = np.iinfo(np.int32)
        return spectra.astype(np.int32 if info.min <= lo and hi <= info.max else np.int64)
    return spectra


def _find_column(scan: SpecScan, token: str, mnemonics: Mapping[str, str]) -> str | None:
    for name in (token, mnemonics.get(token)):
        if name and name in scan.labels:
            return name
    return None


def _line_positions(scan: SpecScan, mnemonics: Mapping[str, str]) -> Positions:
    args = scan.command.split()[1:]
    name = _find_column(scan, args[0], mnemonics) if args else None
    source = f"column {name!r} (first motor of {scan.kind})"
    if name is None:
        name = scan.labels[0]
        source = f"column {name!r} (first column)"
    dim = Dim(name, "", scan.column(name))
    return Positions([dim], source=f"SPEC scan {scan.key}: {source}")


def _time_positions(scan: SpecScan) -> Positions:
    name = next((c for c in TIME_COLUMNS if c in scan.labels), None)
    if name is None:
        values = np.arange(scan.n_points, dtype=np.float64)
        source = "point index (no Time, Epoch or Seconds column)"
    else:
        values = scan.column(name)
        source = f"column {name!r}"
    return Positions([Dim("Time", "s", values)], source=f"SPEC scan {scan.key}: {source}")


def _mesh_positions(where: str, scan: SpecScan, mnemonics: Mapping[str, str]) -> Positions:
    args = scan.command.split()[1:]
    try:
        fast_tok, n_fast = args[0], int(args[3]) + 1
        slow_tok, n_slow = args[4], int(args[7]) + 1
    except (IndexError, ValueError) as err:
        raise FileFormatError(
            f"{where}: expected 'mesh m1 start end intervals m2 start end intervals time'"
        ) from err
    fast = _find_column(scan, fast_tok, mnemonics) or scan.labels[0]
    slow = _find_column(scan, slow_tok, mnemonics) or scan.labels[1 if len(scan.labels) > 1 else 0]
    expected = n_fast * n_slow
    n = scan.n_points
    if n > expected:
        raise FileFormatError(
            f"{where}: {n} points for a {n_slow} × {n_fast} mesh ({slow} × {fast})"
        )
    if n < expected:
        rows = n // n_fast
        if rows == 0:
            raise FileFormatError(
                f"{where}: aborted mesh with {n} points, less than one row of {n_fast}"
            )
        scan.n_dropped = n - rows * n_fast
        logger.warning(
            "%s: aborted mesh, %d of %d points; keeping the %d complete rows of %s "
            "(%d points dropped)",
            where,
            n,
            expected,
            rows,
            slow,
            scan.n_dropped,
        )
        n_slow = rows
        scan.columns = scan.columns[: rows * n_fast]
        for mca in scan.mcas:
            mca.spectra = mca.spectra[: rows * n_fast]
    values = np.stack([scan.column(slow), scan.column(fast)], axis=1)
    grid = values.reshape(n_slow, n_fast, 2)
    dims = [Dim(slow, "", grid[:, :, 0].mean(axis=1)), Dim(fast, "", grid[:, :, 1].mean(axis=0))]
    return Positions(
        dims,
        values=values,
        source=f"SPEC scan {scan.key}: {scan.kind} {n_slow} × {n_fast} ({slow} slow, {fast} fast)",
    )


def _motor_positions(where: str, scan: SpecScan, motors: Any) -> Positions:
    if isinstance(motors, str):
        motors = [m for m in motors.split(",") if m.strip()]
    labels = [parse_label(m, what="motor") for m in motors]
    if not labels:
        raise InputError("motors: give at least one column name, slow to fast")
    missing = [name for name, _ in labels if name not in scan.labels]
    if missing:
        raise InputError(
            f"{where}: no column {', '.join(map(repr, missing))}; its columns are: "
            f"{', '.join(scan.labels)}"
        )
    values = np.stack([scan.column(name) for name, _ in labels], axis=1)
    names = ",".join(name for name, _ in labels)
    return infer_grid(values, labels, source=f"SPEC scan {scan.key}: columns {names}")


# --------------------------------------------------------------------------- images per point


_FORMATTER = string.Formatter()


def image_files(spec_path: str | os.PathLike, scan: SpecScan, pattern: str) -> list[Path]:
    """The image of every point of ``scan``: ``pattern`` filled in, relative to the SPEC folder.

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
        values: dict[str, Any] = dict(base, point=point)
        for name in fields & set(columns):
            value = float(scan.columns[point, columns[name]])
            values[name] = int(value) if value.is_integer() else value
        try:
            name = pattern.format(**values)
        except (ValueError, TypeError) as err:
            raise InputError(f"image_pattern {pattern!r}: {err}") from err
        path = Path(name)
        files.append(path if path.is_absolute() else spec_path.parent / path)
    missing = [f for f in files if not f.is_file()]
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
        path = self.files[point]
        frame, _ = read_image(path)
        if frame.shape != self.shape:
            raise InputError(
                f"{path}: image of shape {frame.shape}; the first image ({self.files[0].name}) "
                f"is {self.shape}"
            )
        if frame.dtype.kind != self.dtype.kind or not np.can_cast(frame.dtype, self.dtype):
            raise InputError(
                f"{path}: image of dtype {frame.dtype}; the first image ({self.files[0].name}) "
                f"is {self.dtype}"
            )
        return _flip(frame, self.flip)


# --------------------------------------------------------------------------- writing


@dataclass
class _Channel:
    """One main dataset to write: its spec, its frames and attributes for its channel group."""

    spec: MeasurementSpec
    frames: Sequence[np.ndarray] | _ImageFrames
    attrs: dict[str, Any] = field(default_factory=dict)


def _attr_value(value: Any) -> Any:
    if isinstance(value, (str, int, float, bool, np.number)):
        return value
    return json.dumps(value, default=str)


def _write_channel(
    meas: h5py.Group, name: str, channel: _Channel, compression: str | None
) -> h5py.Dataset:
    """A channel group with its main dataset, laid out as :func:`write_measurement` does."""
    spec = channel.spec
    chan = meas.create_group(name)
    pos = write_ancillary(
        chan, "Position_", spec.position_dims, spectroscopic=False, values=spec.position_values
    )
    sp = write_ancillary(chan, "Spectroscopic_", spec.spec_dims, spectroscopic=True)
    n_pos, n_spec = spec.n_positions, spec.n_spec
    compression = raw_compression(compression, spec)
    raw = create_main(
        chan,
        "Raw_Data",
        shape=(n_pos, n_spec),
        dtype=spec.dtype,
        quantity=spec.quantity,
        units=spec.units,
        position=pos,
        spectroscopic=sp,
        chunks=(1, n_spec),
        compression=compression,
    )
    digest = hashlib.sha256()
    crcs = np.zeros(n_pos, dtype=np.uint32)
    count = 0
    for index in range(len(channel.frames)):
        frame = channel.frames[index]
        row = np.ascontiguousarray(frame, dtype=raw.dtype).reshape(1, -1)
        if row.shape[1] != n_spec or count >= n_pos:
            raise InputError(
                f"{meas.file.filename}: {name}: frame {count} does not fit {raw.shape}"
            )
        raw.write_direct(row, dest_sel=np.s_[count : count + 1])
        digest.update(row.tobytes())
        crcs[count] = frame_crc(row)
        count += 1
    if count != n_pos:
        raise InputError(f"{meas.file.filename}: {name}: {count} frames for {n_pos} positions")
    write_checksums(raw, crcs)
    raw.attrs["sha256"] = digest.hexdigest()
    raw.attrs["sha256_of"] = "frame values (C order, Raw_Data dtype), in position order"
    raw.attrs["compression"] = compression or "none"
    raw.attrs["storage"] = "encoded"
    if spec.mask is not None:
        chan.create_dataset(
            "Mask",
            data=(np.asarray(spec.mask) != 0).astype(np.uint8),
            **compression_options("gzip"),
        )
    for key, arr in spec.extra.items():
        chan.create_dataset(key, data=arr)
    for key, value in channel.attrs.items():
        chan.attrs[key] = _attr_value(value)
    return raw


def _write_measurement_group(
    h5: h5py.File, index: int, channels: Sequence[_Channel], compression: str | None
) -> None:
    first = channels[0].spec
    meas = h5.create_group(f"Measurement_{index:03d}")
    for key, value in first.attrs.items():
        meas.attrs[key] = _attr_value(value)
    meas.attrs["created"] = _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")
    if first.geometry is not None:
        meas.attrs["geometry"] = json.dumps(first.geometry, sort_keys=True)
    for k, channel in enumerate(channels):
        _write_channel(meas, f"Channel_{k:03d}", channel, compression)


def _write_file(
    h5_path: Path,
    measurements: Sequence[Sequence[_Channel]],
    *,
    compression: str | None,
    overwrite: bool,
    progress: bool,
    file_attrs: Mapping[str, Any],
) -> Path:
    """Measurement_000/Channel_000 through the io writer; the rest appended; renamed when done."""
    tmp = h5_path.with_name(f".{h5_path.name}.spec.partial")
    try:
        first = measurements[0][0]
        write_measurement(
            tmp,
            first.spec,
            first.frames,
            compression=compression,
            overwrite=True,
            progress=progress,
        )
        with h5py.File(tmp, "r+") as h5:
            for key, value in file_attrs.items():
                h5.attrs[key] = _attr_value(value)
            meas = h5["Measurement_000"]
            for key, value in first.attrs.items():
                meas["Channel_000"].attrs[key] = _attr_value(value)
            for k, channel in enumerate(measurements[0][1:], start=1):
                _write_channel(meas, f"Channel_{k:03d}", channel, compression)
            for index, channels in enumerate(measurements[1:], start=1):
                _write_measurement_group(h5, index, channels, compression)
        if h5_path.exists() and not overwrite:  # appeared while we were writing
            raise InputError(f"{h5_path} appeared during the translation; not replaced")
        os.replace(tmp, h5_path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return h5_path


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

    def record(self) -> dict[str, Any]:
        def describe(value: Any) -> Any:
            if value is None or isinstance(value, (str, os.PathLike)):
                return None if value is None else str(value)
            return "array" if isinstance(value, np.ndarray) else "dict"

        return dict(
            image_pattern=self.image_pattern,
            monitor=self.monitor,
            energy_unit=self.energy_unit,
            poni=describe(self.poni),
            mask=describe(self.mask),
            flip=self.flip,
            dummy=self.dummy,
        )


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
        overwrite: bool = False,
        compression: str | None = "bslz4",
        progress: bool = False,
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
            Unit of the ``#@CALIB`` energies (SPEC does not record it).
        poni, mask, flip, dummy
            Geometry, mask, orientation and invalid-pixel value of the images, as for the
            ``images`` translator (:meth:`~pyscatter.translators.images.ImageStackTranslator.translate`).
        overwrite : bool
            Replace an existing ``h5_path``; otherwise refuse.
        compression : {"bslz4", "gzip", "none"}
        progress : bool
            Show a progress bar (first measurement).

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
        flip = _check_flip(flip)
        compression_options(compression)
        if scan is not None and scans is not None:
            raise InputError("give scan (one) or scans (several or 'all'), not both")
        if image_pattern is None and any(v is not None for v in (poni, mask, flip, dummy)):
            raise InputError("poni, mask, flip and dummy apply to images: give image_pattern too")
        opts = _Options(image_pattern, monitor, energy_unit, poni, mask, flip, dummy)
        sf = _open(path)
        try:
            keys = list(sf.keys())
            wanted, explicit = self._wanted(path, keys, scan, scans)
            parsed, skipped = [], []
            for key in wanted:
                try:
                    parsed.append(_parse_scan(path, sf[key], key, motors))
                except _NoDataError as err:
                    if explicit:
                        raise
                    logger.warning("%s (skipped)", err)
                    skipped.append(key)
        finally:
            sf.close()
        if not parsed:
            raise FileFormatError(f"{path}: none of its {len(keys)} scans has data lines")
        record = _file_record(path)
        options = dict(
            opts.record(), scan=scan, scans=scans, motors=motors, compression=compression
        )
        measurements = [self._channels(path, s, record, opts, options) for s in parsed]
        file_attrs = {"spec_file": str(path.resolve()), "spec_scans": [s.key for s in parsed]}
        if skipped:
            file_attrs["spec_skipped_scans"] = skipped
        logger.info("translating %d SPEC scan(s) of %s into %s", len(parsed), path, h5_path)
        return _write_file(
            h5_path,
            measurements,
            compression=compression,
            overwrite=overwrite,
            progress=progress,
            file_attrs=file_attrs,
        )

    @staticmethod
    def _wanted(path: Path, keys: list[str], scan: Any, scans: Any) -> tuple[list[str], bool]:
        if not keys:
            raise FileFormatError(f"{path}: silx finds no scan (#S line) in it")
        if scan is not None:
            return [_resolve_key(path, keys, scan)], True
        if scans is None or (isinstance(scans, str) and scans == "all"):
            return keys, False
        if isinstance(scans, (str, int)):
            raise InputError(f"scans must be a list of scans or 'all', got {scans!r}")
        wanted = [_resolve_key(path, keys, s) for s in scans]
        if not wanted:
            raise InputError("scans: an empty list; give scan numbers or 'all'")
        duplicates = sorted({k for k in wanted if wanted.count(k) > 1})
        if duplicates:
            raise InputError(f"scans: repeated {', '.join(duplicates)}")
        return wanted, True

    def _channels(
        self, path: Path, s: SpecScan, record: dict, opts: _Options, options: dict
    ) -> list[_Channel]:
        where = f"{path}: scan {s.key}"
        counters = {f"Counters/{name}": s.columns[:, k].copy() for k, name in enumerate(s.labels)}
        attrs: dict[str, Any] = {
            "translator": self.name,
            "tool": f"pyscatter.translators.{self.name}",
            "versions": dict(_versions(), silx=_silx_version()),
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
        pos = s.positions
        extra = dict(pos.extra, **counters)
        if pos.extra_units:
            attrs["measured_units"] = pos.extra_units
        channels: list[_Channel] = []
        if opts.image_pattern is not None:
            channels.append(self._image_channel(path, s, opts, attrs, extra))
        for mca in s.mcas:
            calibrated = mca.calibration is not None
            spec = MeasurementSpec(
                position_dims=pos.dims,
                spec_dims=[
                    Dim("Channel", opts.energy_unit if calibrated else "channel", mca.axis())
                ],
                dtype=mca.spectra.dtype,
                position_values=pos.values,
                attrs=dict(attrs, kind="mca"),
                extra=extra if not channels else {},
            )
            chan_attrs = {
                "mca_index": mca.index,
                "mca_channels": [int(mca.channels[0]), int(mca.channels[-1])],
                "mca_calibration": list(mca.calibration) if calibrated else "none",
                "mca_axis": f"energy ({opts.energy_unit})" if calibrated else "channel number",
            }
            channels.append(_Channel(spec, mca.spectra, chan_attrs))
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
            channels.append(_Channel(spec, s.columns, {"counter_names": s.labels}))
        return channels

    def _image_channel(
        self, path: Path, s: SpecScan, opts: _Options, attrs: dict, extra: dict
    ) -> _Channel:
        pattern, flip = opts.image_pattern or "", opts.flip
        files = image_files(path, s, pattern)
        first, header = read_image(files[0])
        geometry = None if opts.poni is None else _poni_geometry(opts.poni, first.shape, header)
        mask_arr = _load_mask(opts.mask, first.shape)
        if mask_arr is not None:
            mask_arr = _flip(mask_arr, flip)
        image_attrs = dict(
            attrs,
            kind="images",
            sources=attrs["sources"] + [_file_record(f) for f in files],
            image_pattern=pattern,
            orientation=_orientation(flip, False),
            flip=flip or "none",
        )
        if opts.dummy is not None:
            image_attrs["dummy"] = float(opts.dummy)
        rows, cols = first.shape
        spec = MeasurementSpec(
            position_dims=s.positions.dims,
            spec_dims=[Dim("Row", "pixel", np.arange(rows)), Dim("Col", "pixel", np.arange(cols))],
            dtype=first.dtype,
            position_values=s.positions.values,
            attrs=image_attrs,
            geometry=geometry,
            mask=mask_arr,
            extra=extra,
        )
        return _Channel(spec, _ImageFrames(files, first, flip))


def _silx_version() -> str:
    from importlib import metadata

    try:
        return metadata.version("silx")
    except metadata.PackageNotFoundError:
        return "not installed"
