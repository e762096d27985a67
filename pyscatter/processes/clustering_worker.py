"""Worker side of :class:`~pyscatter.processes.clustering.Clustering` (no pyUSID, no sklearn).

The clusters were fitted once, at set-up, and stored in the results group (``Model/Centers``,
and for Gaussian mixtures ``Model/Weights`` and ``Model/Precisions_Cholesky``). Workers assign
each spectrum of their block, row by row independently:

* k-means: the nearest centre (Euclidean, ties to the lower index) and the distances to all;
* Gaussian mixture: the largest posterior probability and the probabilities of all clusters,
  from the stored means, weights and Cholesky factors of the precisions (scikit-learn's
  parametrisation, for every ``covariance_type``).

A position with a non-finite value in a used bin gets label -1 and NaN distances/probabilities.
"""

from __future__ import annotations

from typing import Any

import h5py
import numpy as np
from numpy.typing import ArrayLike, NDArray

from pyscatter.processes.decomposition_worker import read_block

FloatArray = NDArray[np.float64]

KMEANS_METHODS = ("kmeans", "minibatch_kmeans")


def nearest_centers(spectra: ArrayLike, centers: ArrayLike) -> tuple[NDArray[np.int32], FloatArray]:
    """Label of the nearest centre of every row, and the Euclidean distances to all centres.

    Parameters
    ----------
    spectra : array_like, shape (n, m)
    centers : array_like, shape (c, m)

    Returns
    -------
    labels : ndarray of int32, shape (n,)
    distances : ndarray, shape (n, c)

    Examples
    --------
    >>> labels, d = nearest_centers([[0.0, 1.0], [3.0, 3.0]], [[0.0, 0.0], [3.0, 4.0]])
    >>> labels.tolist(), d.round(3).tolist()
    ([0, 1], [[1.0, 4.243], [4.243, 1.0]])
    """
    x = np.asarray(spectra, dtype=float)
    c = np.asarray(centers, dtype=float)
    d2 = np.empty((x.shape[0], c.shape[0]))
    for j in range(c.shape[0]):  # a loop over clusters, each a vectorised pass over the rows
        diff = x - c[j]
        d2[:, j] = np.einsum("nb,nb->n", diff, diff)
    return np.argmin(d2, axis=1).astype(np.int32), np.sqrt(d2)


def gmm_log_resp(
    spectra: ArrayLike,
    means: ArrayLike,
    weights: ArrayLike,
    precisions_cholesky: ArrayLike,
    covariance_type: str,
) -> tuple[NDArray[np.int32], FloatArray]:
    """Labels and posterior probabilities of a Gaussian mixture (scikit-learn's parameters).

    Parameters
    ----------
    spectra : array_like, shape (n, m)
    means : array_like, shape (c, m)
    weights : array_like, shape (c,)
    precisions_cholesky : array_like
        ``full``: (c, m, m); ``tied``: (m, m); ``diag``: (c, m); ``spherical``: (c,) — the
        ``precisions_cholesky_`` of :class:`sklearn.mixture.GaussianMixture`.
    covariance_type : {"full", "tied", "diag", "spherical"}

    Returns
    -------
    labels : ndarray of int32, shape (n,)
    probabilities : ndarray, shape (n, c)
    """
    x = np.asarray(spectra, dtype=float)
    mu = np.asarray(means, dtype=float)
    prec = np.asarray(precisions_cholesky, dtype=float)
    n, m = x.shape
    c = mu.shape[0]
    log_p = np.empty((n, c))
    for j in range(c):
        diff = x - mu[j]
        if covariance_type in ("full", "tied"):
            chol = prec[j] if covariance_type == "full" else prec
            y = np.einsum("nb,bd->nd", diff, chol)
            log_det = np.log(np.diagonal(chol)).sum()
        elif covariance_type == "diag":
            y = diff * prec[j]
            log_det = np.log(prec[j]).sum()
        else:
            y = diff * prec[j]
            log_det = m * np.log(prec[j])
        log_p[:, j] = -0.5 * (m * np.log(2 * np.pi) + np.einsum("nd,nd->n", y, y)) + log_det
    log_p += np.log(np.asarray(weights, dtype=float))
    top = log_p.max(axis=1, keepdims=True)
    prob = np.exp(log_p - top)
    prob /= prob.sum(axis=1, keepdims=True)
    return np.argmax(log_p, axis=1).astype(np.int32), prob


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
    grp = h5[model_group]
    return {k: grp[k][()] for k in ("Centers", "Weights", "Precisions_Cholesky") if k in grp}


def build(spec, h5: h5py.File):
    """Block function of a clustering spec: load the stored clusters once."""
    params = spec.params
    return make_function(params, load_model(h5, params["model_group"]))
