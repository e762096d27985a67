"""AzimuthalProfiles against pyFAI's integrate2d_ng per radial sub-bin, and the ground truth."""

from __future__ import annotations

import json
import shutil

import h5py
import numpy as np
import pytest
import scipy.sparse as sp
from conftest import write_scan
from scipy import special

import pyscatter
from pyscatter import datasets
from pyscatter.datasets import Ring
from pyscatter.errors import InputError
from pyscatter.kernels.integrate import BatchIntegrator
from pyscatter.processes.base import run_on_file
from pyscatter.processes.execution import build
from pyscatter.processes.profiles import AzimuthalProfiles

RAW = "Measurement_000/Channel_000/Raw_Data"


@pytest.fixture(scope="module")
def scan():
    return datasets.oriented_map((2, 3), rng=7, frame_shape=(96, 112))


@pytest.fixture(scope="module")
def base_file(tmp_path_factory, scan):
    return write_scan(tmp_path_factory.mktemp("profiles") / "scan.h5", scan)


@pytest.fixture()
def scan_file(tmp_path, base_file):
    return shutil.copy(base_file, tmp_path / "scan.h5")


def _pyfai_ring(scan, frame, q_min, q_max, npt_azim, mask=None, npt=3, ai=None, **kw):
    """pyFAI's integrate2d_ng of the ring [q_min, q_max] as the middle of 3 radial bins.

    The middle bin of 3 over [q_min − W, q_max + W] (W = q_max − q_min) is the ring itself;
    a single bin over [q_min, q_max] would also take pixels from below (see
    test_pyfai_single_bin_takes_pixels_below_its_range). Returns (result, column of the ring).
    """
    ai = scan.integrator() if ai is None else ai  # one per ring: pyFAI caches its matrix
    ai.empty = np.nan  # pyFAI's value for empty bins; the profiles use NaN
    wide = q_max - q_min
    res = ai.integrate2d_ng(
        frame,
        npt,
        npt_azim,
        unit="q_nm^-1",
        mask=scan.mask if mask is None else mask,
        radial_range=(q_min - wide, q_max + wide) if npt == 3 else (q_min, q_max),
        azimuth_range=(-180, 180),
        error_model=kw.pop("error_model", "poisson"),
        method=kw.pop("method", ("bbox", "csr", "cython")),
        **kw,
    )
    return res, (1 if npt == 3 else 0)


def _pyfai_sub_bins(
    scan, frame, q_min, q_max, n_radial, npt_azim, *, min_coverage=0.5, ais=None, **kw
):
    """The sub-bin profile of [q_min, q_max] from pyFAI alone, by its definition.

    Each of the ``n_radial`` sub-bins is pyFAI's integrate2d_ng (:func:`_pyfai_ring`); the
    profile is the mean of their intensities where every sub-bin's sum_normalization is at
    least ``min_coverage`` of its median over the chi bins it reaches (these frames have no
    dummies: that is the static normalization). Poisson sigma: the profile is linear in the
    pixels, I = Σ_p a_p raw_p with a_p = Σ_k c_kp / (n N_k) from pyFAI's own sub-bin matrices
    c_k, so sigma² = Σ_p a_p² max(raw_p, 1); other models: sqrt(Σ sigma_k²) / n. Returns
    (intensity, sigma, sub-bin intensities (n, n_chi), sub-bin normalizations, the naive
    sqrt(Σ sigma_k²) / n).
    """
    from pyFAI.method_registry import IntegrationMethod

    edges = np.linspace(q_min, q_max, n_radial + 1)
    split = kw.get("method", ("bbox", "csr", "cython"))[0]
    key = IntegrationMethod.select_method(2, split, "csr", "cython")[0]
    sub_i, sub_s, sub_n, matrices = [], [], [], []
    for k in range(n_radial):
        ai = scan.integrator() if ais is None else ais[k]
        ref, col = _pyfai_ring(scan, frame, edges[k], edges[k + 1], npt_azim, ai=ai, **kw)
        sub_i.append(ref.intensity[:, col])
        sub_s.append(ref.sigma[:, col])
        sub_n.append(ref.sum_normalization[:, col])
        engine = ai.engines[key].engine  # rows i_q * npt_azim + i_chi; the ring is i_q = 1
        matrix = sp.csr_matrix(
            (engine.data, engine.indices, engine.indptr), shape=(engine.output_size, frame.size)
        )
        matrices.append(matrix[npt_azim : 2 * npt_azim])
    sub_i, sub_s, sub_n = np.array(sub_i), np.array(sub_s), np.array(sub_n)
    expected = np.array([np.median(n[n > 0]) for n in sub_n])
    complete = (np.isfinite(sub_i) & (sub_n >= min_coverage * expected[:, None])).all(axis=0)
    intensity = np.where(complete, sub_i.mean(axis=0), np.nan)
    naive = np.where(complete, np.sqrt((sub_s**2).sum(axis=0)) / n_radial, np.nan)
    if kw.get("error_model", "poisson") != "poisson":
        return intensity, naive, sub_i, sub_n, naive
    with np.errstate(divide="ignore"):
        inverse = np.where(sub_n > 0, 1 / (n_radial * sub_n), 0.0)
    weights = sum(sp.diags(inverse[k]) @ matrices[k].astype(np.float64) for k in range(n_radial))
    variance = np.maximum(np.asarray(frame, dtype=np.float64).ravel(), 1)
    sigma = np.sqrt(weights.multiply(weights) @ variance)
    return intensity, np.where(complete, sigma, np.nan), sub_i, sub_n, naive


