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
(``pyscatter run --example``). :func:`validate_step` checks one step the same way (the command
of a plugin step, ``pyscatter STEP FILE --set key=value``, uses it).

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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from pyscatter.errors import InputError, PyscatterError
from pyscatter.pipeline_checks import (
    MAX_PIPELINE_BYTES,
    Document,
    ImageFile,
    NoAliasLoader,
    check_execution_section,
    check_options,
    load_document,
    read_array,
    resolve_path,
    unknown_message,
)
from pyscatter.processes.options import (
    EXECUTION,
    RUN_OPTIONS,
    keyword_parameters,
    label,
    step_parameters,
)

__all__ = [
    "EXAMPLE",
    "MAX_PIPELINE_BYTES",
    "Pipeline",
    "Step",
    "StepSummary",
    "STEP_KEYS",
    "TranslateStep",
    "run_pipeline",
    "run_step",
    "run_translate",
    "translation_differences",
    "validate_pipeline",
    "validate_step",
    "yaml_value",
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
  # each step may also give `source:` (a dataset path in the file, or an earlier step's name:
  # its results, e.g. `- cave: {}` then `- integrate: {source: cave}`), `override: true`
  # (recompute even if the same parameters ran before) and its own `execution:`.
"""

_TOP = {
    "output": "the HDF5 file (required)",
    "translate": "the translation of the sources into output (optional)",
    "execution": "n_jobs, scheduler, cluster, max_mem_mb, progress, read_ahead (optional)",
    "steps": "the list of processing steps",
}
_STEP_KEYS = {
    "source": (
        "a dataset path in the file, e.g. /Measurement_000/Channel_000/Raw_Data, or the name "
        "of an earlier step (its first output, e.g. source: cave)",
        (str,),
    ),
    "override": (label(EXECUTION["override"]), (bool,)),
    "execution": ("a mapping like the top-level execution:", (dict,)),
}
STEP_KEYS = tuple(_STEP_KEYS)
"""The keys a step takes besides the parameters of its process (``source``, ``override``,
``execution``)."""
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
    """One validated processing step.

    ``params`` are the checked parameters of ``process``; a parameter that takes an array and
    was given as a file name is kept as that file until :meth:`arguments` reads it.
    """

    name: str
    process: type
    params: dict[str, Any]
    source: str | None
    override: bool
    execution: dict[str, Any]
    line: int | None

    def arguments(self) -> dict[str, Any]:
        """The keyword arguments of ``process``: ``params`` with image and .npy files read.

        Raises
        ------
        InputError
            A file that is neither a .npy file nor an image fabio reads.
        """
        return {
            k: read_array(v.path) if isinstance(v, ImageFile) else v for k, v in self.params.items()
        }


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


# --------------------------------------------------------------------------- validation


def validate_pipeline(
    spec: str | os.PathLike | Mapping,
    *,
    check_files: bool = True,
    base_dir: str | os.PathLike | None = None,
    watching: bool = False,
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
    watching : bool
        For ``pyscatter watch``, which names the source and the output itself: ``output:``
        and ``translate: sources:`` may be left out (and are not used); the ``translate:``
        options (``poni``, ``mask`` …) are checked against the format's translator (``images``
        when ``format`` is auto).

    Returns
    -------
    Pipeline

    Raises
    ------
    InputError
        Every problem found, one per line, each as ``FILE:LINE: what is wrong; what is
        allowed``.
    """
    doc = load_document(spec, base_dir)
    data = doc.data
    if not isinstance(data, dict):
        doc.problem((), f"a pipeline is a mapping with keys {', '.join(_TOP)}; got {data!r}")
        doc.raise_problems()
    for key in data:
        if key not in _TOP:
            doc.problem((key,), unknown_message("key", key, _TOP))
    output = data.get("output")
    out_path = Path()
    if watching and output is None:
        pass
    elif not isinstance(output, str) or not output:
        doc.problem(
            ("output",),
            "output: expected the path of the HDF5 file to write, e.g. "
            f"`output: scan.h5`; got {output!r}",
        )
    else:
        out_path = resolve_path(doc, output)
    translate = None
    if data.get("translate") is not None:
        translate = _check_translate(doc, data["translate"], check_files, watching)
    execution = check_execution_section(doc, data.get("execution"), ("execution",))
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
    if check_files and not watching and translate is None and output and not out_path.is_file():
        doc.problem(
            ("output",),
            f"output {out_path} does not exist and there is no translate: section to make it",
        )
    doc.raise_problems()
    return Pipeline(doc.where, out_path, translate, execution, steps)


def _check_translate(
    doc: Document, value: Any, check_files: bool, watching: bool = False
) -> TranslateStep | None:
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
    if watching:  # the watch names its source: the translate section gives options only
        items, fmt = [], "images" if fmt == "auto" else fmt
    elif not isinstance(items, list) or not items or not all(isinstance(s, str) for s in items):
        doc.problem(
            (*path, "sources"),
            f"sources: expected a file, glob pattern or folder, or a list of them; got {raw!r}",
        )
        items = []
    patterns = [str(resolve_path(doc, s)) for s in items]
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
        options = check_options(
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


def _check_step(doc: Document, item: Any, index: int, check_files: bool) -> Step | None:
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
    execution = check_execution_section(doc, params.get("execution"), (*path, "execution"))
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
    checked = check_options(doc, physics, allowed, path, owner, check_files)
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


def validate_step(
    name: str,
    parameters: Mapping[str, Any] | None,
    *,
    where: str = "step",
    base_dir: str | os.PathLike | None = None,
    check_files: bool = True,
) -> Step:
    """Check one step exactly as :func:`validate_pipeline` checks ``- name: {parameters}``.

    Parameters
    ----------
    name : str
        A step of :mod:`pyscatter.processes.registry` (``integrate``, a plugin's step, …).
    parameters : mapping or None
        Its parameters, and optionally the step keys :data:`STEP_KEYS`.
    where : str
        What the messages name as the origin of the parameters (e.g. ``"--set"``).
    base_dir : path, optional
        Folder relative file paths are resolved against (default: the current folder).
    check_files : bool
        Also check that the files named exist.

    Returns
    -------
    Step
        Its :meth:`Step.arguments` are the keyword arguments of its process.

    Raises
    ------
    InputError
        Every problem at once, each as ``WHERE: what is wrong; what is allowed``: an unknown
        step or parameter (the message lists the allowed ones), a value of the wrong type, a
        missing required parameter, a missing file.

    Examples
    --------
    >>> validate_step("fit", {"model": "maier_saupe"}).params
    {'model': 'maier_saupe'}
    """
    base = Path(base_dir) if base_dir is not None else Path.cwd()
    item = {name: parameters}
    doc = Document(item, where, base.resolve())
    step = _check_step(doc, item, 0, check_files)
    doc.raise_problems()
    if step is None:  # pragma: no cover - _check_step reported why
        raise InputError(f"{where}: the parameters of step {name!r} are not valid")
    return step


def yaml_value(text: str) -> Any:
    """A value written in YAML as in a pipeline: ``"0.5"`` → 0.5, ``"[1, 2]"`` → [1, 2].

    Blank text is None; anchors and aliases are refused, as in a pipeline file.

    Raises
    ------
    InputError
        Text that is not a YAML value (the message says why).

    Examples
    --------
    >>> yaml_value("[0.45, 0.8]"), yaml_value("true"), yaml_value("abc"), yaml_value(" ")
    ([0.45, 0.8], True, 'abc', None)
    """
    if not text.strip():
        return None
    try:
        return yaml.load(text, Loader=NoAliasLoader)
    except yaml.YAMLError as err:
        problem = getattr(err, "problem", None) or str(err)
        raise InputError(f"not a YAML value ({problem})") from None


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
        {k: (v.path if isinstance(v, ImageFile) else v) for k, v in step.options.items()}
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
        summaries.append(run_translate(pipe, pipe.translate))
    produced: dict[str, str] = {}  # step name -> its results group, for `source: <step>`
    for step in pipe.steps:
        summaries.append(run_step(pipe, step, produced))
        produced[step.name] = summaries[-1].target
    return summaries


def run_translate(pipe: Pipeline, step: TranslateStep) -> StepSummary:
    """Run a pipeline's ``translate:`` step (skipped when the output holds this translation)."""
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
    options = {k: (v.path if isinstance(v, ImageFile) else v) for k, v in step.options.items()}
    options.setdefault("progress", pipe.execution.get("progress", True))
    fmt = step.translator.name if step.translator is not None else step.format
    t0 = time.perf_counter()
    translate(
        [str(s) for s in step.sources], pipe.output, format=fmt, overwrite=overwrite, **options
    )
    return StepSummary(
        "translate", "translated", str(pipe.output), step.line, seconds=time.perf_counter() - t0
    )


def run_step(pipe: Pipeline, step: Step, produced: Mapping[str, str] | None = None) -> StepSummary:
    """Run one step; ``source:`` naming an earlier step (``produced``: step name -> results
    group) means that step's first output (e.g. ``source: cave``, the caved frames)."""
    from pyscatter.processes.base import run_on_file

    where = f"{pipe.where}:{step.line}" if step.line else pipe.where
    params = step.arguments()
    defaults = {name: EXECUTION[name].default for name in RUN_OPTIONS}
    execution = {**defaults, **pipe.execution, **step.execution}
    source = step.source
    if source is not None:
        from pyscatter.io.xarray import open_for_reading

        with open_for_reading(pipe.output) as h5:
            if produced and source in produced:
                group = h5[produced[source]]
                source = f"{group.name}/{json.loads(group.attrs['output_order'])[0]}"
            found = source in h5
        if not found:
            raise InputError(
                f"{where}: step {step.name!r}: source: no dataset {source!r} in {pipe.output} "
                "(a dataset path, or the name of an earlier step)"
            )
    try:
        summary = run_on_file(
            pipe.output,
            step.process,
            source=source,
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
