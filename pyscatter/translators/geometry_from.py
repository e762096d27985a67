"""Where the translators find the columns of ``geometry_from``: a positions CSV, image headers,
SPEC columns and motors.

``geometry_from={"energy": "Energy"}`` (command line ``--geometry-from energy=Energy:keV``) takes a
geometry parameter of every position from a column or motor; the conversion to pyFAI keys is
:func:`pyscatter.io.geometry_series.apply_geometry_from`, and each function here is the
``lookup`` one translator hands it: the column's value at every frame, in source order, and
where it comes from.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from pyscatter.errors import InputError

__all__ = ["images_lookup", "spec_lookup"]

Lookup = Callable[[str], tuple[np.ndarray, str]]


def images_lookup(
    positions: str | os.PathLike | None,
    headers: Callable[[], Sequence[Mapping[str, Any]]] | None,
    files: Sequence[Path],
) -> Lookup:
    """A column of the positions CSV, else a motor of the image headers (``motor_mne`` /
    ``motor_pos``).

    ``headers`` reads every image's header (called only when a motor is needed); None for
    in-memory frames.
    """
    from pyscatter.translators.positions import motor_positions, read_positions_csv

    def lookup(column: str) -> tuple[np.ndarray, str]:
        names: list[str] = []
        if positions is not None:
            labels, values = read_positions_csv(positions)
            names = [name for name, _ in labels]
            if column in names:
                return values[:, names.index(column)], f"column {column} of {Path(positions).name}"
        if headers is None or not files:
            shown = (
                f"the positions file's columns are {', '.join(names)}"
                if names
                else ("give positions=CSV with that column")
            )
            raise InputError(f"geometry_from: no column {column!r}; {shown}")
        _, values = motor_positions(headers(), [column], files)
        return values[:, 0], f"motor {column} of each image header"

    return lookup


def spec_lookup(scan: Any) -> Lookup:
    """A column of the scan (``#L``), else a motor of its ``#P`` lines (one value for the scan:
    every point gets it)."""

    def lookup(column: str) -> tuple[np.ndarray, str]:
        if column in scan.labels:
            return scan.column(column), f"column {column} of SPEC scan {scan.key}"
        motors = getattr(scan, "motors", {}) or {}
        if column in motors:
            value = np.full(scan.n_points, float(motors[column]))
            return value, f"motor {column} (#P) of SPEC scan {scan.key}"
        raise InputError(
            f"{scan.where}: geometry_from: no column or motor {column!r}; its columns are "
            f"{', '.join(scan.labels)}" + (f"; its motors {', '.join(motors)}" if motors else "")
        )

    return lookup
