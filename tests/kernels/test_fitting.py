"""Vectorised Levenberg--Marquardt against scipy's curve_fit, ground truth and edge cases."""

import warnings

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from scipy import optimize

from pyscatter.errors import InputError
from pyscatter.kernels.fitting import FitResult, FitStatus, fit_profiles, fit_profiles_reference
from pyscatter.kernels.models import MAIER_SAUPE, PSEUDO_VOIGT, get_model, wrap_deg
from pyscatter.kernels.order import order_parameter_from_profile, order_parameter_maier_saupe

CHI = np.arange(-179.5, 180.0, 1.0)  # pyFAI's convention, 360 bins
# directors all around the circle, and next to the +-90 (canonical) and +-180 (pyFAI) wraps
SPECIAL_X0 = [89.9, -89.95, 90.02, 179.8, -179.9, 0.05]


def true_params(model_name, n, rng):
    x0 = rng.uniform(-180.0, 180.0, n)
    k = min(n, len(SPECIAL_X0))
    x0[:k] = SPECIAL_X0[:k]
    if model_name == "maier_saupe":
        kappa = np.linspace(1.0, 16.0, n)
        rng.shuffle(kappa)
        peak = rng.uniform(300.0, 1000.0, n)
        return np.stack(
            [
                peak * np.exp(-kappa),
                kappa,
                x0,
                rng.uniform(50, 150, n),
                rng.uniform(-0.05, 0.05, n),
            ],
            1,
        )
    return np.stack(
        [
            rng.uniform(50, 150, n),
            rng.uniform(300, 1000, n),
            x0,
            rng.uniform(3, 30, n),
            rng.uniform(0.2, 0.8, n),
            rng.uniform(-0.05, 0.05, n),
        ],
        1,
    )


def noisy(model_name, params, rng):
    """Profiles with Gaussian noise of Poisson size, and that sigma."""
    truth = get_model(model_name).func(CHI, params)
    sigma = np.sqrt(truth)
    return truth + sigma * rng.standard_normal(truth.shape), sigma


def angular_diff(result_params, expected, i_x0):
    diff = result_params - expected
    diff[:, i_x0] = wrap_deg(diff[:, i_x0], 180.0)
    return diff


def curve_fit_rows(model, chi, profiles, sigma, p0, absolute_sigma):
    """scipy's curve_fit row by row (default Levenberg--Marquardt), canonical form after."""
    params, errors = [], []
    for y, s, start in zip(profiles, sigma, p0, strict=True):
        use = np.isfinite(y)
        popt, pcov = optimize.curve_fit(
            lambda x, *p: model.func(x, np.asarray(p)),
            chi[use],
            y[use],
            p0=start,
            sigma=s[use],
            absolute_sigma=absolute_sigma,
            jac=lambda x, *p: model.jacobian(x, np.asarray(p)),
            ftol=1e-13,
            xtol=1e-13,
        )
        popt, pcov = model.normalise(popt[None], pcov[None])
        params.append(popt[0])
        errors.append(np.sqrt(np.diag(pcov[0])))
    return np.array(params), np.array(errors)


@pytest.mark.parametrize("absolute_sigma", [True, False])
@pytest.mark.parametrize("model_name", ["maier_saupe", "pseudo_voigt"])
def test_agrees_with_curve_fit(model_name, absolute_sigma):
    rng = np.random.default_rng(2024)
    model = get_model(model_name)
    params = true_params(model_name, 50, rng)
    profiles, sigma = noisy(model_name, params, rng)
    p0 = model.estimate(CHI, profiles)
    result = fit_profiles(
        CHI, profiles, sigma, model=model_name, absolute_sigma=absolute_sigma, p0=p0
    )
    assert_array_equal(result.status, FitStatus.OK)
    expected, expected_err = curve_fit_rows(model, CHI, profiles, sigma, p0, absolute_sigma)
    diff = angular_diff(result.params, expected, model.index("x0"))
    # the brief: the same optimum within 1e-3 standard deviation per parameter (both converge
    # to ~1e-6 sigma, see benchmarks/bench_fitting.py)
    assert np.max(np.abs(diff) / expected_err) < 1e-3
    # the same covariance: both are (J^T W J)^-1 at the same point, to ~1e-6 relative
    assert_allclose(result.errors, expected_err, rtol=1e-4)


