"""Waterfall and q-space frame figures show the data they are given."""

from __future__ import annotations

import numpy as np

import pyscatter
from pyscatter import datasets
from pyscatter.plot import plot_frame, plot_waterfall
from pyscatter.processes.base import run_on_file
from pyscatter.processes.integration import AzimuthalIntegration


def test_waterfall_over_a_field_series(tmp_path):
    from conftest import write_scan

    scan = datasets.field_series(fields_mT=(0, 100, 250), raster=(2, 2), rng=3)
    path = write_scan(tmp_path / "field.h5", scan)
    run_on_file(path, AzimuthalIntegration, npt=60, progress=False)
    ds = pyscatter.to_xarray(path, "AzimuthalIntegration")
    fig = plot_waterfall(ds, offset=3.0)
    lines = fig.axes[0].get_lines()
    assert len(lines) == 3
    mean = ds["Intensity"].mean(["Y", "X"]).values
    for k, line in enumerate(lines):  # curve k is the raster mean at field k, times 3**k
        np.testing.assert_allclose(line.get_ydata(), mean[k] * 3.0**k, rtol=1e-6)
        assert f"{ds['Field'].values[k]:g} mT" in line.get_label()
    fig.savefig(tmp_path / "waterfall.png")
    assert (tmp_path / "waterfall.png").stat().st_size > 1000


def test_frame_in_q_space_with_circles(tmp_path, scan_file, small_scan):
    fig = plot_frame(scan_file, (1, 2), q_circles=[0.45, 1.2])
    ax = fig.axes[0]
    shown = ax.get_images()[0].get_array()
    frame = small_scan.frames[1, 2].astype(float)
    good = ~small_scan.mask & (frame > 0)
    np.testing.assert_allclose(np.asarray(shown)[good], np.log10(frame[good]), rtol=1e-12)
    assert (
        np.ma.getmaskarray(shown)[small_scan.mask].all()
        or np.isnan(np.asarray(shown)[small_scan.mask]).all()
    )
    fig.savefig(tmp_path / "frame.png")
    assert (tmp_path / "frame.png").stat().st_size > 1000
