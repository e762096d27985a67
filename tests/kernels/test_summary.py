"""The series-summary kernel against numpy and against a Monte-Carlo of its error model."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from pyscatter.kernels.summary import (
    MEDIAN_EFFICIENCY,
    group_labels,
    interpolate_at,
    quality_mask,
    reduce_groups,
)


def test_interpolation_is_numpy_interp_with_propagated_errors():
    rng = np.random.default_rng(0)
    x = np.sort(rng.uniform(0, 2, 50))
    y = rng.normal(size=(4, 50))
    s = rng.uniform(0.1, 1, size=(4, 50))
    t = np.array([x[3], 0.5 * (x[10] + x[11]), x[-1], x[0] - 1])
    values, errors = interpolate_at(x, y, s, t)
    for row in range(4):
        assert_allclose(values[row, :3], np.interp(t[:3], x, y[row]), rtol=1e-12)
    assert_allclose(errors[:, 0], s[:, 3], rtol=1e-12)  # on a bin: that bin's error
    assert_allclose(errors[:, 1], 0.5 * np.hypot(s[:, 10], s[:, 11]), rtol=1e-12)
    assert np.isnan(values[:, 3]).all() and np.isnan(errors[:, 3]).all()  # outside the axis
    assert np.isnan(interpolate_at(x, y, None, t[:1])[1]).all()


def test_quality_mask_combines_r2_and_status():
    r2 = np.array([[0.95, 0.5], [np.nan, 0.99]])
    status = np.array([[0, 0], [0, 2]])
    assert_array_equal(quality_mask((2, 2)), np.ones((2, 2), bool))
    assert_array_equal(quality_mask((2, 2), r2=r2, min_r2=0.9), [[1, 0], [0, 1]])
    got = quality_mask((2, 2), r2=r2, status=status, min_r2=0.9, allowed_status=[0])
    assert_array_equal(got, [[1, 0], [0, 0]])


def test_group_labels_sort_and_leave_out_nan():
    values, labels = group_labels([250.0, 0.0, 250.0, np.nan, 50.0])
    assert_array_equal(values, [0.0, 50.0, 250.0])
    assert_array_equal(labels, [2, 0, 2, -1, 1])


def test_reduce_groups_is_numpy_on_the_good_finite_values():
    rng = np.random.default_rng(1)
    v = rng.normal(size=(30, 2))
    s = rng.uniform(0.1, 0.5, size=(30, 2))
    v[4, 0] = np.nan
    good = rng.uniform(size=(30, 2)) > 0.3
    labels = np.repeat(np.arange(3), 10)
    for method, centre in (("mean", np.mean), ("median", np.median)):
        out = reduce_groups(v, s, good, labels, 3, method)
        for g in range(3):
            for j in range(2):
                sel = (labels == g) & good[:, j] & np.isfinite(v[:, j])
                m = sel.sum()
                assert out.n_good[g, j] == m
                assert out.value[g, j] == pytest.approx(centre(v[sel, j]), rel=1e-12)
                scale = MEDIAN_EFFICIENCY if method == "median" and m > 2 else 1.0
                expected = scale * np.sqrt(np.sum(s[sel, j] ** 2)) / m
                assert out.sigma[g, j] == pytest.approx(expected, rel=1e-12)
                assert out.std[g, j] == pytest.approx(np.std(v[sel, j], ddof=1), rel=1e-12)


def test_empty_group_is_nan_with_no_good_value():
    out = reduce_groups(np.ones((2, 1)), None, np.zeros((2, 1), bool), [0, 1], 2, "mean")
    assert np.isnan(out.value).all() and (out.n_good == 0).all()
    with pytest.raises(ValueError, match="mean or median"):
        reduce_groups(np.ones((2, 1)), None, np.ones((2, 1)), [0, 1], 2, "mode")


@pytest.mark.parametrize("method", ["mean", "median"])
def test_propagated_error_matches_monte_carlo_scatter(method, record_property):
    """Values drawn with their errors: the scatter of the reduced value over many draws is the
    propagated error (mean exact; median within its large-n efficiency)."""
    rng = np.random.default_rng(2)
    n, draws = 25, 4000
    sigma = np.full(n, 0.2) if method == "median" else rng.uniform(0.05, 0.4, n)
    values = 1.0 + rng.normal(size=(draws, n)) * sigma
    reduced = [
        reduce_groups(row[:, None], sigma[:, None], np.ones((n, 1)), np.zeros(n), 1, method)
        for row in values
    ]
    scatter = np.std([r.value[0, 0] for r in reduced], ddof=1)
    propagated = reduced[0].sigma[0, 0]
    record_property(f"summary {method}: MC scatter / propagated sigma", scatter / propagated)
    tolerance = 0.05 if method == "mean" else 0.08  # 4000 draws: 1.1 % for the scatter
    assert scatter / propagated == pytest.approx(1.0, abs=tolerance)
