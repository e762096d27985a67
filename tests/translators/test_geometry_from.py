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
        raw_a, raw_b = (
            a["Measurement_000/Channel_000/Raw_Data"],
            b["Measurement_000/Channel_000/Raw_Data"],
        )
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


def _spec_scan(scan, folder, *, motor_energy=None):
    """A SPEC ``ascan Energy`` of the frames (plain EDF images, no geometry header)."""
    from fabio.edfimage import EdfImage

    folder.mkdir(parents=True, exist_ok=True)
    for i, frame in enumerate(scan.frames):
        EdfImage(data=frame).write(str(folder / f"img_{i:04d}.edf"))
    n = len(scan.values)
    lines = ["#F e.spec", "#E 1000", "#O0 mono", ""]
    lines += [f"#S 1  ascan  Energy {scan.values[0]} {scan.values[-1]} {n - 1} 1", "#D now"]
    lines += [f"#P0 {motor_energy if motor_energy is not None else 0.0}", "#N 2", "#L Energy  I0"]
    lines += [f"{float(e)!r} {1000 + i}" for i, e in enumerate(scan.values)]
    path = folder / "e.spec"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_spec_energy_column_equals_the_header_route(scan, tmp_path):
    edf, _ = _both(scan, tmp_path)
    spec = _spec_scan(scan, tmp_path / "spec")
    out = translate(
        spec, tmp_path / "spec.h5", format="spec", scan=1, image_pattern="img_{point:04d}.edf",
        poni=tmp_path / "base.poni", mask=scan.mask.astype(np.uint8),
        geometry_from={"energy": "Energy"},
    )  # fmt: skip
    with h5py.File(edf, "r") as a, h5py.File(out, "r") as b:
        series_a = read_series(a["Measurement_000/Channel_000/Raw_Data"])
        series_b = read_series(b["Measurement_000/Channel_000/Raw_Data"])
        assert [series_a.config(i) for i in range(3)] == [series_b.config(i) for i in range(3)]
        assert "column Energy of SPEC scan 1.1" in b["Measurement_000"].attrs["geometry_source"]
    ia, _, qa = _intensity(edf)
    ib, _, qb = _intensity(out)
    assert_array_equal(qa, qb)
    assert_array_equal(ia, ib)


def test_spec_motor_of_the_scan_header_gives_one_geometry(scan, tmp_path):
    _both(scan, tmp_path)
    spec = _spec_scan(scan, tmp_path / "spec", motor_energy=12.0)
    out = translate(
        spec, tmp_path / "m.h5", format="spec", scan=1, image_pattern="img_{point:04d}.edf",
        poni=tmp_path / "base.poni", geometry_from="energy=mono:keV",
    )  # fmt: skip
    with h5py.File(out, "r") as h5:
        measurement = h5["Measurement_000"]
        assert read_series(measurement["Channel_000/Raw_Data"]) is None
        geometry = json.loads(measurement.attrs["geometry"])
    assert geometry["wavelength"] == energy_to_wavelength(12.0)


def test_cli_geometry_from(scan, tmp_path):
    from pyscatter.cli import main

    _both(scan, tmp_path)
    frames = tmp_path / "frames"
    frames.mkdir()
    from fabio.edfimage import EdfImage

    for i, frame in enumerate(scan.frames):
        EdfImage(data=frame).write(str(frames / f"f_{i:02d}.edf"))
    csv = tmp_path / "ev.csv"
    csv.write_text("E\n" + "".join(f"{float(e) * 1000!r}\n" for e in scan.values))
    out = tmp_path / "cli.h5"
    code = main(["translate", str(frames), "-o", str(out), "--positions", str(csv), "--poni",
                 str(tmp_path / "base.poni"), "--geometry-from", "energy=E:eV"])  # fmt: skip
    assert code == 0
    with h5py.File(out, "r") as h5:
        series = read_series(h5["Measurement_000/Channel_000/Raw_Data"])
    np.testing.assert_allclose(
        series.values["wavelength"], energy_to_wavelength(scan.values), rtol=1e-15
    )


