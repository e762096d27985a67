"""The live file equals the offline translation of the same finished frames, and survives kills.

The reference is always the offline translator itself (``ImageStackTranslator().translate`` of
the same image files, or ``write_measurement`` of the same spectra): values, dtypes, shapes and
labels of ``Raw_Data``, ``Position_*``, ``Spectroscopic_*``, ``Mask``, ``Frame_Checksums`` and
``valid_positions`` must be identical. Kill tests send SIGKILL to a writer subprocess after it
reported some commits (wherever it is then), never wait for time to pass.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np
import pytest
from fabio.edfimage import EdfImage
from numpy.testing import assert_array_equal

import pyscatter
from pyscatter.errors import InputError
from pyscatter.io.integrity import verify_file
from pyscatter.io.raw import MeasurementSpec, write_measurement
from pyscatter.io.safety import job_lock
from pyscatter.io.usid import Dim
from pyscatter.live.layout import images_layout, spectra_layout
from pyscatter.live.livefile import LiveFile
from pyscatter.translators.common import read_image
from pyscatter.translators.images import ImageStackTranslator

REPO = Path(__file__).resolve().parents[2]
CHANNEL = "Measurement_000/Channel_000"
COMPARED = (
    "Raw_Data",
    "Position_Indices",
    "Position_Values",
    "Spectroscopic_Indices",
    "Spectroscopic_Values",
    "Mask",
    "Frame_Checksums",
    "valid_positions",
    "Monitor",
)


@dataclass(frozen=True)
class Arrival:  # the contract of pyscatter.live.sources.Arrival (written by another helper)
    index: int
    frame: np.ndarray
    origin: str
    values: dict[str, float] = field(default_factory=dict)


# --------------------------------------------------------------------------- helpers


def write_stack(folder: Path, n: int, shape=(6, 5), seed=0, header=None) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    paths = []
    for i in range(n):
        data = rng.integers(0, 1000, size=shape, dtype=np.int32)
        path = folder / f"img_{i:04d}.edf"
        EdfImage(data=data, header={"mon": str(100 + i), **(header or {})}).write(str(path))
        paths.append(path)
    return paths


def write_poni(path: Path) -> Path:
    from pyFAI.detectors import Detector
    from pyFAI.integrator.azimuthal import AzimuthalIntegrator
    from pyFAI.io.ponifile import PoniFile

    det = Detector(pixel1=172e-6, pixel2=172e-6)
    ai = AzimuthalIntegrator(dist=0.1, poni1=1e-3, poni2=1e-3, detector=det, wavelength=1e-10)
    with open(path, "w") as handle:
        PoniFile(ai).write(handle)
    return path


def arrivals(paths, indices) -> list[Arrival]:
    out = []
    for i in indices:
        data, header = read_image(paths[i])
        out.append(Arrival(int(i), data, f"{paths[i]}", {"mon": float(header["mon"])}))
    return out


def layout_of(paths, dims, **options):
    first, header = read_image(paths[0])
    return images_layout(first, header, dims=dims, first_file=paths[0], **options)


def write_live(path, layout, paths, order, batch=2, state=None) -> None:
    with job_lock(path), LiveFile.create_or_open(path, layout) as live:
        for start in range(0, len(order), batch):
            live.write(arrivals(paths, order[start : start + batch]))
        live.finalize(state)


def assert_same(live_path: Path, offline_path: Path) -> None:
    with h5py.File(live_path, "r") as live, h5py.File(offline_path, "r") as off:
        a, b = live[CHANNEL], off[CHANNEL]
        for name in COMPARED:
            assert (name in a) == (name in b), name
            if name not in b:
                continue
            x, y = a[name], b[name]
            assert x.dtype == y.dtype and x.shape == y.shape, name
            assert_array_equal(x[()], y[()], err_msg=name)
            for key in y.attrs:
                if key.startswith(("labels", "units", "axis_", "quantity")):
                    assert_array_equal(x.attrs[key], y.attrs[key], err_msg=f"{name}@{key}")
        assert_array_equal(
            live["Measurement_000/Raw_Frames/data"][()], off["Measurement_000/Raw_Frames/data"][()]
        )
        for key in ("geometry", "flip", "orientation"):
            if key in off["Measurement_000"].attrs:
                assert live["Measurement_000"].attrs[key] == off["Measurement_000"].attrs[key]


# --------------------------------------------------------------------------- equality


def test_bounded_scan_equals_offline_translation(tmp_path):
    paths = write_stack(tmp_path / "scan", 6)
    poni = write_poni(tmp_path / "det.poni")
    mask = np.zeros((6, 5), np.uint8)
    mask[0, :2] = 1
    offline = ImageStackTranslator().translate(
        paths, tmp_path / "off.h5", grid="Y=2,X=3", poni=poni, mask=mask, flip="ud",
        monitor="mon",
    )  # fmt: skip
    layout = layout_of(paths, [("Y", 2), ("X", 3)], poni=poni, mask=mask, flip="ud", monitor="mon")
    live = tmp_path / "live.h5"
    write_live(live, layout, paths, [4, 0, 5, 1, 3, 2])
    assert_same(live, offline)
    with h5py.File(live, "r") as h5:
        assert h5.attrs["live_state"] == "complete"
        assert len(h5[f"{CHANNEL}/Raw_Data"].attrs["live_id"]) == 36
        assert (h5[f"{CHANNEL}/live_frames"][()] >> 32 == 1).all()
    report = verify_file(live)
    assert report.ok, report.text()
    assert "6 frames match their crc32" in report.text()


def test_aborted_scan_equals_offline_pad(tmp_path):
    paths = write_stack(tmp_path / "scan", 5, seed=1)
    offline = ImageStackTranslator().translate(
        paths, tmp_path / "off.h5", grid="Y=2,X=3", incomplete="pad"
    )
    live = tmp_path / "live.h5"
    write_live(live, layout_of(paths, [("Y", 2), ("X", 3)]), paths, [3, 1, 0, 4, 2])
    assert_same(live, offline)
    with h5py.File(live, "r") as h5:
        assert h5.attrs["live_state"] == "stopped"
        assert h5["Measurement_000"].attrs["missing_positions"] == 1
    assert verify_file(live).ok


def test_unbounded_series_equals_offline_without_grid(tmp_path):
    paths = write_stack(tmp_path / "scan", 7, seed=2)
    offline = ImageStackTranslator().translate(paths, tmp_path / "off.h5")
    live = tmp_path / "live.h5"
    layout = layout_of(paths, None)
    with job_lock(live), LiveFile.create_or_open(live, layout) as lf:
        assert lf.n_positions == 1
        lf.write(arrivals(paths, [2, 0]))
        assert lf.n_positions == 3 and lf.done().tolist() == [True, False, True]
        lf.write(arrivals(paths, [1, 6, 3]))
        lf.write(arrivals(paths, [5, 4]))
        assert lf.n_positions == 7
        lf.finalize()
    assert_same(live, offline)
    check_if_main = pytest.importorskip("pyUSID").hdf_utils.check_if_main
    with h5py.File(live, "r") as h5:
        assert h5.attrs["live_state"] == "stopped"
        assert_array_equal(h5[f"{CHANNEL}/mon"][()], 100.0 + np.arange(7))
        assert check_if_main(h5[f"{CHANNEL}/Raw_Data"])
    assert verify_file(live).ok
    cli = [sys.executable, "-m", "pyscatter", "verify", str(live)]
    assert subprocess.run(cli, env=_env(), capture_output=True).returncode == 0
    with pytest.raises(InputError, match="unbounded series only stops"):
        with job_lock(live), LiveFile.create_or_open(live, layout) as lf:
            lf.finalize("complete")


def test_spectra_equal_the_spec_translators_layout(tmp_path):
    rng = np.random.default_rng(3)
    spectra = rng.integers(0, 50, size=(4, 32), dtype=np.int64)
    axis = np.arange(32.0)
    spec = MeasurementSpec(
        position_dims=[Dim("X", "", np.arange(4.0))],
        spec_dims=[Dim("Channel", "channel", axis)],
        dtype=spectra.dtype,
    )
    offline = write_measurement(tmp_path / "off.h5", spec, spectra)
    layout = spectra_layout(spectra[0], dims=[("X", 4)])
    live = tmp_path / "live.h5"
    with job_lock(live), LiveFile.create_or_open(live, layout) as lf:
        lf.write([Arrival(i, spectra[i], f"scan.spec#{i}") for i in (3, 1, 0, 2)])
        lf.finalize()
    assert_same(live, offline)
    with h5py.File(live, "r") as h5:
        assert h5[f"{CHANNEL}/Raw_Data"].compression == "gzip"


# --------------------------------------------------------------------------- bad input


def test_bad_frames_named_and_the_others_committed(tmp_path):
    paths = write_stack(tmp_path / "scan", 4)
    live = tmp_path / "live.h5"
    with job_lock(live), LiveFile.create_or_open(live, layout_of(paths, [("X", 4)])) as lf:
        good = arrivals(paths, [0, 1])
        wrong_shape = Arrival(2, np.zeros((3, 3), np.int32), "det/img_0002.edf")
        wrong_kind = Arrival(3, np.zeros((6, 5), np.float32), "det/img_0003.edf")
        outside = Arrival(9, np.zeros((6, 5), np.int32), "det/img_0009.edf")
        with pytest.raises(InputError) as err:
            lf.write([good[0], wrong_shape, wrong_kind, good[1], outside])
        text = str(err.value)
        assert "det/img_0002.edf (frame 2): frame of shape (3, 3); expected (6, 5)" in text
        assert "det/img_0003.edf (frame 3): frame of dtype float32" in text
        assert "det/img_0009.edf (frame 9): position 9 outside the scan's 4" in text
        assert lf.done().tolist() == [True, True, False, False]
        assert lf.write(good) == []  # already written: skipped


def test_other_layout_refused(tmp_path):
    paths = write_stack(tmp_path / "scan", 4)
    live = tmp_path / "live.h5"
    write_live(live, layout_of(paths, [("X", 4)]), paths, [0])
    with job_lock(live), pytest.raises(InputError) as err:
        LiveFile.create_or_open(live, layout_of(paths, [("Y", 2), ("X", 2)]))
    assert str(live) in str(err.value)
    assert "dims: declared Y=2, X=2 here, declared X=4 in the file" in str(err.value)
    (tmp_path / "plain.h5").write_bytes((tmp_path / "live.h5").read_bytes())
    with h5py.File(tmp_path / "plain.h5", "r+") as h5:
        del h5.attrs["live_layout"]
    with job_lock(tmp_path / "plain.h5"), pytest.raises(InputError, match="not a live file"):
        LiveFile.create_or_open(tmp_path / "plain.h5", layout_of(paths, [("X", 4)]))


def test_reopened_after_finalize_writes_more_and_finalizes_again(tmp_path):
    paths = write_stack(tmp_path / "scan", 6, seed=4)
    layout = layout_of(paths, [("Y", 2), ("X", 3)])
    live = tmp_path / "live.h5"
    write_live(live, layout, paths, [0, 1, 2, 3])
    with h5py.File(live, "r") as h5:
        assert "valid_positions" in h5[CHANNEL]
    write_live(live, layout, paths, [4, 5])
    offline = ImageStackTranslator().translate(paths, tmp_path / "off.h5", grid="Y=2,X=3")
    assert_same(live, offline)
    assert verify_file(live).ok


def test_reopen_with_the_stored_layout(tmp_path):
    paths = write_stack(tmp_path / "scan", 6, seed=6)
    poni = write_poni(tmp_path / "det.poni")
    mask = np.eye(6, 5, dtype=np.uint8)
    layout = layout_of(paths, [("Y", 2), ("X", 3)], poni=poni, mask=mask, flip="lr")
    live = tmp_path / "live.h5"
    write_live(live, layout, paths, [5, 0])
    with job_lock(live), LiveFile.create_or_open(live) as lf:  # no layout: the file's own
        assert lf.layout.record() == layout.record()
        assert lf.done().tolist() == [True, False, False, False, False, True]
        lf.write(arrivals(paths, [1, 2, 3, 4]))
        lf.finalize()
    offline = ImageStackTranslator().translate(
        paths, tmp_path / "off.h5", grid="Y=2,X=3", poni=poni, mask=mask, flip="lr"
    )
    assert_same(live, offline)
    with pytest.raises(InputError, match="no such live file, and no layout"):
        LiveFile.create_or_open(tmp_path / "none.h5")


def test_finalize_zeroes_a_frame_written_but_never_flagged(tmp_path):
    # a kill between a frame's data and its flag, and the source never delivers it again
    paths = write_stack(tmp_path / "scan", 5, seed=8)
    live = tmp_path / "live.h5"
    with (
        job_lock(live),
        LiveFile.create_or_open(live, layout_of(paths, [("Y", 2), ("X", 3)])) as lf,
    ):
        lf.write(arrivals(paths, range(5)))
        lf.raw[5] = lf.raw[4]  # stored, no flag
        lf.finalize()
        assert not lf.done()[5]
    offline = ImageStackTranslator().translate(paths, tmp_path / "off.h5", grid="Y=2,X=3")
    assert_same(live, offline)
    assert verify_file(live).ok


# --------------------------------------------------------------------------- readers


READER = """
import json, sys, h5py, numpy as np, pyscatter
path = sys.argv[1]
with h5py.File(path, "r", locking=False) as h5:
    raw = h5["Measurement_000/Channel_000/Raw_Data"]
    flags = h5["Measurement_000/Channel_000/live_frames"][()]
    ok = [int(i) for i in np.flatnonzero(flags)]
    sums = [int(raw[i].astype(np.int64).sum()) for i in ok]
    shape = list(raw.shape)
