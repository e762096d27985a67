"""pyscatter.geometry: d-spacings and q of reflections, beam centre, q∥/q⊥ maps and regridding."""

from __future__ import annotations

import re

import numpy as np
import pytest

from pyscatter import datasets
from pyscatter.errors import FileFormatError, InputError
from pyscatter.geometry import (
    beam_center,
    cell_parameters,
    d_spacing,
    hkl_to_q,
    q_map,
    q_parallel_perpendicular,
    ring_ranges,
)

CEO2_CIF = """data_CeO2
_symmetry_space_group_name_H-M   'F m -3 m'
_symmetry_Int_Tables_number      225
_cell_length_a   5.411
_cell_length_b   5.411
_cell_length_c   5.411
_cell_angle_alpha   90
_cell_angle_beta    90
_cell_angle_gamma   90
loop_
_atom_site_label
_atom_site_type_symbol
_atom_site_fract_x
_atom_site_fract_y
_atom_site_fract_z
Ce1 Ce 0 0 0
O1 O 0.25 0.25 0.25
"""


@pytest.fixture(scope="module")
def scan():
    return datasets.make_scan((2,), kappa=6.0, director_deg=30.0, frame_shape=(96, 112), rng=3)


# ----------------------------------------------------------------------------- lattices


def test_known_d_spacings_of_standards():
    # NIST SRM 674b CeO2 (a = 5.411 Å) and Si (a = 5.431 Å): tabulated d to 4 decimals
    ceo2 = d_spacing([(1, 1, 1), (2, 0, 0), (2, 2, 0)], lattice={"a": 5.411})
    np.testing.assert_allclose(ceo2, [3.1240, 2.7055, 1.9131], atol=5e-5)
    si = d_spacing([(1, 1, 1), (2, 2, 0), (3, 1, 1)], lattice={"a": 5.431})
    np.testing.assert_allclose(si, [3.1356, 1.9201, 1.6375], atol=5e-5)
    # cubic: d = a / sqrt(h² + k² + l²) exactly (float rounding only)
    np.testing.assert_allclose(si, 5.431 / np.sqrt([3, 8, 11]), rtol=1e-14)


def test_hkl_to_q_units():
    q_a = hkl_to_q((1, 1, 1), lattice={"a": 5.411}, unit="q_A^-1")
    q_nm = hkl_to_q((1, 1, 1), lattice={"a": 5.411}, unit="q_nm^-1")
    np.testing.assert_allclose(q_a, 2 * np.pi / 3.1240423, rtol=1e-7)
    np.testing.assert_allclose(q_nm, 10 * q_a, rtol=1e-15)  # 1 Å^-1 = 10 nm^-1
    assert q_nm.shape == (1,)


def test_hexagonal_and_triclinic_against_the_metric_tensor():
    np.testing.assert_allclose(
        d_spacing((1, 0, 0), lattice={"a": 3.0, "c": 5.0, "gamma": 120}),
        3.0 * np.sqrt(3) / 2,
        rtol=1e-14,
    )
    cell = {"a": 5.1, "b": 6.3, "c": 7.7, "alpha": 81.0, "beta": 97.0, "gamma": 103.0}
    hkl = np.array([(1, 0, 0), (1, 1, 0), (1, -2, 3), (2, 1, -1)])
    a, b, c = cell["a"], cell["b"], cell["c"]
    ca, cb, cg = np.cos(np.radians([cell["alpha"], cell["beta"], cell["gamma"]]))
    metric = np.array(
        [
            [a * a, a * b * cg, a * c * cb],
            [a * b * cg, b * b, b * c * ca],
            [a * c * cb, b * c * ca, c * c],
        ]
    )
    inv_d2 = np.einsum("ni,ij,nj->n", hkl, np.linalg.inv(metric), hkl)
    # an independent formula (reciprocal metric tensor); agreement to float rounding
    np.testing.assert_allclose(d_spacing(hkl, lattice=cell), 1 / np.sqrt(inv_d2), rtol=1e-12)


