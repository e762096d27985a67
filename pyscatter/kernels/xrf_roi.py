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
``G + sum_c w_c^2 y_c`` (``w_c`` the weight of side channel ``c`` in ``B``): the counts are
taken as measured, before any dead-time or monitor scale, which multiplies ``N`` and ``σ``.

Every sum is one matrix product over a block of spectra (no loop over spectra), so a block's
results do not depend on the other spectra of the block.

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

__all__ = ["RoiSums", "RoiWindow", "line_windows", "roi_matrices", "roi_sums"]


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


def _mask(energy: np.ndarray, window: tuple[float, float] | None, closed: bool) -> np.ndarray:
    if window is None:
        return np.zeros(energy.shape, bool)
    a, b = window
    return (energy >= a) & ((energy <= b) if closed else (energy < b))


def roi_matrices(
    energy_keV: np.ndarray, windows: Sequence[RoiWindow]
) -> tuple[np.ndarray, np.ndarray]:
    """The (n_channels, n_windows) weights of the gross sums and of the backgrounds.

    ``spectra @ gross`` are the gross sums, ``spectra @ background`` the linear backgrounds
    under the regions, ``spectra @ background**2`` their Poisson variances.

    Raises
    ------
    InputError
        A region holding no channel of the energy axis (its name and range are given).
    """
    energy = np.asarray(energy_keV, dtype=np.float64)
    gross = np.zeros((energy.size, len(windows)))
    back = np.zeros_like(gross)
    for w, win in enumerate(windows):
        region = _mask(energy, (win.lo, win.hi), True)
        if not region.any():
            raise InputError(
                f"ROI {win.name} [{win.lo:.4g}, {win.hi:.4g}] keV holds no channel of the "
                f"energy axis [{energy.min():.4g}, {energy.max():.4g}] keV"
            )
        gross[region, w] = 1.0
        left = _mask(energy, win.left, False) & ~region
        right = _mask(energy, win.right, True) & ~region
        sides = [m for m in (left, right) if m.any()]
        if len(sides) == 1:
            back[sides[0], w] = region.sum() / sides[0].sum()
        elif len(sides) == 2:
            e_left, e_right = energy[left].mean(), energy[right].mean()
            t = (energy[region] - e_left) / (e_right - e_left)
            back[left, w] = (1.0 - t).sum() / left.sum()
            back[right, w] = t.sum() / right.sum()
    return gross, back


def roi_sums(
    spectra: np.ndarray,
    energy_keV: np.ndarray,
    windows: Sequence[RoiWindow],
    *,
    scale: np.ndarray | None = None,
    matrices: tuple[np.ndarray, np.ndarray] | None = None,
) -> RoiSums:
    """Net counts, σ, gross counts and background of every region of every spectrum.

    Parameters
    ----------
    spectra : ndarray
        (n_spectra, n_channels) counts as measured.
    energy_keV : ndarray
        (n_channels,) channel energies.
    windows : sequence of RoiWindow
    scale : ndarray, optional
        (n_spectra,) factor applied to every result of a spectrum after the Poisson errors
        (dead-time correction × monitor normalisation).
    matrices : (gross, background), optional
        :func:`roi_matrices` of ``energy_keV`` and ``windows``, computed once for many blocks.

    Returns
    -------
    RoiSums
    """
    y = np.asarray(spectra, dtype=np.float64)
    if y.ndim != 2 or y.shape[1] != np.asarray(energy_keV).size:
        raise InputError(
            f"roi_sums: spectra of shape {y.shape} for {np.asarray(energy_keV).size} energies"
        )
    gross_w, back_w = matrices if matrices is not None else roi_matrices(energy_keV, windows)
    gross = y @ gross_w
    background = y @ back_w
    variance = np.clip(y, 0.0, None) @ (gross_w + back_w**2)
    net, sigma = gross - background, np.sqrt(variance)
    if scale is not None:
        f = np.asarray(scale, dtype=np.float64)[:, None]
        net, sigma, gross, background = net * f, sigma * f, gross * f, background * f
    return RoiSums(net, sigma, gross, background)
