"""Simulated detectors writing a scan as it is acquired, for tests and benchmarks.

Three writers, each driven frame by frame (tests call them synchronously) or at a fixed rate
from the command line (a test starts it as a subprocess)::

    python -m pyscatter.live.simulate folder OUT --frames 48 --rate 20 --fmt cbf --mode rename
    python -m pyscatter.live.simulate h5 OUT.h5 --frames 48 --rate 20 --swmr
    python -m pyscatter.live.simulate spec OUT.spec --scan mesh --shape 6x8 --rate 20

* :class:`FolderWriter`: one fabio image per frame (``tif``, ``cbf``, ``edf``), written under a
  temporary name and renamed (``mode="rename"``), or in place in two halves (``mode="inplace"``,
  the file half-written in between); ``--shuffle`` writes them out of order;
* :class:`H5Writer`: a NeXus ``/entry/data/data`` (frames, rows, cols) dataset compressed with
  bitshuffle-LZ4 growing one frame at a time (SWMR, or a plain flush), with the Eiger
  ``detectorSpecific/nimages`` and ``ntrigger`` counts;
* :class:`SpecWriter`: a SPEC file with a ``mesh``, ``ascan`` or ``timescan`` appended point by
  point, an MCA spectrum (``@A`` line) per point.

Frames and spectra come from :func:`pyscatter.datasets.oriented_map` (known rings, kappa and
director per position): :func:`scan_frames` and :func:`scan_spectra`.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from pyscatter.errors import InputError

__all__ = ["FolderWriter", "H5Writer", "SpecWriter", "main", "scan_frames", "scan_spectra"]

FORMATS = ("tif", "cbf", "edf")
MODES = ("rename", "inplace")
SCANS = ("mesh", "ascan", "timescan")


def scan_frames(
    n: int, frame_shape: Sequence[int] = (64, 64), *, distinct: int = 16, rng: int = 0
) -> np.ndarray:
    """``(n, rows, cols)`` int32 frames of :func:`pyscatter.datasets.oriented_map`: ``distinct``
    positions with known truth, repeated in turn when ``n`` is larger."""
    from pyscatter.datasets import oriented_map

    k = max(1, min(n, distinct))
    scan = oriented_map((k,), frame_shape=tuple(frame_shape), rng=rng)
    frames = scan.frames.reshape(k, *scan.frame_shape)
    return frames[np.arange(n) % k]


def scan_spectra(n: int, channels: int = 256, *, rng: int = 0) -> np.ndarray:
    """``(n, channels)`` int64 Poisson counts of the true I(q) of the synthetic scan (its rings and
    background over q = 0.1 … 2.5 nm⁻¹), scaled by a ramp over the points."""
    from pyscatter.datasets import make_scan

    scan = make_scan((1,), frame_shape=(64, 64), rng=rng)
    q = np.linspace(0.1, 2.5, channels)
    profile = scan.true_profile(q)
    scale = 1.0 + np.arange(n)[:, None] / max(n, 1)
    return np.random.default_rng(rng).poisson(profile[None, :] * scale).astype(np.int64)


# --------------------------------------------------------------------------- folder


class FolderWriter:
    """Write ``frames[i]`` as ``folder/prefix{start + i:05d}.fmt`` (fabio), whole or in halves.

    Parameters
    ----------
    folder : path
    frames : ndarray
        (n, rows, cols).
    fmt : {"tif", "cbf", "edf"}
    mode : {"rename", "inplace"}
        ``rename``: written as ``name.tmp`` then renamed; ``inplace``: under its final name.
    prefix : str
    start : int
        Frame number of frame 0.
    """

    def __init__(
        self,
        folder: str | os.PathLike,
        frames: np.ndarray,
        *,
        fmt: str = "cbf",
        mode: str = "rename",
        prefix: str = "frame_",
        start: int = 0,
    ) -> None:
        if fmt not in FORMATS or mode not in MODES:
            raise InputError(f"fmt={fmt!r}, mode={mode!r}: expected one of {FORMATS}, {MODES}")
        self.folder, self.frames, self.fmt, self.mode = Path(folder), frames, fmt, mode
        self.prefix, self.start = prefix, start
        self.folder.mkdir(parents=True, exist_ok=True)

    def path(self, i: int) -> Path:
        return self.folder / f"{self.prefix}{self.start + i:05d}.{self.fmt}"

    def encode(self, i: int, frame: np.ndarray | None = None) -> bytes:
        """The bytes of the image file of frame ``i`` (or of ``frame`` under its name)."""
        from fabio.cbfimage import CbfImage
        from fabio.edfimage import EdfImage
        from fabio.tifimage import TifImage

        cls = {"edf": EdfImage, "cbf": CbfImage, "tif": TifImage}[self.fmt]
        data = np.ascontiguousarray(self.frames[i] if frame is None else frame)
        header = {"motor_mne": "Image", "motor_pos": repr(float(i))}
        scratch = self.folder / f".{self.path(i).name}.encode"
        cls(data=data, header=header).write(str(scratch))
        try:
            return scratch.read_bytes()
        finally:
            scratch.unlink()

    def write(self, i: int, frame: np.ndarray | None = None, data: bytes | None = None) -> Path:
        """Write frame ``i`` whole (``data``: these bytes instead), by ``mode``."""
        final = self.path(i)
        data = self.encode(i, frame) if data is None else data
        if self.mode == "rename":
            temp = final.with_name(final.name + ".tmp")
            temp.write_bytes(data)
            os.replace(temp, final)
        else:
            final.write_bytes(data)
        return final

    def begin(self, i: int, fraction: float = 0.5) -> Path:
        """Write the first ``fraction`` of frame ``i``'s bytes (``rename``: under the temp name)."""
        final = self.path(i)
        data = self.encode(i)
        target = final if self.mode == "inplace" else final.with_name(final.name + ".tmp")
        target.write_bytes(data[: int(len(data) * fraction)])
        return target

    def finish(self, i: int) -> Path:
        """Complete frame ``i`` begun with :meth:`begin`."""
        return self.write(i)


