"""``pyscatter anisotropy FILE.h5 --polarization 0 --sector-width 10``: I∥(q), I⊥(q) and the
anisotropy A(q) = (I∥ - I⊥)/(I∥ + I⊥) of every cake I(chi, q), with σ (RSoXS)."""

from __future__ import annotations

import argparse

from pyscatter.cli.options import add_execution, execution_kwargs, report


def register(sub) -> None:
    p = sub.add_parser(
        "anisotropy",
        help="RSoXS: I parallel / perpendicular to the polarization and A(q) from a cake",
        description=__doc__,
    )
    p.add_argument("file", help="USID HDF5 file")
    pol = p.add_mutually_exclusive_group()
    pol.add_argument(
        "--polarization",
        type=float,
        metavar="DEG",
        help="pyFAI chi (degrees) of the electric field, every position (default 0: horizontal)",
    )
    pol.add_argument(
        "--polarization-dataset",
        metavar="PATH",
        help="dataset of the file with the field's chi (degrees) at every position",
    )
    p.add_argument(
        "--sector-width",
        type=float,
        default=10.0,
        metavar="DEG",
        help="half width of each sector, in (0, 45] degrees (default 10)",
    )
    p.add_argument(
        "--q-range", type=float, nargs=2, metavar=("LO", "HI"), help="q range kept (default: all)"
    )
    p.add_argument("--plot", metavar="PNG", help="also save I(q, E), A(q, E) and A(E) there")
    p.add_argument("--source", help="source cake path (default: the latest cake)")
    add_execution(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pyscatter.processes.anisotropy import Anisotropy
    from pyscatter.processes.base import run_on_file

    summary = run_on_file(
        args.file,
        Anisotropy,
        source=args.source,
        override=args.override,
        command="pyscatter anisotropy",
        polarization=args.polarization,
        polarization_dataset=args.polarization_dataset,
        sector_width=args.sector_width,
        q_range=args.q_range,
        **execution_kwargs(args),
    )
    report(summary, "anisotropy")
    if args.plot:
        from pyscatter.plot.rsoxs import plot_anisotropy

        fig = plot_anisotropy(args.file, group=summary.group)
        fig.savefig(args.plot, dpi=120)
        print(f"figure: {args.plot}")
    print(f"{args.file}:{summary.group}")
    return 0
