"""Azimuthal-profile models for orientation analysis, as small objects in one registry.

Each :class:`ProfileModel` bundles a batched model function, its analytic Jacobian, a robust
initial estimate from data and the canonical form of its parameters (in the spirit of silx
``math/fit/fittheory.py`` and lmfit ``lineshapes.py``). Every function takes the azimuth ``chi``
in degrees, in any convention (pyFAI gives -180..180), and parameters with a leading batch axis:
``params`` of shape ``(n, n_par)`` gives curves of shape ``(n, n_chi)``.

Models
------
``maier_saupe``
    ``I * exp(kappa * cos^2(chi - x0)) + a + b * chi``, parameters ``(I, kappa, x0, a, b)``.
    ``x0`` is the director (the chi of the intensity maximum), ``kappa`` the Maier--Saupe
    strength. The curve with ``kappa < 0`` equals ``(I e^kappa, -kappa, x0 + 90)``.
``pseudo_voigt``
    ``y0 + slope * chi + I * [P(chi - x0) + P(chi - x0 - 180)]`` with
    ``P(d) = eta / (1 + (d/gamma)^2) + (1 - eta) * exp(-ln2 (d/gamma)^2)``, distances ``d``
    wrapped into [-180, 180). ``I`` is the peak height, ``gamma`` the half width at half
    maximum (degrees) shared by the Lorentzian and the Gaussian, ``eta`` in [0, 1] the
    Lorentzian fraction. Parameters ``(y0, I, x0, gamma, eta, slope)``. The pair is
    180-periodic, so ``x0`` and ``x0 + 180`` are the same curve; each peak's tail is cut where
    its distance wraps, at its partner's centre.

Canonical forms (``normalise``): Maier--Saupe ``kappa >= 0`` and ``x0`` in [-90, 90);
pseudo-Voigt ``gamma > 0`` and ``x0`` in [-90, 90). In both, ``x0`` is the director: the chi
of the intensity maximum of the oriented part, in the convention of ``chi``.

Maier--Saupe is fitted in regular coordinates (``fit_space``): the peak height above the
minimum, ``h = I (e^kappa - 1)``, and the minimum ``c = a + I`` instead of ``I`` and ``a``,
which diverge as ``kappa -> 0`` and correlate exponentially with ``kappa`` otherwise.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import special

from pyscatter.errors import InputError
from pyscatter.kernels.row_products import bin_dot, combine, small_matmul

__all__ = [
    "MAIER_SAUPE",
    "MODELS",
    "PSEUDO_VOIGT",
    "ProfileModel",
    "get_model",
    "shape_pairs",
    "shape_parameters",
    "wrap_deg",
]

FloatArray = NDArray[np.float64]

_LN2 = float(np.log(2.0))
_DEG = float(np.pi / 180.0)


@dataclass(frozen=True)
class ProfileModel:
    """A fit model for azimuthal profiles: function, Jacobian, estimate and canonical form.

    Parameters
    ----------
    name : str
        Registry key, e.g. ``"maier_saupe"``.
    param_names : tuple of str
        Parameter names, in the order of the last axis of ``params``.
    func : callable
        ``func(chi_deg, params) -> curves``: ``chi_deg`` shape ``(n_chi,)`` in degrees,
        ``params`` shape ``(n, n_par)``, curves ``(n, n_chi)``.
    jacobian : callable
        ``jacobian(chi_deg, params) -> (n, n_chi, n_par)``, the analytic derivatives of ``func``.
    estimate : callable
        ``estimate(chi_deg, profiles) -> (n, n_par)`` initial guesses from profiles of shape
        ``(n, n_chi)`` (NaN bins are ignored).
    normalise : callable
        ``normalise(params, cov=None) -> (params, cov)``: the canonical form of parameters of
        shape ``(n, n_par)`` describing the same curves, and their covariance ``(n, n_par,
        n_par)`` transformed alike (``None`` passes through).
    units : tuple of str
        Unit of each parameter (``"intensity"`` stands for the unit of the profiles).
    background : tuple of str
        Names of the constant and the linear (per degree) background parameters.
    center : str
        Name of the peak-position parameter (the director, degrees).
    amplitude : str
        Name of the peak-amplitude parameter (zero means no oriented component).
    strength : str
        Name of the parameter whose significance decides a weak orientation.
    isotropic : mapping
        Values given to the peak parameters of a profile found isotropic.
    lower, upper : tuple of float
        Bounds kept during fitting (``-inf``/``inf`` where free).
    value_and_jacobian : callable, optional
        ``(func(chi, params), jacobian(chi, params))`` from one evaluation sharing the work; the
        fitter uses it when present.
    fit_space : ProfileModel, optional
        A reparametrisation the fitter works in when the natural parameters are singular
        somewhere (Maier--Saupe at ``kappa -> 0``), with ``to_fit(params) -> q`` and
        ``from_fit(q, cov=None) -> (params, cov)`` converting between them.
    """

    name: str
    param_names: tuple[str, ...]
    func: Callable[[ArrayLike, ArrayLike], FloatArray]
    jacobian: Callable[[ArrayLike, ArrayLike], FloatArray]
    estimate: Callable[[ArrayLike, ArrayLike], FloatArray]
    normalise: Callable[..., tuple[FloatArray, FloatArray | None]]
    units: tuple[str, ...]
    background: tuple[str, str]
    center: str
    amplitude: str
    strength: str
    isotropic: Mapping[str, float] = field(default_factory=dict)
    lower: tuple[float, ...] = ()
    upper: tuple[float, ...] = ()
    value_and_jacobian: Callable[[ArrayLike, ArrayLike], tuple[FloatArray, FloatArray]] | None = (
        None
    )
    fit_space: ProfileModel | None = None
    to_fit: Callable[[ArrayLike], FloatArray] | None = None
    from_fit: Callable[..., tuple[FloatArray, FloatArray | None]] | None = None

    @property
    def n_par(self) -> int:
        """Number of parameters."""
        return len(self.param_names)

    def index(self, name: str) -> int:
        """Position of parameter ``name`` in ``param_names``."""
        try:
            return self.param_names.index(name)
        except ValueError:
            raise InputError(
                f"model {self.name!r} has no parameter {name!r}; "
                f"expected one of {', '.join(self.param_names)}"
            ) from None

    def bounds(self) -> tuple[FloatArray, FloatArray]:
        """Lower and upper bounds as float arrays of shape ``(n_par,)``."""
        lower = np.array(self.lower or (-np.inf,) * self.n_par, dtype=float)
        upper = np.array(self.upper or (np.inf,) * self.n_par, dtype=float)
        return lower, upper


def shape_parameters(model: ProfileModel) -> list[str]:
    """Parameters that shape the distribution (not the background, centre or height).

    Examples
    --------
    >>> shape_parameters(PSEUDO_VOIGT)
    ['gamma', 'eta']
    """
    fixed = {*model.background, model.center, model.amplitude}
    return [p for p in model.param_names if p not in fixed]


def shape_pairs(model: ProfileModel) -> list[tuple[str, str]]:
    """Pairs of shape parameters whose correlation matters (S depends on them jointly).

    Examples
    --------
    >>> shape_pairs(PSEUDO_VOIGT)
    [('gamma', 'eta')]
    """
    names = shape_parameters(model)
    return [(a, b) for i, a in enumerate(names) for b in names[i + 1 :]]


def wrap_deg(angle_deg: ArrayLike, period: float = 360.0) -> FloatArray:
    """Wrap angles into ``[-period/2, period/2)``.

    Parameters
    ----------
    angle_deg : array_like
        Angles in degrees, any shape.
    period : float
        The period in degrees (360 for a direction, 180 for an axis).

    Returns
    -------
    ndarray
        Same shape, float64, in ``[-period/2, period/2)``; NaN stays NaN.

    Examples
    --------
    >>> wrap_deg([180.0, -190.0, 91.0], period=180.0).tolist()
    [0.0, -10.0, -89.0]
    """
    half = 0.5 * period
    out = np.mod(np.asarray(angle_deg, dtype=float) + half, period) - half
    # np.mod of a tiny negative number can return the period itself
    return np.where(out >= half, out - period, out)


# ----------------------------------------------------------------------------------------------
# batched weighted linear least squares (shared with fitting.py)


def _scaled_eigh(a: FloatArray) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Eigen-decompose normal matrices after scaling them to unit diagonal.

    ``a`` has shape ``(n, k, k)``. Returns ``(d, e, v)``: scales ``d`` (n, k) with
    ``a = d_i d_j * (v diag(e) v^T)_ij``, eigenvalues ``e`` (n, k) ascending and eigenvectors
    ``v`` (n, k, k). Rows with non-finite entries get the identity (and NaN scales).
    """
    diag = np.diagonal(a, axis1=1, axis2=2)
    ok_diag = np.isfinite(diag) & (diag > 0)
    d = np.sqrt(np.where(ok_diag, diag, 1.0))
    with np.errstate(all="ignore"):
        at = a / (d[:, :, None] * d[:, None, :])
    bad = ~np.isfinite(at).all(axis=(1, 2))
    if bad.any():
        at[bad] = np.eye(a.shape[-1])
        d[bad] = np.nan
    e, v = np.linalg.eigh(at)
    return d, e, v


