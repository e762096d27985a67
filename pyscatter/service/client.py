"""A tiny client for the service: one signed request, with the standard library only.

Examples
--------
>>> from pyscatter.service.client import signed_request          # doctest: +SKIP
>>> reply = signed_request(  # doctest: +SKIP
...     "POST", "http://127.0.0.1:8765/api/jobs", secret_file="~/.config/pyscatter/service_secret",
...     json={"source": "frames", "output": "scan.h5", "pipeline": "live.yaml",
...           "grid": {"Y": 6, "X": 8}, "until_complete": True})
>>> reply.status, reply.json["state"]                            # doctest: +SKIP
(201, 'running')
"""

from __future__ import annotations

import json as _json
import os
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pyscatter.service.auth import sign_headers

__all__ = ["Reply", "read_secret", "signed_request"]


@dataclass
class Reply:
    """What the service answered: HTTP status, headers and the decoded JSON body."""

    status: int
    headers: dict[str, str]
    json: Any


def read_secret(secret_file: str | os.PathLike[str]) -> bytes:
    """The shared secret in ``secret_file`` (the text, stripped, as UTF-8)."""
    return Path(secret_file).expanduser().read_text(encoding="utf-8").strip().encode("utf-8")


def signed_request(
    method: str,
    url: str,
    *,
    secret: bytes | str | None = None,
    secret_file: str | os.PathLike[str] | None = None,
    json: Any = None,
    timeout: float = 30.0,
) -> Reply:
    """Send one HMAC-signed request and return the reply (any status: no exception on 4xx).

    Parameters
    ----------
    method : str
        ``"GET"`` or ``"POST"``.
    url : str
        Full URL with its query string, e.g. ``http://127.0.0.1:8765/api/map?file=scan.h5&…``;
        the query is signed exactly as written here, so do not let anything re-encode it.
    secret, secret_file
        The shared secret, or the file holding it (``pyscatter serve`` prints its path).
    json : optional
        The body, sent as compact JSON (``Content-Type: application/json``).
    timeout : float
        Seconds.
    """
    if secret is None:
        if secret_file is None:
            raise ValueError("give secret or secret_file")
        secret = read_secret(secret_file)
    key = secret.encode("utf-8") if isinstance(secret, str) else secret
    parts = urlsplit(url)
    body = b"" if json is None else _json.dumps(json, separators=(",", ":")).encode()
    headers = sign_headers(key, method, parts.path or "/", parts.query, body)
    if json is not None:
        headers["Content-Type"] = "application/json"
    request = urllib.request.Request(
        url, data=body if body else None, method=method.upper(), headers=headers
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            status, reply_headers, raw = response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as err:
        status, reply_headers, raw = err.code, dict(err.headers), err.read()
    try:
        decoded = _json.loads(raw) if raw else None
    except ValueError:
        decoded = raw.decode("utf-8", "replace")
    return Reply(status, reply_headers, decoded)
