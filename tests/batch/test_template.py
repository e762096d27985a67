"""The sbatch template resubmits itself before the time limit, and only then."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest

from pyscatter.batch.template import TEMPLATE
from tests.batch import fakeslurm

FAKE_PYSCATTER = """\
import json, os, signal, sys
log = os.environ["FAKE_LOG"]
def stop(*_):
    with open(log, "a") as out:
        out.write("terminated\\n")
    sys.exit(130)
signal.signal(signal.SIGTERM, stop)
with open(log, "a") as out:
    out.write(json.dumps(sys.argv[1:]) + "\\n")
mode = os.environ["FAKE_MODE"]
if mode == "wait":
    print("started", flush=True)
    signal.pause()
sys.exit(0 if mode == "ok" else 1)
"""


@pytest.fixture()
def job(tmp_path, slurm):
    """Run the template as a job would: ``(popen, state, log)`` by mode and resubmit count."""
    state = slurm()
    script = tmp_path / "pyscatter-file.sh"
    script.write_text(TEMPLATE)
    fake = tmp_path / "fake_pyscatter.py"
    fake.write_text(FAKE_PYSCATTER)
    log = tmp_path / "calls.log"

    def start(mode: str, count: int = 0) -> subprocess.Popen:
        env = dict(
            os.environ,
            PYSCATTER=f"{sys.executable} {fake}",
            PYSCATTER_SCRIPT=str(script),
            PYSCATTER_RESUBMIT=str(count),
            FAKE_MODE=mode,
            FAKE_LOG=str(log),
        )
        argv = ["bash", str(script), "scan.h5", "p.yaml", "3", "--translate", "spec"]
        return subprocess.Popen(
            argv, env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )

    return start, state, log, script


def _lines(log):
    return log.read_text().splitlines()


def test_complete_run_is_not_resubmitted(job):
    start, state, log, _script = job
    proc = start("ok")
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "scan.h5 complete" in out
    assert json.loads(_lines(log)[0]) == [
        "batch", "scan.h5", "--pipeline", "p.yaml", "--translate", "spec",
    ]  # fmt: skip
    assert fakeslurm.load(state)["calls"] == []


def test_failure_is_not_resubmitted(job):
    start, state, _log, _script = job
    proc = start("fail")
    _out, err = proc.communicate(timeout=60)
    assert proc.returncode == 1
    assert "failed (exit code 1); not resubmitted" in err
    assert fakeslurm.load(state)["calls"] == []


def _near_time_limit(proc: subprocess.Popen) -> tuple[str, str]:
    assert proc.stdout is not None
    assert proc.stdout.readline() == "started\n"  # pyscatter runs; the trap is set
    proc.send_signal(signal.SIGUSR1)  # what --signal=B:USR1@120 sends
    return proc.communicate(timeout=60)


def test_time_limit_stops_and_resubmits(job):
    start, state, log, script = job
    proc = start("wait", count=1)
    out, err = _near_time_limit(proc)
    assert proc.returncode == 0, err
    assert _lines(log)[1] == "terminated"  # pyscatter was stopped with SIGTERM first
    assert "resubmitting (2 of 3)" in out
    (submitted,) = fakeslurm.load(state)["jobs"].values()
    assert submitted["script"] == str(script)
    assert submitted["args"] == ["scan.h5", "p.yaml", "3", "--translate", "spec"]
    assert submitted["env"]["PYSCATTER_RESUBMIT"] == "2"


def test_gives_up_after_max_resubmits(job):
    start, state, _log, _script = job
    proc = start("wait", count=3)
    _out, err = _near_time_limit(proc)
    assert proc.returncode == 1
    assert "not complete after 3 resubmissions; giving up" in err
    assert fakeslurm.load(state)["calls"] == []
