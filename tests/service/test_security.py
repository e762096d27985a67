"""Every refusal of the service: a clear status, a JSON error, one warning in the log."""

from __future__ import annotations

import logging
import os
import stat
import time

import pytest

from pyscatter.errors import InputError
from pyscatter.service.app import MAX_BODY_BYTES
from pyscatter.service.auth import (
    NONCE_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    load_or_create_secret,
)

from .conftest import SESSION, TOKEN

START = {"source": "frames", "output": "live.h5", "pipeline": "pipeline.yaml"}


@pytest.fixture()
def refusals(caplog):
    caplog.set_level(logging.WARNING, logger="pyscatter.service")

    def logged():
        return [r.getMessage() for r in caplog.records if r.getMessage().startswith("refused")]

    return logged


def refused(reply, status, words, refusals):
    assert reply.status_code == status, reply.text
    body = reply.json()
    assert body["status"] == status and words in body["error"], body
    assert any(words in line for line in refusals()), refusals()


def test_signed_read_and_session_read_pass(client, signed):
    assert signed(client, "GET", "/api/files").status_code == 200
    assert client.get("/api/files", headers=SESSION).status_code == 200
    assert (
        client.get("/api/files", headers={"Cookie": f"pyscatter_session={TOKEN}"}).status_code
        == 200
    )


def test_unsigned_refused(client, refusals):
    refused(client.get("/api/files"), 401, "unauthenticated", refusals)
    refused(client.post("/api/jobs", json=START), 401, "unsigned request", refusals)


def test_session_may_read_but_not_command(client, refusals):
    reply = client.post("/api/jobs", json=START, headers=SESSION)
    refused(reply, 401, "commands must be signed", refusals)


def test_bad_session_refused(client, refusals):
    reply = client.get("/api/files", headers={"Authorization": "Bearer not-the-token"})
    refused(reply, 401, "bad session token", refusals)


def test_wrong_key_refused(client, signed, refusals):
    refused(signed(client, "GET", "/api/files", secret=b"w" * 64), 401, "bad signature", refusals)
    reply = signed(client, "POST", "/api/jobs", json=START, secret=b"w" * 64)
    refused(reply, 401, "bad signature", refusals)


def test_altered_request_refused(client, signed, refusals):
    """A signature of one query does not cover another."""
    from pyscatter.service.auth import sign_headers

    from .conftest import SECRET

    headers = sign_headers(SECRET, "GET", "/api/results", "file=scan.h5")
    reply = client.get("/api/results?file=other.h5", headers=headers)
    refused(reply, 401, "bad signature", refusals)


def test_stale_refused(client, signed, refusals):
    reply = signed(client, "GET", "/api/files", timestamp=int(time.time()) - 3600)
    refused(reply, 401, "stale request", refusals)
    reply = signed(client, "GET", "/api/files", timestamp=int(time.time()) + 3600)
    refused(reply, 401, "stale request", refusals)


def test_replay_refused(client, refusals):
    from pyscatter.service.auth import sign_headers

    from .conftest import SECRET

    headers = sign_headers(SECRET, "GET", "/api/files")
    assert client.get("/api/files", headers=headers).status_code == 200
    refused(client.get("/api/files", headers=headers), 401, "replayed", refusals)


@pytest.mark.parametrize(
    ("header", "value", "words"),
    [
        (TIMESTAMP_HEADER, "yesterday", "expected Unix seconds"),
        (NONCE_HEADER, "short", "16-128 characters"),
        (SIGNATURE_HEADER, "ZZ", "64 lower-case hex"),
    ],
)
def test_malformed_signature_headers_refused(client, refusals, header, value, words):
    from pyscatter.service.auth import sign_headers

    from .conftest import SECRET

    headers = sign_headers(SECRET, "GET", "/api/files")
    headers[header] = value
    refused(client.get("/api/files", headers=headers), 401, words, refusals)


def test_malformed_json_refused(client, signed, refusals):
    reply = signed(client, "POST", "/api/jobs", body=b'{"source": "frames",')
    refused(reply, 400, "malformed JSON", refusals)
    refused(signed(client, "POST", "/api/jobs", body=b"[1, 2]"), 422, "JSON object", refusals)
    refused(signed(client, "POST", "/api/jobs", body=b'{"idle": NaN}'), 400, "malformed", refusals)


def test_oversized_body_refused(client, signed, refusals):
    big = {**START, "pattern": "x" * (MAX_BODY_BYTES + 10)}
    refused(signed(client, "POST", "/api/jobs", json=big), 413, "over", refusals)


