"""N-dimensional scans: nested grids, snake (serpentine) scans, aborted scans, irregular positions.

Ground truth is built by hand (the nested grid of known axes, a snake order written out row by
row); the translated files are reopened with pyUSID and compared with the frames bit for bit.
"""

import json
import logging

import h5py
import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from pyscatter.errors import InputError
from pyscatter.io.usid import main_datasets, read_nd
from pyscatter.translators.grid_inference import infer_grid
from pyscatter.translators.images import ImageStackTranslator
from pyscatter.translators.positions import arrange_positions, grid_positions

SHAPE = (6, 5)


def nested(*axes):
    grids = np.meshgrid(*axes, indexing="ij")
    return np.stack([g.ravel() for g in grids], axis=1)


def snake_rows(values, width):
    """Reverse every other row of ``width`` consecutive points (rows counted over the scan)."""
    out = values.copy()
    for start in range(width, len(values), 2 * width):
        out[start : start + width] = out[start : start + width][::-1]
    return out


@pytest.fixture(scope="module")
def check_if_main():
    return pytest.importorskip("pyUSID").hdf_utils.check_if_main


# --------------------------------------------------------------------------- positions


def test_nested_raster_field_temperature_time_with_jitter():
    rng = np.random.default_rng(3)
    temps, fields, times, ys, xs = (
        [10.0, 300.0],
        [0.0, 50.0, 500.0],
        [0.0, 60.0],
        [0.0, 1.0],
        [0.0, 2.0, 4.0],
    )
    truth = nested(temps, fields, times, ys, xs)
    steps = np.array([290.0, 50.0, 60.0, 1.0, 2.0])
    measured = truth + rng.uniform(-0.15, 0.15, truth.shape) * steps  # within the 25 % tolerance
    labels = [("T", "K"), ("Field", "mT"), ("Time", "s"), ("Y", "um"), ("X", "um")]
    pos = infer_grid(measured, labels, source="nested")
    assert pos.shape == (2, 3, 2, 2, 3) and pos.order is None and not pos.snake
    for dim, axis, step in zip(pos.dims, (temps, fields, times, ys, xs), steps, strict=True):
        assert_allclose(dim.values, axis, atol=0.15 * step)  # level means of ±15 % jitter
    assert_array_equal(pos.values, measured)


def test_snake_2d_detected_and_reordered():
    truth = nested([0.0, 1.0, 2.0], [0.0, 1.0, 2.0, 3.0])
    rng = np.random.default_rng(0)
    measured = snake_rows(truth, 4) + rng.uniform(-0.1, 0.1, truth.shape)
    pos = infer_grid(measured, [("Y", "mm"), ("X", "mm")], source="snake")
    assert pos.snake and pos.shape == (3, 4)
    # row 1 was measured X = 3, 2, 1, 0: grid position (1, x) holds frame 4 + 3 - x
    assert_array_equal(pos.order, [0, 1, 2, 3, 7, 6, 5, 4, 8, 9, 10, 11])
    assert_allclose(pos.values, truth, atol=0.1)  # read-backs now in grid order
    assert "snake" in pos.notes[0] and pos.record()["snake"] is True


def test_snake_3d_rows_counted_over_the_whole_scan():
    truth = nested([0.0, 100.0], [0.0, 1.0, 2.0], [0.0, 1.0])  # field × Y × X, 3 rows per map
    measured = snake_rows(truth, 2)
    pos = infer_grid(measured, [("Field", "mT"), ("Y", ""), ("X", "")], source="snake3d")
    assert pos.snake and pos.shape == (2, 3, 2)
    assert_array_equal(pos.values, truth)
    assert_array_equal(measured[pos.order], truth)


@pytest.mark.parametrize("snake", [False, True])
def test_aborted_last_row_padded(snake, caplog):
    truth = nested([0.0, 1.0, 2.0], [0.0, 1.0, 2.0, 3.0])
    scan = snake_rows(truth, 4) if snake else truth
    measured = scan[:10]  # aborted in row 2 after 2 of its 4 points
    with caplog.at_level(logging.WARNING, logger="pyscatter.translators.positions"):
        pos = infer_grid(measured, [("Y", ""), ("X", "")], source="aborted.csv")
    assert pos.shape == (3, 4) and pos.snake is snake
    rows = [0, 1, 2, 3, 7, 6, 5, 4] if snake else list(range(8))
    assert_array_equal(pos.order, [*rows, 8, 9, -1, -1])
    assert pos.valid.sum() == 10 and pos.record()["missing_positions"] == 2
    assert_array_equal(pos.values, truth)  # missing positions carry their nominal values
    assert "aborted.csv: the scan was aborted" in caplog.text
    assert "2 positions never measured are marked false in valid_positions" in caplog.text


