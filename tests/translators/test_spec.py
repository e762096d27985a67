"""The SPEC translator: tiny inline SPEC texts (silx ``io/test/test_specfile.py`` style) and the
real APS and BioCAT files in the reference data folder ($PYSCATTER_TEST_DATA).

Every file written is reopened with pyUSID ``check_if_main``; positions, spectra and counters are
compared with the numbers written into the inline texts (or read from the real file's text).
"""

import json
import logging
import os

import h5py
import numpy as np
import pyFAI
import pytest
from fabio.edfimage import EdfImage
from numpy.testing import assert_allclose, assert_array_equal

from pyscatter.errors import ExistingResultsError, FileFormatError, InputError
from pyscatter.io.usid import dims_of, main_datasets, read_nd
from pyscatter.translators import guess_translator, translate
from pyscatter.translators.nexus import fit2d_geometry
from pyscatter.translators.spec import SpecTranslator, read_scan, scan_keys

HEADER = """#F demo.spec
#E 1455178535
#D Thu Feb 11 09:15:35 2016
#C demo  User = opid00
#O0 samy  samz  energy
#o0 sy sz en
"""

# mesh: sz (first motor) moves fastest: 3 × sz, 2 × sy; read-backs jitter by 1e-3
MESH = """
#S 1  mesh  sz 0 1 2  sy 0 2 1  0.1
#D Thu Feb 11 09:16:35 2016
#P0 0 0 8
#N 4
#L samz  samy  I0  det
0.001 0 100 1
0.5 -0.001 101 2
1 0 102 3
0 2.001 103 4
0.499 2 104 5
1 2 105 6
"""

# ascan of en (name "energy") with one calibrated MCA per point
MCA = """
#S 2  ascan  en 8 9 2 1
#D Thu Feb 11 09:17:35 2016
#P0 0 0 8
#@MCA 16C
#@CHANN 4 0 3 1
#@CALIB 1.5 0.01 0.001
#N 3
#L energy  I0  det
8 100 1
@A 1 2 3 4
8.5 100 1
@A 5 6 7 8
9 100 1
@A 9 10 11 12
"""

EMPTY = """
#S 3  ascan  en 8 9 2 1
#D Thu Feb 11 09:18:35 2016
#N 3
#L energy  I0  det
"""

TIMESCAN = """
#S 4  timescan 1 0
#N 3
#L Time  Epoch  I0  I0
0.0 10 5 7
1.5 11.5 6 8
"""

# two analysers per point (two @A lines), no calibration
TWO_MCAS = """
#S 5  dscan  sy -1 1 1 1
#N 2
#L samy  I0
-1 10
@A 1 2 3
@A 4 5 6
1 11
@A 7 8 9
@A 10 11 12
"""

# APS style: analysers numbered on their lines ('@A1', '@A2'), as in mca_spectra_example.dat
NUMBERED = """
#S 7  cscan  en 8 9 1 0
#N 2
#L energy  I0
8 10
@A1 0 2 3
@A2 4 0 6
9 11
@A1 7 0 9
@A2 0 11 12
"""

ABORTED = """
#S 6  mesh  sz 0 1 2  sy 0 2 1  0.1
#N 3
#L samz  samy  I0
0 0 1
0.5 0 2
1 0 3
0 2 4
0.5 2 5
#C Thu Feb 11 09:19:35 2016.  Scan aborted after 5 points.
"""


@pytest.fixture(scope="module")
def pyusid():
    return pytest.importorskip("pyUSID")


@pytest.fixture()
def spec_file(tmp_path):
    path = tmp_path / "demo.spec"
    path.write_text(HEADER + MESH + MCA + EMPTY + TIMESCAN + TWO_MCAS + ABORTED + NUMBERED)
    return path


def mains(path):
    h5 = h5py.File(path, "r")
    return h5, main_datasets(h5)


def check_all(pyusid, h5):
    found = main_datasets(h5)
    assert found
    for dset in found:
        assert pyusid.hdf_utils.check_if_main(dset), dset.name


# --------------------------------------------------------------------------- positions


