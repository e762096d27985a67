"""The q-space map of one position (a :class:`~pyscatter.processes.qspace.QSpaceMap` result),
with q circles.

The image is drawn with ``origin="lower"``: ``q_par`` to the right, ``q_perp`` upwards. A ring
of radius q lies on the map at the radius of its transverse part, ``q cos θ`` (θ half the
scattering angle, from the recorded wavelength), so the circles are drawn there and labelled
with q; at small angles the two are the same.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from pyscatter.errors import InputError
from pyscatter.plot.maps import draw_image, result_image

__all__ = ["circle_radius", "plot_qspace", "read_qspace"]

_Q_FACTOR = {"q_nm^-1": 1e-9, "q_A^-1": 1e-10}  # q[unit] * wavelength[m] / factor -> q λ


def circle_radius(q: Any, wavelength_m: float, unit: str) -> np.ndarray:
    """Radius ``q cos θ`` of a ring of radius ``q`` on a q-space map (``sin θ = q λ / 4π``).

    NaN for q beyond ``4π / λ``.
    """
    q = np.asarray(q, dtype=np.float64)
    sin_theta = q * (wavelength_m / _Q_FACTOR[unit]) / (4.0 * math.pi)
    with np.errstate(invalid="ignore"):
        return q * np.sqrt(1.0 - sin_theta**2)


def read_qspace(
    path: str | os.PathLike, position: int | Sequence[int] = 0, *, group: str | None = None
) -> dict[str, Any]:
    """One position's map and its axes from a QSpaceMap results group (default: the latest).

    Returns
    -------
    dict
        ``intensity`` (n_perp, n_par), ``q_perp``, ``q_par``, ``unit``, ``units`` (the axes'),
        ``wavelength`` (m), ``director_deg``, ``position`` (flat index), ``group``.
    """
    from pyscatter.io.usid import dims_of

    with result_image(path, "QSpaceMap", group, position) as (h5, grp, dset, flat):
        q_perp, q_par = dims_of(dset, "Spectroscopic")
        params = json.loads(grp.attrs["parameters"])
        geometry = json.loads(params["geometry"])
        return {
            "intensity": dset[flat].reshape(len(q_perp), len(q_par)).astype(np.float64),
            "q_perp": q_perp.values,
            "q_par": q_par.values,
            "unit": params["unit"],
            "units": q_par.units,
            "wavelength": float(geometry["wavelength"]),
            "director_deg": float(params["director_deg"]),
            "position": flat,
            "group": grp.name,
        }


def _circles(
    circles: Sequence[float],
    hkl: Sequence[Sequence[int]] | None,
    lattice: Mapping[str, float] | None,
    cif: str | os.PathLike | None,
    unit: str,
) -> list[tuple[float, str]]:
    """(q, label) of every circle to draw."""
    out = [(float(q), f"{float(q):.3g}") for q in circles]
    if hkl:
        from pyscatter.geometry import hkl_to_q

        values = hkl_to_q(hkl, lattice=lattice, cif=None if cif is None else str(cif), unit=unit)
        out += [
            (float(q), "".join(str(int(i)) for i in h)) for q, h in zip(values, hkl, strict=True)
        ]
    bad = [q for q, _ in out if not (math.isfinite(q) and q > 0)]
    if bad:
        raise InputError(f"circles must be finite q values > 0; got {bad}")
    return out


def plot_qspace(
    path: str | os.PathLike,
    position: int | Sequence[int] = 0,
    *,
    group: str | None = None,
    circles: Sequence[float] = (),
    hkl: Sequence[Sequence[int]] | None = None,
    lattice: Mapping[str, float] | None = None,
    cif: str | os.PathLike | None = None,
    log: bool = True,
    ax=None,
):
    """One position's q-space map, with circles at given q values or reflections.

    Parameters
    ----------
    path : path
        A pyscatter file with QSpaceMap results.
    position : int or tuple of int
        Flat position index, or a tuple over the position dims (slow to fast).
    group : str, optional
        The results group (default: the latest QSpaceMap).
    circles : sequence of float
        q values (the map's unit) to draw circles at.
    hkl, lattice, cif
        Reflections and their cell (:func:`pyscatter.geometry.hkl_to_q`): a circle each,
        labelled ``hkl``.
    log : bool
        Colour by log10 of the intensity.
    ax : matplotlib axes, optional

    Returns
    -------
    matplotlib.figure.Figure
    """
    data = read_qspace(path, position, group=group)
    rings = _circles(circles, hkl, lattice, cif, data["unit"])
    fig, ax, extent = draw_image(
        data["intensity"], data["q_par"], data["q_perp"], log=log, aspect="equal", ax=ax
    )
    theta = np.linspace(0.0, 2.0 * math.pi, 361)
    for q, label in rings:
        radius = float(circle_radius(q, data["wavelength"], data["unit"]))
        if not math.isfinite(radius):
            continue
        ax.plot(radius * np.cos(theta), radius * np.sin(theta), color="cyan", lw=0.8)
        ax.annotate(label, (radius * math.cos(0.8), radius * math.sin(0.8)), color="cyan",
                    fontsize="small")  # fmt: skip
    units = data["units"]
    ax.set_xlim(extent[0], extent[1])
    ax.set_ylim(extent[2], extent[3])
    ax.set_xlabel(f"q_par [{units}] (director {data['director_deg']:g}°)")
    ax.set_ylabel(f"q_perp [{units}]")
    ax.set_title(f"q-space map, position {data['position']}")
    return fig
