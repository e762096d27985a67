"""Worker side of :class:`~pyscatter.processes.order.OrderParameter` (no pyUSID).

``build(spec, h5)`` reads the chi axis of the profiles the fit was made on; the returned
function reads the fitted parameters, their errors and the profiles of a block of positions and
computes S, sigma(S), the director and the model-free <P2> of all rings at once
(:func:`pyscatter.kernels.order.order_block`).
"""

from __future__ import annotations

from typing import Any

import h5py
import numpy as np

from pyscatter.kernels.fitting import excluded_bins
from pyscatter.kernels.models import get_model, shape_pairs
from pyscatter.kernels.order import order_block
from pyscatter.processes.fitting_worker import correlation_name, profile_layout, sigma_suffix

__all__ = ["build", "order_block"]


def build(spec, h5: h5py.File):
    """Block function of an OrderParameter spec."""
    params: dict[str, Any] = spec.params
    fit_group = h5[params["source"]].parent.name
    profiles_path = params["profiles"]
    chi, _ = profile_layout(h5[profiles_path])
    model = get_model(params["model"])
    n_theta = int(params["n_theta"])
    excluded = excluded_bins(chi, params.get("exclude_chi"))

    def compute(h5file: h5py.File, start: int, stop: int) -> dict[str, np.ndarray]:
        group = h5file[fit_group]
        n = stop - start
        p = np.stack([group[name][start:stop] for name in model.param_names], axis=-1)
        e = np.stack([group[sigma_suffix(name)][start:stop] for name in model.param_names], axis=-1)
        n_rows = p.shape[1]
        p = p.reshape(n * n_rows, model.n_par).astype(np.float64)
        e = e.reshape(n * n_rows, model.n_par).astype(np.float64)
        status = group["status"][start:stop].reshape(-1)
        correlations = {
            pair: group[correlation_name(*pair)][start:stop].reshape(-1).astype(np.float64)
            for pair in shape_pairs(model)
            if correlation_name(*pair) in group
        }
        y = h5file[profiles_path][start:stop].astype(np.float64).reshape(n * n_rows, chi.size)
        y[:, excluded] = np.nan  # left out of the fit: filled from the partner bins
        out = order_block(
            model.name, chi, p, e, status, y, n_theta=n_theta, correlations=correlations
        )
        out = {k: v.reshape(n, n_rows) for k, v in out.items()}
        out["R2"] = group["R2"][start:stop]
        out["status"] = group["status"][start:stop]
        return out

    return compute
