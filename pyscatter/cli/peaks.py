"""``pyscatter peaks FILE.h5 --peak 0.45 --window 0.1``: fit Bragg peaks in every I(q)."""

from __future__ import annotations

import argparse

from pyscatter.cli.decompose import results_index, save_plot
from pyscatter.cli.options import add_execution, execution_kwargs, report


def register(sub) -> None:
    p = sub.add_parser(
        "peaks",
        help="peak position, width, area (and d-spacing, Scherrer size) maps from I(q)",
        description=__doc__,
    )
    p.add_argument("file", help="USID HDF5 file")
    p.add_argument(
        "--peak", type=float, action="append", help="nominal peak position (repeat per peak)"
    )
    p.add_argument(
        "--window",
        type=float,
        action="append",
        help="full width of the fit window around each peak (once, or once per peak)",
    )
    p.add_argument(
        "--window-limits",
        type=float,
        nargs=2,
        action="append",
        metavar=("LO", "HI"),
        help="an explicit fit window (repeat per peak) instead of --window",
    )
    p.add_argument(
        "--shape",
        choices=("pseudo_voigt", "gaussian", "lorentzian"),
        default="pseudo_voigt",
        help="default pseudo_voigt",
    )
    p.add_argument(
        "--background",
        choices=("constant", "linear", "quadratic"),
        default="linear",
        help="default linear",
    )
    p.add_argument(
        "--instrument-fwhm",
        type=float,
        action="append",
        help="instrumental FWHM (axis unit; once, or once per peak): Scherrer sizes",
    )
    p.add_argument("--scherrer-k", type=float, default=0.9, help="Scherrer constant (0.9)")
    p.add_argument("--wavelength", type=float, help="m, for a 2theta axis (default: the file's)")
    p.add_argument(
        "--sigma",
        choices=("auto", "none", "poisson"),
        default="auto",
        help="weights: auto (the Intensity_Sigma beside the source if any), none, poisson",
    )
    p.add_argument("--max-iter", type=int, default=100, help="fit iterations (default 100)")
    p.add_argument(
        "--source", help="source dataset path (default: the latest integration Intensity)"
    )
    p.add_argument("--plot", metavar="PNG", help="write position, fwhm and area maps to PNG")
    add_execution(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pyscatter.processes.base import run_on_file
    from pyscatter.processes.peaks import PeakFit

    window = args.window
    summary = run_on_file(
        args.file,
        PeakFit,
        source=args.source,
        override=args.override,
        command="pyscatter peaks",
        peaks=args.peak,
        window=window if window is None or len(window) > 1 else window[0],
        windows=args.window_limits,
        shape=args.shape,
        background=args.background,
        instrument_fwhm=args.instrument_fwhm,
        scherrer_k=args.scherrer_k,
        wavelength=args.wavelength,
        sigma=args.sigma,
        max_iter=args.max_iter,
        **execution_kwargs(args),
    )
    report(summary, "peaks")
    if args.plot:
        from pyscatter.plot.decomposition import plot_peaks

        index = results_index(args.file, "PeakFit", summary.group)
        save_plot(plot_peaks(args.file, index=index), args.plot)
    print(f"{args.file}:{summary.group}")
    return 0
