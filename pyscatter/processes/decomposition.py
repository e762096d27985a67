"""Decomposition of hyperspectral results: PCA, SVD, NMF and their out-of-core variants.

The model is global: it is fitted once, at set-up, in the parent process, on every position of
the source, and stored in the results group (``Model/``) before the group is linked. The stored
model is the truth from then on: the per-block work only projects spectra on it (see
:mod:`pyscatter.processes.decomposition_worker`), a resumed run finds the partial group by its
parameters and never refits, and every block is bit-identical whoever computes it.

::

    Intensity-Decomposition_000/          attrs: parameters, ...
    ├── Loadings                          (n_positions, n_components) main, spec dim "component"
    ├── completed_chunks
    └── Model/                            attrs: method, sha256, fit statistics
        ├── Components                    (n_components, n_spec) main: position dim "component",
        │                                 the source's spectroscopic dims; NaN in unused bins
        ├── Mean                          (n_spec,) PCA / incremental PCA only
        ├── Explained_Variance(_Ratio), Singular_Values   PCA / SVD
        ├── Fit_Positions                 (n_positions,) uint8: 1 where the position was fitted
        └── Used_Bins                     (n_spec,) uint8: 1 where the bin was used

NaN handling: a position with no finite value at all (an empty frame, a position not computed)
is left out of the fit and gets NaN loadings; a bin (e.g. a q bin no pixel reaches) that is not
finite at every other position is left out of the fit and is NaN in the components; the
loadings use the remaining bins.

Methods: ``pca`` (:class:`sklearn.decomposition.PCA`), ``svd`` (``TruncatedSVD``, no centring),
``nmf`` (``NMF``, ``init="nndsvda"``), all on the source held in memory; ``incremental_pca``
(``IncrementalPCA.partial_fit``) and ``minibatch_nmf`` (``MiniBatchNMF.partial_fit``, ``n_epochs``
passes) read the source in batches of ``batch_size`` positions in a fixed order (data larger
than memory). Signs are fixed (PCA/SVD components have their largest-magnitude entry positive);
NMF components are scaled to a maximum of 1 (loadings then carry the source's units) and
ordered by decreasing contribution ``sum_p w_pk^2 |h_k|^2``.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import h5py
import numpy as np

from pyscatter.errors import InputError
from pyscatter.io.record import FLAGS, completion
from pyscatter.io.results import results_by_start_time, results_group
from pyscatter.io.usid import Dim, create_main, dims_of, is_main, main_datasets, write_ancillary
from pyscatter.io.xarray import open_for_reading
from pyscatter.processes.base import Output, ScatterProcess
from pyscatter.processes.decomposition_worker import NMF_METHODS, make_function, nnls_project

__all__ = [
    "METHODS",
    "MODEL_GROUP",
    "Decomposition",
    "FittedModelProcess",
    "default_spectra",
    "read_model",
]

log = logging.getLogger(__name__)

METHODS = ("pca", "svd", "nmf", "incremental_pca", "minibatch_nmf")
INCREMENTAL = ("incremental_pca", "minibatch_nmf")
MODEL_GROUP = "Model"


# ----------------------------------------------------------------------------------------------
# shared with clustering.py: sources, NaN scan, batches, stored models


def default_spectra(h5: h5py.File, *, one_d: bool = False) -> h5py.Dataset:
    """The latest (by start time) AzimuthalIntegration ``Intensity``; else a ``Raw_Data`` of
    1-D spectra (e.g. MCA spectra, or I(q) written directly). ``one_d`` skips cakes."""
    for group in reversed(results_by_start_time(h5, "AzimuthalIntegration")):
        dset = group.get("Intensity")
        if dset is not None and (not one_d or len(dims_of(dset, "Spectroscopic")) == 1):
            return dset
    for dset in main_datasets(h5):
        if dset.name.endswith("/Raw_Data") and len(dims_of(dset, "Spectroscopic")) == 1:
            return dset
    raise InputError(
        f"{h5.filename}: no {'1-D ' if one_d else ''}AzimuthalIntegration results and no "
        "Raw_Data of 1-D spectra; integrate first or name a main dataset "
        "(source=..., --source PATH)"
    )


def check_source(dset: h5py.Dataset) -> None:
    """A USID main dataset whose producing run (if any) is complete."""
    if not is_main(dset):
        raise InputError(f"{dset.name} is not a USID main dataset (positions × spectroscopic)")
    parent = dset.parent
    if FLAGS in parent and "n_positions" in parent.attrs:
        done, total = completion(parent)
        if done < total:
            raise InputError(
                f"{dset.name} is incomplete ({done} of {total} positions computed); "
                "finish that run first (run the same command again to resume it)"
            )


def rows_per_read(dset: h5py.Dataset, max_mem_mb: float) -> int:
    """Positions read at once during a fit: a float64 block and two working copies."""
    return max(1, int(max_mem_mb * 2**20 // (dset.shape[1] * 8 * 3)))


@dataclass(frozen=True)
class SourceSummary:
    """Which positions and bins a fit uses, and the smallest value among them."""

    rows: np.ndarray  # bool (n_positions,): at least one finite value
    bins: np.ndarray  # bool (n_spec,): finite at every one of those positions
    minimum: float

    @property
    def n_rows(self) -> int:
        return int(self.rows.sum())

    @property
    def n_bins(self) -> int:
        return int(self.bins.sum())


def scan_source(dset: h5py.Dataset, chunk: int) -> SourceSummary:
    """One pass over ``dset``: the fitted positions and bins (see the module's NaN rules)."""
    n_pos, n_spec = dset.shape
    rows = np.zeros(n_pos, dtype=bool)
    bins = np.ones(n_spec, dtype=bool)
    low = np.full(n_spec, np.inf)
    for start in range(0, n_pos, chunk):
        block = np.asarray(dset[start : start + chunk], dtype=np.float64)
        finite = np.isfinite(block)
        r = finite.any(axis=1)
        rows[start : start + block.shape[0]] = r
        bins &= finite[r].all(axis=0)
        low = np.minimum(low, np.where(finite, block, np.inf)[r].min(axis=0, initial=np.inf))
    if not rows.any():
        raise InputError(f"{dset.name}: no position holds a finite value")
    if not bins.any():
        raise InputError(f"{dset.name}: no bin is finite at every position; nothing to fit")
    dropped = n_spec - int(bins.sum())
    if dropped or not rows.all():
        log.info(
            "%s: fitting %d of %d positions (the others hold no finite value) on %d of %d bins "
            "(the others are not finite everywhere)",
            dset.name,
            int(rows.sum()),
            n_pos,
            int(bins.sum()),
            n_spec,
        )
    return SourceSummary(rows, bins, float(low[bins].min()))


def _reads(dset, summary: SourceSummary, chunk: int, clip: bool) -> Iterator[np.ndarray]:
    for start in range(0, dset.shape[0], chunk):
        sel = summary.rows[start : start + chunk]
        if sel.any():
            block = np.asarray(dset[start : start + chunk], dtype=np.float64)[sel][:, summary.bins]
            yield np.maximum(block, 0.0) if clip else block


def load_rows(
    dset, summary: SourceSummary, chunk: int, clip: bool = False, *, tick=None
) -> np.ndarray:
    """Every fitted position on the used bins, float64 (n_rows, n_bins), in position order;
    ``tick(n)`` is called with the rows of every block read (a progress bar's ``update``)."""
    blocks = []
    for block in _reads(dset, summary, chunk, clip):
        blocks.append(block)
        if tick is not None:
            tick(block.shape[0])
    data = np.concatenate(blocks)
    log.info("%s: %.1f MB in memory for the fit", dset.name, data.nbytes / 2**20)
    return data


def iter_batches(
    dset, summary: SourceSummary, chunk: int, batch_size: int, *, min_rows: int, clip=False
) -> Iterator[np.ndarray]:
    """Fitted positions in batches of exactly ``batch_size`` rows, in position order; a last
    batch smaller than ``min_rows`` is merged into the one before (a fixed, reproducible cut)."""
    pending: np.ndarray | None = None
    buf: list[np.ndarray] = []
    n_buf = 0
    for block in _reads(dset, summary, chunk, clip):
        buf.append(block)
        n_buf += block.shape[0]
        while n_buf >= batch_size:
            data = np.concatenate(buf)
            if pending is not None:
                yield pending
            pending, buf = data[:batch_size], [data[batch_size:]]
            n_buf -= batch_size
    tail = np.concatenate(buf) if n_buf else None
    if tail is not None and pending is not None and tail.shape[0] < min_rows:
        pending, tail = np.concatenate([pending, tail]), None
    if pending is not None:
        yield pending
    if tail is not None:
        yield tail


@contextlib.contextmanager
def sklearn_warnings_logged(what: str) -> Iterator[None]:
    """scikit-learn's warnings (e.g. ConvergenceWarning) as log warnings, not exceptions."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield
    for w in caught:
        log.warning("%s: %s: %s", what, w.category.__name__, w.message)


def full_bins(values: np.ndarray, bins: np.ndarray) -> np.ndarray:
    """Arrays on the used bins back to every bin (NaN in the unused ones), last axis."""
    out = np.full(values.shape[:-1] + (bins.size,), np.nan)
    out[..., bins] = values
    return out


def write_model_main(
    model: h5py.Group,
    name: str,
    data: np.ndarray,
    *,
    dim: Dim,
    source: h5py.Dataset,
    quantity: str,
    units: str,
) -> h5py.Dataset:
    """A main dataset over a model dim (``component``, ``cluster``) × the source's spec dims."""
    h5 = source.file
    pos = write_ancillary(model, "Position_", [dim], spectroscopic=False)
    spec = (h5[source.attrs["Spectroscopic_Indices"]], h5[source.attrs["Spectroscopic_Values"]])
    return create_main(
        model,
        name,
        shape=data.shape,
        dtype=np.float64,
        quantity=quantity,
        units=units,
        position=pos,
        spectroscopic=spec,
        data=data,
    )


def model_sha256(arrays: list[np.ndarray]) -> str:
    digest = hashlib.sha256()
    for a in arrays:
        digest.update(np.ascontiguousarray(a).tobytes())
    return digest.hexdigest()


def read_model(path, process: str = "Decomposition", *, index: int = -1):
    """The stored model of a Decomposition or Clustering run as an :class:`xarray.Dataset`.

    Main datasets of ``Model/`` (``Components``, ``Cluster_Means``) have dims (component or
    cluster, *source spectroscopic dims); 1-D arrays along that dim (``Explained_Variance``,
    ``Cluster_Sizes``…) and along the bins (``Mean``) come along.
    """
    import xarray as xr

    with open_for_reading(path) as h5:
        model = results_group(h5, process, index=index, path=str(path))[MODEL_GROUP]
        data_vars: dict[str, Any] = {}
        coords: dict[str, Any] = {}
        mains = [model[k] for k in model if is_main(model[k])]
        for dset in mains:
            pos, spec = dims_of(dset, "Position"), dims_of(dset, "Spectroscopic")
            shape = tuple(len(d) for d in pos + spec)
            data_vars[dset.name.rsplit("/", 1)[-1]] = xr.Variable(
                [d.name for d in pos + spec],
                dset[()].reshape(shape),
                attrs={"units": str(dset.attrs["units"])},
            )
            for d in pos + spec:
                coords[d.name] = xr.Variable(d.name, d.values, attrs={"units": d.units})
        first = mains[0]
        pos, spec = dims_of(first, "Position"), dims_of(first, "Spectroscopic")
        for key in model:
            dset = model[key]
            if key == "Fit_Positions" or not isinstance(dset, h5py.Dataset) or dset.ndim != 1:
                continue  # Fit_Positions runs over the source positions: not a model variable
            if dset.shape[0] == len(pos[0]):
                data_vars[key] = xr.Variable(pos[0].name, dset[()])
            elif dset.shape[0] == first.shape[1]:
                data_vars[key] = xr.Variable(
                    [d.name for d in spec], dset[()].reshape(tuple(len(d) for d in spec))
                )
        attrs = {k: (v.item() if hasattr(v, "item") else v) for k, v in model.attrs.items()}
        return xr.Dataset(data_vars, coords=coords, attrs=attrs)


def _tolerance(tol: float | None) -> float:
    if tol is None:
        return 1e-6
    if isinstance(tol, bool) or not isinstance(tol, (int, float)) or not 0 < tol < 1:
        raise InputError(f"tol must be a number in (0, 1); got {tol!r}")
    return float(tol)


def _positive_int(value: Any, name: str, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise InputError(f"{name} must be an integer >= {minimum}; got {value!r}")
    return int(value)


# ----------------------------------------------------------------------------------------------
# the process


@dataclass
class FittedModel:
    """A model fitted at set-up: arrays to store in ``Model/`` (``main`` ones as main datasets
    over the model dim), attributes, and the positions and bins it was fitted on."""

    arrays: dict[str, np.ndarray]
    attrs: dict[str, Any]
    summary: SourceSummary
    main: dict[str, tuple[str, str]] = field(default_factory=dict)  # name -> (quantity, units)


class FittedModelProcess(ScatterProcess):
    """A process whose global model is fitted once, at set-up, and stored in ``Model/``.

    Subclasses implement :meth:`_fit` (in the parent, deterministic), :meth:`_model_dim` and
    :meth:`_function_from` (the block function of an in-memory model, for :meth:`test` before
    any run); the worker's ``build`` loads the stored model. A resumed run finds its partial
    group by parameters and uses the stored model: nothing is refitted.
    """

    def _fit(self) -> FittedModel:
        raise NotImplementedError

    def _model_dim(self) -> Dim:
        raise NotImplementedError

    def _function_from(self, model: FittedModel):
        raise NotImplementedError

    def _model(self) -> FittedModel:
        if getattr(self, "_model_cache", None) is None:
            self._model_cache = self._fit()
        return self._model_cache

    def _setup_extra(self, group: h5py.Group) -> None:
        """Fit (unless :meth:`test` already did) and store the model in the unlinked group."""
        m = self._model()
        model = group.create_group(MODEL_GROUP)
        stored = []
        for name, arr in m.arrays.items():
            if name in m.main:
                quantity, units = m.main[name]
                write_model_main(
                    model,
                    name,
                    arr,
                    dim=self._model_dim(),
                    source=self._source,
                    quantity=quantity,
                    units=units,
                )
            else:
                model.create_dataset(name, data=arr)
            stored.append(arr)
        model.create_dataset("Fit_Positions", data=m.summary.rows.astype(np.uint8))
        model.create_dataset("Used_Bins", data=m.summary.bins.astype(np.uint8))
        for key, value in m.attrs.items():
            model.attrs[key] = value
        model.attrs["n_fit_positions"] = m.summary.n_rows
        model.attrs["n_used_bins"] = m.summary.n_bins
        model.attrs["sha256"] = model_sha256(stored)

    def _worker_parameters(self) -> str:
        """Parameters + where the stored model is (and its checksum, so that a worker's cached
        function is never reused for another model at the same path)."""
        import json

        params = dict(self.parameters, source=self._source.name)
        group = getattr(self, "h5_results_grp", None)
        if group is not None:
            params["model_group"] = f"{group.name}/{MODEL_GROUP}"
            params["model_sha256"] = str(group[MODEL_GROUP].attrs["sha256"])
        return json.dumps(params, sort_keys=True)

    def _local_function(self):
        """From the stored model once the results group exists, else (``test()`` before any
        run) from the model fitted in memory."""
        import importlib

        group = getattr(self, "h5_results_grp", None)
        key = None if group is None else group.name
        if getattr(self, "_local", None) is None or getattr(self, "_local_key", 0) != key:
            if group is None:
                self._local = self._function_from(self._model())
            else:
                module, _, name = self.factory.partition(":")
                factory = getattr(importlib.import_module(module), name)
                self._local = factory(self.task_spec(), self._source.file)
            self._local_key = key
        return self._local


class Decomposition(FittedModelProcess):
    """Decompose every spectrum of a main dataset on a few components fitted once.

    Parameters
    ----------
    h5_main : h5py.Dataset
        Source main dataset (positions × spectroscopic), e.g. an AzimuthalIntegration
        ``Intensity`` (1-D or cake) or the ``Raw_Data`` of spectra.
    method : {"pca", "svd", "nmf", "incremental_pca", "minibatch_nmf"}
    n_components : int
    random_state : int
        Seed of the randomised parts of the fit (randomised SVD, NMF initialisation).
    max_iter : int, optional
        Iterations of NMF (default 1000) or power iterations of randomised SVD (default 7);
        ignored by the PCA variants and minibatch NMF (see ``n_epochs``).
    batch_size : int
        Positions per ``partial_fit`` of the incremental methods (recorded: it changes the
        model); at least ``n_components``.
    n_epochs : int
        Passes over the data of ``minibatch_nmf``.
    clip_negative : bool
        NMF only: clip negative values at 0 (at the fit and in the projection) instead of
        refusing data with negative values.
    tol : float, optional
        Stopping tolerance of ``nmf`` (default 1e-6: scikit-learn's 1e-4 stops counting data
        after a dozen iterations, far from the minimum).
    **kwargs
        Execution options of :class:`~pyscatter.processes.base.ScatterProcess`.
    """

    process_name = "Decomposition"
    factory = "pyscatter.processes.decomposition_worker:build"

    def __init__(
        self,
        h5_main: h5py.Dataset,
        *,
        method: str = "pca",
        n_components: int = 3,
        random_state: int = 0,
        max_iter: int | None = None,
        batch_size: int = 256,
        n_epochs: int = 20,
        clip_negative: bool = False,
        tol: float | None = None,
        **kwargs: Any,
    ) -> None:
        check_source(h5_main)
        if method not in METHODS:
            raise InputError(f"unsupported method {method!r}; expected one of {', '.join(METHODS)}")
        k = _positive_int(n_components, "n_components")
        n_pos, n_spec = h5_main.shape
        limit = min(n_pos, n_spec - 1 if method == "svd" else n_spec)
        if k > limit:
            raise InputError(
                f"n_components must be at most {limit} for {method} on {n_pos} positions × "
                f"{n_spec} bins; got {k}"
            )
        seed = _positive_int(random_state, "random_state", 0)
        incremental = method in INCREMENTAL
        if incremental and _positive_int(batch_size, "batch_size") < k:
            raise InputError(f"batch_size must be at least n_components ({k}); got {batch_size}")
        if max_iter is not None:
            max_iter = _positive_int(max_iter, "max_iter")
        elif method == "nmf":
            max_iter = 1000
        elif method == "svd":
            max_iter = 7
        params = {
            "method": method,
            "n_components": k,
            "random_state": seed,
            "max_iter": max_iter if method in ("nmf", "svd") else None,
            "batch_size": int(batch_size) if incremental else None,
            "n_epochs": _positive_int(n_epochs, "n_epochs") if method == "minibatch_nmf" else None,
            "clip_negative": bool(clip_negative) if method in NMF_METHODS else None,
            "tol": _tolerance(tol) if method == "nmf" else None,
        }
        super().__init__(h5_main, params, **kwargs)

    @classmethod
    def default_source(cls, h5: h5py.File) -> h5py.Dataset:
        return default_spectra(h5)

    # ------------------------------------------------------------------ outputs
    def _outputs(self) -> list[Output]:
        if getattr(self, "_outputs_cache", None) is None:
            k = self.parameters["n_components"]
            dim = Dim("component", "index", np.arange(k))
            units = str(self._source.attrs["units"])
            self._outputs_cache = [Output("Loadings", "Loading", units, (dim,))]
        return self._outputs_cache

    def _bytes_per_position(self) -> int:
        n_spec = self._source.shape[1]
        k = self.parameters["n_components"]
        return n_spec * (self._source.dtype.itemsize + 16) + k * 8 * (k + 4)

    # ------------------------------------------------------------------ the model
    def _fit(self) -> FittedModel:
        """Fit the model on every usable position of the source (parent process, set-up)."""
        p = self.parameters
        src, method, k = self._source, p["method"], p["n_components"]
        chunk = rows_per_read(src, self.max_mem_mb)
        summary = scan_source(src, chunk)
        limit = min(summary.n_rows, summary.n_bins - (method == "svd"))
        if k > limit:
            raise InputError(
                f"n_components={k} is more than the {summary.n_rows} usable positions × "
                f"{summary.n_bins} usable bins of {src.name} allow"
            )
        clip = bool(p["clip_negative"])
        if method in NMF_METHODS and summary.minimum < 0 and not clip:
            raise InputError(
                f"{method} needs non-negative data; {src.name} goes down to {summary.minimum:g}: "
                "pass clip_negative=True (--clip-negative) to clip at 0, or use pca"
            )
        log.info("fitting %s with %d components on %s", method, k, src.name)
        attrs: dict[str, Any] = {}
        from pyscatter import progress

        passes = p["n_epochs"] if method == "minibatch_nmf" else 1
        desc = f"{method} fit" if method in ("incremental_pca", "minibatch_nmf") else "reading"
        bar = progress.bar(summary.n_rows * passes, desc=desc, unit="pos", enabled=self.progress)
        with bar, sklearn_warnings_logged(f"{method} fit of {src.name}"):
            est, x = self._estimator(summary, chunk, clip, bar.update)
        comps = np.array(est.components_, dtype=np.float64)
        mean = getattr(est, "mean_", None) if method in ("pca", "incremental_pca") else None
        extra: dict[str, np.ndarray] = {}
        if method in NMF_METHODS:
            comps, error = self._arrange_nmf(comps, summary, chunk, clip, x)
            attrs["reconstruction_error"] = error
        else:
            flip = comps[np.arange(k), np.argmax(np.abs(comps), axis=1)] < 0
            comps[flip] *= -1.0
            for key in ("explained_variance_", "explained_variance_ratio_", "singular_values_"):
                if hasattr(est, key):
                    name = "_".join(w.capitalize() for w in key.strip("_").split("_"))
                    extra[name] = np.asarray(getattr(est, key), dtype=np.float64)
        if hasattr(est, "n_iter_"):
            attrs["n_iter"] = int(est.n_iter_)
        attrs["method"] = method
        arrays = {"Components": full_bins(comps, summary.bins)}
        if mean is not None:
            arrays["Mean"] = full_bins(np.asarray(mean, np.float64), summary.bins)
        arrays.update(extra)
        return FittedModel(arrays, attrs, summary, main={"Components": ("Component", "a.u.")})

    def _estimator(self, summary: SourceSummary, chunk: int, clip: bool, tick):
        """The fitted scikit-learn estimator, and the data when it was held in memory.

        ``tick(n)`` counts the positions fitted (incremental methods, per ``partial_fit``) or
        read into memory (the others: scikit-learn's own fit reports no progress)."""
        from sklearn import decomposition as skd

        p = self.parameters
        src, method, k, seed = self._source, p["method"], p["n_components"], p["random_state"]
        if method == "incremental_pca":
            est = skd.IncrementalPCA(n_components=k)
            for batch in iter_batches(src, summary, chunk, p["batch_size"], min_rows=k):
                est.partial_fit(batch)
                tick(batch.shape[0])
            return est, None
        if method == "minibatch_nmf":
            est = skd.MiniBatchNMF(
                n_components=k, batch_size=p["batch_size"], init="nndsvda", random_state=seed
            )
            for _ in range(p["n_epochs"]):
                for batch in iter_batches(
                    src, summary, chunk, p["batch_size"], min_rows=k, clip=clip
                ):
                    est.partial_fit(batch)
                    tick(batch.shape[0])
            return est, None
        x = load_rows(src, summary, chunk, clip, tick=tick)
        log.info("%s fit of %d positions (scikit-learn reports no progress)", method, x.shape[0])
        if method == "pca":
            return skd.PCA(n_components=k, random_state=seed).fit(x), x
        if method == "svd":
            return skd.TruncatedSVD(n_components=k, n_iter=p["max_iter"], random_state=seed).fit(
                x
            ), x
        nmf = skd.NMF(
            n_components=k, init="nndsvda", max_iter=p["max_iter"], tol=p["tol"], random_state=seed
        )
        return nmf.fit(x), x

    def _arrange_nmf(self, comps, summary, chunk, clip, x):
        """Scale components to a maximum of 1, order them by contribution; the Frobenius
        reconstruction error of the stored model (NNLS loadings, as the blocks compute them)."""
        scale = comps.max(axis=1)
        comps = comps / np.where(scale > 0, scale, 1.0)[:, None]
        batches = [x] if x is not None else _reads(self._source, summary, chunk, clip)
        energy = np.zeros(comps.shape[0])
        sq_error = 0.0
        for batch in batches:
            w = nnls_project(batch, comps)
            energy += (w * w).sum(axis=0)
            sq_error += float(((batch - w @ comps) ** 2).sum())
        energy *= (comps * comps).sum(axis=1)
        order = np.argsort(-energy, kind="stable")
        return comps[order], float(np.sqrt(sq_error))

    def _model_dim(self) -> Dim:
        return Dim("component", "index", np.arange(self.parameters["n_components"]))

    def _function_from(self, model: FittedModel):
        params = dict(self.parameters, source=self._source.name)
        return make_function(params, model.arrays["Components"], model.arrays.get("Mean"))
