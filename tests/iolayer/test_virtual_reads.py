"""A virtual Raw_Data (``--link vds``) read from its source files (pyscatter.io.virtual), and the
records a virtual translation writes.

The sources are NeXus-like files made here: (frames, rows, cols) uint32, one bitshuffle-LZ4 chunk
a frame as Eiger detectors write them, some pixels at 0xFFFFFFFF. Corruption is made for real:
bytes of one stored chunk of a source are changed on disk after the translation.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import zlib

import h5py
import hdf5plugin
import numpy as np
import pytest
from numpy.testing import assert_array_equal

from pyscatter.errors import FileFormatError
from pyscatter.io import virtual
from pyscatter.io.integrity import CHECKSUMS
from pyscatter.io.raw import MeasurementSpec, VirtualFrames, write_virtual_measurement
from pyscatter.io.usid import Dim
from pyscatter.processes import execution
from pyscatter.processes.base import run_on_file
from pyscatter.processes.execution import FrameReader
from pyscatter.processes.integration import AzimuthalIntegration
from pyscatter.translators import translate
from pyscatter.translators.common import file_record

RAW = "Measurement_000/Channel_000/Raw_Data"
DATA = "/entry/data/data"
SHAPE = (37, 43)  # 1591 pixels: not a multiple of bitshuffle's 8-element groups
N = 9
BSLZ4 = hdf5plugin.Bitshuffle(cname="lz4")
GEOMETRY = {"dist": 0.12, "poni1": 1.1e-3, "poni2": 1.6e-3, "wavelength": 1.0e-10}


def _frames(n: int = N, seed: int = 3) -> np.ndarray:
    """Rings on a Poisson background, uint32, with Eiger's 0xFFFFFFFF at some pixels."""
    rng = np.random.default_rng(seed)
    y, x = np.indices(SHAPE)
    r = np.hypot(y - 15.0, x - 21.0)
    frames = np.empty((n, *SHAPE), dtype=np.uint32)
    for i in range(n):
        frames[i] = rng.poisson(20 + 200 * np.exp(-(((r - 8 - i) / 2.0) ** 2)))
    frames[:, 3, ::7] = 0xFFFFFFFF
    frames[2, 10:12, 5:9] = 0xFFFFFFFF
    return frames


def _source(path, frames: np.ndarray, filters=BSLZ4, written: int | None = None):
    """A NeXus-like file: ``/entry/data/data`` (frames, rows, cols), one chunk a frame; only the
    first ``written`` frames stored (an aborted acquisition) when given."""
    with h5py.File(path, "w") as h5:
        entry = h5.create_group("entry")
        entry.attrs["NX_class"] = "NXentry"
        data = entry.create_group("data")
        data.attrs["NX_class"] = "NXdata"
        data.attrs["signal"] = "data"
        dset = data.create_dataset(
            "data", shape=frames.shape, dtype=frames.dtype, chunks=(1, *SHAPE), **filters
        )
        for i in range(len(frames) if written is None else written):
            dset[i] = frames[i]
    return path


def _poni(tmp_path):
    import pyFAI.detectors
    from pyFAI.integrator.azimuthal import AzimuthalIntegrator

    ai = AzimuthalIntegrator(detector=pyFAI.detectors.Detector(75e-6, 75e-6), **GEOMETRY)
    ai.detector.max_shape = SHAPE
    path = tmp_path / "geometry.poni"
    ai.save(str(path))
    return path, ai


def _spec(n: int, dtype=np.uint32) -> MeasurementSpec:
    return MeasurementSpec(
        position_dims=[Dim("Frame", "index", np.arange(n, dtype=np.float64))],
        spec_dims=[
            Dim("Row", "pixel", np.arange(SHAPE[0])),
            Dim("Col", "pixel", np.arange(SHAPE[1])),
        ],
        dtype=dtype,
        attrs={"translator": "tests"},
    )


