"""Exports (netCDF, CSV, SasView 2-D, Fit2D .chi, NXcanSAS): the numbers equal to_xarray's."""

from __future__ import annotations

import csv
import logging
import shutil

import h5py
import numpy as np
import pytest
import xarray as xr

import pyscatter
from pyscatter.errors import ExistingResultsError, InputError
from pyscatter.io.export import export, netcdf_safe_attrs, write_csv


@pytest.fixture(scope="module")
def results_file(tmp_path_factory):
    """A (2, 3) scan with a 1-D I(q) with sigma and a cake I(chi, q) with sigma."""
    from conftest import write_scan

    from pyscatter import datasets
    from pyscatter.processes.base import run_on_file
    from pyscatter.processes.integration import AzimuthalIntegration

    path = tmp_path_factory.mktemp("export") / "scan.h5"
    write_scan(path, datasets.oriented_map((2, 3), rng=11))
    common = dict(unit="q_nm^-1", error_model="poisson", polarization_factor=0.99, progress=False)
    # a small memory budget: 2 positions per block, so a block can be marked incomplete
    run_on_file(path, AzimuthalIntegration, npt=80, max_mem_mb=1.0, **common)
    run_on_file(path, AzimuthalIntegration, npt=40, npt_azim=24, **common)
    return path


def _ds(path, index):
    return pyscatter.to_xarray(path, "AzimuthalIntegration", index=index)


def test_netcdf_round_trip(results_file, tmp_path):
    (out,) = export(results_file, "netcdf", tmp_path / "scan.nc", index=0)
    ref = _ds(results_file, 0)
    with xr.open_dataset(out) as back:
        back.load()
    # float32 stored as float32: bit-for-bit the values of to_xarray
    np.testing.assert_array_equal(back["Intensity"].values, ref["Intensity"].values)
    np.testing.assert_array_equal(back["Intensity_Sigma"].values, ref["Intensity_Sigma"].values)
    np.testing.assert_array_equal(back["q"].values, ref["q"].values)
    assert back["Intensity"].dims == ("Y", "X", "q")
    assert back["q"].attrs["units"] == "1/nm"
    assert back.attrs["parameters"] == ref.attrs["parameters"]
    assert back.attrs["position_dims"] == "Y,X"
    with pytest.raises(ExistingResultsError, match="exists"):
        export(results_file, "netcdf", out, index=0)


def test_netcdf_safe_attrs():
    safe = netcdf_safe_attrs(
        {
            "none": None,
            "flag": True,
            "n": 3,
            "x": 1.5,
            "text": "a",
            "nested": {"a": [1, "b"]},
            "numbers": [1, 2.5],
            "strings": ["a", "b"],
            "array": np.arange(3),
        }
    )
    assert "none" not in safe
    assert safe["flag"] == 1 and not isinstance(safe["flag"], bool)
    assert safe["nested"] == '{"a": [1, "b"]}'
    assert safe["strings"] == '["a", "b"]'
    np.testing.assert_array_equal(safe["numbers"], [1.0, 2.5])


def test_netcdf_accepts_what_xarray_refuses(tmp_path):
    from pyscatter.io.export import write_netcdf

    ds = xr.Dataset(
        {"Intensity": (("X", "q"), np.ones((2, 3), np.float32), {"units": "a.u.", "ok": True})},
        coords={"X": [0.0, 1.0], "q": [1.0, 2.0, 3.0]},
        attrs={"flag": False, "cfg": {"a": 1}, "nothing": None},
    )
    with pytest.raises((TypeError, ValueError)):  # what the export protects against
        ds.to_netcdf(tmp_path / "raw.nc")
    (out,) = write_netcdf(ds, tmp_path / "safe.nc")
    with xr.open_dataset(out) as back:
        assert back.attrs["flag"] == 0
        assert back.attrs["cfg"] == '{"a": 1}'
        assert back["Intensity"].attrs["ok"] == 1


def _read_csv(path):
    with open(path, newline="") as handle:
        rows = list(csv.reader(handle))
    return rows[0], rows[1:]


