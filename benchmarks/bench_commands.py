"""Commands as users run them: whole processes on Eiger-like files, pyscatter against pyFAI's tools.

Every figure here is a set of whole subprocesses (a fresh interpreter each, as a shell starts
them), run side by side in alternating order, round by round, with the wall time of each and its
peak resident set (``ru_maxrss`` of the finished child, read by a small launcher process that
imports nothing, see :data:`LAUNCHER`). The children run as a user's would: every core, no
``OMP_NUM_THREADS`` (pyFAI's OpenMP threads on every core), pyscatter from this checkout.

Input (written once per size, :func:`write_inputs`): an Eiger-like file as the detector writes
it, ``entry/data/data`` (n, 1065, 1030) uint32, bitshuffle-LZ4 (hdf5plugin), one frame per chunk,
of Poisson counts of two powder rings on a flat background; the module gap (37 rows, 38,110
pixels) and ~200 dead pixels hold 0xFFFFFFFF as in real Eiger files; a mask (EDF, nonzero =
masked) covering them, as ``pyFAI-eiger-mask`` would give it; a PONI file (pyFAI's "Eiger 1M").
32 distinct frames are drawn and cycled (decoding and integrating do the same work whatever the
counts).

Commands, 1000 bins in q (nm⁻¹), ``bbox,csr,cython``, solid angle, no polarization, same mask:

- **pyscatter**: ``pyscatter translate FILE --format nexus --dataset /entry/data/data --link
  -o scan.h5 --poni P`` (compressed chunks copied, not decoded), then ``pyscatter integrate
  scan.h5 --npt 1000 --method bbox,csr,cython --mask M``; counted together (wall times added,
  peak the larger);
- **pyscatter, --link vds**: the same with ``--link vds`` (a virtual dataset over the source
  file: nothing copied), and ``cp`` of the frames' file beside them: what writing the copy of
  ``--link`` costs on this disk;
- **pyFAI-diffmap** ``--no-gui --config diffmap.json -o out.h5 FILE`` (the same geometry, bins,
  method, unit and mask in its JSON);
- **naive script**: h5py ``dset[i]`` → ``ai.integrate1d_ng(frame, 1000, method=("bbox", "csr",
  "cython"), mask=...)`` → the row into another HDF5 file (:data:`NAIVE_SCRIPT`).

The pyscatter children share one matrix cache of this run (``PYSCATTER_CACHE``): the warm-up
round fills it, so every timed run is the next command with the same geometry, as at a beamline
(geometry, mask and bins change rarely); the first command with an empty cache is timed once
and reported on its own row.

Orientation: the profiles → fit → order chain as three commands and as one pipeline against a
per-position pyFAI + curve_fit script, in :mod:`bench_orientation`.

Decode ceiling: the same Eiger-like file read and decoded (h5py ``read_direct``, one frame at a
time) by as many processes as there are cores, each half of the frames; frames/s over the
slowest process's loop. The fraction is pyscatter's translate + integrate frames/s over it.

Run alone: ``.venv/bin/python benchmarks/bench_commands.py [--quick] [--workdir DIR]``; the
translation alone (``--link --poni``, N frames; ``--compare ROOT`` adds another checkout's
pyscatter, alternating): ``bench_commands.py --translate-only 200 [--rounds 5] [--compare ROOT]``.
"""

# ruff: noqa: I001 (import order: common before numpy, see below)
from __future__ import annotations

import common  # first: sets OMP_NUM_THREADS before numpy and pyFAI load

import argparse
import contextlib
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

SCRIPT = Path(__file__).resolve()
ROOT = SCRIPT.parent.parent  # the pyscatter checkout these benchmarks belong to

NPT = 1000
METHOD = "bbox,csr,cython"
UNIT = "q_nm^-1"
DATASET = "/entry/data/data"
DUMMY = np.iinfo(np.uint32).max  # what an Eiger stores in gaps and dead pixels
DISTINCT = 32  # frames drawn, then cycled
DEAD_PIXELS = 200
#: Default ``max_mem_mb`` of the pyscatter commands (the peak-RSS target adds it to pyFAI's).
MAX_MEM_MB = 512.0

