"""``pyscatter summary FILE.h5 --against Field``: every parameter of a step against a scan
variable, filtered by fit quality, with positions sharing a scan value combined; a figure
(``--plot``) and a tidy table (``--csv``)."""

from __future__ import annotations

import argparse
import logging

from pyscatter.cli.options import add_execution, execution_kwargs, report
from pyscatter.kernels.summary import REDUCTIONS


def register(sub) -> None:
    p = sub.add_parser(
        "summary",
        help="parameters against a scan variable (field, temperature, time ...): table + figure",
        description=__doc__,
    )
    p.add_argument("file", help="USID HDF5 file")
    p.add_argument(
        "--against",
        required=True,
        help="the scan variable: a position dim (Field, Temperature, Y ...) or a per-position "
        "value of the measurement (Monitor, Time ...)",
    )
    p.add_argument(
        "--source",
        help="results group or dataset to summarise (default: the latest order parameters, "
        "fits, peaks or invariants; with --q the latest 1-D integration)",
    )
    p.add_argument("--parameters", nargs="+", metavar="NAME", help="parameters (default: all)")
    p.add_argument("--min-r2", type=float, help="positions with a lower R2 are bad")
    p.add_argument(
        "--status", nargs="+", metavar="NAME", help="fit statuses that are good, e.g. OK ISOTROPIC"
    )
    p.add_argument(
        "--reduce",
        choices=REDUCTIONS,
        default="mean",
        help="combine the positions sharing a scan value: mean (default), median, none",
    )
    p.add_argument("--q", type=float, nargs="+", help="summarise I(q) at these q values")
    g = p.add_argument_group("figure and table")
    g.add_argument("--plot", metavar="PNG", help="write the figure here")
    g.add_argument(
        "--bad", choices=("grey", "drop"), default="grey", help="bad positions in the figure"
    )
    g.add_argument("--csv", metavar="CSV", help="write the tidy table here")
    g.add_argument(
        "--per-position",
        action="store_true",
        help="the CSV has one row per position (default: per scan value when combined)",
    )
    g.add_argument("--overwrite", action="store_true", help="replace an existing CSV")
    add_execution(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pyscatter.processes.base import run_on_file
    from pyscatter.processes.summary import SeriesSummary, default_source

    source = args.source
    if source is None and args.q is not None:
        from pyscatter.io.xarray import open_for_reading

        with open_for_reading(args.file) as h5:
            source = default_source(h5, args.q).name
    summary = run_on_file(
        args.file,
        SeriesSummary,
        source=source,
        override=args.override,
        command="pyscatter summary",
        against=args.against,
        parameters=args.parameters,
        min_r2=args.min_r2,
        status=args.status,
        reduce=args.reduce,
        q=args.q,
        **execution_kwargs(args),
    )
    report(summary, "summary")
    print(f"{args.file}:{summary.group}")
    log = logging.getLogger("pyscatter")
    if args.csv:
        from pyscatter.io.summary import dataset_to_frame, summary_dataset, write_summary_csv

        ds = summary_dataset(args.file, group=summary.group, per_position=args.per_position)
        log.info(
            "wrote %s", write_summary_csv(dataset_to_frame(ds), args.csv, overwrite=args.overwrite)
        )
    if args.plot:
        from pyscatter.plot.summary import plot_summary

        fig = plot_summary(args.file, group=summary.group, bad=args.bad)
        fig.savefig(args.plot, dpi=150)
        log.info("wrote %s", args.plot)
    return 0
