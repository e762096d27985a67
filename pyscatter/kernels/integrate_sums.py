"""The sums behind :class:`~pyscatter.kernels.integrate.BatchIntegrator`, on pixel pieces.

A block of frames is handled pixel-major, ``(n_pix, n_frames)`` float32, piece by piece so a
piece stays in cache (:func:`chunk_pixels`): pyFAI's dummy test (:func:`dummy_invalid`), the
pixels found invalid in some frames (:class:`BadPixels`), the product of a CSC matrix slice
with a piece accumulated in place (:func:`accumulate`), and pyFAI's one-pass "azimuthal"
variance, vectorised over frames and matrix rows with prefix sums (:func:`azimuthal_sums`,
:func:`online_variance`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp

try:  # the C++ kernel behind scipy's csc @ dense; the public operator is the fallback
    from scipy.sparse._sparsetools import csc_matvecs as _csc_matvecs
except ImportError:  # pragma: no cover
    _csc_matvecs = None

__all__ = [
    "AZIMUTHAL_ELEMENTS",
    "AZIMUTHAL_ROW_ENTRIES",
    "BadPixels",
    "accumulate",
    "azimuthal_sums",
    "chunk_pixels",
    "dummy_invalid",
    "may_be_invalid",
    "online_variance",
    "padded_cumsum",
    "row_chunks",
]

AZIMUTHAL_ELEMENTS = 1 << 19
"""(matrix entries × frames) per temporary of the azimuthal pass."""

AZIMUTHAL_ROW_ENTRIES = 1 << 15
"""Matrix entries per row chunk of the azimuthal pass, whose prefix sums restart per chunk.