# --------------------------------------------------------------------------- HDF5


class H5Writer:
    """A NeXus file whose ``/entry/data/data`` grows by one frame per :meth:`append`.

    Parameters
    ----------
    path : path
    frame_shape : (int, int)
    dtype : dtype
    swmr : bool
        Write in SWMR mode (readers see each flushed frame); else a plain flush per frame.
    nimages, ntrigger : int, optional
        Declared counts, written as ``detectorSpecific/nimages`` and ``ntrigger``.
    compression : bool
        bitshuffle-LZ4 (hdf5plugin), one frame per chunk.
    locking : bool
        HDF5 file locking; False when the reader is in the same process (HDF5 refuses to open
        one file twice in a process with different locking).
    """

    def __init__(
        self,
        path: str | os.PathLike,
        frame_shape: Sequence[int],
        dtype: Any = np.int32,
        *,
        swmr: bool = True,
        nimages: int | None = None,
        ntrigger: int = 1,
        compression: bool = True,
        locking: bool = True,
    ) -> None:
        import h5py
        import hdf5plugin

        self.path = Path(path)
        self.h5 = h5py.File(
            self.path, "w", libver="latest" if swmr else "earliest", locking=locking
        )
        rows, cols = (int(s) for s in frame_shape)
        filters = dict(hdf5plugin.Bitshuffle(nelems=0, cname="lz4")) if compression else {}
        entry = self.h5.create_group("entry")
        entry.attrs["NX_class"] = "NXentry"
        data = entry.create_group("data")
        data.attrs["NX_class"] = "NXdata"
        data.attrs["signal"] = "data"
        self.dset = data.create_dataset(
            "data",
            (0, rows, cols),
            dtype=dtype,
            maxshape=(None, rows, cols),
            chunks=(1, rows, cols),
            **filters,
        )
        if nimages is not None:
            spec = self.h5.create_group("entry/instrument/detector/detectorSpecific")
            spec["nimages"] = np.int64(nimages)
            spec["ntrigger"] = np.int64(ntrigger)
        if swmr:
            self.h5.swmr_mode = True
        self.h5.flush()

    def append(self, frames: np.ndarray) -> int:
        """Add ``frames`` ((k, rows, cols) or one (rows, cols)) and flush; returns the count."""
        frames = np.asarray(frames)
        if frames.ndim == 2:
            frames = frames[None]
        n = self.dset.shape[0]
        self.dset.resize(n + frames.shape[0], axis=0)
        self.dset[n:] = frames
        self.dset.flush()
        self.h5.flush()
        return n + frames.shape[0]

    def close(self) -> None:
        if self.h5.id.valid:
            self.h5.close()


# --------------------------------------------------------------------------- SPEC


