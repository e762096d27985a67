"""SPEC scans as silx reads them (:class:`silx.io.specfile.SpecFile`), with their position dims.

Positions come from the scan command (``#S``) and the data columns (``#L``):

* ``mesh``, ``dmesh``, ``hklmesh`` (any command ending in ``mesh``): a 2-D grid. SPEC moves the
  *first* motor of the command fastest, so the dims are (second motor, first motor), slow to fast,
  with sizes ``intervals + 1`` from the command. Nominal values are the means of the read-backs
  of each level; the read-backs are kept as position values. An aborted mesh keeps its complete
  rows (with a logged warning and ``n_dropped``);
* ``timescan``, ``loopscan``, ``tseries``: one dim ``Time`` in seconds (the ``Time`` column, else
  ``Epoch`` or ``Seconds``, else the point index);
* every other scan (``ascan``, ``dscan``, ``a2scan``, ``cscan``, ``uascan``, ``hklscan`` …): one dim
  named after the column of the first motor of the command (the motor mnemonic is mapped to its
  name through the file header's ``#o``/``#O`` lines), else after the first column, with the
  measured values;
* ``motors=["samy", "samz"]`` instead: these columns, slow to fast, with the grid they form
  inferred as for image headers (:func:`pyscatter.translators.grid_inference.infer_grid`).

MCA spectra (``@A`` lines) become :class:`McaSpectra`, one per analyser; every data line is
checked against the ``#L`` labels (:func:`pyscatter.translators.spec_lines.check_data_lines`).
The translator is :mod:`pyscatter.translators.spec`. Messages are logged under the
``pyscatter.translators.spec`` logger, the translator's.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from pyscatter.errors import FileFormatError, InputError
from pyscatter.io.usid import Dim
from pyscatter.translators.grid_inference import infer_grid
from pyscatter.translators.positions import Positions, parse_label
from pyscatter.translators.spec_lines import check_data_lines

__all__ = [
    "TIME_COLUMNS",
    "TIME_SCANS",
    "McaSpectra",
    "NoDataError",
    "SpecScan",
    "check_mca_calibration",
    "declared_dims",
    "open_spec",
    "parse_points",
    "parse_scan",
    "read_scan",
    "resolve_key",
    "scan_keys",
]

logger = logging.getLogger("pyscatter.translators.spec")

#: Scan commands whose points are a time series (one dim ``Time``).
TIME_SCANS = ("timescan", "loopscan", "tseries")
#: Columns holding the time of a time series, in order of preference.
TIME_COLUMNS = ("Time", "Epoch", "Seconds")

# --------------------------------------------------------------------------- parsing (silx)


class NoDataError(FileFormatError):
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
    ctime : ndarray or None
        (n_points, 3) float64 ``#@CTIME preset live real`` counting times (s) of every point:
        from one line per point (or per point and analyser), or the scan's single line
        repeated (``ctime_source`` says which); None when the scan has no ``#@CTIME``.
    ctime_source : str
        ``"per point"``, ``"scan header"`` or ``""``.
    """

    index: int
    spectra: np.ndarray
    channels: np.ndarray
    calibration: tuple[float, float, float] | None = None
    ctime: np.ndarray | None = None
    ctime_source: str = ""

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
    where : str
        How messages name the scan (file, key and command).
    motors : dict
        Motor name → position at the start of the scan (``#O``/``#P`` lines; ``{}`` if none).
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
    where: str = ""
    motors: dict[str, float] = field(default_factory=dict)

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


def open_spec(path: Path) -> Any:
    """silx's ``SpecFile`` of ``path`` (close it when done).

    Raises
    ------
    FileFormatError
        Missing file, or not SPEC.
    """
    from silx.io.specfile import SpecFile

    if not path.is_file():
        raise FileFormatError(f"{path}: no such file")
    try:
        return SpecFile(str(path))
    except Exception as err:  # noqa: BLE001 - silx raises SfError subclasses and OSError
        raise FileFormatError(f"{path}: not a SPEC file silx can read ({err})") from err


def scan_keys(path: str | os.PathLike) -> list[str]:
    """The scans of a SPEC file, as silx keys ``"number.order"``, in file order."""
    sf = open_spec(Path(path))
    try:
        return list(sf.keys())
    finally:
        sf.close()


def resolve_key(path: Path, keys: Sequence[str], scan: Any) -> str:
    """``22``, ``"22"`` or ``"22.2"`` → the silx key; the first occurrence when no order is given.

    Raises
    ------
    InputError
        Not a scan number, or no such scan (the message lists the file's scans).
    """
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
    sf = open_spec(path)
    try:
        key = resolve_key(path, list(sf.keys()), scan)
        return parse_scan(path, sf[key], key, motors)
    finally:
        sf.close()


def parse_scan(path: Path, s: Any, key: str, motors: Any) -> SpecScan:
    """:class:`SpecScan` of silx's scan ``s`` (key ``key``) of the file ``path``; see :func:`read_scan`.

    Raises
    ------
    NoDataError
        The scan has no data lines.
    """
    scan = parse_points(path, s, key)
    if motors is not None:
        scan.positions = _motor_positions(scan.where, scan, motors)
    elif scan.kind.endswith("mesh"):
        scan.positions = _mesh_positions(scan.where, scan, _mnemonics(s))
    elif scan.kind in TIME_SCANS:
        scan.positions = _time_positions(scan)
    else:
        scan.positions = _line_positions(scan, _mnemonics(s))
    return scan


def parse_points(path: Path, s: Any, key: str) -> SpecScan:
    """The points of silx's scan ``s`` (columns checked, MCA spectra), positions not yet worked
    out (``Positions([])``); :func:`parse_scan` adds them. ``pyscatter watch`` parses the points
    of a scan still being written with it.

    Raises
    ------
    NoDataError
        The scan has no data lines.
    """
    command = str(s.scan_header_dict.get("S", "")).strip()
    command = command.split(None, 1)[1] if len(command.split(None, 1)) > 1 else command
    where = f"{path}: scan {key} ({command or 'no #S command'})"
    try:
        data = np.asarray(s.data, dtype=np.float64)
    except Exception as err:  # noqa: BLE001 - silx raises SfError on corrupt scans
        raise FileFormatError(f"{where}: silx cannot read its data ({err})") from err
    if data.size == 0 or data.ndim != 2:
        raise NoDataError(f"{where}: the scan has no data lines")
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
        where=where,
        motors=_motors(s),
    )
    return scan


