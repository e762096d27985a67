"""Memory bound: integrate a raw dataset many times larger than ``max_mem_mb``; peak RSS vs budget.

A fresh interpreter (a child process, so no earlier allocation hides or inflates the peak)
imports pyscatter and the integration process, records its resident set (the *baseline*),
then runs :func:`~pyscatter.processes.base.run_on_file` with ``AzimuthalIntegration`` on the
file (one worker, the given ``max_mem_mb``). The kernel's peak-RSS counter (``VmHWM``) is reset
at three marks so each phase has its own peak:

- set-up: opening the file, the source checks and building the integrator (pyFAI's geometry
  arrays and CSR matrix, the batched integrator), up to the first block;
- blocks: reading, integrating and writing every block of positions.

"Overhead" is the resident set after the set-up minus the baseline: memory that does not scale
with ``max_mem_mb`` (the integrator's matrices and per-pixel arrays, pyFAI's cached arrays,
allocator slack). The process meets its budget when the peak of the blocks phase stays within
``overhead + max_mem_mb``; the report also gives the whole run's peak above the baseline.

The instrumentation (:func:`common.process_marks`) wraps the first call of
``AzimuthalIntegration._local_function`` (the integrator's build) to place the marks; nothing
of the process is changed, except that ``trim_after_setup`` calls glibc's ``malloc_trim(0)``
there, to show what returning pyFAI's freed set-up memory to the system would gain.

Whole process (``--whole``): the peak resident set of an entire ``pyscatter integrate`` command
(a child process started from the shell's view: interpreter, imports, pyFAI, the integrator,
the blocks), read from the kernel's accounting of the finished child (its ``ru_maxrss``, read
by a small launcher process), for several ``--max-mem-mb``; and of a child that only imports
what the command imports, the fixed cost no budget can lower.

Run alone: ``.venv/bin/python benchmarks/bench_memory.py [--frames 350] [--max-mem-mb 128]``
(350 Eiger-1M frames are 1.5 GB of raw uint32), or
``.venv/bin/python benchmarks/bench_memory.py --whole --frames 100 --budgets 20,64,256,1024``.
"""

# ruff: noqa: I001 (import order: common before numpy, see below)
from __future__ import annotations

import common  # first: sets OMP_NUM_THREADS before numpy and pyFAI load

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

SCRIPT = Path(__file__).resolve()
ROOT = SCRIPT.parent.parent  # the pyscatter checkout these benchmarks belong to


def _integrator_bytes(func: Any) -> int:
    """Bytes of the arrays held by the BatchIntegrator inside a block function."""
    import numpy as np
    import scipy.sparse as sp

    from pyscatter.kernels.integrate import BatchIntegrator

    seen: set[int] = set()
    stack = [func]
    while stack:
        obj = stack.pop()
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        if isinstance(obj, BatchIntegrator):
            total = 0
            for value in vars(obj).values():
                if isinstance(value, np.ndarray):
                    total += value.nbytes
                elif sp.issparse(value):
                    total += sum(getattr(value, a).nbytes for a in ("data", "indices", "indptr"))
            return total
        for cell in getattr(obj, "__closure__", None) or ():
            stack.append(cell.cell_contents)
        # a FrameBlocks holds its kernel call in ``process``; a bound method its object
        stack.extend(
            x
            for x in (getattr(obj, "process", None), getattr(obj, "__self__", None))
            if x is not None
        )
    return 0


def _malloc_trim() -> bool:
    """Return the free memory of glibc's heap to the system (``malloc_trim(0)``)."""
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return bool(libc.malloc_trim(0))
    except (OSError, AttributeError):  # not glibc
        return False


