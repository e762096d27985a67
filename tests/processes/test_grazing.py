"""GrazingIncidence on a synthetic thin-film scan whose reflections are known in q: spot centres
at every incident angle, each position equal to pyFAI's FiberIntegrator with its own angle, a
wrong angle moves the spots, a geometry series, chi mode, reuse, bit-identical resume and block
sizes, CLI / pipeline / Python, the figure, bad input."""

from __future__ import annotations

import json
import math
import shutil

import h5py
import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from pyscatter import to_xarray
from pyscatter.datasets_gi import gi_scan
from pyscatter.errors import InputError
from pyscatter.kernels.grazing import gi_reference
from pyscatter.processes.base import run_on_file
from pyscatter.processes.grazing import GrazingIncidence
from tests.kernels.test_grazing import fit_spot

GRID = {"npt_ip": 600, "npt_oop": 450, "ip_range": [-6.0, 6.0], "oop_range": [0.5, 9.5]}


@pytest.fixture(scope="module")
def scan():
    return gi_scan()  # th = 0.10, 0.13, 0.16, 0.20 degrees


@pytest.fixture(scope="module")
def scan_file(tmp_path_factory, scan):
    return scan.translate(tmp_path_factory.mktemp("gi") / "gi.h5")


@pytest.fixture()
def path(tmp_path, scan_file):
    return shutil.copy(scan_file, tmp_path / "gi.h5")


def run(path, **params):
    params.setdefault("progress", False)
    params.setdefault("incident_angle", "th")
    return run_on_file(path, GrazingIncidence, **params)


def maps(path, group):
    with h5py.File(path, "r") as h5:
        return h5[group]["Intensity"][()]


def test_spot_centres_within_0p1_percent_at_every_incident_angle(path, scan):
    run(path, **GRID)
    ds = to_xarray(path, "gi")
    assert_allclose(ds["th"].values, scan.incident_deg)
    worst = 0.0
    for k in range(len(scan.incident_deg)):
        image = ds["Intensity"].values[k]
        for spot in scan.spots:
            q_xy, q_z = fit_spot(image, ds["q_xy"].values, ds["q_z"].values, spot)
            worst = max(worst, abs(q_xy / spot.q_xy - 1), abs(q_z / spot.q_z - 1))
    assert worst < 1e-3


def test_every_position_equals_pyfai_with_its_own_angle(path, scan):
    summary = run(path, **GRID)
    got = maps(path, summary.group).reshape(len(scan.frames), 450, 600)
    for k, angle in enumerate(scan.incident_deg):
        ref = gi_reference(
            scan.poni, scan.frames[k], incident_deg=angle, mask=scan.mask.astype(np.int8),
            **GRID,
        )  # fmt: skip
        reached = ref.count > 0
        assert_allclose(got[k][reached], ref.intensity[reached], rtol=1e-5)
        assert np.isnan(got[k][~reached]).all()
        other = gi_reference(  # the neighbouring position's angle: other pixels in the bins
            scan.poni, scan.frames[k], incident_deg=scan.incident_deg[k - 1],
            mask=scan.mask.astype(np.int8), **GRID,
        )  # fmt: skip
        differ = ~np.isclose(other.intensity, ref.intensity, rtol=1e-5)
        assert differ.sum() > 100


def test_a_wrong_incident_angle_puts_the_spots_elsewhere(path, scan):
    # 0.20 degrees taken for radians (11.46 degrees) by the integration of the same frame
    wrong = math.degrees(float(scan.incident_deg[-1]))
    with h5py.File(path, "r+") as h5:
        h5["Measurement_000/Channel_000"]["wrong_th"] = np.full(len(scan.frames), wrong)
    run(path, incident_angle="wrong_th", **GRID)
    image = to_xarray(path, "gi")["Intensity"].values[-1]
    ds = to_xarray(path, "gi")
    shifts = []
    for spot in scan.spots:
        q_xy, q_z = fit_spot(image, ds["q_xy"].values, ds["q_z"].values, spot)
        shifts.append(max(abs(q_xy / spot.q_xy - 1), abs(q_z / spot.q_z - 1)))
    assert max(shifts) > 0.01


def test_positions_of_one_angle_share_one_matrix_and_blocks_do_not_matter(
    path, tmp_path, monkeypatch
):
    import pyscatter.processes.grazing_worker as worker

    built = []
    original = worker.gi_integrator

    def counting(*args, **kwargs):
        built.append(kwargs["incident_deg"])
        return original(*args, **kwargs)

    monkeypatch.setattr(worker, "gi_integrator", counting)
    other = shutil.copy(path, tmp_path / "other.h5")
    for p in (path, other):
        with h5py.File(p, "r+") as h5:  # two angles, each at two positions
            h5["Measurement_000/Channel_000"]["pair_th"] = np.array([0.1, 0.2, 0.1, 0.2])
    grid = dict(GRID, npt_ip=120, npt_oop=90, incident_angle="pair_th")
    small = run(path, max_mem_mb=1.0, **grid)  # one position per block
    assert sorted(built) == [0.1, 0.2]  # two matrices for four positions
    whole = run(other, **grid)
    with h5py.File(path, "r") as h5, h5py.File(other, "r") as h5_other:
        assert int(h5[small.group].attrs["positions_per_chunk"]) == 1
        assert int(h5_other[whole.group].attrs["positions_per_chunk"]) == 4
    assert_array_equal(maps(path, small.group), maps(other, whole.group))


