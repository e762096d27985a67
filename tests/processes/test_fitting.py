"""ProfileFit: the process equals the kernel called directly, on hand-made profiles groups."""

from __future__ import annotations

import hashlib
import json

import h5py
import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

import pyscatter
from pyscatter.errors import InputError
from pyscatter.io.record import FLAGS
from pyscatter.io.usid import Dim, create_main, write_ancillary
from pyscatter.kernels.fitting import FitStatus, fit_profiles
from pyscatter.kernels.models import get_model
from pyscatter.processes.base import canonical_json, run_on_file
from pyscatter.processes.fitting import ProfileFit

CHI = np.arange(-178.0, 180.0, 4.0)  # 90 bins, pyFAI's -180..180 convention
RINGS = np.array([0.45, 0.8])
SHAPE = (3, 4)
GROUP = "/Measurement_000/Channel_000/Raw_Data-AzimuthalProfiles_000"
PROFILES = f"{GROUP}/Intensity"


def truth_params(scan_shape=SHAPE, n_rings=2, seed=3):
    """Maier--Saupe (I, kappa, x0, a, b) per position and ring; the first position isotropic."""
    rng = np.random.default_rng(seed)
    n = int(np.prod(scan_shape)) * n_rings
    kappa = rng.uniform(2.0, 16.0, n)
    x0 = rng.uniform(-180.0, 180.0, n)
    peak = rng.uniform(300.0, 800.0, n)
    params = np.stack(
        [peak * np.exp(-kappa), kappa, x0, rng.uniform(40, 80, n), rng.uniform(-0.02, 0.02, n)],
        axis=1,
    )
    params[:n_rings, 0] = 0.0  # position 0: no oriented component in any ring
    params[:n_rings, 1] = 0.0
    return params


def make_profiles(params, model="maier_saupe", seed=4, holes=True):
    """Noisy profiles (n_rows, n_chi) of Poisson size, their sigma, NaN in a few bins."""
    rng = np.random.default_rng(seed)
    truth = get_model(model).func(CHI, params)
    sigma = np.sqrt(truth)
    y = truth + sigma * rng.standard_normal(truth.shape)
    if holes:  # a beamstop arm and a module gap leave empty bins, as pyFAI does
        y[:, 5:8] = np.nan
        sigma[:, 5:8] = np.nan
        y[1::3, 60] = np.nan
        sigma[1::3, 60] = np.nan
    return y, sigma


def write_profiles(path, profiles, sigma=None, *, scan_shape=SHAPE, rings=RINGS, chi=CHI):
    """A file holding an AzimuthalProfiles-like results group (ring, chi), nothing else.

    ``profiles`` has shape (n_positions * n_rings, n_chi), rows position-major.
    """
    n_pos = int(np.prod(scan_shape))
    width = rings.size * chi.size
    pos_dims = [Dim("Y", "um", 10.0 + 4.0 * np.arange(scan_shape[0]))]
    if len(scan_shape) == 2:
        pos_dims.append(Dim("X", "um", -20.0 + 5.0 * np.arange(scan_shape[1])))
    with h5py.File(path, "w") as h5:
        channel = h5.create_group("Measurement_000/Channel_000")
        pos = write_ancillary(channel, "Position_", pos_dims, spectroscopic=False)
        group = channel.create_group(GROUP.rsplit("/", 1)[-1])
        spec = write_ancillary(
            group,
            "Spectroscopic_",
            [Dim("ring", "1/nm", rings), Dim("chi", "deg", chi)],
            spectroscopic=True,
        )
        for name, data in (("Intensity", profiles), ("Intensity_Sigma", sigma)):
            if data is None:
                continue
            create_main(
                group,
                name,
                shape=(n_pos, width),
                dtype=np.float32,
                quantity=name,
                units="a.u.",
                position=pos,
                spectroscopic=spec,
                data=np.asarray(data, dtype=np.float32).reshape(n_pos, width),
            )
        digest = hashlib.sha256(np.ascontiguousarray(profiles).tobytes()).hexdigest()
        group.attrs["process"] = "AzimuthalProfiles"
        group.attrs["tool"] = "tests.write_profiles"
        group.attrs["parameters_hash"] = digest
        group.attrs["start_time"] = "2024-01-01T00:00:00+00:00"
    return path


@pytest.fixture()
def profiles_file(tmp_path):
    y, sigma = make_profiles(truth_params())
    return write_profiles(tmp_path / "profiles.h5", y, sigma), y, sigma


def kernel_reference(y, sigma, model="maier_saupe"):
    """fit_profiles called directly on what the file holds (float32), all rows at once."""
    y32 = np.asarray(y, dtype=np.float32).astype(np.float64)
    s32 = None if sigma is None else np.asarray(sigma, dtype=np.float32).astype(np.float64)
    return fit_profiles(CHI, y32, s32, model=model)


