"""BatchIntegrator against pyFAI's own per-frame integrate1d_ng / integrate2d_ng.

Tolerance: pyFAI accumulates each bin in float64; the batched product accumulates the signal
in float32 over the ~300–700 pixels of a bin here, a relative rounding of about
sqrt(n)·6e-8 (measured ≤ 2e-6, worst case n·6e-8 ≈ 4e-5 is not approached). ``RTOL = 1e-5``
keeps a margin while any formula error (a missing or doubled dark, flat, solid angle,
polarization, dummy or σ term) is a 1e-3 to 1e-1 effect. Empty bins must be equal exactly.
"""

from __future__ import annotations

import pickle
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from pyscatter.errors import InputError
from pyscatter.kernels import integrate as integrate_module
from pyscatter.kernels import integrate_sums
from pyscatter.kernels.integrate import BatchIntegrator, IntegrationResult, integrate_reference

RTOL = 1e-5
SHAPE = (200, 220)
N_FRAMES = 3
METHODS = {"bbox": ("bbox", "csr", "cython"), "no": ("no", "csr", "cython")}
DIMS = {"1d": {"npt": 120}, "2d": {"npt": 60, "npt_azim": 36}}


def make_integrator(empty: float | None = None):
    from pyFAI.detectors import Detector
    from pyFAI.integrator.azimuthal import AzimuthalIntegrator

    detector = Detector(172e-6, 172e-6, max_shape=SHAPE)
    ai = AzimuthalIntegrator(
        dist=0.1, poni1=0.012, poni2=0.016, detector=detector, wavelength=1e-10
    )
    if empty is not None:
        ai.empty = empty
    return ai


@pytest.fixture(scope="module")
def ai():
    return make_integrator()


@pytest.fixture(scope="module")
def data(ai):
    """Poisson frames on a ring, and dark, flat, mask arrays (seeded)."""
    rng = np.random.default_rng(1234)
    q = ai.qArray(SHAPE)
    expected = 50 + 400 * np.exp(-0.5 * ((q - 9.0) / 0.3) ** 2)
    frames = rng.poisson(expected, size=(N_FRAMES, *SHAPE)).astype(np.int32)
    mask = np.zeros(SHAPE, dtype=bool)
    mask[:, 150:153] = True  # a module gap
    rows, cols = np.indices(SHAPE)
    mask |= (rows - 70) ** 2 + (cols - 93) ** 2 < 8**2  # beam stop
    dummy_frames = frames.copy()
    dummy_frames[0][rng.random(SHAPE) < 0.01] = -1  # dead pixels, frame 0 only
    dummy_frames[2, 120, :] = -1  # a dead line in frame 2
    return {
        "frames": frames,
        "dummy_frames": dummy_frames,
        "dark": rng.uniform(0, 3, SHAPE).astype(np.float32),
        "flat": rng.uniform(0.9, 1.1, SHAPE).astype(np.float32),
        "mask": mask,
    }


def full_options(data) -> dict:
    return {
        "correct_solid_angle": True,
        "polarization_factor": 0.99,
        "mask": data["mask"],
        "dark": data["dark"],
        "flat": data["flat"],
        "dummy": -1,
        "delta_dummy": 0.5,
    }


def max_rel_change(a: np.ndarray, b: np.ndarray) -> float:
    """Largest |a - b| / |b| over non-empty bins of b."""
    keep = b != 0
    return float(np.max(np.abs(a[keep] - b[keep]) / np.abs(b[keep])))


def assert_matches(res: IntegrationResult, ref: IntegrationResult, error_model) -> None:
    assert_array_equal(res.radial, ref.radial)  # the same axis, not just close
    if ref.azimuthal is None:
        assert res.azimuthal is None
    else:
        assert_array_equal(res.azimuthal, ref.azimuthal)
    assert res.unit == ref.unit
    assert res.intensity.dtype == np.float32 and res.intensity.shape == ref.intensity.shape
    assert_allclose(res.intensity, ref.intensity, rtol=RTOL, atol=0)
    if error_model is None:
        assert res.sigma is None and ref.sigma is None
    else:
        assert res.sigma.dtype == np.float32
        assert_allclose(res.sigma, ref.sigma, rtol=RTOL, atol=0)