def _params(scan, rings, npt_azim, **kw):
    """Hand-made AzimuthalProfiles parameters for ring_integrator; rings as (q, q_min, q_max)."""
    params = {
        "frame_shape": list(scan.frame_shape),
        "method": ["bbox", "csr", "cython"],
        "rings": [{"q": q, "q_min": lo, "q_max": hi} for q, lo, hi in rings],
        "npt_azim": npt_azim,
        "unit": "q_nm^-1",
        "dummy": None,
        "delta_dummy": None,
        "correct_solid_angle": True,
        "polarization_factor": scan.polarization_factor,
        "error_model": "poisson",
        "n_radial": 8,
        "min_coverage": 0.5,
    }
    params.update(kw)
    return params


def test_profiles_equal_pyfai_per_position(scan_file, scan):
    summary = run_on_file(
        scan_file,
        AzimuthalProfiles,
        q=[0.45, 0.8],
        half_width=[0.06, 0.05],
        npt_azim=90,
        n_radial=3,
        polarization_factor=0.99,
        progress=False,
    )
    with h5py.File(scan_file, "r") as h5:
        params = json.loads(h5[summary.group].attrs["parameters"])
    assert params["n_radial"] == 3 and params["min_coverage"] == 0.5  # recorded
    ds = pyscatter.to_xarray(scan_file, "AzimuthalProfiles")
    assert ds["Intensity"].dims == ("Y", "X", "ring", "chi")
    assert ds["ring"].attrs["units"] == "1/nm" and ds["chi"].attrs["units"] == "deg"
    np.testing.assert_array_equal(ds["ring"].values, [0.45, 0.8])
    frames = scan.frames.reshape(-1, *scan.frame_shape)
    intensity = ds["Intensity"].values.reshape(len(frames), 2, 90)
    sigma = ds["Intensity_Sigma"].values.reshape(len(frames), 2, 90)
    n_empty = n_partial = 0
    rings = [(0.45, 0.06), (0.8, 0.05)]
    integrators = [[scan.integrator() for _ in range(3)] for _ in rings]
    for i in range(len(frames)):
        for k, (q, w) in enumerate(rings):
            ref_i, ref_s, sub_i, _, _ = _pyfai_sub_bins(
                scan, frames[i], q - w, q + w, 3, 90, ais=integrators[k], polarization_factor=0.99
            )
            nan = np.isnan(ref_i)
            n_empty += np.isnan(sub_i).all(axis=0).sum()
            n_partial += (nan & np.isfinite(sub_i).all(axis=0)).sum()
            # chi bins not covered in every sub-bin are NaN, never 0
            np.testing.assert_array_equal(np.isnan(intensity[i, k]), nan)
            np.testing.assert_array_equal(np.isnan(sigma[i, k]), nan)
            # float32 sums in the batched kernel vs pyFAI's float64: 1e-5 relative
            np.testing.assert_allclose(intensity[i, k][~nan], ref_i[~nan], rtol=1e-5)
            np.testing.assert_allclose(sigma[i, k][~nan], ref_s[~nan], rtol=1e-5)
    # the beamstop arm empties chi bins of both rings; the arm's edges and the module gap
    # leave partly covered bins that the coverage test makes NaN
    assert n_empty > 0 and n_partial > 0


