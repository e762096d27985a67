"""The USID layer: what we write, pyUSID and sidpy read (pyUSID under numpy 2: tests/conftest.py)."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

import pyscatter  # noqa: F401  (HDF5 filters of compressed Raw_Data)
from pyscatter.errors import InputError
from pyscatter.io.usid import Dim, create_main, read_nd, write_ancillary


def test_pyusid_write_main_dataset_and_usidataset_work_under_numpy2(tmp_path):
    import pyUSID as usid  # noqa: N813 (pyUSID's own documented alias)

    assert int(np.__version__.split(".")[0]) >= 2
    data = np.arange(6 * 5, dtype=np.float32).reshape(6, 5)
    with h5py.File(tmp_path / "u.h5", "w") as h5:
        main = usid.hdf_utils.write_main_dataset(
            h5.create_group("g"),
            data,
            "Main",
            "I",
            "a.u.",
            [usid.Dimension("Y", "um", 2), usid.Dimension("X", "um", 3)],
            [usid.Dimension("q", "1/nm", np.linspace(0, 1, 5))],
            slow_to_fast=True,
        )
        nd = usid.USIDataset(main).get_n_dim_form()  # np.product inside pyUSID: conftest shim
        np.testing.assert_array_equal(nd, data.reshape(2, 3, 5))


def test_written_main_dataset_passes_check_if_main_and_reads_back(tmp_path):
    from pyUSID import USIDataset
    from pyUSID.io.hdf_utils import check_if_main

    rng = np.random.default_rng(0)
    data = rng.random((12, 7)).astype(np.float32)
    y = np.array([0.5, 1.0, 1.5])
    measured = np.stack(np.meshgrid(y, np.arange(4.0), indexing="ij"), -1).reshape(-1, 2)
    measured += rng.normal(0, 1e-3, measured.shape)  # motor read-backs keep their jitter
    with h5py.File(tmp_path / "w.h5", "w") as h5:
        g = h5.create_group("m")
        pos = write_ancillary(
            g,
            "Position_",
            [Dim("Y", "mm", y), Dim("X", "mm", np.arange(4.0))],
            spectroscopic=False,
            values=measured,
        )
        spec = write_ancillary(
            g, "Spectroscopic_", [Dim("q", "1/nm", np.linspace(0.1, 1, 7))], spectroscopic=True
        )
        main = create_main(
            g,
            "I",
            shape=data.shape,
            dtype=np.float32,
            quantity="Intensity",
            units="a.u.",
            position=pos,
            spectroscopic=spec,
            data=data,
            compression="bslz4",
            chunks=(1, 7),
        )
        assert check_if_main(main)
        assert pos[1].dtype == np.float64  # pyUSID's float32 would collapse fine motor steps
        np.testing.assert_array_equal(pos[1][()], measured)
        u = USIDataset(main)
        assert u.pos_dim_labels == ["Y", "X"] and u.spec_dim_labels == ["q"]
        nd, dims = read_nd(main)
        np.testing.assert_array_equal(nd, data.reshape(3, 4, 7))
        np.testing.assert_array_equal(u.get_n_dim_form(), nd)
        np.testing.assert_allclose(dims[0].values, y)


def test_sidpy_reads_results_lazily(scan_file, small_scan):
    from pyscatter.io.sidpy_view import to_sidpy
    from pyscatter.processes.base import run_on_file
    from pyscatter.processes.integration import AzimuthalIntegration

    summary = run_on_file(scan_file, AzimuthalIntegration, npt=25, progress=False)
    ds = pyscatter.to_xarray(scan_file, "AzimuthalIntegration")
    with h5py.File(scan_file, "r") as h5:
        view = to_sidpy(h5[summary.group]["Intensity"])
        assert view.shape == (3, 4, 25)
        assert [view._axes[k].name for k in range(3)] == ["Y", "X", "q"]
        np.testing.assert_array_equal(np.asarray(view.compute()), ds["Intensity"].values)
        raw = to_sidpy(h5["Measurement_000/Channel_000/Raw_Data"])
        assert raw.shape == (*small_scan.scan_shape, *small_scan.frame_shape)
        np.testing.assert_array_equal(np.asarray(raw[1, 2].compute()), small_scan.frames[1, 2])


def test_bad_compression_and_shapes_are_named(tmp_path):
    with h5py.File(tmp_path / "b.h5", "w") as h5:
        g = h5.create_group("m")
        pos = write_ancillary(g, "Position_", [Dim("X", "mm", np.arange(3.0))], spectroscopic=False)
        spec = write_ancillary(
            g, "Spectroscopic_", [Dim("q", "1/nm", np.arange(4.0))], spectroscopic=True
        )
        with pytest.raises(InputError, match="unsupported compression 'zip'"):
            create_main(
                g,
                "a",
                shape=(3, 4),
                dtype="f4",
                quantity="I",
                units="u",
                position=pos,
                spectroscopic=spec,
                compression="zip",
            )
        with pytest.raises(InputError, match=r"shape \(3, 5\)"):
            create_main(
                g,
                "b",
                shape=(3, 5),
                dtype="f4",
                quantity="I",
                units="u",
                position=pos,
                spectroscopic=spec,
            )


def test_a_long_one_dimensional_scan_is_written_and_read(tmp_path):
    """HDF5 caps an attribute at 64 KiB: a 10k-point axis must not go into one."""
    n = 10_000
    time_s = np.cumsum(np.full(n, 0.5)) + 1.7e9  # epoch timestamps 0.5 s apart
    with h5py.File(tmp_path / "long.h5", "w") as h5:
        g = h5.create_group("m")
        pos = write_ancillary(g, "Position_", [Dim("Time", "s", time_s)], spectroscopic=False)
        spec = write_ancillary(
            g, "Spectroscopic_", [Dim("Channel", "", np.arange(4.0))], spectroscopic=True
        )
        main = create_main(
            g,
            "I",
            shape=(n, 4),
            dtype="f4",
            quantity="I",
            units="u",
            position=pos,
            spectroscopic=spec,
            data=np.ones((n, 4), "f4"),
        )
        _nd, dims = read_nd(main)
        np.testing.assert_array_equal(dims[0].values, time_s)  # float64: 0.5 s steps survive
