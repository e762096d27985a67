"""Fixtures of the batch tests: small scans (one corrupt), a pipeline, the fake SLURM on PATH."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

import pyscatter
from tests.batch import fakeslurm

PIPELINE = """\
execution: {progress: false}
steps:
  - integrate: {npt: 32, unit: q_nm^-1, error_model: poisson}
"""
INTEGRATE = {"npt": 32, "unit": "q_nm^-1", "error_model": "poisson"}
GROUP = "/Measurement_000/Channel_000/Raw_Data-AzimuthalIntegration_000"
#: The names of the good scans; ``bad.h5`` is not HDF5 at all.
GOOD = ("s_1.h5", "s_2.h5", "s_10.h5", "it's $(touch PWNED) a b.h5")
REPO = Path(pyscatter.__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def scans(tmp_path_factory) -> Path:
    """Four 2×2 scans of 64×64 frames and a corrupt ``bad.h5`` (written once)."""
    from conftest import write_scan

    from pyscatter import datasets

    folder = tmp_path_factory.mktemp("scans")
    for i, name in enumerate(GOOD):
        write_scan(folder / name, datasets.make_scan((2, 2), frame_shape=(64, 64), rng=i))
    (folder / "bad.h5").write_bytes(b"this is not an HDF5 file\n" * 10)
    return folder


@pytest.fixture()
def work(scans, tmp_path, monkeypatch) -> Path:
    """A copy of the scans and ``p.yaml`` in ``tmp_path/raw``; the current folder is tmp_path."""
    raw = tmp_path / "raw"
    shutil.copytree(scans, raw)
    (tmp_path / "p.yaml").write_text(PIPELINE)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
    return tmp_path


@pytest.fixture()
def slurm(tmp_path, monkeypatch):
    """Install the fake SLURM (jobs pend one poll, then run); returns a function to reinstall."""

    def install(**config) -> Path:
        bin_dir = tmp_path / "fakebin"
        state = fakeslurm.install(bin_dir, **config)
        monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
        return state

    return install
