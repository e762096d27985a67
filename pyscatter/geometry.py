"""Geometry on pyFAI integrators: hkl to q, the beam centre, q∥/q⊥ maps and their regridding.

Pure functions of a pyFAI ``AzimuthalIntegrator`` (or of lattice parameters): no h5py, no
paths except a CIF file to read. Angles follow pyFAI: ``chi`` in degrees, 0 along the detector
columns (increasing ``col``), 90 along the rows (increasing ``row``), in (-180, 180].

Conventions
-----------
- Crystallographic lengths are in Ångström and angles in degrees (pyFAI's
  :class:`pyFAI.calibrant.Cell`, which computes d-spacings here); ``q = 2π / d`` is returned
  in the unit asked, ``"q_nm^-1"`` (10·2π/d[Å]) or ``"q_A^-1"`` (2π/d[Å]).
- Pixel coordinates are array indices as floats: pixel ``(i, j)`` has its centre at
  ``(i, j)`` (pyFAI's ``qFunction(d1, d2)`` convention), so ``(row, col)`` of the direct beam is
  pyFAI's Fit2D centre minus half a pixel.
- The scattering vector ``q = k_f − k_i`` with ``k_i`` along the beam has a transverse part
  (perpendicular to the beam) of length ``|q| cos θ`` (θ half the scattering angle) pointing at
  the azimuth ``chi``; :func:`q_parallel_perpendicular` splits that transverse part along and
  across a director direction.

Building a pyFAI integrator from a geometry config, checking a geometry and converting a
Fit2D calibration are in :mod:`pyscatter.geometry_config` (all importable from here too).

Examples
--------
>>> from pyscatter.geometry import d_spacing, hkl_to_q
>>> round(float(d_spacing((1, 1, 1), lattice={"a": 5.411})[0]), 4)  # CeO2
3.124
>>> round(float(hkl_to_q((1, 1, 1), lattice={"a": 5.411}, unit="q_A^-1")[0]), 4)
2.0112
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pyscatter.errors import FileFormatError, InputError
from pyscatter.geometry_config import (
    FIT2D_KEYS,
    GEOMETRY_LIMITS,
    check_geometry,
    fit2d_config,
    fit2d_geometry,
    integrator_from_config,
    integrator_from_numbers,
    short_error,
)
from pyscatter.kernels.checks import check_frame_shape

__all__ = [
    "FIT2D_KEYS",
    "GEOMETRY_LIMITS",
    "LATTICE_KEYS",
    "Q_UNITS",
    "QMap",
    "beam_center",
    "cell_parameters",
    "check_geometry",
    "d_spacing",
    "fit2d_config",
    "fit2d_geometry",
    "hkl_to_q",
    "integrator_from_config",
    "integrator_from_numbers",
    "q_map",
    "q_parallel_perpendicular",
    "ring_ranges",
    "short_error",
]

LATTICE_KEYS = ("a", "b", "c", "alpha", "beta", "gamma")
"""Lattice parameters: lengths a, b, c (Å) and angles alpha, beta, gamma (degrees)."""

Q_UNITS = {"q_nm^-1": 10.0, "q_A^-1": 1.0}
"""q units (pyFAI names) and the factor turning 2π/d[Å] into them."""


# --------------------------------------------------------------------------- lattices


def cell_parameters(
    lattice: Mapping[str, float] | None = None, cif: str | Path | None = None
) -> dict[str, float]:
    """Lattice parameters from a dict or a CIF file (read with ASE), checked.

    Parameters
    ----------
    lattice : mapping, optional
        Keys among :data:`LATTICE_KEYS`: ``a`` is required; ``b`` and ``c`` default to ``a``
        and the angles to 90 (so ``{"a": 5.431}`` is a cubic cell). Lengths in Å, angles in
        degrees.
    cif : path, optional
        A CIF file; its cell is read by ``ase.io.read`` (never parsed here). Exactly one of
        ``lattice`` and ``cif`` is given.

    Returns
    -------
    dict
        ``{"a", "b", "c", "alpha", "beta", "gamma"}`` as floats.

    Raises
    ------
    InputError
        Neither or both given, unknown keys, non-positive lengths, angles outside (0, 180) or
        angles that make no cell.
    FileFormatError
        A CIF file that is missing or that ASE cannot read.
    """
    if (lattice is None) == (cif is None):
        raise InputError("give the lattice parameters either as lattice={'a': ...} or as cif=FILE")
    if cif is not None:
        values = _read_cif(Path(cif))
    else:
        if not isinstance(lattice, Mapping):
            raise InputError(
                f"lattice must be a mapping with keys among {', '.join(LATTICE_KEYS)}; got {lattice!r}"
            )
        unknown = sorted(set(lattice) - set(LATTICE_KEYS))
        if unknown:
            raise InputError(
                f"lattice has unknown keys {unknown}; expected among {', '.join(LATTICE_KEYS)}"
            )
        if "a" not in lattice:
            raise InputError(f"lattice needs at least 'a' (Å); got {dict(lattice)!r}")
        a = lattice["a"]
        values = {
            "a": a,
            "b": lattice.get("b", a),
            "c": lattice.get("c", a),
            "alpha": lattice.get("alpha", 90.0),
            "beta": lattice.get("beta", 90.0),
            "gamma": lattice.get("gamma", 90.0),
        }
    out: dict[str, float] = {}
    for key in LATTICE_KEYS:
        try:
            value = float(values[key])
        except (TypeError, ValueError):
            raise InputError(
                f"lattice parameter {key} must be a number; got {values[key]!r}"
            ) from None
        length = key in ("a", "b", "c")
        if not math.isfinite(value) or value <= 0 or (not length and value >= 180):
            allowed = "a finite length > 0 (Å)" if length else "an angle in (0, 180) degrees"
            raise InputError(f"lattice parameter {key} must be {allowed}; got {value!r}")
        out[key] = value
    ca, cb, cg = (math.cos(math.radians(out[k])) for k in ("alpha", "beta", "gamma"))
    if 1 - ca * ca - cb * cb - cg * cg + 2 * ca * cb * cg <= 0:
        raise InputError(
            f"lattice angles alpha={out['alpha']}, beta={out['beta']}, gamma={out['gamma']} "
            "make no cell (zero or imaginary volume)"
        )
    return out


def _read_cif(path: Path) -> dict[str, float]:
    if not path.is_file():
        raise FileFormatError(f"CIF file not found: {path}")
    try:
        import ase.io
    except ImportError as err:  # pragma: no cover
        raise InputError(f"reading {path} needs ASE (pip install ase)") from err
    try:
        atoms = ase.io.read(str(path), format="cif")
    except Exception as err:
        raise FileFormatError(f"{path}: not a CIF file ASE can read ({err})") from err
    if isinstance(atoms, list):  # several data blocks: the first
        atoms = atoms[0]
    cellpar = np.asarray(atoms.cell.cellpar(), dtype=np.float64)
    return dict(zip(LATTICE_KEYS, (float(v) for v in cellpar), strict=True))


def _hkl_array(hkl: Any) -> np.ndarray:
    arr = np.asarray(hkl)
    if arr.ndim == 1:
        arr = arr[None, :]
    ok = arr.ndim == 2 and arr.shape[1] == 3 and arr.shape[0] > 0
    if ok and not np.issubdtype(arr.dtype, np.integer):
        try:
            ok = np.issubdtype(arr.dtype, np.number) and bool(np.all(arr == np.round(arr)))
        except TypeError:
            ok = False
    if not ok:
        raise InputError(f"hkl must be 3 integers or a sequence of them; got {hkl!r}")
    arr = arr.astype(np.int64)
    if np.any(np.all(arr == 0, axis=1)):
        raise InputError("hkl (0, 0, 0) has no d-spacing")
    return arr


def d_spacing(
    hkl: Any, *, lattice: Mapping[str, float] | None = None, cif: str | Path | None = None
) -> np.ndarray:
    """Interplanar spacings d_hkl (Å) of a cell, by pyFAI's :class:`pyFAI.calibrant.Cell`.

    Parameters
    ----------
    hkl : array_like of int, shape (3,) or (n, 3)
        Miller indices.
    lattice, cif
        The cell, see :func:`cell_parameters`.

    Returns
    -------
    ndarray, shape (n,), float64
        d in Å (one value per reflection, also for a single hkl).

    Raises
    ------
    InputError
        Bad Miller indices or cell.

    Examples
    --------
    >>> round(float(d_spacing((2, 2, 0), lattice={"a": 5.431})[0]), 4)  # Si
    1.9201
    """
    from pyFAI.calibrant import Cell

    indices = _hkl_array(hkl)
    p = cell_parameters(lattice, cif)
    orthogonal = all(p[k] == 90.0 for k in ("alpha", "beta", "gamma"))
    cell = Cell(
        p["a"],
        p["b"],
        p["c"],
        p["alpha"],
        p["beta"],
        p["gamma"],
        lattice="orthorhombic" if orthogonal else "triclinic",
    )
    return np.array([cell.d(tuple(int(i) for i in row)) for row in indices], dtype=np.float64)


def _check_q_unit(unit: str) -> float:
    if unit not in Q_UNITS:
        raise InputError(f"unsupported unit {unit!r}; expected one of {', '.join(Q_UNITS)}")
    return Q_UNITS[unit]


def hkl_to_q(
    hkl: Any,
    *,
    lattice: Mapping[str, float] | None = None,
    cif: str | Path | None = None,
    unit: str = "q_nm^-1",
) -> np.ndarray:
    """q = 2π / d_hkl of reflections of a cell, in ``unit``.

    Parameters
    ----------
    hkl, lattice, cif
        Miller indices and the cell, as in :func:`d_spacing`.
    unit : {"q_nm^-1", "q_A^-1"}
        Unit of the result.

    Returns
    -------
    ndarray, shape (n,), float64

    Raises
    ------
    InputError
        Bad Miller indices, cell or unit.

    Examples
    --------
    >>> round(float(hkl_to_q((1, 0, 0), lattice={"a": 2 * 3.141592653589793})[0]), 6)
    10.0
    """
    factor = _check_q_unit(unit)
    return factor * 2.0 * np.pi / d_spacing(hkl, lattice=lattice, cif=cif)


# --------------------------------------------------------------------------- detector maps


def beam_center(ai: Any) -> tuple[float, float]:
    """Where the direct beam meets the detector, as float array coordinates (row, col).

    Pixel ``(i, j)`` has its centre at ``(i, j)``; with tilts the beam centre differs from the
    PONI. Taken from pyFAI's Fit2D conversion (``ai.getFit2D()``, whose pixel centres are at
    ``i + 0.5``).

    Parameters
    ----------
    ai : pyFAI.integrator.azimuthal.AzimuthalIntegrator

    Returns
    -------
    (float, float)
        (row, col) of the beam centre.
    """
    fit2d = ai.getFit2D()
    return float(fit2d["centerY"]) - 0.5, float(fit2d["centerX"]) - 0.5


def q_parallel_perpendicular(
    ai: Any,
    shape: tuple[int, int],
    *,
    director_deg: float = 0.0,
    unit: str = "q_nm^-1",
) -> tuple[np.ndarray, np.ndarray]:
    """Transverse components of q at every pixel, along and across a director.

    With θ half the scattering angle and χ pyFAI's azimuth of the pixel centre, the part of
    the scattering vector perpendicular to the incident beam has length ``|q| cos θ`` and points
    at χ; its components along the in-plane direction at ``director_deg`` and across it are::

        q_par  = |q| cos θ cos(χ − director)
        q_perp = |q| cos θ sin(χ − director)

    so ``q_par² + q_perp² = |q|² cos² θ`` exactly (about ``|q|²`` at small angles; the rest of q,
    ``−|q| sin θ``, lies along the beam). ``q_perp > 0`` is towards increasing χ.

    Parameters
    ----------
    ai : pyFAI.integrator.azimuthal.AzimuthalIntegrator
    shape : (int, int)
        Frame shape (n_row, n_col).
    director_deg : float
        Direction of ``q_par`` (degrees, pyFAI's chi convention).
    unit : {"q_nm^-1", "q_A^-1"}

    Returns
    -------
    q_par, q_perp : ndarray, shape (n_row, n_col), float64
        In ``unit``, at the pixel centres.

    Raises
    ------
    InputError
        Bad shape, unit or director.
    """
    _check_q_unit(unit)
    shape = check_frame_shape(shape)
    if not math.isfinite(float(director_deg)):
        raise InputError(f"director_deg must be a finite angle; got {director_deg!r}")
    q = np.asarray(ai.center_array(shape, unit=unit), dtype=np.float64)
    two_theta = np.asarray(ai.center_array(shape, unit="2th_rad"), dtype=np.float64)
    chi = np.asarray(ai.center_array(shape, unit="chi_rad"), dtype=np.float64)
    transverse = q * np.cos(0.5 * two_theta)
    angle = chi - math.radians(float(director_deg))
    return transverse * np.cos(angle), transverse * np.sin(angle)


@dataclass(frozen=True)
class QMap:
    """Frames regridded on a (q_perp, q_par) grid.

    Attributes
    ----------
    intensity : ndarray, shape (..., n_perp, n_par), float64
        Mean corrected intensity of the valid pixels whose centre falls in each bin; NaN for
        bins without any.
    count : ndarray, shape (..., n_perp, n_par), int64
        Valid pixels per bin (per frame).
    q_perp, q_par : ndarray, shape (n_perp,), (n_par,), float64
        Bin centres in ``unit``.
    q_perp_edges, q_par_edges : ndarray, shape (n_perp + 1,), (n_par + 1,), float64
        Bin edges.
    unit : str
    director_deg : float
    """

    intensity: np.ndarray
    count: np.ndarray
    q_perp: np.ndarray
    q_par: np.ndarray
    q_perp_edges: np.ndarray
    q_par_edges: np.ndarray
    unit: str
    director_deg: float


def _bin_index(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Bin of each value as numpy.histogram does (right edge in the last bin); -1 outside."""
    idx = np.searchsorted(edges, values, side="right") - 1
    idx[values == edges[-1]] = edges.size - 2
    idx[(values < edges[0]) | (values > edges[-1]) | ~np.isfinite(values)] = -1
    return idx


def _q_map_inputs(
    frames: Any, npt: Any, polarization_factor: float | None
) -> tuple[np.ndarray, tuple[int, int], tuple[int, int]]:
    """The frames as an array, their frame shape and the bins (n_perp, n_par), checked."""
    arr = np.asarray(frames)
    if arr.ndim < 2 or not (
        np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)
    ):
        raise InputError(
            f"frames must be numeric with shape (..., n_row, n_col); got {arr.shape} {arr.dtype}"
        )
    shape = check_frame_shape(arr.shape[-2:])
    try:
        sizes = [int(v) for v in np.broadcast_to(np.asarray(npt), (2,))]
    except (TypeError, ValueError):
        raise InputError(f"npt must be one or two bin counts; got {npt!r}") from None
    n_perp, n_par = sizes
    if n_perp < 1 or n_par < 1:
        raise InputError(f"npt must be positive bin counts; got {npt!r}")
    if polarization_factor is not None and not -1 <= float(polarization_factor) <= 1:
        raise InputError(f"polarization_factor must lie in [-1, 1]; got {polarization_factor}")
    return arr, shape, (n_perp, n_par)


