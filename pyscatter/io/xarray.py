"""Results as :class:`xarray.Dataset`: position dims unflattened slow to fast, then result dims."""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from typing import Any

import h5py
import numpy as np

from pyscatter.errors import InputError
from pyscatter.io.record import verified_positions
from pyscatter.io.results import find_results, process_name, results_group
from pyscatter.io.usid import dims_of, is_main

__all__ = [
    "COMPLETE",
    "NOT_COMPUTED",
    "find_results",
    "open_for_reading",
    "status_flags",
    "to_xarray",
    "verified_positions",
]

#: Name of the boolean coordinate over the position dims: True where the results are computed
#: (a failed fit is computed: its status says how it failed; NaN values do not mean "missing").
COMPLETE = "complete"
#: ``status`` code of a position not computed yet (flag meaning ``NOT_COMPUTED``).
NOT_COMPUTED = -1


@contextlib.contextmanager
def open_for_reading(path: str | os.PathLike) -> Iterator[h5py.File]:
    """Open read-only; while a job writes the file (HDF5 lock held) read without the lock.

    Only chunks whose completion flag verifies are trusted (see :func:`verified_positions`).
    """
    import hdf5plugin  # noqa: F401  (filters of compressed raw data)

    if os.path.isdir(path):
        raise InputError(f"{path} is a folder; expected an HDF5 file")
    try:
        h5 = h5py.File(path, "r")
    except BlockingIOError:
        h5 = h5py.File(path, "r", locking=False)
    except FileNotFoundError as err:
        raise InputError(f"no such file: {path}") from err
    except OSError as err:
        if "lock" in str(err).lower():
            h5 = h5py.File(path, "r", locking=False)
        else:
            raise InputError(f"{path}: not an HDF5 file h5py can open ({err})") from err
    try:
        yield h5
    finally:
        h5.close()


def to_xarray(path: str | os.PathLike, process: str = "AzimuthalIntegration", *, index: int = -1):
    """The results of ``process`` in ``path`` as an :class:`xarray.Dataset`.

    Variables are the main datasets of the results group (``Intensity``, ``Intensity_Sigma``…)
    with dims (position dims…, result dims…); coordinates carry units in ``attrs["units"]``;
    measured motor values are coordinates ``<dim>_measured`` over the position dims. Positions not
    yet complete (a run still going, or interrupted) are NaN in float variables and False in the
    boolean coordinate ``complete`` (:data:`COMPLETE`) over the position dims (also a group that
    grows with a live source, read at its source's current size); a computed position
    may hold NaN too (a failed fit), which ``complete`` tells apart. A ``status`` variable (fit
    outcome codes) carries CF ``flag_values`` and ``flag_meanings`` (see :func:`status_flags`) and
    is ``NOT_COMPUTED`` (-1) at positions not computed yet.

    Parameters
    ----------
    path : path
    process : str
        Process name, e.g. ``"AzimuthalIntegration"``, ``"OrderParameter"``, or its pipeline
        step name (``"integrate"``, ``"order"``); see :mod:`pyscatter.io.results`.
    index : int
        Which results group of that process, in file order (-1: the latest).

    Raises
    ------
    InputError
        No such file, no results of ``process`` (the message lists those present) or no
        group at ``index``.
    """
    import xarray as xr

    with open_for_reading(path) as h5:
        group = results_group(h5, process, index=index, path=str(path))
        process = process_name(process)
        ok: np.ndarray | None = None
        data_vars: dict[str, Any] = {}
        coords: dict[str, Any] = {}
        pos_shape: tuple[int, ...] = ()
        position_dims: list[str] = []
        for name in group:
            dset = group[name]
            if not is_main(dset):
                continue
            pos, spec = dims_of(dset, "Position"), dims_of(dset, "Spectroscopic")
            pos_shape = tuple(len(d) for d in pos)
            position_dims = [d.name for d in pos]
            n_pos = int(np.prod(pos_shape))
            if ok is None:  # positions of the source (a live group may lag behind it)
                ok = verified_positions(group, n_pos)
            values = _rows(dset[()], n_pos)
            if np.issubdtype(values.dtype, np.floating):
                values[~ok] = np.nan
            shape = pos_shape + tuple(len(d) for d in spec)
            dims = [d.name for d in pos + spec]
            var_attrs = {
                "units": str(dset.attrs["units"]),
                "long_name": str(dset.attrs["quantity"]),
            }
            if name == "status" and "status_codes" in group.attrs:
                var_attrs.update(status_flags(group, values.dtype))
                values = values.copy()
                values[~ok] = NOT_COMPUTED
            data_vars[name] = xr.Variable(dims, values.reshape(shape), attrs=var_attrs)
            for d in pos + spec:
                coords[d.name] = xr.Variable(d.name, d.values, attrs={"units": d.units})
            coords.update(_measured_coords(h5, dset, pos))
        if ok is None:
            ok = verified_positions(group)
        if position_dims:
            coords[COMPLETE] = xr.Variable(
                position_dims,
                ok.reshape(pos_shape),
                attrs={"long_name": "position computed (completion flag verified)"},
            )
        attrs = {
            "position_dims": ",".join(position_dims),  # text: netCDF-safe
            "process": process,
            "group": group.name,
            "parameters": str(group.attrs.get("parameters", "{}")),
            "complete_positions": int(ok.sum()),
            "n_positions": int(ok.size),
        }
        return xr.Dataset(data_vars, coords=coords, attrs=attrs)


