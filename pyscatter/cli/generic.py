"""``pyscatter STEP FILE.h5 --set key=value …``: the command of a plugin processing step.

A step that a package adds through the ``pyscatter.processes`` entry points (see
:mod:`pyscatter.processes.registry`) gets this command: the file, ``--source``, the keyword
parameters of its process as ``--set key=value`` (each value read as YAML: ``0.5``,
``[1, 2]``, ``true``, ``null``, text) and the execution options of every process command.
The parameters are checked as those of a pipeline step (:mod:`pyscatter.pipeline`): an unknown
name, a value of the wrong type or a missing required parameter is refused before anything
runs, so ``pyscatter STEP FILE --set k=v`` and ``- STEP: {k: v}`` in a pipeline record the same
parameters and reuse each other's results. ``pyscatter STEP --help`` lists the parameters (the
only time the plugin is imported before it runs).
"""

from __future__ import annotations

import argparse
import functools
import inspect
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pyscatter.cli.options import add_execution, execution_kwargs, report
from pyscatter.errors import InputError

if TYPE_CHECKING:
    from pyscatter.pipeline import Step
    from pyscatter.processes.registry import ProcessEntry

__all__ = ["CommandParser", "parameters_help", "parse_settings", "register", "validated_step"]


class CommandParser(argparse.ArgumentParser):
    """An argument parser whose ``--help`` may end with text made only when it is shown."""

    help_tail: Callable[[], str] | None = None

    def format_help(self) -> str:
        text = super().format_help()
        return text if self.help_tail is None else f"{text}\n{self.help_tail()}"


def register(sub, entry: ProcessEntry) -> None:
    """Add the command of step ``entry`` (nothing of the plugin is imported)."""
    p = sub.add_parser(
        entry.step,
        help=entry.description or f"the {entry.step} step",
        description=f"pyscatter {entry.step} FILE.h5: {entry.description}.\n\n{__doc__}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("file", help="USID HDF5 file")
    p.add_argument(
        "--source", help="source dataset path in the file (default: the process chooses)"
    )
    p.add_argument(
        "--set",
        dest="settings",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a keyword parameter of the process, the value in YAML (repeat per parameter)",
    )
    add_execution(p)
    p.set_defaults(func=run, step=entry.step)
    if isinstance(p, CommandParser):
        p.help_tail = functools.partial(parameters_help, entry.step)


def run(args: argparse.Namespace) -> int:
    step = validated_step(args.step, parse_settings(args.settings))
    if args.source is not None:
        _check_source(args.file, args.source)
    from pyscatter.processes.base import run_on_file

    params = step.arguments()
    summary = run_on_file(
        args.file,
        step.process,
        source=args.source,
        override=args.override,
        command=f"pyscatter {args.step}",
        **params,
        **execution_kwargs(args),
    )
    report(summary, args.step)
    print(f"{args.file}:{summary.group}")
    return 0


def _check_source(path: str, source: str) -> None:
    from pyscatter.io.xarray import open_for_reading

    if not Path(path).is_file():
        raise InputError(f"no such file: {path}")
    with open_for_reading(path) as h5:
        found = source in h5
    if not found:
        raise InputError(f"--source: no dataset {source!r} in {path}")


def parse_settings(settings: Sequence[str]) -> dict[str, Any]:
    """``["npt=300", "q=[0.4, 0.8]"]`` → ``{"npt": 300, "q": [0.4, 0.8]}`` (values as YAML).

    Examples
    --------
    >>> parse_settings(["n=3", "x=[0.5, 1e-3]", "name=abc", "flag=true", "none="])
    {'n': 3, 'x': [0.5, '1e-3'], 'name': 'abc', 'flag': True, 'none': None}

    (``1e-3`` is text to YAML 1.1; a float parameter takes it as a number, as in a pipeline.)

    Raises
    ------
    InputError
        Not ``KEY=VALUE``, a key given twice, an execution option or step key (they have
        options of their own), or a value that is not YAML.
    """
    from pyscatter.pipeline import STEP_KEYS, yaml_value
    from pyscatter.processes.options import EXECUTION_OPTIONS

    reserved = {*STEP_KEYS, *(option.name for option in EXECUTION_OPTIONS)}
    out: dict[str, Any] = {}
    for text in settings:
        key, sep, value = text.partition("=")
        key = key.strip()
        if not sep or not key:
            raise InputError(f"--set {text!r}: expected KEY=VALUE, e.g. --set scale=2.5")
        if key in out:
            raise InputError(f"--set {key}: given twice")
        if key in reserved:
            flag = "--no-progress" if key == "progress" else f"--{key.replace('_', '-')}"
            raise InputError(f"--set {key}: not a parameter of the process; use {flag} instead")
        try:
            out[key] = yaml_value(value)
        except InputError as err:
            raise InputError(f"--set {key}={value}: {err}") from None
    return out


def validated_step(name: str, params: dict[str, Any], *, check_files: bool = True) -> Step:
    """The parameters of step ``name`` checked exactly as a pipeline checks a step's options.

    Relative file paths are taken from the current folder.

    Raises
    ------
    InputError
        Every problem at once: unknown parameters (the message lists the allowed ones), values
        of the wrong type, missing required parameters, missing files.
    """
    from pyscatter.pipeline import validate_step

    return validate_step(name, params, where="--set", check_files=check_files)


def parameters_help(step: str) -> str:
    """The keyword parameters of step ``step`` (imports its process), for ``--help``."""
    from pyscatter.processes.options import step_parameters
    from pyscatter.processes.registry import get_process

    try:
        process = get_process(step)
    except InputError as err:
        return f"parameters: unknown ({err})\n"
    params = step_parameters(process)
    lines = [f"parameters of {process.__name__} (--set KEY=VALUE):"]
    for name, p in params.items():
        hint = (
            p.annotation
            if isinstance(p.annotation, str)
            else inspect.formatannotation(p.annotation)
        )
        hint = "" if p.annotation is inspect.Parameter.empty else f": {hint}"
        default = "required" if p.default is inspect.Parameter.empty else f"default {p.default!r}"
        lines.append(f"  {name}{hint} ({default})")
    if not params:
        lines.append("  (none)")
    return "\n".join(lines) + "\n"
