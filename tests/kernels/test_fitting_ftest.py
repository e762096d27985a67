"""The F-test p-value of the model selection without scipy.stats (issue 18: fit's start-up):
the same numbers as ``scipy.stats.f.sf``, the reference, everywhere the fits use it."""

from __future__ import annotations

import numpy as np
from scipy import stats

from pyscatter.kernels.fitting import _f_test_p


def _reference(gain, extra, noise2, dof):
    """The implementation before: scipy.stats.f.sf."""
    with np.errstate(all="ignore"):
        stat = (gain / extra) / noise2
        p = stats.f.sf(np.where(np.isfinite(stat), stat, 0.0), extra, np.maximum(dof, 1.0))
    p = np.where(np.isnan(stat), 1.0, p)
    p = np.where(np.isposinf(stat), 0.0, p)
    return np.where(dof >= 1, p, 1.0)


def test_f_test_p_is_scipy_stats_bit_for_bit():
    rng = np.random.default_rng(0)
    n = 20000
    gain = np.concatenate(
        [rng.exponential(5.0, n), -rng.exponential(1.0, 100), [0.0, np.nan, np.inf, -np.inf, 1e300]]
    )
    m = gain.size
    noise2 = np.abs(rng.normal(1.0, 0.3, m))
    noise2[:50] = 0.0  # inf / nan statistics
    dof = rng.integers(-2, 400, m).astype(np.float64)
    for extra in (1, 2, 5, rng.integers(1, 6, m)):
        got = _f_test_p(gain, extra, noise2, dof)
        want = _reference(gain, extra, noise2, dof)
        np.testing.assert_array_equal(got, want)
        assert got.dtype == want.dtype