class SpecWriter:
    """A SPEC file with one scan appended point by point, an MCA spectrum per point.

    Parameters
    ----------
    path : path
    kind : {"mesh", "ascan", "timescan"}
    shape : tuple of int
        ``(slow, fast)`` for a mesh (the first motor ``samx`` runs fastest), ``(n,)`` otherwise.
    spectra : ndarray, optional
        (points, channels) counts; None: no ``@A`` lines.
    number : int
        Scan number.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        kind: str = "mesh",
        shape: Sequence[int] = (3, 4),
        spectra: np.ndarray | None = None,
        *,
        number: int = 1,
        header: bool = True,
    ) -> None:
        if kind not in SCANS:
            raise InputError(f"kind={kind!r}: expected one of {', '.join(SCANS)}")
        self.path, self.kind, self.shape, self.spectra = Path(path), kind, tuple(shape), spectra
        self.n_points = math.prod(self.shape)
        if header:
            self._append(
                f"#F {self.path.name}\n#E 1700000000\n#D Thu Jan  1 00:00:00 2026\n"
                "#O0 samx  samy\n#o0 samx samy\n\n"
            )
        self.start_scan(number)

    def start_scan(self, number: int) -> None:
        """Append the ``#S`` header of scan ``number`` (a new scan ends the one before)."""
        if self.kind == "mesh":
            slow, fast = self.shape
            command = f"mesh  samx 0 {fast - 1} {fast - 1}  samy 0 {slow - 1} {slow - 1}  0.1"
        elif self.kind == "ascan":
            command = f"ascan  samx 0 {self.shape[0] - 1} {self.shape[0] - 1}  0.1"
        else:
            command = f"timescan  0.1 {self.shape[0]}"
        lines = [f"\n#S {number}  {command}", "#D Thu Jan  1 00:00:00 2026", "#P0 0 0"]
        if self.spectra is not None:
            ch = self.spectra.shape[1]
            lines += ["#@MCA %16C", f"#@CHANN {ch} 0 {ch - 1} 1", "#@CALIB 0 0.01 0"]
        lines += ["#N 5", "#L samx  samy  Time  I0  det"]
        self._append("\n".join(lines) + "\n")

    def point_text(self, i: int) -> str:
        """The lines of point ``i``: its ``@A`` spectrum (if any) then its data line."""
        if self.kind == "mesh":
            slow, fast = divmod(i, self.shape[1])
            x, y = float(fast), float(slow)
        else:
            x, y = float(i), 0.0
        text = ""
        if self.spectra is not None:
            values = " ".join(str(int(v)) for v in self.spectra[i])
            text += f"@A {values}\n"
        return (
            text
            + f"{x:g} {y:g} {0.1 * (i + 1):g} {1000 + i} {int(self.spectra[i].sum()) if self.spectra is not None else i}\n"
        )

    def point(self, i: int, part: float = 1.0) -> None:
        """Append point ``i``; ``part`` < 1 writes only that share of its text (no newline yet)."""
        text = self.point_text(i)
        self._append(text[: int(len(text) * part)] if part < 1 else text)

    def rest(self, i: int, part: float) -> None:
        """Append the rest of point ``i`` begun with ``point(i, part)``."""
        text = self.point_text(i)
        self._append(text[int(len(text) * part) :])

    def _append(self, text: str) -> None:
        with open(self.path, "a") as handle:
            handle.write(text)
            handle.flush()


# --------------------------------------------------------------------------- command line


def _shape(text: str) -> tuple[int, ...]:
    return tuple(int(v) for v in text.lower().split("x"))


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m pyscatter.live.simulate KIND OUT --frames N --rate HZ …``."""
    parser = argparse.ArgumentParser(
        prog="python -m pyscatter.live.simulate", description=__doc__.split("\n")[0]
    )
    parser.add_argument("kind", choices=("folder", "h5", "spec"))
    parser.add_argument("out", type=Path)
    parser.add_argument("--frames", type=int, default=16, help="frames or points to write")
    parser.add_argument("--rate", type=float, default=10.0, help="frames per second (0: at once)")
    parser.add_argument("--frame-shape", type=_shape, default=(64, 64), help="ROWSxCOLS")
    parser.add_argument("--fmt", choices=FORMATS, default="cbf")
    parser.add_argument("--mode", choices=MODES, default="rename")
    parser.add_argument("--shuffle", action="store_true", help="write frames out of order")
    parser.add_argument("--swmr", action="store_true")
    parser.add_argument("--scan", choices=SCANS, default="mesh")
    parser.add_argument(
        "--shape", type=_shape, default=None, help="mesh SLOWxFAST (default from --frames)"
    )
    parser.add_argument("--channels", type=int, default=256)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    period = 1.0 / args.rate if args.rate > 0 else 0.0
    n = args.frames
    if args.kind == "spec":
        shape = args.shape or ((n,) if args.scan != "mesh" else (max(1, n // 4), 4))
        n = math.prod(shape)
        writer = SpecWriter(
            args.out, args.scan, shape, scan_spectra(n, args.channels, rng=args.seed)
        )
        _paced(n, period, writer.point)
        return 0
    frames = scan_frames(n, args.frame_shape, rng=args.seed)
    if args.kind == "folder":
        folder = FolderWriter(args.out, frames, fmt=args.fmt, mode=args.mode)
        order = np.random.default_rng(args.seed).permutation(n) if args.shuffle else np.arange(n)
        _paced(n, period, lambda k: folder.write(int(order[k])))
        return 0
    h5 = H5Writer(args.out, args.frame_shape, frames.dtype, swmr=args.swmr, nimages=n)
    try:
        _paced(n, period, lambda k: h5.append(frames[k]))
    finally:
        h5.close()
    return 0


def _paced(n: int, period: float, write: Any) -> None:
    """Call ``write(k)`` for k < n, one every ``period`` seconds (no drift)."""
    t0 = time.monotonic()
    for k in range(n):
        delay = t0 + k * period - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        write(k)
        print(k, flush=True)


if __name__ == "__main__":
    sys.exit(main())
