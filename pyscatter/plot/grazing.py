"""The grazing-incidence map of one position (a
:class:`~pyscatter.processes.grazing.GrazingIncidence` result), with expected reflections.

The image is drawn with ``origin="lower"``: ``q_xy`` to the right and ``q_z`` upwards (in
``chi`` mode: ``q`` to the right, ``chi`` upwards), in log10 of the intensity by default; bins
the position does not reach (NaN) are left blank. Expected reflections are marked as circles at
their (q_xy, q_z) (in ``chi`` mode at their (q, chi)).
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from pyscatter.plot.maps import draw_image, result_image

__all__ = ["plot_gi_map", "read_gi_map"]


def read_gi_map(
    path: str | os.PathLike, position: int | Sequence[int] = 0, *, group: str | None = None
) -> dict[str, Any]:
    """One position's map and its axes from a GrazingIncidence results group (default: latest).

    Returns
    -------
    dict
        ``intensity`` (n_slow, n_fast), ``fast``, ``slow`` (bin centres), ``fast_name``,
        ``slow_name``, ``fast_units``, ``slow_units``, ``mode``, ``incident_deg`` (the
        position's incident angle), ``position`` (flat index), ``group``.
    """
    from pyscatter.io.usid import dims_of

    with result_image(path, "GrazingIncidence", group, position) as (h5, grp, dset, flat):
        slow, fast = dims_of(dset, "Spectroscopic")
        params = json.loads(grp.attrs["parameters"])
        from pyscatter.processes.grazing_worker import recorded_angles

        source = str(grp.attrs["source"])
        incident = recorded_angles(h5, source, "incident_angle", params["incident_angle"])
        return {
            "intensity": dset[flat].reshape(len(slow), len(fast)).astype(np.float64),
            "fast": fast.values,
            "slow": slow.values,
            "fast_name": fast.name,
            "slow_name": slow.name,
            "fast_units": fast.units,
            "slow_units": slow.units,
            "mode": params["mode"],
            "incident_deg": float(incident[flat]),
            "position": flat,
            "group": grp.name,
        }


def plot_gi_map(
    path: str | os.PathLike,
    position: int | Sequence[int] = 0,
    *,
    group: str | None = None,
    spots: Sequence[tuple[float, float]] = (),
    log: bool = True,
    ax=None,
):
    """One position's grazing-incidence map, with markers at expected reflections.

    Parameters
    ----------
    path : path
        A pyscatter file with GrazingIncidence results.
    position : int or tuple of int
        Flat position index, or a tuple over the position dims (slow to fast).
    group : str, optional
        The results group (default: the latest GrazingIncidence).
    spots : sequence of (float, float)
        Expected reflections (q_xy, q_z) in the map's unit (``chi`` mode: (q, chi)).
    log : bool
        Colour by log10 of the intensity.
    ax : matplotlib axes, optional

    Returns
    -------
    matplotlib.figure.Figure
    """
    data = read_gi_map(path, position, group=group)
    fig, ax, extent = draw_image(data["intensity"], data["fast"], data["slow"], log=log, ax=ax)
    for a, b in spots:
        ax.plot([a], [b], marker="o", mfc="none", mec="cyan", ms=12, mew=1.2)
    ax.set_xlim(extent[0], extent[1])
    ax.set_ylim(extent[2], extent[3])
    ax.set_xlabel(f"{data['fast_name']} [{data['fast_units']}]")
    ax.set_ylabel(f"{data['slow_name']} [{data['slow_units']}]")
    ax.set_title(
        f"grazing incidence, position {data['position']} (incident angle {data['incident_deg']:g}°)"
    )
    return fig