def test_csv_one_file_per_position(results_file, tmp_path):
    written = export(results_file, "csv", tmp_path / "csv", index=0)
    ref = _ds(results_file, 0)
    header, rows = _read_csv(tmp_path / "csv" / "index.csv")
    assert header == ["file", "index", "Y[um]", "X[um]"]
    assert len(rows) == 6 and len(written) == 7
    for row in rows:
        flat = int(row[1])
        iy, ix = np.unravel_index(flat, (2, 3))
        assert float(row[2]) == ref["Y"].values[iy] and float(row[3]) == ref["X"].values[ix]
        assert row[0] == f"Y={row[2].removesuffix('.0')}_X={row[3].removesuffix('.0')}.csv"
        head, data = _read_csv(tmp_path / "csv" / row[0])
        assert head == ["q[1/nm]", "I[a.u.]", "sigma[a.u.]"]
        data = np.array(data, dtype=np.float64)
        # q is float64 written with repr, I and sigma float32 written with 9 digits: exact
        np.testing.assert_array_equal(data[:, 0], ref["q"].values)
        intensity = ref["Intensity"].values[iy, ix]
        np.testing.assert_array_equal(data[:, 1].astype(np.float32), intensity)
        np.testing.assert_array_equal(
            data[:, 2].astype(np.float32), ref["Intensity_Sigma"].values[iy, ix]
        )


def test_csv_cake_long_format(results_file, tmp_path):
    export(results_file, "csv", tmp_path / "cake", index=1)
    ref = _ds(results_file, 1)
    head, data = _read_csv(tmp_path / "cake" / "Y=14_X=-15.csv")
    assert head == ["chi[deg]", "q[1/nm]", "I[a.u.]", "sigma[a.u.]"]
    data = np.array(data, dtype=np.float64)
    iy = int(np.flatnonzero(ref["Y"].values == 14)[0])
    ix = int(np.flatnonzero(ref["X"].values == -15)[0])
    chi, q = np.meshgrid(ref["chi"].values, ref["q"].values, indexing="ij")
    np.testing.assert_array_equal(data[:, 0], chi.ravel())
    np.testing.assert_array_equal(data[:, 1], q.ravel())
    np.testing.assert_array_equal(
        data[:, 2].astype(np.float32), ref["Intensity"].values[iy, ix].ravel()
    )


def _read_red2d(path):
    """SasView's IGOR/DAT 2-D Q-map reader (sasdata red2d_reader) rules, re-stated."""
    lines = path.read_text().split("\n")
    while lines and not lines[-1].strip():
        lines.pop()
    ver, started, line_num, col_num = 0, False, 0, 0
    for line in lines:
        line_num += 1
        if "Data columns" in line and "err(I)" in line:
            ver = 1
        if "ASCII data" in line:
            started = True
            continue
        if started and line.split():
            col_num = len(line.split())
            break
    assert started, "no 'ASCII data' line"
    data_lines = lines[line_num - 1 :]
    values = np.array(" ".join(data_lines).split(), dtype=np.float64)
    table = values.reshape(len(data_lines), col_num).T  # the reader's reshape must succeed
    return ver, table


def test_sasview_2d_qx_qy(results_file, tmp_path):
    written = export(results_file, "sasview", tmp_path / "sv", index=1)
    ref = _ds(results_file, 1)
    assert len(written) == 6
    chi = np.radians(ref["chi"].values)[:, None]
    q_a = ref["q"].values[None, :] / 10  # 1/nm → 1/Å
    qx, qy = (q_a * np.cos(chi)).ravel(), (q_a * np.sin(chi)).ravel()
    for iy in range(2):
        for ix in range(3):
            name = f"Y={ref['Y'].values[iy]:g}_X={ref['X'].values[ix]:g}.dat"
            ver, table = _read_red2d(tmp_path / "sv" / name)
            assert ver == 1 and table.shape[0] == 4
            intensity = ref["Intensity"].values[iy, ix].ravel().astype(np.float64)
            sigma = ref["Intensity_Sigma"].values[iy, ix].ravel().astype(np.float64)
            keep = np.isfinite(intensity) & ~((intensity == 0) & (sigma == 0))
            assert 0 < keep.sum() < keep.size  # the masked beamstop arm leaves empty bins
            # %.9g: 9 significant digits, exact for float32 I and 1e-9 relative for Qx, Qy
            np.testing.assert_allclose(table[0], qx[keep], rtol=1e-8, atol=1e-12)
            np.testing.assert_allclose(table[1], qy[keep], rtol=1e-8, atol=1e-12)
            np.testing.assert_array_equal(table[2].astype(np.float32), intensity[keep])
            np.testing.assert_array_equal(table[3].astype(np.float32), sigma[keep])
            np.testing.assert_allclose(
                np.hypot(table[0], table[1]),
                np.broadcast_to(q_a, chi.shape[:1] + q_a.shape[1:]).ravel()[keep],
                rtol=1e-8,
            )


