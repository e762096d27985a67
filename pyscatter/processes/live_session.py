"""Live mode of a process: driven block by block on the positions of a source still being written.

A watch (``pyscatter watch``) writes frames into a live file and, between polls, advances every
step of its pipeline on the positions that became ready. Each step is the ordinary
:class:`~pyscatter.processes.base.ScatterProcess`, driven through a :class:`LiveSession`:

>>> sess = AzimuthalIntegration(raw, npt=500).live_session(locked=True)  # doctest: +SKIP
>>> sess.advance(source_ready(raw))       # blocks computed now          # doctest: +SKIP
>>> fit_ready = sess.done_positions()     # what the next step may use   # doctest: +SKIP

The session sets the results group up once, exactly as :meth:`ScatterProcess.compute
<pyscatter.processes.base.ScatterProcess.compute>` does (same parameters hash, journaled
set-up; an existing group of the same parameters is reused or resumed), verifies the blocks
already written once, and keeps the block function (integrator, matrices, fit model) alive in
this process. Blocks are small (``live_block`` positions, default 1, recorded as the group's
``positions_per_chunk``): the results are bit-identical to an offline run, whose block size
differs, so a later ``compute()`` or ``pyscatter integrate`` of the same parameters reuses them.

Each :meth:`LiveSession.advance` commits its blocks as a group, following rule 5 of
docs/crash_safety.md for the group: the data of every block → flush + fsync → their completion
flags → flush + fsync. A source that grew (an unbounded series: maxshape None on positions)
first grows the results group's outputs and flags inside
:func:`pyscatter.io.safety.setup_transaction`.

Locking: a session needs the job lock on its file (rule 1). ``locked=True`` says the caller
holds :func:`pyscatter.io.safety.job_lock` on it in this process for the session's whole life
(the watch, which also repaired the file before opening it ``"r+"``); the session checks it and
never locks again. Otherwise the session takes the lock (reentrant in this process) and releases
it in :meth:`LiveSession.close`. Another process is refused either way.

A later step of the chain is built on an incomplete source group inside
:func:`~pyscatter.processes.guards.live_sources` (fits and order parameters otherwise refuse a
source that is not complete).
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import logging
import os
import signal
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import h5py
import numpy as np

from pyscatter.errors import FileFormatError, InputError
from pyscatter.io import safety
from pyscatter.io.record import FLAGS, block_flag, verified_positions
from pyscatter.processes.execution import run_blocks
from pyscatter.processes.guards import DeferredInterrupt, holds_lock, job_lock, live_sources

if TYPE_CHECKING:
    from pyscatter.processes.base import ScatterProcess

__all__ = [
    "LIVE_FRAMES",
    "LiveSession",
    "create_flags",
    "grow_group",
    "live_sources",
    "source_ready",
]

log = logging.getLogger(__name__)

#: The per-position record of a live raw dataset, beside it: 0 = not yet measured.
LIVE_FRAMES = "live_frames"
#: Results of one group commit held in memory at most (a backlog is committed in pieces).
COMMIT_BYTES = 64 * 2**20
#: Completion flags per chunk of a resizable flags dataset.
FLAG_CHUNK = 512


def source_ready(dset: h5py.Dataset) -> np.ndarray:
    """Boolean per position of ``dset``: which positions a process may compute now.

    - a live raw dataset (``live_frames`` beside it): the frames written (``live_frames != 0``);
    - a dataset of a results group (completion flags): its group's positions whose flags
      verify against the data (this reads the group; a watch asks the upstream
      :meth:`LiveSession.done_positions` instead);
    - any other (complete) source: all True.
    """
    n = int(dset.shape[0])
    parent = dset.parent
    frames = parent.get(LIVE_FRAMES)
    if isinstance(frames, h5py.Dataset):
        return _fit(frames[()] != 0, n)
    if FLAGS in parent and "positions_per_chunk" in parent.attrs:
        return verified_positions(parent, n)
    return np.ones(n, dtype=bool)


def _fit(values: np.ndarray, n: int) -> np.ndarray:
    """``values`` (bool) cut or padded with False to length ``n``."""
    values = np.asarray(values, dtype=bool).ravel()
    if values.shape[0] >= n:
        return values[:n].copy()
    return np.concatenate([values, np.zeros(n - values.shape[0], dtype=bool)])


def create_flags(group: h5py.Group, n_blocks: int) -> h5py.Dataset:
    """The completion flags of a group that can grow: chunked, maxshape None, space allocated
    at creation and at every extension, filled with 0 (not done)."""
    dcpl = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
    dcpl.set_chunk((FLAG_CHUNK,))
    dcpl.set_alloc_time(h5py.h5d.ALLOC_TIME_EARLY)
    dcpl.set_fill_time(h5py.h5d.FILL_TIME_ALLOC)
    dcpl.set_fill_value(np.zeros((), np.uint64))
    space = h5py.h5s.create_simple((n_blocks,), (h5py.h5s.UNLIMITED,))
    dsid = h5py.h5d.create(group.id, FLAGS.encode(), h5py.h5t.STD_U64LE, space, dcpl=dcpl)
    return h5py.Dataset(dsid)


def grow_group(proc: ScatterProcess, group: h5py.Group) -> None:
    """Grow ``group`` (made by ``proc``) to the positions its source has now, in one journaled
    step: outputs (new rows NaN for float outputs), completion flags, ``n_positions``,
    ``source_shape`` and the NeXus view. A last block that was short and is now longer loses
    its flag (its data no longer covers it; it is computed again).

    Raises
    ------
    FileFormatError
        The group cannot grow (its outputs have a fixed shape) or the source shrank.
    """
    source = proc.h5_main
    n_new = int(source.shape[0])
    n_old = int(group.attrs["n_positions"])
    if n_new == n_old:
        return
    outputs = [group[o.name] for o in proc._outputs()]
    if (
        n_new < n_old
        or any(d.maxshape[0] is not None for d in outputs)
        or (group[FLAGS].maxshape[0] is not None)
    ):
        raise FileFormatError(
            f"{group.file.filename}: {group.name} holds {n_old} positions and cannot follow its "
            f"source {source.name}, which now has {n_new} (only results made on a growing "
            "source grow with it)"
        )
    size = int(group.attrs["positions_per_chunk"])
    with safety.setup_transaction(group.file):
        flags = group[FLAGS]
        if n_old % size and flags[n_old // size]:
            flags[n_old // size] = 0  # a short last block now covers more positions
        for dset in outputs:
            dset.resize(n_new, axis=0)
        flags.resize(-(-n_new // size), axis=0)
        group.attrs["n_positions"] = n_new
        group.attrs["source_shape"] = source.shape
        _refresh_nexus(proc, group)
    log.info("%s grew from %d to %d positions", group.name, n_old, n_new)


def _refresh_nexus(proc: ScatterProcess, group: h5py.Group) -> None:
    """Rebuild the NXdata view (fixed-shape virtual datasets and axes) at the new size."""
    axes = [a.decode() if isinstance(a, bytes) else str(a) for a in group.attrs.get("axes", [])]
    for name in ("data", "data_errors", *axes):
        if name in group:
            del group[name]
    proc._annotate(group, group.name)


class LiveSession:
    """A process driven on the positions of a source that is still being written.

    Made by :meth:`ScatterProcess.live_session
    <pyscatter.processes.base.ScatterProcess.live_session>`; see the module.

    Parameters
    ----------
    proc : ScatterProcess
        The process, on a file open ``"r+"``.
    live_block : int, optional
        Positions per block of a new results group (default 1). A group of the same parameters
        found in the file keeps its own block size.
    locked : bool
        The caller holds :func:`pyscatter.io.safety.job_lock` on the file in this process
        for the session's life (checked); else the session takes the lock until :meth:`close`.

    Attributes
    ----------
    group : h5py.Group
        The results group.
    process : ScatterProcess
    positions_per_block : int
        The group's block size.

    Raises
    ------
    InputError
        ``live_block`` is not a positive integer, the file is open read-only, or ``locked``
        but this process does not hold the file's job lock.
    FileBusyError
        Not ``locked`` and another job holds the file.
    """

    def __init__(
        self, proc: ScatterProcess, *, live_block: int | None = None, locked: bool = False
    ) -> None:
        if live_block is None:
            live_block = 1
        if isinstance(live_block, bool) or not isinstance(live_block, (int, np.integer)):
            raise InputError(f"live_block must be a positive integer; got {live_block!r}")
        if live_block < 1:
            raise InputError(f"live_block must be a positive integer; got {live_block!r}")
        self.process = proc
        h5 = proc.h5_main.file
        self.path = h5.filename
        if h5.mode == "r":
            raise InputError(f"{self.path} is open read-only; a live session needs 'r+'")
        self._stack = contextlib.ExitStack()
        if locked:
            if not holds_lock(self.path):
                raise InputError(
                    f"{self.path}: live_session(locked=True) but this process does not hold "
                    "its job lock (pyscatter.io.safety.job_lock); take it first, or pass "
                    "locked=False"
                )
        else:
            command = f"{proc.process_name} live {proc.parameters_json}"
            self._stack.enter_context(job_lock(self.path, command=command))
        try:
            self.group = self._open_group(int(live_block))
        except BaseException:
            self._stack.close()
            raise
        self.positions_per_block = int(self.group.attrs["positions_per_chunk"])
        self.locked = locked
        #: Positions computed in one call when several blocks are ready (the offline block size).
        self._batch = proc.positions_per_block()
        self._func = proc._local_function()
        self._done = np.zeros(0, dtype=bool)
        self._verify()
        self.closed = False

    # ----------------------------------------------------------------- set-up
    def _open_group(self, live_block: int) -> h5py.Group:
        """The complete or partial group of these parameters, else a new one (journaled)."""
        proc = self.process
        complete, partial = proc._check_for_duplicates()
        found = (complete or partial)[-1:] if (complete or partial) else []
        if found:
            group = found[0]
            log.info("live: continuing %s", group.name)
        else:
            group = proc._create_results_group(size=live_block)
        proc.h5_results_grp = group
        return group

    def _verify(self) -> None:
        """Which blocks are done: flagged and verified against their data (once)."""
        if int(self.group.attrs["n_positions"]) < self.process.h5_main.shape[0]:
            grow_group(self.process, self.group)
        ok = verified_positions(self.group)
        starts = np.arange(0, ok.shape[0], self.positions_per_block)
        self._done = ok[starts] if ok.shape[0] else np.zeros(0, dtype=bool)

    def _blocks(self) -> Iterator[tuple[int, int, int]]:
        n, size = int(self.group.attrs["n_positions"]), self.positions_per_block
        for i, start in enumerate(range(0, n, size)):
            yield i, start, min(start + size, n)

    def _follow_source(self) -> int:
        """Grow the group if the source grew; the number of positions."""
        n_src = int(self.process.h5_main.shape[0])
        n_group = int(self.group.attrs["n_positions"])
        if n_src != n_group:
            grow_group(self.process, self.group)
            n_blocks = -(-n_src // self.positions_per_block)
            done = np.zeros(n_blocks, dtype=bool)
            done[: self._done.shape[0]] = self._done
            if n_group % self.positions_per_block:  # its short last block lost its flag
                done[n_group // self.positions_per_block] = False
            self._done = done
        return n_src

    # ----------------------------------------------------------------- work
    def advance(self, ready: np.ndarray) -> int:
        """Compute every block not done yet whose positions are all ``ready``; return how many.

        ``ready`` is a boolean per source position (:func:`source_ready`, or the upstream
        session's :meth:`done_positions`); a shorter array leaves the positions beyond it not
        ready. The blocks are committed as groups: data → flush + fsync → flags → flush + fsync.
        Positions the source marks never measured (``valid_positions``, read again each time)
        come out NaN, as offline.
        """
        self._check_open()
        n = self._follow_source()
        ready = _fit(ready, n)
        todo = [b for b in self._blocks() if not self._done[b[0]] and ready[b[1] : b[2]].all()]
        if not todo:
            return 0
        proc = self.process
        invalid = proc._invalid_positions()
        cap = max(self.positions_per_block, min(self._batch, RUN_POSITIONS))
        runs = _runs(todo, cap, first=max(self.positions_per_block, min(cap, FIRST_RUN)))
        results = run_blocks(
            proc.task_spec(),
            [(k, run[0][1], run[-1][2]) for k, run in enumerate(runs)],
            h5=proc.h5_main.file,
            local=self._func,
            read_ahead=proc.read_ahead,
        )
        pending: list[_Run] = []
        held = done = 0
        with _deferred_interrupt() as interrupt:
            for k, out in results:
                run = runs[k]
                arrays = proc._block_arrays(out, run[0][1], run[-1][2], invalid)
                pending.append(_Run(run, arrays))  # one computation, the group's own blocks
                held += sum(a.nbytes for a in arrays)
                if held >= COMMIT_BYTES:
                    done += self._commit(pending)
                    pending, held = [], 0
            done += self._commit(pending)
            if self._done.all():
                self._finish()
            interrupt.check()
        return done

    def _commit(self, pending: list[_Run]) -> int:
        """Rule 5 for a group of blocks: all their data, a barrier, all their flags, a barrier.

        Each run of consecutive blocks computed together is written with one call per output
        and one for its flags (the same bytes as block by block: each block's flag is the
        crc32 of its own rows)."""
        if not pending:
            return 0
        group = self.group
        dsets = [group[o.name] for o in self.process._outputs()]
        for run in pending:
            for dset, value in zip(dsets, run.arrays, strict=True):
                dset.write_direct(value, dest_sel=np.s_[run.start : run.stop])
        safety.fsync(group.file)
        flags = group[FLAGS]
        for run in pending:
            flags[run.first : run.last + 1] = run.flags()
        safety.fsync(group.file)
        n = 0
        for run in pending:
            self._done[run.first : run.last + 1] = True
            n += len(run.blocks)
        if self.locked:  # a watch: it writes the status of the whole job itself
            return n
        safety.write_status(
            self.path,
            group=group.name,
            done=int(self._done.sum()),
            blocks=int(self._done.shape[0]),
            pid=os.getpid(),
        )
        return n

    def _finish(self) -> None:
        """Every block done: record the end time (again, should the source grow)."""
        now = _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")
        self.group.attrs.modify("end_time", np.bytes_(now.encode()))
        safety.fsync(self.group.file)

    # ----------------------------------------------------------------- state
    def done_positions(self) -> np.ndarray:
        """Boolean per position of the group: its block is done (the next step's ``ready``)."""
        n, size = int(self.group.attrs["n_positions"]), self.positions_per_block
        if not self._done.shape[0]:
            return np.zeros(n, dtype=bool)
        return np.repeat(self._done, size)[:n]

    def complete(self) -> bool:
        """Whether every position of the group is done."""
        return bool(self._done.all())

    def _check_open(self) -> None:
        if self.closed:
            raise InputError(f"the live session of {self.group.name} is closed")

    def close(self) -> None:
        """End the session (releases the job lock it took; the file stays open)."""
        if not getattr(self, "closed", True):
            self.closed = True
            self._stack.close()

    def __enter__(self) -> LiveSession:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        n = int(self.group.attrs["n_positions"])
        return f"<LiveSession {self.group.name}: {int(self.done_positions().sum())}/{n} done>"


#: Positions computed in one call when a backlog is ready (at most the offline block size):
#: enough for the batched kernels, few enough that reading and decoding the next batch overlaps
#: computing this one (the I/O thread of :func:`~pyscatter.processes.execution.run_blocks`).
RUN_POSITIONS = 16


#: Positions of the first call of an advance at most: the computation starts once they are
#: read, and the I/O thread reads the next run meanwhile.
FIRST_RUN = 4


def _runs(
    todo: list[tuple[int, int, int]], cap: int, first: int | None = None
) -> list[list[tuple[int, int, int]]]:
    """Consecutive blocks to compute in one call, at most ``cap`` positions each (the first
    run at most ``first``).

    A watch that fell behind (the set-up of the first frame, a burst of frames) then computes
    its backlog in batches, as fast as an offline run, instead of one position at a time. Every
    process computes each position alone (its results do not depend on the positions computed
    with it), so the bits are those of blocks of one.
    """
    runs: list[list[tuple[int, int, int]]] = []
    for block in todo:
        last = runs[-1] if runs else None
        limit = first if first is not None and len(runs) == 1 else cap
        if last and block[0] == last[-1][0] + 1 and block[2] - last[0][1] <= limit:
            last.append(block)
        else:
            runs.append([block])
    return runs


class _Run:
    """Consecutive blocks computed in one call and their outputs (``arrays``: in output order,
    one row per position from the first block's start to the last block's stop)."""

    def __init__(self, blocks: list[tuple[int, int, int]], arrays: list[np.ndarray]) -> None:
        self.blocks, self.arrays = blocks, arrays
        self.first, self.start = blocks[0][0], blocks[0][1]
        self.last, self.stop = blocks[-1][0], blocks[-1][2]

    def flags(self) -> np.ndarray:
        """The completion flag of each block (crc32 of its own rows of every output)."""
        out = np.empty(len(self.blocks), dtype=np.uint64)
        for k, (_index, start, stop) in enumerate(self.blocks):
            rows = [a[start - self.start : stop - self.start] for a in self.arrays]
            out[k] = block_flag(rows)
        return out


@contextlib.contextmanager
def _deferred_interrupt() -> Iterator[DeferredInterrupt]:
    """Ctrl-C deferred to the end of the advance, unless the caller handles SIGINT itself (a
    watch with its own handler keeps it)."""
    interrupt = DeferredInterrupt()
    ours = (
        threading.current_thread() is threading.main_thread()
        and signal.getsignal(signal.SIGINT) is signal.default_int_handler
    )
    if ours:
        interrupt.install()
    try:
        yield interrupt
    finally:
        if ours:
            interrupt.restore()
