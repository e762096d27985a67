"""ESRF header conventions shared by the EDF and LIMA HDF5 translators.

ESRF SAXS headers (EDF files and the ``header/`` group of ID02's LIMA files alike) describe the
geometry in the keys of Boesecke's SAXS programs, which pyFAI reads with ``Geometry.setSPD``:

============== ===========================================================================
key            meaning
============== ===========================================================================
Center_1       point of normal incidence along the **fast (column)** axis, in pixels
Center_2       the same along the **slow (row)** axis, in pixels
PSize_1/2      pixel size along the fast / slow axis, in metres, of the image as stored
SampleDistance sample to detector distance at the point of normal incidence, in metres
WaveLength     in metres
Dummy, DDummy  invalid pixels hold ``Dummy`` (within ``DDummy``); ``Dummy = 0`` means none
BSize_1/2      binning already applied to the stored image (recorded only: ``PSize`` and
               ``Center`` refer to the stored, binned image)
Title          free text; ID02 users write the magnetic field in it (``sampleA_250mT_001``)
============== ===========================================================================

Pixel coordinates follow pyFAI: the centre of pixel index ``i`` sits at ``i + 0.5``, so the pixel
of index ``(Center_2 - 0.5, Center_1 - 0.5)`` has q = 0. The geometry readers of these keys
(:func:`esrf_geometry`, :func:`check_same_geometry`, :func:`geometry_record`) live in
:mod:`pyscatter.translators.geometry_readers` and are re-exported here; :func:`header_text` and
:func:`header_number` in :mod:`pyscatter.translators.common`.

SPEC-era headers carry motor and counter values as parallel lists: ``motor_mne``/``motor_pos`` and
``counter_mne``/``counter_pos`` (see :func:`pyscatter.translators.positions.motor_positions`).

LIMA HDF5 files (ESRF's detector library, :func:`read_lima`) keep the same header keys as string
datasets in the ``header/`` group of their NXdetector; the instrument and detector groups are found
by ``NX_class`` (``ESRF-ID02/eiger2`` on some ID02 files, ``instrument/id02-eiger2-saxs`` on others).

Examples
--------
>>> parse_field_mT("sampleA_250mT_001"), parse_field_mT("scan_1.2T"), parse_field_mT("x_-50mT")
(250.0, 1200.0, -50.0)
"""

from __future__ import annotations

import datetime as _dt
import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from pyscatter.errors import FileFormatError, InputError
from pyscatter.io.raw import chunk_filters
from pyscatter.translators.base import natural_key
from pyscatter.translators.common import attr_text, header_number, header_text, nx_class
from pyscatter.translators.geometry_readers import (  # re-exported: they used to live here
    GEOMETRY_HINT,
    GEOMETRY_KEYS,
    check_same_geometry,
    esrf_geometry,
    geometry_record,
)

__all__ = [
    "GEOMETRY_HINT",
    "GEOMETRY_KEYS",
    "LimaFile",
    "find_datasets",
    "is_lima",
    "read_lima",
    "check_same_geometry",
    "dummy_mask",
    "esrf_dummy",
    "esrf_geometry",
    "geometry_record",
    "header_counters",
    "header_monitor",
    "header_number",
    "header_text",
    "parse_field_mT",
    "parse_temperature_K",
]

# A number (optionally signed; "p" may stand for the decimal point, as in file names) followed by
# a field unit; not preceded by a letter or digit (so "x2T" or "v1.2T" are not fields) and not
# followed by a letter (so "3mTorr" is not one).
_FIELD = re.compile(r"(?<![A-Za-z0-9.])([-+]?\d+(?:[.p]\d+)?)\s*(mT|T)(?![A-Za-z])")
_TEMPERATURE = re.compile(r"(?<![A-Za-z0-9.])([-+]?\d+(?:[.p]\d+)?)\s*(mK|K)(?![A-Za-z])")


def esrf_dummy(header: Mapping[str, Any], *, where: str) -> tuple[float, float] | None:
    """``(Dummy, DDummy)`` of the header, or None when absent or ``Dummy == 0`` (no dummy)."""
    dummy = header_number(header, "Dummy", where=where)
    if dummy is None or dummy == 0:
        return None
    delta = header_number(header, "DDummy", where=where) or 0.0
    return dummy, abs(delta)


