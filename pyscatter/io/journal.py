"""Rule 4 of the crash-safety recipe: the journaled set-up of a results group.

:func:`setup_transaction` makes creating and linking a fully built results group all or
nothing with an undo journal, ``<file>.journal``: every byte range of the file that is not raw
data of an existing dataset is saved before, the journal is deleted after; a process that dies
in between leaves it for :func:`pyscatter.io.safety.repair` to roll back
(:func:`_settle_journal`). Part of :mod:`pyscatter.io.safety`, which re-exports (and documents)
:func:`~pyscatter.io.safety.setup_transaction`.
"""

from __future__ import annotations

import logging
import os
import struct
import zlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from typing import Any

import h5py

from pyscatter.errors import FileFormatError, InputError
from pyscatter.io.durable import _fsync_dir, _pwrite_all, _resolve, _vfd_handle, fsync

__all__ = ["JOURNAL_SUFFIX", "setup_transaction"]

logger = logging.getLogger("pyscatter.io.safety")  # the safety layer's log, as before the split

JOURNAL_SUFFIX = ".journal"

_JOURNAL_MAGIC = b"PSCJRNL1"
_JOURNAL_END = b"PSCJEND1"
_JOURNAL_HEAD = struct.Struct("<8sQQ")  # magic, file size before the transaction, number of ranges
_JOURNAL_RANGE = struct.Struct("<QQ")  # offset, length; followed by the bytes
_JOURNAL_TAIL = struct.Struct("<QI8s")  # length of everything before the tail, its crc32, end magic
_IO_PIECE = 2**20  # bytes read at once: a new group's unlinked outputs can be large


@contextmanager
def setup_transaction(h5file: h5py.File, unlinked: Sequence[h5py.Group] = ()) -> Iterator[None]:
    """Make the body -- creating and linking a fully built results group -- all or nothing.

    An undo journal: before the body runs the file is flushed and fsynced, and every byte range
    that is not raw data of an existing dataset (all metadata; typically KBs) is saved with the
    file size to ``<file>.journal`` (fsynced, and its folder). The datasets of the ``unlinked``
    groups (the group about to be linked, built beforehand: its outputs are allocated early,
    megabytes for a long scan) count as existing: nothing reachable refers to their storage
    before the link, so their bytes need no saving. After the body the file is flushed
    and fsynced and the journal deleted. If the process dies in between, :func:`repair` restores
    the saved ranges and cuts the file back to its saved size: the set-up never happened. Raw data
    of existing datasets is never part of the journal, so the body must only create and link new
    objects (it may write into datasets it created), never write into existing datasets.

    If the body raises, HDF5's state is still consistent (an exception is not a crash): the file
    is flushed and fsynced as it is and the journal removed, then the exception propagates. Should
    that flush fail, the journal is left for :func:`repair` to roll back.

    Parameters
    ----------
    h5file : the file, opened ``"r+"`` with the default (sec2) driver, while this process holds
        :func:`job_lock` on it.

    Raises
    ------
    FileFormatError
        If a journal is already there (:func:`repair` was not called, or transactions are nested).
    InputError
        If the file is read-only or not opened with the sec2 driver.

    Examples
    --------
    >>> import tempfile, os, numpy as np
    >>> from pyscatter.io.safety import job_lock
    >>> path = os.path.join(tempfile.mkdtemp(), "scan.h5")
    >>> with job_lock(path), h5py.File(path, "w") as f:
    ...     f["raw"] = np.arange(4.0)
    ...     group = h5py.Group(h5py.h5g.create(f.id, None))   # built unlinked
    ...     group["result"] = np.zeros(4)
    ...     with setup_transaction(f):
    ...         f["raw-Result_000"] = group                   # one link, journaled
    >>> os.path.exists(path + ".journal")
    False
    """
    fd = _vfd_handle(h5file)
    if h5file.mode != "r+":
        raise InputError(f"setup_transaction needs {h5file.filename} opened for writing")
    path = _resolve(h5file.filename)
    journal = path + JOURNAL_SUFFIX
    if os.path.lexists(journal):
        raise FileFormatError(
            f"an unfinished set-up journal {journal} exists: close the file and call repair() "
            "before opening it (set-up transactions cannot be nested)"
        )
    fsync(h5file)
    size = os.fstat(fd).st_size
    ranges = _complement(_raw_extents(h5file, unlinked), size)
    try:
        _write_journal(journal, fd, size, ranges)
    except BaseException:  # e.g. a full disk: the file was not touched, drop the partial journal
        with suppress(FileNotFoundError):
            os.unlink(journal)
        raise
    try:
        yield
    except BaseException:
        try:
            _commit(h5file, journal)
        except Exception:
            logger.exception(
                "could not flush %s after a failed set-up; the journal %s stays "
                "for repair() to roll back",
                path,
                journal,
            )
        raise
    _commit(h5file, journal)


def _commit(h5file: h5py.File, journal: str) -> None:
    fsync(h5file)
    os.unlink(journal)
    _fsync_dir(journal)


def _raw_extents(h5file: h5py.File, unlinked: Sequence[h5py.Group] = ()) -> list[tuple[int, int]]:
    """(offset, length) of the stored raw data of every dataset reachable in the file or in
    one of the ``unlinked`` groups."""
    extents: list[tuple[int, int]] = []

    def visit(name: str, obj: Any) -> None:
        if isinstance(obj, h5py.Dataset):
            extents.extend(_dataset_extents(obj.id))

    h5file.visititems(visit)
    for group in unlinked:
        group.visititems(visit)
    return extents


