"""An HDF5 file whose frame axis grows: an Eiger / LIMA-style ``(frames, rows, cols)`` dataset.

The dataset is ``dataset=`` when given, else NeXus ``/entry/data/data``, else the first 3-D
dataset of the file. Frames are read as the ``nexus`` translator reads them (``read_direct`` of
one frame, in the dataset's dtype; bitshuffle-LZ4 through hdf5plugin).

**Chunks copied, not decoded.** When the dataset stores one frame per chunk with a filter
pipeline this HDF5 can write again (:func:`copyable_filters`: bitshuffle-LZ4, gzip …), as
``translate --link`` requires, each frame is delivered as its stored chunk
(``read_direct_chunk``: :attr:`~pyscatter.live.sources.Arrival.chunk`, ``frame`` None), never
decoded: the live file copies it as it is. The first frame this source delivers is also decoded
(the live file's layout is made from its values). Without SWMR, a chunk is taken under the same
rule as a decoded frame (the last one shown waits for a later one or ``settle``).

The file is opened read-only with file locking off (the writer holds its lock). When its
superblock carries the SWMR-write flag it is opened once with ``swmr=True`` and refreshed at each
poll: every frame it shows is complete. Otherwise it is reopened at each poll, and the last frame
it shows is held back until a later frame exists or the file has not changed for ``settle``
seconds (a writer without SWMR may have grown the dataset before writing the frame).

The declared count is ``detectorSpecific/nimages × ntrigger`` (Eiger) when the file has them:
one dim ``Image`` (as the offline translator names a flat series); ``grid=`` gives the dims
instead. A file that shrinks, whose inode changes (replaced) or whose dataset shrinks or changes
frame shape is a fatal :class:`~pyscatter.live.sources.LiveProblem` naming it.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from pyscatter.errors import InputError
from pyscatter.io.raw import chunk_filters
from pyscatter.live.sources import (
    DEFAULT_SETTLE,
    DEFAULT_TIMEOUT,
    MAX_FRAMES_PER_POLL,
    Arrival,
    FollowedFile,
    Problems,
    SourceChunk,
    Waker,
    check_grid,
)
from pyscatter.translators.common import HDF5_SIGNATURE

__all__ = ["GrowingH5Source", "copyable_filters", "declared_count", "find_frames", "swmr_flag"]

#: Where the offline translators and Eiger / NeXus files keep the frames.
NEXUS_DATA = "/entry/data/data"


def swmr_flag(path: str | os.PathLike) -> bool:
    """Whether the file's superblock (version ≥ 2 at offset 0) says a writer has it open in SWMR
    mode (file consistency flags, bit 2)."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(12)
    except OSError:
        return False
    return len(head) == 12 and head[:8] == HDF5_SIGNATURE and head[8] >= 2 and bool(head[11] & 4)


def find_frames(h5: h5py.File, dataset: str | None) -> h5py.Dataset | None:
    """The frames dataset: ``dataset``, else ``/entry/data/data``, else the first 3-D dataset
    (file order); None when there is none (yet)."""
    if dataset is not None:
        obj = h5.get(dataset)
        return obj if isinstance(obj, h5py.Dataset) else None
    obj = h5.get(NEXUS_DATA)
    if isinstance(obj, h5py.Dataset) and obj.ndim == 3:
        return obj
    found: list[h5py.Dataset] = []

    def visit(_: str, item: Any) -> Any:
        if isinstance(item, h5py.Dataset) and item.ndim == 3:
            found.append(item)
            return True
        return None

    h5.visititems(visit)
    return found[0] if found else None


def copyable_filters(dset: h5py.Dataset) -> tuple[tuple[int, int, tuple[int, ...]], ...] | None:
    """The filter pipeline of ``dset`` when its chunks can be copied into a live file as they
    are, else None.

    They can when ``dset`` is ``(frames, rows, cols)`` of numbers stored one frame per chunk
    (as ``translate --link`` requires) through a non-empty pipeline of filters this HDF5 can
    both encode and decode (a frame never delivered as a chunk may have to be encoded).
    """
    if dset.ndim != 3 or dset.dtype.kind not in "uif" or dset.chunks != (1, *dset.shape[1:]):
        return None
    filters = chunk_filters(dset)
    if not filters:
        return None  # uncompressed: decoding costs nothing, the live file compresses
    both = h5py.h5z.FILTER_CONFIG_ENCODE_ENABLED | h5py.h5z.FILTER_CONFIG_DECODE_ENABLED
    for code, _flags, _values in filters:
        if not h5py.h5z.filter_avail(code) or h5py.h5z.get_filter_info(code) & both != both:
            return None
    return tuple((code, flags, tuple(values)) for code, flags, values in filters)