def dummy_mask(frame: np.ndarray, dummy: float, delta_dummy: float = 0.0) -> np.ndarray:
    """Pixels holding the dummy value, as pyFAI's ``preproc`` finds them.

    ``|frame - dummy| <= delta_dummy`` when ``delta_dummy`` is nonzero, ``frame == dummy``
    otherwise (computed in float64, so unsigned frames do not wrap).

    Returns
    -------
    ndarray
        Boolean, the shape of ``frame``.

    Examples
    --------
    >>> dummy_mask(np.array([[0, 5], [-1, 7]]), -1.0).tolist()
    [[False, False], [True, False]]
    """
    values = np.asarray(frame, dtype=np.float64)
    if delta_dummy:
        return np.abs(values - dummy) <= delta_dummy
    return values == dummy


def _parse_quantity(text: str, pattern: re.Pattern[str], scale: dict[str, float]) -> float | None:
    found = {
        float(number.replace("p", ".")) * scale[unit] for number, unit in pattern.findall(text)
    }
    if not found:
        return None
    if len(found) > 1:
        values = ", ".join(f"{v:g}" for v in sorted(found))
        raise InputError(f"title {text!r} names several values ({values}); expected one")
    return found.pop()


def parse_field_mT(text: str) -> float | None:  # noqa: N802 - the unit is part of the name
    """The magnetic field written in a title or file name, in mT; None when there is none.

    ``250mT`` → 250, ``1.2T`` or ``1p2T`` → 1200, ``-50mT`` → -50. The number must not follow a
    letter or digit directly (``x2T`` is not a field) and the unit must end the word.

    Raises
    ------
    InputError
        The text names several different fields.
    """
    return _parse_quantity(text, _FIELD, {"mT": 1.0, "T": 1000.0})


def parse_temperature_K(text: str) -> float | None:  # noqa: N802
    """The temperature written in a title (``300K``, ``4.2K``, ``150mK``), in K; None if none.

    Raises
    ------
    InputError
        The text names several different temperatures.
    """
    return _parse_quantity(text, _TEMPERATURE, {"mK": 1e-3, "K": 1.0})


def header_counters(header: Mapping[str, Any], *, where: str) -> dict[str, float]:
    """SPEC-era counters (``counter_mne`` / ``counter_pos``) as name → value (``nan`` allowed).

    Raises
    ------
    FileFormatError
        Name and value lists of different lengths.
    """
    names = (header_text(header, "counter_mne") or "").split()
    values = (header_text(header, "counter_pos") or "").split()
    if len(names) != len(values):
        raise FileFormatError(
            f"{where}: header has {len(names)} counter names (counter_mne) and {len(values)} "
            "values (counter_pos); expected equal lists"
        )
    out = {}
    for name, text in zip(names, values, strict=True):
        try:
            out[name] = float(text)
        except ValueError:
            out[name] = math.nan
    return out


def header_monitor(header: Mapping[str, Any], name: str, *, where: str) -> float:
    """The monitor ``name`` of one image: a SPEC counter, else a plain numeric header key.

    Raises
    ------
    InputError
        Neither a counter nor a header key of that name (the message lists the counters).
    FileFormatError
        A value that is not a finite number.
    """
    counters = header_counters(header, where=where)
    if name in counters:
        value = counters[name]
        if not math.isfinite(value):
            raise FileFormatError(f"{where}: counter {name!r} has no finite value ({value})")
        return value
    value_or_none = header_number(header, name, where=where)
    if value_or_none is None:
        listed = " ".join(counters) or "none"
        raise InputError(
            f"{where}: no monitor {name!r}: neither a counter (counter_mne: {listed}) nor a "
            "header key"
        )
    return value_or_none


# --------------------------------------------------------------------------- LIMA HDF5 files

_LIMA_TITLE = "Lima 2D detector acquisition"


