"""Live files of a growing HDF5 source stored one bitshuffle-LZ4 chunk per frame: the chunks are
copied as they are, never decoded (``Arrival.chunk``, ``LiveLayout.take_chunks``).

The reference is the offline ``pyscatter translate SRC --format nexus --dataset /entry/data/data
--link`` of the finished source: ``Raw_Data``'s stored chunk bytes, filter masks, decoded values,
``Position_*``, ``Spectroscopic_*`` and ``Chunk_Checksums`` must be identical, and the decoded
values equal the source frames. Kills reuse the writer subprocess of ``test_livefile``.
"""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import h5py
import hdf5plugin  # noqa: F401  (bitshuffle-LZ4)
import numpy as np
import pytest
from numpy.testing import assert_array_equal

from pyscatter.errors import InputError
from pyscatter.io.integrity import verify_file
from pyscatter.io.safety import job_lock
from pyscatter.live.growing_h5 import GrowingH5Source, copyable_filters
from pyscatter.live.layout import images_layout
from pyscatter.live.livefile import LiveFile
from pyscatter.live.simulate import H5Writer, scan_frames
from pyscatter.live.sources import Arrival, SourceChunk
from pyscatter.translators.nexus import NexusTranslator

sys.path.insert(0, str(Path(__file__).parent))
from test_livefile import _env, kill_twice, write_poni  # noqa: E402

CHANNEL = "Measurement_000/Channel_000"
DATA = "/entry/data/data"
SHAPE = (64, 72)
COMPARED = (
    "Position_Indices",
    "Position_Values",
    "Spectroscopic_Indices",
    "Spectroscopic_Values",
    "Chunk_Checksums",
)


# --------------------------------------------------------------------------- helpers


def write_source(path: Path, n: int, *, nimages: bool = True, seed: int = 0) -> np.ndarray:
    """An Eiger-like file: ``n`` uint32 frames, one bitshuffle-LZ4 chunk each."""
    frames = scan_frames(n, SHAPE, rng=seed).astype(np.uint32)
    frames[:, 5, :] = 0xFFFFFFFF  # a dead row, as Eiger's gaps
    writer = H5Writer(path, SHAPE, np.uint32, swmr=False, nimages=n if nimages else None)
    writer.append(frames)
    writer.close()
    return frames


def arrivals(paths, indices) -> list[Arrival]:
    """Frames of the source ``paths[0]`` as its stored chunks (as the growing-HDF5 source gives
    them after its first frame)."""
    out = []
    with h5py.File(paths[0], "r") as h5:
        dset = h5[DATA]
        filters = copyable_filters(dset)
        for i in indices:
            mask, data = dset.id.read_direct_chunk((int(i), 0, 0))
            chunk = SourceChunk(data, int(mask), filters, dset.dtype.str, tuple(dset.shape[1:]))
            out.append(Arrival(int(i), None, f"{paths[0]}#frame {i}", {}, chunk))
    return out


def layout_of(paths, dims, **options):
    """The layout the watch makes from the first frame, copying the chunks when it can."""
    with h5py.File(paths[0], "r") as h5:
        first = h5[DATA][0]
    layout = images_layout(first, dims=dims, **options)
    layout.take_chunks(arrivals(paths, [0])[0].chunk)
    return layout


