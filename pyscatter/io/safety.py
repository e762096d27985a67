"""File safety for every pyscatter writer: one job per file, repair before opening, barriers.

This module implements the recipe of ``docs/crash_safety.md`` (measured with h5py 3.16 / HDF5 2.0);
the rule numbers are the recipe's:

- rule 1, :func:`job_lock` -- one job per file, an ``fcntl.flock`` on ``<file>.lock`` held for
  the whole job; the kernel drops it when the holder dies, so a stale lock file never blocks;
- rule 3, :func:`repair` -- before opening, undo an interrupted set-up (:func:`setup_transaction`),
  re-extend a file cut short (only one an interrupted pyscatter job left: any other truncated
  file is refused untouched), raise a stale end-of-allocation address, clear the status flags a
  killed ``libver="latest"`` writer leaves; each repair is reported as one sentence;
- rule 4, :func:`setup_transaction` -- an undo journal around linking a fully built results group
  (:mod:`pyscatter.io.journal`);
- rule 5, :func:`fsync` -- the barrier (``flush`` only hands data to the kernel; HDF5 never
  fsyncs; :mod:`pyscatter.io.durable`), and :func:`chunk_flag` / :func:`verify_flag` -- the completion record
  ``(1 << 32) | crc32(data)``;
- rule 8, :func:`write_status` / :func:`read_status` -- progress visible from outside the writer;
- write faults (a full disk): :func:`open_for_writing` and :func:`abandon`, from
  :mod:`pyscatter.io.faults`.

HDF5's own file lock is never bypassed here: a file that another program holds open is reported
busy (:class:`~pyscatter.errors.FileBusyError`), never repaired under its feet.

Linux/POSIX only (``fcntl.flock``); network file systems were not measured.
"""

from __future__ import annotations

import dataclasses
import datetime
import fcntl
import getpass
import json
import logging
import os
import shlex
import socket
import struct
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import numpy as np

from pyscatter.errors import FileBusyError, FileFormatError
from pyscatter.io.durable import (  # noqa: F401  (_fsync_dir: pyscatter.io.raw)
    _fsync_dir,
    _pwrite_all,
    _resolve,
    fsync,
)
from pyscatter.io.faults import (  # noqa: F401  (re-exported: part of this module's interface)
    abandon,
    busy_message,
    is_abandoned,
    open_for_writing,
    write_failure,
)
from pyscatter.io.journal import JOURNAL_SUFFIX, _settle_journal, setup_transaction
from pyscatter.io.record import block_flag
from pyscatter.io.superblock import _lookup3, _read_superblock  # noqa: F401 (_lookup3: tests)

__all__ = [
    "LockInfo",
    "abandon",
    "open_for_writing",
    "write_failure",
    "chunk_flag",
    "fsync",
    "job_lock",
    "lock_holder",
    "read_status",
    "repair",
    "setup_transaction",
    "verify_flag",
    "write_status",
]

logger = logging.getLogger(__name__)

LOCK_SUFFIX = ".lock"
STATUS_SUFFIX = ".status.json"

#: How long job_lock keeps retrying a busy lock before reporting it (a monitoring
#: :func:`lock_holder` call holds a shared lock for microseconds).
_BUSY_GRACE_S = 0.3

# Paths (resolved) whose job lock this process holds, so that repair() knows it may proceed.
_HELD: dict[str, LockInfo] = {}
# Paths whose lock file, when this process took it, still held the record of a pyscatter job that
# did not end cleanly (killed, power loss): the evidence repair() needs to extend a cut file.
_INTERRUPTED: dict[str, LockInfo] = {}
# Status files that could not be written (warned about once).
_STATUS_FAILED: set[str] = set()

#: At most this many bytes missing at the end of a file are put back by repair(): more than an
#: interrupted pyscatter job leaves (results space is allocated and written at set-up, frames
#: are made durable every 16 frames), less than a copy cut short usually lacks.
MAX_EXTEND_BYTES = 256 * 2**20
#: ... and at most this fraction of the recorded end-of-file.
MAX_EXTEND_FRACTION = 0.5


