"""``pyscatter batch FILES… --pipeline P.yaml``: one pipeline over many files, here or on SLURM.

Each file is resumable on its own (the same command again reuses what is complete) and one
file's failure does not stop the others. The summary says per file: ran, reused (everything
was complete), failed (with the error), partial (stopped; run again to resume) or not run;
exit code 0 when every file is complete, 1 otherwise.

  pyscatter batch 'raw/*.h5' --pipeline p.yaml
  pyscatter batch 'raw/*.spec' --translate spec --out-dir out --pipeline p.yaml --jobs 4
  pyscatter batch --from-list files.txt --pipeline p.yaml --scheduler slurm --array
      --partition short --time 01:00:00 --mem 16G --queue-timeout 3600   (one command)
  pyscatter batch --template > pyscatter-file.sh    # an sbatch script that resubmits itself
"""

from __future__ import annotations

import argparse
import datetime
import shlex
import shutil
import signal
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pyscatter.errors import InputError

_SLURM_ONLY = ("array", "slurm_option", "partition", "time", "mem", "account", "queue_timeout")


def register(sub) -> None:
    p = sub.add_parser(
        "batch",
        help="one pipeline over many files (globs, lists), here or as SLURM jobs",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("inputs", nargs="*", metavar="FILE", help="files or glob patterns (quoted)")
    p.add_argument("--from-list", metavar="TXT", help="more files: one path or pattern a line")
    p.add_argument("--pipeline", metavar="YAML", help="the pipeline run on every file")
    p.add_argument("--translate", metavar="FORMAT", help="translate each input first (a format)")
    p.add_argument("--out-dir", metavar="DIR", help="where translated files go (DIR/stem.h5)")
    p.add_argument(
        "--scheduler",
        choices=("local", "slurm"),
        default="local",
        help="local: on this machine (default); slurm: as SLURM jobs (sbatch)",
    )
    p.add_argument(
        "--jobs", type=int, metavar="N", help="files at once (local: subprocesses; slurm: jobs)"
    )
    slurm = p.add_argument_group("SLURM (--scheduler slurm)")
    slurm.add_argument("--array", action="store_true", help="one job array, one task per file")
    slurm.add_argument(
        "--slurm-option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="sbatch --KEY=VALUE",
    )
    slurm.add_argument("--partition", help="sbatch --partition")
    slurm.add_argument("--time", help="sbatch --time, e.g. 01:00:00")
    slurm.add_argument("--mem", help="sbatch --mem, e.g. 16G")
    slurm.add_argument("--account", help="sbatch --account")
    slurm.add_argument(
        "--queue-timeout",
        type=float,
        metavar="S",
        help="cancel and stop when jobs pend for S seconds with none starting (default: wait)",
    )
    slurm.add_argument("--poll", type=float, default=30.0, metavar="S", help="queue polls (30 s)")
    p.add_argument(
        "--job-dir", metavar="DIR", help="scripts, file list, logs (default ./pyscatter-batch/RUN)"
    )
    p.add_argument("--dry-run", action="store_true", help="print what would run or be submitted")
    p.add_argument("--summary", metavar="JSON", help="also write the summary as JSON")
    p.add_argument("--template", action="store_true", help="print the resubmitting sbatch template")
    p.set_defaults(func=run)


def _check_args(args: argparse.Namespace) -> None:
    if args.scheduler == "local":
        given = [
            "--" + name.replace("_", "-")
            for name in _SLURM_ONLY
            if getattr(args, name) not in (None, False, [])
        ]
        if given:
            raise InputError(f"{', '.join(given)} apply to --scheduler slurm")
    if not args.pipeline:
        raise InputError(
            "give the pipeline: --pipeline P.yaml (pyscatter run --example prints one)"
        )
    if args.jobs is not None and args.jobs < 1:
        raise InputError(f"--jobs: expected an integer >= 1, got {args.jobs}")
    for name in ("poll", "queue_timeout"):
        value = getattr(args, name)
        if value is not None and not value >= 0:
            raise InputError(f"--{name.replace('_', '-')}: expected seconds >= 0, got {value}")


def run(args: argparse.Namespace) -> int:
    from pyscatter.batch import BatchInterrupted, QueueTimeoutError
    from pyscatter.batch.plan import expand_inputs, make_plan

    if args.template:
        from pyscatter.batch.template import TEMPLATE

        print(TEMPLATE, end="")
        return 0
    _check_args(args)
    inputs = expand_inputs(args.inputs, args.from_list, folders=True)
    plan, pipe = make_plan(inputs, args.pipeline, translate=args.translate, out_dir=args.out_dir)
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    job_dir = Path(args.job_dir or Path("pyscatter-batch") / f"{stamp}-{plan.token}").absolute()
    about: dict[str, Any] = {
        "pipeline": str(plan.pipeline),
        "scheduler": args.scheduler,
        "token": plan.token,
        "job_dir": str(job_dir),
        "started": datetime.datetime.now().isoformat(timespec="seconds"),
    }
    main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _terminate) if main_thread else None
    try:
        if args.scheduler == "slurm":
            results = _slurm(args, plan, pipe, job_dir)
        else:
            results = _local(args, plan, pipe, job_dir)
    except (BatchInterrupted, QueueTimeoutError) as stop:
        _finish(args, stop.results, about)
        if isinstance(stop, BatchInterrupted):
            raise KeyboardInterrupt(stop.message) from None
        raise
    finally:
        if main_thread:
            signal.signal(signal.SIGTERM, previous)
    if results is None:  # a dry run
        return 0
    return 0 if _finish(args, results, about) else 1


