"""Orientation figures: director maps and measured profiles with their fitted curves."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence

import numpy as np

from pyscatter.errors import InputError
from pyscatter.plot.maps import as_map, cell_edges, coord_values, map_title, new_axes, plot_map

__all__ = [
    "director_colours",
    "plot_director_map",
    "plot_profile_fit",
    "write_orientation_figures",
]

KINDS = ("quiver", "wheel")


def director_colours(director_deg: np.ndarray, s: np.ndarray) -> np.ndarray:
    """RGB colours of a colour-wheel director map, shape ``director.shape + (3,)``.

    Hue is the director over a half turn (-90 and 90 degrees are the same colour), the value
    (brightness) is S clipped to [0, 1]; NaN (no director) is light grey.
    """
    from matplotlib.colors import hsv_to_rgb

    d = np.asarray(director_deg, dtype=float)
    hue = np.mod(d + 90.0, 180.0) / 180.0
    value = np.clip(np.nan_to_num(np.asarray(s, dtype=float), nan=0.0), 0.0, 1.0)
    hsv = np.stack([np.nan_to_num(hue), np.ones_like(hue), value], axis=-1)
    rgb = hsv_to_rgb(hsv)
    rgb[~np.isfinite(d)] = 0.85
    return rgb


def plot_director_map(
    ds,
    *,
    kind: str = "quiver",
    ring: int | None = 0,
    isel: Mapping[str, int] | None = None,
    background: str | None = "S",
    offset_deg: float = 0.0,
    ax=None,
    title: str | None = None,
):
    """Map of directors: sticks over a map of S (``quiver``) or an HSV colour wheel (``wheel``).

    The director is drawn at ``director + offset_deg`` degrees counter-clockwise from the
    horizontal (fast) position axis, i.e. the azimuth chi of the scattering maximum as it
    appears on the detector in pyFAI's convention; ``offset_deg=90`` draws the real-space axis
    of a fibre whose streak is equatorial. Positions without a director draw nothing.

    Parameters
    ----------
    ds : xarray.Dataset
        With ``director`` and (for the background/brightness) ``S``, e.g.
        ``pyscatter.to_xarray(path, "OrderParameter")``.
    kind : {"quiver", "wheel"}
    ring : int or None
        Index along the ``ring`` dim.
    isel : mapping, optional
        Indices of further dims (e.g. ``{"Field": 0}``).
    background : str or None
        Variable mapped under the sticks (``quiver``); None for none.
    offset_deg : float
        Added to the director before drawing.
    ax : matplotlib.axes.Axes, optional
    title : str, optional

    Returns
    -------
    matplotlib.figure.Figure
        ``quiver``: the sticks are ``ax.collections[-1]`` (a Quiver, ``U = cos``,
        ``V = sin`` of the drawn angle). ``wheel``: ``ax.collections[0]`` holds the RGB
        colours (:func:`director_colours`) and an inset polar axes is the colour key.
    """
    if kind not in KINDS:
        raise InputError(f"unsupported kind {kind!r}; expected one of {', '.join(KINDS)}")
    director = as_map(ds, "director", ring=ring, isel=isel)
    if director.ndim != 2:
        raise InputError(f"a director map needs two position dims; got {list(director.dims)}")
    ydim, xdim = director.dims
    x, y = coord_values(director, xdim), coord_values(director, ydim)
    angle = np.radians(np.asarray(director.values, dtype=float) + float(offset_deg))
    label = title if title is not None else map_title(director)
    if kind == "wheel":
        s = as_map(ds, "S", ring=ring, isel=isel).values if "S" in ds else np.ones(angle.shape)
        fig, ax = new_axes(ax)
        rgb = director_colours(director.values + float(offset_deg), s)
        ax.pcolormesh(cell_edges(x), cell_edges(y), rgb)
        _axes_labels(ax, director, xdim, ydim)
        ax.set_title(label + (" (hue), S (brightness)" if "S" in ds else " (hue)"))
        _colour_key(ax, float(offset_deg))
        return fig
    if background is not None and background in ds:
        fig = plot_map(ds, background, ring=ring, isel=isel, ax=ax, title=label)
        ax = fig.axes[0] if ax is None else ax
    else:
        fig, ax = new_axes(ax)
        _axes_labels(ax, director, xdim, ydim)
        ax.set_title(label)
        ax.set_xlim(cell_edges(x)[[0, -1]])
        ax.set_ylim(cell_edges(y)[[0, -1]])
    _draw_sticks(ax, x, y, angle, white=bool(background))
    return fig


def _draw_sticks(ax, x: np.ndarray, y: np.ndarray, angle: np.ndarray, *, white: bool) -> None:
    """Headless arrows at angle ``angle`` (radians), one per cell of the (y, x) grid; NaN: none."""
    gx, gy = np.meshgrid(x, y)
    u = np.ma.masked_invalid(np.cos(angle))
    v = np.ma.masked_invalid(np.sin(angle))
    ax.quiver(
        gx,
        gy,
        u,
        v,
        angles="uv",
        pivot="middle",
        scale_units="width",
        scale=x.size / 0.8,  # each stick 80 % of a cell wide
        headwidth=0,
        headlength=0,
        headaxislength=0,
        width=0.006,
        color="white" if white else "black",
        edgecolor="black",
        linewidth=0.4,
    )


def _axes_labels(ax, da, xdim: str, ydim: str) -> None:
    def unit(dim):
        return da.coords[dim].attrs.get("units") if dim in da.coords else "index"

    ax.set_xlabel(f"{xdim} ({unit(xdim)})")
    ax.set_ylabel(f"{ydim} ({unit(ydim)})")
    if unit(xdim) == unit(ydim):
        ax.set_aspect("equal")


def _colour_key(ax, offset_deg: float) -> None:
    """A polar colour key: hue against the drawn angle, over the full circle."""
    key = ax.inset_axes([1.04, 0.0, 0.3, 0.3], projection="polar")
    theta = np.radians(np.linspace(-180.0, 180.0, 361))
    radius = np.array([0.6, 1.0])
    # the drawn angle t shows director t - offset
    rgb = director_colours(np.degrees(theta[:-1])[None, :] - offset_deg, np.ones((1, 360)))
    key.pcolormesh(theta, radius, rgb)
    key.set_yticks([])
    key.set_xticks(np.radians([0, 90, 180, 270]))
    key.tick_params(labelsize=6)


def _open(path: str | os.PathLike):
    from pyscatter.io.xarray import open_for_reading

    return open_for_reading(path)


def _fit_group(h5, group: str | None, index: int):
    from pyscatter.io.results import find_results

    if group is not None:
        if group not in h5:
            raise InputError(f"{h5.filename}: no group {group}")
        g = h5[group]
        if g.attrs.get("process") == "OrderParameter":
            g = h5[str(g.attrs["fit_group"])]
        if g.attrs.get("process") != "ProfileFit":
            raise InputError(f"{group} is neither a ProfileFit nor an OrderParameter group")
        return g
    groups = find_results(h5, "ProfileFit")
    if not groups:
        raise InputError(f"{h5.filename}: no ProfileFit results to plot")
    try:
        return groups[index]
    except IndexError:
        raise InputError(
            f"{h5.filename}: {len(groups)} ProfileFit results; no index {index}"
        ) from None


def _flat_position(position: int | Sequence[int], shape: tuple[int, ...]) -> int:
    n = int(np.prod(shape))
    if isinstance(position, bool):
        raise InputError(f"position must be an integer or a tuple of indices; got {position}")
    if isinstance(position, (int, np.integer)):
        if not 0 <= position < n:
            raise InputError(f"position must lie in [0, {n}); got {position}")
        return int(position)
    index = tuple(int(i) for i in position)
    if len(index) != len(shape) or any(not 0 <= i < s for i, s in zip(index, shape, strict=True)):
        raise InputError(f"position {index} is not an index of the scan of shape {shape}")
    return int(np.ravel_multi_index(index, shape))


def _curve(model, params: np.ndarray, status: int, chi: np.ndarray) -> np.ndarray:
    """The fitted curve on ``chi``; an ISOTROPIC fit is its linear background."""
    from pyscatter.kernels.fitting import FitStatus

    p = params.astype(float).copy()
    if status == FitStatus.ISOTROPIC:
        const, slope = (p[model.index(name)] for name in model.background)
        return const + slope * chi
    return model.func(chi, p[None, :])[0]


def plot_profile_fit(
    path: str | os.PathLike,
    position: int | Sequence[int],
    ring: int = 0,
    *,
    group: str | None = None,
    index: int = -1,
    ax=None,
):
    """A measured azimuthal profile with its sigma error bars and the fitted curve.

    Parameters
    ----------
    path : path
        The scan file.
    position : int or sequence of int
        Flat position index, or one index per position dim (slow to fast).
    ring : int
        Index of the ring (row of the profiles at that position).
    group : str, optional
        A ProfileFit results group (or an OrderParameter group: its fit); by default the
        ``index``-th ProfileFit group in file order.
    index : int
        Which ProfileFit group when ``group`` is not given (-1: the last).
    ax : matplotlib.axes.Axes, optional

    Returns
    -------
    matplotlib.figure.Figure
        The data are ``ax.containers[0]`` (an ErrorbarContainer: its line holds chi and the
        profile), the fitted curve ``ax.lines[-1]``; bins the fit excluded (``exclude_chi``)
        are marked with crosses.
    """
    from pyscatter.io.usid import dims_of
    from pyscatter.kernels.models import get_model
    from pyscatter.processes.fitting_worker import excluded_bins

    with _open(path) as h5:
        fit = _fit_group(h5, group, index)
        model = get_model(str(fit.attrs["model"]))
        profiles = h5[str(fit.attrs["source"])]
        spec = dims_of(profiles, "Spectroscopic")
        pos_dims = dims_of(profiles, "Position")
        chi = spec[-1].values
        n_rows = profiles.shape[1] // chi.size
        if not 0 <= int(ring) < n_rows:
            raise InputError(f"ring must lie in [0, {n_rows}); got {ring}")
        flat = _flat_position(position, tuple(len(d) for d in pos_dims))
        row = slice(int(ring) * chi.size, (int(ring) + 1) * chi.size)
        y = profiles[flat, row].astype(float)
        fit_params = json.loads(fit.attrs["parameters"])
        sigma_path = fit_params.get("sigma_dataset")
        excluded = excluded_bins(chi, fit_params.get("exclude_chi"))
        sigma = h5[sigma_path][flat, row].astype(float) if sigma_path else None
        params = np.array([fit[name][flat, int(ring)] for name in model.param_names], dtype=float)
        status = int(fit["status"][flat, int(ring)])
        r2 = float(fit["R2"][flat, int(ring)])
        units = str(profiles.attrs.get("units", ""))
        place, ring_label = _where_labels(pos_dims, spec, flat, int(ring))
    fig, ax = new_axes(ax, figsize=(7.0, 4.2))
    ax.errorbar(chi, y, yerr=sigma, fmt="o", ms=3, lw=0.8, color="0.3", label="measured")
    if excluded.any():  # bins left out of the fit, marked over the data
        ax.plot(chi[excluded], y[excluded], "x", color="C1", ms=5, label="excluded from the fit")
    fine = np.linspace(chi.min(), chi.max(), 8 * chi.size + 1)
    curve = _curve(model, params, status, fine)
    ax.plot(fine, curve, "-", color="C3", label=_fit_label(model, params, status, r2))
    ax.set_xlabel("chi (deg)")
    ax.set_ylabel(f"Intensity ({units})" if units else "Intensity")
    ax.set_title(f"{place}; {ring_label}", fontsize=9)
    ax.legend(fontsize=8)
    return fig


def _where_labels(pos_dims: list, spec: list, flat: int, ring: int) -> tuple[str, str]:
    """The position (``Y = 1 mm, X = 2 mm``) and the ring of one profile, as plot titles say."""
    where = np.unravel_index(flat, tuple(len(d) for d in pos_dims))
    place = ", ".join(
        f"{d.name} = {d.values[i]:.4g} {d.units}" for d, i in zip(pos_dims, where, strict=True)
    )
    ring_label = (
        f"{spec[0].name} = {spec[0].values[ring]:.4g} {spec[0].units}"
        if len(spec) == 2
        else f"profile {ring}"
    )
    return place, ring_label


def _fit_label(model, params: np.ndarray, status: int, r2: float) -> str:
    """Legend of a fitted curve: model, status, strength and centre, R2."""
    from pyscatter.kernels.fitting import FitStatus

    shown = ", ".join(
        f"{n} = {v:.4g}"
        for n, v in zip(model.param_names, params, strict=True)
        if n in (model.strength, model.center) and np.isfinite(v)
    )
    label = f"{model.name} fit ({FitStatus(status).name}" + (f", {shown}" if shown else "")
    return label + (f", R2 = {r2:.4f})" if np.isfinite(r2) else ")")


#: At most this many maps per figure kind when a scan has more than two position dims
MAX_SLICES = 16


def _slices(ds, var: str) -> list[dict[str, int]]:
    """Index dicts of the leading position dims so that two remain (all of them, capped)."""
    import itertools

    dims = [d for d in ds[var].dims if d not in ("ring", "profile")]
    lead = dims[:-2]
    ranges = [range(ds.sizes[d]) for d in lead]
    combos = [dict(zip(lead, c, strict=True)) for c in itertools.product(*ranges)]
    return combos[:MAX_SLICES]


def write_orientation_figures(
    path: str | os.PathLike,
    *,
    group: str | None = None,
    out_dir: str | os.PathLike | None = None,
    positions: Sequence[int] | None = None,
    ring: int = 0,
    dpi: int = 120,
) -> list[str]:
    """Write the S map, the director map and profile + fit overlays of an OrderParameter run.

    Parameters
    ----------
    path : path
        The scan file.
    group : str, optional
        The OrderParameter results group (default: the last in the file).
    out_dir : path, optional
        Where the PNGs go (default: beside the file), named ``<file stem>_S_ring<r>.png``,
        ``<stem>_director_ring<r>.png`` and ``<stem>_fit_pos<k>_ring<r>.png`` (a suffix such
        as ``_Field2`` per map of a scan with more than two position dims).
    positions : sequence of int, optional
        Flat position indices of the profile figures (default: first, middle and last).
    ring : int
    dpi : int

    Returns
    -------
    list of str
        The files written.
    """
    from pathlib import Path

    from pyscatter.io.results import find_results
    from pyscatter.io.xarray import to_xarray

    path = Path(path)
    with _open(path) as h5:
        groups = [g.name for g in find_results(h5, "OrderParameter")]
    if not groups:
        raise InputError(f"{path}: no OrderParameter results to plot")
    name = group if group is not None else groups[-1]
    if name not in groups:
        raise InputError(f"{path}: {name} is not an OrderParameter results group")
    ds = to_xarray(path, "OrderParameter", index=groups.index(name))
    n_rings = ds.sizes.get("ring", 1)
    if not 0 <= ring < n_rings:
        raise InputError(f"ring must lie in [0, {n_rings}); got {ring}")
    out = Path(out_dir) if out_dir is not None else path.parent
    out.mkdir(parents=True, exist_ok=True)
    stem = path.stem
    written: list[str] = []

    def save(fig, filename: str) -> None:
        target = out / filename
        fig.savefig(target, dpi=dpi)
        written.append(str(target))

    pos_dims = [d for d in ds["S"].dims if d not in ("ring", "profile")]
    for sel in _slices(ds, "S"):
        suffix = "".join(f"_{d}{i}" for d, i in sel.items())
        save(plot_map(ds, "S", ring=ring, isel=sel), f"{stem}_S_ring{ring}{suffix}.png")
        if len(pos_dims) >= 2:
            fig = plot_director_map(ds, ring=ring, isel=sel)
            save(fig, f"{stem}_director_ring{ring}{suffix}.png")
    n_pos = int(np.prod([ds.sizes[d] for d in pos_dims]))
    if positions is None:
        positions = sorted({0, n_pos // 2, n_pos - 1})
    for k in positions:
        fig = plot_profile_fit(path, int(k), ring, group=name)
        save(fig, f"{stem}_fit_pos{int(k)}_ring{ring}.png")
    return written