def _rows(values: np.ndarray, n: int) -> np.ndarray:
    """A copy of ``values`` with ``n`` rows: a results group that grows with a live source may
    hold fewer rows than its source's positions for a moment (the rest are not computed: NaN,
    or 0 in other types, masked by the caller)."""
    if values.shape[0] >= n:
        return values[:n].copy()
    fill = np.nan if np.issubdtype(values.dtype, np.floating) else 0
    out = np.full((n, *values.shape[1:]), fill, dtype=values.dtype)
    out[: values.shape[0]] = values
    return out


def _measured_coords(h5: h5py.File, dset: h5py.Dataset, pos: list) -> dict[str, Any]:
    """``<dim>_measured`` coordinates of ``dset``'s position dims whose recorded motor values
    are not the grid's."""
    import xarray as xr

    pos_shape = tuple(len(d) for d in pos)
    measured = h5[dset.attrs["Position_Values"]][()]
    coords: dict[str, Any] = {}
    for k, d in enumerate(pos):
        if not np.array_equal(measured[:, k], d.values[_grid_index(pos_shape, k)]):
            coords[f"{d.name}_measured"] = xr.Variable(
                [p.name for p in pos], measured[:, k].reshape(pos_shape), attrs={"units": d.units}
            )
    return coords


def status_flags(group: h5py.Group, dtype: np.dtype) -> dict[str, Any]:
    """CF ``flag_values``/``flag_meanings`` of a ``status`` dataset from the group's codes.

    The fit processes record ``status_codes`` (JSON ``{name: code}``) and
    ``status_description`` on their results group; CF readers (xarray, netCDF tools) decode
    status codes from these two attributes. :func:`to_xarray` sets the status of positions not
    computed yet to :data:`NOT_COMPUTED` (``-1``), listed first.
    """
    text = group.attrs.get("status_codes")
    if text is None:
        return {}
    codes = sorted(
        [("NOT_COMPUTED", NOT_COMPUTED), *json.loads(str(text)).items()], key=lambda item: item[1]
    )
    flags: dict[str, Any] = {
        "flag_values": np.array([c for _, c in codes], dtype=dtype),
        "flag_meanings": " ".join(n for n, _ in codes),
    }
    if "status_description" in group.attrs:
        flags["comment"] = str(group.attrs["status_description"])
    return flags


def _grid_index(shape: tuple[int, ...], axis: int) -> np.ndarray:
    return np.indices(shape)[axis].ravel()
