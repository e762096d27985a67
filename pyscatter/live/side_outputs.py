"""Per-frame side outputs of a watch: one text file per position as soon as it is integrated.

What beamline users of image-queue systems expect beside the HDF5 file: ``<name>.dat`` with
three columns x, I, σ (σ NaN without an error model) under a ``#`` header naming the position
and the units, or ``<name>.chi`` in Fit2D's format (:func:`pyscatter.io.export.chi_text`, the
same text the ``chi`` export writes). Files are named by the position index, zero-padded
(``frame_000012.dat``), and written to a temporary name then renamed, so a program watching the
folder never reads half a file.
"""

from __future__ import annotations

import os
from pathlib import Path

import h5py
import numpy as np

from pyscatter.io.export import chi_label, chi_text
from pyscatter.io.usid import dims_of

__all__ = ["SIDE_FORMATS", "write_frame"]

#: Side-output formats: ``dat`` (x, I, σ) and ``chi`` (Fit2D).
SIDE_FORMATS = ("dat", "chi")


def write_frame(group: h5py.Group, index: int, folder: Path, fmt: str = "dat") -> Path:
    """Write position ``index`` of a 1-D integration results group into ``folder``.

    Parameters
    ----------
    group : h5py.Group
        An ``AzimuthalIntegration`` results group (1-D: ``Intensity`` over one radial dim).
    index : int
        The position (flat, scan order).
    folder : Path
        Created if needed.
    fmt : {"dat", "chi"}

    Returns
    -------
    Path
        The file written.
    """
    intensity = group["Intensity"]
    (dim,) = dims_of(intensity, "Spectroscopic")
    x = np.asarray(dim.values, dtype=np.float64)
    y = np.asarray(intensity[index], dtype=np.float64)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"frame_{index:06d}.{fmt}"
    if fmt == "chi":
        text = chi_text(path.name, chi_label(dim.name, dim.units), x, y)
    else:
        sigma = (
            np.asarray(group["Intensity_Sigma"][index], dtype=np.float64)
            if "Intensity_Sigma" in group
            else np.full_like(y, np.nan)
        )
        head = [
            f"# {group.file.filename}:{group.name} position {index}",
            f"# {dim.name}[{dim.units}] I sigma",
        ]
        rows = [f"{a:.9e} {b:.9e} {c:.9e}" for a, b, c in zip(x, y, sigma, strict=True)]
        text = "\n".join(head + rows) + "\n"
    tmp = folder / f".{path.name}.tmp"
    tmp.write_text(text)
    os.replace(tmp, path)
    return path
