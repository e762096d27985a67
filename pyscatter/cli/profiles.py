"""``pyscatter profiles FILE.h5 --q 0.45 --half-width 0.06``: azimuthal profiles I(chi) at rings.

Rings are given as centres (``--q``, repeatable or comma-separated, with ``--half-width``), as
q ranges (``--q-range LO HI``, repeatable) or as reflections (``--hkl 1,0,0`` with
``--half-width`` and ``--lattice a=5.411`` or ``--cif FILE``). ``--width`` is the deprecated
spelling of ``--half-width`` (the same value: each ring is [q - w, q + w]). Resumable: the same
command continues an interrupted run, and reuses a complete one.
"""

from __future__ import annotations

import argparse

from pyscatter.cli.options import (
    add_detector,
    add_execution,
    detector_kwargs,
    execution_kwargs,
    note_deprecated,
    report,
)
from pyscatter.errors import InputError


def add_detector_options(p: argparse.ArgumentParser) -> None:
    """The "detector" group of ``pyscatter profiles`` and ``pyscatter sectors`` (error model
    Poisson by default), and ``--source``."""
    add_detector(p, {"error_model": "poisson"})
    p.add_argument("--source", help="source dataset path in the file (default: Raw_Data)")


def register(sub) -> None:
    p = sub.add_parser(
        "profiles",
        help="azimuthal profiles I(chi) at rings of q, with sigma",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("file", help="USID HDF5 file written by 'pyscatter translate'")
    rings = p.add_argument_group("rings (one way)")
    rings.add_argument(
        "--q", action="append", metavar="Q[,Q…]", help="ring centre(s) in --unit; repeatable"
    )
    rings.add_argument(
        "--half-width",
        "--width",
        dest="half_width",
        action=_AppendHalfWidth,
        metavar="W[,W…]",
        help="ring half-width(s) in --unit: one, or one per ring (ring = [q - w, q + w]); "
        "--width is its deprecated spelling",
    )
    rings.add_argument(
        "--q-range",
        action="append",
        nargs=2,
        type=float,
        metavar=("LO", "HI"),
        help="a ring as a q range; repeatable",
    )
    rings.add_argument("--hkl", action="append", metavar="H,K,L", help="reflection; repeatable")
    rings.add_argument(
        "--lattice",
        metavar="a=…[,b=…,c=…,alpha=…,beta=…,gamma=…]",
        help="cell for --hkl: lengths in Å, angles in degrees (b, c default to a, angles to 90)",
    )
    rings.add_argument("--cif", help="CIF file of the cell for --hkl (read with ASE)")
    p.add_argument("--npt-azim", type=int, default=180, help="chi bins (default 180)")
    p.add_argument(
        "--n-radial",
        type=int,
        default=8,
        help="radial sub-bins across each ring (default 8): masks and frame edges "
        "that cover part of a ring no longer bias I(chi)",
    )
    p.add_argument(
        "--min-coverage",
        type=float,
        default=0.5,
        help="a chi bin whose sub-bins are covered less than this fraction of usual "
        "is NaN (default 0.5)",
    )
    p.add_argument("--unit", default="q_nm^-1", help="q_nm^-1 (default) or q_A^-1")
    add_detector_options(p)
    add_execution(p)
    p.set_defaults(func=run)


class _AppendHalfWidth(argparse.Action):
    """``append``, with a warning for the deprecated ``--width``."""

    def __call__(self, parser, namespace, values, option_string=None):
        if option_string == "--width":
            note_deprecated(namespace, "--width", "--half-width")
        items = list(getattr(namespace, self.dest) or [])
        setattr(namespace, self.dest, [*items, values])


def parse_floats(values: list[str] | None, what: str) -> list[float] | None:
    """Repeated and/or comma-separated numbers, e.g. ``["0.45,0.8", "1.2"]``."""
    if values is None:
        return None
    out = []
    for text in values:
        for item in text.split(","):
            try:
                out.append(float(item))
            except ValueError:
                raise InputError(f"--{what} takes numbers; got {text!r}") from None
    return out


def parse_hkl(values: list[str] | None) -> list[tuple[int, int, int]] | None:
    if values is None:
        return None
    out = []
    for text in values:
        parts = text.replace(" ", "").split(",")
        try:
            h, k, l = (int(x) for x in parts)  # noqa: E741
        except ValueError:
            raise InputError(f"--hkl takes three integers H,K,L; got {text!r}") from None
        out.append((h, k, l))
    return out


def parse_lattice(text: str | None) -> dict[str, float] | None:
    if text is None:
        return None
    from pyscatter.geometry import LATTICE_KEYS

    out: dict[str, float] = {}
    for item in text.replace(" ", "").split(","):
        key, sep, value = item.partition("=")
        if not sep or key not in LATTICE_KEYS:
            raise InputError(
                f"--lattice takes key=value pairs with keys among {', '.join(LATTICE_KEYS)}; "
                f"got {item!r}"
            )
        try:
            out[key] = float(value)
        except ValueError:
            raise InputError(f"--lattice {key} must be a number; got {value!r}") from None
    return out


def run(args: argparse.Namespace) -> int:
    from pyscatter.processes.base import run_on_file
    from pyscatter.processes.profiles import AzimuthalProfiles

    summary = run_on_file(
        args.file,
        AzimuthalProfiles,
        source=args.source,
        override=args.override,
        command="pyscatter profiles",
        q=parse_floats(args.q, "q"),
        half_width=parse_floats(args.half_width, "half-width"),
        q_range=args.q_range,
        hkl=parse_hkl(args.hkl),
        lattice=parse_lattice(args.lattice),
        cif=args.cif,
        npt_azim=args.npt_azim,
        n_radial=args.n_radial,
        min_coverage=args.min_coverage,
        unit=args.unit,
        **detector_kwargs(args),
        **execution_kwargs(args),
    )
    report(summary, "profiles")
    print(f"{args.file}:{summary.group}")
    return 0
