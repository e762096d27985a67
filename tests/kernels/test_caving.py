"""Caving: masked pixels filled from their centro-symmetric partners."""

from __future__ import annotations

import numpy as np
import pytest

from pyscatter import datasets
from pyscatter.datasets import Ring
from pyscatter.errors import InputError
from pyscatter.geometry import beam_center
from pyscatter.kernels.caving import cave, cave_reference, partner_coordinates


@pytest.fixture(scope="module")
def isotropic():
    """Isotropic rings (kappa = 0) on the synthetic detector with its beamstop, arm and gap."""
    rings = [Ring(0.45, 0.04, 400.0), Ring(0.9, 0.05, 200.0)]
    scan = datasets.make_scan(
        (3,),
        kappa=0.0,
        director_deg=0.0,
        frame_shape=(96, 112),
        rings=rings,
        keep_ideal=True,
        rng=5,
    )
    return scan, beam_center(scan.integrator())


def test_centro_symmetric_image_is_restored_exactly():
    rng = np.random.default_rng(0)
    half = rng.uniform(1, 10, (9, 11))
    image = half + half[::-1, ::-1]  # symmetric about (4, 5)
    mask = np.zeros(image.shape, bool)
    mask[1, 2] = mask[6, 9] = mask[0, 0] = True
    for order in (0, 1):
        res = cave(np.where(mask, np.nan, image), mask, (4.0, 5.0), order=order)
        np.testing.assert_array_equal(res.filled, image)  # weight 1 on the partner pixel
        assert not res.missing.any()
        assert set(np.unique(res.filled_in_pass[mask])) == {1}


def test_partner_coordinates():
    rows, cols = partner_coordinates((3, 4), (1.0, 1.5))
    np.testing.assert_array_equal(rows[0], [2, 2, 2, 2])
    np.testing.assert_array_equal(cols[0], [3, 2, 1, 0])


def test_isotropic_ring_filled_within_noise(isotropic):
    scan, centre = isotropic
    res = cave(scan.frames, scan.mask, centre)  # masked pixels hold -1 in the frames
    filled = scan.mask & ~res.missing[0]
    # most masked pixels (arm, gap) have a measured partner; the beamstop disc has not
    assert filled.sum() > 0.8 * scan.mask.sum()
    np.testing.assert_array_equal(res.missing[0], res.missing[2])
    truth = scan.ideal[:, filled]
    z = (res.filled[:, filled] - truth) / np.sqrt(truth)
    # Poisson z-scores: unbiased (mean within 5 standard errors, 0.1 for ~1400 values) and no
    # noisier than one pixel (bilinear averaging of up to 4 partners makes the rms <= 1)
    assert abs(z.mean()) < 0.1
    assert 0.5 < np.sqrt((z**2).mean()) < 1.1
    # without noise: the partner differs by interpolation and the tilts only (median 0.25 %)
    ideal = cave(np.where(scan.mask, -1.0, scan.ideal), scan.mask, centre)
    rel = np.abs(ideal.filled[:, filled] / truth - 1)
    assert np.median(rel) < 0.01
    # measured pixels never change, the input is not modified
    np.testing.assert_array_equal(res.filled[:, ~scan.mask], scan.frames[:, ~scan.mask])
    assert (scan.frames[:, scan.mask] == -1).all()


@pytest.mark.parametrize("order", [0, 1])
def test_passes_equal_the_pixel_loop(isotropic, order):
    scan, centre = isotropic
    frames = scan.frames.astype(np.float32)
    masks = np.broadcast_to(scan.mask, frames.shape).copy()
    masks[1, 40:46, 10:30] = True  # a per-frame mask: frame 1 has an extra hole
    previous = None
    for n_iter in (1, 2, 4):
        res = cave(frames, masks, centre, n_iter=n_iter, order=order)
        assert res.filled.dtype == np.float32
        for i in range(frames.shape[0]):
            ref = cave_reference(frames[i], masks[i], centre, n_iter=n_iter, order=order)
            np.testing.assert_array_equal(res.missing[i], ref.missing)
            np.testing.assert_array_equal(res.filled_in_pass[i], ref.filled_in_pass)
            # same weights, same 4-term sums; float32 storage of float64 results
            np.testing.assert_allclose(res.filled[i], ref.filled, rtol=1e-6, equal_nan=True)
        if previous is not None:  # more passes only add pixels
            assert (res.missing <= previous.missing).all()
        previous = res
    assert res.filled_in_pass.max() <= 4


def test_later_passes_read_pixels_filled_before():
    # centre column 2.25: the partner of column c is 4.5 − c, halfway between two pixels
    image = np.arange(30.0).reshape(5, 6)
    mask = np.zeros(image.shape, bool)
    mask[2, [1, 3, 4]] = True
    res1 = cave(image, mask, (2.0, 2.25), n_iter=1)
    # (2, 3) ← (2, 1.5): only (2, 2) is valid; (2, 4) ← (2, 0.5): only (2, 0) is valid
    assert res1.filled[2, 3] == image[2, 2] and res1.filled[2, 4] == image[2, 0]
    assert res1.missing[2, 1]  # (2, 1) ← (2, 3.5): both sources still masked in pass 1
    res2 = cave(image, mask, (2.0, 2.25), n_iter=2)
    # pass 2 reads the values filled in pass 1, half and half
    assert res2.filled[2, 1] == 0.5 * (image[2, 2] + image[2, 0])
    assert res2.filled_in_pass[2, 1] == 2 and res2.filled_in_pass[2, 3] == 1


def test_a_self_symmetric_region_stays_missing():
    image = np.ones((21, 21))
    rows, cols = np.indices(image.shape)
    disc = np.hypot(rows - 10, cols - 10) < 4  # its own mirror image about (10, 10)
    res = cave(image, disc, (10.0, 10.0), n_iter=5, order=0)
    np.testing.assert_array_equal(res.missing, disc)
    assert np.isnan(res.filled[disc]).all()
    off = cave(image, np.pad(np.ones((2, 2), bool), ((0, 19), (0, 19))), (15.0, 15.0))
    assert off.missing[:2, :2].all()  # partners (30, 30)… lie off the detector


def test_errors_name_the_parameter():
    image = np.zeros((4, 4))
    with pytest.raises(InputError, match="n_iter"):
        cave(image, None, (1, 1), n_iter=0)
    with pytest.raises(InputError, match="order"):
        cave(image, None, (1, 1), order=3)
    with pytest.raises(InputError, match="mask of shape"):
        cave(image, np.zeros((3, 3), bool), (1, 1))
    with pytest.raises(InputError, match="center"):
        cave(image, None, (1, np.nan))
    with pytest.raises(InputError, match="images"):
        cave(np.zeros(4), None, (1, 1))
