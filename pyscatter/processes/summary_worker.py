"""Worker side of :class:`~pyscatter.processes.summary.SeriesSummary` (no pyUSID).

``build(spec, h5)`` reads the scan value of every position once (a position dim's grid value,
or a per-position dataset); the block function reads the chosen parameters of a block of
positions, their errors, R2 and status from the source results group (or the spectra at the
chosen q values, :func:`pyscatter.kernels.summary.interpolate_at`) and applies the quality
filter (:func:`pyscatter.kernels.summary.quality_mask`).
"""

from __future__ import annotations

from typing import Any

import h5py
import hdf5plugin  # noqa: F401  (filters of compressed sources)
import numpy as np

from pyscatter.io.integrity import read_rows
from pyscatter.io.usid import ancillary_arrays, dims_of
from pyscatter.kernels.summary import interpolate_at, quality_mask

__all__ = ["against_values", "build", "make_function"]


def against_values(h5: h5py.File, params: dict[str, Any]) -> np.ndarray:
    """(n_positions,) float64: the scan value of every position of the source.

    A position dim gives its grid (nominal) value at each position, so that read-back jitter
    never splits a scan value in two; a per-position dataset gives its values.
    """
    source = h5[params["source"]]
    if params["against_kind"] == "position":
        pos = dims_of(source, "Position")
        k = [d.name for d in pos].index(params["against"])
        return ancillary_arrays(pos)[1][:, k].copy()
    return np.asarray(h5[params["against_dataset"]][()], dtype=np.float64).ravel()


def make_function(params: dict[str, Any], against: np.ndarray):
    """The block function of a summary spec, given the scan value of every position."""
    group_path = params["source_group"]
    source = params["source"]
    names = list(params["parameters"])
    sigmas = dict(params["sigmas"])
    q = params["q"]
    q_axis = None
    min_r2, allowed = params["min_r2"], params["status_codes"]

    def compute(h5file: h5py.File, start: int, stop: int) -> dict[str, np.ndarray]:
        nonlocal q_axis
        group = h5file[group_path]
        n = stop - start
        out: dict[str, np.ndarray] = {"against": against[start:stop].reshape(n, 1)}
        if q is not None:
            if q_axis is None:
                q_axis = dims_of(h5file[source], "Spectroscopic")[0].values
            y = np.asarray(read_rows(h5file[source], start, stop), dtype=np.float64)
            s = sigmas.get(names[0])
            e = None if s is None else np.asarray(h5file[s][start:stop], dtype=np.float64)
            out[names[0]], err = interpolate_at(q_axis, y, e, q)
            if s is not None:
                out[f"{names[0]}_sigma"] = err
            shape = out[names[0]].shape
        else:
            for name in names:
                out[name] = np.asarray(group[name][start:stop], dtype=np.float64)
                if sigmas.get(name) is not None:
                    out[f"{name}_sigma"] = np.asarray(
                        h5file[sigmas[name]][start:stop], dtype=np.float64
                    )
            shape = out[names[0]].shape
        r2 = status = None
        if params["has_r2"]:
            r2 = out["R2"] = np.asarray(group["R2"][start:stop], dtype=np.float64)
        if params["has_status"]:
            status = out["status"] = np.asarray(group["status"][start:stop], dtype=np.int8)
        good = quality_mask(shape, r2=r2, status=status, min_r2=min_r2, allowed_status=allowed)
        out["good"] = good.astype(np.uint8)
        return out

    return compute


def build(spec, h5: h5py.File):
    """Block function of a SeriesSummary spec: the scan values are read once."""
    params = spec.params
    return make_function(params, against_values(h5, params))
