"""Decomposition on maps of known phases: subspaces, fractions, stored model, resume, workers."""

from __future__ import annotations

import shutil

import h5py
import numpy as np
import pytest
from numpy.testing import assert_allclose
from scipy.linalg import subspace_angles
from scipy.optimize import linear_sum_assignment, nnls

from pyscatter import to_xarray
from pyscatter.errors import InputError
from pyscatter.io import safety
from pyscatter.processes.base import run_on_file
from pyscatter.processes.decomposition import Decomposition, read_model

RAW = "/Measurement_000/Channel_000/Raw_Data"


@pytest.fixture(scope="module")
def phases():
    from pyscatter.datasets_phases import phase_map

    return phase_map((12, 16), rng=3)


def run(path, **params):
    params.setdefault("progress", False)
    return run_on_file(path, Decomposition, **params)


def loadings(path):
    return to_xarray(path, "Decomposition")["Loadings"].values.reshape(-1, 3)


def test_phase_map_truth(phases):
    assert_allclose(phases.fractions.sum(axis=-1), 1.0, rtol=1e-12)
    assert phases.fractions.min() >= 0
    dominant = np.take_along_axis(phases.fractions, phases.labels[..., None], -1)
    assert dominant.min() >= 0.65 - 1e-12 and dominant.max() == 1.0  # pure pixels at the seeds


@pytest.mark.parametrize("method", ["pca", "incremental_pca", "svd"])
def test_components_span_the_true_signatures(path, phases, method):
    run(path, method=method, n_components=3, batch_size=40)
    model = read_model(path)
    comps = model["Components"].values
    # PCA centres the data: mean + the first two components span the mixtures (fractions sum to
    # 1, so the centred data have rank 2); SVD's three components span them directly
    basis = np.vstack([model["Mean"].values, comps[:2]]) if "Mean" in model else comps
    angles = np.degrees(subspace_angles(basis.T, phases.signatures.T))
    # Poisson noise (~6 counts rms per bin) tilts the fitted subspace: measured 0.63 deg
    assert angles.max() < 1.0, angles
    x = phases.intensity.reshape(-1, phases.q.size).astype(float)
    rec = loadings(path) @ comps + (model["Mean"].values if "Mean" in model else 0.0)
    noise = np.sqrt(phases.expected.mean())
    # a rank-3 model keeps the signal and drops most of the noise: the reconstruction is within
    # 0.35 noise rms of the noise-free counts (measured 0.23-0.26) and the residual of the data
    # is the Poisson noise less what the model absorbed (measured 0.965-0.974 of it)
    assert np.sqrt(((rec - phases.expected.reshape(x.shape)) ** 2).mean()) < 0.35 * noise
    assert 0.9 * noise < np.sqrt(((x - rec) ** 2).mean()) < noise


def _fraction_errors(h, w, phases):
    """Match components to phases (cosine, Hungarian), scale each like its true signature
    (``h_k ~ s_k S_k`` gives ``f_k = s_k w_k``), return the fraction errors."""
    sig = phases.signatures
    cos = (h / np.linalg.norm(h, axis=1)[:, None]) @ (sig / np.linalg.norm(sig, axis=1)[:, None]).T
    rows, cols = linear_sum_assignment(-cos)
    order = rows[np.argsort(cols)]
    hm, wm = h[order], w[:, order]
    scale = (hm * sig).sum(axis=1) / (sig * sig).sum(axis=1)
    return wm * scale - phases.fractions.reshape(-1, phases.n_phases)


