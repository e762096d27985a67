"""XRF figures: element maps (one panel per line group, in motor coordinates, the file's values)
and one pixel's spectrum with the fit, its background and labelled line markers (log y)."""

from __future__ import annotations

import numpy as np
import pytest

import pyscatter
from pyscatter.datasets_xrf import write_spec_mesh, xrf_map
from pyscatter.errors import InputError
from pyscatter.plot.xrf import plot_element_maps, plot_pixel_spectrum, plot_spectrum
from pyscatter.processes.base import run_on_file
from pyscatter.processes.xrf import XrfLinearFit, XrfRoi, line_label
from pyscatter.translators import translate


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    folder = tmp_path_factory.mktemp("plotxrf")
    xrf = xrf_map((3, 4), seed=5)
    h5 = translate(write_spec_mesh(folder / "x.spec", xrf), folder / "x.h5", format="spec",
                   scan=1, dead_time_column="dt_percent")  # fmt: skip
    kw = {"elements": xrf.names, "excitation": 17.0, "progress": False}
    run_on_file(h5, XrfLinearFit, smooth_width=11, **kw)
    run_on_file(h5, XrfRoi, **kw)
    return h5, xrf


def test_element_maps_one_panel_per_group_in_motor_coordinates(fitted):
    h5, xrf = fitted
    fig = plot_element_maps(h5, process="xrf-fit", ncols=2)
    maps = [ax for ax in fig.axes if ax.get_label() != "<colorbar>"]
    assert len(maps) == len(xrf.names)
    area = pyscatter.to_xarray(h5, "XrfFit")["area"].values
    for i, ax in enumerate(maps):
        np.testing.assert_array_equal(np.asarray(ax.collections[0].get_array()), area[..., i])
        assert ax.get_xlabel() == "samx" and ax.get_ylabel() == "samy"
        assert ax.get_title().startswith(xrf.names[i].replace("_", " "))
    assert len(fig.axes) == 2 * len(xrf.names)  # a colour bar each
    roi = plot_element_maps(h5, process="XrfRoi", var="net_sigma")
    assert "net_sigma" in roi.axes[0].get_title()
    with pytest.raises(InputError, match="no 'nope'"):
        plot_element_maps(h5, var="nope")


def test_pixel_spectrum_has_data_fit_background_and_labels(fitted):
    h5, xrf = fitted
    fig = plot_pixel_spectrum(h5, (1, 2))
    ax = fig.axes[0]
    assert ax.get_yscale() == "log"
    data, fit, background = ax.lines[:3]
    np.testing.assert_array_equal(np.nan_to_num(data.get_ydata()), xrf.spectra[1, 2].astype(float))
    labels = [t.get_text() for t in ax.texts]
    assert "Fe Kα" in labels and "Zn Kβ1" in labels  # Kα1 and Kα2 share a marker
    ok = np.isfinite(fit.get_ydata()) & np.isfinite(background.get_ydata())
    assert (fit.get_ydata()[ok] >= background.get_ydata()[ok] - 1e-9).all()
    # where the lines are, the fit follows the counts
    y, model = xrf.spectra[1, 2].astype(float), fit.get_ydata()
    peak = np.argmax(y)
    assert abs(model[peak] / y[peak] - 1) < 0.1
    with pytest.raises(InputError, match="outside the scan"):
        plot_pixel_spectrum(h5, (5, 0))


def test_spectrum_from_arrays_and_labels():
    e = np.linspace(1, 10, 100)
    fig = plot_spectrum(e, np.ones(100), title="t")
    assert fig.axes[0].get_title() == "t" and len(fig.axes[0].lines) == 1
    assert line_label("Fe", "KL3") == "Fe Kα1" and line_label("Pb", "L3M5") == "Pb Lα1"
    assert line_label("U", "M1N2") == "U M1N2"