@pytest.mark.parametrize("error_model", [None, "poisson", "azimuthal"])
@pytest.mark.parametrize("split", list(METHODS))
@pytest.mark.parametrize("dim", list(DIMS))
def test_matches_pyfai_with_all_corrections(ai, data, dim, split, error_model):
    options = dict(DIMS[dim], method=METHODS[split], error_model=error_model, **full_options(data))
    frames = data["dummy_frames"]
    res = BatchIntegrator.from_pyfai(ai, SHAPE, **options).integrate(frames)
    ref = integrate_reference(ai, frames, **options)
    assert_matches(res, ref, error_model)
    assert (ref.intensity != 0).sum() > 0.5 * ref.intensity.size  # mostly filled bins
    if dim == "2d":
        n_chi, n_q = DIMS[dim]["npt_azim"], DIMS[dim]["npt"]
        assert res.intensity.shape == (N_FRAMES, n_chi, n_q)
        assert (ref.intensity == 0).any()  # cake bins off the detector: empty value mirrored


@pytest.mark.parametrize("error_model", [None, "poisson", "azimuthal"])
@pytest.mark.parametrize("split", list(METHODS))
@pytest.mark.parametrize("dim", list(DIMS))
def test_matches_pyfai_without_corrections(ai, data, dim, split, error_model):
    options = dict(
        DIMS[dim], method=METHODS[split], error_model=error_model, correct_solid_angle=False
    )
    res = BatchIntegrator.from_pyfai(ai, SHAPE, **options).integrate(data["frames"])
    assert_matches(res, integrate_reference(ai, data["frames"], **options), error_model)


CORRECTIONS = {
    "solid_angle": lambda d: {"correct_solid_angle": True},
    "polarization": lambda d: {"polarization_factor": 0.99},
    "mask": lambda d: {"mask": d["mask"]},
    "dark": lambda d: {"dark": d["dark"]},
    "flat": lambda d: {"flat": d["flat"]},
    "dummy": lambda d: {"dummy": -1, "delta_dummy": 0.5},
}


@pytest.mark.parametrize("error_model", ["poisson", "azimuthal"])
@pytest.mark.parametrize("correction", list(CORRECTIONS))
def test_each_correction_alone(ai, data, correction, error_model):
    """Each option on its own matches pyFAI, and changes the result (so it is not ignored)."""
    base = dict(npt=120, error_model=error_model, correct_solid_angle=False)
    options = {**base, **CORRECTIONS[correction](data)}
    frames = data["dummy_frames"]
    res = BatchIntegrator.from_pyfai(ai, SHAPE, **options).integrate(frames)
    assert_matches(res, integrate_reference(ai, frames, **options), error_model)
    plain = BatchIntegrator.from_pyfai(ai, SHAPE, **base).integrate(frames)
    assert max_rel_change(res.intensity, plain.intensity) > 1e-3


def test_poisson_2d_adds_dark_like_pyfai(ai, data):
    """pyFAI's 2-D bbox CSR path uses max(raw, 1) + max(dark, 0) as Poisson variance, 1-D not."""
    for dims in DIMS.values():
        options = dict(dims, error_model="poisson", dark=data["dark"])
        res = BatchIntegrator.from_pyfai(ai, SHAPE, **options).integrate(data["frames"])
        assert_matches(res, integrate_reference(ai, data["frames"], **options), "poisson")
    twod = BatchIntegrator.from_pyfai(
        ai, SHAPE, **DIMS["2d"], error_model="poisson", dark=data["dark"]
    )
    nodark = BatchIntegrator.from_pyfai(ai, SHAPE, **DIMS["2d"], error_model="poisson")
    a, b = twod.integrate(data["frames"]).sigma, nodark.integrate(data["frames"]).sigma
    assert max_rel_change(a, b) > 1e-3


@pytest.mark.parametrize("unit", ["2th_deg", "q_A^-1", "r_mm"])
def test_other_units_and_ranges(ai, data, unit):
    ref_axis = integrate_reference(ai, data["frames"][:1], npt=80, unit=unit).radial
    lo, hi = ref_axis[10], ref_axis[60]
    options = {
        "npt": 80,
        "unit": unit,
        "error_model": "poisson",
        "radial_range": (lo, hi),
        "azimuth_range": (-150.0, 60.0),
        "polarization_factor": 0.99,
    }
    res = BatchIntegrator.from_pyfai(ai, SHAPE, **options).integrate(data["frames"])
    assert_matches(res, integrate_reference(ai, data["frames"], **options), "poisson")
    assert res.radial[0] >= lo and res.radial[-1] <= hi


