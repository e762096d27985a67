"""Scan positions for translators: labels with units, grids, CSV files, SPEC-era motor headers.

Every translator ends up with a :class:`Positions`: the position dimensions (slow to fast) with
their nominal values, plus the measured read-backs when the source has them, and the order in which
the source's frames fill the grid. Measured values are turned into a grid by :func:`~pyscatter.translators.grid_inference.infer_grid`:

* the columns are the dimensions, slow to fast; the scan is nested, so dimension ``k`` keeps one
  level over blocks of ``prod(sizes of the faster dims)`` consecutive rows;
* the size of each dimension, slowest first, is the one divisor of the remaining row count for
  which the column depends only on its own index: every value lies within a quarter of the
  smallest step between levels of that level's mean (read-back jitter is tolerated this way), and
  the levels are distinct; a dimension of size 1 must be constant (to 1e-9 relative);
* the nominal value of each level is the mean of its read-backs; the read-backs themselves are
  kept as the position values.

Two departures from a plain nested grid are recognised and put back in order:

* **snake (serpentine) scans**: the fastest motor runs back on every other row. The frames of those
  rows are reordered so that the fast dimension always increases the same way; the positions record
  ``snake = True`` (:attr:`Positions.snake`) and :attr:`Positions.order` maps every grid position to
  the frame measured there.
* **aborted scans**: the last block of the slowest dimension (the last row of a map, the last map of
  a field series …) has fewer points than the others. A beamline scientist wants the map as
  planned, so by default (``incomplete="pad"``) the grid is kept full: the positions never measured
  get order ``-1`` (:attr:`Positions.valid` false; translators store a ``valid_positions`` dataset and
  fill those frames with zeros) and carry their nominal values. ``incomplete="drop"`` drops the
  incomplete block instead, ``incomplete="error"`` refuses. Either way a warning says what was done.

Positions that form no such grid (irregular positions, a jittering motor that was not scanned)
become one dimension ``Position`` of index values, the measured columns kept as extra datasets,
with a logged warning: irregular positions are kept as measured.

Examples
--------
>>> import numpy as np
>>> values = np.array([[0.0, 0.0], [0.01, 5.0], [-0.01, 10.02],    # Y, X read-backs
...                    [10.0, 0.01], [10.01, 4.98], [9.99, 10.0]])
>>> from pyscatter.translators.grid_inference import infer_grid
>>> pos = infer_grid(values, [("Y", "um"), ("X", "um")], source="example")
>>> [(d.name, len(d)) for d in pos.dims]
[('Y', 2), ('X', 3)]
>>> snake = values[[0, 1, 2, 5, 4, 3]]                 # the second row measured backwards
>>> pos = infer_grid(snake, [("Y", "um"), ("X", "um")], source="example")
>>> pos.snake, pos.order.tolist()
(True, [0, 1, 2, 5, 4, 3])
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
    "INCOMPLETE",
    "Positions",
    "arrange_positions",
    "grid_positions",
    "index_positions",
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

#: Accepted values of ``incomplete`` (what to do with an aborted last block of a scan).
INCOMPLETE = ("pad", "drop", "error")

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
    order : ndarray or None
        (n_positions,) int64: the source frame (its index in the order the translator read the
        frames) measured at each grid position, ``-1`` where nothing was measured (an aborted
        scan). None means the identity: frame ``i`` at position ``i``.
    snake : bool
        The frames were reordered from a snake (serpentine) scan.
    notes : list of str
        What was done to the positions (reordering, padding, dropping), one sentence each.
    """

    dims: list[Dim]
    values: np.ndarray | None = None
    extra: dict[str, np.ndarray] = field(default_factory=dict)
    extra_units: dict[str, str] = field(default_factory=dict)
    source: str = ""
    order: np.ndarray | None = None
    snake: bool = False
    notes: list[str] = field(default_factory=list)

    @property
    def shape(self) -> tuple[int, ...]:
        """Scan shape, slow to fast."""
        return tuple(len(d) for d in self.dims)

    @property
    def n_positions(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))

    @property
    def valid(self) -> np.ndarray | None:
        """(n_positions,) bool: where a frame was measured; None if every position was."""
        if self.order is None or bool((self.order >= 0).all()):
            return None
        return self.order >= 0

    def source_index(self, position: int) -> int:
        """The source frame measured at ``position`` (``-1``: none)."""
        return position if self.order is None else int(self.order[position])

    def arrange(self, per_frame: np.ndarray, fill: float = math.nan) -> np.ndarray:
        """Per-source-frame values (first axis) → per-position values, ``fill`` where missing.

        >>> pos = Positions([Dim("X", "", np.arange(3.0))], order=np.array([2, -1, 0]))
        >>> pos.arrange(np.array([10.0, 11.0, 12.0])).tolist()
        [12.0, nan, 10.0]
        """
        per_frame = np.asarray(per_frame)
        if self.order is None:
            return per_frame.copy()
        dtype = np.result_type(per_frame.dtype, np.asarray(fill).dtype)
        out = np.full((self.n_positions, *per_frame.shape[1:]), fill, dtype=dtype)
        ok = self.order >= 0
        out[ok] = per_frame[self.order[ok]]
        return out

    def record(self) -> dict[str, Any]:
        """Attributes describing how frames fill the grid (for ``Measurement_000``)."""
        valid = self.valid
        return {
            "positions_source": self.source,
            "snake": self.snake,
            "missing_positions": 0 if valid is None else int((~valid).sum()),
            "positions_notes": list(self.notes),
        }

    def with_valid_dataset(self) -> Positions:
        """Add the ``valid_positions`` extra dataset when some positions were not measured."""
        valid = self.valid
        if valid is not None:
            self.extra["valid_positions"] = valid.copy()
            self.extra_units["valid_positions"] = ""
        return self


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


