"""The watch loop: follow a source while it is written, and process each frame as it lands.

:func:`watch` (``pyscatter watch``) is one process running one loop::

    poll the source → write the new frames into the live file → advance every step on the
    positions that became ready → per-frame side outputs → status → repeat

(a watch behind its frames writes the new ones in a writer thread while the steps compute those
written before: :meth:`WatchSession._write_and_advance
<pyscatter.live.session.WatchSession._write_and_advance>`)

until the declared scan is full (``until_complete``), ``idle`` seconds pass without a new frame,
the source says its scan ended, or Ctrl-C (a second Ctrl-C stops at once). Nothing here is a
second engine: frames go through :class:`~pyscatter.live.livefile.LiveFile` (the offline
translator's layout, one completion record per frame) and every step is the ordinary process,
driven block by block by its :class:`~pyscatter.processes.live_session.LiveSession`. So the
crash-safety rules hold unchanged (see :doc:`/crash_safety`): the watch holds the file's job
lock for its whole life, a SIGKILL at any moment loses nothing that was flagged, and the same
command started again continues where the file's record says -- without reading the frames
already written again, and with results equal to an offline run of the finished scan, bit for bit.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pyscatter.errors import InputError

__all__ = ["WatchOptions", "WatchReport", "watch"]

log = logging.getLogger(__name__)


@dataclass
class WatchOptions:
    """How to follow a source and when to stop (every field has a default).

    Attributes
    ----------
    pattern : str, optional
        Glob of the frame files in a watched folder (default: every image fabio reads).
    grid : dict or str, optional
        ``{"Y": 6, "X": 8}`` or ``"Y=6,X=8"``: the scan's dims slow to fast when the source does
        not declare them (a folder or an HDF5 file without a frame count). None and no declared
        shape: an unbounded series (one dim ``Image``) that needs no length in advance.
    scan : int, optional
        The SPEC scan number to follow (default: the last one in the file).
    first_number : int, optional
        Folder: the number in the file name of position 0 (default: the smallest number found
        when the first files appear, recorded in the file for a restart).
    translate : dict
        Options of the offline translator that shape the raw data: ``poni``, ``mask``,
        ``flip``, ``dummy``, ``compression``, ``header_geometry``, ``monitor``.
    until_complete : bool
        Stop once every position of the declared scan holds a frame and every step is done.
    idle : float, optional
        Stop after this many seconds without a new frame (None: never).
    poll_interval : float
        Seconds between two looks at the source when nothing new came.
    settle : float
        Seconds a frame file's size must stay unchanged before it counts as complete (files
        written under a temporary name and renamed count at once).
    frame_timeout : float
        Seconds a frame file may stay unreadable after its last change before it is given up
        as corrupt (a problem naming it; the watch goes on).
    side_outputs : path, optional
        A folder that receives one text file per frame as it is integrated
        (:mod:`pyscatter.live.side_outputs`).
    side_format : {"dat", "chi"}
        ``.dat`` (x, I, σ) or Fit2D ``.chi``.
    live_block : int
        Positions per block of every step (small: a block is written when all of its frames
        are there, so this bounds the latency in frames).
    """

    pattern: str | None = None
    grid: Mapping[str, int] | str | None = None
    scan: int | None = None
    first_number: int | None = None
    translate: dict[str, Any] = field(default_factory=dict)
    until_complete: bool = False
    idle: float | None = None
    poll_interval: float = 0.05
    settle: float = 0.5
    frame_timeout: float = 30.0
    side_outputs: str | os.PathLike | None = None
    side_format: str = "dat"
    live_block: int = 1


@dataclass
class WatchReport:
    """What a watch did (also the last status written beside the file)."""

    output: str
    state: str = "acquiring"
    stopped_by: str = ""
    frames_written: int = 0
    frames_before: int = 0
    positions: int = 0
    positions_done: dict[str, int] = field(default_factory=dict)
    groups: dict[str, str] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    side_files: int = 0
    seconds: float = 0.0

    def lines(self) -> list[str]:
        """The report as the command prints it."""
        out = [
            f"{self.output}: {self.state} ({self.stopped_by}); "
            f"{self.frames_written} new frames written"
            + (f", {self.frames_before} were there already" if self.frames_before else "")
            + f", {self.positions} positions, {self.seconds:.1f} s"
        ]
        for step, done in self.positions_done.items():
            out.append(f"  {step}: {done} of {self.positions} positions in {self.groups[step]}")
        if self.side_files:
            out.append(f"  {self.side_files} side files written")
        for p in self.problems:
            out.append(f"  problem: {p}")
        return out


class _Stop:
    """Ctrl-C: the first press ends the watch after the current round, the second at once."""

    def __init__(self, event: threading.Event | None) -> None:
        self.event = event or threading.Event()
        self._previous: Any = None

    def __enter__(self) -> _Stop:
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.getsignal(signal.SIGINT)
            signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        if self.event.is_set():
            raise KeyboardInterrupt
        self.event.set()
        log.warning("interrupt: stopping after this round (Ctrl-C again to stop now)")

    def __exit__(self, *exc: Any) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)


def watch(
    source: str | os.PathLike,
    output: str | os.PathLike,
    steps: Sequence[Any] | str | os.PathLike | None = None,
    options: WatchOptions | None = None,
    *,
    stop: threading.Event | None = None,
    on_round: Callable[[WatchReport], None] | None = None,
) -> WatchReport:
    """Follow ``source`` while it is written into ``output`` and run ``steps`` on every frame.

    Parameters
    ----------
    source : path
        A folder where a detector writes one file per frame, a growing HDF5 file, or a SPEC
        file whose scan is being appended (:func:`pyscatter.live.sources.open_source`).
    output : path
        The results file: created at the first frame, or continued if an interrupted watch of
        the same source and layout left it.
    steps : pipeline YAML path or text, or list of :class:`pyscatter.pipeline.Step`, optional
        The processing steps (a pipeline's ``steps:``; its ``translate:`` options such as
        ``poni`` and ``mask`` are used for the raw data unless ``options.translate`` sets them,
        and its ``output:`` is ignored). None: only write the frames.
    options : WatchOptions, optional
    stop : threading.Event, optional
        Set it (from another thread) to end the watch after the current round.
    on_round : callable, optional
        Called with the report after every round that wrote something.

    Returns
    -------
    WatchReport

    Raises
    ------
    InputError
        A bad option or pipeline, a source that cannot be followed, or an output written
        from another source or layout (named in the message).
    FileBusyError
        Another job holds ``output``.
    """
    from pyscatter.live.session import WatchSession

    opts = options or WatchOptions()
    pipe_steps, translate_options = _steps(steps)
    _take_translate_options(opts, {**translate_options, **opts.translate})
    _check_side_outputs(opts, pipe_steps)
    t0 = time.monotonic()
    with _Stop(stop) as stopper:
        session = WatchSession(Path(source), Path(output), pipe_steps, opts)
        try:
            report = session.run(stopper.event, on_round)
        finally:
            session.close()
    report.seconds = time.monotonic() - t0
    return report


def _steps(steps: Sequence[Any] | str | os.PathLike | None) -> tuple[list[Any], dict[str, Any]]:
    """The pipeline's steps and its translate options (``poni``, ``mask`` …)."""
    if steps is None:
        return [], {}
    if isinstance(steps, (str, os.PathLike)):
        from pyscatter.pipeline import validate_pipeline
        from pyscatter.pipeline_checks import ImageFile

        pipe = validate_pipeline(steps, watching=True)
        translate: dict[str, Any] = {}
        if pipe.translate is not None:
            translate = {
                k: (v.path if isinstance(v, ImageFile) else v)
                for k, v in pipe.translate.options.items()
            }
        if pipe.execution.get("scheduler") or pipe.execution.get("cluster"):
            raise InputError(
                f"{steps}: execution: a watch runs its steps in its own process; "
                "scheduler/cluster are for offline runs (pyscatter run)"
            )
        return list(pipe.steps), translate
    return list(steps), {}


