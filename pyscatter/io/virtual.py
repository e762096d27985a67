"""A virtual ``Raw_Data`` read from its source files, and the checksums its translation records.

``--link vds`` translations write ``Raw_Data`` as an HDF5 virtual dataset over the detector's
files (:func:`pyscatter.io.raw.write_virtual_measurement`). Reading frames through HDF5's
virtual-dataset machinery is slow: 60-100 ms a 1M-pixel Eiger frame here, where reading the
source's chunk, decoding it and checking its crc32 takes ~3 ms. The translators write only
simple mappings, positions ``[p, p + n)`` from source frames ``[s, s + n)``, so
:class:`VirtualReader` resolves them once and reads the frames from the source datasets
directly: one-frame bitshuffle-LZ4 chunks as stored
(:mod:`pyscatter.io.stored_chunks`, decoded outside h5py's lock with the GIL released), any other
layout with ``read_direct`` on the source. Every frame is still checked against ``Raw_Data``'s
``Frame_Checksums``; whenever something is not that simple (another kind of mapping, a source
that is missing or not where HDF5 would look first, a check that fails), the caller reads the
block through HDF5 as before (:func:`pyscatter.io.integrity.read_verified`), so a missing source
still reads as HDF5 reads it (the fill value) and a bad frame is reported by its position.

**Where the sources are.** As HDF5 looks for them (``H5F_prefix_open_file``): an absolute name
as it is, then its last component as a relative name; a relative name beside the virtual file
(translations store them relative to its folder), then from the current directory, then beside
the file's resolved path.
A prefix from ``HDF5_VDS_PREFIX`` or the dataset access list leaves the reading to HDF5.

**Source handles.** Opened read-only. HDF5 opens the sources of a virtual dataset with the
intent of the virtual file, and refuses to open read-write a file this process already holds
read-only: while the virtual file is open read-write (the parent of a serial run), the sources
are therefore opened for one block and closed after it, so a read through HDF5 (this reader's
fallback, or any other code) still works. Read-only virtual files (workers, readers) keep them
open for as long as the same file handle is passed. Each worker process opens its own.

:func:`virtual_crcs` computes what a virtual translation records in ``Frame_Checksums``: the
crc32 of every frame's values, decoded the same way in two threads.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import h5py
import numpy as np
from h5py import h5s

from pyscatter.io.integrity import _checksums, frame_crc
from pyscatter.io.stored_chunks import Decoder, read_chunk, stored_decoder

__all__ = ["STATS", "VirtualReader", "resolve_source", "virtual_crcs"]

log = logging.getLogger(__name__)

#: Frames read from the sources by :class:`VirtualReader` (``"frames"``) and blocks it left to
#: HDF5 (``"fallbacks"``), in this process.
STATS: dict[str, int] = {"frames": 0, "fallbacks": 0}


@dataclass(frozen=True)
class _Piece:
    """Positions ``[position, position + count)`` hold frames ``[start, start + count)`` of the
    source ``dataset`` in ``file`` (resolved), whose frames are ``frame_shape``."""

    position: int
    count: int
    file: str
    dataset: str
    start: int
    frame_shape: tuple[int, ...]


def _box(space: Any) -> list[tuple[int, int]] | None:
    """``[(lo, hi), …]`` per dim of a selection that is one whole box, or None."""
    try:
        if space.get_select_type() not in (h5s.SEL_HYPERSLABS, h5s.SEL_ALL):
            return None
        low, high = space.get_select_bounds()
        n = int(space.get_select_npoints())
    except Exception:  # noqa: BLE001 - unlimited or odd selections: HDF5 reads them
        return None
    box = [(int(lo), int(hi) + 1) for lo, hi in zip(low, high, strict=True)]
    return box if int(np.prod([hi - lo for lo, hi in box])) == n else None


def _candidates(name: str, vds_file: str) -> list[str]:
    """Where HDF5 looks for a source file ``name`` of a virtual dataset in ``vds_file``, in order
    (``H5F_prefix_open_file`` without prefixes)."""
    out = []
    if os.path.isabs(name):
        out.append(name)
        name = os.path.basename(name)
    out.append(os.path.join(os.path.dirname(os.path.abspath(vds_file)), name))
    out.append(name)
    out.append(os.path.join(os.path.dirname(os.path.realpath(vds_file)), name))
    return out


def resolve_source(name: str, vds_file: str) -> str | None:
    """The source file HDF5 opens for ``name`` in a virtual dataset of ``vds_file``, or None.

    The first of :func:`_candidates` that opens as an HDF5 file (HDF5 goes on past a file it
    cannot open).
    """
    for path in _candidates(name, vds_file):
        if not os.path.isfile(path):
            continue
        try:
            with h5py.File(path, "r"):
                return os.path.abspath(path)
        except OSError:
            continue
    return None


def _pieces(dset: h5py.Dataset) -> list[_Piece] | None:
    """The mappings of a 2-D virtual ``dset``, each "positions ← whole source frames", resolved;
    None when any is of another kind or its source cannot be found."""
    if dset.ndim != 2 or os.environ.get("HDF5_VDS_PREFIX"):
        return None
    try:
        if dset.id.get_access_plist().get_virtual_prefix():
            return None
        maps = dset.virtual_sources()
    except Exception:  # noqa: BLE001 - whatever h5py cannot describe, HDF5 reads
        return None
    n_pos, n_spec = dset.shape
    pieces: list[_Piece] = []
    found: dict[str, str | None] = {}
    for m in maps:
        vbox, sbox = _box(m.vspace), _box(m.src_space)
        if vbox is None or sbox is None or len(sbox) < 2 or vbox[1] != (0, n_spec):
            return None
        src_shape = tuple(int(s) for s in m.src_space.shape)
        if any(box != (0, size) for box, size in zip(sbox[1:], src_shape[1:], strict=True)):
            return None  # part of a frame
        if (
            int(np.prod(src_shape[1:])) != n_spec
            or sbox[0][1] - sbox[0][0] != vbox[0][1] - vbox[0][0]
        ):
            return None
        if "%" in m.file_name or "%" in m.dset_name or m.file_name == ".":
            return None  # printf-style names, or the virtual file itself
        if m.file_name not in found:
            found[m.file_name] = resolve_source(m.file_name, dset.file.filename)
        path = found[m.file_name]
        if path is None:
            return None  # missing: HDF5 reads the fill value, and reports it through the crc32
        count = vbox[0][1] - vbox[0][0]
        pieces.append(_Piece(vbox[0][0], count, path, m.dset_name, sbox[0][0], src_shape[1:]))
    pieces.sort(key=lambda p: p.position)
    for a, b in zip(pieces, pieces[1:], strict=False):
        if a.position + a.count > b.position:
            return None  # overlapping mappings
    return pieces


class _Sources:
    """The resolved pieces of one virtual dataset and the source files they read."""

    def __init__(self, dset: h5py.Dataset, pieces: list[_Piece], keep_open: bool) -> None:
        self.pieces = pieces
        self.keep_open = keep_open
        self.fill = np.array(dset.fillvalue, dtype=dset.dtype)
        self.dtype = dset.dtype
        self._files: dict[str, h5py.File] = {}
        self._decoders: dict[tuple[str, str], Decoder | None] = {}

    def source(self, piece: _Piece) -> tuple[h5py.Dataset, Decoder | None] | None:
        """The source dataset of ``piece`` (its file opened read-only) and its chunk decoder."""
        h5 = self._files.get(piece.file)
        if h5 is None or not h5.id.valid:
            import hdf5plugin  # noqa: F401 - compressed sources

            h5 = self._files[piece.file] = h5py.File(piece.file, "r")
        src = h5.get(piece.dataset)
        if not isinstance(src, h5py.Dataset) or src.ndim < 2:
            return None
        if int(src.shape[0]) < piece.start + piece.count or src.shape[1:] != piece.frame_shape:
            return None  # not the extent the mapping was made for: HDF5 reads it
        key = (piece.file, piece.dataset)
        if key not in self._decoders:
            same = src.dtype == self.dtype
            self._decoders[key] = stored_decoder(src) if same else None
        return src, self._decoders[key]

    def close(self) -> None:
        for h5 in self._files.values():
            try:
                h5.close()
            except Exception:  # noqa: BLE001 - closing a handle never hides the read's outcome
                pass
        self._files.clear()


def _read_piece(src: h5py.Dataset, decode: Decoder | None, out: np.ndarray, first: int) -> bool:
    """Frames ``[first, first + len(out))`` of ``src`` into the rows of ``out``."""
    frame_shape = src.shape[1:]
    if decode is None:
        try:
            src.read_direct(
                out.reshape(len(out), *frame_shape), source_sel=np.s_[first : first + len(out)]
            )
        except (OSError, ValueError, TypeError):
            return False
        return True
    for k in range(len(out)):
        chunk = read_chunk(src, first + k)  # a short call under h5py's lock
        if chunk is not None:
            if not decode(chunk, out[k]):  # outside it, GIL released
                return False
            continue
        try:  # never written (HDF5 reads the fill value), or a filter skipped
            src.read_direct(out[k].reshape(frame_shape), source_sel=np.s_[first + k])
        except (OSError, ValueError, TypeError):
            return False
    return True


class VirtualReader:
    """Rows of a virtual ``Raw_Data`` read from its sources, or False where HDF5 must read them.

    One per frame reader: the mappings are resolved once per file handle passed (a new handle,
    e.g. the file opened again, resolves them again), see the module documentation.
    """

    def __init__(self) -> None:
        self._key: tuple[Any, str] | None = None
        self._sources: _Sources | None = None

    def _resolve(self, h5: h5py.File, dset: h5py.Dataset) -> _Sources | None:
        key = (h5.id, dset.name)
        if self._key is not None and self._key[0] is key[0] and self._key[1] == key[1]:
            if key[0].valid:
                return self._sources
        self.close()
        self._key = key
        pieces = _pieces(dset) if dset.is_virtual else None
        if pieces is not None:
            self._sources = _Sources(dset, pieces, keep_open=h5.mode == "r")
        return self._sources

    def read(
        self, h5: h5py.File, dset: h5py.Dataset, out: np.ndarray, start: int, stop: int
    ) -> bool:
        """Rows ``[start, stop)`` of ``dset`` (in ``h5``, the handle the caller keeps passing)
        into ``out`` (C-contiguous), each checked against
        ``Frame_Checksums`` where recorded; False (``out`` then holds anything) when they cannot
        be read so, or a check fails: the caller reads them through HDF5 as before."""
        if not dset.is_virtual:
            return False
        sources = self._resolve(h5, dset)
        if sources is None:
            STATS["fallbacks"] += 1
            return False
        try:
            done = self._fill(sources, out, start, stop) and _matches(dset, out, start, stop)
        except (OSError, ValueError, KeyError, RuntimeError) as err:
            log.debug(
                "%s: reading rows %d-%d from the sources failed: %s", dset.name, start, stop, err
            )
            done = False
        if not done or not sources.keep_open:
            sources.close()  # HDF5 may now open them as it needs (read-write, see above)
        if done:
            STATS["frames"] += stop - start
        else:
            STATS["fallbacks"] += 1
        return done

    @staticmethod
    def _fill(sources: _Sources, out: np.ndarray, start: int, stop: int) -> bool:
        covered = np.zeros(stop - start, dtype=bool)
        for piece in sources.pieces:
            lo, hi = max(start, piece.position), min(stop, piece.position + piece.count)
            if lo >= hi:
                continue
            found = sources.source(piece)
            if found is None:
                return False
            src, decode = found
            first = piece.start + lo - piece.position
            if not _read_piece(src, decode, out[lo - start : hi - start], first):
                return False
            covered[lo - start : hi - start] = True
        out[~covered] = sources.fill  # positions no mapping covers: the fill value, as HDF5
        return True

    def close(self) -> None:
        """Close the source files held open."""
        if self._sources is not None:
            self._sources.close()
        self._key, self._sources = None, None


def _matches(dset: h5py.Dataset, out: np.ndarray, start: int, stop: int) -> bool:
    """Every row of ``out`` matches its recorded crc32 (True when none are recorded)."""
    sums = _checksums(dset)
    if sums is None:
        return True
    want = sums[start:stop]
    return all(frame_crc(out[k]) == int(want[k]) for k in range(stop - start))


# --------------------------------------------------------------------------- translation


def virtual_crcs(
    mappings: Sequence[Any], n_positions: int, n_spec: int, dtype: Any, threads: int = 2
) -> np.ndarray:
    """crc32 of every frame a virtual ``Raw_Data`` will show, read from the sources.

    ``mappings`` are :class:`pyscatter.io.raw.VirtualFrames`. Each source is opened read-only
    (not through the new file's mapping: HDF5 would open the sources read-write like the file
    being written, which fails for a source this process already holds open read-only).
    One-frame bitshuffle-LZ4 chunks are read as stored under h5py's lock and decoded outside it
    in ``threads`` threads; any other frame is read by h5py (``dset[i]``), as before. Positions
    no mapping covers read as zeros. The values are those of ``np.asarray(dset[i], dtype)``.
    """
    import hdf5plugin  # noqa: F401 - sources may be compressed

    dtype = np.dtype(dtype)
    zeros = frame_crc(np.zeros(n_spec, dtype=dtype))
    crcs = np.full(n_positions, zeros, dtype=np.uint32)
    local = threading.local()
    with ThreadPoolExecutor(max(1, threads), thread_name_prefix="pyscatter-crc") as pool:
        for m in mappings:
            with h5py.File(m.file, "r") as src:
                dset = src[m.dataset]
                decode = stored_decoder(dset) if dset.dtype == dtype else None

                def crc_of(
                    i: int, dset: h5py.Dataset = dset, decode: Decoder | None = decode
                ) -> int:
                    if decode is not None:
                        chunk = read_chunk(dset, i)
                        if chunk is not None:
                            row = getattr(local, "row", None)
                            if row is None or row.size != n_spec:
                                row = local.row = np.empty(n_spec, dtype=dtype)
                            if decode(chunk, row):
                                return frame_crc(row)
                    return frame_crc(np.asarray(dset[i], dtype=dtype))

                frames = range(m.start, m.start + m.count)
                crcs[m.position : m.position + m.count] = list(pool.map(crc_of, frames))
    return crcs
