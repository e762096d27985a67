"""SAXSLAB stacks keep every option of the image translator: grid and snake, motors, positions with
an aborted row, monitor, flip, header_geometry, and resume after a kill.

The images are small synthetic TIFFs carrying a SAXSLAB XML header (as Xenocs instruments write
it, in TIFF tag 315); expected values come from the numbers written into them and from
:func:`saxslab_geometry` read back through pyFAI.
"""

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import h5py
import numpy as np
import pyFAI
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from pyscatter.errors import FileFormatError, InputError
from pyscatter.io.integrity import verify_file
from pyscatter.io.raw import partial_path
from pyscatter.io.usid import main_datasets, read_nd
from pyscatter.translators import images as images_module
from pyscatter.translators import translate
from pyscatter.translators.saxslab import saxslab_geometry

ROOT = Path(__file__).resolve().parents[2]
RAW = "Measurement_000/Channel_000/Raw_Data"
SHAPE = (12, 16)
GEOMETRY = {
    "wavelength": "1.5418",
    "detector_dist": "487.5608",
    "det_pixel_size": "172e-6 172e-6",
    "beamcenter_actual": "5.25 9.5",  # row, col
}


def write_saxslab(path: Path, frame: np.ndarray, **params: str) -> Path:
    """A TIFF of ``frame`` (int32) with ``<SAXSLABparameters>`` of GEOMETRY and ``params``."""
    from PIL import Image
    from PIL.TiffImagePlugin import ImageFileDirectory_v2

    items = {**GEOMETRY, **params}
    xml = (
        "<SAXSLABparameters>"
        + "".join(f'<param name="{k}">{v}</param>' for k, v in items.items())
        + "</SAXSLABparameters>"
    )
    ifd = ImageFileDirectory_v2()
    ifd[315] = xml
    Image.fromarray(np.ascontiguousarray(frame, dtype=np.int32)).save(path, tiffinfo=ifd)
    return path


def snake_stack(folder: Path, rows: int = 2, cols: int = 3, n: int | None = None, **extra):
    """A serpentine scan: image k measured at (row, col) with the second row run backwards.

    Returns the frames in acquisition order, their (ysam, zsam) and their monitor values.
    """
    rng = np.random.default_rng(7)
    order = [(r, c if r % 2 == 0 else cols - 1 - c) for r in range(rows) for c in range(cols)]
    n = len(order) if n is None else n
    frames = rng.integers(0, 1000, size=(n, *SHAPE)).astype(np.int32)
    where = np.array(order[:n], dtype=np.float64) * [1.0, 0.5]  # ysam step 1, zsam step 0.5
    monitors = 1000.0 + np.arange(n) * 7
    for k in range(n):
        write_saxslab(
            folder / f"img_{k:03d}.tif",
            frames[k],
            ysam=f"{where[k, 0] + 1e-4 * (k % 2):.6f}",  # read-back jitter
            zsam=f"{where[k, 1]:.6f}",
            saxsconf_Izero=f"{monitors[k]:g}",
            **extra,
        )
    return frames, where, monitors


