"""The ESRF ID02 (LIMA HDF5) translator, on faithful synthetic LIMA files and fabio's LIMA writer.

The files are written by :mod:`lima_files` the way LIMA writes them (both of ID02's layouts,
bitshuffle-LZ4 and gzip, string header datasets, a soft-linked ``measurement/data``, unwritten
chunks for an aborted acquisition). Every translated file is checked with pyUSID's
``check_if_main`` and read back against the source frames bit for bit.
"""

import datetime as dt
import json
import logging
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from pyscatter.errors import FileFormatError, InputError
from pyscatter.io.usid import dims_of, main_datasets, read_nd
from pyscatter.translators import guess_translator, translate
from pyscatter.translators.id02 import ID02Translator, read_lima

sys.path.insert(0, str(Path(__file__).parent))
from lima_files import frames_with_ring, geometry_header, write_lima  # noqa: E402

T0 = dt.datetime(2024, 5, 1, 10, 0, 0, tzinfo=dt.UTC)


@pytest.fixture(scope="module")
def check_if_main():
    pyusid = pytest.importorskip("pyUSID")
    return pyusid.hdf_utils.check_if_main


def open_main(path):
    h5 = h5py.File(path, "r")
    (main,) = main_datasets(h5)
    return h5, main


def attrs_of(h5):
    return h5["Measurement_000"].attrs


# --------------------------------------------------------------------------- one file


@pytest.mark.parametrize("layout", ["esrf-id02", "instrument"])
@pytest.mark.parametrize("compression", ["bslz4", "gzip"])
def test_single_file_round_trip(tmp_path, layout, compression, check_if_main):
    frames = frames_with_ring(3, dtype=np.int32)
    src = write_lima(tmp_path / "a_0000.h5", frames, layout=layout, compression=compression)
    lima = read_lima(src)
    assert lima.data_path.endswith(("ESRF-ID02/eiger2/data", "instrument/id02-eiger2-saxs/data"))
    assert isinstance(guess_translator(src), ID02Translator)
    out = translate(src, tmp_path / "out.h5")
    h5, main = open_main(out)
    with h5:
        assert check_if_main(main)
        data, dims = read_nd(main)
        assert_array_equal(data, frames)  # bit for bit
        assert [(d.name, len(d)) for d in dims] == [("Frame", 3), ("Row", 80), ("Col", 120)]
        attrs = attrs_of(h5)
        assert attrs["translator"] == "id02" and attrs["series"] == "frames"
        source = json.loads(attrs["sources"])[0]
        assert source["title"] == "sampleA_250mT_001" and source["written_frames"] == 3
        assert source["dataset"] == lima.data_path
        # Dummy = -10, DDummy = 0.1: the dead column (value -10) is the mask, recorded
        assert_array_equal(main.parent["Mask"][()], frames[0] == -10)
        assert (attrs["dummy"], attrs["delta_dummy"]) == (-10.0, 0.1)
        # per-frame times: start + frame × (exposure 0.1 s + latency 0.01 s)
        assert_allclose(main.parent["Time"][()], [0.0, 0.11, 0.22], rtol=0, atol=1e-12)
        assert attrs["time_origin"] == T0.isoformat()


def test_header_geometry_matches_pyfai_setspd(tmp_path):
    import pyFAI
    from pyFAI.integrator.azimuthal import AzimuthalIntegrator

    src = write_lima(tmp_path / "a.h5", frames_with_ring(1, dtype=np.int32))
    out = translate(src, tmp_path / "out.h5")
    with h5py.File(out) as h5:
        config = json.loads(attrs_of(h5)["geometry"])
        assert "setSPD" in attrs_of(h5)["geometry_source"]
    ai = pyFAI.load(config)
    reference = AzimuthalIntegrator()
    reference.setSPD(
        SampleDistance=2.0,
        Center_1=60.5,
        Center_2=40.5,
        PSize_1=7.5e-5,
        PSize_2=7.5e-5,
        WaveLength=1e-10,
    )
    q = ai.qArray((80, 120))  # nm^-1
    assert_allclose(q, reference.qArray((80, 120)), rtol=1e-12)  # same geometry as pyFAI's own
    # Center_1 = 60.5, Center_2 = 40.5 pixel coordinates: the centre of pixel (40, 60) is the
    # point of normal incidence, so q = 0 there (1e-6 nm^-1: float rounding of poni / pixel)
    assert q[40, 60] < 1e-6
    # a ring of radius r around the centre: q = 4π/λ sin(atan(r/d)/2), λ = 0.1 nm, d = 2 m.
    # Pixel (40, 100) is 40 pixels right of the centre, pixel (1, 60) 39 pixels above it
    # (rtol 1e-6: pyFAI computes q in float32).
    for (row, col), pixels in (((40, 100), 40), ((1, 60), 39)):
        expected = 4 * np.pi / 0.1 * np.sin(np.arctan(pixels * 7.5e-5 / 2.0) / 2)
        assert_allclose(q[row, col], expected, rtol=1e-6)
    assert tuple(config["detector_config"]["max_shape"]) == (80, 120)


