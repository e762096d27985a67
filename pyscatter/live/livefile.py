"""The live file: the raw file of ``pyscatter watch``, written frame by frame while a detector acquires.

Same layout as :func:`pyscatter.io.raw.write_measurement` (``Measurement_000/Channel_000/Raw_Data``,
``Position_*``, ``Spectroscopic_*``, ``Mask``, geometry and attributes, the ``Raw_Frames`` view),
built from a :class:`~pyscatter.live.layout.LiveLayout`, with:

* root attribute ``live_state``: ``"acquiring"`` while a watch owns the file, ``"stopped"`` (ended
  before the declared scan was full, or an unbounded series ended), ``"complete"`` (declared full);
* ``Raw_Data.attrs["live_id"]``: a uuid4, kept for ever;
* ``Channel_000/live_frames`` (n_positions,) uint64: 0 until frame ``i`` is written, then
  ``(1 << 32) | crc32`` of its values as stored (:func:`pyscatter.io.safety.chunk_flag`);
* root attribute ``live_layout``: the layout's identity (:meth:`LiveLayout.record`);
* per-frame scalars (``Arrival.values``: motors, counters, header keys) as per-position float64
  datasets beside ``Raw_Data`` (NaN where not measured), named after their key (``Monitor`` for
  the layout's monitor); a key that collides with the layout's names gets a ``value_`` prefix.

**Crash safety** (``docs/crash_safety.md``). The file is built as ``.<name>.partial`` and renamed
into place, so it never exists half set up. Frames are written by group commit: the data of every
frame of a :meth:`LiveFile.write` → flush + fsync → their flags → flush + fsync (rules 5, 6);
a frame counts as written only if its flag matches its values read back, verified once when the
file is reopened. Everything that changes the file's structure (a new per-frame value dataset,
growing an unbounded series, the state, :meth:`LiveFile.finalize`) is a journaled
:func:`~pyscatter.io.safety.setup_transaction`: a kill inside one is rolled back by
:func:`~pyscatter.io.safety.repair` on reopening. Raw values are never rewritten.

**Bounded scan** (declared dims): every dataset has its final shape from the start, identical to
the offline file; positions never measured read as zeros, as the offline ``incomplete="pad"``.

**Unbounded series**: one dim ``Image``; ``Raw_Data`` (one frame per chunk), ``Position_*``,
``live_frames`` and the per-frame values are resizable and grow, inside a journaled transaction,
to exactly the highest index written + 1 (at least 1): ``n_positions`` is what readers see. The
``Raw_Frames`` view is an unlimited virtual dataset and follows by itself. Growth writes new rows
into the last chunk of the (uncompressed) position datasets in place, rewriting their earlier rows
with the same bytes; a rolled-back growth leaves only invisible rows beyond the old shape.

**Copied chunks** (a layout with ``raw_filters``, :meth:`LiveLayout.take_chunks
<pyscatter.live.layout.LiveLayout.take_chunks>`): ``Raw_Data`` has the source's filter pipeline
and an arrival's :attr:`~pyscatter.live.sources.Arrival.chunk` is written as it is
(``write_direct_chunk``), never decoded nor encoded, as ``translate --link`` copies them. The flag
of a frame is then ``(1 << 32) | crc32`` of its chunk's stored bytes, and ``live_frames``'s
attribute ``checksum_of`` says so (``"stored chunks"``; ``"frame values"`` otherwise, and files
without it are of values): reopening verifies the chunk bytes, and finalize records
``Chunk_Checksums`` (crc32 of each stored chunk and its filter mask, as the offline copy) instead
of ``Frame_Checksums``. A frame that comes decoded (or a chunk of another pipeline, decoded
first) is encoded by the pipeline and its stored chunk read back for the flag; never-measured
positions get zeros through the pipeline at finalize, so that every position has a chunk.

**finalize**: ``Frame_Checksums`` (the crc32 of every frame, from its flag; zeros' crc32 where
nothing was measured), ``valid_positions`` when some position was never measured (as the offline
``incomplete="pad"``), ``missing_positions``, and ``live_state``. Reopening a finalized file to
write more removes those again (journaled) until the next finalize. ``Raw_Data`` gets no
``sha256`` (frames arrive in any order; each frame's crc32 is recorded instead).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from pyscatter.errors import InputError
from pyscatter.io import raw as _raw
from pyscatter.io.faults import abandon, open_for_writing, write_failure
from pyscatter.io.integrity import (
    CHECKSUMS,
    CHUNK_CHECKSUMS,
    frame_crc,
    stored_crc,
    write_checksums,
    write_chunk_checksums,
)
from pyscatter.io.safety import chunk_flag, fsync, repair, setup_transaction
from pyscatter.io.usid import MAX_AXIS_ATTR, compression_options, create_main, dims_of
from pyscatter.live.layout import SERIES_DIM, LiveLayout
from pyscatter.live.sources import Arrival, SourceChunk
from pyscatter.translators.common import flip_frame

__all__ = ["Arrival", "LiveFile", "STATES", "stored_layout"]

logger = logging.getLogger(__name__)

CHANNEL = "Measurement_000/Channel_000"
FLAGS = "live_frames"
STATE = "live_state"
LAYOUT = "live_layout"
LIVE_ID = "live_id"
VALID = "valid_positions"
#: Attribute of ``live_frames``: what the crc32 of its flags is of.
CHECKSUM_OF = "checksum_of"
OF_CHUNKS = "stored chunks (compressed bytes, read_direct_chunk)"
OF_VALUES = "frame values (C order, Raw_Data dtype)"
#: Values of the root attribute ``live_state``.
STATES = ("acquiring", "stopped", "complete")
_SERIES_CHUNK = 4096  # positions per chunk of the resizable per-position datasets
_RESERVED = {"Raw_Data", FLAGS, CHECKSUMS, CHUNK_CHECKSUMS, VALID, "Mask"}


class LiveFile:
    """An open live file; see the module notes. Build it with :meth:`create_or_open`.

    Attributes
    ----------
    path : Path
    layout : LiveLayout
    h5 : h5py.File
        Opened ``"r+"``; the caller holds :func:`~pyscatter.io.safety.job_lock` on ``path``.
    raw : h5py.Dataset
        ``Raw_Data``.
    """

    def __init__(self, path: Path, h5: h5py.File, layout: LiveLayout, stack: Any) -> None:
        self.path, self.h5, self.layout = path, h5, layout
        self._stack = stack
        self.raw: h5py.Dataset = h5[f"{CHANNEL}/Raw_Data"]
        self._flags = h5[f"{CHANNEL}/{FLAGS}"]
        #: The flags are crc32 of the stored chunks (copied chunks), not of the values.
        self.chunked = str(self._flags.attrs.get(CHECKSUM_OF, OF_VALUES)) == OF_CHUNKS
        if self.chunked != (layout.raw_filters is not None):
            raise InputError(
                f"{path}: live_frames checksum {'chunks' if self.chunked else 'values'} but the "
                "layout says otherwise; the file was not written by pyscatter watch"
            )
        self._done = self._verified()

    # ------------------------------------------------------------------ opening

    @classmethod
    def create_or_open(cls, path: str | os.PathLike, layout: LiveLayout | None = None) -> LiveFile:
        """Create the live file at ``path``, or reopen that of an interrupted watch.

        A new file is built as ``.<name>.partial`` and renamed into place. An existing one is
        repaired (:func:`~pyscatter.io.safety.repair`), checked to be a live file of the same
        layout, set back to ``"acquiring"``, and its written frames verified once.
        The caller holds :func:`~pyscatter.io.safety.job_lock` on ``path``.

        Parameters
        ----------
        path : the live file.
        layout : LiveLayout, optional
            Required to create the file. None reopens an existing one with the layout it
            records (:func:`stored_layout`): a restarted watch need not see the same first frame
            (an ESRF dummy mask, say, is made from the first frame's pixels).

        Raises
        ------
        InputError
            ``path`` is not a live file, or one of another layout (the message says what
            differs), or is missing and no layout is given.
        FileBusyError
            Another program has the file open with HDF5's lock.
        """
        path = Path(path)
        if path.is_dir():
            raise InputError(f"output {path} is a folder; expected an HDF5 file name")
        if not path.exists():
            if layout is None:
                raise InputError(f"{path}: no such live file, and no layout to create it from")
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = _raw.partial_path(path)
            tmp.unlink(missing_ok=True)  # a set-up interrupted before the rename: nothing kept
            try:
                with h5py.File(tmp, "w") as h5:
                    _build(h5, layout)
                _raw._finish(tmp, path)
            except BaseException:
                tmp.unlink(missing_ok=True)
                raise
            logger.info("%s: live file created (%s)", path, _describe(layout))
        else:
            for message in repair(path):
                logger.warning("%s: %s", path, message)
        stack = contextlib.ExitStack()
        try:
            h5 = stack.enter_context(open_for_writing(path))
            layout = _check_layout(h5, path, layout)
            chan = h5[CHANNEL]
            if h5.attrs.get(STATE) != "acquiring" or CHECKSUMS in chan or CHUNK_CHECKSUMS in chan:
                with setup_transaction(h5):
                    _unfinalize(h5)
            live = cls(path, h5, layout, stack)
        except BaseException:
            stack.close()
            raise
        logger.info("%s: %d of %d frames written", path, int(live._done.sum()), live.n_positions)
        return live

    def _verified(self) -> np.ndarray:
        """Positions whose flag matches their values read back (read once, on opening)."""
        flags = self._flags[()]
        done = np.zeros(flags.shape, dtype=bool)
        buf = np.empty((1, self.raw.shape[1]), dtype=self.raw.dtype)
        for i in np.flatnonzero(flags):
            try:
                if self.chunked:  # the stored bytes, not decoded
                    flag = (1 << 32) | stored_crc(self.raw.id.read_direct_chunk((int(i), 0))[1])
                else:
                    self.raw.read_direct(buf, source_sel=np.s_[i : i + 1])
                    flag = chunk_flag(buf)
            except (OSError, ValueError, RuntimeError, KeyError):  # a torn or absent chunk
                continue  # of an uncommitted frame: written again
            done[i] = flag == int(flags[i])
        if (flags != 0).sum() > done.sum():
            logger.warning(
                "%s: %d flagged frames do not match their values and will be written again",
                self.path,
                int((flags != 0).sum() - done.sum()),
            )
        return done

    # ------------------------------------------------------------------ state

    @property
    def n_positions(self) -> int:
        """Positions in the file now (declared, or highest index written + 1 for a series)."""
        return int(self.raw.shape[0])

    @property
    def live_id(self) -> str:
        return str(self.raw.attrs[LIVE_ID])

    @property
    def state(self) -> str:
        return str(self.h5.attrs[STATE])

    def done(self) -> np.ndarray:
        """Bool per position: the frame is written and its flag verifies (a copy)."""
        return self._done.copy()

    def close(self) -> None:
        """Close the file (the state stays as it is: ``"acquiring"`` until :meth:`finalize`)."""
        self._stack.close()

    def __enter__(self) -> LiveFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ writing

    def write(self, arrivals: Iterable[Arrival]) -> list[int]:
        """Write the frames of ``arrivals`` in one group commit; return the positions written.

        Frames already written (verified) are skipped, as is a second arrival of one position.
        Data of every frame → flush + fsync → their flags → flush + fsync. Each arrival's
        ``values`` go into the per-position datasets (created, journaled, when a key is new).
        An unbounded series grows first (journaled) to the highest index + 1.

        Raises
        ------
        InputError
            A frame of another shape, of another dtype kind or one that does not fit the
            layout's dtype, or an index outside the declared scan: the message names each such
            frame (origin and index); nothing is written for them, the others are committed first.
        """
        rows: dict[int, tuple[np.ndarray | SourceChunk, dict[str, float]]] = {}
        bad: list[str] = []
        for arrival in arrivals:
            try:
                row = self._row(arrival)
            except InputError as err:
                bad.append(str(err))
                continue
            index = int(arrival.index)
            if not (index < self._done.size and self._done[index]) and index not in rows:
                rows[index] = (row, _numbers(arrival.values))
        try:
            if rows:
                self._commit(rows)
        except BaseException as err:
            if write_failure(err) is not None:
                abandon(self.h5)
            raise
        if bad:
            raise InputError(f"{self.path}: " + "; ".join(bad))
        return sorted(rows)

    def changes_structure(self, arrivals: Iterable[Arrival]) -> bool:
        """Whether :meth:`write` of ``arrivals`` changes the file's structure (a journaled
        :func:`~pyscatter.io.safety.setup_transaction`: a series grows, or a per-frame value
        dataset is new); else it writes only frames, values and flags."""
        arrivals = list(arrivals)
        if not arrivals:
            return False
        if max(int(a.index) for a in arrivals) >= self.n_positions:
            return True
        keys = {k for a in arrivals for k in _numbers(a.values)}
        chan = self.h5[CHANNEL]
        return any(name not in chan for name in self._value_names(keys).values())

    def _row(self, arrival: Arrival) -> np.ndarray | SourceChunk:
        """The arrival's frame as it is stored: flipped, cast, one row, or its chunk to copy as
        it is; or InputError."""
        layout = self.layout
        where = f"{arrival.origin} (frame {arrival.index})"
        index = int(arrival.index)
        if index < 0 or (layout.bounded and index >= self.n_positions):
            raise InputError(f"{where}: position {index} outside the scan's {self.n_positions}")
        chunk = getattr(arrival, "chunk", None)  # duck-typed arrivals may have no chunk
        if chunk is not None and self.chunked and self._copies(chunk):
            return chunk
        if arrival.frame is None:  # a chunk of another pipeline, shape or dtype: decoded
            assert chunk is not None  # an Arrival has one or the other
            try:
                frame = chunk.decode()
            except (OSError, ValueError, RuntimeError) as err:
                raise InputError(f"{where}: its stored chunk cannot be decoded ({err})") from err
        else:
            frame = np.asarray(arrival.frame)
        if frame.shape != layout.frame_shape:
            raise InputError(
                f"{where}: frame of shape {frame.shape}; expected {layout.frame_shape} like the "
                "first frame"
            )
        if frame.dtype.kind != layout.dtype.kind or not np.can_cast(frame.dtype, layout.dtype):
            raise InputError(
                f"{where}: frame of dtype {frame.dtype}; the first frame is {layout.dtype}, and "
                "every frame must fit it"
            )
        if frame.ndim == 2:
            frame = flip_frame(frame, layout.flip)
        return np.ascontiguousarray(frame, dtype=layout.dtype).reshape(1, -1)

    def _copies(self, chunk: SourceChunk) -> bool:
        """Whether ``chunk`` is stored as it is: the pipeline, frame shape and dtype of Raw_Data."""
        layout = self.layout
        return (
            list(chunk.filters) == layout.raw_filters
            and tuple(chunk.shape) == layout.frame_shape
            and np.dtype(chunk.dtype) == layout.dtype
        )

    def _store(self, i: int, row: np.ndarray | SourceChunk) -> int:
        """Write frame ``i``; its flag: crc32 of what the flags are of (values or chunk bytes)."""
        if isinstance(row, SourceChunk):
            self.raw.id.write_direct_chunk((i, 0), row.data, row.filter_mask)
            return (1 << 32) | stored_crc(row.data)
        self.raw.write_direct(row, dest_sel=np.s_[i : i + 1])
        if self.chunked:  # encoded by the pipeline: the flag is of the stored bytes
            return (1 << 32) | stored_crc(self.raw.id.read_direct_chunk((i, 0))[1])
        return chunk_flag(row)

    def _commit(self, rows: dict[int, tuple[np.ndarray | SourceChunk, dict[str, float]]]) -> None:
        index = np.array(sorted(rows), dtype=np.int64)
        names = self._value_names({k for _, values in rows.values() for k in values})
        if index[-1] >= self.n_positions or any(n not in self.h5[CHANNEL] for n in names.values()):
            with setup_transaction(self.h5):
                if index[-1] >= self.n_positions:
                    self._grow(int(index[-1]) + 1)
                self._add_values([n for n in names.values() if n not in self.h5[CHANNEL]])
            grown = self.n_positions - self._done.size
            self._done = np.concatenate([self._done, np.zeros(grown, dtype=bool)])
        flags = np.zeros(index.size, dtype=np.uint64)
        for k, i in enumerate(index):
            flags[k] = self._store(int(i), rows[int(i)][0])
        chan = self.h5[CHANNEL]
        for key, name in names.items():
            at = [int(i) for i in index if key in rows[int(i)][1]]
            chan[name][at] = np.array([rows[i][1][key] for i in at], dtype=np.float64)
        fsync(self.h5)
        self._flags[index] = flags
        fsync(self.h5)
        self._done[index] = True

    def _value_names(self, keys: set[str]) -> dict[str, str]:
        """Dataset name of each per-frame value key."""
        taken = _RESERVED | {n for n in self.h5[CHANNEL] if n.startswith(("Position_", "Spectro"))}
        out = {}
        for key in sorted(keys):
            if key == self.layout.monitor:
                out[key] = "Monitor"
                continue
            name = re.sub(r"[/.\s]+", "_", key).strip("_") or "value"
            if name in taken or name == "Monitor" or name.startswith(("Position_", "Spectro")):
                name = f"value_{name}"
            out[key] = name
        return out

    def _add_values(self, names: list[str]) -> None:
        """New per-position float64 datasets, NaN until written (inside a transaction)."""
        chan = self.h5[CHANNEL]
        for name in names:
            dset = _per_position(chan, name, self.n_positions, np.float64, np.nan, self.layout)
            if name == "Monitor":
                dset.attrs["units"] = "counts"
                dset.attrs["source"] = f"value {self.layout.monitor!r} of each frame"
            else:
                dset.attrs["source"] = "per-frame value delivered with each frame (live)"

    def _grow(self, n: int) -> None:
        """Grow an unbounded series to ``n`` positions (inside a transaction)."""
        old = self.n_positions
        chan = self.h5[CHANNEL]
        self.raw.resize((n, self.raw.shape[1]))
        axis = np.arange(n, dtype=np.float64)
        for name, dtype in (("Position_Indices", np.uint32), ("Position_Values", np.float64)):
            dset = chan[name]
            dset.resize((n, 1))
            dset[old:n, 0] = axis[old:n].astype(dtype)
            _axis_attr(dset, axis)
        view_axis = self.h5[f"{_raw.RAW_VIEW}/{SERIES_DIM}"]
        view_axis.resize((n,))
        view_axis[old:n] = axis[old:n]
        for name in chan:
            dset = chan[name]
            if isinstance(dset, h5py.Dataset) and dset.ndim == 1 and dset.maxshape[0] is None:
                dset.resize((n,))

    # ------------------------------------------------------------------ finishing

    def finalize(self, state: str | None = None) -> None:
        """Record ``Frame_Checksums`` (``Chunk_Checksums`` for copied chunks), ``valid_positions``
        and ``live_state`` (journaled).

        Parameters
        ----------
        state : {"complete", "stopped"}, optional
            Default: ``"complete"`` when the declared scan is full, else ``"stopped"``.

        Raises
        ------
        InputError
            ``"complete"`` for an unbounded series or a scan with positions never measured.
        """
        done = self._done
        full = bool(done.all())
        state = state or ("complete" if full and self.layout.bounded else "stopped")
        if state not in STATES[1:]:
            raise InputError(f"{self.path}: finalize state {state!r}; expected stopped or complete")
        if state == "complete" and not (full and self.layout.bounded):
            raise InputError(
                f"{self.path}: cannot be complete: "
                + ("an unbounded series only stops" if full else f"{int((~done).sum())} of "
                   f"{done.size} positions were never measured")
            )  # fmt: skip
        crcs, masks = self._checksums(done)
        with setup_transaction(self.h5):
            chan = self.h5[CHANNEL]
            if self.chunked:
                write_chunk_checksums(self.raw, crcs, masks)
            else:
                write_checksums(self.raw, crcs)
            if VALID in chan:
                del chan[VALID]
            if not full:
                chan.create_dataset(VALID, data=done.copy()).attrs["units"] = ""
            self.h5["Measurement_000"].attrs["missing_positions"] = int((~done).sum())
            self.h5.attrs[STATE] = state
        logger.info("%s: %s with %d of %d frames", self.path, state, int(done.sum()), done.size)

    def _checksums(self, done: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """crc32 per position (of the values, or of the stored chunk) and filter masks.

        Never-measured positions hold zeros: a frame stored before a kill but never flagged is
        overwritten with zeros; with copied chunks every such position gets the zeros' chunk
        (encoded once by the pipeline), so each position has a chunk to check."""
        zeros = np.zeros((1, self.raw.shape[1]), dtype=self.raw.dtype)
        crcs = np.zeros(done.size, dtype=np.uint32)
        masks = np.zeros(done.size, dtype=np.uint32)
        missing = np.flatnonzero(~done)
        if self.chunked and missing.size:
            first = int(missing[0])
            self.raw.write_direct(zeros, dest_sel=np.s_[first : first + 1])
            mask, data = self.raw.id.read_direct_chunk((first, 0))
            for i in missing[1:]:
                self.raw.id.write_direct_chunk((int(i), 0), data, mask)
            crcs[missing] = stored_crc(data)
        elif missing.size:
            for i in missing:  # an unflagged frame stored before a kill: zeros again
                if self.raw.id.get_chunk_info_by_coord((int(i), 0)).byte_offset is not None:
                    self.raw.write_direct(zeros, dest_sel=np.s_[i : i + 1])
            crcs[missing] = frame_crc(zeros)
        crcs[done] = (self._flags[()][done] & np.uint64(0xFFFFFFFF)).astype(np.uint32)
        if self.chunked:
            for i in range(done.size):
                masks[i] = self.raw.id.get_chunk_info_by_coord((i, 0)).filter_mask
        return crcs, masks


# --------------------------------------------------------------------------- building


def _describe(layout: LiveLayout) -> str:
    dims = "unbounded series" if layout.dims is None else " × ".join(
        f"{n}={s}" for n, s in layout.dims
    )  # fmt: skip
    return f"{dims} of {layout.frame_shape} {layout.dtype} frames"


def _build(h5: h5py.File, layout: LiveLayout) -> None:
    """The whole file but its frames, in the partial file (before its rename)."""
    spec = layout.spec(1)
    chunked = layout.raw_filters is not None
    comp = None if chunked else _raw.raw_compression(layout.compression, spec)
    n_spec = spec.n_spec
    series = not layout.bounded

    def make_raw(chan: h5py.Group, pos: Any, sp: Any) -> h5py.Dataset:
        if chunked:
            return _raw._usid_links(_filtered_raw(chan, spec, series), spec, pos, sp)
        if not series:
            return create_main(
                chan, "Raw_Data", shape=(spec.n_positions, n_spec), dtype=spec.dtype,
                quantity=spec.quantity, units=spec.units, position=pos, spectroscopic=sp,
                chunks=(1, n_spec), compression=comp,
            )  # fmt: skip
        dset = chan.create_dataset(
            "Raw_Data", shape=(1, n_spec), maxshape=(None, n_spec), chunks=(1, n_spec),
            dtype=spec.dtype, **compression_options(comp),
        )  # fmt: skip
        return _raw._usid_links(dset, spec, pos, sp)

    raw = _raw._build(
        h5, spec, make_raw, storage="copied chunks (live)" if chunked else "encoded (live)",
        make_position=_series_positions if series else None,
    )  # fmt: skip
    if series:
        _unlimited_view(h5, layout, raw)
    raw.attrs["compression"] = _raw._filters_text(spec.raw_filters) if chunked else comp or "none"
    raw.attrs[LIVE_ID] = str(uuid.uuid4())
    raw.attrs["sha256_of"] = (
        "not recorded: frames written live, in any order (see "
        f"{CHUNK_CHECKSUMS if chunked else CHECKSUMS})"
    )
    flags = _per_position(raw.parent, FLAGS, spec.n_positions, np.uint64, 0, layout)
    flags.attrs[CHECKSUM_OF] = OF_CHUNKS if chunked else OF_VALUES
    h5.attrs[LAYOUT] = json.dumps(layout.record(), sort_keys=True)
    h5.attrs[STATE] = "acquiring"


def _filtered_raw(chan: h5py.Group, spec: Any, series: bool) -> h5py.Dataset:
    """``Raw_Data`` with exactly the filter pipeline ``spec.raw_filters`` (copied chunks), one
    frame per chunk, resizable on positions for a series (as :func:`pyscatter.io.raw._filtered_raw`
    for the offline copy)."""
    import hdf5plugin  # noqa: F401 - registers bitshuffle, LZ4 … so chunks can be written and read

    dcpl = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
    dcpl.set_chunk((1, spec.n_spec))
    for code, flags, values in spec.raw_filters:
        dcpl.set_filter(code, flags, values)
    shape = (1 if series else spec.n_positions, spec.n_spec)
    space = h5py.h5s.create_simple(shape, (h5py.h5s.UNLIMITED, spec.n_spec) if series else shape)
    tid = h5py.h5t.py_create(np.dtype(spec.dtype), logical=True)
    dset = h5py.Dataset(h5py.h5d.create(chan.id, b"Raw_Data", tid, space, dcpl=dcpl))
    if _raw.chunk_filters(dset) != list(spec.raw_filters):
        raise InputError(
            f"cannot reproduce the source's filter pipeline {spec.raw_filters} (got "
            f"{_raw.chunk_filters(dset)}) in the live file"
        )
    return dset


def _series_positions(chan: h5py.Group) -> tuple[h5py.Dataset, h5py.Dataset]:
    """Resizable ``Position_Indices``/``Values`` of one dim ``Image`` at one position."""
    out = []
    for name, dtype in (("Position_Indices", np.uint32), ("Position_Values", np.float64)):
        dset = chan.create_dataset(
            name, data=np.zeros((1, 1), dtype), maxshape=(None, 1), chunks=(_SERIES_CHUNK, 1)
        )
        dset.attrs["labels"] = [SERIES_DIM]
        dset.attrs["units"] = [""]
        _axis_attr(dset, np.zeros(1))
        out.append(dset)
    return out[0], out[1]


def _axis_attr(dset: h5py.Dataset, axis: np.ndarray) -> None:
    """``axis_Image`` as :func:`~pyscatter.io.usid.write_ancillary` writes it (none when long)."""
    key = f"axis_{SERIES_DIM}"
    if axis.size <= MAX_AXIS_ATTR:
        dset.attrs[key] = axis
    elif key in dset.attrs:
        del dset.attrs[key]


def _per_position(
    chan: h5py.Group, name: str, n: int, dtype: Any, fill: Any, layout: LiveLayout
) -> h5py.Dataset:
    """One value per position, allocated at creation (and on growth) and filled with ``fill``."""
    dcpl = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
    dcpl.set_alloc_time(h5py.h5d.ALLOC_TIME_EARLY)
    dcpl.set_fill_time(h5py.h5d.FILL_TIME_ALLOC)
    dcpl.set_fill_value(np.full(1, fill, dtype=dtype))
    if layout.bounded:
        space = h5py.h5s.create_simple((n,))
    else:
        dcpl.set_chunk((_SERIES_CHUNK,))
        space = h5py.h5s.create_simple((n,), (h5py.h5s.UNLIMITED,))
    tid = h5py.h5t.py_create(np.dtype(dtype))
    return h5py.Dataset(h5py.h5d.create(chan.id, name.encode(), tid, space, dcpl=dcpl))


def _unlimited_view(h5: h5py.File, layout: LiveLayout, raw: h5py.Dataset) -> None:
    """``Raw_Frames`` of a series: its ``data`` an unlimited virtual dataset over ``Raw_Data``
    (it follows the growth by itself) and its ``Image`` axis resizable."""
    group = h5[_raw.RAW_VIEW]
    attrs = dict(group["data"].attrs)
    del group["data"]
    unlimited = h5py.h5s.UNLIMITED
    n_spec, shape = layout.n_spec, layout.frame_shape
    view = h5py.h5s.create_simple((1, *shape), (unlimited, *shape))
    view.select_hyperslab(
        (0,) * (1 + len(shape)), (unlimited, *[1] * len(shape)), block=(1, *shape)
    )
    source = h5py.h5s.create_simple((1, n_spec), (unlimited, n_spec))
    source.select_hyperslab((0, 0), (unlimited, 1), block=(1, n_spec))
    dcpl = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
    fill = np.nan if layout.dtype.kind == "f" else 0
    dcpl.set_fill_value(np.full(1, fill, dtype=layout.dtype))
    dcpl.set_virtual(view, b".", raw.name.encode(), source)
    tid = h5py.h5t.py_create(layout.dtype)
    data = h5py.Dataset(h5py.h5d.create(group.id, b"data", tid, view, dcpl=dcpl))
    for key, value in attrs.items():
        data.attrs[key] = value
    axis_attrs = dict(group[SERIES_DIM].attrs)
    del group[SERIES_DIM]
    axis = group.create_dataset(
        SERIES_DIM, data=np.zeros(1), maxshape=(None,), chunks=(_SERIES_CHUNK,)
    )
    for key, value in axis_attrs.items():
        axis.attrs[key] = value


def stored_layout(h5: h5py.File) -> LiveLayout:
    """The layout a live file was created with (its identity, spectroscopic dims and mask)."""
    record = json.loads(h5.attrs[LAYOUT])
    chan = h5[CHANNEL]
    dims = record["dims"]
    quantity, units = record["quantity"]
    return LiveLayout(
        dims=None if dims is None else [(str(n), int(s)) for n, s in dims],
        frame_shape=tuple(record["frame_shape"]),
        dtype=np.dtype(record["dtype"]),
        spec_dims=dims_of(chan["Raw_Data"], "Spectroscopic"),
        geometry=record["geometry"],
        mask=chan["Mask"][()] if "Mask" in chan else None,
        flip=record["flip"],
        dummy=record["dummy"],
        compression=record["compression"],
        monitor=record["monitor"],
        quantity=quantity,
        units=units,
        raw_filters=record.get("raw_filters"),
    )


def _check_layout(h5: h5py.File, path: Path, layout: LiveLayout | None) -> LiveLayout:
    """``layout`` (or the stored one when None) if it is that of the live file ``h5``."""
    stored = h5.attrs.get(LAYOUT)
    if stored is None or f"{CHANNEL}/{FLAGS}" not in h5:
        raise InputError(
            f"{path} exists and is not a live file (no {LAYOUT} record): pyscatter watch writes "
            "only into its own files; choose another output or remove it"
        )
    if layout is None:
        layout = stored_layout(h5)
    differences = layout.differences(json.loads(stored))
    if differences:
        raise InputError(
            f"{path} is the live file of another scan layout: " + "; ".join(differences)
            + ". Watch into another file, or remove this one to start afresh"
        )  # fmt: skip
    return layout


def _unfinalize(h5: h5py.File) -> None:
    """Back to acquiring: the checksums and valid positions of an earlier finalize go."""
    chan = h5[CHANNEL]
    for name in (CHECKSUMS, CHUNK_CHECKSUMS, VALID):
        if name in chan:
            del chan[name]
    raw = chan["Raw_Data"]
    for attr in ("frame_checksums", "chunk_checksums"):
        if attr in raw.attrs:
            del raw.attrs[attr]
    h5.attrs[STATE] = "acquiring"


def _numbers(values: Any) -> dict[str, float]:
    """The per-frame values that are numbers (others are left out)."""
    out = {}
    for key, value in (values or {}).items():
        try:
            out[str(key)] = float(value)
        except (TypeError, ValueError):
            continue
    return out
