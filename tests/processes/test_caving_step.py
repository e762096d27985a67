"""Caving as a step: the kernel's values, the noiseless truth within noise, I(q) of the caved
frames against the uncut pattern, caved frames as a source, reuse, resume, bad input."""

from __future__ import annotations

import json
import shutil

import h5py
import numpy as np
import pytest
from conftest import write_scan
from numpy.testing import assert_array_equal

from pyscatter import datasets, to_xarray
from pyscatter.datasets_model import BEAMSTOP_Q_NM
from pyscatter.errors import InputError
from pyscatter.geometry import beam_center
from pyscatter.kernels.caving import cave
from pyscatter.processes.base import run_on_file
from pyscatter.processes.caving import Caving
from pyscatter.processes.integration import AzimuthalIntegration

SEED = 11


@pytest.fixture(scope="module")
def scan():
    """Oriented rings (kappa 4, director 30°) with beamstop, arm and module gap, Poisson noise."""
    return datasets.make_scan((2, 3), kappa=4.0, director_deg=30.0, keep_ideal=True, rng=SEED)


@pytest.fixture(scope="module")
def scan_h5(tmp_path_factory, scan):
    return write_scan(tmp_path_factory.mktemp("caving") / "scan.h5", scan)


@pytest.fixture()
def path(tmp_path, scan_h5):
    return shutil.copy(scan_h5, tmp_path / "scan.h5")


def run(path, process=Caving, **params):
    params.setdefault("progress", False)
    return run_on_file(path, process, **params)


def frames_of(scan):
    return scan.frames.reshape(-1, *scan.frame_shape)


def caved(path, group):
    with h5py.File(path, "r") as h5:
        g = h5[group]
        return {k: g[k][()] for k in ("Caved_Data", "Filled_Pixels", "Missing_Pixels", "Mask")}


def test_caved_frames_are_the_kernel_and_carry_geometry_and_mask(path, scan):
    summary = run(path, max_mem_mb=1.0, n_iter=2)  # several blocks
    out = caved(path, summary.group)
    center = beam_center(scan.integrator())
    ref = cave(frames_of(scan), scan.mask, center, n_iter=2, order=1)
    n = scan.n_positions
    assert_array_equal(out["Caved_Data"], ref.filled.astype(np.float32).reshape(n, -1))
    assert_array_equal(out["Filled_Pixels"][:, 0], (ref.filled_in_pass > 0).reshape(n, -1).sum(1))
    assert_array_equal(out["Missing_Pixels"][:, 0], ref.missing.reshape(n, -1).sum(1))
    assert_array_equal(out["Mask"] != 0, ref.missing[0])  # the same static mask in every frame
    assert out["Caved_Data"].dtype == np.float32
    with h5py.File(path, "r") as h5:
        group = h5[summary.group]
        assert int(group.attrs["positions_per_chunk"]) < n
        params = json.loads(group.attrs["parameters"])
        assert params["center"] == list(center) and params["center_from"] == "geometry"
        recorded = json.loads(group.attrs["geometry"])
        assert recorded == json.loads(h5["Measurement_000"].attrs["geometry"])
        assert_array_equal(group["Input_Mask"][()] != 0, scan.mask)
        assert "dummy" not in group.attrs
    ds = to_xarray(path, "cave")
    assert ds["Caved_Data"].dims == ("Y", "X", "Row", "Col")


def _bilinear(ideal, mask, center, pix):
    """Mean and variance of the bilinear partner estimate of Poisson pixels (an independent
    reference of order=1, first pass): weights of the valid pixels around the partner."""
    rows, cols = mask.shape
    r, c = 2 * center[0] - pix[0], 2 * center[1] - pix[1]
    r0, c0 = np.floor(r), np.floor(c)
    fr, fc = r - r0, c - c0
    total = np.zeros(r.size)
    mean = np.zeros(r.size)
    var = np.zeros(r.size)
    for dr, dc, w in ((0, 0, (1 - fr) * (1 - fc)), (0, 1, (1 - fr) * fc),
                      (1, 0, fr * (1 - fc)), (1, 1, fr * fc)):  # fmt: skip
        rr, cc = (r0 + dr).astype(int), (c0 + dc).astype(int)
        inside = (rr >= 0) & (rr < rows) & (cc >= 0) & (cc < cols)
        rr, cc = np.where(inside, rr, 0), np.where(inside, cc, 0)
        w = np.where(inside & ~mask[rr, cc], w, 0.0)
        lam = ideal[rr, cc]
        total += w
        mean += w * lam
        var += w * w * lam
    return mean / total, var / total**2


