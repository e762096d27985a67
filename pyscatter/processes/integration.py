"""Azimuthal integration of every frame of a scan: I(q), or a cake I(chi, q), with sigma."""

from __future__ import annotations

import logging
import math
from typing import Any

import h5py
import numpy as np

from pyscatter.errors import InputError
from pyscatter.io.usid import Dim, main_datasets
from pyscatter.processes.base import Output, ScatterProcess
from pyscatter.processes.detector import (  # noqa: F401  (their historical home)
    DEFAULT_METHOD,
    ERROR_MODELS,
    NEGATIVE_FRACTION_WARNING,
    DetectorSetup,
    SetupHooks,
    frame_shape,
    load_geometry,
    normalization_parameters,
    recorded_dummy,
    resolve_method,
    split_options,
    worker_parameters,
)
from pyscatter.processes.execution import release_memory
from pyscatter.processes.integration_worker import integrator_options, make_function
from pyscatter.processes.options import DETECTOR_OPTIONS

log = logging.getLogger(__name__)

UNITS = ("q_nm^-1", "q_A^-1", "2th_deg", "2th_rad", "r_mm")
MAX_NPT = 100_000
"""Most radial (or azimuthal) bins: far more than any detector has pixels along a radius."""
MAX_BINS = 4_000_000
"""Most bins of one result (npt × npt_azim): 16 MB of float32 per position."""
ENGINES = ("batched", "pyfai")
_UNIT_LABELS = {
    "q_nm^-1": ("q", "1/nm"),
    "q_A^-1": ("q", "1/A"),
    "2th_deg": ("2theta", "deg"),
    "2th_rad": ("2theta", "rad"),
    "r_mm": ("r", "mm"),
}


def check_bins(npt: Any, npt_azim: Any) -> tuple[int, int | None]:
    """``npt`` and ``npt_azim`` as ints within :data:`MAX_NPT` and :data:`MAX_BINS`."""
    out: list[int | None] = []
    for name, value in (("npt", npt), ("npt_azim", npt_azim)):
        if value is None and name == "npt_azim":
            out.append(None)
            continue
        try:
            number = int(value)
            whole = not isinstance(value, bool) and number == float(value)
        except (TypeError, ValueError, OverflowError):
            whole = False
        if not whole or not 1 <= number <= MAX_NPT:
            raise InputError(
                f"{name} = {value!r}; expected a whole number of bins in [1, {MAX_NPT}]"
            )
        out.append(number)
    bins = out[0] * (out[1] or 1)  # type: ignore[operator]
    if bins > MAX_BINS:
        raise InputError(
            f"npt × npt_azim = {out[0]} × {out[1]} = {bins} bins; expected at most {MAX_BINS}"
        )
    return out[0], out[1]  # type: ignore[return-value]


def range_pair(name: str, value: Any) -> tuple[float, float]:
    """``value`` as a range (lo, hi) of finite floats with lo < hi; ``name`` for the error."""
    try:
        lo, hi = (float(v) for v in value)
    except (TypeError, ValueError):
        raise InputError(f"{name} = {value!r}; expected two numbers (min, max)") from None
    if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
        raise InputError(f"{name} = ({lo}, {hi}); expected finite numbers with min < max")
    return lo, hi


def _detector_extent(ai: Any, shape: tuple[int, int], unit: str) -> tuple[tuple, list[tuple]]:
    """(min, max) of the radial position (in ``unit``) over the pixels, and of chi (degrees)
    in pyFAI's two conventions, (-180, 180] and [0, 360)."""
    radial = ai.center_array(shape, unit=unit, scale=True)
    chi = np.degrees(ai.center_array(shape, unit="chi_rad"))
    chi_360 = np.mod(chi, 360.0)
    return (float(np.nanmin(radial)), float(np.nanmax(radial))), [
        (float(np.nanmin(c)), float(np.nanmax(c))) for c in (chi, chi_360)
    ]


