"""Measured motor values → a scan grid: sizes, order (nested, snake), aborted rows.

Builds on the positions model of :mod:`pyscatter.translators.positions`.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence

import numpy as np

from pyscatter.errors import InputError
from pyscatter.io.usid import Dim
from pyscatter.translators.positions import (
    CONSTANT_RTOL,
    INCOMPLETE,
    JITTER_FRACTION,
    Positions,
    grid_order,
    index_positions,
)

__all__ = ["grid_shape", "infer_grid"]

logger = logging.getLogger("pyscatter.translators.positions")


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


def infer_grid(
    values: np.ndarray,
    labels: Sequence[tuple[str, str]],
    *,
    source: str,
    snake: bool | str = "auto",
    incomplete: str = "pad",
) -> Positions:
    """Position dims from measured values: the nested grid they form, else one ``Position`` dim.

    Parameters
    ----------
    values : ndarray
        (n_positions, n_dims) measured values in scan order, dims slow to fast.
    labels : sequence of (name, unit)
        Of the columns.
    source : str
        Where the values come from (for messages and the file's attributes).
    snake : bool or "auto"
        Whether the fastest dimension runs backwards on every other row (serpentine scan);
        ``"auto"`` detects it from the values.
    incomplete : {"pad", "drop", "error"}
        An aborted scan (the last block of the slowest dimension incomplete): keep the grid full
        and mark the missing positions (``"pad"``), drop the incomplete block (``"drop"``), or
        refuse (``"error"``). A warning says what was done.

    Returns
    -------
    Positions
        On a grid: dims with the level means as nominal values, ``values`` the read-backs in grid
        order (nominal values where nothing was measured), ``order`` the frame of each position
        when frames were reordered or are missing.
        Otherwise one dim ``Position`` of index values and the columns in ``extra`` (named
        ``measured_<name>``), with a logged warning.

    Raises
    ------
    InputError
        Bad ``snake`` or ``incomplete``; an aborted scan with ``incomplete="error"``.
    """
    if snake not in (True, False, "auto"):
        raise InputError(f"unsupported snake={snake!r}; expected True, False or 'auto'")
    if incomplete not in INCOMPLETE:
        raise InputError(
            f"unsupported incomplete={incomplete!r}; expected one of {', '.join(INCOMPLETE)}"
        )
    values = np.asarray(values, dtype=np.float64)
    n, d = values.shape
    names = [name for name, _ in labels]
    found = grid_shape(values) if snake is not True else None
    if found is not None:
        shape, levels = found
        dims = [Dim(name, unit, lv) for (name, unit), lv in zip(labels, levels, strict=True)]
        logger.info(
            "%s: positions form a %s grid",
            source,
            " × ".join(f"{name}={size}" for name, size in zip(names, shape, strict=True)),
        )
        return Positions(dims, values=values, source=source)
    sizes = _planned_sizes(values) if d >= 2 and n >= 2 else None
    for sn in (False, True) if snake == "auto" else (bool(snake),):
        if sizes is not None and _arranged_grid(values, sizes, sn) is not None:
            return _planned_grid(values, labels, sizes, sn, incomplete, source)
    return _ungridded(values, labels, source)


def _planned_grid(
    values: np.ndarray,
    labels: Sequence[tuple[str, str]],
    sizes: list[int],
    snake: bool,
    incomplete: str,
    source: str,
) -> Positions:
    """The grid of planned ``sizes`` that ``values`` were found to fill, scanned ``snake`` or
    not, with the ``incomplete`` policy applied (may warn, drop the last block or raise)."""
    names = [name for name, _ in labels]
    order, kept, notes = grid_order(len(values), sizes, snake, incomplete, names, source)
    arranged = _arranged_grid(values, kept, snake, order=order)
    assert arranged is not None  # a subset of a valid arrangement is valid
    grid_values, levels = arranged
    dims = [Dim(name, unit, lv) for (name, unit), lv in zip(labels, levels, strict=True)]
    identity = bool((order == np.arange(order.size)).all())
    return Positions(
        dims,
        values=grid_values,
        source=source,
        order=None if identity else order,
        snake=snake,
        notes=notes,
    )


def _ungridded(values: np.ndarray, labels: Sequence[tuple[str, str]], source: str) -> Positions:
    """One dim ``Position`` of index values, the measured columns kept as extras (and a warning)."""
    names = [name for name, _ in labels]
    logger.warning(
        "%s: the %d positions of %s do not form a nested grid (slow to fast, each dimension "
        "constant over blocks of the faster ones, possibly a snake scan or an aborted last "
        "block); stored as one dimension 'Position' of index values, with the measured columns "
        "kept as datasets %s",
        source,
        values.shape[0],
        ", ".join(names),
        ", ".join(f"measured_{nm}" for nm in names),
    )
    pos = index_positions(values.shape[0], "Position", source=source)
    pos.extra = {f"measured_{name}": values[:, k].copy() for k, (name, _) in enumerate(labels)}
    pos.extra_units = {f"measured_{name}": unit for name, unit in labels}
    pos.notes = ["positions form no grid: kept as measured, one dimension 'Position'"]
    return pos


def _first_change(column: np.ndarray) -> int:
    """Length of the first run of one level in ``column`` (jitter-tolerant), or its length."""
    if column.size < 2:
        return int(column.size)
    steps = np.abs(np.diff(column))
    scale = max(1.0, float(np.max(np.abs(column))))
    # Within a run the differences are read-back jitter; a run of a slower dimension has at least
    # two points, so at least half the differences are jitter and their lower quartile measures it.
    threshold = max(16.0 * float(np.percentile(steps, 25)), CONSTANT_RTOL * scale)
    jumps = np.flatnonzero(steps > threshold)
    return int(jumps[0]) + 1 if jumps.size else int(column.size)


def _planned_sizes(values: np.ndarray) -> list[int] | None:
    """Grid sizes (slow to fast) of a possibly aborted scan, from the run lengths of its first block."""
    n, d = values.shape
    blocks = []
    limit = n
    for k in range(d - 1):
        limit = _first_change(values[:limit, k])
        blocks.append(limit)
    sizes = [math.ceil(n / blocks[0])]
    for k in range(1, d - 1):
        if blocks[k] < 1 or blocks[k - 1] % blocks[k]:
            return None
        sizes.append(blocks[k - 1] // blocks[k])
    sizes.append(blocks[-1])
    if min(sizes) < 1:
        return None
    return sizes


def _arranged_grid(
    values: np.ndarray, sizes: list[int], snake: bool, *, order: np.ndarray | None = None
) -> tuple[np.ndarray, list[np.ndarray]] | None:
    """Grid-ordered values (nominal where unmeasured) and level means, if the values fit the grid."""
    n, d = values.shape
    if order is None:
        try:
            order, sizes, _ = grid_order(n, sizes, snake, "pad", None, "", log=False)
        except InputError:
            return None
    total = order.size
    measured = order >= 0
    grid = np.full((total, d), np.nan)
    grid[measured] = values[order[measured]]
    shape = tuple(sizes)
    levels = []
    for k in range(d):
        found = _levels_masked(grid[:, k].reshape(shape), measured.reshape(shape), k)
        if found is None:
            return None
        levels.append(found)
    index = np.unravel_index(np.flatnonzero(~measured), shape)
    for k in range(d):
        grid[~measured, k] = levels[k][index[k]]
    return grid, levels


def _levels_masked(v: np.ndarray, ok: np.ndarray, axis: int) -> np.ndarray | None:
    """Like :func:`_levels` over the measured entries ``ok`` only (every level must have one)."""
    others = tuple(a for a in range(v.ndim) if a != axis)
    counts = ok.sum(axis=others) if others else ok.astype(np.int64)
    if np.any(counts == 0):
        return None
    sums = np.where(ok, v, 0.0).sum(axis=others) if others else np.where(ok, v, 0.0)
    means = sums / counts
    expanded = np.expand_dims(means, others) if others else means
    spread = float(np.max(np.where(ok, np.abs(v - expanded), 0.0)))
    if v.shape[axis] == 1:
        scale = max(1.0, float(np.max(np.abs(np.where(ok, v, 0.0)))))
        return means if spread <= CONSTANT_RTOL * scale else None
    step = float(np.min(np.diff(np.sort(means))))
    if step <= 0 or spread > JITTER_FRACTION * step:
        return None
    return means
