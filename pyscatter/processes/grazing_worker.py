"""Worker side of :class:`~pyscatter.processes.grazing.GrazingIncidence` (no pyUSID).

``build(spec, h5)`` reads, once per worker, the incident and tilt angle of every position (a
number, a position dim or a per-position dataset, checked against the digest recorded when
the run started), the per-position geometry of a series, and the mask, dark and flat; it
groups the positions by (geometry, incident angle, tilt angle). The block function integrates
the block's frames of each group at once with that group's integrator
(:func:`pyscatter.kernels.grazing.gi_integrator`, built on first use and kept for the next
blocks), onto the recorded common grid. Every frame is computed alone, so a block of any size,
a resumed run and a parallel one give the same bits.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections import OrderedDict
from typing import Any

import h5py
import hdf5plugin  # noqa: F401  (filters of compressed raw frames)
import numpy as np

from pyscatter.errors import InputError
from pyscatter.io.geometry_series import GeometrySeries, read_series
from pyscatter.io.usid import ancillary_arrays, dims_of
from pyscatter.kernels.grazing import gi_integrator, integrate_gi
from pyscatter.processes.detector import read_arrays
from pyscatter.processes.execution import FrameBlocks
from pyscatter.processes.integration_worker import frame_reader

__all__ = ["ANGLE_LIMITS", "angle_values", "build", "make_function", "position_groups"]

#: Allowed (low, high) of each angle in degrees, high excluded.
ANGLE_LIMITS = {"incident_angle": (0.0, 90.0), "tilt_angle": (-90.0, 90.0)}
#: Integrators kept at once by a worker (the others are built again when needed).
ENGINES_KEPT = 4


def _digest(values: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(values, dtype=np.float64).tobytes()).hexdigest()


def _check(name: str, values: np.ndarray, where: str) -> np.ndarray:
    low, high = ANGLE_LIMITS[name]
    bad = np.flatnonzero(~(np.isfinite(values) & (values >= low) & (values < high)))
    if bad.size:
        first = ", ".join(f"{i}: {values[i]!r}" for i in bad[:3])
        raise InputError(
            f"{name} ({where}): {bad.size} position(s) with an angle that is not a finite number "
            f"in [{low:g}, {high:g}) degrees (position {first})"
        )
    return values


def angle_values(h5_main: h5py.Dataset, name: str, value: Any) -> tuple[np.ndarray, Any]:
    """The angle ``name`` of every position (degrees, float64) and what a process records.

    ``value``: a number (every position), the name of a position dim of the source (its grid
    value at each position, e.g. ``th``), or a per-position dataset resolved like a monitor
    (relative to the channel, the measurement or the file). The record is the number, or
    ``{"position_dim" | "dataset": name, "sha256": digest of the values}``.

    Raises
    ------
    InputError
        Not a number nor a string, no such dim or dataset, a dataset without one value per
        position, or an angle that is not finite or out of :data:`ANGLE_LIMITS`.
    """
    from pyscatter.processes.detector import _per_position

    n = int(h5_main.shape[0])
    if isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool):
        _check(name, np.array([float(value)]), "given")
        return np.full(n, float(value)), float(value)
    if not isinstance(value, str) or not value:
        raise InputError(
            f"{name} = {value!r}; expected an angle in degrees, a position dim or a "
            "per-position dataset path"
        )
    dims = dims_of(h5_main, "Position")
    names = [d.name for d in dims]
    if value in names:
        values = ancillary_arrays(dims)[1][:, names.index(value)].astype(np.float64)
        record = {"position_dim": value}
    else:
        try:
            path = _per_position(h5_main, value, name)
        except InputError as err:
            raise InputError(f"{err}; nor is it a position dim ({', '.join(names)})") from None
        values = np.asarray(h5_main.file[path][()], dtype=np.float64).reshape(n)
        record = {"dataset": path}
    _check(name, values, value)
    return values, {**record, "sha256": _digest(values)}


def recorded_angles(h5: h5py.File, source: str, name: str, record: Any) -> np.ndarray:
    """The angle of every position from its record, checked against the recorded digest."""
    h5_main = h5[source]
    if not isinstance(record, dict):
        return np.full(int(h5_main.shape[0]), float(record))
    values, again = angle_values(h5_main, name, record.get("position_dim") or record.get("dataset"))
    if again["sha256"] != record["sha256"]:
        raise InputError(
            f"{h5.filename}: the {name} of the positions ({record}) changed since this run "
            "started; start it again (--override)"
        )
    return values


def position_groups(
    geometry_groups: np.ndarray | None, incident: np.ndarray, tilt: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(keys, index): the distinct (geometry group, incident, tilt) rows, sorted, and the key of
    every position (-1 where the geometry is unknown)."""
    groups = np.zeros(incident.size) if geometry_groups is None else geometry_groups
    table = np.column_stack([np.asarray(groups, dtype=np.float64), incident, tilt])
    keys, index = np.unique(table, axis=0, return_inverse=True)
    index = np.asarray(index).ravel()
    unknown = table[:, 0] < 0
    if unknown.any():
        known = keys[:, 0] >= 0
        renumber = np.cumsum(known) - 1
        index = np.where(unknown, -1, renumber[index])
        keys = keys[known]
    return keys, index.astype(np.int64)


