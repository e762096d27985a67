"""A third-party process and translator registered through real entry points.

A tiny distribution (``toy-pixelsum``: a ``*.dist-info`` with ``entry_points.txt`` beside one
module) is put on the path of ``python -m pyscatter`` run as a subprocess. Its step gets a
generic command (``pyscatter pixelsum FILE --set scale=2.5``), runs in a pipeline like a
built-in one, and its results read back with :func:`pyscatter.to_xarray`; the numbers are
compared with the sums of the synthetic frames themselves.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
from conftest import write_scan
from numpy.testing import assert_allclose

import pyscatter

TOY_MODULE = '''
"""A toy plugin: scale * (sum of the unmasked counts of a frame) + offset."""

from __future__ import annotations

import numpy as np

from pyscatter.io.integrity import read_rows
from pyscatter.io.usid import Dim
from pyscatter.processes.base import Output, ScatterProcess
from pyscatter.translators.images import ImageStackTranslator


class PixelSum(ScatterProcess):
    """The scaled total count of every frame (masked pixels, stored as -1, left out)."""

    process_name = "PixelSum"
    factory = "toy_pixelsum:build"

    def __init__(self, h5_main, *, scale: float, offset: float = 0.0, **kwargs) -> None:
        super().__init__(h5_main, {"scale": float(scale), "offset": float(offset)}, **kwargs)

    @classmethod
    def default_source(cls, h5):
        return h5["Measurement_000/Channel_000/Raw_Data"]

    def _outputs(self):
        dim = Dim("total", "index", np.zeros(1))
        return [Output("Total", "Scaled counts", "counts", (dim,), dtype=np.float64)]


def build(spec, h5):
    params = spec.params

    def compute(h5file, start, stop):
        frames = np.asarray(read_rows(h5file[params["source"]], start, stop), dtype=np.float64)
        total = np.where(frames >= 0, frames, 0.0).sum(axis=1)
        return {"Total": (params["scale"] * total + params["offset"])[:, None]}

    return compute


class ToyImages(ImageStackTranslator):
    name = "toyimages"
    description = "images, through a plugin"
    priority = -10
'''


@pytest.fixture(scope="module")
def plugin_path(tmp_path_factory) -> Path:
    """A folder holding the toy module and the dist-info that declares its entry points."""
    root = tmp_path_factory.mktemp("plugin")
    (root / "toy_pixelsum.py").write_text(TOY_MODULE)
    info = root / "toy_pixelsum-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: toy-pixelsum\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(
        "[pyscatter.processes]\npixelsum = toy_pixelsum:PixelSum\n\n"
        "[pyscatter.translators]\ntoyimages = toy_pixelsum:ToyImages\n"
    )
    return root


@pytest.fixture(scope="module")
def scan():
    from pyscatter import datasets

    return datasets.make_scan((2, 3), frame_shape=(64, 72), rng=3)


def pyscatter_cli(plugin_path: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess:
    """``python -m pyscatter ARGS`` with the toy distribution on its path."""
    package_root = Path(pyscatter.__file__).resolve().parents[1]
    paths = [str(plugin_path), str(package_root), os.environ.get("PYTHONPATH", "")]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in paths if p))
    return subprocess.run(
        [sys.executable, "-m", "pyscatter", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def expected_totals(scan, scale: float, offset: float) -> np.ndarray:
    frames = scan.frames.reshape(scan.n_positions, -1).astype(np.float64)
    return scale * np.where(frames >= 0, frames, 0.0).sum(axis=1) + offset


def totals(path: Path, index: int = -1) -> np.ndarray:
    ds = pyscatter.to_xarray(path, "PixelSum", index=index)
    return np.asarray(ds["Total"].values, dtype=np.float64).reshape(-1)


@pytest.fixture()
def installed(plugin_path, monkeypatch) -> Path:
    """The toy distribution on this process's path (its entry points found, its module too)."""
    monkeypatch.syspath_prepend(str(plugin_path))
    return plugin_path


def test_top_help_lists_the_plugin_step_without_importing_it(plugin_path, tmp_path):
    top = pyscatter_cli(plugin_path, tmp_path, "--help")
    assert top.returncode == 0, top.stderr
    line = next(s for s in top.stdout.splitlines() if s.strip().startswith("pixelsum"))
    assert "toy_pixelsum:PixelSum" in line and "toy-pixelsum" in line
    # building the parser of every command imports no process, plugin or heavy library
    code = (
        "import sys; from pyscatter.cli import _parser; _parser(); "
        "print(sorted({m.split('.')[0] for m in sys.modules} & "
        "{'toy_pixelsum', 'pyUSID', 'pyFAI', 'scipy', 'sklearn', 'fabio', 'silx', 'dask'}))"
    )
    package_root = Path(pyscatter.__file__).resolve().parents[1]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(plugin_path), str(package_root)]))
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_plugin_help_lists_its_parameters(installed, capsys):
    from pyscatter.cli import main

    assert main(["pixelsum", "--help"]) == 0
    out = capsys.readouterr().out
    assert "--set KEY=VALUE" in out and "--n-jobs" in out
    assert "scale: float (required)" in out and "offset: float (default 0.0)" in out
    assert "`" not in out


