"""Worker side of :class:`~pyscatter.processes.anisotropy.Anisotropy` (no pyUSID).

``build`` reads the cake's axes and the polarization direction of every position once; the block
function reads a block of cakes and their σ and calls
:func:`pyscatter.kernels.anisotropy.anisotropy` once on the whole block.
"""

from __future__ import annotations

from typing import Any

import h5py
import hdf5plugin  # noqa: F401  (filters of compressed sources)
import numpy as np

from pyscatter.errors import InputError
from pyscatter.io.integrity import read_rows
from pyscatter.io.usid import dims_of
from pyscatter.kernels.anisotropy import anisotropy

#: Output name -> AnisotropyResult field
FIELDS = {
    "I_parallel": "parallel",
    "I_parallel_sigma": "parallel_sigma",
    "I_perpendicular": "perpendicular",
    "I_perpendicular_sigma": "perpendicular_sigma",
    "A": "a",
    "A_sigma": "a_sigma",
}


def polarization_of(h5: h5py.File, params: dict[str, Any], n_positions: int) -> np.ndarray:
    """χ_pol of every position (degrees): the recorded number, or the recorded dataset, checked
    against its recorded SHA-256 (a resumed run must not mix two polarization records)."""
    if params["polarization_dataset"] is None:
        return np.full(n_positions, float(params["polarization"]))
    from pyscatter.processes.anisotropy import polarization_values

    values, digest = polarization_values(h5[params["polarization_dataset"]], n_positions)
    if digest != params["polarization_sha256"]:
        raise InputError(
            f"{h5.filename}: the polarization dataset {params['polarization_dataset']} changed "
            "since this anisotropy run started; start it again (--override)"
        )
    return values


def make_function(params: dict[str, Any], chi: np.ndarray, radial: np.ndarray, pol: np.ndarray):
    """The block function: read cakes and σ, one kernel call per block."""
    source, sigma_path = params["source"], params["sigma_dataset"]
    width = float(params["sector_width"])
    span = params["q_range"]
    keep = np.ones(radial.size, dtype=bool)
    if span is not None:
        keep = (radial >= span[0]) & (radial <= span[1])
    shape = (chi.size, radial.size)

    def compute(h5file: h5py.File, start: int, stop: int) -> dict[str, np.ndarray]:
        n = stop - start
        cake = read_rows(h5file[source], start, stop).reshape(n, *shape)[:, :, keep]
        sigma = np.asarray(h5file[sigma_path][start:stop]).reshape(n, *shape)[:, :, keep]
        res = anisotropy(cake, sigma, chi, pol[start:stop], width)
        return {name: getattr(res, field) for name, field in FIELDS.items()}

    return compute


def build(spec, h5: h5py.File):
    """Block function of an anisotropy spec: axes and polarization read once from the file."""
    params = spec.params
    dset = h5[params["source"]]
    chi, radial = (d.values for d in dims_of(dset, "Spectroscopic"))
    pol = polarization_of(h5, params, dset.shape[0])
    return make_function(params, chi, radial, pol)
