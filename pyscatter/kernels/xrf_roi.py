"""Region-of-interest sums of fluorescence spectra, with a linear background under each region.

Each region (:class:`RoiWindow`) is an energy window ``[lo, hi]`` around a line and, on either
side, a background window. The background under the region is the straight line through the
mean counts per channel of the two side windows (at their mean energies), summed over the
region's channels; with one side window only, that side's mean; with none, zero:

.. math::

    B = \\alpha_L \\bar{m}_L + \\alpha_R \\bar{m}_R, \\quad
    \\alpha_L = \\sum_{c \\in R} (1 - t_c), \\; \\alpha_R = \\sum_{c \\in R} t_c, \\;
    t_c = \\frac{E_c - \\bar E_L}{\\bar E_R - \\bar E_L}

The net counts ``N = G - B`` (``G`` the gross sum of the region) have the Poisson variance
``G + c_L^2 S_L + c_R^2 S_R`` (``S`` the sums of the side windows, ``c = α / n`` their weights
in ``B``): the counts are
taken as measured, before any dead-time or monitor scale, which multiplies ``N`` and ``σ``.

Every sum is a vectorised sum over channels of the whole block (no loop over spectra), each
spectrum's alone, so a block's results do not depend on the other spectra of the block.

Examples
--------
>>> import numpy as np
>>> e = np.linspace(0.0, 10.0, 1001)
>>> y = 5.0 + 100.0 * np.exp(-0.5 * ((e - 6.4) / 0.06) ** 2)
>>> w = line_windows(["Fe Ka"], [6.4], [0.06 * 2.3548], k=2.0)
>>> res = roi_sums(y[None, :], e, w)
>>> round(float(res.net[0, 0] * 0.01), 2)  # channel width 0.01 keV: the peak's area
15.04
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from pyscatter.errors import InputError

__all__ = ["RoiPlan", "RoiSums", "RoiWindow", "line_windows", "roi_plan", "roi_sums"]


@dataclass(frozen=True)
class RoiWindow:
    """One region of interest, energies in keV.

    Attributes
    ----------
    name : str
        What the region measures (``"Fe Ka"``).
    lo, hi : float
        The region: channels with ``lo <= E <= hi``.
    left, right : (float, float) or None
        Background windows below and above the region (channels with ``a <= E < b`` …);
        None for no window on that side.
    """

    name: str
    lo: float
    hi: float
    left: tuple[float, float] | None = None
    right: tuple[float, float] | None = None


@dataclass(frozen=True)
class RoiSums:
    """ROI results of a block of spectra, (n_spectra, n_windows) float64 each."""

    net: np.ndarray
    sigma: np.ndarray
    gross: np.ndarray
    background: np.ndarray


def line_windows(
    names: Sequence[str],
    centres_keV: Sequence[float],
    fwhm_keV: Sequence[float],
    *,
    k: float = 1.0,
    side: float = 1.0,
) -> list[RoiWindow]:
    """Regions ``centre ± k·FWHM`` with side windows ``side·FWHM`` wide just outside them.

    Parameters
    ----------
    names, centres_keV, fwhm_keV : sequences of equal length
        Each line's name, energy and detector FWHM there.
    k : float
        Half width of a region in FWHM (1.0: ±1 FWHM holds 98 % of a Gaussian line).
    side : float
        Width of each background window in FWHM (0: no background).

    Raises
    ------
    InputError
        Lengths differ, or ``k``, a FWHM or ``side`` is not a positive (side: non-negative)
        finite number.
    """
    if not len(names) == len(centres_keV) == len(fwhm_keV):
        raise InputError("line_windows: names, centres and FWHMs must have the same length")
    if not (np.isfinite(k) and k > 0 and np.isfinite(side) and side >= 0):
        raise InputError(f"line_windows: k = {k!r} must be > 0 and side = {side!r} >= 0")
    out = []
    for name, centre, fwhm in zip(names, centres_keV, fwhm_keV, strict=True):
        if not (np.isfinite(fwhm) and fwhm > 0):
            raise InputError(f"line_windows: FWHM of {name} must be > 0; got {fwhm!r}")
        lo, hi = float(centre - k * fwhm), float(centre + k * fwhm)
        width = float(side * fwhm)
        sides = ((lo - width, lo), (np.nextafter(hi, np.inf), hi + width)) if width else (None,) * 2
        out.append(RoiWindow(str(name), lo, hi, *sides))
    return out


def _span(energy: np.ndarray, a: float, b: float, closed: bool) -> slice:
    """The channels with ``a <= E <= b`` (``< b`` when not ``closed``) of an increasing axis."""
    lo = int(np.searchsorted(energy, a, side="left"))
    hi = int(np.searchsorted(energy, b, side="right" if closed else "left"))
    return slice(lo, max(lo, hi))


@dataclass(frozen=True)
class RoiPlan:
    """Where each region and its side windows are on an energy axis, and their weights.

    ``background = c_left * sum(left) + c_right * sum(right)`` per region; slices of channels.
    """

    regions: tuple[slice, ...]
    lefts: tuple[slice, ...]
    rights: tuple[slice, ...]
    c_left: np.ndarray
    c_right: np.ndarray


def roi_plan(energy_keV: np.ndarray, windows: Sequence[RoiWindow]) -> RoiPlan:
    """The channels of every region and side window, and the background weights.

    Raises
    ------
    InputError
        An energy axis that does not increase, or a region holding no channel (its name and
        range are given).
    """
    energy = np.asarray(energy_keV, dtype=np.float64)
    if energy.ndim != 1 or energy.size < 2 or not np.all(np.diff(energy) > 0):
        raise InputError("ROI sums need an increasing energy axis (keV) of 2 channels or more")
    regions, lefts, rights = [], [], []
    c_left, c_right = np.zeros(len(windows)), np.zeros(len(windows))
    for w, win in enumerate(windows):
        region = _span(energy, win.lo, win.hi, True)
        if region.stop <= region.start:
            raise InputError(
                f"ROI {win.name} [{win.lo:.4g}, {win.hi:.4g}] keV holds no channel of the "
                f"energy axis [{energy[0]:.4g}, {energy[-1]:.4g}] keV"
            )
        left = slice(0, 0) if win.left is None else _span(energy, *win.left, False)
        left = slice(left.start, min(left.stop, region.start))
        right = slice(0, 0) if win.right is None else _span(energy, *win.right, True)
        right = slice(max(right.start, region.stop), right.stop)
        n_left, n_right = max(left.stop - left.start, 0), max(right.stop - right.start, 0)
        n = region.stop - region.start
        if n_left and n_right:
            e_left, e_right = energy[left].mean(), energy[right].mean()
            t = (energy[region] - e_left) / (e_right - e_left)
            c_left[w], c_right[w] = (1.0 - t).sum() / n_left, t.sum() / n_right
        elif n_left:
            c_left[w] = n / n_left
        elif n_right:
            c_right[w] = n / n_right
        regions.append(region)
        lefts.append(left if n_left else slice(0, 0))
        rights.append(right if n_right else slice(0, 0))
    return RoiPlan(tuple(regions), tuple(lefts), tuple(rights), c_left, c_right)


def roi_sums(
    spectra: np.ndarray,
    energy_keV: np.ndarray,
    windows: Sequence[RoiWindow],
    *,
    scale: np.ndarray | None = None,
    plan: RoiPlan | None = None,
) -> RoiSums:
    """Net counts, σ, gross counts and background of every region of every spectrum.

    Every sum is over one spectrum's channels only, so a spectrum's results are the same bits
    whatever block of spectra it comes in.

    Parameters
    ----------
    spectra : ndarray
        (n_spectra, n_channels) counts as measured.
    energy_keV : ndarray
        (n_channels,) channel energies, increasing.
    windows : sequence of RoiWindow
    scale : ndarray, optional
        (n_spectra,) factor applied to every result of a spectrum after the Poisson errors
        (dead-time correction × monitor normalisation).
    plan : RoiPlan, optional
        :func:`roi_plan` of ``energy_keV`` and ``windows``, computed once for many blocks.

    Returns
    -------
    RoiSums
    """
    y = np.asarray(spectra, dtype=np.float64)
    if y.ndim != 2 or y.shape[1] != np.asarray(energy_keV).size:
        raise InputError(
            f"roi_sums: spectra of shape {y.shape} for {np.asarray(energy_keV).size} energies"
        )
    plan = plan if plan is not None else roi_plan(energy_keV, windows)
    shape = (y.shape[0], len(plan.regions))
    gross, background, variance = np.empty(shape), np.empty(shape), np.empty(shape)
    positive = np.clip(y, 0.0, None)
    for w, (region, left, right) in enumerate(
        zip(plan.regions, plan.lefts, plan.rights, strict=True)
    ):
        gross[:, w] = y[:, region].sum(axis=1)
        s_left, s_right = y[:, left].sum(axis=1), y[:, right].sum(axis=1)
        background[:, w] = plan.c_left[w] * s_left + plan.c_right[w] * s_right
        variance[:, w] = (
            positive[:, region].sum(axis=1)
            + plan.c_left[w] ** 2 * positive[:, left].sum(axis=1)
            + plan.c_right[w] ** 2 * positive[:, right].sum(axis=1)
        )
    net, sigma = gross - background, np.sqrt(variance)
    if scale is not None:
        f = np.asarray(scale, dtype=np.float64)[:, None]
        net, sigma, gross, background = net * f, sigma * f, gross * f, background * f
    return RoiSums(net, sigma, gross, background)
