"""``pyscatter xrf-roi`` and ``pyscatter xrf-fit``: X-ray fluorescence element maps from MCA spectra.

``pyscatter xrf-roi scan.h5 --elements Fe Cu Zn --excitation 17`` sums a window around each
element's strongest line, less a linear background; ``pyscatter xrf-fit scan.h5 --elements Fe Cu
Zn --excitation 17`` fits every spectrum (SNIP background + line groups). Both apply the dead
time the translator recorded (``--dead-time none`` not to) and optionally the monitor
(``--normalize monitor``).
"""

from __future__ import annotations

import argparse
from typing import Any

from pyscatter.cli.decompose import results_index, save_plot
from pyscatter.cli.options import add_execution, execution_kwargs, report


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("file", help="USID HDF5 file with MCA spectra")
    p.add_argument("--elements", nargs="+", help="elements, e.g. Fe Cu Zn or Pb_L")
    p.add_argument("--excitation", type=float, help="incident energy in keV")
    p.add_argument("--families", nargs="+", default=["K", "L", "M"], help="line families tried")
    p.add_argument(
        "--energy-range", type=float, nargs=2, metavar=("LO", "HI"),
        help="lines kept, keV (default 1 keV to the end)",
    )  # fmt: skip
    det = p.add_argument_group("detector response: FWHM = sqrt(noise² + 2.3548² fano ε E)")
    det.add_argument("--noise", type=float, default=0.1, help="electronic noise FWHM, keV (0.1)")
    det.add_argument("--fano", type=float, default=0.114, help="Fano factor (0.114, Si)")
    det.add_argument("--epsilon", type=float, default=0.00385, help="keV per pair (0.00385)")
    det.add_argument("--escape", action="store_true", help="add the detector's escape peaks")
    det.add_argument("--detector", default="Si", help="detector element for escapes (Si)")
    p.add_argument(
        "--mca-calibration", type=float, nargs="+", metavar="A",
        help="keV = A + B*ch [+ C*ch^2] for spectra recorded in channel numbers",
    )  # fmt: skip
    p.add_argument("--dead-time", choices=("auto", "none"), default="auto",
                   help="apply the recorded dead time (auto, default) or not")  # fmt: skip
    p.add_argument("--normalize", choices=("none", "monitor"), default="none",
                   help="scale to the mean monitor (monitor) or not (none, default)")  # fmt: skip
    p.add_argument("--monitor", default="auto", help="monitor dataset (default: the recorded one)")
    p.add_argument("--source", help="spectra dataset path (default: the first MCA Raw_Data)")
    p.add_argument("--plot", metavar="PNG", help="write the element maps to PNG")


def register(sub) -> None:
    if "xrf-roi" in getattr(sub, "choices", {}):  # both steps name this module: add them once
        return
    roi = sub.add_parser(
        "xrf-roi", help="XRF element maps: window sums with a linear background",
        description=__doc__,
    )  # fmt: skip
    _common(roi)
    roi.add_argument("--roi-width", type=float, default=1.0, help="half width in FWHM (1)")
    roi.add_argument(
        "--background-width", type=float, default=1.0, help="side windows in FWHM (1; 0: none)"
    )
    roi.add_argument(
        "--window", nargs=3, action="append", metavar=("NAME", "LO", "HI"),
        help="a region given in keV instead of the lines (repeat)",
    )  # fmt: skip
    add_execution(roi)
    roi.set_defaults(func=run_roi)
    fit = sub.add_parser(
        "xrf-fit", help="XRF element maps: fast linear fit (SNIP background + line groups)",
        description=__doc__,
    )  # fmt: skip
    _common(fit)
    fit.add_argument("--fit-range", type=float, nargs=2, metavar=("LO", "HI"), help="keV")
    fit.add_argument("--snip-width", type=int, default=30, help="SNIP window, channels (30)")
    fit.add_argument("--snip-iterations", type=int, default=1, help="SNIP passes (1)")
    fit.add_argument(
        "--smooth-width",
        default="auto",
        type=_smooth_arg,
        help="smoothing before SNIP, channels (odd; 0 none; default auto: the peaks' FWHM)",
    )
    fit.add_argument(
        "--store-background", action="store_true", help="also write the fitted backgrounds"
    )
    add_execution(fit)
    fit.set_defaults(func=run_fit)


def _kwargs(args: argparse.Namespace) -> dict[str, Any]:
    return dict(
        elements=args.elements,
        excitation=args.excitation,
        families=args.families,
        energy_range=args.energy_range,
        noise=args.noise,
        fano=args.fano,
        epsilon=args.epsilon,
        escape=args.escape,
        detector=args.detector,
        mca_calibration=args.mca_calibration,
        dead_time=args.dead_time,
        normalize=args.normalize,
        monitor=args.monitor,
    )


def _finish(args: argparse.Namespace, summary, process: str, step: str) -> int:
    report(summary, step)
    if args.plot:
        from pyscatter.plot.xrf import plot_element_maps

        index = results_index(args.file, process, summary.group)
        save_plot(plot_element_maps(args.file, process=process, index=index), args.plot)
    print(f"{args.file}:{summary.group}")
    return 0


def run_roi(args: argparse.Namespace) -> int:
    from pyscatter.errors import InputError
    from pyscatter.processes.base import run_on_file
    from pyscatter.processes.xrf import XrfRoi

    windows = None
    if args.window:
        try:
            windows = {name: [float(lo), float(hi)] for name, lo, hi in args.window}
        except ValueError as err:
            raise InputError(f"--window NAME LO HI: LO and HI in keV ({err})") from None
    summary = run_on_file(
        args.file,
        XrfRoi,
        source=args.source,
        override=args.override,
        command="pyscatter xrf-roi",
        roi_width=args.roi_width,
        background_width=args.background_width,
        windows=windows,
        **_kwargs(args),
        **execution_kwargs(args),
    )
    return _finish(args, summary, "XrfRoi", "xrf-roi")


def run_fit(args: argparse.Namespace) -> int:
    from pyscatter.processes.base import run_on_file
    from pyscatter.processes.xrf import XrfLinearFit

    summary = run_on_file(
        args.file,
        XrfLinearFit,
        source=args.source,
        override=args.override,
        command="pyscatter xrf-fit",
        fit_range=args.fit_range,
        snip_width=args.snip_width,
        snip_iterations=args.snip_iterations,
        smooth_width=args.smooth_width,
        store_background=args.store_background,
        **_kwargs(args),
        **execution_kwargs(args),
    )
    return _finish(args, summary, "XrfFit", "xrf-fit")


def _smooth_arg(text: str) -> int | str:
    return text if text == "auto" else int(text)
