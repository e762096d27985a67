"""``make bench``: every performance figure of pyscatter against its peer, in one table.

Each figure is measured in this run against its peer, alternating the two within each round
(the machine may be shared and noisy); the table gives medians and their ratio, and is written
with the machine's facts to ``benchmarks/RESULTS.md`` (full runs only, unless ``--results``).

Figures (names for ``--only``):

integration  1-D integration of Eiger-1M-size frames, bbox/csr: the batched kernel against
             pyFAI's ``integrate1d_ng`` per frame, without and with Poisson sigma
             (``bench_integrate.bench_case``).
bandwidth    bytes the batched kernel moves per frame divided by its time, against a numpy copy
             of a large array (the memory bandwidth one core gets).
fitting      ``fit_profiles`` (vectorised Maier-Saupe) against a ``curve_fit`` loop
             (``bench_fitting``'s profiles).
end_to_end   a bitshuffle-LZ4 USID file → ``run_on_file(AzimuthalIntegration)`` against a
             naive h5py + ``integrate1d_ng`` + write loop (``bench_end_to_end``).
memory       peak RSS of the process on a raw dataset many times its ``max_mem_mb``
             (``bench_memory``, in a child process), as is and with the heap trimmed after
             the integrator's set-up.
scaling      1k vs 10k small frames: throughput and peak RSS; 1 vs 2 workers (``bench_scaling``,
             a child process per run).
startup      fresh processes: ``import pyscatter.processes`` / ``.base`` / ``.integration`` and a
             no-op ``pyscatter integrate`` (results complete) against ``import
             pyFAI.integrator.azimuthal, h5py`` (``bench_startup``).
commands     whole commands on Eiger-like files against pyFAI-diffmap and a naive script
             (``bench_commands``).
live         ``pyscatter watch`` behind a simulated Eiger 1M: latency from a frame complete on
             disk to its I(q) readable in the file, at 20 frames/s (HDF5 and TIFF), and the
             backlog and memory over 5000 frames at the offline rate (``bench_live``).
xrf          XRF fast linear fit (SNIP + line groups) of 100,000 spectra × 2048 channels, 10
             groups: ``fast_linear_fit`` against PyMca's FastXRFLinearFit on the whole map and a
             per-pixel scipy ``nnls`` loop on a subset, scaled (``bench_xrf``).
series       an energy series (a wavelength per position) of Eiger 1M frames against the same
             frames with one geometry, whole ``pyscatter integrate`` commands, cold and warm
             matrix cache, and one matrix build (``bench_series``).

Usage::

    .venv/bin/python benchmarks/run.py            # full, 4–6 minutes on 2 shared cores
    .venv/bin/python benchmarks/run.py --quick    # smoke run, about a minute
    .venv/bin/python benchmarks/run.py --only fitting,integration
"""

# ruff: noqa: I001 (import order: common before numpy, see below)
from __future__ import annotations

import common  # first: sets OMP_NUM_THREADS before numpy and pyFAI load

import argparse
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

import pyscatter  # noqa: F401  (registers the HDF5 filters the scans are written with)

FIGURES = (
    "integration",
    "bandwidth",
    "fitting",
    "end_to_end",
    "memory",
    "scaling",
    "startup",
    "commands",
    "live",
    "xrf",
    "series",
)
RESULTS = common.HERE / "RESULTS.md"


