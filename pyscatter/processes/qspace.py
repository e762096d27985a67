"""q-space maps as a step: every frame regridded on a (q_perp, q_par) image.

:class:`QSpaceMap` calls :func:`pyscatter.geometry.q_map` on every block of frames (raw or
caved, :mod:`pyscatter.processes.caving`) and writes, per position, the mean corrected intensity
of the pixels whose centre falls in each bin of a regular grid over ``[-q_max, q_max]²``:
a main dataset positions × (n_perp · n_par) whose two spectroscopic dimensions are ``q_perp``
(slow) and ``q_par`` (fast), so :func:`pyscatter.to_xarray` gives (*positions, q_perp, q_par).

Axes. ``q_par`` lies along the in-plane direction at ``director_deg`` (pyFAI's chi: 0 along
increasing columns, 90 along increasing rows) and ``q_perp`` across it, towards increasing
chi; both are components of the part of q transverse to the beam, whose length is
``|q| cos θ`` (:func:`pyscatter.geometry.q_parallel_perpendicular`): a ring of radius q lies on
the circle ``q cos θ``, at small angles q itself. In transmission without grazing incidence,
with ``director_deg = 0``, ``q_par`` is the horizontal component along the detector columns
(what mapping toolkits call ``q_x``) and ``q_perp`` the vertical one along the rows (``q_z``,
upwards when the image is drawn with ``origin="lower"``, as :mod:`pyscatter.plot.qspace`
does); it is not the grazing-incidence ``q_xy``/``q_z`` of a surface, which needs the incidence
angle. Bins no pixel centre reaches (finer than a pixel, beyond the detector, masked) are NaN.
"""

from __future__ import annotations

import json
import math
from typing import Any

import h5py
import numpy as np

from pyscatter.errors import InputError
from pyscatter.geometry import Q_UNITS, q_parallel_perpendicular
from pyscatter.io.usid import Dim
from pyscatter.processes.base import Output, ScatterProcess
from pyscatter.processes.frame_setup import QMAP_OPTIONS, FrameSetup, raw_frames

__all__ = ["MAX_BINS", "MAX_NPT", "QSpaceMap", "q_axes"]

MAX_NPT = 4096
"""Most bins along one q axis."""
MAX_BINS = 4_000_000
"""Most bins of one map (n_perp × n_par): 16 MB of float32 per position."""
_UNIT_LABELS = {"q_nm^-1": "1/nm", "q_A^-1": "1/A"}


def check_npt(npt: Any) -> list[int]:
    """``npt`` (one count, or [n_perp, n_par]) as two whole numbers within the limits."""
    values = list(npt) if isinstance(npt, (list, tuple)) else [npt, npt]
    ok = len(values) == 2 and all(
        isinstance(v, (int, np.integer)) and not isinstance(v, bool) and 1 <= v <= MAX_NPT
        for v in values
    )
    if not ok:
        raise InputError(
            f"npt = {npt!r}; expected one or two whole numbers of bins in [1, {MAX_NPT}] "
            "(n_perp, n_par)"
        )
    n_perp, n_par = (int(v) for v in values)
    if n_perp * n_par > MAX_BINS:
        raise InputError(f"npt = {n_perp} × {n_par} bins; expected at most {MAX_BINS}")
    return [n_perp, n_par]


def q_axes(npt: list[int], q_max: float) -> tuple[np.ndarray, np.ndarray]:
    """Bin centres (q_perp, q_par) of the grid, as :func:`pyscatter.geometry.q_map` makes it."""
    out = []
    for n in npt:
        edges = np.linspace(-q_max, q_max, n + 1)
        out.append(0.5 * (edges[1:] + edges[:-1]))
    return out[0], out[1]