@pytest.mark.parametrize(
    ("method", "max_err", "rms_err"),
    # max / rms fraction errors measured: nmf 0.029 / 0.010, minibatch_nmf 0.028 / 0.011; the
    # noise floor (NNLS on the true signatures) is 0.028 / 0.0062
    [("nmf", 0.05, 0.015), ("minibatch_nmf", 0.05, 0.02)],
)
def test_nmf_loadings_recover_the_fractions(path, phases, method, max_err, rms_err):
    summary = run(path, method=method, n_components=3, batch_size=32)
    model = read_model(path)
    h, w = model["Components"].values, loadings(path)
    assert (h >= 0).all() and (w >= 0).all()
    assert_allclose(h.max(axis=1), 1.0, rtol=1e-12)  # scaled to a maximum of 1
    err = _fraction_errors(h, w, phases)
    print(
        f"{method}: fraction errors max {np.abs(err).max():.4f} rms {np.sqrt((err**2).mean()):.4f}"
    )
    assert np.abs(err).max() < max_err and np.sqrt((err**2).mean()) < rms_err
    # ordered by contribution sum_p w_pk^2 |h_k|^2
    energy = (w**2).sum(axis=0) * (h**2).sum(axis=1)
    assert (np.diff(energy) <= 0).all()
    with h5py.File(path, "r") as h5:
        assert h5[summary.group]["Model"].attrs["method"] == method


def test_loadings_are_the_projections_on_the_stored_model(path, phases):
    x = phases.intensity.reshape(-1, phases.q.size).astype(float)
    run(path, method="pca", n_components=3)
    model = read_model(path)
    expected = (x - model["Mean"].values) @ model["Components"].values.T
    assert_allclose(loadings(path), expected, rtol=2e-6, atol=1e-3)  # float32 loadings
    run(path, method="nmf", n_components=3)
    h = read_model(path)["Components"].values
    expected = np.array([nnls(h.T, row)[0] for row in x])  # scipy's NNLS, row by row
    assert_allclose(loadings(path), expected, rtol=2e-6, atol=1e-3)


def test_test_method_equals_the_blocks_bit_for_bit(path):
    """Rows are projected independently: one position alone gives the bits of its block."""
    summary = run(path, method="nmf", n_components=3, max_mem_mb=0.05)
    with h5py.File(path, "r+") as h5:
        proc = Decomposition(h5[RAW], method="nmf", n_components=3, progress=False)
        proc.h5_results_grp = h5[summary.group]  # the stored model
        single = proc.test([0, 5, 191])["Loadings"]
        stored = h5[summary.group]["Loadings"][[0, 5, 191]]
    assert np.array_equal(single.astype(np.float32), stored)


def test_nan_positions_and_bins(tmp_path, phases):
    from pyscatter.datasets_phases import PhaseMap

    counts = phases.intensity.copy()
    counts[0, 0] = np.nan  # an empty position
    counts[3, 4:7, 100] = np.nan  # a bin missing at three positions
    pm = PhaseMap(**{**phases.__dict__, "intensity": counts})
    path = pm.write(tmp_path / "nan.h5")
    summary = run(path, method="pca", n_components=3)
    w = to_xarray(path, "Decomposition")["Loadings"].values
    assert np.isnan(w[0, 0]).all() and np.isfinite(w.reshape(-1, 3)[1:]).all()
    model = read_model(path)
    assert np.isnan(model["Components"].values[:, 100]).all()
    assert np.isfinite(np.delete(model["Components"].values, 100, axis=1)).all()
    with h5py.File(path, "r") as h5:
        grp = h5[summary.group]["Model"]
        assert grp["Fit_Positions"][()].sum() == 191 and grp["Used_Bins"][()].sum() == 399


