"""What ``pyscatter watch`` follows: the :class:`LiveSource` protocol, its :class:`Arrival` and
:class:`LiveProblem`, and :func:`open_source`, which picks the source by what the path is.

Three sources implement the protocol:

* :class:`pyscatter.live.folder.FolderSource`: a folder where a detector writes one image file per
  frame (TIFF, CBF, EDF … read by fabio as the ``images`` translator reads them);
* :class:`pyscatter.live.growing_h5.GrowingH5Source`: an HDF5 file whose frame axis grows
  (Eiger / LIMA style), read with SWMR when the writer uses it, else reopened per poll;
* :class:`pyscatter.live.spec_follow.SpecSource`: a SPEC file whose current scan is still being
  appended (points with their MCA spectra, or an image per point).

A source never returns a frame twice (per object) nor a frame that is not complete on disk. What
goes wrong with one frame (a corrupt image, another shape, a frame that never completes) is a
non-fatal :class:`LiveProblem` in ``source.problems`` and that frame is skipped; a source that was
truncated or replaced is a fatal one, after which the source returns nothing more.

:meth:`LiveSource.wait` sleeps until the source's files change (``watchfiles`` when installed)
or ``timeout`` passes; :meth:`LiveSource.poll` rescans on its own and is correct without it.

Examples
--------
>>> import tempfile
>>> from pathlib import Path
>>> folder = Path(tempfile.mkdtemp())
>>> source = open_source(folder, settle=0)
>>> type(source).__name__, source.poll(), source.declared_dims()
('FolderSource', [], None)
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from pyscatter.errors import FileFormatError, InputError
from pyscatter.io.raw import RawChunk

__all__ = [
    "Arrival",
    "LiveProblem",
    "LiveSource",
    "Problems",
    "SourceChunk",
    "Waker",
    "open_source",
]

logger = logging.getLogger("pyscatter.live")

#: Seconds a file's size and time must stay the same before it is taken as complete.
DEFAULT_SETTLE = 1.0
#: Seconds a frame may stay unreadable (unchanged on disk) before it is given up as a problem.
DEFAULT_TIMEOUT = 30.0
#: At most this many frames per poll (a watch behind its detector reads the backlog in turns,
#: so its memory stays bounded however far behind it is).
MAX_FRAMES_PER_POLL = 64


@dataclass(frozen=True)
class SourceChunk(RawChunk):
    """One frame as the bytes of its chunk in the source (one frame per chunk), not decoded.

    Attributes
    ----------
    data : bytes
        The chunk as stored (compressed), from ``read_direct_chunk``.
    filter_mask : int
        Its HDF5 filter mask (0: every filter of the pipeline applied).
    filters : tuple of (filter id, flags, values)
        The source dataset's filter pipeline, as :func:`pyscatter.io.raw.chunk_filters` gives it.
    dtype : str
        The source dataset's dtype (``numpy.dtype.str``).
    shape : tuple of int
        The frame's shape (the chunk's shape without its leading 1).
    """

    filters: tuple[tuple[int, int, tuple[int, ...]], ...] = ()
    dtype: str = ""
    shape: tuple[int, ...] = ()

    def decode(self) -> np.ndarray:
        """The frame's values (HDF5 runs the pipeline, on an in-memory dataset)."""
        key = (self.filters, self.shape, self.dtype)
        decoder = _DECODERS.get(key)
        if decoder is None:
            _DECODERS.clear()  # one pipeline per source: keep only the last
            decoder = _DECODERS[key] = _Decoder(self)
        return decoder.decode(self)


class _Decoder:
    """An in-memory HDF5 dataset of one chunk with a given pipeline, frame shape and dtype."""

    def __init__(self, chunk: SourceChunk) -> None:
        import h5py
        import hdf5plugin  # noqa: F401 - registers bitshuffle, LZ4 …

        self._h5 = h5py.File(f"chunk-decoder-{id(self)}", "w", driver="core", backing_store=False)
        dcpl = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
        dcpl.set_chunk((1, *chunk.shape))
        for code, flags, values in chunk.filters:
            dcpl.set_filter(code, flags, values)
        space = h5py.h5s.create_simple((1, *chunk.shape))
        tid = h5py.h5t.py_create(np.dtype(chunk.dtype), logical=True)
        self._dset = h5py.Dataset(h5py.h5d.create(self._h5.id, b"chunk", tid, space, dcpl=dcpl))

    def decode(self, chunk: SourceChunk) -> np.ndarray:
        self._dset.id.write_direct_chunk(
            (0,) * (1 + len(chunk.shape)), chunk.data, chunk.filter_mask
        )
        out = np.empty(chunk.shape, dtype=np.dtype(chunk.dtype))
        self._dset.read_direct(out, source_sel=np.s_[0])
        return out


_DECODERS: dict[Any, _Decoder] = {}


