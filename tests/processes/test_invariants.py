"""SaxsInvariants on maps of analytic SAXS curves: the kernel's values, truths, CLI, pipeline,
reuse, resume, q in 1/A, bad parameters."""

from __future__ import annotations

import json
import shutil

import h5py
import numpy as np
import pytest
from numpy.testing import assert_array_equal

from pyscatter import to_xarray
from pyscatter.errors import InputError
from pyscatter.kernels.invariants import InvariantStatus, saxs_invariants
from pyscatter.processes.base import run_on_file
from pyscatter.processes.invariants import SaxsInvariants

PARAMS = {"qrg_max": 0.6, "guinier_extrapolation": True, "porod_extrapolation": True}


@pytest.fixture(scope="module")
def saxs():
    from pyscatter.datasets_saxs import saxs_map

    return saxs_map((3, 4), polydispersity=0.1, q=np.linspace(0.0025, 6.0, 2400), rng=3)


@pytest.fixture(scope="module")
def saxs_file(tmp_path_factory, saxs):
    return saxs.write(tmp_path_factory.mktemp("saxs") / "saxs.h5")


@pytest.fixture()
def path(tmp_path, saxs_file):
    return shutil.copy(saxs_file, tmp_path / "saxs.h5")


def run(path, **params):
    params.setdefault("progress", False)
    return run_on_file(path, SaxsInvariants, **params)


def values(path, name="invariants"):
    ds = to_xarray(path, name).squeeze("value")
    return {k: ds[k].values for k in ds.data_vars}


def test_results_are_the_kernel_and_meet_the_truths(path, saxs):
    summary = run(path, max_mem_mb=0.3, **PARAMS)  # several blocks
    got = values(path)
    n = saxs.size.size
    ref = saxs_invariants(
        saxs.q, saxs.intensity.reshape(n, -1), saxs.sigma.reshape(n, -1), **PARAMS
    )
    for name, field in (("Rg", "rg"), ("invariant", "invariant"), ("status", "status")):
        assert_array_equal(got[name].ravel(), getattr(ref, field))
    assert (got["status"] == InvariantStatus.OK).all()
    assert np.abs(got["Rg"] / saxs.rg - 1).max() < 0.01
    assert np.abs(got["invariant"] / saxs.invariant - 1).max() < 0.01
    assert np.abs(got["porod_constant"] / saxs.porod_constant - 1).max() < 0.03
    with h5py.File(path, "r") as h5:
        group = h5[summary.group]
        params = json.loads(group.attrs["parameters"])
        assert params["sigma"] == "dataset" and params["porod_range"] == [4.500625, 6.0]
        assert params["guinier_extrapolation"] and params["q_range"] == [0.0025, 6.0]
        codes = json.loads(group.attrs["status_codes"])
        assert codes["NEGATIVE_INTENSITY"] == InvariantStatus.NEGATIVE_INTENSITY
        assert group["Rg"].attrs["units"] == "nm"
        assert group["invariant"].attrs["units"] == "counts*(1/nm)^3"


def test_reuse_and_bit_identical_resume(path):
    first = run(path, max_mem_mb=1.0, **PARAMS)
    before = values(path)
    again = run(path, **PARAMS)
    assert again.reused and again.computed_positions == 0
    with h5py.File(path, "r+") as h5:  # a job killed while it wrote block 1
        group = h5[first.group]
        k = int(group.attrs["positions_per_chunk"])
        assert 1 < k < 6
        group["completed_chunks"][1] = 0  # positions k ... 2k - 1
        group["Rg"][k : k + 2] = np.nan
    resumed = run(path, **PARAMS)
    assert resumed.resumed and 0 < resumed.computed_positions < 12
    after = values(path)
    for name in before:
        assert_array_equal(after[name], before[name])


def test_cli_and_pipeline_record_the_same_step(path, tmp_path):
    from pyscatter.cli import main
    from pyscatter.pipeline import run_pipeline

    code = main(["invariants", str(path), "--q-range", "0.0025", "5", "--qrg-max", "0.6",
                 "--guinier-extrapolation", "--no-progress"])  # fmt: skip
    assert code == 0
    (tmp_path / "p.yaml").write_text(
        f"output: {path}\nexecution: {{progress: false}}\nsteps:\n"
        "  - invariants: {q_range: [0.0025, 5], qrg_max: 0.6, guinier_extrapolation: true}\n"
    )
    steps = run_pipeline(tmp_path / "p.yaml")
    assert steps[-1].action == "reused"
    ds = to_xarray(path, "SaxsInvariants")
    assert (ds["status"].values == 0).all()


def test_q_in_inverse_angstrom_gives_angstrom(tmp_path, saxs):
    from pyscatter.io.raw import MeasurementSpec, write_measurement
    from pyscatter.io.usid import Dim

    n = saxs.size.size
    spec = MeasurementSpec(
        position_dims=[Dim("X", "mm", np.arange(float(n)))],
        spec_dims=[Dim("q", "1/A", saxs.q / 10)],
        dtype=np.float64,
        quantity="Intensity",
        units="counts",
    )
    p = write_measurement(tmp_path / "a.h5", spec, iter(saxs.intensity.reshape(n, -1)))
    run(p, qrg_max=0.6, sigma="poisson")
    ds = to_xarray(p, "invariants").squeeze("value")
    assert ds["Rg"].attrs["units"] == "A"
    assert np.abs(ds["Rg"].values / (10 * saxs.rg.ravel()) - 1).max() < 0.01
    assert np.isfinite(ds["invariant_sigma"].values).all()  # poisson errors


def test_bad_parameters_are_named(path):
    with pytest.raises(InputError, match="q_range \\[7, 8\\] misses the q axis"):
        run(path, q_range=[7, 8])
    with pytest.raises(InputError, match="guinier_range must be two numbers"):
        run(path, guinier_range=0.1)
    with pytest.raises(InputError, match="qrg_max must be a positive number"):
        run(path, qrg_max=0)
    with pytest.raises(InputError, match="unsupported sigma 'gauss'"):
        run(path, sigma="gauss")
    with pytest.raises(InputError, match="holds 2 bins"):
        run(path, q_range=[0.0025, 0.005])
