"""A row's result does not depend on the rows computed with it (bit equality).

A live session computes blocks of one position, an offline run blocks of ~100: the results must
be the same bits. Every output of the profile fit (both models, with and without sigma, with a
correlation of the bins) and of the 2-D and 1-D integration with the "azimuthal" error model is
computed in one call and again in blocks of 1, 3 and 7 rows (frames), in order and shuffled,
and compared with ``assert_array_equal``.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from numpy.testing import assert_allclose, assert_array_equal

from pyscatter.kernels import integrate_sums
from pyscatter.kernels.fitting import FitResult, fit_profiles
from pyscatter.kernels.integrate import BatchIntegrator
from pyscatter.kernels.levenberg_marquardt import _solve_rows, covariance, normal_equations
from pyscatter.kernels.models import MODELS, get_model

CHI = np.arange(-178.0, 180.0, 4.0)  # 90 bins, pyFAI's convention
N_ROWS = 40
BLOCKS = (1, 3, 7)
FIELDS = ("params", "errors", "r2", "reduced_chi2", "status", "n_iter", "covariance")


def true_params(model: str, n: int, rng: np.random.Generator) -> np.ndarray:
    """Oriented rows of all strengths, a few isotropic ones (zero peak) and weak ones."""
    x0 = rng.uniform(-180.0, 180.0, n)
    if model == "maier_saupe":
        kappa = rng.uniform(0.5, 16.0, n)
        peak = rng.uniform(50.0, 800.0, n)
        params = np.stack(
            [peak * np.exp(-kappa), kappa, x0, rng.uniform(40, 80, n), rng.uniform(-0.02, 0.02, n)],
            axis=1,
        )
        params[:3, :2] = 0.0  # isotropic
        params[3:5, 0] = 0.5 * np.exp(-params[3:5, 1])  # weak
        return params
    params = np.stack(
        [
            rng.uniform(40, 80, n),
            rng.uniform(50, 800, n),
            x0,
            rng.uniform(8, 40, n),
            rng.uniform(0.0, 1.0, n),
            rng.uniform(-0.02, 0.02, n),
        ],
        axis=1,
    )
    params[:3, 1] = 0.0  # isotropic
    params[3:5, 1] = 2.0  # weak
    params[5, 4] = 1.0  # eta at its bound
    return params


def profiles(model: str, seed: int = 7) -> tuple[np.ndarray, np.ndarray]:
    """Noisy profiles of Poisson size with masked bins (a beamstop arm, a few holes)."""
    rng = np.random.default_rng(seed)
    truth = get_model(model).func(CHI, true_params(model, N_ROWS, rng))
    sigma = np.sqrt(truth)
    y = truth + sigma * rng.standard_normal(truth.shape)
    y[:, 5:8] = np.nan
    y[1::3, 60] = np.nan
    y[-1, :] = np.nan  # an empty row (TOO_FEW_POINTS)
    return y, np.where(np.isfinite(y), sigma, np.nan)


def neighbour_correlation(m: int, rho: float = 0.3) -> sp.csr_matrix:
    """Bins correlated with their chi-neighbours, as pixel splitting makes them."""
    return sp.diags([rho, 1.0, rho], [-1, 0, 1], shape=(m, m), format="csr")


def in_blocks(compute, n: int, size: int, shuffle: bool) -> list[tuple[np.ndarray, object]]:
    """``compute(rows)`` over blocks of ``size`` rows (shuffled: in a random order)."""
    order = np.random.default_rng(size).permutation(n) if shuffle else np.arange(n)
    return [(rows, compute(rows)) for rows in np.split(order, range(size, n, size))]


def assemble(parts, field: str, n: int) -> np.ndarray:
    first = getattr(parts[0][1], field)
    out = np.empty((n, *first.shape[1:]), dtype=first.dtype)
    for rows, res in parts:
        out[rows] = getattr(res, field)
    return out


def assert_fits_equal(whole: FitResult, parts, n: int) -> None:
    for field in FIELDS:
        assert_array_equal(assemble(parts, field, n), getattr(whole, field), err_msg=field)


CASES = {
    "sigma": {"absolute_sigma": True},
    "relative": {"absolute_sigma": False},
    "no_sigma": {},
    "correlated": {"absolute_sigma": True, "correlation": neighbour_correlation(CHI.size)},
}


@pytest.mark.parametrize("shuffle", [False, True], ids=["ordered", "shuffled"])
@pytest.mark.parametrize("size", BLOCKS)
@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("model", list(MODELS))
def test_fit_rows_independent_of_block(model, case, size, shuffle):
    y, sigma = profiles(model)
    options = dict(CASES[case], model=model)
    s = None if case == "no_sigma" else sigma
    whole = fit_profiles(CHI, y, s, **options)
    statuses = set(whole.status.tolist())
    assert {0, 1, 4} <= statuses  # OK, ISOTROPIC and TOO_FEW_POINTS rows are all there

    def compute(rows):
        return fit_profiles(CHI, y[rows], None if s is None else s[rows], **options)

    assert_fits_equal(whole, in_blocks(compute, N_ROWS, size, shuffle), N_ROWS)


@pytest.mark.parametrize("model", list(MODELS))
def test_fit_row_alone_equals_any_block_and_start(model):
    """With given starting parameters (no estimate), every row alone equals the whole call."""
    y, sigma = profiles(model, seed=11)
    mdl = get_model(model)
    p0 = mdl.estimate(CHI, y)
    whole = fit_profiles(CHI, y, sigma, model=model, p0=p0)
    parts = [
        (np.array([i]), fit_profiles(CHI, y[i : i + 1], sigma[i : i + 1], model=model, p0=p0[i]))
        for i in range(N_ROWS)
    ]
    assert_fits_equal(whole, parts, N_ROWS)


@pytest.mark.parametrize("model", list(MODELS))
def test_estimate_and_normal_equations_rows_independent(model):
    """The pieces: the model's estimate, ``J^T W J``, ``J^T W r`` and the covariance."""
    y, sigma = profiles(model)
    mdl = get_model(model)
    start = mdl.estimate(CHI, y)
    ok = np.isfinite(start).all(axis=1)
    y, sigma, start = y[ok], sigma[ok], start[ok]
    w = np.where(np.isfinite(sigma), 1.0 / sigma**2, 0.0)
    resid = np.where(w > 0, y - mdl.func(CHI, start), 0.0)
    jac = mdl.jacobian(CHI, start)
    whole = (*normal_equations(jac, w, resid), covariance(jac, w, w[:, 0], w[:, 0] + 1, False))
    n = len(y)
    for size in BLOCKS:
        for rows in np.split(np.random.default_rng(size).permutation(n), range(size, n, size)):
            assert_array_equal(mdl.estimate(CHI, y[rows]), start[rows])
            part = (
                *normal_equations(mdl.jacobian(CHI, start[rows]), w[rows], resid[rows]),
                covariance(jac[rows], w[rows], w[rows, 0], w[rows, 0] + 1, False),
            )
            for a, b in zip(part, whole, strict=True):
                assert_array_equal(a, b[rows])


