"""The published schema of the service: every request and every response, as pydantic models.

Requests are validated before anything is done with them (an unknown field, a value of the
wrong type or out of range is refused with 422), responses before they are sent (a response
that does not match its model is a bug: 500, logged). ``GET /api/schema`` serves
:func:`published_schema`, the JSON Schema of all of them with the endpoint table.

Examples
--------
>>> from pyscatter.service.schema import StartJob
>>> StartJob(source="frames", output="scan.h5", pipeline="p.yaml").until_complete
False
>>> sorted(published_schema()["requests"])[:3]
['FileQuery', 'FrameQuery', 'MapQuery']
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

__all__ = [
    "ENDPOINTS",
    "ErrorResponse",
    "FileQuery",
    "FilesResponse",
    "FrameQuery",
    "FrameResponse",
    "JobInfo",
    "JobList",
    "MapQuery",
    "MapResponse",
    "PositionQuery",
    "PositionResponse",
    "ResultsResponse",
    "StartJob",
    "StopJob",
    "published_schema",
]

#: A path relative to the data root (checked again, on the file system, by :mod:`.paths`).
RelPath = Annotated[str, StringConstraints(min_length=1, max_length=1024)]
#: A dataset or group path inside an HDF5 file.
H5Path = Annotated[str, StringConstraints(min_length=1, max_length=1024, pattern=r"^/[^\x00]*$")]
DimName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")]
#: One file name pattern (no folders): ``frame_*.tif``.
Glob = Annotated[str, StringConstraints(pattern=r"^[^/\\\x00-\x1f-][^/\\\x00-\x1f]{0,255}$")]
#: JSON has no NaN: a value not computed (or not finite) is ``null``.
Number = float | None


class _Body(BaseModel):
    """A JSON request body: unknown fields refused, no type coercion ("yes" is no bool)."""

    model_config = ConfigDict(extra="forbid", strict=True)


class _Query(BaseModel):
    """Query parameters (text by nature: numbers are parsed), unknown ones refused."""

    model_config = ConfigDict(extra="forbid")


class _Response(BaseModel):
    model_config = ConfigDict(extra="forbid")


# ----------------------------------------------------------------------------------- requests
class StartJob(_Body):
    """``POST /api/jobs``: start ``pyscatter watch`` on paths under the data root."""

    source: RelPath = Field(description="folder, HDF5 or SPEC file the detector writes")
    output: RelPath = Field(description="the live HDF5 file (.h5, .hdf5 or .nxs) to write")
    pipeline: RelPath = Field(description="pipeline YAML file whose steps run on each frame")
    grid: dict[DimName, Annotated[int, Field(ge=1, le=10_000_000)]] | None = Field(
        default=None, max_length=8, description="declared scan dims slow to fast: {Y: 6, X: 8}"
    )
    poni: RelPath | None = None
    mask: RelPath | None = None
    pattern: Glob | None = Field(default=None, description="file name glob in a source folder")
    until_complete: bool = False
    idle: Annotated[float, Field(gt=0, le=86_400)] | None = Field(
        default=None, description="stop after this many seconds without new frames"
    )


class StopJob(_Body):
    """``POST /api/jobs/{id}/stop``: Ctrl-C (SIGINT), then SIGKILL after ``grace`` seconds."""

    grace: Annotated[float, Field(ge=0, le=600)] | None = None


class FileQuery(_Query):
    """``GET /api/results?file=``."""

    file: RelPath


class MapQuery(_Query):
    """``GET /api/map``: one value per position of a result dataset."""

    file: RelPath
    group: H5Path = Field(description="the results group (from /api/results)")
    quantity: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_]{1,64}$")] = Field(
        description="a main dataset of the group: S, director, Labels, Intensity, …"
    )
    index: Annotated[int, Field(ge=0)] = Field(
        default=0, description="which value of the result dims (e.g. the ring) when several"
    )
    q_min: float | None = Field(default=None, description="with q_max: integrate over q")
    q_max: float | None = None


class PositionQuery(_Query):
    """``GET /api/position``: I(q), I(chi) and its fit at one position (flat index)."""

    file: RelPath
    index: Annotated[int, Field(ge=0)]
    integration: H5Path | None = Field(default=None, description="default: the latest")
    profiles: H5Path | None = Field(default=None, description="default: the latest")


class FrameQuery(_Query):
    """``GET /api/frame``: the detector frame at one position, downsampled, with q rings."""

    file: RelPath
    index: Annotated[int, Field(ge=0)]
    max_size: Annotated[int, Field(ge=16, le=1024)] = 256


# ---------------------------------------------------------------------------------- responses
class ErrorResponse(_Response):
    """Every refusal: the HTTP status and why."""

    status: int
    error: str


class FileEntry(_Response):
    path: str
    size: int
    modified: float


class FilesResponse(_Response):
    root: str
    files: list[FileEntry]
    truncated: bool


class DatasetEntry(_Response):
    name: str
    shape: list[int]
    dims: list[str]
    units: list[str]
    position_dims: int = Field(description="how many of the dims are position dims (first)")


class GroupEntry(_Response):
    path: str
    process: str
    source: str
    start_time: str
    complete_positions: int
    n_positions: int
    datasets: list[DatasetEntry]


class ResultsResponse(_Response):
    file: str
    live_state: str | None
    writer: str | None
    status: dict[str, Any] | None
    groups: list[GroupEntry]


class Axis(_Response):
    name: str
    units: str
    values: list[float]


class MapResponse(_Response):
    file: str
    group: str
    quantity: str
    units: str
    label: str
    dims: list[Axis] = Field(description="position dims, slow to fast")
    values: list[Number] = Field(description="one per position, C order of the dims")
    complete: list[bool]
    n_positions: int
    complete_positions: int


class Curve(_Response):
    x: list[Number]
    y: list[Number]
    sigma: list[Number] | None = None


class Ring(_Response):
    q: Number
    profile: Curve
    fit: list[Number] | None
    fit_parameters: dict[str, Number] | None
    fit_status: int | None


class LineMarker(_Response):
    energy: float = Field(description="keV")
    label: str


class XrfSpectrum(_Response):
    """The position's MCA spectrum and the fast linear fit of the latest XrfFit group."""

    group: str
    energy: list[Number] = Field(description="keV")
    counts: list[Number] = Field(description="as measured")
    model: list[Number] | None = Field(description="background + peaks; null outside the fit")
    background: list[Number] | None
    areas: dict[str, Number] = Field(description="per line group (as measured)")
    markers: list[LineMarker]