def test_cif_read_with_ase(tmp_path):
    path = tmp_path / "ceo2.cif"
    path.write_text(CEO2_CIF)
    assert cell_parameters(cif=path) == pytest.approx(
        {"a": 5.411, "b": 5.411, "c": 5.411, "alpha": 90, "beta": 90, "gamma": 90}, rel=1e-12
    )
    np.testing.assert_allclose(
        hkl_to_q([(1, 1, 1), (2, 0, 0)], cif=path),
        hkl_to_q([(1, 1, 1), (2, 0, 0)], lattice={"a": 5.411}),
        rtol=1e-12,
    )


def test_lattice_errors_name_the_parameter(tmp_path):
    with pytest.raises(InputError, match="either"):
        cell_parameters({"a": 1}, cif=tmp_path / "x.cif")
    with pytest.raises(InputError, match="unknown keys"):
        cell_parameters({"a": 1, "d": 2})
    with pytest.raises(InputError, match="needs at least 'a'"):
        cell_parameters({"b": 1})
    with pytest.raises(InputError, match="gamma"):
        cell_parameters({"a": 1, "gamma": 190})
    with pytest.raises(InputError, match="make no cell"):
        cell_parameters({"a": 1, "alpha": 170, "beta": 170, "gamma": 170})
    with pytest.raises(InputError, match=r"\(0, 0, 0\)"):
        d_spacing((0, 0, 0), lattice={"a": 1})
    with pytest.raises(InputError, match="3 integers"):
        d_spacing((1, 0.5, 0), lattice={"a": 1})
    with pytest.raises(InputError, match="unit"):
        hkl_to_q((1, 0, 0), lattice={"a": 1}, unit="2th_deg")
    with pytest.raises(FileFormatError, match="not found"):
        cell_parameters(cif=tmp_path / "missing.cif")
    bad = tmp_path / "bad.cif"
    bad.write_text("this is not a CIF\n")
    with pytest.raises(FileFormatError, match="bad.cif"):
        cell_parameters(cif=bad)


def test_ring_ranges():
    rings = ring_ranges(q=[0.45, 0.8], width=[0.05, 0.07])
    bounds = [(r["q_min"], r["q_max"]) for r in rings]
    np.testing.assert_allclose(bounds, [(0.40, 0.50), (0.73, 0.87)], rtol=1e-15)
    assert ring_ranges(q=0.45, width=0.06)[0]["width"] == 0.06
    rng = ring_ranges(q_range=[(0.40, 0.50)])[0]
    assert (rng["q_min"], rng["q_max"], rng["q"], rng["hkl"]) == (
        0.40,
        0.50,
        pytest.approx(0.45),
        None,
    )
    hkl = ring_ranges(hkl=[(1, 1, 1)], width=0.1, lattice={"a": 5.411}, unit="q_A^-1")[0]
    assert hkl["hkl"] == [1, 1, 1]
    assert hkl["q"] == pytest.approx(2 * np.pi / 3.1240423, rel=1e-7)
    with pytest.raises(InputError, match="exactly one way"):
        ring_ranges(q=[0.4], q_range=[(0.3, 0.5)], width=0.1)
    with pytest.raises(InputError, match="width"):
        ring_ranges(q=[0.4])
    with pytest.raises(InputError, match="one per ring"):
        ring_ranges(q=[0.4, 0.5, 0.6], width=[0.1, 0.1])
    with pytest.raises(InputError, match="lo < hi"):
        ring_ranges(q_range=[(0.5, 0.4)])
    with pytest.raises(InputError, match="only used with hkl"):
        ring_ranges(q=[0.4], width=0.1, lattice={"a": 5})


# ----------------------------------------------------------------------------- detector maps


def test_beam_center_is_where_q_vanishes(scan):
    ai = scan.integrator()
    row, col = beam_center(ai)
    # pyFAI's own q at that point (qFunction takes the same pixel-centre coordinates)
    assert abs(float(ai.qFunction(np.array([row]), np.array([col]))[0])) < 1e-9
    # the tilts move the beam centre away from the PONI by a few pixels
    assert abs(row - (ai.poni1 / ai.pixel1 - 0.5)) > 0.5


