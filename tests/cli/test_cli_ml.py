"""``pyscatter decompose``, ``cluster`` and ``peaks`` on a map of known phases."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score

from pyscatter import to_xarray
from pyscatter.cli import main


@pytest.fixture(scope="module")
def phases():
    from pyscatter.datasets_phases import phase_map

    return phase_map((6, 8), scale=4.0, rng=2)


@pytest.fixture()
def path(tmp_path, phases):
    return phases.write(tmp_path / "map.h5")


def test_decompose_cluster_peaks_with_plots(path, phases, tmp_path, capsys):
    png = tmp_path / "components.png"
    argv = ["decompose", str(path), "--method", "nmf", "--n-components", "3", "--no-progress"]
    assert main([*argv, "--plot", str(png)]) == 0
    out = capsys.readouterr().out
    assert out.strip().endswith("Raw_Data-Decomposition_000")
    assert png.stat().st_size > 10_000
    loadings = to_xarray(path, "Decomposition")["Loadings"]
    assert loadings.shape == (6, 8, 3) and np.isfinite(loadings.values).all()

    png = tmp_path / "labels.png"
    argv = ["cluster", str(path), "--method", "kmeans", "--n-clusters", "3", "--no-progress"]
    assert main([*argv, "--plot", str(png)]) == 0
    labels = to_xarray(path, "Clustering")["Labels"].values[..., 0]
    assert adjusted_rand_score(phases.labels.ravel(), labels.ravel()) == 1.0  # exact regions
    assert png.stat().st_size > 10_000

    png = tmp_path / "peaks.png"
    argv = ["peaks", str(path), "--peak", "6.0", "--peak", "8.7", "--window", "1.2"]
    assert main([*argv, "--sigma", "poisson", "--no-progress", "--plot", str(png)]) == 0
    ds = to_xarray(path, "PeakFit")
    for j, peak in enumerate(phases.peaks[:1] + phases.peaks[2:3]):  # 6.0 and 8.7
        strong = phases.fractions[..., peak.phase] >= 0.5
        rel = np.abs(ds["position"].values[..., j][strong] / peak.position - 1)
        assert rel.max() < 1e-3  # 0.1 %
    assert png.stat().st_size > 10_000

    # the same command again reuses the results
    assert main(["decompose", str(path), "--method", "nmf", "--no-progress"]) == 0
    with h5py.File(path, "r") as h5:
        chan = h5["Measurement_000/Channel_000"]
        assert sorted(k for k in chan if "Decomposition" in k) == ["Raw_Data-Decomposition_000"]


def test_bad_parameters_exit_2_naming_them(path, capsys):
    assert main(["decompose", str(path), "--n-components", "0"]) == 2
    assert "n_components must be an integer >= 1" in capsys.readouterr().err
    assert main(["peaks", str(path), "--peak", "6.0"]) == 2
    assert "window=" in capsys.readouterr().err
    assert main(["cluster", str(path), "--method", "dbscan"]) == 2  # argparse choices
    assert main(["peaks", str(path), "--window-limits", "5.5", "6.5", "--window", "1"]) == 2
    assert "either windows" in capsys.readouterr().err
