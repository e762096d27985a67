"""Figures of X-ray fluorescence results: element maps, and one pixel's spectrum with its fit.

:func:`plot_element_maps` draws a grid of maps, one per line group, in the map's motor
coordinates (:func:`pyscatter.plot.maps.plot_map`) with a colour bar each;
:func:`plot_pixel_spectrum` draws one position's measured spectrum (log y) with the fast linear
fit recomputed from the recorded parameters, its SNIP background and the lines of the fitted
groups marked (``Fe Kα``, ``Fe Kβ1`` …). :func:`plot_spectrum` does the same from arrays.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from pyscatter.errors import InputError

__all__ = ["line_markers", "pixel_fit", "plot_element_maps", "plot_pixel_spectrum", "plot_spectrum"]

#: The map drawn for each process, by default
_DEFAULT_VAR = {"XrfFit": "area", "XrfRoi": "net"}


def _group_attrs(path: str | os.PathLike, process: str, index: int) -> tuple[str, dict]:
    from pyscatter.io.results import find_results
    from pyscatter.io.xarray import open_for_reading

    with open_for_reading(path) as h5:
        groups = find_results(h5, process)
        if not groups:
            raise InputError(f"{path}: no {process} results; run xrf-fit or xrf-roi first")
        try:
            group = groups[index]
        except IndexError:
            raise InputError(f"{path}: no {process} results group at index {index}") from None
        return group.name, {k: group.attrs[k] for k in group.attrs}


def plot_element_maps(
    path: str | os.PathLike,
    *,
    process: str = "XrfFit",
    index: int = -1,
    var: str | None = None,
    ncols: int = 4,
    cmap: str = "viridis",
):
    """One map per line group of an XRF results group, each with its colour bar.

    Parameters
    ----------
    path : path
        The file.
    process : {"XrfFit", "XrfRoi"}
        Which results (or their step names ``xrf-fit``, ``xrf-roi``).
    index : int
        Which results group of that process (-1: the latest).
    var : str, optional
        The variable mapped (default ``area`` for the fit, ``net`` for the ROI sums; or
        ``area_sigma``, ``net_sigma`` …).
    ncols : int
        Maps per row.
    cmap : str

    Returns
    -------
    matplotlib.figure.Figure
    """
    from pyscatter import to_xarray
    from pyscatter.plot.decomposition import _figure, _leading
    from pyscatter.plot.maps import plot_map
    from pyscatter.processes.registry import process_name_of

    process = process_name_of(process)
    ds = to_xarray(path, process, index=index)
    _, attrs = _group_attrs(path, process, index)
    names = json.loads(attrs.get("lines", "[]"))
    var = var or _DEFAULT_VAR.get(process, "area")
    if var not in ds:
        raise InputError(f"{path}: {process} results have no {var!r}; they have {list(ds)}")
    da = ds[var]
    n = ds.sizes["line"]
    names = names if len(names) == n else [f"line {i}" for i in range(n)]
    fig, axes = _figure(n, min(ncols, n))
    units = da.attrs.get("units", "")
    for i, name in enumerate(names):
        plot_map(
            ds,
            var,
            ring=None,
            isel={**_leading(da, ("line",)), "line": i},
            ax=axes[i],
            cmap=cmap,
            title=f"{name.replace('_', ' ')} {var} ({units})",
        )
    return fig


def _markers(
    groups: Sequence[Any], min_ratio: float, merge_keV: float = 0.06
) -> list[tuple[float, str]]:
    """(energy, label) of the lines to mark: those at least ``min_ratio`` of their group's
    strongest; lines of a group closer than ``merge_keV`` share one marker at their weighted
    energy, labelled with their common name (``Fe Kα`` for Kα1 and Kα2)."""
    from pyscatter.processes.xrf import line_label

    out = []
    for g in groups:
        keep = np.asarray(g.ratios) >= min_ratio * float(np.max(g.ratios))
        lines = [(float(e), float(r), line_label(g.element, n))
                 for e, r, n, k in zip(g.energies_keV, g.ratios, g.lines, keep, strict=False) if k]  # fmt: skip
        lines.sort()
        clusters: list[list[tuple[float, float, str]]] = []
        for line in lines:
            if clusters and line[0] - clusters[-1][-1][0] < merge_keV:
                clusters[-1].append(line)
            else:
                clusters.append([line])
        for cluster in clusters:
            energy = sum(e * r for e, r, _ in cluster) / sum(r for _, r, _ in cluster)
            names = [n for _, _, n in cluster]
            label = (
                names[0] if len(names) == 1 else os.path.commonprefix(names).rstrip("0123456789")
            )
            out.append((energy, label if len(label) > len(g.element) + 1 else " / ".join(names)))
    return out


def plot_spectrum(
    energy_keV: np.ndarray,
    counts: np.ndarray,
    *,
    model: np.ndarray | None = None,
    background: np.ndarray | None = None,
    groups: Sequence[Any] = (),
    min_ratio: float = 0.1,
    ax=None,
    title: str | None = None,
):
    """A spectrum (log y) with the fitted model, the background and labelled line markers.

    Parameters
    ----------
    energy_keV, counts : ndarray
        (n_channels,) each.
    model, background : ndarray, optional
        (n_channels,) the fit (background + peaks) and the background (NaN: not drawn).
    groups : sequence of LineGroup
        Their lines at least ``min_ratio`` of their group's strongest are marked and labelled.
    ax : matplotlib.axes.Axes, optional
    title : str, optional

    Returns
    -------
    matplotlib.figure.Figure
        Lines in ``fig.axes[0].lines``: data, then fit, then background (when given).
    """
    from pyscatter.plot.maps import new_axes

    fig, ax = new_axes(ax, figsize=(8.0, 4.5))
    e = np.asarray(energy_keV, dtype=float)
    y = np.asarray(counts, dtype=float)
    ax.plot(e, np.where(y > 0, y, np.nan), ".", ms=2.5, color="0.3", label="measured")
    if model is not None:
        ax.plot(e, model, "-", color="C3", lw=1.2, label="fit")
    if background is not None:
        ax.plot(e, background, "--", color="C0", lw=1.0, label="background")
    ax.set_yscale("log")
    top = float(np.nanmax(y)) if np.any(y > 0) else 1.0
    for energy, label in _markers(groups, min_ratio):
        ax.axvline(energy, color="C2", lw=0.6, alpha=0.6)
        ax.text(energy, top * 1.3, label, rotation=90, fontsize=7, ha="center", va="bottom")
    ax.set_ylim(0.5, top * 20)
    ax.set_xlabel("Energy (keV)")
    ax.set_ylabel("Counts")
    ax.legend(loc="upper right", fontsize=8)
    if title:
        ax.set_title(title)
    return fig


def _flat_index(h5_main, position: int | Sequence[int]) -> int:
    from pyscatter.plot.maps import flat_position

    return flat_position(h5_main, position)


def pixel_fit(h5: Any, group: Any, flat: int) -> dict[str, Any]:
    """One position's spectrum and its fast linear fit, recomputed from an ``XrfFit`` group.

    Parameters
    ----------
    h5 : h5py.File (or pyscatter's reader)
        The open file.
    group : h5py.Group
        The ``XrfFit`` results group (its recorded parameters and source).
    flat : int
        Flat position index.

    Returns
    -------
    dict
        ``energy`` (keV), ``counts`` (as measured), ``model`` (background + peaks) and
        ``background`` (NaN outside the fit range; None without one), ``areas`` (per group),
        ``groups`` (the LineGroups), all ``(n_channels,)`` arrays but ``areas``/``groups``.
    """
    from pyscatter.io.integrity import read_rows
    from pyscatter.kernels.xrf import fast_linear_fit
    from pyscatter.kernels.xrf_lines import design_matrix
    from pyscatter.processes.xrf_worker import groups_and_response, worker_energy

    params = json.loads(group.attrs["parameters"])
    params["source"] = str(group.attrs["source"])
    source = h5[params["source"]]
    counts = read_rows(source, flat, flat + 1)[0]
    energy = worker_energy(h5, params)
    groups, response = groups_and_response(params)
    res = fast_linear_fit(
        counts[None, :],
        energy,
        groups,
        response,
        snip_width=params["snip_width"],
        fit_range_keV=tuple(params["fit_range_keV"]),
        snip_iterations=params["snip_iterations"],
        smooth_width=params.get("smooth_width", 0),
    )
    background = res.background[0] if res.background is not None else None
    peaks = design_matrix(energy, groups, response) @ res.areas[0]
    model = None
    if background is not None:
        model = np.where(np.isfinite(background), background + peaks, np.nan)
    return {
        "energy": energy,
        "counts": counts,
        "model": model,
        "background": background,
        "areas": res.areas[0],
        "groups": groups,
    }


def line_markers(groups: Sequence[Any], min_ratio: float = 0.1) -> list[tuple[float, str]]:
    """(energy keV, label) of the lines of ``groups`` to mark on a spectrum (``Fe Kα`` …)."""
    return _markers(groups, min_ratio)


def plot_pixel_spectrum(
    path: str | os.PathLike,
    position: int | Sequence[int],
    *,
    index: int = -1,
    min_ratio: float = 0.1,
    ax=None,
):
    """One position's measured spectrum with the fast linear fit of an ``XrfFit`` results group.

    The fit is computed again for that spectrum from the recorded parameters (counts as
    measured: the dead-time and monitor factors scale the maps, not the spectra;
    :func:`pixel_fit`).

    Parameters
    ----------
    path : path
    position : int or (int, ...)
        Flat position index, or one index per position dim (slow to fast).
    index : int
        Which ``XrfFit`` results group (-1: the latest).
    min_ratio : float
        Lines at least this fraction of their group's strongest are marked.
    ax : matplotlib.axes.Axes, optional

    Returns
    -------
    matplotlib.figure.Figure
    """
    from pyscatter.io.xarray import open_for_reading

    name, attrs = _group_attrs(path, "XrfFit", index)
    with open_for_reading(path) as h5:
        flat = _flat_index(h5[str(attrs["source"])], position)
        fit = pixel_fit(h5, h5[name], flat)
    names = ", ".join(
        f"{g.name.replace('_', ' ')} {a:.3g}"
        for g, a in zip(fit["groups"], fit["areas"], strict=True)
    )
    return plot_spectrum(
        fit["energy"],
        fit["counts"],
        model=fit["model"],
        background=fit["background"],
        groups=fit["groups"],
        min_ratio=min_ratio,
        ax=ax,
        title=f"position {position}: {names}"[:120],
    )