def test_resume_uses_the_stored_model_and_gives_the_same_bits(tmp_path, phase_file, monkeypatch):
    params = dict(method="nmf", n_components=3, max_mem_mb=0.2)  # 25 positions per block
    reference = shutil.copy(phase_file, tmp_path / "reference.h5")
    ref = run(reference, **params)
    path = shutil.copy(phase_file, tmp_path / "killed.h5")
    calls = []
    real = safety.write_status

    def interrupt(*args, **kwargs):  # Ctrl-C after the third block is written
        calls.append(1)
        real(*args, **kwargs)
        if len(calls) == 3:
            raise KeyboardInterrupt

    monkeypatch.setattr(safety, "write_status", interrupt)
    with pytest.raises(KeyboardInterrupt):
        run(path, **params)
    monkeypatch.setattr(safety, "write_status", real)

    def no_refit(self):
        raise AssertionError("a resumed run must not refit the model")

    monkeypatch.setattr(Decomposition, "_fit", no_refit)
    summary = run(path, **params)
    with h5py.File(reference, "r") as a, h5py.File(path, "r") as b:
        ga, gb = a[ref.group], b[summary.group]
        size = int(gb.attrs["positions_per_chunk"])
        assert summary.resumed and summary.computed_positions == 192 - 3 * size
        assert ga["Model"].attrs["sha256"] == gb["Model"].attrs["sha256"]
        assert ga["Loadings"][()].tobytes() == gb["Loadings"][()].tobytes()
    # same parameters again: the complete group is reused, nothing computed
    assert run(path, **params).reused


def test_joblib_workers_give_serial_bits(tmp_path, phase_file):
    serial = shutil.copy(phase_file, tmp_path / "serial.h5")
    workers = shutil.copy(phase_file, tmp_path / "workers.h5")
    a = run(serial, method="pca", n_components=3, max_mem_mb=0.1)
    b = run(workers, method="pca", n_components=3, max_mem_mb=0.1, n_jobs=2)
    with h5py.File(serial, "r") as fa, h5py.File(workers, "r") as fb:
        assert fa[a.group]["Loadings"][()].tobytes() == fb[b.group]["Loadings"][()].tobytes()


def test_results_are_usid(path):
    from pyUSID.io.hdf_utils import check_if_main

    summary = run(path, method="svd", n_components=2)
    with h5py.File(path, "r") as h5:
        group = h5[summary.group]
        assert check_if_main(group["Loadings"]) and check_if_main(group["Model/Components"])
        assert group["Model/Components"].shape == (2, 400)
        assert group.attrs["process"] == "Decomposition"


def test_bad_parameters_are_named(path, phases):
    with pytest.raises(InputError, match="unsupported method 'ica'"):
        run(path, method="ica")
    with pytest.raises(InputError, match="n_components must be at most 192"):
        run(path, n_components=500)
    with pytest.raises(InputError, match="batch_size must be at least n_components"):
        run(path, method="incremental_pca", n_components=3, batch_size=2)
    signed = phases.intensity - 30.0  # e.g. a background subtracted too much
    from pyscatter.datasets_phases import PhaseMap

    neg = PhaseMap(**{**phases.__dict__, "intensity": signed}).write(path.parent / "neg.h5")
    with pytest.raises(InputError, match="clip_negative=True"):
        run(neg, method="nmf")
    assert run(neg, method="nmf", clip_negative=True).computed_positions == 192


@pytest.mark.parametrize(
    ("method", "passes"), [("incremental_pca", 1), ("minibatch_nmf", 2), ("nmf", 1)]
)
def test_the_fit_shows_progress(path, phases, method, passes, monkeypatch):
    # issue 19: decompose showed nothing during its long fit; a bar now counts the positions
    # fitted (incremental methods, every epoch) or read into memory for scikit-learn's fit
    from pyscatter import progress

    bars = []

    class Counting:
        n = 0

        def update(self, k=1):
            self.n += k

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def close(self):
            pass

        def set_postfix_str(self, *args, **kwargs):
            pass

    def recording_bar(total, *, desc, unit, enabled=True, **kwargs):
        bars.append((desc, total, Counting()))
        return bars[-1][2]

    monkeypatch.setattr(progress, "bar", recording_bar)
    extra = {"n_epochs": passes} if method == "minibatch_nmf" else {}
    run(path, method=method, n_components=3, batch_size=40, progress=True, **extra)
    desc, total, bar = bars[0]  # the fit's bar comes before the blocks' bar
    n_rows = phases.labels.size
    assert desc == (f"{method} fit" if method != "nmf" else "reading")
    assert total == bar.n == n_rows * passes
