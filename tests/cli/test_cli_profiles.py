"""``pyscatter profiles`` and ``pyscatter sectors`` through ``main([...])``."""

from __future__ import annotations

import json
import shutil

import h5py
import numpy as np
import pytest
from conftest import write_scan

import pyscatter
from pyscatter import datasets
from pyscatter.cli import main
from pyscatter.processes.base import run_on_file
from pyscatter.processes.profiles import AzimuthalProfiles
from pyscatter.processes.sectors import SectorIntegration


@pytest.fixture(scope="module")
def base_file(tmp_path_factory):
    scan = datasets.oriented_map((2, 2), rng=3, frame_shape=(96, 112))
    return write_scan(tmp_path_factory.mktemp("cli") / "scan.h5", scan)


@pytest.fixture()
def scan_file(tmp_path, base_file):
    return shutil.copy(base_file, tmp_path / "scan.h5")


def test_profiles_command_equals_the_api_and_resumes(scan_file, tmp_path, capsys):
    args = [
        "profiles",
        str(scan_file),
        "--q",
        "0.45,0.8",
        "--half-width",
        "0.06",
        "--npt-azim",
        "60",
    ]
    assert main([*args, "--no-progress"]) == 0
    out = capsys.readouterr().out.strip()
    assert out == f"{scan_file}:/Measurement_000/Channel_000/Raw_Data-AzimuthalProfiles_000"
    ds = pyscatter.to_xarray(scan_file, "AzimuthalProfiles")
    assert ds["Intensity"].shape == (2, 2, 2, 60)
    np.testing.assert_array_equal(ds["ring"].values, [0.45, 0.8])
    # the same call through the API on a fresh copy gives the same bits
    other = shutil.copy(scan_file, tmp_path / "other.h5")
    with h5py.File(other, "r+") as h5:
        del h5["Measurement_000/Channel_000/Raw_Data-AzimuthalProfiles_000"]
    run_on_file(
        other, AzimuthalProfiles, q=[0.45, 0.8], half_width=0.06, npt_azim=60, progress=False
    )
    np.testing.assert_array_equal(
        pyscatter.to_xarray(other, "AzimuthalProfiles")["Intensity"].values, ds["Intensity"].values
    )
    # the same command again reuses the results; other parameters make _001
    assert main([*args, "--no-progress"]) == 0
    assert capsys.readouterr().out.strip().endswith("AzimuthalProfiles_000")
    assert main([*args[:-1], "90", "--no-progress"]) == 0
    assert capsys.readouterr().out.strip().endswith("AzimuthalProfiles_001")


def test_profiles_hkl_and_q_range(scan_file, capsys):
    a = 2 * np.pi / 0.45 * 10  # Å, so that q_100 = 0.45 nm^-1
    assert (
        main(
            [
                "profiles",
                str(scan_file),
                "--hkl",
                "1,0,0",
                "--lattice",
                f"a={a}",
                "--half-width",
                "0.05",
                "--npt-azim",
                "36",
                "--no-progress",
            ]
        )
        == 0
    )
    assert (
        main(
            [
                "profiles",
                str(scan_file),
                "--q-range",
                "0.40",
                "0.50",
                "--npt-azim",
                "36",
                "--no-progress",
            ]
        )
        == 0
    )
    groups = [line.split(":")[-1] for line in capsys.readouterr().out.split()]
    with h5py.File(scan_file, "r") as h5:
        by_hkl, by_range = (h5[g] for g in groups)
        ring = json.loads(by_hkl.attrs["parameters"])["rings"][0]
        assert ring["hkl"] == [1, 0, 0] and ring["q"] == pytest.approx(0.45, rel=1e-12)
        assert json.loads(by_hkl.attrs["parameters"])["lattice"]["b"] == pytest.approx(a)
        # [0.45 − 0.05, 0.45 + 0.05] and [0.40, 0.50]: the same ring to rounding
        np.testing.assert_allclose(by_hkl["Intensity"][()], by_range["Intensity"][()], rtol=1e-6)


