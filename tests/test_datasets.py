"""Tests of pyscatter.datasets: seeded synthetic scans checked against pyFAI, fabio and analytics."""

import csv

import fabio
import numpy as np
import pyFAI
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from scipy import special

from pyscatter import datasets as ds
from pyscatter import datasets_model as ds_model
from pyscatter.errors import ExistingResultsError, InputError

SMALL = {"frame_shape": (96, 112)}  # frames 4x smaller than the default, for the cheap tests


def _analytic_s(kappa):
    """Maier-Saupe S from <x^2> = d ln Z / d kappa, Z = int_0^1 exp(kappa x^2) dx (closed form).

    kappa > 0: Z = exp(kappa) F(sqrt k) / sqrt k (F = Dawson) -> <x^2> = 1/(2 sqrt(k) F) - 1/(2k).
    kappa < 0 (a = -kappa): Z = sqrt(pi) erf(sqrt a) / (2 sqrt a)
    -> <x^2> = 1/(2a) - exp(-a) / (sqrt(pi a) erf(sqrt a)).
    """
    k = np.asarray(kappa, dtype=float)
    a = np.abs(k)
    root = np.sqrt(a)
    pos = 1 / (2 * root * special.dawsn(root)) - 1 / (2 * a)
    neg = 1 / (2 * a) - np.exp(-a) / (np.sqrt(np.pi * a) * special.erf(root))
    return 1.5 * np.where(k > 0, pos, neg) - 0.5


# --------------------------------------------------------------------------- determinism, shapes


def test_same_arguments_give_same_bits_and_seed_matters():
    a = ds.make_scan((2, 3), rng=7, keep_ideal=True, **SMALL)
    b = ds.make_scan((2, 3), rng=7, keep_ideal=True, **SMALL)
    c = ds.make_scan((2, 3), rng=8, **SMALL)
    assert_array_equal(a.frames, b.frames)
    assert_array_equal(a.ideal, b.ideal)
    assert_array_equal(a.kappa, b.kappa)
    assert a.poni == b.poni
    # a different seed draws other counts from the same model
    assert np.count_nonzero(a.frames != c.frames) > 0.5 * a.frames.size


def test_factories_are_deterministic():
    for factory in (ds.demo_scan, ds.oriented_map, ds.field_series):
        assert_array_equal(factory(rng=3).frames, factory(rng=3).frames)


def test_shapes_dtypes_and_metadata():
    scan = ds.make_scan((2, 3, 4), keep_ideal=True, **SMALL)
    assert scan.scan_shape == (2, 3, 4)
    assert scan.n_positions == 24
    assert scan.frame_shape == (96, 112)
    assert scan.frames.shape == (2, 3, 4, 96, 112) and scan.frames.dtype == np.int32
    assert scan.ideal.shape == scan.frames.shape and scan.ideal.dtype == np.float64
    assert scan.dims == ("Field", "Y", "X")
    assert scan.units == {"Field": "mT", "Y": "um", "X": "um"}
    for dim, n in zip(scan.dims, scan.scan_shape, strict=True):
        assert scan.coords[dim].shape == (n,) and scan.coords[dim].dtype == np.float64
    assert set(scan.poni) == {
        "dist",
        "poni1",
        "poni2",
        "rot1",
        "rot2",
        "rot3",
        "wavelength",
        "pixel1",
        "pixel2",
        "shape",
    }
    assert scan.poni["shape"] == (96, 112) and scan.poni["pixel1"] == 172e-6
    for arr in (scan.kappa, scan.director_deg, scan.order_parameter):
        assert arr.shape == (2, 3, 4) and arr.dtype == np.float64
    assert scan.mask.shape == (96, 112) and scan.mask.dtype == bool
    assert np.all(scan.frames[..., scan.mask] == -1)
    assert np.all(scan.frames[..., ~scan.mask] >= 0)
    assert np.all((scan.director_deg >= -90) & (scan.director_deg < 90))
    assert_array_equal(scan.order_parameter, ds.order_parameter_from_kappa(scan.kappa))
    # the mask has a beamstop (around the lowest q), an arm and a module gap, but not too much
    q = scan.integrator().center_array(scan.frame_shape, unit="q_nm^-1")
    assert scan.mask[np.unravel_index(np.argmin(q), q.shape)]
    assert scan.mask.all(axis=1).sum() >= 2  # whole masked rows: the module gap
    assert 0.01 < scan.mask.mean() < 0.1


