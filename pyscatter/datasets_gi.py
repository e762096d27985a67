"""A synthetic grazing-incidence scan of a thin film whose reflections are known in q.

The film scatters into spots, Gaussian in reciprocal space, at given (q_xy, q_z) on a constant
background. Every frame is computed on pyFAI's own grazing-incidence pixel → (q_xy, q_z) map
(:func:`pyscatter.kernels.grazing.gi_pixel_maps`, pyFAI's ``qip``/``qoop`` at the pixel
centres) at the incident angle of its position, times the pixels' relative solid angle, with
Poisson counts and a masked module gap and direct-beam stop (−1 in the frames): the truth is
the pixel map, not an integration. The positions are a 1-D scan of the incident angle, dim
``th`` (degrees). :meth:`GIScan.write_images` writes EDF images, ``mask.edf``, a PONI file and
``positions.csv`` (column ``th[deg]``) that ``pyscatter translate`` turns into the scan.

Examples
--------
>>> scan = gi_scan(frame_shape=(96, 112), incident_deg=(0.1, 0.2))
>>> scan.frames.shape, scan.incident_deg.tolist()
((2, 96, 112), [0.1, 0.2])
>>> [(s.q_xy, s.q_z) for s in scan.spots][:2]
[(4.2, 2.8), (-5.0, 4.0)]
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pyscatter.errors import ExistingResultsError, InputError

__all__ = ["GI_SPOTS", "GIScan", "Spot", "gi_poni", "gi_scan"]


@dataclass(frozen=True)
class Spot:
    """A reflection of the film: Gaussian in q around (q_xy, q_z), in nm⁻¹, of peak counts
    ``amplitude`` (before the solid angle)."""

    q_xy: float
    q_z: float
    sigma: float = 0.2
    amplitude: float = 800.0


#: Reflections of the default scan (nm⁻¹): out of the missing wedge, off the masked gap.
GI_SPOTS = (
    Spot(4.2, 2.8),
    Spot(-5.0, 4.0),
    Spot(3.4, 6.4, amplitude=600.0),
    Spot(-4.4, 7.6, amplitude=600.0),
)
#: Background counts of every pixel (before the solid angle).
BACKGROUND = 10.0
#: pyFAI sample orientation of the scan: q_z along increasing rows.
SAMPLE_ORIENTATION = 1


def gi_poni(frame_shape: tuple[int, int] = (240, 264)) -> dict[str, Any]:
    """pyFAI config of the scan: 172 µm pixels, 1 Å, the direct beam near the bottom rows,
    q_z up to ~5.5 nm⁻¹ and q_xy over ±3.6 nm⁻¹."""
    n_row, n_col = int(frame_shape[0]), int(frame_shape[1])
    pixel = 172e-6
    return {
        "poni_version": 2.1,
        "dist": 0.16 * n_row / 160,
        "poni1": 0.1 * n_row * pixel,
        "poni2": 0.5 * n_col * pixel,
        "rot1": 0.0,
        "rot2": 0.0,
        "rot3": 0.0,
        "wavelength": 1e-10,
        "detector": "Detector",
        "detector_config": {
            "pixel1": pixel,
            "pixel2": pixel,
            "orientation": 3,
            "max_shape": [n_row, n_col],
        },
    }


@dataclass
class GIScan:
    """A grazing-incidence scan of the incident angle and its truth.

    Attributes
    ----------
    frames : numpy.ndarray
        ``(n, n_row, n_col)`` int32 Poisson counts; masked pixels hold -1.
    incident_deg : numpy.ndarray
        ``(n,)`` incident angle of every position, degrees.
    poni : dict
        pyFAI geometry config (the same for every position).
    mask : numpy.ndarray
        ``(n_row, n_col)`` bool.
    spots : tuple of Spot
    sample_orientation : int
        pyFAI's sample orientation the spots are placed with.
    """

    frames: np.ndarray
    incident_deg: np.ndarray
    poni: dict[str, Any]
    mask: np.ndarray
    spots: tuple[Spot, ...]
    sample_orientation: int = SAMPLE_ORIENTATION

    @property
    def frame_shape(self) -> tuple[int, int]:
        return (int(self.frames.shape[1]), int(self.frames.shape[2]))

    def write_images(self, folder: str | os.PathLike, *, overwrite: bool = False) -> list[Path]:
        """EDF images ``frame_NNNN.edf``, ``mask.edf``, ``geometry.poni`` and ``positions.csv``.

        Translate them with ``pyscatter translate FOLDER/frame_*.edf --positions
        FOLDER/positions.csv --poni FOLDER/geometry.poni --mask FOLDER/mask.edf``.
        """
        from fabio.edfimage import EdfImage

        from pyscatter.geometry import integrator_from_config

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        paths = [folder / f"frame_{i:04d}.edf" for i in range(len(self.frames))]
        extra = [folder / n for n in ("mask.edf", "geometry.poni", "positions.csv")]
        existing = [p for p in [*paths, *extra] if p.exists()]
        if existing and not overwrite:
            raise ExistingResultsError(f"{existing[0]} exists; pass overwrite=True")
        for path in existing:
            path.unlink()
        for i, path in enumerate(paths):
            EdfImage(data=self.frames[i]).write(str(path))
        EdfImage(data=self.mask.astype(np.uint8)).write(str(extra[0]))
        integrator_from_config(self.poni).write(str(extra[1]))
        rows = "\n".join(repr(float(v)) for v in self.incident_deg)
        extra[2].write_text(f"th[deg]\n{rows}\n", encoding="utf-8")
        return paths

    def translate(self, h5_path: str | os.PathLike, *, overwrite: bool = False) -> Path:
        """Write the images beside ``h5_path`` (folder ``<stem>_images``) and translate them."""
        from pyscatter.translators import translate

        h5_path = Path(h5_path)
        folder = h5_path.with_name(h5_path.stem + "_images")
        paths = self.write_images(folder, overwrite=overwrite)
        return translate(
            [str(p) for p in paths],
            h5_path,
            format="images",
            positions=folder / "positions.csv",
            poni=folder / "geometry.poni",
            mask=folder / "mask.edf",
            overwrite=overwrite,
        )


def _check_angles(incident_deg: Any) -> np.ndarray:
    arr = np.asarray(incident_deg, dtype=np.float64).ravel()
    if arr.size < 1 or not np.all(np.isfinite(arr)) or np.any((arr <= 0) | (arr >= 5)):
        raise InputError(f"incident_deg = {incident_deg!r}; expected angles in (0, 5) degrees")
    return arr


def gi_scan(
    incident_deg: Sequence[float] = (0.10, 0.13, 0.16, 0.20),
    *,
    frame_shape: tuple[int, int] = (240, 264),
    spots: Sequence[Spot] = GI_SPOTS,
    background: float = BACKGROUND,
    poni: dict[str, Any] | None = None,
    noise: bool = True,
    rng: Any = 0,
) -> GIScan:
    """A thin film measured at several incident angles (one frame each).

    Parameters
    ----------
    incident_deg : sequence of float
        Incident angle of each position, degrees in (0, 5).
    frame_shape : (int, int)
        Detector (rows, cols); the geometry scales with it (:func:`gi_poni`).
    spots : sequence of Spot
        Reflections in (q_xy, q_z), nm⁻¹.
    background : float
        Constant counts added to every pixel (before the solid angle).
    poni : dict, optional
        pyFAI geometry config (default :func:`gi_poni` of the frame shape).
    noise : bool
        Poisson counts (else the expected counts, rounded).
    rng : int or numpy.random.Generator
    """
    from pyscatter.geometry import integrator_from_config
    from pyscatter.kernels.grazing import gi_pixel_maps

    angles = _check_angles(incident_deg)
    poni = gi_poni(frame_shape) if poni is None else dict(poni)
    shape = (int(frame_shape[0]), int(frame_shape[1]))
    solid_angle = np.asarray(integrator_from_config(poni).solidAngleArray(shape), dtype=np.float64)
    generator = np.random.default_rng(rng)
    frames = []
    for angle in angles:
        q_xy, q_z = gi_pixel_maps(
            poni, shape, incident_deg=float(angle), sample_orientation=SAMPLE_ORIENTATION
        )
        model = np.full(shape, float(background))
        for s in spots:
            model += s.amplitude * np.exp(
                -0.5 * ((q_xy - s.q_xy) ** 2 + (q_z - s.q_z) ** 2) / s.sigma**2
            )
        ideal = model * solid_angle
        frames.append(generator.poisson(ideal) if noise else np.rint(ideal))
    mask = np.zeros(shape, dtype=bool)
    beam_row = int(round(poni["poni1"] / 172e-6))
    mask[: beam_row + 3] = True  # below the horizon and the direct/specular beam
    gap = int(round(0.55 * shape[0]))
    mask[gap : gap + max(2, shape[0] // 40)] = True  # a module gap
    out = np.asarray(frames).astype(np.int32)
    out[:, mask] = -1
    return GIScan(out, angles, poni, mask, tuple(spots))