@dataclass(frozen=True)
class Config:
    integration_repeat: int = 7
    distinct_frames: int = 64  # Eiger frames drawn for the kernel figures (64 are used)
    copy_mib: int = 1024
    bandwidth_repeat: int = 5
    fit_profiles: int = 2048
    fit_repeats: int = 3
    e2e_frames: int = 350  # 1.5 GB of raw uint32: also the memory-bound input
    e2e_repeats: int = 3
    memory_budget_mb: float = 128
    scaling_small: int = 1000
    scaling_large: int = 10000
    scaling_shape: tuple[int, int] = (256, 256)
    scaling_rounds: int = 3
    scaling_max_mem_mb: float = 64
    startup_repeats: int = 5
    commands_sizes: tuple[int, ...] = (9, 1000)  # Eiger-like frames (see bench_commands.py)
    commands_rounds: int = 5
    commands_oriented: tuple[int, int] = (15, 20)  # positions of the orientation chain
    live_frames: int = 400  # frames per latency run (h5 and tif), at live_rate
    live_rate: float = 20.0
    live_sustained: int = 5000  # frames of the sustained run, at the offline rate
    xrf_spectra: int = 100_000  # spectra of the XRF map (2048 channels, 10 groups)
    xrf_loop: int = 300  # spectra of the per-pixel scipy loop (its time scaled)
    xrf_repeats: int = 2  # rounds of ours and PyMca, alternating
    series_energies: int = 100  # energies (Eiger 1M frames) of the energy series


QUICK = Config(
    integration_repeat=2,
    distinct_frames=8,
    copy_mib=256,
    bandwidth_repeat=3,
    fit_profiles=256,
    fit_repeats=1,
    e2e_frames=16,
    e2e_repeats=1,
    memory_budget_mb=16,
    scaling_small=300,
    scaling_large=3000,
    scaling_shape=(64, 64),
    scaling_rounds=1,
    scaling_max_mem_mb=4,
    startup_repeats=2,
    commands_sizes=(9, 100),
    commands_rounds=3,
    live_frames=60,
    live_sustained=300,
    xrf_spectra=5000,
    xrf_loop=50,
    xrf_repeats=1,
    series_energies=8,
)


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# ----------------------------------------------------------------------------- figures


