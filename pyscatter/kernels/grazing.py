"""Grazing-incidence maps: pyFAI's FiberIntegrator matrix applied to blocks of frames.

pyFAI stays the geometry engine. For one geometry, incident angle, tilt angle and sample
orientation, :func:`gi_integrator` lets pyFAI's
:class:`~pyFAI.integrator.fiber.FiberIntegrator` build its 2-D CSR engine
(``integrate2d_grazing_incidence`` with ``method=("no", "csr", "cython")``: no pixel
splitting, as pyFAI asks for grazing incidence) on a blank frame, takes the engine's sparse
matrix (pixels → (q_xy, q_z) bins, or (q, χ) bins) and hands it, with the per-pixel solid angle
and polarization of the same geometry, to :class:`~pyscatter.kernels.integrate.BatchIntegrator`,
which applies it to a whole block of frames with pyFAI's pre-processing and sums. No transform
is re-implemented here: the pixel → q mapping is pyFAI's (:func:`gi_pixel_maps` exposes it).

Axes (pyFAI's fibre units, :mod:`pyFAI.units`): ``q_xy`` is pyFAI's ``qip`` (in the sample
plane, signed by the horizontal component), ``q_z`` its ``qoop`` (along the sample normal);
in ``"chi"`` mode, ``q`` is ``qtot`` (the modulus of q) and ``chi`` is ``chigi`` (degrees from the sample
normal, ``arctan2(q_xy, q_z)``). The incident angle is the rotation of the sample about the
horizontal lab axis, the tilt angle its rotation about the beam, the sample orientation
pyFAI's EXIF-like code 1–8. Refraction is not corrected. Pure numerics on pyFAI objects made
from a config; no file I/O.

Examples
--------
>>> import numpy as np
>>> config = {"dist": 0.2, "poni1": 0.004, "poni2": 0.01, "rot1": 0.0, "rot2": 0.0,
...           "rot3": 0.0, "wavelength": 1e-10, "detector": "Detector",
...           "detector_config": {"pixel1": 172e-6, "pixel2": 172e-6, "max_shape": [64, 80]}}
>>> bi = gi_integrator(config, (64, 80), npt_ip=40, npt_oop=30, ip_range=(-4.0, 2.0),
...                    oop_range=(-1.0, 4.0), incident_deg=0.15)
>>> bi.integrate(np.ones((2, 64, 80), dtype=np.float32)).intensity.shape
(2, 30, 40)
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import scipy.sparse as sp

from pyscatter.errors import InputError
from pyscatter.kernels.integrate import BatchIntegrator

__all__ = [
    "MODES",
    "UNITS",
    "fiber_integrator",
    "fiber_units",
    "gi_integrator",
    "gi_pixel_maps",
    "gi_reference",
    "integrate_gi",
]

MODES = ("qmap", "chi")
"""``qmap``: I(q_z, q_xy); ``chi``: I(chi, q) in grazing-incidence geometry."""
UNITS = ("nm^-1", "A^-1")
"""Units of q."""
_METHOD = ("no", "csr", "cython")


def fiber_units(mode: str, unit: str) -> tuple[str, str]:
    """pyFAI's (in-plane, out-of-plane) unit names of a mode: the fast and slow axes."""
    if mode not in MODES or unit not in UNITS:
        raise InputError(
            f"mode {mode!r}, unit {unit!r}; expected mode one of {', '.join(MODES)} and unit "
            f"one of {', '.join(UNITS)}"
        )
    if mode == "qmap":
        return f"qip_{unit}", f"qoop_{unit}"
    return f"qtot_{unit}", "chigi_deg"


def fiber_integrator(config: Mapping[str, Any] | str) -> Any:
    """A pyFAI ``FiberIntegrator`` placed like the geometry config (checked)."""
    from pyFAI.integrator.fiber import FiberIntegrator

    from pyscatter.geometry import integrator_from_config

    ai = integrator_from_config(config)
    return FiberIntegrator(
        detector=ai.detector,
        dist=ai.dist,
        poni1=ai.poni1,
        poni2=ai.poni2,
        rot1=ai.rot1,
        rot2=ai.rot2,
        rot3=ai.rot3,
        wavelength=ai.wavelength,
    )


def _parsed_units(mode: str, unit: str, incident_deg: float, tilt_deg: float, orientation: int):
    from pyFAI.units import parse_fiber_unit

    names = fiber_units(mode, unit)
    shared = dict(
        incident_angle=math.radians(incident_deg),
        tilt_angle=math.radians(tilt_deg),
        sample_orientation=int(orientation),
    )
    return tuple(parse_fiber_unit(unit=name, **shared) for name in names), shared


