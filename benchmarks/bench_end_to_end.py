"""End to end: a bitshuffle-LZ4 USID scan file → I(q) for every frame → results in a file.

- pyscatter: :func:`pyscatter.processes.base.run_on_file` with
  :class:`~pyscatter.processes.integration.AzimuthalIntegration` (the real process: job lock,
  repair, crash-safe writes with fsync barriers and completion records, resumable), one worker,
  default options (``max_mem_mb=512``, read-ahead on), ``override=True`` so every repeat
  recomputes into a new results group.
- peer: the loop a user writes first: open the file with h5py, build a pyFAI integrator from
  the recorded geometry, then for each frame ``dset[i]`` → ``ai.integrate1d_ng`` → write the
  row into an output dataset of another HDF5 file.

Both: 1000 bins in q (nm⁻¹), method ``("bbox", "csr", "cython")``, solid-angle correction, no
polarization, no sigma, frames read from the page cache (the file was just written). Two
configurations, each measured in alternating rounds after one untimed run of the process
(pyFAI loads some of its modules on first use):

- **whole machine** (the target): every core for each side, as each runs by default — pyFAI's
  OpenMP threads for the naive loop (and for pyFAI's part of the process's set-up), and the
  process's read-ahead thread, which reads and decompresses the next block while this one is
  integrated;
- **one core each**: pyFAI with one OpenMP thread, the process without read-ahead.

Times are wall-clock including building the integrator. The results of the two are compared
(largest relative deviation).

Run alone: ``.venv/bin/python benchmarks/bench_end_to_end.py [--frames 350] [--repeats 3]``.
"""

# ruff: noqa: I001 (import order: common before numpy, see below)
from __future__ import annotations

import common  # first: sets OMP_NUM_THREADS before numpy and pyFAI load

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np


RAW = "Measurement_000/Channel_000/Raw_Data"
NPT = 1000
METHOD = ("bbox", "csr", "cython")
UNIT = "q_nm^-1"


def make_file(directory: Path, n_frames: int, *, seed: int = 0) -> Path:
    """``n_frames`` Eiger-1M-size uint32 frames with rings, bitshuffle-LZ4, one chunk per frame."""
    ai, shape = common.eiger_integrator()
    return common.write_ring_scan(
        directory / f"eiger_{n_frames}.h5", ai, shape, n_frames, seed=seed
    )


