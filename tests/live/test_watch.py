"""``pyscatter watch``: a scan followed while a simulated detector writes it, killed, restarted.

The reference is always the offline run of the finished scan: ``pyscatter translate`` of the same
files, then ``pyscatter run`` of the same steps. The live file must hold the same raw frames,
positions and results, bit for bit (the completion records differ by design: a watch writes
blocks of one position). Kills are SIGKILL sent once the watch reported some frames in its
status file, wherever it is then; nothing waits for a fixed time.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import hdf5plugin  # noqa: F401  (bitshuffle-LZ4 raw data)
import numpy as np
import pytest

from pyscatter.datasets import oriented_map
from pyscatter.io.safety import read_status
from pyscatter.live.runner import WatchOptions, watch
from pyscatter.live.simulate import FolderWriter, H5Writer, scan_frames

CHANNEL = "Measurement_000/Channel_000"
STEPS = """\
steps:
  - integrate: {npt: 40, unit: q_nm^-1, error_model: poisson}
  - profiles: {q: [1.0], half_width: 0.2, npt_azim: 36}
  - fit: {model: maier_saupe}
  - order: {}
"""
#: Datasets a watch writes that an offline run does not, or writes differently by design.
LIVE_ONLY = ("live_frames", "completed_chunks")
#: How long a subprocess may take before the test gives up (a hang, not a timing assertion).
PATIENCE = 240


def python(*args: str, **kw) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, *args], **kw)


def wait_for(predicate, what: str, proc: subprocess.Popen | None = None) -> None:
    """Poll until ``predicate()``; fail (not time out silently) after PATIENCE seconds."""
    deadline = time.monotonic() + PATIENCE
    while not predicate():
        if proc is not None and proc.poll() is not None:
            out = proc.stdout.read() if proc.stdout else ""
            raise AssertionError(f"{what}: the process ended first (exit {proc.returncode}) {out}")
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.05)


def frames_reported(output: Path) -> int:
    status = read_status(output) or {}
    return int(status.get("frames_written", 0))


def datasets(path: Path) -> dict[str, np.ndarray]:
    found: dict[str, np.ndarray] = {}
    with h5py.File(path, "r") as h5:

        def visit(name: str, obj) -> None:
            if isinstance(obj, h5py.Dataset) and name.split("/")[-1] not in LIVE_ONLY:
                found[name] = obj[()]

        h5.visititems(visit)
    return found


def assert_same_as_offline(live: Path, offline: Path, *, groups_only: bool = False) -> int:
    """Every dataset of the offline file is in the live file with the same bits."""
    got, ref = datasets(live), datasets(offline)
    compared = 0
    for name, value in ref.items():
        if name.split("/")[-1] in LIVE_ONLY or (groups_only and "-" not in name):
            continue
        assert name in got, f"{name} missing from the live file"
        assert got[name].shape == value.shape, name
        assert got[name].dtype == value.dtype, name
        if value.dtype.kind == "f":
            np.testing.assert_array_equal(got[name], value, err_msg=name, strict=True)
        else:
            assert np.array_equal(got[name], value), name
        compared += 1
    return compared


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "pyscatter", "-q", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=PATIENCE,
        check=False,
    )


def kill_mid_scan_then_finish(
    command: list[str], out: Path, frames: int, detector: subprocess.Popen
) -> subprocess.CompletedProcess:
    """Start ``command`` (a watch), SIGKILL it once its status reports ``frames`` frames, let the
    detector finish, then run the same command again to the end; returns that second run."""
    watcher = python(*command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        wait_for(lambda: frames_reported(out) >= frames, f"{frames} frames in the file", watcher)
        watcher.send_signal(signal.SIGKILL)
        watcher.wait()
        with h5py.File(out, "r", locking=False) as h5:  # readable as the kill left it
            assert f"{CHANNEL}/Raw_Data" in h5
    finally:
        if watcher.poll() is None:
            watcher.kill()
        assert detector.wait(timeout=PATIENCE) == 0
    again = subprocess.run(
        [sys.executable, *command], capture_output=True, text=True, timeout=PATIENCE, check=False
    )
    assert again.returncode == 0, again.stderr
    return again


@pytest.fixture
def geometry(tmp_path: Path) -> Path:
    scan = oriented_map((1,), frame_shape=(64, 64), rng=0)
    return scan.write_poni(tmp_path / "geo.poni")


def test_folder_watch_killed_and_restarted_equals_offline(tmp_path: Path, geometry: Path):
    """Frames land out of order, half-written for a while; the watch is killed mid-scan and
    started again; the result equals translate + run of the finished folder, bit for bit."""
    pipeline = tmp_path / "pipeline.yaml"
    pipeline.write_text(f"translate:\n  poni: {geometry}\n{STEPS}")
    out, frames = tmp_path / "live.h5", tmp_path / "frames"
    detector = python(
        "-m", "pyscatter.live.simulate", "folder", str(frames), "--frames", "20",
        "--rate", "15", "--fmt", "edf", "--mode", "inplace", "--shuffle", "--frame-shape", "64x64",
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    command = [
        "-m", "pyscatter", "-q", "watch", str(frames), "-o", str(out), "--pipeline",
        str(pipeline), "--grid", "Y=4,X=5", "--first-number", "0", "--until-complete",
        "--settle", "0.2",
    ]  # fmt: skip
    again = kill_mid_scan_then_finish(command, out, 5, detector)
    assert "complete (scan complete)" in again.stdout
    assert "were there already" in again.stdout  # the restart did not rewrite them

    offline = tmp_path / "offline.h5"
    files = sorted(str(p) for p in frames.glob("*.edf"))
    assert cli("translate", *files, "-o", str(offline), "--grid", "Y=4,X=5",
               "--poni", str(geometry), cwd=tmp_path).returncode == 0  # fmt: skip
    (tmp_path / "offline.yaml").write_text(f"output: {offline}\n{STEPS}")
    ran = cli("run", str(tmp_path / "offline.yaml"), cwd=tmp_path)
    assert ran.returncode == 0, ran.stderr
    compared = assert_same_as_offline(out, offline)
    assert compared > 40
    with h5py.File(out, "r") as h5:
        assert h5.attrs["live_state"] == "complete"


def test_growing_hdf5_watch_killed_and_restarted_equals_offline(tmp_path: Path, geometry: Path):
    """An Eiger-like file growing frame by frame (bitshuffle-LZ4, its nimages declared)."""
    pipeline = tmp_path / "pipeline.yaml"
    pipeline.write_text(f"translate:\n  poni: {geometry}\n{STEPS.split('  - profiles')[0]}")
    out, source = tmp_path / "live.h5", tmp_path / "eiger_data.h5"
    detector = python(
        "-m", "pyscatter.live.simulate", "h5", str(source), "--frames", "16", "--rate", "15",
        "--frame-shape", "64x64", stdout=subprocess.DEVNULL,
    )  # fmt: skip
    command = [
        "-m", "pyscatter", "-q", "watch", str(source), "-o", str(out), "--pipeline",
        str(pipeline), "--until-complete", "--settle", "0.2",
    ]  # fmt: skip
    wait_for(source.exists, "the detector's file")
    kill_mid_scan_then_finish(command, out, 4, detector)

    with h5py.File(source, "r") as h5:
        truth = h5["entry/data/data"][()]
    with h5py.File(out, "r") as h5:
        raw = h5[f"{CHANNEL}/Raw_Data"][()]
        np.testing.assert_array_equal(raw, truth.reshape(len(truth), -1))
    # offline: the same frames translated as images, then the same step
    offline = tmp_path / "offline.h5"
    from pyscatter.translators.images import ImageStackTranslator

    ImageStackTranslator().translate(
        None, offline, frames=truth, grid={"Image": len(truth)}, poni=geometry
    )
    (tmp_path / "offline.yaml").write_text(f"output: {offline}\n{STEPS.split('  - profiles')[0]}")
    assert cli("run", str(tmp_path / "offline.yaml"), cwd=tmp_path).returncode == 0
    assert assert_same_as_offline(out, offline, groups_only=True) >= 2


def test_spec_scan_followed_point_by_point_equals_offline_spectra(tmp_path: Path):
    """A SPEC mesh appended point by point, an MCA spectrum per point: killed and restarted,
    the live raw spectra equal the SPEC translator's of the finished file."""
    out, source = tmp_path / "live.h5", tmp_path / "scan.spec"
    detector = python(
        "-m", "pyscatter.live.simulate", "spec", str(source), "--scan", "mesh", "--shape",
        "3x4", "--rate", "15", "--channels", "64", stdout=subprocess.DEVNULL,
    )  # fmt: skip
    command = ["-m", "pyscatter", "-q", "watch", str(source), "-o", str(out), "--until-complete"]
    wait_for(source.exists, "the SPEC file")
    kill_mid_scan_then_finish(command, out, 3, detector)
    offline = tmp_path / "offline.h5"
    done = cli("translate", str(source), "-o", str(offline), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    with h5py.File(out, "r") as live, h5py.File(offline, "r") as ref:
        got, want = live[f"{CHANNEL}/Raw_Data"], ref[f"{CHANNEL}/Raw_Data"]
        assert got.shape == want.shape == (12, 64)
        assert got.dtype == want.dtype
        np.testing.assert_array_equal(got[()], want[()])


# ----------------------------------------------------------------------------- bad input, faults


def write_frames(folder: Path, n: int, shape=(64, 64)) -> FolderWriter:
    writer = FolderWriter(folder, scan_frames(n, shape), fmt="edf")
    for i in range(n):
        writer.write(i)
    return writer


def test_corrupt_and_foreign_frames_are_named_and_skipped(tmp_path: Path, geometry: Path):
    """A corrupt image and a frame of another shape: one problem each, naming the file; every
    other frame is written and integrated; once every position is accounted for the scan
    ends as an aborted one: those two positions are never measured (NaN results, as offline)."""
    frames = tmp_path / "frames"
    writer = write_frames(frames, 6)
    writer.path(2).write_bytes(b"not an image at all" * 10)
    foreign = np.ones((32, 32), dtype=np.int32)
    FolderWriter(frames, foreign[None], fmt="edf", start=4).write(0)  # frame 4: 32 × 32
    out = tmp_path / "live.h5"
    steps = tmp_path / "p.yaml"
    steps.write_text(f"translate:\n  poni: {geometry}\n{STEPS.split('  - profiles')[0]}")
    report = watch(
        frames,
        out,
        steps,
        WatchOptions(grid="Image=6", idle=3.0, settle=0.05, frame_timeout=0.5, first_number=0),
    )
    text = "\n".join(report.problems)
    assert str(writer.path(2)) in text and str(writer.path(4)) in text, text
    assert report.stopped_by == "scan ended" and report.state == "aborted"
    with h5py.File(out, "r") as h5:
        done = h5[f"{CHANNEL}/live_frames"][()] != 0
        assert done.tolist() == [True, True, False, True, False, True]
        assert h5[f"{CHANNEL}/valid_positions"][()].tolist() == done.tolist()
        assert (h5[f"{CHANNEL}/Raw_Data"][~done] == 0).all()
        group = h5[report.groups["integrate"]]
        intensity = group["Intensity"][()]
    assert np.isfinite(intensity[done]).all() and np.isnan(intensity[~done]).all()
    from pyscatter.cli.info import describe

    assert "  live: stopped, 4 of 6 frames written" in describe(str(out)).splitlines()


def test_replaced_source_stops_the_watch_and_keeps_what_was_written(tmp_path: Path, geometry: Path):
    """The detector's HDF5 file replaced during the watch: a fatal problem naming it, the watch
    stops, the frames and results already written stay and verify."""
    source = tmp_path / "data.h5"
    frames = scan_frames(8, (64, 64))
    writer = H5Writer(source, (64, 64), frames.dtype, swmr=False, nimages=8, locking=False)
    writer.append(frames[:4])
    writer.close()
    replaced: list[bool] = []

    def replace_after_first_frames(report) -> None:
        if report.frames_written >= 4 and not replaced:
            replaced.append(True)
            os.replace(source, tmp_path / "old.h5")
            other = H5Writer(source, (64, 64), frames.dtype, swmr=False, locking=False)
            other.append(frames[:2])
            other.close()

    steps = tmp_path / "p.yaml"
    steps.write_text(f"translate:\n  poni: {geometry}\n{STEPS.split('  - profiles')[0]}")
    out = tmp_path / "live.h5"
    report = watch(
        source, out, steps, WatchOptions(settle=0.05, idle=60), on_round=replace_after_first_frames
    )
    assert report.stopped_by == "source problem"
    assert any(str(source) in p and "replaced" in p.lower() for p in report.problems), report
    with h5py.File(out, "r") as h5:
        assert (h5[f"{CHANNEL}/live_frames"][:4] != 0).all()
        np.testing.assert_array_equal(h5[f"{CHANNEL}/Raw_Data"][:4], frames[:4].reshape(4, -1))
        assert np.isfinite(h5[report.groups["integrate"]]["Intensity"][:4]).all()


def test_a_file_another_job_holds_is_refused_with_its_holder(tmp_path: Path):
    frames = tmp_path / "frames"
    write_frames(frames, 2)
    out = tmp_path / "live.h5"
    holder = python(
        "-c",
        "import sys, time; from pyscatter.io.safety import job_lock\n"
        f"with job_lock({str(out)!r}, command='the other job'):\n"
        "    print('locked', flush=True); sys.stdin.read()",
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        done = cli("watch", str(frames), "-o", str(out), "--idle", "1", cwd=tmp_path)
    finally:
        holder.stdin.close()
        holder.wait(timeout=PATIENCE)
    assert done.returncode == 1, done.stderr
    assert "the other job" in done.stderr and str(out) in done.stderr
    assert "Traceback" not in done.stderr


def test_disk_full_is_one_clean_line_and_the_same_command_resumes(tmp_path: Path, geometry: Path):
    """A write fails (ENOSPC on the 20th fsync) mid-watch: exit 3 with one line; the same
    command then finishes, and the file equals the offline run."""
    from tests.faults.harness import run_cli

    frames = tmp_path / "frames"
    write_frames(frames, 8)
    steps = tmp_path / "p.yaml"
    steps.write_text(f"translate:\n  poni: {geometry}\n{STEPS.split('  - profiles')[0]}")
    out = tmp_path / "live.h5"
    args = ["watch", str(frames), "-o", str(out), "--pipeline", str(steps),
            "--grid", "Image=8", "--until-complete", "--settle", "0.05"]  # fmt: skip
    first = run_cli(args, cwd=tmp_path, inject="fsync:20:ENOSPC")
    assert first.fired and first.returncode == 3, first.stderr
    assert first.problems() == [], first.stderr
    second = run_cli(args, cwd=tmp_path)
    assert second.returncode == 0, second.stderr
    offline = tmp_path / "offline.h5"
    files = sorted(str(p) for p in frames.glob("*.edf"))
    assert cli("translate", *files, "-o", str(offline), "--grid", "Image=8",
               "--poni", str(geometry), cwd=tmp_path).returncode == 0  # fmt: skip
    (tmp_path / "o.yaml").write_text(f"output: {offline}\n{STEPS.split('  - profiles')[0]}")
    assert cli("run", str(tmp_path / "o.yaml"), cwd=tmp_path).returncode == 0
    assert assert_same_as_offline(out, offline) > 10


def test_unbounded_series_grows_and_side_files_match_the_file(tmp_path: Path, geometry: Path):
    """No declared shape: the series grows with the frames; one .dat per integrated frame
    holding that position's q, I and sigma."""
    frames = tmp_path / "frames"
    write_frames(frames, 5)
    steps = tmp_path / "p.yaml"
    steps.write_text(f"translate:\n  poni: {geometry}\n{STEPS.split('  - profiles')[0]}")
    out, side = tmp_path / "live.h5", tmp_path / "side"
    report = watch(frames, out, steps, WatchOptions(idle=0.5, settle=0.05, side_outputs=side))
    assert report.positions == 5 and report.side_files == 5
    with h5py.File(out, "r") as h5:
        group = h5[report.groups["integrate"]]
        q = group["Spectroscopic_Values"][0]
        for i in range(5):
            table = np.loadtxt(side / f"frame_{i:06d}.dat")
            np.testing.assert_allclose(table[:, 0], q, rtol=1e-9)
            np.testing.assert_allclose(table[:, 1], group["Intensity"][i], rtol=1e-9)
            np.testing.assert_allclose(table[:, 2], group["Intensity_Sigma"][i], rtol=1e-9)
    # more frames later: the same command continues the series
    FolderWriter(frames, scan_frames(3, (64, 64)), fmt="edf", start=5).write(0)
    again = watch(frames, out, steps, WatchOptions(idle=0.5, settle=0.05))
    assert again.frames_before == 5 and again.frames_written == 1 and again.positions == 6
    assert again.positions_done == {"integrate": 6}
    assert again.side_files == 0  # no side outputs asked for this time


def test_a_backlog_is_read_in_turns(tmp_path: Path):
    """However many frames wait, one poll reads at most MAX_FRAMES_PER_POLL of them (a watch
    far behind keeps its memory bounded); the following polls read the rest, each once."""
    from pyscatter.live.sources import MAX_FRAMES_PER_POLL, open_source

    n = 2 * MAX_FRAMES_PER_POLL + 5
    source = tmp_path / "data.h5"
    writer = H5Writer(source, (64, 64), np.int32, swmr=False, nimages=n, locking=False)
    writer.append(scan_frames(n, (64, 64)))
    writer.close()
    folder = tmp_path / "frames"
    write_frames(folder, n)
    for path in (source, folder):
        options = {"start": 0} if path == folder else {}
        src = open_source(path, settle=0.0, **options)
        got: list[int] = []
        while True:
            batch = [a.index for a in src.poll()]
            if not batch:
                break
            assert len(batch) <= MAX_FRAMES_PER_POLL
            got += batch
        src.close()
        assert sorted(got) == list(range(n)), path


def test_side_outputs_need_a_1d_integration(tmp_path: Path, geometry: Path):
    """Refused before anything is written, naming what is wrong."""
    from pyscatter.errors import InputError

    frames = tmp_path / "frames"
    write_frames(frames, 2)
    cake = tmp_path / "cake.yaml"
    cake.write_text(
        f"translate: {{poni: {geometry}}}\n"
        "steps:\n  - integrate: {npt: 40, npt_azim: 12, unit: q_nm^-1}\n"
    )
    options = WatchOptions(idle=0.5, side_outputs=tmp_path / "side")
    with pytest.raises(InputError, match="npt_azim=12"):
        watch(frames, tmp_path / "live.h5", cake, options)
    none = tmp_path / "none.yaml"
    none.write_text(f"translate: {{poni: {geometry}}}\nsteps: []\n")
    with pytest.raises(InputError, match="needs an integrate step"):
        watch(frames, tmp_path / "live.h5", none, options)
    assert not (tmp_path / "live.h5").exists()
