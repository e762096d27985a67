"""Named plug-in registries: built-ins declared once in code, third-party ones by entry points.

One mechanism serves the translators (:mod:`pyscatter.translators`, group
``pyscatter.translators``) and the processing steps (:mod:`pyscatter.processes.registry`, group
``pyscatter.processes``):

* the built-ins are a table in code, ``name -> "module:attr"``, and nothing else declares them
  (not the package metadata), so they are there even with stale metadata;
* a third-party package adds names through an entry-point group in its own metadata::

      [options.entry_points]
      pyscatter.processes =
          mystep = mypackage.process:MyProcess

* listing the names imports nothing; :func:`load` imports one target when it is used;
* a plugin that reuses a built-in name is ignored with a warning (unless it points at the same
  target: old metadata of pyscatter itself), and an unknown name gives one message listing the
  known ones (:func:`unknown_name`).

Examples
--------
>>> found = entries("pyscatter.no_such_group", {"one": "math:pi"}, "thing")
>>> found["one"]
Entry(name='one', target='math:pi', origin='built-in')
>>> round(load(found["one"].target), 4)
3.1416
>>> str(unknown_name("thing", "two", found))
"unknown thing 'two'; expected one of one"
"""

from __future__ import annotations

import importlib
import importlib.metadata
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from pyscatter.errors import InputError

__all__ = ["BUILT_IN", "Entry", "entries", "load", "unknown_name"]

log = logging.getLogger(__name__)

#: The ``origin`` of the entries declared in pyscatter's own tables.
BUILT_IN = "built-in"


@dataclass(frozen=True)
class Entry:
    """One registered name: where its object lives and who declared it.

    ``target`` is ``"module:attr"`` (``attr`` may be dotted); ``origin`` is :data:`BUILT_IN`
    or the name of the distribution whose entry point declared it.
    """

    name: str
    target: str
    origin: str = BUILT_IN

    @property
    def attr(self) -> str:
        """The last part of the target's attribute path (a class name, usually)."""
        return self.target.partition(":")[2].rsplit(".", 1)[-1]


def _plugin_origin(ep: importlib.metadata.EntryPoint) -> str:
    dist = getattr(ep, "dist", None)
    name = getattr(dist, "name", None) if dist is not None else None
    return str(name) if name else "an installed package"


def entries(group: str, builtins: Mapping[str, str], what: str) -> dict[str, Entry]:
    """The built-ins of ``builtins`` (in their order), then the plug-ins of ``group`` by name.

    Parameters
    ----------
    group : str
        The entry-point group of the plug-ins, e.g. ``"pyscatter.processes"``.
    builtins : mapping
        ``name -> "module:attr"`` of the built-ins.
    what : str
        What a name is (``"step"``, ``"format"``), for the warnings.

    Returns
    -------
    dict of str to Entry
        Nothing is imported. An entry point reusing a built-in name with another target is
        left out with a warning; one with the built-in's own target (pyscatter's metadata from
        before its built-ins were declared only in code) silently.
    """
    found = {name: Entry(name, target) for name, target in builtins.items()}
    plugins = sorted(importlib.metadata.entry_points(group=group), key=lambda ep: ep.name)
    for ep in plugins:
        target = ep.value.replace(" ", "")
        if ep.name in builtins:
            if target != builtins[ep.name]:
                log.warning(
                    "%s plugin %r (%s, from %s) ignored: %r is a built-in %s",
                    what,
                    ep.name,
                    ep.value,
                    _plugin_origin(ep),
                    ep.name,
                    what,
                )
            continue
        if ep.name in found:
            if target == found[ep.name].target:
                continue
            log.warning(
                "%s plugin %r (%s) ignored: the name is declared twice (also %s)",
                what,
                ep.name,
                ep.value,
                found[ep.name].target,
            )
            continue
        found[ep.name] = Entry(ep.name, target, _plugin_origin(ep))
    return found


def load(target: str) -> Any:
    """Import ``"module:attr"`` (``attr`` may be dotted) and return the object.

    Raises
    ------
    ImportError, AttributeError
        The module cannot be imported, or has no such attribute (callers say which name).
    ValueError
        ``target`` is not of the form ``module:attr``.
    """
    module_name, sep, attr = target.partition(":")
    if not (sep and module_name and attr):
        raise ValueError(f"{target!r} is not of the form 'module:attr'")
    obj: Any = importlib.import_module(module_name)
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj


def unknown_name(
    what: str,
    name: Any,
    known: Iterable[str],
    *,
    expected: str = "expected one of",
    hint: str = "",
) -> InputError:
    """The error for a name nobody registered: it lists the known names (then ``hint``)."""
    names = ", ".join(known) or "(none installed)"
    return InputError(f"unknown {what} {name!r}; {expected} {names}{hint}")
