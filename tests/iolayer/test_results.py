"""Result-group queries (pyscatter.io.results): step and process names, latest, complete."""

from __future__ import annotations

import shutil

import h5py
import numpy as np
import pytest

import pyscatter
from pyscatter.errors import ExistingResultsError, InputError
from pyscatter.io import results
from pyscatter.io.record import FLAGS
from pyscatter.processes.registry import BUILTIN_PROCESSES


@pytest.fixture(scope="module")
def results_file(tmp_path_factory):
    """A (2, 3) scan with two integrations (the first in blocks of 2 positions) and sectors."""
    from conftest import write_scan

    from pyscatter import datasets
    from pyscatter.processes.base import run_on_file
    from pyscatter.processes.integration import AzimuthalIntegration
    from pyscatter.processes.sectors import SectorIntegration

    path = tmp_path_factory.mktemp("results") / "scan.h5"
    write_scan(path, datasets.oriented_map((2, 3), rng=5))
    run_on_file(path, AzimuthalIntegration, npt=40, max_mem_mb=1.0, progress=False)
    run_on_file(path, AzimuthalIntegration, npt=30, progress=False)
    run_on_file(path, SectorIntegration, n_sectors=4, npt=30, progress=False)
    return path


@pytest.fixture()
def copy(results_file, tmp_path):
    """A copy of the results file to modify."""
    return shutil.copy(results_file, tmp_path / "copy.h5")


def _names(groups):
    return [g.name for g in groups]


@pytest.mark.parametrize("entry", list(BUILTIN_PROCESSES.values()), ids=lambda e: e.step)
def test_step_names_are_the_recorded_process_names(entry):
    assert results.process_name(entry.step) == entry.process_name
    assert results.process_name(entry.process_name) == entry.process_name


def test_step_and_process_names_find_the_same_groups(results_file):
    with h5py.File(results_file, "r") as h5:
        every = results.all_results(h5)
        recorded = {str(g.attrs["process"]) for g in every}
        assert recorded == {"AzimuthalIntegration", "SectorIntegration"}
        for step in ("integrate", "sectors"):
            name = BUILTIN_PROCESSES[step].process_name
            by_step = _names(results.find_results(h5, step))
            assert by_step == _names(results.find_results(h5, name))
            assert by_step == [g.name for g in every if g.attrs["process"] == name]
        assert len(results.find_results(h5, "integrate")) == 2
        assert results.find_results(h5, "fit") == []
    with pyscatter.open(results_file) as f:
        assert _names(f.results("sectors")) == _names(f.results("SectorIntegration"))
        assert len(f.results()) == len(every)


def test_to_xarray_takes_a_step_name(results_file):
    by_step = pyscatter.to_xarray(results_file, "sectors")
    by_name = pyscatter.to_xarray(results_file, "SectorIntegration")
    assert by_step.attrs == by_name.attrs
    assert by_step.attrs["process"] == "SectorIntegration"
    np.testing.assert_array_equal(by_step["Intensity"].values, by_name["Intensity"].values)
    first = pyscatter.to_xarray(results_file, "integrate", index=0)
    assert first.sizes["q"] == 40  # the first of the two integrations, in file order


def test_export_names_outputs_by_the_recorded_process(results_file, tmp_path):
    from pyscatter.io.export import export

    work = shutil.copy(results_file, tmp_path / "scan.h5")
    (written,) = export(work, "netcdf", process="sectors")
    assert written.name == "scan_SectorIntegration.nc"
    with pytest.raises(ExistingResultsError, match="exists"):
        export(work, "netcdf", process="SectorIntegration")  # the same file: refused


def test_latest_is_the_latest_start_time(copy):
    with h5py.File(copy, "r+") as h5:
        first, second = results.find_results(h5, "integrate")
        assert results.latest_results(h5, "integrate").name == second.name
        first.attrs["start_time"] = "2999-01-01T00:00:00+00:00"  # started last
        assert results.latest_results(h5, "AzimuthalIntegration").name == first.name
        by_time = results.results_by_start_time(h5, "integrate")
        assert _names(by_time) == [second.name, first.name]
        second.attrs["start_time"] = first.attrs["start_time"]  # a tie: file order
        assert results.latest_results(h5, "integrate").name == second.name
        assert results.latest_results(h5, "fit") is None


def test_an_incomplete_latest_group_is_refused_by_name(copy):
    with h5py.File(copy, "r+") as h5:
        first, second = results.find_results(h5, "integrate")
        first.attrs["start_time"] = "2999-01-01T00:00:00+00:00"
        first[FLAGS][0] = 0  # a run killed before its first block was flagged
        assert not results.is_complete(first) and results.is_complete(second)
        with pytest.raises(InputError) as err:
            results.latest_results(h5, "integrate")
        message = str(err.value)
        assert first.name in message and "finish (resume) AzimuthalIntegration" in message
        n = int(first.attrs["n_positions"]) - int(first.attrs["positions_per_chunk"])
        assert f"only {n} of {first.attrs['n_positions']} positions" in message
        # never an older complete group instead of the latest one
        assert results.latest_results(h5, "integrate", complete=False).name == first.name
        with pytest.raises(InputError, match=f"^{first.name}/Intensity: only .* before fitting"):
            results.require_complete(first["Intensity"], "fitting")
        results.require_complete(second)  # complete: passes


def test_a_group_without_a_completion_record_passes(tmp_path):
    with h5py.File(tmp_path / "hand.h5", "w") as h5:
        group = h5.create_group("made_by_hand")
        group.attrs["process"] = "AzimuthalProfiles"
        assert results.is_complete(group)
        results.require_complete(group)
        assert results.latest_results(h5, "profiles") == group


def test_an_unknown_name_lists_what_is_present(results_file):
    with h5py.File(results_file, "r") as h5:
        with pytest.raises(InputError) as err:
            results.results_group(h5, "sector")
        assert str(err.value) == (
            f"{results_file}: no results of 'sector'; present: "
            "AzimuthalIntegration (integrate), SectorIntegration (sectors)"
        )
        with pytest.raises(InputError, match=r"no results of 'fit' \(ProfileFit\); present: Az"):
            results.results_group(h5, "fit")
        with pytest.raises(InputError, match="2 results of 'integrate'; no index 2"):
            results.results_group(h5, "integrate", index=2)
    with pytest.raises(InputError, match="no results of 'sector'; present: Azimuthal"):
        pyscatter.to_xarray(results_file, "sector")


def test_a_name_must_be_text():
    with pytest.raises(InputError, match="process must be"):
        results.process_name(None)  # type: ignore[arg-type]