def _motors(s: Any) -> dict[str, float]:
    """Motor name → position of the scan's ``#P`` lines, as silx reads them (``{}`` if none)."""
    try:
        names, values = list(s.motor_names), list(s.motor_positions)
    except Exception:  # noqa: BLE001 - silx raises SfError when a scan has no #P lines
        return {}
    if len(names) != len(values):
        return {}
    return {str(n): float(v) for n, v in zip(names, values, strict=True)}


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
        ctime, ctime_source = _ctime(where, s.mca_header_dict.get("CTIME"), k, n_mca, n_points)
        out.append(McaSpectra(k, _counts(spectra), ch.astype(np.int64), calib, ctime, ctime_source))
    return out


def _ctime(
    where: str, text: Any, k: int, n_mca: int, n_points: int
) -> tuple[np.ndarray | None, str]:
    """``#@CTIME preset live real`` of analyser ``k`` at every point (silx joins the lines of a
    scan with newlines): one line per point and analyser, one per point, or one for the scan.

    Raises
    ------
    FileFormatError
        A line without three numbers.
    """
    if text is None or not str(text).strip():
        return None, ""
    lines = [ln.split() for ln in str(text).splitlines() if ln.strip()]
    try:
        values = np.array([[float(v) for v in ln[:3]] for ln in lines], dtype=np.float64)
    except ValueError:
        values = np.empty((0, 0))
    if values.ndim != 2 or values.shape[1] != 3 or not np.all(np.isfinite(values)):
        raise FileFormatError(
            f"{where}: #@CTIME lines must hold 'preset live real' times; got {str(text)[:80]!r}"
        )
    if len(values) == n_points * n_mca and n_mca > 1:
        return values[k::n_mca].copy(), "per point"
    if len(values) == n_points and n_points > 1:
        return values.copy(), "per point"
    if len(values) == 1:
        return np.repeat(values, n_points, axis=0), "scan header"
    logger.warning(
        "%s: %d #@CTIME lines for %d points and %d analyser(s); counting times not recorded",
        where,
        len(values),
        n_points,
        n_mca,
    )
    return None, ""


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


