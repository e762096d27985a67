"""pyFAI's answers that a detector set-up needs, remembered in the matrix cache.

A command that integrates frames asks pyFAI two things before it computes anything: which
method runs (``split,algorithm,implementation``, resolved by pyFAI's registry) and the checked
config of the geometry (a PONI file, a config dict or the geometry recorded in the file, read
by pyFAI). Both answers are deterministic functions of their inputs and of pyFAI's version,
and asking costs the import of pyFAI's integrators (about 1.4 s, most of a command's start-up
when the matrix itself comes from :mod:`pyscatter.io.matrix_cache`). With these entries a
command whose geometry, method and matrix were seen before starts without importing pyFAI;
the integrator is built only if something needs it (a matrix not cached, a range check).

What is remembered, and when:

* :func:`method`: the resolved method, only when it is the one asked for and its
  implementation is Cython (present in every pyFAI build). A fallback (logged as a warning),
  an OpenCL method (available on some machines only, and the cache may be shared by several)
  and a refusal are asked of pyFAI every time, so what is logged or raised does not change.
* :func:`geometry`: pyFAI's config of the geometry and the detector's own mask, keyed by the
  PONI file's bytes, the config's JSON or the recorded JSON text. Stored only when the
  config's JSON round trip records the same text (the record is ``json.dumps`` of it). A
  geometry pyFAI refuses is never stored.

* :func:`image_file`: an image file's pixels as fabio reads them (the mask, flat or dark of a
  command line), keyed by the file's bytes and name and fabio's version: a warm command reads
  its mask without importing fabio (about 80 ms). Files over :data:`IMAGE_BYTES` are read
  every time (hashing them would cost more than reading).
* :func:`remembered`: any other deterministic answer of pyFAI's (the stacked matrices and
  per-pixel inputs of ring profiles and sectors, the q range of a detector's pixels), keyed
  by the caller's parts and pyFAI's version. What fails is never stored.

``PYSCATTER_CACHE=off`` turns them off, as it does the matrices.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from pyscatter.io import matrix_cache

__all__ = ["IMAGE_BYTES", "geometry", "image_file", "method", "remembered"]

_ENTRY_VERSION = 1
"""Version of these entries' layout (part of their keys)."""


def _pyfai_version() -> str | None:
    from pyscatter._metadata import installed_version

    return installed_version("pyFAI")


def method(
    parts: list[str],
    *,
    dim: int,
    engine: str,
    allow_fallback: bool,
    resolve: Callable[[], list[str]],
) -> list[str]:
    """The method that runs for ``parts`` (lower-case ``[split, algorithm, implementation]``):
    remembered, or ``resolve()`` (pyFAI's registry), remembered when it is ``parts`` itself
    with the Cython implementation."""
    version = _pyfai_version()
    if matrix_cache.directory() is None or version is None or len(parts) != 3:
        return resolve()
    entry = matrix_cache.key(
        "pyfai-method",
        pyFAI=version,
        parts=list(parts),
        dim=int(dim),
        engine=engine,
        allow_fallback=bool(allow_fallback),
        entry=_ENTRY_VERSION,
    )
    hit = matrix_cache.load(entry, lambda a: a["method"].shape == (3,))
    if hit is not None:
        return [str(p) for p in hit["method"]]
    resolved = resolve()
    if resolved == list(parts) and resolved[2] == "cython":
        matrix_cache.store(entry, {"method": np.array(resolved)})
    return resolved


def _source_digest(poni: Any, recorded: str | None) -> str | None:
    """sha256 of what the geometry is read from, or None when it cannot be keyed."""
    if poni is None:
        return None if recorded is None else hashlib.sha256(recorded.encode()).hexdigest()
    if isinstance(poni, Mapping):
        try:
            text = json.dumps(dict(poni), sort_keys=True, allow_nan=True)
        except (TypeError, ValueError):  # objects in the dict: ask pyFAI
            return None
        return hashlib.sha256(text.encode()).hexdigest()
    try:
        return hashlib.sha256(Path(poni).read_bytes()).hexdigest()
    except (OSError, TypeError):  # pyFAI reports a missing or odd file as before
        return None


