"""The orientation chain as users run it: profiles → fit → order as whole commands.

A pyscatter file of ``oriented_map`` frames (300 positions of 192 × 224) goes through
``pyscatter profiles`` → ``fit`` → ``order`` as three commands and as one ``pyscatter run``
pipeline, against a script that, per position, integrates a 2-D cake in the ring's q range
(``integrate2d_ng``, 8 radial × 180 χ bins, Poisson σ), averages it into I(χ) and fits the
Maier–Saupe model with ``curve_fit``, then computes S (:data:`ORIENTED_SCRIPT`). Each run works
on a fresh copy of the file (the copy is not timed). Part of the ``commands`` figure
(:mod:`bench_commands`, whose launcher, matrix cache and row helpers it uses).
"""

# ruff: noqa: I001 (import order: common before numpy, see bench_commands)
from __future__ import annotations

import common  # first: sets OMP_NUM_THREADS before numpy and pyFAI load

import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bench_commands import Run, _med, _peak, _secs, combine, launch, pyscatter_cli

#: The ring the orientation chain works on (oriented_map's first ring) and its half-width.
RING_Q, RING_HALF_WIDTH = 0.45, 0.06

#: Per position: a cake in the ring's q range, I(chi), curve_fit of Maier-Saupe, S.
#: argv: scan file, poni, mask, q_lo, q_hi, output.
ORIENTED_SCRIPT = """
import sys
import fabio, h5py, hdf5plugin, numpy as np, pyFAI
from scipy.optimize import curve_fit
src, poni, mask_file, lo, hi, out = sys.argv[1:7]
ai = pyFAI.load(poni)
mask = fabio.open(mask_file).data

def model(chi, i0, kappa, x0, a, b):
    return i0 * np.exp(kappa * np.cos(np.radians(chi - x0)) ** 2) + a + b * chi

LOW, HIGH = [0, 0, -np.inf, -np.inf, -np.inf], [np.inf, 200, np.inf, np.inf, np.inf]
theta = np.linspace(0, np.pi, 2001)
def order(kappa):
    w = np.exp(kappa * np.cos(theta) ** 2) * np.sin(theta)
    return np.trapezoid(1.5 * np.cos(theta) ** 2 * w - 0.5 * w, theta) / np.trapezoid(w, theta)

with h5py.File(src, "r") as h5, h5py.File(out, "w") as res:
    raw = h5["Measurement_000/Channel_000/Raw_Data"]
    shape = ai.detector.shape
    n = raw.shape[0]
    params = np.full((n, 5), np.nan)
    s = np.full(n, np.nan)
    for i in range(n):
        frame = raw[i].reshape(shape)
        r = ai.integrate2d_ng(frame, 8, 180, radial_range=(float(lo), float(hi)),
                              unit="q_nm^-1", method=("bbox", "csr", "cython"), mask=mask,
                              error_model="poisson")
        count = r.count.sum(axis=1)
        ok = count > 0
        prof = (r.sum_signal.sum(axis=1)[ok] / r.sum_normalization.sum(axis=1)[ok])
        sig = np.sqrt(r.sum_variance.sum(axis=1)[ok]) / r.sum_normalization.sum(axis=1)[ok]
        chi = r.azimuthal[ok]
        lo_i = np.percentile(prof, 10)
        p0 = [max(prof.max() - lo_i, 1e-3), 2.0, chi[np.argmax(prof)], lo_i, 0.0]
        try:
            p, _ = curve_fit(model, chi, prof, p0=p0, sigma=sig, bounds=(LOW, HIGH))
        except RuntimeError:
            continue
        p[2] = (p[2] + 90) % 180 - 90
        params[i] = p
        s[i] = order(abs(p[1]))
    res["params"] = params
    res["S"] = s
"""


@dataclass(frozen=True)
class Oriented:
    """The oriented scan file (never processed: every run works on a copy) and its truth."""

    scan: Path
    poni: Path
    mask: Path
    n: int
    truth_s: np.ndarray  # (n,) order parameter of the model
    truth_director: np.ndarray  # (n,) degrees


def write_oriented(directory: Path, scan_shape: tuple[int, int]) -> Oriented:
    """``oriented_map`` frames as a pyscatter file (as tests/conftest.py's ``write_scan``)."""
    import fabio
    import pyFAI

    from pyscatter import datasets
    from pyscatter.io.raw import MeasurementSpec, write_measurement
    from pyscatter.io.usid import Dim

    directory.mkdir(parents=True, exist_ok=True)
    scan = datasets.oriented_map(scan_shape, rng=5)
    rows, cols = scan.frame_shape
    spec = MeasurementSpec(
        position_dims=[Dim(name, scan.units[name], scan.coords[name]) for name in scan.dims],
        spec_dims=[Dim("Row", "pixel", np.arange(rows)), Dim("Col", "pixel", np.arange(cols))],
        dtype=scan.frames.dtype,
        geometry=scan.integrator().get_config(),
        mask=scan.mask,
        attrs={"translator": "benchmarks.bench_commands", "pyFAI": pyFAI.version},
    )
    path = write_measurement(
        directory / "oriented.h5", spec, iter(scan.frames.reshape(-1, rows, cols)), overwrite=True
    )
    mask = directory / "oriented_mask.edf"
    fabio.edfimage.EdfImage(data=scan.mask.astype(np.int8)).write(str(mask))
    return Oriented(
        path,
        scan.write_poni(directory / "oriented.poni"),
        mask,
        int(np.prod(scan_shape)),
        scan.order_parameter.ravel(),
        scan.director_deg.ravel(),
    )


