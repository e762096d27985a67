"""ProfileFit in blocks of any size writes the same bits (live sessions fit one position a block).

The kernels' own tests (tests/kernels/test_block_independence.py) compare rows; here the whole
process runs with budgets (``max_mem_mb``) that give different positions per block, on copies
of one profiles file, and every dataset of the results must be equal bit for bit.
"""

from __future__ import annotations

import shutil

import h5py
import numpy as np
import pytest
from numpy.testing import assert_array_equal

from pyscatter.io.record import FLAGS
from pyscatter.processes.base import run_on_file
from pyscatter.processes.fitting import ProfileFit
from tests.processes.test_fitting import make_profiles, read_group, truth_params, write_profiles

SCAN = (5, 6)
RINGS = np.array([0.45, 0.8, 1.2])  # an odd number of rows per position


def pseudo_voigt_params(n: int, rng: np.random.Generator) -> np.ndarray:
    params = np.stack(
        [
            rng.uniform(40, 80, n),
            rng.uniform(300, 800, n),
            rng.uniform(-180, 180, n),
            rng.uniform(12, 30, n),
            rng.uniform(0.2, 0.8, n),
            rng.uniform(-0.02, 0.02, n),
        ],
        axis=1,
    )
    params[: RINGS.size, 1] = 0.0  # position 0 isotropic
    return params


@pytest.mark.parametrize("model", ["maier_saupe", "pseudo_voigt"])
def test_profile_fit_same_bits_for_any_block_size(tmp_path, model):
    params = truth_params(SCAN, n_rings=RINGS.size)
    if model == "pseudo_voigt":
        params = pseudo_voigt_params(len(params), np.random.default_rng(5))
    y, sigma = make_profiles(params, model)
    source = write_profiles(tmp_path / "profiles.h5", y, sigma, scan_shape=SCAN, rings=RINGS)
    results, blocks = [], []
    for i, budget in enumerate((0.05, 0.15, 512.0)):
        path = shutil.copy(source, tmp_path / f"run{i}.h5")
        summary = run_on_file(path, ProfileFit, model=model, max_mem_mb=budget, progress=False)
        with h5py.File(path, "r") as h5:
            blocks.append(int(h5[summary.group].attrs["positions_per_chunk"]))
        out = read_group(path, summary.group)
        del out[FLAGS]  # a checksum per chunk of positions: one per block, by design
        results.append(out)
    assert len(set(blocks)) == 3 and blocks[-1] == int(np.prod(SCAN)), blocks  # 1, a few, all
    statuses = set(np.unique(results[0]["status"]).tolist())
    assert {0, 1} <= statuses  # OK and ISOTROPIC rows
    for other in results[1:]:
        assert other.keys() == results[0].keys()
        for name, data in results[0].items():
            assert_array_equal(other[name], data, err_msg=name)
