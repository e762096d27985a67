"""Authentication: HMAC-signed requests with a shared secret, and a session token for the page.

Signed requests (scripts, the control system; every command) carry three headers:

``X-Pyscatter-Timestamp``
    Unix time in whole seconds; refused when more than :data:`WINDOW_S` away from the
    server's clock (a captured request goes stale).
``X-Pyscatter-Nonce``
    16 to 128 characters ``[A-Za-z0-9_-]``, never used twice: the server remembers every nonce
    of a valid signature for twice the window, so a replay within the window is refused.
``X-Pyscatter-Signature``
    Lower-case hex HMAC-SHA256 with the shared secret (the secret file's text, UTF-8) over
    :func:`canonical`: method, path, query string exactly as sent, timestamp, nonce and the
    hex SHA-256 of the body, joined by newlines.

The web page instead gets a session token (random at each start, printed as a URL); the first
visit moves it into an HttpOnly, SameSite=Strict cookie. A session may read (GET) but not
command: starting and stopping jobs needs a signature.

Examples
--------
>>> secret = b"0" * 64
>>> headers = sign_headers(secret, "GET", "/api/files", "", b"", timestamp=1700000000, nonce="n" * 16)
>>> Verifier(secret, "token").check_signature(
...     "GET", "/api/files", "", headers, b"", now=1700000010
... )
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import re
import secrets
import threading
import time
from collections.abc import Mapping
from pathlib import Path

from pyscatter.errors import InputError

__all__ = [
    "COOKIE",
    "NONCE_HEADER",
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "WINDOW_S",
    "AuthError",
    "NonceCache",
    "Verifier",
    "canonical",
    "load_or_create_secret",
    "sign_headers",
]

logger = logging.getLogger("pyscatter.service")

TIMESTAMP_HEADER = "X-Pyscatter-Timestamp"
NONCE_HEADER = "X-Pyscatter-Nonce"
SIGNATURE_HEADER = "X-Pyscatter-Signature"
COOKIE = "pyscatter_session"
#: Seconds a signed request stays valid either side of the server's clock.
WINDOW_S = 60
#: Nonces remembered at most (a flood of valid signatures beyond it is refused, not forgotten).
MAX_NONCES = 200_000
_NONCE = re.compile(r"^[A-Za-z0-9_-]{16,128}$")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
MIN_SECRET_CHARS = 32


class AuthError(Exception):
    """A request that is not authenticated (HTTP 401); the message says why."""


def canonical(method: str, path: str, query: str, timestamp: str, nonce: str, body: bytes) -> bytes:
    """The bytes a request signature covers (newline-joined, body as its hex SHA-256)."""
    digest = hashlib.sha256(body).hexdigest()
    return "\n".join((method.upper(), path, query, timestamp, nonce, digest)).encode()


def sign_headers(
    secret: bytes,
    method: str,
    path: str,
    query: str = "",
    body: bytes = b"",
    *,
    timestamp: int | None = None,
    nonce: str | None = None,
) -> dict[str, str]:
    """The three headers that sign one request (a fresh nonce and the current time by default)."""
    stamp = str(int(time.time()) if timestamp is None else int(timestamp))
    nonce = secrets.token_urlsafe(24) if nonce is None else nonce
    mac = hmac.new(secret, canonical(method, path, query, stamp, nonce, body), hashlib.sha256)
    return {TIMESTAMP_HEADER: stamp, NONCE_HEADER: nonce, SIGNATURE_HEADER: mac.hexdigest()}


def load_or_create_secret(path: str | os.PathLike[str]) -> tuple[bytes, bool]:
    """The shared secret in ``path``, created (mode 0600, 64 hex characters) when absent.

    Returns
    -------
    (secret, created)

    Raises
    ------
    InputError
        The file is readable by others (group/world permission bits), or holds fewer than
        :data:`MIN_SECRET_CHARS` characters.
    """
    path = Path(path).expanduser()
    created = False
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(secrets.token_hex(32) + "\n")
        created = True
    mode = path.stat().st_mode
    if mode & 0o077:
        raise InputError(
            f"secret file {path}: readable by group or others (mode {mode & 0o777:o}); "
            f"chmod 600 {path}"
        )
    text = path.read_text(encoding="utf-8").strip()
    if len(text) < MIN_SECRET_CHARS:
        raise InputError(
            f"secret file {path}: {len(text)} characters; at least {MIN_SECRET_CHARS} needed"
        )
    return text.encode("utf-8"), created


class NonceCache:
    """Nonces of accepted signatures, each kept ``keep_s`` seconds (thread-safe)."""

    def __init__(self, keep_s: float, max_entries: int = MAX_NONCES) -> None:
        self.keep_s = keep_s
        self.max_entries = max_entries
        self._seen: dict[str, float] = {}
        self._lock = threading.Lock()

    def add(self, nonce: str, now: float) -> None:
        """Remember ``nonce``; :class:`AuthError` if it was seen (a replay) or the cache is full."""
        with self._lock:
            if nonce in self._seen:
                raise AuthError("replayed request: this nonce was used before")
            if len(self._seen) >= self.max_entries:
                self._seen = {n: t for n, t in self._seen.items() if t > now}
                if len(self._seen) >= self.max_entries:
                    raise AuthError("too many signed requests in the time window; retry later")
            self._seen[nonce] = now + self.keep_s


class Verifier:
    """Checks signatures (shared ``secret``) and sessions (``session_token``)."""

    def __init__(self, secret: bytes, session_token: str, window_s: float = WINDOW_S) -> None:
        self.secret = secret
        self.session_token = session_token
        self.window_s = window_s
        self.nonces = NonceCache(2 * window_s)

    @staticmethod
    def is_signed(headers: Mapping[str, str]) -> bool:
        """Whether the request carries any of the signature headers."""
        return any(h in headers for h in (TIMESTAMP_HEADER, NONCE_HEADER, SIGNATURE_HEADER))

    def check_signature(
        self,
        method: str,
        path: str,
        query: str,
        headers: Mapping[str, str],
        body: bytes,
        *,
        now: float | None = None,
    ) -> None:
        """Accept a signed request or raise :class:`AuthError` saying why not."""
        now = time.time() if now is None else now
        missing = [
            h for h in (TIMESTAMP_HEADER, NONCE_HEADER, SIGNATURE_HEADER) if h not in headers
        ]
        if missing:
            raise AuthError(f"unsigned request: missing header(s) {', '.join(missing)}")
        stamp, nonce = headers[TIMESTAMP_HEADER], headers[NONCE_HEADER]
        signature = headers[SIGNATURE_HEADER]
        if not stamp.isdigit() or len(stamp) > 12:
            raise AuthError(f"{TIMESTAMP_HEADER}: expected Unix seconds, got {stamp[:40]!r}")
        if abs(now - int(stamp)) > self.window_s:
            raise AuthError(
                f"stale request: timestamp {stamp} is {now - int(stamp):+.0f} s from the "
                f"server's clock (allowed ±{self.window_s:g} s)"
            )
        if not _NONCE.match(nonce):
            raise AuthError(f"{NONCE_HEADER}: expected 16-128 characters [A-Za-z0-9_-]")
        if not _HEX64.match(signature):
            raise AuthError(f"{SIGNATURE_HEADER}: expected 64 lower-case hex digits")
        expected = hmac.new(
            self.secret, canonical(method, path, query, stamp, nonce, body), hashlib.sha256
        ).hexdigest()
        if not hmac.compare_digest(expected, signature):
            raise AuthError("bad signature (wrong key, or the request was altered)")
        self.nonces.add(nonce, now)

    def check_session(self, token: str | None) -> None:
        """Accept the page's session token (cookie or bearer) or raise :class:`AuthError`."""
        if not token:
            raise AuthError(
                "unauthenticated: sign the request, or open the page with the URL printed "
                "at start-up (?token=…)"
            )
        if not hmac.compare_digest(token.encode(), self.session_token.encode()):
            raise AuthError("bad session token (the service was restarted? use the new URL)")
