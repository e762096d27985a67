"""pyscatter: hyperspectral X-ray and neutron scattering in one resumable USID HDF5 file."""

from pyscatter._filters import register_hdf5_filters
from pyscatter.errors import PyscatterError

register_hdf5_filters()  # Raw_Data (bitshuffle-LZ4) readable by plain h5py, pyUSID, silx

__version__ = "0.1.0"

__all__ = ["PyscatterError", "__version__", "open", "summary_table", "to_xarray"]


def to_xarray(path, process="AzimuthalIntegration", *, index=-1):
    """Open the results of ``process`` in ``path`` as an :class:`xarray.Dataset`.

    See :func:`pyscatter.io.xarray.to_xarray`.
    """
    from pyscatter.io.xarray import to_xarray as _to_xarray

    return _to_xarray(path, process, index=index)


def open(path):  # noqa: A001 - pyscatter.open, like io.open
    """Open ``path`` read-only, also while a job writes it; see :func:`pyscatter.io.reading.open`."""
    from pyscatter.io.reading import open as _open

    return _open(path)


def summary_table(path, against=None, **kwargs):
    """A series summary as a tidy :class:`pandas.DataFrame` (with ``against``, run it first).

    See :func:`pyscatter.io.summary.summary_table`.
    """
    from pyscatter.io.summary import summary_table as _summary_table

    return _summary_table(path, against, **kwargs)
