"""``pyscatter sectors FILE.h5 --n-sectors 8``: radial profiles I(q) in angular sectors.

Angles are pyFAI's chi in degrees; the sectors are stored by increasing centre, in [-180, 180)
(pyFAI's chi interval). Sectors are one of:

  --n-sectors N [--offset DEG] [--width DEG]   N equal sectors, one centred at --offset
                                               (default 0), each --width wide (default 360/N)
  --centers=-90,10,45 --width 20               free centres, each --width wide
  --ranges=-30:30,170:190                      free azimuth ranges START:STOP (START < STOP;
                                               170:190 crosses ±180)

(write ``--centers=…`` with ``=`` when the list starts with a minus sign).
Resumable: the same command continues an interrupted run, and reuses a complete one.
"""

from __future__ import annotations

import argparse

from pyscatter.cli.options import add_execution, detector_kwargs, execution_kwargs, report
from pyscatter.cli.profiles import add_detector_options


def register(sub) -> None:
    p = sub.add_parser(
        "sectors",
        help="radial I(q) in angular sectors, with sigma",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("file", help="USID HDF5 file written by 'pyscatter translate'")
    angles = p.add_mutually_exclusive_group()
    angles.add_argument(
        "--n-sectors", type=int, help="number of equally spaced sectors (default 8)"
    )
    angles.add_argument(
        "--centers", type=_angles, metavar="DEG,DEG,…", help="free sector centres (degrees)"
    )
    angles.add_argument(
        "--ranges",
        type=_ranges,
        metavar="START:STOP,…",
        help="free sectors as azimuth ranges in degrees",
    )
    p.add_argument(
        "--width", type=float, help="sector width in degrees (default 360/n; needed by --centers)"
    )
    p.add_argument(
        "--offset", type=float, default=0.0, help="a centre of the equal sectors (deg, default 0)"
    )
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
        centers_deg=args.centers,
        ranges_deg=args.ranges,
        npt=args.npt,
        unit=args.unit,
        radial_range=args.radial_range,
        **detector_kwargs(args),
        **execution_kwargs(args),
    )
    report(summary, "sectors")
    print(f"{args.file}:{summary.group}")
    return 0


def _angles(text: str) -> list[float]:
    try:
        return [float(v) for v in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected angles in degrees separated by commas, e.g. -90,10,45; got {text!r}"
        ) from None


def _ranges(text: str) -> list[tuple[float, float]]:
    out = []
    for item in text.split(","):
        try:
            start, stop = (float(v) for v in item.split(":"))
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected START:STOP ranges in degrees separated by commas, e.g. -30:30,170:190; "
                f"got {text!r}"
            ) from None
        out.append((start, stop))
    return out
