"""``pyscatter run PIPELINE.yaml``: translate and process as a YAML file says, resumably.

Run the same command again after an interruption: the translation is skipped when the output
holds it already, finished steps are reused and a partial one continues where it stopped.
``pyscatter run --example`` prints a commented template.
"""

from __future__ import annotations

import argparse
import sys


def register(sub) -> None:
    p = sub.add_parser(
        "run",
        help="run a YAML pipeline (translate + steps), resumable",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("pipeline", nargs="?", help="the pipeline YAML file")
    p.add_argument("--example", action="store_true", help="print a commented template and exit")
    p.add_argument(
        "--check", action="store_true", help="validate the pipeline (and its files) only"
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pyscatter.errors import InputError
    from pyscatter.pipeline import EXAMPLE, run_pipeline, validate_pipeline

    if args.example:
        sys.stdout.write(EXAMPLE)
        return 0
    if not args.pipeline:
        raise InputError("give a pipeline file (pyscatter run PIPELINE.yaml), or --example")
    if args.check:
        pipe = validate_pipeline(args.pipeline)
        names = (["translate"] if pipe.translate else []) + [s.name for s in pipe.steps]
        print(f"{args.pipeline}: valid ({', '.join(names) or 'nothing to do'} → {pipe.output})")
        return 0
    for s in run_pipeline(args.pipeline):
        detail = ""
        if s.action in ("computed", "resumed"):
            detail = (
                f" ({s.computed_positions} of {s.total_positions} positions, {s.seconds:.1f} s)"
            )
        print(f"{s.step}: {s.action} {s.target}{detail}")
    return 0
