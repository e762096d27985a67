"""Peak fitting in I(q) windows against analytic peaks, curve_fit, and the Scherrer formula."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.testing import assert_allclose
from scipy import integrate

from pyscatter.errors import InputError
from pyscatter.kernels.fitting import FitStatus
from pyscatter.kernels.peaks import (
    area_factor,
    d_spacing,
    fit_peaks,
    fit_peaks_reference,
    peak_model,
    peak_profile,
    scherrer_size,
    scherrer_size_two_theta,
)

X = np.linspace(4.0, 8.0, 401)  # q in 1/nm, 0.01 bins


def spectrum(position, fwhm, eta, area, background=(20.0, -3.0, 1.5), x=X, centre=6.0):
    height = area / (fwhm * area_factor(eta))
    dx = x - centre
    bg = sum(b * dx**i for i, b in enumerate(background))
    return height * peak_profile(x, position, fwhm, eta) + bg


@pytest.mark.parametrize("eta", [0.0, 1.0, 0.35])
def test_unit_height_profile_has_fwhm_and_area_factor(eta):
    assert_allclose(peak_profile([2.0, 2.25, 1.75], 2.0, 0.5, eta), [1.0, 0.5, 0.5], rtol=1e-14)
    area, _ = integrate.quad(lambda x: peak_profile(x, 0.0, 1.0, eta), -np.inf, np.inf)
    assert_allclose(area, area_factor(eta), rtol=1e-9)  # quad's accuracy on the tails


@pytest.mark.parametrize("shape", ["gaussian", "lorentzian", "pseudo_voigt"])
def test_jacobian_equals_finite_differences(shape):
    model = peak_model((5.0, 7.0), shape=shape, background="quadratic")
    p = np.array([[30.0, 6.05, 0.2] + ([0.4] if shape == "pseudo_voigt" else []) + [5, 1, -2]])
    jac = model.jacobian(X, p)[0]
    for i in range(p.shape[1]):
        h = 1e-6 * max(1.0, abs(p[0, i]))
        dp = np.zeros_like(p)
        dp[0, i] = h
        numeric = (model.func(X, p + dp) - model.func(X, p - dp))[0] / (2 * h)
        # central differences: error ~ h^2 f''' ~ 1e-8 of the largest derivative
        assert_allclose(jac[:, i], numeric, atol=1e-6 * np.abs(numeric).max())


@pytest.mark.parametrize("shape", ["gaussian", "lorentzian", "pseudo_voigt"])
@pytest.mark.parametrize("background", ["constant", "linear", "quadratic"])
def test_noise_free_peaks_are_recovered_exactly(shape, background):
    eta = {"gaussian": 0.0, "lorentzian": 1.0, "pseudo_voigt": 0.4}[shape]
    n_bg = ("constant", "linear", "quadratic").index(background) + 1
    bg = (20.0, -3.0, 1.5)[:n_bg]
    truth = [(5.93, 0.12, 40.0), (6.07, 0.2, 25.0), (6.0, 0.15, 60.0)]
    y = np.stack([spectrum(pos, w, eta, a, bg) for pos, w, a in truth])
    res = fit_peaks(X, y, windows=[(5.4, 6.6)], shape=shape, background=background)
    assert (res.status == FitStatus.OK).all()
    # exact data: the minimum is the truth, to the fitter's convergence (1e-6 sigma of zero noise)
    assert_allclose(res.position[:, 0], [t[0] for t in truth], rtol=1e-9)
    assert_allclose(res.fwhm[:, 0], [t[1] for t in truth], rtol=1e-7)
    assert_allclose(res.area[:, 0], [t[2] for t in truth], rtol=1e-7)
    assert_allclose(res.eta[:, 0], eta, atol=1e-7)
    height = np.array([a / (w * area_factor(eta)) for _, w, a in truth])
    assert_allclose(res.height[:, 0], height, rtol=1e-7)
    assert_allclose(res.r2, 1.0, atol=1e-12)


def test_batched_fit_equals_curve_fit_on_noisy_spectra():
    """Same minimum as scipy's curve_fit (trust-region reflective with the same bounds)."""
    rng = np.random.default_rng(4)
    n = 24
    pos = 6.0 + rng.uniform(-0.05, 0.05, n)
    expected = np.stack([spectrum(p, 0.15, 0.5, 30.0) for p in pos]) * 20
    y = rng.poisson(expected).astype(float)
    sigma = np.sqrt(np.maximum(y, 1.0))
    windows = [(5.6, 6.4), (4.2, 5.0)]  # the second holds no peak
    fast = fit_peaks(X, y, sigma, windows=windows, background="quadratic")
    ref = fit_peaks_reference(X, y, sigma, windows=windows[:1], background="quadratic")
    ok = fast.status[:, 0] == FitStatus.OK
    assert ok.all() and (ref.status[:, 0] == FitStatus.OK).all()
    # both stop within ~1e-6 sigma of the same minimum: agree to 1e-4 of the errors
    for name in ("position", "fwhm", "area", "eta"):
        scale = getattr(fast, f"{name}_sigma", fast.position_sigma)[:, 0]
        diff = np.abs(getattr(fast, name)[:, 0] - getattr(ref, name)[:, 0])
        assert (diff <= 1e-4 * (scale if name != "eta" else 1.0)).all(), name
    assert_allclose(fast.position_sigma[:, 0], ref.position_sigma[:, 0], rtol=1e-4)
    assert_allclose(fast.area_sigma[:, 0], ref.area_sigma[:, 0], rtol=1e-4)
    # the truth lies within the errors (4 sigma for 24 rows)
    assert (np.abs(fast.position[:, 0] - pos) < 4 * fast.position_sigma[:, 0]).all()
    # no peak in the second window: never OK, values NaN unless WEAK
    assert not (fast.status[:, 1] == FitStatus.OK).any()
    failed = fast.status[:, 1] != FitStatus.WEAK
    assert np.isnan(fast.position[failed, 1]).all()


