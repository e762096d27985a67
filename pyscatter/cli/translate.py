"""``pyscatter translate SOURCES… -o FILE.h5``: detector images or scans into one USID file."""

from __future__ import annotations

import argparse


def register(sub) -> None:
    p = sub.add_parser("translate", help="images/scans → USID HDF5", description=__doc__)
    p.add_argument("sources", nargs="+", help="image files or glob patterns (sorted naturally)")
    p.add_argument("-o", "--output", required=True, help="the HDF5 file to write")
    p.add_argument("--format", default="auto", help="translator name (see 'pyscatter formats')")
    pos = p.add_mutually_exclusive_group()
    pos.add_argument("--positions", help="CSV: header 'Y[um],X[um]' slow→fast, one row per image")
    pos.add_argument("--motors", help="EDF header motors as position dims, e.g. Y,X (slow→fast)")
    pos.add_argument("--grid", help="a regular grid of indices, e.g. Y=6,X=8 (slow→fast)")
    geo = p.add_mutually_exclusive_group()
    geo.add_argument("--poni", help="pyFAI geometry file (recorded in the output)")
    geo.add_argument(
        "--fit2d",
        metavar="KEY=VALUE,…",
        help="Fit2D calibration instead of a PONI file, converted by pyFAI's setFit2D: "
        "dist_mm=…,center_x=…,center_y=…,pixel_x=…,pixel_y=…,wavelength_A=… and optionally "
        "tilt=…,tilt_plan_rotation=… (distance in mm, beam centre in pixels, x = columns, "
        "pixels in µm, wavelength in Å, angles in degrees)",
    )
    p.add_argument(
        "--geometry-from",
        metavar="PARAM=COLUMN[:UNIT],…",
        help="a geometry parameter per position from a positions-CSV column, header motor or "
        "SPEC column/motor, over --poni or the header geometry: energy=COL[:keV|eV], "
        "wavelength=COL[:A|nm|m], distance=COL[:mm|m], poni1/poni2=COL[:m|mm], "
        "beam_center_x/beam_center_y=COL[:pixel]",
    )
    p.add_argument("--mask", help="mask image, nonzero = masked")
    p.add_argument(
        "--flip", choices=("ud", "lr"), help="store images flipped (as the geometry expects)"
    )
    p.add_argument("--dummy", type=float, help="value of invalid pixels (recorded)")
    p.add_argument("--compression", choices=("bslz4", "gzip", "none"), default="bslz4")
    scans = p.add_argument_group("SPEC, NeXus/HDF5 and ESRF sources")
    scans.add_argument("--scan", help="SPEC: one scan number (or number.order)")
    scans.add_argument("--scans", help="SPEC: several scans, e.g. 1,3,7, or 'all'")
    scans.add_argument(
        "--image-pattern",
        help="SPEC: image file per point, e.g. '{file}_{scan:03d}_{point:04d}.tiff'",
    )
    scans.add_argument("--monitor", help="counter/scaler to record as the monitor, e.g. I0")
    scans.add_argument(
        "--mca-calibration", nargs="+", type=float, metavar="A",
        help="SPEC MCA: energy = A + B*ch [+ C*ch^2], replacing #@CALIB",
    )  # fmt: skip
    scans.add_argument("--energy-unit", help="SPEC MCA: unit of the calibration (default keV)")
    for what, text in (("dead-time", "dead time in percent"),
                       ("dead-time-factor", "dead-time correction factor"),
                       ("live-time", "live time"), ("real-time", "real time")):  # fmt: skip
        scans.add_argument(f"--{what}-column", help=f"SPEC MCA: column of the {text}")
    scans.add_argument("--dataset", help="NeXus/HDF5: path of the frames dataset")
    scans.add_argument("--axes", help="NeXus/HDF5: position axes as NAME=PATH,… (slow→fast)")
    scans.add_argument("--kind", help="NeXus/HDF5: how to read the source (see the docs)")
    scans.add_argument(
        "--link",
        nargs="?",
        const="chunks",
        choices=("chunks", "vds"),
        help="HDF5 sources: copy compressed chunks without decoding (default), "
        "or 'vds': leave the frames in the sources (virtual dataset, slow reads)",
    )
    esrf = p.add_argument_group("ESRF ID02 series and scan layout")
    esrf.add_argument(
        "--series",
        help="ID02: field, temperature, time, frames, 'temperature,field' or auto (default)",
    )
    esrf.add_argument("--detector", help="ID02: detector name when a file holds several")
    esrf.add_argument("--scalers", action="append", help="ID02: scalers file(s) for --monitor")
    esrf.add_argument(
        "--snake",
        choices=("auto", "yes", "no"),
        help="serpentine scan: put alternate rows back in order (default auto)",
    )
    esrf.add_argument(
        "--incomplete",
        choices=("pad", "drop", "error"),
        help="an aborted last row: pad with missing positions (default), drop, error",
    )
    esrf.add_argument(
        "--no-header-geometry",
        action="store_true",
        help="ignore ESRF header geometry (Center_1/2, PSize, SampleDistance…)",
    )
    esrf.add_argument(
        "--no-resume",
        action="store_true",
        help="start an interrupted translation again instead of continuing it",
    )
    p.add_argument("--overwrite", action="store_true", help="replace an existing output")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pyscatter.geometry import fit2d_geometry
    from pyscatter.translators import translate

    options = {
        "positions": args.positions,
        "motors": args.motors.split(",") if args.motors else None,
        "grid": args.grid,
        "poni": args.poni if args.fit2d is None else fit2d_geometry(args.fit2d),
        "mask": args.mask,
        "flip": args.flip,
        "dummy": args.dummy,
        "compression": args.compression,
        "overwrite": args.overwrite,
        "progress": True,
        "scan": args.scan,
        "scans": _scans(args.scans),
        "image_pattern": args.image_pattern,
        "monitor": args.monitor,
        "mca_calibration": args.mca_calibration,
        "energy_unit": args.energy_unit,
        "dead_time_column": args.dead_time_column,
        "dead_time_factor_column": args.dead_time_factor_column,
        "live_time_column": args.live_time_column,
        "real_time_column": args.real_time_column,
        "dataset": args.dataset,
        "axes": _axes(args.axes),
        "kind": args.kind,
        "link": {None: None, "chunks": True, "vds": "vds"}[args.link],
        "series": args.series,
        "detector": args.detector,
        "scalers": args.scalers,
        "snake": {None: None, "auto": "auto", "yes": True, "no": False}[args.snake],
        "incomplete": args.incomplete,
        "header_geometry": False if args.no_header_geometry else None,
        "resume": False if args.no_resume else None,
        "geometry_from": args.geometry_from,
    }
    options = {k: v for k, v in options.items() if v is not None}
    path = translate(args.sources, args.output, format=args.format, **options)
    print(path)
    return 0


def _scans(text: str | None):
    if text is None or text == "all":
        return text
    return [t.strip() for t in text.split(",") if t.strip()]


def _axes(text: str | None) -> dict[str, str] | None:
    from pyscatter.errors import InputError

    if text is None:
        return None
    axes = {}
    for item in text.split(","):
        name, sep, path = item.partition("=")
        if not sep or not name.strip() or not path.strip():
            raise InputError(f"--axes {text!r}: expected NAME=PATH,… (e.g. Y=/entry/y,X=/entry/x)")
        axes[name.strip()] = path.strip()
    return axes
