"""Worker side of :class:`~pyscatter.processes.profiles.AzimuthalProfiles` and the sectors
(no pyUSID): reads the masks, dark, flat and frames, and calls the kernels of
:mod:`pyscatter.kernels.rings` (the ring matrices, their guard bins, the sub-bin combination
and the chi-bin correlation), re-exported here under their historical names.

What the kernels take from pyFAI (the stacked matrix, the sub-bin and chi centres, the unit,
the per-pixel corrections: :func:`~pyscatter.kernels.rings.ring_inputs`) and the q range of
the detector's unmasked pixels are remembered in the matrix cache
(:func:`pyscatter.processes.setup_cache.remembered`), keyed by the recorded geometry, frame
shape, mask and the parameters that shape them: a command, a worker or a resumed run whose
rings were integrated before builds its integrator without importing pyFAI (about 1.4 s),
and gives the same bits (the same arrays; the cold run builds from them too).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

import h5py
import numpy as np
import scipy.sparse as sp

from pyscatter.errors import InputError
from pyscatter.geometry import integrator_from_config
from pyscatter.kernels.csr import csr_from_arrays
from pyscatter.kernels.integrate import BatchIntegrator
from pyscatter.kernels.rings import (  # noqa: F401  (re-exported: their historical home)
    RingProfiles,
    chi_correlation,
    combine_sub_bins,
    coverage_counts,
    csr_method,
    expected_normalization,
    guarded_matrix,
    pixel_extent,
    pyfai_engine,
    pyfai_matrix,
    recorded_shape,
    ring_inputs,
    ring_inputs_check,
    ring_matrix,
    shared_pixel_matrices,
    stacked_integrator,
)
from pyscatter.processes import setup_cache
from pyscatter.processes.detector import read_arrays, read_mask  # noqa: F401  (read_mask re-exported)
from pyscatter.processes.execution import FrameBlocks
from pyscatter.processes.integration_worker import frame_reader

log = logging.getLogger(__name__)


def recorded_profile_parameters(profiles: h5py.Dataset) -> dict[str, Any] | None:
    """The parameters of the AzimuthalProfiles run that wrote ``profiles``, when they hold the
    geometry and rings its ring matrix is rebuilt from; else None (e.g. profiles made by hand)."""
    group = profiles.parent
    if group.attrs.get("process") != "AzimuthalProfiles" or "parameters" not in group.attrs:
        return None
    params = json.loads(group.attrs["parameters"])
    return params if "geometry" in params and "rings" in params else None


def profile_correlation(profiles: h5py.Dataset) -> list[sp.csr_matrix] | None:
    """:func:`chi_correlation` of the rings of an AzimuthalProfiles ``Intensity`` dataset.

    The ring matrix is rebuilt from the geometry, rings, binning and masks recorded in the
    results group (as the profiles were integrated). None when the dataset was not written by
    AzimuthalProfiles with those parameters (e.g. profiles made by hand).
    """
    params = recorded_profile_parameters(profiles)
    if params is None:
        return None
    group = profiles.parent
    masks = [params["mask_file_dataset"]] if params.get("mask_file_dataset") else []
    if "Mask" in group:
        masks.append(group["Mask"].name)
    shape = recorded_shape(params)
    mask = read_mask(profiles.file, [m for m in masks if m in profiles.file], shape)
    if {"correct_solid_angle", "polarization_factor"} <= set(params):  # as recorded today
        inputs = cached_ring_inputs(None, params, mask)  # no pyFAI when cached
        matrix, sub_radial = csr_from_arrays(inputs), inputs["sub_radial"]
        chi = inputs["azimuthal"]
    else:
        ai = integrator_from_config(params["geometry"])
        matrix, sub_radial, chi, _ = ring_matrix(ai, params, mask)
    return chi_correlation(matrix, len(params["rings"]), sub_radial.shape[1], chi.size)


def matrix_parts(params: dict[str, Any], mask: np.ndarray | None) -> dict[str, Any]:
    """What a stacked integrator's matrix and per-pixel inputs depend on, of the recorded
    ``params`` and the ``mask`` (the matrix cache key's parts shared by rings and sectors;
    pyFAI's version is added by :func:`~pyscatter.processes.setup_cache.remembered`)."""
    return {
        "geometry": params["geometry"],
        "frame_shape": [int(n) for n in params["frame_shape"]],
        "method": [str(m) for m in params["method"]],
        "unit": str(params["unit"]),
        "correct_solid_angle": bool(params["correct_solid_angle"]),
        "polarization_factor": params["polarization_factor"],
        "mask": None if mask is None else (np.asarray(mask) != 0),
    }


def integrator_maker(ai: Any, params: dict[str, Any]) -> Callable[[], Any]:
    """``ai``, or (when None) a new integrator of the recorded geometry, made when called."""
    return (lambda: ai) if ai is not None else (lambda: integrator_from_config(params["geometry"]))


def cached_ring_inputs(
    ai: Any, params: dict[str, Any], mask: np.ndarray | None
) -> dict[str, np.ndarray]:
    """:func:`~pyscatter.kernels.rings.ring_inputs` of the recorded ``params`` and ``mask``,
    from the matrix cache when it holds them (no pyFAI), else computed with ``ai`` (a pyFAI
    integrator of ``params["geometry"]``, or None to make one) and stored."""
    make = integrator_maker(ai, params)
    parts = dict(
        matrix_parts(params, mask),
        npt_azim=int(params["npt_azim"]),
        n_radial=int(params.get("n_radial", 1)),
        rings=[[float(r["q_min"]), float(r["q_max"])] for r in params["rings"]],
    )
    return setup_cache.remembered(
        "ring-inputs",
        parts,
        lambda: ring_inputs(make(), params, mask),
        ring_inputs_check(params),
    )


def detector_extent(
    params: dict[str, Any], mask: np.ndarray | None, integrator: Callable[[], Any]
) -> tuple[float, float]:
    """(min, max) of the unmasked pixel centres' radial position in ``params["unit"]``
    (:func:`~pyscatter.kernels.rings.pixel_extent`), from the matrix cache when it holds it,
    else with ``integrator()`` (pyFAI's integrator of the recorded geometry) and stored.

    Raises
    ------
    InputError
        When the mask leaves no pixel (never stored).
    """
    shape = recorded_shape(params)

    def build() -> dict[str, np.ndarray]:
        extent = pixel_extent(integrator(), shape, params["unit"], mask)
        if extent is None:
            raise InputError("the mask leaves no detector pixel: no ring can be integrated")
        return {"extent": np.array(extent, dtype=np.float64)}

    parts = matrix_parts(params, mask)
    parts = {k: parts[k] for k in ("geometry", "frame_shape", "unit", "mask")}
    arrays = setup_cache.remembered(
        "pixel-extent", parts, build, lambda a: a["extent"].shape == (2,)
    )
    return float(arrays["extent"][0]), float(arrays["extent"][1])


def ring_integrator(
    ai: Any,
    params: dict[str, Any],
    mask: np.ndarray | None,
    *,
    dark: np.ndarray | None = None,
    flat: np.ndarray | None = None,
) -> RingProfiles:
    """The profiles of all rings: radial axis = rings, azimuthal axis = chi.

    ``params`` as recorded by AzimuthalProfiles (frame_shape, method, rings, npt_azim, unit,
    dummy, delta_dummy, correct_solid_angle, polarization_factor, error_model, n_radial,
    min_coverage); without ``n_radial`` and ``min_coverage`` (hand-made parameters) one bin
    per ring and no coverage test, as earlier versions. ``dark`` and ``flat``: images
    (default: the detector's). Logs a warning for each ring covered in all its sub-bins at
    fewer than half the chi bins it reaches.
    """
    return warn_coverage(RingProfiles(ai, params, mask, dark=dark, flat=flat))


def cached_ring_integrator(
    ai: Any,
    params: dict[str, Any],
    mask: np.ndarray | None,
    *,
    dark: np.ndarray | None = None,
    flat: np.ndarray | None = None,
) -> RingProfiles:
    """:func:`ring_integrator` of the recorded ``params`` (with their ``geometry``), built from
    :func:`cached_ring_inputs`: without pyFAI when the matrix cache holds them. ``ai``: a pyFAI
    integrator of ``params["geometry"]`` to use if they are not cached, or None."""
    inputs = cached_ring_inputs(ai, params, mask)
    return warn_coverage(RingProfiles.from_inputs(inputs, params, mask, dark=dark, flat=flat))


def warn_coverage(rings: RingProfiles) -> RingProfiles:
    """Log a warning for each ring covered in all its sub-bins at fewer than half the chi bins
    it reaches; returns ``rings``."""
    counts = zip(rings.radial, rings.complete_bins, rings.reached_bins, strict=True)
    for q, n_complete, n_reached in counts:
        if n_complete < 0.5 * n_reached:
            log.warning(
                "ring at q = %g %s: only %d of the %d chi bins it reaches are covered in all "
                "%d radial sub-bins (the others are NaN); use fewer sub-bins (n_radial), "
                "bbox pixel splitting, or a ring inside the detector's q range",
                q,
                rings.unit,
                n_complete,
                n_reached,
                rings.sub_radial.shape[1],
            )
    return rings


def block_function(
    integrator: BatchIntegrator | RingProfiles, params: dict[str, Any], *, radial_slow: bool
):
    """Read positions [start, stop) into a reused buffer and integrate them in one call
    (a :class:`~pyscatter.processes.execution.FrameBlocks`).

    The kernel gives (n, n_azimuthal, n_radial); the outputs ``Intensity`` and
    ``Intensity_Sigma`` are (n, n_radial * n_azimuthal) with the radial axis slow
    (``radial_slow``, e.g. ring then chi) or (n, n_azimuthal * n_radial) (sector then q).
    Both are divided by the normalisation of each position (monitor × transmission ×
    exposure time of ``params``, as AzimuthalIntegration and pyFAI's
    ``normalization_factor``): every output is linear in the frame.
    """

    def flat(values: np.ndarray, n: int) -> np.ndarray:
        return (values.transpose(0, 2, 1) if radial_slow else values).reshape(n, -1)

    def process(frames: np.ndarray, factor: np.ndarray | None) -> dict[str, np.ndarray]:
        n = frames.shape[0]
        res = integrator.integrate(frames)
        out = {"Intensity": flat(res.intensity, n)}
        if res.sigma is not None:
            out["Intensity_Sigma"] = flat(res.sigma, n)
        if factor is not None:
            for key in out:
                out[key] = out[key] / factor[:, None]
        return out

    compute = FrameBlocks(frame_reader(params), process)
    compute.radial = integrator.radial  # type: ignore[attr-defined]
    compute.azimuthal = integrator.azimuthal  # type: ignore[attr-defined]
    return compute


def matrix_function(
    make_integrator: Callable[..., Any],
    params: dict[str, Any],
    mask: np.ndarray | None,
    ai: Any = None,
    *,
    dark: np.ndarray | None = None,
    flat: np.ndarray | None = None,
    radial_slow: bool,
):
    """The block function of ``make_integrator(ai, params, mask, dark=, flat=)``
    (:func:`cached_ring_integrator`,
    :func:`~pyscatter.processes.sectors_worker.cached_sector_integrator`).

    ``ai``: a pyFAI integrator of the recorded geometry to reuse, or None (``make_integrator``
    makes one if it needs it); ``dark``, ``flat``: images (default: the detector's);
    ``radial_slow`` as in :func:`block_function`. The function carries ``.n_bins``, the rows
    of the matrix.
    """
    integrator = make_integrator(ai, params, mask, dark=dark, flat=flat)
    compute = block_function(integrator, params, radial_slow=radial_slow)
    compute.n_bins = integrator.n_bins  # type: ignore[attr-defined]  # rows of the matrix
    return compute


def make_function(
    params: dict[str, Any],
    mask: np.ndarray | None,
    ai: Any = None,
    *,
    dark: np.ndarray | None = None,
    flat: np.ndarray | None = None,
):
    """The block function of the profiles of ``params`` with the combined ``mask``
    (:func:`matrix_function` of :func:`cached_ring_integrator`)."""
    return matrix_function(
        cached_ring_integrator, params, mask, ai, dark=dark, flat=flat, radial_slow=True
    )


def build(spec, h5: h5py.File):
    """Block function of an AzimuthalProfiles spec; ``h5`` gives the masks, dark and flat."""
    return make_function(spec.params, **read_arrays(h5, spec.params))
