"""The ``pyscatter`` command: one launcher, one module per subcommand.

Every failure ends as one line on stderr naming the file and the cause, with a documented exit
code (see :mod:`pyscatter.cli.boundary`): 0 success, 1 a file problem, 2 bad usage or parameters,
3 a write failed (disk full …; rerun to resume), 4 an internal error, 130 interrupted (Ctrl-C;
completed work is kept, the same command resumes). ``--debug`` adds the traceback.
"""

from __future__ import annotations

import argparse
import logging
import sys
import traceback
from collections.abc import Sequence

from pyscatter import __version__, progress
from pyscatter.cli import boundary
from pyscatter.cli.options import strip_markup

SUBCOMMANDS = (
    "translate",
    "integrate",
    "profiles",
    "sectors",
    "fit",
    "order",
    "decompose",
    "cluster",
    "peaks",
    "run",
    "export",
    "info",
    "verify",
    "formats",
    "demo",
)

log = logging.getLogger("pyscatter")


def _parser() -> argparse.ArgumentParser:
    import importlib

    parser = argparse.ArgumentParser(
        prog="pyscatter",
        description="Hyperspectral X-ray scattering: translate scans into USID HDF5, process them.",
    )
    parser.add_argument("--version", action="version", version=f"pyscatter {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks and debug logs")
    parser.add_argument("-q", "--quiet", action="store_true", help="only warnings and errors")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in SUBCOMMANDS:
        module = importlib.import_module(f"pyscatter.cli.{name}")
        module.register(sub)
    strip_markup(parser)  # docstrings as descriptions: no RST markup in --help
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line with ``argv`` (default ``sys.argv[1:]``); return the exit code."""
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse: --help (0) or bad usage (2)
        return int(exc.code or 0)
    level = logging.DEBUG if args.debug else logging.WARNING if args.quiet else logging.INFO
    quiet_before, progress.QUIET = progress.QUIET, bool(args.quiet)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s", force=True)
    for noisy in ("pyFAI", "fabio", "silx", "distributed", "numexpr", "h5py"):
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