#: Runs ``sys.argv[1:]`` as its child; prints one JSON line: wall seconds, the child's
#: ``ru_maxrss`` (KiB) and its return code. Linux keeps the larger of a process's own peak and
#: the RSS of what it was forked from across ``exec``: a child of this small process reads true.
LAUNCHER = (
    "import json, resource, subprocess, sys, time\n"
    "t0 = time.perf_counter()\n"
    "p = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)\n"
    "t = time.perf_counter() - t0\n"
    "kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss\n"
    "print(json.dumps({'wall': t, 'kib': kib, 'code': p.returncode,"
    " 'err': p.stderr.decode(errors='replace')[-3000:]}))\n"
)

#: The naive loop a user writes first (argv: frames file, dataset, poni, mask, output).
NAIVE_SCRIPT = """
import sys
import fabio, h5py, hdf5plugin, numpy as np, pyFAI
src, dataset, poni, mask_file, out = sys.argv[1:6]
ai = pyFAI.load(poni)
mask = fabio.open(mask_file).data
with h5py.File(src, "r") as h5, h5py.File(out, "w") as res:
    dset = h5[dataset]
    rows = res.create_dataset("I", shape=(dset.shape[0], 1000), dtype="float32")
    for i in range(dset.shape[0]):
        r = ai.integrate1d_ng(dset[i], 1000, unit="q_nm^-1", method=("bbox", "csr", "cython"),
                              mask=mask, correctSolidAngle=True)
        rows[i] = r.intensity
    res["q"] = r.radial
"""

#: Reads and decodes frames [start, stop) one at a time; prints the loop's seconds.
DECODE_SCRIPT = """
import sys, time
import h5py, hdf5plugin, numpy as np
src, dataset, start, stop = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
with h5py.File(src, "r") as h5:
    dset = h5[dataset]
    buf = np.empty(dset.shape[1:], dtype=dset.dtype)
    t0 = time.perf_counter()
    for i in range(start, stop):
        dset.read_direct(buf, source_sel=np.s_[i])
    print(time.perf_counter() - t0)
"""


#: The matrix cache of the pyscatter children (``PYSCATTER_CACHE``), set by :func:`measure`:
#: a folder of this run, so that "warm" and "cold" mean what they say.
CACHE: list[Path] = []


def _env(root: Path = ROOT, cache: Path | None = None) -> dict[str, str]:
    """The children's environment: this checkout (or ``root``) first, no thread limits (as
    users run), the matrix cache of this run (``cache``, else :data:`CACHE`'s)."""
    env = dict(os.environ)
    cache = cache if cache is not None else (CACHE[-1] if CACHE else None)
    if cache is not None:
        env["PYSCATTER_CACHE"] = str(cache)
    env.pop("OMP_NUM_THREADS", None)
    # as installed: modules compiled once (.pyc), not at every start (70 ms of a command here)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(root), env.get("PYTHONPATH")]))
    return env


def pyfai_tool(name: str) -> str:
    """The path of a pyFAI command-line tool of this interpreter's environment."""
    here = Path(sys.executable).parent / name
    found = str(here) if here.exists() else shutil.which(name)
    if found is None:
        raise RuntimeError(f"{name} not found beside {sys.executable} nor on PATH")
    return found


def pyscatter_cli(*args: Any) -> list[str]:
    return [sys.executable, "-m", "pyscatter", "-q", *map(str, args)]


@dataclass(frozen=True)
class Run:
    """One whole process: wall seconds and peak RSS (MiB)."""

    wall: float
    peak_mb: float
    parts: tuple[Run, ...] = ()  # the commands of a sequence (see combine)


def launch(
    argv: list[str], timeout: float = 3600, root: Path = ROOT, cache: Path | None = None
) -> Run:
    """Run ``argv`` to its end under :data:`LAUNCHER` (pyscatter from ``root``, matrix cache
    ``cache`` or :data:`CACHE`'s); its wall time and peak RSS."""
    proc = subprocess.run(
        [sys.executable, "-c", LAUNCHER, *argv],
        env=_env(root, cache),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"launcher failed ({proc.returncode}): {proc.stderr[-3000:]}")
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    if out["code"] != 0:
        shown = " ".join(a if len(a) < 120 else a[:40].strip() + " …" for a in map(str, argv))
        raise RuntimeError(f"{shown} failed ({out['code']}):\n{out['err']}")
    return Run(out["wall"], out["kib"] / 1024)