def test_refusals(scan, tmp_path):
    _both(scan, tmp_path)
    with pytest.raises(InputError, match="needs a base geometry"):
        translate(None, tmp_path / "x.h5", format="images", frames=scan.frames, grid="E=3",
                  geometry_from={"energy": "E"})  # fmt: skip
    csv = tmp_path / "p.csv"
    csv.write_text("Energy\n8\n9\n10\n")
    with pytest.raises(InputError, match="no column 'Mono'.*Energy"):
        translate(None, tmp_path / "x.h5", format="images", frames=scan.frames, positions=csv,
                  poni=tmp_path / "base.poni",
                  geometry_from={"energy": "Mono"})  # fmt: skip
    with pytest.raises(InputError, match="both set the wavelength"):
        parse_geometry_from("energy=E,wavelength=W")
    with pytest.raises(InputError, match="unit 'K'"):
        parse_geometry_from({"energy": "E:K"})
    with pytest.raises(InputError, match="unknown parameter 'tilt'"):
        parse_geometry_from("tilt=T")
    spec = _spec_scan(scan, tmp_path / "spec")
    with pytest.raises(InputError, match="SPEC files hold none"):
        translate(spec, tmp_path / "s.h5", format="spec", scan=1,
                  image_pattern="img_{point:04d}.edf", geometry_from="energy=Energy")  # fmt: skip


def test_conversions_against_pyfai_units():
    """Each parameter in each unit lands on the pyFAI key in m (and keV → hc/E)."""
    base = {"dist": 1.0, "poni1": 0.01, "poni2": 0.02, "rot1": 0.0, "rot2": 0.0, "rot3": 0.0,
            "wavelength": 1e-10, "detector": "Detector",
            "detector_config": {"pixel1": 1e-4, "pixel2": 2e-4, "max_shape": [10, 10]}}  # fmt: skip
    columns = {"A": np.array([1.0, 2.0]), "B": np.array([100.0, 250.0])}

    def lookup(name):
        return columns[name], f"column {name}"

    cases = [
        ("energy=A", "wavelength", energy_to_wavelength(columns["A"])),
        ("wavelength=A", "wavelength", columns["A"] * 1e-10),
        ("wavelength=A:nm", "wavelength", columns["A"] * 1e-9),
        ("distance=B", "dist", columns["B"] * 1e-3),
        ("distance=A:m", "dist", columns["A"]),
        ("poni1=A:mm", "poni1", columns["A"] * 1e-3),
        ("beam_center_x=B", "poni2", columns["B"] * 2e-4),
        ("beam_center_y=B:pixel", "poni1", columns["B"] * 1e-4),
    ]
    for text, key, expected in cases:
        first, series, _ = apply_geometry_from(
            base, None, parse_geometry_from(text), lookup, 2, base_source="test"
        )
        assert first[key] == expected[0]
        assert_array_equal(series[0]["Geometry_" + key], expected)
        assert series[2] == [key]
    tilted = dict(base, rot1=0.01)
    with pytest.raises(InputError, match="tilted"):
        apply_geometry_from(tilted, None, parse_geometry_from("beam_center_x=B"), lookup, 2,
                            base_source="test")  # fmt: skip
    columns["C"] = np.array([1.0, -1.0])
    with pytest.raises(InputError, match="value -1.0 at frame 1"):
        apply_geometry_from(base, None, parse_geometry_from("energy=C"), lookup, 2,
                            base_source="test")  # fmt: skip


def test_header_motor_over_a_poni_equals_the_header_geometry(scan, tmp_path):
    """The images' ``motor_mne``/``motor_pos`` Energy, over a PONI, with the header geometry
    not read: the same geometry per position as the header route."""
    edf, _ = _both(scan, tmp_path)
    paths = sorted((tmp_path / "edf").glob("frame_*.edf"))
    out = translate(
        paths, tmp_path / "motor.h5", format="images", motors=scan.dim, header_geometry=False,
        poni=tmp_path / "base.poni", geometry_from="energy=Energy:keV",
    )  # fmt: skip
    with h5py.File(edf, "r") as a, h5py.File(out, "r") as b:
        series_a = read_series(a["Measurement_000/Channel_000/Raw_Data"])
        series_b = read_series(b["Measurement_000/Channel_000/Raw_Data"])
        source = b["Measurement_000/Channel_000/Geometry_wavelength"].attrs["source"]
    assert [series_a.config(i) for i in range(3)] == [series_b.config(i) for i in range(3)]
    assert "motor Energy of each image header" in source