# --------------------------------------------------------------------------------------------
# Rule 1: one job per file
# --------------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class LockInfo:
    """Who holds a job lock, as written into ``<file>.lock`` by the holder.

    A field is ``None`` when the lock file could not be read (the holder is writing it right now).

    Attributes
    ----------
    pid, host, user : the holding process.
    since : ISO 8601 local time the lock was taken.
    command : what the holder is running (its command line unless it said otherwise).
    lock_path : the lock file.
    """

    pid: int | None
    host: str | None
    user: str | None
    since: str | None
    command: str | None
    lock_path: str = ""

    def describe(self) -> str:
        """One line naming the holder, e.g. ``pid 4242 on node7 (user ana) since … running …``."""
        if self.pid is None:
            return "an unknown holder (its lock file is empty or being written)"
        text = f"pid {self.pid} on {self.host} (user {self.user}) since {self.since}"
        return text + (f", running: {self.command}" if self.command else "")


@contextmanager
def job_lock(h5_path: str | os.PathLike[str], *, command: str | None = None) -> Iterator[LockInfo]:
    """Hold the one-job-per-file lock on ``h5_path`` for the body of the ``with`` block.

    Takes ``fcntl.flock(LOCK_EX | LOCK_NB)`` on ``<file>.lock`` (beside the file, after resolving
    symbolic links) and writes the holder's pid, host, user, start time and command into it as
    JSON. The kernel releases the lock when the holder exits or is killed, so a lock file left by a
    killed job never blocks. On exit the lock file is deleted (safely: a competitor that opened the
    old file notices it was unlinked and retries).

    A second ``job_lock`` on the same file is refused -- from another process or from this one.

    Parameters
    ----------
    h5_path : path of the HDF5 file (it need not exist yet).
    command : what this job is, for the message another job gets; default: this command line.

    Yields
    ------
    LockInfo
        What was written into the lock file.

    Raises
    ------
    FileBusyError
        If another job holds the lock; the message names the file and the holder.

    Examples
    --------
    >>> import tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "scan.h5")
    >>> with job_lock(path, command="example") as info:
    ...     lock_holder(path).pid == os.getpid()
    True
    >>> lock_holder(path) is None
    True
    """
    path = _resolve(h5_path)
    lock_path = path + LOCK_SUFFIX
    fd = _acquire(path, lock_path)
    keep = False
    try:
        info = LockInfo(
            pid=os.getpid(),
            host=socket.gethostname(),
            user=_user_name(),
            since=_now(),
            command=command if command is not None else shlex.join(sys.argv),
            lock_path=lock_path,
        )
        payload = json.dumps(dataclasses.asdict(info)).encode()
        if _writable_fd(fd):
            try:  # durable: after a power loss the record says a job was interrupted here
                os.pwrite(fd, payload, 0)
                os.ftruncate(fd, len(payload))
                os.fsync(fd)
            except OSError as err:  # a full disk: the flock alone is the lock
                logger.warning("could not record this job in %s: %s", lock_path, err.strerror)
        _HELD[path] = info
        try:
            yield info
        except BaseException as err:
            if write_failure(err) is not None or is_abandoned(path):
                keep = True  # the file may be left as by a kill: the record is the evidence
            raise
    finally:
        _HELD.pop(path, None)
        _INTERRUPTED.pop(path, None)
        if _writable_fd(fd) and not keep:  # not another user's file we could not remove
            with suppress(FileNotFoundError):
                os.unlink(lock_path)  # still holding the lock: nobody can be using this inode
        os.close(fd)  # releases the flock


