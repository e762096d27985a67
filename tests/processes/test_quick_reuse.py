"""Quick reuse: the same request on complete results is recognised before any set-up.

What is asserted is what happened: which group was returned, whether anything was computed,
whether pyFAI was imported at all (a fresh interpreter), and which changes of the request or of
the file defeat the quick path (then the normal path decides, as before).
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import h5py
import numpy as np
import pytest

from pyscatter.processes.base import run_on_file
from pyscatter.processes.integration import AzimuthalIntegration
from pyscatter.processes.profiles import AzimuthalProfiles
from pyscatter.processes.requests import REQUEST_ATTR, request_hash

PARAMS = dict(npt=64, error_model="poisson", progress=False)


def _key(path, process=AzimuthalIntegration, **kwargs):
    with h5py.File(path, "r") as h5:
        return request_hash(process, process.default_source(h5), kwargs)


def test_second_run_is_reused_from_the_request(scan_file):
    first = run_on_file(scan_file, AzimuthalIntegration, **PARAMS)
    assert first.computed_positions == first.total_positions
    with h5py.File(scan_file, "r") as h5:
        recorded = h5[first.group].attrs[REQUEST_ATTR]
    assert recorded == _key(scan_file, **PARAMS)
    second = run_on_file(scan_file, AzimuthalIntegration, **PARAMS)
    assert second.reused and second.group == first.group and second.computed_positions == 0
    # execution options do not change the request
    assert _key(scan_file, **PARAMS, n_jobs=2, max_mem_mb=64) == recorded


def test_the_quick_path_imports_no_pyfai(scan_file):
    """In a fresh interpreter, a reused request never imports pyFAI (the set-up is skipped)."""
    run_on_file(scan_file, AzimuthalIntegration, **PARAMS)
    code = textwrap.dedent(
        f"""
        import json, sys
        from pyscatter.processes.base import run_on_file
        from pyscatter.processes.integration import AzimuthalIntegration
        s = run_on_file({str(scan_file)!r}, AzimuthalIntegration, **{PARAMS!r})
        print(json.dumps([s.reused, s.computed_positions, "pyFAI" in sys.modules]))
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == [True, 0, False]


def test_changes_of_the_request_or_the_file_change_the_key(scan_file, tmp_path):
    base = _key(scan_file, **PARAMS)
    assert _key(scan_file, **dict(PARAMS, npt=65)) != base
    assert _key(scan_file, **dict(PARAMS, polarization_factor=0.9)) != base
    with h5py.File(scan_file, "r") as h5:
        shape = AzimuthalIntegration.default_source(h5).parent["Mask"].shape
    mask = np.zeros(shape, np.uint8)
    with_mask = _key(scan_file, **dict(PARAMS, mask=mask))
    mask[0, 0] = 1
    assert _key(scan_file, **dict(PARAMS, mask=mask)) not in (with_mask, base)
    with h5py.File(scan_file, "r+") as h5:  # the file's own mask: its content counts
        h5[AzimuthalIntegration.default_source(h5).parent["Mask"].name][0, 0] ^= 1
    assert _key(scan_file, **PARAMS) != base


def test_a_poni_file_counts_by_content(scan_file, tmp_path):
    import pyFAI

    with h5py.File(scan_file, "r") as h5:
        config = json.loads(AzimuthalIntegration.default_source(h5).parent.parent.attrs["geometry"])
    poni = tmp_path / "g.poni"
    ai = pyFAI.load(config)
    ai.write(str(poni))
    before = _key(scan_file, **PARAMS, poni=str(poni))
    ai.dist *= 1.01
    poni.unlink()
    ai.write(str(poni))
    assert _key(scan_file, **PARAMS, poni=str(poni)) != before


@pytest.mark.parametrize("method", ["bbox,csr,opencl", ("full", "csr", "opencl")])
def test_machine_dependent_methods_take_the_normal_path(scan_file, method):
    assert _key(scan_file, **PARAMS, method=method, allow_fallback=True) is None


def test_incomplete_or_other_groups_are_not_quick_reused(scan_file):
    first = run_on_file(scan_file, AzimuthalIntegration, **PARAMS)
    with h5py.File(scan_file, "r+") as h5:
        h5[first.group]["completed_chunks"][0] = 0  # as if killed before its first flag
    resumed = run_on_file(scan_file, AzimuthalIntegration, **PARAMS)
    assert resumed.resumed and resumed.group == first.group and resumed.computed_positions > 0
    other = run_on_file(scan_file, AzimuthalIntegration, **dict(PARAMS, npt=65))
    assert other.group != first.group and other.computed_positions == other.total_positions


def test_profiles_are_quick_reused_too(scan_file):
    kwargs = dict(q=[0.45], half_width=0.06, npt_azim=90, progress=False)
    first = run_on_file(scan_file, AzimuthalProfiles, **kwargs)
    again = run_on_file(scan_file, AzimuthalProfiles, **kwargs)
    assert again.reused and again.group == first.group
    with h5py.File(scan_file, "r") as h5:
        assert h5[first.group].attrs[REQUEST_ATTR] == _key(scan_file, AzimuthalProfiles, **kwargs)