The chunks depend on the matrix alone, never on the number of frames in a call, so a frame's
sums are the same bits whether it is integrated alone or with others (a live session
integrates one frame a block, an offline run 16); ``AZIMUTHAL_ELEMENTS`` only sets how many
frames go through a chunk at once.
"""


def may_be_invalid(
    values: np.ndarray,
    dummy: np.float32,
    delta: np.float32,
    check: bool,
    floats: bool,
    one_side: bool = False,
) -> bool:
    """False when no value can be a dummy (``check``) nor, for ``floats``, non-finite.

    A pass for the maximum or the minimum, the one on the dummy's side first (one pass in the
    usual case for integer frames), and the other only if needed; floats take both.
    ``one_side`` stops after the first pass (True: maybe) for integer frames.
    """
    d, dd = float(dummy), float(delta)
    margin = 1e-6 * (abs(d) + dd)  # far above float32 rounding of |x − dummy| near delta
    below, above = d - dd - margin, d + dd + margin
    if floats:
        lo, hi = float(values.min()), float(values.max())
        if not (np.isfinite(lo) and np.isfinite(hi)):
            return True
        return check and not (hi < below or lo > above)
    if not check:
        return False
    if d >= 0:
        return not (float(values.max()) < below or (not one_side and float(values.min()) > above))
    return not (float(values.min()) > above or (not one_side and float(values.max()) < below))


def dummy_invalid(
    values: np.ndarray, dummy: np.float32, delta: np.float32, scanned: bool = False
) -> np.ndarray | None:
    """pyFAI's dummy test (``preproc``): equal when delta is 0, else ``|x − dummy| <= delta``.

    Returns None, after a max/min pass (:func:`may_be_invalid`; skipped when ``scanned``
    says it was done and found a possible dummy), when no value can match (the usual case).
    """
    if not scanned and not may_be_invalid(values, dummy, delta, True, False):
        return None
    if delta == 0:
        return values == dummy
    return np.abs(values - dummy) <= delta


class BadPixels:
    """Pixels found invalid in some frames of a block: their indices and (k, nf) masks.

    ``fill_unused`` tells the later pieces of the block that unused pixels held invalid
    values in an earlier one (see ``BatchIntegrator._raw_invalid``).
    """

    def __init__(self) -> None:
        self.pixels: list[np.ndarray] = []
        self.masks: list[np.ndarray] = []
        self.fill_unused = False

    def add(self, pixels: np.ndarray, masks: np.ndarray) -> None:
        """Record ``pixels`` (k,) and their invalid frames ``masks`` (k, nf)."""
        self.pixels.append(pixels)
        self.masks.append(masks)

    def result(self) -> tuple[np.ndarray, np.ndarray] | None:
        """All recorded pixels and masks, concatenated; None when there are none."""
        if not self.pixels:
            return None
        return np.concatenate(self.pixels), np.concatenate(self.masks)


def chunk_pixels(nf: int) -> int:
    """Pixels per piece so that a (pixels, nf) float32 piece is about 1 MiB."""
    return max(256, min(16384, (1 << 18) // max(1, nf)))


def accumulate(
    matrix: Any, data: np.ndarray, p0: int, p1: int, x: np.ndarray, y: np.ndarray
) -> None:
    """y += A[:, p0:p1] @ x, A the CSC ``matrix`` with values ``data`` (its own or c²).

    x is (p1 - p0, nf) and y (n_bins, nf), both float32 and C-contiguous.
    """
    if _csc_matvecs is not None:
        # scipy's own kernel behind csc @ dense, accumulating in place without a slice copy
        _csc_matvecs(
            y.shape[0],
            p1 - p0,
            x.shape[1],
            matrix.indptr[p0 : p1 + 1],
            matrix.indices,
            data,
            x.reshape(-1),
            y.reshape(-1),
        )
        return
    a, b = matrix.indptr[p0], matrix.indptr[p1]
    sub = sp.csc_matrix(
        (data[a:b], matrix.indices[a:b], matrix.indptr[p0 : p1 + 1] - a),
        shape=(y.shape[0], p1 - p0),
    )
    y += sub @ x


def online_variance(
    block: np.ndarray,
    invalid: np.ndarray | None,
    norm: np.ndarray,
    coef: np.ndarray,
    pixels: np.ndarray,
    bounds: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Σ c·s, Σ c·norm and pyFAI's recurrence variance for consecutive rows (see above).

    ``bounds`` (n_rows + 1,) are the row boundaries within ``coef``/``pixels``. Uses
    S_k/Ω_k − b_k = (Ω_{k-1}/Ω_k)(S_{k-1}/Ω_{k-1} − b_k), so each term is
    ``w²·Ω_{k-1}/Ω_k · (S_{k-1}/Ω_{k-1} − b_k)²``.
    """
    sig = block[pixels].astype(np.float64)  # (n_entries, nf); invalid pixels hold 0
    pix_norm = norm[pixels]
    w = (coef * pix_norm)[:, None]
    if invalid is not None:
        w = w * ~invalid[pixels]
    starts, lengths = bounds[:-1], np.diff(bounds)
    cum_w = padded_cumsum(w)
    # exactly 0 up to the first valid pixel of a row: only zeros were added since the row start
    w_prev = cum_w[:-1] - np.repeat(cum_w[starts], lengths, axis=0)
    started = w_prev > 0
    # the first valid pixel only initialises the sums; invalid pixels (w = 0) are skipped
    gain = np.where(started, w * w * w_prev / np.where(started, w_prev + w, 1.0), 0.0)
    cum_s = padded_cumsum(sig * coef[:, None])
    delta = cum_s[:-1] - np.repeat(cum_s[starts], lengths, axis=0)  # S_{k-1}
    delta /= np.where(started, w_prev, 1.0)
    np.divide(sig, pix_norm[:, None], out=sig)  # b_k = s_k / norm_k
    delta -= sig
    delta *= delta
    delta *= gain
    filled = lengths > 0
    variance = np.zeros((lengths.size, sig.shape[1]))
    variance[filled] = np.add.reduceat(delta, starts[filled], axis=0)
    ends = bounds[1:]
    return (
        cum_s[ends] - cum_s[starts],
        np.broadcast_to(cum_w[ends] - cum_w[starts], variance.shape),
        variance,
    )


def padded_cumsum(values: np.ndarray) -> np.ndarray:
    """Cumulative sum along axis 0 with a leading row of zeros."""
    out = np.empty((values.shape[0] + 1, values.shape[1]), dtype=np.float64)
    out[0] = 0
    np.cumsum(values, axis=0, out=out[1:])
    return out


