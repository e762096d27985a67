"""Grazing incidence as a step: I(q_xy, q_z) maps, or I(q, chi), of every frame of a thin film.

:class:`GrazingIncidence` regrids every raw frame with pyFAI's
:class:`~pyFAI.integrator.fiber.FiberIntegrator` (its grazing-incidence CSR matrix applied to
blocks of frames, :mod:`pyscatter.kernels.grazing`) using each position's own incident angle
(and tilt angle): a number for the whole scan, a position dim of the scan (``th``) or a
per-position dataset; and each position's own geometry when the scan records one per position
(:mod:`pyscatter.io.geometry_series`). Positions with the same geometry and angles share one
matrix; all land on one common grid (the ranges given, else the union of what every group's
unmasked pixels reach, recorded), with NaN in the bins a position does not reach.

The result is one main dataset positions × (npt_oop · npt_ip): spectroscopic dims ``q_z``
(slow) and ``q_xy`` (fast) for ``mode="qmap"``, ``chi`` (degrees from the sample normal) and
``q`` for ``mode="chi"``, so :func:`pyscatter.to_xarray` gives (*positions, q_z, q_xy).
Conventions (pyFAI's): ``q_xy`` is pyFAI's ``qip``, ``q_z`` its ``qoop``; the sample plane is
set by ``sample_orientation`` (pyFAI's EXIF-like code 1–8), recorded with the angles.
Refraction at the film surface is not corrected. The detector set-up is
:class:`~pyscatter.processes.detector.DetectorSetup` without ``method`` (grazing incidence runs
pyFAI's ``no,csr,cython``: no pixel splitting, as pyFAI asks).
"""

from __future__ import annotations

import json
from typing import Any

import h5py
import numpy as np

from pyscatter.errors import InputError
from pyscatter.io.usid import Dim, dims_of
from pyscatter.kernels.grazing import MODES, UNITS, gi_pixel_maps
from pyscatter.processes.base import Output, ScatterProcess
from pyscatter.processes.detector import DetectorSetup, SetupHooks, split_options
from pyscatter.processes.execution import release_memory
from pyscatter.processes.grazing_options import GI_OPTIONS
from pyscatter.processes.grazing_worker import (
    angle_values,
    finite_range,
    make_function,
    position_groups,
)
from pyscatter.processes.integration import check_bins, range_pair

__all__ = ["GI_OPTIONS", "GrazingIncidence"]

_LABELS = {"nm^-1": "1/nm", "A^-1": "1/A"}


