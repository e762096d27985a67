"""Profile models: analytic Jacobians, canonical forms, reparametrisation and estimates."""

import numpy as np
import pytest
from numpy.testing import assert_allclose

from pyscatter.errors import InputError
from pyscatter.kernels.models import (
    MAIER_SAUPE,
    MODELS,
    PSEUDO_VOIGT,
    ProfileModel,
    get_model,
    wrap_deg,
)

# bin centres offset from whole degrees so that no bin sits on a pseudo-Voigt wrap point
CHI = np.arange(-179.5, 180.0, 1.0) + 0.123

MS_PARAMS = np.array(
    [
        [2.0, 5.0, 30.0, 10.0, 0.01],
        [1e-3, 16.0, -89.93, 5.0, -0.002],
        [3.0, 1.0, 179.41, 1.0, 0.0],
        [50.0, 0.2, 89.87, -3.0, 0.05],
    ]
)
PV_PARAMS = np.array(
    [
        [10.0, 50.0, 30.0, 15.0, 0.4, 0.01],
        [1.0, 20.0, 178.77, 5.0, 0.8, 0.0],
        [2.0, 5.0, -89.61, 40.0, 0.1, -0.01],
        [0.0, 3.0, -179.93, 2.5, 0.0, 0.002],
    ]
)
MSQ_PARAMS = np.array(
    [
        [100.0, 5.0, 30.0, 10.0, 0.01],
        [10.0, 16.0, -89.93, 5.0, -0.002],
        [3.0, 1e-5, 179.41, 1.0, 0.0],  # the series branch of the regular coordinates
        [3.0, 0.0, 12.0, 1.0, 0.0],
        [50.0, 0.2, 89.87, -3.0, 0.05],
    ]
)


def finite_difference_jacobian(func, chi, params, rel_step=1e-6):
    """Central differences, one parameter at a time, shape (n, n_chi, n_par)."""
    jac = np.empty(params.shape[:1] + chi.shape + params.shape[1:])
    for k in range(params.shape[1]):
        step = rel_step * np.maximum(np.abs(params[:, k]), 1.0)
        up, down = params.copy(), params.copy()
        up[:, k] += step
        down[:, k] -= step
        jac[..., k] = (func(chi, up) - func(chi, down)) / (2 * step[:, None])
    return jac


@pytest.mark.parametrize(
    ("model", "params"),
    [(MAIER_SAUPE, MS_PARAMS), (PSEUDO_VOIGT, PV_PARAMS), (MAIER_SAUPE.fit_space, MSQ_PARAMS)],
    ids=["maier_saupe", "pseudo_voigt", "maier_saupe_regular"],
)
def test_jacobian_matches_finite_differences(model, params):
    jac = model.jacobian(CHI, params)
    assert jac.shape == (len(params), CHI.size, model.n_par)
    numeric = finite_difference_jacobian(model.func, CHI, params)
    # central differences with a 1e-6 relative step are good to ~1e-9 of each column's scale;
    # 1e-6 relative (the brief) leaves room while catching any wrong factor or sign
    scale = np.abs(numeric).max(axis=1, keepdims=True)
    assert_allclose(jac / scale, numeric / scale, atol=1e-6, rtol=0)


def test_jacobian_of_the_kappa_zero_limit_uses_the_series():
    # at kappa = 0 exactly G = u; dG/dkappa = u (u - 1) / 2 and dG/du = 1 (limits, analytic)
    q = np.array([[2.0, 0.0, 20.0, 1.0, 0.0]])
    u = np.cos(np.radians(CHI - 20.0)) ** 2
    jac = MAIER_SAUPE.fit_space.jacobian(CHI, q)[0]
    assert_allclose(jac[:, 0], u, rtol=1e-14, atol=1e-15)
    assert_allclose(jac[:, 1], 2.0 * u * (u - 1) / 2, rtol=1e-12, atol=1e-15)
    assert_allclose(
        jac[:, 2], 2.0 * np.radians(1.0) * np.sin(np.radians(2 * (CHI - 20.0))), atol=1e-14
    )


def test_functions_broadcast_a_single_parameter_vector():
    for model, params in ((MAIER_SAUPE, MS_PARAMS), (PSEUDO_VOIGT, PV_PARAMS)):
        assert_allclose(model.func(CHI, params[0]), model.func(CHI, params)[0], rtol=1e-15)
        assert model.jacobian(CHI, params[0]).shape == (CHI.size, model.n_par)


