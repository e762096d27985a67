"""What happened to each file of a batch: the per-file result record and the batch summary.

Each file's run writes ``OUTPUT.batch.json`` (:data:`~pyscatter.batch.plan.RESULT_SUFFIX`)
atomically (a temporary file, flushed, renamed): when it starts (``running``), after each
step, and at the end. The summary is built from these records, so it says what really
happened in a job on another node; a record still ``running`` after its job ended is a run
that was killed (``partial``).

Statuses: ``ran`` (something was computed), ``reused`` (everything was complete already),
``failed`` (with the one-line error), ``partial`` (stopped before the end: killed, time limit,
interrupted; run the batch again to resume), ``not run`` (never started).
"""

from __future__ import annotations

import json
import os
import tempfile
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "STATUSES",
    "FileResult",
    "read_record",
    "summary_dict",
    "summary_table",
    "write_json_atomic",
]

STATUSES = ("ran", "reused", "failed", "partial", "not run")


def write_json_atomic(path: str | os.PathLike, data: Any) -> None:
    """Write ``data`` as JSON so that a reader sees the old file or the new one, never a part."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(data, handle, indent=1)
            handle.write("\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


@dataclass
class FileResult:
    """What the batch did to one file.

    ``steps`` are the steps done, each ``{"step", "action", "seconds", …}``; ``steps_total``
    counts the translation and the pipeline's steps; ``job`` is the SLURM job (``1234_3``).
    """

    input: str
    output: str
    status: str
    steps_total: int
    steps: list[dict[str, Any]] = field(default_factory=list)
    seconds: float | None = None
    error: str = ""
    job: str = ""

    @property
    def ok(self) -> bool:
        return self.status in ("ran", "reused")

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> FileResult:
        names = cls.__dataclass_fields__
        return cls(**{k: v for k, v in record.items() if k in names})


def read_record(path: str | os.PathLike, token: str) -> dict[str, Any] | None:
    """The result record at ``path`` if it belongs to batch run ``token``; else None."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("token") != token:
        return None
    return data


def _steps_text(result: FileResult) -> str:
    return f"{len(result.steps)}/{result.steps_total}"


def summary_table(results: list[FileResult], root: str | os.PathLike | None = None) -> str:
    """A plain-text table: file, status, steps done, time, error; then the counts."""
    base = Path(root if root is not None else Path.cwd())

    def name(path: str) -> str:
        try:
            return str(Path(path).relative_to(base))
        except ValueError:
            return path

    rows = [
        (
            name(r.input),
            r.status,
            _steps_text(r),
            "" if r.seconds is None else f"{r.seconds:.1f} s",
            r.job,
            r.error,
        )
        for r in results
    ]
    head = ("file", "status", "steps", "time", "job", "error")
    widths = [max(len(str(x)) for x in col) for col in zip(head, *rows, strict=True)]
    lines = [
        "  ".join(str(x).ljust(w) for x, w in zip(row, widths, strict=True)).rstrip()
        for row in [head, *rows]
    ]
    counts = Counter(r.status for r in results)
    total = f"{len(results)} file{'s' if len(results) != 1 else ''}: " + ", ".join(
        f"{counts[s]} {s}" for s in STATUSES if counts[s]
    )
    return "\n".join([*lines, total])


def summary_dict(results: list[FileResult], **about: Any) -> dict[str, Any]:
    """The summary as JSON-ready data: ``about`` (pipeline, scheduler …), counts, files."""
    counts = Counter(r.status for r in results)
    return {
        **about,
        "ok": all(r.ok for r in results),
        "counts": {s: counts[s] for s in STATUSES},
        "files": [asdict(r) for r in results],
    }
