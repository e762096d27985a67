"""The command line's error boundary, in process: exit codes and one-line messages."""

from __future__ import annotations

import errno
import os
import subprocess
import sys

import pytest

from pyscatter.cli import boundary, main
from pyscatter.io import safety


def test_an_unexpected_error_is_one_line_exit_4_and_debug_shows_it(monkeypatch, capsys, tmp_path):
    import pyscatter.cli.info as info

    def broken(args):
        raise TypeError("unsupported operand type(s) for +: 'int' and 'str'")

    monkeypatch.setattr(info, "run", broken)
    assert main(["info", str(tmp_path / "x.h5")]) == 4
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith("pyscatter info: internal error: TypeError: unsupported operand")
    assert main(["--debug", "info", str(tmp_path / "x.h5")]) == 4
    assert "Traceback" in capsys.readouterr().err


def test_hdf5_error_text_becomes_one_line_naming_file_and_cause():
    hdf5 = RuntimeError(
        "Can't decrement id ref count (file write failed: time = Sun Dec  6 05:42:43 2026\n"
        ", filename = '/data/scan.h5', file descriptor = 4, errno = 28, error message = "
        "'No space left on device', buf = 0x55, total write size = 720, offset = 920459)"
    )
    code, message = boundary.classify(hdf5, "integrate")
    assert code == 3
    assert message.startswith("pyscatter integrate: could not write /data/scan.h5: No space left")
    assert "\n" not in message and "ENOSPC" in message
    code, message = boundary.classify(OSError(errno.EIO, "Input/output error", "a.h5"), "fit")
    assert (code, "could not write a.h5") == (3, message.split(": ", 2)[1])


HOLDER = """
import sys, time, h5py
with h5py.File(sys.argv[1], "r"):
    print("open", flush=True)
    time.sleep(120)
"""


def test_a_file_a_notebook_holds_open_is_reported_busy(tmp_path, scan_file, capsys):
    """Issue 19.8: integrate failed with a raw 'unable to lock file, errno = 11'."""
    holder = subprocess.Popen(  # a notebook holding the file with HDF5's lock
        [sys.executable, "-c", HOLDER, str(scan_file)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout.readline().strip() == "open"
        code = main(["integrate", str(scan_file), "--npt", "50", "--no-progress"])
    finally:
        holder.kill()
        holder.communicate()
    err = capsys.readouterr().err
    assert code == 1
    assert f"{scan_file} is busy: another program" in err and "pyscatter.open" in err
    assert "errno" not in err and err.count("\n") == 1


def test_status_file_that_cannot_be_renamed_does_not_stop_the_job(
    monkeypatch, scan_file, capsys
):
    """Issue 20: a failure to rename the status JSON aborted the whole job."""
    real = os.replace

    def full(src, dst, *a, **k):
        if str(dst).endswith(".status.json"):
            raise OSError(errno.ENOSPC, "No space left on device", str(dst))
        return real(src, dst, *a, **k)

    monkeypatch.setattr(os, "replace", full)
    code = main(["integrate", str(scan_file), "--npt", "50", "--no-progress"])
    err = capsys.readouterr().err
    assert code == 0, err
    assert "could not update" in err
    assert not list(scan_file.parent.glob("*.tmp"))


def test_unwritable_folder_names_the_folder(monkeypatch, tmp_path):
    """Issue 20: an unwritable folder said 'No such file or directory: x.h5.lock'."""
    real = os.open
    folder = tmp_path / "readonly"
    folder.mkdir()

    def refuse(path, flags, *args, **kwargs):
        if str(path).startswith(str(folder)) and flags & os.O_CREAT:
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return real(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", refuse)
    with pytest.raises(Exception, match=r"cannot create its job lock .* folder .* not writable"):
        with safety.job_lock(folder / "x.h5"):
            pass


def test_another_users_stale_lock_in_a_sticky_folder_does_not_block(monkeypatch, tmp_path, caplog):
    """Issue 20: another user's leftover lock in /tmp blocked the job without saying so."""
    path = tmp_path / "x.h5"
    lock = tmp_path / "x.h5.lock"
    lock.write_text('{"pid": 1, "user": "ana"}')
    real_open, real_unlink = os.open, os.unlink

    def not_ours(p, flags, *args, **kwargs):  # writable only by its owner
        if str(p) == str(lock) and flags & (os.O_RDWR | os.O_WRONLY):
            raise PermissionError(errno.EACCES, "Permission denied", str(p))
        return real_open(p, flags, *args, **kwargs)

    def sticky(p, *args, **kwargs):  # a sticky folder: only the owner may remove it
        if str(p) == str(lock):
            raise PermissionError(errno.EPERM, "Operation not permitted", str(p))
        return real_unlink(p, *args, **kwargs)

    monkeypatch.setattr(os, "open", not_ours)
    monkeypatch.setattr(os, "unlink", sticky)
    with safety.job_lock(path) as info:
        assert info.pid == os.getpid()
    assert "left by another user" in caplog.text
    assert lock.exists()  # not ours to remove