def test_mesh_grid_slow_fast(spec_file, tmp_path, pyusid):
    out = translate(spec_file, tmp_path / "mesh.h5", format="spec", scan=1, monitor="I0")
    h5, (main,) = mains(out)
    with h5:
        check_all(pyusid, h5)
        data, dims = read_nd(main)
        pos = dims_of(main, "Position")
        # the second motor of the command (sy → samy) is the slow dim, sz → samz the fast one
        assert [d.name for d in pos] == ["samy", "samz"]
        assert_allclose(pos[0].values, [0, 2], atol=1e-3)  # level means of the read-backs
        assert_allclose(pos[1].values, [0, 0.5, 1], atol=1e-3)
        values = h5[main.attrs["Position_Values"]][()]
        assert_array_equal(values[:, 1], [0.001, 0.5, 1, 0, 0.499, 1])  # read-backs kept exactly
        assert_array_equal(values[:, 0], [0, -0.001, 0, 2.001, 2, 2])
        # no MCA, no images: the counters are the main dataset, and kept as Counters/<name>
        assert [d.name for d in dims_of(main, "Spectroscopic")] == ["Counter"]
        assert json.loads(main.parent.attrs["counter_names"]) == ["samz", "samy", "I0", "det"]
        assert_array_equal(data[..., 2], [[100, 101, 102], [103, 104, 105]])
        assert_array_equal(main.parent["Counters/det"][()], [1, 2, 3, 4, 5, 6])
        meas = h5["Measurement_000"]
        assert meas.attrs["spec_scan"] == "1.1"
        assert meas.attrs["spec_command"] == "mesh  sz 0 1 2  sy 0 2 1  0.1"
        assert meas.attrs["monitor"] == "Counters/I0"
        assert json.loads(meas.attrs["sources"])[0]["name"] == "demo.spec"


def test_aborted_mesh_keeps_complete_rows(spec_file, tmp_path, caplog, pyusid):
    with caplog.at_level(logging.WARNING):
        out = translate(spec_file, tmp_path / "ab.h5", format="spec", scan=6)
    assert "aborted mesh, 5 of 6 points" in caplog.text
    h5, (main,) = mains(out)
    with h5:
        check_all(pyusid, h5)
        assert [len(d) for d in dims_of(main, "Position")] == [1, 3]
        assert h5["Measurement_000"].attrs["spec_points_dropped"] == 2
        assert_array_equal(main.parent["Counters/I0"][()], [1, 2, 3])


def test_time_scan(spec_file, tmp_path, pyusid):
    out = translate(spec_file, tmp_path / "t.h5", format="spec", scan="4.1")
    h5, (main,) = mains(out)
    with h5:
        check_all(pyusid, h5)
        (dim,) = dims_of(main, "Position")
        assert (dim.name, dim.units) == ("Time", "s")
        assert_array_equal(dim.values, [0.0, 1.5])
        # a repeated column name gets a suffix instead of hiding the first
        assert sorted(main.parent["Counters"]) == ["Epoch", "I0", "I0_2", "Time"]
        assert_array_equal(main.parent["Counters/I0_2"][()], [7, 8])


def test_motors_override(spec_file, tmp_path):
    out = translate(spec_file, tmp_path / "m.h5", format="spec", scan=1, motors="samy,samz")
    h5, (main,) = mains(out)
    with h5:
        assert [(d.name, len(d)) for d in dims_of(main, "Position")] == [("samy", 2), ("samz", 3)]
    with pytest.raises(InputError, match=r"no column 'nope'; its columns are: samz, samy"):
        translate(spec_file, tmp_path / "m2.h5", format="spec", scan=1, motors=["nope"])


# --------------------------------------------------------------------------- MCA


def test_mca_calibrated(spec_file, tmp_path, pyusid):
    out = translate(spec_file, tmp_path / "mca.h5", format="spec", scan=2, energy_unit="keV")
    h5, (main,) = mains(out)
    with h5:
        check_all(pyusid, h5)
        data, dims = read_nd(main)
        assert [d.name for d in dims] == ["energy", "Channel"]
        assert_array_equal(dims[0].values, [8, 8.5, 9])
        channel = dims[1]
        ch = np.arange(4)
        assert channel.units == "keV"
        assert_allclose(channel.values, 1.5 + 0.01 * ch + 0.001 * ch**2, rtol=1e-15)
        assert_array_equal(data, np.arange(1, 13).reshape(3, 4))
        assert main.dtype == np.int32  # integral counts stay integers
        assert json.loads(main.parent.attrs["mca_calibration"]) == [1.5, 0.01, 0.001]
        assert_array_equal(main.parent["Counters/I0"][()], [100, 100, 100])


