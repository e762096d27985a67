"""The model behind the synthetic scans of :mod:`pyscatter.datasets`.

The detector geometry (:func:`default_poni`, a small Pilatus-like detector whose distance makes q
reach :data:`~pyscatter.datasets.Q_MAX_NM` at the farthest corner), its pixel maps and mask
(beamstop with its arm, a module gap), the rings (:class:`~pyscatter.datasets.Ring`,
:data:`~pyscatter.datasets.DEFAULT_RINGS`) on a SAXS-like background, the expected counts of
every pixel at every position (:func:`expected_counts`, see the formula in
:mod:`pyscatter.datasets`) and the order parameter of a Maier-Saupe ``kappa``
(:func:`~pyscatter.datasets.order_parameter_from_kappa`, the slow, obvious reference). The
constants, rings, background and order parameter are importable (and documented) from
:mod:`pyscatter.datasets`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from scipy import special

from pyscatter.errors import InputError
from pyscatter.geometry_config import integrator_from_numbers

if TYPE_CHECKING:
    from pyFAI.integrator.azimuthal import AzimuthalIntegrator

__all__ = [
    "BEAMSTOP_ARM_CHI_DEG",
    "BEAMSTOP_ARM_WIDTH_MM",
    "BEAMSTOP_Q_NM",
    "DEFAULT_RINGS",
    "PIXEL_SIZE",
    "POLARIZATION_FACTOR",
    "Q_MAX_NM",
    "WAVELENGTH",
    "Ring",
    "azimuthal_weight",
    "build_integrator",
    "default_poni",
    "detector_mask",
    "expected_counts",
    "order_parameter_from_kappa",
    "pixel_maps",
    "ring_sum",
    "saxs_background",
]

#: Polarization factor of the synthetic beam (horizontal linear polarization, like a synchrotron).
POLARIZATION_FACTOR = 0.99
#: Pixel size of the synthetic Pilatus-like detector (m).
PIXEL_SIZE = 172e-6
#: Wavelength of the synthetic beam (m), 1 Angstrom.
WAVELENGTH = 1.0e-10
#: q at the farthest frame corner (nm^-1); the sample-detector distance is chosen to give it.
Q_MAX_NM = 2.5
#: Radius of the beamstop disc in q (nm^-1).
BEAMSTOP_Q_NM = 0.12
#: Direction (pyFAI chi, degrees) and full width (mm) of the beamstop arm.
BEAMSTOP_ARM_CHI_DEG = -155.0
BEAMSTOP_ARM_WIDTH_MM = 0.9


def saxs_background(q_nm: np.ndarray) -> np.ndarray:
    """Default smooth SAXS-like background: ``150 / (1 + (q / 0.15)^2) + 4`` counts.

    Parameters
    ----------
    q_nm : array_like
        Scattering vector modulus (nm^-1), any shape.

    Returns
    -------
    numpy.ndarray
        Background counts (before solid angle and polarization), same shape as ``q_nm``.

    Examples
    --------
    >>> float(saxs_background(0.0))
    154.0
    """
    q = np.asarray(q_nm, dtype=np.float64)
    return 150.0 / (1.0 + (q / 0.15) ** 2) + 4.0


@dataclass(frozen=True)
class Ring:
    """One scattering ring: a Gaussian in q, isotropic or Maier-Saupe oriented in chi.

    Parameters
    ----------
    q_nm : float
        Centre (nm^-1), > 0.
    width_nm : float
        Gaussian standard deviation (nm^-1), > 0.
    amplitude : float
        Peak counts of the isotropic part (before solid angle and polarization), >= 0.
    oriented : bool
        True: the azimuthal distribution is ``exp(kappa cos^2(chi - director))`` (normalised to
        a mean of 1 over the circle) with the ``kappa`` and director of each scan position.
    """

    q_nm: float
    width_nm: float
    amplitude: float
    oriented: bool = False

    def __post_init__(self) -> None:
        for name, low, strict in (
            ("q_nm", 0, True),
            ("width_nm", 0, True),
            ("amplitude", 0, False),
        ):
            value = getattr(self, name)
            ok = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(
                value, (bool, np.bool_)
            )
            ok = ok and math.isfinite(value) and (value > low if strict else value >= low)
            if not ok:
                rel = ">" if strict else ">="
                raise InputError(f"Ring.{name} must be a finite number {rel} {low}, got {value!r}")
            object.__setattr__(self, name, float(value))
        if not isinstance(self.oriented, (bool, np.bool_)):
            raise InputError(f"Ring.oriented must be True or False, got {self.oriented!r}")
        object.__setattr__(self, "oriented", bool(self.oriented))


#: The default rings: an oriented ring at 0.45 nm^-1, a weaker oriented one at 0.80 nm^-1 and an
#: isotropic one at 1.20 nm^-1 (all fully inside the default frame except the isotropic one).
DEFAULT_RINGS = (
    Ring(q_nm=0.45, width_nm=0.025, amplitude=400.0, oriented=True),
    Ring(q_nm=0.80, width_nm=0.035, amplitude=80.0, oriented=True),
    Ring(q_nm=1.20, width_nm=0.040, amplitude=120.0, oriented=False),
)


# --------------------------------------------------------------------------- order parameter


def _quadrature_rule() -> tuple[np.ndarray, np.ndarray]:
    """Composite Gauss-Legendre nodes and weights on [0, 1], panels graded towards both ends.

    Panels end at ``2**-k`` and ``1 - 2**-k`` (k = 1..52) so that ``exp(kappa x^2)`` is
    resolved for any ``|kappa|`` up to 1e12 (peak width ``1/(2 kappa)`` at x = 1 for kappa > 0,
    ``1/sqrt(-kappa)`` at x = 0 for kappa < 0).
    """
    if _QUAD_CACHE:
        return _QUAD_CACHE[0]
    edges = {0.0, 1.0}
    for k in range(1, 53):
        edges.update((2.0**-k, 1.0 - 2.0**-k))
    edges_arr = np.array(sorted(edges))
    t, w = special.roots_legendre(16)
    lo, hi = edges_arr[:-1, None], edges_arr[1:, None]
    nodes = (0.5 * (lo + hi) + 0.5 * (hi - lo) * t).ravel()
    weights = (0.5 * (hi - lo) * w).ravel()
    _QUAD_CACHE.append((nodes, weights))
    return nodes, weights


_QUAD_CACHE: list[tuple[np.ndarray, np.ndarray]] = []
_KAPPA_CLIP = 1e12


def order_parameter_from_kappa(kappa: Any) -> np.ndarray:
    """Order parameter ``S = <P2(cos theta)>`` of the Maier-Saupe distribution ``exp(kappa cos^2)``.

    ``S = int_0^pi P2(cos t) f(t) sin t dt / int_0^pi f(t) sin t dt`` with
    ``f(t) = exp(kappa cos^2 t)`` and ``P2(x) = (3 x^2 - 1) / 2``, computed by composite
    Gauss-Legendre quadrature in ``x = cos t`` on [0, 1] (a slow, obvious reference).

    Parameters
    ----------
    kappa : array_like
        Concentration, any shape. ``kappa > 0`` aligns along the director (S -> 1),
        ``kappa < 0`` perpendicular to it (S -> -1/2); NaN gives NaN, +-inf the limits.

    Returns
    -------
    numpy.ndarray
        float64, same shape as ``kappa`` (0-d for a scalar).

    Examples
    --------
    >>> float(order_parameter_from_kappa(0.0))
    0.0
    >>> round(float(order_parameter_from_kappa(16.0)), 4)
    0.9027
    """
    k = np.asarray(kappa, dtype=np.float64)
    out = np.full(k.shape, np.nan)
    flat_k, flat_out = k.reshape(-1), out.reshape(-1)
    x, w = _quadrature_rule()
    x2 = x * x
    finite = np.flatnonzero(np.isfinite(flat_k))
    for start in range(0, finite.size, 2048):
        idx = finite[start : start + 2048]
        kk = np.clip(flat_k[idx], -_KAPPA_CLIP, _KAPPA_CLIP)[:, None]
        f = np.exp(kk * x2 - np.maximum(kk, 0.0))  # scaled so the largest value is <= 1
        mean_x2 = (f @ (w * x2)) / (f @ w)
        flat_out[idx] = 1.5 * mean_x2 - 0.5
    flat_out[flat_k == 0] = 0.0  # exact: <x^2> = 1/3
    flat_out[flat_k == np.inf] = 1.0
    flat_out[flat_k == -np.inf] = -0.5
    return out


# --------------------------------------------------------------------------- geometry


def build_integrator(poni: Mapping[str, Any]) -> AzimuthalIntegrator:
    """A pyFAI AzimuthalIntegrator from a :attr:`~pyscatter.datasets.SyntheticScan.poni` dict."""
    from pyFAI.detectors import Detector

    detector = Detector(
        pixel1=poni["pixel1"], pixel2=poni["pixel2"], max_shape=tuple(poni["shape"])
    )
    return integrator_from_numbers(poni, detector)


def default_poni(frame_shape: tuple[int, int]) -> dict:
    """Geometry: beam off-centre in the frame, small tilt, q reaching Q_MAX_NM at the far corner."""
    n_row, n_col = frame_shape
    row_c, col_c = 0.44 * n_row, 0.45 * n_col  # PONI, in pixels from the frame's corner
    r_max = PIXEL_SIZE * max(
        math.hypot(r, c) for r in (row_c, n_row - row_c) for c in (col_c, n_col - col_c)
    )
    two_theta_max = 2.0 * math.asin(Q_MAX_NM * 1e9 * WAVELENGTH / (4.0 * math.pi))
    return {
        "dist": round(r_max / math.tan(two_theta_max), 4),
        "poni1": row_c * PIXEL_SIZE,
        "poni2": col_c * PIXEL_SIZE,
        "rot1": 1.2e-3,
        "rot2": -0.8e-3,
        "rot3": 0.0,
        "wavelength": WAVELENGTH,
        "pixel1": PIXEL_SIZE,
        "pixel2": PIXEL_SIZE,
        "shape": (int(n_row), int(n_col)),
    }


def pixel_maps(ai: AzimuthalIntegrator, shape: tuple[int, int]) -> dict[str, np.ndarray]:
    """q (nm^-1), chi (deg), r (mm) at pixel centres and the solid-angle x polarization factor."""
    correction = ai.solidAngleArray(shape) * ai.polarization(shape, factor=POLARIZATION_FACTOR)
    return {
        "q": ai.center_array(shape, unit="q_nm^-1"),
        "chi": ai.center_array(shape, unit="chi_deg"),
        "r": ai.center_array(shape, unit="r_mm"),
        "correction": np.asarray(correction, dtype=np.float64),
    }


def detector_mask(maps: Mapping[str, np.ndarray]) -> np.ndarray:
    """Beamstop disc (q < BEAMSTOP_Q_NM), its arm towards BEAMSTOP_ARM_CHI_DEG, a module gap."""
    q, chi, r = maps["q"], maps["chi"], maps["r"]
    n_row = q.shape[0]
    mask = q < BEAMSTOP_Q_NM
    delta = np.deg2rad(chi - BEAMSTOP_ARM_CHI_DEG)
    mask |= (np.cos(delta) > 0) & (np.abs(r * np.sin(delta)) < 0.5 * BEAMSTOP_ARM_WIDTH_MM)
    gap_start = int(round(0.70 * n_row))
    mask[gap_start : gap_start + max(2, n_row // 40)] = True
    return mask


# --------------------------------------------------------------------------- model


def ring_sum(q: np.ndarray, rings: Sequence[Ring], *, oriented: bool | None) -> np.ndarray:
    """Sum of ring Gaussians at ``q``: oriented ones, isotropic ones, or all (None)."""
    total = np.zeros(q.shape)
    for ring in rings:
        if oriented is None or ring.oriented == oriented:
            total += ring.amplitude * np.exp(-0.5 * ((q - ring.q_nm) / ring.width_nm) ** 2)
    return total


def azimuthal_weight(
    chi_deg: np.ndarray, kappa: np.ndarray, director_deg: np.ndarray
) -> np.ndarray:
    """``exp(kappa cos^2(chi - d))`` normalised to a mean of 1 over the circle.

    ``chi_deg`` has shape (n_pix,), ``kappa`` and ``director_deg`` shape (n_pos,); returns
    (n_pos, n_pix). Written as ``exp(kappa/2 (cos 2(chi - d) - 1)) / ive(0, kappa/2)``, the same
    function without overflow (the circle mean of ``exp(kappa cos^2)`` is
    ``exp(kappa/2) I0(kappa/2)``).
    """
    two_chi = np.deg2rad(2.0 * chi_deg)[None, :]
    two_d = np.deg2rad(2.0 * director_deg)[:, None]
    half_k = 0.5 * kappa[:, None]
    cos_term = np.cos(two_chi) * np.cos(two_d) + np.sin(two_chi) * np.sin(two_d)
    return np.exp(half_k * (cos_term - 1.0)) / special.ive(0, half_k)


def expected_counts(
    maps: Mapping[str, np.ndarray],
    rings: Sequence[Ring],
    background: Callable[[np.ndarray], np.ndarray],
    kappa: np.ndarray,
    director: np.ndarray,
) -> np.ndarray:
    """(n_pos, n_row, n_col) float64 expected counts of the model (see the module docstring)."""
    q, chi, correction = maps["q"], maps["chi"].ravel(), maps["correction"]
    bg = np.asarray(background(q), dtype=np.float64)
    if bg.shape != q.shape or not np.all(np.isfinite(bg)) or np.any(bg < 0):
        raise InputError(
            f"background(q) must return finite counts >= 0 of q's shape {q.shape}, "
            f"got shape {bg.shape}"
        )
    isotropic = ((bg + ring_sum(q, rings, oriented=False)) * correction).ravel()
    oriented = (ring_sum(q, rings, oriented=True) * correction).ravel()
    out = np.empty((kappa.size, q.size))
    out[:] = isotropic
    # oriented rings only where their Gaussians exceed 1e-16 of the peak (what is left out is
    # below 1e-12 counts at any kappa)
    support = np.flatnonzero(oriented > 1e-16 * oriented.max(initial=0.0))
    if support.size:
        out[:, support] += oriented[support] * azimuthal_weight(chi[support], kappa, director)
    return out.reshape(kappa.size, *q.shape)
