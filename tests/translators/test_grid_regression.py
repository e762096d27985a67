"""Grid inference on exact nested grids of many shapes (a 8 × 10 raster was once read as 4 × 20)."""

import numpy as np
import pytest

from pyscatter.translators.grid_inference import grid_shape


@pytest.mark.parametrize("shape", [(8, 10), (3, 4), (6, 8), (2, 3, 4), (10, 1), (1, 7), (4, 4, 4)])
def test_exact_nested_grids(shape):
    axes = [np.arange(n) * (3.0 + k) - 7.0 for k, n in enumerate(shape)]
    grids = np.meshgrid(*axes, indexing="ij")
    values = np.stack([g.ravel() for g in grids], axis=1)
    found = grid_shape(values)
    assert found is not None
    got_shape, levels = found
    assert tuple(got_shape) == shape
    for level, axis in zip(levels, axes, strict=True):
        np.testing.assert_allclose(level, axis)
