"""``pyscatter cluster FILE.h5``: k-means or Gaussian-mixture clusters of every spectrum."""

from __future__ import annotations

import argparse

from pyscatter.cli.decompose import results_index, save_plot
from pyscatter.cli.options import add_execution, execution_kwargs, report

METHODS = ("kmeans", "minibatch_kmeans", "gmm")


def register(sub) -> None:
    p = sub.add_parser(
        "cluster",
        help="k-means / Gaussian-mixture clustering: label maps and cluster means",
        description=__doc__,
    )
    p.add_argument("file", help="USID HDF5 file")
    p.add_argument("--method", choices=METHODS, default="kmeans", help="default kmeans")
    p.add_argument("--n-clusters", type=int, default=3, help="default 3")
    p.add_argument("--random-state", type=int, default=0, help="seed of the fit (default 0)")
    p.add_argument("--n-init", type=int, help="initialisations (default 10 k-means, 1 gmm)")
    p.add_argument(
        "--covariance-type",
        choices=("full", "tied", "diag", "spherical"),
        default="diag",
        help="gmm covariances (default diag)",
    )
    p.add_argument("--max-iter", type=int, help="iterations (default 300 k-means, 100 gmm)")
    p.add_argument(
        "--batch-size", type=int, default=256, help="positions per partial fit (minibatch_kmeans)"
    )
    p.add_argument(
        "--n-epochs", type=int, default=20, help="passes over the data (minibatch_kmeans)"
    )
    p.add_argument(
        "--source",
        help="source dataset path, e.g. .../Loadings (default: the latest integration Intensity)",
    )
    p.add_argument("--plot", metavar="PNG", help="write the label map and cluster means to PNG")
    add_execution(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pyscatter.processes.base import run_on_file
    from pyscatter.processes.clustering import Clustering

    summary = run_on_file(
        args.file,
        Clustering,
        source=args.source,
        override=args.override,
        command="pyscatter cluster",
        method=args.method,
        n_clusters=args.n_clusters,
        random_state=args.random_state,
        n_init=args.n_init,
        covariance_type=args.covariance_type,
        max_iter=args.max_iter,
        batch_size=args.batch_size,
        n_epochs=args.n_epochs,
        **execution_kwargs(args),
    )
    report(summary, "cluster")
    if args.plot:
        from pyscatter.plot.decomposition import plot_clusters

        index = results_index(args.file, "Clustering", summary.group)
        save_plot(plot_clusters(args.file, index=index), args.plot)
    print(f"{args.file}:{summary.group}")
    return 0
