"""SAXSLAB/Xenocs TIFF images and BioXTAS RAW: geometry from their headers.

SAXSLAB (Xenocs) instruments write an XML block ``<SAXSLABparameters>`` into a TIFF tag (315,
"Artist") of every image; BioXTAS RAW reads it. The geometry it holds, in fabio's orientation of
the array:

* ``wavelength`` (Å), ``detector_dist`` (mm, sample to detector);
* ``det_pixel_size`` (m, "x y"), else ``pixelsize`` (mm);
* ``beamcenter_actual`` (else ``beamcenter_nominal``): "row col" in pixels. RAW turns the image
  (``flipud`` of the transpose) before using the pair as (x, y); both describe the same point,
  so in fabio's array the first number is the row and the second the column.

:class:`SaxslabTranslator` is the image translator (every option of it: positions, snake,
monitor, resume …) whose hooks read that header: the geometry (``poni=`` overrides it), numeric
parameters as ``monitor``/``motors``, and the header recorded as ``saxslab_header``.
The readers :func:`saxslab_geometry` and :func:`raw_geometry` live in
:mod:`pyscatter.translators.geometry_readers` (re-exported here).

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

import numpy as np

from pyscatter.errors import FileFormatError
from pyscatter.translators.common import header_number
from pyscatter.translators.geometry_readers import (  # re-exported: they used to live here
    SAXSLAB_GEOMETRY_KEYS,
    check_same_keys,
    poni_geometry,
    raw_geometry,
    saxslab_geometry,
)
from pyscatter.translators.images import ImageStackTranslator
from pyscatter.translators.positions import parse_label

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


class SaxslabTranslator(ImageStackTranslator):
    """SAXSLAB/Xenocs TIFF images: the image translator with the geometry of their XML header.

    Every option of :meth:`ImageStackTranslator.translate` applies (positions, grid, snake,
    incomplete, monitor, flip, resume …). What differs, through the image translator's hooks:

    * each image's header is fabio's plus its ``<SAXSLABparameters>``
      (:func:`read_saxslab_header`); an image without them is refused;
    * the geometry comes from the first header (:func:`saxslab_geometry`, mirrored with ``flip``)
      unless ``poni`` is given, and every image must agree on :data:`SAXSLAB_GEOMETRY_KEYS`;
    * ``monitor`` and ``motors`` may name any numeric SAXSLAB parameter (``saxsconf_Izero``,
      ``ysam``, ``zsam`` …);
    * the first image's SAXSLAB parameters are recorded as ``saxslab_header`` (JSON).

    Pick it with ``format="saxslab"``, or let the format be guessed: a TIFF carrying a SAXSLAB
    header is read by this translator before the plain image stack.
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

    def file_header(self, path: Path, header: dict) -> dict:
        """fabio's header with the image's SAXSLAB parameters (which win on a common key)."""
        return {**header, **read_saxslab_header(path)}

    def header_geometry(
        self, header: Mapping[str, Any], frame_shape: tuple[int, int], flip: str | None, where: str
    ) -> tuple[dict, str]:
        """:func:`saxslab_geometry` of the first image, for the frames as stored (``flip``)."""
        config = saxslab_geometry(header, frame_shape, flip, where=where)
        # through pyFAI as a PONI config is: the geometry recorded as it always was
        return poni_geometry(config, frame_shape, {}), f"SAXSLAB header of {Path(where).name}"

    def frame_geometries(self, headers, files, frame_shape) -> None:
        """None: a SAXSLAB stack holds one geometry (:meth:`check_headers` checks it)."""
        return None

    def check_headers(self, headers: Sequence[Mapping[str, Any]], files: Sequence[Path]) -> None:
        """Every image with the first one's :data:`SAXSLAB_GEOMETRY_KEYS`."""
        check_same_keys(headers, files, SAXSLAB_GEOMETRY_KEYS, "SAXSLAB")

    def header_motors(
        self, headers: Sequence[Mapping[str, Any]], motors: Any, files: Sequence[Path]
    ) -> tuple[list[tuple[str, str]], np.ndarray, str]:
        """Numeric SAXSLAB parameters of every image (``"ysam,zsam"``, slow to fast)."""
        if isinstance(motors, str):
            motors = [m for m in motors.split(",") if m.strip()]
        labels = [parse_label(m, what="motor") for m in motors]
        values = np.full((len(headers), len(labels)), math.nan)
        for i, (header, path) in enumerate(zip(headers, files, strict=True)):
            for k, (name, _) in enumerate(labels):
                value = header_number(header, name, where=str(path))
                if value is None:
                    raise FileFormatError(f"{path}: no SAXSLAB parameter {name!r} for motors=")
                values[i, k] = value
        return labels, values, "SAXSLAB header parameters"

    def extra_attributes(self, first: Path | None, header: Mapping[str, Any]) -> dict[str, Any]:
        """The first image's SAXSLAB parameters as ``saxslab_header`` (JSON, sorted keys)."""
        if first is None:
            return {}
        return {"saxslab_header": json.dumps(read_saxslab_header(first), sort_keys=True)}


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
