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


def test_order_parameter_map_is_the_default_plot(scan_file):
    """After translate → profiles → fit → order, viewers open the S map (Y, X, ring)."""
    from pyscatter.processes.fitting import ProfileFit
    from pyscatter.processes.order import OrderParameter
    from pyscatter.processes.profiles import AzimuthalProfiles

    run_on_file(scan_file, AzimuthalProfiles, q=[0.45], half_width=0.03, progress=False)
    run_on_file(scan_file, ProfileFit, progress=False)
    order = run_on_file(scan_file, OrderParameter, progress=False)
    ds = pyscatter.to_xarray(scan_file, "OrderParameter")
    with h5py.File(scan_file, "r") as h5:
        default = get_default(h5)
        assert default is not None and default.is_valid
        assert default.group.name == order.group
        # one value per position: a (Y, X) map that silx opens as an image, not 1-point spectra
        assert default.signal.shape == (3, 4)
        assert default.interpretation == "image" and default.is_image
        assert [a.name.rsplit("/", 1)[-1] for a in default.axes] == ["Y", "X"]
        np.testing.assert_array_equal(default.signal[()], ds["S"].values[..., 0])
        np.testing.assert_array_equal(default.errors[()], ds["S_sigma"].values[..., 0])


def test_cluster_label_map_opens_as_an_image(tmp_path):
    """Issue 19.11: the label map is the default plot and silx opens it as a (Y, X) image, not as
    48 one-point spectra."""
    from pyscatter.datasets_phases import phase_map
    from pyscatter.processes.clustering import Clustering

    path = phase_map((6, 8), rng=3).write(tmp_path / "map.h5")
    summary = run_on_file(path, Clustering, method="kmeans", n_clusters=3, progress=False)
    labels = pyscatter.to_xarray(path, "Clustering")["Labels"].values
    assert labels.shape == (6, 8, 1)
    with h5py.File(path, "r") as h5:
        default = get_default(h5)
        assert default.group.name == summary.group
        assert default.is_valid and default.is_image and not default.is_curve
        assert default.signal.shape == (6, 8)
        np.testing.assert_array_equal(default.signal[()], labels[..., 0])