def read_group(path, group):
    with h5py.File(path, "r") as h5:
        return {k: h5[group][k][()] for k in h5[group] if isinstance(h5[group][k], h5py.Dataset)}


@pytest.mark.parametrize("model", ["maier_saupe", "pseudo_voigt"])
def test_process_equals_kernel_in_blocks(tmp_path, model):
    params = truth_params()
    if model == "pseudo_voigt":
        rng = np.random.default_rng(5)
        n = params.shape[0]
        params = np.stack(
            [
                rng.uniform(40, 80, n),
                rng.uniform(300, 800, n),
                rng.uniform(-180, 180, n),
                rng.uniform(12, 30, n),  # HWHM of 3 bins or more (see test_order's xfail)
                rng.uniform(0.2, 0.8, n),
                rng.uniform(-0.02, 0.02, n),
            ],
            axis=1,
        )
        params[:2, 1] = 0.0
    y, sigma = make_profiles(params, model)
    path = write_profiles(tmp_path / "p.h5", y, sigma)
    # 0.02 MB: a few positions per block, so blocks of different sizes are fitted separately
    summary = run_on_file(path, ProfileFit, model=model, max_mem_mb=0.03, progress=False)
    out = read_group(path, summary.group)
    with h5py.File(path, "r") as h5:
        assert h5[summary.group].attrs["positions_per_chunk"] < 12
    ref = kernel_reference(y, sigma, model)
    n_pos = int(np.prod(SHAPE))
    for k, name in enumerate(get_model(model).param_names):
        # rows are fitted independently, so block boundaries change nothing but the float32
        # rounding of the stored values
        assert_allclose(out[name], ref.params[:, k].reshape(n_pos, 2), rtol=1e-6, equal_nan=True)
        assert_allclose(
            out[f"{name}_sigma"], ref.errors[:, k].reshape(n_pos, 2), rtol=1e-6, equal_nan=True
        )
    if model == "pseudo_voigt":  # the correlation of the shape parameters, for sigma(S)
        assert_allclose(
            out["gamma_eta_correlation"],
            ref.correlation("gamma", "eta").reshape(n_pos, 2),
            rtol=1e-6,
            equal_nan=True,
        )
    assert_allclose(out["R2"], ref.r2.reshape(n_pos, 2), rtol=1e-6)
    assert_allclose(out["reduced_chi2"], ref.reduced_chi2.reshape(n_pos, 2), rtol=1e-6)
    assert_array_equal(out["status"], ref.status.reshape(n_pos, 2))
    assert_array_equal(out["n_iter"], ref.n_iter.reshape(n_pos, 2))
    assert out["status"].dtype == np.int8 and out["n_iter"].dtype == np.int32
    # position 0 has no oriented component: flagged, never a fitted spike
    assert (out["status"][0] == FitStatus.ISOTROPIC).all()
    assert (out["status"][1:] == FitStatus.OK).all()


def test_fit_recovers_truth_and_normalises(profiles_file):
    path, _, _ = profiles_file
    summary = run_on_file(path, ProfileFit, model="maier_saupe", progress=False)
    out = read_group(path, summary.group)
    truth = truth_params().reshape(12, 2, 5)
    ok = out["status"] == FitStatus.OK
    # Poisson noise of ~20 counts on peaks of 300-800: kappa within 6 of its own sigma
    pull = (out["kappa"] - truth[..., 1]) / out["kappa_sigma"]
    assert np.abs(pull[ok]).max() < 6
    diff = np.mod(out["x0"] - truth[..., 2] + 90.0, 180.0) - 90.0
    assert np.abs(diff[ok] / out["x0_sigma"][ok]).max() < 6
    # canonical form: kappa >= 0, director folded into [-90, 90)
    assert (out["kappa"][ok] >= 0).all()
    assert ((out["x0"][ok] >= -90) & (out["x0"][ok] < 90)).all()
    assert (out["kappa"][~ok] == 0).all() and np.isnan(out["x0"][~ok]).all()


def test_results_group_layout(profiles_file):
    from pyUSID.io.hdf_utils import check_if_main

    path, _, _ = profiles_file
    summary = run_on_file(path, ProfileFit, progress=False)
    assert summary.group == f"{PROFILES}-ProfileFit_000"
    with h5py.File(path, "r") as h5:
        group = h5[summary.group]
        names = ["I", "kappa", "x0", "a", "b"]
        expected = {*names, *(f"{n}_sigma" for n in names), "R2", "reduced_chi2"}
        expected |= {"status", "n_iter"}  # Maier--Saupe: one shape parameter, no correlation
        mains = {k for k in group if k in expected}
        assert mains == expected
        for name in expected:
            assert check_if_main(group[name])
            assert group[name].shape == (12, 2)
        assert json.loads(group.attrs["status_codes"]) == {s.name: int(s) for s in FitStatus}
        assert "ISOTROPIC" in group.attrs["status_description"]
        assert group.attrs["model"] == "maier_saupe"
        params = json.loads(group.attrs["parameters"])
        assert params["sigma_dataset"] == f"{GROUP}/Intensity_Sigma"
        assert group["x0"].attrs["units"] == "deg"
        assert group["I"].attrs["units"] == "a.u."
        assert group["b"].attrs["units"] == "a.u./deg"
    ds = pyscatter.to_xarray(path, "ProfileFit")
    assert ds["kappa"].dims == ("Y", "X", "ring")
    assert_allclose(ds["ring"].values, RINGS)
    assert ds["ring"].attrs["units"] == "1/nm"