@pytest.mark.parametrize("order", [0, 1])
def test_caving_restores_the_noiseless_truth_within_noise(path, scan, order):
    summary = run(path, order=order)
    out = caved(path, summary.group)["Caved_Data"].reshape(-1, *scan.frame_shape)
    ideal = scan.ideal.reshape(out.shape)
    center = beam_center(scan.integrator())
    z, bias = [], []
    for k in range(out.shape[0]):
        filled = scan.mask & np.isfinite(out[k])
        pix = np.nonzero(filled)
        if order == 1:
            mean, var = _bilinear(ideal[k], scan.mask, center, pix)
        else:  # the nearest partner pixel: its own Poisson variance
            rr = np.rint(2 * center[0] - pix[0]).astype(int)
            cc = np.rint(2 * center[1] - pix[1]).astype(int)
            mean = var = ideal[k][rr, cc]
        sigma = np.sqrt(var)
        z.append((out[k][filled] - ideal[k][filled]) / sigma)
        bias.append((mean - ideal[k][filled]) / sigma)  # partner model against the pixel's own
    z, bias = np.concatenate(z), np.concatenate(bias)
    assert z.size > 5_000
    # the residuals average to the partner model's offset (interpolating a curved ring, the
    # tilt), itself small: within 4 standard errors, and the offset below 0.1 sigma
    assert abs(z.mean() - bias.mean()) < 4 / np.sqrt(z.size)
    assert abs(bias.mean()) < 0.1
    chi2 = float(np.mean(z**2))
    # noise (1 per pixel) plus the partner's model offset (interpolation, tilt): both known
    assert abs(chi2 - 1.0 - float(np.mean(bias**2))) < 0.06
    assert 0.9 < chi2 < 1.3


def _uncut_frames(scan):
    """The same Poisson draws without the mask (make_scan draws all pixels, then writes -1)."""
    counts = np.random.default_rng(SEED).poisson(scan.ideal).astype(np.int32)
    uncut = counts.reshape(-1, *scan.frame_shape)
    assert_array_equal(uncut[:, ~scan.mask], frames_of(scan)[:, ~scan.mask])
    return uncut


def test_integrated_caved_frames_equal_the_uncut_pattern_within_sigma(path, scan):
    cave_run = run(path)
    source = f"{cave_run.group}/Caved_Data"
    options = {"npt": 150, "error_model": "poisson", "polarization_factor": 0.99}
    summary = run(path, AzimuthalIntegration, source=source, **options)
    with h5py.File(path, "r") as h5:
        group = h5[summary.group]
        got, sigma = group["Intensity"][()], group["Intensity_Sigma"][()]
        params = json.loads(group.attrs["parameters"])
        still = h5[cave_run.group]["Mask"][()] != 0
    assert params["mask_file_dataset"] == f"{cave_run.group}/Mask"
    assert (sigma[np.isfinite(got)] > 0).all()
    assert still.sum() < 0.2 * scan.mask.sum()  # most of the mask is filled
    ai = scan.integrator()
    ref_q = None
    z = []
    for k, frame in enumerate(_uncut_frames(scan)):
        ref = ai.integrate1d_ng(frame, 150, unit="q_nm^-1", mask=still, error_model="poisson",
                                polarization_factor=0.99, correctSolidAngle=True)  # fmt: skip
        ref_q = ref.radial
        # beyond the beamstop's edge, where a filled pixel's partners lie at larger q
        ok = np.isfinite(got[k]) & (ref.sigma > 0) & (ref.radial > 1.2 * BEAMSTOP_Q_NM)
        z.append((got[k][ok] - ref.intensity[ok]) / ref.sigma[ok])
    z = np.concatenate(z)
    assert abs(z.mean()) < 0.1 and np.abs(z).max() < 3.0
    ds = to_xarray(path, "integrate")
    np.testing.assert_allclose(ds["q"].values, ref_q, rtol=1e-12)


def test_reuse_and_bit_identical_resume(path):
    first = run(path, max_mem_mb=1.0)
    before = caved(path, first.group)
    again = run(path)
    assert again.reused and again.computed_positions == 0
    with h5py.File(path, "r+") as h5:  # a job killed while it wrote block 1
        group = h5[first.group]
        k = int(group.attrs["positions_per_chunk"])
        group["completed_chunks"][1] = 0
        group["Caved_Data"][k] = np.nan
        group["Filled_Pixels"][k] = -1
    with pytest.raises(InputError, match="positions of .*Caving_000 are complete"):
        run(path, AzimuthalIntegration, source=f"{first.group}/Caved_Data", npt=50)
    resumed = run(path)
    assert resumed.resumed and resumed.computed_positions == k
    after = caved(path, first.group)
    for name in before:
        assert_array_equal(after[name], before[name])


