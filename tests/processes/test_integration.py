"""AzimuthalIntegration against pyFAI called directly, and the results group it writes."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest

import pyscatter
from pyscatter.errors import InputError
from pyscatter.processes.base import run_on_file
from pyscatter.processes.integration import AzimuthalIntegration


def _pyfai_1d(scan, frame, **kw):
    ai = scan.integrator()
    return ai.integrate1d_ng(frame, kw.pop("npt"), mask=scan.mask, **kw)


@pytest.mark.parametrize("engine", ["batched", "pyfai"])
def test_integration_equals_pyfai_per_position(scan_file, small_scan, engine):
    run_on_file(
        scan_file,
        AzimuthalIntegration,
        npt=120,
        unit="q_nm^-1",
        error_model="poisson",
        polarization_factor=0.99,
        engine=engine,
        progress=False,
    )
    ds = pyscatter.to_xarray(scan_file, "AzimuthalIntegration")
    frames = small_scan.frames.reshape(-1, *small_scan.frame_shape)
    intensity = ds["Intensity"].values.reshape(len(frames), -1)
    sigma = ds["Intensity_Sigma"].values.reshape(len(frames), -1)
    for i in range(len(frames)):
        ref = _pyfai_1d(
            small_scan,
            frames[i],
            npt=120,
            unit="q_nm^-1",
            error_model="poisson",
            polarization_factor=0.99,
            correctSolidAngle=True,
        )
        np.testing.assert_allclose(ds["q"].values, ref.radial, rtol=1e-12)
        # float32 results: pyFAI's own engine accumulates in float64 then casts; the batched
        # kernel multiplies float32 blocks, so agreement is to float32 precision.
        np.testing.assert_allclose(
            intensity[i], ref.intensity, rtol=1e-5, atol=1e-6 * ref.intensity.max()
        )
        np.testing.assert_allclose(sigma[i], ref.sigma, rtol=1e-5, atol=1e-6 * ref.sigma.max())
    assert ds["Intensity"].dims == ("Y", "X", "q")
    assert ds["q"].attrs["units"] == "1/nm"


def test_cake_equals_pyfai_integrate2d(scan_file, small_scan):
    run_on_file(scan_file, AzimuthalIntegration, npt=60, npt_azim=36, progress=False)
    ds = pyscatter.to_xarray(scan_file, "AzimuthalIntegration")
    assert ds["Intensity"].dims == ("Y", "X", "chi", "q")
    frame = small_scan.frames[1, 2]
    ref = small_scan.integrator().integrate2d_ng(
        frame, 60, 36, unit="q_nm^-1", mask=small_scan.mask, correctSolidAngle=True
    )
    np.testing.assert_allclose(ds["chi"].values, ref.azimuthal, rtol=1e-12)
    got = ds["Intensity"].values[1, 2]
    np.testing.assert_allclose(got, ref.intensity, rtol=1e-5, atol=1e-6 * ref.intensity.max())


def test_results_group_is_usid_and_records_everything(scan_file):
    from pyUSID import USIDataset
    from pyUSID.io.hdf_utils import check_if_main

    summary = run_on_file(scan_file, AzimuthalIntegration, npt=50, progress=False)
    with h5py.File(scan_file, "r") as h5:
        group = h5[summary.group]
        assert group.name.endswith("Raw_Data-AzimuthalIntegration_000")
        assert check_if_main(group["Intensity"])
        assert USIDataset(group["Intensity"]).get_n_dim_form().shape == (3, 4, 50)
        params = json.loads(group.attrs["parameters"])
        assert params["npt"] == 50 and params["method"] == ["bbox", "csr", "cython"]
        versions = json.loads(group.attrs["versions"])
        assert {"pyFAI", "pyUSID", "numpy", "pyscatter"} <= set(versions)
        assert group.attrs["end_time"] != b""
        assert group.attrs["source_fingerprint"].startswith("sha256:")
        # the integration can be redone from the file alone: its geometry is recorded
        assert json.loads(params["geometry"])["dist"] > 0


def test_same_parameters_reuse_other_parameters_make_001(scan_file):
    first = run_on_file(scan_file, AzimuthalIntegration, npt=40, progress=False)
    again = run_on_file(scan_file, AzimuthalIntegration, npt=40, progress=False)
    assert again.reused and again.group == first.group and again.computed_positions == 0
    other = run_on_file(scan_file, AzimuthalIntegration, npt=41, progress=False)
    assert other.group.endswith("_001") and other.computed_positions == 12
    forced = run_on_file(scan_file, AzimuthalIntegration, npt=40, override=True, progress=False)
    assert forced.group.endswith("_002") and forced.computed_positions == 12


def test_bad_parameters_are_named(scan_file):
    with pytest.raises(InputError, match="unit"):
        run_on_file(scan_file, AzimuthalIntegration, unit="furlongs", progress=False)
    with pytest.raises(InputError, match=r"mask has shape \(3, 3\)"):
        run_on_file(scan_file, AzimuthalIntegration, mask=np.zeros((3, 3)), progress=False)
    with pytest.raises(InputError, match="error_model"):
        run_on_file(scan_file, AzimuthalIntegration, error_model="gaussian", progress=False)


def test_dark_flat_and_extra_mask_match_pyfai(scan_file, small_scan):
    rng = np.random.default_rng(3)
    shape = small_scan.frame_shape
    dark = rng.uniform(0, 2, shape).astype(np.float32)
    flat = rng.uniform(0.9, 1.1, shape).astype(np.float32)
    extra = np.zeros(shape, bool)
    extra[:, :10] = True
    run_on_file(
        scan_file, AzimuthalIntegration, npt=80, dark=dark, flat=flat, mask=extra, progress=False
    )
    ds = pyscatter.to_xarray(scan_file, "AzimuthalIntegration")
    frame = small_scan.frames[2, 3]
    ref = small_scan.integrator().integrate1d_ng(
        frame,
        80,
        unit="q_nm^-1",
        mask=small_scan.mask | extra,
        dark=dark,
        flat=flat,
        correctSolidAngle=True,
    )
    got = ds["Intensity"].values[2, 3]
    np.testing.assert_allclose(
        got, ref.intensity, rtol=1e-5, atol=1e-6 * np.abs(ref.intensity).max()
    )


def test_test_method_writes_nothing(scan_file, small_scan):
    with h5py.File(scan_file, "r+") as h5:
        proc = AzimuthalIntegration(
            h5["Measurement_000/Channel_000/Raw_Data"], npt=30, progress=False
        )
        out = proc.test([5])
        assert out["Intensity"].shape == (1, 30)
        assert not [k for k in h5["Measurement_000/Channel_000"] if "Azimuthal" in k]
    ref = small_scan.integrator().integrate1d_ng(
        small_scan.frames.reshape(-1, *small_scan.frame_shape)[5],
        30,
        unit="q_nm^-1",
        mask=small_scan.mask,
    )
    np.testing.assert_allclose(
        out["Intensity"][0], ref.intensity, rtol=1e-5, atol=1e-6 * ref.intensity.max()
    )


def test_a_chunk_whose_flag_does_not_verify_is_recomputed(scan_file):
    params = dict(npt=40, max_mem_mb=0.6, progress=False)  # one position per chunk
    first = run_on_file(scan_file, AzimuthalIntegration, **params)
    with h5py.File(scan_file, "r+") as h5:
        dset = h5[first.group]["Intensity"]
        good = dset[()]
        assert h5[first.group].attrs["positions_per_chunk"] == 1
        damaged = good[5].copy()
        damaged[3] += 1  # a torn write: data changed after its flag was set
        dset[5] = damaged
    again = run_on_file(scan_file, AzimuthalIntegration, **params)
    assert again.group == first.group and again.resumed and again.computed_positions == 1
    with h5py.File(scan_file, "r") as h5:
        assert h5[again.group]["Intensity"][()].tobytes() == good.tobytes()


def test_positions_never_measured_come_out_nan(tmp_path, small_scan):
    """An aborted scan: 10 of 12 frames; the translator pads, the process writes NaN there."""
    from pyscatter.translators import translate

    files = small_scan.write_images(tmp_path / "frames")[:10]
    poni = small_scan.write_poni(tmp_path / "g.poni")
    path = translate(
        [str(f) for f in files],
        tmp_path / "aborted.h5",
        format="images",
        grid="Y=3,X=4",
        poni=str(poni),
        incomplete="pad",
    )
    run_on_file(path, AzimuthalIntegration, npt=30, progress=False)
    ds = pyscatter.to_xarray(path, "AzimuthalIntegration")
    flat = ds["Intensity"].values.reshape(12, 30)
    assert np.isnan(flat[10:]).all() and np.isfinite(flat[:10]).all()
    ref = small_scan.integrator().integrate1d_ng(small_scan.frames[2, 1], 30, unit="q_nm^-1")
    np.testing.assert_allclose(flat[9], ref.intensity, rtol=1e-5, atol=1e-6 * ref.intensity.max())


def test_recorded_dummy_is_the_default(tmp_path, small_scan):
    from pyscatter.translators import translate

    files = small_scan.write_images(tmp_path / "frames")
    poni = small_scan.write_poni(tmp_path / "g.poni")
    path = translate(
        [str(f) for f in files],
        tmp_path / "d.h5",
        format="images",
        grid="Y=3,X=4",
        poni=str(poni),
        dummy=-1,
    )
    summary = run_on_file(path, AzimuthalIntegration, npt=30, progress=False)
    with h5py.File(path, "r") as h5:
        assert json.loads(h5[summary.group].attrs["parameters"])["dummy"] == -1
    ds = pyscatter.to_xarray(path, "AzimuthalIntegration")
    # the synthetic frames carry -1 in masked pixels: pyFAI with the same dummy is the reference
    ref = small_scan.integrator().integrate1d_ng(
        small_scan.frames[1, 1], 30, unit="q_nm^-1", dummy=-1
    )
    np.testing.assert_allclose(
        ds["Intensity"].values[1, 1], ref.intensity, rtol=1e-5, atol=1e-6 * ref.intensity.max()
    )


def test_monitor_and_transmission_normalisation_match_pyfai(scan_file, small_scan):
    monitor = np.linspace(0.5, 2.0, small_scan.n_positions)
    with h5py.File(scan_file, "r+") as h5:  # as a translator records a monitor per position
        h5["Measurement_000/Channel_000"].create_dataset("Monitor", data=monitor)
        raw_before = h5["Measurement_000/Channel_000/Raw_Data"][()]
    summary = run_on_file(
        scan_file,
        AzimuthalIntegration,
        npt=40,
        monitor="auto",
        transmission=0.5,
        error_model="poisson",
        max_mem_mb=1,  # several blocks: the monitor values are read ahead with their frames
        progress=False,
    )
    with h5py.File(scan_file, "r") as h5:
        assert h5[summary.group].attrs["positions_per_chunk"] < small_scan.n_positions // 2
    ds = pyscatter.to_xarray(scan_file, "AzimuthalIntegration")
    frames = small_scan.frames.reshape(-1, *small_scan.frame_shape)
    intensity = ds["Intensity"].values.reshape(len(frames), -1)
    sigma = ds["Intensity_Sigma"].values.reshape(len(frames), -1)
    for i in (0, 7, 11):
        ref = small_scan.integrator().integrate1d_ng(
            frames[i],
            40,
            unit="q_nm^-1",
            mask=small_scan.mask,
            error_model="poisson",
            normalization_factor=monitor[i] * 0.5,
        )
        np.testing.assert_allclose(
            intensity[i], ref.intensity, rtol=1e-5, atol=1e-6 * ref.intensity.max()
        )
        np.testing.assert_allclose(sigma[i], ref.sigma, rtol=1e-5, atol=1e-6 * ref.sigma.max())
    with h5py.File(scan_file, "r") as h5:  # a correction is a parameter: raw frames unchanged
        assert h5["Measurement_000/Channel_000/Raw_Data"][()].tobytes() == raw_before.tobytes()
    with pytest.raises(InputError, match="records no monitor"):
        from conftest import write_scan

        other = write_scan(scan_file.parent / "other.h5", small_scan)
        run_on_file(other, AzimuthalIntegration, npt=40, monitor="auto", progress=False)


# --------------------------------------------------------------------------- parameter checks


def test_resolve_method_uses_pyfai_registry():
    from pyFAI.method_registry import IntegrationMethod

    from pyscatter.processes.integration import resolve_method

    assert resolve_method("bbox,csr,cython", dim=1) == ["bbox", "csr", "cython"]
    assert resolve_method(("NO", "CSR", "cython"), dim=2) == ["no", "csr", "cython"]
    got = resolve_method("full,histogram,cython", dim=1, engine="pyfai")
    chosen = IntegrationMethod.select_one_available(("full", "histogram", "cython"), dim=1)
    assert got == [chosen.split_lower, chosen.algo_lower, chosen.impl_lower]
    with pytest.raises(InputError, match="the batched engine needs the csr algorithm"):
        resolve_method("bbox,histogram,cython", dim=1)
    with pytest.raises(InputError, match="the python implementation would not run"):
        resolve_method("bbox,csr,python", dim=1)
    assert resolve_method("bbox,csr,python", dim=1, allow_fallback=True) == [
        "bbox",
        "csr",
        "cython",
    ]
    with pytest.raises(InputError, match=r"method 'bbox': expected split,algorithm,implementation"):
        resolve_method("bbox", dim=1)


@pytest.mark.parametrize(
    ("npt", "npt_azim", "match"),
    [
        (True, None, "npt = True"),
        (1.5, None, "npt = 1.5"),
        (10**9, None, "npt = 1000000000"),
        (float("nan"), None, "npt = nan"),
        ("abc", None, "npt = 'abc'"),
        (100, 0, "npt_azim = 0"),
        (4000, 4000, "npt × npt_azim = 4000 × 4000"),
    ],
)
def test_check_bins_refuses(npt, npt_azim, match):
    from pyscatter.processes.integration import check_bins

    with pytest.raises(InputError, match=match):
        check_bins(npt, npt_azim)


def test_check_bins_accepts_whole_numbers():
    from pyscatter.processes.integration import check_bins

    assert check_bins(np.int64(300), 36.0) == (300, 36)


def test_azimuth_range_that_misses_an_off_centre_detector_is_refused():
    from pyFAI.detectors import Detector
    from pyFAI.integrator.azimuthal import AzimuthalIntegrator

    from pyscatter.processes.integration import check_ranges

    # beam 50 mm beyond the first row: the detector sees chi near +90 degrees only
    ai = AzimuthalIntegrator(
        dist=0.2,
        poni1=-0.05,
        poni2=0.0032,
        detector=Detector(1e-4, 1e-4, max_shape=(64, 64)),
        wavelength=1e-10,
    )
    chi = np.degrees(ai.center_array((64, 64), unit="chi_rad"))
    lo, hi = float(chi.min()), float(chi.max())
    assert check_ranges(ai, (64, 64), "q_nm^-1", None, (lo, hi)) == (None, [lo, hi])
    with pytest.raises(InputError, match=r"azimuth_range = \(-100, -80\) deg misses the detector"):
        check_ranges(ai, (64, 64), "q_nm^-1", None, (-100, -80))
    q = ai.center_array((64, 64), unit="q_nm^-1")
    assert q.min() > 0.1
    with pytest.raises(InputError, match=r"radial_range = \(0, 0.1\) q_nm\^-1 misses"):
        check_ranges(ai, (64, 64), "q_nm^-1", (0, 0.1), None)