def lock_holder(h5_path: str | os.PathLike[str]) -> LockInfo | None:
    """Who holds the job lock on ``h5_path`` now, or ``None`` if nobody does.

    Never blocks: it tries a non-blocking shared flock on the lock file; if that succeeds nobody
    holds the job lock (a lock file left by a killed job is ignored).
    """
    lock_path = _resolve(h5_path) + LOCK_SUFFIX
    try:
        fd = os.open(lock_path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return _read_lock_info(fd, lock_path)
        return None
    finally:
        os.close(fd)  # also drops our shared lock


def _acquire(path: str, lock_path: str) -> int:
    """Open and exclusively flock ``lock_path``; return the descriptor or raise FileBusyError."""
    deadline = time.monotonic() + _BUSY_GRACE_S
    while True:
        fd, writable = _open_lock_file(path, lock_path)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if time.monotonic() < deadline:
                os.close(fd)
                time.sleep(0.02)
                continue
            holder = _read_lock_info(fd, lock_path)
            os.close(fd)
            mine = " (this process)" if holder.pid == os.getpid() else ""
            raise FileBusyError(
                f"{path} is busy: another pyscatter job holds {lock_path}: "
                f"{holder.describe()}{mine}. Wait for it to finish or stop it; "
                "a job that was killed releases the lock by itself."
            ) from None
        except BaseException:
            os.close(fd)
            raise
        # The previous holder may have unlinked the file between our open and our flock.
        try:
            on_disk = os.stat(lock_path)
        except FileNotFoundError:
            os.close(fd)
            continue
        mine_stat = os.fstat(fd)
        if (on_disk.st_dev, on_disk.st_ino) != (mine_stat.st_dev, mine_stat.st_ino):
            os.close(fd)
            continue
        if not writable:  # a stale lock file we cannot write: remove it (we hold its lock)
            try:
                os.unlink(lock_path)
            except PermissionError:  # another user's, in a sticky folder such as /tmp
                logger.warning(
                    "%s was left by another user and only they can remove it; its lock is free, "
                    "so this job holds it, but cannot record itself in it",
                    lock_path,
                )
                return fd
            except BaseException:
                os.close(fd)
                raise
            os.close(fd)
            continue
        previous = _read_lock_info(fd, lock_path, attempts=1)
        if previous.pid is not None:  # a record left by a job that did not end cleanly
            _INTERRUPTED[path] = previous
        return fd


def _open_lock_file(path: str, lock_path: str) -> tuple[int, bool]:
    """(descriptor, writable) of the lock file, created if needed; a clear error otherwise."""
    try:
        return os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644), True
    except (PermissionError, OSError) as err:
        if not os.path.exists(lock_path):
            folder = os.path.dirname(lock_path) or "."
            raise FileFormatError(
                f"{path}: cannot create its job lock {lock_path}: {err.strerror} (the folder "
                f"{folder} is not writable for this user). pyscatter writes a lock beside "
                "every file it writes: work on a copy in a writable folder"
            ) from None
        if not isinstance(err, PermissionError):
            raise
    # another user's lock file: its lock can still be tested
    return os.open(lock_path, os.O_RDONLY | os.O_CLOEXEC), False


def _read_lock_info(fd: int, lock_path: str, attempts: int = 5) -> LockInfo:
    """Parse the holder's JSON; retry briefly while the holder is still writing it."""
    for attempt in range(attempts):
        raw = os.pread(fd, 65536, 0)
        try:
            fields = json.loads(raw.decode())
            return LockInfo(
                pid=fields.get("pid"),
                host=fields.get("host"),
                user=fields.get("user"),
                since=fields.get("since"),
                command=fields.get("command"),
                lock_path=lock_path,
            )
        except (ValueError, AttributeError):
            if attempt < attempts - 1:
                time.sleep(0.02)
    return LockInfo(None, None, None, None, None, lock_path)