class QSpaceMap(ScatterProcess):
    """Regrid every frame on a (q_perp, q_par) image (see the module docstring for the axes).

    Parameters
    ----------
    h5_main : h5py.Dataset
        Image main dataset (positions × Row·Col): ``Raw_Data`` or caved frames.
    npt : int or (int, int)
        Bins along (q_perp, q_par); one number for both.
    q_max : float, optional
        Half-width of the grid in ``unit``; default the largest ``|q| cos θ`` on the detector
        (recorded).
    director_deg : float
        Direction of q_par (degrees, pyFAI's chi).
    unit : {"q_nm^-1", "q_A^-1"}
    **options
        ``poni`` (default: the geometry recorded with the source), ``mask`` (extra, stored in
        the group), ``use_file_mask``, ``dummy``, ``delta_dummy`` (default: the recorded
        value), ``correct_solid_angle`` and ``polarization_factor``, then the execution options
        of :class:`~pyscatter.processes.base.ScatterProcess`.
    """

    process_name = "QSpaceMap"
    factory = "pyscatter.processes.qspace_worker:build"
    block_input_mb = 64
    options = QMAP_OPTIONS

    def __init__(
        self,
        h5_main: h5py.Dataset,
        *,
        npt: int | tuple[int, int] = 256,
        q_max: float | None = None,
        director_deg: float = 0.0,
        unit: str = "q_nm^-1",
        **options: Any,
    ) -> None:
        detector = {k: options.pop(k) for k in list(options) if k in {o.name for o in QMAP_OPTIONS}}
        if unit not in Q_UNITS:
            raise InputError(f"unsupported unit {unit!r}; expected one of {', '.join(Q_UNITS)}")
        bins = check_npt(npt)
        if (
            isinstance(director_deg, bool)
            or not isinstance(director_deg, (int, float))
            or not (math.isfinite(director_deg))
        ):
            raise InputError(f"director_deg = {director_deg!r}; expected a finite angle in degrees")
        setup = FrameSetup.from_options(h5_main, detector, allowed=QMAP_OPTIONS, need_geometry=True)
        q_par, q_perp = q_parallel_perpendicular(
            setup.integrator, setup.frame_shape, director_deg=director_deg, unit=unit
        )
        reach = float(np.hypot(q_par, q_perp).max())
        if q_max is None:
            q_max = reach
        elif (
            isinstance(q_max, bool)
            or not isinstance(q_max, (int, float))
            or not (math.isfinite(q_max) and q_max > 0)
        ):
            raise InputError(f"q_max = {q_max!r}; expected a positive number in {unit}")
        self.setup = setup
        params = {
            "npt": bins,
            "q_max": float(q_max),
            "director_deg": float(director_deg),
            "unit": unit,
            **setup.record(corrections=True),
        }
        super().__init__(h5_main, params, **options)

    @classmethod
    def default_source(cls, h5: h5py.File) -> h5py.Dataset:
        """The raw frames (the first ``Raw_Data`` of detector images)."""
        return raw_frames(h5)

    def _worker_parameters(self) -> str:
        params = dict(self.parameters, source=self._source.name)
        group = getattr(self, "h5_results_grp", None)
        masks = [params["mask_file_dataset"]] if params["mask_file_dataset"] else []
        if group is not None and "Mask" in group:
            masks.append(group["Mask"].name)
        params["mask_datasets"] = masks
        return json.dumps(params, sort_keys=True)

    def _local_function(self):
        if getattr(self, "_local", None) is None:
            from pyscatter.processes.qspace_worker import make_function

            mask = self.setup.input_mask(self._source.file)
            params = dict(self.parameters, source=self._source.name)
            self._local = make_function(self.setup.integrator, params, mask)
        return self._local

    def _outputs(self) -> list[Output]:
        unit = _UNIT_LABELS[self.parameters["unit"]]
        q_perp, q_par = q_axes(self.parameters["npt"], self.parameters["q_max"])
        dims = (Dim("q_perp", unit, q_perp), Dim("q_par", unit, q_par))
        units = str(self._source.attrs.get("units", "counts"))
        return [Output("Intensity", "Intensity", units, dims, dtype=np.float32)]

    def _bytes_per_position(self) -> int:
        n_pix = self.setup.frame_shape[0] * self.setup.frame_shape[1]
        n_bins = self.parameters["npt"][0] * self.parameters["npt"][1]
        # the raw frame (twice with read-ahead), the kernel's float64 copy and validity map,
        # its float64 sums, counts and mean per bin, the float32 output
        raw = self._source.dtype.itemsize * self._read_buffers()
        return n_pix * (raw + 8 + 1 + 8) + n_bins * (8 * 3 + 4)

    def _setup_extra(self, group: h5py.Group) -> None:
        if self.setup.extra_mask is not None:
            group.create_dataset("Mask", data=self.setup.extra_mask)
        geometry = self.parameters["geometry"]
        group.attrs["geometry"] = geometry
        group.attrs["axes_description"] = (
            "q_par along the in-plane direction director_deg (pyFAI chi), q_perp across it "
            "towards increasing chi; components of the transverse part of q, |q| cos(theta); "
            "with director_deg = 0 in transmission: q_par = q_x (columns), q_perp = q_z (rows)"
        )
