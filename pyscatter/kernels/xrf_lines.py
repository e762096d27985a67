"""Fluorescence line groups of the elements and the detector's response: the columns of a linear XRF fit.

Line groups
    One group per element and family (``"Fe_K"``, ``"Pb_L"``, ``"Pb_M"``): every IUPAC line of
    the family (``KL3``, ``L3M5``, ``M5N7`` …) whose initial vacancy is excitable (edge below the
    excitation energy), energies from xraylib's ``LineEnergy``. The relative intensities are
    xraylib's ``CS_FluorLine_Kissel`` at the excitation energy: the photo-ionisation cross
    section of the line's subshell (Kissel), the vacancies moved to it by Coster-Kronig
    transitions and by the cascade from deeper shells, times its fluorescence yield and the
    line's radiative rate. For a K group this is the radiative rates (one subshell); for L and M
    groups the subshell weights depend on the excitation energy, as they do in a measurement.
    Within a group the intensities are divided by their sum; a family whose strongest line is
    outside the energy range gives no group (Cu L at 17 keV with the default 1 keV threshold:
    its L3M5 line is at 0.93 keV); lines below ``min_ratio`` of that sum or outside the energy
    range are dropped and the rest renormalised to sum 1, so a group's area is the counts of its
    retained lines.

Detector response
    Gaussian lines of FWHM ``sqrt(noise^2 + 2.3548^2 fano epsilon E)`` (electronic noise and
    Fano statistics of the charge created in the detector). Each line's column holds its
    channel-integrated area: the difference of the normal cumulative distribution at the channel
    edges (midpoints between channel energies, the end edges half a spacing outside), so a line
    has area 1 over the whole energy axis and the part of it inside the spectrum in the channels.
    Optional escape peaks: a photon absorbed in the detector by its K shell may lose the
    detector's K fluorescence photon (Si Kα at 1.74 keV), leaving a peak at ``E - E_K``. The
    fraction escaping from a thick detector at normal incidence (Reed & Ware 1972)::

        f_i(E) = 1/2 omega_K (1 - 1/J_K) p_i [1 - (mu_i / mu_E) ln(1 + mu_E / mu_i)]

    with ``omega_K`` the detector's K fluorescence yield, ``J_K`` its K jump ratio, ``p_i`` the
    fraction of K emission in line ``i`` (Kα = KL2 + KL3, Kβ = KM2 + KM3, at their rate-weighted
    energies), ``mu`` the detector's total mass attenuation (all from xraylib) at the incident
    energy and at the escaping line's energy; zero below the detector's K edge. The parent line
    keeps ``1 - sum_i f_i``, so a column still has area 1 in all.

Examples
--------
>>> import numpy as np
>>> from pyscatter.kernels.xrf_lines import DetectorResponse, design_matrix, line_groups
>>> groups = line_groups(["Fe", "Pb"], excitation_keV=17.0)
>>> [g.name for g in groups]
['Fe_K', 'Pb_L', 'Pb_M']
>>> energy = 0.01 * np.arange(2048)
>>> a = design_matrix(energy, groups, DetectorResponse())
>>> a.shape, round(float(a[:, 0].sum()), 6)
((2048, 3), 1.0)
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import xraylib
from numpy.typing import ArrayLike, NDArray
from scipy.special import ndtr

from pyscatter.errors import InputError

__all__ = [
    "FAMILIES",
    "DetectorResponse",
    "LineGroup",
    "design_matrix",
    "escape_lines",
    "line_groups",
]

FloatArray = NDArray[np.float64]

#: the families a group can be made of, and the subshells whose vacancies give their lines
FAMILIES = ("K", "L", "M")
_FWHM_PER_SIGMA = 2.0 * np.sqrt(2.0 * np.log(2.0))  # 2.3548
_LINE_NAME = re.compile(r"^(K|L[1-3]|M[1-5])([KLMNOPQ][1-7])_LINE$")


def _family_lines() -> dict[str, list[tuple[str, int]]]:
    """``{family: [(IUPAC name, xraylib line code), ...]}`` of every xraylib IUPAC line."""
    out: dict[str, list[tuple[str, int]]] = {f: [] for f in FAMILIES}
    for name in dir(xraylib):
        match = _LINE_NAME.match(name)
        if match:
            out[match.group(1)[0]].append((name[: -len("_LINE")], int(getattr(xraylib, name))))
    for lines in out.values():
        lines.sort(key=lambda item: -item[1])  # xraylib's order: KL1, KL2, ... (codes -1, -2, ...)
    return out


_LINES = _family_lines()
_EDGES = {
    "K": ("K_SHELL",),
    "L": ("L1_SHELL", "L2_SHELL", "L3_SHELL"),
    "M": ("M1_SHELL", "M2_SHELL", "M3_SHELL", "M4_SHELL", "M5_SHELL"),
}


@dataclass(frozen=True)
class LineGroup:
    """The lines of one element's family, fitted with one area.

    Attributes
    ----------
    element : str
        Chemical symbol (``"Fe"``).
    family : str
        ``"K"``, ``"L"`` or ``"M"``.
    energies_keV : ndarray
        (n_lines,) float64, line energies.
    ratios : ndarray
        (n_lines,) float64, relative intensities summing to 1.
    lines : tuple of str
        IUPAC names of the lines (``"KL3"``, ``"L3M5"`` …), same order.
    """

    element: str
    family: str
    energies_keV: FloatArray  # noqa: N815 - the unit is part of the name
    ratios: FloatArray
    lines: tuple[str, ...] = field(default=())

    @property
    def name(self) -> str:
        """``"<element>_<family>"``, e.g. ``"Fe_K"``."""
        return f"{self.element}_{self.family}"


def _atomic_number(symbol: str) -> int:
    try:
        z = int(xraylib.SymbolToAtomicNumber(symbol))
    except ValueError:
        z = 0
    if not 1 <= z <= 98:
        raise InputError(
            f"elements: unknown element {symbol!r}; allowed: a chemical symbol H to Cf ('Fe'), "
            "optionally with a family ('Pb_L', families K, L, M)"
        )
    return z


def _parse_element(item: str, families: Sequence[str]) -> tuple[str, tuple[str, ...], bool]:
    """``(symbol, families, explicit)`` of ``"Fe"`` or ``"Pb_L"``."""
    if not isinstance(item, str) or not item:
        raise InputError(f"elements: expected symbols such as 'Fe' or 'Pb_L', got {item!r}")
    symbol, _, family = item.partition("_")
    _atomic_number(symbol)
    if family:
        if family not in FAMILIES:
            raise InputError(
                f"elements: unknown family {family!r} in {item!r}; allowed: {FAMILIES}"
            )
        return symbol, (family,), True
    return symbol, tuple(families), False


def _group(
    z: int, symbol: str, family: str, excitation_keV: float, lo: float, hi: float, min_ratio: float
) -> LineGroup | None:
    """The group of one family (None when no line is excitable and inside ``[lo, hi]``)."""
    names, energies, weights = [], [], []
    for name, code in _LINES[family]:
        try:
            energy = xraylib.LineEnergy(z, code)
            weight = xraylib.CS_FluorLine_Kissel(z, code, excitation_keV)
        except ValueError:  # no such line for this element, or not excitable
            continue
        if energy > 0 and weight > 0:
            names.append(name)
            energies.append(energy)
            weights.append(weight)
    if not weights:
        return None
    e = np.asarray(energies, dtype=np.float64)
    w = np.asarray(weights, dtype=np.float64)
    w /= w.sum()
    if not lo <= e[np.argmax(w)] <= hi:  # the family is used only with its strongest line
        return None
    keep = (w >= min_ratio) & (e >= lo) & (e <= hi)
    order = np.argsort(e[keep], kind="stable")
    ratios = w[keep][order]
    return LineGroup(
        element=symbol,
        family=family,
        energies_keV=e[keep][order],
        ratios=ratios / ratios.sum(),
        lines=tuple(np.asarray(names)[keep][order].tolist()),
    )


def line_groups(
    elements: Sequence[str],
    *,
    excitation_keV: float,
    families: Sequence[str] = FAMILIES,
    energy_range_keV: tuple[float, float | None] = (1.0, None),
    min_ratio: float = 1e-3,
) -> list[LineGroup]:
    """The fluorescence line groups of ``elements`` excited at ``excitation_keV``.

    Parameters
    ----------
    elements : sequence of str
        Chemical symbols (``"Fe"``: every family of ``families`` with a line in range) or
        symbol and family (``"Pb_L"``: that family only, an error if it has no line in range).
    excitation_keV : float
        Incident photon energy; only vacancies with an edge below it give lines.
    families : sequence of str
        The families tried for a bare symbol, among ``"K"``, ``"L"``, ``"M"``.
    energy_range_keV : (float, float or None)
        Lines outside ``[lo, hi]`` are dropped (``hi`` None: no upper limit), e.g. those below
        the detector's threshold or the fit range.
    min_ratio : float
        Lines weaker than this fraction of their group's intensity are dropped.

    Returns
    -------
    list of LineGroup
        In the order of ``elements``, families K, L, M within an element.

    Raises
    ------
    InputError
        An unknown element or family, a bad energy, or an element with no line in range.
    """
    if not np.isfinite(excitation_keV) or excitation_keV <= 0:
        raise InputError(f"excitation_keV: expected a positive energy, got {excitation_keV!r}")
    lo, hi = energy_range_keV
    hi_value = np.inf if hi is None else float(hi)
    if not 0 <= float(lo) < hi_value:
        raise InputError(f"energy_range_keV: expected 0 <= lo < hi, got {energy_range_keV!r}")
    if not 0 <= min_ratio < 1:
        raise InputError(f"min_ratio: expected 0 <= min_ratio < 1, got {min_ratio!r}")
    for family in families:
        if family not in FAMILIES:
            raise InputError(f"families: unknown family {family!r}; allowed: {FAMILIES}")
    if isinstance(elements, str):
        elements = [elements]
    out: list[LineGroup] = []
    seen: set[str] = set()
    for item in elements:
        symbol, fams, explicit = _parse_element(item, families)
        z = _atomic_number(symbol)
        found = []
        for family in FAMILIES:
            if family in fams:
                group = _group(z, symbol, family, excitation_keV, float(lo), hi_value, min_ratio)
                if group is not None:
                    found.append(group)
        if not found:
            what = f"family {fams[0]}" if explicit else f"families {tuple(fams)}"
            raise InputError(
                f"elements: {item!r} has no line of its {what} excited at {excitation_keV} keV "
                f"within {energy_range_keV} keV"
            )
        for group in found:
            if group.name in seen:
                raise InputError(f"elements: {group.name} asked twice (from {item!r})")
            seen.add(group.name)
            out.append(group)
    return out


@dataclass(frozen=True)
class DetectorResponse:
    """An energy-dispersive detector's line shape: Gaussian peaks and optional escape peaks.

    Attributes
    ----------
    noise_keV : float
        Electronic noise, as a FWHM in keV.
    fano : float
        Fano factor of the detector material.
    epsilon_keV : float
        Mean energy per electron-hole pair (Si 3.85 eV, Ge 2.96 eV).
    escape : bool
        Add the escape peaks of the detector's K lines.
    detector : str
        The detector's element (``"Si"``, ``"Ge"``), for the escape peaks.
    """

    noise_keV: float = 0.100  # noqa: N815 - the unit is part of the name
    fano: float = 0.114
    epsilon_keV: float = 0.00385  # noqa: N815
    escape: bool = False
    detector: str = "Si"

    def __post_init__(self) -> None:
        for name in ("noise_keV", "fano", "epsilon_keV"):
            value = getattr(self, name)
            if not (np.isfinite(value) and value >= 0):
                raise InputError(f"DetectorResponse.{name}: expected >= 0, got {value!r}")
        if self.noise_keV == 0 and (self.fano == 0 or self.epsilon_keV == 0):
            raise InputError("DetectorResponse: zero width (noise_keV and fano*epsilon_keV both 0)")
        if self.escape:
            _atomic_number(self.detector)

    def fwhm_keV(self, e: ArrayLike) -> FloatArray:  # noqa: N802
        """FWHM in keV at energies ``e`` (keV): ``sqrt(noise^2 + 2.3548^2 fano epsilon E)``."""
        e = np.asarray(e, dtype=np.float64)
        return np.sqrt(self.noise_keV**2 + _FWHM_PER_SIGMA**2 * self.fano * self.epsilon_keV * e)


def escape_lines(
    response: DetectorResponse, energy_keV: ArrayLike
) -> tuple[FloatArray, FloatArray]:
    """Escape peaks of lines at ``energy_keV``: ``(shifts (n_esc,), fractions (n_lines, n_esc))``.

    An escape peak of a line at ``E`` lies at ``E - shifts[i]`` with a fraction
    ``fractions[:, i]`` of the line's photons (the model in the module's docstring).
    """
    z = _atomic_number(response.detector)
    e = np.atleast_1d(np.asarray(energy_keV, dtype=np.float64))
    groups = (("KL2", "KL3"), ("KM2", "KM3"))
    rates = {
        name: xraylib.RadRate(z, code) for name, code in _LINES["K"] if name in sum(groups, ())
    }
    shifts, weights = [], []
    for names in groups:
        rate = sum(rates[n] for n in names)
        shifts.append(
            sum(rates[n] * xraylib.LineEnergy(z, getattr(xraylib, n + "_LINE")) for n in names)
            / rate
        )
        weights.append(rate)
    prefactor = (
        0.5
        * xraylib.FluorYield(z, xraylib.K_SHELL)
        * (1 - 1 / xraylib.JumpFactor(z, xraylib.K_SHELL))
    )
    edge = xraylib.EdgeEnergy(z, xraylib.K_SHELL)
    fractions = np.zeros((e.size, len(shifts)))
    above = e > edge
    mu_e = np.array([xraylib.CS_Total(z, float(v)) for v in e[above]])
    for i, (shift, weight) in enumerate(zip(shifts, weights, strict=True)):
        mu_i = xraylib.CS_Total(z, shift)
        ratio = mu_i / mu_e
        fractions[above, i] = prefactor * weight * (1 - ratio * np.log1p(1 / ratio))
    return np.asarray(shifts), fractions


def _channel_edges(energy_keV: ArrayLike) -> FloatArray:
    e = np.asarray(energy_keV, dtype=np.float64)
    if e.ndim != 1 or e.size < 2 or not np.all(np.isfinite(e)):
        raise InputError(
            f"energy_keV: expected a 1-D finite axis of >= 2 channels, got shape {np.shape(e)}"
        )
    step = np.diff(e)
    if not np.all(step > 0):
        raise InputError("energy_keV: channel energies must increase strictly")
    mid = 0.5 * (e[1:] + e[:-1])
    return np.concatenate(([e[0] - 0.5 * step[0]], mid, [e[-1] + 0.5 * step[-1]]))


def design_matrix(
    energy_keV: ArrayLike, groups: Sequence[LineGroup], response: DetectorResponse
) -> FloatArray:
    """Columns of the line groups: ``(n_channels, n_groups)`` counts per unit group area.

    Parameters
    ----------
    energy_keV : array_like
        (n_channels,) energy of each channel's centre, strictly increasing.
    groups : sequence of LineGroup
        From :func:`line_groups`.
    response : DetectorResponse
        Peak widths and escape peaks.

    Returns
    -------
    ndarray
        (n_channels, n_groups) float64; column ``j`` is ``sum_lines ratio * (channel-integrated
        Gaussian)`` (plus escape peaks), of area 1 over the whole energy axis: a column sums to
        less than 1 only by the part of its lines outside the spectrum.
    """
    edges = _channel_edges(energy_keV)
    if len(groups) == 0:
        raise InputError("groups: expected at least one line group")
    out = np.zeros((edges.size - 1, len(groups)))
    for j, group in enumerate(groups):
        centres = np.asarray(group.energies_keV, dtype=np.float64)
        weights = np.asarray(group.ratios, dtype=np.float64)
        widths = response.fwhm_keV(centres) / _FWHM_PER_SIGMA
        if response.escape:
            shifts, fractions = escape_lines(response, centres)
            esc_centres = (centres[:, None] - shifts[None, :]).ravel()
            esc_weights = (weights[:, None] * fractions).ravel()
            weights = weights * (1 - fractions.sum(axis=1))
            keep = esc_centres > 0
            widths = np.concatenate(
                (widths, response.fwhm_keV(esc_centres[keep]) / _FWHM_PER_SIGMA)
            )
            centres = np.concatenate((centres, esc_centres[keep]))
            weights = np.concatenate((weights, esc_weights[keep]))
        cdf = ndtr((edges[None, :] - centres[:, None]) / widths[:, None])
        out[:, j] = weights @ np.diff(cdf, axis=1)
    return out
