"""``pyscatter watch SOURCE -o FILE.h5 --pipeline P.yaml``: process a scan while it is written.

SOURCE is a folder where a detector writes one file per frame (TIFF, CBF, EDF), a growing HDF5
file (Eiger/LIMA-style), or a SPEC file whose scan is being appended. Every new frame is written
into FILE.h5 and the pipeline's steps (integrate, profiles, fit, order …) run on it as it lands;
a reader (``pyscatter info``, ``to_xarray``, silx) can open FILE.h5 at any moment and sees every
completed position. The scan's shape comes from the SPEC ``#S`` line, ``--grid``, or none (an
unbounded series). The watch ends when the declared scan is full (``--until-complete``), after
``--idle`` seconds without a new frame, when a SPEC scan ends, or on Ctrl-C (a second Ctrl-C
stops at once); it prints what it did. Killed, the same command continues where the file's record
says; the results equal an offline run of the finished scan, bit for bit.
"""

from __future__ import annotations

import argparse


def register(sub) -> None:
    p = sub.add_parser(
        "watch",
        help="follow a scan while it is written: frames and steps as they land",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("source", help="folder of frame files, growing HDF5 file, or SPEC file")
    p.add_argument("-o", "--output", required=True, help="the HDF5 file to write (or continue)")
    p.add_argument(
        "--pipeline",
        help="a pipeline YAML whose steps run on every frame (its translate: options such as "
        "poni and mask apply; its output: is ignored); none: frames only",
    )
    p.add_argument("--pattern", help="folder: glob of the frame files (default: every image)")
    p.add_argument(
        "--grid",
        help="the scan's dims slow→fast, e.g. Y=6,X=8 (default: declared "
        "by the source, or an unbounded series)",
    )
    p.add_argument("--scan", type=int, help="SPEC: the scan number to follow (default: the last)")
    p.add_argument(
        "--first-number",
        type=int,
        help="folder: the frame number of position 0 in the file names (default: the smallest "
        "number found when the first files appear; give it when frames may land out of order)",
    )
    p.add_argument("--poni", help="pyFAI geometry file (overrides the pipeline's)")
    p.add_argument("--mask", help="mask image, nonzero = masked (overrides the pipeline's)")
    p.add_argument("--flip", choices=("ud", "lr"), help="store frames flipped")
    p.add_argument("--dummy", type=float, help="value of invalid pixels (recorded)")
    p.add_argument("--compression", choices=("bslz4", "gzip", "none"))
    p.add_argument(
        "--until-complete",
        action="store_true",
        help="exit once every position of the declared scan is written and processed",
    )
    p.add_argument(
        "--idle", type=float, metavar="SECONDS", help="exit after this long without a new frame"
    )
    p.add_argument(
        "--settle",
        type=float,
        default=0.5,
        help="seconds a frame file's size must stay unchanged to count as complete "
        "(files renamed from a temporary name count at once; default 0.5)",
    )
    p.add_argument(
        "--frame-timeout",
        type=float,
        default=30.0,
        help="seconds a frame file may stay unreadable after its last change before it is "
        "skipped as corrupt (default 30)",
    )
    p.add_argument(
        "--poll", type=float, default=0.05, help="seconds between looks at the source (0.05)"
    )
    p.add_argument(
        "--side-outputs",
        metavar="FOLDER",
        help="write one text file per frame into FOLDER as it is integrated",
    )
    p.add_argument(
        "--side-format",
        choices=("dat", "chi"),
        default="dat",
        help="side files: .dat (q, I, sigma; default) or Fit2D .chi",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pyscatter.live.runner import WatchOptions, watch

    translate = {
        key: value
        for key, value in (
            ("poni", args.poni),
            ("mask", args.mask),
            ("flip", args.flip),
            ("dummy", args.dummy),
            ("compression", args.compression),
        )
        if value is not None
    }
    options = WatchOptions(
        pattern=args.pattern,
        grid=args.grid,
        scan=args.scan,
        first_number=args.first_number,
        translate=translate,
        until_complete=args.until_complete,
        idle=args.idle,
        poll_interval=args.poll,
        settle=args.settle,
        frame_timeout=args.frame_timeout,
        side_outputs=args.side_outputs,
        side_format=args.side_format,
    )
    report = watch(args.source, args.output, args.pipeline, options)
    for line in report.lines():
        print(line)
    return 130 if report.stopped_by == "interrupted" else 0
