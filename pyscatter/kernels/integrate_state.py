"""A :class:`~pyscatter.kernels.integrate.BatchIntegrator`'s prepared arrays, as plain arrays.

Building the integrator from pyFAI's CSR matrix takes work that depends only on its inputs:
the statically invalid pixels taken out of the matrix, the matrix turned pixel-major (CSC),
the used pixels, the per-bin normalization and count (about 70 ms for an Eiger 1M). Its
:func:`state` is those results as named arrays (no pickle, no pyFAI object); :func:`restore`
makes the same integrator from them, attribute for attribute, without redoing the work. The
"azimuthal" error model keeps the CSR matrix too and has no state (None).

Examples
--------
>>> import numpy as np, scipy.sparse as sp
>>> from pyscatter.kernels.integrate import BatchIntegrator
>>> m = sp.csr_matrix(np.array([[1.0, 0.5, 0, 0], [0, 0.5, 1, 1]], dtype=np.float32))
>>> bi = BatchIntegrator(m, (2, 2), radial=np.array([1.0, 2.0]), unit="q_nm^-1",
...                      mask=np.array([[0, 0], [0, 1]]), error_model="poisson")
>>> again = restore(state(bi))
>>> frames = np.arange(8, dtype=np.uint32).reshape(2, 2, 2)
>>> np.array_equal(again.integrate(frames).intensity, bi.integrate(frames).intensity)
True
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from pyscatter.kernels.integrate import BatchIntegrator

__all__ = ["STATE_VERSION", "restore", "state"]

STATE_VERSION = 1
"""Version of the layout of :func:`state` (part of a cache key that stores it)."""

#: Per-pixel arrays that may be None.
_OPTIONAL = ("_flat", "_dark", "_poisson_offset")


def state(bi: BatchIntegrator) -> dict[str, np.ndarray] | None:
    """The prepared arrays of ``bi`` (None for the "azimuthal" error model)."""
    if bi.error_model == "azimuthal":
        return None
    out = {
        "shape": np.array(bi.shape, dtype=np.int64),
        "error_model": np.array(bi.error_model or ""),
        "block_frames": np.array(bi.block_frames, dtype=np.int64),
        "radial": bi.radial,
        "azimuthal": np.zeros(0) if bi.azimuthal is None else bi.azimuthal,
        "two_d": np.array(bi.azimuthal is not None),
        "unit": np.array(bi.unit),
        "empty": np.array(bi.empty, dtype=np.float64),
        "dummy": np.array([] if bi._dummy is None else [bi._dummy], dtype=np.float32),
        "delta_dummy": np.array(bi._delta_dummy, dtype=np.float32),
        "detector_dummy": _detector_dummy(bi._detector_dummy),
        "norm": bi._norm,
        "csc_data": bi._csc.data,
        "csc_indices": bi._csc.indices,
        "csc_indptr": bi._csc.indptr,
        "n_bins": np.array(bi.n_bins, dtype=np.int64),
        "norm_sum": bi._norm_sum,
        "count": bi._count,
    }
    for name in _OPTIONAL:
        value = getattr(bi, name)
        if value is not None:
            out[name.lstrip("_")] = value
    return out


def _detector_dummy(value: tuple[float, float | None] | None) -> np.ndarray:
    if value is None:
        return np.zeros(0, dtype=np.float64)
    dummy, delta = value
    return np.array([dummy, np.nan if delta is None else delta], dtype=np.float64)


def restore(arrays: dict[str, np.ndarray], block_frames: int | None = None) -> BatchIntegrator:
    """The integrator whose :func:`state` is ``arrays`` (``block_frames``: the recorded one)."""
    bi = BatchIntegrator.__new__(BatchIntegrator)
    shape = tuple(int(n) for n in arrays["shape"])
    n_pix = shape[0] * shape[1]
    bi.shape = (shape[0], shape[1])
    bi.error_model = str(arrays["error_model"]) or None
    bi.block_frames = int(arrays["block_frames"] if block_frames is None else block_frames)
    bi.radial = np.array(arrays["radial"], dtype=np.float64)
    bi.azimuthal = np.array(arrays["azimuthal"], dtype=np.float64) if arrays["two_d"] else None
    bi.unit = str(arrays["unit"])
    bi.empty = float(arrays["empty"])
    bi.n_bins = int(arrays["n_bins"])
    bi._dummy = np.float32(arrays["dummy"][0]) if arrays["dummy"].size else None
    bi._delta_dummy = np.float32(arrays["delta_dummy"])
    dd = arrays["detector_dummy"]
    bi._detector_dummy = None
    if dd.size:
        bi._detector_dummy = (float(dd[0]), None if np.isnan(dd[1]) else float(dd[1]))
    for name in _OPTIONAL:
        setattr(bi, name, arrays.get(name.lstrip("_")))
    bi._norm = arrays["norm"]
    csc = sp.csc_matrix(
        (arrays["csc_data"], arrays["csc_indices"], arrays["csc_indptr"]), (bi.n_bins, n_pix)
    )
    bi._csc = csc
    bi._data2 = csc.data**2 if bi.error_model == "poisson" else None
    bi._csr = None
    bi._used = np.diff(csc.indptr) > 0  # a pixel some bin uses: a column with entries
    bi._unused = np.flatnonzero(~bi._used).astype(np.min_scalar_type(n_pix))
    bi._norm_sum = arrays["norm_sum"]
    bi._count = arrays["count"]
    return bi


def consistent(arrays: dict[str, np.ndarray]) -> bool:
    """Whether ``arrays`` hold a whole state of matching sizes (a cache entry's check)."""
    shape = arrays["shape"]
    n_pix = int(shape[0]) * int(shape[1])
    n_bins = int(arrays["n_bins"])
    indptr, indices = arrays["csc_indptr"], arrays["csc_indices"]
    return (
        shape.shape == (2,)
        and arrays["norm"].shape == (n_pix,)
        and indptr.shape == (n_pix + 1,)
        and indices.shape == arrays["csc_data"].shape == (int(indptr[-1]),)
        and bool(np.all(np.diff(indptr) >= 0))
        and (indices.size == 0 or (0 <= int(indices.min()) and int(indices.max()) < n_bins))
        and arrays["norm_sum"].shape == arrays["count"].shape == (n_bins,)
        and all(
            arrays[k].shape == (n_pix,) for k in ("flat", "dark", "poisson_offset") if k in arrays
        )
    )
