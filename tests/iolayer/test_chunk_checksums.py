"""Copied chunks (``--link``) are checksummed as stored (``Chunk_Checksums``), never decoded.

Files written before this record (``Frame_Checksums`` of the decoded frames for copied chunks)
still verify and read as they did. Corruption is made on disk, inside one stored chunk.
"""

from __future__ import annotations

import hashlib
import re
import zlib

import h5py
import hdf5plugin
import numpy as np
import pytest
from numpy.testing import assert_array_equal

from iolayer.test_integrity import _source, _spec, corrupt
from pyscatter.cli import main
from pyscatter.errors import FileFormatError
from pyscatter.io.integrity import CHECKSUMS, CHUNK_CHECKSUMS, read_rows, verify_file
from pyscatter.io.raw import RawChunk, chunk_filters, write_measurement
from pyscatter.processes.execution import FrameReader

RAW = "Measurement_000/Channel_000/Raw_Data"
N = 10
SHAPE = (24, 20)


@pytest.fixture
def frames():
    rng = np.random.default_rng(5)
    data = rng.poisson(30, (N, *SHAPE)).astype(np.uint32)
    data[:, 3, :] = np.iinfo(np.uint32).max  # a gap row, as Eiger files store it
    return data


def _copied(tmp_path, frames, compression="bslz4"):
    """A source file and a translation of it by chunk copy: (source, output, source chunks)."""
    src = _source(tmp_path / "src.h5", frames, compression)
    with h5py.File(src, "r") as h5:
        dset = h5["frames"]
        stored = [dset.id.read_direct_chunk((i, 0, 0)) for i in range(N)]
        filters = chunk_filters(dset)
    chunks = [RawChunk(bytes(data), int(mask)) for mask, data in stored]
    spec = _spec(N, SHAPE, frames.dtype, raw_filters=filters)
    out = write_measurement(tmp_path / "out.h5", spec, chunks, progress=False)
    return src, out, stored


@pytest.mark.parametrize("compression", ["bslz4", "gzip"])
def test_chunk_checksums_are_the_crc32_of_the_stored_bytes(tmp_path, frames, compression):
    _src, out, stored = _copied(tmp_path, frames, compression)
    with h5py.File(out, "r") as h5:
        raw = h5[RAW]
        table = raw.parent[CHUNK_CHECKSUMS][()]
        assert raw.attrs["chunk_checksums"] == CHUNK_CHECKSUMS
        assert "frame_checksums" not in raw.attrs and CHECKSUMS not in raw.parent
        # sha256 of the stored chunks in position order, as before: the source fingerprint
        digest = hashlib.sha256(b"".join(bytes(data) for _mask, data in stored)).hexdigest()
        assert raw.attrs["sha256"] == digest
        assert raw.attrs["sha256_of"].startswith("stored chunks")
        assert_array_equal(raw[()], frames.reshape(N, -1))  # the chunks decode to the frames
    assert table.shape == (N, 2) and table.dtype == np.uint32
    # zlib's crc32 of the chunk bytes, any reader can check them
    assert_array_equal(table[:, 0], [zlib.crc32(data) for _mask, data in stored])
    assert_array_equal(table[:, 1], [mask for mask, _data in stored])
    assert verify_file(out).ok


def test_translation_does_not_decode_copied_chunks(tmp_path, frames, monkeypatch):
    """The chunk copy never asks HDF5 to decode a frame (no read_direct, no dataset read)."""
    src = _source(tmp_path / "src.h5", frames)
    with h5py.File(src, "r") as h5:
        dset = h5["frames"]
        chunks = [RawChunk(bytes(dset.id.read_direct_chunk((i, 0, 0))[1])) for i in range(N)]
        filters = chunk_filters(dset)

    real_read, real_get = h5py.Dataset.read_direct, h5py.Dataset.__getitem__

    def check(dset):
        if dset.name.endswith("/Raw_Data"):
            raise AssertionError("a frame was decoded")

    def read_direct(self, *args, **kwargs):
        check(self)
        return real_read(self, *args, **kwargs)

    def getitem(self, *args, **kwargs):
        check(self)
        return real_get(self, *args, **kwargs)

    monkeypatch.setattr(h5py.Dataset, "read_direct", read_direct)
    monkeypatch.setattr(h5py.Dataset, "__getitem__", getitem)
    out = write_measurement(
        tmp_path / "out.h5", _spec(N, SHAPE, frames.dtype, raw_filters=filters), chunks
    )
    monkeypatch.undo()
    with h5py.File(out, "r") as h5:
        assert_array_equal(h5[RAW][()], frames.reshape(N, -1))


