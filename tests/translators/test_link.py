"""Zero-copy translation (compressed chunks copied, virtual datasets) and resumable translation.

Resume is tested for real: a translation runs in a subprocess, is killed with SIGKILL part-way,
and the same translation run again must continue (reading only the frames not yet recorded) and
give the same bits as an uninterrupted run.
"""

import hashlib
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import h5py
import numpy as np
import pytest
from numpy.testing import assert_array_equal

from pyscatter.errors import InputError
from pyscatter.io.integrity import verify_file
from pyscatter.io.raw import MeasurementSpec, chunk_filters, partial_path, write_measurement
from pyscatter.io.usid import Dim, main_datasets, read_nd
from pyscatter.translators import id02 as id02_module
from pyscatter.translators import translate

sys.path.insert(0, str(Path(__file__).parent))
from lima_files import frames_with_ring, geometry_header, write_lima  # noqa: E402

RAW = "Measurement_000/Channel_000/Raw_Data"
LIMA_DATA = "entry_0000/ESRF-ID02/eiger2/data"


@pytest.fixture(scope="module")
def check_if_main():
    return pytest.importorskip("pyUSID").hdf_utils.check_if_main


def series(tmp_path, compressions=("bslz4", "bslz4"), n=3, written=None):
    files, frames = [], []
    for k, compression in enumerate(compressions):
        f = frames_with_ring(n, seed=k, dtype=np.uint32, dummy_pixels=False)
        files.append(
            write_lima(
                tmp_path / f"s_{k}.h5",
                f,
                header=geometry_header(Title=f"s_{10 * k}mT"),
                compression=compression,
                written=written if k == 1 else None,
            )
        )
        frames.append(f)
    return files, np.stack(frames)


# --------------------------------------------------------------------------- chunk copy


@pytest.mark.parametrize("compression", ["bslz4", "gzip"])
def test_chunks_copied_without_decoding(tmp_path, compression, check_if_main):
    files, frames = series(tmp_path, (compression, compression))
    out = translate(files, tmp_path / "out.h5", link=True)
    with h5py.File(out) as h5, h5py.File(files[0]) as s0, h5py.File(files[1]) as s1:
        raw = h5[RAW]
        assert check_if_main(raw)
        assert raw.attrs["storage"] == "copied chunks" and raw.chunks == (1, 80 * 120)
        assert chunk_filters(raw) == chunk_filters(s0[LIMA_DATA])  # the same pipeline
        data, dims = read_nd(raw)
        assert [(d.name, len(d)) for d in dims[:2]] == [("Field", 2), ("Frame", 3)]
        assert_array_equal(data, frames)
        for i, src in enumerate((s0, s1)):
            for j in range(3):  # stored bytes identical to the source's: never decoded
                assert (
                    raw.id.read_direct_chunk((3 * i + j, 0))[1]
                    == src[LIMA_DATA].id.read_direct_chunk((j, 0, 0))[1]
                )
        digest = hashlib.sha256()
        for k in range(6):
            digest.update(raw.id.read_direct_chunk((k, 0))[1])
        assert raw.attrs["sha256"] == digest.hexdigest()


def test_chunk_copy_refuses_mixed_pipelines(tmp_path):
    files, _ = series(tmp_path, ("bslz4", "gzip"))
    with pytest.raises(
        InputError, match=r"s_1\.h5: compressed differently .*use link='vds' or link=False"
    ):
        translate(files, tmp_path / "out.h5", link=True)
    out = translate(files, tmp_path / "out.h5", link="vds")  # a virtual dataset does not care
    with h5py.File(out) as h5:
        assert h5[RAW].is_virtual


def test_chunk_copy_of_an_aborted_acquisition(tmp_path):
    files, frames = series(tmp_path, written=2)  # the last frame of file 1 was never written
    out = translate(files, tmp_path / "out.h5", link=True)
    with h5py.File(out) as h5:
        data = h5[RAW][()].reshape(6, 80, 120)
        assert_array_equal(data[:5], frames.reshape(6, 80, 120)[:5])
        assert (data[5] == 0).all()
        assert_array_equal(
            h5["Measurement_000/Channel_000/valid_positions"][()], [1, 1, 1, 1, 1, 0]
        )


# --------------------------------------------------------------------------- virtual dataset


