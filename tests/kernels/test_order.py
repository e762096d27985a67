"""Order parameter <P2>: closed form, model-free estimate, from fitted models; the director."""

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from pyscatter.errors import InputError
from pyscatter.kernels.fitting import FitStatus, fit_profiles
from pyscatter.kernels.models import MAIER_SAUPE, PSEUDO_VOIGT
from pyscatter.kernels.order import (
    ModelFreeStatus,
    director_from_params,
    model_free_order_parameter,
    order_parameter_from_model,
    order_parameter_from_profile,
    order_parameter_maier_saupe,
    order_parameter_maier_saupe_sigma,
)

CHI = np.arange(-179.5, 180.0, 1.0)  # pyFAI's convention, 360 bins
GAUSS_LEGENDRE = np.polynomial.legendre.leggauss(400)
KAPPAS = [
    -40.0,
    -5.0,
    -1.0,
    -0.999,
    -0.2,
    -1e-7,
    0.0,
    1e-7,
    0.2,
    0.999,
    1.0,
    1.001,
    4.0,
    16.0,
    60.0,
]


def design_formula(f, breaks=()):
    """S = int_0^pi P2(cos t) f(t) sin t dt / int_0^pi f(t) sin t dt, evaluated directly.

    Composite Gauss-Legendre (400 nodes per piece, pieces split at ``breaks``): the integrands
    are analytic on each piece, so this converges far below 1e-12.
    """
    nodes, weights = GAUSS_LEGENDRE
    edges = np.concatenate([[0.0], np.sort(breaks), [np.pi]])
    num = den = 0.0
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        t = 0.5 * (hi - lo) * nodes + 0.5 * (hi + lo)
        w = 0.5 * (hi - lo) * weights * f(t) * np.sin(t)
        num += np.sum(w * 0.5 * (3 * np.cos(t) ** 2 - 1))
        den += np.sum(w)
    return num / den


@pytest.mark.parametrize("kappa", KAPPAS)
def test_maier_saupe_closed_form_matches_the_design_formula(kappa):
    # exp(kappa (cos^2 - 1)) keeps the integrands O(1) for large kappa (the ratio is unchanged)
    expected = design_formula(lambda t: np.exp(kappa * (np.cos(t) ** 2 - 1.0)))
    # quadrature to ~1e-14; the closed form (Dawson / erf / series) to ~1e-15
    assert_allclose(order_parameter_maier_saupe(kappa), expected, rtol=0, atol=1e-10)


def test_maier_saupe_landmarks():
    s = order_parameter_maier_saupe([0.0, 16.0, np.inf, -np.inf, np.nan])
    assert s[0] == 0.0
    assert abs(s[1] - 0.9) < 0.01  # S(16) ~ 0.9 (DESIGN)
    assert s[2] == 1.0 and s[3] == -0.5 and np.isnan(s[4])
    # large kappa: S = 1 - 3 / (2 kappa) + O(kappa^-2)
    assert_allclose(order_parameter_maier_saupe(1e4), 1 - 1.5e-4, atol=1e-7)
    # monotonic
    k = np.linspace(-50, 50, 2001)
    assert np.all(np.diff(order_parameter_maier_saupe(k)) > 0)
    assert order_parameter_maier_saupe(np.ones((2, 3))).shape == (2, 3)


def test_maier_saupe_sigma_is_the_derivative():
    k = np.array([-40.0, -5.0, -1.0, -0.5, 0.0, 0.5, 0.999, 1.001, 5.0, 16.0, 100.0])
    h = 1e-5
    numeric = (order_parameter_maier_saupe(k + h) - order_parameter_maier_saupe(k - h)) / (2 * h)
    # central differences: ~1e-10 absolute on slopes of order 0.1
    assert_allclose(order_parameter_maier_saupe_sigma(k, 1.0), numeric, rtol=1e-6, atol=1e-10)
    assert_allclose(order_parameter_maier_saupe_sigma(0.0, 0.3), 0.3 * 2 / 15, rtol=1e-14)
    assert_allclose(
        order_parameter_maier_saupe_sigma([2.0, 2.0], [0.0, 2.0]),
        [0.0, 2.0 * order_parameter_maier_saupe_sigma(2.0, 1.0)],
        rtol=1e-15,
    )


