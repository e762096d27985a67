"""The command line through ``main([...])``: return codes and file contents."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

import pyscatter
from pyscatter.cli import main


@pytest.fixture(scope="module")
def edf_folder(tmp_path_factory, small_scan):
    folder = tmp_path_factory.mktemp("frames")
    files = small_scan.write_images(folder)
    poni = small_scan.write_poni(folder / "geometry.poni")
    return folder, files, poni


def test_translate_then_integrate_matches_pyfai(tmp_path, edf_folder, small_scan, capsys):
    folder, files, poni = edf_folder
    out = tmp_path / "scan.h5"
    code = main(
        [
            "translate",
            str(folder / "*.edf"),
            "-o",
            str(out),
            "--positions",
            str(folder / "positions.csv"),
            "--poni",
            str(poni),
            "--mask",
            str(folder / "mask.edf"),
        ]
    )
    assert code == 0, capsys.readouterr().err
    code = main(["integrate", str(out), "--npt", "300", "--unit", "q_nm^-1", "--no-progress"])
    assert code == 0, capsys.readouterr().err
    ds = pyscatter.to_xarray(out, "AzimuthalIntegration")
    assert ds["Intensity"].shape == (*small_scan.scan_shape, 300)
    np.testing.assert_allclose(ds["Y"].values, small_scan.coords["Y"])
    ai = small_scan.integrator()
    for index in [(0, 0), (2, 3)]:
        ref = ai.integrate1d_ng(small_scan.frames[index], 300, unit="q_nm^-1", mask=small_scan.mask)
        # float32 precision: the batched kernel multiplies float32 blocks (see the kernel tests)
        np.testing.assert_allclose(
            ds["Intensity"].values[index], ref.intensity, rtol=1e-5, atol=1e-6 * ref.intensity.max()
        )


def test_info_shows_completion(tmp_path, edf_folder, capsys):
    folder, files, poni = edf_folder
    out = tmp_path / "scan.h5"
    assert (
        main(
            [
                "translate",
                *map(str, files),
                "-o",
                str(out),
                "--grid",
                "Y=3,X=4",
                "--poni",
                str(poni),
            ]
        )
        == 0
    )
    assert main(["integrate", str(out), "--npt", "50", "--no-progress"]) == 0
    # how blocks are read is not a parameter: the same integration without read-ahead is reused
    assert main(["integrate", str(out), "--npt", "50", "--no-progress", "--no-read-ahead"]) == 0
    with h5py.File(out, "r") as h5:
        names = list(h5["Measurement_000/Channel_000"])
    assert [n for n in names if "AzimuthalIntegration" in n] == [
        "Raw_Data-AzimuthalIntegration_000"
    ]
    capsys.readouterr()
    assert main(["info", str(out), "--parameters"]) == 0
    text = capsys.readouterr().out
    assert "AzimuthalIntegration 12/12 positions, complete" in text
    assert "npt = 50" in text
    assert "Raw_Data" in text and "Y=3" in text


def test_existing_output_needs_overwrite(tmp_path, edf_folder, capsys):
    folder, files, poni = edf_folder
    out = tmp_path / "scan.h5"
    args = ["translate", *map(str, files), "-o", str(out)]
    assert main(args) == 0
    capsys.readouterr()
    assert main(args) == 1
    err = capsys.readouterr().err
    assert str(out) in err and "overwrite" in err and "Traceback" not in err
    assert main([*args, "--overwrite"]) == 0


def test_bad_usage_exits_2_and_bad_file_exits_1(tmp_path, capsys):
    assert main(["integrate"]) == 2
    assert main(["no-such-command"]) == 2
    bogus = tmp_path / "bogus.h5"
    bogus.write_text("not hdf5")
    capsys.readouterr()
    code = main(["integrate", str(bogus)])
    err = capsys.readouterr().err
    assert code in (1, 2) and str(bogus) in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def test_demo_writes_file_and_figure(tmp_path, capsys):
    assert main(["demo", str(tmp_path / "demo")]) == 0
    out = capsys.readouterr().out
    assert "demo_scan.h5" in out and "demo_iq.png" in out
    png = tmp_path / "demo" / "demo_iq.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with h5py.File(tmp_path / "demo" / "demo_scan.h5", "r") as h5:
        assert "Raw_Data-AzimuthalIntegration_000" in h5["Measurement_000/Channel_000"]


def test_formats_lists_the_translators(capsys):
    assert main(["formats"]) == 0
    out = capsys.readouterr().out
    assert "images" in out and ".edf" in out and "--format NAME" in out
