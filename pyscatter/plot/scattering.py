"""Figures of scattering data: I(q) waterfalls over a series, a detector frame in q-space."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence

import numpy as np

from pyscatter.plot.maps import new_axes

__all__ = ["plot_frame", "plot_waterfall"]


def plot_waterfall(
    ds,
    var: str = "Intensity",
    *,
    dim: str | None = None,
    offset: float | None = None,
    log: bool = True,
    ax=None,
    max_curves: int = 40,
):
    """I(q) curves stacked along one position dimension (a field, temperature or time series).

    Parameters
    ----------
    ds : xarray.Dataset
        From :func:`pyscatter.to_xarray` (e.g. ``"AzimuthalIntegration"``).
    var : str
        A variable over (*position dims, q).
    dim : str, optional
        The series dimension (default: the slowest position dim); other position dims are averaged.
    offset : float, optional
        Vertical shift between curves: a factor on a log axis (default 2), an amount on a linear one
        (default: the median intensity).
    """
    da = ds[var]
    radial = da.dims[-1]
    position_dims = [d for d in da.dims if d != radial]
    if dim is None:
        dim = position_dims[0]
    other = [d for d in position_dims if d != dim]
    curves = da.mean(other) if other else da
    values = curves.transpose(dim, radial).values
    series = curves[dim].values
    step = max(1, -(-len(series) // max_curves))
    from matplotlib import colormaps

    fig, ax = new_axes(ax, figsize=(6.0, 6.0))
    cmap = colormaps["viridis"]
    if offset is None:
        offset = 2.0 if log else float(np.nanmedian(values))
    x = ds[radial].values
    for k in range(0, len(series), step):
        y = values[k] * offset**k if log else values[k] + k * offset
        ax.plot(
            x,
            y,
            color=cmap(k / max(1, len(series) - 1)),
            lw=1.0,
            label=f"{dim} = {series[k]:g} {ds[dim].attrs.get('units', '')}".rstrip(),
        )
    if log:
        ax.set_yscale("log")
    ax.set_xlabel(f"{radial} [{ds[radial].attrs.get('units', '')}]")
    ax.set_ylabel(f"{var} [{da.attrs.get('units', '')}] (offset)")
    ax.set_title(f"{var} along {dim}")
    if len(range(0, len(series), step)) <= 12:
        ax.legend(fontsize="small", frameon=False)
    return fig


def plot_frame(
    path: str | os.PathLike,
    position: int | Sequence[int] = 0,
    *,
    q_circles: Sequence[float] = (),
    unit: str = "q_nm^-1",
    log: bool = True,
    ax=None,
):
    """One raw detector frame with q contours (and circles at ``q_circles``) from its geometry.

    Masked pixels (the file's ``Mask``) are shown blank. ``position`` is a flat index or a
    tuple over the position dims (slow to fast).
    """
    import h5py
    import hdf5plugin  # noqa: F401  (compressed raw frames)
    import pyFAI

    from pyscatter.io.geometry_series import read_series
    from pyscatter.io.usid import dims_of, main_datasets

    with h5py.File(path, "r", locking=False) as h5:
        raw = next(d for d in main_datasets(h5) if d.name.endswith("/Raw_Data"))
        pos_shape = tuple(len(d) for d in dims_of(raw, "Position"))
        rows, cols = (len(d) for d in dims_of(raw, "Spectroscopic"))
        if isinstance(position, (int, np.integer)):
            flat = int(position)
        else:
            flat = int(np.ravel_multi_index(tuple(position), pos_shape))
        frame = raw[flat].reshape(rows, cols).astype(np.float64)
        mask = raw.parent["Mask"][()] != 0 if "Mask" in raw.parent else np.zeros((rows, cols), bool)
        geometry = json.loads(h5["Measurement_000"].attrs["geometry"])
        series = read_series(raw)
        if series is not None:  # an energy or distance series: this position's geometry
            geometry = series.config(flat)
    ai = pyFAI.load(geometry)
    q = ai.array_from_unit((rows, cols), "center", unit, scale=True)
    shown = np.where(mask | (frame < 0), np.nan, frame)
    fig, ax = new_axes(ax, figsize=(6.4, 5.6))
    if log:
        positive = shown[np.isfinite(shown) & (shown > 0)]
        floor = positive.min() if positive.size else 1.0
        shown = np.log10(np.clip(shown, floor, None))
    image = ax.imshow(shown, origin="upper", cmap="magma", interpolation="nearest")
    fig.colorbar(image, ax=ax, label="log10 counts" if log else "counts")
    levels = q_circles or np.linspace(np.nanmin(q), np.nanmax(q), 7)[1:-1]
    contours = ax.contour(q, levels=sorted(levels), colors="cyan", linewidths=0.8)
    ax.clabel(contours, fmt="%.3g", fontsize="small")
    ax.set_xlabel("column [pixel]")
    ax.set_ylabel("row [pixel]")
    ax.set_title(f"frame {position} with q contours [{unit.split('_', 1)[-1]}]")
    return fig