@pytest.mark.parametrize("kappa", [0.5, 2.0, 16.0, 100.0])
@pytest.mark.parametrize("director", [0.0, 33.3, 89.6, -90.0, 179.7])
def test_model_free_p2_of_a_maier_saupe_profile(kappa, director):
    profile = np.exp(kappa * (np.cos(np.radians(CHI - director)) ** 2 - 1.0))
    s = order_parameter_from_profile(CHI, profile, director)
    # the brief: within 1e-3 with 360 bins (measured: <= 8e-5, the bins sample the peak)
    assert abs(s - order_parameter_maier_saupe(kappa)) < 1e-3


def test_model_free_p2_is_batched_and_takes_other_chi_conventions():
    kappa = np.array([1.0, 4.0, 16.0])
    director = np.array([10.0, -70.0, 150.0])
    profiles = np.exp(kappa[:, None] * np.cos(np.radians(CHI - director[:, None])) ** 2)
    s = order_parameter_from_profile(CHI, profiles, director)
    chi360 = np.mod(CHI, 360.0)
    s360 = order_parameter_from_profile(chi360, profiles, director + 360.0)
    assert s.shape == (3,)
    assert_allclose(s360, s, rtol=1e-12)
    assert_allclose(s, order_parameter_maier_saupe(kappa), atol=1e-3)


def test_perpendicular_director_gives_negative_order():
    # measured about a director 90 degrees off, exp(k cos^2) is exp(-k cos^2) up to a factor
    profile = np.exp(4.0 * np.cos(np.radians(CHI - 20.0)) ** 2)
    s = order_parameter_from_profile(CHI, profile, 110.0)
    assert abs(s - order_parameter_maier_saupe(-4.0)) < 1e-3


def test_masked_bins_are_filled_from_the_centro_symmetric_partner():
    profile = np.exp(6.0 * np.cos(np.radians(CHI - 25.0)) ** 2)
    masked = profile.copy()
    masked[200:215] = np.nan  # around the peak at 25 deg: its partners at -155 are measured
    masked[5:18] = np.nan
    full, gappy = order_parameter_from_profile(CHI, np.stack([profile, masked]), 25.0)
    # an exactly symmetric profile: the filled bins are the same numbers
    assert_allclose(gappy, full, rtol=1e-13)
    # both partners masked: the bins are skipped (a small bias, still close)
    both = masked.copy()
    both[20:35] = np.nan
    both[200:215] = np.nan
    assert abs(order_parameter_from_profile(CHI, both, 25.0) - full) < 0.05
    assert np.isnan(order_parameter_from_profile(CHI, np.full(CHI.size, np.nan), 0.0))


def test_background_is_subtracted_first():
    kappa = 3.0
    oriented = np.exp(kappa * np.cos(np.radians(CHI)) ** 2)
    flat = 7.0
    s_true = order_parameter_from_profile(CHI, oriented, 0.0)
    assert_allclose(
        order_parameter_from_profile(CHI, oriented + flat, 0.0, background=flat), s_true, rtol=1e-12
    )
    two = np.stack([oriented + 1.0, oriented + 2.0])
    assert_allclose(
        order_parameter_from_profile(CHI, two, 0.0, background=[1.0, 2.0]),
        [s_true, s_true],
        rtol=1e-12,
    )
    curve = 0.01 * CHI + 3.0
    assert_allclose(
        order_parameter_from_profile(CHI, oriented + curve, 0.0, background=curve),
        s_true,
        rtol=1e-12,
    )
    # an isotropic background dilutes the order
    assert order_parameter_from_profile(CHI, oriented + flat, 0.0) < 0.5 * s_true
    with pytest.raises(InputError, match="background must be"):
        order_parameter_from_profile(CHI, two, 0.0, background=np.ones(7))