with pyscatter.open(path) as f:
    state = str(f.attrs["live_state"])
    view = list(f["Measurement_000/Raw_Frames/data"].shape)
print(json.dumps({"shape": shape, "ok": ok, "sums": sums, "state": state, "view": view}))
"""


def test_readers_see_the_file_while_the_writer_holds_it(tmp_path):
    paths = write_stack(tmp_path / "scan", 5, seed=5)
    live = tmp_path / "live.h5"
    with job_lock(live), LiveFile.create_or_open(live, layout_of(paths, None)) as lf:
        lf.write(arrivals(paths, [0, 3]))
        out = subprocess.run(
            [sys.executable, "-c", READER, str(live)],
            capture_output=True, text=True, check=True, env=_env(),
        )  # fmt: skip
        seen = json.loads(out.stdout)
        assert seen["shape"] == [4, 30] and seen["view"] == [4, 6, 5]
        assert seen["ok"] == [0, 3] and seen["state"] == "acquiring"
        assert seen["sums"] == [int(read_image(paths[i])[0].sum()) for i in (0, 3)]


# --------------------------------------------------------------------------- kills

WRITER = """
import os, signal, sys, json
import numpy as np
sys.path.insert(0, {repo!r})
from pyscatter.io.safety import job_lock
from pyscatter.live.livefile import LiveFile
sys.path.insert(0, {tests!r})
from {module} import arrivals, layout_of
path, paths, dims, order, batch = sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3]), \\
    json.loads(sys.argv[4]), int(sys.argv[5])
