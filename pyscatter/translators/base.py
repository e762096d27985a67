"""The translator plugin interface and its registry.

A translator parses one source format (a stack of detector images, a SPEC file, an ESRF LIMA
file …) and writes the one USID layout of :mod:`pyscatter.io.raw`. The built-in translators are
declared once, in :data:`BUILTIN_TRANSLATORS` (so they are there whatever the installed package
metadata says); a third-party package adds a format through the ``pyscatter.translators``
entry-point group (:mod:`pyscatter.registry`), in its own ``setup.cfg``::

    [options.entry_points]
    pyscatter.translators =
        myformat = mypackage.translator:MyTranslator

A plugin that fails to import is skipped with a logged warning naming it; it never hides the
others.

Examples
--------
>>> from pyscatter.translators import available_translators, get_translator
>>> "images" in available_translators()
True
>>> get_translator("images").name
'images'
"""

from __future__ import annotations

import glob
import inspect
import logging
import os
import re
from abc import ABC, abstractmethod
from collections.abc import Iterable
from pathlib import Path
from typing import Any, ClassVar

from pyscatter import registry
from pyscatter.errors import ExistingResultsError, FileFormatError, InputError

__all__ = [
    "BUILTIN_TRANSLATORS",
    "ENTRY_POINT_GROUP",
    "Translator",
    "available_translators",
    "expand_sources",
    "get_translator",
    "guess_translator",
    "natural_key",
    "translate",
    "translator_entries",
]

logger = logging.getLogger(__name__)

#: The entry-point group translators register under.
ENTRY_POINT_GROUP = "pyscatter.translators"

#: Built-in translators, ``format -> "module:Class"``: their only declaration (not the package
#: metadata), so they are registered whatever the installed metadata says.
BUILTIN_TRANSLATORS: dict[str, str] = {
    "id02": "pyscatter.translators.id02:ID02Translator",
    "images": "pyscatter.translators.images:ImageStackTranslator",
    "nexus": "pyscatter.translators.nexus:NexusTranslator",
    "saxslab": "pyscatter.translators.saxslab:SaxslabTranslator",
    "spec": "pyscatter.translators.spec:SpecTranslator",
}

#: How many files of a folder or pattern :func:`guess_translator` probes before giving up.
_MAX_PROBES = 20

SourcesLike = str | os.PathLike | Iterable[str | os.PathLike]


class Translator(ABC):
    """One source format, translated into a pyscatter USID file.

    Subclasses set the class attributes and implement :meth:`translate`; they write through
    :func:`pyscatter.io.raw.write_measurement` so that every file has the same layout.

    Attributes
    ----------
    name : str
        The format name users pick (``--format NAME``); the entry-point name.
    extensions : tuple of str
        Lower-case file name endings this translator reads (``".edf"``, …), for folders and for
        the list of formats shown in error messages.
    description : str
        One line shown in the list of formats.
    """

    name: ClassVar[str]
    extensions: ClassVar[tuple[str, ...]] = ()
    description: ClassVar[str] = ""
    #: when guessing a format, higher is asked first: content-specific formats above generic ones
    priority: ClassVar[int] = 0

    def can_read(self, path: str | os.PathLike) -> bool:
        """Whether ``path`` looks like this format: cheap (a few bytes at most), never raises.

        The default checks the file name ending against :attr:`extensions`.
        """
        try:
            return Path(path).is_file() and has_extension(path, self.extensions)
        except Exception:  # noqa: BLE001 - can_read must never raise
            return False

    @abstractmethod
    def translate(self, sources: Any, h5_path: str | os.PathLike, **options: Any) -> Path:
        """Translate ``sources`` into a new USID file ``h5_path``; returns its path."""

    def provenance(self) -> dict[str, str]:
        """The ``translator`` and ``tool`` attributes every translation records."""
        return {"translator": self.name, "tool": f"pyscatter.translators.{self.name}"}

    @classmethod
    def summary(cls) -> str:
        """``name (ext, ext): description``, one line for lists of formats."""
        ext = f" ({', '.join(cls.extensions)})" if cls.extensions else ""
        desc = f": {cls.description}" if cls.description else ""
        return f"{cls.name}{ext}{desc}"

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}>"


# --------------------------------------------------------------------------- sources


def natural_key(text: str | os.PathLike) -> tuple:
    """Sort key putting ``x_2`` before ``x_10``: digit runs compare as numbers.

    >>> sorted(["x_10", "x_2", "x_1"], key=natural_key)
    ['x_1', 'x_2', 'x_10']
    """
    parts = re.split(r"(\d+)", os.fspath(text))
    # parts alternate text, digits, text, … so tuples compare element by element with like types
    return tuple(int(p) if i % 2 else p for i, p in enumerate(parts))


