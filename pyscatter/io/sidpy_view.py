"""A lazy :class:`sidpy.Dataset` over a USID main dataset (``sidpy.Dataset.from_array`` of an
h5py dataset would read everything). Dimensions are plain arrays converted only here.

sidpy and dask are imported when :func:`to_sidpy` is called, never at import: they cost seconds
(sidpy imports dask.array and scikit-learn). sidpy needs no numpy shim; pyUSID, which pyscatter
does not import, is the one that calls the ``np.product`` numpy 2 removed.
"""

from __future__ import annotations

import h5py

from pyscatter.io.usid import dims_of

__all__ = ["to_sidpy"]


def to_sidpy(dset: h5py.Dataset, *, title: str | None = None):
    """Lazy N-d sidpy view of a main dataset: (position dims…, spectroscopic dims…).

    The file must stay open while the view is used; nothing is read until computed.
    """
    import dask.array as da
    import sidpy

    pos, spec = dims_of(dset, "Position"), dims_of(dset, "Spectroscopic")
    chunks = dset.chunks or (1, dset.shape[1])
    lazy = da.from_array(dset, chunks=chunks).reshape([len(d) for d in pos + spec])
    view = sidpy.Dataset.from_array(
        lazy,
        title=title or dset.name,
        quantity=str(dset.attrs.get("quantity", "generic")),
        units=str(dset.attrs.get("units", "generic")),
    )
    for k, dim in enumerate(pos + spec):
        kind = sidpy.DimensionType.SPATIAL if k < len(pos) else sidpy.DimensionType.SPECTRAL
        view.set_dimension(
            k,
            sidpy.Dimension(
                dim.values, name=dim.name, units=dim.units, quantity=dim.name, dimension_type=kind
            ),
        )
    return view
