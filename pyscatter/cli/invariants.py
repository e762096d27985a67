"""``pyscatter invariants FILE.h5 --q-range 0.05 5``: Guinier Rg and I0, invariant Q* and Porod
constant K of every I(q), with errors."""

from __future__ import annotations

import argparse

from pyscatter.cli.options import add_execution, execution_kwargs, report


def register(sub) -> None:
    p = sub.add_parser(
        "invariants",
        help="SAXS Guinier Rg and I0, invariant Q* and Porod constant maps from I(q)",
        description=__doc__,
    )
    p.add_argument("file", help="USID HDF5 file")
    pair = {"type": float, "nargs": 2, "metavar": ("LO", "HI")}
    p.add_argument("--q-range", **pair, help="q range used (default: the whole axis)")
    p.add_argument(
        "--guinier-range", **pair, help="Guinier fit range (default: automatic, --qrg-max)"
    )
    p.add_argument(
        "--porod-range", **pair, help="Porod range (default: the upper quarter of the q range)"
    )
    p.add_argument(
        "--background", type=float, default=0.0, help="constant subtracted first (default 0)"
    )
    p.add_argument(
        "--qrg-max", type=float, default=1.3, help="q Rg limit of the automatic Guinier range"
    )
    p.add_argument("--min-points", type=int, default=5, help="fewest bins of a range (5)")
    p.add_argument(
        "--guinier-extrapolation", action="store_true", help="add the Guinier part from q = 0"
    )
    p.add_argument(
        "--porod-extrapolation", action="store_true", help="add the Porod tail K / q_last"
    )
    p.add_argument(
        "--sigma",
        choices=("auto", "none", "poisson"),
        default="auto",
        help="errors: auto (the Intensity_Sigma beside the source if any), none, poisson",
    )
    p.add_argument("--max-iter", type=int, default=50, help="Guinier range refits (50)")
    p.add_argument(
        "--source", help="source dataset path (default: the latest integration Intensity)"
    )
    add_execution(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pyscatter.processes.base import run_on_file
    from pyscatter.processes.invariants import SaxsInvariants

    summary = run_on_file(
        args.file,
        SaxsInvariants,
        source=args.source,
        override=args.override,
        command="pyscatter invariants",
        q_range=args.q_range,
        guinier_range=args.guinier_range,
        porod_range=args.porod_range,
        background=args.background,
        qrg_max=args.qrg_max,
        min_points=args.min_points,
        guinier_extrapolation=args.guinier_extrapolation,
        porod_extrapolation=args.porod_extrapolation,
        sigma=args.sigma,
        max_iter=args.max_iter,
        **execution_kwargs(args),
    )
    report(summary, "invariants")
    print(f"{args.file}:{summary.group}")
    return 0