def test_isotropic_profile_has_zero_order():
    assert abs(order_parameter_from_profile(CHI, np.ones(CHI.size), 12.0)) < 1e-14
    rng = np.random.default_rng(0)
    noisy = 100 + 10 * rng.standard_normal((20, CHI.size))
    # 10 % noise per bin: S scatters by ~0.01
    assert np.abs(order_parameter_from_profile(CHI, noisy, 0.0)).max() < 0.03


@pytest.mark.parametrize("kappa", [0.0, 0.5, 4.0, 16.0, 60.0])
def test_from_model_maier_saupe_equals_the_closed_form(kappa):
    params = np.array([[2.0, kappa, 33.0, 10.0, 0.1]])  # background and director must not matter
    s = order_parameter_from_model("maier_saupe", params)
    # Simpson on 2001 points of a smooth integrand: error ~ h^4 (measured 2e-11 at kappa 60)
    assert_allclose(s, order_parameter_maier_saupe(kappa), atol=1e-9)


@pytest.mark.parametrize(("gamma", "eta"), [(2.0, 0.5), (10.0, 0.0), (25.0, 1.0), (60.0, 0.3)])
def test_from_model_pseudo_voigt_matches_direct_quadrature(gamma, eta):
    def peak(d_deg):
        u2 = (d_deg / gamma) ** 2
        return eta / (1 + u2) + (1 - eta) * np.exp(-np.log(2) * u2)

    def f(t):  # the peak at 0 and its partner at 180, distances wrapped into [-180, 180)
        d = np.degrees(t)
        return peak(d) + peak(d - 180.0)

    expected = design_formula(f, breaks=(np.radians(3 * gamma), np.pi - np.radians(3 * gamma)))
    params = np.array([5.0, 40.0, -12.0, gamma, eta, 0.03])
    s = order_parameter_from_model(PSEUDO_VOIGT, params)
    # Simpson on 2001 points (0.09 deg) against adaptive quadrature: 1e-6 covers the 2 deg peak
    assert_allclose(s, expected, atol=1e-6)


def test_from_model_rows_without_a_peak():
    params = np.array(
        [
            [0.0, 0.0, np.nan, 100.0, 0.0],  # ISOTROPIC fit: I = 0, kappa = 0
            [np.nan, 0.0, 20.0, np.nan, 0.0],  # the kappa -> 0 limit of a WEAK fit
            [np.nan] * 5,  # FAILED
        ]
    )
    s = order_parameter_from_model("maier_saupe", params)
    assert s[0] == 0.0
    assert abs(s[1]) < 1e-12  # a flat distribution by quadrature
    assert np.isnan(s[2])
    with pytest.raises(InputError, match=r"shape \(n, 6\)"):
        order_parameter_from_model("pseudo_voigt", params)
    with pytest.raises(InputError, match="n_theta"):
        order_parameter_from_model("maier_saupe", params, n_theta=2)


def test_director_from_params():
    params = np.array(
        [
            [1.0, 4.0, 100.0, 0.0, 0.0],  # folded into [-90, 90)
            [1.0, -4.0, 10.0, 0.0, 0.0],  # kappa < 0: the maximum is 90 degrees away
            [0.0, 0.0, np.nan, 5.0, 0.0],  # isotropic: undefined
        ]
    )
    errors = np.array([[0.1, 0.2, 0.5, 0.1, 0.0]] * 3)
    director, sigma = director_from_params("maier_saupe", params, errors)
    assert_allclose(director, [-80.0, -80.0, np.nan])
    assert_allclose(sigma, [0.5, 0.5, 0.5])
    d, s = director_from_params(
        PSEUDO_VOIGT, [0.0, 1.0, 179.0, 5.0, 0.5, 0.0], [0.0, 0.0, 0.25, 0, 0, 0]
    )
    assert float(d) == -1.0 and float(s) == 0.25
    # the director is the chi of the maximum of the fitted curve (on a fine grid)
    chi = np.linspace(-90, 90, 18001, endpoint=False)
    curve = MAIER_SAUPE.func(chi, params[1])
    assert abs(chi[np.argmax(curve)] - director[1]) < 0.01
    with pytest.raises(InputError, match="errors must have the shape"):
        director_from_params("maier_saupe", params, errors[:2])


