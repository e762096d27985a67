"""Orientational order parameter <P2> and director from azimuthal profiles or fitted models.

The order parameter of an axially symmetric distribution ``f(theta)`` of angles ``theta`` about
the director is (docs/design.md)::

    S = int_0^pi P2(cos t) f(t) sin t dt / int_0^pi f(t) sin t dt,   P2(x) = (3 x^2 - 1) / 2

so S = 1 for perfect alignment, 0 for an isotropic distribution and -1/2 for alignment
perpendicular to the director. For the Maier--Saupe distribution ``f ~ exp(kappa cos^2 t)``
S has a closed form in the Dawson function. The director is the chi (pyFAI convention,
degrees) of the intensity maximum of the oriented distribution, folded into [-90, 90).
"""

from __future__ import annotations

from enum import IntEnum

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import special

from pyscatter.errors import InputError
from pyscatter.kernels.fitting import FitStatus
from pyscatter.kernels.models import ProfileModel, get_model, shape_parameters, wrap_deg

__all__ = [
    "ModelFreeStatus",
    "director_from_params",
    "model_free_order_parameter",
    "order_block",
    "order_parameter_from_model",
    "order_parameter_from_profile",
    "order_parameter_maier_saupe",
    "order_parameter_maier_saupe_sigma",
]

FloatArray = NDArray[np.float64]

_SERIES_TERMS = 30  # |kappa| < 1: kappa^30 / 30! < 1e-32


def _moments_series(kappa: FloatArray) -> tuple[FloatArray, FloatArray]:
    """``<x^2>`` and ``Var(x^2)`` under ``exp(kappa x^2)`` on [-1, 1], by power series.

    ``M_j = int_0^1 x^(2j) e^(kappa x^2) dx = sum_n kappa^n / (n! (2j + 2n + 1))``.
    """
    n = np.arange(_SERIES_TERMS)
    powers = kappa[..., None] ** n / special.factorial(n)
    m0 = np.sum(powers / (2 * n + 1), axis=-1)
    m1 = np.sum(powers / (2 * n + 3), axis=-1)
    m2 = np.sum(powers / (2 * n + 5), axis=-1)
    mean = m1 / m0
    return mean, m2 / m0 - mean * mean


def _moments(kappa: ArrayLike) -> tuple[FloatArray, FloatArray]:
    """``<cos^2>`` and ``Var(cos^2)`` of the Maier--Saupe distribution, exactly."""
    k = np.asarray(kappa, dtype=float)
    mean = np.full(k.shape, np.nan)
    var = np.full(k.shape, np.nan)
    small = np.abs(k) < 1.0
    if small.any():
        mean[small], var[small] = _moments_series(k[small])
    pos = (k >= 1.0) & np.isfinite(k)
    if pos.any():
        # Z = int_0^1 e^(k x^2) dx = e^k D(s) / s, s = sqrt(k), D the Dawson function;
        # <x^2> = d ln Z / dk = 1 / (2 s D) - 1 / (2 k)
        kp = k[pos]
        s = np.sqrt(kp)
        dawson = special.dawsn(s)
        mean[pos] = 1.0 / (2.0 * s * dawson) - 1.0 / (2.0 * kp)
        var[pos] = -(dawson + s - 2.0 * s * s * dawson) / (4.0 * s**3 * dawson**2) + 0.5 / kp**2
    neg = (k <= -1.0) & np.isfinite(k)
    if neg.any():
        # Z = sqrt(pi) erf(s) / (2 s), s = sqrt(-k): <x^2> = 1 / (2 s^2) - g,
        # g = exp(-s^2) / (sqrt(pi) s erf(s))
        kn = k[neg]
        s = np.sqrt(-kn)
        g = np.exp(-s * s) / (np.sqrt(np.pi) * s * special.erf(s))
        mean[neg] = 0.5 / (s * s) - g
        var[neg] = 0.5 / kn**2 - g * (1.0 + 0.5 / (s * s) + g)
    mean[np.isposinf(k)], var[np.isposinf(k)] = 1.0, 0.0
    mean[np.isneginf(k)], var[np.isneginf(k)] = 0.0, 0.0
    return mean, var


