"""Geometry that changes with the position: energy series, detector-distance series, drifting beams.

A scan whose photon energy (RSoXS, anomalous scattering), detector distance (SAXS/WAXS/USAXS
series at one sample) or beam centre changes from one position to the next has one geometry per
position. The translator records it beside the positions, and every integration uses each
position's own geometry (:mod:`pyscatter.processes.integration`).

In the file (channel group, beside ``Raw_Data`` and the positions):

* the geometry the translator read first stays the measurement's ``geometry`` attribute (the
  detector, its pixel sizes and every key that does not vary);
* ``Measurement_000@geometry_varies`` lists the pyFAI keys that vary, e.g. ``["wavelength"]``
  (of ``dist``, ``poni1``, ``poni2``, ``rot1``, ``rot2``, ``rot3``, ``wavelength``);
* one dataset per varying key, ``Geometry_<key>`` (float64, one value per position, in pyFAI's
  units: m and rad; attributes ``units`` and ``source``), written like ``Monitor``: a USID-valid
  per-position ancillary dataset that NeXus and HDF5 viewers show.

The position ``i`` has the geometry ``geometry`` with each varying key replaced by
``Geometry_<key>[i]`` (:meth:`GeometrySeries.config`). Positions of the same geometry form one
group (:meth:`GeometrySeries.groups`): k distinct geometries cost k matrix builds.

Examples
--------
>>> import numpy as np
>>> series = GeometrySeries(
...     {"dist": 1.0, "wavelength": 1e-10, "detector": "Pilatus1M"},
...     {"wavelength": np.array([1e-10, 1.2e-10, 1e-10])},
... )
>>> series.groups()[1].tolist()
[0, 1, 0]
>>> series.config(1)["wavelength"]
1.2e-10
>>> round(energy_to_wavelength(12.398419843320026) * 1e10, 12)  # keV -> m, in Angstrom
1.0
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from pyscatter.errors import InputError

__all__ = [
    "DATASET_PREFIX",
    "KEYS",
    "VARIES_ATTR",
    "GEOMETRY_FROM",
    "GeometrySeries",
    "apply_geometry_from",
    "energy_to_wavelength",
    "one_geometry_error",
    "parse_geometry_from",
    "read_series",
    "series_extras",
    "wavelength_to_energy",
]

#: pyFAI geometry keys that may vary with the position, and their units.
KEYS: dict[str, str] = {
    "dist": "m",
    "poni1": "m",
    "poni2": "m",
    "rot1": "rad",
    "rot2": "rad",
    "rot3": "rad",
    "wavelength": "m",
}
#: Name prefix of the per-position datasets (``Geometry_wavelength``).
DATASET_PREFIX = "Geometry_"
#: The measurement attribute listing the varying keys.
VARIES_ATTR = "geometry_varies"
#: h c in keV·m (CODATA 2018): λ[m] = HC_KEV_M / E[keV].
HC_KEV_M = 1.239841984332002e-9


def energy_to_wavelength(energy_kev: Any) -> Any:
    """Photon energy (keV) → wavelength (m)."""
    value = HC_KEV_M / np.asarray(energy_kev, dtype=np.float64)
    return float(value) if value.ndim == 0 else value


def wavelength_to_energy(wavelength_m: Any) -> Any:
    """Wavelength (m) → photon energy (keV)."""
    return energy_to_wavelength(wavelength_m)


@dataclass
class GeometrySeries:
    """The geometry of every position: a base pyFAI config and the values of the keys that vary.

    Parameters
    ----------
    base : dict
        pyFAI config (``get_config()``) of the measurement: the detector and the fixed keys.
    values : dict of str to ndarray
        Per varying key (one of :data:`KEYS`), its value at every position.
    source : str
        Where the values come from (for messages and records).
    """

    base: dict[str, Any]
    values: dict[str, np.ndarray]
    source: str = ""
    _groups: tuple[np.ndarray, np.ndarray] | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        unknown = sorted(set(self.values) - set(KEYS))
        if unknown:
            raise InputError(
                f"geometry keys {unknown} cannot vary per position; allowed: {', '.join(KEYS)}"
            )
        if not self.values:
            raise InputError("a geometry series needs at least one varying key")
        lengths = {len(np.ravel(v)) for v in self.values.values()}
        if len(lengths) != 1:
            raise InputError(f"geometry series of different lengths {sorted(lengths)}")
        self.values = {k: np.asarray(v, dtype=np.float64).ravel() for k, v in self.values.items()}

    @property
    def keys(self) -> list[str]:
        """The varying keys, in :data:`KEYS` order."""
        return [k for k in KEYS if k in self.values]

    @property
    def n_positions(self) -> int:
        return len(next(iter(self.values.values())))

    def table(self) -> np.ndarray:
        """(n_positions, n_keys) float64 of the varying keys (:attr:`keys` order)."""
        return np.stack([self.values[k] for k in self.keys], axis=1)

    def groups(self) -> tuple[np.ndarray, np.ndarray]:
        """``(first position of each distinct geometry, group index of every position)``.

        Groups are numbered in the order their first position comes. Positions whose values are
        not all finite (never measured) form no group: index -1.
        """
        if self._groups is None:
            table = self.table()
            finite = np.all(np.isfinite(table), axis=1)
            index = np.full(self.n_positions, -1, dtype=np.int64)
            firsts: list[int] = []
            seen: dict[bytes, int] = {}
            for i in np.flatnonzero(finite):
                row = table[i].tobytes()
                g = seen.get(row)
                if g is None:
                    g = seen[row] = len(firsts)
                    firsts.append(int(i))
                index[i] = g
            self._groups = (np.asarray(firsts, dtype=np.int64), index)
        return self._groups

    def config(self, position: int) -> dict[str, Any]:
        """The pyFAI config of one position."""
        out = dict(self.base)
        for key in self.keys:
            value = float(self.values[key][position])
            if not math.isfinite(value):
                raise InputError(
                    f"position {position}: geometry {key} is not known ({value}); it was "
                    "never measured"
                )
            out[key] = value
        return out

    def group_configs(self) -> list[dict[str, Any]]:
        """The pyFAI config of every distinct geometry, in group order."""
        return [self.config(int(i)) for i in self.groups()[0]]

    def sha256(self) -> str:
        """Digest of the varying keys' values (what a process records)."""
        digest = hashlib.sha256()
        for key in self.keys:
            digest.update(key.encode())
            digest.update(np.ascontiguousarray(self.values[key]).tobytes())
        return digest.hexdigest()


