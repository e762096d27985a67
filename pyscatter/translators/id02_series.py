"""How the files of an ESRF ID02 series become positions, per-frame times and monitors.

:func:`series_positions` turns a list of LIMA files into positions (see the ``series`` option of
:meth:`pyscatter.translators.id02.ID02Translator.translate`): the title quantities (field,
temperature), start times or frames of the files, with a ``Frame`` dim when files hold several
frames. :func:`frame_times` gives each frame's time, :func:`lima_monitor` each frame's monitor
(ID02 scalers files, a dataset of the LIMA files, or a header key). Messages are logged under the
``pyscatter.translators.id02`` logger, the translator's.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from pyscatter.errors import FileFormatError, InputError
from pyscatter.io.usid import Dim
from pyscatter.translators.base import expand_sources, natural_key
from pyscatter.translators.esrf import (
    LimaFile,
    find_datasets,
    header_number,
    parse_field_mT,
    parse_temperature_K,
)
from pyscatter.translators.grid_inference import infer_grid
from pyscatter.translators.positions import (
    Positions,
    grid_positions,
    index_positions,
    read_positions_csv,
)

__all__ = [
    "SERIES",
    "check_series",
    "choose_series",
    "frame_times",
    "lima_monitor",
    "mark_unwritten",
    "reorder_frames",
    "scaler_files",
    "series_positions",
]

logger = logging.getLogger("pyscatter.translators.id02")

#: Accepted ``series`` values (besides comma-separated title quantities like "field,temperature").
SERIES = ("auto", "field", "temperature", "time", "frames")
#: Quantities read from titles: name → (dim name, unit, parser).
_TITLE_QUANTITIES = {
    "field": ("Field", "mT", parse_field_mT),
    "temperature": ("Temperature", "K", parse_temperature_K),
}


def check_series(series: Any, positions: Any, grid: Any) -> None:
    """Refuse a ``series`` value, or ``positions``/``grid`` with a series other than frames."""
    if not isinstance(series, str):
        raise InputError(f"series must be a string, got {series!r}")
    quantities = [q.strip() for q in series.split(",")]
    if series not in SERIES and not all(q in _TITLE_QUANTITIES for q in quantities):
        raise InputError(
            f"unsupported series={series!r}; expected one of {', '.join(SERIES)} or title "
            f"quantities slow to fast like 'temperature,field'"
        )
    if positions is not None and grid is not None:
        raise InputError("give at most one of positions, grid")
    if (positions is not None or grid is not None) and series not in ("auto", "frames"):
        raise InputError(
            f"positions/grid apply to the frames (series='frames'), not to series={series!r}"
        )


def choose_series(series: str, files: list[LimaFile], positions: Any, grid: Any) -> str:
    """``series="auto"`` resolved: ``"frames"`` for one file, one acquisition (one title) or
    with positions/grid, ``"field"`` when every title names a field, else ``"time"``."""
    if series != "auto":
        return series
    if positions is not None or grid is not None or len(files) == 1:
        return "frames"
    titles = {f.title for f in files}
    if len(titles) == 1:
        return "frames"  # one acquisition split over several files
    try:
        fields = [parse_field_mT(f.title) for f in files]
    except InputError:
        fields = [None]
    if all(v is not None for v in fields) and len(set(fields)) > 1:
        return "field"
    if all(f.start_time is not None for f in files):
        return "time"
    return "frames"


def _file_quantity(f: LimaFile, quantity: str) -> float:
    dim, unit, parse = _TITLE_QUANTITIES[quantity]
    for text in (f.title, f.path.stem):
        try:
            value = parse(text)
        except InputError as err:
            raise InputError(f"{f.path}: {err}") from err
        if value is not None:
            return value
    example = "250mT or 1.2T" if quantity == "field" else "300K"
    raise InputError(
        f"{f.path}: no {quantity} in its title {f.title!r} or its name (expected e.g. "
        f"{example}); pick another series (time, frames) or rename"
    )


def series_positions(
    series: str,
    files: list[LimaFile],
    positions: Any,
    grid: Any,
    snake: Any,
    incomplete: str,
) -> tuple[Positions, list[int] | None]:
    """Positions over the frames, and the order of the files (None: as given)."""
    n_total = sum(f.n_frames for f in files)
    if series == "frames":
        if positions is not None:
            labels, values = read_positions_csv(positions)
            written = np.concatenate([f.written for f in files])
            # an aborted acquisition: the scan log lists the frames measured, LIMA allocated all
            measured = int(np.argmin(written)) if not written.all() else n_total
            if values.shape[0] != n_total and not (
                values.shape[0] == measured and not written[measured:].any()
            ):
                raise InputError(
                    f"positions file {positions}: {values.shape[0]} rows for {n_total} frames "
                    f"({measured} written before the first missing one) of all files, in order"
                )
            src = f"positions file {Path(positions).resolve()}"
            return infer_grid(values, labels, source=src, snake=snake, incomplete=incomplete), None
        if grid is not None:
            return grid_positions(
                grid, n_total, what="frames", snake=snake is True, incomplete=incomplete
            ), None
        return index_positions(n_total, "Frame", source="frames of the files in order"), None
    if series == "time":
        if any(f.start_time is None for f in files):
            missing = next(f for f in files if f.start_time is None)
            raise InputError(f"{missing.path}: no start_time; series='time' needs one per file")
        starts = [f.start_time for f in files if f.start_time is not None]
        t0 = min(starts)
        values = np.array([[(start - t0).total_seconds()] for start in starts])
        labels = [("Time", "s")]
        source = f"start_time of each file, seconds from {t0.isoformat()}"
    else:
        quantities = [q.strip() for q in series.split(",")]
        values = np.array([[_file_quantity(f, q) for q in quantities] for f in files])
        labels = [_TITLE_QUANTITIES[q][:2] for q in quantities]
        source = f"{series} written in each file's Title (else its name)"
    order = _file_order(values, files)
    values = values[order]
    if values.shape[1] == 1:
        outer = Positions([Dim(*labels[0], values[:, 0])], values=values, source=source)
        if len(set(values[:, 0])) < len(values):
            outer.notes.append(
                f"{labels[0][0]} repeats (e.g. a hysteresis loop): files kept in acquisition "
                "order, not sorted"
            )
            logger.info("%s", outer.notes[-1])
    else:
        outer = infer_grid(values, labels, source=source, snake=False, incomplete="error")
        if outer.dims[0].name == "Position":
            raise InputError(
                f"the files' {series} values do not form a grid "
                f"({', '.join(f.path.name for f in files)}); pick series with one quantity"
            )
    return _with_frames(outer, [files[i] for i in order]), order


def _file_order(values: np.ndarray, files: list[LimaFile]) -> list[int]:
    """Sorted by the values (slow first); acquisition order when a 1-D value repeats."""
    n = len(files)
    acquisition = sorted(
        range(n),
        key=lambda i: (
            start.timestamp() if (start := files[i].start_time) is not None else 0.0,
            natural_key(str(files[i].path)),
        ),
    )
    if values.shape[1] == 1 and len(set(values[:, 0])) < n:
        return acquisition
    rank = {i: r for r, i in enumerate(acquisition)}
    return sorted(range(n), key=lambda i: (*values[i], rank[i]))


def _with_frames(outer: Positions, files: list[LimaFile]) -> Positions:
    """The series dims, then ``Frame`` when files hold several frames."""
    per_file = max(f.n_frames for f in files)
    offsets = np.cumsum([0] + [f.n_frames for f in files])
    if per_file == 1:
        outer.order = None
        return outer
    order = np.full(outer.n_positions * per_file, -1, dtype=np.int64)
    for i, f in enumerate(files):
        order[i * per_file : i * per_file + f.n_frames] = offsets[i] + np.arange(f.n_frames)
    frame = Dim("Frame", "", np.arange(per_file, dtype=np.float64))
    values = None
    if outer.values is not None:
        values = np.column_stack(
            [np.repeat(outer.values, per_file, axis=0), np.tile(frame.values, len(files))]
        )
    pos = Positions(
        [*outer.dims, frame],
        values=values,
        source=outer.source + "; frames of each file",
        order=order,
        notes=outer.notes,
    )
    short = [f.path.name for f in files if f.n_frames < per_file]
    if short:
        note = (
            f"files hold different numbers of frames; the missing frames of {', '.join(short)} "
            "are marked false in valid_positions"
        )
        pos.notes.append(note)
        logger.warning("%s", note)
    return pos


def mark_unwritten(pos: Positions, files: list[LimaFile]) -> Positions:
    """Positions whose frame was never written (an aborted acquisition) become missing."""
    written = np.concatenate([f.written for f in files])
    order = pos.order if pos.order is not None else np.arange(pos.n_positions, dtype=np.int64)
    ok = order >= 0
    lost = ok & ~written[np.where(ok, order, 0)]
    if lost.any():
        pos.order = np.where(lost, -1, order)
        names = [f.path.name for f in files if not f.written.all()]
        note = (
            f"{int(lost.sum())} frames were never written (an aborted acquisition) in "
            f"{', '.join(names)}; they are marked false in valid_positions and stored as zeros"
        )
        pos.notes.append(note)
        logger.warning("%s", note)
    return pos


def frame_times(files: list[LimaFile]) -> tuple[str, np.ndarray, str] | None:
    """``(time origin, seconds of every frame from it, how)``; None when a file has no start."""
    starts = [f.start_time for f in files if f.start_time is not None]
    if len(starts) < len(files):
        return None
    t0 = min(starts)
    parts = []
    for f, moment in zip(files, starts, strict=True):
        start = (moment - t0).total_seconds()
        step = f.frame_period or 0.0
        parts.append(start + step * np.arange(f.n_frames))
    timed = all(f.frame_period for f in files)
    how = "start_time of each file" + (
        " + frame number × (exposure_time + latency_time) of its acquisition group"
        if timed
        else " (no frame timing recorded: every frame of a file gets its start time)"
    )
    return t0.isoformat(), np.concatenate(parts), how


_MONITOR_HINTS = re.compile(r"^(Intensity\d|I\d|HS32C|mon|monitor)", re.IGNORECASE)


def lima_monitor(
    files: list[LimaFile], monitor: str | None, scalers: list[Path]
) -> tuple[np.ndarray | None, str | None]:
    """Per-frame monitor values (all frames of the files in order) and where they come from."""
    counts = [f.n_frames for f in files]
    if scalers:
        if monitor is None:
            candidates: set[str] = set()
            with h5py.File(scalers[0], "r") as h5:
                h5.visititems(
                    lambda p, o: (
                        candidates.add(p.rsplit("/", 1)[-1])
                        if isinstance(o, h5py.Dataset)
                        and o.ndim == 1
                        and _MONITOR_HINTS.match(p.rsplit("/", 1)[-1])
                        else None
                    )
                )
            raise InputError(
                f"scalers given but no monitor: pass monitor=NAME (e.g. one of "
                f"{', '.join(sorted(candidates)) or 'the datasets of ' + str(scalers[0])})"
            )
        arrays, where = [], []
        for path in scalers:
            try:
                with h5py.File(path, "r") as h5:
                    found = find_datasets(h5, monitor)
                    if not found:
                        raise InputError(f"{path}: no 1-D dataset named {monitor!r}")
                    arrays.append(np.asarray(found[0][()], dtype=np.float64))
                    where.append(f"{path.name}:{found[0].name}")
            except OSError as err:
                raise FileFormatError(f"{path}: cannot open it as HDF5 ({err})") from err
        if len(arrays) == len(files):
            for path, arr, n in zip(scalers, arrays, counts, strict=True):
                if arr.size != n:
                    raise InputError(
                        f"{path}: {monitor} has {arr.size} values for {n} frames of its LIMA file"
                    )
            return np.concatenate(arrays), "scalers " + ", ".join(where)
        if len(arrays) == 1 and arrays[0].size == sum(counts):
            return arrays[0], "scalers " + where[0]
        raise InputError(
            f"{len(scalers)} scalers files with {[a.size for a in arrays]} {monitor} values for "
            f"{len(files)} LIMA files of {counts} frames: give one scalers file per LIMA file, "
            "or one for all frames"
        )
    if monitor is None:
        return None, None
    values = []
    for f in files:
        with h5py.File(f.path, "r") as h5:
            found = [d for d in find_datasets(h5, monitor) if d.size == f.n_frames]
            if found:
                values.append(np.asarray(found[0][()], dtype=np.float64))
                continue
        number = header_number(f.header, monitor, where=str(f.path))
        if number is None:
            keys = ", ".join(sorted(f.header)) or "none"
            raise InputError(
                f"{f.path}: no monitor {monitor!r}: no dataset of that name with one value per "
                f"frame, no such header key (its keys: {keys}); give the scalers files with "
                "scalers=PATHS"
            )
        values.append(np.full(f.n_frames, number))
    return np.concatenate(values), f"{monitor!r} in each LIMA file (dataset, else header key)"


def reorder_frames(per_frame: np.ndarray, counts: list[int], order: list[int]) -> np.ndarray:
    """Per-frame values of files in one order → the same files in ``order``."""
    parts = np.split(per_frame, np.cumsum(counts)[:-1])
    return np.concatenate([parts[i] for i in order])


def scaler_files(scalers: Any) -> list[Path]:
    """The ID02 scalers files named by ``scalers`` (paths, globs or a folder), or none."""
    if scalers is None:
        return []
    return expand_sources(scalers, extensions=(".h5", ".hdf5", ".nxs"))
