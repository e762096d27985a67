"""pyscatter.plot: the figures show exactly the results (maps, directors, profiles and fits)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import h5py  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import xarray as xr  # noqa: E402
from numpy.testing import assert_allclose, assert_array_equal  # noqa: E402
from processes.test_fitting import (  # noqa: E402
    CHI,
    GROUP,
    make_profiles,
    truth_params,
    write_profiles,
)

import pyscatter  # noqa: E402
from pyscatter.errors import InputError  # noqa: E402
from pyscatter.kernels.fitting import FitStatus  # noqa: E402
from pyscatter.kernels.models import MAIER_SAUPE  # noqa: E402
from pyscatter.plot import (  # noqa: E402
    colour_scale,
    director_colours,
    plot_director_map,
    plot_map,
    plot_profile_fit,
    write_orientation_figures,
)
from pyscatter.processes.base import run_on_file  # noqa: E402
from pyscatter.processes.fitting import ProfileFit  # noqa: E402
from pyscatter.processes.order import OrderParameter  # noqa: E402

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def order_file(tmp_path_factory):
    """Hand-made profiles (3 x 4 positions, 2 rings; position 0 isotropic), fitted, ordered."""
    y, sigma = make_profiles(truth_params())
    path = write_profiles(tmp_path_factory.mktemp("plot") / "scan.h5", y, sigma)
    fit = run_on_file(path, ProfileFit, progress=False)
    order = run_on_file(path, OrderParameter, progress=False)
    return path, fit.group, order.group, y, sigma


def saved(fig, path):
    fig.savefig(path)
    data = path.read_bytes()
    assert data.startswith(PNG) and len(data) > 2000
    return path


def test_plot_map_shows_s(order_file, tmp_path):
    path = order_file[0]
    ds = pyscatter.to_xarray(path, "OrderParameter")
    fig = plot_map(ds, "S", ring=1)
    saved(fig, tmp_path / "S.png")
    ax = fig.axes[0]
    mesh = ax.collections[0]
    image = np.ma.filled(mesh.get_array().astype(float), np.nan)
    assert_array_equal(image, ds["S"].values[..., 1])  # slow dim (Y) as rows
    # cells centred on the motor positions
    corners = mesh.get_coordinates()
    assert_allclose(0.5 * (corners[0, :-1, 0] + corners[0, 1:, 0]), ds["X"].values)
    assert_allclose(0.5 * (corners[:-1, 0, 1] + corners[1:, 0, 1]), ds["Y"].values)
    assert ax.get_xlabel() == "X (um)" and ax.get_ylabel() == "Y (um)"
    assert fig.axes[1].get_ylabel() == "Order parameter <P2>"  # the colour bar
    assert "ring = 0.8 1/nm" in ax.get_title()
    assert mesh.norm.vmin == 0.0  # order parameters anchored at 0


def test_plot_map_of_arrays_lines_and_selections():
    values = np.arange(12.0).reshape(3, 4)
    fig = plot_map(values, "value", vmin=0.0, vmax=20.0, cmap="magma")
    mesh = fig.axes[0].collections[0]
    assert_array_equal(mesh.get_array(), values)
    assert (mesh.norm.vmin, mesh.norm.vmax, mesh.cmap.name) == (0.0, 20.0, "magma")
    cube = xr.DataArray(
        np.arange(24.0).reshape(2, 3, 4),
        dims=("Field", "Y", "X"),
        coords={"Field": [0.0, 50.0]},
        name="S",
    )
    with pytest.raises(InputError, match="isel"):
        plot_map(cube)
    fig = plot_map(cube, isel={"Field": 1})
    assert_array_equal(fig.axes[0].collections[0].get_array(), cube.values[1])
    line = plot_map(cube.isel(Field=0, Y=2))
    assert_array_equal(line.axes[0].lines[0].get_ydata(), cube.values[0, 2])
    with pytest.raises(InputError, match="cannot select"):
        plot_map(cube, isel={"Temperature": 0})


def test_status_map_shows_not_computed_positions_as_missing():
    # to_xarray marks positions not computed yet with status -1 (NOT_COMPUTED); tab10 would
    # draw -1 in its first colour, the colour of status 0 (OK)
    status = xr.DataArray(np.array([[0, 1, -1], [-1, 4, 0]], np.int8), dims=("Y", "X"))
    status.name = "status"
    mesh = plot_map(status).axes[0].collections[0]
    shown = mesh.get_array()
    assert_array_equal(np.ma.getmaskarray(shown), status.values < 0)
    assert_array_equal(shown.compressed(), [0, 1, 4, 0])


def test_colour_scales():
    assert colour_scale("director", "deg", np.array([0.0, 10.0])) == {
        "cmap": "twilight",
        "vmin": -90.0,
        "vmax": 90.0,
    }
    diverging = colour_scale("b", "a.u./deg", np.linspace(-1.0, 2.0, 50))
    assert diverging["cmap"] == "RdBu_r" and diverging["vmin"] == -diverging["vmax"]


def test_director_quiver_follows_the_directors(order_file, tmp_path):
    path = order_file[0]
    ds = pyscatter.to_xarray(path, "OrderParameter")
    fig = plot_director_map(ds, ring=0)
    saved(fig, tmp_path / "director.png")
    ax = fig.axes[0]
    quiver = ax.collections[-1]
    director = np.radians(ds["director"].values[..., 0]).ravel()
    finite = np.isfinite(director)
    assert not finite[0]  # position 0 is isotropic: no stick
    assert_allclose(np.ma.filled(quiver.U, np.nan)[finite], np.cos(director[finite]), rtol=1e-6)
    assert_allclose(np.ma.filled(quiver.V, np.nan)[finite], np.sin(director[finite]), rtol=1e-6)
    assert np.asarray(quiver.Umask)[~finite].all()  # matplotlib keeps the mask apart
    gx, gy = np.meshgrid(ds["X"].values, ds["Y"].values)
    assert_allclose(quiver.get_offsets(), np.c_[gx.ravel(), gy.ravel()])
    # the sticks lie over the S map
    image = np.ma.filled(ax.collections[0].get_array().astype(float), np.nan)
    assert_array_equal(image, ds["S"].values[..., 0])


def test_director_colour_wheel(order_file, tmp_path):
    path = order_file[0]
    ds = pyscatter.to_xarray(path, "OrderParameter")
    fig = plot_director_map(ds, kind="wheel", ring=1)
    saved(fig, tmp_path / "wheel.png")
    rgb = fig.axes[0].collections[0].get_array()
    expected = director_colours(ds["director"].values[..., 1], ds["S"].values[..., 1])
    assert_allclose(rgb, expected)
    # -90 and +90 degrees are one axis: one colour; brightness is S
    assert_allclose(director_colours(np.array([-90.0]), [1.0]), director_colours([90.0], [1.0]))
    assert_allclose(director_colours(np.array([0.0]), [0.5]).max(), 0.5)
    with pytest.raises(InputError, match="unsupported kind"):
        plot_director_map(ds, kind="arrows")


def test_profile_fit_overlay(order_file, tmp_path):
    path, fit_group, _, y, sigma = order_file
    position, ring = 5, 1
    fig = plot_profile_fit(path, position, ring)
    saved(fig, tmp_path / "fit.png")
    ax = fig.axes[0]
    data = ax.containers[0]
    line, _, (bars,) = data.lines
    row = position * 2 + ring
    measured = y[row].astype(np.float32).astype(float)
    assert_allclose(line.get_xdata(), CHI)
    assert_array_equal(line.get_ydata(), measured)
    # error bars span +-sigma around each finite point
    seg = [s for s in bars.get_segments() if s.size and np.isfinite(s).all()]
    half = np.array([0.5 * (s[1, 1] - s[0, 1]) for s in seg])
    s32 = sigma[row].astype(np.float32).astype(float)
    assert_allclose(half, s32[np.isfinite(s32)], rtol=1e-6)
    with h5py.File(path, "r") as h5:
        params = np.array([h5[fit_group][n][position, ring] for n in MAIER_SAUPE.param_names])
    curve = ax.lines[-1]
    assert_allclose(curve.get_ydata(), MAIER_SAUPE.func(curve.get_xdata(), params[None])[0])
    assert "OK" in curve.get_label() and "kappa" in curve.get_label()
    # a position given by its index per dim is the same profile
    same = plot_profile_fit(path, (1, 1), ring)
    assert_array_equal(same.axes[0].containers[0].lines[0].get_ydata(), measured)
    # an isotropic profile: the fitted line is its linear background
    iso = plot_profile_fit(path, 0, 0).axes[0].lines[-1]
    with h5py.File(path, "r") as h5:
        a, b = h5[fit_group]["a"][0, 0], h5[fit_group]["b"][0, 0]
        assert h5[fit_group]["status"][0, 0] == FitStatus.ISOTROPIC
    assert_allclose(iso.get_ydata(), a + b * iso.get_xdata(), rtol=1e-6)
    with pytest.raises(InputError, match="position"):
        plot_profile_fit(path, 12)
    with pytest.raises(InputError, match="ring"):
        plot_profile_fit(path, 0, 2)


def test_write_orientation_figures(order_file, tmp_path):
    path = order_file[0]
    written = write_orientation_figures(path, out_dir=tmp_path / "figs", positions=[0, 7])
    names = sorted(p.rsplit("/", 1)[-1] for p in written)
    assert names == [
        "scan_S_ring0.png",
        "scan_director_ring0.png",
        "scan_fit_pos0_ring0.png",
        "scan_fit_pos7_ring0.png",
    ]
    for p in written:
        with open(p, "rb") as f:
            assert f.read(8) == PNG
    with pytest.raises(InputError, match="no group"):
        plot_profile_fit(path, 0, group=f"{GROUP}/nothing")