def test_two_analysers_are_two_channels(spec_file, tmp_path, pyusid):
    out = translate(spec_file, tmp_path / "two.h5", format="spec", scan=5)
    h5, found = mains(out)
    with h5:
        check_all(pyusid, h5)
        assert [d.name for d in found] == [
            "/Measurement_000/Channel_000/Raw_Data",
            "/Measurement_000/Channel_001/Raw_Data",
        ]
        assert_array_equal(found[0][()], [[1, 2, 3], [7, 8, 9]])
        assert_array_equal(found[1][()], [[4, 5, 6], [10, 11, 12]])
        for k, dset in enumerate(found):
            (channel,) = dims_of(dset, "Spectroscopic")
            assert (channel.name, channel.units) == ("Channel", "channel")
            assert dset.parent.attrs["mca_index"] == k
            assert dset.parent.attrs["mca_calibration"] == "none"
            assert_array_equal(dims_of(dset, "Position")[0].values, [-1, 1])


def test_numbered_analyser_lines(spec_file, tmp_path):
    out = translate(spec_file, tmp_path / "num.h5", format="spec", scan=7)
    h5, found = mains(out)
    with h5:
        assert_array_equal(found[0][()], [[0, 2, 3], [7, 0, 9]])
        assert_array_equal(found[1][()], [[4, 0, 6], [0, 11, 12]])
        assert_array_equal(dims_of(found[0], "Position")[0].values, [8, 9])  # en → energy


# --------------------------------------------------------------------------- several scans


def test_several_scans_are_measurements(spec_file, tmp_path, pyusid):
    out = translate(spec_file, tmp_path / "s.h5", format="spec", scans=[2, 1])
    with h5py.File(out, "r") as h5:
        check_all(pyusid, h5)
        assert sorted(h5) == ["Measurement_000", "Measurement_001"]
        assert h5["Measurement_000"].attrs["spec_scan"] == "2.1"  # in the order asked
        assert h5["Measurement_001"].attrs["spec_scan"] == "1.1"
        assert json.loads(h5.attrs["spec_scans"]) == ["2.1", "1.1"]
        for name in ("Measurement_000", "Measurement_001"):
            assert h5[name].attrs["translator"] == "spec"
            assert "Counters" in h5[name]["Channel_000"]


def test_all_scans_skip_empty_ones(spec_file, tmp_path, caplog, pyusid):
    with caplog.at_level(logging.WARNING):
        out = translate(spec_file, tmp_path / "all.h5", format="spec", scans="all")
    assert "scan 3.1 (ascan  en 8 9 2 1): the scan has no data lines (skipped)" in caplog.text
    with h5py.File(out, "r") as h5:
        check_all(pyusid, h5)
        scans = [h5[m].attrs["spec_scan"] for m in sorted(h5)]
        assert scans == ["1.1", "2.1", "4.1", "5.1", "6.1", "7.1"]
        assert json.loads(h5.attrs["spec_skipped_scans"]) == ["3.1"]


def test_errors_name_file_and_scan(spec_file, tmp_path):
    out = tmp_path / "e.h5"
    with pytest.raises(FileFormatError, match=r"demo\.spec: scan 3\.1 \(ascan.*no data lines"):
        translate(spec_file, out, format="spec", scan=3)
    with pytest.raises(FileFormatError, match=r"scan 3\.1.*no data lines"):
        translate(spec_file, out, format="spec", scans=[1, 3])
    with pytest.raises(InputError, match=r"demo\.spec: no scan 9; its scans are 1\.1, 2\.1"):
        translate(spec_file, out, format="spec", scan=9)
    with pytest.raises(InputError, match="not both"):
        translate(spec_file, out, format="spec", scan=1, scans=[2])
    with pytest.raises(InputError, match="monitor 'I9' is not a column"):
        translate(spec_file, out, format="spec", scan=1, monitor="I9")
    with pytest.raises(InputError, match="format 'spec' takes no option 'frames'"):
        translate(spec_file, out, format="spec", frames=np.zeros((1, 2, 2)))
    with pytest.raises(InputError, match="unknown format 'specfile'; installed formats: "):
        translate(spec_file, out, format="specfile")
    assert not out.exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
    bad = tmp_path / "bad.spec"
    bad.write_text(HEADER + "\n#S 1  ascan  en 0 1 1 1\n#N 3\n#L a  b  c\n1 2\n3 4\n")
    with pytest.raises(
        FileFormatError, match=r"bad\.spec: scan 1\.1.*2 values per data line for 3"
    ):
        translate(bad, out, format="spec", scan=1)
    out.write_text("x")
    with pytest.raises(ExistingResultsError):
        translate(spec_file, out, format="spec", scan=1)


