"""Figures of decomposition, clustering and peak-fit results (matplotlib, no pyplot state).

Each function reads a results file and returns a :class:`matplotlib.figure.Figure`; save it
with ``fig.savefig("components.png")``. Maps are drawn by :func:`pyscatter.plot.maps.plot_map`
over the last two position dims (earlier ones, e.g. a field, at their first index).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["plot_clusters", "plot_decomposition", "plot_peaks"]


def _figure(n_panels: int, ncols: int, *, height: float = 3.2, width: float = 3.6):
    from matplotlib.figure import Figure

    nrows = -(-n_panels // ncols)
    fig = Figure(figsize=(width * ncols, height * nrows), layout="constrained")
    axes = [fig.add_subplot(nrows, ncols, i + 1) for i in range(n_panels)]
    return fig, axes


def _leading(da, result_dims: Sequence[str]) -> dict[str, int]:
    """Index 0 of the position dims before the last two (a map shows two)."""
    positions = [d for d in da.dims if d not in result_dims]
    return {d: 0 for d in positions[:-2]}


def _spectrum_axis(model, var: str):
    """x values and label of the (flattened) spectroscopic dims of a model variable."""
    dims = model[var].dims[1:]
    if len(dims) == 1:
        coord = model[dims[0]]
        return coord.values, f"{dims[0]} ({coord.attrs.get('units', '')})"
    size = int(np.prod([model.sizes[d] for d in dims]))
    return np.arange(size), " × ".join(dims) + " (flattened)"


def plot_decomposition(path: str | os.PathLike, *, index: int = -1, ncols: int = 3):
    """Components (first panel) and one loading map per component.

    Parameters
    ----------
    path : path
        A file with Decomposition results.
    index : int
        Which Decomposition run (file order; -1 the latest).
    ncols : int
        Panels per row.
    """
    from pyscatter import to_xarray
    from pyscatter.plot.maps import plot_map
    from pyscatter.processes.decomposition import read_model

    model = read_model(path, "Decomposition", index=index)
    ds = to_xarray(path, "Decomposition", index=index)
    k = model.sizes["component"]
    fig, axes = _figure(k + 1, ncols)
    x, label = _spectrum_axis(model, "Components")
    comps = model["Components"].values.reshape(k, -1)
    for j in range(k):
        axes[0].plot(x, comps[j], label=f"component {j}")
    axes[0].set_xlabel(label)
    axes[0].set_ylabel("component (a.u.)")
    axes[0].set_title(f"{model.attrs.get('method', '')} components")
    axes[0].legend(fontsize="small")
    loadings = ds["Loadings"]
    isel = _leading(loadings, ("component",))
    for j in range(k):
        plot_map(
            ds,
            "Loadings",
            ring=None,
            isel={**isel, "component": j},
            ax=axes[j + 1],
            title=f"loading {j}",
        )
    return fig


def plot_clusters(path: str | os.PathLike, *, index: int = -1):
    """The label map and the mean spectrum of every cluster."""
    from pyscatter import to_xarray
    from pyscatter.plot.maps import plot_map
    from pyscatter.processes.decomposition import read_model

    model = read_model(path, "Clustering", index=index)
    ds = to_xarray(path, "Clustering", index=index)
    c = model.sizes["cluster"]
    fig, (ax_map, ax_means) = _figure(2, 2, width=4.6)
    labels = ds["Labels"].astype(float)
    plot_map(
        labels.to_dataset(name="Labels"),
        "Labels",
        ring=None,
        isel={**_leading(labels, ("label",)), "label": 0},
        ax=ax_map,
        cmap="tab10",
        vmin=-0.5,
        vmax=9.5,
        title=f"{model.attrs.get('method', '')} labels ({c} clusters)",
    )
    x, label = _spectrum_axis(model, "Cluster_Means")
    means = model["Cluster_Means"].values.reshape(c, -1)
    sizes = model["Cluster_Sizes"].values
    from matplotlib import colormaps

    colours = colormaps["tab10"]
    for j in range(c):
        ax_means.plot(x, means[j], color=colours(j % 10), label=f"cluster {j} ({sizes[j]})")
    ax_means.set_xlabel(label)
    ax_means.set_ylabel(f"mean ({model['Cluster_Means'].attrs.get('units', '')})")
    ax_means.set_title("cluster means")
    ax_means.legend(fontsize="small")
    return fig


def plot_peaks(
    path: str | os.PathLike,
    *,
    index: int = -1,
    quantities: Sequence[str] = ("position", "fwhm", "area"),
):
    """Maps of fitted peak quantities: one row per peak, one column per quantity."""
    from pyscatter import to_xarray
    from pyscatter.plot.maps import plot_map

    ds = to_xarray(path, "PeakFit", index=index)
    n_peaks = ds.sizes["peak"]
    names = [q for q in quantities if q in ds]
    fig, axes = _figure(n_peaks * len(names), len(names))
    units = ds["peak"].attrs.get("units", "")
    for i in range(n_peaks):
        for j, name in enumerate(names):
            da = ds[name]
            plot_map(
                ds,
                name,
                ring=None,
                isel={**_leading(da, ("peak",)), "peak": i},
                ax=axes[i * len(names) + j],
                title=f"{name}, peak {float(ds['peak'][i]):.4g} {units}",
            )
    return fig


def save(fig: Any, png: str | os.PathLike, dpi: int = 110) -> None:
    """Write ``fig`` as a PNG (any backend: the figure has its own canvas)."""
    fig.savefig(os.fspath(png), dpi=dpi)
