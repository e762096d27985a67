"""An interrupted multi-scan SPEC translation resumes: complete scans are kept (their images are
neither read nor hashed again), the interrupted scan continues from its recorded frames, and the
result has the same bytes as an uninterrupted translation.

Interruptions are deterministic: a SIGKILL the translation sends itself when it reaches a given
image (as ``kill -9``: nothing closed or flushed), or an exception after a given number of frames.
"""

import json
import logging
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import h5py
import numpy as np
import pytest
from fabio.edfimage import EdfImage
from numpy.testing import assert_array_equal

from pyscatter.io import raw as raw_module
from pyscatter.io.integrity import verify_file
from pyscatter.io.raw import partial_path
from pyscatter.translators import spec as spec_module
from pyscatter.translators import translate

ROOT = Path(__file__).resolve().parents[2]
N_POINTS = 24
SCANS = (1, 2, 3)
PATTERN = "img_{scan}_{point:03d}.edf"
PROGRESS = "_translation_progress"


def spec_text(n_points: int = N_POINTS, mca: bool = False) -> str:
    """Three ascans of ``n_points`` points (th, I0), with two MCA analysers per point if ``mca``."""
    lines = ["#F demo.spec", "#E 1455178535", "#O0 th", "#o0 th", ""]
    rng = np.random.default_rng(3)
    for scan in SCANS:
        lines += [f"#S {scan}  ascan  th 0 1 {n_points - 1} 1", "#N 2", "#L th  I0"]
        for point in range(n_points):
            lines.append(f"{point / (n_points - 1):.6f} {100 + scan * 10 + point}")
            if mca:
                for _ in range(2):
                    lines.append("@A " + " ".join(str(v) for v in rng.integers(0, 50, 8)))
        lines.append("")
    return "\n".join(lines)


def write_source(folder: Path, *, mca: bool = False, images: bool = True) -> Path:
    folder.mkdir(exist_ok=True)
    path = folder / "demo.spec"
    path.write_text(spec_text(mca=mca))
    if images:
        rng = np.random.default_rng(5)
        for scan in SCANS:
            for point in range(N_POINTS):
                frame = rng.integers(0, 5000, size=(8, 10)).astype(np.int32)
                EdfImage(data=frame).write(str(folder / PATTERN.format(scan=scan, point=point)))
    return path


def raw_datasets(h5: h5py.File) -> list[str]:
    names: list[str] = []
    h5.visititems(lambda n, o: names.append(n) if n.endswith("/Raw_Data") else None)
    return sorted(names)


def assert_same_bytes(out: Path, reference: Path) -> None:
    """Every main dataset, its checksums and sha256, as in the uninterrupted translation."""
    with h5py.File(out) as a, h5py.File(reference) as b:
        assert raw_datasets(a) == raw_datasets(b)
        assert len(raw_datasets(a)) >= len(SCANS)
        for name in raw_datasets(b):
            ra, rb = a[name], b[name]
            assert ra.attrs["sha256"] == rb.attrs["sha256"], name
            assert_array_equal(ra[()], rb[()])
            for k in range(rb.shape[0]):  # the same stored (compressed) bytes, frame by frame
                assert ra.id.read_direct_chunk((k, 0)) == rb.id.read_direct_chunk((k, 0))
            assert_array_equal(ra.parent["Frame_Checksums"][()], rb.parent["Frame_Checksums"][()])
            if name.endswith("Channel_000/Raw_Data"):  # the counters sit beside the first channel
                assert_array_equal(ra.parent["Counters/I0"][()], rb.parent["Counters/I0"][()])
        assert json.loads(a.attrs["spec_scans"]) == ["1.1", "2.1", "3.1"]
        assert PROGRESS not in a and "translation_key" not in a.attrs
    assert verify_file(out).ok


KILLED_RUN = textwrap.dedent(
    """
    import os, signal, sys
    import pyscatter
    from pyscatter.translators import spec, translate

    original = spec._ImageFrames.__getitem__

    def killed_at(self, point):
        if self.files[point].name == sys.argv[3]:
            os.kill(os.getpid(), signal.SIGKILL)  # as a kill -9: nothing is closed or flushed
        return original(self, point)

    spec._ImageFrames.__getitem__ = killed_at
    translate(sys.argv[1], sys.argv[2], scans="all", image_pattern=sys.argv[4])
    """
)


