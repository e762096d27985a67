"""What a live file is laid out from, known before its first frame is written.

A :class:`LiveLayout` holds the scan's declared dims (or none: an unbounded series), the first
frame's shape and dtype, the geometry, mask, orientation, dummy and compression, and the
attributes to record. It is built with the offline translators' own pieces
(:func:`images_layout`: the images translator's geometry, mask and attributes;
:func:`spectra_layout`: the ``[Channel]`` dims of the SPEC translator's MCA spectra), so that the
live file's ``Raw_Data`` and ``Position_*``/``Spectroscopic_*`` datasets come out identical to an
offline translation of the same finished frames.

A layout may copy the chunks of an HDF5 source as they are stored (:meth:`LiveLayout.take_chunks`:
``raw_filters``, the source's filter pipeline, as ``translate --link`` copies them): ``Raw_Data``
then gets exactly that pipeline, and ``compression`` is not used.

:meth:`LiveLayout.record` is its identity: the live file stores it, and a watch restarted on the
file with another layout is refused, naming what differs (:meth:`LiveLayout.differences`).

Examples
--------
>>> import numpy as np
>>> layout = images_layout(np.zeros((4, 5), np.int32), dims=[("Y", 2), ("X", 3)])
>>> layout.n_declared, [d.name for d in layout.spec_dims], layout.frame_shape
(6, ['Row', 'Col'], (4, 5))
>>> layout.differences(images_layout(np.zeros((4, 5), np.int32)).record())
['dims: declared Y=2, X=3 here, unbounded in the file']
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from pyscatter.errors import InputError
from pyscatter.io.raw import Filter, MeasurementSpec, _json_default
from pyscatter.io.usid import Dim, compression_options
from pyscatter.translators.common import check_flip, image_dims
from pyscatter.translators.positions import Positions, grid_positions, index_positions

__all__ = ["LiveLayout", "images_layout", "spectra_layout"]

#: The one position dim of an unbounded series (as the offline translator without a grid).
SERIES_DIM = "Image"


@dataclass
class LiveLayout:
    """Everything of a live file but its frames.

    Attributes
    ----------
    dims : list of (name, size), or None
        The declared position dims, slow to fast (a name may carry a unit: ``"Y[mm]"``); None
        for an unbounded series (one dim ``Image`` of index values, growing with the frames).
    frame_shape : tuple of int
        ``(rows, cols)`` of an image, ``(channels,)`` of a spectrum.
    dtype : numpy dtype
        Of ``Raw_Data`` (the first frame's); every frame must be of the same kind and fit it.
    spec_dims : list of Dim
        The spectroscopic dims (``Row``, ``Col`` or ``Channel``).
    geometry : dict, optional
        pyFAI config recorded as the measurement's ``geometry`` attribute.
    mask : ndarray, optional
        (rows, cols) uint8, nonzero = masked, in the stored orientation.
    flip : {None, "ud", "lr"}
        Applied by the live file to every arriving frame (sources deliver frames as read).
    dummy : float, optional
        Invalid-pixel value (recorded in ``attrs``; part of the identity).
    compression : {"bslz4", "gzip", "none"}
        Of ``Raw_Data`` (spectra get gzip, as offline).
    monitor : str, optional
        The per-frame value (``Arrival.values`` key) stored as the ``Monitor`` dataset.
    attrs : dict
        ``Measurement_000`` attributes (provenance, options …); not part of the identity.
    quantity, units : str
        Of the raw values.
    raw_filters : list of (filter id, flags, values), optional
        The filter pipeline of a source whose stored chunks are copied as they are (see
        :meth:`take_chunks`); ``Raw_Data`` gets exactly it and ``compression`` is not used.
    """

    dims: list[tuple[str, int]] | None
    frame_shape: tuple[int, ...]
    dtype: np.dtype
    spec_dims: list[Dim]
    geometry: dict[str, Any] | None = None
    mask: np.ndarray | None = None
    flip: str | None = None
    dummy: float | None = None
    compression: str | None = "bslz4"
    monitor: str | None = None
    attrs: dict[str, Any] = field(default_factory=dict)
    quantity: str = "Counts"
    units: str = "counts"
    raw_filters: list[Filter] | None = None

    def __post_init__(self) -> None:
        self.dtype = np.dtype(self.dtype)
        self.frame_shape = tuple(int(s) for s in self.frame_shape)
        self.flip = check_flip(self.flip)
        compression_options(self.compression)  # refuses unknown names
        if self.dtype.kind not in "uif":
            raise InputError(f"live frames must be integers or floats; got dtype {self.dtype}")
        if tuple(len(d) for d in self.spec_dims) != self.frame_shape:
            raise InputError(
                f"spectroscopic dims {[(d.name, len(d)) for d in self.spec_dims]} do not match "
                f"the frame shape {self.frame_shape}"
            )
        if self.dims is not None:
            self.dims = [(str(name), int(size)) for name, size in self.dims]
            if not self.dims or any(size < 1 for _, size in self.dims):
                raise InputError(f"declared dims {self.dims}: need at least one, each of size ≥ 1")
        if self.mask is not None:
            self.mask = (np.asarray(self.mask) != 0).astype(np.uint8)
        if self.raw_filters is not None:
            self.raw_filters = _filters(self.raw_filters)

    def take_chunks(self, chunk: Any) -> bool:
        """Copy the stored chunks of the source of ``chunk`` as they are; whether it will.

        ``chunk`` is an :attr:`Arrival.chunk <pyscatter.live.sources.Arrival.chunk>` (None: no
        chunks offered). They are taken when they are frames of this layout's shape and dtype
        and the frames are not flipped (a copied chunk cannot be): ``raw_filters`` becomes the
        source's pipeline and the measurement records ``link = "chunks"`` (as
        ``translate --link`` does). Call it before the live file is created.
        """
        if chunk is None or self.flip is not None or not chunk.filters:
            return False
        if tuple(chunk.shape) != self.frame_shape or np.dtype(chunk.dtype) != self.dtype:
            return False
        self.raw_filters = _filters(chunk.filters)
        self.attrs["link"] = "chunks"
        return True

    @property
    def bounded(self) -> bool:
        """A declared scan shape (fixed from the start), not an unbounded series."""
        return self.dims is not None

    @property
    def n_declared(self) -> int | None:
        """Positions of the declared scan, None for an unbounded series."""
        return None if self.dims is None else math.prod(size for _, size in self.dims)

    @property
    def n_spec(self) -> int:
        return math.prod(self.frame_shape)

    def positions(self, n: int | None = None) -> Positions:
        """The position dims: the declared grid (as ``grid=``), or ``Image`` over ``n`` frames."""
        if self.dims is None:
            return index_positions(max(int(n or 1), 1), SERIES_DIM)
        total = math.prod(size for _, size in self.dims)
        return grid_positions({name: size for name, size in self.dims}, total)

    def spec(self, n: int | None = None) -> MeasurementSpec:
        """The :class:`~pyscatter.io.raw.MeasurementSpec` of the file (``n`` positions if unbounded)."""
        return MeasurementSpec(
            position_dims=self.positions(n).dims,
            spec_dims=list(self.spec_dims),
            dtype=self.dtype,
            quantity=self.quantity,
            units=self.units,
            attrs=dict(self.attrs),
            geometry=self.geometry,
            mask=self.mask,
            raw_filters=None if self.raw_filters is None else list(self.raw_filters),
        )

    def record(self) -> dict[str, Any]:
        """The identity of the layout, JSON-able: what a restarted watch must agree with."""
        spec_axes = hashlib.sha256()
        for d in self.spec_dims:
            spec_axes.update(d.values.tobytes())
        mask = None if self.mask is None else hashlib.sha256(self.mask.tobytes()).hexdigest()
        geometry = json.loads(json.dumps(self.geometry, sort_keys=True, default=_json_default))
        out = {
            "dims": None if self.dims is None else [list(d) for d in self.dims],
            "frame_shape": list(self.frame_shape),
            "dtype": self.dtype.str,
            "spec_dims": [[d.name, d.units, len(d)] for d in self.spec_dims],
            "spec_axes": spec_axes.hexdigest(),
            "geometry": geometry,
            "mask": mask,
            "flip": self.flip,
            "dummy": self.dummy,
            "compression": self.compression,
            "monitor": self.monitor,
            "quantity": [self.quantity, self.units],
        }
        if self.raw_filters is not None:  # absent otherwise: records of earlier files unchanged
            out["raw_filters"] = [[c, f, list(v)] for c, f, v in self.raw_filters]
        return out

    def differences(self, stored: Mapping[str, Any]) -> list[str]:
        """What differs between this layout and a stored :meth:`record`, one phrase each."""
        mine = self.record()
        out = []
        extra = [k for k in ("raw_filters",) if k in stored and k not in mine]
        for key in [*mine, *extra]:
            value = mine.get(key)
            theirs = stored.get(key)
            if value != theirs:
                out.append(f"{key}: {_show(key, value)} here, {_show(key, theirs)} in the file")
        return out


def _filters(filters: Any) -> list[Filter]:
    """A filter pipeline as ``[(id, flags, (values …)), …]`` (from tuples or a JSON record)."""
    return [(int(c), int(f), tuple(int(v) for v in values)) for c, f, values in filters]


def _show(key: str, value: Any) -> str:
    if key == "raw_filters":
        return "no copied chunks" if value is None else f"copied chunks of filters {value}"
    if key == "dims":
        return (
            "unbounded" if value is None else "declared " + ", ".join(f"{n}={s}" for n, s in value)
        )
    if key in ("mask", "spec_axes") and isinstance(value, str):
        return f"sha256 {value[:12]}…"
    if key == "geometry" and isinstance(value, dict):
        return (
            "a geometry ("
            + ", ".join(f"{k}={value[k]}" for k in ("dist", "poni1", "poni2") if k in value)
            + ")"
        )
    return repr(value)


# --------------------------------------------------------------------------- builders


def images_layout(
    first: np.ndarray,
    header: Mapping[str, Any] | None = None,
    *,
    dims: Sequence[tuple[str, int]] | None = None,
    poni: str | os.PathLike | Mapping[str, Any] | None = None,
    header_geometry: bool = True,
    mask: str | os.PathLike | np.ndarray | None = None,
    flip: str | None = None,
    dummy: float | None = None,
    monitor: str | None = None,
    compression: str | None = "bslz4",
    first_file: str | os.PathLike | None = None,
    source: str = "",
    translator: Any = None,
) -> LiveLayout:
    """The layout of detector images, as :class:`~pyscatter.translators.images.ImageStackTranslator`
    lays out the same frames (``grid=dims``, ``poni``, ``mask``, ``flip``, ``dummy``).

    Parameters
    ----------
    first : ndarray
        The first frame as read (before ``flip``): its shape and dtype, and its ESRF dummy pixels.
    header : mapping, optional
        Its header (geometry from ESRF keys without ``poni``, dummy, ``esrf_header``).
    dims : list of (name, size), optional
        The declared scan, slow to fast; None: an unbounded series.
    poni, header_geometry, mask, flip, dummy, monitor, compression
        As the images translator takes them.
    first_file : path, optional
        The first frame's file (named in messages and recorded, with its checksum).
    source : str
        What is watched (``LiveSource.describe()``), recorded as ``live_source``.
    translator : ImageStackTranslator, optional
        A subclass whose header hooks apply (SAXSLAB …); default the images translator.

    Raises
    ------
    InputError
        Bad options, a mask or PONI detector of another shape, an incomplete ESRF geometry.
    """
    from pyscatter.translators import images as _images

    translator = translator or _images.ImageStackTranslator()
    first = np.asarray(first)
    if first.ndim != 2:
        raise InputError(f"{first_file or 'first frame'}: an image must be 2-D; got {first.shape}")
    flip = check_flip(flip)
    files = [Path(first_file)] if first_file is not None and Path(first_file).is_file() else []
    stack = _images._Stack(
        1, first.shape, first.dtype, files=files, first=first, first_header=dict(header or {})
    )
    grid = None if dims is None else {name: int(size) for name, size in dims}
    _images._check_options(None, None, grid, dummy, "pad", False, compression)
    # one frame: its geometry (a later frame of another geometry is not followed, see the docs)
    geometry, geometry_source, _ = translator._geometry(stack, poni, header_geometry, flip)
    mask_arr, dummies = _images._mask(stack, mask, flip, dummy)
    options = _images._options_record(
        None, None, grid, poni, mask, flip, dummy, compression, None,
        snake=False, incomplete="pad", monitor=monitor, header_geometry=header_geometry,
    )  # fmt: skip
    layout = LiveLayout(
        dims=None if dims is None else list(dims),
        frame_shape=first.shape,
        dtype=first.dtype,
        spec_dims=image_dims(first.shape),
        geometry=geometry,
        mask=mask_arr,
        flip=flip,
        dummy=float(dummy) if dummy is not None else (dummies[0] if dummies else None),
        compression=compression,
        monitor=monitor,
    )
    attrs = translator._attributes(
        stack, layout.positions(), flip, options, geometry_source, dummy, dummies, poni
    )
    attrs.update(_live_attrs(source, attrs))
    if monitor is not None:
        attrs["monitor"] = monitor
    layout.attrs = attrs
    return layout


def spectra_layout(
    first: np.ndarray,
    *,
    dims: Sequence[tuple[str, int]] | None = None,
    spec_dims: Sequence[Dim] | None = None,
    monitor: str | None = None,
    compression: str | None = "bslz4",
    attrs: Mapping[str, Any] | None = None,
    source: str = "",
) -> LiveLayout:
    """The layout of 1-D spectra (MCA): spectroscopic dim ``Channel``, as the SPEC translator.

    ``spec_dims`` default: ``Channel`` of channel numbers 0 … n-1 (unit ``channel``), the
    SPEC translator's dims of an uncalibrated MCA whose first channel is 0; give
    ``[Dim("Channel", "keV", energies)]`` for a calibrated one. Stored with gzip (as offline).
    """
    from pyscatter.translators.common import versions

    first = np.asarray(first)
    if first.ndim != 1:
        raise InputError(f"a spectrum must be 1-D; got a frame of shape {first.shape}")
    if spec_dims is None:
        spec_dims = [Dim("Channel", "channel", np.arange(first.size, dtype=np.float64))]
    record = {"translator": "live", "versions": versions(), "kind": "mca", **dict(attrs or {})}
    record.update(_live_attrs(source, record))
    if monitor is not None:
        record["monitor"] = monitor
    return LiveLayout(
        dims=None if dims is None else list(dims),
        frame_shape=first.shape,
        dtype=first.dtype,
        spec_dims=list(spec_dims),
        compression=compression,
        monitor=monitor,
        attrs=record,
    )


def _live_attrs(source: str, attrs: Mapping[str, Any]) -> dict[str, Any]:
    """What differs from an offline translation's attributes: the frames came live."""
    out: dict[str, Any] = {
        "live_source": source,
        "sources_note": "written live, frame by frame, by pyscatter watch; `sources` holds the "
        "first frame's file only",
    }
    if "sources" not in attrs:
        out["sources"] = []
    return out
