"""Worker side of :class:`~pyscatter.processes.integration.AzimuthalIntegration` (no pyUSID).

``build(spec)`` runs once per worker and spec: it reads the mask, dark and flat from the
file and makes the integrator; the returned :class:`~pyscatter.processes.execution.FrameBlocks`
reads a block of frames into a reused buffer and integrates the whole block in one call.

The batched integrator comes from the matrix cache (:mod:`pyscatter.io.matrix_cache`) when it
holds it: the first process to build it (the parent, which builds it for the result axes
before any worker starts) stores pyFAI's matrix and the per-pixel corrections of the geometry
(:func:`~pyscatter.kernels.csr.pyfai_inputs`) under a key of the recorded parameters and
the mask, and every worker loads them without importing pyFAI (1–2 s a process, most of a
worker's set-up). On a miss (cache disabled, evicted) the worker lets pyFAI build them, as
before; the integrator is the same either way.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from typing import Any

import h5py
import numpy as np

from pyscatter.errors import InputError
from pyscatter.geometry import integrator_from_config
from pyscatter.io.geometry_series import GeometrySeries, read_series
from pyscatter.kernels.integrate import BatchIntegrator, integrate_reference
from pyscatter.processes.detector import read_arrays
from pyscatter.processes.execution import FrameBlocks, FrameReader


def integrator_options(params: dict[str, Any], arrays: dict[str, Any]) -> dict[str, Any]:
    """Keyword arguments of the integration kernels from the recorded parameters and the
    ``mask``, ``dark`` and ``flat`` arrays (:func:`pyscatter.processes.detector.read_arrays`)."""
    return {
        "npt": params["npt"],
        "unit": params["unit"],
        "npt_azim": params["npt_azim"],
        "method": tuple(params["method"]),
        "mask": arrays.get("mask"),
        "dummy": params["dummy"],
        "delta_dummy": params["delta_dummy"],
        "correct_solid_angle": params["correct_solid_angle"],
        "polarization_factor": params["polarization_factor"],
        "dark": arrays.get("dark"),
        "flat": arrays.get("flat"),
        "error_model": params["error_model"],
        "radial_range": params["radial_range"],
        "azimuth_range": params["azimuth_range"],
    }


def build(spec, h5: h5py.File):
    """Block function of an integration spec; ``h5`` gives the mask, dark and flat (and the
    per-position geometry of a series)."""

    params = spec.params
    series = read_series(h5[params["source"]]) if params.get("geometry_series") else None
    if series is not None:
        series = GeometrySeries(json.loads(params["geometry"]), series.values, source=series.source)
        if series.sha256() != params["geometry_series"]["sha256"]:
            raise InputError(
                f"{h5.filename}: the per-position geometry ({series.source}) changed since "
                "this integration started; start it again (--override)"
            )
    options = integrator_options(params, read_arrays(h5, params))
    return make_function(None, params, options, series=series)


def normalization(h5: h5py.File, params: dict[str, Any], start: int, stop: int):
    """Per-position normalization factors (monitor × transmission × exposure), float32, or None."""
    paths = params.get("normalization_datasets") or []
    constant = params.get("normalization_constant")
    if not paths and constant is None:
        return None
    factor = np.full(stop - start, 1.0 if constant is None else constant, dtype=np.float64)
    for path in paths:
        factor *= h5[path][start:stop].astype(np.float64)
    return factor.astype(np.float32)


def frame_reader(params: dict[str, Any], groups: np.ndarray | None = None) -> FrameReader:
    """The I/O stage: a block of frames and its normalization factors (and, for a geometry
    series, ``groups``: the geometry group of every position, then ``(factors, groups)``)."""

    def read_factor(h5file: h5py.File, start: int, stop: int) -> Any:
        factor = normalization(h5file, params, start, stop)
        return factor if groups is None else (factor, groups[start:stop])

    return FrameReader(params["source"], tuple(params["frame_shape"]), read_factor)


_INPUT_KEYS = (
    "solid_angle",
    "polarization",
    "detector_flat",
    "detector_dark",
    "detector_dummy",
    "poisson_dark",
    "csr_key",
)


def setup_key(params: dict[str, Any], options: dict[str, Any]) -> str:
    """The matrix cache key of an integration's pyFAI inputs, from the recorded parameters and
    the mask alone (no pyFAI import: its version comes from the package metadata)."""
    from pyscatter._metadata import installed_version
    from pyscatter.io import matrix_cache

    mask = options.get("mask")
    return matrix_cache.key(
        "integration-inputs",
        pyfai=installed_version("pyFAI"),
        geometry=params["geometry"],
        frame_shape=[int(n) for n in params["frame_shape"]],
        npt=options["npt"],
        unit=options["unit"],
        npt_azim=options["npt_azim"],
        method=list(options["method"]),
        radial_range=options["radial_range"],
        azimuth_range=options["azimuth_range"],
        correct_solid_angle=bool(options["correct_solid_angle"]),
        polarization_factor=options["polarization_factor"],
        error_model=options["error_model"],
        mask=None if mask is None else (np.asarray(mask) != 0),
    )


def batch_integrator(ai: Any, params: dict[str, Any], options: dict[str, Any]) -> BatchIntegrator:
    """The batched integrator of ``options``: from the matrix cache without pyFAI when it holds
    it, else from pyFAI (``ai``, or one made from the recorded geometry), then stored."""
    from pyscatter.io import matrix_cache
    from pyscatter.kernels import integrate_state
    from pyscatter.kernels.csr import load_csr, pyfai_inputs

    shape = (int(params["frame_shape"][0]), int(params["frame_shape"][1]))
    keywords = {k: options[k] for k in ("dummy", "delta_dummy", "dark", "flat", "error_model")}
    key = setup_key(params, options) if matrix_cache.directory() is not None else None
    prepared = None
    if key is not None:  # the integrator itself, prepared (integrate_state): one load
        prepared = matrix_cache.key(
            "batch-integrator", inputs=key, state=integrate_state.STATE_VERSION, **keywords
        )
        arrays = matrix_cache.load(prepared, integrate_state.consistent)
        if arrays is not None:
            return integrate_state.restore(arrays)
    inputs = None if key is None else matrix_cache.load(key, lambda a: set(_INPUT_KEYS) <= set(a))
    engine = None
    if inputs is not None:
        loaded = load_csr(str(inputs["csr_key"]), shape, options["npt_azim"] is not None)
        if loaded is not None:
            matrix, csr = loaded
            engine = BatchIntegrator.from_inputs(matrix, csr, inputs, shape, **keywords)
    if engine is None:
        if ai is None:
            ai = integrator_from_config(params["geometry"])
        pyfai_options = {k: v for k, v in options.items() if k not in keywords}
        matrix, csr, inputs = pyfai_inputs(
            ai, shape, **pyfai_options, error_model=options["error_model"]
        )
        if key is not None:
            matrix_cache.store(key, inputs)
        engine = BatchIntegrator.from_inputs(matrix, csr, inputs, shape, **keywords)
    state = None if prepared is None else integrate_state.state(engine)
    if prepared is not None and state is not None:
        matrix_cache.store(prepared, state)
    return engine


def make_function(
    ai, params: dict[str, Any], options: dict[str, Any], *, series: Any = None
) -> FrameBlocks:
    """The block function: read a block of frames (and its normalization), integrate it at once.

    ``ai``: the pyFAI integrator of ``params["geometry"]``, or None to make one only if needed
    (the batched integrator loaded from the matrix cache needs none). ``series``: the
    :class:`~pyscatter.io.geometry_series.GeometrySeries` of a scan whose geometry changes
    with the position (:func:`series_function`). The function carries the result axes as
    ``.radial`` and ``.azimuthal``.
    """
    if series is not None:
        return series_function(params, options, series)
    shape = tuple(params["frame_shape"])
    axes: Any = None  # what gives the result axes
    if params["engine"] == "batched":
        engine = batch_integrator(ai, params, options)
        integrate, axes = engine.integrate, engine
    else:
        if ai is None:
            ai = integrator_from_config(params["geometry"])

        def integrate(frames):
            return integrate_reference(ai, frames, **options)

    def process(frames: np.ndarray, factor: np.ndarray | None) -> dict[str, np.ndarray]:
        n = frames.shape[0]
        res = integrate(frames)
        out = {"Intensity": res.intensity.reshape(n, -1)}
        if res.sigma is not None:
            out["Intensity_Sigma"] = res.sigma.reshape(n, -1)
        if factor is not None:  # like pyFAI's normalization_factor: I / f, sigma / f
            for key in out:
                out[key] = out[key] / factor[:, None]
        return out

    compute = FrameBlocks(frame_reader(params), process)
    if axes is None:  # pyFAI's own axes, from one blank frame
        axes = integrate(np.zeros((1, *shape), dtype=np.float32))
    compute.radial = axes.radial  # type: ignore[attr-defined]
    compute.azimuthal = axes.azimuthal  # type: ignore[attr-defined]
    return compute


#: Integrators of a geometry series kept at once by a worker (positions usually come in runs
#: of one geometry; the others are loaded from the matrix cache again when needed).
SERIES_ENGINES_KEPT = 4


def series_function(params: dict[str, Any], options: dict[str, Any], series: Any) -> FrameBlocks:
    """The block function of a scan whose geometry changes with the position.

    Positions of the same geometry share one integrator (one matrix build, or one load from
    the matrix cache, per distinct geometry); all integrate onto the recorded radial (and
    azimuthal) range, so every position lands on the same axes — checked for every geometry —
    with NaN in the bins a position's geometry does not reach (no unmasked pixel).
    The block's frames of each geometry are integrated together; the kernels give the same
    bits for any block (``tests/kernels/test_block_independence.py``). Positions never
    measured (no geometry) are NaN.
    """
    firsts, groups = series.groups()
    configs = series.group_configs()
    engines: OrderedDict[int, FrameBlocks] = OrderedDict()

    def engine(g: int) -> FrameBlocks:
        if g in engines:
            engines.move_to_end(g)
            return engines[g]
        geometry = json.dumps(configs[g], sort_keys=True)
        built = make_function(None, dict(params, geometry=geometry), options)
        if axes:
            for name in ("radial", "azimuthal"):
                got, want = getattr(built, name), getattr(axes[0], name)
                if not (got is None and want is None) and not np.array_equal(got, want):
                    raise RuntimeError(
                        f"geometry {g} of {series.source} gives another {name} axis; "
                        "a geometry series needs a radial_range"
                    )
        else:
            axes.append(built)
        if g not in reach:  # bins this geometry's unmasked pixels reach: NaN elsewhere
            ones = np.ones((1, *built.reader.shape), dtype=np.float32)
            reach[g] = built.process(ones, None)["Intensity"][0] != 0
        engines[g] = built
        while len(engines) > SERIES_ENGINES_KEPT:
            engines.popitem(last=False)
        return built

    axes: list[FrameBlocks] = []
    reach: dict[int, np.ndarray] = {}

    def process(frames: np.ndarray, extra: Any) -> dict[str, np.ndarray]:
        factor, index = extra
        out: dict[str, np.ndarray] = {}
        for g in np.unique(index):
            rows = np.flatnonzero(index == g)
            if g < 0:
                continue
            sub_factor = None if factor is None else factor[rows]
            part = engine(int(g)).process(frames[rows], sub_factor)
            for key, values in part.items():
                if key not in out:
                    out[key] = np.full((len(index), values.shape[1]), np.nan, values.dtype)
                values[:, ~reach[int(g)]] = np.nan
                out[key][rows] = values
        if not out:  # no position of this block was measured
            first = engine(int(groups[firsts[0]]))
            blank = first.process(np.zeros((1, *frames.shape[1:]), frames.dtype), None)
            out = {k: np.full((len(index), v.shape[1]), np.nan, v.dtype) for k, v in blank.items()}
        return out

    compute = FrameBlocks(frame_reader(params, groups), process)
    first = engine(0)
    compute.radial = first.radial  # type: ignore[attr-defined]
    compute.azimuthal = first.azimuthal  # type: ignore[attr-defined]
    return compute