def combine(*runs: Run) -> Run:
    """Commands run one after the other: wall times add, the peak is the largest."""
    return Run(sum(r.wall for r in runs), max(r.peak_mb for r in runs), runs)


# ----------------------------------------------------------------------------- inputs


@dataclass(frozen=True)
class Inputs:
    """The Eiger-like file and what goes with it."""

    frames: Path
    poni: Path
    mask: Path
    n: int
    invalid: int  # pixels holding the dummy in every frame


def write_inputs(directory: Path, n_frames: int, *, seed: int = 0) -> Inputs:
    """The Eiger-like data file, its PONI and mask (see the module docstring)."""
    import fabio
    import h5py
    import hdf5plugin

    ai, shape = common.eiger_integrator()
    directory.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    invalid = ai.detector.mask.astype(bool)  # the module gap (37 rows)
    dead = rng.choice(invalid.size, DEAD_PIXELS, replace=False)
    invalid.flat[dead] = True
    lam = common.ring_counts(ai, shape)
    pool = []
    for _ in range(min(DISTINCT, n_frames)):
        frame = rng.poisson(lam).astype(np.uint32)
        frame[invalid] = DUMMY
        pool.append(frame)
    path = directory / f"eiger_{n_frames}_data_000001.h5"
    with h5py.File(path, "w") as h5:
        entry = h5.create_group("entry")
        entry.attrs["NX_class"] = "NXentry"
        entry.attrs["default"] = "data"
        data = entry.create_group("data")
        data.attrs["NX_class"] = "NXdata"
        data.attrs["signal"] = "data"
        dset = data.create_dataset(
            "data",
            shape=(n_frames, *shape),
            dtype=np.uint32,
            chunks=(1, *shape),
            **hdf5plugin.Bitshuffle(cname="lz4"),
        )
        dset.attrs["image_nr_low"] = 1
        dset.attrs["image_nr_high"] = n_frames
        for i in range(n_frames):
            dset[i] = pool[i % len(pool)]
    poni = directory / "eiger.poni"
    if not poni.exists():
        ai.write(str(poni))
    mask = directory / "mask.edf"
    fabio.edfimage.EdfImage(data=invalid.astype(np.int8)).write(str(mask))
    return Inputs(path, poni, mask, n_frames, int(invalid.sum()))


def diffmap_config(inputs: Inputs, path: Path) -> Path:
    """pyFAI-diffmap's JSON configuration: the same geometry, bins, method, unit and mask.

    Made by pyFAI-diffmap's own parser (``DiffMap.parse``) from its command-line options, then
    given the unit and method it has no option for; the frames and the output file are left to
    the command line.
    """
    from pyFAI.diffmap import DiffMap

    argv = ["--no-gui", "-p", str(inputs.poni), "-m", str(inputs.mask), "-c", str(NPT)]
    argv += ["-t", str(inputs.n), "-r", "1"]
    with contextlib.redirect_stdout(io.StringIO()):  # it prints its options
        _options, config = DiffMap().parse(argv, with_config=True)
    config.ai.unit = UNIT
    config.ai.method = tuple(METHOD.split(","))
    config.ai.correct_solid_angle = True
    config.input_data = None
    config.output_file = None
    path.write_text(json.dumps(config.as_dict(), indent=1, default=str), encoding="utf-8")
    return path


def latest_group(path: Path, process: str) -> str:
    """Path of the newest results group of ``process`` in a pyscatter file."""
    import h5py

    with h5py.File(path, "r") as h5:
        channel = h5["Measurement_000/Channel_000"]
        groups = sorted(k for k in channel if f"-{process}_" in k)
        if not groups:
            raise RuntimeError(f"{path}: no {process} results")
        return channel[groups[-1]].name


# ----------------------------------------------------------------------------- integration


def translate_argv(inputs: Inputs, out: Path, link: str = "chunks") -> list[str]:
    """``pyscatter translate FILE --link [vds] --poni P -o out``, as :func:`run_pyscatter`
    runs it (``link``: "chunks", the default of ``--link``, copies the compressed chunks;
    "vds" leaves the frames in the source)."""
    return pyscatter_cli(
        "translate", inputs.frames, "--format", "nexus", "--dataset", DATASET,
        *(["--link"] if link == "chunks" else ["--link", link]),
        "-o", out, "--poni", inputs.poni, "--overwrite",
    )  # fmt: skip