def test_complete_frame_sub_bins_equal_pyfai_and_the_single_bin():
    """Without a mask, inside the frame: the sub-bin profile is pyFAI's sub-bins averaged and
    differs from the single bin (n_radial=1, pyFAI's ring bin) only by its weighting of q."""
    from pyscatter.processes.profiles_worker import ring_integrator

    scan = datasets.make_scan(
        (1,), kappa=0.0, director_deg=0.0, frame_shape=(96, 112), keep_ideal=True, rng=5
    )
    frame = scan.ideal[0]  # noise-free, every pixel valid
    unmasked = np.zeros(scan.frame_shape, bool)
    rings = [(0.45, 0.39, 0.51), (0.8, 0.75, 0.85)]  # inside the frame at every chi
    ai = scan.integrator()
    sub = ring_integrator(ai, _params(scan, rings, 60, n_radial=4), None)
    single = ring_integrator(ai, _params(scan, rings, 60, n_radial=1, min_coverage=0.0), None)
    new, old = sub.integrate(frame[None]), single.integrate(frame[None])
    for k, (_, lo, hi) in enumerate(rings):
        ref_i, ref_s, sub_i, sub_n, naive = _pyfai_sub_bins(
            scan, frame, lo, hi, 4, 60, mask=unmasked, polarization_factor=0.99
        )
        assert np.isfinite(ref_i).all()  # complete: no chi bin is NaN
        # float32 sums in the batched kernel vs pyFAI's float64: 1e-5 relative
        np.testing.assert_allclose(new.intensity[0, :, k], ref_i, rtol=1e-5)
        np.testing.assert_allclose(new.sigma[0, :, k], ref_s, rtol=1e-5)
        # bbox splitting shares pixels between neighbouring sub-bins: sqrt(Σ sigma_k²) / n,
        # which takes them as independent, would be too small (the median ratio is 1.33 and
        # 1.36 here, sub-bins of 0.03 and 0.025 1/nm for pixels of 0.031 1/nm)
        assert np.median(ref_s / naive) > 1.2
        # the single bin is the union of the sub-bins: Σ_k N_k I_k / Σ_k N_k (pixel weights)
        weighted = (sub_n * sub_i).sum(axis=0) / sub_n.sum(axis=0)
        np.testing.assert_allclose(old.intensity[0, :, k], weighted, rtol=1e-5)
        # so they differ by the weighting of q: the single bin weights q by the pixel density
        # (∝ q), the sub-bins uniformly; for this isotropic frame the expected ratio is that of
        # the true I(q) averaged both ways (0.07 % and 0.02 %). Each chi bin also samples its
        # few pixels differently (measured up to 1.3 %): the median over chi is within 0.2 %.
        grid = np.linspace(lo, hi, 20001)
        profile = scan.true_profile(grid)
        expected = profile.mean() / ((profile * grid).sum() / grid.sum()) - 1
        ratio = new.intensity[0, :, k] / old.intensity[0, :, k] - 1
        assert abs(np.median(ratio) - expected) < 2e-3
        assert np.abs(ratio).max() < 0.03


def test_partly_covered_chi_bins_are_nan_not_biased():
    """The issue: a module gap or the frame edge covering part of a ring's window biases the
    single bin's mean by the ring's radial gradient; the sub-bins are NaN or unbiased there."""
    from pyscatter.processes.profiles_worker import ring_integrator

    scan = datasets.make_scan((1,), kappa=0.0, director_deg=0.0, keep_ideal=True, rng=5)
    # the gap crosses the 0.8 ring's window obliquely; the 1.2 ring runs off the frame
    rings = [(r.q_nm, r.q_nm - 2 * r.width_nm, r.q_nm + 2 * r.width_nm) for r in scan.rings[1:]]
    ai = scan.integrator()
    frame = scan.ideal[0][None]  # noise-free and isotropic: every profile is flat
    new = ring_integrator(ai, _params(scan, rings, 180), scan.mask).integrate(frame)
    old = ring_integrator(
        ai, _params(scan, rings, 180, n_radial=1, min_coverage=0.0), scan.mask
    ).integrate(frame)
    for k in range(len(rings)):
        flat = np.nanmedian(new.intensity[0, :, k])
        deviation = np.abs(new.intensity[0, :, k] / flat - 1)
        old_deviation = np.abs(old.intensity[0, :, k] / flat - 1)
        # the single bin: bumps of 14 % (gap, ring 0.8) and 33 % (frame edge, ring 1.2)
        assert np.nanmax(old_deviation) > 0.1
        # the sub-bins: flat to the pixel sampling of 2-degree bins (measured 0.8 %), with
        # about 13 % of the chi bins NaN (beamstop arm, gap, frame edge)
        assert np.nanmax(deviation) < 0.012
        assert np.isnan(deviation).sum() <= 27