# --------------------------------------------------------------------------------------------
# Rule 3: repair before opening
# --------------------------------------------------------------------------------------------
def repair(h5_path: str | os.PathLike[str]) -> list[str]:
    """Bring a file left by a killed or interrupted writer back to a state HDF5 opens.

    Call it before opening the file with h5py, while holding :func:`job_lock` (if this process
    does not hold it, ``repair`` takes it for its own duration). In order:

    1. an interrupted :func:`setup_transaction` journal is rolled back (the file returns to its
       exact bytes before the set-up), or discarded if the journal itself is incomplete (then the
       file had not been touched yet);
    2. if the superblock's end-of-file address lies beyond the file's size, the file is extended
       with zeros up to it (never truncated) -- only if a pyscatter job was interrupted on it
       (its record left in the lock file, or a ``.partial`` translation) and less is missing
       than such a job can leave (:data:`MAX_EXTEND_BYTES`, :data:`MAX_EXTEND_FRACTION`); any
       other cut file (a copy cut short, another program's file) is refused, untouched;
    3. if the file is longer than that end-of-allocation address, the address is raised to the
       file size (never lowered) -- else HDF5 fails with ``addr overflow`` on data written after
       the last complete flush;
    4. file-consistency status flags of a version 2/3 superblock (left by a ``libver="latest"``
       or SWMR writer that did not close the file) are cleared.

    Every repair needs an exclusive flock on the file itself, i.e. no other program may have it
    open with HDF5's file locking; a file that needs nothing is not touched.

    Parameters
    ----------
    h5_path : the HDF5 file.

    Returns
    -------
    list of str
        One human sentence per repair done; empty if the file needed none.

    Raises
    ------
    FileFormatError
        If the file does not exist, is not HDF5, has a corrupt superblock, is truncated but not by
        an interrupted pyscatter job, or needs a repair but is not writable.
    FileBusyError
        If another job holds the job lock, or the file needs a repair but another program has it
        open.
    """
    path = _resolve(h5_path)
    if path in _HELD:
        return _repair_locked(path)
    with job_lock(path, command="pyscatter repair"):
        return _repair_locked(path)


def _repair_locked(path: str) -> list[str]:
    if not os.path.isfile(path):
        raise FileFormatError(f"cannot repair {path}: no such file")
    try:
        fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
        writable = True
    except PermissionError:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        writable = False
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            exclusive = True
        except BlockingIOError:
            exclusive = False

        def allow(what: str) -> None:
            if not exclusive:
                raise FileBusyError(
                    f"{path} needs a repair ({what}) but another program has it open "
                    "(its HDF5 file lock is held); close it there and run again"
                )
            if not writable:
                raise FileFormatError(f"{path} needs a repair ({what}) but is not writable")

        messages = []
        journal = path + JOURNAL_SUFFIX
        if os.path.lexists(journal):
            allow("an interrupted set-up journal")
            messages.append(_settle_journal(fd, path, journal))
        ours = path in _INTERRUPTED or os.path.basename(path).endswith(".partial")
        messages.extend(_repair_superblock(fd, path, allow, ours=ours))
        return messages
    finally:
        os.close(fd)  # releases our flock before anyone (HDF5) opens the file


def _repair_superblock(
    fd: int, path: str, allow: Callable[[str], None], *, ours: bool
) -> list[str]:
    """Steps 2-4 of :func:`repair` on the superblock of the open file ``fd``.

    A file shorter than its superblock says is extended only if it is ``ours`` (a pyscatter job
    was interrupted on it) and the missing part is one such a job can leave; any other cut file
    (a copy or download cut short, another program's file) is refused untouched.
    """
    size = os.fstat(fd).st_size
    sb = _read_superblock(fd, path, size)
    messages = []
    shift = sb.address - sb.base_address  # HDF5 moves addresses when the superblock moved
    eof = sb.eof_address + shift
    raw = bytearray(sb.raw)
    if eof > size:
        _check_extendable(path, size, eof, ours)
        allow("the file is shorter than its superblock says")
        os.ftruncate(fd, eof)  # extends with zeros
        messages.append(
            f"Extended {path} with {eof - size} zero bytes to the end-of-file address its "
            f"superblock records ({eof} bytes): the end of the file had not reached the disk "
            "when its writer stopped."
        )
    elif size > eof:
        allow("the file is longer than its end-of-allocation address")
        sb.put_address(raw, sb.eof_pos, size - shift)
        messages.append(
            f"Raised the end-of-allocation address in the superblock of {path} from {eof} to the "
            f"file size, {size} bytes: data written after the last complete flush had reached the "
            "disk before the superblock."
        )
    if sb.version >= 2 and sb.flags:
        allow("file-consistency flags are set")
        raw[sb.flags_pos] = 0
        messages.append(
            f"Cleared the file-consistency flags (0x{sb.flags:02x}) in the superblock of {path}, "
            "left by a writer that did not close it; HDF5 refuses to open a file with them set."
        )
    if raw != sb.raw:
        if sb.checksum_pos is not None:
            raw[sb.checksum_pos :] = struct.pack("<I", _lookup3(bytes(raw[: sb.checksum_pos])))
        _pwrite_all(fd, bytes(raw), sb.address)
    if messages:
        os.fsync(fd)
    return messages


