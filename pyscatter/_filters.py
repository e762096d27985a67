"""Make pyscatter's compressed raw data readable by any h5py user once ``pyscatter`` is imported.

``Raw_Data`` of detector frames is bitshuffle-LZ4, an HDF5 filter plugin that hdf5plugin ships and
registers when imported. Importing it costs importing h5py (~130 ms), which ``import pyscatter``
does not otherwise need. So: if h5py is already imported, hdf5plugin is imported now (~12 ms);
otherwise it is imported right after h5py is (a one-shot import hook), at no cost before.

(Pointing ``HDF5_PLUGIN_PATH`` at hdf5plugin's plugin folder instead is not an option: HDF5 then
loads the filters itself, and a later ``import hdf5plugin`` keeps those, whose ``set_local``
callback fails: creating a bitshuffle dataset raises "error during user callback".)
"""

from __future__ import annotations

import importlib.util
import sys


def register_hdf5_filters() -> None:
    """Register hdf5plugin's filters now if h5py is loaded, else as soon as it is."""
    if "hdf5plugin" in sys.modules or importlib.util.find_spec("hdf5plugin") is None:
        return
    if "h5py" in sys.modules:
        import hdf5plugin  # noqa: F401

        return
    if not any(isinstance(f, _AfterH5py) for f in sys.meta_path):
        sys.meta_path.insert(0, _AfterH5py())


class _AfterH5py:
    """A meta path finder: finds h5py as usual, and imports hdf5plugin once h5py's module has
    run (not an ``importlib.abc.MetaPathFinder`` subclass: importing importlib.abc costs ~6 ms)."""

    def find_spec(self, name, path=None, target=None):  # noqa: ARG002 - the finder protocol
        if name != "h5py":
            return None
        sys.meta_path.remove(self)  # one shot: the search below must not come back here
        spec = importlib.util.find_spec("h5py")
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        run = spec.loader.exec_module

        def exec_module(module):
            run(module)
            import hdf5plugin  # noqa: F401  (registers bitshuffle, LZ4, … with h5py's HDF5)

        spec.loader.exec_module = exec_module  # this spec's own loader instance
        return spec
