"""pyFAI's answers for a detector set-up, remembered (issue 18: a command's start-up).

With the method, the geometry and the matrix cached, ``pyscatter integrate`` runs without
importing pyFAI and writes the same bits as with pyFAI; what is not remembered (a fallback, an
OpenCL method, a refused geometry) is asked of pyFAI every time, with the same message; the
cache off means pyFAI every time. Also the start-up shortcuts beside it: the frame shape read
from the last index column, the command line's parser built for the asked command only.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys

import h5py
import numpy as np
import pytest

from pyscatter.errors import InputError
from pyscatter.io import matrix_cache
from pyscatter.processes import setup_cache
from pyscatter.processes.detector import DetectorSetup, frame_shape, resolve_method


@pytest.fixture()
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("PYSCATTER_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(matrix_cache, "STATS", dict.fromkeys(matrix_cache.STATS, 0))
    return tmp_path / "cache" / "matrices"


_COMMAND = """
import json, sys
from pyscatter.cli import main
code = main(sys.argv[1:])
top = {m.split(".")[0] for m in sys.modules}
print(json.dumps({"code": code, **{name: name in top for name in ("pyFAI", "fabio", "tqdm")}}))
"""


def _integrate(path, cache_dir, *extra):
    env = dict(os.environ, PYSCATTER_CACHE=str(cache_dir))
    argv = ["-q", "integrate", str(path), "--npt", "90", "--error-model", "poisson", *extra]
    run = subprocess.run(
        [sys.executable, "-c", _COMMAND, *argv], capture_output=True, text=True, env=env
    )
    assert run.returncode == 0, run.stderr
    return json.loads(run.stdout.splitlines()[-1])


def _result(path):
    with h5py.File(path, "r") as h5:
        channel = h5["Measurement_000/Channel_000"]
        group = channel[sorted(k for k in channel if "AzimuthalIntegration" in k)[-1]]
        return (
            group["Intensity"][()],
            group["Intensity_Sigma"][()],
            group.attrs["parameters"],
        )


def test_a_command_with_everything_cached_runs_without_pyfai_and_gives_the_same_bits(
    tmp_path, scan_file
):
    import fabio

    cache_dir = tmp_path / "cache"
    second = tmp_path / "second.h5"
    shutil.copyfile(scan_file, second)
    off = tmp_path / "off.h5"
    shutil.copyfile(scan_file, off)
    with h5py.File(scan_file, "r") as h5:
        shape = frame_shape(h5["Measurement_000/Channel_000/Raw_Data"])
    mask = np.zeros(shape, dtype=np.int8)
    mask[::7, 3] = 1
    mask_file = tmp_path / "mask.edf"
    fabio.edfimage.EdfImage(data=mask).write(str(mask_file))
    flags = ("--mask", str(mask_file), "--no-progress")
    cold = _integrate(scan_file, cache_dir, *flags)
    assert cold["pyFAI"] and cold["fabio"]  # cold: pyFAI builds, fabio reads the mask: stored
    kinds = sorted(p.name for p in (cache_dir / "matrices").glob("*.npz"))
    assert (
        len(kinds) == 6
    )  # method, geometry, the inputs, the matrix, the prepared integrator, mask
    warm = _integrate(second, cache_dir, *flags)
    assert warm == {"code": 0, "pyFAI": False, "fabio": False, "tqdm": False}  # nothing asked
    assert _integrate(off, "off", *flags)["pyFAI"] is True  # no cache: pyFAI as before
    cold, warm, plain = _result(scan_file), _result(second), _result(off)
    for a, b in ((cold, warm), (cold, plain)):
        np.testing.assert_array_equal(a[0], b[0])
        np.testing.assert_array_equal(a[1], b[1])
        assert a[2] == b[2]  # the recorded parameters, byte for byte


def test_a_range_check_still_asks_pyfai_and_refuses_as_before(tmp_path, scan_file, cache):
    with h5py.File(scan_file, "r") as h5:
        source = h5["Measurement_000/Channel_000/Raw_Data"]
        first = DetectorSetup.from_options(source, dim=1)
        again = DetectorSetup.from_options(source, dim=1)
    assert first.built_integrator is not None  # cold: pyFAI read the geometry
    assert again.built_integrator is None  # warm: not built ...
    assert json.dumps(again.geometry, sort_keys=True) == json.dumps(first.geometry, sort_keys=True)
    np.testing.assert_array_equal(again.detector_mask, first.detector_mask)
    assert again.integrator.get_config() == first.integrator.get_config()  # ... until used
    from pyscatter.processes.base import run_on_file
    from pyscatter.processes.integration import AzimuthalIntegration

    with pytest.raises(InputError, match="misses the detector"):
        run_on_file(scan_file, AzimuthalIntegration, npt=50, radial_range=(500, 600))


def test_only_what_pyfai_answers_the_same_everywhere_is_remembered(cache, caplog):
    assert resolve_method("bbox,csr,cython", dim=1) == ["bbox", "csr", "cython"]
    assert resolve_method(" BBOX, csr ,Cython", dim=1) == ["bbox", "csr", "cython"]
    hits = matrix_cache.STATS["hits"]
    assert resolve_method("bbox,csr,cython", dim=1) == ["bbox", "csr", "cython"]
    assert matrix_cache.STATS["hits"] == hits + 1
    stored = len(list(cache.glob("*.npz")))
    for _ in range(2):  # a fallback warns every time: never remembered
        with caplog.at_level(logging.WARNING):
            caplog.clear()
            got = resolve_method("bbox,csr,python", dim=1, allow_fallback=True)
        assert got == ["bbox", "csr", "cython"]
        assert "runs bbox,csr,cython" in caplog.text
    for _ in range(2):  # a refusal says the same every time
        with pytest.raises(InputError, match="the batched engine needs the csr algorithm"):
            resolve_method("bbox,histogram,cython", dim=1)
        with pytest.raises(InputError, match="expected split,algorithm,implementation"):
            resolve_method("bbox", dim=1)
    assert len(list(cache.glob("*.npz"))) == stored


def test_a_geometry_pyfai_refuses_is_never_stored(tmp_path, cache):
    poni = tmp_path / "bad.poni"
    poni.write_text("Detector: Pilatus1M\nDistance: nan\nPoni1: 0.1\nPoni2: 0.1\n")

    def build():
        import pyFAI

        from pyscatter.geometry import check_geometry

        ai = pyFAI.load(str(poni))
        return ai, check_geometry(ai, where=str(poni))

    for _ in range(2):
        with pytest.raises(InputError, match="dist = nan"):
            setup_cache.geometry(poni, None, build)
    assert not list(cache.glob("*.npz"))
    good = tmp_path / "good.poni"
    good.write_text("Detector: Pilatus1M\nDistance: 0.5\nPoni1: 0.1\nPoni2: 0.1\n")
    import pyFAI

    def build_good():
        ai = pyFAI.load(str(good))
        return ai, ai.get_config()

    ai, config, mask = setup_cache.geometry(good, None, build_good)
    assert ai is not None
    cached_ai, cached, cached_mask = setup_cache.geometry(good, None, build_good)
    assert cached_ai is None and cached == config
    np.testing.assert_array_equal(cached_mask, mask)  # Pilatus module gaps
    good.write_text("Detector: Pilatus1M\nDistance: 0.6\nPoni1: 0.1\nPoni2: 0.1\n")
    moved_ai, moved, _ = setup_cache.geometry(good, None, build_good)  # new bytes: pyFAI
    assert moved_ai is not None and moved["dist"] == pytest.approx(0.6)


def test_frame_shape_from_the_last_index_column_equals_the_full_read(tmp_path, scan_file):
    with h5py.File(scan_file, "r") as h5:
        source = h5["Measurement_000/Channel_000/Raw_Data"]
        spec = h5[source.attrs["Spectroscopic_Indices"]][()]
        assert frame_shape(source) == (int(spec[0].max()) + 1, int(spec[1].max()) + 1)
    odd = tmp_path / "odd.h5"  # indices not in C order: the full read decides
    shutil.copyfile(scan_file, odd)
    with h5py.File(odd, "r+") as h5:
        source = h5["Measurement_000/Channel_000/Raw_Data"]
        spec = h5[source.attrs["Spectroscopic_Indices"]]
        values = spec[()]
        spec[...] = values[:, ::-1]
        assert frame_shape(source) == (int(values[0].max()) + 1, int(values[1].max()) + 1)


def test_the_command_line_builds_the_parser_of_the_asked_command_only():
    from pyscatter.cli import _parser

    def commands(parser):
        import argparse

        sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        return set(sub.choices)

    everything = commands(_parser())
    assert {"translate", "integrate", "profiles", "fit", "order"} <= everything
    assert commands(_parser(["-q", "integrate", "x.h5"])) == {"integrate"}
    assert commands(_parser(["--debug", "nosuch"])) == everything  # unknown: all, for the error
    assert commands(_parser(["--help"])) == everything


def test_an_image_file_is_remembered_by_its_bytes(tmp_path, cache):
    """The mask of a command line: fabio's pixels, read again when the file changes."""
    import fabio

    from pyscatter.cli.options import read_image
    from pyscatter.errors import FileFormatError

    path = tmp_path / "mask.edf"
    first = np.arange(12, dtype=np.uint16).reshape(3, 4)
    fabio.edfimage.EdfImage(data=first).write(str(path))
    got = read_image(str(path), "mask")
    assert got.dtype == fabio.open(str(path)).data.dtype
    np.testing.assert_array_equal(got, fabio.open(str(path)).data)
    assert matrix_cache.STATS["stores"] == 1
    again = read_image(str(path), "mask")  # from the cache, the same pixels and dtype
    assert matrix_cache.STATS["hits"] == 1 and again.dtype == got.dtype
    np.testing.assert_array_equal(again, got)
    fabio.edfimage.EdfImage(data=first[::-1].copy()).write(str(path))  # same name, new bytes
    np.testing.assert_array_equal(read_image(str(path), "mask"), first[::-1])
    bad = tmp_path / "bad.edf"
    bad.write_bytes(b"not an image")
    stores = matrix_cache.STATS["stores"]
    for _ in range(2):  # refused as before, every time; nothing stored
        with pytest.raises(FileFormatError, match=r"mask .*bad\.edf: not an image fabio reads"):
            read_image(str(bad), "mask")
    assert matrix_cache.STATS["stores"] == stores


def test_built_in_commands_and_formats_do_not_scan_the_entry_points(monkeypatch):
    """A plugin cannot take a built-in's name, so a built-in needs no entry-point scan."""
    import importlib.metadata

    from pyscatter.cli import _parser
    from pyscatter.processes.registry import process_name_of
    from pyscatter.translators.base import get_translator

    scans = []
    real = importlib.metadata.entry_points

    def counted(*args, **kwargs):
        scans.append(kwargs.get("group"))
        return real(*args, **kwargs)

    monkeypatch.setattr(importlib.metadata, "entry_points", counted)
    _parser(["-q", "integrate", "x.h5"])
    _parser(["order", "x.h5"])
    assert type(get_translator("nexus")).__name__ == "NexusTranslator"
    assert process_name_of("ProfileFit") == "ProfileFit"
    assert scans == []
    _parser(["--help"])  # every command: the plugins' too
    assert scans == ["pyscatter.processes"]