def test_chi_fit2d_format(results_file, tmp_path):
    written = export(results_file, "chi", tmp_path / "chi", index=0)
    ref = _ds(results_file, 0)
    assert len(written) == 6
    path = tmp_path / "chi" / "Y=10_X=-20.chi"
    lines = path.read_text().splitlines()
    assert lines[0] == "Y=10_X=-20.chi"
    assert lines[1] == "Q (nm^-1)"
    assert lines[2] == "Intensity"
    assert int(lines[3]) == ref.sizes["q"] == len(lines) - 4
    assert lines[4].startswith(" ") and len(lines[4].split()) == 2
    table = np.loadtxt(path, skiprows=4)
    # '%.7e' keeps 8 significant digits: relative rounding <= 5e-8
    np.testing.assert_allclose(table[:, 0], ref["q"].values, rtol=5e-8)
    np.testing.assert_allclose(table[:, 1], ref["Intensity"].values[0, 0], rtol=5e-8)


def test_nxcansas_entries(results_file, tmp_path):
    (out,) = export(results_file, "nxcansas", tmp_path / "scan_nxcansas.h5", index=0)
    ref = _ds(results_file, 0)
    with h5py.File(out, "r") as h5:
        names = sorted(k for k in h5 if k.startswith("sasentry"))
        assert names == [f"sasentry{i:02d}" for i in range(1, 7)]
        assert h5.attrs["default"] == "sasentry01"
        for k, name in enumerate(names):
            entry = h5[name]
            assert entry.attrs["NX_class"] == "NXentry"
            assert entry.attrs["canSAS_class"] == "SASentry"
            assert entry.attrs["version"] == "1.1"
            assert entry["definition"][()].decode() == "NXcanSAS"
            assert "title" in entry and entry["run"][()].decode() == str(k)
            data = entry[entry.attrs["default"]]
            assert data.attrs["NX_class"] == "NXdata"
            assert data.attrs["canSAS_class"] == "SASdata"
            assert data.attrs["signal"] == "I"
            assert data.attrs["I_axes"] == "Q"
            assert data.attrs["axes"] == "Q"  # NXdata: the axis of the signal
            np.testing.assert_array_equal(data.attrs["Q_indices"], [0])
            assert data["Q"].attrs["units"] == "1/angstrom"
            assert data["I"].attrs["uncertainties"] == "Idev"
            assert data["Idev"].attrs["units"] == data["I"].attrs["units"] == "a.u."
            iy, ix = np.unravel_index(k, (2, 3))
            assert entry.attrs["position_Y"] == ref["Y"].values[iy]
            # 1/nm → 1/Å is a division by 10, done in float64
            np.testing.assert_allclose(data["Q"][()], ref["q"].values / 10, rtol=1e-15)
            np.testing.assert_array_equal(data["I"][()], ref["Intensity"].values[iy, ix])
            np.testing.assert_array_equal(data["Idev"][()], ref["Intensity_Sigma"].values[iy, ix])


@pytest.mark.parametrize(
    ("fmt", "index", "match"),
    [
        ("chi", 1, "needs 1-D"),
        ("nxcansas", 1, "needs 1-D"),
        ("xlsx", 0, "unsupported export format 'xlsx'; expected one of netcdf"),
    ],
)
def test_refused_shapes(results_file, tmp_path, fmt, index, match):
    with pytest.raises(InputError, match=match):
        export(results_file, fmt, tmp_path / "out", index=index)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("fmt", ["nxcansas", "sasview"])
def test_sasview_formats_need_q(tmp_path, results_file, fmt):
    from pyscatter.io.export import WRITERS

    ds = _ds(results_file, 0).rename({"q": "2theta"})
    ds["2theta"].attrs["units"] = "deg"
    with pytest.raises(InputError, match="needs q in 1/nm or 1/A.*'deg', which would be read as Q"):
        WRITERS[fmt](ds, tmp_path / "x")
    assert not (tmp_path / "x").exists()


