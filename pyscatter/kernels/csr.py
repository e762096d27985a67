"""pyFAI's CSR matrices (pixels → bins) and per-pixel inputs, built by pyFAI or loaded.

pyFAI stays the geometry and matrix engine: :func:`pyfai_csr` lets it build its Cython CSR
engine once (on a blank frame) and takes the engine's arrays; the matrix cache
(:mod:`pyscatter.io.matrix_cache`) keeps them, keyed by :func:`csr_key` (everything pyFAI
builds them from), so the next process with the same geometry, mask and options loads the very
same arrays. :func:`pyfai_inputs` adds the per-pixel corrections of the geometry that
:meth:`~pyscatter.kernels.integrate.BatchIntegrator.from_pyfai` takes from pyFAI, as plain
arrays that can be stored too. Pure numerics on a pyFAI integrator passed in, apart from the
cache's files.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import scipy.sparse as sp

from pyscatter.errors import InputError
from pyscatter.kernels.checks import check_frame_shape
from pyscatter.kernels.integrate_reference import SPLITTINGS

__all__ = [
    "csr_arrays",
    "csr_key",
    "csr_from_arrays",
    "load_csr",
    "pixel_check",
    "pixel_inputs",
    "pyfai_csr",
    "pyfai_inputs",
]


def _csr_method(method: Any, dim: int) -> Any:
    """pyFAI's ``IntegrationMethod`` of ``method``, which must be a ``dim``-D CSR method."""
    from pyFAI.integrator.azimuthal import AzimuthalIntegrator  # noqa: F401  (method registry)
    from pyFAI.method_registry import IntegrationMethod

    try:
        chosen = IntegrationMethod.select_one_available(method, dim=dim, degradable=False)
    except (TypeError, ValueError, AttributeError):  # not a method pyFAI can parse
        chosen = None
    if chosen is None or chosen.algo_lower != "csr" or chosen.split_lower not in SPLITTINGS:
        raise InputError(
            f"unsupported method {method!r} for the batched integrator; expected a {dim}-D CSR "
            f"method with splitting one of {', '.join(SPLITTINGS)}, e.g. ('bbox', 'csr', 'cython')"
        )
    return chosen


def _build_csr(
    ai: Any, shape: tuple[int, int], npt: int, npt_azim: int | None, geometry: dict[str, Any]
) -> dict[str, np.ndarray]:
    """Let pyFAI build its Cython CSR engine (on a blank frame) and take its arrays.

    Returns ``data`` (float32), ``indices``, ``indptr``, ``radial``, ``azimuthal`` (empty for
    1-D), ``unit``, ``cmask`` (pyFAI's mask as packed bits, empty when it checks none),
    ``n_pix`` and ``empty``: everything :meth:`BatchIntegrator.from_pyfai` takes from pyFAI's
    engine and result, as plain arrays (what :mod:`pyscatter.io.matrix_cache` stores).
    """
    from pyFAI.method_registry import IntegrationMethod

    probe = np.zeros(shape, dtype=np.float32)
    if npt_azim is None:
        dim, res = 1, ai.integrate1d_ng(probe, int(npt), **geometry)
        azimuthal, unit = np.zeros(0), str(res.unit)
    else:
        dim, res = 2, ai.integrate2d_ng(probe, int(npt), int(npt_azim), **geometry)
        azimuthal, unit = np.asarray(res.azimuthal, dtype=np.float64), str(res.radial_unit)
    key = IntegrationMethod.select_method(dim, geometry["method"][0], "csr", "cython")[0]
    engine = ai.engines[key].engine
    n_pix = shape[0] * shape[1]
    cmask = np.zeros(0, dtype=np.uint8)
    if engine.check_mask:
        cmask = np.packbits(np.asarray(engine.cmask).reshape(-1) != 0)
    return {
        "data": np.array(engine.data, dtype=np.float32),
        "indices": np.array(engine.indices),
        "indptr": np.array(engine.indptr),
        "radial": np.asarray(res.radial, dtype=np.float64),
        "azimuthal": azimuthal,
        "unit": np.array(unit),
        "cmask": cmask,
        "n_pix": np.array(n_pix),
        "empty": np.array(float(engine.empty)),
    }


