"""A folder where a detector writes one image file per frame (TIFF, CBF, EDF … read by fabio).

Frames are read as the ``images`` translator reads them (:func:`pyscatter.translators.common.read_image`,
the first image's shape and dtype for all, :func:`~pyscatter.translators.common.check_frame`).

When is a file complete?

* the detector writes a temporary name and renames it (names starting with ``.`` or ending in
  ``.tmp``, ``.part`` or ``~`` are never frames): with ``rename=True``, or ``"auto"`` once such a
  name was seen in the folder, a file under its final name is complete as soon as fabio reads it
  whole, and one fabio cannot read is corrupt at once;
* otherwise its size and time must stay the same for ``settle`` seconds and fabio must read it
  whole (a truncated EDF/TIFF/CBF is not).

A file that stays unreadable ``timeout`` seconds after its last change is given up (a non-fatal
:class:`~pyscatter.live.sources.LiveProblem` naming it); if it changes again it is tried again.

Position index = the frame number in the file name (its last run of digits) minus ``start``:
given (a restart passes back the recorded :attr:`FolderSource.start`), else the smallest number
seen by the first poll that found files. Files may arrive in any order.
"""

from __future__ import annotations

import contextlib
import fnmatch
import logging
import math
import os
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pyscatter.errors import FileFormatError, InputError
from pyscatter.live.sources import (
    DEFAULT_SETTLE,
    DEFAULT_TIMEOUT,
    MAX_FRAMES_PER_POLL,
    Arrival,
    Problems,
    Waker,
    WakingSource,
    check_grid,
)
from pyscatter.translators.base import has_extension, natural_key
from pyscatter.translators.common import check_frame, header_text, read_image
from pyscatter.translators.esrf import header_counters
from pyscatter.translators.images import ImageStackTranslator

__all__ = ["FolderSource", "frame_number", "header_values", "is_temporary"]

#: Name endings of files being written under a temporary name.
TEMPORARY_ENDINGS = (".tmp", ".part", "~")


def is_temporary(name: str) -> bool:
    """Whether ``name`` is a temporary name (``.name``, ``name.tmp``, ``name.part``, ``name~``)."""
    return name.startswith(".") or name.lower().endswith(TEMPORARY_ENDINGS)


def frame_number(name: str) -> int | None:
    """The frame number of a file name: its last run of digits (natural-order parsing).

    >>> frame_number("scan3_00012.cbf"), frame_number("dark.edf")
    (12, None)
    """
    numbers = [part for part in natural_key(name) if isinstance(part, int)]
    return numbers[-1] if numbers else None


def header_values(header: dict, where: str) -> dict[str, float]:
    """Per-frame scalars of an image header: SPEC-era motors and counters (``{}`` if none)."""
    values: dict[str, float] = {}
    names = (header_text(header, "motor_mne") or "").split()
    numbers = (header_text(header, "motor_pos") or "").split()
    if len(names) == len(numbers):
        for name, text in zip(names, numbers, strict=True):
            try:
                values[name] = float(text)
            except ValueError:
                values[name] = math.nan
    try:
        values.update(header_counters(header, where=where))
    except FileFormatError:
        pass
    return values


@dataclass
class _Track:
    """What is known of one frame file."""

    path: Path
    number: int | None
    stat: tuple[int, int, int]
    since: float  # clock time of the last change of ``stat``
    state: str = "pending"  # pending, done (returned or skipped), failed (given up until changed)
    error: str = ""


@contextlib.contextmanager
def quiet_fabio() -> Iterator[None]:
    """Silence fabio's own error log while reading files that may be half-written (what goes
    wrong is reported as a :class:`~pyscatter.live.sources.LiveProblem` instead)."""
    fabio_logger = logging.getLogger("fabio")
    level = fabio_logger.level
    fabio_logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        fabio_logger.setLevel(level)


