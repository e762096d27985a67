"""Pipelines: one YAML file that translates a scan and runs processing steps on it, resumably.

``pyscatter run pipeline.yaml`` (or :func:`run_pipeline`) runs, in order:

1. ``translate:`` (optional): the sources into ``output``. Skipped when ``output`` exists and
   was translated from the same sources (paths, sizes, sha256 as the translator recorded them)
   with the same options; refused when it exists but differs (unless ``overwrite: true``).
   An interrupted translation resumes (the translators keep a partial file).
2. ``steps:``: each a process of :mod:`pyscatter.processes.registry` with its parameters.
   Every process reuses complete results of the same parameters and resumes partial ones.

So the same command, run again after a kill, continues where it stopped. The whole file is
validated before anything runs: an unknown key or parameter, a value of the wrong type or a
missing file gives one message naming the file, the line and what is allowed. Relative paths
are relative to the folder of the YAML file. :data:`EXAMPLE` is a commented template
(``pyscatter run --example``).

Examples
--------
>>> from pyscatter.pipeline import validate_pipeline, EXAMPLE
>>> pipe = validate_pipeline(EXAMPLE, check_files=False)
>>> [s.name for s in pipe.steps]
['integrate', 'profiles', 'fit', 'order']
"""

from __future__ import annotations

import hashlib
import inspect
import json
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from pyscatter.errors import InputError, PyscatterError
from pyscatter.processes.options import (
    EXECUTION,
    RUN_OPTIONS,
    check_execution,
    cluster_problems,
    hint_names,
    is_array_hint,
    is_path_hint,
    keyword_parameters,
    label,
    step_parameters,
    type_problem,
)

__all__ = [
    "EXAMPLE",
    "Pipeline",
    "Step",
    "StepSummary",
    "TranslateStep",
    "run_pipeline",
    "translation_differences",
    "validate_pipeline",
]

log = logging.getLogger(__name__)

EXAMPLE = """\
# pyscatter pipeline: `pyscatter run THIS.yaml` runs it; the same command again continues
# where a killed or interrupted run stopped (finished steps are reused, not recomputed).
# Relative paths are relative to the folder of this file.
# Try it on the demo data:  pyscatter demo out && pyscatter run --example > out/pipeline.yaml
#                           pyscatter run out/pipeline.yaml

output: scan.h5                    # the USID HDF5 file everything is written to

translate:                         # optional: omit it when `output` exists already
  format: images                   # a translator (`pyscatter formats`), or auto
  sources: frames/frame_*.edf      # files, glob patterns or folders (a list is fine)
  positions: frames/positions.csv  # every other key is an option of that translator
  poni: demo.poni
  mask: frames/mask.edf
  # overwrite: true                # replace `output` if it was translated from other sources

execution:                         # optional; applies to every step
  n_jobs: 1                        # worker processes
  max_mem_mb: 512                  # memory budget of one block of positions
  progress: true
  # read_ahead: false              # serial runs: no thread reading the next block of frames
  # scheduler: local               # a dask LocalCluster, or a scheduler address
  # cluster: {kind: slurm, cores: 8, memory: 16GB, walltime: "01:00:00", jobs: 4}

steps:                             # `- name: {parameters}`, run in order
  - integrate: {npt: 300, unit: q_nm^-1, error_model: poisson, polarization_factor: 0.99}
  - profiles: {q: [0.45, 0.8], half_width: 0.06, npt_azim: 180, polarization_factor: 0.99}
  - fit: {model: maier_saupe}      # fits the latest azimuthal profiles
  - order: {}                      # order parameter and director from the latest fit
  # each step may also give `source:` (a dataset path in the file), `override: true`
  # (recompute even if the same parameters ran before) and its own `execution:`.
"""

_TOP = {
    "output": "the HDF5 file (required)",
    "translate": "the translation of the sources into output (optional)",
    "execution": "n_jobs, scheduler, cluster, max_mem_mb, progress, read_ahead (optional)",
    "steps": "the list of processing steps",
}
_STEP_KEYS = {
    "source": ("a dataset path in the file, e.g. /Measurement_000/Channel_000/Raw_Data", (str,)),
    "override": (label(EXECUTION["override"]), (bool,)),
    "execution": ("a mapping like the top-level execution:", (dict,)),
}
#: Translator options the pipeline sets itself, or that make no sense in a file.
_TRANSLATE_RESERVED = ("sources", "h5_path", "frames", "format")
#: Translators that record exactly one source record per source named.
_ONE_RECORD_PER_SOURCE = ("images", "saxslab")


