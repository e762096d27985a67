"""The data endpoints against the numbers read with h5py from files the processes wrote."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from .conftest import SESSION

FILE = "scan.h5"


def groups(client):
    reply = client.get("/api/results", params={"file": FILE}, headers=SESSION)
    assert reply.status_code == 200, reply.text
    return {g["process"]: g for g in reply.json()["groups"]}


def verified(group):
    from pyscatter.io.record import verified_positions

    return verified_positions(group)


def test_files_and_results(client, root):
    files = client.get("/api/files", headers=SESSION).json()
    assert [f["path"] for f in files["files"]] == [FILE]
    found = groups(client)
    assert set(found) == {
        "AzimuthalIntegration",
        "AzimuthalProfiles",
        "ProfileFit",
        "OrderParameter",
    }
    with h5py.File(root / FILE, "r") as h5:
        for process, entry in found.items():
            group = h5[entry["path"]]
            assert str(group.attrs["process"]) == process
            assert entry["n_positions"] == int(group.attrs["n_positions"]) == 80
            assert entry["complete_positions"] == int(verified(group).sum())
            names = {d["name"] for d in entry["datasets"]}
            assert "data" not in names and names <= set(group)
    order = found["OrderParameter"]["datasets"]
    s = next(d for d in order if d["name"] == "S")
    assert s["dims"] == ["Y", "X", "ring"] and s["shape"] == [8, 10, 2] and s["position_dims"] == 2


@pytest.mark.parametrize(("quantity", "index"), [("S", 0), ("S", 1), ("director", 1)])
def test_map_of_order_parameter(client, root, quantity, index):
    path = groups(client)["OrderParameter"]["path"]
    reply = client.get(
        "/api/map",
        params={"file": FILE, "group": path, "quantity": quantity, "index": index},
        headers=SESSION,
    )
    assert reply.status_code == 200, reply.text
    got = reply.json()
    with h5py.File(root / FILE, "r") as h5:
        expected = h5[path][quantity][:, index].astype(np.float64)
        y, x = h5[path]["Y"][()], h5[path]["X"][()]
    values = np.array([np.nan if v is None else v for v in got["values"]])
    np.testing.assert_array_equal(values, expected)
    assert [d["name"] for d in got["dims"]] == ["Y", "X"]
    np.testing.assert_array_equal(got["dims"][0]["values"], y)
    np.testing.assert_array_equal(got["dims"][1]["values"], x)
    assert got["n_positions"] == got["complete_positions"] == 80


def test_map_of_integrated_intensity(client, root):
    path = groups(client)["AzimuthalIntegration"]["path"]
    params = {"file": FILE, "group": path, "quantity": "Intensity", "q_min": 0.4, "q_max": 0.9}
    got = client.get("/api/map", params=params, headers=SESSION).json()
    with h5py.File(root / FILE, "r") as h5:
        intensity = h5[path]["Intensity"][()].astype(np.float64)
        q = h5[path]["q"][()]
    inside = (q >= 0.4) & (q <= 0.9)
    expected = np.trapezoid(intensity[:, inside], q[inside], axis=1)
    np.testing.assert_allclose(got["values"], expected, rtol=1e-12)
    bad = client.get("/api/map", params={**params, "q_min": 0.9, "q_max": 0.4}, headers=SESSION)
    assert bad.status_code == 422 and "q_min" in bad.json()["error"]


def test_map_masks_positions_not_verified(client, root):
    """A results group whose later chunks are not flagged (a run still going) maps them to null."""
    path = groups(client)["AzimuthalIntegration"]["path"]
    with h5py.File(root / FILE, "r+") as h5:
        flags = h5[path]["completed_chunks"]
        flags[...] = 0  # nothing done yet: every position must read as null
    got = client.get(
        "/api/map", params={"file": FILE, "group": path, "quantity": "Intensity"}, headers=SESSION
    ).json()
    assert got["values"] == [None] * 80 and got["complete"] == [False] * 80
    assert got["complete_positions"] == 0


def test_position_iq_and_profiles_with_fit(client, root):
    found = groups(client)
    index = 37
    got = client.get("/api/position", params={"file": FILE, "index": index}, headers=SESSION)
    assert got.status_code == 200, got.text
    got = got.json()
    with h5py.File(root / FILE, "r") as h5:
        ig = h5[found["AzimuthalIntegration"]["path"]]
        pg = h5[found["AzimuthalProfiles"]["path"]]
        fg = h5[found["ProfileFit"]["path"]]
        np.testing.assert_array_equal(got["iq"]["x"], ig["q"][()])
        np.testing.assert_array_equal(got["iq"]["y"], ig["Intensity"][index].astype(float))
        np.testing.assert_array_equal(
            got["iq"]["sigma"], ig["Intensity_Sigma"][index].astype(float)
        )
        chi = pg["chi"][()]
        profiles = pg["Intensity"][index].reshape(2, chi.size)
        for k, ring in enumerate(got["rings"]):
            assert ring["q"] == pg["ring"][k]
            y = np.array([np.nan if v is None else v for v in ring["profile"]["y"]])
            np.testing.assert_array_equal(y, profiles[k])
            p = {n: fg[n][index, k] for n in ("I", "kappa", "x0", "a", "b")}
            # the Maier-Saupe curve, written out: I exp(kappa cos^2(chi - x0)) + a + b chi
            curve = p["I"] * np.exp(p["kappa"] * np.cos(np.radians(chi - p["x0"])) ** 2)
            curve += p["a"] + p["b"] * chi
            np.testing.assert_allclose(ring["fit"], curve, rtol=1e-9)
            assert ring["fit_status"] == fg["status"][index, k]
            assert ring["fit_parameters"]["kappa"] == p["kappa"]
    assert got["fit_model"] == "maier_saupe"
    assert set(got["position"]) == {"Y", "X"}


def test_frame_downsampled_with_q_from_the_geometry(client, root):
    import pyFAI

    index = 12
    got = client.get(
        "/api/frame", params={"file": FILE, "index": index, "max_size": 64}, headers=SESSION
    ).json()
    with h5py.File(root / FILE, "r") as h5:
        raw = h5["/Measurement_000/Channel_000/Raw_Data"]
        frame = raw[index].reshape(192, 224).astype(float)
        mask = h5["/Measurement_000/Channel_000/Mask"][()]
    frame[mask != 0] = np.nan
    assert got["shape"] == [192, 224] and got["step"] == 4 and got["measured"]
    blocks = frame.reshape(48, 4, 56, 4)
    with np.errstate(invalid="ignore"):  # blocks fully masked: NaN, as the service sends null
        expected = np.nansum(blocks, axis=(1, 3)) / np.isfinite(blocks).sum(axis=(1, 3))
    image = np.array([[np.nan if v is None else v for v in row] for row in got["image"]])
    np.testing.assert_allclose(image, expected, rtol=1e-12)
    ai = pyFAI.load(str(root / "demo.poni"))
    q = ai.array_from_unit(shape=(192, 224), typ="center", unit="q_nm^-1")
    np.testing.assert_allclose(got["q"], q.reshape(48, 4, 56, 4).mean(axis=(1, 3)), rtol=1e-6)
    assert got["rings"] == [0.45, 0.8]


def test_one_dimensional_series(make_client, root):
    """A field series (one position dim) maps to one value per field value."""
    from pyscatter import datasets
    from pyscatter.processes.base import run_on_file
    from pyscatter.processes.integration import AzimuthalIntegration
    from pyscatter.translators import translate

    scan = datasets.make_scan((5,), dims=("Field",), frame_shape=(64, 64))
    files = scan.write_images(root / "series")
    path = root / "series.h5"
    translate(
        [str(f) for f in files],
        path,
        format="images",
        positions=str(root / "series" / "positions.csv"),
        poni=str(scan.write_poni(root / "series.poni")),
    )
    run_on_file(path, AzimuthalIntegration, npt=50, progress=False)
    client = make_client()
    found = client.get("/api/results", params={"file": "series.h5"}, headers=SESSION).json()
    group = found["groups"][0]["path"]
    got = client.get(
        "/api/map",
        params={"file": "series.h5", "group": group, "quantity": "Intensity", "index": 10},
        headers=SESSION,
    ).json()
    assert [d["name"] for d in got["dims"]] == ["Field"]
    with h5py.File(path, "r") as h5:
        np.testing.assert_array_equal(got["values"], h5[group]["Intensity"][:, 10].astype(float))
        np.testing.assert_array_equal(got["dims"][0]["values"], h5[group]["Field"][()])


def test_every_endpoint_reads_its_file_alone(client, root, monkeypatch):
    """One reader at a time: h5py 3.16 + HDF5 2.0 can corrupt memory when threads read through
    separate handles at once (h5py/h5py#2920; the service died with "double free or corruption"
    in the browser tests). Each file a handler opens is opened and read under the lock, and
    concurrent requests never hold two files open."""
    import threading

    import pyscatter
    from pyscatter.service import data

    real, held, open_now, most = pyscatter.open, [], [0], [0]
    count = threading.Lock()

    class Counted:
        def __init__(self, f):
            self.f = f

        def __enter__(self):
            with count:
                open_now[0] += 1
                most[0] = max(most[0], open_now[0])
            return self.f.__enter__()

        def __exit__(self, *exc):
            with count:
                open_now[0] -= 1
            return self.f.__exit__(*exc)

    def opened(path):
        held.append(data.READS.locked())
        return Counted(real(path))

    monkeypatch.setattr(pyscatter, "open", opened)
    requests = [
        ("/api/results", {"file": FILE}),
        ("/api/frame", {"file": FILE, "index": 3, "max_size": 64}),
        ("/api/position", {"file": FILE, "index": 5}),
    ]
    replies = []

    def ask(path, params):
        replies.append(client.get(path, params=params, headers=SESSION).status_code)

    threads = [threading.Thread(target=ask, args=r) for r in requests * 4]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert replies == [200] * len(threads)
    assert len(held) >= len(threads) and all(held)
    assert most[0] == 1
    assert not data.READS.locked()