def _stat(path: Path) -> tuple[int, int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return (st.st_size, st.st_mtime_ns, st.st_ino)


class FolderSource(WakingSource):
    """Follow a folder of one image file per frame; see the module documentation.

    Parameters
    ----------
    folder : path
        The folder the detector writes to (it may not exist yet).
    pattern : str, optional
        Glob of the frame file names (``"scan_*.cbf"``); default: names ending in the extensions
        of the ``images`` translator.
    grid : dict or str, optional
        Declared dims, slow to fast (``"Y=6,X=8"``); default: an unbounded series.
    settle : float
        Seconds of unchanged size and time before a file is tried.
    timeout : float
        Seconds a file may stay unreadable after its last change before it is given up.
    start : int, optional
        Frame number of position 0 (see :attr:`start`).
    rename : bool or "auto"
        Whether the detector writes temporary names then renames (see the module documentation).
    clock : callable
        Seconds, monotonic (tests pass their own).
    watch : bool
        Wake :meth:`wait` on changes with ``watchfiles``.
    """

    OPTIONS = ("start", "rename", "clock", "watch")

    def __init__(
        self,
        folder: str | os.PathLike,
        *,
        pattern: str | None = None,
        grid: Any = None,
        settle: float = DEFAULT_SETTLE,
        timeout: float = DEFAULT_TIMEOUT,
        start: int | None = None,
        rename: bool | str = "auto",
        clock: Callable[[], float] = time.monotonic,
        watch: bool = True,
    ) -> None:
        if rename not in (True, False, "auto"):
            raise InputError(f"rename={rename!r}: expected True, False or 'auto'")
        if settle < 0 or timeout < 0:
            raise InputError(f"settle={settle}, timeout={timeout}: expected seconds >= 0")
        self.folder = Path(folder)
        self.pattern = pattern
        self.dims = check_grid(grid)
        self.n_declared = math.prod(n for _, n in self.dims) if self.dims else None
        self.settle, self.timeout, self.clock = float(settle), float(timeout), clock
        #: frame number of position 0: given, or the smallest seen by the first poll with files
        self.start: int | None = None if start is None else int(start)
        self.rename = rename
        self.renames_seen = rename is True
        self.problems = Problems()
        self._tracks: dict[str, _Track] = {}
        self._indices: set[int] = set()  # returned, skipped or given up for good
        self._failed: set[int] = set()  # given up until their file changes
        self._shape: tuple[int, ...] | None = None
        self._dtype: np.dtype | None = None
        self._first: Path | None = None
        self._header: dict = {}
        self._waker = Waker(self.folder) if watch and self.folder.is_dir() else None

    # ------------------------------------------------------------------ protocol

    def describe(self) -> str:
        what = self.pattern or "*" + ",*".join(ImageStackTranslator.extensions)
        return f"folder {self.folder} ({what}, one image per frame)"

    def declared_dims(self) -> list[tuple[str, int]] | None:
        return None if self.dims is None else list(self.dims)

    def first_header(self) -> dict:
        return dict(self._header)

    def finished(self) -> bool:
        return self.n_declared is not None and len(self._indices | self._failed) >= self.n_declared

    def wait(self, timeout: float) -> None:
        if self._waker is None and self.folder.is_dir():  # a folder made after the start
            self._waker = Waker(self.folder)
        super().wait(timeout)

    def poll(self, skip: Callable[[int], bool] | None = None) -> list[Arrival]:
        """Every frame file complete since the last poll, once each (see the module doc)."""
        now = self.clock()
        self._scan(now)
        ready = [
            t
            for t in self._tracks.values()
            if t.state == "pending" and (self.renames_seen or now - t.since >= self.settle)
        ]
        ready.sort(key=lambda t: (t.number if t.number is not None else -1, t.path.name))
        out = []
        for track in ready[:MAX_FRAMES_PER_POLL]:  # the rest at the next poll
            arrival = self._take(track, now, skip)
            if arrival is not None:
                out.append(arrival)
        return out

    # ------------------------------------------------------------------ steps

    def _names(self) -> Iterable[os.DirEntry]:
        try:
            entries = list(os.scandir(self.folder))
        except FileNotFoundError:
            return []
        except OSError as err:
            raise FileFormatError(f"{self.folder}: cannot list the folder ({err})") from err
        return entries

    def _wanted(self, name: str) -> bool:
        if self.pattern is not None:
            return fnmatch.fnmatch(name, self.pattern)
        return has_extension(name, ImageStackTranslator.extensions)

    def _scan(self, now: float) -> None:
        """Note new files and changes of pending ones; fix :attr:`start` on the first files."""
        found = []
        for entry in self._names():
            name = entry.name
            if is_temporary(name):
                if self.rename == "auto":
                    self.renames_seen = True
                continue
            track = self._tracks.get(name)
            if (track is not None and track.state == "done") or not self._wanted(name):
                continue
            stat = _stat(Path(entry.path))
            if stat is None or not entry.is_file():
                continue
            if track is None:
                track = _Track(Path(entry.path), frame_number(name), stat, now)
                self._tracks[name] = track
                found.append(track)
            elif stat != track.stat:
                track.stat, track.since = stat, now
                if track.state == "failed":
                    track.state = "pending"  # changed since it was given up: try again
        if self.start is None and self._tracks:
            numbers = [t.number for t in self._tracks.values() if t.number is not None]
            if numbers:
                self.start = min(numbers)

    def _index(self, track: _Track) -> int | None:
        """The position of a file, or None (reported) when it has none."""
        where = track.path
        if track.number is None:
            self._give_up(track, None, f"{where}: no frame number in the file name; skipped")
            return None
        index = track.number - (self.start or 0)
        if index < 0 or (self.n_declared is not None and index >= self.n_declared):
            limit = f" and {self.n_declared} positions" if self.n_declared else ""
            self._give_up(
                track,
                None,
                f"{where}: frame number {track.number} is outside the scan (start {self.start}"
                f"{limit}); skipped",
            )
            return None
        if index in self._indices:
            self._give_up(
                track,
                index,
                f"{where}: a second file for frame {index} (number {track.number}); skipped",
            )
            return None
        return index

    def _take(
        self, track: _Track, now: float, skip: Callable[[int], bool] | None
    ) -> Arrival | None:
        index = self._index(track)
        if index is None:
            return None
        if skip is not None and skip(index):
            track.state = "done"
            self._indices.add(index)
            return None
        try:
            with quiet_fabio():
                frame, header = read_image(track.path)
            if self._shape is None:
                self._shape, self._dtype, self._first = frame.shape, frame.dtype, track.path
            assert self._dtype is not None and self._first is not None
            frame = check_frame(frame, track.path, self._shape, self._dtype, self._first)
        except FileFormatError as err:  # not (yet) readable
            self._unreadable(track, index, now, err)
            return None
        except InputError as err:  # complete, but another shape, dtype or several frames
            self._give_up(track, index, f"{err}; frame {index} skipped", final=True)
            return None
        if _stat(track.path) != track.stat:  # written to while it was read: not complete yet
            track.stat, track.since = _stat(track.path) or track.stat, now
            return None
        if not self._header:
            self._header = dict(header)
        track.state = "done"
        self._indices.add(index)
        self._failed.discard(index)
        frame = frame.astype(self._dtype, copy=False)  # the first image's dtype, as offline
        values = header_values(header, str(track.path))
        return Arrival(index, frame, str(track.path), values, header=dict(header))

    def _unreadable(self, track: _Track, index: int, now: float, err: Exception) -> None:
        """A file fabio cannot read (yet): corrupt at once under the rename convention, else
        given up ``timeout`` seconds after its last change."""
        track.error = str(err)
        if self.renames_seen:
            self._give_up(track, index, f"{err}; corrupt image, frame {index} skipped")
        elif now - track.since >= self.timeout:
            self._give_up(
                track,
                index,
                f"{track.path}: frame {index} did not complete within {self.timeout:g} s of its "
                f"last change ({err}); skipped",
            )

    def _give_up(self, track: _Track, index: int | None, message: str, final: bool = False) -> None:
        """Report ``message`` (non-fatal) and stop trying ``track`` until it changes (``final``:
        for good)."""
        track.state = "done" if final or track.number is None else "failed"
        if index is not None:
            (self._indices if final else self._failed).add(index)
        self.problems.report(track.path, index, message)