def _fresh_copy(oriented: Oriented, work: Path, name: str) -> Path:
    work.mkdir(parents=True, exist_ok=True)
    target = work / name
    shutil.copyfile(oriented.scan, target)
    return target


def run_chain_commands(oriented: Oriented, work: Path) -> Run:
    """``pyscatter profiles``, ``fit``, ``order``: three commands on a fresh copy."""
    path = _fresh_copy(oriented, work, "chain.h5")
    return combine(
        launch(
            pyscatter_cli(
                "profiles", path, "--q", RING_Q, "--half-width", RING_HALF_WIDTH, "--no-progress"
            )
        ),
        launch(pyscatter_cli("fit", path, "--model", "maier_saupe", "--no-progress")),
        launch(pyscatter_cli("order", path, "--no-progress")),
    )


def run_chain_pipeline(oriented: Oriented, work: Path) -> Run:
    """The same three steps as one ``pyscatter run`` pipeline on a fresh copy."""
    path = _fresh_copy(oriented, work, "pipeline.h5")
    yaml = work / "pipeline.yaml"
    yaml.write_text(
        f"output: {path.name}\n"
        "execution: {progress: false}\n"
        "steps:\n"
        f"  - profiles: {{q: [{RING_Q}], half_width: {RING_HALF_WIDTH}}}\n"
        "  - fit: {model: maier_saupe}\n"
        "  - order: {}\n",
        encoding="utf-8",
    )
    return launch(pyscatter_cli("run", yaml))


def run_chain_script(oriented: Oriented, work: Path) -> Run:
    work.mkdir(parents=True, exist_ok=True)
    lo, hi = RING_Q - RING_HALF_WIDTH, RING_Q + RING_HALF_WIDTH
    argv = [sys.executable, "-c", ORIENTED_SCRIPT, str(oriented.scan), str(oriented.poni)]
    return launch([*argv, str(oriented.mask), str(lo), str(hi), str(work / "script.h5")])


def orientation_agreement(oriented: Oriented, work: Path) -> dict[str, float]:
    """S and director of both against the model's truth, where the ring is oriented."""
    import h5py

    import pyscatter

    order = pyscatter.to_xarray(work / "chain.h5", "OrderParameter")
    ours_s = np.asarray(order["S"].isel(ring=0).values).ravel()
    ours_dir = np.asarray(order["director"].isel(ring=0).values).ravel()
    with h5py.File(work / "script.h5", "r") as h5:
        theirs_s = h5["S"][()]
        theirs_dir = h5["params"][:, 2]
    aniso = oriented.truth_s > 0.1

    def ddir(d: np.ndarray) -> float:
        delta = (d[aniso] - oriented.truth_director[aniso] + 90) % 180 - 90
        return float(np.nanmedian(np.abs(delta)))

    return {
        "ours_s": float(np.nanmedian(np.abs(ours_s - oriented.truth_s))),
        "script_s": float(np.nanmedian(np.abs(theirs_s - oriented.truth_s))),
        "ours_dir": ddir(ours_dir),
        "script_dir": ddir(theirs_dir),
        "script_failed": int(np.isnan(theirs_s).sum()),
    }


def measure_orientation(oriented: Oriented, work: Path, rounds: int) -> dict[str, Any]:
    runs: dict[str, list[Run]] = {"commands": [], "pipeline": [], "script": []}
    funcs = {
        "commands": lambda: runs["commands"].append(run_chain_commands(oriented, work)),
        "pipeline": lambda: runs["pipeline"].append(run_chain_pipeline(oriented, work)),
        "script": lambda: runs["script"].append(run_chain_script(oriented, work)),
    }
    for func in funcs.values():  # warm-up
        func()
    for name in runs:
        runs[name].clear()
    common.interleaved(funcs, rounds)
    return {"n": oriented.n, "runs": runs, "agreement": orientation_agreement(oriented, work)}


# ----------------------------------------------------------------------------- the table


def orientation_rows(result: dict[str, Any]) -> list[common.Row]:
    n, runs, agree = result["n"], result["runs"], result["agreement"]
    script = n / _med(runs["script"])
    note = (
        f"{len(runs['script'])} rounds; seconds per round: commands {_secs(runs['commands'])}, "
        f"pipeline {_secs(runs['pipeline'])}, script {_secs(runs['script'])}; median |S − S_true| "
        f"pyscatter {agree['ours_s']:.4f}, script {agree['script_s']:.4f}; median director error "
        f"(S_true > 0.1) {agree['ours_dir']:.2f}° vs {agree['script_dir']:.2f}°; script fits "
        f"failed: {agree['script_failed']}; peak RSS commands {_peak(runs['commands']):.0f} MiB, "
        f"pipeline {_peak(runs['pipeline']):.0f} MiB, script {_peak(runs['script']):.0f} MiB"
    )
    rows = []
    for key, how in (("commands", "three commands"), ("pipeline", "one `pyscatter run` pipeline")):
        ours = n / _med(runs[key])
        rows.append(
            common.Row(
                f"orientation, {n} positions of 192 × 224: profiles → fit → order as {how} vs "
                "per-position integrate2d_ng + curve_fit script",
                ours,
                script,
                "positions/s",
                target="≥ 5×",
                passed=ours / script >= 5,
                note=note
                if key == "pipeline"
                else "q 0.45 ± 0.06 nm⁻¹, 180 χ bins, 8 radial "
                "sub-bins, Poisson σ, Maier–Saupe; each run on a fresh copy of the scan file",
            )
        )
    return rows
