"""Frames stored one per bitshuffle-LZ4 chunk, decoded without HDF5's filter.

Detectors (Dectris Eiger, via LImA or their own NeXus writer) store each frame as one
bitshuffle-LZ4 chunk; ``--link`` translations copy those chunks as they are. Such a chunk is read
as stored (``read_direct_chunk``: a short call under h5py's lock) and decoded here by the
bitshuffle library that ships with hdf5plugin, called through ctypes: the call releases the GIL
(and h5py's lock is no longer held), and it decodes straight into a reused buffer where HDF5's
filter decodes into fresh memory and copies. The result is the same bytes: the same library
function on the same stored bytes.

* :func:`stored_decoder`: a decoder of a dataset's stored chunks, or None where HDF5 must decode
  (any other layout, filter pipeline or dtype);
* :func:`read_chunk`: the stored bytes of the chunk holding one frame, or None (never written,
  unreadable, or a filter skipped: HDF5 then reads the frame itself).

Used by the frame reader of processes (:func:`pyscatter.processes.execution.read_stored`), the
reader of virtual raw data over the source files (:mod:`pyscatter.io.virtual`) and the checksums
of a virtual translation.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import h5py
import numpy as np

__all__ = ["Decoder", "read_chunk", "stored_decoder"]

#: ``decode(chunk, row)``: fills ``row`` (one frame, C-contiguous) from a chunk's stored bytes
#: and says whether it could.
Decoder = Callable[[bytes, np.ndarray], bool]

_BITSHUFFLE, _BITSHUFFLE_LZ4 = 32008, 2  # HDF5 filter id; its cd_values[4] for LZ4
_BSHUF: list[Any] = []  # [bshuf_decompress_lz4 or None], loaded once


def _bshuf_decompress_lz4() -> Any:
    """hdf5plugin's ``bshuf_decompress_lz4`` through ctypes (which releases the GIL), or None."""
    if not _BSHUF:
        func = None
        try:
            import ctypes
            import glob

            import hdf5plugin

            for name in sorted(glob.glob(os.path.join(hdf5plugin.PLUGIN_PATH, "libh5bshuf*"))):
                try:
                    func = ctypes.CDLL(name).bshuf_decompress_lz4
                except (OSError, AttributeError):
                    continue
                func.restype = ctypes.c_int64
                size_t = ctypes.c_size_t
                func.argtypes = [ctypes.c_void_p, ctypes.c_void_p, size_t, size_t, size_t]
                break
        except ImportError:  # pragma: no cover - hdf5plugin is a dependency
            func = None
        _BSHUF.append(func)
    return _BSHUF[0]


def stored_decoder(dset: h5py.Dataset) -> Decoder | None:
    """A decoder of ``dset``'s stored chunks into frames, or None where HDF5 must decode.

    Only for one frame per chunk (``chunks == (1, *shape[1:])``: ``(1, n)`` for ``Raw_Data``,
    ``(1, rows, cols)`` for a detector's frames), a native numeric dtype and a pipeline of
    bitshuffle-LZ4 alone with the dtype's element size. ``decode(chunk, row)`` fills ``row``
    (one frame, C-contiguous, any shape) from a chunk's stored bytes as HDF5's bitshuffle filter
    does (the same library function on the same bytes: 8 bytes of decoded size and 4 of block
    size, big endian, then the blocks) and says whether it could; when it cannot (any other
    size, a decoding error), the caller lets HDF5 read the frame, so every error is reported as
    before.
    """
    dtype = dset.dtype
    if dset.ndim < 2 or dset.chunks != (1, *dset.shape[1:]) or not dtype.isnative:
        return None
    if dtype.kind not in "uif":
        return None
    dcpl = dset.id.get_create_plist()
    if dcpl.get_nfilters() != 1:
        return None
    code, _flags, values, _name = dcpl.get_filter(0)
    if code != _BITSHUFFLE or len(values) < 5 or values[4] != _BITSHUFFLE_LZ4:
        return None
    if values[2] != dtype.itemsize:
        return None
    func = _bshuf_decompress_lz4()
    if func is None:
        return None
    itemsize = dtype.itemsize

    def decode(chunk: bytes, row: np.ndarray) -> bool:
        if len(chunk) <= 12 or not row.flags.c_contiguous:
            return False
        nbytes = int.from_bytes(chunk[:8], "big")
        block = int.from_bytes(chunk[8:12], "big")
        if nbytes != row.nbytes or block % itemsize:
            return False
        src = np.frombuffer(chunk, dtype=np.uint8)
        used = func(src.ctypes.data + 12, row.ctypes.data, row.size, itemsize, block // itemsize)
        return int(used) == len(chunk) - 12

    return decode


def read_chunk(dset: h5py.Dataset, index: int) -> bytes | None:
    """The stored bytes of frame ``index``'s chunk (one frame per chunk), or None.

    None when the chunk was never written (HDF5 reads the fill value), cannot be read, or was
    stored with a filter skipped (a nonzero filter mask): the caller then lets HDF5 read the frame.
    """
    try:
        mask, chunk = dset.id.read_direct_chunk((index, *([0] * (dset.ndim - 1))))
    except (OSError, ValueError, RuntimeError, KeyError):
        return None
    return chunk if mask == 0 else None
