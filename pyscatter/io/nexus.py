"""NeXus annotations: every results group is also an ``NXdata`` that viewers plot directly.

USID stays the model (flat ``(positions, values)`` main datasets). Viewers such as silx view and
h5web choke on a flat 1e6 × 3000 table and know nothing of USID, so each results group also gets:

- ``NX_class = "NXdata"``, ``@signal = "data"``, ``@axes`` naming 1-D axis datasets, one per
  position dimension (slow to fast) and per result dimension, each with ``@units``;
- ``data`` (and ``data_errors`` when the process writes an uncertainty): virtual datasets that show
  the flat main dataset with its position dimensions unflattened, no bytes copied;
- a ``@default`` chain from the file root (NXroot → NXentry → the latest results group).

Everything is written while the results group is still unlinked, or inside the journaled set-up
transaction, as the crash-safety recipe requires.
"""

from __future__ import annotations

from collections.abc import Sequence

import h5py
import numpy as np

from pyscatter.io.usid import Dim

__all__ = ["annotate_nxdata", "set_default_chain"]

SIGNAL = "data"


def _axis_name(group: h5py.Group, name: str, taken: set[str]) -> str:
    candidate = name
    while candidate in group or candidate in taken or candidate in (SIGNAL, f"{SIGNAL}_errors"):
        candidate = f"{candidate}_axis"
    taken.add(candidate)
    return candidate


def _nd_view(
    group: h5py.Group,
    name: str,
    source_path: str,
    source_shape: tuple[int, int],
    dtype: np.dtype,
    pos_shape: tuple[int, ...],
    spec_shape: tuple[int, ...],
) -> None:
    """A virtual dataset (*pos_shape, *spec_shape) over the flat (n_pos, n_spec) source."""
    layout = h5py.VirtualLayout(shape=pos_shape + spec_shape, dtype=dtype)
    source = h5py.VirtualSource(".", source_path, shape=source_shape, dtype=dtype)
    fast = pos_shape[-1]
    # one mapping per row of the fastest position dim: a block of `fast` flat rows
    for k, index in enumerate(np.ndindex(*pos_shape[:-1])):
        layout[index] = source[k * fast : (k + 1) * fast, :]
    fill = np.nan if np.issubdtype(dtype, np.floating) else 0
    group.create_virtual_dataset(name, layout, fillvalue=fill)


def annotate_nxdata(
    group: h5py.Group,
    group_path: str,
    *,
    position_dims: Sequence[Dim],
    signal: str,
    spec_dims: Sequence[Dim],
    dtype: np.dtype,
    errors: str | None = None,
    title: str | None = None,
) -> None:
    """Make ``group`` (to be linked at ``group_path``) a valid NXdata over its main dataset ``signal``.

    Parameters
    ----------
    group : h5py.Group
        The results group, possibly still unlinked.
    group_path : str
        Where it will be linked: the virtual datasets refer to ``<group_path>/<signal>``.
    position_dims, spec_dims : sequence of Dim
        Slow to fast.
    signal, errors : str
        Names of the main datasets holding the values and their 1-sigma uncertainties.
    """
    pos_shape = tuple(len(d) for d in position_dims)
    spec_shape = tuple(len(d) for d in spec_dims)
    n_pos, n_spec = int(np.prod(pos_shape)), int(np.prod(spec_shape))
    for name in (signal, errors):
        if name is None:
            continue
        view = SIGNAL if name == signal else f"{SIGNAL}_errors"
        _nd_view(group, view, f"{group_path}/{name}", (n_pos, n_spec), dtype, pos_shape, spec_shape)
    taken: set[str] = set()
    axes = []
    for dim in (*position_dims, *spec_dims):
        name = _axis_name(group, dim.name, taken)
        axis = group.create_dataset(name, data=dim.values)
        axis.attrs["units"] = dim.units
        axis.attrs["long_name"] = f"{dim.name} [{dim.units}]" if dim.units else dim.name
        axes.append(name)
    group.attrs["NX_class"] = "NXdata"
    group.attrs["signal"] = SIGNAL
    group.attrs["axes"] = axes
    if title:
        group.attrs["title"] = title
    group[SIGNAL].attrs["long_name"] = title or signal
    group[SIGNAL].attrs["interpretation"] = "spectrum" if len(spec_dims) == 1 else "image"


def set_default_chain(h5: h5py.File, group_path: str) -> None:
    """Point ``@default`` from the root down to ``group_path`` (NXroot → NXentry → results)."""
    parts = group_path.strip("/").split("/")
    if len(parts) < 2:
        return
    h5.attrs["NX_class"] = "NXroot"
    h5.attrs["default"] = parts[0]
    entry = h5[parts[0]]
    entry.attrs["NX_class"] = "NXentry"
    entry.attrs["default"] = "/".join(parts[1:])
