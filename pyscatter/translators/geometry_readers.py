"""Geometry readers: what an instrument's header (or a PONI file) says → a pyFAI geometry config.

Every translator takes its geometry from here; each reader returns
``AzimuthalIntegrator.get_config()`` checked by :func:`pyscatter.geometry.check_geometry`:

================================ ============================================================
reader                           source
================================ ============================================================
:func:`poni_geometry`            a PONI file or a pyFAI config (``poni=``), checked against
                                 the frames' shape and the header's pixel size
:func:`esrf_geometry`            ESRF SAXS header keys (EDF, LIMA ``header/``) through
                                 ``setSPD``; :func:`esrf_header_geometry` adds where it came
                                 from, :func:`check_same_geometry` checks a stack agrees
:func:`saxslab_geometry`         the XML ``<SAXSLABparameters>`` of SAXSLAB/Xenocs TIFF files
:func:`raw_geometry`             BioXTAS RAW's ``calibration_params`` (a ``.dat`` profile header)
:func:`nexus_geometry`           NeXus NXdetector/NXbeam fields, each in its ``@units``
                                 (:mod:`pyscatter.translators.nexus_geometry`, which also
                                 holds the NeXus unit tables and field helpers)
:func:`fit2d_geometry`           Fit2D-style numbers (mm, pixels, µm, Å) through ``setFit2D``
================================ ============================================================

ESRF keys (Boesecke's SAXS programs): ``Center_1`` is the point of normal incidence along the
**fast (column)** axis, ``Center_2`` along the slow (row) axis, in pixels; ``PSize_1/2``,
``SampleDistance`` and ``WaveLength`` in metres. Pixel coordinates follow pyFAI: the centre of
pixel index ``i`` sits at ``i + 0.5``.

SAXSLAB keys, in fabio's orientation of the array: ``wavelength`` (Å), ``detector_dist`` (mm),
``det_pixel_size`` (m, "x y") else ``pixelsize`` (mm), ``beamcenter_actual`` (else
``beamcenter_nominal``): "row col" in pixels (RAW turns the image before reading the pair as
(x, y); both describe the same point).

Examples
--------
>>> header = {"Center_1": "60.5", "Center_2": "40.5", "PSize_1": "7.5e-05",
...           "PSize_2": "7.5e-05", "SampleDistance": "2.0", "WaveLength": "1e-10"}
>>> config = esrf_geometry(header, (80, 120), where="example")
>>> round(config["poni1"], 7), round(config["poni2"], 7), config["dist"]
(0.0030375, 0.0045375, 2.0)
>>> import pyFAI
>>> header = {"wavelength": "1.5418", "detector_dist": "487.5608",
...           "det_pixel_size": "172e-6 172e-6", "beamcenter_actual": "359.10 267.30"}
>>> f2d = pyFAI.load(saxslab_geometry(header, (619, 487))).getFit2D()
>>> round(f2d["centerX"], 2), round(f2d["centerY"], 2), round(f2d["directDist"], 4)
(267.3, 359.1, 487.5608)
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from pyscatter.errors import FileFormatError, InputError
from pyscatter.geometry import check_geometry, short_error
from pyscatter.geometry import fit2d_config as fit2d_geometry
from pyscatter.translators.common import flip_centre, header_number, header_text
from pyscatter.translators.nexus_geometry import nexus_geometry

__all__ = [
    "GEOMETRY_HINT",
    "GEOMETRY_KEYS",
    "HEADER_GEOMETRY_KEYS",
    "SAXSLAB_GEOMETRY_KEYS",
    "check_same_geometry",
    "esrf_geometries",
    "check_same_keys",
    "esrf_geometry",
    "esrf_header_geometry",
    "fit2d_geometry",
    "geometry_record",
    "nexus_geometry",
    "poni_geometry",
    "raw_geometry",
    "same_value",
    "saxslab_geometry",
]

#: Every key the ESRF geometry needs.
GEOMETRY_KEYS = ("SampleDistance", "WaveLength", "Center_1", "Center_2", "PSize_1", "PSize_2")
#: Every header key of the geometry (with the rotations, which must be absent or zero).
HEADER_GEOMETRY_KEYS = (*GEOMETRY_KEYS, "Rot_1", "Rot_2", "Rot_3")
#: Keys that say "this header describes a geometry": any of them makes every GEOMETRY_KEY required.
#: (``PSize_*`` alone does not: many EDF writers record the pixel size and nothing else.)
_GEOMETRY_TRIGGERS = ("SampleDistance", "WaveLength", "Center_1", "Center_2")
#: How to give a geometry instead, for messages.
GEOMETRY_HINT = (
    "give the geometry with poni=FILE (command line --poni FILE), which overrides the header, "
    "or translate without one with header_geometry=False"
)
#: SAXSLAB header keys that must agree between the images of one stack.
SAXSLAB_GEOMETRY_KEYS = (
    "wavelength",
    "detector_dist",
    "det_pixel_size",
    "pixelsize",
    "beamcenter_actual",
    "beamcenter_nominal",
)


# --------------------------------------------------------------------------- PONI


#: Version of what :func:`poni_geometry` stores in the cache; part of every key.
_PONI_CACHE_VERSION = 1


def poni_geometry(poni: Any, frame_shape: tuple[int, int], header: Mapping[str, Any]) -> dict:
    """pyFAI config of ``poni`` (a PONI file or a config dict), checked against the frames.

    A detector with a shape must match ``frame_shape``; one without gets it. An ESRF ``PSize_1``
    (columns) / ``PSize_2`` (rows) in ``header`` must match the detector's pixel size (1 %).

    A PONI file's config is cached (:mod:`pyscatter.io.matrix_cache`, kind ``"poni"``) by the
    file's bytes, ``frame_shape`` and the pyFAI version: reading one needs pyFAI's detectors,
    whose import costs ~1.3 s (scipy.signal and pyFAI's engines come with them, even for
    ``pyFAI.io.ponifile``), so the next translation with the same PONI file does not import
    pyFAI. The cached config is the one pyFAI gave, stored only when its JSON round trip records
    the same text (the detector orientation comes back as its number).

    Raises
    ------
    InputError
        A missing PONI file, a config pyFAI does not read, a detector of another shape or pixel.
    FileFormatError
        A file that is not a PONI file.
    """
    if isinstance(poni, Mapping):
        return _read_poni(poni, frame_shape, header)[0]
    if not Path(poni).is_file():
        raise InputError(f"PONI file not found: {poni}")
    return _cached_poni(Path(poni), frame_shape, header)


def _cached_poni(path: Path, frame_shape: tuple[int, int], header: Mapping[str, Any]) -> dict:
    """:func:`_read_poni` of a file, through the cache (see :func:`poni_geometry`)."""
    import hashlib
    import json

    import numpy as np

    from pyscatter._metadata import installed_version
    from pyscatter.io import matrix_cache

    try:
        data = path.read_bytes()
    except OSError:
        return _read_poni(path, frame_shape, header)[0]
    version = installed_version("pyFAI")
    if version is None:  # pragma: no cover - pyFAI is a dependency
        return _read_poni(path, frame_shape, header)[0]
    entry = matrix_cache.key(
        "poni",
        sha256=hashlib.sha256(data).hexdigest(),
        frame_shape=[int(n) for n in frame_shape],
        pyFAI=version,
        reader=_PONI_CACHE_VERSION,
    )
    hit = matrix_cache.load(entry, _poni_entry_check)
    if hit is not None:  # a config that passed the shape and geometry checks
        _check_pixel_size(str(path), (float(hit["pixels"][0]), float(hit["pixels"][1])), header)
        return json.loads(str(hit["config"]))
    config, pixels = _read_poni(path, frame_shape, header)
    try:
        text = json.dumps(config, sort_keys=True)
        same = json.dumps(json.loads(text), sort_keys=True) == text
        numbers = np.array([float(pixels[0]), float(pixels[1])])
    except (TypeError, ValueError):
        same = False
    if same:
        matrix_cache.store(entry, {"config": np.array(text), "pixels": numbers})
    return config


def _poni_entry_check(arrays: dict[str, Any]) -> bool:
    import json

    return isinstance(json.loads(str(arrays["config"])), dict) and arrays["pixels"].shape == (2,)


def _read_poni(
    poni: Any, frame_shape: tuple[int, int], header: Mapping[str, Any]
) -> tuple[dict, tuple[Any, Any]]:
    """pyFAI's config of ``poni`` (file or dict), checked against ``frame_shape`` and ``header``
    as :func:`poni_geometry` says; with the detector's pixel sizes (rows, columns)."""
    import pyFAI

    if isinstance(poni, Mapping):
        where = "poni (dict)"
        try:
            ai = pyFAI.load(dict(poni))
        except Exception as err:  # noqa: BLE001 - pyFAI raises many kinds
            raise InputError(f"{where}: not a pyFAI geometry config ({short_error(err)})") from err
    else:
        where = str(poni)
        try:
            ai = pyFAI.load(str(poni))
        except Exception as err:  # noqa: BLE001
            raise FileFormatError(
                f"{poni}: not a PONI file pyFAI can read ({short_error(err)})"
            ) from err
    det = ai.detector
    shape = det.shape if det.shape is not None else det.max_shape
    if shape is None:
        det.max_shape = frame_shape
    elif tuple(shape) != tuple(frame_shape):
        raise InputError(
            f"{where}: detector {det.name!r} is {tuple(shape)} pixels (rows, cols); "
            f"the frames are {tuple(frame_shape)}"
        )
    _check_pixel_size(where, (det.pixel1, det.pixel2), header)
    return check_geometry(ai, where=where), (det.pixel1, det.pixel2)