def test_fabio_lima_writer_output(tmp_path, check_if_main):
    from fabio.limaimage import LimaImage

    frames = frames_with_ring(4, dtype=np.uint16, dummy_pixels=False)
    image = LimaImage(data=frames[0])
    for i in range(1, 4):
        image.set_data(frames[i], index=i)
    path = tmp_path / "fabio_lima.h5"
    image.write(str(path))  # hard-linked measurement/data, no header keys, bitshuffle
    assert isinstance(guess_translator(path), ID02Translator)
    out = translate(path, tmp_path / "out.h5", format="id02")
    h5, main = open_main(out)
    with h5:
        assert check_if_main(main)
        assert_array_equal(read_nd(main)[0], frames)
        assert "geometry" not in attrs_of(h5)  # fabio writes no ESRF geometry keys


# --------------------------------------------------------------------------- series


def field_series(tmp_path, titles, *, frames_per_file=2, dtype=np.int32, **kw):
    """One LIMA file per title, started one minute apart in the order given."""
    files, frames = [], []
    for k, title in enumerate(titles):
        f = frames_with_ring(frames_per_file, seed=k, dtype=dtype)
        start = T0 + dt.timedelta(minutes=k)
        files.append(
            write_lima(
                tmp_path / f"scan_{k + 1}.h5",
                f,
                header=geometry_header(Title=title),
                start=start,
                **kw,
            )
        )
        frames.append(f)
    return files, frames


def test_field_series_sorted_with_frame_dim(tmp_path, check_if_main):
    titles = ["sampleA_250mT_001", "sampleA_-50mT_002", "sampleA_1.2T_003"]
    files, frames = field_series(tmp_path, titles)
    out = translate(tmp_path / "scan_*.h5", tmp_path / "out.h5")  # series "auto" → field
    h5, main = open_main(out)
    with h5:
        assert check_if_main(main)
        data, dims = read_nd(main)
        assert [(d.name, d.units) for d in dims[:2]] == [("Field", "mT"), ("Frame", "")]
        assert_array_equal(dims[0].values, [-50.0, 250.0, 1200.0])  # sorted, 1.2 T → 1200 mT
        # frames follow their field: -50 mT is file 2, 250 mT file 1, 1200 mT file 3
        assert_array_equal(data, np.stack([frames[1], frames[0], frames[2]]))
        pos_values = h5[main.attrs["Position_Values"]][()]
        assert_array_equal(pos_values[:, 0], [-50, -50, 250, 250, 1200, 1200])
        assert attrs_of(h5)["series"] == "field"
        assert [s["name"] for s in json.loads(attrs_of(h5)["sources"])] == [
            "scan_2.h5",
            "scan_1.h5",
            "scan_3.h5",
        ]
        # each position's time: its file's start (minutes 1, 0, 2) + frame × 0.11 s
        assert_allclose(main.parent["Time"][()], [60, 60.11, 0, 0.11, 120, 120.11], atol=1e-9)


