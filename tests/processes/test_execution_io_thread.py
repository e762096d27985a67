"""The I/O thread of a serial run (execution.ReadAhead with ``write``) and the stored-chunk
decoder (execution.read_stored): h5py in one thread, rule 5's order, the same bits."""

from __future__ import annotations

import threading
import time
import zlib

import h5py
import hdf5plugin
import numpy as np
import pytest

from pyscatter.io.integrity import CHUNK_CHECKSUMS, write_checksums, write_chunk_checksums
from pyscatter.io.record import verified_positions
from pyscatter.processes import execution
from pyscatter.processes.base import run_on_file
from pyscatter.processes.execution import FrameReader, ReadAhead, read_stored, stored_decoder
from pyscatter.processes.integration import AzimuthalIntegration

BLOCKS = [(i, 3 * i, 3 * i + 3) for i in range(6)]
SHAPE = (37, 41)  # 1517 pixels: not a multiple of bitshuffle's 8-element groups


def _io_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("pyscatter-read")]


def _frames(n: int, dtype=np.uint32) -> np.ndarray:
    rng = np.random.default_rng(7)
    frames = rng.poisson(30, size=(n, SHAPE[0] * SHAPE[1])).astype(dtype)
    if np.issubdtype(dtype, np.integer):
        frames[:, ::97] = np.iinfo(dtype).max  # Eiger's dummy at some pixels
    return frames


def _file(path, frames, checksums: str | None = None, **filters) -> str:
    with h5py.File(path, "w") as h5:
        dset = h5.create_dataset(
            "raw", shape=frames.shape, dtype=frames.dtype, chunks=(1, frames.shape[1]), **filters
        )
        for i, frame in enumerate(frames):
            dset[i] = frame
        if checksums == "frames":
            write_checksums(dset, np.array([zlib.crc32(f) for f in frames]))
        elif checksums == "chunks":
            stored = [dset.id.read_direct_chunk((i, 0)) for i in range(len(frames))]
            crcs = np.array([zlib.crc32(d) for _m, d in stored])
            write_chunk_checksums(dset, crcs, np.array([m for m, _d in stored]))
    return str(path)


@pytest.mark.parametrize("dtype", [np.uint32, np.uint16, np.int32, np.float32])
@pytest.mark.parametrize("checksums", [None, "frames", "chunks"])
def test_stored_chunks_decode_to_what_hdf5_reads(tmp_path, dtype, checksums):
    frames = _frames(7, dtype)
    path = _file(tmp_path / "f.h5", frames, checksums, **hdf5plugin.Bitshuffle(cname="lz4"))
    with h5py.File(path, "r") as h5:
        dset = h5["raw"]
        assert stored_decoder(dset) is not None
        out = np.full((5, dset.shape[1]), 0xAB, dtype=dset.dtype)
        assert read_stored(dset, out, 2, 7)
        expected = np.empty_like(out)
        dset.read_direct(expected, source_sel=np.s_[2:7])
    assert out.tobytes() == expected.tobytes() == frames[2:7].tobytes()


@pytest.mark.parametrize(
    "filters",
    [{}, {"compression": "gzip"}, dict(hdf5plugin.Bitshuffle(cname="zstd"))],
    ids=["plain", "gzip", "bitshuffle-zstd"],
)
def test_other_layouts_are_left_to_hdf5(tmp_path, filters):
    frames = _frames(3)
    path = _file(tmp_path / "f.h5", frames, "frames", **filters)
    with h5py.File(path, "r") as h5:
        assert stored_decoder(h5["raw"]) is None
        reader = FrameReader("raw", SHAPE)
        got, _ = reader.read(h5, 0, 3)
    assert got.reshape(3, -1).tobytes() == frames.tobytes()


def test_a_bad_chunk_falls_back_to_hdf5_and_is_named(tmp_path):
    """A chunk whose bytes do not match its checksum is never decoded here: the block is read
    by HDF5 with every check, which names the position as before."""
    from pyscatter.errors import FileFormatError

    frames = _frames(6)
    path = _file(tmp_path / "f.h5", frames, "chunks", **hdf5plugin.Bitshuffle(cname="lz4"))
    with h5py.File(path, "r+") as h5:
        sums = h5[CHUNK_CHECKSUMS]
        sums[4, 0] = sums[4, 0] ^ 1
    with h5py.File(path, "r") as h5:
        out = np.empty((6, frames.shape[1]), dtype=frames.dtype)
        assert not read_stored(h5["raw"], out, 0, 6)
        assert read_stored(h5["raw"], out[:4], 0, 4)
        with pytest.raises(FileFormatError, match="position 4"):
            FrameReader("raw", SHAPE).read(h5, 2, 6)