@pytest.mark.parametrize("model_name", ["maier_saupe", "pseudo_voigt"])
def test_recovers_truth_with_honest_errors(model_name):
    rng = np.random.default_rng(7)
    model = get_model(model_name)
    params = true_params(model_name, 200, rng)
    profiles, sigma = noisy(model_name, params, rng)
    result = fit_profiles(CHI, profiles, sigma, model=model_name)
    assert_array_equal(result.status, FitStatus.OK)
    pulls = (
        angular_diff(result.params, model.normalise(params)[0], model.index("x0")) / result.errors
    )
    # Gaussian noise of known sigma: pulls are ~N(0, 1). 200 x n_par pulls: none beyond 5 and an
    # rms within 0.8..1.2 per parameter (its standard error is 1/sqrt(400) = 0.05)
    assert np.abs(pulls).max() < 5.0
    assert_allclose(np.sqrt(np.mean(pulls**2, axis=0)), 1.0, atol=0.2)
    assert_allclose(np.median(result.reduced_chi2), 1.0, atol=0.05)
    assert np.all(result.r2 > 0.5)


def test_noise_free_profiles_are_fitted_exactly():
    params = true_params("maier_saupe", 12, np.random.default_rng(1))
    profiles = MAIER_SAUPE.func(CHI, params)
    result = fit_profiles(CHI, profiles)  # no sigma: errors scaled by the reduced chi2
    assert_array_equal(result.status, FitStatus.OK)
    expected = MAIER_SAUPE.normalise(params)[0]
    diff = angular_diff(result.params, expected, 2)
    # exact data: only rounding is left (the peak spans e^16 in I)
    assert_allclose(diff / np.abs(expected).clip(1e-12), 0.0, atol=1e-7)
    assert np.all(result.errors < 1e-6 * np.abs(expected) + 1e-9)


@pytest.mark.parametrize("model_name", ["maier_saupe", "pseudo_voigt"])
def test_isotropic_profiles_are_flagged_not_fitted_as_spikes(model_name):
    rng = np.random.default_rng(99)
    n = 40
    background = rng.uniform(50, 200, n)[:, None] + rng.uniform(-0.05, 0.05, n)[:, None] * CHI
    sigma = np.sqrt(background)
    profiles = background + sigma * rng.standard_normal(background.shape)
    model = get_model(model_name)
    result = fit_profiles(CHI, profiles, sigma, model=model_name)
    assert_array_equal(result.status, FitStatus.ISOTROPIC)
    # a zero peak, never a spike; the director is undefined; the background is the linear fit
    assert_array_equal(result.params[:, model.index(model.amplitude)], 0.0)
    assert np.isnan(result.params[:, model.index("x0")]).all()
    const, slope = (model.index(name) for name in model.background)
    expected = np.polynomial.polynomial.polyfit(CHI, profiles.T, 1, w=1 / sigma[0]).T
    # only the first row's sigma was used above: compare that row exactly, the rest loosely
    assert_allclose(result.params[0, [const, slope]], expected[0], rtol=1e-9)
    assert np.all(np.isfinite(result.errors[:, [const, slope]]))
    assert_allclose(np.median(result.reduced_chi2), 1.0, atol=0.1)
    if model_name == "maier_saupe":
        assert_array_equal(result.params[:, model.index("kappa")], 0.0)
        s_fit = order_parameter_maier_saupe(result.params[:, model.index("kappa")])
        assert np.abs(s_fit).max() < 0.03
    # the model-free S about any director is near 0 too (the brief: within 0.03)
    s_free = order_parameter_from_profile(CHI, profiles, 0.0, background=0.0)
    assert np.abs(s_free).max() < 0.03


