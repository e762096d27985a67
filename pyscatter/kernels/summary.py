"""Series summaries, the pure part: values at chosen abscissae, the quality filter, and the
reduction of the positions that share a scan value (mean or median with a propagated error).

Nothing here reads a file. :mod:`pyscatter.processes.summary` reads the results of a step,
calls these functions and writes what they return.

Examples
--------
>>> import numpy as np
>>> from pyscatter.kernels.summary import reduce_groups
>>> values = np.array([[1.0], [3.0], [10.0]])
>>> sigma = np.array([[0.3], [0.4], [1.0]])
>>> good = np.ones((3, 1), dtype=bool)
>>> out = reduce_groups(values, sigma, good, np.array([0, 0, 1]), 2, "mean")
>>> out.value[:, 0].tolist(), out.sigma[:, 0].tolist(), out.n_good[:, 0].tolist()
([2.0, 10.0], [0.25, 1.0], [2, 1])
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = [
    "MEDIAN_EFFICIENCY",
    "REDUCTIONS",
    "Reduced",
    "group_labels",
    "interpolate_at",
    "quality_mask",
    "reduce_groups",
]

#: How positions sharing a scan value are combined: ``none`` keeps every position.
REDUCTIONS = ("mean", "median", "none")
#: sigma(median) / sigma(mean) of normal errors for many values: sqrt(pi / 2).
MEDIAN_EFFICIENCY = float(np.sqrt(np.pi / 2.0))

FloatArray = NDArray[np.float64]


def interpolate_at(
    x: ArrayLike, y: ArrayLike, sigma: ArrayLike | None, targets: ArrayLike
) -> tuple[FloatArray, FloatArray]:
    """Spectra ``y`` (n, m) over the increasing axis ``x`` (m,) at ``targets`` (k,), linearly.

    The error of ``(1 - w) y_i + w y_{i+1}`` is ``sqrt((1 - w)^2 s_i^2 + w^2 s_{i+1}^2)``
    (independent bins); without ``sigma`` it is NaN. A target outside ``x`` gives NaN.

    Returns
    -------
    values, errors : ndarray
        (n, k) float64 each.
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.atleast_2d(np.asarray(y, dtype=np.float64))
    t = np.atleast_1d(np.asarray(targets, dtype=np.float64))
    i = np.clip(np.searchsorted(x, t, side="right") - 1, 0, x.size - 2)
    w = (t - x[i]) / (x[i + 1] - x[i])
    inside = (t >= x[0]) & (t <= x[-1])
    values = (1.0 - w) * y[:, i] + w * y[:, i + 1]
    if sigma is None:
        errors = np.full_like(values, np.nan)
    else:
        s = np.atleast_2d(np.asarray(sigma, dtype=np.float64))
        errors = np.sqrt(((1.0 - w) * s[:, i]) ** 2 + (w * s[:, i + 1]) ** 2)
    values[:, ~inside] = np.nan
    errors[:, ~inside] = np.nan
    return values, errors


def quality_mask(
    shape: tuple[int, ...],
    *,
    r2: ArrayLike | None = None,
    status: ArrayLike | None = None,
    min_r2: float | None = None,
    allowed_status: ArrayLike | None = None,
) -> NDArray[np.bool_]:
    """True where a result passes the filter: ``R2 >= min_r2`` and a status in the allowed codes.

    A filter that is not asked for (``min_r2`` or ``allowed_status`` None) passes everything;
    a NaN R2 fails ``min_r2``.
    """
    good = np.ones(shape, dtype=bool)
    if min_r2 is not None and r2 is not None:
        with np.errstate(invalid="ignore"):
            good &= np.asarray(r2, dtype=np.float64).reshape(shape) >= float(min_r2)
    if allowed_status is not None and status is not None:
        good &= np.isin(np.asarray(status).reshape(shape), np.asarray(allowed_status))
    return good


def group_labels(values: ArrayLike) -> tuple[FloatArray, NDArray[np.intp]]:
    """The distinct values (sorted, NaN left out) and the group of each value (-1 for NaN)."""
    v = np.asarray(values, dtype=np.float64).ravel()
    finite = np.isfinite(v)
    unique, inverse = np.unique(v[finite], return_inverse=True)
    labels = np.full(v.shape, -1, dtype=np.intp)
    labels[finite] = inverse.ravel()
    return unique, labels


@dataclass(frozen=True)
class Reduced:
    """The positions of each group combined: (n_groups, n_series) arrays.

    Attributes
    ----------
    value : ndarray
        Mean or median of the good, finite values of the group.
    sigma : ndarray
        Its propagated error: ``sqrt(sum s_i^2) / n`` for the mean, times
        :data:`MEDIAN_EFFICIENCY` for the median of more than two values (the median of two is
        their mean); NaN when a value has no error.
    std : ndarray
        The standard deviation of the values (ddof 1; NaN for fewer than two): their scatter,
        to compare with ``sigma * sqrt(n)``.
    n_good : ndarray
        int32: good, finite values combined.
    """

    value: FloatArray
    sigma: FloatArray
    std: FloatArray
    n_good: NDArray[np.int32]


def reduce_groups(
    values: ArrayLike,
    sigma: ArrayLike | None,
    good: ArrayLike,
    labels: ArrayLike,
    n_groups: int,
    method: str,
) -> Reduced:
    """Combine the rows (positions) of ``values`` (n, k) that share a label, column by column.

    Only rows that are ``good`` and finite count; a group with none gives NaN and ``n_good``
    0. Rows labelled -1 belong to no group. ``method`` is ``"mean"`` or ``"median"``.
    """
    if method not in ("mean", "median"):
        raise ValueError(f"method must be mean or median; got {method!r}")
    v = np.atleast_2d(np.asarray(values, dtype=np.float64))
    n, k = v.shape
    s = np.full_like(v, np.nan) if sigma is None else np.asarray(sigma, np.float64).reshape(n, k)
    use = np.asarray(good, dtype=bool).reshape(n, k) & np.isfinite(v)
    lab = np.asarray(labels, dtype=np.intp).ravel()
    shape = (int(n_groups), k)
    out_v, out_s, out_std = (np.full(shape, np.nan) for _ in range(3))
    n_good = np.zeros(shape, dtype=np.int32)
    for g in range(int(n_groups)):
        rows = lab == g
        for j in range(k):
            sel = rows & use[:, j]
            m = int(sel.sum())
            n_good[g, j] = m
            if m == 0:
                continue
            x, e = v[sel, j], s[sel, j]
            propagated = float(np.sqrt(np.sum(e**2)) / m)
            if method == "mean":
                out_v[g, j], out_s[g, j] = float(np.mean(x)), propagated
            else:
                out_v[g, j] = float(np.median(x))
                out_s[g, j] = propagated * (MEDIAN_EFFICIENCY if m > 2 else 1.0)
            if m > 1:
                out_std[g, j] = float(np.std(x, ddof=1))
    return Reduced(out_v, out_s, out_std, n_good)
