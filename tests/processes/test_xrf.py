"""XrfRoi and XrfLinearFit on a translated SPEC file of :mod:`pyscatter.datasets_xrf`: element
maps against the generator's truth, the dead time and monitor applied exactly, reuse,
bit-identical resume after a kill, parallel = serial, bad input."""

from __future__ import annotations

import json
import shutil

import h5py
import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from pyscatter import to_xarray
from pyscatter.datasets_xrf import write_spec_mesh, xrf_map
from pyscatter.errors import InputError
from pyscatter.kernels.xrf import fast_linear_fit
from pyscatter.kernels.xrf_lines import design_matrix
from pyscatter.kernels.xrf_roi import RoiWindow, roi_plan
from pyscatter.processes.base import run_on_file
from pyscatter.processes.xrf import XrfLinearFit, XrfRoi
from pyscatter.translators import translate

SHAPE = (6, 8)
FIT = {"snip_width": 30}  # smooth_width "auto": the default is what meets the truth


@pytest.fixture(scope="module")
def xrf():
    return xrf_map(SHAPE, seed=3)


@pytest.fixture(scope="module")
def translated(tmp_path_factory, xrf):
    folder = tmp_path_factory.mktemp("xrf")
    spec = write_spec_mesh(folder / "x.spec", xrf)
    return translate(spec, folder / "x.h5", format="spec", scan=1, monitor="I0",
                     dead_time_column="dt_percent")  # fmt: skip


@pytest.fixture()
def path(tmp_path, translated):
    return shutil.copy(translated, tmp_path / "x.h5")


def run(path, process, xrf, **params):
    params.setdefault("progress", False)
    params.setdefault("elements", xrf.names)
    params.setdefault("excitation", 17.0)
    return run_on_file(path, process, **params)


def maps(path, process, var, index=-1):
    """(positions, lines) of a results variable, positions in file order."""
    return to_xarray(path, process, index=index)[var].values.reshape(SHAPE[0] * SHAPE[1], -1)


def truth(xrf):
    return np.stack([xrf.truth[n].ravel() for n in xrf.names], axis=1)


def within(got, want, sigma):
    """Per line group the map's mean within 2 % of the truth's; per pixel within 2 % or 2σ
    (at least 90 % of the pixels: 95 % for Gaussian errors) and none beyond 2 % or 4σ."""
    assert np.abs(got.mean(axis=0) / want.mean(axis=0) - 1).max() < 0.02
    close = np.abs(got - want) <= np.maximum(0.02 * want, 2 * sigma)
    assert close.mean() >= 0.9, close.mean(axis=0)
    assert (np.abs(got - want) <= np.maximum(0.02 * want, 4 * sigma)).all()


def test_fit_areas_meet_the_truth_after_dead_time(path, xrf):
    summary = run(path, XrfLinearFit, xrf, max_mem_mb=1.0, **FIT)  # several blocks
    area, sigma = maps(path, "xrf-fit", "area"), maps(path, "xrf-fit", "area_sigma")
    t = truth(xrf)
    within(area, t, sigma)
    # the kernel on the raw spectra, times the generator's dead-time factor
    n = SHAPE[0] * SHAPE[1]
    with h5py.File(path, "r") as h5:
        smooth = json.loads(h5[summary.group].attrs["parameters"])["smooth_width"]
    # "auto": the FWHM at the middle of the fit range (1-20.47 keV), 10 eV channels, made odd
    fwhm = xrf.response.fwhm_keV(0.5 * (1.0 + xrf.energy_keV[-1]))
    assert smooth == 2 * round(0.5 * fwhm / 0.01) + 1
    ref = fast_linear_fit(xrf.spectra.reshape(n, -1), xrf.energy_keV, xrf.groups, xrf.response,
                          fit_range_keV=(1.0, xrf.energy_keV[-1]), smooth_width=smooth,
                          **FIT)  # fmt: skip
    f = xrf.dead_time_factor().ravel()[:, None]
    assert_allclose(area, ref.areas * f, rtol=1e-10)
    assert_allclose(sigma, ref.sigma * f, rtol=1e-10)
    chi2 = to_xarray(path, "XrfFit")["chi2_reduced"].values.ravel()
    assert_allclose(chi2, ref.chi2_reduced, rtol=1e-10)
    with h5py.File(path) as h5:
        group = h5[summary.group]
        params = json.loads(group.attrs["parameters"])
        assert params["dead_time"]["kind"] == "percent"
        assert params["dead_time"]["datasets"]["percent"].endswith("Counters/dt_percent")
        assert json.loads(group.attrs["lines"]) == xrf.names
        assert group["area"].attrs["units"] == "counts"
        assert "fit_background" not in group  # not stored by default


