"""``geometry_from``: a geometry parameter per position from a column or motor (issue 15).

The reference is the ESRF-header route: the same energy series written once as EDF images whose
headers carry each image's geometry, and once as plain frames with a positions CSV holding an
``Energy`` column and a PONI of the base geometry. Both translate to the same per-position
geometry and integrate to the same I(q), bit for bit.
"""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest
from numpy.testing import assert_array_equal

from pyscatter.datasets_geometry import energy_series
from pyscatter.errors import InputError
from pyscatter.io.geometry_series import (
    apply_geometry_from,
    energy_to_wavelength,
    parse_geometry_from,
    read_series,
)
from pyscatter.processes.base import run_on_file
from pyscatter.processes.integration import AzimuthalIntegration
from pyscatter.translators import translate

PARAMS = {"npt": 200, "error_model": "poisson", "polarization_factor": 0.99}


@pytest.fixture(scope="module")
def scan():
    return energy_series([8.0, 9.5, 11.0], frame_shape=(64, 72))


def _poni_file(config: dict, path) -> None:
    """A PONI file (version 2) of a pyFAI config, every number as Python writes it exactly."""
    det = config["detector_config"]
    lines = [
        "poni_version: 2.1",
        f"Detector: {config['detector']}",
        "Detector_config: "
        + json.dumps({"pixel1": det["pixel1"], "pixel2": det["pixel2"],
                      "max_shape": list(det["max_shape"]), "orientation": int(det["orientation"])}),
    ]  # fmt: skip
    for key in ("dist", "poni1", "poni2", "rot1", "rot2", "rot3", "wavelength"):
        lines.append(f"{key.capitalize() if key != 'wavelength' else 'Wavelength'}: "
                     f"{config[key]!r}")  # fmt: skip
    path.write_text("\n".join(lines) + "\n")


def _intensity(path):
    summary = run_on_file(path, AzimuthalIntegration, **PARAMS)
    with h5py.File(path, "r") as h5:
        g = h5[summary.group]
        return g["Intensity"][()], g["Intensity_Sigma"][()], g["Spectroscopic_Values"][()]


def _both(scan, tmp_path):
    """(EDF-header file, positions-CSV + PONI file) of ``scan``."""
    paths = scan.write_images(tmp_path / "edf")
    mask = tmp_path / "edf" / "mask.edf"
    edf = translate(paths, tmp_path / "edf.h5", format="images", motors=scan.dim, mask=mask)
    with h5py.File(edf, "r") as h5:
        base = json.loads(h5["Measurement_000"].attrs["geometry"])
    poni = tmp_path / "base.poni"
    _poni_file(base, poni)
    csv = tmp_path / "positions.csv"
    csv.write_text("Energy[keV]\n" + "".join(f"{float(e)!r}\n" for e in scan.values))
    plain = translate(
        None, tmp_path / "csv.h5", format="images", frames=scan.frames, positions=csv,
        poni=poni, mask=scan.mask.astype(np.uint8), geometry_from={"energy": "Energy"},
    )  # fmt: skip
    return edf, plain


def test_energy_column_equals_the_header_route_bit_for_bit(scan, tmp_path):
    edf, plain = _both(scan, tmp_path)
    with h5py.File(edf, "r") as a, h5py.File(plain, "r") as b:
        raw_a, raw_b = a["Measurement_000/Channel_000/Raw_Data"], b["Measurement_000/Channel_000/Raw_Data"]
        series_a, series_b = read_series(raw_a), read_series(raw_b)
        assert series_a.keys == series_b.keys == ["wavelength"]
        assert_array_equal(series_b.values["wavelength"], energy_to_wavelength(scan.values))
        assert_array_equal(series_a.values["wavelength"], series_b.values["wavelength"])
        for i in range(len(scan.values)):
            assert series_a.config(i) == series_b.config(i)
        assert "geometry_from" in json.loads(b["Measurement_000"].attrs["options"])
        assert "geometry_from" not in json.loads(a["Measurement_000"].attrs["options"])
    ia, sa, qa = _intensity(edf)
    ib, sb, qb = _intensity(plain)
    assert np.isfinite(ia).any()
    assert_array_equal(qa, qb)
    assert_array_equal(ia, ib)
    assert_array_equal(sa, sb)