def test_empty_bins_get_pyfai_empty_value(data):
    ai = make_integrator(empty=-5.0)
    options = {"npt": 100, "radial_range": (0.0, 60.0), "error_model": "poisson"}
    res = BatchIntegrator.from_pyfai(ai, SHAPE, **options).integrate(data["frames"])
    ref = integrate_reference(ai, data["frames"], **options)
    assert_matches(res, ref, "poisson")
    assert (ref.intensity == -5.0).sum() > 10  # q beyond the detector edge
    assert_array_equal(res.intensity == -5.0, ref.intensity == -5.0)


def test_detector_dummy_follows_dtype():
    """No dummy given: the detector's, resolved per dtype (uint32: 2**32 - 1 is dead)."""
    ai = make_integrator()
    ai.detector.dummy = -1
    rng = np.random.default_rng(5)
    frames = rng.poisson(30, size=(2, *SHAPE)).astype(np.uint32)
    frames[1, 40:60, 30:200] = np.iinfo(np.uint32).max
    options = {"npt": 100, "error_model": "poisson"}
    res = BatchIntegrator.from_pyfai(ai, SHAPE, **options).integrate(frames)
    assert_matches(res, integrate_reference(ai, frames, **options), "poisson")
    assert res.intensity[1].max() < 100  # the dead block would dominate if counted


def test_float_frames_with_nan_and_inf(ai, data):
    frames = data["frames"].astype(np.float64)
    frames[0, 10:30, 10:200] = np.nan
    frames[1, 150, :] = np.inf
    for error_model in ("poisson", "azimuthal"):
        options = {"npt": 120, "error_model": error_model, "dark": data["dark"]}
        res = BatchIntegrator.from_pyfai(ai, SHAPE, **options).integrate(frames)
        assert_matches(res, integrate_reference(ai, frames, **options), error_model)
        assert np.isfinite(res.intensity).all()


def test_frames_independent_of_block(ai, data):
    """A frame's result does not depend on the other frames of the block, nor on block size."""
    options = dict(npt=120, error_model="poisson", **full_options(data))
    frames = data["dummy_frames"]
    whole = BatchIntegrator.from_pyfai(ai, SHAPE, **options).integrate(frames)
    small = BatchIntegrator.from_pyfai(ai, SHAPE, block_frames=1, **options)
    for i in range(N_FRAMES):
        alone = small.integrate(frames[i : i + 1])
        assert_allclose(alone.intensity[0], whole.intensity[i], rtol=1e-6, atol=0)
        assert_allclose(alone.sigma[0], whole.sigma[i], rtol=1e-6, atol=0)


def test_public_sparse_product_fallback(ai, data, monkeypatch):
    """Without scipy's private csc_matvecs the public operator is used, still equal to pyFAI."""
    options = dict(npt=120, error_model="poisson", **full_options(data))
    bi = BatchIntegrator.from_pyfai(ai, SHAPE, **options)
    monkeypatch.setattr(integrate_sums, "_csc_matvecs", None)
    # float32 partial sums per pixel piece: another summation order, same tolerance
    assert_matches(
        bi.integrate(data["dummy_frames"]),
        integrate_reference(ai, data["dummy_frames"], **options),
        "poisson",
    )


@pytest.mark.parametrize("error_model", ["poisson", "azimuthal"])
def test_small_pieces_and_few_dead_pixels(ai, data, monkeypatch, error_model):
    """Many pixel pieces (some fully masked) and row blocks, a few dead pixels: still pyFAI."""
    monkeypatch.setattr(integrate_module, "chunk_pixels", lambda nf: 512)
    monkeypatch.setattr(integrate_sums, "AZIMUTHAL_ELEMENTS", 3000)
    frames = data["frames"].copy()
    frames[1, 100, 40:44] = -1  # dead pixels in a few bins of one frame only
    mask = data["mask"].copy()
    mask[:30] = True  # whole pieces without any matrix entry
    options = {
        "npt": 120,
        "error_model": error_model,
        "mask": mask,
        "dummy": -1,
        "flat": data["flat"],
    }
    res = BatchIntegrator.from_pyfai(ai, SHAPE, **options).integrate(frames)
    assert_matches(res, integrate_reference(ai, frames, **options), error_model)


def test_layouts_and_dtypes_agree(ai, data):
    bi = BatchIntegrator.from_pyfai(ai, SHAPE, npt=120, error_model="poisson")
    frames = data["frames"]
    ref = bi.integrate(frames)
    for variant in (
        frames.reshape(N_FRAMES, -1),
        frames.astype(np.uint16),
        frames.astype(np.float64),
        np.asfortranarray(frames),
    ):
        res = bi.integrate(variant)
        assert_array_equal(res.intensity, ref.intensity)
        assert_array_equal(res.sigma, ref.sigma)
    flat_ref = integrate_reference(ai, frames.reshape(N_FRAMES, -1), npt=120)
    assert_array_equal(flat_ref.intensity, integrate_reference(ai, frames, npt=120).intensity)