def series_extras(
    configs: Sequence[Mapping[str, Any]], *, source: str, rtol: float = 0.0
) -> tuple[dict[str, np.ndarray], dict[str, dict[str, Any]], list[str]] | None:
    """The per-position datasets of the geometry of every frame, or None when it does not vary.

    Parameters
    ----------
    configs : list of dict
        pyFAI config of every frame (source order), as the translator read them.
    source : str
        Where they come from (recorded as each dataset's ``source``).
    rtol : float
        Values within this relative tolerance of the first are the same (0: exactly equal).

    Returns
    -------
    (extra, extra_attrs, varies) or None
        ``Geometry_<key>`` arrays in source order (the translator arranges them by position),
        their attributes, and the varying keys.

    Raises
    ------
    InputError
        Frames whose detector (pixel size, shape, name) differs: no one file holds them.
    """
    first = configs[0]
    fixed = {k: v for k, v in first.items() if k not in KEYS}
    for i, cfg in enumerate(configs[1:], start=1):
        other = {k: v for k, v in cfg.items() if k not in KEYS}
        if other != fixed:
            changed = sorted(k for k in set(other) | set(fixed) if other.get(k) != fixed.get(k))
            raise InputError(
                f"frame {i} of {source}: the detector ({', '.join(changed)}) differs from the "
                "first frame's; translate the frames of each detector separately"
            )
    varies = []
    for key in KEYS:
        ref = first.get(key)
        values = [cfg.get(key) for cfg in configs]
        if ref is None:
            if any(v is not None for v in values):
                raise InputError(f"{source}: {key} is given for some frames only")
            continue
        arr = np.asarray(values, dtype=np.float64)
        if np.any(np.abs(arr - float(ref)) > rtol * abs(float(ref))):
            varies.append(key)
    if not varies:
        return None
    extra, attrs = {}, {}
    for key in varies:
        name = DATASET_PREFIX + key
        extra[name] = np.asarray([cfg[key] for cfg in configs], dtype=np.float64)
        attrs[name] = {"units": KEYS[key], "source": source, "geometry_key": key}
    return extra, attrs, varies


def one_geometry_error(series: GeometrySeries, what: str) -> InputError:
    """The refusal of a step (``what``) that uses one geometry for every frame, on a scan whose
    geometry changes with the position: it names the keys and the step that handles them."""
    return InputError(
        f"{what}: the geometry of this scan changes with the position "
        f"({', '.join(series.keys)} recorded per position in {series.source}); {what} uses "
        "one geometry for every frame and would put the rings at the wrong q. Integrate it "
        "(pyscatter integrate), which uses each position's own geometry, or translate the "
        "positions of each geometry separately"
    )


