"""EDF files with ESRF headers: geometry, dummy pixels, SPEC motors and counters, lab series.

Synthetic EDF files are written with fabio (tiny headers inline); the real ESRF ID06 file of the
darfix tutorial checks the SPEC-era motor and counter headers as an instrument writes them.
"""

import json
import os
import re
from pathlib import Path

import h5py
import numpy as np
import pytest
from fabio.edfimage import EdfImage
from numpy.testing import assert_allclose, assert_array_equal

from pyscatter.errors import FileFormatError, InputError
from pyscatter.io.usid import dims_of, main_datasets, read_nd
from pyscatter.translators import translate
from pyscatter.translators.esrf import (
    dummy_mask,
    esrf_dummy,
    esrf_geometry,
    header_counters,
    header_monitor,
    parse_field_mT,
    parse_temperature_K,
)

DATA = Path(
    os.environ.get("PYSCATTER_TEST_DATA") or Path(__file__).resolve().parents[3] / "shared/data"
)
SHAPE = (40, 50)
SAXS = {
    "Center_1": "20.5",  # column (fast axis)
    "Center_2": "10.5",  # row
    "PSize_1": "1.72e-04",
    "PSize_2": "1.72e-04",
    "SampleDistance": "1.5",
    "WaveLength": "1.5418e-10",
    "Dummy": "-1",
    "DDummy": "0.5",
    "Title": "AgBeh_xeuss",
}


@pytest.fixture(scope="module")
def check_if_main():
    return pytest.importorskip("pyUSID").hdf_utils.check_if_main


def write_edf(path, frame, header):
    EdfImage(data=np.ascontiguousarray(frame), header=dict(header)).write(str(path))
    return path


def frames_of(n, seed=0):
    rng = np.random.default_rng(seed)
    frames = rng.integers(0, 1000, size=(n, *SHAPE)).astype(np.int32)
    frames[:, 5, :] = -1  # a dead row marked with the dummy value
    return frames


def open_main(path):
    h5 = h5py.File(path, "r")
    (main,) = main_datasets(h5)
    return h5, main


# --------------------------------------------------------------------------- header helpers


def test_esrf_geometry_is_pyfai_setspd():
    from pyFAI.integrator.azimuthal import AzimuthalIntegrator

    config = esrf_geometry(SAXS, SHAPE, where="x.edf")
    reference = AzimuthalIntegrator()
    reference.setSPD(
        SampleDistance=1.5,
        Center_1=20.5,
        Center_2=10.5,
        PSize_1=1.72e-4,
        PSize_2=1.72e-4,
        WaveLength=1.5418e-10,
    )
    # pyFAI: poni1 (rows) = Center_2 × PSize_2, poni2 (columns) = Center_1 × PSize_1
    assert config["poni1"] == pytest.approx(10.5 * 1.72e-4, rel=1e-12)
    assert config["poni2"] == pytest.approx(20.5 * 1.72e-4, rel=1e-12)
    assert config["dist"] == 1.5 and config["wavelength"] == 1.5418e-10
    for key in ("poni1", "poni2", "dist", "rot1", "rot2", "rot3"):
        assert config[key] == pytest.approx(getattr(reference, key), abs=1e-15)
    assert esrf_geometry({"PSize_1": "1e-4", "PSize_2": "1e-4"}, SHAPE, where="x") is None


@pytest.mark.parametrize("missing", ["SampleDistance", "WaveLength", "Center_1", "PSize_2"])
def test_esrf_geometry_names_the_missing_key(missing):
    header = {k: v for k, v in SAXS.items() if k != missing}
    with pytest.raises(
        InputError,
        match=rf"x\.edf: the ESRF header gives .* but not {missing}.*"
        r"poni=FILE \(command line --poni FILE\)",
    ):
        esrf_geometry(header, SHAPE, where="x.edf")


