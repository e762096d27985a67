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


def verified_positions(group: h5py.Group) -> np.ndarray:
    """Boolean (n_positions,): positions whose chunk flag matches the data in the file."""
    n_pos = int(group.attrs["n_positions"])
    size = int(group.attrs["positions_per_chunk"])
    order = output_order(group)
    flags = group[FLAGS][()]
    ok = np.zeros(n_pos, dtype=bool)
    for i in np.flatnonzero(flags):
        start, stop = int(i) * size, min((int(i) + 1) * size, n_pos)
        data = [group[name][start:stop] for name in order]
        ok[start:stop] = int(flags[i]) == block_flag(data)
    return ok