def has_extension(path: str | os.PathLike, extensions: Iterable[str]) -> bool:
    """Whether the name of ``path`` ends with one of ``extensions`` (case-insensitive)."""
    name = Path(path).name.lower()
    return any(name.endswith(ext.lower()) for ext in extensions)


def expand_sources(sources: SourcesLike, *, extensions: Iterable[str] | None = None) -> list[Path]:
    """The files named by ``sources``, in natural order of their paths.

    Parameters
    ----------
    sources : str, path or list of them
        File paths, glob patterns (``"scan/*.tif"``) and folders, alone or in a list. A folder
        stands for the files directly in it whose names end with one of ``extensions`` (every
        file not starting with ``.`` when ``extensions`` is None).
    extensions : iterable of str, optional
        File name endings kept from folders.

    Returns
    -------
    list of Path
        Without duplicates, sorted in natural order of the full path (``x_2`` before ``x_10``)
        whatever order they came in, so a shell glob (``x_10`` before ``x_2``) gives scan order.

    Raises
    ------
    InputError
        No sources, a pattern matching nothing or a folder without matching files.
    FileFormatError
        A named file does not exist.
    """
    if sources is None:
        raise InputError("no sources given; expected file paths, a glob pattern or a folder")
    items = [sources] if isinstance(sources, (str, os.PathLike)) else list(sources)
    if not items:
        raise InputError("no sources given; expected file paths, a glob pattern or a folder")
    exts = tuple(extensions) if extensions is not None else None
    found: dict[str, Path] = {}
    for item in items:
        if not isinstance(item, (str, os.PathLike)):
            raise InputError(f"sources: expected paths or glob patterns, got {item!r}")
        for path in _expand_one(item, exts):
            found.setdefault(os.path.realpath(path), path)
    return sorted(found.values(), key=natural_key)


def _expand_one(item: str | os.PathLike, exts: tuple[str, ...] | None) -> list[Path]:
    text = os.fspath(item)
    path = Path(text).expanduser()
    if path.is_dir():
        files = [
            p
            for p in path.iterdir()
            if p.is_file()
            and not p.name.startswith(".")
            and (exts is None or has_extension(p, exts))
        ]
        if not files:
            allowed = f" ending in {', '.join(exts)}" if exts else ""
            raise InputError(f"folder {path} holds no files{allowed}")
        return files
    if glob.has_magic(text):
        files = [Path(p) for p in glob.glob(os.path.expanduser(text)) if Path(p).is_file()]
        if not files:
            raise InputError(f"no file matches the pattern {text!r}")
        return files
    if not path.is_file():
        raise FileFormatError(f"{path}: no such file")
    return [path]


def check_output(h5_path: str | os.PathLike, overwrite: bool) -> Path:
    """Refuse an existing output unless ``overwrite`` (before any slow work is done)."""
    path = Path(h5_path)
    if path.exists() and not overwrite:
        raise ExistingResultsError(
            f"{path} exists; pass overwrite=True (--overwrite) to replace it"
        )
    if path.is_dir():
        raise InputError(f"output {path} is a folder; expected an HDF5 file name")
    return path


# --------------------------------------------------------------------------- registry


def single_source(sources: SourcesLike, translator: str, what: str) -> Path:
    """The one file a translator reads (``what``, e.g. "an HDF5 file"), alone or in a list."""
    if isinstance(sources, (list, tuple)):
        if len(sources) != 1:
            raise InputError(
                f"the {translator} translator reads one {what.split(' ', 1)[1]}; got {len(sources)}"
            )
        sources = sources[0]
    if not isinstance(sources, (str, os.PathLike)):
        raise InputError(f"sources: expected the path of {what}, got {sources!r}")
    return Path(sources)


def _load(target: str) -> type[Translator]:
    cls = registry.load(target)
    if not (isinstance(cls, type) and issubclass(cls, Translator)):
        raise TypeError(f"{target} is not a pyscatter Translator subclass")
    return cls


def translator_entries() -> dict[str, registry.Entry]:
    """Every translator name with where it lives and who declared it; nothing is imported.

    The built-ins of :data:`BUILTIN_TRANSLATORS`, then the ``pyscatter.translators`` entry
    points by name (one reusing a built-in name is ignored with a warning).
    """
    return registry.entries(ENTRY_POINT_GROUP, BUILTIN_TRANSLATORS, "translator")


