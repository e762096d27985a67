"""Scan positions: labels, grid strings, positions CSV files, motor headers, grid inference."""

import logging

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from pyscatter.errors import FileFormatError, InputError
from pyscatter.translators.grid_inference import grid_shape, infer_grid
from pyscatter.translators.positions import (
    grid_positions,
    index_positions,
    motor_positions,
    parse_grid,
    parse_label,
    read_positions_csv,
)


def nested(*axes):
    """(n, d) values of the nested grid over ``axes``, slow to fast."""
    grids = np.meshgrid(*axes, indexing="ij")
    return np.stack([g.ravel() for g in grids], axis=1)


# --------------------------------------------------------------------------- labels and grids


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Y[um]", ("Y", "um")),
        (" X (mm) ", ("X", "mm")),
        ("Field", ("Field", "")),
        ("temp [K]", ("temp", "K")),
        ("q[1/nm]", ("q", "1/nm")),
    ],
)
def test_parse_label(text, expected):
    assert parse_label(text) == expected


@pytest.mark.parametrize("text", ["", "[um]", "Y[um", "a/b[mm]"])
def test_parse_label_rejects(text):
    with pytest.raises(InputError, match="label"):
        parse_label(text)


def test_parse_grid_string_and_dict():
    assert parse_grid("Y=6, X[mm]=8") == [("Y", "", 6), ("X", "mm", 8)]
    assert parse_grid({"Field[mT]": 3, "X": 2}) == [("Field", "mT", 3), ("X", "", 2)]


@pytest.mark.parametrize("grid", ["Y=0,X=2", "Y=2.5", "Y", "Y=2,Y=3", {"Y": "a"}, 7, ""])
def test_parse_grid_rejects(grid):
    with pytest.raises(InputError, match="grid"):
        parse_grid(grid)


def test_grid_positions_counts():
    pos = grid_positions("Y=2,X=3", 6)
    assert pos.shape == (2, 3)
    assert_array_equal(pos.dims[1].values, [0, 1, 2])
    with pytest.raises(InputError, match=r"Y=2 × X=3 has 6 positions but there are 7 images"):
        grid_positions("Y=2,X=3", 7)


def test_index_positions():
    pos = index_positions(4)
    assert [d.name for d in pos.dims] == ["Image"] and pos.values is None
    assert_array_equal(pos.dims[0].values, np.arange(4))


# --------------------------------------------------------------------------- CSV


def test_read_positions_csv(tmp_path):
    path = tmp_path / "pos.csv"
    path.write_text("# written by hand\nY[um];X[um]\n\n1.5;2\n1.5;3e-1\n")
    labels, values = read_positions_csv(path)
    assert labels == [("Y", "um"), ("X", "um")]
    assert_array_equal(values, [[1.5, 2.0], [1.5, 0.3]])


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("Y,X\n1,2\n3\n", r"line 3: 1 values for 2 columns"),
        ("Y,X\n1,abc\n", r"line 2: could not convert"),
        ("Y,X\n1,nan\n", r"line 2: not finite"),
        ("Y,X\n", "no rows"),
        ("", "empty"),
    ],
)
def test_read_positions_csv_errors_name_file_and_line(tmp_path, text, match):
    path = tmp_path / "bad.csv"
    path.write_text(text)
    with pytest.raises(FileFormatError, match=match) as info:
        read_positions_csv(path)
    assert str(path) in str(info.value)


def test_read_positions_csv_missing(tmp_path):
    with pytest.raises(FileFormatError, match="nothere.csv"):
        read_positions_csv(tmp_path / "nothere.csv")


# --------------------------------------------------------------------------- motors


HEADERS = [
    {"motor_mne": "samy samx  chi", "motor_pos": f"{y} {x} 0.5"}
    for y in (1.0, 2.0)
    for x in (-1.0, 0.0, 1.0)
]


def test_motor_positions_from_headers():
    labels, values = motor_positions(HEADERS, ["samy[mm]", "samx"], [f"f{i}" for i in range(6)])
    assert labels == [("samy", "mm"), ("samx", "")]
    assert_array_equal(values, nested([1.0, 2.0], [-1.0, 0.0, 1.0]))


