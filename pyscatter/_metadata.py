"""Installed package versions, looked up once per process.

``importlib.metadata.version`` scans every installed distribution (about 2 ms a call); a command
asks for pyFAI's version several times (cache keys, request hashes, provenance records), and the
answer cannot change while the process runs.
"""

from __future__ import annotations

from functools import cache


@cache
def installed_version(name: str) -> str | None:
    """The installed version of distribution ``name``, or None when it is not installed.

    Examples
    --------
    >>> installed_version("numpy") is not None
    True
    >>> installed_version("no-such-distribution-xyz") is None
    True
    """
    from importlib import metadata

    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None
