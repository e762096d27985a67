"""The image-stack translator and the translator registry.

Small synthetic images are written with fabio into ``tmp_path``; the files written are reopened
with pyUSID (``USIDataset``, ``check_if_main``) and compared with the frames bit for bit.
"""

import hashlib
import importlib.metadata
import json
import logging
import os
import re
from pathlib import Path

import fabio
import h5py
import numpy as np
import pytest
from fabio.edfimage import EdfImage
from fabio.tifimage import TifImage
from numpy.testing import assert_allclose, assert_array_equal

import pyscatter
from pyscatter.errors import ExistingResultsError, FileFormatError, InputError
from pyscatter.io.usid import dims_of, main_datasets, read_nd
from pyscatter.translators import (
    available_translators,
    get_translator,
    guess_translator,
    translate,
)
from pyscatter.translators.base import BUILTIN_TRANSLATORS, ENTRY_POINT_GROUP, expand_sources
from pyscatter.translators.images import ImageStackTranslator

DATA = Path(
    os.environ.get("PYSCATTER_TEST_DATA") or Path(__file__).resolve().parents[3] / "shared/data"
)
needs_data = pytest.mark.skipif(not DATA.is_dir(), reason=f"{DATA} absent")

SHAPE = (12, 10)  # rows, cols: small frames keep the tests fast


