"""Results written by the release before the detector set-up are still reused and resumed.

``tests/data/legacy_detector.h5`` was written by the code of commit
``make_legacy.LEGACY_COMMIT`` (see ``tests/data/make_legacy.py``): complete integrate,
profiles and sectors results, and an integration interrupted after a few blocks.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import h5py
import pytest

from pyscatter.processes.base import run_on_file

DATA = Path(__file__).resolve().parents[1] / "data"
sys.path.insert(0, str(DATA))
import make_legacy  # noqa: E402

COMPLETE = ("integrate_full", "integrate_default", "profiles", "sectors")


@pytest.fixture()
def legacy(tmp_path):
    return shutil.copy(DATA / "legacy_detector.h5", tmp_path / "legacy.h5")


def _run(path, name, **changes):
    process, kwargs = make_legacy.runs()[name]
    return run_on_file(path, make_legacy.process_class(process), **{**kwargs, **changes})


def _outputs(path, group):
    with h5py.File(path, "r") as h5:
        g = h5[group]
        names = json.loads(g.attrs["output_order"])
        return {n: g[n][()] for n in names}, dict(g.attrs)


@pytest.mark.parametrize("name", COMPLETE)
def test_complete_results_of_the_release_before_are_reused(legacy, name):
    summary = _run(legacy, name)
    assert summary.reused and summary.computed_positions == 0
    _, attrs = _outputs(legacy, summary.group)
    assert "detector_schema" not in attrs  # written by the release before, untouched


@pytest.mark.parametrize("name", COMPLETE)
def test_recomputing_gives_the_bits_of_the_release_before(legacy, name):
    old = _run(legacy, name).group
    new = _run(legacy, name, override=True)
    assert new.group != old and new.computed_positions == 6
    old_out, old_attrs = _outputs(legacy, old)
    new_out, new_attrs = _outputs(legacy, new.group)
    assert new_attrs["parameters"] == old_attrs["parameters"]
    assert new_attrs["detector_schema"] == 1
    for key, values in old_out.items():
        assert new_out[key].tobytes() == values.tobytes(), key


def test_the_interrupted_run_resumes_to_the_bits_of_an_uninterrupted_one(legacy):
    summary = _run(legacy, "integrate_partial")
    n_positions = 6
    assert summary.resumed
    assert summary.computed_positions == n_positions - make_legacy.PARTIAL_BLOCKS
    fresh = _run(legacy, "integrate_partial", override=True)
    assert fresh.computed_positions == n_positions
    resumed, _ = _outputs(legacy, summary.group)
    uninterrupted, _ = _outputs(legacy, fresh.group)
    for key, values in uninterrupted.items():
        assert resumed[key].tobytes() == values.tobytes(), key


@pytest.mark.parametrize(
    ("name", "suffix"),
    [("integrate_full", "_003"), ("profiles", "_001"), ("sectors", "_001")],
)
def test_changed_parameters_write_a_new_group(legacy, name, suffix):
    summary = _run(legacy, name, polarization_factor=0.95)
    assert not summary.reused and not summary.resumed
    assert summary.group.endswith(suffix)


def test_profiles_old_keyword_width_is_the_same_parameter_as_half_width(legacy):
    process, kwargs = make_legacy.runs()["profiles"]
    kwargs = dict(kwargs)
    kwargs["half_width"] = kwargs.pop("width")
    summary = run_on_file(legacy, make_legacy.process_class(process), **kwargs)
    assert summary.reused
