"""Input checks shared by the kernels and the geometry (errors are :class:`InputError`)."""

from __future__ import annotations

from typing import Any

from pyscatter.errors import InputError

__all__ = ["check_frame_shape"]


def check_frame_shape(shape: Any) -> tuple[int, int]:
    """A detector frame shape as two positive ints ``(n_row, n_col)``.

    Raises
    ------
    InputError
        If ``shape`` is not two positive sizes.

    Examples
    --------
    >>> check_frame_shape([512.0, 256])
    (512, 256)
    """
    try:
        rows, cols = (int(s) for s in shape)
    except (TypeError, ValueError):
        raise InputError(f"shape must be (n_row, n_col); got {shape!r}") from None
    if rows < 1 or cols < 1:
        raise InputError(f"shape must be two positive sizes (n_row, n_col); got {shape!r}")
    return rows, cols
