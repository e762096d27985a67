"""The ``pyscatter`` command: one launcher, one module per subcommand.

The processing commands are the steps of :mod:`pyscatter.processes.registry`: a built-in step
names its module (``pyscatter.cli.integrate`` …), a plugin step gets the generic command of
:mod:`pyscatter.cli.generic`. Building the parser imports no process module.

Every failure ends as one line on stderr naming the file and the cause, with a documented exit
code (see :mod:`pyscatter.cli.boundary`): 0 success, 1 a file problem, 2 bad usage or parameters,
3 a write failed (disk full …; rerun to resume), 4 an internal error, 130 interrupted (Ctrl-C;
completed work is kept, the same command resumes). ``--debug`` adds the traceback.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
import traceback
from collections.abc import Mapping, Sequence

from pyscatter import __version__, progress
from pyscatter.cli import boundary, generic
from pyscatter.cli.generic import CommandParser
from pyscatter.cli.options import strip_markup
from pyscatter.processes.registry import BUILTIN_PROCESSES, ProcessEntry, available_processes

#: Commands before and after the processing steps; each is the module ``pyscatter.cli.<name>``.
_BEFORE_STEPS = ("translate",)
_AFTER_STEPS = ("run", "watch", "serve", "export", "info", "verify", "formats", "demo", "batch")

#: The built-in commands in ``--help`` order; the processing steps come from their registry,
#: which also adds the plugin steps (:func:`commands`).
SUBCOMMANDS = (*_BEFORE_STEPS, *BUILTIN_PROCESSES, *_AFTER_STEPS)

log = logging.getLogger("pyscatter")


def commands(steps: Mapping[str, ProcessEntry] | None = None) -> dict[str, str | None]:
    """Every command with the module that registers it (None: the generic command of a plugin).

    Nothing is imported: the processing steps are read from their registry (``steps``, by
    default :func:`~pyscatter.processes.registry.available_processes`), the plugin ones
    included. A plugin step named like another command has none (a warning says so).
    """
    found: dict[str, str | None] = {name: f"pyscatter.cli.{name}" for name in _BEFORE_STEPS}
    for step, entry in (available_processes() if steps is None else steps).items():
        if step in _BEFORE_STEPS or step in _AFTER_STEPS:
            log.warning(
                "plugin step %r has no command (pipelines run it): %r is a pyscatter command",
                step,
                step,
            )
            continue
        found[step] = entry.cli
    found.update({name: f"pyscatter.cli.{name}" for name in _AFTER_STEPS})
    return found


def _parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The command line's parser: with ``argv`` (the arguments to parse) naming a known
    command, only that command's (building all of them costs 60–80 ms of every command's
    start-up); else every command's."""
    parser = argparse.ArgumentParser(
        prog="pyscatter",
        description="Hyperspectral X-ray scattering: translate scans into USID HDF5, process them.",
    )
    parser.add_argument("--version", action="version", version=f"pyscatter {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks and debug logs")
    parser.add_argument("-q", "--quiet", action="store_true", help="only warnings and errors")
    sub = parser.add_subparsers(
        dest="command", required=True, metavar="COMMAND", parser_class=CommandParser
    )
    asked = next((a for a in argv or () if a[:1] != "-"), None)
    # the global options take no value: the first word is the command. A built-in one needs no
    # look at the entry points (25-40 ms): a plugin cannot take a built-in's name.
    builtin = commands(BUILTIN_PROCESSES)
    steps = BUILTIN_PROCESSES if asked in builtin else available_processes()
    known = builtin if asked in builtin else commands(steps)
    if asked in known:
        known = {asked: known[asked]}
    for name, module in known.items():
        if module is None:
            generic.register(sub, steps[name])
        else:
            importlib.import_module(module).register(sub)
    strip_markup(parser)  # docstrings as descriptions: no RST markup in --help
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line with ``argv`` (default ``sys.argv[1:]``); return the exit code."""
    parser = _parser(sys.argv[1:] if argv is None else argv)
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse: --help (0) or bad usage (2)
        return int(exc.code or 0)
    level = logging.DEBUG if args.debug else logging.WARNING if args.quiet else logging.INFO
    quiet_before, progress.QUIET = progress.QUIET, bool(args.quiet)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s", force=True)
    for noisy in ("pyFAI", "fabio", "silx", "distributed", "numexpr", "h5py", "hdf5plugin"):
        logging.getLogger(noisy).setLevel(max(level, logging.WARNING))
    logging.getLogger("silx.opencl").setLevel(logging.ERROR)  # "no pyopencl": not our concern
    error: BaseException | None = None  # kept alive until finish(): see boundary.finish
    hooks_before = sys.unraisablehook, sys.excepthook
    sys.unraisablehook = boundary.quiet_write_faults_in_finalisers
    sys.excepthook = boundary.quiet_write_faults_in_excepthook
    try:
        code = int(args.func(args) or 0)
    except (Exception, KeyboardInterrupt) as err:
        error = err
        code, message = boundary.classify(err, args.command)
        if args.debug:
            traceback.print_exc()
        print(message, file=sys.stderr)
    progress.QUIET = quiet_before
    sys.unraisablehook, sys.excepthook = hooks_before
    code = boundary.finish(code, error)
    del error
    return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