def test_kernel_sums_are_pyfai_sums(scan):
    """I = Σsignal/Σnorm and σ = sqrt(Σvariance)/Σnorm per chi bin, from pyFAI's own sums."""
    frame = scan.frames[1, 2]
    ref, col = _pyfai_ring(scan, frame, 0.39, 0.51, 60)
    norm = ref.sum_normalization[:, col]
    ok = norm > 0
    np.testing.assert_allclose(
        ref.intensity[ok, col], ref.sum_signal[ok, col] / norm[ok], rtol=1e-6
    )
    np.testing.assert_allclose(
        ref.sigma[ok, col], np.sqrt(ref.sum_variance[ok, col]) / norm[ok], rtol=1e-6
    )
    bi = BatchIntegrator.from_pyfai(
        scan.integrator(),
        scan.frame_shape,
        npt=3,
        npt_azim=60,
        mask=scan.mask,
        radial_range=(0.27, 0.63),
        azimuth_range=(-180, 180),
        error_model="poisson",
    )
    res = bi.integrate(frame[None])
    np.testing.assert_allclose(res.intensity[0, ok, col], ref.intensity[ok, col], rtol=1e-5)
    np.testing.assert_allclose(res.sigma[0, ok, col], ref.sigma[ok, col], rtol=1e-5)


def test_azimuthal_error_model_equals_pyfai(scan):
    from pyscatter.processes.profiles_worker import ring_integrator

    frame = scan.frames[0, 1]
    kw = dict(error_model="azimuthal", polarization_factor=None)
    for n_radial in (1, 3):
        params = _params(scan, [(0.45, 0.39, 0.51)], 60, n_radial=n_radial, **kw)
        res = ring_integrator(scan.integrator(), params, scan.mask).integrate(frame[None])
        ref_i, ref_s, _, _, _ = _pyfai_sub_bins(scan, frame, 0.39, 0.51, n_radial, 60, **kw)
        ok = np.isfinite(ref_i)
        np.testing.assert_array_equal(np.isfinite(res.intensity[0, :, 0]), ok)
        # the azimuthal model sums in float64 like pyFAI's recurrence: float32 rounding only
        np.testing.assert_allclose(res.intensity[0, ok, 0], ref_i[ok], rtol=1e-6)
        np.testing.assert_allclose(res.sigma[0, ok, 0], ref_s[ok], rtol=1e-6)


def test_pyfai_single_bin_takes_pixels_below_its_range(scan):
    """Why the rings use guard bins: pyFAI 2026.9's CSR with one bin over [lo, hi] also takes
    the pixels of [lo − (hi − lo), lo). If this test fails, pyFAI changed (then the guard
    bins of profiles_worker are no longer needed, and still harmless)."""
    ai = scan.integrator()
    q = ai.center_array(scan.frame_shape, unit="q_nm^-1")
    ones = np.ones(scan.frame_shape, np.float32)
    kw = dict(
        unit="q_nm^-1", mask=scan.mask, method=("no", "csr", "cython"), correctSolidAngle=False
    )
    one_bin = ai.integrate1d_ng(ones, 1, radial_range=(0.40, 0.50), **kw).count.sum()
    valid = ~scan.mask
    inside = np.count_nonzero(valid & (q >= 0.40) & (q < 0.50))
    below = np.count_nonzero(valid & (q >= 0.30) & (q < 0.40))
    assert one_bin == inside + below
    # the guarded ring of the profiles has exactly the pixels whose centre is inside
    from pyscatter.processes.profiles_worker import ring_integrator, ring_matrix

    params = _params(
        scan,
        [(0.45, 0.40, 0.50)],
        1,
        method=["no", "csr", "cython"],
        correct_solid_angle=False,
        polarization_factor=None,
        n_radial=1,
        min_coverage=0.0,
    )
    integrator = ring_integrator(ai, params, scan.mask)
    frame = np.where(valid, 1, 0).astype(np.float32)
    # sigma = sqrt(Σ 1) / Σ 1 for counts of 1 (max(raw, 1) = 1): 1/sqrt(number of pixels)
    sigma = integrator.integrate(frame[None]).sigma[0, 0, 0]
    assert round(1 / float(sigma) ** 2) == inside
    # and so has each radial sub-bin, the first one too
    matrix, centres, _, _ = ring_matrix(ai, dict(params, n_radial=4), scan.mask)
    edges = np.linspace(0.40, 0.50, 5)
    # pyFAI computes its bin centres in float32
    np.testing.assert_allclose(centres[0], 0.5 * (edges[1:] + edges[:-1]), rtol=1e-6)
    for k in range(4):
        pixels = np.flatnonzero((valid & (q >= edges[k]) & (q < edges[k + 1])).ravel())
        np.testing.assert_array_equal(np.sort(matrix[k].indices), pixels)


