"""Making writes durable: the fsync barrier of an open HDF5 file, of a folder, full writes.

The low-level pieces of the crash-safety layer (:mod:`pyscatter.io.safety`, which re-exports and
documents the rule-5 barrier :func:`~pyscatter.io.safety.fsync`): ``h5py.File.flush`` only hands
data to the kernel, so every barrier here ends in ``os.fsync``; a create, rename or unlink is
durable only once its folder is synced.
"""

from __future__ import annotations

import os

import h5py

from pyscatter.errors import InputError
from pyscatter.io.faults import write_failure

__all__ = ["fsync"]


def fsync(h5file: h5py.File) -> None:
    """Flush ``h5file`` and fsync its file descriptor: the barrier of rule 5.

    ``h5py.File.flush`` only hands the data to the kernel; this makes it survive a power loss.

    Raises
    ------
    InputError
        If the file was not opened with the default ``sec2`` driver (no descriptor to sync).
    """
    fd = _vfd_handle(h5file)
    try:
        h5file.flush()
        os.fsync(fd)
    except (OSError, RuntimeError) as err:  # name the file: HDF5's flush error may not
        found = write_failure(err)
        if found is None:
            raise
        raise OSError(found[0], os.strerror(found[0]), h5file.filename) from err


def _resolve(path: str | os.PathLike[str]) -> str:
    """Absolute path with symbolic links resolved: one lock per file, however it is named."""
    return os.path.realpath(os.fspath(path))


def _vfd_handle(h5file: h5py.File) -> int:
    if h5file.driver != "sec2":
        raise InputError(
            f"{h5file.filename} is opened with the {h5file.driver!r} driver; pyscatter writers "
            "need the default 'sec2' driver (a file descriptor to fsync)"
        )
    return int(h5file.id.get_vfd_handle())


def _fsync_dir(path: str) -> None:
    """Make a create, rename or unlink of ``path`` durable."""
    folder = os.path.dirname(path) or "."
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    except OSError as err:
        raise OSError(err.errno, err.strerror, folder) from err
    finally:
        os.close(fd)


def _pwrite_all(fd: int, data: bytes | memoryview, offset: int) -> None:
    view = memoryview(data)
    while view:
        n = os.pwrite(fd, view, offset)
        view, offset = view[n:], offset + n
