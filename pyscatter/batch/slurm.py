"""A batch as SLURM jobs: job scripts, ``sbatch``, the queue watched, ``scancel`` on the way out.

Each job runs ``python -m pyscatter.batch.task --list FILES.json --index I`` with the python
of this process, in the current folder (sbatch passes the environment on by default): one job
per file, or one job array whose ``$SLURM_ARRAY_TASK_ID`` is the index. Every path in a script
is quoted (:func:`shlex.quote`); the file names themselves are only in the JSON list, which the
task reads with Python: nothing from the files is executed by a shell.

:class:`SlurmBatch` submits with ``sbatch --parsable``, then polls ``squeue -h -j IDS -o
'%i %T %r'`` and prints every change of state (``job 1234_[0-4] PENDING (Priority)``) and, while
jobs wait, a reminder with the time waited. A job that ``squeue`` no longer lists has ended:
``sacct`` gives its final state when accounting is on, and the per-file result records say
what happened. With ``queue_timeout``, a batch where nothing has started (or ended) for that
long while jobs are pending is cancelled (:class:`~pyscatter.batch.QueueTimeoutError`); Ctrl-C or
SIGTERM cancels every job submitted (:class:`~pyscatter.batch.BatchInterrupted`).
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from pyscatter.batch.local import not_run
from pyscatter.batch.plan import BatchPlan
from pyscatter.batch.records import FileResult, read_record
from pyscatter.errors import InputError
from pyscatter.pipeline import Pipeline

__all__ = ["JobScript", "SlurmBatch", "SlurmOptions", "job_scripts", "sbatch_options"]

_KEY = re.compile(r"^[a-z][a-z0-9-]*$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
#: sbatch options the batch sets itself.
_RESERVED = ("parsable", "array", "wrap")
_RUNNING = ("RUNNING", "COMPLETING", "CONFIGURING", "STAGE_OUT", "SIGNALING", "RESIZING")


@dataclass
class SlurmOptions:
    """How the jobs are submitted and watched.

    ``sbatch`` holds ``(key, value)`` pairs given to sbatch as ``--key=value`` (partition,
    time, mem, account, any ``--slurm-option``). ``jobs``: at most this many files at once
    (an array's ``%N``; one job per file: at most N submitted at a time). ``poll``: seconds
    between looks at the queue; ``queue_timeout``: seconds with jobs pending and none
    starting before the batch is cancelled (None: wait); ``remind``: seconds between the
    "still pending" lines.
    """

    sbatch: list[tuple[str, str]] = field(default_factory=list)
    array: bool = False
    jobs: int | None = None
    poll: float = 30.0
    queue_timeout: float | None = None
    remind: float = 60.0


def _plain(text: str, what: str) -> str:
    if _CONTROL.search(text):
        raise InputError(f"{what} {text!r}: control characters (newline, tab …) are not allowed")
    return text


def sbatch_options(pairs: Sequence[str]) -> list[tuple[str, str]]:
    """``KEY=VALUE`` texts (``--slurm-option``) as checked ``(key, value)`` pairs.

    Raises
    ------
    InputError
        Not ``KEY=VALUE``, a key that is not an sbatch long option name, one the batch sets
        itself (parsable, array, wrap), or a control character.
    """
    out = []
    for text in pairs:
        key, sep, value = text.partition("=")
        key = key.strip().removeprefix("--")
        if not sep or not _KEY.match(key):
            raise InputError(
                f"--slurm-option {text!r}: expected KEY=VALUE with an sbatch option name, e.g. "
                "qos=short or constraint=haswell"
            )
        if key in _RESERVED:
            raise InputError(f"--slurm-option {text!r}: --{key} is set by pyscatter batch")
        out.append((key, _plain(value, f"--slurm-option {key}")))
    return out


@dataclass
class JobScript:
    """One script to submit: its path, text, sbatch command and the files (indices) it runs."""

    path: Path
    text: str
    argv: list[str]
    indices: list[int]
    log: str  # the output file pattern (%j, %A, %a)

    def log_of(self, job: str) -> str:
        """The output file of job ``1234`` or array task ``1234_3``."""
        base, _, task = job.partition("_")
        return self.log.replace("%j", base).replace("%A", base).replace("%a", task)


def _script(plan: BatchPlan, plan_file: Path, index: str, argv: list[str], what: str) -> str:
    python, cwd = _plain(sys.executable, "python"), _plain(os.getcwd(), "current folder")
    _plain(str(plan.pipeline), "pipeline")
    lines = [
        "#!/bin/bash",
        f"# pyscatter batch {plan.token}: {what}",
        f"# pipeline: {shlex.quote(str(plan.pipeline))}",
        f"# files: {shlex.quote(str(plan_file))} (JSON, read by the task: nothing in it is run)",
        f"# submitted with: {shlex.join(argv)}",
        "set -u",
        f"cd -- {shlex.quote(cwd)} || exit 1",
        f"exec {shlex.quote(python)} -m pyscatter.batch.task --list {shlex.quote(str(plan_file))} "
        f"--index {index}",
    ]
    return "\n".join(lines) + "\n"


def job_scripts(
    plan: BatchPlan, plan_file: Path, job_dir: Path, options: SlurmOptions
) -> list[JobScript]:
    """The job scripts of ``plan`` (one array, or one per file) and their sbatch commands."""
    _plain(str(job_dir), "job folder")
    given = {k for k, _ in options.sbatch}
    base = ["sbatch", "--parsable"]
    if "job-name" not in given:
        base.append("--job-name=pyscatter-batch")
    base += [f"--{k}={v}" for k, v in options.sbatch]
    n = len(plan.files)
    if options.array:
        log = str(job_dir / "slurm-%A_%a.out")
        path = job_dir / "array.sh"
        throttle = f"%{options.jobs}" if options.jobs else ""
        argv = [*base, f"--array=0-{n - 1}{throttle}"]
        argv += [] if "output" in given else [f"--output={log}"]
        argv.append(str(path))
        text = _script(plan, plan_file, '"$SLURM_ARRAY_TASK_ID"', argv, f"job array of {n} files")
        return [JobScript(path, text, argv, list(range(n)), log)]
    scripts = []
    for i, item in enumerate(plan.files):
        log = str(job_dir / f"slurm-%j-{i}.out")
        path = job_dir / f"file-{i}.sh"
        argv = [*base, *([] if "output" in given else [f"--output={log}"]), str(path)]
        what = f"file {i + 1} of {n}, {shlex.quote(str(item.input))}"
        scripts.append(
            JobScript(path, _script(plan, plan_file, str(i), argv, what), argv, [i], log)
        )
    return scripts


def _parse_squeue(out: str) -> dict[str, tuple[str, str]]:
    rows = {}
    for line in out.splitlines():
        parts = line.split(None, 2)
        if len(parts) >= 2:
            rows[parts[0]] = (parts[1], parts[2].strip() if len(parts) > 2 else "")
    return rows


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:.0f} min" if seconds >= 60 else f"{seconds:.0f} s"


class SlurmBatch:
    """Submit the job scripts of a plan and watch them until every job has ended.

    ``run`` (:func:`subprocess.run`), ``clock`` and ``sleep`` can be replaced (tests).
    """

    def __init__(
        self,
        plan: BatchPlan,
        pipe: Pipeline,
        scripts: list[JobScript],
        options: SlurmOptions,
        *,
        report: Callable[[str], None] = print,
        run: Callable[..., subprocess.CompletedProcess] = subprocess.run,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.plan, self.pipe, self.scripts, self.options = plan, pipe, scripts, options
        self.report, self._run, self.clock, self.sleep = report, run, clock, sleep
        self.submitted: dict[str, JobScript] = {}  # job id → script
        self.active: list[str] = []
        self.final: dict[str, str] = {}  # job or array task id → final state (sacct)
        self.cancelled: set[str] = set()
        self._seen: dict[str, tuple[str, str]] = {}
        self._since: dict[str, float] = {}
        self._reminded: dict[str, float] = {}
        self._done: set[str] = set()
        self._progress = clock()

    # ------------------------------------------------------------------ commands

    def _command(self, argv: list[str]) -> subprocess.CompletedProcess:
        return self._run(argv, capture_output=True, text=True, stdin=subprocess.DEVNULL)

    def submit(self, script: JobScript) -> str:
        """Write ``script``, submit it; its job id."""
        script.path.write_text(script.text, encoding="utf-8")
        try:
            done = self._command(script.argv)
        except KeyboardInterrupt:
            self.report(
                f"interrupted while sbatch submitted {script.path}: if it was submitted, its job "
                "is not cancelled (squeue --me --name pyscatter-batch shows it)"
            )
            raise
        job = done.stdout.strip().split(";")[0]
        if done.returncode == 0 and job.isdigit():
            self.submitted[job] = script
            self.active.append(job)
        else:
            before = self.cancel()
            undone = (
                f"; cancelled the jobs submitted before it ({', '.join(before)})" if before else ""
            )
            raise InputError(
                f"sbatch refused {script.path}: {(done.stderr or done.stdout).strip()} "
                f"(command: {shlex.join(script.argv)}){undone}"
            )
        self._progress = self.clock()
        self.report(f"submitted job {job}: {script.path}")
        return job

    def cancel(self) -> list[str]:
        """``scancel`` every submitted job still active; the ids cancelled."""
        ids = list(self.active)
        if ids:
            done = self._command(["scancel", *ids])
            state = "cancelled" if done.returncode == 0 else "scancel failed for"
            self.report(f"{state} job{'s' if len(ids) > 1 else ''} {', '.join(ids)} (scancel)")
            self.cancelled.update(ids)
            self.active.clear()
        return ids

    def _squeue(self) -> dict[str, tuple[str, str]] | None:
        argv = ["squeue", "-h", "-j", ",".join(self.active), "-o", "%i %T %r"]
        done = self._command(argv)
        if done.returncode != 0:
            if "invalid job id" in (done.stderr or "").lower():
                return {}  # every job has left the queue
            self.report(f"squeue failed ({(done.stderr or '').strip()}); trying again")
            return None
        return _parse_squeue(done.stdout)

    def _sacct(self, job: str) -> None:
        argv = ["sacct", "-n", "-P", "-X", "-j", job, "-o", "JobID,State,ExitCode"]
        try:
            done = self._command(argv)
        except OSError:
            return  # no accounting: the result records say what happened
        if done.returncode != 0:
            return
        for line in done.stdout.splitlines():
            parts = line.split("|")
            if len(parts) >= 2 and parts[0].split("_")[0] == job:
                self.final[parts[0]] = parts[1].split()[0] if parts[1].split() else parts[1]

    # ------------------------------------------------------------------ watching

    def _states(self, rows: dict[str, tuple[str, str]]) -> None:
        """Report changes of state; an array's pending rows are one key (its range shrinks)."""
        now = self.clock()
        keys = set()
        for name, (state, reason) in rows.items():
            key = name.split("_")[0] + "_[]" if "[" in name else name
            keys.add(key)
            why = f" ({reason})" if reason and reason != "None" else ""
            if self._seen.get(key) != (state, reason):
                if state in _RUNNING and self._seen.get(key, ("",))[0] not in _RUNNING:
                    self._progress = now
                self._seen[key], self._since[key], self._reminded[key] = (state, reason), now, now
                waiting = ": waiting in the queue" if state == "PENDING" else ""
                self.report(f"job {name} {state}{why}{waiting}")
            elif state == "PENDING" and now - self._reminded[key] >= self.options.remind:
                self._reminded[key] = now
                self.report(
                    f"job {name} PENDING{why} for {_minutes(now - self._since[key])}: "
                    "waiting in the queue"
                )
        for key, (state, _) in list(self._seen.items()):
            if state in _RUNNING and key not in keys and key not in self._done:
                self._done.add(key)
                self._task_done(key)

    def _task_done(self, task: str) -> None:
        """One line for a task that has left the queue: what its record says."""
        base, _, index = task.partition("_")
        script = self.submitted.get(base)
        if script is None:
            return
        i = int(index) if index.isdigit() else script.indices[0]
        item = self.plan.files[i]
        record = read_record(item.result, self.plan.token) or {}
        status = record.get("status", "no record")
        status = "ended during a step" if status == "running" else status
        error = f": {record['error']}" if record.get("error") else ""
        self.report(f"job {task} done: {item.input}: {status}{error}")

    def _ended(self, rows: dict[str, tuple[str, str]]) -> None:
        listed = {key.split("_")[0] for key in rows}
        for job in [j for j in self.active if j not in listed]:
            self.active.remove(job)
            self._progress = self.clock()
            self._sacct(job)
            states = [s for k, s in self.final.items() if k.split("_")[0] == job]
            counts = {s: states.count(s) for s in sorted(set(states))}
            text = ", ".join(f"{n} {s}" for s, n in counts.items()) or "state unknown (no sacct)"
            self.report(f"job {job} ended: {text}")

    def _timed_out(self, rows: dict[str, tuple[str, str]]) -> bool:
        limit = self.options.queue_timeout
        if limit is None or not rows:
            return False
        if any(state != "PENDING" for state, _ in rows.values()):
            return False
        return self.clock() - self._progress > limit

    def _timeout(self, rows: dict[str, tuple[str, str]]) -> None:
        from pyscatter.batch import QueueTimeoutError

        waiting = "; ".join(f"job {k} {s} ({r})" for k, (s, r) in sorted(rows.items()))
        cancelled = self.cancel()
        raise QueueTimeoutError(
            f"no job started within --queue-timeout {self.options.queue_timeout:g} s ({waiting}); "
            f"cancelled job{'s' if len(cancelled) > 1 else ''} {', '.join(cancelled)}. Completed "
            "work is kept: run the same command later, with a longer --queue-timeout, or on "
            "another --partition (`sinfo` shows what is free; `squeue --start` estimates starts)",
            self.results(),
        )

    def watch(self) -> list[FileResult]:
        """Submit (at most ``jobs`` per-file jobs at a time) and poll until every job ended.

        Raises
        ------
        QueueTimeoutError
            Jobs pending and none starting for ``queue_timeout`` (they were cancelled).
        BatchInterrupted
            Ctrl-C or SIGTERM (every submitted job was cancelled).
        """
        from pyscatter.batch import BatchInterrupted

        todo = list(self.scripts)
        limit = self.options.jobs if not self.options.array and self.options.jobs else len(todo)
        try:
            while todo or self.active:
                while todo and len(self.active) < limit:
                    self.submit(todo.pop(0))
                rows = self._squeue()
                if rows is not None:
                    self._states(rows)
                    self._ended(rows)
                    if self._timed_out(rows):
                        self._timeout(rows)
                if self.active or todo:
                    self.sleep(self.options.poll)
        except KeyboardInterrupt:
            self.cancel()
            raise BatchInterrupted(self.results(), "the submitted jobs were cancelled") from None
        except Exception:
            if self.active:  # the jobs do their work; say how to stop them
                ids = " ".join(self.active)
                self.report(f"stopped watching; jobs {ids} keep running (scancel {ids} stops them)")
            raise
        return self.results()

    # ------------------------------------------------------------------ results

    def results(self) -> list[FileResult]:
        """What each file got to: its result record, else what the queue said."""
        results = not_run(self.plan, self.pipe)
        for job, script in self.submitted.items():
            for index in script.indices:
                task = f"{job}_{index}" if self.options.array else job
                results[index] = self._result(index, task, script.log_of(task))
        return results

    def _result(self, index: int, task: str, log: str) -> FileResult:
        item = self.plan.files[index]
        record = read_record(item.result, self.plan.token)
        state = self.final.get(task, "")
        if record is not None:
            result = FileResult.from_record(record)
            result.job = task
            if result.status == "running":
                ended = f"job ended {state}" if state else "the job ended"
                result.status = "partial"
                result.error = f"{ended} during a step; run the batch again to resume (log {log})"
            return result
        result = not_run(self.plan, self.pipe)[index]
        result.job = task
        base = task.split("_")[0]
        never_started = state in ("", "PENDING", "CANCELLED") and task not in self._started()
        if base in self.active or (base in self.cancelled and never_started):
            return result
        result.status = "failed"
        result.error = f"job ended {state or 'without a result record'}; see {log}"
        return result

    def _started(self) -> set[str]:
        return {k for k, (s, _) in self._seen.items() if s in _RUNNING}
