"""One writer for every translation: several measurements of several channels, resumable.

::

    Measurement_000/            attrs of its first channel's spec (translator, sources …)
      Channel_000/              Raw_Data + ancillaries, Frame_Checksums, Mask, extras
      Channel_001/              (e.g. a second MCA analyser)
      Raw_Frames/               NXdata view of the file's first channel (``@default``)
    Measurement_001/ …          (e.g. the next SPEC scan)

Each channel is laid out as :mod:`pyscatter.io.raw` describes (:func:`~pyscatter.io.raw.write_measurement`
is this writer with one measurement of one channel). Files are written under ``.<name>.partial``
and renamed into place when complete.

**Resume.** The partial file carries the translation's key (``translation_key``: every
measurement's key and the file attributes) and, in ``_translation_progress``:

* per channel, the completion record of each frame, ``(1 << 32) | crc32``, written after the
  frames reached the disk (``completed_frames`` for the first channel of the file,
  ``completed_frames_MMM_CCC`` for the others);
* per measurement, ``key_MMM`` (the key of its built channels, set once its layout exists) and
  ``done_MMM`` (set once all its frames, checksums and sha256 are on disk).

Run the same translation again after an interruption: a measurement marked done is kept as it is
and its :class:`MeasurementPlan` is never built (its sources are not read again); the interrupted
one continues from its recorded frames (each verified against its record); the others are written.
A partial file of another translation (another key) is discarded; a measurement whose built
channels differ from those recorded is written again.

Examples
--------
>>> import tempfile, h5py, numpy as np
>>> from pathlib import Path
>>> from pyscatter.io.raw import MeasurementSpec
>>> from pyscatter.io.usid import Dim
>>> def plan(name, n):
...     spec = MeasurementSpec([Dim("X", "mm", np.arange(n))], [Dim("Channel", "", np.arange(4))],
...                            np.int32, attrs={"scan": name})
...     return MeasurementPlan(name, lambda: [ChannelData(spec, np.ones((n, 4), np.int32))])
>>> out = write_measurements(Path(tempfile.mkdtemp()) / "two.h5", [plan("a", 3), plan("b", 5)],
...                          file_attrs={"note": "two scans"})
>>> with h5py.File(out) as h5:
...     [h5[f"Measurement_00{k}/Channel_000/Raw_Data"].shape for k in (0, 1)], h5.attrs["note"]
([(3, 4), (5, 4)], 'two scans')
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from pyscatter.errors import InputError, PyscatterError
from pyscatter.io import raw as _raw  # module access: its patched settings (barriers …) apply
from pyscatter.io.raw import MeasurementSpec, partial_path, raw_compression
from pyscatter.io.safety import fsync, job_lock, repair
from pyscatter.io.usid import create_main

__all__ = ["ChannelData", "MeasurementPlan", "channels_key", "write_measurements"]

logger = logging.getLogger(__name__)

_PROGRESS = _raw._PROGRESS


@dataclass
class ChannelData:
    """One main dataset to write.

    Attributes
    ----------
    spec : MeasurementSpec
        Its positions, dims, attributes (those of the measurement when it is the first channel),
        geometry, mask and extras.
    frames : sequence or iterable
        One item per position, as :func:`pyscatter.io.raw.write_measurement` takes them; a
        sequence is read only for the frames still to write when a translation resumes.
    attrs : dict
        Attributes of the channel group (e.g. ``mca_index``).
    """

    spec: MeasurementSpec
    frames: Any
    attrs: dict[str, Any] = field(default_factory=dict)


@dataclass
class MeasurementPlan:
    """One measurement, built only when the writer reaches it.

    Attributes
    ----------
    key : str
        Identity of what the measurement is made from (sources, scan, options), cheap to compute:
        part of the translation's key, so a partial file is resumed only by the same plans.
    build : callable
        Returns the measurement's channels, the first one's spec carrying the measurement's
        attributes. Not called for a measurement already complete in the partial file.
    """

    key: str
    build: Callable[[], Sequence[ChannelData]]


def _storage(spec: MeasurementSpec, compression: str | None) -> tuple[str | None, str]:
    """The compression ``Raw_Data`` gets (None: copied chunks) and how frames are stored."""
    if spec.raw_filters is not None:
        return None, "copied chunks"
    return raw_compression(compression, spec), "encoded"


def channels_key(channels: Sequence[ChannelData], compression: str | None) -> str:
    """Identity of a measurement's built channels: layout, values and attributes.

    One channel without attributes: the key :func:`pyscatter.io.raw.write_measurement` has always
    given a translation (so its unfinished files of earlier versions still resume).
    """
    keys = [_raw._spec_key(ch.spec, *_storage(ch.spec, compression)) for ch in channels]
    if len(channels) == 1 and not channels[0].attrs:
        return keys[0]
    text = json.dumps(
        [[k, ch.attrs] for k, ch in zip(keys, channels, strict=True)],
        sort_keys=True,
        default=str,
    )
    return hashlib.sha256(text.encode()).hexdigest()


def _file_key(
    plans: Sequence[MeasurementPlan], file_attrs: Mapping[str, Any], compression: str | None
) -> str:
    text = json.dumps(
        {"plans": [p.key for p in plans], "file_attrs": file_attrs, "compression": compression},
        sort_keys=True,
        default=str,
    )
    return hashlib.sha256(text.encode()).hexdigest()


def _flags_name(m: int, c: int) -> str:
    """The completion record of channel ``c`` of measurement ``m`` (the first: its old name)."""
    return "completed_frames" if m == c == 0 else f"completed_frames_{m:03d}_{c:03d}"


def _channel_path(m: int, c: int) -> str:
    return f"Measurement_{m:03d}/Channel_{c:03d}"


# --------------------------------------------------------------------------- writer


# over 80 lines: a 38-line docstring; the code is ~44 lines
def write_measurements(
    path: str | os.PathLike,
    plans: Sequence[MeasurementPlan],
    *,
    file_attrs: Mapping[str, Any] | None = None,
    compression: str | None = "bslz4",
    overwrite: bool = False,
    progress: bool = False,
    resume: bool = True,
    key: str | None = None,
) -> Path:
    """Write a new USID file of ``Measurement_000``, ``Measurement_001`` … (one per plan).

    Parameters
    ----------
    path : str or path
        The file to write; it appears only once complete.
    plans : sequence of MeasurementPlan
        The measurements, in order.
    file_attrs : mapping, optional
        Attributes of the file's root (JSON-encoded when not scalar).
    compression : {"bslz4", "gzip", "none"}
        Of every ``Raw_Data`` (spectra get gzip, see :func:`~pyscatter.io.raw.raw_compression`);
        unused for channels whose spec has ``raw_filters``.
    overwrite : bool
        Replace an existing ``path``; otherwise refuse.
    progress : bool
        Show a progress bar per channel.
    resume : bool
        Continue an interrupted translation of the same plans (see the module notes); False
        starts afresh.
    key : str, optional
        The translation's key; default: from the plans' keys, ``file_attrs`` and ``compression``.

    Returns
    -------
    Path
        ``path``.

    Raises
    ------
    ExistingResultsError
        ``path`` exists and ``overwrite`` is false.
    FileBusyError
        Another translation into ``path`` is running.
    InputError
        No plans, a measurement without channels, a frame of the wrong shape, too few or too
        many frames. Bad input removes the partial file; an interruption keeps it.
    """
    path = Path(path)
    if not plans:
        raise InputError(f"{path}: no measurements to write")
    file_attrs = dict(file_attrs or {})
    key = key or _file_key(plans, file_attrs, compression)
    path.parent.mkdir(parents=True, exist_ok=True)
    with job_lock(path, command=f"pyscatter translate into {path}"):
        _raw._check_target(path, overwrite)
        tmp = partial_path(path)
        h5 = _open_partial(tmp, key) if resume else None
        try:
            if h5 is None:
                tmp.unlink(missing_ok=True)
                h5 = _create_partial(tmp, key, file_attrs)
            with h5:
                for m, plan in enumerate(plans):
                    _write_plan(h5, m, plan, compression, path, progress)
                del h5[_PROGRESS]
                del h5.attrs["translation_key"]
            _raw._finish(tmp, path)
        except PyscatterError:
            tmp.unlink(missing_ok=True)  # bad input: nothing worth resuming
            raise
        except BaseException:
            if tmp.exists():
                logger.warning(
                    "translation into %s interrupted; its frames so far are kept in %s: run the "
                    "same translation again to continue",
                    path,
                    tmp,
                )
            raise
    return path


def _create_partial(tmp: Path, key: str, file_attrs: Mapping[str, Any]) -> h5py.File:
    h5 = h5py.File(tmp, "w")
    try:
        for name, value in file_attrs.items():
            h5.attrs[name] = _raw._attr_value(value)
        h5.create_group(_PROGRESS)
        h5.attrs["translation_key"] = key  # last: its presence means "set-up complete"
        fsync(h5)
    except BaseException:
        h5.close()
        raise
    return h5


def _open_partial(tmp: Path, key: str) -> h5py.File | None:
    """The partial file of this same translation, repaired and opened, or None."""
    if not tmp.exists():
        return None
    try:
        for message in repair(tmp):
            logger.info("%s: %s", tmp, message)
        h5 = h5py.File(tmp, "r+")
    except Exception as err:  # noqa: BLE001 - anything wrong with it: start afresh
        logger.warning("%s cannot be resumed (%s); starting afresh", tmp, err)
        return None
    if h5.attrs.get("translation_key") != key or _PROGRESS not in h5:
        h5.close()
        logger.warning(
            "%s is an unfinished translation of other sources or options; starting afresh", tmp
        )
        return None
    logger.info("resuming the unfinished translation in %s", tmp)
    return h5


def _write_plan(
    h5: h5py.File,
    m: int,
    plan: MeasurementPlan,
    compression: str | None,
    path: Path,
    progress: bool,
) -> None:
    """Measurement ``m``: kept when done, else laid out (unless already) and its frames filled."""
    prog = h5[_PROGRESS]
    name = f"Measurement_{m:03d}"
    if prog.attrs.get(f"done_{m:03d}", False):
        logger.info("%s: %s was complete in the unfinished translation; kept", path, name)
        return
    channels = list(plan.build())
    if not channels:
        raise InputError(f"{path}: {name} has no channels to write")
    mkey = channels_key(channels, compression)
    if not _layout_matches(h5, m, mkey):
        _discard(h5, m)
        for c, channel in enumerate(channels):
            _create_channel(h5, m, c, channel, compression)
        prog.attrs[f"key_{m:03d}"] = mkey
        fsync(h5)
    for c, channel in enumerate(channels):
        _raw._fill(
            h5,
            channel.spec,
            channel.frames,
            path,
            progress=progress,
            raw_path=f"{_channel_path(m, c)}/Raw_Data",
            flags=f"{_PROGRESS}/{_flags_name(m, c)}",
        )
    fsync(h5)  # every frame, checksum and sha256 of the measurement on disk, then the mark
    prog.attrs[f"done_{m:03d}"] = True
    fsync(h5)


def _layout_matches(h5: h5py.File, m: int, mkey: str) -> bool:
    """Whether measurement ``m`` is laid out in the partial file for channels of key ``mkey``."""
    prog = h5[_PROGRESS]
    stored = prog.attrs.get(f"key_{m:03d}")
    if stored is None and m == 0 and h5.attrs.get("translation_key") == mkey:
        # one channel written before measurements had keys: its record means "laid out"
        return _flags_name(0, 0) in prog
    return stored == mkey


def _discard(h5: h5py.File, m: int) -> None:
    """Remove what an earlier run laid out of measurement ``m`` (other channels, or unfinished)."""
    name = f"Measurement_{m:03d}"
    prog = h5[_PROGRESS]
    if name in h5:
        logger.info(
            "%s: %s of another content or unfinished set-up; written again", h5.filename, name
        )
        del h5[name]
    prefix = f"completed_frames_{m:03d}_"
    for flags in [n for n in prog if n.startswith(prefix) or (m == 0 and n == _flags_name(0, 0))]:
        del prog[flags]
    for attr in (f"key_{m:03d}", f"done_{m:03d}"):
        if attr in prog.attrs:
            del prog.attrs[attr]


def _create_channel(
    h5: h5py.File, m: int, c: int, channel: ChannelData, compression: str | None
) -> None:
    """The layout of one channel (everything but the frames) and its completion record."""
    spec = channel.spec
    comp, storage = _storage(spec, compression)
    n_pos, n_spec = spec.n_positions, spec.n_spec

    def make_raw(chan: h5py.Group, pos: Any, sp: Any) -> h5py.Dataset:
        if spec.raw_filters is not None:
            return _raw._usid_links(_raw._filtered_raw(chan, spec), spec, pos, sp)
        return create_main(
            chan,
            "Raw_Data",
            shape=(n_pos, n_spec),
            dtype=spec.dtype,
            quantity=spec.quantity,
            units=spec.units,
            position=pos,
            spectroscopic=sp,
            chunks=(1, n_spec),
            compression=comp,
        )

    raw = _raw._build(h5, spec, make_raw, storage=storage, channel=_channel_path(m, c))
    raw.attrs["compression"] = (
        _raw._filters_text(spec.raw_filters) if spec.raw_filters is not None else comp or "none"
    )
    for name, value in channel.attrs.items():
        raw.parent.attrs[name] = _raw._attr_value(value)
    dcpl = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
    dcpl.set_alloc_time(h5py.h5d.ALLOC_TIME_EARLY)
    dcpl.set_fill_time(h5py.h5d.FILL_TIME_ALLOC)
    dcpl.set_fill_value(np.zeros(1, dtype=np.uint64))
    space = h5py.h5s.create_simple((n_pos,))
    tid = h5py.h5t.py_create(np.dtype(np.uint64))
    h5py.h5d.create(h5[_PROGRESS].id, _flags_name(m, c).encode(), tid, space, dcpl=dcpl)