def _check_side_outputs(opts: WatchOptions, steps: Sequence[Any]) -> None:
    """Side files are one 1-D I(q) per frame: they need a 1-D ``integrate`` step."""
    if opts.side_outputs is None:
        return
    from pyscatter.live.side_outputs import SIDE_FORMATS

    if opts.side_format not in SIDE_FORMATS:
        raise InputError(
            f"side format {opts.side_format!r}: expected one of {', '.join(SIDE_FORMATS)}"
        )
    integrate = [s for s in steps if s.name == "integrate"]
    if not integrate:
        raise InputError(
            "--side-outputs writes each frame's I(q): the pipeline needs an integrate step"
        )
    if integrate[0].params.get("npt_azim") is not None:
        raise InputError(
            "--side-outputs writes 1-D I(q) per frame; this integrate step makes a 2-D cake "
            f"(npt_azim={integrate[0].params['npt_azim']}): drop one or the other"
        )


#: Translator options a watch takes for the raw data (the rest need the whole scan).
LAYOUT_OPTIONS = ("poni", "mask", "flip", "dummy", "compression", "header_geometry", "monitor")


def _take_translate_options(opts: WatchOptions, given: dict[str, Any]) -> None:
    """Split translator options into the layout's, ``grid`` and ``scan``; refuse the rest."""
    for key, attr in (("grid", "grid"), ("scan", "scan")):
        value = given.pop(key, None)
        if value is not None and getattr(opts, attr) is None:
            setattr(opts, attr, value)
    unknown = sorted(set(given) - set(LAYOUT_OPTIONS))
    if unknown:
        raise InputError(
            f"translate option(s) {', '.join(unknown)}: a watch cannot use them (they need the "
            f"whole scan, e.g. positions inferred from all frames); it takes "
            f"{', '.join(LAYOUT_OPTIONS)}, grid and scan"
        )
    opts.translate = given
