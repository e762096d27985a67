"""Where blocks of positions are computed: in this process, joblib workers or a dask cluster.

This module is imported by workers, so it stays light: no pyUSID, no matplotlib. A task is
``(spec, block, start, stop)``: the spec is small and hashable (file path, dataset paths, the
parameters as canonical JSON, and the ``module:function`` that builds the worker's compute
function). Each worker process builds that function once per spec (an integrator, a sparse
matrix, a fit model) and caches it; a task ships only indices, never frames. Workers read
their inputs from the file themselves, read-only and without HDF5's lock (the one writer holds
it); only the parent writes.

A block function may come in two stages, ``read`` (the I/O) and ``compute`` (the arithmetic),
like :class:`FrameBlocks`. A serial run then gives the file to one I/O thread
(:class:`ReadAhead`): it reads and decodes the next block while this one is computed, and
writes each computed block (data, barrier, flag, barrier) while the next is computed, so every
h5py call of the run happens in that thread and the computation never waits for h5py's lock.
Frames stored as bitshuffle-LZ4 chunks (one frame per chunk, as detectors and ``--link``
translations write them) are read as stored bytes and decoded by the bitshuffle library of
hdf5plugin through ctypes (:func:`stored_decoder`, from :mod:`pyscatter.io.stored_chunks`),
which releases the GIL and h5py's lock and decodes into the reused buffer (HDF5's filter decodes
into fresh memory, then copies); the kernels run in numpy and scipy with the GIL released, so
the two overlap on two cores. A virtual ``Raw_Data`` (``--link vds``) is read from its source
files the same way (:class:`pyscatter.io.virtual.VirtualReader`), not through HDF5's
virtual-dataset reading, which is ~20 times slower.
"""

from __future__ import annotations

import importlib
import json
import logging
import math
import os
import time
from collections import deque
from collections.abc import Callable, Generator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import h5py
import numpy as np

from pyscatter.errors import InputError
from pyscatter.io.integrity import (
    _checksums,
    _chunk_checksums,
    frame_crc,
    read_verified,
    stored_crc,
)
from pyscatter.io.stored_chunks import (  # noqa: F401 - the names processes imported from here
    _bshuf_decompress_lz4,
    read_chunk,
    stored_decoder,
)
from pyscatter.io.virtual import VirtualReader

log = logging.getLogger(__name__)

BlockFunction = Callable[[h5py.File, int, int], dict[str, np.ndarray]]
BlockWriter = Callable[[int, dict[str, np.ndarray]], None]

CLUSTERS = ("slurm", "pbs", "sge", "lsf")


@dataclass(frozen=True)
class TaskSpec:
    """Everything a worker needs to build its compute function once.

    ``factory`` is ``"module:function"``; the function takes this spec and returns a callable
    ``f(h5_file, start, stop) -> {name: array of shape (stop - start, ...)}``.
    """

    factory: str
    path: str
    parameters: str  # canonical JSON
    token: str = ""  # which file and run: a worker never reuses a function built for another

    @property
    def params(self) -> dict[str, Any]:
        return json.loads(self.parameters)


class FrameReader:
    """The I/O stage of a frame process: blocks of raw frames into reused buffers.

    ``read(h5, start, stop, slot)`` reads frames [start, stop) of ``source`` into the buffer of
    ``slot`` (:class:`ReadAhead` gives each block in flight its own) and returns them shaped
    (n, rows, cols) together with whatever ``read_extra(h5, start, stop)`` returns (e.g.
    monitor values: every read of the file belongs to this stage, so the computation never
    waits for h5py). HDF5 reads and decompresses with the GIL released. The frames come from
    their stored chunks (:func:`read_stored`), or from the source files of a virtual dataset
    (:class:`~pyscatter.io.virtual.VirtualReader`, whose source files it holds), else from HDF5
    (:func:`~pyscatter.io.integrity.read_verified`); every path checks each frame's checksum.
    """

    def __init__(
        self,
        source: str,
        shape: tuple[int, int],
        read_extra: Callable[[h5py.File, int, int], Any] | None = None,
    ) -> None:
        self.source = source
        self.shape = (int(shape[0]), int(shape[1]))
        self.read_extra = read_extra
        self._buffers: dict[int, np.ndarray] = {}  # slot -> buffer of the largest block seen
        self._virtual = VirtualReader()  # a virtual Raw_Data: its sources, resolved once

    def read(self, h5: h5py.File, start: int, stop: int, slot: int = 0) -> tuple[np.ndarray, Any]:
        dset = h5[self.source]
        n = stop - start
        buf = self._buffers.get(slot)
        if buf is None or buf.shape[0] < n or buf.dtype != dset.dtype:
            buf = self._buffers[slot] = np.empty((n, dset.shape[1]), dtype=dset.dtype)
        frames = buf[:n]
        if not (
            read_stored(dset, frames, start, stop)
            or self._virtual.read(h5, dset, frames, start, stop)
        ):
            read_verified(dset, frames, start, stop)  # checks each frame's crc32
        extra = None if self.read_extra is None else self.read_extra(h5, start, stop)
        return frames.reshape((n, *self.shape)), extra