def test_reuse_and_bit_identical_resume(path):
    grid = dict(GRID, npt_ip=200, npt_oop=150)
    first = run(path, max_mem_mb=1.5, **grid)
    before = maps(path, first.group)
    again = run(path, **grid)
    assert again.reused and again.computed_positions == 0
    with h5py.File(path, "r+") as h5:  # a job killed while it wrote block 1
        group = h5[first.group]
        k = int(group.attrs["positions_per_chunk"])
        assert 1 <= k < 4
        group["completed_chunks"][1] = 0
        group["Intensity"][k] = 0.0
    resumed = run(path, **grid)
    assert resumed.resumed and resumed.computed_positions == k
    assert_array_equal(maps(path, first.group), before)


def test_cli_pipeline_and_python_record_the_same_step(path, tmp_path, scan):
    from pyscatter.cli import main
    from pyscatter.pipeline import run_pipeline

    png = tmp_path / "gi.png"
    code = main(["gi", str(path), "--incident-angle-dataset", "th", "--npt-ip", "200",
                 "--npt-oop", "150", "--ip-range", "-6", "6", "--oop-range", "0.5", "9.5",
                 "--plot", str(png), "--position", "3", "--spot", "-5.0", "4.0", "--no-progress"])  # fmt: skip
    assert code == 0 and png.stat().st_size > 10_000
    (tmp_path / "p.yaml").write_text(
        f"output: {path}\nexecution: {{progress: false}}\nsteps:\n"
        "  - gi: {incident_angle: th, npt_ip: 200, npt_oop: 150, ip_range: [-6, 6], "
        "oop_range: [0.5, 9.5]}\n"
    )
    assert run_pipeline(tmp_path / "p.yaml")[-1].action == "reused"
    python = run(path, npt_ip=200, npt_oop=150, ip_range=(-6, 6), oop_range=(0.5, 9.5))
    assert python.reused
    with h5py.File(path, "r") as h5:
        params = json.loads(h5[python.group].attrs["parameters"])
    assert params["incident_angle"]["position_dim"] == "th"
    assert params["sample_orientation"] == 1 and params["method"] == ["no", "csr", "cython"]


def test_a_number_for_every_position_and_the_union_grid(path, scan):
    summary = run(path, incident_angle=0.16, npt_ip=100, npt_oop=80)
    with h5py.File(path, "r") as h5:
        params = json.loads(h5[summary.group].attrs["parameters"])
    assert params["incident_angle"] == 0.16
    from pyscatter.kernels.grazing import gi_pixel_maps

    q_xy, q_z = gi_pixel_maps(scan.poni, scan.frame_shape, incident_deg=0.16)
    seen = ~scan.mask
    lo, hi = params["ip_range"]
    assert lo <= q_xy[seen].min() and hi >= q_xy[seen].max()
    assert hi - lo == pytest.approx(np.ptp(q_xy[seen]), rel=1e-5)
    low = params["oop_range"][0]
    assert q_z[seen].min() - 1e-5 * np.ptp(q_z[seen]) <= low <= q_z[seen].min()


def test_chi_mode_puts_the_spots_at_their_q_and_chi(path, scan):
    run(path, mode="chi", npt_ip=500, npt_oop=360, ip_range=(2.0, 10.0), oop_range=(-90, 90))
    ds = to_xarray(path, "gi")
    q, chi = ds["q"].values, ds["chi"].values
    for k in range(len(scan.frames)):
        image = np.nan_to_num(ds["Intensity"].values[k])
        for spot in scan.spots:
            q0 = math.hypot(spot.q_xy, spot.q_z)
            chi0 = math.degrees(math.atan2(spot.q_xy, spot.q_z))
            near = np.ix_(np.abs(chi - chi0) < 4, np.abs(q - q0) < 0.4)
            weights = np.clip(image[near] - 30, 0, None)
            q_c = (weights.sum(0) @ q[np.abs(q - q0) < 0.4]) / weights.sum()
            chi_c = (weights.sum(1) @ chi[np.abs(chi - chi0) < 4]) / weights.sum()
            assert abs(q_c / q0 - 1) < 3e-3 and abs(chi_c - chi0) < 0.3


