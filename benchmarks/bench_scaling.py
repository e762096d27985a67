"""Scaling: 1k against 10k frames (throughput and memory flat), and 1 against 2 workers.

10k Eiger-1M frames would be 44 GB of raw data, so this figure uses small frames (256 × 256
uint32 by default, 0.26 MB raw each; a generic 172 µm detector with two rings), written as a
bitshuffle-LZ4 USID file through the io layer. Drawing 10k frames of noise would cost more than
the measurement, so ``distinct`` frames (default 100) are drawn and cycled: decoding and
integrating do the same work whatever the counts.

Each measurement runs in a fresh interpreter (a child process) so that peaks and allocator
state never mix: the child imports everything, records its resident set (baseline), then times
:func:`~pyscatter.processes.base.run_on_file` with ``AzimuthalIntegration`` (``npt`` bins,
``max_mem_mb``, ``n_jobs`` workers, ``override=True``) and reports frames/s (wall clock, and per
block: :func:`common.steady_rate`) and the peak RSS above its baseline (``VmHWM``), split into
what the set-up holds (resident once the integrator is built) and what the blocks add on top.
With ``n_jobs > 1`` the workers' resident sets are sampled every 20 ms and their largest sum is
reported too. Rounds alternate the order of the runs; each run adds a results group to the same
file (``override=True``, which reads none of the earlier ones).

Run alone: ``.venv/bin/python benchmarks/bench_scaling.py [--small 1000] [--large 10000]``.
"""

# ruff: noqa: I001 (import order: common before numpy, see below)
from __future__ import annotations

import common  # first: sets OMP_NUM_THREADS before numpy and pyFAI load

import argparse
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

SCRIPT = Path(__file__).resolve()
SHAPE = (256, 256)
NPT = 500
MAX_MEM_MB = 64


def make_file(directory: Path, n_frames: int, shape=SHAPE, *, distinct: int = 100) -> Path:
    ai = common.small_integrator(shape)
    name = f"small_{shape[0]}x{shape[1]}_{n_frames}.h5"
    return common.write_ring_scan(directory / name, ai, shape, n_frames, distinct=distinct)


class _WorkerSampler(threading.Thread):
    """Largest summed RSS of this process's descendants, sampled every ``interval`` s."""

    def __init__(self, interval: float = 0.02) -> None:
        super().__init__(daemon=True)
        import psutil

        self.me = psutil.Process()
        self.interval = interval
        self.peak = 0.0
        self.stop = threading.Event()

    def run(self) -> None:
        import psutil

        while not self.stop.is_set():
            total = 0
            for proc in self.me.children(recursive=True):
                try:
                    total += proc.memory_info().rss
                except psutil.Error:
                    pass
            self.peak = max(self.peak, total / common.MiB)
            self.stop.wait(self.interval)


def child(payload: dict[str, Any]) -> dict[str, Any]:
    """One timed run in this fresh process."""
    import h5py
    import hdf5plugin  # noqa: F401
    import pyFAI  # noqa: F401

    import pyscatter  # noqa: F401
    from pyscatter.processes.base import run_on_file
    from pyscatter.processes.integration import AzimuthalIntegration

    path = Path(payload["path"])
    with h5py.File(path, "r") as h5:
        n = h5["Measurement_000/Channel_000/Raw_Data"].shape[0]
    sampler = _WorkerSampler()
    baseline = common.rss_mb()
    common.reset_peak()
    sampler.start()
    setup: dict[str, float] = {}

    def after_build(_process, _func) -> None:
        setup["rss"] = common.rss_mb()
        setup["peak"] = common.peak_mb()
        common.reset_peak()

    with common.process_marks(AzimuthalIntegration, after_build) as marks:
        t0 = time.perf_counter()
        summary = run_on_file(
            path,
            AzimuthalIntegration,
            override=True,
            npt=payload["npt"],
            max_mem_mb=payload["max_mem_mb"],
            n_jobs=payload["n_jobs"],
            progress=False,
        )
        t1 = time.perf_counter()
    seconds = t1 - t0
    sampler.stop.set()
    sampler.join()
    if summary.computed_positions != n:
        raise RuntimeError(f"computed {summary.computed_positions} of {n} positions")
    return {
        "frames": n,
        "n_jobs": payload["n_jobs"],
        "seconds": seconds,
        "fps": n / seconds,
        "steady_fps": common.steady_rate(marks, n, workers=payload["n_jobs"])
        or n / (t1 - marks["build_end"]),
        "blocks": len(marks["blocks"]),
        "peak_mb": max(common.peak_mb(), setup["peak"]) - baseline,
        "blocks_above_setup_mb": common.peak_mb() - setup["rss"],
        "setup_mb": setup["rss"] - baseline,
        "block_size": marks["block_size"],
        "workers_peak_mb": sampler.peak,
        "baseline_mb": baseline,
    }


