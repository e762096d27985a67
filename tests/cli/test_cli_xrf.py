"""The XRF commands end to end: ``pyscatter translate X.spec --format spec --scan 1`` then
``xrf-roi`` and ``xrf-fit`` (maps against the generator's truth, PNGs), the same steps from a YAML
pipeline (reused), and the errors a user sees."""

from __future__ import annotations

import numpy as np
import pytest

import pyscatter
from pyscatter.cli import main
from pyscatter.datasets_xrf import write_spec_mesh, xrf_map

SHAPE = (5, 6)


@pytest.fixture(scope="module")
def xrf():
    return xrf_map(SHAPE, seed=7)


def test_translate_roi_fit_plot_and_pipeline(tmp_path, xrf, capsys):
    spec = write_spec_mesh(tmp_path / "x.spec", xrf)
    out = tmp_path / "x.h5"
    code = main(["-q", "translate", str(spec), "--format", "spec", "--scan", "1", "-o", str(out),
                 "--dead-time-column", "dt_percent", "--monitor", "I0"])  # fmt: skip
    assert code == 0, capsys.readouterr().err
    elements = ["--elements", *xrf.names, "--excitation", "17"]
    roi_png, fit_png = tmp_path / "roi.png", tmp_path / "fit.png"
    code = main(["-q", "xrf-roi", str(out), *elements, "--plot", str(roi_png), "--no-progress"])
    assert code == 0, capsys.readouterr().err
    code = main(["-q", "xrf-fit", str(out), *elements,
                 "--plot", str(fit_png), "--no-progress"])  # fmt: skip
    assert code == 0, capsys.readouterr().err
    assert capsys.readouterr().out.strip().endswith("Raw_Data-XrfFit_000")
    assert roi_png.stat().st_size > 10_000 and fit_png.stat().st_size > 10_000
    ds = pyscatter.to_xarray(out, "xrf-fit")
    assert ds["area"].dims == ("samy", "samx", "line")
    truth = np.stack([xrf.truth[n] for n in xrf.names], axis=-1)
    assert np.abs(ds["area"].values.mean(axis=(0, 1)) / truth.mean(axis=(0, 1)) - 1).max() < 0.02
    # the same step from a pipeline: the same parameters, so reused
    (tmp_path / "p.yaml").write_text(
        f"output: {out}\nexecution: {{progress: false}}\nsteps:\n"
        f"  - xrf-fit: {{elements: {xrf.names}, excitation: 17}}\n"
        f"  - xrf-roi: {{elements: {xrf.names}, excitation: 17, normalize: monitor}}\n"
    )
    from pyscatter.pipeline import run_pipeline

    steps = run_pipeline(tmp_path / "p.yaml")
    assert [s.action for s in steps][-2:] == ["reused", "computed"]
    export = tmp_path / "maps.nc"
    code = main(["-q", "export", str(out), "--to", "netcdf", "--process", "xrf-fit",
                 "-o", str(export)])  # fmt: skip
    assert code == 0, capsys.readouterr().err
    import xarray as xr

    with xr.open_dataset(export) as nc:
        np.testing.assert_array_equal(nc["area"].values, ds["area"].values)


def test_errors_are_one_line_naming_the_cause(tmp_path, xrf, capsys):
    spec = write_spec_mesh(tmp_path / "x.spec", xrf)
    out = tmp_path / "x.h5"
    code = main(["translate", str(spec), "--format", "spec", "--scan", "1", "-o", str(out),
                 "--dead-time-column", "deadtime"])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2 and "dead_time_column 'deadtime' is not a column" in err
    assert "livetime, realtime, dt_percent, I0, Seconds" in err
    assert (
        main(["-q", "translate", str(spec), "--format", "spec", "--scan", "1", "-o", str(out)]) == 0
    )
    code = main(["xrf-fit", str(out), "--elements", "Fe", "Qq", "--excitation", "17"])
    assert code == 2 and "unknown element 'Qq'" in capsys.readouterr().err
    code = main(["xrf-roi", str(out), "--elements", "Zn_K", "--excitation", "8"])
    assert code == 2 and "no line of its family K excited at 8.0 keV" in capsys.readouterr().err