def test_bad_inputs_name_the_problem():
    y = spectrum(6.0, 0.1, 0.5, 10.0)[None]
    with pytest.raises(InputError, match="window 0 .* holds 2 points"):
        fit_peaks(X, y, windows=[(6.0, 6.01)])
    with pytest.raises(InputError, match="unsupported peak shape 'voigt'"):
        fit_peaks(X, y, windows=[(5.5, 6.5)], shape="voigt")
    with pytest.raises(InputError, match="unsupported background"):
        fit_peaks(X, y, windows=[(5.5, 6.5)], background="cubic")
    with pytest.raises(InputError, match="spectra must have shape"):
        fit_peaks(X, y[:, :-1], windows=[(5.5, 6.5)])


def test_d_spacing_and_scherrer_in_q_analytic():
    assert_allclose(d_spacing([2 * np.pi, np.pi]), [1.0, 2.0], rtol=1e-15)
    # L = 2 pi K / sqrt(beta^2 - beta_inst^2): 0.05 and 0.03 leave 0.04
    assert_allclose(scherrer_size(0.05, instrument_fwhm_q=0.03, k=0.9), 2 * np.pi * 0.9 / 0.04)
    assert np.isnan(scherrer_size(0.03, instrument_fwhm_q=0.03))  # not broader than instrument
    # a Gaussian crystallite peak convolved with a Gaussian instrument (widths in quadrature)
    size_nm, inst = 25.0, 0.04
    beta = 2 * np.pi * 0.9 / size_nm
    observed = np.hypot(beta, inst)
    y = spectrum(6.0, observed, 0.0, 50.0)[None]
    res = fit_peaks(X, y, windows=[(5.2, 6.8)], shape="gaussian", background="quadratic")
    assert_allclose(scherrer_size(res.fwhm, instrument_fwhm_q=inst), size_nm, rtol=1e-7)


def test_scherrer_in_two_theta_is_the_q_formula():
    """Both conventions describe one peak: beta_q = (2 pi / lambda) cos(theta) beta_2theta."""
    lam, two_theta, beta_deg, inst_deg = 0.1, 24.0, 0.08, 0.03  # nm, degrees
    theta = np.radians(two_theta) / 2
    to_q = 2 * np.pi / lam * np.cos(theta) * np.pi / 180  # dq per degree of 2theta
    l_two_theta = scherrer_size_two_theta(
        two_theta, beta_deg, wavelength=lam, instrument_fwhm_deg=inst_deg
    )
    l_q = scherrer_size(beta_deg * to_q, instrument_fwhm_q=inst_deg * to_q)
    assert_allclose(l_two_theta, l_q, rtol=1e-13)  # an identity: rounding only
    # the linear map of widths holds to O(beta tan theta) for the exact q(2theta) of the half
    # maximum points: 2e-4 relative here
    q = (
        4
        * np.pi
        / lam
        * np.sin(np.radians(np.array([two_theta - beta_deg / 2, two_theta + beta_deg / 2])) / 2)
    )
    assert_allclose(q[1] - q[0], beta_deg * to_q, rtol=2e-4)
