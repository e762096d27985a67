"""Re-check the data lines of a SPEC scan against what silx parsed.

silx's SPEC reader is lenient: it reads a cell ``1.2.3`` as 1.2 and ``abc`` or ``-inf`` as 0,
and drops a line that holds ``nan`` or misses a cell, all without an error, so positions would
shift or take wrong values silently. :func:`check_data_lines` reads the scan's own lines and
refuses the scan, naming the file, the scan and the line, unless every data line holds exactly
one finite number per ``#L`` label and silx saw as many lines.
"""

from __future__ import annotations

import functools
import math
from pathlib import Path

from pyscatter.errors import FileFormatError


def _data_lines(path: Path, index: int) -> list[tuple[int, str]]:
    """(line number, text) of the data lines of the ``index``-th scan (0-based, file order)."""
    stat = path.stat()
    scans = _all_data_lines(str(path), stat.st_size, stat.st_mtime_ns)
    return scans[index] if index < len(scans) else []


@functools.lru_cache(maxsize=4)
def _all_data_lines(path: str, _size: int, _mtime_ns: int) -> list[list[tuple[int, str]]]:
    """The data lines of every scan, read in one pass (a file of many scans is read once):
    not headers, comments, MCA lines (``@A …``) or their backslash continuations."""
    scans: list[list[tuple[int, str]]] = []
    continued = False
    with open(path, encoding="utf-8", errors="replace") as f:
        for number, line in enumerate(f, start=1):
            if line.startswith("#S "):
                scans.append([])
                continued = False
                continue
            if continued:  # an MCA spectrum continues while its lines end in a backslash
                continued = line.rstrip().endswith("\\")
                continue
            text = line.strip()
            if not scans or not text or text.startswith("#"):
                continue
            if text.startswith("@"):
                continued = text.endswith("\\")
                continue
            scans[-1].append((number, text))
    return scans


def check_data_lines(path: Path, index: int, where: str, n_labels: int, n_points: int) -> None:
    """Refuse a scan whose data lines silx may have misread.

    Parameters
    ----------
    path : Path
        The SPEC file.
    index : int
        The scan's place in the file (silx ``Scan.index``, 0-based).
    where : str
        How to name the scan in a message (file and scan key).
    n_labels : int
        Number of ``#L`` labels.
    n_points : int
        Number of data lines silx read.

    Raises
    ------
    FileFormatError
        A data line does not hold one finite number per label, or silx read another number of
        lines than the scan has.
    """
    count = 0
    for number, text in _data_lines(path, index):
        count += 1
        cells = text.split()
        if len(cells) != n_labels:
            raise FileFormatError(
                f"{where}: line {number} has {len(cells)} values for {n_labels} column labels "
                f"(#L): {text[:80]!r}"
            )
        for cell in cells:
            try:
                value = float(cell)
            except ValueError:
                value = math.nan
            if not math.isfinite(value):
                raise FileFormatError(
                    f"{where}: line {number}: {cell!r} is not a finite number: {text[:80]!r}"
                )
    if count != n_points:
        raise FileFormatError(
            f"{where}: the scan has {count} data lines but silx read {n_points}; the file is "
            "malformed"
        )
