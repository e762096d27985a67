"""The detector set-up (dark, flat, dummy, normalisation …) is applied alike by integrate,
profiles and sectors, each compared with pyFAI called directly on the frames."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

from pyscatter.errors import InputError
from pyscatter.processes.base import run_on_file
from pyscatter.processes.detector import DetectorSetup
from pyscatter.processes.integration import AzimuthalIntegration
from pyscatter.processes.profiles import AzimuthalProfiles
from pyscatter.processes.sectors import SectorIntegration

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "data"))
import make_legacy  # noqa: E402  (a seeded scan with a Monitor per position)

RAW = "Measurement_000/Channel_000/Raw_Data"
METHOD = ("bbox", "csr", "cython")
TRANSMISSION, EXPOSURE = 0.8, 2.0


@pytest.fixture(scope="module")
def scan_file(tmp_path_factory):
    return make_legacy.write_raw(tmp_path_factory.mktemp("detector") / "scan.h5")


@pytest.fixture(scope="module")
def corrections():
    rng = np.random.default_rng(5)
    shape = make_legacy.FRAME_SHAPE
    return {
        "dark": rng.uniform(0.0, 2.0, shape).astype(np.float32),
        "flat": rng.uniform(0.8, 1.2, shape).astype(np.float32),
        "dummy": -1.0,  # the masked pixels of the scan: found as dummies, not by the mask
        "delta_dummy": 0.5,
        "use_file_mask": False,
        "polarization_factor": 0.99,
        "monitor": "auto",
        "transmission": TRANSMISSION,
        "exposure_time": EXPOSURE,
        "error_model": "poisson",
        "progress": False,
    }


def _reference_ai():
    ai = make_legacy.scan().integrator()
    ai.empty = np.nan  # profiles and sectors leave empty bins NaN
    return ai


def _frames_and_factors():
    s = make_legacy.scan()
    frames = s.frames.reshape(-1, *s.frame_shape)
    return frames, make_legacy.monitor() * TRANSMISSION * EXPOSURE


def _pyfai_options(corrections, factor):
    c = corrections
    return dict(
        unit="q_nm^-1",
        method=METHOD,
        dark=c["dark"],
        flat=c["flat"],
        dummy=c["dummy"],
        delta_dummy=c["delta_dummy"],
        polarization_factor=c["polarization_factor"],
        correctSolidAngle=True,
        error_model="poisson",
        normalization_factor=float(factor),
    )


def _results(path, group):
    with h5py.File(path, "r") as h5:
        g = h5[group]
        return g["Intensity"][()], g["Intensity_Sigma"][()], json.loads(g.attrs["parameters"])


def _assert_close(got, ref):
    empty = np.isnan(ref)
    np.testing.assert_array_equal(np.isnan(got), empty)
    # float32 sums in the batched kernel vs pyFAI's float64
    np.testing.assert_allclose(got[~empty], ref[~empty], rtol=2e-5)


def test_sectors_apply_dark_flat_dummy_and_normalisation_as_pyfai(tmp_path, scan_file, corrections):
    path = Path(scan_file)
    work = tmp_path / "s.h5"
    work.write_bytes(path.read_bytes())
    summary = run_on_file(work, SectorIntegration, n_sectors=2, npt=40, **corrections)
    intensity, sigma, params = _results(work, summary.group)
    assert params["dark_sha256"] and params["normalization_datasets"]
    lo, hi = params["radial_range"]
    ai = _reference_ai()
    frames, factors = _frames_and_factors()
    for i, (frame, factor) in enumerate(zip(frames, factors, strict=True)):
        res = ai.integrate1d_ng(
            frame,
            40,
            radial_range=(lo, hi),
            azimuth_range=(-90.0, 90.0),  # the sector centred at 0
            **_pyfai_options(corrections, factor),
        )
        _assert_close(intensity[i].reshape(2, 40)[1], res.intensity)
        _assert_close(sigma[i].reshape(2, 40)[1], res.sigma)


def test_profiles_apply_dark_flat_dummy_and_normalisation_as_pyfai(
    tmp_path, scan_file, corrections
):
    work = tmp_path / "p.h5"
    work.write_bytes(Path(scan_file).read_bytes())
    summary = run_on_file(
        work,
        AzimuthalProfiles,
        q=0.8,
        half_width=0.06,
        npt_azim=36,
        n_radial=1,
        min_coverage=0.0,
        **corrections,
    )
    intensity, sigma, params = _results(work, summary.group)
    ring = params["rings"][0]
    step = ring["q_max"] - ring["q_min"]  # one sub-bin, with a guard bin on each side
    ai = _reference_ai()
    frames, factors = _frames_and_factors()
    for i, (frame, factor) in enumerate(zip(frames, factors, strict=True)):
        res = ai.integrate2d_ng(
            frame,
            3,
            36,
            radial_range=(ring["q_min"] - step, ring["q_max"] + step),
            azimuth_range=(-180.0, 180.0),
            **_pyfai_options(corrections, factor),
        )
        _assert_close(intensity[i], np.asarray(res.intensity)[:, 1])
        _assert_close(sigma[i], np.asarray(res.sigma)[:, 1])


def test_one_full_sector_is_the_integration_with_the_same_set_up(tmp_path, scan_file, corrections):
    work = tmp_path / "both.h5"
    work.write_bytes(Path(scan_file).read_bytes())
    sectors = run_on_file(work, SectorIntegration, n_sectors=1, npt=40, **corrections)
    integrate = run_on_file(work, AzimuthalIntegration, npt=40, **corrections)
    s_i, s_s, s_params = _results(work, sectors.group)
    i_i, i_s, i_params = _results(work, integrate.group)
    for key in ("dummy", "dark_sha256", "flat_sha256", "normalization_sha256", "method"):
        assert s_params[key] == i_params[key], key
    both = np.isfinite(i_i) & (i_i != 0)
    np.testing.assert_allclose(s_i[both], i_i[both], rtol=2e-5)
    np.testing.assert_allclose(s_s[both], i_s[both], rtol=2e-5)


def test_the_recorded_dummy_is_the_default_everywhere(tmp_path, scan_file):
    work = tmp_path / "dummy.h5"
    work.write_bytes(Path(scan_file).read_bytes())
    with h5py.File(work, "r+") as h5:
        h5["Measurement_000"].attrs["dummy"] = -1.0
        h5["Measurement_000"].attrs["delta_dummy"] = 0.5
    groups = [
        run_on_file(work, AzimuthalIntegration, npt=40, progress=False).group,
        run_on_file(work, AzimuthalProfiles, q=0.8, half_width=0.06, progress=False).group,
        run_on_file(work, SectorIntegration, npt=40, progress=False).group,
    ]
    for group in groups:
        with h5py.File(work, "r") as h5:
            params = json.loads(h5[group].attrs["parameters"])
        assert (params["dummy"], params["delta_dummy"]) == (-1.0, 0.5), group


def test_the_geometry_is_built_once(scan_file, monkeypatch):
    import pyscatter.processes.detector as detector

    calls = []
    real = detector.integrator_from_config

    def counting(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(detector, "integrator_from_config", counting)
    with h5py.File(scan_file, "r") as h5:
        setup = DetectorSetup.from_options(h5[RAW], dim=1)
    # once: by the set-up, or (its config remembered in the matrix cache) on first use
    assert setup.integrator is setup.integrator
    assert len(calls) == 1
    assert json.dumps(setup.integrator.get_config(), sort_keys=True) == json.dumps(
        setup.geometry, sort_keys=True
    )


@pytest.mark.parametrize(
    ("options", "match"),
    [
        (
            {"polarization_factor": 1.5},
            r"polarization_factor = 1.5; expected a finite number in \[-1, 1\]",
        ),
        ({"error_model": "gauss"}, "unsupported error_model 'gauss'"),
        (
            {"dark": np.zeros((3, 3))},
            r"dark has shape \(3, 3\); the detector frames are \(64, 64\)",
        ),
        ({"method": "bbox,histogram,cython"}, "the batched engine needs the csr algorithm"),
        ({"exposure_time": 0}, "exposure_time = 0; expected a finite number > 0"),
        ({"dummy": float("nan")}, "dummy = nan; expected a finite number"),
        ({"polarisation": 0.9}, "unexpected keyword argument .polarisation."),
    ],
)
def test_one_validation_for_every_process(scan_file, options, match):
    with h5py.File(scan_file, "r") as h5:
        for process, extra in (
            (AzimuthalIntegration, {}),
            (AzimuthalProfiles, {"q": 0.8, "half_width": 0.06}),
            (SectorIntegration, {}),
        ):
            with pytest.raises((InputError, TypeError), match=match):
                process(h5[RAW], **extra, **options)