def cores() -> int:
    """Cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def run_process(path: Path, **options) -> dict:
    """The resumable process on ``path`` (recomputing into a new group); summary and phases."""
    from pyscatter.processes.base import run_on_file
    from pyscatter.processes.integration import AzimuthalIntegration

    options = {"npt": NPT, "unit": UNIT, "method": METHOD, "progress": False, **options}
    with common.process_marks(AzimuthalIntegration) as marks:
        t0 = time.perf_counter()
        summary = run_on_file(path, AzimuthalIntegration, override=True, **options)
        t1 = time.perf_counter()
    return {
        "group": summary.group,
        "positions": summary.computed_positions,
        "init_s": marks["init_end"] - marks["init_start"],
        "build_s": marks["build_end"] - marks["build_start"],
        "steady_s": t1 - marks["build_end"],
        "blocks_fps": common.steady_rate(marks, summary.computed_positions),
        "total_s": t1 - t0,
    }


def run_naive(path: Path, out_path: Path) -> dict:
    """The per-frame loop: h5py read, ``integrate1d_ng``, write the row; its phases."""
    import hdf5plugin  # noqa: F401  (bitshuffle-LZ4 filter)
    import pyFAI

    t0 = time.perf_counter()
    with h5py.File(path, "r") as h5, h5py.File(out_path, "w") as out:
        dset = h5[RAW]
        ai = pyFAI.load(json.loads(h5["Measurement_000"].attrs["geometry"]))
        shape = ai.detector.shape
        result = out.create_dataset("Intensity", shape=(dset.shape[0], NPT), dtype=np.float32)
        t_first = t0
        for i in range(dset.shape[0]):
            frame = dset[i].reshape(shape)
            res = ai.integrate1d_ng(frame, NPT, unit=UNIT, method=METHOD, correctSolidAngle=True)
            result[i] = res.intensity
            if i == 0:
                t_first = time.perf_counter()  # pyFAI built its engine on the first frame
    t1 = time.perf_counter()
    return {"first_s": t_first - t0, "steady_s": t1 - t_first, "total_s": t1 - t0}


def deviation(path: Path, group: str, naive_path: Path) -> float:
    """Largest relative deviation of the process's Intensity from the naive loop's."""
    with h5py.File(path, "r") as h5, h5py.File(naive_path, "r") as ref:
        ours = h5[group]["Intensity"][()]
        theirs = ref["Intensity"][()]
    keep = theirs != 0
    return float(np.max(np.abs(ours[keep] - theirs[keep]) / np.abs(theirs[keep])))


def measure(path: Path, repeats: int, *, threads: int) -> dict:
    """Alternate the process and the naive loop ``repeats`` times on ``path``.

    ``threads``: pyFAI's OpenMP threads on both sides; with more than one, the process also
    reads ahead (its default), else it reads and integrates in turn.
    """
    import hdf5plugin  # noqa: F401  (imports are not timed: pyFAI alone takes 1-2 s)
    import pyFAI  # noqa: F401
    from threadpoolctl import threadpool_limits

    import pyscatter.processes.integration  # noqa: F401

    with h5py.File(path, "r") as h5:
        n = h5[RAW].shape[0]
        raw_bytes = h5[RAW].size * h5[RAW].dtype.itemsize
    naive_out = path.with_name(path.stem + "_naive.h5")
    runs: dict[str, list[dict]] = {"pyscatter": [], "naive": []}
    read_ahead = threads > 1
    with threadpool_limits(limits=threads, user_api="openmp"):
        run_process(path, read_ahead=read_ahead)  # untimed: pyFAI's first-use imports
        common.interleaved(
            {
                "pyscatter": lambda: runs["pyscatter"].append(
                    run_process(path, read_ahead=read_ahead)
                ),
                "naive": lambda: runs["naive"].append(run_naive(path, naive_out)),
            },
            repeats,
        )
    last = runs["pyscatter"][-1]
    if last["positions"] != n:
        raise RuntimeError(f"the process computed {last['positions']} of {n} positions")

    def med(name: str, key: str) -> float:
        return common.median([r[key] for r in runs[name]])

    return {
        "threads": threads,
        "frames": n,
        "raw_gb": raw_bytes / 1e9,
        "file_gb": path.stat().st_size / 1e9,
        "ours_fps": n / med("pyscatter", "total_s"),
        "naive_fps": n / med("naive", "total_s"),
        "ours_steady_fps": n / med("pyscatter", "steady_s"),
        "naive_steady_fps": (n - 1) / med("naive", "steady_s"),
        "init_s": med("pyscatter", "init_s"),
        "build_s": med("pyscatter", "build_s"),
        "naive_first_s": med("naive", "first_s"),
        "blocks_fps": common.median([r["blocks_fps"] or float("nan") for r in runs["pyscatter"]]),
        "ours_s": [round(r["total_s"], 2) for r in runs["pyscatter"]],
        "naive_s": [round(r["total_s"], 2) for r in runs["naive"]],
        "dev": deviation(path, last["group"], naive_out),
    }


def rows(result: dict) -> list[common.Row]:
    """The wall-clock row of one configuration; for the whole machine also the after-set-up row."""
    ratio = result["ours_fps"] / result["naive_fps"]
    n, threads = result["frames"], result["threads"]
    whole = threads > 1
    setup = (
        f"set-up: the process's __init__ {result['init_s']:.2f} s and integrator build "
        f"{result['build_s']:.2f} s, the naive loop's first frame (pyFAI builds its engine) "
        f"{result['naive_first_s']:.2f} s"
    )
    out = [
        common.Row(
            f"end to end, {'whole machine' if whole else 'one core each'}: {n} Eiger-1M frames "
            "bslz4 file → I(q) in the file (wall clock, set-up included)",
            result["ours_fps"],
            result["naive_fps"],
            "frames/s",
            target="≥ 5×" if whole else "(≥ 5×)",
            passed=ratio >= 5 if whole else None,
            note=(
                f"run_on_file(AzimuthalIntegration, npt=1000, bbox/csr, 1 worker, "
                f"{'read-ahead' if whole else 'no read-ahead'}) vs h5py read + integrate1d_ng + "
                f"write per frame; pyFAI OpenMP threads {threads} for both; raw "
                f"{result['raw_gb']:.2f} GB, file {result['file_gb']:.2f} GB; seconds per round "
                f"{result['ours_s']} vs {result['naive_s']}; {setup}; max rel. deviation "
                f"{result['dev']:.1e}"
            ),
        )
    ]
    if whole:
        out.append(
            common.Row(
                f"end to end, whole machine, {n} frames, after set-up (per-frame throughput)",
                result["ours_steady_fps"],
                result["naive_steady_fps"],
                "frames/s",
                target="(≥ 5×)",
                passed=None,
                note=(
                    f"set-up excluded ({setup}); the process per block (median, first "
                    f"excluded): {result['blocks_fps']:.0f} frames/s"
                ),
            )
        )
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=350)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="pyscatter-bench-") as tmp:
        t0 = time.perf_counter()
        path = make_file(Path(tmp), args.frames)
        print(f"wrote {path.name} in {time.perf_counter() - t0:.0f} s", flush=True)
        table = []
        for threads in dict.fromkeys((cores(), 1)):
            table += rows(measure(path, args.repeats, threads=threads))
    print(common.format_table(table))
    for row in table:
        print(row.note)


if __name__ == "__main__":
    main()
