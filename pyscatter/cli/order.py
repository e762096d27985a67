"""``pyscatter order FILE.h5``: order parameter S and director of every fitted profile, resumable.

With ``--plot``, PNGs of the S map, the director map and profile + fit overlays are written
beside the file (or into ``--plot-dir``).
"""

from __future__ import annotations

import argparse

from pyscatter.cli.options import add_execution, execution_kwargs, report
from pyscatter.errors import InputError


def _positions(text: str) -> list[int]:
    try:
        values = [int(v) for v in text.replace(" ", "").split(",") if v]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--positions takes comma-separated position indices, e.g. 0,5,11; got {text!r}"
        ) from None
    if not values:
        raise argparse.ArgumentTypeError("--positions needs at least one position index")
    return values


def register(sub) -> None:
    p = sub.add_parser(
        "order",
        help="order parameter S and director maps from the profile fits",
        description=__doc__,
    )
    p.add_argument("file", help="USID HDF5 file holding ProfileFit results")
    p.add_argument(
        "--source",
        help="ProfileFit results group (or a dataset in it) in the file (default: the latest)",
    )
    p.add_argument(
        "--n-theta",
        type=int,
        default=2001,
        help="quadrature points of S for the pseudo-Voigt model (odd, default 2001)",
    )
    g = p.add_argument_group("figures")
    g.add_argument("--plot", action="store_true", help="write PNG figures")
    g.add_argument("--plot-dir", help="folder of the figures (default: beside the file)")
    g.add_argument(
        "--positions",
        type=_positions,
        help="flat position indices of the profile + fit figures, e.g. 0,5,11 "
        "(default: first, middle, last)",
    )
    g.add_argument("--ring", type=int, default=0, help="ring index of the figures (default 0)")
    add_execution(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pyscatter.processes.base import run_on_file
    from pyscatter.processes.order import OrderParameter

    if args.plot_dir and not args.plot:
        raise InputError("--plot-dir needs --plot")
    summary = run_on_file(
        args.file,
        OrderParameter,
        source=args.source,
        override=args.override,
        command="pyscatter order",
        n_theta=args.n_theta,
        **execution_kwargs(args),
    )
    report(summary, "order")
    print(f"{args.file}:{summary.group}")
    if args.plot:
        import logging

        from pyscatter.plot.orientation import write_orientation_figures

        written = write_orientation_figures(
            args.file,
            group=summary.group,
            out_dir=args.plot_dir,
            positions=args.positions,
            ring=args.ring,
        )
        log = logging.getLogger("pyscatter")
        for path in written:
            log.info("wrote %s", path)
    return 0
