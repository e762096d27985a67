"""Shared pools of hostile values and the one-line-message check."""

from __future__ import annotations

import numpy as np

#: Numbers that break naive code, as text.
NASTY_NUMBERS = [
    "nan",
    "NaN",
    "inf",
    "-inf",
    "0",
    "-0",
    "-1",
    "1e30",
    "-1e30",
    "1e-30",
    "1e308",
    "1e400",
    "-1e400",
    "5e-324",
    "2",
    "0.5",
    "-0.5",
    "1e-10",
]
#: Text that is not a number at all.
GARBAGE = ["abc", "", " ", "1.2.3", "--1", "0x10", "1,5", "None", "true", "[1]", "{}", "é", "\t"]


def rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)


def pick(generator: np.random.Generator, pool):
    return pool[int(generator.integers(len(pool)))]


def assert_clean(err: Exception, *names: str) -> None:
    """One line, naming at least one of ``names`` (a file, key or parameter)."""
    text = str(err)
    assert "\n" not in text.strip(), f"message on several lines: {text!r}"
    assert any(n in text for n in names), f"message names none of {names}: {text!r}"
