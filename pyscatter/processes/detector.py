"""The detector set-up shared by every process that integrates raw frames.

:class:`DetectorSetup` holds, validated once, what turns a raw frame into corrected intensity:
the geometry (and the pyFAI integrator built from it, once), the masks (the file's ``Mask``
and an extra one), the invalid-pixel value (``dummy``, by default the one the translator
recorded), dark and flat images, the solid-angle and polarization corrections, the
normalisation (monitor × transmission × exposure time), the error model and the pyFAI method
that runs. :class:`~pyscatter.processes.integration.AzimuthalIntegration`,
:class:`~pyscatter.processes.profiles.AzimuthalProfiles` and
:class:`~pyscatter.processes.sectors.SectorIntegration` take the same options (declared in
:data:`pyscatter.processes.options.DETECTOR_OPTIONS`) and apply them the same way.

The parameter record. :meth:`DetectorSetup.record` gives the keys each process records in its
``parameters`` (and so in ``parameters_hash``, which decides reuse and resume). They are the
keys and values the releases before this module recorded, byte for byte, so older results
are still reused and resumed: AzimuthalIntegration records every key, with numbers as given;
profiles and sectors record the keys they always had (numbers as floats) and the newer ones
(dark, flat, normalisation) only when they are used. The version of this set-up is written as
the separate group attribute ``detector_schema`` (:data:`SCHEMA_VERSION`), outside the hash.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cached_property, partial
from pathlib import Path
from typing import Any, ClassVar

import h5py
import numpy as np

from pyscatter.errors import InputError
from pyscatter.geometry import check_geometry, integrator_from_config, short_error
from pyscatter.io.geometry_series import GeometrySeries, one_geometry_error, read_series
from pyscatter.processes.options import DETECTOR, DETECTOR_OPTIONS

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
"""Version of the detector set-up, recorded as the results group's ``detector_schema``."""
ERROR_MODELS = (None, "poisson", "azimuthal")
DEFAULT_METHOD = ("bbox", "csr", "cython")
NEGATIVE_FRACTION_WARNING = 0.001
"""Unmasked negative pixels above this fraction of a frame are warned about (detector gaps)."""
_ARRAYS = (("mask", "Mask"), ("dark", "Dark"), ("flat", "Flat"))
_NORMALIZATION_KEYS = ("normalization_datasets", "normalization_constant", "normalization_sha256")
_LEGACY_STACKED_KEYS = (
    "geometry",
    "frame_shape",
    "mask_file_dataset",
    "mask_sha256",
    "dummy",
    "delta_dummy",
    "correct_solid_angle",
    "polarization_factor",
    "error_model",
    "method",
)
"""What AzimuthalProfiles and SectorIntegration recorded before dark, flat and normalisation."""