def read_stored(dset: h5py.Dataset, out: np.ndarray, start: int, stop: int) -> bool:
    """Rows ``[start, stop)`` of ``dset`` into ``out`` from their stored chunks, or False.

    Each chunk is read as stored (``read_direct_chunk``, a short call under h5py's lock),
    checked against ``Chunk_Checksums`` where recorded and decoded by :func:`stored_decoder`
    outside the lock; decoded frames are checked against ``Frame_Checksums`` where recorded.
    False (``out`` then holds anything) whenever that is not possible or a check fails: the
    caller reads the block with :func:`~pyscatter.io.integrity.read_verified`, which reads and
    checks the same bytes and reports a bad frame by its position.
    """
    decode = stored_decoder(dset)
    if decode is None:
        return False
    sums = _checksums(dset)
    chunk_sums = _chunk_checksums(dset)
    expected = None if chunk_sums is None else chunk_sums[start:stop]
    for k in range(stop - start):
        chunk = read_chunk(dset, start + k)
        if chunk is None:
            return False
        if expected is not None and (
            stored_crc(chunk) != int(expected[k, 0]) or int(expected[k, 1]) != 0
        ):
            return False
        if not decode(chunk, out[k]):
            return False
    if sums is not None:
        want = sums[start:stop]
        if any(frame_crc(out[k]) != int(want[k]) for k in range(stop - start)):
            return False
    return True


class FrameBlocks:
    """A block function over the frames of an image main dataset, in two stages.

    ``read`` is the :class:`FrameReader`'s; ``compute(data, h5, start, stop)`` calls
    ``process(frames, extra)`` on what a reader of the same source returned. Calling the
    object does both, as any block function; a serial run overlaps them (:class:`ReadAhead`).
    ``process`` must not keep or return views of ``frames``: the buffer is read into again.
    """

    def __init__(
        self, reader: FrameReader, process: Callable[[np.ndarray, Any], dict[str, np.ndarray]]
    ) -> None:
        self.reader = reader
        self.read = reader.read
        self.process = process

    def compute(
        self, data: tuple[np.ndarray, Any], h5: h5py.File, start: int, stop: int
    ) -> dict[str, np.ndarray]:
        frames, extra = data
        return self.process(frames, extra)

    def __call__(self, h5: h5py.File, start: int, stop: int) -> dict[str, np.ndarray]:
        return self.compute(self.read(h5, start, stop), h5, start, stop)