@dataclass
class LimaFile:
    """What the translator needs from one LIMA file (metadata only; frames are read later).

    Attributes
    ----------
    path : Path
    data_path : str
        The frames dataset, (frames, rows, cols).
    shape : tuple of int
    dtype : numpy dtype
    chunks : tuple of int or None
    filters : list of (filter id, flags, values)
    header : dict of str to str
        The ``header/`` group.
    title : str
        ``Title`` of the header, else the entry title (unless LIMA's default), else the file name.
    start_time : datetime or None
        Of the acquisition (``entry/start_time``, else the file's ``file_time``).
    frame_period : float or None
        ``exposure_time + latency_time`` in seconds, when recorded.
    written : ndarray
        (frames,) bool: frames whose chunk was written (an aborted acquisition leaves the rest).
    """

    path: Path
    data_path: str
    shape: tuple[int, ...]
    dtype: np.dtype
    chunks: tuple[int, ...] | None
    filters: list[tuple[int, int, tuple[int, ...]]]
    header: dict[str, str]
    title: str
    start_time: _dt.datetime | None
    frame_period: float | None
    written: np.ndarray = field(repr=False)

    @property
    def n_frames(self) -> int:
        return int(self.shape[0])

    @property
    def frame_shape(self) -> tuple[int, int]:
        return int(self.shape[1]), int(self.shape[2])

    @property
    def one_frame_per_chunk(self) -> bool:
        return self.chunks == (1, *self.frame_shape)


def _entry(h5: h5py.File) -> h5py.Group | None:
    default = h5.attrs.get("default")
    if isinstance(default, bytes):
        default = default.decode()
    if isinstance(default, str) and isinstance(h5.get(default), h5py.Group):
        return h5[default]
    entries = sorted(
        (k for k in h5 if isinstance(h5.get(k), h5py.Group) and nx_class(h5[k]) == "NXentry"),
        key=natural_key,
    )
    if entries:
        return h5[entries[0]]
    return h5["entry_0000"] if isinstance(h5.get("entry_0000"), h5py.Group) else None


def _detectors(entry: h5py.Group) -> dict[str, h5py.Group]:
    """NXdetector groups holding a 3-D ``data`` dataset, inside the entry's NXinstrument groups."""
    found: dict[str, h5py.Group] = {}
    for inst in entry.values():
        if not isinstance(inst, h5py.Group) or nx_class(inst) != "NXinstrument":
            continue
        for det in inst.values():
            if (
                isinstance(det, h5py.Group)
                and nx_class(det) == "NXdetector"
                and isinstance(det.get("data"), h5py.Dataset)
                and det["data"].ndim == 3
            ):
                found[det.name] = det
    if not found:  # no NX_class attributes: follow measurement/data
        link = entry.get("measurement/data", getlink=True) if "measurement" in entry else None
        if isinstance(link, h5py.SoftLink):
            target = entry.file.get(link.path)
            if isinstance(target, h5py.Dataset) and target.ndim == 3:
                found[target.parent.name] = target.parent
    return found


def is_lima(h5: h5py.File) -> bool:
    creator = attr_text(h5, "creator")
    entry = _entry(h5)
    if entry is None:
        return False
    if str(creator).startswith("LIMA"):
        return True
    return any("header" in det for det in _detectors(entry).values())


def _text(value: Any) -> str:
    if isinstance(value, np.ndarray):
        value = value.ravel()[0] if value.size else ""
    if isinstance(value, (bytes, np.bytes_)):
        return value.decode("utf-8", errors="replace")
    return str(value)


def _parse_time(text: str) -> _dt.datetime | None:
    text = text.strip()
    if not text:
        return None
    try:
        moment = _dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=_dt.UTC)


def _written_frames(dset: h5py.Dataset) -> np.ndarray:
    n = dset.shape[0]
    if dset.chunks is None or dset.chunks[0] != 1:
        return np.ones(n, dtype=bool)
    written = np.zeros(n, dtype=bool)
    count = dset.id.get_num_chunks()
    if count >= n:
        written[:] = True
        return written
    for k in range(count):
        offset = dset.id.get_chunk_info(k).chunk_offset[0]
        if offset < n:
            written[offset] = True
    return written