def test_geometry_q_range_and_rings_inside_the_frame():
    for frame_shape in ((192, 224), (96, 112)):
        scan = ds.make_scan((1,), frame_shape=frame_shape, noise=False)
        ai = scan.integrator()
        q = ai.center_array(frame_shape, unit="q_nm^-1")
        # distance chosen so that q reaches 2.5 nm^-1 at the corner farthest from the PONI; the
        # tilt puts the direct beam ~5 px (3 %) farther from it
        assert 2.45 < q.max() < 2.6
        assert q[~scan.mask].min() >= ds.BEAMSTOP_Q_NM
        # the oriented rings are whole circles on the detector: q on the frame edges is beyond
        # the outermost oriented ring plus 3 widths
        edge = np.concatenate([q[0], q[-1], q[:, 0], q[:, -1]])
        outer = max(r.q_nm + 3 * r.width_nm for r in scan.rings if r.oriented)
        assert edge.min() > outer


def test_poisson_noise_statistics():
    scan = ds.make_scan((4, 5), keep_ideal=True, rng=1, **SMALL)
    lam = scan.ideal[..., ~scan.mask]
    z = (scan.frames[..., ~scan.mask] - lam) / np.sqrt(lam)
    # ~2e5 pixels: the mean of z has a standard error of ~2e-3, its variance ~3e-3
    assert abs(z.mean()) < 0.01
    assert abs(z.var() - 1) < 0.02
    # noise=False rounds the same expectation
    exact = ds.make_scan((4, 5), noise=False, keep_ideal=True, **SMALL)
    assert_array_equal(exact.frames[..., ~exact.mask], np.rint(scan.ideal[..., ~scan.mask]))


def test_oriented_ring_dominates_its_background():
    scan = ds.make_scan((1,), kappa=0.0, noise=False, keep_ideal=True)
    q = scan.integrator().center_array(scan.frame_shape, unit="q_nm^-1")
    ring = np.abs(q - 0.45) < 0.005
    far = (np.abs(q - 0.62) < 0.005) & ~scan.mask
    peak = scan.ideal[0][ring].mean()
    assert 100 < peak < 1000
    assert peak > 10 * scan.ideal[0][far].mean()


# --------------------------------------------------------------------------- order parameter


def test_order_parameter_matches_analytic_maier_saupe():
    kappa = np.array([1e-2, 0.1, 0.5, 1, 2, 4, 8, 16, 32, 100, 1e3, 1e4, 1e6])
    # quadrature vs closed form: both are near float64 precision here; 1e-8 leaves room for the
    # cancellation of the closed form at small kappa (two terms ~1/(2k) subtracted)
    assert_allclose(ds.order_parameter_from_kappa(kappa), _analytic_s(kappa), rtol=0, atol=1e-8)
    assert_allclose(ds.order_parameter_from_kappa(-kappa), _analytic_s(-kappa), rtol=0, atol=1e-8)


def test_order_parameter_limits_and_shapes():
    assert ds.order_parameter_from_kappa(0.0) == 0.0
    assert ds.order_parameter_from_kappa(np.inf) == 1.0
    assert ds.order_parameter_from_kappa(-np.inf) == -0.5
    assert np.isnan(ds.order_parameter_from_kappa(np.nan))
    # S(16) ~ 0.9, from the closed form 1.5 (1/(8 F(4)) - 1/32) - 0.5
    assert_allclose(ds.order_parameter_from_kappa(16.0), 0.90270286907, atol=1e-10)
    s = ds.order_parameter_from_kappa(np.linspace(0, 50, 101).reshape(101, 1))
    assert s.shape == (101, 1)
    assert np.all(np.diff(s[:, 0]) > 0)
    assert ds.order_parameter_from_kappa(1e12) > 1 - 1e-11


