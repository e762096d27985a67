"""Reading the next block in a thread while this one is computed (execution.ReadAhead)."""

from __future__ import annotations

import threading
import time

import h5py
import numpy as np
import pytest

from pyscatter.processes.base import run_on_file
from pyscatter.processes.execution import FrameBlocks, FrameReader, ReadAhead
from pyscatter.processes.integration import AzimuthalIntegration

BLOCKS = [(i, 3 * i, 3 * i + 3) for i in range(6)]


def _reader_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("pyscatter-read")]


class SlowBuffers:
    """A read stage that fills one buffer per slot with its block's index, slowly."""

    def __init__(self, fail_at: int | None = None) -> None:
        self.buffers: dict[int, np.ndarray] = {}
        self.calls: list[tuple[int, int]] = []  # (start, slot)
        self.fail_at = fail_at

    def read(self, h5, start, stop, slot=0):
        self.calls.append((start, slot))
        if start == self.fail_at:
            raise OSError(f"cannot read positions {start}:{stop}")
        buf = self.buffers.setdefault(slot, np.empty(stop - start))
        time.sleep(0.01)
        buf[:] = start  # the block in flight in another slot is never touched
        return buf


def test_blocks_come_in_order_and_a_buffer_is_not_reused_while_computed():
    stage = SlowBuffers()
    seen = []

    def compute(data, h5, start, stop):
        time.sleep(0.02)  # the next block is read meanwhile, into the other slot
        assert np.all(data == start)
        return {"x": data.copy()}

    for index, out in ReadAhead(stage.read, None, BLOCKS).results(compute):
        seen.append((index, float(out["x"][0])))
    assert seen == [(i, float(start)) for i, start, _ in BLOCKS]
    assert [slot for _, slot in stage.calls] == [0, 1, 0, 1, 0, 1]
    assert len(stage.buffers) == 2  # depth 2: two buffers, whatever the number of blocks
    assert not _reader_threads()


def test_a_read_error_reaches_the_caller_and_the_thread_ends():
    stage = SlowBuffers(fail_at=9)
    done = []
    with pytest.raises(OSError, match="positions 9:12"):
        for index, _ in ReadAhead(stage.read, None, BLOCKS).results(lambda d, *a: {}):
            done.append(index)
    assert done == [0, 1, 2]
    assert not _reader_threads()


def test_stopping_early_cancels_the_reads_not_started():
    stage = SlowBuffers()
    results = ReadAhead(stage.read, None, BLOCKS).results(lambda d, *a: {})
    assert next(results)[0] == 0
    results.close()  # e.g. Ctrl-C between two blocks
    assert len(stage.calls) <= 3 < len(BLOCKS)
    assert not _reader_threads()


def test_frame_blocks_compute_what_a_reader_read(tmp_path):
    frames = np.arange(5 * 6, dtype=np.uint16).reshape(5, 6)
    path = tmp_path / "f.h5"
    with h5py.File(path, "w") as h5:
        h5["raw"] = frames
        h5["monitor"] = np.arange(5.0)
    reader = FrameReader("raw", (2, 3), lambda h5, a, b: h5["monitor"][a:b])
    func = FrameBlocks(reader, lambda f, m: {"sum": f.sum(axis=(1, 2)) * m})
    with h5py.File(path, "r") as h5:
        data = reader.read(h5, 1, 4, slot=1)
        assert data[0].shape == (3, 2, 3)
        direct = func(h5, 1, 4)
        staged = func.compute(data, h5, 1, 4)
    expected = frames[1:4].sum(axis=1) * np.arange(1.0, 4.0)
    np.testing.assert_array_equal(direct["sum"], expected)
    np.testing.assert_array_equal(staged["sum"], expected)


def test_blocks_hold_at_most_block_input_mb_of_raw_frames(scan_file, monkeypatch):
    with h5py.File(scan_file, "r+") as h5:
        source = h5["Measurement_000/Channel_000/Raw_Data"]
        frame_bytes = source.dtype.itemsize * source.shape[1]
        monkeypatch.setattr(AzimuthalIntegration, "block_input_mb", 3.5 * frame_bytes / 2**20)
        proc = AzimuthalIntegration(source, npt=50, max_mem_mb=10_000, progress=False)
        assert proc.positions_per_block() == 3
        serial_bytes = proc._bytes_per_position()
        workers = AzimuthalIntegration(source, npt=50, n_jobs=2, progress=False)
        # read ahead, a serial run holds two blocks of raw frames; a worker one
        assert serial_bytes - workers._bytes_per_position() == frame_bytes


def test_read_ahead_survives_a_resume(tmp_path, small_scan):
    """A run interrupted after two blocks resumes with read-ahead to the plain run's bits."""
    from conftest import interrupted_run, write_scan

    params = dict(npt=60, error_model="poisson", max_mem_mb=1, progress=False)
    plain = write_scan(tmp_path / "plain.h5", small_scan)
    full = run_on_file(plain, AzimuthalIntegration, read_ahead=False, **params)
    with h5py.File(plain, "r") as h5:
        reference = h5[full.group]["Intensity"][()]

    path = write_scan(tmp_path / "ahead.h5", small_scan)
    interrupted_run(path, AzimuthalIntegration, **params)
    assert not _reader_threads()
    resumed = run_on_file(path, AzimuthalIntegration, **params)
    assert resumed.resumed and 0 < resumed.computed_positions < resumed.total_positions
    with h5py.File(path, "r") as h5:
        assert h5[resumed.group]["Intensity"][()].tobytes() == reference.tobytes()


@pytest.mark.parametrize("bad", [float("nan"), -1.0, 0, float("inf"), "lots"])
def test_invalid_max_mem_mb_is_named(scan_file, bad):
    """Issue 20: nan slipped through ``max_mem_mb <= 0``; errors now name --max-mem-mb."""
    from pyscatter.errors import InputError

    with pytest.raises(InputError, match=r"--max-mem-mb \(max_mem_mb\) must be a positive"):
        run_on_file(scan_file, AzimuthalIntegration, npt=20, max_mem_mb=bad, progress=False)


def test_cli_refuses_nan_max_mem_mb(scan_file, capsys):
    from pyscatter.cli import main

    assert main(["integrate", str(scan_file), "--max-mem-mb", "nan", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "--max-mem-mb" in err and "nan" in err
    with h5py.File(scan_file, "r") as h5:  # nothing written
        assert not [k for k in h5["Measurement_000/Channel_000"] if "Integration" in k]


def test_budget_below_one_frame_is_refused(scan_file):
    """A budget that cannot hold one frame was silently rounded up to one position per block.

    The refusal states the least budget, and that budget runs with one position per block.
    """
    import re

    from pyscatter.errors import InputError

    with h5py.File(scan_file, "r") as h5:
        source = h5["Measurement_000/Channel_000/Raw_Data"]
        frame_mb = source.dtype.itemsize * source.shape[1] / 2**20
    params = dict(npt=50, error_model="poisson", progress=False)
    with pytest.raises(InputError, match="--max-mem-mb") as info:
        run_on_file(scan_file, AzimuthalIntegration, max_mem_mb=frame_mb, **params)
    found = re.search(r"needs: ([\d.]+) MiB.*least ([\d.]+)", str(info.value))
    assert found, info.value
    need, least = float(found[1]), float(found[2])
    # read ahead: two raw frames, a float32 copy and the sigma product at least
    assert need >= 2 * frame_mb and least >= need
    summary = run_on_file(scan_file, AzimuthalIntegration, max_mem_mb=least, **params)
    with h5py.File(scan_file, "r") as h5:
        assert h5[summary.group].attrs["positions_per_chunk"] == 1
