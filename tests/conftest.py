"""Shared fixtures: real data from the reference data folder (skipped when absent), small scans.

The reference data folder is ``$PYSCATTER_TEST_DATA``, by default ``shared/data`` in the folder
that holds the repository.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest

import pyscatter  # noqa: F401  (registers the HDF5 filters of compressed Raw_Data)

# pyUSID stays the independent validator and reader of our files, in the tests only. Its last
# release (0.0.12) predates numpy 2 and calls ``np.product``, which numpy 2 removed (e.g. in
# ``USIDataset.get_n_dim_form`` and ``hdf_utils.write_main_dataset``). The package itself never
# imports pyUSID, so the shim lives here, for the test session, not in pyscatter.
if not hasattr(np, "product"):
    setattr(np, "product", np.prod)  # noqa: B010 (ruff's numpy-2 rule would "fix" it into a no-op)

# the matrix cache (pyscatter.io.matrix_cache) of the whole session: never the user's home
os.environ["PYSCATTER_CACHE"] = tempfile.mkdtemp(prefix="pyscatter-test-cache-")
atexit.register(shutil.rmtree, os.environ["PYSCATTER_CACHE"], ignore_errors=True)

SHARED_DATA = Path(
    os.environ.get("PYSCATTER_TEST_DATA")
    or Path(__file__).resolve().parents[1].parent / "shared" / "data"
)


def pytest_collection_modifyitems(config, items):
    if SHARED_DATA.is_dir():
        return
    skip = pytest.mark.skip(reason=f"real data folder {SHARED_DATA} is absent")
    for item in items:
        if "realdata" in item.keywords:
            item.add_marker(skip)


def pytest_terminal_summary(terminalreporter):
    """Print the figures tests record with ``record_property`` (calibrations, replay ranges)."""
    rows = [
        (report.nodeid.split("::")[-1], name, value)
        for report in terminalreporter.stats.get("passed", [])
        if report.when == "call"
        for name, value in getattr(report, "user_properties", ())
    ]
    if not rows:
        return
    terminalreporter.section("reported figures")
    for _test, name, value in rows:
        if isinstance(value, dict):
            value = ", ".join(f"{k}: {v}" for k, v in value.items())
        terminalreporter.write_line(f"{name}: {value}")


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real data folder {SHARED_DATA} is absent")
    return SHARED_DATA


def write_scan(path: Path, scan, *, compression: str = "bslz4") -> Path:
    """Write a :class:`pyscatter.datasets.SyntheticScan` as a USID file through the io layer."""
    import pyFAI

    from pyscatter.io.raw import MeasurementSpec, write_measurement
    from pyscatter.io.usid import Dim

    dims = [Dim(name, scan.units[name], scan.coords[name]) for name in scan.dims]
    rows, cols = scan.frame_shape
    spec = MeasurementSpec(
        position_dims=dims,
        spec_dims=[Dim("Row", "pixel", np.arange(rows)), Dim("Col", "pixel", np.arange(cols))],
        dtype=scan.frames.dtype,
        geometry=scan.integrator().get_config(),
        mask=scan.mask,
        attrs={"translator": "tests.write_scan", "pyFAI": pyFAI.version},
    )
    frames = scan.frames.reshape(-1, rows, cols)
    return write_measurement(path, spec, iter(frames), compression=compression)


@pytest.fixture(scope="session")
def small_scan():
    from pyscatter import datasets

    return datasets.oriented_map((3, 4), rng=7)


@pytest.fixture()
def scan_file(tmp_path, small_scan) -> Path:
    return write_scan(tmp_path / "scan.h5", small_scan)


def interrupted_run(path: Path, process, *, blocks: int = 2, **kwargs) -> None:
    """``run_on_file(path, process, **kwargs)`` stopped by Ctrl-C once ``blocks`` blocks are
    written (the status after each block is where it is raised): a run to resume."""
    from pyscatter.io import safety
    from pyscatter.processes.base import run_on_file

    written = []
    real = safety.write_status

    def stop_after(*args, **kw):
        real(*args, **kw)
        written.append(1)
        if len(written) == blocks:
            raise KeyboardInterrupt

    safety.write_status = stop_after
    try:
        with pytest.raises(KeyboardInterrupt):
            run_on_file(path, process, **kwargs)
    finally:
        safety.write_status = real