def test_reuse_resume_and_new_parameters(profiles_file):
    path, _, _ = profiles_file
    first = run_on_file(path, ProfileFit, max_mem_mb=0.03, progress=False)
    before = read_group(path, first.group)
    again = run_on_file(path, ProfileFit, max_mem_mb=0.03, progress=False)
    assert again.reused and again.group == first.group
    # a block lost by a killed job (flag cleared, data garbage) is recomputed, bit for bit
    with h5py.File(path, "r+") as h5:
        group = h5[first.group]
        size = int(group.attrs["positions_per_chunk"])
        group[FLAGS][1] = 0
        group["kappa"][size : 2 * size] = -1.0
    resumed = run_on_file(path, ProfileFit, max_mem_mb=0.03, progress=False)
    assert resumed.resumed and resumed.computed_positions == size
    after = read_group(path, first.group)
    for name in before:
        assert before[name].tobytes() == after[name].tobytes(), name
    other = run_on_file(path, ProfileFit, model="pseudo_voigt", progress=False)
    assert other.group.endswith("ProfileFit_001")


def test_excluded_chi_sectors_are_left_out(profiles_file):
    path, y, sigma = profiles_file
    # [170, 190] wraps around the pyFAI seam: -180..-170 and 170..180
    exclude = [(170.0, 190.0), (40.0, 60.0)]
    summary = run_on_file(path, ProfileFit, exclude_chi=exclude, progress=False)
    out = read_group(path, summary.group)
    gone = (np.abs(CHI) >= 170) | ((CHI >= 40) & (CHI <= 60))
    assert gone.sum() == 11
    ref = kernel_reference(np.where(gone, np.nan, y), np.where(gone, np.nan, sigma))
    assert_allclose(out["kappa"], ref["kappa"].reshape(12, 2), rtol=1e-6, equal_nan=True)
    assert_array_equal(out["status"], ref.status.reshape(12, 2))
    with h5py.File(path, "r") as h5:
        recorded = json.loads(h5[summary.group].attrs["parameters"])["exclude_chi"]
    assert recorded == [[170.0, 190.0], [40.0, 60.0]]
    for bad in ([(10.0, 5.0)], [(0.0, 360.0)], [(1.0,)], "all"):
        with pytest.raises(InputError, match="exclude_chi"):
            run_on_file(path, ProfileFit, exclude_chi=bad, progress=False)


def test_without_sigma_fits_unweighted(tmp_path):
    y, _ = make_profiles(truth_params())
    path = write_profiles(tmp_path / "nosigma.h5", y, None)
    summary = run_on_file(path, ProfileFit, progress=False)
    out = read_group(path, summary.group)
    ref = kernel_reference(y, None)
    assert_allclose(out["kappa"], ref["kappa"].reshape(12, 2), rtol=1e-6, equal_nan=True)
    # without sigma the errors are scaled by the reduced chi^2, as curve_fit does
    assert_allclose(out["kappa_sigma"], ref.errors[:, 1].reshape(12, 2), rtol=1e-6, equal_nan=True)
    with h5py.File(path, "r") as h5:
        assert json.loads(h5[summary.group].attrs["parameters"])["sigma_dataset"] is None


def test_worker_entry_point_gives_the_stored_bits(profiles_file):
    """What a joblib/dask worker runs: build from the spec alone, read its own handle."""
    from pyscatter.processes import execution

    path, _, _ = profiles_file
    summary = run_on_file(path, ProfileFit, max_mem_mb=0.03, progress=False)
    stored = read_group(path, summary.group)
    with h5py.File(path, "r") as h5:
        group = h5[summary.group]
        params = dict(json.loads(group.attrs["parameters"]), source=PROFILES)
        size = int(group.attrs["positions_per_chunk"])
    spec = execution.TaskSpec(ProfileFit.factory, str(path), canonical_json(params))
    execution._BUILT.clear()
    execution._READ_HANDLES.clear()
    try:
        index, out, _ = execution.compute_block(spec, 1, size, 2 * size)
    finally:
        for handle in execution._READ_HANDLES.values():
            handle.close()
        execution._READ_HANDLES.clear()
    assert index == 1
    for name, value in out.items():
        expected = stored[name][size : 2 * size]
        assert np.asarray(value, dtype=expected.dtype).tobytes() == expected.tobytes(), name


