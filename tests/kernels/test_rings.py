"""The ring and sector kernels against pyFAI's integrate2d_ng / integrate1d_ng called directly."""

from __future__ import annotations

import numpy as np
import pytest

from pyscatter import datasets
from pyscatter.kernels.rings import (
    RingProfiles,
    chi_correlation,
    combine_sub_bins,
    coverage_counts,
    expected_normalization,
    guarded_matrix,
    ring_matrix,
    shared_pixel_matrices,
    stacked_integrator,
)
from pyscatter.kernels.sectors import (
    default_radial_range,
    sector_centers,
    sector_integrator,
    sector_ranges,
)

UNIT = "q_nm^-1"
BBOX = ("bbox", "csr", "cython")
NO_SPLIT = ("no", "csr", "cython")


@pytest.fixture(scope="module")
def scan():
    return datasets.make_scan((1,), frame_shape=(96, 112), rng=5)


def _corrections(scan, **kw):
    params = {
        "dummy": None,
        "delta_dummy": None,
        "correct_solid_angle": True,
        "polarization_factor": scan.polarization_factor,
        "error_model": "poisson",
    }
    return {**params, **kw}


def _pyfai_2d(scan, frame, npt, npt_azim, radial_range, method):
    """pyFAI's own 2-D integration of ``frame``, on a fresh integrator."""
    return scan.integrator().integrate2d_ng(
        frame,
        npt,
        npt_azim,
        unit=UNIT,
        method=method,
        mask=scan.mask,
        radial_range=radial_range,
        azimuth_range=(-180.0, 180.0),
        correctSolidAngle=True,
        polarization_factor=scan.polarization_factor,
        error_model="poisson",
    )


def _ring_params(scan, rings, npt_azim, method, **kw):
    return {
        "frame_shape": list(scan.frame_shape),
        "method": list(method),
        "rings": [{"q": q, "q_min": lo, "q_max": hi} for q, lo, hi in rings],
        "npt_azim": npt_azim,
        "unit": UNIT,
        **_corrections(scan),
        **kw,
    }


@pytest.mark.parametrize("method", [BBOX, NO_SPLIT])
def test_guarded_matrix_is_pyfai_without_its_guard_bins(scan, method):
    """npt bins over [lo, hi] = the inner npt of pyFAI's npt + 2 bins one bin wider each side."""
    frame = scan.frames[0]
    lo, hi, npt, npt_azim = 0.4, 0.6, 3, 36
    step = (hi - lo) / npt
    matrix, radial, chi, unit = guarded_matrix(
        scan.integrator(),
        scan.frame_shape,
        npt=npt,
        npt_azim=npt_azim,
        unit=UNIT,
        method=method,
        mask=scan.mask,
        radial_range=(lo, hi),
        azimuth_range=(-180.0, 180.0),
    )
    assert matrix.shape == (npt * npt_azim, frame.size)
    integrator = stacked_integrator(
        scan.integrator(),
        scan.frame_shape,
        matrix,
        radial=radial,
        azimuthal=chi,
        unit=unit,
        mask=scan.mask,
        params=_corrections(scan),
        dim=2,
    )
    got = integrator.integrate(frame[None])
    ref = _pyfai_2d(scan, frame, npt + 2, npt_azim, (lo - step, hi + step), method)
    np.testing.assert_allclose(radial, ref.radial[1:-1])
    np.testing.assert_allclose(chi, ref.azimuthal)
    filled = ref.sum_normalization[:, 1:-1] > 0
    assert filled.sum() > 0.8 * filled.size
    # float32 sums in the batched kernel vs pyFAI's float64: 1e-5 relative; empty bins NaN
    for name in ("intensity", "sigma"):
        mine, theirs = getattr(got, name)[0], getattr(ref, name)[:, 1:-1]
        np.testing.assert_allclose(mine[filled], theirs[filled], rtol=1e-5)
        assert np.isnan(mine[~filled]).all()


def test_ring_profiles_are_the_mean_of_pyfai_sub_bins(scan):
    """Without pixel splitting sub-bins share no pixel: I = mean of pyFAI's sub-bins and
    sigma = sqrt(Σ sigma_k²) / n where every sub-bin has pixels (min_coverage 0)."""
    frame = scan.frames[0]
    lo, hi, n_radial, npt_azim = 0.7, 0.9, 2, 180
    params = _ring_params(
        scan, [(0.8, lo, hi)], npt_azim, NO_SPLIT, n_radial=n_radial, min_coverage=0.0
    )
    rings = RingProfiles(scan.integrator(), params, scan.mask)
    assert rings.n_bins == n_radial * npt_azim  # no shared-pixel rows
    got = rings.integrate(frame[None])
    step = (hi - lo) / n_radial
    ref = _pyfai_2d(scan, frame, n_radial + 2, npt_azim, (lo - step, hi + step), NO_SPLIT)
    sub_n = ref.sum_normalization[:, 1:-1]
    complete = (sub_n > 0).all(axis=1)
    assert complete.sum() > 0.5 * npt_azim
    mean = ref.intensity[:, 1:-1].mean(axis=1)
    sigma = np.sqrt((ref.sigma[:, 1:-1] ** 2).sum(axis=1)) / n_radial
    np.testing.assert_allclose(got.intensity[0, complete, 0], mean[complete], rtol=1e-5)
    np.testing.assert_allclose(got.sigma[0, complete, 0], sigma[complete], rtol=1e-5)
    assert np.isnan(got.intensity[0, ~complete, 0]).all()
    np.testing.assert_array_equal(rings.radial, [0.8])
    np.testing.assert_allclose(rings.sub_radial[0], ref.radial[1:-1])