def csr_key(
    ai: Any, shape: tuple[int, int], npt: int, npt_azim: int | None, geometry: dict[str, Any]
) -> str:
    """The matrix cache key of pyFAI's CSR matrix of one integration.

    Everything pyFAI builds it from: the geometry (``ai.get_config()``, its chi discontinuity
    and empty value), the frame shape, the mask in effect (the one given, else the
    detector's), the bins, the unit, the ranges, the pixel splitting and pyFAI's version.
    """
    import pyFAI

    from pyscatter.io import matrix_cache

    mask = geometry.get("mask")
    if mask is None:
        mask = ai.detector.mask
    return matrix_cache.key(
        "pyfai-csr",
        pyfai=str(pyFAI.version),
        geometry=json.loads(json.dumps(ai.get_config(), sort_keys=True, default=str)),
        chi_disc_at_pi=bool(getattr(ai, "chiDiscAtPi", True)),
        ai_empty=float(getattr(ai, "empty", 0.0) or 0.0),
        shape=[int(shape[0]), int(shape[1])],
        npt=int(npt),
        npt_azim=None if npt_azim is None else int(npt_azim),
        unit=str(geometry["unit"]),
        split=str(geometry["method"][0]),
        radial_range=_range(geometry.get("radial_range")),
        azimuth_range=_range(geometry.get("azimuth_range")),
        correct_solid_angle=bool(geometry.get("correctSolidAngle", False)),
        mask=None if mask is None else (np.asarray(mask) != 0),
    )


def _range(value: Any) -> list[float] | None:
    return None if value is None else [float(v) for v in value]


def pyfai_csr(
    ai: Any, shape: tuple[int, int], npt: int, npt_azim: int | None, geometry: dict[str, Any]
) -> tuple[sp.csr_matrix, dict[str, Any]]:
    """pyFAI's CSR matrix of a geometry and what goes with it, from the matrix cache if there.

    ``geometry`` holds the options of ``integrate1d_ng`` / ``integrate2d_ng`` (a Cython CSR
    ``method``). On a miss pyFAI builds the matrix (:func:`_build_csr`) and it is stored
    (:mod:`pyscatter.io.matrix_cache`, keyed by :func:`csr_key`); the arrays are pyFAI's, bit
    for bit, either way. Returns the matrix (n_bins, n_pix) and a dict of ``radial``,
    ``azimuthal`` (None for 1-D), ``unit``, ``cmask`` ((n_row, n_col) bool, or None when
    pyFAI checks no mask), ``empty`` and ``key`` (the cache key).
    """
    from pyscatter.io import matrix_cache

    shape = (int(shape[0]), int(shape[1]))
    entry_key = csr_key(ai, shape, npt, npt_azim, geometry)
    arrays = matrix_cache.cached(
        entry_key,
        lambda: _build_csr(ai, shape, npt, npt_azim, geometry),
        _csr_check(shape),
    )
    return _csr_entry(arrays, shape, npt_azim is not None, entry_key)


def load_csr(entry_key: str, shape: tuple[int, int], two_d: bool):
    """:func:`pyfai_csr`'s matrix and dict from the matrix cache alone (no pyFAI), or None."""
    from pyscatter.io import matrix_cache

    shape = (int(shape[0]), int(shape[1]))
    arrays = matrix_cache.load(entry_key, _csr_check(shape))
    return None if arrays is None else _csr_entry(arrays, shape, two_d, entry_key)


def _csr_check(shape: tuple[int, int]):
    from pyscatter.io import matrix_cache

    n_pix = shape[0] * shape[1]
    check = matrix_cache.csr_check(n_pix)

    def consistent(arrays: dict[str, np.ndarray]) -> bool:
        return check(arrays) and int(arrays["n_pix"]) == n_pix

    return consistent


def _csr_entry(
    arrays: dict[str, np.ndarray], shape: tuple[int, int], two_d: bool, entry_key: str
) -> tuple[sp.csr_matrix, dict[str, Any]]:
    n_pix = shape[0] * shape[1]
    matrix = sp.csr_matrix(
        (arrays["data"], arrays["indices"], arrays["indptr"]),
        shape=(arrays["indptr"].size - 1, n_pix),
    )
    cmask = None
    if arrays["cmask"].size:
        cmask = np.unpackbits(arrays["cmask"], count=n_pix).astype(bool).reshape(shape)
    info = {
        "radial": arrays["radial"],
        "azimuthal": arrays["azimuthal"] if two_d else None,
        "unit": str(arrays["unit"]),
        "cmask": cmask,
        "empty": float(arrays["empty"]),
        "key": entry_key,
    }
    return matrix, info


_NONE = np.zeros(0, dtype=np.float32)


