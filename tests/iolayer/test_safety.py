"""Tests of pyscatter.io.safety against real HDF5 files, real locks and real SIGKILLs."""

import fcntl
import hashlib
import os
import shutil
import struct
import subprocess
import sys
import textwrap
import zlib
from pathlib import Path

import h5py
import numpy as np
import pytest

from pyscatter.errors import FileBusyError, FileFormatError, InputError
from pyscatter.io import safety
from pyscatter.io.safety import (
    chunk_flag,
    fsync,
    job_lock,
    lock_holder,
    read_status,
    repair,
    setup_transaction,
    verify_flag,
    write_status,
)

CHANNEL = "Measurement_000/Channel_000"
NEW_GROUP = f"{CHANNEL}/Raw_Data-AzimuthalIntegration_000"


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------
def _spawn(script: str, *args: object, until: str) -> subprocess.Popen:
    """Start ``python -c script args`` and return once it printed the line ``until``."""
    proc = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(script), *map(str, args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.strip() == until:
            return proc
    proc.wait()
    raise AssertionError(f"child ended before printing {until!r}:\n{proc.stderr.read()}")


def _sigkill(proc: subprocess.Popen) -> None:
    proc.kill()  # SIGKILL on POSIX
    proc.wait()
    assert proc.returncode == -9
    for pipe in (proc.stdout, proc.stderr):
        if pipe is not None:
            pipe.close()


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _make_scan(path: Path, **file_kwargs) -> Path:
    """A small USID-like file: gzip-chunked frames, positions, attributes, one results group."""
    rng = np.random.default_rng(7)
    with h5py.File(path, "w", **file_kwargs) as f:
        channel = f.create_group(CHANNEL)
        f["Measurement_000"].attrs["instrument"] = "test beamline"
        channel.create_dataset(
            "Raw_Data",
            data=rng.poisson(50, size=(12, 32 * 32)).astype(np.uint32),
            chunks=(1, 32 * 32),
            compression="gzip",
        )
        channel["Position_Values"] = np.linspace(0.0, 1.0, 12)[:, None]
        old = channel.create_group("Raw_Data-Existing_000")
        old["Intensity"] = rng.random((12, 50)).astype(np.float32)
        old.attrs["parameters"] = '{"npt": 50}'
    return path


def _stored_raw(path: Path) -> dict[str, str]:
    """sha256 of the bytes stored on disk for every dataset (chunks as stored, compressed)."""
    digests = {}
    with h5py.File(path, "r") as f, open(path, "rb") as fh:

        def visit(name, obj):
            if not isinstance(obj, h5py.Dataset):
                return
            sha = hashlib.sha256()
            if obj.chunks:
                for i in range(obj.id.get_num_chunks()):
                    info = obj.id.get_chunk_info(i)
                    fh.seek(info.byte_offset)
                    sha.update(fh.read(info.size))
            else:
                fh.seek(obj.id.get_offset())
                sha.update(fh.read(obj.id.get_storage_size()))
            digests[name] = sha.hexdigest()

        f.visititems(visit)
    return digests


def _stored_bytes(path: Path) -> int:
    """Total bytes of stored dataset data (compressed chunks as stored)."""
    total = 0
    with h5py.File(path, "r") as f:

        def visit(name, obj):
            nonlocal total
            if isinstance(obj, h5py.Dataset):
                total += obj.id.get_storage_size()

        f.visititems(visit)
    return total


def _values(path: Path) -> dict[str, np.ndarray]:
    with h5py.File(path, "r") as f:
        out = {}
        f.visititems(lambda n, o: out.update({n: o[()]}) if isinstance(o, h5py.Dataset) else None)
        return out


def _superblock(path: Path, at: int = 0) -> bytes:
    with open(path, "rb") as fh:
        fh.seek(at)
        return fh.read(48)


# --------------------------------------------------------------------------------------------
# rule 1: job_lock
# --------------------------------------------------------------------------------------------
HOLDER = """
    import sys, time
    from pyscatter.io.safety import job_lock
    with job_lock(sys.argv[1], command="holder-job --frames 12"):
        print("locked", flush=True)
        time.sleep(60)
"""


def test_job_lock_refused_from_another_process_then_released_by_sigkill(tmp_path):
    path = _make_scan(tmp_path / "scan.h5")
    proc = _spawn(HOLDER, path, until="locked")
    try:
        with pytest.raises(FileBusyError) as busy:
            with job_lock(path):
                pass
        message = str(busy.value)
        assert f"pid {proc.pid}" in message and "holder-job --frames 12" in message
        assert str(path) in message
        holder = lock_holder(path)
        assert holder is not None and holder.pid == proc.pid and holder.command.startswith("holder")
        with pytest.raises(FileBusyError, match=f"pid {proc.pid}"):
            repair(path)  # repair takes the job lock itself when the caller does not hold it
    finally:
        _sigkill(proc)
    # The kernel dropped the flock; the lock file the killed holder left must not block.
    assert Path(f"{path}.lock").exists()
    assert lock_holder(path) is None
    with job_lock(path, command="next job") as info:
        assert info.pid == os.getpid()
        assert lock_holder(path) == info
        assert repair(path) == []  # held by this process: repair proceeds
    assert not Path(f"{path}.lock").exists()
    assert lock_holder(path) is None


def test_job_lock_refuses_a_second_lock_in_the_same_process_and_follows_symlinks(tmp_path):
    path = tmp_path / "scan.h5"
    link = tmp_path / "alias.h5"
    link.symlink_to(path)
    with job_lock(path, command="first"):
        with pytest.raises(FileBusyError, match=r"\(this process\)"):
            with job_lock(link):
                pass
    with job_lock(link):
        pass


# --------------------------------------------------------------------------------------------
# the superblock checksum
# --------------------------------------------------------------------------------------------
def test_lookup3_matches_jenkins_reference_vectors():
    # The test vectors printed by driver5() in Bob Jenkins' lookup3.c.
    assert safety._lookup3(b"") == 0xDEADBEEF
    assert safety._lookup3(b"", 0xDEADBEEF) == 0xBD5B7DDE
    assert safety._lookup3(b"Four score and seven years ago") == 0x17770551
    assert safety._lookup3(b"Four score and seven years ago", 1) == 0xCD628161


@pytest.mark.parametrize("userblock", [0, 1024])
def test_lookup3_equals_checksums_hdf5_wrote(tmp_path, userblock):
    path = _make_scan(tmp_path / "v3.h5", libver="latest", userblock_size=userblock)
    sb = _superblock(path, userblock)
    assert sb[:8] == b"\x89HDF\r\n\x1a\n" and sb[8] == 3 and sb[9] == 8
    assert safety._lookup3(sb[:44]) == struct.unpack("<I", sb[44:48])[0]
    # A longer structure: the root object header (version 2, "OHDR"), checksummed to its end.
    root = struct.unpack("<Q", sb[36:44])[0] + userblock
    with open(path, "rb") as fh:
        fh.seek(root)
        head = fh.read(4096)
    assert head[:4] == b"OHDR" and head[4] == 2
    flags = head[5]
    pos = 6 + (16 if flags & 0x20 else 0) + (4 if flags & 0x10 else 0)
    width = 1 << (flags & 0x03)
    size0 = int.from_bytes(head[pos : pos + width], "little")
    end = pos + width + size0
    assert end > 12 * 4  # several 12-byte blocks plus a tail
    assert safety._lookup3(head[:end]) == struct.unpack("<I", head[end : end + 4])[0]


# --------------------------------------------------------------------------------------------
# rule 3: repair
# --------------------------------------------------------------------------------------------
LATEST_WRITER = """
    import sys, time, h5py, numpy as np
    f = h5py.File(sys.argv[1], "w", libver="latest")
    f["values"] = np.arange(1000, dtype="f8") * 0.5
    frames = f.create_dataset("frames", shape=(6, 256), chunks=(1, 256), dtype="u4")
    for i in range(6):
        frames[i] = np.arange(256, dtype="u4") + i
    f.flush()
    print("written", flush=True)
    time.sleep(60)
"""


def test_repair_clears_status_flags_left_by_a_killed_latest_writer(tmp_path):
    path = tmp_path / "latest.h5"
    _sigkill(_spawn(LATEST_WRITER, path, until="written"))
    assert _superblock(path)[11] != 0
    with pytest.raises(OSError, match="consistency flags"):
        h5py.File(path, "r")

    # While another program holds the file's lock (as an HDF5 reader does), nothing is touched.
    fd = os.open(path, os.O_RDONLY)
    fcntl.flock(fd, fcntl.LOCK_SH)
    try:
        before = _sha(path)
        with pytest.raises(FileBusyError, match="another program has it open"):
            repair(path)
        assert _sha(path) == before
    finally:
        os.close(fd)

    messages = repair(path)
    assert len(messages) == 1 and messages[0].startswith("Cleared the file-consistency flags")
    assert _superblock(path)[11] == 0
    with h5py.File(path, "r") as f:
        np.testing.assert_array_equal(f["values"][()], np.arange(1000) * 0.5)
        np.testing.assert_array_equal(f["frames"][()], np.arange(256) + np.arange(6)[:, None])
    assert repair(path) == []


@pytest.mark.parametrize(("libver", "userblock"), [(None, 0), ("latest", 1024)])
def test_repair_extends_a_file_cut_short(tmp_path, libver, userblock):
    path = _make_scan(tmp_path / "cut.h5", libver=libver, userblock_size=userblock)
    with h5py.File(path, "r+") as f:  # a results dataset allocated last, never written
        dcpl = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
        dcpl.set_alloc_time(h5py.h5d.ALLOC_TIME_EARLY)
        res = f.create_dataset("res", shape=(4000,), dtype="f4", dcpl=dcpl, fill_time="never")
        res_end = res.id.get_offset() + res.id.get_storage_size()
    size = path.stat().st_size
    assert res_end == size  # the cut below only removes unwritten results space
    raw = _stored_raw(path)
    os.truncate(path, size - 6000)
    with pytest.raises(OSError, match="truncated file"):
        h5py.File(path, "r")
    _sigkill(_spawn(HOLDER, path, until="locked"))  # a pyscatter job died on it: its record
    messages = repair(path)
    assert (
        len(messages) == 1
        and messages[0].startswith("Extended")
        and "6000 zero bytes" in messages[0]
    )
    assert path.stat().st_size == size
    assert _stored_raw(path) == raw
    with h5py.File(path, "r") as f:
        assert f[f"{CHANNEL}/Raw_Data"].shape == (12, 1024)
    assert repair(path) == []


def _cut(tmp_path: Path, missing: int) -> tuple[Path, str]:
    path = _make_scan(tmp_path / "cut.h5")
    with h5py.File(path, "r+") as f:
        dcpl = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
        dcpl.set_alloc_time(h5py.h5d.ALLOC_TIME_EARLY)
        f.create_dataset("res", shape=(40000,), dtype="f4", dcpl=dcpl, fill_time="never")
    os.truncate(path, path.stat().st_size - missing)
    return path, _sha(path)


def test_repair_refuses_a_cut_file_no_pyscatter_job_left(tmp_path):
    """Issue 20: a truncated file (a copy cut short) was 'repaired' by appending zeros."""
    path, sha = _cut(tmp_path, 6000)
    with pytest.raises(FileFormatError, match=r"is truncated: .* no pyscatter job was interrupted"):
        repair(path)
    assert _sha(path) == sha  # untouched
    assert not Path(f"{path}.lock").exists()


def test_repair_refuses_a_cut_larger_than_a_job_leaves(tmp_path):
    path, sha = _cut(tmp_path, 150000)  # most of the file: more than the last barrier's writes
    _sigkill(_spawn(HOLDER, path, until="locked"))
    with pytest.raises(FileFormatError, match="bytes are missing, more than an interrupted"):
        repair(path)
    assert _sha(path) == sha


@pytest.mark.parametrize(("libver", "userblock"), [(None, 0), ("latest", 1024)])
def test_repair_raises_a_stale_end_of_allocation(tmp_path, libver, userblock):
    # The state a kill leaves when chunks and their index reached the disk after the last
    # superblock write: the superblock's end-of-allocation is the one of an earlier flush.
    path = tmp_path / "stale.h5"
    with h5py.File(path, "w", libver=libver, userblock_size=userblock) as f:
        d = f.create_dataset("d", shape=(8, 1000), chunks=(1, 1000), dtype="f8")
        d[0] = 0.0
        f.flush()
        stale_sb = _superblock(path, userblock)
        for i in range(1, 8):
            d[i] = i
    sb = bytearray(_superblock(path, userblock))
    if sb[8] == 0:
        sb[40:48] = stale_sb[40:48]
    else:
        sb[28:36] = stale_sb[28:36]
        sb[44:48] = struct.pack("<I", safety._lookup3(bytes(sb[:44])))
    with open(path, "r+b") as fh:
        fh.seek(userblock)
        fh.write(sb)
    stale_eoa = int.from_bytes(stale_sb[40:48] if sb[8] == 0 else stale_sb[28:36], "little")
    assert stale_eoa < path.stat().st_size
    with pytest.raises(OSError, match="addr overflow"):
        with h5py.File(path, "r") as f:
            f["d"][7]

    if libver is None:  # the file opens (reads fail): a real HDF5 reader holds its lock
        with h5py.File(path, "r"):
            with pytest.raises(FileBusyError, match="another program has it open"):
                repair(path)

    messages = repair(path)
    assert len(messages) == 1 and messages[0].startswith("Raised the end-of-allocation")
    assert f"from {stale_eoa} to the file size, {path.stat().st_size} bytes" in messages[0]
    with h5py.File(path, "r") as f:
        np.testing.assert_array_equal(f["d"][()], np.repeat(np.arange(8.0), 1000).reshape(8, 1000))
    assert repair(path) == []


def test_repair_refuses_missing_non_hdf5_and_corrupt_files(tmp_path):
    with pytest.raises(FileFormatError, match="no such file"):
        repair(tmp_path / "missing.h5")
    text = tmp_path / "notes.h5"
    text.write_bytes(b"not an HDF5 file\n" * 200)
    with pytest.raises(FileFormatError, match=r"notes\.h5 is not an HDF5 file"):
        repair(text)
    bad = _make_scan(tmp_path / "bad.h5", libver="latest")
    with open(bad, "r+b") as fh:  # damage the root object header address
        fh.seek(36)
        fh.write(b"\x99")
    with pytest.raises(FileFormatError, match="checksum mismatch"):
        repair(bad)


# --------------------------------------------------------------------------------------------
# rule 4: setup_transaction
# --------------------------------------------------------------------------------------------
SETUP = f"""
    import os, sys, time, h5py, numpy as np
    from pyscatter.io import safety
    path, stage = sys.argv[1], sys.argv[2]

    def point(name):
        print(name, flush=True)
        if name == stage:
            time.sleep(60)

    unlink = os.unlink
    def unlink_journal_late(p, *args, **kwargs):
        if str(p).endswith(".journal"):
            point("committing")  # body done, file flushed and fsynced, journal still there
        return unlink(p, *args, **kwargs)
    os.unlink = unlink_journal_late

    def early():
        dcpl = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
        dcpl.set_alloc_time(h5py.h5d.ALLOC_TIME_EARLY)
        return dcpl

    with h5py.File(path, "r+") as f:
        with safety.setup_transaction(f):
            point("entered")
            group = h5py.Group(h5py.h5g.create(f.id, None))
            group.create_dataset("Intensity", shape=(12, 200), chunks=(1, 200), dtype="f4",
                                 dcpl=early(), fill_time="never")
            group.create_dataset("completed_positions", shape=(12,), dtype="u8", fillvalue=0,
                                 dcpl=early(), fill_time="alloc")
            group.attrs["parameters"] = '{{"npt": 200}}'
            f.flush()
            point("built")
            f["{NEW_GROUP}"] = group
            f.flush()
            point("linked")
    print("committed", flush=True)
"""


@pytest.mark.parametrize(
    ("stage", "libver"),
    [
        ("entered", None),
        ("built", None),
        ("linked", None),
        ("committing", None),
        ("linked", "latest"),
    ],
)
def test_setup_transaction_killed_inside_is_rolled_back(tmp_path, stage, libver):
    path = _make_scan(tmp_path / "scan.h5", libver=libver)
    original, raw, values = path.read_bytes(), _stored_raw(path), _values(path)
    stored = _stored_bytes(path)
    _sigkill(_spawn(SETUP, path, stage, until=stage))

    journal = Path(f"{path}.journal")
    assert journal.exists()
    # The journal holds the metadata, not the frames: at most the bytes outside the stored data.
    assert journal.stat().st_size < len(original) - stored + 1024
    if stage != "entered":
        assert path.stat().st_size > len(original)  # the set-up allocated its datasets
    if stage in ("linked", "committing"):  # without the journal the half-done set-up would stay
        copy = tmp_path / "copy.h5"
        shutil.copyfile(path, copy)
        repair(copy)  # no journal beside the copy: at most the status flags are cleared
        with h5py.File(copy, "r") as f:
            assert NEW_GROUP in f

    messages = repair(path)
    assert messages[0].startswith("Rolled back an interrupted set-up")
    if libver == "latest":  # the restored superblock is the one of a file open for writing
        assert len(messages) == 2 and messages[1].startswith("Cleared the file-consistency flags")
    else:
        assert len(messages) == 1
    assert not journal.exists()
    # Byte for byte the file before the transaction, except the 4-byte consistency-flags field of
    # the version-0 superblock, which HDF5 sets while a file is open for writing (and ignores for
    # superblocks before version 3).
    after = path.read_bytes()
    assert len(after) == len(original)
    assert [i for i in range(len(after)) if after[i] != original[i]] in ([], [20])
    assert _stored_raw(path) == raw
    with h5py.File(path, "r") as f:
        assert NEW_GROUP not in f
        assert f[f"{CHANNEL}/Raw_Data-Existing_000"].attrs["parameters"] == '{"npt": 50}'
    after = _values(path)
    assert after.keys() == values.keys()
    for name, array in values.items():
        np.testing.assert_array_equal(after[name], array)
    assert repair(path) == []


SETUP_UNLINKED = f"""
    import os, shutil, sys, time, h5py, numpy as np
    from pyscatter.io import safety
    path = sys.argv[1]
    with h5py.File(path, "r+") as f:
        group = h5py.Group(h5py.h5g.create(f.id, None))  # built before, as processes do
        dcpl = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
        dcpl.set_alloc_time(h5py.h5d.ALLOC_TIME_EARLY)
        group.create_dataset("Intensity", shape=(2000, 500), chunks=(100, 500), dtype="f4",
                             dcpl=dcpl, fillvalue=0, fill_time="alloc")  # 4 MB allocated
        safety.fsync(f)
        shutil.copyfile(path, path + ".before")  # what a rollback must give back
        print("built", flush=True)
        with safety.setup_transaction(f, unlinked=[group]):
            f["{NEW_GROUP}"] = group
            f.flush()
            print("linked", flush=True)
            time.sleep(60)
"""


def test_setup_transaction_leaves_the_unlinked_outputs_out_of_the_journal(tmp_path):
    """A long scan's outputs (allocated early, before the transaction) are not metadata: the
    journal stays small, and a set-up killed after the link still rolls back byte for byte."""
    path = _make_scan(tmp_path / "scan.h5")
    _sigkill(_spawn(SETUP_UNLINKED, path, until="linked"))
    journal = Path(f"{path}.journal")
    before = Path(f"{path}.before").read_bytes()
    assert len(before) > 4_000_000  # the outputs are in the file ...
    assert journal.stat().st_size < 100_000  # ... not in the journal
    messages = repair(path)
    assert len(messages) == 1 and messages[0].startswith("Rolled back an interrupted set-up")
    after = path.read_bytes()
    assert len(after) == len(before)
    assert [i for i in range(len(after)) if after[i] != before[i]] in ([], [20])
    with h5py.File(path, "r") as f:
        assert NEW_GROUP not in f
    assert repair(path) == []


def test_setup_transaction_completed_leaves_no_journal(tmp_path):
    path = _make_scan(tmp_path / "scan.h5")
    raw = _stored_raw(path)
    with job_lock(path), h5py.File(path, "r+") as f:
        group = h5py.Group(h5py.h5g.create(f.id, None))
        group["Intensity"] = np.ones((12, 20), dtype=np.float32)
        with setup_transaction(f):
            assert Path(f"{path}.journal").exists()
            f[NEW_GROUP] = group
        assert not Path(f"{path}.journal").exists()
    assert repair(path) == []
    with h5py.File(path, "r") as f:
        np.testing.assert_array_equal(f[f"{NEW_GROUP}/Intensity"][()], 1.0)
    assert {k: v for k, v in _stored_raw(path).items() if k in raw} == raw


def test_setup_transaction_body_error_keeps_the_file_consistent(tmp_path):
    path = _make_scan(tmp_path / "scan.h5")
    with h5py.File(path, "r+") as f:
        with pytest.raises(ValueError, match="boom"):
            with setup_transaction(f):
                h5py.Group(h5py.h5g.create(f.id, None))["x"] = np.zeros(3)
                raise ValueError("boom")
        assert not Path(f"{path}.journal").exists()
    assert repair(path) == []
    with h5py.File(path, "r") as f:
        assert NEW_GROUP not in f


def test_setup_transaction_refuses_bad_use(tmp_path):
    path = _make_scan(tmp_path / "scan.h5")
    Path(f"{path}.journal").write_bytes(b"left over")
    with h5py.File(path, "r+") as f, pytest.raises(FileFormatError, match="call repair"):
        with setup_transaction(f):
            pass
    with pytest.raises(FileFormatError, match="not a pyscatter set-up journal"):
        repair(path)  # someone else's file: never deleted
    assert Path(f"{path}.journal").read_bytes() == b"left over"
    Path(f"{path}.journal").unlink()
    with h5py.File(path, "r") as f, pytest.raises(InputError, match="opened for writing"):
        with setup_transaction(f):
            pass
    core = tmp_path / "core.h5"
    with h5py.File(core, "w", driver="core") as f, pytest.raises(InputError, match="'core' driver"):
        fsync(f)


@pytest.mark.parametrize("damage", ["empty", "truncated", "flipped", "intact"])
def test_setup_journal_damaged_is_discarded_intact_is_replayed(tmp_path, damage):
    path = _make_scan(tmp_path / "scan.h5")
    journal = Path(f"{path}.journal")
    saved = tmp_path / "journal.copy"
    with h5py.File(path, "r+") as f:
        with setup_transaction(f):  # a body that changes nothing: keep its journal
            shutil.copyfile(journal, saved)
    data = bytearray(saved.read_bytes())
    if damage == "empty":  # crashed right after creating it
        data = bytearray()
    elif damage == "truncated":  # crashed while writing the journal
        data = data[: len(data) - 7]
    elif damage == "flipped":
        data[len(data) // 2] ^= 0xFF
    journal.write_bytes(bytes(data))
    before = _sha(path)
    messages = repair(path)
    assert len(messages) == 1
    if damage == "intact":
        assert messages[0].startswith("Rolled back")
    else:
        assert messages[0].startswith("Discarded the incomplete set-up journal")
        assert _sha(path) == before  # an incomplete journal means the file was never touched
    assert not journal.exists()
    with h5py.File(path, "r") as f:
        assert f[f"{CHANNEL}/Raw_Data"].shape == (12, 1024)


# --------------------------------------------------------------------------------------------
# rules 5, 6, 8: barrier, flags, status
# --------------------------------------------------------------------------------------------
def test_fsync_makes_written_bytes_visible_in_the_file(tmp_path):
    path = tmp_path / "f.h5"
    with h5py.File(path, "w") as f:
        d = f.create_dataset("d", shape=(64,), dtype="<u4")
        d[:] = np.arange(64, dtype="<u4") + 0xABC0000
        fsync(f)
        with open(path, "rb") as fh:  # a second reader of the file, while it is open for writing
            fh.seek(d.id.get_offset())
            on_disk = np.frombuffer(fh.read(256), dtype="<u4")
        np.testing.assert_array_equal(on_disk, d[()])


def test_chunk_flag_is_crc32_of_the_contiguous_bytes(tmp_path):
    rng = np.random.default_rng(1)
    block = rng.random((6, 40)).astype(np.float32)
    flag = chunk_flag(block)
    assert flag == (1 << 32) | zlib.crc32(block.tobytes())
    assert chunk_flag(block.T) == chunk_flag(np.ascontiguousarray(block.T))  # any view
    assert verify_flag(np.uint64(flag), block)
    assert not verify_flag(0, block)  # the fill value of the completion dataset
    assert not verify_flag(0, np.zeros(0))  # even for an empty chunk
    changed = block.copy()
    changed[3, 7] = np.nextafter(changed[3, 7], 2)  # one ulp
    assert not verify_flag(flag, changed)
    path = tmp_path / "flags.h5"  # round trip through HDF5, as a resume reads it back
    with h5py.File(path, "w") as f:
        f["data"] = block
        f.create_dataset("completed", shape=(1,), dtype="u8", fillvalue=0)[0] = flag
    with h5py.File(path, "r") as f:
        assert verify_flag(f["completed"][0], f["data"][()])


def test_status_file_round_trip(tmp_path):
    path = tmp_path / "scan.h5"
    assert read_status(path) is None
    status = write_status(path, done=np.int64(3), total=12, fraction=np.float32(0.25))
    assert status == Path(f"{path}.status.json")
    first = read_status(path)
    assert first["done"] == 3 and first["total"] == 12 and first["fraction"] == 0.25
    assert first["pid"] == os.getpid() and "updated" in first
    write_status(path, done=12, total=12, positions=np.arange(3))
    assert read_status(path)["done"] == 12 and read_status(path)["positions"] == [0, 1, 2]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["scan.h5.status.json"]  # no tmp left
    with pytest.raises(TypeError, match="cannot store object"):
        write_status(path, bad=object())
