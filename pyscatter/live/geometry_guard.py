"""A watch holds one geometry: stop at a frame whose ESRF header geometry differs from the first.

A live file is laid out from its first frame (:mod:`pyscatter.live.layout`), geometry included.
A folder of EDF images whose headers change their geometry later (an energy or distance series,
as ESRF ID02 writes them) would otherwise be integrated with the first frame's geometry,
silently. :class:`GeometryGuard` compares the geometry keys of every arriving frame's header
(``SampleDistance``, ``WaveLength``, ``Center_1/2``, ``PSize_1/2``, ``Rot_1/2/3``: what
:func:`pyscatter.translators.geometry_readers.esrf_geometries` reads, compared as numbers) with
the first frame's, recorded in the live file as ``esrf_header``; the watch writes the frames of
the same geometry, then stops with one line naming the frame and the key. Such a scan is
translated offline (``pyscatter translate``), which records the geometry of every frame.

Only a geometry taken from the headers is guarded: with ``poni`` (or ``header_geometry``
false) the headers' geometry is not used, as offline.

Examples
--------
>>> guard = GeometryGuard({"WaveLength": "1e-10", "SampleDistance": "2"}, "frame_0.edf")
>>> guard.check({"WaveLength": "1.0e-10", "SampleDistance": "2.0"}, "frame_1.edf", 1) is None
True
>>> print(guard.check({"WaveLength": "1.2e-10", "SampleDistance": "2"}, "frame_2.edf", 2))
... # doctest: +ELLIPSIS
frame_2.edf: frame 2: its ESRF header WaveLength = 1.2e-10 differs from 1e-10 in frame_0.edf...
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from pyscatter.translators.common import header_text
from pyscatter.translators.geometry_readers import HEADER_GEOMETRY_KEYS, same_value

__all__ = ["GUARDED_KEYS", "GeometryGuard"]

#: The header keys of the geometry a watch follows (those the offline translator reads).
GUARDED_KEYS = HEADER_GEOMETRY_KEYS


class GeometryGuard:
    """The first frame's ESRF header geometry, and :meth:`check` of a later frame's header.

    Parameters
    ----------
    reference : mapping
        The first frame's geometry keys as text (its ``esrf_header`` record).
    first : str
        How messages name the first frame (its file name).
    """

    def __init__(self, reference: Mapping[str, Any], first: str) -> None:
        self.reference = {k: header_text(reference, k) for k in GUARDED_KEYS}
        self.first = first

    @classmethod
    def of_measurement(cls, attrs: Mapping[str, Any]) -> GeometryGuard | None:
        """The guard of a live file's ``Measurement_000`` attributes; None when its geometry
        does not come from an ESRF header (a PONI, none)."""
        source = str(attrs.get("geometry_source", ""))
        header = attrs.get("esrf_header")
        if not source.startswith("ESRF header") or header is None:
            return None
        if isinstance(header, bytes):
            header = header.decode()
        if isinstance(header, str):
            header = json.loads(header)
        first = source.removeprefix("ESRF header of ").split(" (", 1)[0]
        return cls(header, first)

    def check(self, header: Mapping[str, Any], origin: str, index: int) -> str | None:
        """None when ``header`` holds the first frame's geometry, else the one-line message."""
        for key in GUARDED_KEYS:
            value, ref = header_text(header, key), self.reference[key]
            if not same_value(value, ref):
                return (
                    f"{origin}: frame {index}: its ESRF header {key} = {value} differs from "
                    f"{ref} in {self.first}, whose geometry the live file holds; a watch follows "
                    "one geometry: translate a scan whose geometry changes offline "
                    "(pyscatter translate), which records the geometry of every frame"
                )
        return None