def test_narrow_peaks_behind_a_gap_are_not_called_isotropic():
    # narrow strong pseudo-Voigt pairs with a 120 degree gap hiding one peak: the 2-fold
    # harmonic alone fits them badly; its residuals must not be taken for noise
    rng = np.random.default_rng(33)
    n = 30
    params = np.stack(
        [
            np.full(n, 100.0),
            rng.uniform(300, 1500, n),
            rng.uniform(-180, 180, n),
            rng.uniform(2.0, 4.0, n),
            rng.uniform(0.1, 0.3, n),
            np.zeros(n),
        ],
        1,
    )
    profiles, sigma = noisy("pseudo_voigt", params, rng)
    for row, x0 in zip(profiles, params[:, 2], strict=True):
        row[np.abs(wrap_deg(CHI - x0 - 180.0)) < 60.0] = np.nan  # the partner peak is hidden
    result = fit_profiles(CHI, profiles, sigma, model="pseudo_voigt")
    assert_array_equal(result.status, FitStatus.OK)
    pulls = angular_diff(result.params, PSEUDO_VOIGT.normalise(params)[0], 2) / result.errors
    assert np.abs(pulls).max() < 5.0


def test_a_sharp_fibre_peak_on_a_low_floor_is_not_called_isotropic():
    # kappa = 229, peak 900 counts on a floor of 2, 2 degree bins, Poisson: the weights
    # (1/counts) rest on the floor bins, where the 2-fold harmonic finds nothing; main called
    # 353 of 400 such rows ISOTROPIC (S = 0 for a strongly oriented fibre)
    rng = np.random.default_rng(229)
    chi = np.arange(-179.0, 180.0, 2.0)
    kappa = 229.0
    truth = MAIER_SAUPE.func(chi, np.array([[900.0 * np.exp(-kappa), kappa, 20.0, 2.0, 0.0]]))
    profiles = rng.poisson(np.broadcast_to(truth, (200, chi.size))).astype(float)
    sigma = np.sqrt(np.maximum(profiles, 1.0))
    result = fit_profiles(chi, profiles, sigma)
    assert_array_equal(result.status, FitStatus.OK)
    # kappa within 5 sigma of the truth in every row; the director within 5 sigma too
    assert np.abs((result.params[:, 1] - kappa) / result.errors[:, 1]).max() < 5.0
    assert np.abs(wrap_deg(result.params[:, 2] - 20.0, 180.0) / result.errors[:, 2]).max() < 5.0
    reference = fit_profiles_reference(chi, profiles[:10], sigma[:10])
    assert_array_equal(reference.status, FitStatus.OK)


def test_a_sharp_peak_with_correlated_bins_is_not_called_isotropic():
    # the same fibre, 60 counts on the floor, with the bins a 3-bin moving average of Poisson
    # counts (neighbour correlations 2/3 and 1/3, as pixel splitting makes them) and that
    # correlation passed: the background-misfit test needs the per-bin noise, not the
    # harmonic's correlated scale (which called 131 of 400 rows ISOTROPIC)
    import scipy.sparse as sp

    rng = np.random.default_rng(1)
    chi = np.arange(-179.0, 180.0, 2.0)
    m = chi.size
    rho = {0: 1.0, 1: 2 / 3, 2: 1 / 3}
    offsets = [(k, v) for k, v in rho.items()] + [(-k, v) for k, v in rho.items() if k]
    offsets += [(s * (m - k), v) for k, v in rho.items() if k for s in (1, -1)]  # circular
    correlation = sp.diags([np.full(m - abs(o), v) for o, v in offsets], [o for o, _ in offsets])
    params = np.array([[60.0 * np.exp(-229.0), 229.0, 20.0, 2.0, 0.0]])
    counts = rng.poisson(np.broadcast_to(MAIER_SAUPE.func(chi, params), (400, m))).astype(float)
    profiles = (np.roll(counts, 1, axis=1) + counts + np.roll(counts, -1, axis=1)) / 3.0
    sigma = np.sqrt(np.maximum(profiles, 1.0 / 3.0) / 3.0)
    result = fit_profiles(chi, profiles, sigma, correlation=correlation.tocsr())
    assert_array_equal(result.status, FitStatus.OK)
    assert np.abs(wrap_deg(result.params[:, 2] - 20.0, 180.0) / result.errors[:, 2]).max() < 5.0