def test_sectors_command(scan_file, capsys):
    args = ["sectors", str(scan_file), "--n-sectors", "4", "--offset", "45", "--npt", "50"]
    assert main([*args, "--no-progress"]) == 0
    out = capsys.readouterr().out.strip()
    assert out.endswith("Raw_Data-SectorIntegration_000")
    ds = pyscatter.to_xarray(scan_file, "SectorIntegration")
    assert ds["Intensity"].dims == ("Y", "X", "sector", "q") and ds["Intensity"].shape == (
        2,
        2,
        4,
        50,
    )
    np.testing.assert_allclose(ds["sector"].values, [-135, -45, 45, 135])  # increasing
    with h5py.File(scan_file, "r+") as h5:
        proc = SectorIntegration(
            h5["Measurement_000/Channel_000/Raw_Data"],
            n_sectors=4,
            offset_deg=45,
            npt=50,
            progress=False,
        )
        again = proc.test([3])
    np.testing.assert_array_equal(again["Intensity"][0], ds["Intensity"].values[1, 1].ravel())
    assert main([*args, "--width", "20", "--no-progress"]) == 0
    assert capsys.readouterr().out.strip().endswith("SectorIntegration_001")


@pytest.mark.parametrize(
    "argv, message",
    [
        (["profiles", "{f}", "--hkl", "1,0", "--lattice", "a=5", "--half-width", "0.1"], "--hkl"),
        (
            ["profiles", "{f}", "--hkl", "1,0,0", "--lattice", "x=5", "--half-width", "0.1"],
            "--lattice",
        ),
        (["profiles", "{f}", "--q", "0.45"], "width"),
        (["profiles", "{f}", "--q", "abc", "--half-width", "0.1"], "--q"),
        (["profiles", "{f}"], "exactly one way"),
        (["sectors", "{f}", "--n-sectors", "0"], "n_sectors"),
        (["sectors", "{f}", "--width", "500"], "width_deg"),
    ],
)
def test_bad_input_exits_2_with_a_message(scan_file, capsys, argv, message):
    argv = [a.replace("{f}", str(scan_file)) for a in argv]
    assert main([*argv, "--no-progress"]) == 2
    assert message in capsys.readouterr().err


def test_missing_file_is_reported(tmp_path, capsys):
    assert main(["profiles", str(tmp_path / "nope.h5"), "--q", "0.4", "--half-width", "0.1"]) == 2
    assert "no such file" in capsys.readouterr().err


def test_deprecated_spellings_are_the_same_options(scan_file, capsys):
    """--width (profiles) and --polarization are deprecated spellings of --half-width and
    --polarization-factor: the same parameters, so the second run reuses the first."""
    new = ["--q", "0.45", "--half-width", "0.06", "--polarization-factor", "0.99"]
    old = ["--q", "0.45", "--width", "0.06", "--polarization", "0.99"]
    for flags in (new, old):
        assert main(["profiles", str(scan_file), *flags, "--npt-azim", "36", "--no-progress"]) == 0
    captured = capsys.readouterr()
    out = captured.out.strip().splitlines()
    assert out[0] == out[1] and out[1].endswith("AzimuthalProfiles_000")
    text = captured.err
    assert "--width is deprecated; write --half-width" in text
    assert "--polarization is deprecated; write --polarization-factor" in text


def test_profiles_and_sectors_take_every_detector_option(scan_file, tmp_path, capsys):
    """The detector group is the same in integrate, profiles and sectors (one declaration)."""
    from pyscatter.processes.options import DETECTOR_OPTIONS

    for command in ("integrate", "profiles", "sectors"):
        assert main([command, "--help"]) == 0
        text = capsys.readouterr().out
        for option in DETECTOR_OPTIONS:
            assert option.cli_flag in text, (command, option.cli_flag)
    dark = tmp_path / "dark.npy"
    np.save(dark, np.ones((96, 112), dtype=np.float32))
    assert main(["sectors", str(scan_file), "--exposure-time", "2", "--no-progress"]) == 0
    group = capsys.readouterr().out.strip().split(":", 1)[1]
    with h5py.File(scan_file, "r") as h5:
        params = json.loads(h5[group].attrs["parameters"])
    assert params["normalization_constant"] == 2.0