def test_stacked_rings_equal_one_integrator_per_ring(scan_file, scan):
    rings = [(0.40, 0.50), (0.70, 0.90), (0.45, 0.85)]  # overlapping rings are fine
    with h5py.File(scan_file, "r+") as h5:
        # one radial bin and no coverage test: the profiles of earlier versions
        proc = AzimuthalProfiles(
            h5[RAW], q_range=rings, npt_azim=45, n_radial=1, min_coverage=0, progress=False
        )
        got = proc.test(range(6))
    frames = scan.frames.reshape(-1, *scan.frame_shape)
    for k, rng in enumerate(rings):
        wide = rng[1] - rng[0]
        bi = BatchIntegrator.from_pyfai(
            scan.integrator(),
            scan.frame_shape,
            npt=3,
            npt_azim=45,
            mask=scan.mask,
            radial_range=(rng[0] - wide, rng[1] + wide),
            azimuth_range=(-180, 180),
            error_model="poisson",
        )
        one = bi.integrate(frames)  # (6, 45, 3): the ring is the middle radial bin
        stacked = got["Intensity"].reshape(6, 3, 45)[:, k]
        ok = one.intensity[:, :, 1] != 0  # from_pyfai keeps pyFAI's empty = 0
        # each row is summed alone in either matrix: the same bits
        np.testing.assert_array_equal(stacked[ok], one.intensity[:, :, 1][ok])
        np.testing.assert_array_equal(
            got["Intensity_Sigma"].reshape(6, 3, 45)[:, k][ok], one.sigma[:, :, 1][ok]
        )
        assert np.isnan(stacked[~ok]).all()


def test_sub_bin_sums_equal_one_integrator_per_ring(scan):
    """Each (ring, sub-bin, chi) row of the stacked matrix is summed as alone: the sub-bin
    means and normalizations are those of one BatchIntegrator per ring, bit for bit."""
    from pyscatter.processes.profiles_worker import ring_integrator

    rings = [(0.45, 0.40, 0.50), (0.8, 0.70, 0.90)]
    profiles = ring_integrator(scan.integrator(), _params(scan, rings, 45, n_radial=4), scan.mask)
    frames = scan.frames.reshape(-1, *scan.frame_shape)
    intensity, sigma, norm, _ = profiles.integrator.sums(frames)
    for k, (_, lo, hi) in enumerate(rings):
        step = (hi - lo) / 4
        bi = BatchIntegrator.from_pyfai(
            scan.integrator(),
            scan.frame_shape,
            npt=6,  # 4 sub-bins and a guard bin on each side
            npt_azim=45,
            mask=scan.mask,
            radial_range=(lo - step, hi + step),
            azimuth_range=(-180, 180),
            polarization_factor=scan.polarization_factor,
            error_model="poisson",
        )
        one = bi.integrate(frames)  # (6, 45, 6)
        rows = slice(k * 4 * 45, (k + 1) * 4 * 45)  # rows (ring, sub-bin, chi)
        mine = intensity[:, rows].reshape(6, 4, 45).transpose(0, 2, 1)
        ok = one.intensity[:, :, 1:5] != 0
        np.testing.assert_array_equal(mine[ok].astype(np.float32), one.intensity[:, :, 1:5][ok])
        mine_s = sigma[:, rows].reshape(6, 4, 45).transpose(0, 2, 1)
        np.testing.assert_array_equal(mine_s[ok].astype(np.float32), one.sigma[:, :, 1:5][ok])
        assert np.isnan(mine[~ok]).all()
        # N: Σ c·(solid angle · polarization) of the valid pixels, as pyFAI sums it (1e-6:
        # pyFAI's float64 sum of float32 products in another order)
        ref = scan.integrator().integrate2d_ng(
            frames[0],
            6,
            45,
            unit="q_nm^-1",
            mask=scan.mask,
            radial_range=(lo - step, hi + step),
            azimuth_range=(-180, 180),
            polarization_factor=scan.polarization_factor,
            method=("bbox", "csr", "cython"),
        )
        mine_n = norm[0, rows].reshape(4, 45).T
        np.testing.assert_allclose(mine_n, ref.sum_normalization[:, 1:5], rtol=1e-6)


def _maier_saupe(chi, amplitude, kappa, director):
    """amplitude · exp(κ cos²(chi − director)) normalised to a mean of 1 over the circle."""
    return (
        amplitude
        * np.exp(kappa / 2 * (np.cos(np.radians(2 * (chi - director))) - 1))
        / (special.ive(0, kappa / 2))
    )


