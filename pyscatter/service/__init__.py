"""``pyscatter serve``: watch jobs started and stopped by signed requests, and a live web view.

The service (Starlette on uvicorn) serves one data root, read-only, and runs
``pyscatter watch`` jobs on files under it:

- :mod:`.app` the routes and the guard every request passes (size limit, authentication,
  schema validation of requests and responses, one logged refusal per bad request);
- :mod:`.auth` HMAC-SHA256 request signatures with a shared secret, timestamps and nonces
  (no replay), and the web page's session token;
- :mod:`.paths` every path named in a request stays inside the data root;
- :mod:`.jobs` watch subprocesses (argument lists, never a shell), SIGINT then SIGKILL;
- :mod:`.data` results groups, maps, one position's I(q) and I(chi) with its fit, frames;
- :mod:`.schema` the published JSON Schema (``GET /api/schema``);
- :mod:`.client` :func:`~pyscatter.service.client.signed_request`, a client in the standard
  library only.

See ``docs/service.md`` for the design, the signing recipe and TLS. Importing this package
imports nothing of the web stack: :func:`create_app` does.
"""

from __future__ import annotations

from typing import Any

__all__ = ["create_app"]


def create_app(*args: Any, **kwargs: Any) -> Any:
    """The ASGI application; see :func:`pyscatter.service.app.create_app`."""
    from pyscatter.service.app import create_app as build

    return build(*args, **kwargs)
