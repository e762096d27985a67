"""A SPEC file whose current scan is still being appended, point by point.

The points are parsed by the SPEC translator's own code (silx, then
:func:`pyscatter.translators.spec_scans.parse_points`: columns checked against ``#L``, MCA
spectra as integer counts): at each poll the new complete points (their ``@A`` lines and data
line, up to the last newline) are given to it behind the file header and the scan header, so a
poll reads only what was appended. A partial last line is never returned.

Each point is an :class:`~pyscatter.live.sources.Arrival` whose ``values`` are the point's
columns and whose frame is, as the offline translator stores it: the point's image with
``image_pattern`` (``{scan}``, ``{point}`` … as for the ``spec`` translator; the point waits for
its image to be complete, as in a folder), else the spectrum of MCA analyser ``mca`` (``@A``
lines), else the row of counters (float64). MCA counts are int32, or int64 / float64 when a
batch of points needs it (the offline translator decides over the whole scan).

Declared dims come from the ``#S`` command as the translator names them (a mesh: second motor
slow, first motor fast; ``ascan``/``dscan``: one dim; a time series: none), known once the
``#L`` line is written. The scan is finished when a new ``#S`` starts or its points are all in.
The scan followed is ``scan=`` (a number, waited for), else the file's last scan when watching
starts, else the first to start; :attr:`SpecSource.scan_key` records it for a restart.
"""

from __future__ import annotations

import math
import os
import re
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from pyscatter.errors import FileFormatError, InputError
from pyscatter.io.usid import Dim
from pyscatter.live.folder import _stat, _Track, header_values, quiet_fabio
from pyscatter.live.sources import (
    DEFAULT_SETTLE,
    DEFAULT_TIMEOUT,
    Arrival,
    FollowedFile,
    Problems,
    Waker,
)
from pyscatter.translators.common import check_frame, read_image
from pyscatter.translators.spec import image_files
from pyscatter.translators.spec_scans import SpecScan, declared_dims, parse_points

__all__ = ["SpecSource", "mca_order", "point_ends", "point_ends_after"]

_SCAN_LINE = re.compile(rb"^#S\s+(\d+)", re.MULTILINE)


def point_ends(text: bytes) -> tuple[list[int], bool]:
    """End offsets of the complete points of a scan body (after each data line), and whether a
    new ``#S`` line follows them. A line without its newline is not complete."""
    ends: list[int] = []
    pos, continued = 0, False
    for line in text.splitlines(keepends=True):
        if not line.endswith(b"\n"):
            break
        stripped = line.strip()
        if continued:  # an MCA spectrum continues while its lines end in a backslash
            continued = stripped.endswith(b"\\")
        elif stripped.startswith(b"#S "):
            return ends, True
        elif stripped.startswith(b"@"):
            continued = stripped.endswith(b"\\")
        elif stripped and not stripped.startswith(b"#"):
            ends.append(pos + len(line))
        pos += len(line)
    return ends, False


def point_ends_after(
    text: bytes, n_mca: int | None = None, remaining: int | None = None
) -> tuple[list[int], bool]:
    """:func:`point_ends` of a scan whose ``@A`` spectra FOLLOW their data line (as SPEC writes
    them, e.g. the APS files of spec2nexus): a point is complete when the next data line, a
    ``#`` line (``#C`` at a scan's end) or a new ``#S`` begins after it, or, for the last point
    the command declares (``remaining == 1`` for the point being read), once it holds its
    ``n_mca`` complete spectra. A line without its newline is not complete."""
    ends: list[int] = []
    pos, continued, in_point, spectra = 0, False, False, 0

    def spectrum_done() -> None:
        nonlocal spectra, in_point
        spectra += 1
        last = remaining is not None and len(ends) + 1 == remaining
        if in_point and last and n_mca is not None and spectra == n_mca:
            ends.append(pos)
            in_point = False

    for line in text.splitlines(keepends=True):
        if not line.endswith(b"\n"):
            break
        stripped = line.strip()
        if continued:  # an MCA spectrum continues while its lines end in a backslash
            continued = stripped.endswith(b"\\")
            pos += len(line)
            if not continued:
                spectrum_done()
            continue
        if stripped.startswith(b"#S "):
            if in_point:
                ends.append(pos)
            return ends, True
        if stripped.startswith(b"@"):
            continued = stripped.endswith(b"\\")
            pos += len(line)
            if not continued:
                spectrum_done()
            continue
        if stripped and in_point:  # a data line or a comment: the point before it is complete
            ends.append(pos)
            in_point = False
        if stripped and not stripped.startswith(b"#"):
            in_point, spectra = True, 0
        pos += len(line)
    return ends, False