@pytest.mark.parametrize("error_model", [None, "poisson", "azimuthal"])
def test_pickle_round_trip(ai, data, error_model):
    bi = BatchIntegrator.from_pyfai(
        ai, SHAPE, **DIMS["2d"], error_model=error_model, **full_options(data)
    )
    clone = pickle.loads(pickle.dumps(bi))
    a, b = bi.integrate(data["dummy_frames"]), clone.integrate(data["dummy_frames"])
    assert_array_equal(a.intensity, b.intensity)
    if error_model is not None:
        assert_array_equal(a.sigma, b.sigma)
    assert_array_equal(a.radial, b.radial)
    assert_array_equal(a.azimuthal, b.azimuthal)


def test_inputs_not_mutated(ai, data):
    frames = data["dummy_frames"].astype(np.float32)
    dark, flat = data["dark"].copy(), data["flat"].copy()
    before = frames.copy()
    for error_model in (None, "poisson", "azimuthal"):
        bi = BatchIntegrator.from_pyfai(
            ai,
            SHAPE,
            npt=120,
            error_model=error_model,
            dark=dark,
            flat=flat,
            dummy=-1,
            delta_dummy=0.5,
        )
        res = bi.integrate(frames)
        res.intensity[...] = 0  # results are fresh arrays, not views of state
        assert_array_equal(frames, before)
        assert_array_equal(dark, data["dark"])
        assert_array_equal(flat, data["flat"])
        assert not np.array_equal(res.intensity, bi.integrate(frames).intensity)


def test_threads_share_one_integrator(ai, data):
    bi = BatchIntegrator.from_pyfai(ai, SHAPE, npt=120, error_model="poisson", **full_options(data))
    frames = [data["dummy_frames"], data["frames"]] * 4
    serial = [bi.integrate(f) for f in frames]
    with ThreadPoolExecutor(max_workers=2) as pool:
        parallel = list(pool.map(bi.integrate, frames))
    for a, b in zip(serial, parallel, strict=True):
        assert_array_equal(a.intensity, b.intensity)
        assert_array_equal(a.sigma, b.sigma)


def test_zero_frames(ai):
    for dims, shape in ((DIMS["1d"], (0, 120)), (DIMS["2d"], (0, 36, 60))):
        res = BatchIntegrator.from_pyfai(ai, SHAPE, **dims, error_model="poisson").integrate(
            np.zeros((0, *SHAPE), dtype=np.uint32)
        )
        assert res.intensity.shape == shape and res.sigma.shape == shape


def test_bad_inputs_are_refused(ai):
    with pytest.raises(InputError, match="error_model"):
        BatchIntegrator.from_pyfai(ai, SHAPE, npt=10, error_model="gaussian")
    with pytest.raises(InputError, match="method"):
        BatchIntegrator.from_pyfai(ai, SHAPE, npt=10, method=("no", "histogram", "cython"))
    bi = BatchIntegrator.from_pyfai(ai, SHAPE, npt=10)
    with pytest.raises(InputError, match="frames have shape"):
        bi.integrate(np.zeros((2, 10, 10)))
    with pytest.raises(InputError, match="dtype"):
        bi.integrate(np.zeros((1, *SHAPE), dtype=complex))
    with pytest.raises(InputError, match="dark has"):
        BatchIntegrator.from_pyfai(ai, SHAPE, npt=10, dark=np.zeros((5, 5)))
    with pytest.raises(InputError, match="error_model"):
        integrate_reference(ai, np.zeros((1, *SHAPE)), npt=10, error_model="gaussian")


def test_sums_are_pyfais_normalization_and_variance(ai, data):
    """``sums`` gives, per frame, pyFAI's own sum_normalization and sum_variance."""
    options = dict(DIMS["1d"], method=METHODS["bbox"], error_model="poisson", **full_options(data))
    frames = data["dummy_frames"]
    bi = BatchIntegrator.from_pyfai(ai, SHAPE, **options)
    intensity, sigma, norm, variance = bi.sums(frames)
    for i in (0, 2):  # with dead pixels and a dead line
        ref = ai.integrate1d_ng(
            frames[i],
            DIMS["1d"]["npt"],
            method=METHODS["bbox"],
            error_model="poisson",
            **{k: v for k, v in full_options(data).items() if k != "correct_solid_angle"},
            correctSolidAngle=True,
        )
        filled = ref.sum_normalization > 0
        assert_allclose(norm[i][filled], ref.sum_normalization[filled], rtol=1e-5)
        assert_allclose(variance[i][filled], ref.sum_variance[filled], rtol=1e-5)
        assert_allclose(intensity[i][filled], ref.intensity[filled], rtol=RTOL)
        assert_allclose(sigma[i][filled], ref.sigma[filled], rtol=RTOL)
        assert np.isnan(intensity[i][~filled]).all() and (norm[i][~filled] == 0).all()


