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

__all__ = ["SIDE_FORMATS", "SideWriter"]

#: Side-output formats: ``dat`` (x, I, σ) and ``chi`` (Fit2D).
SIDE_FORMATS = ("dat", "chi")


class SideWriter:
    """Writes positions of a 1-D integration results group into ``folder``, one file each.

    Parameters
    ----------
    group : h5py.Group
        An ``AzimuthalIntegration`` results group (1-D: ``Intensity`` over one radial dim); its
        radial axis is read once, here.
    folder : Path
        Created if needed.
    fmt : {"dat", "chi"}
    """

    def __init__(self, group: h5py.Group, folder: Path, fmt: str = "dat") -> None:
        self.group, self.folder, self.fmt = group, Path(folder), fmt
        (self.dim,) = dims_of(group["Intensity"], "Spectroscopic")
        self.x = np.asarray(self.dim.values, dtype=np.float64)
        self.folder.mkdir(parents=True, exist_ok=True)

    def write(self, index: int) -> Path:
        """Write position ``index`` (flat, scan order); returns the file written."""
        group, dim = self.group, self.dim
        y = np.asarray(group["Intensity"][index], dtype=np.float64)
        path = self.folder / f"frame_{index:06d}.{self.fmt}"
        if self.fmt == "chi":
            text = chi_text(path.name, chi_label(dim.name, dim.units), self.x, y)
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
            rows = [f"{a:.9e} {b:.9e} {c:.9e}" for a, b, c in zip(self.x, y, sigma, strict=True)]
            text = "\n".join(head + rows) + "\n"
        tmp = self.folder / f".{path.name}.tmp"
        tmp.write_text(text)
        os.replace(tmp, path)
        return path
