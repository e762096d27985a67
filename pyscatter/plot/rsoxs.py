"""RSoXS figures: I(q, E) and A(q, E) against the scan variable, and A(E) at chosen q.

Reads an :class:`~pyscatter.processes.anisotropy.Anisotropy` results group of a 1-D scan (an
energy series): the images have the scan variable (energy) across and q up, the intensity
``(I∥ + I⊥) / 2`` on a log colour scale and A on a diverging scale centred on 0; the third
panel draws A against the scan variable at a few q values with its σ as error bars. Axis
labels carry the names and units recorded in the file. No pyplot state: save the returned
figure with ``fig.savefig``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from pyscatter.errors import InputError

__all__ = ["AnisotropyData", "plot_anisotropy", "read_anisotropy"]


@dataclass
class AnisotropyData:
    """What the figure shows: the scan variable, q, and the outputs (positions × q)."""

    scan: np.ndarray
    scan_label: str
    q: np.ndarray
    q_label: str
    intensity: np.ndarray
    a: np.ndarray
    a_sigma: np.ndarray
    intensity_units: str


def _label(name: str, units: str) -> str:
    return name if units in ("", "1") else f"{name} ({units})"


def read_anisotropy(path: str | os.PathLike, group: str | None = None) -> AnisotropyData:
    """The arrays of an Anisotropy group (``group``: its path; default the latest one)."""
    from pyscatter.io.results import results_by_start_time
    from pyscatter.io.usid import Dim, dims_of
    from pyscatter.io.xarray import open_for_reading

    with open_for_reading(path) as h5:
        if group is None:
            groups = results_by_start_time(h5, "Anisotropy")
            if not groups:
                raise InputError(f"{path}: no Anisotropy results; run pyscatter anisotropy first")
            g = groups[-1]
        else:
            g = h5.get(group)
            if g is None or g.attrs.get("process") != "Anisotropy":
                raise InputError(f"{path}: {group!r} is not an Anisotropy results group")
        position = dims_of(g["A"], "Position")
        if len(position) != 1:
            raise InputError(
                f"{path}: the figure needs a 1-D scan (e.g. energy); {g.name} has position dims "
                f"{[d.name for d in position]}"
            )
        (q_dim,) = dims_of(g["A"], "Spectroscopic")
        scan = position[0].values
        if position[0].name == "Position":  # positions kept as an index: a measured column
            measured = _measured_column(h5[g["A"].attrs["Position_Indices"]].parent, scan.size)
            if measured is not None:
                scan = np.asarray(measured[()], dtype=np.float64).ravel()
                name = measured.name.rsplit("/", 1)[-1][len("measured_") :]
                position = [Dim(name, str(measured.attrs.get("units", "")), scan)]
        return AnisotropyData(
            scan=scan,
            scan_label=_label(position[0].name, position[0].units),
            q=q_dim.values,
            q_label=_label(q_dim.name, q_dim.units),
            intensity=0.5 * (g["I_parallel"][()] + g["I_perpendicular"][()]),
            a=g["A"][()],
            a_sigma=g["A_sigma"][()],
            intensity_units=str(g["I_parallel"].attrs.get("units", "a.u.")),
        )


def _measured_column(channel: Any, n: int) -> Any:
    """The translator's ``measured_<motor>`` column to plot against: ``measured_Energy`` if
    there is one, else the first with ``n`` distinct values; None if none."""
    columns = {k: channel[k] for k in channel if k.startswith("measured_")}
    columns = {k: d for k, d in columns.items() if getattr(d, "shape", None) == (n,)}
    if "measured_Energy" in columns:
        return columns["measured_Energy"]
    for dset in columns.values():
        if np.unique(dset[()]).size == n:
            return dset
    return None


def _nearest(q: np.ndarray, values: Sequence[float]) -> list[int]:
    out = []
    for v in values:
        if not np.isfinite(v) or v < q[0] or v > q[-1]:
            raise InputError(f"q value {v!r} is outside the q axis [{q[0]:g}, {q[-1]:g}]")
        out.append(int(np.argmin(np.abs(q - v))))
    return out


def _default_q(data: AnisotropyData, n: int = 3) -> list[int]:
    """``n`` q bins spread over those finite at every position."""
    ok = np.flatnonzero(np.all(np.isfinite(data.a), axis=0))
    if ok.size == 0:
        raise InputError("no q bin has a finite A at every position; pass q_values")
    return sorted({int(ok[int(round(f * (ok.size - 1)))]) for f in np.linspace(0.15, 0.85, n)})


def plot_anisotropy(
    path: str | os.PathLike,
    *,
    group: str | None = None,
    q_values: Sequence[float] | None = None,
    figsize: tuple[float, float] = (13.0, 4.2),
) -> Any:
    """Three panels: I(q, E) (log), A(q, E) (centred on 0) and A(E) at ``q_values`` with σ.

    Parameters
    ----------
    path : path
        A pyscatter file with Anisotropy results of a 1-D scan.
    group : str, optional
        The results group's path (default: the latest Anisotropy group).
    q_values : sequence of float, optional
        q of the A(E) curves (the nearest bins); default three spread over the finite ones.
    figsize : (float, float)

    Returns
    -------
    matplotlib.figure.Figure
    """
    from matplotlib.colors import LogNorm, TwoSlopeNorm
    from matplotlib.figure import Figure

    from pyscatter.plot.maps import cell_edges

    data = read_anisotropy(path, group)
    order = np.argsort(data.scan, kind="stable")
    scan = data.scan[order]
    if np.unique(scan).size != scan.size:
        raise InputError(f"{path}: the scan variable repeats; the images need distinct values")
    fig = Figure(figsize=figsize, layout="constrained")
    ax_i, ax_a, ax_e = fig.subplots(1, 3)
    x_edges, q_edges = cell_edges(scan), cell_edges(data.q)
    intensity = data.intensity[order].T
    positive = intensity[np.isfinite(intensity) & (intensity > 0)]
    norm = LogNorm(positive.min(), positive.max()) if positive.size else None
    mesh = ax_i.pcolormesh(x_edges, q_edges, np.ma.masked_invalid(intensity), norm=norm)
    fig.colorbar(mesh, ax=ax_i, label=_label("(I∥ + I⊥)/2", data.intensity_units))
    ax_i.set_title("I(q, E)")
    a = data.a[order].T
    finite = np.abs(a[np.isfinite(a)])
    limit = float(np.percentile(finite, 99)) if finite.size else 1.0
    limit = limit if limit > 0 else 1.0
    mesh = ax_a.pcolormesh(x_edges, q_edges, np.ma.masked_invalid(a), cmap="RdBu_r",
                           norm=TwoSlopeNorm(0.0, -limit, limit))  # fmt: skip
    fig.colorbar(mesh, ax=ax_a, label="A = (I∥ − I⊥)/(I∥ + I⊥)")
    ax_a.set_title("A(q, E)")
    for ax in (ax_i, ax_a):
        ax.set_xlabel(data.scan_label)
        ax.set_ylabel(data.q_label)
    bins = _default_q(data) if q_values is None else _nearest(data.q, q_values)
    for k in bins:
        ax_e.errorbar(scan, data.a[order, k], yerr=data.a_sigma[order, k], marker="o",
                      ms=3, capsize=2, label=f"q = {data.q[k]:.4g}")  # fmt: skip
    ax_e.axhline(0.0, color="0.5", lw=0.8)
    ax_e.set_xlabel(data.scan_label)
    ax_e.set_ylabel("A")
    ax_e.set_title("A(E) ± σ")
    ax_e.legend(fontsize="small")
    return fig
