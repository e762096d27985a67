"""Anisotropy on a synthetic RSoXS energy series (issue 15, item 3).

EDF images with ESRF geometry headers per energy → translate (wavelength per position) →
integrate (cake, each position's own geometry) → anisotropy. References: the generator's
a(q, E) sin 2w / 2w (:mod:`pyscatter.datasets_rsoxs`), Monte-Carlo scatter of 200 noise
realisations, the kernel on the cake read back.
"""

from __future__ import annotations

import json
import shutil

import h5py
import numpy as np
import pytest
from numpy.testing import assert_array_equal

from pyscatter.datasets_rsoxs import anisotropy_amplitude, rsoxs_series
from pyscatter.errors import InputError
from pyscatter.kernels.anisotropy import anisotropy
from pyscatter.processes.anisotropy import Anisotropy
from pyscatter.processes.base import run_on_file
from pyscatter.processes.integration import AzimuthalIntegration
from pyscatter.translators import translate

WIDTH = 10.0
CAKE = {"npt": 100, "npt_azim": 36, "error_model": "poisson"}  # 10-degree chi bins
OUTPUTS = ("I_parallel", "I_perpendicular", "A")
POLARIZATION = "/Measurement_000/Channel_000/Polarization"


def _cake_file(scan, folder, motors="Energy[eV]"):
    paths = scan.write_images(folder / "images")
    out = folder / "rsoxs.h5"
    mask = folder / "images" / "mask.edf"
    translate(paths, out, format="images", motors=motors, mask=mask)
    run_on_file(out, AzimuthalIntegration, progress=False, **CAKE)
    return out


@pytest.fixture(scope="module")
def scan():
    return rsoxs_series(rng=5)  # 21 energies 280-290 eV, field along chi = 0


@pytest.fixture(scope="module")
def cake_file(tmp_path_factory, scan):
    return _cake_file(scan, tmp_path_factory.mktemp("rsoxs"))


@pytest.fixture()
def path(tmp_path, cake_file):
    return shutil.copy(cake_file, tmp_path / "rsoxs.h5")


def run(path, **params):
    params.setdefault("progress", False)
    return run_on_file(path, Anisotropy, **params)


def read(path, group):
    with h5py.File(path, "r") as h5:
        g = h5[group]
        out = {k: g[k][()] for k in g if k.startswith(("I_", "A"))}
        out["q"] = h5[g["A"].attrs["Spectroscopic_Values"]][0]
        out["parameters"] = json.loads(g.attrs["parameters"])
    return out


def truth(scan, q, sign=1.0):
    two_w = np.radians(2 * WIDTH)
    return sign * anisotropy_amplitude(q[None, :], scan.values[:, None]) * np.sin(two_w) / two_w


def window(scan, q):
    """q bins seen on the whole circle at every energy, clear of the beamstop's edge."""
    return (q > 2 * scan.q_beamstop) & (q < scan.q_full - 0.005)


def pulls(got, scan, sign=1.0):
    sel = window(scan, got["q"])
    return ((got["A"] - truth(scan, got["q"], sign)) / got["A_sigma"])[:, sel]


def test_a_equals_the_truth_within_sigma(path, scan):
    summary = run(path, sector_width=WIDTH)
    got = read(path, summary.group)
    pull = pulls(got, scan)
    assert pull.shape[1] > 40 and np.isfinite(pull).all()
    print(f"pulls over {pull.size} (q, E): mean {pull.mean():+.3f}, std {pull.std():.3f}")
    assert abs(pull.mean()) < 0.15
    assert 0.85 < pull.std() < 1.15
    # the resonance: A changes sign across the edge
    sel = window(scan, got["q"])
    assert (got["A"][scan.values < 283][:, sel] < 0).all()
    assert (got["A"][np.abs(scan.values - 285) < 0.3][:, sel] > 0.15).all()
    # the outputs are the kernel's on the cake read back
    with h5py.File(path, "r") as h5:
        cake = h5[got["parameters"]["sigma_dataset"].replace("_Sigma", "")]
        chi = np.unique(h5[cake.attrs["Spectroscopic_Values"]][0])
        shape = (len(scan.values), chi.size, got["q"].size)
        ref = anisotropy(
            cake[()].reshape(shape),
            h5[got["parameters"]["sigma_dataset"]][()].reshape(shape),
            chi,
            np.zeros(len(scan.values)),
            WIDTH,
        )
    assert_array_equal(got["A"], ref.a)
    assert_array_equal(got["I_perpendicular_sigma"], ref.perpendicular_sigma)
    assert got["parameters"]["polarization"] == 0.0