def test_virtual_dataset_moves_with_its_sources(tmp_path, check_if_main, monkeypatch):
    folder = tmp_path / "exp"
    folder.mkdir()
    files, frames = series(folder, written=2)
    out = translate(files, folder / "processed" / "out.h5", link="vds")
    with h5py.File(out) as h5:
        raw = h5[RAW]
        assert raw.is_virtual and check_if_main(raw)
        sources = {s.file_name for s in raw.virtual_sources()}
        assert sources == {"../s_0.h5", "../s_1.h5"}  # relative to the output's folder
        assert raw.id.get_storage_size() == 0  # no frame stored in the file
    # the file holds metadata only: the USID spectroscopic (Row, Col) indices and values
    # (4 + 8 bytes per pixel each, 2 dims) and about 40 kB of attributes and small datasets
    assert out.stat().st_size < 24 * 80 * 120 + 40_000
    moved = tmp_path / "elsewhere"
    shutil.move(folder, moved)
    monkeypatch.chdir(tmp_path)  # HDF5 finds the sources beside the file, not from the cwd
    with h5py.File(moved / "processed" / "out.h5") as h5:
        data = h5[RAW][()].reshape(6, 80, 120)
        assert_array_equal(data[:5], frames.reshape(6, 80, 120)[:5])
        assert (data[5] == 0).all()  # never written in the source: zeros
        buf = np.empty((2, 80 * 120), dtype=np.uint32)
        h5[RAW].read_direct(buf, source_sel=np.s_[2:4])  # how processes read batches
        assert_array_equal(buf.reshape(2, 80, 120), frames.reshape(6, 80, 120)[2:4])


# --------------------------------------------------------------------------- resume


KILLED_RUN = textwrap.dedent(
    """
    import sys, time
    import pyscatter
    from pyscatter.translators import id02, translate

    original = id02._LimaFrames.__getitem__

    def slow(self, position):
        time.sleep(0.04)
        print(position, flush=True)
        return original(self, position)

    id02._LimaFrames.__getitem__ = slow
    translate(sys.argv[1:-2], sys.argv[-2], link=sys.argv[-1] == "chunks" or False)
    """
)


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["encoded", "chunks"])
def test_killed_translation_resumes(tmp_path, mode, monkeypatch, caplog):
    frames = frames_with_ring(48, dtype=np.uint32, dummy_pixels=False)
    # no Dummy in the header: no frame is read for a dummy mask, only frames to translate; no
    # geometry either: the killed subprocess starts faster without importing pyFAI
    src = write_lima(tmp_path / "long.h5", frames, header={"Title": "long_scan"})
    link = mode == "chunks"
    reference = translate(src, tmp_path / "reference.h5", link=link)
    out = tmp_path / "out.h5"
    script = tmp_path / "run.py"
    script.write_text(KILLED_RUN)
    proc = subprocess.Popen(
        [sys.executable, str(script), str(src), str(out), mode],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        cwd=tmp_path,
    )
    for line in proc.stdout:
        if int(line) >= 36:  # two barriers (16 frames each) have recorded frames by now
            break
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not out.exists() and partial_path(out).exists()  # nothing looks complete
    with h5py.File(partial_path(out)) as h5:
        recorded = int(np.count_nonzero(h5["_translation_progress/completed_frames"][()]))
    assert recorded >= 32

    calls = []
    original = id02_module._LimaFrames.__getitem__

    def counting(self, position):
        calls.append(position)
        return original(self, position)

    monkeypatch.setattr(id02_module._LimaFrames, "__getitem__", counting)
    with caplog.at_level(logging.INFO, logger="pyscatter.io.raw"):
        translate(src, out, link=link)  # the same command again
    assert len(calls) == 48 - recorded and min(calls) >= recorded  # only the rest was read
    assert f"{recorded} of 48 frames were already written and verified" in caplog.text
    assert not partial_path(out).exists()
    with h5py.File(out) as a, h5py.File(reference) as b:
        assert a[RAW].attrs["sha256"] == b[RAW].attrs["sha256"]
        assert_array_equal(a[RAW][()], b[RAW][()])  # the same bits as an uninterrupted run
        for k in range(48):
            assert a[RAW].id.read_direct_chunk((k, 0)) == b[RAW].id.read_direct_chunk((k, 0))
        assert "_translation_progress" not in a and "translation_key" not in a.attrs


def small_spec(n=20, **attrs):
    return MeasurementSpec(
        position_dims=[Dim("Image", "", np.arange(n))],
        spec_dims=[Dim("Row", "pixel", np.arange(4)), Dim("Col", "pixel", np.arange(3))],
        dtype=np.int32,
        attrs=attrs,
    )


