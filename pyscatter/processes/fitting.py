"""Fit every azimuthal profile of a scan with an orientation model (ProfileFit).

The source is a profiles main dataset, (positions, ring x chi) as AzimuthalProfiles writes it;
each block of positions is fitted in one vectorised call of
:func:`pyscatter.kernels.fitting.fit_profiles`, the profiles of every ring of every position
stacked as rows. Each fitted quantity becomes one main dataset over the spectroscopic dim
``ring``: the model parameters in canonical form (Maier--Saupe ``kappa >= 0``, directors
``x0`` in [-90, 90)) and their 1-sigma errors ``<param>_sigma``, both float64 so that the
stored parameters replay the fitted curve (the Maier--Saupe ``I`` is ~ peak / e^kappa: 1e-97
at kappa = 229, 0 in float32; float64 holds it up to kappa ~ 700), ``R2``, ``reduced_chi2``,
the correlation coefficients of the shape parameters ``<p>_<q>_correlation`` (pseudo-Voigt
``gamma_eta_correlation``: S depends on both), ``status``
(:class:`~pyscatter.kernels.fitting.FitStatus` codes, listed in the group's
``status_codes`` attribute) and ``n_iter``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from typing import Any

import h5py
import numpy as np

from pyscatter.errors import InputError
from pyscatter.io.results import latest_results, require_complete
from pyscatter.io.usid import Dim, is_main
from pyscatter.kernels.fitting import FitStatus
from pyscatter.kernels.models import MODELS, get_model
from pyscatter.processes.base import Output, ScatterProcess
from pyscatter.processes.fitting_worker import (
    correlation_name,
    excluded_bins,
    profile_layout,
    shape_pairs,
    shape_parameters,
    sigma_suffix,
)
from pyscatter.processes.guards import partial_sources_allowed

__all__ = ["ProfileFit", "latest_results", "model_name", "require_complete", "status_codes"]

log = logging.getLogger(__name__)

#: What each parameter of the registered models measures (quantity attribute of its dataset)
_QUANTITIES = {
    "I": "Peak amplitude",
    "kappa": "Maier-Saupe kappa",
    "x0": "Director (chi of the maximum)",
    "a": "Background constant",
    "b": "Background slope",
    "y0": "Background constant",
    "gamma": "Peak HWHM",
    "eta": "Lorentzian fraction",
    "slope": "Background slope",
}


def model_name(model: str) -> str:
    """The canonical name of ``model``, as recorded: ``maier_saupe``, ``pseudo_voigt``.

    The older dashed spellings (``maier-saupe``, ``pseudo-voigt``) and any case are accepted
    as aliases, so every spelling records the same parameters (and reuses the same
    results).

    Raises
    ------
    InputError
        If no registered model has that name.
    """
    if not isinstance(model, str):
        raise InputError(f"model must be a string; got {model!r}")
    name = model.strip().lower().replace("-", "_")
    if name not in MODELS:
        allowed = ", ".join(f"{m} ({m.replace('_', '-')})" for m in MODELS)
        raise InputError(f"unsupported model {model!r}; expected one of {allowed}")
    return name


def status_codes() -> dict[str, int]:
    """``{name: code}`` of :class:`FitStatus`, as recorded on results groups."""
    return {s.name: int(s.value) for s in FitStatus}


def _chi_ranges(ranges: Sequence[Sequence[float]] | None) -> list[list[float]] | None:
    """Validated ``exclude_chi``: pairs lo < hi (degrees) spanning less than a full turn."""
    if ranges is None:
        return None
    out = []
    try:
        pairs = [tuple(float(v) for v in r) for r in ranges]
    except (TypeError, ValueError):
        pairs = [()]
    for pair in pairs:
        if len(pair) != 2 or not np.isfinite(pair).all() or not 0 < pair[1] - pair[0] < 360:
            raise InputError(
                f"exclude_chi must be a list of [lo, hi] chi ranges in degrees with "
                f"lo < hi < lo + 360; got {ranges!r}"
            )
        out.append([pair[0], pair[1]])
    return out or None


def _from_recorded_profiles(profiles: h5py.Dataset) -> bool:
    """Whether the ring matrix of ``profiles`` can be rebuilt (for the chi-bin correlation)."""
    from pyscatter.processes.profiles_worker import recorded_profile_parameters

    return recorded_profile_parameters(profiles) is not None


def _param_units(unit: str, intensity: str) -> str:
    if unit == "intensity":
        return intensity
    if unit == "intensity/deg":
        return f"{intensity}/deg"
    return unit


class ProfileFit(ScatterProcess):
    """Fit the azimuthal profile of every ring at every position.

    Parameters
    ----------
    h5_main : h5py.Dataset
        Profiles main dataset (positions x ring*chi, chi fastest), by default the ``Intensity``
        of the latest AzimuthalProfiles group; its sibling ``<name>_Sigma`` (if present)
        weights the fit (1/sigma^2) and the errors are absolute.
    model : {"maier_saupe", "pseudo_voigt"}
        A model of :data:`pyscatter.kernels.models.MODELS` (``maier-saupe``/``pseudo-voigt``
        accepted).
    use_sigma : bool
        Weight by the sibling sigma dataset when there is one (default True). Without sigma
        the fit is unweighted and the errors are scaled by the reduced chi^2.
    max_iter : int
        Maximum Levenberg--Marquardt steps per profile.
    isotropy_alpha : float or None
        Significance level of the isotropy F-tests (status ISOTROPIC, S = 0, no director);
        None fits every profile.
    exclude_chi : sequence of (float, float), optional
        Chi ranges ``[lo, hi]`` (degrees, modulo 360) left out of every fit, e.g. where a
        beamstop holder or a detector gap spoils the profiles; the model-free <P2> of
        OrderParameter fills them from the centro-symmetric partner bins.
    engine : {"batched", "scipy"}
        The vectorised Levenberg–Marquardt (default), or ``scipy.optimize.curve_fit`` row by
        row (the reference; several times slower).
    correlated_errors : bool
        Errors of the parameters that account for the correlation of neighbouring chi bins
        (pixel splitting shares pixels between them), default True for AzimuthalProfiles
        sources: the correlation is rebuilt from the recorded geometry and binning
        (:func:`~pyscatter.processes.profiles_worker.chi_correlation`) and the covariance is
        the sandwich ``A^-1 J~^T R J~ A^-1``. Without it the errors are too small by a
        factor 1.05-2.5, the more so the finer the chi bins (see the user guide's
        "Uncertainties"). Other sources (profiles written by hand) are taken as independent.
    **kwargs
        Execution options of :class:`~pyscatter.processes.base.ScatterProcess`.
    """

    process_name = "ProfileFit"
    factory = "pyscatter.processes.fitting_worker:build"

    def __init__(
        self,
        h5_main: h5py.Dataset,
        *,
        model: str = "maier_saupe",
        use_sigma: bool = True,
        max_iter: int = 100,
        isotropy_alpha: float | None = 1e-3,
        exclude_chi: Sequence[Sequence[float]] | None = None,
        engine: str = "batched",
        correlated_errors: bool = True,
        **kwargs: Any,
    ) -> None:
        if engine not in ("batched", "scipy"):
            raise InputError(f"unsupported engine {engine!r}; expected one of batched, scipy")
        if not is_main(h5_main):
            raise InputError(f"{getattr(h5_main, 'name', h5_main)} is not a USID main dataset")
        name = model_name(model)
        chi, row_dims = profile_layout(h5_main)
        if chi.size < 3:
            raise InputError(f"{h5_main.name}: {chi.size} chi bins; fitting needs at least 3")
        if (
            isinstance(max_iter, bool)
            or not isinstance(max_iter, (int, np.integer))
            or max_iter < 1
        ):
            raise InputError(f"max_iter must be a positive integer; got {max_iter!r}")
        if isotropy_alpha is not None and not (
            isinstance(isotropy_alpha, (int, float, np.number))
            and not isinstance(isotropy_alpha, bool)
            and 0 < float(isotropy_alpha) < 1
        ):
            raise InputError(
                f"isotropy_alpha must be a number in (0, 1) or None; got {isotropy_alpha!r}"
            )
        if not isinstance(correlated_errors, (bool, np.bool_)):
            raise InputError(f"correlated_errors must be True or False; got {correlated_errors!r}")
        exclude = _chi_ranges(exclude_chi)
        if excluded_bins(chi, exclude).all():
            raise InputError(f"exclude_chi {exclude} leaves no chi bin to fit")
        if not partial_sources_allowed():  # a live step runs on its source's done positions
            require_complete(h5_main, "fitting its profiles")
        sigma_path = None
        if use_sigma:
            sibling = h5_main.parent.get(f"{h5_main.name.rsplit('/', 1)[-1]}_Sigma")
            if isinstance(sibling, h5py.Dataset) and sibling.shape == h5_main.shape:
                sigma_path = sibling.name
            else:
                log.warning(
                    "%s has no sibling sigma dataset: unweighted fit, errors scaled by the "
                    "reduced chi^2",
                    h5_main.name,
                )
        self._chi = chi
        self._row_dims = row_dims
        # the NeXus view plots the distribution's strength (kappa) or width (gamma)
        self.nexus_signal = shape_parameters(get_model(name))[0]
        params = {
            "model": name,
            "use_sigma": bool(use_sigma),
            "sigma_dataset": sigma_path,
            "max_iter": int(max_iter),
            "isotropy_alpha": None if isotropy_alpha is None else float(isotropy_alpha),
            "absolute_sigma": sigma_path is not None,
            "exclude_chi": exclude,
            "engine": engine,
            "param_dtype": "float64",  # groups of float32 parameters are not reused
            "chi_correlation": "pixel_splitting"
            if correlated_errors and _from_recorded_profiles(h5_main)
            else None,
        }
        super().__init__(h5_main, params, **kwargs)

    @classmethod
    def default_source(cls, h5: h5py.File) -> h5py.Dataset:
        group = latest_results(h5, "AzimuthalProfiles", complete=False)  # checked in __init__
        if group is None or "Intensity" not in group:
            raise InputError(
                f"{h5.filename}: no AzimuthalProfiles results to fit; extract azimuthal "
                "profiles first, or name the profiles dataset (--source)"
            )
        return group["Intensity"]

    @property
    def n_rows(self) -> int:
        """Profiles per position (rings)."""
        return self._source.shape[1] // self._chi.size

    def _ring_dims(self) -> tuple[Dim, ...]:
        """The spectroscopic dims of the outputs: those of the profiles without chi."""
        if self._row_dims:
            return tuple(self._row_dims)
        return (Dim("ring", "index", np.zeros(1)),)

    def _outputs(self) -> list[Output]:
        if getattr(self, "_outputs_cache", None) is None:
            model = get_model(self.parameters["model"])
            dims = self._ring_dims()
            intensity = str(self._source.attrs.get("units", "a.u."))
            outs = []
            for name, unit in zip(model.param_names, model.units, strict=True):
                units = _param_units(unit, intensity)
                quantity = _QUANTITIES.get(name, name)
                # float64: a Maier--Saupe prefactor I ~ peak / e^kappa underflows float32
                # (to 0) beyond kappa ~ 100, and the stored fit must replay the profile
                outs.append(Output(name, quantity, units, dims, dtype=np.float64))
                outs.append(
                    Output(sigma_suffix(name), f"{quantity} sigma", units, dims, dtype=np.float64)
                )
            for first, second in shape_pairs(model):
                name = correlation_name(first, second)
                outs.append(
                    Output(name, f"Correlation of {first} and {second}", "1", dims, np.float64)
                )
            outs += [
                Output("R2", "Weighted R2", "1", dims),
                Output("reduced_chi2", "Reduced chi2", "1", dims),
                Output("status", "Fit status", "code", dims, dtype=np.int8),
                Output("n_iter", "Iterations", "count", dims, dtype=np.int32),
            ]
            self._outputs_cache = outs
        return self._outputs_cache

    def _bytes_per_position(self) -> int:
        n_par = get_model(self.parameters["model"]).n_par
        # profiles, sigma, weights, residuals, model curves and the Jacobian, float64
        return int(self._source.shape[1] * 8 * (8 + 2 * n_par))

    def _setup_extra(self, group: h5py.Group) -> None:
        model = get_model(self.parameters["model"])
        group.attrs["model"] = model.name
        group.attrs["param_names"] = json.dumps(list(model.param_names))
        group.attrs["status_codes"] = json.dumps(status_codes())
        group.attrs["status_description"] = " ".join((FitStatus.__doc__ or "").split())
        group.attrs["chi_units"] = "deg"
