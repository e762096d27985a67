"""Fixtures shared by the tests of processes on known-phase maps.

A module defines its own ``phases`` fixture (a :class:`pyscatter.datasets_phases.PhaseMap`);
``phase_file`` writes it once per module and ``path`` gives each test its own copy.
"""

from __future__ import annotations

import shutil

import pytest


@pytest.fixture(scope="module")
def phase_file(tmp_path_factory, phases):
    return phases.write(tmp_path_factory.mktemp("phases") / "phases.h5")


@pytest.fixture()
def path(tmp_path, phase_file):
    return shutil.copy(phase_file, tmp_path / "map.h5")