def read_series(h5_main: Any) -> GeometrySeries | None:
    """The geometry series recorded with a raw main dataset, or None when it has one geometry.

    Parameters
    ----------
    h5_main : h5py.Dataset
        The raw main dataset (``Raw_Data``); its channel group holds ``Geometry_<key>`` and its
        measurement group the ``geometry`` and ``geometry_varies`` attributes.

    Raises
    ------
    FileFormatError
        ``geometry_varies`` names a key whose dataset is missing or of the wrong length.
    """
    from pyscatter.errors import FileFormatError

    channel = h5_main.parent
    measurement = channel.parent
    varies = measurement.attrs.get(VARIES_ATTR)
    if varies is None:
        return None
    keys = json.loads(varies) if isinstance(varies, str | bytes) else list(varies)
    where = f"{h5_main.file.filename}: {measurement.name}"
    if "geometry" not in measurement.attrs:
        raise FileFormatError(f"{where} records {VARIES_ATTR} {keys} but no geometry")
    values = {}
    for key in keys:
        name = DATASET_PREFIX + str(key)
        dset = channel.get(name)
        if dset is None or dset.shape != (h5_main.shape[0],):
            found = None if dset is None else dset.shape
            raise FileFormatError(
                f"{where}: {VARIES_ATTR} names {key} but {channel.name}/{name} is {found}; "
                f"expected one value per position ({h5_main.shape[0]},)"
            )
        values[str(key)] = dset[()]
    base = json.loads(measurement.attrs["geometry"])
    return GeometrySeries(base, values, source=f"{channel.name}/{DATASET_PREFIX}*")


# --------------------------------------------------------------------------- geometry_from

#: ``geometry_from`` parameters: name → (pyFAI key, default unit, unit → factor to the key's
#: unit). ``energy`` gives the wavelength (h c / E); ``beam_center_x``/``_y`` (pixels) give
#: ``poni2``/``poni1`` (times the pixel size: a detector without tilt).
GEOMETRY_FROM: dict[str, tuple[str, str, dict[str, float]]] = {
    "energy": ("wavelength", "keV", {"kev": 1.0, "ev": 1e-3}),
    "wavelength": (
        "wavelength",
        "A",
        {"a": 1e-10, "å": 1e-10, "angstrom": 1e-10, "nm": 1e-9, "m": 1.0},
    ),
    "distance": ("dist", "mm", {"mm": 1e-3, "m": 1.0}),
    "poni1": ("poni1", "m", {"m": 1.0, "mm": 1e-3}),
    "poni2": ("poni2", "m", {"m": 1.0, "mm": 1e-3}),
    "beam_center_x": ("poni2", "pixel", {"pixel": 1.0, "pixels": 1.0, "px": 1.0}),
    "beam_center_y": ("poni1", "pixel", {"pixel": 1.0, "pixels": 1.0, "px": 1.0}),
}


def parse_geometry_from(value: Any) -> dict[str, tuple[str, str]]:
    """``geometry_from`` as ``{parameter: (column, unit)}``, checked.

    Parameters
    ----------
    value : str or mapping
        ``"energy=Energy:keV,distance=Dist"`` (the command line's ``--geometry-from``) or
        ``{"energy": "Energy"}`` / ``{"energy": "Energy:eV"}`` / ``{"energy": ("Energy", "eV")}``:
        a parameter of :data:`GEOMETRY_FROM`, the column (or motor) holding its value at every
        position, and its unit (default: the parameter's, keV, Å, mm, m or pixel).

    Raises
    ------
    InputError
        An unknown parameter or unit, an empty column, or two parameters setting one key
        (``energy`` with ``wavelength``, ``poni1`` with ``beam_center_y`` …).

    Examples
    --------
    >>> parse_geometry_from("energy=Energy,distance=Det:m")
    {'energy': ('Energy', 'keV'), 'distance': ('Det', 'm')}
    """
    if isinstance(value, str):
        items: dict[str, Any] = {}
        for part in (p for p in value.split(",") if p.strip()):
            name, sep, column = part.partition("=")
            if not sep:
                raise InputError(
                    f"geometry_from {value!r}: expected PARAMETER=COLUMN[:UNIT],… "
                    "(e.g. energy=Energy:keV)"
                )
            items[name.strip()] = column.strip()
    elif isinstance(value, Mapping):
        items = dict(value)
    else:
        raise InputError(
            f"geometry_from {value!r}: expected a dict like {{'energy': 'Energy'}} or a text "
            "like 'energy=Energy:keV'"
        )
    if not items:
        raise InputError("geometry_from: empty; give e.g. energy=Energy")
    out: dict[str, tuple[str, str]] = {}
    keys: dict[str, str] = {}
    for name, spec in items.items():
        if name not in GEOMETRY_FROM:
            raise InputError(
                f"geometry_from: unknown parameter {name!r}; allowed: {', '.join(GEOMETRY_FROM)}"
            )
        key, default_unit, units = GEOMETRY_FROM[name]
        if isinstance(spec, str):
            column, _, unit = spec.rpartition(":") if ":" in spec else (spec, "", "")
        else:
            column, unit = (list(spec) + [""])[:2]
        column, unit = str(column).strip(), str(unit).strip() or default_unit
        if not column:
            raise InputError(f"geometry_from {name}: no column or motor name given")
        if unit.lower() not in units:
            raise InputError(
                f"geometry_from {name}={column}: unit {unit!r}; allowed: {', '.join(units)}"
            )
        if key in keys:
            raise InputError(
                f"geometry_from: {keys[key]} and {name} both set the {key}; give one of them"
            )
        keys[key] = name
        out[name] = (column, unit)
    return out


