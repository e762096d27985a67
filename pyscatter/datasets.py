"""Seeded synthetic scattering scans with known ground truth.

Every factory here builds a :class:`SyntheticScan`: a stack of detector frames (one per scan
position) of a small Pilatus-like detector, computed from a real pyFAI geometry, with the answer
stored beside the data (ring positions, Maier-Saupe ``kappa``, director and order parameter at
every position). They are the default data of ``pyscatter demo`` and the basis of many tests.

The model of the expected counts of pixel ``(row, col)`` at position ``p`` is::

    (background(q) + sum_rings amplitude * exp(-(q - q_nm)**2 / (2 width_nm**2)) * g_p(chi))
        * solid_angle(row, col) * polarization(row, col)

with ``q`` (nm^-1) and ``chi`` (degrees, pyFAI convention) taken from the pyFAI integrator of the
geometry, the solid angle relative to the PONI pixel (``ai.solidAngleArray``) and the polarization
factor :data:`POLARIZATION_FACTOR` (``ai.polarization``). ``g_p = 1`` for isotropic rings and
``g_p(chi) = exp(kappa_p cos^2(chi - director_p)) / <exp(kappa_p cos^2)>`` for oriented rings, so
that its mean over the circle is 1 and the azimuthally integrated I(q), corrected for solid angle
and polarization, is ``background(q) + sum_rings amplitude * gauss`` whatever ``kappa``.
Counts are Poisson draws from ``numpy.random.default_rng(rng)``; masked pixels (beamstop with its
arm, a horizontal module gap) hold -1. The geometry, the rings and the expected counts are in
:mod:`pyscatter.datasets_model` (its public names are importable from here too).

Examples
--------
>>> from pyscatter.datasets import demo_scan
>>> scan = demo_scan()
>>> scan.frames.shape == (*scan.scan_shape, *scan.frame_shape)
True
>>> scan.dims
('Y', 'X')
"""

from __future__ import annotations

import csv
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from pyscatter.datasets_model import (
    BEAMSTOP_ARM_CHI_DEG,
    BEAMSTOP_ARM_WIDTH_MM,
    BEAMSTOP_Q_NM,
    DEFAULT_RINGS,
    PIXEL_SIZE,
    POLARIZATION_FACTOR,
    Q_MAX_NM,
    WAVELENGTH,
    Ring,
    build_integrator,
    default_poni,
    detector_mask,
    expected_counts,
    order_parameter_from_kappa,
    pixel_maps,
    ring_sum,
    saxs_background,
)
from pyscatter.errors import ExistingResultsError, InputError

if TYPE_CHECKING:
    from pyFAI.integrator.azimuthal import AzimuthalIntegrator

__all__ = [
    "BEAMSTOP_ARM_CHI_DEG",
    "BEAMSTOP_ARM_WIDTH_MM",
    "BEAMSTOP_Q_NM",
    "DEFAULT_RINGS",
    "IMAGE_FORMATS",
    "PIXEL_SIZE",
    "POLARIZATION_FACTOR",
    "Q_MAX_NM",
    "WAVELENGTH",
    "Ring",
    "SyntheticScan",
    "demo_scan",
    "field_series",
    "make_scan",
    "order_parameter_from_kappa",
    "oriented_map",
    "saxs_background",
]

#: Image formats :meth:`SyntheticScan.write_images` writes (fabio classes).
IMAGE_FORMATS = ("edf", "cbf", "tif")

_DEFAULT_DIMS = {
    1: ("X",),
    2: ("Y", "X"),
    3: ("Field", "Y", "X"),
    4: ("Temperature", "Field", "Y", "X"),
}
# name: (unit, start, step) of the motor-like default coordinates; steps differ between dims so
# that swapped dimensions are visible in the values.
_DEFAULT_AXES = {
    "X": ("um", -20.0, 5.0),
    "Y": ("um", 10.0, 4.0),
    "Field": ("mT", 0.0, 50.0),
    "Temperature": ("K", 295.0, 5.0),
    "Time": ("s", 0.0, 0.5),
}


