"""Nonsense geometry and parameters are refused at the command line (issue 20), with one line
naming the option or file, what came in and what is allowed; method provenance (issue 19)."""

from __future__ import annotations

import dataclasses
import json
import re
import shutil

import h5py
import numpy as np
import pytest

import pyscatter
from pyscatter.cli import SUBCOMMANDS, main


@pytest.fixture(scope="module")
def frames(tmp_path_factory, small_scan):
    folder = tmp_path_factory.mktemp("frames")
    files = small_scan.write_images(folder)
    poni = small_scan.write_poni(folder / "geometry.poni")
    return folder, files, poni


@pytest.fixture(scope="module")
def translated(tmp_path_factory, frames):
    folder, files, poni = frames
    out = tmp_path_factory.mktemp("h5") / "scan.h5"
    argv = ["translate", *map(str, files), "-o", str(out), "--grid", "Y=3,X=4", "--poni", str(poni)]
    assert main(argv) == 0
    return out


def refused(capsys, argv, code=2):
    """Run argv quietly; assert the exit code and one clean line on stderr; return that line."""
    got = main(["-q", *argv])
    err = capsys.readouterr().err.strip()
    assert got == code, err
    assert "Traceback" not in err and len(err.splitlines()) == 1, err
    return err


def poni_with(path, **changes):
    text = path.read_text()
    for key, value in changes.items():
        text = re.sub(rf"^{key}: .*$", f"{key}: {value}", text, flags=re.M)
    return text


NONSENSE_PONI = [
    ("Distance", "nan", "dist"),
    ("Distance", "0", "dist"),
    ("Distance", "-0.2", "dist"),
    ("Distance", "1e30", "dist"),
    ("Wavelength", "nan", "wavelength"),
    ("Wavelength", "-1e-10", "wavelength"),
    ("Poni1", "inf", "poni1"),
    ("Poni2", "-inf", "poni2"),
    ("Rot1", "nan", "rot1"),
    ("Rot3", "nan", "rot3"),
]


@pytest.mark.parametrize(("key", "value", "name"), NONSENSE_PONI)
def test_integrate_refuses_nonsense_poni(tmp_path, translated, frames, capsys, key, value, name):
    bad = tmp_path / "bad.poni"
    bad.write_text(poni_with(frames[2], **{key: value}))
    err = refused(capsys, ["integrate", str(translated), "--poni", str(bad), "--no-progress"])
    assert str(bad) in err and f"geometry {name} = " in err and "expected a finite number" in err


@pytest.mark.parametrize(("key", "value", "name"), NONSENSE_PONI[:4])
def test_translate_refuses_nonsense_poni(tmp_path, frames, capsys, key, value, name):
    folder, files, poni = frames
    bad = tmp_path / "bad.poni"
    bad.write_text(poni_with(poni, **{key: value}))
    out = tmp_path / "out.h5"
    err = refused(capsys, ["translate", *map(str, files[:2]), "-o", str(out), "--poni", str(bad)])
    assert str(bad) in err and f"geometry {name} = " in err
    assert not out.exists()


def test_integrate_refuses_a_nonsense_recorded_geometry(tmp_path, translated, capsys):
    path = shutil.copy(translated, tmp_path / "scan.h5")
    with h5py.File(path, "r+") as h5:
        config = json.loads(h5["Measurement_000"].attrs["geometry"])
        config["dist"] = 1e30
        h5["Measurement_000"].attrs["geometry"] = json.dumps(config)
    err = refused(capsys, ["integrate", str(path), "--no-progress"])
    assert "geometry recorded" in err and "dist = 1e+30" in err


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (["--npt", "1000000000"], "npt = 1000000000; expected a whole number of bins in [1, "),
        (["--npt", "0"], "npt = 0; expected"),
        (["--npt", "2000", "--npt-azim", "36000"], "npt × npt_azim"),
        (["--max-mem-mb", "nan"], "--max-mem-mb nan: expected a finite number"),
        (["--max-mem-mb", "-5"], "--max-mem-mb -5.0: expected"),
        (["--method", "nonsense"], "method 'nonsense': expected split,algorithm,implementation"),
        (["--method", "bbox,csr"], "split one of"),
        (["--method", "bbox,histogram,cython"], "the batched engine needs the csr algorithm"),
        (["--radial-range", "1e6", "2e6"], "radial_range = (1e+06, 2e+06) q_nm^-1 misses"),
        (["--radial-range", "5", "1"], "radial_range = (5.0, 1.0); expected finite"),
        (["--radial-range", "nan", "1"], "radial_range = (nan, 1.0)"),
        (["--azimuth-range", "400", "500"], "azimuth_range = (400, 500) deg; expected within"),
        (["--exposure-time", "nan"], "exposure_time = nan; expected a finite number > 0"),
        (["--exposure-time", "-1"], "exposure_time = -1.0; expected"),
        (["--transmission", "inf"], "transmission = inf; expected"),
    ],
)
def test_integrate_refuses_nonsense_parameters(translated, capsys, extra, expected):
    err = refused(capsys, ["integrate", str(translated), "--no-progress", *extra])
    assert expected in err


