"""XRF maps in the web view (issue 17, item 3): a position's spectrum with its fit and lines.

The position endpoint returns the MCA spectrum of the clicked position, the fast linear fit of
the latest XrfFit group recomputed for it, and the line markers; the page draws them. References:
the file's raw counts and stored areas (h5py), the kernel (design matrix × areas + background).
"""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest

from .conftest import SESSION

SHAPE = (4, 5)
ELEMENTS = ["Ca", "Fe", "Cu", "Zn"]


def make_xrf_file(root):
    from pyscatter.datasets_xrf import write_spec_mesh, xrf_map
    from pyscatter.processes.base import run_on_file
    from pyscatter.processes.xrf import XrfLinearFit
    from pyscatter.translators import translate

    m = xrf_map(SHAPE, seed=5)
    spec = write_spec_mesh(root / "xrf.spec", m)
    path = translate(spec, root / "xrf.h5", format="spec", scan=1)
    spec.unlink()
    run_on_file(path, XrfLinearFit, elements=ELEMENTS, excitation=17.0, progress=False)
    return path


@pytest.fixture()
def xrf_file(root):
    return make_xrf_file(root)


def test_position_has_the_spectrum_its_fit_and_the_lines(client, xrf_file):
    from pyscatter.io.usid import dims_of
    from pyscatter.kernels.xrf_lines import design_matrix
    from pyscatter.processes.xrf_worker import groups_and_response

    index = 7
    reply = client.get("/api/position", params={"file": "xrf.h5", "index": index}, headers=SESSION)
    assert reply.status_code == 200, reply.text
    got = reply.json()
    xrf = got["xrf"]
    assert got["iq"] is None and got["rings"] == []  # no scattering results in this file
    with h5py.File(xrf_file, "r") as h5:
        group = h5[xrf["group"]]
        params = json.loads(group.attrs["parameters"])
        raw = h5[str(group.attrs["source"])]
        counts = raw[index].astype(float)
        area = group["area"][index]
        names = json.loads(group.attrs["lines"])
        labels = [d.name for d in dims_of(raw, "Position")]
        where = dict(zip(labels, h5[raw.attrs["Position_Values"]][index].tolist(), strict=True))
    np.testing.assert_array_equal(np.array(xrf["counts"], dtype=float), counts)
    assert got["position"] == where and set(where) == {"samy", "samx"}
    # the areas of the position's own fit are the stored map's (no dead time recorded here)
    np.testing.assert_allclose([xrf["areas"][n] for n in names], area, rtol=1e-12)
    groups, response = groups_and_response(params)
    energy = np.array(xrf["energy"], dtype=float)
    peaks = design_matrix(energy, groups, response) @ area
    background = np.array([np.nan if v is None else v for v in xrf["background"]])
    model = np.array([np.nan if v is None else v for v in xrf["model"]])
    inside = np.isfinite(background)
    assert inside.sum() > 1000  # the fit range
    np.testing.assert_allclose(model[inside], (background + peaks)[inside], rtol=1e-9)
    assert np.isnan(model[~inside]).all()
    labels = [m["label"] for m in xrf["markers"]]
    assert {"Fe Kα", "Cu Kα", "Zn Kα", "Ca Kα"} <= set(labels), labels
    fe = next(m["energy"] for m in xrf["markers"] if m["label"] == "Fe Kα")
    assert fe == pytest.approx(6.40, abs=0.01)  # Fe Kα1/Kα2 weighted: 6.40 keV


def test_a_file_without_xrf_results_has_none(client):
    reply = client.get("/api/position", params={"file": "scan.h5", "index": 3}, headers=SESSION)
    assert reply.status_code == 200 and reply.json()["xrf"] is None
