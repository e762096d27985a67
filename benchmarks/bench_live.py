"""Live mode: latency and sustained rate of ``pyscatter watch`` behind a simulated Eiger 1M.

A detector thread in this process writes Eiger-like frames (1065 × 1030 uint32, Poisson rings,
module gaps and dead pixels at 0xFFFFFFFF, see :func:`bench_commands.write_inputs`) at a fixed
rate, either

- ``h5``: into a NeXus file whose ``/entry/data/data`` grows one bitshuffle-LZ4 chunk per frame
  (``write_direct_chunk`` of chunks compressed beforehand, then a flush, as a detector writer
  does; ``detectorSpecific/nimages`` declares the count), or
- ``tif``: one TIFF per frame into a folder, written under a temporary name and renamed;

and records the moment each frame is complete on disk. ``pyscatter watch SOURCE -o live.h5
--pipeline integrate.yaml --until-complete`` runs as a subprocess (1000 bins, bbox/csr, the mask:
the integration :mod:`bench_commands` times offline). A monitor thread opens ``live.h5`` read-only without locking every 20 ms, as any
reader may, and records when each position's integration is flagged complete in the file. The
latency of a frame is that moment minus its completion on disk (so it includes the monitor's
20 ms polling). The watcher's resident memory is sampled throughout.

Figures:

- latency at ``--rate`` (default 20 frames/s) over ``--frames`` (default 400): median, 99th
  percentile and maximum (targets ≤ 0.5 s and ≤ 1 s);
- sustained: ``--sustained`` frames (default 5000) at the offline end-to-end rate measured in
  the same run (``translate --link`` + ``integrate`` of a finished file of the same frames, whole
  commands, see :mod:`bench_commands`): the backlog is the latency of the last 10 % of frames
  against the first 10 % (no growing backlog: their ratio stays near 1), and the watcher's RSS
  at the end against after the first 10 %.

Run: ``.venv/bin/python benchmarks/bench_live.py [--kind h5|tif] [--frames N] [--rate HZ]
[--sustained N] [--sustained-rate HZ] [--workdir DIR] [--save RUN.npz]`` (``--save``: each
run's per-frame completion and seen times, to see where a backlog grows). It needs a few GB of disk for 5000 frames (source and live
file).
"""

# ruff: noqa: I001 (import order: common before numpy, see below)
from __future__ import annotations

import common  # noqa: F401  (first: sets OMP_NUM_THREADS before numpy and pyFAI load)

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

import bench_commands

RATE = 20.0
MONITOR_PERIOD = 0.02
#: ``--save``: where each run's per-frame times go (``<stem>_<kind>_<frames>.npz``).
SAVE: Path | None = None


@dataclass
class Pool:
    """Distinct frames, their compressed chunks and TIFF bytes; the PONI and mask files."""

    frames: list[np.ndarray]
    chunks: list[bytes]
    poni: Path
    mask: Path
    tiffs: list[bytes] = field(default_factory=list)


def make_pool(work: Path, kind: str) -> Pool:
    """Frames as :func:`bench_commands.write_inputs` draws them (its file of 32 frames)."""
    import h5py
    import hdf5plugin  # noqa: F401

    inputs = bench_commands.write_inputs(work / "inputs", bench_commands.DISTINCT)
    frames, chunks = [], []
    with h5py.File(inputs.frames, "r") as h5:
        dset = h5[bench_commands.DATASET]
        for i in range(dset.shape[0]):
            frames.append(dset[i])
            chunks.append(bytes(dset.id.read_direct_chunk((i, 0, 0))[1]))
    pool = Pool(frames, chunks, inputs.poni, inputs.mask)
    if kind == "tif":
        import fabio

        scratch = work / "scratch.tif"
        for frame in frames:
            fabio.tifimage.TifImage(data=frame).write(str(scratch))
            pool.tiffs.append(scratch.read_bytes())
        scratch.unlink()
    return pool


class Detector(threading.Thread):
    """Writes ``n`` frames at ``rate`` into ``target``; ``done[i]``: when frame i was complete.

    The file (or folder) exists from construction on, as a detector's does once armed; the
    frames come when the thread runs.
    """

    def __init__(self, pool: Pool, kind: str, target: Path, n: int, rate: float) -> None:
        super().__init__(daemon=True)
        self.pool, self.kind, self.target, self.n, self.rate = pool, kind, target, n, rate
        self.done = np.full(n, np.nan)
        self.error: BaseException | None = None
        self.h5: Any = None
        if kind == "tif":
            target.mkdir(parents=True, exist_ok=True)
            return
        import h5py
        import hdf5plugin

        shape = pool.frames[0].shape
        self.h5 = h5py.File(target, "w", locking=False)
        data = self.h5.create_group("entry/data")
        self.dset = data.create_dataset(
            "data", (0, *shape), dtype=np.uint32, maxshape=(None, *shape),
            chunks=(1, *shape), **hdf5plugin.Bitshuffle(cname="lz4"),
        )  # fmt: skip
        spec = self.h5.create_group("entry/instrument/detector/detectorSpecific")
        spec["nimages"], spec["ntrigger"] = np.int64(n), np.int64(1)
        self.h5.flush()

    def run(self) -> None:
        try:
            self._paced(self._tif if self.kind == "tif" else self._chunk)
        except BaseException as err:  # reported by the caller
            self.error = err
        finally:
            if self.h5 is not None:
                self.h5.close()

    def _chunk(self, i: int) -> None:
        self.dset.resize(i + 1, axis=0)
        self.dset.id.write_direct_chunk((i, 0, 0), self.pool.chunks[i % len(self.pool.chunks)])
        self.h5.flush()

    def _tif(self, i: int) -> None:
        final = self.target / f"frame_{i:05d}.tif"
        temp = final.with_name(final.name + ".tmp")
        temp.write_bytes(self.pool.tiffs[i % len(self.pool.tiffs)])
        os.replace(temp, final)

    def _paced(self, write: Any) -> None:
        t0 = time.monotonic()
        for i in range(self.n):
            delay = t0 + i / self.rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            write(i)
            self.done[i] = time.monotonic()