def order_parameter_maier_saupe(kappa: ArrayLike) -> FloatArray:
    """Order parameter S of the Maier--Saupe distribution ``f ~ exp(kappa cos^2 theta)``.

    ``S = (3 <cos^2> - 1) / 2`` with ``<cos^2> = 1 / (2 sqrt(k) D(sqrt(k))) - 1 / (2 k)``
    (``D`` the Dawson function) for ``kappa >= 1``, the error-function analogue for
    ``kappa <= -1`` and a power series in between.

    Parameters
    ----------
    kappa : array_like
        Maier--Saupe strength, any shape; ``+inf`` gives 1, ``-inf`` gives -1/2.

    Returns
    -------
    ndarray
        S, same shape as ``kappa``, float64; NaN where kappa is NaN.

    Examples
    --------
    >>> order_parameter_maier_saupe([0.0, 16.0]).round(4).tolist()
    [0.0, 0.9027]
    """
    mean, _ = _moments(kappa)
    return 1.5 * mean - 0.5


def order_parameter_maier_saupe_sigma(kappa: ArrayLike, kappa_sigma: ArrayLike) -> FloatArray:
    """Propagated 1-sigma error of S: ``|dS/dkappa| * kappa_sigma``.

    ``dS/dkappa = 3/2 Var(cos^2 theta)`` (an exponential family in ``cos^2``), exact.

    Parameters
    ----------
    kappa, kappa_sigma : array_like
        Strength and its 1-sigma error, broadcastable.

    Returns
    -------
    ndarray
        sigma(S), the broadcast shape, float64.

    Examples
    --------
    >>> float(order_parameter_maier_saupe_sigma(0.0, 1.0).round(6))  # dS/dk(0) = 2/15
    0.133333
    """
    _, var = _moments(kappa)
    return np.abs(1.5 * var) * np.asarray(kappa_sigma, dtype=float)


# ----------------------------------------------------------------------------------------------
# model-free <P2> from a measured profile


def _bin_edges(chi: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Lower and upper edges of bins centred at sorted ``chi`` (midpoints; ends mirrored)."""
    mid = 0.5 * (chi[1:] + chi[:-1])
    first = chi[0] - (mid[0] - chi[0]) if chi.size > 1 else chi[0] - 0.5
    last = chi[-1] + (chi[-1] - mid[-1]) if chi.size > 1 else chi[-1] + 0.5
    return np.concatenate([[first], mid]), np.concatenate([mid, [last]])


def _fold_integrals(theta_lo: FloatArray, theta_hi: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Exact bin integrals of ``|sin t|`` and ``P2(cos t) |sin t|`` over [lo, hi] (degrees).

    With ``G(t) = int_0^t |sin| g(cos)``, odd in t: for g = 1, ``sign(t)(1 - cos t)``; for
    g = P2, ``sign(t) cos t sin^2 t / 2``; each full turn adds twice the half-turn value
    (2 and 0).
    """

    def antiderivatives(t_deg: FloatArray) -> tuple[FloatArray, FloatArray]:
        turns = np.floor((t_deg + 180.0) / 360.0)
        t = np.radians(t_deg - 360.0 * turns)  # in [-pi, pi)
        sign = np.sign(t)
        cos = np.cos(t)
        g0 = sign * (1.0 - cos) + 4.0 * turns
        g2 = sign * 0.5 * cos * (1.0 - cos * cos)
        return g0, g2

    lo0, lo2 = antiderivatives(theta_lo)
    hi0, hi2 = antiderivatives(theta_hi)
    return hi0 - lo0, hi2 - lo2


def _centro_symmetric(chi: FloatArray, f: FloatArray) -> FloatArray:
    """Average each bin with the profile at chi + 180 (periodic linear interpolation).

    Where only one of the pair is finite that one is kept; where both are NaN, NaN.
    """
    order = np.argsort(chi)
    xs = chi[order]
    target = xs[0] + np.mod(chi + 180.0 - xs[0], 360.0)
    xp = np.concatenate([xs, [xs[0] + 360.0]])
    j = np.clip(np.searchsorted(xp, target, side="right") - 1, 0, xs.size - 1)
    span = xp[j + 1] - xp[j]
    frac = np.where(span > 0, (target - xp[j]) / np.where(span > 0, span, 1.0), 0.0)
    j_next = np.where(j + 1 == xs.size, 0, j + 1)
    fs = f[:, order]
    # exact partner (regular grid): no interpolation, so a NaN neighbour does not matter
    left = fs[:, j]
    right = fs[:, j_next]
    with np.errstate(invalid="ignore"):
        mixed = left + frac * (right - left)
    partner = np.where(frac < 1e-9, left, np.where(frac > 1 - 1e-9, right, mixed))
    # a partner bin beyond the covered range (gap in the grid) is not interpolated across
    gap = span > 1.5 * np.median(np.diff(xp)) if xs.size > 1 else np.zeros(xs.size, dtype=bool)
    partner = np.where(gap, np.nan, partner)
    return _pair_mean(f, partner)


def _pair_mean(a: FloatArray, b: FloatArray) -> FloatArray:
    fa, fb = np.isfinite(a), np.isfinite(b)
    total = np.where(fa, a, 0.0) + np.where(fb, b, 0.0)
    count = fa.astype(float) + fb.astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / count, np.nan)