def declared_dims(scan: SpecScan, s: Any) -> list[tuple[str, int]] | None:
    """The dims the ``#S`` command of ``scan`` (silx's ``s``) declares, slow to fast, named as
    :func:`parse_scan` names them: a mesh (second motor, first motor), an ``ascan``/``dscan``
    (``a2scan`` …) one dim of ``intervals + 1`` points; None for time series and other commands.

    Raises
    ------
    FileFormatError
        A mesh command without its sizes.
    """
    mnemonics = _mnemonics(s)
    if scan.kind.endswith("mesh"):
        slow, n_slow, fast, n_fast = _mesh_dims(scan.where, scan, mnemonics)
        return [(slow, n_slow), (fast, n_fast)]
    match = re.fullmatch(r"[ad](\d?)scan", scan.kind)
    args = scan.command.split()[1:]
    try:
        intervals = int(args[3 * int(match.group(1) or 1)]) if match else None
    except (IndexError, ValueError):
        intervals = None
    if intervals is None:
        return None
    return [(_line_column(scan, mnemonics)[0], intervals + 1)]


def _line_column(scan: SpecScan, mnemonics: Mapping[str, str]) -> tuple[str, str]:
    """The column of a line scan's dim and where it comes from."""
    args = scan.command.split()[1:]
    name = _find_column(scan, args[0], mnemonics) if args else None
    if name is None:
        return scan.labels[0], f"column {scan.labels[0]!r} (first column)"
    return name, f"column {name!r} (first motor of {scan.kind})"


def _line_positions(scan: SpecScan, mnemonics: Mapping[str, str]) -> Positions:
    name, source = _line_column(scan, mnemonics)
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


def _mesh_dims(
    where: str, scan: SpecScan, mnemonics: Mapping[str, str]
) -> tuple[str, int, str, int]:
    """``(slow, n_slow, fast, n_fast)`` of a mesh command (its first motor runs fastest)."""
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
    return slow, n_slow, fast, n_fast


def _mesh_positions(where: str, scan: SpecScan, mnemonics: Mapping[str, str]) -> Positions:
    slow, n_slow, fast, n_fast = _mesh_dims(where, scan, mnemonics)
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
            if mca.ctime is not None:
                mca.ctime = mca.ctime[: rows * n_fast]
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


def check_mca_calibration(value: Sequence[float] | None) -> tuple[float, float, float] | None:
    """``mca_calibration`` as (a, b, c) (energy = a + b·ch + c·ch²; c = 0 when two are given);
    refuse anything but 2 or 3 finite numbers with b != 0. The spec translator's option and the
    XRF steps' parameter."""
    if value is None:
        return None
    try:
        numbers = [float(v) for v in value]
    except (TypeError, ValueError):
        numbers = []
    if isinstance(value, (str, bytes)) or len(numbers) not in (2, 3):
        raise InputError(
            f"mca_calibration {value!r}: expected 2 or 3 numbers a b [c] "
            "(energy = a + b·ch + c·ch²)"
        )
    if not all(np.isfinite(numbers)) or numbers[1] == 0:
        raise InputError(f"mca_calibration {value!r}: numbers must be finite with b != 0")
    a, b, *c = numbers
    return (a, b, c[0] if c else 0.0)