def grid_positions(
    grid: str | Mapping[str, int],
    n: int,
    *,
    what: str = "images",
    snake: bool = False,
    incomplete: str | None = None,
) -> Positions:
    """Index-valued dimensions of a regular grid (``grid="Y=6,X=8"``) over ``n`` positions.

    Parameters
    ----------
    grid : dict or str
        Slow to fast, see :func:`parse_grid`.
    n : int
        Number of frames, in scan order.
    what : str
        What the frames are, for messages.
    snake : bool
        The fastest dimension runs backwards on every other row (a serpentine scan): those frames
        are put back in order.
    incomplete : {"pad", "drop", "error"} or None
        Fewer frames than the grid (an aborted scan, less than one block of the slowest dimension
        missing): keep the grid full and mark the missing positions (``"pad"``), drop the
        incomplete block (``"drop"``), or refuse (``"error"``, and None).

    Raises
    ------
    InputError
        The grid's size differs from ``n`` (the message gives both counts) and ``incomplete``
        does not allow it.
    """
    parsed = parse_grid(grid)
    sizes = [size for _, _, size in parsed]
    total = math.prod(sizes)
    text = " × ".join(f"{name}={size}" for name, _, size in parsed)
    block = math.prod(sizes[1:])
    if total != n and (incomplete in (None, "error") or n > total or total - n >= block):
        hint = ""
        if incomplete not in (None, "error") and n < total:
            hint = f" (more than one block of {parsed[0][0]} is missing: not an aborted scan)"
        raise InputError(f"grid {text} has {total} positions but there are {n} {what}{hint}")
    source = f"grid {','.join(f'{nm}={s}' for nm, _, s in parsed)}"
    order, sizes, notes = grid_order(
        n, sizes, snake, incomplete or "error", [nm for nm, _, _ in parsed], source
    )
    dims = [
        Dim(name, unit, np.arange(size, dtype=np.float64))
        for (name, unit, _), size in zip(parsed, sizes, strict=True)
    ]
    identity = bool((order == np.arange(order.size)).all())
    return Positions(
        dims, source=source, order=None if identity else order, snake=snake, notes=notes
    )


