"""``pyscatter sectors FILE.h5 --n-sectors 8``: radial profiles I(q) in angular sectors.

Sector k is centred at ``offset + k·360/n`` degrees (pyFAI's chi) and spans ``--width``
degrees (default 360/n). Resumable: the same command continues an interrupted run, and reuses
a complete one.
"""

from __future__ import annotations

import argparse

from pyscatter.cli.options import add_execution, execution_kwargs, report
from pyscatter.cli.profiles import add_detector_options, detector_kwargs


def register(sub) -> None:
    p = sub.add_parser(
        "sectors",
        help="radial I(q) in angular sectors, with sigma",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("file", help="USID HDF5 file written by 'pyscatter translate'")
    p.add_argument("--n-sectors", type=int, default=8, help="number of sectors (default 8)")
    p.add_argument("--width", type=float, help="sector width in degrees (default 360/n)")
    p.add_argument("--offset", type=float, default=0.0, help="centre of the first sector (deg)")
    p.add_argument("--npt", type=int, default=300, help="radial bins (default 300)")
    p.add_argument("--unit", default="q_nm^-1", help="q_nm^-1 (default), q_A^-1, 2th_deg, r_mm")
    p.add_argument(
        "--radial-range",
        type=float,
        nargs=2,
        metavar=("MIN", "MAX"),
        help="common radial range (default: that of the full 1-D integration)",
    )
    add_detector_options(p)
    add_execution(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pyscatter.processes.base import run_on_file
    from pyscatter.processes.sectors import SectorIntegration

    summary = run_on_file(
        args.file,
        SectorIntegration,
        source=args.source,
        override=args.override,
        command="pyscatter sectors",
        n_sectors=args.n_sectors,
        width_deg=args.width,
        offset_deg=args.offset,
        npt=args.npt,
        unit=args.unit,
        radial_range=args.radial_range,
        **detector_kwargs(args),
        **execution_kwargs(args),
    )
    report(summary, "sectors")
    print(f"{args.file}:{summary.group}")
    return 0
