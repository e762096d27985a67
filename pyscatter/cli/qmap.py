"""``pyscatter qmap FILE.h5 [--npt 256] [--q-max Q] [--director DEG] [--plot PNG]``: every frame
regridded on a (q_perp, q_par) image, resumable; ``--plot`` draws one position's map with q
circles (``--circles 0.45 0.8``, or reflections ``--hkl 1,1,1 --lattice a=5.411``).
"""

from __future__ import annotations

import argparse

from pyscatter.cli.cave import frame_kwargs
from pyscatter.cli.options import add_execution, add_option, execution_kwargs, report


def register(sub) -> None:
    from pyscatter.processes.frame_setup import QMAP_OPTIONS

    p = sub.add_parser(
        "qmap", help="q-space images (q_perp, q_par) of every frame", description=__doc__
    )
    p.add_argument("file", help="USID HDF5 file written by 'pyscatter translate'")
    p.add_argument(
        "--npt", type=int, nargs="+", default=[256], metavar="N", help="bins: N, or N_PERP N_PAR"
    )
    p.add_argument("--q-max", type=float, help="half-width of the grid (default: the detector's)")
    p.add_argument(
        "--director",
        type=float,
        default=0.0,
        metavar="DEG",
        help="direction of q_par, degrees in pyFAI's chi (default 0: along the columns)",
    )
    p.add_argument("--unit", default="q_nm^-1", choices=("q_nm^-1", "q_A^-1"))
    p.add_argument("--source", help="source dataset path in the file (default: Raw_Data)")
    fig = p.add_argument_group("figure")
    fig.add_argument("--plot", metavar="PNG", help="write a figure of one position's map")
    fig.add_argument("--position", type=int, default=0, help="flat position index (default 0)")
    fig.add_argument("--circles", type=float, nargs="+", metavar="Q", help="q circles to draw")
    fig.add_argument("--hkl", action="append", metavar="H,K,L", help="circle of a reflection")
    fig.add_argument("--lattice", help="cell for --hkl, e.g. a=5.411 (Å, degrees)")
    fig.add_argument("--cif", help="CIF file of the cell for --hkl")
    g = p.add_argument_group("detector")
    for option in QMAP_OPTIONS:
        add_option(g, option)
    add_execution(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pyscatter.cli.profiles import parse_hkl, parse_lattice
    from pyscatter.errors import InputError
    from pyscatter.processes.base import run_on_file
    from pyscatter.processes.frame_setup import QMAP_OPTIONS
    from pyscatter.processes.qspace import QSpaceMap

    if len(args.npt) > 2:
        raise InputError(f"--npt takes N or N_PERP N_PAR; got {len(args.npt)} numbers")
    if (args.hkl or args.circles) and not args.plot:
        raise InputError("--circles and --hkl draw on the figure: give --plot PNG too")
    summary = run_on_file(
        args.file,
        QSpaceMap,
        source=args.source,
        override=args.override,
        command="pyscatter qmap",
        npt=args.npt[0] if len(args.npt) == 1 else list(args.npt),
        q_max=args.q_max,
        director_deg=args.director,
        unit=args.unit,
        **frame_kwargs(args, QMAP_OPTIONS),
        **execution_kwargs(args),
    )
    report(summary, "qmap")
    print(f"{args.file}:{summary.group}")
    if args.plot:
        from pyscatter.plot.qspace import plot_qspace

        fig = plot_qspace(
            args.file,
            args.position,
            group=summary.group,
            circles=args.circles or (),
            hkl=parse_hkl(args.hkl),
            lattice=parse_lattice(args.lattice),
            cif=args.cif,
        )
        fig.savefig(args.plot, dpi=120)
        print(args.plot)
    return 0