def test_oriented_ring_follows_maier_saupe():
    """A broad ring: I(chi) ∝ exp(κ cos²(chi − director)); fitted κ and director = truth."""
    from scipy.optimize import curve_fit

    from pyscatter.processes.profiles_worker import ring_integrator

    kappa, director, width_nm = 6.0, 35.0, 0.5
    scan = datasets.make_scan(
        (1,),
        kappa=kappa,
        director_deg=director,
        frame_shape=(128, 144),
        background=None,
        rings=[Ring(q_nm=0.7, width_nm=width_nm, amplitude=300.0, oriented=True)],
        rng=11,
        keep_ideal=True,
    )
    params = _params(scan, [(0.7, 0.65, 0.75)], 180)  # 8 sub-bins, as AzimuthalProfiles
    integrator = ring_integrator(scan.integrator(), params, scan.mask)
    res = integrator.integrate(scan.frames)
    truth = integrator.integrate(scan.ideal).intensity[0, :, 0]  # noise-free expectation
    chi, profile, sigma = res.azimuthal, res.intensity[0, :, 0], res.sigma[0, :, 0]
    ok = np.isfinite(profile)
    # sigma is the Poisson noise: z-scores against the noise-free profile have mean 0 (within
    # 4 standard errors, 0.3 for ~177 bins) and an rms of 1 (± 0.2)
    z = (profile - truth)[ok] / sigma[ok]
    assert abs(z.mean()) < 0.3 and 0.8 < np.sqrt(np.mean(z**2)) < 1.2
    popt, pcov = curve_fit(_maier_saupe, chi[ok], profile[ok], p0=(250, 3, 20), sigma=sigma[ok])
    amplitude, kappa_fit, director_fit = popt
    # the tolerances allow for the uneven sampling of each 2° bin by a few pixels (a bias
    # below 1 %); statistical errors are ~0.01 in kappa and 0.03° in the director
    assert kappa_fit == pytest.approx(kappa, rel=0.01)
    assert director_fit == pytest.approx(director, abs=0.2)
    # the amplitude is the ring's Gaussian averaged uniformly over q in [0.65, 0.75], the
    # definition of the sub-bin mean (pyFAI's single bin would take pixels down to 0.55 and
    # come out 1 % low here, 5 % for a ring of [0.55, 0.85])
    q = np.linspace(0.65, 0.75, 1001)
    expected = 300.0 * np.exp(-0.5 * ((q - 0.7) / width_nm) ** 2).mean()
    assert amplitude == pytest.approx(expected, rel=0.003)


def test_ground_truth_peaks_at_the_director(scan_file, scan):
    run_on_file(scan_file, AzimuthalProfiles, q=0.45, half_width=0.05, npt_azim=72, progress=False)
    ds = pyscatter.to_xarray(scan_file, "AzimuthalProfiles")
    for iy in range(2):
        for ix in range(3):
            if scan.kappa[iy, ix] < 5:
                continue
            profile = ds["Intensity"].values[iy, ix, 0]
            chi = ds["chi"].values
            ok = np.isfinite(profile)
            # the director mod 180: the profile of exp(κ cos²) has two equal peaks
            peak = chi[ok][np.argmax(profile[ok])]
            diff = (peak - scan.director_deg[iy, ix] + 90) % 180 - 90
            assert abs(diff) <= 7.5  # within 1.5 bins of 5°


def test_hkl_rings_and_cif(scan_file, tmp_path):
    a = 2 * np.pi / 0.45 * 10  # Å: d_100 = 2π / 0.45 nm^-1
    by_hkl = run_on_file(
        scan_file,
        AzimuthalProfiles,
        hkl=[(1, 0, 0)],
        half_width=0.06,
        lattice={"a": a},
        npt_azim=36,
        progress=False,
    )
    by_q = run_on_file(
        scan_file, AzimuthalProfiles, q=0.45, half_width=0.06, npt_azim=36, progress=False
    )
    cif = tmp_path / "cell.cif"
    cif.write_text(
        f"data_big\n_cell_length_a {a}\n_cell_length_b {a}\n_cell_length_c {a}\n"
        "_cell_angle_alpha 90\n_cell_angle_beta 90\n_cell_angle_gamma 90\n"
        "loop_\n_atom_site_label\n_atom_site_fract_x\n_atom_site_fract_y\n_atom_site_fract_z\n"
        "C1 0 0 0\n"
    )
    by_cif = run_on_file(
        scan_file,
        AzimuthalProfiles,
        hkl=[(1, 0, 0)],
        half_width=0.06,
        cif=cif,
        npt_azim=36,
        progress=False,
    )
    assert by_q.group.endswith("_001") and by_cif.group.endswith("_002")
    with h5py.File(scan_file, "r") as h5:
        params = json.loads(h5[by_hkl.group].attrs["parameters"])
        assert params["rings"][0]["hkl"] == [1, 0, 0]
        assert params["rings"][0]["q"] == pytest.approx(0.45, rel=1e-12)
        assert params["lattice"]["a"] == pytest.approx(a)
        cif_params = json.loads(h5[by_cif.group].attrs["parameters"])
        assert cif_params["cif"] == str(cif) and len(cif_params["cif_sha256"]) == 64
        # the same ring (q equal to rounding): the same profiles
        np.testing.assert_allclose(
            h5[by_hkl.group]["Intensity"][()], h5[by_q.group]["Intensity"][()], rtol=1e-6
        )
        np.testing.assert_allclose(
            h5[by_cif.group]["Intensity"][()], h5[by_q.group]["Intensity"][()], rtol=1e-6
        )