# --------------------------------------------------------------------------- data model


@dataclass
class TranslateStep:
    """The validated ``translate:`` section."""

    format: str
    patterns: list[str]
    sources: list[Path]
    options: dict[str, Any]
    overwrite: bool
    line: int | None
    translator: Any = None  # a Translator instance (None: format auto, not yet guessed)


@dataclass
class Step:
    """One validated processing step."""

    name: str
    process: type
    params: dict[str, Any]
    source: str | None
    override: bool
    execution: dict[str, Any]
    line: int | None


@dataclass
class Pipeline:
    """A validated pipeline: what :func:`run_pipeline` runs."""

    where: str
    output: Path
    translate: TranslateStep | None
    execution: dict[str, Any]
    steps: list[Step]


@dataclass
class StepSummary:
    """What one step of a pipeline did.

    ``action`` is ``translated`` or ``skipped`` (the translate step), or ``computed``,
    ``resumed`` or ``reused`` (a process step); ``target`` is the file or results group.
    """

    step: str
    action: str
    target: str
    line: int | None = None
    computed_positions: int = 0
    total_positions: int = 0
    seconds: float = 0.0


@dataclass
class _ImageFile:
    """A process parameter that takes an array, given as an image or .npy file."""

    path: Path


# --------------------------------------------------------------------------- YAML with lines


@dataclass
class _Doc:
    data: Any
    where: str
    base: Path
    lines: dict[tuple, int] = field(default_factory=dict)
    problems: list[tuple[int | None, str]] = field(default_factory=list)

    def line(self, path: tuple) -> int | None:
        path = tuple(str(p) for p in path)
        while path and path not in self.lines:
            path = path[:-1]
        return self.lines.get(path)

    def problem(self, path: tuple, message: str) -> None:
        self.problems.append((self.line(path), message))

    def raise_problems(self) -> None:
        if not self.problems:
            return
        text = "\n".join(
            f"{self.where}:{line}: {msg}" if line else f"{self.where}: {msg}"
            for line, msg in sorted(self.problems, key=lambda p: p[0] or 0)
        )
        raise InputError(text)


def _load(spec: str | os.PathLike | Mapping, base_dir: str | os.PathLike | None) -> _Doc:
    """The pipeline as data with the line of every key (a path, YAML text, or a dict)."""
    if isinstance(spec, Mapping):
        base = Path(base_dir) if base_dir is not None else Path.cwd()
        return _Doc(dict(spec), "pipeline", base.resolve())
    is_text = isinstance(spec, str) and ("\n" in spec or (": " in spec and not _is_file(spec)))
    if not is_text:
        path = Path(spec)
        if not path.is_file():
            raise InputError(f"pipeline file not found: {path}")
        size = path.stat().st_size
        if size > MAX_PIPELINE_BYTES:
            raise InputError(
                f"{path}: {size} bytes; a pipeline file is at most {MAX_PIPELINE_BYTES} bytes"
            )
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError as err:
            raise InputError(f"{path}: not a UTF-8 text file ({err.reason})") from None
        where = str(path)
        base = Path(base_dir) if base_dir is not None else path.resolve().parent
    else:
        text, where = str(spec), "pipeline"
        base = Path(base_dir) if base_dir is not None else Path.cwd()
    if len(text) > MAX_PIPELINE_BYTES:
        raise InputError(
            f"{where}: {len(text)} characters; a pipeline is at most {MAX_PIPELINE_BYTES}"
        )
    loader = _NoAliasLoader(text)
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        at = f":{mark.line + 1}" if mark is not None else ""
        problem = getattr(err, "problem", None) or str(err)
        raise InputError(f"{where}{at}: not valid YAML: {problem}") from err
    finally:
        loader.dispose()
    doc = _Doc(data, where, base.resolve())
    if node is not None:
        _index_lines(node, (), doc)
    return doc


MAX_PIPELINE_BYTES = 1 << 20
"""Largest pipeline file (1 MiB): pipelines are a few hundred bytes."""


