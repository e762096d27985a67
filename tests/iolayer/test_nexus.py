"""Results groups are valid NXdata for silx, with a @default chain from the root."""

from __future__ import annotations

import h5py
import numpy as np
from silx.io.nxdata import NXdata, get_default

import pyscatter
from pyscatter.processes.base import run_on_file
from pyscatter.processes.integration import AzimuthalIntegration


def test_integration_group_is_valid_nxdata_with_default_chain(scan_file):
    summary = run_on_file(
        scan_file, AzimuthalIntegration, npt=40, error_model="poisson", progress=False
    )
    ds = pyscatter.to_xarray(scan_file, "AzimuthalIntegration")
    with h5py.File(scan_file, "r") as h5:
        nx = NXdata(h5[summary.group])
        assert nx.is_valid, nx.issues
        assert nx.signal.shape == (3, 4, 40)
        # the N-d view shows exactly the flat USID main dataset, unflattened
        np.testing.assert_array_equal(nx.signal[()], ds["Intensity"].values)
        np.testing.assert_array_equal(nx.errors[()], ds["Intensity_Sigma"].values)
        assert [a.attrs["units"] for a in nx.axes] == ["um", "um", "1/nm"]
        np.testing.assert_array_equal(nx.axes[2][()], ds["q"].values)
        default = get_default(h5)
        assert default is not None and default.group.name == summary.group


def test_latest_results_become_the_default(scan_file):
    run_on_file(scan_file, AzimuthalIntegration, npt=40, progress=False)
    cake = run_on_file(scan_file, AzimuthalIntegration, npt=30, npt_azim=12, progress=False)
    with h5py.File(scan_file, "r") as h5:
        default = get_default(h5)
        assert default.group.name == cake.group
        assert default.signal.shape == (3, 4, 12, 30)
        assert default.is_valid
