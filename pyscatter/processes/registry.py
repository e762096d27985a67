"""Processing steps: one name per process, for the command line, pipelines and the readers.

A step's name is the same everywhere: the subcommand (``pyscatter integrate``), the item of a
pipeline's ``steps:`` (``- integrate: {...}``), and what :func:`pyscatter.to_xarray` and
``pyscatter export --process`` take besides the process name the results record
(``AzimuthalIntegration``; :func:`process_name_of` maps one to the other).

The built-in steps are declared once, in :data:`BUILTIN_PROCESSES`, as ``"module:Class"``
strings, so that listing them imports nothing (``import pyUSID`` alone takes seconds). Each
names the module of its subcommand. Third-party packages add steps through the
``pyscatter.processes`` entry-point group (see :mod:`pyscatter.registry`)::

    [options.entry_points]
    pyscatter.processes =
        mystep = mypackage.process:MyProcess

A plugin step runs in pipelines like a built-in one and gets a generic subcommand,
``pyscatter mystep FILE --set key=value`` (:mod:`pyscatter.cli.generic`).

Examples
--------
>>> from pyscatter.processes.registry import available_processes, process_name_of
>>> "integrate" in available_processes()
True
>>> process_name_of("integrate")
'AzimuthalIntegration'
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pyscatter import registry
from pyscatter.errors import InputError

if TYPE_CHECKING:
    from pyscatter.processes.base import ScatterProcess

__all__ = [
    "BUILTIN_PROCESSES",
    "ENTRY_POINT_GROUP",
    "ProcessEntry",
    "available_processes",
    "get_process",
    "process_name_of",
]

log = logging.getLogger(__name__)

#: The entry-point group third-party processes register under.
ENTRY_POINT_GROUP = "pyscatter.processes"


@dataclass(frozen=True)
class ProcessEntry:
    """One processing step: its name, its class, the process name it records, its subcommand.

    Parameters
    ----------
    step : str
        The name of the step (subcommand, pipeline item).
    target : str
        ``"module:Class"`` of its :class:`~pyscatter.processes.base.ScatterProcess`.
    process_name : str or None
        What its results groups record (``@process``), known without importing the class;
        None for a plugin (:func:`process_name_of` asks the class).
    description : str
        One line for listings.
    cli : str or None
        The module whose ``register(sub)`` adds its subcommand; None: the generic one
        (:mod:`pyscatter.cli.generic`).
    origin : str
        ``"built-in"``, or the distribution that declared the plugin.
    """

    step: str
    target: str
    process_name: str | None
    description: str = ""
    cli: str | None = None
    origin: str = registry.BUILT_IN

    @property
    def attr(self) -> str:
        """The class name of ``target``."""
        return registry.Entry(self.step, self.target).attr


#: Built-in steps, in the order a typical pipeline runs them: their only declaration.
BUILTIN_PROCESSES: dict[str, ProcessEntry] = {
    e.step: e
    for e in (
        ProcessEntry(
            "integrate",
            "pyscatter.processes.integration:AzimuthalIntegration",
            "AzimuthalIntegration",
            "azimuthal integration I(q) or cake I(chi, q)",
            cli="pyscatter.cli.integrate",
        ),
        ProcessEntry(
            "profiles",
            "pyscatter.processes.profiles:AzimuthalProfiles",
            "AzimuthalProfiles",
            "azimuthal profiles I(chi) of rings",
            cli="pyscatter.cli.profiles",
        ),
        ProcessEntry(
            "sectors",
            "pyscatter.processes.sectors:SectorIntegration",
            "SectorIntegration",
            "I(q) in azimuthal sectors",
            cli="pyscatter.cli.sectors",
        ),
        ProcessEntry(
            "fit",
            "pyscatter.processes.fitting:ProfileFit",
            "ProfileFit",
            "fit a model to every azimuthal profile",
            cli="pyscatter.cli.fit",
        ),
        ProcessEntry(
            "order",
            "pyscatter.processes.order:OrderParameter",
            "OrderParameter",
            "order parameter <P2> and director from the fits",
            cli="pyscatter.cli.order",
        ),
        ProcessEntry(
            "decompose",
            "pyscatter.processes.decomposition:Decomposition",
            "Decomposition",
            "PCA / NMF decomposition of the spectra of a map",
            cli="pyscatter.cli.decompose",
        ),
        ProcessEntry(
            "cluster",
            "pyscatter.processes.clustering:Clustering",
            "Clustering",
            "cluster the positions of a map",
            cli="pyscatter.cli.cluster",
        ),
        ProcessEntry(
            "peaks",
            "pyscatter.processes.peaks:PeakFit",
            "PeakFit",
            "fit peaks of I(q)",
            cli="pyscatter.cli.peaks",
        ),
        ProcessEntry(
            "invariants",
            "pyscatter.processes.invariants:SaxsInvariants",
            "SaxsInvariants",
            "SAXS Guinier Rg and I0, invariant and Porod constant of I(q)",
            cli="pyscatter.cli.invariants",
        ),
        ProcessEntry(
            "cave",
            "pyscatter.processes.caving:Caving",
            "Caving",
            "fill masked pixels from their centro-symmetric partners (caved frames)",
            cli="pyscatter.cli.cave",
        ),
        ProcessEntry(
            "qmap",
            "pyscatter.processes.qspace:QSpaceMap",
            "QSpaceMap",
            "q-space images (q_perp, q_par) of every frame",
            cli="pyscatter.cli.qmap",
        ),
        ProcessEntry(
            "summary",
            "pyscatter.processes.summary:SeriesSummary",
            "SeriesSummary",
            "parameters against a scan variable, filtered by fit quality, in one table",
            cli="pyscatter.cli.summary",
        ),
        ProcessEntry(
            "xrf-roi",
            "pyscatter.processes.xrf:XrfRoi",
            "XrfRoi",
            "XRF element maps: counts in a window per line group, linear background",
            cli="pyscatter.cli.xrf",
        ),
        ProcessEntry(
            "xrf-fit",
            "pyscatter.processes.xrf:XrfLinearFit",
            "XrfFit",
            "XRF element maps: fast linear fit (SNIP background, line groups)",
            cli="pyscatter.cli.xrf",
        ),
        ProcessEntry(
            "anisotropy",
            "pyscatter.processes.anisotropy:Anisotropy",
            "Anisotropy",
            "RSoXS: I parallel/perpendicular to the polarization and A(q) from a cake",
            cli="pyscatter.cli.anisotropy",
        ),
        ProcessEntry(
            "gi",
            "pyscatter.processes.grazing:GrazingIncidence",
            "GrazingIncidence",
            "grazing incidence: I(q_xy, q_z) maps or I(q, chi) per position, own incident angle",
            cli="pyscatter.cli.grazing",
        ),
    )
}


_BUILTIN_PROCESS_NAMES = frozenset(e.process_name for e in BUILTIN_PROCESSES.values())


def available_processes() -> dict[str, ProcessEntry]:
    """Every step name with its entry: built-ins first, then entry-point plugins by name.

    Nothing is imported. A plugin reusing a built-in name is ignored with a warning.
    """
    builtins = {step: e.target for step, e in BUILTIN_PROCESSES.items()}
    found: dict[str, ProcessEntry] = {}
    for step, entry in registry.entries(ENTRY_POINT_GROUP, builtins, "step").items():
        if entry.origin == registry.BUILT_IN:
            found[step] = BUILTIN_PROCESSES[step]
        else:
            description = f"plugin step {entry.target} (from {entry.origin})"
            found[step] = ProcessEntry(step, entry.target, None, description, None, entry.origin)
    return found


def get_process(name: str) -> type[ScatterProcess]:
    """The process class of step ``name`` (imported now).

    Raises
    ------
    InputError
        Unknown step (the message lists the known ones), or a step whose module cannot be
        imported (not installed or not written yet; the message says why).
    """
    entries = available_processes()
    if name not in entries:
        raise registry.unknown_name("step", name, entries)
    return _load(entries[name])


def _load(entry: ProcessEntry) -> type[ScatterProcess]:
    try:
        cls = registry.load(entry.target)
    except (ImportError, AttributeError, ValueError) as err:
        raise InputError(
            f"step {entry.step!r} ({entry.target}) is not available here: "
            f"{type(err).__name__}: {err}"
        ) from err
    from pyscatter.processes.base import ScatterProcess

    if not (isinstance(cls, type) and issubclass(cls, ScatterProcess)):
        raise InputError(f"step {entry.step!r}: {entry.target} is not a pyscatter ScatterProcess")
    if not cls.process_name:
        raise InputError(f"step {entry.step!r}: {entry.target} sets no process_name")
    return cls


def process_name_of(name: str) -> str:
    """The recorded process name of step ``name``; any other name is returned unchanged.

    A built-in's name is known without importing anything; a plugin's class is imported to
    read its ``process_name`` (its class name if it cannot be imported). Process names pass
    through, so ``"sectors"`` and ``"SectorIntegration"`` both give ``"SectorIntegration"``.

    >>> process_name_of("fit"), process_name_of("OrderParameter")
    ('ProfileFit', 'OrderParameter')
    """
    builtin = BUILTIN_PROCESSES.get(name)
    if builtin is not None and builtin.process_name:
        return builtin.process_name
    if name in _BUILTIN_PROCESS_NAMES:  # a recorded name: no look at the entry points
        return name
    entry = available_processes().get(name)
    if entry is None:
        return name
    if entry.process_name:
        return entry.process_name
    try:
        return _load(entry).process_name
    except InputError as err:
        log.debug("%s; taking its class name %r as its process name", err, entry.attr)
        return entry.attr