def scan_groups(h5: h5py.File, params: dict[str, Any]) -> tuple[list[dict], np.ndarray, np.ndarray]:
    """(configs, keys, index): the geometry config and angles of every group, and the group
    of every position, from the recorded parameters and the file."""
    source = params["source"]
    incident = recorded_angles(h5, source, "incident_angle", params["incident_angle"])
    tilt = recorded_angles(h5, source, "tilt_angle", params["tilt_angle"])
    base = json.loads(params["geometry"])
    configs_of_group = [base]
    groups = None
    if params.get("geometry_series"):
        series = read_series(h5[source])
        if series is None:
            raise InputError(f"{h5.filename}: the per-position geometry of {source} is gone")
        series = GeometrySeries(base, series.values, source=series.source)
        if series.sha256() != params["geometry_series"]["sha256"]:
            raise InputError(
                f"{h5.filename}: the per-position geometry ({series.source}) changed since "
                "this run started; start it again (--override)"
            )
        _, groups = series.groups()
        configs_of_group = series.group_configs()
    keys, index = position_groups(groups, incident, tilt)
    configs = [configs_of_group[int(k[0])] for k in keys]
    return configs, keys, index


def make_function(
    params: dict[str, Any],
    arrays: dict[str, Any],
    configs: list[dict],
    keys: np.ndarray,
    index: np.ndarray,
) -> FrameBlocks:
    """The block function: each group's frames of a block integrated at once.

    Carries the grid as ``.fast`` and ``.slow`` (bin centres, pyFAI's).
    """
    shape = (int(params["frame_shape"][0]), int(params["frame_shape"][1]))
    engines: OrderedDict[int, Any] = OrderedDict()
    common = dict(
        npt_ip=params["npt_ip"],
        npt_oop=params["npt_oop"],
        ip_range=params["ip_range"],
        oop_range=params["oop_range"],
        sample_orientation=params["sample_orientation"],
        mode=params["mode"],
        unit=params["unit"],
        mask=arrays.get("mask"),
        correct_solid_angle=params["correct_solid_angle"],
        polarization_factor=params["polarization_factor"],
        dummy=params["dummy"],
        delta_dummy=params["delta_dummy"],
        dark=arrays.get("dark"),
        flat=arrays.get("flat"),
        error_model=params["error_model"],
    )

    def engine(k: int) -> Any:
        if k not in engines:
            incident, tilt = float(keys[k][1]), float(keys[k][2])
            engines[k] = gi_integrator(
                configs[k], shape, incident_deg=incident, tilt_deg=tilt, **common
            )
            while len(engines) > ENGINES_KEPT:
                engines.popitem(last=False)
        engines.move_to_end(k)
        return engines[k]

    n_bins = int(params["npt_ip"]) * int(params["npt_oop"])
    sigma = params["error_model"] is not None

    def process(frames: np.ndarray, extra: Any) -> dict[str, np.ndarray]:
        factor, block_index = extra
        n = frames.shape[0]
        out = {"Intensity": np.full((n, n_bins), np.nan, dtype=np.float32)}
        if sigma:
            out["Intensity_Sigma"] = np.full((n, n_bins), np.nan, dtype=np.float32)
        for k in np.unique(block_index):
            if k < 0:  # geometry unknown: left NaN
                continue
            rows = np.flatnonzero(block_index == k)
            intensity, err = integrate_gi(engine(int(k)), frames[rows])
            parts = {"Intensity": intensity, "Intensity_Sigma": err}
            for name in out:
                part = parts[name]
                assert part is not None  # a sigma whenever an error model is recorded
                values = part.reshape(rows.size, n_bins)
                if factor is not None:  # like pyFAI's normalization_factor
                    values = values / factor[rows, None]
                out[name][rows] = values
        return out

    compute = FrameBlocks(frame_reader(params, index), process)
    first = engine(0) if len(keys) else None
    compute.fast = None if first is None else first.radial  # type: ignore[attr-defined]
    compute.slow = None if first is None else first.azimuthal  # type: ignore[attr-defined]
    return compute


def build(spec, h5: h5py.File) -> FrameBlocks:
    """Block function of a grazing-incidence spec: angles, groups and masks read once."""
    params = spec.params
    configs, keys, index = scan_groups(h5, params)
    return make_function(params, read_arrays(h5, params), configs, keys, index)


def finite_range(values: list[np.ndarray]) -> list[float]:
    """[lo, hi] over arrays, widened by 1e-6 of the span so the extreme pixel centres are in."""
    lo = min(float(np.nanmin(v)) for v in values)
    hi = max(float(np.nanmax(v)) for v in values)
    pad = 1e-6 * (hi - lo) if hi > lo else 1e-6 * max(abs(lo), 1.0)
    if not (math.isfinite(lo) and math.isfinite(hi)):
        raise InputError("the detector's pixels give no finite q; check the geometry")
    return [lo - pad, hi + pad]
