"""One file of a batch: run the pipeline on it and record what happened.

:func:`run_file` runs in the batch's own process (local runs) and in each job of a SLURM batch
(``python -m pyscatter.batch.task --list FILES.json --index I``, the command of the job
scripts). The file list is JSON read by Python: no shell ever sees a path from it.

The pipeline machinery makes each file resumable on its own: the translation is skipped when
the output holds it, complete steps are reused, a partial step continues.
"""

from __future__ import annotations

import argparse
import datetime
import os
import signal
import socket
import sys
import time
from collections.abc import Callable
from typing import Any

from pyscatter.batch.plan import BatchFile, BatchPlan, file_pipeline, load_pipeline, read_plan
from pyscatter.batch.records import FileResult, write_json_atomic
from pyscatter.pipeline import Pipeline, TranslateStep

__all__ = ["main", "run_file"]


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")


def _job() -> str:
    array, task = os.environ.get("SLURM_ARRAY_JOB_ID"), os.environ.get("SLURM_ARRAY_TASK_ID")
    if array and task:
        return f"{array}_{task}"
    return os.environ.get("SLURM_JOB_ID", "")


def _error_line(err: BaseException) -> str:
    from pyscatter.cli.boundary import classify

    _code, message = classify(err, "batch")
    return message.removeprefix("pyscatter batch: ")


def run_file(
    pipe: Pipeline,
    item: BatchFile,
    token: str,
    report: Callable[[str], None] | None = None,
) -> FileResult:
    """Run ``pipe`` on one file, writing its result record as it goes; never raises on failure.

    Parameters
    ----------
    pipe : Pipeline
        The batch's pipeline (:func:`~pyscatter.batch.plan.load_pipeline`).
    item : BatchFile
        The file, its output and its result record.
    token : str
        The batch run, written into the record.
    report : callable, optional
        Called with one line per step done.

    Returns
    -------
    FileResult
        ``ran``, ``reused`` or ``failed``.

    Raises
    ------
    KeyboardInterrupt
        After recording the file as ``partial``.
    """
    from pyscatter.pipeline import run_step, run_translate

    total = len(pipe.steps) + (pipe.translate is not None)
    record: dict[str, Any] = {
        **FileResult(str(item.input), str(item.output), "running", total).__dict__,
        "token": token,
        "pipeline": pipe.where,
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "started": _now(),
        "job": _job(),
    }
    t0 = time.perf_counter()

    def save(**changes: Any) -> None:
        record.update(changes, seconds=round(time.perf_counter() - t0, 3))
        write_json_atomic(item.result, record)

    try:
        item.output.parent.mkdir(parents=True, exist_ok=True)  # a translation's --out-dir
        save()
        one = file_pipeline(pipe, item)
        work: list[Any] = ([one.translate] if one.translate is not None else []) + one.steps
        for part in work:
            translate = isinstance(part, TranslateStep)
            done = run_translate(one, part) if translate else run_step(one, part)
            step = {"step": done.step, "action": done.action, "seconds": round(done.seconds, 3)}
            if done.total_positions:
                step["positions"] = [done.computed_positions, done.total_positions]
            if report is not None:
                report(f"  {done.step}: {done.action}")
            save(steps=[*record["steps"], step])
        reused = all(s["action"] in ("reused", "skipped") for s in record["steps"])
        save(status="reused" if reused else "ran", finished=_now())
    except KeyboardInterrupt:
        save(status="partial", error="interrupted; run the batch again to resume", finished=_now())
        raise
    except Exception as err:  # one file's failure does not stop the others
        error = _error_line(err)
        try:
            save(status="failed", error=error, finished=_now())
        except OSError:  # the record itself cannot be written (e.g. the folder is read-only)
            record.update(status="failed", error=error)
    return FileResult.from_record(record)


def _terminate(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None) -> int:
    """``python -m pyscatter.batch.task --list FILES.json --index I``: exit 0 ok, 1 failed.

    SIGTERM (a job's time limit, ``scancel``) stops the run as Ctrl-C does: completed work is
    kept, the file is recorded ``partial`` and the exit code is 143.
    """
    import logging

    parser = argparse.ArgumentParser(prog="python -m pyscatter.batch.task", description=__doc__)
    parser.add_argument("--list", required=True, help="the file list pyscatter batch wrote")
    parser.add_argument("--index", required=True, type=int, help="which file of it (from 0)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    for noisy in ("pyFAI", "fabio", "silx", "distributed", "numexpr", "h5py"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    signal.signal(signal.SIGTERM, _terminate)
    plan: BatchPlan = read_plan(args.list)
    if not 0 <= args.index < len(plan.files):
        print(f"{args.list}: no file {args.index} (it lists {len(plan.files)})", file=sys.stderr)
        return 2
    item = plan.files[args.index]
    print(f"pyscatter batch {plan.token}: {item.input} → {item.output}", flush=True)
    try:
        pipe, _fmt = load_pipeline(plan.pipeline, plan.translate)
    except Exception as err:
        failed = FileResult(str(item.input), str(item.output), "failed", 0, error=_error_line(err))
        write_json_atomic(item.result, {**failed.__dict__, "token": plan.token, "job": _job()})
        print(failed.error, file=sys.stderr)
        return 1
    try:
        result = run_file(pipe, item, plan.token, report=lambda line: print(line, flush=True))
    except KeyboardInterrupt:
        print("interrupted: completed work is kept; the batch resumes it", file=sys.stderr)
        return 143
    print(f"{result.status}{': ' + result.error if result.error else ''}", flush=True)
    return 0 if result.ok else 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
