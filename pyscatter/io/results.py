"""Finding the results groups of a process in a file: every lookup goes through here.

A results group is an HDF5 group with a ``process`` attribute (``"AzimuthalIntegration"``,
``"ProfileFit"``…), as :class:`~pyscatter.processes.base.ScatterProcess` writes it beside its
source dataset; its ``completed_chunks`` flags (:mod:`pyscatter.io.record`) say how far the run
got. Every function here takes a process either by the name its groups record
(``"SectorIntegration"``) or by its pipeline step name (``"sectors"``, see
:func:`pyscatter.processes.registry.process_name_of`), so ``to_xarray(path, "sectors")``,
``pyscatter export --process sectors`` and ``pyscatter.open(path).results("sectors")`` agree.

"Latest" means the latest ``start_time`` (ISO 8601, UTC), file order breaking ties; "complete"
means every chunk is flagged (the flags only: :func:`pyscatter.io.record.verified_positions`
checks them against the data). Nothing here imports more than h5py and numpy.

Examples
--------
>>> from pyscatter.io.results import process_name
>>> process_name("sectors"), process_name("SectorIntegration")
('SectorIntegration', 'SectorIntegration')
"""

from __future__ import annotations

from typing import Any

import h5py

from pyscatter.errors import InputError
from pyscatter.io.record import FLAGS, completion, verified_positions

__all__ = [
    "all_results",
    "find_results",
    "is_complete",
    "is_verified_complete",
    "latest_results",
    "output_for_writing",
    "process_name",
    "require_complete",
    "results_by_start_time",
    "results_group",
    "source_results",
]


def process_name(name: str) -> str:
    """The process name results groups record, from it or from a pipeline step name.

    ``"sectors"`` gives ``"SectorIntegration"``; a recorded name, or any name that is not a
    step, comes back unchanged.
    """
    if not isinstance(name, str):
        raise InputError(f"process must be a process or step name (str); got {name!r}")
    from pyscatter.processes.registry import process_name_of  # imports nothing heavy

    return process_name_of(name)


def all_results(h5: h5py.File | h5py.Group) -> list[h5py.Group]:
    """Every results group under ``h5`` (any process), in file order."""
    found: list[h5py.Group] = []

    def visit(_name: str, obj: Any) -> None:
        if isinstance(obj, h5py.Group) and "process" in obj.attrs:
            found.append(obj)

    h5.visititems(visit)
    return found


def find_results(h5: h5py.File | h5py.Group, process: str) -> list[h5py.Group]:
    """Every results group of ``process`` (recorded or step name), in file order; maybe none."""
    name = process_name(process)
    return [g for g in all_results(h5) if str(g.attrs["process"]) == name]


def results_by_start_time(h5: h5py.File | h5py.Group, process: str) -> list[h5py.Group]:
    """The results groups of ``process``, oldest first (``start_time``; file order breaks ties)."""
    groups = find_results(h5, process)
    order = sorted(
        range(len(groups)), key=lambda i: (str(groups[i].attrs.get("start_time", "")), i)
    )
    return [groups[i] for i in order]


def latest_results(
    h5: h5py.File | h5py.Group, process: str, *, complete: bool = True
) -> h5py.Group | None:
    """The most recently started results group of ``process``, or None if there is none.

    Parameters
    ----------
    h5 : h5py.File or h5py.Group
    process : str
        Recorded process name (``"AzimuthalProfiles"``) or pipeline step name (``"profiles"``).
    complete : bool
        Refuse a latest group whose run is not complete (an older complete group is never
        picked instead: the latest run is what was asked for).

    Raises
    ------
    InputError
        ``complete`` and the latest group is not complete (the message names it).
    """
    groups = results_by_start_time(h5, process)
    if not groups:
        return None
    if complete:
        require_complete(groups[-1])
    return groups[-1]


