"""The sources ``pyscatter watch`` follows: folder of images, growing HDF5, SPEC scan.

The simulated detectors are driven synchronously and time is a fake clock: no test depends on
timing. Frames are compared with what fabio / h5py / the offline SPEC translator read.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

from pyscatter.errors import InputError
from pyscatter.live.folder import FolderSource, frame_number, is_temporary
from pyscatter.live.growing_h5 import GrowingH5Source, swmr_flag
from pyscatter.live.simulate import FolderWriter, H5Writer, SpecWriter, scan_frames, scan_spectra
from pyscatter.live.sources import Arrival, LiveSource, open_source
from pyscatter.live.spec_follow import SpecSource
from pyscatter.translators.common import read_image
from pyscatter.translators.spec_scans import read_scan


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


@pytest.fixture(scope="module")
def frames() -> np.ndarray:
    return scan_frames(6, (64, 72))


def folder_source(path: Path, clock: Clock, **kw) -> FolderSource:
    kw.setdefault("settle", 1.0)
    kw.setdefault("timeout", 10.0)
    return FolderSource(path, clock=clock, watch=False, **kw)


# --------------------------------------------------------------------------- folder


@pytest.mark.parametrize("fmt", ["tif", "cbf", "edf"])
def test_folder_half_written_file_waits_until_complete(tmp_path, frames, fmt):
    clock = Clock()
    writer = FolderWriter(tmp_path, frames, fmt=fmt, mode="inplace")
    source = folder_source(tmp_path, clock)
    writer.begin(0, 0.5)
    assert source.poll() == []
    clock.t = 5.0  # settled, but fabio cannot read it whole
    assert source.poll() == [] and source.problems == []
    writer.finish(0)
    assert source.poll() == []  # changed: must settle again
    clock.t = 6.5
    (arrival,) = source.poll()
    expected, _ = read_image(writer.path(0))
    assert isinstance(arrival, Arrival) and arrival.index == 0
    assert arrival.frame.dtype == expected.dtype
    np.testing.assert_array_equal(arrival.frame, expected)
    np.testing.assert_array_equal(arrival.frame, frames[0])
    assert arrival.origin == str(writer.path(0))
    assert source.poll() == []  # once only
    assert isinstance(source, LiveSource)


def test_folder_rename_convention_is_complete_at_once(tmp_path, frames):
    clock = Clock()
    writer = FolderWriter(tmp_path, frames, fmt="edf", mode="rename")
    source = folder_source(tmp_path, clock, settle=100.0)
    writer.begin(0, 0.5)  # frame_00000.edf.tmp
    assert source.poll() == [] and source.renames_seen
    writer.finish(0)
    (arrival,) = source.poll()  # no settle wait: it appeared by rename
    np.testing.assert_array_equal(arrival.frame, read_image(writer.path(0))[0])
    assert arrival.values == {"Image": 0.0}  # motor_mne / motor_pos of the EDF header
    assert source.first_header()["motor_mne"] == "Image"


def test_folder_temporary_names_are_never_frames():
    assert all(is_temporary(n) for n in (".f_1.cbf", "f_1.cbf.tmp", "f_1.cbf.part", "f_1.cbf~"))
    assert not is_temporary("f_1.cbf")
    assert frame_number("scan3_00012.cbf") == 12 and frame_number("mask.edf") is None


def test_folder_out_of_order_and_start_number(tmp_path, frames):
    clock = Clock()
    writer = FolderWriter(tmp_path, frames, fmt="cbf", mode="rename", start=7)
    source = folder_source(tmp_path, clock, settle=0.0)
    for i in (3, 1):
        writer.write(i)
    got = source.poll()
    assert source.start == 8  # the smallest number of the first poll that found files
    assert [a.index for a in got] == [0, 2]
    # a restart passes the recorded start back: frame 0 (number 7) is index 0
    again = folder_source(tmp_path, clock, settle=0.0, start=7, grid="Y=2,X=3")
    for i in (5, 0, 2, 4):
        writer.write(i)
    got = again.poll()
    assert sorted(a.index for a in got) == [0, 1, 2, 3, 4, 5]
    for a in got:
        np.testing.assert_array_equal(a.frame, frames[a.index])
    assert again.declared_dims() == [("Y", 2), ("X", 3)] and again.finished()


def test_folder_skip_does_not_read(tmp_path, frames):
    clock = Clock()
    writer = FolderWriter(tmp_path, frames, fmt="cbf", mode="rename")
    for i in range(3):
        writer.write(i)
    writer.path(1).write_bytes(b"not an image")  # never decoded when skipped
    source = folder_source(tmp_path, clock, settle=0.0, grid="X=3")
    got = source.poll(skip=lambda i: i == 1)
    assert [a.index for a in got] == [0, 2] and source.problems == [] and source.finished()


def test_folder_frame_that_never_completes_is_a_problem(tmp_path, frames):
    clock = Clock()
    writer = FolderWriter(tmp_path, frames, fmt="cbf", mode="inplace")
    source = folder_source(tmp_path, clock, timeout=10.0)
    writer.begin(0, 0.4)
    writer.write(1)
    assert source.poll() == []
    clock.t = 2.0
    assert [a.index for a in source.poll()] == [1]
    clock.t = 11.0
    assert source.poll() == []
    (problem,) = source.problems
    assert not problem.fatal and problem.frame == 0 and problem.file == str(writer.path(0))
    assert str(writer.path(0)) in problem.message and "did not complete" in problem.message
    assert source.poll() == [] and len(source.problems) == 1  # reported once
    writer.finish(0)  # it changed: tried again once settled
    clock.t = 13.0
    assert source.poll() == []
    clock.t = 14.5
    assert [a.index for a in source.poll()] == [0]


def test_folder_corrupt_image_and_other_shape_are_skipped(tmp_path, frames):
    clock = Clock()
    writer = FolderWriter(tmp_path, frames, fmt="edf", mode="rename")
    source = folder_source(tmp_path, clock, settle=0.0)
    writer.write(0)
    writer.write(1, data=b"{\nHeaderID = EH:000001:000000:000000 ;\n garbage")
    writer.write(2, frame=frames[2][:32])
    writer.write(3)
    writer.begin(4)  # a temp name: the rename convention is in force
    got = source.poll()
    assert [a.index for a in got] == [0, 3]
    assert {p.frame for p in source.problems} == {1, 2}
    assert all(not p.fatal for p in source.problems)
    by_frame = {p.frame: p.message for p in source.problems}
    assert "corrupt" in by_frame[1] and str(writer.path(1)) in by_frame[1]
    assert "shape (32, 72)" in by_frame[2] and str(writer.path(2)) in by_frame[2]


# --------------------------------------------------------------------------- HDF5


@pytest.mark.parametrize("swmr", [True, False])
def test_hdf5_growth(tmp_path, frames, swmr):
    clock = Clock()
    path = tmp_path / "eiger.h5"
    writer = H5Writer(
        path, frames.shape[1:], frames.dtype, swmr=swmr, nimages=3, ntrigger=2, locking=False
    )
    source = GrowingH5Source(path, clock=clock, watch=False, settle=1.0)
    assert swmr_flag(path) is swmr
    assert source.poll() == [] and source.declared_dims() == [("Image", 6)]
    writer.append(frames[:2])
    got = source.poll()
    # SWMR: every frame shown is complete; without, the last one waits for the next or settle
    assert [a.index for a in got] == ([0, 1] if swmr else [0])
    writer.append(frames[2:6])
    writer.close()
    clock.t = 2.0
    got += source.poll()
    assert [a.index for a in got] == list(range(6 if swmr else 5))
    assert source.poll() == []  # no SWMR: the last frame waits for the file to settle
    clock.t = 3.5
    got += source.poll()
    assert [a.index for a in got] == list(range(6)) and source.finished()
    with h5py.File(path, "r", locking=False) as h5:
        dset = h5["/entry/data/data"]
        stored = dset[()]
        chunks = [dset.id.read_direct_chunk((i, 0, 0)) for i in range(6)]
    # one bitshuffle-LZ4 chunk per frame: delivered as stored, the first one decoded too
    assert got[0].frame is not None and all(a.frame is None for a in got[1:])
    for a in got:
        assert a.origin == f"{path}#frame {a.index}"
        assert (a.chunk.filter_mask, a.chunk.data) == chunks[a.index]
        assert a.chunk.shape == stored.shape[1:] and np.dtype(a.chunk.dtype) == stored.dtype
        np.testing.assert_array_equal(a.chunk.decode(), stored[a.index])
    assert got[0].frame.dtype == stored.dtype
    np.testing.assert_array_equal(got[0].frame, stored[0])
    assert source.problems == []
    source.close()


@pytest.mark.parametrize("chunks", ["frame", "two frames", "uncompressed"])
def test_hdf5_other_chunking_is_decoded(tmp_path, frames, chunks):
    import hdf5plugin

    path = tmp_path / "scan.h5"
    with h5py.File(path, "w") as h5:
        filters = {} if chunks == "uncompressed" else dict(hdf5plugin.Bitshuffle(cname="lz4"))
        shape = (2 if chunks == "two frames" else 1, *frames.shape[1:])
        h5.create_dataset("entry/data/data", data=frames, chunks=shape, **filters)
    source = GrowingH5Source(path, clock=Clock(), watch=False, settle=0)
    got = source.poll(skip=lambda i: i == 0)
    assert [a.index for a in got] == [1, 2, 3, 4, 5]
    if chunks == "frame":  # the first frame delivered is decoded, the others are chunks only
        assert got[0].chunk is not None and got[0].frame is not None
        assert all(a.frame is None for a in got[1:])
        got = [dataclasses.replace(a, frame=a.chunk.decode()) for a in got]
    else:
        assert all(a.chunk is None for a in got)
    for a in got:
        np.testing.assert_array_equal(a.frame, frames[a.index])
    assert len(source.poll()) == 0 and source.finished() is False


def test_hdf5_first_3d_dataset_skip_and_grid(tmp_path, frames):
    path = tmp_path / "lima.h5"
    with h5py.File(path, "w") as h5:
        h5["entry_0000/measurement/data"] = frames
    source = open_source(path, grid="Y=2,X=3", watch=False, settle=0)
    got = source.poll(skip=lambda i: i < 2)
    assert [a.index for a in got] == [2, 3, 4, 5] and source.declared_dims() == [("Y", 2), ("X", 3)]
    assert source.finished()
    np.testing.assert_array_equal(got[0].frame, frames[2])


@pytest.mark.parametrize("fault", ["truncated", "replaced", "shrunk"])
def test_hdf5_truncated_or_replaced_is_fatal(tmp_path, frames, fault):
    path = tmp_path / "scan.h5"
    with h5py.File(path, "w") as h5:
        h5.create_dataset(
            "entry/data/data", data=frames, maxshape=(None, 64, 72), chunks=(1, 64, 72)
        )
    source = GrowingH5Source(path, clock=Clock(), watch=False, settle=0)
    assert len(source.poll()) == 6
    if fault == "truncated":
        os.truncate(path, path.stat().st_size // 2)
    elif fault == "replaced":
        other = tmp_path / "other.h5"
        with h5py.File(other, "w") as h5:
            h5["entry/data/data"] = frames
        os.replace(other, path)
    else:
        with h5py.File(path, "a") as h5:
            h5["entry/data/data"].resize(3, axis=0)
    assert source.poll() == []
    (problem,) = source.problems
    assert problem.fatal and problem.file == str(path) and str(path) in problem.message
    assert source.poll() == []


# --------------------------------------------------------------------------- SPEC


def test_spec_mesh_points_partial_line_and_offline_equality(tmp_path):
    spectra = scan_spectra(12, 64)
    path = tmp_path / "scan.spec"
    writer = SpecWriter(path, "mesh", (3, 4), spectra)
    source = open_source(path, watch=False)
    assert isinstance(source, SpecSource)
    assert source.poll() == []
    writer.point(0)
    writer.point(1, part=0.9)  # its @A line and part of its data line
    assert [a.index for a in source.poll()] == [0]
    writer.rest(1, 0.9)
    got = source.poll()
    assert [a.index for a in got] == [1] and not source.finished()
    for i in range(2, 12):
        writer.point(i)
    got += source.poll()
    assert source.finished() and source.scan_key == "1.1"
    offline = read_scan(path, 1)
    assert source.declared_dims() == [(d.name, len(d.values)) for d in offline.positions.dims]
    assert source.declared_dims() == [("samy", 3), ("samx", 4)]
    got_all = sorted(got + [], key=lambda a: a.index)
    assert [a.index for a in got_all] == list(range(1, 12))
    for a in got_all:
        assert a.frame.dtype == offline.mcas[0].spectra.dtype
        np.testing.assert_array_equal(a.frame, offline.mcas[0].spectra[a.index])
        assert a.values == dict(zip(offline.labels, offline.columns[a.index].tolist(), strict=True))


def test_spec_new_scan_ends_it_and_dims_by_command(tmp_path):
    path = tmp_path / "line.spec"
    writer = SpecWriter(path, "ascan", (5,), None)
    source = SpecSource(path, watch=False)
    writer.point(0)
    (a,) = source.poll()
    assert source.declared_dims() == [("samx", 5)]
    offline_counters = read_scan(path, 1).columns[0]
    np.testing.assert_array_equal(a.frame, offline_counters)  # no MCA: the row of counters
    writer.point(1)
    writer.start_scan(2)
    assert [x.index for x in source.poll()] == [1] and source.finished()
    time_path = tmp_path / "time.spec"
    SpecWriter(time_path, "timescan", (4,), None).point(0)
    timed = SpecSource(time_path, watch=False)
    assert len(timed.poll()) == 1 and timed.declared_dims() is None and not timed.finished()


def test_spec_follows_last_scan_or_given_scan(tmp_path):
    path = tmp_path / "two.spec"
    writer = SpecWriter(path, "ascan", (3,), None)
    writer.point(0)
    writer.start_scan(2)
    writer.point(0)
    writer.point(1)
    assert len(SpecSource(path, watch=False).poll()) == 2  # the last scan
    first = SpecSource(path, scan=1, watch=False)
    assert len(first.poll()) == 1 and first.finished()


def test_spec_bad_point_is_skipped_and_truncation_fatal(tmp_path):
    path = tmp_path / "bad.spec"
    writer = SpecWriter(path, "ascan", (4,), None)
    writer.point(0)
    with open(path, "a") as handle:
        handle.write("1 0 0.2 abc 5\n")  # not a number
    writer.point(2)
    source = SpecSource(path, watch=False)
    got = source.poll()
    assert [a.index for a in got] == [0, 2]
    (problem,) = source.problems
    assert problem.frame == 1 and not problem.fatal and str(path) in problem.message
    os.truncate(path, path.stat().st_size - 10)
    assert source.poll() == [] and source.problems[-1].fatal
    assert "truncated" in source.problems[-1].message


def test_spec_image_per_point_waits_for_its_image(tmp_path, frames):
    clock = Clock()
    path = tmp_path / "img.spec"
    images = FolderWriter(tmp_path, frames, fmt="cbf", mode="inplace", prefix="img_")
    writer = SpecWriter(path, "ascan", (3,), None)
    source = SpecSource(
        path, watch=False, image_pattern="img_{point:05d}.cbf", clock=clock, settle=1.0, timeout=5.0
    )
    writer.point(0)
    assert source.poll() == []  # its image is not there yet
    images.begin(0)
    clock.t = 2.0
    assert source.poll() == []  # half-written
    images.finish(0)
    clock.t = 3.5
    assert source.poll() == []  # it changed: settle again
    clock.t = 5.0
    (a,) = source.poll()
    np.testing.assert_array_equal(a.frame, read_image(images.path(0))[0])
    assert a.values["I0"] == 1000.0
    writer.point(1)
    clock.t = 20.0
    assert source.poll() == [] and source.problems == [] and not source.finished()
    clock.t = 26.0
    assert source.poll() == [] and "never appeared" in source.problems[-1].message
    assert source.problems[-1].frame == 1 and "img_00001.cbf" in source.problems[-1].file


# --------------------------------------------------------------------------- factory, CLI


def test_open_source_refuses_what_does_not_apply(tmp_path):
    with pytest.raises(InputError, match="scan"):
        open_source(tmp_path, scan=3)
    (tmp_path / "x.txt").write_text("hello\n")
    with pytest.raises(InputError, match="neither"):
        open_source(tmp_path / "x.txt")
    with pytest.raises(InputError, match="bogus"):
        open_source(tmp_path, bogus=1)


@pytest.mark.parametrize(
    "kind, out, extra",
    [
        ("folder", "frames", ["--fmt", "tif", "--shuffle"]),
        ("h5", "scan.h5", ["--swmr"]),
        ("spec", "scan.spec", ["--scan", "ascan", "--channels", "32"]),
    ],
)
def test_simulator_command_line(tmp_path, kind, out, extra):
    target = tmp_path / out
    cmd = [
        sys.executable,
        "-m",
        "pyscatter.live.simulate",
        kind,
        str(target),
        "--frames",
        "4",
        "--rate",
        "0",
        "--frame-shape",
        "64x64",
        *extra,
    ]
    subprocess.run(cmd, check=True, capture_output=True, timeout=120)
    source = open_source(target, watch=False, settle=0)
    got = sorted(source.poll(), key=lambda a: a.index)
    assert [a.index for a in got] == [0, 1, 2, 3] and source.problems == []
    if kind == "spec":
        expected = scan_spectra(4, 32)
    else:
        expected = scan_frames(4, (64, 64))
    for a in got:
        frame = a.chunk.decode() if a.frame is None else a.frame  # HDF5: chunks but the first
        np.testing.assert_array_equal(frame, expected[a.index])
