"""Peak fitting in I(q) (or I(2theta)) windows, many spectra at once, and what peaks tell.

A peak window ``[lo, hi]`` of the radial axis ``x`` holds one peak on a smooth background::

    f(x) = area * P(x; position, fwhm, eta) + b0 + b1 (x - c) + b2 (x - c)^2

with ``c = (lo + hi) / 2`` (the background is centred for conditioning) and ``P`` a unit-area
profile of full width at half maximum ``fwhm``:

* ``gaussian``: ``eta = 0``; ``lorentzian``: ``eta = 1``;
* ``pseudo_voigt``: ``eta L + (1 - eta) G``, a Lorentzian and a Gaussian sharing ``fwhm``
  (so ``fwhm`` is the width of the sum too), ``eta`` in [0, 1] fitted.

Height and area relate by ``area = height * fwhm * (eta * pi/2 + (1 - eta) * sqrt(pi / (4 ln 2)))``.
The fit is the batched, weighted Levenberg--Marquardt of :func:`pyscatter.kernels.fitting.fit_profiles`
with a :class:`~pyscatter.kernels.models.ProfileModel` built per window (the window's bounds keep
``position`` inside it); :func:`fit_peaks_reference` is its ``scipy.optimize.curve_fit`` twin.

Crystallite size (Scherrer), in q: ``q = 4 pi sin(theta) / lambda`` gives
``dq = (2 pi / lambda) cos(theta) d(2 theta)``, so Scherrer's ``L = K lambda / (beta_2theta cos theta)``
becomes ``L = 2 pi K / beta_q`` whatever the wavelength, with the instrumental width removed in
quadrature (Gaussian convention) ``beta_q = sqrt(fwhm^2 - instrument_fwhm^2)``: :func:`scherrer_size`.
``L`` comes in the inverse unit of q (nm for q in 1/nm). On a 2theta axis the classic form
:func:`scherrer_size_two_theta` is used with the wavelength of the geometry.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from types import MappingProxyType

import numpy as np
from numpy.typing import ArrayLike, NDArray

from pyscatter.errors import InputError
from pyscatter.kernels.fitting import FitResult, FitStatus, fit_profiles, fit_profiles_reference
from pyscatter.kernels.models import ProfileModel

__all__ = [
    "BACKGROUNDS",
    "SHAPES",
    "PeakResult",
    "area_factor",
    "d_spacing",
    "d_spacing_two_theta",
    "derived_quantities",
    "fit_peaks",
    "fit_peaks_reference",
    "peak_model",
    "peak_profile",
    "scherrer_size",
    "scherrer_size_two_theta",
]

FloatArray = NDArray[np.float64]

SHAPES = ("pseudo_voigt", "gaussian", "lorentzian")
BACKGROUNDS = ("constant", "linear", "quadratic")

_LN2 = float(np.log(2.0))
_C_LOR = float(np.pi / 2.0)  # area / (height * fwhm) of a Lorentzian
_C_GAU = float(np.sqrt(np.pi / (4.0 * _LN2)))  # ... of a Gaussian
_FIXED_ETA = {"gaussian": 0.0, "lorentzian": 1.0}


def area_factor(eta: ArrayLike) -> FloatArray:
    """``area / (height * fwhm)`` of a pseudo-Voigt of Lorentzian fraction ``eta``.

    Examples
    --------
    >>> float(area_factor(1.0)) == np.pi / 2
    True
    """
    e = np.asarray(eta, dtype=float)
    return e * _C_LOR + (1.0 - e) * _C_GAU


def peak_profile(x: ArrayLike, position: ArrayLike, fwhm: ArrayLike, eta: ArrayLike) -> FloatArray:
    """Unit-height pseudo-Voigt ``eta L + (1 - eta) G`` (broadcasting inputs).

    Parameters
    ----------
    x : array_like
        Radial coordinate (any unit; ``position`` and ``fwhm`` in the same unit).
    position, fwhm, eta : array_like
        Centre, full width at half maximum (> 0) and Lorentzian fraction in [0, 1].

    Returns
    -------
    ndarray
        1 at ``position``, 1/2 at ``position +- fwhm / 2``.

    Examples
    --------
    >>> peak_profile([0.0, 0.5], 0.0, 1.0, 0.3).round(12).tolist()
    [1.0, 0.5]
    """
    u = (np.asarray(x, dtype=float) - np.asarray(position, dtype=float)) / np.asarray(fwhm, float)
    lor = 1.0 / (1.0 + 4.0 * u * u)
    gau = np.exp(-4.0 * _LN2 * u * u)
    return gau + np.asarray(eta, dtype=float) * (lor - gau)


# ----------------------------------------------------------------------------------------------
# the model of one window


@dataclass(frozen=True)
class _Layout:
    shape: str
    n_bg: int
    centre: float

    @property
    def free_eta(self) -> bool:
        return self.shape == "pseudo_voigt"

    @property
    def n_peak(self) -> int:
        return 4 if self.free_eta else 3

    def names(self) -> tuple[str, ...]:
        peak = ("area", "position", "fwhm") + (("eta",) if self.free_eta else ())
        return peak + tuple(f"b{i}" for i in range(self.n_bg))

    def split(self, params: ArrayLike):
        p = np.asarray(params, dtype=float)
        area, pos, fwhm = (p[..., i, None] for i in range(3))
        eta = p[..., 3, None] if self.free_eta else np.full_like(area, _FIXED_ETA[self.shape])
        bg = [p[..., self.n_peak + i, None] for i in range(self.n_bg)]
        return area, pos, fwhm, eta, bg


def _func(layout: _Layout, x: ArrayLike, params: ArrayLike) -> FloatArray:
    x = np.asarray(x, dtype=float)
    area, pos, fwhm, eta, bg = layout.split(params)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = area * peak_profile(x, pos, fwhm, eta) / (fwhm * area_factor(eta))
    dx = x - layout.centre
    for i, b in enumerate(bg):
        out = out + b * dx**i
    return out


def _jacobian(layout: _Layout, x: ArrayLike, params: ArrayLike) -> FloatArray:
    """Analytic derivatives, shape (n, m, n_par)."""
    x = np.asarray(x, dtype=float)
    area, pos, fwhm, eta, _ = layout.split(params)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        u = (x - pos) / fwhm
        lor = 1.0 / (1.0 + 4.0 * u * u)
        gau = np.exp(-4.0 * _LN2 * u * u)
        shape = gau + eta * (lor - gau)
        ds_du = eta * (-8.0 * u * lor * lor) + (1.0 - eta) * (-8.0 * _LN2 * u * gau)
        c = area_factor(eta)
        unit = shape / (fwhm * c)  # unit-area profile
        cols = [
            unit,
            -area * ds_du / (fwhm * fwhm * c),
            -area * (u * ds_du + shape) / (fwhm * fwhm * c),
        ]
        if layout.free_eta:
            cols.append(area / fwhm * ((lor - gau) / c - shape * (_C_LOR - _C_GAU) / (c * c)))
    dx = x - layout.centre
    cols += [np.broadcast_to(dx**i, unit.shape) for i in range(layout.n_bg)]
    return np.stack(cols, axis=-1)


def _masked_mean(y: FloatArray, use: NDArray[np.bool_]) -> FloatArray:
    n = use.sum(axis=-1)
    total = np.where(use, y, 0.0).sum(axis=-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(n > 0, total / np.maximum(n, 1), np.nan)


def _estimate(layout: _Layout, x: ArrayLike, spectra: ArrayLike) -> FloatArray:
    """Start values: a line through the window's edges, the highest point above it, the
    width of the bins above half of it, ``eta = 0.5``."""
    x = np.asarray(x, dtype=float)
    y = np.atleast_2d(np.asarray(spectra, dtype=float))
    valid = np.isfinite(y)
    m = x.size
    edge = max(1, m // 8)
    left, right = np.zeros(m, bool), np.zeros(m, bool)
    left[:edge], right[-edge:] = True, True
    y_l, y_r = _masked_mean(y, valid & left), _masked_mean(y, valid & right)
    x_l, x_r = x[:edge].mean(), x[-edge:].mean()
    slope = (y_r - y_l) / (x_r - x_l)
    b0 = y_l + slope * (layout.centre - x_l)
    net = np.where(valid, y - (b0[:, None] + slope[:, None] * (x - layout.centre)), -np.inf)
    top = np.argmax(net, axis=1)
    height = np.take_along_axis(net, top[:, None], axis=1)[:, 0]
    height = np.where(np.isfinite(height), height, np.nan)
    spacing = (x[-1] - x[0]) / max(m - 1, 1)
    above = (net > 0.5 * height[:, None]).sum(axis=1)
    fwhm = np.clip(above * spacing, 2.0 * spacing, x[-1] - x[0])
    eta = 0.5 if layout.free_eta else _FIXED_ETA[layout.shape]
    area = height * fwhm * area_factor(eta)
    cols = [area, x[top], fwhm] + ([np.full_like(area, eta)] if layout.free_eta else [])
    bg = [b0, slope, np.zeros_like(b0)][: layout.n_bg]
    return np.stack(cols + bg, axis=-1)


def peak_model(
    window: tuple[float, float], *, shape: str = "pseudo_voigt", background: str = "linear"
) -> ProfileModel:
    """The fit model of one peak window, for :func:`~pyscatter.kernels.fitting.fit_profiles`.

    Parameters
    ----------
    window : (float, float)
        ``(lo, hi)`` of the radial axis; ``position`` is bounded to it, ``fwhm`` to
        ``(0, 2 (hi - lo)]``.
    shape : {"pseudo_voigt", "gaussian", "lorentzian"}
    background : {"constant", "linear", "quadratic"}
        Polynomial in ``x - (lo + hi) / 2``.

    Returns
    -------
    ProfileModel
        Parameters ``(area, position, fwhm[, eta], b0[, b1[, b2]])``.
    """
    if shape not in SHAPES:
        raise InputError(f"unsupported peak shape {shape!r}; expected one of {', '.join(SHAPES)}")
    if background not in BACKGROUNDS:
        raise InputError(
            f"unsupported background {background!r}; expected one of {', '.join(BACKGROUNDS)}"
        )
    lo, hi = (float(v) for v in window)
    if not (np.isfinite(lo) and np.isfinite(hi) and hi > lo):
        raise InputError(f"a peak window must be (lo, hi) with lo < hi; got {window!r}")
    layout = _Layout(shape, BACKGROUNDS.index(background) + 1, 0.5 * (lo + hi))
    names = layout.names()
    inf = np.inf
    lower = [-inf, lo, 1e-9 * (hi - lo)] + ([0.0] if layout.free_eta else [])
    upper = [inf, hi, 2.0 * (hi - lo)] + ([1.0] if layout.free_eta else [])
    lower += [-inf] * layout.n_bg
    upper += [inf] * layout.n_bg
    return ProfileModel(
        name=f"peak_{shape}_{background}",
        param_names=names,
        func=lambda x, p: _func(layout, x, p),
        jacobian=lambda x, p: _jacobian(layout, x, p),
        estimate=lambda x, y: _estimate(layout, x, y),
        normalise=lambda p, cov=None: (np.array(p, dtype=float), cov),
        units=("intensity*x", "x", "x")
        + (("1",) if layout.free_eta else ())
        + ("intensity", "intensity/x", "intensity/x^2")[: layout.n_bg],
        background=("b0", "b1") if layout.n_bg > 1 else ("b0", "b0"),
        center="position",
        amplitude="area",
        strength="area",
        isotropic=MappingProxyType({}),
        lower=tuple(lower),
        upper=tuple(upper),
    )


# ----------------------------------------------------------------------------------------------
# fitting many spectra


@dataclass(frozen=True)
class PeakResult:
    """Fits of ``n`` spectra in ``n_peaks`` windows; every array has shape ``(n, n_peaks)``.

    Attributes
    ----------
    position, position_sigma : ndarray
        Peak centre and its 1-sigma error (unit of the radial axis).
    fwhm, fwhm_sigma : ndarray
        Full width at half maximum and its error.
    area, area_sigma : ndarray
        Integrated intensity above the background (intensity × axis unit) and its error.
    height : ndarray
        Peak maximum above the background, ``area / (fwhm * area_factor(eta))``.
    eta : ndarray
        Lorentzian fraction (0 for Gaussian, 1 for Lorentzian peaks).
    r2 : ndarray
        Weighted coefficient of determination in the window.
    status : ndarray of int8
        :class:`~pyscatter.kernels.fitting.FitStatus`: OK; WEAK (area below 3 sigma, e.g. a
        missing peak); NOT_CONVERGED; TOO_FEW_POINTS; FAILED (non-finite, a negative area, or
        the centre on a window edge: no peak inside). Values are NaN unless OK or WEAK.
    """

    position: FloatArray
    position_sigma: FloatArray
    fwhm: FloatArray
    fwhm_sigma: FloatArray
    area: FloatArray
    area_sigma: FloatArray
    height: FloatArray
    eta: FloatArray
    r2: FloatArray
    status: NDArray[np.int8]


def _check_windows(x: FloatArray, windows: Sequence[tuple[float, float]], n_par: int):
    out = []
    for k, window in enumerate(windows):
        try:
            lo, hi = (float(v) for v in window)
        except (TypeError, ValueError):
            raise InputError(f"window {k} must be a pair (lo, hi); got {window!r}") from None
        sel = np.flatnonzero((x >= lo) & (x <= hi))
        if hi <= lo or sel.size <= n_par:
            raise InputError(
                f"window {k} ({lo:g}, {hi:g}) holds {sel.size} points of the axis "
                f"[{x.min():g}, {x.max():g}]; a fit needs more than {n_par}"
            )
        out.append(((lo, hi), sel))
    return out


def _fit(fitter, x, spectra, sigma, windows, shape, background, max_iter) -> PeakResult:
    x = np.asarray(x, dtype=float)
    y = np.asarray(spectra, dtype=float)
    if x.ndim != 1 or y.ndim != 2 or y.shape[1] != x.size:
        raise InputError(
            f"spectra must have shape (n, {x.size}) to match the axis; got {np.shape(spectra)}"
        )
    s = None if sigma is None else np.broadcast_to(np.asarray(sigma, dtype=float), y.shape)
    if not windows:
        raise InputError("at least one peak window is required")
    peak_model((0.0, 1.0), shape=shape, background=background)  # checks shape and background
    n_par = 3 + (shape == "pseudo_voigt") + BACKGROUNDS.index(background) + 1
    checked = _check_windows(x, windows, n_par)
    n, n_peaks = y.shape[0], len(checked)
    names = ("position", "position_sigma", "fwhm", "fwhm_sigma", "area", "area_sigma", "height")
    cols: dict[str, FloatArray] = {k: np.full((n, n_peaks), np.nan) for k in (*names, "eta", "r2")}
    status = np.zeros((n, n_peaks), dtype=np.int8)
    for j, ((lo, hi), sel) in enumerate(checked):
        model = peak_model((lo, hi), shape=shape, background=background)
        res: FitResult = fitter(
            x[sel],
            y[:, sel],
            None if s is None else s[:, sel],
            model=model,
            max_iter=max_iter,
            absolute_sigma=s is not None,
            isotropy_alpha=None,
        )
        st = res.status.copy()
        pos = res["position"]
        with np.errstate(invalid="ignore"):
            edge = (pos - lo <= 1e-6 * (hi - lo)) | (hi - pos <= 1e-6 * (hi - lo))
        st[edge & np.isin(st, (FitStatus.OK, FitStatus.WEAK))] = FitStatus.FAILED
        good = np.isin(st, (FitStatus.OK, FitStatus.WEAK))
        eta = res["eta"] if shape == "pseudo_voigt" else np.full(n, _FIXED_ETA[shape])
        err = dict(zip(model.param_names, res.errors.T, strict=True))
        values = {
            "position": pos,
            "position_sigma": err["position"],
            "fwhm": res["fwhm"],
            "fwhm_sigma": err["fwhm"],
            "area": res["area"],
            "area_sigma": err["area"],
            "eta": eta,
            "r2": res.r2,
        }
        with np.errstate(divide="ignore", invalid="ignore"):
            values["height"] = res["area"] / (res["fwhm"] * area_factor(eta))
        for key, value in values.items():
            cols[key][:, j] = np.where(good, value, np.nan)
        status[:, j] = st
    return PeakResult(status=status, **cols)


def fit_peaks(
    x: ArrayLike,
    spectra: ArrayLike,
    sigma: ArrayLike | None = None,
    *,
    windows: Sequence[tuple[float, float]],
    shape: str = "pseudo_voigt",
    background: str = "linear",
    max_iter: int = 100,
) -> PeakResult:
    """Fit one peak on a polynomial background in each window, for every spectrum at once.

    Parameters
    ----------
    x : array_like, shape (m,)
        Radial axis (q in 1/nm or 1/A, or 2theta), increasing.
    spectra : array_like, shape (n, m)
        Intensities; NaN bins are excluded from their row.
    sigma : array_like, shape (n, m), optional
        1-sigma errors: weights ``1/sigma^2`` and absolute errors. Without it every bin weighs 1
        and errors are scaled by the reduced chi^2 (like ``curve_fit``).
    windows : sequence of (float, float)
        ``(lo, hi)`` per peak, in the unit of ``x``; each must hold more bins than parameters.
    shape : {"pseudo_voigt", "gaussian", "lorentzian"}
    background : {"constant", "linear", "quadratic"}
    max_iter : int
        Levenberg--Marquardt iterations per window.

    Returns
    -------
    PeakResult
        Arrays of shape (n, n_peaks).

    Raises
    ------
    InputError
        Bad shapes, an unknown shape/background, a window with too few bins.

    Examples
    --------
    >>> x = np.linspace(5.0, 7.0, 201)
    >>> y = 200 * peak_profile(x, 6.02, 0.1, 0.4) + 10 + 3 * (x - 6)
    >>> res = fit_peaks(x, y[None], windows=[(5.7, 6.3)])
    >>> round(float(res.position[0, 0]), 9), round(float(res.eta[0, 0]), 9)
    (6.02, 0.4)
    """
    return _fit(fit_profiles, x, spectra, sigma, windows, shape, background, max_iter)


def fit_peaks_reference(
    x: ArrayLike,
    spectra: ArrayLike,
    sigma: ArrayLike | None = None,
    *,
    windows: Sequence[tuple[float, float]],
    shape: str = "pseudo_voigt",
    background: str = "linear",
    max_iter: int = 100,
) -> PeakResult:
    """:func:`fit_peaks` spectrum by spectrum with ``scipy.optimize.curve_fit`` (for tests)."""
    return _fit(fit_profiles_reference, x, spectra, sigma, windows, shape, background, max_iter)


# ----------------------------------------------------------------------------------------------
# what peak positions and widths tell


def d_spacing(q: ArrayLike) -> FloatArray:
    """Lattice spacing ``2 pi / q`` (inverse unit of q: nm for q in 1/nm).

    Examples
    --------
    >>> float(d_spacing(2 * np.pi))
    1.0
    """
    with np.errstate(divide="ignore"):
        return 2.0 * np.pi / np.asarray(q, dtype=float)


def d_spacing_two_theta(two_theta_deg: ArrayLike, wavelength: float) -> FloatArray:
    """Bragg's lattice spacing ``lambda / (2 sin theta)`` (the unit of ``wavelength``).

    Examples
    --------
    >>> round(float(d_spacing_two_theta(60.0, 0.1)), 12)
    0.1
    """
    two_theta = np.asarray(two_theta_deg, dtype=float)
    return wavelength / (2.0 * np.sin(np.radians(two_theta) / 2.0))


def scherrer_size(
    fwhm_q: ArrayLike, *, instrument_fwhm_q: ArrayLike = 0.0, k: float = 0.9
) -> FloatArray:
    """Scherrer crystallite size from a peak width in q: ``2 pi K / sqrt(fwhm^2 - inst^2)``.

    Parameters
    ----------
    fwhm_q : array_like
        Observed full width at half maximum in q (1/nm or 1/A).
    instrument_fwhm_q : array_like
        Instrumental width in the same unit, removed in quadrature.
    k : float
        Scherrer constant (0.9 for spherical crystallites and FWHM).

    Returns
    -------
    ndarray
        Size in the inverse unit of q (nm for 1/nm); NaN where the peak is not broader than the
        instrument.

    Examples
    --------
    >>> round(float(scherrer_size(0.05, instrument_fwhm_q=0.03, k=0.9)), 6)  # 2 pi 0.9 / 0.04
    141.371669
    """
    b = np.asarray(fwhm_q, dtype=float)
    bi = np.asarray(instrument_fwhm_q, dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        beta2 = b * b - bi * bi
        return np.where(
            beta2 > 0, 2.0 * np.pi * k / np.sqrt(np.where(beta2 > 0, beta2, 1.0)), np.nan
        )


def scherrer_size_two_theta(
    two_theta_deg: ArrayLike,
    fwhm_deg: ArrayLike,
    *,
    wavelength: float,
    instrument_fwhm_deg: ArrayLike = 0.0,
    k: float = 0.9,
) -> FloatArray:
    """Classic Scherrer size ``K lambda / (beta cos theta)``, beta in radians of 2theta.

    ``beta = sqrt(fwhm^2 - instrument^2)``; the size comes in the unit of ``wavelength``.

    Examples
    --------
    >>> round(float(scherrer_size_two_theta(20.0, 0.5, wavelength=0.1)), 6)  # nm
    10.472339
    """
    b = np.radians(np.asarray(fwhm_deg, dtype=float))
    bi = np.radians(np.asarray(instrument_fwhm_deg, dtype=float))
    theta = np.radians(np.asarray(two_theta_deg, dtype=float)) / 2.0
    with np.errstate(invalid="ignore", divide="ignore"):
        beta2 = b * b - bi * bi
        beta = np.sqrt(np.where(beta2 > 0, beta2, np.nan))
        return k * wavelength / (beta * np.cos(theta))


def derived_quantities(
    position: ArrayLike,
    fwhm: ArrayLike,
    *,
    axis_kind: str,
    wavelength: float | None = None,
    instrument_fwhm: ArrayLike | None = None,
    k: float = 0.9,
) -> dict[str, FloatArray]:
    """``d_spacing`` and (with an instrument width) ``crystallite_size`` of fitted peaks.

    Parameters
    ----------
    position, fwhm : array_like
        Fitted peak positions and widths in the unit of the radial axis.
    axis_kind : {"q", "2theta_deg", "2theta_rad"}
        The radial axis; any other kind derives nothing.
    wavelength : float, optional
        Metres; needed on a 2theta axis (nothing is derived without it there).
    instrument_fwhm : array_like, optional
        Instrumental width in the unit of the axis; without it no size is derived.
    k : float
        Scherrer constant.

    Returns
    -------
    dict
        ``d_spacing`` (inverse unit of q, or nm on a 2theta axis) and ``crystallite_size``
        (:func:`scherrer_size` or :func:`scherrer_size_two_theta`, nm on a 2theta axis), each
        present only when it can be derived.

    Examples
    --------
    >>> out = derived_quantities(2 * np.pi, 0.05, axis_kind="q", instrument_fwhm=0.03)
    >>> float(out["d_spacing"]), round(float(out["crystallite_size"]), 6)
    (1.0, 141.371669)
    """
    out: dict[str, FloatArray] = {}
    pos = np.asarray(position, dtype=float)
    width = np.asarray(fwhm, dtype=float)
    if axis_kind == "q":
        out["d_spacing"] = d_spacing(pos)
        if instrument_fwhm is not None:
            out["crystallite_size"] = scherrer_size(
                width, instrument_fwhm_q=np.asarray(instrument_fwhm), k=k
            )
    elif axis_kind in ("2theta_deg", "2theta_rad") and wavelength is not None:
        to_deg = 1.0 if axis_kind == "2theta_deg" else 180.0 / np.pi
        lam_nm = wavelength * 1e9
        two_theta = pos * to_deg
        out["d_spacing"] = d_spacing_two_theta(two_theta, lam_nm)
        if instrument_fwhm is not None:
            out["crystallite_size"] = scherrer_size_two_theta(
                two_theta,
                width * to_deg,
                wavelength=lam_nm,
                instrument_fwhm_deg=np.asarray(instrument_fwhm) * to_deg,
                k=k,
            )
    return out