@dataclass(frozen=True, eq=False)
class SyntheticScan:
    """A synthetic scan: frames at every position of an N-d scan, and the truth behind them.

    Attributes
    ----------
    frames : numpy.ndarray
        ``(*scan_shape, n_row, n_col)`` int32 Poisson counts; masked pixels hold -1.
    dims : tuple of str
        Position dimension names, slow to fast (e.g. ``("Field", "Y", "X")``).
    coords : dict of str to numpy.ndarray
        Per dimension, the 1-D float64 motor values (length ``scan_shape[i]``).
    units : dict of str to str
        Per dimension, the unit of its values (e.g. ``{"Y": "um", "X": "um"}``).
    poni : dict
        ``dist``, ``poni1``, ``poni2`` (m), ``rot1``, ``rot2``, ``rot3`` (rad), ``wavelength``
        (m), ``pixel1``, ``pixel2`` (m) and ``shape`` ``(n_row, n_col)`` of the detector.
    mask : numpy.ndarray
        ``(n_row, n_col)`` bool, True where masked (beamstop with arm, module gap).
    rings : tuple of Ring
        The rings in the model.
    kappa : numpy.ndarray
        ``scan_shape`` float64 Maier-Saupe concentration (>= 0) at every position.
    director_deg : numpy.ndarray
        ``scan_shape`` float64 director (degrees, pyFAI chi convention, in [-90, 90)).
    order_parameter : numpy.ndarray
        ``scan_shape`` float64 ``S = <P2(cos theta)>`` of ``exp(kappa cos^2 theta)``.
    ideal : numpy.ndarray or None
        Noise-free expected counts, float64, same shape as ``frames`` (masked pixels keep their
        model value), or None when not kept.
    polarization_factor : float
        The polarization factor applied (pyFAI convention).
    background : callable
        ``background(q_nm) -> counts``, the isotropic background in the model.
    """

    frames: np.ndarray
    dims: tuple[str, ...]
    coords: dict[str, np.ndarray]
    units: dict[str, str]
    poni: dict
    mask: np.ndarray
    rings: tuple[Ring, ...]
    kappa: np.ndarray
    director_deg: np.ndarray
    order_parameter: np.ndarray
    ideal: np.ndarray | None
    polarization_factor: float = POLARIZATION_FACTOR
    background: Callable[[np.ndarray], np.ndarray] = saxs_background

    @property
    def scan_shape(self) -> tuple[int, ...]:
        """Shape of the scan (positions), slow to fast."""
        return tuple(self.kappa.shape)

    @property
    def n_positions(self) -> int:
        """Number of scan positions."""
        return int(np.prod(self.scan_shape, dtype=np.int64))

    @property
    def frame_shape(self) -> tuple[int, int]:
        """``(n_row, n_col)`` of one detector frame."""
        return (int(self.frames.shape[-2]), int(self.frames.shape[-1]))

    def integrator(self) -> AzimuthalIntegrator:
        """A new pyFAI ``AzimuthalIntegrator`` of this geometry (detector with its pixel size)."""
        return build_integrator(self.poni)

    def true_profile(self, q_nm: np.ndarray) -> np.ndarray:
        """Ground-truth azimuthally averaged I(q), corrected for solid angle and polarization.

        Parameters
        ----------
        q_nm : array_like
            q values (nm^-1), any shape.

        Returns
        -------
        numpy.ndarray
            ``background(q) + sum_rings amplitude * gauss(q)``, same shape as ``q_nm``. Oriented
            rings contribute their isotropic amplitude (their distribution has a mean of 1).
        """
        q = np.asarray(q_nm, dtype=np.float64)
        return self.background(q) + ring_sum(q, self.rings, oriented=None)

    def write_poni(self, path: str | Path) -> Path:
        """Write the geometry as a PONI file (pyFAI's own writer); returns its path.

        An existing file at ``path`` is replaced (pyFAI's ``ai.write`` would append to it).
        """
        from pyFAI.io.ponifile import PoniFile

        path = Path(path)
        with open(path, "w") as handle:
            PoniFile(self.integrator()).write(handle)
        return path

    def write_images(
        self, folder: str | Path, *, fmt: str = "edf", overwrite: bool = False
    ) -> list[Path]:
        """Write one fabio image per position, plus ``positions.csv`` and ``mask.edf``.

        Parameters
        ----------
        folder : str or Path
            Output folder, created if missing.
        fmt : {"edf", "cbf", "tif"}
            Image format. EDF headers carry the positions as SPEC-era ``motor_mne`` /
            ``motor_pos`` (space-separated names and values of the position dims).
        overwrite : bool
            Replace existing files of the same names; otherwise refuse.

        Returns
        -------
        list of Path
            The image files in scan order (slow to fast); names are zero-padded
            (``frame_0000.edf`` ...) so sorted order is scan order. ``positions.csv`` has a
            header ``Dim[unit],...`` and one row of motor values per image; ``mask.edf`` is
            uint8 with 1 = masked.

        Raises
        ------
        InputError
            Unknown ``fmt``.
        ExistingResultsError
            A file to write exists and ``overwrite`` is False.
        """
        if fmt not in IMAGE_FORMATS:
            raise InputError(f"unsupported fmt {fmt!r}; expected one of {', '.join(IMAGE_FORMATS)}")
        from fabio.cbfimage import CbfImage
        from fabio.edfimage import EdfImage
        from fabio.tifimage import TifImage

        image_class = {"edf": EdfImage, "cbf": CbfImage, "tif": TifImage}[fmt]
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        width = max(4, len(str(self.n_positions - 1)))
        paths = [folder / f"frame_{i:0{width}d}.{fmt}" for i in range(self.n_positions)]
        extra = [folder / "positions.csv", folder / "mask.edf"]
        existing = [p for p in paths + extra if p.exists()]
        if existing and not overwrite:
            raise ExistingResultsError(
                f"{existing[0]} exists ({len(existing)} files to write exist); pass overwrite=True"
            )
        values = self.position_values()
        mne = " ".join(self.dims)
        frames = self.frames.reshape(self.n_positions, *self.frame_shape)
        for path, frame, pos in zip(paths, frames, values, strict=True):
            header = {"motor_mne": mne, "motor_pos": " ".join(repr(float(v)) for v in pos)}
            image = image_class(data=np.ascontiguousarray(frame), header=header)
            image.write(str(path))
        with open(extra[0], "w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow([f"{d}[{self.units[d]}]" for d in self.dims])
            writer.writerows([[repr(float(v)) for v in pos] for pos in values])
        EdfImage(data=self.mask.astype(np.uint8)).write(str(extra[1]))
        return paths

    def position_values(self) -> np.ndarray:
        """``(n_positions, n_dims)`` float64 motor values of every position, in scan order."""
        grids = np.meshgrid(*(self.coords[d] for d in self.dims), indexing="ij")
        return np.stack([g.ravel() for g in grids], axis=1)


# --------------------------------------------------------------------------- validation


def _check_shape(value: Any, name: str, length: int | None = None) -> tuple[int, ...]:
    """A tuple of positive ints (of ``length`` items when given)."""
    try:
        shape = tuple(int(v) for v in value)
        ok = all(int(v) == v for v in value) and all(v >= 1 for v in shape)
    except (TypeError, ValueError):
        ok = False
    if not ok or (length is not None and len(shape) != length) or not shape:
        what = f"{length} positive integers" if length else "a tuple of positive integers"
        raise InputError(f"{name} must be {what}, got {value!r}")
    return shape


def _check_rings(rings: Any) -> tuple[Ring, ...]:
    """Rings as a tuple of :class:`Ring` (dicts with Ring's field names are accepted)."""
    if rings is None:
        return DEFAULT_RINGS
    if isinstance(rings, (Ring, Mapping)) or not isinstance(rings, Sequence) or not rings:
        raise InputError(f"rings must be a non-empty sequence of Ring, got {rings!r}")
    names = [f.name for f in fields(Ring)]
    out = []
    for i, ring in enumerate(rings):
        if isinstance(ring, Mapping):
            unknown = sorted(set(ring) - set(names))
            if unknown:
                raise InputError(
                    f"rings[{i}] has unknown fields {unknown}; expected {', '.join(names)}"
                )
            try:
                ring = Ring(**ring)
            except TypeError as err:
                raise InputError(f"rings[{i}]: {err}; expected fields {', '.join(names)}") from None
        elif not isinstance(ring, Ring):
            raise InputError(f"rings[{i}] must be a Ring or a dict of its fields, got {ring!r}")
        out.append(ring)
    return tuple(out)


def _check_dims(dims: Any, scan_shape: tuple[int, ...]) -> tuple[str, ...]:
    """Position dimension names, one per scan axis, distinct non-empty strings."""
    if dims is None:
        if len(scan_shape) not in _DEFAULT_DIMS:
            raise InputError(
                f"dims is required for a {len(scan_shape)}-d scan_shape {scan_shape} "
                f"(defaults exist for 1 to {max(_DEFAULT_DIMS)} dims)"
            )
        return _DEFAULT_DIMS[len(scan_shape)]
    if isinstance(dims, str) or not isinstance(dims, Sequence):
        raise InputError(f"dims must be a sequence of names, got {dims!r}")
    dims = tuple(dims)
    if len(dims) != len(scan_shape) or len(set(dims)) != len(dims):
        raise InputError(
            f"dims must be {len(scan_shape)} distinct names for scan_shape {scan_shape}, got {dims!r}"
        )
    if not all(isinstance(d, str) and d for d in dims):
        raise InputError(f"dims must be non-empty strings, got {dims!r}")
    return dims


def _check_coords(
    coords: Any, units: Any, dims: tuple[str, ...], scan_shape: tuple[int, ...]
) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """Per-dim 1-D float64 coordinates and units, defaults filled in for the dims not given."""
    coords = {} if coords is None else coords
    units = {} if units is None else units
    for name, given in (("coords", coords), ("units", units)):
        if not isinstance(given, Mapping):
            raise InputError(f"{name} must be a dict keyed by dim name, got {given!r}")
        unknown = sorted(set(given) - set(dims))
        if unknown:
            raise InputError(f"{name} has keys {unknown} not in dims {dims}")
    out_coords, out_units = {}, {}
    for dim, n in zip(dims, scan_shape, strict=True):
        unit, start, step = _DEFAULT_AXES.get(dim, ("a.u.", 0.0, 1.0))
        if dim in coords:
            try:
                values = np.array(coords[dim], dtype=np.float64)
            except (TypeError, ValueError):
                raise InputError(f"coords[{dim!r}] must be numbers, got {coords[dim]!r}") from None
            if values.shape != (n,) or not np.all(np.isfinite(values)):
                raise InputError(
                    f"coords[{dim!r}] must be {n} finite values (scan_shape {scan_shape}), "
                    f"got shape {values.shape}"
                )
        else:
            values = start + step * np.arange(n, dtype=np.float64)
        values.flags.writeable = False
        out_coords[dim] = values
        if dim in units and not isinstance(units[dim], str):
            raise InputError(f"units[{dim!r}] must be a string, got {units[dim]!r}")
        out_units[dim] = units.get(dim, unit)
    return out_coords, out_units


def _check_map(value: Any, name: str, scan_shape: tuple[int, ...], *, minimum: float | None):
    """A float64 array of ``scan_shape`` from a scalar or a broadcastable array."""
    try:
        arr = np.array(np.broadcast_to(np.asarray(value, dtype=np.float64), scan_shape))
    except (TypeError, ValueError):
        raise InputError(
            f"{name} must be a number or an array broadcastable to scan_shape {scan_shape}, "
            f"got {np.shape(value) if not isinstance(value, str) else value!r}"
        ) from None
    if not np.all(np.isfinite(arr)) or (minimum is not None and np.any(arr < minimum)):
        bound = f" >= {minimum}" if minimum is not None else ""
        raise InputError(f"{name} must be finite{bound}; got min {np.min(arr)!r}")
    return arr


def _check_background(background: Any) -> Callable[[np.ndarray], np.ndarray]:
    """The background as a callable of q (nm^-1): a callable, a constant, or None (zero)."""
    if background is None:
        background = 0.0
    if callable(background):
        return background
    if isinstance(background, (int, float, np.integer, np.floating)) and not isinstance(
        background, bool
    ):
        level = float(background)
        if math.isfinite(level) and level >= 0:
            return _ConstantBackground(level)
    raise InputError(
        f"background must be a callable of q (nm^-1), a constant >= 0 or None, got {background!r}"
    )


@dataclass(frozen=True)
class _ConstantBackground:
    """A flat background of ``level`` counts (picklable, unlike a lambda)."""

    level: float

    def __call__(self, q_nm: np.ndarray) -> np.ndarray:
        return np.full(np.shape(q_nm), self.level)


# --------------------------------------------------------------------------- factories


# over 80 lines: a 52-line docstring; the code (checks, then the model) is ~65 lines
def make_scan(
    scan_shape: Sequence[int] = (6, 8),
    *,
    dims: Sequence[str] | None = None,
    units: Mapping[str, str] | None = None,
    coords: Mapping[str, Any] | None = None,
    frame_shape: Sequence[int] = (192, 224),
    rings: Sequence[Ring | Mapping[str, Any]] | None = None,
    kappa: Any = None,
    director_deg: Any = None,
    background: Callable[[np.ndarray], np.ndarray] | float | None = saxs_background,
    noise: bool = True,
    rng: int | np.random.Generator | None = 0,
    keep_ideal: bool = False,
) -> SyntheticScan:
    """Build a seeded synthetic scan of a small Pilatus-like detector with known ground truth.

    Parameters
    ----------
    scan_shape : tuple of int
        Positions per dimension, slow to fast.
    dims : sequence of str, optional
        Dimension names; default ``("X",)``, ``("Y", "X")``, ``("Field", "Y", "X")`` or
        ``("Temperature", "Field", "Y", "X")`` by the number of dims.
    units : dict, optional
        Unit per dim; defaults um for X/Y, mT for Field, K for Temperature, s for Time, else a.u.
    coords : dict, optional
        1-D motor values per dim (length ``scan_shape[i]``); defaults are regular motor-like
        values (X from -20 um in steps of 5 um, Y from 10 um in steps of 4 um, Field 0, 50 ... mT).
    frame_shape : (int, int)
        Detector ``(n_row, n_col)``, each >= 64; the distance is chosen so that q reaches
        2.5 nm^-1 at the farthest corner, so the rings keep their place relative to the frame.
    rings : sequence of Ring, optional
        Default :data:`DEFAULT_RINGS` (oriented at 0.45 and 0.80 nm^-1, isotropic at 1.20).
    kappa : float or array_like, optional
        Maier-Saupe concentration per position (>= 0), broadcast to ``scan_shape``; default a
        ramp from 0 to 16 over the positions in scan order.
    director_deg : float or array_like, optional
        Director per position (degrees, pyFAI chi), wrapped to [-90, 90); default a ramp over
        [-90, 90) in scan order.
    background : callable, float or None
        ``background(q_nm) -> counts`` (isotropic, before solid angle); a constant; None for none.
        Default :func:`saxs_background`.
    noise : bool
        Poisson counts (True) or the rounded expectation (False).
    rng : int, numpy.random.Generator or None
        Seed of ``numpy.random.default_rng``; an int gives the same arrays bit for bit.
    keep_ideal : bool
        Keep the noise-free expected counts in :attr:`SyntheticScan.ideal`.

    Returns
    -------
    SyntheticScan

    Raises
    ------
    InputError
        A parameter of the wrong shape, type or range (the message names it).

    Examples
    --------
    >>> scan = make_scan((2, 3), kappa=4.0, director_deg=30.0, frame_shape=(96, 112))
    >>> scan.frames.shape, scan.frames.dtype.name
    ((2, 3, 96, 112), 'int32')
    >>> bool((scan.frames[..., scan.mask] == -1).all())
    True
    """
    scan_shape = _check_shape(scan_shape, "scan_shape")
    n_row, n_col = _check_shape(frame_shape, "frame_shape", 2)
    frame_shape = (n_row, n_col)
    if min(frame_shape) < 64:
        raise InputError(f"frame_shape must be at least (64, 64), got {frame_shape}")
    dims = _check_dims(dims, scan_shape)
    coords, units = _check_coords(coords, units, dims, scan_shape)
    rings = _check_rings(rings)
    n_pos = int(np.prod(scan_shape))
    if kappa is None:
        kappa = np.linspace(0.0, 16.0, n_pos).reshape(scan_shape)
    if director_deg is None:
        director_deg = np.linspace(-90.0, 90.0, n_pos, endpoint=False).reshape(scan_shape)
    kappa = _check_map(kappa, "kappa", scan_shape, minimum=0.0)
    director = _check_map(director_deg, "director_deg", scan_shape, minimum=None)
    director = (director + 90.0) % 180.0 - 90.0
    background = _check_background(background)
    try:
        generator = np.random.default_rng(rng)
    except (TypeError, ValueError):
        raise InputError(
            f"rng must be an int seed, a numpy Generator or None, got {rng!r}"
        ) from None

    poni = default_poni(frame_shape)
    maps = pixel_maps(build_integrator(poni), frame_shape)
    mask = detector_mask(maps)
    ideal = expected_counts(maps, rings, background, kappa.ravel(), director.ravel())
    ideal = ideal.reshape(*scan_shape, *frame_shape)
    if noise:
        counts = generator.poisson(ideal)
    else:
        counts = np.rint(ideal)
    frames = counts.astype(np.int32)
    frames[..., mask] = -1
    return SyntheticScan(
        frames=frames,
        dims=dims,
        coords=coords,
        units=units,
        poni=poni,
        mask=mask,
        rings=rings,
        kappa=kappa,
        director_deg=director,
        order_parameter=order_parameter_from_kappa(kappa),
        ideal=ideal if keep_ideal else None,
        polarization_factor=POLARIZATION_FACTOR,
        background=background,
    )


def oriented_map(
    scan_shape: Sequence[int] = (6, 8),
    *,
    kappa_max: float = 16.0,
    rng: int | np.random.Generator | None = 0,
    **kw: Any,
) -> SyntheticScan:
    """An orientation map: kappa from 0 to ``kappa_max`` and directors all around the circle.

    For a 2-D map the directors wind once around the map centre (a +1 defect, director
    tangential to circles around it) and ``kappa`` grows linearly with the distance from the
    centre, 0 (isotropic) at the positions nearest it and ``kappa_max`` at the corners. For a
    1-D scan, ``kappa`` ramps from 0 to ``kappa_max`` and the director over [-90, 90).

    Parameters
    ----------
    scan_shape : tuple of int
        1-D or 2-D scan shape.
    kappa_max : float
        Largest kappa (>= 0).
    rng : int, numpy.random.Generator or None
        Seed of the Poisson noise.
    **kw
        Passed to :func:`make_scan` (not ``kappa`` nor ``director_deg``).

    Returns
    -------
    SyntheticScan
    """
    scan_shape = _check_shape(scan_shape, "scan_shape")
    if not (isinstance(kappa_max, (int, float, np.number)) and math.isfinite(kappa_max)) or (
        kappa_max < 0
    ):
        raise InputError(f"kappa_max must be a finite number >= 0, got {kappa_max!r}")
    _refuse(kw, ("kappa", "director_deg"), "oriented_map")
    if len(scan_shape) == 1:
        n = scan_shape[0]
        kappa = np.linspace(0.0, kappa_max, n)
        director = np.linspace(-90.0, 90.0, n, endpoint=False)
    elif len(scan_shape) == 2:
        rows, cols = np.indices(scan_shape, dtype=np.float64)
        d_row, d_col = rows - (scan_shape[0] - 1) / 2, cols - (scan_shape[1] - 1) / 2
        radius = np.hypot(d_row, d_col)
        span = radius.max() - radius.min()
        kappa = kappa_max * ((radius - radius.min()) / span if span > 0 else np.ones(scan_shape))
        director = np.degrees(np.arctan2(d_row, d_col)) + 90.0
    else:
        raise InputError(f"oriented_map needs a 1-D or 2-D scan_shape, got {scan_shape}")
    return make_scan(scan_shape, kappa=kappa, director_deg=director, rng=rng, **kw)


def field_series(
    fields_mT: Sequence[float] = (0, 50, 100, 250),
    raster: Sequence[int] = (3, 4),
    *,
    rng: int | np.random.Generator | None = 0,
    kappa_max: float = 16.0,
    b0_mT: float = 100.0,
    **kw: Any,
) -> SyntheticScan:
    """A magnetic-field series of raster maps: dims ``("Field", "Y", "X")``.

    ``kappa = kappa_max * (1 - exp(-|B| / b0_mT))`` grows with the field; the director is fixed
    per (Y, X) position, a ramp over [-90, 90) in raster order.

    Parameters
    ----------
    fields_mT : sequence of float
        The fields (mT), slow axis; also the ``Field`` coordinates.
    raster : (int, int)
        ``(n_Y, n_X)`` of each map.
    rng : int, numpy.random.Generator or None
        Seed of the Poisson noise.
    kappa_max : float
        Saturation kappa (>= 0).
    b0_mT : float
        Field scale of the alignment (mT), > 0.
    **kw
        Passed to :func:`make_scan` (not ``kappa``, ``director_deg``, ``dims``).

    Returns
    -------
    SyntheticScan
    """
    try:
        b = np.array(fields_mT, dtype=np.float64)
    except (TypeError, ValueError):
        raise InputError(f"fields_mT must be numbers, got {fields_mT!r}") from None
    if b.ndim != 1 or b.size == 0 or not np.all(np.isfinite(b)):
        raise InputError(
            f"fields_mT must be a non-empty 1-D sequence of finite fields, got {fields_mT!r}"
        )
    raster = _check_shape(raster, "raster", 2)
    for name, value, low in (("kappa_max", kappa_max, 0.0), ("b0_mT", b0_mT, None)):
        ok = isinstance(value, (int, float, np.number)) and math.isfinite(value)
        if not ok or (value < low if low is not None else value <= 0):
            raise InputError(
                f"{name} must be a finite number {'>= 0' if low is not None else '> 0'}, got {value!r}"
            )
    _refuse(kw, ("kappa", "director_deg", "dims"), "field_series")
    coords = dict(kw.pop("coords", None) or {})
    if "Field" in coords:
        raise InputError("field_series takes the Field coordinates from fields_mT, not coords")
    coords["Field"] = b
    kappa = kappa_max * (1.0 - np.exp(-np.abs(b) / b0_mT))
    director = np.linspace(-90.0, 90.0, raster[0] * raster[1], endpoint=False).reshape(raster)
    shape = (b.size, *raster)
    return make_scan(
        shape,
        dims=("Field", "Y", "X"),
        coords=coords,
        kappa=np.broadcast_to(kappa[:, None, None], shape),
        director_deg=np.broadcast_to(director, shape),
        rng=rng,
        **kw,
    )


def demo_scan(rng: int | np.random.Generator | None = 0) -> SyntheticScan:
    """The default data of ``pyscatter demo``: an 8 x 10 oriented raster map (``oriented_map``).

    Examples
    --------
    >>> demo_scan().scan_shape
    (8, 10)
    """
    return oriented_map((8, 10), rng=rng)


def _refuse(kw: Mapping[str, Any], names: Sequence[str], where: str) -> None:
    """Refuse keywords a factory sets itself."""
    clash = [n for n in names if n in kw]
    if clash:
        raise InputError(f"{where} sets {', '.join(clash)} itself; do not pass {clash[0]}=")
