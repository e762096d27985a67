"""SAXSLAB/Xenocs TIFF images and BioXTAS RAW: geometry from their headers.

SAXSLAB (Xenocs) instruments write an XML block ``<SAXSLABparameters>`` into a TIFF tag (315,
"Artist") of every image; BioXTAS RAW reads it. The geometry it holds, in fabio's orientation of
the array:

* ``wavelength`` (Å), ``detector_dist`` (mm, sample to detector);
* ``det_pixel_size`` (m, "x y"), else ``pixelsize`` (mm);
* ``beamcenter_actual`` (else ``beamcenter_nominal``): "row col" in pixels. RAW turns the image
  (``flipud`` of the transpose) before using the pair as (x, y); both describe the same point,
  so in fabio's array the first number is the row and the second the column.

:class:`SaxslabTranslator` is the image translator with that geometry filled in (``poni=``
overrides it); the header is recorded as ``saxslab_header``.

RAW's reduced profiles (``.dat``: a ``### DATA:`` block of q, I(q), σ, then a ``### HEADER:``
block of JSON, each line commented) carry the calibration RAW used: :func:`read_raw_dat` reads
both, :func:`raw_geometry` turns ``calibration_params`` into a pyFAI geometry. Those parameters
are the ones RAW handed to pyFAI's ``setFit2D`` (its beam-centre y is already counted from the top),
for the image as RAW loaded it — flipped left-right relative to fabio's array with RAW's default
``DetectorFlipLR`` (BioCAT): translate such images with ``flip="lr"``.

Examples
--------
>>> from pathlib import Path
>>> from pyscatter.translators.saxslab import saxslab_geometry
>>> header = {"wavelength": "1.5418", "detector_dist": "487.5608",
...           "det_pixel_size": "172e-6 172e-6", "beamcenter_actual": "359.10 267.30"}
>>> import pyFAI
>>> f2d = pyFAI.load(saxslab_geometry(header, (619, 487))).getFit2D()
>>> round(f2d["centerX"], 2), round(f2d["centerY"], 2), round(f2d["directDist"], 4)
(267.3, 359.1, 487.5608)
"""

from __future__ import annotations

import json
import logging
import math
import os
import xml.etree.ElementTree as ElementTree
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import h5py
import numpy as np

from pyscatter.errors import FileFormatError, InputError
from pyscatter.translators.base import check_output, expand_sources
from pyscatter.translators.images import ImageStackTranslator, _check_flip, read_image
from pyscatter.translators.nexus import fit2d_geometry

__all__ = [
    "RawProfile",
    "SaxslabTranslator",
    "raw_geometry",
    "read_raw_dat",
    "read_saxslab_header",
    "saxslab_geometry",
]

logger = logging.getLogger(__name__)

#: The TIFF tag SAXSLAB writes its XML into (Artist), as RAW reads it.
SAXSLAB_TAG = 315
#: Header keys that must agree between the images of one stack.
_GEOMETRY_KEYS = (
    "wavelength",
    "detector_dist",
    "det_pixel_size",
    "pixelsize",
    "beamcenter_actual",
    "beamcenter_nominal",
)


# --------------------------------------------------------------------------- SAXSLAB TIFF


def read_saxslab_header(path: str | os.PathLike) -> dict[str, str]:
    """The ``<SAXSLABparameters>`` of a TIFF image: parameter name → text (empty ones left out).

    Raises
    ------
    FileFormatError
        Not a TIFF file, or no SAXSLAB XML in it, or XML that does not parse.
    """
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    if not path.is_file():
        raise FileFormatError(f"{path}: no such file")
    try:
        with Image.open(path) as image:
            text = getattr(image, "tag_v2", {}).get(SAXSLAB_TAG)
    except (OSError, UnidentifiedImageError) as err:
        raise FileFormatError(f"{path}: not a TIFF image ({err})") from err
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    if not isinstance(text, str) or "<SAXSLABparameters" not in text:
        raise FileFormatError(
            f"{path}: no SAXSLAB header (XML <SAXSLABparameters> in TIFF tag {SAXSLAB_TAG})"
        )
    try:
        root = ElementTree.fromstring(text.strip().rstrip("\x00"))
    except ElementTree.ParseError as err:
        raise FileFormatError(f"{path}: SAXSLAB header is not valid XML ({err})") from err
    return {
        p.attrib["name"]: p.text.strip()
        for p in root.iter("param")
        if "name" in p.attrib and p.text and p.text.strip()
    }


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
        :func:`read_saxslab_header`.
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
    rows, cols = frame_shape
    if flip == "lr":
        col = cols - col
    elif flip == "ud":
        row = rows - row
    return fit2d_geometry(
        distance_mm=distance_mm,
        center_x=col,
        center_y=row,
        pixel_x_um=px_m * 1e6,
        pixel_y_um=py_m * 1e6,
        wavelength_angstrom=wavelength,
        frame_shape=frame_shape,
    )