def _report() -> Callable[[str], None]:
    """Where the progress lines go: stdout, flushed (nowhere with ``pyscatter -q``)."""
    from pyscatter import progress

    if progress.QUIET:
        return lambda line: None
    return lambda line: print(line, flush=True)


def _terminate(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def _finish(args: argparse.Namespace, results: list, about: dict[str, Any]) -> bool:
    from pyscatter.batch.records import summary_dict, summary_table, write_json_atomic

    print(summary_table(results), flush=True)
    if args.summary:
        about["finished"] = datetime.datetime.now().isoformat(timespec="seconds")
        write_json_atomic(Path(args.summary), summary_dict(results, **about))
    return all(r.ok for r in results)


def _local(args, plan, pipe, job_dir: Path):
    from pyscatter.batch.local import run_local, run_parallel

    if args.dry_run:
        for i, item in enumerate(plan.files):
            what = f"translate ({plan.translate}) → {item.output}, " if plan.translate else ""
            print(f"[{i + 1}/{len(plan.files)}] {item.input}: {what}pipeline {plan.pipeline}")
        return None
    if not args.jobs or args.jobs == 1:
        return run_local(plan, pipe, _report())
    job_dir.mkdir(parents=True, exist_ok=True)
    plan_file = plan.write(job_dir / "files.json")
    return run_parallel(plan, pipe, plan_file, args.jobs, job_dir, _report())


def _slurm(args, plan, pipe, job_dir: Path):
    from pyscatter.batch.slurm import SlurmBatch, SlurmOptions, job_scripts, sbatch_options

    pairs = [f"{k}={v}" for k in ("partition", "time", "mem", "account") if (v := getattr(args, k))]
    options = SlurmOptions(
        sbatch=sbatch_options([*pairs, *args.slurm_option]),
        array=args.array,
        jobs=args.jobs,
        poll=args.poll,
        queue_timeout=args.queue_timeout,
    )
    plan_file = job_dir / "files.json"
    scripts = job_scripts(plan, plan_file, job_dir, options)
    if args.dry_run:
        print(f"# file list {plan_file} (written when submitting): {len(plan.files)} files")
        for script in scripts:
            print(f"# ---- {script.path}\n{script.text}# submit: {shlex.join(script.argv)}\n")
        print(f"# dry run: nothing submitted ({len(scripts)} job script(s))")
        return None
    if shutil.which("sbatch") is None:
        raise InputError(
            "--scheduler slurm: no sbatch on PATH (run on a SLURM login node; --dry-run prints "
            "the job scripts)"
        )
    job_dir.mkdir(parents=True, exist_ok=True)
    plan.write(plan_file)
    return SlurmBatch(plan, pipe, scripts, options, report=_report()).watch()