def results_group(
    h5: h5py.File | h5py.Group, process: str, *, index: int = -1, path: str | None = None
) -> h5py.Group:
    """Results group number ``index`` (file order; -1 the last) of ``process``.

    Raises
    ------
    InputError
        No results of ``process`` (the message lists the processes present, with their step
        names), or no group at ``index``. ``path`` names the file in messages (default: its
        HDF5 file name).
    """
    where = path if path is not None else h5.file.filename
    groups = find_results(h5, process)
    if not groups:
        name = process_name(process)
        asked = repr(process) if name == process else f"{process!r} ({name})"
        raise InputError(f"{where}: no results of {asked}; present: {_present(h5)}")
    try:
        return groups[index]
    except IndexError:
        raise InputError(
            f"{where}: {len(groups)} results of {process!r}; no index {index}"
        ) from None


def is_complete(group: h5py.Group) -> bool:
    """Whether every chunk of ``group`` is flagged complete (True for a group with no record)."""
    if FLAGS not in group or "positions_per_chunk" not in group.attrs:
        return True
    done, total = completion(group)
    return done == total


def source_results(source: h5py.Dataset, process: str) -> list[h5py.Group]:
    """The results groups ``<source>-<process>_NNN`` beside ``source``, in index order.

    These are the groups a process writes from this very source (its duplicates, its resumable
    runs, the next free index); ``process`` is the recorded process name.
    """
    prefix = f"{source.name.rsplit('/', 1)[-1]}-{process}_"
    parent = source.parent
    names = sorted(k for k in parent if k.startswith(prefix) and k[len(prefix) :].isdigit())
    return [parent[k] for k in names]


def is_verified_complete(group: h5py.Group) -> bool:
    """Whether every chunk of ``group`` is flagged complete and every flag verifies against
    the data (what reusing a group needs: a flag alone may predate a torn write)."""
    done, total = completion(group)
    return done == total and bool(verified_positions(group).all())


def require_complete(obj: h5py.Group | h5py.Dataset, what: str | None = None) -> None:
    """Refuse a results group (or a dataset in one) whose run is not complete.

    A group without a completion record (written by hand, not by a process) passes.

    Parameters
    ----------
    obj : h5py.Group or h5py.Dataset
        A results group, or a dataset in one (then the message names the dataset too).
    what : str, optional
        What needs it complete, for the message (``"fitting its profiles"``).

    Raises
    ------
    InputError
        Some positions are not complete: a run to resume (the message names the group, how
        many positions are done and which process to resume).
    """
    group = obj if isinstance(obj, h5py.Group) else obj.parent
    if is_complete(group):
        return
    done, total = completion(group)
    head = f"{obj.name}: only" if obj is not group else "only"
    raise InputError(
        f"{head} {done} of {total} positions of {group.name} are complete; finish (resume) "
        f"{group.attrs.get('process', 'that process')} "
        + (f"before {what}" if what else "before using its results")
    )


def output_for_writing(group: h5py.Group, name: str) -> h5py.Dataset:
    """Output ``name`` of a results group, opened without HDF5's chunk cache: for writing blocks.

    A process writes every chunk of its outputs once and whole (a block is a chunk, allocated
    when the group was created), so HDF5's chunk cache (8 MiB per open dataset by default since
    HDF5 2.0, 1 MiB before) would only keep each written chunk resident until the cache is full:
    a run's memory then grows with its blocks (~8 MiB of an ``Intensity`` written in blocks of
    168 kB). Without the cache each chunk goes straight to its place in the file; the bytes
    written, and when they reach the disk (the writer flushes after each block's data), are
    the same.

    HDF5 keeps one cache per dataset while any handle of it is open: a dataset already open
    elsewhere in this process keeps the cache it was first opened with
    (``dset.id.get_access_plist().get_chunk_cache()`` says which).
    """
    dapl = h5py.h5p.create(h5py.h5p.DATASET_ACCESS)
    dapl.set_chunk_cache(0, 0, 1.0)  # slots, bytes, w0: no chunk is kept
    return h5py.Dataset(h5py.h5d.open(group.id, name.encode(), dapl=dapl))


def _present(h5: h5py.File | h5py.Group) -> str:
    """The processes with results in ``h5``, each with its step name: ``SectorIntegration
    (sectors), …``, or ``none``."""
    from pyscatter.processes.registry import available_processes

    steps = {e.process_name: e.step for e in available_processes().values()}
    names = sorted({str(g.attrs["process"]) for g in all_results(h5)})
    return ", ".join(f"{n} ({steps[n]})" if n in steps else n for n in names) or "none"
