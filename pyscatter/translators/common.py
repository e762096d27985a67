"""Helpers every translator shares: reading images, orientation, masks, provenance, options.

Translators import these instead of each other's private functions:

* images: :func:`read_image`, :func:`read_header`, :func:`read_frame` (one more image of a stack,
  checked against the first), :func:`load_mask`, :func:`image_dims`;
* orientation: :data:`FLIPS`, :func:`check_flip`, :func:`flip_frame`, :func:`flip_centre`,
  :func:`orientation`;
* provenance: :func:`file_record` (name, path, size, sha256), :class:`PendingRecords` (the
  same, hashed in a thread while the translation reads the frames), :func:`versions`,
  :func:`package_version`, :func:`describe` (an option as recorded in the ``options`` attribute);
* options: :func:`check_scan_options` (``incomplete``, ``snake``), :func:`check_link`;
* HDF5 and headers: :data:`HDF5_SIGNATURE`, :func:`nx_class`, :func:`attr_text`,
  :func:`header_text`, :func:`header_number`.

Geometry readers (a header → a pyFAI geometry) live in
:mod:`pyscatter.translators.geometry_readers`.

Examples
--------
>>> import numpy as np
>>> flip_frame(np.array([[1, 2], [3, 4]]), "lr").tolist()
[[2, 1], [4, 3]]
>>> orientation("ud", from_array=True)
'flipped up-down relative to the given array'
>>> describe({"grid": ("Y", 2), "mask": np.zeros((2, 3), bool)})
{'grid': ['Y', 2], 'mask': 'array (2, 3) bool'}
"""

from __future__ import annotations

import hashlib
import math
import os
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from pyscatter.errors import FileFormatError, InputError, PyscatterError
from pyscatter.io.usid import Dim

__all__ = [
    "FLIPS",
    "HDF5_SIGNATURE",
    "LINKS",
    "PendingRecords",
    "attr_text",
    "check_flip",
    "check_frame",
    "check_link",
    "check_scan_options",
    "describe",
    "file_record",
    "flip_centre",
    "flip_frame",
    "header_number",
    "header_text",
    "image_dims",
    "load_mask",
    "nx_class",
    "orientation",
    "package_version",
    "read_frame",
    "read_header",
    "read_image",
    "versions",
]

#: Accepted ``flip`` values and the orientation each records (relative to fabio's array).
FLIPS: dict[str | None, str] = {
    None: "as read by fabio",
    "ud": "flipped up-down relative to fabio's array",
    "lr": "flipped left-right relative to fabio's array",
}

#: The first 8 bytes of every HDF5 file.
HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"

#: ``link`` values once normalised: decode and encode again, copy compressed chunks, virtual.
LINKS = (False, "chunks", "vds")

#: Accepted values of ``incomplete`` (as in :data:`pyscatter.translators.positions.INCOMPLETE`).
_INCOMPLETE = ("pad", "drop", "error")


# --------------------------------------------------------------------------- images


def _existing(path: str | os.PathLike) -> Path:
    path = Path(path)
    if not path.is_file():
        raise FileFormatError(f"{path}: no such file")
    return path


def _unreadable(path: Path, err: Exception) -> FileFormatError:
    return FileFormatError(f"{path}: not an image fabio can read ({type(err).__name__}: {err})")


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


def read_frame(
    path: str | os.PathLike, shape: tuple[int, ...], dtype: np.dtype, first: str | os.PathLike
) -> np.ndarray:
    """One more image of a stack, checked against the first one (``first``, for messages).

    Raises
    ------
    InputError
        An image of another shape, or of a dtype that does not fit the first image's.
    FileFormatError
        See :func:`read_image`.
    """
    frame, _ = read_image(path)
    return check_frame(frame, path, shape, dtype, first)


