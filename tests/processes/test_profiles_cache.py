"""Ring profiles and sectors from the matrix cache without pyFAI (issue 18: a command's start-up).

What AzimuthalProfiles and SectorIntegration take from pyFAI (the stacked matrix, its bin
centres and unit, the per-pixel corrections, the detector's q range, the sectors' default
radial range) is remembered in the matrix cache: a warm ``profiles`` or ``sectors`` command
(or pipeline) imports no pyFAI module and writes the same bits and parameters as a cold run
and as a run with the cache off; the ring-outside-the-detector refusal is the same; another
mask or geometry is another entry, built by pyFAI and equal to pyFAI's.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import h5py
import numpy as np
import pytest

from pyscatter.errors import InputError
from pyscatter.geometry import integrator_from_config
from pyscatter.io import matrix_cache
from pyscatter.kernels.rings import pixel_extent, ring_inputs
from pyscatter.kernels.sectors import sector_from_inputs, sector_inputs
from pyscatter.processes import detector, profiles_worker
from pyscatter.processes.base import run_on_file
from pyscatter.processes.profiles import AzimuthalProfiles
from pyscatter.processes.sectors import SectorIntegration
from pyscatter.processes.sectors_worker import cached_sector_integrator

CHANNEL = "Measurement_000/Channel_000"

_COMMAND = """
import json, sys
from pyscatter.cli import main
code = main(sys.argv[1:])
print(json.dumps({"code": code, "pyFAI": any(m.split(".")[0] == "pyFAI" for m in sys.modules)}))
"""

COMMANDS = {
    "profiles": ["profiles", "--q", "0.3,0.45", "--half-width", "0.05", "--npt-azim", "60"],
    "profiles-azimuthal": [
        "profiles",
        "--q",
        "0.45",
        "--half-width",
        "0.06",
        "--n-radial",
        "3",
        "--error-model",
        "azimuthal",
        "--polarization-factor",
        "0.9",
    ],  # fmt: skip
    "sectors": ["sectors", "--n-sectors", "6", "--npt", "50"],
    "sectors-range": [
        "sectors",
        "--ranges=170:190,-30:30",
        "--npt",
        "40",
        "--radial-range",
        "0.2",
        "0.7",
        "--no-solid-angle",
    ],  # fmt: skip
}
PROCESS = {"profiles": "AzimuthalProfiles", "sectors": "SectorIntegration"}


@pytest.fixture()
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("PYSCATTER_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(matrix_cache, "STATS", dict.fromkeys(matrix_cache.STATS, 0))
    return tmp_path / "cache" / "matrices"


def _run(argv, cache_dir):
    env = dict(os.environ, PYSCATTER_CACHE=str(cache_dir))
    run = subprocess.run(
        [sys.executable, "-c", _COMMAND, "-q", *argv], capture_output=True, text=True, env=env
    )
    assert run.returncode == 0, run.stderr
    return json.loads(run.stdout.splitlines()[-1])


def _results(path, process):
    with h5py.File(path, "r") as h5:
        channel = h5[CHANNEL]
        out = {}
        for name in sorted(k for k in channel if process in k):
            group = channel[name]
            out[name] = (
                group["Intensity"][()],
                group["Intensity_Sigma"][()],
                group.attrs["parameters"],
            )
        return out


def _assert_same(a, b):
    assert a.keys() == b.keys() and a
    for name in a:
        np.testing.assert_array_equal(a[name][0], b[name][0])  # NaN where NaN
        np.testing.assert_array_equal(a[name][1], b[name][1])
        assert a[name][2] == b[name][2]  # the recorded parameters, byte for byte


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_a_warm_command_imports_no_pyfai_and_writes_the_same_bits(tmp_path, scan_file, command):
    argv = COMMANDS[command]
    process = PROCESS[argv[0]]
    cache_dir = tmp_path / "cache"
    warm, off = tmp_path / "warm.h5", tmp_path / "off.h5"
    shutil.copyfile(scan_file, warm)
    shutil.copyfile(scan_file, off)
    assert _run([argv[0], str(scan_file), *argv[1:]], cache_dir)["pyFAI"] is True  # cold
    assert _run([argv[0], str(warm), *argv[1:]], cache_dir)["pyFAI"] is False
    assert _run([argv[0], str(off), *argv[1:]], "off")["pyFAI"] is True  # as before
    cold = _results(scan_file, process)
    _assert_same(cold, _results(warm, process))
    _assert_same(cold, _results(off, process))


def test_a_warm_pipeline_imports_no_pyfai_and_writes_the_same_bits(tmp_path, scan_file):
    cache_dir = tmp_path / "cache"
    outputs = []
    for name, cache in (("cold", cache_dir), ("warm", cache_dir), ("off", "off")):
        path = tmp_path / f"{name}.h5"
        shutil.copyfile(scan_file, path)
        yaml = tmp_path / f"{name}.yaml"
        yaml.write_text(
            f"output: {path.name}\n"
            "execution: {progress: false}\n"
            "steps:\n"
            "  - profiles: {q: [0.45], half_width: 0.06, npt_azim: 90}\n"
            "  - sectors: {n_sectors: 4, npt: 60}\n",
            encoding="utf-8",
        )
        got = _run(["run", str(yaml)], cache)
        assert got["code"] == 0
        assert got["pyFAI"] is (name != "warm")
        outputs.append(path)
    for process in PROCESS.values():
        cold = _results(outputs[0], process)
        _assert_same(cold, _results(outputs[1], process))
        _assert_same(cold, _results(outputs[2], process))


def _no_pyfai(monkeypatch):
    """Make building a pyFAI integrator fail (what a warm run must not do)."""

    def refuse(*args, **kwargs):
        raise AssertionError("a pyFAI integrator was built")

    monkeypatch.setattr(detector, "integrator_from_config", refuse)
    monkeypatch.setattr(profiles_worker, "integrator_from_config", refuse)


def test_the_ring_outside_the_detector_is_refused_the_same_with_a_warm_cache(
    scan_file, small_scan, cache, monkeypatch
):
    ai = small_scan.integrator()
    q = ai.array_from_unit(shape=small_scan.frame_shape, typ="center", unit="q_nm^-1", scale=True)
    lo, hi = q[~small_scan.mask].min(), q[~small_scan.mask].max()
    messages = []
    for _ in range(2):
        with pytest.raises(InputError) as info:
            run_on_file(scan_file, AzimuthalProfiles, q=50.0, half_width=0.1, progress=False)
        messages.append(str(info.value))
        _no_pyfai(monkeypatch)  # the second time: from the cache alone
    assert messages[0] == messages[1]
    assert "q = 50 " in messages[0] and f"{lo:.6g} to {hi:.6g} 1/nm" in messages[0]
    with pytest.raises(InputError, match=r"q = 0\.001 .*outside"):  # inside the beamstop
        run_on_file(scan_file, AzimuthalProfiles, q_range=[(0.0005, 0.0015)], progress=False)
    with h5py.File(scan_file, "r") as h5:  # nothing was written
        assert not [k for k in h5[CHANNEL] if "Profiles" in k]


def test_a_mask_leaving_no_pixel_is_refused_every_time(scan_file, small_scan, cache, monkeypatch):
    built = []
    real = detector.integrator_from_config

    def counting(*args, **kwargs):
        built.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(detector, "integrator_from_config", counting)
    everything = np.ones(small_scan.frame_shape, dtype=np.uint8)
    for n in (1, 2):
        with pytest.raises(InputError, match="the mask leaves no detector pixel"):
            run_on_file(scan_file, AzimuthalProfiles, q=0.45, half_width=0.05, mask=everything)
        assert len(built) == n  # pyFAI asked again: the refusal is not remembered


def _recorded(path, process, **kwargs):
    """(parameters, combined mask) of a run of ``process`` on ``path``."""
    group = run_on_file(path, process, progress=False, **kwargs)
    with h5py.File(path, "r") as h5:
        params = json.loads(h5[group.group].attrs["parameters"])
        mask = h5[params["mask_file_dataset"]][()] != 0
    return params, mask


def _assert_inputs_equal(got, want):
    assert got.keys() == want.keys()
    for name in want:
        np.testing.assert_array_equal(got[name], want[name])
        assert got[name].dtype == want[name].dtype, name


def _other_geometry(params):
    config = json.loads(params["geometry"])
    config["dist"] = config["dist"] * 1.05
    return dict(params, geometry=json.dumps(config, sort_keys=True))


def test_another_mask_or_geometry_is_another_entry_equal_to_pyfai(scan_file, cache):
    params, mask = _recorded(scan_file, AzimuthalProfiles, q=0.45, half_width=0.05, n_radial=4)
    shape = tuple(params["frame_shape"])

    def refuse():
        raise AssertionError("a pyFAI integrator was built")

    hits = matrix_cache.STATS["hits"]
    cached = profiles_worker.cached_ring_inputs(None, params, mask)  # the run's own entries
    extent = profiles_worker.detector_extent(params, mask, refuse)
    assert matrix_cache.STATS["hits"] == hits + 2
    ai = integrator_from_config(params["geometry"])
    _assert_inputs_equal(cached, ring_inputs(ai, params, mask))
    assert extent == pixel_extent(ai, shape, params["unit"], mask)
    other_mask = mask.copy()
    other_mask[40:60, 50:90] = True
    for p, m in ((params, other_mask), (_other_geometry(params), mask)):
        ai = integrator_from_config(p["geometry"])
        misses = matrix_cache.STATS["misses"]
        _assert_inputs_equal(profiles_worker.cached_ring_inputs(None, p, m), ring_inputs(ai, p, m))
        assert matrix_cache.STATS["misses"] > misses
        built = []
        extent = profiles_worker.detector_extent(
            p, m, lambda ai=ai, built=built: built.append(1) or ai
        )
        assert built == [1]  # not the entry of the other mask or geometry
        assert extent == pixel_extent(ai, shape, p["unit"], m)


def test_sectors_another_mask_or_geometry_is_another_entry_equal_to_pyfai(scan_file, cache):
    params, mask = _recorded(scan_file, SectorIntegration, n_sectors=4, npt=50)
    ai = integrator_from_config(params["geometry"])
    frame = np.arange(np.prod(params["frame_shape"]), dtype=np.float32).reshape(
        1, *params["frame_shape"]
    )
    other_mask = mask.copy()
    other_mask[:, :30] = True
    for p, m in ((params, mask), (params, other_mask), (_other_geometry(params), mask)):
        want_ai = ai if p is params else integrator_from_config(p["geometry"])
        cached = cached_sector_integrator(None, p, m).integrate(frame)
        direct = sector_from_inputs(sector_inputs(want_ai, p, m), p, m).integrate(frame)
        np.testing.assert_array_equal(cached.intensity, direct.intensity)
        np.testing.assert_array_equal(cached.sigma, direct.sigma)
        np.testing.assert_array_equal(cached.radial, direct.radial)


def test_a_corrupt_entry_is_rebuilt_and_gives_the_same_bits(tmp_path, scan_file, cache):
    second = tmp_path / "second.h5"
    shutil.copyfile(scan_file, second)
    kwargs = dict(q=0.45, half_width=0.05, npt_azim=60, progress=False)
    run_on_file(scan_file, AzimuthalProfiles, **kwargs)
    for entry in cache.glob("*.npz"):  # every entry: truncated
        entry.write_bytes(entry.read_bytes()[:100])
    run_on_file(second, AzimuthalProfiles, **kwargs)
    assert matrix_cache.STATS["rejected"] > 0
    _assert_same(_results(scan_file, "AzimuthalProfiles"), _results(second, "AzimuthalProfiles"))


def test_the_chi_correlation_of_recorded_profiles_comes_from_the_cache(
    scan_file, cache, monkeypatch
):
    from pyscatter.kernels.rings import chi_correlation, ring_matrix

    params, mask = _recorded(scan_file, AzimuthalProfiles, q=0.45, half_width=0.05, n_radial=3)
    matrix, sub_radial, chi, _ = ring_matrix(
        integrator_from_config(params["geometry"]), params, mask
    )
    want = chi_correlation(matrix, 1, sub_radial.shape[1], chi.size)
    _no_pyfai(monkeypatch)
    with h5py.File(scan_file, "r") as h5:
        channel = h5[CHANNEL]
        name = next(k for k in channel if "AzimuthalProfiles" in k)
        got = profiles_worker.profile_correlation(channel[name]["Intensity"])
    assert len(got) == len(want) == 1
    assert (got[0] != want[0]).nnz == 0
