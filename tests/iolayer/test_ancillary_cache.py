"""A detector's large ancillary grid written from its cached chunks (issue 18: start-up).

The chunks written from the cache are the bytes HDF5 writes without it: same data, chunk
shape, filters and chunk bytes; an entry that does not fit is rejected and the grid written as
before; measured values are never cached.
"""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from pyscatter.io import matrix_cache
from pyscatter.io.ancillary_cache import _consistent
from pyscatter.io.usid import Dim, ancillary_arrays, write_ancillary

DIMS = [Dim("Row", "pixel", np.arange(300)), Dim("Col", "pixel", np.arange(250))]


def _write(path, dims=DIMS, spectroscopic=True, values=None):
    with h5py.File(path, "w") as h5:
        write_ancillary(h5, "Spectroscopic_", dims, spectroscopic=spectroscopic, values=values)
    return path


def _stored(path):
    """Every dataset's data, chunking, filters, attributes and raw chunk bytes."""
    out = {}
    with h5py.File(path, "r") as h5:
        for name, d in h5.items():
            chunks = [
                d.id.read_direct_chunk(d.id.get_chunk_info(i).chunk_offset)
                for i in range(d.id.get_num_chunks())
            ]
            attrs = {k: np.asarray(v).tolist() for k, v in d.attrs.items()}
            out[name] = (d[()], d.dtype, d.chunks, d.compression, d.shuffle, attrs, chunks)
    return out


def _same(a, b):
    assert a.keys() == b.keys()
    for name in a:
        np.testing.assert_array_equal(a[name][0], b[name][0])
        assert a[name][1:] == b[name][1:], name


@pytest.fixture()
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("PYSCATTER_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(matrix_cache, "STATS", dict.fromkeys(matrix_cache.STATS, 0))
    return tmp_path / "cache" / "matrices"


@pytest.mark.parametrize("spectroscopic", [True, False])
def test_cached_chunks_are_the_bytes_hdf5_writes(tmp_path, cache, monkeypatch, spectroscopic):
    cold = _stored(_write(tmp_path / "cold.h5", spectroscopic=spectroscopic))
    assert matrix_cache.STATS["stores"] == 1
    warm = _stored(_write(tmp_path / "warm.h5", spectroscopic=spectroscopic))
    assert matrix_cache.STATS["hits"] == 1
    monkeypatch.setenv("PYSCATTER_CACHE", "off")
    plain = _stored(_write(tmp_path / "plain.h5", spectroscopic=spectroscopic))
    _same(cold, warm)
    _same(cold, plain)
    indices, values = ancillary_arrays(DIMS)  # the grid itself, (n, n_dims)
    layout = (lambda a: a.T) if spectroscopic else (lambda a: a)
    np.testing.assert_array_equal(warm["Spectroscopic_Indices"][0], layout(indices))
    np.testing.assert_array_equal(warm["Spectroscopic_Values"][0], layout(values))
    assert warm["Spectroscopic_Indices"][3] == "gzip"  # large: compressed, as before


def test_other_values_or_measured_values_are_not_taken_from_the_cache(tmp_path, cache):
    _write(tmp_path / "a.h5")
    shifted = [DIMS[0], Dim("Col", "pixel", np.arange(250) + 0.5)]
    b = _stored(_write(tmp_path / "b.h5", shifted))
    np.testing.assert_array_equal(b["Spectroscopic_Values"][0][1, :3], [0.5, 1.5, 2.5])
    assert matrix_cache.STATS["hits"] == 0 and matrix_cache.STATS["stores"] == 2
    measured = np.random.default_rng(1).random((300 * 250, 2))
    c = _stored(_write(tmp_path / "c.h5", spectroscopic=False, values=measured))
    np.testing.assert_array_equal(c["Spectroscopic_Values"][0], measured)
    assert matrix_cache.STATS["stores"] == 2  # measured values: written, never cached


def test_an_entry_that_does_not_fit_is_rejected_and_the_grid_written(tmp_path, cache):
    _write(tmp_path / "a.h5")
    (entry,) = cache.glob("*.npz")
    with np.load(entry) as npz:
        arrays = {k: npz[k] for k in npz.files}
    good = {k: v for k, v in arrays.items() if not k.startswith("__")}
    assert _consistent(good)
    for broken in ("twice", "outside", "short"):
        bad = {k: v.copy() for k, v in good.items()}
        if broken == "twice":
            bad["Indices_offsets"][1] = bad["Indices_offsets"][0]
        elif broken == "outside":
            bad["Values_offsets"][-1, 1] += bad["Values_chunks"][1] * 1000
        else:
            bad["Values_sizes"][0] += 1
        assert not _consistent(bad), broken
    bad["__key__"], bad["__format__"] = arrays["__key__"], arrays["__format__"]
    np.savez(entry, **bad)
    again = _stored(_write(tmp_path / "again.h5"))
    assert matrix_cache.STATS["rejected"] == 1
    _same(again, _stored(tmp_path / "a.h5"))
