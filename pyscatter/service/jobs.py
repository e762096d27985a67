"""Watch jobs: ``pyscatter watch`` subprocesses started, listed and stopped by the service.

A job is one subprocess, started from an argument list (never a shell) in its own process
group, so the service's own Ctrl-C does not reach it. Stopping it is what a person at the
terminal would do: SIGINT (the watch writes what it has and exits), then SIGKILL after a grace
period (a kill is safe: the next watch of the same output resumes). Progress is the watch's
``<output>.status.json`` (:func:`pyscatter.io.safety.read_status`), the exit code and the last
lines it printed.

Examples
--------
>>> import sys, tempfile
>>> from pyscatter.service.paths import DataRoot
>>> root = DataRoot(tempfile.mkdtemp())
>>> jobs = JobManager(root, command=[sys.executable, "-c", "import sys; print(sys.argv[1:])"])
>>> jobs.command_for({"source": "/r/frames", "output": "/r/scan.h5", "pipeline": "/r/p.yaml",
...                   "grid": {"Y": 6, "X": 8}, "until_complete": True})[3:]
['/r/frames', '-o', '/r/scan.h5', '--pipeline', '/r/p.yaml', '--grid', 'Y=6,X=8', '--until-complete']
"""

from __future__ import annotations

import collections
import logging
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pyscatter.errors import InputError
from pyscatter.io.safety import read_status
from pyscatter.service.paths import DataRoot

__all__ = ["DEFAULT_COMMAND", "Job", "JobConflictError", "JobManager", "UnknownJobError"]

logger = logging.getLogger("pyscatter.service")

#: The command prefix of a watch job; the arguments follow it.
DEFAULT_COMMAND = (sys.executable, "-m", "pyscatter", "watch")
OUTPUT_SUFFIXES = (".h5", ".hdf5", ".nxs")
LOG_LINES = 40


class JobConflictError(InputError):
    """A job that cannot start now (HTTP 409): its output is in use, or too many jobs run."""


class UnknownJobError(InputError):
    """No job of that id (HTTP 404)."""


@dataclass
class Job:
    """One watch subprocess and what is known of it."""

    id: str
    command: list[str]
    source: str
    output: str
    pipeline: str
    output_path: Path
    process: subprocess.Popen[bytes]
    started: float
    ended: float | None = None
    stop_requested: bool = False
    log: collections.deque[str] = field(default_factory=lambda: collections.deque(maxlen=LOG_LINES))

    @property
    def state(self) -> str:
        code = self.process.poll()
        if code is None:
            return "stopping" if self.stop_requested else "running"
        if self.stop_requested:
            return "stopped"
        return "finished" if code == 0 else "failed"

    def info(self) -> dict[str, Any]:
        """The job as a :class:`~pyscatter.service.schema.JobInfo` record."""
        code = self.process.poll()
        if code is not None and self.ended is None:
            self.ended = time.time()
        return {
            "id": self.id,
            "state": self.state,
            "pid": self.process.pid,
            "command": list(self.command),
            "source": self.source,
            "output": self.output,
            "pipeline": self.pipeline,
            "started": self.started,
            "ended": self.ended,
            "exit_code": code,
            "log_tail": list(self.log),
            "progress": read_status(self.output_path),
        }


