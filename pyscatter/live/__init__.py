"""Live processing during acquisition: follow a scan as it is written (``pyscatter watch``).

:func:`watch` (with :class:`WatchOptions`, returning a :class:`WatchReport`) is the loop of
:mod:`pyscatter.live.runner`; its pieces are the sources it follows
(:mod:`pyscatter.live.sources`: a folder, a growing HDF5 file, a SPEC file), the live file
(:mod:`pyscatter.live.livefile`, laid out by :mod:`pyscatter.live.layout` as the offline
translator lays out the same frames), the steps' live sessions
(:mod:`pyscatter.processes.live_session`), per-frame side files
(:mod:`pyscatter.live.side_outputs`) and simulated detectors for tests and benchmarks
(:mod:`pyscatter.live.simulate`). Importing this package imports none of them.
"""

from __future__ import annotations

from typing import Any

__all__ = ["WatchOptions", "WatchReport", "watch"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from pyscatter.live import runner

        return getattr(runner, name)
    raise AttributeError(f"module 'pyscatter.live' has no attribute {name!r}")