def _pixel_correction(
    ai: Any, shape: tuple[int, int], solid_angle: bool, polarization_factor: float | None
) -> np.ndarray:
    """pyFAI's relative solid angle and/or polarization of every pixel (ones without either)."""
    correction = np.ones(shape, dtype=np.float64)
    if solid_angle:
        correction *= ai.solidAngleArray(shape)
    if polarization_factor is not None:
        correction *= ai.polarization(shape, float(polarization_factor))
    return correction


# over 80 lines: a 37-line docstring; the code is ~55 lines
def q_map(
    frames: Any,
    ai: Any,
    *,
    npt: int | tuple[int, int] = 256,
    q_max: float | None = None,
    director_deg: float = 0.0,
    unit: str = "q_nm^-1",
    mask: np.ndarray | None = None,
    correct_solid_angle: bool = True,
    polarization_factor: float | None = None,
) -> QMap:
    """Regrid one or many frames onto a (q_perp, q_par) image.

    Each pixel centre is binned by its (q_perp, q_par) (:func:`q_parallel_perpendicular`) on
    a regular grid over [−q_max, q_max]², like :func:`numpy.histogram2d` with weights; a bin
    holds the mean corrected value of its valid pixels. No pixel splitting: bins finer than a
    pixel stay partly empty (NaN). One sparse (bins × pixels) matrix is built and applied to
    all frames at once.

    Parameters
    ----------
    frames : array_like, shape (n_row, n_col) or (..., n_row, n_col)
        Raw frames (never modified).
    ai : pyFAI.integrator.azimuthal.AzimuthalIntegrator
    npt : int or (int, int)
        Bins along (q_perp, q_par); one int for both.
    q_max : float, optional
        Half-width of the grid in ``unit``; default the largest ``|q| cos θ`` on the frame.
    director_deg : float
        Direction of q_par (degrees, pyFAI chi).
    unit : {"q_nm^-1", "q_A^-1"}
    mask : ndarray, shape (n_row, n_col), optional
        Non-zero for pixels to ignore; non-finite values are ignored too.
    correct_solid_angle : bool
        Divide by pyFAI's relative solid angle (``ai.solidAngleArray``).
    polarization_factor : float, optional
        Divide by pyFAI's polarization correction with this factor in [-1, 1].

    Returns
    -------
    QMap

    Raises
    ------
    InputError
        Frames of another shape than the mask or of fewer than 2 dims, bad npt, q_max or
        polarization factor.
    """
    arr, shape, (n_perp, n_par) = _q_map_inputs(frames, npt, polarization_factor)
    q_par, q_perp = q_parallel_perpendicular(ai, shape, director_deg=director_deg, unit=unit)
    if q_max is None:
        q_max = float(np.hypot(q_par, q_perp).max())
    if not (math.isfinite(float(q_max)) and float(q_max) > 0):
        raise InputError(f"q_max must be a positive number; got {q_max!r}")
    perp_edges = np.linspace(-float(q_max), float(q_max), n_perp + 1)
    par_edges = np.linspace(-float(q_max), float(q_max), n_par + 1)
    i_perp, i_par = _bin_index(q_perp.ravel(), perp_edges), _bin_index(q_par.ravel(), par_edges)
    usable = (i_perp >= 0) & (i_par >= 0)
    correction = _pixel_correction(ai, shape, correct_solid_angle, polarization_factor)
    if mask is not None:
        mask_arr = np.asarray(mask)
        if mask_arr.shape != shape:
            raise InputError(f"mask has shape {mask_arr.shape}; the frames are {shape}")
        usable &= mask_arr.ravel() == 0
    usable &= np.isfinite(correction.ravel()) & (correction.ravel() != 0)
    import scipy.sparse as sp

    pixels = np.flatnonzero(usable)
    bins = i_perp[pixels] * n_par + i_par[pixels]
    matrix = sp.csr_matrix(
        (np.ones(pixels.size), (bins, pixels)), shape=(n_perp * n_par, shape[0] * shape[1])
    )
    lead = arr.shape[:-2]
    flat = arr.reshape(-1, shape[0] * shape[1]).astype(np.float64)  # a copy: frames untouched
    flat /= correction.ravel()
    valid = np.isfinite(flat)
    flat[~valid] = 0
    sums = np.asarray(matrix @ flat.T).T
    count = np.rint(np.asarray(matrix @ valid.T.astype(np.float64)).T).astype(np.int64)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(count > 0, sums / count, np.nan)
    return QMap(
        intensity=mean.reshape(*lead, n_perp, n_par),
        count=count.reshape(*lead, n_perp, n_par),
        q_perp=0.5 * (perp_edges[1:] + perp_edges[:-1]),
        q_par=0.5 * (par_edges[1:] + par_edges[:-1]),
        q_perp_edges=perp_edges,
        q_par_edges=par_edges,
        unit=unit,
        director_deg=float(director_deg),
    )


