"""``pyscatter formats``: the translators installed (built-in and plug-ins)."""

from __future__ import annotations

import argparse


def register(sub) -> None:
    p = sub.add_parser("formats", help="list the installed translators", description=__doc__)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pyscatter.registry import BUILT_IN
    from pyscatter.translators import available_translators, translator_entries

    entries = translator_entries()
    for name, cls in available_translators().items():
        extensions = " ".join(getattr(cls, "extensions", ())) or "-"
        origin = entries[name].origin
        plugin = "" if origin == BUILT_IN else f" (plugin from {origin})"
        print(f"{name:10s} {extensions:32s} {getattr(cls, 'description', '')}{plugin}")
    print("\nchoose one with: pyscatter translate … --format NAME (default: auto, by content)")
    return 0
