"""Azimuthal integration of every frame of a scan: I(q), or a cake I(chi, q), with sigma."""

from __future__ import annotations

import hashlib
import json
import logging
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from pyscatter.errors import InputError
from pyscatter.geometry import check_geometry, integrator_from_config, short_error
from pyscatter.io.usid import Dim, main_datasets
from pyscatter.processes.base import Output, ScatterProcess
from pyscatter.processes.execution import release_memory
from pyscatter.processes.integration_worker import integrator_options, make_function

log = logging.getLogger(__name__)

UNITS = ("q_nm^-1", "q_A^-1", "2th_deg", "2th_rad", "r_mm")
MAX_NPT = 100_000
"""Most radial (or azimuthal) bins: far more than any detector has pixels along a radius."""
MAX_BINS = 4_000_000
"""Most bins of one result (npt × npt_azim): 16 MB of float32 per position."""
NEGATIVE_FRACTION_WARNING = 0.001
"""Unmasked negative pixels above this fraction of a frame are warned about (detector gaps)."""
ERROR_MODELS = (None, "poisson", "azimuthal")
ENGINES = ("batched", "pyfai")
DEFAULT_METHOD = ("bbox", "csr", "cython")
_UNIT_LABELS = {
    "q_nm^-1": ("q", "1/nm"),
    "q_A^-1": ("q", "1/A"),
    "2th_deg": ("2theta", "deg"),
    "2th_rad": ("2theta", "rad"),
    "r_mm": ("r", "mm"),
}


def load_geometry(poni: str | Path | dict | None, h5_main: h5py.Dataset) -> dict[str, Any]:
    """pyFAI geometry config: from a PONI file or dict, else the one recorded in the file.

    Checked by :func:`pyscatter.geometry.check_geometry` (finite, physical numbers).
    """
    import pyFAI

    if poni is None:
        for obj in (h5_main, h5_main.parent, h5_main.parent.parent):
            if "geometry" in obj.attrs:
                where = f"{h5_main.file.filename}: geometry recorded with {obj.name}"
                return check_geometry(json.loads(obj.attrs["geometry"]), where=where)
        raise InputError(
            f"{h5_main.file.filename}: no geometry recorded with {h5_main.name}; "
            "give a PONI file (--poni FILE)"
        )
    if isinstance(poni, dict):
        try:
            ai = pyFAI.load(poni)
        except Exception as err:  # noqa: BLE001 - pyFAI raises many kinds
            raise InputError(
                f"poni (dict): not a pyFAI geometry config ({short_error(err)})"
            ) from err
        return check_geometry(ai, where="poni (dict)")
    path = Path(poni)
    if not path.is_file():
        raise InputError(f"PONI file not found: {path}")
    try:
        ai = pyFAI.load(str(path))
    except Exception as err:
        raise InputError(f"{path}: not a PONI file pyFAI can read ({short_error(err)})") from err
    return check_geometry(ai, where=str(path))


def _per_position(h5_main: h5py.Dataset, name: str, what: str) -> str:
    """Absolute path of a per-position dataset named relative to the channel or measurement."""
    n = h5_main.shape[0]
    for base in (h5_main.parent, h5_main.parent.parent, h5_main.file):
        obj = base.get(name)
        if isinstance(obj, h5py.Dataset):
            if obj.shape != (n,):
                raise InputError(
                    f"{what} {obj.name} has shape {obj.shape}; expected one value per position ({n},)"
                )
            return obj.name
    raise InputError(f"{what} {name!r}: no such dataset beside {h5_main.name}")


