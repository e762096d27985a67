"""Worker side of :class:`~pyscatter.processes.peaks.PeakFit` (no pyUSID).

``build`` reads the radial axis once; the block function reads a block of spectra (and their
sigma), fits every window for the whole block in one batched call per window
(:func:`pyscatter.kernels.peaks.fit_peaks`) and derives d-spacings and Scherrer sizes
(:func:`pyscatter.kernels.peaks.derived_quantities`).
"""

from __future__ import annotations

from typing import Any

import h5py
import hdf5plugin  # noqa: F401  (filters of compressed sources, e.g. bitshuffle Raw_Data)
import numpy as np

from pyscatter.io.integrity import read_rows
from pyscatter.io.usid import dims_of
from pyscatter.kernels.peaks import PeakResult, derived_quantities, fit_peaks

#: Output name -> PeakResult field
FIELDS = {
    "position": "position",
    "position_sigma": "position_sigma",
    "fwhm": "fwhm",
    "fwhm_sigma": "fwhm_sigma",
    "area": "area",
    "area_sigma": "area_sigma",
    "height": "height",
    "eta": "eta",
    "R2": "r2",
    "status": "status",
}


def derived(params: dict[str, Any], res: PeakResult) -> dict[str, np.ndarray]:
    """``d_spacing`` and (with an instrument width) ``crystallite_size`` from the fits
    (:func:`pyscatter.kernels.peaks.derived_quantities` with the spec's parameters)."""
    return derived_quantities(
        res.position,
        res.fwhm,
        axis_kind=params["axis_kind"],
        wavelength=params["wavelength"],
        instrument_fwhm=params["instrument_fwhm"],
        k=params["scherrer_k"],
    )


def make_function(params: dict[str, Any], axis: np.ndarray):
    """The block function: read spectra (and sigma), fit all windows, derive."""
    source = params["source"]
    sigma_path = params["sigma_dataset"]
    poisson = params["sigma"] == "poisson"
    windows = [tuple(w) for w in params["windows"]]

    def compute(h5file: h5py.File, start: int, stop: int) -> dict[str, np.ndarray]:
        y, sigma = read_spectra(h5file, source, sigma_path, poisson, start, stop)
        res = fit_peaks(
            axis,
            y,
            sigma,
            windows=windows,
            shape=params["shape"],
            background=params["background"],
            max_iter=params["max_iter"],
        )
        out = {name: getattr(res, field) for name, field in FIELDS.items()}
        out.update(derived(params, res))
        return out

    return compute


def build(spec, h5: h5py.File):
    """Block function of a peak-fit spec: the radial axis is read once from the file."""
    params = spec.params
    return make_function(params, radial_axis(h5[params["source"]]))


def radial_axis(dset: h5py.Dataset) -> np.ndarray:
    """The values of the single spectroscopic dim of ``dset`` (e.g. q)."""
    dims = dims_of(dset, "Spectroscopic")
    return dims[0].values


def read_spectra(
    h5file: h5py.File, source: str, sigma_path: str | None, poisson: bool, start: int, stop: int
) -> tuple[np.ndarray, np.ndarray | None]:
    """Rows ``start:stop`` of a 1-D results dataset (verified) as float64, and their σ: the
    recorded ``sigma_path`` rows, else √max(I, 1) for Poisson counts, else None."""
    y = np.asarray(read_rows(h5file[source], start, stop), dtype=np.float64)
    if sigma_path is not None:
        return y, np.asarray(h5file[sigma_path][start:stop], dtype=np.float64)
    return y, (np.sqrt(np.maximum(y, 1.0)) if poisson else None)
