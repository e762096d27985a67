"""The NeXus / HDF5 translator: NXdata found through @default, datasets with axes, and Dectris
Eiger master files whose frames live in external data files.

The files are written here with h5py, laid out as the instruments write them (the Eiger master and
data files follow the Dectris SIMPLON layout: ``/entry/data/data_000001`` external links to
``<prefix>_data_000001.h5:/entry/data/data``, bitshuffle-LZ4 chunks of one frame, the detector
fields under ``/entry/instrument/detector`` and the wavelength under ``…/beam``). fabio's
``EigerImage`` is the independent reader the frames are compared with.
"""

import json

import fabio
import h5py
import hdf5plugin
import numpy as np
import pyFAI
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from pyscatter.errors import ExistingResultsError, FileFormatError, InputError
from pyscatter.io.usid import dims_of, main_datasets, read_nd
from pyscatter.translators import guess_translator, translate
from pyscatter.translators.nexus import NexusTranslator, fit2d_geometry

SHAPE = (16, 12)  # rows, cols: small frames keep the tests fast


@pytest.fixture(scope="module")
def pyusid():
    return pytest.importorskip("pyUSID")


def frames_of(n, seed=0, dtype=np.uint32):
    return np.random.default_rng(seed).integers(0, 1000, size=(n, *SHAPE)).astype(dtype)


def nx_group(parent, name, nx_class):
    group = parent.create_group(name)
    group.attrs["NX_class"] = nx_class
    return group


def open_main(path):
    h5 = h5py.File(path, "r")
    (main,) = main_datasets(h5)
    return h5, main


# --------------------------------------------------------------------------- NXdata / @default


def write_nxdata_map(path, frames, y, x):
    """A NeXus map: /entry/map NXdata, signal (Y, X, rows, cols), axes y, x, @default chain."""
    with h5py.File(path, "w") as h5:
        h5.attrs["default"] = "entry"
        entry = nx_group(h5, "entry", "NXentry")
        entry.attrs["default"] = "map"
        data = nx_group(entry, "map", "NXdata")
        data.attrs["signal"] = "frames"
        data.attrs["axes"] = ["y", "x", ".", "."]
        data.create_dataset("frames", data=frames)
        data.create_dataset("y", data=y).attrs["units"] = "mm"
        data.create_dataset("x", data=x).attrs["units"] = "mm"


def test_default_nxdata_with_axes(tmp_path, pyusid):
    frames = frames_of(6).reshape(2, 3, *SHAPE)
    src = tmp_path / "map.nxs"
    write_nxdata_map(src, frames, [0.5, 1.5], [10.0, 20.0, 30.0])
    assert guess_translator(src).name == "nexus"
    out = translate(src, tmp_path / "map.h5")
    h5, main = open_main(out)
    with h5:
        assert pyusid.hdf_utils.check_if_main(main)
        data, dims = read_nd(main)
        assert_array_equal(data, frames)
        assert [(d.name, d.units) for d in dims] == [
            ("y", "mm"),
            ("x", "mm"),
            ("Row", "pixel"),
            ("Col", "pixel"),
        ]
        assert_array_equal(dims[0].values, [0.5, 1.5])
        assert_array_equal(dims[1].values, [10, 20, 30])
        meas = h5["Measurement_000"]
        assert meas.attrs["nexus_signal"] == f"{src}:/entry/map/frames"
        assert meas.attrs["positions_source"] == "NXdata @axes of /entry/map"
        assert meas.attrs["geometry_source"] == "none"
        assert "geometry" not in meas.attrs  # no detector fields in this file


def test_spectra_signal(tmp_path, pyusid):
    spectra = np.arange(5 * 7, dtype=np.float32).reshape(5, 7)
    src = tmp_path / "xrf.h5"
    with h5py.File(src, "w") as h5:
        h5.attrs["default"] = "entry"
        entry = nx_group(h5, "entry", "NXentry")
        entry.attrs["default"] = "data"
        data = nx_group(entry, "data", "NXdata")
        data.attrs["signal"] = "counts"
        data.attrs["axes"] = ["energy", "."]
        data["counts"] = spectra
        data["energy"] = np.linspace(8, 9, 5)
    out = translate(src, tmp_path / "xrf_usid.h5")
    h5, main = open_main(out)
    with h5:
        assert pyusid.hdf_utils.check_if_main(main)
        data, dims = read_nd(main)
        assert [d.name for d in dims] == ["energy", "Channel"]
        assert_array_equal(data, spectra)
        assert h5["Measurement_000"].attrs["kind"] == "spectrum"


