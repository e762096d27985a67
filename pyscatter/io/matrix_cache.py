"""A cache of pyFAI's sparse matrices on disk, keyed by everything that determines them.

pyFAI builds the CSR matrix of a geometry (pixels → bins) in about 0.5–1 s for an Eiger 1M,
and more for the stacked matrices of ring profiles and sectors. It is deterministic: the same
geometry, frame shape, mask, bins, unit, ranges, pixel splitting and pyFAI version give the
same arrays. Every process that integrates frames builds it in the parent (for the result
axes and serial runs) and again in every worker of a parallel run; with this cache the first
builder writes it and the others (the workers, a resumed run, the next command with the same
geometry) load it.

Where. ``$PYSCATTER_CACHE/matrices`` when ``PYSCATTER_CACHE`` is set, else
``$XDG_CACHE_HOME/pyscatter/matrices``, else ``~/.cache/pyscatter/matrices``.
``PYSCATTER_CACHE=off`` (or ``0``, ``none``, ``false``, empty) disables it: every matrix is
built by pyFAI. ``PYSCATTER_CACHE_MAX_MB`` (default 2048) bounds its size; the least recently
used entries are removed when a new one goes over it. Never inside the user's data file.

What. One ``.npz`` per key, plain arrays only (``np.load(allow_pickle=False)``): the key and
the format version inside, the CSR arrays and whatever else the caller needs. Written to a
temporary file in the same directory, flushed, fsynced and renamed over the final name, so a
reader sees a whole file or none; two processes writing the same key both write whole files
and the last rename wins (they hold the same arrays). A file that cannot be read, holds
another key or another format, or whose arrays fail the caller's check is ignored (and
removed): the matrix is built again. The cache never makes a run fail: a directory that
cannot be written only means no entry is stored.

Keys. :func:`key` hashes (sha256) the canonical JSON of the parts the caller names, with
arrays (the mask) replaced by their dtype, shape and sha256, together with
:data:`FORMAT_VERSION`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
import time
import zipfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
"""Version of the entries' layout; part of every key (a new layout never reads an old one)."""
DEFAULT_MAX_MB = 2048.0
"""Default size limit of the cache directory, MiB (``PYSCATTER_CACHE_MAX_MB``)."""
_OFF = ("", "0", "off", "none", "false", "no")
_STALE_TMP_SECONDS = 3600.0

#: What this process did, for tests and benchmarks: "hits", "misses", "stores", "rejected".
STATS: dict[str, int] = {"hits": 0, "misses": 0, "stores": 0, "rejected": 0}


def directory() -> Path | None:
    """The cache directory, or None when the cache is disabled (``PYSCATTER_CACHE=off``)."""
    value = os.environ.get("PYSCATTER_CACHE")
    if value is not None:
        if value.strip().lower() in _OFF:
            return None
        return Path(value).expanduser() / "matrices"
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "pyscatter" / "matrices"


def max_bytes() -> int:
    """The size limit of the cache directory in bytes (``PYSCATTER_CACHE_MAX_MB``)."""
    value = os.environ.get("PYSCATTER_CACHE_MAX_MB")
    try:
        mb = DEFAULT_MAX_MB if value is None else float(value)
    except ValueError:
        log.warning("PYSCATTER_CACHE_MAX_MB=%r is not a number; using %g", value, DEFAULT_MAX_MB)
        mb = DEFAULT_MAX_MB
    return int(max(mb, 0.0) * 2**20)


