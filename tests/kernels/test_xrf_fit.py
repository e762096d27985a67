"""SNIP background, dead time and the fast linear fit of XRF spectra, against the truth of the
generator and analytic cases."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.signal import savgol_filter

from pyscatter.datasets_xrf import xrf_map
from pyscatter.errors import InputError
from pyscatter.kernels.xrf import (
    channel_range,
    dead_time_factor,
    fast_linear_fit,
    fit_linear,
    model_spectra,
    snip_background,
)
from pyscatter.kernels.xrf_lines import DetectorResponse, design_matrix, line_groups

ENERGY = 0.01 * np.arange(1024) + 1.0  # 1.0 to 11.23 keV
GROUPS = line_groups(["Ca", "Fe", "Cu", "Zn"], excitation_keV=17.0, energy_range_keV=(1.5, None))
RESPONSE = DetectorResponse()


def _spectra(n: int, seed: int = 0, areas=(4e4, 3e4, 2e4, 1e4), level: float = 30.0):
    """Poisson spectra of known areas on a linear background, and that background."""
    rng = np.random.default_rng(seed)
    a = design_matrix(ENERGY, GROUPS, RESPONSE)
    truth = np.asarray(areas) * rng.uniform(0.5, 1.5, (n, len(areas)))
    bg = level * (1.5 - ENERGY / ENERGY[-1])[None, :] * np.ones((n, 1))
    return rng.poisson(truth @ a.T + bg).astype(np.float64), truth, bg, a


# ---------------------------------------------------------------- SNIP
def test_snip_keeps_a_line_and_a_constant():
    line = 5.0 + 0.25 * np.arange(200.0)
    assert np.allclose(snip_background(line, 20, lls=False), line, rtol=1e-14)
    const = np.full((3, 100), 7.0)
    assert np.allclose(snip_background(const, 10), const, rtol=1e-12)


def test_snip_removes_a_peak_and_keeps_ends():
    x = np.arange(300.0)
    base = 50.0 + 0.1 * x
    y = base + 1000.0 * np.exp(-0.5 * ((x - 150) / 4) ** 2)
    b = snip_background(y, 25)
    assert np.max(np.abs(b - base)) < 0.02 * 50
    assert b[0] == pytest.approx(y[0]) and b[-1] == pytest.approx(y[-1])
    # 1-D in, 1-D out; batches are clipped row by row
    both = snip_background(np.vstack([y, 2 * y]), 25)
    assert np.array_equal(both[0], b)


def test_snip_iterations_repeat_the_sweep():
    rng = np.random.default_rng(5)
    y = rng.poisson(40.0, (3, 150)).astype(np.float64)
    once = snip_background(y, 12, lls=False)
    assert np.array_equal(
        snip_background(y, 12, iterations=2, lls=False), snip_background(once, 12, lls=False)
    )
    assert np.all(snip_background(y, 12, iterations=2, lls=False) <= once)


def test_snip_savitzky_golay_interior():
    rng = np.random.default_rng(3)
    y = rng.poisson(100.0, (2, 120)).astype(np.float64)
    sm = snip_background(y, 0, smooth_width=7, lls=False)  # width 0: the smoothing alone
    assert np.allclose(sm[:, 3:-3], savgol_filter(y, 7, 2, axis=-1)[:, 3:-3], rtol=1e-12)
    assert np.array_equal(sm[:, :3], y[:, :3]) and np.array_equal(sm[:, -3:], y[:, -3:])


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"width": -1}, "width"),
        ({"width": 2.5}, "width"),
        ({"width": 5, "iterations": 0}, "iterations"),
        ({"width": 5, "smooth_width": 4}, "smooth_width"),
    ],
)
def test_snip_bad_input(kwargs, match):
    with pytest.raises(InputError, match=match):
        snip_background(np.ones(50), **kwargs)
    with pytest.raises(InputError, match="spectra"):
        snip_background(np.ones((2, 3, 4)), 3)


# ---------------------------------------------------------------- dead time
def test_dead_time_forms_agree():
    pct = np.array([0.0, 10.0, 50.0])
    f = dead_time_factor(percent=pct)
    assert np.allclose(f, [1.0, 1 / 0.9, 2.0], rtol=1e-15)
    live = 2.0 * (1 - pct / 100)
    assert np.allclose(dead_time_factor(live_time=live, real_time=2.0), f, rtol=1e-15)
    assert np.array_equal(dead_time_factor(factor=f), f)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({}, "exactly one"),
        ({"percent": 5.0, "factor": 1.1}, "exactly one"),
        ({"percent": 100.0}, "percent.*100"),
        ({"percent": -1.0}, "percent"),
        ({"percent": np.nan}, "percent.*finite"),
        ({"factor": 0.0}, "factor"),
        ({"live_time": 1.0}, "real_time"),
        ({"live_time": [0.0, 1.0], "real_time": 1.0}, "live_time.*0.0"),
        ({"live_time": 1.0, "real_time": -2.0}, "real_time"),
        ({"live_time": [1.0, 1.0], "real_time": [1.0, 1.0, 1.0]}, "shapes"),
        ({"live_time": 2.0, "real_time": 1.0}, "live <= real"),
    ],
)
def test_dead_time_bad_input(kwargs, match):
    with pytest.raises(InputError, match=match):
        dead_time_factor(**kwargs)


# ---------------------------------------------------------------- linear fit
def test_fit_exact_without_noise():
    a = design_matrix(ENERGY, GROUPS, RESPONSE)
    truth = np.array([[4e4, 3e4, 2e4, 1e4], [1.0, 2.0, 3.0, 4.0]])
    bg = np.full((2, ENERGY.size), 5.0)
    fit = fit_linear(truth @ a.T + bg, a, background=bg, names=[g.name for g in GROUPS])
    assert np.allclose(fit.areas, truth, rtol=1e-9, atol=1e-9)
    assert np.all(fit.chi2_reduced < 1e-12)
    assert fit.names == ["Ca_K", "Fe_K", "Cu_K", "Zn_K"]
    model = model_spectra(fit.areas, a, fit.background)
    assert np.allclose(model, truth @ a.T + bg, rtol=1e-9)
    assert np.array_equal(model_spectra(fit.areas[1], a), model_spectra(fit.areas, a)[1:])
    with pytest.raises(InputError, match="areas, design"):
        model_spectra(fit.areas, a[:, :2])
    with pytest.raises(InputError, match="background"):
        model_spectra(fit.areas, a, bg[:, :5])


def test_fit_block_size_independent():
    y, _, _, _ = _spectra(300, seed=1)
    kw = {"snip_width": 20, "fit_range_keV": (1.5, 11.0), "smooth_width": 11}
    whole = fast_linear_fit(y, ENERGY, GROUPS, RESPONSE, **kw)
    for size in (1, 7):
        parts = [
            fast_linear_fit(y[s : s + size], ENERGY, GROUPS, RESPONSE, **kw)
            for s in range(0, 300 if size == 7 else 20, size)
        ]
        n = sum(p.areas.shape[0] for p in parts)
        for field in ("areas", "sigma", "chi2_reduced", "background"):
            got = np.concatenate([getattr(p, field) for p in parts])
            assert np.array_equal(got, getattr(whole, field)[:n], equal_nan=True), (size, field)


def test_sigma_matches_monte_carlo_scatter():
    """The propagated sigma against the scatter of the areas over 800 noise realisations."""
    rng = np.random.default_rng(7)
    a = design_matrix(ENERGY, GROUPS, RESPONSE)
    expected = np.array([4e3, 3e3, 2e3, 1e3]) @ a.T + 30.0
    y = rng.poisson(expected, (800, ENERGY.size)).astype(np.float64)
    bg = np.full_like(y, 30.0)
    fit = fit_linear(y, a, background=bg)
    ratio = fit.sigma.mean(axis=0) / fit.areas.std(axis=0, ddof=1)
    assert np.all(np.abs(ratio - 1) < 0.10), ratio
    assert np.all(np.abs(fit.areas.mean(axis=0) / [4e3, 3e3, 2e3, 1e3] - 1) < 0.01)
    # weights 1 / max(y, 1) from the counts: E[(y - mu)^2 / y] is a little above 1 at ~30 counts
    assert np.median(fit.chi2_reduced) == pytest.approx(1.0, abs=0.1)


def test_fit_recovers_generator_areas_within_2_percent():
    """High counts: every position's dead-time-corrected areas within 2 % of the truth."""
    m = xrf_map((12, 16), n_channels=1200, mean_counts=1e5, background=30.0, seed=2)
    y = m.spectra.reshape(-1, m.spectra.shape[-1])
    fit = fast_linear_fit(
        y,
        m.energy_keV,
        m.groups,
        m.response,
        snip_width=24,
        smooth_width=15,
        fit_range_keV=(1.5, 11.5),
    )
    factor = dead_time_factor(live_time=m.live_time, real_time=m.real_time).ravel()
    for i, name in enumerate(fit.names):
        rel = fit.areas[:, i] * factor / m.truth[name].ravel() - 1
        assert np.max(np.abs(rel)) < 0.02, (name, np.max(np.abs(rel)))
        assert abs(np.mean(rel)) < 0.01, (name, np.mean(rel))


