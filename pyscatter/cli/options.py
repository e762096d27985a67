"""Options shared by the process subcommands: execution backend, memory, resume, detector.

The flags are built from the declarations of :mod:`pyscatter.processes.options` (the same
ones pipelines validate YAML against), so a flag and its Python/YAML keyword agree.
"""

from __future__ import annotations

import argparse
import logging
import re
from collections.abc import Mapping, Sequence
from typing import Any

from pyscatter.cli.cluster_security import add_cluster_security, cluster_security_kwargs
from pyscatter.errors import InputError
from pyscatter.processes.options import (
    DETECTOR_OPTIONS,
    EXECUTION,
    EXECUTION_OPTIONS,
    RUN_OPTIONS,
    Option,
    check_execution,
)

_UNSET = object()

# RST roles (:func:`x`, :class:`~a.b`), ``literals`` and `interpreted text` → plain text
_ROLE = re.compile(r":[a-z]+(?::[a-z]+)?:`~?([^`<]*?)(?:\s*<[^>]*>)?`")
_LITERAL = re.compile(r"``(.+?)``", re.S)
_INTERPRETED = re.compile(r"`([^`]+?)`_{0,2}")


def plain_text(text: str | None) -> str | None:
    """Help text without reStructuredText markup (docstrings become --help descriptions).

    Examples
    --------
    >>> plain_text("run ``pyscatter run --example``; see :func:`~pyscatter.pipeline.run_pipeline`")
    'run pyscatter run --example; see run_pipeline'
    """
    if not text:
        return text
    text = _ROLE.sub(
        lambda m: m.group(1).rsplit(".", 1)[-1] if "~" in m.group(0) else m.group(1), text
    )
    text = _LITERAL.sub(r"\1", text)
    return _INTERPRETED.sub(r"\1", text)


def strip_markup(parser: argparse.ArgumentParser) -> None:
    """Remove RST markup from the description, epilog and option help of a parser tree."""
    parser.description = plain_text(parser.description)
    parser.epilog = plain_text(parser.epilog)
    for action in parser._actions:
        if isinstance(action.help, str):
            action.help = plain_text(action.help)
        if isinstance(action, argparse._SubParsersAction):
            for choice in action._choices_actions:
                choice.help = plain_text(choice.help)
            for sub in set(action.choices.values()):
                strip_markup(sub)


class _Store(argparse.Action):
    """``store``, with a warning when a deprecated spelling of the flag was used."""

    def __init__(self, option_strings, dest, deprecated=(), preferred="", **kwargs):
        self.deprecated, self.preferred = tuple(deprecated), preferred
        super().__init__(option_strings, dest, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None):
        if option_string in self.deprecated:
            note_deprecated(namespace, option_string, self.preferred)
        setattr(namespace, self.dest, values)


def note_deprecated(namespace: argparse.Namespace, flag: str, preferred: str) -> None:
    """Remember a deprecated flag; :func:`warn_deprecated` logs it once logging is set up."""
    used = list(getattr(namespace, "deprecated_flags", []))
    namespace.deprecated_flags = [*used, (flag, preferred)]


def warn_deprecated(args: argparse.Namespace) -> None:
    """Log a warning for each deprecated flag the command line used."""
    for flag, preferred in dict(getattr(args, "deprecated_flags", [])).items():
        logging.getLogger("pyscatter").warning(
            "%s is deprecated; write %s (the same option)", flag, preferred
        )


def add_option(group: Any, option: Option, default: Any = _UNSET) -> None:
    """Add one declared :class:`~pyscatter.processes.options.Option` to an argparse group.

    The flag stores into ``option.name``; a ``--no-…`` flag turns off a boolean that is on
    by default; deprecated flags still work (with a warning).
    """
    default = option.default if default is _UNSET else default
    kwargs: dict[str, Any] = dict(option.cli)
    help_text = option.help
    if option.annotation == "bool":
        kwargs["action"] = "store_false" if option.negated else "store_true"
    else:
        kwargs.update(action=_Store, default=default, deprecated=option.deprecated_flags)
        kwargs["preferred"] = option.cli_flag
        if default is not None and "(default" not in help_text:
            help_text += f" (default {default})"
    flags = (option.cli_flag, *option.deprecated_flags)
    group.add_argument(*flags, dest=option.name, help=help_text, **kwargs)