def test_exactly_singular_step_only_for_its_row():
    """A singular system takes the pseudo-inverse alone; the others are solved as always."""
    rng = np.random.default_rng(3)
    x = rng.standard_normal((6, 5, 9))
    systems = np.einsum("nim,njm->nij", x, x)
    systems[2, :, 4] = systems[2, 4, :] = 0.0  # a parameter without any effect
    rhs = rng.standard_normal((6, 5, 1))
    with pytest.raises(np.linalg.LinAlgError):
        np.linalg.solve(systems, rhs)
    sol = _solve_rows(systems, rhs)
    ok = np.arange(6) != 2
    assert_array_equal(sol[ok], np.linalg.solve(systems[ok], rhs[ok]))
    assert_array_equal(sol[2], _solve_rows(systems[2:3], rhs[2:3])[0])
    assert_allclose(sol[2], np.linalg.pinv(systems[2], hermitian=True) @ rhs[2], rtol=1e-12)
    assert abs(sol[2, 4, 0]) < 1e-12 * np.abs(sol[2]).max()  # no step for the idle parameter


# ---------------------------------------------------------------------------------- integration
SHAPE = (300, 330)  # ~100k pixels: several row chunks of the azimuthal pass
N_FRAMES = 10
DIMS = {"2d": {"npt": 60, "npt_azim": 36}, "1d": {"npt": 120}}


@pytest.fixture(scope="module")
def ai():
    from pyFAI.detectors import Detector
    from pyFAI.integrator.azimuthal import AzimuthalIntegrator

    detector = Detector(172e-6, 172e-6, max_shape=SHAPE)
    return AzimuthalIntegrator(
        dist=0.1, poni1=0.012, poni2=0.016, detector=detector, wavelength=1e-10
    )


@pytest.fixture(scope="module")
def frames(ai):
    """Poisson frames on a ring; dead pixels (dummy -1) in some frames only."""
    rng = np.random.default_rng(99)
    q = ai.qArray(SHAPE)
    expected = 50 + 400 * np.exp(-0.5 * ((q - 9.0) / 0.3) ** 2)
    out = rng.poisson(expected, size=(N_FRAMES, *SHAPE)).astype(np.int32)
    out[0][rng.random(SHAPE) < 0.01] = -1
    out[4, 120, :] = -1
    return out


