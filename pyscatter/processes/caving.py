"""Caving as a step: masked pixels of every frame filled from their centro-symmetric partners.

:class:`Caving` runs :func:`pyscatter.kernels.caving.cave` on every raw frame and writes the
caved frames as a main dataset of the same layout as the raw one (positions × Row·Col), so
that every frame step takes it as its source: ``pyscatter integrate scan.h5 --source
<group>/Caved_Data``, ``profiles``, ``sectors``, ``qmap``, or ``source: cave`` in a pipeline.

What the results group ``<source>-Caving_NNN`` holds:

``Caved_Data`` (positions × Row·Col)
    float32 (float64 when the source is float64): measured pixels unchanged (integer counts
    are exact in float32 up to 2**24), filled pixels the (bilinear or nearest) value at their
    partner, pixels still missing NaN. Float, because filled values lie between counts and
    NaN marks what is still missing frame by frame; uncompressed and written block by block as
    every result (docs/crash_safety.md, rule 4: outputs carry no filters).
``Filled_Pixels``, ``Missing_Pixels`` (one value per position, int32)
    Pixels filled, and pixels still missing after ``n_iter`` passes, of each frame.
``Input_Mask`` (uint8)
    The mask caving filled (the file's ``Mask`` | the extra mask; dummy and non-finite pixels
    of each frame come on top).
``Mask`` (uint8)
    The pixels of ``Input_Mask`` still missing after caving (the beamstop disc around the
    centre, partners off the detector): the mask the later steps apply, since they read the
    ``Mask`` beside their source. Filled pixels are no longer masked; pixels still missing in
    one frame only (a dummy there) are NaN in that frame, which every step leaves out.
``@geometry``
    The geometry (pyFAI config, JSON) the later steps use for these frames, as the translator
    records it with the raw data; the group records no ``dummy`` (none is left).

A ``Monitor`` soft link to the source's recorded monitor (when it has one) lets
``monitor="auto"`` work on the caved frames as on the raw ones.
"""

from __future__ import annotations

import json
import math
from typing import Any

import h5py
import numpy as np

from pyscatter.errors import InputError
from pyscatter.io.usid import Dim, dims_of
from pyscatter.kernels.caving import ORDERS, cave
from pyscatter.processes.base import Output, ScatterProcess
from pyscatter.processes.frame_setup import FRAME_OPTIONS, FrameSetup, raw_frames

__all__ = ["MAX_ITER", "Caving", "resolve_center"]

MAX_ITER = 100
"""Most caving passes."""


def _whole(name: str, value: Any, low: int, high: int) -> int:
    ok = isinstance(value, (int, np.integer)) and not isinstance(value, bool)
    if not ok or not low <= int(value) <= high:
        raise InputError(f"{name} = {value!r}; expected a whole number in [{low}, {high}]")
    return int(value)


def resolve_center(center: Any, ai: Any, shape: tuple[int, int]) -> tuple[list[float], str]:
    """The beam centre (row, col) in array coordinates and where it came from.

    ``"auto"``: :func:`pyscatter.geometry.beam_center` of the geometry; else two finite numbers
    (row, col). Either way it must lie on the frame, ``[0, n_row - 1] × [0, n_col - 1]``.

    Raises
    ------
    InputError
        Not ``"auto"`` nor two numbers, ``"auto"`` without a geometry, a centre off the frame.
    """
    if isinstance(center, str):
        if center != "auto":
            raise InputError(f"center = {center!r}; expected 'auto' or (row, col) in pixels")
        if ai is None:
            raise InputError(
                "center='auto' takes the beam centre from the geometry, and none is recorded "
                "with the source: give a PONI file (--poni FILE) or the centre (--center X Y)"
            )
        from pyscatter.geometry import beam_center

        row, col = beam_center(ai)
        origin = "geometry"
    else:
        try:
            row, col = (float(v) for v in center)
        except (TypeError, ValueError):
            raise InputError(
                f"center = {center!r}; expected 'auto' or (row, col) in pixels"
            ) from None
        if isinstance(center, (str, bytes)) or not (math.isfinite(row) and math.isfinite(col)):
            raise InputError(f"center = {center!r}; expected finite (row, col) in pixels")
        origin = "given"
    rows, cols = shape
    if not (0 <= row <= rows - 1 and 0 <= col <= cols - 1):
        raise InputError(
            f"center (row {row:.6g}, col {col:.6g}) from the {origin} lies outside the frame "
            f"(rows 0 … {rows - 1}, cols 0 … {cols - 1}): caving needs the beam on the detector"
        )
    return [row, col], origin