def geometry(
    poni: Any,
    recorded: str | None,
    build: Callable[[], tuple[Any, dict[str, Any]]],
) -> tuple[Any, dict[str, Any], np.ndarray | None]:
    """``(integrator or None, config, detector mask or None)`` of a geometry.

    ``poni`` is the PONI file, config dict or None (then ``recorded``, the geometry JSON
    recorded in the file, is read); ``build()`` asks pyFAI: ``(integrator, checked config)``.
    On a hit the integrator is None: the caller builds it with ``build`` if it needs it.
    """
    version = _pyfai_version()
    digest = _source_digest(poni, recorded)
    if matrix_cache.directory() is None or version is None or digest is None:
        ai, config = build()
        return ai, config, _detector_mask(ai)
    entry = matrix_cache.key(
        "pyfai-geometry",
        pyFAI=version,
        source="recorded" if poni is None else ("dict" if isinstance(poni, Mapping) else "file"),
        sha256=digest,
        entry=_ENTRY_VERSION,
    )
    hit = matrix_cache.load(entry, lambda a: {"config", "detector_mask", "has_mask"} <= set(a))
    if hit is not None:
        mask = hit["detector_mask"] if bool(hit["has_mask"]) else None
        return None, json.loads(str(hit["config"])), mask
    ai, config = build()
    mask = _detector_mask(ai)
    try:
        text = json.dumps(config, sort_keys=True)
        same = json.dumps(json.loads(text), sort_keys=True) == text
    except (TypeError, ValueError):
        same = False
    if same:
        matrix_cache.store(
            entry,
            {
                "config": np.array(text),
                "detector_mask": np.zeros(0, np.uint8) if mask is None else mask,
                "has_mask": np.array(mask is not None),
            },
        )
    return ai, config, mask


def _detector_mask(ai: Any) -> np.ndarray | None:
    """The detector's own mask (pyFAI's ``detector.mask``: module gaps), or None."""
    mask = getattr(getattr(ai, "detector", None), "mask", None)
    return None if mask is None else np.asarray(mask)


#: Largest image file whose pixels :func:`image_file` remembers, bytes.
IMAGE_BYTES = 64 * 2**20


def image_file(path: str | Path, read: Callable[[], np.ndarray]) -> np.ndarray:
    """The pixels of the image file ``path``: remembered, or ``read()`` (fabio), remembered.

    Keyed by the file's name (fabio picks the format by it), its bytes' sha256 and fabio's
    version; a file that ``read()`` refuses is never stored. With the cache off, over
    :data:`IMAGE_BYTES`, or a path that is not a file (fabio's ``file.h5::/path``), ``read()``.
    """
    from pyscatter._metadata import installed_version

    version = installed_version("fabio")
    if matrix_cache.directory() is None or version is None:
        return read()
    try:
        file = Path(path)
        if file.stat().st_size > IMAGE_BYTES:
            return read()
        digest = hashlib.sha256(file.read_bytes()).hexdigest()
    except (OSError, TypeError, ValueError):  # fabio reports a missing or odd path as before
        return read()
    entry = matrix_cache.key(
        "image-file", fabio=version, name=file.name, sha256=digest, entry=_ENTRY_VERSION
    )
    arrays = matrix_cache.cached(entry, lambda: {"data": np.asarray(read())}, lambda a: "data" in a)
    return arrays["data"]


def remembered(
    kind: str,
    parts: Mapping[str, Any],
    build: Callable[[], dict[str, np.ndarray]],
    check: Callable[[dict[str, np.ndarray]], bool] | None = None,
) -> dict[str, np.ndarray]:
    """``build()`` (arrays from pyFAI), remembered under ``kind``, ``parts`` and pyFAI's version.

    ``parts`` must hold everything the arrays depend on besides pyFAI's version (arrays in it,
    such as a mask, are keyed by their digest). A stored entry that fails ``check`` is
    rejected and built again; a ``build()`` that raises stores nothing. With the cache off
    (``PYSCATTER_CACHE=off``), ``build()`` every time.
    """
    version = _pyfai_version()
    if matrix_cache.directory() is None or version is None:
        return build()
    entry = matrix_cache.key(kind, pyFAI=version, entry=_ENTRY_VERSION, **parts)
    return matrix_cache.cached(entry, build, check)
