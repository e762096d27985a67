"""Worker side of :class:`~pyscatter.processes.integration.AzimuthalIntegration` (no pyUSID).

``build(spec)`` runs once per worker and spec: it makes the pyFAI geometry, reads the mask,
dark and flat from the file, and lets pyFAI build its sparse matrix once; the returned
:class:`~pyscatter.processes.execution.FrameBlocks` reads a block of frames into a reused
buffer and integrates the whole block in one call.
"""

from __future__ import annotations

from typing import Any

import h5py
import numpy as np

from pyscatter.geometry import integrator_from_config
from pyscatter.kernels.integrate import BatchIntegrator, integrate_reference
from pyscatter.processes.detector import read_arrays
from pyscatter.processes.execution import FrameBlocks, FrameReader


def integrator_options(params: dict[str, Any], arrays: dict[str, Any]) -> dict[str, Any]:
    """Keyword arguments of the integration kernels from the recorded parameters and the
    ``mask``, ``dark`` and ``flat`` arrays (:func:`pyscatter.processes.detector.read_arrays`)."""
    return {
        "npt": params["npt"],
        "unit": params["unit"],
        "npt_azim": params["npt_azim"],
        "method": tuple(params["method"]),
        "mask": arrays.get("mask"),
        "dummy": params["dummy"],
        "delta_dummy": params["delta_dummy"],
        "correct_solid_angle": params["correct_solid_angle"],
        "polarization_factor": params["polarization_factor"],
        "dark": arrays.get("dark"),
        "flat": arrays.get("flat"),
        "error_model": params["error_model"],
        "radial_range": params["radial_range"],
        "azimuth_range": params["azimuth_range"],
    }


def build(spec, h5: h5py.File):
    """Block function of an integration spec; ``h5`` gives the mask, dark and flat."""

    params = spec.params
    ai = integrator_from_config(params["geometry"])
    return make_function(ai, params, integrator_options(params, read_arrays(h5, params)))


def normalization(h5: h5py.File, params: dict[str, Any], start: int, stop: int):
    """Per-position normalization factors (monitor × transmission × exposure), float32, or None."""
    paths = params.get("normalization_datasets") or []
    constant = params.get("normalization_constant")
    if not paths and constant is None:
        return None
    factor = np.full(stop - start, 1.0 if constant is None else constant, dtype=np.float64)
    for path in paths:
        factor *= h5[path][start:stop].astype(np.float64)
    return factor.astype(np.float32)


def frame_reader(params: dict[str, Any]) -> FrameReader:
    """The I/O stage: a block of frames and its normalization factors."""

    def read_factor(h5file: h5py.File, start: int, stop: int) -> np.ndarray | None:
        return normalization(h5file, params, start, stop)

    return FrameReader(params["source"], tuple(params["frame_shape"]), read_factor)


def make_function(ai, params: dict[str, Any], options: dict[str, Any]) -> FrameBlocks:
    """The block function: read a block of frames (and its normalization), integrate it at once.

    The function carries the result axes as ``.radial`` and ``.azimuthal``.
    """
    shape = tuple(params["frame_shape"])
    axes: Any = None  # what gives the result axes
    if params["engine"] == "batched":
        engine = BatchIntegrator.from_pyfai(ai, shape, **options)
        integrate, axes = engine.integrate, engine
    else:

        def integrate(frames):
            return integrate_reference(ai, frames, **options)

    def process(frames: np.ndarray, factor: np.ndarray | None) -> dict[str, np.ndarray]:
        n = frames.shape[0]
        res = integrate(frames)
        out = {"Intensity": res.intensity.reshape(n, -1)}
        if res.sigma is not None:
            out["Intensity_Sigma"] = res.sigma.reshape(n, -1)
        if factor is not None:  # like pyFAI's normalization_factor: I / f, sigma / f
            for key in out:
                out[key] = out[key] / factor[:, None]
        return out

    compute = FrameBlocks(frame_reader(params), process)
    if axes is None:  # pyFAI's own axes, from one blank frame
        axes = integrate(np.zeros((1, *shape), dtype=np.float32))
    compute.radial = axes.radial  # type: ignore[attr-defined]
    compute.azimuthal = axes.azimuthal  # type: ignore[attr-defined]
    return compute
