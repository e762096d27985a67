"""What a batch runs: the files (globs, lists), their outputs and result files, the pipeline.

Everything here is checked before anything runs or is submitted: a pattern matching nothing,
a missing file, two inputs with the same output, an invalid pipeline are refused with one
message naming them.
"""

from __future__ import annotations

import dataclasses
import glob
import json
import os
import re
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pyscatter.errors import InputError
from pyscatter.pipeline import Pipeline, TranslateStep, validate_pipeline

__all__ = [
    "RESULT_SUFFIX",
    "BatchFile",
    "BatchPlan",
    "expand_inputs",
    "file_pipeline",
    "load_pipeline",
    "make_plan",
    "read_plan",
]

#: The per-file result written next to each output: ``scan.h5`` → ``scan.h5.batch.json``.
RESULT_SUFFIX = ".batch.json"
_GLOB_CHARS = re.compile(r"[*?\[]")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
#: Files a pattern never yields: result records, progress records (``.status.json``).
_NOT_INPUTS = (RESULT_SUFFIX, ".status.json", ".tmp")


@dataclass(frozen=True)
class BatchFile:
    """One file of a batch: the input named, the HDF5 file processed, its result record."""

    input: Path
    output: Path
    result: Path

    def as_dict(self) -> dict[str, str]:
        return {"input": str(self.input), "output": str(self.output), "result": str(self.result)}


@dataclass(frozen=True)
class BatchPlan:
    """A checked batch: the pipeline file, the translation format (or None), the files.

    ``token`` names this batch run; each file's result record carries it, so a record left by
    an earlier run is never taken for this run's.
    """

    pipeline: Path
    translate: str | None
    files: tuple[BatchFile, ...]
    token: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "pipeline": str(self.pipeline),
            "translate": self.translate,
            "token": self.token,
            "files": [f.as_dict() for f in self.files],
        }

    def write(self, path: Path) -> Path:
        """The plan as JSON (what each task of a job reads: no shell ever sees the paths)."""
        from pyscatter.batch.records import write_json_atomic

        write_json_atomic(path, self.as_dict())
        return path


def read_plan(path: str | os.PathLike) -> BatchPlan:
    """A plan written by :meth:`BatchPlan.write`.

    Raises
    ------
    InputError
        The file is missing or not such a plan.
    """
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        files = tuple(
            BatchFile(Path(f["input"]), Path(f["output"]), Path(f["result"])) for f in data["files"]
        )
        return BatchPlan(Path(data["pipeline"]), data["translate"], files, str(data["token"]))
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise InputError(
            f"{path}: not a batch file list written by pyscatter batch ({err})"
        ) from None


def _check_path(path: Path, what: str) -> Path:
    if _CONTROL.search(str(path)):
        raise InputError(
            f"{what} {str(path)!r}: a path with a control character (newline, tab …) is not "
            "accepted by pyscatter batch; rename the file"
        )
    return path


def expand_inputs(
    items: list[str], from_list: str | os.PathLike | None = None, *, folders: bool = False
) -> list[Path]:
    """The files named by paths and glob patterns (and the lines of ``from_list``), in order.

    Patterns are sorted naturally (``x_2`` before ``x_10``); duplicates are dropped, keeping
    the first; result and progress records (``*.batch.json``, ``*.status.json``) are
    never inputs. ``from_list`` holds one
    path or pattern a line, relative to the current folder; blank lines and ``#`` comments are
    skipped.

    Raises
    ------
    InputError
        No input, a pattern matching nothing (named), a file that does not exist, a folder
        when ``folders`` is False.
    """
    from pyscatter.translators.base import natural_key

    names = list(items)
    if from_list is not None:
        try:
            lines = Path(from_list).read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as err:
            raise InputError(f"--from-list {from_list}: cannot read it ({err})") from None
        names += [ln.strip() for ln in lines if ln.strip() and not ln.lstrip().startswith("#")]
    if not names:
        raise InputError("no input files: give files or glob patterns, or --from-list FILE")
    found: dict[str, Path] = {}
    for name in names:
        text = os.path.expanduser(name)
        if _GLOB_CHARS.search(text):
            matches = [
                Path(m)
                for m in glob.glob(text, recursive=True)
                if not m.endswith(_NOT_INPUTS) and (folders or os.path.isfile(m))
            ]
            if not matches:
                raise InputError(f"{name!r} matches no file")
            paths = sorted(matches, key=natural_key)
        else:
            path = Path(text)
            if not path.exists():
                raise InputError(f"{name}: no such file")
            if path.is_dir() and not folders:
                raise InputError(
                    f"{name}: a folder; batch takes files (a pattern such as '{name}/*.h5'), "
                    "or folders to translate with --translate"
                )
            paths = [path]
        for path in paths:
            found.setdefault(os.path.realpath(path), _check_path(path.absolute(), "input"))
    return list(found.values())