def pyfai_inputs(
    ai: Any,
    shape: tuple[int, int],
    *,
    npt: int,
    unit: str = "q_nm^-1",
    npt_azim: int | None = None,
    method: Any = ("bbox", "csr", "cython"),
    mask: np.ndarray | None = None,
    correct_solid_angle: bool = True,
    polarization_factor: float | None = None,
    error_model: str | None = None,
    radial_range: tuple[float, float] | None = None,
    azimuth_range: tuple[float, float] | None = None,
) -> tuple[sp.csr_matrix, dict[str, Any], dict[str, np.ndarray]]:
    """Everything :meth:`BatchIntegrator.from_pyfai` takes from pyFAI, once.

    Returns the matrix and dict of :func:`pyfai_csr` (from the matrix cache when it holds
    them) and the per-pixel arrays of the geometry as plain arrays (empty when unused):
    ``solid_angle``, ``polarization``, ``detector_flat``, ``detector_dark``,
    ``detector_dummy`` ((dummy, delta) with NaN for no delta, or empty), ``poisson_dark``
    (pyFAI's 2-D path adds max(dark, 0) to the Poisson variance) and ``csr_key``. These can be
    stored (a worker then needs no pyFAI: :meth:`BatchIntegrator.from_inputs`).
    """
    shape = check_frame_shape(shape)
    dim = 1 if npt_azim is None else 2
    chosen = _csr_method(method, dim)
    geometry = dict(
        unit=unit,
        method=(chosen.split_lower, "csr", "cython"),
        mask=mask,
        radial_range=radial_range,
        azimuth_range=azimuth_range,
        correctSolidAngle=False,
    )
    matrix, csr = pyfai_csr(ai, shape, npt, npt_azim, geometry)  # cached by geometry
    inputs = {
        **pixel_inputs(
            ai,
            shape,
            correct_solid_angle=correct_solid_angle,
            polarization_factor=polarization_factor,
        ),
        "poisson_dark": np.array(
            error_model == "poisson" and dim == 2 and not chosen.manage_variance
        ),
        "csr_key": np.array(csr["key"]),
    }
    return matrix, csr, inputs


PIXEL_INPUTS = ("solid_angle", "polarization", "detector_flat", "detector_dark", "detector_dummy")
"""The per-pixel inputs of a geometry that :func:`pixel_inputs` returns."""


def pixel_inputs(
    ai: Any,
    shape: tuple[int, int],
    *,
    correct_solid_angle: bool,
    polarization_factor: float | None,
) -> dict[str, np.ndarray]:
    """The per-pixel corrections of a geometry that an integrator takes from pyFAI, as plain
    arrays (empty when unused): ``solid_angle`` (pyFAI's relative solid angle, when
    ``correct_solid_angle``), ``polarization`` (with ``polarization_factor``, when not None),
    the detector's ``detector_flat`` and ``detector_dark``, and ``detector_dummy`` ((dummy,
    delta) with NaN for no delta, or empty)."""
    detector = ai.detector

    def array(value: Any) -> np.ndarray:
        return _NONE if value is None else np.asarray(value)

    dummy = _NONE
    if detector.dummy is not None:
        delta = detector.delta_dummy
        dummy = np.array([detector.dummy, np.nan if delta is None else delta], dtype=np.float64)
    return {
        "solid_angle": array(ai.solidAngleArray(shape, True) if correct_solid_angle else None),
        "polarization": array(
            None if polarization_factor is None else ai.polarization(shape, polarization_factor)
        ),
        "detector_flat": array(detector.flatfield),
        "detector_dark": array(detector.darkcurrent),
        "detector_dummy": dummy,
    }


def pixel_check(n_pix: int):
    """A check of stored :func:`pixel_inputs`: each array empty or of ``n_pix`` values, the
    dummy empty or a pair."""

    def check(arrays: dict[str, np.ndarray]) -> bool:
        if not set(PIXEL_INPUTS) <= set(arrays):
            return False
        sizes = [arrays[name].size for name in PIXEL_INPUTS[:4]]
        return all(n in (0, n_pix) for n in sizes) and arrays["detector_dummy"].size in (0, 2)

    return check


def csr_arrays(matrix: sp.csr_matrix) -> dict[str, np.ndarray]:
    """``data``, ``indices``, ``indptr`` and ``n_pix`` of a CSR matrix (what can be stored)."""
    csr = sp.csr_matrix(matrix)
    return {
        "data": np.asarray(csr.data),
        "indices": np.asarray(csr.indices),
        "indptr": np.asarray(csr.indptr),
        "n_pix": np.array(csr.shape[1]),
    }


def csr_from_arrays(arrays: dict[str, np.ndarray]) -> sp.csr_matrix:
    """The CSR matrix of :func:`csr_arrays`."""
    return sp.csr_matrix(
        (arrays["data"], arrays["indices"], arrays["indptr"]),
        shape=(arrays["indptr"].size - 1, int(arrays["n_pix"])),
    )