def normalization_parameters(h5_main, monitor, transmission, exposure_time) -> dict[str, Any]:
    """Resolve monitor/transmission/exposure options into dataset paths and a constant."""
    paths: list[str] = []
    constant = 1.0
    if monitor == "auto":
        recorded = h5_main.parent.parent.attrs.get("monitor")
        if "Monitor" in h5_main.parent:
            paths.append(_per_position(h5_main, "Monitor", "monitor"))
        elif recorded is not None:
            name = str(recorded)
            paths.append(
                _per_position(h5_main, name if "/" in name else f"Counters/{name}", "monitor")
            )
        else:
            raise InputError(
                f"monitor='auto': {h5_main.file.filename} records no monitor; give a dataset "
                "path (e.g. Counters/I0) or translate with --monitor"
            )
    elif monitor is not None:
        paths.append(_per_position(h5_main, monitor, "monitor"))
    for what, value in (("transmission", transmission), ("exposure_time", exposure_time)):
        if value is None:
            continue
        if isinstance(value, str):
            paths.append(_per_position(h5_main, value, what))
            continue
        try:
            number = float(value)
        except (TypeError, ValueError):
            number = math.nan
        if not (math.isfinite(number) and number > 0):
            raise InputError(
                f"{what} = {value!r}; expected a finite number > 0 or a per-position dataset path"
            )
        constant *= number
    digest = hashlib.sha256()
    for path in paths:  # the values, so that changed monitor readings are new parameters
        digest.update(np.ascontiguousarray(h5_main.file[path][()]).tobytes())
    return {
        "normalization_datasets": paths,
        "normalization_constant": None if constant == 1.0 else constant,
        "normalization_sha256": digest.hexdigest() if paths else None,
    }


def recorded_dummy(h5_main: h5py.Dataset, delta_dummy: float | None):
    """(dummy, delta_dummy) recorded with the measurement (ESRF ``Dummy``/``DDummy``), or Nones."""
    for obj in (h5_main, h5_main.parent, h5_main.parent.parent):
        if "dummy" in obj.attrs:
            dummy = float(obj.attrs["dummy"])
            if dummy == 0:  # ESRF convention: Dummy 0 means no dummy pixels
                return None, None
            recorded = obj.attrs.get("delta_dummy")
            delta = delta_dummy if delta_dummy is not None else recorded
            return dummy, None if delta is None else float(delta)
    return None, delta_dummy


def frame_shape(h5_main: h5py.Dataset) -> tuple[int, int]:
    """(rows, cols) of the frames of an image main dataset."""
    spec = h5_main.file[h5_main.attrs["Spectroscopic_Indices"]]
    labels = [x.decode() if isinstance(x, bytes) else str(x) for x in spec.attrs["labels"]]
    if labels != ["Row", "Col"]:
        raise InputError(
            f"{h5_main.name} has spectroscopic dims {labels}; azimuthal integration needs "
            "detector images (Row, Col)"
        )
    inds = spec[()]
    return int(inds[0].max()) + 1, int(inds[1].max()) + 1


