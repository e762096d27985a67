"""Caving: fill masked pixels from their centro-symmetric partner through the beam centre.

Elastic scattering is centro-symmetric (Friedel: I(q) = I(−q)), so a pixel hidden by the
beamstop arm or a module gap can take the value seen at its reflection through the beam centre.
With the centre at ``(r0, c0)`` (float array coordinates, pixel ``(i, j)`` centred at
``(i, j)``) the partner of ``(r, c)`` is ``(2 r0 − r, 2 c0 − c)``, generally between pixels.

Passes
------
A pixel is *missing* when it is masked or its value is not finite. Pass ``k`` (1 … ``n_iter``)
looks at every pixel still missing after pass ``k − 1`` and reads its partner location in the
image *as it was after pass k − 1*:

- ``order=1`` (default): the bilinear weights of the four pixels around the partner location,
  using only those that are valid (measured, or filled in an earlier pass), renormalised:
  ``value = Σ w_i v_i / Σ w_i``; filled when that ``Σ w_i > 0``.
- ``order=0``: the nearest pixel to the partner location (``numpy.rint``), filled when valid.

Pixels filled in pass ``k`` serve as sources from pass ``k + 1`` on (all updates of one pass
happen at once, so the result does not depend on the order of the pixels). A pixel whose
partner lies off the detector, or in a region that is its own mirror image (the beamstop
disc around the centre), never gets a value; with ``order=1`` later passes fill the edges of
such regions one pixel deeper per pass, from values that were themselves reflected. Measured
pixels never change.

:func:`cave_reference` is the slow, obvious twin (a Python loop over pixels), for tests.

Examples
--------
>>> import numpy as np
>>> image = np.arange(25.0).reshape(5, 5)
>>> image = image + image[::-1, ::-1]          # centro-symmetric about (2, 2)
>>> mask = np.zeros((5, 5), bool); mask[0, 1] = True
>>> res = cave(np.where(mask, np.nan, image), mask, (2.0, 2.0))
>>> float(res.filled[0, 1]) == float(image[0, 1]), bool(res.missing.any())
(True, False)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from pyscatter.errors import InputError
from pyscatter.kernels.checks import check_frame_shape

__all__ = ["CavingResult", "cave", "cave_reference", "partner_coordinates"]

ORDERS = (0, 1)


@dataclass(frozen=True)
class CavingResult:
    """Images with masked pixels filled from their centro-symmetric partners.

    Attributes
    ----------
    filled : ndarray, shape (..., n_row, n_col), float
        The images (float64 for integer input, else the input float dtype); measured pixels
        unchanged, filled pixels set, still missing pixels NaN.
    missing : ndarray, shape (..., n_row, n_col), bool
        Pixels still without a value.
    filled_in_pass : ndarray, shape (..., n_row, n_col), int8
        0 for measured pixels and still missing ones, else the pass (1 … n_iter) that filled it.
    """

    filled: np.ndarray
    missing: np.ndarray
    filled_in_pass: np.ndarray


def partner_coordinates(
    shape: tuple[int, int], center: tuple[float, float]
) -> tuple[np.ndarray, np.ndarray]:
    """Partner locations ``(2 r0 − r, 2 c0 − c)`` of every pixel, float64 arrays of ``shape``."""
    rows, cols = check_frame_shape(shape)
    r0, c0 = _check_center(center)
    r, c = np.indices((rows, cols), dtype=np.float64)
    return 2.0 * r0 - r, 2.0 * c0 - c


def _check_center(center: Any) -> tuple[float, float]:
    try:
        r0, c0 = (float(v) for v in center)
    except (TypeError, ValueError):
        raise InputError(f"center must be (row, col) floats; got {center!r}") from None
    if not (math.isfinite(r0) and math.isfinite(c0)):
        raise InputError(f"center must be finite (row, col); got {center!r}")
    return r0, c0


def _check_inputs(
    images: Any, mask: Any, center: Any, n_iter: int, order: int
) -> tuple[np.ndarray, np.ndarray, tuple[float, float]]:
    arr = np.asarray(images)
    if arr.ndim < 2 or not (
        np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)
    ):
        raise InputError(
            f"images must be numeric with shape (..., n_row, n_col); got {arr.shape} {arr.dtype}"
        )
    if int(n_iter) != n_iter or int(n_iter) < 1:
        raise InputError(f"n_iter must be a positive integer; got {n_iter!r}")
    if order not in ORDERS:
        raise InputError(f"unsupported order {order!r}; expected one of {ORDERS}")
    dtype = arr.dtype if np.issubdtype(arr.dtype, np.floating) else np.dtype(np.float64)
    values = arr.astype(dtype, copy=True)
    if mask is None:
        masked = np.zeros(arr.shape, dtype=bool)
    else:
        m = np.asarray(mask)
        try:
            masked = np.broadcast_to(m != 0, arr.shape)
        except ValueError:
            raise InputError(
                f"mask of shape {m.shape} does not broadcast to the images {arr.shape}"
            ) from None
    missing = masked | ~np.isfinite(values)
    return values, missing, _check_center(center)


def _sources(
    cand: np.ndarray, shape: tuple[int, int], center: tuple[float, float], order: int
) -> tuple[np.ndarray, np.ndarray]:
    """Flat indices (m, k) and weights (m, k) of the pixels around each candidate's partner.

    Off-detector sources get weight 0 (and index 0).
    """
    rows, cols = shape
    r = 2.0 * center[0] - cand // cols
    c = 2.0 * center[1] - cand % cols
    if order == 0:
        rr, cc = np.rint(r)[:, None], np.rint(c)[:, None]
        weights = np.ones(rr.shape)
    else:
        r_lo, c_lo = np.floor(r), np.floor(c)
        fr, fc = r - r_lo, c - c_lo
        rr = np.stack([r_lo, r_lo, r_lo + 1, r_lo + 1], axis=1)
        cc = np.stack([c_lo, c_lo + 1, c_lo, c_lo + 1], axis=1)
        weights = np.stack([(1 - fr) * (1 - fc), (1 - fr) * fc, fr * (1 - fc), fr * fc], axis=1)
    inside = (rr >= 0) & (rr < rows) & (cc >= 0) & (cc < cols)
    index = np.where(inside, rr * cols + cc, 0).astype(np.int64)
    return index, np.where(inside, weights, 0.0)


def cave(
    images: Any,
    mask: Any,
    center: tuple[float, float],
    *,
    n_iter: int = 1,
    order: int = 1,
) -> CavingResult:
    """Fill masked pixels of a batch of images from their centro-symmetric partners.

    See the module docstring for the passes and the interpolation.

    Parameters
    ----------
    images : array_like, shape (n_row, n_col) or (..., n_row, n_col)
        Images (never modified); non-finite values count as missing.
    mask : array_like of bool, broadcastable to ``images``, or None
        Non-zero for pixels to fill (e.g. the detector mask, shape (n_row, n_col)).
    center : (float, float)
        Beam centre (row, col) in array coordinates, e.g.
        :func:`pyscatter.geometry.beam_center`.
    n_iter : int
        Passes (>= 1).
    order : {0, 1}
        Nearest partner pixel (0) or bilinear over the valid pixels around the partner (1).

    Returns
    -------
    CavingResult

    Raises
    ------
    InputError
        Non-numeric images, a mask that does not broadcast, a bad centre, ``n_iter`` or
        ``order``.
    """
    values, missing, ctr = _check_inputs(images, mask, center, n_iter, order)
    shape = values.shape[-2:]
    lead = values.shape[:-2]
    n_pix = shape[0] * shape[1]
    flat = values.reshape(-1, n_pix)
    miss = missing.reshape(-1, n_pix).copy()
    flat[miss] = np.nan
    passes = np.zeros(flat.shape, dtype=np.int8)
    cand = np.flatnonzero(miss.any(axis=0))  # pixels missing in some image
    if cand.size:
        index, weights = _sources(cand, (int(shape[0]), int(shape[1])), ctr, order)
        for k in range(1, int(n_iter) + 1):
            todo = miss[:, cand]
            if not todo.any():
                break
            src_ok = ~miss[:, index]  # (n, m, k): sources valid after the previous pass
            w = weights[None] * src_ok
            total = w.sum(axis=-1)
            src = np.where(src_ok, flat[:, index], 0.0)
            with np.errstate(invalid="ignore", divide="ignore"):
                value = (w * src).sum(axis=-1) / total
            new = todo & (total > 0)
            if not new.any():
                break
            rows_new, cols_new = np.nonzero(new)
            pix = cand[cols_new]
            flat[rows_new, pix] = value[rows_new, cols_new]
            miss[rows_new, pix] = False
            passes[rows_new, pix] = k
    return CavingResult(
        filled=flat.reshape(values.shape),
        missing=miss.reshape(*lead, *shape),
        filled_in_pass=passes.reshape(*lead, *shape),
    )


def cave_reference(
    image: Any,
    mask: Any,
    center: tuple[float, float],
    *,
    n_iter: int = 1,
    order: int = 1,
) -> CavingResult:
    """The slow, obvious twin of :func:`cave` for one image: a loop over pixels and neighbours."""
    values, missing, (r0, c0) = _check_inputs(image, mask, center, n_iter, order)
    if values.ndim != 2:
        raise InputError(f"cave_reference takes one image (n_row, n_col); got {values.shape}")
    rows, cols = values.shape
    values[missing] = np.nan
    passes = np.zeros(values.shape, dtype=np.int8)
    for k in range(1, int(n_iter) + 1):
        before_values, before_missing = values.copy(), missing.copy()
        for r, c in zip(*np.nonzero(before_missing), strict=True):
            pr, pc = 2 * r0 - r, 2 * c0 - c
            if order == 0:
                neighbours = [(round(pr), round(pc), 1.0)]  # round half to even, like rint
            else:
                i, j = math.floor(pr), math.floor(pc)
                fr, fc = pr - i, pc - j
                neighbours = [
                    (i, j, (1 - fr) * (1 - fc)),
                    (i, j + 1, (1 - fr) * fc),
                    (i + 1, j, fr * (1 - fc)),
                    (i + 1, j + 1, fr * fc),
                ]
            num = den = 0.0
            for i, j, w in neighbours:
                if 0 <= i < rows and 0 <= j < cols and not before_missing[i, j]:
                    num += w * before_values[i, j]
                    den += w
            if den > 0:
                values[r, c] = num / den
                missing[r, c] = False
                passes[r, c] = k
    return CavingResult(filled=values, missing=missing, filled_in_pass=passes)