class ReadAhead:
    """The I/O thread of a serial run: reads blocks in order, up to ``depth`` blocks ahead of
    their computation, and writes each computed block with ``write``.

    Every call of ``read`` and ``write`` runs in one thread, in the order they were asked for
    (a single-thread executor): the read of block ``k + depth`` queues behind the write of
    block ``k``, and the writes keep the blocks' order, so each write is whole (data, barrier,
    flag, barrier: docs/crash_safety.md, rule 5) before the next begins. The caller's thread
    only computes, and never waits for h5py's lock while the I/O thread reads. ``depth``
    buffers of one block are held. (Starting the reads before the integrator is built was
    slower: the two threads' first touches of fresh memory contend.)

    Without ``write`` the caller writes the blocks it is given; it must do so before asking
    for the next (the next read is started only then: it would hold h5py's lock meanwhile).
    """

    def __init__(
        self,
        read: Callable[..., Any],
        h5: h5py.File,
        blocks: Sequence[tuple[int, int, int]],
        depth: int = 2,
        write: BlockWriter | None = None,
    ) -> None:
        self.blocks = list(blocks)
        self._read, self._h5, self._depth = read, h5, max(1, int(depth))
        self._write = write
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="pyscatter-read")
        self._pending: deque[Future] = deque()
        self._writes: deque[tuple[int, dict[str, np.ndarray], Future]] = deque()
        self._failed = False  # a write failed: the later ones are not attempted
        self._next = 0
        self._fill()

    def _fill(self) -> None:
        while len(self._pending) < self._depth and self._next < len(self.blocks):
            _, start, stop = self.blocks[self._next]
            slot = self._next % self._depth  # free: its previous block has been computed
            self._pending.append(self._pool.submit(self._read, self._h5, start, stop, slot))
            self._next += 1

    def results(self, compute: Callable[..., dict[str, np.ndarray]]):
        """Yield ``(index, compute(data, h5, start, stop))`` for every block, in order; with
        ``write``, each once it is written (the write of the next is then under way)."""
        try:
            for index, start, stop in self.blocks:
                data = self._pending.popleft().result()
                out = compute(data, self._h5, start, stop)
                if self._write is None:
                    yield index, out
                    # only now: a read under way would hold h5py's lock while the caller writes
                    self._fill()
                    continue
                self._writes.append((index, out, self._pool.submit(self._write_once, index, out)))
                self._fill()
                # the previous write was queued before the read just awaited: it is done
                while len(self._writes) > 1 or self._writes[0][2].done():
                    yield self._written()
                    if not self._writes:
                        break
            while self._writes:
                yield self._written()
        finally:
            self.close()

    def _write_once(self, index: int, out: dict[str, np.ndarray]) -> bool:
        """In the I/O thread: write a block unless an earlier write failed (a full disk: the
        file is given up, nothing more is written)."""
        if self._failed:
            return False
        try:
            assert self._write is not None
            self._write(index, out)
        except BaseException:
            self._failed = True
            raise
        return True

    def _written(self) -> tuple[int, dict[str, np.ndarray]]:
        index, out, future = self._writes.popleft()
        future.result()  # a write error is raised here, in the caller's thread
        return index, out

    def close(self) -> None:
        """Cancel the reads not started; finish the writes asked for (a Ctrl-C meanwhile is
        raised once they are done) and wait for a read under way (at most one block)."""
        for future in self._pending:
            future.cancel()
        self._pending.clear()
        error: BaseException | None = None
        interrupted = False
        while self._writes:
            future = self._writes[0][2]
            try:
                error = error or future.exception()
            except KeyboardInterrupt:  # a second Ctrl-C: the write under way still ends whole
                interrupted = True
                continue
            self._writes.popleft()
        self._pool.shutdown(wait=True)
        if error is not None:
            raise error
        if interrupted:
            raise KeyboardInterrupt


MAX_MEM_MB = 1 << 20
"""Largest ``max_mem_mb`` (1 TiB): a memory budget above it is a typo."""


def check_max_mem_mb(max_mem_mb: Any) -> float:
    """``max_mem_mb`` as a float, or an InputError naming ``--max-mem-mb``.

    The one rule of the option (the command line, pipelines and processes check it here).

    Raises
    ------
    InputError
        Not a number, not finite (nan, inf), not positive or above :data:`MAX_MEM_MB`.
    """
    try:
        value = float(max_mem_mb)
    except (TypeError, ValueError):
        value = float("nan")
    if isinstance(max_mem_mb, bool) or not math.isfinite(value) or not 0 < value <= MAX_MEM_MB:
        raise InputError(
            f"--max-mem-mb (max_mem_mb) must be a positive, finite number of MiB, at most "
            f"{MAX_MEM_MB}; got {max_mem_mb!r}"
        )
    return value


