"""Worker side of :class:`~pyscatter.processes.decomposition.Decomposition` (no pyUSID, no sklearn).

The model was fitted once, at set-up, in the parent and stored in the results group
(``Model/Components``, ``Model/Mean``): it is the truth, workers only load it and project their
block of spectra on it, row by row independently (the loadings of a position do not depend on
the block it was computed in):

* PCA / SVD: ``(x - mean) . components^T`` (``mean = 0`` for SVD);
* NMF: the non-negative least-squares loadings ``argmin_{w >= 0} |x - w H|^2`` for the stored
  components ``H`` (:func:`pyscatter.kernels.decomposition.nnls_gram`, exact, batched).

Bins that are NaN in the stored components were left out of the fit (not finite everywhere)
and are ignored; a position with a non-finite value in a used bin gets NaN loadings.
"""

from __future__ import annotations

from typing import Any

import h5py
import hdf5plugin  # noqa: F401  (filters of compressed sources, e.g. bitshuffle Raw_Data)
import numpy as np
from numpy.typing import NDArray

from pyscatter.io.integrity import read_rows
from pyscatter.kernels.decomposition import nnls_gram, nnls_project, pca_project

__all__ = [
    "NMF_METHODS",
    "build",
    "load_model",
    "make_function",
    "nnls_gram",
    "nnls_project",
    "pca_project",
    "read_block",
]

NMF_METHODS = ("nmf", "minibatch_nmf")

FloatArray = NDArray[np.float64]


def read_block(
    dset: h5py.Dataset, start: int, stop: int, bins: np.ndarray
) -> tuple[FloatArray, NDArray[np.bool_]]:
    """Rows ``[start, stop)`` of ``dset`` on the used ``bins`` as float64, and the rows that are
    finite there (the others are zeroed)."""
    block = np.asarray(read_rows(dset, start, stop), dtype=np.float64)[:, bins]
    ok: NDArray[np.bool_] = np.asarray(np.isfinite(block).all(axis=1))
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
