"""``pyscatter integrate FILE.h5``: azimuthal integration of every frame, resumable."""

from __future__ import annotations

import argparse

from pyscatter.cli.options import add_execution, execution_kwargs, report


def register(sub) -> None:
    p = sub.add_parser(
        "integrate", help="azimuthal integration I(q) or cake I(chi, q)", description=__doc__
    )
    p.add_argument("file", help="USID HDF5 file written by 'pyscatter translate'")
    p.add_argument("--poni", help="geometry (default: the one recorded in the file)")
    p.add_argument("--npt", type=int, default=1000, help="radial bins (default 1000)")
    p.add_argument("--unit", default="q_nm^-1", help="q_nm^-1 (default), q_A^-1, 2th_deg, r_mm")
    p.add_argument("--npt-azim", type=int, help="azimuthal bins: a 2-D cake (chi × q)")
    p.add_argument(
        "--method",
        default="bbox,csr,cython",
        help="pyFAI method split,algorithm,implementation (default bbox,csr,cython); the one "
        "that runs is recorded",
    )
    p.add_argument(
        "--allow-fallback",
        action="store_true",
        help="when --method is not available here (e.g. opencl without OpenCL), run pyFAI's "
        "closest available method (recorded) instead of refusing",
    )
    p.add_argument(
        "--engine",
        choices=("batched", "pyfai"),
        default="batched",
        help="batched sparse-matrix kernel (default) or pyFAI frame by frame",
    )
    p.add_argument("--error-model", choices=("poisson", "azimuthal"), help="write Intensity_Sigma")
    p.add_argument("--mask", help="extra mask image (nonzero = masked), added to the file's mask")
    p.add_argument("--no-file-mask", action="store_true", help="ignore the mask in the file")
    p.add_argument("--dark", help="dark image to subtract")
    p.add_argument("--flat", help="flat-field image to divide by")
    p.add_argument("--polarization", type=float, help="polarization factor in [-1, 1]")
    p.add_argument("--no-solid-angle", action="store_true", help="no solid-angle correction")
    p.add_argument("--dummy", type=float, help="value of invalid pixels")
    p.add_argument("--delta-dummy", type=float, help="tolerance around --dummy")
    p.add_argument("--radial-range", type=float, nargs=2, metavar=("MIN", "MAX"))
    p.add_argument("--azimuth-range", type=float, nargs=2, metavar=("MIN", "MAX"))
    p.add_argument(
        "--monitor",
        help="normalise by a monitor: 'auto' (the recorded one) or a per-position dataset path",
    )
    p.add_argument("--transmission", help="normalise by a transmission: a number or a dataset path")
    p.add_argument("--exposure-time", help="normalise by exposure time: a number or a dataset path")
    p.add_argument("--source", help="source dataset path in the file (default: Raw_Data)")
    add_execution(p)
    p.set_defaults(func=run)


def read_image(path: str | None, what: str):
    if path is None:
        return None
    import fabio

    from pyscatter.errors import FileFormatError

    try:
        return fabio.open(path).data
    except Exception as err:
        raise FileFormatError(f"{what} {path}: not an image fabio reads ({err})") from err


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
        poni=args.poni,
        mask=read_image(args.mask, "mask"),
        use_file_mask=not args.no_file_mask,
        dark=read_image(args.dark, "dark"),
        flat=read_image(args.flat, "flat"),
        polarization_factor=args.polarization,
        correct_solid_angle=not args.no_solid_angle,
        dummy=args.dummy,
        delta_dummy=args.delta_dummy,
        error_model=args.error_model,
        method=args.method,
        allow_fallback=args.allow_fallback,
        engine=args.engine,
        radial_range=args.radial_range,
        azimuth_range=args.azimuth_range,
        monitor=args.monitor,
        transmission=_number_or_path(args.transmission),
        exposure_time=_number_or_path(args.exposure_time),
        **execution_kwargs(args),
    )
    report(summary, "integrate")
    print(f"{args.file}:{summary.group}")
    return 0


def _number_or_path(text: str | None) -> float | str | None:
    if text is None:
        return None
    try:
        return float(text)
    except ValueError:
        return text
