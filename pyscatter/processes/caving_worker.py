"""Worker side of :class:`~pyscatter.processes.caving.Caving` (no pyUSID, no pyFAI).

``build`` reads the input mask once (``Input_Mask`` of the results group); the block function
reads a block of frames and calls :func:`pyscatter.kernels.caving.cave` once on the whole block.
Every frame's result depends on that frame alone, so blocks of any size give the same bits.
"""

from __future__ import annotations

from typing import Any

import h5py
import hdf5plugin  # noqa: F401  (filters of compressed raw frames)
import numpy as np

from pyscatter.kernels.caving import cave
from pyscatter.processes.execution import FrameBlocks, FrameReader
from pyscatter.processes.frame_setup import dummy_pixels


def make_function(params: dict[str, Any], mask: np.ndarray) -> FrameBlocks:
    """The block function: cave a block of frames at once (``mask``: True = to fill)."""
    shape = (int(params["frame_shape"][0]), int(params["frame_shape"][1]))
    center = (float(params["center"][0]), float(params["center"][1]))
    dtype = np.dtype(params["dtype"])
    static = np.asarray(mask, dtype=bool).reshape(shape)
    dummy, delta = params["dummy"], params["delta_dummy"]

    def process(frames: np.ndarray, _extra: Any) -> dict[str, np.ndarray]:
        n = frames.shape[0]
        hits = dummy_pixels(frames, dummy, delta)
        missing = static if hits is None else (hits | static)
        res = cave(frames, missing, center, n_iter=params["n_iter"], order=params["order"])
        return {
            "Caved_Data": res.filled.astype(dtype).reshape(n, -1),
            "Filled_Pixels": (res.filled_in_pass > 0).reshape(n, -1).sum(axis=1, dtype=np.int32),
            "Missing_Pixels": res.missing.reshape(n, -1).sum(axis=1, dtype=np.int32),
        }

    return FrameBlocks(FrameReader(params["source"], shape), process)


def build(spec, h5: h5py.File) -> FrameBlocks:
    """Block function of a caving spec: the input mask is read once from the results group."""
    params = spec.params
    shape = (int(params["frame_shape"][0]), int(params["frame_shape"][1]))
    path = params.get("input_mask_dataset")
    if path is not None:
        mask = np.asarray(h5[path][()]) != 0
    elif params["mask_sha256"] is None:  # no extra mask: the file's mask alone
        file_mask = params["mask_file_dataset"]
        mask = np.zeros(shape, bool) if file_mask is None else np.asarray(h5[file_mask][()]) != 0
    else:  # pragma: no cover - workers are built once the results group holds the mask
        raise RuntimeError("caving worker built before its results group stored Input_Mask")
    return make_function(params, mask.reshape(shape))