def random_params(model, rng, n=200):
    if model is MAIER_SAUPE:
        return np.stack(
            [
                rng.uniform(0.1, 5, n),
                rng.uniform(-12, 12, n),  # negative kappa: rotated by 90 degrees
                rng.uniform(-720, 720, n),
                rng.uniform(-5, 5, n),
                rng.uniform(-0.01, 0.01, n),
            ],
            axis=1,
        )
    return np.stack(
        [
            rng.uniform(-5, 5, n),
            rng.uniform(0.1, 50, n),
            rng.uniform(-720, 720, n),
            rng.uniform(-40, 40, n) + np.where(rng.random(n) < 0.5, -41, 41),  # either sign
            rng.uniform(0, 1, n),
            rng.uniform(-0.01, 0.01, n),
        ],
        axis=1,
    )


@pytest.mark.parametrize("model", [MAIER_SAUPE, PSEUDO_VOIGT], ids=lambda m: m.name)
def test_canonical_form_is_the_same_curve(model):
    rng = np.random.default_rng(11)
    params = random_params(model, rng)
    canon, _ = model.normalise(params)
    # the same curve up to rounding (exp(kappa) rescaling costs a few ulp of the peak)
    assert_allclose(model.func(CHI, canon), model.func(CHI, params), rtol=1e-11, atol=1e-11)
    x0 = canon[:, model.index("x0")]
    assert np.all((x0 >= -90) & (x0 < 90))
    if model is MAIER_SAUPE:
        assert np.all(canon[:, 1] >= 0)
    else:
        assert np.all(canon[:, 3] > 0)
    # idempotent
    assert_allclose(model.normalise(canon)[0], canon, rtol=0, atol=0)


def normal_covariance(model, chi, params):
    jac = model.jacobian(chi, params)
    return np.linalg.inv(np.swapaxes(jac, 1, 2) @ jac)


@pytest.mark.parametrize("model", [MAIER_SAUPE, PSEUDO_VOIGT], ids=lambda m: m.name)
def test_canonical_form_transforms_the_covariance(model):
    # (J^T J)^-1 computed in the canonical parameters equals the transformed covariance
    rng = np.random.default_rng(5)
    params = random_params(model, rng, n=20)
    params[:, model.index(model.amplitude)] = np.abs(params[:, model.index(model.amplitude)])
    if model is MAIER_SAUPE:
        params[:, 1] = np.clip(params[:, 1], -8, 8)
        params[:, 1] += np.sign(params[:, 1]) * 1.0  # away from the kappa = 0 degeneracy
    canon, cov = model.normalise(params, normal_covariance(model, CHI, params))
    expected = normal_covariance(model, CHI, canon)
    scale = np.sqrt(np.einsum("nii->ni", expected))
    # both are inverses of normal matrices with condition numbers up to ~1e8
    assert_allclose(
        cov / scale[:, :, None] / scale[:, None, :],
        expected / scale[:, :, None] / scale[:, None, :],
        atol=1e-6,
    )


def test_regular_coordinates_round_trip():
    rng = np.random.default_rng(3)
    params = MAIER_SAUPE.normalise(random_params(MAIER_SAUPE, rng, n=50))[0]
    params[:, 1] += 0.5
    q = MAIER_SAUPE.to_fit(params)
    assert_allclose(
        MAIER_SAUPE.fit_space.func(CHI, q), MAIER_SAUPE.func(CHI, params), rtol=1e-11, atol=1e-11
    )
    back, _ = MAIER_SAUPE.from_fit(q)
    assert_allclose(back, params, rtol=1e-11, atol=1e-11)
    # covariance: transformed (J_q^T J_q)^-1 equals (J_p^T J_p)^-1
    _, cov = MAIER_SAUPE.from_fit(q, normal_covariance(MAIER_SAUPE.fit_space, CHI, q))
    expected = normal_covariance(MAIER_SAUPE, CHI, params)
    scale = np.sqrt(np.einsum("nii->ni", expected))
    assert_allclose(
        cov / scale[:, :, None] / scale[:, None, :],
        expected / scale[:, :, None] / scale[:, None, :],
        atol=1e-6,
    )


def test_regular_coordinates_at_kappa_zero():
    # kappa = 0: a pure 2-fold harmonic; I and a diverge (NaN), kappa, x0, b stay defined
    q = np.array([[3.0, 0.0, 12.0, 1.0, 0.5]])
    u = np.cos(np.radians(CHI - 12.0)) ** 2
    assert_allclose(MAIER_SAUPE.fit_space.func(CHI, q)[0], 3.0 * u + 1.0 + 0.5 * CHI, atol=1e-13)
    p, cov = MAIER_SAUPE.from_fit(q, np.eye(5)[None])
    assert np.isnan(p[0, [0, 3]]).all()
    assert_allclose(p[0, [1, 2, 4]], [0.0, 12.0, 0.5])
    assert_allclose(np.diagonal(cov[0])[[1, 2, 4]], 1.0)