def test_sasview_1d_loaded_by_sasview(results_file, tmp_path):
    """SasView's own loader (sasdata) reads every file as Q in 1/Å, I and dI of the results."""
    loader = pytest.importorskip("sasdata.dataloader.loader")
    written = export(results_file, "sasview", tmp_path / "sv1", index=0)
    ref = _ds(results_file, 0)
    assert len(written) == 6 and all(p.suffix == ".txt" for p in written)
    for path in written:
        iy = int(np.flatnonzero(ref["Y"].values == float(path.stem.split("_")[0][2:]))[0])
        ix = int(np.flatnonzero(ref["X"].values == float(path.stem.split("_")[1][2:]))[0])
        header = path.read_text().splitlines()[:2]
        assert header[1] == "# Q (1/A)  I (a.u.)  dI (a.u.)"
        (data,) = loader.Loader().load(str(path))
        intensity = ref["Intensity"].values[iy, ix].astype(np.float64)
        sigma = ref["Intensity_Sigma"].values[iy, ix].astype(np.float64)
        keep = np.isfinite(intensity) & ~((intensity == 0) & (sigma == 0))
        assert data.x.size == keep.sum() >= 5
        np.testing.assert_allclose(data.x, ref["q"].values[keep] / 10, rtol=1e-8)
        np.testing.assert_array_equal(data.y.astype(np.float32), intensity[keep])
        np.testing.assert_array_equal(data.dy.astype(np.float32), sigma[keep])


def test_nxcansas_loaded_by_sasview(results_file, tmp_path):
    loader = pytest.importorskip("sasdata.dataloader.loader")
    (out,) = export(results_file, "nxcansas", tmp_path / "scan_nxcansas.h5", index=0)
    ref = _ds(results_file, 0)
    entries = loader.Loader().load(str(out))
    assert len(entries) == 6
    for k, data in enumerate(entries):
        iy, ix = np.unravel_index(k, (2, 3))
        np.testing.assert_allclose(data.x, ref["q"].values / 10, rtol=1e-15)
        assert data._xunit == "A^{-1}"
        np.testing.assert_array_equal(data.y, ref["Intensity"].values[iy, ix])


def test_incomplete_positions_left_out(results_file, tmp_path, caplog):
    from pyscatter.io.record import FLAGS

    path = tmp_path / "partial.h5"
    shutil.copy(results_file, path)
    with h5py.File(path, "r+") as h5:
        group = h5[_ds(results_file, 0).attrs["group"]]
        flags = group[FLAGS]
        per_chunk = int(group.attrs["positions_per_chunk"])
        n_blocks = flags.shape[0]
        assert n_blocks > 1
        flags[-1] = 0  # the last block as if the job was killed before marking it complete
    n_missing = 6 - per_chunk * (n_blocks - 1)
    with caplog.at_level(logging.WARNING, logger="pyscatter.io.export"):
        written = export(path, "csv", tmp_path / "csv", index=0)
    assert len(written) == 1 + 6 - n_missing
    assert f"{n_missing} position(s) not computed yet" in caplog.text


def test_write_csv_needs_position_dims(results_file, tmp_path):
    ds = _ds(results_file, 0)
    assert ds.attrs["position_dims"] == "Y,X"  # to_xarray records them
    del ds.attrs["position_dims"]
    with pytest.raises(InputError, match="position_dims"):
        write_csv(ds, tmp_path / "x")


# --------------------------------------------------------------------------- failed fits


@pytest.fixture(scope="module")
def failed_fits_file(tmp_path_factory, results_file):
    """PeakFit of a window where the (2, 3) scan has no strong peak: fits fail at some positions."""
    from pyscatter.processes.base import run_on_file
    from pyscatter.processes.peaks import PeakFit

    path = tmp_path_factory.mktemp("failed") / "scan.h5"
    shutil.copy(results_file, path)
    q = _ds(path, 0)["q"].values
    run_on_file(path, PeakFit, peaks=[float(q[70])], window=0.5, sigma="poisson", progress=False)
    return path


