"""QSpaceMap: the q_map kernel called directly (bit-identical per position), a known ring at its
radius, caved frames as the source, the figure, reuse, resume, bad input."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest
from conftest import write_scan
from numpy.testing import assert_array_equal

from pyscatter import datasets, to_xarray
from pyscatter.errors import InputError
from pyscatter.geometry import integrator_from_config, q_map
from pyscatter.processes.base import run_on_file
from pyscatter.processes.caving import Caving
from pyscatter.processes.qspace import QSpaceMap


def run(path, process=QSpaceMap, **params):
    params.setdefault("progress", False)
    return run_on_file(path, process, **params)


def maps(path, group):
    with h5py.File(path, "r") as h5:
        return h5[f"{group}/Intensity"][()]


def recorded_integrator(path):
    with h5py.File(path, "r") as h5:
        return integrator_from_config(json.loads(h5["Measurement_000"].attrs["geometry"]))


def test_maps_are_the_kernel_called_on_each_frame(scan_file, small_scan):
    options = {"npt": [48, 64], "director_deg": 30.0, "polarization_factor": 0.99}
    summary = run(scan_file, max_mem_mb=3, **options)  # several blocks
    got = maps(scan_file, summary.group)
    ai = recorded_integrator(scan_file)
    frames = small_scan.frames.reshape(-1, *small_scan.frame_shape)
    with h5py.File(scan_file, "r") as h5:
        group = h5[summary.group]
        assert int(group.attrs["positions_per_chunk"]) < len(frames)
        q_max = json.loads(group.attrs["parameters"])["q_max"]
    for i, frame in enumerate(frames):
        ref = q_map(frame, ai, npt=(48, 64), director_deg=30.0, mask=small_scan.mask,
                    polarization_factor=0.99)  # fmt: skip
        assert_array_equal(got[i], ref.intensity.astype(np.float32).ravel())
    assert q_max == ref.q_par_edges[-1]  # the kernel's default, recorded
    ds = to_xarray(scan_file, "qmap")
    assert ds["Intensity"].dims == ("Y", "X", "q_perp", "q_par")
    assert_array_equal(ds["q_perp"].values, ref.q_perp)
    assert_array_equal(ds["q_par"].values, ref.q_par)
    assert ds["q_par"].attrs["units"] == "1/nm"


def test_a_known_ring_lands_at_its_radius_within_a_bin(tmp_path):
    from pyscatter.plot.qspace import circle_radius

    q0 = 1.0
    scan = datasets.make_scan((2,), kappa=0.0, director_deg=0.0, rings=[datasets.Ring(q0, 0.02, 500.0)],
                              background=None, noise=False)  # fmt: skip
    path = write_scan(tmp_path / "ring.h5", scan)
    summary = run(path, npt=201, q_max=1.6)
    image = maps(path, summary.group)[0].reshape(201, 201)
    ds = to_xarray(path, "QSpaceMap")
    qq_perp, qq_par = np.meshgrid(ds["q_perp"].values, ds["q_par"].values, indexing="ij")
    radius = np.hypot(qq_perp, qq_par)
    shell = np.isfinite(image) & (np.abs(radius - q0) < 0.1)
    centroid = float((radius[shell] * image[shell]).sum() / image[shell].sum())
    expected = float(circle_radius(q0, scan.poni["wavelength"], "q_nm^-1"))
    bin_width = 3.2 / 201
    assert abs(centroid - expected) < bin_width
    ring_bins = radius[np.isfinite(image) & (image > 0.5 * np.nanmax(image))]
    assert abs(float(np.median(ring_bins)) - expected) < bin_width


def test_caved_frames_as_source_fill_the_gap_bins(scan_file):
    caved = run(scan_file, Caving)
    raw = run(scan_file, npt=96)
    filled = run(scan_file, npt=96, source=f"{caved.group}/Caved_Data")
    assert filled.group.startswith(caved.group + "/Caved_Data-QSpaceMap_")
    ds = to_xarray(scan_file, "QSpaceMap")
    radius = np.hypot(*np.meshgrid(ds["q_perp"].values, ds["q_par"].values, indexing="ij"))
    inner = ((radius > 0.2) & (radius < 1.0)).ravel()  # on the detector all around the beam
    empty_raw = np.isnan(maps(scan_file, raw.group)[:, inner]).sum()
    empty_caved = np.isnan(maps(scan_file, filled.group)[:, inner]).sum()
    assert empty_raw > 0 and empty_caved < 0.2 * empty_raw


def test_reuse_and_bit_identical_resume(scan_file):
    first = run(scan_file, npt=64, max_mem_mb=3)
    before = maps(scan_file, first.group)
    again = run(scan_file, npt=[64, 64])  # the same parameters, written otherwise
    assert again.reused and again.computed_positions == 0
    with h5py.File(scan_file, "r+") as h5:
        group = h5[first.group]
        k = int(group.attrs["positions_per_chunk"])
        group["completed_chunks"][1] = 0
        group["Intensity"][k] = 0.0
    resumed = run(scan_file, npt=64)
    assert resumed.resumed and resumed.computed_positions == k
    assert_array_equal(maps(scan_file, first.group), before)


def test_figure_draws_q_and_hkl_circles(scan_file):
    from pyscatter.plot.qspace import plot_qspace

    summary = run(scan_file, npt=64)
    fig = plot_qspace(
        scan_file, (1, 2), circles=[0.45, 0.8], hkl=[(1, 0, 0)], lattice={"a": 2 * np.pi}
    )  # fmt: skip  (100 at q = 10 nm^-1: off the map)
    ax = fig.axes[0]
    assert len(ax.lines) == 3 and "q_par" in ax.get_xlabel()
    assert ax.get_title() == "q-space map, position 6"
    with pytest.raises(InputError, match="expected a flat index in \\[0, 12\\)"):
        plot_qspace(scan_file, 12, group=summary.group)
    with pytest.raises(InputError, match="circles must be finite q values > 0"):
        plot_qspace(scan_file, 0, circles=[-1.0])


def test_bad_input_is_named(scan_file, tmp_path, small_scan):
    with pytest.raises(InputError, match="npt = 0"):
        run(scan_file, npt=0)
    with pytest.raises(InputError, match="npt = \\[1, 2, 3\\]"):
        run(scan_file, npt=[1, 2, 3])
    with pytest.raises(InputError, match="unsupported unit '2th_deg'"):
        run(scan_file, unit="2th_deg")
    with pytest.raises(InputError, match="q_max = -1"):
        run(scan_file, q_max=-1)
    with pytest.raises(InputError, match="director_deg = nan"):
        run(scan_file, director_deg=float("nan"))
    with pytest.raises(InputError, match="polarization_factor = 2"):
        run(scan_file, polarization_factor=2)
    from pyscatter.io.raw import MeasurementSpec, write_measurement
    from pyscatter.io.usid import Dim

    rows, cols = small_scan.frame_shape
    spec = MeasurementSpec(
        position_dims=[Dim("X", "um", np.arange(12.0))],
        spec_dims=[Dim("Row", "pixel", np.arange(rows)), Dim("Col", "pixel", np.arange(cols))],
        dtype=small_scan.frames.dtype,
        attrs={"translator": "tests"},
    )
    frames = small_scan.frames.reshape(-1, rows, cols)
    bare = write_measurement(tmp_path / "bare.h5", spec, iter(frames))
    with pytest.raises(InputError, match="no geometry recorded.*--poni FILE"):
        run(bare)
