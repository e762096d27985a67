"""Options shared by the process subcommands: execution backend, memory, resume."""

from __future__ import annotations

import argparse
import math
import re
from typing import Any

from pyscatter.cli.cluster_security import add_cluster_security, cluster_security_kwargs
from pyscatter.errors import InputError

MAX_MEM_MB = 1 << 20
"""Largest --max-mem-mb (1 TiB): a memory budget above it is a typo."""

# RST roles (:func:`x`, :class:`~a.b`), ``literals`` and `interpreted text` → plain text
_ROLE = re.compile(r":[a-z]+(?::[a-z]+)?:`~?([^`<]*?)(?:\s*<[^>]*>)?`")
_LITERAL = re.compile(r"``(.+?)``", re.S)
_INTERPRETED = re.compile(r"`([^`]+?)`_{0,2}")


def plain_text(text: str | None) -> str | None:
    """Help text without reStructuredText markup (docstrings become --help descriptions).

    Examples
    --------
    >>> plain_text("run ``pyscatter run --example``; see :func:`~pyscatter.pipeline.run_pipeline`")
    'run pyscatter run --example; see run_pipeline'
    """
    if not text:
        return text
    text = _ROLE.sub(
        lambda m: m.group(1).rsplit(".", 1)[-1] if "~" in m.group(0) else m.group(1), text
    )
    text = _LITERAL.sub(r"\1", text)
    return _INTERPRETED.sub(r"\1", text)


def strip_markup(parser: argparse.ArgumentParser) -> None:
    """Remove RST markup from the description, epilog and option help of a parser tree."""
    parser.description = plain_text(parser.description)
    parser.epilog = plain_text(parser.epilog)
    for action in parser._actions:
        if isinstance(action.help, str):
            action.help = plain_text(action.help)
        if isinstance(action, argparse._SubParsersAction):
            for choice in action._choices_actions:
                choice.help = plain_text(choice.help)
            for sub in set(action.choices.values()):
                strip_markup(sub)


def add_execution(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("execution")
    g.add_argument("--n-jobs", type=int, default=1, help="worker processes (default 1)")
    g.add_argument("--scheduler", help="'local' (dask LocalCluster) or a dask scheduler address")
    g.add_argument(
        "--cluster",
        choices=("slurm", "pbs", "sge", "lsf"),
        help="submit workers through dask-jobqueue",
    )
    g.add_argument("--cores", type=int, help="cores per batch job (--cluster)")
    g.add_argument("--memory", help="memory per batch job, e.g. 16GB (--cluster)")
    g.add_argument("--walltime", help="wall time per batch job, e.g. 01:00:00 (--cluster)")
    g.add_argument("--jobs", type=int, default=1, help="batch jobs to start (--cluster)")
    g.add_argument("--queue", help="batch queue/partition (--cluster)")
    add_cluster_security(g)
    g.add_argument(
        "--max-mem-mb",
        type=float,
        default=512,
        help="MiB for one worker's block of positions: read buffers, working copies, results "
        "(sets positions per block; one must fit). Not a process limit: imports (~370 MiB) "
        "and set-up (~210 MiB for an Eiger 1M integrator) come on top (default 512)",
    )
    g.add_argument(
        "--override",
        action="store_true",
        help="recompute even if the same parameters were run before",
    )
    g.add_argument("--no-progress", action="store_true", help="no progress bar")
    g.add_argument(
        "--no-read-ahead",
        action="store_true",
        help="serial runs: read and compute blocks in turn (default: the next block of frames is "
        "read in a thread meanwhile)",
    )


def execution_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    cluster = None
    security = cluster_security_kwargs(args)
    if args.cluster:
        missing = [k for k in ("cores", "memory") if getattr(args, k) is None]
        if missing:
            raise InputError(f"--cluster {args.cluster} needs --{' and --'.join(missing)}")
        cluster = {
            "kind": args.cluster,
            "cores": args.cores,
            "memory": args.memory,
            "jobs": args.jobs,
        }
        if args.walltime:
            cluster["walltime"] = args.walltime
        if args.queue:
            cluster["queue"] = args.queue
        cluster.update(security)
    if args.n_jobs < 1:
        raise InputError(f"--n-jobs must be at least 1; got {args.n_jobs}")
    if not (math.isfinite(args.max_mem_mb) and 0 < args.max_mem_mb <= MAX_MEM_MB):
        raise InputError(
            f"--max-mem-mb {args.max_mem_mb}: expected a finite number of MiB > 0 and <= {MAX_MEM_MB}"
        )
    return {
        "n_jobs": args.n_jobs,
        "scheduler": args.scheduler,
        "cluster": cluster,
        "max_mem_mb": args.max_mem_mb,
        "progress": not args.no_progress,
        "read_ahead": not args.no_read_ahead,
    }


def report(summary, name: str) -> None:
    import logging

    log = logging.getLogger("pyscatter")
    if summary.reused:
        log.info(
            "%s: reused %s (same parameters and source; --override recomputes)", name, summary.group
        )
    else:
        rate = summary.computed_positions / summary.seconds if summary.seconds else float("nan")
        log.info(
            "%s: %s%s, %d of %d positions computed in %.1f s (%.1f positions/s)",
            name,
            summary.group,
            " (resumed)" if summary.resumed else "",
            summary.computed_positions,
            summary.total_positions,
            summary.seconds,
            rate,
        )