def mca_order(scan_header: bytes, body: bytes) -> tuple[bool | None, int | None]:
    """Whether the ``@A`` spectra of a scan follow their data line (None: not known yet, the
    header announcing MCA data with one data line read so far), and how many a point holds
    (None: not known yet)."""
    kinds = []  # b"d" data line, b"a" a complete spectrum, b"#" a comment
    continued = False
    for line in body.splitlines(keepends=True):
        if not line.endswith(b"\n"):
            break
        stripped = line.strip()
        if continued:
            continued = stripped.endswith(b"\\")
            if not continued:
                kinds.append(b"a")
        elif stripped.startswith(b"@"):
            continued = stripped.endswith(b"\\")
            if not continued:
                kinds.append(b"a")
        elif stripped.startswith(b"#"):
            kinds.append(b"#")
        elif stripped:
            kinds.append(b"d")
    points = [k for k in kinds if k != b"#"]
    if not points:
        return None, None
    if points[0] == b"a":
        return False, None
    if len(points) == 1:
        ended = b"#" in kinds[kinds.index(b"d") + 1 :]  # a comment or #S: no spectrum followed
        return (None if b"#@MCA" in scan_header and not ended else False), None
    if points[1] == b"d":
        return False, None
    after = points[1:]
    n = next((k for k, kind in enumerate(after) if kind == b"d"), None)
    if n is None and b"#" in kinds[kinds.index(b"d") + 1 :]:
        n = len(after)
    return True, n