def test_failed_fits_are_exported_with_their_status(failed_fits_file, tmp_path, caplog):
    from pyscatter.kernels.fitting import FitStatus

    ds = pyscatter.to_xarray(failed_fits_file, "PeakFit")
    status = ds["status"].values[..., 0]
    failed = np.isnan(ds["position"].values[..., 0])
    # the situation of the issue: every position computed, some fits failed (NaN values)
    assert ds.attrs["complete_positions"] == 6
    assert 0 < failed.sum() < 6 and (status[failed] >= FitStatus.NOT_CONVERGED).all()
    with caplog.at_level(logging.WARNING, logger="pyscatter.io.export"):
        written = export(failed_fits_file, "csv", tmp_path / "csv", process="PeakFit")
    assert "not computed" not in caplog.text
    assert len(written) == 1 + 6
    _, index = _read_csv(tmp_path / "csv" / "index.csv")
    for row in index:
        iy, ix = np.unravel_index(int(row[1]), (2, 3))
        head, data = _read_csv(tmp_path / "csv" / row[0])
        assert head[-2:] == ["status[code]", "status_meaning"]
        assert int(data[0][-2]) == status[iy, ix]
        assert data[0][-1] == FitStatus(status[iy, ix]).name
        position = float(data[0][head.index("position[1/nm]")])
        assert np.isnan(position) == failed[iy, ix]


def test_status_flags_in_xarray_and_netcdf(failed_fits_file, tmp_path):
    from pyscatter.kernels.fitting import FitStatus

    ds = pyscatter.to_xarray(failed_fits_file, "PeakFit")
    attrs = ds["status"].attrs
    assert attrs["flag_values"].dtype == ds["status"].dtype == np.int8
    np.testing.assert_array_equal(attrs["flag_values"], [-1] + [s.value for s in FitStatus])
    assert attrs["flag_meanings"].split() == ["NOT_COMPUTED"] + [s.name for s in FitStatus]
    (out,) = export(failed_fits_file, "netcdf", tmp_path / "fits.nc", process="PeakFit")
    with xr.open_dataset(out) as back:
        back.load()
    np.testing.assert_array_equal(back["status"].values, ds["status"].values)
    np.testing.assert_array_equal(back["status"].attrs["flag_values"], attrs["flag_values"])
    assert back["status"].attrs["flag_meanings"] == attrs["flag_meanings"]
    assert back["complete"].dtype == bool and bool(back["complete"].all())
    with h5py.File(out, "r") as h5:  # what netCDF tools (ncdump, CF checkers) see
        assert h5["status"].attrs["flag_meanings"].decode() == attrs["flag_meanings"]
        assert h5["status"].attrs["flag_values"].dtype == np.int8


def test_complete_coordinate_marks_interrupted_positions(results_file, tmp_path):
    from pyscatter.io.record import FLAGS

    path = tmp_path / "partial.h5"
    shutil.copy(results_file, path)
    with h5py.File(path, "r+") as h5:
        h5[_ds(results_file, 0).attrs["group"]][FLAGS][-1] = 0
    ds = _ds(path, 0)
    done = ds["complete"].values
    assert done.shape == (2, 3) and 0 < done.sum() < 6
    nan = np.isnan(ds["Intensity"].values).all(axis=-1)
    np.testing.assert_array_equal(done, ~nan)


def test_status_of_positions_not_computed(failed_fits_file, tmp_path):
    from pyscatter.io.record import FLAGS

    path = tmp_path / "partial.h5"
    shutil.copy(failed_fits_file, path)
    complete = pyscatter.to_xarray(path, "PeakFit")
    with h5py.File(path, "r+") as h5:
        h5[complete.attrs["group"]][FLAGS][-1] = 0
    ds = pyscatter.to_xarray(path, "PeakFit")
    done = ds["complete"].values
    assert not done.all()
    # not computed: -1 (NOT_COMPUTED), whatever the unverified block holds
    assert (ds["status"].values[~done] == -1).all()
    np.testing.assert_array_equal(ds["status"].values[done], complete["status"].values[done])


def test_two_theta_results_name_their_unit_and_are_not_sasview_q(results_file, tmp_path):
    from pyscatter.processes.base import run_on_file
    from pyscatter.processes.integration import AzimuthalIntegration

    path = tmp_path / "tth.h5"
    shutil.copy(results_file, path)
    run_on_file(path, AzimuthalIntegration, npt=30, unit="2th_deg", progress=False)
    ref = pyscatter.to_xarray(path, "AzimuthalIntegration")
    export(path, "csv", tmp_path / "csv")
    head, data = _read_csv(tmp_path / "csv" / "Y=10_X=-20.csv")
    assert head[0] == "2theta[deg]"
    np.testing.assert_array_equal(np.array(data, dtype=float)[:, 0], ref["2theta"].values)
    for fmt in ("sasview", "nxcansas"):
        with pytest.raises(InputError, match="'2theta' is in 'deg', which would be read as Q"):
            export(path, fmt, tmp_path / fmt)
        assert not (tmp_path / fmt).exists()
