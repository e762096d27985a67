"""SPEC MCA scans as XRF data: energy axis in keV, dead time and monitor recorded beside the
spectra (never applied to them), per-point ``#@CTIME``, a given calibration, bad columns."""

from __future__ import annotations

import json
import logging

import h5py
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from pyscatter.datasets_xrf import write_spec_mesh, xrf_map
from pyscatter.errors import InputError
from pyscatter.io.usid import dims_of
from pyscatter.kernels.xrf import dead_time_factor
from pyscatter.translators import translate

CHANNEL = "Measurement_000/Channel_000"


@pytest.fixture(scope="module")
def xrf():
    return xrf_map((3, 4), n_channels=512, gain_keV=0.04, offset_keV=0.01, seed=2)


@pytest.fixture(scope="module")
def spec(tmp_path_factory, xrf):
    return write_spec_mesh(tmp_path_factory.mktemp("xrf") / "xrf.spec", xrf)


def test_energy_axis_in_kev_counts_as_measured(spec, xrf, tmp_path):
    out = translate(spec, tmp_path / "x.h5", format="spec", scan=1, monitor="I0")
    with h5py.File(out) as h5:
        raw = h5[f"{CHANNEL}/Raw_Data"]
        assert_array_equal(raw[()], xrf.spectra.reshape(12, -1))  # never corrected
        (axis,) = dims_of(raw, "Spectroscopic")
        assert axis.units == "keV"
        assert_allclose(axis.values, xrf.energy_keV, rtol=1e-12)
        chan = h5[CHANNEL]
        assert json.loads(chan.attrs["mca_calibration"]) == pytest.approx(list(xrf.calibration))
        assert chan.attrs["mca_calibration_source"] == "#@CALIB"
        # one #@CTIME line for the scan: the times of one point, not a dead time per point
        assert "dead_time" not in chan.attrs and "Live_Time" not in chan
        assert json.loads(chan.attrs["mca_ctime"])[1] == pytest.approx(xrf.live_time.flat[0])
        assert h5["Measurement_000"].attrs["monitor"] == "Counters/I0"
        assert_allclose(h5[f"{CHANNEL}/Counters/I0"][()], xrf.monitor.ravel(), rtol=1e-9)


@pytest.mark.parametrize(
    "options, kind",
    [
        ({"dead_time_column": "dt_percent"}, "percent"),
        ({"live_time_column": "livetime", "real_time_column": "realtime"}, "live_real"),
    ],
)
def test_dead_time_recorded_and_exact(spec, xrf, tmp_path, options, kind):
    out = translate(spec, tmp_path / "d.h5", format="spec", scan=1, **options)
    with h5py.File(out) as h5:
        record = json.loads(h5[CHANNEL].attrs["dead_time"])
        assert record["kind"] == kind
        measurement = h5["Measurement_000"]
        if kind == "percent":
            factor = dead_time_factor(percent=measurement[record["percent"]][()])
        else:
            live, real = measurement[record["live_time"]][()], measurement[record["real_time"]][()]
            factor = dead_time_factor(live_time=live, real_time=real)
        assert_allclose(factor, xrf.dead_time_factor().ravel(), rtol=1e-9)
        assert_array_equal(h5[f"{CHANNEL}/Raw_Data"][()], xrf.spectra.reshape(12, -1))
        assert json.loads(measurement.attrs["options"])[next(iter(options))] is not None


def test_per_point_ctime_and_factor_column(tmp_path):
    text = (
        "#F t.spec\n#E 1\n\n#S 1  mesh  samy 0 1 1  samz 0 1 1  0.1\n#N 4\n"
        "#@MCA 16C\n#@CHANN 4 0 3 1\n#L samy  samz  I0  dtf\n"
    )
    lives = [0.9, 0.8, 0.7, 0.6]
    for k, live in enumerate(lives):
        text += f"#@CTIME 1 {live} 1\n{k % 2} {k // 2} 100 {1 + k / 10}\n@A 1 2 3 4\n"
    (tmp_path / "t.spec").write_text(text)
    out = translate(tmp_path / "t.spec", tmp_path / "t.h5", format="spec", scan=1,
                    mca_calibration=[0.5, 0.25])  # fmt: skip
    with h5py.File(out) as h5:
        chan = h5[CHANNEL]
        assert_array_equal(chan["Live_Time"][()], lives)
        assert_array_equal(chan["Real_Time"][()], [1.0] * 4)
        assert chan["Live_Time"].attrs["units"] == "s"
        record = json.loads(chan.attrs["dead_time"])
        assert record == {"kind": "live_real", "live_time": "Channel_000/Live_Time",
                          "real_time": "Channel_000/Real_Time", "source": "#@CTIME (per point)"}  # fmt: skip
        assert chan.attrs["mca_calibration_source"] == "given"
        assert_allclose(dims_of(chan["Raw_Data"], "Spectroscopic")[0].values, [0.5, 0.75, 1, 1.25])
    out = translate(tmp_path / "t.spec", tmp_path / "f.h5", format="spec", scan=1,
                    dead_time_factor_column="dtf")  # fmt: skip
    with h5py.File(out) as h5:
        record = json.loads(h5[CHANNEL].attrs["dead_time"])
        assert record["kind"] == "factor"
        assert_allclose(h5["Measurement_000"][record["factor"]][()], [1.0, 1.1, 1.2, 1.3])
        (axis,) = dims_of(h5[f"{CHANNEL}/Raw_Data"], "Spectroscopic")
        assert axis.units == "channel"  # no #@CALIB and no mca_calibration


def test_bad_columns_and_options_are_named(spec, tmp_path, caplog):
    out = tmp_path / "bad.h5"
    with pytest.raises(InputError) as err:
        translate(spec, out, format="spec", scan=1, dead_time_column="deadtime")
    message = str(err.value)
    assert str(spec) in message and "scan 1.1" in message and "'deadtime'" in message
    assert "livetime, realtime, dt_percent, I0" in message
    with pytest.raises(InputError, match="live_time_column and real_time_column go together"):
        translate(spec, out, format="spec", scan=1, live_time_column="livetime")
    with pytest.raises(InputError, match="give one of dead_time_column"):
        translate(spec, out, format="spec", scan=1, dead_time_column="dt_percent",
                  dead_time_factor_column="I0")  # fmt: skip
    with pytest.raises(InputError, match="mca_calibration .*2 or 3 numbers"):
        translate(spec, out, format="spec", scan=1, mca_calibration=[1.0])
    with caplog.at_level(logging.WARNING, "pyscatter.translators.spec"):
        translate(spec, out, format="spec", scan=1)
    assert "columns livetime, realtime, dt_percent may hold it" in caplog.text


def test_options_without_xrf_columns_record_as_before(spec, tmp_path):
    """A translation without the new options records the options it recorded before (so a
    partial file written before still resumes and a finished one is still the same plan)."""
    out = translate(spec, tmp_path / "o.h5", format="spec", scan=1)
    with h5py.File(out) as h5:
        options = json.loads(h5["Measurement_000"].attrs["options"])
    assert not {"mca_calibration", "dead_time_column", "live_time_column"} & set(options)