def test_esrf_geometry_bad_values():
    with pytest.raises(FileFormatError, match=r"x: header key WaveLength = 'abc' is not a number"):
        esrf_geometry({**SAXS, "WaveLength": "abc"}, SHAPE, where="x")
    with pytest.raises(InputError, match="SampleDistance = -1.5 must be positive"):
        esrf_geometry({**SAXS, "SampleDistance": "-1.5"}, SHAPE, where="x")
    with pytest.raises(InputError, match="detector rotations .*Rot_1=0.1"):
        esrf_geometry({**SAXS, "Rot_1": "0.1"}, SHAPE, where="x")


def test_dummy_conventions():
    assert esrf_dummy({"Dummy": "0", "DDummy": "1"}, where="x") is None  # Dummy 0 = no dummy
    assert esrf_dummy({"Dummy": "-10"}, where="x") == (-10.0, 0.0)
    frame = np.array([[-10, -9, 0], [-11, 4294967286, 5]], dtype=np.int64)
    assert_array_equal(dummy_mask(frame, -10.0), [[1, 0, 0], [0, 0, 0]])
    assert_array_equal(dummy_mask(frame, -10.0, 1.0), [[1, 1, 0], [1, 0, 0]])  # |v-d| <= dd
    unsigned = np.array([0, 65535, 65534], dtype=np.uint16)
    assert_array_equal(dummy_mask(unsigned, 65535.0), [False, True, False])  # no wrap-around


@pytest.mark.parametrize(
    ("title", "field"),
    [
        ("sampleA_250mT_001", 250.0),
        ("sampleA_1.2T_003", 1200.0),
        ("x_-50mT", -50.0),
        ("x_0p5T_2", 500.0),
        ("B=+20 mT", 20.0),
        ("run_012", None),
        ("v2T", None),  # a version, not a field
        ("p_3mTorr", None),
    ],
)
def test_parse_field(title, field):
    assert parse_field_mT(title) == field


def test_parse_field_and_temperature_ambiguous():
    assert parse_temperature_K("s_300K_250mT") == 300.0 and parse_field_mT("s_300K_250mT") == 250
    assert parse_temperature_K("s_150mK") == pytest.approx(0.15)
    with pytest.raises(InputError, match=r"names several values \(100, 200\)"):
        parse_field_mT("from_100mT_to_200mT")


def test_counters_and_monitor():
    header = {"counter_mne": "sec mon det", "counter_pos": "1 2.5e5 -nan"}
    assert header_counters(header, where="x")["mon"] == 2.5e5
    assert header_monitor(header, "mon", where="x") == 2.5e5
    assert header_monitor({"pilai1": "7.25"}, "pilai1", where="x") == 7.25
    with pytest.raises(FileFormatError, match="counter 'det' has no finite value"):
        header_monitor(header, "det", where="x")
    with pytest.raises(InputError, match=r"x: no monitor 'i0'.*counter_mne: sec mon det"):
        header_monitor(header, "i0", where="x")
    with pytest.raises(FileFormatError, match="3 counter names .* 2 values"):
        header_counters({"counter_mne": "a b c", "counter_pos": "1 2"}, where="x")


# --------------------------------------------------------------------------- EDF translation


