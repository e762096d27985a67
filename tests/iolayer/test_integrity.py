"""Integrity of raw frames and results (issue 20 item 3) and raw data readable by the field's tools
(issue 19 item 7).

Corruption is made for real: bits are flipped in the file on disk, inside the stored (compressed)
chunk of one frame, found with h5py's ``get_chunk_info_by_coord``.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import zlib

import h5py
import hdf5plugin
import numpy as np
import pytest
from conftest import write_scan
from numpy.testing import assert_array_equal
from silx.io.nxdata import get_default

from pyscatter.cli import main
from pyscatter.errors import FileFormatError, InputError
from pyscatter.io.integrity import CHECKSUMS, frame_crc, read_rows, verify_file
from pyscatter.io.raw import (
    MeasurementSpec,
    RawChunk,
    VirtualFrames,
    chunk_filters,
    write_measurement,
    write_virtual_measurement,
)
from pyscatter.io.record import FLAGS, verified_positions
from pyscatter.io.usid import Dim
from pyscatter.processes.base import run_on_file
from pyscatter.processes.execution import FrameReader
from pyscatter.processes.integration import AzimuthalIntegration

RAW = "Measurement_000/Channel_000/Raw_Data"


def flip_bits(path, dset_path, coord, n_bits, seed):
    """Flip ``n_bits`` bits inside the stored chunk at ``coord``; what became of the frame.

    ``"silent"``: h5py decodes other values without complaint; ``"undecodable"``: h5py raises;
    ``"same"``: the flips landed on bytes no decoder reads.
    """
    with h5py.File(path, "r") as h5:
        dset = h5[dset_path]
        index = coord[0]
        before = dset[index]
        info = dset.id.get_chunk_info_by_coord(coord)
        offset, size = info.byte_offset, info.size
    rng = np.random.default_rng(seed)
    with open(path, "r+b") as fh:
        for pos in rng.choice(size, n_bits, replace=False):
            fh.seek(offset + int(pos))
            byte = fh.read(1)[0]
            fh.seek(offset + int(pos))
            fh.write(bytes([byte ^ (1 << int(rng.integers(8)))]))
    with h5py.File(path, "r") as h5:
        try:
            return "same" if np.array_equal(h5[dset_path][index], before) else "silent"
        except OSError:
            return "undecodable"


def corrupt(path, dset_path, coord, n_bits, kind="any"):
    """Flip bits in a copy until the frame is corrupted as ``kind`` says, then keep that copy."""
    backup = path.with_suffix(".intact")
    shutil.copyfile(path, backup)
    for seed in range(50):
        got = flip_bits(path, dset_path, coord, n_bits, seed)
        if got != "same" and kind in ("any", got):
            backup.unlink()
            return
        shutil.copyfile(backup, path)
    pytest.fail(f"no flip of {n_bits} bits made the frame {kind}")


def label(scan, index):
    """``position i (Y=…, X=…)`` as the error must name it."""
    idx = np.unravel_index(index, scan.frames.shape[: len(scan.dims)])
    parts = [
        f"{name}={scan.coords[name][k]:g} {scan.units[name]}"
        for name, k in zip(scan.dims, idx, strict=True)
    ]
    return f"position {index} ({', '.join(parts)})"


# --------------------------------------------------------------------------- raw frames


@pytest.mark.parametrize(
    ("compression", "kind"),
    [("bslz4", "silent"), ("bslz4", "undecodable"), ("gzip", "undecodable"), ("none", "silent")],
)
@pytest.mark.parametrize("n_bits", [1, 5])
def test_flipped_bits_in_a_frame_stop_the_process_naming_the_position(
    tmp_path, small_scan, compression, kind, n_bits
):
    """Bits flipped on disk in one frame's chunk: the process stops and names the position.

    "silent": LZ4 decodes the damaged stream into other values, which used to give other
    results with exit 0; "undecodable": HDF5 raised an OSError naming no position.
    """
    path = write_scan(tmp_path / "scan.h5", small_scan, compression=compression)
    corrupt(path, RAW, (7, 0), n_bits, kind)
    with pytest.raises(FileFormatError) as err:
        run_on_file(path, AzimuthalIntegration, npt=40, progress=False)
    message = str(err.value)
    assert "scan.h5" in message and RAW in message
    assert label(small_scan, 7) in message
    assert "corrupted" in message
    with h5py.File(path, "r") as h5:  # no result from the corrupted frame is flagged complete
        chan = h5["Measurement_000/Channel_000"]
        groups = [g for g in chan.values() if isinstance(g, h5py.Group) and FLAGS in g]
        assert groups and all(not verified_positions(g)[7] for g in groups)


def test_frame_reader_checks_every_frame_against_its_crc32(tmp_path, small_scan):
    path = write_scan(tmp_path / "scan.h5", small_scan)
    frames = small_scan.frames.reshape(12, -1)
    with h5py.File(path, "r") as h5:
        sums = h5[f"Measurement_000/Channel_000/{CHECKSUMS}"][()]
        assert h5[RAW].attrs["frame_checksums"] == CHECKSUMS
    # zlib's crc32 of the values: any reader can check them without pyscatter
    assert_array_equal(sums, [zlib.crc32(f.astype(small_scan.frames.dtype)) for f in frames])
    assert all(frame_crc(f) == zlib.crc32(f) for f in frames)
    reader = FrameReader(RAW, small_scan.frame_shape)
    with h5py.File(path, "r") as h5:  # intact: read as is
        out, _ = reader.read(h5, 2, 9)
        assert_array_equal(out, small_scan.frames.reshape(12, *small_scan.frame_shape)[2:9])
    with h5py.File(path, "r+") as h5:  # a value changed without HDF5 noticing
        h5[RAW][10, 5] = h5[RAW][10, 5] + 1
    with (
        h5py.File(path, "r") as h5,
        pytest.raises(FileFormatError, match=re.escape(label(small_scan, 10))),
    ):
        reader.read(h5, 8, 12)


def _source(path, frames, compression="bslz4"):
    opts = hdf5plugin.Bitshuffle(nelems=0, cname="lz4") if compression == "bslz4" else {}
    with h5py.File(path, "w") as h5:
        h5.create_dataset("frames", data=frames, chunks=(1, *frames.shape[1:]), **opts)
    return path


def _spec(n, shape, dtype, **kw):
    return MeasurementSpec(
        position_dims=[Dim("Frame", "", np.arange(n))],
        spec_dims=[
            Dim("Row", "pixel", np.arange(shape[0])),
            Dim("Col", "pixel", np.arange(shape[1])),
        ],
        dtype=dtype,
        attrs={"translator": "tests"},
        **kw,
    )


def test_copied_chunks_are_checked_after_decoding(tmp_path, small_scan):
    """Chunks copied without decoding (``--link``) are checked as stored (Chunk_Checksums)."""
    frames = small_scan.frames.reshape(12, *small_scan.frame_shape)
    src = _source(tmp_path / "src.h5", frames)
    with h5py.File(src, "r") as h5:
        dset = h5["frames"]
        chunks = [RawChunk(dset.id.read_direct_chunk((i, 0, 0))[1]) for i in range(12)]
        filters = chunk_filters(dset)
    spec = _spec(12, frames.shape[1:], frames.dtype, raw_filters=filters)
    out = write_measurement(tmp_path / "out.h5", spec, chunks)
    assert verify_file(out).ok
    corrupt(out, RAW, (4, 0), 3)
    reader = FrameReader(RAW, frames.shape[1:])
    with h5py.File(out, "r") as h5, pytest.raises(FileFormatError, match=r"position 4 \(Frame=4\)"):
        reader.read(h5, 0, 12)


def test_virtual_raw_data_catches_changed_and_missing_sources(tmp_path, small_scan):
    """A virtual Raw_Data reads a missing source as zeros, silently: the crc32 does not."""
    frames = small_scan.frames.reshape(12, *small_scan.frame_shape)
    src = _source(tmp_path / "src.h5", frames)
    mapping = VirtualFrames(str(src), "frames", frames.shape, 0, 12, 0)
    out = write_virtual_measurement(
        tmp_path / "out.h5", _spec(12, frames.shape[1:], frames.dtype), [mapping]
    )
    reader = FrameReader(RAW, frames.shape[1:])
    with h5py.File(out, "r") as h5:
        assert_array_equal(reader.read(h5, 0, 12)[0], frames)
    corrupt(src, "frames", (6, 0, 0), 2)
    with h5py.File(out, "r") as h5, pytest.raises(FileFormatError, match=r"position 6 \(Frame=6\)"):
        reader.read(h5, 0, 12)
    src.unlink()
    with h5py.File(out, "r") as h5, pytest.raises(FileFormatError, match=r"position 0 \(Frame=0\)"):
        reader.read(h5, 0, 12)


# --------------------------------------------------------------------------- verify


def _chunk_text(group, chunk, size, n_pos=12):
    start, stop = chunk * size, min((chunk + 1) * size, n_pos)
    span = f"position {start}" if stop - start == 1 else f"positions {start}–{stop - 1}"
    return f"{group}: chunk {chunk} ({span})"


def test_verify_reports_frames_and_result_chunks(tmp_path, small_scan, capsys):
    path = write_scan(tmp_path / "scan.h5", small_scan)
    # a small memory budget: several chunks
    summary = run_on_file(path, AzimuthalIntegration, npt=40, progress=False, max_mem_mb=0.6)
    with h5py.File(path, "r") as h5:
        size = int(h5[summary.group].attrs["positions_per_chunk"])
    n_chunks = -(-12 // size)
    assert n_chunks >= 2
    assert main(["verify", str(path)]) == 0
    out = capsys.readouterr().out
    assert f"{RAW}: 12 frames match their crc32 and sha256" in out
    assert f"{summary.group}: {n_chunks} chunks complete and matching" in out
    assert "intact" in out

    with h5py.File(path, "r+") as h5:
        group = h5[summary.group]
        intensity = group["Intensity"]
        intensity[0, 7] = intensity[0, 7] * 2 + 1  # chunk 0 no longer matches its record
        flags = group[FLAGS]
        flags[n_chunks - 1] = 0  # the last chunk never completed
    corrupt(path, RAW, (9, 0), 1)
    assert main(["verify", str(path)]) == 1
    out = capsys.readouterr().out
    assert f"{label(small_scan, 9)}: " in out
    assert f"{_chunk_text(summary.group, 0, size)}: data do not match" in out
    assert f"{_chunk_text(summary.group, n_chunks - 1, size)}: incomplete" in out
    assert "sha256 differs" in out
    assert out.count("PROBLEM") == 4


def test_verify_refuses_a_file_pyscatter_did_not_write(tmp_path, capsys):
    path = tmp_path / "other.h5"
    with h5py.File(path, "w") as h5:
        h5["data"] = np.arange(10)
    before = hashlib.sha256(path.read_bytes()).hexdigest()
    assert main(["verify", str(path)]) == 2
    assert "other.h5 is not a pyscatter file" in capsys.readouterr().err
    with pytest.raises(InputError, match="not a pyscatter file"):
        verify_file(path)
    assert hashlib.sha256(path.read_bytes()).hexdigest() == before


# --------------------------------------------------------------------------- readable by others


@pytest.mark.parametrize("order", ["import pyscatter, h5py", "import h5py, pyscatter"])
def test_plain_h5py_reads_raw_data_after_import_pyscatter(scan_file, small_scan, order):
    """bitshuffle-LZ4 frames decode with plain h5py once pyscatter is imported (issue 19.7)."""
    code = (
        f"{order}, json; "
        f"d = h5py.File({str(scan_file)!r}, 'r')[{RAW!r}][5]; "
        "print(json.dumps(d.tolist()))"
    )
    env = {k: v for k, v in os.environ.items() if k != "HDF5_PLUGIN_PATH"}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr
    assert_array_equal(json.loads(done.stdout), small_scan.frames.reshape(12, -1)[5])


def test_raw_frames_open_as_images_in_silx(scan_file, small_scan):
    """The file's @default is an N-d NXdata of the raw frames (positions…, rows, cols)."""
    frames = small_scan.frames
    with h5py.File(scan_file, "r") as h5:
        nx = get_default(h5)
        assert nx is not None and nx.is_valid, None if nx is None else nx.issues
        assert nx.group.name == "/Measurement_000/Raw_Frames"
        assert nx.is_image and nx.interpretation == "image"
        assert nx.signal.shape == frames.shape  # (Y, X, rows, cols)
        assert_array_equal(nx.signal[1, 2], frames[1, 2])
        assert_array_equal(nx.signal[:, 3, 10, 20], frames[:, 3, 10, 20])
        assert [a.name.rsplit("/", 1)[-1] for a in nx.axes] == ["Y", "X", "Row", "Col"]
        assert h5["Measurement_000/Raw_Frames/data"].is_virtual  # no frame copied


