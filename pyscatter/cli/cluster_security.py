"""Options of a batch cluster's security (``--cluster``): TLS files, dashboard, interface.

Connections are TLS in every case; without ``--tls-ca/--tls-cert/--tls-key`` each run makes
its own key. See :func:`pyscatter.processes.execution.make_batch_cluster`.
"""

from __future__ import annotations

import argparse
from typing import Any

from pyscatter.errors import InputError

_FILES = (("tls_ca", "tls_ca_file"), ("tls_cert", "tls_cert"), ("tls_key", "tls_key"))


def add_cluster_security(group: argparse._ArgumentGroup) -> None:
    """Add ``--tls-ca``, ``--tls-cert``, ``--tls-key``, ``--dashboard``, ``--interface``."""
    group.add_argument(
        "--tls-ca",
        metavar="PEM",
        help="CA certificate of the cluster (--cluster; default: a key per run)",
    )
    group.add_argument(
        "--tls-cert", metavar="PEM", help="certificate of scheduler, workers, client"
    )
    group.add_argument("--tls-key", metavar="PEM", help="private key of --tls-cert")
    group.add_argument(
        "--dashboard",
        nargs="?",
        const=True,
        metavar="ADDRESS",
        help="serve the dask dashboard (--cluster; default none): on 127.0.0.1:8787, or ADDRESS",
    )
    group.add_argument(
        "--interface",
        help="network interface the batch workers reach the scheduler on, e.g. ib0 (--cluster; "
        "default: the one this machine reaches other hosts from)",
    )


def cluster_security_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    """The cluster options these flags give (refused without ``--cluster``)."""
    given = {
        dest: getattr(args, name)
        for name, dest in (*_FILES, ("dashboard", "dashboard"), ("interface", "interface"))
        if getattr(args, name, None) is not None
    }
    if given and not getattr(args, "cluster", None):
        flags = ", ".join("--" + k.replace("_file", "").replace("_", "-") for k in given)
        raise InputError(
            f"{flags} apply to --cluster; a --scheduler address takes its TLS files from dask's "
            "configuration (distributed.comm.tls), and --scheduler local always uses TLS"
        )
    return given
