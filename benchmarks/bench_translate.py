"""Translating LIMA files: decode + re-encode against zero-copy (chunk copy, virtual dataset).

Sources: ``--files`` LIMA files of ``--frames`` frames in all (default 2 × 100), 1000 × 1000
uint32, one frame per chunk, bitshuffle-LZ4, written by ``tests/translators/lima_files.py`` (the
layout LIMA writes). Frames: Poisson counts of a SAXS-like pattern (a bright centre falling off
as q^-3 plus a ring, about 4 counts per pixel on average) so that they compress as real Eiger
frames do.

Three ways of translating them with the ``id02`` translator, each run in turn ``--repeat`` times
(the median is shown, so a busy machine slows all alike):

- ``copy``: every frame decoded and encoded again with bitshuffle-LZ4 (``link=False``);
- ``chunks``: the compressed chunks copied as stored, never decoded (``link=True``);
- ``vds``: an HDF5 virtual dataset over the sources (``link="vds"``), nothing copied.

Every translation also hashes its sources (sha256, recorded for provenance); that part is shown
on its own line. Then each output's ``Raw_Data`` is read back in batches of 16 frames with
``read_direct`` (as the processes read) to show what each layout costs its readers.

Run: ``.venv/bin/python benchmarks/bench_translate.py`` (about a minute; writes about 1 GB into
a temporary folder, removed at the end; ``--dir`` to choose it).
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np

from pyscatter.translators import translate

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "translators"))
from lima_files import geometry_header, write_lima  # noqa: E402

SHAPE = (1000, 1000)
RAW = "Measurement_000/Channel_000/Raw_Data"
MODES = {"copy": False, "chunks": True, "vds": "vds"}


def pattern() -> np.ndarray:
    rows, cols = np.indices(SHAPE)
    r = np.hypot(rows - 480.3, cols - 510.7) + 1.0
    return 2.0e4 * r**-3 * 400 + 3.0 * np.exp(-0.5 * ((r - 300) / 6) ** 2) + 1.0


def write_sources(folder: Path, n_files: int, n_frames: int, seed: int = 0) -> list[Path]:
    mean = pattern()
    rng = np.random.default_rng(seed)
    per_file = n_frames // n_files
    files = []
    for k in range(n_files):
        frames = rng.poisson(mean, size=(per_file, *SHAPE)).astype(np.uint32)
        header = geometry_header(
            Title="bench_0001", Dummy=None, **{"Center_1": 510.7, "Center_2": 480.3}
        )
        files.append(write_lima(folder / f"bench_eiger2_{k:05d}.h5", frames, header=header))
    return files


def read_back(path: Path, batch: int = 16) -> float:
    with h5py.File(path, "r") as h5:
        raw = h5[RAW]
        n = raw.shape[0]
        buf = np.empty((batch, raw.shape[1]), dtype=raw.dtype)
        start = time.perf_counter()
        for i in range(0, n - n % batch, batch):
            raw.read_direct(buf, source_sel=np.s_[i : i + batch])
        return (n - n % batch) / (time.perf_counter() - start)


def hash_time(files: list[Path]) -> float:
    start = time.perf_counter()
    for f in files:
        digest = hashlib.sha256()
        with open(f, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=200)
    parser.add_argument("--files", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--dir", type=Path, default=None)
    args = parser.parse_args(argv)
    logging.getLogger("pyscatter").setLevel(logging.ERROR)  # the vds read-speed warning
    folder = Path(tempfile.mkdtemp(prefix="bench_translate_", dir=args.dir))
    try:
        files = write_sources(folder, args.files, args.frames)
        source_bytes = sum(f.stat().st_size for f in files)
        raw_bytes = args.frames * SHAPE[0] * SHAPE[1] * 4
        print(
            f"{args.frames} frames {SHAPE[0]}x{SHAPE[1]} uint32 in {args.files} LIMA files: "
            f"{source_bytes / 1e6:.0f} MB (bitshuffle-LZ4, {raw_bytes / source_bytes:.1f}x)"
        )
        times: dict[str, list[float]] = {m: [] for m in MODES}
        outputs: dict[str, Path] = {}
        for _ in range(args.repeat):
            for mode, link in MODES.items():
                out = folder / f"out_{mode}.h5"
                start = time.perf_counter()
                translate(files, out, link=link, overwrite=True, series="frames")
                times[mode].append(time.perf_counter() - start)
                outputs[mode] = out
        hashing = statistics.median(hash_time(files) for _ in range(args.repeat))
        base = statistics.median(times["copy"])
        print(
            f"{'mode':8s} {'translate s':>12s} {'frames/s':>9s} {'vs copy':>8s} "
            f"{'file MB':>8s} {'read frames/s':>14s}"
        )
        for mode in MODES:
            t = statistics.median(times[mode])
            size = outputs[mode].stat().st_size / 1e6
            rate = read_back(outputs[mode])
            print(
                f"{mode:8s} {t:12.2f} {args.frames / t:9.0f} {base / t:7.1f}x "
                f"{size:8.1f} {rate:14.0f}"
            )
        print(f"(each translation includes hashing the sources: {hashing:.2f} s)")
        with h5py.File(outputs["copy"]) as a, h5py.File(outputs["chunks"]) as b:
            same = all(np.array_equal(a[RAW][i], b[RAW][i]) for i in range(0, args.frames, 37))
        print(f"chunk copy decodes to the same frames as the full copy (sampled): {same}")
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
