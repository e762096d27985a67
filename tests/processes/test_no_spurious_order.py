"""A noise bump fitted as a sharp peak (status WEAK) must never show up as order (S near 0)."""

from __future__ import annotations

import numpy as np

import pyscatter
from pyscatter import datasets
from pyscatter.processes.base import run_on_file
from pyscatter.processes.fitting import ProfileFit
from pyscatter.processes.order import OrderParameter
from pyscatter.processes.profiles import AzimuthalProfiles


def test_isotropic_positions_of_a_large_noisy_map_have_s_near_zero(tmp_path):
    from conftest import write_scan

    # found by the notebooks: at (5, 7) kappa = 0, yet a noise bump was fitted with S = 0.88
    scan = datasets.oriented_map((12, 16), frame_shape=(96, 112), kappa_max=12, rng=5)
    path = write_scan(tmp_path / "map.h5", scan)
    run_on_file(path, AzimuthalProfiles, q=[0.45], half_width=0.06, npt_azim=180, progress=False)
    run_on_file(path, ProfileFit, model="maier_saupe", progress=False)
    run_on_file(path, OrderParameter, progress=False)
    ds = pyscatter.to_xarray(path, "OrderParameter")
    s = ds["S"].values[..., 0]
    assert scan.kappa[5, 7] == 0
    isotropic = scan.kappa == 0
    assert np.abs(s[isotropic]).max() < 0.03
    # and everywhere the truth holds within the 0.03
    np.testing.assert_allclose(s, scan.order_parameter, atol=0.03)
