"""pyFAI geometry configs: the integrator of a config, its physical check, Fit2D calibrations.

:func:`~pyscatter.geometry.integrator_from_config` builds a pyFAI ``AzimuthalIntegrator`` from a
geometry config (``get_config()`` or its JSON), :func:`~pyscatter.geometry.check_geometry`
refuses geometries that are not physical (:data:`~pyscatter.geometry.GEOMETRY_LIMITS`), and
:func:`~pyscatter.geometry.fit2d_geometry` / :func:`~pyscatter.geometry.fit2d_config` convert a
Fit2D calibration with pyFAI's ``setFit2D``. All names are importable (and documented) from
:mod:`pyscatter.geometry`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from pyscatter.errors import InputError
from pyscatter.kernels.checks import check_frame_shape

__all__ = [
    "FIT2D_KEYS",
    "GEOMETRY_LIMITS",
    "check_geometry",
    "fit2d_config",
    "fit2d_geometry",
    "integrator_from_config",
    "integrator_from_numbers",
    "short_error",
]

#: The numbers of a geometry besides its detector (pyFAI's ``AzimuthalIntegrator`` arguments)
_GEOMETRY_ARGS = ("dist", "poni1", "poni2", "rot1", "rot2", "rot3", "wavelength")


def integrator_from_config(config: Mapping[str, Any] | str, *, where: str = "geometry"):
    """A pyFAI ``AzimuthalIntegrator`` from a geometry config (``get_config()``, or its JSON).

    Same result as ``pyFAI.load(config)`` (tested), without the garbage-collection pass
    ``pyFAI.load`` runs, which costs 0.2–0.5 s in a process holding pyUSID, sklearn and dask.
    The geometry is checked with :func:`check_geometry` (``where`` names it in messages).
    """
    ai = _integrator(config)
    check_geometry(ai, where=where)
    return ai


def _integrator(config: Mapping[str, Any] | str):
    """The unchecked integrator of a geometry config (dict or JSON text)."""
    import json

    from pyFAI.io.ponifile import PoniFile

    numbers = json.loads(config) if isinstance(config, str) else config
    poni = PoniFile(dict(numbers))
    return integrator_from_numbers({k: getattr(poni, k) for k in _GEOMETRY_ARGS}, poni.detector)


def integrator_from_numbers(numbers: Mapping[str, Any], detector: Any):
    """A pyFAI ``AzimuthalIntegrator`` of ``detector`` placed by the geometry ``numbers``.

    Parameters
    ----------
    numbers : mapping
        ``dist``, ``poni1``, ``poni2`` (m), ``rot1``, ``rot2``, ``rot3`` (rad) and
        ``wavelength`` (m); other keys are ignored. Not checked (see :func:`check_geometry`).
    detector : pyFAI.detectors.Detector

    Returns
    -------
    pyFAI.integrator.azimuthal.AzimuthalIntegrator
    """
    from pyFAI.integrator.azimuthal import AzimuthalIntegrator

    return AzimuthalIntegrator(detector=detector, **{k: numbers[k] for k in _GEOMETRY_ARGS})


# --------------------------------------------------------------------------- validation

GEOMETRY_LIMITS: dict[str, tuple[float, float, str]] = {
    "dist": (1e-4, 100.0, "m"),
    "wavelength": (1e-13, 1e-7, "m"),
    "pixel1": (1e-7, 0.1, "m"),
    "pixel2": (1e-7, 0.1, "m"),
    "poni1": (-10.0, 10.0, "m"),
    "poni2": (-10.0, 10.0, "m"),
    "rot1": (-2 * math.pi, 2 * math.pi, "rad"),
    "rot2": (-2 * math.pi, 2 * math.pi, "rad"),
    "rot3": (-2 * math.pi, 2 * math.pi, "rad"),
}
"""Allowed (low, high, unit) of every geometry number: sample–detector distance 0.1 mm–100 m,
wavelength 0.001 Å–1000 Å (X-rays to soft X-rays; None is allowed, then only 2θ and r units
work), pixels 0.1 µm–10 cm, PONI within 10 m of the detector origin, rotations within ±2π."""


def _geometry_numbers(ai: Any) -> dict[str, Any]:
    det = ai.detector
    return {
        "dist": ai.dist,
        "wavelength": ai.wavelength if ai.wavelength else None,
        "pixel1": det.pixel1,
        "pixel2": det.pixel2,
        "poni1": ai.poni1,
        "poni2": ai.poni2,
        "rot1": ai.rot1,
        "rot2": ai.rot2,
        "rot3": ai.rot3,
    }


def short_error(err: BaseException, limit: int = 160) -> str:
    """The first line of an exception's message, at most ``limit`` characters (pyFAI's
    messages can list every known detector on many lines)."""
    text = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    return text if len(text) <= limit else text[: limit - 1] + "…"


def check_geometry(geometry: Any, *, where: str = "geometry") -> dict[str, Any]:
    """Refuse a geometry that is not physical: NaN, infinite, zero or absurd numbers.

    Every number must be finite and within :data:`GEOMETRY_LIMITS` (the wavelength may be
    missing). pyFAI accepts any float; a NaN or 1e30 distance would give all-zero or constant
    q silently, so every translator and process checks here before using a geometry.

    Parameters
    ----------
    geometry : pyFAI AzimuthalIntegrator, or its config (dict or JSON text)
    where : str
        The file or option the geometry comes from, for messages.

    Returns
    -------
    dict
        The pyFAI config (``get_config()``) of the checked geometry.

    Raises
    ------
    InputError
        A missing, non-finite or out-of-range number; the message names ``where``, the key,
        the value and the allowed range.

    Examples
    --------
    >>> check_geometry({"dist": float("nan"), "detector": "Pilatus1M"}, where="x.poni")
    Traceback (most recent call last):
    ...
    pyscatter.errors.InputError: x.poni: geometry dist = nan; expected a finite number in [0.0001, 100] m
    """
    ai = geometry if hasattr(geometry, "get_config") else _integrator(geometry)
    for key, value in _geometry_numbers(ai).items():
        low, high, unit = GEOMETRY_LIMITS[key]
        if value is None and key == "wavelength":
            continue
        try:
            number = float(value)
        except (TypeError, ValueError):
            number = math.nan
        if not (math.isfinite(number) and low <= number <= high):
            raise InputError(
                f"{where}: geometry {key} = {value!r}; expected a finite number in "
                f"[{low:g}, {high:g}] {unit}"
            )
    return ai.get_config()


FIT2D_KEYS = {
    "dist_mm": "directDist",
    "center_x": "centerX",
    "center_y": "centerY",
    "tilt": "tilt",
    "tilt_plan_rotation": "tiltPlanRotation",
    "pixel_x": "pixelX",
    "pixel_y": "pixelY",
    "wavelength_A": "wavelength",
}
"""Keys of a Fit2D calibration (pyscatter name → pyFAI ``setFit2D`` argument): distance in mm
along the beam, beam centre in pixels (x fast/columns, y slow/rows, pixel edges at integers),
tilt and tilt-plane rotation in degrees, pixel sizes in µm, wavelength in Å."""

_FIT2D_REQUIRED = ("dist_mm", "center_x", "center_y", "pixel_x", "pixel_y", "wavelength_A")


def fit2d_config(
    *,
    distance_mm: float,
    center_x: float,
    center_y: float,
    pixel_x_um: float,
    pixel_y_um: float,
    wavelength_angstrom: float,
    frame_shape: Sequence[int] | None,
    tilt_deg: float = 0.0,
    tilt_plane_deg: float = 0.0,
) -> dict[str, Any]:
    """A pyFAI geometry config from Fit2D-style parameters (pyFAI's ``setFit2D``).

    Parameters
    ----------
    distance_mm : float
        Sample to detector along the beam, mm.
    center_x, center_y : float
        Beam centre in pixels, column (x) and row (y), from the corner of the first pixel.
    pixel_x_um, pixel_y_um : float
        Pixel size along columns and rows, µm.
    wavelength_angstrom : float
    frame_shape : (int, int) or None
        (rows, cols) of the frames the geometry refers to (None: a detector without a shape).
    tilt_deg, tilt_plane_deg : float
        Fit2D tilt and tilt-plane rotation.

    Returns
    -------
    dict
        ``AzimuthalIntegrator.get_config()`` (a ``Detector`` of that pixel size and shape).
    """
    from pyFAI.detectors import Detector
    from pyFAI.integrator.azimuthal import AzimuthalIntegrator

    for name, value in (
        ("distance_mm", distance_mm),
        ("pixel_x_um", pixel_x_um),
        ("pixel_y_um", pixel_y_um),
        ("wavelength_angstrom", wavelength_angstrom),
    ):
        if not (math.isfinite(value) and value > 0):
            raise InputError(f"{name} must be a positive number, got {value!r}")
    det = Detector(
        pixel1=pixel_y_um * 1e-6,
        pixel2=pixel_x_um * 1e-6,
        max_shape=None if frame_shape is None else tuple(frame_shape),
    )
    ai = AzimuthalIntegrator(detector=det, wavelength=wavelength_angstrom * 1e-10)
    ai.setFit2D(distance_mm, center_x, center_y, tilt_deg, tilt_plane_deg, pixel_x_um, pixel_y_um)
    return ai.get_config()


def fit2d_geometry(
    fit2d: str | Mapping[str, Any],
    frame_shape: Sequence[int] | None = None,
    *,
    where: str = "--fit2d",
) -> dict[str, Any]:
    """pyFAI geometry config of a Fit2D calibration, converted by pyFAI's ``setFit2D``.

    Parameters
    ----------
    fit2d : str or mapping
        ``"dist_mm=...,center_x=...,center_y=...,tilt=...,tilt_plan_rotation=...,pixel_x=...,
        pixel_y=...,wavelength_A=..."`` or the same as a mapping (keys :data:`FIT2D_KEYS`;
        ``tilt`` and ``tilt_plan_rotation`` default to 0).
    frame_shape : (rows, cols), optional
        Becomes the detector shape (a translator fills it in from the frames when None).
    where : str
        Names the option in messages.

    Returns
    -------
    dict
        ``AzimuthalIntegrator.get_config()``, checked by :func:`check_geometry`.

    Raises
    ------
    InputError
        Unknown, missing, repeated or non-numeric keys, or a geometry that is not physical.

    Examples
    --------
    >>> cfg = fit2d_geometry("dist_mm=1000,center_x=60,center_y=40,pixel_x=100,pixel_y=100,"
    ...                      "wavelength_A=1", (80, 120))
    >>> round(cfg["dist"], 6), round(cfg["poni1"], 6), round(cfg["poni2"], 6)
    (1.0, 0.004, 0.006)
    """
    allowed = ", ".join(FIT2D_KEYS)
    if isinstance(fit2d, str):
        items: list[tuple[str, str]] = []
        for part in fit2d.split(","):
            key, sep, value = part.partition("=")
            if not sep:
                raise InputError(f"{where} {fit2d!r}: expected KEY=VALUE,… with keys {allowed}")
            items.append((key.strip(), value.strip()))
    elif isinstance(fit2d, Mapping):
        items = [(str(k), v) for k, v in fit2d.items()]
    else:
        raise InputError(f"{where}: expected 'KEY=VALUE,…' or a mapping; got {fit2d!r}")
    values: dict[str, float] = {}
    for key, value in items:
        if key not in FIT2D_KEYS:
            raise InputError(f"{where}: unknown key {key!r}; expected among {allowed}")
        if key in values:
            raise InputError(f"{where}: key {key} given twice")
        try:
            number = float(value)
        except (TypeError, ValueError):
            number = math.nan
        if not math.isfinite(number):
            raise InputError(f"{where}: {key} = {value!r}; expected a finite number")
        values[key] = number
    missing = [k for k in _FIT2D_REQUIRED if k not in values]
    if missing:
        raise InputError(f"{where}: missing {', '.join(missing)}; keys are {allowed}")
    shape = None if frame_shape is None else check_frame_shape(frame_shape)
    for key in ("dist_mm", "pixel_x", "pixel_y", "wavelength_A"):
        if values[key] <= 0:
            raise InputError(f"{where}: {key} = {values[key]:g}; expected a number > 0")
    config = fit2d_config(
        distance_mm=values["dist_mm"],
        center_x=values["center_x"],
        center_y=values["center_y"],
        pixel_x_um=values["pixel_x"],
        pixel_y_um=values["pixel_y"],
        wavelength_angstrom=values["wavelength_A"],
        frame_shape=shape,
        tilt_deg=values.get("tilt", 0.0),
        tilt_plane_deg=values.get("tilt_plan_rotation", 0.0),
    )
    return check_geometry(config, where=where)
