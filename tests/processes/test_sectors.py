"""SectorIntegration against pyFAI's integrate1d_ng with azimuth ranges, frame by frame."""

from __future__ import annotations

import json
import shutil

import h5py
import numpy as np
import pytest
from conftest import write_scan

import pyscatter
from pyscatter import datasets
from pyscatter.errors import InputError
from pyscatter.processes.base import run_on_file
from pyscatter.processes.sectors import SectorIntegration, sector_layout
from pyscatter.processes.sectors_worker import sector_centers, sector_ranges

RAW = "Measurement_000/Channel_000/Raw_Data"
METHOD = ("bbox", "csr", "cython")


@pytest.fixture(scope="module")
def scan():
    return datasets.oriented_map((2, 3), rng=7, frame_shape=(96, 112))


@pytest.fixture(scope="module")
def base_file(tmp_path_factory, scan):
    return write_scan(tmp_path_factory.mktemp("sectors") / "scan.h5", scan)


@pytest.fixture()
def scan_file(tmp_path, base_file):
    return shutil.copy(base_file, tmp_path / "scan.h5")


@pytest.fixture(scope="module")
def six_sectors(tmp_path_factory, base_file):
    """6 sectors of 30° centred at -180 (crossing ±180°), -120, …, 120; read back as xarray."""
    path = shutil.copy(base_file, tmp_path_factory.mktemp("six") / "scan.h5")
    run_on_file(
        path,
        SectorIntegration,
        n_sectors=6,
        width_deg=30,
        npt=80,
        polarization_factor=0.99,
        progress=False,
    )
    return pyscatter.to_xarray(path, "SectorIntegration")


def _integrator(scan, disc_at_zero=False):
    ai = scan.integrator()
    ai.empty = np.nan  # the sectors' value for empty bins
    if disc_at_zero:
        ai.setChiDiscAtZero()  # chi in [0, 360): a range like (165, 195) is one range
    return ai


def _assert_close(got_i, got_s, ref_i, ref_s):
    empty = np.isnan(ref_i)
    np.testing.assert_array_equal(np.isnan(got_i), empty)
    # float32 sums in the batched kernel vs pyFAI's float64: 1e-5 relative
    np.testing.assert_allclose(got_i[~empty], ref_i[~empty], rtol=1e-5)
    np.testing.assert_allclose(got_s[~empty], ref_s[~empty], rtol=1e-5)


def test_sector_geometry():
    # issue 19: 0, 90, 180, -90 was not monotonic; pyFAI's chi interval is [-180, 180)
    np.testing.assert_array_equal(sector_centers(4, 0), [-180, -90, 0, 90])
    np.testing.assert_allclose(sector_centers(4, 45), [-135, -45, 45, 135])
    np.testing.assert_allclose(sector_centers(2, 180), [-180, 0])
    np.testing.assert_allclose(sector_centers(5, -1e-20), [-144, -72, 0, 72, 144], atol=1e-12)
    for n, offset in [(7, 13.0), (12, -100.0), (3, 540.0)]:
        centres = sector_centers(n, offset)
        assert np.all(np.diff(centres) > 0) and -180 <= centres[0] and centres[-1] < 180
    assert sector_ranges(0.0, 30.0) == [(-15.0, 15.0)]
    assert sector_ranges(180.0, 30.0) == [(165.0, 180.0), (-180.0, -165.0)]
    assert sector_ranges(-170.0, 30.0) == [(175.0, 180.0), (-180.0, -155.0)]
    assert sector_ranges(10.0, 360.0) is None