def test_dataset_with_readback_axes(tmp_path, pyusid):
    """A flat stack plus one motor read-back per frame: the 2 × 3 grid is inferred."""
    frames = frames_of(6, seed=1, dtype=np.uint16)
    y = np.repeat([0.0, 1.0], 3) + [0.001, -0.002, 0, 0, 0.002, -0.001]
    x = np.tile([0.0, 5.0, 10.0], 2) + [0, 0.01, -0.01, 0.02, 0, 0]
    src = tmp_path / "raw.h5"
    with h5py.File(src, "w") as h5:
        h5["/scan/detector/data"] = frames
        h5["/scan/positioners/samy"] = y
        h5["/scan/positioners/samx"] = x
    out = translate(
        src,
        tmp_path / "o.h5",
        format="nexus",
        dataset="/scan/detector/data",
        axes={"Y[mm]": "/scan/positioners/samy", "X[mm]": "/scan/positioners/samx"},
    )
    h5, main = open_main(out)
    with h5:
        assert pyusid.hdf_utils.check_if_main(main)
        data, dims = read_nd(main)
        assert [(d.name, d.units, len(d)) for d in dims[:2]] == [("Y", "mm", 2), ("X", "mm", 3)]
        assert_allclose(dims[1].values, [0.01, 5.005, 9.995], atol=1e-12)  # level means
        assert_array_equal(h5[main.attrs["Position_Values"]][()], np.stack([y, x], axis=1))
        assert_array_equal(data.reshape(6, *SHAPE), frames)


def test_grid_and_kind_options(tmp_path):
    src = tmp_path / "stack.h5"
    frames = frames_of(4, seed=2, dtype=np.int32)
    with h5py.File(src, "w") as h5:
        h5["data"] = frames
        h5["one"] = frames[0]
    out = translate(src, tmp_path / "g.h5", dataset="/data", grid="Y=2,X=2", format="nexus")
    h5, main = open_main(out)
    with h5:
        assert [(d.name, len(d)) for d in dims_of(main, "Position")] == [("Y", 2), ("X", 2)]
        assert_array_equal(main[()].reshape(4, *SHAPE), frames)
    # a 2-D dataset is a stack of spectra unless asked (or @interpretation says) otherwise
    out = translate(src, tmp_path / "one.h5", dataset="/one", kind="image", format="nexus")
    h5, main = open_main(out)
    with h5:
        assert main.shape == (1, SHAPE[0] * SHAPE[1])
        assert_array_equal(main[0].reshape(SHAPE), frames[0])
    with pytest.raises(InputError, match="grid Y=3 × X=2 has 6 positions but there are 4 images"):
        translate(src, tmp_path / "bad.h5", dataset="/data", grid="Y=3,X=2", format="nexus")
    with pytest.raises(InputError, match="unsupported kind 'movie'"):
        translate(src, tmp_path / "bad.h5", dataset="/data", kind="movie", format="nexus")
    with pytest.raises(InputError, match=r"axes: sizes \{'X': 3\} fit neither"):
        translate(
            src, tmp_path / "bad.h5", dataset="/data", axes={"X": np.arange(3.0)}, format="nexus"
        )


# --------------------------------------------------------------------------- Eiger master


CENTRE_X, CENTRE_Y, DIST_M, PIXEL_M, WAVELENGTH_A = 5.5, 7.25, 0.25, 75e-6, 1.0332


