"""``pyscatter fit`` and ``pyscatter order`` through ``main([...])``: codes, files, figures."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
from processes.test_fitting import make_profiles, read_group, truth_params, write_profiles

import pyscatter
from pyscatter.cli import main
from pyscatter.io.record import FLAGS
from pyscatter.kernels.fitting import FitStatus

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture()
def profiles_file(tmp_path):
    y, sigma = make_profiles(truth_params())
    return write_profiles(tmp_path / "profiles.h5", y, sigma)


def test_profiles_fit_order_plot_chain(scan_file, small_scan, tmp_path, capsys):
    path = str(scan_file)
    rings = small_scan.rings[:1]  # q = 0.45; test_order treats the gap across q = 0.8
    code = main(
        [
            "profiles",
            path,
            "--q",
            ",".join(str(r.q_nm) for r in rings),
            "--half-width",
            ",".join(str(2 * r.width_nm) for r in rings),
            "--polarization-factor",
            "0.99",
            "--no-progress",
        ]
    )
    assert code == 0, capsys.readouterr().err
    assert main(["fit", path, "--model", "maier_saupe", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert out.strip().endswith("Intensity-ProfileFit_000")
    figures = tmp_path / "figures"
    code = main(
        ["order", path, "--plot", "--plot-dir", str(figures), "--positions", "0,5,11"]
        + ["--no-progress"]
    )
    assert code == 0, capsys.readouterr().err
    names = sorted(p.name for p in figures.iterdir())
    assert names == [
        "scan_S_ring0.png",
        "scan_director_ring0.png",
        "scan_fit_pos0_ring0.png",
        "scan_fit_pos11_ring0.png",
        "scan_fit_pos5_ring0.png",
    ]
    assert all(p.read_bytes().startswith(PNG) for p in figures.iterdir())
    ds = pyscatter.to_xarray(path, "OrderParameter")
    # the tolerance on this 3 x 4 ground-truth map too (kappa 0 to 16)
    assert np.abs(ds["S"].values[..., 0] - small_scan.order_parameter).max() < 0.03
    isotropic = small_scan.kappa == 0
    assert (ds["status"].values[..., 0][isotropic] == FitStatus.ISOTROPIC).all()


def test_fit_resumes_and_reuses(profiles_file, capsys):
    path = str(profiles_file)
    args = ["fit", path, "--max-mem-mb", "0.03", "--no-progress"]
    assert main(args) == 0
    group = capsys.readouterr().out.strip().rsplit(":", 1)[-1]
    before = read_group(path, group)
    assert main(args) == 0
    captured = capsys.readouterr()
    assert captured.out.strip().endswith(group) and "reused" in captured.err
    with h5py.File(path, "r+") as h5:  # a job killed before its last block was marked
        h5[group][FLAGS][-1] = 0
    assert main(args) == 0
    assert "(resumed)" in capsys.readouterr().err
    after = read_group(path, group)
    assert all(before[k].tobytes() == after[k].tobytes() for k in before)


def test_pseudo_voigt_fit_and_order_without_plots(profiles_file, capsys):
    path = str(profiles_file)
    fit = ["fit", path, "--model", "pseudo_voigt", "--exclude-chi", "40", "60", "--no-progress"]
    assert main(fit) == 0
    assert main(["order", path, "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert out.strip().endswith("Intensity-ProfileFit_000/status-OrderParameter_000")
    ds = pyscatter.to_xarray(path, "OrderParameter")
    assert "pseudo_voigt" in ds.attrs["parameters"]
    s = ds["S"].values[ds["status"].values == FitStatus.OK]
    assert s.size > 0 and ((s > 0) & (s < 1)).all()
    # the excluded sector is recorded and shown as crosses on the profile figures
    from pyscatter.plot import plot_profile_fit

    assert (
        '"exclude_chi":[[40.0,60.0]]' in pyscatter.to_xarray(path, "ProfileFit").attrs["parameters"]
    )
    crosses = plot_profile_fit(path, 3, 0).axes[0].lines[-2]
    assert crosses.get_label() == "excluded from the fit"
    np.testing.assert_array_equal(crosses.get_xdata(), [42.0, 46.0, 50.0, 54.0, 58.0])


def test_usage_errors(profiles_file, scan_file, capsys):
    path = str(profiles_file)
    assert main(["fit", path, "--model", "gauss"]) == 2
    assert "invalid choice" in capsys.readouterr().err
    assert main(["fit", path, "--max-iter", "0", "--no-progress"]) == 2
    assert "max_iter" in capsys.readouterr().err
    assert main(["order", path, "--no-progress"]) == 2  # nothing fitted yet
    assert "no ProfileFit results" in capsys.readouterr().err
    assert main(["order", path, "--positions", "a,b"]) == 2
    assert main(["order", path, "--plot-dir", "x", "--no-progress"]) == 2
    assert "--plot-dir needs --plot" in capsys.readouterr().err
    assert main(["fit", str(scan_file), "--no-progress"]) == 2
    assert "no AzimuthalProfiles results" in capsys.readouterr().err
    assert main(["fit", path + ".missing", "--no-progress"]) == 2