def _sha(array: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()


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


def _method_parts(method: Any) -> list[str]:
    from pyFAI.integrator.azimuthal import AzimuthalIntegrator  # noqa: F401  (registers methods)
    from pyFAI.method_registry import IntegrationMethod

    splits = sorted({m.split for m in IntegrationMethod._registry} | {"no", "bbox", "full"})
    allowed = (
        ("split", splits),
        ("algorithm", list(IntegrationMethod.AVAILABLE_ALGOS)),
        ("implementation", list(IntegrationMethod.AVAILABLE_IMPLS)),
    )
    text = method if isinstance(method, str) else ",".join(str(m) for m in method)
    parts = [p.strip().lower() for p in text.split(",")]
    if len(parts) != 3 or any(
        p not in values for p, (_, values) in zip(parts, allowed, strict=True)
    ):
        expected = "; ".join(f"{name} one of {', '.join(values)}" for name, values in allowed)
        raise InputError(
            f"method {text!r}: expected split,algorithm,implementation with {expected} "
            "(e.g. bbox,csr,cython)"
        )
    return parts


def resolve_method(
    method: Any, *, dim: int, engine: str = "batched", allow_fallback: bool = False
) -> list[str]:
    """The pyFAI method that will run, as [split, algorithm, implementation].

    Resolved with pyFAI's registry (``IntegrationMethod.select_one_available``). A method not
    available here (e.g. ``opencl`` without OpenCL) is refused unless ``allow_fallback``, when
    pyFAI's closest available one is used, logged and returned, so that what is recorded is what
    ran. The "batched" engine applies pyFAI's Cython CSR matrix, so it needs ``csr`` and runs
    the ``cython`` implementation.

    Raises
    ------
    InputError
        A malformed or unknown method (the allowed values are listed), or one that would not
        run as asked and ``allow_fallback`` is False.
    """
    from pyFAI.method_registry import IntegrationMethod

    parts = _method_parts(method)
    asked = ",".join(parts)
    chosen = IntegrationMethod.select_one_available(tuple(parts), dim=dim, degradable=False)
    if chosen is None:
        closest = IntegrationMethod.select_one_available(tuple(parts), dim=dim, degradable=True)
        ran = None if closest is None else f"{closest.split_lower},{closest.algo_lower},"
        ran = None if closest is None else ran + closest.impl_lower
        if not allow_fallback or closest is None:
            available = sorted(
                {
                    f"{m.split_lower},{m.algo_lower},{m.impl_lower}"
                    for m in IntegrationMethod.select_method(dim=dim)
                }
            )
            hint = f", or allow_fallback (--allow-fallback) to run {ran}" if ran else ""
            raise InputError(
                f"method {asked} is not available here for {dim}-D integration; available: "
                f"{'; '.join(available)}{hint}"
            )
        log.warning("method %s is not available here; running %s (allow_fallback)", asked, ran)
        chosen = closest
    resolved = [chosen.split_lower, chosen.algo_lower, chosen.impl_lower]
    if engine == "batched":
        if resolved[1] != "csr":
            raise InputError(
                f"method {asked}: the batched engine needs the csr algorithm "
                "(e.g. bbox,csr,cython); use engine='pyfai' (--engine pyfai) for other algorithms"
            )
        if resolved[2] != "cython":
            if not allow_fallback:
                raise InputError(
                    f"method {asked}: the batched engine applies pyFAI's Cython CSR matrix, so the "
                    f"{resolved[2]} implementation would not run; ask for {resolved[0]},csr,cython, "
                    "use engine='pyfai' (--engine pyfai), or allow_fallback (--allow-fallback)"
                )
            log.warning("method %s: the batched engine runs %s,csr,cython", asked, resolved[0])
            resolved[2] = "cython"
    return resolved


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
        try:
            lo, hi = (float(v) for v in value)
        except (TypeError, ValueError):
            raise InputError(f"{name} = {value!r}; expected two numbers (min, max)") from None
        if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
            raise InputError(f"{name} = ({lo}, {hi}); expected finite numbers with min < max")
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


def warn_negative_pixels(
    h5_main: h5py.Dataset,
    shape: tuple[int, int],
    masked: Any,
    dummy: float | None,
    delta_dummy: float | None,
) -> None:
    """Log a warning when the first frame has many negative, unmasked pixels (detector gaps)."""
    if h5_main.shape[0] == 0 or h5_main.dtype.kind == "u":
        return
    frame = np.asarray(h5_main[0]).reshape(shape)
    negative = frame < 0
    if dummy is not None:
        negative &= np.abs(frame.astype(np.float64) - dummy) > (delta_dummy or 0)
    if masked is not None:
        negative &= ~np.asarray(masked, dtype=bool)
    fraction = float(negative.mean())
    if fraction > NEGATIVE_FRACTION_WARNING:
        log.warning(
            "%s: %.1f %% of the pixels of the first frame are negative and neither masked nor "
            "a dummy (detector gaps?); they lower the intensities: give a mask (--mask FILE) or "
            "their value as the dummy (--dummy VALUE)",
            h5_main.file.filename,
            100 * fraction,
        )


class AzimuthalIntegration(ScatterProcess):
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
    poni : path or dict, optional
        Geometry; default: the geometry recorded in the file by the translator.
    mask : ndarray, optional
        (rows, cols), nonzero = masked; combined with the mask recorded in the file.
    use_file_mask : bool
        Use the ``Mask`` dataset recorded beside the source (default True).
    dummy, delta_dummy : float, optional
        Pixels whose value equals ``dummy`` (within ``delta_dummy``) are ignored. Default: the
        value the translator recorded (ESRF ``Dummy``/``DDummy``, or ``--dummy``), if any.
    correct_solid_angle : bool
    polarization_factor : float, optional
        pyFAI's polarization factor in [-1, 1]; ``None`` for no correction.
    dark, flat : ndarray, optional
        (rows, cols); stored in the results group so the file alone reproduces the result.
    error_model : {None, "poisson", "azimuthal"}
        Writes ``Intensity_Sigma`` when set.
    method : sequence of str
        pyFAI method (split, algorithm, implementation); default ``("bbox", "csr", "cython")``.
        Resolved by :func:`resolve_method`: the method that runs is the one recorded.
    allow_fallback : bool
        Let pyFAI run its closest available method when ``method`` is not available here
        (recorded as what ran); default False: refuse.
    engine : {"batched", "pyfai"}
        ``"batched"`` applies pyFAI's sparse matrix to a block of frames at once (fast default);
        ``"pyfai"`` calls ``integrate1d_ng``/``integrate2d_ng`` frame by frame.
    radial_range, azimuth_range : (float, float), optional
    monitor : str, optional
        Normalise each position by a monitor: ``"auto"`` for the one the translator recorded
        (``Monitor``, or the counter named by the measurement's ``monitor`` attribute), or the
        path of a per-position dataset. The raw frames are never changed: this is a parameter.
    transmission, exposure_time : float or str, optional
        Further normalisation, a constant or the path of a per-position dataset. The result is
        divided by monitor × transmission × exposure_time, as pyFAI's ``normalization_factor``.
    **kwargs
        Execution options of :class:`~pyscatter.processes.base.ScatterProcess`.
    """

    process_name = "AzimuthalIntegration"
    block_input_mb = 64
    factory = "pyscatter.processes.integration_worker:build"

    def __init__(
        self,
        h5_main: h5py.Dataset,
        *,
        npt: int = 1000,
        unit: str = "q_nm^-1",
        npt_azim: int | None = None,
        poni: str | Path | dict | None = None,
        mask: np.ndarray | None = None,
        use_file_mask: bool = True,
        dummy: float | None = None,
        delta_dummy: float | None = None,
        correct_solid_angle: bool = True,
        polarization_factor: float | None = None,
        dark: np.ndarray | None = None,
        flat: np.ndarray | None = None,
        error_model: str | None = None,
        method: Sequence[str] = DEFAULT_METHOD,
        engine: str = "batched",
        radial_range: tuple[float, float] | None = None,
        azimuth_range: tuple[float, float] | None = None,
        monitor: str | None = None,
        transmission: float | str | None = None,
        exposure_time: float | str | None = None,
        allow_fallback: bool = False,
        **kwargs: Any,
    ) -> None:
        shape = frame_shape(h5_main)
        if unit not in UNITS:
            raise InputError(f"unsupported unit {unit!r}; expected one of {', '.join(UNITS)}")
        if error_model not in ERROR_MODELS:
            raise InputError(
                f"unsupported error_model {error_model!r}; expected one of "
                f"{', '.join(str(m) for m in ERROR_MODELS)}"
            )
        if engine not in ENGINES:
            raise InputError(f"unsupported engine {engine!r}; expected one of {', '.join(ENGINES)}")
        npt, npt_azim = check_bins(npt, npt_azim)
        method = resolve_method(
            method, dim=1 if npt_azim is None else 2, engine=engine, allow_fallback=allow_fallback
        )
        if polarization_factor is not None and not -1 <= float(polarization_factor) <= 1:
            raise InputError(f"polarization_factor must lie in [-1, 1]; got {polarization_factor}")
        self._extra = {}
        for name, arr in (("Mask", mask), ("Dark", dark), ("Flat", flat)):
            if arr is not None:
                arr = np.asarray(arr)
                if arr.shape != shape:
                    raise InputError(
                        f"{name.lower()} has shape {arr.shape}; the detector frames are {shape}"
                    )
                self._extra[name] = (arr != 0).astype(np.uint8) if name == "Mask" else arr
        if dummy is None:  # the detector's invalid-pixel value the translator recorded
            dummy, delta_dummy = recorded_dummy(h5_main, delta_dummy)
        geometry = load_geometry(poni, h5_main)
        ai = integrator_from_config(geometry)
        radial_range, azimuth_range = check_ranges(ai, shape, unit, radial_range, azimuth_range)
        self._shape = shape
        file_mask = h5_main.parent.get("Mask") if use_file_mask else None
        masked = None if file_mask is None else file_mask[()] != 0
        if ai.detector.mask is not None and ai.detector.mask.shape == shape:
            masked = ai.detector.mask != 0 if masked is None else masked | (ai.detector.mask != 0)
        if "Mask" in self._extra:
            extra = self._extra["Mask"] != 0
            masked = extra if masked is None else masked | extra
        params = {
            "npt": int(npt),
            "unit": unit,
            "npt_azim": None if npt_azim is None else int(npt_azim),
            "geometry": json.dumps(geometry, sort_keys=True),
            "frame_shape": list(shape),
            "mask_file_dataset": None if file_mask is None else file_mask.name,
            "mask_sha256": None if "Mask" not in self._extra else _sha(self._extra["Mask"]),
            "dark_sha256": None if "Dark" not in self._extra else _sha(self._extra["Dark"]),
            "flat_sha256": None if "Flat" not in self._extra else _sha(self._extra["Flat"]),
            "dummy": dummy,
            "delta_dummy": delta_dummy,
            "correct_solid_angle": bool(correct_solid_angle),
            "polarization_factor": polarization_factor,
            "error_model": error_model,
            "method": method,
            "engine": engine,
            **normalization_parameters(h5_main, monitor, transmission, exposure_time),
            "radial_range": radial_range,
            "azimuth_range": azimuth_range,
        }
        warn_negative_pixels(h5_main, shape, masked, dummy, delta_dummy)
        super().__init__(h5_main, params, **kwargs)

    @classmethod
    def default_source(cls, h5: h5py.File) -> h5py.Dataset:
        raws = [d for d in main_datasets(h5) if d.name.endswith("/Raw_Data")]
        if not raws:
            raise InputError(f"{h5.filename}: no Raw_Data main dataset; translate the data first")
        return raws[0]

    def _worker_parameters(self) -> str:
        params = dict(self.parameters, source=self._source.name)
        group = getattr(self, "h5_results_grp", None)
        masks = [params["mask_file_dataset"]] if params["mask_file_dataset"] else []
        params["dark_dataset"] = params["flat_dataset"] = None
        if group is not None:
            if "Mask" in group:
                masks.append(group["Mask"].name)
            params["dark_dataset"] = group["Dark"].name if "Dark" in group else None
            params["flat_dataset"] = group["Flat"].name if "Flat" in group else None
        params["mask_datasets"] = masks
        return json.dumps(params, sort_keys=True)

    def _setup_extra(self, group: h5py.Group) -> None:
        for name, arr in self._extra.items():
            group.create_dataset(name, data=arr)

    def _local_function(self):
        """Built once in this process from the in-memory mask, dark and flat."""
        if getattr(self, "_local", None) is None:
            params = dict(self.parameters, source=self._source.name)
            h5 = self._source.file
            mask_path = params["mask_file_dataset"]
            options = integrator_options(
                h5, dict(params, mask_datasets=[mask_path] if mask_path else [])
            )
            if "Mask" in self._extra:
                base = options["mask"]
                extra = self._extra["Mask"] != 0
                options["mask"] = extra if base is None else (base | extra)
            options["dark"] = self._extra.get("Dark")
            options["flat"] = self._extra.get("Flat")
            ai = integrator_from_config(params["geometry"])
            self._local = make_function(ai, params, options)
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
