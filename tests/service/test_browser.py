"""The web page in a real browser: headless Debian ``chromium`` driven by Playwright.

The service runs as ``pyscatter serve`` in a subprocess on a free loopback port. Skipped, with
the reason, where Playwright or the system chromium is missing (``.ci/run`` installs chromium).
Set ``PYSCATTER_SERVICE_SCREENSHOT=docs/_static/service.png`` to refresh the docs' screenshot.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlencode

import h5py
import numpy as np
import pytest

from .conftest import SERVER_OUTPUT, serve

pytest.importorskip(
    "playwright.sync_api", reason="Playwright for Python is not installed (pip install playwright)"
)
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None,
    reason="no system chromium on PATH (Debian package `chromium`; .ci/run installs it)",
)

LIVE_NPT = 200  # the live-like file's integration: blocks of 4 positions (max_mem_mb=2)


@pytest.fixture(scope="module")
def browser_root(tmp_path_factory, served):
    """The served demo scan, and live.h5: the same scan with an integration in blocks of 4
    whose second half is not flagged done yet (as in a run still going)."""
    from pyscatter.processes.base import run_on_file
    from pyscatter.processes.integration import AzimuthalIntegration

    root = tmp_path_factory.mktemp("browser") / "root"
    shutil.copytree(served, root)
    shutil.copy(root / "scan.h5", root / "live.h5")
    summary = run_on_file(
        root / "live.h5", AzimuthalIntegration, npt=LIVE_NPT, max_mem_mb=2, progress=False
    )
    with h5py.File(root / "live.h5", "r+") as h5:
        flags = h5[summary.group]["completed_chunks"]
        assert flags.shape[0] > 2
        flags[flags.shape[0] // 2 :] = 0
    return root, summary.group


@pytest.fixture(scope="module")
def server(browser_root, tmp_path_factory):
    """``pyscatter serve`` on a free loopback port; yields its session URL."""
    root, _group = browser_root
    secret = tmp_path_factory.mktemp("secret") / "secret"
    with serve(root, secret) as url:
        yield url


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield chromium
        chromium.close()


@pytest.fixture()
def page(browser, server):
    context = browser.new_context(viewport={"width": 1500, "height": 950})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda err: errors.append(str(err)))
    page.goto(server)  # the token moves into the cookie; redirected to /
    assert page.url == server.split("?")[0]
    page.base = server.split("?")[0]
    yield page
    context.close()
    assert not errors, errors


def wait_js(page, expression, limit=30.0):
    """Poll a JS expression until truthy. (Playwright's wait_for_function evaluates strings
    in the page, which the page's Content-Security-Policy forbids: no eval.)"""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        value = page.evaluate(expression)
        if value:
            return value
        page.wait_for_timeout(100)
    seen = page.evaluate(
        "JSON.stringify({error: document.getElementById('error').textContent,"
        " selected: window.pyscatter && window.pyscatter.selected,"
        " position: window.pyscatter && window.pyscatter.position"
        " && window.pyscatter.position.index})"
    )
    log = "\n".join(SERVER_OUTPUT) or "(nothing)"
    raise AssertionError(
        f"{expression}: not true within {limit} s (page: {seen}); the service's last output:\n{log}"
    )


def open_map(page, **params):
    page.goto(page.base + "#" + urlencode(params))
    wait_js(page, "window.pyscatter && window.pyscatter.map !== null")


def click_position(page, row, col):
    """A real mouse click at the centre of heatmap cell (row, col)."""
    x, y = page.evaluate(
        """([r, c]) => {
          const gd = document.getElementById('map'), t = gd.data[0];
          const xa = gd._fullLayout.xaxis, ya = gd._fullLayout.yaxis;
          return [xa._offset + xa.l2p(t.x[c]), ya._offset + ya.l2p(t.y[r])];
        }""",
        [row, col],
    )
    box = page.locator("#map").bounding_box()
    page.mouse.click(box["x"] + x, box["y"] + y)


def click_until_selected(page, row, col, index, attempts=10):
    """Click cell (row, col) until the page has selected position ``index``: the map is redrawn
    every second while the page polls, and a click landing during a redraw may be dropped (as
    a user would click again). What is asserted is the selection, not how fast it came."""
    for _ in range(attempts):
        click_position(page, row, col)
        for _ in range(30):
            if page.evaluate(f"window.pyscatter.selected === {index}"):
                return
            page.wait_for_timeout(100)
    raise AssertionError(f"position {index} not selected after {attempts} clicks")


def test_map_and_position(page, browser_root):
    root, _ = browser_root
    open_map(page, file="scan.h5")
    page.wait_for_selector('#map[data-positions="80"][data-complete="80"]', timeout=30_000)
    z = page.evaluate("document.getElementById('map').data[0].z")
    assert len(z) == 8 and all(len(row) == 10 for row in z)
    with h5py.File(root / "scan.h5", "r") as h5:
        group = page.evaluate("window.pyscatter.map.group")
        s = h5[group]["S"][:, 0].astype(float)
        np.testing.assert_allclose(np.array(z, dtype=float).ravel(), s, rtol=1e-6)
        ig = [
            g for g in h5["/Measurement_000/Channel_000"] if g.endswith("AzimuthalIntegration_000")
        ]
        intensity = h5[f"/Measurement_000/Channel_000/{ig[0]}/Intensity"][()]
    row, col = 3, 6
    index = row * 10 + col
    click_until_selected(page, row, col, index)
    wait_js(
        page,
        f"window.pyscatter.position && window.pyscatter.position.index === {index}"
        " && document.getElementById('frame').data !== undefined",
    )
    shown = page.evaluate("document.getElementById('iq').data[0].y")
    np.testing.assert_allclose(np.array(shown, dtype=float), intensity[index], rtol=1e-6)
    assert page.locator("#iq").get_attribute("data-index") == str(index)
    traces = page.evaluate("document.getElementById('ichi').data.map(t => t.name)")
    assert traces[:2] == ["ring 0 q=0.450", "fit 0"]
    frame = page.evaluate("document.getElementById('frame').data.map(t => t.type)")
    assert frame == ["heatmap", "contour", "contour"]  # the frame and its two q rings
    page.select_option("#colorscale", "Cividis")
    wait_js(page, "document.getElementById('map').data[0].colorscale === 'Cividis'")
    shot = os.environ.get("PYSCATTER_SERVICE_SCREENSHOT")
    if shot:
        page.mouse.move(5, 940)  # no hover label in the picture
        page.wait_for_timeout(500)
        page.screenshot(path=shot)
        assert Path(shot).stat().st_size > 10_000


def test_positions_appear_without_reload(page, browser_root):
    root, group = browser_root
    open_map(page, file="live.h5", group=group, quantity="Intensity", index=20)
    page.wait_for_selector('#map[data-positions="80"]', timeout=30_000)
    before = int(page.locator("#map").get_attribute("data-complete"))
    assert 0 < before < 80
    page.evaluate("window.loadedOnce = true")
    resume = (
        "from pyscatter.processes.base import run_on_file;"
        "from pyscatter.processes.integration import AzimuthalIntegration;"
        f"run_on_file({str(root / 'live.h5')!r}, AzimuthalIntegration, npt={LIVE_NPT},"
        " max_mem_mb=2, progress=False)"
    )
    subprocess.run([sys.executable, "-c", resume], check=True, timeout=300)  # a live-like writer
    page.wait_for_selector('#map[data-complete="80"]', timeout=30_000)
    assert page.evaluate("window.loadedOnce === true")  # the same page: no reload
    with h5py.File(root / "live.h5", "r") as h5:
        expected = h5[group]["Intensity"][:, 20].astype(float)
    z = page.evaluate("document.getElementById('map').data[0].z")
    np.testing.assert_allclose(np.array(z, dtype=float).ravel(), expected, rtol=1e-6)


def test_director_wheel_and_sticks(page, browser_root):
    root, _ = browser_root
    open_map(page, file="scan.h5", quantity="director")
    wait_js(page, "window.pyscatter.map.quantity === 'director'")
    trace = page.evaluate(
        "(() => { const t = document.getElementById('map').data[0];"
        " return [t.zmin, t.zmax, Array.isArray(t.colorscale)]; })()"
    )
    assert trace == [-90, 90, True]  # the cyclic colour wheel over the director's range
    page.select_option("#quantity", "S")
    page.check("#sticks")
    wait_js(page, "window.pyscatter.director !== null && window.pyscatter.map.quantity === 'S'")
    sticks = page.evaluate("document.getElementById('map').data[1]")
    assert sticks["mode"] == "lines"
    segments = [x for x in sticks["x"] if x is not None]
    with h5py.File(root / "scan.h5", "r") as h5:
        group = page.evaluate("window.pyscatter.map.group")
        finite = np.isfinite(h5[group]["director"][:, 0]).sum()
    assert len(segments) == 2 * finite  # one stick per position with a director


def test_a_signed_request_starts_a_watch_whose_map_fills_in(browser, tmp_path):
    """The issue's scenario: ``pyscatter serve``, one signed request starting a watch job on the
    folder a (simulated) detector writes, and the page showing its S map fill in, without a
    reload, to the values in the file. The detector is driven by the test (half the scan, then
    the rest), so nothing depends on how fast the machine is."""
    from pyscatter.datasets import oriented_map
    from pyscatter.live.simulate import FolderWriter, scan_frames
    from pyscatter.service.client import signed_request

    root = tmp_path / "root"
    (root / "frames").mkdir(parents=True)
    oriented_map((1,), frame_shape=(64, 64), rng=0).write_poni(root / "geo.poni")
    (root / "pipeline.yaml").write_text(
        "translate: {poni: geo.poni}\nsteps:\n"
        "  - integrate: {npt: 40, unit: q_nm^-1, error_model: poisson}\n"
        "  - profiles: {q: [1.0], half_width: 0.2, npt_azim: 36}\n"
        "  - fit: {model: maier_saupe}\n  - order: {}\n"
    )
    detector = FolderWriter(root / "frames", scan_frames(24, (64, 64)), fmt="edf")
    for i in range(12):
        detector.write(i)
    secret = tmp_path / "secret"
    with serve(root, secret) as url:
        base = url.split("/?")[0]
        reply = signed_request(
            "POST",
            f"{base}/api/jobs",
            secret_file=secret,
            json={"source": "frames", "output": "live.h5", "pipeline": "pipeline.yaml",
                  "grid": {"Y": 4, "X": 6}, "until_complete": True},
        )  # fmt: skip
        assert reply.status == 201, reply.json
        job = reply.json["id"]
        context = browser.new_context(viewport={"width": 1300, "height": 900})
        page = context.new_page()
        page.goto(url)
        page.base = base + "/"

        def order_group() -> str | None:
            status = signed_request("GET", f"{base}/api/jobs/{job}", secret_file=secret).json
            assert status["state"] in ("running", "exited"), status
            groups = (status.get("progress") or {}).get("groups") or {}
            return groups.get("order")

        deadline = time.monotonic() + 120
        while (group := order_group()) is None:
            assert time.monotonic() < deadline, "the watch job made no order results"
            time.sleep(0.2)
        open_map(page, file="live.h5", group=group, quantity="S")
        page.wait_for_selector('#map[data-positions="24"][data-complete="12"]', timeout=60_000)
        page.evaluate("window.loadedOnce = true")
        for i in range(12, 24):  # the rest of the scan
            detector.write(i)
        page.wait_for_selector('#map[data-complete="24"]', timeout=60_000)
        assert page.evaluate("window.loadedOnce === true")  # the same page: no reload
        deadline = time.monotonic() + 120
        while (
            signed_request("GET", f"{base}/api/jobs/{job}", secret_file=secret).json["state"]
            == "running"
        ):
            assert time.monotonic() < deadline, "the watch job did not end"
            time.sleep(0.2)
        ended = signed_request("GET", f"{base}/api/jobs/{job}", secret_file=secret).json
        assert ended["exit_code"] == 0, ended
        z = page.evaluate("document.getElementById('map').data[0].z")
        with h5py.File(root / "live.h5", "r") as h5:
            s = h5[group]["S"][:, 0].astype(float)
        np.testing.assert_allclose(np.array(z, dtype=float).ravel(), s, rtol=1e-6)
        context.close()


def test_xrf_spectrum_of_a_clicked_position(page, browser_root):
    """Issue 17: a pixel's spectrum with its fit and line markers beside the element map."""
    from .test_xrf_view import make_xrf_file

    root, _ = browser_root
    path = make_xrf_file(root)
    open_map(page, file="xrf.h5")
    page.wait_for_selector('#map[data-positions="20"][data-complete="20"]', timeout=30_000)
    row, col = 2, 3
    index = row * 5 + col
    click_until_selected(page, row, col, index)
    wait_js(page, f"document.getElementById('xrf').dataset.index === '{index}'")
    assert not page.evaluate("document.getElementById('xrf').hidden")
    names = page.evaluate("document.getElementById('xrf').data.map(t => t.name)")
    assert names == ["measured", "fit", "background"]
    shown = page.evaluate("document.getElementById('xrf').data[0].y")
    with h5py.File(path, "r") as h5:
        counts = h5["Measurement_000/Channel_000/Raw_Data"][index].astype(float)
    expected = np.where(counts > 0, counts, np.nan)
    np.testing.assert_array_equal(np.array(shown, dtype=float), expected)
    labels = page.evaluate("document.getElementById('xrf').layout.annotations.map(a => a.text)")
    assert {"Fe Kα", "Cu Kα", "Zn Kα"} <= set(labels)