def child(payload: dict[str, Any]) -> dict[str, Any]:
    """Measure one run in this (fresh) process; see the module docstring."""
    import h5py
    import hdf5plugin  # noqa: F401
    import pyFAI  # noqa: F401

    import pyscatter  # noqa: F401
    from pyscatter.processes.base import run_on_file
    from pyscatter.processes.integration import AzimuthalIntegration

    marks: dict[str, float] = {}
    info: dict[str, Any] = {}

    def after_build(process, func) -> None:
        marks["build_peak"] = common.peak_mb()
        marks["after_build_rss_untrimmed"] = common.rss_mb()
        if payload.get("trim_after_setup"):
            _malloc_trim()
        marks["after_build_rss"] = common.rss_mb()
        info["positions_per_block"] = process.positions_per_block()
        info["integrator_mb"] = _integrator_bytes(func) / common.MiB
        common.reset_peak()

    path = Path(payload["path"])
    with h5py.File(path, "r") as h5:
        raw = h5["Measurement_000/Channel_000/Raw_Data"]
        n, width = raw.shape
        frame_bytes = width * raw.dtype.itemsize
    baseline = common.rss_mb()
    common.reset_peak()
    with common.process_marks(AzimuthalIntegration, after_build) as times:
        t0 = time.perf_counter()
        summary = run_on_file(
            path,
            AzimuthalIntegration,
            override=True,
            npt=payload.get("npt", 1000),
            error_model=payload.get("error_model"),
            max_mem_mb=payload["max_mem_mb"],
            n_jobs=1,
            progress=False,
        )
        seconds = time.perf_counter() - t0
    blocks_peak = common.peak_mb()
    if "build_peak" not in marks:  # pragma: no cover - the integrator was not built here
        raise RuntimeError("the integrator build was not observed")
    block = info["positions_per_block"]
    return {
        "frames": n,
        "raw_mb": n * frame_bytes / common.MiB,
        "max_mem_mb": payload["max_mem_mb"],
        "error_model": payload.get("error_model"),
        "trim_after_setup": bool(payload.get("trim_after_setup")),
        "seconds": seconds,
        "build_s": times["build_end"] - times["build_start"],
        "computed": summary.computed_positions,
        "baseline_mb": baseline,
        "setup_peak_mb": marks["build_peak"] - baseline,
        "overhead_mb": marks["after_build_rss"] - baseline,
        "overhead_untrimmed_mb": marks["after_build_rss_untrimmed"] - baseline,
        "blocks_peak_mb": blocks_peak - baseline,
        "blocks_above_setup_mb": blocks_peak - marks["after_build_rss"],
        "final_mb": common.rss_mb() - baseline,
        "positions_per_block": block,
        "block_buffer_mb": block * frame_bytes / common.MiB,
        "last_block": n % block,
        "integrator_mb": info["integrator_mb"],
    }


def measure(
    path: Path,
    max_mem_mb: float,
    *,
    error_model: str | None = None,
    trim_after_setup: bool = False,
) -> dict[str, Any]:
    """Run the measurement in a child process (see :func:`child`).

    ``trim_after_setup`` calls glibc's ``malloc_trim(0)`` right after the integrator is built:
    what the process would gain by returning pyFAI's set-up temporaries to the system.
    """
    payload = {
        "path": str(path),
        "max_mem_mb": max_mem_mb,
        "error_model": error_model,
        "trim_after_setup": trim_after_setup,
    }
    return common.run_child(SCRIPT, payload)


def _note(r: dict[str, Any]) -> str:
    return (
        f"overhead (RSS after set-up − baseline) {r['overhead_mb']:.0f} MiB (before any trim "
        f"{r['overhead_untrimmed_mb']:.0f}), of which the batched integrator's arrays "
        f"{r['integrator_mb']:.0f} MiB; blocks of {r['positions_per_block']} frames "
        f"(two {r['block_buffer_mb']:.0f} MiB uint32 read buffers with read-ahead, last block "
        f"{r['last_block'] or r['positions_per_block']}) add {r['blocks_above_setup_mb']:.0f} MiB "
        f"above the set-up; set-up transient peak {r['setup_peak_mb']:.0f} MiB; baseline "
        f"{r['baseline_mb']:.0f} MiB (after imports); {r['seconds']:.1f} s"
    )


def rows(as_is: dict[str, Any], trimmed: dict[str, Any] | None = None) -> list[common.Row]:
    """The blocks-phase peak against budget + overhead (as is, trimmed) and the whole-run peak."""
    budget = as_is["max_mem_mb"]
    sigma = "" if as_is["error_model"] is None else f", σ {as_is['error_model']}"
    size = (
        f"{as_is['raw_mb'] / 1024:.2f} GiB raw = {as_is['raw_mb'] / budget:.0f}× max_mem_mb{sigma}"
    )
    out = []
    for r, how in ((as_is, "as is"), (trimmed, "heap trimmed after set-up")):
        if r is None:
            continue
        out.append(
            common.Row(
                f"memory bound ({how}): {size}; peak RSS of the blocks above baseline",
                r["blocks_peak_mb"],
                budget + r["overhead_mb"],
                "MiB",
                target="≤ budget + overhead",
                passed=r["blocks_peak_mb"] <= budget + r["overhead_mb"],
                note=f"max_mem_mb={budget:g}; " + _note(r),
            )
        )
    best = trimmed if trimmed is not None else as_is
    whole = max(as_is["setup_peak_mb"], as_is["blocks_peak_mb"])
    out.append(
        common.Row(
            "memory bound: whole-run peak RSS above baseline (the set-up's) vs budget + "
            f"{'trimmed ' if trimmed is not None else ''}overhead",
            whole,
            budget + best["overhead_mb"],
            "MiB",
            target="≤ budget + overhead",
            passed=whole <= budget + best["overhead_mb"],
            note=(
                f"the peak of the run is the integrator's set-up ({as_is['setup_peak_mb']:.0f} "
                f"MiB above baseline: pyFAI building its CSR matrix), independent of "
                f"max_mem_mb; compared with the budget plus the overhead that remains once "
                f"freed memory is returned ({best['overhead_mb']:.0f} MiB)"
            ),
        )
    )
    return out