def _check_pixel_size(where: str, pixels: tuple[Any, Any], header: Mapping[str, Any]) -> None:
    """ESRF ``PSize_1`` (fast, columns) / ``PSize_2`` (rows) in metres against the detector's
    ``pixels`` (rows, columns)."""
    for key, pixel in (("PSize_1", pixels[1]), ("PSize_2", pixels[0])):
        try:
            value = float(header[key])
        except (KeyError, TypeError, ValueError):
            continue
        if 0 < value < 1e-2 and pixel and not math.isclose(value, pixel, rel_tol=0.01):
            raise InputError(
                f"{where}: detector pixel {pixel} m; the image header says {key} = {value} m"
            )


# --------------------------------------------------------------------------- ESRF


def esrf_geometry(
    header: Mapping[str, Any], frame_shape: Sequence[int], *, where: str
) -> dict[str, Any] | None:
    """pyFAI geometry config from the ESRF SAXS keys of ``header``, through ``setSPD``.

    Parameters
    ----------
    header : mapping
        An EDF header or the ``header/`` group of a LIMA file, as key → text.
    frame_shape : (rows, cols)
        Of the stored frames; becomes the detector shape.
    where : str
        The file the header comes from, for messages.

    Returns
    -------
    dict or None
        ``AzimuthalIntegrator.get_config()``; None when the header holds none of
        ``SampleDistance``, ``WaveLength``, ``Center_1``, ``Center_2``.

    Raises
    ------
    InputError
        Some geometry keys present and others missing (the message names the missing ones and
        how to give the geometry instead), a non-positive distance, wavelength or pixel size, or
        detector rotations (``Rot_*``), which pyFAI's ``setSPD`` does not implement.
    FileFormatError
        A geometry key that is not a number.
    """
    if not any(header_text(header, k) is not None for k in _GEOMETRY_TRIGGERS):
        return None
    missing = [k for k in GEOMETRY_KEYS if header_text(header, k) is None]
    if missing:
        present = [k for k in GEOMETRY_KEYS if k not in missing]
        raise InputError(
            f"{where}: the ESRF header gives {', '.join(present)} but not "
            f"{', '.join(missing)}, so the geometry is incomplete; {GEOMETRY_HINT}"
        )
    values = {k: header_number(header, k, where=where) for k in GEOMETRY_KEYS}
    for key in ("SampleDistance", "WaveLength", "PSize_1", "PSize_2"):
        if not values[key] > 0:  # type: ignore[operator]
            raise InputError(f"{where}: header key {key} = {values[key]} must be positive (metres)")
    rotations = {k: header_number(header, k, where=where) for k in ("Rot_1", "Rot_2", "Rot_3")}
    if any(r for r in rotations.values()):
        raise InputError(
            f"{where}: the ESRF header has detector rotations "
            f"({', '.join(f'{k}={v}' for k, v in rotations.items() if v)}), which pyFAI's setSPD "
            f"does not implement; {GEOMETRY_HINT}"
        )
    from pyFAI.integrator.azimuthal import AzimuthalIntegrator

    ai = AzimuthalIntegrator()
    ai.setSPD(
        SampleDistance=values["SampleDistance"],
        Center_1=values["Center_1"],
        Center_2=values["Center_2"],
        PSize_1=values["PSize_1"],
        PSize_2=values["PSize_2"],
        WaveLength=values["WaveLength"],
    )
    ai.detector.max_shape = tuple(int(s) for s in frame_shape)
    return check_geometry(ai, where=f"{where} (ESRF header)")