def _sha(array: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()


# --------------------------------------------------------------------------- geometry


def recorded_geometry(h5_main: h5py.Dataset) -> tuple[str, str] | None:
    """(JSON text, where) of the geometry recorded with the source, or None."""
    for obj in (h5_main, h5_main.parent, h5_main.parent.parent):
        if "geometry" in obj.attrs:
            text = obj.attrs["geometry"]
            text = text.decode() if isinstance(text, bytes) else str(text)
            return text, f"{h5_main.file.filename}: geometry recorded with {obj.name}"
    return None


def load_integrator(poni: str | Path | dict | None, h5_main: h5py.Dataset) -> tuple[Any, dict]:
    """The pyFAI integrator and its checked config, built once.

    From a PONI file or a config dict, else from the geometry recorded with the source.
    Checked by :func:`pyscatter.geometry.check_geometry` (finite, physical numbers).
    """
    if poni is None:
        recorded = recorded_geometry(h5_main)
        if recorded is not None:
            ai = integrator_from_config(json.loads(recorded[0]), where=recorded[1])
            return ai, ai.get_config()
        raise InputError(
            f"{h5_main.file.filename}: no geometry recorded with {h5_main.name}; "
            "give a PONI file (--poni FILE)"
        )
    import pyFAI

    if isinstance(poni, dict):
        where = "poni (dict)"
        try:
            ai = pyFAI.load(poni)
        except Exception as err:  # noqa: BLE001 - pyFAI raises many kinds
            raise InputError(f"{where}: not a pyFAI geometry config ({short_error(err)})") from err
    else:
        where = str(Path(poni))
        if not Path(poni).is_file():
            raise InputError(f"PONI file not found: {where}")
        try:
            ai = pyFAI.load(where)
        except Exception as err:  # noqa: BLE001
            raise InputError(
                f"{where}: not a PONI file pyFAI can read ({short_error(err)})"
            ) from err
    return ai, check_geometry(ai, where=where)


def _geometry(poni: Any, h5_main: h5py.Dataset) -> tuple[Any, dict, np.ndarray | None]:
    """:func:`load_integrator` through the cache: (integrator or None, config, detector mask)."""
    from pyscatter.processes import setup_cache

    recorded = recorded_geometry(h5_main) if poni is None else None
    return setup_cache.geometry(
        poni,
        None if recorded is None else recorded[0],
        lambda: load_integrator(poni, h5_main),
    )


def _where(poni: Any) -> str:
    """The geometry's origin, for messages."""
    if poni is None:
        return "recorded geometry"
    return "poni (dict)" if isinstance(poni, dict) else str(Path(poni))


def load_geometry(poni: str | Path | dict | None, h5_main: h5py.Dataset) -> dict[str, Any]:
    """pyFAI geometry config: from a PONI file or dict, else the one recorded in the file."""
    return load_integrator(poni, h5_main)[1]


def frame_shape(h5_main: h5py.Dataset) -> tuple[int, int]:
    """(rows, cols) of the frames of an image main dataset."""
    spec = h5_main.file[h5_main.attrs["Spectroscopic_Indices"]]
    labels = [x.decode() if isinstance(x, bytes) else str(x) for x in spec.attrs["labels"]]
    if labels != ["Row", "Col"]:
        raise InputError(
            f"{h5_main.name} has spectroscopic dims {labels}; azimuthal integration needs "
            "detector images (Row, Col)"
        )
    # a detector image's indices are a full Row × Col grid in C order: the last column holds
    # the largest; reading it alone spares reading 2 × n_pix integers (30 ms for an Eiger 1M)
    last = spec[:, spec.shape[1] - 1] if spec.shape[1] else None
    if last is not None and (int(last[0]) + 1) * (int(last[1]) + 1) == spec.shape[1]:
        return int(last[0]) + 1, int(last[1]) + 1
    inds = spec[()]
    return int(inds[0].max()) + 1, int(inds[1].max()) + 1


def require_complete_frames(h5_main: h5py.Dataset) -> None:
    """Refuse frames written by a process whose run is not complete (e.g. caved frames of an
    interrupted caving run: their missing blocks read as NaN), unless in a live pipeline."""
    from pyscatter.io.results import require_complete
    from pyscatter.processes.guards import partial_sources_allowed

    if not partial_sources_allowed():
        require_complete(h5_main, "using its frames")


# --------------------------------------------------------------------------- method


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


def _closest(parts: list[str], dim: int, allow_fallback: bool) -> Any:
    """pyFAI's method for ``parts``, or its closest one when ``allow_fallback``."""
    from pyFAI.method_registry import IntegrationMethod

    asked = ",".join(parts)
    chosen = IntegrationMethod.select_one_available(tuple(parts), dim=dim, degradable=False)
    if chosen is not None:
        return chosen
    closest = IntegrationMethod.select_one_available(tuple(parts), dim=dim, degradable=True)
    ran = None
    if closest is not None:
        ran = f"{closest.split_lower},{closest.algo_lower},{closest.impl_lower}"
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
    return closest


def resolve_method(
    method: Any, *, dim: int, engine: str = "batched", allow_fallback: bool = False
) -> list[str]:
    """The pyFAI method that will run, as [split, algorithm, implementation].

    Resolved with pyFAI's registry (``IntegrationMethod.select_one_available``). A method not
    available here (e.g. ``opencl`` without OpenCL) is refused unless ``allow_fallback``, when
    pyFAI's closest available one is used, logged and returned, so that what is recorded is what
    ran. The "batched" engine applies pyFAI's Cython CSR matrix, so it needs ``csr`` and runs
    the ``cython`` implementation. pyFAI's answer is remembered in the matrix cache when it is
    the method asked for, with Cython (:func:`pyscatter.processes.setup_cache.method`).

    Raises
    ------
    InputError
        A malformed or unknown method (the allowed values are listed), or one that would not
        run as asked and ``allow_fallback`` is False.
    """
    from pyscatter.processes import setup_cache

    text = method if isinstance(method, str) else ",".join(str(m) for m in method)
    asked_parts = [p.strip().lower() for p in text.split(",")]
    return setup_cache.method(
        asked_parts,
        dim=dim,
        engine=engine,
        allow_fallback=allow_fallback,
        resolve=lambda: _resolve_method(method, dim, engine, allow_fallback),
    )


def _resolve_method(method: Any, dim: int, engine: str, allow_fallback: bool) -> list[str]:
    """:func:`resolve_method`, asking pyFAI."""
    parts = _method_parts(method)
    asked = ",".join(parts)
    chosen = _closest(parts, dim, allow_fallback)
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


# --------------------------------------------------------------------------- dummy, normalisation


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


def _monitor_path(h5_main: h5py.Dataset, monitor: str) -> str:
    if monitor != "auto":
        return _per_position(h5_main, monitor, "monitor")
    if "Monitor" in h5_main.parent:
        return _per_position(h5_main, "Monitor", "monitor")
    recorded = h5_main.parent.parent.attrs.get("monitor")
    if recorded is None:
        raise InputError(
            f"monitor='auto': {h5_main.file.filename} records no monitor; give a dataset "
            "path (e.g. Counters/I0) or translate with --monitor"
        )
    name = str(recorded)
    return _per_position(h5_main, name if "/" in name else f"Counters/{name}", "monitor")


def normalization_parameters(h5_main, monitor, transmission, exposure_time) -> dict[str, Any]:
    """Resolve monitor/transmission/exposure options into dataset paths and a constant."""
    if monitor is not None and not isinstance(monitor, str):
        raise InputError(f"monitor = {monitor!r}; expected 'auto' or a per-position dataset path")
    paths = [] if monitor is None else [_monitor_path(h5_main, monitor)]
    constant = 1.0
    for what, value in (("transmission", transmission), ("exposure_time", exposure_time)):
        if value is None:
            continue
        if isinstance(value, str):
            paths.append(_per_position(h5_main, value, what))
            continue
        try:
            number = math.nan if isinstance(value, bool) else float(value)
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


def request_context(h5_main: h5py.Dataset, kwargs: Mapping[str, Any]) -> dict[str, Any] | None:
    """What a detector set-up reads from the file besides the source, read without pyFAI.

    For :mod:`pyscatter.processes.requests`: the geometry, dummy and delta_dummy the translator
    recorded, the file's ``Mask`` (name and content), the normalisation datasets' values and the
    frame shape. None (no quick reuse) for a method whose implementation is not ``cython``: which
    of those runs depends on this machine (OpenCL devices), so only pyFAI can say.
    """
    method = kwargs.get("method", DEFAULT_METHOD)
    text = method if isinstance(method, str) else ",".join(str(m) for m in method)
    parts = [p.strip().lower() for p in text.split(",")]
    if len(parts) != 3 or parts[2] != "cython":
        return None
    recorded = {}
    for obj in (h5_main, h5_main.parent, h5_main.parent.parent):
        for key in ("geometry", "dummy", "delta_dummy"):
            if key in obj.attrs:
                value = obj.attrs[key]
                recorded[f"{obj.name}@{key}"] = (
                    value.tolist() if hasattr(value, "tolist") else value
                )
    series = read_series(h5_main)
    if series is not None:
        recorded["geometry_series"] = series.sha256()
    mask = h5_main.parent.get("Mask")
    return {
        "recorded": recorded,
        "file_mask": None if mask is None else [mask.name, _sha(mask[()])],
        "normalization": normalization_parameters(
            h5_main, kwargs.get("monitor"), kwargs.get("transmission"), kwargs.get("exposure_time")
        ),
        "frame_shape": list(frame_shape(h5_main)),
        "detector_schema": SCHEMA_VERSION,
    }


# --------------------------------------------------------------------------- checks


def _number(name: str, value: Any, low: float = -math.inf, high: float = math.inf) -> Any:
    """A real, finite number within [low, high] (kept as given: an int stays an int)."""
    if value is None:
        return None
    ok = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
    if ok:
        ok = math.isfinite(float(value)) and low <= float(value) <= high
    if not ok:
        where = "" if math.isinf(low) else f" in [{low:g}, {high:g}]"
        raise InputError(f"{name} = {value!r}; expected a finite number{where}")
    return value.item() if isinstance(value, np.generic) else value


def _arrays(options: Mapping[str, Any], shape: tuple[int, int]) -> dict[str, np.ndarray]:
    """The extra mask (uint8, 1 = masked), dark and flat images, checked against the frames."""
    out = {}
    for key, _ in _ARRAYS:
        value = options.get(key)
        if value is None:
            continue
        arr = np.asarray(value)
        if arr.shape != shape:
            raise InputError(f"{key} has shape {arr.shape}; the detector frames are {shape}")
        if arr.dtype.kind not in "biuf":
            raise InputError(f"{key}: expected an image of numbers; got dtype {arr.dtype}")
        out[key] = (arr != 0).astype(np.uint8) if key == "mask" else arr
    return out


def split_options(kwargs: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(detector options, the rest) of a process's keyword arguments."""
    detector = {k: kwargs.pop(k) for k in list(kwargs) if k in DETECTOR}
    return detector, kwargs


def options_doc() -> str:
    """The detector keywords, for messages."""
    return ", ".join(o.name for o in DETECTOR_OPTIONS)


# --------------------------------------------------------------------------- the set-up


@dataclass(frozen=True, eq=False)
class DetectorSetup:
    """The validated detector set-up of one source, with its pyFAI integrator (built once).

    Make it with :meth:`from_options`; see the module docstring and
    :data:`~pyscatter.processes.options.DETECTOR_OPTIONS` for the options.

    Attributes
    ----------
    geometry : dict
        pyFAI config of the checked geometry.
    frame_shape : (int, int)
    mask_file_dataset : str or None
        The file's ``Mask`` beside the source (unless ``use_file_mask=False``).
    arrays : dict
        ``mask`` (uint8, 1 = masked), ``dark``, ``flat`` as given (those set).
    dummy, delta_dummy : number or None
        Invalid-pixel value (default: the one the translator recorded) and its tolerance.
    correct_solid_angle : bool
    polarization_factor : number or None
    error_model : {None, "poisson", "azimuthal"}
    method : list of str
        The method that runs (:func:`resolve_method`).
    normalization : dict
        ``normalization_datasets``, ``normalization_constant``, ``normalization_sha256``.
    integrator : pyFAI.integrator.azimuthal.AzimuthalIntegrator
        Built once from the geometry, when first used (a property); shared by the checks and
        the serial computation. A geometry seen before comes from the matrix cache without
        pyFAI (:func:`pyscatter.processes.setup_cache.geometry`), so a command whose matrix is
        cached too never builds it.
    detector_mask : ndarray or None
        The detector's own mask (pyFAI's ``detector.mask``, e.g. module gaps).
    series : GeometrySeries or None
        The geometry of every position when it changes with the position (an energy or
        distance series, :mod:`pyscatter.io.geometry_series`); ``geometry`` is then the base
        whose varying keys each position replaces.
    """

    SCHEMA_VERSION: ClassVar[int] = SCHEMA_VERSION

    geometry: dict[str, Any]
    frame_shape: tuple[int, int]
    mask_file_dataset: str | None
    arrays: dict[str, np.ndarray]
    dummy: Any
    delta_dummy: Any
    correct_solid_angle: bool
    polarization_factor: Any
    error_model: str | None
    method: list[str]
    normalization: dict[str, Any]
    build_integrator: Callable[[], Any] = field(repr=False)
    detector_mask: np.ndarray | None = field(default=None, repr=False)
    series: Any = field(default=None, repr=False)

    @cached_property
    def integrator(self) -> Any:
        """pyFAI's integrator of the geometry (built on first use; see the class docstring)."""
        return self.build_integrator()

    @property
    def built_integrator(self) -> Any | None:
        """The integrator if it has been built, else None (nothing is built)."""
        return self.__dict__.get("integrator")

    @classmethod
    def from_options(
        cls,
        h5_main: h5py.Dataset,
        *,
        dim: int,
        engine: str = "batched",
        sigma_required: bool = False,
        **options: Any,
    ) -> DetectorSetup:
        """Validate the detector options (one place) and build the integrator once.

        Parameters
        ----------
        h5_main : h5py.Dataset
            Image main dataset (positions × Row·Col).
        dim : {1, 2}
            Dimension of the pyFAI method the process runs.
        engine : {"batched", "pyfai"}
            "batched" needs a Cython CSR method.
        sigma_required : bool
            The process always writes a sigma: ``error_model`` may not be None.
        **options
            :data:`~pyscatter.processes.options.DETECTOR_OPTIONS` (defaults for those not
            given).

        Raises
        ------
        InputError
            An unknown option, or a value out of its range (the message names it).
        """
        unknown = sorted(set(options) - set(DETECTOR))
        if unknown:
            raise InputError(
                f"unknown detector option(s) {', '.join(unknown)}; allowed: {options_doc()}"
            )
        opts = {o.name: options.get(o.name, o.default) for o in DETECTOR_OPTIONS}
        require_complete_frames(h5_main)
        shape = frame_shape(h5_main)
        error_model = opts["error_model"]
        allowed = ERROR_MODELS[1:] if sigma_required else ERROR_MODELS
        if error_model not in allowed:
            raise InputError(
                f"unsupported error_model {error_model!r}; expected one of "
                f"{', '.join(str(m) for m in allowed)}"
            )
        method = resolve_method(
            opts["method"], dim=dim, engine=engine, allow_fallback=bool(opts["allow_fallback"])
        )
        polarization = _number("polarization_factor", opts["polarization_factor"], -1.0, 1.0)
        dummy = _number("dummy", opts["dummy"])
        delta_dummy = _number("delta_dummy", opts["delta_dummy"], 0.0)
        arrays = _arrays(opts, shape)
        if dummy is None:  # the detector's invalid-pixel value the translator recorded
            dummy, delta_dummy = recorded_dummy(h5_main, delta_dummy)
        ai, geometry, detector_mask = _geometry(opts["poni"], h5_main)
        series = read_series(h5_main)
        if series is not None:  # each position replaces the varying keys of this geometry
            series = GeometrySeries(geometry, series.values, source=series.source)
        file_mask = h5_main.parent.get("Mask") if opts["use_file_mask"] else None
        normalization = normalization_parameters(
            h5_main, opts["monitor"], opts["transmission"], opts["exposure_time"]
        )
        setup = cls(
            geometry=geometry,
            frame_shape=shape,
            mask_file_dataset=None if file_mask is None else file_mask.name,
            arrays=arrays,
            dummy=dummy,
            delta_dummy=delta_dummy,
            correct_solid_angle=bool(opts["correct_solid_angle"]),
            polarization_factor=polarization,
            error_model=error_model,
            method=method,
            normalization=normalization,
            build_integrator=partial(integrator_from_config, geometry, where=_where(opts["poni"])),
            detector_mask=detector_mask,
            series=series,
        )
        if ai is not None:  # pyFAI read the geometry: keep what it built
            setup.__dict__["integrator"] = ai  # the cached_property's own slot
        return setup

    # ------------------------------------------------------------------ the record
    def record(self, *, legacy_stacked: bool = False) -> dict[str, Any]:
        """The parameters this set-up adds to a process's record (see the module docstring).

        ``legacy_stacked``: as AzimuthalProfiles and SectorIntegration record it (numbers as
        floats; dark, flat and normalisation only when used).
        """
        sha = {key: _sha(arr) for key, arr in self.arrays.items()}
        record = {
            "geometry": json.dumps(self.geometry, sort_keys=True),
            "frame_shape": list(self.frame_shape),
            "mask_file_dataset": self.mask_file_dataset,
            "mask_sha256": sha.get("mask"),
            "dark_sha256": sha.get("dark"),
            "flat_sha256": sha.get("flat"),
            "dummy": self.dummy,
            "delta_dummy": self.delta_dummy,
            "correct_solid_angle": self.correct_solid_angle,
            "polarization_factor": self.polarization_factor,
            "error_model": self.error_model,
            "method": list(self.method),
            **self.normalization,
        }
        if self.series is not None:  # only then: older records stay byte for byte
            record["geometry_series"] = self.series_record()
        if not legacy_stacked:
            return record
        for key in ("dummy", "delta_dummy", "polarization_factor"):
            record[key] = None if record[key] is None else float(record[key])
        used = {k for k in ("dark_sha256", "flat_sha256") if record[k] is not None}
        if self.normalizes:
            used.update(_NORMALIZATION_KEYS)
        return {k: v for k, v in record.items() if k in _LEGACY_STACKED_KEYS or k in used}

    def series_record(self) -> dict[str, Any]:
        """What a process records of the per-position geometry: the keys, where, a digest."""
        assert self.series is not None
        return {
            "keys": self.series.keys,
            "datasets": self.series.source,
            "sha256": self.series.sha256(),
            "n_geometries": int(len(self.series.groups()[0])),
        }

    def require_single_geometry(self, what: str) -> None:
        """Refuse a source whose geometry changes with the position (``what`` names the step).

        Raises
        ------
        InputError
            Naming the varying keys and the step that handles them (integrate).
        """
        if self.series is not None:
            raise one_geometry_error(self.series, what)

    @property
    def normalizes(self) -> bool:
        """Whether frames are divided by a normalisation (monitor, transmission, exposure)."""
        n = self.normalization
        return bool(n["normalization_datasets"]) or n["normalization_constant"] is not None

    # ------------------------------------------------------------------ the results group
    def store(self, group: h5py.Group) -> None:
        """Write the extra mask, dark and flat into the (unlinked) results group, and the
        schema version as its ``detector_schema`` attribute."""
        for key, name in _ARRAYS:
            if key in self.arrays:
                group.create_dataset(name, data=self.arrays[key])
        group.attrs["detector_schema"] = SCHEMA_VERSION

    def combined_mask(self, h5: h5py.File) -> np.ndarray | None:
        """File mask | extra mask (True = masked), or None."""
        mask = None
        if self.mask_file_dataset:
            mask = np.asarray(h5[self.mask_file_dataset][()]).reshape(self.frame_shape) != 0
        if "mask" in self.arrays:
            extra = self.arrays["mask"] != 0
            mask = extra if mask is None else (mask | extra)
        return mask

    def local_arrays(self, h5: h5py.File) -> dict[str, np.ndarray | None]:
        """``mask`` (:meth:`combined_mask`), ``dark`` and ``flat``: what the kernels of this
        process take, for the computation in this process (workers read them from the file)."""
        return {
            "mask": self.combined_mask(h5),
            "dark": self.arrays.get("dark"),
            "flat": self.arrays.get("flat"),
        }

    def warn_negative_pixels(self, h5_main: h5py.Dataset) -> None:
        """Log a warning when the first frame has many negative, unmasked pixels (gaps)."""
        if h5_main.shape[0] == 0 or h5_main.dtype.kind == "u":
            return
        masked = self.combined_mask(h5_main.file)
        detector_mask = self.detector_mask
        if detector_mask is not None and detector_mask.shape == self.frame_shape:
            masked = detector_mask != 0 if masked is None else masked | (detector_mask != 0)
        frame = np.asarray(h5_main[0]).reshape(self.frame_shape)
        negative = frame < 0
        if self.dummy is not None:
            negative &= np.abs(frame.astype(np.float64) - self.dummy) > (self.delta_dummy or 0)
        if masked is not None:
            negative &= ~masked
        fraction = float(negative.mean())
        if fraction > NEGATIVE_FRACTION_WARNING:
            log.warning(
                "%s: %.1f %% of the pixels of the first frame are negative and neither masked "
                "nor a dummy (detector gaps?); they lower the intensities: give a mask "
                "(--mask FILE) or their value as the dummy (--dummy VALUE)",
                h5_main.file.filename,
                100 * fraction,
            )


# --------------------------------------------------------------------------- workers


def worker_parameters(params: dict[str, Any], group: h5py.Group | None) -> dict[str, Any]:
    """``params`` plus where a worker reads the masks, dark and flat (``mask_datasets``,
    ``dark_dataset``, ``flat_dataset``): the file's mask and the results group's datasets."""
    out = dict(params)
    masks = [params["mask_file_dataset"]] if params.get("mask_file_dataset") else []
    out["dark_dataset"] = out["flat_dataset"] = None
    if group is not None:
        if "Mask" in group:
            masks.append(group["Mask"].name)
        out["dark_dataset"] = group["Dark"].name if "Dark" in group else None
        out["flat_dataset"] = group["Flat"].name if "Flat" in group else None
    out["mask_datasets"] = masks
    return out


def read_arrays(h5: h5py.File, params: dict[str, Any]) -> dict[str, np.ndarray | None]:
    """``mask`` (union of ``mask_datasets``, True = masked), ``dark`` and ``flat`` of the
    worker parameters, read from the file (None where not set)."""
    shape = (int(params["frame_shape"][0]), int(params["frame_shape"][1]))
    mask = read_mask(h5, params.get("mask_datasets", []), shape)
    dark, flat = (params.get(k) for k in ("dark_dataset", "flat_dataset"))
    return {
        "mask": mask,
        "dark": None if dark is None else h5[dark][()],
        "flat": None if flat is None else h5[flat][()],
    }


def read_mask(h5: h5py.File, paths: list[str], shape: tuple[int, int]) -> np.ndarray | None:
    """Union of the mask datasets at ``paths`` (non-zero = masked), or None."""
    mask = None
    for path in paths:
        m = np.asarray(h5[path][()]).reshape(shape) != 0
        mask = m if mask is None else (mask | m)
    return mask


class SetupHooks:
    """The hooks of a process holding a :class:`DetectorSetup` in ``self.setup`` (a mixin put
    before :class:`~pyscatter.processes.base.ScatterProcess`): the worker parameters say where
    the stored mask, dark and flat are, and the results group stores them."""

    setup: DetectorSetup
    parameters: dict[str, Any]
    _source: h5py.Dataset

    def _worker_parameters(self) -> str:
        params = dict(self.parameters, source=self._source.name)
        group = getattr(self, "h5_results_grp", None)
        return json.dumps(worker_parameters(params, group), sort_keys=True)

    @classmethod
    def request_context(cls, h5_main: h5py.Dataset, kwargs: Mapping[str, Any]) -> dict | None:
        """See :func:`request_context`."""
        return request_context(h5_main, kwargs)

    def _setup_extra(self, group: h5py.Group) -> None:
        self.setup.store(group)
        self.setup.warn_negative_pixels(self._source)
