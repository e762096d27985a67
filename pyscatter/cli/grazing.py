"""``pyscatter gi FILE.h5 --incident-angle DEG | --incident-angle-dataset PATH [--tilt-angle DEG]
[--sample-orientation N] [--npt-ip N --npt-oop N] [--mode qmap|chi] [--plot PNG]``: grazing-
incidence maps I(q_xy, q_z) (or I(q, chi)) of every frame with each position's own incident
angle, resumable; ``--plot`` draws one position's map (``--spot QXY QZ``, repeated, marks expected
reflections).
"""

from __future__ import annotations

import argparse
from typing import Any


def register(sub) -> None:
    from pyscatter.cli.options import add_detector, add_execution
    from pyscatter.processes.grazing_options import GI_OPTIONS

    p = sub.add_parser(
        "gi",
        help="grazing incidence: I(q_xy, q_z) maps or I(q, chi) per position",
        description=__doc__,
    )
    p.add_argument("file", help="USID HDF5 file written by 'pyscatter translate'")
    angle = p.add_mutually_exclusive_group(required=True)
    angle.add_argument(
        "--incident-angle",
        metavar="DEG",
        help="incident angle in degrees, or a position dim (th) / per-position dataset",
    )
    angle.add_argument(
        "--incident-angle-dataset",
        metavar="PATH",
        help="per-position incident angles (degrees): a dataset path or a position dim",
    )
    p.add_argument(
        "--tilt-angle",
        default="0",
        metavar="DEG",
        help="tilt angle in degrees, or a position dim / per-position dataset (default 0)",
    )
    p.add_argument(
        "--sample-orientation",
        type=int,
        default=1,
        metavar="N",
        help="pyFAI's sample orientation 1-8 (default 1)",
    )
    p.add_argument("--mode", choices=("qmap", "chi"), default="qmap")
    p.add_argument("--unit", choices=("nm^-1", "A^-1"), default="nm^-1")
    p.add_argument("--npt-ip", type=int, default=500, help="bins along q_xy (or q)")
    p.add_argument("--npt-oop", type=int, default=500, help="bins along q_z (or chi)")
    p.add_argument("--ip-range", type=float, nargs=2, metavar=("MIN", "MAX"))
    p.add_argument("--oop-range", type=float, nargs=2, metavar=("MIN", "MAX"))
    p.add_argument("--source", help="source dataset path in the file (default: Raw_Data)")
    fig = p.add_argument_group("figure")
    fig.add_argument("--plot", metavar="PNG", help="write a figure of one position's map")
    fig.add_argument("--position", type=int, default=0, help="flat position index (default 0)")
    fig.add_argument(
        "--spot",
        nargs=2,
        type=float,
        action="append",
        metavar=("QXY", "QZ"),
        help="an expected reflection to mark on the map (repeat the flag for more)",
    )
    add_detector(p, options=GI_OPTIONS)
    add_execution(p)
    p.set_defaults(func=run)


def _angle(text: str) -> float | str:
    from pyscatter.cli.options import number_or_path

    value = number_or_path(text)
    assert value is not None
    return value


def gi_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    """The detector keywords of the ``gi`` flags (images read, numbers or dataset paths)."""
    from pyscatter.cli.options import detector_kwargs
    from pyscatter.processes.grazing_options import GI_OPTIONS

    return detector_kwargs(args, GI_OPTIONS)


def run(args: argparse.Namespace) -> int:
    from pyscatter.cli.options import execution_kwargs, report
    from pyscatter.errors import InputError
    from pyscatter.processes.base import run_on_file
    from pyscatter.processes.grazing import GrazingIncidence

    spots = [(float(a), float(b)) for a, b in args.spot or []]
    if spots and not args.plot:
        raise InputError("--spot marks reflections on the figure: give --plot PNG too")
    incident = args.incident_angle_dataset or _angle(args.incident_angle)
    summary = run_on_file(
        args.file,
        GrazingIncidence,
        source=args.source,
        override=args.override,
        command="pyscatter gi",
        incident_angle=incident,
        tilt_angle=_angle(args.tilt_angle),
        sample_orientation=args.sample_orientation,
        mode=args.mode,
        unit=args.unit,
        npt_ip=args.npt_ip,
        npt_oop=args.npt_oop,
        ip_range=args.ip_range,
        oop_range=args.oop_range,
        **gi_kwargs(args),
        **execution_kwargs(args),
    )
    report(summary, "gi")
    print(f"{args.file}:{summary.group}")
    if args.plot:
        from pyscatter.plot.grazing import plot_gi_map

        fig = plot_gi_map(args.file, args.position, group=summary.group, spots=spots)
        fig.savefig(args.plot, dpi=120)
        print(args.plot)
    return 0