class PositionResponse(_Response):
    file: str
    index: int
    position: dict[str, float]
    integration: str | None
    q_units: str | None
    iq: Curve | None
    profiles: str | None
    fit_group: str | None
    fit_model: str | None
    rings: list[Ring]
    xrf: XrfSpectrum | None = None


class FrameResponse(_Response):
    file: str
    index: int
    measured: bool
    shape: list[int] = Field(description="the full frame (rows, cols)")
    step: int = Field(description="pixels per side of each block averaged")
    image: list[list[Number]] | None
    q: list[list[Number]] | None
    q_units: str | None
    rings: list[float]


class JobInfo(_Response):
    id: str
    state: str = Field(description="running, stopping, finished (exit 0), failed, stopped")
    pid: int | None
    command: list[str]
    source: str
    output: str
    pipeline: str
    started: float
    ended: float | None
    exit_code: int | None
    log_tail: list[str]
    progress: dict[str, Any] | None = Field(description="the watch's <output>.status.json")


class JobList(_Response):
    jobs: list[JobInfo]


REQUESTS: tuple[type[BaseModel], ...] = (
    StartJob,
    StopJob,
    FileQuery,
    MapQuery,
    PositionQuery,
    FrameQuery,
)
RESPONSES: tuple[type[BaseModel], ...] = (
    ErrorResponse,
    FilesResponse,
    ResultsResponse,
    MapResponse,
    PositionResponse,
    FrameResponse,
    JobInfo,
    JobList,
)

#: (method, path, request model, response model, authentication) of every endpoint.
ENDPOINTS: tuple[tuple[str, str, str | None, str, str], ...] = (
    ("GET", "/api/schema", None, "(this document)", "none"),
    ("GET", "/api/files", None, "FilesResponse", "signature or session"),
    ("GET", "/api/results", "FileQuery", "ResultsResponse", "signature or session"),
    ("GET", "/api/map", "MapQuery", "MapResponse", "signature or session"),
    ("GET", "/api/position", "PositionQuery", "PositionResponse", "signature or session"),
    ("GET", "/api/frame", "FrameQuery", "FrameResponse", "signature or session"),
    ("GET", "/api/jobs", None, "JobList", "signature or session"),
    ("GET", "/api/jobs/{id}", None, "JobInfo", "signature or session"),
    ("POST", "/api/jobs", "StartJob", "JobInfo", "signature"),
    ("POST", "/api/jobs/{id}/stop", "StopJob", "JobInfo", "signature"),
)


def published_schema() -> dict[str, Any]:
    """The JSON Schema of every request and response, and the endpoint table."""
    return {
        "title": "pyscatter service",
        "requests": {m.__name__: m.model_json_schema() for m in REQUESTS},
        "responses": {m.__name__: m.model_json_schema() for m in RESPONSES},
        "endpoints": [
            {"method": m, "path": p, "request": rq, "response": rs, "authentication": a}
            for m, p, rq, rs, a in ENDPOINTS
        ],
        "errors": ErrorResponse.model_json_schema(),
    }
