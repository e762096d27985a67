"""``pyscatter serve`` as a process, driven by :func:`pyscatter.service.client.signed_request`."""

from __future__ import annotations

import stat

import pytest

from pyscatter.service.client import read_secret, signed_request

from .conftest import serve


@pytest.fixture(scope="module")
def running(served, tmp_path_factory):
    secret = tmp_path_factory.mktemp("conf") / "pyscatter" / "service_secret"
    with serve(served, secret) as url:
        yield url.split("?")[0].rstrip("/"), secret


def test_secret_file_created_0600(running):
    _base, secret = running
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600 and len(read_secret(secret)) == 64


def test_signed_requests_over_http(running):
    base, secret = running
    reply = signed_request("GET", f"{base}/api/results?file=scan.h5", secret_file=secret)
    assert reply.status == 200 and len(reply.json["groups"]) == 4
    wrong = signed_request("GET", f"{base}/api/files", secret=b"k" * 64)
    assert wrong.status == 401 and "bad signature" in wrong.json["error"]
    unsigned = signed_request("GET", f"{base}/api/files", secret=b"")
    assert unsigned.status == 401
    start = signed_request(
        "POST",
        f"{base}/api/jobs",
        secret_file=secret,
        json={"source": "frames", "output": "../escape.h5", "pipeline": "pipeline.yaml"},
    )
    assert start.status == 403 and "'..'" in start.json["error"]