class Recorder:
    """A read stage and a writer that log which thread did what, in which order."""

    def __init__(self, fail_write_at: int | None = None) -> None:
        self.log: list[tuple[str, int, str]] = []
        self.fail_write_at = fail_write_at

    def read(self, h5, start, stop, slot=0):
        self.log.append(("read", start, threading.current_thread().name))
        time.sleep(0.005)
        return np.full(stop - start, float(start))

    def write(self, index, out):
        self.log.append(("write", index, threading.current_thread().name))
        if index == self.fail_write_at:
            raise OSError(28, "No space left on device")
        time.sleep(0.01)


def test_reads_and_writes_share_one_thread_and_keep_the_order():
    rec = Recorder()
    written = []
    for index, out in ReadAhead(rec.read, None, BLOCKS, write=rec.write).results(
        lambda data, h5, start, stop: {"x": data * 2}
    ):
        # yielded once written: its write is in the log already
        assert ("write", index) in [(k, i) for k, i, _ in rec.log]
        written.append((index, float(out["x"][0])))
    assert written == [(i, 2.0 * start) for i, start, _ in BLOCKS]
    threads = {name for _, _, name in rec.log}
    assert len(threads) == 1 and threading.current_thread().name not in threads
    writes = [i for kind, i, _ in rec.log if kind == "write"]
    assert writes == [i for i, _, _ in BLOCKS]
    # the read of block k + 2 queues behind the write of block k (its buffer's slot)
    order = [(kind, i if kind == "write" else i // 3) for kind, i, _ in rec.log]
    for k in range(len(BLOCKS) - 2):
        assert order.index(("write", k)) < order.index(("read", k + 2))
    assert not _io_threads()


def test_a_failed_write_stops_the_writes_after_it_and_reaches_the_caller():
    rec = Recorder(fail_write_at=2)
    seen = []
    with pytest.raises(OSError, match="No space left"):
        for index, _ in ReadAhead(rec.read, None, BLOCKS, write=rec.write).results(
            lambda data, *a: {}
        ):
            seen.append(index)
    assert seen == [0, 1]
    assert [i for kind, i, _ in rec.log if kind == "write"] == [0, 1, 2]  # none after it
    assert not _io_threads()


def test_stopping_between_blocks_finishes_the_write_under_way():
    """Ctrl-C between two blocks (the caller closes the generator): the block whose write was
    asked for is written whole; nothing after it."""
    rec = Recorder()
    results = ReadAhead(rec.read, None, BLOCKS, write=rec.write).results(lambda d, *a: {})
    assert next(results)[0] == 0
    results.close()
    writes = [i for kind, i, _ in rec.log if kind == "write"]
    assert writes in ([0, 1], [0])  # block 1 is written if its compute had begun
    assert not _io_threads()


def test_a_serial_run_writes_only_from_its_io_thread_and_gives_the_same_bits(
    tmp_path, small_scan, monkeypatch
):
    from conftest import write_scan

    params = dict(npt=60, error_model="poisson", max_mem_mb=1, progress=False)
    plain = write_scan(tmp_path / "plain.h5", small_scan)
    reference = run_on_file(plain, AzimuthalIntegration, read_ahead=False, **params)
    with h5py.File(plain, "r") as h5:
        expected = {k: h5[reference.group][k][()] for k in ("Intensity", "Intensity_Sigma")}

    threads: list[str] = []
    real_write = h5py.Dataset.write_direct
    decoded = []
    real_stored = execution.read_stored

    def write_direct(self, *args, **kwargs):
        threads.append(threading.current_thread().name)
        return real_write(self, *args, **kwargs)

    def stored(*args, **kwargs):
        decoded.append(ok := real_stored(*args, **kwargs))
        return ok

    path = write_scan(tmp_path / "ahead.h5", small_scan)
    monkeypatch.setattr(h5py.Dataset, "write_direct", write_direct)
    monkeypatch.setattr(execution, "read_stored", stored)
    summary = run_on_file(path, AzimuthalIntegration, **params)
    monkeypatch.undo()
    assert threads and all(name.startswith("pyscatter-read") for name in threads)
    assert decoded and all(decoded)  # the scan's bitshuffle-LZ4 chunks, decoded here
    with h5py.File(path, "r") as h5:
        group = h5[summary.group]
        for key, value in expected.items():
            assert group[key][()].tobytes() == value.tobytes(), key
        # every block flagged, each flag the checksum of its data (rule 5, verified on resume)
        assert verified_positions(group).all()
