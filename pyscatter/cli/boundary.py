"""The command line's error boundary: every failure becomes one line and a documented exit code.

Exit codes (also in ``docs/cli.md``):

===== ==========================================================================================
0     success
1     a file problem: missing, not HDF5, corrupt or truncated, busy (another job or program holds
      it), not readable or writable, an output that exists
2     bad usage or parameters
3     a write failed (disk full, quota, file size limit, I/O error): completed work is kept; free
      space (or fix the device) and run the same command again to resume
4     an internal error (a bug in pyscatter or a library): ``--debug`` shows the traceback
130   interrupted (Ctrl-C): completed work is kept, the same command resumes
===== ==========================================================================================

A write fault can leave HDF5 unable to close the file (its last flush fails again): HDF5 then
crashes when Python frees the file's objects or exits (a segmentation fault). :func:`finish`
therefore ends the process without handing those objects back to HDF5 when a file opened for
writing is still open after the error -- the kernel closes the file and drops the job lock, and
the next run repairs and resumes it, exactly as after a kill.
"""

from __future__ import annotations

import errno
import logging
import os
import sys

from pyscatter.errors import FileFormatError, InputError, PyscatterError

OK, FILE_PROBLEM, USAGE, WRITE_FAILED, INTERNAL, INTERRUPTED = 0, 1, 2, 3, 4, 130


def classify(err: BaseException, command: str) -> tuple[int, str]:
    """The exit code and the one-line message for ``err`` raised by ``pyscatter COMMAND``."""
    if isinstance(err, KeyboardInterrupt):
        return INTERRUPTED, (
            "pyscatter: interrupted; completed work is kept, run the same command to resume"
        )
    cause = _write_fault(err)
    if cause is not None:
        return WRITE_FAILED, f"pyscatter {command}: {cause}"
    if isinstance(err, InputError) and not isinstance(err, FileFormatError):
        return USAGE, f"pyscatter {command}: {one_line(err)}"
    if isinstance(err, (PyscatterError, OSError)):
        return FILE_PROBLEM, f"pyscatter {command}: {_file_text(err)}"
    return INTERNAL, (
        f"pyscatter {command}: internal error: {type(err).__name__}: {one_line(err)} "
        "(run with --debug for the traceback, and please report it)"
    )


def one_line(err: BaseException | str) -> str:
    """The message on one line (HDF5's messages span several), at most 600 characters."""
    text = " ".join(str(err).split())
    return text if len(text) <= 600 else text[:597] + "..."


def _write_fault(err: BaseException) -> str | None:
    """'could not write FILE: cause …' if ``err`` (or what it arose from) is a failed write."""
    if isinstance(err, PyscatterError):
        return None
    from pyscatter.io.faults import write_failure

    found = write_failure(err)
    if found is None:
        return None
    number, filename = found
    where = f"could not write {filename}" if filename else "a write failed"
    return (
        f"{where}: {os.strerror(number)} ({errno.errorcode.get(number, number)}); completed "
        "work is kept: free space (or fix the device) and run the same command again to resume"
    )


def _file_text(err: BaseException) -> str:
    if isinstance(err, OSError) and not isinstance(err, PyscatterError):
        from pyscatter.io.faults import busy_message, busy_path

        busy = busy_path(err)
        if busy is not None:
            return busy_message(busy or None)
        if err.filename and err.strerror:
            return f"{err.filename}: {err.strerror}"
    return one_line(err)


def quiet_write_faults_in_finalisers(unraisable) -> None:
    """A :data:`sys.unraisablehook`: a failed write inside an h5py finaliser is not news.

    With a full disk, HDF5 also fails to write an object header when h5py frees a dataset
    object; Python can only print that as "Exception ignored in ...", a traceback. The write
    fault surfaces anyway at the next flush, as the one error line; other reports pass through.
    """
    from pyscatter.io.faults import write_failure

    if unraisable.exc_value is not None and write_failure(unraisable.exc_value) is not None:
        logging.getLogger("pyscatter").debug("ignored in a finaliser: %s", unraisable.exc_value)
        return
    sys.__unraisablehook__(unraisable)


def quiet_write_faults_in_excepthook(kind, value, tb) -> None:
    """A :data:`sys.excepthook` doing the same (Cython finalisers print through it first)."""
    from pyscatter.io.faults import write_failure

    if value is not None and write_failure(value) is not None:
        logging.getLogger("pyscatter").debug("ignored in a finaliser: %s", value)
        return
    sys.__excepthook__(kind, value, tb)


def hdf5_left_open() -> bool:
    """Whether an HDF5 file opened for writing is still open (its close failed)."""
    if "h5py" not in sys.modules:  # nothing was opened
        return False
    import h5py

    try:
        for fid in h5py.h5f.get_obj_ids(types=h5py.h5f.OBJ_FILE):
            if fid.get_intent() & h5py.h5f.ACC_RDWR:
                return True
    except Exception:  # noqa: BLE001 - a file HDF5 cannot even describe is a broken one
        return True
    return False


def finish(code: int, error: BaseException | None = None) -> int:
    """Return ``code``; or exit now with it if a write fault left HDF5 a file it cannot close.

    That is: a file was given up (:func:`pyscatter.io.faults.abandon`), or the command failed
    on a write and a file opened for writing is still open. Any other open file (a caller's
    own, when ``main`` runs inside another program) never makes this exit.
    """
    if code == OK or error is None:
        return code
    from pyscatter.io import faults

    if not faults._ABANDONED and not (faults.write_failure(error) is not None and hdf5_left_open()):
        return code
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