def frames_of(n, *, shape=SHAPE, dtype=np.int32, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(-2, 5000, size=(n, *shape)).astype(dtype)


def write_stack(folder, frames, fmt="edf", headers=None, stem="img"):
    """Write ``frames`` as ``<stem>_1.<fmt>`` … (not zero-padded: natural order matters)."""
    folder.mkdir(parents=True, exist_ok=True)
    cls = {"edf": EdfImage, "tif": TifImage}[fmt]
    paths = []
    for i, frame in enumerate(frames):
        path = folder / f"{stem}_{i + 1}.{fmt}"
        kwargs = {"header": headers[i]} if headers else {}
        cls(data=np.ascontiguousarray(frame), **kwargs).write(str(path))
        paths.append(path)
    return paths


def open_main(path):
    h5 = h5py.File(path, "r")
    (main,) = main_datasets(h5)
    return h5, main


def assert_no_output(out):
    assert not out.exists()
    assert list(out.parent.glob(f".{out.name}*")) == []  # no .partial leftover


@pytest.fixture(scope="module")
def pyusid():
    return pytest.importorskip("pyUSID")


# --------------------------------------------------------------------------- round trip


@pytest.mark.parametrize("fmt", ["edf", "tif"])
def test_round_trip_grid(tmp_path, fmt, pyusid):
    frames = frames_of(12)
    paths = write_stack(tmp_path / "scan", frames, fmt)
    # given shuffled and as a glob: natural order (img_2 before img_10) is what counts
    out = ImageStackTranslator().translate(
        str(tmp_path / "scan" / f"*.{fmt}"), tmp_path / "out.h5", grid="Y[um]=3,X[um]=4"
    )
    assert out == tmp_path / "out.h5"
    h5, main = open_main(out)
    with h5:
        from pyUSID.io.hdf_utils import check_if_main

        assert check_if_main(main)  # numpy bool True
        usid = pyusid.USIDataset(main)
        assert usid.pos_dim_labels == ["Y", "X"] and usid.spec_dim_labels == ["Row", "Col"]
        assert_array_equal(usid.get_n_dim_form(), frames.reshape(3, 4, *SHAPE))
        data, dims = read_nd(main)
        assert main.dtype == np.int32  # dtype of the first image kept
        assert_array_equal(data, frames.reshape(3, 4, *SHAPE))
        assert [(d.name, d.units, len(d)) for d in dims] == [
            ("Y", "um", 3),
            ("X", "um", 4),
            ("Row", "pixel", 12),
            ("Col", "pixel", 10),
        ]
        assert main.chunks == (1, SHAPE[0] * SHAPE[1])  # one frame per chunk
        meas = h5["Measurement_000"]
        assert meas.attrs["translator"] == "images"
        assert json.loads(meas.attrs["versions"])["pyscatter"] == pyscatter.__version__
        sources = json.loads(meas.attrs["sources"])
        assert [s["name"] for s in sources] == [p.name for p in paths]
        for s, p in zip(sources, paths, strict=True):
            assert s["size"] == p.stat().st_size
            assert s["sha256"] == hashlib.sha256(p.read_bytes()).hexdigest()
        assert meas.attrs["orientation"] == "as read by fabio" and meas.attrs["flip"] == "none"
        assert json.loads(meas.attrs["options"])["grid"] == "Y[um]=3,X[um]=4"
        assert "geometry" not in meas.attrs and "Mask" not in main.parent


def test_default_positions_and_explicit_list_in_natural_order(tmp_path):
    frames = frames_of(11)
    paths = write_stack(tmp_path, frames, "edf")
    shuffled = [paths[i] for i in (10, 0, 5, 1, 9, 2, 8, 3, 7, 4, 6)] + [paths[3]]  # a duplicate
    out = ImageStackTranslator().translate(shuffled, tmp_path / "out.h5", compression="gzip")
    h5, main = open_main(out)
    with h5:
        data, dims = read_nd(main)
        assert_array_equal(data, frames)
        assert [(d.name, len(d)) for d in dims[:1]] == [("Image", 11)]


def test_expand_sources_natural_order_and_errors(tmp_path):
    for name in ("x_10.tif", "x_2.tif", "x_1.tif", "notes.txt"):
        (tmp_path / name).write_bytes(b"II*\x00")
    assert [p.name for p in expand_sources(tmp_path, extensions=(".tif",))] == [
        "x_1.tif",
        "x_2.tif",
        "x_10.tif",
    ]
    with pytest.raises(InputError, match="no file matches the pattern"):
        expand_sources(str(tmp_path / "*.edf"))
    with pytest.raises(FileFormatError, match="missing.tif: no such file"):
        expand_sources([tmp_path / "x_1.tif", tmp_path / "missing.tif"])


# --------------------------------------------------------------------------- positions


def test_csv_positions_with_jitter(tmp_path):
    frames = frames_of(6)
    write_stack(tmp_path / "scan", frames, "tif")
    rng = np.random.default_rng(3)
    y, x = np.meshgrid([100.0, 110.0], [0.0, 2.5, 5.0], indexing="ij")
    # read-backs jitter by up to 10 % of the X step (2.5 um) and 2 % of the Y step (10 um)
    measured = np.stack([y.ravel(), x.ravel()], axis=1) + rng.uniform(-0.2, 0.2, (6, 2)) * [1, 1.25]
    csv = tmp_path / "positions.csv"
    csv.write_text("Y[um],X[um]\n" + "".join(f"{float(a)!r},{float(b)!r}\n" for a, b in measured))
    out = ImageStackTranslator().translate(tmp_path / "scan", tmp_path / "out.h5", positions=csv)
    h5, main = open_main(out)
    with h5:
        data, dims = read_nd(main)
        assert_array_equal(data, frames.reshape(2, 3, *SHAPE))
        assert [(d.name, d.units) for d in dims[:2]] == [("Y", "um"), ("X", "um")]
        # nominal values: means of read-backs within 0.25 um of the set points
        assert_allclose(dims[0].values, [100.0, 110.0], atol=0.25)
        assert_allclose(dims[1].values, [0.0, 2.5, 5.0], atol=0.25)
        # the measured values are the position values, exactly (float64 kept)
        assert_array_equal(h5[main.attrs["Position_Values"]][()], measured)
        assert str(csv.resolve()) in h5["Measurement_000"].attrs["positions_source"]


def test_csv_positions_not_a_grid_fall_back(tmp_path, caplog):
    frames = frames_of(4)
    write_stack(tmp_path / "scan", frames, "edf")
    # irregular positions (a spiral-like path) are kept as measured
    csv = tmp_path / "irregular.csv"
    csv.write_text("Y[mm],X[mm]\n0,0\n0.3,1.7\n1.1,0.2\n2.5,2.5\n")
    with caplog.at_level(logging.WARNING):
        out = ImageStackTranslator().translate(tmp_path / "scan", tmp_path / "o.h5", positions=csv)
    assert "do not form a nested grid" in caplog.text and "irregular.csv" in caplog.text
    h5, main = open_main(out)
    with h5:
        assert [d.name for d in dims_of(main, "Position")] == ["Position"]
        assert_array_equal(main.parent["measured_X"][()], [0, 1.7, 0.2, 2.5])
        assert_array_equal(read_nd(main)[0], frames)  # frames in measured order
        assert json.loads(h5["Measurement_000"].attrs["measured_units"])["measured_Y"] == "mm"


def test_csv_row_count_mismatch(tmp_path):
    write_stack(tmp_path / "scan", frames_of(6), "edf")
    csv = tmp_path / "pos.csv"
    csv.write_text("Y,X\n" + "0,0\n" * 5)
    out = tmp_path / "out.h5"
    with pytest.raises(InputError, match=r"pos\.csv: 5 rows of positions for 6 images"):
        ImageStackTranslator().translate(tmp_path / "scan", out, positions=csv)
    assert_no_output(out)


def test_edf_motors(tmp_path):
    frames = frames_of(6)
    ys, xs = [1.25, 1.5], [-0.1, 0.0, 0.1]
    headers = [
        {"motor_mne": "samy samx samz", "motor_pos": f"{y!r} {x!r} 7.0"} for y in ys for x in xs
    ]
    write_stack(tmp_path / "scan", frames, "edf", headers=headers)
    out = ImageStackTranslator().translate(
        tmp_path / "scan", tmp_path / "out.h5", motors=["samy[mm]", "samx[mm]"]
    )
    h5, main = open_main(out)
    with h5:
        data, dims = read_nd(main)
        assert_array_equal(data, frames.reshape(2, 3, *SHAPE))
        assert [(d.name, d.units) for d in dims[:2]] == [("samy", "mm"), ("samx", "mm")]
        assert_array_equal(dims[0].values, ys)  # exact: no jitter, means of equal values
        assert_allclose(dims[1].values, xs, rtol=1e-15, atol=1e-17)  # means of 2 equal floats
        assert "motors samy,samx" in h5["Measurement_000"].attrs["positions_source"]
    with pytest.raises(InputError, match=r"img_1\.edf: no motor 'phi' in the header"):
        ImageStackTranslator().translate(tmp_path / "scan", tmp_path / "o2.h5", motors="phi")


def test_in_memory_arrays():
    frames = frames_of(6, dtype=np.uint16).reshape(2, 3, *SHAPE)
    t = ImageStackTranslator()
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for kwargs, names in [
            ({"grid": {"Field[mT]": 2, "X": 3}}, ["Field", "X"]),
            ({}, ["Dim0", "Dim1"]),
        ]:
            out = t.translate(None, tmp / f"{len(kwargs)}.h5", frames=frames, **kwargs)
            h5, main = open_main(out)
            with h5:
                data, dims = read_nd(main)
                assert_array_equal(data, frames)
                assert main.dtype == np.uint16
                assert [d.name for d in dims[:2]] == names
                assert h5["Measurement_000"].attrs["orientation"] == "as given"
        out = translate(None, tmp / "flat.h5", frames=frames.reshape(6, *SHAPE), grid="A=3,B=2")
        with h5py.File(out) as h5:
            assert [d.name for d in dims_of(main_datasets(h5)[0], "Position")] == ["A", "B"]
        with pytest.raises(
            InputError,
            match=r"grid .* has shape \(3, 2\); the frames array has scan shape \(2, 3\)",
        ):
            t.translate(None, tmp / "bad.h5", frames=frames, grid="Y=3,X=2")
        with pytest.raises(InputError, match="frames must have shape"):
            t.translate(None, tmp / "bad.h5", frames=frames[0, 0])
        with pytest.raises(InputError, match="in-memory frames have none"):
            t.translate(None, tmp / "bad.h5", frames=frames, motors="samx")


# --------------------------------------------------------------------------- orientation, geometry, mask


@pytest.mark.parametrize(
    ("flip", "func", "words"), [("ud", np.flipud, "up-down"), ("lr", np.fliplr, "left-right")]
)
def test_flip_frames_and_mask(tmp_path, flip, func, words):
    frames = frames_of(2)
    write_stack(tmp_path / "scan", frames, "tif")
    mask = np.zeros(SHAPE, np.uint8)
    mask[:3, :2] = 1  # top-left corner in fabio's orientation
    mask_path = tmp_path / "scan" / "mask.edf"  # inside the folder: must not become a frame
    EdfImage(data=mask).write(str(mask_path))
    out = ImageStackTranslator().translate(
        tmp_path / "scan", tmp_path / "out.h5", mask=mask_path, flip=flip, dummy=-1
    )
    h5, main = open_main(out)
    with h5:
        data, _ = read_nd(main)
        assert_array_equal(data, np.stack([func(f) for f in frames]))
        assert_array_equal(main.parent["Mask"][()], func(mask))
        meas = h5["Measurement_000"]
        assert meas.attrs["flip"] == flip
        assert meas.attrs["orientation"] == f"flipped {words} relative to fabio's array"
        assert meas.attrs["dummy"] == -1.0
    with pytest.raises(InputError, match=r"unsupported flip 'x'"):
        ImageStackTranslator().translate(tmp_path / "scan", tmp_path / "o.h5", flip="x")


def write_poni(path, shape=None, pixel=172e-6):
    from pyFAI.detectors import Detector
    from pyFAI.integrator.azimuthal import AzimuthalIntegrator
    from pyFAI.io.ponifile import PoniFile

    det = Detector(pixel1=pixel, pixel2=pixel, max_shape=shape)
    ai = AzimuthalIntegrator(dist=0.1, poni1=1e-3, poni2=1e-3, detector=det, wavelength=1e-10)
    with open(path, "w") as handle:
        PoniFile(ai).write(handle)
    return path


def test_poni_recorded_and_completed(tmp_path):
    write_stack(tmp_path / "scan", frames_of(2), "edf")
    poni = write_poni(tmp_path / "no_shape.poni")
    out = ImageStackTranslator().translate(tmp_path / "scan", tmp_path / "out.h5", poni=poni)
    with h5py.File(out) as h5:
        geometry = json.loads(h5["Measurement_000"].attrs["geometry"])
    assert geometry["dist"] == 0.1 and geometry["detector_config"]["pixel1"] == 172e-6
    assert tuple(geometry["detector_config"]["max_shape"]) == SHAPE  # taken from the frames


def test_poni_shape_mismatch(tmp_path):
    write_stack(tmp_path / "scan", frames_of(2), "edf")
    poni = write_poni(tmp_path / "det.poni", shape=(10, 12))
    out = tmp_path / "out.h5"
    with pytest.raises(
        InputError,
        match=r"det\.poni: detector .* is \(10, 12\) pixels .*; the frames are \(12, 10\)",
    ):
        ImageStackTranslator().translate(tmp_path / "scan", out, poni=poni)
    assert_no_output(out)


def test_pixel_size_mismatch_with_edf_header(tmp_path):
    write_stack(
        tmp_path / "scan",
        frames_of(1),
        "edf",
        headers=[{"PSize_1": "7.5e-05", "PSize_2": "7.5e-05"}],
    )
    poni = write_poni(tmp_path / "det.poni")
    with pytest.raises(
        InputError,
        match=r"det\.poni: detector pixel 0.000172 m; the image header says PSize_1 = 7.5e-05 m",
    ):
        ImageStackTranslator().translate(tmp_path / "scan", tmp_path / "o.h5", poni=poni)


def test_mask_mismatch(tmp_path):
    write_stack(tmp_path / "scan", frames_of(2), "edf")
    mask = tmp_path / "mask.tif"
    TifImage(data=np.zeros((10, 12), np.uint8)).write(str(mask))
    out = tmp_path / "out.h5"
    with pytest.raises(
        InputError, match=r"mask\.tif: mask of shape \(10, 12\); the frames are \(12, 10\)"
    ):
        ImageStackTranslator().translate(tmp_path / "scan", out, mask=mask)
    assert_no_output(out)
    with pytest.raises(InputError, match=r"mask array: mask of shape \(3, 3\)"):
        ImageStackTranslator().translate(tmp_path / "scan", out, mask=np.zeros((3, 3)))


# --------------------------------------------------------------------------- bad input


def test_corrupt_images(tmp_path):
    paths = write_stack(tmp_path / "scan", frames_of(4), "edf")
    full = paths[2].read_bytes()
    paths[2].write_bytes(full[:-100])  # truncated: fabio would pad it with zeros
    out = tmp_path / "out.h5"
    with pytest.raises(FileFormatError, match=r"img_3\.edf: truncated image"):
        ImageStackTranslator().translate(tmp_path / "scan", out)
    assert_no_output(out)  # the error came while streaming: the partial file is gone
    paths[2].write_bytes(b"{\nthis is not an EDF header\n")
    with pytest.raises(FileFormatError, match=r"img_3\.edf: not an image fabio can read"):
        ImageStackTranslator().translate(tmp_path / "scan", out)
    assert_no_output(out)
    with pytest.raises(FileFormatError, match=r"img_9\.edf: no such file"):
        ImageStackTranslator().translate([paths[0], tmp_path / "scan" / "img_9.edf"], out)


def test_frames_of_different_shapes_or_dtypes(tmp_path):
    paths = write_stack(tmp_path / "scan", frames_of(3), "edf")
    EdfImage(data=frames_of(1, shape=(12, 11))[0]).write(str(paths[1]))
    out = tmp_path / "out.h5"
    with pytest.raises(
        InputError,
        match=r"img_2\.edf: image of shape \(12, 11\); the first image \(img_1\.edf\) is \(12, 10\)",
    ):
        ImageStackTranslator().translate(tmp_path / "scan", out)
    assert_no_output(out)
    EdfImage(data=frames_of(1, dtype=np.float32)[0]).write(str(paths[1]))
    with pytest.raises(
        InputError,
        match=r"img_2\.edf: image of dtype float32; the first image \(img_1\.edf\) is int32",
    ):
        ImageStackTranslator().translate(tmp_path / "scan", out)
    assert_no_output(out)


def test_existing_output(tmp_path):
    write_stack(tmp_path / "scan", frames_of(2), "edf")
    out = tmp_path / "out.h5"
    out.write_bytes(b"precious")
    with pytest.raises(ExistingResultsError, match=r"out\.h5 exists; pass overwrite=True"):
        ImageStackTranslator().translate(tmp_path / "scan", out)
    assert out.read_bytes() == b"precious"
    ImageStackTranslator().translate(tmp_path / "scan", out, overwrite=True)
    with h5py.File(out) as h5:
        assert main_datasets(h5)[0].shape == (2, SHAPE[0] * SHAPE[1])


def test_option_conflicts(tmp_path):
    write_stack(tmp_path / "scan", frames_of(2), "edf")
    with pytest.raises(InputError, match="at most one of positions, motors, grid"):
        ImageStackTranslator().translate(
            tmp_path / "scan", tmp_path / "o.h5", grid="Y=2", motors="a"
        )
    with pytest.raises(InputError, match="unsupported compression 'zip'"):
        ImageStackTranslator().translate(tmp_path / "scan", tmp_path / "o.h5", compression="zip")
    with pytest.raises(InputError, match=r"grid Y=3 has 3 positions but there are 2 images"):
        ImageStackTranslator().translate(tmp_path / "scan", tmp_path / "o.h5", grid="Y=3")


# --------------------------------------------------------------------------- synthetic scan end to end


def test_synthetic_scan_folder(tmp_path):
    from pyscatter.datasets import make_scan

    scan = make_scan((2, 3), frame_shape=(64, 72), rng=5)
    scan.write_images(tmp_path / "scan", fmt="edf")
    poni = scan.write_poni(tmp_path / "scan.poni")
    # the folder also holds positions.csv and mask.edf: mask.edf is given as mask, not a frame
    out = translate(
        tmp_path / "scan",
        tmp_path / "out.h5",
        positions=tmp_path / "scan" / "positions.csv",
        mask=tmp_path / "scan" / "mask.edf",
        poni=poni,
    )
    h5, main = open_main(out)
    with h5:
        data, dims = read_nd(main)
        assert_array_equal(data, scan.frames)
        for dim, name in zip(dims, scan.dims, strict=False):
            assert dim.name == name and dim.units == scan.units[name]
            assert_array_equal(dim.values, scan.coords[name])  # written with repr: exact
        assert_array_equal(main.parent["Mask"][()], scan.mask.astype(np.uint8))
        geometry = json.loads(h5["Measurement_000"].attrs["geometry"])
        assert_allclose(geometry["dist"], scan.poni["dist"], rtol=1e-12)  # PONI text round trip


# --------------------------------------------------------------------------- registry


def test_registry_lists_and_guesses(tmp_path):
    assert available_translators()["images"] is ImageStackTranslator
    assert get_translator("images").name == "images"
    (path,) = write_stack(tmp_path, frames_of(1), "tif")
    assert ImageStackTranslator().can_read(path)
    assert guess_translator(path).name == "images"
    assert guess_translator(str(tmp_path / "*.tif")).name == "images"
    fake = tmp_path / "fake.tif"
    fake.write_text("not a tiff")
    assert not ImageStackTranslator().can_read(fake)
    assert not ImageStackTranslator().can_read(tmp_path)
    assert not ImageStackTranslator().can_read(tmp_path / "absent.edf")
    assert not ImageStackTranslator().can_read(None)


def test_unknown_file_lists_formats(tmp_path):
    odd = tmp_path / "data.xyz"
    odd.write_text("1 2 3\n")
    with pytest.raises(InputError) as info:
        guess_translator(odd)
    message = str(info.value)
    assert "data.xyz" in message and "images (.edf, .tif" in message and "--format NAME" in message
    with pytest.raises(InputError, match=r"unknown format 'nope'; installed formats: .*images"):
        get_translator("nope")
    with pytest.raises(
        InputError, match=r"format 'images' takes no option 'colour'; its options are: positions"
    ):
        translate(odd, tmp_path / "o.h5", format="images", colour="red")


def test_broken_plugin_is_skipped(monkeypatch, caplog):
    real = importlib.metadata.entry_points

    def fake(**kwargs):
        if kwargs.get("group") == ENTRY_POINT_GROUP:
            return [
                importlib.metadata.EntryPoint(
                    "broken", "no_such_module_xyz:Thing", ENTRY_POINT_GROUP
                ),
                importlib.metadata.EntryPoint("notone", "pathlib:Path", ENTRY_POINT_GROUP),
                importlib.metadata.EntryPoint("mine", "tests_plugin_ok:Mine", ENTRY_POINT_GROUP),
            ]
        return real(**kwargs)

    import sys
    import types

    module = types.ModuleType("tests_plugin_ok")

    class Mine(ImageStackTranslator):
        name = "mine"

    module.Mine = Mine
    monkeypatch.setitem(sys.modules, "tests_plugin_ok", module)
    monkeypatch.setattr(importlib.metadata, "entry_points", fake)
    with caplog.at_level(logging.WARNING, logger="pyscatter.translators.base"):
        found = available_translators()
    # built-ins present without metadata, plugin loaded
    assert set(found) == set(BUILTIN_TRANSLATORS) | {"mine"} and "images" in found
    assert re.search(
        r"'broken' \(no_such_module_xyz:Thing\) skipped: ModuleNotFoundError", caplog.text
    )
    assert "'notone' (pathlib:Path) skipped: TypeError" in caplog.text


# --------------------------------------------------------------------------- real data


@pytest.mark.realdata
@needs_data
def test_dioptas_map(tmp_path):
    folder = DATA / "dioptas" / "map"
    out = translate(
        str(folder / "*.tif"),
        tmp_path / "map.h5",
        grid="Y=3,X=3",
        flip="ud",
        poni=DATA / "dioptas" / "CeO2_Pilatus1M.poni",
    )
    numbers = [1, 2, 3, 6, 7, 8, 11, 12, 13]  # point numbers in natural order
    h5, main = open_main(out)
    with h5:
        assert main.dtype == np.int32 and main.shape == (9, 1043 * 981)
        sources = json.loads(h5["Measurement_000"].attrs["sources"])
        assert [s["name"] for s in sources] == [f"Fe3O4C_M1_map_{n}_P1_E1_001.tif" for n in numbers]
        geometry = json.loads(h5["Measurement_000"].attrs["geometry"])
        assert tuple(geometry["detector_config"]["max_shape"]) == (1043, 981)
        for k, n in enumerate(numbers):
            with fabio.open(str(folder / f"Fe3O4C_M1_map_{n}_P1_E1_001.tif")) as image:
                expected = np.flipud(image.data)
            assert_array_equal(main[k].reshape(1043, 981), expected)
        assert main[0].min() == -2  # gap pixels kept as int32


@pytest.mark.realdata
@needs_data
def test_darfix_edf_motors(tmp_path):
    path = DATA / "darfix" / "strain_0000.edf"
    header = path.read_bytes()[:8192].decode("latin-1")
    names = re.search(r"motor_mne\s*=\s*([^;]*);", header).group(1).split()
    values = re.search(r"motor_pos\s*=\s*([^;]*);", header).group(1).split()
    table = dict(zip(names, values, strict=True))
    out = ImageStackTranslator().translate(
        path, tmp_path / "darfix.h5", motors=["diffry[deg]", "obx"]
    )
    h5, main = open_main(out)
    with h5:
        pos_values = h5[main.attrs["Position_Values"]][()]
        assert_array_equal(pos_values, [[float(table["diffry"]), float(table["obx"])]])
        assert float(table["diffry"]) == -23.176  # the scan's start, as in its "scan" line
        dims = dims_of(main, "Position")
        assert [(d.name, d.units, len(d)) for d in dims] == [("diffry", "deg", 1), ("obx", "", 1)]
        assert main.dtype == np.uint16 and main.shape == (1, 2048 * 2048)
        with fabio.open(str(path)) as image:
            assert_array_equal(main[0].reshape(2048, 2048), image.data)


@pytest.mark.realdata
@needs_data
def test_dioptas_map_integrity_and_image_view(tmp_path):
    """Real Pilatus frames: silx opens them as images; a flipped bit on disk is found (issue 20)."""
    from silx.io.nxdata import get_default

    from pyscatter.io.integrity import verify_file

    folder = DATA / "dioptas" / "map"
    out = translate(str(folder / "*.tif"), tmp_path / "map.h5", grid="Y=3,X=3")
    with fabio.open(str(folder / "Fe3O4C_M1_map_7_P1_E1_001.tif")) as image:
        centre = image.data  # point 7 is position 4: Y=1, X=1
    with h5py.File(out, "r") as h5:
        nx = get_default(h5)
        assert nx.is_image and nx.signal.shape == (3, 3, 1043, 981)
        assert_array_equal(nx.signal[1, 1], centre)
        info = h5["Measurement_000/Channel_000/Raw_Data"].id.get_chunk_info_by_coord((4, 0))
    assert verify_file(out).ok
    with open(out, "r+b") as fh:  # one bit, in the middle of the compressed frame
        fh.seek(info.byte_offset + info.size // 2)
        byte = fh.read(1)[0]
        fh.seek(info.byte_offset + info.size // 2)
        fh.write(bytes([byte ^ 0x10]))
    report = verify_file(out)
    assert len(report.problems) == 2, report.problems  # the frame, and the file's sha256
    assert "position 4 (Y=1, X=1)" in report.problems[0]
