"""Order parameters and directors from profile fits (OrderParameter).

The source is a ProfileFit results group (its ``status`` dataset names it as a USID main
dataset). For every ring at every position this computes, from the fitted distribution,
S = <P2(cos theta)> as in docs/design.md (Maier--Saupe exactly from kappa, pseudo-Voigt by
quadrature of the peak shape), its propagated 1-sigma error, the director (chi of the
intensity maximum, pyFAI convention, in [-90, 90)) with its error, and beside them the
model-free <P2> of the measured profile (fitted linear background subtracted) about that
director, bounded to [-1/2, 1] with ``S_model_free_status`` saying where the raw ratio left
that interval (:class:`~pyscatter.kernels.order.ModelFreeStatus`: the background-subtracted
profile is not a distribution there). ``R2`` and ``status`` of the fit are carried along so that one group holds what a
map needs. ISOTROPIC profiles get S = 0 and no director.
"""

from __future__ import annotations

import json
from typing import Any

import h5py
import numpy as np

from pyscatter.errors import InputError
from pyscatter.io.results import latest_results, require_complete
from pyscatter.io.usid import dims_of
from pyscatter.kernels.models import get_model
from pyscatter.kernels.order import ModelFreeStatus
from pyscatter.processes.base import Output, ScatterProcess
from pyscatter.processes.fitting import status_codes
from pyscatter.processes.fitting_worker import profile_layout
from pyscatter.processes.guards import partial_sources_allowed

__all__ = ["OrderParameter", "fit_status_dataset"]

#: The dataset of a ProfileFit group that names the group as an OrderParameter source
SOURCE_DATASET = "status"


def fit_status_dataset(obj: h5py.Group | h5py.Dataset) -> h5py.Dataset:
    """The ``status`` main dataset of a ProfileFit group, given the group or any dataset in it.

    Raises
    ------
    InputError
        If ``obj`` is not (in) a ProfileFit results group.
    """
    group = obj if isinstance(obj, h5py.Group) else obj.parent
    if group.attrs.get("process") != "ProfileFit" or SOURCE_DATASET not in group:
        raise InputError(
            f"{obj.name} is not a ProfileFit results group (or a dataset in one); order "
            "parameters are computed from profile fits: run the fit first"
        )
    return group[SOURCE_DATASET]


class OrderParameter(ScatterProcess):
    """S, sigma(S), the director and the model-free <P2> of every fitted profile.

    Parameters
    ----------
    h5_main : h5py.Dataset or h5py.Group
        A ProfileFit results group or any dataset in it (default: the latest ProfileFit group).
        The profiles the fit was made on are read too (the group's ``source``).
    n_theta : int
        Quadrature points of S for models without a closed form (pseudo-Voigt), odd >= 101.
    **kwargs
        Execution options of :class:`~pyscatter.processes.base.ScatterProcess`.
    """

    process_name = "OrderParameter"
    factory = "pyscatter.processes.order_worker:build"
    nexus_signal = "S"

    def __init__(
        self, h5_main: h5py.Dataset | h5py.Group, *, n_theta: int = 2001, **kwargs: Any
    ) -> None:
        status = fit_status_dataset(h5_main)
        group = status.parent
        if not partial_sources_allowed():  # a live step runs on its source's done positions
            require_complete(status, "computing order parameters")
        if isinstance(n_theta, bool) or not isinstance(n_theta, (int, np.integer)):
            raise InputError(f"n_theta must be an odd integer >= 101; got {n_theta!r}")
        if n_theta < 101 or n_theta % 2 == 0:
            raise InputError(f"n_theta must be an odd integer >= 101; got {n_theta}")
        fit_params = json.loads(group.attrs["parameters"])
        profiles_path = str(group.attrs["source"])
        if profiles_path not in status.file:
            raise InputError(
                f"{group.name} was fitted on {profiles_path}, which is no longer in the file"
            )
        profile_layout(status.file[profiles_path])  # chi fastest, as the fit checked
        params = {
            "model": get_model(fit_params["model"]).name,
            "profiles": profiles_path,
            "n_theta": int(n_theta),
            "exclude_chi": fit_params.get("exclude_chi"),  # as the fit: filled by symmetry
            # the model-free <P2> is clipped into these bounds and flagged (groups before: not)
            "model_free_bounds": [-0.5, 1.0],
        }
        super().__init__(status, params, **kwargs)

    @classmethod
    def default_source(cls, h5: h5py.File) -> h5py.Dataset:
        group = latest_results(h5, "ProfileFit", complete=False)  # checked in __init__
        if group is None:
            raise InputError(
                f"{h5.filename}: no ProfileFit results; fit the azimuthal profiles first "
                "(pyscatter fit FILE.h5 --model maier_saupe)"
            )
        return fit_status_dataset(group)

    def _outputs(self) -> list[Output]:
        if getattr(self, "_outputs_cache", None) is None:
            dims = tuple(dims_of(self._source, "Spectroscopic"))
            self._outputs_cache = [
                Output("S", "Order parameter <P2>", "1", dims),
                Output("S_sigma", "Order parameter sigma", "1", dims),
                Output("director", "Director (chi of the maximum)", "deg", dims),
                Output("director_sigma", "Director sigma", "deg", dims),
                Output("S_model_free", "Model-free <P2>", "1", dims),
                Output(
                    "S_model_free_status", "Model-free <P2> status", "code", dims, dtype=np.int8
                ),
                Output("R2", "Weighted R2 of the fit", "1", dims),
                Output("status", "Fit status", "code", dims, dtype=np.int8),
            ]
        return self._outputs_cache

    def _bytes_per_position(self) -> int:
        n_rows = self._source.shape[1]
        n_chi = self._source.file[self.parameters["profiles"]].shape[1] // max(n_rows, 1)
        quadrature = 0 if self.parameters["model"] == "maier_saupe" else self.parameters["n_theta"]
        # profiles and their background-subtracted, folded copies; quadrature curves
        return int(n_rows * 8 * (8 * n_chi + 4 * quadrature + 64))

    def _setup_extra(self, group: h5py.Group) -> None:
        group.attrs["model"] = self.parameters["model"]
        group.attrs["fit_group"] = self._source.parent.name
        group.attrs["status_codes"] = json.dumps(status_codes())
        group.attrs["S_model_free_status_codes"] = json.dumps(
            {s.name: int(s.value) for s in ModelFreeStatus}
        )
        group.attrs["S_model_free_status_description"] = " ".join(
            (ModelFreeStatus.__doc__ or "").split()
        )
        group.attrs["director_convention"] = (
            "chi (pyFAI convention, degrees) of the intensity maximum, folded into [-90, 90)"
        )