@dataclass(frozen=True)
class Arrival:
    """One frame that became complete in the source.

    Attributes
    ----------
    index : int
        0-based position in scan order (C order of the declared grid).
    frame : ndarray or None
        (rows, cols) image or (channels,) MCA spectrum, as the offline translator stores it.
        None when the frame comes as its stored ``chunk`` only (not decoded).
    origin : str
        Where it came from (``"path"`` or ``"path#frame 12"``), named in every message.
    values : dict of str to float
        Per-frame scalars: motors, counters, header keys (may be empty).
    chunk : SourceChunk or None
        The frame's chunk as the source stores it (an HDF5 source of one frame per chunk with a
        filter pipeline, :class:`~pyscatter.live.growing_h5.GrowingH5Source`): the live file
        copies it as it is when its ``Raw_Data`` has the same pipeline. The first frame a
        source delivers comes with both (the layout is made from its values); the others
        come with ``frame`` None.
    header : dict or None
        The frame's image header (a folder of image files), for the geometry check of
        :mod:`pyscatter.live.geometry_guard`; None when the source has none per frame.
    """

    index: int
    frame: np.ndarray | None
    origin: str
    values: dict[str, float] = field(default_factory=dict)
    chunk: SourceChunk | None = None
    header: dict | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.frame is None and self.chunk is None:
            raise InputError(f"{self.origin}: an arrival needs a frame or its stored chunk")


@dataclass(frozen=True)
class LiveProblem:
    """Something wrong with one frame (``fatal`` False: that frame is skipped) or with the whole
    source (``fatal`` True: the watch stops after writing what it has).

    Attributes
    ----------
    file : str
        The file concerned.
    frame : int or None
        The position index concerned, None for the whole source.
    message : str
        What is wrong, naming the file (and the frame).
    fatal : bool
    """

    file: str
    frame: int | None
    message: str
    fatal: bool = False

    def __str__(self) -> str:
        return self.message


@runtime_checkable
class LiveSource(Protocol):
    """A source of frames still being written (see the module documentation)."""

    @property
    def problems(self) -> list[LiveProblem]:
        """What went wrong so far, in order (see :class:`LiveProblem`)."""
        ...

    def describe(self) -> str:
        """One line: what is followed and how."""
        ...

    def declared_dims(self) -> list[tuple[str, int]] | None:
        """The scan's dims slow to fast, when known; None for an unbounded series."""
        ...

    def first_header(self) -> dict:
        """Header of the first frame read (geometry, dummy), ``{}`` if none yet or none at all."""
        ...

    def poll(self, skip: Callable[[int], bool] | None = None) -> list[Arrival]:
        """Every frame complete since the last poll, each once; ``skip(index)`` → not read."""
        ...

    def finished(self) -> bool:
        """Whether the source says the scan has ended."""
        ...

    def wait(self, timeout: float) -> None:
        """Sleep until the source's files change or ``timeout`` seconds pass."""
        ...

    def close(self) -> None:
        """Release files and watchers."""
        ...


class Problems(list[LiveProblem]):
    """``source.problems``: a list of :class:`LiveProblem` that logs each one as it is added."""

    def report(
        self, file: Any, frame: int | None, message: str, fatal: bool = False
    ) -> LiveProblem:
        """Add (and log) a problem; returns it."""
        problem = LiveProblem(str(file), frame, message, fatal)
        self.append(problem)
        (logger.error if fatal else logger.warning)("%s", message)
        return problem

    @property
    def fatal(self) -> bool:
        """Whether a fatal problem was reported."""
        return any(p.fatal for p in self)


class Waker:
    """Wakes :meth:`wait` when something changes under ``path`` (a file or a folder).

    Uses ``watchfiles`` in a daemon thread when it is installed; without it, :meth:`wait` just
    sleeps ``timeout``. Never needed for correctness: sources rescan in ``poll``.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._event = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        try:
            import watchfiles  # noqa: F401
        except ImportError:  # pragma: no cover - watchfiles is a dependency
            return
        self._thread = threading.Thread(target=self._run, name=f"watch {path}", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        import watchfiles

        try:
            for _ in watchfiles.watch(
                self.path, stop_event=self._stop, debounce=50, step=20, raise_interrupt=False
            ):
                self._event.set()
        except Exception as err:  # noqa: BLE001 - a watcher failing only costs latency
            logger.debug("file watcher on %s stopped: %s", self.path, err)

    def wait(self, timeout: float) -> None:
        """Return when a change was seen since the last call, or after ``timeout`` seconds."""
        if self._thread is None or not self._thread.is_alive():
            time.sleep(timeout)
            return
        self._event.wait(timeout)
        self._event.clear()

    def close(self) -> None:
        self._stop.set()
        self._event.set()


class WakingSource:
    """:meth:`wait` and :meth:`close` of a source woken by a :class:`Waker` (``_waker``, None:
    plain sleeps), shared by the folder, HDF5 and SPEC sources."""

    _waker: Waker | None = None

    def wait(self, timeout: float) -> None:
        """Until something changes (or ``timeout`` seconds)."""
        if self._waker is None:
            time.sleep(timeout)
        else:
            self._waker.wait(timeout)

    def close(self) -> None:
        """Stop the waker's thread."""
        if self._waker is not None:
            self._waker.close()
            self._waker = None