def _change_chunk(path, index: int) -> None:
    """Invert 64 bytes in the middle of frame ``index``'s stored chunk, on disk."""
    with h5py.File(path, "r") as h5:
        info = h5[DATA].id.get_chunk_info_by_coord((index, 0, 0))
    with open(path, "r+b") as fh:
        fh.seek(info.byte_offset + info.size // 2)
        data = fh.read(64)
        fh.seek(info.byte_offset + info.size // 2)
        fh.write(bytes(b ^ 0xFF for b in data))


@pytest.fixture
def stats(monkeypatch):
    """virtual.STATS, counted from zero for this test."""
    counts = {"frames": 0, "fallbacks": 0}
    monkeypatch.setattr(virtual, "STATS", counts)
    return counts


def _read_all(path, reader: FrameReader | None = None, mode: str = "r", block: int = 4):
    reader = reader or FrameReader(RAW, SHAPE)
    with h5py.File(path, mode) as h5:
        n = h5[RAW].shape[0]
        parts = [reader.read(h5, a, min(a + block, n))[0].copy() for a in range(0, n, block)]
    return np.concatenate(parts)


# --------------------------------------------------------------------------- integrate


def test_vds_integrates_to_the_bits_of_copied_chunks_and_to_pyfai(tmp_path, stats):
    frames = _frames()
    src = _source(tmp_path / "scan_data_000001.h5", frames)
    poni, ai = _poni(tmp_path)
    options = {"format": "nexus", "dataset": DATA, "poni": poni}
    vds = translate(src, tmp_path / "vds.h5", link="vds", **options)
    chunks = translate(src, tmp_path / "chunks.h5", link=True, **options)
    kw = {"npt": 64, "unit": "q_nm^-1", "method": ("bbox", "csr", "cython")}
    results = {}
    for name, path in (("vds", vds), ("chunks", chunks)):
        summary = run_on_file(path, AzimuthalIntegration, progress=False, max_mem_mb=0.05, **kw)
        with h5py.File(path, "r") as h5:
            assert h5[RAW].is_virtual == (name == "vds")
            group = h5[summary.group]
            assert int(group.attrs["positions_per_chunk"]) < N  # several blocks
            results[name] = group["Intensity"][()]
    assert stats["frames"] == N and stats["fallbacks"] == 0  # every frame from the sources
    assert results["vds"].tobytes() == results["chunks"].tobytes()
    # joblib workers: each resolves the mappings and opens the sources itself
    summary = run_on_file(
        vds, AzimuthalIntegration, progress=False, max_mem_mb=0.05, n_jobs=2, override=True, **kw
    )
    with h5py.File(vds, "r") as h5:
        assert h5[summary.group]["Intensity"][()].tobytes() == results["vds"].tobytes()
    for i in (0, 2, N - 1):
        ref = ai.integrate1d_ng(frames[i], kw["npt"], unit=kw["unit"], method=kw["method"])
        scale = np.abs(ref.intensity).max()
        np.testing.assert_allclose(results["vds"][i], ref.intensity, rtol=1e-5, atol=1e-6 * scale)


def test_the_fast_path_reads_without_hdf5s_virtual_read(tmp_path, monkeypatch, stats):
    """Blocks are read from the sources; HDF5's read of the virtual dataset is never asked for."""
    frames = _frames()
    src = _source(tmp_path / "src.h5", frames)
    out = write_virtual_measurement(
        tmp_path / "out.h5", _spec(N), [VirtualFrames(str(src), DATA, frames.shape, 0, N, 0)]
    )

    def refuse(*_args):
        raise AssertionError("read_verified called: the virtual dataset was read through HDF5")

    monkeypatch.setattr(execution, "read_verified", refuse)
    got = _read_all(out)
    assert got.tobytes() == frames.tobytes()
    assert stats == {"frames": N, "fallbacks": 0}


# --------------------------------------------------------------------------- what is read


def _two_sources(tmp_path):
    """Positions 0-2 ← frames 1-3 of a bslz4 file, 3-4 unmapped, 5-8 ← frames 0-3 of a gzip file
    whose frame 3 was never written; 9 positions."""
    a, b = _frames(5, seed=1), _frames(4, seed=2)
    src_a = _source(tmp_path / "a.h5", a)
    src_b = _source(tmp_path / "b.h5", b, filters={"compression": "gzip"}, written=3)
    mappings = [
        VirtualFrames(str(src_a), DATA, a.shape, 1, 3, 0),
        VirtualFrames(str(src_b), DATA, b.shape, 0, 4, 5),
    ]
    expected = np.zeros((9, *SHAPE), dtype=np.uint32)
    expected[0:3] = a[1:4]
    expected[5:8] = b[:3]  # position 8: the source's fill value, 0
    return mappings, expected


@pytest.mark.parametrize("mode", ["r", "r+"])
def test_mappings_gaps_and_unwritten_frames_read_as_hdf5_reads_them(tmp_path, stats, mode):
    mappings, expected = _two_sources(tmp_path)
    out = write_virtual_measurement(tmp_path / "out.h5", _spec(9), mappings)
    with h5py.File(out, "r") as h5:
        assert h5[RAW][()].tobytes() == expected.reshape(9, -1).tobytes()  # HDF5's reading
    reader = FrameReader(RAW, SHAPE)
    assert _read_all(out, reader, mode=mode, block=4).tobytes() == expected.tobytes()
    assert stats == {"frames": 9, "fallbacks": 0}
    # a virtual file open read-write: HDF5 opens the sources read-write to read it, which it
    # refuses for a file held open read-only; the sources were closed after each block
    with h5py.File(out, mode) as h5:
        reader.read(h5, 0, 4)
        assert_array_equal(h5[RAW][1], expected[1].ravel())


def test_a_mapping_of_another_kind_is_read_by_hdf5(tmp_path, stats):
    """Each frame from two datasets (left and right halves of its pixels): not "positions ←
    whole source frames", so HDF5 reads it, checked as before."""
    flat = _frames(4).reshape(4, -1)
    half = flat.shape[1] // 2
    src = tmp_path / "halves.h5"
    with h5py.File(src, "w") as h5:
        h5["left"], h5["right"] = flat[:, :half], flat[:, half:]
    layout = h5py.VirtualLayout(shape=flat.shape, dtype=np.uint32)
    layout[:, :half] = h5py.VirtualSource(str(src), "left", shape=(4, half))
    layout[:, half:] = h5py.VirtualSource(str(src), "right", shape=(4, flat.shape[1] - half))
    with h5py.File(tmp_path / "v.h5", "w") as h5:
        dset = h5.create_virtual_dataset("raw", layout, fillvalue=0)
        dset.attrs["frame_checksums"] = CHECKSUMS  # as a translation records them
        h5[CHECKSUMS] = np.array([zlib.crc32(row) for row in flat], dtype=np.uint32)
    with h5py.File(tmp_path / "v.h5", "r") as h5:
        got, _ = FrameReader("raw", SHAPE).read(h5, 0, 4)
    assert got.reshape(4, -1).tobytes() == flat.tobytes()
    assert stats == {"frames": 0, "fallbacks": 1}


# --------------------------------------------------------------------------- integrity


def test_a_changed_source_chunk_is_reported_by_position(tmp_path, stats):
    frames = _frames()
    src = _source(tmp_path / "src.h5", frames)
    mapping = VirtualFrames(str(src), DATA, frames.shape, 0, N, 0)
    out = write_virtual_measurement(tmp_path / "out.h5", _spec(N), [mapping])
    _change_chunk(src, 6)
    reader = FrameReader(RAW, SHAPE)
    with h5py.File(out, "r") as h5:
        got, _ = reader.read(h5, 0, 4)  # frames 0-3: untouched, from the source
        assert got.tobytes() == frames[:4].tobytes()
        with pytest.raises(FileFormatError, match=r"position 6 \(Frame=6 index\)"):
            reader.read(h5, 4, N)
    assert stats == {"frames": 4, "fallbacks": 1}


def test_a_moved_folder_reads_from_beside_the_file_and_a_missing_source_as_before(
    tmp_path, monkeypatch, stats
):
    """Relative source names resolve against the virtual file's folder first, as HDF5 does (the
    current directory holds a decoy of the same name); a missing source reads as HDF5 reads
    it (zeros), which the crc32 reports, as before."""
    folder = tmp_path / "exp"
    (folder / "processed").mkdir(parents=True)
    frames = _frames()
    poni, _ai = _poni(tmp_path)
    src = _source(folder / "scan_data_000001.h5", frames)
    translate(
        src, folder / "processed" / "v.h5", format="nexus", dataset=DATA, poni=poni, link="vds"
    )
    moved = tmp_path / "elsewhere"
    shutil.move(folder, moved)
    decoy_dir = tmp_path / "cwd" / "sub"
    decoy_dir.mkdir(parents=True)
    _source(tmp_path / "cwd" / "scan_data_000001.h5", _frames(seed=9))  # "../" from cwd/sub
    monkeypatch.chdir(decoy_dir)
    path = moved / "processed" / "v.h5"
    assert _read_all(path).tobytes() == frames.tobytes()
    assert stats == {"frames": N, "fallbacks": 0}
    (moved / "scan_data_000001.h5").unlink()
    (tmp_path / "cwd" / "scan_data_000001.h5").unlink()
    with h5py.File(path, "r") as h5:
        assert not h5[RAW][0].any()  # HDF5: zeros, silently
    with pytest.raises(FileFormatError, match=r"position 0 \(Image=0\)"):
        _read_all(path)
    assert stats["fallbacks"] == 1


# --------------------------------------------------------------------------- records


def _reference_crcs(mappings, n_pos, n_spec):
    """What translations recorded before: h5py's ``dset[i]`` and zlib's crc32."""
    crcs = np.full(n_pos, zlib.crc32(np.zeros(n_spec, np.uint32)), dtype=np.uint32)
    for m in mappings:
        with h5py.File(m.file, "r") as h5:
            for j in range(m.count):
                frame = np.asarray(h5[m.dataset][m.start + j], dtype=np.uint32)
                crcs[m.position + j] = zlib.crc32(np.ascontiguousarray(frame))
    return crcs


def test_frame_checksums_are_those_h5py_and_zlib_give(tmp_path):
    mappings, expected = _two_sources(tmp_path)
    out = write_virtual_measurement(tmp_path / "out.h5", _spec(9), mappings)
    with h5py.File(out, "r") as h5:
        recorded = h5["Measurement_000/Channel_000/Frame_Checksums"][()]
    reference = _reference_crcs(mappings, 9, SHAPE[0] * SHAPE[1])
    assert recorded.dtype == reference.dtype and recorded.tobytes() == reference.tobytes()
    assert reference.tolist() == [zlib.crc32(f) for f in expected]


def test_a_vds_translation_records_what_it_recorded_before(tmp_path, monkeypatch):
    """Frame_Checksums, sources and sha256 of a translation equal those of one made with the
    former checksums (h5py + zlib, monkeypatched in) and file records made one after another."""
    frames = _frames()
    src = _source(tmp_path / "scan_data_000001.h5", frames)
    poni, _ai = _poni(tmp_path)
    options = {"format": "nexus", "dataset": DATA, "poni": poni, "link": "vds"}
    new = translate(src, tmp_path / "new.h5", **options)

    import pyscatter.io.raw as raw_module

    monkeypatch.setattr(
        raw_module,
        "_virtual_crcs",
        lambda spec, mappings: _reference_crcs(mappings, spec.n_positions, spec.n_spec),
    )
    old = translate(src, tmp_path / "old.h5", **options)
    with h5py.File(new, "r") as a, h5py.File(old, "r") as b:
        sums_a, sums_b = (h5["Measurement_000/Channel_000/Frame_Checksums"] for h5 in (a, b))
        assert sums_a[()].tobytes() == sums_b[()].tobytes() and sums_a.dtype == sums_b.dtype
        assert dict(sums_a.attrs) == dict(sums_b.attrs)
        for key in ("sha256", "sha256_of", "frame_checksums", "compression", "storage"):
            assert a[RAW].attrs[key] == b[RAW].attrs[key], key
        meas_a, meas_b = a["Measurement_000"].attrs, b["Measurement_000"].attrs
        assert set(meas_a) == set(meas_b)
        for key in set(meas_a) - {"created"}:
            assert np.asarray(meas_a[key]).tolist() == np.asarray(meas_b[key]).tolist(), key
        sources = json.loads(meas_a["sources"])
        assert list(a["Measurement_000"].attrs) == list(b["Measurement_000"].attrs)
    assert sources == [json.loads(json.dumps(file_record(src)))]
    digest = hashlib.sha256(json.dumps(sources, sort_keys=True, default=str).encode())
    with h5py.File(new, "r") as h5:
        assert h5[RAW].attrs["sha256"] == digest.hexdigest()
