"""Worker side of :class:`~pyscatter.processes.sectors.SectorIntegration` (no pyUSID).

Reads the masks, dark and flat and calls the kernels of :mod:`pyscatter.kernels.sectors` (one
pyFAI 1-D CSR matrix per sector, the sectors crossing ±180° as the sum of two ranges, stacked
into one integrator), re-exported here under their historical names.
"""

from __future__ import annotations

from typing import Any

import h5py
import numpy as np

from pyscatter.kernels.sectors import (  # noqa: F401  (re-exported: their historical home)
    default_radial_range,
    sector_centers,
    sector_integrator,
    sector_matrix,
    sector_ranges,
)
from pyscatter.processes.detector import read_arrays
from pyscatter.processes.profiles_worker import matrix_function


def make_function(
    params: dict[str, Any],
    mask: np.ndarray | None,
    ai: Any = None,
    *,
    dark: np.ndarray | None = None,
    flat: np.ndarray | None = None,
):
    """The block function of the sectors of ``params`` with the combined ``mask``
    (:func:`~pyscatter.processes.profiles_worker.matrix_function` of
    :func:`~pyscatter.kernels.sectors.sector_integrator`)."""
    return matrix_function(
        sector_integrator, params, mask, ai, dark=dark, flat=flat, radial_slow=False
    )


def build(spec, h5: h5py.File):
    """Block function of a SectorIntegration spec; ``h5`` gives the masks, dark and flat."""
    return make_function(spec.params, **read_arrays(h5, spec.params))
