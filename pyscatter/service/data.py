"""What the service reads from a file: its results groups, a map, one position, one frame.

Every function opens the file with :func:`pyscatter.open` (read-only, no HDF5 lock, retried
while a writer flushes), finds results through :mod:`pyscatter.io.results` and reads dims
through :mod:`pyscatter.io.usid`; positions whose completion flag does not verify are
``None`` (JSON ``null``), so a map read while a watch writes shows what is done and nothing torn.
The values returned are plain Python (lists, floats, ``None`` for NaN), ready for JSON. One
request reads at a time (:data:`READS`).
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import h5py
import numpy as np

import pyscatter
from pyscatter.errors import InputError
from pyscatter.io.record import completion
from pyscatter.io.results import latest_results
from pyscatter.io.usid import Dim, dims_of, is_main
from pyscatter.service.paths import DataRoot, NotFoundError

__all__ = [
    "HDF5_SUFFIXES",
    "detector_frame",
    "list_files",
    "position_detail",
    "result_map",
    "results_summary",
]

HDF5_SUFFIXES = (".h5", ".hdf5", ".nxs", ".hdf")
MAX_FILES = 2000


def list_files(root: DataRoot) -> dict[str, Any]:
    """The HDF5 files under the root (links leaving it skipped), newest first."""
    found: list[dict[str, Any]] = []
    truncated = False
    for folder, dirs, files in os.walk(root.root, followlinks=False):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in files:
            if not name.lower().endswith(HDF5_SUFFIXES) or name.startswith("."):
                continue
            path = Path(folder) / name
            try:
                real = path.resolve(strict=True)
                stat = real.stat()
            except OSError:
                continue
            if not real.is_relative_to(root.root):
                continue
            found.append(
                {"path": root.relative(path), "size": stat.st_size, "modified": stat.st_mtime}
            )
            if len(found) >= MAX_FILES:
                truncated = True
                break
        if truncated:
            break
    found.sort(key=lambda f: (-f["modified"], f["path"]))
    return {"root": str(root.root), "files": found, "truncated": truncated}


def results_summary(path: Path, rel: str) -> dict[str, Any]:
    """Every results group of the file with its main datasets and how far it got."""
    with _open(path, rel) as f:
        groups = []
        for group in f.results():
            _done, total = completion(group)
            datasets = []
            for name in group:
                dset = group[name]
                if is_main(dset):
                    pos = dims_of(dset, "Position")
                    dims = pos + dims_of(dset, "Spectroscopic")
                    datasets.append(
                        {
                            "name": name,
                            "shape": [len(d) for d in dims],
                            "dims": [d.name for d in dims],
                            "units": [d.units for d in dims],
                            "position_dims": len(pos),
                        }
                    )
            groups.append(
                {
                    "path": group.name,
                    "process": _text(group.attrs["process"]),
                    "source": _text(group.attrs.get("source", "")),
                    "start_time": _text(group.attrs.get("start_time", "")),
                    "complete_positions": int(f.verified(group).sum()),
                    "n_positions": total,
                    "datasets": datasets,
                }
            )
        writer = f.writer
        state = f.attrs.get("live_state")
        return {
            "file": rel,
            "live_state": None if state is None else _text(state),
            "writer": None if writer is None else writer.describe(),
            "status": f.status,
            "groups": groups,
        }


def result_map(
    path: Path,
    rel: str,
    group_path: str,
    quantity: str,
    index: int = 0,
    q_min: float | None = None,
    q_max: float | None = None,
) -> dict[str, Any]:
    """One value per position of ``quantity`` in a results group.

    A result with several values per position (a ring axis, a q axis) gives the one at flat
    ``index`` of its result dims, or, with ``q_min`` and ``q_max``, its trapezoidal integral
    over the last result dim between them (the integrated intensity of I(q) in a q range).
    """
    with _open(path, rel) as f:
        group = _group(f, rel, group_path)
        dset = group.get(quantity)
        if not is_main(dset):
            names = [n for n in group if is_main(group[n])]
            raise NotFoundError(
                f"{rel}:{group_path}: no result {quantity!r}; results: {', '.join(names)}"
            )
        pos, spec = dims_of(dset, "Position"), dims_of(dset, "Spectroscopic")
        ok = f.verified(group)
        values = np.asarray(f.read(group, quantity), dtype=np.float64)  # masked → NaN
        values = np.where(np.broadcast_to(ok[:, None], values.shape), values, np.nan)
        label = f"{quantity}"
        if q_min is not None or q_max is not None:
            values, label = _integrated(values, spec, q_min, q_max, quantity)
        else:
            if index >= values.shape[1]:
                raise InputError(
                    f"index {index}: {quantity} has {values.shape[1]} values per position"
                )
            values = values[:, index]
            if values.size and len(spec) and values.shape[0] and dset.shape[1] > 1:
                label += f" [{_spec_label(spec, index)}]"
        return {
            "file": rel,
            "group": group.name,
            "quantity": quantity,
            "units": _text(dset.attrs.get("units", "")),
            "label": label,
            "dims": [_axis(d) for d in pos],
            "values": _json_floats(values),
            "complete": ok.tolist(),
            "n_positions": int(ok.size),
            "complete_positions": int(ok.sum()),
        }


def position_detail(
    path: Path,
    rel: str,
    index: int,
    integration: str | None = None,
    profiles: str | None = None,
) -> dict[str, Any]:
    """I(q), the azimuthal profiles I(chi) and their fits at position ``index`` (flat), and, in
    a file with XRF fits, the position's spectrum with its fit and line markers."""
    with _open(path, rel) as f:
        out: dict[str, Any] = {"file": rel, "index": index, "position": {}, "rings": []}
        out.update(integration=None, q_units=None, iq=None, profiles=None)
        out.update(fit_group=None, fit_model=None)
        ig = _group(f, rel, integration) if integration else _latest(f, "AzimuthalIntegration")
        if ig is not None and "Intensity" in ig:
            dset = ig["Intensity"]
            _check_index(dset, index, rel)
            (q_dim,) = dims_of(dset, "Spectroscopic")[-1:]
            ok = bool(f.verified(ig)[index])
            out.update(integration=ig.name, q_units=q_dim.units)
            out["position"] = _position(f, dset, index)
            out["iq"] = {
                "x": _json_floats(q_dim.values),
                "y": _json_floats(_row(dset, index, ok)),
                "sigma": _json_floats(_row(ig["Intensity_Sigma"], index, ok))
                if "Intensity_Sigma" in ig
                else None,
            }
        pg = _group(f, rel, profiles) if profiles else _latest(f, "AzimuthalProfiles")
        if pg is not None and "Intensity" in pg:
            out.update(_profiles(f, pg, index, rel, out))
        xg = _latest(f, "XrfFit")
        out["xrf"] = None if xg is None else _xrf(f, xg, index, rel, out)
        return out