def write_eiger(folder, frames, per_file=3, prefix="scan"):
    """A Dectris master file and its data files (external links), as the detector writes them."""
    master = folder / f"{prefix}_master.h5"
    pixel_mask = np.zeros(SHAPE, np.uint32)
    pixel_mask[0, :] = 1  # a gap row
    pixel_mask[5, 3] = 8  # a hot pixel
    with h5py.File(master, "w") as m:
        entry = nx_group(m, "entry", "NXentry")
        data = nx_group(entry, "data", "NXdata")
        inst = nx_group(entry, "instrument", "NXinstrument")
        beam = nx_group(inst, "beam", "NXbeam")
        beam.create_dataset("incident_wavelength", data=np.float32(WAVELENGTH_A)).attrs["units"] = (
            "angstrom"
        )
        det = nx_group(inst, "detector", "NXdetector")
        for name, value, unit in (
            ("beam_center_x", CENTRE_X, "pixel"),
            ("beam_center_y", CENTRE_Y, "pixel"),
            ("detector_distance", DIST_M, "m"),
            ("x_pixel_size", PIXEL_M, "m"),
            ("y_pixel_size", PIXEL_M, "m"),
            ("count_time", 0.1, "s"),
        ):
            det.create_dataset(name, data=np.float32(value)).attrs["units"] = unit
        det["description"] = b"Dectris EIGER2 Si 1M"
        spec = nx_group(det, "detectorSpecific", "NXcollection")
        spec["pixel_mask"] = pixel_mask
        spec["nimages"] = np.uint32(len(frames))
        spec["ntrigger"] = np.uint32(1)
        spec["x_pixels_in_detector"] = np.uint32(SHAPE[1])
        spec["y_pixels_in_detector"] = np.uint32(SHAPE[0])
        for k, start in enumerate(range(0, len(frames), per_file), start=1):
            stop = min(start + per_file, len(frames))
            name = f"{prefix}_data_{k:06d}.h5"
            with h5py.File(folder / name, "w") as f:
                dd = nx_group(nx_group(f, "entry", "NXentry"), "data", "NXdata")
                dset = dd.create_dataset(
                    "data",
                    data=frames[start:stop],
                    chunks=(1, *SHAPE),
                    **hdf5plugin.Bitshuffle(nelems=0, cname="lz4"),
                )
                dset.attrs["image_nr_low"] = np.uint64(start + 1)
                dset.attrs["image_nr_high"] = np.uint64(stop)
            data[f"data_{k:06d}"] = h5py.ExternalLink(name, "/entry/data/data")
    return master, pixel_mask


def test_eiger_master(tmp_path, pyusid):
    frames = frames_of(7, seed=4)
    master, pixel_mask = write_eiger(tmp_path, frames)
    with fabio.open(str(master)) as img:  # fabio's own Eiger reader, for reference
        reference = np.stack([img.getframe(i).data for i in range(img.nframes)])
    assert_array_equal(reference, frames)
    out = translate(master, tmp_path / "eiger.h5", grid="Y=7")
    h5, main = open_main(out)
    with h5:
        assert pyusid.hdf_utils.check_if_main(main)
        assert_array_equal(main[()].reshape(7, *SHAPE), reference)
        assert main.dtype == np.uint32
        assert_array_equal(main.parent["Mask"][()], pixel_mask != 0)
        meas = h5["Measurement_000"]
        assert meas.attrs["geometry_source"] == "NeXus detector fields of /entry"
        assert meas.attrs["mask_source"] == "/entry/instrument/detector/detectorSpecific/pixel_mask"
        sources = [r["name"] for r in json.loads(meas.attrs["sources"])]
        assert sources == [
            "scan_master.h5",
            "scan_data_000001.h5",
            "scan_data_000002.h5",
            "scan_data_000003.h5",
        ]
        geometry = json.loads(meas.attrs["geometry"])
    # the same fields through pyFAI's setFit2D directly (float32 in the file, as Dectris writes)
    ref = pyFAI.load(
        fit2d_geometry(
            distance_mm=float(np.float32(DIST_M)) * 1e3,
            center_x=CENTRE_X,
            center_y=CENTRE_Y,
            pixel_x_um=float(np.float32(PIXEL_M)) * 1e6,
            pixel_y_um=float(np.float32(PIXEL_M)) * 1e6,
            wavelength_angstrom=float(np.float32(WAVELENGTH_A)),
            frame_shape=SHAPE,
        )
    )
    ai = pyFAI.load(geometry)
    # every pixel's q, as pyFAI computes it, from the stored geometry and from setFit2D
    assert_allclose(ai.qArray(SHAPE), ref.qArray(SHAPE), rtol=1e-12)
    f2d = ai.getFit2D()
    assert_allclose(
        [f2d["centerX"], f2d["centerY"], f2d["directDist"]], [5.5, 7.25, 250.0], rtol=1e-6
    )  # float32 storage of the fields
    assert_allclose(ai.wavelength, 1.0332e-10, rtol=1e-6)


