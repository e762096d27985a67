"""Frames of a block decoded on several threads (issue 18): the bytes HDF5 reads, whatever the
number of threads and windows; a failed check or a bad chunk is reported, not hidden."""

from __future__ import annotations

import h5py
import hdf5plugin
import numpy as np
import pytest

from pyscatter.io import stored_chunks
from pyscatter.io.stored_chunks import decode_frames, stored_decoder
from pyscatter.processes.execution import read_stored


@pytest.fixture()
def frames_file(tmp_path):
    rng = np.random.default_rng(3)
    frames = rng.poisson(30, size=(11, 40 * 37)).astype(np.uint32)
    frames[:, ::7] = np.iinfo(np.uint32).max  # Eiger gaps
    path = tmp_path / "frames.h5"
    with h5py.File(path, "w") as h5:
        h5.create_dataset(
            "data", data=frames, chunks=(1, frames.shape[1]), **hdf5plugin.Bitshuffle(cname="lz4")
        )
    return path, frames


@pytest.mark.parametrize("threads", [1, 2, 3])
def test_decoded_frames_are_hdf5s_bytes_whatever_the_threads(frames_file, monkeypatch, threads):
    path, frames = frames_file
    monkeypatch.setattr(stored_chunks, "DECODE_THREADS", threads)
    with h5py.File(path, "r") as h5:
        dset = h5["data"]
        decode = stored_decoder(dset)
        assert decode is not None
        chunks = [dset.id.read_direct_chunk((i, 0))[1] for i in range(len(frames))]
        out = np.zeros_like(frames)
        assert decode_frames(decode, chunks, out)
        np.testing.assert_array_equal(out, dset[()])
        np.testing.assert_array_equal(out, frames)
        block = np.zeros((7, frames.shape[1]), frames.dtype)  # a block over several windows
        assert read_stored(dset, block, 3, 10)
        np.testing.assert_array_equal(block, frames[3:10])


def test_a_failed_check_or_a_damaged_chunk_is_reported(frames_file, monkeypatch):
    path, frames = frames_file
    monkeypatch.setattr(stored_chunks, "DECODE_THREADS", 2)
    with h5py.File(path, "r") as h5:
        dset = h5["data"]
        decode = stored_decoder(dset)
        chunks = [dset.id.read_direct_chunk((i, 0))[1] for i in range(len(frames))]
    out = np.zeros_like(frames)
    seen: list[int] = []

    def check(k, chunk):
        seen.append(k)
        return k != 8

    assert not decode_frames(decode, chunks, out, check)
    assert 8 in seen
    damaged = list(chunks)
    damaged[5] = damaged[5][:-40]  # a truncated chunk: the decoder says so
    assert not decode_frames(decode, damaged, np.zeros_like(frames))
