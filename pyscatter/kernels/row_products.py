"""Products over many rows at once whose result for a row does not depend on the other rows.

A row's result must be the same bits whether it is computed alone or in a block of any size, in
any order (a live session fits one position a block, an offline run ~100). BLAS does not promise
that: a 2-D ``(n, m) @ (m, p)`` product rounds a row differently with ``n`` and with its place
in the block (micro-tile edges, gemv for one row), and its threading depends on the sizes. The
products here use no BLAS but numpy's own einsum kernels (``optimize=False``), laid out so that
the innermost loop runs along one row: a dot product over the contiguous bins of a row for each
output element, or a row of bins scaled and added for each term; the tiny products of parameter
matrices add their terms one by one in a fixed order. ``tests/kernels/test_block_independence.py``
checks the fits built on them row by row against whole blocks, bit for bit.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

__all__ = ["bin_dot", "combine", "gram", "small_matmul"]

FloatArray = NDArray[np.float64]


def _contiguous_rows(a: FloatArray) -> FloatArray:
    """``a`` itself when its last axis is contiguous (a view of rows), else a C copy."""
    return a if a.strides[-1] == a.itemsize else np.ascontiguousarray(a)


def bin_dot(subscripts: str, a: FloatArray, b: FloatArray) -> FloatArray:
    """``np.einsum(subscripts, a, b)`` summed over the bins, the last axis of both; no BLAS.

    With the bins contiguous, every output element is one dot product over them (numpy's
    einsum kernel, vector lanes then their sum: the order depends on the number of bins only),
    whatever the other rows and the layout of the inputs.
    """
    return np.einsum(subscripts, _contiguous_rows(a), _contiguous_rows(b), optimize=False)


def gram(xt: FloatArray, xw: FloatArray) -> FloatArray:
    """``X^T W X`` (n, k, k), exactly symmetric, from ``xt`` = X^T and ``xw`` = X^T W, both
    (n, k, m) with the bins contiguous (see :func:`bin_dot`)."""
    n, k, _ = xt.shape
    out = np.empty((n, k, k))
    for i in range(k):
        row = bin_dot("nm,njm->nj", xw[:, i], xt[:, i:])
        out[:, i, i:] = row
        out[:, i:, i] = row
    return out


def small_matmul(a: FloatArray, b: FloatArray) -> FloatArray:
    """``a @ b`` for stacks of small matrices, the inner index summed in a fixed order."""
    out = a[..., :, 0, None] * b[..., None, 0, :]
    for i in range(1, a.shape[-1]):
        out = out + a[..., :, i, None] * b[..., None, i, :]
    return out


def combine(coef: FloatArray, basis: FloatArray) -> FloatArray:
    """``coef @ basis.T``: curves ``(n, m)`` from coefficients ``(n, k)`` of columns ``(m, k)``.

    Each output row is built along its bins, ``sum_i coef[:, i] * basis[:, i]`` term by term
    in the order of ``i`` (numpy's einsum with the bins innermost, no BLAS).
    """
    return np.einsum(
        "nk,km->nm", np.ascontiguousarray(coef), np.ascontiguousarray(basis.T), optimize=False
    )