def _pick_detector(path: Path, dets: dict[str, h5py.Group], detector: str | None) -> h5py.Group:
    """The detector group ``detector`` names, or the only one of ``dets``."""
    if detector is not None:
        chosen = [
            g for name, g in dets.items() if name == detector or name.endswith("/" + detector)
        ]
        if not chosen:
            raise InputError(
                f"{path}: no detector {detector!r}; its detectors are: "
                f"{', '.join(n.rsplit('/', 1)[-1] for n in dets)}"
            )
        return chosen[0]
    if len(dets) > 1:
        raise InputError(
            f"{path} has several detectors ({', '.join(n.rsplit('/', 1)[-1] for n in dets)}); "
            "pick one with detector=NAME"
        )
    return next(iter(dets.values()))


def _frame_period(det: h5py.Group) -> float | None:
    """Exposure plus latency time (s) of a LIMA detector group's acquisition, if recorded."""
    acq = det.get("acquisition")
    if not (isinstance(acq, h5py.Group) and "exposure_time" in acq):
        return None
    try:
        return float(acq["exposure_time"][()]) + float(
            acq["latency_time"][()] if "latency_time" in acq else 0.0
        )
    except (TypeError, ValueError):
        return None


def read_lima(path: str | os.PathLike, *, detector: str | None = None) -> LimaFile:
    """Metadata of one LIMA HDF5 file (nothing of the frames is read).

    Parameters
    ----------
    path : str or path
    detector : str, optional
        Name (or path) of the detector group when the file has several.

    Raises
    ------
    FileFormatError
        Missing, truncated or non-HDF5 file, or no LIMA detector data in it (the message names
        the file).
    InputError
        Several detectors and no ``detector`` (the message lists them), or an unknown one.
    """
    path = Path(path)
    if not path.is_file():
        raise FileFormatError(f"{path}: no such file")
    try:
        h5 = h5py.File(path, "r")
    except OSError as err:
        raise FileFormatError(
            f"{path}: not an HDF5 file h5py can open (truncated or corrupt?): {err}"
        ) from err
    with h5:
        entry = _entry(h5)
        dets = _detectors(entry) if entry is not None else {}
        if entry is None or not dets:
            raise FileFormatError(
                f"{path}: no LIMA detector data (an NXdetector group with a 3-D 'data' dataset "
                "under an NXinstrument of the entry, or entry/measurement/data)"
            )
        det = _pick_detector(path, dets, detector)
        dset = det["data"]
        header: dict[str, str] = {}
        if isinstance(det.get("header"), h5py.Group):
            for key, item in det["header"].items():
                if isinstance(item, h5py.Dataset):
                    header[key] = _text(item[()]).strip()
        title = header.get("Title", "")
        if not title and isinstance(entry.get("title"), h5py.Dataset):
            text = _text(entry["title"][()]).strip()
            title = "" if text == _LIMA_TITLE else text
        start = None
        if isinstance(entry.get("start_time"), h5py.Dataset):
            start = _parse_time(_text(entry["start_time"][()]))
        if start is None and "file_time" in h5.attrs:
            start = _parse_time(_text(h5.attrs["file_time"]))
        period = _frame_period(det)
        return LimaFile(
            path=path,
            data_path=dset.name,
            shape=tuple(int(s) for s in dset.shape),
            dtype=dset.dtype,
            chunks=dset.chunks,
            filters=chunk_filters(dset),
            header=header,
            title=title or path.stem,
            start_time=start,
            frame_period=period if period and period > 0 else None,
            written=_written_frames(dset),
        )


def find_datasets(h5: h5py.File, name: str) -> list[h5py.Dataset]:
    """Every 1-D dataset named ``name`` (its last path component) in ``h5``, in visit order."""
    found: list[h5py.Dataset] = []

    def visit(path: str, obj: Any) -> None:
        if isinstance(obj, h5py.Dataset) and path.rsplit("/", 1)[-1] == name and obj.ndim == 1:
            found.append(obj)

    h5.visititems(visit)
    return found
