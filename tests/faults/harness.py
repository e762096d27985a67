"""Fault injection for the command line: real write failures in a real subprocess.

A non-root user cannot mount a small tmpfs, so the faults are injected three ways, none needing
strace or privileges:

- ``fsize``: ``RLIMIT_FSIZE`` set in the child (SIGXFSZ ignored), so every write past that many
  bytes of any file fails with ``EFBIG`` -- inside HDF5's own C writes, the journal, the status
  file or the lock file, wherever the limit falls;
- ``inject``: a ``sitecustomize`` module in the child makes the n-th call of a chosen Python-level
  operation (``os.fsync``, ``os.replace``, ``os.pwrite``, ``os.write``) raise ``ENOSPC`` or
  ``EIO``, as a full disk or a failing device does;
- a real lack of permission (a read-only folder) where the test needs one.

The command runs with ``python -m pyscatter``, so a segmentation fault is seen as exit code 139
(-11) and a traceback as text on stderr.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import resource
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import h5py
import numpy as np

#: The pyscatter source tree the command runs from (override to measure another checkout).
ROOT = Path(os.environ.get("PYSCATTER_FAULTS_ROOT", Path(__file__).resolve().parents[2]))

#: Exit codes the command line documents (pyscatter.cli): a fault must end in one of these.
CLEAN_EXIT_CODES = {1, 3}

_SITE = textwrap.dedent(
    """
    import errno, os
    _name, _count, _code = os.environ["PYSCATTER_FAULT"].split(":")
    _count, _code = int(_count), getattr(errno, _code)
    _real = getattr(os, _name)
    _calls = [0]

    def _faulty(*args, **kwargs):
        _calls[0] += 1
        if _calls[0] == _count:
            open(os.environ["PYSCATTER_FAULT_MARK"], "w").close()
            name = args[0] if args and isinstance(args[0], (str, os.PathLike)) else None
            raise OSError(_code, os.strerror(_code), name)
        return _real(*args, **kwargs)

    setattr(os, _name, _faulty)
    """
)


@dataclasses.dataclass
class Outcome:
    """What one run of the command did."""

    returncode: int
    stderr: str
    stdout: str
    fired: bool = True  #: whether the injected fault happened (the call was reached)

    @property
    def lines(self) -> list[str]:
        return [line for line in self.stderr.splitlines() if line.strip()]

    def problems(self) -> list[str]:
        """Why this is not a clean error ([] if it is one)."""
        found = []
        if self.returncode < 0 or self.returncode >= 128:
            found.append(f"killed by a signal / crashed (exit {self.returncode})")
        elif self.returncode not in CLEAN_EXIT_CODES:
            found.append(f"exit code {self.returncode} is not a documented error code")
        if "Traceback" in self.stderr:
            found.append("a traceback")
        errors = [line for line in self.lines if line.startswith("pyscatter ")]
        if len(errors) != 1:
            found.append(f"{len(errors)} error lines instead of one")
        return found


def run_cli(
    args: list[str],
    *,
    cwd: Path,
    fsize: int | None = None,
    inject: str | None = None,
    timeout: float = 300,
) -> Outcome:
    """Run ``python -m pyscatter -q ARGS`` in a subprocess, with at most one fault.

    ``inject`` is ``"NAME:N:ERRNO"``: the N-th call of ``os.NAME`` raises ``OSError(ERRNO)``.
    """
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), env_path()]))
    env.pop("PYSCATTER_FAULT", None)
    if inject is not None:
        site = cwd / "_fault_site"
        site.mkdir(exist_ok=True)
        (site / "sitecustomize.py").write_text(_SITE)
        env["PYTHONPATH"] = os.pathsep.join([str(site), env["PYTHONPATH"]])
        env["PYSCATTER_FAULT"] = inject
        mark = site / "fired"
        mark.unlink(missing_ok=True)
        env["PYSCATTER_FAULT_MARK"] = str(mark)

    def limit() -> None:
        if fsize is not None:
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, resource.RLIM_INFINITY))

    proc = subprocess.run(
        [sys.executable, "-m", "pyscatter", "-q", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        preexec_fn=limit,
        timeout=timeout,
        check=False,
    )
    fired = inject is None or (cwd / "_fault_site" / "fired").exists()
    if fsize is not None:  # fired if something wrote up to the limit
        fired = "File too large" in proc.stderr or proc.returncode != 0
    return Outcome(proc.returncode, proc.stderr, proc.stdout, fired)


def env_path() -> str:
    return os.environ.get("PYTHONPATH", "")


def write_sources(folder: Path, shape=(4, 6), rng: int = 11) -> list[str]:
    """A synthetic scan as EDF images + positions.csv + a PONI file: ``translate`` arguments."""
    from pyscatter import datasets

    scan = datasets.make_scan(shape, rng=rng)
    files = scan.write_images(folder)
    poni = scan.write_poni(folder / "scan.poni")
    return [
        *(str(f) for f in files),
        "--positions",
        str(folder / "positions.csv"),
        "--poni",
        str(poni),
    ]


def raw_digest(path: Path) -> str:
    """sha256 of the frame values and of the recorded sha256 attribute: what translate wrote."""
    with h5py.File(path, "r") as h5:
        raw = h5["Measurement_000/Channel_000/Raw_Data"]
        return hashlib.sha256(raw[()].tobytes() + str(raw.attrs["sha256"]).encode()).hexdigest()


def result_digest(path: Path, process: str = "AzimuthalIntegration") -> str:
    """sha256 of every main dataset of the last results group of ``process``."""
    with h5py.File(path, "r") as h5:
        chan = h5["Measurement_000/Channel_000"]
        names = sorted(k for k in chan if f"-{process}_" in k)
        group = chan[names[-1]]
        digest = hashlib.sha256()
        for key in sorted(group):
            item = group[key]
            if isinstance(item, h5py.Dataset) and "quantity" in item.attrs:
                digest.update(key.encode() + np.ascontiguousarray(item[()]).tobytes())
        return digest.hexdigest()
