"""``pyscatter cave FILE.h5 [--n-iter N] [--order 0|1] [--center auto | X Y]``: fill the masked
pixels of every frame from their centro-symmetric partners, resumable.

Prints ``FILE:GROUP/Caved_Data``, the caved frames that ``pyscatter integrate FILE --source
GROUP/Caved_Data`` (or profiles, sectors, qmap) takes as its source.
"""

from __future__ import annotations

import argparse
from typing import Any

from pyscatter.cli.options import (
    add_execution,
    add_option,
    execution_kwargs,
    read_image,
    report,
    warn_deprecated,
)
from pyscatter.errors import InputError


def register(sub) -> None:
    from pyscatter.processes.frame_setup import FRAME_OPTIONS

    p = sub.add_parser(
        "cave",
        help="fill masked pixels from their centro-symmetric partners (caved frames)",
        description=__doc__,
    )
    p.add_argument("file", help="USID HDF5 file written by 'pyscatter translate'")
    p.add_argument("--n-iter", type=int, default=1, help="caving passes (default 1)")
    p.add_argument(
        "--order",
        type=int,
        choices=(0, 1),
        default=1,
        help="0: nearest partner pixel; 1: bilinear over the valid pixels around it (default)",
    )
    p.add_argument(
        "--center",
        nargs="+",
        default=["auto"],
        metavar="auto | X Y",
        help="beam centre: auto (from the geometry, default) or X (column) Y (row) in pixels, "
        "pixel (row i, column j) centred at (i, j)",
    )
    p.add_argument("--source", help="source dataset path in the file (default: Raw_Data)")
    g = p.add_argument_group("detector")
    for option in FRAME_OPTIONS:
        add_option(g, option)
    add_execution(p)
    p.set_defaults(func=run)


def parse_center(values: list[str]) -> Any:
    """``["auto"]`` or ``["X", "Y"]`` (column, row) as the ``center`` keyword (row, col)."""
    if values == ["auto"]:
        return "auto"
    try:
        x, y = (float(v) for v in values)
    except ValueError:
        raise InputError(
            f"--center takes auto or two numbers X (column) Y (row); got {' '.join(values)!r}"
        ) from None
    return (y, x)


def frame_kwargs(args: argparse.Namespace, options) -> dict[str, Any]:
    """The detector keywords of ``options`` from their flags (images read)."""
    warn_deprecated(args)
    out = {}
    for option in options:
        value = getattr(args, option.name)
        out[option.name] = read_image(value, option.name) if option.convert == "image" else value
    return out


def run(args: argparse.Namespace) -> int:
    from pyscatter.processes.base import run_on_file
    from pyscatter.processes.caving import Caving
    from pyscatter.processes.frame_setup import FRAME_OPTIONS

    summary = run_on_file(
        args.file,
        Caving,
        source=args.source,
        override=args.override,
        command="pyscatter cave",
        n_iter=args.n_iter,
        order=args.order,
        center=parse_center(args.center),
        **frame_kwargs(args, FRAME_OPTIONS),
        **execution_kwargs(args),
    )
    report(summary, "cave")
    print(f"{args.file}:{summary.group}/Caved_Data")
    return 0
