"""The completion record of a results group (light: readers import it without pyUSID).

``completed_chunks[i]`` is 0 until chunk ``i`` (positions ``i*k … (i+1)*k - 1``, ``k`` the group's
``positions_per_chunk``) is written; then ``(1 << 32) | crc32`` of the chunk's outputs, in the
order of the group's ``output_order``. A chunk counts as done only if the flag matches the data.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Sequence

import h5py
import numpy as np

FLAGS = "completed_chunks"


def block_flag(arrays: Sequence[np.ndarray]) -> int:
    """The completion flag of a block: ``(1 << 32) | crc32`` over its outputs, in order."""
    crc = 0
    for a in arrays:
        crc = zlib.crc32(np.ascontiguousarray(a).tobytes(), crc)
    return (1 << 32) | crc


def output_order(group: h5py.Group) -> list[str]:
    return list(json.loads(group.attrs["output_order"]))


def completion(group: h5py.Group) -> tuple[int, int]:
    """(positions whose chunk is flagged, all positions) — flags only, nothing verified."""
    if FLAGS not in group:
        return 0, 0
    flags = group[FLAGS][()]
    size = int(group.attrs["positions_per_chunk"])
    n_pos = int(group.attrs["n_positions"])
    done = sum(min(size, n_pos - int(i) * size) for i in np.flatnonzero(flags))
    return int(done), n_pos


#: Bytes of one output read at once when verifying many small blocks.
_SLAB_BYTES = 32 * 2**20


def verified_positions(group: h5py.Group, n_positions: int | None = None) -> np.ndarray:
    """Boolean per position: its chunk is flagged and the flag matches the data in the file.

    ``n_positions`` is the length of the answer (default: the group's ``n_positions``): a
    reader of a group that grows (a live series) asks for its source's positions, and any
    position beyond what the group records, or beyond the rows its outputs hold now, is False.
    Consecutive flagged chunks are read together (a live group has one position per chunk).
    """
    n_rec = int(group.attrs["n_positions"])
    n_out = n_rec if n_positions is None else int(n_positions)
    size = int(group.attrs["positions_per_chunk"])
    dsets = [group[name] for name in output_order(group)]
    flags = group[FLAGS][()]
    n_rows = min([n_rec, *(int(d.shape[0]) for d in dsets)])
    ok = np.zeros(n_out, dtype=bool)
    flagged = [int(i) for i in np.flatnonzero(flags) if min((int(i) + 1) * size, n_rec) <= n_rows]
    row_bytes = max(1, sum(d.dtype.itemsize * int(np.prod(d.shape[1:])) for d in dsets))
    per_slab = max(1, _SLAB_BYTES // (row_bytes * size))
    k = 0
    while k < len(flagged):  # a run of consecutive chunks, at most one slab
        j = k + 1
        while j < len(flagged) and j - k < per_slab and flagged[j] == flagged[j - 1] + 1:
            j += 1
        first, last = flagged[k] * size, min((flagged[j - 1] + 1) * size, n_rec)
        slabs = [d[first:last] for d in dsets]
        for i in flagged[k:j]:
            start, stop = i * size, min((i + 1) * size, n_rec)
            data = [slab[start - first : stop - first] for slab in slabs]
            if start < n_out and int(flags[i]) == block_flag(data):
                ok[start : min(stop, n_out)] = True
        k = j
    return ok
