"""The light detector set-up of the frame processes that do not integrate: caving, q-space maps.

:class:`~pyscatter.processes.caving.Caving` and :class:`~pyscatter.processes.qspace.QSpaceMap`
read raw frames like the integrating processes, but apply no pyFAI method, dark, flat or
normalisation. They take a subset of :data:`~pyscatter.processes.options.DETECTOR_OPTIONS`
(:data:`FRAME_OPTIONS`, :data:`QMAP_OPTIONS`), checked here the same way as
:class:`~pyscatter.processes.detector.DetectorSetup` checks them: the geometry (a PONI file or
dict, else the one recorded with the source), the file's ``Mask`` and an extra mask, the
invalid-pixel value ``dummy`` (default: the one the translator recorded) and, for q-space maps,
the solid-angle and polarization corrections.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import h5py
import numpy as np

from pyscatter.errors import InputError
from pyscatter.io.geometry_series import one_geometry_error, read_series
from pyscatter.processes.options import DETECTOR

__all__ = ["FRAME_OPTIONS", "QMAP_OPTIONS", "FrameSetup", "dummy_pixels"]

FRAME_OPTIONS = tuple(
    DETECTOR[k] for k in ("poni", "mask", "use_file_mask", "dummy", "delta_dummy")
)
"""The detector options of :class:`~pyscatter.processes.caving.Caving`."""
QMAP_OPTIONS = (
    *FRAME_OPTIONS,
    DETECTOR["correct_solid_angle"],
    DETECTOR["polarization_factor"],
)
"""The detector options of :class:`~pyscatter.processes.qspace.QSpaceMap`."""


def _number(name: str, value: Any, low: float = -math.inf, high: float = math.inf) -> Any:
    if value is None:
        return None
    ok = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
    if not ok or not (math.isfinite(float(value)) and low <= float(value) <= high):
        where = "" if math.isinf(low) else f" in [{low:g}, {high:g}]"
        raise InputError(f"{name} = {value!r}; expected a finite number{where}")
    return float(value)


def dummy_pixels(frames: np.ndarray, dummy: float | None, delta: float | None) -> np.ndarray | None:
    """Pixels holding the invalid-pixel value (``|v - dummy| <= delta``, or ``== dummy``), or None."""
    if dummy is None:
        return None
    if delta:
        return np.abs(frames.astype(np.float64) - dummy) <= delta
    return frames == dummy


@dataclass(frozen=True, eq=False)
class FrameSetup:
    """Geometry, masks and dummy of a frame process, validated once.

    Attributes
    ----------
    geometry : dict or None
        pyFAI config of the checked geometry (None when none is recorded and none is needed).
    frame_shape : (int, int)
    mask_file_dataset : str or None
        The file's ``Mask`` beside the source (unless ``use_file_mask=False``).
    extra_mask : ndarray of uint8 or None
        The extra mask (1 = masked).
    dummy, delta_dummy : float or None
    correct_solid_angle : bool
    polarization_factor : float or None
    integrator : pyFAI.integrator.azimuthal.AzimuthalIntegrator or None
    """

    geometry: dict[str, Any] | None
    frame_shape: tuple[int, int]
    mask_file_dataset: str | None
    extra_mask: np.ndarray | None
    dummy: float | None
    delta_dummy: float | None
    correct_solid_angle: bool = True
    polarization_factor: float | None = None
    integrator: Any = field(default=None, repr=False)

    @classmethod
    def from_options(
        cls,
        h5_main: h5py.Dataset,
        options: Mapping[str, Any],
        *,
        allowed: tuple,
        need_geometry: bool,
    ) -> FrameSetup:
        """Check ``options`` (names among ``allowed``, :class:`~pyscatter.processes.options.Option`
        declarations) for the image main dataset ``h5_main``.

        Raises
        ------
        InputError
            An unknown option, a value out of range, a mask of another shape than the frames,
            no geometry when ``need_geometry``.
        """
        from pyscatter.processes.detector import (  # pyFAI, lazily: the CLI imports the options
            frame_shape,
            load_integrator,
            recorded_dummy,
            require_complete_frames,
        )

        names = [o.name for o in allowed]
        unknown = sorted(set(options) - set(names))
        if unknown:
            raise InputError(f"unknown option(s) {', '.join(unknown)}; allowed: {', '.join(names)}")
        opts = {o.name: options.get(o.name, o.default) for o in allowed}
        require_complete_frames(h5_main)
        shape = frame_shape(h5_main)
        extra = opts.get("mask")
        if extra is not None:
            extra = np.asarray(extra)
            if extra.shape != shape:
                raise InputError(f"mask has shape {extra.shape}; the detector frames are {shape}")
            if extra.dtype.kind not in "biuf":
                raise InputError(f"mask: expected an image of numbers; got dtype {extra.dtype}")
            extra = (extra != 0).astype(np.uint8)
        dummy = _number("dummy", opts.get("dummy"))
        delta = _number("delta_dummy", opts.get("delta_dummy"), 0.0)
        if dummy is None:
            dummy, delta = recorded_dummy(h5_main, delta)
        series = read_series(h5_main)
        if series is not None:  # caved frames or q maps would carry one geometry for all
            raise one_geometry_error(series, "cave and qmap")
        ai = geometry = None
        try:
            ai, geometry = load_integrator(opts.get("poni"), h5_main)
        except InputError:
            if need_geometry or opts.get("poni") is not None:
                raise
        file_mask = h5_main.parent.get("Mask") if opts["use_file_mask"] else None
        if isinstance(file_mask, h5py.Dataset) and file_mask.size != shape[0] * shape[1]:
            raise InputError(
                f"{file_mask.name} has {file_mask.size} pixels; the frames are {shape}"
            )
        polarization = _number("polarization_factor", opts.get("polarization_factor"), -1.0, 1.0)
        return cls(
            geometry=geometry,
            frame_shape=shape,
            mask_file_dataset=None if file_mask is None else file_mask.name,
            extra_mask=extra,
            dummy=None if dummy is None else float(dummy),
            delta_dummy=None if delta is None else float(delta),
            correct_solid_angle=bool(opts.get("correct_solid_angle", True)),
            polarization_factor=polarization,
            integrator=ai,
        )

    def record(self, *, corrections: bool = False) -> dict[str, Any]:
        """The parameters this set-up adds to a process's record (JSON-able)."""
        sha = None
        if self.extra_mask is not None:
            sha = hashlib.sha256(np.ascontiguousarray(self.extra_mask).tobytes()).hexdigest()
        record: dict[str, Any] = {
            "geometry": None
            if self.geometry is None
            else json.dumps(self.geometry, sort_keys=True),
            "frame_shape": list(self.frame_shape),
            "mask_file_dataset": self.mask_file_dataset,
            "mask_sha256": sha,
            "dummy": self.dummy,
            "delta_dummy": self.delta_dummy,
        }
        if corrections:
            record["correct_solid_angle"] = self.correct_solid_angle
            record["polarization_factor"] = self.polarization_factor
        return record

    def input_mask(self, h5: h5py.File) -> np.ndarray:
        """File mask | extra mask (bool, True = masked; all False without either)."""
        mask = np.zeros(self.frame_shape, dtype=bool)
        if self.mask_file_dataset:
            mask |= np.asarray(h5[self.mask_file_dataset][()]).reshape(self.frame_shape) != 0
        if self.extra_mask is not None:
            mask |= self.extra_mask != 0
        return mask


def raw_frames(h5: h5py.File) -> h5py.Dataset:
    """The default source of the frame steps: the first ``Raw_Data`` of detector images."""
    from pyscatter.io.usid import dims_of, main_datasets

    for dset in main_datasets(h5):
        if dset.name.endswith("/Raw_Data") and len(dims_of(dset, "Spectroscopic")) == 2:
            return dset
    raise InputError(f"{h5.filename}: no Raw_Data of detector images; translate the data first")
