"""Synthetic scans whose geometry changes with the position: an energy series and a distance series.

Powder (Bragg) rings of fixed d-spacing sit at a fixed q = 2π/d whatever the photon energy or
the detector distance, while they move on the detector: a scan integrated with each position's
own geometry puts them at the same q at every position; one integrated with the first position's
geometry does not. The frames come from the same model as :func:`pyscatter.datasets.make_scan`
(isotropic rings on a SAXS background, solid angle and polarization, Poisson counts, a
beamstop and a module gap masked), computed on each position's own pixel q map, and are written
as EDF images whose ESRF headers carry each image's geometry (``SampleDistance``,
``WaveLength``, ``Center_1/2``, ``PSize_1/2``, from pyFAI's ``getSPD``), the way ESRF ID02
records a distance or energy series.

Examples
--------
>>> scan = energy_series([8.0, 10.0, 12.0], frame_shape=(96, 112))
>>> scan.frames.shape, scan.dim, scan.units
((3, 96, 112), 'Energy', 'keV')
>>> [round(p["wavelength"] * 1e10, 4) for p in scan.ponis]
[1.5498, 1.2398, 1.0332]
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pyscatter.datasets_model import (
    PIXEL_SIZE,
    POLARIZATION_FACTOR,
    Ring,
    build_integrator,
    default_poni,
    detector_mask,
    expected_counts,
    pixel_maps,
    saxs_background,
)
from pyscatter.errors import ExistingResultsError, InputError
from pyscatter.io.geometry_series import energy_to_wavelength

__all__ = ["SERIES_RINGS", "GeometryScan", "distance_series", "energy_series"]

#: Isotropic powder rings of fixed d (q = 2π/d), inside the frame at every energy and distance
#: of the default series.
SERIES_RINGS = (
    Ring(q_nm=0.55, width_nm=0.02, amplitude=300.0),
    Ring(q_nm=0.95, width_nm=0.025, amplitude=150.0),
)


@dataclass
class GeometryScan:
    """A 1-D scan of frames whose geometry changes with the position, and its truth.

    Attributes
    ----------
    frames : numpy.ndarray
        ``(n, n_row, n_col)`` int32 Poisson counts; masked pixels hold -1.
    dim, units : str
        The scan dimension (``"Energy"``, keV; ``"Distance"``, mm) and its unit.
    values : numpy.ndarray
        ``(n,)`` its value at every position.
    ponis : list of dict
        The geometry of every position (``dist``, ``poni1``, ``poni2``, ``rot1..3``,
        ``wavelength``, ``pixel1``, ``pixel2``, ``shape``), as in
        :attr:`pyscatter.datasets.SyntheticScan.poni`.
    mask : numpy.ndarray
        ``(n_row, n_col)`` bool, masked in every frame (the union of the positions' beamstops).
    rings : tuple of Ring
    """

    frames: np.ndarray
    dim: str
    units: str
    values: np.ndarray
    ponis: list[dict[str, Any]]
    mask: np.ndarray
    rings: tuple[Ring, ...]
    polarization_factor: float = POLARIZATION_FACTOR

    @property
    def frame_shape(self) -> tuple[int, int]:
        return (int(self.frames.shape[1]), int(self.frames.shape[2]))

    def true_profile(self, q_nm: Any) -> np.ndarray:
        """Ground-truth I(q) (the same at every position): background + the rings."""
        q = np.asarray(q_nm, dtype=np.float64)
        total = saxs_background(q)
        for ring in self.rings:
            total = total + ring.amplitude * np.exp(-0.5 * ((q - ring.q_nm) / ring.width_nm) ** 2)
        return total

    def esrf_header(self, position: int) -> dict[str, str]:
        """The ESRF geometry keys of one position's image (pyFAI's ``getSPD``), and its motor."""
        spd = build_integrator(self.ponis[position]).getSPD()
        keys = ("SampleDistance", "WaveLength", "Center_1", "Center_2", "PSize_1", "PSize_2")
        header = {k: repr(float(spd[k])) for k in keys}
        header["motor_mne"] = self.dim
        header["motor_pos"] = repr(float(self.values[position]))
        return header

    def write_images(self, folder: str | Path, *, overwrite: bool = False) -> list[Path]:
        """One EDF image per position with its geometry in the ESRF header, and ``mask.edf``.

        Translate them with ``pyscatter translate FOLDER/frame_*.edf --motors Energy`` (or
        ``Distance``): the geometry of each image is recorded per position.
        """
        from fabio.edfimage import EdfImage

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        paths = [folder / f"frame_{i:04d}.edf" for i in range(len(self.frames))]
        existing = [p for p in [*paths, folder / "mask.edf"] if p.exists()]
        if existing and not overwrite:
            raise ExistingResultsError(f"{existing[0]} exists; pass overwrite=True")
        for i, path in enumerate(paths):
            EdfImage(data=self.frames[i], header=self.esrf_header(i)).write(str(path))
        EdfImage(data=self.mask.astype(np.uint8)).write(str(folder / "mask.edf"))
        return paths


def _series(
    dim: str,
    units: str,
    values: Any,
    ponis: list[dict[str, Any]],
    rings: Sequence[Ring],
    noise: bool,
    rng: Any,
) -> GeometryScan:
    generator = np.random.default_rng(rng)
    shape = tuple(ponis[0]["shape"])
    frames, mask = [], np.zeros(shape, dtype=bool)
    for poni in ponis:
        maps = pixel_maps(build_integrator(poni), shape)
        mask |= detector_mask(maps)
        ideal = expected_counts(maps, rings, saxs_background, np.zeros(1), np.zeros(1))[0]
        frames.append(generator.poisson(ideal) if noise else np.rint(ideal))
    out = np.asarray(frames).astype(np.int32)
    out[:, mask] = -1
    return GeometryScan(
        out, dim, units, np.asarray(values, dtype=np.float64), ponis, mask, tuple(rings)
    )


def _check_values(values: Any, name: str, low: float, high: float) -> np.ndarray:
    arr = np.asarray(values, dtype=np.float64).ravel()
    if arr.size < 1 or not np.all(np.isfinite(arr)) or np.any((arr < low) | (arr > high)):
        raise InputError(f"{name} = {values!r}; expected one or more numbers in [{low}, {high}]")
    return arr


def energy_series(
    energies_kev: Sequence[float] = (8.0, 9.0, 10.0, 11.0, 12.0),
    *,
    frame_shape: tuple[int, int] = (128, 144),
    rings: Sequence[Ring] = SERIES_RINGS,
    noise: bool = True,
    rng: Any = 0,
) -> GeometryScan:
    """Frames at several photon energies, detector fixed: the rings move on the detector.

    The detector is placed as in :func:`pyscatter.datasets.make_scan` (q reaches 2.5 nm⁻¹ at
    the far corner at 12.4 keV); dim ``Energy`` in keV. Energies in [7, 30] keV keep the default
    rings on the frame.
    """
    energies = _check_values(energies_kev, "energies_kev", 7.0, 30.0)
    base = dict(
        default_poni((int(frame_shape[0]), int(frame_shape[1]))), rot1=0.0, rot2=0.0
    )  # ESRF headers: no tilt
    ponis = [dict(base, wavelength=float(energy_to_wavelength(e))) for e in energies]
    return _series("Energy", "keV", energies, ponis, rings, noise, rng)


def distance_series(
    distances_mm: Sequence[float] | None = None,
    *,
    frame_shape: tuple[int, int] = (128, 144),
    rings: Sequence[Ring] = SERIES_RINGS,
    noise: bool = True,
    rng: Any = 0,
) -> GeometryScan:
    """Frames at several detector distances (and a beam centre that drifts by a few pixels).

    Default: 0.8, 1.0 and 1.25 times the distance of :func:`pyscatter.datasets.make_scan`, the
    beam centre moving by 2 pixels a step. Dim ``Distance`` in mm.
    """
    base = dict(
        default_poni((int(frame_shape[0]), int(frame_shape[1]))), rot1=0.0, rot2=0.0
    )  # ESRF headers: no tilt
    if distances_mm is None:
        distances_mm = [round(base["dist"] * 1e3 * f, 3) for f in (0.8, 1.0, 1.25)]
    distances = _check_values(distances_mm, "distances_mm", 1.0, 1e5)
    ponis = [
        dict(base, dist=d * 1e-3, poni1=base["poni1"] + 2 * k * PIXEL_SIZE)
        for k, d in enumerate(distances)
    ]
    return _series("Distance", "mm", distances, ponis, rings, noise, rng)