def test_q_parallel_perpendicular_components(scan):
    ai = scan.integrator()
    shape = scan.frame_shape
    q_par, q_perp = q_parallel_perpendicular(ai, shape, director_deg=30.0)
    q = ai.center_array(shape, unit="q_nm^-1")
    theta = 0.5 * ai.center_array(shape, unit="2th_rad")
    # exact by definition: the transverse part of q has length |q| cos θ
    np.testing.assert_allclose(q_par**2 + q_perp**2, (q * np.cos(theta)) ** 2, rtol=1e-12)
    # small angles (SAXS, q < 2.6 nm^-1 at 1 Å: θ < 1.2°): |q|² within sin² θ < 4.3e-4
    sin2_max = (q.max() * ai.wavelength * 1e9 / (4 * np.pi)) ** 2
    assert sin2_max < 4.3e-4
    np.testing.assert_allclose(q_par**2 + q_perp**2, q**2, rtol=1.001 * sin2_max)
    # along the director q_perp vanishes; across it q_par does
    chi = ai.center_array(shape, unit="chi_deg")
    along = np.abs(chi - 30.0) < 0.5
    assert along.sum() > 5
    np.testing.assert_allclose(q_perp[along] / q[along], 0, atol=np.sin(np.radians(0.5)))
    # rotating the director by 90° turns (q_par, q_perp) into (q_perp, −q_par)
    r_par, r_perp = q_parallel_perpendicular(ai, shape, director_deg=120.0)
    np.testing.assert_allclose(r_par, q_perp, atol=1e-12)
    np.testing.assert_allclose(r_perp, -q_par, atol=1e-12)
    q_par_a, _ = q_parallel_perpendicular(ai, shape, director_deg=30.0, unit="q_A^-1")
    np.testing.assert_allclose(q_par_a * 10, q_par, rtol=1e-12)


def test_q_map_equals_histogram2d_and_batches(scan):
    ai = scan.integrator()
    frames = scan.frames.astype(np.float64)
    res = q_map(frames, ai, npt=(40, 50), director_deg=30.0, mask=scan.mask, q_max=2.0)
    assert res.intensity.shape == (2, 40, 50) and res.q_par.shape == (50,)
    q_par, q_perp = q_parallel_perpendicular(ai, scan.frame_shape, director_deg=30.0)
    ok = ~scan.mask
    corrected = frames[1] / ai.solidAngleArray(scan.frame_shape)
    edges = (res.q_perp_edges, res.q_par_edges)
    sums, _, _ = np.histogram2d(q_perp[ok], q_par[ok], bins=edges, weights=corrected[ok])
    counts, _, _ = np.histogram2d(q_perp[ok], q_par[ok], bins=edges)
    np.testing.assert_array_equal(res.count[1], counts)
    filled = counts > 0
    # the same sums in another order: float64 rounding only
    np.testing.assert_allclose(
        res.intensity[1][filled], (sums / np.where(filled, counts, 1))[filled], rtol=1e-12
    )
    assert np.isnan(res.intensity[1][~filled]).all()
    one = q_map(frames[1], ai, npt=(40, 50), director_deg=30.0, mask=scan.mask, q_max=2.0)
    np.testing.assert_array_equal(one.intensity, res.intensity[1])


def test_q_map_of_an_oriented_ring_is_stronger_along_the_director():
    scan = datasets.make_scan(
        (1,), kappa=12.0, director_deg=-40.0, frame_shape=(96, 112), noise=False, rng=0
    )
    ai = scan.integrator()
    res = q_map(
        scan.frames[0],
        ai,
        npt=41,
        q_max=0.6,
        director_deg=-40.0,
        mask=scan.mask,
        polarization_factor=scan.polarization_factor,
    )
    ring = 0.45  # the first oriented ring of the default model
    i_par = np.argmin(np.abs(res.q_par - ring))
    i_perp = np.argmin(np.abs(res.q_perp - ring))
    centre = np.argmin(np.abs(res.q_perp))
    along = np.nanmax(res.intensity[centre - 1 : centre + 2, i_par - 1 : i_par + 2])
    across = np.nanmax(res.intensity[i_perp - 1 : i_perp + 2, centre - 1 : centre + 2])
    # exp(κ cos²) with κ = 12: the ring along the director is e^12 / 1 above the one across it
    # on top of the isotropic background; a factor 10 is far inside that
    assert along > 10 * across


def test_q_map_errors(scan):
    ai = scan.integrator()
    with pytest.raises(InputError, match="mask has shape"):
        q_map(scan.frames, ai, mask=np.zeros((3, 3)))
    with pytest.raises(InputError, match="npt"):
        q_map(scan.frames, ai, npt=0)
    with pytest.raises(InputError, match="frames"):
        q_map(np.zeros(5), ai)


