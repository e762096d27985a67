"""Clustering on maps of known phases: regions recovered, labels as scikit-learn's, resume."""

from __future__ import annotations

import shutil

import h5py
import numpy as np
import pytest
from numpy.testing import assert_allclose
from sklearn.metrics import adjusted_rand_score

from pyscatter import to_xarray
from pyscatter.errors import InputError
from pyscatter.io import safety
from pyscatter.processes.base import run_on_file
from pyscatter.processes.clustering import Clustering
from pyscatter.processes.decomposition import Decomposition, read_model


@pytest.fixture(scope="module")
def phases():
    from pyscatter.datasets_phases import phase_map

    return phase_map((12, 16), rng=3)


def run(path, **params):
    params.setdefault("progress", False)
    return run_on_file(path, Clustering, **params)


def labels(path):
    return to_xarray(path, "Clustering")["Labels"].values[..., 0]


@pytest.mark.parametrize(
    "params",
    [
        dict(method="kmeans"),
        dict(method="minibatch_kmeans", batch_size=32, n_epochs=3),
        dict(method="gmm", covariance_type="diag"),
        dict(method="gmm", covariance_type="spherical"),
    ],
)
def test_clusters_recover_the_phase_regions(path, phases, params):
    run(path, n_clusters=3, **params)
    found = labels(path)
    # every region is dominated (fraction >= 0.65) by its own phase: an exact partition is
    # expected (measured ARI 1.0 for every method, down to 1/100 of the counts)
    assert adjusted_rand_score(phases.labels.ravel(), found.ravel()) == 1.0
    sizes = read_model(path, "Clustering")["Cluster_Sizes"].values
    assert (np.diff(sizes) <= 0).all() and sizes.sum() == 192  # numbered by decreasing size
    assert_allclose(np.bincount(found.ravel()), sizes)


def test_kmeans_labels_distances_and_means(path, phases):
    from sklearn.cluster import KMeans

    summary = run(path, method="kmeans", n_clusters=3, random_state=5)
    x = phases.intensity.reshape(-1, phases.q.size).astype(float)
    est = KMeans(n_clusters=3, n_init=10, random_state=5).fit(x)
    found = labels(path).ravel()
    model = read_model(path, "Clustering")
    # the same clusters as scikit-learn, renumbered by size
    order = np.argsort(-np.bincount(est.labels_), kind="stable")
    assert np.array_equal(np.argsort(order)[est.labels_], found)
    with h5py.File(path, "r") as h5:
        centers = h5[summary.group]["Model/Centers"][()]
    assert_allclose(centers, est.cluster_centers_[order], rtol=1e-12)
    dist = to_xarray(path, "Clustering")["Distances"].values.reshape(-1, 3)
    expected = np.linalg.norm(x[:, None, :] - centers[None], axis=-1)
    assert_allclose(dist, expected, rtol=2e-7)  # float32 distances
    means = np.stack([x[found == j].mean(axis=0) for j in range(3)])
    assert_allclose(model["Cluster_Means"].values, means, rtol=1e-12)


@pytest.mark.parametrize("covariance_type", ["full", "tied", "diag", "spherical"])
def test_gmm_kernel_equals_scikit_learn(covariance_type):
    from sklearn.mixture import GaussianMixture

    from pyscatter.processes.clustering_worker import gmm_log_resp

    rng = np.random.default_rng(1)
    x = np.concatenate([rng.normal(c, s, (60, 4)) for c, s in ((0, 1), (4, 0.5), (-3, 2))])
    est = GaussianMixture(3, covariance_type=covariance_type, random_state=0).fit(x)
    labels_, prob = gmm_log_resp(
        x, est.means_, est.weights_, est.precisions_cholesky_, covariance_type
    )
    # the same formulas evaluated in another order: rounding only
    assert_allclose(prob, est.predict_proba(x), rtol=1e-9, atol=1e-12)
    assert np.array_equal(labels_, est.predict(x))