def azimuthal_sums(
    csr: sp.csr_matrix,
    csc: sp.csc_matrix,
    norm: np.ndarray,
    block: np.ndarray,
    bad: tuple[np.ndarray, np.ndarray] | None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Signal, normalization and pyFAI's one-pass "azimuthal" variance per bin and frame.

    pyFAI's Cython engine walks the valid pixels of each row in matrix order::

        Ω_k = Ω_{k-1} + w_k,  S_k = S_{k-1} + c_k s_k,  b_k = s_k / norm_k,  w_k = c_k norm_k
        V  += w_k² (S_{k-1}/Ω_{k-1} − b_k)(S_k/Ω_k − b_k)        (from the second pixel on)

    Every term depends only on prefix sums, so it is computed here for all entries and
    frames at once with cumulative sums, row block by row block (:func:`online_variance`).
    The row blocks (:func:`row_chunks`) depend on the matrix only and the frames are
    independent columns: a frame's results are the same bits whatever the other frames of
    the call, its place among them and ``AZIMUTHAL_ELEMENTS``.

    Parameters
    ----------
    csr, csc : scipy.sparse matrix, shape (n_bins, n_pix)
        The integration matrix in both layouts; the entries of each CSR row in pyFAI's order.
    norm : ndarray, shape (n_pix,)
        Per-pixel normalization (0 for statically invalid pixels).
    block : ndarray, shape (n_pix, nf), float32
        Pre-processed signal of the block, pixel-major (0 at invalid pixels).
    bad : (ndarray, ndarray) or None
        Pixels invalid in some frames and their (k, nf) masks (:meth:`BadPixels.result`).

    Returns
    -------
    signal, normalization, variance : ndarray, shape (n_bins, nf), float64
    """
    nf = block.shape[1]
    n_rows = csr.shape[0]
    indptr = csr.indptr.astype(np.int64)
    norm64 = norm.astype(np.float64)
    invalid = None
    dirty = np.zeros(n_rows, dtype=bool)  # rows with a pixel invalid in some frame
    if bad is not None:
        invalid = np.zeros(block.shape, dtype=bool)
        invalid[bad[0]] = bad[1]
        dirty[csc[:, bad[0]].indices] = True
    signal = np.zeros((n_rows, nf))
    weight = np.zeros((n_rows, nf))
    variance = np.zeros((n_rows, nf))
    chunks = row_chunks(indptr, AZIMUTHAL_ROW_ENTRIES)
    per_pass = max(1, AZIMUTHAL_ELEMENTS // AZIMUTHAL_ROW_ENTRIES)  # frames through a chunk
    for f0 in range(0, nf, per_pass):
        cols = slice(f0, min(nf, f0 + per_pass))
        for r0, r1 in chunks:
            e0, e1 = int(indptr[r0]), int(indptr[r1])
            rows = slice(r0, r1)
            signal[rows, cols], weight[rows, cols], variance[rows, cols] = online_variance(
                block[:, cols],
                # else one weight for all frames (the same bits: the mask multiplies by 1)
                invalid[:, cols] if invalid is not None and dirty[rows].any() else None,
                norm64,
                csr.data[e0:e1].astype(np.float64),
                csr.indices[e0:e1],
                indptr[r0 : r1 + 1] - e0,
            )
    return signal, weight, variance


def row_chunks(indptr: np.ndarray, entries: int) -> list[tuple[int, int]]:
    """Consecutive row ranges ``(r0, r1)`` of a CSR matrix with about ``entries`` entries each.

    A range ends at the last row that keeps it within ``entries`` (at least one row); rows
    without entries between chunks are left out (their sums stay 0).
    """
    n_rows = indptr.size - 1
    out = []
    r0 = 0
    while r0 < n_rows:
        r1 = int(np.searchsorted(indptr, indptr[r0] + entries, side="right")) - 1
        r1 = min(n_rows, max(r0 + 1, r1))
        if indptr[r1] > indptr[r0]:
            out.append((r0, r1))
        r0 = r1
    return out