def order_parameter_from_profile(
    chi_deg: ArrayLike,
    profiles: ArrayLike,
    director_deg: ArrayLike,
    *,
    background: ArrayLike | None = None,
) -> FloatArray:
    """Model-free <P2> of measured azimuthal profiles about a given director.

    Each bin's (background-subtracted) intensity is taken as the distribution ``f`` over the
    bin, averaged with its centro-symmetric partner at chi + 180 (which also fills masked
    bins), and integrated exactly against ``P2(cos t) |sin t|`` and ``|sin t|`` over the bin,
    ``t = chi - director``; the sums over the full circle are twice the integrals over
    [0, pi] of the formula of this module.

    Parameters
    ----------
    chi_deg : array_like, shape (n_chi,)
        Bin centres in degrees, any convention; bins are taken to extend to the midpoints.
    profiles : array_like, shape (n, n_chi) or (n_chi,)
        Intensities; NaN bins are skipped (after the centro-symmetric fill).
    director_deg : float or array_like, shape (n,)
        Director per profile, degrees.
    background : float or array_like, optional
        Subtracted first: a scalar, one value per profile (shape (n,)) or a curve per
        profile (shape (n, n_chi)). Negative values after subtraction are kept (noise), so
        the ratio can leave [-1/2, 1]; :func:`model_free_order_parameter` bounds and flags it.

    Returns
    -------
    ndarray, shape (n,) (a scalar array for a single profile)
        S; NaN where nothing is left to integrate.

    Raises
    ------
    InputError
        On mismatching shapes.

    Examples
    --------
    >>> import numpy as np
    >>> chi = np.arange(-179.5, 180.0, 1.0)
    >>> f = np.exp(16.0 * np.cos(np.radians(chi - 30.0)) ** 2)
    >>> round(float(order_parameter_from_profile(chi, f, 30.0)), 3)
    0.903
    """
    p2, norm, single = _p2_integrals(chi_deg, profiles, director_deg, background)
    with np.errstate(invalid="ignore", divide="ignore"):
        s = p2 / norm
    return s[0] if single else s


def _p2_integrals(
    chi_deg: ArrayLike,
    profiles: ArrayLike,
    director_deg: ArrayLike,
    background: ArrayLike | None,
) -> tuple[FloatArray, FloatArray, bool]:
    """``int P2 f |sin|`` and ``int f |sin|`` of each profile (NaN where nothing to integrate),
    and whether a single profile came in; see :func:`order_parameter_from_profile`."""
    chi = np.asarray(chi_deg, dtype=float)
    if chi.ndim != 1 or chi.size < 2 or not np.isfinite(chi).all():
        raise InputError(f"chi_deg must be a finite 1-d array of >= 2 bins; got shape {chi.shape}")
    y = np.asarray(profiles, dtype=float)
    single = y.ndim == 1
    y = np.atleast_2d(y)
    if y.ndim != 2 or y.shape[1] != chi.size:
        raise InputError(
            f"profiles must have shape (n, {chi.size}) to match chi_deg; got {np.shape(profiles)}"
        )
    n = y.shape[0]
    director = np.asarray(director_deg, dtype=float)
    if director.ndim > 1 or director.size not in (1, n):
        raise InputError(f"director_deg must be a scalar or shape ({n},); got {director.shape}")
    director = np.broadcast_to(director.reshape(-1), (n,))
    if background is not None:
        y = y - _background_array(background, n, chi.size, single)
    f = _centro_symmetric(chi, y)
    order = np.argsort(chi)
    lo, hi = _bin_edges(chi[order])
    rel_lo = lo[None, :] - director[:, None]
    w0, w2 = _fold_integrals(rel_lo, rel_lo + (hi - lo)[None, :])
    fs = f[:, order]
    valid = np.isfinite(fs)
    fs = np.where(valid, fs, 0.0)
    defined = valid.any(axis=1) & np.isfinite(director)
    with np.errstate(invalid="ignore"):
        p2 = np.where(defined, np.sum(fs * w2, axis=1), np.nan)
        norm = np.where(defined, np.sum(fs * w0, axis=1), np.nan)
    return p2, norm, single