def run_pyscatter(
    inputs: Inputs, work: Path, link: str = "chunks", cache: Path | None = None
) -> Run:
    """``pyscatter translate --link [vds]`` then ``pyscatter integrate``, counted together."""
    out = work / ("scan.h5" if link == "chunks" else f"scan_{link}.h5")
    translate = translate_argv(inputs, out, link)
    integrate = pyscatter_cli(
        "integrate", out, "--npt", NPT, "--unit", UNIT, "--method", METHOD,
        "--mask", inputs.mask, "--no-progress",
    )  # fmt: skip
    return combine(launch(translate, cache=cache), launch(integrate, cache=cache))


def run_copy(inputs: Inputs, work: Path) -> Run:
    """``cp`` of the frames' file: what writing the frames' bytes once costs on this disk (the
    floor of ``--link``'s copy of the chunks)."""
    target = work / "copy.h5"
    target.unlink(missing_ok=True)
    run = launch(["cp", str(inputs.frames), str(target)])
    target.unlink(missing_ok=True)
    return run


def run_diffmap(inputs: Inputs, work: Path, config: Path) -> Run:
    out = work / "diffmap.h5"
    out.unlink(missing_ok=True)
    argv = [pyfai_tool("pyFAI-diffmap"), "--no-gui", "--config", str(config), "-o", str(out)]
    return launch([*argv, str(inputs.frames)])


def run_naive(inputs: Inputs, work: Path) -> Run:
    argv = [sys.executable, "-c", NAIVE_SCRIPT, str(inputs.frames), DATASET, str(inputs.poni)]
    return launch([*argv, str(inputs.mask), str(work / "naive.h5")])


def agreement(work: Path) -> dict[str, float]:
    """Largest relative deviation of pyscatter's I(q) from pyFAI-diffmap's and the naive script's.

    Over every frame and every bin where the peer's intensity is nonzero, and the radial axes.
    """
    import h5py

    scan = work / "scan.h5"
    with h5py.File(scan, "r") as h5:
        group = h5[latest_group(scan, "AzimuthalIntegration")]
        ours = group["Intensity"][()].reshape(-1, NPT)
    with h5py.File(work / "diffmap.h5", "r") as h5:
        entry = next(k for k in h5 if k.startswith("entry"))
        diffmap = h5[entry]["pyFAI/result/intensity"][()].reshape(-1, NPT)
        q_diffmap = h5[entry]["pyFAI/result/q"][()]
    with h5py.File(work / "naive.h5", "r") as h5:
        naive = h5["I"][()]
        q_naive = h5["q"][()]
    vds = work / "scan_vds.h5"
    with h5py.File(vds, "r") as h5:
        ours_vds = h5[latest_group(vds, "AzimuthalIntegration")]["Intensity"][()]

    def dev(theirs: np.ndarray) -> float:
        keep = np.isfinite(theirs) & (theirs != 0)
        return float(np.max(np.abs(ours[keep] - theirs[keep]) / np.abs(theirs[keep])))

    return {
        "diffmap": dev(diffmap),
        "naive": dev(naive),
        "q": float(np.max(np.abs(q_diffmap - q_naive) / q_naive)),
        "vds_identical": bool(np.array_equal(ours_vds.reshape(ours.shape), ours, equal_nan=True)),
        "frames_compared": ours.shape[0],
    }