def test_eiger_flip_mirrors_centre(tmp_path):
    frames = frames_of(2, seed=5)
    master, pixel_mask = write_eiger(tmp_path, frames, per_file=2)
    plain = translate(master, tmp_path / "plain.h5")
    flipped = translate(master, tmp_path / "lr.h5", flip="lr")
    with h5py.File(plain) as a, h5py.File(flipped) as b:
        main_a, main_b = main_datasets(a)[0], main_datasets(b)[0]
        assert_array_equal(main_b[1].reshape(SHAPE), np.fliplr(main_a[1].reshape(SHAPE)))
        assert_array_equal(b["Measurement_000/Channel_000/Mask"][()], np.fliplr(pixel_mask != 0))
        ai_a = pyFAI.load(json.loads(a["Measurement_000"].attrs["geometry"]))
        ai_b = pyFAI.load(json.loads(b["Measurement_000"].attrs["geometry"]))
    # a pixel and its mirror image see the same q
    assert_allclose(ai_b.qArray(SHAPE), np.fliplr(ai_a.qArray(SHAPE)), rtol=1e-6)


@pytest.mark.parametrize("link", [True, "vds"])
def test_eiger_zero_copy(tmp_path, link, pyusid):
    """Compressed chunks copied as stored, or a virtual dataset: the same frames, no decoding."""
    frames = frames_of(5, seed=7)
    master, _ = write_eiger(tmp_path, frames, per_file=2)
    out = translate(master, tmp_path / f"eiger_{link}.h5", link=link)
    h5, main = open_main(out)
    with h5:
        assert pyusid.hdf_utils.check_if_main(main)
        assert_array_equal(main[()].reshape(5, *SHAPE), frames)
        if link is True:
            with h5py.File(tmp_path / "scan_data_000001.h5") as src:
                stored = src["/entry/data/data"].id.read_direct_chunk((1, 0, 0))[1]
            assert main.id.read_direct_chunk((1, 0))[1] == stored  # the same bytes
            assert main.attrs["storage"] == "copied chunks"
        else:
            assert main.is_virtual
        assert "geometry" in h5["Measurement_000"].attrs
    with pytest.raises(InputError, match="cannot flip them"):
        translate(master, tmp_path / "x.h5", link=link, flip="lr")


def test_eiger_missing_data_file(tmp_path):
    master, _ = write_eiger(tmp_path, frames_of(5, seed=6), per_file=2)
    (tmp_path / "scan_data_000002.h5").unlink()
    out = tmp_path / "o.h5"
    with pytest.raises(
        FileFormatError,
        match=(
            r"scan_master\.h5: /entry/data/data_000002 links to scan_data_000002\.h5:/entry/data/data;"
            r" no such file .*scan_data_000002\.h5"
        ),
    ):
        translate(master, out)
    assert not out.exists()
    # asked for by path, the dangling link is named too
    with pytest.raises(
        FileFormatError,
        match=r"no dataset '/entry/data/data_000002' \(an "
        r"external link to scan_data_000002\.h5:/entry/data/data",
    ):
        translate(master, out, dataset="/entry/data/data_000002")


# --------------------------------------------------------------------------- errors


def test_errors_name_the_file(tmp_path):
    src = tmp_path / "plain.h5"
    with h5py.File(src, "w") as h5:
        h5["/entry/data/data"] = frames_of(2)
    out = tmp_path / "o.h5"
    with pytest.raises(
        FileFormatError,
        match=(
            r"plain\.h5: no dataset '/entry/data/dta'; datasets of 2\+ dims in it: "
            r"/entry/data/data \(2, 16, 12\)"
        ),
    ):
        translate(src, out, format="nexus", dataset="/entry/data/dta")
    with pytest.raises(FileFormatError, match=r"plain\.h5: no @default NXdata.*give dataset=PATH"):
        translate(src, out, format="nexus")
    text = tmp_path / "notes.h5"
    text.write_text("not hdf5")
    assert not NexusTranslator().can_read(text)
    with pytest.raises(FileFormatError, match=r"notes\.h5: not an HDF5 file"):
        translate(text, out, format="nexus")
    with pytest.raises(FileFormatError, match=r"missing\.h5: no such file"):
        translate(tmp_path / "missing.h5", out, format="nexus")
    with pytest.raises(InputError, match=r"unknown format 'nxs'; installed formats: .*nexus"):
        translate(src, out, format="nxs")
    with pytest.raises(InputError, match="poni, mask and flip apply to images"):
        translate(src, out, format="nexus", dataset="/entry/data/data", kind="spectrum", flip="lr")
    assert not out.exists()
    out.write_text("x")
    with pytest.raises(ExistingResultsError):
        translate(src, out, format="nexus", dataset="/entry/data/data")