def _xrf(f: Any, group: h5py.Group, index: int, rel: str, out: dict) -> dict[str, Any]:
    """The position's MCA spectrum with the fast linear fit of ``group`` and its line markers
    (the fit recomputed from the recorded parameters: :func:`pyscatter.plot.xrf.pixel_fit`)."""
    from pyscatter.plot.xrf import line_markers, pixel_fit

    source = f[_text(group.attrs["source"])]
    _check_index(source, index, rel)
    fit = pixel_fit(f, group, index)
    if not out["position"]:
        out["position"] = _position(f, source, index)
    ok = bool(f.verified(group)[index])
    areas = fit["areas"] if ok else np.full(len(fit["groups"]), np.nan)
    return {
        "group": group.name,
        "energy": _json_floats(fit["energy"]),
        "counts": _json_floats(fit["counts"]),
        "model": None if fit["model"] is None else _json_floats(fit["model"]),
        "background": None if fit["background"] is None else _json_floats(fit["background"]),
        "areas": {g.name: _json_float(a) for g, a in zip(fit["groups"], areas, strict=True)},
        "markers": [{"energy": e, "label": label} for e, label in line_markers(fit["groups"])],
    }


def detector_frame(path: Path, rel: str, index: int, max_size: int = 256) -> dict[str, Any]:
    """The frame at ``index`` averaged in blocks to at most ``max_size`` pixels a side, with
    q at each block's centre from the recorded geometry and the rings of the latest profiles."""
    from pyscatter.processes.detector import frame_shape

    with _open(path, rel) as f:
        raw = _raw_data(f, rel)
        _check_index(raw, index, rel)
        shape = frame_shape(raw)
        step = max(1, -(-max(shape) // max_size))
        flags = raw.parent.get("live_frames")
        measured = flags is None or index >= flags.shape[0] or int(flags[index]) != 0
        image = q = None
        q_units = _q_unit(f)
        if measured:
            frame = raw[index].reshape(shape).astype(np.float64)
            if "Mask" in raw.parent and raw.parent["Mask"].shape == shape:
                frame[raw.parent["Mask"][()] != 0] = np.nan
            image = _json_rows(_block_mean(frame, step))
            qmap = _q_map(f.path, raw.name, _geometry_text(raw), shape, q_units)
            q = None if qmap is None else _json_rows(_block_mean(qmap, step))
        profiles = _latest(f, "AzimuthalProfiles")
        rings = [] if profiles is None or "ring" not in profiles else profiles["ring"][()].tolist()
        return {
            "file": rel,
            "index": index,
            "measured": measured,
            "shape": list(shape),
            "step": step,
            "image": image,
            "q": q,
            "q_units": q_units if q is not None else None,
            "rings": [float(r) for r in rings],
        }


# ------------------------------------------------------------------------------ helpers
#: Held while a handler has a file open: one reader of HDF5 files at a time in the service.
#: The handlers run in a thread pool and a browser asks for a position and its frame at once;
#: h5py 3.16 with HDF5 2.0 can corrupt memory when threads read through separate handles at
#: the same time (h5py/h5py#2920: a crash with a handle per thread, none with a lock around
#: each read), seen here as the service dying with "double free or corruption" while the
#: browser tests fetched a position and its frame. A request holds it for milliseconds.
READS = threading.Lock()


@contextlib.contextmanager
def _open(path: Path, rel: str) -> Iterator[Any]:
    with READS:
        try:
            f = pyscatter.open(path)
        except InputError as err:
            raise InputError(f"{rel}: not a file pyscatter can read ({err})") from None
        with f as opened:
            yield opened


def _group(f: Any, rel: str, group_path: str) -> h5py.Group:
    group = f.get(group_path)
    if not isinstance(group, h5py.Group) or "process" not in group.attrs:
        raise NotFoundError(f"{rel}: no results group {group_path!r} (see /api/results)")
    return group


def _latest(f: Any, process: str) -> h5py.Group | None:
    return latest_results(f, process, complete=False)


def _check_index(dset: h5py.Dataset, index: int, rel: str) -> None:
    if index >= dset.shape[0]:
        raise NotFoundError(f"{rel}: position {index} does not exist ({dset.shape[0]} positions)")


def _row(dset: h5py.Dataset, index: int, ok: bool) -> np.ndarray:
    row = np.asarray(dset[index], dtype=np.float64)
    return row if ok else np.full_like(row, np.nan)


def _position(f: Any, dset: h5py.Dataset, index: int) -> dict[str, float]:
    labels = [d.name for d in dims_of(dset, "Position")]
    values = f[dset.attrs["Position_Values"]][index]
    return {k: float(v) for k, v in zip(labels, values, strict=True)}


def _profiles(f: Any, pg: h5py.Group, index: int, rel: str, out: dict) -> dict[str, Any]:
    from pyscatter.kernels.models import get_model

    dset = pg["Intensity"]
    _check_index(dset, index, rel)
    spec = dims_of(dset, "Spectroscopic")
    chi = spec[-1].values
    ok = bool(f.verified(pg)[index])
    rows = _row(dset, index, ok).reshape(-1, chi.size)
    sig = (
        _row(pg["Intensity_Sigma"], index, ok).reshape(rows.shape)
        if "Intensity_Sigma" in pg
        else None
    )
    ring_q = spec[0].values if len(spec) > 1 else np.array([np.nan])
    fit = _fit_of(f, dset)
    fit_curves = params = status = None
    if fit is not None:
        model = get_model(_text(fit.attrs["model"]))
        fok = bool(f.verified(fit)[index])
        table = np.stack([_row(fit[n], index, fok) for n in model.param_names], axis=-1)
        fit_curves = model.func(chi, table.reshape(-1, model.n_par))
        params = [dict(zip(model.param_names, _json_floats(p), strict=True)) for p in table]
        status = (
            [int(s) if fok else None for s in fit["status"][index]] if "status" in fit else None
        )
    rings = []
    for k in range(rows.shape[0]):
        rings.append(
            {
                "q": _json_float(ring_q[k]),
                "profile": {
                    "x": _json_floats(chi),
                    "y": _json_floats(rows[k]),
                    "sigma": None if sig is None else _json_floats(sig[k]),
                },
                "fit": None if fit_curves is None else _json_floats(fit_curves[k]),
                "fit_parameters": None if params is None else params[k],
                "fit_status": None if status is None else status[k],
            }
        )
    if not out["position"]:
        out["position"] = _position(f, dset, index)
    return {
        "profiles": pg.name,
        "fit_group": None if fit is None else fit.name,
        "fit_model": None if fit is None else _text(fit.attrs["model"]),
        "rings": rings,
    }


def _fit_of(f: Any, profiles: h5py.Dataset) -> h5py.Group | None:
    """The latest ProfileFit group whose source is ``profiles``."""
    fits = [
        g
        for g in f.results("ProfileFit")
        if _text(g.attrs.get("source", "")) == profiles.name and "model" in g.attrs
    ]
    fits.sort(key=lambda g: _text(g.attrs.get("start_time", "")))
    return fits[-1] if fits else None


def _raw_data(f: Any, rel: str) -> h5py.Dataset:
    for group in f.results("AzimuthalIntegration")[::-1]:
        source = f.get(_text(group.attrs.get("source", "")))
        if is_main(source):
            return source
    found: list[h5py.Dataset] = []
    f.visititems(lambda n, o: found.append(o) if n.endswith("Raw_Data") and is_main(o) else None)
    if not found:
        raise NotFoundError(f"{rel}: no Raw_Data (detector frames) in this file")
    return found[0]


def _geometry_text(raw: h5py.Dataset) -> str | None:
    for obj in (raw, raw.parent, raw.parent.parent):
        if "geometry" in obj.attrs:
            return _text(obj.attrs["geometry"])
    return None


def _q_unit(f: Any) -> str:
    ig = _latest(f, "AzimuthalIntegration")
    unit = "q_nm^-1" if ig is None else _text(ig.attrs.get("param_unit", "q_nm^-1"))
    return unit if unit.startswith("q_") else "q_nm^-1"


@functools.lru_cache(maxsize=8)
def _q_map(
    path: str, raw: str, geometry: str | None, shape: tuple[int, int], unit: str
) -> np.ndarray | None:
    """q at every pixel centre from the recorded geometry (None without one); cached."""
    if geometry is None:
        return None
    from pyscatter.geometry import integrator_from_config

    ai = integrator_from_config(json.loads(geometry), where=f"{path}:{raw}")
    return np.asarray(ai.array_from_unit(shape=shape, typ="center", unit=unit), dtype=np.float64)


def _block_mean(image: np.ndarray, step: int) -> np.ndarray:
    if step == 1:
        return image
    rows, cols = (image.shape[0] // step) * step, (image.shape[1] // step) * step
    blocks = image[:rows, :cols].reshape(rows // step, step, cols // step, step)
    finite = np.isfinite(blocks)
    total = np.where(finite, blocks, 0.0).sum(axis=(1, 3))
    count = finite.sum(axis=(1, 3))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def _integrated(
    values: np.ndarray, spec: list[Dim], q_min: float | None, q_max: float | None, quantity: str
) -> tuple[np.ndarray, str]:
    if q_min is None or q_max is None or not q_min < q_max:
        raise InputError(f"q_min {q_min} and q_max {q_max}: give both, with q_min < q_max")
    if len(spec) != 1:
        raise InputError(f"{quantity}: integrating over q needs one result dim; it has {len(spec)}")
    q = spec[0].values
    inside = (q >= q_min) & (q <= q_max)
    if inside.sum() < 2:
        raise InputError(
            f"q range [{q_min}, {q_max}]: fewer than 2 {spec[0].name} values inside "
            f"(the axis spans {q.min():.4g} to {q.max():.4g} {spec[0].units})"
        )
    total = np.trapezoid(values[:, inside], q[inside], axis=1)
    return total, f"∫ {quantity} d{spec[0].name}, {q_min:g}–{q_max:g} {spec[0].units}"


def _spec_label(spec: list[Dim], index: int) -> str:
    sizes = [len(d) for d in spec]
    where = np.unravel_index(index, sizes)
    return ", ".join(f"{d.name}={d.values[i]:.4g}" for d, i in zip(spec, where, strict=True))


def _axis(d: Dim) -> dict[str, Any]:
    return {"name": d.name, "units": d.units, "values": [float(v) for v in d.values]}


def _json_float(v: Any) -> float | None:
    v = float(v)
    return v if np.isfinite(v) else None


def _json_floats(values: Any) -> list[float | None]:
    arr = np.asarray(values, dtype=np.float64).ravel()
    return [float(v) if np.isfinite(v) else None for v in arr.tolist()]


def _json_rows(image: np.ndarray) -> list[list[float | None]]:
    return [_json_floats(row) for row in image]


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