def test_method_allowed_values_are_listed(translated, capsys):
    err = refused(capsys, ["integrate", str(translated), "--method", "nonsense"])
    for allowed in ("bbox", "csr", "histogram", "cython", "opencl"):
        assert allowed in err


def test_integrate_refuses_a_source_not_in_the_file(tmp_path, translated, capsys):
    path = shutil.copy(translated, tmp_path / "scan.h5")
    with h5py.File(path, "r") as h5:
        raw = h5["Measurement_000/Channel_000/Raw_Data"].name
    err = refused(capsys, ["integrate", str(path), "--source", "/nope", "--no-progress"])
    assert str(path) in err and "'/nope'" in err
    assert f"main datasets are: {raw}" in err


def _opencl_available() -> bool:
    from pyFAI.integrator.azimuthal import AzimuthalIntegrator  # noqa: F401
    from pyFAI.method_registry import IntegrationMethod

    return IntegrationMethod.select_one_available(("bbox", "csr", "opencl"), dim=1) is not None


@pytest.mark.skipif(_opencl_available(), reason="OpenCL is available here: nothing falls back")
def test_unavailable_method_refused_unless_fallback_and_what_ran_is_recorded(
    tmp_path, translated, capsys
):
    path = shutil.copy(translated, tmp_path / "scan.h5")
    argv = ["integrate", str(path), "--engine", "pyfai", "--npt", "80", "--no-progress"]
    err = refused(capsys, [*argv, "--method", "bbox,csr,opencl"])
    assert "bbox,csr,opencl is not available" in err and "--allow-fallback" in err
    assert "bbox,csr,cython" in err  # what a fallback would run
    assert main([*argv, "--method", "bbox,csr,opencl", "--allow-fallback"]) == 0
    with h5py.File(path, "r") as h5:
        group = h5["Measurement_000/Channel_000/Raw_Data-AzimuthalIntegration_000"]
        assert json.loads(group.attrs["parameters"])["method"] == ["bbox", "csr", "cython"]
    # what ran is an explicit cython run: same parameters, so its results are reused as equal
    assert main([*argv, "--method", "bbox,csr,cython"]) == 0
    with h5py.File(path, "r") as h5:
        names = [n for n in h5["Measurement_000/Channel_000"] if "Integration" in n]
    assert names == ["Raw_Data-AzimuthalIntegration_000"]


def test_fallback_result_equals_pyfai_cython(tmp_path, translated, small_scan, capsys):
    path = shutil.copy(translated, tmp_path / "scan.h5")
    argv = ["integrate", str(path), "--engine", "pyfai", "--npt", "80", "--no-progress"]
    assert main([*argv, "--method", "bbox,csr,opencl", "--allow-fallback"]) == 0
    ds = pyscatter.to_xarray(path, "AzimuthalIntegration")
    ai = small_scan.integrator()
    frame = small_scan.frames[1, 2]
    ref = ai.integrate1d_ng(frame, 80, unit="q_nm^-1", method=("bbox", "csr", "cython"))
    np.testing.assert_allclose(ds["q"].values, ref.radial, rtol=1e-12)
    np.testing.assert_allclose(ds["Intensity"].values[1, 2], ref.intensity, rtol=1e-6)


