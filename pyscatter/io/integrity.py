"""Integrity of the raw frames and of the results: per-frame checksums, ``pyscatter verify``.

**Per-frame checksums.** Every translator records, beside ``Raw_Data``, a ``Frame_Checksums``
dataset: one ``crc32`` (zlib) per position of the frame's *decoded* values (C order, the
``Raw_Data`` dtype). The frame reader of every process checks each block it reads against it
and stops with a :class:`~pyscatter.errors.FileFormatError` naming the file, the position index
and its motor values; a frame that HDF5 cannot decode at all (a flipped bit inside an LZ4 or
gzip stream) is reported the same way.

Why not HDF5's ``fletcher32`` filter: it checks what HDF5 encoded itself, but ``Raw_Data`` is
written three ways (:mod:`pyscatter.io.raw`): encoded by HDF5, compressed chunks of the source
copied as they are (``write_direct_chunk``: no filter runs, so fletcher32 would have to be
computed by hand over the source's bytes, and the pipeline would differ from the source's), and a
virtual dataset over the source files (no filter at all; a source that went missing reads as
zeros). A checksum of the decoded values covers all three, and the error can name the position.
The crc32 is zlib-ng's (the same values as :func:`zlib.crc32`, which any reader can use to
check them, ~4x faster); it releases the GIL, so the reader thread checks a block while the
previous one is computed.

**Per-chunk checksums of copied chunks.** Chunks copied as they are stored (``--link``, one
frame per chunk) are never decoded by the translation: instead of ``Frame_Checksums`` it
records ``Chunk_Checksums``, (n_positions, 2) uint32, per position the ``zlib.crc32`` of the
chunk's bytes as stored (compressed) and its HDF5 filter mask (``read_direct_chunk`` gives
both). The same bytes through the same filter pipeline decode to the same values, so checking
the stored bytes checks the frame; computing it costs a crc32 of the compressed bytes instead
of a decode (~2.5 ms per Eiger 1M frame). Readers check them the same way (position named);
``pyscatter verify`` also decodes every frame, so a chunk that was copied undecodable from its
source is reported too. Files written before (``Frame_Checksums`` for copied chunks) are
checked as they always were: :data:`CHECKSUMS` wins when a file has both.

**Results.** Each results group's ``completed_chunks[i]`` holds ``(1 << 32) | crc32`` of chunk
``i``'s outputs (:mod:`pyscatter.io.record`); :func:`verify_file` reports every chunk that is
incomplete (0) or whose data no longer match.
"""

from __future__ import annotations

import hashlib
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from pyscatter.errors import FileFormatError, InputError

try:  # zlib-ng's crc32: the same values as zlib's, ~4x faster (7.9 against 1.9 GB/s here)
    from zlib_ng.zlib_ng import crc32
except ImportError:  # pragma: no cover - a dependency; zlib gives the same checksums, slower
    from zlib import crc32

__all__ = [
    "CHECKSUMS",
    "CHUNK_CHECKSUMS",
    "VerifyReport",
    "frame_crc",
    "position_label",
    "read_rows",
    "read_verified",
    "require_pyscatter_file",
    "stored_crc",
    "verify_file",
    "write_checksums",
    "write_chunk_checksums",
]

log = logging.getLogger(__name__)

#: Name of the per-frame checksum dataset, beside ``Raw_Data`` (also in its ``frame_checksums``).
CHECKSUMS = "Frame_Checksums"
_ALGORITHM = "crc32"
_OF = "each frame's decoded values (C order, the Raw_Data dtype), zlib.crc32"  # zlib-ng: same


#: Name of the per-chunk checksum dataset of copied chunks (also in ``Raw_Data``'s
#: ``chunk_checksums``): per position the crc32 of the stored chunk bytes and the filter mask.
CHUNK_CHECKSUMS = "Chunk_Checksums"
_CHUNK_OF = (
    "column 0: zlib.crc32 of each frame's chunk as stored (compressed bytes, "
    "read_direct_chunk); column 1: the chunk's HDF5 filter mask"
)


def frame_crc(frame: np.ndarray) -> int:
    """crc32 of one frame's values, as :data:`CHECKSUMS` records them."""
    return crc32(np.ascontiguousarray(frame))


def stored_crc(data: Any) -> int:
    """crc32 of a chunk's stored bytes (a buffer), as :data:`CHUNK_CHECKSUMS` records them."""
    return crc32(data)