def test_gmm_process_probabilities_equal_scikit_learn(path):
    """Full covariances on PCA loadings (3 features: cheap and well determined)."""
    from sklearn.mixture import GaussianMixture

    dec = run_on_file(path, Decomposition, method="pca", n_components=3, progress=False)
    params = dict(method="gmm", n_clusters=3, covariance_type="full", random_state=2)
    run(path, source=f"{dec.group}/Loadings", **params)
    x = to_xarray(path, "Decomposition")["Loadings"].values.reshape(-1, 3).astype(np.float64)
    est = GaussianMixture(3, covariance_type="full", random_state=2).fit(x)
    order = np.argsort(-np.bincount(est.predict(x), minlength=3), kind="stable")
    prob = to_xarray(path, "Clustering")["Probabilities"].values.reshape(-1, 3)
    # same parameters from the same data; float32 probabilities
    assert_allclose(prob, est.predict_proba(x)[:, order], atol=2e-6)
    assert np.array_equal(np.argsort(order)[est.predict(x)], labels(path).ravel())


def test_clustering_decomposition_loadings(path, phases):
    dec = run_on_file(path, Decomposition, method="pca", n_components=3, progress=False)
    summary = run(path, source=f"{dec.group}/Loadings", method="kmeans", n_clusters=3)
    assert summary.group.endswith("/Loadings-Clustering_000")
    assert adjusted_rand_score(phases.labels.ravel(), labels(path).ravel()) == 1.0
    assert read_model(path, "Clustering")["Cluster_Means"].dims == ("cluster", "component")


def test_positions_without_data_get_label_minus_one(tmp_path, phases):
    from pyscatter.datasets_phases import PhaseMap

    counts = phases.intensity.copy()
    counts[2, 3] = np.nan
    path = PhaseMap(**{**phases.__dict__, "intensity": counts}).write(tmp_path / "nan.h5")
    run(path, method="kmeans", n_clusters=3)
    found = labels(path)
    assert found[2, 3] == -1 and (np.delete(found.ravel(), 2 * 16 + 3) >= 0).all()
    dist = to_xarray(path, "Clustering")["Distances"].values
    assert np.isnan(dist[2, 3]).all()


def test_resume_uses_the_stored_clusters(tmp_path, phase_file, monkeypatch):
    params = dict(method="gmm", n_clusters=3, max_mem_mb=0.2)
    reference = shutil.copy(phase_file, tmp_path / "reference.h5")
    ref = run(reference, **params)
    path = shutil.copy(phase_file, tmp_path / "killed.h5")
    real = safety.write_status
    calls = []

    def interrupt(*args, **kwargs):
        calls.append(1)
        real(*args, **kwargs)
        if len(calls) == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(safety, "write_status", interrupt)
    with pytest.raises(KeyboardInterrupt):
        run(path, **params)
    monkeypatch.setattr(safety, "write_status", real)
    monkeypatch.setattr(Clustering, "_fit", lambda self: pytest.fail("refitted on resume"))
    summary = run(path, **params)
    assert summary.resumed and 0 < summary.computed_positions < 192
    with h5py.File(reference, "r") as a, h5py.File(path, "r") as b:
        for name in ("Labels", "Probabilities"):
            assert a[ref.group][name][()].tobytes() == b[summary.group][name][()].tobytes()


def test_results_are_usid_and_bad_parameters_named(path):
    from pyUSID.io.hdf_utils import check_if_main

    summary = run(path, method="kmeans", n_clusters=2)
    with h5py.File(path, "r") as h5:
        group = h5[summary.group]
        for name in ("Labels", "Distances", "Model/Cluster_Means"):
            assert check_if_main(group[name]), name
        assert group["Labels"].dtype == np.int32
    with pytest.raises(InputError, match="unsupported method 'dbscan'"):
        run(path, method="dbscan")
    with pytest.raises(InputError, match="n_clusters must be an integer >= 2"):
        run(path, n_clusters=1)
    with pytest.raises(InputError, match="unsupported covariance_type 'banded'"):
        run(path, method="gmm", covariance_type="banded")