def offline(source: Path, out: Path) -> Path:
    """``pyscatter translate SRC --format nexus --dataset /entry/data/data --link``."""
    cmd = [sys.executable, "-m", "pyscatter", "-q", "translate", str(source), "-o", str(out)]
    cmd += ["--format", "nexus", "--dataset", DATA, "--link"]
    done = subprocess.run(cmd, env=_env(), capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    return out


def stored_chunks(path: Path) -> list[tuple[int, bytes]]:
    with h5py.File(path, "r") as h5:
        raw = h5[f"{CHANNEL}/Raw_Data"]
        return [raw.id.read_direct_chunk((i, 0)) for i in range(raw.shape[0])]


def assert_same_raw(live: Path, off: Path, frames: np.ndarray) -> None:
    """Same stored chunks (bytes and masks), pipeline, values and USID datasets."""
    assert stored_chunks(live) == stored_chunks(off)
    with h5py.File(live, "r") as a, h5py.File(off, "r") as b:
        x, y = a[f"{CHANNEL}/Raw_Data"], b[f"{CHANNEL}/Raw_Data"]
        assert x.shape == y.shape and x.dtype == y.dtype and x.chunks == y.chunks
        assert x.id.get_create_plist().get_nfilters() == 1
        for k in range(x.id.get_create_plist().get_nfilters()):
            assert x.id.get_create_plist().get_filter(k) == y.id.get_create_plist().get_filter(k)
        assert_array_equal(x[()], y[()])
        assert_array_equal(x[()].reshape(frames.shape), frames)
        assert x.attrs["compression"] == y.attrs["compression"] == "bitshuffle"
        for name in COMPARED:
            assert_array_equal(a[f"{CHANNEL}/{name}"][()], b[f"{CHANNEL}/{name}"][()], name)
        assert "Frame_Checksums" not in a[CHANNEL]
        assert_array_equal(
            a["Measurement_000/Raw_Frames/data"][()], b["Measurement_000/Raw_Frames/data"][()]
        )


# --------------------------------------------------------------------------- equality


@pytest.mark.parametrize("declared", [True, False], ids=["declared", "series"])
def test_source_chunks_copied_equal_offline_link(tmp_path, declared):
    source = tmp_path / "eiger.h5"
    frames = write_source(source, 7, nimages=declared)
    src = GrowingH5Source(source, watch=False, settle=0)
    got = src.poll() + src.poll()
    assert [a.index for a in got] == list(range(7))
    assert got[0].frame is not None and all(a.frame is None for a in got[1:])
    layout = images_layout(got[0].frame, dims=src.declared_dims())
    assert layout.take_chunks(got[0].chunk) and layout.attrs["link"] == "chunks"
    live = tmp_path / "live.h5"
    order = [4, 0, 6, 2, 1, 5, 3]
    by_index = {a.index: a for a in got}
    with job_lock(live), LiveFile.create_or_open(live, layout) as lf:
        assert lf.chunked
        for start in range(0, 7, 3):
            lf.write([by_index[i] for i in order[start : start + 3]])
        lf.finalize()
    src.close()
    assert_same_raw(live, offline(source, tmp_path / "off.h5"), frames)
    with h5py.File(live, "r") as h5:
        flags = h5[f"{CHANNEL}/live_frames"]
        assert flags.attrs["checksum_of"].startswith("stored chunks")
        crcs = h5[f"{CHANNEL}/Chunk_Checksums"][:, 0]
        assert_array_equal(flags[()], (1 << 32) | crcs.astype(np.uint64))
        assert h5.attrs["live_state"] == ("complete" if declared else "stopped")
    report = verify_file(live)
    assert report.ok, report.text()
    assert "7 frames match their crc32 (of the stored chunks)" in report.text()


def test_verify_names_a_corrupted_chunk(tmp_path):
    source = tmp_path / "eiger.h5"
    write_source(source, 5)
    live = tmp_path / "live.h5"
    with job_lock(live), LiveFile.create_or_open(live, layout_of([source], [("Image", 5)])) as lf:
        lf.write(arrivals([source], range(5)))
        lf.finalize()
        info = lf.raw.id.get_chunk_info_by_coord((3, 0))
    with open(live, "r+b") as handle:  # one bit of position 3's stored chunk
        handle.seek(info.byte_offset + info.size // 2)
        byte = handle.read(1)
        handle.seek(-1, 1)
        handle.write(bytes([byte[0] ^ 0x10]))
    report = verify_file(live)
    assert not report.ok
    assert any("position 3 (Image=3)" in p and "crc32" in p for p in report.problems)
    assert len(report.problems) == 1
    cli = [sys.executable, "-m", "pyscatter", "verify", str(live)]
    done = subprocess.run(cli, env=_env(), capture_output=True, text=True)
    assert done.returncode != 0 and "position 3" in done.stdout + done.stderr


def test_aborted_scan_missing_positions_get_zero_chunks(tmp_path):
    source = tmp_path / "eiger.h5"
    frames = write_source(source, 6)
    live = tmp_path / "live.h5"
    with job_lock(live), LiveFile.create_or_open(live, layout_of([source], [("Image", 8)])) as lf:
        lf.write(arrivals([source], [5, 0, 2, 1, 3, 4]))
        lf.finalize()
    with h5py.File(live, "r") as h5:
        chan = h5[CHANNEL]
        assert_array_equal(chan["Raw_Data"][:6].reshape(frames.shape), frames)
        assert not chan["Raw_Data"][6:].any()
        assert chan["valid_positions"][()].tolist() == [True] * 6 + [False] * 2
        assert h5.attrs["live_state"] == "stopped"
    assert verify_file(live).ok
    with job_lock(live), LiveFile.create_or_open(live) as lf:  # reopened: unfinalized
        assert lf.done().tolist() == [True] * 6 + [False] * 2
        assert "Chunk_Checksums" not in lf.raw.parent
        assert "chunk_checksums" not in lf.raw.attrs


def test_decoded_first_frame_and_other_pipelines(tmp_path):
    """The first frame comes decoded with its chunk: its chunk is copied. A layout that cannot
    copy (flip) decodes every chunk and equals the offline decoded translation."""
    source = tmp_path / "eiger.h5"
    frames = write_source(source, 4)
    first = dataclasses.replace(arrivals([source], [0])[0], frame=frames[0])
    live = tmp_path / "live.h5"
    layout = layout_of([source], [("Image", 4)])
    with job_lock(live), LiveFile.create_or_open(live, layout) as lf:
        lf.write([first, *arrivals([source], [1, 2, 3])])
        lf.finalize()
    assert_same_raw(live, offline(source, tmp_path / "off.h5"), frames)

    flipped = tmp_path / "flipped.h5"
    layout = layout_of([source], [("Image", 4)], flip="ud")
    assert layout.raw_filters is None
    with job_lock(flipped), LiveFile.create_or_open(flipped, layout) as lf:
        assert not lf.chunked
        lf.write(arrivals([source], [3, 1, 0, 2]))
        lf.finalize()
    ref = NexusTranslator().translate(source, tmp_path / "ref.h5", dataset=DATA, flip="ud")
    with h5py.File(flipped, "r") as a, h5py.File(ref, "r") as b:
        for name in ("Raw_Data", "Frame_Checksums", *COMPARED[:-1]):
            assert_array_equal(a[f"{CHANNEL}/{name}"][()], b[f"{CHANNEL}/{name}"][()], name)
    assert verify_file(flipped).ok


def test_layout_record_and_restart(tmp_path):
    source = tmp_path / "eiger.h5"
    write_source(source, 3)
    layout = layout_of([source], [("Image", 3)])
    record = layout.record()
    assert record["raw_filters"][0][0] == 32008
    plain = images_layout(np.zeros(SHAPE, np.uint32), dims=[("Image", 3)])
    assert "raw_filters" not in plain.record()  # the records of earlier files are unchanged
    assert plain.differences(record) == [
        f"raw_filters: no copied chunks here, copied chunks of filters "
        f"{record['raw_filters']} in the file"
    ]
    live = tmp_path / "live.h5"
    with job_lock(live), LiveFile.create_or_open(live, layout) as lf:
        lf.write(arrivals([source], [1]))
    with job_lock(live), LiveFile.create_or_open(live) as lf:  # the stored layout
        assert lf.layout.record() == record and lf.chunked
        assert lf.done().tolist() == [False, True, False]
        lf.write(arrivals([source], [0, 2]))
    with job_lock(live), pytest.raises(InputError, match="raw_filters: no copied chunks here"):
        LiveFile.create_or_open(live, plain)


# --------------------------------------------------------------------------- kills


@pytest.mark.parametrize("dims", [[["Image", 12]], None], ids=["bounded", "series"])
@pytest.mark.parametrize("seed", [0, 1])
def test_kill9_at_random_commits_then_resume_equals_offline(tmp_path, dims, seed):
    rng = np.random.default_rng(seed)
    source = tmp_path / "eiger.h5"
    frames = write_source(source, 12, seed=seed)
    paths = [str(source)]
    live = tmp_path / "live.h5"
    order = [int(i) for i in rng.permutation(12)]

    def holds_its_chunk(lf, i):  # verified by its stored bytes: they are the source's
        assert lf.raw.id.read_direct_chunk((i, 0)) == (
            arrivals(paths, [i])[0].chunk.filter_mask,
            arrivals(paths, [i])[0].chunk.data,
        )

    committed = kill_twice(
        tmp_path, live, paths, dims, order, rng, layout_of, holds_its_chunk, "test_chunk_copy"
    )
    with job_lock(live), LiveFile.create_or_open(live, layout_of(paths, dims)) as lf:
        lf.write(arrivals(paths, [i for i in order if i not in committed]))
        lf.finalize()
    assert_same_raw(live, offline(source, tmp_path / "off.h5"), frames)
    assert verify_file(live).ok


# --------------------------------------------------------------------------- integrate


def _integrate_live(live: Path, layout, batches) -> dict[str, np.ndarray]:
    """Write ``batches`` of arrivals and advance an integrate live session after each (as the
    watch does); then finalize. Returns the results group's datasets."""
    from pyscatter.processes.guards import live_sources
    from pyscatter.processes.integration import AzimuthalIntegration

    with job_lock(live), LiveFile.create_or_open(live, layout) as lf:
        session = None
        for batch in batches:
            lf.write(batch)
            if session is None:
                with live_sources():
                    proc = AzimuthalIntegration(
                        lf.raw, npt=40, unit="q_nm^-1", error_model="poisson", n_jobs=1
                    )
                session = proc.live_session(live_block=1, locked=True)
            session.advance(lf.done())
        lf.finalize()
        session.advance(np.ones(lf.n_positions, dtype=bool))
        out = {}
        session.group.visititems(
            lambda name, obj: (
                out.__setitem__(name, obj[()]) if isinstance(obj, h5py.Dataset) else None
            )
        )
        session.close()
    return out


def test_integrate_on_copied_chunks_equals_decoded_path(tmp_path):
    source = tmp_path / "eiger.h5"
    frames = write_source(source, 6, seed=3)
    poni = write_poni(tmp_path / "det.poni")
    order = [[2, 0], [5], [1, 3, 4]]
    copied = _integrate_live(
        tmp_path / "copied.h5",
        layout_of([source], [("Image", 6)], poni=poni),
        [arrivals([source], batch) for batch in order],
    )
    decoded_layout = images_layout(frames[0], dims=[("Image", 6)], poni=poni)
    decoded = _integrate_live(
        tmp_path / "decoded.h5",
        decoded_layout,
        [[Arrival(i, frames[i], f"frame {i}") for i in batch] for batch in order],
    )
    with h5py.File(tmp_path / "copied.h5", "r") as h5:
        assert h5[f"{CHANNEL}/Raw_Data"].attrs["storage"] == "copied chunks (live)"
    assert set(copied) == set(decoded) and "Intensity" in copied
    for name, value in decoded.items():
        assert copied[name].dtype == value.dtype, name
        assert_array_equal(copied[name], value, err_msg=name, strict=True)
    assert np.isfinite(copied["Intensity"]).all()