def _eig_cut(k: int) -> float:
    """Eigenvalue below which a unit-diagonal normal matrix counts as singular."""
    return 1e-13 * k


def _scaled_pinv(a: FloatArray) -> tuple[FloatArray, NDArray[np.bool_]]:
    """Pseudo-inverse of a stack of symmetric positive semi-definite matrices ``(n, k, k)``.

    Returns the pseudo-inverse and a per-row flag telling whether the matrix had full rank.
    """
    d, e, v = _scaled_eigh(a)
    k = a.shape[-1]
    good = e > _eig_cut(k)
    inv_e = np.where(good, 1.0 / np.where(good, e, 1.0), 0.0)
    pinv = small_matmul(v * inv_e[:, None, :], np.swapaxes(v, 1, 2))
    with np.errstate(all="ignore"):
        pinv = pinv / (d[:, :, None] * d[:, None, :])
    full_rank: NDArray[np.bool_] = np.asarray(good.all(axis=1) & np.isfinite(d).all(axis=1))
    return pinv, full_rank


def _weighted_lstsq(
    design: FloatArray,
    y: FloatArray,
    w: FloatArray,
    *,
    with_cov: bool = False,
    with_chi2: bool = True,
) -> tuple[FloatArray, FloatArray, FloatArray | None]:
    """Weighted linear least squares for many rows sharing one design matrix.

    The normal equations are scaled to unit diagonal and solved with a 1e-12 ridge (a
    relative bias far below rounding of the data, but an empty or degenerate row gives zeros
    instead of an exception).

    Parameters
    ----------
    design : ndarray, shape (m, k)
    y : ndarray, shape (n, m)
        Data, finite everywhere (masked points carry weight 0).
    w : ndarray, shape (n, m)
        Weights (``1/sigma^2``), 0 for excluded points.
    with_cov : bool
        Also return ``(X^T W X)^-1`` (unscaled); None otherwise.
    with_chi2 : bool
        Compute chi2 (NaN otherwise, which saves the residuals).

    Returns
    -------
    coef : ndarray, shape (n, k)
    chi2 : ndarray, shape (n,)
        Weighted sum of squared residuals.
    cov : ndarray, shape (n, k, k) or None
    """
    m, k = design.shape
    upper = np.triu_indices(k)
    columns = np.ascontiguousarray(design.T)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):  # absurd data: inf/NaN
        pairs = bin_dot("nm,pm->np", w, columns[upper[0]] * columns[upper[1]])
        a = np.empty((len(w), k, k))
        a[:, upper[0], upper[1]] = pairs  # exactly symmetric
        a[:, upper[1], upper[0]] = pairs
        g = bin_dot("nm,km->nk", w * y, columns)
        diag = np.diagonal(a, axis1=1, axis2=2)
        d = np.sqrt(np.where(np.isfinite(diag) & (diag > 0), diag, 1.0))
        at = a / (d[:, :, None] * d[:, None, :]) + 1e-12 * np.eye(k)
        bad = ~(np.isfinite(at).all(axis=(1, 2)) & np.isfinite(g).all(axis=1))
        at[bad] = np.eye(k)
        rhs = np.where(bad[:, None], np.nan, g / d)[:, :, None]
        if with_cov:
            rhs = np.concatenate([rhs, np.broadcast_to(np.eye(k), (len(at), k, k))], axis=2)
        sol = np.linalg.solve(at, rhs) / d[:, :, None]
        coef = sol[:, :, 0]
        if with_chi2:
            resid = y - combine(coef, design)
            chi2 = bin_dot("nm,nm->n", w, resid * resid)
        else:
            chi2 = np.full(len(coef), np.nan)
        cov = sol[:, :, 1:] / d[:, None, :] if with_cov else None
    return coef, chi2, cov