def measure(
    small: Path,
    large: Path,
    rounds: int,
    *,
    workers: bool = True,
    max_mem_mb: float = MAX_MEM_MB,
) -> dict[str, Any]:
    """Alternate children: small/1 worker, large/1 worker and (``workers``) large/2 workers."""
    cases = {"small": (small, 1), "large": (large, 1)}
    if workers:
        cases["large_2"] = (large, 2)
    runs: dict[str, list[dict[str, Any]]] = {k: [] for k in cases}
    names = list(cases)
    for r in range(rounds):
        order = names[r % len(names) :] + names[: r % len(names)]
        for name in order:
            path, n_jobs = cases[name]
            payload = {"path": str(path), "n_jobs": n_jobs, "npt": NPT, "max_mem_mb": max_mem_mb}
            runs[name].append(common.run_child(SCRIPT, payload))
    out: dict[str, Any] = {"rounds": rounds, "max_mem_mb": max_mem_mb}
    for name, results in runs.items():
        out[name] = {
            "frames": results[0]["frames"],
            "fps": common.median([x["fps"] for x in results]),
            "steady_fps": common.median([x["steady_fps"] for x in results]),
            "peak_mb": common.median([x["peak_mb"] for x in results]),
            "workers_peak_mb": common.median([x["workers_peak_mb"] for x in results]),
            "blocks_mb": common.median([x["blocks_above_setup_mb"] for x in results]),
            "setup_mb": common.median([x["setup_mb"] for x in results]),
            "block_size": results[0]["block_size"],
            "all_fps": [round(x["fps"], 1) for x in results],
            "all_steady": [round(x["steady_fps"], 1) for x in results],
            "blocks": results[0]["blocks"],
        }
    return out


def _buffers(r: dict[str, Any], shape) -> str:
    """MiB of the read buffers a serial run keeps: two of a full block (read-ahead)."""
    frame = shape[0] * shape[1] * 4 / common.MiB
    return f"2 × {r['block_size'] * frame:.0f}"


def rows(result: dict[str, Any], shape=SHAPE) -> list[common.Row]:
    s, big = result["small"], result["large"]
    size = f"{shape[0]}×{shape[1]}"
    fps_ratio = big["steady_fps"] / s["steady_fps"]
    mem_ratio = big["peak_mb"] / s["peak_mb"]
    out = [
        common.Row(
            f"scaling: throughput per block (median), {big['frames']:,} vs {s['frames']:,} "
            "frames "
            f"({size}, 1 worker)",
            big["steady_fps"],
            s["steady_fps"],
            "frames/s",
            target="flat (≥ 0.9×)",
            passed=fps_ratio >= 0.9,
            note=(
                f"{s['blocks']} and {big['blocks']} blocks; per round {s['all_steady']} and "
                f"{big['all_steady']}; wall clock with set-up {s['fps']:.0f} and "
                f"{big['fps']:.0f} frames/s"
            ),
        ),
        common.Row(
            f"scaling: peak RSS above baseline, {big['frames']:,} vs {s['frames']:,} frames",
            big["peak_mb"],
            s["peak_mb"],
            "MiB",
            target="flat (≤ 1.1×)",
            passed=mem_ratio <= 1.1,
            note=(
                f"max_mem_mb={result['max_mem_mb']:g}, npt={NPT}, a child process per run, "
                f"medians of {result['rounds']} rounds; the set-up holds {s['setup_mb']:.1f} and "
                f"{big['setup_mb']:.1f} MiB above the baseline, the blocks phase adds "
                f"{s['blocks_mb']:.0f} and {big['blocks_mb']:.0f} MiB above the set-up "
                f"(blocks of {big['block_size']} frames: {_buffers(s, shape)} and "
                f"{_buffers(big, shape)} MiB of uint32 read buffers)"
            ),
        ),
    ]
    if "large_2" in result:
        two = result["large_2"]
        out.append(
            common.Row(
                f"scaling: 2 workers vs 1 (n_jobs=2), {big['frames']:,} frames, wall clock",
                two["fps"],
                big["fps"],
                "frames/s",
                target="2× on 2 free cores",
                passed=None,
                note=(
                    f"per round {two['all_fps']} vs {big['all_fps']} (worker start-up "
                    f"included: loky spawns the workers, each imports pyFAI and builds its "
                    f"integrator); after the first block {two['steady_fps']:.0f} vs "
                    f"{big['steady_fps']:.0f} frames/s "
                    f"({two['steady_fps'] / big['steady_fps']:.2f}×); parent peak "
                    f"{two['peak_mb']:.0f} MiB + workers {two['workers_peak_mb']:.0f} MiB "
                    f"(1 worker: {big['peak_mb']:.0f} MiB)"
                ),
            )
        )
    return out


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if common.child_main(argv, child):
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", type=int, default=1000)
    parser.add_argument("--large", type=int, default=10000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--no-workers", action="store_true", help="skip the n_jobs=2 runs")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="pyscatter-bench-") as tmp:
        t0 = time.perf_counter()
        small = make_file(Path(tmp), args.small)
        large = make_file(Path(tmp), args.large)
        print(f"wrote the scans in {time.perf_counter() - t0:.0f} s", flush=True)
        result = measure(small, large, args.rounds, workers=not args.no_workers)
    table = rows(result)
    print(common.format_table(table))
    for row in table:
        print(f"{row.figure}: {row.note}")


if __name__ == "__main__":
    main()