def load_pipeline(path: str | os.PathLike, translate: str | None) -> tuple[Pipeline, str | None]:
    """The pipeline file checked for a batch, and the translation format (None: none).

    Its ``output:`` and ``translate: sources:`` are not used (each file of the batch is its
    own); its ``translate:`` options are, with its format or ``translate``.

    Raises
    ------
    InputError
        Every problem of the pipeline (file, line, what is allowed), a ``--translate`` format
        other than the pipeline's, or nothing to do.
    """
    from pyscatter.translators import get_translator

    pipe = validate_pipeline(path, watching=True)
    fmt = None
    if pipe.translate is not None:
        fmt = pipe.translate.format
        if translate is not None and translate != fmt:
            raise InputError(
                f"{pipe.where}:{pipe.translate.line}: translate: format {fmt!r}, but --translate "
                f"{translate!r}; give the same format (or leave out --translate)"
            )
    elif translate is not None:
        translator = get_translator(translate)
        pipe = dataclasses.replace(
            pipe, translate=TranslateStep(translator.name, [], [], {}, False, None, translator)
        )
        fmt = translator.name
    if pipe.translate is None and not pipe.steps:
        raise InputError(f"{pipe.where}: no steps: nothing to do for a batch (give steps:)")
    return pipe, fmt


def file_pipeline(pipe: Pipeline, item: BatchFile) -> Pipeline:
    """``pipe`` for one file: its output, and its translation from ``item.input``."""
    translate = pipe.translate
    if translate is not None:
        from pyscatter.translators import expand_sources

        option_files = {
            os.path.realpath(v) for v in translate.options.values() if isinstance(v, Path)
        }
        sources = [
            s for s in expand_sources([str(item.input)]) if os.path.realpath(s) not in option_files
        ]
        translate = dataclasses.replace(translate, patterns=[str(item.input)], sources=sources)
    return dataclasses.replace(pipe, output=item.output, translate=translate)


def _output_name(path: Path) -> str:
    return (path.stem if path.is_file() else path.name) + ".h5"


def make_plan(
    inputs: list[Path],
    pipeline: str | os.PathLike,
    *,
    translate: str | None = None,
    out_dir: str | os.PathLike | None = None,
) -> tuple[BatchPlan, Pipeline]:
    """Check the pipeline and the files; derive each output (translated: ``OUT_DIR/stem.h5``).

    Raises
    ------
    InputError
        An invalid pipeline, translation without ``out_dir``, two inputs with one output, an
        output that would replace its input, a folder when nothing is translated.
    """
    pipeline_file = _check_path(Path(pipeline).absolute(), "pipeline")
    if not pipeline_file.is_file():
        raise InputError(f"--pipeline {pipeline}: no such file")
    pipe, fmt = load_pipeline(pipeline_file, translate)  # a Path: never taken for YAML text
    if fmt is not None and out_dir is None:
        raise InputError(
            "--out-dir: give the folder the translated files go to (translation by "
            f"{'--translate' if translate else pipe.where + ' translate:'})"
        )
    files: list[BatchFile] = []
    seen: dict[str, Path] = {}
    for path in inputs:
        if fmt is None:
            if path.is_dir():
                raise InputError(f"{path}: a folder, and nothing translates it (--translate)")
            output = path
        else:
            output = _check_path(Path(out_dir).absolute() / _output_name(path), "output")  # type: ignore[arg-type]
            if os.path.realpath(output) == os.path.realpath(path):
                raise InputError(
                    f"{path}: its translation would replace it; give another --out-dir"
                )
        key = os.path.realpath(output)
        if key in seen:
            raise InputError(f"{seen[key]} and {path} would both be processed into {output}")
        seen[key] = path
        files.append(BatchFile(path, output, output.with_name(output.name + RESULT_SUFFIX)))
    plan = BatchPlan(pipeline_file, fmt, tuple(files), uuid.uuid4().hex[:12])
    return plan, pipe