class ModelFreeStatus(IntEnum):
    """Whether a model-free <P2> is an average over a distribution (stored as int8).

    ``<P2> = int P2 f |sin| / int f |sin|`` lies in [-1/2, 1] for any distribution
    ``f >= 0``. A measured profile minus its fitted background is not one: noise (and a
    background fitted a little too high) leaves negative bins, and where the oriented
    intensity is weak or narrow against them the ratio can leave the interval (1.71 was seen
    on a fibre frame whose fit gave kappa = 229, S = 0.993).

    OK
        The ratio lies in [-1/2, 1]; stored as it is.
    ABOVE_ONE
        The ratio exceeded 1 (negative bins away from the director): stored as 1. The profile
        is at least as oriented as the bound says; use the model S and its sigma instead.
    BELOW_MINUS_HALF
        The ratio was below -1/2 (negative bins along the director): stored as -1/2.
    NO_SIGNAL
        The background-subtracted intensity integrates to zero or less (or nothing was left
        to integrate, or no director): stored as NaN. There is no oriented intensity to
        average over.
    """

    OK = 0
    ABOVE_ONE = 1
    BELOW_MINUS_HALF = 2
    NO_SIGNAL = 3


def model_free_order_parameter(
    chi_deg: ArrayLike,
    profiles: ArrayLike,
    director_deg: ArrayLike,
    *,
    background: ArrayLike | None = None,
) -> tuple[FloatArray, NDArray[np.int8]]:
    """:func:`order_parameter_from_profile` bounded to [-1/2, 1], with a status per profile.

    Same parameters. Returns ``(S, status)``: S clipped into [-1/2, 1] (NaN for NO_SIGNAL)
    and the :class:`ModelFreeStatus` codes telling where the raw ratio was outside.

    Examples
    --------
    >>> import numpy as np
    >>> chi = np.arange(-179.5, 180.0, 1.0)
    >>> f = np.exp(229.0 * (np.cos(np.radians(chi)) ** 2 - 1)) + 0.01  # peak 1 on 0.01
    >>> round(float(order_parameter_from_profile(chi, f, 0.0, background=0.011)), 2)  # 10 % high
    1.82
    >>> s, status = model_free_order_parameter(chi, f, 0.0, background=0.011)
    >>> float(s), ModelFreeStatus(int(status)).name
    (1.0, 'ABOVE_ONE')
    """
    p2, norm, single = _p2_integrals(chi_deg, profiles, director_deg, background)
    status = np.full(p2.shape, ModelFreeStatus.OK, dtype=np.int8)
    with np.errstate(invalid="ignore", divide="ignore"):
        raw = p2 / norm
        no_signal = ~(norm > 0) | ~np.isfinite(raw)
        status[raw > 1.0] = ModelFreeStatus.ABOVE_ONE
        status[raw < -0.5] = ModelFreeStatus.BELOW_MINUS_HALF
    status[no_signal] = ModelFreeStatus.NO_SIGNAL
    s = np.where(no_signal, np.nan, np.clip(raw, -0.5, 1.0))
    return (s[0], status[0]) if single else (s, status)


def _background_array(background: ArrayLike, n: int, n_chi: int, single: bool) -> FloatArray:
    bg = np.asarray(background, dtype=float)
    if bg.ndim == 0:
        return bg
    if single and bg.shape == (n_chi,):
        return bg[None, :]
    if bg.shape == (n,):
        return bg[:, None]
    if bg.shape == (n, n_chi):
        return bg
    raise InputError(f"background must be a scalar, shape ({n},) or ({n}, {n_chi}); got {bg.shape}")


# ----------------------------------------------------------------------------------------------
# from fitted parameters


def _params_2d(model: ProfileModel, params: ArrayLike, what: str) -> tuple[FloatArray, bool]:
    p = np.asarray(params, dtype=float)
    single = p.ndim == 1
    p = np.atleast_2d(p)
    if p.ndim != 2 or p.shape[1] != model.n_par:
        raise InputError(
            f"{what} must have shape (n, {model.n_par}) for model {model.name!r} "
            f"({', '.join(model.param_names)}); got {np.shape(params)}"
        )
    return p, single