def test_roi_net_counts_are_the_model_in_the_windows(path, xrf):
    run(path, XrfRoi, xrf)
    net, sigma = maps(path, "xrf-roi", "net"), maps(path, "xrf-roi", "net_sigma")
    params = json.loads(_group_attr(path, "XrfRoi", "parameters"))
    windows = [RoiWindow(n, lo, hi, tuple(a) if a else None, tuple(b) if b else None)
               for n, lo, hi, a, b in params["windows"]]  # fmt: skip
    plan = roi_plan(xrf.energy_keV, windows)
    design = design_matrix(xrf.energy_keV, xrf.groups, xrf.response)
    # what a region holds of each group's unit peak, less what its side windows take
    share = np.stack([
        design[r].sum(0) - cl * design[a].sum(0) - cr * design[b].sum(0)
        for r, a, b, cl, cr in zip(plan.regions, plan.lefts, plan.rights, plan.c_left,
                                   plan.c_right, strict=True)
    ], axis=1)  # fmt: skip
    expected = truth(xrf) @ share  # dead-time-corrected truth through the windows
    within(net, expected, sigma)


def _group_attr(path, process, key, index=-1):
    from pyscatter.io.results import find_results

    with h5py.File(path) as h5:
        return find_results(h5, process)[index].attrs[key]


def test_dead_time_and_monitor_are_exact_factors(path, xrf):
    run(path, XrfRoi, xrf, dead_time="none")
    run(path, XrfRoi, xrf)
    run(path, XrfRoi, xrf, normalize="monitor")
    raw, corrected, normalised = (maps(path, "XrfRoi", "net", i) for i in (0, 1, 2))
    f = xrf.dead_time_factor().ravel()[:, None]
    assert_allclose(corrected / raw, np.broadcast_to(f, raw.shape), rtol=1e-9)
    mon = xrf.monitor.ravel()[:, None]
    assert_allclose(normalised / corrected, mon.mean() / mon * np.ones_like(raw), rtol=1e-9)
    params = json.loads(_group_attr(path, "XrfRoi", "parameters"))
    assert params["normalize"]["reference"] == pytest.approx(mon.mean(), rel=1e-9)


def test_reuse_bit_identical_resume_and_parallel(path, xrf):
    first = run(path, XrfLinearFit, xrf, max_mem_mb=1.0, **FIT)
    before = {v: maps(path, "XrfFit", v) for v in ("area", "area_sigma", "chi2_reduced")}
    again = run(path, XrfLinearFit, xrf, **FIT)
    assert again.reused and again.computed_positions == 0
    with h5py.File(path, "r+") as h5:  # a job killed while it wrote block 1
        group = h5[first.group]
        k = int(group.attrs["positions_per_chunk"])
        assert 1 < k < SHAPE[0] * SHAPE[1] // 2
        group["completed_chunks"][1] = 0
        group["area"][k : k + 2] = np.nan
    resumed = run(path, XrfLinearFit, xrf, **FIT)
    assert resumed.resumed and 0 < resumed.computed_positions < SHAPE[0] * SHAPE[1]
    for name, values in before.items():
        assert_array_equal(maps(path, "XrfFit", name), values)
    serial = run(path, XrfRoi, xrf, max_mem_mb=1.0)
    roi = maps(path, "XrfRoi", "net")
    parallel = run(path, XrfRoi, xrf, max_mem_mb=1.0, n_jobs=2, override=True)
    assert parallel.group != serial.group
    assert_array_equal(maps(path, "XrfRoi", "net"), roi)