def test_sectors_equal_pyfai_per_position(six_sectors, scan):
    ds = six_sectors
    assert ds["Intensity"].dims == ("Y", "X", "sector", "q")
    np.testing.assert_allclose(ds["sector"].values, [-180, -120, -60, 0, 60, 120])
    assert ds["sector"].attrs["units"] == "deg" and ds["q"].attrs["units"] == "1/nm"
    params = json.loads(ds.attrs["parameters"])
    frames = scan.frames.reshape(-1, *scan.frame_shape)
    intensity = ds["Intensity"].values.reshape(len(frames), 6, 80)
    sigma = ds["Intensity_Sigma"].values.reshape(len(frames), 6, 80)
    for k, centre in enumerate(ds["sector"].values):
        crossing = centre == -180  # (165°, 195°) in pyFAI's other chi convention, [0, 360)
        ai = _integrator(scan, disc_at_zero=crossing)
        centre = centre + 360 if crossing else centre
        for i in (0, 4):
            ref = ai.integrate1d_ng(
                frames[i],
                80,
                unit="q_nm^-1",
                mask=scan.mask,
                method=METHOD,
                azimuth_range=(centre - 15, centre + 15),
                error_model="poisson",
                polarization_factor=0.99,
            )
            # the default radial range is pyFAI's own for the whole detector: the same bins
            np.testing.assert_allclose(ds["q"].values, ref.radial, rtol=1e-12)
            _assert_close(intensity[i, k], sigma[i, k], ref.intensity, ref.sigma)
    lo, hi = params["radial_range"]
    assert 0 < lo < ds["q"].values[0] and hi > ds["q"].values[-1] and not params["guard_bins"]


def test_oriented_ring_is_stronger_in_the_sector_of_the_director(six_sectors, scan):
    ds = six_sectors
    ring = np.argmin(np.abs(ds["q"].values - 0.45))
    centres = ds["sector"].values
    for iy, ix in [(0, 0), (1, 2)]:
        if scan.kappa[iy, ix] < 5:
            continue
        director = scan.director_deg[iy, ix]
        off = np.abs((centres - director + 90) % 180 - 90)  # angle to the director, mod 180
        values = ds["Intensity"].values[iy, ix, :, ring]
        # exp(κ cos²): the sector nearest the director holds the most, the farthest the least
        assert np.argmax(values) in np.flatnonzero(off == off.min())
        assert np.argmin(values) in np.flatnonzero(off == off.max())


def test_wide_sector_and_radial_range_equal_pyfai_sums(scan_file, scan):
    # 300° centred at 90°: [-60°, 240°] crosses ±180°, split in (-60, 180) + (-180, -120)
    run_on_file(
        scan_file,
        SectorIntegration,
        n_sectors=1,
        width_deg=300,
        offset_deg=90,
        npt=40,
        radial_range=(0.3, 1.5),
        progress=False,
    )
    ds = pyscatter.to_xarray(scan_file, "SectorIntegration")
    ai = _integrator(scan)
    step = 1.2 / 40
    frame = scan.frames[1, 1]
    parts = [
        ai.integrate1d_ng(
            frame,
            42,
            unit="q_nm^-1",
            mask=scan.mask,
            method=METHOD,
            error_model="poisson",
            radial_range=(0.3 - step, 1.5 + step),  # one guard bin each side, dropped below
            azimuth_range=rng,
        )
        for rng in [(-60, 180), (-180, -120)]
    ]
    signal = sum(p.sum_signal for p in parts)[1:-1]
    norm = sum(p.sum_normalization for p in parts)[1:-1]
    variance = sum(p.sum_variance for p in parts)[1:-1]
    np.testing.assert_allclose(ds["q"].values, parts[0].radial[1:-1], rtol=1e-6)
    with np.errstate(invalid="ignore", divide="ignore"):
        ref_i = np.where(norm > 0, signal / norm, np.nan)
        ref_s = np.where(norm > 0, np.sqrt(variance) / norm, np.nan)
    # [-60°, 240°] contains both 0° and 180°: neither of pyFAI's chi conventions holds it as
    # one range, the union of the two parts is the reference
    _assert_close(
        ds["Intensity"].values[1, 1, 0], ds["Intensity_Sigma"].values[1, 1, 0], ref_i, ref_s
    )
    # without the guard bins pyFAI's first bin also takes the pixels of [0.3 - step, 0.3)
    plain = ai.integrate1d_ng(
        frame,
        40,
        unit="q_nm^-1",
        mask=scan.mask,
        method=METHOD,
        radial_range=(0.3, 1.5),
        azimuth_range=(-60, 180),
    )
    assert plain.count[0] > 1.5 * parts[0].count[1]


