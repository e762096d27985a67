"""Scans whose geometry changes with the position (issue 15): energy and distance series.

The translator records each image's ESRF header geometry per position; integration uses each
position's own geometry on one common q axis. References: pyFAI called directly with each
frame's geometry, and the generator's ring positions (q = 2π/d, the same at every energy and
distance).
"""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest
from numpy.testing import assert_array_equal
from scipy.optimize import curve_fit

from pyscatter.datasets_geometry import distance_series, energy_series
from pyscatter.datasets_model import build_integrator
from pyscatter.errors import InputError
from pyscatter.io.geometry_series import energy_to_wavelength, read_series
from pyscatter.processes.base import run_on_file
from pyscatter.processes.integration import AzimuthalIntegration
from pyscatter.processes.profiles import AzimuthalProfiles
from pyscatter.translators import translate

NPT = 400
PARAMS = {"npt": NPT, "error_model": "poisson", "polarization_factor": 0.99}
METHOD = ("bbox", "csr", "cython")


@pytest.fixture(scope="module")
def energy():
    return energy_series()


@pytest.fixture(scope="module")
def distance():
    return distance_series()


def _translate(scan, folder):
    paths = scan.write_images(folder / "images")
    out = folder / "series.h5"
    translate(paths, out, format="images", motors=scan.dim, mask=folder / "images" / "mask.edf")
    return out


@pytest.fixture
def energy_file(tmp_path, energy):
    return _translate(energy, tmp_path)


@pytest.fixture
def distance_file(tmp_path, distance):
    return _translate(distance, tmp_path)


def _results(path, group):
    with h5py.File(path, "r") as h5:
        g = h5[group]
        return {
            "Intensity": g["Intensity"][()],
            "Intensity_Sigma": g["Intensity_Sigma"][()],
            "q": g["Spectroscopic_Values"][0],
            "parameters": json.loads(g.attrs["parameters"]),
        }


def _ring_centre(q, intensity, ring):
    sel = (np.abs(q - ring.q_nm) < 4 * ring.width_nm) & np.isfinite(intensity)
    x, y = q[sel], intensity[sel]

    def model(x, a, c, s, b0, b1):
        return a * np.exp(-0.5 * ((x - c) / s) ** 2) + b0 + b1 * (x - ring.q_nm)

    p0 = [y.max() - y.min(), ring.q_nm, ring.width_nm, y.min(), 0.0]
    return curve_fit(model, x, y, p0=p0)[0][1]


def test_translation_records_the_geometry_of_every_position(energy_file, energy):
    with h5py.File(energy_file, "r") as h5:
        raw = h5["Measurement_000/Channel_000/Raw_Data"]
        series = read_series(raw)
        assert json.loads(h5["Measurement_000"].attrs["geometry_varies"]) == ["wavelength"]
        dset = h5["Measurement_000/Channel_000/Geometry_wavelength"]
        assert dset.attrs["units"] == "m" and dset.shape == (len(energy.values),)
    expected = energy_to_wavelength(energy.values)
    np.testing.assert_allclose(series.values["wavelength"], expected, rtol=1e-12)
    first, index = series.groups()
    assert index.tolist() == list(range(len(energy.values)))  # five distinct geometries


def test_distance_series_records_distance_and_beam_centre(distance_file, distance):
    with h5py.File(distance_file, "r") as h5:
        series = read_series(h5["Measurement_000/Channel_000/Raw_Data"])
    assert series.keys == ["dist", "poni1"]
    np.testing.assert_allclose(series.values["dist"], distance.values * 1e-3, rtol=1e-12)
    np.testing.assert_allclose(
        series.values["poni1"], [p["poni1"] for p in distance.ponis], rtol=1e-9
    )


@pytest.mark.parametrize("which", ["energy", "distance"])
def test_each_position_is_integrated_with_its_own_geometry(which, request):
    scan = request.getfixturevalue(which)
    path = request.getfixturevalue(f"{which}_file")
    summary = run_on_file(path, AzimuthalIntegration, **PARAMS)
    res = _results(path, summary.group)
    radial_range = res["parameters"]["radial_range"]
    assert res["parameters"]["geometry_series"]["n_geometries"] == len(scan.values)
    shifts = []
    for k, poni in enumerate(scan.ponis):
        # pyFAI itself, with this frame's geometry, on the recorded common range
        ref = build_integrator(poni).integrate1d_ng(
            scan.frames[k],
            NPT,
            unit="q_nm^-1",
            radial_range=radial_range,
            mask=scan.mask,
            method=METHOD,
            polarization_factor=0.99,
            error_model="poisson",
        )
        assert_array_equal(res["q"], ref.radial)
        ours = res["Intensity"][k]
        reached = np.isfinite(ours)
        np.testing.assert_allclose(ours[reached], ref.intensity[reached], rtol=2e-5, atol=1e-4)
        assert np.all(ref.intensity[~reached] == 0)  # NaN only where pyFAI has no pixel
        for ring in scan.rings:  # a Bragg ring of fixed d at the same q: within 0.05 %
            centre = _ring_centre(res["q"], ours, ring)
            assert abs(centre / ring.q_nm - 1) < 5e-4, (k, ring.q_nm, centre)
            shifts.append(round(float(centre / ring.q_nm - 1), 6))
    # the same frames integrated with the first frame's geometry put the rings elsewhere
    wrong = build_integrator(scan.ponis[0]).integrate1d_ng(
        scan.frames[-1], NPT, unit="q_nm^-1", radial_range=radial_range, mask=scan.mask
    )
    ring = scan.rings[0]
    window = np.abs(wrong.radial - ring.q_nm) < 0.3
    peak = wrong.radial[window][np.argmax(wrong.intensity[window])]
    assert abs(peak / ring.q_nm - 1) > 0.05  # the ring is elsewhere: the test can fail
    request.node.user_properties.append((f"{which} series: ring centre / truth - 1", shifts))