def grid_of(frames: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """Frames of a serpentine scan put back in grid order (slow, fast)."""
    out = frames.reshape(rows, cols, *frames.shape[1:]).copy()
    out[1::2] = out[1::2, ::-1]
    return out


def test_grid_snake_monitor_and_header_geometry(tmp_path):
    frames, _, monitors = snake_stack(tmp_path)
    out = translate(
        sorted(tmp_path.glob("img_*.tif")),
        tmp_path / "o.h5",
        format="saxslab",
        grid="Y=2,X=3",
        snake=True,
        monitor="saxsconf_Izero",
    )
    with h5py.File(out) as h5:
        (main,) = main_datasets(h5)
        data, dims = read_nd(main)
        meas = h5["Measurement_000"]
        assert meas.attrs["translator"] == "saxslab"
        assert meas.attrs["geometry_source"] == "SAXSLAB header of img_000.tif"
        assert json.loads(meas.attrs["saxslab_header"])["saxsconf_Izero"] == "1000"
        assert meas.attrs["monitor"] == "saxsconf_Izero"
        assert [d.name for d in dims] == ["Y", "X", "Row", "Col"]
        assert_array_equal(data, grid_of(frames, 2, 3))
        assert_array_equal(main.parent["Monitor"][()], grid_of(monitors, 2, 3).ravel())
        geometry = json.loads(meas.attrs["geometry"])
    f2d = pyFAI.load(geometry).getFit2D()
    ref = pyFAI.load(saxslab_geometry(GEOMETRY, SHAPE)).getFit2D()
    assert_allclose([f2d["centerX"], f2d["centerY"]], [9.5, 5.25], rtol=1e-12)
    assert_allclose(f2d["directDist"], ref["directDist"], rtol=1e-12)


def test_motors_from_saxslab_parameters_detect_the_snake(tmp_path):
    frames, where, _ = snake_stack(tmp_path)
    out = translate(tmp_path, tmp_path / "o.h5", format="saxslab", motors="ysam,zsam[mm]")
    with h5py.File(out) as h5:
        (main,) = main_datasets(h5)
        data, dims = read_nd(main)
        assert [(d.name, d.units) for d in dims[:2]] == [("ysam", ""), ("zsam", "mm")]
        assert_allclose(dims[1].values, [0.0, 0.5, 1.0])
        assert (
            h5["Measurement_000"].attrs["positions_source"].endswith("(SAXSLAB header parameters)")
        )
    assert_array_equal(data, grid_of(frames, 2, 3))
    with pytest.raises(FileFormatError, match=r"img_000\.tif: no SAXSLAB parameter 'samx'"):
        translate(tmp_path, tmp_path / "p.h5", format="saxslab", motors="samx")


def test_positions_csv_with_an_aborted_row_padded(tmp_path):
    frames, where, _ = snake_stack(tmp_path, n=5)  # the last point of the second row is missing
    csv = tmp_path / "positions.csv"
    csv.write_text("Y[mm],X[mm]\n" + "".join(f"{y},{x}\n" for y, x in where))
    out = translate(tmp_path, tmp_path / "o.h5", format="saxslab", positions=csv)
    with h5py.File(out) as h5:
        (main,) = main_datasets(h5)
        data, _ = read_nd(main)
        valid = main.parent["valid_positions"][()]
    assert_array_equal(valid, [True, True, True, False, True, True])
    assert_array_equal(data[1, 0], 0)  # never measured: zeros
    assert_array_equal(data[1, 1:], frames[[4, 3]])


def test_flip_mirrors_the_header_centre_and_no_header_geometry(tmp_path):
    frames, _, _ = snake_stack(tmp_path, rows=1, cols=2)
    out = translate(tmp_path, tmp_path / "lr.h5", format="saxslab", flip="lr")
    with h5py.File(out) as h5:
        (main,) = main_datasets(h5)
        data, _ = read_nd(main)
        f2d = pyFAI.load(json.loads(h5["Measurement_000"].attrs["geometry"])).getFit2D()
    assert_array_equal(data, frames[:, :, ::-1])
    assert_allclose([f2d["centerX"], f2d["centerY"]], [SHAPE[1] - 9.5, 5.25], rtol=1e-12)
    out = translate(tmp_path, tmp_path / "none.h5", format="saxslab", header_geometry=False)
    with h5py.File(out) as h5:
        assert "geometry" not in h5["Measurement_000"].attrs


def test_headers_must_agree_unless_poni(tmp_path):
    snake_stack(tmp_path, rows=1, cols=2)
    write_saxslab(tmp_path / "img_002.tif", np.zeros(SHAPE), detector_dist="500")
    with pytest.raises(InputError, match=r"img_002\.tif: SAXSLAB geometry \(detector_dist\)"):
        translate(tmp_path, tmp_path / "o.h5", format="saxslab")
    poni = saxslab_geometry(GEOMETRY, SHAPE)
    out = translate(tmp_path, tmp_path / "o.h5", format="saxslab", poni=poni)
    with h5py.File(out) as h5:
        assert h5["Measurement_000"].attrs["geometry_source"] == "poni"


KILLED_RUN = textwrap.dedent(
    """
    import os, signal, sys
    import pyscatter
    from pyscatter.translators import images, translate

    original = images._Frames.__getitem__

    def killed_at(self, position):
        if position == int(sys.argv[3]):
            os.kill(os.getpid(), signal.SIGKILL)  # as a kill -9: nothing is closed or flushed
        return original(self, position)

    images._Frames.__getitem__ = killed_at
    translate(sys.argv[1], sys.argv[2], format="saxslab", grid="Y=4,X=6", snake=True,
              monitor="saxsconf_Izero")
    """
)


@pytest.mark.slow
def test_killed_saxslab_translation_resumes(tmp_path, monkeypatch):
    src = tmp_path / "src"
    src.mkdir()
    snake_stack(src, rows=4, cols=6)
    options = dict(format="saxslab", grid="Y=4,X=6", snake=True, monitor="saxsconf_Izero")
    reference = translate(src, tmp_path / "reference.h5", **options)
    out = tmp_path / "out.h5"
    script = tmp_path / "run.py"
    script.write_text(KILLED_RUN)
    env = dict(
        os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])
    )
    proc = subprocess.run(
        [sys.executable, str(script), str(src), str(out), "20"], env=env, cwd=tmp_path, check=False
    )
    assert proc.returncode == -signal.SIGKILL
    assert not out.exists() and partial_path(out).exists()  # nothing looks complete
    with h5py.File(partial_path(out)) as h5:
        recorded = np.flatnonzero(h5["_translation_progress/completed_frames"][()])
    assert 0 < recorded.size <= 20 and recorded.tolist() == list(range(recorded.size))

    calls = []
    original = images_module._Frames.__getitem__

    def counting(self, position):
        calls.append(position)
        return original(self, position)

    monkeypatch.setattr(images_module._Frames, "__getitem__", counting)
    translate(src, out, **options)  # the same command again
    assert calls == list(range(recorded.size, 24))  # only the frames not recorded were read
    assert not partial_path(out).exists()
    with h5py.File(out) as a, h5py.File(reference) as b:
        assert a[RAW].attrs["sha256"] == b[RAW].attrs["sha256"]
        assert_array_equal(a[RAW][()], b[RAW][()])
        assert_array_equal(
            a[RAW].parent["Frame_Checksums"][()], b[RAW].parent["Frame_Checksums"][()]
        )
        assert_array_equal(a[RAW].parent["Monitor"][()], b[RAW].parent["Monitor"][()])
        assert (
            a["Measurement_000"].attrs["saxslab_header"]
            == b["Measurement_000"].attrs["saxslab_header"]
        )
    assert verify_file(out).ok