def _check_extendable(path: str, size: int, eof: int, ours: bool) -> None:
    missing = eof - size
    if ours and missing <= min(MAX_EXTEND_BYTES, MAX_EXTEND_FRACTION * eof):
        return
    why = (
        f"{missing} bytes are missing, more than an interrupted pyscatter job leaves"
        if ours
        else "no pyscatter job was interrupted on it (no job record beside it)"
    )
    raise FileFormatError(
        f"{path} is truncated: {size} bytes, but its HDF5 superblock records {eof}; {why}. "
        "It was left untouched: copy or download it again"
    )


# --------------------------------------------------------------------------------------------
# Rules 5 and 6: barrier and completion flags
# --------------------------------------------------------------------------------------------
def chunk_flag(data: np.ndarray) -> int:
    """The completion record of a written chunk: ``(1 << 32) | zlib.crc32(data)``.

    ``data`` is hashed as its C-contiguous bytes, in its own dtype, so compute the flag from the
    array exactly as it is written to (and read back from) the file. Never 0, so a flag dataset
    filled with 0 means "nothing complete".

    Examples
    --------
    >>> hex(chunk_flag(np.zeros(4, dtype=np.float32)))
    '0x1ecbb4b55'
    """
    return block_flag([data])


def verify_flag(flag: int, data: np.ndarray) -> bool:
    """True if ``flag`` (as stored, e.g. a ``np.uint64``) is the :func:`chunk_flag` of ``data``."""
    return int(flag) == chunk_flag(data)


# --------------------------------------------------------------------------------------------
# Rule 8: progress seen from outside
# --------------------------------------------------------------------------------------------
def write_status(h5_path: str | os.PathLike[str], **fields: Any) -> Path:
    """Atomically replace ``<file>.status.json`` with ``fields`` (plus pid, host, updated).

    Written to a temporary file, fsynced, then renamed over the old one, so a reader never sees a
    half-written status. A failure to write it (a full disk) is logged once and never raised: the
    status is for onlookers, the job goes on. numpy scalars and arrays are converted to JSON numbers and lists.

    Returns
    -------
    Path
        The status file.

    Examples
    --------
    >>> import tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "scan.h5")
    >>> _ = write_status(path, done=np.int64(3), total=10)
    >>> read_status(path)["done"]
    3
    """
    status = _resolve(h5_path) + STATUS_SUFFIX
    record = {"pid": os.getpid(), "host": socket.gethostname(), "updated": _now()}
    record.update(fields)
    text = json.dumps(record, default=_json_default, indent=1)
    tmp = f"{status}.{os.getpid()}.tmp"
    try:
        with open(tmp, "w", encoding="utf-8") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, status)
    except OSError as err:  # progress for onlookers only: never worth stopping the job
        with suppress(OSError):
            os.unlink(tmp)
        if status not in _STATUS_FAILED:
            logger.warning("could not update %s (%s); the job goes on", status, err.strerror)
        _STATUS_FAILED.add(status)
    return Path(status)


def read_status(h5_path: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The last :func:`write_status` of ``h5_path``, or ``None`` if there is none or it is unreadable."""
    status = _resolve(h5_path) + STATUS_SUFFIX
    try:
        with open(status, encoding="utf-8") as fh:
            record = json.load(fh)
    except (FileNotFoundError, ValueError):
        return None
    return record if isinstance(record, dict) else None


# --------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------
def _now() -> str:
    return datetime.datetime.now().astimezone().isoformat(timespec="seconds")


def _user_name() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry, e.g. in some containers
        return str(os.getuid())


def _writable_fd(fd: int) -> bool:
    return fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_ACCMODE != os.O_RDONLY


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    raise TypeError(f"write_status cannot store {type(obj).__name__} values as JSON")
