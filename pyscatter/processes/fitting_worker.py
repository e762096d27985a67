"""Worker side of :class:`~pyscatter.processes.fitting.ProfileFit` (no pyUSID).

``build(spec, h5)`` reads the chi axis of the profiles once; the returned function reads a
block of positions, stacks the profiles of every ring of every position as rows and fits them
all in one call of :func:`pyscatter.kernels.fitting.fit_profiles`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import h5py
import numpy as np
import scipy.sparse as sp

from pyscatter.errors import FileFormatError, InputError
from pyscatter.io.usid import Dim, dims_of
from pyscatter.kernels.fitting import excluded_bins, fit_profiles, fit_profiles_reference
from pyscatter.kernels.models import get_model, shape_pairs, shape_parameters
from pyscatter.processes.profiles_worker import profile_correlation

__all__ = [
    "build",
    "correlation_name",
    "excluded_bins",
    "fit_block",
    "profile_layout",
    "shape_pairs",
    "shape_parameters",
    "sigma_suffix",
]

#: Name of each parameter's error dataset: ``<param>_sigma``
SIGMA_SUFFIX = "_sigma"


def sigma_suffix(name: str) -> str:
    """The dataset name of the 1-sigma error of parameter ``name``."""
    return f"{name}{SIGMA_SUFFIX}"


def correlation_name(first: str, second: str) -> str:
    """The dataset name of the correlation coefficient of two fitted parameters."""
    return f"{first}_{second}_correlation"


def profile_layout(dset: h5py.Dataset) -> tuple[np.ndarray, list[Dim]]:
    """The chi axis (degrees) and the other spectroscopic dims of a profiles main dataset.

    The fastest spectroscopic dimension must be ``chi``; the slower ones (``ring`` for
    AzimuthalProfiles) index the profiles of one position.

    Raises
    ------
    InputError
        If the fastest spectroscopic dimension is not ``chi``.
    """
    spec = dims_of(dset, "Spectroscopic")
    if spec[-1].name.lower() != "chi":
        raise InputError(
            f"{dset.name} has spectroscopic dims {[d.name for d in spec]}; fitting azimuthal "
            "profiles needs chi as the fastest dimension (e.g. AzimuthalProfiles' (ring, chi))"
        )
    return spec[-1].values, spec[:-1]


def fit_block(
    chi: np.ndarray,
    profiles: np.ndarray,
    sigma: np.ndarray | None,
    params: dict[str, Any],
    correlation: Sequence[sp.spmatrix] | None = None,
) -> dict[str, np.ndarray]:
    """Fit ``profiles`` of shape (n_positions, n_rows, n_chi); outputs (n, n_rows).

    All rows in one kernel call, or one call per row (ring) with its bins' ``correlation``
    (one (n_chi, n_chi) matrix per row, see
    :func:`~pyscatter.processes.profiles_worker.chi_correlation`).
    """
    n, n_rows, n_chi = profiles.shape
    model = get_model(params["model"])
    # the vectorised fit by default; scipy's curve_fit row by row stays selectable
    fit = fit_profiles_reference if params.get("engine") == "scipy" else fit_profiles
    options = dict(
        model=model,
        max_iter=params["max_iter"],
        absolute_sigma=True,
        isotropy_alpha=params["isotropy_alpha"],
    )
    if correlation is None:
        parts = [
            fit(
                chi,
                profiles.reshape(n * n_rows, n_chi),
                None if sigma is None else sigma.reshape(n * n_rows, n_chi),
                **options,
            )
        ]
    else:
        parts = [
            fit(
                chi,
                profiles[:, row],
                None if sigma is None else sigma[:, row],
                correlation=correlation[row],
                **options,
            )
            for row in range(n_rows)
        ]

    def gather(values: list[np.ndarray]) -> np.ndarray:
        if len(values) == 1:
            return values[0].reshape(n, n_rows)
        return np.stack(values, axis=1)

    out: dict[str, np.ndarray] = {}
    for k, name in enumerate(model.param_names):
        out[name] = gather([res.params[:, k] for res in parts])
        out[sigma_suffix(name)] = gather([res.errors[:, k] for res in parts])
    for first, second in shape_pairs(model):
        out[correlation_name(first, second)] = gather(
            [res.correlation(first, second) for res in parts]
        )
    out["R2"] = gather([res.r2 for res in parts])
    out["reduced_chi2"] = gather([res.reduced_chi2 for res in parts])
    out["status"] = gather([res.status for res in parts])
    out["n_iter"] = gather([res.n_iter for res in parts])
    return out


def build(spec, h5: h5py.File):
    """Block function of a ProfileFit spec: read a block of profiles, fit them in one call."""
    params = spec.params
    chi, _ = profile_layout(h5[params["source"]])
    n_chi = chi.size
    source, sigma_path = params["source"], params["sigma_dataset"]
    excluded = excluded_bins(chi, params.get("exclude_chi"))
    correlation = None
    if params.get("chi_correlation") == "pixel_splitting":
        correlation = profile_correlation(h5[source])
        if correlation is None or correlation[0].shape != (n_chi, n_chi):
            raise FileFormatError(
                f"{source}: the chi correlation of its pixel splitting cannot be rebuilt from "
                "the parameters of its AzimuthalProfiles group"
            )

    def compute(h5file: h5py.File, start: int, stop: int) -> dict[str, np.ndarray]:
        n = stop - start
        y = h5file[source][start:stop].astype(np.float64).reshape(n, -1, n_chi)
        sigma = None
        if sigma_path is not None:
            sigma = h5file[sigma_path][start:stop].astype(np.float64).reshape(y.shape)
            sigma[..., excluded] = np.nan
        y[..., excluded] = np.nan  # excluded bins count as empty
        return fit_block(chi, y, sigma, params, correlation)

    return compute
