"""``pyscatter batch --scheduler slurm`` against a fake SLURM on PATH (tests/batch/fakeslurm.py)."""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys

import pytest

from pyscatter.cli import main
from tests.batch import fakeslurm
from tests.batch.conftest import GOOD

SLURM = ["--scheduler", "slurm", "--poll", "0", "--job-dir", "jobs"]


def _statuses(path):
    data = json.loads(path.read_text())
    return {f["input"].rsplit("/", 1)[-1]: (f["status"], f["job"]) for f in data["files"]}


def _calls(state, tool):
    return [c["argv"] for c in fakeslurm.load(state)["calls"] if c["tool"] == tool]


def test_array_then_per_file_reused(work, slurm, capsys):
    state = slurm(pending_polls=2)
    args = ["batch", "raw/*.h5", "--pipeline", "p.yaml", *SLURM, "--summary", "sum.json"]
    code = main([*args, "--array", "--partition", "short", "--time", "00:10:00", "--jobs", "3"])
    out = capsys.readouterr().out
    assert code == 1
    (sbatch,) = _calls(state, "sbatch")
    script = str(work / "jobs" / "array.sh")
    assert ["sbatch", *sbatch] == [
        "sbatch", "--parsable", "--job-name=pyscatter-batch", "--partition=short",
        "--time=00:10:00", "--array=0-4%3", f"--output={work}/jobs/slurm-%A_%a.out", script,
    ]  # fmt: skip
    text = (work / "jobs" / "array.sh").read_text()
    plan = work / "jobs" / "files.json"
    assert f'--list {shlex.quote(str(plan))} --index "$SLURM_ARRAY_TASK_ID"' in text
    assert f"exec {shlex.quote(sys.executable)} -m pyscatter.batch.task" in text
    assert "PWNED" not in text  # the file names are only in the JSON list
    assert not (work / "PWNED").exists()
    # the states, as they changed: pending twice (one line), running, ended
    assert out.count("job 1000_[0-4] PENDING (Priority): waiting in the queue") == 1
    assert "job 1000_0 RUNNING" in out and "job 1000_4 RUNNING" in out
    assert "job 1000 ended: 4 COMPLETED, 1 FAILED" in out
    assert f"job 1000_2 done: {work / 'raw' / 's_1.h5'}: ran\n" in out
    assert f"job 1000_0 done: {work / 'raw' / 'bad.h5'}: failed: " in out
    statuses = _statuses(work / "sum.json")
    order = ["bad.h5", GOOD[3], "s_1.h5", "s_2.h5", "s_10.h5"]  # natural order of the paths
    assert list(statuses) == order
    assert statuses == {
        n: ("failed" if n == "bad.h5" else "ran", f"1000_{i}") for i, n in enumerate(order)
    }
    assert "5 files: 4 ran, 1 failed" in out

    # one job per file, at most 2 at a time: what is complete is reused; bad.h5 fails again
    before = len(fakeslurm.load(state)["calls"])
    assert main([*args, "--jobs", "2"]) == 1
    out = capsys.readouterr().out
    tools = [c["tool"] for c in fakeslurm.load(state)["calls"][before:]]
    assert tools.count("sbatch") == 5 and tools[:3] == ["sbatch", "sbatch", "squeue"]
    active, most = 0, 0
    for tool in tools:  # one sacct per job that ended
        active += {"sbatch": 1, "sacct": -1}.get(tool, 0)
        most = max(most, active)
    assert most == 2 and active == 0
    per_file = (work / "jobs" / "file-1.sh").read_text()
    assert f"# files: {shlex.quote(str(plan))}" in per_file and "--index 1\n" in per_file
    assert shlex.quote(str(work / "raw" / GOOD[3])) in per_file  # quoted in its comment
    assert "job 1001 PENDING (Priority): waiting in the queue" in out
    assert "5 files: 4 reused, 1 failed" in out
    statuses = _statuses(work / "sum.json")
    assert statuses["s_10.h5"] == ("reused", "1005") and statuses["bad.h5"] == ("failed", "1001")
    assert not (work / "PWNED").exists()