def order_parameter_from_model(
    model_name: str | ProfileModel, params: ArrayLike, *, n_theta: int = 2001
) -> FloatArray:
    """S of fitted distributions: the model's peak without its background, by quadrature.

    The oriented distribution is the model evaluated with its background parameters set to
    zero and its centre at 0 (so ``f(theta)``, theta from the director); S follows from the
    module's formula by Simpson's rule on ``n_theta`` points over [0, pi]. Rows whose amplitude
    is exactly zero (ISOTROPIC fits) give S = 0; the amplitude is otherwise irrelevant.

    Parameters
    ----------
    model_name : str or ProfileModel
        A name in :data:`pyscatter.kernels.models.MODELS`.
    params : array_like, shape (n, n_par) or (n_par,)
        Canonical parameters (e.g. ``FitResult.params``).
    n_theta : int
        Quadrature points, >= 3.

    Returns
    -------
    ndarray, shape (n,) (a scalar array for one parameter vector)
        S; NaN where the parameters are NaN.

    Examples
    --------
    >>> round(float(order_parameter_from_model("maier_saupe", [1.0, 16.0, 0.0, 0.0, 0.0])), 6)
    0.902703
    """
    from scipy import integrate

    model = get_model(model_name)
    p, single = _params_2d(model, params, "params")
    if isinstance(n_theta, bool) or not isinstance(n_theta, (int, np.integer)) or n_theta < 3:
        raise InputError(f"n_theta must be an integer >= 3; got {n_theta!r}")
    shape = p.copy()
    for name in model.background:
        shape[:, model.index(name)] = 0.0
    shape[:, model.index(model.center)] = 0.0
    # S is a ratio: the amplitude only matters when it is zero (no oriented part, S = 0);
    # a NaN amplitude (Maier--Saupe I in the kappa -> 0 limit) does not make S undefined
    i_amp = model.index(model.amplitude)
    zero = p[:, i_amp] == 0
    shape[:, i_amp] = 1.0
    shape[zero] = np.nan  # filled with S = 0 below
    theta = np.linspace(0.0, np.pi, n_theta)
    with np.errstate(all="ignore"):
        f = model.func(np.degrees(theta), shape)
        sin = np.sin(theta)
        p2 = 1.5 * np.cos(theta) ** 2 - 0.5
        s = integrate.simpson(f * p2 * sin, x=theta, axis=-1) / integrate.simpson(
            f * sin, x=theta, axis=-1
        )
    s = np.where(zero, 0.0, s)
    return s[0] if single else s


def director_from_params(
    model_name: str | ProfileModel, params: ArrayLike, errors: ArrayLike
) -> tuple[FloatArray, FloatArray]:
    """Director (chi of the intensity maximum, pyFAI convention) and its 1-sigma error.

    The parameters are put into the model's canonical form first (e.g. a Maier--Saupe
    ``kappa < 0`` turns the director by 90 degrees), then the centre is folded into [-90, 90).

    Parameters
    ----------
    model_name : str or ProfileModel
    params, errors : array_like, shape (n, n_par) or (n_par,)
        Fitted parameters and their 1-sigma errors.

    Returns
    -------
    director_deg, director_sigma_deg : ndarray, shape (n,)
        NaN where undefined (e.g. ISOTROPIC rows).

    Examples
    --------
    >>> d, e = director_from_params("maier_saupe", [1.0, -4.0, 10.0, 0.0, 0.0], [0, 0, 0.5, 0, 0])
    >>> float(d), float(e)
    (-80.0, 0.5)
    """
    model = get_model(model_name)
    p, single = _params_2d(model, params, "params")
    e, _ = _params_2d(model, errors, "errors")
    if e.shape != p.shape:
        raise InputError(f"errors must have the shape of params {p.shape}; got {e.shape}")
    cov = np.zeros(p.shape + (p.shape[1],))
    idx = np.arange(p.shape[1])
    cov[:, idx, idx] = e * e
    p, cov_canonical = model.normalise(p, cov)
    if cov_canonical is not None:
        cov = cov_canonical
    i = model.index(model.center)
    director = wrap_deg(p[:, i], 180.0)
    with np.errstate(invalid="ignore"):
        sigma = np.sqrt(cov[:, i, i])
    if single:
        return director[0], sigma[0]
    return director, sigma


# ----------------------------------------------------------------------------------------------
# of a block of fits (the OrderParameter process)


#: Relative step of the central differences that propagate errors through the quadrature
_REL_STEP = 1e-4