def check_frame(
    frame: np.ndarray,
    path: str | os.PathLike,
    shape: tuple[int, ...],
    dtype: np.dtype,
    first: str | os.PathLike,
) -> np.ndarray:
    """``frame`` (read from ``path``) checked against the first image of a stack: see
    :func:`read_frame`, which reads and checks."""
    name = Path(first).name
    if frame.shape != tuple(shape):
        raise InputError(
            f"{path}: image of shape {frame.shape}; the first image ({name}) is {tuple(shape)}"
        )
    if frame.dtype.kind != np.dtype(dtype).kind or not np.can_cast(frame.dtype, dtype):
        raise InputError(
            f"{path}: image of dtype {frame.dtype}; the first image ({name}) is {dtype}, and "
            "every image must fit it"
        )
    return frame


def load_mask(mask: Any, frame_shape: tuple[int, ...]) -> np.ndarray | None:
    """``mask`` (an image file fabio reads, or an array) as uint8, nonzero = masked; None if None.

    Raises
    ------
    InputError
        A mask of another shape than the frames.
    """
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


def image_dims(frame_shape: tuple[int, ...]) -> list[Dim]:
    """The spectroscopic dims of detector images: ``Row``, ``Col`` in pixels."""
    rows, cols = frame_shape
    return [Dim("Row", "pixel", np.arange(rows)), Dim("Col", "pixel", np.arange(cols))]


# --------------------------------------------------------------------------- orientation


def check_flip(flip: Any) -> str | None:
    """``flip`` normalised (``"none"`` → None) and checked against :data:`FLIPS`."""
    if flip in (None, "none"):
        return None
    if flip not in FLIPS:
        allowed = ", ".join(repr(k) for k in FLIPS)
        raise InputError(f"unsupported flip {flip!r}; expected one of {allowed}")
    return flip


def flip_frame(frame: np.ndarray, flip: str | None) -> np.ndarray:
    """``frame`` flipped up-down (``"ud"``), left-right (``"lr"``) or as it is (None)."""
    if flip == "ud":
        return np.flipud(frame)
    if flip == "lr":
        return np.fliplr(frame)
    return frame


def flip_centre(
    col: float, row: float, frame_shape: tuple[int, ...], flip: str | None
) -> tuple[float, float]:
    """A beam centre ``(col, row)`` in pixels of the image as stored, for the image ``flip``-ped.

    >>> flip_centre(10.0, 20.0, (100, 50), "lr"), flip_centre(10.0, 20.0, (100, 50), "ud")
    ((40.0, 20.0), (10.0, 80.0))
    """
    rows, cols = frame_shape
    if flip == "lr":
        return cols - col, row
    if flip == "ud":
        return col, rows - row
    return col, row


def orientation(flip: str | None, from_array: bool = False) -> str:
    """The ``orientation`` attribute: the frames relative to fabio's (or the given) array."""
    if not from_array:
        return FLIPS[flip]
    return "as given" if flip is None else FLIPS[flip].replace("fabio's array", "the given array")


# --------------------------------------------------------------------------- provenance


def file_record(path: Path) -> dict[str, Any]:
    """``{name, path, size, sha256}`` of a source file, for the ``sources`` attribute.

    Raises
    ------
    FileFormatError
        The file cannot be read.
    """
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


class PendingRecords:
    """:func:`file_record` of ``paths``, computed in a thread while the caller works.

    hashlib releases the GIL while it hashes, so a translation hashes its source files
    (~0.8 s a GB) while it reads their frames. :meth:`result` waits for the records, in the
    order of ``paths``, and raises what :func:`file_record` raised; :meth:`close` (call it in a
    ``finally``) drops the files not yet begun and waits for the one under way.
    """

    def __init__(self, paths: Sequence[Path]) -> None:
        self.paths = [Path(p) for p in paths]
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="pyscatter-sha256")
        self._futures = [self._pool.submit(file_record, p) for p in self.paths]

    def __len__(self) -> int:
        return len(self.paths)

    def result(self) -> list[dict[str, Any]]:
        """The records of every file (waits for them)."""
        return [future.result() for future in self._futures]

    def close(self) -> None:
        """Drop the files not begun; wait for the one being hashed."""
        self._pool.shutdown(wait=True, cancel_futures=True)


