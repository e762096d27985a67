"""The detector options of :class:`~pyscatter.processes.grazing.GrazingIncidence` (light: the
command line builds its flags from them without importing pyFAI or scipy)."""

from __future__ import annotations

from pyscatter.processes.options import DETECTOR_OPTIONS

__all__ = ["GI_OPTIONS"]

GI_OPTIONS = tuple(o for o in DETECTOR_OPTIONS if o.name not in ("method", "allow_fallback"))
""":data:`~pyscatter.processes.options.DETECTOR_OPTIONS` without ``method`` and
``allow_fallback``: grazing incidence always runs pyFAI's ``no,csr,cython`` (no pixel
splitting, as pyFAI asks)."""
