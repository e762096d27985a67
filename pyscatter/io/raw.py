"""Writing a measurement: the raw main dataset every translator produces.

::

    Measurement_000/            attrs: translator, version, sources, geometry, orientation, …
      Channel_000/
        Raw_Data                (n_positions, n_spec), one frame per chunk, compressed
        Position_Indices/Values (n_positions, n_pos_dims), real motor values, float64
        Spectroscopic_Indices/Values  (Row, Col) for images, (Channel,) for spectra
        Mask                    (rows, cols) uint8, nonzero = masked (when given)

The file is written under a temporary name and renamed into place only when complete, so an
interrupted translation never leaves a file that looks complete.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from pyscatter.errors import ExistingResultsError, InputError
from pyscatter.io.usid import Dim, compression_options, create_main, write_ancillary

__all__ = ["MeasurementSpec", "write_measurement"]


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

    @property
    def n_positions(self) -> int:
        return int(np.prod([len(d) for d in self.position_dims]))

    @property
    def n_spec(self) -> int:
        return int(np.prod([len(d) for d in self.spec_dims]))


def _attr_value(value: Any) -> Any:
    if isinstance(value, (str, int, float, bool, np.number)):
        return value
    return json.dumps(value, default=str)


def write_measurement(
    path: str | os.PathLike,
    spec: MeasurementSpec,
    frames: Iterable[np.ndarray],
    *,
    compression: str | None = "bslz4",
    overwrite: bool = False,
    progress: bool = False,
) -> Path:
    """Write a new USID file from ``frames`` (one array per position, in position order).

    Raises
    ------
    ExistingResultsError
        ``path`` exists and ``overwrite`` is false.
    InputError
        A frame of the wrong shape or too few/many frames.
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise ExistingResultsError(
            f"{path} exists; pass overwrite=True (--overwrite) to replace it"
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.partial")
    n_pos, n_spec = spec.n_positions, spec.n_spec
    frame_shape = tuple(len(d) for d in spec.spec_dims)
    digest = hashlib.sha256()
    try:
        with h5py.File(tmp, "w") as h5:
            meas = h5.create_group("Measurement_000")
            for key, value in spec.attrs.items():
                meas.attrs[key] = _attr_value(value)
            meas.attrs["created"] = _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")
            if spec.geometry is not None:
                meas.attrs["geometry"] = json.dumps(spec.geometry, sort_keys=True)
            chan = meas.create_group("Channel_000")
            pos = write_ancillary(
                chan,
                "Position_",
                spec.position_dims,
                spectroscopic=False,
                values=spec.position_values,
            )
            sp = write_ancillary(chan, "Spectroscopic_", spec.spec_dims, spectroscopic=True)
            raw = create_main(
                chan,
                "Raw_Data",
                shape=(n_pos, n_spec),
                dtype=spec.dtype,
                quantity=spec.quantity,
                units=spec.units,
                position=pos,
                spectroscopic=sp,
                chunks=(1, n_spec),
                compression=compression,
            )
            count = _write_frames(raw, frames, frame_shape, digest, progress, path)
            if count != n_pos:
                raise InputError(
                    f"{path}: {count} frames for {n_pos} positions "
                    f"({' × '.join(f'{d.name}={len(d)}' for d in spec.position_dims)})"
                )
            raw.attrs["sha256"] = digest.hexdigest()
            raw.attrs["compression"] = compression or "none"
            if spec.mask is not None:
                mask = np.asarray(spec.mask)
                if mask.shape != frame_shape:
                    raise InputError(f"mask has shape {mask.shape}; the frames are {frame_shape}")
                chan.create_dataset(
                    "Mask", data=(mask != 0).astype(np.uint8), **compression_options("gzip")
                )
            for name, arr in spec.extra.items():
                chan.create_dataset(name, data=arr)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def _write_frames(raw, frames, frame_shape, digest, progress, path) -> int:
    from tqdm.auto import tqdm

    n_pos = raw.shape[0]
    count = 0
    for frame in tqdm(frames, total=n_pos, unit="frame", disable=not progress, desc="translate"):
        frame = np.asarray(frame)
        if frame.shape != frame_shape:
            raise InputError(
                f"{path}: frame {count} has shape {frame.shape}; expected {frame_shape} "
                "like the first frame"
            )
        if count >= n_pos:
            raise InputError(f"{path}: more frames than the {n_pos} positions")
        row = np.ascontiguousarray(frame, dtype=raw.dtype).reshape(1, -1)
        raw.write_direct(row, dest_sel=np.s_[count : count + 1])
        digest.update(row.tobytes())
        count += 1
    return count


def nominal_dims(names: Sequence[str], units: Sequence[str], sizes: Sequence[int]) -> list[Dim]:
    """Index-valued dims for a regular grid (``--grid Y=6,X=8``)."""
    return [
        Dim(n, u, np.arange(s, dtype=np.float64))
        for n, u, s in zip(names, units, sizes, strict=True)
    ]