def esrf_header_geometry(
    header: Mapping[str, Any], frame_shape: Sequence[int], *, where: str, flip: str | None = None
) -> tuple[dict[str, Any], str] | None:
    """:func:`esrf_geometry` and where it comes from (``geometry_source``); None without one.

    Raises
    ------
    InputError
        See :func:`esrf_geometry`; also a ``flip``: the header describes the image as stored.
    """
    config = esrf_geometry(header, frame_shape, where=where)
    if config is None:
        return None
    if flip is not None:
        raise InputError(
            f"{where}: the ESRF header geometry refers to the image as stored, but flip={flip!r} "
            "was asked; give the geometry of the flipped images with poni=FILE (--poni FILE), or "
            "drop flip"
        )
    return config, (
        f"ESRF header of {Path(where).name} (SampleDistance, WaveLength, Center_1/2, "
        "PSize_1/2 via pyFAI setSPD)"
    )


def check_same_geometry(
    headers: Sequence[Mapping[str, Any]], files: Sequence[str | os.PathLike]
) -> None:
    """Refuse a stack whose ESRF header geometry changes from one file to the next.

    One translation records one geometry, that of the first header (per-position geometry is
    not supported); a later header with another value of a geometry key (compared as numbers
    when both are numbers) would be silently ignored, so it is an error instead.

    Parameters
    ----------
    headers : sequence of mappings
        The header of every file, in order.
    files : sequence of paths
        Every file of the stack, the first included (for messages).

    Raises
    ------
    InputError
        Naming the first differing file, the key and both values.
    """
    keys = HEADER_GEOMETRY_KEYS
    reference = {k: header_text(headers[0], k) for k in keys}
    for path, header in zip(files[1:], headers[1:], strict=True):
        for key in keys:
            value = header_text(header, key)
            if not same_value(value, reference[key]):
                raise InputError(
                    f"{path}: header key {key} = {value} differs from {reference[key]} in "
                    f"{Path(files[0]).name}; one translation holds one geometry: translate the "
                    "files of each geometry separately, or give poni=FILE (--poni FILE)"
                )