def _harmonic_design(chi_deg: FloatArray, orders: tuple[int, ...]) -> FloatArray:
    """Columns ``1, chi, cos(k chi), sin(k chi) ...`` for ``k`` in ``orders``, shape (m, .)."""
    rad = chi_deg * _DEG
    cols = [np.ones_like(chi_deg), chi_deg]
    for k in orders:
        cols += [np.cos(k * rad), np.sin(k * rad)]
    return np.stack(cols, axis=1)


def _partner_index(chi: FloatArray) -> NDArray[np.intp]:
    """Index of the bin at chi + 180 (within a quarter of the bin spacing), -1 where none."""
    order = np.argsort(chi)
    xs = chi[order]
    spacing = float(np.median(np.diff(xs))) if xs.size > 1 else 1.0
    target = xs[0] + np.mod(chi + 180.0 - xs[0], 360.0)
    j = np.clip(np.searchsorted(xs, target), 0, xs.size - 1)
    candidates = np.stack([np.maximum(j - 1, 0), j])
    dist = np.abs(wrap_deg(xs[candidates] - target[None, :]))
    best = np.take_along_axis(candidates, np.argmin(dist, axis=0)[None, :], axis=0)[0]
    ok = np.min(dist, axis=0) <= 0.25 * spacing
    return np.where(ok, order[best], -1)