def test_channel_axis_needs_a_calibration(tmp_path, xrf):
    spec = write_spec_mesh(tmp_path / "u.spec", xrf_map((2, 3), seed=1))
    lines = [ln for ln in spec.read_text().splitlines() if not ln.startswith("#@CALIB")]
    spec.write_text("\n".join(lines) + "\n")
    h5 = translate(spec, tmp_path / "u.h5", format="spec", scan=1)
    with pytest.raises(InputError, match="no energy calibration .*--mca-calibration A B"):
        run(h5, XrfLinearFit, xrf)
    small = xrf_map((2, 3), seed=1)
    done = run(h5, XrfRoi, xrf, mca_calibration=list(small.calibration), dead_time="none")
    assert done.computed_positions == 6
    h5_cal = translate(write_spec_mesh(tmp_path / "c.spec", small), tmp_path / "c.h5",
                       format="spec", scan=1)  # fmt: skip
    run(h5_cal, XrfRoi, xrf, dead_time="none")
    a, b = (to_xarray(p, "XrfRoi")["net"].values for p in (h5, h5_cal))
    assert_allclose(a, b, rtol=1e-12)


def test_bad_input_is_named(path, xrf):
    with pytest.raises(InputError, match="unknown element 'Xx'"):
        run(path, XrfLinearFit, xrf, elements=["Fe", "Xx"])
    with pytest.raises(InputError, match="'Fe' has no line .* excited at 0.5 keV"):
        run(path, XrfRoi, xrf, elements=["Fe"], excitation=0.5)
    with pytest.raises(InputError, match="dead_time 'yes'"):
        run(path, XrfRoi, xrf, dead_time="yes")
    with pytest.raises(InputError, match="fit_range .* holds 0 channels"):
        run(path, XrfLinearFit, xrf, fit_range=[30, 40])
    with pytest.raises(InputError, match="smooth_width must be 0 or an odd number"):
        run(path, XrfLinearFit, xrf, smooth_width=4)
    with pytest.raises(InputError, match="give the excitation energy"):
        run_on_file(path, XrfLinearFit, elements=["Fe"], progress=False)


def _fit_paused(path, names, after, paused, resume):
    """run_on_file of the fit whose writer stops after ``after`` blocks (holding the file) until
    ``resume`` is set: a job certainly inside its run when it is killed (no timing)."""
    from pyscatter.io import safety

    real = safety.write_status
    calls = []

    def write_status(*args, **kwargs):
        result = real(*args, **kwargs)
        calls.append(1)
        if len(calls) == after:
            paused.set()
            resume.wait(300)
        return result

    safety.write_status = write_status
    run_on_file(path, XrfLinearFit, elements=names, excitation=17.0, max_mem_mb=1.0,
                progress=False, **FIT)  # fmt: skip


def test_sigkill_then_resume_gives_the_same_bits(path, tmp_path, xrf, translated):
    import multiprocessing
    import os
    import signal

    reference = shutil.copy(translated, tmp_path / "ref.h5")
    run(reference, XrfLinearFit, xrf, max_mem_mb=1.0, **FIT)
    ctx = multiprocessing.get_context("forkserver")
    paused, resume = ctx.Event(), ctx.Event()
    proc = ctx.Process(target=_fit_paused, args=(str(path), xrf.names, 3, paused, resume))
    proc.start()
    assert paused.wait(300), "the job never reached its third block"
    os.kill(proc.pid, signal.SIGKILL)
    proc.join(60)
    assert proc.exitcode == -signal.SIGKILL
    resumed = run(path, XrfLinearFit, xrf, max_mem_mb=1.0, **FIT)
    assert resumed.resumed and 0 < resumed.computed_positions < SHAPE[0] * SHAPE[1]
    for name in ("area", "area_sigma", "chi2_reduced"):
        assert_array_equal(maps(path, "XrfFit", name), maps(reference, "XrfFit", name))
