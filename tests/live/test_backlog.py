"""A watch behind its detector catches up: frames ready together are computed and committed
together, and written while the steps compute the frames written before.

The source is an Eiger-like HDF5 file already holding every frame, read ``per_poll`` frames per
poll (``MAX_FRAMES_PER_POLL``): nothing depends on timing. The reference is the same watch
reading one frame per poll (every frame written and computed alone, one commit each) and the
offline run of the finished scan, bit for bit. Kills are SIGKILLs a watch sends itself at a
chosen step (a frame's data written, not flagged, while the steps compute; a step's results
written, not flagged, while frames are written); the same command then finishes the scan.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import h5py
import numpy as np
import pytest

from pyscatter.datasets import oriented_map
from pyscatter.live import growing_h5
from pyscatter.live.livefile import LiveFile
from pyscatter.live.runner import WatchOptions, watch
from pyscatter.live.simulate import H5Writer, scan_frames
from pyscatter.processes.live_session import LiveSession
from tests.live.test_watch import CHANNEL, PATIENCE, STEPS, assert_same_as_offline, cli

REPO = Path(__file__).resolve().parents[2]
N_FRAMES = 24
SHAPE = (64, 64)


@pytest.fixture(scope="module")
def scan(tmp_path_factory):
    """A finished source of N_FRAMES frames, its pipeline and the offline run of it."""
    folder = tmp_path_factory.mktemp("backlog")
    geometry = oriented_map((1,), frame_shape=SHAPE, rng=0).write_poni(folder / "geo.poni")
    source = folder / "eiger_data.h5"
    writer = H5Writer(source, SHAPE, np.int32, swmr=False, nimages=N_FRAMES, locking=False)
    writer.append(scan_frames(N_FRAMES, SHAPE))
    writer.close()
    pipeline = folder / "pipeline.yaml"
    pipeline.write_text(f"translate:\n  poni: {geometry}\n{STEPS}")

    from pyscatter.translators.images import ImageStackTranslator

    with h5py.File(source, "r") as h5:
        truth = h5["entry/data/data"][()]
    offline = folder / "offline.h5"
    ImageStackTranslator().translate(
        None, offline, frames=truth, grid={"Image": N_FRAMES}, poni=geometry
    )
    (folder / "offline.yaml").write_text(f"output: {offline}\n{STEPS}")
    ran = cli("run", str(folder / "offline.yaml"), cwd=folder)
    assert ran.returncode == 0, ran.stderr
    return source, pipeline, offline


class Spy:
    """Counts the steps' group commits (blocks in each) and where the live file is written."""

    def __init__(self, monkeypatch) -> None:
        self.commits: dict[str, list[int]] = {}
        self.write_threads: list[bool] = []  # True: written in the main thread
        commit, write = LiveSession._commit, LiveFile.write

        def counting_commit(session, pending):
            self.commits.setdefault(session.group.name, []).append(
                sum(len(run.blocks) for run in pending)
            )
            return commit(session, pending)

        def recording_write(live, arrivals):
            self.write_threads.append(threading.current_thread() is threading.main_thread())
            return write(live, arrivals)

        monkeypatch.setattr(LiveSession, "_commit", counting_commit)
        monkeypatch.setattr(LiveFile, "write", recording_write)


def run_watch(monkeypatch, source: Path, pipeline: Path, out: Path, per_poll: int) -> Spy:
    monkeypatch.setattr(growing_h5, "MAX_FRAMES_PER_POLL", per_poll)
    spy = Spy(monkeypatch)
    report = watch(
        source,
        out,
        pipeline,
        WatchOptions(until_complete=True, settle=0.0, poll_interval=0.01),
    )
    assert report.state == "complete", report.lines()
    assert report.frames_written == N_FRAMES
    monkeypatch.undo()
    return spy


def every_dataset(path: Path) -> dict[str, np.ndarray]:
    found: dict[str, np.ndarray] = {}
    with h5py.File(path, "r") as h5:
        h5.visititems(
            lambda name, obj: (
                found.__setitem__(name, obj[()]) if isinstance(obj, h5py.Dataset) else None
            )
        )
    return found