def positions_per_block(
    max_mem_mb: float,
    bytes_per_position: int,
    n_positions: int,
    *,
    input_bytes_per_position: int | None = None,
    block_input_mb: float | None = None,
) -> int:
    """Positions in one block: as many as ``max_mem_mb`` holds, at most all of them.

    ``bytes_per_position`` is what one position costs a worker while its block is computed
    (read buffers, working copies, results); ``block_input_mb`` caps the raw input of a block
    (``input_bytes_per_position`` each) where larger blocks gain nothing.

    Raises
    ------
    InputError
        ``max_mem_mb`` invalid (:func:`check_max_mem_mb`) or too small for one position.

    Examples
    --------
    >>> positions_per_block(64, 8 * 2**20, 100)
    8
    """
    budget = check_max_mem_mb(max_mem_mb) * 2**20
    need = max(1, int(bytes_per_position))
    if budget < need:
        raise InputError(
            f"--max-mem-mb (max_mem_mb) {max_mem_mb:g} MiB is less than one position needs: "
            f"{need / 2**20:.3f} MiB (its read buffers, working copies and results); give at "
            f"least {math.ceil(need / 2**20 * 100) / 100:g}"
        )
    n = int(budget // need)
    if block_input_mb is not None and input_bytes_per_position:
        n = min(n, int(block_input_mb * 2**20 // input_bytes_per_position))
    return max(1, min(n, int(n_positions)))


_BUILT: dict[TaskSpec, BlockFunction] = {}


def build(spec: TaskSpec, h5: h5py.File | None = None) -> BlockFunction:
    """The block function of ``spec``, built once per process (heavy objects live in it).

    ``h5`` is the file to read set-up inputs (mask, dark…) from; workers use their own
    read-only handle.
    """
    func = _BUILT.get(spec)
    if func is None:
        module, _, name = spec.factory.partition(":")
        factory = getattr(importlib.import_module(module), name)
        if len(_BUILT) >= 8:
            _BUILT.clear()
        func = _BUILT[spec] = factory(spec, h5 if h5 is not None else _reader(spec.path))
        release_memory()
    return func


def release_memory() -> None:
    """Hand memory freed after a build back to the system (glibc keeps pyFAI's set-up arrays,
    ~175 MiB for an Eiger 1M, resident otherwise); does nothing off glibc."""
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.malloc_trim(0)
    except (OSError, AttributeError):
        pass


_READ_HANDLES: dict[str, h5py.File] = {}


def _reader(path: str) -> h5py.File:
    """A read-only handle for workers, opened once per worker and file.

    ``locking=False``: the parent holds the file open for writing with HDF5's lock; workers
    only read inputs that are never written during the job (docs/crash_safety.md, rule 8).
    """
    h5 = _READ_HANDLES.get(path)
    if h5 is None or not h5.id.valid:
        import hdf5plugin  # noqa: F401  (filters for compressed raw data)

        h5 = h5py.File(path, "r", locking=False)
        _READ_HANDLES[path] = h5
    return h5


def compute_block(spec: TaskSpec, block: int, start: int, stop: int, retries: int = 3):
    """Worker entry point: compute one block; returns ``(block, results, seconds)``."""
    func = build(spec)
    t0 = time.perf_counter()
    for attempt in range(retries):
        try:
            out = func(_reader(spec.path), start, stop)
            break
        except OSError:  # a transient read error while the writer flushes: reopen and retry
            if attempt == retries - 1:
                raise
            _READ_HANDLES.pop(spec.path, None)
            time.sleep(0.05 * (attempt + 1))
    return block, out, time.perf_counter() - t0


def run_blocks(
    spec: TaskSpec,
    blocks: Sequence[tuple[int, int, int]],
    *,
    h5: h5py.File | None = None,
    local: BlockFunction | None = None,
    n_jobs: int = 1,
    scheduler: str | None = None,
    cluster: dict[str, Any] | None = None,
    read_ahead: bool = True,
    write: BlockWriter | None = None,
) -> Generator[tuple[int, dict[str, np.ndarray]], None, None]:
    """Compute ``blocks`` (``(index, start, stop)``) and yield ``(index, results)`` as they finish.

    Parameters
    ----------
    spec : TaskSpec
    blocks : sequence of (int, int, int)
    h5 : h5py.File, optional
        The parent's open file, used for serial computation in this process.
    local : callable, optional
        The block function already built in this process, used for serial computation.
    n_jobs : int
        joblib worker processes (loky) when no scheduler is given; 1 computes here.
    scheduler : str, optional
        ``"local"`` for a dask.distributed ``LocalCluster`` with ``n_jobs`` workers, TLS with a
        per-run key on loopback (:func:`start_local_cluster`), or a scheduler address such as
        ``"tls://host:8786"`` (TLS credentials from dask's configuration).
    cluster : dict, optional
        A dask-jobqueue cluster: ``{"kind": "slurm", "cores": 8, "memory": "16GB",
        "walltime": "01:00:00", "jobs": 4, ...}``, TLS and no dashboard by default (see
        :func:`make_batch_cluster`).
    read_ahead : bool
        Serial runs of a two-stage block function (:class:`FrameBlocks`): read the next block
        in a thread while this one is computed (:class:`ReadAhead`). The results are the same
        either way.
    write : callable, optional
        ``write(index, results)`` of every block, in this process, before the block is yielded:
        in the I/O thread of a serial run with read-ahead (while the next block is computed),
        else in this thread. The caller closes the generator when it stops early (Ctrl-C, an
        error): that finishes the write under way.
    """
    if cluster is not None:
        results = _run_dask(spec, blocks, _jobqueue_client(cluster))
    elif scheduler is not None:
        results = _run_dask(spec, blocks, _dask_client(scheduler, n_jobs))
    elif n_jobs == 1:
        func = local if local is not None else build(spec, h5)
        h5 = h5 if h5 is not None else _reader(spec.path)
        blocks = list(blocks)
        if read_ahead and len(blocks) > 1 and isinstance(func, FrameBlocks):
            yield from ReadAhead(func.read, h5, blocks, write=write).results(func.compute)
            return
        results = ((index, func(h5, start, stop)) for index, start, stop in blocks)
    else:
        results = _run_joblib(spec, blocks, n_jobs)
    try:
        for index, out in results:
            if write is not None:
                write(index, out)
            yield index, out
    finally:
        results.close()  # as ``yield from`` would: a dask client is closed now, not when freed


def _run_joblib(spec, blocks, n_jobs):
    """joblib's loky workers, each with one OpenMP/BLAS thread (``inner_max_num_threads``):
    one single-threaded worker per core, as the dask workers; the parent builds the block
    function first, so the workers load their matrices from the matrix cache."""
    from joblib import Parallel, delayed, parallel_config

    if n_jobs < 1 and n_jobs != -1:
        raise InputError(f"n_jobs must be a positive number of workers or -1; got {n_jobs}")
    tasks = (delayed(compute_block)(spec, *b) for b in blocks)
    with parallel_config(backend="loky", inner_max_num_threads=1):
        results = Parallel(n_jobs=n_jobs, return_as="generator_unordered")(tasks)
    for index, out, seconds in results:
        log.debug("block %d computed in a worker in %.3f s", index, seconds)
        yield index, out


def temporary_security():
    """A TLS key and self-signed certificate made for this run only, held in memory.

    distributed's :meth:`~distributed.security.Security.temporary`: the scheduler, the workers
    and this process's client all present it and accept nothing else, so only the processes
    this run started can join or submit work.
    """
    from distributed.security import Security

    try:
        return Security.temporary()
    except ImportError as err:
        raise InputError(
            "an encrypted dask cluster needs the 'cryptography' package: "
            "pip install 'pyscatter[dask]'"
        ) from err


#: No HTTP routes on the scheduler and workers: no dashboard, no /info, /json or metrics pages
#: (served without encryption or authentication to anyone who can reach the port).
_NO_HTTP: dict[str, list[str]] = {
    "distributed.scheduler.http.routes": [],
    "distributed.worker.http.routes": [],
}


def start_local_cluster(n_workers: int):
    """The dask ``LocalCluster`` of a ``scheduler="local"`` run.

    Single-threaded worker processes; every connection is TLS with a per-run
    :func:`temporary_security` key (``tls://127.0.0.1``): another user of the machine can
    neither submit work nor join as a worker. No dashboard or other HTTP page is served.
    """
    import dask
    from dask.distributed import LocalCluster

    security = temporary_security()
    with dask.config.set(_NO_HTTP):
        return LocalCluster(
            n_workers=max(1, int(n_workers)),
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            protocol="tls://",
            security=security,
            dashboard_address="127.0.0.1:0",  # a port of its own (none taken), no routes
            scheduler_kwargs={"dashboard": False},
            silence_logs=logging.ERROR,
        )


def _dask_client(scheduler: str, n_jobs: int):
    from dask.distributed import Client

    if scheduler == "local":
        local = start_local_cluster(n_jobs)
        return Client(local, security=local.security), local
    if "://" not in scheduler:
        raise InputError(
            f"scheduler {scheduler!r} is neither 'local' nor an address like 'tls://host:8786'"
        )
    if scheduler.startswith("tcp://"):
        log.warning(
            "scheduler %s is unencrypted and unauthenticated: whoever reaches it can run code "
            "as its workers' user; use a tls:// scheduler (docs: clusters and memory)",
            scheduler,
        )
    # TLS credentials for an address come from dask's configuration (distributed.comm.tls)
    return Client(scheduler, timeout="30s"), None


#: Cluster options that choose the TLS credentials (all three, or none for a per-run key).
TLS_OPTIONS = {"tls_ca_file": "--tls-ca", "tls_cert": "--tls-cert", "tls_key": "--tls-key"}


def _batch_security(options: dict[str, Any]):
    """The Security of a batch cluster: the user's certificate files or a per-run key."""
    from distributed.security import Security

    files = {k: options.pop(k, None) for k in TLS_OPTIONS}
    given = {k: os.path.expanduser(str(v)) for k, v in files.items() if v is not None}
    if not given:
        return temporary_security(), True
    if len(given) < len(files):
        missing = ", ".join(TLS_OPTIONS[k] for k in files if k not in given)
        raise InputError(
            f"TLS certificate files need {', '.join(TLS_OPTIONS.values())}: missing {missing}"
        )
    for key, value in given.items():
        if not os.path.isfile(value):
            raise InputError(f"{TLS_OPTIONS[key]} {value!r}: no such file")
    ca, cert, key = given["tls_ca_file"], given["tls_cert"], given["tls_key"]
    security = Security(
        tls_ca_file=ca,
        tls_client_cert=cert,
        tls_client_key=key,
        tls_scheduler_cert=cert,
        tls_scheduler_key=key,
        tls_worker_cert=cert,
        tls_worker_key=key,
        require_encryption=True,
    )
    return security, False


def _routable_address() -> str:
    """The address this machine reaches other hosts from: where batch nodes connect back."""
    import ipaddress
    import warnings

    from distributed import utils

    with warnings.catch_warnings():  # distributed warns, then falls back to 127.0.0.1
        warnings.simplefilter("ignore", RuntimeWarning)
        host = utils.get_ip()
    if ipaddress.ip_address(host).is_loopback:
        raise InputError(
            f"--cluster: no address of this machine the batch nodes could reach was found (only "
            f"{host}); give the network interface with --interface (e.g. ib0, eth0)"
        )
    return host


def _scheduler_options(options: dict[str, Any], dashboard: Any) -> dict[str, Any]:
    """Where the batch cluster's scheduler listens: one interface, dashboard only if asked."""
    scheduler = dict(options.pop("scheduler_options", None) or {})
    if "host" not in scheduler and "interface" not in scheduler and not options.get("interface"):
        scheduler["host"] = _routable_address()
    if dashboard in (None, False):
        scheduler.setdefault("dashboard_address", "127.0.0.1:0")  # a free port, no routes
        scheduler.setdefault("dashboard", False)
    else:
        address = "127.0.0.1:8787" if dashboard is True else str(dashboard)
        scheduler.setdefault("dashboard_address", address)
        scheduler.setdefault("dashboard", True)
    return scheduler


def make_batch_cluster(cluster: dict[str, Any]):
    """A dask-jobqueue cluster (not yet scaled) and the number of batch jobs to start.

    ``cluster`` holds ``kind`` (slurm, pbs, sge, lsf), ``jobs`` and any keyword of the
    dask-jobqueue cluster class (``cores``, ``memory``, ``walltime``, ``queue``, ``account``,
    ``interface``, ``shared_temp_directory``…), and:

    - ``tls_ca_file``, ``tls_cert``, ``tls_key``: PEM files (CA, certificate, its key) used by
      the scheduler, workers and client; without them a per-run key
      (:func:`temporary_security`) is written, readable by its owner only, to
      ``shared_temp_directory`` (default ``~/.cache/pyscatter/dask-tls``), which the batch
      nodes must see;
    - ``dashboard``: ``True`` for a dashboard on ``127.0.0.1:8787`` (reach it with an ssh
      tunnel) or an address; default none (no HTTP pages at all).

    The connections are TLS (``tls://``). The scheduler listens on one address: the
    ``interface`` given (e.g. ``ib0``, also the workers'), ``scheduler_options={"host": …}``,
    or by default the address this machine reaches other hosts from.
    """
    try:
        import dask_jobqueue
    except ImportError as err:  # pragma: no cover - depends on the extra
        raise InputError(
            "a batch-system cluster needs dask-jobqueue: pip install 'pyscatter[dask]'"
        ) from err
    import dask

    options = dict(cluster)
    kind = str(options.pop("kind", "slurm")).lower()
    if kind not in CLUSTERS:
        raise InputError(f"unsupported cluster {kind!r}; expected one of {', '.join(CLUSTERS)}")
    jobs = int(options.pop("jobs", 1))
    if jobs < 1:
        raise InputError(f"jobs must be at least 1; got {jobs}")
    cls = getattr(dask_jobqueue, f"{kind.upper()}Cluster")
    # one single-threaded worker process per core: h5py serialises reads and pyFAI's CSR engine
    # must not be shared between threads (docs/design.md, performance facts)
    if "cores" in options:
        options.setdefault("processes", int(options["cores"]))
    dashboard = options.pop("dashboard", None)
    security, temporary = _batch_security(options)
    if temporary and options.get("shared_temp_directory") is None:
        private = os.path.join(os.path.expanduser("~"), ".cache", "pyscatter", "dask-tls")
        os.makedirs(private, mode=0o700, exist_ok=True)
        options["shared_temp_directory"] = private
    options["security"] = security
    options["protocol"] = "tls://"
    options["scheduler_options"] = _scheduler_options(options, dashboard)
    if dashboard in (None, False):  # the workers' own HTTP servers: loopback of their node
        extra = ["--no-dashboard", "--dashboard-address", "127.0.0.1:0"]
        options["worker_extra_args"] = [*(options.get("worker_extra_args") or ()), *extra]
    http = {} if dashboard not in (None, False) else _NO_HTTP
    try:
        with dask.config.set(http):
            batch = cls(**options)
    except (TypeError, ValueError) as err:
        raise InputError(f"{kind} cluster options {options}: {err}") from err
    return batch, jobs


def _jobqueue_client(cluster: dict[str, Any]):
    from dask.distributed import Client

    batch, jobs = make_batch_cluster(cluster)
    batch.scale(jobs=jobs)
    return Client(batch, security=batch.security), batch


def _run_dask(spec, blocks, client_and_cluster):
    from dask.distributed import as_completed

    client, owned = client_and_cluster
    try:
        n_workers = max(1, len(client.scheduler_info().get("workers", {})) or 1)
        pending = list(blocks)
        in_flight = as_completed()
        # a bounded window of tasks keeps results from piling up in memory
        for _ in range(min(len(pending), 2 * n_workers + 2)):
            in_flight.add(client.submit(compute_block, spec, *pending.pop(0), pure=False))
        for future in in_flight:
            index, out, _seconds = future.result()
            future.release()
            if pending:
                in_flight.add(client.submit(compute_block, spec, *pending.pop(0), pure=False))
            yield index, out
    finally:
        client.close()
        if owned is not None:
            owned.close()