def test_hysteresis_kept_in_acquisition_order(tmp_path, caplog):
    titles = ["s_0mT", "s_500mT", "s_0mT_back"]
    files, frames = field_series(tmp_path, titles, frames_per_file=1)
    with caplog.at_level(logging.INFO, logger="pyscatter.translators.id02"):
        out = translate(files, tmp_path / "out.h5", series="field")
    h5, main = open_main(out)
    with h5:
        data, dims = read_nd(main)
        assert [d.name for d in dims[:1]] == ["Field"]
        assert_array_equal(h5[main.attrs["Position_Values"]][()][:, 0], [0, 500, 0])
        assert_array_equal(data, np.stack([f[0] for f in frames]))
    assert "acquisition order" in caplog.text


def test_time_series(tmp_path):
    files = []
    for k, minutes in enumerate([5, 0, 2]):  # natural order is not time order
        files.append(
            write_lima(
                tmp_path / f"t_{k}.h5",
                frames_with_ring(1, seed=k, dtype=np.int32),
                header=geometry_header(Title=f"run{k}"),
                start=T0 + dt.timedelta(minutes=minutes),
            )
        )
    out = translate(files, tmp_path / "out.h5", series="time")
    h5, main = open_main(out)
    with h5:
        (dim,) = dims_of(main, "Position")
        assert (dim.name, dim.units) == ("Time", "s")
        assert_array_equal(dim.values, [0.0, 120.0, 300.0])
        with h5py.File(files[1]) as src:  # the earliest start: t_1.h5
            assert_array_equal(main[0].reshape(80, 120), src["entry_0000/measurement/data"][0])


def test_temperature_field_nested_series(tmp_path):
    titles = [f"s_{t}K_{b}mT" for b in (0, 100) for t in (10, 300)]  # field slow in files
    files, frames = field_series(tmp_path, titles, frames_per_file=1)
    out = translate(files, tmp_path / "out.h5", series="temperature,field")
    h5, main = open_main(out)
    with h5:
        data, dims = read_nd(main)
        assert [(d.name, len(d)) for d in dims[:2]] == [("Temperature", 2), ("Field", 2)]
        # titles were (10K,0), (300K,0), (10K,100), (300K,100): temperature slow now
        assert_array_equal(
            data[:, :, :, :].reshape(4, 80, 120), np.stack([frames[i][0] for i in (0, 2, 1, 3)])
        )


def test_split_acquisition_is_one_frame_series(tmp_path):
    frames = frames_with_ring(5, dtype=np.int32)
    a = write_lima(tmp_path / "acq_00000.h5", frames[:3])
    b = write_lima(tmp_path / "acq_00001.h5", frames[3:])
    out = translate([b, a], tmp_path / "out.h5")  # same title: one acquisition split in files
    h5, main = open_main(out)
    with h5:
        data, dims = read_nd(main)
        assert [(d.name, len(d)) for d in dims[:1]] == [("Frame", 5)]
        assert_array_equal(data, frames)


def test_aborted_acquisition_and_grid_snake(tmp_path, caplog, check_if_main):
    # a 3 × 4 snake raster planned in one file, aborted after 10 frames
    frames = frames_with_ring(12, dtype=np.int32)
    src = write_lima(tmp_path / "map.h5", frames, written=10)
    assert int(read_lima(src).written.sum()) == 10
    with caplog.at_level(logging.WARNING):
        out = translate(src, tmp_path / "out.h5", grid="Y=3,X=4", snake=True)
    assert "never written" in caplog.text
    h5, main = open_main(out)
    with h5:
        assert check_if_main(main)
        data, dims = read_nd(main)
        # row 1 ran backwards: positions (1, 0..3) hold frames 7, 6, 5, 4
        assert_array_equal(data[1], frames[[7, 6, 5, 4]])
        assert_array_equal(data[2, :2], frames[8:10])
        assert (data[2, 2:] == 0).all()  # never measured: zeros
        valid = main.parent["valid_positions"][()]
        assert_array_equal(valid, [True] * 10 + [False] * 2)
        assert attrs_of(h5)["snake"] and attrs_of(h5)["missing_positions"] == 2
    # the same scan with the motor read-backs of the 10 measured frames (the scan log's rows):
    # the snake and the aborted row are recognised from the positions themselves
    ys, xs = np.meshgrid([0.0, 0.5, 1.0], [2.0, 2.1, 2.2, 2.3], indexing="ij")
    xs[1] = xs[1][::-1]
    csv = tmp_path / "positions.csv"
    rows = [f"{y},{x}" for y, x in zip(ys.ravel()[:10], xs.ravel()[:10], strict=True)]
    csv.write_text("Y[mm],X[mm]\n" + "\n".join(rows) + "\n")
    out = translate(src, tmp_path / "csv.h5", positions=csv)
    with h5py.File(out) as h5:
        (main,) = main_datasets(h5)
        data, dims = read_nd(main)
        assert [(d.name, d.units, len(d)) for d in dims[:2]] == [("Y", "mm", 3), ("X", "mm", 4)]
        assert_array_equal(data[1], frames[[7, 6, 5, 4]])
        assert_array_equal(main.parent["valid_positions"][()], [True] * 10 + [False] * 2)


