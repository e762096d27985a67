"""Cost of the per-frame crc32 check on the raw read path (issue 20, item 3).

Reads every frame of an Eiger-1M-sized scan (bitshuffle-LZ4, uint32, 1065 × 1030) through
``FrameReader.read`` in blocks of 16, with the check (as processes run) and without it (a plain
``read_direct``, as before), alternating A B / B A over the rounds; prints medians and the ratio.
Then whole AzimuthalIntegration runs (serial, read-ahead: the check runs in the reader thread)
with the check and with it replaced by a plain read; and the translation side, writing
``Raw_Data`` encoded, as copied chunks and as a virtual dataset, with and without checksums.

    .venv/bin/python benchmarks/bench_integrity.py [--frames 64] [--rounds 5]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))

import h5py  # noqa: E402
from common import eiger_integrator, median, ring_frames, write_ring_scan  # noqa: E402

from pyscatter.io.integrity import crc32  # noqa: E402
from pyscatter.processes.execution import FrameReader  # noqa: E402

RAW = "Measurement_000/Channel_000/Raw_Data"


def read_all(path: Path, shape, *, check: bool, block: int = 16) -> float:
    reader = FrameReader(RAW, shape)
    with h5py.File(path, "r") as h5:
        dset = h5[RAW]
        n = dset.shape[0]
        buf = np.empty((block, dset.shape[1]), dtype=dset.dtype)
        t0 = time.perf_counter()
        for start in range(0, n, block):
            stop = min(start + block, n)
            if check:
                reader.read(h5, start, stop)
            else:
                dset.read_direct(buf[: stop - start], source_sel=np.s_[start:stop])
        return time.perf_counter() - t0


def _plain_read(raw, out, start, stop):
    raw.read_direct(out, source_sel=np.s_[start:stop])
    return out


def integrate(path: Path, *, check: bool) -> float:
    """Seconds of a whole AzimuthalIntegration run (serial, read-ahead on), with/without check."""
    from pyscatter.processes import execution
    from pyscatter.processes.base import run_on_file
    from pyscatter.processes.integration import AzimuthalIntegration

    checked = execution.read_verified
    execution.read_verified = checked if check else _plain_read
    try:
        t0 = time.perf_counter()
        run_on_file(path, AzimuthalIntegration, npt=1000, override=True, progress=False)
        return time.perf_counter() - t0
    finally:
        execution.read_verified = checked


def translate_costs(folder: Path, ai, shape, n: int, rounds: int) -> dict[str, tuple[float, float]]:
    """Seconds per frame of writing ``Raw_Data`` three ways, without and with the checksums.

    Encoded (frames given as arrays), copied chunks (``--link``) and virtual (``--link vds``),
    from one (n, rows, cols) bitshuffle-LZ4 source; "without" replaces the checksum functions
    by constants. The fsync barrier is relaxed as in :func:`common.write_ring_scan`.
    """
    import hdf5plugin

    from pyscatter.io import raw as raw_io
    from pyscatter.io.raw import MeasurementSpec, RawChunk, VirtualFrames, chunk_filters
    from pyscatter.io.usid import Dim

    src = folder / "source.h5"
    with h5py.File(src, "w") as h5:
        dset = h5.create_dataset(
            "frames",
            shape=(n, *shape),
            dtype=np.uint32,
            chunks=(1, *shape),
            **hdf5plugin.Bitshuffle(nelems=0, cname="lz4"),
        )
        for i, frame in enumerate(ring_frames(ai, shape, n)):
            dset[i] = frame
        chunks = [RawChunk(dset.id.read_direct_chunk((i, 0, 0))[1]) for i in range(n)]
        filters = chunk_filters(dset)
        frames = dset[()]

    def spec(**kw):
        rows, cols = (Dim(k, "pixel", np.arange(m)) for k, m in zip("RC", shape, strict=True))
        frame_dim = [Dim("Frame", "", np.arange(n))]
        return MeasurementSpec(frame_dim, [rows, cols], np.uint32, attrs={"translator": "b"}, **kw)

    mapping = [VirtualFrames(str(src), "frames", (n, *shape), 0, n, 0)]
    ways = {
        "encoded": lambda: raw_io.write_measurement(
            folder / "e.h5", spec(), list(frames), overwrite=True
        ),
        "copied chunks": lambda: raw_io.write_measurement(
            folder / "c.h5", spec(raw_filters=filters), chunks, overwrite=True
        ),
        "virtual": lambda: raw_io.write_virtual_measurement(
            folder / "v.h5", spec(), mapping, overwrite=True
        ),
    }
    real = raw_io._virtual_crcs, raw_io.stored_crc
    none = (lambda spec, m: np.zeros(spec.n_positions, np.uint32), lambda *a, **k: 0)
    raw_io.BARRIER_FRAMES, raw_io.BARRIER_SECONDS = 1024, 1e9
    times: dict[tuple[str, bool], list[float]] = {}
    try:
        for r in range(rounds):
            for check in (False, True) if r % 2 == 0 else (True, False):
                raw_io._virtual_crcs, raw_io.stored_crc = real if check else none
                for name, write in ways.items():
                    t0 = time.perf_counter()
                    write()
                    times.setdefault((name, check), []).append(time.perf_counter() - t0)
    finally:
        raw_io._virtual_crcs, raw_io.stored_crc = real
    return {name: (median(times[name, False]) / n, median(times[name, True]) / n) for name in ways}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--frames", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    ai, shape = eiger_integrator()
    with tempfile.TemporaryDirectory() as tmp:
        path = write_ring_scan(Path(tmp) / "scan.h5", ai, shape, args.frames)
        read_all(path, shape, check=True)  # warm the page cache
        times: dict[str, list[float]] = {"plain": [], "checked": []}
        for r in range(args.rounds):  # A B, then B A, …: the load drifts, the ratio less
            for name in ("plain", "checked") if r % 2 == 0 else ("checked", "plain"):
                times[name].append(read_all(path, shape, check=name == "checked"))
        integrate(path, check=True)  # warm up: imports, pyFAI's first integrator
        runs: dict[str, list[float]] = {"plain": [], "checked": []}
        for r in range(max(2, args.rounds // 2)):
            for name in ("plain", "checked") if r % 2 == 0 else ("checked", "plain"):
                runs[name].append(integrate(path, check=name == "checked"))
        costs = translate_costs(Path(tmp), ai, shape, min(args.frames, 48), 4)
        frame = next(ring_frames(ai, shape, 1))
        t0 = time.perf_counter()
        for _ in range(20):
            crc32(frame)
        crc_ms = (time.perf_counter() - t0) / 20 * 1e3
    plain, checked = median(times["plain"]), median(times["checked"])
    per = 1e3 / args.frames
    print(f"frames: {args.frames} × {shape} uint32, bitshuffle-LZ4, blocks of 16")
    print(f"read without check: {plain * per:.2f} ms/frame")
    print(f"read with crc32:    {checked * per:.2f} ms/frame")
    print(f"ratio checked/plain: {checked / plain:.3f}")
    e_plain, e_checked = median(runs["plain"]), median(runs["checked"])
    print(f"integration run without check: {e_plain * per:.2f} ms/frame")
    print(f"integration run with crc32:    {e_checked * per:.2f} ms/frame")
    print(f"ratio checked/plain (end to end): {e_checked / e_plain:.3f}")
    print("  rounds (s):", {k: [round(v, 2) for v in runs[k]] for k in runs})
    print(f"crc32 of one frame alone: {crc_ms:.2f} ms ({frame.nbytes / crc_ms / 1e6:.2f} GB/s)")
    for name, (without, with_) in costs.items():
        print(
            f"translate, {name}: {without * 1e3:.2f} → {with_ * 1e3:.2f} ms/frame with "
            f"checksums (ratio {with_ / without:.2f})"
        )


if __name__ == "__main__":
    main()
