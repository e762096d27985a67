"""Tally of the injected write faults, printed at the end of the test run."""

from __future__ import annotations

import pytest

TALLY = {"injected": 0, "clean": 0, "identical": 0}


@pytest.fixture()
def tally():
    return TALLY


def pytest_terminal_summary(terminalreporter):
    if TALLY["injected"]:
        terminalreporter.write_line(
            f"write faults: {TALLY['injected']} injected, {TALLY['clean']} clean one-line errors "
            f"(documented exit code, no traceback, no crash), {TALLY['identical']} reruns "
            "resumed to bits identical to an uninterrupted run"
        )
