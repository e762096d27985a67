"""``pyscatter cave`` and ``pyscatter qmap`` through ``main([...])``, and the same steps in a
pipeline where ``source: cave`` names the caved frames."""

from __future__ import annotations

import json
import shutil

import h5py
import numpy as np
import pytest
from conftest import write_scan
from numpy.testing import assert_array_equal

from pyscatter import datasets
from pyscatter.cli import main
from pyscatter.geometry import beam_center
from pyscatter.pipeline import run_pipeline
from pyscatter.processes.base import run_on_file
from pyscatter.processes.caving import Caving


@pytest.fixture(scope="module")
def scan():
    return datasets.oriented_map((2, 2), rng=3, frame_shape=(96, 112))


@pytest.fixture(scope="module")
def base_file(tmp_path_factory, scan):
    return write_scan(tmp_path_factory.mktemp("cli") / "scan.h5", scan)


@pytest.fixture()
def scan_file(tmp_path, base_file):
    return shutil.copy(base_file, tmp_path / "scan.h5")


def test_cave_then_integrate_the_printed_source(scan_file, scan, capsys):
    row, col = beam_center(scan.integrator())
    args = ["cave", str(scan_file), "--order", "0", "--n-iter", "2", "--center", str(col), str(row)]
    assert main([*args, "--no-progress"]) == 0
    source = capsys.readouterr().out.strip().rsplit(":", 1)[-1]
    assert source.endswith("Raw_Data-Caving_000/Caved_Data")
    api = run_on_file(scan_file, Caving, order=0, n_iter=2, center=(row, col), progress=False)
    assert api.reused  # the command recorded the same parameters
    with h5py.File(scan_file, "r") as h5:
        params = json.loads(h5[api.group].attrs["parameters"])
    assert params["center"] == [row, col] and params["center_from"] == "given"
    assert (
        main(["integrate", str(scan_file), "--source", source, "--npt", "80", "--no-progress"]) == 0
    )
    group = capsys.readouterr().out.strip().rsplit(":", 1)[-1]
    assert group.startswith(source + "-AzimuthalIntegration_")


def test_cave_refuses_bad_centres_with_exit_2(scan_file, capsys):
    assert main(["cave", str(scan_file), "--center", "1e4", "5", "--no-progress"]) == 2
    assert "lies outside the frame" in capsys.readouterr().err
    assert main(["cave", str(scan_file), "--center", "middle", "--no-progress"]) == 2
    assert "--center takes auto or two numbers" in capsys.readouterr().err


def test_qmap_writes_the_map_and_its_figure(scan_file, tmp_path, capsys):
    png = tmp_path / "q.png"
    args = ["qmap", str(scan_file), "--npt", "40", "50", "--director", "15", "--plot", str(png),
            "--position", "3", "--circles", "0.45", "0.8", "--no-progress"]  # fmt: skip
    assert main(args) == 0
    out = capsys.readouterr().out
    assert str(png) in out and png.stat().st_size > 10_000
    with h5py.File(scan_file, "r") as h5:
        (name,) = [k for k in h5["Measurement_000/Channel_000"] if "QSpaceMap" in k]
        group = h5[f"Measurement_000/Channel_000/{name}"]
        params = json.loads(group.attrs["parameters"])
        assert params["npt"] == [40, 50] and params["director_deg"] == 15.0
        assert group["Intensity"].shape == (4, 2000)
    assert main(["qmap", str(scan_file), "--circles", "0.4", "--no-progress"]) == 2
    assert "give --plot PNG too" in capsys.readouterr().err


def test_pipeline_names_the_caved_frames_by_step(scan_file, tmp_path):
    (tmp_path / "p.yaml").write_text(
        f"output: {scan_file}\nexecution: {{progress: false}}\nsteps:\n"
        "  - cave: {n_iter: 2}\n"
        "  - integrate: {npt: 80, source: cave}\n"
        "  - qmap: {npt: 32, source: cave}\n"
    )
    steps = run_pipeline(tmp_path / "p.yaml")
    cave, integrate, qmap = steps
    assert [s.action for s in steps] == ["computed"] * 3
    assert integrate.target.startswith(cave.target + "/Caved_Data-AzimuthalIntegration_")
    assert qmap.target.startswith(cave.target + "/Caved_Data-QSpaceMap_")
    again = run_pipeline(tmp_path / "p.yaml")
    assert [s.action for s in again] == ["reused"] * 3
    with h5py.File(scan_file, "r") as h5:
        first = h5[f"{integrate.target}/Intensity"][()]
    api = run_on_file(scan_file, Caving, n_iter=2, progress=False)
    assert api.reused and api.group == cave.target
    assert np.isfinite(first).any()
    (tmp_path / "bad.yaml").write_text(
        f"output: {scan_file}\nexecution: {{progress: false}}\nsteps:\n"
        "  - integrate: {npt: 80, source: cave}\n"
    )
    from pyscatter.errors import InputError

    with pytest.raises(InputError, match="no dataset 'cave'.*name of an earlier step"):
        run_pipeline(tmp_path / "bad.yaml")


def test_caved_source_is_the_same_from_python_cli_and_pipeline(scan_file, tmp_path, capsys):
    assert main(["cave", str(scan_file), "--no-progress"]) == 0
    source = capsys.readouterr().out.strip().rsplit(":", 1)[-1]
    (tmp_path / "p.yaml").write_text(
        f"output: {scan_file}\nexecution: {{progress: false}}\nsteps:\n  - cave: {{}}\n"
    )
    (step,) = run_pipeline(tmp_path / "p.yaml")
    assert step.action == "reused" and f"{step.target}/Caved_Data" == source
    with h5py.File(scan_file, "r") as h5:
        mask = h5[f"{step.target}/Mask"][()]
        file_mask = h5["Measurement_000/Channel_000/Mask"][()]
    assert mask.sum() < file_mask.sum() and not (mask & ~file_mask).any()
    assert_array_equal(mask.shape, file_mask.shape)


def test_cave_killed_by_a_write_fault_resumes_to_the_same_bits(scan_file, tmp_path):
    from tests.faults.harness import result_digest, run_cli

    reference = shutil.copy(scan_file, tmp_path / "reference.h5")
    run_on_file(reference, Caving, max_mem_mb=0.3, progress=False)
    args = ["cave", str(scan_file), "--max-mem-mb", "0.3", "--no-progress"]
    first = run_cli(
        args, cwd=tmp_path, inject="fsync:8:EIO"
    )  # set-up and block 0 take 7: block 1 fails
    assert first.fired and first.returncode == 3, first.stderr
    with h5py.File(scan_file, "r") as h5:
        flags = h5["Measurement_000/Channel_000/Raw_Data-Caving_000/completed_chunks"][()]
    assert 0 < np.count_nonzero(flags) < flags.size  # killed part-way
    again = run_cli(args, cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert result_digest(scan_file, "Caving") == result_digest(reference, "Caving")
