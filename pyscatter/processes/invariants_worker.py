"""Worker side of :class:`~pyscatter.processes.invariants.SaxsInvariants` (no pyUSID).

``build`` reads the q axis once; the block function reads a block of spectra (and their sigma)
and calls :func:`pyscatter.kernels.invariants.saxs_invariants` once on the whole block.
"""

from __future__ import annotations

from typing import Any

import h5py
import hdf5plugin  # noqa: F401  (filters of compressed sources)
import numpy as np

from pyscatter.kernels.invariants import saxs_invariants
from pyscatter.processes.peaks_worker import radial_axis, read_spectra

#: Output name -> InvariantResult field
FIELDS = {
    "Rg": "rg",
    "Rg_sigma": "rg_sigma",
    "I0": "i0",
    "I0_sigma": "i0_sigma",
    "guinier_q_min": "guinier_q_min",
    "guinier_q_max": "guinier_q_max",
    "invariant": "invariant",
    "invariant_sigma": "invariant_sigma",
    "porod_constant": "porod_constant",
    "porod_constant_sigma": "porod_constant_sigma",
    "status": "status",
}


def _pair(value: Any) -> tuple[float, float] | None:
    return None if value is None else (float(value[0]), float(value[1]))


def make_function(params: dict[str, Any], q: np.ndarray):
    """The block function: read spectra (and sigma), one kernel call per block."""
    source = params["source"]
    sigma_path = params["sigma_dataset"]
    poisson = params["sigma"] == "poisson"
    options = {
        "q_range": _pair(params["q_range"]),
        "guinier_range": _pair(params["guinier_range"]),
        "porod_range": _pair(params["porod_range"]),
        "background": params["background"],
        "qrg_max": params["qrg_max"],
        "min_points": params["min_points"],
        "guinier_extrapolation": params["guinier_extrapolation"],
        "porod_extrapolation": params["porod_extrapolation"],
        "max_iter": params["max_iter"],
    }

    def compute(h5file: h5py.File, start: int, stop: int) -> dict[str, np.ndarray]:
        y, sigma = read_spectra(h5file, source, sigma_path, poisson, start, stop)
        res = saxs_invariants(q, y, sigma, **options)
        return {name: getattr(res, field) for name, field in FIELDS.items()}

    return compute


def build(spec, h5: h5py.File):
    """Block function of a SAXS-invariants spec: the q axis is read once from the file."""
    params = spec.params
    return make_function(params, np.asarray(radial_axis(h5[params["source"]]), dtype=np.float64))