def declared_count(h5: h5py.File) -> int | None:
    """``nimages × ntrigger`` of the first ``detectorSpecific`` group holding ``nimages``."""
    found: list[int] = []

    def visit(name: str, item: Any) -> Any:
        if isinstance(item, h5py.Group) and name.rsplit("/", 1)[-1] == "detectorSpecific":
            nimages = item.get("nimages")
            if isinstance(nimages, h5py.Dataset) and nimages.shape in ((), (1,)):
                ntrigger = item.get("ntrigger")
                n = int(np.asarray(nimages[()]).ravel()[0])
                if isinstance(ntrigger, h5py.Dataset) and ntrigger.shape in ((), (1,)):
                    n *= int(np.asarray(ntrigger[()]).ravel()[0])
                found.append(n)
                return True
        return None

    h5.visititems(visit)
    return found[0] if found and found[0] > 0 else None


class GrowingH5Source(FollowedFile):
    """Follow a growing HDF5 frames dataset; see the module documentation.

    Parameters
    ----------
    path : path
        The HDF5 file (master or data file holding the dataset).
    dataset : str, optional
        Path of the frames dataset in it.
    grid : dict or str, optional
        Declared dims, slow to fast.
    settle : float
        Without SWMR: seconds without change after which the last frame shown is complete.
    timeout : float
        Seconds a frame may stay unreadable (then a non-fatal problem, skipped), or the file
        unopenable or without a frames dataset (then a fatal problem).
    clock : callable
        Seconds, monotonic (tests pass their own).
    watch : bool
        Wake :meth:`wait` on changes with ``watchfiles``.
    """

    OPTIONS = ("dataset", "clock", "watch")

    def __init__(
        self,
        path: str | os.PathLike,
        *,
        dataset: str | None = None,
        grid: Any = None,
        settle: float = DEFAULT_SETTLE,
        timeout: float = DEFAULT_TIMEOUT,
        clock: Callable[[], float] = time.monotonic,
        watch: bool = True,
    ) -> None:
        import hdf5plugin  # noqa: F401  (registers bitshuffle-LZ4, as the nexus translator does)

        self.path = Path(path)
        if not self.path.is_file():
            raise InputError(f"{self.path}: no such HDF5 file to watch")
        self.dataset = dataset
        self.grid = check_grid(grid)
        self.settle, self.timeout, self.clock = float(settle), float(timeout), clock
        self.problems = Problems()
        self.count: int | None = None  # declared by the file
        self._next = 0  # index of the next frame to take
        self._ident: tuple[int, int] | None = None
        self._size = 0
        self._stat: tuple[int, int] | None = None
        self._since = clock()  # last change of the file (or of what blocks progress)
        self._frame_shape: tuple[int, ...] | None = None
        self._frame_shape_new = False  # the dataset was just found: check its chunks
        self._h5: h5py.File | None = None
        self._filters: tuple[tuple[int, int, tuple[int, ...]], ...] | None = None
        self._decoded_one = False  # the first frame delivered is decoded too
        self._waker = Waker(self.path) if watch else None

    # ------------------------------------------------------------------ protocol

    def describe(self) -> str:
        how = "SWMR" if self._h5 is not None else "reopened per poll"
        return f"HDF5 file {self.path}:{self.dataset or NEXUS_DATA} ({how})"

    def declared_dims(self) -> list[tuple[str, int]] | None:
        if self.grid is not None:
            return list(self.grid)
        return None if self.count is None else [("Image", self.count)]

    def first_header(self) -> dict:
        return {}

    def finished(self) -> bool:
        dims = self.declared_dims()
        return dims is not None and self._next >= math.prod(n for _, n in dims)

    def close(self) -> None:
        if self._h5 is not None:
            self._h5.close()
            self._h5 = None
        super().close()

    def poll(self, skip: Callable[[int], bool] | None = None) -> list[Arrival]:
        """Every frame the file shows complete since the last poll, in order."""
        if self.problems.fatal:
            return []
        now = self.clock()
        if not self._unchanged_file(now):
            return []
        try:
            h5 = self._open()
        except OSError as err:  # a writer without SWMR in the middle of a flush
            self._stalled(now, f"cannot be opened ({err})")
            return []
        try:
            return self._read(h5, now, skip)
        finally:
            if self._h5 is None:
                h5.close()

    # ------------------------------------------------------------------ steps

    def _unchanged_file(self, now: float) -> bool:
        """Refuse (fatal) a file that disappeared, was replaced or shrank."""
        st = self._same_file("file")
        if st is None:
            return False
        stat = (st.st_size, st.st_mtime_ns)
        if stat != self._stat:
            self._stat, self._since = stat, now
        return True

    def _open(self) -> h5py.File:
        if self._h5 is not None:
            return self._h5
        swmr = swmr_flag(self.path)
        h5 = h5py.File(self.path, "r", locking=False, swmr=swmr)
        if swmr:
            self._h5 = h5
        return h5

    def _read(self, h5: h5py.File, now: float, skip: Callable[[int], bool] | None) -> list[Arrival]:
        dset = find_frames(h5, self.dataset)
        if dset is None:
            self._stalled(now, f"has no {self.dataset or '3-D frames'} dataset")
            return []
        if self.count is None:
            self.count = declared_count(h5)
        if self._h5 is not None:
            dset.refresh()
        if not self._check_shape(dset):
            return []
        if self._frame_shape_new:
            self._filters = copyable_filters(dset)
            self._frame_shape_new = False
        n = dset.shape[0]
        if self._h5 is None and n > self._next and now - self._since < self.settle:
            n -= 1  # no SWMR: the last frame shown may not be written yet
        n = min(n, self._next + MAX_FRAMES_PER_POLL)  # the rest at the next poll
        out = []
        while self._next < n:
            index = self._next
            if skip is None or not skip(index):
                try:
                    arrival = self._arrival(dset, index)
                except (OSError, ValueError, RuntimeError, KeyError) as err:
                    if now - self._since < self.timeout:
                        break  # maybe not written yet: try again at the next poll
                    self.problems.report(
                        self.path,
                        index,
                        f"{self.path}:{dset.name}: frame {index} cannot be read ({err}); skipped",
                    )
                    self._next += 1
                    continue
                out.append(arrival)
            self._next += 1
        return out

    def _arrival(self, dset: h5py.Dataset, index: int) -> Arrival:
        """Frame ``index``: its stored chunk when copyable (decoded too for the first one)."""
        origin = f"{self.path}#frame {index}"
        chunk = None
        if self._filters is not None:
            mask, data = dset.id.read_direct_chunk((index, 0, 0))
            chunk = SourceChunk(
                bytes(data), int(mask), self._filters, dset.dtype.str, tuple(dset.shape[1:])
            )
            if self._decoded_one:
                return Arrival(index, None, origin, {}, chunk)
        frame = np.empty(dset.shape[1:], dtype=dset.dtype)
        dset.read_direct(frame, source_sel=np.s_[index])
        self._decoded_one = True
        return Arrival(index, frame, origin, {}, chunk)

    def _check_shape(self, dset: h5py.Dataset) -> bool:
        """Refuse (fatal) a dataset that shrank or changed frame shape (the file was rewritten)."""
        if self._frame_shape is None:
            self._frame_shape = tuple(dset.shape[1:])
            self._frame_shape_new = True
        if tuple(dset.shape[1:]) != self._frame_shape:
            self._fatal(
                f"{self.path}:{dset.name}: frames of shape {tuple(dset.shape[1:])}; they were "
                f"{self._frame_shape} (the file was rewritten during the watch)"
            )
            return False
        if dset.shape[0] < self._next:
            self._fatal(
                f"{self.path}:{dset.name}: {dset.shape[0]} frames, fewer than the {self._next} "
                "already read (the file was truncated or rewritten during the watch)"
            )
            return False
        return True

    def _stalled(self, now: float, what: str) -> None:
        """The file ``what`` (cannot be opened …): fatal once it lasts ``timeout`` seconds."""
        if now - self._since >= self.timeout:
            self._fatal(f"{self.path}: {what} for {self.timeout:g} s")

    def _fatal(self, message: str) -> None:
        self.problems.report(self.path, None, message, fatal=True)
        self.close()