def test_edf_header_geometry_dummy_and_monitor(tmp_path, check_if_main):
    import pyFAI

    frames = frames_of(4)
    for i, frame in enumerate(frames):
        header = {**SAXS, "counter_mne": "sec mon", "counter_pos": f"1 {1000 + i}"}
        write_edf(tmp_path / f"img_{i}.edf", frame, header)
    out = translate(tmp_path, tmp_path / "out.h5", monitor="mon")  # no --poni needed
    h5, main = open_main(out)
    with h5:
        assert check_if_main(main)
        assert_array_equal(read_nd(main)[0], frames)
        attrs = h5["Measurement_000"].attrs
        config = json.loads(attrs["geometry"])
        assert "ESRF header of img_0.edf" in attrs["geometry_source"]
        ai = pyFAI.load(config)
        # the centre of pixel (10, 20) is the point of normal incidence: q = 0 (float32 rounding)
        assert ai.qArray(SHAPE)[10, 20] < 1e-6
        assert json.loads(attrs["esrf_header"])["WaveLength"] == "1.5418e-10"
        # Dummy -1, DDummy 0.5: the dead row is masked
        assert_array_equal(main.parent["Mask"][()], frames[0] == -1)
        assert (attrs["dummy"], attrs["delta_dummy"]) == (-1.0, 0.5)
        assert_array_equal(main.parent["Monitor"][()], [1000, 1001, 1002, 1003])
    # --poni overrides the header
    poni = tmp_path / "other.poni"
    poni.write_text(
        "Detector: Pilatus100k\nDistance: 0.3\nPoni1: 0.001\nPoni2: 0.002\n"
        "Rot1: 0\nRot2: 0\nRot3: 0\nWavelength: 1e-10\n"
    )
    with pytest.raises(InputError, match=r"other\.poni: detector .* is \(195, 487\)"):
        translate(tmp_path, tmp_path / "o2.h5", poni=poni)  # a real detector of another shape
    poni.write_text(
        'Detector: Detector\nDetector_config: {"pixel1": 1.72e-4, "pixel2": 1.72e-4}\n'
        "Distance: 0.3\nPoni1: 0.001\nPoni2: 0.002\nRot1: 0\nRot2: 0\nRot3: 0\n"
        "Wavelength: 1e-10\n"
    )
    out = translate(tmp_path, tmp_path / "o3.h5", poni=poni)
    with h5py.File(out) as h5:
        assert json.loads(h5["Measurement_000"].attrs["geometry"])["dist"] == 0.3
        assert h5["Measurement_000"].attrs["geometry_source"] == "poni"


def test_edf_header_missing_key_is_an_error_naming_it(tmp_path):
    header = {k: v for k, v in SAXS.items() if k != "Center_2"}
    write_edf(tmp_path / "img_1.edf", frames_of(1)[0], header)
    out = tmp_path / "out.h5"
    with pytest.raises(
        InputError, match=r"img_1\.edf: the ESRF header .* but not Center_2.*--poni"
    ):
        translate(tmp_path / "img_1.edf", out)
    assert not out.exists()
    out = translate(tmp_path / "img_1.edf", out, header_geometry=False)
    with h5py.File(out) as h5:
        assert "geometry" not in h5["Measurement_000"].attrs


def test_header_geometry_refuses_flip(tmp_path):
    write_edf(tmp_path / "img_1.edf", frames_of(1)[0], SAXS)
    with pytest.raises(InputError, match="refers to the image as stored, but flip='ud'"):
        translate(tmp_path / "img_1.edf", tmp_path / "o.h5", flip="ud")


def test_lab_xeuss_type_series_with_motors(tmp_path, check_if_main):
    """A lab SAXS series: ESRF SAXS keys, sample motors, a plain numeric monitor key per image."""
    frames = frames_of(6)
    k = 0
    for z in (1.0, 2.0):
        for x in (0.0, 0.5, 1.0):
            header = {
                **SAXS,
                "motor_mne": "x_p z_p",
                "motor_pos": f"{x} {z}",
                "pilai1": str(100.0 + k),
                "count_time": "60",
            }
            write_edf(tmp_path / f"xeuss_{k}.edf", frames[k], header)
            k += 1
    out = translate(
        tmp_path / "xeuss_*.edf", tmp_path / "out.h5", motors="z_p[mm],x_p[mm]", monitor="pilai1"
    )
    h5, main = open_main(out)
    with h5:
        assert check_if_main(main)
        data, dims = read_nd(main)
        assert [(d.name, d.units, len(d)) for d in dims[:2]] == [("z_p", "mm", 2), ("x_p", "mm", 3)]
        assert_array_equal(data.reshape(6, *SHAPE), frames)
        assert_array_equal(main.parent["Monitor"][()], 100.0 + np.arange(6))
        assert "geometry" in h5["Measurement_000"].attrs


