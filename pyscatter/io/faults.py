"""Write faults -- a full disk, a quota, a file size limit, a failing device -- for writers.

When a write fails for good, HDF5 cannot close the file either: every close flushes again and
fails, and freeing the file's objects afterwards (as an exception unwinds, or at exit) crashes
the process with a segmentation fault. A writer therefore opens its file with
:func:`open_for_writing`, which on a write fault :func:`abandon` s the file: Python never hands
its objects back to HDF5, the kernel closes it when the process ends, and the file is what a
killed job leaves -- which the next run repairs and resumes (``pyscatter.io.safety``).
"""

from __future__ import annotations

import errno
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager, suppress

import h5py

from pyscatter.errors import FileBusyError, FileFormatError

__all__ = ["abandon", "busy_message", "is_abandoned", "open_for_writing", "write_failure"]

# Files given up after a write fault (resolved paths).
_ABANDONED: set[str] = set()


def is_abandoned(path: str | os.PathLike[str]) -> bool:
    """Whether this process gave ``path`` up after a write fault (see :func:`abandon`)."""
    return os.path.realpath(os.fspath(path)) in _ABANDONED


#: errno values that mean "the data could not be written".
WRITE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EIO})

# HDF5's error text: "... file write failed: time = …, filename = '…', …, errno = 28, …"
_H5_FILENAME = re.compile(r"filename = '([^']*)'")
_H5_ERRNO = re.compile(r"errno = (\d+)")
_H5_LOCK = re.compile(r"unable to lock file", re.IGNORECASE)


def write_failure(err: BaseException) -> tuple[int, str | None] | None:
    """``(errno, file name or None)`` if ``err`` is, or arose from, a failed write; else None.

    Recognises Python's ``OSError`` (ENOSPC, EDQUOT, EFBIG, EIO) and the ``OSError`` or
    ``RuntimeError`` h5py raises when HDF5's own write, flush, truncate or close fails (HDF5
    puts the errno and the file name into its message).
    """
    seen: set[int] = set()
    item: BaseException | None = err
    while item is not None and id(item) not in seen:
        seen.add(id(item))
        number = item.errno if isinstance(item, OSError) else None
        text = str(item)
        match = _H5_ERRNO.search(text)
        if match:
            number = int(match.group(1))
        if number in WRITE_ERRNOS:
            name = _H5_FILENAME.search(text)
            filename = name.group(1) if name else getattr(item, "filename", None)
            return int(number), (os.fspath(filename) if filename else None)
        item = item.__cause__ or item.__context__
    return None


def abandon(h5file: h5py.File | h5py.h5f.FileID) -> None:
    """Give up a file after a write fault: Python never hands its objects back to HDF5.

    When a write fails for good (a full disk), HDF5 cannot close the file either: every close
    flushes again, fails, and leaves the library in a state where freeing the file's objects --
    when an exception unwinds, or at exit -- crashes the process (a segmentation fault). This
    marks every open object of the file as locked, so freeing it does nothing; the kernel closes
    the file when the process ends. The file is then exactly what a killed job leaves, which the
    next run repairs and resumes (and the job's lock record is kept as the evidence).
    """
    fid = h5file.id if isinstance(h5file, h5py.File) else h5file
    with suppress(Exception):
        _ABANDONED.add(
            os.path.realpath(fid.name.decode() if isinstance(fid.name, bytes) else fid.name)
        )
    with suppress(Exception):
        for oid in h5py.h5f.get_obj_ids(fid):
            oid.locked = True
    with suppress(Exception):
        fid.locked = True


@contextmanager
def open_for_writing(path: str | os.PathLike[str]) -> Iterator[h5py.File]:
    """``h5py.File(path, "r+")`` for a job holding :func:`job_lock`: busy and write faults handled.

    - HDF5's lock refusing the file (another program, such as a notebook, has it open) becomes
      :class:`~pyscatter.errors.FileBusyError` naming the file;
    - a write fault in the body, or while closing, :func:`abandon` s the file (no crash, the next
      run resumes) and propagates; any other error closes the file normally first.
    """
    path = os.fspath(path)
    try:
        h5 = h5py.File(path, "r+")
    except OSError as err:
        if err.errno == errno.EAGAIN or _H5_LOCK.search(str(err)) or "already open" in str(err):
            raise FileBusyError(busy_message(path)) from None
        if err.errno in (errno.EACCES, errno.EROFS, errno.EPERM):
            raise FileFormatError(f"{path} is not writable: {err.strerror}") from None
        raise
    try:
        yield h5
    except BaseException as err:
        if write_failure(err) is not None:
            abandon(h5)
        else:
            _close(h5)
        raise
    _close(h5)


def _close(h5: h5py.File) -> None:
    try:
        h5.close()
    except BaseException:
        abandon(h5)
        raise


def busy_path(err: OSError) -> str | None:
    """The file HDF5's own lock refused (``unable to lock file``), "" if it names none, else None."""
    text = str(err)
    if not (_H5_LOCK.search(text) or (err.errno == errno.EAGAIN and "lock" in text)):
        return None
    name = _H5_FILENAME.search(text)
    return name.group(1) if name else os.fspath(err.filename or "")


def busy_message(path: str | os.PathLike[str] | None) -> str:
    """What to say when HDF5's own lock refuses a file another program holds open."""
    return (
        f"{path or 'the file'} is busy: another program (a notebook, a viewer or a job) has it "
        "open with HDF5's file locking; close it there and run again (to read a file while a "
        "job writes it, use pyscatter.open(path))"
    )