def _canonical(value: Any) -> Any:
    """``value`` as JSON-able data; arrays become their dtype, shape and sha256."""
    if isinstance(value, np.ndarray):
        data = np.ascontiguousarray(value)
        return {
            "dtype": data.dtype.str,
            "shape": list(data.shape),
            "sha256": hashlib.sha256(data.tobytes()).hexdigest(),
        }
    if isinstance(value, Mapping):
        return {str(k): _canonical(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_canonical(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def key(kind: str, **parts: Any) -> str:
    """sha256 (hex) of the canonical JSON of ``kind``, ``parts`` and :data:`FORMAT_VERSION`.

    Examples
    --------
    >>> key("demo", npt=10) == key("demo", npt=10) != key("demo", npt=11)
    True
    """
    text = json.dumps(
        {"format": FORMAT_VERSION, "kind": kind, "parts": _canonical(parts)},
        sort_keys=True,
        separators=(",", ":"),
        allow_nan=True,
    )
    return hashlib.sha256(text.encode()).hexdigest()


def _path(folder: Path, entry_key: str) -> Path:
    return folder / f"{entry_key}.npz"


def load(
    entry_key: str, check: Callable[[dict[str, np.ndarray]], bool] | None = None
) -> dict[str, np.ndarray] | None:
    """The arrays stored under ``entry_key``, or None (disabled, absent or rejected).

    A file that cannot be read, holds another key or format, or fails ``check`` is removed.
    """
    folder = directory()
    if folder is None:
        return None
    path = _path(folder, entry_key)
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {name: npz[name] for name in npz.files}  # reads (and crc-checks) all
    except FileNotFoundError:
        STATS["misses"] += 1
        return None
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile) as err:
        _reject(path, f"unreadable ({err})")
        return None
    if (
        str(arrays.pop("__key__", "")) != entry_key
        or int(arrays.pop("__format__", -1)) != FORMAT_VERSION
    ):
        _reject(path, "another key or format")
        return None
    try:
        good = True if check is None else bool(check(arrays))
    except (KeyError, ValueError, TypeError, IndexError):
        good = False
    if not good:
        _reject(path, "arrays fail their check")
        return None
    try:
        os.utime(path)  # least recently used: loading counts as a use
    except OSError:
        pass
    STATS["hits"] += 1
    return arrays


def _reject(path: Path, why: str) -> None:
    log.warning("matrix cache: ignoring %s: %s; building the matrix again", path, why)
    STATS["rejected"] += 1
    STATS["misses"] += 1
    _unlink(path)


def store(entry_key: str, arrays: Mapping[str, np.ndarray]) -> Path | None:
    """Write ``arrays`` under ``entry_key`` atomically; returns the path, or None if not stored.

    Temporary file in the cache directory, fsync, rename, fsync of the directory; then the
    least recently used entries are removed while the directory is above :func:`max_bytes`.
    """
    folder = directory()
    if folder is None:
        return None
    path = _path(folder, entry_key)
    tmp = None
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{entry_key[:16]}-", suffix=".tmp", dir=folder)
        with os.fdopen(fd, "wb") as fh:
            payload = {name: np.asarray(value) for name, value in arrays.items()}
            payload["__key__"] = np.array(entry_key)
            payload["__format__"] = np.array(FORMAT_VERSION)
            np.savez(fh, allow_pickle=False, **payload)  # type: ignore[arg-type]
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
        tmp = None
        _fsync_directory(folder)
    except OSError as err:
        log.warning("matrix cache: cannot store %s (%s); continuing without it", path, err)
        return None
    finally:
        if tmp is not None:
            try:
                os.unlink(tmp)
            except OSError:
                pass
    STATS["stores"] += 1
    prune(folder, keep=path)
    return path


def _fsync_directory(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def prune(folder: Path | None = None, keep: Path | None = None) -> int:
    """Remove the least recently used entries while the cache is above :func:`max_bytes`, and
    temporary files older than an hour (a writer that was killed); returns the files removed."""
    folder = directory() if folder is None else folder
    if folder is None or not folder.is_dir():
        return 0
    now, removed, entries = time.time(), 0, []
    for item in folder.iterdir():
        try:
            stat = item.stat()
        except OSError:
            continue
        if item.suffix == ".tmp":
            if now - stat.st_mtime > _STALE_TMP_SECONDS:
                removed += _unlink(item)
        elif item.suffix == ".npz":
            entries.append((stat.st_mtime, stat.st_size, item))
    total, limit = sum(size for _, size, _ in entries), max_bytes()
    for _, size, item in sorted(entries, key=lambda e: e[0]):
        if total <= limit:
            break
        if item != keep and _unlink(item):
            removed += 1
            total -= size
    return removed


def _unlink(path: Path) -> int:
    try:
        path.unlink()
        return 1
    except OSError:
        return 0


def cached(
    entry_key: str,
    build: Callable[[], dict[str, np.ndarray]],
    check: Callable[[dict[str, np.ndarray]], bool] | None = None,
) -> dict[str, np.ndarray]:
    """The arrays of ``entry_key`` loaded from the cache, else ``build()`` and stored."""
    arrays = load(entry_key, check)
    if arrays is None:
        arrays = build()
        store(entry_key, arrays)
    return arrays


def csr_check(n_pix: int) -> Callable[[dict[str, np.ndarray]], bool]:
    """A check of a stored CSR matrix (``data``, ``indices``, ``indptr``) over ``n_pix`` columns:
    consistent sizes, increasing row pointers and column indices within the frame."""

    def check(arrays: dict[str, np.ndarray]) -> bool:
        data, indices, indptr = arrays["data"], arrays["indices"], arrays["indptr"]
        if data.ndim != 1 or indices.shape != data.shape or indptr.ndim != 1 or indptr.size < 1:
            return False
        if int(indptr[0]) != 0 or int(indptr[-1]) != data.size:
            return False
        if indptr.size > 1 and bool(np.any(np.diff(indptr) < 0)):
            return False
        return indices.size == 0 or (int(indices.min()) >= 0 and int(indices.max()) < n_pix)

    return check


def clear() -> int:
    """Remove every entry of the cache directory; returns the number of files removed."""
    folder = directory()
    if folder is None or not folder.is_dir():
        return 0
    return sum(_unlink(p) for p in folder.iterdir() if p.suffix in (".npz", ".tmp"))
