"""``pyscatter formats``: the translators installed (built-in and plug-ins)."""

from __future__ import annotations

import argparse


def register(sub) -> None:
    p = sub.add_parser("formats", help="list the installed translators", description=__doc__)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pyscatter.translators import available_translators

    for name, cls in sorted(available_translators().items()):
        extensions = " ".join(getattr(cls, "extensions", ())) or "-"
        print(f"{name:10s} {extensions:32s} {getattr(cls, 'description', '')}")
    print("\nchoose one with: pyscatter translate … --format NAME (default: auto, by content)")
    return 0