def measure_integration(inputs: Inputs, work: Path, rounds: int) -> dict[str, Any]:
    """The three commands on ``inputs``, alternating, ``rounds`` rounds (after one warm-up each)."""
    work.mkdir(parents=True, exist_ok=True)
    config = diffmap_config(inputs, work / "diffmap.json")
    runs: dict[str, list[Run]] = {k: [] for k in ("pyscatter", "vds", "diffmap", "naive", "cp")}
    funcs = {
        "pyscatter": lambda: runs["pyscatter"].append(run_pyscatter(inputs, work)),
        "vds": lambda: runs["vds"].append(run_pyscatter(inputs, work, "vds")),
        "diffmap": lambda: runs["diffmap"].append(run_diffmap(inputs, work, config)),
        "naive": lambda: runs["naive"].append(run_naive(inputs, work)),
        "cp": lambda: runs["cp"].append(run_copy(inputs, work)),
    }
    # cold: the first command with this geometry (an empty matrix cache), after the page cache
    # holds the frames; then every run is warm, as the next scan with the same geometry
    cold_cache = work / "cold-cache"
    shutil.rmtree(cold_cache, ignore_errors=True)
    launch(["cat", str(inputs.frames)])  # the frames in the page cache, as for the others
    cold = run_pyscatter(inputs, work, cache=cold_cache)
    for func in funcs.values():  # warm-up: page cache, .pyc files, pyFAI's first-use imports
        func()
    for name in runs:
        runs[name].clear()
    common.interleaved(funcs, rounds)
    return {"n": inputs.n, "runs": runs, "cold": cold, "agreement": agreement(work)}


# ----------------------------------------------------------------------------- decode ceiling


def decode_ceiling(inputs: Inputs, rounds: int) -> dict[str, Any]:
    """Frames/s of reading + decoding the frames with one process per core, each a share."""
    import bench_end_to_end

    procs = bench_end_to_end.cores()
    bounds = np.linspace(0, inputs.n, procs + 1).astype(int)
    rates = []
    for _ in range(rounds):
        children = [
            subprocess.Popen(
                [sys.executable, "-c", DECODE_SCRIPT, str(inputs.frames), DATASET, str(a), str(b)],
                env=_env(),
                stdout=subprocess.PIPE,
                text=True,
            )
            for a, b in zip(bounds[:-1], bounds[1:], strict=True)
        ]
        seconds = []
        for child in children:
            out, _ = child.communicate(timeout=3600)
            if child.returncode != 0:
                raise RuntimeError(f"decode child failed ({child.returncode})")
            seconds.append(float(out.strip().splitlines()[-1]))
        rates.append(inputs.n / max(seconds))
    return {"processes": procs, "fps": common.median(rates), "all": rates}


def _med(runs: list[Run]) -> float:
    return common.median([r.wall for r in runs])


def _peak(runs: list[Run]) -> float:
    return max(r.peak_mb for r in runs)


def _secs(runs: list[Run]) -> str:
    return "[" + ", ".join(f"{r.wall:.1f}" for r in runs) + "]"