class Monitor(threading.Thread):
    """Polls the live file as a reader and records when each position's I(q) is flagged."""

    def __init__(self, path: Path, n: int, pid: int) -> None:
        super().__init__(daemon=True)
        self.path, self.n, self.pid = path, n, pid
        self.seen = np.full(n, np.nan)
        self.rss: list[tuple[float, float]] = []  # (positions seen, MiB)
        self.stop = threading.Event()

    def run(self) -> None:
        import h5py
        import psutil

        proc = psutil.Process(self.pid)
        while not self.stop.is_set():
            now = time.monotonic()
            try:
                with h5py.File(self.path, "r", locking=False) as h5:
                    flags = _flags(h5)
                if flags is not None:
                    new = np.isnan(self.seen[: flags.size]) & (flags != 0)
                    self.seen[: flags.size][new] = now
            except (OSError, KeyError):
                pass  # not created yet, or between two writes: try again
            try:
                rss = proc.memory_info().rss / 2**20
                if rss > 0 and proc.status() != psutil.STATUS_ZOMBIE:
                    self.rss.append((float(np.isfinite(self.seen).sum()), rss))
            except psutil.Error:
                pass
            self.stop.wait(MONITOR_PERIOD)


def _flags(h5: Any) -> np.ndarray | None:
    channel = h5.get("Measurement_000/Channel_000")
    if channel is None:
        return None
    names = [k for k in channel if "-AzimuthalIntegration_" in k]
    if not names:
        return None
    return channel[sorted(names)[-1]]["completed_chunks"][()]


def pipeline(pool: Pool, path: Path) -> Path:
    path.write_text(
        f"translate:\n  poni: {pool.poni}\n  mask: {pool.mask}\n"
        f"steps:\n  - integrate: {{npt: {bench_commands.NPT}, unit: {bench_commands.UNIT}, "
        f"method: '{bench_commands.METHOD}'}}\n"
    )
    return path