def test_virtual_raw_data_has_the_image_view_too(tmp_path, small_scan):
    frames = small_scan.frames.reshape(12, *small_scan.frame_shape)
    src = _source(tmp_path / "src.h5", frames)
    mapping = VirtualFrames(str(src), "frames", frames.shape, 0, 12, 0)
    out = write_virtual_measurement(
        tmp_path / "out.h5", _spec(12, frames.shape[1:], frames.dtype), [mapping]
    )
    with h5py.File(out, "r") as h5:
        nx = get_default(h5)
        assert nx.is_image and nx.signal.shape == frames.shape
        assert_array_equal(nx.signal[7], frames[7])


def test_processes_refuse_a_usid_file_pyscatter_did_not_write(tmp_path, small_scan):
    """A pyUSID-style file with a Raw_Data main dataset, but not from a pyscatter translation:
    refused before anything (repair included) writes into it."""
    path = write_scan(tmp_path / "scan.h5", small_scan)
    with h5py.File(path, "r+") as h5:  # what another USID writer leaves: no translation record
        for key in ("sha256", "sha256_of"):
            del h5[RAW].attrs[key]
    with open(path, "ab") as fh:  # and a tail repair() would otherwise act on
        fh.write(b"\0" * 4096)
    before = hashlib.sha256(path.read_bytes()).hexdigest()
    with pytest.raises(InputError, match=r"scan\.h5 is not a pyscatter file"):
        run_on_file(path, AzimuthalIntegration, npt=40, progress=False)
    assert main(["integrate", str(path), "--npt", "40", "--no-progress"]) == 2
    assert hashlib.sha256(path.read_bytes()).hexdigest() == before


def test_read_rows_checks_raw_data_and_reads_others_as_they_are(tmp_path, small_scan):
    """The reader of spectra processes (peaks, decomposition on raw MCA data)."""
    path = write_scan(tmp_path / "scan.h5", small_scan, compression="none")
    frames = small_scan.frames.reshape(12, -1)
    with h5py.File(path, "r+") as h5:
        h5["plain"] = frames  # no checksums: read as it is, even when changed
        assert_array_equal(read_rows(h5[RAW], 3, 9), frames[3:9])
        h5[RAW][5, 0] += 1
        h5["plain"][5, 0] += 1
        assert read_rows(h5["plain"], 3, 9)[2, 0] == frames[5, 0] + 1
        with pytest.raises(FileFormatError, match=re.escape(label(small_scan, 5))):
            read_rows(h5[RAW], 3, 9)
