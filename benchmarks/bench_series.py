"""An energy series against a fixed-geometry scan of the same frames: ``pyscatter integrate``.

Issue 15's figure: an energy series of ``n`` energies × Eiger 1M frames integrates within 2× the
time of a fixed-geometry scan of the same size plus the matrix builds. Two USID files hold the
same ``n`` Eiger-like frames (1065 × 1030 uint32, bitshuffle-LZ4, module gaps masked, powder
rings; ``common.write_ring_scan``'s frames): one with one geometry, one whose wavelength changes
at every position (``Geometry_wavelength``, ``geometry_varies``: what the translators write for
an energy series). Each is integrated by a whole ``pyscatter integrate FILE --npt 1000``
command (1-D, bbox/csr, q in nm⁻¹, on the series' own common q range for both) in a fresh
process with an empty matrix cache (cold: every matrix built), then again on a fresh copy with
the cache filled (warm: every matrix loaded). The builds are timed on their own in this process
(pyFAI's CSR set-up and corrections, :func:`pyscatter.kernels.csr.pyfai_inputs`, one per
distinct geometry), so that

    ratio = series (cold) / (fixed (cold) + (n − 1) × one build)

is the issue's figure (target ≤ 2).

Usage::

    .venv/bin/python benchmarks/bench_series.py [--energies 100]
"""

# ruff: noqa: I001 (import order: common before numpy)
from __future__ import annotations

import common  # first: sets OMP_NUM_THREADS before numpy loads

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

NPT = 1000
BUILDS_TIMED = 3


def write_scan(path: Path, n: int, *, series: bool) -> Path:
    """``n`` Eiger-like frames; with ``series`` a wavelength per position (8–12 keV)."""
    import pyFAI

    from pyscatter.io import raw as raw_io
    from pyscatter.io.geometry_series import energy_to_wavelength
    from pyscatter.io.usid import Dim

    ai, shape = common.eiger_integrator()
    energies = np.linspace(8.0, 12.0, n)
    extra, extra_attrs, attrs = {}, {}, {"translator": "benchmarks.bench_series"}
    if series:
        extra["Geometry_wavelength"] = energy_to_wavelength(energies)
        extra_attrs["Geometry_wavelength"] = {"units": "m", "source": "bench_series"}
        attrs["geometry_varies"] = ["wavelength"]
    spec = raw_io.MeasurementSpec(
        position_dims=[Dim("Energy", "keV", energies)],
        spec_dims=[
            Dim("Row", "pixel", np.arange(shape[0])),
            Dim("Col", "pixel", np.arange(shape[1])),
        ],
        dtype=np.uint32,
        geometry=ai.get_config(),
        attrs={**attrs, "pyFAI": pyFAI.version},
        extra=extra,
        extra_attrs=extra_attrs,
    )
    frames = common.ring_frames(ai, shape, n, distinct=min(n, 16))
    return raw_io.write_measurement(path, spec, frames, compression="bslz4", overwrite=True)


def series_range(path: Path) -> list[float]:
    """The common q range the series integration records (the union over its geometries)."""
    import h5py

    from pyscatter.processes.detector import DetectorSetup
    from pyscatter.processes.integration import series_ranges

    with h5py.File(path, "r") as h5:
        raw = h5["Measurement_000/Channel_000/Raw_Data"]
        setup = DetectorSetup.from_options(raw, dim=1)
        radial, _ = series_ranges(
            setup, "q_nm^-1", None, None, cake=False, mask=setup.combined_mask(h5)
        )
    return radial


def integrate(path: Path, cache: Path, radial: list[float]) -> float:
    """Wall time of ``pyscatter integrate`` on ``path`` in a fresh process."""
    env = dict(os.environ, PYSCATTER_CACHE=str(cache), OMP_NUM_THREADS="1")
    argv = [sys.executable, "-m", "pyscatter", "-q", "integrate", str(path), "--npt", str(NPT)]
    argv += ["--radial-range", repr(radial[0]), repr(radial[1])]
    t0 = time.perf_counter()
    subprocess.run(argv, check=True, env=env, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t0


def build_time(path: Path, radial: list[float]) -> float:
    """Median time of one matrix build (pyFAI's CSR set-up and corrections) of the series."""
    import h5py

    from pyscatter.io.geometry_series import read_series
    from pyscatter.kernels.csr import pyfai_inputs
    from pyscatter.geometry import integrator_from_config

    with h5py.File(path, "r") as h5:
        series = read_series(h5["Measurement_000/Channel_000/Raw_Data"])
    configs = series.group_configs()[:BUILDS_TIMED]
    _, shape = common.eiger_integrator()
    saved = os.environ.get("PYSCATTER_CACHE")
    os.environ["PYSCATTER_CACHE"] = "off"  # built by pyFAI, not loaded
    times = []
    try:
        for config in configs:
            t0 = time.perf_counter()
            pyfai_inputs(integrator_from_config(config), shape, npt=NPT, radial_range=radial)
            times.append(time.perf_counter() - t0)
    finally:
        if saved is None:
            os.environ.pop("PYSCATTER_CACHE", None)
        else:
            os.environ["PYSCATTER_CACHE"] = saved
    return float(np.median(times))


def measure(n: int, say: Callable[[str], None] = print) -> dict[str, Any]:
    """Cold and warm whole-command times of the fixed and the series scan, and one build."""
    work = Path(tempfile.mkdtemp(prefix="bench-series-"))
    try:
        t0 = time.perf_counter()
        fixed = write_scan(work / "fixed.h5", n, series=False)
        series = write_scan(work / "series.h5", n, series=True)
        say(f"  two scans of {n} Eiger 1M frames written in {time.perf_counter() - t0:.0f} s")
        radial = series_range(series)
        out: dict[str, Any] = {"n": n, "radial_range": radial}
        for name, source in (("fixed", fixed), ("series", series)):
            cache = work / f"cache-{name}"
            for state in ("cold", "warm"):
                copy = work / f"{name}-{state}.h5"
                shutil.copyfile(source, copy)
                out[f"{name}_{state}_s"] = integrate(copy, cache, radial)
                say(f"  {name} {state}: {out[f'{name}_{state}_s']:.1f} s")
        out["build_s"] = build_time(series, radial)
        budget = out["fixed_cold_s"] + (n - 1) * out["build_s"]
        out["budget_s"] = budget
        out["ratio"] = out["series_cold_s"] / budget
        return out
    finally:
        shutil.rmtree(work, ignore_errors=True)


def rows(r: dict[str, Any]) -> list[common.Row]:
    what = f"energy series of {r['n']} energies × Eiger 1M, pyscatter integrate (1-D, npt {NPT})"
    return [
        common.Row(
            f"{what}: series (cold cache) vs fixed geometry + {r['n'] - 1} builds",
            r["series_cold_s"],
            r["budget_s"],
            "s",
            target="≤ 2×",
            passed=r["ratio"] <= 2.0,
            note=(
                f"fixed geometry cold {r['fixed_cold_s']:.1f} s, one build "
                f"{r['build_s']:.2f} s; warm cache (matrices loaded): series "
                f"{r['series_warm_s']:.1f} s vs fixed {r['fixed_warm_s']:.1f} s"
            ),
        )
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--energies", type=int, default=100)
    args = parser.parse_args(argv)
    result = measure(args.energies)
    print(json.dumps(result, indent=1))
    print(common.format_table(rows(result)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
