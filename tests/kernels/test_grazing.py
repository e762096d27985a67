"""The grazing-incidence kernel: pyFAI's FiberIntegrator called directly gives the same maps
(q_xy/q_z and q/chi, masks, dummies, polarization, Poisson sigma), any block gives the same
bits, and pygix, where it imports, puts the known reflections at the same q."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from scipy.optimize import curve_fit

from pyscatter.datasets_gi import gi_scan
from pyscatter.kernels.grazing import gi_integrator, gi_pixel_maps, gi_reference, integrate_gi

QMAP = {"npt_ip": 600, "npt_oop": 450, "ip_range": (-6.0, 6.0), "oop_range": (0.5, 9.5)}


@pytest.fixture(scope="module")
def scan():
    return gi_scan(frame_shape=(240, 264), incident_deg=(0.1, 0.2), rng=5)


def gaussian_2d(xy, a, x0, y0, sx, sy, c):
    x, y = xy
    return a * np.exp(-0.5 * ((x - x0) / sx) ** 2 - 0.5 * ((y - y0) / sy) ** 2) + c


def fit_spot(image, fast, slow, spot, centre=None):
    """(x0, y0) of a 2-D Gaussian fitted within 3 sigma of ``centre`` (default the spot's)."""
    cx, cy = centre if centre is not None else (spot.q_xy, spot.q_z)
    x, y = np.meshgrid(fast, slow)
    near = (np.abs(x - cx) < 3 * spot.sigma) & (np.abs(y - cy) < 3 * spot.sigma)
    near &= np.isfinite(image)
    guess = (spot.amplitude, cx, cy, spot.sigma, spot.sigma, 10.0)
    popt, _ = curve_fit(gaussian_2d, (x[near], y[near]), image[near], p0=guess)
    return popt[1], popt[2]


@pytest.mark.parametrize("mode", ["qmap", "chi"])
def test_maps_equal_pyfai_fiber_integrator_called_directly(scan, mode):
    ranges = dict(QMAP, npt_ip=200, npt_oop=150) if mode == "qmap" else {
        "npt_ip": 300, "npt_oop": 180, "ip_range": (0.0, 11.0), "oop_range": (-90.0, 90.0)
    }  # fmt: skip
    frames = scan.frames.copy()
    frames[1, 100:104, 30:34] = -7  # dummies of this frame only
    options = dict(ranges, mode=mode, incident_deg=0.2, sample_orientation=1)
    bi = gi_integrator(
        scan.poni, scan.frame_shape, mask=scan.mask, polarization_factor=0.95, dummy=-7,
        error_model="poisson", **options,
    )  # fmt: skip
    intensity, sigma = integrate_gi(bi, frames)
    for k in range(len(frames)):
        ref = gi_reference(
            scan.poni, frames[k], mask=scan.mask.astype(np.int8), polarization_factor=0.95,
            dummy=-7, **options,
        )  # fmt: skip
        reached = ref.count > 0
        assert reached.mean() > 0.3
        assert_allclose(intensity[k][reached], ref.intensity[reached], rtol=1e-5)
        # integrate2d_grazing_incidence passes no error model: its integrate2d_ng does
        ng = gi_reference(
            scan.poni, frames[k], mask=scan.mask.astype(np.int8), polarization_factor=0.95,
            dummy=-7, error_model="poisson", **options,
        )  # fmt: skip
        assert_array_equal(ng.intensity, ref.intensity)
        assert_allclose(sigma[k][reached], ng.sigma[reached], rtol=1e-5)
        # the bins no unmasked pixel reaches are NaN (pyFAI: 0 and count 0)
        static = np.isnan(intensity[0])
        assert np.all(static <= ~reached)
    one, _ = integrate_gi(bi, frames[1:2])  # alone or in a block: the same bits
    assert_array_equal(one[0], intensity[1])


def test_the_pixel_map_is_pyfai_qip_qoop(scan):
    q_xy, q_z = gi_pixel_maps(scan.poni, scan.frame_shape, incident_deg=0.15)
    q, chi = gi_pixel_maps(scan.poni, scan.frame_shape, mode="chi", incident_deg=0.15)
    assert_allclose(np.hypot(q_xy, q_z), q, rtol=1e-9)  # |q|^2 = q_xy^2 + q_z^2
    assert_allclose(np.degrees(np.arctan2(q_xy, q_z)), chi, atol=1e-9)


def test_pygix_puts_the_reflections_where_the_kernel_does(scan):
    pygix = pytest.importorskip("pygix", reason="pygix is not installed (tests extra)")
    import logging

    logging.getLogger("pyFAI.DEPRECATION").setLevel(logging.ERROR)
    frame = scan.frames[1].astype(np.float32)
    bi = gi_integrator(scan.poni, scan.frame_shape, incident_deg=0.2, mask=scan.mask, **QMAP)
    ours, _ = integrate_gi(bi, frame[None])
    from pyscatter.kernels.grazing import fiber_integrator

    fi = fiber_integrator(scan.poni)
    tr = pygix.Transform(
        dist=fi.dist, poni1=fi.poni1, poni2=fi.poni2, rot1=fi.rot1, rot2=fi.rot2, rot3=fi.rot3,
        wavelength=fi.wavelength, detector=fi.detector,
    )  # fmt: skip
    # pygix's sample orientation 1 is pyFAI's 2 on pyFAI's BottomRight detectors: q_xy flips
    tr.sample_orientation, tr.incident_angle, tr.tilt_angle = 1, 0.2, 0.0
    image, q_xy, q_z = tr.transform_reciprocal(
        frame, npt=(600, 450), ip_range=(-6.0, 6.0), op_range=(0.5, 9.5), mask=scan.mask,
        correctSolidAngle=True, method="splitpix", unit="nm",
    )  # fmt: skip
    image = np.where(image > 0, image, np.nan)
    for spot in scan.spots:
        mine = fit_spot(ours[0], bi.radial, bi.azimuthal, spot)
        theirs = fit_spot(image[:, ::-1], -np.asarray(q_xy)[::-1], np.asarray(q_z), spot)
        assert abs(theirs[0] / spot.q_xy - 1) < 1e-3 and abs(theirs[1] / spot.q_z - 1) < 1e-3
        assert abs(theirs[0] / mine[0] - 1) < 1e-3 and abs(theirs[1] / mine[1] - 1) < 1e-3