def arrange_positions(
    n: int,
    sizes: Sequence[int],
    *,
    snake: bool = False,
    incomplete: str = "pad",
    names: Sequence[str] | None = None,
    source: str = "",
) -> tuple[np.ndarray, list[int], list[str]]:
    """Where ``n`` frames measured in scan order land in a grid of ``sizes`` (slow to fast).

    Parameters
    ----------
    n : int
        Frames measured, in scan order (at most ``prod(sizes)``, and fewer only by less than one
        block of the slowest dimension).
    sizes : sequence of int
        The planned grid, slow to fast.
    snake : bool
        The fastest dimension runs backwards on odd rows (rows counted over the whole scan).
    incomplete : {"pad", "drop", "error"}
        What to do when ``n < prod(sizes)``, see :func:`~pyscatter.translators.grid_inference.infer_grid`.
    names : sequence of str, optional
        Dimension names, for messages.
    source : str
        Where the frames come from, for messages.

    Returns
    -------
    order : ndarray
        (n_positions,) int64: the frame at each grid position, ``-1`` where none.
    sizes : list of int
        The grid kept (the slowest size shrinks with ``incomplete="drop"``).
    notes : list of str
        What was done, one sentence each (also logged as warnings for incomplete scans).

    Examples
    --------
    >>> order, sizes, notes = arrange_positions(5, [2, 3], snake=True)
    >>> order.tolist(), sizes
    ([0, 1, 2, -1, 4, 3], [2, 3])
    """
    return grid_order(n, list(sizes), snake, incomplete, names, source)


def grid_order(
    n: int,
    sizes: list[int],
    snake: bool,
    incomplete: str,
    names: Sequence[str] | None,
    source: str,
    *,
    log: bool = True,
) -> tuple[np.ndarray, list[int], list[str]]:
    if incomplete not in INCOMPLETE:
        raise InputError(
            f"unsupported incomplete={incomplete!r}; expected one of {', '.join(INCOMPLETE)}"
        )
    sizes = [int(s) for s in sizes]
    names = list(names) if names else [f"Dim{k}" for k in range(len(sizes))]
    total = math.prod(sizes)
    block = math.prod(sizes[1:])
    notes: list[str] = []
    where = f"{source}: " if source else ""
    if n > total or n <= 0:
        raise InputError(f"{where}{n} frames do not fit a grid of {total} positions")
    keep = n
    if n < total:
        full = n // block
        shape = " × ".join(f"{nm}={s}" for nm, s in zip(names, sizes, strict=True))
        partial = f"the last {names[0]} block has {n - full * block} of its {block} positions"
        if incomplete == "error":
            raise InputError(
                f"{where}the scan was aborted: {partial}; pass incomplete='pad' to keep the grid "
                "and mark the missing positions, or incomplete='drop' to drop that block"
            )
        if incomplete == "drop":
            if full == 0:
                raise InputError(
                    f"{where}the scan was aborted within its first {names[0]} block: "
                    "nothing would be left with incomplete='drop'"
                )
            keep = full * block
            sizes = [full, *sizes[1:]]
            kept = " × ".join(f"{nm}={s}" for nm, s in zip(names, sizes, strict=True))
            note = (
                f"the scan was aborted ({partial}); that block was dropped: {n - keep} frames "
                f"left out, grid {kept}"
            )
        else:
            note = (
                f"the scan was aborted ({partial}); the grid {shape} is kept full: the "
                f"{total - n} positions never measured are marked false in valid_positions, "
                "carry their nominal values, and their frames are zeros"
            )
        notes.append(note)
        if log:
            logger.warning("%s%s", where, note)
    width = sizes[-1]
    i = np.arange(keep, dtype=np.int64)
    row, col = np.divmod(i, width)
    if snake:
        col = np.where(row % 2 == 1, width - 1 - col, col)
        notes.append(
            f"snake scan: {names[-1]} ran backwards on every other row; those frames were put "
            "back in order (snake = true)"
        )
        if log:
            logger.info("%s%s", where, notes[-1])
    order = np.full(math.prod(sizes), -1, dtype=np.int64)
    order[row * width + col] = i
    return order, sizes, notes


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
    numeric = [name for name, _ in labels if _is_number(name)]
    if numeric:
        raise FileFormatError(
            f"positions file {path}, line {lines[0][0]}: header holds the number "
            f"{numeric[0]!r}; expected a header of names like 'Y[um],X[um]' (slow to fast)"
        )
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


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


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