class FollowedFile(WakingSource):
    """A source following one file that may only grow (an HDF5 or SPEC file): it is refused,
    as a fatal problem, when it disappears, is replaced (another inode) or shrinks."""

    path: Path
    _ident: tuple[int, int] | None = None
    _size: int = 0

    def _fatal(self, message: str) -> None:
        raise NotImplementedError

    def _same_file(self, what: str) -> os.stat_result | None:
        """The file's ``stat`` if it is the same file, not shorter; else None (fatal)."""
        try:
            st = self.path.stat()
        except OSError:
            self._fatal(f"{self.path}: the {what} disappeared during the watch")
            return None
        ident = (st.st_dev, st.st_ino)
        if self._ident is not None and ident != self._ident:
            self._fatal(f"{self.path}: the {what} was replaced during the watch (another inode)")
            return None
        if st.st_size < self._size:
            self._fatal(
                f"{self.path}: the {what} was truncated during the watch ({self._size} → "
                f"{st.st_size} bytes)"
            )
            return None
        self._ident, self._size = ident, st.st_size
        return st


def check_grid(grid: Any) -> list[tuple[str, int]] | None:
    """``grid`` (``{"Y": 6, "X": 8}`` or ``"Y=6,X=8"``) as declared dims, None when None."""
    if grid is None:
        return None
    from pyscatter.translators.positions import parse_grid

    return [(name, size) for name, _, size in parse_grid(grid)]


def open_source(
    path: str | os.PathLike,
    *,
    pattern: str | None = None,
    grid: Any = None,
    scan: int | str | None = None,
    settle: float = DEFAULT_SETTLE,
    timeout: float = DEFAULT_TIMEOUT,
    **options: Any,
) -> LiveSource:
    """The source that follows ``path``, chosen by what it is.

    Parameters
    ----------
    path : str or path
        A folder (one image file per frame), an HDF5 file (its signature) or a SPEC file (its
        first line). A path that does not exist yet is taken as a folder when it has no suffix.
    pattern : str, optional
        Folder: glob of the frame files (default: the names the images translator reads).
    grid : dict or str, optional
        ``{"Y": 6, "X": 8}`` or ``"Y=6,X=8"``: the scan's dims, slow to fast (folder, HDF5).
    scan : int or str, optional
        SPEC: the scan to follow (default: the file's last scan, or the next to start).
    settle : float
        Seconds a file's size and time must stay the same before it is taken as complete.
    timeout : float
        Seconds a frame may stay unreadable before it is given up (a non-fatal problem).
    **options
        Passed to the source (``start=``, ``dataset=``, ``image_pattern=``, ``rename=`` …).

    Raises
    ------
    InputError
        An option the chosen source does not take, or a path of no kind followed.
    FileFormatError
        An HDF5 or SPEC file that cannot be read.
    """
    from pyscatter.translators.common import HDF5_SIGNATURE

    path = Path(path)
    if path.is_dir() or (not path.exists() and not path.suffix):
        from pyscatter.live.folder import FolderSource

        _refuse(options, scan=scan, allowed=FolderSource.OPTIONS, what="a folder")
        return FolderSource(
            path, pattern=pattern, grid=grid, settle=settle, timeout=timeout, **options
        )
    if not path.is_file():
        raise InputError(f"{path}: no such file or folder to watch")
    with open(path, "rb") as handle:
        head = handle.read(8)
    if head == HDF5_SIGNATURE:
        from pyscatter.live.growing_h5 import GrowingH5Source

        _refuse(options, pattern=pattern, allowed=GrowingH5Source.OPTIONS, what="an HDF5 file")
        return GrowingH5Source(path, grid=grid, settle=settle, timeout=timeout, **options)
    from pyscatter.translators.spec import SpecTranslator

    if SpecTranslator().can_read(path):
        from pyscatter.live.spec_follow import SpecSource

        _refuse(options, grid=grid, allowed=SpecSource.OPTIONS, what="a SPEC file")
        return SpecSource(path, scan=scan, settle=settle, timeout=timeout, **options)
    raise FileFormatError(
        f"{path}: neither a folder, an HDF5 file nor a SPEC file; watch follows a folder of "
        "image files, a growing HDF5 file or a SPEC file"
    )


def _refuse(options: dict, *, allowed: tuple[str, ...], what: str, **given: Any) -> None:
    """Refuse options (and the given ``given`` keywords) that the source of ``what`` does not take."""
    wrong = [k for k, v in given.items() if v is not None] + [
        k for k in options if k not in allowed
    ]
    if wrong:
        takes = ", ".join(allowed) or "no other option"
        raise InputError(f"{', '.join(wrong)}: does not apply to {what} (it takes {takes})")