def test_can_read_and_guess(spec_file, tmp_path):
    spec = SpecTranslator()
    assert spec.can_read(spec_file)
    plain = tmp_path / "notes.dat"
    plain.write_text("### DATA:\n1 2 3\n")
    assert not spec.can_read(plain)
    assert not spec.can_read(tmp_path / "missing.spec")
    binary = tmp_path / "b.spec"
    binary.write_bytes(b"#F \x00\x01")
    assert not spec.can_read(binary)
    bare = tmp_path / "run_log"  # SPEC files often have no suffix (BioCAT's log)
    bare.write_text(spec_file.read_text())
    assert guess_translator(bare).name == "spec"
    assert scan_keys(spec_file) == ["1.1", "2.1", "3.1", "4.1", "5.1", "6.1", "7.1"]


# --------------------------------------------------------------------------- images per point


def test_image_pattern(spec_file, tmp_path, pyusid):
    rng = np.random.default_rng(3)
    frames = rng.integers(0, 1000, size=(6, 5, 4)).astype(np.int32)
    folder = spec_file.parent / "img"
    folder.mkdir()
    for point, frame in enumerate(frames):
        EdfImage(data=frame).write(str(folder / f"demo_s{1:03d}_{point:04d}.edf"))
    out = translate(
        spec_file,
        tmp_path / "img.h5",
        format="spec",
        scan=1,
        image_pattern="img/{file}_s{scan:03d}_{point:04d}.edf",
        flip="lr",
    )
    h5, (main,) = mains(out)
    with h5:
        check_all(pyusid, h5)
        data, dims = read_nd(main)
        assert [d.name for d in dims] == ["samy", "samz", "Row", "Col"]
        assert_array_equal(data.reshape(6, 5, 4), frames[:, :, ::-1])
        meas = h5["Measurement_000"]
        assert meas.attrs["flip"] == "lr"
        assert meas.attrs["image_pattern"] == "img/{file}_s{scan:03d}_{point:04d}.edf"
        names = [r["name"] for r in json.loads(meas.attrs["sources"])]
        assert names == ["demo.spec"] + [f"demo_s001_{p:04d}.edf" for p in range(6)]
        assert_array_equal(main.parent["Counters/I0"][()], [100, 101, 102, 103, 104, 105])

    # a column as placeholder (the image number written in the det column), with a geometry
    for point, frame in enumerate(frames):
        EdfImage(data=frame).write(str(folder / f"n{point + 1}.edf"))
    poni = fit2d_geometry(
        distance_mm=100,
        center_x=1.5,
        center_y=2.5,
        pixel_x_um=100,
        pixel_y_um=100,
        wavelength_angstrom=1.0,
        frame_shape=(5, 4),
    )
    out = translate(
        spec_file,
        tmp_path / "img2.h5",
        format="spec",
        scan=1,
        image_pattern="img/n{det}.edf",
        poni=poni,
    )
    h5, (main,) = mains(out)
    with h5:
        assert_array_equal(main[()].reshape(6, 5, 4), frames)
        geometry = json.loads(h5["Measurement_000"].attrs["geometry"])
    # every pixel's q from the recorded geometry equals the one given
    assert_allclose(
        pyFAI.load(geometry).qArray((5, 4)), pyFAI.load(poni).qArray((5, 4)), rtol=1e-12
    )


def test_image_pattern_errors(spec_file, tmp_path):
    out = tmp_path / "x.h5"
    with pytest.raises(InputError, match=r"unknown placeholder 'frame'.*samz, samy, I0, det"):
        translate(spec_file, out, format="spec", scan=1, image_pattern="{frame}.edf")
    with pytest.raises(FileFormatError, match=r"scan 1\.1: 6 of 6 images missing, first .*p0\.edf"):
        translate(spec_file, out, format="spec", scan=1, image_pattern="p{point}.edf")
    with pytest.raises(InputError, match="give image_pattern too"):
        translate(spec_file, out, format="spec", scan=1, flip="lr")
    assert not out.exists()