@pytest.mark.parametrize("kind", ["silent", "undecodable"])
def test_a_corrupted_stored_chunk_is_named_by_verify_and_readers(tmp_path, frames, capsys, kind):
    _src, out, _stored = _copied(tmp_path, frames)
    corrupt(out, RAW, (6, 0), 3, kind)
    report = verify_file(out)
    assert not report.ok
    problems = [p for p in report.problems if "position 6 (Frame=6)" in p]
    assert problems and "stored chunk does not match its recorded crc32" in problems[0]
    assert not any("position 5" in p or "position 7" in p for p in report.problems)
    assert main(["verify", str(out)]) == 1
    assert "position 6 (Frame=6)" in capsys.readouterr().out
    reader = FrameReader(RAW, SHAPE)
    with h5py.File(out, "r") as h5:
        assert_array_equal(reader.read(h5, 0, 6)[0], frames[:6])  # frames before it read fine
        with pytest.raises(FileFormatError, match=re.escape("position 6 (Frame=6)")):
            reader.read(h5, 4, 8)
        with pytest.raises(FileFormatError, match="corrupted"):
            read_rows(h5[RAW], 0, N)


def test_a_changed_filter_mask_is_reported(tmp_path, frames):
    _src, out, _stored = _copied(tmp_path, frames)
    with h5py.File(out, "r+") as h5:
        h5[f"Measurement_000/Channel_000/{CHUNK_CHECKSUMS}"][2, 1] = 1
    report = verify_file(out)
    assert len(report.problems) == 1
    assert "position 2 (Frame=2)" in report.problems[0]
    assert "filter mask is 0, 1 was recorded" in report.problems[0]


def test_verify_reports_a_chunk_copied_undecodable(tmp_path, frames):
    """Copying never decodes: a source chunk HDF5 cannot decode is copied with its checksum;
    verify decodes every frame and names it."""
    src, out, stored = _copied(tmp_path, frames)
    bad = bytearray(stored[3][1])
    bad[12:16] = b"\x7f\xff\xff\xff"  # the first LZ4 block's size: past the chunk's end
    with h5py.File(src, "r") as h5:
        filters = chunk_filters(h5["frames"])
    chunks = [RawChunk(bytes(d)) for _m, d in stored]
    chunks[3] = RawChunk(bytes(bad))
    spec = _spec(N, SHAPE, frames.dtype, raw_filters=filters)
    out = write_measurement(tmp_path / "bad.h5", spec, chunks, overwrite=True)
    with h5py.File(out, "r") as h5:
        try:
            h5[RAW][3]
        except OSError:
            pass
        else:
            pytest.skip("these bytes happen to decode")
    report = verify_file(out)
    assert [p for p in report.problems if "position 3 (Frame=3)" in p] == [
        f"/{RAW}: position 3 (Frame=3): HDF5 cannot decode the frame"
    ]
    with h5py.File(out, "r") as h5, pytest.raises(FileFormatError, match=r"position 3 \(Frame"):
        FrameReader(RAW, SHAPE).read(h5, 0, N)