@pytest.mark.realdata
def test_ceo2_rings_sit_at_hkl_to_q(shared_data):
    """A real CeO2 calibrant (Dioptas' Pilatus 1M image and PONI): the peaks of pyFAI's I(q)
    lie at hkl_to_q of CeO2 (a = 5.411 Å)."""
    import fabio
    import pyFAI

    folder = shared_data / "dioptas"
    image = np.flipud(fabio.open(str(folder / "CeO2_Pilatus1M.tif")).data)  # see the README
    ai = pyFAI.load(str(folder / "CeO2_Pilatus1M.poni"))
    res = ai.integrate1d_ng(
        image, 3000, unit="q_A^-1", mask=image < 0, method=("no", "histogram", "cython")
    )
    hkl = [(1, 1, 1), (2, 0, 0), (2, 2, 0), (3, 1, 1), (3, 3, 1)]
    expected = hkl_to_q(hkl, lattice={"a": 5.411}, unit="q_A^-1")
    for q in expected:
        near = np.abs(res.radial - q) < 0.02 * q
        peak = res.radial[near][np.argmax(res.intensity[near])]
        # measured within 0.05 %; the bins are 0.08 % wide at q = 2 Å^-1 and the calibration
        # itself is good to about 0.1 % (the README: rings within 0.2 %)
        assert abs(peak / q - 1) < 2e-3


def test_integrator_from_config_equals_pyfai_load():
    import pyFAI

    from pyscatter import datasets
    from pyscatter.geometry import integrator_from_config

    configs = [
        datasets.make_scan((1, 1)).integrator().get_config(),
        {
            "poni_version": 2.1,
            "dist": 0.3,
            "poni1": 0.05,
            "poni2": 0.04,
            "rot1": 0.01,
            "rot2": -0.02,
            "rot3": 0.003,
            "detector": "Pilatus1M",
            "detector_config": {"orientation": 3},
            "wavelength": 7.1e-11,
        },
    ]
    for config in configs:
        ours = integrator_from_config(config)
        ref = pyFAI.load(config)
        assert ours.get_config() == ref.get_config()
        shape = ref.detector.max_shape
        np.testing.assert_array_equal(
            ours.array_from_unit(shape, "center", "q_nm^-1"),
            ref.array_from_unit(shape, "center", "q_nm^-1"),
        )


# --------------------------------------------------------------------------- validation

VALID_PONI = {
    "Distance": "0.1",
    "Poni1": "0.005",
    "Poni2": "0.006",
    "Rot1": "0.001",
    "Rot2": "-0.002",
    "Rot3": "0",
    "Wavelength": "1e-10",
}

#: The 18 nonsense PONI cases of issue 20: (key, value, the config key named in the message).
NONSENSE_PONI = [
    ("Distance", "nan", "dist"),
    ("Distance", "0", "dist"),
    ("Distance", "-0.1", "dist"),
    ("Distance", "1e30", "dist"),
    ("Distance", "inf", "dist"),
    ("Distance", "-inf", "dist"),
    ("Wavelength", "nan", "wavelength"),
    ("Wavelength", "-1e-10", "wavelength"),
    ("Wavelength", "inf", "wavelength"),
    ("Wavelength", "1e30", "wavelength"),
    ("Poni1", "inf", "poni1"),
    ("Poni2", "-inf", "poni2"),
    ("Poni1", "nan", "poni1"),
    ("Poni2", "1e30", "poni2"),
    ("Rot1", "nan", "rot1"),
    ("Rot2", "nan", "rot2"),
    ("Rot3", "nan", "rot3"),
    ("Rot1", "inf", "rot1"),
]