def test_azimuthal_weight_has_unit_mean_and_right_contrast():
    chi = np.linspace(-180, 180, 36000, endpoint=False) + 0.005
    kappa = np.array([0.0, 0.5, 4.0, 16.0, 60.0])
    director = np.array([10.0, -45.0, 80.0, 0.0, -89.0])
    g = ds_model.azimuthal_weight(chi, kappa, director)
    # the rectangle rule is spectrally exact for this periodic smooth function
    assert_allclose(g.mean(axis=1), 1.0, rtol=1e-12)
    # max/min of exp(kappa cos^2) is exp(kappa); the grid misses each extremum by 0.005 deg
    # (8.7e-5 rad), a relative kappa * delta^2 = 4.6e-7 at kappa 60, twice
    assert_allclose(g.max(axis=1) / g.min(axis=1), np.exp(kappa), rtol=1.5e-6)


# --------------------------------------------------------------------------- against pyFAI


def _integrate1d(scan, frame, *, mask=None, npt=300):
    ai = scan.integrator()
    res = ai.integrate1d_ng(
        frame,
        npt,
        correctSolidAngle=True,
        polarization_factor=scan.polarization_factor,
        mask=mask,
        unit="q_nm^-1",
    )
    return res.radial, res.intensity


def test_pyfai_1d_isotropic_ring_at_its_q():
    scan = ds.make_scan((1,), kappa=8.0, noise=False, keep_ideal=True)
    q, intensity = _integrate1d(scan, scan.ideal[0], mask=scan.mask)
    ring = next(r for r in scan.rings if not r.oriented)
    window = np.abs(q - ring.q_nm) < 3 * ring.width_nm
    peak = q[window][np.argmax(intensity[window])]
    assert abs(peak - ring.q_nm) <= np.diff(q).max()  # within one bin


def test_pyfai_1d_recovers_true_profile_whatever_kappa():
    scan = ds.make_scan(
        (3,), kappa=[0.0, 8.0, 16.0], director_deg=[0, 37, -70], noise=False, keep_ideal=True
    )
    curves = [_integrate1d(scan, frame)[1] for frame in scan.ideal]  # unmasked: whole circles
    q, _ = _integrate1d(scan, scan.ideal[0])
    dq = q[1] - q[0]
    truth = scan.true_profile(q)
    for ring in scan.rings:
        sel = np.abs(q - ring.q_nm) < 4 * ring.width_nm
        true_area = truth[sel].sum() * dq
        for curve in curves:
            # ring areas (pixel splitting only moves intensity between neighbouring bins): the
            # discretisation of 1.5-2 px wide Gaussians leaves ~0.5 %; 1 % is the bound
            assert_allclose(curve[sel].sum() * dq, true_area, rtol=1e-2)
    # bin by bin, kappa changes which pixels dominate a bin (few hundred pixels on each ring):
    # measured 1.9 % at most between kappa 0 and 8 for q in 0.2..1.0
    sel = (q > 0.2) & (q < 1.0)
    for curve in curves[1:]:
        assert_allclose(curve[sel], curves[0][sel], rtol=3e-2)


def _chi_profile(ai, frame, mask, q_nm):
    res = ai.integrate2d_ng(
        frame,
        100,
        360,
        correctSolidAngle=True,
        polarization_factor=ds.POLARIZATION_FACTOR,
        mask=mask,
        unit="q_nm^-1",
        radial_range=(0.1, 1.0),
        azimuth_range=(-180, 180),
    )
    window = np.abs(res.radial - q_nm) < 0.02
    valid = res.count[:, window].min(axis=1) > 0  # chi bins not hidden by the beamstop arm
    return res.azimuthal[valid], res.intensity[:, window].mean(axis=1)[valid]


