"""Worker side of :class:`~pyscatter.processes.clustering.Clustering` (no pyUSID, no sklearn).

The clusters were fitted once, at set-up, and stored in the results group (``Model/Centers``,
and for Gaussian mixtures ``Model/Weights`` and ``Model/Precisions_Cholesky``). Workers assign
each spectrum of their block, row by row independently:

* k-means: the nearest centre and the distances to all
  (:func:`pyscatter.kernels.clustering.nearest_centers`);
* Gaussian mixture: the largest posterior probability and the probabilities of all clusters
  (:func:`pyscatter.kernels.clustering.gmm_log_resp`).

A position with a non-finite value in a used bin gets label -1 and NaN distances/probabilities.
"""

from __future__ import annotations

from typing import Any

import h5py
import numpy as np

from pyscatter.kernels.clustering import gmm_log_resp, nearest_centers
from pyscatter.processes.decomposition_worker import read_block

__all__ = [
    "KMEANS_METHODS",
    "build",
    "gmm_log_resp",
    "load_model",
    "make_function",
    "nearest_centers",
]

KMEANS_METHODS = ("kmeans", "minibatch_kmeans")


def make_function(params: dict[str, Any], model: dict[str, np.ndarray]):
    """Block function from the stored model: ``Centers`` (c, n_spec) NaN in unused bins,
    and for Gaussian mixtures ``Weights`` and ``Precisions_Cholesky`` on the used bins."""
    bins = np.isfinite(model["Centers"]).all(axis=0)
    centers = np.ascontiguousarray(model["Centers"][:, bins])
    source = params["source"]
    kmeans = params["method"] in KMEANS_METHODS
    extra = "Distances" if kmeans else "Probabilities"

    def assign(x):
        if kmeans:
            return nearest_centers(x, centers)
        return gmm_log_resp(
            x,
            centers,
            model["Weights"],
            model["Precisions_Cholesky"],
            params["covariance_type"],
        )

    def compute(h5file: h5py.File, start: int, stop: int) -> dict[str, np.ndarray]:
        x, ok = read_block(h5file[source], start, stop, bins)
        labels, values = assign(x)
        labels[~ok] = -1
        values[~ok] = np.nan
        return {"Labels": labels[:, None], extra: values}

    compute.assign = assign  # type: ignore[attr-defined]
    compute.bins = bins  # type: ignore[attr-defined]
    return compute


def load_model(h5: h5py.File, model_group: str) -> dict[str, np.ndarray]:
    """The stored ``Centers`` (and ``Weights``, ``Precisions_Cholesky``) of a results group."""
    grp = h5[model_group]
    return {k: grp[k][()] for k in ("Centers", "Weights", "Precisions_Cholesky") if k in grp}


def build(spec, h5: h5py.File):
    """Block function of a clustering spec: load the stored clusters once."""
    params = spec.params
    return make_function(params, load_model(h5, params["model_group"]))