def gi_pixel_maps(
    config: Mapping[str, Any] | str,
    shape: tuple[int, int],
    *,
    mode: str = "qmap",
    unit: str = "nm^-1",
    incident_deg: float,
    tilt_deg: float = 0.0,
    sample_orientation: int = 1,
) -> tuple[np.ndarray, np.ndarray]:
    """pyFAI's (fast, slow) axis value at every pixel centre: (q_xy, q_z), or (q, chi in deg).

    What pyFAI's FiberIntegrator bins the pixels by (``array_from_unit``, pixel centres).
    """
    fi = fiber_integrator(config)
    (u_ip, u_oop), shared = _parsed_units(mode, unit, incident_deg, tilt_deg, sample_orientation)
    fi.reset_integrator(**shared)
    shape = (int(shape[0]), int(shape[1]))
    fast = np.asarray(fi.array_from_unit(shape, "center", u_ip, scale=True), dtype=np.float64)
    slow = np.asarray(fi.array_from_unit(shape, "center", u_oop, scale=True), dtype=np.float64)
    return fast, slow


def _gi_options(
    mode: str,
    unit: str,
    npt_ip: int,
    npt_oop: int,
    ip_range: Any,
    oop_range: Any,
    incident_deg: float,
    tilt_deg: float,
    sample_orientation: int,
) -> dict[str, Any]:
    u_ip, u_oop = fiber_units(mode, unit)
    return dict(
        npt_ip=int(npt_ip),
        npt_oop=int(npt_oop),
        unit_ip=u_ip,
        unit_oop=u_oop,
        ip_range=[float(v) for v in ip_range],
        oop_range=[float(v) for v in oop_range],
        incident_angle=float(incident_deg),
        tilt_angle=float(tilt_deg),
        sample_orientation=int(sample_orientation),
        angle_unit="deg",
    )


def gi_integrator(
    config: Mapping[str, Any] | str,
    shape: tuple[int, int],
    *,
    npt_ip: int,
    npt_oop: int,
    ip_range: Any,
    oop_range: Any,
    incident_deg: float,
    tilt_deg: float = 0.0,
    sample_orientation: int = 1,
    mode: str = "qmap",
    unit: str = "nm^-1",
    mask: np.ndarray | None = None,
    correct_solid_angle: bool = True,
    polarization_factor: float | None = None,
    dummy: float | None = None,
    delta_dummy: float | None = None,
    dark: np.ndarray | None = None,
    flat: np.ndarray | None = None,
    error_model: str | None = None,
    block_frames: int = 16,
) -> BatchIntegrator:
    """The batched integrator of pyFAI's grazing-incidence CSR matrix for one geometry and angles.

    Parameters
    ----------
    config : mapping or str
        pyFAI geometry config (or its JSON).
    shape : (int, int)
        Frame shape.
    npt_ip, npt_oop : int
        Bins along the fast (q_xy, or q) and slow (q_z, or chi) axes.
    ip_range, oop_range : (float, float)
        Ranges of the two axes (in ``unit``; chi in degrees): always given, so that every
        geometry and angle lands on the same grid.
    incident_deg, tilt_deg : float
        Incident and tilt angles in degrees.
    sample_orientation : int
        pyFAI's sample orientation (1–8).
    mode, unit : str
        :data:`MODES`, :data:`UNITS`.
    mask, correct_solid_angle, polarization_factor, dummy, delta_dummy, dark, flat, error_model
        As :meth:`~pyscatter.kernels.integrate.BatchIntegrator.from_pyfai`.

    Returns
    -------
    BatchIntegrator
        ``integrate(frames).intensity`` is (n, npt_oop, npt_ip), as pyFAI's result (bins
        without a valid pixel hold 0, pyFAI's ``empty``; :func:`integrate_gi` makes the bins
        no unmasked pixel reaches NaN). ``radial`` holds the fast axis, ``azimuthal`` the slow.
    """
    shape = (int(shape[0]), int(shape[1]))
    fi = fiber_integrator(config)
    options = _gi_options(
        mode, unit, npt_ip, npt_oop, ip_range, oop_range, incident_deg, tilt_deg,
        sample_orientation,
    )  # fmt: skip
    matrix, csr, key = _pyfai_matrix(fi, shape, options, mask)
    inputs = _pixel_inputs(fi, shape, correct_solid_angle, polarization_factor)
    inputs["poisson_dark"] = np.array(error_model == "poisson" and not key.manage_variance)
    return BatchIntegrator.from_inputs(
        matrix,
        csr,
        inputs,
        shape,
        dummy=dummy,
        delta_dummy=delta_dummy,
        dark=dark,
        flat=flat,
        error_model=error_model,
        block_frames=block_frames,
    )


