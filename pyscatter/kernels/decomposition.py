"""Projections of spectra on a fitted decomposition (PCA, SVD, NMF), row by row.

The model (components ``H`` and, for PCA, the mean) is fitted once elsewhere; these functions
only project spectra on it, every row independently of the others (the loadings of a position
do not depend on the block it was computed in):

* PCA / SVD: ``(x - mean) . H^T`` (:func:`pca_project`, ``mean = None`` for SVD);
* NMF: the non-negative least-squares loadings ``argmin_{w >= 0} |x - w H|^2``
  (:func:`nnls_project`, exact, batched over rows by :func:`nnls_gram`).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = ["nnls_gram", "nnls_project", "pca_project"]

FloatArray = NDArray[np.float64]


def nnls_gram(
    gram: ArrayLike, rhs: ArrayLike, *, max_iter: int | None = None
) -> tuple[FloatArray, NDArray[np.bool_]]:
    """Non-negative least squares for many right-hand sides sharing one Gram matrix.

    Solves ``min_w 1/2 w^T G w - b^T w`` subject to ``w >= 0`` for every row ``b`` of ``rhs``:
    with ``G = H H^T`` and ``b = H x`` this is ``min_{w >= 0} |x - w H|^2``. Block principal
    pivoting (Kim & Park, SIAM J. Sci. Comput. 33, 3261, 2011) with its backup rule, vectorised
    over rows: each row follows its own pivoting sequence, so a row's result does not depend on
    the others.

    Parameters
    ----------
    gram : array_like, shape (k, k)
        Symmetric positive (semi-)definite.
    rhs : array_like, shape (n, k)
        Finite.
    max_iter : int, optional
        Pivoting steps (default ``10 k + 50``, far more than needed).

    Returns
    -------
    w : ndarray, shape (n, k)
        Non-negative solutions.
    converged : ndarray of bool, shape (n,)
        False for rows that ran out of steps (their ``w`` is the last iterate, clipped at 0).

    Examples
    --------
    >>> w, ok = nnls_gram(np.eye(2), [[1.0, -2.0], [0.5, 0.5]])
    >>> w.tolist(), ok.tolist()
    ([[1.0, 0.0], [0.5, 0.5]], [True, True])
    """
    g = np.asarray(gram, dtype=float)
    b = np.atleast_2d(np.asarray(rhs, dtype=float))
    n, k = b.shape
    if g.shape != (k, k):
        raise ValueError(f"gram must have shape ({k}, {k}) to match rhs; got {g.shape}")
    steps = 10 * k + 50 if max_iter is None else int(max_iter)
    x = np.zeros((n, k))
    y = -b.copy()
    passive = np.zeros((n, k), dtype=bool)
    budget = np.full(n, 3)
    best = np.full(n, k + 1)
    tol = 1e-12 * np.maximum(np.abs(b).max(axis=1, initial=0.0), np.finfo(float).tiny)[:, None]
    todo = np.arange(n)
    eye = np.eye(k, dtype=bool)
    for _ in range(steps):
        infeasible = (passive[todo] & (x[todo] < 0)) | (~passive[todo] & (y[todo] < -tol[todo]))
        count = infeasible.sum(axis=1)
        keep = count > 0
        todo, infeasible, count = todo[keep], infeasible[keep], count[keep]
        if todo.size == 0:
            break
        better = count < best[todo]
        best[todo[better]] = count[better]
        budget[todo[better]] = 3
        full = better | (budget[todo] > 0)
        budget[todo[~better & full]] -= 1
        flip = np.where(full[:, None], infeasible, False)
        single = np.flatnonzero(~full)
        if single.size:  # backup rule: move only the infeasible variable of largest index
            last = k - 1 - np.argmax(infeasible[single, ::-1], axis=1)
            flip[single, last] = True
        passive[todo] ^= flip
        x[todo], y[todo] = _solve_passive(g, b[todo], passive[todo], eye)
    converged = np.ones(n, dtype=bool)
    converged[todo] = False
    return np.where(passive, np.maximum(x, 0.0), 0.0), converged


def _solve_passive(
    g: FloatArray, b: FloatArray, passive: NDArray[np.bool_], eye: NDArray[np.bool_]
) -> tuple[FloatArray, FloatArray]:
    """Unconstrained solution on the passive set of each row, and the dual on the rest."""
    both = passive[:, :, None] & passive[:, None, :]
    a = np.where(both, g, 0.0) + (eye & ~passive[:, :, None])
    rhs = np.where(passive, b, 0.0)
    try:
        xs = np.linalg.solve(a, rhs[:, :, None])[:, :, 0]
    except np.linalg.LinAlgError:  # dependent components: the minimum-norm solution
        xs = np.einsum("nkj,nj->nk", np.linalg.pinv(a), rhs)
    xs = np.where(passive, xs, 0.0)
    ys = np.einsum("nk,kj->nj", xs, g) - b
    return xs, np.where(passive, 0.0, ys)


def nnls_project(spectra: ArrayLike, components: ArrayLike) -> FloatArray:
    """Non-negative loadings ``argmin_{w >= 0} |x - w H|^2`` of every row ``x`` of ``spectra``.

    Parameters
    ----------
    spectra : array_like, shape (n, m)
        Finite.
    components : array_like, shape (k, m)
        ``H``, linearly independent rows.

    Returns
    -------
    ndarray, shape (n, k)
    """
    h = np.asarray(components, dtype=float)
    x = np.asarray(spectra, dtype=float)
    gram = np.einsum("kb,jb->kj", h, h)
    return nnls_gram(gram, np.einsum("nb,kb->nk", x, h))[0]


def pca_project(spectra: ArrayLike, components: ArrayLike, mean: ArrayLike | None) -> FloatArray:
    """Principal-component scores ``(x - mean) . components^T`` of every row ``x``.

    Computed with ``einsum`` (no BLAS blocking), so a row gets the same bits whatever block it
    comes in.

    Parameters
    ----------
    spectra : array_like, shape (n, m)
    components : array_like, shape (k, m)
    mean : array_like, shape (m,), optional
        Subtracted first (PCA); None for SVD.

    Returns
    -------
    ndarray, shape (n, k)

    Examples
    --------
    >>> pca_project([[1.0, 2.0]], [[1.0, 0.0], [0.0, 1.0]], [1.0, 1.0]).tolist()
    [[0.0, 1.0]]
    """
    x = np.asarray(spectra, dtype=float)
    if mean is not None:
        x = x - np.asarray(mean, dtype=float)
    return np.einsum("nb,kb->nk", x, np.asarray(components, dtype=float))