def integration_rows(result: dict[str, Any], *, full_size: int) -> list[common.Row]:
    """Frames/s against pyFAI-diffmap and the naive script; peak RSS against pyFAI-diffmap's."""
    n, runs, agree = result["n"], result["runs"], result["agreement"]
    ours, vds, diffmap, naive = (
        n / _med(runs[k]) for k in ("pyscatter", "vds", "diffmap", "naive")
    )
    if n == SMALL_SIZE:
        target_diffmap, checked = "≥ 2×", True
    else:
        target_diffmap, checked = ("≥ 5×", True) if n == full_size else ("(≥ 5× at 1000)", False)
    checked_naive = n == full_size
    what = f"{n} Eiger-like frames (bslz4, gaps + dead pixels 0xFFFFFFFF)"
    translate, integrate = (_med([r.parts[k] for r in runs["pyscatter"]]) for k in (0, 1))
    common_note = (
        f"{len(runs['pyscatter'])} rounds, alternating; seconds per round: pyscatter "
        f"{_secs(runs['pyscatter'])} (median translate {translate:.2f} + integrate "
        f"{integrate:.2f}), with --link vds {_secs(runs['vds'])}, pyFAI-diffmap "
        f"{_secs(runs['diffmap'])}, naive {_secs(runs['naive'])}; `cp` of the frames' file "
        f"{_med(runs['cp']):.2f} s (what writing the copy costs on this disk); max rel. "
        f"deviation of I(q) over {agree['frames_compared']} frames from pyFAI-diffmap "
        f"{agree['diffmap']:.1e}, from the naive script {agree['naive']:.1e} (q axes "
        f"{agree['q']:.1e}); --link vds gives the same bits: {agree['vds_identical']}; matrix "
        "cache warm (the first command with this geometry: next row)"
    )
    cold = result["cold"]
    rows = [
        common.Row(
            f"commands, {what}: `pyscatter translate --link` + `integrate` vs `pyFAI-diffmap`",
            ours,
            diffmap,
            "frames/s",
            target=target_diffmap,
            passed=ours / diffmap >= float(target_diffmap[2]) if checked else None,
            note="whole processes, wall clock, 1000 bins q_nm^-1, bbox/csr, mask file; "
            + common_note,
        ),
        common.Row(
            f"commands, {n} frames: `pyscatter translate --link vds` (frames left in the "
            "source) + `integrate` vs `pyFAI-diffmap`",
            vds,
            diffmap,
            "frames/s",
            target=target_diffmap,
            passed=vds / diffmap >= float(target_diffmap[2]) if checked else None,
            note="the same, translated as a virtual dataset over the source file instead of "
            "copying its chunks; median translate "
            f"{_med([r.parts[0] for r in runs['vds']]):.2f} + integrate "
            f"{_med([r.parts[1] for r in runs['vds']]):.2f} s",
        ),
        common.Row(
            f"commands, {n} frames, cold matrix cache (the first command with this geometry): "
            "`pyscatter translate --link` + `integrate` vs `pyFAI-diffmap`",
            n / cold.wall,
            diffmap,
            "frames/s",
            note=f"one run, empty PYSCATTER_CACHE: translate {cold.parts[0].wall:.2f} + "
            f"integrate {cold.parts[1].wall:.2f} s (pyFAI imported, the matrix built and "
            "stored); every later command with the same geometry, mask and bins loads it",
        ),
        common.Row(
            f"commands, {n} frames: `pyscatter translate --link` + `integrate` vs naive "
            "h5py + integrate1d_ng script",
            ours,
            naive,
            "frames/s",
            target="≥ 10×" if checked_naive else "(≥ 10×)",
            passed=ours / naive >= 10 if checked_naive else None,
            note="the script: python -c, h5py dset[i] → integrate1d_ng(mask=) → row written; "
            "pyFAI's OpenMP threads on every core",
        ),
    ]
    ours_peak = _peak(runs["pyscatter"])
    bound = _peak(runs["diffmap"]) + MAX_MEM_MB
    rows.append(
        common.Row(
            f"commands, {n} frames: peak RSS of `pyscatter translate`/`integrate` vs "
            "`pyFAI-diffmap` + max_mem_mb",
            ours_peak,
            bound,
            "MiB",
            target="≤ pyFAI + max_mem_mb",
            passed=ours_peak <= bound,
            note=(
                f"median seconds: translate {_med([r.parts[0] for r in runs['pyscatter']]):.1f}, "
                f"integrate {_med([r.parts[1] for r in runs['pyscatter']]):.1f}; "
                f"peak: largest over the rounds and the two commands (translate "
                f"{max(r.parts[0].peak_mb for r in runs['pyscatter']):.0f} MiB, integrate "
                f"{max(r.parts[1].peak_mb for r in runs['pyscatter']):.0f} MiB); pyFAI-diffmap {_peak(runs['diffmap']):.0f} MiB, naive script "
                f"{_peak(runs['naive']):.0f} MiB; max_mem_mb {MAX_MEM_MB:g} (the default)"
            ),
        )
    )
    return rows


def ceiling_rows(result: dict[str, Any], ceiling: dict[str, Any]) -> list[common.Row]:
    n = result["n"]
    rows = []
    for key, how in (("pyscatter", "--link"), ("vds", "--link vds")):
        ours = n / _med(result["runs"][key])
        rows.append(
            common.Row(
                f"commands, {n} frames: end-to-end frames/s (translate {how} + integrate) as "
                "a fraction of the bslz4 decode ceiling (all cores)",
                ours,
                ceiling["fps"],
                "frames/s",
                target="≥ 50 %",
                passed=ours / ceiling["fps"] >= 0.5,
                note=(
                    f"ceiling: {ceiling['processes']} processes each reading + decoding its "
                    "share of the frames (h5py read_direct, one frame at a time), frames over "
                    "the slowest loop; rounds: "
                    + ", ".join(f"{x:.0f}" for x in ceiling["all"])
                    + " frames/s"
                ),
            )
        )
    return rows


# ----------------------------------------------------------------------------- figure


