"""Importing pyscatter's processes, readers, CLI and plots pulls in nothing heavy.

pyUSID alone takes 4–11 s to import (sidpy → dask.array, scikit-learn, matplotlib); the package
imports neither it nor sidpy, and keeps dask, scikit-learn, matplotlib, xarray, pandas and yaml
for the calls that use them; likewise scipy.optimize and scipy.stats (~0.5 s together), which
only the reference fits and the model-selection test need. Checked in a fresh interpreter (what
a module imports, not how long it takes).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HEAVY = (
    "pyUSID",
    "sidpy",
    "sklearn",
    "dask",
    "distributed",
    "joblib",
    "matplotlib",
    "xarray",
    "pandas",
    "yaml",
    "tqdm",
    "scipy.optimize",
    "scipy.stats",
    "scipy.integrate",
)
MODULES = (
    "pyscatter",
    "pyscatter.processes",
    "pyscatter.processes.base",
    "pyscatter.processes.execution",
    "pyscatter.processes.integration",
    "pyscatter.processes.fitting",
    "pyscatter.processes.order",
    "pyscatter.processes.peaks",
    "pyscatter.processes.decomposition",
    "pyscatter.processes.clustering",
    "pyscatter.kernels.fitting",
    "pyscatter.kernels.order",
    "pyscatter.kernels.peaks",
    "pyscatter.io.results",
    "pyscatter.io.xarray",
    "pyscatter.io.reading",
    "pyscatter.io.export",
    "pyscatter.io.sidpy_view",
    "pyscatter.cli",
    "pyscatter.plot.maps",
    "pyscatter.plot.orientation",
    "pyscatter.plot.decomposition",
    "pyscatter.plot.scattering",
)


def _heavy_by_module() -> dict:
    """``{module: heavy packages its import loaded first}``, all imported in one interpreter."""
    code = (
        "import importlib, json, sys\n"
        "out = {}\n"
        f"for module in {MODULES!r}:\n"
        "    importlib.import_module(module)\n"
        f"    out[module] = sorted(h for h in {HEAVY!r} if h in sys.modules)\n"
        "import numpy\n"
        "out['np.product'] = hasattr(numpy, 'product')\n"
        "print(json.dumps(out))\n"
    )
    path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=dict(os.environ, PYTHONPATH=path),
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_importing_pulls_in_nothing_heavy():
    loaded = _heavy_by_module()
    first = {m: loaded[m] for m in MODULES if loaded[m]}
    assert not first, f"heavy imports (module: loaded so far): {first}"
    assert not loaded["np.product"], "pyscatter patches numpy (np.product)"
