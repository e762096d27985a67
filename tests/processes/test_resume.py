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


def _run_paused(path, after, paused, resume):
    """run_on_file whose writer stops after ``after`` complete blocks, holding the file, until
    ``resume`` is set: a job that is certainly running while the test reads (no race)."""
    real = safety.write_status
    calls = []

    def write_status(*args, **kwargs):
        result = real(*args, **kwargs)
        calls.append(1)
        if len(calls) == after:
            paused.set()
            resume.wait(300)
        return result

    safety.write_status = write_status
    run_on_file(path, AzimuthalIntegration, **PARAMS)


def start_paused(ctx, path, after=3):
    """Start a writer that pauses after ``after`` blocks; return it once it has paused, with the
    event that lets it go on."""
    paused, resume = ctx.Event(), ctx.Event()
    proc = ctx.Process(target=_run_paused, args=(str(path), after, paused, resume))
    proc.start()
    assert paused.wait(300), "the writer never reached its pause"
    return proc, resume


def _timings(ctx, tmp_path, scan):
    """(reference results, seconds to the first block, seconds per block) of an unkilled run."""
    from conftest import write_scan

    reference = write_scan(tmp_path / "reference.h5", scan)
    proc = start(ctx, reference)  # also warms the forkserver up (it imports pyscatter once)
    proc.join(120)
    assert proc.exitcode == 0
    timing = write_scan(tmp_path / "timing.h5", scan)
    t0 = time.perf_counter()
    proc = start(ctx, timing)
    while safety.read_status(timing) is None and proc.is_alive():
        time.sleep(0.002)
    t_first = time.perf_counter() - t0
    proc.join(120)
    block_time = (time.perf_counter() - t0 - t_first) / scan.n_positions  # one position/block
    return results(reference), t_first, block_time


def _kill_cycle(ctx, path, scan, rng, k, t_first, block_time, late=False):
    """Start a job on ``path``, SIGKILL it at a random moment; return its exit code.

    ``late``: the kill comes only once the job has ended, as on a machine too busy to run the
    test process in time (the kill finds the job finished: exit code 0 instead of -9).
    """
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
    if late:
        proc.join(300)
    with contextlib.suppress(ProcessLookupError):  # it may have finished already
        os.kill(proc.pid, signal.SIGKILL)
    proc.join(30)
    return proc.exitcode


def _kill_and_resume(ctx, tmp_path, scan, *, files, late=False):
    """``files`` files killed 5 times each, then resumed; what each kill hit is asserted.

    ``late``: every other kill comes after the job has ended, as on a machine too busy to run
    the test process in time.
    """
    from conftest import write_scan

    expected, t_first, block_time = _timings(ctx, tmp_path, scan)
    rng = np.random.default_rng(2026)
    exits = []
    for run in range(files):
        path = write_scan(tmp_path / f"killed_{run}.h5", scan)
        sha_before = raw_sha(path)
        for k in range(5):
            late_kill = late and k % 2 == 0
            exits.append(_kill_cycle(ctx, path, scan, rng, k, t_first, block_time, late_kill))
        done_before = verified(path)  # the file opens (after any repair) and says what is done
        summary = run_on_file(path, AzimuthalIntegration, **PARAMS)
        # only the missing positions were computed, and the result is the uninterrupted one
        assert summary.computed_positions == scan.n_positions - done_before
        got = results(path, summary.group.rsplit("/", 1)[-1])
        for key in expected:
            assert got[key].tobytes() == expected[key].tobytes(), key
        assert raw_sha(path) == sha_before
        assert not (tmp_path / f"killed_{run}.h5.journal").exists()
    # What was killed, not when: every kill found a live writer (-9) or one that had already
    # finished (0, a kill that came late); never a writer that failed on its own.
    assert set(exits) <= {-signal.SIGKILL, 0}, exits
    return exits


def test_sigkill_anywhere_then_resume_gives_identical_bits(ctx, tmp_path, kill_scan):
    """20 SIGKILLs: a quarter at any moment (set-up included), the rest while blocks are written.

    How many kills land on a live writer depends on how busy the machine is; each file's kills
    are judged by the state they left (opens, resumes only what is missing, identical bits).
    """
    exits = _kill_and_resume(ctx, tmp_path, kill_scan, files=4)
    assert len(exits) == 20


def test_sigkill_test_holds_when_kills_come_late_as_on_a_busy_machine(ctx, tmp_path, kill_scan):
    """Issue 19.10: under load the kill test failed with 'AssertionError: 10 >= 14' (kills that
    landed): late kills must not fail it. Kills 1, 3 and 5 come after the job has ended."""
    exits = _kill_and_resume(ctx, tmp_path, kill_scan, files=1, late=True)
    assert exits[0::2] == [0, 0, 0]  # came after the job had finished: still judged


