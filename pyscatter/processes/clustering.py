"""Clustering of hyperspectral results: k-means, minibatch k-means and Gaussian mixtures.

Like :class:`~pyscatter.processes.decomposition.Decomposition`, the clusters are fitted once, at
set-up, in the parent, on every usable position of the source (I(q), a cake, or decomposition
loadings) and stored in the results group before it is linked; blocks only assign positions to
the stored clusters (:mod:`pyscatter.processes.clustering_worker`), so a resumed run never refits
and every block is bit-identical.

::

    Intensity-Clustering_000/
    ├── Labels                 (n_positions, 1) int32 main: cluster of each position, -1 if none
    ├── Distances              (n_positions, n_clusters) k-means: distance to every centre
    │   or Probabilities       (n_positions, n_clusters) Gaussian mixture: posterior probabilities
    ├── completed_chunks
    └── Model/                 attrs: method, sha256, fit statistics
        ├── Cluster_Means      (n_clusters, n_spec) main: mean source spectrum of each cluster
        ├── Centers            (n_clusters, n_spec) what the labels are computed from
        ├── Cluster_Sizes      (n_clusters,) positions per cluster
        ├── Weights, Precisions_Cholesky   Gaussian mixtures (scikit-learn's parameters)
        └── Fit_Positions, Used_Bins

Clusters are numbered by decreasing size (ties: scikit-learn's order). NaN handling is that of
Decomposition: positions without any finite value get label -1; bins not finite at every other
position are left out (NaN in the centres and means).
"""

from __future__ import annotations

import logging
from typing import Any

import h5py
import numpy as np

from pyscatter.errors import InputError
from pyscatter.io.usid import Dim
from pyscatter.processes.base import Output
from pyscatter.processes.clustering_worker import KMEANS_METHODS, make_function
from pyscatter.processes.decomposition import (
    FittedModel,
    FittedModelProcess,
    SourceSummary,
    _positive_int,
    _reads,
    check_source,
    default_spectra,
    full_bins,
    iter_batches,
    load_rows,
    rows_per_read,
    scan_source,
    sklearn_warnings_logged,
)

__all__ = ["COVARIANCE_TYPES", "METHODS", "Clustering"]

log = logging.getLogger(__name__)

METHODS = ("kmeans", "minibatch_kmeans", "gmm")
COVARIANCE_TYPES = ("full", "tied", "diag", "spherical")


