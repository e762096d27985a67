"""The ``pyscatter`` command: one launcher, one module per subcommand.

Exit codes: 0 success, 1 a file or run problem (one line on stderr), 2 bad usage or parameters,
130 interrupted (Ctrl-C; completed work is kept, the same command resumes).
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from pyscatter import __version__
from pyscatter.cli.options import strip_markup
from pyscatter.errors import FileBusyError, FileFormatError, InputError, PyscatterError

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
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s", force=True)
    for noisy in ("pyFAI", "fabio", "silx", "distributed", "numexpr", "h5py"):
        logging.getLogger(noisy).setLevel(max(level, logging.WARNING))
    logging.getLogger("silx.opencl").setLevel(logging.ERROR)  # "no pyopencl": not our concern
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print(
            "pyscatter: interrupted; completed work is kept, run the same command to resume",
            file=sys.stderr,
        )
        return 130
    except (FileFormatError, FileBusyError, FileExistsError) as err:
        if args.debug:
            raise
        print(f"pyscatter {args.command}: {err}", file=sys.stderr)
        return 1
    except InputError as err:
        if args.debug:
            raise
        print(f"pyscatter {args.command}: {err}", file=sys.stderr)
        return 2
    except (PyscatterError, OSError) as err:
        if args.debug:
            raise
        print(f"pyscatter {args.command}: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
