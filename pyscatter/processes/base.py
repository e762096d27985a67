"""The one pyscatter base of every process: resumable, crash-safe, parallel.

:class:`ScatterProcess` is pyscatter's own template of a process (it owes nothing to
``pyUSID.Process``, whose duplicate detection and per-row workers do not fit this use; see
docs/design.md). The contract a subclass fulfils:

``process_name`` (class attribute)
    The name results groups record (``@process``) and name themselves by:
    ``<source>-<process_name>_<NNN>`` beside the source dataset; ``@tool`` is
    ``pyscatter.<process_name>``.
``factory`` (class attribute)
    ``"module:function"``; the function takes a :class:`~pyscatter.processes.execution.TaskSpec`
    and returns the block function ``f(h5_file, start, stop) -> {output name: array}`` (or a
    :class:`~pyscatter.processes.execution.FrameBlocks`). Workers import only that module, so
    it stays light; each worker builds the function once per spec.
``__init__``
    Validates the physics parameters into a JSON-able dict and passes it, with the source main
    dataset and the execution options, to ``ScatterProcess.__init__``.
:meth:`~ScatterProcess._outputs`
    The main datasets written (:class:`Output`: name, quantity, units, spectroscopic dims,
    dtype), one row per source position.
:meth:`~ScatterProcess._bytes_per_position`
    Peak bytes one position costs a worker; with ``max_mem_mb`` it sets the block size.
:meth:`~ScatterProcess._setup_extra` (optional)
    Writes extra inputs (a dark frame, a mask, a model) into the results group before it is
    linked into the file.
``default_source`` (optional classmethod)
    The source main dataset :func:`run_on_file` picks when none is named.

What the base provides: :meth:`~ScatterProcess.compute` (reuse, resume or compute, then return
the results group), :meth:`~ScatterProcess.reuse` (reuse only, for read-only files) and
:meth:`~ScatterProcess.test` (compute some positions without writing). Duplicates are matched by
the exact tool name, the canonical JSON of the parameters and the source's fingerprint
(``@parameters_hash``, see :func:`source_fingerprint`); a complete group of the same hash is
reused only if every block flag verifies against its data, and a partial one is resumed.

Work is cut into blocks of positions sized from ``max_mem_mb``; each block is computed by one
vectorised call in a worker that built its heavy objects once, and written by this process
alone, following docs/crash_safety.md:

1. one job per file (``<file>.lock``); repairs happen in :func:`run_on_file` before opening;
2. every output is created once, unlinked, with space allocated early and never filled, then
   linked in one journaled transaction; after that nothing is created or renamed;
3. per block: data → flush + fsync → ``completed_chunks[i] = (1 << 32) | crc32(data)`` → flush
   + fsync;
4. on resume a block counts as done only if its flag matches the data read back; every other
   block is recomputed from its inputs alone, so the results are bit-identical.

Importing this module imports h5py and numpy, not pyUSID, sidpy, dask or scikit-learn.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import logging
import os
import socket
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import h5py
import numpy as np

from pyscatter.errors import InputError
from pyscatter.io import safety
from pyscatter.io.integrity import require_pyscatter_file
from pyscatter.io.nexus import annotate_nxdata, set_default_chain
from pyscatter.io.record import FLAGS, block_flag, completion
from pyscatter.io.results import is_verified_complete, output_for_writing, source_results
from pyscatter.io.usid import Dim, create_main, dims_of, is_main, main_datasets, write_ancillary
from pyscatter.processes.execution import (
    TaskSpec,
    check_max_mem_mb,
    positions_per_block,
    run_blocks,
)
from pyscatter.processes.guards import DeferredInterrupt, job_lock
from pyscatter.processes.requests import find_request, request_hash

log = logging.getLogger(__name__)

END_TIME_DTYPE = "S32"


@dataclass(frozen=True)
class Output:
    """One main dataset a process writes: (n_positions, prod(len(spec_dims))) of ``dtype``."""

    name: str
    quantity: str
    units: str
    spec_dims: tuple[Dim, ...]
    dtype: Any = np.float32
    spec_prefix: str = "Spectroscopic_"

    @property
    def width(self) -> int:
        return int(np.prod([len(d) for d in self.spec_dims]))


@dataclass
class RunSummary:
    """What one call of :meth:`ScatterProcess.compute` did."""

    group: str
    reused: bool = False
    resumed: bool = False
    computed_positions: int = 0
    total_positions: int = 0
    seconds: float = 0.0
    repairs: list[str] = field(default_factory=list)


def canonical_json(parameters: dict[str, Any]) -> str:
    """Parameters as canonical JSON (sorted keys, no spaces): equal parameters, equal text."""
    return json.dumps(parameters, sort_keys=True, separators=(",", ":"), allow_nan=True)


def versions() -> dict[str, str]:
    """Versions of pyscatter and the packages its results depend on (recorded on each group)."""
    from pyscatter._metadata import installed_version

    out = {}
    for name in ("pyscatter", "pyFAI", "pyUSID", "numpy", "h5py", "scipy", "fabio"):
        version = installed_version(name)
        out[name] = "not installed" if version is None else version
    return out


def source_fingerprint(dset: h5py.Dataset) -> str:
    """Identity of a source dataset: ``live:<id>`` for a raw dataset written live (its
    ``live_id``, kept forever, so results made during acquisition stay valid afterwards), else
    its checksum if recorded, else its producer's parameters."""
    if "live_id" in dset.attrs:
        return f"live:{_text(dset.attrs['live_id'])}"
    if "sha256" in dset.attrs:
        return f"sha256:{dset.attrs['sha256']}"
    parent = dset.parent
    if "parameters_hash" in parent.attrs:
        return f"{parent.attrs['tool']}:{parent.attrs['parameters_hash']}"
    return f"{dset.name}:{dset.shape}:{dset.dtype}"


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class ScatterProcess:
    """Base of every pyscatter process: the template a process fills in (see the module doc).

    A subclass sets ``process_name`` and ``factory`` (``"module:function"`` building the
    worker's block function from a :class:`TaskSpec`), implements :meth:`_outputs` and
    :meth:`_bytes_per_position`, may implement :meth:`_setup_extra` and a ``default_source``
    classmethod, and validates its physics parameters in ``__init__`` into a JSON-able dict
    passed on as ``parameters``. Constructing a process reads the file (which groups of these
    parameters exist) and writes nothing; :meth:`compute` writes.

    Parameters
    ----------
    h5_main : h5py.Dataset
        The source USID main dataset, in a file open for writing.
    parameters : dict
        Every physics parameter; recorded on the results group, hashed for duplicate detection.
    max_mem_mb : float
        MiB for one worker's block of positions: read buffers, working copies and results
        (``n_jobs`` workers use up to ``n_jobs`` times this); it sets the positions per block
        and must hold one position (:func:`~pyscatter.processes.execution.positions_per_block`).
        Not a limit on the process: imports and set-up (the integrator) come on top, see
        the user guide's page on clusters and memory. Frame processes also keep a block's raw
        frames within ``block_input_mb``. The block size is fixed when the results group is
        created: a resumed run keeps it, whatever budget it is given, so its results stay
        bit-identical.
    n_jobs : int
        Worker processes (joblib/loky, or workers of a local dask cluster).
    scheduler : str, optional
        ``"local"`` (dask ``LocalCluster``) or a dask scheduler address.
    cluster : dict, optional
        A dask-jobqueue cluster, see :func:`pyscatter.processes.execution.run_blocks`.
    progress : bool
        Show a tqdm progress bar (in a terminal or notebook; never in a batch log or under
        ``pyscatter -q``, see :mod:`pyscatter.progress`).
    read_ahead : bool
        In a serial run, read the next block of frames in a thread while this one is computed
        (frame-reading processes; two read buffers count against ``max_mem_mb``). The results
        are the same bits either way.

    Attributes
    ----------
    h5_main : h5py.Dataset
        The source main dataset.
    parameters, parms_dict : dict
        The canonical parameters (``parms_dict`` is the same dict, under pyUSID's name).
    parameters_hash : str
        sha256 of the canonical parameters and the source's fingerprint: what duplicates match.
    duplicate_h5_groups, partial_h5_groups : list of h5py.Group
        Results groups of the same hash: complete (every block flag verifies against its data)
        and partial (a run to resume). Looked up when first asked for (verifying reads every
        output of a complete group) and again by :meth:`compute`, under the file's lock.
    h5_results_grp : h5py.Group or None
        The results group once :meth:`compute` (or :meth:`reuse`) found or made it.
    summary : RunSummary or None
        What the last :meth:`compute` did.

    Raises
    ------
    InputError
        ``h5_main`` is not a USID main dataset, or ``max_mem_mb`` cannot hold one position.
    """

    process_name: ClassVar[str] = ""
    factory: ClassVar[str] = ""
    #: The output the NeXus view plots (a class default; an instance may set its own).
    nexus_signal: str | None = None
    #: Raw input per block (MiB) beyond which a larger block gains nothing: frame processes
    #: integrate 16 frames at a time, and a bigger block only costs fresh memory (page faults,
    #: ~0.5 s per 175 MiB on a virtual machine) and a longer wait for the first block.
    block_input_mb: ClassVar[float | None] = None
    #: The hash of the request that made this process (:func:`run_on_file` sets it), recorded
    #: on a new results group as ``request_hash`` for :mod:`pyscatter.processes.requests`.
    request_key: str | None = None

    def __init__(
        self,
        h5_main: h5py.Dataset,
        parameters: dict[str, Any],
        *,
        max_mem_mb: float = 512,
        n_jobs: int = 1,
        scheduler: str | None = None,
        cluster: dict[str, Any] | None = None,
        progress: bool = True,
        read_ahead: bool = True,
    ) -> None:
        if not is_main(h5_main):
            raise InputError(
                f"{getattr(h5_main, 'name', h5_main)} is not a USID main dataset (a 2-D dataset "
                "with quantity, units and Position/Spectroscopic ancillary references)"
            )
        max_mem_mb = check_max_mem_mb(max_mem_mb)
        self.parameters = json.loads(canonical_json(parameters))
        self.parameters_json = canonical_json(self.parameters)
        self.parms_dict = self.parameters
        self.n_jobs = int(n_jobs)
        self.scheduler = scheduler
        self.cluster = cluster
        self.progress = progress
        self.read_ahead = bool(read_ahead)
        self.max_mem_mb = float(max_mem_mb)
        self.h5_main = self._source = h5_main
        self.fingerprint = source_fingerprint(h5_main)
        self.parameters_hash = hashlib.sha256(
            (self.parameters_json + "|" + self.fingerprint).encode()
        ).hexdigest()
        self.positions_per_block()  # a budget that cannot hold one position fails here
        self.h5_results_grp: h5py.Group | None = None
        self.summary: RunSummary | None = None
        self._duplicates: tuple[list[h5py.Group], list[h5py.Group]] | None = None

    # ----------------------------------------------------------------- subclass hooks
    @classmethod
    def default_source(cls, h5: h5py.File) -> h5py.Dataset:
        """The source main dataset in ``h5`` when none is named (override in a subclass).

        Raises
        ------
        InputError
            Always here: this process has no default source; name one.
        """
        raise InputError(
            f"{h5.filename}: {cls.process_name or cls.__name__} has no default source; "
            "name the source main dataset (source=..., --source PATH)"
        )

    @classmethod
    def request_context(cls, h5_main: h5py.Dataset, kwargs: Mapping[str, Any]) -> dict | None:
        """What, besides the source and ``kwargs``, decides this process's parameters, read
        cheaply (no heavy imports); None (the default): no quick reuse for this process.

        :func:`run_on_file` hashes the request (:mod:`pyscatter.processes.requests`) and reuses
        complete results recorded under the same hash without constructing the process. A
        subclass whose set-up is expensive returns everything its set-up reads from the file
        besides the source; a subclass that cannot say returns None.
        """
        return None

    def _outputs(self) -> list[Output]:
        raise NotImplementedError

    def _bytes_per_position(self) -> int:
        """Peak bytes one position costs a worker (input buffer, working copies, outputs)."""
        return int(self._source.dtype.itemsize * self._source.shape[1] * 3)

    def _serial(self) -> bool:
        return self.n_jobs == 1 and not self.scheduler and not self.cluster

    def _read_buffers(self) -> int:
        """Blocks of raw frames held at once: two when the next one is read ahead."""
        return 2 if self.read_ahead and self._serial() else 1

    def _setup_extra(self, group: h5py.Group) -> None:
        """Write extra inputs (e.g. a dark frame) into the still unlinked results group."""

    def _local_function(self):
        """The block function for this process (serial runs, :meth:`test`), built once."""
        if getattr(self, "_local", None) is None:
            from pyscatter.processes.execution import build

            self._local = build(self.task_spec(), self._source.file)
        return self._local

    # ----------------------------------------------------------------- duplicates
    @property
    def group_prefix(self) -> str:
        return f"{self._source.name.rsplit('/', 1)[-1]}-{self.process_name}_"

    def _candidate_groups(self) -> list[h5py.Group]:
        return source_results(self._source, self.process_name)

    @property
    def duplicate_h5_groups(self) -> list[h5py.Group]:
        """Complete results groups of these parameters on this source (oldest first)."""
        return (self._duplicates or self._check_for_duplicates())[0]

    @property
    def partial_h5_groups(self) -> list[h5py.Group]:
        """Partial results groups of these parameters on this source: runs to resume."""
        return (self._duplicates or self._check_for_duplicates())[1]

    def _check_for_duplicates(self) -> tuple[list[h5py.Group], list[h5py.Group]]:
        """Exact tool name, parameters and source: (complete groups, partial groups).

        Reads the file now (a complete group is verified block by block against its flags)
        and remembers the answer for :attr:`duplicate_h5_groups` and :attr:`partial_h5_groups`.
        """
        complete, partial = [], []
        n_src = self._source.shape[0]
        for group in self._candidate_groups():
            if group.attrs.get("parameters_hash") != self.parameters_hash:
                continue
            n_group = int(group.attrs.get("n_positions", n_src))
            if n_group > n_src:  # a source that shrank: not these results
                continue
            # a complete group is reused only if every flag verifies against its data (and it
            # covers every position: a live source may have grown since)
            if n_group == n_src and is_verified_complete(group):
                complete.append(group)
            else:
                partial.append(group)
        self._duplicates = (complete, partial)
        return self._duplicates

    # ----------------------------------------------------------------- blocks
    def positions_per_block(self) -> int:
        """Block size from the memory budget and ``block_input_mb`` (at least 1, at most all
        positions)."""
        return positions_per_block(
            self.max_mem_mb,
            self._bytes_per_position(),
            self._source.shape[0],
            input_bytes_per_position=self._source.dtype.itemsize * self._source.shape[1],
            block_input_mb=self.block_input_mb,
        )

    @staticmethod
    def _blocks(n_positions: int, size: int) -> list[tuple[int, int, int]]:
        return [
            (i, start, min(start + size, n_positions))
            for i, start in enumerate(range(0, n_positions, size))
        ]

    def task_spec(self) -> TaskSpec:
        """What workers build from; the token ties it to this file and results group, so a
        worker that outlives a run (loky reuses them) never serves a rewritten file."""
        path = self._source.file.filename
        group = getattr(self, "h5_results_grp", None)
        stat = os.stat(path)
        token = f"{stat.st_dev}:{stat.st_ino}:{self.fingerprint}"
        if group is not None:
            token += f":{group.name}@{group.attrs.get('start_time', '')}"
        return TaskSpec(self.factory, path, self._worker_parameters(), token)

    def _worker_parameters(self) -> str:
        params = dict(self.parameters, source=self._source.name)
        return canonical_json(params)

    # ----------------------------------------------------------------- set-up
    def _create_results_group(self, size: int | None = None) -> h5py.Group:
        """Create and link the results group (rule 4), ``size`` positions per block (default:
        :meth:`positions_per_block`). On a source that can grow (a live series, maxshape None
        on positions) the outputs and flags can grow too (:mod:`.live_session`)."""
        h5 = self._source.file
        parent = self._source.parent
        n_pos = self._source.shape[0]
        size = self.positions_per_block() if size is None else max(1, min(int(size), n_pos))
        resizable = self._source.maxshape[0] is None
        n_blocks = -(-n_pos // size)
        pos = (
            h5[self._source.attrs["Position_Indices"]],
            h5[self._source.attrs["Position_Values"]],
        )
        name = self._next_group_name()
        group = h5py.Group(h5py.h5g.create(h5.id, None))  # unlinked until complete
        spec_cache: dict[tuple, tuple[h5py.Dataset, h5py.Dataset]] = {}
        for out in self._outputs():
            key = (
                out.spec_prefix,
                tuple((d.name, d.units, d.values.tobytes()) for d in out.spec_dims),
            )
            if key not in spec_cache:
                spec_cache[key] = write_ancillary(
                    group, out.spec_prefix, out.spec_dims, spectroscopic=True
                )
            create_main(
                group,
                out.name,
                shape=(n_pos, out.width),
                dtype=out.dtype,
                quantity=out.quantity,
                units=out.units,
                position=pos,
                spectroscopic=spec_cache[key],
                chunks=(size, out.width),
                crash_safe=True,
                maxshape=(None, out.width) if resizable else None,
            )
        if resizable:
            from pyscatter.processes.live_session import create_flags

            create_flags(group, n_blocks)
        else:
            self._create_flags(group, n_blocks)
        attrs = group.attrs
        attrs["tool"] = f"pyscatter.{self.process_name}"
        attrs["process"] = self.process_name
        attrs["parameters"] = self.parameters_json
        attrs["parameters_hash"] = self.parameters_hash
        attrs["source"] = self._source.name
        attrs["source_fingerprint"] = self.fingerprint
        attrs["source_shape"] = self._source.shape
        attrs["positions_per_chunk"] = size
        attrs["n_positions"] = n_pos
        attrs["output_order"] = json.dumps([o.name for o in self._outputs()])
        attrs["versions"] = json.dumps(versions())
        attrs["host"] = socket.gethostname()
        attrs["start_time"] = _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")
        attrs.create("end_time", np.bytes_(b""), dtype=END_TIME_DTYPE)
        attrs["num_source_dsets"] = 1
        attrs["source_000"] = self._source.ref
        if self.request_key is not None:  # see pyscatter.processes.requests
            attrs["request_hash"] = self.request_key
        for key, value in self.parameters.items():  # also flat, for pyUSID-style readers
            if isinstance(value, (int, float, str, bool)):
                attrs[f"param_{key}"] = value
        self._setup_extra(group)
        self._annotate(group, f"{parent.name}/{name}")
        with safety.setup_transaction(h5, unlinked=[group]):  # its outputs: not journaled
            parent[name] = group
            set_default_chain(h5, f"{parent.name}/{name}")
        log.info("created %s", parent[name].name)
        return parent[name]

    @staticmethod
    def _create_flags(group: h5py.Group, n_blocks: int) -> None:
        dcpl = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
        dcpl.set_alloc_time(h5py.h5d.ALLOC_TIME_EARLY)
        dcpl.set_fill_time(h5py.h5d.FILL_TIME_ALLOC)
        dcpl.set_fill_value(np.zeros((), np.uint64))
        h5py.h5d.create(
            group.id,
            FLAGS.encode(),
            h5py.h5t.STD_U64LE,
            h5py.h5s.create_simple((n_blocks,)),
            dcpl=dcpl,
        )

    def _annotate(self, group: h5py.Group, path: str) -> None:
        """NeXus NXdata view of the signal output (``nexus_signal``, default: the first)."""
        outputs = {o.name: o for o in self._outputs()}
        signal = self.nexus_signal or next(iter(outputs))
        errors = next((n for n in (f"{signal}_Sigma", f"{signal}_sigma") if n in outputs), None)
        out = outputs[signal]
        annotate_nxdata(
            group,
            path,
            position_dims=dims_of(self._source, "Position"),
            signal=signal,
            spec_dims=out.spec_dims,
            dtype=np.dtype(out.dtype),
            errors=errors,
            title=f"{self.process_name}: {out.quantity}",
        )

    def _next_group_name(self) -> str:
        taken = [g.name.rsplit("_", 1)[-1] for g in self._candidate_groups()]
        index = max((int(t) for t in taken), default=-1) + 1
        return f"{self.group_prefix}{index:03d}"

    # ----------------------------------------------------------------- run
    def compute(self, override: bool = False) -> h5py.Group:
        """Compute every position not yet complete and return the results group.

        Same parameters on the same source reuse a complete group (nothing is computed) unless
        ``override``; a partial group is resumed. What was done is left in :attr:`summary`.
        The file is locked for the run (one job per file, reentrant within this process).
        """
        path = self._source.file.filename
        with job_lock(path, command=f"{self.process_name} {self.parameters_json}"):
            self.summary = self._compute_locked(override)
        assert self.h5_results_grp is not None  # set by _compute_locked
        return self.h5_results_grp

    def live_session(self, live_block: int | None = None, *, locked: bool = False):
        """A :class:`~pyscatter.processes.live_session.LiveSession`: this process driven block
        by block on the positions of a source that is still being written (live mode).

        ``live_block`` positions per block (default 1); ``locked``: the caller already holds
        :func:`pyscatter.io.safety.job_lock` on the file in this process (a watch), else the
        session takes the job lock until it is closed. See the module for the whole contract.
        """
        from pyscatter.processes.live_session import LiveSession

        return LiveSession(self, live_block=live_block, locked=locked)

    def reuse(self, override: bool = False) -> RunSummary | None:
        """The summary of reusing a complete results group of these parameters, or None."""
        if override:
            return None
        return self._reuse(self._check_for_duplicates()[0])

    def _reuse(self, complete: list[h5py.Group]) -> RunSummary | None:
        if not complete:
            return None
        self.h5_results_grp = complete[-1]
        log.info(
            "%s already holds these results for these parameters: reusing it "
            "(override to recompute)",
            self.h5_results_grp.name,
        )
        n = self._source.shape[0]
        return RunSummary(self.h5_results_grp.name, reused=True, total_positions=n)

    def _compute_locked(self, override: bool) -> RunSummary:
        t0 = time.perf_counter()
        # reads (verifies) every matching group once; override uses neither answer
        complete, partial = ([], []) if override else self._check_for_duplicates()
        reused = None if override else self._reuse(complete)
        if reused is not None:
            return reused
        if self._source.file.mode == "r":
            raise InputError(f"{self._source.file.filename} is open read-only; open it with 'r+'")
        resumed = bool(partial) and not override
        group = partial[-1] if resumed else self._create_results_group()
        if int(group.attrs["n_positions"]) < self._source.shape[0]:  # a live source grew
            from pyscatter.processes.live_session import grow_group

            grow_group(self, group)
        self.h5_results_grp = group
        size = int(group.attrs["positions_per_chunk"])
        n_pos = self._source.shape[0]
        todo = [b for b in self._blocks(n_pos, size) if not self._block_done(group, b)]
        n_todo = sum(stop - start for _, start, stop in todo)
        if resumed:
            log.info("resuming %s: %d of %d positions left", group.name, n_todo, n_pos)
        summary = RunSummary(group.name, resumed=resumed, total_positions=n_pos)
        try:
            self._run(group, todo, summary)
        except KeyboardInterrupt:
            done, total = completion(group)
            log.warning(
                "interrupted: %d of %d positions of %s complete; run again to resume",
                done,
                total,
                group.name,
            )
            raise
        group.attrs.modify(
            "end_time",
            np.bytes_(_dt.datetime.now(_dt.UTC).isoformat(timespec="seconds").encode()),
        )
        safety.fsync(group.file)
        summary.seconds = time.perf_counter() - t0
        return summary

    def _invalid_positions(self) -> np.ndarray | None:
        """Positions the translator marked as never measured (``valid_positions`` false)."""
        valid = self._source.parent.get("valid_positions")
        if valid is None or valid.shape != (self._source.shape[0],):
            return None
        invalid = ~valid[()].astype(bool)
        return invalid if invalid.any() else None

    def _block_arrays(
        self, out: Mapping[str, np.ndarray], start: int, stop: int, invalid: np.ndarray | None
    ) -> list[np.ndarray]:
        """A block's outputs as written: in output order, (n, width) of each output's dtype,
        NaN at positions never measured (``invalid``, see :meth:`_invalid_positions`)."""
        arrays = []
        for o in self._outputs():
            value = np.ascontiguousarray(out[o.name], dtype=o.dtype).reshape(stop - start, o.width)
            if invalid is not None and np.issubdtype(value.dtype, np.floating):
                value[invalid[start:stop]] = np.nan  # never measured (aborted scan)
            arrays.append(value)
        return arrays

    def _block_done(self, group: h5py.Group, block: tuple[int, int, int]) -> bool:
        index, start, stop = block
        flag = int(group[FLAGS][index])
        if flag == 0:
            return False
        data = [group[out.name][start:stop] for out in self._outputs()]
        return flag == block_flag(data)

    def _run(self, group: h5py.Group, todo, summary: RunSummary) -> None:
        from pyscatter import progress

        outputs = self._outputs()
        spans = {i: (start, stop) for i, start, stop in todo}
        path = group.file.filename
        n_total = sum(stop - start for start, stop in spans.values())
        bar = progress.bar(
            n_total, unit="pos", desc=self.process_name, enabled=self.progress, smoothing=0.1
        )
        interrupt = DeferredInterrupt()
        invalid = self._invalid_positions()
        # held for the whole run: a dataset object freed while a write fault unwinds would
        # make HDF5 flush (and fail) again; safety.open_for_writing abandons them instead
        dsets = {o.name: output_for_writing(group, o.name) for o in outputs}  # no chunk cache
        flags = group[FLAGS]

        def write(index: int, out: Mapping[str, np.ndarray]) -> None:  # serial: the I/O thread
            start, stop = spans[index]
            arrays = self._block_arrays(out, start, stop, invalid)
            for o, value in zip(outputs, arrays, strict=True):
                dsets[o.name].write_direct(value, dest_sel=np.s_[start:stop])
            safety.fsync(group.file)
            flags[index] = block_flag(arrays)
            safety.fsync(group.file)
            safety.write_status(
                path,
                group=group.name,
                done=int(np.count_nonzero(flags[()])),
                blocks=int(flags.shape[0]),
                pid=os.getpid(),
            )

        results = None
        try:
            interrupt.install()
            results = run_blocks(
                self.task_spec(),
                todo,
                h5=group.file,
                local=self._local_function() if self._serial() else None,
                n_jobs=self.n_jobs,
                scheduler=self.scheduler,
                cluster=self.cluster,
                read_ahead=self.read_ahead,
                write=write,
            )
            for index, _out in results:  # written
                start, stop = spans[index]
                summary.computed_positions += stop - start
                bar.update(stop - start)
                interrupt.check()  # Ctrl-C takes effect here, between two complete blocks
        finally:
            if results is not None:
                results.close()  # finishes a write under way
            interrupt.restore()
            bar.close()

    # ----------------------------------------------------------------- notebooks
    def test(self, positions: Sequence[int] | slice | None = None) -> dict[str, np.ndarray]:
        """Compute some positions without writing anything (default: the first block)."""
        n = self._source.shape[0]
        if positions is None:
            positions = range(min(n, self.positions_per_block()))
        elif isinstance(positions, slice):
            positions = range(*positions.indices(n))
        positions = [int(p) for p in positions]
        if any(p < 0 or p >= n for p in positions):
            raise InputError(f"positions must lie in [0, {n}); got {positions}")
        func = self._local_function()
        parts = [func(self._source.file, p, p + 1) for p in positions]
        return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def run_on_file(
    path: str | os.PathLike,
    process: type[ScatterProcess],
    *,
    source: str | None = None,
    override: bool = False,
    command: str | None = None,
    **kwargs: Any,
) -> RunSummary:
    """Lock ``path``, repair what a killed job left, open it and run ``process`` on it.

    ``source`` is the path of the source main dataset inside the file; by default the process
    picks its own (see ``process.default_source``).
    """
    path = str(path)
    if not Path(path).is_file():
        raise InputError(f"no such file: {path}")
    require_pyscatter_file(path)  # never repair or write into another program's file
    if not _writable(path):
        return _reuse_read_only(path, process, source, override, kwargs)
    with job_lock(path, command=command):
        repairs = safety.repair(path)
        for line in repairs:
            log.warning("%s: %s", path, line)
        with safety.open_for_writing(path) as h5:
            dset = _source_dataset(h5, path, process, source)
            key = request_hash(process, dset, kwargs)
            quick = None if key is None or override else _quick_reuse(process, dset, key)
            if quick is not None:
                quick.repairs = repairs
                return quick
            proc = process(dset, **kwargs)
            proc.request_key = key
            proc.compute(override=override)
            summary = proc.summary
            assert summary is not None  # set by compute
            summary.repairs = repairs
            return summary


def _quick_reuse(process: type[ScatterProcess], dset: h5py.Dataset, key: str) -> RunSummary | None:
    """The summary of reusing the complete results this very request made, or None."""
    group = find_request(process, dset, key)
    if group is None:
        return None
    log.info(
        "%s already holds these results for this request: reusing it (override to recompute)",
        group.name,
    )
    return RunSummary(group.name, reused=True, total_positions=dset.shape[0])


def _source_dataset(
    h5: h5py.File, path: str, process: type[ScatterProcess], source: str | None
) -> Any:
    """The object at ``source`` in ``h5``, or the process's default source when none is named.

    Raises
    ------
    InputError
        Nothing at ``source`` (the message lists the file's main datasets).
    """
    if not source:
        return process.default_source(h5)
    if source not in h5:
        present = [d.name for d in main_datasets(h5)]
        raise InputError(
            f"{path}: no source {source!r} in the file; its main datasets are: "
            + (", ".join(present) if present else "none")
        )
    return h5[source]


def _writable(path: str) -> bool:
    """Whether this user may write ``path`` and create files beside it (not a read-only mount)."""
    folder = os.path.dirname(os.path.realpath(path)) or "."
    return os.access(path, os.W_OK) and os.access(folder, os.W_OK)


def _reuse_read_only(
    path: str,
    process: type[ScatterProcess],
    source: str | None,
    override: bool,
    kwargs: dict[str, Any],
) -> RunSummary:
    """A file that cannot be written (read-only mount or permissions): reuse complete results."""
    from pyscatter.errors import FileFormatError

    with h5py.File(path, "r") as h5:
        dset = _source_dataset(h5, path, process, source)
        proc = process(dset, **kwargs)
        summary = proc.reuse(override)
    if summary is None:
        raise FileFormatError(
            f"{path} is not writable (read-only file, folder or mount) and holds no complete "
            f"{process.process_name} results for these parameters"
            + (" (--override needs to write)" if override else "")
            + "; work on a copy in a writable folder"
        )
    return summary
