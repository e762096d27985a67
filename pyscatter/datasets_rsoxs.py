"""A synthetic RSoXS energy series: anisotropic scattering across an absorption edge, and its truth.

Soft X-rays (default 280–290 eV across the carbon K edge, λ ≈ 4.3–4.4 nm) on a small detector
whose beam centre is near the middle of the frame, so that the whole circle is seen up to
:attr:`RsoxsScan.q_full` at every energy. The pattern of energy E is

``I(q, χ, E) = B(q, E) · (1 + a(q, E) cos 2(χ - χ_E))``

with a SAXS-like B (a Lorentzian decay and a ring at 0.15 nm⁻¹, scaled by a resonant contrast
near the edge) and a known anisotropy amplitude a(q, E) = a_E(E) · g(q): a_E has a resonance at
:data:`EDGE_EV` (negative below the edge, strongly positive on it), g(q) a broad bump. χ_E is
the direction (pyFAI's chi, degrees) of the electric field of each position; the pattern is
strongest along it when a > 0.

**Corrections**: the expected counts of a pixel are that pattern times the pixel's solid angle
(relative to the PONI pixel, pyFAI's ``solidAngleArray``) and ``scale``; no polarization factor
is applied. Integrate with ``correct_solid_angle`` (the default) and no ``polarization_factor``
(the default): the cake is then I(q, χ, E) itself, whatever χ_E (pyFAI's polarization correction
has one fixed axis for the whole scan, so a per-position rotation could not be undone there).

**The true anisotropy** of a sector pair of half width w (:func:`true_anisotropy`): a cake bin
of width Δ centred at c holds the bin average of the pattern, ``B (1 + a sinc_Δ cos 2(c - χ_E))``
with ``sinc_Δ = sin Δ / Δ``; the equal-weight mean of the bins of the parallel sectors is
``B (1 + a F∥)`` with ``F∥ = sinc_Δ mean_k cos 2(c_k - χ_E)``, and likewise ``F⊥``, so
``A = a (F∥ - F⊥) / (2 + a (F∥ + F⊥))``. When χ_pol = χ_E and the sectors are whole bins
(``w`` a multiple of Δ, χ_pol on a bin edge), the bin averages tile [χ_pol - w, χ_pol + w]:
``F∥ = (1/2w) ∫ cos 2x dx = sin 2w / 2w = -F⊥`` and ``A = a sin 2w / 2w``.

Examples
--------
>>> scan = rsoxs_series([280.0, 285.0, 290.0], frame_shape=(64, 64))
>>> scan.frames.shape, scan.dim, scan.units
((3, 64, 64), 'Energy', 'eV')
>>> [round(p["wavelength"] * 1e9, 4) for p in scan.ponis]
[4.428, 4.3503, 4.2753]
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from pyscatter.datasets_geometry import GeometryScan, _check_values
from pyscatter.datasets_model import PIXEL_SIZE, build_integrator
from pyscatter.errors import InputError
from pyscatter.io.geometry_series import energy_to_wavelength
from pyscatter.kernels.anisotropy import sector_factor

__all__ = [
    "EDGE_EV",
    "RsoxsScan",
    "anisotropy_amplitude",
    "contrast",
    "rsoxs_series",
    "true_anisotropy",
]

#: Energy (eV) of the resonance of the anisotropy and of the contrast.
EDGE_EV = 285.0
#: Half width (eV) of the resonances.
EDGE_WIDTH_EV = 0.8
#: q (nm⁻¹) seen on the whole circle at every default energy (inscribed circle at 290 eV).
Q_FULL_NM = 0.32
#: Beamstop radius (pixels from the beam centre), the same at every energy.
BEAMSTOP_PX = 6.0


def _lorentz(energy_ev: Any) -> np.ndarray:
    e = np.asarray(energy_ev, dtype=np.float64)
    return 1.0 / (1.0 + ((e - EDGE_EV) / EDGE_WIDTH_EV) ** 2)


def anisotropy_amplitude(q_nm: Any, energy_ev: Any) -> np.ndarray:
    """a(q, E) = a_E(E) g(q): ``a_E = -0.12 + 0.5 L(E)``, ``g = 0.6 + 0.4 exp(-(q - 0.15)² / 2·0.06²)``.

    ``L`` is a Lorentzian of half width :data:`EDGE_WIDTH_EV` at :data:`EDGE_EV`. Broadcasts.

    Examples
    --------
    >>> round(float(anisotropy_amplitude(0.15, EDGE_EV)), 6)
    0.38
    """
    q = np.asarray(q_nm, dtype=np.float64)
    a_e = -0.12 + 0.5 * _lorentz(energy_ev)
    return a_e * (0.6 + 0.4 * np.exp(-0.5 * ((q - 0.15) / 0.06) ** 2))


def contrast(energy_ev: Any) -> np.ndarray:
    """The resonant scale of B(q, E): ``1 + 1.5 L(E)``."""
    return 1.0 + 1.5 * _lorentz(energy_ev)


def isotropic_profile(q_nm: Any, energy_ev: Any) -> np.ndarray:
    """B(q, E) in counts per PONI-pixel solid angle (before ``scale``)."""
    q = np.asarray(q_nm, dtype=np.float64)
    shape = 60.0 / (1.0 + (q / 0.06) ** 2) + 4.0 + 40.0 * np.exp(-0.5 * ((q - 0.15) / 0.02) ** 2)
    return shape * contrast(energy_ev)


def true_anisotropy(
    q_nm: Any,
    energy_ev: Any,
    chi_e_deg: Any,
    *,
    chi_deg: np.ndarray,
    polarization_deg: Any,
    width_deg: float,
) -> np.ndarray:
    """The A(q, E) a cake with chi-bin centres ``chi_deg`` gives (see the module): positions × q.

    Parameters
    ----------
    q_nm : array_like
        (n_q,) q of the bins.
    energy_ev, chi_e_deg, polarization_deg : array_like
        (n_pos,) energy, field direction of the pattern, and χ_pol of the sectors.
    chi_deg : ndarray
        Centres of the cake's chi bins (degrees), equally spaced.
    width_deg : float
        Sector half width w.
    """
    q = np.asarray(q_nm, dtype=np.float64)[None, :]
    energies = np.atleast_1d(np.asarray(energy_ev, dtype=np.float64))
    chi_e = np.broadcast_to(np.asarray(chi_e_deg, dtype=np.float64), energies.shape)
    pol = np.broadcast_to(np.asarray(polarization_deg, dtype=np.float64), energies.shape)
    par = np.array(
        [sector_factor(chi_deg, p, width_deg, c) for p, c in zip(pol, chi_e, strict=True)]
    )
    perp = np.array(
        [sector_factor(chi_deg, p + 90.0, width_deg, c) for p, c in zip(pol, chi_e, strict=True)]
    )
    a = anisotropy_amplitude(q, energies[:, None])
    return a * (par - perp)[:, None] / (2.0 + a * (par + perp)[:, None])


@dataclass
class RsoxsScan(GeometryScan):
    """An RSoXS energy series and its truth: a :class:`~pyscatter.datasets_geometry.GeometryScan`
    (``dim`` Energy in eV; :meth:`write_images` writes EDF images with ESRF geometry headers,
    the ``Energy`` motor in eV) with the field direction of every position. Its
    ``polarization_factor`` is None: no polarization factor is in the frames.

    Attributes
    ----------
    chi_e : numpy.ndarray
        (n,) field direction χ_E of every position (pyFAI's chi, degrees).
    scale : float
        Counts scale of the pattern.
    q_full, q_beamstop : float
        q (nm⁻¹) up to which every position sees the whole circle, and above which no position
        is behind the beamstop.
    """

    chi_e: np.ndarray = field(default_factory=lambda: np.zeros(0))
    scale: float = 1.0
    q_full: float = Q_FULL_NM
    q_beamstop: float = 0.0

    def esrf_header(self, position: int) -> dict[str, str]:
        """The ESRF geometry keys of one position and its motors: ``Energy`` (eV) and ``EPU``,
        the field direction χ_E (degrees). ``translate … --motors "Energy[eV],EPU[deg]"`` keeps
        both (a scan whose EPU changes is no grid: the columns ``measured_Energy`` and
        ``measured_EPU`` are stored, the latter is the anisotropy's ``polarization_dataset``)."""
        header = super().esrf_header(position)
        header["motor_mne"] = f"{self.dim} EPU"
        header["motor_pos"] = f"{float(self.values[position])!r} {float(self.chi_e[position])!r}"
        return header

    def true_anisotropy(self, q_nm: Any, *, chi_deg: np.ndarray, polarization_deg: Any,
                        width_deg: float) -> np.ndarray:  # fmt: skip
        """:func:`true_anisotropy` at this scan's energies and field directions."""
        return true_anisotropy(
            q_nm, self.values, self.chi_e, chi_deg=chi_deg,
            polarization_deg=polarization_deg, width_deg=width_deg,
        )  # fmt: skip


def rsoxs_poni(frame_shape: tuple[int, int], energy_max_ev: float) -> dict[str, Any]:
    """Beam near the frame centre, no tilt; the distance puts ``Q_FULL_NM`` on the inscribed
    circle at ``energy_max_ev`` (the shortest wavelength sees the least q)."""
    n_row, n_col = frame_shape
    row_c, col_c = 0.5 * n_row + 0.3, 0.5 * n_col - 0.2
    r_in = PIXEL_SIZE * (min(row_c, n_row - row_c, col_c, n_col - col_c) - 1.0)
    lam = float(energy_to_wavelength(energy_max_ev * 1e-3))
    two_theta = 2.0 * math.asin(Q_FULL_NM * 1e9 * lam / (4.0 * math.pi))
    return {
        "dist": round(r_in / math.tan(two_theta), 6),
        "poni1": row_c * PIXEL_SIZE,
        "poni2": col_c * PIXEL_SIZE,
        "rot1": 0.0,
        "rot2": 0.0,
        "rot3": 0.0,
        "wavelength": lam,
        "pixel1": PIXEL_SIZE,
        "pixel2": PIXEL_SIZE,
        "shape": (int(n_row), int(n_col)),
    }


def rsoxs_series(
    energies_ev: Sequence[float] | None = None,
    *,
    polarization_deg: Any = 0.0,
    frame_shape: tuple[int, int] = (128, 128),
    scale: float = 20.0,
    noise: bool = True,
    rng: Any = 0,
) -> RsoxsScan:
    """Frames of an RSoXS energy series (see the module), Poisson counts.

    Parameters
    ----------
    energies_ev : sequence of float, optional
        Photon energies (eV) in [100, 2000]; default 21 energies 280–290 eV.
    polarization_deg : float or sequence of float
        χ_E of every position (pyFAI's chi of the field, degrees), or one for all.
    frame_shape : (int, int)
        Detector rows and columns.
    scale : float
        Counts per unit of the pattern (the isotropic part is 4–100 units).
    noise : bool
        Poisson counts; False: the expected counts rounded.
    rng : int or numpy.random.Generator
    """
    given = np.linspace(280.0, 290.0, 21) if energies_ev is None else energies_ev
    energies = _check_values(given, "energies_ev", 100.0, 2000.0)
    chi_e = np.broadcast_to(np.asarray(polarization_deg, dtype=np.float64), energies.shape)
    if chi_e.shape != energies.shape or not np.all(np.isfinite(chi_e)):
        raise InputError(
            f"polarization_deg = {polarization_deg!r}; expected one finite angle or one per energy"
        )
    if not (isinstance(scale, (int, float)) and scale > 0):
        raise InputError(f"scale = {scale!r}; expected a positive number")
    generator = np.random.default_rng(rng)
    base = rsoxs_poni(frame_shape, float(energies.max()))
    ponis = [dict(base, wavelength=float(energy_to_wavelength(e * 1e-3))) for e in energies]
    shape = tuple(base["shape"])
    frames = []
    mask = None
    for poni, energy, direction in zip(ponis, energies, chi_e, strict=True):
        ai = build_integrator(poni)
        q = ai.center_array(shape, unit="q_nm^-1")
        chi = ai.center_array(shape, unit="chi_rad")
        if mask is None:
            r_px = ai.center_array(shape, unit="r_mm") * 1e-3 / PIXEL_SIZE
            mask = r_px < BEAMSTOP_PX
        solid = np.asarray(ai.solidAngleArray(shape), dtype=np.float64)
        a = anisotropy_amplitude(q, energy)
        pattern = isotropic_profile(q, energy) * (
            1.0 + a * np.cos(2.0 * (chi - np.radians(direction)))
        )
        ideal = scale * pattern * solid
        frames.append(generator.poisson(ideal) if noise else np.rint(ideal))
    out = np.asarray(frames).astype(np.int32)
    assert mask is not None
    out[:, mask] = -1
    lam_min = min(p["wavelength"] for p in ponis)
    sin_bs = BEAMSTOP_PX * PIXEL_SIZE / math.hypot(BEAMSTOP_PX * PIXEL_SIZE, base["dist"])
    q_bs = 4.0 * math.pi * math.sin(0.5 * math.asin(sin_bs)) / lam_min * 1e-9
    return RsoxsScan(
        out, "Energy", "eV", energies, ponis, mask, (),
        polarization_factor=None,  # type: ignore[arg-type]
        chi_e=np.array(chi_e, dtype=np.float64), scale=float(scale),
        q_full=Q_FULL_NM, q_beamstop=q_bs,
    )  # fmt: skip