def test_chi_correlation_and_shared_pixels(scan):
    """Without splitting no pixel is shared: identity correlation, no shared-pixel matrix.
    With bbox splitting: symmetric, unit diagonal, neighbouring chi bins correlated."""
    rings = [(0.45, 0.4, 0.5), (0.8, 0.75, 0.85)]
    for method, shared in ((NO_SPLIT, False), (BBOX, True)):
        params = _ring_params(scan, rings, 90, method, n_radial=2)
        matrix, sub_radial, chi, _ = ring_matrix(scan.integrator(), params, scan.mask)
        cube = (len(rings), sub_radial.shape[1], chi.size)
        assert bool(shared_pixel_matrices(matrix, *cube)) is shared
        for corr in chi_correlation(matrix, *cube):
            dense = corr.toarray()
            np.testing.assert_allclose(dense, dense.T, atol=1e-12)
            diag = np.diag(dense)
            assert set(np.round(diag, 12)) <= {0.0, 1.0} and diag.sum() > 0
            off = dense - np.diag(diag)
            assert (off >= 0).all() and (off <= 1 + 1e-12).all()
            assert bool(off.max() > 0.05) is shared


def test_combine_sub_bins_by_its_formula():
    """I = (1/n) Σ I_k, sigma² = (Σ sigma_k² + 2 C_12 / (N_1 N_2)) / n², NaN where uncovered."""
    intensity = np.array([[[[1.0, 2.0, 3.0], [3.0, 4.0, np.nan]]]])  # (1, 1 ring, 2, 3 chi)
    sigma = np.full_like(intensity, 0.5)
    norm = np.array([[[[10.0, 10.0, 10.0], [10.0, 2.0, 0.0]]]])
    expected = np.array([[10.0, 10.0]])
    covariance = np.full((1, 1, 1, 3), 5.0)
    out_i, out_s = combine_sub_bins(intensity, sigma, norm, expected, 0.5, [covariance])
    np.testing.assert_allclose(out_i[0, 0], [2.0, np.nan, np.nan])
    var = (0.25 + 0.25 + 2 * 5.0 / (10.0 * 10.0)) / 4
    np.testing.assert_allclose(out_s[0, 0], [np.sqrt(var), np.nan, np.nan], rtol=1e-6)
    # min_coverage 0: the second chi bin counts (its sub-bins hold pixels), the third not
    out_i, _ = combine_sub_bins(intensity, None, norm, expected, 0.0)
    np.testing.assert_allclose(out_i[0, 0], [2.0, 3.0, np.nan])


def test_expected_normalization_and_coverage_counts():
    static = np.array([[[4.0, 0.0, 2.0, 6.0], [1.0, 0.0, 0.0, 5.0]]])  # (1 ring, 2, 4 chi)
    expected = expected_normalization(static)
    np.testing.assert_allclose(expected, [[4.0, 3.0]])  # medians over the chi bins reached
    complete, reached = coverage_counts(static, expected, 0.5)
    np.testing.assert_array_equal(complete, [1])  # chi 3 only (chi 0: 1 < 0.5 · 3)
    np.testing.assert_array_equal(reached, [3])


def test_sectors_are_pyfai_1d_with_azimuth_ranges(scan):
    """Each sector inside (-180, 180) is pyFAI's integrate1d_ng with its azimuth range, over
    the default radial range (pyFAI's own bins of the whole detector)."""
    frame = scan.frames[0]
    npt = 60
    ai = scan.integrator()
    radial_range = default_radial_range(ai, scan.frame_shape, unit=UNIT, method=BBOX, mask=None)
    centres = sector_centers(4, 0.0)
    np.testing.assert_allclose(centres, [-180.0, -90.0, 0.0, 90.0])
    sectors = [{"center": float(c), "ranges": sector_ranges(float(c), 90.0)} for c in centres]
    assert len(sectors[0]["ranges"]) == 2  # the sector at -180° crosses ±180°
    params = {
        "frame_shape": list(scan.frame_shape),
        "method": list(BBOX),
        "npt": npt,
        "unit": UNIT,
        "radial_range": list(radial_range),
        "guard_bins": False,
        "sectors": sectors,
        **_corrections(scan),
    }
    got = sector_integrator(ai, params, scan.mask).integrate(frame[None])
    assert got.intensity.shape == (1, len(sectors), npt)
    np.testing.assert_allclose(got.azimuthal, centres)
    full = scan.integrator().integrate1d_ng(frame, npt, unit=UNIT, method=BBOX)
    np.testing.assert_allclose(got.radial, full.radial)  # the whole detector's bins
    for k, sector in enumerate(sectors[1:], start=1):
        ref = scan.integrator().integrate1d_ng(
            frame,
            npt,
            unit=UNIT,
            method=BBOX,
            mask=scan.mask,
            radial_range=radial_range,
            azimuth_range=tuple(sector["ranges"][0]),
            correctSolidAngle=True,
            polarization_factor=scan.polarization_factor,
            error_model="poisson",
        )
        filled = ref.sum_normalization > 0
        np.testing.assert_allclose(got.intensity[0, k][filled], ref.intensity[filled], rtol=1e-5)
        np.testing.assert_allclose(got.sigma[0, k][filled], ref.sigma[filled], rtol=1e-5)
        assert np.isnan(got.intensity[0, k][~filled]).all()