class Clustering(FittedModelProcess):
    """Cluster the spectra of a main dataset; labels (and distances or probabilities) per position.

    Parameters
    ----------
    h5_main : h5py.Dataset
        Source main dataset, e.g. an AzimuthalIntegration ``Intensity`` or Decomposition
        ``Loadings``.
    method : {"kmeans", "minibatch_kmeans", "gmm"}
        :class:`sklearn.cluster.KMeans`, ``MiniBatchKMeans`` (``partial_fit`` over batches of
        ``batch_size`` positions read in a fixed order, ``n_epochs`` passes: data larger than
        memory) or :class:`sklearn.mixture.GaussianMixture`.
    n_clusters : int
    random_state : int
        Seed of the initialisations.
    n_init : int, optional
        Initialisations tried (default 10 for k-means, 1 for Gaussian mixtures, 3 for minibatch).
    covariance_type : {"full", "tied", "diag", "spherical"}
        Gaussian mixtures only (default ``"diag"``: a full covariance of 1000 q bins is neither
        cheap nor well determined).
    max_iter : int, optional
        Default 300 (k-means) or 100 (Gaussian mixtures).
    batch_size : int
        Positions per ``partial_fit`` of minibatch k-means (recorded: it changes the model).
    n_epochs : int
        Passes over the data of minibatch k-means.
    **kwargs
        Execution options of :class:`~pyscatter.processes.base.ScatterProcess`.
    """

    process_name = "Clustering"
    factory = "pyscatter.processes.clustering_worker:build"
    nexus_signal = "Labels"

    def __init__(
        self,
        h5_main: h5py.Dataset,
        *,
        method: str = "kmeans",
        n_clusters: int = 3,
        random_state: int = 0,
        n_init: int | None = None,
        covariance_type: str = "diag",
        max_iter: int | None = None,
        batch_size: int = 256,
        n_epochs: int = 20,
        **kwargs: Any,
    ) -> None:
        check_source(h5_main)
        if method not in METHODS:
            raise InputError(f"unsupported method {method!r}; expected one of {', '.join(METHODS)}")
        c = _positive_int(n_clusters, "n_clusters", 2)
        if c > h5_main.shape[0]:
            raise InputError(
                f"n_clusters must be at most the {h5_main.shape[0]} positions; got {c}"
            )
        gmm = method == "gmm"
        if gmm and covariance_type not in COVARIANCE_TYPES:
            raise InputError(
                f"unsupported covariance_type {covariance_type!r}; expected one of "
                f"{', '.join(COVARIANCE_TYPES)}"
            )
        minibatch = method == "minibatch_kmeans"
        if minibatch and _positive_int(batch_size, "batch_size") < c:
            raise InputError(f"batch_size must be at least n_clusters ({c}); got {batch_size}")
        default_init = {"kmeans": 10, "gmm": 1, "minibatch_kmeans": 3}[method]
        params = {
            "method": method,
            "n_clusters": c,
            "random_state": _positive_int(random_state, "random_state", 0),
            "n_init": default_init if n_init is None else _positive_int(n_init, "n_init"),
            "covariance_type": covariance_type if gmm else None,
            "max_iter": (100 if gmm else 300)
            if max_iter is None
            else _positive_int(max_iter, "max_iter"),
            "batch_size": int(batch_size) if minibatch else None,
            "n_epochs": _positive_int(n_epochs, "n_epochs") if minibatch else None,
        }
        if minibatch:
            params["max_iter"] = None
        super().__init__(h5_main, params, **kwargs)

    @classmethod
    def default_source(cls, h5: h5py.File) -> h5py.Dataset:
        return default_spectra(h5)

    # ------------------------------------------------------------------ outputs
    def _model_dim(self) -> Dim:
        return Dim("cluster", "index", np.arange(self.parameters["n_clusters"]))

    def _outputs(self) -> list[Output]:
        if getattr(self, "_outputs_cache", None) is None:
            label = Dim("label", "index", np.zeros(1))
            outs = [
                Output(
                    "Labels",
                    "Cluster label",
                    "index",
                    (label,),
                    dtype=np.int32,
                    spec_prefix="Labels_Spectroscopic_",
                )
            ]
            if self.parameters["method"] in KMEANS_METHODS:
                units = str(self._source.attrs["units"])
                outs.append(Output("Distances", "Distance to centre", units, (self._model_dim(),)))
            else:
                outs.append(
                    Output("Probabilities", "Posterior probability", "1", (self._model_dim(),))
                )
            self._outputs_cache = outs
        return self._outputs_cache

    def _bytes_per_position(self) -> int:
        n_spec = self._source.shape[1]
        c = self.parameters["n_clusters"]
        full = self.parameters["covariance_type"] in ("full", "tied")
        return n_spec * (self._source.dtype.itemsize + 24 + (8 if full else 0)) + c * 24

    # ------------------------------------------------------------------ the model
    def _fit(self) -> FittedModel:
        """Fit the clusters on every usable position (parent process, set-up), number them by
        decreasing size and compute each cluster's mean spectrum."""
        p = self.parameters
        src, c = self._source, p["n_clusters"]
        chunk = rows_per_read(src, self.max_mem_mb)
        summary = scan_source(src, chunk)
        if summary.n_rows < c:
            raise InputError(f"{src.name}: {summary.n_rows} usable positions for {c} clusters")
        log.info("fitting %s with %d clusters on %s", p["method"], c, src.name)
        with sklearn_warnings_logged(f"{p['method']} fit of {src.name}"):
            model, attrs, x = self._estimator(summary, chunk)
        assign = make_function(dict(p, source=src.name), model).assign
        counts = np.zeros(c, dtype=np.int64)
        sums = np.zeros((c, summary.n_bins))
        inertia = 0.0
        for batch in [x] if x is not None else _reads(src, summary, chunk, False):
            labels, values = assign(batch)
            counts += np.bincount(labels, minlength=c)
            np.add.at(sums, labels, batch)
            if p["method"] in KMEANS_METHODS:
                inertia += float((values[np.arange(labels.size), labels] ** 2).sum())
        order = np.argsort(-counts, kind="stable")
        with np.errstate(invalid="ignore", divide="ignore"):
            means = sums[order] / counts[order, None]
        arrays = {
            "Cluster_Means": full_bins(means, summary.bins),
            "Centers": model["Centers"][order],
            "Cluster_Sizes": counts[order],
        }
        if "Weights" in model:
            arrays["Weights"] = model["Weights"][order]
            prec = model["Precisions_Cholesky"]
            arrays["Precisions_Cholesky"] = prec if p["covariance_type"] == "tied" else prec[order]
        if p["method"] in KMEANS_METHODS:
            attrs["inertia"] = inertia
        attrs["method"] = p["method"]
        units = str(src.attrs["units"])
        return FittedModel(arrays, attrs, summary, main={"Cluster_Means": ("Mean spectrum", units)})

    def _estimator(self, summary: SourceSummary, chunk: int):
        """The fitted clusters as arrays (``Centers`` NaN in unused bins), fit attributes, and
        the data when it was held in memory."""
        from sklearn import cluster, mixture

        p = self.parameters
        src, method, c, seed = self._source, p["method"], p["n_clusters"], p["random_state"]
        attrs: dict[str, Any] = {}
        x = None
        if method == "minibatch_kmeans":
            est = cluster.MiniBatchKMeans(
                n_clusters=c, batch_size=p["batch_size"], n_init=p["n_init"], random_state=seed
            )
            for _ in range(p["n_epochs"]):
                for batch in iter_batches(src, summary, chunk, p["batch_size"], min_rows=c):
                    est.partial_fit(batch)
            centers = est.cluster_centers_
        elif method == "kmeans":
            x = load_rows(src, summary, chunk)
            est = cluster.KMeans(
                n_clusters=c, n_init=p["n_init"], max_iter=p["max_iter"], random_state=seed
            ).fit(x)
            centers = est.cluster_centers_
            attrs["n_iter"] = int(est.n_iter_)
        else:
            x = load_rows(src, summary, chunk)
            est = mixture.GaussianMixture(
                n_components=c,
                covariance_type=p["covariance_type"],
                n_init=p["n_init"],
                max_iter=p["max_iter"],
                random_state=seed,
            ).fit(x)
            centers = est.means_
            attrs.update(
                n_iter=int(est.n_iter_),
                converged=bool(est.converged_),
                lower_bound=float(est.lower_bound_),
            )
        model = {"Centers": full_bins(np.asarray(centers, dtype=np.float64), summary.bins)}
        if method == "gmm":
            model["Weights"] = np.asarray(est.weights_, dtype=np.float64)
            model["Precisions_Cholesky"] = np.asarray(est.precisions_cholesky_, dtype=np.float64)
        return model, attrs, x

    def _function_from(self, model: FittedModel):
        return make_function(dict(self.parameters, source=self._source.name), model.arrays)
