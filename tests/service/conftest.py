"""Fixtures of the service tests: a served data root with the demo scan and its pipeline run,
a client of the app with a known secret, and a stand-in for ``pyscatter watch``."""

from __future__ import annotations

import collections
import contextlib
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

pytest.importorskip(
    "starlette", reason="the service needs starlette (pip install pyscatter[serve])"
)
pytest.importorskip("httpx", reason="the service tests need httpx (Starlette's TestClient)")

SECRET = b"s" * 64
TOKEN = "session-token-for-tests-0123456789"
STEPS = """\
steps:
  - integrate: {npt: 300, unit: q_nm^-1, error_model: poisson, polarization_factor: 0.99}
  - profiles: {q: [0.45, 0.8], half_width: 0.06, npt_azim: 180, polarization_factor: 0.99}
  - fit: {model: maier_saupe}
  - order: {}
"""


def pytest_collection_modifyitems(config, items):
    # Starlette's TestClient warns that it will move from httpx to httpx2: not our concern
    here = Path(__file__).parent
    mark = pytest.mark.filterwarnings("ignore:Using `httpx` with `starlette.testclient`")
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(mark)


def make_demo_scan(root: Path, name: str = "scan.h5", steps: str = STEPS) -> Path:
    """The demo scan translated into ``root/name`` with ``steps`` run (``root/pipeline.yaml``)."""
    from pyscatter import datasets
    from pyscatter.pipeline import run_pipeline
    from pyscatter.translators import translate

    scan = datasets.demo_scan()
    frames = root / "frames"
    files = scan.write_images(frames)
    poni = scan.write_poni(root / "demo.poni")
    translate(
        [str(f) for f in files],
        root / name,
        format="images",
        positions=str(frames / "positions.csv"),
        poni=str(poni),
        mask=str(frames / "mask.edf"),
        overwrite=True,
    )
    pipeline = root / "pipeline.yaml"
    pipeline.write_text(f"output: {name}\nexecution: {{progress: false}}\n{steps}")
    run_pipeline(pipeline)
    return root / name


@pytest.fixture(scope="session")
def served(tmp_path_factory) -> Path:
    """A data root: frames/, demo.poni, pipeline.yaml and scan.h5 (integrate → order)."""
    root = tmp_path_factory.mktemp("served")
    make_demo_scan(root)
    return root


@pytest.fixture()
def root(tmp_path, served) -> Path:
    """A copy of :func:`served` of this test's own (jobs may write in it)."""
    copy = tmp_path / "root"
    shutil.copytree(served, copy)
    return copy


STANDIN = textwrap.dedent(
    """
    import signal, sys, time
    from pyscatter.io.safety import write_status
    mode, args = sys.argv[1], sys.argv[2:]
    output = args[args.index("-o") + 1]
    print("args", repr(args), flush=True)
    write_status(output, state="watching", frames=3, total=48)
    if mode == "finish":
        print("done", flush=True); sys.exit(0)
    if mode == "fail":
        print("stand-in: the source is corrupt", file=sys.stderr, flush=True); sys.exit(1)
    if mode == "stubborn":
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    print("ready", flush=True)
    try:
        while True:
            time.sleep(0.05)
    except KeyboardInterrupt:
        write_status(output, state="stopped", frames=3, total=48)
        print("interrupted", flush=True); sys.exit(130)
    """
)


@pytest.fixture()
def standin(tmp_path):
    """``standin(mode)``: the command prefix of a fake watch (modes: finish, fail, wait,
    stubborn); it writes ``<output>.status.json`` like the watch and prints its arguments."""
    script = tmp_path / "standin_watch.py"
    script.write_text(STANDIN)
    return lambda mode: [sys.executable, str(script), mode]


@pytest.fixture()
def make_client(root):
    from starlette.testclient import TestClient

    from pyscatter.service.app import create_app

    clients = []

    def make(command=None, **kw):
        app = create_app(
            root, SECRET, session_token=TOKEN, **({"command": command} if command else {}), **kw
        )
        client = TestClient(app)
        client.__enter__()  # run the lifespan: jobs are stopped at exit
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.__exit__(None, None, None)


@pytest.fixture()
def client(make_client):
    return make_client()


SESSION = {"Authorization": f"Bearer {TOKEN}"}


def signed_call(client, method, path, *, params=None, json=None, secret=SECRET, body=None, **sign):
    """Send one request signed like :func:`pyscatter.service.client.signed_request`."""
    import json as _json
    from urllib.parse import urlencode

    from pyscatter.service.auth import sign_headers

    query = urlencode(params or {})
    if body is None:
        body = b"" if json is None else _json.dumps(json).encode()
    headers = sign_headers(secret, method, path, query, body, **sign)
    headers["Content-Type"] = "application/json"
    url = path + (f"?{query}" if query else "")
    return client.request(method, url, content=body, headers=headers)


@pytest.fixture()
def signed():
    return signed_call


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


#: The last lines ``pyscatter serve`` printed (its log), for the messages of failed waits.
SERVER_OUTPUT: collections.deque[str] = collections.deque(maxlen=60)


def _drain(stream) -> None:
    """Read the service's output to its end: a pipe nobody reads fills up (64 KiB) and stops
    the service at its next log line; the lines are kept for messages."""
    for line in stream:
        SERVER_OUTPUT.append(line.rstrip())


@contextlib.contextmanager
def serve(root: Path, secret_file: Path):
    """``pyscatter serve`` in a subprocess on a free loopback port; yields its session URL.
    Its output is read to the end on a thread (:data:`SERVER_OUTPUT`)."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "pyscatter", "serve", "--data-root", str(root),
         "--port", str(port), "--secret-file", str(secret_file)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        url = None
        assert proc.stdout is not None
        for line in proc.stdout:
            if "web page (session):" in line:
                url = line.split("):", 1)[1].strip()
                break
        assert url is not None and url.startswith(f"http://127.0.0.1:{port}/?token="), url
        SERVER_OUTPUT.clear()
        threading.Thread(target=_drain, args=(proc.stdout,), daemon=True).start()
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert proc.poll() is None and time.monotonic() < deadline, "no service"
                time.sleep(0.1)
        yield url
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