def _check_q_ranges(q_range: Any) -> tuple[np.ndarray, np.ndarray]:
    """The lower and upper ends of ``q_range`` pairs, checked."""
    try:
        ranges = np.asarray(q_range, dtype=np.float64).reshape(-1, 2)
    except (TypeError, ValueError):
        raise InputError(f"q_range must be (lo, hi) pairs; got {q_range!r}") from None
    if ranges.size == 0 or not np.all(np.isfinite(ranges)) or np.any(ranges[:, 1] <= ranges[:, 0]):
        raise InputError(f"q_range must be finite (lo, hi) pairs with lo < hi; got {q_range!r}")
    if np.any(ranges[:, 1] <= 0):
        raise InputError(f"q_range upper ends must be > 0; got {q_range!r}")
    return ranges[:, 0], ranges[:, 1]


def _check_ring_centres(q: Any) -> np.ndarray:
    """Ring centres as a 1-d float array, finite and > 0."""
    try:
        centres = np.atleast_1d(np.asarray(q, dtype=np.float64)).ravel()
    except (TypeError, ValueError):
        raise InputError(f"q must be numbers; got {q!r}") from None
    if centres.size == 0 or not np.all(np.isfinite(centres)) or np.any(centres <= 0):
        raise InputError(f"q must be finite ring centres > 0; got {q!r}")
    return centres