def _harmonics(
    chi_deg: ArrayLike, profiles: ArrayLike
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray, FloatArray]:
    """Linear background plus 2- and 4-fold harmonics of each profile, NaN bins excluded.

    Returns ``(mean, slope, x0_deg, a2, a4)``: the intercept at chi = 0, the slope per degree,
    the phase of the 2-fold harmonic as an angle (the chi of its maximum, in [-90, 90)), its
    amplitude ``a2 >= 0`` and the 4-fold amplitude projected on the same phase (signed).

    The peaks of both models are 180-periodic: the difference of the profile at chi and at
    chi + 180 is ``slope * (+-180)`` alone, which gives the slope from the bins whose partner
    is measured too (a peak whose partner is masked cannot leak into it); the harmonics are
    then fitted to the profile minus ``slope * chi``.
    """
    chi = np.asarray(chi_deg, dtype=float)
    y = np.atleast_2d(np.asarray(profiles, dtype=float))
    valid = np.isfinite(y)
    partner = _partner_index(chi)
    has = partner >= 0
    pair = valid & has[None, :] & valid[:, np.where(has, partner, 0)]
    half_gap = np.where(has, 0.5 * (chi - chi[np.where(has, partner, 0)]), 0.0)  # +-90
    odd = np.where(pair, 0.5 * (y - y[:, np.where(has, partner, 0)]), 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        norm = np.sum(np.where(pair, half_gap * half_gap, 0.0), axis=1)
        slope = np.where(norm > 0, np.sum(odd * half_gap, axis=1) / norm, 0.0)
    design = _harmonic_design(chi, (2, 4))[:, [0, 2, 3, 4, 5]]
    y_even = np.where(valid, y - slope[:, None] * chi, 0.0)
    coef = _weighted_lstsq(design, y_even, valid.astype(float), with_chi2=False)[0]
    mean, c2, s2, c4, s4 = coef.T
    phase = np.arctan2(s2, c2)
    a2 = np.hypot(c2, s2)
    a4 = c4 * np.cos(2.0 * phase) + s4 * np.sin(2.0 * phase)
    return mean, slope, wrap_deg(np.degrees(phase) / 2.0, 180.0), a2, a4


def _params_view(params: ArrayLike, n_par: int) -> FloatArray:
    p = np.asarray(params, dtype=float)
    if p.shape[-1:] != (n_par,):
        raise InputError(f"params must have a last axis of length {n_par}; got shape {p.shape}")
    return p


def _jac_buffer(shape: tuple[int, ...], n_par: int) -> tuple[FloatArray, FloatArray]:
    """A Jacobian stored as (..., n_par, n_chi) and its (..., n_chi, n_par) view.

    Filling whole contiguous rows per parameter is faster, and the fitter's ``J^T W J`` wants
    that layout anyway.
    """
    buf = np.empty(shape[:-1] + (n_par, shape[-1]))
    return buf, np.moveaxis(buf, -2, -1)


def _double_angle(chi: FloatArray, x0: FloatArray) -> tuple[FloatArray, FloatArray]:
    """``cos 2(chi - x0)`` and ``sin 2(chi - x0)`` by angle addition (no per-bin sin/cos)."""
    c_chi, s_chi = np.cos(2 * _DEG * chi), np.sin(2 * _DEG * chi)
    c_x0, s_x0 = np.cos(2 * _DEG * x0), np.sin(2 * _DEG * x0)
    return c_chi * c_x0 + s_chi * s_x0, s_chi * c_x0 - c_chi * s_x0


# ----------------------------------------------------------------------------------------------
# Maier--Saupe


def _ms_func(chi_deg: ArrayLike, params: ArrayLike) -> FloatArray:
    chi = np.asarray(chi_deg, dtype=float)
    p = _params_view(params, 5)
    amp, kappa, x0, a, b = (p[..., i, None] for i in range(5))
    u = 0.5 + 0.5 * _double_angle(chi, x0)[0]  # cos^2(chi - x0)
    return amp * np.exp(kappa * u) + a + b * chi


def _ms_jacobian(chi_deg: ArrayLike, params: ArrayLike) -> FloatArray:
    chi = np.asarray(chi_deg, dtype=float)
    p = _params_view(params, 5)
    amp, kappa, x0 = (p[..., i, None] for i in range(3))
    cos2, sin2 = _double_angle(chi, x0)
    u = 0.5 + 0.5 * cos2
    e = np.exp(kappa * u)
    buf, jac = _jac_buffer(np.broadcast_shapes(e.shape, chi.shape), 5)
    buf[..., 0, :] = e
    buf[..., 1, :] = amp * u * e
    buf[..., 2, :] = (amp * kappa * _DEG) * e * sin2
    buf[..., 3, :] = 1.0
    buf[..., 4, :] = chi
    return jac


def _ms_kappa_from_ratio(ratio: FloatArray) -> FloatArray:
    """Invert ``a4/a2 = I2(kappa/2) / I1(kappa/2)`` (monotonic) by table interpolation."""
    kappa = np.geomspace(0.3, 300.0, 400)
    table = special.ive(2, kappa / 2) / special.ive(1, kappa / 2)
    return np.interp(ratio, table, kappa)


def _ms_estimate(chi_deg: ArrayLike, profiles: ArrayLike) -> FloatArray:
    """Initial (I, kappa, x0, a, b) from the 2- and 4-fold harmonics of each profile.

    For ``I exp(kappa cos^2 t)`` the harmonics are modified Bessel functions:
    mean ``I e^k ive0(k/2)``, cos 2t ``2 I e^k ive1(k/2)``, cos 4t ``2 I e^k ive2(k/2)``, so the
    4-to-2 ratio gives kappa independently of amplitude and background.
    """
    mean, slope, x0, a2, a4 = _harmonics(chi_deg, profiles)
    with np.errstate(all="ignore"):
        ratio = np.where(a2 > 0, a4 / a2, 0.0)
    kappa = _ms_kappa_from_ratio(np.nan_to_num(ratio))
    i1 = special.ive(1, kappa / 2)
    amp = a2 / (2.0 * np.exp(kappa) * i1)
    a = mean - a2 * special.ive(0, kappa / 2) / (2.0 * i1)
    return np.stack([amp, kappa, x0, a, slope], axis=-1)


def _ms_normalise(
    params: ArrayLike, cov: ArrayLike | None = None
) -> tuple[FloatArray, FloatArray | None]:
    """kappa >= 0 (kappa < 0 is the same curve as (I e^kappa, -kappa, x0 + 90)), x0 in [-90, 90)."""
    p = np.array(_params_view(params, 5), dtype=float)
    flip = p[..., 1] < 0
    amp, kappa = p[..., 0].copy(), p[..., 1].copy()
    with np.errstate(over="ignore"):
        scale = np.exp(np.where(flip, kappa, 0.0))
    p[..., 0] = np.where(flip, amp * scale, amp)
    p[..., 1] = np.abs(kappa)
    p[..., 2] = wrap_deg(np.where(flip, p[..., 2] + 90.0, p[..., 2]), 180.0)
    if cov is None:
        return p, None
    c = np.asarray(cov, dtype=float)
    t = np.broadcast_to(np.eye(5), p.shape[:-1] + (5, 5)).copy()
    t[..., 0, 0] = np.where(flip, scale, 1.0)
    t[..., 0, 1] = np.where(flip, amp * scale, 0.0)
    t[..., 1, 1] = np.where(flip, -1.0, 1.0)
    with np.errstate(invalid="ignore"):
        flipped = small_matmul(small_matmul(t, c), np.swapaxes(t, -1, -2))
    # only where flipped: a product with the identity would spread NaN entries (0 * NaN)
    return p, np.where(flip[..., None, None], flipped, c)


# The fitter works in regular coordinates q = (h, kappa, x0, c, b), h = I (e^kappa - 1) the peak
# height above the minimum c = a + I:  f = h G(kappa, u) + c + b chi, u = cos^2(chi - x0),
# G = (e^(kappa u) - 1) / (e^kappa - 1) in [0, 1]. They stay finite as kappa -> 0 (G -> u, a
# pure 2-fold harmonic) where I and a diverge, and h barely correlates with kappa where I does
# exponentially: both make Levenberg--Marquardt converge in a few steps.


def _ms_shape(
    kappa: FloatArray, u: FloatArray, derivatives: bool = True
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """``G(kappa, u)``, ``dG/dkappa`` and ``dG/du``; ``kappa`` (n, 1), ``u`` (n, m) in [0, 1].

    ``G = e^(kappa (u-1)) expm1(-kappa u) / expm1(-kappa)`` never overflows for kappa > 0;
    for ``|kappa| < 1e-4`` the series ``ln G = ln u + kappa (u-1)/2 + kappa^2 (u^2-1)/24``
    (next term kappa^4) replaces the 0/0. Without ``derivatives`` the last two are empty.
    """
    e = np.exp(kappa * (u - 1.0))
    empty = np.empty(0)
    with np.errstate(divide="ignore", invalid="ignore"):
        den = -np.expm1(-kappa)
        g = e * -np.expm1(-kappa * u) / den
        dg = (u * e - g) / den if derivatives else empty
        dgu = (kappa / den) * e if derivatives else empty
    small = np.broadcast_to(np.abs(kappa) < 1e-4, g.shape)
    if small.any():
        ks, us = np.broadcast_to(kappa, g.shape)[small], np.broadcast_to(u, g.shape)[small]
        gs = us * np.exp(ks * (us - 1.0) / 2.0 + ks * ks * (us * us - 1.0) / 24.0)
        g[small] = gs
        if derivatives:
            dg[small] = gs * ((us - 1.0) / 2.0 + ks * (us * us - 1.0) / 12.0)
            dgu[small] = (1.0 + ks / 2.0 + ks * ks / 12.0) * np.exp(ks * (us - 1.0))
    return g, dg, dgu


def _msq_func(chi_deg: ArrayLike, q: ArrayLike) -> FloatArray:
    chi = np.asarray(chi_deg, dtype=float)
    p = _params_view(q, 5)
    h, kappa, x0, c, b = (p[..., i, None] for i in range(5))
    g = _ms_shape(kappa, 0.5 + 0.5 * _double_angle(chi, x0)[0], derivatives=False)[0]
    return h * g + c + b * chi


def _msq_value_and_jacobian(chi_deg: ArrayLike, q: ArrayLike) -> tuple[FloatArray, FloatArray]:
    chi = np.asarray(chi_deg, dtype=float)
    p = _params_view(q, 5)
    h, kappa, x0, c, b = (p[..., i, None] for i in range(5))
    cos2, sin2 = _double_angle(chi, x0)
    g, dg, dgu = _ms_shape(kappa, 0.5 + 0.5 * cos2)
    buf, jac = _jac_buffer(np.broadcast_shapes(g.shape, chi.shape), 5)
    buf[..., 0, :] = g
    buf[..., 1, :] = h * dg
    buf[..., 2, :] = (h * _DEG) * dgu * sin2  # du/dx0 = sin 2(chi - x0) per radian
    buf[..., 3, :] = 1.0
    buf[..., 4, :] = chi
    return h * g + c + b * chi, jac


def _msq_jacobian(chi_deg: ArrayLike, q: ArrayLike) -> FloatArray:
    return _msq_value_and_jacobian(chi_deg, q)[1]


def _ms_to_fit(params: ArrayLike) -> FloatArray:
    """Natural (I, kappa, x0, a, b) to regular (I expm1(kappa), kappa, x0, a + I, b)."""
    p, _ = _ms_normalise(params)
    q = p.copy()
    q[..., 0] = p[..., 0] * np.expm1(p[..., 1])
    q[..., 3] = p[..., 3] + p[..., 0]
    return q


def _ms_from_fit(
    q: ArrayLike, cov: ArrayLike | None = None
) -> tuple[FloatArray, FloatArray | None]:
    """Regular to natural parameters; I and a are NaN at kappa = 0 (they diverge there)."""
    q = np.array(_params_view(q, 5), dtype=float)
    h, kappa = q[..., 0], q[..., 1]
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        inv = np.where(kappa != 0, 1.0 / np.expm1(kappa), np.nan)  # dI/dh
        d_kappa = -h * inv * inv * np.exp(kappa)  # dI/dkappa
    p = q.copy()
    p[..., 0] = h * inv
    p[..., 3] = q[..., 3] - h * inv
    if cov is None:
        return p, None
    t = np.broadcast_to(np.eye(5), q.shape[:-1] + (5, 5)).copy()
    t[..., 0, 0], t[..., 0, 1] = inv, d_kappa
    t[..., 3, 0], t[..., 3, 1] = -inv, -d_kappa
    c = np.asarray(cov, dtype=float)
    with np.errstate(invalid="ignore"):
        return p, small_matmul(small_matmul(t, c), np.swapaxes(t, -1, -2))


_MAIER_SAUPE_FIT = ProfileModel(
    name="maier_saupe_regular",
    param_names=("h", "kappa", "x0", "c", "b"),
    func=_msq_func,
    jacobian=_msq_jacobian,
    value_and_jacobian=_msq_value_and_jacobian,
    estimate=lambda chi, y: _ms_to_fit(_ms_estimate(chi, y)),
    normalise=lambda q, cov=None: (np.array(q, dtype=float), cov),
    units=("intensity", "1", "deg", "intensity", "intensity/deg"),
    background=("c", "b"),
    center="x0",
    amplitude="h",
    strength="kappa",
    # h >= 0 and kappa >= 0 keep the fit in Maier--Saupe shapes (peak at x0, kappa -> 0 limit)
    lower=(0.0, 0.0, -np.inf, -np.inf, -np.inf),
)

MAIER_SAUPE = ProfileModel(
    name="maier_saupe",
    param_names=("I", "kappa", "x0", "a", "b"),
    func=_ms_func,
    jacobian=_ms_jacobian,
    estimate=_ms_estimate,
    normalise=_ms_normalise,
    units=("intensity", "1", "deg", "intensity", "intensity/deg"),
    background=("a", "b"),
    center="x0",
    amplitude="I",
    strength="kappa",
    isotropic=MappingProxyType({"I": 0.0, "kappa": 0.0, "x0": np.nan}),
    fit_space=_MAIER_SAUPE_FIT,
    to_fit=_ms_to_fit,
    from_fit=_ms_from_fit,
)


# ----------------------------------------------------------------------------------------------
# pseudo-Voigt pair (a peak and its centro-symmetric partner) with a linear background


def _pv_distances(chi: FloatArray, x0: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Wrapped distances to the peak at x0 and to its partner at x0 + 180, in [-180, 180)."""
    d1 = chi - x0
    d1 = d1 - 360.0 * np.floor((d1 + 180.0) * (1.0 / 360.0))  # cheaper than np.mod
    return d1, d1 + np.where(d1 >= 0, -180.0, 180.0)


def _pv_shape(d: FloatArray, inv_gamma: FloatArray, eta: FloatArray) -> FloatArray:
    u2 = d * inv_gamma
    u2 *= u2
    gau = np.exp(-_LN2 * u2)
    return gau + eta * (1.0 / (1.0 + u2) - gau)


def _pv_parts(
    d: FloatArray, inv_gamma: FloatArray, eta: FloatArray
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Shape P, -dP/dd and dP/deta of one peak at wrapped distance ``d``."""
    u = d * inv_gamma
    u2 = u * u
    lor = 1.0 / (1.0 + u2)
    gau = np.exp(-_LN2 * u2)
    lor_gau = lor - gau
    shape = gau + eta * lor_gau
    minus_slope = (2.0 * inv_gamma) * u * (eta * lor * lor + (1.0 - eta) * _LN2 * gau)
    return shape, minus_slope, lor_gau


def _pv_func(chi_deg: ArrayLike, params: ArrayLike) -> FloatArray:
    chi = np.asarray(chi_deg, dtype=float)
    p = _params_view(params, 6)
    y0, amp, x0, gamma, eta, slope = (p[..., i, None] for i in range(6))
    d1, d2 = _pv_distances(chi, x0)
    inv_gamma = 1.0 / gamma
    return y0 + slope * chi + amp * (_pv_shape(d1, inv_gamma, eta) + _pv_shape(d2, inv_gamma, eta))


def _pv_value_and_jacobian(chi_deg: ArrayLike, params: ArrayLike) -> tuple[FloatArray, FloatArray]:
    chi = np.asarray(chi_deg, dtype=float)
    p = _params_view(params, 6)
    y0, amp, x0, gamma, eta, slope = (p[..., i, None] for i in range(6))
    d1, d2 = _pv_distances(chi, x0)
    inv_gamma = 1.0 / gamma
    one, two = _pv_parts(d1, inv_gamma, eta), _pv_parts(d2, inv_gamma, eta)
    buf, jac = _jac_buffer(np.broadcast_shapes(d1.shape, chi.shape), 6)
    buf[..., 0, :] = 1.0
    np.add(one[0], two[0], out=buf[..., 1, :])
    buf[..., 2, :] = amp * (one[1] + two[1])  # dP/dx0 = -dP/dd
    buf[..., 3, :] = (amp * inv_gamma) * (
        d1 * one[1] + d2 * two[1]
    )  # dP/dgamma = (d/gamma)(-dP/dd)
    buf[..., 4, :] = amp * (one[2] + two[2])
    buf[..., 5, :] = chi
    return y0 + slope * chi + amp * buf[..., 1, :], jac


def _pv_jacobian(chi_deg: ArrayLike, params: ArrayLike) -> FloatArray:
    return _pv_value_and_jacobian(chi_deg, params)[1]


def _pv_transforms(gamma_rad: FloatArray, eta: float, k: int) -> FloatArray:
    """Cosine transform at order ``k`` of a unit-height pseudo-Voigt of HWHM ``gamma_rad``."""
    lor = np.pi * gamma_rad * np.exp(-k * gamma_rad)
    gau = gamma_rad * np.sqrt(np.pi / _LN2) * np.exp(-((k * gamma_rad) ** 2) / (4 * _LN2))
    return eta * lor + (1.0 - eta) * gau


def _pv_estimate(chi_deg: ArrayLike, profiles: ArrayLike) -> FloatArray:
    """Initial (y0, I, x0, gamma, eta=0.5, slope) from the 2- and 4-fold harmonics.

    The 4-to-2 harmonic ratio of a peak pair depends on its width only (Fourier transforms of
    the Lorentzian and Gaussian on the line); the 2-fold amplitude then gives the height and the
    mean the background.
    """
    eta = 0.5
    mean, slope, x0, a2, a4 = _harmonics(chi_deg, profiles)
    # a start narrower than the bins can fall between them (a trap); wider is harmless
    chi = np.sort(np.asarray(chi_deg, dtype=float))
    spacing = float(np.median(np.diff(chi))) if chi.size > 1 else 1.0
    gammas = np.radians(np.geomspace(max(2.0 * spacing, 0.1), 90.0, 400))
    table = _pv_transforms(gammas, eta, 4) / _pv_transforms(gammas, eta, 2)
    with np.errstate(all="ignore"):
        ratio = np.nan_to_num(np.where(a2 > 0, a4 / a2, 0.0))
    gamma = np.interp(ratio, table[::-1], gammas[::-1])
    amp = a2 * np.pi / (2.0 * _pv_transforms(gamma, eta, 2))
    y0 = mean - amp * _pv_transforms(gamma, eta, 0) / np.pi
    return np.stack([y0, amp, x0, np.degrees(gamma), np.full_like(amp, eta), slope], axis=-1)


def _pv_normalise(
    params: ArrayLike, cov: ArrayLike | None = None
) -> tuple[FloatArray, FloatArray | None]:
    """gamma > 0 (the curve depends on gamma^2), x0 in [-90, 90) (the pair is 180-periodic)."""
    p = np.array(_params_view(params, 6), dtype=float)
    flip = p[..., 3] < 0
    p[..., 3] = np.abs(p[..., 3])
    p[..., 2] = wrap_deg(p[..., 2], 180.0)
    if cov is None:
        return p, None
    c = np.asarray(cov, dtype=float)
    sign = np.ones(p.shape)
    sign[..., 3] = np.where(flip, -1.0, 1.0)
    return p, c * sign[..., :, None] * sign[..., None, :]


PSEUDO_VOIGT = ProfileModel(
    name="pseudo_voigt",
    param_names=("y0", "I", "x0", "gamma", "eta", "slope"),
    func=_pv_func,
    jacobian=_pv_jacobian,
    value_and_jacobian=_pv_value_and_jacobian,
    estimate=_pv_estimate,
    normalise=_pv_normalise,
    units=("intensity", "intensity", "deg", "deg", "1", "intensity/deg"),
    background=("y0", "slope"),
    center="x0",
    amplitude="I",
    strength="I",
    isotropic=MappingProxyType({"I": 0.0, "x0": np.nan, "gamma": np.nan, "eta": np.nan}),
    # gamma stays away from 0 (the shape divides by it); eta is a mixing fraction
    lower=(-np.inf, -np.inf, -np.inf, 1e-6, 0.0, -np.inf),
    upper=(np.inf, np.inf, np.inf, np.inf, 1.0, np.inf),
)

MODELS: Mapping[str, ProfileModel] = MappingProxyType(
    {model.name: model for model in (MAIER_SAUPE, PSEUDO_VOIGT)}
)
"""The registry of profile models, by name."""


def get_model(model: str | ProfileModel) -> ProfileModel:
    """Look a model up by name (a :class:`ProfileModel` passes through).

    Raises
    ------
    InputError
        If ``model`` names no registered model.

    Examples
    --------
    >>> get_model("maier_saupe").param_names
    ('I', 'kappa', 'x0', 'a', 'b')
    """
    if isinstance(model, ProfileModel):
        return model
    try:
        return MODELS[model]
    except (KeyError, TypeError):
        raise InputError(
            f"unsupported model {model!r}; expected one of {', '.join(MODELS)}"
        ) from None
