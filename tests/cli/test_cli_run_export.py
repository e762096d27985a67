"""``pyscatter run`` and ``pyscatter export``: return codes, output and files."""

from __future__ import annotations

import csv

import numpy as np
import pytest

import pyscatter
from pyscatter.cli import main
from pyscatter.pipeline import EXAMPLE, validate_pipeline

PIPELINE = """\
output: scan.h5
translate:
  format: images
  sources: frames/frame_*.edf
  positions: frames/positions.csv
  poni: demo.poni
  mask: frames/mask.edf
execution: {progress: false}
steps:
  - integrate: {npt: 50, unit: q_A^-1, error_model: poisson}
"""


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    from pyscatter import datasets

    folder = tmp_path_factory.mktemp("cli_run")
    scan = datasets.oriented_map((2, 2), rng=2)
    scan.write_images(folder / "frames")
    scan.write_poni(folder / "demo.poni")
    (folder / "pipeline.yaml").write_text(PIPELINE)
    return folder


def test_run_example_prints_a_valid_template(capsys):
    assert main(["run", "--example"]) == 0
    out = capsys.readouterr().out
    assert out == EXAMPLE
    assert len(validate_pipeline(out, check_files=False).steps) == 4


def test_run_without_a_file_is_a_usage_error(capsys):
    assert main(["run"]) == 2
    assert "give a pipeline file" in capsys.readouterr().err


def test_run_invalid_pipeline_exit_2_names_the_line(folder, capsys):
    bad = folder / "bad.yaml"
    bad.write_text(PIPELINE.replace("npt: 50", "npt: 50, color: red"))
    assert main(["run", str(bad)]) == 2
    err = capsys.readouterr().err
    assert f"{bad}:10: step 'integrate' (AzimuthalIntegration) has no parameter 'color'" in err
    assert not (folder / "scan.h5").exists()


def test_run_check_run_and_rerun(folder, capsys):
    path = str(folder / "pipeline.yaml")
    assert main(["run", path, "--check"]) == 0
    assert "valid (translate, integrate" in capsys.readouterr().out
    assert not (folder / "scan.h5").exists()
    assert main(["-q", "run", path]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"translate: translated {folder / 'scan.h5'}"
    assert out[1].startswith("integrate: computed /Measurement_000/Channel_000/Raw_Data-")
    assert out[1].endswith("(4 of 4 positions, " + out[1].rsplit(", ", 1)[1])
    assert main(["-q", "run", path]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("translate: skipped") and out[1].startswith("integrate: reused")


def test_export_csv_and_refusals(folder, tmp_path, capsys):
    h5 = folder / "scan.h5"
    if not h5.exists():
        assert main(["-q", "run", str(folder / "pipeline.yaml")]) == 0
    out = tmp_path / "csv"
    args = ["-q", "export", str(h5), "--to", "csv", "-o", str(out), "--process", "integrate"]
    assert main(args) == 0
    assert capsys.readouterr().out.strip() == f"{out}/ (5 files)"
    ds = pyscatter.to_xarray(h5, "AzimuthalIntegration")
    with open(out / "index.csv", newline="") as handle:
        index = list(csv.DictReader(handle))
    assert len(index) == 4
    with open(out / index[3]["file"], newline="") as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == ["q[1/A]", "I[a.u.]", "sigma[a.u.]"]
    values = np.array(rows[1:], dtype=np.float64)
    # float32 written with 9 significant digits reads back exactly
    np.testing.assert_array_equal(values[:, 1].astype(np.float32), ds["Intensity"].values[1, 1])
    assert main(args) == 1  # exists: refused
    assert "exists" in capsys.readouterr().err
    assert main([*args, "--overwrite"]) == 0
    capsys.readouterr()
    assert main(["-q", "export", str(h5), "--to", "sasview", "-o", str(tmp_path / "sv")]) == 0
    assert capsys.readouterr().out.strip() == f"{tmp_path / 'sv'}/ (4 files)"
    assert sorted(p.suffix for p in (tmp_path / "sv").iterdir()) == [".txt"] * 4
    assert main(["export", str(h5), "--to", "chi", "--process", "nope"]) == 2
    assert "no results of 'nope'" in capsys.readouterr().err
    nx = tmp_path / "scan.nxs.h5"
    assert main(["-q", "export", str(h5), "--to", "nxcansas", "-o", str(nx)]) == 0
    assert capsys.readouterr().out.strip() == str(nx)


@pytest.mark.parametrize("command", ["info", "export"])
def test_bad_file_argument_is_a_clear_error(tmp_path, capsys, command):
    """A file that is not there, a folder, or not HDF5: exit 2, the path named, no traceback."""
    text = tmp_path / "notes.h5"
    text.write_text("not hdf5")
    cases = [
        (tmp_path / "nowhere" / "scan.h5", "no such file"),
        (tmp_path, "is a folder; expected an HDF5 file"),
        (text, "not an HDF5 file h5py can open"),
    ]
    extra = ["--to", "csv", "-o", str(tmp_path / "out")] if command == "export" else []
    for path, message in cases:
        assert main([command, str(path), *extra]) == 2
        err = capsys.readouterr().err
        assert f"{path}" in err and message in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()


def test_export_output_of_the_wrong_kind(folder, tmp_path, capsys):
    h5 = folder / "scan.h5"
    if not h5.exists():
        assert main(["-q", "run", str(folder / "pipeline.yaml")]) == 0
    a_file = tmp_path / "taken"
    a_file.write_text("")
    assert main(["export", str(h5), "--to", "csv", "-o", str(a_file)]) == 2
    assert f"output {a_file} is a file; csv writes a folder" in capsys.readouterr().err
    assert main(["export", str(h5), "--to", "netcdf", "-o", str(tmp_path)]) == 2
    assert f"output {tmp_path} is a folder; netcdf writes one file" in capsys.readouterr().err


def test_info_outlines_a_file_pyscatter_did_not_write(tmp_path, capsys):
    import h5py

    path = tmp_path / "sas.nxs"
    with h5py.File(path, "w") as h5:
        entry = h5.create_group("entry")
        entry.attrs["NX_class"] = "NXentry"
        det = entry.create_group("instrument/detector")
        det.attrs["NX_class"] = "NXdetector"
        det["data"] = np.zeros((3, 4, 5), np.int32)
        det["distance"] = 1.5
        det["distance"].attrs["units"] = "m"
    assert main(["info", str(path)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == str(path)
    assert out[1].startswith("  not a pyscatter file")
    assert "  entry/ NXentry (1 members)" in out
    assert "      detector/ NXdetector (2 members)" in out
    assert "        data  (3, 4, 5) int32" in out
    assert "        distance  () float64 [m] = 1.5" in out
