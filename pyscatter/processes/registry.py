"""Pipeline step names → process classes, imported only when a step is used.

The names are those of the ``steps:`` of a pipeline file (``pyscatter run pipeline.yaml``).
Built-in steps are listed in :data:`BUILTIN_PROCESSES` as ``"module:Class"`` strings, so that
listing them imports nothing (``import pyUSID`` alone takes seconds). Third-party packages add
steps through the ``pyscatter.processes`` entry-point group, as translators do::

    [options.entry_points]
    pyscatter.processes =
        mystep = mypackage.process:MyProcess

Examples
--------
>>> from pyscatter.processes.registry import available_processes, process_name_of
>>> "integrate" in available_processes()
True
>>> process_name_of("integrate")
'AzimuthalIntegration'
"""

from __future__ import annotations

import importlib
import importlib.metadata
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

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
    """One pipeline step: its name, where its class lives and the process name it records.

    ``process_name`` is what the results groups record (``@process``) and what
    :func:`pyscatter.to_xarray` takes; it is known without importing the class.
    """

    step: str
    target: str
    process_name: str
    description: str = ""


#: Built-in steps, in the order a typical pipeline runs them.
BUILTIN_PROCESSES: dict[str, ProcessEntry] = {
    e.step: e
    for e in (
        ProcessEntry(
            "integrate",
            "pyscatter.processes.integration:AzimuthalIntegration",
            "AzimuthalIntegration",
            "azimuthal integration I(q) or cake I(chi, q)",
        ),
        ProcessEntry(
            "profiles",
            "pyscatter.processes.profiles:AzimuthalProfiles",
            "AzimuthalProfiles",
            "azimuthal profiles I(chi) of rings",
        ),
        ProcessEntry(
            "sectors",
            "pyscatter.processes.sectors:SectorIntegration",
            "SectorIntegration",
            "I(q) in azimuthal sectors",
        ),
        ProcessEntry(
            "fit",
            "pyscatter.processes.fitting:ProfileFit",
            "ProfileFit",
            "fit a model to every azimuthal profile",
        ),
        ProcessEntry(
            "order",
            "pyscatter.processes.order:OrderParameter",
            "OrderParameter",
            "order parameter <P2> and director from the fits",
        ),
        ProcessEntry(
            "decompose",
            "pyscatter.processes.decomposition:Decomposition",
            "Decomposition",
            "PCA / NMF decomposition of the spectra of a map",
        ),
        ProcessEntry(
            "cluster",
            "pyscatter.processes.clustering:Clustering",
            "Clustering",
            "cluster the positions of a map",
        ),
        ProcessEntry(
            "peaks",
            "pyscatter.processes.peaks:PeakFit",
            "PeakFit",
            "fit peaks of I(q)",
        ),
    )
}


def available_processes() -> dict[str, ProcessEntry]:
    """Every step name with its entry: built-ins first, then entry-point plugins.

    Nothing is imported. A plugin reusing a built-in name is ignored with a warning.
    """
    found = dict(BUILTIN_PROCESSES)
    for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        if ep.name in BUILTIN_PROCESSES:
            if ep.value.replace(" ", "") != BUILTIN_PROCESSES[ep.name].target:
                log.warning(
                    "process plugin %r (%s) ignored: %r is a built-in step",
                    ep.name,
                    ep.value,
                    ep.name,
                )
            continue
        attr = ep.value.partition(":")[2] or ep.name
        found[ep.name] = ProcessEntry(ep.name, ep.value.replace(" ", ""), attr.rsplit(".", 1)[-1])
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
        raise InputError(f"unknown step {name!r}; expected one of {', '.join(entries)}")
    entry = entries[name]
    module_name, _, attr = entry.target.partition(":")
    try:
        module = importlib.import_module(module_name)
        cls = getattr(module, attr)
    except (ImportError, AttributeError) as err:
        raise InputError(
            f"step {name!r} ({entry.target}) is not available here: {type(err).__name__}: {err}"
        ) from err
    from pyscatter.processes.base import ScatterProcess

    if not (isinstance(cls, type) and issubclass(cls, ScatterProcess)):
        raise InputError(f"step {name!r}: {entry.target} is not a pyscatter ScatterProcess")
    return cls


def process_name_of(name: str) -> str:
    """The recorded process name of step ``name``; any other name is returned unchanged.

    >>> process_name_of("fit"), process_name_of("OrderParameter")
    ('ProfileFit', 'OrderParameter')
    """
    entry = available_processes().get(name)
    return entry.process_name if entry is not None else name