class Frames:
    """A random-access frame source that records what was read and can fail on demand."""

    def __init__(self, n=20, fail_at=None, error=KeyboardInterrupt):
        self.data = np.arange(n * 12, dtype=np.int32).reshape(n, 4, 3)
        self.calls, self.fail_at, self.error = [], fail_at, error

    def __len__(self):
        return len(self.data)

    def __getitem__(self, i):
        if i == self.fail_at:
            raise self.error()
        self.calls.append(i)
        return self.data[i]


def test_interrupt_keeps_partial_and_bad_input_removes_it(tmp_path, caplog):
    out = tmp_path / "o.h5"
    with caplog.at_level(logging.WARNING), pytest.raises(KeyboardInterrupt):
        write_measurement(out, small_spec(), Frames(fail_at=18))  # Ctrl-C
    assert partial_path(out).exists() and not out.exists()
    assert "run the same translation again to continue" in caplog.text
    frames = Frames()
    write_measurement(out, small_spec(), frames)
    assert frames.calls == [16, 17, 18, 19]  # the first barrier had recorded frames 0 … 15
    with h5py.File(out) as h5:
        assert_array_equal(h5[RAW][()], frames.data.reshape(20, 12))
    bad = Frames()
    bad.data = bad.data.reshape(20, 3, 4)
    with pytest.raises(InputError, match=r"frame 0 has shape \(3, 4\); expected \(4, 3\)"):
        write_measurement(tmp_path / "b.h5", small_spec(), bad)
    assert not partial_path(tmp_path / "b.h5").exists()


def test_partial_of_other_options_is_discarded(tmp_path, caplog):
    out = tmp_path / "o.h5"
    with pytest.raises(KeyboardInterrupt):
        write_measurement(out, small_spec(sample="A"), Frames(fail_at=18))
    frames = Frames()
    with caplog.at_level(logging.WARNING):
        write_measurement(out, small_spec(sample="B"), frames)
    assert "unfinished translation of other sources or options; starting afresh" in caplog.text
    assert frames.calls == list(range(20))
    with h5py.File(out) as h5:
        assert h5["Measurement_000"].attrs["sample"] == "B"


def test_resume_rewrites_a_frame_whose_record_does_not_verify(tmp_path):
    out = tmp_path / "o.h5"
    with pytest.raises(KeyboardInterrupt):
        write_measurement(out, small_spec(), Frames(fail_at=18))
    with h5py.File(partial_path(out), "r+") as h5:
        flags = h5["_translation_progress/completed_frames"]
        flags[3] = flags[3] ^ 1  # a record that does not match the data (as after a torn write)
    frames = Frames()
    write_measurement(out, small_spec(), frames, progress=False)
    assert frames.calls == [3, 16, 17, 18, 19]
    frames = Frames()
    with pytest.raises(KeyboardInterrupt):
        write_measurement(tmp_path / "p.h5", small_spec(), Frames(fail_at=18))
    write_measurement(tmp_path / "p.h5", small_spec(), frames, resume=False)
    assert frames.calls == list(range(20))  # resume=False starts afresh


def test_translation_record_in_the_file(tmp_path):
    files, _ = series(tmp_path)
    out = translate(files, tmp_path / "o.h5")
    with h5py.File(out) as h5:
        raw = h5[RAW]
        assert raw.attrs["storage"] == "encoded" and raw.attrs["compression"] == "bslz4"
        assert json.loads(h5["Measurement_000"].attrs["options"])["link"] is False
        assert sorted(os.listdir(tmp_path)) == ["o.h5", "s_0.h5", "s_1.h5"]  # no lock left
    (main,) = main_datasets(h5py.File(out))
    assert main.name == "/" + RAW


def test_resume_after_stopping_just_past_the_checksums(tmp_path, monkeypatch):
    # stopped after Frame_Checksums was written but before the progress record was dropped:
    # the rerun resumed the partial file and failed on every try ("name already exists")
    import pyscatter.io.raw as raw_module

    real = raw_module.write_checksums

    def write_then_stop(raw, crcs):
        real(raw, crcs)
        raise KeyboardInterrupt

    out = tmp_path / "o.h5"
    monkeypatch.setattr(raw_module, "write_checksums", write_then_stop)
    with pytest.raises(KeyboardInterrupt):
        write_measurement(out, small_spec(), Frames(), progress=False)
    monkeypatch.undo()
    assert partial_path(out).exists() and not out.exists()
    frames = Frames()
    write_measurement(out, small_spec(), frames, progress=False)
    assert frames.calls == []  # every frame was verified, none written again
    with h5py.File(out) as h5:
        assert_array_equal(h5[RAW][()], frames.data.reshape(20, 12))
    assert verify_file(out).ok
