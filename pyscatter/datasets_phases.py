"""Seeded synthetic I(q) maps made of known phases: ground truth for decomposition, clustering
and peak fitting.

Every position of a raster holds a mixture of ``n_phases`` phases with known fractions
(summing to 1); each phase has an I(q) signature: pseudo-Voigt Bragg peaks at known positions,
widths and shapes on its own smooth amorphous background. The expected counts are::

    I_p(q) = sum_k fractions[p, k] * signatures[k](q)

and the data are Poisson draws of them. The raster is split into regions (a Voronoi partition
around one seed per phase): in region ``k`` phase ``k`` dominates, from a pure phase at the
seed (fraction 1) down to 0.65 at the region's farthest point, the rest shared at random
between the other phases. So the data have rank ``n_phases``, pure pixels (NMF can identify the
signatures) and regions a clustering should find (``labels``).

Examples
--------
>>> from pyscatter.datasets_phases import phase_map
>>> pm = phase_map((6, 8), rng=1)
>>> pm.intensity.shape, pm.fractions.shape, pm.labels.shape
((6, 8, 400), (6, 8, 3), (6, 8))
>>> bool(np.allclose(pm.fractions.sum(axis=-1), 1.0))
True
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pyscatter.errors import InputError
from pyscatter.kernels.peaks import area_factor, peak_profile

__all__ = ["PHASE_PEAKS", "PhaseMap", "PhasePeak", "phase_map"]


@dataclass(frozen=True)
class PhasePeak:
    """One Bragg peak of a phase signature (q in 1/nm, height in counts of a pure phase)."""

    phase: int
    position: float
    fwhm: float
    eta: float
    height: float

    @property
    def area(self) -> float:
        """Integrated counts × 1/nm of the peak in a pure phase."""
        return float(self.height * self.fwhm * area_factor(self.eta))


#: Peaks of the (up to four) phases: well separated, so every window holds one peak.
PHASE_PEAKS = (
    PhasePeak(0, 6.00, 0.30, 0.30, 900.0),
    PhasePeak(0, 14.50, 0.40, 0.50, 500.0),
    PhasePeak(1, 8.70, 0.25, 0.60, 700.0),
    PhasePeak(1, 17.30, 0.35, 0.40, 600.0),
    PhasePeak(2, 11.20, 0.30, 0.20, 800.0),
    PhasePeak(2, 20.10, 0.45, 0.50, 400.0),
    PhasePeak(3, 4.80, 0.20, 0.40, 600.0),
    PhasePeak(3, 12.60, 0.30, 0.60, 500.0),
)
#: Amorphous background of each phase: ``a * exp(-q / q0) + c`` (counts), times ``background``.
#: Kept weak by default: a strong background common to every phase leaves room to shift some of
#: one signature into another (NMF is then not unique; measured: fraction errors of 6 % rms with
#: ``background=6.7``, 0.9 % with the default, at the noise floor of the true signatures).
_BACKGROUNDS = ((45.0, 5.0, 6.0), (22.5, 8.0, 9.0), (30.0, 3.0, 4.5), (37.5, 6.0, 7.5))
#: Region seeds as fractions of the raster extent (slow, fast), one per phase, rounded to a
#: position: each phase is pure there.
_SEEDS = ((0.2, 0.15), (0.8, 0.45), (0.3, 0.85), (0.75, 0.9))
_DIMS = {1: ("X",), 2: ("Y", "X")}


@dataclass(frozen=True, eq=False)
class PhaseMap:
    """A raster of I(q) spectra mixed from known phases, and the truth behind them.

    Attributes
    ----------
    q : ndarray, shape (n_q,)
        Bin centres in 1/nm.
    dims : tuple of str
        Position dims, slow to fast (``("Y", "X")``).
    coords : dict of str to ndarray
        Motor values per dim (mm).
    signatures : ndarray, shape (n_phases, n_q)
        Expected counts of each pure phase.
    fractions : ndarray, shape (*shape, n_phases)
        Phase fractions at every position (sum 1).
    labels : ndarray of int, shape (*shape)
        Region (= dominant phase) of every position.
    intensity : ndarray of float32, shape (*shape, n_q)
        Poisson counts.
    peaks : tuple of PhasePeak
        The peaks of the phases in the map.
    """

    q: np.ndarray
    dims: tuple[str, ...]
    coords: dict[str, np.ndarray]
    signatures: np.ndarray
    fractions: np.ndarray
    labels: np.ndarray
    intensity: np.ndarray
    peaks: tuple[PhasePeak, ...]

    @property
    def shape(self) -> tuple[int, ...]:
        """Raster shape, slow to fast."""
        return tuple(self.labels.shape)

    @property
    def n_phases(self) -> int:
        return int(self.signatures.shape[0])

    @property
    def expected(self) -> np.ndarray:
        """Noise-free counts, ``(*shape, n_q)`` float64."""
        return self.fractions @ self.signatures

    def write(self, path: str | os.PathLike, *, overwrite: bool = False) -> Path:
        """Write the map as a USID file: ``Raw_Data`` (positions × q), spectroscopic dim ``q``.

        The ``Raw_Data`` is what AzimuthalIntegration would have produced: ``Intensity`` in
        counts over a ``q`` axis in 1/nm (the processes take it as their default source when no
        integration results are present).
        """
        from pyscatter.io.raw import MeasurementSpec, write_measurement
        from pyscatter.io.usid import Dim

        spec = MeasurementSpec(
            position_dims=[Dim(d, "mm", self.coords[d]) for d in self.dims],
            spec_dims=[Dim("q", "1/nm", self.q)],
            dtype=np.float32,
            quantity="Intensity",
            units="counts",
            attrs={
                "translator": "pyscatter.datasets_phases",
                "n_phases": self.n_phases,
                "wavelength": 1.0e-10,
            },
        )
        frames = iter(self.intensity.reshape(-1, self.q.size))
        return write_measurement(path, spec, frames, overwrite=overwrite)


def _signatures(
    q: np.ndarray, n_phases: int, background: float
) -> tuple[np.ndarray, tuple[PhasePeak, ...]]:
    peaks = tuple(p for p in PHASE_PEAKS if p.phase < n_phases and q[0] < p.position < q[-1])
    sig = np.empty((n_phases, q.size))
    for k in range(n_phases):
        a, q0, c = _BACKGROUNDS[k]
        sig[k] = background * (a * np.exp(-q / q0) + c)
    for p in peaks:
        sig[p.phase] += p.height * peak_profile(q, p.position, p.fwhm, p.eta)
    return sig, peaks


def _fractions(shape: tuple[int, ...], n_phases: int, rng: np.random.Generator):
    grid = np.stack(np.meshgrid(*[np.arange(s, dtype=float) for s in shape], indexing="ij"), -1)
    extent = np.array([max(s - 1, 1) for s in shape], dtype=float)
    seeds = np.round(np.array([s[-len(shape) :] for s in _SEEDS[:n_phases]]) * extent)
    dist = np.linalg.norm(grid[..., None, :] - seeds, axis=-1)  # (*shape, n_phases)
    labels = np.argmin(dist, axis=-1)
    own = np.take_along_axis(dist, labels[..., None], axis=-1)[..., 0]
    farthest = np.array(
        [own[labels == k].max() if (labels == k).any() else 1.0 for k in range(n_phases)]
    )
    dominant = (1.0 - 0.35 * own / np.maximum(farthest[labels], 1e-12)).ravel()
    rest = rng.dirichlet(np.ones(n_phases - 1), size=dominant.size)  # the other phases' shares
    flat_labels = labels.ravel()
    fractions = np.empty((dominant.size, n_phases))
    for k in range(n_phases):
        rows = np.flatnonzero(flat_labels == k)
        others = np.array([j for j in range(n_phases) if j != k], dtype=np.intp)
        fractions[rows, k] = dominant[rows]
        fractions[np.ix_(rows, others)] = (1.0 - dominant[rows])[:, None] * rest[rows]
    fractions = fractions.reshape(*shape, n_phases)
    return fractions, labels


def phase_map(
    shape: tuple[int, ...] = (12, 16),
    *,
    n_phases: int = 3,
    n_q: int = 400,
    q_range: tuple[float, float] = (3.0, 23.0),
    scale: float = 1.0,
    background: float = 1.0,
    step_mm: float = 0.05,
    rng: int | np.random.Generator | None = 0,
) -> PhaseMap:
    """A raster of I(q) spectra mixed from ``n_phases`` known phases, with Poisson noise.

    Parameters
    ----------
    shape : tuple of int
        Raster shape, slow to fast (1 or 2 dims).
    n_phases : int
        2 to 4 phases (see :data:`PHASE_PEAKS`).
    n_q : int
        Number of q bins, evenly spaced over ``q_range`` (1/nm).
    scale : float
        Multiplies the expected counts (lower is noisier).
    background : float
        Multiplies the amorphous backgrounds of the phases (see ``_BACKGROUNDS``).
    step_mm : float
        Motor step of the raster (mm).
    rng : int or Generator
        Seed of the fractions and the Poisson noise.

    Returns
    -------
    PhaseMap
    """
    shape = tuple(int(s) for s in shape)
    if len(shape) not in _DIMS or min(shape, default=0) < 1:
        raise InputError(f"shape must be 1 or 2 positive sizes (slow to fast); got {shape}")
    if not 2 <= int(n_phases) <= len(_BACKGROUNDS):
        raise InputError(f"n_phases must be 2 to {len(_BACKGROUNDS)}; got {n_phases}")
    if int(n_q) < 10 or not q_range[1] > q_range[0] > 0:
        raise InputError(f"need n_q >= 10 and 0 < q_min < q_max; got {n_q}, {q_range}")
    if not scale > 0 or not background >= 0:
        raise InputError(f"need scale > 0 and background >= 0; got {scale}, {background}")
    gen = np.random.default_rng(rng)
    q = np.linspace(float(q_range[0]), float(q_range[1]), int(n_q))
    sig, peaks = _signatures(q, int(n_phases), float(background))
    sig *= float(scale)
    fractions, labels = _fractions(shape, int(n_phases), gen)
    counts = gen.poisson(fractions @ sig).astype(np.float32)
    dims = _DIMS[len(shape)]
    coords = {d: np.arange(s, dtype=np.float64) * step_mm for d, s in zip(dims, shape, strict=True)}
    return PhaseMap(q, dims, coords, sig, fractions, labels, counts, peaks)