def check_ranges(
    ai: Any,
    shape: tuple[int, int],
    unit: str,
    radial_range: Any,
    azimuth_range: Any,
) -> tuple[list[float] | None, list[float] | None]:
    """Radial and azimuthal ranges: finite (lo, hi) with lo < hi that meet the detector."""
    if radial_range is None and azimuth_range is None:
        return None, None
    radial_extent, chi_extents = _detector_extent(ai, shape, unit)
    out: list[list[float] | None] = []
    for name, value, extents, what in (
        ("radial_range", radial_range, [radial_extent], unit),
        ("azimuth_range", azimuth_range, chi_extents, "deg"),
    ):
        if value is None:
            out.append(None)
            continue
        lo, hi = range_pair(name, value)
        if name == "azimuth_range" and (lo < -180 or hi > 360):
            raise InputError(
                f"{name} = ({lo:g}, {hi:g}) deg; expected within [-180, 360] deg (pyFAI's chi)"
            )
        if not any(lo < high and hi > low for low, high in extents):
            low, high = extents[0]
            raise InputError(
                f"{name} = ({lo:g}, {hi:g}) {what} misses the detector, which covers "
                f"[{low:.6g}, {high:.6g}] {what}"
            )
        out.append([lo, hi])
    return out[0], out[1]


def series_ranges(
    setup: DetectorSetup,
    unit: str,
    radial: Any,
    azimuth: Any,
    *,
    cake: bool,
    mask: np.ndarray | None,
) -> tuple[list[float], list[float] | None]:
    """The ranges of a scan whose geometry changes with the position: every position lands on
    one radial axis, by default the union of what the positions' geometries see (unmasked
    pixels), and a cake on the whole circle. Positions then have NaN where they do not reach."""
    from pyscatter.geometry import integrator_from_config

    if radial is None:
        lo, hi = math.inf, -math.inf
        for config in setup.series.group_configs():
            ai = integrator_from_config(config, where=setup.series.source)
            values = ai.center_array(setup.frame_shape, unit=unit, scale=True)
            corners = ai.corner_array(setup.frame_shape, unit=unit, scale=True)[..., 0]
            if mask is not None:
                values, corners = values[~mask], corners[~mask]
            lo = min(lo, float(np.nanmin(values)), float(np.nanmin(corners)))
            hi = max(hi, float(np.nanmax(values)), float(np.nanmax(corners)))
        radial = [lo, hi]
    if cake and azimuth is None:
        azimuth = [-180.0, 180.0]
    return radial, azimuth