def test_dry_run_submits_nothing(work, slurm, capsys):
    state = slurm()
    args = ["batch", "raw/*.h5", "--pipeline", "p.yaml", *SLURM, "--slurm-option", "qos=low"]
    assert main([*args, "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert fakeslurm.load(state)["calls"] == []
    assert not (work / "jobs").exists() and not list(work.glob("raw/*.batch.json"))
    assert out.count("#!/bin/bash") == 5 and out.count("# submit: sbatch --parsable") == 5
    assert "--qos=low" in out and "nothing submitted (5 job script(s))" in out
    assert main([*args, "--array", "--dry-run"]) == 0
    assert capsys.readouterr().out.count("#!/bin/bash") == 1


def test_queue_timeout_cancels(work, slurm, capsys):
    state = slurm(start=False)
    code = main(
        ["batch", "raw/s_1.h5", "raw/s_2.h5", "--pipeline", "p.yaml", *SLURM,
         "--queue-timeout", "0", "--summary", "sum.json"]
    )  # fmt: skip
    captured = capsys.readouterr()
    assert code == 1
    assert _calls(state, "scancel") == [["1000", "1001"]]
    assert "cancelled jobs 1000, 1001 (scancel)" in captured.out
    assert "no job started within --queue-timeout 0 s" in captured.err
    assert (
        "job 1000 PENDING (Priority)" in captured.err and "longer --queue-timeout" in captured.err
    )
    assert set(_statuses(work / "sum.json").values()) == {("not run", "1000"), ("not run", "1001")}


@pytest.mark.parametrize(
    ("inputs", "pipeline", "message"),
    [
        (["raw/*.nope"], "steps:\n  - integrate: {npt: 32}\n", "'raw/*.nope' matches no file"),
        (["raw/*.h5"], "steps:\n  - integrate: {npt: -3.5}\n", "p.yaml:2: "),
        (["raw/*.h5"], "steps:\n  - integrat: {}\n", "p.yaml:2: "),
    ],
)
def test_bad_input_refused_before_any_submission(work, slurm, capsys, inputs, pipeline, message):
    state = slurm()
    (work / "p.yaml").write_text(pipeline)
    assert main(["batch", *inputs, "--pipeline", "p.yaml", *SLURM, "--array"]) == 2
    assert message in capsys.readouterr().err
    assert fakeslurm.load(state)["calls"] == [] and not (work / "jobs").exists()


def test_sbatch_refusal_cancels_what_was_submitted(work, slurm, capsys):
    state = slurm(start=False, accept=1)
    args = ["batch", "raw/s_1.h5", "raw/s_2.h5", "--pipeline", "p.yaml", *SLURM]
    assert main([*args, "--partition", "nope"]) == 2
    err = capsys.readouterr().err
    assert _calls(state, "scancel") == [["1000"]]
    assert "sbatch refused" in err and "Invalid partition name specified" in err
    assert "cancelled the jobs submitted before it (1000)" in err


class _Clock:
    """A clock that moves only when the batch sleeps."""

    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.now += seconds


def test_pending_reminders_and_timeout_by_the_clock(work, slurm, tmp_path):
    from pyscatter.batch import QueueTimeoutError
    from pyscatter.batch.plan import expand_inputs, make_plan
    from pyscatter.batch.slurm import SlurmBatch, SlurmOptions, job_scripts

    state = slurm(start=False)
    plan, pipe = make_plan(expand_inputs(["raw/s_1.h5"]), "p.yaml")
    options = SlurmOptions(array=True, poll=30, queue_timeout=300, remind=60)
    (tmp_path / "jobs").mkdir()
    plan.write(tmp_path / "jobs" / "files.json")
    scripts = job_scripts(plan, tmp_path / "jobs" / "files.json", tmp_path / "jobs", options)
    lines: list[str] = []
    clock = _Clock()
    batch = SlurmBatch(
        plan, pipe, scripts, options, report=lines.append, clock=clock, sleep=clock.sleep
    )
    with pytest.raises(QueueTimeoutError, match="within --queue-timeout 300 s") as err:
        batch.watch()
    assert lines[:2] == [
        f"submitted job 1000: {tmp_path / 'jobs' / 'array.sh'}",
        "job 1000_[0-0] PENDING (Priority): waiting in the queue",
    ]
    reminders = [ln for ln in lines if "for " in ln]
    assert reminders == [
        f"job 1000_[0-0] PENDING (Priority) for {m} min: waiting in the queue"
        for m in (1, 2, 3, 4, 5)
    ]
    assert lines[-1] == "cancelled job 1000 (scancel)"
    assert clock.now == 330  # the first poll after 300 s
    assert len(_calls(state, "squeue")) == 12
    assert [r.status for r in err.value.results] == ["not run"]


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_cancels_submitted_jobs(work, slurm, sig):
    state = slurm(start=False)
    proc = subprocess.Popen(
        [sys.executable, "-m", "pyscatter", "batch", "raw/s_1.h5", "raw/s_2.h5",
         "--pipeline", "p.yaml", "--scheduler", "slurm", "--poll", "0.05", "--job-dir", "jobs"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=work, env=os.environ,
    )  # fmt: skip
    seen = []
    for line in proc.stdout:  # wait until both jobs are seen waiting in the queue
        seen.append(line)
        if "job 1001 PENDING" in line:
            break
    proc.send_signal(sig)
    rest, err = proc.communicate(timeout=120)
    out = "".join(seen) + rest
    assert proc.returncode == 130, err
    assert _calls(state, "scancel") == [["1000", "1001"]]
    assert "cancelled jobs 1000, 1001 (scancel)" in out
    assert "interrupted" in err
    assert "2 files: 2 not run" in out


def test_pipeline_path_with_a_newline_refused(work, slurm, capsys):
    state = slurm()
    (work / "p\nrm -rf ~.yaml").write_text((work / "p.yaml").read_text())
    assert main(["batch", "raw/s_1.h5", "--pipeline", "p\nrm -rf ~.yaml", *SLURM, "--dry-run"]) == 2
    assert "a path with a control character" in capsys.readouterr().err
    assert fakeslurm.load(state)["calls"] == []


def test_killed_jobs_are_partial_or_failed_from_records(work, slurm, tmp_path):
    """A record left ``running`` by a killed job makes its file partial; no record, failed."""
    from pyscatter.batch.plan import expand_inputs, make_plan
    from pyscatter.batch.records import write_json_atomic
    from pyscatter.batch.slurm import SlurmBatch, SlurmOptions, job_scripts

    slurm(pending_polls=0)
    plan, pipe = make_plan(expand_inputs(["raw/s_1.h5", "raw/s_2.h5"]), "p.yaml")
    jobs = tmp_path / "jobs"
    jobs.mkdir()
    options = SlurmOptions(poll=0)
    scripts = job_scripts(plan, jobs / "files.json", jobs, options)
    for script in scripts:  # as if the node died (or the time limit struck) mid-step
        script.text = "#!/bin/bash\nexit 137\n"
    first = plan.files[0]
    record = {"input": str(first.input), "output": str(first.output), "status": "running",
              "steps_total": 1, "steps": [], "token": plan.token}  # fmt: skip
    write_json_atomic(first.result, record)
    lines: list[str] = []
    results = SlurmBatch(plan, pipe, scripts, options, report=lines.append).watch()
    assert [(r.status, r.job) for r in results] == [("partial", "1000"), ("failed", "1001")]
    assert results[0].error == (
        f"job ended FAILED during a step; run the batch again to resume (log {jobs}/slurm-1000-0.out)"
    )
    assert results[1].error == f"job ended FAILED; see {jobs}/slurm-1001-1.out"
    assert f"job 1000 done: {first.input}: ended during a step" in lines
    assert "job 1001 ended: 1 FAILED" in lines