def test_a_zinger_on_an_isotropic_profile_is_not_a_peak():
    rng = np.random.default_rng(34)
    profiles = 100.0 + 10.0 * rng.standard_normal((20, CHI.size))
    profiles[np.arange(20), rng.integers(0, CHI.size, 20)] += 200.0  # one 20-sigma bin each
    for model in ("maier_saupe", "pseudo_voigt"):
        result = fit_profiles(CHI, profiles, np.full_like(profiles, 10.0), model=model)
        assert_array_equal(result.status, FitStatus.ISOTROPIC)


def test_weak_orientation_reports_the_kappa_zero_limit_not_a_failure():
    # kappa = 0.3 buried in noise: significant 2-fold anisotropy, kappa not measurable
    rng = np.random.default_rng(3)
    n = 60
    params = np.tile([100 * np.exp(-0.3), 0.3, 20.0, 0.0, 0.0], (n, 1))
    truth = MAIER_SAUPE.func(CHI, params)
    profiles = truth + 8.0 * rng.standard_normal(truth.shape)
    result = fit_profiles(CHI, profiles, np.full_like(profiles, 8.0))
    ok = np.isin(result.status, [FitStatus.OK, FitStatus.WEAK, FitStatus.ISOTROPIC])
    assert ok.all(), np.bincount(result.status)
    weak = result.status == FitStatus.WEAK
    assert weak.sum() > n // 2
    # WEAK rows keep a director within a few sigma of the truth
    x0 = result.params[weak, 2]
    assert np.all(np.abs(wrap_deg(x0 - 20.0, 180.0)) < 5 * result.errors[weak, 2])
    at_limit = weak & (result.params[:, 1] == 0)
    assert np.isnan(result.params[at_limit][:, [0, 3]]).all()


def test_bad_rows_get_nan_and_a_status_and_do_not_disturb_the_others():
    rng = np.random.default_rng(5)
    params = true_params("pseudo_voigt", 6, rng)
    profiles, sigma = noisy("pseudo_voigt", params, rng)
    profiles[1] = np.nan  # all masked
    profiles[3, 4:] = np.nan  # 4 points for 6 parameters
    sigma[4, ::2] = 0.0  # half the bins excluded by sigma = 0
    result = fit_profiles(CHI, profiles, sigma, model="pseudo_voigt")
    assert_array_equal(
        result.status,
        [
            FitStatus.OK,
            FitStatus.TOO_FEW_POINTS,
            FitStatus.OK,
            FitStatus.TOO_FEW_POINTS,
            FitStatus.OK,
            FitStatus.OK,
        ],
    )
    assert np.isnan(result.params[[1, 3]]).all() and np.isnan(result.errors[[1, 3]]).all()
    assert np.isnan(result.r2[[1, 3]]).all()
    good = [0, 2, 4, 5]
    alone = fit_profiles(CHI, profiles[good], sigma[good], model="pseudo_voigt")
    # rows are independent: identical to fitting the good rows alone
    assert_allclose(result.params[good], alone.params, rtol=1e-12)
    masked = profiles[4].copy()
    masked[::2] = np.nan
    row4 = fit_profiles(CHI, masked[None], sigma[4:5], model="pseudo_voigt")
    assert_allclose(result.params[4], row4.params[0], rtol=1e-12)