def _pyfai_matrix(fi: Any, shape: tuple[int, int], options: dict[str, Any], mask: Any):
    """Let pyFAI build its grazing-incidence CSR engine on a blank frame; take its matrix.

    Returns the matrix (n_bins, n_pix), the dict :meth:`BatchIntegrator.from_inputs` takes
    (axes, unit, pyFAI's mask, empty) and pyFAI's method.
    """
    from pyFAI.method_registry import IntegrationMethod

    probe = np.zeros(shape, dtype=np.float32)
    mask_u8 = None if mask is None else (np.asarray(mask) != 0).astype(np.int8)
    res = fi.integrate2d_grazing_incidence(
        probe, **options, method=_METHOD, mask=mask_u8, correctSolidAngle=False
    )
    key = IntegrationMethod.select_method(2, *_METHOD)[0]
    engine = fi.engines[key].engine
    matrix = sp.csr_matrix(
        (
            np.array(engine.data, dtype=np.float32),
            np.array(engine.indices),
            np.array(engine.indptr),
        ),
        shape=(len(engine.indptr) - 1, shape[0] * shape[1]),
    )
    cmask = None
    if engine.check_mask:
        cmask = np.asarray(engine.cmask).reshape(shape) != 0
    csr = {
        "radial": np.asarray(res.inplane, dtype=np.float64),
        "azimuthal": np.asarray(res.outofplane, dtype=np.float64),
        "unit": str(options["unit_ip"]),
        "cmask": cmask,
        "empty": 0.0,
    }
    return matrix, csr, key


def _pixel_inputs(
    fi: Any, shape: tuple[int, int], correct_solid_angle: bool, polarization_factor: Any
) -> dict[str, np.ndarray]:
    """The per-pixel corrections of the geometry, as pyFAI's 2-D integration applies them."""
    none = np.zeros(0, dtype=np.float32)
    detector = fi.detector
    detector_dummy = none
    if detector.dummy is not None:
        delta = detector.delta_dummy
        detector_dummy = np.array([detector.dummy, np.nan if delta is None else delta])
    solid = fi.solidAngleArray(shape, True) if correct_solid_angle else none
    polar = none if polarization_factor is None else fi.polarization(shape, polarization_factor)
    flat, dark = detector.flatfield, detector.darkcurrent
    return {
        "solid_angle": np.asarray(solid),
        "polarization": np.asarray(polar),
        "detector_flat": none if flat is None else np.asarray(flat),
        "detector_dark": none if dark is None else np.asarray(dark),
        "detector_dummy": detector_dummy,
    }


def integrate_gi(bi: BatchIntegrator, frames: Any) -> tuple[np.ndarray, np.ndarray | None]:
    """(intensity, sigma or None) of a block of frames, (n, npt_oop, npt_ip) float32, with NaN
    in the bins no unmasked pixel of the geometry reaches (beyond the detector, in the gaps,
    out of the grazing-incidence wedge); each frame is computed alone, whatever the block."""
    res = bi.integrate(frames)
    n_slow = 1 if bi.azimuthal is None else bi.azimuthal.size
    unreached = (bi.static_normalization() == 0).reshape(bi.radial.size, n_slow).T
    intensity = res.intensity
    intensity[:, unreached] = np.nan
    sigma = res.sigma
    if sigma is not None:
        sigma[:, unreached] = np.nan
    return intensity, sigma


def gi_reference(
    config: Mapping[str, Any] | str,
    frame: np.ndarray,
    *,
    npt_ip: int,
    npt_oop: int,
    ip_range: Any,
    oop_range: Any,
    incident_deg: float,
    tilt_deg: float = 0.0,
    sample_orientation: int = 1,
    mode: str = "qmap",
    unit: str = "nm^-1",
    **pyfai: Any,
) -> Any:
    """pyFAI's FiberIntegrator called directly on one frame (the reference of the tests).

    ``pyfai``: more keywords of ``integrate2d_grazing_incidence`` (``mask``, ``dummy``,
    ``polarization_factor``, ``correctSolidAngle`` …). With ``error_model`` (which
    ``integrate2d_grazing_incidence`` does not pass on), the FiberIntegrator's own
    ``integrate2d_ng`` with the same fibre units and ranges, which is what
    ``integrate2d_grazing_incidence`` runs. Returns pyFAI's result.
    """
    fi = fiber_integrator(config)
    pyfai.setdefault("method", _METHOD)
    if pyfai.get("error_model") is not None:
        (u_ip, u_oop), shared = _parsed_units(
            mode, unit, incident_deg, tilt_deg, sample_orientation
        )
        fi.reset_integrator(**shared)
        return fi.integrate2d_ng(
            np.asarray(frame),
            int(npt_ip),
            int(npt_oop),
            unit=(u_ip, u_oop),
            radial_range=[float(v) for v in ip_range],
            azimuth_range=[float(v) for v in oop_range],
            **pyfai,
        )
    options = _gi_options(
        mode, unit, npt_ip, npt_oop, ip_range, oop_range, incident_deg, tilt_deg,
        sample_orientation,
    )  # fmt: skip
    return fi.integrate2d_grazing_incidence(np.asarray(frame), **options, **pyfai)
