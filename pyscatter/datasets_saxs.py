"""Seeded SAXS curves with analytic integral parameters: ground truth for the SAXS invariants.

Two particle models, each a map of positions whose size changes along the scan:

spheres
    Homogeneous spheres of radius ``R`` (optionally a Gaussian distribution of radii of
    relative width ``polydispersity``, on 16 Gauss-Hermite nodes), number-weighted::

        P(q, R) = [3 (sin x - x cos x) / x^3]^2,  x = q R
        I(q) = i0 <V^2 P(q, R)> / <V^2>,            V = 4 pi R^3 / 3

    with the truths ``Rg^2 = (3/5) <V^2 R^2> / <V^2>``; the invariant of the whole curve
    ``Q* = integral_0^inf q^2 I dq = i0 2 pi^2 <V> / <V^2>`` (for one sphere
    ``integral_0^inf q^2 P dq = 3 pi / (2 R^3) = 2 pi^2 / V``: by Parseval, the invariant
    ``2 pi^2 drho^2 phi`` of dilute particles over ``n drho^2 V^2``); and the Porod constant
    ``K = lim q^4 I = i0 (9/2) <V^2 R^-4> / <V^2>`` (``q^4 P -> 9 cos^2(qR) / R^4``, whose mean
    is ``9 / (2 R^4)`` = ``2 pi S / V^2``).
chains
    Gaussian chains of radius of gyration ``Rg`` (Debye function)::

        I(q) = i0 2 (exp(-u) - 1 + u) / u^2,  u = (q Rg)^2

    Their invariant diverges (``I ~ 2 i0 / (q Rg)^2``) and there is no Porod regime: the
    truths are Rg and i0, and the invariant over a finite range (by quadrature).

Counts are Poisson draws of ``I(q) + background`` (``i0`` is the flux: counts at q = 0), with
``sigma = sqrt(max(counts, 1))``.

Examples
--------
>>> from pyscatter.datasets_saxs import saxs_map
>>> m = saxs_map((2, 3), kind="spheres", rng=0)
>>> m.intensity.shape, m.rg.shape
((2, 3, 600), (2, 3))
>>> bool(np.allclose(m.rg, np.sqrt(0.6) * m.size))
True
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import ArrayLike, NDArray

from pyscatter.errors import InputError

__all__ = ["KINDS", "SaxsMap", "debye", "saxs_map", "sphere_form_factor", "sphere_intensity"]

KINDS = ("spheres", "chains")
_NODES, _WEIGHTS = np.polynomial.hermite_e.hermegauss(16)
_DEFAULT_Q = np.linspace(0.02, 6.0, 600)  # 1/nm


def sphere_form_factor(q: ArrayLike, radius: float) -> NDArray[np.float64]:
    """``[3 (sin x - x cos x) / x^3]^2`` with ``x = q R`` (1 at q = 0)."""
    x = np.asarray(q, dtype=np.float64) * radius
    small = np.abs(x) < 1e-3
    xs = np.where(small, 1.0, x)
    amp = np.where(small, 1.0 - x * x / 10.0, 3.0 * (np.sin(xs) - xs * np.cos(xs)) / xs**3)
    return amp * amp


def debye(q: ArrayLike, rg: float) -> NDArray[np.float64]:
    """The Debye function ``2 (exp(-u) - 1 + u) / u^2``, ``u = (q Rg)^2`` (1 at q = 0)."""
    u = (np.asarray(q, dtype=np.float64) * rg) ** 2
    small = u < 1e-4
    us = np.where(small, 1.0, u)
    return np.where(small, 1.0 - u / 3.0 + u * u / 12.0, 2.0 * (np.expm1(-us) + us) / us**2)


def _radii(radius: float, polydispersity: float) -> tuple[np.ndarray, np.ndarray]:
    """Radii and number weights (sum 1) of the size distribution."""
    if polydispersity == 0:
        return np.array([radius]), np.array([1.0])
    return radius * (1.0 + polydispersity * _NODES), _WEIGHTS / _WEIGHTS.sum()


def sphere_intensity(
    q: ArrayLike, radius: float, *, polydispersity: float = 0.0, i0: float = 1.0
) -> NDArray[np.float64]:
    """``i0 <V^2 P(q, R)> / <V^2>`` over the Gaussian distribution of radii (see above)."""
    radii, weights = _radii(radius, polydispersity)
    w = weights * radii**6
    total = sum(wj * sphere_form_factor(q, rj) for wj, rj in zip(w, radii, strict=True))
    return i0 * total / w.sum()


def sphere_truth(radius: float, polydispersity: float, i0: float) -> dict[str, float]:
    """Rg, I0, the invariant of the whole curve and the Porod constant of sphere curves."""
    radii, weights = _radii(radius, polydispersity)
    v = 4.0 * np.pi * radii**3 / 3.0
    v2 = (weights * v * v).sum()
    return {
        "rg": float(np.sqrt(0.6 * (weights * v * v * radii**2).sum() / v2)),
        "i0": i0,
        "invariant": float(i0 * 2 * np.pi**2 * (weights * v).sum() / v2),
        "porod_constant": float(i0 * 4.5 * (weights * v * v / radii**4).sum() / v2),
    }


@dataclass(frozen=True, eq=False)
class SaxsMap:
    """SAXS curves on a raster, their expected values and their analytic truths.

    Attributes
    ----------
    q : ndarray (n_q,)
        In 1/nm.
    expected : ndarray (*shape, n_q)
        Noise-free ``I(q) + background``.
    intensity, sigma : ndarray (*shape, n_q)
        Poisson counts and ``sqrt(max(counts, 1))`` (the expected values if ``noise`` is off,
        with ``sqrt(max(expected, 1))``).
    size : ndarray (*shape)
        Sphere radius or chain Rg (nm) of each position.
    rg, i0, invariant, porod_constant : ndarray (*shape)
        Truths (``invariant`` of the whole curve: ``inf`` for chains; ``porod_constant`` NaN
        for chains).
    """

    kind: str
    q: np.ndarray
    expected: np.ndarray
    intensity: np.ndarray
    sigma: np.ndarray
    size: np.ndarray
    polydispersity: float
    background: float
    flux: float
    rg: np.ndarray
    i0: np.ndarray
    invariant: np.ndarray
    porod_constant: np.ndarray
    dims: tuple[str, ...]

    def curve(self, q: ArrayLike, index: tuple[int, ...]) -> NDArray[np.float64]:
        """The noise-free ``I(q)`` (no background) of position ``index`` at any ``q``."""
        size = float(self.size[index])
        if self.kind == "chains":
            return self.flux * debye(q, size)
        return sphere_intensity(q, size, polydispersity=self.polydispersity, i0=self.flux)

    def write(self, path: str | os.PathLike, *, overwrite: bool = False) -> Path:
        """Write a USID file: ``Raw_Data`` (positions × q, counts over ``q`` in 1/nm) with its
        errors beside it, ``Raw_Data_Sigma`` (what an integration's ``Intensity`` and
        ``Intensity_Sigma`` are; the processes take it as their default source)."""
        from pyscatter.io.raw import MeasurementSpec, write_measurement
        from pyscatter.io.usid import Dim

        shape = self.size.shape
        n = int(np.prod(shape))
        spec = MeasurementSpec(
            position_dims=[
                Dim(d, "mm", np.arange(s, dtype=float))
                for d, s in zip(self.dims, shape, strict=True)
            ],
            spec_dims=[Dim("q", "1/nm", self.q)],
            dtype=np.float64,
            quantity="Intensity",
            units="counts",
            attrs={"translator": "pyscatter.datasets_saxs", "model": self.kind},
            extra={"Raw_Data_Sigma": self.sigma.reshape(n, -1)},
            extra_attrs={"Raw_Data_Sigma": {"units": "counts", "quantity": "Intensity sigma"}},
        )
        frames = iter(self.intensity.reshape(n, -1))
        return write_measurement(path, spec, frames, overwrite=overwrite)


def saxs_map(
    shape: tuple[int, ...] = (4, 5),
    *,
    kind: str = "spheres",
    sizes: tuple[float, float] = (4.0, 6.0),
    polydispersity: float = 0.0,
    flux: float = 1e6,
    background: float = 0.0,
    q: ArrayLike | None = None,
    noise: bool = True,
    rng: int | np.random.Generator | None = 0,
) -> SaxsMap:
    """A raster of SAXS curves of spheres or Gaussian chains with known integral parameters.

    Parameters
    ----------
    shape : tuple of int
        Positions (at most 4 dims, named like the synthetic scans: ``X``; ``Y, X`` …).
    kind : {"spheres", "chains"}
    sizes : (float, float)
        Radius (spheres) or Rg (chains) in nm, from the first to the last position (linear).
    polydispersity : float
        Relative width of the Gaussian distribution of sphere radii (0 to 0.15).
    flux : float
        Counts at q = 0 (``i0``).
    background : float
        Constant counts added to every bin.
    q : array, optional
        Increasing q axis in 1/nm; default 600 bins from 0.02 to 6.
    noise : bool
        Poisson draws (default) or the expected values.
    rng : int or Generator

    Returns
    -------
    SaxsMap
    """
    if kind not in KINDS:
        raise InputError(f"kind must be one of {', '.join(KINDS)}; got {kind!r}")
    if not 0 <= polydispersity <= 0.15 or (polydispersity and kind != "spheres"):
        raise InputError(
            f"polydispersity must be within [0, 0.15] (spheres only); got {polydispersity!r}"
        )
    if not (len(shape) in (1, 2, 3, 4) and all(int(s) > 0 for s in shape)):
        raise InputError(f"shape must be 1 to 4 positive sizes; got {shape!r}")
    if not (min(sizes) > 0 and flux > 0 and background >= 0):
        raise InputError(f"sizes and flux must be positive, background >= 0; got {sizes}, {flux}")
    qs = _DEFAULT_Q.copy() if q is None else np.asarray(q, dtype=np.float64)
    if qs.ndim != 1 or qs.size < 2 or not np.all(np.diff(qs) > 0) or qs[0] <= 0:
        raise InputError("q must be an increasing 1-D axis of positive values")
    n = int(np.prod(shape))
    size = np.linspace(sizes[0], sizes[1], n)
    curves, truths = [], []
    for s in size:
        if kind == "spheres":
            curves.append(sphere_intensity(qs, s, polydispersity=polydispersity, i0=flux))
            truths.append(sphere_truth(s, polydispersity, flux))
        else:
            curves.append(flux * debye(qs, s))
            truths.append({"rg": s, "i0": flux, "invariant": np.inf, "porod_constant": np.nan})
    expected = np.asarray(curves) + background
    gen = np.random.default_rng(rng)
    counts = gen.poisson(expected).astype(np.float64) if noise else expected.copy()
    sigma = np.sqrt(np.maximum(counts, 1.0))
    names = {
        1: ("X",),
        2: ("Y", "X"),
        3: ("Field", "Y", "X"),
        4: ("Temperature", "Field", "Y", "X"),
    }

    def grid(key: str) -> np.ndarray:
        return np.array([t[key] for t in truths], dtype=np.float64).reshape(shape)

    return SaxsMap(
        kind=kind,
        q=qs,
        expected=expected.reshape(*shape, -1),
        intensity=counts.reshape(*shape, -1),
        sigma=sigma.reshape(*shape, -1),
        size=size.reshape(shape),
        polydispersity=float(polydispersity),
        background=float(background),
        flux=float(flux),
        rg=grid("rg"),
        i0=grid("i0"),
        invariant=grid("invariant"),
        porod_constant=grid("porod_constant"),
        dims=names[len(shape)],
    )