@pytest.mark.parametrize("method", ["nonsense", ("bbox",), ("a", "b", "c", "d", "e", "f"), 42])
def test_from_pyfai_refuses_a_method_pyfai_cannot_parse(ai, method):
    with pytest.raises(InputError, match="unsupported method"):
        BatchIntegrator.from_pyfai(ai, SHAPE, npt=20, method=method)


def eiger_like(ai, data, dtype=np.uint32):
    """Frames with the uint32 maximum (Eiger's invalid value) at every masked pixel and at a
    few unmasked ones, the same frames with the masked ones zeroed, and the options."""
    frames = data["frames"].astype(dtype)
    invalid = np.iinfo(np.uint32).max
    mask = data["mask"].copy()
    rng = np.random.default_rng(7)
    mask.flat[rng.choice(mask.size, 400, replace=False)] = True  # scattered dead pixels
    stored, zeroed = frames.copy(), frames.copy()
    stored[:, mask] = invalid
    zeroed[:, mask] = 0
    for out in (stored, zeroed):
        out[1, 100, 40:44] = invalid  # invalid outside the mask, in one frame
    options = {"npt": 120, "mask": mask, "dummy": invalid, "dark": data["dark"]}
    return stored, zeroed, options


@pytest.mark.parametrize("error_model", [None, "poisson", "azimuthal"])
@pytest.mark.parametrize("dim", list(DIMS))
def test_masked_invalid_pixels_neither_tested_nor_recorded(ai, data, monkeypatch, dim, error_model):
    """Invalid values the mask excludes give the same bytes as zeros there, match pyFAI, and
    are not tested: only the piece holding unmasked invalid pixels runs the exact dummy test,
    and only those pixels are recorded as bad."""
    monkeypatch.setattr(integrate_module, "chunk_pixels", lambda nf: 2048)
    stored, zeroed, options = eiger_like(ai, data)
    options = dict(options, error_model=error_model, **DIMS[dim])
    recorded: list[np.ndarray] = []
    tested: list[int] = []
    original_add, original_test = integrate_sums.BadPixels.add, integrate_module.dummy_invalid

    def spy_add(self, pixels, masks):
        recorded.append(pixels)
        original_add(self, pixels, masks)

    def spy_test(values, *args, **kwargs):
        found = original_test(values, *args, **kwargs)
        if found is not None:
            tested.append(values.shape[0])
        return found

    monkeypatch.setattr(integrate_sums.BadPixels, "add", spy_add)
    monkeypatch.setattr(integrate_module, "dummy_invalid", spy_test)
    bi = BatchIntegrator.from_pyfai(ai, SHAPE, **options)
    res = bi.integrate(stored)
    bad = np.concatenate(recorded)
    assert_array_equal(np.unique(bad), 100 * SHAPE[1] + np.arange(40, 44))
    assert len(tested) == 1  # one block, one piece (pixels 22040-22043 of 2048-pixel pieces)
    recorded.clear()
    again = bi.integrate(zeroed)
    assert res.intensity.tobytes() == again.intensity.tobytes()
    if error_model is not None:
        assert res.sigma.tobytes() == again.sigma.tobytes()
    assert_matches(res, integrate_reference(ai, stored, **options), error_model)


def test_masked_non_finite_float_pixels_and_dark(ai, data):
    """Float frames with NaN/inf where the mask excludes them, a NaN dark there: as pyFAI."""
    stored, _, options = eiger_like(ai, data, dtype=np.float32)
    stored[:, options["mask"]] = np.nan
    stored[0, options["mask"]] = np.inf
    dark = data["dark"].copy()
    dark[options["mask"]] = np.nan
    options = dict(options, dark=dark, error_model="poisson")
    res = BatchIntegrator.from_pyfai(ai, SHAPE, **options).integrate(stored)
    assert_matches(res, integrate_reference(ai, stored, **options), "poisson")
    assert np.isfinite(res.intensity).all()
