"""Worker side of :class:`~pyscatter.processes.sectors.SectorIntegration` (no pyUSID).

Reads the masks, dark and flat and calls the kernels of :mod:`pyscatter.kernels.sectors` (one
pyFAI 1-D CSR matrix per sector, the sectors crossing ±180° as the sum of two ranges, stacked
into one integrator), re-exported here under their historical names.

What the kernels take from pyFAI (the stacked matrix, the radial bin centres, the unit, the
per-pixel corrections: :func:`~pyscatter.kernels.sectors.sector_inputs`) and the default
radial range are remembered in the matrix cache
(:func:`pyscatter.processes.setup_cache.remembered`), keyed by the recorded geometry, frame
shape, mask and the parameters that shape them, as for the ring profiles
(:mod:`pyscatter.processes.profiles_worker`): with them cached, no pyFAI import.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import h5py
import numpy as np

from pyscatter.kernels.sectors import (  # noqa: F401  (re-exported: their historical home)
    default_radial_range,
    sector_centers,
    sector_from_inputs,
    sector_inputs,
    sector_inputs_check,
    sector_integrator,
    sector_matrix,
    sector_ranges,
)
from pyscatter.processes import setup_cache
from pyscatter.processes.detector import read_arrays
from pyscatter.processes.profiles_worker import integrator_maker, matrix_function, matrix_parts


def cached_sector_integrator(
    ai: Any,
    params: dict[str, Any],
    mask: np.ndarray | None,
    *,
    dark: np.ndarray | None = None,
    flat: np.ndarray | None = None,
):
    """:func:`~pyscatter.kernels.sectors.sector_integrator` of the recorded ``params``, from
    the matrix cache without pyFAI when it holds its inputs, else computed with ``ai`` (a
    pyFAI integrator of ``params["geometry"]``, or None to make one) and stored."""
    make = integrator_maker(ai, params)
    radial_range = params["radial_range"]
    parts = dict(
        matrix_parts(params, mask),
        npt=int(params["npt"]),
        radial_range=None if radial_range is None else [float(v) for v in radial_range],
        guard_bins=bool(params["guard_bins"]),
        sectors=[s["ranges"] for s in params["sectors"]],
    )
    inputs = setup_cache.remembered(
        "sector-inputs",
        parts,
        lambda: sector_inputs(make(), params, mask),
        sector_inputs_check(params),
    )
    return sector_from_inputs(inputs, params, mask, dark=dark, flat=flat)


def cached_radial_range(
    params: dict[str, Any], mask: np.ndarray | None, integrator: Callable[[], Any]
) -> tuple[float, float]:
    """:func:`~pyscatter.kernels.sectors.default_radial_range` of the recorded ``params``
    (geometry, frame shape, unit, method) and ``mask``, from the matrix cache when it holds it,
    else with ``integrator()`` (pyFAI's integrator of the geometry) and stored."""
    shape = (int(params["frame_shape"][0]), int(params["frame_shape"][1]))

    def build() -> dict[str, np.ndarray]:
        extent = default_radial_range(
            integrator(), shape, unit=params["unit"], method=params["method"], mask=mask
        )
        return {"extent": np.array(extent, dtype=np.float64)}

    parts = matrix_parts(params, mask)
    parts = {k: parts[k] for k in ("geometry", "frame_shape", "unit", "method", "mask")}
    arrays = setup_cache.remembered(
        "sector-radial-range", parts, build, lambda a: a["extent"].shape == (2,)
    )
    return float(arrays["extent"][0]), float(arrays["extent"][1])


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
    :func:`cached_sector_integrator`)."""
    return matrix_function(
        cached_sector_integrator, params, mask, ai, dark=dark, flat=flat, radial_slow=False
    )


def build(spec, h5: h5py.File):
    """Block function of a SectorIntegration spec; ``h5`` gives the masks, dark and flat."""
    return make_function(spec.params, **read_arrays(h5, spec.params))
