"""Reading a pyscatter file, also while a job writes it (rule 8 of the crash-safety recipe).

``h5py.File(path, "r")`` takes HDF5's file lock: it fails with errno 11 while a job writes the
file, and while a notebook holds it that way no job can start on the file. :func:`open` opens
read-only *without* HDF5's lock, retries transient errors, and says which positions of a results
group are verified complete (their chunk's completion flag matches the data read back): only
those are results; the rest read as NaN (the fill value of every float result), never as what an
unwritten block holds. A group that grows with a live source (``pyscatter watch``) reads the
same way, at whatever size it has when read.

Examples
--------
>>> import pyscatter                                         # doctest: +SKIP
>>> with pyscatter.open("scan.h5") as f:                     # doctest: +SKIP
...     group = f.results("AzimuthalIntegration")[-1]
...     ok = f.verified(group)                               # bool per position
...     intensity = f.read(group, "Intensity")               # NaN where not verified
"""

from __future__ import annotations

import builtins
import errno
import logging
import os
import time
from typing import Any

import h5py
import numpy as np

from pyscatter.errors import FileFormatError
from pyscatter.io.record import FLAGS, verified_positions
from pyscatter.io.results import all_results, find_results
from pyscatter.io.safety import LockInfo, lock_holder, read_status

__all__ = ["LiveFile", "open"]

logger = logging.getLogger(__name__)

#: Tries and pause between them for an open or a read that fails while a writer flushes.
ATTEMPTS = 5
PAUSE_S = 0.2


class LiveFile(h5py.File):
    """An HDF5 file opened read-only without HDF5's file lock; see :func:`open`.

    It is an :class:`h5py.File` (index it, visit it, hand it to any h5py code) with a few
    helpers for results groups. Hold it briefly while a job writes: what it shows is the state
    at the moment each dataset is read.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        # Through a Python file object (h5py's "fileobj" driver): no HDF5 file lock, and never
        # HDF5's shared handle of a file this process already has open, whose cached metadata
        # would predate what the writer added since (an "addr overflow" error).
        #: the file's path (``filename`` names HDF5's file object)
        self.path = os.fspath(path)
        self._handle = builtins.open(path, "rb")  # noqa: SIM115 - closed in close()
        try:
            super().__init__(self._handle, "r")
        except BaseException:
            self._handle.close()
            raise

    def close(self) -> None:
        """Close the file and its handle."""
        try:
            super().close()
        finally:
            self._handle.close()

    @property
    def writer(self) -> LockInfo | None:
        """The pyscatter job writing this file now (pid, host, command), or None."""
        return lock_holder(self.path)

    @property
    def status(self) -> dict[str, Any] | None:
        """The writer's last progress record (``<file>.status.json``), or None."""
        return read_status(self.path)

    def results(self, process: str | None = None) -> list[h5py.Group]:
        """Every results group with a completion record, in file order.

        ``process`` keeps those of one process, by recorded name (``"AzimuthalIntegration"``)
        or pipeline step name (``"integrate"``); see :mod:`pyscatter.io.results`.
        """

        def find() -> list[h5py.Group]:
            groups = all_results(self) if process is None else find_results(self, process)
            return [g for g in groups if FLAGS in g]

        return _retry(find, self.path)

    def verified(self, group: h5py.Group | str) -> np.ndarray:
        """Boolean per position: its chunk is complete and its flag matches the data."""
        group = self[group] if isinstance(group, str) else group
        return _retry(lambda: verified_positions(group), f"{self.path}:{group.name}")

    def read(self, group: h5py.Group | str, name: str) -> np.ndarray:
        """Dataset ``name`` of a results group, positions not verified complete set to NaN.

        Float results only carry NaN; other types come back as a masked array (masked where
        not verified).
        """
        group = self[group] if isinstance(group, str) else group

        def both() -> tuple[np.ndarray, np.ndarray]:
            values = group[name][()]  # a group that grows (live) may have grown since
            return values, verified_positions(group, values.shape[0])

        values, ok = _retry(both, f"{self.path}:{group.name}/{name}")
        if np.issubdtype(values.dtype, np.floating):
            values[~ok] = np.nan
            return values
        mask = np.broadcast_to(~ok.reshape((-1,) + (1,) * (values.ndim - 1)), values.shape)
        return np.ma.MaskedArray(values, mask=mask)


def open(path: str | os.PathLike[str]) -> LiveFile:  # noqa: A001 - pyscatter.open, like io.open
    """Open a pyscatter file for reading, whether or not a job is writing it.

    Read-only and without HDF5's file lock, so it neither fails while a job writes (``errno =
    11``) nor keeps a job from starting; an open that fails while the writer is flushing is
    retried a few times. Trust only positions :meth:`LiveFile.verified` says are complete
    (:meth:`LiveFile.read` masks the others); use it as a context manager and hold it briefly.

    Parameters
    ----------
    path : the HDF5 file.

    Returns
    -------
    LiveFile
        An :class:`h5py.File` with ``results``, ``verified``, ``read``, ``writer``, ``status``.

    Raises
    ------
    FileFormatError
        No such file, or not an HDF5 file (after the retries).
    """
    import hdf5plugin  # noqa: F401  (filters of compressed raw data)

    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileFormatError(f"no such file: {path}")
    return _retry(lambda: LiveFile(path), path)


def _retry(read: Any, what: str) -> Any:
    """``read()``, tried again after a pause when HDF5 fails (a writer mid-flush)."""
    for attempt in range(ATTEMPTS):
        try:
            return read()
        except FileNotFoundError:
            raise FileFormatError(f"no such file: {what}") from None
        except (OSError, RuntimeError, KeyError) as err:
            if isinstance(err, OSError) and err.errno in (errno.EACCES, errno.EPERM):
                raise FileFormatError(f"{what}: {err.strerror}") from None
            if attempt == ATTEMPTS - 1:
                raise FileFormatError(
                    f"{what}: cannot be read ({' '.join(str(err).split())}), "
                    f"also after {ATTEMPTS} tries"
                ) from err
            logger.debug("reading %s failed (%s); trying again", what, err)
            time.sleep(PAUSE_S)
    raise AssertionError("unreachable")  # pragma: no cover