def _as_written_before(path, frames):
    """Turn a chunk-copy file into what the translation wrote before ``Chunk_Checksums``: the
    crc32 of every decoded frame as ``Frame_Checksums`` (same Raw_Data, same sha256)."""
    with h5py.File(path, "r+") as h5:
        raw = h5[RAW]
        del raw.parent[CHUNK_CHECKSUMS]
        del raw.attrs["chunk_checksums"]
        crcs = [zlib.crc32(np.ascontiguousarray(f)) for f in frames.reshape(N, -1)]
        dset = raw.parent.create_dataset(CHECKSUMS, data=np.array(crcs, dtype=np.uint32))
        dset.attrs["algorithm"] = "crc32"
        raw.attrs["frame_checksums"] = CHECKSUMS


def test_files_written_before_still_verify_with_their_frame_checksums(tmp_path, frames, capsys):
    _src, out, _stored = _copied(tmp_path, frames)
    _as_written_before(out, frames)
    assert main(["verify", str(out)]) == 0
    assert f"{N} frames match their crc32 and sha256" in capsys.readouterr().out
    reader = FrameReader(RAW, SHAPE)
    with h5py.File(out, "r") as h5:
        assert_array_equal(reader.read(h5, 0, N)[0], frames)
    corrupt(out, RAW, (8, 0), 2, "silent")
    report = verify_file(out)
    assert any(
        "position 8 (Frame=8): the frame does not match its crc32" in p for p in report.problems
    )
    with h5py.File(out, "r") as h5, pytest.raises(FileFormatError, match=r"position 8 \(Frame"):
        reader.read(h5, 0, N)


def test_encoded_frames_keep_frame_checksums(tmp_path, frames):
    """Frames encoded by HDF5 (no chunk copy) record the crc32 of their values, as before."""
    out = write_measurement(tmp_path / "enc.h5", _spec(N, SHAPE, frames.dtype), list(frames))
    with h5py.File(out, "r") as h5:
        raw = h5[RAW]
        assert CHUNK_CHECKSUMS not in raw.parent and "chunk_checksums" not in raw.attrs
        assert_array_equal(
            raw.parent[CHECKSUMS][()], [zlib.crc32(f) for f in frames.reshape(N, -1)]
        )
        digest = hashlib.sha256(np.ascontiguousarray(frames).tobytes()).hexdigest()
        assert raw.attrs["sha256"] == digest


def test_hdf5plugin_is_imported():
    assert hdf5plugin.FILTERS["bshuf"]


def test_a_resumed_chunk_copy_records_the_same_checksums(tmp_path, frames, monkeypatch):
    """Frames recorded before an interruption are verified, not decoded, and get the same
    Chunk_Checksums (crc32 from their completion record, filter mask from the file)."""
    import pyscatter.io.raw as raw_module
    from pyscatter.io.raw import partial_path

    _src, reference, stored = _copied(tmp_path, frames)
    chunks = [RawChunk(bytes(data), int(mask)) for mask, data in stored]
    with h5py.File(tmp_path / "src.h5", "r") as h5:
        spec = _spec(N, SHAPE, frames.dtype, raw_filters=chunk_filters(h5["frames"]))
    real = raw_module._write_item
    monkeypatch.setattr(raw_module, "BARRIER_FRAMES", 2)

    def stop_at_7(raw, i, *rest):
        if i == 7:
            raise KeyboardInterrupt
        return real(raw, i, *rest)

    out = tmp_path / "resumed.h5"
    monkeypatch.setattr(raw_module, "_write_item", stop_at_7)
    with pytest.raises(KeyboardInterrupt):
        write_measurement(out, spec, chunks, progress=False)
    assert partial_path(out).exists()
    written = []
    monkeypatch.setattr(
        raw_module, "_write_item", lambda raw, i, *rest: written.append(i) or real(raw, i, *rest)
    )
    write_measurement(out, spec, chunks, progress=False)
    assert written and min(written) >= 6  # the recorded frames were not written again
    with h5py.File(out, "r") as a, h5py.File(reference, "r") as b:
        assert_array_equal(
            a[f"Measurement_000/Channel_000/{CHUNK_CHECKSUMS}"][()],
            b[f"Measurement_000/Channel_000/{CHUNK_CHECKSUMS}"][()],
        )
        assert a[RAW].attrs["sha256"] == b[RAW].attrs["sha256"]
    assert verify_file(out).ok