class Bench:
    """Runs the figures, sharing the inputs they have in common."""

    def __init__(self, config: Config, workdir: Path) -> None:
        self.config = config
        self.workdir = workdir
        self._eiger: tuple[Any, Any, np.ndarray] | None = None
        self._e2e_file: Path | None = None

    def eiger_frames(self):
        """The Eiger 1M integrator and 64 frames (``distinct_frames`` of them drawn)."""
        if self._eiger is None:
            from bench_integrate import BLOCKS

            ai, shape = common.eiger_integrator()
            n = max(BLOCKS)
            gen = common.ring_frames(ai, shape, n, seed=1, distinct=self.config.distinct_frames)
            frames = np.stack(list(gen))
            self._eiger = (ai, shape, frames)
        return self._eiger

    def e2e_file(self) -> Path:
        if self._e2e_file is None:
            from bench_end_to_end import make_file

            t0 = time.perf_counter()
            self._e2e_file = make_file(self.workdir, self.config.e2e_frames)
            say(
                f"  wrote {self.config.e2e_frames} Eiger frames in {time.perf_counter() - t0:.0f} s"
            )
        return self._e2e_file

    # ------------------------------------------------------------------ integration
    def integration(self) -> list[common.Row]:
        from bench_integrate import BLOCKS, bench_case

        ai, _shape, frames = self.eiger_frames()
        block = max(BLOCKS)
        rows = []
        for error_model, target in ((None, 10), ("poisson", 3)):
            r = bench_case(ai, frames, "bbox", error_model, self.config.integration_repeat)
            ours = r["fps"][block]
            sigma = "without σ" if error_model is None else "with Poisson σ"
            dev = f"; σ {r['dev_s']:.1e}" if error_model else ""
            rows.append(
                common.Row(
                    f"1-D integration, Eiger 1M, bbox/csr, {sigma}: batched vs integrate1d_ng",
                    ours,
                    r["pyfai"],
                    "frames/s",
                    target=f"≥ {target}×",
                    passed=ours / r["pyfai"] >= target,
                    note=(
                        f"blocks of {block} frames (16/32/64: "
                        + "/".join(f"{r['fps'][b]:.0f}" for b in BLOCKS)
                        + f" frames/s), 1000 bins, polarization 0.99; max rel. deviation "
                        f"from pyFAI: I {r['dev_i']:.1e}{dev}; build {r['build_s']:.1f} s"
                    ),
                )
            )
        return rows

    # ------------------------------------------------------------------ bandwidth
    def bandwidth(self) -> list[common.Row]:
        from pyscatter.kernels.integrate import BatchIntegrator

        ai, shape, frames = self.eiger_frames()
        cfg = self.config
        n_copy = cfg.copy_mib * common.MiB // 8
        src = np.ones(n_copy)
        dst = np.zeros(n_copy)  # both touched: no page faults in the timing
        rows = []
        for error_model in (None, "poisson"):
            batch = BatchIntegrator.from_pyfai(
                ai, shape, npt=1000, polarization_factor=0.99, error_model=error_model
            )
            batch.integrate(frames[:2])
            times, _ = common.interleaved(
                {
                    "copy": lambda: np.copyto(dst, src),
                    "kernel": lambda b=batch: b.integrate(frames),
                },
                cfg.bandwidth_repeat,
            )
            copy_gbs = 2 * src.nbytes / common.median(times["copy"]) / 1e9
            per_frame, parts = bytes_per_frame(batch, frames.dtype.itemsize)
            fps = len(frames) / common.median(times["kernel"])
            kernel_gbs = per_frame * fps / 1e9
            dram = sum(v for k, v in parts.items() if "piece" not in k)
            sigma = "without σ" if error_model is None else "with Poisson σ"
            rows.append(
                common.Row(
                    f"memory-bandwidth fraction of the batched integration, {sigma}",
                    kernel_gbs,
                    copy_gbs,
                    "GB/s",
                    target="fraction",
                    note=(
                        f"{per_frame / 1e6:.1f} MB/frame moved ("
                        + ", ".join(f"{k} {v / 1e6:.1f}" for k, v in parts.items())
                        + f") at {fps:.0f} frames/s; without the float32 pieces, which stay "
                        f"in cache: {dram / 1e6:.1f} MB/frame, fraction "
                        f"{dram * fps / 1e9 / copy_gbs:.2f}; peer: np.copyto of {cfg.copy_mib} "
                        "MiB float64 counted as read + write"
                    ),
                )
            )
        return rows

    # ------------------------------------------------------------------ fitting
    def fitting(self) -> list[common.Row]:
        from bench_fitting import synthetic_profiles

        from pyscatter.kernels.fitting import FitStatus, fit_profiles, fit_profiles_reference

        cfg = self.config
        chi, profiles, sigma = synthetic_profiles(
            "maier_saupe", cfg.fit_profiles, 360, np.random.default_rng(0)
        )
        fit_profiles(chi, profiles[:8], sigma[:8])  # warm-up (imports, caches)
        times, last = common.interleaved(
            {
                "fast": lambda: fit_profiles(chi, profiles, sigma),
                "curve_fit": lambda: fit_profiles_reference(chi, profiles, sigma),
            },
            cfg.fit_repeats,
        )
        fast, ref = last["fast"], last["curve_fit"]
        both = (fast.status == FitStatus.OK) & (ref.status == FitStatus.OK)
        diff = np.abs(fast.params[both] - ref.params[both])
        i_x0 = 2  # center_deg: compare on the circle
        diff[:, i_x0] = np.abs((diff[:, i_x0] + 90.0) % 180.0 - 90.0)
        pulls = diff / fast.errors[both]
        ours = cfg.fit_profiles / common.median(times["fast"])
        peer = cfg.fit_profiles / common.median(times["curve_fit"])
        return [
            common.Row(
                f"fitting: {cfg.fit_profiles} Maier–Saupe profiles × 360 χ, fit_profiles vs "
                "curve_fit loop",
                ours,
                peer,
                "fits/s",
                target="≥ 5×",
                passed=ours / peer >= 5,
                note=(
                    f"same profiles, sigma and start; both OK on {both.mean():.1%} of rows; "
                    f"|fast − curve_fit| / σ median {np.median(pulls):.1e}, max "
                    f"{np.max(pulls):.1e}"
                ),
            )
        ]

    # ------------------------------------------------------------------ end to end
    def end_to_end(self) -> list[common.Row]:
        import bench_end_to_end

        path = self.e2e_file()
        table = []
        for threads in dict.fromkeys((bench_end_to_end.cores(), 1)):
            result = bench_end_to_end.measure(path, self.config.e2e_repeats, threads=threads)
            table += bench_end_to_end.rows(result)
        return table

    # ------------------------------------------------------------------ memory
    def memory(self) -> list[common.Row]:
        import bench_memory

        path = self.e2e_file()
        budget = self.config.memory_budget_mb
        results = []
        for trim in (False, True):
            results.append(bench_memory.measure(path, budget, trim_after_setup=trim))
            say(f"  {'trimmed' if trim else 'as is'}: {results[-1]}")
        return bench_memory.rows(*results)

    # ------------------------------------------------------------------ scaling
    def scaling(self) -> list[common.Row]:
        import bench_scaling

        cfg = self.config
        t0 = time.perf_counter()
        small = bench_scaling.make_file(self.workdir, cfg.scaling_small, cfg.scaling_shape)
        large = bench_scaling.make_file(self.workdir, cfg.scaling_large, cfg.scaling_shape)
        say(f"  wrote the scaling scans in {time.perf_counter() - t0:.0f} s")
        result = bench_scaling.measure(
            small, large, cfg.scaling_rounds, max_mem_mb=cfg.scaling_max_mem_mb
        )
        return bench_scaling.rows(result, cfg.scaling_shape)

    # ------------------------------------------------------------------ start-up
    def startup(self) -> list[common.Row]:
        import bench_startup

        return bench_startup.rows(bench_startup.measure(self.workdir, self.config.startup_repeats))

    # ------------------------------------------------------------------ commands
    def commands(self) -> list[common.Row]:
        import bench_commands

        cfg = self.config
        return bench_commands.measure(
            self.workdir / "commands",
            cfg.commands_sizes,
            cfg.commands_rounds,
            cfg.commands_oriented,
            say=say,
        )

    # ------------------------------------------------------------------ live
    def live(self) -> list[common.Row]:
        import bench_live

        cfg = self.config
        results = bench_live.measure(
            self.workdir / "live", cfg.live_frames, cfg.live_rate, cfg.live_sustained, say=say
        )
        return bench_live.rows(results)

    # ------------------------------------------------------------------ xrf
    def xrf(self) -> list[common.Row]:
        import bench_xrf

        cfg = self.config
        return bench_xrf.rows(
            bench_xrf.measure(cfg.xrf_spectra, cfg.xrf_loop, cfg.xrf_repeats, say=say)
        )

    # ------------------------------------------------------------------ series
    def series(self) -> list[common.Row]:
        import bench_series

        return bench_series.rows(bench_series.measure(self.config.series_energies, say=say))


