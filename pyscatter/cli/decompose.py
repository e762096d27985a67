"""``pyscatter decompose FILE.h5``: PCA, SVD or NMF of every spectrum on components fitted once."""

from __future__ import annotations

import argparse
import logging

from pyscatter.cli.options import add_execution, execution_kwargs, report

log = logging.getLogger("pyscatter")

METHODS = ("pca", "svd", "nmf", "incremental_pca", "minibatch_nmf")


def register(sub) -> None:
    p = sub.add_parser(
        "decompose",
        help="PCA / SVD / NMF of I(q) (or any main dataset): components and loading maps",
        description=__doc__,
    )
    p.add_argument("file", help="USID HDF5 file")
    p.add_argument("--method", choices=METHODS, default="pca", help="default pca")
    p.add_argument("--n-components", type=int, default=3, help="default 3")
    p.add_argument("--random-state", type=int, default=0, help="seed of the fit (default 0)")
    p.add_argument("--max-iter", type=int, help="NMF iterations / SVD power iterations")
    p.add_argument("--tol", type=float, help="NMF stopping tolerance (default 1e-6)")
    p.add_argument(
        "--batch-size",
        type=int,
        default=256,
        help="positions per partial fit (incremental methods)",
    )
    p.add_argument("--n-epochs", type=int, default=20, help="passes over the data (minibatch_nmf)")
    p.add_argument("--clip-negative", action="store_true", help="NMF: clip negative values at 0")
    p.add_argument(
        "--source", help="source dataset path (default: the latest integration Intensity)"
    )
    p.add_argument("--plot", metavar="PNG", help="write components and loading maps to PNG")
    add_execution(p)
    p.set_defaults(func=run)


def results_index(path: str, process: str, group: str) -> int:
    """Index (file order, as ``to_xarray`` counts) of the results group ``group``."""
    from pyscatter.io.results import find_results
    from pyscatter.io.xarray import open_for_reading

    with open_for_reading(path) as h5:
        names = [g.name for g in find_results(h5, process)]
    return names.index(group)


def save_plot(fig, png: str) -> None:
    from pyscatter.plot.decomposition import save

    save(fig, png)
    log.info("figure written to %s", png)


def run(args: argparse.Namespace) -> int:
    from pyscatter.processes.base import run_on_file
    from pyscatter.processes.decomposition import Decomposition

    summary = run_on_file(
        args.file,
        Decomposition,
        source=args.source,
        override=args.override,
        command="pyscatter decompose",
        method=args.method,
        n_components=args.n_components,
        random_state=args.random_state,
        max_iter=args.max_iter,
        tol=args.tol,
        batch_size=args.batch_size,
        n_epochs=args.n_epochs,
        clip_negative=args.clip_negative,
        **execution_kwargs(args),
    )
    report(summary, "decompose")
    if args.plot:
        from pyscatter.plot.decomposition import plot_decomposition

        index = results_index(args.file, "Decomposition", summary.group)
        save_plot(plot_decomposition(args.file, index=index), args.plot)
    print(f"{args.file}:{summary.group}")
    return 0