def write_checksums(raw: h5py.Dataset, crcs: np.ndarray) -> h5py.Dataset:
    """Store ``crcs`` (one per position) beside ``raw`` and point ``raw`` at them.

    A translation resumed after stopping just past this step (before its progress record was
    dropped) writes them again: the earlier copy is replaced (all frames were verified anew).
    """
    if CHECKSUMS in raw.parent:
        del raw.parent[CHECKSUMS]
    dset = raw.parent.create_dataset(CHECKSUMS, data=np.asarray(crcs, dtype=np.uint32))
    dset.attrs["algorithm"] = _ALGORITHM
    dset.attrs["of"] = _OF
    raw.attrs["frame_checksums"] = CHECKSUMS
    return dset


def write_chunk_checksums(raw: h5py.Dataset, crcs: np.ndarray, masks: np.ndarray) -> h5py.Dataset:
    """Store the stored-chunk ``crcs`` and filter ``masks`` (one each per position) beside
    ``raw`` as :data:`CHUNK_CHECKSUMS` and point ``raw`` at them (replacing an earlier copy, as
    :func:`write_checksums` does)."""
    if CHUNK_CHECKSUMS in raw.parent:
        del raw.parent[CHUNK_CHECKSUMS]
    table = np.stack([np.asarray(crcs, dtype=np.uint32), np.asarray(masks, dtype=np.uint32)], 1)
    dset = raw.parent.create_dataset(CHUNK_CHECKSUMS, data=table)
    dset.attrs["algorithm"] = _ALGORITHM
    dset.attrs["of"] = _CHUNK_OF
    raw.attrs["chunk_checksums"] = CHUNK_CHECKSUMS
    return dset


def _named(raw: h5py.Dataset, attr: str) -> h5py.Dataset | None:
    name = raw.attrs.get(attr)
    if name is None:
        return None
    return raw.parent.get(name.decode() if isinstance(name, bytes) else str(name))


def _checksums(raw: h5py.Dataset) -> h5py.Dataset | None:
    return _named(raw, "frame_checksums")


def _chunk_checksums(raw: h5py.Dataset) -> h5py.Dataset | None:
    """The :data:`CHUNK_CHECKSUMS` of ``raw``, unless it has per-frame ones (which win)."""
    return None if "frame_checksums" in raw.attrs else _named(raw, "chunk_checksums")


def _chunk_mismatch(raw: h5py.Dataset, i: int, expected: np.ndarray) -> str | None:
    """Why the stored chunk of frame ``i`` does not match ``expected`` (crc, mask), or None."""
    try:
        mask, data = raw.id.read_direct_chunk((i, *([0] * (raw.ndim - 1))))
    except (OSError, ValueError, RuntimeError, KeyError) as err:
        return f"its stored chunk cannot be read ({err})"
    if stored_crc(data) != int(expected[0]):
        return "the stored chunk does not match its recorded crc32"
    if int(mask) != int(expected[1]):
        return f"the stored chunk's filter mask is {int(mask)}, {int(expected[1])} was recorded"
    return None


def position_label(raw: h5py.Dataset, index: int) -> str:
    """``"position 17 (Y=2 mm, X=1.5 mm)"`` from the main dataset's Position_Values."""
    try:
        values = raw.file[raw.attrs["Position_Values"]]
        labels = values.attrs["labels"]
        units = values.attrs["units"]
        row = values[index]
        parts = []
        for label, unit, value in zip(labels, units, row, strict=True):
            label = label.decode() if isinstance(label, bytes) else str(label)
            unit = unit.decode() if isinstance(unit, bytes) else str(unit)
            parts.append(f"{label}={value:g}{' ' + unit if unit else ''}")
        return f"position {index} ({', '.join(parts)})"
    except Exception:  # noqa: BLE001 - a label is a courtesy; never hide the real error
        return f"position {index}"


def _corrupt(raw: h5py.Dataset, index: int, what: str) -> FileFormatError:
    return FileFormatError(
        f"{raw.file.filename}: {raw.name}: {position_label(raw, index)}: {what}; the raw data "
        "are corrupted (check them with `pyscatter verify`, restore the file from a copy or "
        "translate it again)"
    )


def read_verified(raw: h5py.Dataset, out: np.ndarray, start: int, stop: int) -> np.ndarray:
    """Read rows ``[start, stop)`` of ``raw`` into ``out`` and check them against their checksums.

    Raises
    ------
    FileFormatError
        A frame whose checksum does not match, or that HDF5 cannot decode; the message names
        the file, the dataset and the position (index and motor values).
    """
    chunk_sums = _chunk_checksums(raw)
    if chunk_sums is not None:  # the stored bytes, before HDF5 decodes them
        expected_chunks = chunk_sums[start:stop]
        for k in range(stop - start):
            why = _chunk_mismatch(raw, start + k, expected_chunks[k])
            if why is not None:
                raise _corrupt(raw, start + k, why)
    try:
        raw.read_direct(out, source_sel=np.s_[start:stop])
    except OSError as err:
        bad = _undecodable(raw, start, stop, out)
        if bad is None:
            raise  # not a frame's fault (a transient read error): the caller may retry
        raise _corrupt(raw, bad, f"HDF5 cannot decode the frame ({err})") from err
    sums = _checksums(raw)
    if sums is not None:
        expected = sums[start:stop]
        for k in range(stop - start):
            if crc32(out[k]) != int(expected[k]):
                raise _corrupt(raw, start + k, "the frame does not match its recorded crc32")
    return out