def esrf_geometries(
    headers: Sequence[Mapping[str, Any]],
    files: Sequence[str | os.PathLike],
    frame_shape: Sequence[int],
) -> list[dict[str, Any]]:
    """The ESRF header geometry of every file of a stack, one pyFAI config per file.

    Headers with the same geometry keys (as text) share one config, so a stack of k distinct
    geometries costs k conversions. A geometry that changes from file to file (an energy or
    distance series) is kept per file: :func:`pyscatter.io.geometry_series.series_extras`
    records it per position.

    Raises
    ------
    InputError
        A later header without the geometry the first one has (see
        :func:`check_same_geometry`), or an incomplete or unphysical geometry (naming the file).
    """
    keys = HEADER_GEOMETRY_KEYS
    cache: dict[tuple, dict[str, Any] | None] = {}
    out = []
    for path, header in zip(files, headers, strict=True):
        texts = tuple(header_text(header, k) for k in keys)
        if texts not in cache:
            cache[texts] = esrf_geometry(header, frame_shape, where=str(path))
        config = cache[texts]
        if config is None:
            check_same_geometry(headers, files)  # names the file and the key that is missing
            raise InputError(f"{path}: no ESRF header geometry (SampleDistance, WaveLength …)")
        out.append(config)
    return out


def same_value(a: str | None, b: str | None) -> bool:
    """Equal as numbers when both are numbers (``2`` and ``2.0``), else as text."""
    if a is None or b is None:
        return a is b
    try:
        return float(a.split()[0]) == float(b.split()[0])
    except (ValueError, IndexError):
        return a == b


def geometry_record(header: Mapping[str, Any]) -> dict[str, str]:
    """The ESRF geometry, binning and dummy keys found in ``header`` (text), for the attributes."""
    keys = (*GEOMETRY_KEYS, "BSize_1", "BSize_2", "Dummy", "DDummy", "Rot_1", "Rot_2", "Rot_3")
    return {k: text for k in keys if (text := header_text(header, k)) is not None}


# --------------------------------------------------------------------------- SAXSLAB, RAW


