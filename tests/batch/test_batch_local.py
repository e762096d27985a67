"""``pyscatter batch`` on this machine: statuses from what happened, results as a direct run's."""

from __future__ import annotations

import json
import shutil

import h5py
import numpy as np
import pytest

from pyscatter.cli import main
from tests.batch.conftest import GOOD, GROUP, INTEGRATE


def _summary(path):
    data = json.loads(path.read_text())
    return {f["input"].rsplit("/", 1)[-1]: f for f in data["files"]}, data


def _reference(tmp_path, raw, name):
    """The integration of one scan run directly (not through the batch)."""
    from pyscatter.processes.base import run_on_file
    from pyscatter.processes.integration import AzimuthalIntegration

    copy = tmp_path / "reference" / name
    copy.parent.mkdir(exist_ok=True)
    shutil.copy(raw / name, copy)
    run_on_file(copy, AzimuthalIntegration, progress=False, **INTEGRATE)
    with h5py.File(copy, "r") as h5:
        return h5[GROUP]["data"][()]


def test_local_batch_ran_failed_then_reused(work, tmp_path, capsys):
    raw = work / "raw"
    code = main(["batch", "raw/*.h5", "--pipeline", "p.yaml", "--summary", "sum.json"])
    out = capsys.readouterr().out
    assert code == 1  # bad.h5 failed
    files, data = _summary(work / "sum.json")
    assert {n: f["status"] for n, f in files.items()} == {
        **dict.fromkeys(GOOD, "ran"),
        "bad.h5": "failed",
    }
    assert data["counts"] == {"ran": 4, "reused": 0, "failed": 1, "partial": 0, "not run": 0}
    assert "bad.h5 is not a pyscatter file" in files["bad.h5"]["error"]
    assert "p.yaml:3: step 'integrate'" in files["bad.h5"]["error"]
    assert files["s_1.h5"]["steps"][0]["action"] == "computed"
    assert files["s_1.h5"]["steps"][0]["positions"] == [4, 4]
    assert "5 files: 4 ran, 1 failed" in out
    # natural order: s_2 before s_10; the failure did not stop the files after it
    order = [f["input"].rsplit("/", 1)[-1] for f in data["files"]]
    assert order.index("s_2.h5") < order.index("s_10.h5")
    # every file's own record, next to it, says the same
    record = json.loads((raw / "s_2.h5.batch.json").read_text())
    assert record["status"] == "ran" and record["token"] == data["token"]
    # the batch computes what a direct run computes, bit for bit
    for name in ("s_2.h5", GOOD[3]):
        with h5py.File(raw / name, "r") as h5:
            np.testing.assert_array_equal(h5[GROUP]["data"][()], _reference(tmp_path, raw, name))
    assert not (work / "PWNED").exists()

    code = main(["batch", "raw/*.h5", "--pipeline", "p.yaml", "--summary", "sum.json"])
    out = capsys.readouterr().out
    assert code == 1
    files, data = _summary(work / "sum.json")
    assert data["counts"]["reused"] == 4 and data["counts"]["failed"] == 1
    assert all(files[n]["steps"][0]["action"] == "reused" for n in GOOD)
    assert "5 files: 4 reused, 1 failed" in out


def test_local_jobs_as_subprocesses(work, capsys):
    (work / "raw" / GOOD[3]).unlink()
    (work / "raw" / "s_10.h5").unlink()
    code = main(
        ["batch", "raw/s_*.h5", "raw/bad.h5", "--pipeline", "p.yaml", "--jobs", "2",
         "--job-dir", "jobs", "--summary", "sum.json"]
    )  # fmt: skip
    assert code == 1
    files, _ = _summary(work / "sum.json")
    assert {n: f["status"] for n, f in files.items()} == {
        "s_1.h5": "ran",
        "s_2.h5": "ran",
        "bad.h5": "failed",
    }
    assert "not a pyscatter file" in files["bad.h5"]["error"]
    assert sorted(p.name for p in (work / "jobs").iterdir()) == [
        "0.log",
        "1.log",
        "2.log",
        "files.json",
    ]
    assert (
        main(["batch", "raw/s_*.h5", "--pipeline", "p.yaml", "--jobs", "2", "--job-dir", "jobs"])
        == 0
    )
    assert "2 files: 2 reused" in capsys.readouterr().out