def _fit_maier_saupe(chi_deg, profile):
    """ln I = c0 + (kappa/2) cos 2(chi - d): linear in (1, cos 2chi, sin 2chi)."""
    two = np.radians(2 * chi_deg)
    design = np.stack([np.ones_like(two), np.cos(two), np.sin(two)], axis=1)
    c = np.linalg.lstsq(design, np.log(profile), rcond=None)[0]
    return 2 * np.hypot(c[1], c[2]), np.degrees(np.arctan2(c[2], c[1])) / 2


def _wrap(angle):
    return (np.asarray(angle) + 90) % 180 - 90


def test_pyfai_2d_oriented_ring_director_and_kappa():
    kappa, director = np.array([4.0, 8.0, 16.0]), np.array([37.0, -70.0, 5.0])
    scan = ds.make_scan(
        (3,),
        kappa=kappa,
        director_deg=director,
        rings=[ds.Ring(q_nm=0.45, width_nm=0.025, amplitude=400.0, oriented=True)],
        background=None,
        noise=False,
        keep_ideal=True,
    )
    ai = scan.integrator()
    for p in range(3):
        chi, prof = _chi_profile(ai, scan.ideal[p], scan.mask, 0.45)
        assert chi.size > 300  # the arm hides a few 1-degree bins only
        if kappa[p] >= 8:
            # the peak bin (1 deg wide, centred on x.5) is at the director (either lobe, axial);
            # at kappa 4 the top is so flat that the ~1 % pixelation ripple of 1-degree bins
            # moves the arg-max by 1.5 deg, so the fit below checks that one
            assert abs(_wrap(chi[np.argmax(prof)] - director[p])) <= 1.0
        # contrast exp(kappa): measured 0.5 % (kappa 8) to 2 % (kappa 16) high, as pixels
        # ~2 deg wide average the minimum's curvature
        assert_allclose(prof.max() / prof.min(), np.exp(kappa[p]), rtol=4e-2)
        fit_kappa, fit_director = _fit_maier_saupe(chi, prof)
        # fit over all chi: measured within 0.05 % in kappa, 0.002 deg in director
        assert_allclose(fit_kappa, kappa[p], rtol=5e-3)
        assert abs(_wrap(fit_director - director[p])) < 0.1


def test_oriented_map_positions_hold_their_ground_truth():
    scan = ds.oriented_map((3, 4), noise=False, keep_ideal=True, background=None)
    ai = scan.integrator()
    positions = [(0, 0), (1, 3), (2, 2)]
    assert all(scan.kappa[idx] > 2 for idx in positions)  # far from the isotropic centre
    for idx in positions:
        chi, prof = _chi_profile(ai, scan.ideal[idx], scan.mask, 0.45)
        fit_kappa, fit_director = _fit_maier_saupe(chi, prof)
        # the 0.80 nm^-1 ring's tail adds < 1e-10 at 0.45 nm^-1: same bounds as above
        assert_allclose(fit_kappa, scan.kappa[idx], rtol=5e-3)
        assert abs(_wrap(fit_director - scan.director_deg[idx])) < 0.1


# --------------------------------------------------------------------------- factories


def test_oriented_map_spans_kappa_and_directors():
    scan = ds.oriented_map((6, 8), kappa_max=12.0)
    assert scan.kappa.min() == 0.0 and scan.kappa.max() == 12.0
    assert scan.order_parameter.min() == 0.0
    ordered = scan.director_deg[scan.kappa > 0]
    # directors all around: every 30-degree sector of [-90, 90) is populated
    counts, _ = np.histogram(ordered, bins=6, range=(-90, 90))
    assert np.all(counts > 0)
    line = ds.oriented_map((5,), kappa_max=4.0)
    assert_allclose(line.kappa, [0, 1, 2, 3, 4])
    assert_allclose(line.director_deg, [-90, -54, -18, 18, 54])
    assert line.dims == ("X",)