def _orientation(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not 1 <= value <= 8:
        raise InputError(
            f"sample_orientation = {value!r}; expected pyFAI's sample orientation, a whole "
            "number in [1, 8]"
        )
    return int(value)


class GrazingIncidence(SetupHooks, ScatterProcess):
    """Grazing-incidence maps of every frame (see the module docstring for the conventions).

    Parameters
    ----------
    h5_main : h5py.Dataset
        Image main dataset (positions × Row·Col), e.g. ``Raw_Data``.
    incident_angle : float or str
        Incident angle in degrees, in [0, 90): a number, a position dim of the scan (``"th"``)
        or a per-position dataset (``"Counters/th"``, resolved like a monitor).
    tilt_angle : float or str
        Tilt angle (rotation of the sample about the beam) in degrees, in (-90, 90); as above.
    sample_orientation : int
        pyFAI's sample orientation, 1–8 (which detector direction is the sample normal).
    mode : {"qmap", "chi"}
        I(q_z, q_xy), or I(chi, q) in grazing-incidence geometry.
    unit : {"nm^-1", "A^-1"}
    npt_ip, npt_oop : int
        Bins along q_xy (or q) and q_z (or chi).
    ip_range, oop_range : (float, float), optional
        Ranges of q_xy (or q) and q_z (or chi, degrees); default the union of what the
        positions' unmasked pixel centres reach (recorded).
    **options
        The detector set-up (:data:`~pyscatter.processes.grazing_options.GI_OPTIONS`: poni, masks, dummy, dark, flat, solid angle,
        polarization, normalisation, error model), then the execution options.
    """

    process_name = "GrazingIncidence"
    factory = "pyscatter.processes.grazing_worker:build"
    block_input_mb = 64
    options = GI_OPTIONS

    def __init__(
        self,
        h5_main: h5py.Dataset,
        *,
        incident_angle: float | str | None = None,
        tilt_angle: float | str = 0.0,
        sample_orientation: int = 1,
        mode: str = "qmap",
        unit: str = "nm^-1",
        npt_ip: int = 500,
        npt_oop: int = 500,
        ip_range: tuple[float, float] | None = None,
        oop_range: tuple[float, float] | None = None,
        **options: Any,
    ) -> None:
        if len(dims_of(h5_main, "Spectroscopic")) != 2:
            raise InputError(
                f"{h5_main.name}: grazing incidence needs detector images (Row, Col); this "
                "source holds 1-D spectra"
            )
        if mode not in MODES or unit not in UNITS:
            raise InputError(
                f"mode = {mode!r}, unit = {unit!r}; expected mode one of {', '.join(MODES)} "
                f"and unit one of {', '.join(UNITS)}"
            )
        if incident_angle is None:
            raise InputError(
                "incident_angle is required: degrees, a position dim or a per-position dataset"
            )
        n_ip, n_oop = check_bins(npt_ip, npt_oop)
        orientation = _orientation(sample_orientation)
        for key in ("method", "allow_fallback"):
            if key in options:
                raise InputError(f"{key}: grazing incidence always runs pyFAI's no,csr,cython")
        detector, execution = split_options(options)
        setup = DetectorSetup.from_options(
            h5_main, dim=2, engine="batched", method="no,csr,cython", **detector
        )
        self.setup = setup
        incident, incident_record = angle_values(h5_main, "incident_angle", incident_angle)
        tilt, tilt_record = angle_values(h5_main, "tilt_angle", tilt_angle)
        groups = None if setup.series is None else setup.series.groups()[1]
        self._keys, self._index = position_groups(groups, incident, tilt)
        configs = [setup.geometry] if setup.series is None else setup.series.group_configs()
        self._configs = [configs[int(k[0])] for k in self._keys]
        given: list[list[float] | None] = [
            None if r is None else [*range_pair(name, r)]
            for name, r in (("ip_range", ip_range), ("oop_range", oop_range))
        ]
        ranges = self._union(given, mode, unit, orientation, h5_main.file)
        params = {
            "mode": mode,
            "unit": unit,
            "npt_ip": int(n_ip),
            "npt_oop": int(n_oop or 1),
            "ip_range": ranges[0],
            "oop_range": ranges[1],
            "incident_angle": incident_record,
            "tilt_angle": tilt_record,
            "sample_orientation": orientation,
            **setup.record(),
        }
        super().__init__(h5_main, params, **execution)

    def _union(self, ranges, mode, unit, orientation, h5) -> list[list[float]]:
        """The ranges, those not given the union over the groups of their unmasked pixels."""
        if None not in ranges:
            return ranges
        mask = self.setup.combined_mask(h5)
        fast: list[np.ndarray] = []
        slow: list[np.ndarray] = []
        for config, key in zip(self._configs, self._keys, strict=True):
            a, b = gi_pixel_maps(
                config,
                self.setup.frame_shape,
                mode=mode,
                unit=unit,
                incident_deg=float(key[1]),
                tilt_deg=float(key[2]),
                sample_orientation=orientation,
            )
            if mask is not None:
                a, b = a[~mask], b[~mask]
            fast.append(a)
            slow.append(b)
        if not fast:
            raise InputError("no position of this scan has a known geometry")
        return [
            ranges[0] if ranges[0] is not None else finite_range(fast),
            ranges[1] if ranges[1] is not None else finite_range(slow),
        ]

    @classmethod
    def default_source(cls, h5: h5py.File) -> h5py.Dataset:
        """The raw frames (the first ``Raw_Data`` of detector images)."""
        from pyscatter.processes.frame_setup import raw_frames

        return raw_frames(h5)

    def _local_function(self):
        """Built once in this process from the set-up's masks, dark and flat."""
        if getattr(self, "_local", None) is None:
            params = dict(self.parameters, source=self._source.name)
            setup = self.setup
            arrays = setup.local_arrays(self._source.file)
            self._local = make_function(params, arrays, self._configs, self._keys, self._index)
            release_memory()
        return self._local

    def _outputs(self) -> list[Output]:
        if getattr(self, "_outputs_cache", None) is None:
            func = self._local_function()
            label = _LABELS[self.parameters["unit"]]
            if self.parameters["mode"] == "qmap":
                dims = (Dim("q_z", label, func.slow), Dim("q_xy", label, func.fast))
            else:
                dims = (Dim("chi", "deg", func.slow), Dim("q", label, func.fast))
            units = "a.u."
            outs = [Output("Intensity", "Intensity", units, dims, dtype=np.float32)]
            if self.parameters["error_model"] is not None:
                outs.append(
                    Output("Intensity_Sigma", "Intensity sigma", units, dims, dtype=np.float32)
                )
            self._outputs_cache = outs
        return self._outputs_cache

    def _bytes_per_position(self) -> int:
        n_pix = self.setup.frame_shape[0] * self.setup.frame_shape[1]
        width = self.parameters["npt_ip"] * self.parameters["npt_oop"]
        raw = self._source.dtype.itemsize * self._read_buffers()
        per_pixel = raw + 4 + (4 if self.parameters["error_model"] else 0)
        # the outputs (float32, twice with sigma) and the float64 sums per bin
        return n_pix * per_pixel + width * (8 + 4 * (2 if self.parameters["error_model"] else 1))

    def _setup_extra(self, group: h5py.Group) -> None:
        super()._setup_extra(group)
        group.attrs["geometry"] = self.parameters["geometry"]
        group.attrs["axes_description"] = json.dumps(
            {
                "q_xy": "pyFAI qip: in the sample plane, signed by its horizontal component",
                "q_z": "pyFAI qoop: along the sample normal",
                "q": "pyFAI qtot: |q|",
                "chi": "pyFAI chigi: arctan2(q_xy, q_z) in degrees, 0 along the sample normal",
                "sample_orientation": self.parameters["sample_orientation"],
                "refraction": "not corrected",
            }
        )
