"""``pyscatter serve --data-root DIR``: signed commands for watch jobs and a live web view.

Serves the files under DIR read-only (maps of results, I(q), I(chi) with fits, detector frames)
and starts or stops ``pyscatter watch`` jobs on them, on 127.0.0.1 unless told otherwise. Every
request is authenticated: commands by an HMAC-SHA256 signature with the shared secret in
``--secret-file`` (created, mode 0600, on first start), the web page by the session URL printed
at start-up. Put it behind a TLS reverse proxy before listening on another address (see the
docs, "The beamtime service"). Needs the ``serve`` extra: ``pip install pyscatter[serve]``.
"""

from __future__ import annotations

import argparse
import logging
import os
import secrets
import sys
from pathlib import Path

from pyscatter.errors import InputError

log = logging.getLogger("pyscatter")

LOOPBACK = ("127.0.0.1", "localhost", "::1")


def default_secret_file() -> Path:
    """``$XDG_CONFIG_HOME/pyscatter/service_secret`` (``~/.config/…`` by default)."""
    base = os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config"
    return Path(base) / "pyscatter" / "service_secret"


def register(sub) -> None:
    p = sub.add_parser(
        "serve",
        help="a service: signed commands for watch jobs and a live web view of the results",
        description=__doc__,
    )
    p.add_argument("--data-root", required=True, help="the folder served (read-only) and watched")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8765, help="port (default 8765)")
    p.add_argument(
        "--secret-file",
        default=None,
        help="the shared secret of signed requests (default ~/.config/pyscatter/service_secret)",
    )
    p.add_argument(
        "--grace",
        type=float,
        default=10.0,
        help="seconds between SIGINT and SIGKILL when a job is stopped (default 10)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        import uvicorn

        from pyscatter.service.app import create_app
    except ImportError as err:
        raise InputError(
            f"pyscatter serve needs the web stack ({err.name} is missing): "
            "pip install 'pyscatter[serve]'"
        ) from None
    from pyscatter.service.auth import load_or_create_secret

    if not 0 < args.port < 65536:
        raise InputError(f"--port {args.port}: expected 1 to 65535")
    secret_file = Path(args.secret_file) if args.secret_file else default_secret_file()
    secret, created = load_or_create_secret(secret_file)
    token = secrets.token_urlsafe(32)
    app = create_app(args.data_root, secret, session_token=token, grace_s=args.grace)
    host = f"[{args.host}]" if ":" in args.host else args.host
    root = app.state.service.root.root
    print(f"pyscatter service: data root {root}")
    print(f"  web page (session): http://{host}:{args.port}/?token={token}")
    print(
        f"  shared secret for signed requests: {secret_file}"
        + (" (created now)" if created else "")
        + f"; read it with: cat {secret_file}"
    )
    if args.host not in LOOPBACK:
        print(
            f"  WARNING: listening on {args.host}, not loopback: requests and the session token "
            "travel in clear text; put a TLS reverse proxy in front (docs: The beamtime service)",
            file=sys.stderr,
        )
    sys.stdout.flush()
    level = "debug" if log.getEffectiveLevel() <= logging.DEBUG else "warning"
    uvicorn.run(app, host=args.host, port=args.port, log_level=level, server_header=False)
    return 0
