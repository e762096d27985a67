"""What a running process holds: its job lock, and Ctrl-C deferred to the end of a block."""

from __future__ import annotations

import contextlib
import contextvars
import logging
import os
from collections.abc import Iterator
from typing import Any

from pyscatter.io import safety

__all__ = ["DeferredInterrupt", "holds_lock", "job_lock", "live_sources", "partial_sources_allowed"]

log = logging.getLogger("pyscatter.processes.base")


class DeferredInterrupt:
    """Ctrl-C during a run stops it between blocks, never inside a write or a finaliser.

    The first SIGINT is remembered and raised as KeyboardInterrupt once the block being written
    is flagged complete (a KeyboardInterrupt raised inside a finaliser is silently dropped by
    Python, and one inside HDF5 calls leaves nothing to resume from). A second SIGINT raises at
    once. Outside the main thread (no signal handlers there) it does nothing.
    """

    def __init__(self) -> None:
        self.requested = False
        self._previous: Any = None

    def install(self) -> None:
        import signal
        import threading

        if threading.current_thread() is not threading.main_thread():
            return
        self._previous = signal.getsignal(signal.SIGINT)
        signal.signal(signal.SIGINT, self._handle)

    def _handle(self, signum, frame) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        log.warning("interrupt: stopping after the current block (Ctrl-C again to stop now)")

    def check(self) -> None:
        if self.requested:
            raise KeyboardInterrupt

    def restore(self) -> None:
        import signal

        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
            self._previous = None


_HELD_LOCKS: dict[str, int] = {}


def holds_lock(path: str) -> bool:
    """Whether this process holds the job lock on ``path`` (here or through
    :func:`pyscatter.io.safety.job_lock` directly, as a watch does for its whole life)."""
    key = os.path.realpath(path)
    return key in _HELD_LOCKS or key in safety._HELD


@contextlib.contextmanager
def job_lock(path: str, command: str | None = None) -> Iterator[None]:
    """Reentrant within this process: a job that already holds the lock keeps it (also one
    taken with :func:`pyscatter.io.safety.job_lock` directly, e.g. by a watch)."""
    key = os.path.realpath(path)
    if key in _HELD_LOCKS or key in safety._HELD:
        _HELD_LOCKS[key] = _HELD_LOCKS.get(key, 0) + 1
        try:
            yield
        finally:
            _HELD_LOCKS[key] -= 1
            if not _HELD_LOCKS[key]:
                del _HELD_LOCKS[key]
        return
    with safety.job_lock(key, command=command):
        _HELD_LOCKS[key] = 1
        try:
            yield
        finally:
            del _HELD_LOCKS[key]


_LIVE_SOURCES: contextvars.ContextVar[bool] = contextvars.ContextVar("live_sources", default=False)


@contextlib.contextmanager
def live_sources() -> Iterator[None]:
    """Within the block, processes accept a source results group that is not complete yet
    (a step of a live pipeline, driven by a :class:`~pyscatter.processes.live_session.
    LiveSession` on the positions its source has done)."""
    token = _LIVE_SOURCES.set(True)
    try:
        yield
    finally:
        _LIVE_SOURCES.reset(token)


def partial_sources_allowed() -> bool:
    """Whether a process may be built on an incomplete source now (see :func:`live_sources`)."""
    return _LIVE_SOURCES.get()
