"""Real Pilatus 1M data from Dioptas: CeO2 rings at CeO2's d-spacings; a 9-point map vs Dioptas' own .xy."""

from __future__ import annotations

import re

import numpy as np
import pyFAI
import pytest
from pyFAI.calibrant import get_calibrant
from scipy.signal import find_peaks

import pyscatter
from pyscatter.processes.base import run_on_file
from pyscatter.processes.integration import AzimuthalIntegration
from pyscatter.translators import translate

pytestmark = pytest.mark.realdata


def _ceo2_peaks(tmp_path, dioptas, flip):
    options = {"flip": flip} if flip else {}
    path = translate(
        [str(dioptas / "CeO2_Pilatus1M.tif")],
        tmp_path / f"ceo2_{flip}.h5",
        format="images",
        poni=str(dioptas / "CeO2_Pilatus1M.poni"),
        **options,
    )
    run_on_file(path, AzimuthalIntegration, npt=3000, unit="q_nm^-1", progress=False)
    ds = pyscatter.to_xarray(path, "AzimuthalIntegration")
    q, intensity = ds["q"].values, ds["Intensity"].values[0]
    peaks, _ = find_peaks(intensity, prominence=0.1 * intensity.max())
    return q[peaks]


def test_ceo2_rings_at_ceo2_d_spacings_with_the_flip(tmp_path, shared_data):
    dioptas = shared_data / "dioptas"
    calibrant = get_calibrant("CeO2")
    calibrant.wavelength = pyFAI.load(str(dioptas / "CeO2_Pilatus1M.poni")).wavelength
    q_ref = 2 * np.pi / np.asarray(calibrant.dspacing) * 10  # d in Å → q in 1/nm
    found = _ceo2_peaks(tmp_path, dioptas, "ud")
    assert len(found) >= 8
    nearest = q_ref[np.argmin(np.abs(q_ref[None, :] - found[:, None]), axis=1)]
    # README: with the flip the rings sit at CeO2 d-spacings within 0.2 %
    np.testing.assert_allclose(found, nearest, rtol=2e-3)
    # without it the rings are wavy: the sharp peaks break up and miss the table
    unflipped = _ceo2_peaks(tmp_path, dioptas, None)
    miss = np.abs(unflipped[:, None] - q_ref[None, :]).min(axis=1) / unflipped
    assert np.mean(miss > 2e-3) > 0.5


def test_dioptas_map_reproduces_dioptas_xy(tmp_path, shared_data):
    folder = shared_data / "dioptas" / "map"
    tifs = sorted(folder.glob("*.tif"))
    # the geometry Dioptas wrote in the .xy headers (see README.md in the reference data folder)
    geometry = {
        "dist": 0.284634930882,
        "poni1": 8.722e-2,
        "poni2": 8.342e-2,
        "rot1": -0.000251,
        "rot2": 0.000603,
        "rot3": 0.0,
        "wavelength": 3.344e-11,
        "detector": "Detector",
        "detector_config": {"pixel1": 172e-6, "pixel2": 172e-6, "max_shape": [1043, 981]},
    }
    path = translate(
        [str(t) for t in tifs], tmp_path / "map.h5", format="images", grid="Point=9", flip="ud"
    )
    xy = {
        int(re.search(r"map_(\d+)_", p.name).group(1)): np.loadtxt(p)
        for p in (folder / "xy").glob("*.xy")
    }
    two_theta = next(iter(xy.values()))[:, 0]
    step = np.diff(two_theta).mean()
    run_on_file(
        path,
        AzimuthalIntegration,
        poni=geometry,
        npt=two_theta.size,
        unit="2th_deg",
        radial_range=(two_theta[0] - step / 2, two_theta[-1] + step / 2),
        polarization_factor=0.99,
        progress=False,
    )
    ds = pyscatter.to_xarray(path, "AzimuthalIntegration")
    np.testing.assert_allclose(ds["2theta"].values, two_theta, atol=1e-5)
    ratios = []
    for k, point in enumerate(sorted(xy)):  # the translator orders files by point number
        reference = xy[point][:, 1]
        good = reference > 0
        ratios.append(ds["Intensity"].values[k][good] / reference[good])
    ratios = np.concatenate(ratios)
    # README: ratio to Dioptas median 1.0001, 1st–99th percentile 0.997–1.002
    assert abs(np.median(ratios) - 1) < 1e-3
    low, high = np.percentile(ratios, [1, 99])
    assert 0.996 < low and high < 1.003