def test_full_circle_equals_integrate1d(scan_file, scan):
    run_on_file(scan_file, SectorIntegration, n_sectors=1, offset_deg=33, npt=60, progress=False)
    ds = pyscatter.to_xarray(scan_file, "SectorIntegration")
    params = json.loads(ds.attrs["parameters"])
    assert params["width_deg"] == 360 and params["sectors"][0]["ranges"] is None
    ai = _integrator(scan)
    ref = ai.integrate1d_ng(
        scan.frames[0, 2], 60, unit="q_nm^-1", mask=scan.mask, method=METHOD, error_model="poisson"
    )
    _assert_close(
        ds["Intensity"].values[0, 2, 0],
        ds["Intensity_Sigma"].values[0, 2, 0],
        ref.intensity,
        ref.sigma,
    )


def test_reuse_and_001(scan_file):
    kw = dict(n_sectors=4, npt=50, progress=False)
    first = run_on_file(scan_file, SectorIntegration, **kw)
    assert first.group.endswith("Raw_Data-SectorIntegration_000") and first.computed_positions == 6
    again = run_on_file(scan_file, SectorIntegration, **kw)
    assert again.reused and again.group == first.group
    other = run_on_file(scan_file, SectorIntegration, offset_deg=45, **kw)
    assert other.group.endswith("_001") and other.computed_positions == 6
    with h5py.File(scan_file, "r") as h5:
        params = json.loads(h5[other.group].attrs["parameters"])
        assert params["width_deg"] == 90 and [s["center"] for s in params["sectors"]] == [
            -135,
            -45,
            45,
            135,
        ]


def test_bad_parameters_are_named(scan_file):
    for kw, match in [
        ({"n_sectors": 0}, "n_sectors"),
        ({"n_sectors": "four"}, "n_sectors"),
        ({"n_sectors": 2.5}, "n_sectors"),
        ({"width_deg": 0}, "width_deg"),
        ({"width_deg": 400}, "width_deg"),
        ({"npt": 0}, "npt"),
        ({"unit": "chi_deg"}, "unit"),
        ({"radial_range": (1.0, 0.5)}, "radial_range"),
        ({"method": ("no", "histogram", "cython")}, "method"),
        ({"polarization_factor": 2}, "polarization_factor"),
        ({"offset_deg": float("nan")}, "offset_deg"),
        ({"centers_deg": [10, 20]}, "centers_deg needs width_deg"),
        ({"centers_deg": [10, 370], "width_deg": 5}, "share a centre"),
        ({"centers_deg": [10, float("inf")], "width_deg": 5}, "centers_deg"),
        ({"centers_deg": [], "width_deg": 5}, "centers_deg"),
        ({"n_sectors": 4, "centers_deg": [10], "width_deg": 5}, "one of n_sectors"),
        ({"ranges_deg": [(30, 10)]}, "start < stop"),
        ({"ranges_deg": [(0, 400)]}, "start < stop"),
        ({"ranges_deg": [(0, 10, 20)]}, "pairs"),
        ({"ranges_deg": [(0, 10)], "width_deg": 10}, "width_deg does not apply"),
        ({"centers_deg": [10], "width_deg": 10, "offset_deg": 5}, "offset_deg applies"),
    ]:
        with pytest.raises(InputError, match=match):
            run_on_file(scan_file, SectorIntegration, progress=False, **kw)