def _check_ring_widths(width: Any, n: int, unit: str, way: str) -> np.ndarray:
    """``n`` half-widths from one value or one per ring, finite and > 0."""
    if width is None:
        raise InputError(f"width (half-width of each ring in {unit}) is required with {way}")
    try:
        halves = np.atleast_1d(np.asarray(width, dtype=np.float64)).ravel()
    except (TypeError, ValueError):
        raise InputError(f"width must be numbers; got {width!r}") from None
    if halves.size == 1:
        halves = np.repeat(halves, n)
    if halves.size != n:
        raise InputError(f"width must be one value or one per ring ({n}); got {halves.size}")
    if not np.all(np.isfinite(halves)) or np.any(halves <= 0):
        raise InputError(f"width must be finite and > 0; got {width!r}")
    return halves


def ring_ranges(
    *,
    q: Sequence[float] | float | None = None,
    width: Sequence[float] | float | None = None,
    q_range: Sequence[Sequence[float]] | None = None,
    hkl: Sequence[Sequence[int]] | None = None,
    lattice: Mapping[str, float] | None = None,
    cif: str | Path | None = None,
    unit: str = "q_nm^-1",
) -> list[dict[str, Any]]:
    """Rings [q − width, q + width] from centres, q ranges or reflections of a cell.

    Exactly one of ``q`` (with ``width``), ``q_range`` and ``hkl`` (with ``width`` and
    ``lattice`` or ``cif``) is given; ``width`` is one value or one per ring.

    Returns
    -------
    list of dict
        Per ring: ``q`` (centre), ``width`` (half-width), ``q_min``, ``q_max`` in ``unit`` and
        ``hkl`` (a list of 3 ints, or None).

    Raises
    ------
    InputError
        None or several ways given, a missing or non-positive width, a width list of another
        length, an empty or reversed range, a non-positive q.
    """
    _check_q_unit(unit)
    given = [name for name, v in (("q", q), ("q_range", q_range), ("hkl", hkl)) if v is not None]
    if len(given) != 1:
        raise InputError(
            "give the rings in exactly one way: q=[...] with width, q_range=[(lo, hi), ...], or "
            f"hkl=[(h, k, l), ...] with width and lattice/cif; got {', '.join(given) or 'none'}"
        )
    if (lattice is not None or cif is not None) and hkl is None:
        raise InputError("lattice and cif are only used with hkl=")
    hkls: list[list[int] | None]
    if q_range is not None:
        if width is not None:
            raise InputError("width is not used with q_range (each range is [lo, hi])")
        lows, highs = _check_q_ranges(q_range)
        centres, halves = 0.5 * (lows + highs), 0.5 * (highs - lows)
        hkls = [None] * len(centres)
    else:
        if hkl is not None:
            indices = _hkl_array(hkl)
            centres = hkl_to_q(indices, lattice=lattice, cif=cif, unit=unit)
            hkls = [[int(i) for i in row] for row in indices]
        else:
            centres = _check_ring_centres(q)
            hkls = [None] * len(centres)
        halves = _check_ring_widths(width, centres.size, unit, given[0])
        lows, highs = centres - halves, centres + halves
    return [
        {
            "q": float(c),
            "width": float(h),
            "q_min": float(lo),
            "q_max": float(hi),
            "hkl": k,
        }
        for c, h, lo, hi, k in zip(centres, halves, lows, highs, hkls, strict=True)
    ]