def test_frames_ready_together_are_committed_together_with_the_same_bits(
    tmp_path: Path, monkeypatch, scan
):
    """8 frames per poll: each step commits its backlog in a few group commits (one pair of
    barriers each), frames are written while the steps compute; the file equals, dataset for
    dataset (completion records included), that of a watch taking one frame at a time, and
    the offline run."""
    source, pipeline, offline = scan
    alone = run_watch(monkeypatch, source, pipeline, tmp_path / "alone.h5", per_poll=1)
    together = run_watch(monkeypatch, source, pipeline, tmp_path / "together.h5", per_poll=8)

    assert len(alone.commits) == len(together.commits) == 4  # integrate, profiles, fit, order
    for group, blocks in alone.commits.items():
        assert blocks == [1] * N_FRAMES, group  # the reference: one frame, one commit
        assert sum(together.commits[group]) == N_FRAMES, group
        assert len(together.commits[group]) <= N_FRAMES // 8 + 1, (group, together.commits)
    assert all(alone.write_threads)  # each frame written and computed in its own round
    assert not all(together.write_threads)  # some written while the steps computed

    one, many = every_dataset(tmp_path / "alone.h5"), every_dataset(tmp_path / "together.h5")
    assert sorted(one) == sorted(many)
    for name, value in one.items():
        assert many[name].dtype == value.dtype, name
        assert many[name].tobytes() == value.tobytes(), name
    assert assert_same_as_offline(tmp_path / "together.h5", offline, groups_only=True) >= 8


KILLER = """
import os, signal, sys, threading
sys.path.insert(0, {repo!r})
from pyscatter.live import growing_h5
from pyscatter.live.livefile import LiveFile
from pyscatter.processes import live_session
growing_h5.MAX_FRAMES_PER_POLL = 8
where, nth = sys.argv[1], int(sys.argv[2])
seen = [0]

def kill_at_nth(original, thread):
    def patched(*args, **kwargs):
        if thread(threading.current_thread() is threading.main_thread()):
            seen[0] += 1
            if seen[0] == nth:
                os.kill(os.getpid(), signal.SIGKILL)
        return original(*args, **kwargs)
    return patched

if where == "frame":  # the writer thread: frames stored, their flags not written yet
    LiveFile._store = kill_at_nth(LiveFile._store, lambda main: not main)
else:  # a step's results written and fsynced, their flags not written yet
    live_session._Run.flags = kill_at_nth(live_session._Run.flags, lambda main: main)
from pyscatter.cli import main
sys.exit(main(sys.argv[3:]))
"""


@pytest.mark.parametrize(("where", "nth"), [("frame", 3), ("frame", 11), ("results", 4)])
def test_killed_while_writing_and_computing_resumes_to_the_offline_bits(
    tmp_path: Path, scan, where: str, nth: int
):
    """SIGKILL in the middle of an overlapped round; the same command started again finishes
    the scan: raw frames and every step's results equal the offline run's."""
    source, pipeline, offline = scan
    out = tmp_path / "live.h5"
    script = tmp_path / "killer.py"
    script.write_text(textwrap.dedent(KILLER).format(repo=str(REPO)))
    command = ["watch", str(source), "-o", str(out), "--pipeline", str(pipeline)]
    command += ["--until-complete", "--settle", "0"]
    env = dict(os.environ, PYTHONPATH=str(REPO))
    killed = subprocess.run(
        [sys.executable, str(script), where, str(nth), "-q", *command],
        capture_output=True, text=True, timeout=PATIENCE, env=env, check=False,
    )  # fmt: skip
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    with h5py.File(out, "r", locking=False) as h5:
        flagged = int((h5[f"{CHANNEL}/live_frames"][()] != 0).sum())
    assert 0 < flagged < N_FRAMES  # killed mid-scan, some frames kept

    again = cli(*command, cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert "complete (scan complete)" in again.stdout
    assert "were there already" in again.stdout
    with h5py.File(source, "r") as h5:
        truth = h5["entry/data/data"][()]
    with h5py.File(out, "r") as h5:
        raw = h5[f"{CHANNEL}/Raw_Data"][()]
    np.testing.assert_array_equal(raw, truth.reshape(N_FRAMES, -1))
    assert assert_same_as_offline(out, offline, groups_only=True) >= 8
