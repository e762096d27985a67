"""The HDF5 superblock, read with ``struct`` (format specification, section II.A), and HDF5's
metadata checksum (Jenkins lookup3): what :func:`pyscatter.io.safety.repair` needs to repair a
file HDF5 refuses to open.
"""

from __future__ import annotations

import dataclasses
import os
import struct

from pyscatter.errors import FileFormatError

_HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"


@dataclasses.dataclass(frozen=True)
class _Superblock:
    address: int  # absolute position of the signature
    version: int
    sizeof_addr: int
    base_address: int
    eof_address: int  # as stored (HDF5's "end of file address", really the end of allocation)
    eof_pos: int  # position of that field, relative to ``address``
    flags: int
    flags_pos: int
    checksum_pos: int | None  # v2/v3 only
    raw: bytes  # the superblock, from its signature to its end (checksum included)

    def put_address(self, raw: bytearray, pos: int, value: int) -> None:
        raw[pos : pos + self.sizeof_addr] = value.to_bytes(self.sizeof_addr, "little")


def _read_superblock(fd: int, path: str, size: int) -> _Superblock:
    """Locate and parse the superblock (format spec, section II.A) with ``struct``."""
    address = _locate_signature(fd, size)
    if address is None:
        raise FileFormatError(
            f"{path} is not an HDF5 file: no HDF5 signature at offset 0, 512, 1024, 2048, ... "
            f"(file size {size} bytes)"
        )
    head = os.pread(fd, 16, address)
    if len(head) < 16:
        raise FileFormatError(f"{path}: the HDF5 superblock is cut short")
    version = head[8]
    if version in (0, 1):
        sizeof_addr = head[13]
        flags_pos, flags_len = 20, 4
        first = 24 if version == 0 else 28
        length = first + 4 * sizeof_addr
        checksum_pos = None
    elif version in (2, 3):
        sizeof_addr = head[9]
        flags_pos, flags_len = 11, 1
        first = 12
        checksum_pos = first + 4 * sizeof_addr
        length = checksum_pos + 4
    else:
        raise FileFormatError(
            f"{path}: unsupported HDF5 superblock version {version}; expected 0, 1, 2 or 3"
        )
    if sizeof_addr not in (2, 4, 8, 16, 32):
        raise FileFormatError(f"{path}: corrupt HDF5 superblock (size of offsets {sizeof_addr})")
    raw = os.pread(fd, length, address)
    if len(raw) < length:
        raise FileFormatError(f"{path}: the HDF5 superblock is cut short")
    if checksum_pos is not None:
        stored = struct.unpack_from("<I", raw, checksum_pos)[0]
        if stored != _lookup3(raw[:checksum_pos]):
            raise FileFormatError(f"{path}: corrupt HDF5 superblock (checksum mismatch)")

    def address_at(i: int) -> int:
        return int.from_bytes(
            raw[first + i * sizeof_addr : first + (i + 1) * sizeof_addr], "little"
        )

    # v0/v1: base, free-space info, end of file, driver info; v2/v3: base, extension, end of file,
    # root object header. The end-of-file address is the third in both layouts.
    undefined = (1 << (8 * sizeof_addr)) - 1
    base, eof = address_at(0), address_at(2)
    if undefined in (base, eof):
        raise FileFormatError(f"{path}: corrupt HDF5 superblock (undefined base or end address)")
    return _Superblock(
        address=address,
        version=version,
        sizeof_addr=sizeof_addr,
        base_address=base,
        eof_address=eof,
        eof_pos=first + 2 * sizeof_addr,
        flags=int.from_bytes(raw[flags_pos : flags_pos + flags_len], "little"),
        flags_pos=flags_pos,
        checksum_pos=checksum_pos,
        raw=raw,
    )


def _locate_signature(fd: int, size: int) -> int | None:
    """Where HDF5 looks for its signature: 0, then 512, 1024, 2048, ... within the file."""
    address = 0
    while address + 8 <= size:
        if os.pread(fd, 8, address) == _HDF5_SIGNATURE:
            return address
        address = 512 if address == 0 else 2 * address
    return None


# Jenkins lookup3 ``hashlittle``, byte by byte, as HDF5's H5_checksum_lookup3 computes it.
_M32 = 0xFFFFFFFF


def _rot(x: int, k: int) -> int:
    return ((x << k) | (x >> (32 - k))) & _M32


def _lookup3(data: bytes, initval: int = 0) -> int:
    """Bob Jenkins' lookup3 ``hashlittle`` of ``data`` -- HDF5's metadata checksum."""
    a = b = c = (0xDEADBEEF + len(data) + initval) & _M32
    if not data:
        return c
    # Whole 12-byte blocks are mixed, except the last 1..12 bytes, which are zero-padded and
    # finalised (the switch with fall-through of the C code).
    n_mixed = 12 * ((len(data) - 1) // 12)
    padded = data + b"\0" * (n_mixed + 12 - len(data))
    for pos in range(0, n_mixed + 12, 12):
        x, y, z = struct.unpack_from("<III", padded, pos)
        a, b, c = (a + x) & _M32, (b + y) & _M32, (c + z) & _M32
        if pos == n_mixed:
            return _final(a, b, c)
        for shift_a, shift_b, shift_c in ((4, 6, 8), (16, 19, 4)):  # mix(a, b, c)
            a = ((a - c) & _M32) ^ _rot(c, shift_a)
            c = (c + b) & _M32
            b = ((b - a) & _M32) ^ _rot(a, shift_b)
            a = (a + c) & _M32
            c = ((c - b) & _M32) ^ _rot(b, shift_c)
            b = (b + a) & _M32
    raise AssertionError("unreachable")  # pragma: no cover


def _final(a: int, b: int, c: int) -> int:
    c = ((c ^ b) - _rot(b, 14)) & _M32
    a = ((a ^ c) - _rot(c, 11)) & _M32
    b = ((b ^ a) - _rot(a, 25)) & _M32
    c = ((c ^ b) - _rot(b, 16)) & _M32
    a = ((a ^ c) - _rot(c, 4)) & _M32
    b = ((b ^ a) - _rot(a, 14)) & _M32
    return ((c ^ b) - _rot(b, 24)) & _M32