def _s_and_sigma(
    model: ProfileModel,
    params: np.ndarray,
    errors: np.ndarray,
    n_theta: int,
    correlations: dict[tuple[str, str], np.ndarray] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """S of each fitted distribution and its propagated 1-sigma error.

    Maier--Saupe: exact in kappa. Other models: quadrature of the peak shape, errors by central
    differences in each shape parameter, ``var = g^T C g`` with the stored correlations of the
    shape parameters (``correlations[(p, q)]``, shape (n,); taken as 0 when absent, as fits
    before they were stored).
    """
    if model.name == "maier_saupe":
        i = model.index("kappa")
        kappa = params[:, i]
        return order_parameter_maier_saupe(kappa), order_parameter_maier_saupe_sigma(
            kappa, errors[:, i]
        )
    s = order_parameter_from_model(model, params, n_theta=n_theta)
    terms = {}
    for name in shape_parameters(model):
        i = model.index(name)
        value = params[:, i]
        step = np.where(np.isfinite(value), _REL_STEP * np.maximum(np.abs(value), 1e-2), np.nan)
        hi, lo = params.copy(), params.copy()
        hi[:, i] += step
        lo[:, i] -= step
        with np.errstate(invalid="ignore"):
            deriv = (
                order_parameter_from_model(model, hi, n_theta=n_theta)
                - order_parameter_from_model(model, lo, n_theta=n_theta)
            ) / (2.0 * step)
            terms[name] = deriv * errors[:, i]
    var = sum(t * t for t in terms.values())
    for (first, second), rho in (correlations or {}).items():
        with np.errstate(invalid="ignore"):
            var = var + 2.0 * rho * terms[first] * terms[second]
    return s, np.sqrt(np.maximum(var, 0.0))


def _background_curves(model: ProfileModel, params: np.ndarray, chi: np.ndarray) -> np.ndarray:
    """The fitted linear background ``constant + slope * chi`` of each row, (n, n_chi)."""
    const, slope = (params[:, model.index(name)] for name in model.background)
    return const[:, None] + slope[:, None] * chi[None, :]


def order_block(
    model_name: str,
    chi: np.ndarray,
    params: np.ndarray,
    errors: np.ndarray,
    status: np.ndarray,
    profiles: np.ndarray,
    *,
    n_theta: int = 2001,
    correlations: dict[tuple[str, str], np.ndarray] | None = None,
) -> dict[str, np.ndarray]:
    """Order parameters of fitted profiles: S and its error, director, model-free <P2>.

    Parameters
    ----------
    model_name : str
        The model the profiles were fitted with.
    chi : ndarray, shape (n_chi,)
        Azimuth of the bins, degrees.
    params, errors : ndarray, shape (n, n_par)
        Canonical fitted parameters and 1-sigma errors.
    status : ndarray, shape (n,)
        FitStatus codes of the fits.
    profiles : ndarray, shape (n, n_chi)
        The measured profiles the fits were made on (NaN = empty bin).
    n_theta : int
        Quadrature points for models without a closed form.
    correlations : dict, optional
        ``{(p, q): rho}``, the fitted correlation (n,) of shape parameters p and q.

    Returns
    -------
    dict
        ``S``, ``S_sigma``, ``director``, ``director_sigma``, ``S_model_free`` (bounded to
        [-1/2, 1]) and ``S_model_free_status`` (:class:`~pyscatter.kernels.order.
        ModelFreeStatus` codes: where the raw ratio left the interval, or no signal), each (n,).
        ISOTROPIC rows have S = 0 with no error, director and model-free S; failed fits NaN.
        WEAK rows (a strength below 3 sigma: orientation not established) report S = 0 with
        the sigma of the fitted strength, so a peak fitted to noise never shows up as order;
        their status stays WEAK and the fitted values remain in the ProfileFit group.
    """
    model = get_model(model_name)
    s, s_sigma = _s_and_sigma(model, params, errors, n_theta, correlations)
    director, director_sigma = director_from_params(model, params, errors)
    background = _background_curves(model, params, chi)
    s_free, s_free_status = model_free_order_parameter(
        chi, profiles, director, background=background
    )
    isotropic = status == FitStatus.ISOTROPIC
    weak = status == FitStatus.WEAK
    s = np.where(isotropic | weak, 0.0, s)
    for arr in (s_sigma, director, director_sigma, s_free):
        arr[isotropic] = np.nan
    return {
        "S": s,
        "S_sigma": s_sigma,
        "director": director,
        "director_sigma": director_sigma,
        "S_model_free": s_free,
        "S_model_free_status": s_free_status,
    }
