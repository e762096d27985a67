"""Scan positions for translators: labels with units, grids, CSV files, SPEC-era motor headers.

Every translator ends up with a :class:`Positions`: the position dimensions (slow to fast) with
their nominal values, plus the measured read-backs when the source has them. Measured values are
turned into a grid by :func:`infer_grid`:

* the columns are the dimensions, slow to fast; the scan is nested, so dimension ``k`` keeps one
  level over blocks of ``prod(sizes of the faster dims)`` consecutive rows;
* the size of each dimension, slowest first, is the one divisor of the remaining row count for
  which the column depends only on its own index: every value lies within a quarter of the
  smallest step between levels of that level's mean (read-back jitter is tolerated this way), and
  the levels are distinct; a dimension of size 1 must be constant (to 1e-9 relative);
* the nominal value of each level is the mean of its read-backs; the read-backs themselves are
  kept as the position values.

Positions that form no such grid (snake scans, aborted rows, a jittering motor that was not
scanned) become one dimension ``Position`` of index values, the measured columns kept as extra
datasets, with a logged warning.

Examples
--------
>>> import numpy as np
>>> values = np.array([[0.0, 0.0], [0.01, 5.0], [-0.01, 10.02],    # Y, X read-backs
...                    [10.0, 0.01], [10.01, 4.98], [9.99, 10.0]])
>>> pos = infer_grid(values, [("Y", "um"), ("X", "um")], source="example")
>>> [(d.name, len(d)) for d in pos.dims]
[('Y', 2), ('X', 3)]
>>> parse_grid("Y=6,X[mm]=8")
[('Y', '', 6), ('X', 'mm', 8)]
"""

from __future__ import annotations

import csv
import logging
import math
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from pyscatter.errors import FileFormatError, InputError
from pyscatter.io.usid import Dim

__all__ = [
    "Positions",
    "grid_positions",
    "index_positions",
    "infer_grid",
    "motor_positions",
    "parse_grid",
    "parse_label",
    "read_positions_csv",
]

logger = logging.getLogger(__name__)

#: A value may lie this fraction of the smallest step between levels away from its level's mean.
JITTER_FRACTION = 0.25
#: A dimension of size 1 must have a spread below this, relative to max(1, |value|).
CONSTANT_RTOL = 1e-9

_LABEL = re.compile(r"^\s*(?P<name>[^\[\]()]+?)\s*(?:[\[(]\s*(?P<unit>[^\])]*?)\s*[\])])?\s*$")


@dataclass
class Positions:
    """Position dimensions of a scan, ready for :class:`pyscatter.io.raw.MeasurementSpec`.

    Attributes
    ----------
    dims : list of Dim
        Slow to fast, with nominal values.
    values : ndarray or None
        (n_positions, n_dims) float64 measured values, or None to store the nominal grid.
    extra : dict of str to ndarray
        Measured columns kept as datasets beside the raw data (when they form no grid).
    extra_units : dict of str to str
        The unit of each extra dataset.
    source : str
        Where the positions come from, for the file's attributes.
    """

    dims: list[Dim]
    values: np.ndarray | None = None
    extra: dict[str, np.ndarray] = field(default_factory=dict)
    extra_units: dict[str, str] = field(default_factory=dict)
    source: str = ""

    @property
    def shape(self) -> tuple[int, ...]:
        """Scan shape, slow to fast."""
        return tuple(len(d) for d in self.dims)

    @property
    def n_positions(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))


# --------------------------------------------------------------------------- labels and grids


def parse_label(text: str, *, what: str = "label") -> tuple[str, str]:
    """``"Y[um]"``, ``"Y (um)"`` or ``"Y"`` → ``(name, unit)`` (unit ``""`` when absent).

    Raises
    ------
    InputError
        An empty name or unbalanced brackets (``what`` names the offending input).
    """
    match = _LABEL.match(str(text))
    if match is None or not match.group("name").strip():
        raise InputError(
            f"{what} {text!r}: expected a name with an optional unit, like 'Y[um]' or 'Y'"
        )
    name = match.group("name").strip()
    if "/" in name:
        raise InputError(f"{what} {text!r}: a dimension name cannot contain '/'")
    return name, (match.group("unit") or "").strip()


