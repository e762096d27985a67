"""Make ``legacy_detector.h5``: results written by the release before the detector set-up.

The file was made with the code of commit :data:`LEGACY_COMMIT` (pyscatter before
``pyscatter.processes.detector`` existed), from the repository root::

    git stash            # or a checkout of LEGACY_COMMIT
    PYTHONPATH=$PWD python tests/data/make_legacy.py tests/data/legacy_detector.h5

It holds a synthetic scan (2 × 3 positions, 64 × 64 frames, :func:`pyscatter.datasets.make_scan`
with seed 11) with a ``Monitor`` per position, and these results of :data:`RUNS` (each the
keyword arguments of ``run_on_file``; the arrays come from :func:`arrays`):

- ``integrate_full``: AzimuthalIntegration with every detector option (extra mask, dark, flat,
  dummy, polarization, monitor, transmission, exposure time, Poisson sigma) — complete;
- ``integrate_default``: AzimuthalIntegration as ``pyscatter integrate --npt 40`` — complete;
- ``profiles``: AzimuthalProfiles at two rings with an extra mask — complete;
- ``sectors``: SectorIntegration, 4 sectors — complete;
- ``integrate_partial``: AzimuthalIntegration interrupted after :data:`PARTIAL_BLOCKS` of its
  6 one-position blocks (as Ctrl-C leaves it) — partial.

``tests/processes/test_legacy_detector.py`` checks that the current code reuses the complete
groups, resumes the partial one to the bits of an uninterrupted run, and writes ``_001`` for
changed parameters.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np

LEGACY_COMMIT = "7618889"
"""The commit whose code wrote ``legacy_detector.h5`` (before the detector set-up)."""
PARTIAL_BLOCKS = 3
"""Blocks written by the interrupted run before it stopped."""
FRAME_SHAPE = (64, 64)
SCAN_SHAPE = (2, 3)
RAW = "Measurement_000/Channel_000/Raw_Data"


def scan():
    """The synthetic scan (seeded: the same frames every time)."""
    from pyscatter import datasets

    return datasets.make_scan(SCAN_SHAPE, frame_shape=FRAME_SHAPE, rng=11)


def arrays() -> dict[str, np.ndarray]:
    """Extra mask, dark and flat of the ``integrate_full`` run (seeded)."""
    rng = np.random.default_rng(12)
    mask = np.zeros(FRAME_SHAPE, dtype=np.uint8)
    mask[:6, :] = 1
    return {
        "mask": mask,
        "dark": rng.integers(0, 3, FRAME_SHAPE).astype(np.uint8),  # small types: a small file
        "flat": rng.uniform(0.8, 1.2, FRAME_SHAPE).astype(np.float16),
    }


def monitor() -> np.ndarray:
    """Monitor counts per position (recorded as ``Channel_000/Monitor``)."""
    return np.linspace(9.0e4, 1.1e5, int(np.prod(SCAN_SHAPE)))


def runs() -> dict[str, tuple[str, dict[str, Any]]]:
    """Per results group: (process name, keyword arguments of ``run_on_file``)."""
    a = arrays()
    quiet = {"progress": False}
    return {
        "integrate_full": (
            "AzimuthalIntegration",
            dict(
                npt=50,
                error_model="poisson",
                polarization_factor=0.99,
                mask=a["mask"],
                dark=a["dark"],
                flat=a["flat"],
                dummy=-1.0,
                delta_dummy=0.5,
                monitor="auto",
                transmission=0.8,
                exposure_time=2.0,
                **quiet,
            ),
        ),
        "integrate_default": (
            "AzimuthalIntegration",
            dict(npt=40, method="bbox,csr,cython", **quiet),
        ),
        "profiles": (
            "AzimuthalProfiles",
            dict(
                q=[0.45, 0.8],
                width=0.06,
                npt_azim=36,
                n_radial=4,
                polarization_factor=0.99,
                mask=a["mask"],
                method=("bbox", "csr", "cython"),
                **quiet,
            ),
        ),
        "sectors": (
            "SectorIntegration",
            dict(n_sectors=4, npt=40, polarization_factor=0.99, **quiet),
        ),
        "integrate_partial": (
            "AzimuthalIntegration",
            dict(npt=30, error_model="poisson", max_mem_mb=0.07, **quiet),
        ),
    }


def process_class(name: str):
    from pyscatter.processes.integration import AzimuthalIntegration
    from pyscatter.processes.profiles import AzimuthalProfiles
    from pyscatter.processes.sectors import SectorIntegration

    classes = (AzimuthalIntegration, AzimuthalProfiles, SectorIntegration)
    return {c.process_name: c for c in classes}[name]


def write_raw(path: Path) -> Path:
    """The scan as a USID file (as ``tests/conftest.py``'s ``write_scan``, plus a monitor)."""
    import pyFAI

    from pyscatter.io.raw import MeasurementSpec, write_measurement
    from pyscatter.io.usid import Dim

    s = scan()
    dims = [Dim(name, s.units[name], s.coords[name]) for name in s.dims]
    rows, cols = s.frame_shape
    spec = MeasurementSpec(
        position_dims=dims,
        spec_dims=[Dim("Row", "pixel", np.arange(rows)), Dim("Col", "pixel", np.arange(cols))],
        dtype=s.frames.dtype,
        geometry=s.integrator().get_config(),
        mask=s.mask,
        attrs={"translator": "tests.make_legacy", "pyFAI": pyFAI.version},
        extra={"Monitor": monitor()},
    )
    return write_measurement(path, spec, iter(s.frames.reshape(-1, rows, cols)))


def main(out: str) -> None:
    from pyscatter.io import safety
    from pyscatter.processes.base import run_on_file

    path = Path(out)
    if path.exists():
        path.unlink()
    write_raw(path)
    for name, (process, kwargs) in runs().items():
        if name != "integrate_partial":
            summary = run_on_file(path, process_class(process), **kwargs)
            print(f"{name}: {summary.group}")
            continue
        real, calls = safety.write_status, []

        def interrupt(*args, _real=real, _calls=calls, **kw):
            _calls.append(1)
            if len(_calls) == PARTIAL_BLOCKS:
                raise KeyboardInterrupt
            return _real(*args, **kw)

        safety.write_status = interrupt
        try:
            run_on_file(path, process_class(process), **kwargs)
        except KeyboardInterrupt:
            print(f"{name}: interrupted after {PARTIAL_BLOCKS} blocks")
        finally:
            safety.write_status = real
    for extra in (path.with_name(path.name + ".status.json"),):
        if extra.exists():
            extra.unlink()


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "legacy_detector.h5")
