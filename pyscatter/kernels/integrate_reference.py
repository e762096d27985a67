"""What both integration engines share with pyFAI, and pyFAI's own integration frame by frame.

:class:`IntegrationResult` is what :class:`~pyscatter.kernels.integrate.BatchIntegrator` and
:func:`integrate_reference` return; :func:`integrate_reference` is the batched integrator's
slow, obvious twin (and pyscatter's "pyfai" engine): pyFAI's ``integrate1d_ng`` /
``integrate2d_ng`` called once per frame with the same options. Both are importable (and
documented) from :mod:`pyscatter.kernels.integrate`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from pyscatter.errors import InputError

__all__ = [
    "ERROR_MODELS",
    "SPLITTINGS",
    "IntegrationResult",
    "check_error_model",
    "integrate_reference",
]

ERROR_MODELS = ("poisson", "azimuthal")
"""Error models besides ``None``."""

SPLITTINGS = ("no", "bbox", "pseudo", "full")
"""Pixel-splitting schemes pyFAI offers with its CSR matrix."""


@dataclass(frozen=True)
class IntegrationResult:
    """Azimuthally integrated frames.

    Attributes
    ----------
    radial : ndarray, shape (n_q,), float64
        Bin centres in ``unit``.
    azimuthal : ndarray, shape (n_chi,), float64, or None
        Azimuthal bin centres in degrees (pyFAI's chi convention) for 2-D results.
    intensity : ndarray, shape (n, n_q) or (n, n_chi, n_q), float32
        Mean corrected intensity per bin.
    sigma : ndarray, same shape as ``intensity``, float32, or None
        Standard error of the mean per bin, when an error model was set.
    unit : str
        pyFAI's name of the radial unit, e.g. ``"q_nm^-1"``.
    """

    radial: np.ndarray
    azimuthal: np.ndarray | None
    intensity: np.ndarray
    sigma: np.ndarray | None
    unit: str


def check_error_model(error_model: str | None) -> str | None:
    """``error_model`` in lower case, checked against :data:`ERROR_MODELS` (None passes)."""
    if error_model is None:
        return None
    name = str(error_model).lower()
    if name not in ERROR_MODELS:
        raise InputError(
            f"unsupported error_model {error_model!r}; expected None or one of {', '.join(ERROR_MODELS)}"
        )
    return name


# over 80 lines: the docstring and one keyword per pyFAI option (the code is ~60 lines)
def integrate_reference(
    ai: Any,
    frames: Any,
    *,
    npt: int,
    unit: str = "q_nm^-1",
    npt_azim: int | None = None,
    method: Any = ("bbox", "csr", "cython"),
    mask: np.ndarray | None = None,
    dummy: float | None = None,
    delta_dummy: float | None = None,
    correct_solid_angle: bool = True,
    polarization_factor: float | None = None,
    dark: np.ndarray | None = None,
    flat: np.ndarray | None = None,
    error_model: str | None = None,
    radial_range: tuple[float, float] | None = None,
    azimuth_range: tuple[float, float] | None = None,
) -> IntegrationResult:
    """pyFAI's ``integrate1d_ng`` / ``integrate2d_ng`` called frame by frame.

    The slow, obvious twin of :class:`~pyscatter.kernels.integrate.BatchIntegrator` (and pyscatter's "pyfai" engine): same
    options, same result type. Any pyFAI method works here, not only CSR ones.

    Parameters
    ----------
    ai : pyFAI.integrator.azimuthal.AzimuthalIntegrator
        The geometry (not thread-safe: one per thread).
    frames : array_like, shape (n, n_row, n_col), or (n, n_pix) for a detector with a shape
        Raw frames (never modified); n >= 1.
    npt, unit, npt_azim, method, mask, dummy, delta_dummy, correct_solid_angle, \
polarization_factor, dark, flat, error_model, radial_range, azimuth_range
        As in :meth:`~pyscatter.kernels.integrate.BatchIntegrator.from_pyfai`, passed to pyFAI.

    Returns
    -------
    IntegrationResult

    Raises
    ------
    InputError
        For an unknown error model, no frames, or frames of an unknown shape.
    """
    error_model = check_error_model(error_model)
    arr = np.asarray(frames)
    if arr.ndim == 2:
        det_shape = getattr(ai.detector, "shape", None)
        if det_shape is None or int(np.prod(det_shape)) != arr.shape[1]:
            raise InputError(
                f"frames of shape {arr.shape} need the detector shape; pass (n, n_row, n_col)"
            )
        arr = arr.reshape(arr.shape[0], *det_shape)
    if arr.ndim != 3 or arr.shape[0] == 0:
        raise InputError(f"frames must have shape (n, n_row, n_col) with n >= 1; got {arr.shape}")
    options = dict(
        unit=unit,
        method=method,
        mask=mask,
        dummy=dummy,
        delta_dummy=delta_dummy,
        correctSolidAngle=correct_solid_angle,
        polarization_factor=polarization_factor,
        dark=dark,
        flat=flat,
        error_model=error_model,
        radial_range=radial_range,
        azimuth_range=azimuth_range,
    )
    intensities, sigmas = [], []
    res = None
    for frame in arr:
        if npt_azim is None:
            res = ai.integrate1d_ng(frame, int(npt), **options)
        else:
            res = ai.integrate2d_ng(frame, int(npt), int(npt_azim), **options)
        intensities.append(np.asarray(res.intensity, dtype=np.float32))
        if error_model is not None:
            sigmas.append(np.asarray(res.sigma, dtype=np.float32))
    assert res is not None
    two_d = npt_azim is not None
    return IntegrationResult(
        radial=np.asarray(res.radial, dtype=np.float64),
        azimuthal=np.asarray(res.azimuthal, dtype=np.float64) if two_d else None,
        intensity=np.stack(intensities),
        sigma=np.stack(sigmas) if sigmas else None,
        unit=str(res.radial_unit if two_d else res.unit),
    )