def test_aborted_odd_snake_row_is_filled_from_its_far_end():
    truth = nested([0.0, 1.0], [0.0, 1.0, 2.0, 3.0])
    measured = snake_rows(truth, 4)[:6]  # row 1 started at X = 3 and stopped after X = 2
    pos = infer_grid(measured, [("Y", ""), ("X", "")], source="s")
    assert pos.snake and pos.shape == (2, 4)
    assert_array_equal(pos.order, [0, 1, 2, 3, -1, -1, 5, 4])


def test_aborted_drop_and_error():
    measured = nested([0.0, 1.0, 2.0], [0.0, 1.0, 2.0, 3.0])[:10]
    pos = infer_grid(measured, [("Y", ""), ("X", "")], source="s", incomplete="drop")
    assert pos.shape == (2, 4) and pos.order is None and "dropped" in pos.notes[0]
    with pytest.raises(InputError, match="the scan was aborted: the last Y block has 2 of its 4"):
        infer_grid(measured, [("Y", ""), ("X", "")], source="s", incomplete="error")


def test_irregular_positions_kept_as_measured(caplog):
    rng = np.random.default_rng(5)
    measured = rng.uniform(0, 10, size=(9, 2))
    with caplog.at_level(logging.WARNING):
        pos = infer_grid(measured, [("Y", "um"), ("X", "um")], source="spiral")
    assert [d.name for d in pos.dims] == ["Position"] and pos.order is None
    assert_array_equal(pos.extra["measured_X"], measured[:, 1])


def test_index_grid_snake_and_aborted():
    pos = grid_positions("Y=3,X=4", 10, snake=True, incomplete="pad")
    assert_array_equal(pos.order, [0, 1, 2, 3, 7, 6, 5, 4, 8, 9, -1, -1])
    with pytest.raises(InputError, match="grid Y=3 × X=4 has 12 positions but there are 10"):
        grid_positions("Y=3,X=4", 10)  # without incomplete: a count mismatch is an error
    with pytest.raises(InputError, match="more than one block of Y is missing"):
        grid_positions("Y=3,X=4", 7, incomplete="pad")
    order, sizes, _ = arrange_positions(5, [2, 3], snake=True, incomplete="drop")
    assert sizes == [1, 3] and order.tolist() == [0, 1, 2]


# --------------------------------------------------------------------------- end to end


def write_tifs(folder, frames):
    from fabio.tifimage import TifImage

    folder.mkdir()
    for i, frame in enumerate(frames):
        TifImage(data=frame).write(str(folder / f"f_{i + 1}.tif"))


def test_images_snake_csv_and_aborted_row(tmp_path, check_if_main, caplog):
    rng = np.random.default_rng(1)
    truth = nested([0.0, 0.5, 1.0], [10.0, 11.0, 12.0, 13.0])
    measured = snake_rows(truth, 4)[:10]  # snake, aborted after 10 of 12 points
    frames = rng.integers(1, 1000, size=(10, *SHAPE)).astype(np.int32)
    write_tifs(tmp_path / "scan", frames)
    csv = tmp_path / "pos.csv"
    csv.write_text("Y[mm],X[mm]\n" + "\n".join(f"{y},{x}" for y, x in measured))
    with caplog.at_level(logging.WARNING):
        out = ImageStackTranslator().translate(tmp_path / "scan", tmp_path / "o.h5", positions=csv)
    assert "aborted" in caplog.text
    with h5py.File(out) as h5:
        (main,) = main_datasets(h5)
        assert check_if_main(main)
        data, dims = read_nd(main)
        assert [(d.name, len(d)) for d in dims[:2]] == [("Y", 3), ("X", 4)]
        assert_array_equal(data[0], frames[:4])
        assert_array_equal(data[1], frames[[7, 6, 5, 4]])  # measured backwards, put in order
        assert_array_equal(data[2, :2], frames[8:10])
        assert (data[2, 2:] == 0).all()
        assert_array_equal(main.parent["valid_positions"][()], [True] * 10 + [False] * 2)
        assert_array_equal(h5[main.attrs["Position_Values"]][()], truth)
        attrs = h5["Measurement_000"].attrs
        assert attrs["snake"] and attrs["missing_positions"] == 2
        assert any("snake scan" in n for n in json.loads(attrs["positions_notes"]))
        sources = [s["name"] for s in json.loads(attrs["sources"])]
        assert sources == [f"f_{i + 1}.tif" for i in range(10)]  # in acquisition order


def test_images_nested_4d_grid(tmp_path, check_if_main):
    frames = np.arange(2 * 2 * 3 * 2 * 30, dtype=np.uint16).reshape(24, *SHAPE)
    write_tifs(tmp_path / "scan", frames)
    out = ImageStackTranslator().translate(
        tmp_path / "scan", tmp_path / "o.h5", grid="T[K]=2,Field[mT]=2,Y=3,X=2"
    )
    with h5py.File(out) as h5:
        (main,) = main_datasets(h5)
        assert check_if_main(main)
        data, dims = read_nd(main)
        assert [d.name for d in dims] == ["T", "Field", "Y", "X", "Row", "Col"]
        assert_array_equal(data, frames.reshape(2, 2, 3, 2, *SHAPE))
