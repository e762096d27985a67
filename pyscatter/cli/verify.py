"""``pyscatter verify FILE.h5``: check every raw frame and every results chunk (read-only).

Raw frames are checked against the crc32 recorded per frame at translation and ``Raw_Data``
against its sha256; results chunks against their completion records. Each frame or chunk that is
corrupted, unreadable or incomplete is listed with its position. Exit 0 when all is intact,
1 when anything is not, 2 for a file pyscatter did not write (it is never written to).
"""

from __future__ import annotations

import argparse


def register(sub) -> None:
    p = sub.add_parser(
        "verify",
        help="check raw frames and results against their recorded checksums",
        description=__doc__,
    )
    p.add_argument("file")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pyscatter.io.integrity import verify_file

    report = verify_file(args.file)
    print(report.text())
    return 0 if report.ok else 1