def test_masked_bins_match_curve_fit_on_the_remaining_points():
    rng = np.random.default_rng(12)
    params = true_params("maier_saupe", 8, rng)
    profiles, sigma = noisy("maier_saupe", params, rng)
    for row in profiles:
        row[rng.choice(CHI.size, 60, replace=False)] = np.nan
    p0 = MAIER_SAUPE.estimate(CHI, profiles)
    result = fit_profiles(CHI, profiles, sigma, p0=p0)
    expected, expected_err = curve_fit_rows(MAIER_SAUPE, CHI, profiles, sigma, p0, True)
    diff = angular_diff(result.params, expected, 2)
    assert np.max(np.abs(diff) / expected_err) < 1e-3


def test_reference_twin_gives_the_same_results():
    rng = np.random.default_rng(21)
    params = true_params("maier_saupe", 10, rng)
    profiles, sigma = noisy("maier_saupe", params, rng)
    profiles[2] = 100.0 + 10.0 * rng.standard_normal(CHI.size)  # isotropic
    sigma[2] = 10.0
    profiles[5] = np.nan
    fast = fit_profiles(CHI, profiles, sigma)
    slow = fit_profiles_reference(CHI, profiles, sigma)
    assert_array_equal(fast.status, slow.status)
    assert fast.status[2] == FitStatus.ISOTROPIC and fast.status[5] == FitStatus.TOO_FEW_POINTS
    ok = fast.status == FitStatus.OK
    diff = angular_diff(fast.params[ok], slow.params[ok], 2)
    assert np.max(np.abs(diff) / slow.errors[ok]) < 1e-3
    assert_allclose(fast.params[2], slow.params[2], rtol=1e-12, equal_nan=True)
    assert_allclose(fast.reduced_chi2, slow.reduced_chi2, rtol=1e-6, equal_nan=True)


def test_other_chi_convention_gives_the_same_fit():
    # chi in 0..360 instead of pyFAI's -180..180: the peak and director must not change. The
    # linear background is b * chi in the given convention (its jump moves with the origin), so
    # compare on noise-free profiles without slope, where both must return the truth.
    params = true_params("maier_saupe", 10, np.random.default_rng(4))
    params[:, 4] = 0.0
    chi360 = np.mod(CHI, 360.0)
    order = np.argsort(chi360)
    profiles = MAIER_SAUPE.func(chi360[order], params)
    result = fit_profiles(chi360[order], profiles)
    assert_array_equal(result.status, FitStatus.OK)
    expected = MAIER_SAUPE.normalise(params)[0]
    diff = angular_diff(result.params, expected, 2)
    assert_allclose(diff[:, 1:], 0.0, atol=1e-7)
    assert_allclose(result.params[:, 0], expected[:, 0], rtol=1e-7)


def test_explicit_p0_and_result_access():
    rng = np.random.default_rng(6)
    params = true_params("maier_saupe", 4, rng)
    profiles, sigma = noisy("maier_saupe", params, rng)
    default = fit_profiles(CHI, profiles, sigma)
    # a start from the truth (rotated by a half turn, the same curve) reaches the same optimum
    start = params.copy()
    start[:, 2] += 180.0
    result = fit_profiles(CHI, profiles, sigma, p0=start)
    assert np.max(np.abs(angular_diff(result.params, default.params, 2)) / default.errors) < 1e-3
    assert isinstance(result, FitResult) and len(result) == 4
    assert result.param_names == MAIER_SAUPE.param_names
    assert_array_equal(result["kappa"], result.params[:, 1])
    assert result.status.dtype == np.int8 and result.params.dtype == np.float64
    with pytest.raises(InputError, match="no parameter 'sigma'"):
        result["sigma"]