def available_translators() -> dict[str, type[Translator]]:
    """Every installed translator class by format name, sorted by name.

    Built-ins are always present; third-party translators come from the ``pyscatter.translators``
    entry-point group. A plugin that fails to load, or is not a :class:`Translator`, is skipped
    with a logged warning naming it; one that reuses a built-in name is ignored with a warning.
    """
    found: dict[str, type[Translator]] = {}
    for name, entry in translator_entries().items():
        if entry.origin == registry.BUILT_IN:
            found[name] = _load(entry.target)
            continue
        try:
            found[name] = _load(entry.target)
        except Exception as err:  # noqa: BLE001 - a broken plugin must not hide the others
            logger.warning(
                "translator plugin %r (%s) skipped: %s: %s",
                name,
                entry.target,
                type(err).__name__,
                err,
            )
    return dict(sorted(found.items()))


def _formats_text(translators: dict[str, type[Translator]]) -> str:
    return "; ".join(cls.summary() for cls in translators.values())


def get_translator(name: str) -> Translator:
    """A new instance of the translator of format ``name``.

    Raises
    ------
    InputError
        No translator of that name is installed (the message lists the installed ones).
    """
    if name in BUILTIN_TRANSLATORS:  # a plugin cannot take its name: no entry-point scan
        return _load(BUILTIN_TRANSLATORS[name])()
    entries = translator_entries()
    if name not in entries:
        raise registry.unknown_name("format", name, entries, expected="installed formats:")
    try:
        cls = _load(entries[name].target)
    except Exception as err:  # noqa: BLE001 - a broken plugin: say which and why
        raise InputError(
            f"format {name!r} ({entries[name].target}) is not available here: "
            f"{type(err).__name__}: {err}"
        ) from err
    return cls()


def guess_translator(sources: SourcesLike) -> Translator:
    """The most specific translator whose :meth:`~Translator.can_read` accepts the sources.

    Translators are asked in decreasing ``priority`` (a format recognised by its content, such as
    a SAXSLAB header inside a TIFF, before the generic image stack), then by name.

    Folders and patterns are probed file by file (the first few files, in natural order).

    Raises
    ------
    InputError
        Nothing reads the sources: the message lists the installed formats and how to pick one.
    """
    ranked = sorted(
        available_translators().items(),
        key=lambda item: (-getattr(item[1], "priority", 0), item[0]),
    )
    translators = {name: cls() for name, cls in ranked}
    if isinstance(sources, (str, os.PathLike)) and Path(sources).is_dir():
        # a translator may read a folder as a whole (e.g. a detector's file series)
        for translator in translators.values():
            if translator.can_read(sources):
                return translator
    files = expand_sources(sources)
    for path in files[:_MAX_PROBES]:
        for translator in translators.values():
            if translator.can_read(path):
                return translator
    shown = files[0] if len(files) == 1 else f"{files[0]} (and {len(files) - 1} more)"
    raise InputError(
        f"no installed translator reads {shown}. Installed formats: "
        f"{_formats_text({n: type(t) for n, t in translators.items()})}. "
        "Pick one with format=NAME (command line: --format NAME)."
    )


def translate(
    sources: Any, h5_path: str | os.PathLike, *, format: str = "auto", **options: Any
) -> Path:
    """Translate ``sources`` into a new USID file with the translator of ``format``.

    Parameters
    ----------
    sources : str, path, list of them, or None
        What the translator reads (see its ``translate``); None with ``frames=`` an in-memory
        array (the ``images`` translator).
    h5_path : str or path
        The HDF5 file to write.
    format : str
        A format name (:func:`available_translators`), or ``"auto"`` to pick it from the content
        of the sources (:func:`guess_translator`).
    **options
        Passed to the translator's ``translate``.

    Returns
    -------
    Path
        The file written.

    Raises
    ------
    InputError
        Unknown format, nothing reads the sources, or an option the translator does not take.
    """
    if format == "auto":
        if sources is None and options.get("frames") is not None:
            translator: Translator = get_translator("images")
        else:
            translator = guess_translator(sources)
    else:
        translator = get_translator(format)
    _check_options(translator, options)
    logger.info("translating with the %r translator into %s", translator.name, h5_path)
    return translator.translate(sources, h5_path, **options)


def _check_options(translator: Translator, options: dict[str, Any]) -> None:
    params = inspect.signature(translator.translate).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return
    allowed = [
        n
        for n, p in params.items()
        if p.kind is inspect.Parameter.KEYWORD_ONLY
        or (p.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD and n not in ("sources", "h5_path"))
    ]
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise InputError(
            f"format {translator.name!r} takes no option {', '.join(map(repr, unknown))}; "
            f"its options are: {', '.join(allowed)}"
        )