def read_rows(dset: h5py.Dataset, start: int, stop: int) -> np.ndarray:
    """Rows ``[start, stop)`` of a main dataset, checked as :func:`read_verified` does when it is
    a raw dataset with recorded checksums (any other dataset is read as it is)."""
    if _checksums(dset) is None and _chunk_checksums(dset) is None:
        return dset[start:stop]
    out = np.empty((stop - start, *dset.shape[1:]), dtype=dset.dtype)
    return read_verified(dset, out, start, stop)


def _undecodable(raw: h5py.Dataset, start: int, stop: int, out: np.ndarray) -> int | None:
    """The first position in ``[start, stop)`` whose frame cannot be read, or None."""
    for i in range(start, stop):
        try:
            raw.read_direct(out[i - start : i - start + 1], source_sel=np.s_[i : i + 1])
        except OSError:
            return i
    return None


# --------------------------------------------------------------------------- whose file


def _is_pyscatter(h5: h5py.File) -> bool:
    """A translation leaves ``sha256_of`` on ``Raw_Data`` (pyUSID's files have none); a process
    leaves results groups with ``process`` and ``parameters_hash`` attributes."""
    raw = h5.get("Measurement_000/Channel_000/Raw_Data")
    if isinstance(raw, h5py.Dataset):
        return "sha256_of" in raw.attrs

    def results(_name: str, obj: Any) -> bool | None:
        return True if "process" in obj.attrs and "parameters_hash" in obj.attrs else None

    return bool(h5.visititems(results))


