"""Stacks of detector images, one per scan position: EDF, TIFF, CBF … anything fabio reads.

The translator streams the images one at a time into :func:`pyscatter.io.raw.write_measurement`
(never the whole stack in memory) and records, on ``Measurement_000``, where everything came from:
the source files with their sizes and sha256, the positions source, the geometry, the image
orientation and the options used.

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

import hashlib
import logging
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from pyscatter.errors import FileFormatError, InputError, PyscatterError
from pyscatter.geometry import check_geometry, short_error
from pyscatter.io.raw import MeasurementSpec, write_measurement
from pyscatter.io.usid import Dim, compression_options
from pyscatter.translators.base import Translator, check_output, expand_sources
from pyscatter.translators.esrf import (
    check_same_geometry,
    dummy_mask,
    esrf_dummy,
    esrf_geometry,
    geometry_record,
    header_monitor,
)
from pyscatter.translators.positions import (
    INCOMPLETE,
    Positions,
    grid_positions,
    index_positions,
    infer_grid,
    motor_positions,
    parse_grid,
    read_positions_csv,
)

__all__ = ["FLIPS", "ImageStackTranslator", "read_header", "read_image"]

logger = logging.getLogger(__name__)

#: Accepted ``flip`` values and the orientation each records (relative to fabio's array).
FLIPS: dict[str | None, str] = {
    None: "as read by fabio",
    "ud": "flipped up-down relative to fabio's array",
    "lr": "flipped left-right relative to fabio's array",
}

#: First bytes of each format family, by file name ending.
_MAGIC: dict[str, tuple[bytes, ...]] = {
    ".edf": (b"{",),
    ".tif": (b"II*\x00", b"MM\x00*"),
    ".tiff": (b"II*\x00", b"MM\x00*"),
    ".mccd": (b"II*\x00", b"MM\x00*"),
    ".cbf": (b"###CBF",),
    ".img": (b"{", b"RAXIS", b"OD SAPPHIRE"),
}


def read_image(path: str | os.PathLike) -> tuple[np.ndarray, dict]:
    """One single-frame image as fabio reads it: ``(data, header)``.

    Raises
    ------
    FileFormatError
        Missing, unreadable, truncated or corrupt file (the message names it and fabio's error).
    InputError
        A file with several frames.
    """
    import fabio

    path = _existing(path)
    try:
        with fabio.open(str(path)) as image:
            data = image.data
            if getattr(image, "incomplete_file", False):
                raise FileFormatError(
                    f"{path}: truncated image (fewer data bytes than its header says)"
                )
            nframes = int(getattr(image, "nframes", 1) or 1)
            header = dict(image.header)
    except PyscatterError:
        raise
    except Exception as err:  # noqa: BLE001 - fabio raises anything from KeyError to AssertionError
        raise _unreadable(path, err) from err
    if data is None or np.ndim(data) != 2:
        raise FileFormatError(f"{path}: fabio read no 2-D image from it")
    if nframes != 1:
        raise InputError(
            f"{path}: holds {nframes} frames; the images translator takes one frame per file"
        )
    return np.asarray(data), header


def read_header(path: str | os.PathLike) -> dict:
    """The header of an image, without its data (fabio ``openheader``).

    Raises
    ------
    FileFormatError
        Missing or unreadable file.
    """
    import fabio

    path = _existing(path)
    try:
        return dict(fabio.openheader(str(path)).header)
    except Exception as err:  # noqa: BLE001 - see read_image
        raise _unreadable(path, err) from err


def _existing(path: str | os.PathLike) -> Path:
    path = Path(path)
    if not path.is_file():
        raise FileFormatError(f"{path}: no such file")
    return path


def _unreadable(path: Path, err: Exception) -> FileFormatError:
    return FileFormatError(f"{path}: not an image fabio can read ({type(err).__name__}: {err})")


def _file_record(path: Path) -> dict[str, Any]:
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    except OSError as err:
        raise FileFormatError(f"{path}: cannot read it ({err})") from err
    return {
        "name": path.name,
        "path": str(path.resolve()),
        "size": path.stat().st_size,
        "sha256": digest.hexdigest(),
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
    _headers: list[dict] | None = None

    def headers(self) -> list[dict]:
        """The header of every file, read once (geometry check, motors and monitor share it)."""
        if self._headers is None:
            self._headers = [self.first_header] + [read_header(f) for f in self.files[1:]]
        return self._headers

    @property
    def scan_shape(self) -> tuple[int, ...]:
        if self.array is not None:
            return tuple(self.array.shape[:-2])
        return (self.n,)

    def what(self) -> str:
        return "frames" if self.array is not None else "images"


def _orientation(flip: str | None, from_array: bool) -> str:
    if not from_array:
        return FLIPS[flip]
    return "as given" if flip is None else FLIPS[flip].replace("fabio's array", "the given array")


def _flip(frame: np.ndarray, flip: str | None) -> np.ndarray:
    if flip == "ud":
        return np.flipud(frame)
    if flip == "lr":
        return np.fliplr(frame)
    return frame


def _check_flip(flip: Any) -> str | None:
    if flip in (None, "none"):
        return None
    if flip not in FLIPS:
        allowed = ", ".join(repr(k) for k in FLIPS)
        raise InputError(f"unsupported flip {flip!r}; expected one of {allowed}")
    return flip


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
        flip = _check_flip(flip)
        compression_options(compression)  # validates the name before any slow work
        chosen = [
            k
            for k, v in (("positions", positions), ("motors", motors), ("grid", grid))
            if v is not None
        ]
        if len(chosen) > 1:
            raise InputError(
                f"give at most one of positions, motors, grid; got {', '.join(chosen)}"
            )
        if dummy is not None and not isinstance(dummy, (int, float, np.number)):
            raise InputError(f"dummy must be a number, got {dummy!r}")
        if incomplete not in INCOMPLETE:
            raise InputError(
                f"unsupported incomplete={incomplete!r}; expected one of {', '.join(INCOMPLETE)}"
            )
        if snake not in (True, False, "auto"):
            raise InputError(f"unsupported snake={snake!r}; expected True, False or 'auto'")

        if frames is not None:
            if sources is not None:
                raise InputError("give either sources (image files) or frames (an array), not both")
            stack = _array_stack(frames)
        else:
            exclude = {
                os.path.realpath(p)
                for p in (positions, poni, mask)
                if isinstance(p, (str, os.PathLike))
            }
            files = [
                f
                for f in expand_sources(sources, extensions=self.extensions)
                if os.path.realpath(f) not in exclude
            ]
            if not files:
                raise InputError(f"no image files in {sources!r}")
            first, header = read_image(files[0])
            stack = _Stack(
                len(files), first.shape, first.dtype, files=files, first=first, first_header=header
            )
        pos = self._positions(stack, positions, motors, grid, snake, incomplete)
        where = str(stack.files[0]) if stack.files else "frames"
        geometry, geometry_source = _geometry(
            poni, stack.frame_shape, stack.first_header, header_geometry, flip, where
        )
        if geometry_source not in (None, "poni"):  # a header geometry: the same in every file
            check_same_geometry(stack.headers(), stack.files)
        mask_arr = _load_mask(mask, stack.frame_shape)
        if mask_arr is not None:
            mask_arr = _flip(mask_arr, flip)
        dummies = None
        if dummy is None and stack.first_header:
            dummies = esrf_dummy(stack.first_header, where=where)
        if dummies is not None and stack.first is not None:
            from_header = _flip(dummy_mask(stack.first, *dummies), flip).astype(np.uint8)
            mask_arr = from_header if mask_arr is None else (mask_arr | from_header)
        monitor_values = self._monitor(stack, monitor)
        # checksums last: every cheap check above has passed (a big stack takes a while)
        records = [_file_record(f) for f in stack.files]

        attrs: dict[str, Any] = {
            "translator": self.name,
            "tool": f"pyscatter.translators.{self.name}",
            "versions": _versions(),
            "sources": records,
            "n_sources": stack.n,
            "orientation": _orientation(flip, stack.array is not None),
            "flip": flip or "none",
            "options": _options_record(
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
            ),
            **pos.record(),
        }
        if geometry_source:
            attrs["geometry_source"] = geometry_source
        esrf = geometry_record(stack.first_header) if stack.first_header else {}
        if esrf:
            attrs["esrf_header"] = esrf
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
        rows, cols = stack.frame_shape
        spec = MeasurementSpec(
            position_dims=pos.dims,
            spec_dims=[Dim("Row", "pixel", np.arange(rows)), Dim("Col", "pixel", np.arange(cols))],
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
            headers = stack.headers()
            labels, values = motor_positions(headers, motors, stack.files)
            names = ",".join(name for name, _ in labels)
            return infer_grid(
                values,
                labels,
                source=f"motors {names} (motor_mne/motor_pos headers)",
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
            return _flip(self.flat[index], self.flip)
        if index == 0 and stack.first is not None:
            frame = stack.first
        else:
            path = stack.files[index]
            frame, _ = read_image(path)
            if frame.shape != stack.frame_shape:
                raise InputError(
                    f"{path}: image of shape {frame.shape}; the first image "
                    f"({stack.files[0].name}) is {stack.frame_shape}"
                )
            if frame.dtype.kind != stack.dtype.kind or not np.can_cast(frame.dtype, stack.dtype):
                raise InputError(
                    f"{path}: image of dtype {frame.dtype}; the first image "
                    f"({stack.files[0].name}) is {stack.dtype}, and every image must fit it"
                )
        return _flip(frame, self.flip)


# --------------------------------------------------------------------------- geometry and mask


def _geometry(
    poni: Any,
    frame_shape: tuple[int, int],
    header: Mapping[str, Any],
    header_geometry: bool,
    flip: str | None,
    where: str,
) -> tuple[dict | None, str | None]:
    """The geometry and where it comes from: ``poni``, else the ESRF header, else none."""
    if poni is not None:
        return _poni_geometry(poni, frame_shape, header), "poni"
    if not header_geometry or not header:
        return None, None
    config = esrf_geometry(header, frame_shape, where=where)
    if config is None:
        return None, None
    if flip is not None:
        raise InputError(
            f"{where}: the ESRF header geometry refers to the image as stored, but flip={flip!r} "
            "was asked; give the geometry of the flipped images with poni=FILE (--poni FILE), or "
            "drop flip"
        )
    return (
        config,
        f"ESRF header of {Path(where).name} (SampleDistance, WaveLength, Center_1/2, PSize_1/2 via pyFAI setSPD)",
    )


def _poni_geometry(poni: Any, frame_shape: tuple[int, int], header: Mapping[str, Any]) -> dict:
    """pyFAI config of ``poni``, checked against (and completed with) the frames' shape."""
    import pyFAI

    if isinstance(poni, Mapping):
        where = "poni (dict)"
        try:
            ai = pyFAI.load(dict(poni))
        except Exception as err:  # noqa: BLE001 - pyFAI raises many kinds
            raise InputError(f"{where}: not a pyFAI geometry config ({short_error(err)})") from err
    else:
        where = str(poni)
        if not Path(poni).is_file():
            raise InputError(f"PONI file not found: {poni}")
        try:
            ai = pyFAI.load(str(poni))
        except Exception as err:  # noqa: BLE001
            raise FileFormatError(
                f"{poni}: not a PONI file pyFAI can read ({short_error(err)})"
            ) from err
    det = ai.detector
    shape = det.shape if det.shape is not None else det.max_shape
    if shape is None:
        det.max_shape = frame_shape
    elif tuple(shape) != tuple(frame_shape):
        raise InputError(
            f"{where}: detector {det.name!r} is {tuple(shape)} pixels (rows, cols); "
            f"the frames are {tuple(frame_shape)}"
        )
    _check_pixel_size(where, det, header)
    return check_geometry(ai, where=where)


def _check_pixel_size(where: str, det: Any, header: Mapping[str, Any]) -> None:
    """ESRF ``PSize_1`` (fast, columns) / ``PSize_2`` (rows) in metres against the detector."""
    for key, pixel in (("PSize_1", det.pixel2), ("PSize_2", det.pixel1)):
        try:
            value = float(header[key])
        except (KeyError, TypeError, ValueError):
            continue
        if 0 < value < 1e-2 and pixel and not math.isclose(value, pixel, rel_tol=0.01):
            raise InputError(
                f"{where}: detector pixel {pixel} m; the image header says {key} = {value} m"
            )


def _load_mask(mask: Any, frame_shape: tuple[int, int]) -> np.ndarray | None:
    if mask is None:
        return None
    if isinstance(mask, (str, os.PathLike)):
        where = str(mask)
        data, _ = read_image(mask)
    else:
        where = "mask array"
        data = np.asarray(mask)
    if data.shape != tuple(frame_shape):
        raise InputError(
            f"{where}: mask of shape {data.shape}; the frames are {tuple(frame_shape)}"
        )
    return (data != 0).astype(np.uint8)


# --------------------------------------------------------------------------- provenance


def _versions() -> dict[str, str]:
    from importlib import metadata

    out = {}
    for name in ("pyscatter", "fabio", "pyFAI", "numpy", "h5py"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    import pyscatter

    out["pyscatter"] = pyscatter.__version__
    return out


def _describe(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, os.PathLike):
        return str(Path(value).resolve())
    if isinstance(value, np.ndarray):
        return f"array {tuple(value.shape)} {value.dtype}"
    if isinstance(value, Mapping):
        return {str(k): _describe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_describe(v) for v in value]
    return repr(value)


def _options_record(
    positions, motors, grid, poni, mask, flip, dummy, compression, frames, **more
) -> dict:
    return {
        **{k: _describe(v) for k, v in more.items()},
        "positions": _describe(positions),
        "motors": _describe(motors),
        "grid": _describe(grid),
        "poni": _describe(poni),
        "mask": _describe(mask),
        "flip": flip,
        "dummy": _describe(dummy),
        "compression": compression,
        "frames": _describe(frames),
    }