def test_bad_inputs_are_refused(profiles_file, scan_file):
    path, _, _ = profiles_file
    with pytest.raises(InputError, match="unsupported model 'gauss'.*maier_saupe"):
        run_on_file(path, ProfileFit, model="gauss", progress=False)
    with pytest.raises(InputError, match="max_iter"):
        run_on_file(path, ProfileFit, max_iter=0, progress=False)
    with pytest.raises(InputError, match="isotropy_alpha"):
        run_on_file(path, ProfileFit, isotropy_alpha=2.0, progress=False)
    # detector frames are not azimuthal profiles
    with pytest.raises(InputError, match="chi as the fastest"):
        run_on_file(
            scan_file, ProfileFit, source="/Measurement_000/Channel_000/Raw_Data", progress=False
        )
    # nothing to fit by default in a file without profiles
    with pytest.raises(InputError, match="no AzimuthalProfiles results"):
        run_on_file(scan_file, ProfileFit, progress=False)


def test_incomplete_profiles_are_refused(profiles_file):
    path, _, _ = profiles_file
    with h5py.File(path, "r+") as h5:  # the profiles of a run that was killed half-way
        group = h5[GROUP]
        group.create_dataset(FLAGS, data=np.array([1 << 32, 0], dtype=np.uint64))
        group.attrs["positions_per_chunk"] = 6
        group.attrs["n_positions"] = 12
    with pytest.raises(InputError, match="only 6 of 12 positions"):
        run_on_file(path, ProfileFit, progress=False)


#: kappa of the replay test: the prefactor I ~ peak / e^kappa spans 900 .. 1e-214
REPLAY_KAPPA = np.array([0.0, 0.5, 4.0, 30.0, 90.0, 150.0, 229.0, 300.0, 400.0, 500.0])


def test_stored_parameters_replay_the_profile_for_kappa_0_to_500(tmp_path, record_property):
    """Issue 19.1: at kappa = 229 the float32 ``I`` (900 / e^229) was 0, a flat replay."""
    chi = np.arange(-179.5, 180.0, 1.0)  # the peak of kappa = 500 is 4 degrees wide (FWHM)
    n = REPLAY_KAPPA.size
    x0 = np.linspace(-80.0, 80.0, n)
    peak, floor = 900.0, 60.0
    truth = np.stack(
        [peak * np.exp(-REPLAY_KAPPA), REPLAY_KAPPA, x0, np.full(n, floor), np.zeros(n)], axis=1
    )
    truth[0, 0] = 0.0  # kappa = 0: no oriented component, a flat profile
    model = get_model("maier_saupe")
    y = model.func(chi, truth)
    sigma = np.sqrt(y)  # noise-free profiles with Poisson weights: the fit is the truth
    path = write_profiles(
        tmp_path / "replay.h5", y, sigma, scan_shape=(n,), rings=np.array([0.45]), chi=chi
    )
    summary = run_on_file(path, ProfileFit, model="maier_saupe", progress=False)
    out = read_group(path, summary.group)
    stored = np.stack([out[name][:, 0] for name in model.param_names], axis=1)
    assert stored.dtype == np.float64
    replay = model.func(chi, stored)
    replay[0] = stored[0, 3] + stored[0, 4] * chi  # ISOTROPIC: the background, no director
    # the profile is stored as float32 (relative rounding 6e-8 of ~960 counts)
    worst = np.abs(replay - np.asarray(y, dtype=np.float32)).max(axis=1) / peak
    record_property("kappa_replay_range", f"{REPLAY_KAPPA.min():g}..{REPLAY_KAPPA.max():g}")
    record_property("kappa_replay_worst_relative_error", float(worst.max()))
    print(f"kappa replay {REPLAY_KAPPA.min():g}..{REPLAY_KAPPA.max():g}: worst {worst.max():.2e}")
    assert_allclose(worst, 0.0, atol=1e-5)
    assert_array_equal(out["status"][0], FitStatus.ISOTROPIC)
    assert (out["status"][1:] <= FitStatus.WEAK).all()
    assert_allclose(out["kappa"][1:, 0], REPLAY_KAPPA[1:], rtol=1e-5)
    # what `order --plot` draws at kappa = 229: the peak, not a flat line at the floor
    from pyscatter.plot.orientation import plot_profile_fit

    fig = plot_profile_fit(path, int(np.flatnonzero(REPLAY_KAPPA == 229.0)[0]))
    assert_allclose(np.max(fig.axes[0].lines[-1].get_ydata()), peak + floor, rtol=1e-3)
