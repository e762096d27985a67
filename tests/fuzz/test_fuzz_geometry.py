"""Fuzz: PONI files and ESRF header geometries."""

from __future__ import annotations

import math

import numpy as np
import pytest

from pyscatter.errors import InputError
from pyscatter.geometry import GEOMETRY_LIMITS, integrator_from_config
from pyscatter.processes.integration import load_geometry
from pyscatter.translators.esrf import esrf_geometry

from ._cases import GARBAGE, NASTY_NUMBERS, assert_clean, pick, rng
from .conftest import record

N_PONI = 300
N_HEADERS = 300
SHAPE = (16, 20)

PONI = {
    "poni_version": "2.1",
    "Detector": "Detector",
    "Detector_config": '{"pixel1": 0.0001, "pixel2": 0.00012, "max_shape": [16, 20], "orientation": 3}',
    "Distance": "0.25",
    "Poni1": "0.0008",
    "Poni2": "0.0011",
    "Rot1": "0.01",
    "Rot2": "-0.02",
    "Rot3": "0.0",
    "Wavelength": "1.0e-10",
}
NUMERIC = ["Distance", "Poni1", "Poni2", "Rot1", "Rot2", "Rot3", "Wavelength"]


def poni_case(seed: int) -> str:
    g = rng(seed)
    values = dict(PONI)
    for _ in range(int(g.integers(1, 4))):
        what = int(g.integers(6))
        key = pick(g, NUMERIC)
        if what <= 2:
            values[key] = pick(g, NASTY_NUMBERS)
        elif what == 3:
            values[key] = pick(g, GARBAGE)
        elif what == 4:
            values.pop(key, None)
        else:
            pixel = pick(g, ["0", "-1e-4", "1e30", "1e-12", "0.0001", '"x"', "null"])
            values["Detector_config"] = (
                f'{{"pixel1": {pixel}, "pixel2": 0.0001, "max_shape": [16, 20], "orientation": 3}}'
            )
    if g.random() < 0.1:
        values["Detector"] = pick(g, ["NoSuchDetector", "", "Pilatus1M"])
    return "".join(f"{k}: {v}\n" for k, v in values.items())


def check_accepted(config: dict) -> None:
    ai = integrator_from_config(config)
    numbers = {
        "dist": ai.dist,
        "poni1": ai.poni1,
        "poni2": ai.poni2,
        "rot1": ai.rot1,
        "rot2": ai.rot2,
        "rot3": ai.rot3,
        "pixel1": ai.detector.pixel1,
        "pixel2": ai.detector.pixel2,
    }
    if ai.wavelength:
        numbers["wavelength"] = ai.wavelength
    for key, value in numbers.items():
        low, high, _ = GEOMETRY_LIMITS[key]
        assert math.isfinite(value) and low <= value <= high, (key, value)
    shape = ai.detector.shape or SHAPE
    unit = "q_nm^-1" if ai.wavelength else "2th_deg"
    radial = ai.center_array(shape, unit=unit)
    assert np.isfinite(radial).all() and np.ptp(radial) > 0  # not constant, not NaN


@pytest.mark.parametrize("block", range(3))
def test_fuzz_poni(tmp_path, block):
    import pyFAI

    for seed in range(block * N_PONI // 3, (block + 1) * N_PONI // 3):
        path = tmp_path / f"case_{seed}.poni"
        path.write_text(poni_case(seed))
        try:
            config = load_geometry(path, None)
        except InputError as err:
            assert_clean(err, str(path))
            record("poni", "refused")
            continue
        reference = pyFAI.load(str(path)).get_config()  # what pyFAI itself reads
        for key in ("dist", "poni1", "poni2", "rot1", "rot2", "rot3", "wavelength"):
            assert config.get(key) == reference.get(key), (seed, key)
        check_accepted(config)
        record("poni", "accepted")


SAXS = {
    "Center_1": "10.5",
    "Center_2": "8.5",
    "PSize_1": "1.72e-04",
    "PSize_2": "1.72e-04",
    "SampleDistance": "1.5",
    "WaveLength": "1.5418e-10",
}
HEADER_KEYS = [*SAXS, "Rot_1", "Rot_2", "Rot_3"]


def header_case(seed: int) -> dict:
    g = rng(seed)
    header = dict(SAXS)
    for _ in range(int(g.integers(1, 4))):
        key = pick(g, HEADER_KEYS)
        what = int(g.integers(5))
        if what <= 2:
            header[key] = pick(g, NASTY_NUMBERS)
        elif what == 3:
            header[key] = pick(g, GARBAGE)
        else:
            header.pop(key, None)
    if g.random() < 0.15:  # a header without any geometry trigger
        header = {k: v for k, v in header.items() if k.startswith(("PSize", "Rot"))}
    return header


@pytest.mark.parametrize("block", range(3))
def test_fuzz_esrf_headers(block):
    from pyFAI.integrator.azimuthal import AzimuthalIntegrator

    where = "fuzz_0001.edf"
    for seed in range(block * N_HEADERS // 3, (block + 1) * N_HEADERS // 3):
        header = header_case(seed)
        try:
            config = esrf_geometry(header, SHAPE, where=where)
        except InputError as err:
            assert_clean(err, where)
            record("esrf header", "refused")
            continue
        if config is None:
            assert not any(
                header.get(k, "").strip()
                for k in ("Center_1", "Center_2", "SampleDistance", "WaveLength")
            )
            record("esrf header", "none")
            continue
        ref = AzimuthalIntegrator()  # pyFAI's own reading of the same keys
        ref.setSPD(**{k: float(header[k]) for k in SAXS})
        for key in ("dist", "poni1", "poni2", "wavelength"):
            assert config[key] == pytest.approx(ref.get_config()[key], rel=1e-12), (seed, key)
        check_accepted(config)
        record("esrf header", "accepted")