def measure(
    workdir: Path,
    sizes: tuple[int, ...],
    rounds: int,
    oriented_shape: tuple[int, int],
    say: Any = print,
) -> list[common.Row]:
    """The whole ``commands`` figure: inputs, every comparison, the rows."""
    rows: list[common.Row] = []
    results = []
    CACHE.append(workdir / "cache")  # this run's matrix cache (see _env)
    for n in sizes:
        t0 = time.perf_counter()
        inputs = write_inputs(workdir / f"eiger_{n}", n)
        say(f"  wrote {n} Eiger-like frames in {time.perf_counter() - t0:.0f} s")
        results.append((inputs, measure_integration(inputs, workdir / f"work_{n}", rounds)))
        say(f"  {n} frames measured; load average {os.getloadavg()[0]:.2f}")
        rows += integration_rows(results[-1][1], full_size=FULL_SIZE)
    inputs, largest = results[-1]
    ceiling = decode_ceiling(inputs, rounds)
    rows += ceiling_rows(largest, ceiling)
    import bench_orientation as chain  # imports this module: not at its top

    oriented = chain.write_oriented(workdir / "oriented", oriented_shape)
    rows += chain.orientation_rows(
        chain.measure_orientation(oriented, workdir / "oriented_work", rounds)
    )
    say(f"  orientation measured; load average {os.getloadavg()[0]:.2f}")
    return rows


#: The sizes the targets are stated at: ≥ 2× at 9 frames; ≥ 5× and ≥ 10× at 1000.
SMALL_SIZE, FULL_SIZE = 9, 1000


def measure_translate(
    workdir: Path, n: int, rounds: int, roots: list[Path], say: Any = print
) -> dict[Path, list[Run]]:
    """``pyscatter translate --link --poni`` alone on ``n`` Eiger-like frames, with the
    pyscatter of each checkout in ``roots``, alternating (one untimed run each first)."""
    inputs = write_inputs(workdir / f"eiger_{n}", n)
    runs: dict[Path, list[Run]] = {root: [] for root in roots}
    for root in roots:
        launch(translate_argv(inputs, workdir / "warm.h5"), root=root)
    for r in range(rounds):
        for k, root in enumerate(roots if r % 2 == 0 else roots[::-1]):
            runs[root].append(launch(translate_argv(inputs, workdir / f"t{k}.h5"), root=root))
        say(f"  round {r + 1}: load average {os.getloadavg()[0]:.2f}")
    return runs


def _translate_main(args: argparse.Namespace) -> int:
    roots = [ROOT, *args.compare]
    with tempfile.TemporaryDirectory(prefix="pyscatter-translate-", dir=args.workdir) as tmp:
        runs = measure_translate(
            Path(tmp), args.translate_only, args.rounds, roots, say=lambda m: print(m, flush=True)
        )
    for root, got in runs.items():
        print(
            f"{root}: translate --link --poni, {args.translate_only} frames: median "
            f"{_med(got):.2f} s ({_secs(got)}), peak {_peak(got):.0f} MiB"
        )
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="9 and 100 frames, 3 rounds")
    parser.add_argument("--workdir", type=Path, help="folder for the inputs (default: temporary)")
    parser.add_argument(
        "--translate-only",
        type=int,
        metavar="N",
        help="only time `pyscatter translate --link --poni` on N Eiger-like frames",
    )
    parser.add_argument(
        "--compare",
        type=Path,
        action="append",
        default=[],
        metavar="ROOT",
        help="with --translate-only: also the pyscatter of another checkout (repeatable)",
    )
    parser.add_argument("--rounds", type=int, default=5, help="with --translate-only")
    args = parser.parse_args(argv)
    if args.translate_only:
        return _translate_main(args)
    sizes, rounds = ((9, 100), 3) if args.quick else ((9, FULL_SIZE), 5)
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    with tempfile.TemporaryDirectory(prefix="pyscatter-commands-", dir=args.workdir) as tmp:
        table = measure(
            Path(tmp), sizes, rounds, (15, 20), say=lambda m: print(m, file=sys.stderr, flush=True)
        )
    print(common.format_table(table))
    print()
    for row in table:
        print(f"- {row.figure}: {row.note}")
    end = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"\nload average {load} → {end}")
    return 0


if __name__ == "__main__":
    sys.modules.setdefault(
        "bench_commands", sys.modules[__name__]
    )  # one copy for bench_orientation
    sys.exit(main())