def test_max_iter_exhausted_gives_not_converged():
    rng = np.random.default_rng(8)
    params = true_params("pseudo_voigt", 5, rng)
    profiles, sigma = noisy("pseudo_voigt", params, rng)
    result = fit_profiles(CHI, profiles, sigma, model="pseudo_voigt", max_iter=1)
    assert np.all(result.status == FitStatus.NOT_CONVERGED)
    assert np.isnan(result.params).all()
    assert_array_equal(result.n_iter, 1)


def test_input_errors():
    profiles = np.ones((2, CHI.size))
    with pytest.raises(InputError, match=r"profiles must have shape \(n, 360\)"):
        fit_profiles(CHI, profiles[:, :10])
    with pytest.raises(InputError, match="sigma must have the shape"):
        fit_profiles(CHI, profiles, np.ones((3, CHI.size)))
    with pytest.raises(InputError, match="unsupported model 'voigt'"):
        fit_profiles(CHI, profiles, model="voigt")
    with pytest.raises(InputError, match="p0 must have shape"):
        fit_profiles(CHI, profiles, p0=np.ones(4))
    with pytest.raises(InputError, match="max_iter"):
        fit_profiles(CHI, profiles, max_iter=0)
    with pytest.raises(InputError, match="isotropy_alpha"):
        fit_profiles_reference(CHI, profiles, isotropy_alpha=1.5)
    with pytest.raises(InputError, match="chi_deg must be a finite 1-d array"):
        fit_profiles(np.full(360, np.nan), profiles)