#: What the ``integrate`` command imports before it reads a frame (its fixed cost).
IMPORTS = (
    "import hdf5plugin, pyFAI.integrator.azimuthal, pyscatter.cli, pyscatter.processes.base, "
    "pyscatter.processes.integration, pyscatter.processes.integration_worker"
)


#: Runs ``sys.argv[1:]`` as its child and prints that child's ``ru_maxrss`` (KiB). Linux keeps
#: the larger of a process's own peak and the RSS of what it was forked from (the memory of
#: this benchmark, ~200 MiB) across ``exec``: only a child of a small process reads true.
_LAUNCHER = (
    "import resource, subprocess, sys\n"
    "code = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL).returncode\n"
    "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
    "sys.exit(code)\n"
)


def _peak_of(argv: list[str]) -> float:
    """Peak RSS (MiB) of a child running ``argv`` to its end (its ``ru_maxrss``)."""
    env = dict(
        os.environ,
        PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    )
    proc = subprocess.run(
        [sys.executable, "-c", _LAUNCHER, *argv], env=env, capture_output=True, text=True
    )
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({proc.returncode}): {proc.stderr}")
    return int(proc.stdout.split()[-1]) / 1024  # KiB on Linux


def whole_process(
    path: Path, budgets: list[float], *, npt: int = 1000, error_model: str | None = None
) -> list[dict[str, Any]]:
    """Peak RSS of a whole ``pyscatter integrate`` per budget, and of its imports alone."""
    import h5py

    with h5py.File(path, "r") as h5:
        raw = h5["Measurement_000/Channel_000/Raw_Data"]
        frames, frame_mb = raw.shape[0], raw.shape[1] * raw.dtype.itemsize / common.MiB
    imports = _peak_of([sys.executable, "-c", IMPORTS])
    out = []
    for budget in budgets:
        argv = [sys.executable, "-m", "pyscatter", "integrate", str(path), "--npt", str(npt)]
        argv += ["--max-mem-mb", f"{budget:g}", "--override", "--no-progress"]
        if error_model:
            argv += ["--error-model", error_model]
        t0 = time.perf_counter()
        peak = _peak_of(argv)
        with h5py.File(path, "r") as h5:
            groups = [k for k in h5["Measurement_000/Channel_000"] if "AzimuthalIntegration" in k]
            block = int(
                h5["Measurement_000/Channel_000"][sorted(groups)[-1]].attrs["positions_per_chunk"]
            )
        out.append(
            {
                "max_mem_mb": budget,
                "peak_mb": peak,
                "imports_mb": imports,
                "above_imports_mb": peak - imports,
                "frames": frames,
                "frame_mb": frame_mb,
                "positions_per_block": block,
                "seconds": time.perf_counter() - t0,
            }
        )
    return out


def whole_rows(results: list[dict[str, Any]]) -> list[common.Row]:
    """One row per budget: the whole process's peak RSS against imports + the budget."""
    rows_ = []
    for r in results:
        bound = r["imports_mb"] + r["max_mem_mb"]
        rows_.append(
            common.Row(
                f"whole `pyscatter integrate` peak RSS, --max-mem-mb {r['max_mem_mb']:g}",
                r["peak_mb"],
                bound,
                "MiB",
                target="reported (budget bounds blocks, not the process)",
                passed=None,
                note=(
                    f"imports alone {r['imports_mb']:.0f} MiB; above them "
                    f"{r['above_imports_mb']:.0f} MiB; blocks of {r['positions_per_block']} "
                    f"frames of {r['frame_mb']:.1f} MiB ({r['frames']} frames); "
                    f"{r['seconds']:.1f} s"
                ),
            )
        )
    return rows_


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if common.child_main(argv, child):
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=350, help="Eiger-1M frames (4.4 MB each)")
    parser.add_argument("--max-mem-mb", type=float, default=128)
    parser.add_argument("--error-model", default=None, choices=["poisson"], help="sigma model")
    parser.add_argument("--file", type=Path, help="use this scan instead of writing one")
    parser.add_argument("--trim", action="store_true", help="malloc_trim(0) after the set-up")
    parser.add_argument("--whole", action="store_true", help="peak RSS of whole processes")
    parser.add_argument("--budgets", default="20,64,256,1024", help="--whole: max_mem_mb values")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="pyscatter-bench-") as tmp:
        path = args.file
        if path is None:
            from bench_end_to_end import make_file

            path = make_file(Path(tmp), args.frames)
        if args.whole:
            budgets = [float(b) for b in args.budgets.split(",")]
            results = whole_process(path, budgets, error_model=args.error_model)
            table = whole_rows(results)
            print(common.format_table(table))
            for row in table:
                print(f"- {row.figure}: {row.note}")
            return
        result = measure(
            path, args.max_mem_mb, error_model=args.error_model, trim_after_setup=args.trim
        )
    for key, value in result.items():
        print(f"{key:22s} {value:.1f}" if isinstance(value, float) else f"{key:22s} {value}")
    table = rows(result)
    print(common.format_table(table))
    for row in table:
        print(f"- {row.figure}: {row.note}")


if __name__ == "__main__":
    main()