def test_field_series_kappa_grows_with_field_director_fixed():
    scan = ds.field_series((0, 50, 100, 250), (3, 4), kappa_max=16.0, b0_mT=100.0, **SMALL)
    assert scan.dims == ("Field", "Y", "X") and scan.scan_shape == (4, 3, 4)
    assert_array_equal(scan.coords["Field"], [0, 50, 100, 250])
    assert scan.units["Field"] == "mT"
    expected = 16.0 * (1 - np.exp(-np.array([0, 50, 100, 250]) / 100.0))
    assert_allclose(scan.kappa, np.broadcast_to(expected[:, None, None], (4, 3, 4)), rtol=1e-15)
    assert np.all(scan.director_deg == scan.director_deg[0])
    assert len(np.unique(scan.director_deg[0])) == 12


def test_demo_scan_is_a_small_oriented_raster():
    scan = ds.demo_scan()
    assert scan.dims == ("Y", "X") and scan.n_positions <= 100
    assert scan.kappa.min() == 0 and scan.kappa.max() > 10
    assert any(r.oriented for r in scan.rings) and any(not r.oriented for r in scan.rings)


def test_custom_dims_coords_units_and_rings_as_dicts():
    scan = ds.make_scan(
        (2, 3),
        dims=("Temperature", "Time"),
        coords={"Temperature": [300.0, 310.0]},
        units={"Time": "min"},
        rings=[{"q_nm": 0.5, "width_nm": 0.03, "amplitude": 200, "oriented": False}],
        background=5.0,
        kappa=3.0,
        director_deg=100.0,
        **SMALL,
    )
    assert_array_equal(scan.coords["Temperature"], [300.0, 310.0])
    assert_array_equal(scan.coords["Time"], [0.0, 0.5, 1.0])
    assert scan.units == {"Temperature": "K", "Time": "min"}
    assert scan.rings == (ds.Ring(0.5, 0.03, 200.0, False),)
    assert_array_equal(scan.director_deg, -80.0)  # 100 deg wrapped into [-90, 90)
    assert_allclose(scan.true_profile(np.array([0.5, 2.0])), [205.0, 5.0], rtol=1e-12)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"scan_shape": (2, 0)}, "scan_shape"),
        ({"scan_shape": (2, 2, 2, 2, 2)}, "dims"),
        ({"frame_shape": (32, 400)}, "frame_shape"),
        ({"frame_shape": (100,)}, "frame_shape"),
        ({"dims": ("Y",)}, "dims"),
        ({"dims": ("Y", "Y")}, "dims"),
        ({"coords": {"X": [1.0, 2.0]}}, r"coords\['X'\]"),
        ({"coords": {"Z": [1.0]}}, "coords"),
        ({"coords": {"X": [np.nan] * 8}}, r"coords\['X'\]"),
        ({"units": {"Q": "m"}}, "units"),
        ({"kappa": -1.0}, "kappa"),
        ({"kappa": np.ones(5)}, "kappa"),
        ({"director_deg": np.inf}, "director_deg"),
        ({"rings": [{"q_nm": 0.4, "width": 0.1, "amplitude": 1}]}, "unknown fields"),
        ({"rings": [{"q_nm": 0.4, "amplitude": 1}]}, r"rings\[0\]"),
        ({"rings": ["ring"]}, r"rings\[0\]"),
        ({"rings": []}, "rings"),
        ({"background": -2.0}, "background"),
        ({"background": lambda q: -q}, "background"),
        ({"rng": "seed"}, "rng"),
    ],
)
def test_make_scan_rejects_bad_arguments(kwargs, match):
    kwargs = {"scan_shape": (2, 8), "frame_shape": (64, 64), **kwargs}
    with pytest.raises(InputError, match=match):
        ds.make_scan(**kwargs)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"q_nm": 0.0, "width_nm": 0.1, "amplitude": 1.0}, "q_nm"),
        ({"q_nm": 1.0, "width_nm": -0.1, "amplitude": 1.0}, "width_nm"),
        ({"q_nm": 1.0, "width_nm": 0.1, "amplitude": np.nan}, "amplitude"),
        ({"q_nm": 1.0, "width_nm": 0.1, "amplitude": 1.0, "oriented": "yes"}, "oriented"),
    ],
)
def test_ring_rejects_bad_fields(kwargs, match):
    with pytest.raises(InputError, match=match):
        ds.Ring(**kwargs)


