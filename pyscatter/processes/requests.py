"""Quick reuse: recognise complete results from the request alone, before any set-up.

A process's parameters are what its set-up makes of the keyword arguments: a detector process
resolves its pyFAI method, checks its geometry and builds an integrator before it knows its
``parameters_hash``, and importing pyFAI alone costs more than a second. When the same command
runs again on results that are complete, all of that is wasted. So a results group made through
:func:`pyscatter.processes.base.run_on_file` also records ``request_hash``: a hash of the
keyword arguments as given (arrays and the files they name by content), of everything else in
the file the set-up reads (the process's :meth:`request_context`), of the versions that could
change what the set-up makes of them, and of the source's fingerprint. A later request with the
same hash reuses that group, once its completion flags verify against its data, without the
set-up. Any doubt takes the normal path: a process without a request context, a context that
cannot be read, a request naming something missing, a group without the attribute (written
before, or through the Python API), or a group not complete.

The attribute sits outside the recorded parameters, so ``parameters_hash`` and reuse through
the normal path are unchanged.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import h5py
import numpy as np

from pyscatter.processes.options import EXECUTION_OPTIONS

if TYPE_CHECKING:
    from pyscatter.processes.base import ScatterProcess

__all__ = ["REQUEST_ATTR", "find_request", "request_hash"]

#: The results-group attribute holding the request's hash.
REQUEST_ATTR = "request_hash"

#: Keyword arguments that decide how a process runs, not what it computes.
EXECUTION_KEYS = frozenset(o.name for o in EXECUTION_OPTIONS)


def _plain(value: Any) -> Any:
    """``value`` as JSON: arrays and files by content, paths as text, tuples as lists."""
    if isinstance(value, np.ndarray):
        data = np.ascontiguousarray(value)
        digest = hashlib.sha256(data.tobytes()).hexdigest()
        return {"array_sha256": digest, "shape": list(data.shape), "dtype": data.dtype.str}
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, (str, os.PathLike)):
        text = os.fspath(value)
        if isinstance(value, os.PathLike) or (len(text) < 4096 and os.path.isfile(text)):
            if not os.path.isfile(text):
                raise FileNotFoundError(text)
            return {"file": text, "sha256": hashlib.sha256(Path(text).read_bytes()).hexdigest()}
        return text
    return value


def request_hash(
    process: type[ScatterProcess], h5_main: h5py.Dataset, kwargs: Mapping[str, Any]
) -> str | None:
    """The hash of this request of ``process`` on ``h5_main``, or None (no quick reuse)."""
    from pyscatter import __version__
    from pyscatter._metadata import installed_version
    from pyscatter.processes.base import canonical_json, source_fingerprint

    try:
        context = process.request_context(h5_main, kwargs)
        if context is None:
            return None
        options = {k: _plain(v) for k, v in kwargs.items() if k not in EXECUTION_KEYS}
        record = {
            "process": process.process_name,
            "options": options,
            "context": _plain(context),
            "pyscatter": __version__,
            "pyFAI": installed_version("pyFAI"),
        }
        text = canonical_json(record) + "|" + source_fingerprint(h5_main)
    except Exception:  # noqa: BLE001 - anything odd: the normal path says what is wrong
        return None
    return hashlib.sha256(text.encode()).hexdigest()


def find_request(
    process: type[ScatterProcess], h5_main: h5py.Dataset, key: str
) -> h5py.Group | None:
    """The latest complete results group of ``process`` on ``h5_main`` made by request ``key``
    whose completion flags all verify against its data, or None."""
    from pyscatter.io.results import is_verified_complete, source_results

    for group in reversed(source_results(h5_main, process.process_name)):
        if group.attrs.get(REQUEST_ATTR) == key and is_verified_complete(group):
            return group
    return None
