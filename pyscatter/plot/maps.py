"""Maps of any scalar result over two position dimensions (matplotlib, no pyplot state).

Figures are made with :class:`matplotlib.figure.Figure` directly, so nothing here depends on
or changes the pyplot backend; ``fig.savefig`` writes PNGs anywhere (Agg), and notebooks
display the returned figure.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from pyscatter.errors import InputError

__all__ = [
    "draw_image",
    "flat_position",
    "result_image",
    "as_map",
    "cell_edges",
    "colour_scale",
    "coord_units",
    "coord_values",
    "map_title",
    "new_axes",
    "plot_map",
]

#: Result dims that are not positions: selected by index (``ring=0``) before mapping
RESULT_DIMS = ("ring", "profile")


def new_axes(ax=None, *, figsize: tuple[float, float] = (6.0, 4.8)):
    """``(figure, axes)``: the given axes and its figure, or a new Figure with one axes."""
    if ax is not None:
        return ax.figure, ax
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize, layout="constrained")
    return fig, fig.add_subplot()


def cell_edges(centres: ArrayLike) -> np.ndarray:
    """Edges of the cells around monotonic ``centres`` (midpoints, ends mirrored), n + 1.

    Examples
    --------
    >>> cell_edges([0.0, 1.0, 3.0]).tolist()
    [-0.5, 0.5, 2.0, 4.0]
    """
    c = np.asarray(centres, dtype=float).ravel()
    if c.size == 1:
        return np.array([c[0] - 0.5, c[0] + 0.5])
    mid = 0.5 * (c[1:] + c[:-1])
    return np.concatenate([[2 * c[0] - mid[0]], mid, [2 * c[-1] - mid[-1]]])


def as_map(
    data: Any,
    var: str | None = None,
    *,
    ring: int | None = 0,
    isel: Mapping[str, int] | None = None,
):
    """The :class:`xarray.DataArray` to map: ``data[var]`` with result dims selected.

    Parameters
    ----------
    data : xarray.Dataset, xarray.DataArray or array_like
        A Dataset (``var`` names the variable, default ``"S"``), a DataArray, or a 1-D/2-D
        array (dims ``row``/``col``, index coordinates).
    var : str, optional
    ring : int or None
        Index along a ``ring`` (or ``profile``) dim, if there is one.
    isel : mapping, optional
        Further indices, e.g. ``{"Field": 2}`` for a map of a 3-D scan.

    Raises
    ------
    InputError
        If ``var`` is missing or more than two dims are left.
    """
    import xarray as xr

    if isinstance(data, xr.Dataset):
        name = var or ("S" if "S" in data else None)
        if name is None or name not in data:
            raise InputError(
                f"variable {var!r} not in the dataset; expected one of {', '.join(map(str, data))}"
            )
        da = data[name]
    elif isinstance(data, xr.DataArray):
        da = data if var is None else data.rename(var)
    else:
        arr = np.asarray(data)
        if arr.ndim not in (1, 2):
            raise InputError(f"an array to map must be 1-D or 2-D; got shape {arr.shape}")
        da = xr.DataArray(arr, dims=("row", "col")[-arr.ndim :], name=var or "value")
    selection = dict(isel or {})
    for dim in RESULT_DIMS:
        if dim in da.dims and dim not in selection and ring is not None:
            selection[dim] = int(ring)
    unknown = [d for d in selection if d not in da.dims]
    if unknown:
        raise InputError(f"cannot select {unknown}: {da.name} has dims {list(da.dims)}")
    da = da.isel(selection)
    if da.ndim > 2 or da.ndim == 0:
        raise InputError(
            f"{da.name} has dims {list(da.dims)} after selection; a map needs one or two "
            "position dims: select the others with isel={dim: index}"
        )
    return da


def _label(name: str, units: str | None) -> str:
    return f"{name} ({units})" if units not in (None, "", "1") else str(name)


def colour_scale(name: str, units: str | None, values: np.ndarray) -> dict[str, Any]:
    """Colour map and limits that suit a quantity.

    Order parameters are anchored at 0 (viridis), directors and other angles in [-90, 90)
    use a cyclic map over the full half-turn, status codes a qualitative one; other quantities
    span their 2nd to 98th percentiles, symmetric around 0 with a diverging map when they
    take both signs.
    """
    finite = values[np.isfinite(values)]
    lo, hi = np.percentile(finite, [2, 98]) if finite.size else (0.0, 1.0)
    lo, hi = float(lo), float(hi)
    lname = name.lower()
    if lname in ("director", "x0") or (units == "deg" and lname.startswith("director")):
        if lname.endswith("sigma"):
            return {"cmap": "magma", "vmin": 0.0, "vmax": max(hi, 1e-12)}
        return {"cmap": "twilight", "vmin": -90.0, "vmax": 90.0}
    if lname == "status":
        return {"cmap": "tab10", "vmin": -0.5, "vmax": 9.5}
    if lname in ("s", "s_model_free") or lname.startswith("order"):
        return {"cmap": "viridis", "vmin": min(0.0, lo), "vmax": max(hi, 1e-3)}
    if hi <= lo:
        lo, hi = lo - 0.5, hi + 0.5
    if lo < 0 < hi and min(-lo, hi) > 0.1 * max(-lo, hi):
        top = max(-lo, hi)
        return {"cmap": "RdBu_r", "vmin": -top, "vmax": top}
    return {"cmap": "viridis", "vmin": lo, "vmax": hi}


def map_title(da) -> str:
    """``name, ring = 0.45 1/nm``: the variable and the selected result coordinates."""
    parts = [str(da.name)]
    for dim in RESULT_DIMS + tuple(c for c in da.coords if c not in RESULT_DIMS):
        if dim in da.coords and da.coords[dim].ndim == 0 and dim not in da.dims:
            coord = da.coords[dim]
            units = coord.attrs.get("units", "")
            parts.append(f"{dim} = {float(coord):.4g} {units}".rstrip())
    return ", ".join(parts)


def plot_map(
    data: Any,
    var: str | None = None,
    *,
    ring: int | None = 0,
    isel: Mapping[str, int] | None = None,
    ax=None,
    cmap: str | None = None,
    vmin: float | None = None,
    vmax: float | None = None,
    title: str | None = None,
    colorbar: bool = True,
):
    """Map a scalar result over two position dims (or a line over one).

    Cells are drawn around the position coordinates (slow dim on the vertical axis, fast dim
    horizontal; irregular spacing kept), NaN cells are left grey, axes carry the position
    units, and the colour bar the quantity and its units.

    Parameters
    ----------
    data : xarray.Dataset, xarray.DataArray or array_like
        E.g. ``pyscatter.to_xarray(path, "OrderParameter")``; see :func:`as_map`.
    var : str, optional
        Variable of a Dataset (default ``"S"``).
    ring : int or None
        Index along the ``ring`` dim of results that have one.
    isel : mapping, optional
        Indices of further dims (e.g. ``{"Field": 0}``).
    ax : matplotlib.axes.Axes, optional
        Draw here; by default a new Figure.
    cmap, vmin, vmax : optional
        Override the colour scale of :func:`colour_scale`.
    title : str, optional
    colorbar : bool

    Returns
    -------
    matplotlib.figure.Figure
        The map is ``fig.axes[0].collections[0]`` (a QuadMesh; ``get_array()`` holds the
        values, slow dim first).

    Examples
    --------
    >>> import numpy as np
    >>> fig = plot_map(np.arange(6.0).reshape(2, 3), "S")
    >>> fig.axes[0].collections[0].get_array().shape
    (2, 3)
    """
    da = as_map(data, var, ring=ring, isel=isel)
    fig, ax = new_axes(ax)
    units = da.attrs.get("units")
    values = np.asarray(da.values, dtype=float)
    if str(da.name).lower() == "status":
        values = np.where(values < 0, np.nan, values)  # NOT_COMPUTED (-1): missing, not a code
    if da.ndim == 1:
        _plot_line(ax, da, values, title)
        return fig
    scale = colour_scale(str(da.name), units, values)
    scale.update(
        {k: v for k, v in (("cmap", cmap), ("vmin", vmin), ("vmax", vmax)) if v is not None}
    )
    import matplotlib as mpl

    colours = mpl.colormaps[scale.pop("cmap")].with_extremes(bad="0.85")
    ydim, xdim = da.dims
    y, x = coord_values(da, ydim), coord_values(da, xdim)
    mesh = ax.pcolormesh(
        cell_edges(x), cell_edges(y), np.ma.masked_invalid(values), cmap=colours, **scale
    )
    ax.set_xlabel(_label(xdim, coord_units(da, xdim)))
    ax.set_ylabel(_label(ydim, coord_units(da, ydim)))
    if coord_units(da, xdim) == coord_units(da, ydim) and coord_units(da, xdim):
        ax.set_aspect("equal")
    ax.set_title(title if title is not None else map_title(da))
    if colorbar:
        bar = fig.colorbar(mesh, ax=ax)
        bar.set_label(_label(str(da.attrs.get("long_name", da.name)), units))
    return fig


def _plot_line(ax, da, values: np.ndarray, title: str | None) -> None:
    """:func:`plot_map` of a result over one position dim: a line with markers."""
    dim = da.dims[0]
    x = np.asarray(da.coords[dim].values if dim in da.coords else np.arange(da.size))
    ax.plot(x, values, "o-")
    ax.set_xlabel(_label(dim, coord_units(da, dim)))
    ax.set_ylabel(_label(str(da.name), da.attrs.get("units")))
    ax.set_title(title if title is not None else map_title(da))


def coord_values(da, dim: str) -> np.ndarray:
    if dim in da.coords:
        return np.asarray(da.coords[dim].values, dtype=float)
    return np.arange(da.sizes[dim], dtype=float)


def coord_units(da, dim: str) -> str | None:
    if dim in da.coords:
        return da.coords[dim].attrs.get("units")
    return "index"


def flat_position(dset: Any, position: Any) -> int:
    """The flat index of ``position`` (an int, or one index per position dim, slow to fast) in
    the positions of a main dataset ``dset``.

    Raises
    ------
    InputError
        A position outside the scan.
    """
    from pyscatter.io.usid import dims_of

    n = dset.shape[0]
    if isinstance(position, (int, np.integer)):
        flat = int(position)
    else:
        shape = tuple(len(d) for d in dims_of(dset, "Position"))
        try:
            flat = int(np.ravel_multi_index(tuple(int(p) for p in position), shape))
        except ValueError as err:
            raise InputError(f"position {position!r}: outside the scan {shape}") from err
    if not 0 <= flat < n:
        raise InputError(f"position {position!r}: expected a flat index in [0, {n})")
    return flat


@contextmanager
def result_image(
    path: Any, process: str, group: str | None, position: Any
) -> Iterator[tuple[Any, Any, Any, int]]:
    """``(h5, results group, its Intensity, flat position)`` of a complete results group of
    ``process`` (``group``, or the latest), the file open read-only while in the block."""
    import h5py

    from pyscatter.io.results import latest_results, require_complete

    with h5py.File(path, "r", locking=False) as h5:
        grp = h5[group] if group is not None else latest_results(h5, process)
        if grp is None or str(grp.attrs.get("process", "")) != process:
            where = "" if group is None else f" at {group}"
            raise InputError(f"{path}: no {process} results{where}")
        require_complete(grp, "plotting it")
        dset = grp["Intensity"]
        yield h5, grp, dset, flat_position(dset, position)


def draw_image(
    image: np.ndarray,
    x: np.ndarray,
    y: np.ndarray,
    *,
    log: bool = True,
    aspect: str = "auto",
    ax=None,
):
    """A 2-D result (``y`` rows × ``x`` columns, bin centres) drawn with ``origin="lower"``, in
    log10 of its positive values by default, NaN blank, with a colour bar.

    Returns
    -------
    (figure, axes, extent)
        ``extent`` (x0, x1, y0, y1): the bins' outer edges.
    """
    image = np.asarray(image, dtype=np.float64)
    if log:
        positive = image[np.isfinite(image) & (image > 0)]
        floor = positive.min() if positive.size else 1.0
        with np.errstate(invalid="ignore"):
            image = np.log10(np.clip(image, floor, None))
    half_x = 0.5 * (x[1] - x[0]) if x.size > 1 else 0.5
    half_y = 0.5 * (y[1] - y[0]) if y.size > 1 else 0.5
    extent = (x[0] - half_x, x[-1] + half_x, y[0] - half_y, y[-1] + half_y)
    fig, ax = new_axes(ax, figsize=(6.4, 5.6))
    shown = ax.imshow(
        np.ma.masked_invalid(image),
        origin="lower",
        extent=extent,
        cmap="magma",
        interpolation="nearest",
        aspect=aspect,
    )
    fig.colorbar(shown, ax=ax, label="log10 intensity" if log else "intensity")
    return fig, ax, extent