class _NoAliasLoader(yaml.SafeLoader):
    """PyYAML's safe loader that refuses anchors and aliases (no "billion laughs")."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None) is not None:
            raise yaml.composer.ComposerError(
                None,
                None,
                "YAML anchors and aliases (&name, *name) are not allowed in a pipeline; "
                "write the values out",
                event.start_mark,
            )
        return super().compose_node(parent, index)


def _is_file(text: str) -> bool:
    try:
        return Path(text).is_file()
    except OSError:  # e.g. a name too long to be a path
        return False


def _index_lines(node: yaml.Node, path: tuple, doc: _Doc) -> None:
    doc.lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key, value in node.value:
            name = str(key.value)
            if name in seen:
                doc.problems.append((key.start_mark.line + 1, f"duplicate key {name!r}"))
            seen.add(name)
            doc.lines[(*path, name)] = key.start_mark.line + 1
            _index_lines(value, (*path, name), doc)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _index_lines(item, (*path, str(i)), doc)


# --------------------------------------------------------------------------- validation


def validate_pipeline(
    spec: str | os.PathLike | Mapping,
    *,
    check_files: bool = True,
    base_dir: str | os.PathLike | None = None,
) -> Pipeline:
    """Check a pipeline completely, before anything runs.

    Parameters
    ----------
    spec : path, YAML text or mapping
        The pipeline file (a path), its text, or the same content as a dict.
    check_files : bool
        Also check that the sources, option files and (without ``translate:``) the output
        exist. False checks the structure only (e.g. for a template).
    base_dir : path, optional
        Folder relative paths are resolved against (default: the folder of the file; the
        current folder for text and dicts).

    Returns
    -------
    Pipeline

    Raises
    ------
    InputError
        Every problem found, one per line, each as ``FILE:LINE: what is wrong; what is
        allowed``.
    """
    doc = _load(spec, base_dir)
    data = doc.data
    if not isinstance(data, dict):
        doc.problem((), f"a pipeline is a mapping with keys {', '.join(_TOP)}; got {data!r}")
        doc.raise_problems()
    for key in data:
        if key not in _TOP:
            doc.problem((key,), _unknown("key", key, _TOP))
    output = data.get("output")
    out_path = Path()
    if not isinstance(output, str) or not output:
        doc.problem(
            ("output",),
            "output: expected the path of the HDF5 file to write, e.g. "
            f"`output: scan.h5`; got {output!r}",
        )
    else:
        out_path = _resolve(doc, output)
    translate = None
    if data.get("translate") is not None:
        translate = _check_translate(doc, data["translate"], check_files)
    execution = _check_execution(doc, data.get("execution"), ("execution",))
    steps_data = data.get("steps", [])
    steps: list[Step] = []
    if steps_data is None:
        steps_data = []
    if not isinstance(steps_data, list):
        doc.problem(("steps",), "steps: expected a list of `- name: {parameters}` items")
    else:
        steps = [
            s for i, item in enumerate(steps_data) if (s := _check_step(doc, item, i, check_files))
        ]
    if not steps_data and translate is None and "steps" not in data:
        doc.problem((), "nothing to do: give a translate: section, steps:, or both")
    if check_files and translate is None and output and not out_path.is_file():
        doc.problem(
            ("output",),
            f"output {out_path} does not exist and there is no translate: section to make it",
        )
    doc.raise_problems()
    return Pipeline(doc.where, out_path, translate, execution, steps)


def _unknown(what: str, name: Any, allowed: Mapping | list) -> str:
    return f"unknown {what} {name!r}; allowed: {', '.join(map(str, allowed))}"


def _resolve(doc: _Doc, text: str) -> Path:
    path = Path(os.path.expanduser(text))
    return path if path.is_absolute() else doc.base / path


def _check_execution(doc: _Doc, value: Any, path: tuple) -> dict[str, Any]:
    """An ``execution:`` mapping, checked by the declaration of the execution options."""
    out: dict[str, Any] = {}
    if value is None:
        return out
    if not isinstance(value, dict):
        doc.problem(path, f"{path[-1]}: expected a mapping of {', '.join(RUN_OPTIONS)}")
        return out
    for key, item in value.items():
        where = (*path, key)
        if key not in RUN_OPTIONS:
            doc.problem(where, _unknown("execution option", key, RUN_OPTIONS))
            continue
        try:
            out[key] = check_execution(key, item)
        except InputError as err:
            doc.problem(where, f"{key}: {err}")
            continue
        if key == "cluster" and item:
            for sub, message in cluster_problems(item):
                doc.problem((*where, sub) if sub else where, message)
    return out


def _check_translate(doc: _Doc, value: Any, check_files: bool) -> TranslateStep | None:
    from pyscatter.translators import expand_sources, get_translator, guess_translator

    path = ("translate",)
    if not isinstance(value, dict):
        doc.problem(path, "translate: expected a mapping with format, sources and options")
        return None
    fmt = value.get("format", "auto")
    if not isinstance(fmt, str):
        doc.problem((*path, "format"), f"format: expected a translator name or auto, got {fmt!r}")
        fmt = "auto"
    raw = value.get("sources")
    items = [raw] if isinstance(raw, str) else raw
    if not isinstance(items, list) or not items or not all(isinstance(s, str) for s in items):
        doc.problem(
            (*path, "sources"),
            f"sources: expected a file, glob pattern or folder, or a list of them; got {raw!r}",
        )
        items = []
    patterns = [str(_resolve(doc, s)) for s in items]
    translator = None
    if fmt != "auto":
        try:
            translator = get_translator(fmt)
        except InputError as err:
            doc.problem((*path, "format"), str(err))
    sources: list[Path] = []
    if check_files and patterns:
        try:
            sources = expand_sources(patterns)
            if translator is None and fmt == "auto":
                translator = guess_translator(patterns if len(patterns) > 1 else patterns[0])
        except PyscatterError as err:
            doc.problem((*path, "sources"), f"sources: {err}")
    overwrite = value.get("overwrite", False)
    if not isinstance(overwrite, bool):
        doc.problem((*path, "overwrite"), f"overwrite: expected true or false, got {overwrite!r}")
    options = {k: v for k, v in value.items() if k not in ("format", "sources", "overwrite")}
    if translator is not None:
        options = _check_options(
            doc,
            options,
            keyword_parameters(translator.translate, _TRANSLATE_RESERVED),
            path,
            f"format {translator.name!r}",
            check_files,
        )
    option_files = {os.path.realpath(v) for v in options.values() if isinstance(v, Path)}
    sources = [s for s in sources if os.path.realpath(s) not in option_files]
    return TranslateStep(
        fmt, patterns, sources, options, bool(overwrite), doc.line(path), translator
    )


def _check_options(
    doc: _Doc,
    options: dict[str, Any],
    allowed: dict[str, inspect.Parameter],
    path: tuple,
    owner: str,
    check_files: bool,
) -> dict[str, Any]:
    """Names and types of keyword options against a signature; file options resolved."""
    out = {}
    for key, value in options.items():
        where = (*path, key)
        if key not in allowed:
            doc.problem(
                where, f"{owner} has no parameter {key!r}; its parameters are: {', '.join(allowed)}"
            )
            continue
        annotation = allowed[key].annotation
        problem = type_problem(annotation, value)
        if problem and isinstance(value, str) and "float" in hint_names(annotation):
            try:  # YAML 1.1 reads 1e-3 (no dot) as text
                value, problem = float(value), None
            except ValueError:
                pass
        if problem:
            doc.problem(where, f"{key}: {problem}")
            continue
        if isinstance(value, str) and (is_path_hint(annotation) or is_array_hint(annotation)):
            file = _resolve(doc, value)
            if check_files and not file.exists():
                doc.problem(where, f"{key}: no such file: {file}")
            value = file if is_path_hint(annotation) else _ImageFile(file)
        elif isinstance(value, list) and is_array_hint(annotation):
            try:
                value = np.asarray(value, dtype=np.float64)
            except (TypeError, ValueError):
                doc.problem(
                    where, f"{key}: expected an image file or a rectangular array of numbers"
                )
                continue
        out[key] = value
    return out


def _check_step(doc: _Doc, item: Any, index: int, check_files: bool) -> Step | None:
    from pyscatter.processes.registry import get_process

    if not (isinstance(item, dict) and len(item) == 1):
        doc.problem(
            ("steps", index),
            f"step {index + 1}: expected one `name: {{parameters}}` mapping, e.g. "
            f"`- integrate: {{npt: 300}}`; got {item!r}",
        )
        return None
    ((name, params),) = item.items()
    path = ("steps", index, name)
    if params is None:
        params = {}
    if not isinstance(params, dict):
        doc.problem(path, f"step {name!r}: expected a mapping of parameters, got {params!r}")
        return None
    try:
        process = get_process(str(name))
    except InputError as err:
        doc.problem(path, str(err))
        return None
    for key, (allowed_text, types) in _STEP_KEYS.items():
        if key in params and not isinstance(params[key], types):
            doc.problem((*path, key), f"{key}: expected {allowed_text}, got {params[key]!r}")
    execution = _check_execution(doc, params.get("execution"), (*path, "execution"))
    physics = {k: v for k, v in params.items() if k not in _STEP_KEYS}
    for key in [k for k in physics if k in RUN_OPTIONS]:
        doc.problem(
            (*path, key),
            f"{key} is an execution option: put it under execution: "
            "(for every step) or under this step's own execution:",
        )
        del physics[key]
    allowed = step_parameters(process)
    owner = f"step {name!r} ({process.__name__})"
    checked = _check_options(doc, physics, allowed, path, owner, check_files)
    missing = [
        n for n, p in allowed.items() if p.default is inspect.Parameter.empty and n not in physics
    ]
    if missing:
        doc.problem(path, f"{owner}: missing required parameter(s) {', '.join(missing)}")
    return Step(
        str(name),
        process,
        checked,
        params.get("source"),
        bool(params.get("override", False)),
        execution,
        doc.line(path),
    )


# --------------------------------------------------------------------------- translate: skip?


def _describe(value: Any) -> Any:
    """An option as the translators record it (paths resolved, JSON-like)."""
    if isinstance(value, os.PathLike):
        return str(Path(value).resolve())
    if isinstance(value, np.ndarray):
        return f"array {tuple(value.shape)} {value.dtype}"
    if isinstance(value, Mapping):
        return {str(k): _describe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_describe(v) for v in value]
    return value


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _json_attr(attrs: Any, key: str, default: Any) -> Any:
    value = attrs.get(key)
    if value is None:
        return default
    if isinstance(value, bytes):
        value = value.decode()
    if isinstance(value, str):
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    return value


def translation_differences(h5_path: str | os.PathLike, step: TranslateStep) -> list[str]:
    """How ``h5_path`` differs from what ``step`` would translate; empty if it is the same.

    Compared with what the translator recorded in ``Measurement_000``: its name, every source
    file it read (path, size, then sha256 — the sources are read once more), and every option
    it recorded against the pipeline's options (defaults for those not given). Paths are
    compared as recorded, absolute: the same files in a moved folder count as other sources.
    """
    from pyscatter.io.xarray import open_for_reading

    with open_for_reading(h5_path) as h5:
        meas = h5.get("Measurement_000")
        if meas is None:
            return ["it holds no Measurement_000 (not a pyscatter file)"]
        name = str(meas.attrs.get("translator", ""))
        records = _json_attr(meas.attrs, "sources", [])
        recorded_options = _json_attr(meas.attrs, "options", {})
    diffs = []
    if step.translator is not None and name != step.translator.name:
        diffs.append(f"translated by {name!r}, not {step.translator.name!r}")
    if not isinstance(records, list) or not records:
        return [*diffs, "no source files recorded"]
    recorded = {str(r.get("path")): r for r in records if isinstance(r, dict)}
    named = {os.path.realpath(p) for p in step.sources}
    new = sorted(named - set(recorded))
    if new:
        diffs.append(f"{len(new)} source(s) not in it, e.g. {new[0]}")
    dropped = sorted(set(recorded) - named)
    if dropped and name in _ONE_RECORD_PER_SOURCE:
        diffs.append(f"{len(dropped)} of its sources no longer named, e.g. {dropped[0]}")
    diffs += _options_differences(step, recorded_options)
    if diffs:
        return diffs
    for path, record in recorded.items():  # sizes first: cheap
        file = Path(path)
        if not file.is_file():
            diffs.append(f"source {path} is gone")
        elif file.stat().st_size != record.get("size"):
            diffs.append(f"source {path} changed size")
    if diffs:
        return diffs
    for path, record in recorded.items():
        if record.get("sha256") and _sha256(Path(path)) != record["sha256"]:
            diffs.append(f"source {path} changed (sha256 differs)")
    return diffs


def _options_differences(step: TranslateStep, recorded: Any) -> list[str]:
    if step.translator is None or not isinstance(recorded, dict):
        return []
    params = keyword_parameters(step.translator.translate, _TRANSLATE_RESERVED)
    effective = {
        n: p.default for n, p in params.items() if p.default is not inspect.Parameter.empty
    }
    effective.update(
        {k: (v.path if isinstance(v, _ImageFile) else v) for k, v in step.options.items()}
    )
    diffs = []
    for key, value in recorded.items():
        if key in ("overwrite", "progress", "resume") or key not in params:
            continue
        mine = json.loads(json.dumps(_describe(effective.get(key)), default=str))
        if mine != value:
            given = "" if key in step.options else " (default)"
            diffs.append(f"option {key}: recorded {value!r}, pipeline {mine!r}{given}")
    return diffs


# --------------------------------------------------------------------------- running


def run_pipeline(
    spec: str | os.PathLike | Mapping,
    *,
    base_dir: str | os.PathLike | None = None,
) -> list[StepSummary]:
    """Validate ``spec`` completely, then run its translation and steps in order.

    Running it again continues an interrupted run: the translation is skipped when ``output``
    holds the same translation, complete steps are reused and partial ones resumed.

    Parameters
    ----------
    spec : path, YAML text or mapping
        See :func:`validate_pipeline`.
    base_dir : path, optional
        Folder relative paths are resolved against.

    Returns
    -------
    list of StepSummary
        One per step run, the translation first.

    Raises
    ------
    InputError
        An invalid pipeline (before anything runs), an output translated from other sources,
        or a step whose parameters its process refuses (named with its line).
    """
    pipe = validate_pipeline(spec, base_dir=base_dir)
    summaries = []
    if pipe.translate is not None:
        summaries.append(_run_translate(pipe, pipe.translate))
    for step in pipe.steps:
        summaries.append(_run_step(pipe, step))
    return summaries


def _run_translate(pipe: Pipeline, step: TranslateStep) -> StepSummary:
    import time

    from pyscatter.translators import translate

    where = f"{pipe.where}:{step.line}" if step.line else pipe.where
    overwrite = False
    if pipe.output.exists():
        diffs = translation_differences(pipe.output, step)
        if not diffs:
            log.info("translate: %s already holds this translation; skipped", pipe.output)
            return StepSummary("translate", "skipped", str(pipe.output), step.line)
        if not step.overwrite:
            raise InputError(
                f"{where}: {pipe.output} exists but is not a translation of these sources with "
                f"these options ({'; '.join(diffs)}). Choose another output, or set "
                "`overwrite: true` under translate: to replace it (its results are lost)."
            )
        log.warning("translate: replacing %s (%s)", pipe.output, "; ".join(diffs))
        overwrite = True
    options = {k: (v.path if isinstance(v, _ImageFile) else v) for k, v in step.options.items()}
    options.setdefault("progress", pipe.execution.get("progress", True))
    fmt = step.translator.name if step.translator is not None else step.format
    t0 = time.perf_counter()
    translate(
        [str(s) for s in step.sources], pipe.output, format=fmt, overwrite=overwrite, **options
    )
    return StepSummary(
        "translate", "translated", str(pipe.output), step.line, seconds=time.perf_counter() - t0
    )


def _read_array(path: Path) -> Any:
    import numpy as np

    if path.suffix.lower() == ".npy":
        return np.load(path)
    import fabio

    try:
        with fabio.open(str(path)) as image:
            return image.data
    except Exception as err:
        raise InputError(f"{path}: not an image fabio reads ({err})") from err


def _run_step(pipe: Pipeline, step: Step) -> StepSummary:
    from pyscatter.processes.base import run_on_file

    where = f"{pipe.where}:{step.line}" if step.line else pipe.where
    params = {
        k: _read_array(v.path) if isinstance(v, _ImageFile) else v for k, v in step.params.items()
    }
    defaults = {name: EXECUTION[name].default for name in RUN_OPTIONS}
    execution = {**defaults, **pipe.execution, **step.execution}
    if step.source is not None:
        from pyscatter.io.xarray import open_for_reading

        with open_for_reading(pipe.output) as h5:
            found = step.source in h5
        if not found:
            raise InputError(
                f"{where}: step {step.name!r}: source: no dataset {step.source!r} in {pipe.output}"
            )
    try:
        summary = run_on_file(
            pipe.output,
            step.process,
            source=step.source,
            override=step.override,
            command=f"pyscatter run {pipe.where}",
            **params,
            **execution,
        )
    except InputError as err:
        raise InputError(f"{where}: step {step.name!r}: {err}") from err
    action = "reused" if summary.reused else "resumed" if summary.resumed else "computed"
    log.info("%s: %s %s", step.name, action, summary.group)
    return StepSummary(
        step.name,
        action,
        summary.group,
        step.line,
        summary.computed_positions,
        summary.total_positions,
        summary.seconds,
    )