def test_sector_layout_of_free_angles():
    # centres anywhere on the circle, sorted into [-180, 180)
    layout = sector_layout(centers_deg=[100, 10, 190, 45], width_deg=20)
    assert [s["center"] for s in layout] == [-170, 10, 45, 100]
    assert layout[0]["ranges"] == [[-180, -160]] and {s["width"] for s in layout} == {20}
    # ranges: the centre is the middle; one crossing ±180° is split in two pyFAI ranges
    layout = sector_layout(ranges_deg=[(170, 200), (-30, 10), (60, 75)])
    assert [s["center"] for s in layout] == [-175, -10, 67.5]
    assert [s["width"] for s in layout] == [30, 40, 15]
    assert layout[0]["ranges"] == [[170, 180], [-180, -160]]
    assert layout[2]["ranges"] == [[60, 75]]


@pytest.mark.parametrize(
    ("kw", "references"),
    [
        # (centre, pyFAI azimuth range, chi discontinuity at 0) of each sector, in order
        (
            {"centers_deg": [100, 10, -170, 45], "width_deg": 20},
            [((-180, -160), False), ((0, 20), False), ((35, 55), False), ((90, 110), False)],
        ),
        (
            {"ranges_deg": [(170, 200), (-30, 10), (60, 75)]},
            [((170, 200), True), ((-30, 10), False), ((60, 75), False)],
        ),
    ],
)
def test_free_sectors_equal_pyfai_azimuth_ranges(scan_file, scan, kw, references):
    run_on_file(scan_file, SectorIntegration, npt=70, progress=False, **kw)
    ds = pyscatter.to_xarray(scan_file, "SectorIntegration")
    assert ds["Intensity"].shape[2] == len(references)
    assert np.all(np.diff(ds["sector"].values) > 0)
    frames = scan.frames.reshape(-1, *scan.frame_shape)
    intensity = ds["Intensity"].values.reshape(len(frames), len(references), 70)
    sigma = ds["Intensity_Sigma"].values.reshape(len(frames), len(references), 70)
    for k, (azimuth_range, disc_at_zero) in enumerate(references):
        ai = _integrator(scan, disc_at_zero=disc_at_zero)
        for i in (1, 5):
            ref = ai.integrate1d(
                frames[i],
                70,
                unit="q_nm^-1",
                mask=scan.mask,
                method=METHOD,
                azimuth_range=azimuth_range,
                error_model="poisson",
            )
            np.testing.assert_allclose(ds["q"].values, ref.radial, rtol=1e-12)
            _assert_close(intensity[i, k], sigma[i, k], ref.intensity, ref.sigma)


def test_sectors_command_with_free_angles(scan_file, capsys):
    from pyscatter.cli import main

    base = ["sectors", str(scan_file), "--npt", "40", "--no-progress"]
    assert main([*base, "--centers=100,10,-170,45", "--width", "20"]) == 0
    assert main([*base, "--ranges=170:200,-30:10,60:75"]) == 0
    with h5py.File(scan_file, "r") as h5:
        raw = h5[RAW].parent
        groups = sorted(k for k in raw if k.startswith("Raw_Data-SectorIntegration_"))
        layouts = [json.loads(raw[g].attrs["parameters"])["sectors"] for g in groups]
    assert [s["center"] for s in layouts[0]] == [-170, 10, 45, 100]
    assert [s["center"] for s in layouts[1]] == [-175, -10, 67.5]
    assert layouts[1][0]["ranges"] == [[170, 180], [-180, -160]]
    capsys.readouterr()
    for extra, message in [
        (["--centers=10,x", "--width", "5"], "--centers: expected angles"),
        (["--ranges=10-20"], "--ranges: expected START:STOP"),
        (["--centers=10", "--n-sectors", "4", "--width", "5"], "not allowed with"),
        (["--centers=10,20"], "centers_deg needs width_deg"),
    ]:
        code = _exit_code(main, [*base, *extra])
        assert code == 2, extra
        assert message in capsys.readouterr().err, extra


def _exit_code(main, argv):
    try:
        return main(argv)
    except SystemExit as exc:  # argparse's own errors
        return exc.code