kill_in_grow = int(os.environ.get("KILL_IN_GROW", "0"))
if kill_in_grow:
    grow = LiveFile._grow
    def killing_grow(self, n):
        grow(self, n)
        if n >= kill_in_grow:
            self.h5.flush()
            os.kill(os.getpid(), signal.SIGKILL)
    LiveFile._grow = killing_grow
with job_lock(path), LiveFile.create_or_open(path, layout_of(paths, dims)) as lf:
    for start in range(0, len(order), batch):
        done = lf.write(arrivals(paths, order[start:start + batch]))
        print("committed", json.dumps(done), flush=True)
    print("end", flush=True)
    sys.stdin.read()   # wait to be killed
"""


def _env():
    return dict(os.environ, PYTHONPATH=str(REPO))


def _start_writer(tmp_path, live, paths, dims, order, batch, env=None, module="test_livefile"):
    """A writer subprocess: ``module``'s ``arrivals(paths, indices)`` and ``layout_of(paths,
    dims)`` give its frames and layout; it prints each commit and waits to be killed."""
    script = tmp_path / "writer.py"
    script.write_text(
        textwrap.dedent(WRITER).format(
            repo=str(REPO), tests=str(Path(__file__).parent), module=module
        )
    )
    args = [json.dumps([str(p) for p in paths]), json.dumps(dims), json.dumps(order), str(batch)]
    return subprocess.Popen(
        [sys.executable, str(script), str(live), *args],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env or _env(),
    )  # fmt: skip


def kill_twice(tmp_path, live, paths, dims, order, rng, layout_of, check, module="test_livefile"):
    """Two writer subprocesses (:func:`_start_writer`) of the frames of ``order`` not yet
    written, each SIGKILLed after a random number of reported commits; after each, the file is
    reopened, every reported commit must be done and ``check(live_file, i)`` holds for every
    done position. Returns the positions done."""
    committed: set[int] = set()
    for _ in range(2):
        todo = [i for i in order if i not in committed]
        proc = _start_writer(
            tmp_path, live, paths, dims, todo, batch=int(rng.integers(1, 4)), module=module
        )
        wait_for = int(rng.integers(0, max(len(todo) // 3, 1)))
        for _line in range(wait_for + 1):
            line = proc.stdout.readline().split(maxsplit=1)
            if line and line[0] == "committed":
                committed.update(json.loads(line[1]))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        with job_lock(live), LiveFile.create_or_open(live, layout_of(paths, dims)) as lf:
            done = lf.done()
            assert committed <= set(np.flatnonzero(done).tolist())
            for i in np.flatnonzero(done):
                check(lf, int(i))
            committed = set(np.flatnonzero(done).tolist())
    return committed


@pytest.mark.parametrize("dims", [[["Y", 3], ["X", 4]], None], ids=["bounded", "series"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_kill9_at_random_points_then_resume_equals_offline(tmp_path, dims, seed):
    rng = np.random.default_rng(seed)
    paths = write_stack(tmp_path / "scan", 12, seed=seed)
    grid = None if dims is None else "Y=3,X=4"
    offline = ImageStackTranslator().translate(paths, tmp_path / "off.h5", grid=grid)
    live = tmp_path / "live.h5"
    order = [int(i) for i in rng.permutation(12)]

    def holds_its_source(lf, i):  # every frame said done holds its source's bytes
        assert_array_equal(lf.raw[i], lf._row(arrivals(paths, [i])[0])[0])

    committed = kill_twice(tmp_path, live, paths, dims, order, rng, layout_of, holds_its_source)
    with job_lock(live), LiveFile.create_or_open(live, layout_of(paths, dims)) as lf:
        lf.write(arrivals(paths, [i for i in order if i not in committed]))
        lf.finalize()
    assert_same(live, offline)
    assert verify_file(live).ok


def test_kill_inside_a_grow_is_rolled_back(tmp_path):
    paths = write_stack(tmp_path / "scan", 5, seed=7)
    live = tmp_path / "live.h5"
    proc = _start_writer(
        tmp_path, live, paths, None, [0, 1, 2, 3, 4], batch=1, env=dict(_env(), KILL_IN_GROW="3")
    )
    lines = proc.stdout.read().split("\n")  # the writer kills itself inside the third grow
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert [x for x in lines if x] == ["committed [0]", "committed [1]"]
    assert Path(f"{live}.journal").exists()
    layout = layout_of(paths, None)
    with job_lock(live), LiveFile.create_or_open(live, layout) as lf:
        assert not Path(f"{live}.journal").exists()
        assert lf.n_positions == 2 and lf.done().tolist() == [True, True]
        lf.write(arrivals(paths, [4, 2, 3]))
        lf.finalize()
    offline = ImageStackTranslator().translate(paths, tmp_path / "off.h5")
    assert_same(live, offline)
    assert verify_file(live).ok
    with pyscatter.open(live) as f:
        assert f.attrs["live_state"] == "stopped"