@pytest.mark.slow
def test_killed_multiscan_translation_resumes(tmp_path, monkeypatch, caplog):
    src = write_source(tmp_path / "src")
    reference = translate(src, tmp_path / "reference.h5", scans="all", image_pattern=PATTERN)
    out = tmp_path / "out.h5"
    script = tmp_path / "run.py"
    script.write_text(KILLED_RUN)
    env = dict(
        os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])
    )
    killed_at = PATTERN.format(scan=2, point=20)
    proc = subprocess.run(
        [sys.executable, str(script), str(src), str(out), killed_at, PATTERN],
        env=env,
        cwd=tmp_path,
        check=False,
    )
    assert proc.returncode == -signal.SIGKILL
    assert not out.exists() and partial_path(out).exists()  # nothing looks complete
    with h5py.File(partial_path(out)) as h5:
        progress = h5[PROGRESS]
        assert progress.attrs["done_000"] and "done_001" not in progress.attrs
        recorded = np.flatnonzero(progress["completed_frames_001_000"][()])
        assert "Measurement_002" not in h5
    assert 0 < recorded.size <= 20 and recorded.tolist() == list(range(recorded.size))

    reads, hashed = [], []
    original_read = spec_module._ImageFrames.__getitem__
    original_record = spec_module.file_record

    def counting_read(self, point):
        reads.append(self.files[point].name)
        return original_read(self, point)

    def counting_record(path):
        hashed.append(Path(path).name)
        return original_record(path)

    monkeypatch.setattr(spec_module._ImageFrames, "__getitem__", counting_read)
    monkeypatch.setattr(spec_module, "file_record", counting_record)
    with caplog.at_level(logging.INFO):
        translate(src, out, scans="all", image_pattern=PATTERN)  # the same command again
    expected = [PATTERN.format(scan=2, point=p) for p in range(recorded.size, N_POINTS)]
    expected += [PATTERN.format(scan=3, point=p) for p in range(N_POINTS)]
    assert reads == expected  # scan 1 not read, scan 2 from its first unrecorded frame
    assert not any(name.startswith("img_1_") for name in hashed)  # scan 1's images not hashed
    assert "Measurement_000 was complete in the unfinished translation; kept" in caplog.text
    assert f"{recorded.size} of {N_POINTS} frames were already written and verified" in caplog.text
    assert not partial_path(out).exists()
    assert_same_bytes(out, reference)


def test_interrupted_mca_scans_resume(tmp_path, monkeypatch, caplog):
    """Spectra (two analysers per point: two channels per scan) interrupted after 60 frames."""
    src = write_source(tmp_path / "src", mca=True, images=False)
    reference = translate(src, tmp_path / "reference.h5", scans="all")
    out = tmp_path / "out.h5"
    writes = []
    original_write = raw_module._write_item

    def stop_after_60(raw, i, item, spec, path):
        if len(writes) == 60:
            raise KeyboardInterrupt  # Ctrl-C: the partial file is kept
        writes.append((raw.name, i))
        return original_write(raw, i, item, spec, path)

    monkeypatch.setattr(raw_module, "_write_item", stop_after_60)
    with pytest.raises(KeyboardInterrupt):
        translate(src, out, scans="all")
    assert partial_path(out).exists() and not out.exists()
    # scan 1: 2 × 24 frames, scan 2 channel 0: 12 of them written before the interruption
    assert writes[-1] == ("/Measurement_001/Channel_000/Raw_Data", 11)
    with h5py.File(partial_path(out)) as h5:
        recorded = int(np.count_nonzero(h5[PROGRESS]["completed_frames_001_000"][()]))

    built = []
    original_channels = spec_module.SpecTranslator._channels

    def counting_channels(self, path, s, *args):
        built.append(s.key)
        return original_channels(self, path, s, *args)

    writes.clear()
    monkeypatch.setattr(
        raw_module, "_write_item", lambda *a: writes.append(a[0].name) or original_write(*a)
    )
    monkeypatch.setattr(spec_module.SpecTranslator, "_channels", counting_channels)
    with caplog.at_level(logging.INFO):
        translate(src, out, scans="all")
    assert built == ["2.1", "3.1"]  # the complete scan is kept, never built again
    first = "/Measurement_001/Channel_000/Raw_Data"
    assert writes.count(first) == N_POINTS - recorded
    assert len(writes) == (N_POINTS - recorded) + N_POINTS + 2 * N_POINTS
    assert_same_bytes(out, reference)