def _check_unique(labels: Sequence[tuple[str, str]], what: str) -> None:
    names = [n for n, _ in labels]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise InputError(
            f"{what}: dimension names must be unique; repeated: {', '.join(duplicates)}"
        )


def parse_grid(grid: str | Mapping[str, int]) -> list[tuple[str, str, int]]:
    """``{"Y": 6, "X": 8}`` or ``"Y=6,X=8"`` (names may carry units, ``"Y[um]=6"``), slow to fast.

    Returns
    -------
    list of (name, unit, size)

    Raises
    ------
    InputError
        Not of that form, or a size that is not a positive integer.
    """
    if isinstance(grid, str):
        items: list[tuple[str, Any]] = []
        for part in (p for p in grid.split(",") if p.strip()):
            key, sep, size = part.partition("=")
            if not sep:
                raise InputError(f"grid {grid!r}: expected NAME=SIZE pairs like 'Y=6,X=8'")
            items.append((key, size.strip()))
    elif isinstance(grid, Mapping):
        items = [(str(k), v) for k, v in grid.items()]
    else:
        raise InputError(
            f"grid: expected a dict like {{'Y': 6, 'X': 8}} or 'Y=6,X=8', got {grid!r}"
        )
    if not items:
        raise InputError(f"grid {grid!r}: no dimensions")
    out = []
    for key, size in items:
        name, unit = parse_label(key, what="grid dimension")
        try:
            number = int(size)
            ok = number >= 1 and float(size) == number
        except (TypeError, ValueError):
            ok = False
        if not ok:
            raise InputError(
                f"grid {grid!r}: size of {name!r} must be a positive integer, got {size!r}"
            )
        out.append((name, unit, number))
    _check_unique([(n, u) for n, u, _ in out], f"grid {grid!r}")
    return out


def index_positions(n: int, name: str = "Image", *, source: str = "index") -> Positions:
    """One dimension ``name`` of index values 0 … n-1."""
    return Positions([Dim(name, "", np.arange(n, dtype=np.float64))], source=source)


def grid_positions(grid: str | Mapping[str, int], n: int, *, what: str = "images") -> Positions:
    """Index-valued dimensions of a regular grid (``grid="Y=6,X=8"``) over ``n`` positions.

    Raises
    ------
    InputError
        The grid's size differs from ``n`` (the message gives both counts).
    """
    parsed = parse_grid(grid)
    total = math.prod(size for _, _, size in parsed)
    if total != n:
        text = " × ".join(f"{name}={size}" for name, _, size in parsed)
        raise InputError(f"grid {text} has {total} positions but there are {n} {what}")
    dims = [Dim(name, unit, np.arange(size, dtype=np.float64)) for name, unit, size in parsed]
    return Positions(dims, source=f"grid {','.join(f'{nm}={s}' for nm, _, s in parsed)}")


# --------------------------------------------------------------------------- measured values


