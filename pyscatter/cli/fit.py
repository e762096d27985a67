"""``pyscatter fit FILE.h5``: fit every azimuthal profile (Maier-Saupe or pseudo-Voigt), resumable.

The models are those of :data:`pyscatter.kernels.models.MODELS`, by the names the results
record and pipelines take (``maier_saupe``, ``pseudo_voigt``); ``maier-saupe`` and
``pseudo-voigt`` are accepted too.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator

from pyscatter.cli.options import add_execution, execution_kwargs, report
from pyscatter.errors import InputError


class _Models:
    """The model names, read from the model registry only when argparse needs them.

    (Building the parser of every command must not import scipy; the fit command's own
    ``--help`` and its parsing may.)
    """

    def __iter__(self) -> Iterator[str]:
        from pyscatter.kernels.models import MODELS

        return iter(MODELS)

    def __contains__(self, name: object) -> bool:
        return name in list(self)


def _model(text: str) -> str:
    """The model's canonical name (``maier-saupe`` → ``maier_saupe``); others unchanged."""
    from pyscatter.processes.fitting import model_name

    try:
        return model_name(text)
    except InputError:
        return text  # argparse refuses it, listing the models


def register(sub) -> None:
    p = sub.add_parser(
        "fit",
        help="fit the azimuthal profiles of every position (orientation)",
        description=__doc__,
    )
    p.add_argument("file", help="USID HDF5 file holding azimuthal profiles")
    p.add_argument(
        "--model",
        type=_model,
        choices=_Models(),
        metavar="MODEL",
        default="maier_saupe",
        help="profile model: %(choices)s (default %(default)s)",
    )
    p.add_argument(
        "--source",
        help="profiles dataset path in the file (default: Intensity of the latest "
        "AzimuthalProfiles results)",
    )
    p.add_argument("--max-iter", type=int, default=100, help="Levenberg-Marquardt steps (100)")
    p.add_argument(
        "--isotropy-alpha",
        type=float,
        default=1e-3,
        help="significance level of the isotropy tests (default 1e-3)",
    )
    p.add_argument(
        "--no-isotropy", action="store_true", help="fit every profile, even isotropic ones"
    )
    p.add_argument("--no-sigma", action="store_true", help="unweighted fit (ignore sigma)")
    p.add_argument(
        "--exclude-chi",
        nargs=2,
        type=float,
        action="append",
        metavar=("LO", "HI"),
        help="leave the chi range [LO, HI] (degrees) out of the fits, e.g. a beamstop holder "
        "or a detector gap; repeatable",
    )
    p.add_argument(
        "--engine",
        choices=("batched", "scipy"),
        default="batched",
        help="vectorised fit (default) or scipy curve_fit row by row (the reference)",
    )
    add_execution(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pyscatter.processes.base import run_on_file
    from pyscatter.processes.fitting import ProfileFit

    summary = run_on_file(
        args.file,
        ProfileFit,
        source=args.source,
        override=args.override,
        command="pyscatter fit",
        model=args.model,
        use_sigma=not args.no_sigma,
        max_iter=args.max_iter,
        isotropy_alpha=None if args.no_isotropy else args.isotropy_alpha,
        exclude_chi=args.exclude_chi,
        engine=args.engine,
        **execution_kwargs(args),
    )
    report(summary, "fit")
    print(f"{args.file}:{summary.group}")
    return 0
