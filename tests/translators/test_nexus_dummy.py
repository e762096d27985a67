"""The invalid-pixel value a NeXus detector declares becomes the measurement's ``dummy``.

NXdetector: valid pixels are ``<= saturation_value`` and ``>= underload_value``. When that
leaves exactly one value of the integer dtype invalid (Eiger: ``saturation_value = 2**32 - 2``
for uint32 frames, invalid pixels stored as ``2**32 - 1``), the translator records it as the
``dummy`` attribute the detector processes use by default (``recorded_dummy``); otherwise it
records none. The Eiger-like files are written here with h5py (``write_eiger`` of
test_nexus).
"""

import h5py
import numpy as np
import pytest

from pyscatter.processes.detector import recorded_dummy
from pyscatter.translators import translate
from pyscatter.translators.nexus_geometry import invalid_value
from tests.translators.test_nexus import SHAPE, frames_of, write_eiger

U32_MAX = np.iinfo(np.uint32).max


def eiger_with(tmp_path, fields, dtype=np.uint32):
    """An Eiger master file whose gap row holds the dtype's maximum, plus NXdetector fields."""
    frames = frames_of(4, seed=9).astype(dtype)
    frames[:, 0, :] = np.iinfo(dtype).max
    master, _ = write_eiger(tmp_path, frames)
    with h5py.File(master, "a") as m:
        for name, value in fields.items():
            m["entry/instrument/detector"][name] = value
    return master, frames


def recorded(path):
    with h5py.File(path, "r") as h5:
        meas = h5["Measurement_000"]
        main = next(v for v in meas["Channel_000"].values() if isinstance(v, h5py.Dataset))
        return recorded_dummy(main, None), dict(meas.attrs)


def test_saturation_one_below_the_maximum_records_the_maximum(tmp_path):
    master, _ = eiger_with(tmp_path, {"saturation_value": np.uint32(U32_MAX - 1)})
    (dummy, delta), attrs = recorded(translate(master, tmp_path / "out.h5", grid="Y=4"))
    assert dummy == float(U32_MAX) and delta is None
    assert attrs["dummy_source"].startswith("/entry/instrument/detector/saturation_value")


@pytest.mark.parametrize(
    "fields",
    [
        {},  # the file says nothing: no guess (not even from the pixel mask)
        {"saturation_value": np.uint32(1000)},  # a range of invalid values, not one
        {"saturation_value": np.uint32(U32_MAX - 1), "underload_value": np.uint32(2)},
    ],
)
def test_no_single_invalid_value_records_none(tmp_path, fields):
    master, _ = eiger_with(tmp_path, fields)
    (dummy, _), attrs = recorded(translate(master, tmp_path / "out.h5", grid="Y=4"))
    assert dummy is None and "dummy_source" not in attrs


def test_the_dummy_option_wins(tmp_path):
    master, _ = eiger_with(tmp_path, {"saturation_value": np.uint32(U32_MAX - 1)})
    (dummy, _), attrs = recorded(translate(master, tmp_path / "o.h5", grid="Y=4", dummy=-5))
    assert dummy == -5.0 and attrs["dummy_source"] == "dummy option"


def test_invalid_value_rules(tmp_path):
    with h5py.File(tmp_path / "d.h5", "w") as h5:
        det = h5.create_group("det")
        assert invalid_value(det, np.dtype(np.uint16)) is None
        det["underload_value"] = np.int16(-32767)
        assert invalid_value(det, np.dtype(np.int16))[0] == -32768.0
        assert invalid_value(det, np.dtype(np.float32)) is None  # floats: no single value
        del det["underload_value"]
        det["saturation_value"] = np.uint16(65534)
        assert invalid_value(det, np.dtype(np.uint16))[0] == 65535.0
        assert invalid_value(det, np.dtype(np.uint32)) is None  # 65535.. 2**32-1: a range


def test_recorded_dummy_drives_integration(tmp_path):
    """The process takes the recorded dummy: the stored maxima (gap row) are left out, as
    pyFAI leaves them out with the same dummy, and the result is the frames' true level."""
    from pyFAI.detectors import Detector
    from pyFAI.integrator.azimuthal import AzimuthalIntegrator

    from pyscatter.kernels.integrate import BatchIntegrator

    master, frames = eiger_with(tmp_path, {"saturation_value": np.uint32(U32_MAX - 1)})
    (dummy, delta), _ = recorded(translate(master, tmp_path / "out.h5", grid="Y=4"))
    ai = AzimuthalIntegrator(
        dist=0.1,
        poni1=5e-4,
        poni2=5e-4,
        wavelength=1e-10,
        detector=Detector(75e-6, 75e-6, max_shape=SHAPE),
    )
    options = {"npt": 8, "dummy": dummy, "delta_dummy": delta}
    res = BatchIntegrator.from_pyfai(ai, SHAPE, **options).integrate(frames)
    for i, frame in enumerate(frames):
        ref = ai.integrate1d_ng(
            frame,
            8,
            method=("bbox", "csr", "cython"),
            dummy=dummy,
            delta_dummy=delta,
            unit="q_nm^-1",
        )
        np.testing.assert_allclose(res.intensity[i], ref.intensity, rtol=1e-5)
    assert res.intensity.max() < 1e6  # the 2**32 - 1 row would dominate if counted