def _pixel_size(config: Mapping[str, Any], key: str) -> float:
    """pixel1 / pixel2 of a pyFAI config (``detector_config`` or flat)."""
    detector = config.get("detector_config") or {}
    value = detector.get(key, config.get(key))
    if value is None:
        raise InputError(f"geometry_from: the base geometry has no {key} (pixel size)")
    return float(value)


def _converted(name: str, values: np.ndarray, base: Mapping[str, Any]) -> np.ndarray:
    """Values of a ``geometry_from`` parameter (in its unit's base: keV, m, pixels) → its key's."""
    if name == "energy":
        return np.asarray(energy_to_wavelength(values), dtype=np.float64).reshape(-1)
    if name.startswith("beam_center"):
        if any(float(base.get(r, 0.0) or 0.0) != 0.0 for r in ("rot1", "rot2")):
            raise InputError(
                f"geometry_from {name}: the base geometry is tilted (rot1/rot2); a beam "
                "centre gives the PONI only without tilt: give poni1/poni2 instead"
            )
        return values * _pixel_size(base, "pixel2" if name.endswith("x") else "pixel1")
    return values


def apply_geometry_from(
    base: Mapping[str, Any] | None,
    series: tuple | None,
    geometry_from: Mapping[str, tuple[str, str]],
    lookup: Any,
    n_frames: int,
    *,
    base_source: str,
) -> tuple[dict[str, Any], tuple | None, str]:
    """The geometry of every frame with the parameters of ``geometry_from`` taken from columns.

    Parameters
    ----------
    base : dict or None
        The pyFAI config the translator read (a PONI, the first header, the NeXus fields);
        None: no geometry, refused.
    series : tuple or None
        :func:`series_extras` of the geometry the source gives per frame (headers), or None:
        ``base`` for every frame.
    geometry_from : dict
        :func:`parse_geometry_from`.
    lookup : callable
        ``lookup(column) -> (values, where)``: the column's value at every frame (source order,
        ``n_frames`` numbers) and where they come from; raises :class:`InputError` naming the
        columns there are.
    n_frames : int
    base_source : str
        Where the base geometry comes from (PONI, header, NeXus fields).

    Returns
    -------
    (geometry, series, source)
        The first frame's config (the measurement's ``geometry``), :func:`series_extras` of
        every frame's (None: one geometry), and the ``geometry_source`` text.

    Raises
    ------
    InputError
        No base geometry, a column of another length or with values that are not positive and
        finite, a beam centre with a tilted base geometry.
    """
    if not base:
        raise InputError(
            f"geometry_from {', '.join(geometry_from)}: needs a base geometry (the detector, "
            "its pixel size and the keys the columns do not give): give poni=FILE (--poni), "
            "or a source whose headers or NeXus fields hold one"
        )
    frames = [dict(base) for _ in range(n_frames)]
    if series is not None:
        extra, _, varies = series
        for key in varies:
            for cfg, value in zip(frames, extra[DATASET_PREFIX + key], strict=True):
                cfg[key] = float(value)
    where = []
    for name, (column, unit) in geometry_from.items():
        key, _, units = GEOMETRY_FROM[name]
        values, found = lookup(column)
        values = np.asarray(values, dtype=np.float64).ravel()
        if values.shape != (n_frames,):
            raise InputError(
                f"geometry_from {name}={column}: {values.size} values ({found}) for {n_frames} "
                "frames; expected one per frame"
            )
        positive = name in ("energy", "wavelength", "distance")  # a centre may be off the detector
        bad = np.flatnonzero(~np.isfinite(values) | ((values <= 0) & positive))
        if bad.size:
            raise InputError(
                f"geometry_from {name}={column}: value {float(values[bad[0]])!r} at frame {bad[0]} "
                f"({found}); expected {'positive' if positive else 'finite'} numbers"
            )
        scaled = _converted(name, values * units[unit.lower()], frames[0])
        for cfg, value in zip(frames, scaled, strict=True):
            cfg[key] = float(value)
        where.append(f"{name} from {column} [{unit}] ({found})")
    source = f"{base_source}; per frame: " + "; ".join(where)
    return frames[0], series_extras(frames, source=source), source