def test_a_cake_uses_each_geometry_on_the_whole_circle(energy_file, energy):
    summary = run_on_file(energy_file, AzimuthalIntegration, npt=120, npt_azim=36)
    with h5py.File(energy_file, "r") as h5:
        g = h5[summary.group]
        params = json.loads(g.attrs["parameters"])
        cake = g["Intensity"][()].reshape(len(energy.values), 36, 120)
    assert params["azimuth_range"] == [-180.0, 180.0]
    for k in (0, len(energy.values) - 1):
        ref = build_integrator(energy.ponis[k]).integrate2d_ng(
            energy.frames[k],
            120,
            36,
            unit="q_nm^-1",
            radial_range=params["radial_range"],
            azimuth_range=(-180, 180),
            mask=energy.mask,
            method=METHOD,
        )
        reached = np.isfinite(cake[k])
        np.testing.assert_allclose(cake[k][reached], ref.intensity[reached], rtol=2e-5, atol=1e-4)


def test_one_matrix_per_distinct_geometry_and_bit_identical_resume(
    energy_file, tmp_path, monkeypatch
):
    from pyscatter.io import matrix_cache

    monkeypatch.setenv("PYSCATTER_CACHE", str(tmp_path / "cache"))
    first = run_on_file(energy_file, AzimuthalIntegration, max_mem_mb=0.6, **PARAMS)
    stored = list(matrix_cache.directory().glob("*"))
    # five energies: five builds (pyFAI's inputs + CSR matrix + the prepared integrator each),
    # and the set-up's method and geometry (pyscatter.processes.setup_cache)
    assert len(stored) == 3 * 5 + 2
    before = _results(energy_file, first.group)
    with h5py.File(energy_file, "r+") as h5:  # a job killed while it wrote block 1
        group = h5[first.group]
        k = int(group.attrs["positions_per_chunk"])
        assert k < 5
        group["completed_chunks"][1] = 0
        group["Intensity"][k : k + 1] = 0
    resumed = run_on_file(energy_file, AzimuthalIntegration, **PARAMS)
    assert resumed.resumed and 0 < resumed.computed_positions < 5
    after = _results(energy_file, first.group)
    assert_array_equal(after["Intensity"], before["Intensity"])
    assert_array_equal(after["Intensity_Sigma"], before["Intensity_Sigma"])
    again = run_on_file(energy_file, AzimuthalIntegration, **PARAMS)
    assert again.reused and again.computed_positions == 0


def test_steps_of_one_geometry_refuse_a_series(energy_file):
    from pyscatter.processes.caving import Caving
    from pyscatter.processes.qspace import QSpaceMap

    with pytest.raises(InputError, match=r"changes with the position \(wavelength"):
        run_on_file(energy_file, AzimuthalProfiles, q=[0.55], half_width=0.05)
    for process in (Caving, QSpaceMap):
        with pytest.raises(InputError, match=r"changes with the position \(wavelength"):
            run_on_file(energy_file, process)


def test_a_stack_of_two_detectors_is_refused(tmp_path, energy):
    paths = energy.write_images(tmp_path / "images")
    import fabio

    img = fabio.open(str(paths[2]))
    img.header["PSize_1"] = "0.000100"
    img.write(str(paths[2]))
    with pytest.raises(InputError, match=r"frame 2 of .*the detector .*differs"):
        translate(paths, tmp_path / "x.h5", format="images", motors="Energy")


def test_peaks_on_a_2theta_axis_of_an_energy_series_are_refused(energy_file):
    from pyscatter.processes.peaks import PeakFit

    run_on_file(energy_file, AzimuthalIntegration, npt=200, unit="2th_deg")
    with pytest.raises(InputError, match="every position has its own wavelength"):
        run_on_file(energy_file, PeakFit, windows=[[0.5, 1.5]])
