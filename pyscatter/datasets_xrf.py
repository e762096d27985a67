"""Seeded X-ray fluorescence maps with known element areas: ground truth for the XRF fits.

Every position holds an MCA spectrum of counts::

    true(E) = sum_g truth_g A_g(E) + background(E) monitor / <monitor>
    measured ~ Poisson(true(E) live / real)

with ``A_g`` the columns of :func:`pyscatter.kernels.xrf_lines.design_matrix` (line groups of
the chosen elements, Gaussian peaks of the detector response), ``truth_g`` the group's area
over the real time (dead-time-corrected counts), proportional to the element's amount (a map
with spatial structure: gradients, blobs, a ring, stripes) and to the monitor; the dead time
percent varies over the map with the total count rate, ``real / live = 1 / (1 - percent / 100)``
exactly (a measurement thinned by the dead time keeps Poisson statistics). The background is a
smooth continuum (no elastic or Compton peak), vanishing above the excitation energy.

:func:`write_spec_mesh` writes a map as the SPEC file of a ``mesh`` scan with one ``@A``
spectrum per point, ``#@CALIB``, ``#@CHANN``, ``#@CTIME`` and the columns ``livetime``,
``realtime``, ``dt_percent``, ``I0``.

Examples
--------
>>> from pyscatter.datasets_xrf import xrf_map
>>> m = xrf_map((4, 5), n_channels=1024, gain_keV=0.02, seed=0)
>>> m.spectra.shape, m.spectra.dtype.name, sorted(m.truth)
((4, 5, 1024), 'uint32', ['Ca_K', 'Cu_K', 'Fe_K', 'Zn_K'])
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from pyscatter.errors import InputError
from pyscatter.kernels.xrf_lines import DetectorResponse, LineGroup, design_matrix, line_groups

__all__ = ["XrfMap", "element_patterns", "pymca_config", "write_spec_mesh", "xrf_map"]

FloatArray = NDArray[np.float64]


@dataclass
class XrfMap:
    """A synthetic fluorescence map and its truth.

    Attributes
    ----------
    spectra : ndarray
        (ny, nx, n_channels) uint32, counts as measured (thinned by the dead time).
    truth : dict of str to ndarray
        Group name (``"Fe_K"``) to its (ny, nx) true area over the real time: the fitted area
        times the dead-time factor estimates it.
    dead_time_percent, live_time, real_time, monitor : ndarray
        (ny, nx) float64 each; ``real_time / live_time = 1 / (1 - dead_time_percent / 100)``.
    energy_keV : ndarray
        (n_channels,) channel energies, ``a + b ch + c ch^2``.
    calibration : (float, float, float)
        ``(a, b, c)`` in keV.
    groups : list of LineGroup
        The line groups, in the order of ``truth``.
    response : DetectorResponse
        The detector response the spectra were drawn with.
    background : ndarray
        (n_channels,) expected background counts at the mean monitor (true, over the real time).
    excitation_keV : float
        The incident energy.
    """

    spectra: NDArray[np.uint32]
    truth: dict[str, FloatArray]
    dead_time_percent: FloatArray
    live_time: FloatArray
    real_time: FloatArray
    monitor: FloatArray
    energy_keV: FloatArray  # noqa: N815 - the unit is part of the name
    calibration: tuple[float, float, float]
    groups: list[LineGroup]
    response: DetectorResponse
    background: FloatArray
    excitation_keV: float = 17.0  # noqa: N815
    names: list[str] = field(default_factory=list)

    def dead_time_factor(self) -> FloatArray:
        """``real_time / live_time`` (ny, nx)."""
        return self.real_time / self.live_time


def element_patterns(shape: tuple[int, int], n: int, rng: np.random.Generator) -> FloatArray:
    """``n`` maps (n, ny, nx) of mean 1, each with spatial structure (its kind cycles through a
    gradient along x, Gaussian blobs, a ring and stripes along y)."""
    ny, nx = shape
    y, x = np.meshgrid(np.linspace(0, 1, ny), np.linspace(0, 1, nx), indexing="ij")
    out = np.empty((n, ny, nx))
    m: FloatArray
    for i in range(n):
        kind = i % 4
        if kind == 0:
            m = 0.3 + x + 0.2 * y
        elif kind == 1:
            m = np.full(shape, 0.15)
            for cy, cx, r in rng.uniform([0, 0, 0.08], [1, 1, 0.25], size=(3, 3)):
                m += np.exp(-((y - cy) ** 2 + (x - cx) ** 2) / (2 * r**2))
        elif kind == 2:
            cy, cx = rng.uniform(0.3, 0.7, size=2)
            rad = np.hypot(y - cy, x - cx)
            m = 0.2 + np.exp(-((rad - 0.3) ** 2) / (2 * 0.08**2))
        else:
            m = 0.4 + 0.6 * np.asarray(
                np.sin(2 * np.pi * (2 + i // 4) * y + rng.uniform(0, 2 * np.pi)) > 0,
                dtype=np.float64,
            )
        out[i] = m / m.mean()
    return out


def _continuum(energy: FloatArray, excitation_keV: float, level: float) -> FloatArray:
    """A smooth continuum of maximum ``level`` counts per channel, zero above the excitation."""
    e = np.clip(energy / excitation_keV, 0.0, 1.0)
    shape = e**1.5 * (1 - e) ** 1.2 + 0.05 * np.exp(-np.abs(energy) / 2.0)
    shape = np.where(energy > 0, shape, 0.0)
    peak = shape.max()
    return level * shape / peak if peak > 0 else shape


def _draw(
    rng: np.random.Generator,
    areas: FloatArray,
    design: FloatArray,
    background: FloatArray,
    scale: FloatArray,
    thin: FloatArray,
) -> NDArray[np.uint32]:
    """Poisson counts (ny, nx, n_channels) of ``(areas . design + background scale) thin``, a
    row of the map at a time (the expected counts of a whole map would be large)."""
    ny, nx = thin.shape
    spectra = np.empty((ny, nx, design.shape[0]), dtype=np.uint32)
    for iy in range(ny):
        lam = (areas[:, iy].T @ design.T + background[None, :] * scale[iy][:, None]) * thin[iy][
            :, None
        ]
        spectra[iy] = rng.poisson(lam)
    return spectra


def _check(
    shape: tuple[int, int], n_channels: int, gain_keV: float, dead: tuple[float, float]
) -> None:
    if len(shape) != 2 or min(shape) < 1:
        raise InputError(f"shape: expected (ny, nx) >= 1, got {shape!r}")
    if n_channels < 16:
        raise InputError(f"n_channels: expected >= 16, got {n_channels!r}")
    if not gain_keV > 0:
        raise InputError(f"gain_keV: expected > 0, got {gain_keV!r}")
    lo, hi = dead
    if not 0 <= lo <= hi < 100:
        raise InputError(f"dead_time_percent: expected 0 <= lo <= hi < 100, got {dead!r}")


def xrf_map(
    shape: tuple[int, int] = (32, 48),
    *,
    n_channels: int = 2048,
    gain_keV: float = 0.01,
    offset_keV: float = 0.0,
    quadratic_keV: float = 0.0,
    elements: Sequence[str] = ("Ca", "Fe", "Cu", "Zn"),
    excitation_keV: float = 17.0,
    energy_range_keV: tuple[float, float | None] = (1.5, None),
    response: DetectorResponse | None = None,
    mean_counts: float | Sequence[float] = 20_000.0,
    dead_time_percent: tuple[float, float] = (2.0, 25.0),
    background: float = 20.0,
    monitor: float = 1e5,
    real_time: float = 1.0,
    seed: int = 0,
) -> XrfMap:
    """A seeded XRF map: Poisson MCA spectra of known element areas, background and dead time.

    Parameters
    ----------
    shape : (int, int)
        (ny, nx) positions.
    n_channels, gain_keV, offset_keV, quadratic_keV
        The MCA: channel ``ch`` at ``offset + gain ch + quadratic ch^2`` keV.
    elements : sequence of str
        Elements or element families (:func:`~pyscatter.kernels.xrf_lines.line_groups`); every
        group found gets a map.
    excitation_keV : float
        Incident energy.
    energy_range_keV : (float, float or None)
        The lines kept (:func:`~pyscatter.kernels.xrf_lines.line_groups`); the default keeps the
        K groups of the default elements (Zn L at 1.01 keV left out).
    response : DetectorResponse, optional
        Peak widths, escape peaks (default :class:`DetectorResponse`).
    mean_counts : float or sequence of float
        Mean true area per position of each group (one value for all, or one per group).
    dead_time_percent : (float, float)
        Range of the dead time over the map; it follows the total count rate.
    background : float
        Maximum of the continuum, true counts per channel at the mean monitor.
    monitor : float
        Mean incident monitor counts (``I0``), drifting by a few percent along the scan.
    real_time : float
        Counting time per point, seconds.
    seed : int
        Seed of every random draw (patterns and counts).

    Returns
    -------
    XrfMap
    """
    _check((int(shape[0]), int(shape[1])), n_channels, gain_keV, dead_time_percent)
    response = DetectorResponse() if response is None else response
    rng = np.random.default_rng(seed)
    calibration = (float(offset_keV), float(gain_keV), float(quadratic_keV))
    ch = np.arange(n_channels, dtype=np.float64)
    energy = calibration[0] + calibration[1] * ch + calibration[2] * ch**2
    groups = line_groups(
        list(elements), excitation_keV=excitation_keV, energy_range_keV=energy_range_keV
    )
    names = [g.name for g in groups]
    means = np.asarray(mean_counts, dtype=np.float64)
    if means.shape not in ((), (len(groups),)) or not (means > 0).all():
        raise InputError(
            f"mean_counts: expected a positive number or {len(groups)} ({names}), got {mean_counts!r}"
        )
    means = np.broadcast_to(means, (len(groups),))
    design = design_matrix(energy, groups, response)
    ny, nx = shape
    t = np.arange(ny * nx, dtype=np.float64).reshape(ny, nx) / max(ny * nx - 1, 1)
    mon = monitor * (1 + 0.03 * np.sin(2 * np.pi * 1.5 * t) + 0.01 * rng.standard_normal((ny, nx)))
    areas = element_patterns((ny, nx), len(groups), rng) * means[:, None, None]
    areas *= (mon / mon.mean())[None]
    bg = _continuum(energy, excitation_keV, background)
    rate = areas.sum(axis=0) + bg.sum() * mon / mon.mean()
    lo, hi = dead_time_percent
    span = rate.max() - rate.min()
    dead = np.full((ny, nx), lo) if span == 0 else lo + (hi - lo) * (rate - rate.min()) / span
    real = np.full((ny, nx), float(real_time))
    live = real * (1 - dead / 100)
    spectra = _draw(rng, areas, design, bg, mon / mon.mean(), live / real)
    return XrfMap(
        spectra=spectra,
        truth={name: areas[i] for i, name in enumerate(names)},
        dead_time_percent=dead,
        live_time=live,
        real_time=real,
        monitor=mon,
        energy_keV=energy,
        calibration=calibration,
        groups=groups,
        response=response,
        background=bg,
        excitation_keV=float(excitation_keV),
        names=names,
    )


def _mca_lines(counts: NDArray[np.uint32], per_line: int = 16) -> list[str]:
    """``@A`` line of one spectrum, wrapped with backslash continuations as SPEC writes it."""
    text = [str(int(v)) for v in counts]
    rows = [" ".join(text[i : i + per_line]) for i in range(0, len(text), per_line)]
    return ["@A " + "\\\n".join(rows)]


def write_spec_mesh(path: str | os.PathLike[str], xrf: XrfMap, *, scan_number: int = 1) -> Path:
    """Write ``xrf`` as the SPEC file of a mesh scan with an MCA spectrum per point.

    The scan is ``mesh samx 0 nx-1 nx-1 samy 0 ny-1 ny-1 1`` (``samx`` fastest, one unit per
    step), with ``#@MCA``, ``#@CHANN n 0 n-1 1``, ``#@CALIB a b c`` and ``#@CTIME`` (preset,
    live and real time of the first point: SPEC writes these per scan) in the header and the
    per-point columns ``samx samy livetime realtime dt_percent I0 Seconds`` in ``#L``; every
    point's data line is followed by its ``@A`` spectrum (16 counts a line, backslash
    continuations).

    Parameters
    ----------
    path : path-like
        The file written (replaced if it exists).
    xrf : XrfMap
        The map (:func:`xrf_map`).
    scan_number : int
        The ``#S`` number.

    Returns
    -------
    Path
        ``path``.
    """
    path = Path(path)
    ny, nx, n = xrf.spectra.shape
    a, b, c = xrf.calibration
    head = [
        f"#F {path.name}",
        "#E 1765000000",
        "#D Sun Dec 06 12:00:00 2026",
        "#C pyscatter synthetic XRF map (pyscatter.datasets_xrf)",
        "#O0 samx  samy",
        "",
        f"#S {scan_number}  mesh  samx 0 {nx - 1} {nx - 1}  samy 0 {ny - 1} {ny - 1}  {xrf.real_time.flat[0]:g}",
        "#D Sun Dec 06 12:00:00 2026",
        f"#T {xrf.real_time.flat[0]:g}  (Seconds)",
        "#P0 0 0",
        f"#C excitation {xrf.excitation_keV:g} keV; elements {' '.join(xrf.names)}",
        "#@MCA %16C",
        f"#@CHANN {n} 0 {n - 1} 1",
        f"#@CALIB {a:.10g} {b:.10g} {c:.10g}",
        f"#@CTIME {xrf.real_time.flat[0]:.6g} {xrf.live_time.flat[0]:.6g} {xrf.real_time.flat[0]:.6g}",
        "#N 7",
        "#L samx  samy  livetime  realtime  dt_percent  I0  Seconds",
    ]
    body = []
    for iy in range(ny):
        for ix in range(nx):
            body.append(
                f"{ix:g} {iy:g} {xrf.live_time[iy, ix]:.10g} {xrf.real_time[iy, ix]:.10g} "
                f"{xrf.dead_time_percent[iy, ix]:.10g} {xrf.monitor[iy, ix]:.10g} "
                f"{xrf.real_time[iy, ix]:.10g}"
            )
            body.extend(_mca_lines(xrf.spectra[iy, ix]))
    path.write_text("\n".join(head + body) + "\n\n")
    return path


def pymca_config(
    xrf: XrfMap, *, first: int, last: int, snip_width: int, smooth_width: int = 1
) -> dict[str, Any]:
    """PyMca's fast-linear-fit configuration of ``xrf``'s line groups and detector, set up as
    pyscatter's fit: Gaussian lines (no hypermet tails), SNIP without LLS after
    ``smooth_width`` channels of smoothing (1: none), no escape, sum or scatter peaks, no
    attenuators, unweighted, the detector calibration and width fixed, channels
    ``first``..``last`` fitted. For comparing with PyMca (the ``xrf`` extra); imports it.
    """
    from PyMca5.PyMcaPhysics.xrf import ClassMcaTheory

    config = ClassMcaTheory.McaTheory().getConfiguration()
    peaks: dict[str, list[str]] = {}
    for g in xrf.groups:
        peaks.setdefault(g.element, []).append(g.family)
    config["peaks"] = {k: v[0] if len(v) == 1 else v for k, v in peaks.items()}
    config["fit"].update(
        energy=[xrf.excitation_keV],
        energyflag=[1],
        energyweight=[1.0],
        energyscatter=[0],
        scatterflag=0,
        hypermetflag=1,  # Gaussians only
        escapeflag=0,
        sumflag=0,
        stripflag=1,
        stripalgorithm=1,  # SNIP
        snipwidth=int(snip_width),
        stripfilterwidth=int(smooth_width),
        linearfitflag=1,
        continuum=0,
        fitweight=0,
        xmin=int(first),
        xmax=int(last),
    )
    r = xrf.response
    config["detector"].update(
        zero=xrf.calibration[0],
        gain=xrf.calibration[1],
        noise=r.noise_keV,
        fano=r.fano,
        fixedzero=1,
        fixedgain=1,
        fixednoise=1,
        fixedfano=1,
    )
    return config
