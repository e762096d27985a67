"""Sector matrices: pyFAI's 1-D CSR integrations restricted to azimuth ranges, stacked.

Each sector is pyFAI's 1-D CSR integration restricted to an azimuth range, over a common
radial range: pyFAI's own range for the whole detector by default (the same bins as a full 1-D
integration), or the range asked, then with a guard bin on each side (see
:mod:`pyscatter.kernels.rings`).
pyFAI takes ranges
inside its chi interval [-180°, 180°) only (a range crossing ±180° gives a partial result and
a warning), so a sector crossing ±180° is split into two ranges and their matrices are summed:
Σ signal, Σ normalization and Σ variance add, which is the integration of the union (equal to
pyFAI with its chi discontinuity moved to 0, to float precision). The sector matrices are
stacked into one integrator whose azimuthal axis is the sectors.

Pure numerics on a pyFAI integrator passed in: no files (the worker,
:mod:`pyscatter.processes.sectors_worker`, reads them).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp

from pyscatter.kernels.csr import csr_arrays, csr_from_arrays, csr_key
from pyscatter.kernels.integrate import BatchIntegrator
from pyscatter.kernels.models import wrap_deg  # into [-180, 180), pyFAI's chi interval
from pyscatter.kernels.rings import (
    csr_method,
    geometry_inputs,
    guarded_matrix,
    pyfai_engine,
    pyfai_matrix,
    recorded_shape,
    stacked_from_inputs,
)


def sector_centers(n_sectors: int, offset_deg: float) -> np.ndarray:
    """Centres ``offset + k·360/n`` (k = 0 … n − 1) wrapped into [-180, 180), increasing."""
    raw = float(offset_deg) + 360.0 * np.arange(int(n_sectors)) / int(n_sectors)
    return np.sort(wrap_deg(raw))


def sector_ranges(center_deg: float, width_deg: float) -> list[tuple[float, float]] | None:
    """Azimuth ranges (degrees, each inside [-180, 180]) covering one sector; None: all chi.

    ``center_deg`` lies in [-180, 180) and ``width_deg`` in (0, 360]; a sector crossing ±180°
    gives two ranges.
    """
    if width_deg >= 360.0:
        return None
    lo, hi = center_deg - 0.5 * width_deg, center_deg + 0.5 * width_deg
    if hi > 180.0:
        return [(lo, 180.0), (-180.0, hi - 360.0)]
    if lo < -180.0:
        return [(lo + 360.0, 180.0), (-180.0, hi)]
    return [(lo, hi)]


def sector_matrix(
    ai: Any, params: dict[str, Any], mask: np.ndarray | None
) -> tuple[sp.csr_matrix, np.ndarray, np.ndarray, str]:
    """The stacked CSR matrix of all sectors of SectorIntegration ``params``.

    Returns the matrix with rows ``i_q * n_sectors + i_sector`` (BatchIntegrator's 2-D order),
    the radial bin centres, the sector centres (degrees) and pyFAI's unit name.
    """
    shape = recorded_shape(params)
    method = csr_method(params["method"], 1)
    npt = int(params["npt"])
    pieces, radial, unit = [], None, params["unit"]
    for sector in params["sectors"]:
        ranges = sector["ranges"] or [None]
        total = None
        for rng in ranges:
            matrix, radial, _, unit = (guarded_matrix if params["guard_bins"] else pyfai_matrix)(
                ai,
                shape,
                npt=npt,
                unit=params["unit"],
                method=method,
                mask=mask,
                radial_range=tuple(params["radial_range"]),
                azimuth_range=None if rng is None else tuple(rng),
            )
            total = matrix if total is None else (total + matrix)
        pieces.append(total)
    assert radial is not None
    n_sec = len(pieces)
    stacked = sp.vstack(pieces, format="csr")  # rows sector * npt + i_q
    # BatchIntegrator's 2-D rows are i_q * n_azimuthal + i_azimuthal
    order = (np.arange(n_sec)[None, :] * npt + np.arange(npt)[:, None]).ravel()
    centres = np.array([s["center"] for s in params["sectors"]], dtype=np.float64)
    return stacked[order], radial, centres, unit


def sector_integrator(
    ai: Any,
    params: dict[str, Any],
    mask: np.ndarray | None,
    *,
    dark: np.ndarray | None = None,
    flat: np.ndarray | None = None,
) -> BatchIntegrator:
    """One integrator for all sectors: radial axis = q, azimuthal axis = sector centres.

    ``params`` as recorded by SectorIntegration; ``dark``, ``flat``: images (default: the
    detector's). (:func:`sector_from_inputs` of :func:`sector_inputs`.)
    """
    return sector_from_inputs(sector_inputs(ai, params, mask), params, mask, dark=dark, flat=flat)


def sector_inputs(ai: Any, params: dict[str, Any], mask: np.ndarray | None) -> dict[str, Any]:
    """Everything :func:`sector_integrator` takes from pyFAI, as plain arrays (what the matrix
    cache stores): the :func:`sector_matrix` (``data``, ``indices``, ``indptr``, ``n_pix``), the
    radial bin centres ``radial``, the ``unit`` and the
    :func:`~pyscatter.kernels.rings.geometry_inputs` of ``params``."""
    matrix, radial, _, unit = sector_matrix(ai, params, mask)
    return {
        **csr_arrays(matrix),
        "radial": np.asarray(radial, dtype=np.float64),
        "azimuthal": np.array([s["center"] for s in params["sectors"]], dtype=np.float64),
        "unit": np.array(unit),
        **geometry_inputs(ai, recorded_shape(params), params),
    }


def sector_inputs_check(params: dict[str, Any]):
    """A check of stored :func:`sector_inputs` of ``params``: a CSR matrix over the frame's
    pixels with a row per (q bin, sector), bin and sector centres of those sizes, and per-pixel
    arrays of the frame's size."""
    from pyscatter.kernels.rings import inputs_check

    shape = recorded_shape(params)
    npt, n_sec = int(params["npt"]), len(params["sectors"])
    return inputs_check(
        shape[0] * shape[1],
        lambda a: (
            a["radial"].shape == (npt,)
            and a["azimuthal"].shape == (n_sec,)
            and a["indptr"].size == npt * n_sec + 1
        ),
    )


def sector_from_inputs(
    inputs: dict[str, np.ndarray],
    params: dict[str, Any],
    mask: np.ndarray | None,
    *,
    dark: np.ndarray | None = None,
    flat: np.ndarray | None = None,
) -> BatchIntegrator:
    """:func:`sector_integrator` from its :func:`sector_inputs` (computed, or loaded from the
    matrix cache): no pyFAI call."""
    return stacked_from_inputs(
        inputs,
        recorded_shape(params),
        csr_from_arrays(inputs),
        radial=inputs["radial"],
        azimuthal=np.array([s["center"] for s in params["sectors"]], dtype=np.float64),
        unit=str(inputs["unit"]),
        mask=mask,
        params=params,
        dark=dark,
        flat=flat,
    )


def default_radial_range(
    ai: Any, shape: tuple[int, int], *, unit: str, method: Any, mask: np.ndarray | None
) -> tuple[float, float]:
    """The radial range pyFAI's full 1-D integration takes: its pixels' extent, in ``unit``.

    Passed back to pyFAI as ``radial_range`` it gives the very same bins and matrix (the
    extent of the unmasked pixels: nothing lies outside, so no guard bins are needed). Kept in
    the matrix cache (:mod:`pyscatter.io.matrix_cache`) under the key of pyFAI's matrix it
    comes from: pyFAI builds a whole CSR engine to find it.
    """
    import pyFAI.units

    from pyscatter.io import matrix_cache

    method = csr_method(method, 1)
    geometry = dict(
        unit=unit,
        method=method,
        mask=mask,
        radial_range=None,
        azimuth_range=None,
        correctSolidAngle=False,
    )

    def build() -> dict[str, np.ndarray]:
        _, engine = pyfai_engine(
            ai, shape, npt=2, unit=unit, method=method, mask=mask, radial_range=None
        )
        scale = pyFAI.units.to_unit(unit).scale
        return {"extent": np.array([engine.pos0_min * scale, engine.pos0_maxin * scale])}

    key = matrix_cache.key("radial-extent", csr=csr_key(ai, shape, 2, None, geometry))
    extent = matrix_cache.cached(key, build, lambda a: a["extent"].shape == (2,))["extent"]
    return float(extent[0]), float(extent[1])