def test_monitor_from_scalers(tmp_path):
    files, frames = field_series(tmp_path, ["s_10mT", "s_20mT"], frames_per_file=3)
    scalers = []
    for k in range(2):
        path = tmp_path / f"scalers_{k}.h5"
        with h5py.File(path, "w") as h5:
            mcs = h5.create_group("entry_0000/TRUSAXS/MCS")
            mcs["Intensity1UnCor"] = np.arange(3.0) + 10 * (k + 1)
            mcs["Intensity1ShutCor"] = np.arange(3.0) + 100 * (k + 1)
        scalers.append(path)
    with pytest.raises(InputError, match="pass monitor=NAME .*Intensity1ShutCor, Intensity1UnCor"):
        translate(files, tmp_path / "out.h5", scalers=scalers)
    out = translate(files, tmp_path / "out.h5", scalers=scalers, monitor="Intensity1UnCor")
    with h5py.File(out) as h5:
        monitor = h5["Measurement_000/Channel_000/Monitor"]
        assert_array_equal(monitor[()], [10, 11, 12, 20, 21, 22])
        assert "scalers_0.h5:/entry_0000/TRUSAXS/MCS/Intensity1UnCor" in monitor.attrs["source"]


def test_monitor_from_header_key(tmp_path):
    files, _ = field_series(tmp_path, ["s_10mT", "s_20mT"], frames_per_file=1)
    with h5py.File(files[0], "a") as h5:
        h5["entry_0000/ESRF-ID02/eiger2/header/HSI1_value"] = "1234.5"
    with h5py.File(files[1], "a") as h5:
        h5["entry_0000/ESRF-ID02/eiger2/header/HSI1_value"] = "99"
    out = translate(files, tmp_path / "out.h5", monitor="HSI1_value")
    with h5py.File(out) as h5:
        assert_array_equal(h5["Measurement_000/Channel_000/Monitor"][()], [1234.5, 99.0])
    with pytest.raises(InputError, match=r"scan_1\.h5: no monitor 'nope'.*Title"):
        translate(files, tmp_path / "o2.h5", monitor="nope")


# --------------------------------------------------------------------------- bad input


def test_truncated_and_foreign_files(tmp_path):
    src = write_lima(tmp_path / "a.h5", frames_with_ring(3, dtype=np.int32))
    data = src.read_bytes()
    cut = tmp_path / "cut.h5"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(FileFormatError, match=r"cut\.h5: not an HDF5 file h5py can open"):
        translate(cut, tmp_path / "o.h5", format="id02")
    foreign = tmp_path / "other.h5"
    with h5py.File(foreign, "w") as h5:
        h5["x"] = np.zeros(3)
    with pytest.raises(FileFormatError, match=r"other\.h5: no LIMA detector data"):
        translate([src, foreign], tmp_path / "o.h5", format="id02")
    assert not (tmp_path / "o.h5").exists()
    text = tmp_path / "notes.h5"
    text.write_text("not hdf5")
    with pytest.raises(InputError, match=r"no installed translator reads .*notes\.h5.*--format"):
        translate(text, tmp_path / "o.h5")


