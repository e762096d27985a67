"""``pyscatter watch`` of EDF frames whose ESRF header geometry changes (issue 15).

A live file holds the first frame's geometry. A later frame of another header geometry (an
energy series) must stop the watch with one line naming the frame and the key, after the frames
of the first geometry are written and processed -- never be integrated with the first frame's
geometry. With a PONI the headers' geometry is not used (as offline): nothing to stop.
"""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest

from pyscatter.datasets_geometry import energy_series
from pyscatter.errors import FileFormatError
from pyscatter.live.runner import WatchOptions, watch
from pyscatter.live.simulate import FolderWriter

CHANNEL = "Measurement_000/Channel_000"
STEPS = "steps:\n  - integrate: {npt: 40, unit: q_nm^-1, error_model: poisson}\n"
ENERGIES = (10.0, 10.0, 10.0, 12.0, 12.0)  # the geometry changes at frame 3


def _write(folder: Path, scan) -> FolderWriter:
    """Every frame as an EDF file with its ESRF header geometry, the detector's way."""
    from fabio.edfimage import EdfImage

    writer = FolderWriter(folder, scan.frames, fmt="edf")
    for i in range(len(scan.frames)):
        scratch = folder / f".{i}.scratch"
        EdfImage(data=scan.frames[i], header=scan.esrf_header(i)).write(str(scratch))
        writer.write(i, data=scratch.read_bytes())
        scratch.unlink()
    return writer


@pytest.fixture(scope="module")
def scan():
    return energy_series(ENERGIES, frame_shape=(48, 56))


def _options() -> WatchOptions:
    return WatchOptions(grid="Image=5", idle=30.0, settle=0.05, first_number=0)


def test_a_later_frame_of_another_geometry_stops_the_watch(tmp_path: Path, scan):
    frames = tmp_path / "frames"
    writer = _write(frames, scan)
    steps = tmp_path / "p.yaml"
    steps.write_text(STEPS)
    out = tmp_path / "live.h5"
    with pytest.raises(FileFormatError) as info:
        watch(frames, out, steps, _options())
    message = str(info.value)
    assert message.startswith(f"{writer.path(3)}: frame 3: its ESRF header WaveLength = ")
    assert "translate a scan whose geometry changes offline" in message
    assert "\n" not in message
    with h5py.File(out, "r") as h5:
        assert h5.attrs["live_state"] == "stopped"
        done = h5[f"{CHANNEL}/live_frames"][()] != 0
        assert done.tolist() == [True, True, True, False, False]
        np.testing.assert_array_equal(h5[f"{CHANNEL}/Raw_Data"][:3], scan.frames[:3].reshape(3, -1))
        group = h5[f"{CHANNEL}/Raw_Data-AzimuthalIntegration_000"]
        intensity = group["Intensity"][()]
    assert np.isfinite(intensity[:3]).any(axis=1).all() and np.isnan(intensity[3:]).all()
    # the same command again (a restart): the file is continued and stops at the same frame
    with pytest.raises(FileFormatError, match=r"frame 3: its ESRF header WaveLength"):
        watch(frames, out, steps, _options())


def test_the_command_line_stops_with_one_line_and_exit_1(tmp_path: Path, scan, capsys):
    from pyscatter.cli import main

    frames = tmp_path / "frames"
    _write(frames, scan)
    out = tmp_path / "live.h5"
    code = main(["watch", str(frames), "-o", str(out), "--grid", "Image=5", "--idle", "30",
                 "--settle", "0.05", "--first-number", "0"])  # fmt: skip
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1
    assert [line for line in err if line.startswith("pyscatter watch:")] == [err[-1]]
    assert "frame 3: its ESRF header WaveLength" in err[-1]


def test_with_a_poni_the_headers_geometry_is_not_followed(tmp_path: Path, scan):
    """As offline with poni=: the headers' geometry is not used, the watch goes to the end."""
    from pyscatter.datasets_model import build_integrator

    frames = tmp_path / "frames"
    _write(frames, scan)
    poni = tmp_path / "g.poni"
    build_integrator(scan.ponis[0]).write(str(poni))
    options = _options()
    options.until_complete = True
    options.translate = {"poni": str(poni)}
    report = watch(frames, tmp_path / "live.h5", None, options)
    assert report.state == "complete" and not report.problems