def test_fit_then_order_parameter_end_to_end():
    # noisy Maier-Saupe profiles: S from kappa, from the fitted model and model-free agree
    rng = np.random.default_rng(17)
    kappa = np.array([2.0, 6.0, 12.0])
    x0 = np.array([-85.0, 10.0, 170.0])
    params = np.stack([800 * np.exp(-kappa), kappa, x0, np.full(3, 50.0), np.zeros(3)], 1)
    truth = MAIER_SAUPE.func(CHI, params)
    sigma = np.sqrt(truth)
    profiles = truth + sigma * rng.standard_normal(truth.shape)
    fit = fit_profiles(CHI, profiles, sigma)
    assert_array_equal(fit.status, FitStatus.OK)
    s_kappa = order_parameter_maier_saupe(fit["kappa"])
    s_sigma = order_parameter_maier_saupe_sigma(fit["kappa"], fit.errors[:, 1])
    assert np.all(np.abs(s_kappa - order_parameter_maier_saupe(kappa)) < 5 * s_sigma)
    assert_allclose(order_parameter_from_model("maier_saupe", fit.params), s_kappa, atol=1e-9)
    director, _ = director_from_params("maier_saupe", fit.params, fit.errors)
    s_free = order_parameter_from_profile(CHI, profiles, director, background=fit["a"])
    # model-free with the fitted background: noise of a few 1e-3
    assert_allclose(s_free, s_kappa, atol=0.02)


def test_input_errors():
    with pytest.raises(InputError, match="chi_deg"):
        order_parameter_from_profile(CHI[:1], np.ones(1), 0.0)
    with pytest.raises(InputError, match="profiles must have shape"):
        order_parameter_from_profile(CHI, np.ones((2, 10)), 0.0)
    with pytest.raises(InputError, match="director_deg"):
        order_parameter_from_profile(CHI, np.ones((2, CHI.size)), [0.0, 1.0, 2.0])


def test_model_free_order_parameter_is_bounded_and_flagged():
    """Issue 19.3: a background-subtracted profile is no distribution; <P2> left [-1/2, 1]."""
    narrow = np.exp(229.0 * (np.cos(np.radians(CHI - 30.0)) ** 2 - 1.0))  # peak 1 at 30 deg
    floor = 0.01
    rows = np.stack([narrow + floor] * 5)
    # the background subtracted: exact, 10 % too high, far too high; then the peak across the
    # director (S -> -1/2) with the background 5 % too high; a row of NaN
    background = np.array([floor, 1.1 * floor, 3.0 * floor, 1.05 * floor, floor])
    rows[3] = np.exp(229.0 * (np.cos(np.radians(CHI - 120.0)) ** 2 - 1.0)) + floor
    rows[4] = np.nan
    raw = order_parameter_from_profile(CHI, rows, 30.0, background=background)
    s, status = model_free_order_parameter(CHI, rows, 30.0, background=background)
    # the raw ratios: 0.9934 (the DESIGN value of kappa = 229 on these bins), > 1, a negative
    # denominator, < -1/2
    assert 0.99 < raw[0] < 1 and raw[1] > 1.5 and raw[3] < -0.5
    assert_array_equal(
        status,
        [
            ModelFreeStatus.OK,
            ModelFreeStatus.ABOVE_ONE,
            ModelFreeStatus.NO_SIGNAL,
            ModelFreeStatus.BELOW_MINUS_HALF,
            ModelFreeStatus.NO_SIGNAL,
        ],
    )
    assert s.dtype == np.float64 and status.dtype == np.int8
    assert_allclose(s[[0, 1, 3]], [raw[0], 1.0, -0.5], rtol=1e-15)
    assert np.isnan(s[[2, 4]]).all()
    assert_allclose(raw[0], order_parameter_maier_saupe(229.0), atol=2e-3)  # 1-degree bins
    one, code = model_free_order_parameter(CHI, rows[1], 30.0, background=background[1])
    assert one.shape == () and code == ModelFreeStatus.ABOVE_ONE