def test_a_geometry_series_uses_each_positions_geometry(tmp_path, scan):
    from pyscatter.datasets_gi import gi_poni
    from pyscatter.translators import translate

    base = gi_poni(scan.frame_shape)
    dists = (base["dist"], 1.1 * base["dist"])
    parts = [gi_scan((0.12,), poni=dict(base, dist=d), rng=i) for i, d in enumerate(dists)]
    frames = np.concatenate([p.frames for p in parts])
    mask = parts[0].mask | parts[1].mask
    h5_path = translate(None, tmp_path / "series.h5", frames=frames, poni=base, mask=mask)
    with h5py.File(h5_path, "r+") as h5:  # as a translator records a distance series
        h5["Measurement_000/Channel_000/Geometry_dist"] = np.array(dists)
        h5["Measurement_000"].attrs["geometry_varies"] = json.dumps(["dist"])
        if "geometry" not in h5["Measurement_000"].attrs:
            h5["Measurement_000"].attrs["geometry"] = json.dumps(base)
    summary = run(h5_path, incident_angle=0.12, **GRID)
    ds = to_xarray(h5_path, "gi")
    for k, part in enumerate(parts):
        ref = gi_reference(
            part.poni, frames[k], incident_deg=0.12, mask=mask.astype(np.int8), **GRID
        )
        reached = ref.count > 0
        assert_allclose(ds["Intensity"].values[k][reached], ref.intensity[reached], rtol=1e-5)
        for spot in scan.spots:
            image = ds["Intensity"].values[k]
            q_xy, q_z = fit_spot(image, ds["q_xy"].values, ds["q_z"].values, spot)
            assert abs(q_xy / spot.q_xy - 1) < 2e-3 and abs(q_z / spot.q_z - 1) < 2e-3
    with h5py.File(h5_path, "r") as h5:
        params = json.loads(h5[summary.group].attrs["parameters"])
    assert params["geometry_series"]["keys"] == ["dist"]


def test_bad_input_is_named(path, tmp_path):
    with h5py.File(path, "r+") as h5:
        channel = h5["Measurement_000/Channel_000"]
        channel["short"] = np.array([0.1, 0.2])
        channel["nan_th"] = np.array([0.1, np.nan, 0.1, 0.1])
    with pytest.raises(InputError, match=r"short has shape \(2,\); expected one value per"):
        run(path, incident_angle="short")
    with pytest.raises(InputError, match=r"1 position\(s\) with an angle that is not a finite"):
        run(path, incident_angle="nan_th")
    with pytest.raises(InputError, match=r"not a finite number in \[0, 90\) degrees"):
        run(path, incident_angle=90.0)
    with pytest.raises(InputError, match=r"no such dataset .* nor is it a position dim \(th\)"):
        run(path, incident_angle="omega")
    with pytest.raises(InputError, match="sample_orientation = 9"):
        run(path, sample_orientation=9)
    with pytest.raises(InputError, match="always runs pyFAI's no,csr,cython"):
        run(path, method="bbox,csr,cython")
    with pytest.raises(InputError, match="incident_angle is required"):
        run(path, incident_angle=None)
    from pyscatter.datasets_saxs import saxs_map

    one_d = saxs_map((2, 2)).write(tmp_path / "saxs.h5")
    with h5py.File(one_d, "r") as h5:
        source = h5["Measurement_000/Channel_000/Raw_Data"]
        with pytest.raises(InputError, match="needs detector images .* 1-D spectra"):
            GrazingIncidence(source, incident_angle=0.1)


def test_tilt_orientation_sigma_and_normalisation_follow_pyfai(path, scan):
    grid = dict(GRID, npt_ip=200, npt_oop=150, ip_range=[-9.5, 9.5], oop_range=[-6.0, 6.0])
    summary = run(
        path, tilt_angle=1.5, sample_orientation=6, error_model="poisson", exposure_time=2.0,
        **grid,
    )  # fmt: skip
    with h5py.File(path, "r") as h5:
        group = h5[summary.group]
        got = group["Intensity"][()].reshape(-1, 150, 200)
        sigma = group["Intensity_Sigma"][()].reshape(-1, 150, 200)
        params = json.loads(group.attrs["parameters"])
    assert params["tilt_angle"] == 1.5 and params["sample_orientation"] == 6
    for k, angle in enumerate(scan.incident_deg):
        ref = gi_reference(
            scan.poni, scan.frames[k], incident_deg=angle, tilt_deg=1.5, sample_orientation=6,
            mask=scan.mask.astype(np.int8), error_model="poisson", normalization_factor=2.0,
            **grid,
        )  # fmt: skip
        reached = ref.count > 0
        assert reached.mean() > 0.2
        assert_allclose(got[k][reached], ref.intensity[reached], rtol=1e-5)
        assert_allclose(sigma[k][reached], ref.sigma[reached], rtol=1e-5)


def test_parallel_workers_give_the_serial_bits(path, tmp_path):
    other = shutil.copy(path, tmp_path / "other.h5")
    grid = dict(GRID, npt_ip=120, npt_oop=90, error_model="poisson")
    serial = run(path, **grid)
    parallel = run(other, n_jobs=2, max_mem_mb=1.0, **grid)  # workers read the angles again
    with h5py.File(path, "r") as h5, h5py.File(other, "r") as h5_other:
        for name in ("Intensity", "Intensity_Sigma"):
            assert_array_equal(h5[serial.group][name][()], h5_other[parallel.group][name][()])
