"""The synthetic XRF map: its truth, dead time and counts, and its SPEC mesh file."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from pyscatter.datasets_xrf import write_spec_mesh, xrf_map
from pyscatter.errors import InputError
from pyscatter.kernels.xrf import dead_time_factor
from pyscatter.kernels.xrf_lines import DetectorResponse, design_matrix


def test_shapes_truth_and_seed():
    m = xrf_map((6, 7), n_channels=512, gain_keV=0.025, seed=4)
    assert m.spectra.shape == (6, 7, 512) and m.spectra.dtype == np.uint32
    assert m.names == ["Ca_K", "Fe_K", "Cu_K", "Zn_K"] == [g.name for g in m.groups]
    assert_allclose(m.energy_keV, 0.025 * np.arange(512), rtol=1e-15)
    assert m.calibration == (0.0, 0.025, 0.0)
    for name, area in m.truth.items():
        assert area.shape == (6, 7)
        assert area.mean() == pytest.approx(20_000.0, rel=0.01), name  # monitor mean 1 (~1 %)
        assert area.std() / area.mean() > 0.1, name  # spatial structure
    again = xrf_map((6, 7), n_channels=512, gain_keV=0.025, seed=4)
    assert_array_equal(again.spectra, m.spectra)
    assert not np.array_equal(
        xrf_map((6, 7), n_channels=512, gain_keV=0.025, seed=5).spectra, m.spectra
    )


def test_dead_time_is_exact_and_counts_are_thinned():
    m = xrf_map((8, 9), n_channels=1024, gain_keV=0.02, dead_time_percent=(5.0, 40.0), seed=1)
    assert m.dead_time_percent.min() == pytest.approx(5.0)
    assert m.dead_time_percent.max() == pytest.approx(40.0)
    factor = dead_time_factor(live_time=m.live_time, real_time=m.real_time)
    assert_allclose(factor, dead_time_factor(percent=m.dead_time_percent), rtol=1e-14)
    # the total counts are Poisson draws of the true spectrum times live / real
    a = design_matrix(m.energy_keV, m.groups, m.response)
    areas = np.stack([m.truth[n] for n in m.names], axis=-1)
    expected = (areas @ a.T + m.background * (m.monitor / m.monitor.mean())[..., None]) / factor[
        ..., None
    ]
    total = m.spectra.sum(dtype=np.float64)
    assert abs(total - expected.sum()) < 5 * np.sqrt(expected.sum())
    per_point = m.spectra.sum(axis=-1, dtype=np.float64)
    z = (per_point - expected.sum(axis=-1)) / np.sqrt(expected.sum(axis=-1))
    assert abs(z.mean()) < 0.5 and 0.7 < z.std() < 1.3


def test_options_and_bad_input():
    m = xrf_map(
        (2, 3),
        n_channels=256,
        gain_keV=0.05,
        elements=("Fe", "Pb"),
        mean_counts=[1e3, 2e3, 3e3],
        response=DetectorResponse(escape=True),
        seed=0,
    )
    assert m.names == ["Fe_K", "Pb_L", "Pb_M"] and m.response.escape
    with pytest.raises(InputError, match="mean_counts"):
        xrf_map((2, 3), n_channels=256, mean_counts=[1.0, 2.0])
    with pytest.raises(InputError, match="dead_time_percent"):
        xrf_map((2, 3), n_channels=256, dead_time_percent=(10.0, 100.0))
    with pytest.raises(InputError, match="shape"):
        xrf_map((0, 3), n_channels=256)
    with pytest.raises(InputError, match="unknown element 'Qq'"):
        xrf_map((2, 3), n_channels=256, elements=("Qq",))


def test_spec_mesh_read_by_silx_and_the_translator(tmp_path):
    from silx.io.specfile import SpecFile

    from pyscatter.io.usid import main_datasets
    from pyscatter.translators import translate

    m = xrf_map((3, 4), n_channels=300, gain_keV=0.04, offset_keV=0.01, seed=2)
    path = write_spec_mesh(tmp_path / "xrf.spec", m, scan_number=3)
    sf = SpecFile(str(path))
    try:
        scan = sf["3.1"]
        assert scan.labels == [
            "samx",
            "samy",
            "livetime",
            "realtime",
            "dt_percent",
            "I0",
            "Seconds",
        ]
        assert len(scan.mca) == 12
        assert_array_equal(np.asarray(scan.mca[7]), m.spectra.reshape(12, 300)[7])
        assert_allclose(scan.mca.calibration[0], [0.01, 0.04, 0.0])
        assert scan.mca_header_dict["CTIME"].split() == ["1", "0.98", "1"]
        assert_allclose(
            scan.data_column_by_name("dt_percent"), m.dead_time_percent.ravel(), rtol=1e-9
        )
        assert_allclose(scan.data_column_by_name("I0"), m.monitor.ravel(), rtol=1e-9)
    finally:
        sf.close()
    out = translate(path, tmp_path / "xrf.h5", format="spec", scan=3, energy_unit="keV")
    import h5py

    with h5py.File(out, "r") as f:
        (main,) = main_datasets(f)
        assert main.shape == (12, 300)
        assert_array_equal(main[()], m.spectra.reshape(12, 300))
        assert_allclose(f[main.parent.name]["Spectroscopic_Values"][0], m.energy_keV, rtol=1e-12)
        pos = f[main.parent.name]["Position_Values"][()]
        assert_allclose(pos[:, 1], np.tile(np.arange(4.0), 3))  # samx fastest
        assert_allclose(pos[:, 0], np.repeat(np.arange(3.0), 4))
        live = f[main.parent.name]["Counters/livetime"][()]
        assert_allclose(live, m.live_time.ravel(), rtol=1e-9)
