"""One watch: the source, the live file, one live session per step, and the loop joining them.

Used by :func:`pyscatter.live.runner.watch`; see its module for the loop and the guarantees.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from pyscatter.errors import FileFormatError, InputError
from pyscatter.live.runner import WatchOptions, WatchReport

__all__ = ["WatchSession"]

log = logging.getLogger("pyscatter.live.runner")

#: Seconds between two status files while nothing changes, and at least between two while
#: frames come (each is an fsync: not one per frame at 20 frames/s).
_STATUS_EVERY = 1.0
_STATUS_BUSY = 0.25
#: New frames in one poll from which the watch writes them while the steps compute (a backlog:
#: frames come faster than a round); fewer are written and computed in the same round.
_BACKLOG = 8


class WatchSession:
    """The state of one watch (see :func:`pyscatter.live.runner.watch`)."""

    def __init__(
        self, source: Path, output: Path, steps: Sequence[Any], options: WatchOptions
    ) -> None:
        self.source_path = source
        self.output = output
        self.steps = list(steps)
        self.opts = options
        self.report = WatchReport(str(output))
        self._stack = contextlib.ExitStack()
        self._src: Any = None
        self._file: Any = None
        self._sessions: list[Any] = []
        self._side: Any = None  # the SideWriter of --side-outputs, made at the first frame
        self._status_at = 0.0
        self._guard: Any = None  # the first frame's header geometry (a GeometryGuard), or False
        self._geometry_change = ""  # the message of a frame of another geometry
        self._writer: Any = None  # the thread writing frames while the steps compute a backlog

    # ------------------------------------------------------------------ the loop
    def run(
        self, stop: threading.Event, on_round: Callable[[WatchReport], None] | None
    ) -> WatchReport:
        from pyscatter.live.sources import open_source

        self._lock_and_reopen()
        self._warm_up()
        self._src = open_source(
            self.source_path,
            pattern=self.opts.pattern,
            grid=self.opts.grid,
            scan=self.opts.scan,
            settle=self.opts.settle,
            timeout=self.opts.frame_timeout,
            **self._recorded_source_state(),
        )
        self._stack.callback(self._src.close)
        self._status()  # "acquiring": ready for the first frame
        last_new = time.monotonic()
        while True:
            written = None if self._file is None else self._file.done()
            arrivals = self._src.poll(skip=_written(written))
            self._problems()
            if arrivals:
                if self._file is None:
                    self._create(arrivals)
                    written = None
                arrivals = self._same_geometry(arrivals)
                last_new = time.monotonic()
            advanced = self._write_and_advance(arrivals, written)
            since = time.monotonic() - self._status_at
            if since > (_STATUS_BUSY if arrivals or advanced else _STATUS_EVERY):
                self._status()
            if (arrivals or advanced) and on_round is not None:
                on_round(self.report)
            reason = self._stop_reason(stop, last_new)
            if reason:
                self.report.stopped_by = reason
                break
            if not arrivals and not stop.is_set():
                self._src.wait(self.opts.poll_interval)
        self._finish()
        if self._geometry_change:  # after the frames before it are written and processed
            raise FileFormatError(self._geometry_change)
        return self.report

    def _same_geometry(self, arrivals: Sequence[Any]) -> list[Any]:
        """The arrivals whose header geometry is the first frame's; the first other one (by
        position) stops the watch (:mod:`pyscatter.live.geometry_guard`)."""
        from pyscatter.live.geometry_guard import GeometryGuard

        if self._guard is None:
            attrs = self._file.h5["Measurement_000"].attrs
            self._guard = GeometryGuard.of_measurement(attrs) or False
        if not self._guard:
            return list(arrivals)
        keep = []
        for arrival in sorted(arrivals, key=lambda a: a.index):
            message = None
            if arrival.header is not None:
                message = self._guard.check(arrival.header, arrival.origin, arrival.index)
            if message is None:
                keep.append(arrival)
            elif not self._geometry_change:  # the first one: not written, the watch stops
                log.error("%s", message)
                self._geometry_change = message
                self.report.problems.append(message)
        return keep

    def _stop_reason(self, stop: threading.Event, last_new: float) -> str:
        if self._geometry_change:
            return "geometry changed"
        if stop.is_set():
            return "interrupted"
        if any(p.fatal for p in self._src.problems):
            return "source problem"
        complete = self._file is not None and self._complete()
        if self.opts.until_complete and complete:
            return "scan complete"
        if self._src.finished() and (self._file is None or self._drained()):
            return "scan ended"
        if self.opts.idle is not None and time.monotonic() - last_new > self.opts.idle:
            return f"idle {self.opts.idle:g} s"
        return ""

    # ------------------------------------------------------------------ the file
    def _lock_and_reopen(self) -> None:
        """Hold the job lock for the whole watch; reopen an interrupted watch's file."""
        from pyscatter.io import safety
        from pyscatter.live.livefile import LiveFile

        self._stack.enter_context(safety.job_lock(str(self.output), command="pyscatter watch"))
        if self.output.exists():
            self._file = LiveFile.create_or_open(self.output)  # the layout it records
            self._stack.callback(self._file.close)
            self.report.frames_before = int(self._file.done().sum())
            self._open_sessions()

    def _warm_up(self) -> None:
        """Import what the steps' set-up needs now, not when the first frame is waiting
        (pyFAI's integrator alone takes 1–2 s): a watch is started before its scan."""
        import importlib

        from pyscatter.processes.options import DETECTOR_OPTIONS

        for step in self.steps:
            importlib.import_module(step.process.__module__)
            if any(o in getattr(step.process, "options", ()) for o in DETECTOR_OPTIONS):
                importlib.import_module("pyFAI.integrator.azimuthal")  # the detector set-up

    def _recorded_source_state(self) -> dict[str, Any]:
        """What the source decided at the first frame (folder: the start number; SPEC: the
        scan), recorded in the file so that a restart follows the same frames."""
        state: dict[str, Any] = {}
        if self.opts.first_number is not None:
            state["start"] = self.opts.first_number
        if self._file is None:
            return state
        attrs = self._file.layout.attrs
        if "live_start" in attrs:
            recorded = int(attrs["live_start"])
            if state.get("start", recorded) != recorded:
                raise InputError(
                    f"{self.output}: --first-number {state['start']} but this watch began with "
                    f"frame number {recorded} as position 0; keep it, or write another output"
                )
            state["start"] = recorded
        if "live_scan" in attrs and self.opts.scan is None:
            self.opts.scan = attrs["live_scan"]
        return state

    def _create(self, arrivals: Sequence[Any]) -> None:
        """The live file, laid out as the offline translator lays out these frames."""
        from pyscatter.live.layout import images_layout, spectra_layout
        from pyscatter.live.livefile import LiveFile

        first = min(arrivals, key=lambda a: a.index)
        dims = self._src.declared_dims()
        origin = first.origin.split("#", 1)[0]
        opts = dict(self.opts.translate)
        if first.frame.ndim == 2:
            layout = images_layout(
                first.frame,
                self._src.first_header(),
                dims=dims,
                first_file=origin,
                source=self._src.describe(),
                **opts,
            )
        else:
            opts.pop("poni", None)
            spectrum_dims = getattr(self._src, "spectrum_dims", None)
            layout = spectra_layout(
                first.frame,
                dims=dims,
                spec_dims=None if spectrum_dims is None else spectrum_dims(),
                source=self._src.describe(),
                **opts,
            )
        layout.take_chunks(first.chunk)  # an HDF5 source's stored chunks, copied as they are
        start = getattr(self._src, "start", None)
        if start is not None:
            layout.attrs["live_start"] = int(start)
        scan = getattr(self._src, "scan_key", None)
        if scan is not None:
            layout.attrs["live_scan"] = str(scan)
        self._file = LiveFile.create_or_open(self.output, layout)
        self._stack.callback(self._file.close)
        self._open_sessions()

    def _complete(self) -> bool:
        done = self._file.done()
        if not self._file.layout.bounded or not done.all():
            return False
        return all(s.done_positions().all() for s in self._sessions)

    def _drained(self) -> bool:
        """Every frame the source holds is written and every step caught up with it."""
        ready = self._file.done()
        return all(np.array_equal(s.done_positions(), ready) for s in self._sessions)

    # ------------------------------------------------------------------ the steps
    def _open_sessions(self) -> None:
        """One live session per step, each on the previous step's results (or its source)."""
        from pyscatter.processes.guards import live_sources
        from pyscatter.processes.options import EXECUTION, RUN_OPTIONS
        from pyscatter.processes.requests import request_hash

        h5 = self._file.h5
        previous = None
        for step in self.steps:
            if step.source:
                if step.source not in h5:
                    raise InputError(
                        f"step {step.name!r}: source: no dataset {step.source!r} in {self.output}"
                    )
                dset = h5[step.source]
            elif previous is None:
                dset = self._file.raw
            else:
                dset = step.process.default_source(h5)
            execution = {name: EXECUTION[name].default for name in RUN_OPTIONS}
            execution.update(step.execution)
            execution.update(n_jobs=1, progress=False)
            execution.pop("scheduler", None)
            kwargs = {**step.arguments(), **execution}
            try:
                with live_sources():  # a step may start on its source's first positions
                    proc = step.process(dset, **kwargs)
                proc.request_key = request_hash(step.process, dset, kwargs)
                session = proc.live_session(live_block=self.opts.live_block, locked=True)
            except InputError as err:
                raise InputError(f"step {step.name!r}: {err}") from err
            self._sessions.append(session)
            self.report.groups[step.name] = session.group.name
            previous = session

    def _write_and_advance(self, arrivals: Sequence[Any], written: np.ndarray | None) -> int:
        """Write ``arrivals`` into the live file and advance every step; the blocks computed.

        Fewer than ``_BACKLOG`` new frames (the watch keeps up) are written and computed in the
        same round, with any frames written before that the steps have not computed yet: the
        lowest latency. A backlog (``_BACKLOG`` frames or more in one poll: frames
        come faster than a round) is written by a writer thread while the steps compute the
        frames written before (``written``), and computed in the next round: the write's
        barriers (fsync: waiting for the disk) and the computation overlap, so a watch that
        fell behind catches up. Each keeps its own order (data, barrier, flags, barrier) and
        the steps only use frames flagged before, so a kill at any moment loses nothing
        flagged. A write that changes the file's structure (journaled) is never overlapped.
        """
        if not arrivals:
            return self._advance()
        lagging = None if written is None else self._lagging(written)
        if lagging is None or len(arrivals) < _BACKLOG or self._file.changes_structure(arrivals):
            self.report.frames_written += len(self._file.write(arrivals))
            return self._advance()
        if self._writer is None:
            from concurrent.futures import ThreadPoolExecutor

            self._writer = ThreadPoolExecutor(1, thread_name_prefix="pyscatter-live-write")
            self._stack.callback(self._writer.shutdown)  # before the file closes (LIFO)
        job = self._writer.submit(self._file.write, arrivals)
        try:
            advanced = self._advance(written) if lagging else 0
        except BaseException as err:
            failed = job.exception()  # waits: a commit is never left half done
            if failed is not None and not isinstance(err, KeyboardInterrupt):
                raise failed from err  # a write fault (abandoned file) is the cause
            raise
        self.report.frames_written += len(job.result())
        return advanced

    def _lagging(self, written: np.ndarray) -> bool | None:
        """Whether some step has positions to compute among the frames ``written``; None when
        a step's group has not the file's size (it grows first, a journaled change)."""
        ready, lagging = written, False
        for session in self._sessions:
            done = session.done_positions()
            if done.size != ready.size:
                return None
            lagging = lagging or bool((ready & ~done).any())
            ready = done
        return lagging

    def _advance(self, ready: np.ndarray | None = None) -> int:
        """Advance every step on the frames ``ready`` (default: every frame written)."""
        if self._file is None:
            return 0
        if ready is None:
            ready = self._file.done()
        did = 0
        for step, session in zip(self.steps, self._sessions, strict=True):
            before = session.done_positions()
            did += session.advance(ready)
            ready = session.done_positions()
            self.report.positions_done[step.name] = int(ready.sum())
            if self.opts.side_outputs and step.name == "integrate":
                self._write_side(session, before, ready)
        self.report.positions = self._file.n_positions
        return did

    def _write_side(self, session: Any, before: np.ndarray, now: np.ndarray) -> None:
        from pyscatter.live.side_outputs import SideWriter

        if self._side is None:
            folder = Path(self.opts.side_outputs)  # type: ignore[arg-type]
            self._side = SideWriter(session.group, folder, self.opts.side_format)
        was_done = np.zeros(now.size, dtype=bool)  # the group may have grown (a series)
        was_done[: before.size] = before
        for i in np.flatnonzero(now & ~was_done):
            self._side.write(int(i))
            self.report.side_files += 1

    # ------------------------------------------------------------------ reporting, ending
    def _problems(self) -> None:
        seen = set(self.report.problems)
        for p in self._src.problems:
            text = str(p)
            if text not in seen:
                log.warning("%s", text)
                self.report.problems.append(text)
                seen.add(text)

    def _status(self) -> None:
        from pyscatter.io.safety import write_status

        self._status_at = time.monotonic()
        write_status(
            self.output,
            command="pyscatter watch",
            source=str(self.source_path),
            state=self.report.state,
            frames_written=self.report.frames_written + self.report.frames_before,
            positions=self.report.positions,
            steps=self.report.positions_done,
            groups=self.report.groups,
            problems=self.report.problems[-20:],
        )

    def _finish(self) -> None:
        """Record how the watch ended; finalize the scan when it is over.

        A scan is over when it is full or its source says it ended (a SPEC scan followed by
        the next one): never-measured positions of an aborted scan are then marked as the
        offline translator marks them and every step gives them NaN, as offline. Stopped by
        Ctrl-C, ``idle`` or a source problem, the file stays open-ended: the same command
        started again continues it.
        """
        if self._file is None:
            self.report.state = "no frames"
            return
        ended = self.report.stopped_by in ("scan complete", "scan ended")
        full = bool(self._file.layout.bounded and self._file.done().all())
        state = ("complete" if full else "aborted") if ended else "stopped"
        self._file.finalize("complete" if state == "complete" else "stopped")
        if state == "aborted":
            ready = np.ones(self._file.n_positions, dtype=bool)
            for session in self._sessions:
                session.advance(ready)
                ready = session.done_positions()
        self._advance()
        self.report.state = state
        self._status()

    def close(self) -> None:
        for session in self._sessions:
            with contextlib.suppress(Exception):
                session.close()
        self._stack.close()


def _written(done: np.ndarray | None) -> Callable[[int], bool]:
    """The source's ``skip``: frames already in the live file (a restart reads them no more)."""
    if done is None:
        return lambda index: False
    return lambda index: bool(index < done.size and done[index])
