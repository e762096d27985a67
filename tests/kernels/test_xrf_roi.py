"""ROI sums with a linear background: analytic peaks on linear continua, Poisson σ, errors."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import erf

from pyscatter.errors import InputError
from pyscatter.kernels.xrf_roi import RoiWindow, line_windows, roi_plan, roi_sums

E = np.arange(0.0, 12.0, 0.01) + 0.005  # channel centres, 10 eV wide


def gaussian_counts(centre, fwhm, area):
    """Counts per channel of a Gaussian of ``area`` counts: exact integrals over the channels."""
    s = fwhm / np.sqrt(8 * np.log(2))
    edges = np.append(E - 0.005, E[-1] + 0.005)
    cdf = 0.5 * (1 + erf((edges - centre) / (np.sqrt(2) * s)))
    return area * np.diff(cdf)


def window_fraction(centre, fwhm, lo, hi):
    """Fraction of a Gaussian's area in the channels with lo <= E <= hi."""
    inside = (E >= lo) & (E <= hi)
    return gaussian_counts(centre, fwhm, 1.0)[inside].sum()


def test_net_is_the_peak_in_the_window_on_a_linear_background():
    fwhm = 0.15
    continuum = 40.0 - 2.0 * E  # linear: the side windows give it back exactly
    y = continuum + gaussian_counts(6.4, fwhm, 1.0e5)
    (w,) = line_windows(["Fe Ka"], [6.4], [fwhm], k=1.0, side=1.5)
    res = roi_sums(y[None], E, [w])
    # the side windows start 1 FWHM from the centre: they hold a little of the peak's tails
    plan = roi_plan(E, [w])
    peak = gaussian_counts(6.4, fwhm, 1.0e5)
    left, right = plan.lefts[0], plan.rights[0]
    tails = plan.c_left[0] * peak[left].sum() + plan.c_right[0] * peak[right].sum()
    expected = 1.0e5 * window_fraction(6.4, fwhm, w.lo, w.hi) - tails
    np.testing.assert_allclose(res.net[0, 0], expected, rtol=1e-9)
    inside = (E >= w.lo) & (E <= w.hi)
    np.testing.assert_allclose(res.background[0, 0], continuum[inside].sum() + tails, rtol=1e-12)
    # ±1 FWHM holds 98.1 % of a Gaussian; its tails in the side windows take 1.2 % more
    assert 0.965 < res.net[0, 0] / 1.0e5 < 0.975


def test_one_side_or_no_side_window():
    y = np.full(E.size, 7.0)
    left = RoiWindow("a", 3.0, 3.2, left=(2.8, 3.0))
    none = RoiWindow("b", 3.0, 3.2)
    outside = RoiWindow("c", 11.9, 11.99, left=(11.7, 11.9), right=(12.0, 12.5))  # no channel right
    res = roi_sums(y[None], E, [left, none, outside])
    n = ((E >= 3.0) & (E <= 3.2)).sum()
    np.testing.assert_allclose(res.net[0], [0.0, 7.0 * n, 0.0], atol=1e-9)


def test_sigma_is_the_scatter_of_poisson_draws():
    rng = np.random.default_rng(4)
    lam = 5.0 + gaussian_counts(4.0, 0.12, 3000.0)
    draws = rng.poisson(lam, size=(4000, E.size))
    w = line_windows(["Ca Ka"], [4.0], [0.12], k=1.0, side=1.0)
    res = roi_sums(draws, E, w)
    assert abs(np.mean(res.sigma) / np.std(res.net) - 1) < 0.04
    scaled = roi_sums(draws[:3], E, w, scale=np.array([1.0, 2.0, 0.5]))
    np.testing.assert_allclose(scaled.net[:, 0], res.net[:3, 0] * [1.0, 2.0, 0.5])
    np.testing.assert_allclose(scaled.sigma[:, 0], res.sigma[:3, 0] * [1.0, 2.0, 0.5])


def test_a_block_is_its_spectra_alone():
    rng = np.random.default_rng(1)
    y = rng.poisson(20.0, size=(7, E.size))
    w = line_windows(["x", "y"], [3.0, 7.0], [0.1, 0.2], k=1.5)
    whole = roi_sums(y, E, w)
    parts = [roi_sums(y[i : i + 3], E, w) for i in range(0, 7, 3)]
    np.testing.assert_array_equal(np.concatenate([p.net for p in parts]), whole.net)


def test_bad_windows_are_named():
    with pytest.raises(InputError, match=r"ROI far \[20, 21\] keV holds no channel"):
        roi_plan(E, [RoiWindow("far", 20.0, 21.0)])
    with pytest.raises(InputError, match="increasing energy axis"):
        roi_plan(E[::-1], [RoiWindow("a", 1.0, 2.0)])
    with pytest.raises(InputError, match="FWHM of Fe must be > 0"):
        line_windows(["Fe"], [6.4], [0.0])
    with pytest.raises(InputError, match="same length"):
        line_windows(["Fe", "Cu"], [6.4], [0.1])
    with pytest.raises(InputError, match="spectra of shape"):
        roi_sums(np.zeros((2, 5)), E, [RoiWindow("a", 1, 2)])