def test_sigma_of_a_matches_monte_carlo(tmp_path):
    """200 noise realisations of one energy (one geometry) in one file."""
    scan = rsoxs_series([285.0] * 200, rng=7)
    path = _cake_file(scan, tmp_path)
    got = read(path, run(path, sector_width=WIDTH).group)
    sel = window(scan, got["q"])
    a, sigma = got["A"][:, sel], got["A_sigma"][:, sel]
    ratio = a.std(axis=0, ddof=1) / np.sqrt(np.mean(sigma**2, axis=0))
    pooled = np.sqrt(np.mean(a.var(axis=0, ddof=1)) / np.mean(sigma**2))
    print(f"MC std / propagated sigma: pooled {pooled:.3f}, median {np.median(ratio):.3f}")
    assert abs(pooled - 1) < 0.10
    assert abs(np.median(ratio) - 1) < 0.10
    # and the mean of the realisations is the truth within the MC error of the mean
    t = truth(scan, got["q"])[0, sel]
    z = (a.mean(axis=0) - t) / (a.std(axis=0, ddof=1) / np.sqrt(len(a)))
    print(
        f"MC mean - truth in MC errors of the mean: mean {z.mean():+.2f}, max |z| {abs(z).max():.1f}"
    )
    worst = np.abs(a.mean(axis=0) - t).max() / np.median(sigma)
    print(f"largest |MC mean - truth| / sigma_A: {worst:.2f}")
    assert worst < 0.5


def test_polarization_per_position(tmp_path):
    """The field turned by 90 degrees at the upper half of the energies."""
    energies = np.linspace(280.0, 290.0, 11)
    turned = np.where(energies > 285.0, 90.0, 0.0)
    scan = rsoxs_series(energies, polarization_deg=turned, rng=9)
    path = _cake_file(scan, tmp_path, motors="Energy[eV],EPU[deg]")  # EPU: the field's chi
    epu = "/Measurement_000/Channel_000/measured_EPU"  # no grid: the measured columns are kept
    with h5py.File(path, "r") as h5:
        assert_array_equal(h5[epu][()], turned)
    right = read(path, run(path, sector_width=WIDTH, polarization_dataset=epu).group)
    pull = pulls(right, scan)
    assert abs(pull.mean()) < 0.3 and 0.8 < pull.std() < 1.2
    params = right["parameters"]
    assert params["polarization_dataset"] == epu and params["polarization"] is None
    assert len(params["polarization_sha256"]) == 64
    # a fixed polarization (0) gives A of opposite sign where the field was turned
    fixed = read(path, run(path, sector_width=WIDTH, polarization=0.0).group)
    flipped = energies > 285.0
    sel = window(scan, fixed["q"])
    assert_array_equal(fixed["A"][~flipped], right["A"][~flipped])
    assert_array_equal(fixed["A"][flipped], -right["A"][flipped])
    sign = np.where(flipped, -1.0, 1.0)[:, None]
    t = truth(scan, fixed["q"]) * sign
    clear = np.abs(t[:, sel]) > 5 * fixed["A_sigma"][:, sel]
    assert clear.sum() > 100
    assert (np.sign(fixed["A"][:, sel][clear]) == np.sign(t[:, sel][clear])).all()
    from pyscatter.plot.rsoxs import read_anisotropy  # the figure's axis: the energy column

    data = read_anisotropy(path)
    assert data.scan_label == "Energy (eV)"
    assert_array_equal(data.scan, energies)


def test_reuse_and_bit_identical_resume(path):
    first = run(path, sector_width=WIDTH, max_mem_mb=1.0)
    before = read(path, first.group)
    again = run(path, sector_width=WIDTH)
    assert again.reused and again.computed_positions == 0
    with h5py.File(path, "r+") as h5:  # a job killed while it wrote block 1
        group = h5[first.group]
        k = int(group.attrs["positions_per_chunk"])
        assert 1 < k < 10
        group["completed_chunks"][1] = 0  # positions k ... 2k - 1
        group["A"][k : k + 2] = np.nan
    resumed = run(path, sector_width=WIDTH)
    assert resumed.resumed and 0 < resumed.computed_positions < 21
    after = read(path, first.group)
    for name in before:
        if name != "parameters":
            assert_array_equal(after[name], before[name])


