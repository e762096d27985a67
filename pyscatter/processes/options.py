"""Options declared once: for Python keywords, the command line and pipeline YAML.

An :class:`Option` names a keyword of the Python API (also its YAML key), its type hint (what
a pipeline checks a YAML value against), its default, its command-line flag and help. Two
tables use it:

- :data:`EXECUTION_OPTIONS`: how a process runs (workers, memory, progress, resume), the
  keywords of :class:`~pyscatter.processes.base.ScatterProcess`;
- :data:`DETECTOR_OPTIONS`: the detector set-up of the frame-integrating processes (geometry,
  masks, corrections, normalisation, error model, pyFAI method), see
  :class:`~pyscatter.processes.detector.DetectorSetup`.

``pyscatter.cli.options`` builds the argparse groups from them and ``pyscatter.pipeline``
validates YAML steps with :func:`step_parameters` and :func:`check_execution`, so a flag, its
keyword and its YAML key cannot drift apart. Deprecated spellings (e.g. ``--polarization``)
are accepted, with a warning, where an option lists them.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pyscatter.errors import InputError

__all__ = [
    "DETECTOR_OPTIONS",
    "EXECUTION_OPTIONS",
    "Option",
    "check_execution",
    "keyword_parameters",
    "step_parameters",
    "type_problem",
]


@dataclass(frozen=True)
class Option:
    """One option, declared once.

    Attributes
    ----------
    name : str
        Keyword in Python and key in pipeline YAML.
    annotation : str
        Type hint (``"float | None"``): what a YAML value is checked against.
    default : Any
        Default of the Python keyword (and of the flag).
    help : str
        Command-line help.
    flag : str, optional
        Command-line flag; default ``--`` + the name with dashes. For a boolean option whose
        default is True, the flag turns it off (``--no-…``).
    cli : mapping
        More argparse keywords (``type``, ``choices``, ``nargs``, ``metavar``).
    convert : str, optional
        How the flag's text becomes the keyword's value: ``"image"`` (an image file read with
        fabio), ``"number_or_path"`` (a number, else a dataset path).
    deprecated_flags : tuple of str
        Older flags still accepted (a warning says which to use).
    check : callable, optional
        ``check(value) -> value`` raising :class:`~pyscatter.errors.InputError` (the rule of
        the value, shared by the command line and pipelines).
    label : str, optional
        What the value may be, for messages (default from ``annotation``).
    """

    name: str
    annotation: str
    default: Any
    help: str
    flag: str | None = None
    cli: Mapping[str, Any] = field(default_factory=dict)
    convert: str | None = None
    deprecated_flags: tuple[str, ...] = ()
    check: Callable[[Any], Any] | None = None
    label: str | None = None

    @property
    def cli_flag(self) -> str:
        if self.flag is not None:
            return self.flag
        if self.annotation == "bool" and self.default is True:
            return "--no-" + self.name.replace("_", "-")
        return "--" + self.name.replace("_", "-")

    @property
    def negated(self) -> bool:
        """The flag turns off an option that is on by default."""
        return self.annotation == "bool" and self.default is True

    def parameter(self) -> inspect.Parameter:
        """As an :class:`inspect.Parameter` (keyword-only), for signature-based checks."""
        return inspect.Parameter(
            self.name,
            inspect.Parameter.KEYWORD_ONLY,
            default=self.default,
            annotation=self.annotation,
        )


# --------------------------------------------------------------------------- execution


def _at_least_one(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InputError(f"expected an integer >= 1; got {value!r}")
    return value


def _max_mem_mb(value: Any) -> float:
    from pyscatter.processes.execution import check_max_mem_mb

    return check_max_mem_mb(value)


def _max_mem_label() -> str:
    from pyscatter.processes.execution import MAX_MEM_MB

    return f"a finite number of MiB > 0 and <= {MAX_MEM_MB}"


EXECUTION_OPTIONS: tuple[Option, ...] = (
    Option(
        "n_jobs",
        "int",
        1,
        "worker processes (default 1)",
        cli={"type": int},
        check=_at_least_one,
        label="an integer >= 1",
    ),
    Option(
        "scheduler",
        "str | None",
        None,
        "'local' (dask LocalCluster) or a dask scheduler address",
        label="'local', a dask scheduler address or null",
    ),
    Option(
        "cluster",
        "dict | None",
        None,
        "submit workers through dask-jobqueue",
        cli={"choices": ("slurm", "pbs", "sge", "lsf")},
        label="a mapping {kind, cores, memory, walltime, jobs, queue …} or null",
    ),
    Option(
        "max_mem_mb",
        "float",
        512,
        "MiB for one worker's block of positions: read buffers, working copies, results "
        "(sets positions per block; one must fit). Not a process limit: imports (~150 MiB) "
        "and set-up (~190 MiB for an Eiger 1M integrator) come on top (default 512)",
        cli={"type": float},
        check=_max_mem_mb,
    ),
    Option("progress", "bool", True, "no progress bar"),
    Option(
        "read_ahead",
        "bool",
        True,
        "serial runs: read and compute blocks in turn (default: the next block of frames is "
        "read in a thread meanwhile)",
    ),
    Option(
        "override",
        "bool",
        False,
        "recompute even if the same parameters were run before",
    ),
)
"""How a process runs. ``override`` is an argument of ``run_on_file`` (a step key in YAML);
the others are keywords of :class:`~pyscatter.processes.base.ScatterProcess`."""

EXECUTION = {o.name: o for o in EXECUTION_OPTIONS}
#: The execution options a pipeline's ``execution:`` mapping takes.
RUN_OPTIONS = tuple(o.name for o in EXECUTION_OPTIONS if o.name != "override")


def label(option: Option) -> str:
    """What ``option`` takes, for messages."""
    if option.name == "max_mem_mb":
        return _max_mem_label()
    if option.label:
        return option.label
    return " or ".join(
        dict.fromkeys(_KINDS[k][0] for k in _base_names(option.annotation) if k in _KINDS)
    )


def check_execution(name: str, value: Any) -> Any:
    """``value`` of the execution option ``name``, checked; InputError ``expected …``.

    The one rule of each execution option, used by the command line and by pipelines (the
    caller names the option as its user wrote it).
    """
    option = EXECUTION[name]
    if name == "cluster" and (value is None or isinstance(value, dict)):
        return value
    problem = type_problem(option.annotation, value)
    if problem is None and option.check is not None:
        try:
            return option.check(value)
        except InputError:
            problem = "invalid"
    if problem is not None:
        raise InputError(f"expected {label(option)}, got {value!r}")
    return value


# --------------------------------------------------------------------------- detector

DETECTOR_OPTIONS: tuple[Option, ...] = (
    Option(
        "poni",
        "str | Path | dict | None",
        None,
        "geometry (default: the one recorded in the file)",
        cli={"metavar": "FILE"},
    ),
    Option(
        "mask",
        "ndarray | None",
        None,
        "extra mask image (nonzero = masked), added to the file's mask",
        cli={"metavar": "IMAGE"},
        convert="image",
    ),
    Option(
        "use_file_mask", "bool", True, "ignore the mask recorded in the file", flag="--no-file-mask"
    ),
    Option(
        "dummy",
        "float | None",
        None,
        "value of invalid pixels (default: the one recorded in the file, if any)",
        cli={"type": float},
    ),
    Option("delta_dummy", "float | None", None, "tolerance around --dummy", cli={"type": float}),
    Option(
        "dark",
        "ndarray | None",
        None,
        "dark image to subtract",
        cli={"metavar": "IMAGE"},
        convert="image",
    ),
    Option(
        "flat",
        "ndarray | None",
        None,
        "flat-field image to divide by",
        cli={"metavar": "IMAGE"},
        convert="image",
    ),
    Option(
        "correct_solid_angle",
        "bool",
        True,
        "no solid-angle correction",
        flag="--no-solid-angle",
    ),
    Option(
        "polarization_factor",
        "float | None",
        None,
        "polarization factor in [-1, 1] (--polarization: deprecated spelling)",
        cli={"type": float, "metavar": "P"},
        deprecated_flags=("--polarization",),
    ),
    Option(
        "monitor",
        "str | None",
        None,
        "normalise by a monitor: 'auto' (the recorded one) or a per-position dataset path",
    ),
    Option(
        "transmission",
        "float | str | None",
        None,
        "normalise by a transmission: a number or a dataset path",
        convert="number_or_path",
    ),
    Option(
        "exposure_time",
        "float | str | None",
        None,
        "normalise by exposure time: a number or a dataset path",
        convert="number_or_path",
    ),
    Option(
        "error_model",
        "str | None",
        None,
        "sigma from Poisson counts or the spread within each bin",
        cli={"choices": ("poisson", "azimuthal")},
    ),
    Option(
        "method",
        "str | Sequence[str]",
        "bbox,csr,cython",
        "pyFAI method split,algorithm,implementation (default bbox,csr,cython); the one that "
        "runs is recorded",
    ),
    Option(
        "allow_fallback",
        "bool",
        False,
        "when --method is not available here (e.g. opencl without OpenCL), run pyFAI's closest "
        "available method (recorded) instead of refusing",
    ),
)
"""The detector set-up of AzimuthalIntegration, AzimuthalProfiles and SectorIntegration."""

DETECTOR = {o.name: o for o in DETECTOR_OPTIONS}


# --------------------------------------------------------------------------- types from hints


def _alternatives(annotation: Any) -> list[str]:
    """``"int | None"`` → ``["int", "None"]`` (top-level union members, brackets respected)."""
    text = annotation if isinstance(annotation, str) else inspect.formatannotation(annotation)
    text = text.replace("typing.", "").strip()
    if text.startswith("Optional[") and text.endswith("]"):
        return [*_alternatives(text[9:-1]), "None"]
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        depth += ch == "["
        depth -= ch == "]"
        if ch == "|" and depth == 0:
            parts.append(text[start:i].strip())
            start = i + 1
    parts.append(text[start:].strip())
    return parts


def _base_names(annotation: Any) -> list[str]:
    return [a.split("[", 1)[0].strip().rsplit(".", 1)[-1] for a in _alternatives(annotation)]


_KINDS: dict[str, tuple[str, Any]] = {
    "None": ("null", lambda v: v is None),
    "int": ("an integer", lambda v: isinstance(v, int) and not isinstance(v, bool)),
    "float": ("a number", lambda v: isinstance(v, (int, float)) and not isinstance(v, bool)),
    "bool": ("true or false", lambda v: isinstance(v, bool)),
    "str": ("a text", lambda v: isinstance(v, str)),
    "Path": ("a file path", lambda v: isinstance(v, str)),
    "PathLike": ("a file path", lambda v: isinstance(v, str)),
    "dict": ("a mapping", lambda v: isinstance(v, dict)),
    "Mapping": ("a mapping", lambda v: isinstance(v, dict)),
    "list": ("a list", lambda v: isinstance(v, list)),
    "tuple": ("a list", lambda v: isinstance(v, list)),
    "Sequence": ("a list", lambda v: isinstance(v, list)),
    "Iterable": ("a list", lambda v: isinstance(v, list)),
    "ndarray": ("an image file path or a list", lambda v: isinstance(v, (str, list))),
}


def type_problem(annotation: Any, value: Any) -> str | None:
    """Why ``value`` (from YAML) does not fit ``annotation``; None if it fits or is unknown."""
    if annotation is inspect.Parameter.empty:
        return None
    wanted = []
    for base in _base_names(annotation):
        if base not in _KINDS:
            return None  # a type not modelled here: the process validates it
        text, fits = _KINDS[base]
        if fits(value):
            return None
        if text not in wanted:
            wanted.append(text)
    return f"expected {' or '.join(wanted)}, got {value!r}"


def hint_names(annotation: Any) -> set[str]:
    """The base type names of a hint (``{"float", "None"}``)."""
    if annotation is inspect.Parameter.empty:
        return set()
    return set(_base_names(annotation))


def is_path_hint(annotation: Any) -> bool:
    """The hint takes a file path (``Path``)."""
    return bool(hint_names(annotation) & {"Path", "PathLike"})


def is_array_hint(annotation: Any) -> bool:
    """The hint takes an array (``ndarray``: an image file or a list in YAML)."""
    return "ndarray" in hint_names(annotation)


def keyword_parameters(func: Any, skip: tuple[str, ...]) -> dict[str, inspect.Parameter]:
    """Keyword parameters of ``func`` by name, without ``skip``."""
    params = inspect.signature(func).parameters
    return {
        n: p
        for n, p in params.items()
        if n not in skip
        and p.kind in (inspect.Parameter.KEYWORD_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    }


def step_parameters(process: Any) -> dict[str, inspect.Parameter]:
    """The physics keywords a process takes (its signature plus its declared options).

    A process that takes the detector set-up through ``**options`` lists the table in its
    ``options`` class attribute (e.g. :data:`DETECTOR_OPTIONS`); execution options are
    left out (a pipeline gives them under ``execution:``).
    """
    allowed = keyword_parameters(process.__init__, ("self", "h5_main", *EXECUTION))
    for option in getattr(process, "options", ()):
        default = getattr(process, "option_defaults", {}).get(option.name, option.default)
        allowed.setdefault(
            option.name,
            inspect.Parameter(
                option.name,
                inspect.Parameter.KEYWORD_ONLY,
                default=default,
                annotation=option.annotation,
            ),
        )
    return allowed


_CLUSTER_TYPES: dict[str, tuple[str, tuple[type, ...]]] = {
    "kind": ("one of slurm, pbs, sge, lsf", (str,)),
    "cores": ("an integer >= 1", (int,)),
    "memory": ("a text such as 16GB", (str,)),
    "walltime": ("a text such as '01:00:00' (quoted)", (str,)),
    "jobs": ("an integer >= 1", (int,)),
    "queue": ("a text", (str,)),
    "account": ("a text", (str,)),
}


def cluster_problems(value: Mapping[str, Any]) -> list[tuple[str | None, str]]:
    """What is wrong with a ``cluster`` mapping: (key or None, message) pairs."""
    from pyscatter.processes.execution import CLUSTERS

    out: list[tuple[str | None, str]] = []
    for key, item in value.items():
        if key in _CLUSTER_TYPES:
            text, types = _CLUSTER_TYPES[key]
            bad = not isinstance(item, types) or isinstance(item, bool)
            bad = bad or (key == "kind" and item not in CLUSTERS)
            bad = bad or (key in ("cores", "jobs") and item < 1)
            if bad:
                out.append((key, f"cluster {key}: expected {text}, got {item!r}"))
    missing = [k for k in ("kind", "cores", "memory") if k not in value]
    if missing:
        out.append(
            (
                None,
                f"cluster: missing {', '.join(missing)} (needed: kind, cores, memory; "
                "optional: walltime, jobs, queue, account and any dask-jobqueue option)",
            )
        )
    return out