class SaxslabTranslator(ImageStackTranslator):
    """SAXSLAB/Xenocs TIFF images: the image translator with the header's geometry.

    Pick it with ``format="saxslab"``: the ``images`` translator reads the same files (without
    their geometry) and comes first when the format is guessed.
    """

    priority = 10  # a TIFF with a SAXSLAB header is read with its geometry, not as a bare image

    name: ClassVar[str] = "saxslab"
    extensions: ClassVar[tuple[str, ...]] = (".tif", ".tiff")
    description: ClassVar[str] = "SAXSLAB/Xenocs TIFF images with their XML header geometry"

    def can_read(self, path: str | os.PathLike) -> bool:
        """A TIFF image carrying a SAXSLAB XML header."""
        try:
            if not super().can_read(path):
                return False
            read_saxslab_header(path)
            return True
        except Exception:  # noqa: BLE001 - can_read never raises
            return False

    def translate(  # type: ignore[override]  # keyword options of this format only
        self,
        sources: Any,
        h5_path: str | os.PathLike,
        *,
        positions: str | os.PathLike | None = None,
        motors: Sequence[str] | str | None = None,
        grid: Mapping[str, int] | str | None = None,
        poni: str | os.PathLike | Mapping[str, Any] | None = None,
        mask: str | os.PathLike | np.ndarray | None = None,
        flip: str | None = None,
        dummy: float | None = None,
        overwrite: bool = False,
        compression: str | None = "bslz4",
        progress: bool = False,
    ) -> Path:
        """As :meth:`ImageStackTranslator.translate`, with ``poni`` from the SAXSLAB header.

        The geometry comes from the first image's header; every image must carry the same
        geometry keys (:data:`_GEOMETRY_KEYS`). A given ``poni`` overrides it. The header of the
        first image is recorded as ``saxslab_header`` (JSON), and ``geometry_source``.

        Raises
        ------
        FileFormatError
            An image without a SAXSLAB header.
        InputError
            Images whose headers disagree on the geometry; see also the images translator.
        """
        h5_path = check_output(h5_path, overwrite)
        flip = _check_flip(flip)
        files = expand_sources(sources, extensions=self.extensions)
        headers = [read_saxslab_header(f) for f in files]
        first = headers[0]
        for path, header in zip(files[1:], headers[1:], strict=True):
            differ = [k for k in _GEOMETRY_KEYS if header.get(k) != first.get(k)]
            if differ:
                raise InputError(
                    f"{path}: SAXSLAB geometry ({', '.join(differ)}) differs from "
                    f"{files[0].name}'s; translate them separately or give poni="
                )
        source = "poni option"
        if poni is None:
            shape = read_image(files[0])[0].shape
            poni = saxslab_geometry(first, shape, flip, where=str(files[0]))
            source = f"SAXSLAB header of {files[0].name}"
        tmp = h5_path.with_name(f".{h5_path.name}.saxslab.partial")
        try:
            super().translate(
                files,
                tmp,
                positions=positions,
                motors=motors,
                grid=grid,
                poni=poni,
                mask=mask,
                flip=flip,
                dummy=dummy,
                overwrite=True,
                compression=compression,
                progress=progress,
            )
            with h5py.File(tmp, "r+") as h5:
                meas = h5["Measurement_000"]
                meas.attrs["translator"] = self.name
                meas.attrs["tool"] = f"pyscatter.translators.{self.name}"
                meas.attrs["geometry_source"] = source
                meas.attrs["saxslab_header"] = json.dumps(first, sort_keys=True)
            os.replace(tmp, h5_path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return h5_path


# --------------------------------------------------------------------------- BioXTAS RAW


@dataclass
class RawProfile:
    """A BioXTAS RAW reduced profile (``.dat``).

    Attributes
    ----------
    q, intensity, sigma : ndarray
        (n,) float64; q in 1/Å (RAW's ``q_A^-1``).
    header : dict
        The JSON header (``calibration_params``, ``normalizations``, ``counters`` …).
    """

    q: np.ndarray
    intensity: np.ndarray
    sigma: np.ndarray
    header: dict = field(default_factory=dict)


def read_raw_dat(path: str | os.PathLike) -> RawProfile:
    """Read a RAW ``.dat`` profile: its q, I(q), σ columns and its JSON header.

    Raises
    ------
    FileFormatError
        Missing file, no ``### DATA:`` block of three numeric columns, or a header that is not JSON.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise FileFormatError(f"{path}: cannot read it ({err})") from err
    data_part, sep, header_part = text.partition("### HEADER:")
    if "### DATA:" not in data_part:
        raise FileFormatError(f"{path}: no '### DATA:' block; not a BioXTAS RAW .dat profile")
    rows = []
    for number, line in enumerate(data_part.splitlines(), start=1):
        cells = line.split()
        if not cells or line.lstrip().startswith("#"):
            continue
        try:
            values = [float(c) for c in cells]
        except ValueError as err:
            raise FileFormatError(f"{path}, line {number}: {err}") from err
        if len(values) < 2:
            raise FileFormatError(f"{path}, line {number}: expected q, I(q)[, sigma]")
        rows.append(values[:3] + [math.nan] * (3 - len(values[:3])))
    if not rows:
        raise FileFormatError(f"{path}: the DATA block has no rows")
    header: dict = {}
    if sep:
        body = "\n".join(ln[1:] for ln in header_part.splitlines() if ln.startswith("#"))
        try:
            header = json.loads(body) if body.strip() else {}
        except json.JSONDecodeError as err:
            raise FileFormatError(f"{path}: the HEADER block is not JSON ({err})") from err
    table = np.asarray(rows, dtype=np.float64)
    return RawProfile(table[:, 0], table[:, 1], table[:, 2], header)


def raw_geometry(header: Mapping[str, Any], frame_shape: tuple[int, int]) -> dict[str, Any]:
    """pyFAI geometry of RAW's ``calibration_params``, for the image as RAW loaded it.

    Parameters
    ----------
    header : mapping
        :attr:`RawProfile.header` (or its ``calibration_params``).
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
