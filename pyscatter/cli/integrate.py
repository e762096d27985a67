"""``pyscatter integrate FILE.h5``: azimuthal integration of every frame, resumable."""

from __future__ import annotations

import argparse

from pyscatter.cli.options import (
    add_detector,
    add_execution,
    detector_kwargs,
    execution_kwargs,
    read_image,  # noqa: F401  (its historical home)
    report,
)


def register(sub) -> None:
    p = sub.add_parser(
        "integrate", help="azimuthal integration I(q) or cake I(chi, q)", description=__doc__
    )
    p.add_argument("file", help="USID HDF5 file written by 'pyscatter translate'")
    p.add_argument("--npt", type=int, default=1000, help="radial bins (default 1000)")
    p.add_argument("--unit", default="q_nm^-1", help="q_nm^-1 (default), q_A^-1, 2th_deg, r_mm")
    p.add_argument("--npt-azim", type=int, help="azimuthal bins: a 2-D cake (chi × q)")
    p.add_argument(
        "--engine",
        choices=("batched", "pyfai"),
        default="batched",
        help="batched sparse-matrix kernel (default) or pyFAI frame by frame",
    )
    p.add_argument("--radial-range", type=float, nargs=2, metavar=("MIN", "MAX"))
    p.add_argument("--azimuth-range", type=float, nargs=2, metavar=("MIN", "MAX"))
    p.add_argument("--source", help="source dataset path in the file (default: Raw_Data)")
    add_detector(p)
    add_execution(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pyscatter.processes.base import run_on_file
    from pyscatter.processes.integration import AzimuthalIntegration

    summary = run_on_file(
        args.file,
        AzimuthalIntegration,
        source=args.source,
        override=args.override,
        command="pyscatter integrate",
        npt=args.npt,
        unit=args.unit,
        npt_azim=args.npt_azim,
        engine=args.engine,
        radial_range=args.radial_range,
        azimuth_range=args.azimuth_range,
        **detector_kwargs(args),
        **execution_kwargs(args),
    )
    report(summary, "integrate")
    print(f"{args.file}:{summary.group}")
    return 0
