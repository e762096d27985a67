"""The ASGI application: routes, the one guard every request passes, the web page.

Every ``/api`` request except ``/api/schema`` goes through :func:`_guard`: body read with a size
limit, authentication (a signature, or for reads the page's session), the request validated
against its model, the handler run in a worker thread, the response validated against its model.
Every refusal is one JSON :class:`~pyscatter.service.schema.ErrorResponse` with a clear status
and one warning in the log (``pyscatter.service``) naming the client, the request and why.
"""

from __future__ import annotations

import contextlib
import json
import logging
import secrets
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from pyscatter.errors import InputError
from pyscatter.service import data, schema
from pyscatter.service.auth import COOKIE, AuthError, Verifier
from pyscatter.service.jobs import DEFAULT_COMMAND, JobConflictError, JobManager, UnknownJobError
from pyscatter.service.paths import DataRoot, NotFoundError, PathRefusedError

__all__ = ["MAX_BODY_BYTES", "Service", "create_app"]

logger = logging.getLogger("pyscatter.service")

#: Largest request body accepted (the commands are small JSON objects).
MAX_BODY_BYTES = 16 * 1024
#: Longest query string accepted.
MAX_QUERY_CHARS = 4096


class RefusedError(Exception):
    """A request refused with ``status`` and a message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class Service:
    """What the routes share: the root, the verifier and the jobs."""

    root: DataRoot
    verifier: Verifier
    jobs: JobManager


def create_app(
    data_root: str | Path,
    secret: bytes,
    *,
    session_token: str | None = None,
    command: list[str] | tuple[str, ...] = DEFAULT_COMMAND,
    grace_s: float = 10.0,
    window_s: float = 60.0,
) -> Starlette:
    """The service application for ``data_root`` (see :mod:`pyscatter.service`).

    ``session_token`` defaults to a fresh random one (``app.state.service.verifier``);
    ``command`` is the watch command prefix (tests inject a stand-in).
    """
    root = DataRoot(data_root)
    token = session_token or secrets.token_urlsafe(32)
    service = Service(
        root, Verifier(secret, token, window_s), JobManager(root, command, grace_s=grace_s)
    )

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        yield
        await run_in_threadpool(service.jobs.shutdown)

    def api(
        handler: Callable[..., Any],
        query: type[BaseModel] | None = None,
        *,
        body: type[BaseModel] | None = None,
        reply: type[BaseModel],
        command: bool = False,
    ):
        async def endpoint(request: Request) -> Response:
            return await _guard(service, request, handler, query, body, reply, command)

        return endpoint

    routes = [
        Route("/", _page(service)),
        Route("/static/{name}", _static),
        Route("/favicon.ico", lambda _request: Response(status_code=204)),
        Route("/api/schema", _schema),
        Route(
            "/api/files",
            api(lambda s, q, b, p: data.list_files(s.root), reply=schema.FilesResponse),
        ),
        Route("/api/results", api(_results, schema.FileQuery, reply=schema.ResultsResponse)),
        Route("/api/map", api(_map, schema.MapQuery, reply=schema.MapResponse)),
        Route("/api/position", api(_position, schema.PositionQuery, reply=schema.PositionResponse)),
        Route("/api/frame", api(_frame, schema.FrameQuery, reply=schema.FrameResponse)),
        Route("/api/jobs", api(_list_jobs, reply=schema.JobList), methods=["GET"]),
        Route(
            "/api/jobs",
            api(_start_job, body=schema.StartJob, reply=schema.JobInfo, command=True),
            methods=["POST"],
        ),
        Route("/api/jobs/{job_id}", api(_job, reply=schema.JobInfo), methods=["GET"]),
        Route(
            "/api/jobs/{job_id}/stop",
            api(_stop_job, body=schema.StopJob, reply=schema.JobInfo, command=True),
            methods=["POST"],
        ),
    ]
    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.service = service
    return app


# ------------------------------------------------------------------------------- the guard
async def _guard(
    service: Service,
    request: Request,
    handler: Callable[..., Any],
    query_model: type[BaseModel] | None,
    body_model: type[BaseModel] | None,
    reply_model: type[BaseModel],
    command: bool,
) -> Response:
    try:
        raw = await _read_body(request)
        _authenticate(service.verifier, request, raw, command)
        query = _validated_query(request, query_model)
        body = _validated_body(raw, body_model)
        status = 201 if command and request.url.path == "/api/jobs" else 200
        result = await run_in_threadpool(handler, service, query, body, request.path_params)
    except RefusedError as err:
        return _refuse(request, err.status, str(err))
    except PathRefusedError as err:
        return _refuse(request, 403, str(err))
    except (NotFoundError, UnknownJobError) as err:
        return _refuse(request, 404, str(err))
    except JobConflictError as err:
        return _refuse(request, 409, str(err))
    except InputError as err:
        return _refuse(request, 422, str(err))
    try:
        checked = reply_model.model_validate(result).model_dump(mode="json")
    except ValidationError as err:  # our bug: never send what the schema does not promise
        logger.error(
            "response of %s does not match %s: %s", request.url.path, reply_model.__name__, err
        )
        return _error(500, f"internal error: the response did not match {reply_model.__name__}")
    return JSONResponse(checked, status_code=status, headers={"Cache-Control": "no-store"})


async def _read_body(request: Request) -> bytes:
    length = request.headers.get("content-length")
    if length is not None and (not length.isdigit() or int(length) > MAX_BODY_BYTES):
        raise RefusedError(
            413, f"request body over {MAX_BODY_BYTES} bytes (Content-Length {length[:20]})"
        )
    if len(request.url.query) > MAX_QUERY_CHARS:
        raise RefusedError(414, f"query string over {MAX_QUERY_CHARS} characters")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise RefusedError(413, f"request body over {MAX_BODY_BYTES} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _authenticate(verifier: Verifier, request: Request, raw: bytes, command: bool) -> None:
    try:
        if verifier.is_signed(request.headers) or command:
            verifier.check_signature(
                request.method, request.url.path, request.url.query, request.headers, raw
            )
            return
        bearer = request.headers.get("authorization", "")
        token = bearer[7:] if bearer.lower().startswith("bearer ") else request.cookies.get(COOKIE)
        verifier.check_session(token)
    except AuthError as err:
        if command and not verifier.is_signed(request.headers):
            raise RefusedError(
                401, f"{err}; commands must be signed (a session may only read)"
            ) from None
        raise RefusedError(401, str(err)) from None
    if request.method != "GET":  # pragma: no cover - every non-GET route is a command
        raise RefusedError(401, "a session may only read; sign commands")


def _validated_query(request: Request, model: type[BaseModel] | None) -> BaseModel | None:
    items = list(request.query_params.multi_items())
    if model is None:
        if items:
            raise RefusedError(422, f"unknown query parameter(s): {', '.join(k for k, _ in items)}")
        return None
    keys = [k for k, _ in items]
    repeated = sorted({k for k in keys if keys.count(k) > 1})
    if repeated:
        raise RefusedError(422, f"query parameter(s) given twice: {', '.join(repeated)}")
    try:
        return model.model_validate(dict(items))
    except ValidationError as err:
        raise RefusedError(422, _describe(err, model)) from None


def _validated_body(raw: bytes, model: type[BaseModel] | None) -> BaseModel | None:
    if model is None:
        if raw.strip():
            raise RefusedError(422, "this request takes no body")
        return None
    try:
        value = json.loads(raw or b"{}", parse_constant=_no_constant)
    except (ValueError, UnicodeDecodeError) as err:
        raise RefusedError(400, f"malformed JSON body ({err})") from None
    if not isinstance(value, dict):
        raise RefusedError(
            422, f"the body must be a JSON object ({model.__name__}), not {type(value).__name__}"
        )
    try:
        return model.model_validate(value)
    except ValidationError as err:
        raise RefusedError(422, _describe(err, model)) from None


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _describe(err: ValidationError, model: type[BaseModel]) -> str:
    parts = []
    for e in err.errors()[:5]:
        where = ".".join(str(p) for p in e["loc"]) or "(body)"
        parts.append(f"{where}: {e['msg']}")
    return f"invalid {model.__name__} (see /api/schema): " + "; ".join(parts)


def _refuse(request: Request, status: int, message: str) -> Response:
    client = request.client.host if request.client else "?"
    logger.warning(
        "refused %s %s from %s: %d %s", request.method, request.url.path, client, status, message
    )
    return _error(status, message)


def _error(status: int, message: str) -> Response:
    body = schema.ErrorResponse(status=status, error=message).model_dump()
    return JSONResponse(body, status_code=status, headers={"Cache-Control": "no-store"})


# ------------------------------------------------------------------------------- handlers
def _file(service: Service, rel: str) -> Path:
    path = service.root.resolve(rel, kind="file")
    if not path.name.lower().endswith(data.HDF5_SUFFIXES):
        raise PathRefusedError(
            f"{rel!r}: only HDF5 files ({', '.join(data.HDF5_SUFFIXES)}) are served"
        )
    return path


def _results(s: Service, q: Any, _b: Any, _p: Any) -> dict[str, Any]:
    return data.results_summary(_file(s, q.file), q.file)


def _map(s: Service, q: Any, _b: Any, _p: Any) -> dict[str, Any]:
    return data.result_map(_file(s, q.file), q.file, q.group, q.quantity, q.index, q.q_min, q.q_max)


def _position(s: Service, q: Any, _b: Any, _p: Any) -> dict[str, Any]:
    return data.position_detail(_file(s, q.file), q.file, q.index, q.integration, q.profiles)


def _frame(s: Service, q: Any, _b: Any, _p: Any) -> dict[str, Any]:
    return data.detector_frame(_file(s, q.file), q.file, q.index, q.max_size)


def _list_jobs(s: Service, _q: Any, _b: Any, _p: Any) -> dict[str, Any]:
    return {"jobs": [job.info() for job in s.jobs.list()]}


def _job(s: Service, _q: Any, _b: Any, p: dict[str, str]) -> dict[str, Any]:
    return s.jobs.get(p["job_id"]).info()


def _start_job(s: Service, _q: Any, b: Any, _p: Any) -> dict[str, Any]:
    return s.jobs.start(b.model_dump()).info()


def _stop_job(s: Service, _q: Any, b: Any, p: dict[str, str]) -> dict[str, Any]:
    return s.jobs.stop(p["job_id"], b.grace).info()


# ------------------------------------------------------------------------------- the page
def _page(service: Service) -> Callable[[Request], Any]:
    async def page(request: Request) -> Response:
        token = request.query_params.get("token")
        if token is not None:
            try:
                service.verifier.check_session(token)
            except AuthError as err:
                return _refuse_page(request, str(err))
            response: Response = RedirectResponse("/", status_code=303)
            response.set_cookie(
                COOKIE,
                token,
                httponly=True,
                samesite="strict",
                path="/",
                secure=request.url.scheme == "https",
            )
            return response
        try:
            service.verifier.check_session(request.cookies.get(COOKIE))
        except AuthError as err:
            return _refuse_page(request, str(err))
        html = (_STATIC / "index.html").read_text(encoding="utf-8")
        return HTMLResponse(html, headers=_PAGE_HEADERS)

    return page


def _refuse_page(request: Request, message: str) -> Response:
    client = request.client.host if request.client else "?"
    logger.warning("refused %s / from %s: 401 %s", request.method, client, message)
    return HTMLResponse(
        f"<h1>401</h1><p>{message.replace('<', '&lt;')}</p>", status_code=401, headers=_PAGE_HEADERS
    )


_STATIC = Path(str(resources.files("pyscatter.service") / "static"))
_STATIC_FILES = {"app.js": "text/javascript", "style.css": "text/css"}
_PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data: blob:; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


async def _static(request: Request) -> Response:
    name = request.path_params["name"]
    if name == "plotly.min.js":
        return FileResponse(_plotly_js(), media_type="text/javascript")
    if name not in _STATIC_FILES:
        return _error(404, f"no static file {name!r}")
    return FileResponse(_STATIC / name, media_type=_STATIC_FILES[name])


def _plotly_js() -> Path:
    """plotly.min.js of the installed ``plotly`` package: no CDN, works offline."""
    import plotly

    return Path(plotly.__file__).parent / "package_data" / "plotly.min.js"


async def _schema(request: Request) -> Response:
    return JSONResponse(schema.published_schema())