def test_other_options_start_afresh_and_resume_false(tmp_path, monkeypatch, caplog):
    src = write_source(tmp_path / "src", images=False)
    out = tmp_path / "out.h5"
    original_write = raw_module._write_item
    calls = []

    def stop_in_scan_2(raw, i, item, spec, path):
        if raw.name.startswith("/Measurement_001"):
            raise KeyboardInterrupt
        return original_write(raw, i, item, spec, path)

    monkeypatch.setattr(raw_module, "_write_item", stop_in_scan_2)
    with pytest.raises(KeyboardInterrupt):
        translate(src, out, scans="all")
    monkeypatch.setattr(
        raw_module, "_write_item", lambda *a: calls.append(a[0].name) or original_write(*a)
    )
    with caplog.at_level(logging.WARNING):
        translate(src, out, scans="all", monitor="I0")  # another option: another translation
    assert "unfinished translation of other sources or options; starting afresh" in caplog.text
    assert len(calls) == 3 * N_POINTS
    with h5py.File(out) as h5:
        assert h5["Measurement_000"].attrs["monitor"] == "Counters/I0"

    monkeypatch.setattr(raw_module, "_write_item", stop_in_scan_2)
    with pytest.raises(KeyboardInterrupt):
        translate(src, tmp_path / "again.h5", scans="all")
    calls.clear()
    monkeypatch.setattr(
        raw_module, "_write_item", lambda *a: calls.append(a[0].name) or original_write(*a)
    )
    translate(src, tmp_path / "again.h5", scans="all", resume=False)
    assert len(calls) == 3 * N_POINTS  # resume=False writes everything again


def test_writer_rewrites_a_measurement_whose_channels_changed(tmp_path, caplog):
    """Plans of the same keys whose built channels differ (a source changed in place, say):
    the unfinished measurement is laid out and written again; complete ones are kept."""
    from pyscatter.io.measurements import ChannelData, MeasurementPlan, write_measurements
    from pyscatter.io.raw import MeasurementSpec
    from pyscatter.io.usid import Dim

    def plans(label, fail_at=None):
        def build(k):
            spec = MeasurementSpec(
                [Dim("X", "mm", np.arange(20))],
                [Dim("Channel", "", np.arange(5))],
                np.int32,
                attrs={"label": label, "scan": k},
            )
            frames = Frames(np.full((20, 5), 10 * k, np.int32), fail_at)
            return [ChannelData(spec, frames, {"scan": k})]

        return [MeasurementPlan(f"scan {k}", lambda k=k: build(k)) for k in range(3)]

    class Frames:
        def __init__(self, data, fail_at):
            self.data, self.fail_at, self.calls = data, fail_at, []

        def __len__(self):
            return len(self.data)

        def __getitem__(self, i):
            if self.fail_at is not None and i == self.fail_at and self.data[0, 0] == 10:
                raise KeyboardInterrupt
            self.calls.append(i)
            return self.data[i]

    out = tmp_path / "o.h5"
    with pytest.raises(KeyboardInterrupt):
        write_measurements(out, plans("A", fail_at=18), compression="gzip")
    with caplog.at_level(logging.INFO):
        write_measurements(out, plans("B"), compression="gzip")
    assert "Measurement_000 was complete in the unfinished translation; kept" in caplog.text
    assert "Measurement_001 of another content or unfinished set-up; written again" in caplog.text
    with h5py.File(out) as h5:
        assert h5["Measurement_000"].attrs["label"] == "A"  # kept as it was
        assert h5["Measurement_001"].attrs["label"] == "B"  # laid out again
        assert h5["Measurement_001/Channel_000"].attrs["scan"] == 1
        assert_array_equal(h5["Measurement_001/Channel_000/Raw_Data"][()], 10)
    assert verify_file(out).ok