def test_motor_positions_missing_motor_lists_the_header_motors():
    with pytest.raises(
        InputError, match=r"f0: no motor 'phi' in the header; its motors are: samy samx chi"
    ):
        motor_positions(HEADERS, "samy,phi", [f"f{i}" for i in range(6)])


def test_motor_positions_bad_header():
    with pytest.raises(FileFormatError, match=r"img7: header has 2 motor names .* and 1 values"):
        motor_positions([{"motor_mne": "a b", "motor_pos": "1"}], ["a"], ["img7"])
    with pytest.raises(FileFormatError, match=r"img8: motor 'a' has value '-nan'"):
        motor_positions([{"motor_mne": "a", "motor_pos": "-nan"}], ["a"], ["img8"])


# --------------------------------------------------------------------------- grid inference


def test_infer_grid_nested_3d_with_jitter():
    rng = np.random.default_rng(1)
    field, y, x = [0.0, 50.0], [10.0, 14.0, 18.0], [-20.0, -15.0, -10.0, -5.0]
    truth = nested(field, y, x)
    steps = np.array([50.0, 4.0, 5.0])
    # read-back jitter up to 20 % of each step: inside the 25 % the inference tolerates
    measured = truth + rng.uniform(-0.2, 0.2, truth.shape) * steps
    pos = infer_grid(measured, [("Field", "mT"), ("Y", "um"), ("X", "um")], source="test")
    assert pos.shape == (2, 3, 4)
    assert [(d.name, d.units) for d in pos.dims] == [("Field", "mT"), ("Y", "um"), ("X", "um")]
    # nominal values are means of read-backs each within 20 % of a step of the truth
    for dim, axis, step in zip(pos.dims, (field, y, x), steps, strict=True):
        assert_allclose(dim.values, axis, atol=0.2 * step)
    assert_array_equal(pos.values, measured)  # read-backs kept unchanged
    assert pos.extra == {}


def test_infer_grid_descending_fast_axis_and_constant_column():
    values = nested([3.0], [5.0, 4.0], [2.0, 1.0, 0.0])
    pos = infer_grid(values, [("Z", ""), ("Y", ""), ("X", "")], source="test")
    assert pos.shape == (1, 2, 3)
    assert_array_equal(pos.dims[2].values, [2.0, 1.0, 0.0])


def test_infer_grid_1d():
    pos = infer_grid(np.array([[0.3], [0.1], [0.2]]), [("T", "K")], source="test")
    assert pos.shape == (3,)
    assert_array_equal(pos.dims[0].values, [0.3, 0.1, 0.2])


def test_grid_shape_single_position():
    shape, levels = grid_shape(np.array([[1.5, -2.0]]))
    assert shape == (1, 1) and [float(lv[0]) for lv in levels] == [1.5, -2.0]


@pytest.mark.parametrize(
    ("values", "why"),
    [
        # X runs back on the odd row, but only part-way: neither a grid nor a snake scan
        (np.array([[0, 0], [0, 1], [0, 2], [1, 2], [1, 0], [1, 1]], float), "scrambled"),
        # X read-backs of one level 0.9 steps apart (±45 %): levels cannot be told apart safely
        (
            nested([0.0, 1.0], [0.0, 1.0, 2.0])
            + [[0, 0], [0, 0.45], [0, 0], [0, 0], [0, -0.45], [0, 0]],
            "jitter",
        ),
        # a repeated point in a 1-D scan
        (np.array([[0.0], [1.0], [1.0]]), "repeat"),
        # 7 positions whose rows differ in X: not an aborted grid either
        (np.array([[0, 0], [0, 1], [0, 2], [1, 0], [1, 1], [1, 5], [2, 0]], float), "irregular"),
    ],
)
def test_infer_grid_falls_back_with_warning(values, why, caplog):
    with caplog.at_level(logging.WARNING, logger="pyscatter.translators.positions"):
        pos = infer_grid(values, [("Y", "um"), ("X", "um")][: values.shape[1]], source="scan.csv")
    assert [d.name for d in pos.dims] == ["Position"], why
    assert_array_equal(pos.dims[0].values, np.arange(len(values)))
    assert pos.values is None
    assert_array_equal(pos.extra["measured_Y"], values[:, 0])
    assert pos.extra_units["measured_Y"] == "um"
    assert "scan.csv" in caplog.text and "do not form a nested grid" in caplog.text