def bytes_per_frame(batch: Any, itemsize: int) -> tuple[float, dict[str, float]]:
    """Bytes the batched kernel streams per frame, by part (model in benchmarks/README.md).

    Frame read (``itemsize`` per pixel), float32 conversion (written, then read by the product),
    the CSC matrix (values and row indices per entry, column pointers per pixel) read once per
    block of ``block_frames`` frames, and the sums/output per bin; with Poisson sigma also the
    variance piece, the squared values and the indices again, and the variance sums.
    """
    csc = batch._csc  # the matrix the kernel streams (private: this is a benchmark)
    n_pix = batch.shape[0] * batch.shape[1]
    bf = batch.block_frames
    matrix = csc.nnz * (csc.data.itemsize + csc.indices.itemsize)
    matrix += (n_pix + 1) * csc.indptr.itemsize
    parts = {
        "frame": float(n_pix * itemsize),
        "float32 piece": 8.0 * n_pix,
        "matrix": matrix / bf,
        "sums": 12.0 * batch.n_bins,
    }
    if batch.error_model == "poisson":
        parts["variance piece"] = 8.0 * n_pix
        parts["matrix²"] = (matrix + csc.nnz * 4 - (n_pix + 1) * csc.indptr.itemsize) / bf
        parts["variance sums"] = 12.0 * batch.n_bins
    return sum(parts.values()), parts