def test_read_scan_api(spec_file):
    scan = read_scan(spec_file, 2)
    assert (scan.key, scan.kind, scan.n_points) == ("2.1", "ascan", 3)
    assert scan.labels == ["energy", "I0", "det"]
    assert scan.mcas[0].calibration == (1.5, 0.01, 0.001)


# --------------------------------------------------------------------------- real files


@pytest.mark.realdata
def test_aps_ascan(shared_data, tmp_path, pyusid):
    """APS USAXS file: scan 2 is 'ascan m2rp …' and its column is named 'USAXS.m2rp' (#o/#O)."""
    path = shared_data / "spec" / "APS_spec_data.dat"
    out = translate(path, tmp_path / "aps.h5", format="spec", scans=[1, 2], monitor="I0")
    lines = path.read_text().splitlines()
    start = lines.index("#S 2  ascan  m2rp 1.9475 2.9475  40 0.2")
    first = next(ln for ln in lines[start:] if ln and not ln.startswith("#"))
    with h5py.File(out, "r") as h5:
        check_all(pyusid, h5)
        m1 = main_datasets(h5["Measurement_000"])[0]
        m2 = main_datasets(h5["Measurement_001"])[0]
        (d1,) = dims_of(m1, "Position")
        (d2,) = dims_of(m2, "Position")
        assert (d1.name, len(d1)) == ("mr", 31)  # 30 intervals
        assert (d2.name, len(d2)) == ("USAXS.m2rp", 41)
        # the first data line of scan 2, as text: its first column is the position, and the
        # Monitor column is kept among the counters
        values = [float(v) for v in first.split()]
        assert d2.values[0] == values[0]
        labels = json.loads(h5["Measurement_001"].attrs["counters"])
        assert m2.parent["Counters/Monitor"][0] == values[labels.index("Monitor")]
        assert h5["Measurement_001"].attrs["monitor"] == "Counters/I0"
        assert "I0_2" in m2.parent["Counters"]  # the file's #L names I0 twice


@pytest.mark.realdata
def test_aps_mca_spectra(shared_data, tmp_path, pyusid):
    """Four SDD analysers (@A1 … @A4) per point of a cscan of the energy (mnemonic 'en')."""
    path = shared_data / "spec" / "mca_spectra_example.dat"
    out = translate(path, tmp_path / "mca.h5", format="spec", scan=1, monitor="I0")
    lines = path.read_text().splitlines()
    first_a = [ln for ln in lines[:40] if ln.startswith("@A")]
    with h5py.File(out, "r") as h5:
        check_all(pyusid, h5)
        found = main_datasets(h5)
        assert len(found) == 4
        for k, dset in enumerate(found):
            # 256 channels: the '@A1' … '@A4' line numbers are not a channel (see the inline test)
            assert dset.shape == (1353, 256)
            (dim,) = dims_of(dset, "Position")
            assert dim.name == "Energy"  # mnemonic en → motor name Energy
            # the first spectrum of each analyser, against the text of the file
            assert_array_equal(dset[0], [int(v) for v in first_a[k].split()[1:]])
        assert_allclose(dim.values[:2], [690.02208, 690.04547])


@pytest.mark.realdata
def test_biocat_run_log_with_images(shared_data, tmp_path, pyusid):
    """BioCAT's SPEC-style log: 'tseries 20 1', one image per point named <log>_<scan>_<point>.

    Only point 0's image is in the data folder: the test links it 20 times into tmp_path.
    """
    folder = shared_data / "bioxtasraw"
    (tmp_path / "GI2_A9_19").symlink_to(folder / "GI2_A9_19")
    for point in range(20):
        os.symlink(folder / "GI2_A9_19_001_0000.tiff", tmp_path / f"GI2_A9_19_001_{point:04d}.tiff")
    out = translate(
        tmp_path / "GI2_A9_19",
        tmp_path / "biocat.h5",
        scan=1,
        image_pattern="{file}_{scan:03d}_{point:04d}.tiff",
        flip="lr",
        monitor="diode",
    )
    import fabio

    frame = fabio.open(str(folder / "GI2_A9_19_001_0000.tiff")).data
    with h5py.File(out, "r") as h5:
        check_all(pyusid, h5)
        (main,) = main_datasets(h5)
        (dim,) = dims_of(main, "Position")
        assert (dim.name, dim.units, len(dim)) == ("Time", "s", 20)
        assert_allclose(dim.values[[0, 1, -1]], [5.9604645e-06, 1.0509529, 19.951424])
        assert_array_equal(main[19].reshape(frame.shape), np.fliplr(frame))
        assert_array_equal(main.parent["Counters/diode"][:3], [39391, 39417, 39737])
        assert h5["Measurement_000"].attrs["spec_command"] == "tseries 20 1"