@pytest.mark.parametrize("model", [MAIER_SAUPE, PSEUDO_VOIGT], ids=lambda m: m.name)
def test_estimate_is_close_on_noisy_profiles(model):
    rng = np.random.default_rng(8)
    n = 40
    x0 = rng.uniform(-180, 180, n)
    if model is MAIER_SAUPE:
        kappa = rng.uniform(1, 16, n)
        params = np.stack(
            [500 * np.exp(-kappa), kappa, x0, rng.uniform(50, 100, n), rng.uniform(-0.05, 0.05, n)],
            1,
        )
    else:
        params = np.stack(
            [
                rng.uniform(50, 100, n),
                rng.uniform(300, 600, n),
                x0,
                rng.uniform(3, 30, n),
                rng.uniform(0.2, 0.8, n),
                rng.uniform(-0.05, 0.05, n),
            ],
            1,
        )
    truth = model.func(CHI, params)
    profiles = truth + np.sqrt(truth) * rng.standard_normal(truth.shape)
    est = model.estimate(CHI, profiles)
    canon = model.normalise(params)[0]
    i = model.index("x0")
    # a starting point, not a fit: the director within a few degrees; the slope within 5
    # sigma of its noise (sigma ~ 10 counts per bin against a +-90 deg square wave of 360
    # bins: 10 / (90 sqrt(360)) = 0.006 per degree)
    assert np.all(np.abs(wrap_deg(est[:, i] - canon[:, i], 180.0)) < 3.0)
    assert_allclose(est[:, -1], canon[:, -1], atol=0.03)
    if model is MAIER_SAUPE:
        assert_allclose(est[:, 1], canon[:, 1], rtol=0.5)
    else:
        assert_allclose(est[:, 3], canon[:, 3], rtol=0.6)


def test_estimate_skips_nan_bins():
    profiles = MAIER_SAUPE.func(CHI, MS_PARAMS[:1])
    masked = profiles.copy()
    masked[0, 100:140] = np.nan
    est, est_masked = MAIER_SAUPE.estimate(CHI, profiles), MAIER_SAUPE.estimate(CHI, masked)
    assert np.isfinite(est_masked).all()
    assert abs(est_masked[0, 2] - est[0, 2]) < 1.0


def test_chi_convention_does_not_change_the_peak():
    # chi 0..360 (another azimuth convention) gives the same curve where chi coincides mod 360
    chi360 = np.mod(CHI, 360.0)
    for model, params in ((MAIER_SAUPE, MS_PARAMS.copy()), (PSEUDO_VOIGT, PV_PARAMS.copy())):
        params[:, -1] = 0.0  # the linear background is the only convention-dependent term
        assert_allclose(model.func(chi360, params), model.func(CHI, params), rtol=1e-12)


def test_registry_and_errors():
    assert set(MODELS) == {"maier_saupe", "pseudo_voigt"}
    assert get_model("pseudo_voigt") is PSEUDO_VOIGT
    assert get_model(MAIER_SAUPE) is MAIER_SAUPE
    assert isinstance(MAIER_SAUPE, ProfileModel)
    with pytest.raises(InputError, match="maier_saupe, pseudo_voigt"):
        get_model("gaussian")
    with pytest.raises(InputError, match="last axis of length 5"):
        MAIER_SAUPE.func(CHI, np.zeros((2, 4)))
    with pytest.raises(InputError, match="no parameter 'sigma'"):
        PSEUDO_VOIGT.index("sigma")
    with pytest.raises(AttributeError):  # frozen (dataclasses.FrozenInstanceError)
        MAIER_SAUPE.name = "x"  # type: ignore[misc]


def test_wrap_deg():
    # -1e-20 + 180 rounds to 180, the edge of the interval: it must not come back as +180
    assert_allclose(
        wrap_deg([180.0, -180.0, 539.0, -1e-20]), [-180.0, -180.0, 179.0, 0.0], atol=1e-15
    )
    out = wrap_deg(np.array([-90.0, 90.0, 270.0, np.nan]), 180.0)
    assert_allclose(out, [-90.0, -90.0, -90.0, np.nan])
