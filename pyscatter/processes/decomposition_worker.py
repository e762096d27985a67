"""Worker side of :class:`~pyscatter.processes.decomposition.Decomposition` (no pyUSID, no sklearn).

The model was fitted once, at set-up, in the parent and stored in the results group
(``Model/Components``, ``Model/Mean``): it is the truth, workers only load it and project their
block of spectra on it, row by row independently (the loadings of a position do not depend on
the block it was computed in):

* PCA / SVD: ``(x - mean) . components^T`` (``mean = 0`` for SVD);
* NMF: the non-negative least-squares loadings ``argmin_{w >= 0} |x - w H|^2`` for the stored
  components ``H`` (:func:`nnls_gram`, exact, batched).

Bins that are NaN in the stored components were left out of the fit (not finite everywhere)
and are ignored; a position with a non-finite value in a used bin gets NaN loadings.
"""

from __future__ import annotations

from typing import Any

import h5py
import hdf5plugin  # noqa: F401  (filters of compressed sources, e.g. bitshuffle Raw_Data)
import numpy as np
from numpy.typing import ArrayLike, NDArray

from pyscatter.io.integrity import read_rows

NMF_METHODS = ("nmf", "minibatch_nmf")

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


def _solve_passive(g, b, passive, eye):
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
    """``(x - mean) . components^T`` row by row (einsum: no BLAS blocking, same bits per row)."""
    x = np.asarray(spectra, dtype=float)
    if mean is not None:
        x = x - np.asarray(mean, dtype=float)
    return np.einsum("nb,kb->nk", x, np.asarray(components, dtype=float))


def read_block(
    dset: h5py.Dataset, start: int, stop: int, bins: np.ndarray
) -> tuple[FloatArray, NDArray[np.bool_]]:
    """Rows ``[start, stop)`` of ``dset`` on the used ``bins`` as float64, and the rows that are
    finite there (the others are zeroed)."""
    block = np.asarray(read_rows(dset, start, stop), dtype=np.float64)[:, bins]
    ok = np.isfinite(block).all(axis=1)
    block[~ok] = 0.0
    return block, ok


def make_function(params: dict[str, Any], components: np.ndarray, mean: np.ndarray | None):
    """Block function from the stored model: ``components`` (k, n_spec) with NaN in unused bins."""
    bins = np.isfinite(components).all(axis=0)
    comps = np.ascontiguousarray(components[:, bins])
    centre = None if mean is None else np.ascontiguousarray(mean[bins])
    source = params["source"]
    nmf = params["method"] in NMF_METHODS
    clip = bool(params.get("clip_negative"))

    def compute(h5file: h5py.File, start: int, stop: int) -> dict[str, np.ndarray]:
        x, ok = read_block(h5file[source], start, stop, bins)
        if nmf:
            loadings = nnls_project(np.maximum(x, 0.0) if clip else x, comps)
        else:
            loadings = pca_project(x, comps, centre)
        loadings[~ok] = np.nan
        return {"Loadings": loadings}

    return compute


def load_model(h5: h5py.File, model_group: str) -> tuple[np.ndarray, np.ndarray | None]:
    """The stored ``Components`` and ``Mean`` (None when absent) of a results group."""
    grp = h5[model_group]
    mean = grp["Mean"][()] if "Mean" in grp else None
    return grp["Components"][()], mean


def build(spec, h5: h5py.File):
    """Block function of a decomposition spec: load the stored model once."""
    params = spec.params
    components, mean = load_model(h5, params["model_group"])
    return make_function(params, components, mean)
