"""PONI files read once by pyFAI, then from the cache: the same config, byte for byte.

The reference is pyFAI itself: ``pyFAI.load(path).get_config()`` (the detector given the frame
shape when the PONI has none), recorded as the translators record it (sorted JSON).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pyFAI
import pytest

from pyscatter.errors import InputError
from pyscatter.geometry import fit2d_config
from pyscatter.io import matrix_cache
from pyscatter.io.raw import _json_default
from pyscatter.translators.geometry_readers import poni_geometry

ROOT = Path(__file__).resolve().parents[2]

PONI_V1 = """\
# Nota: C-Order, 1 refers to the Y axis, 2 to the X axis
PixelSize1: 0.000172
PixelSize2: 0.000172
Distance: 0.3127
Poni1: 0.0412
Poni2: 0.0733
Rot1: 0.0123
Rot2: -0.0045
Rot3: 0.0
Wavelength: 1.0332e-10
"""

PONI_V2_NAMED = """\
poni_version: 2
Detector: Pilatus1M
Detector_config: {}
Distance: 0.25
Poni1: 0.09
Poni2: 0.08
Rot1: 0.001
Rot2: 0.002
Rot3: 0.0
Wavelength: 1.54e-10
"""

# what Dioptas writes: a generic detector with its pixel sizes and shape
PONI_DIOPTAS = """\
# Nota: C-Order, 1 refers to the Y axis, 2 to the X axis
# Calibration done at Mon Jan 01 10:00:00 2024
poni_version: 2
Detector: Detector
Detector_config: {"pixel1": 7.5e-05, "pixel2": 7.5e-05, "max_shape": [40, 50]}
Distance: 0.19723
Poni1: 0.00151
Poni2: 0.00198
Rot1: 0.0021
Rot2: -0.0012
Rot3: 1.2e-10
Wavelength: 2.9e-11
"""


def _fit2d_poni(path: Path) -> Path:
    """A PONI file pyFAI writes from a Fit2D calibration (``setFit2D``)."""
    config = fit2d_config(
        distance_mm=211.3,
        center_x=25.4,
        center_y=19.7,
        pixel_x_um=75.0,
        pixel_y_um=75.0,
        wavelength_angstrom=0.7293,
        frame_shape=(40, 50),
        tilt_deg=0.8,
        tilt_plane_deg=33.0,
    )
    pyFAI.load(config).write(str(path))
    return path


def _eiger_poni(path: Path) -> Path:
    """pyFAI's own v2.1 PONI of a named detector with an orientation (as the benchmark's)."""
    ai = pyFAI.load(
        {"detector": "Eiger1M", "dist": 0.2, "poni1": 0.045, "poni2": 0.035, "wavelength": 1e-10}
    )
    ai.write(str(path))
    return path


CASES = {
    "v1": (lambda p: _text(p, PONI_V1), (40, 50)),
    "v2 named": (lambda p: _text(p, PONI_V2_NAMED), (1043, 981)),
    "dioptas": (lambda p: _text(p, PONI_DIOPTAS), (40, 50)),
    "fit2d": (_fit2d_poni, (40, 50)),
    "v2.1 eiger": (_eiger_poni, (1065, 1030)),
}


def _text(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def recorded(config: dict) -> str:
    """The text a translation records (``Measurement_000@geometry``)."""
    return json.dumps(config, sort_keys=True, default=_json_default)


def pyfai_reference(path: Path, shape: tuple[int, int]) -> str:
    ai = pyFAI.load(str(path))
    det = ai.detector
    if (det.shape if det.shape is not None else det.max_shape) is None:
        det.max_shape = shape
    return recorded(ai.get_config())


@pytest.fixture
def cache(tmp_path, monkeypatch):
    folder = tmp_path / "cache"
    monkeypatch.setenv("PYSCATTER_CACHE", str(folder))
    return folder / "matrices"


@pytest.mark.parametrize("case", list(CASES))
def test_cached_config_is_pyfai_config_byte_for_byte(tmp_path, cache, case):
    write, shape = CASES[case]
    path = write(tmp_path / "geometry.poni")
    reference = pyfai_reference(path, shape)
    before = dict(matrix_cache.STATS)
    first = poni_geometry(path, shape, {})  # read by pyFAI, stored
    assert matrix_cache.STATS["stores"] == before["stores"] + 1
    second = poni_geometry(str(path), shape, {})  # from the cache
    assert matrix_cache.STATS["hits"] == before["hits"] + 1
    assert recorded(first) == reference
    assert recorded(second) == reference
    assert len(list(cache.glob("*.npz"))) == 1
    # the cached config builds the same integrator
    a, b = pyFAI.load(first), pyFAI.load(second)
    q = a.array_from_unit(shape, unit="q_nm^-1")
    assert np.array_equal(q, b.array_from_unit(shape, unit="q_nm^-1"))


def test_cache_off_gives_the_same_config(tmp_path, monkeypatch):
    path = _eiger_poni(tmp_path / "e.poni")
    monkeypatch.setenv("PYSCATTER_CACHE", "off")
    assert recorded(poni_geometry(path, (1065, 1030), {})) == pyfai_reference(path, (1065, 1030))


def test_a_changed_poni_file_is_read_again(tmp_path, cache):
    path = _text(tmp_path / "g.poni", PONI_V1)
    first = poni_geometry(path, (40, 50), {})
    path.write_text(PONI_V1.replace("Distance: 0.3127", "Distance: 0.3128"), encoding="utf-8")
    second = poni_geometry(path, (40, 50), {})
    assert first["dist"] == 0.3127 and second["dist"] == 0.3128
    assert recorded(second) == pyfai_reference(path, (40, 50))


def test_a_named_detector_keeps_its_shape_check(tmp_path, cache):
    path = _eiger_poni(tmp_path / "e.poni")
    poni_geometry(path, (1065, 1030), {})  # cached for this shape
    with pytest.raises(InputError, match=r"detector 'Eiger 1M' is \(1065, 1030\) pixels"):
        poni_geometry(path, (1030, 1065), {})
    generic = _text(tmp_path / "g.poni", PONI_V1)  # no shape: it takes the frames'
    for shape in ((40, 50), (60, 70)):
        config = poni_geometry(generic, shape, {})
        assert list(config["detector_config"]["max_shape"]) == list(shape)
        assert recorded(config) == pyfai_reference(generic, shape)


def test_the_header_pixel_size_is_checked_on_a_cached_config(tmp_path, cache):
    path = _text(tmp_path / "g.poni", PONI_V1)
    poni_geometry(path, (40, 50), {"PSize_1": "172e-6", "PSize_2": "172e-6"})
    poni_geometry(path, (40, 50), {"PSize_1": "172e-6"})  # a hit, agreeing
    with pytest.raises(InputError, match="PSize_2 = 0.0001 m"):
        poni_geometry(path, (40, 50), {"PSize_2": "1e-4"})


def test_a_damaged_cache_entry_is_read_again(tmp_path, cache):
    path = _eiger_poni(tmp_path / "e.poni")
    poni_geometry(path, (1065, 1030), {})
    (entry,) = cache.glob("*.npz")
    entry.write_bytes(b"not a zip file")
    assert recorded(poni_geometry(path, (1065, 1030), {})) == pyfai_reference(path, (1065, 1030))


def test_a_cached_poni_does_not_import_pyfai(tmp_path, cache):
    path = _eiger_poni(tmp_path / "e.poni")
    poni_geometry(path, (1065, 1030), {})
    script = textwrap.dedent(
        f"""
        import json, sys
        from pyscatter.translators.geometry_readers import poni_geometry
        config = poni_geometry({str(path)!r}, (1065, 1030), {{}})
        print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] in ("pyFAI", "scipy"))))
        print(json.dumps(config, sort_keys=True))
        """
    )
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    out = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True
    ).stdout.splitlines()
    assert json.loads(out[0]) == []
    assert out[1] == json.dumps(json.loads(pyfai_reference(path, (1065, 1030))), sort_keys=True)


def test_translations_record_the_same_geometry_with_and_without_the_cache(tmp_path, monkeypatch):
    """``translate --link --poni``: cache off, first read (stored), cached: the same bytes."""
    import h5py
    import hdf5plugin

    from pyscatter.translators import translate

    frames = np.random.default_rng(1).poisson(20, (4, 40, 50)).astype(np.uint32)
    src = tmp_path / "src.h5"
    with h5py.File(src, "w") as h5:
        h5.create_dataset(
            "entry/data/data", data=frames, chunks=(1, 40, 50), **hdf5plugin.Bitshuffle()
        )
    poni = _text(tmp_path / "g.poni", PONI_DIOPTAS)
    texts = []
    for k, cache in enumerate(["off", str(tmp_path / "c"), str(tmp_path / "c")]):
        monkeypatch.setenv("PYSCATTER_CACHE", cache)
        out = translate(
            src, tmp_path / f"o{k}.h5", format="nexus", dataset="/entry/data/data",
            link=True, poni=poni,
        )  # fmt: skip
        with h5py.File(out, "r") as h5:
            texts.append(h5["Measurement_000"].attrs["geometry"])
    assert texts[0] == texts[1] == texts[2] == pyfai_reference(poni, (40, 50))
