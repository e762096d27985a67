"""NeXus detector and beam fields → a pyFAI geometry, each field in the unit of its ``@units``.

Fields read (in the NXentry of the signal): ``instrument/detector/{detector_distance or distance,
beam_center_x, beam_center_y, x_pixel_size, y_pixel_size}`` and ``instrument/beam/
incident_wavelength`` (or an NXmonochromator ``wavelength``, or ``incident_energy``/``energy``).
Lengths take any unit of :data:`LENGTH_UNITS`, a beam centre pixels (:data:`PIXEL_UNITS`) or a
length (divided by the pixel size), energies :data:`ENERGY_UNITS`. A field without ``@units`` or
with another unit is refused, naming it. The values go through pyFAI's ``setFit2D``.
:func:`nexus_geometries` reads the same fields when some hold one value per frame (an energy,
distance or beam-centre series; also an Eiger ``detectorSpecific/photon_energy`` array).

>>> fit2d_geometry(distance_mm=100, center_x=5, center_y=5, pixel_x_um=100, pixel_y_um=100,
...                wavelength_angstrom=1, frame_shape=(10, 10))["dist"]
0.1
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import h5py
import numpy as np

from pyscatter.errors import FileFormatError
from pyscatter.geometry import fit2d_config as fit2d_geometry  # the name translators import
from pyscatter.translators.common import attr_text, flip_centre, nx_class

__all__ = [
    "ENERGY_UNITS",
    "LENGTH_UNITS",
    "PIXEL_UNITS",
    "fit2d_geometry",
    "instrument_groups",
    "invalid_value",
    "nexus_geometries",
    "nexus_geometry",
    "pixel_mask",
    "units_of",
]

#: Length units of NeXus ``@units`` (lower case) → factor to metres.
LENGTH_UNITS = {
    "m": 1.0,
    "meter": 1.0,
    "metre": 1.0,
    "meters": 1.0,
    "metres": 1.0,
    "cm": 1e-2,
    "mm": 1e-3,
    "millimeter": 1e-3,
    "millimetre": 1e-3,
    "um": 1e-6,
    "µm": 1e-6,  # micro sign
    "μm": 1e-6,  # greek mu
    "micron": 1e-6,
    "microns": 1e-6,
    "micrometer": 1e-6,
    "micrometre": 1e-6,
    "nm": 1e-9,
    "a": 1e-10,
    "å": 1e-10,
    "angstrom": 1e-10,
    "angstroms": 1e-10,
}
#: ``@units`` of a beam centre given in pixels (NXdetector allows pixels or a length).
PIXEL_UNITS = ("pixel", "pixels", "px", "pix")
#: Energy units → factor to keV.
ENERGY_UNITS = {"kev": 1.0, "ev": 1e-3, "j": 1.0 / 1.602176634e-16}
_KEV_ANGSTROM = 12.398419843320026  # h c in keV·Å


# --------------------------------------------------------------------------- geometry


def units_of(dset: h5py.Dataset) -> str:
    """The ``@units`` (else ``@unit``) attribute of ``dset``, stripped; ``""`` when absent."""
    for key in ("units", "unit"):
        if key in dset.attrs:
            return attr_text(dset, key).strip()
    return ""


@dataclass(frozen=True)
class _Field:
    """A scalar NeXus field: its value, its ``@units`` (``""`` when absent) and where it is."""

    value: float
    unit: str
    where: str

    def converted(self, table: Mapping[str, float], what: str, also: Sequence[str] = ()) -> float:
        """The value times the factor of its unit in ``table``; refuse a missing or unknown unit.

        ``also`` lists further units the caller handled, for the message.
        """
        allowed = ", ".join([*also, *table])
        if not self.unit:
            raise FileFormatError(
                f"{self.where} has no @units: a {what} needs one of {allowed}. Add the @units "
                "attribute, or give the geometry with poni=FILE (--poni)"
            )
        factor = table.get(self.unit.lower())
        if factor is None:
            raise FileFormatError(
                f"{self.where}: @units {self.unit!r} is not a {what} unit; expected one of "
                f"{allowed} (or give the geometry with poni=FILE)"
            )
        return self.value * factor


def _scalar(group: h5py.Group, name: str) -> _Field | None:
    obj = group.get(name)
    if not isinstance(obj, h5py.Dataset):
        return None
    try:
        value = float(np.asarray(obj[()]).ravel()[0])
    except (TypeError, ValueError, IndexError):
        return None
    return _Field(value, units_of(obj), f"{obj.file.filename}:{obj.name}")


def _wavelength_angstrom(group: h5py.Group) -> float | None:
    """The wavelength (Å) from ``beam/incident_wavelength`` … or an energy; None if absent."""
    for path in ("beam/incident_wavelength", "monochromator/wavelength"):
        item = _scalar(group, path)
        if item is not None:
            return item.converted(LENGTH_UNITS, "wavelength") * 1e10
    for path in ("beam/incident_energy", "monochromator/energy"):
        item = _scalar(group, path)
        if item is not None:
            return _KEV_ANGSTROM / item.converted(ENERGY_UNITS, "energy")
    return None


def _centre_pixels(item: _Field, pixel_m: float) -> float:
    """A beam centre in pixels: as is with ``@units`` pixel, else a length over the pixel size."""
    if item.unit.lower() in PIXEL_UNITS:
        return item.value
    return item.converted(LENGTH_UNITS, "beam centre", also=PIXEL_UNITS) / pixel_m


def _find_nx(group: h5py.Group, wanted: str) -> h5py.Group | None:
    for obj in group.values():
        if isinstance(obj, h5py.Group) and nx_class(obj) == wanted:
            return obj
    return None


def instrument_groups(entry: h5py.Group) -> tuple[h5py.Group | None, h5py.Group | None]:
    """The NXinstrument and its NXdetector in ``entry`` (by name, else by ``NX_class``)."""
    inst = entry.get("instrument")
    if not isinstance(inst, h5py.Group):
        inst = _find_nx(entry, "NXinstrument")
    if inst is None:
        return None, None
    det = inst.get("detector")
    if not isinstance(det, h5py.Group):
        det = _find_nx(inst, "NXdetector")
    return inst, det


def nexus_geometry(
    entry: h5py.Group, frame_shape: tuple[int, int], flip: str | None = None
) -> dict[str, Any] | None:
    """pyFAI config from the NeXus detector and beam fields of ``entry``; None if any is missing.

    The beam centre refers to the frames as stored in the file; ``flip`` mirrors it for frames
    stored flipped (``"lr"``: x → cols − x, ``"ud"``: y → rows − y). Every field is read in the
    unit of its ``@units`` (see the module notes).

    Raises
    ------
    FileFormatError
        A field without ``@units`` or with an unknown unit (the message names the field).
    """
    inst, det = instrument_groups(entry)
    if det is None or inst is None:
        return None
    dist = _scalar(det, "detector_distance") or _scalar(det, "distance")
    names = ("beam_center_x", "beam_center_y", "x_pixel_size", "y_pixel_size")
    found = [_scalar(det, n) for n in names]
    wavelength = _wavelength_angstrom(inst)
    fields = [f for f in found if f is not None]
    if dist is None or len(fields) < len(names) or wavelength is None:
        return None
    centre_x, centre_y, size_x, size_y = fields
    px = size_x.converted(LENGTH_UNITS, "pixel size")
    py = size_y.converted(LENGTH_UNITS, "pixel size")
    cx, cy = _centre_pixels(centre_x, px), _centre_pixels(centre_y, py)
    cx, cy = flip_centre(cx, cy, frame_shape, flip)
    return fit2d_geometry(
        distance_mm=dist.converted(LENGTH_UNITS, "distance") * 1e3,
        center_x=cx,
        center_y=cy,
        pixel_x_um=px * 1e6,
        pixel_y_um=py * 1e6,
        wavelength_angstrom=wavelength,
        frame_shape=frame_shape,
    )


# --------------------------------------------------------------------------- per frame


@dataclass(frozen=True)
class _Values:
    """A NeXus field of one value (``per_frame`` False) or one per frame, with its ``@units``."""

    values: np.ndarray
    unit: str
    where: str
    per_frame: bool

    def at(self, i: int) -> _Field:
        return _Field(float(self.values[i if self.per_frame else 0]), self.unit, self.where)


def _field_values(group: h5py.Group, name: str, n_frames: int) -> _Values | None:
    """``name`` in ``group``: one number, or one per frame (``n_frames``); None when absent.

    Raises
    ------
    FileFormatError
        A numeric field of another size (neither one value nor one per frame).
    """
    obj = group.get(name)
    if not isinstance(obj, h5py.Dataset) or obj.dtype.kind not in "uif" or obj.size == 0:
        return None
    where = f"{obj.file.filename}:{obj.name}"
    values = np.asarray(obj[()], dtype=np.float64).ravel()
    if values.size == 1 or n_frames == 1:
        return _Values(values[:1], units_of(obj), where, False)
    if values.size != n_frames:
        raise FileFormatError(
            f"{where}: {values.size} values for {n_frames} frames; expected one value, or one "
            "per frame (give the geometry with poni=FILE instead)"
        )
    return _Values(values, units_of(obj), where, True)


#: Where a wavelength or an energy may be, in order of precedence (relative to NXinstrument,
#: then the NXdetector's Eiger ``detectorSpecific/photon_energy``).
_WAVE_FIELDS = (
    ("beam/incident_wavelength", "wavelength"),
    ("monochromator/wavelength", "wavelength"),
    ("beam/incident_energy", "energy"),
    ("monochromator/energy", "energy"),
)


def _wave_angstrom(item: _Values, kind: str, i: int) -> float:
    if kind == "wavelength":
        return item.at(i).converted(LENGTH_UNITS, "wavelength") * 1e10
    return _KEV_ANGSTROM / item.at(i).converted(ENERGY_UNITS, "energy")


def _wave_source(inst: h5py.Group, det: h5py.Group, n_frames: int) -> tuple[_Values, str] | None:
    """The wavelength or energy field the geometry uses, and its kind.

    The first present of :data:`_WAVE_FIELDS` (as :func:`nexus_geometry`), else an Eiger
    ``photon_energy`` that holds one value per frame. A varying per-frame field of lower
    precedence than a single value is refused: the frames would get one wavelength silently.
    """
    found = [(f, kind) for path, kind in _WAVE_FIELDS if (f := _field_values(inst, path, n_frames))]
    eiger = _field_values(det, "detectorSpecific/photon_energy", n_frames)
    if eiger is not None:
        found.append((eiger, "energy"))
    if not found:
        return None
    chosen = found[0]
    if chosen[0] is eiger and not eiger.per_frame:
        return None  # a single Eiger photon_energy alone: no geometry, as before
    if not chosen[0].per_frame:
        for other, _ in found[1:]:
            if other.per_frame and np.unique(other.values).size > 1:
                raise FileFormatError(
                    f"{other.where} changes from frame to frame but {chosen[0].where} holds one "
                    "value; which one is right is not known: give the geometry with poni=FILE"
                )
    return chosen


def nexus_geometries(
    entry: h5py.Group, frame_shape: tuple[int, int], n_frames: int, flip: str | None = None
) -> list[dict[str, Any]] | None:
    """One pyFAI config per frame when a NeXus geometry field holds one value per frame.

    Read as :func:`nexus_geometry` reads the single geometry (the same fields, units and
    ``setFit2D``), but the wavelength (NXbeam ``incident_wavelength``/``incident_energy``,
    NXmonochromator ``wavelength``/``energy``, else an Eiger ``detectorSpecific/photon_energy``
    of one value per frame), the NXdetector ``distance`` (``detector_distance``) and
    ``beam_center_x``/``_y`` may hold one value per frame. Frames of the same values share one
    conversion. Returns None when every field holds one value (or a field is missing: then
    :func:`nexus_geometry` says so): the scan has one geometry.

    Raises
    ------
    FileFormatError
        A field without ``@units``, with an unknown unit, or of another size than one value or
        one per frame (the message names it).
    """
    inst, det = instrument_groups(entry)
    if det is None or inst is None or n_frames < 2:
        return None
    dist = _field_values(det, "detector_distance", n_frames) or _field_values(
        det, "distance", n_frames
    )
    names = ("beam_center_x", "beam_center_y", "x_pixel_size", "y_pixel_size")
    found = [_scalar(det, n) for n in names[2:]]
    centres = [_field_values(det, n, n_frames) for n in names[:2]]
    wave = _wave_source(inst, det, n_frames)
    if dist is None or wave is None or None in found or None in centres:
        return None
    varying = [v for v in (dist, wave[0], *centres) if v is not None and v.per_frame]
    if not varying:
        return None
    size_x, size_y = found
    assert size_x is not None and size_y is not None and centres[0] and centres[1]
    px = size_x.converted(LENGTH_UNITS, "pixel size")
    py = size_y.converted(LENGTH_UNITS, "pixel size")
    cache: dict[tuple[float, ...], dict[str, Any]] = {}
    out = []
    for i in range(n_frames):
        cx = _centre_pixels(centres[0].at(i), px)
        cy = _centre_pixels(centres[1].at(i), py)
        cx, cy = flip_centre(cx, cy, frame_shape, flip)
        numbers = (dist.at(i).converted(LENGTH_UNITS, "distance") * 1e3, cx, cy,
                   _wave_angstrom(wave[0], wave[1], i))  # fmt: skip
        if not all(np.isfinite(numbers)):
            raise FileFormatError(
                f"{entry.file.filename}:{entry.name}: frame {i}: the NeXus geometry (distance "
                f"mm, centre x, y pixels, wavelength Å) {numbers} is not finite"
            )
        if numbers not in cache:
            cache[numbers] = fit2d_geometry(
                distance_mm=numbers[0],
                center_x=numbers[1],
                center_y=numbers[2],
                pixel_x_um=px * 1e6,
                pixel_y_um=py * 1e6,
                wavelength_angstrom=numbers[3],
                frame_shape=frame_shape,
            )
        out.append(cache[numbers])
    return out


def pixel_mask(
    det: h5py.Group | None, frame_shape: tuple[int, int]
) -> tuple[np.ndarray, str] | None:
    """The detector's ``pixel_mask`` (Eiger ``detectorSpecific/``, NXmx) of the frames' shape,
    nonzero = masked, and where it was; None without one."""
    if det is None:
        return None
    for path in ("detectorSpecific/pixel_mask", "pixel_mask"):
        obj = det.get(path)
        if isinstance(obj, h5py.Dataset) and tuple(obj.shape) == tuple(frame_shape):
            return (obj[()] != 0).astype(np.uint8), f"{obj.name}"
    return None


def invalid_value(det: h5py.Group | None, dtype: np.dtype) -> tuple[float, str] | None:
    """The one value marking invalid pixels of integer frames, from the NXdetector's
    ``saturation_value`` / ``underload_value``, and where it was; None unless exact.

    NXdetector: the valid pixels are those ``<= saturation_value`` and ``>= underload_value``.
    That is a single invalid value (pyFAI's ``dummy``, no tolerance) only when it leaves one
    value of the dtype out: ``saturation_value`` one below the dtype's maximum (the maximum is
    the dummy, Eiger's convention: 2**32 − 1 for uint32) with no underload value above the
    dtype's minimum, or the mirror case. Anything else (a range of invalid values, float
    frames, no such field) gives None: no dummy is guessed.
    """
    if det is None or np.dtype(dtype).kind not in "ui":
        return None
    info = np.iinfo(dtype)
    found = {}
    for name in ("saturation_value", "underload_value"):
        obj = det.get(name)
        if isinstance(obj, h5py.Dataset) and obj.size == 1 and obj.dtype.kind in "uif":
            found[name] = (int(np.asarray(obj[()]).ravel()[0]), obj.name)
    saturation, underload = found.get("saturation_value"), found.get("underload_value")
    low_ok = underload is None or underload[0] <= info.min
    high_ok = saturation is None or saturation[0] >= info.max
    if saturation is not None and saturation[0] == info.max - 1 and low_ok:
        return float(info.max), f"{saturation[1]} + 1 (the {np.dtype(dtype)} maximum)"
    if underload is not None and underload[0] == info.min + 1 and high_ok:
        return float(info.min), f"{underload[1]} - 1 (the {np.dtype(dtype)} minimum)"
    return None