def test_translate_then_process_and_skip(tmp_path, monkeypatch, capsys):
    from pyscatter import datasets

    monkeypatch.chdir(tmp_path)
    scan = datasets.make_scan((2, 2), frame_shape=(64, 64), rng=3)
    scan.write_images(tmp_path / "frames")
    scan.write_poni(tmp_path / "demo.poni")
    (tmp_path / "p.yaml").write_text(
        "translate: {format: images, poni: demo.poni}\n" + PIPELINE_STEPS
    )
    args = ["batch", "frames/frame_*.edf", "--translate", "images", "--out-dir", "out",
            "--pipeline", "p.yaml", "--summary", "sum.json"]  # fmt: skip
    assert main(args) == 0
    files, _ = _summary(tmp_path / "sum.json")
    assert sorted(files) == [f"frame_000{i}.edf" for i in range(4)]
    first = files["frame_0000.edf"]
    assert first["output"] == str(tmp_path / "out" / "frame_0000.h5")
    assert [s["action"] for s in first["steps"]] == ["translated", "computed"]
    assert main(args) == 0
    files, _ = _summary(tmp_path / "sum.json")
    assert {f["status"] for f in files.values()} == {"reused"}
    assert [s["action"] for s in files["frame_0000.edf"]["steps"]] == ["skipped", "reused"]
    # the translated image is the frame written
    with h5py.File(tmp_path / "out" / "frame_0002.h5", "r") as h5:
        raw = h5["/Measurement_000/Channel_000/Raw_Data"][()]
    np.testing.assert_array_equal(raw.reshape(64, 64), scan.frames.reshape(-1, 64, 64)[2])


def test_interrupt_records_partial_and_not_run(work, monkeypatch):
    import pyscatter.pipeline
    from pyscatter.batch import BatchInterrupted
    from pyscatter.batch.local import run_local
    from pyscatter.batch.plan import expand_inputs, make_plan

    real = pyscatter.pipeline.run_step
    calls = []

    def interrupted_second(pipe, step):
        calls.append(pipe.output.name)
        if len(calls) == 2:
            raise KeyboardInterrupt  # Ctrl-C during the second file
        return real(pipe, step)

    monkeypatch.setattr(pyscatter.pipeline, "run_step", interrupted_second)
    plan, pipe = make_plan(expand_inputs(["raw/s_*.h5"]), "p.yaml")
    with pytest.raises(BatchInterrupted) as err:
        run_local(plan, pipe, report=lambda line: None)
    assert [r.status for r in err.value.results] == ["ran", "partial", "not run"]
    record = json.loads((work / "raw" / "s_2.h5.batch.json").read_text())
    assert record["status"] == "partial" and "run the batch again" in record["error"]


PIPELINE_STEPS = """\
execution: {progress: false}
steps:
  - integrate: {npt: 32, unit: q_nm^-1}
"""


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["raw/*.nothing", "--pipeline", "p.yaml"], "'raw/*.nothing' matches no file"),
        (["raw/missing.h5", "--pipeline", "p.yaml"], "raw/missing.h5: no such file"),
        (["raw/s_1.h5"], "--pipeline"),
        (["raw/s_1.h5", "--pipeline", "p.yaml", "--array"], "--array apply to --scheduler slurm"),
        (["raw/s_1.h5", "--pipeline", "p.yaml", "--translate", "images"], "--out-dir"),
        (["raw", "--pipeline", "p.yaml"], "nothing translates it"),
        (["raw/s_1.h5", "--pipeline", "p.yaml", "--jobs", "0"], "--jobs"),
    ],
)
def test_bad_input_refused(work, capsys, args, message):
    assert main(["batch", *args]) == 2
    assert message in capsys.readouterr().err
    assert not list(work.glob("raw/*.batch.json"))


def test_invalid_pipeline_refused_with_its_line(work, capsys):
    (work / "p.yaml").write_text("steps:\n  - integrate: {npt: 32, bogus: 1}\n")
    assert main(["batch", "raw/*.h5", "--pipeline", "p.yaml"]) == 2
    err = capsys.readouterr().err
    assert "p.yaml:2: " in err and "has no parameter 'bogus'" in err


def test_template_printed(capsys):
    assert main(["batch", "--template"]) == 0
    text = capsys.readouterr().out
    assert text.startswith("#!/bin/bash\n") and "#SBATCH --signal=B:USR1@120" in text


def test_from_list_and_local_dry_run(work, capsys):
    (work / "files.txt").write_text(
        "# the two first scans\nraw/s_2.h5\n\nraw/s_1*.h5\nraw/s_2.h5\n"
    )
    assert main(["batch", "--from-list", "files.txt", "--pipeline", "p.yaml", "--dry-run"]) == 0
    lines = capsys.readouterr().out.splitlines()
    raw = work / "raw"
    assert lines == [
        f"[1/3] {raw / 's_2.h5'}: pipeline {work / 'p.yaml'}",
        f"[2/3] {raw / 's_1.h5'}: pipeline {work / 'p.yaml'}",
        f"[3/3] {raw / 's_10.h5'}: pipeline {work / 'p.yaml'}",
    ]
    assert not list(raw.glob("*.batch.json"))


def test_path_with_a_newline_refused(work, capsys):
    (work / "raw" / "x\ny.h5").write_bytes((work / "raw" / "s_1.h5").read_bytes())
    assert main(["batch", "raw/x*.h5", "--pipeline", "p.yaml", "--dry-run"]) == 2
    assert "control character" in capsys.readouterr().err