class Caving(ScatterProcess):
    """Fill the masked pixels of every frame from their reflection through the beam centre.

    Parameters
    ----------
    h5_main : h5py.Dataset
        Image main dataset (positions × Row·Col), e.g. ``Raw_Data``.
    n_iter : int
        Passes of :func:`~pyscatter.kernels.caving.cave` (1 … :data:`MAX_ITER`); later passes
        fill, one pixel deeper each, the edges of regions that are their own mirror image.
    order : {0, 1}
        The nearest partner pixel (0) or bilinear over the valid pixels around the partner (1).
    center : "auto" or (float, float)
        Beam centre (row, col) in array coordinates (pixel ``(i, j)`` centred at ``(i, j)``);
        ``"auto"``: from the geometry (:func:`pyscatter.geometry.beam_center`).
    **options
        ``poni`` (default: the geometry recorded with the source; optional when the centre is
        given, but the later steps need one), ``mask`` (an extra mask, stored in the group),
        ``use_file_mask``, ``dummy`` and ``delta_dummy`` (default: the value the translator
        recorded; those pixels are filled too), then the execution options of
        :class:`~pyscatter.processes.base.ScatterProcess`.
    """

    process_name = "Caving"
    factory = "pyscatter.processes.caving_worker:build"
    block_input_mb = 64
    options = FRAME_OPTIONS
    nexus_signal = "Caved_Data"

    def __init__(
        self,
        h5_main: h5py.Dataset,
        *,
        n_iter: int = 1,
        order: int = 1,
        center: str | tuple[float, float] = "auto",
        **options: Any,
    ) -> None:
        detector = {
            k: options.pop(k) for k in list(options) if k in {o.name for o in FRAME_OPTIONS}
        }
        n_iter = _whole("n_iter", n_iter, 1, MAX_ITER)
        if order not in ORDERS or isinstance(order, bool):
            raise InputError(f"order = {order!r}; expected 0 (nearest) or 1 (bilinear)")
        setup = FrameSetup.from_options(
            h5_main, detector, allowed=FRAME_OPTIONS, need_geometry=False
        )
        ctr, origin = resolve_center(center, setup.integrator, setup.frame_shape)
        self.setup = setup
        self._dtype = np.dtype(np.float64 if h5_main.dtype == np.float64 else np.float32)
        params = {
            "n_iter": n_iter,
            "order": int(order),
            "center": ctr,
            "center_from": origin,
            **setup.record(),
            "dtype": self._dtype.name,
        }
        super().__init__(h5_main, params, **options)

    @classmethod
    def default_source(cls, h5: h5py.File) -> h5py.Dataset:
        """The raw frames (the first ``Raw_Data`` of detector images)."""
        return raw_frames(h5)

    def _worker_parameters(self) -> str:
        params = dict(self.parameters, source=self._source.name)
        group = getattr(self, "h5_results_grp", None)
        params["input_mask_dataset"] = None if group is None else group["Input_Mask"].name
        return json.dumps(params, sort_keys=True)

    def _local_function(self):
        if getattr(self, "_local", None) is None:
            from pyscatter.processes.caving_worker import make_function

            mask = self.setup.input_mask(self._source.file)
            self._local = make_function(dict(self.parameters, source=self._source.name), mask)
        return self._local

    def _outputs(self) -> list[Output]:
        one = (Dim("value", "1", np.zeros(1)),)
        frames = tuple(dims_of(self._source, "Spectroscopic"))
        counts = "Spectroscopic_Count_"  # their own ancillaries: one value per position
        return [
            Output(
                "Caved_Data",
                str(self._source.attrs.get("quantity", "Intensity")),
                str(self._source.attrs.get("units", "counts")),
                frames,
                dtype=self._dtype,
            ),
            Output("Filled_Pixels", "Pixels filled", "pixels", one, np.int32, counts),
            Output("Missing_Pixels", "Pixels still missing", "pixels", one, np.int32, counts),
        ]

    def _bytes_per_position(self) -> int:
        n_pix = self.setup.frame_shape[0] * self.setup.frame_shape[1]
        # the raw frame (twice with read-ahead), the kernel's float64 copy and its boolean and
        # int8 maps, the output; the candidate arrays are a few per masked pixel
        raw = self._source.dtype.itemsize * self._read_buffers()
        return n_pix * (raw + 8 + 1 + 1 + 1 + self._dtype.itemsize)

    def still_missing(self, mask: np.ndarray) -> np.ndarray:
        """The pixels of ``mask`` that caving leaves missing when nothing else is (the ``Mask``
        the later steps apply)."""
        params = self.parameters
        blank = np.zeros(mask.shape, dtype=np.float32)
        return cave(
            blank, mask, tuple(params["center"]), n_iter=params["n_iter"], order=params["order"]
        ).missing

    def _setup_extra(self, group: h5py.Group) -> None:
        mask = self.setup.input_mask(self._source.file)
        group.create_dataset("Input_Mask", data=mask.astype(np.uint8))
        group.create_dataset("Mask", data=self.still_missing(mask).astype(np.uint8))
        if self.parameters["geometry"] is not None:
            group.attrs["geometry"] = self.parameters["geometry"]
        group.attrs["mask_description"] = (
            "Input_Mask: the pixels caving filled (file Mask | extra mask; dummy and non-finite "
            "pixels of each frame too); Mask: those still missing when nothing else is, applied "
            "by the steps that take Caved_Data as their source; pixels still missing in one "
            "frame only are NaN there"
        )
        monitor = _monitor(self._source)
        if monitor is not None:
            group["Monitor"] = h5py.SoftLink(monitor)


def _monitor(source: h5py.Dataset) -> str | None:
    """The source's recorded monitor dataset (``monitor="auto"``), or None."""
    from pyscatter.processes.detector import normalization_parameters

    try:
        paths = normalization_parameters(source, "auto", None, None)["normalization_datasets"]
    except InputError:
        return None
    return paths[0] if paths else None
