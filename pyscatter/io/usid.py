"""Writing and reading the USID model with plain h5py (pyUSID reads what this writes).

A USID main dataset is 2-D, (positions, spectroscopic values), with four ancillary datasets linked
by object references in its attributes: ``Position_Indices``/``Position_Values`` of shape
(n_positions, n_position_dims) and ``Spectroscopic_Indices``/``Spectroscopic_Values`` of shape
(n_spectroscopic_dims, n_spectroscopic). Dimensions are listed slow to fast: the last one varies
fastest. Position values are float64 (pyUSID's float32 default collapses epoch timestamps) and may
hold real motor read-backs instead of the nominal grid values.

pyUSID is not imported here: it costs seconds to import and nothing in it is needed to write.
Tests check every dataset written here with :func:`pyUSID.hdf_utils.check_if_main`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import h5py
import numpy as np

from pyscatter.errors import InputError

__all__ = [
    "COMPRESSIONS",
    "Dim",
    "ancillary_arrays",
    "compression_options",
    "create_main",
    "dims_of",
    "is_main",
    "main_datasets",
    "read_nd",
    "write_ancillary",
]

COMPRESSIONS = ("bslz4", "gzip", "none")
INDICES_DTYPE = np.uint32
MAX_AXIS_ATTR = 4096  # float64 values an axis attribute may hold (HDF5: 64 KiB per attribute)
VALUES_DTYPE = np.float64


@dataclass(frozen=True)
class Dim:
    """One dimension of a USID dataset: a name, a unit and its (nominal) values, slow to fast.

    Plain arrays, never ``sidpy.Dimension``, whose arithmetic silently returns its input.
    """

    name: str
    units: str
    values: np.ndarray

    def __post_init__(self) -> None:
        values = np.asarray(self.values, dtype=np.float64).ravel()
        if values.size == 0:
            raise InputError(f"dimension {self.name!r} has no values")
        object.__setattr__(self, "values", values)

    def __len__(self) -> int:
        return int(self.values.size)


def compression_options(compression: str | None) -> dict[str, Any]:
    """h5py ``create_dataset`` keywords for one of :data:`COMPRESSIONS`."""
    if compression in (None, "none"):
        return {}
    if compression == "gzip":
        return {"compression": "gzip", "compression_opts": 4, "shuffle": True}
    if compression == "bslz4":
        import hdf5plugin

        return dict(hdf5plugin.Bitshuffle(nelems=0, cname="lz4"))
    raise InputError(
        f"unsupported compression {compression!r}; expected one of {', '.join(COMPRESSIONS)}"
    )


def ancillary_arrays(dims: Sequence[Dim]) -> tuple[np.ndarray, np.ndarray]:
    """Indices and values of a full grid over ``dims`` (slow to fast), shape (n, len(dims))."""
    indices, values = _grid(dims)
    return indices.T, values.T


def _grid(dims: Sequence[Dim]) -> tuple[np.ndarray, np.ndarray]:
    """:func:`ancillary_arrays` transposed, as USID stores spectroscopic ancillaries: indices
    and values of shape (len(dims), n), C-contiguous, built without intermediate copies."""
    if not dims:
        raise InputError("at least one dimension is required")
    indices = np.indices([len(d) for d in dims], dtype=INDICES_DTYPE).reshape(len(dims), -1)
    values = np.empty(indices.shape, dtype=VALUES_DTYPE)
    for k, d in enumerate(dims):
        np.take(np.asarray(d.values).astype(VALUES_DTYPE), indices[k], out=values[k])
    return indices, values


def write_ancillary(
    group: h5py.Group,
    prefix: str,
    dims: Sequence[Dim],
    *,
    spectroscopic: bool,
    values: np.ndarray | None = None,
) -> tuple[h5py.Dataset, h5py.Dataset]:
    """Write ``<prefix>Indices`` and ``<prefix>Values`` for ``dims`` into ``group``.

    Parameters
    ----------
    group : h5py.Group
        Where to write (may be an unlinked group).
    prefix : str
        ``"Position_"`` or ``"Spectroscopic_"`` (or another prefix ending in ``_``).
    dims : sequence of Dim
        Slow to fast.
    spectroscopic : bool
        Spectroscopic datasets are stored transposed, (n_dims, n), as USID requires.
    values : ndarray, optional
        (n, n_dims) measured values (e.g. motor read-backs) replacing the nominal grid values.
    """
    # a detector's (Row, Col) ancillaries are 24 bytes a pixel uncompressed: gzip them when
    # large, at level 1 (Eiger 1M: 0.37 MB, written in 50 ms and read in 35 ms; level 4 gives
    # 0.27 MB in 140 ms and 90 ms, paid by every translation and by every reader)
    big = len(dims) * int(np.prod([len(d) for d in dims])) > 65536
    options = {"compression": "gzip", "compression_opts": 1, "shuffle": True} if big else {}
    if big and values is None:  # a nominal grid: its chunks may be cached
        from pyscatter.io.ancillary_cache import write_grid

        def build() -> tuple[np.ndarray, np.ndarray]:
            indices, nominal = _grid(dims)
            return (indices, nominal) if spectroscopic else (indices.T, nominal.T)

        parts = {
            "dims": [(d.name, len(d), np.asarray(d.values).astype(VALUES_DTYPE)) for d in dims],
            "spectroscopic": spectroscopic,
            "dtypes": [np.dtype(INDICES_DTYPE).str, np.dtype(VALUES_DTYPE).str],
        }
        h5_inds, h5_vals = write_grid(group, prefix, parts, build, options)
    else:
        h5_inds, h5_vals = _write_arrays(group, prefix, dims, spectroscopic, values, options)
    for dset in (h5_inds, h5_vals):
        dset.attrs["labels"] = [d.name for d in dims]
        dset.attrs["units"] = [d.units for d in dims]
        for d in dims:
            # the nominal grid axis; HDF5 caps an attribute at 64 KiB, so a long axis (a 1-D
            # scan of 10k points) is left to dims_of, which rebuilds it from the values
            if len(d) <= MAX_AXIS_ATTR:
                dset.attrs[f"axis_{d.name}"] = d.values
    return h5_inds, h5_vals


def _write_arrays(
    group: h5py.Group,
    prefix: str,
    dims: Sequence[Dim],
    spectroscopic: bool,
    values: np.ndarray | None,
    options: dict[str, Any],
) -> tuple[h5py.Dataset, h5py.Dataset]:
    indices, nominal = _grid(dims)  # (n_dims, n): the spectroscopic layout
    if values is not None:
        values = np.asarray(values, dtype=VALUES_DTYPE)
        if values.shape != nominal.T.shape:
            raise InputError(
                f"{prefix}Values: measured values have shape {values.shape}; "
                f"expected {nominal.T.shape} (positions × dims, slow to fast)"
            )
        nominal = values.T
    if not spectroscopic:
        indices, nominal = indices.T, nominal.T
    h5_inds = group.create_dataset(prefix + "Indices", data=indices, **options)
    h5_vals = group.create_dataset(prefix + "Values", data=nominal, **options)
    return h5_inds, h5_vals


def create_main(
    group: h5py.Group,
    name: str,
    *,
    shape: tuple[int, int],
    dtype: Any,
    quantity: str,
    units: str,
    position: tuple[h5py.Dataset, h5py.Dataset],
    spectroscopic: tuple[h5py.Dataset, h5py.Dataset],
    chunks: tuple[int, int] | None = None,
    compression: str | None = None,
    data: np.ndarray | None = None,
    crash_safe: bool = False,
    maxshape: tuple[int | None, int | None] | None = None,
) -> h5py.Dataset:
    """Create a USID main dataset linked to its ancillary datasets.

    ``crash_safe=True`` follows rule 4 of the crash-safety recipe: space allocated at creation,
    no filter, fixed shape, so a later in-place write touches only its own chunk. Float datasets
    are filled with NaN once, at creation (the fill value viewers read as missing), integer ones
    never filled; either way nothing is written into them after set-up but the results.
    ``maxshape`` (with ``chunks``; None for an unlimited dimension) lets a dataset grow with
    its source, a live series (:mod:`pyscatter.processes.live_session`).
    """
    pos_inds, pos_vals = position
    spec_inds, spec_vals = spectroscopic
    if pos_inds.shape[0] != shape[0] or spec_inds.shape[1] != shape[1]:
        raise InputError(
            f"main dataset {name!r} of shape {shape} does not match its ancillary datasets "
            f"({pos_inds.shape[0]} positions, {spec_inds.shape[1]} spectroscopic values)"
        )
    kwargs: dict[str, Any] = {}
    if crash_safe:
        if compression not in (None, "none"):
            raise InputError("crash-safe results datasets cannot be compressed")
        dcpl = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
        dcpl.set_alloc_time(h5py.h5d.ALLOC_TIME_EARLY)
        if np.issubdtype(np.dtype(dtype), np.floating):  # viewers show uncomputed as missing
            dcpl.set_fill_time(h5py.h5d.FILL_TIME_ALLOC)
            dcpl.set_fill_value(np.full((), np.nan, dtype=dtype))
        else:
            dcpl.set_fill_time(h5py.h5d.FILL_TIME_NEVER)
        if chunks is not None:
            dcpl.set_chunk(chunks)
        unlimited = None if maxshape is None else h5py.h5s.UNLIMITED
        limits = (
            shape if maxshape is None else tuple(unlimited if m is None else m for m in maxshape)
        )
        space = h5py.h5s.create_simple(shape, limits)
        tid = h5py.h5t.py_create(np.dtype(dtype), logical=True)
        dsid = h5py.h5d.create(group.id, name.encode(), tid, space, dcpl=dcpl)
        dset = h5py.Dataset(dsid)
    else:
        kwargs.update(compression_options(compression))
        dset = group.create_dataset(
            name, shape=shape, dtype=dtype, chunks=chunks, data=data, maxshape=maxshape, **kwargs
        )
    dset.attrs["quantity"] = quantity
    dset.attrs["units"] = units
    dset.attrs["Position_Indices"] = pos_inds.ref
    dset.attrs["Position_Values"] = pos_vals.ref
    dset.attrs["Spectroscopic_Indices"] = spec_inds.ref
    dset.attrs["Spectroscopic_Values"] = spec_vals.ref
    return dset


_ANCILLARY = (
    "Position_Indices",
    "Position_Values",
    "Spectroscopic_Indices",
    "Spectroscopic_Values",
)


def is_main(dset: Any) -> bool:
    """True if ``dset`` looks like a USID main dataset (cheap check, no pyUSID import)."""
    return (
        isinstance(dset, h5py.Dataset)
        and dset.ndim == 2
        and all(k in dset.attrs for k in (*_ANCILLARY, "quantity", "units"))
    )


def main_datasets(h5: h5py.Group) -> list[h5py.Dataset]:
    """Every main dataset below ``h5``, in file order."""
    found: list[h5py.Dataset] = []

    def visit(_name: str, obj: Any) -> None:
        if is_main(obj):
            found.append(obj)

    h5.visititems(visit)
    return found


def _str_list(value: Any) -> list[str]:
    if isinstance(value, (str, bytes)):
        value = [value]
    return [v.decode() if isinstance(v, bytes) else str(v) for v in value]


def dims_of(dset: h5py.Dataset, which: str) -> list[Dim]:
    """The position (``which="Position"``) or spectroscopic dimensions of a main dataset.

    Values are the grid axis of each dimension: the ``axis_<name>`` attribute pyscatter writes,
    or else the mean of the measured values at each index.
    """
    inds = dset.file[dset.attrs[f"{which}_Indices"]]
    vals = dset.file[dset.attrs[f"{which}_Values"]]
    labels = _str_list(inds.attrs["labels"])
    units = _str_list(inds.attrs["units"])
    ind_arr, val_arr = inds[()], vals[()]
    if which == "Spectroscopic":
        ind_arr, val_arr = ind_arr.T, val_arr.T
    dims = []
    for k, (label, unit) in enumerate(zip(labels, units, strict=True)):
        key = f"axis_{label}"
        if key in inds.attrs:
            axis = np.asarray(inds.attrs[key], dtype=np.float64)
        else:
            idx = ind_arr[:, k].astype(np.int64)
            axis = np.bincount(idx, weights=val_arr[:, k]) / np.maximum(np.bincount(idx), 1)
        dims.append(Dim(label, unit, axis))
    return dims


def read_nd(dset: h5py.Dataset, selection: Any = slice(None)) -> tuple[np.ndarray, list[Dim]]:
    """Read a main dataset unflattened: (*position dims, *spectroscopic dims), slow to fast.

    Positions must form the full grid of the position dims in slow-to-fast order, as pyscatter writes
    them (an aborted scan is padded by its translator).
    """
    pos, spec = dims_of(dset, "Position"), dims_of(dset, "Spectroscopic")
    shape = tuple(len(d) for d in pos) + tuple(len(d) for d in spec)
    data = dset[selection]
    return np.asarray(data).reshape(shape), pos + spec
