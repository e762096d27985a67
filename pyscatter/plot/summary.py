"""The figure of a series summary: each parameter against the scan variable (matplotlib).

One panel per parameter, sharing the scan axis; every series (ring, peak, q value) is a
labelled set of points with its error bars; positions that fail the recorded quality filter are
drawn in grey (``bad="grey"``) or left out (``bad="drop"``). Axis labels carry the quantities and
units recorded in the file. No pyplot state: save the returned figure with ``fig.savefig``.
"""

from __future__ import annotations

import json
import os
from typing import Any

import numpy as np

from pyscatter.errors import InputError

__all__ = ["BAD", "plot_summary"]

#: What happens to positions that fail the filter: drawn grey, or left out.
BAD = ("grey", "drop")
_GREY = "0.6"


def _label(quantity: str, units: str) -> str:
    return quantity if units in ("", "1") else f"{quantity} ({units})"


def _series(da: Any, position_dims: list[str]) -> list[tuple[dict[str, int], str]]:
    """The series of a variable: an index per series dim, and a legend label."""
    dims = [d for d in da.dims if d not in position_dims]
    shape = tuple(da.sizes[d] for d in dims)
    out = []
    for idx in np.ndindex(*shape):
        parts = []
        for d, i in zip(dims, idx, strict=True):
            if d == "value" and da.sizes[d] == 1:
                continue
            units = str(da[d].attrs.get("units", ""))
            text = f"{d} = {float(da[d].values[i]):g}"
            parts.append(text if units in ("", "1", "index") else f"{text} {units}")
        out.append((dict(zip(dims, idx, strict=True)), ", ".join(parts)))
    return out


def _filter_text(parameters: dict[str, Any]) -> str:
    parts = []
    if parameters.get("min_r2") is not None:
        parts.append(f"R² ≥ {parameters['min_r2']:g}")
    if parameters.get("status"):
        parts.append("status " + "/".join(parameters["status"]))
    text = ", ".join(parts) or "no quality filter"
    if parameters.get("reduce", "none") != "none":
        text += f"; {parameters['reduce']} over the other positions"
    return text


def plot_summary(
    path: str | os.PathLike,
    *,
    index: int = -1,
    group: str | None = None,
    parameters: list[str] | None = None,
    bad: str = "grey",
    figsize: tuple[float, float] | None = None,
):
    """Each parameter of a SeriesSummary against its scan variable, with error bars.

    Parameters
    ----------
    path : path
        A file with SeriesSummary results.
    index, group : int, str
        Which SeriesSummary group (file order, -1 the latest), or its path.
    parameters : list of str, optional
        Panels to draw (default: every parameter summarised).
    bad : {"grey", "drop"}
        Positions that fail the quality filter: drawn grey (the individual positions, small
        crosses) or left out.
    figsize : (float, float), optional
        Default 6 inches wide, 2.2 per panel.

    Returns
    -------
    matplotlib.figure.Figure
    """
    from matplotlib.figure import Figure

    from pyscatter.io.summary import summary_dataset

    if bad not in BAD:
        raise InputError(f"bad must be one of {', '.join(BAD)}; got {bad!r}")
    rows = summary_dataset(path, index=index, group=group, per_position=True)
    table = (
        summary_dataset(path, group=rows.attrs["group"]) if rows.attrs["reduce"] != "none" else None
    )
    recorded = json.loads(str(rows.attrs["summarised"]))
    names = recorded if parameters is None else list(parameters)
    unknown = [p for p in names if p not in recorded]
    if unknown:
        raise InputError(
            f"parameter(s) {unknown} not in this summary; it has {', '.join(recorded)}"
        )
    against = str(rows.attrs["against"])
    position_dims = [d for d in str(rows.attrs["position_dims"]).split(",") if d]
    x_rows = rows[against].broadcast_like(rows["good"])
    x_units = str(rows[against].attrs.get("units", ""))
    fig = Figure(figsize=figsize or (6.0, 0.6 + 2.2 * len(names)), layout="constrained")
    axes = fig.subplots(len(names), 1, sharex=True, squeeze=False)[:, 0]
    for ax, name in zip(axes, names, strict=True):
        da = rows[name]
        for k, (sel, label) in enumerate(_series(da, position_dims)):
            colour = f"C{k % 10}"
            good = rows["good"].isel(sel).values.astype(bool).ravel()
            x = x_rows.isel(sel).values.ravel()
            y = da.isel(sel).values.ravel()
            sigma = (
                rows[f"{name}_sigma"].isel(sel).values.ravel() if f"{name}_sigma" in rows else None
            )
            if table is not None:
                t = table.isel(sel)
                ts = t[f"{name}_sigma"].values if f"{name}_sigma" in t else None
                ax.errorbar(t[against].values, t[name].values, ts, fmt="o-", ms=4, lw=1,
                            capsize=2, color=colour, label=label or None)  # fmt: skip
            else:
                ax.errorbar(x[good], y[good], None if sigma is None else sigma[good], fmt="o",
                            ms=4, capsize=2, color=colour, label=label or None)  # fmt: skip
            if bad == "grey" and (~good).any():
                ax.plot(x[~good], y[~good], "x", ms=4, color=_GREY,
                        label="filtered out" if k == 0 else None)  # fmt: skip
        ax.set_ylabel(_label(str(da.attrs.get("long_name", name)), str(da.attrs.get("units", ""))))
        if ax is axes[0] and ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7)  # the series are the same in every panel
    axes[-1].set_xlabel(_label(against, x_units))
    params = json.loads(str(rows.attrs["parameters"]))
    fig.suptitle(
        f"{rows.attrs['source_process']} against {against}: {_filter_text(params)}", fontsize=9
    )
    return fig
