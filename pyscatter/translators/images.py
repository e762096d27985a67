"""Stacks of detector images, one per scan position: EDF, TIFF, CBF … anything fabio reads.

The translator streams the images one at a time into :func:`pyscatter.io.raw.write_measurement`
(never the whole stack in memory) and records, on ``Measurement_000``, where everything came from:
the source files with their sizes and sha256, the positions source, the geometry, the image
orientation and the options used.

A format of one image per position subclasses :class:`ImageStackTranslator` and overrides its
hooks instead of wrapping it, so it keeps every option (positions, snake, monitor, resume …):
:meth:`~ImageStackTranslator.file_header` (what a file's header is),
:meth:`~ImageStackTranslator.header_geometry` and :meth:`~ImageStackTranslator.check_headers`
(the geometry of the first header, the same in every file),
:meth:`~ImageStackTranslator.header_motors` (``motors=``) and
:meth:`~ImageStackTranslator.extra_attributes`. :class:`pyscatter.translators.saxslab.SaxslabTranslator`
is one.

Examples
--------
>>> import numpy as np
>>> from pathlib import Path
>>> from pyscatter.translators.images import ImageStackTranslator
>>> import tempfile, h5py
>>> frames = np.arange(2 * 3 * 4 * 5, dtype=np.int32).reshape(2, 3, 4, 5)  # Y, X, rows, cols
>>> path = ImageStackTranslator().translate(
...     None, Path(tempfile.mkdtemp()) / "scan.h5", frames=frames, grid={"Y": 2, "X": 3})
>>> from pyscatter.io.usid import read_nd, main_datasets
>>> with h5py.File(path) as h5:
...     data, dims = read_nd(main_datasets(h5)[0])
>>> bool((data == frames).all()), [d.name for d in dims]
(True, ['Y', 'X', 'Row', 'Col'])
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from pyscatter.errors import InputError
from pyscatter.io.geometry_series import (
    VARIES_ATTR,
    apply_geometry_from,
    parse_geometry_from,
    series_extras,
)
from pyscatter.io.raw import MeasurementSpec, write_measurement
from pyscatter.io.usid import Dim, compression_options
from pyscatter.translators.base import Translator, check_output, expand_sources
from pyscatter.translators.common import (
    FLIPS,
    check_flip,
    check_scan_options,
    describe,
    file_record,
    flip_frame,
    image_dims,
    load_mask,
    orientation,
    read_frame,
    read_header,
    read_image,
    versions,
)
from pyscatter.translators.esrf import dummy_mask, esrf_dummy, header_monitor
from pyscatter.translators.geometry_from import images_lookup
from pyscatter.translators.geometry_readers import (
    check_same_geometry,
    esrf_geometries,
    esrf_header_geometry,
    geometry_record,
    poni_geometry,
)
from pyscatter.translators.grid_inference import infer_grid
from pyscatter.translators.positions import (
    Positions,
    grid_positions,
    index_positions,
    motor_positions,
    parse_grid,
    read_positions_csv,
)

__all__ = ["FLIPS", "ImageStackTranslator", "read_header", "read_image"]

logger = logging.getLogger(__name__)

#: First bytes of each format family, by file name ending.
_MAGIC: dict[str, tuple[bytes, ...]] = {
    ".edf": (b"{",),
    ".tif": (b"II*\x00", b"MM\x00*"),
    ".tiff": (b"II*\x00", b"MM\x00*"),
    ".mccd": (b"II*\x00", b"MM\x00*"),
    ".cbf": (b"###CBF",),
    ".img": (b"{", b"RAXIS", b"OD SAPPHIRE"),
}


@dataclass
class _Stack:
    """What the translator knows about the frames before writing any."""

    n: int
    frame_shape: tuple[int, int]
    dtype: np.dtype
    files: list[Path] = field(default_factory=list)
    first: np.ndarray | None = None
    first_header: dict = field(default_factory=dict)
    array: np.ndarray | None = None
    #: the header of one file as the translator reads it (:meth:`ImageStackTranslator.file_header`)
    header_of: Callable[[Path], dict] = read_header
    _headers: list[dict] | None = None

    def headers(self) -> list[dict]:
        """The header of every file, read once (geometry check, motors and monitor share it)."""
        if self._headers is None:
            self._headers = [self.first_header] + [self.header_of(f) for f in self.files[1:]]
        return self._headers

    @property
    def scan_shape(self) -> tuple[int, ...]:
        if self.array is not None:
            return tuple(self.array.shape[:-2])
        return (self.n,)

    def what(self) -> str:
        return "frames" if self.array is not None else "images"


class ImageStackTranslator(Translator):
    """One detector image per scan position, read by fabio (EDF, TIFF, CBF, ADSC/SMV, MarCCD …).

    See :meth:`translate`.
    """

    name: ClassVar[str] = "images"
    extensions: ClassVar[tuple[str, ...]] = (".edf", ".tif", ".tiff", ".cbf", ".img", ".mccd")
    description: ClassVar[str] = "one detector image per scan position (EDF, TIFF, CBF … via fabio)"

    def can_read(self, path: str | os.PathLike) -> bool:
        """File name ending in :attr:`extensions` and the first bytes of that format."""
        try:
            path = Path(path)
            ext = next((e for e in _MAGIC if path.name.lower().endswith(e)), None)
            if ext is None or not path.is_file():
                return False
            with open(path, "rb") as handle:
                head = handle.read(16).lstrip()
            return head.startswith(_MAGIC[ext])
        except Exception:  # noqa: BLE001 - can_read never raises
            return False

    # over 80 lines: an 86-line docstring and one keyword per option; the body is ~60 lines
    def translate(  # type: ignore[override]  # keyword options of this format only
        self,
        sources: Any,
        h5_path: str | os.PathLike,
        *,
        positions: str | os.PathLike | None = None,
        motors: Sequence[str] | str | None = None,
        grid: Mapping[str, int] | str | None = None,
        snake: bool | str = "auto",
        incomplete: str = "pad",
        poni: str | os.PathLike | Mapping[str, Any] | None = None,
        header_geometry: bool = True,
        mask: str | os.PathLike | np.ndarray | None = None,
        flip: str | None = None,
        dummy: float | None = None,
        monitor: str | None = None,
        overwrite: bool = False,
        compression: str | None = "bslz4",
        progress: bool = False,
        resume: bool = True,
        frames: np.ndarray | None = None,
        geometry_from: Mapping[str, Any] | str | None = None,
    ) -> Path:
        """Write a stack of images (files, or an in-memory array) as one USID file.

        Parameters
        ----------
        sources : str, path, list of them, or None
            Image files, glob patterns (``"scan/*.tif"``) or a folder (its files ending in
            :attr:`extensions`), alone or in a list. They are always used in **natural order of
            their paths** (``x_2`` before ``x_10``), whatever order they are given in. Files given
            as ``mask``, ``positions`` or ``poni`` are left out. None with ``frames``.
        h5_path : str or path
            The USID HDF5 file to write.
        positions : path, optional
            A CSV file: a header naming the position dims slow to fast with units
            (``Y[um],X[um]``), then one row of measured values per image, in the order above.
            The nested grid they form is inferred (jitter tolerated, snake scans reordered,
            an aborted last row handled by ``incomplete``; see
            :mod:`pyscatter.translators.positions`): nominal values become the dims, read-backs
            the position values. Not a grid: one dim ``Position`` plus the columns kept as
            ``measured_<name>`` datasets, with a logged warning.
        motors : list of str or comma-separated str, optional
            Motor names, slow to fast (optional unit: ``"diffry[deg]"``), read from the SPEC-era
            ``motor_mne``/``motor_pos`` keys of each image header; grid inferred as above.
        grid : dict or str, optional
            ``{"Y": 6, "X": 8}`` or ``"Y=6,X=8"``: index-valued dims, slow to fast. With a 4-D+
            ``frames`` array, the names of its leading dims (sizes must match).
            At most one of ``positions``, ``motors``, ``grid``. Default: one dim ``Image`` of
            index values (``Dim0, Dim1 …`` for the leading dims of a 4-D+ array).
        snake : bool or "auto"
            The fastest dimension runs backwards on every other row (serpentine scan); the frames
            are put back in order and ``snake = true`` is recorded. ``"auto"`` detects it from
            measured positions (``positions``, ``motors``); with ``grid`` it means False.
        incomplete : {"pad", "drop", "error"}
            An aborted scan (fewer images than the grid, less than one block of the slowest dim
            missing): keep the grid full, with the missing positions false in a
            ``valid_positions`` dataset and their frames zeros (``"pad"``); drop the incomplete
            block (``"drop"``); or refuse (``"error"``). A warning says what was done.
        poni : path or dict, optional
            pyFAI geometry (PONI file or config), stored as the ``geometry`` attribute. A detector
            with a shape must match the frames; one without gets the frames' shape. Overrides the
            geometry of ESRF image headers.
        header_geometry : bool
            Without ``poni``, read the geometry from ESRF SAXS header keys (``SampleDistance``,
            ``WaveLength``, ``Center_1/2``, ``PSize_1/2``) when the first image has them
            (:func:`pyscatter.translators.esrf.esrf_geometry`); a header with only some of them
            is an error naming the missing ones. False: no geometry from headers.
        mask : path or ndarray, optional
            (rows, cols), nonzero = masked, in the orientation of the source images (an image
            file is read with fabio); flipped like the frames.
        flip : {None, "ud", "lr"}
            Store frames and mask flipped up-down / left-right relative to fabio's array, so
            that they are in the orientation the geometry refers to (Dioptas PONI files: "ud";
            BioXTAS RAW: "lr"). Recorded as the ``flip`` and ``orientation`` attributes.
        dummy : float, optional
            Value of invalid pixels, recorded as the ``dummy`` attribute. Default: the ESRF
            ``Dummy``/``DDummy`` of the first image header when nonzero; then the pixels of the
            first image holding it are added to the ``Mask``.
        monitor : str, optional
            A SPEC counter (``counter_mne``/``counter_pos``) or numeric header key read from
            every image into a ``Monitor`` dataset (one value per position; NaN where none).
        overwrite : bool
            Replace an existing ``h5_path``; otherwise refuse.
        compression : {"bslz4", "gzip", "none"}
            Of the raw data (one frame per chunk).
        progress : bool
            Show a progress bar.
        resume : bool
            Continue an interrupted translation (same sources and options) where it stopped.
        frames : ndarray, optional
            Instead of files: (n, rows, cols) or (*scan_shape, rows, cols), written in C order.
        geometry_from : dict or str, optional
            Geometry parameters of every image from a column of ``positions`` or a header
            motor: ``{"energy": "Energy"}`` or ``"energy=Energy:keV,distance=Det:mm"``
            (:func:`~pyscatter.io.geometry_series.parse_geometry_from`), over the geometry of
            ``poni`` or the headers (required); recorded per position when it varies.

        Returns
        -------
        Path
            ``h5_path``; the file appears only once complete.

        Raises
        ------
        ExistingResultsError
            ``h5_path`` exists and ``overwrite`` is false.
        InputError
            Bad options, counts that do not match (positions rows, grid, frames), frames of
            different shapes or dtype kinds, a mask or PONI detector of another shape, an ESRF
            header with an incomplete geometry.
        FileFormatError
            A missing, truncated or corrupt image or positions file (named in the message).
        """
        h5_path = check_output(h5_path, overwrite)
        flip = check_flip(flip)
        _check_options(positions, motors, grid, dummy, incomplete, snake, compression)
        stack = self._stack(sources, frames, (positions, poni, mask))
        pos = self._positions(stack, positions, motors, grid, snake, incomplete)
        geometry, geometry_source, series = self._geometry(stack, poni, header_geometry, flip)
        if geometry_from is not None:  # a geometry parameter per image from a column or motor
            lookup = images_lookup(positions, stack.headers if stack.files else None, stack.files)
            geometry, series, geometry_source = apply_geometry_from(
                geometry, series, parse_geometry_from(geometry_from), lookup, stack.n,
                base_source=str(geometry_source),
            )  # fmt: skip
        mask_arr, dummies = _mask(stack, mask, flip, dummy)
        monitor_values = self._monitor(stack, monitor)
        options = _options_record(
            positions,
            motors,
            grid,
            poni,
            mask,
            flip,
            dummy,
            compression,
            frames,
            snake=snake,
            incomplete=incomplete,
            monitor=monitor,
            header_geometry=header_geometry,
        )
        if geometry_from is not None:  # recorded only when given: earlier records unchanged
            options["geometry_from"] = describe(geometry_from)
        # checksums last (in _attributes): every cheap check above has passed
        attrs = self._attributes(stack, pos, flip, options, geometry_source, dummy, dummies, poni)
        pos.with_valid_dataset()
        extra = dict(pos.extra)
        extra_attrs = {k: {"units": u} for k, u in pos.extra_units.items()}
        if monitor_values is not None:
            extra["Monitor"] = pos.arrange(monitor_values)
            extra_attrs["Monitor"] = {
                "units": "counts",
                "source": f"header {monitor!r} of each image (counter_mne/counter_pos or key)",
            }
            attrs["monitor"] = monitor
        if series is not None:  # the geometry of each position (an energy or distance series)
            per_frame, per_frame_attrs, varies = series
            extra.update({k: pos.arrange(v) for k, v in per_frame.items()})
            extra_attrs.update(per_frame_attrs)
            attrs[VARIES_ATTR] = varies
        spec = MeasurementSpec(
            position_dims=pos.dims,
            spec_dims=image_dims(stack.frame_shape),
            dtype=stack.dtype,
            position_values=pos.values,
            attrs=attrs,
            geometry=geometry,
            mask=mask_arr,
            extra=extra,
            extra_attrs=extra_attrs,
        )
        logger.info(
            "translating %d %s of %s %s into %s",
            stack.n,
            stack.what(),
            stack.frame_shape,
            stack.dtype,
            h5_path,
        )
        return write_measurement(
            h5_path,
            spec,
            _Frames(stack, flip, pos),
            compression=compression,
            overwrite=overwrite,
            progress=progress,
            resume=resume,
        )

    # ------------------------------------------------------------------ hooks for subclasses

    def file_header(self, path: Path, header: dict) -> dict:
        """The header of one source image as this format reads it.

        Parameters
        ----------
        path : Path
            The image file.
        header : dict
            What fabio read from it.

        Returns
        -------
        dict
            ``header`` here; a subclass adds what fabio does not read (the SAXSLAB XML …).
            Geometry, motors and monitor are read from what this returns.
        """
        return header

    def header_geometry(
        self, header: Mapping[str, Any], frame_shape: tuple[int, int], flip: str | None, where: str
    ) -> tuple[dict, str] | None:
        """The geometry of the first image's header and where it comes from, or None.

        Called without ``poni`` (and with ``header_geometry=True``). Here: the ESRF SAXS keys
        (:func:`~pyscatter.translators.geometry_readers.esrf_header_geometry`), which refuse
        ``flip``. ``where`` is the first image's path.
        """
        return esrf_header_geometry(header, frame_shape, where=where, flip=flip)

    def check_headers(self, headers: Sequence[Mapping[str, Any]], files: Sequence[Path]) -> None:
        """Refuse a stack whose headers disagree on the geometry read from the first one.

        Called when the geometry comes from :meth:`header_geometry` and
        :meth:`frame_geometries` gives None. Here: the ESRF keys
        (:func:`~pyscatter.translators.geometry_readers.check_same_geometry`).
        """
        check_same_geometry(headers, files)

    def frame_geometries(
        self, headers: Sequence[Mapping[str, Any]], files: Sequence[Path], frame_shape: tuple
    ) -> list[dict[str, Any]] | None:
        """The geometry of every image, for a geometry that changes with the position, or None.

        Called when the geometry comes from :meth:`header_geometry`. None: one geometry, which
        :meth:`check_headers` checks. Here: the ESRF keys of every header
        (:func:`~pyscatter.translators.geometry_readers.esrf_geometries`); an energy or
        distance series is recorded per position (:mod:`pyscatter.io.geometry_series`).
        """
        return esrf_geometries(headers, files, frame_shape)

    def header_motors(
        self, headers: Sequence[Mapping[str, Any]], motors: Any, files: Sequence[Path]
    ) -> tuple[list[tuple[str, str]], np.ndarray, str]:
        """Motor values of every image: ``(labels, values, where they come from)``.

        Here: the SPEC-era ``motor_mne``/``motor_pos`` keys
        (:func:`~pyscatter.translators.positions.motor_positions`).
        """
        labels, values = motor_positions(headers, motors, files)
        return labels, values, "motor_mne/motor_pos headers"

    def extra_attributes(self, first: Path | None, header: Mapping[str, Any]) -> dict[str, Any]:
        """More ``Measurement_000`` attributes from the first image (its path and header).

        Here: the ESRF geometry keys of the header, as ``esrf_header``, when it has any.
        """
        esrf = geometry_record(header) if header else {}
        return {"esrf_header": esrf} if esrf else {}

    # ------------------------------------------------------------------ steps

    def _stack(self, sources: Any, frames: Any, not_images: Sequence[Any]) -> _Stack:
        """The images (files, minus those given as positions, poni or mask) or the array."""
        if frames is not None:
            if sources is not None:
                raise InputError("give either sources (image files) or frames (an array), not both")
            return _array_stack(frames)
        exclude = {os.path.realpath(p) for p in not_images if isinstance(p, (str, os.PathLike))}
        files = [
            f
            for f in expand_sources(sources, extensions=self.extensions)
            if os.path.realpath(f) not in exclude
        ]
        if not files:
            raise InputError(f"no image files in {sources!r}")
        first, header = read_image(files[0])
        return _Stack(
            len(files),
            first.shape,
            first.dtype,
            files=files,
            first=first,
            first_header=self.file_header(files[0], header),
            header_of=lambda path: self.file_header(path, read_header(path)),
        )

    def _geometry(
        self, stack: _Stack, poni: Any, header_geometry: bool, flip: str | None
    ) -> tuple[dict | None, str | None, tuple | None]:
        """The geometry, where it comes from, and its per-image series when it changes
        (:func:`~pyscatter.io.geometry_series.series_extras`): ``poni``, else the headers,
        else none."""
        if poni is not None:
            return poni_geometry(poni, stack.frame_shape, stack.first_header), "poni", None
        if not header_geometry or not stack.first_header:
            return None, None, None
        where = str(stack.files[0]) if stack.files else "frames"
        found = self.header_geometry(stack.first_header, stack.frame_shape, flip, where)
        if found is None:
            return None, None, None
        headers = stack.headers()
        configs = self.frame_geometries(headers, stack.files, stack.frame_shape)
        if configs is None:
            self.check_headers(headers, stack.files)  # one geometry for every file
            return found[0], found[1], None
        series = series_extras(configs, source=f"the header of each image ({found[1]})")
        return found[0], found[1], series

    def _attributes(
        self,
        stack: _Stack,
        pos: Positions,
        flip: str | None,
        options: dict,
        geometry_source: str | None,
        dummy: float | None,
        dummies: tuple[float, float] | None,
        poni: Any,
    ) -> dict[str, Any]:
        """``Measurement_000`` attributes: provenance (sources with checksums), options, sources
        of the geometry and dummy."""
        attrs: dict[str, Any] = {
            **self.provenance(),
            "versions": versions(),
            "sources": [file_record(f) for f in stack.files],
            "n_sources": stack.n,
            "orientation": orientation(flip, stack.array is not None),
            "flip": flip or "none",
            "options": options,
            **pos.record(),
        }
        if geometry_source:
            attrs["geometry_source"] = geometry_source
        attrs.update(
            self.extra_attributes(stack.files[0] if stack.files else None, stack.first_header)
        )
        if stack.array is not None:
            attrs["frames_source"] = f"in-memory array {tuple(stack.array.shape)} {stack.dtype}"
        if dummy is not None:
            attrs["dummy"] = float(dummy)
        elif dummies is not None:
            attrs["dummy"], attrs["delta_dummy"] = dummies
            attrs["dummy_source"] = (
                f"ESRF header of {stack.files[0].name}: Dummy/DDummy; the pixels of that image "
                "holding it are in Mask"
            )
        if poni is not None:
            attrs["poni"] = (
                str(Path(poni).resolve()) if isinstance(poni, (str, os.PathLike)) else "dict"
            )
        if pos.extra_units:
            attrs["measured_units"] = pos.extra_units
        return attrs

    # ------------------------------------------------------------------ positions

    def _positions(
        self, stack: _Stack, positions: Any, motors: Any, grid: Any, snake: Any, incomplete: str
    ) -> Positions:
        n = stack.n
        if positions is not None:
            labels, values = read_positions_csv(positions)
            if values.shape[0] != n:
                raise InputError(
                    f"positions file {positions}: {values.shape[0]} rows of positions for "
                    f"{n} {stack.what()}; expected one row per image, in natural file order"
                )
            pos = infer_grid(
                values,
                labels,
                source=f"positions file {Path(positions).resolve()}",
                snake=snake,
                incomplete=incomplete,
            )
            _check_array_shape(stack, pos, "positions")
            return pos
        if motors is not None:
            if stack.array is not None:
                raise InputError("motors= reads image headers; in-memory frames have none")
            labels, values, how = self.header_motors(stack.headers(), motors, stack.files)
            names = ",".join(name for name, _ in labels)
            return infer_grid(
                values,
                labels,
                source=f"motors {names} ({how})",
                snake=snake,
                incomplete=incomplete,
            )
        if stack.array is not None and stack.array.ndim > 3:
            scan = stack.scan_shape
            if grid is None:
                dims = [Dim(f"Dim{k}", "", np.arange(s)) for k, s in enumerate(scan)]
                return Positions(dims, source="array dimensions")
            parsed = parse_grid(grid)
            if tuple(s for _, _, s in parsed) != scan:
                raise InputError(
                    f"grid {grid!r} has shape {tuple(s for _, _, s in parsed)}; "
                    f"the frames array has scan shape {scan}"
                )
            return grid_positions(grid, n, what=stack.what(), snake=snake is True)
        if grid is not None:
            return grid_positions(
                grid, n, what=stack.what(), snake=snake is True, incomplete=incomplete
            )
        return index_positions(n, "Image")

    def _monitor(self, stack: _Stack, monitor: str | None) -> np.ndarray | None:
        if monitor is None:
            return None
        if stack.array is not None:
            raise InputError("monitor= reads image headers; in-memory frames have none")
        headers = stack.headers()
        return np.array(
            [
                header_monitor(h, monitor, where=str(f))
                for h, f in zip(headers, stack.files, strict=True)
            ],
            dtype=np.float64,
        )


def _check_array_shape(stack: _Stack, pos: Positions, what: str) -> None:
    if (
        stack.array is not None
        and stack.array.ndim > 3
        and pos.values is not None
        and pos.shape != stack.scan_shape
    ):
        raise InputError(
            f"{what}: the positions form a {pos.shape} grid; the frames array has scan shape "
            f"{stack.scan_shape}"
        )


# --------------------------------------------------------------------------- frames


def _array_stack(frames: Any) -> _Stack:
    array = np.asarray(frames)
    if array.ndim < 3 or array.size == 0:
        raise InputError(
            f"frames must have shape (n, rows, cols) or (*scan_shape, rows, cols); got {array.shape}"
        )
    if array.dtype.kind not in "uif":
        raise InputError(f"frames must be integers or floats; got dtype {array.dtype}")
    n = math.prod(array.shape[:-2])
    return _Stack(n, tuple(array.shape[-2:]), array.dtype, array=array)


class _Frames:
    """The frames in position order, flipped, read one at a time (random access for resume)."""

    def __init__(self, stack: _Stack, flip: str | None, pos: Positions) -> None:
        self.stack, self.flip, self.pos = stack, flip, pos
        self.flat = (
            stack.array.reshape(stack.n, *stack.frame_shape) if stack.array is not None else None
        )

    def __len__(self) -> int:
        return self.pos.n_positions

    def __getitem__(self, position: int) -> np.ndarray | None:
        index = self.pos.source_index(position)
        if index < 0:
            return None  # never measured: zeros
        stack = self.stack
        if self.flat is not None:
            return flip_frame(self.flat[index], self.flip)
        if index == 0 and stack.first is not None:
            frame = stack.first
        else:
            frame = read_frame(stack.files[index], stack.frame_shape, stack.dtype, stack.files[0])
        return flip_frame(frame, self.flip)


# --------------------------------------------------------------------------- options and mask


def _check_options(positions, motors, grid, dummy, incomplete, snake, compression) -> None:
    compression_options(compression)  # validates the name before any slow work
    chosen = [
        k
        for k, v in (("positions", positions), ("motors", motors), ("grid", grid))
        if v is not None
    ]
    if len(chosen) > 1:
        raise InputError(f"give at most one of positions, motors, grid; got {', '.join(chosen)}")
    if dummy is not None and not isinstance(dummy, (int, float, np.number)):
        raise InputError(f"dummy must be a number, got {dummy!r}")
    check_scan_options(incomplete, snake)


def _mask(
    stack: _Stack, mask: Any, flip: str | None, dummy: float | None
) -> tuple[np.ndarray | None, tuple[float, float] | None]:
    """The mask (flipped like the frames) with the first image's ESRF dummy pixels added."""
    mask_arr = load_mask(mask, stack.frame_shape)
    if mask_arr is not None:
        mask_arr = flip_frame(mask_arr, flip)
    dummies = None
    if dummy is None and stack.first_header:
        where = str(stack.files[0]) if stack.files else "frames"
        dummies = esrf_dummy(stack.first_header, where=where)
    if dummies is not None and stack.first is not None:
        from_header = flip_frame(dummy_mask(stack.first, *dummies), flip).astype(np.uint8)
        mask_arr = from_header if mask_arr is None else (mask_arr | from_header)
    return mask_arr, dummies


# --------------------------------------------------------------------------- provenance


def _options_record(
    positions, motors, grid, poni, mask, flip, dummy, compression, frames, **more
) -> dict:
    return {
        **{k: describe(v) for k, v in more.items()},
        "positions": describe(positions),
        "motors": describe(motors),
        "grid": describe(grid),
        "poni": describe(poni),
        "mask": describe(mask),
        "flip": flip,
        "dummy": describe(dummy),
        "compression": compression,
        "frames": describe(frames),
    }