def test_no_warnings_on_hopeless_rows():
    # constant, zero, huge and alternating rows: statuses, never warnings (filterwarnings=error)
    rows = np.stack(
        [
            np.zeros(CHI.size),
            np.full(CHI.size, 1e300),
            np.tile([0.0, 1e6], CHI.size // 2),
            np.ones(CHI.size),
        ]
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for model in ("maier_saupe", "pseudo_voigt"):
            result = fit_profiles(CHI, rows, model=model)
            assert len(result) == 4
            result = fit_profiles(CHI, rows, model=model, isotropy_alpha=None)
            assert np.all(np.isin(result.status, list(FitStatus)))


def _ma_correlation(n_chi, weights):
    """Correlation of a circular moving average with ``weights`` (noise of split pixels)."""
    full = np.convolve(weights, weights[::-1])
    lags = full[len(weights) - 1 :] / full[len(weights) - 1]
    r = np.zeros((n_chi, n_chi))
    for lag, value in enumerate(lags):
        idx = np.arange(n_chi)
        r[idx, (idx + lag) % n_chi] = value
        r[(idx + lag) % n_chi, idx] = value
    return r, lags


@pytest.mark.parametrize("model_name", ["maier_saupe", "pseudo_voigt"])
def test_correlated_errors_equal_the_reference(model_name):
    """The batched sandwich equals curve_fit's covariance sandwiched in dense matrices."""
    rng = np.random.default_rng(21)
    params = true_params(model_name, 12, rng)
    model = get_model(model_name)
    truth = model.func(CHI, params)
    sigma = np.sqrt(truth)
    y = truth + sigma * rng.standard_normal(truth.shape)
    y[:, 40:45] = np.nan  # excluded bins drop out of the sandwich
    r, _ = _ma_correlation(CHI.size, np.array([1.0, 0.8, 0.3]))
    fast = fit_profiles(CHI, y, sigma, model=model_name, correlation=r)
    ref = fit_profiles_reference(CHI, y, sigma, model=model_name, correlation=r)
    plain = fit_profiles(CHI, y, sigma, model=model_name)
    ok = fast.status == FitStatus.OK
    assert ok.sum() >= 10
    assert_array_equal(fast.status, ref.status)
    # the same optimum (to the fits' tolerance) and the same covariance formula
    assert_allclose(fast.errors[ok], ref.errors[ok], rtol=2e-4)
    assert_array_equal(fast.params, plain.params)  # the fit itself does not change
    # correlations 0.60 and 0.17 at lags 1 and 2: errors of smooth features grow by up to
    # sqrt(1 + 2 (0.60 + 0.17)) = 1.6
    assert (fast.errors[ok] > 1.2 * plain.errors[ok]).all()
    with pytest.raises(InputError, match=r"correlation must have shape \(360, 360\)"):
        fit_profiles(CHI, y, sigma, correlation=np.eye(10))
    with pytest.raises(InputError, match="symmetric"):
        fit_profiles(CHI, y, sigma, correlation=np.triu(r))


def test_correlated_errors_are_calibrated_by_monte_carlo():
    """Gaussian noise correlated like a moving average over 3 bins: pulls of width 1."""
    rng = np.random.default_rng(8)
    n = 400
    weights = np.array([0.6, 1.0, 0.6])
    r, lags = _ma_correlation(CHI.size, weights)
    assert_allclose(lags, [1.0, 1.2 / 1.72, 0.36 / 1.72])
    truth_one = np.array([300.0 * np.exp(-6.0), 6.0, 25.0, 80.0, 0.0])
    truth = MAIER_SAUPE.func(CHI, np.tile(truth_one, (n, 1)))
    sigma = np.sqrt(truth)
    white = rng.standard_normal((n, CHI.size + 2))
    noise = sum(w * white[:, i : i + CHI.size] for i, w in enumerate(weights))
    noise /= np.sqrt(np.sum(weights**2))  # unit variance, correlations ``lags``
    y = truth + sigma * noise
    fits = {
        "correlated": fit_profiles(CHI, y, sigma, correlation=r),
        "independent": fit_profiles(CHI, y, sigma),
    }
    ratios = {}
    for name, res in fits.items():
        assert (res.status == FitStatus.OK).all()
        ratios[name] = np.std(res.params, axis=0)[[1, 2]] / np.median(res.errors, axis=0)[[1, 2]]
    # kappa and x0: 400 fits give the scatter to ~3.5 %
    assert ((ratios["correlated"] > 0.9) & (ratios["correlated"] < 1.1)).all(), ratios
    assert (ratios["independent"] > 1.3).all(), ratios  # ~ sqrt(1 + 2 (0.70 + 0.21)) = 1.7


def test_isotropy_tests_hold_their_level_with_correlated_bins():
    """Flat profiles with noise correlated between neighbouring bins (split pixels) are
    ISOTROPIC: consecutive differences see sigma^2 (1 - rho_1) and a smooth harmonic's
    chi^2 gain is inflated; without the correlation 42 % of these rows came out oriented
    (80 % of the kappa = 0 rings of a small detector with 1-degree bins)."""
    rng = np.random.default_rng(17)
    n = 400
    weights = np.array([0.6, 1.0, 0.6])
    r, _ = _ma_correlation(CHI.size, weights)
    white = rng.standard_normal((n, CHI.size + 2))
    noise = sum(w * white[:, i : i + CHI.size] for i, w in enumerate(weights))
    noise /= np.sqrt(np.sum(weights**2))
    sigma = np.full((n, CHI.size), 5.0)
    y = 100.0 + sigma * noise
    with_r = fit_profiles(CHI, y, sigma, correlation=r)
    without = fit_profiles(CHI, y, sigma)
    isotropic = (with_r.status == FitStatus.ISOTROPIC).mean()
    # the level is 1e-3 per test (two tests): at most a few of 400 by chance
    assert isotropic >= 0.98, isotropic
    assert (without.status == FitStatus.ISOTROPIC).mean() < 0.9  # the defect without R
    # and a real 2-fold anisotropy of 3 sigma per bin amplitude stays detected
    y_oriented = y + 15.0 * np.cos(np.radians(2 * (CHI - 40.0)))
    found = fit_profiles(CHI, y_oriented, sigma, correlation=r)
    assert (found.status != FitStatus.ISOTROPIC).all()
