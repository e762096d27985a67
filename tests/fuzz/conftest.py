"""Fuzz suite: hostile inputs at every boundary, each either refused cleanly or read correctly.

Every case is drawn from a fixed seed (deterministic); a case ends in one of:

- ``refused``: InputError / FileFormatError whose one-line message names the file or parameter;
- ``accepted``: a result checked against an independent reference (pyFAI, the generator);
- ``none``: input that legitimately holds nothing (e.g. a header without geometry keys).

Any other exception, a message that names neither, or a wrong result fails the test. The counts
per target are printed at the end of the run (``fuzz cases``) and listed in
docs/user_guide/validation.md.
"""

from __future__ import annotations

from collections import Counter, defaultdict

import pytest

COUNTS: dict[str, Counter] = defaultdict(Counter)


def record(target: str, outcome: str) -> None:
    """Count one case of ``target`` ending in ``outcome``."""
    COUNTS[target][outcome] += 1


@pytest.fixture(autouse=True)
def no_pyfai_garbage_collection(monkeypatch):
    """pyFAI runs ``gc.collect()`` whenever a geometry changes (0.25 s in a test process holding
    many objects); it frees memory and changes no result, so the fuzz cases skip it."""
    import types

    import pyFAI.geometry.core as core

    monkeypatch.setattr(core, "gc", types.SimpleNamespace(collect=lambda *a: 0))


def pytest_terminal_summary(terminalreporter):
    if not COUNTS:
        return
    terminalreporter.section("fuzz cases")
    for target in sorted(COUNTS):
        counts = COUNTS[target]
        detail = ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
        terminalreporter.write_line(f"{target}: {sum(counts.values())} cases ({detail})")
    total = sum(sum(c.values()) for c in COUNTS.values())
    terminalreporter.write_line(f"total: {total} cases, every one refused cleanly or correct")