def _dataset_extents(dsid: Any) -> list[tuple[int, int]]:
    dcpl = dsid.get_create_plist()
    layout = dcpl.get_layout()
    if layout == h5py.h5d.CONTIGUOUS:
        offset = dsid.get_offset()
        if dcpl.get_external_count() > 0 or offset is None:  # data elsewhere, or not allocated
            return []
        return [(offset, dsid.get_storage_size())]
    if layout == h5py.h5d.CHUNKED:
        out: list[tuple[int, int]] = []
        if hasattr(dsid, "chunk_iter"):  # O(n); get_chunk_info(i) is O(i) per call
            dsid.chunk_iter(lambda info: out.append((info.byte_offset, info.size)))
        else:  # pragma: no cover - h5py < 3.8 or HDF5 < 1.14
            for i in range(dsid.get_num_chunks()):
                info = dsid.get_chunk_info(i)
                if info.byte_offset is not None:
                    out.append((info.byte_offset, info.size))
        return out
    return []  # compact: the data sits in the object header (metadata); virtual: in other files


def _complement(extents: list[tuple[int, int]], size: int) -> list[tuple[int, int]]:
    """The (offset, length) ranges of ``[0, size)`` not covered by ``extents``."""
    ranges = []
    cursor = 0
    for offset, length in sorted(extents):
        if offset > cursor:
            ranges.append((cursor, min(offset, size) - cursor))
        cursor = max(cursor, offset + length)
        if cursor >= size:
            break
    if cursor < size:
        ranges.append((cursor, size - cursor))
    return [(o, n) for o, n in ranges if n > 0]


def _write_journal(journal: str, fd: int, size: int, ranges: list[tuple[int, int]]) -> None:
    """Header, (offset, length, bytes) records, then a length + crc32 trailer; fsynced."""
    crc = 0
    written = 0
    with open(journal, "wb") as out:

        def put(chunk: bytes) -> None:
            nonlocal crc, written
            out.write(chunk)
            crc = zlib.crc32(chunk, crc)
            written += len(chunk)

        put(_JOURNAL_HEAD.pack(_JOURNAL_MAGIC, size, len(ranges)))
        for offset, length in ranges:
            put(_JOURNAL_RANGE.pack(offset, length))
            done = 0
            while done < length:
                piece = os.pread(fd, min(_IO_PIECE, length - done), offset + done)
                if not piece:
                    raise OSError(f"short read at byte {offset + done} of the file being journaled")
                put(piece)
                done += len(piece)
        out.write(_JOURNAL_TAIL.pack(written, crc, _JOURNAL_END))
        out.flush()
        try:
            os.fsync(out.fileno())
        except OSError as err:
            raise OSError(err.errno, err.strerror, journal) from err
    _fsync_dir(journal)


def _parse_journal(journal: str) -> tuple[int, list[tuple[int, int, int]], bytes] | str:
    """(size, [(offset, start in data, length)], data), or the reason the journal is unusable."""
    with open(journal, "rb") as fh:
        data = fh.read()
    if not (data.startswith(_JOURNAL_MAGIC) or _JOURNAL_MAGIC.startswith(data)):
        raise FileFormatError(
            f"{journal} is not a pyscatter set-up journal; move it away and run again"
        )
    if len(data) < _JOURNAL_HEAD.size + _JOURNAL_TAIL.size:
        return f"only {len(data)} bytes long"
    length, crc, end = _JOURNAL_TAIL.unpack_from(data, len(data) - _JOURNAL_TAIL.size)
    if end != _JOURNAL_END or length != len(data) - _JOURNAL_TAIL.size:
        return "its trailer is missing"
    if zlib.crc32(data[:length]) != crc:
        return "its checksum does not match"
    _, size, n_ranges = _JOURNAL_HEAD.unpack_from(data, 0)
    pos = _JOURNAL_HEAD.size
    records = []
    for _ in range(n_ranges):
        if pos + _JOURNAL_RANGE.size > length:
            return "its records are inconsistent"
        offset, count = _JOURNAL_RANGE.unpack_from(data, pos)
        pos += _JOURNAL_RANGE.size
        records.append((offset, pos, count))
        pos += count
    if pos != length:
        return "its records are inconsistent"
    return size, records, data


def _settle_journal(fd: int, path: str, journal: str) -> str:
    """Roll the file back from a complete journal, or discard an incomplete one."""
    parsed = _parse_journal(journal)
    if isinstance(parsed, str):
        os.unlink(journal)
        _fsync_dir(journal)
        return (
            f"Discarded the incomplete set-up journal {journal} ({parsed}): the writer stopped "
            f"while writing it, before {path} was changed."
        )
    size, records, data = parsed
    before = os.fstat(fd).st_size
    view = memoryview(data)
    for offset, start, count in records:
        _pwrite_all(fd, view[start : start + count], offset)
    os.ftruncate(fd, size)
    os.fsync(fd)
    os.unlink(journal)
    _fsync_dir(journal)
    restored = sum(count for _, _, count in records)
    return (
        f"Rolled back an interrupted set-up in {path}: restored {len(records)} metadata ranges "
        f"({restored} bytes) and returned the file from {before} to its {size} bytes before the "
        "set-up; raw data was not touched and the results group being added is gone."
    )