@pytest.mark.realdata
@pytest.mark.skipif(not DATA.is_dir(), reason=f"{DATA} absent")
def test_darfix_counters_and_motors(tmp_path):
    path = DATA / "darfix" / "strain_0000.edf"
    text = path.read_bytes()[:8192].decode("latin-1")

    def listed(key):
        return re.search(rf"{key}\s*=\s*([^;]*);", text).group(1).split()

    counters = dict(zip(listed("counter_mne"), listed("counter_pos"), strict=True))
    out = translate(path, tmp_path / "darfix.h5", motors="diffry[deg]", monitor="srcur")
    with h5py.File(out) as h5:
        (main,) = main_datasets(h5)
        assert_allclose(main.parent["Monitor"][()], [float(counters["srcur"])], rtol=0)
        assert float(counters["srcur"]) == 167.777  # the storage-ring current in the header
        assert [(d.name, len(d)) for d in dims_of(main, "Position")] == [("diffry", 1)]
        # no ESRF SAXS geometry keys in an ID06 header: no geometry, no error
        assert "geometry" not in h5["Measurement_000"].attrs
    with pytest.raises(FileFormatError, match="counter 'foc1' has no finite value"):
        translate(path, tmp_path / "o.h5", monitor="foc1")  # "-nan" in the real header


# --------------------------------------------------------------------------- nonsense geometry


@pytest.mark.parametrize(
    ("key", "value", "named"),
    [
        ("Center_1", "1e30", "poni2"),  # beam centre 1e30 px along the columns
        ("Center_2", "1e30", "poni1"),  # and along the rows
        ("SampleDistance", "1e30", "dist"),
    ],
)
def test_esrf_header_nonsense_geometry_is_refused(tmp_path, key, value, named):
    write_edf(tmp_path / "a_0000.edf", frames_of(1)[0], {**SAXS, key: value})
    with pytest.raises(InputError, match=rf"a_0000\.edf \(ESRF header\): geometry {named} = "):
        translate(tmp_path, tmp_path / "out.h5")
    assert not (tmp_path / "out.h5").exists()


@pytest.mark.parametrize(
    ("key", "value", "pyfai_key", "expected"),
    [
        ("SampleDistance", "1.6", "dist", 1.6),
        ("Center_1", "21.5", "poni2", None),
        ("WaveLength", "1e-10", "wavelength", 1e-10),
    ],
)
def test_header_geometry_that_changes_between_files_is_recorded_per_position(
    tmp_path, key, value, pyfai_key, expected
):
    """Issue 15: an energy or distance series is recorded per position (it was refused)."""
    from pyscatter.io.geometry_series import read_series

    frames = frames_of(3)
    write_edf(tmp_path / "a_0000.edf", frames[0], SAXS)
    write_edf(tmp_path / "a_0001.edf", frames[1], {**SAXS, "SampleDistance": "1.50"})  # same
    write_edf(tmp_path / "a_0002.edf", frames[2], {**SAXS, key: value})
    out = translate(tmp_path, tmp_path / "out.h5")
    with h5py.File(out, "r") as h5:
        raw = h5["Measurement_000/Channel_000/Raw_Data"]
        series = read_series(raw)
        base = json.loads(h5["Measurement_000"].attrs["geometry"])
    assert series.keys == [pyfai_key]
    values = series.values[pyfai_key]
    assert values[0] == values[1] == base[pyfai_key] != values[2]
    if expected is not None:
        assert values[2] == pytest.approx(expected, rel=1e-12)
    else:  # Center_1 (columns) in pixels of PSize_1
        assert values[2] == pytest.approx(21.5 * float(SAXS["PSize_1"]), rel=1e-9)
    # a later header without the geometry the first one has is still refused
    write_edf(tmp_path / "a_0002.edf", frames[2], {"Dummy": "0"})
    with pytest.raises(InputError, match=r"a_0002\.edf: header key"):
        translate(tmp_path, tmp_path / "bad.h5")
    # without the header geometry there is nothing to disagree about
    out = translate(tmp_path, tmp_path / "ok.h5", header_geometry=False)
    assert out.exists()