class JobManager:
    """Starts, lists and stops watch jobs on paths under ``root``.

    Parameters
    ----------
    root : DataRoot
    command : sequence of str
        The command prefix (default :data:`DEFAULT_COMMAND`); tests give a stand-in.
    grace_s : float
        Seconds between SIGINT and SIGKILL when a stop gives none.
    max_jobs : int
        Running jobs at most.
    """

    def __init__(
        self,
        root: DataRoot,
        command: Sequence[str] = DEFAULT_COMMAND,
        *,
        grace_s: float = 10.0,
        max_jobs: int = 4,
    ) -> None:
        self.root = root
        self.command = list(command)
        self.grace_s = grace_s
        self.max_jobs = max_jobs
        self._jobs: dict[str, Job] = {}
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ requests
    def start(self, request: dict[str, Any]) -> Job:
        """Start a watch from a validated :class:`~pyscatter.service.schema.StartJob`."""
        paths = self._paths(request)
        with self._lock:
            running = [j for j in self._jobs.values() if j.process.poll() is None]
            if len(running) >= self.max_jobs:
                raise JobConflictError(
                    f"{len(running)} jobs running already (at most {self.max_jobs})"
                )
            busy = [j for j in running if j.output_path == paths["output"]]
            if busy:
                raise JobConflictError(f"{request['output']!r}: job {busy[0].id} is writing it")
            command = self.command_for({**request, **{k: str(v) for k, v in paths.items()}})
            process = subprocess.Popen(  # noqa: S603 - an argument list, never a shell
                command,
                cwd=self.root.root,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            job = Job(
                id=uuid.uuid4().hex[:12],
                command=command,
                source=request["source"],
                output=request["output"],
                pipeline=request["pipeline"],
                output_path=paths["output"],
                process=process,
                started=time.time(),
            )
            self._jobs[job.id] = job
        threading.Thread(target=_read_log, args=(job,), daemon=True).start()
        logger.info("job %s started: %s", job.id, " ".join(command))
        return job

    def command_for(self, request: dict[str, Any]) -> list[str]:
        """The argument list of a watch; ``request`` holds resolved absolute paths."""
        args = [*self.command, request["source"], "-o", request["output"]]
        args += ["--pipeline", request["pipeline"]]
        if request.get("grid"):
            args += ["--grid", ",".join(f"{k}={int(v)}" for k, v in request["grid"].items())]
        for key in ("poni", "mask"):
            if request.get(key):
                args += [f"--{key}", request[key]]
        if request.get("pattern"):
            args.append(f"--pattern={request['pattern']}")  # one argument: never an option
        if request.get("until_complete"):
            args.append("--until-complete")
        if request.get("idle") is not None:
            args += ["--idle", repr(float(request["idle"]))]
        return args

    def get(self, job_id: str) -> Job:
        """The job ``job_id`` (:class:`UnknownJobError` if none)."""
        try:
            return self._jobs[job_id]
        except KeyError:
            raise UnknownJobError(f"no job {job_id!r}") from None

    def list(self) -> list[Job]:
        """Every job started since the service started, oldest first."""
        return sorted(self._jobs.values(), key=lambda j: j.started)

    def stop(self, job_id: str, grace_s: float | None = None) -> Job:
        """SIGINT now, SIGKILL after ``grace_s`` if still running; returns at once."""
        job = self.get(job_id)
        if job.process.poll() is not None:
            return job
        job.stop_requested = True
        grace = self.grace_s if grace_s is None else grace_s
        _signal(job, signal.SIGINT)
        logger.info("job %s: SIGINT sent (SIGKILL after %g s)", job.id, grace)
        threading.Thread(target=_escalate, args=(job, grace), daemon=True).start()
        return job

    def shutdown(self, grace_s: float = 5.0) -> None:
        """Stop every running job and wait for each (the service is stopping)."""
        for job in self.list():
            if job.process.poll() is None:
                self.stop(job.id, grace_s)
        for job in self.list():
            try:
                job.process.wait(grace_s + 5)
            except subprocess.TimeoutExpired:  # pragma: no cover - SIGKILL did not work
                logger.error("job %s (pid %d) did not end", job.id, job.process.pid)

    # ------------------------------------------------------------------ helpers
    def _paths(self, request: dict[str, Any]) -> dict[str, Path]:
        paths = {
            "source": self.root.resolve(request["source"]),
            "output": self.root.resolve(request["output"], must_exist=False, kind="file"),
            "pipeline": self.root.resolve(request["pipeline"], kind="file"),
        }
        for key in ("poni", "mask"):
            if request.get(key):
                paths[key] = self.root.resolve(request[key], kind="file")
        if paths["output"].suffix.lower() not in OUTPUT_SUFFIXES:
            raise InputError(
                f"output {request['output']!r}: expected a file name ending in "
                + ", ".join(OUTPUT_SUFFIXES)
            )
        return paths


def _read_log(job: Job) -> None:
    """Keep the last lines the job prints (stdout and stderr together)."""
    assert job.process.stdout is not None
    for raw in job.process.stdout:
        job.log.append(raw.decode("utf-8", "replace").rstrip("\n"))
    job.process.wait()
    job.ended = job.ended or time.time()
    logger.info("job %s ended with exit code %s", job.id, job.process.returncode)


def _escalate(job: Job, grace_s: float) -> None:
    try:
        job.process.wait(grace_s)
    except subprocess.TimeoutExpired:
        logger.warning("job %s still running %g s after SIGINT: SIGKILL", job.id, grace_s)
        _signal(job, signal.SIGKILL)


def _signal(job: Job, sig: int) -> None:
    """Send ``sig`` to the job's process group (its workers too), as a terminal would."""
    try:
        os.killpg(job.process.pid, sig)
    except ProcessLookupError:
        pass