@pytest.mark.parametrize("shuffle", [False, True], ids=["ordered", "shuffled"])
@pytest.mark.parametrize("size", BLOCKS)
@pytest.mark.parametrize("split", ["bbox", "no"])
@pytest.mark.parametrize("dim", list(DIMS))
def test_azimuthal_error_frames_independent_of_block(ai, frames, dim, split, size, shuffle):
    mask = np.zeros(SHAPE, dtype=bool)
    mask[:, 150:153] = True  # a module gap
    options = dict(
        DIMS[dim],
        method=(split, "csr", "cython"),
        error_model="azimuthal",
        polarization_factor=0.99,
        mask=mask,
        dummy=-1,
    )
    bi = BatchIntegrator.from_pyfai(ai, SHAPE, **options)
    whole = bi.integrate(frames)
    assert np.isfinite(whole.sigma).all() and (whole.sigma > 0).mean() > 0.5
    parts = in_blocks(lambda rows: bi.integrate(frames[rows]), N_FRAMES, size, shuffle)
    for field in ("intensity", "sigma"):
        assert_array_equal(assemble(parts, field, N_FRAMES), getattr(whole, field), err_msg=field)


def pixel_splitting_matrix(n_bins: int, n_pix: int, rng: np.random.Generator):
    """A CSR integration matrix: each pixel split over 1-3 consecutive bins, coefficients
    summing to 1, rows of uneven lengths, some rows empty; and its CSC twin."""
    spread = rng.integers(1, 4, n_pix)
    first = np.minimum(rng.integers(0, n_bins - 20, n_pix), n_bins - 20 - spread)
    first[first > n_bins // 2] += 10  # ten empty bins in the middle
    pixels = np.repeat(np.arange(n_pix), spread)
    offset = np.arange(pixels.size) - np.repeat(np.cumsum(spread) - spread, spread)
    coef = rng.uniform(0.1, 1.0, pixels.size)
    coef /= np.bincount(pixels, coef)[pixels]
    csr = sp.csr_matrix((coef, (first[pixels] + offset, pixels)), shape=(n_bins, n_pix))
    return csr, csr.tocsc()


@pytest.mark.parametrize("size", BLOCKS)
@pytest.mark.parametrize("with_bad", [False, True], ids=["all_valid", "bad_pixels"])
def test_azimuthal_sums_float64_frames_independent(size, with_bad):
    """The float64 sums of the kernel itself (the float32 results hide most last bits)."""
    rng = np.random.default_rng(5)
    n_pix, nf = 60_000, 20
    csr, csc = pixel_splitting_matrix(400, n_pix, rng)
    assert csr.nnz > 100_000  # several row chunks (2**15 entries each)
    norm = rng.uniform(0.5, 1.5, n_pix)  # (masked pixels are not in the matrix)
    block = rng.poisson(100.0, (n_pix, nf)).astype(np.float32)
    bad_pix = np.flatnonzero(rng.random(n_pix) < 0.001)
    bad_mask = rng.random((bad_pix.size, nf)) < 0.3
    block[bad_pix[:, None], np.arange(nf)] *= ~bad_mask

    def sums(cols):
        masks = bad_mask[:, cols]
        keep = masks.any(axis=1)
        bad = (bad_pix[keep], masks[keep]) if with_bad and keep.any() else None
        with np.errstate(divide="ignore", invalid="ignore"):  # as BatchIntegrator calls it
            return integrate_sums.azimuthal_sums(
                csr, csc, norm, np.ascontiguousarray(block[:, cols]), bad
            )

    whole = sums(np.arange(nf))
    assert (whole[2] > 0).mean() > 0.9
    order = np.random.default_rng(size).permutation(nf)
    for cols in np.split(order, range(size, nf, size)):
        for part, full in zip(sums(cols), whole, strict=True):
            assert_array_equal(np.broadcast_to(part, (part.shape[0], cols.size)), full[:, cols])


def test_azimuthal_sums_independent_of_temporary_size(ai, frames, monkeypatch):
    """The size of the temporaries (AZIMUTHAL_ELEMENTS) changes no bit either."""
    bi = BatchIntegrator.from_pyfai(ai, SHAPE, **DIMS["2d"], error_model="azimuthal", dummy=-1)
    whole = bi.integrate(frames)
    for elements in (3000, 1 << 16, 1 << 22):
        monkeypatch.setattr(integrate_sums, "AZIMUTHAL_ELEMENTS", elements)
        res = bi.integrate(frames)
        assert_array_equal(res.intensity, whole.intensity)
        assert_array_equal(res.sigma, whole.sigma)