def test_formats_lists_the_plugin_translator(installed, capsys):
    from pyscatter.cli import main
    from pyscatter.translators import get_translator

    assert main(["formats"]) == 0
    line = next(s for s in capsys.readouterr().out.splitlines() if s.startswith("toyimages"))
    assert "images, through a plugin (plugin from toy-pixelsum)" in line
    assert get_translator("toyimages").name == "toyimages"


def test_plugin_command_pipeline_and_to_xarray(plugin_path, tmp_path, scan, monkeypatch):
    path = write_scan(tmp_path / "scan.h5", scan)
    done = pyscatter_cli(
        plugin_path, tmp_path, "pixelsum", "scan.h5", "--set", "scale=2.5", "--set", "offset=1"
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().startswith("scan.h5:/Measurement_000/Channel_000/Raw_Data-PixelSum_")
    assert_allclose(totals(path), expected_totals(scan, 2.5, 1.0), rtol=1e-12)

    # the same parameters in a pipeline: the command's results are reused
    (tmp_path / "same.yaml").write_text(
        "output: scan.h5\nsteps:\n  - pixelsum: {scale: 2.5, offset: 1}\n"
    )
    again = pyscatter_cli(plugin_path, tmp_path, "run", "same.yaml")
    assert again.returncode == 0, again.stderr
    assert "pixelsum: reused" in again.stderr
    with h5py.File(path, "r") as h5:
        groups = [k for k in h5["Measurement_000/Channel_000"] if "PixelSum" in k]
    assert len(groups) == 1

    # other parameters: a new group, the pipeline's numbers
    (tmp_path / "other.yaml").write_text("output: scan.h5\nsteps:\n  - pixelsum: {scale: 0.5}\n")
    other = pyscatter_cli(plugin_path, tmp_path, "run", "other.yaml")
    assert other.returncode == 0, other.stderr
    assert_allclose(totals(path), expected_totals(scan, 0.5, 0.0), rtol=1e-12)
    assert_allclose(totals(path, index=0), expected_totals(scan, 2.5, 1.0), rtol=1e-12)

    # the step name gives the recorded process name (what to_xarray and export look up)
    from pyscatter.processes.registry import available_processes, process_name_of

    monkeypatch.syspath_prepend(str(plugin_path))
    assert available_processes()["pixelsum"].origin == "toy-pixelsum"
    assert process_name_of("pixelsum") == "PixelSum"
    ds = pyscatter.to_xarray(path, process_name_of("pixelsum"))
    assert_allclose(ds["Total"].values.reshape(-1), expected_totals(scan, 0.5, 0.0), rtol=1e-12)


def test_plugin_command_refuses_a_bad_parameter(plugin_path, tmp_path, scan):
    path = write_scan(tmp_path / "scan.h5", scan)
    done = pyscatter_cli(plugin_path, tmp_path, "pixelsum", "scan.h5", "--set", "colour=red")
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith(
        "pyscatter pixelsum: --set: step 'pixelsum' (PixelSum) has no parameter 'colour'; "
        "its parameters are: scale, offset"
    ), done.stderr
    with h5py.File(path, "r") as h5:  # nothing ran
        assert not [k for k in h5["Measurement_000/Channel_000"] if "PixelSum" in k]


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        (["scale=abc"], "scale: expected a number, got 'abc'"),
        (["offset=1"], "missing required parameter(s) scale"),
        (["scale=1", "colour=red", "offset=x"], "no parameter 'colour'"),
        (["scale"], "--set 'scale': expected KEY=VALUE"),
        (["scale=1", "scale=2"], "--set scale: given twice"),
        (["n_jobs=2"], "--set n_jobs: not a parameter of the process; use --n-jobs"),
        (["source=/x"], "--set source: not a parameter of the process; use --source"),
        (["scale=[1"], "--set scale=[1: not a YAML value"),
        (["scale=&a 1"], "anchors and aliases"),
        (["scale=1", "--source=/nope"], "--source: no dataset '/nope' in "),
    ],
)
def test_plugin_command_refuses_bad_settings(installed, tmp_path, scan, settings, message, capsys):
    from pyscatter.cli import main

    path = write_scan(tmp_path / "scan.h5", scan)
    args = [a for s in settings for a in ((s,) if s.startswith("--") else ("--set", s))]
    assert main(["pixelsum", str(path), *args]) == 2
    err = capsys.readouterr().err
    assert message in err and err.startswith("pyscatter pixelsum: "), err
    with h5py.File(path, "r") as h5:  # nothing ran
        assert not [k for k in h5["Measurement_000/Channel_000"] if "PixelSum" in k]


def test_pipeline_refuses_the_same_bad_parameter(installed, tmp_path, scan):
    from pyscatter.errors import InputError
    from pyscatter.pipeline import validate_pipeline

    write_scan(tmp_path / "scan.h5", scan)
    text = "output: scan.h5\nsteps:\n  - pixelsum: {colour: red}\n"
    with pytest.raises(InputError, match=r"pipeline:3: step 'pixelsum' \(PixelSum\) has no "):
        validate_pipeline(text, base_dir=tmp_path)
