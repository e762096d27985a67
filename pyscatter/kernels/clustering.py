"""Assignment of spectra to fitted clusters (k-means centres, Gaussian mixtures), row by row.

The clusters are fitted once elsewhere; these functions assign every spectrum independently of
the others:

* k-means: the nearest centre (Euclidean, ties to the lower index) and the distances to all
  (:func:`nearest_centers`);
* Gaussian mixture: the largest posterior probability and the probabilities of all clusters,
  from the means, weights and Cholesky factors of the precisions in scikit-learn's
  parametrisation, for every ``covariance_type`` (:func:`gmm_log_resp`).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = ["gmm_log_resp", "nearest_centers"]

FloatArray = NDArray[np.float64]


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

    Examples
    --------
    Two one-dimensional clusters of unit variance at 0 and 2:

    >>> labels, prob = gmm_log_resp([[0.0], [1.5]], [[0.0], [2.0]], [0.5, 0.5],
    ...                             [[1.0], [1.0]], "diag")
    >>> labels.tolist(), prob.round(3).tolist()
    ([0, 1], [[0.881, 0.119], [0.269, 0.731]])
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
