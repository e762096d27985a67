"""Worker side of :mod:`pyscatter.processes.xrf` (no pyUSID).

``build_roi`` and ``build_fit`` read the energy axis once; their block functions read a block of
spectra and its dead-time and monitor values, and make one kernel call on the whole block
(:func:`pyscatter.kernels.xrf_roi.roi_sums`, :func:`pyscatter.kernels.xrf.fast_linear_fit`).
"""

from __future__ import annotations

from typing import Any

import h5py
import hdf5plugin  # noqa: F401  (filters of compressed sources)
import numpy as np

from pyscatter.io.integrity import read_rows
from pyscatter.io.usid import dims_of

__all__ = ["block_scale", "build_fit", "build_roi", "worker_energy"]


def worker_energy(h5: h5py.File, params: dict[str, Any]) -> np.ndarray:
    """The channel energies (keV) of the source, as the process resolved them."""
    axis = dims_of(h5[params["source"]], "Spectroscopic")[0].values.astype(np.float64)
    calibration = params.get("mca_calibration")
    if calibration is not None:
        a, b, c = calibration
        return a + b * axis + c * axis**2
    return axis / 1000.0 if params["axis_units"] == "eV" else axis


def block_scale(h5: h5py.File, params: dict[str, Any], start: int, stop: int) -> np.ndarray | None:
    """Dead-time factor × monitor normalisation of positions ``[start, stop)`` (None: 1)."""
    from pyscatter.kernels.xrf import dead_time_factor

    scale = None
    dead = params["dead_time"]
    if dead["kind"] != "none":
        values = {k: h5[p][start:stop].astype(np.float64) for k, p in dead["datasets"].items()}
        if dead["kind"] == "percent":
            scale = dead_time_factor(percent=values["percent"])
        elif dead["kind"] == "factor":
            scale = dead_time_factor(factor=values["factor"])
        else:
            scale = dead_time_factor(live_time=values["live_time"], real_time=values["real_time"])
        scale = np.asarray(scale, dtype=np.float64)
    norm = params["normalize"]
    if norm["kind"] == "monitor":
        monitor = h5[norm["dataset"]][start:stop].astype(np.float64)
        with np.errstate(divide="ignore", invalid="ignore"):
            factor = np.where(monitor > 0, norm["reference"] / monitor, np.nan)
        scale = factor if scale is None else scale * factor
    return scale


def build_roi(spec, h5: h5py.File):
    """Block function of an XrfRoi spec: regions and their weights computed once."""
    from pyscatter.kernels.xrf_roi import RoiWindow, roi_plan, roi_sums

    params = spec.params
    source = params["source"]
    energy = worker_energy(h5, params)
    windows = [
        RoiWindow(n, lo, hi, tuple(left) if left else None, tuple(right) if right else None)
        for n, lo, hi, left, right in params["windows"]
    ]
    plan = roi_plan(energy, windows)

    def compute(h5file: h5py.File, start: int, stop: int) -> dict[str, np.ndarray]:
        spectra = read_rows(h5file[source], start, stop)
        scale = block_scale(h5file, params, start, stop)
        res = roi_sums(spectra, energy, windows, scale=scale, plan=plan)
        return {"net": res.net, "net_sigma": res.sigma, "gross": res.gross,
                "background": res.background}  # fmt: skip

    return compute


def groups_and_response(params: dict[str, Any]):
    """The line groups and detector response recorded in the parameters."""
    from pyscatter.kernels.xrf_lines import DetectorResponse, line_groups

    lo, hi = params["energy_range_keV"]
    groups = line_groups(
        params["elements"],
        excitation_keV=params["excitation_keV"],
        families=params["families"],
        energy_range_keV=(lo, hi),
    )
    return groups, DetectorResponse(**params["response"])


def build_fit(spec, h5: h5py.File):
    """Block function of an XrfFit spec: line groups and response built once."""
    from pyscatter.kernels.xrf import fast_linear_fit

    params = spec.params
    source = params["source"]
    energy = worker_energy(h5, params)
    groups, response = groups_and_response(params)
    fit_range = tuple(params["fit_range_keV"])
    store = params["store_background"]

    def compute(h5file: h5py.File, start: int, stop: int) -> dict[str, np.ndarray]:
        spectra = read_rows(h5file[source], start, stop)
        res = fast_linear_fit(
            spectra,
            energy,
            groups,
            response,
            snip_width=params["snip_width"],
            fit_range_keV=fit_range,
            snip_iterations=params["snip_iterations"],
            smooth_width=params.get("smooth_width", 0),
            keep_background=store,
        )
        scale = block_scale(h5file, params, start, stop)
        f = np.ones(stop - start) if scale is None else scale
        out = {
            "area": res.areas * f[:, None],
            "area_sigma": res.sigma * f[:, None],
            "chi2_reduced": np.asarray(res.chi2_reduced, dtype=np.float64).reshape(-1, 1),
        }
        if store and res.background is not None:
            out["fit_background"] = (res.background * f[:, None]).astype(np.float32)
        return out

    return compute
