"""NeXus / Eiger geometry fields with one value per frame become a geometry series (issue 15).

Reference: the same fields written as single values (one file per frame), which the NeXus
translator has always read (:func:`pyscatter.translators.nexus_geometry.nexus_geometry`): the
geometry of every position of the series must equal the one of its frame alone, bit for bit,
and the wavelength of an energy field must be h c / E.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
from numpy.testing import assert_allclose

from pyscatter.errors import FileFormatError
from pyscatter.io.geometry_series import VARIES_ATTR, energy_to_wavelength, read_series
from pyscatter.translators import translate

sys.path.insert(0, str(Path(__file__).parent))
from nexus_files import write_nxsas  # noqa: E402

N = 3
FIELDS = {
    "distance": (1500.0, "mm"),
    "x_pixel_size": (172.0, "um"),
    "y_pixel_size": (150e-6, "m"),
    "beam_center_x": (21.5, "pixel"),
    "beam_center_y": (17.25, "pixel"),
}


def _write(path, replace, *, n=N):
    """An NXsas file whose fields in ``replace`` ({path in /entry/instrument: (values, unit)})
    are written as given (arrays: one value per frame)."""
    write_nxsas(path, FIELDS, n=n)
    with h5py.File(path, "r+") as h5:
        inst = h5["/entry/instrument"]
        for name, (values, unit) in replace.items():
            if name in inst:
                del inst[name]
            inst[name] = np.asarray(values, dtype=np.float64)
            inst[name].attrs["units"] = unit
    return path


def _geometry(path):
    with h5py.File(path, "r") as h5:
        raw = h5["Measurement_000/Channel_000/Raw_Data"]
        series = read_series(raw)
        base = json.loads(h5["Measurement_000"].attrs["geometry"])
        configs = [base] if series is None else [series.config(i) for i in range(raw.shape[0])]
        return series, configs, dict(h5["Measurement_000"].attrs)


def _single(tmp_path, replace, i):
    """The geometry of frame ``i`` alone: its values written as scalars."""
    one = {k: (np.asarray(v)[i] if np.ndim(v) else v, u) for k, (v, u) in replace.items()}
    src = _write(tmp_path / f"single_{i}.nxs", one, n=1)
    if "monochromator/energy" in replace:
        with h5py.File(src, "r+") as h5:
            del h5["/entry/instrument/monochromator/wavelength"]
    _, configs, _ = _geometry(translate(src, tmp_path / f"single_{i}.h5", format="nexus"))
    return configs[0]


CASES = {
    "monochromator energy (eV)": {"monochromator/energy": ([8000.0, 9500.0, 11000.0], "eV")},
    "beam incident_wavelength (nm)": {"beam/incident_wavelength": ([0.1, 0.12, 0.1], "nm")},
    "detector distance and centre": {
        "detector/distance": ([1.2, 1.5, 1.8], "m"),
        "detector/beam_center_x": ([21.5, 22.5, 23.5], "pixel"),
        "detector/beam_center_y": ([3.0, 3.0, 3.3], "mm"),
    },
    "Eiger photon_energy (eV)": {
        "detector/detectorSpecific/photon_energy": ([12000.0, 12100.0, 12200.0], "eV"),
    },
}


@pytest.mark.parametrize("case", list(CASES))
def test_per_frame_fields_become_a_series(tmp_path, case):
    replace = dict(CASES[case])
    src = _write(tmp_path / "series.nxs", replace)
    if "energy" in case or "Eiger" in case:  # the energy alone (no scalar wavelength beside)
        with h5py.File(src, "r+") as h5:
            del h5["/entry/instrument/monochromator/wavelength"]
    series, configs, attrs = _geometry(translate(src, tmp_path / "series.h5", format="nexus"))
    assert series is not None and series.n_positions == N
    assert "one value per frame" in attrs["geometry_source"]
    if case.startswith("Eiger"):  # alone, a single Eiger photon_energy gives no geometry
        for i, energy_ev in enumerate(replace["detector/detectorSpecific/photon_energy"][0]):
            assert_allclose(configs[i]["wavelength"], energy_to_wavelength(energy_ev / 1e3),
                            rtol=1e-14)  # fmt: skip
        return
    for i in range(N):
        assert configs[i] == _single(tmp_path, replace, i)
    if "energy" in case:
        energies = np.asarray(replace["monochromator/energy"][0]) / 1e3
        assert_allclose(series.values["wavelength"], energy_to_wavelength(energies), rtol=1e-14)
        assert series.keys == ["wavelength"]
    if "distance" in case:
        assert series.keys == ["dist", "poni1", "poni2"]


def test_a_scalar_stays_one_geometry(tmp_path):
    src = _write(tmp_path / "one.nxs", {"monochromator/energy": ([10.0], "keV")})
    with h5py.File(src, "r+") as h5:
        del h5["/entry/instrument/monochromator/wavelength"]
    out = translate(src, tmp_path / "one.h5", format="nexus")
    series, configs, attrs = _geometry(out)
    assert series is None and VARIES_ATTR not in attrs
    assert configs[0]["wavelength"] == pytest.approx(energy_to_wavelength(10.0), rel=1e-14)
    # one value per frame, all equal: one geometry too
    same = _write(tmp_path / "same.nxs", {"monochromator/energy": ([10.0] * N, "keV")})
    assert _geometry(translate(same, tmp_path / "same.h5", format="nexus"))[0] is None


def test_bad_per_frame_fields_are_refused(tmp_path):
    src = _write(tmp_path / "short.nxs", {"detector/distance": ([1.0, 2.0], "m")})
    with pytest.raises(FileFormatError, match="distance: 2 values for 3 frames"):
        translate(src, tmp_path / "short.h5", format="nexus")
    src = _write(tmp_path / "two.nxs", {
        "monochromator/wavelength": (1.0, "angstrom"),
        "detector/detectorSpecific/photon_energy": ([12000.0, 12100.0, 12200.0], "eV"),
    })  # fmt: skip
    with pytest.raises(FileFormatError, match="photon_energy changes from frame to frame"):
        translate(src, tmp_path / "two.h5", format="nexus")
    src = _write(tmp_path / "nounit.nxs", {"monochromator/energy": ([8.0, 9.0, 10.0], "")})
    with h5py.File(src, "r+") as h5:
        del h5["/entry/instrument/monochromator/wavelength"]
        del h5["/entry/instrument/monochromator/energy"].attrs["units"]
    with pytest.raises(FileFormatError, match="energy has no @units"):
        translate(src, tmp_path / "nounit.h5", format="nexus")
