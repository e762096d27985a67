"""``pyscatter export FILE.h5 --to FORMAT``: results to netCDF, CSV, SasView, Fit2D or NXcanSAS.

netcdf and nxcansas write one file (default beside FILE: FILE.nc, FILE_nxcansas.h5); csv,
sasview and chi write one file per scan position into a folder (default FILE_<format>/).
"""

from __future__ import annotations

import argparse


def register(sub) -> None:
    from pyscatter.io.export import FORMATS

    p = sub.add_parser(
        "export",
        help="results → netCDF, CSV, SasView 2-D, Fit2D .chi or NXcanSAS",
        description=__doc__,
    )
    p.add_argument("file", help="pyscatter HDF5 file")
    p.add_argument("--to", required=True, choices=FORMATS, help="output format")
    p.add_argument(
        "--process",
        default="AzimuthalIntegration",
        help="process name or pipeline step name (default AzimuthalIntegration)",
    )
    p.add_argument(
        "--index", type=int, default=-1, help="which results of that process (-1: the latest)"
    )
    p.add_argument("-o", "--output", help="output file or folder (default: beside FILE)")
    p.add_argument("--overwrite", action="store_true", help="replace existing output files")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import logging

    from pyscatter.io.export import export

    written = export(
        args.file,
        args.to,
        args.output,
        process=args.process,  # a step name is resolved by export (pyscatter.io.results)
        index=args.index,
        overwrite=args.overwrite,
    )
    logging.getLogger("pyscatter").info("export: %d file(s) written", len(written))
    if len(written) > 3:
        print(f"{written[0].parent}/ ({len(written)} files)")
    else:
        for path in written:
            print(path)
    return 0
