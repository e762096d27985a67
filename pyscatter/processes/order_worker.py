"""Worker side of :class:`~pyscatter.processes.order.OrderParameter` (no pyUSID).

``build(spec, h5)`` reads the chi axis of the profiles the fit was made on; the returned
function reads the fitted parameters, their errors and the profiles of a block of positions and
computes S, sigma(S), the director and the model-free <P2> of all rings at once.
"""

from __future__ import annotations

from typing import Any

import h5py
import numpy as np

from pyscatter.kernels.fitting import FitStatus
from pyscatter.kernels.models import ProfileModel, get_model
from pyscatter.kernels.order import (
    director_from_params,
    model_free_order_parameter,
    order_parameter_from_model,
    order_parameter_maier_saupe,
    order_parameter_maier_saupe_sigma,
)
from pyscatter.processes.fitting_worker import (
    correlation_name,
    excluded_bins,
    profile_layout,
    shape_pairs,
    shape_parameters,
    sigma_suffix,
)

__all__ = ["build", "order_block"]

#: Relative step of the central differences that propagate errors through the quadrature
_REL_STEP = 1e-4


def _s_and_sigma(
    model: ProfileModel,
    params: np.ndarray,
    errors: np.ndarray,
    n_theta: int,
    correlations: dict[tuple[str, str], np.ndarray] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """S of each fitted distribution and its propagated 1-sigma error.

    Maier--Saupe: exact in kappa. Other models: quadrature of the peak shape, errors by central
    differences in each shape parameter, ``var = g^T C g`` with the stored correlations of the
    shape parameters (``correlations[(p, q)]``, shape (n,); taken as 0 when absent, as fits
    before they were stored).
    """
    if model.name == "maier_saupe":
        i = model.index("kappa")
        kappa = params[:, i]
        return order_parameter_maier_saupe(kappa), order_parameter_maier_saupe_sigma(
            kappa, errors[:, i]
        )
    s = order_parameter_from_model(model, params, n_theta=n_theta)
    terms = {}
    for name in shape_parameters(model):
        i = model.index(name)
        value = params[:, i]
        step = np.where(np.isfinite(value), _REL_STEP * np.maximum(np.abs(value), 1e-2), np.nan)
        hi, lo = params.copy(), params.copy()
        hi[:, i] += step
        lo[:, i] -= step
        with np.errstate(invalid="ignore"):
            deriv = (
                order_parameter_from_model(model, hi, n_theta=n_theta)
                - order_parameter_from_model(model, lo, n_theta=n_theta)
            ) / (2.0 * step)
            terms[name] = deriv * errors[:, i]
    var = sum(t * t for t in terms.values())
    for (first, second), rho in (correlations or {}).items():
        with np.errstate(invalid="ignore"):
            var = var + 2.0 * rho * terms[first] * terms[second]
    return s, np.sqrt(np.maximum(var, 0.0))


def _background_curves(model: ProfileModel, params: np.ndarray, chi: np.ndarray) -> np.ndarray:
    """The fitted linear background ``constant + slope * chi`` of each row, (n, n_chi)."""
    const, slope = (params[:, model.index(name)] for name in model.background)
    return const[:, None] + slope[:, None] * chi[None, :]


def order_block(
    model_name: str,
    chi: np.ndarray,
    params: np.ndarray,
    errors: np.ndarray,
    status: np.ndarray,
    profiles: np.ndarray,
    *,
    n_theta: int = 2001,
    correlations: dict[tuple[str, str], np.ndarray] | None = None,
) -> dict[str, np.ndarray]:
    """Order parameters of fitted profiles.

    Parameters
    ----------
    model_name : str
        The model the profiles were fitted with.
    chi : ndarray, shape (n_chi,)
        Azimuth of the bins, degrees.
    params, errors : ndarray, shape (n, n_par)
        Canonical fitted parameters and 1-sigma errors.
    status : ndarray, shape (n,)
        FitStatus codes of the fits.
    profiles : ndarray, shape (n, n_chi)
        The measured profiles the fits were made on (NaN = empty bin).
    n_theta : int
        Quadrature points for models without a closed form.
    correlations : dict, optional
        ``{(p, q): rho}``, the fitted correlation (n,) of shape parameters p and q.

    Returns
    -------
    dict
        ``S``, ``S_sigma``, ``director``, ``director_sigma``, ``S_model_free`` (bounded to
        [-1/2, 1]) and ``S_model_free_status`` (:class:`~pyscatter.kernels.order.
        ModelFreeStatus` codes: where the raw ratio left the interval, or no signal), each (n,).
        ISOTROPIC rows have S = 0 with no error, director and model-free S; failed fits NaN.
        WEAK rows (a strength below 3 sigma: orientation not established) report S = 0 with
        the sigma of the fitted strength, so a peak fitted to noise never shows up as order;
        their status stays WEAK and the fitted values remain in the ProfileFit group.
    """
    model = get_model(model_name)
    s, s_sigma = _s_and_sigma(model, params, errors, n_theta, correlations)
    director, director_sigma = director_from_params(model, params, errors)
    background = _background_curves(model, params, chi)
    s_free, s_free_status = model_free_order_parameter(
        chi, profiles, director, background=background
    )
    isotropic = status == FitStatus.ISOTROPIC
    weak = status == FitStatus.WEAK
    s = np.where(isotropic | weak, 0.0, s)
    for arr in (s_sigma, director, director_sigma, s_free):
        arr[isotropic] = np.nan
    return {
        "S": s,
        "S_sigma": s_sigma,
        "director": director,
        "director_sigma": director_sigma,
        "S_model_free": s_free,
        "S_model_free_status": s_free_status,
    }


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
