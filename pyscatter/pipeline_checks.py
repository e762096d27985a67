"""Checking a pipeline document: YAML with the line of every key, and options against signatures.

The support of :mod:`pyscatter.pipeline` (and of the command of plugin steps,
:mod:`pyscatter.cli.generic`, through :func:`pyscatter.pipeline.validate_step`): a
:class:`Document` collects every problem with its line, so that a pipeline is refused with
all its problems at once; :func:`check_options` checks keyword options against a signature,
:func:`check_execution_section` an ``execution:`` mapping against
:data:`~pyscatter.processes.options.EXECUTION_OPTIONS`.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from pyscatter.errors import InputError
from pyscatter.processes.options import (
    RUN_OPTIONS,
    check_execution,
    cluster_problems,
    hint_names,
    is_array_hint,
    is_path_hint,
    type_problem,
)

__all__ = [
    "MAX_PIPELINE_BYTES",
    "Document",
    "ImageFile",
    "NoAliasLoader",
    "check_execution_section",
    "check_options",
    "load_document",
    "read_array",
    "resolve_path",
    "unknown_message",
]


@dataclass
class ImageFile:
    """A process parameter that takes an array, given as an image or .npy file."""

    path: Path


@dataclass
class Document:
    """Pipeline data with the line of every key, and the problems found so far.

    ``where`` (the file, or a label such as ``--set``) and the line start every message;
    ``base`` is the folder relative paths are resolved against.
    """

    data: Any
    where: str
    base: Path
    lines: dict[tuple, int] = field(default_factory=dict)
    problems: list[tuple[int | None, str]] = field(default_factory=list)

    def line(self, path: tuple) -> int | None:
        """The line of the key at ``path`` or of its nearest parent (None for a dict: no lines)."""
        path = tuple(str(p) for p in path)
        while path and path not in self.lines:
            path = path[:-1]
        return self.lines.get(path)

    def problem(self, path: tuple, message: str) -> None:
        """Note a problem at the key ``path``."""
        self.problems.append((self.line(path), message))

    def raise_problems(self) -> None:
        """Raise :class:`~pyscatter.errors.InputError` listing every problem by line, if any."""
        if not self.problems:
            return
        text = "\n".join(
            f"{self.where}:{line}: {msg}" if line else f"{self.where}: {msg}"
            for line, msg in sorted(self.problems, key=lambda p: p[0] or 0)
        )
        raise InputError(text)


def load_document(
    spec: str | os.PathLike | Mapping, base_dir: str | os.PathLike | None
) -> Document:
    """The pipeline as data with the line of every key (a path, YAML text, or a dict)."""
    if isinstance(spec, Mapping):
        base = Path(base_dir) if base_dir is not None else Path.cwd()
        return Document(dict(spec), "pipeline", base.resolve())
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
    loader = NoAliasLoader(text)
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
    doc = Document(data, where, base.resolve())
    if node is not None:
        _index_lines(node, (), doc)
    return doc


MAX_PIPELINE_BYTES = 1 << 20
"""Largest pipeline file (1 MiB): pipelines are a few hundred bytes."""


class NoAliasLoader(yaml.SafeLoader):
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


def _index_lines(node: yaml.Node, path: tuple, doc: Document) -> None:
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


def unknown_message(what: str, name: Any, allowed: Mapping | Sequence) -> str:
    """``unknown {what} 'name'; allowed: a, b, c``."""
    return f"unknown {what} {name!r}; allowed: {', '.join(map(str, allowed))}"


def resolve_path(doc: Document, text: str) -> Path:
    """A path of the document (``~`` expanded), relative ones against its folder."""
    path = Path(os.path.expanduser(text))
    return path if path.is_absolute() else doc.base / path


def check_execution_section(doc: Document, value: Any, path: tuple) -> dict[str, Any]:
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
            doc.problem(where, unknown_message("execution option", key, RUN_OPTIONS))
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


def check_options(
    doc: Document,
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
            file = resolve_path(doc, value)
            if check_files and not file.exists():
                doc.problem(where, f"{key}: no such file: {file}")
            value = file if is_path_hint(annotation) else ImageFile(file)
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


def read_array(path: Path) -> Any:
    """The array of a .npy file or of an image fabio reads (an :class:`ImageFile`)."""
    import numpy as np

    if path.suffix.lower() == ".npy":
        return np.load(path)
    import fabio

    try:
        with fabio.open(str(path)) as image:
            return image.data
    except Exception as err:
        raise InputError(f"{path}: not an image fabio reads ({err})") from err
