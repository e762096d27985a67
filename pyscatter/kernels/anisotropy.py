"""Anisotropy of a cake I(χ, q) against the polarization direction (RSoXS), with σ.

Pure numpy: no file, no pyFAI.

For every position with polarization direction χ_pol (pyFAI's chi of the electric field, in
degrees), the chi bins of a cake are split into

* parallel sectors, χ_pol ± w and χ_pol + 180° ± w: bins whose centre ``c`` has
  ``|d| <= w`` with ``d = ((c - χ_pol + 90) mod 180) - 90``;
* perpendicular sectors, χ_pol ± 90° ± w: bins with ``90 - |d| <= w``;

(a bin whose centre lies on a sector edge is inside). In each sector and q bin, the finite
bins (I and σ finite) are averaged with equal weights,
``I_s = (1/n) Σ I_k`` and ``σ_s = sqrt(Σ σ_k²) / n``; then
``A = (I∥ - I⊥) / (I∥ + I⊥)`` with linear propagation (I∥ and I⊥ come from disjoint bins)
``σ_A = 2 sqrt(I⊥² σ∥² + I∥² σ⊥²) / (I∥ + I⊥)²``.

Why equal weights: a cake bin already is a normalised intensity (counts over the solid
angle and polarization sums of its pixels), so every bin estimates the same I(χ, q); the
unbiased mean of the bins is their plain mean. Inverse-variance weights from the data's own
σ (Poisson, σ² ∝ I) would give low bins more weight and pull the mean down, by more where
the pattern is more anisotropic, biasing A; the bins' pixel sums (the ideal weights) are not
stored in the cake. With equal weights a pattern ``B (1 + a cos 2(χ - χ_E))`` gives
``I_s = B (1 + a F_s)`` with ``F_s = sinc_Δ · mean_k cos 2(c_k - χ_E)``,
``sinc_Δ = sin Δ / Δ`` (Δ the bin width in rad: the mean of ``cos 2χ`` over one bin), which
is exactly ``± sin 2w / 2w`` when χ_E = χ_pol and the sector's bins tile [χ_pol - w, χ_pol + w]
(see :func:`sector_factor`).

Examples
--------
>>> chi = np.arange(-179.5, 180.0, 1.0)
>>> par, perp = sector_masks(chi, np.array([0.0]), 10.0)
>>> int(par.sum()), int(perp.sum())
(40, 40)
>>> two_w = np.radians(20.0)  # the bins tile [-10, 10]: F = sin 2w / 2w
>>> bool(abs(sector_factor(chi, 0.0, 10.0, 0.0) - np.sin(two_w) / two_w) < 1e-12)
True
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["AnisotropyResult", "anisotropy", "sector_factor", "sector_masks", "sector_mean"]

#: Tolerance (degrees) of a bin centre on a sector edge.
EDGE_TOLERANCE_DEG = 1e-9


@dataclass(frozen=True)
class AnisotropyResult:
    """Per position and q bin (positions × q), float64; NaN where a sector has no finite bin."""

    parallel: np.ndarray
    parallel_sigma: np.ndarray
    perpendicular: np.ndarray
    perpendicular_sigma: np.ndarray
    a: np.ndarray
    a_sigma: np.ndarray


def _offset(chi_deg: np.ndarray, polarization_deg: np.ndarray) -> np.ndarray:
    """``d`` in [-90, 90): the chi-bin centres relative to χ_pol, modulo 180° (positions × chi)."""
    chi = np.asarray(chi_deg, dtype=np.float64)[None, :]
    pol = np.asarray(polarization_deg, dtype=np.float64).reshape(-1, 1)
    return np.mod(chi - pol + 90.0, 180.0) - 90.0


def sector_masks(
    chi_deg: np.ndarray, polarization_deg: np.ndarray, width_deg: float
) -> tuple[np.ndarray, np.ndarray]:
    """Boolean (positions × chi) masks of the parallel and perpendicular chi bins.

    Parameters
    ----------
    chi_deg : ndarray
        (n_chi,) centres of the cake's chi bins (degrees, pyFAI's chi).
    polarization_deg : ndarray
        (n_pos,) direction χ_pol of the electric field at every position (degrees, pyFAI's chi).
    width_deg : float
        Half width w of each sector (degrees), in (0, 45].
    """
    d = np.abs(_offset(chi_deg, polarization_deg))
    parallel = d <= width_deg + EDGE_TOLERANCE_DEG
    perpendicular = 90.0 - d <= width_deg + EDGE_TOLERANCE_DEG
    return parallel, perpendicular


def sector_mean(
    intensity: np.ndarray, sigma: np.ndarray, mask: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Equal-weight mean of the finite chi bins in ``mask`` and its propagated σ.

    Parameters
    ----------
    intensity, sigma : ndarray
        (n_pos, n_chi, n_q) cake and its σ.
    mask : ndarray
        (n_pos, n_chi) bool: the sector's bins.

    Returns
    -------
    mean, sigma : ndarray
        (n_pos, n_q) float64; NaN where no bin of the sector is finite.
    """
    use = mask[:, :, None] & np.isfinite(intensity) & np.isfinite(sigma)
    n = use.sum(axis=1)
    total = np.where(use, intensity, 0.0).sum(axis=1, dtype=np.float64)
    variance = np.where(use, np.square(sigma, dtype=np.float64), 0.0).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(n > 0, total / n, np.nan)
        err = np.where(n > 0, np.sqrt(variance) / n, np.nan)
    return mean, err


def anisotropy(
    intensity: np.ndarray,
    sigma: np.ndarray,
    chi_deg: np.ndarray,
    polarization_deg: np.ndarray,
    width_deg: float,
) -> AnisotropyResult:
    """I∥, I⊥ and A = (I∥ - I⊥)/(I∥ + I⊥) with σ of a block of cakes (see the module).

    Parameters
    ----------
    intensity, sigma : ndarray
        (n_pos, n_chi, n_q) cakes and their σ (NaN bins are left out).
    chi_deg : ndarray
        (n_chi,) chi-bin centres (degrees).
    polarization_deg : ndarray
        (n_pos,) χ_pol of every position (degrees); NaN gives NaN results.
    width_deg : float
        Sector half width w (degrees).
    """
    intensity = np.asarray(intensity, dtype=np.float64)
    sigma = np.asarray(sigma, dtype=np.float64)
    par_mask, perp_mask = sector_masks(chi_deg, polarization_deg, width_deg)
    par, par_s = sector_mean(intensity, sigma, par_mask)
    perp, perp_s = sector_mean(intensity, sigma, perp_mask)
    total = par + perp
    with np.errstate(invalid="ignore", divide="ignore"):
        a = (par - perp) / total
        a_s = 2.0 * np.sqrt(np.square(perp * par_s) + np.square(par * perp_s)) / np.square(total)
    return AnisotropyResult(par, par_s, perp, perp_s, a, a_s)


def sector_factor(
    chi_deg: np.ndarray, polarization_deg: float, width_deg: float, chi_e_deg: float
) -> float:
    """``F∥``: the equal-weight mean of ``cos 2(χ - χ_E)`` over the parallel sector's bins.

    Each bin contributes its bin average ``sinc_Δ cos 2(c_k - χ_E)`` (Δ: the bin width, from
    the spacing of ``chi_deg``). ``F⊥`` is the same with ``polarization_deg + 90``. A pattern
    ``B (1 + a cos 2(χ - χ_E))`` then has ``A = a (F∥ - F⊥) / (2 + a (F∥ + F⊥))``, which is
    ``a sin 2w / 2w`` when χ_E = χ_pol and the bins tile the sectors.
    """
    chi = np.asarray(chi_deg, dtype=np.float64)
    step = np.radians(float(np.median(np.diff(chi)))) if chi.size > 1 else 0.0
    sinc = np.sin(step) / step if step > 0 else 1.0
    mask, _ = sector_masks(chi, np.array([polarization_deg]), width_deg)
    centres = chi[mask[0]]
    return float(sinc * np.mean(np.cos(2.0 * np.radians(centres - chi_e_deg))))