def test_translate_fit2d_records_pyfai_setfit2d_geometry(tmp_path, frames, small_scan, capsys):
    from pyFAI.detectors import Detector
    from pyFAI.integrator.azimuthal import AzimuthalIntegrator

    from pyscatter.geometry import integrator_from_config

    folder, files, poni = frames
    fit2d = small_scan.integrator().getFit2D()
    text = (
        f"dist_mm={fit2d['directDist']!r},center_x={fit2d['centerX']!r},"
        f"center_y={fit2d['centerY']!r},tilt={fit2d['tilt']!r},"
        f"tilt_plan_rotation={fit2d['tiltPlanRotation']!r},pixel_x={fit2d['pixelX']!r},"
        f"pixel_y={fit2d['pixelY']!r},wavelength_A={small_scan.integrator().wavelength * 1e10!r}"
    )
    out = tmp_path / "fit2d.h5"
    code = main(
        ["translate", *map(str, files), "-o", str(out), "--grid", "Y=3,X=4", "--fit2d", text]
    )
    assert code == 0, capsys.readouterr().err
    with h5py.File(out, "r") as h5:
        recorded = json.loads(h5["Measurement_000"].attrs["geometry"])
    shape = small_scan.frame_shape
    ref = AzimuthalIntegrator(detector=Detector(fit2d["pixelY"] * 1e-6, fit2d["pixelX"] * 1e-6))
    ref.setFit2D(
        **{
            k: fit2d[k]
            for k in (
                "directDist",
                "centerX",
                "centerY",
                "tilt",
                "tiltPlanRotation",
                "pixelX",
                "pixelY",
            )
        }
    )
    ref.wavelength = small_scan.integrator().wavelength
    for key in ("dist", "poni1", "poni2", "rot1", "rot2", "rot3", "wavelength"):
        assert recorded[key] == pytest.approx(ref.get_config()[key], rel=1e-9, abs=1e-12), key
    assert tuple(recorded["detector_config"]["max_shape"]) == tuple(shape)
    # the same physical geometry as the scan's own: q at every pixel agrees
    q_truth = small_scan.integrator().center_array(shape, unit="q_nm^-1")
    q_fit2d = integrator_from_config(recorded).center_array(shape, unit="q_nm^-1")
    np.testing.assert_allclose(q_fit2d, q_truth, rtol=1e-6)


def test_translate_fit2d_and_poni_are_exclusive(tmp_path, frames, capsys):
    folder, files, poni = frames
    out = tmp_path / "x.h5"
    assert (
        main(
            [
                "translate",
                str(files[0]),
                "-o",
                str(out),
                "--poni",
                str(poni),
                "--fit2d",
                "dist_mm=1",
            ]
        )
        == 2
    )


def test_translate_refuses_nonsense_fit2d(tmp_path, frames, capsys):
    folder, files, poni = frames
    err = refused(
        capsys, ["translate", str(files[0]), "-o", str(tmp_path / "x.h5"), "--fit2d", "dist_mm=nan"]
    )
    assert "--fit2d: dist_mm = 'nan'; expected a finite number" in err


def test_negative_unmasked_pixels_are_warned_about(tmp_path, small_scan, caplog):
    from pyscatter.processes.base import run_on_file
    from pyscatter.processes.integration import AzimuthalIntegration
    from pyscatter.translators.images import ImageStackTranslator

    frames = small_scan.frames.copy()
    frames[..., :, :3] = -1  # detector gaps: 3 of the columns, no mask
    scan = dataclasses.replace(small_scan, frames=frames, mask=None)
    path = ImageStackTranslator().translate(
        None,
        tmp_path / "gaps.h5",
        frames=frames.reshape(-1, *scan.frame_shape),
        poni=scan.integrator().get_config(),
    )
    fraction = float((frames.reshape(-1, *small_scan.frame_shape)[0] < 0).mean())
    assert fraction > 3 / small_scan.frame_shape[1]
    with caplog.at_level("WARNING", logger="pyscatter"):
        run_on_file(path, AzimuthalIntegration, npt=40, progress=False)
    text = caplog.text
    assert (
        f"{100 * fraction:.1f} % of the pixels" in text and "--mask" in text and "--dummy" in text
    )
    caplog.clear()
    with caplog.at_level("WARNING", logger="pyscatter"):  # the dummy names them: no warning
        run_on_file(path, AzimuthalIntegration, npt=40, dummy=-1, progress=False, override=True)
    assert "negative" not in caplog.text


@pytest.mark.parametrize("command", SUBCOMMANDS)
def test_help_has_no_rst_markup(command, capsys):
    assert main([command, "--help"]) == 0
    out = capsys.readouterr().out
    assert "`" not in out and ":func:" not in out and ":class:" not in out, out


def test_top_level_help_has_no_rst_markup(capsys):
    assert main(["--help"]) == 0
    assert "`" not in capsys.readouterr().out