def require_pyscatter_file(path: str | os.PathLike) -> None:
    """Refuse (:class:`InputError`) a file pyscatter did not write, before anything writes to it.

    Read-only and without HDF5's lock; a file HDF5 cannot open (a killed job may leave one that
    needs :func:`pyscatter.io.safety.repair`) counts as pyscatter's only if its bytes hold the
    names of pyscatter's layout.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"no such file: {path}")
    try:
        with h5py.File(path, "r", locking=False) as h5:
            ok = _is_pyscatter(h5)
    except OSError:
        ok = _names_in_bytes(path)
    if not ok:
        raise InputError(
            f"{path} is not a pyscatter file (neither a Raw_Data written by a pyscatter "
            "translation nor pyscatter results); pyscatter never writes into other files: "
            "translate it first (`pyscatter translate`)"
        )


def _names_in_bytes(path: Path) -> bool:
    with path.open("rb") as fh:
        data = fh.read(16 << 20)  # object headers and link names sit near the start
    if data[:8] != b"\x89HDF\r\n\x1a\n":
        return False
    return b"Measurement_000" in data and (b"sha256_of" in data or b"parameters_hash" in data)


# --------------------------------------------------------------------------- verify


@dataclass
class VerifyReport:
    """What :func:`verify_file` found: ``problems`` (each names where) and ``checked`` lines."""

    path: str
    checked: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def text(self) -> str:
        lines = [f"{self.path}:"]
        lines += [f"  ok       {line}" for line in self.checked]
        lines += [f"  PROBLEM  {line}" for line in self.problems]
        verdict = "intact" if self.ok else f"{len(self.problems)} problem(s)"
        lines.append(f"  {verdict}")
        return "\n".join(lines)


def verify_file(path: str | os.PathLike, *, block: int = 64) -> VerifyReport:
    """Check every raw frame and every results chunk of a pyscatter file (read-only).

    Raw data: every frame against its recorded crc32 (``Frame_Checksums``), or its stored chunk
    against ``Chunk_Checksums`` (copied chunks; every frame is decoded too), and the whole
    ``Raw_Data`` against its recorded ``sha256``. Results: every chunk of every results group
    against its ``completed_chunks`` flag; incomplete chunks are listed too.

    Raises
    ------
    InputError
        The file is missing or not a pyscatter file.
    """
    import hdf5plugin  # noqa: F401  (filters of compressed raw data)

    from pyscatter.io.record import FLAGS

    require_pyscatter_file(path)
    report = VerifyReport(str(path))
    with h5py.File(path, "r", locking=False) as h5:
        raws: list[h5py.Dataset] = []
        groups: list[h5py.Group] = []

        def visit(_name: str, obj: Any) -> None:
            if isinstance(obj, h5py.Dataset) and obj.name.endswith("/Raw_Data"):
                raws.append(obj)
            elif (
                isinstance(obj, h5py.Group) and FLAGS in obj and "positions_per_chunk" in obj.attrs
            ):
                groups.append(obj)

        h5.visititems(visit)
        for raw in raws:
            _verify_raw(raw, report, block)
        for group in groups:
            _verify_results(group, report)
    return report


def _verify_raw(raw: h5py.Dataset, report: VerifyReport, block: int) -> None:
    n_pos = raw.shape[0]
    sums, chunk_sums = _checksums(raw), _chunk_checksums(raw)
    expected = None if sums is None else sums[()]
    expected_chunks = None if chunk_sums is None else chunk_sums[()]
    of = str(raw.attrs.get("sha256_of", ""))
    values_digest = hashlib.sha256() if of.startswith("frame values") else None
    chunks_digest = hashlib.sha256() if of.startswith("stored chunks") else None
    buf = np.empty((block, raw.shape[1]), dtype=raw.dtype)
    bad = 0
    for start in range(0, n_pos, block):
        stop = min(start + block, n_pos)
        out = buf[: stop - start]
        failed = _read_rows(raw, out, start, stop)
        for k in range(stop - start):
            i = start + k
            why = _frame_problem(raw, i, out[k], i in failed, expected, expected_chunks)
            if why is not None:
                report.problems.append(f"{raw.name}: {position_label(raw, i)}: {why}")
                bad += 1
            if values_digest is not None:
                values_digest.update(out[k])
            if chunks_digest is not None:
                chunks_digest.update(raw.id.read_direct_chunk((i, 0))[1])
    digest = values_digest or chunks_digest
    recorded = raw.attrs.get("sha256")
    if digest is not None and recorded is not None and digest.hexdigest() != recorded:
        report.problems.append(f"{raw.name}: sha256 differs from the one recorded at translation")
    if expected is None and expected_chunks is None:
        report.problems.append(
            f"{raw.name}: no per-frame checksums recorded (written before they existed); "
            f"sha256 {'checked' if digest is not None else 'not checkable'}"
        )
    elif not bad:
        what = "and sha256 " if digest is not None else ""
        kind = "crc32" if expected is not None else "crc32 (of the stored chunks)"
        report.checked.append(f"{raw.name}: {n_pos} frames match their {kind} {what}".rstrip())


def _frame_problem(
    raw: h5py.Dataset,
    i: int,
    values: np.ndarray,
    undecodable: bool,
    expected: np.ndarray | None,
    expected_chunks: np.ndarray | None,
) -> str | None:
    """What is wrong with frame ``i`` (decoded as ``values``), or None."""
    if expected_chunks is not None:  # the stored bytes first: the more precise message
        why = _chunk_mismatch(raw, i, expected_chunks[i])
        if why is not None:
            return why
    if undecodable:
        return "HDF5 cannot decode the frame"
    if expected is not None and crc32(values) != int(expected[i]):
        return "the frame does not match its crc32"
    return None


def _read_rows(raw: h5py.Dataset, out: np.ndarray, start: int, stop: int) -> set[int]:
    """Read rows into ``out``; positions HDF5 cannot decode are zeroed and returned."""
    try:
        raw.read_direct(out, source_sel=np.s_[start:stop])
        return set()
    except OSError:
        pass
    failed = set()
    for i in range(start, stop):
        try:
            raw.read_direct(out[i - start : i - start + 1], source_sel=np.s_[i : i + 1])
        except OSError:
            out[i - start] = 0
            failed.add(i)
    return failed


def _verify_results(group: h5py.Group, report: VerifyReport) -> None:
    from pyscatter.io.record import FLAGS, block_flag, output_order

    flags = group[FLAGS][()]
    size = int(group.attrs["positions_per_chunk"])
    n_pos = int(group.attrs["n_positions"])
    order = output_order(group)
    bad = 0
    for i, flag in enumerate(flags):
        start, stop = i * size, min((i + 1) * size, n_pos)
        span = f"position {start}" if stop - start == 1 else f"positions {start}–{stop - 1}"
        where = f"{group.name}: chunk {i} ({span})"
        if int(flag) == 0:
            report.problems.append(f"{where}: incomplete (never written, or interrupted)")
            bad += 1
            continue
        try:
            data = [group[name][start:stop] for name in order]
        except OSError as err:
            report.problems.append(f"{where}: unreadable ({err})")
            bad += 1
            continue
        if int(flag) != block_flag(data):
            report.problems.append(f"{where}: data do not match the chunk's crc32")
            bad += 1
    if not bad:
        report.checked.append(f"{group.name}: {len(flags)} chunks complete and matching")
