"""The command line's error boundary, in process: exit codes and one-line messages."""

from __future__ import annotations

import errno
import os
import subprocess
import sys

import h5py
import pytest

from pyscatter.cli import main
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
    from pyscatter.cli import boundary

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


def test_status_file_that_cannot_be_renamed_does_not_stop_the_job(monkeypatch, scan_file, capsys):
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


def _integrate_output(scan_file, *flags, tty: bool) -> str:
    """stderr of ``pyscatter [flags] integrate`` written to a terminal (a pty) or a pipe."""
    import fcntl
    import pty
    import struct
    import termios

    cmd = [sys.executable, "-m", "pyscatter", *flags, "integrate", str(scan_file), "--npt", "50"]
    cmd += ["--max-mem-mb", "1", "--override"]
    if not tty:
        return subprocess.run(cmd, capture_output=True, text=True, check=True).stderr
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 120, 0, 0))  # 120 columns
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=follower)
    os.close(follower)
    chunks = []
    while True:
        try:
            data = os.read(leader, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    os.close(leader)
    assert proc.wait() == 0
    return b"".join(chunks).decode(errors="replace")


def test_progress_bars_terminal_only_and_silenced_by_q(scan_file):
    """Issue 19.11: -q printed bars; SLURM logs got carriage-return bars, the last one twice."""
    assert "AzimuthalIntegration: 100%" in _integrate_output(scan_file, tty=True)  # a bar
    assert "%|" not in _integrate_output(scan_file, "-q", tty=True)
    log = _integrate_output(scan_file, tty=False)  # a batch log
    assert "\r" not in log and "%|" not in log
    assert "12 of 12 positions computed" in log  # the summary line says what was done


def test_progress_bars_show_in_a_notebook(monkeypatch):
    """In Jupyter tqdm.auto's class subclasses the notebook widget (its module is tqdm.auto):
    the bar must be on although ipykernel's stderr is not a terminal."""
    import tqdm.auto
    from tqdm.notebook import tqdm as notebook_tqdm

    from pyscatter import progress

    seen = {}

    class JupyterTqdm(notebook_tqdm):  # what tqdm.auto builds inside a notebook
        def __init__(self, *args, disable=None, **kwargs):
            seen["disable"] = disable

    monkeypatch.setattr(tqdm.auto, "tqdm", JupyterTqdm)
    monkeypatch.setattr(progress, "QUIET", False)
    monkeypatch.setattr(progress, "_stderr_is_terminal", lambda: False)
    progress.bar(3, desc="x", unit="pos")
    assert seen["disable"] is False
    monkeypatch.setattr(progress, "QUIET", True)  # -q silences it there too
    seen.clear()
    hidden = progress.bar(3, desc="x", unit="pos")
    assert hidden.disable is True and "disable" not in seen  # never shown, no tqdm built


def test_read_only_mount_reuses_complete_results_and_refuses_work_clearly(monkeypatch, scan_file):
    """Issue 20: on a read-only mount, complete results were refused instead of reused."""
    from pyscatter.errors import FileFormatError
    from pyscatter.processes.base import run_on_file
    from pyscatter.processes.integration import AzimuthalIntegration

    first = run_on_file(scan_file, AzimuthalIntegration, npt=50, progress=False)
    sha = _sha(scan_file)
    real_open, real_access = os.open, os.access
    folder = str(scan_file.parent)

    def read_only_mount(path, flags, *args, **kwargs):
        if str(path).startswith(folder) and flags & (os.O_CREAT | os.O_WRONLY | os.O_RDWR):
            raise OSError(errno.EROFS, "Read-only file system", str(path))
        return real_open(path, flags, *args, **kwargs)

    def access(path, mode, *args, **kwargs):
        if str(path).startswith(folder) and mode & os.W_OK:
            return False
        return real_access(path, mode, *args, **kwargs)

    monkeypatch.setattr(os, "open", read_only_mount)
    monkeypatch.setattr(os, "access", access)
    again = run_on_file(scan_file, AzimuthalIntegration, npt=50, progress=False)
    assert again.reused and again.group == first.group
    with pytest.raises(FileFormatError, match="not writable .* no complete AzimuthalIntegration"):
        run_on_file(scan_file, AzimuthalIntegration, npt=60, progress=False)
    assert _sha(scan_file) == sha


def _sha(path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_translation_complete_when_only_the_final_folder_sync_fails(
    monkeypatch, tmp_path, small_scan, capsys
):
    """A failing fsync of the folder after the final rename left a complete output that the
    rerun then refused ('exists; pass --overwrite'): the translation is done, say so."""
    import pyscatter.io.raw as raw

    files = small_scan.write_images(tmp_path / "src")
    poni = small_scan.write_poni(tmp_path / "g.poni")
    out = tmp_path / "scan.h5"
    real = raw._fsync_dir

    def failing(path):
        if str(path) == str(out):
            raise OSError(errno.EIO, "Input/output error", str(tmp_path))
        return real(path)

    monkeypatch.setattr(raw, "_fsync_dir", failing)
    args = ["translate", *map(str, files), "-o", str(out), "--poni", str(poni)]
    code = main([*args, "--positions", str(tmp_path / "src" / "positions.csv")])
    err = capsys.readouterr().err
    assert code == 0, err
    assert "is complete, but syncing its folder failed" in err
    with h5py.File(out, "r") as h5:
        raw_data = h5["Measurement_000/Channel_000/Raw_Data"]
        assert raw_data.shape[0] == small_scan.n_positions
        assert "sha256" in raw_data.attrs
