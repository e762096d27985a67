"""Kill a running process for real (SIGKILL), resume it, and get the same bits.

Children are forked from a forkserver that imported pyscatter once, so a kill cycle costs the
run itself, not pyUSID's import; the kill is a real SIGKILL of a real process writing the file.
"""

from __future__ import annotations

import contextlib
import hashlib
import multiprocessing
import os
import signal
import subprocess
import sys
import time

import h5py
import numpy as np
import pytest

from pyscatter.io import safety
from pyscatter.io.record import verified_positions
from pyscatter.processes.base import run_on_file
from pyscatter.processes.integration import AzimuthalIntegration

PARAMS = dict(npt=90, unit="q_nm^-1", error_model="poisson", max_mem_mb=0.7, progress=False)


PRELOAD = [
    "pyscatter.processes.integration",
    "pyscatter.kernels.integrate",
    "pyFAI.integrator.azimuthal",
    "pyFAI.engines.CSR_engine",
    "scipy.stats",
    "hdf5plugin",
    "tqdm.auto",
]


@pytest.fixture(scope="module")
def ctx():
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(PRELOAD)
    return context


@pytest.fixture(scope="module")
def kill_scan():
    from pyscatter import datasets

    return datasets.make_scan((4, 6), rng=11)  # 24 one-position blocks: a run worth killing


def raw_sha(path) -> str:
    with h5py.File(path, "r") as h5:
        raw = h5["Measurement_000/Channel_000/Raw_Data"][()]
    return hashlib.sha256(raw.tobytes()).hexdigest()


def results(path, group_name=None) -> dict[str, np.ndarray]:
    with h5py.File(path, "r") as h5:
        chan = h5["Measurement_000/Channel_000"]
        name = group_name or sorted(k for k in chan if "AzimuthalIntegration" in k)[-1]
        g = chan[name]
        return {k: g[k][()] for k in ("Intensity", "Intensity_Sigma")}


def verified(path) -> int:
    with safety.job_lock(path):
        safety.repair(path)
    with h5py.File(path, "r") as h5:
        chan = h5["Measurement_000/Channel_000"]
        groups = [chan[k] for k in sorted(chan) if "AzimuthalIntegration" in k]
        return int(verified_positions(groups[-1]).sum()) if groups else 0


def start(ctx, path):
    proc = ctx.Process(target=run_on_file, args=(str(path), AzimuthalIntegration), kwargs=PARAMS)
    proc.start()
    return proc


def test_sigkill_anywhere_then_resume_gives_identical_bits(ctx, tmp_path, kill_scan):
    """20 SIGKILLs: a quarter at any moment (set-up included), the rest while blocks are written."""
    from conftest import write_scan

    scan = kill_scan
    reference = write_scan(tmp_path / "reference.h5", scan)
    proc = start(ctx, reference)  # also warms the forkserver up (it imports pyscatter once)
    proc.join(120)
    assert proc.exitcode == 0
    expected = results(reference)
    timing = write_scan(tmp_path / "timing.h5", scan)
    t0 = time.perf_counter()
    proc = start(ctx, timing)
    while safety.read_status(timing) is None and proc.is_alive():
        time.sleep(0.002)
    t_first = time.perf_counter() - t0
    proc.join(120)
    full_time = time.perf_counter() - t0
    compute_time = full_time - t_first

    block_time = compute_time / scan.n_positions  # one position per block

    rng = np.random.default_rng(2026)
    kills = landed = 0
    for run in range(4):
        path = write_scan(tmp_path / f"killed_{run}.h5", scan)
        sha_before = raw_sha(path)
        for k in range(5):
            done = (safety.read_status(path) or {}).get("done", 0)
            left = scan.n_positions - done
            proc = start(ctx, path)
            if k == 0 or left < 3:  # during set-up (journaled link included) or start-up
                time.sleep(rng.uniform(0.0, t_first))
            else:  # while blocks are written: after a random number of them, mid-block
                target = done + int(rng.integers(1, left - 1))
                deadline = time.time() + 120
                while (
                    (safety.read_status(path) or {}).get("done", 0) < target
                    and proc.is_alive()
                    and time.time() < deadline
                ):
                    time.sleep(0.001)
                time.sleep(rng.uniform(0.0, block_time))
            with contextlib.suppress(ProcessLookupError):  # it may have finished already
                os.kill(proc.pid, signal.SIGKILL)
            proc.join(30)
            kills += 1
            landed += proc.exitcode == -signal.SIGKILL
        done_before = verified(path)  # the file opens (after any repair) and says what is done
        summary = run_on_file(path, AzimuthalIntegration, **PARAMS)
        # only the missing positions were computed, and the result is the uninterrupted one
        assert summary.computed_positions == scan.n_positions - done_before
        got = results(path, summary.group.rsplit("/", 1)[-1])
        for key in expected:
            assert got[key].tobytes() == expected[key].tobytes(), key
        assert raw_sha(path) == sha_before
        assert not (tmp_path / f"killed_{run}.h5.journal").exists()
    assert kills == 20
    assert landed >= 14, (
        landed
    )  # nearly every kill hits a live writer (on a loaded machine a few land late)


def test_ctrl_c_exits_130_and_resumes(tmp_path):
    from conftest import write_scan

    from pyscatter import datasets

    scan = datasets.make_scan((16, 20), rng=5)  # long enough to be interrupted mid-run
    path = write_scan(tmp_path / "scan.h5", scan)
    cmd = [
        sys.executable,
        "-m",
        "pyscatter",
        "integrate",
        str(path),
        "--npt",
        "90",
        "--max-mem-mb",
        "0.7",
        "--no-progress",
    ]
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True)
    # wait until the job has started writing (its status file appears), then Ctrl-C
    deadline = time.time() + 60
    while (safety.read_status(path) or {}).get("done", 0) < 5 and proc.poll() is None:
        if time.time() > deadline:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "resume" in err
    done = verified(path)
    assert 0 < done < scan.n_positions
    summary = run_on_file(path, AzimuthalIntegration, npt=90, max_mem_mb=0.7, progress=False)
    assert summary.resumed and summary.computed_positions == scan.n_positions - done


def test_readers_see_the_completed_part_while_a_job_writes(ctx, tmp_path, kill_scan):
    from conftest import write_scan

    import pyscatter
    from pyscatter.cli.info import describe

    path = write_scan(tmp_path / "live.h5", kill_scan)
    proc = start(ctx, path)
    deadline = time.time() + 120
    while (safety.read_status(path) or {}).get("done", 0) < 3 and time.time() < deadline:
        time.sleep(0.005)
    text = describe(str(path))
    ds = pyscatter.to_xarray(path, "AzimuthalIntegration")  # opens while the writer holds the file
    proc.join(120)
    assert proc.exitcode == 0
    assert f"pid {proc.pid}" in text and "running" in text
    done = ds.attrs["complete_positions"]
    assert 3 <= done <= kill_scan.n_positions
    final = pyscatter.to_xarray(path, "AzimuthalIntegration")
    intensity = ds["Intensity"].values.reshape(kill_scan.n_positions, -1)
    complete = ~np.isnan(intensity).all(axis=1)
    assert complete.sum() == done
    # what a reader saw of the completed part is exactly what the finished run holds
    expected = final["Intensity"].values.reshape(kill_scan.n_positions, -1)
    np.testing.assert_array_equal(intensity[complete], expected[complete])
    assert "interrupted" not in describe(str(path)) and "complete" in describe(str(path))