def run_live(pool: Pool, kind: str, work: Path, n: int, rate: float) -> dict[str, Any]:
    """One watch behind one detector: latencies and the watcher's memory."""
    run = work / f"live_{kind}_{n}"
    shutil.rmtree(run, ignore_errors=True)
    run.mkdir(parents=True)
    source = run / ("frames" if kind == "tif" else "eiger_data.h5")
    out = run / "live.h5"
    detector = Detector(pool, kind, source, n, rate)
    argv = [
        sys.executable, "-m", "pyscatter", "-q", "watch", str(source), "-o", str(out),
        "--pipeline", str(pipeline(pool, run / "p.yaml")), "--until-complete",
        "--poll", "0.02", "--settle", "0.1",
    ]  # fmt: skip
    if kind == "tif":
        argv += ["--grid", f"Image={n}", "--first-number", "0"]
    watcher = subprocess.Popen(argv, env=bench_commands._env(), stdout=subprocess.PIPE, text=True)
    status = Path(str(out) + ".status.json")
    deadline = time.monotonic() + 300
    while not status.exists():  # the watch is started before the scan, as at a beamline
        if watcher.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"watch did not start ({watcher.poll()})")
        time.sleep(0.05)
    monitor = Monitor(out, n, watcher.pid)
    monitor.start()
    detector.start()
    detector.join()
    if detector.error is not None:
        watcher.kill()
        raise detector.error
    watcher.wait(timeout=3600)
    time.sleep(2 * MONITOR_PERIOD)
    monitor.stop.set()
    monitor.join()
    if watcher.returncode != 0:
        raise RuntimeError(f"watch failed ({watcher.returncode}): {watcher.stdout.read()}")
    latency = monitor.seen - detector.done
    tenth = max(1, n // 10)
    rss = np.array(monitor.rss) if monitor.rss else np.zeros((1, 2))
    early = rss[rss[:, 0] >= tenth][:1, 1]
    shutil.rmtree(run, ignore_errors=True)
    if SAVE is not None:  # per-frame times, for a closer look (--save)
        np.savez(SAVE.with_name(f"{SAVE.stem}_{kind}_{n}.npz"), done=detector.done,
                 seen=monitor.seen, rss=rss)  # fmt: skip
    return {
        "kind": kind,
        "frames": n,
        "rate": rate,
        "median": float(np.nanmedian(latency)),
        "p99": float(np.nanpercentile(latency, 99)),
        "max": float(np.nanmax(latency)),
        "missed": int(np.isnan(latency).sum()),
        "first_tenth": float(np.nanmedian(latency[:tenth])),
        "last_tenth": float(np.nanmedian(latency[-tenth:])),
        "rss_early": float(early[0]) if early.size else float("nan"),
        "rss_end": float(rss[-1, 1]),
        "rss_peak": float(rss[:, 1].max()),
    }


def offline_rate(work: Path, rounds: int = 3) -> float:
    """Frames/s of ``translate --link`` + ``integrate`` of a finished 1000-frame file."""
    inputs = bench_commands.write_inputs(work / "offline", 1000)
    times = []
    for _ in range(rounds):
        times.append(bench_commands.run_pyscatter(inputs, work / "offline").wall)
    return 1000 / float(np.median(times))


def measure(
    work: Path, frames: int, rate: float, sustained: int, say: Any = print
) -> list[dict[str, Any]]:
    """The latency runs (h5 and tif) and the sustained run at the offline rate."""
    results = []
    for kind in ("h5", "tif"):
        results.append(run_live(make_pool(work, kind), kind, work, frames, rate))
        say(_line(results[-1]))
    if sustained:
        offline = offline_rate(work)
        say(f"offline end-to-end rate: {offline:.1f} frames/s")
        results.append(run_live(make_pool(work, "h5"), "h5", work, sustained, offline))
        say(_line(results[-1]))
    return results


def rows(results: list[dict[str, Any]]) -> list[common.Row]:
    """The table's rows: latency against its targets, backlog and memory against flat."""
    out = []
    for r in results[:2]:
        what = f"live latency, {r['kind']} frames at {r['rate']:g}/s ({r['frames']})"
        out.append(
            common.Row(f"{what}: median", r["median"], 0.5, "s", "≤ 0.5 s", r["median"] <= 0.5)
        )
        out.append(common.Row(f"{what}: p99", r["p99"], 1.0, "s", "≤ 1 s", r["p99"] <= 1.0))
    for r in results[2:]:
        what = f"live sustained, {r['frames']} h5 frames at the offline rate {r['rate']:.0f}/s"
        grew = r["last_tenth"] > max(2 * r["first_tenth"], r["first_tenth"] + 0.5)
        out.append(
            common.Row(
                f"{what}: latency last / first tenth",
                r["last_tenth"],
                r["first_tenth"],
                "s",
                "no growing backlog",
                not grew and r["missed"] == 0,
                note=f"{r['missed']} frames never seen; max latency {r['max']:.2f} s",
            )
        )
        out.append(
            common.Row(
                f"{what}: watcher RSS end / after 10 %",
                r["rss_end"],
                r["rss_early"],
                "MiB",
                "flat",
                r["rss_end"] <= 1.1 * r["rss_early"] + 50,
            )
        )
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--kind", choices=("h5", "tif", "both"), default="both")
    parser.add_argument("--frames", type=int, default=400)
    parser.add_argument("--rate", type=float, default=RATE)
    parser.add_argument("--sustained", type=int, default=5000, help="0: skip")
    parser.add_argument("--sustained-rate", type=float, help="default: the offline rate")
    parser.add_argument("--workdir", type=Path)
    parser.add_argument(
        "--save", type=Path, help="an .npz path: per-frame completion and seen times of each run"
    )
    args = parser.parse_args(argv)
    global SAVE
    SAVE = args.save
    work = args.workdir or Path(tempfile.mkdtemp(prefix="pyscatter-live-bench-"))
    kinds = ("h5", "tif") if args.kind == "both" else (args.kind,)
    print(f"machine load {os.getloadavg()[0]:.1f}; work in {work}")
    rows = []
    for kind in kinds:
        pool = make_pool(work, kind)
        row = run_live(pool, kind, work, args.frames, args.rate)
        rows.append(row)
        print(_line(row), flush=True)
    if args.sustained:
        rate = args.sustained_rate or offline_rate(work)
        print(f"offline end-to-end rate: {rate:.1f} frames/s", flush=True)
        pool = make_pool(work, "h5")
        row = run_live(pool, "h5", work, args.sustained, rate)
        rows.append(row)
        print(_line(row), flush=True)
    print(f"machine load {os.getloadavg()[0]:.1f}")
    return 0


def _line(r: dict[str, Any]) -> str:
    return (
        f"{r['kind']:>3} {r['frames']:5d} frames at {r['rate']:5.1f}/s: latency median "
        f"{r['median']:.3f} s, p99 {r['p99']:.3f} s, max {r['max']:.3f} s ({r['missed']} not "
        f"seen); first/last tenth {r['first_tenth']:.3f}/{r['last_tenth']:.3f} s; watcher RSS "
        f"{r['rss_early']:.0f} → {r['rss_end']:.0f} MiB (peak {r['rss_peak']:.0f})"
    )


if __name__ == "__main__":
    sys.exit(main())