# ----------------------------------------------------------------------------- report


def report(rows: list[common.Row], facts: dict[str, str], header: str, seconds: float) -> str:
    notes = "\n".join(f"- **{r.figure}**: {r.note}" for r in rows if r.note)
    machine = "\n".join(f"| {k} | {v} |" for k, v in facts.items())
    return f"""# pyscatter benchmark results

Written by `benchmarks/run.py` ({header}, {seconds / 60:.1f} min); see `benchmarks/README.md` for
what each figure measures and how. Medians over repeats; each ratio is pyscatter / peer measured
in the same run, the two alternating round by round. The memory rows compare the peak against
`max_mem_mb` + the set-up overhead, the bandwidth rows the kernel's streamed bytes per second
against a numpy copy (ratio = the fraction of the bandwidth used).

{format_rows(rows)}

## Notes

{notes}

## Machine

| fact | value |
|------|-------|
{machine}
"""


def format_rows(rows: list[common.Row]) -> str:
    return common.format_table(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smoke run (about a minute)")
    parser.add_argument(
        "--only",
        action="append",
        default=None,
        help=f"comma-separated figures to run, of: {', '.join(FIGURES)} (repeatable)",
    )
    parser.add_argument(
        "--results",
        type=Path,
        default=None,
        help="where to write the report (default: benchmarks/RESULTS.md for a full run of "
        "every figure, nowhere otherwise); '-' to write nothing",
    )
    parser.add_argument(
        "--workdir", type=Path, help="folder for the temporary scans (default: the system's)"
    )
    args = parser.parse_args(argv)

    only = [x.strip() for item in (args.only or []) for x in item.split(",") if x.strip()]
    unknown = sorted(set(only) - set(FIGURES))
    if unknown:
        parser.error(
            f"unknown figure(s) {', '.join(unknown)}; expected some of {', '.join(FIGURES)}"
        )
    figures = [f for f in FIGURES if not only or f in only]
    config = QUICK if args.quick else Config()
    results = args.results
    if results is None and not args.quick and not only:
        results = RESULTS
    if results is not None and str(results) == "-":
        results = None

    facts = common.machine_facts()
    t_start = time.perf_counter()
    rows: list[common.Row] = []
    with tempfile.TemporaryDirectory(prefix="pyscatter-bench-", dir=args.workdir) as tmp:
        bench = Bench(config, Path(tmp))
        for name in figures:
            say(f"{name} …")
            t0 = time.perf_counter()
            new = getattr(bench, name)()
            rows += new
            say(f"  {time.perf_counter() - t0:.0f} s")
    seconds = time.perf_counter() - t_start
    facts["load average at the end"] = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    mode = "quick" if args.quick else "full"
    header = f"{mode} run of {', '.join(figures)}"
    print(format_rows(rows))
    print()
    for r in rows:
        if r.note:
            print(f"- {r.figure}: {r.note}")
    print(
        f"\n{header}; {seconds / 60:.1f} min; load average {facts['load average (1, 5, 15 min)']} "
        f"→ {facts['load average at the end']}"
    )
    if results is not None:
        Path(results).write_text(report(rows, facts, header, seconds), encoding="utf-8")
        say(f"wrote {results}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
