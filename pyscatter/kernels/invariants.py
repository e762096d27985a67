"""SAXS integral parameters of many I(q) curves at once: Guinier, invariant, Porod constant.

Every function takes a block of curves ``intensity`` (rows × q) on one q axis, with their 1-sigma
errors (or None), and works on all rows together: the linear fits are sums along the q axis
with a per-row mask, and only the loop over iterations of the automatic Guinier range is in
Python. With a constant ``background`` ``B`` subtracted from every curve:

Guinier
    ``ln(I - B) = ln I0 - (Rg^2 / 3) q^2``, a weighted straight line in ``q^2`` (weights
    ``((I - B) / sigma)^2``) over a low-q range: given, or found automatically as the largest
    range from the first valid bin with ``q_max Rg <= qrg_max`` (default 1.3): fit the first
    ``min_points`` bins, then refit over every bin with ``q <= qrg_max / Rg`` until the range
    stops changing.
Invariant
    ``Q* = integral q^2 (I - B) dq``, trapezoid over the valid bins of the q range; optionally
    plus ``integral_0^q_first q^2 I0 exp(-Rg^2 q^2 / 3) dq`` (Guinier extrapolation to q = 0,
    Gauss-Legendre quadrature) and ``K / q_last`` (Porod extrapolation ``I - B = K / q^4`` to
    infinity).
Porod constant
    ``K = mean of q^4 (I - B)`` over the valid bins of a high-q range.

Errors are linear propagation of the errors of the bins (no covariance between bins): the
Guinier line's parameters, ``K`` and ``Q*`` (trapezoid, both extrapolations and their
correlation through the shared bins) are linear in ``I`` or in ``ln I``, so the propagation is
exact to first order. Without errors (``sigma=None``) the Guinier errors are scaled by the
reduced chi^2 of unit-weight fits (as ``curve_fit(absolute_sigma=False)``), the error of ``K``
is the standard error of the mean of the ``q^4 (I - B)`` values, and that of ``Q*`` is NaN.

Nothing raises in the middle of a block: a row that cannot be treated gets NaN values and an
:class:`InvariantStatus` code.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

import numpy as np
from numpy.typing import ArrayLike, NDArray

from pyscatter.errors import InputError

__all__ = [
    "InvariantResult",
    "InvariantStatus",
    "GuinierFit",
    "fit_guinier",
    "guinier_integrals",
    "porod_constant",
    "saxs_invariants",
    "trapezoid_weights",
]

FloatArray = NDArray[np.float64]
BoolArray = NDArray[np.bool_]

#: Gauss-Legendre nodes and weights on [-1, 1] of the Guinier extrapolation (exact for the
#: smooth q^2 exp(-a q^2) on [0, q_first] with q_first Rg <= a few)
_GL_NODES, _GL_WEIGHTS = np.polynomial.legendre.leggauss(32)


class InvariantStatus(IntEnum):
    """Outcome at one position (stored as int8); codes shared with
    :class:`~pyscatter.kernels.fitting.FitStatus` mean the same.

    OK
        Every quantity computed.
    NOT_CONVERGED
        The automatic Guinier range was still changing after ``max_iter`` refits: Rg and I0
        (and a Guinier-extrapolated Q*) are NaN.
    TOO_FEW_POINTS
        Fewer than ``min_points`` valid bins (finite intensity, positive sigma) in the q range,
        the given Guinier range or the Porod range: what needs them is NaN.
    FAILED
        A non-finite result (e.g. an infinite intensity).
    NO_GUINIER_RANGE
        No Guinier range: the line's slope is not negative (Rg^2 <= 0) or fewer than
        ``min_points`` bins have ``q Rg <= qrg_max``. Rg, I0 are NaN.
    NEGATIVE_INTENSITY
        A bin of the Guinier range holds ``I - B <= 0`` (no logarithm). Rg, I0 are NaN.
    """

    OK = 0
    NOT_CONVERGED = 3
    TOO_FEW_POINTS = 4
    FAILED = 5
    NO_GUINIER_RANGE = 6
    NEGATIVE_INTENSITY = 7


@dataclass(frozen=True)
class GuinierFit:
    """Weighted lines ``ln(I - B) = a + b q^2`` of every row.

    ``ca``, ``cb`` (rows × q) are the derivatives of ``a`` and ``b`` with respect to
    ``ln(I - B)`` of each bin (zero outside the range): ``a = sum ca y``, ``b = sum cb y``.
    """

    a: FloatArray
    b: FloatArray
    var_a: FloatArray
    var_b: FloatArray
    ca: FloatArray
    cb: FloatArray
    used: BoolArray
    status: NDArray[np.int8]

    @property
    def ok(self) -> BoolArray:
        return self.status == InvariantStatus.OK

    @property
    def rg(self) -> FloatArray:
        with np.errstate(invalid="ignore"):
            return np.where(self.ok, np.sqrt(-3.0 * self.b), np.nan)

    @property
    def rg_sigma(self) -> FloatArray:
        with np.errstate(invalid="ignore", divide="ignore"):
            return 1.5 * np.sqrt(self.var_b) / self.rg

    @property
    def i0(self) -> FloatArray:
        return np.where(self.ok, np.exp(self.a), np.nan)

    @property
    def i0_sigma(self) -> FloatArray:
        return self.i0 * np.sqrt(self.var_a)


@dataclass(frozen=True)
class InvariantResult:
    """Per-row results of :func:`saxs_invariants` (lengths in the inverse unit of q)."""

    rg: FloatArray
    rg_sigma: FloatArray
    i0: FloatArray
    i0_sigma: FloatArray
    guinier_q_min: FloatArray
    guinier_q_max: FloatArray
    invariant: FloatArray
    invariant_sigma: FloatArray
    porod_constant: FloatArray
    porod_constant_sigma: FloatArray
    status: NDArray[np.int8]


def _as_block(q: ArrayLike, intensity: ArrayLike, sigma: ArrayLike | None):
    q = np.asarray(q, dtype=np.float64)
    y = np.atleast_2d(np.asarray(intensity, dtype=np.float64))
    if q.ndim != 1 or y.shape[1] != q.size:
        raise InputError(f"intensity has shape {y.shape}; expected (rows, {q.size}) for the q axis")
    if q.size > 1 and not np.all(np.diff(q) > 0):
        raise InputError("the q axis must be increasing")
    s = None
    if sigma is not None:
        s = np.broadcast_to(np.asarray(sigma, dtype=np.float64), y.shape)
    return q, y, s


def valid_bins(
    q: FloatArray, y: FloatArray, sigma: FloatArray | None, q_range: tuple[float, float] | None
) -> BoolArray:
    """Finite intensity (and positive, finite sigma) inside ``q_range`` (inclusive)."""
    valid = np.isfinite(y)
    if sigma is not None:
        valid &= np.isfinite(sigma) & (sigma > 0)
    if q_range is not None:
        valid &= ((q >= q_range[0]) & (q <= q_range[1]))[None, :]
    return valid


def trapezoid_weights(q: FloatArray, valid: BoolArray) -> FloatArray:
    """Weights ``t`` with ``sum t f = trapezoid of f over the valid bins of each row``.

    Gaps (invalid bins) are bridged by the trapezoid between their valid neighbours.
    """
    n = q.size
    idx = np.broadcast_to(np.arange(n), valid.shape)
    prev = np.maximum.accumulate(np.where(valid, idx, -1), axis=1)  # last valid at or before
    nxt = np.minimum.accumulate(np.where(valid, idx, n)[:, ::-1], axis=1)[:, ::-1]
    prev = np.concatenate([np.full((valid.shape[0], 1), -1), prev[:, :-1]], axis=1)
    nxt = np.concatenate([nxt[:, 1:], np.full((valid.shape[0], 1), n)], axis=1)
    left = np.where(prev >= 0, q[np.clip(prev, 0, n - 1)], q[None, :])
    right = np.where(nxt < n, q[np.clip(nxt, 0, n - 1)], q[None, :])
    return np.where(valid, 0.5 * (right - left), 0.0)


def _line(x: FloatArray, y: FloatArray, w: FloatArray):
    """Weighted lines ``y = a + b x`` of every row (weights 0 outside the range)."""
    s, sx, sxx = w.sum(1), (w * x).sum(1), (w * x * x).sum(1)
    with np.errstate(invalid="ignore", divide="ignore"):
        d = s * sxx - sx * sx
        ca = w * (sxx[:, None] - x * sx[:, None]) / d[:, None]
        cb = w * (s[:, None] * x - sx[:, None]) / d[:, None]
        var_a, var_b = sxx / d, s / d
    a, b = (ca * y).sum(1), (cb * y).sum(1)
    chi2 = (w * (y - a[:, None] - b[:, None] * x) ** 2).sum(1)
    return a, b, var_a, var_b, ca, cb, chi2


def _auto_range(q, x, logs, w_all, valid, positive, status, qrg_max, min_points, max_iter):
    """The automatic Guinier ranges (``status`` is updated in place).

    Start from the first ``min_points`` valid bins (doubled while their slope is not negative:
    a flat, noisy start), then refit over every valid bin with ``q <= qrg_max / Rg`` until
    the range stops changing; a range flipping between two sets keeps the smaller one.
    """
    rank = np.cumsum(valid, axis=1)
    n_valid = rank[:, -1]
    n_start = np.full(valid.shape[0], min_points)
    used = valid & (rank <= n_start[:, None])
    starting = status == 0
    active = status == 0
    previous = used.copy()
    for _ in range(max_iter + 32):
        if not active.any():
            break
        a, b = _line(x, logs, w_all * used)[:2]
        negative = active & (used & ~positive).any(1)
        status[negative] = InvariantStatus.NEGATIVE_INTENSITY
        rg2 = np.where(np.isfinite(a), -3.0 * b, np.nan)
        grow = active & starting & ~negative & ~(rg2 > 0) & (n_start < n_valid)
        n_start[grow] *= 2
        used[grow] = valid[grow] & (rank[grow] <= n_start[grow, None])
        with np.errstate(invalid="ignore", divide="ignore"):
            q_max = qrg_max / np.sqrt(np.where(rg2 > 0, rg2, np.nan))
        new = valid & (q[None, :] <= q_max[:, None])
        lost = active & ~negative & ~grow & (~(rg2 > 0) | (new.sum(1) < min_points))
        status[lost] = InvariantStatus.NO_GUINIER_RANGE
        active &= status == 0
        step = active & ~grow
        starting &= ~step
        changed = step & (new != used).any(1)
        cycle = changed & (new == previous).all(1)
        previous[step] = used[step]
        used[changed] = new[changed]
        used[cycle] &= previous[cycle]
        active = grow | (changed & ~cycle)
    status[active] = InvariantStatus.NOT_CONVERGED
    return used


def fit_guinier(
    q: ArrayLike,
    intensity: ArrayLike,
    sigma: ArrayLike | None = None,
    *,
    q_range: tuple[float, float] | None = None,
    guinier_range: tuple[float, float] | None = None,
    background: float = 0.0,
    qrg_max: float = 1.3,
    min_points: int = 5,
    max_iter: int = 50,
) -> GuinierFit:
    """Guinier lines of every row: over ``guinier_range``, or the automatic range.

    See the module docstring for the method; ``q_range`` limits the bins considered.
    """
    qv, y, s = _as_block(q, intensity, sigma)
    valid = valid_bins(qv, y, s, q_range)
    net = y - background
    positive = net > 0
    with np.errstate(invalid="ignore", divide="ignore"):
        logs = np.where(valid & positive, np.log(np.where(positive, net, 1.0)), 0.0)
        w_all = np.where(valid & positive, (net / s) ** 2 if s is not None else 1.0, 0.0)
    x = np.broadcast_to(qv * qv, y.shape)
    m = y.shape[0]
    status = np.zeros(m, dtype=np.int8)
    if guinier_range is not None:
        used = valid & ((qv >= guinier_range[0]) & (qv <= guinier_range[1]))[None, :]
        status[used.sum(1) < min_points] = InvariantStatus.TOO_FEW_POINTS
        fit = _line(x, logs, w_all * used)
    else:
        status[valid.sum(1) < min_points] = InvariantStatus.TOO_FEW_POINTS
        used = _auto_range(
            qv, x, logs, w_all, valid, positive, status, qrg_max, min_points, max_iter
        )
        fit = _line(x, logs, w_all * used)
    a, b, var_a, var_b, ca, cb, chi2 = fit
    negative = (used & ~positive).any(1)
    status[(status == 0) & negative] = InvariantStatus.NEGATIVE_INTENSITY
    status[(status == 0) & ~(b < 0)] = InvariantStatus.NO_GUINIER_RANGE
    if s is None:  # unit weights: errors from the scatter about the line
        with np.errstate(invalid="ignore", divide="ignore"):
            scale = chi2 / (used.sum(1) - 2)
        var_a, var_b = var_a * scale, var_b * scale
    status[(status == 0) & ~(np.isfinite(a) & np.isfinite(var_a) & np.isfinite(var_b))] = (
        InvariantStatus.FAILED
    )
    bad = status != 0
    nan = np.where(bad, np.nan, 0.0)
    return GuinierFit(a + nan, b + nan, var_a + nan, var_b + nan, ca, cb, used, status)


def guinier_integrals(fit: GuinierFit, q_first: FloatArray) -> tuple[FloatArray, FloatArray]:
    """``G = integral_0^q_first q^2 exp(a + b q^2) dq`` and ``H = dG/db`` (the same with q^4)."""
    half = 0.5 * q_first[:, None]
    qq = half * (_GL_NODES[None, :] + 1.0)
    f = np.exp(fit.a[:, None] + fit.b[:, None] * qq * qq) * qq * qq
    g = (half * _GL_WEIGHTS * f).sum(1)
    h = (half * _GL_WEIGHTS * f * qq * qq).sum(1)
    return g, h


def porod_constant(
    q: FloatArray,
    net: FloatArray,
    sigma: FloatArray | None,
    used: BoolArray,
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """``(K, sigma_K, dK/dI)``: the mean of ``q^4 (I - B)`` over the ``used`` bins of each row."""
    n = used.sum(1)
    with np.errstate(invalid="ignore", divide="ignore"):
        grad = np.where(used, q**4, 0.0) / n[:, None]
        k = (grad * np.where(used, net, 0.0)).sum(1)
        if sigma is not None:
            var = (grad**2 * np.where(used, sigma, 0.0) ** 2).sum(1)
        else:
            dev = np.where(used, q**4 * net - k[:, None], 0.0)
            var = (dev**2).sum(1) / ((n - 1) * n)
    return k, np.sqrt(var), grad


def saxs_invariants(
    q: ArrayLike,
    intensity: ArrayLike,
    sigma: ArrayLike | None = None,
    *,
    q_range: tuple[float, float] | None = None,
    guinier_range: tuple[float, float] | None = None,
    porod_range: tuple[float, float] | None = None,
    background: float = 0.0,
    qrg_max: float = 1.3,
    min_points: int = 5,
    guinier_extrapolation: bool = False,
    porod_extrapolation: bool = False,
    max_iter: int = 50,
) -> InvariantResult:
    """Guinier Rg and I0, invariant Q* and Porod constant K of every row, with errors.

    Parameters
    ----------
    q : array (n,)
        Increasing q axis (any unit; lengths come in its inverse unit).
    intensity : array (rows, n)
    sigma : array (rows, n), optional
        1-sigma errors of the intensities; None: see the module docstring.
    q_range : (float, float), optional
        Only bins with ``lo <= q <= hi``; default: the whole axis.
    guinier_range : (float, float), optional
        The Guinier fit range; default: automatic (``qrg_max``).
    porod_range : (float, float), optional
        The range whose mean ``q^4 (I - B)`` is K; default: the upper quarter of the q range.
    background : float
        Constant subtracted from every intensity before anything.
    qrg_max : float
        Upper limit of ``q Rg`` of the automatic Guinier range.
    min_points : int
        Fewest bins of a Guinier or Porod range (and of the q range).
    guinier_extrapolation, porod_extrapolation : bool
        Add the Guinier part ``[0, q_first]`` and the Porod tail ``[q_last, inf)`` to Q*.
    max_iter : int
        Refits of the automatic Guinier range.

    Returns
    -------
    InvariantResult
    """
    qv, y, s = _as_block(q, intensity, sigma)
    if q_range is None:
        q_range = (float(qv[0]), float(qv[-1]))
    if porod_range is None:
        lo, hi = max(q_range[0], qv[0]), min(q_range[1], qv[-1])
        porod_range = (hi - 0.25 * (hi - lo), hi)
    valid = valid_bins(qv, y, s, q_range)
    net = y - background
    status = np.zeros(y.shape[0], dtype=np.int8)
    status[valid.sum(1) < min_points] = InvariantStatus.TOO_FEW_POINTS

    guinier = fit_guinier(
        qv, y, s, q_range=q_range, guinier_range=guinier_range, background=background,
        qrg_max=qrg_max, min_points=min_points, max_iter=max_iter,
    )  # fmt: skip
    porod_used = valid & ((qv >= porod_range[0]) & (qv <= porod_range[1]))[None, :]
    k, k_sigma, k_grad = porod_constant(qv, net, s, porod_used)
    few_porod = porod_used.sum(1) < min_points
    k[few_porod] = k_sigma[few_porod] = np.nan

    t = trapezoid_weights(qv, valid) * qv * qv
    netv = np.where(valid, net, 0.0)
    total = (t * netv).sum(1)
    grad = t.copy()
    if guinier_extrapolation:
        q_first = qv[np.argmax(valid, axis=1)]
        g, h = guinier_integrals(guinier, q_first)
        total = total + g
        with np.errstate(invalid="ignore", divide="ignore"):
            inv_net = np.where(guinier.used, 1.0 / np.where(guinier.used, net, 1.0), 0.0)
        grad = grad + (g[:, None] * guinier.ca + h[:, None] * guinier.cb) * inv_net
    if porod_extrapolation:
        q_last = qv[qv.size - 1 - np.argmax(valid[:, ::-1], axis=1)]
        total = total + k / q_last
        grad = grad + k_grad / q_last[:, None]
    if s is not None:
        with np.errstate(invalid="ignore"):
            total_sigma = np.sqrt((grad**2 * np.where(valid | guinier.used, s, 0.0) ** 2).sum(1))
        total_sigma = np.where(np.isfinite(total), total_sigma, np.nan)
    else:
        total_sigma = np.full_like(total, np.nan)

    for code in (guinier.status, np.where(few_porod, InvariantStatus.TOO_FEW_POINTS, 0)):
        status = np.where(status == 0, code, status).astype(np.int8)
    total[valid.sum(1) < min_points] = np.nan
    if porod_extrapolation:
        total[few_porod] = np.nan
    total_sigma[~np.isfinite(total)] = np.nan
    out = [guinier.rg, guinier.rg_sigma, guinier.i0, guinier.i0_sigma, total, total_sigma, k]
    failed = (status == 0) & ~np.all([np.isfinite(v) for v in out], axis=0)
    status[failed] = InvariantStatus.FAILED
    ok = guinier.ok
    g_min = np.where(ok, np.where(guinier.used, qv, np.inf).min(1), np.nan)
    g_max = np.where(ok, np.where(guinier.used, qv, -np.inf).max(1), np.nan)
    return InvariantResult(
        rg=guinier.rg,
        rg_sigma=guinier.rg_sigma,
        i0=guinier.i0,
        i0_sigma=guinier.i0_sigma,
        guinier_q_min=g_min,
        guinier_q_max=g_max,
        invariant=total,
        invariant_sigma=total_sigma,
        porod_constant=k,
        porod_constant_sigma=k_sigma,
        status=status,
    )