def test_ctrl_c_exits_130_and_resumes(tmp_path):
    from conftest import write_scan

    from pyscatter import datasets

    scan = datasets.make_scan((16, 20), rng=5)  # long enough to be interrupted mid-run
    for attempt in range(5):  # a job that finished before the Ctrl-C landed is started again
        path = write_scan(tmp_path / f"scan_{attempt}.h5", scan)
        cmd = [sys.executable, "-m", "pyscatter", "integrate", str(path), "--npt", "90"]
        cmd += ["--max-mem-mb", "0.7", "--no-progress"]
        proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True)
        # wait until the job has written a few blocks (its status file says so), then Ctrl-C
        deadline = time.time() + 300
        while (safety.read_status(path) or {}).get("done", 0) < 5 and proc.poll() is None:
            if time.time() > deadline:
                break
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        _out, err = proc.communicate(timeout=300)
        if proc.returncode != 0:
            break
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
    proc, resume = start_paused(ctx, path, after=3)  # holds the file, 3 blocks written
    text = describe(str(path))
    ds = pyscatter.to_xarray(path, "AzimuthalIntegration")  # opens while the writer holds the file
    resume.set()
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


def test_uncomputed_positions_read_as_nan_in_any_viewer_and_resume_is_identical(
    tmp_path, monkeypatch, kill_scan
):
    """Issue 20.4: with fill value 0, 567 of 600 rows of an interrupted run looked like data."""
    from conftest import write_scan

    reference = write_scan(tmp_path / "reference.h5", kill_scan)
    run_on_file(reference, AzimuthalIntegration, **PARAMS)
    expected = results(reference)
    path = write_scan(tmp_path / "interrupted.h5", kill_scan)
    real, calls = safety.write_status, []

    def interrupt_after_5_blocks(*args, **kwargs):
        calls.append(1)
        if len(calls) == 5:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(safety, "write_status", interrupt_after_5_blocks)
    with pytest.raises(KeyboardInterrupt):
        run_on_file(path, AzimuthalIntegration, **PARAMS)
    monkeypatch.undo()
    with h5py.File(path, "r") as h5:  # what h5py, silx or h5web show: no pyscatter logic
        chan = h5["Measurement_000/Channel_000"]
        group = chan[sorted(k for k in chan if "AzimuthalIntegration" in k)[-1]]
        for name in ("Intensity", "Intensity_Sigma"):
            assert np.isnan(group[name].fillvalue)
            values = group[name][()]
            computed = ~np.isnan(values).all(axis=1)
            assert computed.sum() == 5  # one position per block, five blocks written
            assert np.isfinite(values[computed]).all()
            np.testing.assert_array_equal(values[computed], expected[name][computed])
    summary = run_on_file(path, AzimuthalIntegration, **PARAMS)
    assert summary.resumed and summary.computed_positions == kill_scan.n_positions - 5
    got = results(path)
    for key in expected:
        assert got[key].tobytes() == expected[key].tobytes(), key


def test_pyscatter_open_reads_while_a_job_writes_and_never_blocks_it(ctx, tmp_path, kill_scan):
    """Issue 19.8: h5py.File(path, "r") fails with errno 11 while a job writes."""
    from conftest import write_scan

    import pyscatter

    path = write_scan(tmp_path / "live.h5", kill_scan)
    early = pyscatter.open(path)  # a notebook holding the file before the job starts
    proc, resume = start_paused(ctx, path, after=3)  # holds the file, 3 blocks written
    with pytest.raises(OSError, match="lock"):  # what a plain h5py reader gets meanwhile
        h5py.File(path, "r")
    with pyscatter.open(path) as f:
        writer = f.writer
        group = f.results("AzimuthalIntegration")[-1]
        seen = f.read(group, "Intensity")  # NaN where not verified at the time of reading
        ok = ~np.isnan(seen).all(axis=1)
        assert f.verified(group)[ok].all()  # verified once, verified for good
    resume.set()
    proc.join(120)
    early.close()
    assert proc.exitcode == 0  # the reader opened before it did not stop the job
    assert writer is not None and writer.pid == proc.pid
    assert 3 <= ok.sum() <= kill_scan.n_positions
    final = results(path)["Intensity"]
    np.testing.assert_array_equal(seen[ok], final[ok])  # verified rows are the final bits
    with pyscatter.open(path) as f:
        assert f.verified(f.results("AzimuthalIntegration")[-1]).all() and f.writer is None
