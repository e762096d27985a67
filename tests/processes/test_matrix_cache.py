"""The matrix cache (issue 18): pyFAI's CSR matrices stored by geometry, mask and options.

A loaded matrix gives the bits of a freshly built one (integrate 1-D and 2-D with sigma,
profiles, sectors) and pyFAI's results; the second build is a hit (pyFAI's engine is not
built again, counted by wrapping the builder); a change of mask, geometry or bins misses;
corrupt and partial files are ignored and rebuilt; two processes writing the same key leave a
whole file; a worker loading a cached integrator never imports pyFAI.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import subprocess
import sys

import h5py
import numpy as np
import pytest

from pyscatter.io import matrix_cache
from pyscatter.kernels import csr as kernel
from pyscatter.kernels.integrate import BatchIntegrator
from pyscatter.processes.base import run_on_file
from pyscatter.processes.integration import AzimuthalIntegration
from pyscatter.processes.profiles import AzimuthalProfiles
from pyscatter.processes.sectors import SectorIntegration


@pytest.fixture()
def cache(tmp_path, monkeypatch):
    """A cache directory of this test alone; the pyFAI builds are counted in ``builds``."""
    monkeypatch.setenv("PYSCATTER_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("PYSCATTER_CACHE_MAX_MB", raising=False)
    monkeypatch.setattr(matrix_cache, "STATS", dict.fromkeys(matrix_cache.STATS, 0))
    builds: list[tuple] = []
    real = kernel._build_csr

    def counting(ai, shape, npt, npt_azim, geometry):
        builds.append((npt, npt_azim, geometry.get("radial_range")))
        return real(ai, shape, npt, npt_azim, geometry)

    monkeypatch.setattr(kernel, "_build_csr", counting)
    return tmp_path / "cache" / "matrices", builds


def _entries(folder):
    return sorted(p.name for p in folder.glob("*.npz")) if folder.is_dir() else []


def _frames(scan):
    return scan.frames.reshape(-1, *scan.frame_shape)


def _kernel_results(scan, **options):
    bi = BatchIntegrator.from_pyfai(scan.integrator(), scan.frame_shape, mask=scan.mask, **options)
    return bi.integrate(_frames(scan))


@pytest.mark.parametrize(
    "options",
    [
        dict(npt=80, error_model="poisson"),
        dict(npt=60, npt_azim=36, error_model="poisson", polarization_factor=0.99),
        dict(npt=50, error_model="azimuthal", method=("no", "csr", "cython")),
    ],
)
def test_loaded_matrix_gives_the_bits_of_a_fresh_one_and_pyfai(cache, small_scan, options):
    folder, builds = cache
    first = _kernel_results(small_scan, **options)
    assert len(builds) == 1 and len(_entries(folder)) == 1  # built by pyFAI and stored
    second = _kernel_results(small_scan, **options)
    assert len(builds) == 1  # loaded: pyFAI did not build its engine again
    for name in ("radial", "intensity", "sigma"):
        np.testing.assert_array_equal(getattr(second, name), getattr(first, name))
    if options.get("npt_azim"):
        np.testing.assert_array_equal(second.azimuthal, first.azimuthal)
    # and pyFAI called directly agrees (float32 sums against pyFAI's float64)
    ai = small_scan.integrator()
    frame = _frames(small_scan)[0]
    method = options.get("method", ("bbox", "csr", "cython"))
    pyfai_options = dict(
        unit="q_nm^-1",
        method=method,
        mask=small_scan.mask,
        error_model=options["error_model"],
        polarization_factor=options.get("polarization_factor"),
    )
    if options.get("npt_azim"):
        ref = ai.integrate2d_ng(frame, options["npt"], options["npt_azim"], **pyfai_options)
    else:
        ref = ai.integrate1d_ng(frame, options["npt"], **pyfai_options)
    np.testing.assert_array_equal(second.radial, ref.radial)
    good = ref.sigma > 0
    np.testing.assert_allclose(second.intensity[0][good], ref.intensity[good], rtol=1e-5)
    np.testing.assert_allclose(second.sigma[0][good], ref.sigma[good], rtol=1e-5)


def test_a_change_of_mask_geometry_or_bins_misses(cache, small_scan):
    folder, builds = cache
    _kernel_results(small_scan, npt=40)
    mask = small_scan.mask.copy()
    mask[0, 0] = not mask[0, 0]
    ai = small_scan.integrator()
    BatchIntegrator.from_pyfai(ai, small_scan.frame_shape, npt=40, mask=mask)
    moved = small_scan.integrator()
    moved.dist = moved.dist * 1.001
    BatchIntegrator.from_pyfai(moved, small_scan.frame_shape, npt=40, mask=small_scan.mask)
    _kernel_results(small_scan, npt=41)
    _kernel_results(small_scan, npt=40, unit="2th_deg")
    _kernel_results(small_scan, npt=40, radial_range=(0.2, 1.0))
    assert len(builds) == 6 and len(_entries(folder)) == 6
    _kernel_results(small_scan, npt=40)  # the first one again: a hit
    assert len(builds) == 6


def _results(path, group):
    with h5py.File(path, "r") as h5:
        return {k: h5[group][k][()].tobytes() for k in h5[group] if k.startswith("Intensity")}


PROCESSES = [
    (AzimuthalIntegration, dict(npt=70, error_model="poisson")),
    (AzimuthalIntegration, dict(npt=50, npt_azim=24, error_model="poisson")),
    (
        AzimuthalProfiles,
        dict(q=[0.45, 0.8], half_width=[0.06, 0.05], npt_azim=36, n_radial=3),
    ),
    (SectorIntegration, dict(n_sectors=6, width_deg=30, npt=40, error_model="poisson")),
]


@pytest.mark.parametrize(("process", "options"), PROCESSES)
def test_processes_give_the_same_bits_built_or_loaded(
    cache, tmp_path, small_scan, monkeypatch, process, options
):
    from conftest import write_scan

    folder, builds = cache
    monkeypatch.setenv("PYSCATTER_CACHE", "off")  # before the scan: its ancillaries cache too
    path = write_scan(tmp_path / "scan.h5", small_scan)
    kwargs = dict(options, progress=False, override=True)
    fresh = _results(path, run_on_file(path, process, **kwargs).group)
    n_fresh = len(builds)
    assert n_fresh >= 1 and not _entries(folder)  # disabled: nothing stored
    monkeypatch.setenv("PYSCATTER_CACHE", str(folder.parent))
    stored = _results(path, run_on_file(path, process, **kwargs).group)
    assert len(builds) == 2 * n_fresh and _entries(folder)
    loaded = _results(path, run_on_file(path, process, **kwargs).group)
    assert len(builds) == 2 * n_fresh  # the third run asked pyFAI for nothing
    assert stored == fresh and loaded == fresh


def test_corrupt_or_partial_files_are_ignored_and_rebuilt(cache, small_scan):
    folder, builds = cache
    reference = _kernel_results(small_scan, npt=40, error_model="poisson")
    (entry,) = folder.glob("*.npz")
    whole = entry.read_bytes()
    damaged = {
        "partial": whole[: len(whole) // 2],
        "garbage": b"not a zip file at all",
        "flipped": whole[:200] + bytes([whole[200] ^ 0xFF]) + whole[201:],
        "empty": b"",
    }
    for n, (what, content) in enumerate(damaged.items(), start=2):
        entry.write_bytes(content)
        again = _kernel_results(small_scan, npt=40, error_model="poisson")
        assert len(builds) == n, what  # ignored: pyFAI built it again
        np.testing.assert_array_equal(again.intensity, reference.intensity)
        np.testing.assert_array_equal(again.sigma, reference.sigma)
        assert entry.read_bytes() != content  # and stored again, whole
        assert matrix_cache.load(entry.stem) is not None


def test_an_entry_of_another_key_or_with_bad_arrays_is_rejected(cache):
    folder, _ = cache
    n_pix = 12
    good = {
        "data": np.ones(3, np.float32),
        "indices": np.array([0, 5, 11], np.int32),
        "indptr": np.array([0, 1, 3], np.int32),
    }
    key_a, key_b = matrix_cache.key("test", n=1), matrix_cache.key("test", n=2)
    matrix_cache.store(key_a, good)
    (folder / f"{key_a}.npz").rename(folder / f"{key_b}.npz")  # holds key_a's key inside
    assert matrix_cache.load(key_b) is None and not (folder / f"{key_b}.npz").exists()
    bad = dict(good, indices=np.array([0, 5, 12], np.int32))  # a column outside the frame
    matrix_cache.store(key_a, bad)
    assert matrix_cache.load(key_a, matrix_cache.csr_check(n_pix)) is None
    matrix_cache.store(key_a, good)
    loaded = matrix_cache.load(key_a, matrix_cache.csr_check(n_pix))
    assert loaded is not None and all(np.array_equal(loaded[k], good[k]) for k in good)


def _write_many(directory: str, key: str, n: int) -> None:
    os.environ["PYSCATTER_CACHE"] = directory
    arrays = {"data": np.arange(2_000_000, dtype=np.float32)}
    for _ in range(n):
        assert matrix_cache.store(key, arrays) is not None


def test_concurrent_writers_of_one_key_leave_a_whole_file(cache):
    folder, _ = cache
    key = matrix_cache.key("concurrent", n=1)
    ctx = multiprocessing.get_context("spawn")
    writers = [ctx.Process(target=_write_many, args=(str(folder.parent), key, 5)) for _ in range(2)]
    for proc in writers:
        proc.start()
    seen = 0
    while any(proc.is_alive() for proc in writers):  # read while they write
        arrays = matrix_cache.load(key)
        if arrays is not None:
            np.testing.assert_array_equal(arrays["data"], np.arange(2_000_000, dtype=np.float32))
            seen += 1
    for proc in writers:
        proc.join()
        assert proc.exitcode == 0
    assert matrix_cache.STATS["rejected"] == 0  # no reader ever saw a partial file
    assert _entries(folder) == [f"{key}.npz"] and not list(folder.glob("*.tmp"))
    np.testing.assert_array_equal(
        matrix_cache.load(key)["data"], np.arange(2_000_000, dtype=np.float32)
    )


def test_size_limit_removes_the_least_recently_used(cache, monkeypatch):
    import time

    folder, _ = cache
    arrays = {"data": np.zeros(2**18, np.float32)}  # 1 MiB
    keys = [matrix_cache.key("lru", n=i) for i in range(3)]
    for i, key in enumerate(keys):
        matrix_cache.store(key, arrays)
        os.utime(folder / f"{key}.npz", (time.time() - 100 + i, time.time() - 100 + i))
    matrix_cache.load(keys[0])  # used: now the most recent
    monkeypatch.setenv("PYSCATTER_CACHE_MAX_MB", "2.5")
    matrix_cache.store(matrix_cache.key("lru", n=3), arrays)
    left = _entries(folder)
    assert f"{keys[0]}.npz" in left and f"{keys[1]}.npz" not in left and len(left) == 2


def test_disabled_and_default_directories(monkeypatch, tmp_path):
    for off in ("off", "0", "none", ""):
        monkeypatch.setenv("PYSCATTER_CACHE", off)
        assert matrix_cache.directory() is None
        assert matrix_cache.store("k", {"a": np.zeros(1)}) is None
        assert matrix_cache.load("k") is None
    monkeypatch.delenv("PYSCATTER_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert matrix_cache.directory() == tmp_path / "pyscatter" / "matrices"


_WORKER = """
import json, sys
import h5py
from pyscatter.io import matrix_cache
from pyscatter.processes.execution import TaskSpec, build
spec = TaskSpec("pyscatter.processes.integration_worker:build", sys.argv[1], sys.argv[2])
func = build(spec, h5py.File(sys.argv[1], "r"))
out = func(h5py.File(sys.argv[1], "r"), 0, 2)
print(json.dumps({"pyFAI": "pyFAI" in sys.modules, "stats": matrix_cache.STATS,
                  "intensity": out["Intensity"].tolist()}))
"""


def test_a_worker_loads_the_integrator_without_pyfai(cache, tmp_path, small_scan):
    from conftest import write_scan

    folder, _ = cache
    path = write_scan(tmp_path / "scan.h5", small_scan)
    summary = run_on_file(path, AzimuthalIntegration, npt=70, error_model="poisson", progress=False)
    with h5py.File(path, "r") as h5:
        process = AzimuthalIntegration(
            AzimuthalIntegration.default_source(h5), npt=70, error_model="poisson"
        )
        spec = process.task_spec()
    env = dict(os.environ, PYSCATTER_CACHE=str(folder.parent))
    run = subprocess.run(
        [sys.executable, "-c", _WORKER, str(path), spec.parameters],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    report = json.loads(run.stdout.splitlines()[-1])
    assert report["pyFAI"] is False  # neither pyFAI nor its engine: loaded
    assert report["stats"] == dict(report["stats"], hits=1, misses=0)  # one entry: prepared
    with h5py.File(path, "r") as h5:
        written = h5[summary.group]["Intensity"][0:2]
    np.testing.assert_array_equal(np.asarray(report["intensity"], np.float32), written)