def test_parallel_workers_give_the_same_bits(path):
    serial = run(path, max_mem_mb=1.0)
    before = caved(path, serial.group)
    parallel = run(path, max_mem_mb=1.0, n_jobs=2, override=True)
    assert parallel.group != serial.group
    after = caved(path, parallel.group)
    for name in before:
        assert_array_equal(after[name], before[name])


def test_dummy_pixels_are_filled_without_a_mask(path, scan):
    masked = run(path)
    by_dummy = run(path, use_file_mask=False, dummy=-1)  # the masked pixels hold -1
    a, b = caved(path, masked.group), caved(path, by_dummy.group)
    assert_array_equal(a["Caved_Data"], b["Caved_Data"])
    assert not b["Mask"].any()  # nothing static: still missing pixels are NaN frame by frame
    assert_array_equal(np.isnan(b["Caved_Data"][0]).reshape(scan.frame_shape), a["Mask"] != 0)


def test_given_centre_and_no_geometry(tmp_path, scan):
    from pyscatter.io.raw import MeasurementSpec, write_measurement
    from pyscatter.io.usid import Dim

    rows, cols = scan.frame_shape
    spec = MeasurementSpec(
        position_dims=[Dim("X", "um", np.arange(float(scan.n_positions)))],
        spec_dims=[Dim("Row", "pixel", np.arange(rows)), Dim("Col", "pixel", np.arange(cols))],
        dtype=scan.frames.dtype,
        mask=scan.mask,
        attrs={"translator": "tests"},
    )
    bare = write_measurement(tmp_path / "bare.h5", spec, iter(frames_of(scan)))
    with pytest.raises(InputError, match="center='auto'.*--poni FILE.*--center X Y"):
        run(bare)
    center = beam_center(scan.integrator())
    summary = run(bare, center=center)
    ref = cave(frames_of(scan), scan.mask, center)
    assert_array_equal(caved(bare, summary.group)["Caved_Data"],
                       ref.filled.astype(np.float32).reshape(scan.n_positions, -1))  # fmt: skip
    with pytest.raises(InputError, match="no geometry recorded"):
        run(bare, AzimuthalIntegration, source=f"{summary.group}/Caved_Data", npt=50)


def test_bad_input_is_named(path, scan):
    rows, cols = scan.frame_shape
    with pytest.raises(InputError, match="lies outside the frame"):
        run(path, center=(rows + 5.0, 10.0))
    with pytest.raises(InputError, match="lies outside the frame"):
        run(path, center=(10.0, -1.0))
    with pytest.raises(InputError, match="expected 'auto' or \\(row, col\\)"):
        run(path, center="middle")
    with pytest.raises(InputError, match="expected finite"):
        run(path, center=(np.nan, 3.0))
    with pytest.raises(InputError, match="n_iter = 0"):
        run(path, n_iter=0)
    with pytest.raises(InputError, match="order = 2"):
        run(path, order=2)
    with pytest.raises(InputError, match="mask has shape \\(3, 3\\)"):
        run(path, mask=np.zeros((3, 3)))
    with pytest.raises(InputError, match="PONI file not found"):
        run(path, poni="nowhere.poni")


def test_monitor_auto_works_on_caved_frames(tmp_path, scan):
    from pyscatter.io.raw import MeasurementSpec, write_measurement
    from pyscatter.io.usid import Dim

    rows, cols = scan.frame_shape
    monitor = np.linspace(1.0, 2.0, scan.n_positions)
    spec = MeasurementSpec(
        position_dims=[Dim("X", "um", np.arange(float(scan.n_positions)))],
        spec_dims=[Dim("Row", "pixel", np.arange(rows)), Dim("Col", "pixel", np.arange(cols))],
        dtype=scan.frames.dtype,
        geometry=scan.integrator().get_config(),
        mask=scan.mask,
        attrs={"translator": "tests", "monitor": "Monitor"},
        extra={"Monitor": monitor},
    )
    path = write_measurement(tmp_path / "monitor.h5", spec, iter(frames_of(scan)))
    source = f"{run(path).group}/Caved_Data"
    plain = run(path, AzimuthalIntegration, source=source, npt=40)
    normalised = run(path, AzimuthalIntegration, source=source, npt=40, monitor="auto")
    with h5py.File(path, "r") as h5:
        ratio = h5[f"{plain.group}/Intensity"][()] / h5[f"{normalised.group}/Intensity"][()]
        paths = json.loads(h5[normalised.group].attrs["parameters"])["normalization_datasets"]
    assert paths == [f"{source.rsplit('/', 1)[0]}/Monitor"]  # the soft link to the raw monitor
    ok = np.isfinite(ratio)
    np.testing.assert_allclose(
        ratio[ok], np.broadcast_to(monitor[:, None], ratio.shape)[ok], rtol=1e-6
    )