def test_extra_mask_gives_nan_bins_and_worker_path(scan_file, scan):
    extra = np.zeros(scan.frame_shape, bool)
    ai = scan.integrator()
    chi = ai.center_array(scan.frame_shape, unit="chi_deg")
    extra[(chi > 20) & (chi < 60)] = True  # a wedge: every pixel of those chi bins masked
    with h5py.File(scan_file, "r+") as h5:
        proc = AzimuthalProfiles(
            h5[RAW], q=0.45, half_width=0.06, npt_azim=36, mask=extra, progress=False
        )
        proc.compute()
        group = proc.h5_results_grp
        stored = group["Intensity"][()]
        sigma = group["Intensity_Sigma"][()]
        # the worker builds its function from the file alone (the mask stored in the group)
        worker = build(proc.task_spec(), h5)
        np.testing.assert_array_equal(worker(h5, 0, 6)["Intensity"], stored)
    bins = np.linspace(-180, 180, 37)
    centre = 0.5 * (bins[1:] + bins[:-1])
    inside = (centre - 5 > 20) & (centre + 5 < 60)  # bins wholly in the wedge
    assert inside.sum() == 2
    assert np.isnan(stored[:, inside]).all() and np.isnan(sigma[:, inside]).all()
    # the default 8 sub-bins, as pyFAI gives them (float32 sums: 1e-5 relative)
    ref_i, ref_s, _, _, _ = _pyfai_sub_bins(
        scan, scan.frames[0, 1], 0.39, 0.51, 8, 36, mask=scan.mask | extra
    )
    ok = np.isfinite(ref_i)
    np.testing.assert_array_equal(np.isfinite(stored[1]), ok)
    np.testing.assert_allclose(stored[1][ok], ref_i[ok], rtol=1e-5)
    np.testing.assert_allclose(sigma[1][ok], ref_s[ok], rtol=1e-5)
    # the 4 bins the wedge overlaps are NaN (the pixels of [20°, 30°] and [50°, 60°] whose
    # centre is outside the wedge reach less than half of the bin); 3 more are the arm's
    overlap = (centre + 5 > 20) & (centre - 5 < 60)
    assert overlap.sum() == 4 and np.isnan(stored[:, overlap]).all()
    assert (~ok).sum() == 7


def test_reuse_and_001(scan_file):
    first = run_on_file(
        scan_file, AzimuthalProfiles, q=0.45, half_width=0.06, npt_azim=30, progress=False
    )
    assert first.group.endswith("Raw_Data-AzimuthalProfiles_000") and first.computed_positions == 6
    again = run_on_file(
        scan_file, AzimuthalProfiles, q=0.45, half_width=0.06, npt_azim=30, progress=False
    )
    assert again.reused and again.group == first.group and again.computed_positions == 0
    # override makes _001 (other parameters too, see test_hkl_rings_and_cif); blocks of 1
    # position (a tiny memory budget) give the same bits
    small = run_on_file(
        scan_file,
        AzimuthalProfiles,
        q=0.45,
        half_width=0.06,
        npt_azim=30,
        override=True,
        max_mem_mb=0.15,
        progress=False,
    )
    assert small.group.endswith("_001") and small.computed_positions == 6
    with h5py.File(scan_file, "r") as h5:
        assert h5[small.group].attrs["positions_per_chunk"] == 1
        np.testing.assert_array_equal(
            h5[small.group]["Intensity"][()], h5[first.group]["Intensity"][()]
        )


def test_bad_parameters_are_named(scan_file):
    with pytest.raises(InputError, match="exactly one way"):
        run_on_file(
            scan_file, AzimuthalProfiles, q=0.45, hkl=[(1, 0, 0)], half_width=0.1, progress=False
        )
    with pytest.raises(InputError, match="width"):
        run_on_file(scan_file, AzimuthalProfiles, q=0.45, progress=False)
    with pytest.raises(InputError, match="unit"):
        run_on_file(
            scan_file, AzimuthalProfiles, q=0.45, half_width=0.1, unit="2th_deg", progress=False
        )
    with pytest.raises(InputError, match="npt_azim"):
        run_on_file(
            scan_file, AzimuthalProfiles, q=0.45, half_width=0.1, npt_azim=0, progress=False
        )
    for bad in (0, 101, 2.5, True, "8"):
        with pytest.raises(InputError, match="n_radial must be an integer from 1 to 100"):
            run_on_file(
                scan_file, AzimuthalProfiles, q=0.45, half_width=0.1, n_radial=bad, progress=False
            )
    for bad in (-0.1, 1.5, np.nan, None, "0.5"):
        with pytest.raises(InputError, match=r"min_coverage must be a number in \[0, 1\]"):
            run_on_file(
                scan_file,
                AzimuthalProfiles,
                q=0.45,
                half_width=0.1,
                min_coverage=bad,
                progress=False,
            )
    with pytest.raises(InputError, match="error_model"):
        run_on_file(
            scan_file, AzimuthalProfiles, q=0.45, half_width=0.1, error_model=None, progress=False
        )
    with pytest.raises(InputError, match="method"):
        run_on_file(
            scan_file,
            AzimuthalProfiles,
            q=0.45,
            half_width=0.1,
            method=("bbox", "histogram", "cython"),
            progress=False,
        )


