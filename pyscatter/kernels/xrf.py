"""Fluorescence spectra of many positions at once: SNIP background, dead time, fast linear fit.

SNIP background
    The Statistics-sensitive Non-linear Iterative Peak-clipping of Ryan et al. (1988) as
    Morháč et al. (1997) and PyMca write it: optionally a quadratic Savitzky-Golay smoothing,
    optionally the log-log-sqrt (LLS) transform ``v = ln(ln(sqrt(y + 1) + 1) + 1)`` that makes
    peaks of very different heights clip alike, then for window half-widths
    ``p = width, width - 1, ..., 1`` every channel ``i`` with ``p <= i < n - p`` (the others are
    left as they are) becomes ``min(v[i], (v[i - p] + v[i + p]) / 2)``, all channels of one
    window from the values before it; then the inverse transform. This is PyMca's
    ``SpecfitFuns.snip1d(y, width, 0, llm_flag)`` step for step (the same operations in the same
    order, hence the same bits); its smoothing argument (1-2-1 passes) is not offered here.
    PyMca's fast linear fit smooths with ``SavitskyGolay(y, stripfilterwidth)`` before
    ``snip1d(y, width, 0)`` without LLS: ``smooth_width`` and ``lls=False`` do the same except
    in the first and last ``smooth_width`` channels (PyMca treats the ends of windows above 5
    its own way; here the ``smooth_width // 2`` end channels are left unsmoothed).
    Smoothing reduces the bias of SNIP at low counts (it follows the lower envelope of the
    noise): on the generator's continuum of up to 20 counts a channel, unsmoothed SNIP is 4 to
    8 counts low; ``smooth_width`` of about the peaks' FWHM in channels removes most of that.

Fast linear fit
    Every spectrum ``y`` is ``A a + b + noise`` with the same design matrix ``A`` (channels ×
    line groups, :func:`pyscatter.kernels.xrf_lines.design_matrix`) and a background ``b``
    estimated beforehand (SNIP): the unweighted least-squares areas are ``a = A+ (y - b)`` with
    the pseudo-inverse ``A+`` computed once, so a spectrum costs one product with ``A+`` (as
    PyMca's FastXRFLinearFit without weights). Errors by linear propagation of the Poisson
    variance of the counts, ``sigma_k^2 = sum_c (A+_kc)^2 max(y_c, 1)`` (the background taken as
    known); reduced chi^2 ``sum_c (y - b - A a)_c^2 / max(y_c, 1) / (n_c - n_groups)``.
    The products are those of :mod:`pyscatter.kernels.row_products` (no BLAS), so a spectrum's
    result is the same bits whatever block it is fitted in.

Dead time
    Measured counts are the true ones times ``live / real``; the correction factor is
    ``real / live = 1 / (1 - percent / 100)``. Fitted areas times the factor are the counts over
    the real (counting) time; the factor is recorded, the raw counts are never changed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.ndimage import correlate1d
from scipy.signal import savgol_coeffs

from pyscatter.errors import InputError
from pyscatter.kernels.row_products import bin_dot, combine
from pyscatter.kernels.xrf_lines import DetectorResponse, LineGroup, design_matrix

__all__ = [
    "XrfFit",
    "channel_range",
    "dead_time_factor",
    "fast_linear_fit",
    "fit_linear",
    "model_spectra",
    "snip_background",
]

FloatArray = NDArray[np.float64]

#: rows of a block worked on together (SNIP, fit): ~1 MB of float64 per 128 channels
_BLOCK_VALUES = 1 << 17


def _as_spectra(spectra: ArrayLike, name: str = "spectra") -> FloatArray:
    y = np.asarray(spectra)
    if y.ndim not in (1, 2) or y.shape[-1] < 2:
        raise InputError(
            f"{name}: expected (n_channels,) or (n_spectra, n_channels), got shape {y.shape}"
        )
    if not (np.issubdtype(y.dtype, np.number) and not np.issubdtype(y.dtype, np.complexfloating)):
        raise InputError(f"{name}: expected real numbers, got dtype {y.dtype}")
    return y


def _savitzky_golay(y: FloatArray, width: int) -> FloatArray:
    """Quadratic Savitzky-Golay smoothing along the channels, the ``width // 2`` channels at
    either end left as they are (as PyMca's ``SavitskyGolay``).

    The rows are smoothed as one long line (one pass of :func:`scipy.ndimage.correlate1d`); the
    channels whose window would reach into the next row are the ends, put back afterwards.
    """
    half = width // 2
    rows = np.ascontiguousarray(y, dtype=np.float64).reshape(-1, y.shape[-1])
    if rows.shape[1] <= 2 * half:
        return rows.reshape(y.shape).copy()
    out = correlate1d(rows.reshape(-1), savgol_coeffs(width, 2), mode="constant")
    out = out.reshape(rows.shape)
    out[:, :half] = rows[:, :half]
    out[:, -half:] = rows[:, -half:]
    return out.reshape(y.shape)


def _clip_rows(v: FloatArray, width: int, sweeps: int) -> None:
    """SNIP windows ``p = width .. 1`` (``sweeps`` times) on the rows of ``v`` (C-contiguous
    2-D), in place.

    The block is clipped as one long line (contiguous 1-D operations are several times faster
    than their 2-D strided form); the ``p`` channels at either end of each row, which must not
    change, are saved before and put back after each window.
    """
    n = v.shape[1]
    flat = v.reshape(-1)
    size = flat.size
    tmp = np.empty(size)
    for _ in range(sweeps):
        for p in range(min(width, (n - 1) // 2), 0, -1):
            left = v[:, :p].copy()
            right = v[:, n - p :].copy()
            t = tmp[: size - 2 * p]
            np.add(flat[: size - 2 * p], flat[2 * p :], out=t)
            t *= 0.5
            np.minimum(flat[p : size - p], t, out=flat[p : size - p])
            v[:, :p] = left
            v[:, n - p :] = right


def snip_background(
    spectra: ArrayLike,
    width: int,
    *,
    iterations: int | None = None,
    smooth_width: int = 0,
    lls: bool = True,
) -> FloatArray:
    """SNIP background of a batch of spectra.

    Parameters
    ----------
    spectra : array_like
        (n_channels,) or (n_spectra, n_channels) counts.
    width : int
        Largest clipping half-window in channels (PyMca's ``snipwidth``): about the FWHM of the
        widest peak, or somewhat more (peaks narrower than ``2 width`` channels are clipped).
    iterations : int or None
        Sweeps of the windows ``width .. 1`` (None: 1, as PyMca).
    smooth_width : int
        Quadratic Savitzky-Golay smoothing over this many channels first (odd, >= 3; 0: none).
    lls : bool
        Clip the log-log-sqrt transform of the counts (negative values are clipped to 0 first).

    Returns
    -------
    ndarray
        float64, the shape of ``spectra``.
    """
    y = _as_spectra(spectra)
    if isinstance(width, bool) or not isinstance(width, (int, np.integer)) or width < 0:
        raise InputError(f"width: expected an integer >= 0 (channels), got {width!r}")
    sweeps = 1 if iterations is None else iterations
    if isinstance(sweeps, bool) or not isinstance(sweeps, (int, np.integer)) or sweeps < 1:
        raise InputError(f"iterations: expected an integer >= 1 or None, got {iterations!r}")
    if smooth_width not in (0, 1) and (smooth_width < 3 or smooth_width % 2 == 0):
        raise InputError(f"smooth_width: expected 0 or an odd number >= 3, got {smooth_width!r}")
    rows = np.asarray(y, dtype=np.float64).reshape(-1, y.shape[-1])
    out = np.empty(rows.shape)
    step = max(1, _BLOCK_VALUES // rows.shape[1])
    for start in range(0, rows.shape[0], step):
        v = np.array(rows[start : start + step], order="C")  # a copy, clipped in place
        if smooth_width >= 3:
            v = _savitzky_golay(v, smooth_width)
        if lls:  # ln(ln(sqrt(v + 1) + 1) + 1), in place
            np.maximum(v, 0.0, out=v)
            v += 1.0
            np.sqrt(v, out=v)
            v += 1.0
            np.log(v, out=v)
            v += 1.0
            np.log(v, out=v)
        _clip_rows(v, int(width), int(sweeps))
        if lls:  # (exp(exp(v) - 1) - 1)^2 - 1
            np.exp(v, out=v)
            v -= 1.0
            np.exp(v, out=v)
            v -= 1.0
            v *= v
            v -= 1.0
        out[start : start + step] = v
    return out.reshape(y.shape)


def dead_time_factor(
    *,
    percent: ArrayLike | None = None,
    live_time: ArrayLike | None = None,
    real_time: ArrayLike | None = None,
    factor: ArrayLike | None = None,
) -> FloatArray:
    """The dead-time correction factor (real / live time), from one of its recorded forms.

    Parameters
    ----------
    percent : array_like, optional
        Dead time in percent of the real time, ``0 <= percent < 100``: factor
        ``1 / (1 - percent / 100)``.
    live_time, real_time : array_like, optional
        Both, positive, of one shape (or broadcastable), ``live <= real``: factor ``real / live``.
    factor : array_like, optional
        The factor itself, ``>= 1``.

    Returns
    -------
    ndarray
        float64 factors, the shape of the input.

    Raises
    ------
    InputError
        Not exactly one form given, or a value out of range (named with the parameter).
    """
    forms = [
        percent is not None,
        live_time is not None or real_time is not None,
        factor is not None,
    ]
    if sum(forms) != 1:
        raise InputError(
            "dead_time_factor: give exactly one of percent=, live_time= with real_time=, factor="
        )
    if percent is not None:
        p = _finite("percent", percent)
        bad = (p < 0) | (p >= 100)
        if bad.any():
            raise InputError(f"percent: expected 0 <= percent < 100, got {p[bad].flat[0]!r}")
        return 1.0 / (1.0 - p / 100.0)
    if factor is not None:
        f = _finite("factor", factor)
        if (f < 1).any():
            raise InputError(f"factor: expected a correction factor >= 1, got {f[f < 1].flat[0]!r}")
        return f
    if live_time is None or real_time is None:
        raise InputError("dead_time_factor: live_time= and real_time= go together")
    live = _finite("live_time", live_time)
    real = _finite("real_time", real_time)
    try:
        live, real = np.broadcast_arrays(live, real)
    except ValueError:
        raise InputError(
            f"live_time, real_time: shapes {live.shape} and {real.shape} do not match"
        ) from None
    for name, value in (("live_time", live), ("real_time", real)):
        if (value <= 0).any():
            raise InputError(f"{name}: expected times > 0, got {value[value <= 0].flat[0]!r}")
    if (live > real).any():
        i = np.flatnonzero(live > real)[0]
        raise InputError(
            f"live_time: expected live <= real time, got live {live.flat[i]!r} > real {real.flat[i]!r}"
        )
    return real / live


def _finite(name: str, value: ArrayLike) -> FloatArray:
    try:
        a = np.array(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise InputError(f"{name}: expected numbers, got {value!r}") from None
    if not np.isfinite(a).all():
        raise InputError(f"{name}: expected finite values, got {a[~np.isfinite(a)].flat[0]!r}")
    return a


@dataclass
class XrfFit:
    """Areas of the line groups in many spectra.

    Attributes
    ----------
    areas : ndarray
        (n, n_groups) float64, counts of each group (not corrected for dead time).
    sigma : ndarray
        (n, n_groups) float64, their 1-sigma errors.
    chi2_reduced : ndarray
        (n,) float64, Poisson-weighted reduced chi^2 over the fitted channels.
    background : ndarray or None
        (n, n_channels) float64, the background subtracted (NaN outside the fitted channels of
        :func:`fast_linear_fit`), or None.
    names : list of str
        The groups' names (``"Fe_K"``), the columns of ``areas``.
    """

    areas: FloatArray
    sigma: FloatArray
    chi2_reduced: FloatArray
    background: FloatArray | None
    names: list[str]


def _check_slice(channel_slice: slice, n_channels: int, n_groups: int) -> slice:
    if not isinstance(channel_slice, slice):
        raise InputError(f"channel_slice: expected a slice, got {channel_slice!r}")
    start, stop, step = channel_slice.indices(n_channels)
    if step != 1:
        raise InputError(f"channel_slice: expected a step of 1, got {channel_slice!r}")
    for bound in (channel_slice.start, channel_slice.stop):
        if bound is not None and not -n_channels <= bound <= n_channels:
            raise InputError(f"channel_slice: {channel_slice!r} outside the {n_channels} channels")
    if stop - start <= n_groups:
        raise InputError(
            f"channel_slice: {channel_slice!r} keeps {max(stop - start, 0)} of {n_channels} "
            f"channels, expected more than the {n_groups} line groups"
        )
    return slice(start, stop)


def _check_columns(design: FloatArray, names: Sequence[str], sl: slice) -> None:
    """Refuse groups with (almost) none of their area in the fitted channels."""
    inside = design[sl].sum(axis=0)
    empty = [name for name, value in zip(names, inside, strict=True) if not value >= 1e-3]
    if empty:
        raise InputError(
            f"groups {empty}: less than 0.1 % of their area in the fitted channels {sl.start} to "
            f"{sl.stop - 1}; leave them out or widen the fit range"
        )


def _fit_block(
    y: FloatArray, b: FloatArray | None, design: FloatArray, pinv: FloatArray
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Areas, sigma and chi^2_red of rows ``y`` (already cut to the fitted channels)."""
    net = y if b is None else y - b
    areas = bin_dot("nm,km->nk", net, pinv)
    var = np.maximum(y, 1.0)
    sigma = np.sqrt(bin_dot("nm,km->nk", var, pinv * pinv))
    resid = net - combine(areas, design)
    dof = y.shape[1] - design.shape[1]
    chi2 = bin_dot("nm,nm->n", resid, resid / var) / dof
    return areas, sigma, chi2


def fit_linear(
    spectra: ArrayLike,
    design: ArrayLike,
    *,
    background: ArrayLike | None = None,
    channel_slice: slice = slice(None),
    names: Sequence[str] | None = None,
) -> XrfFit:
    """Unweighted linear least-squares areas of the columns of ``design`` in every spectrum.

    Parameters
    ----------
    spectra : array_like
        (n, n_channels) or (n_channels,) counts.
    design : array_like
        (n_channels, n_groups), e.g. from :func:`~pyscatter.kernels.xrf_lines.design_matrix`.
    background : array_like, optional
        The background of each spectrum, the shape of ``spectra`` (None: none).
    channel_slice : slice
        The fitted channels (step 1).
    names : sequence of str, optional
        The groups' names (default ``"g0"``, ``"g1"`` …).

    Returns
    -------
    XrfFit
        ``areas = A+ (y - b)`` with ``A+`` the pseudo-inverse of ``design[channel_slice]``; errors
        and chi^2 as the module says. The background is returned as given (float64).
    """
    y_in = _as_spectra(spectra)
    a = np.asarray(design, dtype=np.float64)
    if a.ndim != 2 or a.shape[0] != y_in.shape[-1] or a.shape[1] < 1:
        raise InputError(
            f"design: expected ({y_in.shape[-1]}, n_groups) for spectra of {y_in.shape[-1]} "
            f"channels, got shape {a.shape}"
        )
    if not np.isfinite(a).all():
        raise InputError("design: expected finite values")
    if names is None:
        names = [f"g{i}" for i in range(a.shape[1])]
    if len(names) != a.shape[1]:
        raise InputError(f"names: expected {a.shape[1]} names, got {len(names)}")
    sl = _check_slice(channel_slice, a.shape[0], a.shape[1])
    _check_columns(a, names, sl)
    y = y_in.reshape(-1, y_in.shape[-1])
    b = None
    if background is not None:
        b_in = np.asarray(background, dtype=np.float64)
        if b_in.shape != y_in.shape:
            raise InputError(
                f"background: expected the shape of spectra {y_in.shape}, got {b_in.shape}"
            )
        b = b_in.reshape(y.shape)
    a_fit = np.ascontiguousarray(a[sl])
    pinv = np.ascontiguousarray(np.linalg.pinv(a_fit))
    n, k = y.shape[0], a.shape[1]
    areas, sigma, chi2 = np.empty((n, k)), np.empty((n, k)), np.empty(n)
    step = max(1, _BLOCK_VALUES // y.shape[1])
    for s in range(0, n, step):
        rows = slice(s, s + step)
        yb = y[rows, sl].astype(np.float64)
        bb = None if b is None else b[rows, sl]
        areas[rows], sigma[rows], chi2[rows] = _fit_block(yb, bb, a_fit, pinv)
    return XrfFit(areas=areas, sigma=sigma, chi2_reduced=chi2, background=b, names=list(names))


def model_spectra(
    areas: ArrayLike, design: ArrayLike, background: ArrayLike | None = None
) -> FloatArray:
    """The fitted spectra ``areas @ design.T (+ background)``: ``(n, n_channels)`` float64.

    Parameters
    ----------
    areas : array_like
        (n, n_groups) or (n_groups,), e.g. :attr:`XrfFit.areas`.
    design : array_like
        (n_channels, n_groups), the columns the areas were fitted with.
    background : array_like, optional
        (n, n_channels) or (n_channels,), e.g. :attr:`XrfFit.background` (NaN outside the fit
        range, which the model keeps).

    Returns
    -------
    ndarray
        Each row summed line group by line group in a fixed order (the same bits whatever the
        other rows, :func:`~pyscatter.kernels.row_products.combine`).
    """
    a = np.atleast_2d(np.asarray(areas, dtype=np.float64))
    d = np.asarray(design, dtype=np.float64)
    if a.ndim != 2 or d.ndim != 2 or a.shape[1] != d.shape[1]:
        raise InputError(
            f"areas, design: expected (n, n_groups) and (n_channels, n_groups), got shapes "
            f"{np.shape(areas)} and {d.shape}"
        )
    out = combine(a, d)
    if background is not None:
        b = np.asarray(background, dtype=np.float64)
        try:
            out = out + np.broadcast_to(b, out.shape)
        except ValueError:
            raise InputError(
                f"background: expected {out.shape} or ({out.shape[1]},), got shape {b.shape}"
            ) from None
    return out


def channel_range(energy_keV: ArrayLike, fit_range_keV: tuple[float, float] | None) -> slice:
    """The channels whose energy lies in ``[lo, hi]`` keV (None: all), as a slice."""
    e = np.asarray(energy_keV, dtype=np.float64)
    if fit_range_keV is None:
        return slice(0, e.size)
    try:
        lo, hi = (float(v) for v in fit_range_keV)
    except (TypeError, ValueError):
        raise InputError(
            f"fit_range_keV: expected (lo, hi) in keV, got {fit_range_keV!r}"
        ) from None
    inside = np.flatnonzero((e >= lo) & (e <= hi))
    if not lo < hi or inside.size < 2:
        raise InputError(
            f"fit_range_keV: {fit_range_keV!r} keeps no channels of the spectrum "
            f"({e[0]:.4g} to {e[-1]:.4g} keV)"
        )
    return slice(int(inside[0]), int(inside[-1]) + 1)


def fast_linear_fit(
    spectra: ArrayLike,
    energy_keV: ArrayLike,
    groups: Sequence[LineGroup],
    response: DetectorResponse,
    *,
    snip_width: int,
    fit_range_keV: tuple[float, float] | None = None,
    snip_iterations: int | None = None,
    smooth_width: int = 0,
    lls: bool = True,
    keep_background: bool = True,
) -> XrfFit:
    """SNIP background then linear fit of the line groups, as PyMca's fast linear fit.

    Parameters
    ----------
    spectra : array_like
        (n, n_channels) or (n_channels,) counts (any real dtype; worked on in float64 blocks).
    energy_keV : array_like
        (n_channels,) channel energies.
    groups : sequence of LineGroup
        The fitted line groups (:func:`~pyscatter.kernels.xrf_lines.line_groups`).
    response : DetectorResponse
        The detector's peak widths and escape peaks.
    snip_width, snip_iterations, smooth_width, lls
        The SNIP background (:func:`snip_background`), computed over the fit range only.
    fit_range_keV : (float, float), optional
        The fitted channels (None: all).
    keep_background : bool
        Return the backgrounds (n, n_channels), NaN outside the fit range (False: None, which
        saves ``8 n n_channels`` bytes).

    Returns
    -------
    XrfFit
    """
    y_in = _as_spectra(spectra)
    e = np.asarray(energy_keV, dtype=np.float64)
    if e.shape != (y_in.shape[-1],):
        raise InputError(
            f"energy_keV: expected ({y_in.shape[-1]},) for spectra of {y_in.shape[-1]} channels, "
            f"got shape {e.shape}"
        )
    sl = channel_range(e, fit_range_keV)
    design = design_matrix(e, groups, response)
    names = [g.name for g in groups]
    _check_slice(sl, design.shape[0], design.shape[1])
    _check_columns(design, names, sl)
    y = y_in.reshape(-1, y_in.shape[-1])
    n, k = y.shape[0], design.shape[1]
    a_fit = np.ascontiguousarray(design[sl])
    pinv = np.ascontiguousarray(np.linalg.pinv(a_fit))
    areas, sigma, chi2 = np.empty((n, k)), np.empty((n, k)), np.empty(n)
    background: FloatArray | None = None
    if keep_background:
        background = np.full(y.shape, np.nan)
    step = max(1, _BLOCK_VALUES // (sl.stop - sl.start))
    for s in range(0, n, step):
        rows = slice(s, s + step)
        yb = y[rows, sl].astype(np.float64)
        bb = snip_background(
            yb, snip_width, iterations=snip_iterations, smooth_width=smooth_width, lls=lls
        )
        areas[rows], sigma[rows], chi2[rows] = _fit_block(yb, bb, a_fit, pinv)
        if background is not None:
            background[rows, sl] = bb
    if background is not None:
        background = np.reshape(background, y_in.shape)
    return XrfFit(areas=areas, sigma=sigma, chi2_reduced=chi2, background=background, names=names)