def write_poni(path, shape=(40, 50), pixel=1e-4, **changes):
    values = {**VALID_PONI, **changes}
    lines = [
        "poni_version: 2.1",
        "Detector: Detector",
        f'Detector_config: {{"pixel1": {pixel}, "pixel2": {pixel}, "max_shape": [{shape[0]}, '
        f'{shape[1]}], "orientation": 3}}',
        *(f"{k}: {v}" for k, v in values.items()),
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.parametrize(("key", "value", "name"), NONSENSE_PONI)
def test_check_geometry_refuses_nonsense_poni(tmp_path, key, value, name):
    import pyFAI

    from pyscatter.geometry import check_geometry

    path = write_poni(tmp_path / "bad.poni", **{key: value})
    with pytest.raises(InputError, match=rf"bad\.poni: geometry {name} = .*expected a finite"):
        check_geometry(pyFAI.load(str(path)), where=str(path))


@pytest.mark.parametrize("pixel", [0.0, -1e-4, 1e-12, 1e30])
def test_check_geometry_refuses_nonsense_pixels(tmp_path, pixel):
    import pyFAI

    from pyscatter.geometry import check_geometry

    path = write_poni(tmp_path / "pix.poni", pixel=pixel)
    with pytest.raises(InputError, match=r"geometry pixel1 = "):
        check_geometry(pyFAI.load(str(path)), where=str(path))


def test_check_geometry_returns_pyfai_config_of_a_good_poni(tmp_path):
    import pyFAI

    from pyscatter.geometry import check_geometry, integrator_from_config

    path = write_poni(tmp_path / "good.poni")
    ai = pyFAI.load(str(path))
    config = check_geometry(ai, where=str(path))
    assert config == ai.get_config()
    assert integrator_from_config(config).get_config() == ai.get_config()


def test_integrator_from_config_refuses_a_nonsense_config():
    from pyscatter.geometry import integrator_from_config

    config = {"dist": 1e30, "poni1": 0, "poni2": 0, "detector": "Pilatus1M", "wavelength": 1e-10}
    with pytest.raises(InputError, match="dist = 1e"):
        integrator_from_config(config, where="recorded")


FIT2D = {
    "dist_mm": 1234.5,
    "center_x": 61.3,
    "center_y": 37.8,
    "tilt": 1.5,
    "tilt_plan_rotation": 30.0,
    "pixel_x": 172.0,
    "pixel_y": 150.0,
    "wavelength_A": 1.0332,
}


def test_fit2d_geometry_equals_pyfai_setfit2d():
    from pyFAI.detectors import Detector
    from pyFAI.integrator.azimuthal import AzimuthalIntegrator

    from pyscatter.geometry import fit2d_geometry, integrator_from_config

    text = ",".join(f"{k}={v}" for k, v in FIT2D.items())
    config = fit2d_geometry(text, (80, 120))
    detector = Detector(150e-6, 172e-6, max_shape=(80, 120))
    ref = AzimuthalIntegrator(detector=detector)
    ref.setFit2D(1234.5, 61.3, 37.8, tilt=1.5, tiltPlanRotation=30.0, pixelX=172.0, pixelY=150.0)
    ref.wavelength = 1.0332e-10
    for key in ("dist", "poni1", "poni2", "rot1", "rot2", "rot3", "wavelength"):
        assert config[key] == pytest.approx(ref.get_config()[key], rel=1e-12, abs=1e-15), key
    back = integrator_from_config(config).getFit2D()
    assert back["directDist"] == pytest.approx(1234.5)
    assert back["centerX"] == pytest.approx(61.3)
    assert back["centerY"] == pytest.approx(37.8)
    assert back["tilt"] == pytest.approx(1.5)
    assert back["tiltPlanRotation"] == pytest.approx(30.0)


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("dist_mm=100", "missing center_x"),
        ("dist_mm=nan,center_x=1,center_y=1,pixel_x=1,pixel_y=1,wavelength_A=1", "dist_mm = 'nan'"),
        ("dist_mm=-5,center_x=1,center_y=1,pixel_x=1,pixel_y=1,wavelength_A=1", "dist_mm = -5"),
        ("distance=5", "unknown key 'distance'"),
        ("dist_mm", "expected KEY=VALUE"),
        ("dist_mm=1,dist_mm=2", "given twice"),
        ("dist_mm=100,center_x=1e30,center_y=1,pixel_x=100,pixel_y=100,wavelength_A=1", "poni2"),
    ],
)
def test_fit2d_geometry_refuses_bad_input(text, match):
    from pyscatter.geometry import fit2d_geometry

    with pytest.raises(InputError, match=re.escape(match)):
        fit2d_geometry(text, (80, 120))