def test_unknown_fields_refused(client, signed, refusals):
    reply = signed(client, "POST", "/api/jobs", json={**START, "shell": "rm -rf /"})
    refused(reply, 422, "Extra inputs are not permitted", refusals)
    reply = signed(client, "GET", "/api/files", params={"debug": "1"})
    refused(reply, 422, "unknown query parameter", refusals)
    reply = client.get("/api/results", params={"file": "scan.h5", "x": "1"}, headers=SESSION)
    refused(reply, 422, "Extra inputs", refusals)


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({**START, "until_complete": "yes"}, "until_complete"),
        ({**START, "grid": {"Y": 0}}, "grid"),
        ({**START, "grid": {"Y; rm": 3}}, "grid"),
        ({**START, "pattern": "../*.tif"}, "pattern"),
        ({**START, "pattern": "--poni=/etc/passwd"}, "pattern"),
        ({**START, "idle": -1.0}, "idle"),
        ({"source": "frames"}, "output"),
    ],
)
def test_invalid_requests_refused(client, signed, refusals, body, words):
    refused(signed(client, "POST", "/api/jobs", json=body), 422, words, refusals)


@pytest.mark.parametrize(
    ("name", "words"),
    [
        ("../scan.h5", "'..' is not allowed"),
        ("frames/../../scan.h5", "'..' is not allowed"),
        ("/etc/passwd", "absolute paths"),
        ("~/secret.h5", "absolute paths"),
        ("a\\..\\b.h5", "backslashes"),
    ],
)
def test_paths_outside_root_refused(client, refusals, name, words):
    reply = client.get("/api/results", params={"file": name}, headers=SESSION)
    refused(reply, 403, words, refusals)


def test_symlink_leaving_root_refused(client, root, tmp_path, signed, refusals):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "private.h5").write_bytes(b"not served")
    os.symlink(outside / "private.h5", root / "link.h5")
    os.symlink(outside, root / "linkdir")
    reply = client.get("/api/results", params={"file": "link.h5"}, headers=SESSION)
    refused(reply, 403, "leaves the data root", refusals)
    reply = client.get("/api/results", params={"file": "linkdir/private.h5"}, headers=SESSION)
    refused(reply, 403, "leaves the data root", refusals)
    listing = client.get("/api/files", headers=SESSION).json()
    assert "link.h5" not in [f["path"] for f in listing["files"]]
    reply = signed(client, "POST", "/api/jobs", json={**START, "output": "linkdir/new.h5"})
    refused(reply, 403, "leaves the data root", refusals)
    os.symlink(root / "scan.h5", root / "inside.h5")  # a link inside the root is fine
    assert (
        client.get("/api/results", params={"file": "inside.h5"}, headers=SESSION).status_code == 200
    )


def test_only_hdf5_files_served(client, refusals):
    reply = client.get("/api/results", params={"file": "pipeline.yaml"}, headers=SESSION)
    refused(reply, 403, "only HDF5 files", refusals)
    reply = client.get("/api/results", params={"file": "nothere.h5"}, headers=SESSION)
    refused(reply, 404, "no such file", refusals)


def test_page_needs_the_session_token(client, refusals):
    assert client.get("/").status_code == 401
    assert client.get("/?token=wrong").status_code == 401
    reply = client.get(f"/?token={TOKEN}", follow_redirects=False)
    assert reply.status_code == 303 and reply.headers["location"] == "/"
    cookie = reply.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie and TOKEN.lower() in cookie
    page = client.get("/", headers={"Cookie": f"pyscatter_session={TOKEN}"})
    assert page.status_code == 200 and "plotly.min.js" in page.text
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    assert len(refusals()) == 2


def test_static_files(client):
    assert client.get("/static/plotly.min.js").status_code == 200
    assert client.get("/static/app.js").status_code == 200
    assert client.get("/static/..%2Fapp.py").status_code == 404


def test_schema_published_and_responses_match_it(client, signed):
    import jsonschema

    schema = client.get("/api/schema").json()
    assert {"StartJob", "StopJob", "MapQuery"} <= set(schema["requests"])
    assert schema["requests"]["StartJob"]["additionalProperties"] is False
    for path, params, name in [
        ("/api/files", None, "FilesResponse"),
        ("/api/results", {"file": "scan.h5"}, "ResultsResponse"),
        ("/api/position", {"file": "scan.h5", "index": 3}, "PositionResponse"),
        ("/api/jobs", None, "JobList"),
    ]:
        reply = signed(client, "GET", path, params=params)
        jsonschema.validate(reply.json(), schema["responses"][name])
    error = client.get("/api/files").json()
    jsonschema.validate(error, schema["responses"]["ErrorResponse"])


def test_secret_file_created_private(tmp_path):
    path = tmp_path / "conf" / "secret"
    secret, created = load_or_create_secret(path)
    assert created and len(secret) == 64
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_or_create_secret(path) == (secret, False)
    path.chmod(0o644)
    with pytest.raises(InputError, match="readable by group or others"):
        load_or_create_secret(path)
    path.chmod(0o600)
    path.write_text("short")
    with pytest.raises(InputError, match="at least 32"):
        load_or_create_secret(path)


def test_nonce_cache_bounded():
    from pyscatter.service.auth import AuthError, NonceCache

    cache = NonceCache(keep_s=10, max_entries=2)
    cache.add("a" * 16, now=0)
    cache.add("b" * 16, now=0)
    with pytest.raises(AuthError, match="too many"):
        cache.add("c" * 16, now=5)
    cache.add("c" * 16, now=11)  # the first two expired
    with pytest.raises(AuthError, match="replayed"):
        cache.add("c" * 16, now=12)
