"""The compressed chunks of a large nominal ancillary grid, kept in the matrix cache.

A detector's spectroscopic ancillaries hold the (Row, Col) index and value of every pixel: an
Eiger 1M's are 26 MB, gzipped (level 1, shuffled) to 0.33 MB. Building and compressing them
costs about 70 ms of every translation and live file of that detector, the same work every
time: the arrays are a function of the dims alone. So the chunks HDF5 wrote the first time
are kept in :mod:`pyscatter.io.matrix_cache` and written again with ``write_direct_chunk``:
the same chunk shape, filters and bytes in the file, no array built, nothing compressed.

The key holds everything the chunks depend on: the dims' names, sizes and values (their
sha256), the layout (spectroscopic or position), the dtypes and the dataset options, and
:data:`GRID_VERSION` (the layout of the grid itself). An entry that does not fit the dataset
(another chunk count, a chunk outside it or twice) is rejected and the grid written as
before.
``PYSCATTER_CACHE=off``: written as before, every time.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import h5py
import numpy as np

from pyscatter.io import matrix_cache

__all__ = ["GRID_VERSION", "write_grid"]

GRID_VERSION = 1
"""Version of the grid's layout (:func:`pyscatter.io.usid.write_ancillary`); part of the key."""

_NAMES = ("Indices", "Values")


def write_grid(
    group: h5py.Group,
    prefix: str,
    parts: Mapping[str, Any],
    build: Callable[[], tuple[np.ndarray, np.ndarray]],
    options: Mapping[str, Any],
) -> tuple[h5py.Dataset, h5py.Dataset]:
    """``<prefix>Indices`` and ``<prefix>Values`` in ``group``: ``build()``'s arrays written
    with ``options`` (h5py's ``create_dataset`` keywords), or their chunks from the cache.

    ``parts`` must determine ``build()``'s arrays (the dims and the layout).
    """
    if matrix_cache.directory() is None:
        return _create(group, prefix, build(), options)
    entry = matrix_cache.key("ancillary-chunks", grid=GRID_VERSION, options=dict(options), **parts)
    arrays = matrix_cache.load(entry, _consistent)
    if arrays is not None:
        return _from_chunks(group, prefix, arrays, options)
    made = _create(group, prefix, build(), options)
    matrix_cache.store(entry, _chunks(made))
    return made


def _create(
    group: h5py.Group,
    prefix: str,
    arrays: tuple[np.ndarray, np.ndarray],
    options: Mapping[str, Any],
) -> tuple[h5py.Dataset, h5py.Dataset]:
    indices, values = arrays
    return (
        group.create_dataset(prefix + "Indices", data=indices, **options),
        group.create_dataset(prefix + "Values", data=values, **options),
    )


def _chunks(dsets: tuple[h5py.Dataset, h5py.Dataset]) -> dict[str, np.ndarray]:
    """Each dataset's shape, dtype, chunk shape and stored chunks (offsets, sizes, filter
    masks, bytes), as plain arrays."""
    out: dict[str, np.ndarray] = {}
    for name, dset in zip(_NAMES, dsets, strict=True):
        dset.flush()  # the chunk cache's dirty chunks into the file, to read them as stored
        offsets, sizes, masks, pieces = [], [], [], []
        for i in range(dset.id.get_num_chunks()):
            info = dset.id.get_chunk_info(i)
            mask, data = dset.id.read_direct_chunk(info.chunk_offset)
            offsets.append(info.chunk_offset)
            sizes.append(len(data))
            masks.append(mask)
            pieces.append(np.frombuffer(data, dtype=np.uint8))
        out[f"{name}_shape"] = np.array(dset.shape, dtype=np.int64)
        out[f"{name}_dtype"] = np.array(dset.dtype.str)
        out[f"{name}_chunks"] = np.array(dset.chunks, dtype=np.int64)
        out[f"{name}_offsets"] = np.array(offsets, dtype=np.int64).reshape(-1, dset.ndim)
        out[f"{name}_sizes"] = np.array(sizes, dtype=np.int64)
        out[f"{name}_masks"] = np.array(masks, dtype=np.uint32)
        out[f"{name}_bytes"] = np.concatenate(pieces) if pieces else np.zeros(0, np.uint8)
    return out


def _consistent(arrays: dict[str, np.ndarray]) -> bool:
    """Every chunk inside its dataset, on the chunk grid, once; sizes that add up."""
    for name in _NAMES:
        shape, chunks = arrays[f"{name}_shape"], arrays[f"{name}_chunks"]
        offsets, sizes = arrays[f"{name}_offsets"], arrays[f"{name}_sizes"]
        n_chunks = int(np.prod(-(-shape // chunks)))
        if offsets.shape != (n_chunks, shape.size) or sizes.shape != (n_chunks,):
            return False
        if np.any(offsets < 0) or np.any(offsets >= shape) or np.any(offsets % chunks):
            return False
        if np.unique(offsets, axis=0).shape[0] != n_chunks or np.any(sizes <= 0):
            return False
        if int(sizes.sum()) != arrays[f"{name}_bytes"].size:
            return False
    return True


def _from_chunks(
    group: h5py.Group, prefix: str, arrays: dict[str, np.ndarray], options: Mapping[str, Any]
) -> tuple[h5py.Dataset, h5py.Dataset]:
    """The two datasets created with the stored shape, dtype and chunk shape and ``options``,
    each chunk written as stored."""
    out = []
    for name in _NAMES:
        dset = group.create_dataset(
            prefix + name,
            shape=tuple(int(n) for n in arrays[f"{name}_shape"]),
            dtype=np.dtype(str(arrays[f"{name}_dtype"])),
            chunks=tuple(int(n) for n in arrays[f"{name}_chunks"]),
            **options,
        )
        data = arrays[f"{name}_bytes"]
        ends = np.cumsum(arrays[f"{name}_sizes"])
        starts = ends - arrays[f"{name}_sizes"]
        for offset, start, end, mask in zip(
            arrays[f"{name}_offsets"], starts, ends, arrays[f"{name}_masks"], strict=True
        ):
            dset.id.write_direct_chunk(
                tuple(int(o) for o in offset), data[start:end].tobytes(), int(mask)
            )
        out.append(dset)
    return out[0], out[1]