class AzimuthalIntegration(SetupHooks, ScatterProcess):
    """Integrate every frame azimuthally with pyFAI's geometry and sparse matrices.

    Parameters
    ----------
    h5_main : h5py.Dataset
        Image main dataset (positions × Row·Col), e.g. ``Raw_Data``.
    npt : int
        Radial bins.
    unit : str
        pyFAI radial unit, one of ``q_nm^-1``, ``q_A^-1``, ``2th_deg``, ``2th_rad``, ``r_mm``.
    npt_azim : int, optional
        Azimuthal bins of a 2-D cake (chi × q); ``None`` for 1-D I(q).
    engine : {"batched", "pyfai"}
        ``"batched"`` applies pyFAI's sparse matrix to a block of frames at once (fast default);
        ``"pyfai"`` calls ``integrate1d_ng``/``integrate2d_ng`` frame by frame.
    radial_range, azimuth_range : (float, float), optional
    **options
        The detector set-up, :data:`~pyscatter.processes.options.DETECTOR_OPTIONS`, checked
        by :class:`~pyscatter.processes.detector.DetectorSetup`: ``poni`` (default: the
        geometry recorded in the file), ``mask``, ``use_file_mask``, ``dummy`` and
        ``delta_dummy`` (default: the value the translator recorded, ESRF ``Dummy``/``DDummy``
        or ``--dummy``), ``dark`` and ``flat`` (stored in the results group so the file alone
        reproduces the result), ``correct_solid_angle``, ``polarization_factor`` (in
        [-1, 1]), ``monitor`` (``"auto"`` or a per-position dataset), ``transmission`` and
        ``exposure_time`` (a constant or a per-position dataset; the result is divided by
        monitor × transmission × exposure_time, as pyFAI's ``normalization_factor``; the raw
        frames are never changed), ``error_model`` (None, ``"poisson"`` or ``"azimuthal"``:
        writes ``Intensity_Sigma`` when set), ``method`` (default ``bbox,csr,cython``; the one
        that runs is recorded) and ``allow_fallback``. Then the execution options of
        :class:`~pyscatter.processes.base.ScatterProcess`.
    """

    process_name = "AzimuthalIntegration"
    block_input_mb = 64
    factory = "pyscatter.processes.integration_worker:build"
    options = DETECTOR_OPTIONS

    def __init__(
        self,
        h5_main: h5py.Dataset,
        *,
        npt: int = 1000,
        unit: str = "q_nm^-1",
        npt_azim: int | None = None,
        engine: str = "batched",
        radial_range: tuple[float, float] | None = None,
        azimuth_range: tuple[float, float] | None = None,
        **options: Any,
    ) -> None:
        if unit not in UNITS:
            raise InputError(f"unsupported unit {unit!r}; expected one of {', '.join(UNITS)}")
        if engine not in ENGINES:
            raise InputError(f"unsupported engine {engine!r}; expected one of {', '.join(ENGINES)}")
        npt, npt_azim = check_bins(npt, npt_azim)
        detector, execution = split_options(options)
        setup = DetectorSetup.from_options(
            h5_main, dim=1 if npt_azim is None else 2, engine=engine, **detector
        )
        self.setup = setup
        self._shape = setup.frame_shape
        radial, azimuth = None, None
        if radial_range is not None or azimuth_range is not None:  # pyFAI only then
            radial, azimuth = check_ranges(
                setup.integrator, setup.frame_shape, unit, radial_range, azimuth_range
            )
        if setup.series is not None:  # one common axis for every position's geometry
            radial, azimuth = series_ranges(
                setup,
                unit,
                radial,
                azimuth,
                cake=npt_azim is not None,
                mask=setup.combined_mask(h5_main.file),
            )
        params = {
            "npt": int(npt),
            "unit": unit,
            "npt_azim": None if npt_azim is None else int(npt_azim),
            **setup.record(),
            "engine": engine,
            "radial_range": radial,
            "azimuth_range": azimuth,
        }
        super().__init__(h5_main, params, **execution)

    @classmethod
    def default_source(cls, h5: h5py.File) -> h5py.Dataset:
        raws = [d for d in main_datasets(h5) if d.name.endswith("/Raw_Data")]
        if not raws:
            raise InputError(f"{h5.filename}: no Raw_Data main dataset; translate the data first")
        return raws[0]

    def _local_function(self):
        """Built once in this process from the set-up's integrator, masks, dark and flat."""
        if getattr(self, "_local", None) is None:
            params = dict(self.parameters, source=self._source.name)
            setup = self.setup
            arrays = setup.local_arrays(self._source.file)
            self._local = make_function(  # the integrator only if built: the cache may hold all
                setup.built_integrator,
                params,
                integrator_options(params, arrays),
                series=setup.series,
            )
            release_memory()
        return self._local

    def _axes(self):
        func = self._local_function()
        return func.radial, func.azimuthal

    def _outputs(self) -> list[Output]:
        if getattr(self, "_outputs_cache", None) is None:
            radial, azimuthal = self._axes()
            label, units = _UNIT_LABELS[self.parameters["unit"]]
            dims = [Dim(label, units, radial)]
            if self.parameters["npt_azim"] is not None:
                dims.insert(0, Dim("chi", "deg", azimuthal))
            outs = [Output("Intensity", "Intensity", "a.u.", tuple(dims))]
            if self.parameters["error_model"] is not None:
                outs.append(Output("Intensity_Sigma", "Intensity sigma", "a.u.", tuple(dims)))
            self._outputs_cache = outs
        return self._outputs_cache

    def _bytes_per_position(self) -> int:
        n_pix = self._shape[0] * self._shape[1]
        width = self.parameters["npt"] * (self.parameters["npt_azim"] or 1)
        # the raw frame (twice when the next block is read ahead), its float32 copy, and (with
        # sigma) a second float32 product; outputs
        raw = self._source.dtype.itemsize * self._read_buffers()
        per_pixel = raw + 4 + (4 if self.parameters["error_model"] else 0)
        return n_pix * per_pixel + width * 8
