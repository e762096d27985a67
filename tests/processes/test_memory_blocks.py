"""What a run keeps in memory does not grow with its blocks (deterministic checks, no RSS).

A serial run's peak resident set grew with the number of frames (benchmarks/bench_scaling.py:
1.5× from 1,000 to 10,000 frames) because every output was written through HDF5's chunk cache
(8 MiB per open dataset since HDF5 2.0), which kept each written chunk until it was full, and
because an ``override`` run read and verified every earlier results group of its parameters
first. These tests check the causes, not the resident set: the outputs are opened for writing
without a chunk cache, the bytes written are the same as through the cache, an override reads
no earlier results, and the frames of every block are read into the same two buffers.
"""

from __future__ import annotations

import shutil

import h5py
import numpy as np
import pytest

from pyscatter.io import results
from pyscatter.io.record import output_order
from pyscatter.processes import base
from pyscatter.processes.base import run_on_file
from pyscatter.processes.execution import FrameReader
from pyscatter.processes.integration import AzimuthalIntegration

#: 12 positions in blocks of one (max_mem_mb=1 with read-ahead): twelve blocks.
PARAMS = dict(npt=60, error_model="poisson", max_mem_mb=1, progress=False)


def _outputs(path, group: str) -> dict[str, bytes]:
    """Every dataset of a results group as bytes, and its recorded attributes."""
    out: dict[str, bytes] = {}
    with h5py.File(path, "r") as h5:
        grp = h5[group]
        for name, obj in grp.items():
            if isinstance(obj, h5py.Dataset):
                out[name] = obj[()].tobytes()
        for key in ("parameters", "parameters_hash", "positions_per_chunk", "output_order"):
            out[f"@{key}"] = str(grp.attrs[key]).encode()
    return out


@pytest.fixture()
def opened(monkeypatch):
    """The chunk cache (slots, bytes, w0) of each output ``_run`` opened, as HDF5 reports it
    right after the open (a dataset already open elsewhere would keep its earlier cache)."""
    seen: dict[str, tuple] = {}
    real = results.output_for_writing

    def spy(group, name):
        dset = real(group, name)
        seen[name] = dset.id.get_access_plist().get_chunk_cache()
        return dset

    monkeypatch.setattr(base, "output_for_writing", spy)
    return seen


def test_outputs_are_written_without_a_chunk_cache(scan_file, opened):
    summary = run_on_file(scan_file, AzimuthalIntegration, **PARAMS)
    with h5py.File(scan_file, "r") as h5:
        group = h5[summary.group]
        expected = output_order(group)
        assert int(group.attrs["positions_per_chunk"]) < summary.total_positions  # blocks
    assert sorted(opened) == sorted(expected)
    assert all(cache[1] == 0 for cache in opened.values()), opened


def test_a_resumed_run_writes_without_a_chunk_cache_too(scan_file, opened):
    """Resuming first verifies the flagged blocks (reading the outputs); those handles are
    closed before the run opens its own, which therefore get no cache."""
    from conftest import interrupted_run

    interrupted_run(scan_file, AzimuthalIntegration, **PARAMS)
    opened.clear()
    resumed = run_on_file(scan_file, AzimuthalIntegration, **PARAMS)
    assert resumed.resumed and 0 < resumed.computed_positions < resumed.total_positions
    assert opened and all(cache[1] == 0 for cache in opened.values()), opened


def test_the_bytes_written_are_those_written_through_the_chunk_cache(
    tmp_path, scan_file, monkeypatch
):
    """The reference: the same run writing through HDF5's default chunk cache (as before)."""
    cached = shutil.copy(scan_file, tmp_path / "cached.h5")
    monkeypatch.setattr(base, "output_for_writing", lambda group, name: group[name])
    reference = run_on_file(cached, AzimuthalIntegration, **PARAMS)
    monkeypatch.undo()
    summary = run_on_file(scan_file, AzimuthalIntegration, **PARAMS)
    assert summary.group == reference.group
    ours, theirs = _outputs(scan_file, summary.group), _outputs(cached, reference.group)
    assert ours.keys() == theirs.keys() and "completed_chunks" in ours
    for name in theirs:
        assert ours[name] == theirs[name], name


def test_override_reads_no_earlier_results(scan_file, monkeypatch):
    """Verifying an earlier complete group reads all its outputs (O(positions) memory and
    I/O per group); an override would not use the answer."""
    first = run_on_file(scan_file, AzimuthalIntegration, **PARAMS)
    calls = []
    real = base.is_verified_complete

    def counting(group):
        calls.append(group.name)
        return real(group)

    monkeypatch.setattr(base, "is_verified_complete", counting)
    again = run_on_file(scan_file, AzimuthalIntegration, override=True, **PARAMS)
    assert calls == [] and again.group != first.group
    assert again.computed_positions == again.total_positions
    # without override the earlier groups are still verified before one is reused
    with h5py.File(scan_file, "r") as h5:
        proc = AzimuthalIntegration(AzimuthalIntegration.default_source(h5), **PARAMS)
        reused = proc.reuse()
    assert reused is not None and reused.reused
    assert sorted(calls) == sorted([first.group, again.group])
    with h5py.File(scan_file, "r") as h5:
        data = [h5[s.group]["Intensity"][()].tobytes() for s in (first, again)]
    assert data[0] == data[1]


def test_every_block_is_read_into_one_of_two_buffers(scan_file, monkeypatch):
    """A serial run with read-ahead reads each block's frames into the buffer of its slot:
    two buffers for the whole run, whatever the number of blocks."""
    addresses: list[int] = []
    real = FrameReader.read

    def spy(self, h5, start, stop, slot=0):
        frames, extra = real(self, h5, start, stop, slot)
        addresses.append(frames.__array_interface__["data"][0])
        return frames, extra

    monkeypatch.setattr(FrameReader, "read", spy)
    summary = run_on_file(scan_file, AzimuthalIntegration, **PARAMS)
    with h5py.File(scan_file, "r") as h5:
        size = int(h5[summary.group].attrs["positions_per_chunk"])
    n_blocks = -(-summary.total_positions // size)
    assert len(addresses) == n_blocks >= 4
    assert len(set(addresses)) == 2
    assert addresses[0::2] == [addresses[0]] * len(addresses[0::2])


def test_a_frame_reader_keeps_one_buffer_per_slot(scan_file, small_scan):
    with h5py.File(scan_file, "r") as h5:
        source = AzimuthalIntegration.default_source(h5)
        reader = FrameReader(source.name, small_scan.frame_shape)
        first, _ = reader.read(h5, 0, 3, slot=0)
        kept = first.copy()
        second, _ = reader.read(h5, 3, 6, slot=1)
        third, _ = reader.read(h5, 6, 8, slot=0)  # a shorter block: the same buffer
        assert np.shares_memory(first, third) and not np.shares_memory(first, second)
        assert len(reader._buffers) == 2
        np.testing.assert_array_equal(third.reshape(2, -1), source[6:8])
        np.testing.assert_array_equal(kept.reshape(3, -1), source[0:3])