def _numbers(header: Mapping[str, str], key: str, count: int, where: str) -> list[float]:
    try:
        values = [float(v) for v in str(header[key]).split()]
    except (KeyError, ValueError) as err:
        raise FileFormatError(f"{where}: SAXSLAB header {key!r}: {err}") from err
    if len(values) != count or not all(math.isfinite(v) for v in values):
        raise FileFormatError(
            f"{where}: SAXSLAB header {key} = {header[key]!r}; expected {count} numbers"
        )
    return values


def saxslab_geometry(
    header: Mapping[str, str],
    frame_shape: tuple[int, int],
    flip: str | None = None,
    *,
    where: str = "SAXSLAB header",
) -> dict[str, Any]:
    """pyFAI geometry of a SAXSLAB header, for the image in fabio's orientation (or ``flip``-ped).

    Parameters
    ----------
    header : mapping
        :func:`pyscatter.translators.saxslab.read_saxslab_header`.
    frame_shape : (int, int)
        (rows, cols) of the image as fabio reads it.
    flip : {None, "ud", "lr"}
        The orientation the frames are stored in; the beam centre is mirrored to match.

    Raises
    ------
    FileFormatError
        A geometry key missing or not numeric (``where`` names the file).
    """
    key = "wavelength" if "wavelength" in header else "saxsconf_wavelength"
    (wavelength,) = _numbers(header, key, 1, where)
    (distance_mm,) = _numbers(header, "detector_dist", 1, where)
    if "det_pixel_size" in header:
        px_m, py_m = _numbers(header, "det_pixel_size", 2, where)
    else:
        px_mm, py_mm = _numbers(header, "pixelsize", 2, where)
        px_m, py_m = px_mm * 1e-3, py_mm * 1e-3
    centre = "beamcenter_actual" if "beamcenter_actual" in header else "beamcenter_nominal"
    row, col = _numbers(header, centre, 2, where)
    col, row = flip_centre(col, row, frame_shape, flip)
    return fit2d_geometry(
        distance_mm=distance_mm,
        center_x=col,
        center_y=row,
        pixel_x_um=px_m * 1e6,
        pixel_y_um=py_m * 1e6,
        wavelength_angstrom=wavelength,
        frame_shape=frame_shape,
    )


def check_same_keys(
    headers: Sequence[Mapping[str, Any]],
    files: Sequence[str | os.PathLike],
    keys: Sequence[str],
    what: str,
) -> None:
    """Refuse a stack whose headers disagree on ``keys`` (compared as text).

    Raises
    ------
    InputError
        Naming the first differing file and the keys (``what`` names the header kind).
    """
    first = headers[0]
    for path, header in zip(files[1:], headers[1:], strict=True):
        differ = [k for k in keys if header.get(k) != first.get(k)]
        if differ:
            raise InputError(
                f"{path}: {what} geometry ({', '.join(differ)}) differs from "
                f"{Path(files[0]).name}'s; translate them separately or give poni="
            )


def raw_geometry(header: Mapping[str, Any], frame_shape: tuple[int, int]) -> dict[str, Any]:
    """pyFAI geometry of BioXTAS RAW's ``calibration_params``, for the image as RAW loaded it.

    Those are the numbers RAW handed to pyFAI's ``setFit2D`` (its beam-centre y is already
    counted from the top), for the image flipped left-right relative to fabio's array with RAW's
    default ``DetectorFlipLR`` (BioCAT): translate such images with ``flip="lr"``.

    Parameters
    ----------
    header : mapping
        The JSON header of a RAW profile (or its ``calibration_params``).
    frame_shape : (int, int)
        (rows, cols).

    Raises
    ------
    FileFormatError
        A calibration key missing.
    """
    cal = header.get("calibration_params", header)
    try:
        return fit2d_geometry(
            distance_mm=float(cal["Sample-to-detector distance (mm)"]),
            center_x=float(cal["Beam_Center_X"]),
            center_y=float(cal["Beam_Center_Y"]),
            pixel_x_um=float(cal["Detector_X_Pixel_Size"]),
            pixel_y_um=float(cal["Detector_Y_Pixel_Size"]),
            wavelength_angstrom=float(cal["Wavelength (A)"]),
            frame_shape=frame_shape,
            tilt_deg=float(cal.get("Detector Tilt", 0.0)),
            tilt_plane_deg=float(cal.get("Detector Tilt Plane Rotation", 0.0)),
        )
    except KeyError as err:
        raise FileFormatError(f"RAW calibration_params lack {err}; have {sorted(cal)}") from err