class SpecSource(FollowedFile):
    """Follow the current scan of a SPEC file; see the module documentation.

    Parameters
    ----------
    path : path
        The SPEC file.
    scan : int or str, optional
        Scan number to follow.
    image_pattern : str, optional
        Image file of each point (as the ``spec`` translator's ``image_pattern``).
    mca : int
        MCA analyser whose spectrum is the frame (0: the first ``@A`` line of a point).
    settle, timeout : float
        Images per point: seconds unchanged before one is tried; seconds before one that never
        appears or never reads is given up (a non-fatal problem).
    clock : callable
        Seconds, monotonic (tests pass their own).
    watch : bool
        Wake :meth:`wait` on changes with ``watchfiles``.
    """

    OPTIONS = ("image_pattern", "mca", "clock", "watch")

    def __init__(
        self,
        path: str | os.PathLike,
        *,
        scan: int | str | None = None,
        image_pattern: str | None = None,
        mca: int = 0,
        settle: float = DEFAULT_SETTLE,
        timeout: float = DEFAULT_TIMEOUT,
        clock: Callable[[], float] = time.monotonic,
        watch: bool = True,
    ) -> None:
        self.path = Path(path)
        if scan is not None and not re.fullmatch(r"\d+", str(scan).strip()):
            raise InputError(f"scan {scan!r}: expected a scan number")
        self.scan_number = None if scan is None else int(str(scan).strip())
        self.image_pattern, self.mca = image_pattern, int(mca)
        self.settle, self.timeout, self.clock = float(settle), float(timeout), clock
        self.problems = Problems()
        #: the silx key of the scan followed (``"3.1"``), once found
        self.scan_key: str | None = None
        self._polled = False
        self._file_header = b""
        self._scan_header: bytes | None = None
        self._pos = 0  # file offset of the next unread point of the scan (or of the search)
        self._size = 0
        self._ident: tuple[int, int] | None = None
        self._base = 0
        self._dims: list[tuple[str, int]] | None = None
        self._n = 0  # points read
        #: whether the scan's @A spectra follow their data line (None: not known yet), and
        #: how many a point holds
        self._mca_after: bool | None = None
        self._n_mca: int | None = None
        self._spec_dims: list[Dim] | None = None
        self._ended = False
        self._pending: dict[int, tuple[_Track, dict[str, float]]] = {}
        self._shape: tuple[int, ...] | None = None
        self._dtype: np.dtype | None = None
        self._first: Path | None = None
        self._header: dict = {}
        self._waker = Waker(self.path) if watch else None

    # ------------------------------------------------------------------ protocol

    def describe(self) -> str:
        which = self.scan_key or (self.scan_number or "the current scan")
        return f"SPEC file {self.path}, scan {which}"

    def declared_dims(self) -> list[tuple[str, int]] | None:
        return None if self._dims is None else list(self._dims)

    def first_header(self) -> dict:
        return dict(self._header)

    def spectrum_dims(self) -> list[Dim] | None:
        """The ``Channel`` dim of the MCA spectra as the spec translator makes it (energies in
        keV from ``#@CALIB``, else the channel numbers of ``#@CHANN``), once a point was read."""
        return None if self._spec_dims is None else list(self._spec_dims)

    def finished(self) -> bool:
        total = math.prod(n for _, n in self._dims) if self._dims else None
        done = self._ended or (total is not None and self._n >= total)
        return done and not self._pending

    def poll(self, skip: Callable[[int], bool] | None = None) -> list[Arrival]:
        """The points (or their images) complete since the last poll, once each."""
        if self.problems.fatal:
            return []
        now = self.clock()
        data = self._appended()
        if data is None:
            return []
        out: list[Arrival] = []
        if self._scan_header is None and not self._find_scan(data):
            return out
        if not self._ended:
            body = data[self._pos - self._base :]
            if self._mca_after is None or (self._mca_after and self._n_mca is None):
                self._mca_after, self._n_mca = mca_order(self._scan_header or b"", body)
            if self._mca_after:
                total = math.prod(n for _, n in self._dims) if self._dims else None
                remaining = None if total is None else total - self._n
                ends, new_scan = point_ends_after(body, self._n_mca, remaining)
            elif self._mca_after is None:  # one data line so far: its spectra may follow
                ends, new_scan = [], _SCAN_LINE.search(body) is not None
            else:
                ends, new_scan = point_ends(body)
            if ends:
                chunk = data[self._pos - self._base : self._pos - self._base + ends[-1]]
                self._pos += ends[-1]
                out += self._points(chunk, [0, *ends], now, skip)
            self._ended = new_scan
        out += self._images(now)
        return out

    # ------------------------------------------------------------------ the file

    def _appended(self) -> bytes | None:
        """The file's complete lines from the read position (``self._base``); None if fatal."""
        if self._same_file("SPEC file") is None:
            return None
        self._base = self._pos if self._scan_header is not None else 0
        with open(self.path, "rb") as handle:
            handle.seek(self._base)
            data = handle.read()
        return data[: data.rfind(b"\n") + 1]

    def _find_scan(self, data: bytes) -> bool:
        """Find the scan to follow and its complete header (through ``#L``) in the whole file."""
        starts = [(int(m.group(1)), m.start()) for m in _SCAN_LINE.finditer(data)]
        first_poll, self._polled = not self._polled, True
        if self.scan_number is not None:
            found = [off for number, off in starts if number == self.scan_number]
        elif first_poll and starts:
            found = [starts[-1][1]]
            self.scan_number = starts[-1][0]
        else:
            found = [off for _, off in starts[:1]]
            if found:
                self.scan_number = starts[0][0]
        if not found:
            return False
        offset = pos = found[0]
        for k, line in enumerate(data[offset:].splitlines(keepends=True)):
            stripped = line.strip()
            if k and stripped and not stripped.startswith(b"#"):
                break  # a data or MCA line before any #L: not a header silx can use
            pos += len(line)
            if stripped.startswith(b"#L"):
                self._file_header = data[: starts[0][1]]
                self._scan_header = data[offset:pos]
                self._pos = pos
                self._header_dims()
                return True
        return False

    def _parse(self, body: bytes) -> tuple[SpecScan, Any]:
        """silx and :func:`parse_points` on the file header, the scan header and ``body``."""
        from silx.io.specfile import SpecFile

        assert self._scan_header is not None
        fd, name = tempfile.mkstemp(suffix=".spec", prefix="pyscatter-live-")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(self._file_header + self._scan_header + body)
            sf = SpecFile(name)
            try:
                key = list(sf.keys())[0]
                s = sf[key]
                scan = parse_points(Path(name), s, key)
                dims = declared_dims(scan, s) if self._dims is None else None
            finally:
                sf.close()
        except FileFormatError as err:
            raise FileFormatError(str(err).replace(name, str(self.path))) from err
        except Exception as err:  # noqa: BLE001 - silx raises SfError and others
            raise FileFormatError(f"{self.path}: silx cannot read the new points ({err})") from err
        finally:
            Path(name).unlink(missing_ok=True)
        self.scan_key = f"{scan.number}.{scan.order}"
        return scan, dims

    def _header_dims(self) -> None:
        """Declared dims from the scan header alone (one line of zeros stands for the data)."""
        assert self._scan_header is not None
        labels = [ln for ln in self._scan_header.splitlines() if ln.startswith(b"#L")][-1]
        n = len(re.split(rb"\s{2,}", labels[2:].strip()))
        try:
            _, self._dims = self._parse(b" ".join([b"0"] * n) + b"\n")
        except FileFormatError as err:
            self.problems.report(self.path, None, f"{err}; the scan's shape is unknown")

    # ------------------------------------------------------------------ points

    def _points(
        self, chunk: bytes, ends: list[int], now: float, skip: Callable[[int], bool] | None
    ) -> list[Arrival]:
        """The arrivals of the points in ``chunk`` (their ``ends``), each point apart when the
        whole chunk does not parse (a malformed point is a problem, skipped)."""
        try:
            return self._arrivals(self._parse(chunk)[0], now, skip)
        except FileFormatError:
            pass
        out = []
        for a, b in zip(ends[:-1], ends[1:], strict=True):
            try:
                scan = self._parse(chunk[a:b])[0]
            except FileFormatError as err:
                self.problems.report(self.path, self._n, f"{err}; point {self._n} skipped")
                self._n += 1
                continue
            out += self._arrivals(scan, now, skip)
        return out

    def _arrivals(
        self, scan: SpecScan, now: float, skip: Callable[[int], bool] | None
    ) -> list[Arrival]:
        files = (
            image_files(self.path, scan, self.image_pattern, first_point=self._n, check=False)
            if self.image_pattern
            else []
        )
        out = []
        for k in range(scan.n_points):
            index, self._n = self._n, self._n + 1
            total = math.prod(n for _, n in self._dims) if self._dims else None
            if total is not None and index >= total:
                self.problems.report(
                    self.path,
                    index,
                    f"{self.path}: scan {self.scan_key}: point {index} is "
                    f"beyond the {total} points of its command; skipped",
                )
                continue
            if skip is not None and skip(index):
                continue
            values = {name: float(v) for name, v in zip(scan.labels, scan.columns[k], strict=True)}
            origin = f"{self.path}#scan {self.scan_key} point {index}"
            if files:
                self._pending[index] = (_Track(files[k], index, (0, 0, 0), now), values)
            elif scan.mcas:
                if self.mca >= len(scan.mcas):
                    raise InputError(f"{origin}: no MCA {self.mca}; it has {len(scan.mcas)}")
                mca = scan.mcas[self.mca]
                if self._spec_dims is None:  # as the spec translator: #@CHANN and #@CALIB
                    unit = "keV" if mca.calibration is not None else "channel"
                    self._spec_dims = [Dim("Channel", unit, mca.axis())]
                out.append(Arrival(index, mca.spectra[k], origin, values))
            else:
                out.append(Arrival(index, scan.columns[k].copy(), origin, values))
        return out

    def _images(self, now: float) -> list[Arrival]:
        """The images of pending points that are complete (stable for ``settle``, read whole)."""
        out = []
        for index in sorted(self._pending):
            track, values = self._pending[index]
            stat = _stat(track.path)
            if (stat or (0, 0, 0)) != track.stat:  # (0, 0, 0): not there
                track.stat, track.since = stat or (0, 0, 0), now
            if stat is None or now - track.since < self.settle:
                if now - track.since >= self.timeout:
                    self._drop(index, f"{track.path}: the image of point {index} never appeared")
                continue
            try:
                with quiet_fabio():
                    frame, header = read_image(track.path)
                if self._shape is None:
                    self._shape, self._dtype, self._first = frame.shape, frame.dtype, track.path
                assert self._dtype is not None and self._first is not None
                frame = check_frame(frame, track.path, self._shape, self._dtype, self._first)
            except FileFormatError as err:
                if now - track.since >= self.timeout:
                    self._drop(index, f"{err}; point {index} skipped")
                continue
            except InputError as err:
                self._drop(index, f"{err}; point {index} skipped")
                continue
            del self._pending[index]
            self._header = self._header or dict(header)
            values = {**header_values(header, str(track.path)), **values}
            out.append(
                Arrival(index, frame.astype(self._dtype, copy=False), str(track.path), values)
            )
        return out

    def _drop(self, index: int, message: str) -> None:
        track, _ = self._pending.pop(index)
        self.problems.report(track.path, index, message)

    def _fatal(self, message: str) -> None:
        self.problems.report(self.path, None, message, fatal=True)
        self.close()
