"""Stress: SIGKILL a running integration many times at random moments, resume, compare bits.

Not part of the default test run (``make stress``). Prints the table the resume contract is
judged by: kills, file opened, resumed, identical (and raw data untouched).

    python tests/stress/kill_resume.py --kills 200
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import multiprocessing
import os
import signal
import sys
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/ for conftest.write_scan

from conftest import write_scan  # noqa: E402

from pyscatter import datasets  # noqa: E402
from pyscatter.io import safety  # noqa: E402
from pyscatter.io.record import verified_positions  # noqa: E402
from pyscatter.processes.base import run_on_file  # noqa: E402
from pyscatter.processes.integration import AzimuthalIntegration  # noqa: E402

PARAMS = dict(npt=200, unit="q_nm^-1", error_model="poisson", max_mem_mb=0.7, progress=False)


def raw_sha(path: Path) -> str:
    with h5py.File(path, "r") as h5:
        return hashlib.sha256(h5["Measurement_000/Channel_000/Raw_Data"][()].tobytes()).hexdigest()


def result_bytes(path: Path, group: str) -> bytes:
    with h5py.File(path, "r") as h5:
        return b"".join(h5[group][k][()].tobytes() for k in ("Intensity", "Intensity_Sigma"))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--kills", type=int, default=200)
    parser.add_argument("--kills-per-file", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["pyscatter.processes.integration", "pyscatter.kernels.integrate"])
    rng = np.random.default_rng(args.seed)
    scan = datasets.make_scan((6, 8), rng=1)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        ref = write_scan(tmp / "ref.h5", scan)
        proc = ctx.Process(target=run_on_file, args=(str(ref), AzimuthalIntegration), kwargs=PARAMS)
        proc.start()  # warms the forkserver up (it imports pyscatter once)
        proc.join()
        timing = write_scan(tmp / "timing.h5", scan)
        t0 = time.perf_counter()
        proc = ctx.Process(
            target=run_on_file, args=(str(timing), AzimuthalIntegration), kwargs=PARAMS
        )
        proc.start()
        while safety.read_status(timing) is None and proc.is_alive():
            time.sleep(0.001)
        t_first = time.perf_counter() - t0
        proc.join()
        full = time.perf_counter() - t0
        block_time = (full - t_first) / scan.n_positions
        expected = result_bytes(
            ref, "/Measurement_000/Channel_000/Raw_Data-AzimuthalIntegration_000"
        )
        counts = dict(
            kills=0,
            killed_live=0,
            opened=0,
            resumed=0,
            identical=0,
            raw_intact=0,
            exact_count=0,
            files=0,
        )
        while counts["kills"] < args.kills:
            path = write_scan(tmp / f"k{counts['files']}.h5", scan)
            sha = raw_sha(path)
            counts["files"] += 1
            for _ in range(min(args.kills_per_file, args.kills - counts["kills"])):
                done = (safety.read_status(path) or {}).get("done", 0)
                left = scan.n_positions - done
                proc = ctx.Process(
                    target=run_on_file, args=(str(path), AzimuthalIntegration), kwargs=PARAMS
                )
                proc.start()
                if rng.random() < 0.25 or left < 3:  # set-up, journaled link, start-up
                    time.sleep(rng.uniform(0, t_first))
                else:  # after a random number of blocks, at a random moment of the next
                    target = done + int(rng.integers(1, left - 1))
                    while (safety.read_status(path) or {}).get("done", 0) < target:
                        if not proc.is_alive():
                            break
                        time.sleep(0.001)
                    time.sleep(rng.uniform(0, block_time))
                with contextlib.suppress(ProcessLookupError):  # it may have finished already
                    os.kill(proc.pid, signal.SIGKILL)
                proc.join()
                counts["kills"] += 1
                counts["killed_live"] += proc.exitcode == -signal.SIGKILL
                try:
                    with safety.job_lock(path):
                        safety.repair(path)
                    with h5py.File(path, "r") as h5:
                        chan = h5["Measurement_000/Channel_000"]
                        groups = [chan[k] for k in sorted(chan) if "Azimuthal" in k]
                        done = int(verified_positions(groups[-1]).sum()) if groups else 0
                    counts["opened"] += 1
                except Exception as exc:  # reported in the table, not raised
                    print(f"kill {counts['kills']}: file did not open: {exc}")
                    continue
            summary = run_on_file(path, AzimuthalIntegration, **PARAMS)
            counts["resumed"] += 1
            counts["exact_count"] += summary.computed_positions == scan.n_positions - done
            counts["identical"] += result_bytes(path, summary.group) == expected
            counts["raw_intact"] += raw_sha(path) == sha
            path.unlink()
        print(f"\nreference run {full:.2f} s, {scan.n_positions} positions")
        print(
            "| kills | killed while running | file opened | files resumed | identical bits "
            "| only missing computed | raw data intact |"
        )
        print("|---|---|---|---|---|---|---|")
        f = counts["files"]
        print(
            f"| {counts['kills']} | {counts['killed_live']} | {counts['opened']}/{counts['kills']} "
            f"| {counts['resumed']}/{f} | {counts['identical']}/{f} | {counts['exact_count']}/{f} "
            f"| {counts['raw_intact']}/{f} |"
        )
        ok = (
            counts["opened"] == counts["kills"]
            and counts["identical"] == f
            and counts["raw_intact"] == f
            and counts["exact_count"] == f
        )
        return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