def read_positions_csv(path: str | os.PathLike) -> tuple[list[tuple[str, str]], np.ndarray]:
    """Read a positions CSV: a header of labels (``Y[um],X[um]``) and one row of numbers per image.

    Commas, semicolons or tabs separate the cells; blank lines and lines starting with ``#`` are
    skipped.

    Returns
    -------
    labels : list of (name, unit)
        Slow to fast, as in the header.
    values : ndarray
        (n_rows, n_columns) float64.

    Raises
    ------
    FileFormatError
        Missing file, no header, a row of the wrong length, or a cell that is not a finite number
        (the message names the file and the line).
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as err:
        raise FileFormatError(f"positions file {path}: cannot read it ({err})") from err
    lines = [
        (number, line)
        for number, line in enumerate(text.splitlines(), start=1)
        if line.strip() and not line.lstrip().startswith("#")
    ]
    if not lines:
        raise FileFormatError(f"positions file {path}: empty; expected a header like 'Y[um],X[um]'")
    delimiter = next((d for d in (",", ";", "\t") if d in lines[0][1]), ",")
    rows = list(csv.reader([line for _, line in lines], delimiter=delimiter))
    labels = [parse_label(cell, what=f"positions file {path}: column") for cell in rows[0]]
    _check_unique(labels, f"positions file {path}")
    values = np.empty((len(rows) - 1, len(labels)), dtype=np.float64)
    for k, ((number, _), row) in enumerate(zip(lines[1:], rows[1:], strict=True)):
        if len(row) != len(labels):
            raise FileFormatError(
                f"positions file {path}, line {number}: {len(row)} values for "
                f"{len(labels)} columns ({', '.join(n for n, _ in labels)})"
            )
        try:
            values[k] = [float(cell) for cell in row]
        except ValueError as err:
            raise FileFormatError(f"positions file {path}, line {number}: {err}") from err
        if not np.isfinite(values[k]).all():
            raise FileFormatError(f"positions file {path}, line {number}: not finite: {row}")
    if values.shape[0] == 0:
        raise FileFormatError(f"positions file {path}: a header but no rows of values")
    return labels, values


def motor_positions(
    headers: Sequence[Mapping[str, Any]],
    motors: Sequence[str] | str,
    files: Sequence[str | os.PathLike],
) -> tuple[list[tuple[str, str]], np.ndarray]:
    """Motor values from SPEC-era image headers (``motor_mne`` / ``motor_pos``).

    Parameters
    ----------
    headers : sequence of mapping
        One header per image (e.g. fabio's ``image.header``).
    motors : sequence of str, or a comma-separated str
        Motor names, slow to fast, each with an optional unit (``"diffry[deg]"``).
    files : sequence of path
        The image of each header, for error messages.

    Returns
    -------
    labels : list of (name, unit)
    values : ndarray
        (n_images, n_motors) float64.

    Raises
    ------
    FileFormatError
        A header without ``motor_mne``/``motor_pos``, with lists of different lengths, or a value
        that is not a finite number.
    InputError
        A motor missing from a header (the message lists the motors it has).
    """
    if isinstance(motors, str):
        motors = [m for m in motors.split(",") if m.strip()]
    labels = [parse_label(m, what="motor") for m in motors]
    if not labels:
        raise InputError("motors: give at least one motor name, slow to fast")
    _check_unique(labels, "motors")
    values = np.empty((len(headers), len(labels)), dtype=np.float64)
    for i, (header, path) in enumerate(zip(headers, files, strict=True)):
        names = str(header.get("motor_mne", "")).split()
        numbers = str(header.get("motor_pos", "")).split()
        if not names or len(names) != len(numbers):
            raise FileFormatError(
                f"{path}: header has {len(names)} motor names (motor_mne) and {len(numbers)} "
                "values (motor_pos); expected equal, non-empty lists"
            )
        table = dict(zip(names, numbers, strict=True))
        for k, (name, _) in enumerate(labels):
            if name not in table:
                raise InputError(
                    f"{path}: no motor {name!r} in the header; its motors are: {' '.join(names)}"
                )
            try:
                values[i, k] = float(table[name])
            except ValueError:
                values[i, k] = math.nan
            if not math.isfinite(values[i, k]):
                raise FileFormatError(f"{path}: motor {name!r} has value {table[name]!r}")
    return labels, values


# --------------------------------------------------------------------------- grid inference


def _divisors(n: int) -> list[int]:
    small = [d for d in range(1, math.isqrt(n) + 1) if n % d == 0]
    return sorted(set(small + [n // d for d in small]))


def _levels(column: np.ndarray, shape: tuple[int, ...], axis: int) -> np.ndarray | None:
    """Level means of ``column`` if it depends only on index ``axis`` of ``shape``, else None."""
    v = column.reshape(shape)
    others = tuple(a for a in range(len(shape)) if a != axis)
    means = v.mean(axis=others) if others else v
    expanded = np.expand_dims(means, others) if others else means
    spread = float(np.max(np.abs(v - expanded)))
    if shape[axis] == 1:
        scale = max(1.0, float(np.max(np.abs(column))))
        return means if spread <= CONSTANT_RTOL * scale else None
    step = float(np.min(np.diff(np.sort(means))))
    if step <= 0 or spread >= JITTER_FRACTION * step:
        return None
    return means


def grid_shape(values: np.ndarray) -> tuple[tuple[int, ...], list[np.ndarray]] | None:
    """Shape (slow to fast) and level means of the nested grid ``values`` forms, or None.

    Parameters
    ----------
    values : ndarray
        (n_rows, n_dims) measured values, one row per position in scan order.
    """
    values = np.asarray(values, dtype=np.float64)
    n, d = values.shape
    return _nest(values, 0, (), [], n)


def _nest(
    values: np.ndarray, k: int, shape: tuple[int, ...], levels: list[np.ndarray], remaining: int
) -> tuple[tuple[int, ...], list[np.ndarray]] | None:
    """Depth-first search for sizes of dims k… (smallest block count first, backtracking:
    a size that passes the jitter test for dim k but leaves no grid for the faster dims — 8 × 10
    read as 4 × 20 averages neighbouring levels — is abandoned)."""
    d = values.shape[1]
    if k == d:
        return (shape, levels) if remaining == 1 else None
    candidates = [remaining] if k == d - 1 else _divisors(remaining)
    for size in candidates:
        trial = (*shape, size, remaining // size)
        found = _levels(values[:, k], trial, k)
        if found is None:
            continue
        result = _nest(values, k + 1, (*shape, size), [*levels, found], remaining // size)
        if result is not None:
            return result
    return None


def infer_grid(values: np.ndarray, labels: Sequence[tuple[str, str]], *, source: str) -> Positions:
    """Position dims from measured values: the nested grid they form, else one ``Position`` dim.

    Parameters
    ----------
    values : ndarray
        (n_positions, n_dims) measured values in scan order, dims slow to fast.
    labels : sequence of (name, unit)
        Of the columns.
    source : str
        Where the values come from (for messages and the file's attributes).

    Returns
    -------
    Positions
        On a grid: dims with the level means as nominal values, ``values`` the read-backs.
        Otherwise one dim ``Position`` of index values and the columns in ``extra`` (named
        ``measured_<name>``), with a logged warning.
    """
    values = np.asarray(values, dtype=np.float64)
    found = grid_shape(values)
    if found is not None:
        shape, levels = found
        dims = [Dim(name, unit, lv) for (name, unit), lv in zip(labels, levels, strict=True)]
        logger.info(
            "%s: positions form a %s grid",
            source,
            " × ".join(f"{name}={size}" for (name, _), size in zip(labels, shape, strict=True)),
        )
        return Positions(dims, values=values, source=source)
    logger.warning(
        "%s: the %d positions of %s do not form a nested grid (slow to fast, each dimension "
        "constant over blocks of the faster ones); stored as one dimension 'Position' of index "
        "values, with the measured columns kept as datasets %s",
        source,
        values.shape[0],
        ", ".join(n for n, _ in labels),
        ", ".join(f"measured_{n}" for n, _ in labels),
    )
    pos = index_positions(values.shape[0], "Position", source=source)
    pos.extra = {f"measured_{name}": values[:, k].copy() for k, (name, _) in enumerate(labels)}
    pos.extra_units = {f"measured_{name}": unit for name, unit in labels}
    return pos
