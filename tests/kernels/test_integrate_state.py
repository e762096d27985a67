"""The batched integrator restored from its prepared arrays equals the one built (issue 18).

Every attribute, array for array, and the integrals of frames with dummies, NaN-free and
masked pixels, for the error models and layouts that have a state; "azimuthal" has none.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from pyFAI.detectors import Detector
from pyFAI.integrator.azimuthal import AzimuthalIntegrator

from pyscatter.kernels.integrate import BatchIntegrator
from pyscatter.kernels.integrate_state import consistent, restore, state

SHAPE = (48, 40)


def _integrator(**kwargs):
    ai = AzimuthalIntegrator(
        dist=0.1, poni1=0.004, poni2=0.003, wavelength=1e-10,
        detector=Detector(172e-6, 172e-6, max_shape=SHAPE),
    )  # fmt: skip
    return BatchIntegrator.from_pyfai(ai, SHAPE, **kwargs)


def _frames():
    rng = np.random.default_rng(4)
    frames = rng.poisson(40, (5, *SHAPE)).astype(np.uint32)
    frames[:, 7, 3] = 0xFFFFFFFF  # a dead pixel with the dummy value
    return frames


def _same_attributes(a, b):
    assert vars(a).keys() == vars(b).keys()
    for name, value in vars(a).items():
        other = getattr(b, name)
        if sp.issparse(value):
            assert value.format == other.format and value.shape == other.shape, name
            for part in ("data", "indices", "indptr"):
                x, y = getattr(value, part), getattr(other, part)
                assert x.dtype == y.dtype and np.array_equal(x, y), (name, part)
        elif isinstance(value, np.ndarray):
            assert value.dtype == other.dtype and np.array_equal(value, other), name
        else:
            assert type(value) is type(other) and value == other, name


@pytest.mark.parametrize(
    "kwargs",
    [
        {"npt": 60, "error_model": "poisson"},
        {"npt": 60, "error_model": None, "dummy": 0xFFFFFFFF, "delta_dummy": 0.5},
        {"npt": 30, "npt_azim": 12, "error_model": "poisson", "polarization_factor": 0.95},
        {"npt": 60, "error_model": "poisson", "mask": np.eye(*SHAPE, dtype=np.int8)},
        {
            "npt": 60,
            "error_model": "poisson",
            "dark": np.full(SHAPE, 2.0, np.float32),
            "flat": np.linspace(0.9, 1.1, SHAPE[0] * SHAPE[1]).reshape(SHAPE),
        },
    ],
)
def test_restored_integrator_equals_the_built_one(kwargs):
    built = _integrator(**kwargs)
    arrays = state(built)
    assert consistent(arrays)
    again = restore({k: np.array(v) for k, v in arrays.items()})  # as loaded: plain copies
    _same_attributes(built, again)
    frames = _frames()
    a, b = built.integrate(frames), again.integrate(frames)
    np.testing.assert_array_equal(a.intensity, b.intensity)
    if a.sigma is not None:
        np.testing.assert_array_equal(a.sigma, b.sigma)


def test_azimuthal_error_model_has_no_state_and_bad_arrays_are_refused():
    assert state(_integrator(npt=40, error_model="azimuthal")) is None
    arrays = state(_integrator(npt=40, error_model="poisson"))
    short = dict(arrays, norm=arrays["norm"][:-1])
    assert not consistent(short)
    outside = dict(arrays, csc_indices=arrays["csc_indices"] + 1000)
    assert not consistent(outside)