def test_truncated_chunk_data(tmp_path):
    # a file whose end (the last frames' chunks) was lost after the metadata was written
    frames = frames_with_ring(6, dtype=np.int32)
    src = write_lima(tmp_path / "a.h5", frames)
    with h5py.File(src) as h5:
        dset = h5["entry_0000/ESRF-ID02/eiger2/data"]
        last = dset.id.get_chunk_info(5)
    raw = bytearray(src.read_bytes())
    raw[last.byte_offset : last.byte_offset + last.size] = b"\xff" * last.size  # torn chunk
    src.write_bytes(bytes(raw))
    with pytest.raises(FileFormatError, match=r"a\.h5: frame 5 cannot be read"):
        translate(src, tmp_path / "o.h5")
    assert not (tmp_path / "o.h5").exists()
    assert list(tmp_path.glob(".o.h5*")) == []  # bad input: no partial file kept


def test_header_missing_geometry_key(tmp_path):
    src = write_lima(
        tmp_path / "a.h5",
        frames_with_ring(1, dtype=np.int32),
        header=geometry_header(WaveLength=None),
    )
    with pytest.raises(
        InputError, match=r"a\.h5: the ESRF header gives .* but not WaveLength.*--poni"
    ):
        translate(src, tmp_path / "o.h5")
    out = translate(src, tmp_path / "o.h5", header_geometry=False)
    with h5py.File(out) as h5:
        assert "geometry" not in attrs_of(h5)


def test_inconsistent_files(tmp_path):
    a = write_lima(
        tmp_path / "a.h5",
        frames_with_ring(1, dtype=np.int32),
        header=geometry_header(Title="s_1mT"),
    )
    b = write_lima(
        tmp_path / "b.h5",
        frames_with_ring(1, shape=(80, 100), dtype=np.int32),
        header=geometry_header(Title="s_2mT"),
    )
    with pytest.raises(
        InputError, match=r"b\.h5: frames of shape \(80, 100\); the first file \(a\.h5\)"
    ):
        translate([a, b], tmp_path / "o.h5")
    c = write_lima(
        tmp_path / "c.h5",
        frames_with_ring(1, dtype=np.int32),
        header=geometry_header(Title="s_3mT", SampleDistance="3.0"),
    )
    # issue 15: a distance series is recorded per position (it was refused)
    out = translate([a, c], tmp_path / "series.h5")
    with h5py.File(out, "r") as h5:
        assert json.loads(h5["Measurement_000"].attrs["geometry_varies"]) == ["dist"]
        dist = h5["Measurement_000/Channel_000/Geometry_dist"][()]
    assert dist.tolist() == [2.0, 3.0]
    d = write_lima(
        tmp_path / "d.h5", frames_with_ring(1, dtype=np.int32), header=geometry_header(Title="s_x")
    )
    with pytest.raises(InputError, match=r"d\.h5: no field in its title 's_x' or its name"):
        translate([d], tmp_path / "o.h5", series="field")


def test_nexus_nxsas_file_is_not_id02(tmp_path):
    """An NXsas file is refused by the ID02 reader (named, with the format that reads it) and
    auto-detection sends it to the NeXus translator, which keeps its geometry and time axis."""
    from nexus_files import FRAME_PERIOD_S, write_nxsas

    fields = {
        "distance": (1.5, "m"),
        "x_pixel_size": (172.0, "um"),
        "y_pixel_size": (172.0, "um"),
        "beam_center_x": (21.5, "pixel"),
        "beam_center_y": (17.25, "pixel"),
    }
    # a detector 'header' collection that is not an ESRF header (no ESRF keys)
    src = write_nxsas(tmp_path / "sas.nxs", fields, header={"comment": "beamtime 42"})
    with pytest.raises(FileFormatError, match=r"sas\.nxs: .*NeXus NXsas file.*--format nexus"):
        translate(src, tmp_path / "o.h5", format="id02")
    assert not (tmp_path / "o.h5").exists()
    assert not ID02Translator().can_read(src)
    assert guess_translator(src).name == "nexus"
    out = translate(src, tmp_path / "o.h5")
    h5, main = open_main(out)
    with h5:
        (time,) = dims_of(main, "Position")
        assert (time.name, time.units) == ("time", "s")
        assert_allclose(time.values, np.arange(3) * FRAME_PERIOD_S)
        assert "geometry" in attrs_of(h5)
        assert attrs_of(h5)["translator"] == "nexus"