def test_cli_pipeline_python_and_plot(path, tmp_path):
    from pyscatter import to_xarray
    from pyscatter.cli import main
    from pyscatter.pipeline import run_pipeline

    png = tmp_path / "a.png"
    code = main(["anisotropy", str(path), "--sector-width", "15", "--q-range", "0.05", "0.3",
                 "--plot", str(png), "--no-progress"])  # fmt: skip
    assert code == 0 and png.stat().st_size > 10_000
    (tmp_path / "p.yaml").write_text(
        f"output: {path}\nexecution: {{progress: false}}\nsteps:\n"
        "  - anisotropy: {sector_width: 15, q_range: [0.05, 0.3]}\n"
    )
    assert run_pipeline(tmp_path / "p.yaml")[-1].action == "reused"
    python = run(path, sector_width=15, q_range=(0.05, 0.3))
    assert python.reused
    ds = to_xarray(path, "anisotropy")
    q = ds["A"].coords[ds["A"].dims[-1]].values
    assert q.min() >= 0.05 and q.max() <= 0.3
    assert "Energy" in ds["A"].dims
    assert ds["A"].attrs.get("units", "1") == "1"


def test_bad_input_is_refused_with_the_reason(path):
    one_d = run_on_file(path, AzimuthalIntegration, npt=100, error_model="poisson", progress=False)
    with pytest.raises(InputError, match="is not a cake I\\(chi, q\\)"):
        run(path, source=f"{one_d.group}/Intensity")
    for width in (0, -5, 45.5, 90):
        with pytest.raises(InputError, match="sector_width"):
            run(path, sector_width=width)
    with h5py.File(path, "r+") as h5:
        h5[POLARIZATION] = np.zeros(20)  # 21 positions
    with pytest.raises(InputError, match="one value per position \\(21,\\)"):
        run(path, polarization_dataset=POLARIZATION)
    with pytest.raises(InputError, match="is not a dataset"):
        run(path, polarization_dataset="/nowhere")
    with pytest.raises(InputError, match="q_range \\[5, 6\\] holds no bin"):
        run(path, q_range=(5, 6))
    with pytest.raises(InputError, match="polarization must be a number"):
        run(path, polarization="x")
    with pytest.raises(InputError, match="give one of them"):
        run(path, polarization=0, polarization_dataset=POLARIZATION)
    no_sigma = run_on_file(path, AzimuthalIntegration, npt=100, npt_azim=36, progress=False)
    with pytest.raises(InputError, match="no Intensity_Sigma beside it"):
        run(path, source=f"{no_sigma.group}/Intensity")


def test_a_changed_polarization_record_stops_a_resume(path):
    with h5py.File(path, "r+") as h5:
        h5[POLARIZATION] = np.zeros(21)
    first = run(path, polarization_dataset=POLARIZATION, max_mem_mb=1.0)
    with h5py.File(path, "r+") as h5:
        h5[first.group]["completed_chunks"][1] = 0
        h5[POLARIZATION][3] = 90.0
    # the same parameters (the recorded digest) cannot be asked for any more: a new request
    # makes a new group; the worker of the old one refuses the changed record
    from pyscatter.processes.anisotropy_worker import polarization_of

    with h5py.File(path, "r") as h5:
        params = read(path, first.group)["parameters"]
        with pytest.raises(InputError, match="changed since this anisotropy run started"):
            polarization_of(h5, params, 21)


def test_figure_reads_the_energy_axis_and_chosen_q(path, scan):
    from pyscatter.plot.rsoxs import plot_anisotropy, read_anisotropy

    run(path, sector_width=WIDTH)
    data = read_anisotropy(path)
    assert_array_equal(data.scan, scan.values)
    assert data.scan_label == "Energy (eV)" and data.q_label == "q (1/nm)"
    fig = plot_anisotropy(path, q_values=[0.1, 0.2])
    curves = fig.axes[2].get_legend().get_texts()
    assert [t.get_text()[:6] for t in curves] == ["q = 0.", "q = 0."]
    with pytest.raises(InputError, match="outside the q axis"):
        plot_anisotropy(path, q_values=[10.0])