def test_fit_low_counts_within_2_sigma():
    """Low counts: areas within 2 sigma of the truth at most positions.

    At ~3 background counts a channel SNIP follows the lower envelope of the noise a little
    (the background is underestimated), which biases the areas by up to ~0.4 sigma here: 92-93 %
    of the positions are within 2 sigma instead of 95 %.
    """
    m = xrf_map((16, 20), n_channels=1200, mean_counts=400.0, background=3.0, seed=3)
    y = m.spectra.reshape(-1, m.spectra.shape[-1])
    fit = fast_linear_fit(
        y,
        m.energy_keV,
        m.groups,
        m.response,
        snip_width=16,
        smooth_width=21,
        fit_range_keV=(1.5, 11.5),
    )
    factor = m.dead_time_factor().ravel()
    for i, name in enumerate(fit.names):
        z = (fit.areas[:, i] * factor - m.truth[name].ravel()) / (fit.sigma[:, i] * factor)
        assert np.mean(np.abs(z) <= 2) > 0.90, (name, np.mean(np.abs(z) <= 2))
        assert abs(np.mean(z)) < 0.5, (name, np.mean(z))
        assert np.std(z) < 1.2, (name, np.std(z))


def test_fit_bad_input():
    y, _, bg, a = _spectra(3)
    with pytest.raises(InputError, match="design"):
        fit_linear(y, a[:-1])
    with pytest.raises(InputError, match="background"):
        fit_linear(y, a, background=bg[:, :-1])
    with pytest.raises(InputError, match="channel_slice.*outside"):
        fit_linear(y, a, channel_slice=slice(0, 5000))
    with pytest.raises(InputError, match="channel_slice.*keeps"):
        fit_linear(y, a, channel_slice=slice(10, 12))
    with pytest.raises(InputError, match="step"):
        fit_linear(y, a, channel_slice=slice(0, None, 2))
    with pytest.raises(InputError, match="Zn_K"):  # Zn K (8.6 keV) outside 1.5 to 6 keV
        fast_linear_fit(y, ENERGY, GROUPS, RESPONSE, snip_width=10, fit_range_keV=(1.5, 6.0))
    with pytest.raises(InputError, match="fit_range_keV"):
        fast_linear_fit(y, ENERGY, GROUPS, RESPONSE, snip_width=10, fit_range_keV=(20.0, 30.0))
    with pytest.raises(InputError, match="energy_keV"):
        fast_linear_fit(y, ENERGY[:-1], GROUPS, RESPONSE, snip_width=10)
    with pytest.raises(InputError, match="spectra"):
        fast_linear_fit(np.ones((2, 3, ENERGY.size)), ENERGY, GROUPS, RESPONSE, snip_width=10)
    assert channel_range(ENERGY, None) == slice(0, ENERGY.size)


def test_fit_with_escape_peaks_and_l_lines():
    """Escape peaks and an L group in the generator and in the fit: areas within 2 %."""
    response = DetectorResponse(escape=True)
    m = xrf_map(
        (6, 8),
        n_channels=1500,
        elements=("Fe", "Zn", "Pb_L"),
        response=response,
        mean_counts=1e5,
        background=20.0,
        seed=5,
    )
    assert m.names == ["Fe_K", "Zn_K", "Pb_L"]
    fit = fast_linear_fit(
        m.spectra.reshape(-1, 1500),  # uint32 as measured
        m.energy_keV,
        m.groups,
        response,
        snip_width=24,
        smooth_width=15,
        fit_range_keV=(2.0, 14.5),
    )
    factor = m.dead_time_factor().ravel()
    for i, name in enumerate(fit.names):
        rel = fit.areas[:, i] * factor / m.truth[name].ravel() - 1
        assert np.max(np.abs(rel)) < 0.02, (name, np.max(np.abs(rel)))
