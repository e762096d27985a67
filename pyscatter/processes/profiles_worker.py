"""Worker side of :class:`~pyscatter.processes.profiles.AzimuthalProfiles` and the sectors
(no pyUSID): reads the masks, dark, flat and frames, and calls the kernels of
:mod:`pyscatter.kernels.rings` (the ring matrices, their guard bins, the sub-bin combination
and the chi-bin correlation), re-exported here under their historical names.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

import h5py
import numpy as np
import scipy.sparse as sp

from pyscatter.geometry import integrator_from_config
from pyscatter.kernels.integrate import BatchIntegrator
from pyscatter.kernels.rings import (  # noqa: F401  (re-exported: their historical home)
    RingProfiles,
    chi_correlation,
    combine_sub_bins,
    coverage_counts,
    csr_method,
    expected_normalization,
    guarded_matrix,
    pyfai_engine,
    pyfai_matrix,
    recorded_shape,
    ring_matrix,
    shared_pixel_matrices,
    stacked_integrator,
)
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
    matrix, sub_radial, chi, _ = ring_matrix(
        integrator_from_config(params["geometry"]), params, mask
    )
    return chi_correlation(matrix, len(params["rings"]), sub_radial.shape[1], chi.size)


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
    rings = RingProfiles(ai, params, mask, dark=dark, flat=flat)
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
    (:func:`ring_integrator`, :func:`~pyscatter.kernels.sectors.sector_integrator`).

    ``ai``: a pyFAI integrator of the recorded geometry to reuse (default: a new one);
    ``dark``, ``flat``: images (default: the detector's); ``radial_slow`` as in
    :func:`block_function`. The function carries ``.n_bins``, the rows of the matrix.
    """
    if ai is None:
        ai = integrator_from_config(params["geometry"])
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
    (:func:`matrix_function` of :func:`ring_integrator`)."""
    return matrix_function(
        ring_integrator, params, mask, ai, dark=dark, flat=flat, radial_slow=True
    )


def build(spec, h5: h5py.File):
    """Block function of an AzimuthalProfiles spec; ``h5`` gives the masks, dark and flat."""
    return make_function(spec.params, **read_arrays(h5, spec.params))
