"""Writing a measurement: the raw main dataset every translator produces.

::

    Measurement_000/            attrs: translator, version, sources, geometry, orientation, …
      Channel_000/
        Raw_Data                (n_positions, n_spec), one frame per chunk, compressed
        Position_Indices/Values (n_positions, n_pos_dims), real motor values, float64
        Spectroscopic_Indices/Values  (Row, Col) for images, (Channel,) for spectra
        Frame_Checksums         (n_positions,) uint32: crc32 of each decoded frame (integrity);
                                copied chunks have Chunk_Checksums instead (n_positions, 2):
                                crc32 of the chunk as stored and its filter mask
        Mask                    (rows, cols) uint8, nonzero = masked (when given)
        valid_positions, Monitor, Time …   per-position extras (when the translator has them)
      Raw_Frames/               NXdata: ``data`` a virtual (*positions, rows, cols) view of
                                Raw_Data, the file's ``@default`` until a process runs

Detector frames are compressed with bitshuffle-LZ4; spectra (one spectroscopic dim) with gzip,
which every HDF5 reader decodes without a plugin (:func:`raw_compression`). Every frame's crc32
is checked when processes read it (:mod:`pyscatter.io.integrity`); copied chunks are never
decoded, their stored bytes are checked instead.

Three ways to store the raw frames:

* :func:`write_measurement` with arrays: every frame is encoded again (``compression``).
* :func:`write_measurement` with :class:`RawChunk` items and ``spec.raw_filters``: the compressed
  chunks of an HDF5 source (one frame per chunk) are copied as they are stored, never decoded:
  ``Raw_Data`` keeps the source's filter pipeline (bitshuffle-LZ4, gzip …) and stays 2-D USID.
* :func:`write_virtual_measurement`: ``Raw_Data`` is an HDF5 virtual dataset whose rows map onto
  the frames of the source files (a 3-D source selection onto a 2-D virtual one: HDF5 only needs
  the same number of elements). Nothing is copied; the file needs the sources where they were
  (relative paths are stored, so moving the folder as a whole keeps it working). A missing source
  reads as zeros, silently: that is HDF5's behaviour, hence the recorded source checksums.

**Crash safety and resume.** The file is written under ``.<name>.partial`` beside the output and
renamed into place only when complete, so an interrupted translation never leaves a file that looks
complete. While writing, a completion record ``(1 << 32) | crc32`` per frame (of the values, or of
the stored chunk bytes) is kept in the partial file, written only after the frames it covers reached
the disk (flush + fsync, then the record, flush + fsync; ``docs/crash_safety.md`` rules 5 and 6). Run the
same translation again after a kill: the partial file is repaired if needed
(:func:`pyscatter.io.safety.repair`), every recorded frame is verified against its record, and only
the other frames are read and written. A partial file from a different translation (other sources,
options or positions) is discarded. Bad input (a frame of the wrong shape) removes the partial file;
an interruption (Ctrl-C, a kill, an I/O error) keeps it for the next run. :func:`write_measurement`
is :func:`pyscatter.io.measurements.write_measurements` with one measurement of one channel;
that writer takes several (SPEC scans, MCA analysers) and resumes them measurement by measurement.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import logging
import os
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeGuard

import h5py
import numpy as np

from pyscatter.errors import ExistingResultsError, InputError
from pyscatter.io.integrity import stored_crc, write_checksums, write_chunk_checksums
from pyscatter.io.nexus import annotate_nxdata, set_default_chain
from pyscatter.io.safety import _fsync_dir, fsync, job_lock
from pyscatter.io.usid import Dim, compression_options, write_ancillary

__all__ = [
    "MeasurementSpec",
    "RawChunk",
    "VirtualFrames",
    "chunk_filters",
    "partial_path",
    "raw_compression",
    "write_measurement",
    "write_virtual_measurement",
]

logger = logging.getLogger(__name__)

RAW_PATH = "Measurement_000/Channel_000/Raw_Data"
_PROGRESS = "_translation_progress"
_FLAGS = f"{_PROGRESS}/completed_frames"
#: Frames written between two barriers (flush + fsync, then their completion records).
BARRIER_FRAMES = 16
#: … or seconds, whichever comes first.
BARRIER_SECONDS = 2.0

Filter = tuple[int, int, tuple[int, ...]]


@dataclass
class MeasurementSpec:
    """What a translator has parsed, ready to be written.

    Parameters
    ----------
    position_dims : list of Dim
        Slow to fast; their product is the number of positions.
    spec_dims : list of Dim
        ``[Row, Col]`` for images, ``[Channel]`` for spectra.
    dtype : numpy dtype of the raw values.
    position_values : ndarray, optional
        (n_positions, n_dims) measured motor values replacing the nominal grid.
    quantity, units : str
        Of the raw values (e.g. ``"Counts"``, ``"counts"``).
    attrs : dict
        Measurement attributes (translator, sources, instrument…); JSON-encoded if not scalar.
    geometry : dict, optional
        pyFAI geometry config (``AzimuthalIntegrator.get_config()``).
    mask : ndarray, optional
        (rows, cols) nonzero = masked.
    extra : dict of name -> ndarray
        More datasets for the channel group (monitors, counters, timestamps per position…).
    extra_attrs : dict of name -> dict
        Attributes of those datasets (``units``, where the values come from …).
    raw_filters : list of (filter id, flags, values), optional
        The filter pipeline of an HDF5 source whose compressed chunks are copied as they are
        (:class:`RawChunk` frames; see :func:`chunk_filters`). ``Raw_Data`` gets exactly this
        pipeline and ``compression`` is not used.
    """

    position_dims: list[Dim]
    spec_dims: list[Dim]
    dtype: Any
    position_values: np.ndarray | None = None
    quantity: str = "Counts"
    units: str = "counts"
    attrs: dict[str, Any] = field(default_factory=dict)
    geometry: dict[str, Any] | None = None
    mask: np.ndarray | None = None
    extra: dict[str, np.ndarray] = field(default_factory=dict)
    extra_attrs: dict[str, dict[str, Any]] = field(default_factory=dict)
    raw_filters: list[Filter] | None = None

    @property
    def n_positions(self) -> int:
        return int(np.prod([len(d) for d in self.position_dims]))

    @property
    def n_spec(self) -> int:
        return int(np.prod([len(d) for d in self.spec_dims]))

    @property
    def frame_shape(self) -> tuple[int, ...]:
        return tuple(len(d) for d in self.spec_dims)


@dataclass(frozen=True)
class RawChunk:
    """One frame as the bytes of its stored chunk (compressed), copied without decoding.

    ``filter_mask`` is the chunk's HDF5 filter mask (0: every filter of the pipeline applied).
    """

    data: bytes
    filter_mask: int = 0


@dataclass(frozen=True)
class VirtualFrames:
    """Frames ``start … start + count - 1`` of an HDF5 dataset, mapped onto positions
    ``position … position + count - 1`` of a virtual ``Raw_Data``.

    Attributes
    ----------
    file : str
        The source HDF5 file.
    dataset : str
        Path of the (frames, rows, cols) dataset in it (not a soft link).
    shape : tuple of int
        Shape of that dataset.
    start, count, position : int
    """

    file: str
    dataset: str
    shape: tuple[int, ...]
    start: int
    count: int
    position: int


def raw_compression(compression: str | None, spec: MeasurementSpec) -> str | None:
    """The compression ``Raw_Data`` gets: bitshuffle-LZ4 only for detector frames.

    Spectra (one spectroscopic dimension: MCA, 1-D detectors) are small; ``"bslz4"`` for them
    becomes gzip, which every HDF5 reader (pyUSID, silx, h5web, MATLAB) decodes without a plugin.
    """
    compression_options(compression)  # refuses unknown names
    if compression == "bslz4" and len(spec.spec_dims) == 1:
        logger.info("Raw_Data holds spectra: gzip instead of bitshuffle-LZ4, readable everywhere")
        return "gzip"
    return compression


def partial_path(path: str | os.PathLike) -> Path:
    """Where an unfinished translation into ``path`` lives: ``.<name>.partial`` beside it."""
    path = Path(path)
    return path.with_name(f".{path.name}.partial")


#: Filters whose ``set_local`` callback stores reserved values ahead of the ones given at
#: creation: bitshuffle keeps (major, minor, element size) in its first three slots.
_RESERVED_SLOTS = {32008: 3}


def chunk_filters(dset: h5py.Dataset) -> list[Filter]:
    """The filter pipeline of ``dset`` as ``(filter id, flags, values)``, in order.

    The values are those to give when creating a dataset with the same pipeline: the slots a
    filter fills in by itself when a dataset is created (bitshuffle's version and element size)
    are left out, so creating with them gives back exactly the stored pipeline.
    """
    dcpl = dset.id.get_create_plist()
    out = []
    for i in range(dcpl.get_nfilters()):
        code, flags, values, _name = dcpl.get_filter(i)
        values = tuple(int(v) for v in values)[_RESERVED_SLOTS.get(int(code), 0) :]
        out.append((int(code), int(flags), values))
    return out


def _attr_value(value: Any) -> Any:
    if isinstance(value, (str, int, float, bool, np.number)):
        return value
    return json.dumps(value, default=str)


# --------------------------------------------------------------------------- layout


def _build(
    h5: h5py.File,
    spec: MeasurementSpec,
    make_raw: Any,
    *,
    storage: str,
    channel: str = "Measurement_000/Channel_000",
    make_position: Any = None,
) -> h5py.Dataset:
    """Everything but the frames of one channel: its ancillary datasets, mask and extras, and,
    for the first channel of a measurement, the measurement group with ``spec.attrs``.

    The file's first channel (``Measurement_000/Channel_000``) also gets the ``Raw_Frames`` view
    the file's ``@default`` points to. ``make_position(chan)``, when given, writes the
    ``Position_*`` pair instead of :func:`write_ancillary` (the live file's resizable ones).
    """
    meas_name, _, chan_name = channel.partition("/")
    if meas_name not in h5:
        meas = h5.create_group(meas_name)
        for key, value in spec.attrs.items():
            meas.attrs[key] = _attr_value(value)
        meas.attrs["created"] = _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")
        if spec.geometry is not None:
            meas.attrs["geometry"] = json.dumps(
                spec.geometry, sort_keys=True, default=_json_default
            )
    chan = h5[meas_name].create_group(chan_name)
    pos = (
        make_position(chan)
        if make_position is not None
        else write_ancillary(
            chan, "Position_", spec.position_dims, spectroscopic=False, values=spec.position_values
        )
    )
    sp = write_ancillary(chan, "Spectroscopic_", spec.spec_dims, spectroscopic=True)
    raw = make_raw(chan, pos, sp)
    raw.attrs["storage"] = storage
    if channel == "Measurement_000/Channel_000":
        _raw_view(h5, spec, raw)
    if spec.mask is not None:
        mask = np.asarray(spec.mask)
        if mask.shape != spec.frame_shape:
            raise InputError(f"mask has shape {mask.shape}; the frames are {spec.frame_shape}")
        chan.create_dataset(
            "Mask", data=(mask != 0).astype(np.uint8), **compression_options("gzip")
        )
    for name, arr in spec.extra.items():
        arr = np.asarray(arr)
        if arr.shape[:1] != (spec.n_positions,) and name != "Mask":
            raise InputError(
                f"extra dataset {name!r} has shape {arr.shape}; expected one value per position "
                f"({spec.n_positions})"
            )
        dset = chan.create_dataset(name, data=arr)
        for key, value in spec.extra_attrs.get(name, {}).items():
            dset.attrs[key] = _attr_value(value)
    return raw


#: The NXdata group showing the raw frames N-d: (*positions, rows, cols) or (*positions, channels).
RAW_VIEW = "Measurement_000/Raw_Frames"


def _raw_view(h5: h5py.File, spec: MeasurementSpec, raw: h5py.Dataset) -> None:
    """``Measurement_000/Raw_Frames``: an NXdata whose signal is a virtual N-d view of Raw_Data.

    Viewers (silx, h5web) open the file's ``@default`` on it and show detector images with
    sliders over the positions (or spectra); no frame is copied. ``Raw_Data`` itself stays the
    2-D USID main dataset.
    """
    group = h5.create_group(RAW_VIEW)
    annotate_nxdata(
        group,
        RAW_VIEW,
        position_dims=spec.position_dims,
        signal="Raw_Data",
        source=raw.name,
        spec_dims=spec.spec_dims,
        dtype=np.dtype(spec.dtype),
        title=f"raw {spec.quantity}",
    )
    set_default_chain(h5, RAW_VIEW)


def _usid_links(dset: h5py.Dataset, spec: MeasurementSpec, pos: Any, sp: Any) -> h5py.Dataset:
    """The attributes that make ``dset`` a USID main dataset (as :func:`create_main` writes)."""
    dset.attrs["quantity"] = spec.quantity
    dset.attrs["units"] = spec.units
    dset.attrs["Position_Indices"] = pos[0].ref
    dset.attrs["Position_Values"] = pos[1].ref
    dset.attrs["Spectroscopic_Indices"] = sp[0].ref
    dset.attrs["Spectroscopic_Values"] = sp[1].ref
    return dset


def _filtered_raw(chan: h5py.Group, spec: MeasurementSpec) -> h5py.Dataset:
    import hdf5plugin  # noqa: F401 - registers bitshuffle, LZ4 … so chunks can be written and read

    shape = (spec.n_positions, spec.n_spec)
    dcpl = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
    dcpl.set_chunk((1, spec.n_spec))
    for code, flags, values in spec.raw_filters or []:
        dcpl.set_filter(code, flags, values)
    space = h5py.h5s.create_simple(shape)
    tid = h5py.h5t.py_create(np.dtype(spec.dtype), logical=True)
    dset = h5py.Dataset(h5py.h5d.create(chan.id, b"Raw_Data", tid, space, dcpl=dcpl))
    if chunk_filters(dset) != list(spec.raw_filters or []):
        raise InputError(
            f"cannot reproduce the source's filter pipeline {spec.raw_filters} (got "
            f"{chunk_filters(dset)}); copy without link, or use a virtual dataset"
        )
    return dset


def _spec_key(spec: MeasurementSpec, compression: str | None, storage: str) -> str:
    """Identity of a translation: a partial file is resumed only by the same one."""
    digest = hashlib.sha256()
    attrs = {k: v for k, v in spec.attrs.items() if k not in ("versions",)}
    text = json.dumps(
        {
            "attrs": attrs,
            "dims": [(d.name, d.units) for d in (*spec.position_dims, *spec.spec_dims)],
            "dtype": np.dtype(spec.dtype).str,
            "compression": compression,
            "filters": spec.raw_filters,
            "storage": storage,
            "geometry": spec.geometry,
            "extra": sorted(spec.extra),
            "quantity": [spec.quantity, spec.units],
        },
        sort_keys=True,
        default=_json_default,
    )
    digest.update(text.encode())
    arrays: list[np.ndarray | None] = [d.values for d in (*spec.position_dims, *spec.spec_dims)]
    arrays += [spec.position_values, spec.mask, *(spec.extra[k] for k in sorted(spec.extra))]
    for arr in arrays:
        if arr is not None:
            digest.update(np.ascontiguousarray(arr).tobytes())
    return digest.hexdigest()


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    return str(obj)


# --------------------------------------------------------------------------- writing frames


class FrameSequence(Protocol):
    """Frames by position index (``len`` and ``[i]``): only those still to write are read."""

    def __len__(self) -> int: ...

    def __getitem__(self, index: int, /) -> Any: ...


def _random_access(frames: Iterable[Any] | FrameSequence) -> TypeGuard[FrameSequence]:
    return isinstance(frames, Sequence) or (
        hasattr(frames, "__getitem__") and hasattr(frames, "__len__")
    )


def write_measurement(
    path: str | os.PathLike,
    spec: MeasurementSpec,
    frames: Iterable[Any] | FrameSequence,
    *,
    compression: str | None = "bslz4",
    overwrite: bool = False,
    progress: bool = False,
    resume: bool = True,
) -> Path:
    """Write a new USID file from ``frames`` (one per position, in position order).

    Parameters
    ----------
    path : str or path
        The file to write; it appears only once complete (see the module notes).
    spec : MeasurementSpec
        Positions, attributes, geometry, mask and extras.
    frames : sequence or iterable
        One item per position: an array of the frame shape, ``None`` for a position never
        measured (stored as zeros), or a :class:`RawChunk` when ``spec.raw_filters`` is set.
        A sequence (``len`` and ``[i]``) is read only for the frames still to write on resume;
        an iterator is consumed whole.
    compression : {"bslz4", "gzip", "none"}
        Of ``Raw_Data`` (one frame per chunk); unused with ``spec.raw_filters``.
    overwrite : bool
        Replace an existing ``path``; otherwise refuse.
    progress : bool
        Show a progress bar.
    resume : bool
        Continue an interrupted translation of the same sources and options from its partial
        file (default); False starts afresh.

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
        A frame of the wrong shape, or too few/many frames.
    """
    from pyscatter.io.measurements import ChannelData, MeasurementPlan, write_measurements

    chunked = spec.raw_filters is not None
    storage = "copied chunks" if chunked else "encoded"
    key = _spec_key(spec, None if chunked else raw_compression(compression, spec), storage)
    channel = ChannelData(spec, frames)
    return write_measurements(
        path,
        [MeasurementPlan(key, lambda: [channel])],
        compression=compression,
        overwrite=overwrite,
        progress=progress,
        resume=resume,
        key=key,
    )


def _check_target(path: Path, overwrite: bool) -> None:
    if path.exists() and not overwrite:
        raise ExistingResultsError(
            f"{path} exists; pass overwrite=True (--overwrite) to replace it"
        )
    if path.is_dir():
        raise InputError(f"output {path} is a folder; expected an HDF5 file name")


def _filters_text(filters: list[Filter] | None) -> str:
    names = {32008: "bitshuffle", 1: "gzip", 2: "shuffle", 32001: "blosc", 32004: "lz4"}
    return "+".join(names.get(code, f"filter {code}") for code, _, _ in filters or []) or "none"


def _finish(tmp: Path, path: Path) -> None:
    fd = os.open(tmp, os.O_RDONLY)
    try:
        os.fsync(fd)
    except OSError as err:  # name the file: a bare fsync error does not
        raise OSError(err.errno, err.strerror, str(tmp)) from err
    finally:
        os.close(fd)
    os.replace(tmp, path)
    try:
        _fsync_dir(str(path))
    except OSError as err:  # the file is complete and in place: do not fail the translation
        logger.warning("%s is complete, but syncing its folder failed (%s)", path, err.strerror)


class _Barrier:
    """Completion records written after the frames they cover reached the disk (rule 5)."""

    def __init__(self, h5: h5py.File, flags: str = _FLAGS) -> None:
        self.h5 = h5
        self.flags = h5[flags]
        self.pending: list[tuple[int, int]] = []
        self.since = time.monotonic()

    def add(self, index: int, flag: int) -> None:
        self.pending.append((index, flag))
        if len(self.pending) >= BARRIER_FRAMES or time.monotonic() - self.since > BARRIER_SECONDS:
            self.commit()

    def commit(self) -> None:
        if self.pending:
            fsync(self.h5)
            index = np.array([i for i, _ in self.pending])
            flags = np.array([f for _, f in self.pending], dtype=np.uint64)
            first, last = int(index[0]), int(index[-1])
            if last - first + 1 == index.size:  # frames are written in order: one slice
                self.flags[first : last + 1] = flags  # (a point selection costs ms a commit)
            else:
                self.flags[index] = flags  # ascending
            fsync(self.h5)
            self.pending.clear()
        self.since = time.monotonic()


_END = object()


class _OrderedDigest:
    """sha256 of buffers in the order given; immutable ones (views of ``bytes``: chunk bytes) are
    hashed on a helper thread while the next frames are written (hashlib releases the GIL), at
    most ``_DIGEST_AHEAD`` of them pending; other buffers (a caller may reuse them) at once."""

    def __init__(self, threaded: bool) -> None:
        from collections import deque
        from concurrent.futures import ThreadPoolExecutor

        self.digest = hashlib.sha256()
        self.pool = ThreadPoolExecutor(1, thread_name_prefix="sha256") if threaded else None
        self.pending: deque[Any] = deque()

    def update(self, data: Any, immutable: bool) -> None:
        if self.pool is None or not immutable:
            self.drain()
            self.digest.update(data)
            return
        self.pending.append(self.pool.submit(self.digest.update, data))
        while len(self.pending) > _DIGEST_AHEAD:
            self.pending.popleft().result()

    def drain(self) -> None:
        while self.pending:
            self.pending.popleft().result()

    def hexdigest(self) -> str:
        self.drain()
        return self.digest.hexdigest()

    def close(self) -> None:
        if self.pool is not None:
            for future in self.pending:
                future.cancel()
            self.pool.shutdown(wait=True)


_DIGEST_AHEAD = 8


def _fill(
    h5: h5py.File,
    spec: MeasurementSpec,
    frames: Iterable[Any] | FrameSequence,
    path: Path,
    *,
    progress: bool,
    raw_path: str = RAW_PATH,
    flags: str = _FLAGS,
) -> None:
    """Write the frames of ``raw_path`` not yet recorded in ``flags`` (verifying those that are),
    then its checksums (``Frame_Checksums``, or ``Chunk_Checksums`` for stored chunks) and
    ``sha256``.

    Nothing is decoded: the crc32 of what is stored (the values, or the chunk bytes) is both
    the completion record ``(1 << 32) | crc`` and the recorded checksum. The sha256 of copied
    chunks is computed on a helper thread while the next chunks are written."""
    raw = h5[raw_path]
    n_pos = spec.n_positions
    chunked = spec.raw_filters is not None
    digest = _OrderedDigest(threaded=chunked)
    try:
        crcs, masks, resumed = _fill_frames(h5, raw, spec, frames, path, progress, flags, digest)
        sha256 = digest.hexdigest()
    finally:
        digest.close()
    if resumed:
        logger.info("%s: %d of %d frames were already written and verified", path, resumed, n_pos)
    if chunked:
        write_chunk_checksums(raw, crcs, masks)
    else:
        write_checksums(raw, crcs)
    raw.attrs["sha256"] = sha256
    raw.attrs["sha256_of"] = (
        "stored chunks (compressed bytes), in position order"
        if chunked
        else "frame values (C order, Raw_Data dtype), in position order"
    )


def _fill_frames(
    h5: h5py.File,
    raw: h5py.Dataset,
    spec: MeasurementSpec,
    frames: Iterable[Any] | FrameSequence,
    path: Path,
    progress: bool,
    flags: str,
    digest: _OrderedDigest,
) -> tuple[np.ndarray, np.ndarray, int]:
    """The loop of :func:`_fill`: (crc32 and filter mask of every frame, frames resumed)."""
    from pyscatter import progress as _progress

    n_pos = spec.n_positions
    chunked = spec.raw_filters is not None
    done = h5[flags][()]
    table = frames if _random_access(frames) else None
    if table is not None and len(table) != n_pos:
        raise InputError(_count_message(path, len(table), spec))
    iterator = None if table is not None else iter(frames)
    barrier = _Barrier(h5, flags)
    resumed = 0
    buf = np.empty((1, spec.n_spec), dtype=raw.dtype)
    crcs = np.zeros(n_pos, dtype=np.uint32)
    masks = np.zeros(n_pos, dtype=np.uint32)
    with _progress.bar(n_pos, unit="frame", desc="translate", enabled=progress) as bar:
        for i in range(n_pos):
            item = next(iterator, _END) if iterator is not None else None
            if item is _END:
                raise InputError(_count_message(path, i, spec))
            if done[i]:
                stored = _read_stored(raw, i, chunked, buf)
                if stored is not None and int(done[i]) == (1 << 32) | stored_crc(stored.data):
                    digest.update(stored.data, immutable=isinstance(stored.base, bytes))
                    crcs[i] = int(done[i]) & 0xFFFFFFFF
                    masks[i] = _chunk_mask(raw, i) if chunked else 0
                    resumed += 1
                    bar.update(1)
                    continue
            if table is not None:
                item = table[i]
            stored = _write_item(raw, i, item, spec, path)
            digest.update(stored.data, immutable=isinstance(stored.base, bytes))
            crcs[i] = stored_crc(stored.data)  # zlib.crc32's value: chunk_flag's, no copy
            if chunked:
                masks[i] = item.filter_mask if isinstance(item, RawChunk) else _chunk_mask(raw, i)
            barrier.add(i, (1 << 32) | int(crcs[i]))
            bar.update(1)
        barrier.commit()
    if iterator is not None and next(iterator, _END) is not _END:
        raise InputError(f"{path}: more frames than the {n_pos} positions")
    return crcs, masks, resumed


def _chunk_mask(raw: h5py.Dataset, i: int) -> int:
    """The filter mask of frame ``i``'s stored chunk."""
    return int(raw.id.get_chunk_info_by_coord((i, 0)).filter_mask)


def _count_message(path: Path, count: int, spec: MeasurementSpec) -> str:
    dims = " × ".join(f"{d.name}={len(d)}" for d in spec.position_dims)
    return f"{path}: {count} frames for {spec.n_positions} positions ({dims})"


def _read_stored(raw: h5py.Dataset, i: int, chunked: bool, buf: np.ndarray) -> np.ndarray | None:
    """What frame ``i`` holds in the file (chunk bytes or values), or None if unreadable."""
    try:
        if chunked:
            _mask, data = raw.id.read_direct_chunk((i, 0))
            return np.frombuffer(data, dtype=np.uint8)
        raw.read_direct(buf, source_sel=np.s_[i : i + 1])
        return buf
    except Exception:  # noqa: BLE001 - a chunk never written or torn: rewrite it
        return None


def _write_item(
    raw: h5py.Dataset, i: int, item: Any, spec: MeasurementSpec, path: Path
) -> np.ndarray:
    """Write frame ``i``; return what is stored (chunk bytes or values) for the records."""
    if isinstance(item, RawChunk):
        if spec.raw_filters is None:
            raise InputError(f"{path}: frame {i} is a compressed chunk but no filters were given")
        raw.id.write_direct_chunk((i, 0), item.data, item.filter_mask)
        return np.frombuffer(item.data, dtype=np.uint8)
    if item is None:
        row = np.zeros((1, spec.n_spec), dtype=raw.dtype)
    else:
        frame = np.asarray(item)
        if frame.shape != spec.frame_shape:
            raise InputError(
                f"{path}: frame {i} has shape {frame.shape}; expected {spec.frame_shape} "
                "like the first frame"
            )
        row = np.ascontiguousarray(frame, dtype=raw.dtype).reshape(1, -1)
    raw.write_direct(row, dest_sel=np.s_[i : i + 1])
    if spec.raw_filters is not None:  # encoded by the pipeline: record the stored bytes
        _mask, data = raw.id.read_direct_chunk((i, 0))
        return np.frombuffer(data, dtype=np.uint8)
    return row


# --------------------------------------------------------------------------- virtual


def write_virtual_measurement(
    path: str | os.PathLike,
    spec: MeasurementSpec,
    mappings: Sequence[VirtualFrames],
    *,
    overwrite: bool = False,
    sources: Callable[[], list[dict[str, Any]]] | None = None,
) -> Path:
    """Write a USID file whose ``Raw_Data`` is a virtual dataset over the source frames.

    Positions not covered by ``mappings`` read as zeros. Source files are referred to by their
    path relative to the folder of ``path`` (HDF5 looks for them there first), so the output and
    its sources can move together.

    ``sources``, when given, is called once every frame's crc32 is computed and what it returns
    becomes ``spec.attrs["sources"]`` (the source file records): a translator hashes the source
    files in a thread meanwhile (:class:`pyscatter.translators.common.PendingRecords`).

    Raises
    ------
    ExistingResultsError
        ``path`` exists and ``overwrite`` is false.
    InputError
        A mapping outside the positions or the source dataset, or of a frame size other than
        ``spec``'s.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    n_pos, n_spec = spec.n_positions, spec.n_spec
    with job_lock(path, command=f"pyscatter translate into {path}"):
        _check_target(path, overwrite)
        tmp = partial_path(path)
        tmp.unlink(missing_ok=True)
        layout = h5py.VirtualLayout(shape=(n_pos, n_spec), dtype=np.dtype(spec.dtype))
        for m in mappings:
            if (
                m.position < 0
                or m.position + m.count > n_pos
                or m.start < 0
                or m.start + m.count > m.shape[0]
                or int(np.prod(m.shape[1:])) != n_spec
            ):
                raise InputError(f"{m.file}: mapping {m} does not fit {n_pos} × {n_spec}")
            name = os.path.relpath(os.path.abspath(m.file), os.path.abspath(path.parent))
            source = h5py.VirtualSource(name, m.dataset, shape=tuple(m.shape))
            layout[m.position : m.position + m.count, :] = source[m.start : m.start + m.count]

        def make_raw(chan: h5py.Group, pos: Any, sp: Any) -> h5py.Dataset:
            dset = chan.create_virtual_dataset("Raw_Data", layout, fillvalue=0)
            return _usid_links(dset, spec, pos, sp)

        try:
            crcs = _virtual_crcs(spec, mappings)
            if sources is not None:
                spec.attrs["sources"] = sources()
            with h5py.File(tmp, "w") as h5:
                raw = _build(h5, spec, make_raw, storage="virtual")
                write_checksums(raw, crcs)
                records = json.dumps(spec.attrs.get("sources", []), sort_keys=True, default=str)
                raw.attrs["sha256"] = hashlib.sha256(records.encode()).hexdigest()
                raw.attrs["sha256_of"] = "the source file records (names, sizes, sha256)"
                raw.attrs["compression"] = "virtual (frames stay in the source files)"
            _finish(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
    return path


def _virtual_crcs(spec: MeasurementSpec, mappings: Sequence[VirtualFrames]) -> np.ndarray:
    """crc32 of every frame a virtual ``Raw_Data`` will show, read from the sources
    (:func:`pyscatter.io.virtual.virtual_crcs`). Positions no mapping covers read as zeros."""
    from pyscatter.io.virtual import virtual_crcs

    return virtual_crcs(mappings, spec.n_positions, spec.n_spec, spec.dtype)


def nominal_dims(names: Sequence[str], units: Sequence[str], sizes: Sequence[int]) -> list[Dim]:
    """Index-valued dims for a regular grid (``--grid Y=6,X=8``)."""
    return [
        Dim(n, u, np.arange(s, dtype=np.float64))
        for n, u, s in zip(names, units, sizes, strict=True)
    ]