def test_rings_mostly_nan_are_reported(scan, caplog):
    """Whole-pixel sampling ("no" splitting) of sub-bins narrower than a pixel leaves most
    sub-bins empty at most chi: the profiles are NaN there, and the log says why."""
    from pyscatter.processes.profiles_worker import ring_integrator

    params = _params(scan, [(0.45, 0.40, 0.50), (0.8, 0.6, 1.0)], 90)
    with caplog.at_level("WARNING", logger="pyscatter.processes.profiles_worker"):
        ring_integrator(scan.integrator(), dict(params, method=["no", "csr", "cython"]), None)
    # the 0.0125 1/nm sub-bins at 0.45 are narrower than the pixel pitch (0.031 1/nm here),
    # those at 0.8 are 0.05 wide
    assert len(caplog.records) == 1 and "q = 0.45 " in caplog.records[0].getMessage()
    caplog.clear()
    with caplog.at_level("WARNING", logger="pyscatter.processes.profiles_worker"):
        ring_integrator(scan.integrator(), params, None)  # bbox splitting: complete
    assert not caplog.records


@pytest.mark.realdata
def test_ceo2_111_ring_profile_from_hkl(shared_data):
    """Real CeO2 powder (Dioptas' Pilatus 1M): the (111) ring taken from hkl is bright at
    every chi, a band between (111) and (200) is not."""
    import fabio
    import pyFAI

    from pyscatter.geometry import ring_ranges
    from pyscatter.processes.profiles_worker import ring_integrator

    folder = shared_data / "dioptas"
    image = np.flipud(fabio.open(str(folder / "CeO2_Pilatus1M.tif")).data)  # see the README
    ai = pyFAI.load(str(folder / "CeO2_Pilatus1M.poni"))
    rings = ring_ranges(hkl=[(1, 1, 1)], width=0.01, lattice={"a": 5.411}, unit="q_A^-1")
    rings += ring_ranges(q=[2.17], width=0.01, unit="q_A^-1")  # between 2.011 and 2.322
    params = {
        "frame_shape": list(image.shape),
        "method": ["bbox", "csr", "cython"],
        "rings": rings,
        "npt_azim": 36,
        "unit": "q_A^-1",
        "dummy": None,
        "delta_dummy": None,
        "correct_solid_angle": True,
        "polarization_factor": None,
        "error_model": "poisson",
        "n_radial": 8,
        "min_coverage": 0.5,
    }
    res = ring_integrator(ai, params, image < 0).integrate(image[None])
    ring, band = res.intensity[0, :, 0], res.intensity[0, :, 1]
    both = np.isfinite(ring) & np.isfinite(band)
    assert both.sum() >= 10  # the ring lies partly off this detector
    # pyFAI's I(q) peak of (111) is 22× its surroundings; ±0.5 % around it, over 10° bins, at
    # least 5× the background band at every chi
    assert (ring[both] > 5 * band[both]).all()


def test_ring_outside_the_detector_is_refused(scan_file, scan):
    """Issue 20: ``profiles --q 50`` was accepted (exit 0) with all-NaN profiles."""
    ai = scan.integrator()
    q = ai.array_from_unit(shape=scan.frame_shape, typ="center", unit="q_nm^-1", scale=True)
    lo, hi = q[~scan.mask].min(), q[~scan.mask].max()
    with pytest.raises(InputError) as info:
        run_on_file(scan_file, AzimuthalProfiles, q=50.0, half_width=0.1, progress=False)
    message = str(info.value)
    assert "q = 50 " in message and "outside the q range the detector covers" in message
    assert f"{lo:.6g} to {hi:.6g} 1/nm" in message
    with pytest.raises(InputError, match=r"q = 0\.001 .*outside"):  # inside the beamstop
        run_on_file(scan_file, AzimuthalProfiles, q_range=[(0.0005, 0.0015)], progress=False)
    with h5py.File(scan_file, "r") as h5:  # nothing was written
        assert not [k for k in h5["Measurement_000/Channel_000"] if "Profiles" in k]