def test_factory_argument_errors():
    with pytest.raises(InputError, match="kappa_max"):
        ds.oriented_map(kappa_max=-1.0)
    with pytest.raises(InputError, match="kappa"):
        ds.oriented_map(kappa=2.0)
    with pytest.raises(InputError, match="scan_shape"):
        ds.oriented_map((2, 2, 2))
    with pytest.raises(InputError, match="b0_mT"):
        ds.field_series(b0_mT=0.0)
    with pytest.raises(InputError, match="fields_mT"):
        ds.field_series(fields_mT=[])
    with pytest.raises(InputError, match="dims"):
        ds.field_series(dims=("A", "B", "C"))
    with pytest.raises(InputError, match="fields_mT"):
        ds.field_series(coords={"Field": [1, 2, 3, 4]})


# --------------------------------------------------------------------------- files


def test_write_poni_round_trips_through_pyfai(tmp_path):
    scan = ds.make_scan((1,), **SMALL)
    path = scan.write_poni(tmp_path / "geometry.poni")
    scan.write_poni(path)  # rewriting replaces the file (pyFAI's own ai.write appends)
    ai = pyFAI.load(str(path))
    for key in ("dist", "poni1", "poni2", "rot1", "rot2", "rot3", "wavelength", "pixel1", "pixel2"):
        assert getattr(ai, key) == scan.poni[key], key  # the PONI file prints full repr floats
    assert tuple(ai.detector.max_shape) == scan.frame_shape
    shape = scan.frame_shape
    assert_array_equal(
        ai.center_array(shape, unit="q_nm^-1"),
        scan.integrator().center_array(shape, unit="q_nm^-1"),
    )


def test_write_images_round_trips_through_fabio(tmp_path):
    scan = ds.make_scan((2, 3, 2), **SMALL)
    paths = scan.write_images(tmp_path / "frames")
    assert len(paths) == 12 and paths == sorted(paths)
    assert sorted(p.name for p in (tmp_path / "frames").glob("frame_*.edf")) == [
        p.name for p in paths
    ]
    frames = scan.frames.reshape(12, *scan.frame_shape)
    grid = np.meshgrid(*(scan.coords[d] for d in scan.dims), indexing="ij")
    expected = np.stack([g.ravel() for g in grid], axis=1)
    for i, path in enumerate(paths):
        image = fabio.open(str(path))
        assert image.data.dtype == np.int32
        assert_array_equal(image.data, frames[i])
        assert image.header["motor_mne"].split() == list(scan.dims)
        assert_array_equal([float(v) for v in image.header["motor_pos"].split()], expected[i])
    with open(tmp_path / "frames" / "positions.csv", newline="") as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == ["Field[mT]", "Y[um]", "X[um]"]
    assert_array_equal(np.array(rows[1:], dtype=float), expected)
    mask = fabio.open(str(tmp_path / "frames" / "mask.edf")).data
    assert mask.dtype == np.uint8
    assert_array_equal(mask.astype(bool), scan.mask)
    with pytest.raises(ExistingResultsError, match="overwrite"):
        scan.write_images(tmp_path / "frames")
    assert scan.write_images(tmp_path / "frames", overwrite=True) == paths


@pytest.mark.parametrize("fmt", ["cbf", "tif"])
def test_write_images_other_formats(tmp_path, fmt):
    scan = ds.make_scan((2,), **SMALL)
    paths = scan.write_images(tmp_path, fmt=fmt)
    assert [p.suffix for p in paths] == [f".{fmt}"] * 2
    assert_array_equal(fabio.open(str(paths[1])).data, scan.frames[1])


def test_write_images_rejects_unknown_format(tmp_path):
    with pytest.raises(InputError, match="fmt"):
        ds.make_scan((1,), **SMALL).write_images(tmp_path, fmt="png")
