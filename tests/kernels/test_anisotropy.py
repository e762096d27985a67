"""The anisotropy kernel against loops, analytic bin averages and Monte-Carlo."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from pyscatter.kernels.anisotropy import anisotropy, sector_factor, sector_masks, sector_mean


def _centres(n_bins):
    step = 360.0 / n_bins
    return -180.0 + step * (np.arange(n_bins) + 0.5)


def _angle_distance(a, b):
    """|a - b| on the circle, degrees in [0, 180]."""
    return np.abs((np.asarray(a) - b + 180.0) % 360.0 - 180.0)


@pytest.mark.parametrize("pol", [0.0, 17.0, 90.0, 170.0, -135.0, 400.0])
@pytest.mark.parametrize("width", [2.5, 10.0, 30.0, 44.0])
def test_sectors_are_the_four_arcs(pol, width):
    chi = _centres(72)
    par, perp = sector_masks(chi, np.array([pol]), width)
    ref_par = (_angle_distance(chi, pol) <= width) | (_angle_distance(chi, pol + 180) <= width)
    ref_perp = (_angle_distance(chi, pol + 90) <= width) | (_angle_distance(chi, pol - 90) <= width)
    assert_array_equal(par[0], ref_par)
    assert_array_equal(perp[0], ref_perp)
    assert not (par & perp).any()  # disjoint below 45 degrees


def test_sector_mean_leaves_out_nan_bins_and_propagates_sigma():
    rng = np.random.default_rng(0)
    intensity = rng.uniform(1, 10, (3, 8, 5))
    sigma = rng.uniform(0.1, 1, (3, 8, 5))
    intensity[0, 2, 1] = np.nan
    sigma[1, 3, 4] = np.nan
    intensity[2, :, 0] = np.nan
    mask = rng.uniform(size=(3, 8)) < 0.5
    mask[2] = True
    mean, err = sector_mean(intensity, sigma, mask)
    for p in range(3):
        for k in range(5):
            use = [
                j
                for j in range(8)
                if mask[p, j] and np.isfinite(intensity[p, j, k] + sigma[p, j, k])
            ]
            if not use:
                assert np.isnan(mean[p, k]) and np.isnan(err[p, k])
                continue
            assert_allclose(mean[p, k], np.mean(intensity[p, use, k]), rtol=1e-14)
            assert_allclose(
                err[p, k], np.sqrt(np.sum(sigma[p, use, k] ** 2)) / len(use), rtol=1e-14
            )


@pytest.mark.parametrize("n_bins, width", [(360, 10.0), (72, 10.0), (36, 20.0), (72, 45.0)])
def test_bins_tiling_the_sector_give_sinc(n_bins, width):
    two_w = np.radians(2 * width)
    chi = _centres(n_bins)
    for pol in (0.0, 30.0 if n_bins == 360 else 0.0):
        assert abs(sector_factor(chi, pol, width, pol) - np.sin(two_w) / two_w) < 1e-12
        assert abs(sector_factor(chi, pol + 90, width, pol) + np.sin(two_w) / two_w) < 1e-12


def test_sector_factor_is_the_mean_of_the_bin_averages():
    """Bins that do not tile the sector: the mean over the chosen bins of each bin's average of
    cos 2(chi - chi_E), integrated numerically."""
    chi = _centres(72)
    step = 5.0
    pol, width, chi_e = 12.0, 11.0, 30.0
    chosen = (_angle_distance(chi, pol) <= width) | (_angle_distance(chi, pol + 180) <= width)
    fine = np.linspace(-0.5, 0.5, 20001)
    averages = [
        np.trapezoid(np.cos(2 * np.radians(c + step * fine - chi_e)), fine) for c in chi[chosen]
    ]
    assert abs(sector_factor(chi, pol, width, chi_e) - np.mean(averages)) < 1e-9


def test_bin_averaged_pattern_gives_a_sinc_exactly():
    """Cake bins holding the exact bin averages of B (1 + a cos 2(chi - chi_pol))."""
    chi = _centres(72)
    step = np.radians(5.0)
    a = np.array([-0.3, 0.0, 0.2, 0.6])
    b = np.array([1.0, 50.0, 7.0])
    pol = np.array([0.0, 35.0, -90.0, 160.0])
    cos = np.sin(step) / step * np.cos(2 * np.radians(chi[None, :] - pol[:, None]))
    cake = b[None, None, :] * (1 + a[:, None, None] * cos[:, :, None])
    res = anisotropy(cake, np.ones_like(cake), chi, pol, 10.0)
    two_w = np.radians(20.0)
    truth = a * np.sin(two_w) / two_w
    # 35 and 160 deg: bins do not tile the sector (centres at 2.5 + 5k)
    tiled = np.array([True, False, True, False])
    assert_allclose(res.a[tiled], np.broadcast_to(truth[tiled, None], (2, 3)), atol=1e-14)
    assert_allclose(res.a[~tiled], np.broadcast_to(truth[~tiled, None], (2, 3)), atol=0.02)


def test_sigma_of_a_is_the_linear_propagation_and_matches_monte_carlo():
    rng = np.random.default_rng(1)
    chi = _centres(36)
    pol = np.zeros(1)
    cake = 100.0 * (1 + 0.3 * np.cos(2 * np.radians(chi)))[None, :, None] * np.ones((1, 1, 4))
    sigma = np.sqrt(cake) * np.array([0.2, 1.0, 3.0, 10.0])
    res = anisotropy(cake, sigma, chi, pol, 20.0)
    # linear propagation: numeric derivatives of A(I_par, I_perp)
    p, q = res.parallel[0], res.perpendicular[0]
    h = 1e-6 * p

    def a_of(pp, qq):
        return (pp - qq) / (pp + qq)

    d_p = (a_of(p + h, q) - a_of(p - h, q)) / (2 * h)
    d_q = (a_of(p, q + h) - a_of(p, q - h)) / (2 * h)
    ref = np.hypot(d_p * res.parallel_sigma[0], d_q * res.perpendicular_sigma[0])
    assert_allclose(res.a_sigma[0], ref, rtol=1e-6)
    # Monte-Carlo: Gaussian noise of the given sigma on every bin, 4000 draws
    draws = cake + sigma * rng.standard_normal((4000, *cake.shape[1:]))
    mc = anisotropy(draws, np.broadcast_to(sigma, draws.shape), chi, np.zeros(4000), 20.0)
    ratio = mc.a.std(axis=0) / res.a_sigma[0]
    assert_allclose(ratio[:3], 1.0, atol=0.05)  # linear regime (relative sigma of A <= 10 %)
    bias = np.abs(mc.a.mean(axis=0) - res.a[0])[:2]
    assert (bias < 3 * res.a_sigma[0, :2] / np.sqrt(4000)).all()


def test_nan_polarization_gives_nan_and_swapped_sectors_negate_a_exactly():
    chi = _centres(36)
    rng = np.random.default_rng(2)
    cake = rng.uniform(5, 10, (2, 36, 3))
    res = anisotropy(cake, np.sqrt(cake), chi, np.array([np.nan, 0.0]), 10.0)
    assert np.isnan(res.a[0]).all() and np.isfinite(res.a[1]).all()
    turned = anisotropy(cake, np.sqrt(cake), chi, np.array([90.0, 90.0]), 10.0)
    assert_array_equal(turned.a[1], -res.a[1])
    assert_array_equal(turned.a_sigma[1], res.a_sigma[1])
