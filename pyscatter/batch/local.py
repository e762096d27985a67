"""A batch on this machine: the files in turn in this process, or N at a time as subprocesses.

One file's failure does not stop the others. Ctrl-C (or SIGTERM) stops the batch: the file
being run is recorded ``partial`` (its completed work is kept), the rest ``not run``; the same
command resumes.
"""

from __future__ import annotations

import queue
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

from pyscatter.batch.plan import BatchFile, BatchPlan
from pyscatter.batch.records import FileResult, read_record
from pyscatter.pipeline import Pipeline

__all__ = ["run_local", "run_parallel"]


def _line(index: int, total: int, item: BatchFile, result: FileResult) -> str:
    took = "" if result.seconds is None else f" ({result.seconds:.1f} s)"
    error = f": {result.error}" if result.error else ""
    return f"[{index + 1}/{total}] {item.input}: {result.status}{took}{error}"


def not_run(plan: BatchPlan, pipe: Pipeline) -> list[FileResult]:
    """Every file of ``plan`` as ``not run``."""
    total = len(pipe.steps) + (pipe.translate is not None)
    return [FileResult(str(f.input), str(f.output), "not run", total) for f in plan.files]


def run_local(
    plan: BatchPlan, pipe: Pipeline, report: Callable[[str], None] = print
) -> list[FileResult]:
    """Run the files of ``plan`` in turn in this process.

    Raises
    ------
    BatchInterrupted
        On Ctrl-C or SIGTERM, with the results so far (the file being run ``partial``).
    """
    from pyscatter.batch import BatchInterrupted
    from pyscatter.batch.task import run_file

    results = not_run(plan, pipe)
    for i, item in enumerate(plan.files):
        into = f" → {item.output}" if item.output != item.input else ""
        report(f"[{i + 1}/{len(plan.files)}] {item.input}{into}")
        try:
            results[i] = run_file(pipe, item, plan.token, report=report)
        except KeyboardInterrupt:
            record = read_record(item.result, plan.token)
            if record is not None:
                results[i] = FileResult.from_record(record)
            raise BatchInterrupted(results) from None
        report(_line(i, len(plan.files), item, results[i]))
    return results


def _result(plan: BatchPlan, pipe: Pipeline, index: int, code: int, log: Path) -> FileResult:
    item = plan.files[index]
    record = read_record(item.result, plan.token)
    if record is not None:
        result = FileResult.from_record(record)
        if result.status == "running":
            result.status = "partial"
            result.error = f"ended (exit code {code}) during a step; see {log}"
        return result
    total = len(pipe.steps) + (pipe.translate is not None)
    return FileResult(
        str(item.input),
        str(item.output),
        "failed",
        total,
        error=f"exit code {code} before any record was written; see {log}",
    )


def run_parallel(
    plan: BatchPlan,
    pipe: Pipeline,
    plan_file: Path,
    jobs: int,
    log_dir: Path,
    report: Callable[[str], None] = print,
) -> list[FileResult]:
    """Run the files of ``plan``, ``jobs`` at a time, as ``python -m pyscatter.batch.task``.

    Each subprocess writes its output to ``log_dir/INDEX.log``. On Ctrl-C or SIGTERM the
    running ones get SIGTERM (they record ``partial`` and keep their completed work) and
    :class:`~pyscatter.batch.BatchInterrupted` is raised with the results so far.
    """
    from pyscatter.batch import BatchInterrupted

    results = not_run(plan, pipe)
    done: queue.Queue[tuple[int, int]] = queue.Queue()
    running: dict[int, subprocess.Popen] = {}
    todo = list(range(len(plan.files)))

    def start(index: int) -> None:
        log = log_dir / f"{index}.log"
        with open(log, "wb") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "pyscatter.batch.task", "--list", str(plan_file),
                 "--index", str(index)],
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )  # fmt: skip
        running[index] = proc
        threading.Thread(target=lambda: done.put((index, proc.wait())), daemon=True).start()
        report(f"[{index + 1}/{len(plan.files)}] {plan.files[index].input}: started (log {log})")

    try:
        while todo or running:
            while todo and len(running) < jobs:
                start(todo.pop(0))
            index, code = done.get()
            del running[index]
            results[index] = _result(plan, pipe, index, code, log_dir / f"{index}.log")
            report(_line(index, len(plan.files), plan.files[index], results[index]))
    except KeyboardInterrupt:
        for proc in running.values():
            proc.terminate()
        for index, proc in running.items():
            code = proc.wait()
            results[index] = _result(plan, pipe, index, code, log_dir / f"{index}.log")
        raise BatchInterrupted(results) from None
    return results
