"""ProfileFit's default vectorised engine agrees with scipy's curve_fit engine on real profiles."""

from __future__ import annotations

import h5py
import numpy as np

from pyscatter.processes.base import run_on_file
from pyscatter.processes.fitting import ProfileFit
from pyscatter.processes.profiles import AzimuthalProfiles


def test_batched_and_scipy_engines_agree(scan_file):
    run_on_file(
        scan_file, AzimuthalProfiles, q=[0.45], half_width=0.03, npt_azim=90, progress=False
    )
    fast = run_on_file(scan_file, ProfileFit, model="maier_saupe", progress=False)
    slow = run_on_file(scan_file, ProfileFit, model="maier_saupe", engine="scipy", progress=False)
    assert fast.group != slow.group  # the engine is a recorded parameter
    with h5py.File(scan_file, "r") as h5:
        a, b = h5[fast.group], h5[slow.group]
        np.testing.assert_array_equal(a["status"][()], b["status"][()])
        ok = a["status"][()] == 0
        assert ok.sum() >= 6
        for name in ("kappa", "x0", "I"):
            sigma = a[f"{name}_sigma"][()][ok]
            # within 1e-3 of a standard deviation, as the kernel tests require row by row
            np.testing.assert_array_less(
                np.abs(a[name][()][ok] - b[name][()][ok]), 1e-3 * sigma + 1e-6
            )
