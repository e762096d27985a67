"""Worker side of :class:`~pyscatter.processes.qspace.QSpaceMap` (no pyUSID).

``build`` makes the pyFAI integrator of the recorded geometry and reads the masks once; the
block function reads a block of frames and calls :func:`pyscatter.geometry.q_map` once on the
whole block. The kernel's sparse product treats every frame alone, so blocks of any size, and
the kernel called on one frame, give the same bits.
"""

from __future__ import annotations

import json
from typing import Any

import h5py
import hdf5plugin  # noqa: F401  (filters of compressed raw frames)
import numpy as np

from pyscatter.geometry import integrator_from_config, q_map
from pyscatter.processes.detector import read_mask
from pyscatter.processes.execution import FrameBlocks, FrameReader
from pyscatter.processes.frame_setup import dummy_pixels


def make_function(ai: Any, params: dict[str, Any], mask: np.ndarray | None) -> FrameBlocks:
    """The block function: one :func:`~pyscatter.geometry.q_map` call per block of frames."""
    shape = (int(params["frame_shape"][0]), int(params["frame_shape"][1]))
    dummy, delta = params["dummy"], params["delta_dummy"]
    options = {
        "npt": tuple(params["npt"]),
        "q_max": params["q_max"],
        "director_deg": params["director_deg"],
        "unit": params["unit"],
        "mask": None if mask is None else np.asarray(mask, dtype=np.uint8).reshape(shape),
        "correct_solid_angle": params["correct_solid_angle"],
        "polarization_factor": params["polarization_factor"],
    }

    def process(frames: np.ndarray, _extra: Any) -> dict[str, np.ndarray]:
        n = frames.shape[0]
        hits = dummy_pixels(frames, dummy, delta)
        if hits is not None and hits.any():  # invalid pixels of this frame: left out, as NaN
            frames = np.where(hits, np.nan, frames.astype(np.float64))
        res = q_map(frames, ai, **options)
        return {"Intensity": res.intensity.reshape(n, -1).astype(np.float32)}

    return FrameBlocks(FrameReader(params["source"], shape), process)


def build(spec, h5: h5py.File) -> FrameBlocks:
    """Block function of a q-space map spec: integrator and masks made once per worker."""
    params = spec.params
    shape = (int(params["frame_shape"][0]), int(params["frame_shape"][1]))
    ai = integrator_from_config(json.loads(params["geometry"]))
    return make_function(ai, params, read_mask(h5, params.get("mask_datasets", []), shape))
