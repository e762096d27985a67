"""NeXus detector fields in the unit their ``@units`` names (issue 19.5).

A small NXsas file (NeXus application definition for SAS: NXentry/NXinstrument/NXdetector with
``distance``, ``beam_center_x/y``, ``x/y_pixel_size``, and NXmonochromator ``wavelength``) with the
beam centre in pixels, mm or m; the geometry pyscatter stores must equal the one pyFAI builds
directly with ``setFit2D`` from the same values in pixels and mm.
"""

import json
import sys
from pathlib import Path

import h5py
import pyFAI
import pytest
from numpy.testing import assert_allclose
from pyFAI.detectors import Detector
from pyFAI.integrator.azimuthal import AzimuthalIntegrator

from pyscatter.errors import FileFormatError
from pyscatter.translators import translate

sys.path.insert(0, str(Path(__file__).parent))
from nexus_files import SHAPE, WAVELENGTH_A, write_nxsas  # noqa: E402

PIXEL_X_M, PIXEL_Y_M = 172e-6, 150e-6  # not square: a swap of x and y would show
CENTRE_PX = (21.5, 17.25)  # x (column), y (row)
DIST_M = 1.5


def fields_with(centre_unit="pixel", **changes):
    """Detector fields of the reference geometry, the beam centre in ``centre_unit``."""
    scale = {"pixel": (1.0, 1.0), "mm": (PIXEL_X_M * 1e3, PIXEL_Y_M * 1e3)}
    scale["m"] = (PIXEL_X_M, PIXEL_Y_M)
    sx, sy = scale[centre_unit]
    fields = {
        "distance": (DIST_M * 1e3, "mm"),
        "x_pixel_size": (PIXEL_X_M * 1e6, "um"),
        "y_pixel_size": (PIXEL_Y_M, "m"),
        "beam_center_x": (CENTRE_PX[0] * sx, centre_unit),
        "beam_center_y": (CENTRE_PX[1] * sy, centre_unit),
    }
    fields.update(changes)
    return fields


def reference_integrator():
    """pyFAI's own: the same geometry through setFit2D (centre in pixels, distance in mm)."""
    ai = AzimuthalIntegrator(
        detector=Detector(pixel1=PIXEL_Y_M, pixel2=PIXEL_X_M, max_shape=SHAPE),
        wavelength=WAVELENGTH_A * 1e-10,
    )
    cx, cy = CENTRE_PX
    ai.setFit2D(DIST_M * 1e3, cx, cy, 0, 0, PIXEL_X_M * 1e6, PIXEL_Y_M * 1e6)
    return ai


def stored_integrator(path):
    with h5py.File(path, "r") as h5:
        return pyFAI.load(json.loads(h5["Measurement_000"].attrs["geometry"]))


@pytest.mark.parametrize("centre_unit", ["pixel", "mm", "m"])
def test_beam_centre_in_its_units(tmp_path, centre_unit):
    src = write_nxsas(tmp_path / "sas.nxs", fields_with(centre_unit))
    out = translate(src, tmp_path / "out.h5", format="nexus")
    ai, ref = stored_integrator(out), reference_integrator()
    f2d = ai.getFit2D()
    assert_allclose([f2d["centerX"], f2d["centerY"]], CENTRE_PX, rtol=1e-12)
    assert_allclose(f2d["directDist"], DIST_M * 1e3, rtol=1e-12)
    assert_allclose([ai.pixel1, ai.pixel2], [PIXEL_Y_M, PIXEL_X_M], rtol=1e-12)
    assert_allclose(ai.qArray(SHAPE), ref.qArray(SHAPE), rtol=1e-12)


def test_wavelength_in_nm(tmp_path):
    src = write_nxsas(tmp_path / "sas.nxs", fields_with(), wavelength=(WAVELENGTH_A / 10, "nm"))
    ai = stored_integrator(translate(src, tmp_path / "out.h5", format="nexus"))
    assert_allclose(ai.wavelength, WAVELENGTH_A * 1e-10, rtol=1e-12)


@pytest.mark.parametrize(
    ("field", "changes", "wavelength", "match"),
    [
        ("distance", {"distance": (1500.0, None)}, "angstrom", r"distance has no @units"),
        ("x_pixel_size", {"x_pixel_size": (172.0, None)}, "angstrom", r"x_pixel_size has no"),
        ("beam_center_y", {"beam_center_y": (17.25, None)}, "angstrom", r"beam_center_y has no"),
        ("wavelength", {}, None, r"monochromator/wavelength has no @units"),
        ("distance", {"distance": (1.5, "furlong")}, "angstrom", r"'furlong' is not a distance"),
    ],
)
def test_missing_or_unknown_units_are_refused_by_name(tmp_path, field, changes, wavelength, match):
    src = write_nxsas(tmp_path / "sas.nxs", fields_with(**changes), wavelength=(1.0, wavelength))
    with pytest.raises(FileFormatError, match=match) as info:
        translate(src, tmp_path / "out.h5", format="nexus")
    assert str(src) in str(info.value) and "poni" in str(info.value)
    assert not (tmp_path / "out.h5").exists()
    # a geometry given explicitly does not need the file's fields
    poni = tmp_path / "g.poni"
    reference_integrator().write(str(poni))
    out = translate(src, tmp_path / "out.h5", format="nexus", poni=poni)
    assert_allclose(stored_integrator(out).qArray(SHAPE), reference_integrator().qArray(SHAPE))


def test_energy_in_ev(tmp_path):
    from pyFAI.units import hc  # keV·Å

    src = write_nxsas(tmp_path / "sas.nxs", fields_with())
    with h5py.File(src, "r+") as h5:
        inst = h5["entry/instrument"]
        del inst["monochromator"]
        beam = inst.create_group("beam")
        beam.attrs["NX_class"] = "NXbeam"
        beam["incident_energy"] = 8048.0
        beam["incident_energy"].attrs["units"] = "eV"
    ai = stored_integrator(translate(src, tmp_path / "out.h5", format="nexus"))
    assert_allclose(ai.wavelength, hc / 8.048 * 1e-10, rtol=1e-9)