def package_version(name: str) -> str:
    """The installed version of package ``name``, or ``"not installed"``."""
    from pyscatter._metadata import installed_version

    version = installed_version(name)
    return "not installed" if version is None else version


def versions(*more: str) -> dict[str, str]:
    """Versions of pyscatter and the packages a translation depends on (plus ``more``)."""
    import pyscatter

    out = {name: package_version(name) for name in ("pyscatter", "fabio", "pyFAI", "numpy", "h5py")}
    out["pyscatter"] = pyscatter.__version__
    out.update({name: package_version(name) for name in more})
    return out


def describe(value: Any) -> Any:
    """An option as the ``options`` attribute records it: JSON-like, paths resolved, arrays
    summarised (``"array (6, 8) uint8"``)."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, os.PathLike):
        return str(Path(value).resolve())
    if isinstance(value, np.ndarray):
        return f"array {tuple(value.shape)} {value.dtype}"
    if isinstance(value, Mapping):
        return {str(k): describe(v) for k, v in value.items()}
    if isinstance(value, Sequence) and not isinstance(value, (bytes, bytearray)):
        return [describe(v) for v in value]
    return repr(value)


# --------------------------------------------------------------------------- options


def check_scan_options(incomplete: Any, snake: Any) -> None:
    """Refuse an ``incomplete`` or ``snake`` value the positions cannot take."""
    if incomplete not in _INCOMPLETE:
        raise InputError(
            f"unsupported incomplete={incomplete!r}; expected one of {', '.join(_INCOMPLETE)}"
        )
    if snake not in (True, False, "auto"):
        raise InputError(f"unsupported snake={snake!r}; expected True, False or 'auto'")


def check_link(link: Any) -> Any:
    """``link`` normalised to one of :data:`LINKS` (True and ``"true"`` mean ``"chunks"``)."""
    if isinstance(link, (bool, np.bool_)):
        link = "chunks" if link else False
    elif isinstance(link, str):
        link = {"true": "chunks", "false": False}.get(link, link)
    if not (link is False or (isinstance(link, str) and link in LINKS)):
        raise InputError(
            f"unsupported link={link!r}; expected False, True (copy compressed chunks), "
            "'chunks' or 'vds' (virtual dataset)"
        )
    return link


# --------------------------------------------------------------------------- HDF5 and headers


def attr_text(obj: Any, key: str, default: str = "") -> str:
    """HDF5 attribute ``key`` of ``obj`` as text (bytes decoded), ``default`` when absent."""
    value = obj.attrs.get(key, default)
    if isinstance(value, (bytes, np.bytes_)):
        return value.decode("utf-8", errors="replace")
    return str(value)


def nx_class(obj: Any) -> str:
    """The ``NX_class`` attribute of an HDF5 group (``""`` when it has none)."""
    return attr_text(obj, "NX_class")


def header_text(header: Mapping[str, Any], key: str) -> str | None:
    """The value of ``key`` as stripped text (bytes decoded), or None when absent or empty."""
    if key not in header:
        return None
    value = header[key]
    if isinstance(value, np.ndarray) and value.shape == ():
        value = value[()]
    if isinstance(value, (bytes, np.bytes_)):
        value = value.decode("utf-8", errors="replace")
    text = str(value).strip()
    return text or None


def header_number(header: Mapping[str, Any], key: str, *, where: str) -> float | None:
    """The value of ``key`` as a finite float, or None when absent.

    Raises
    ------
    FileFormatError
        The key is present but not a finite number (the message names ``where`` and the key).
    """
    text = header_text(header, key)
    if text is None:
        return None
    try:
        value = float(text.split()[0])
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise FileFormatError(f"{where}: header key {key} = {text!r} is not a number")
    return value