def add_detector(
    parser: argparse.ArgumentParser,
    defaults: Mapping[str, Any] | None = None,
    options: Sequence[Any] = DETECTOR_OPTIONS,
):
    """The "detector" argument group: every option of ``options`` (default
    :data:`~pyscatter.processes.options.DETECTOR_OPTIONS`; ``defaults`` overrides some, e.g.
    ``{"error_model": "poisson"}`` for profiles and sectors)."""
    g = parser.add_argument_group("detector")
    for option in options:
        add_option(g, option, (defaults or {}).get(option.name, _UNSET))
    return g


def detector_kwargs(
    args: argparse.Namespace, options: Sequence[Any] = DETECTOR_OPTIONS
) -> dict[str, Any]:
    """The detector keywords of a process from the "detector" group's flags (``options``,
    default :data:`~pyscatter.processes.options.DETECTOR_OPTIONS`; images read); deprecated
    flags are warned about here."""
    warn_deprecated(args)
    out = {}
    for option in options:
        value = getattr(args, option.name)
        if option.convert == "image":
            value = read_image(value, option.name)
        elif option.convert == "number_or_path":
            value = number_or_path(value)
        out[option.name] = value
    return out


def read_image(path: str | None, what: str):
    """The image at ``path`` (read with fabio, or remembered from an earlier read of the same
    bytes: :func:`pyscatter.processes.setup_cache.image_file`), or None."""
    if path is None:
        return None
    from pyscatter.processes.setup_cache import image_file

    def read():
        import fabio

        from pyscatter.errors import FileFormatError

        try:
            return fabio.open(path).data
        except Exception as err:
            raise FileFormatError(f"{what} {path}: not an image fabio reads ({err})") from err

    return image_file(path, read)


def number_or_path(text: str | None) -> float | str | None:
    """A number if ``text`` reads as one, else the text (a dataset path)."""
    if text is None:
        return None
    try:
        return float(text)
    except ValueError:
        return text


def add_execution(parser: argparse.ArgumentParser) -> None:
    """The "execution" argument group, from
    :data:`~pyscatter.processes.options.EXECUTION_OPTIONS` (plus the batch-job flags of
    ``--cluster``)."""
    g = parser.add_argument_group("execution")
    for option in EXECUTION_OPTIONS:
        add_option(g, option)
        if option.name != "cluster":
            continue
        g.add_argument("--cores", type=int, help="cores per batch job (--cluster)")
        g.add_argument("--memory", help="memory per batch job, e.g. 16GB (--cluster)")
        g.add_argument("--walltime", help="wall time per batch job, e.g. 01:00:00 (--cluster)")
        g.add_argument("--jobs", type=int, default=1, help="batch jobs to start (--cluster)")
        g.add_argument("--queue", help="batch queue/partition (--cluster)")
        add_cluster_security(g)


def _cluster(args: argparse.Namespace) -> dict[str, Any] | None:
    if not args.cluster:
        return None
    missing = [k for k in ("cores", "memory") if getattr(args, k) is None]
    if missing:
        raise InputError(f"--cluster {args.cluster} needs --{' and --'.join(missing)}")
    cluster = {"kind": args.cluster, "cores": args.cores, "memory": args.memory, "jobs": args.jobs}
    if args.walltime:
        cluster["walltime"] = args.walltime
    if args.queue:
        cluster["queue"] = args.queue
    cluster.update(cluster_security_kwargs(args))
    return cluster


def execution_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    """The execution keywords of a process from the "execution" group's flags, checked by
    :func:`~pyscatter.processes.options.check_execution` (the rule pipelines use)."""
    cluster_security_kwargs(args)  # checks the security flags, also without --cluster
    out = {"cluster": _cluster(args)}
    for name in RUN_OPTIONS:
        if name == "cluster":
            continue
        value = getattr(args, name)
        try:
            out[name] = check_execution(name, value)
        except InputError as err:
            raise InputError(f"{EXECUTION[name].cli_flag} {value}: {err}") from None
    return out


def report(summary, name: str) -> None:
    import logging

    log = logging.getLogger("pyscatter")
    if summary.reused:
        log.info(
            "%s: reused %s (same parameters and source; --override recomputes)", name, summary.group
        )
    else:
        rate = summary.computed_positions / summary.seconds if summary.seconds else float("nan")
        log.info(
            "%s: %s%s, %d of %d positions computed in %.1f s (%.1f positions/s)",
            name,
            summary.group,
            " (resumed)" if summary.resumed else "",
            summary.computed_positions,
            summary.total_positions,
            summary.seconds,
            rate,
        )