# --------------------------------------------------------------------------- integrity (issue 20)


def test_spectrum_cut_short_is_refused(tmp_path):
    """A file cut inside a spectrum: never a shorter spectrum; the error names file, scan, point."""
    one_point = HEADER + MCA[: MCA.index("8.5 100 1")].replace("@A 1 2 3 4", "@A 1 2")
    path = tmp_path / "cut.spec"
    path.write_text(one_point)
    with pytest.raises(
        FileFormatError,
        match=r"cut\.spec: scan 2\.1 \(ascan.*point 0 of 1: MCA spectrum 1 of 1.*has 2 channels; "
        r"#@CHANN says 4.*cut",
    ):
        translate(path, tmp_path / "cut.h5", format="spec", scan=2)
    cut_last = HEADER + MCA.rstrip("\n")[:-4]  # '@A 9 10 11 12' → '@A 9 10 1'
    path.write_text(cut_last)
    with pytest.raises(FileFormatError, match=r"point 2 of 3: MCA spectrum 1 of 1.*has 3 channels"):
        translate(path, tmp_path / "cut.h5", format="spec", scan=2)
    assert not (tmp_path / "cut.h5").exists()


@pytest.mark.realdata
def test_real_spec_file_cut_mid_spectrum(shared_data, tmp_path):
    lines = (shared_data / "spec" / "mca_spectra_example.dat").read_text().splitlines()
    last = max(i for i, ln in enumerate(lines[:6794]) if ln.startswith("@A4"))
    path = tmp_path / "cut.dat"
    path.write_text("\n".join(lines[:last]) + "\n" + lines[last][:200])
    with pytest.raises(
        FileFormatError,
        match=r"cut\.dat: scan 1\.1 .*point 1352 of 1353: MCA spectrum 4 of 4 \(@A line\) has "
        r"\d+ channels; the others have 257",
    ):
        translate(path, tmp_path / "cut.h5", format="spec", scan=1)


def test_spectra_use_gzip_readable_without_plugins(spec_file, tmp_path):
    """MCA spectra asked for as bslz4 are stored with gzip: plain h5py reads them (issue 19.7)."""
    import subprocess
    import sys

    out = translate(spec_file, tmp_path / "mca.h5", format="spec", scan=2, compression="bslz4")
    with h5py.File(out, "r") as h5:
        raw = h5["Measurement_000/Channel_000/Raw_Data"]
        assert raw.compression == "gzip" and raw.attrs["compression"] == "gzip"
    code = (
        "import h5py, json; "
        f"d = h5py.File({str(out)!r}, 'r')['Measurement_000/Channel_000/Raw_Data'][()]; "
        "print(json.dumps(d.ravel().tolist()))"
    )
    env = {k: v for k, v in os.environ.items() if k != "HDF5_PLUGIN_PATH"}
    env["PYTHONPATH"] = ""
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    )
    assert json.loads(done.stdout) == list(range(1, 13))


def test_spectra_open_as_curves_in_silx(spec_file, tmp_path):
    """The file's @default shows the MCA spectra over the scan, as curves (issue 19.7)."""
    from silx.io.nxdata import get_default

    out = translate(spec_file, tmp_path / "mca.h5", format="spec", scan=2, energy_unit="keV")
    with h5py.File(out, "r") as h5:
        nx = get_default(h5)
        assert nx.is_valid and nx.is_curve and nx.interpretation == "spectrum"
        assert nx.signal.shape == (3, 4)  # (energy, Channel)
        assert_array_equal(nx.signal[()], np.arange(1, 13).reshape(3, 4))
        assert_allclose(nx.axes[1][()], 1.5 + 0.01 * np.arange(4) + 0.001 * np.arange(4) ** 2)
