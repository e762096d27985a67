"""Live sessions: a process driven block by block on a source still being written.

Every result is checked bit for bit against the offline ``compute()`` (``run_on_file``) of the
same parameters on the same source, whose default block size is larger. The live files here are
made by hand with h5py from a translated scan (``live_id``, ``live_frames``; a resizable
``Raw_Data`` for an unbounded series), as ``pyscatter.live.livefile`` writes them.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import h5py
import numpy as np
import pytest

from pyscatter import datasets
from pyscatter.errors import FileBusyError, InputError
from pyscatter.io import safety
from pyscatter.io.record import FLAGS, verified_positions
from pyscatter.io.results import find_results
from pyscatter.processes.base import run_on_file, source_fingerprint
from pyscatter.processes.fitting import ProfileFit
from pyscatter.processes.integration import AzimuthalIntegration
from pyscatter.processes.live_session import live_sources, source_ready
from pyscatter.processes.order import OrderParameter
from pyscatter.processes.profiles import AzimuthalProfiles
from pyscatter.processes.requests import request_hash
from pyscatter.processes.sectors import SectorIntegration

RAW = "Measurement_000/Channel_000/Raw_Data"
CHANNEL = "Measurement_000/Channel_000"
ROOT = Path(__file__).resolve().parents[2]
INTEGRATE = dict(npt=90, unit="q_nm^-1", error_model="poisson", progress=False)


@pytest.fixture(scope="module")
def scan():
    return datasets.oriented_map((3, 4), kappa_max=12, rng=5)


@pytest.fixture(scope="module")
def translated(tmp_path_factory, scan):
    from conftest import write_scan

    return write_scan(tmp_path_factory.mktemp("live") / "scan.h5", scan)


def profile_options(scan):
    return dict(
        q=[r.q_nm for r in scan.rings],
        half_width=[2 * r.width_nm for r in scan.rings],
        npt_azim=90,
        polarization_factor=datasets.POLARIZATION_FACTOR,
        progress=False,
    )


def live_copy(translated, path) -> Path:
    """A copy of the translated scan marked as a live file, no frame measured yet."""
    shutil.copy(translated, path)
    with h5py.File(path, "r+") as h5:
        raw = h5[RAW]
        raw.attrs["live_id"] = str(uuid.uuid4())
        h5[CHANNEL].create_dataset("live_frames", data=np.zeros(raw.shape[0], np.uint64))
    return Path(path)


def measure(h5: h5py.File, indices) -> None:
    """What the live file's writer does once frames are written: their live_frames records."""
    raw, frames = h5[RAW], h5[f"{CHANNEL}/live_frames"]
    for i in indices:
        frames[int(i)] = safety.chunk_flag(raw[int(i)])
    h5.flush()


@contextlib.contextmanager
def watch(path):
    """The watch's hold on its file: the job lock for its whole life, repaired, open r+."""
    with safety.job_lock(path, command="test watch"):
        safety.repair(path)
        with safety.open_for_writing(path) as h5:
            yield h5


def values(group: h5py.Group) -> dict[str, np.ndarray]:
    return {name: group[name][()] for name in json.loads(group.attrs["output_order"])}


def bits(outputs: dict[str, np.ndarray]) -> dict[str, tuple[str, tuple, bytes]]:
    return {k: (v.dtype.str, v.shape, v.tobytes()) for k, v in outputs.items()}


def arrays(group: h5py.Group) -> dict[str, tuple[str, tuple, bytes]]:
    """The outputs' bits: dtype, shape and bytes of each (NaN payloads included)."""
    return bits(values(group))


def offline(path, process, **kwargs) -> dict[str, bytes]:
    """The results of an ordinary run on ``path`` (a copy made before any live processing)."""
    summary = run_on_file(path, process, **kwargs)
    with h5py.File(path, "r") as h5:
        group = h5[summary.group]
        assert int(group.attrs["positions_per_chunk"]) > 1  # a block size of its own
        return arrays(group)


def arrivals(n, rng, batches=4):
    """Frame indices in a random order, cut into ``batches`` arrivals (out of order)."""
    order = np.random.default_rng(rng).permutation(n)
    return np.array_split(order, batches)


# ---------------------------------------------------------------------------------- bits
CASES = {
    "integrate_1d": (AzimuthalIntegration, lambda scan: INTEGRATE),
    "integrate_2d": (AzimuthalIntegration, lambda scan: dict(INTEGRATE, npt=60, npt_azim=36)),
    "integrate_2d_azimuthal": (
        AzimuthalIntegration,
        lambda scan: dict(INTEGRATE, npt=60, npt_azim=36, error_model="azimuthal"),
    ),
    "integrate_1d_azimuthal": (
        AzimuthalIntegration,
        lambda scan: dict(INTEGRATE, error_model="azimuthal"),
    ),
    "profiles": (AzimuthalProfiles, profile_options),
    "sectors": (
        SectorIntegration,
        lambda scan: dict(n_sectors=4, width_deg=30, npt=60, progress=False),
    ),
}


@pytest.mark.parametrize("case", [CASES[k] for k in sorted(CASES)], ids=sorted(CASES))
def test_frame_process_live_equals_offline(tmp_path, translated, scan, case):
    process, options = case
    kwargs = options(scan)
    path = live_copy(translated, tmp_path / "live.h5")
    reference = offline(shutil.copy(path, tmp_path / "offline.h5"), process, **kwargs)
    with watch(path) as h5:
        raw = h5[RAW]
        sess = process(raw, **kwargs).live_session(locked=True)
        assert sess.positions_per_block == 1
        counts = []
        for batch in arrivals(raw.shape[0], rng=1):
            measure(h5, batch)
            ready = source_ready(raw)
            counts.append(sess.advance(ready))
            assert np.array_equal(sess.done_positions(), ready)  # one position per block
        assert sum(counts) == raw.shape[0] and sess.complete()
        assert sess.advance(np.ones(raw.shape[0], bool)) == 0
        assert arrays(sess.group) == reference
        assert verified_positions(sess.group).all()
        sess.close()


def chain(path, scan, stages, live: bool):
    """profiles → fit → order on ``path``: offline (run_on_file) or live, frames arriving in
    ``stages`` batches; the results of each step in order."""
    if not live:
        prof = run_on_file(path, AzimuthalProfiles, **profile_options(scan))
        fit = run_on_file(path, ProfileFit, model="maier_saupe", progress=False)
        order = run_on_file(path, OrderParameter, source=fit.group, progress=False)
        with h5py.File(path, "r") as h5:
            return [values(h5[g.group]) for g in (prof, fit, order)]
    with watch(path) as h5:
        raw = h5[RAW]
        profiles = AzimuthalProfiles(raw, **profile_options(scan)).live_session(locked=True)
        with live_sources():  # built on groups that are not complete yet
            fitting = ProfileFit(
                profiles.group["Intensity"], model="maier_saupe", progress=False
            ).live_session(locked=True)
            ordering = OrderParameter(fitting.group, progress=False).live_session(locked=True)
        for batch in arrivals(raw.shape[0], rng=2, batches=stages):
            measure(h5, batch)
            profiles.advance(source_ready(raw))
            fitting.advance(profiles.done_positions())
            ordering.advance(fitting.done_positions())
            assert np.array_equal(ordering.done_positions(), source_ready(raw))
            # a results source says which positions are done, from its verified flags
            assert np.array_equal(source_ready(fitting.group["status"]), source_ready(raw))
        return [values(s.group) for s in (profiles, fitting, ordering)]


def test_chain_profiles_fit_order_live(tmp_path, translated, scan):
    """The live chain runs on partial sources; profiles are the offline bits (the fit's bits
    are compared in the next test)."""
    path = live_copy(translated, tmp_path / "live.h5")
    ref_path = shutil.copy(path, tmp_path / "offline.h5")
    reference = chain(ref_path, scan, 3, live=False)
    got = chain(path, scan, 3, live=True)
    assert bits(got[0]) == bits(reference[0])
    for live, offline_ in zip(got[1:], reference[1:], strict=True):
        assert live.keys() == offline_.keys()
        for name in live:
            np.testing.assert_allclose(live[name], offline_[name], rtol=1e-9, atol=1e-12)


def test_chain_fit_bits_equal_offline(tmp_path, translated, scan):
    path = live_copy(translated, tmp_path / "live.h5")
    reference = chain(shutil.copy(path, tmp_path / "offline.h5"), scan, 3, live=False)
    assert bits(chain(path, scan, 3, live=True)[1]) == bits(reference[1])


def test_order_live_equals_offline(tmp_path, translated, scan):
    """Order parameters on the same fit results, live one position a block: the offline bits."""
    path = live_copy(translated, tmp_path / "live.h5")
    chain(path, scan, 1, live=False)  # profiles, fit and order offline
    with h5py.File(path, "r") as h5:
        fit, order = find_results(h5, "fit")[0], find_results(h5, "order")[0]
        reference, fit_name, order_name = arrays(order), fit.name, order.name
    with h5py.File(path, "r+") as h5:  # the same fit results, without their order group
        del h5[order_name]
    with watch(path) as h5:
        source = h5[fit_name]
        with OrderParameter(source, progress=False).live_session(locked=True) as sess:
            for batch in arrivals(source["status"].shape[0], rng=4):
                ready = sess.done_positions()
                ready[batch] = True
                sess.advance(ready)
            assert sess.complete() and arrays(sess.group) == reference


# ---------------------------------------------------------------------------------- reuse
def test_live_results_are_reused_by_compute(tmp_path, translated):
    path = live_copy(translated, tmp_path / "live.h5")
    with h5py.File(path, "r") as h5:
        live_id = h5[RAW].attrs["live_id"]
    with watch(path) as h5:
        raw = h5[RAW]
        assert source_fingerprint(raw) == f"live:{live_id}"  # before the checksum
        assert "sha256" in raw.attrs
        key = request_hash(AzimuthalIntegration, raw, INTEGRATE)
        assert key is not None and key == request_hash(AzimuthalIntegration, raw, INTEGRATE)
        measure(h5, range(raw.shape[0]))
        with AzimuthalIntegration(raw, **INTEGRATE).live_session(locked=True) as sess:
            sess.advance(source_ready(raw))
            name = sess.group.name
    summary = run_on_file(path, AzimuthalIntegration, **INTEGRATE)
    assert summary.reused and summary.group == name
    with h5py.File(path, "r+") as h5:  # the Python API too
        proc = AzimuthalIntegration(h5[RAW], **INTEGRATE)
        assert proc.compute().name == name and proc.summary.reused
    again = run_on_file(path, AzimuthalIntegration, **INTEGRATE)  # recorded its request
    assert again.reused and again.group == name


def test_session_resumes_a_partial_offline_group(tmp_path, translated):
    """A group compute() left partial is continued with its own block size, not duplicated."""
    path = live_copy(translated, tmp_path / "live.h5")
    reference = offline(shutil.copy(path, tmp_path / "ref.h5"), AzimuthalIntegration, **INTEGRATE)
    kwargs = dict(INTEGRATE, max_mem_mb=2)  # small blocks offline
    with h5py.File(path, "r+") as h5:
        proc = AzimuthalIntegration(h5[RAW], **kwargs)
        group = proc.compute()
        size = int(group.attrs["positions_per_chunk"])
        assert 1 < size < h5[RAW].shape[0]
        group[FLAGS][1] = 0  # an interrupted run: block 1 not done
        before, name = group[FLAGS][()], group.name
    with watch(path) as h5:
        raw = h5[RAW]
        measure(h5, range(raw.shape[0]))
        sess = AzimuthalIntegration(raw, **kwargs).live_session(locked=True)
        assert sess.group.name == name and sess.positions_per_block == size
        assert sess.advance(source_ready(raw)) == 1
        assert np.array_equal(sess.group[FLAGS][()] != 0, np.ones_like(before, bool))
        assert arrays(sess.group) == reference
        sess.close()


# ---------------------------------------------------------------------------------- locks
def _try_lock(path) -> str:
    code = textwrap.dedent(
        f"""
        from pyscatter.io import safety
        from pyscatter.errors import FileBusyError
        try:
            with safety.job_lock({str(path)!r}):
                print("locked")
        except FileBusyError:
            print("busy")
        """
    )
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def test_locking(tmp_path, translated):
    path = live_copy(translated, tmp_path / "live.h5")
    with h5py.File(path, "r+") as h5:
        proc = AzimuthalIntegration(h5[RAW], **INTEGRATE)
        with pytest.raises(InputError, match="does not hold its job lock"):
            proc.live_session(locked=True)
        with proc.live_session() as sess:  # takes the lock itself, for its life
            assert _try_lock(path) == "busy"
            sess.advance(np.zeros(12, bool))
        assert _try_lock(path) == "locked"
    with watch(path) as h5:  # the watch holds the lock; sessions and compute() run under it
        raw = h5[RAW]
        with AzimuthalIntegration(raw, **INTEGRATE).live_session(locked=True) as sess:
            assert _try_lock(path) == "busy"
            measure(h5, range(3))
            assert sess.advance(source_ready(raw)) == 3
        other = AzimuthalIntegration(raw, **dict(INTEGRATE, npt=50))
        other.compute()  # reentrant under the watch's lock
        assert other.summary.computed_positions == raw.shape[0]
        assert _try_lock(path) == "busy"
        with pytest.raises(FileBusyError):  # the same process cannot take it twice directly
            with safety.job_lock(path):
                pass
    with h5py.File(path, "r") as h5, pytest.raises(InputError, match="read-only"):
        AzimuthalIntegration(h5[RAW], **INTEGRATE).live_session()


# ---------------------------------------------------------------------------------- aborted
def test_never_measured_positions_as_offline(tmp_path, translated):
    path = live_copy(translated, tmp_path / "live.h5")
    valid = np.ones(12, bool)
    valid[[5, 9, 10, 11]] = False  # an aborted scan: 9.. never came, 5 was skipped
    ref = shutil.copy(path, tmp_path / "ref.h5")
    with h5py.File(ref, "r+") as h5:
        h5[CHANNEL].create_dataset("valid_positions", data=valid.astype(np.uint8))
    reference = offline(ref, AzimuthalIntegration, **INTEGRATE)
    with watch(path) as h5:
        raw = h5[RAW]
        sess = AzimuthalIntegration(raw, **INTEGRATE).live_session(locked=True)
        measure(h5, np.flatnonzero(valid))
        assert sess.advance(source_ready(raw)) == 8
        # finalize: the live file records the positions never measured
        h5[CHANNEL].create_dataset("valid_positions", data=valid.astype(np.uint8))
        assert sess.advance(np.ones(12, bool)) == 4
        assert arrays(sess.group) == reference
        assert np.isnan(sess.group["Intensity"][~valid]).all()
        sess.close()


# ---------------------------------------------------------------------------------- growth
def series_file(translated, path, n: int, live_id: str) -> Path:
    """An unbounded live series: Raw_Data of the first ``n`` frames, resizable on positions,
    one position dim ``Image``, ``live_frames`` and ``live_id``."""
    shutil.copy(translated, path)
    with h5py.File(translated, "r") as src:
        frames = src[RAW][()]
    with h5py.File(path, "r+") as h5:
        chan = h5[CHANNEL]
        spec = (chan["Spectroscopic_Indices"], chan["Spectroscopic_Values"])
        for name in ("Raw_Data", "Frame_Checksums", "Position_Indices", "Position_Values"):
            del chan[name]
        del h5["Measurement_000/Raw_Frames"]
        raw = chan.create_dataset(
            "Raw_Data",
            shape=(0, frames.shape[1]),
            maxshape=(None, frames.shape[1]),
            chunks=(1, frames.shape[1]),
            dtype=frames.dtype,
        )
        inds = chan.create_dataset("Position_Indices", (0, 1), np.uint32, maxshape=(None, 1))
        vals = chan.create_dataset("Position_Values", (0, 1), np.float64, maxshape=(None, 1))
        for dset in (inds, vals):
            dset.attrs["labels"] = ["Image"]
            dset.attrs["units"] = [""]
        for key, obj in (("Position_Indices", inds), ("Position_Values", vals)):
            raw.attrs[key] = obj.ref
        raw.attrs["Spectroscopic_Indices"] = spec[0].ref
        raw.attrs["Spectroscopic_Values"] = spec[1].ref
        raw.attrs["sha256_of"] = "frame values"  # what marks a pyscatter translation
        raw.attrs["quantity"] = "Counts"
        raw.attrs["units"] = "counts"
        raw.attrs["live_id"] = live_id
        chan.create_dataset("live_frames", (0,), np.uint64, maxshape=(None,), chunks=(64,))
        grow(h5, frames, n)
    return Path(path)


def grow(h5: h5py.File, frames: np.ndarray, n: int) -> None:
    """The live writer appending frames up to ``n`` (resized, written, recorded)."""
    chan = h5[CHANNEL]
    old = chan["Raw_Data"].shape[0]
    for name in ("Raw_Data", "Position_Indices", "Position_Values", "live_frames"):
        chan[name].resize(n, axis=0)
    chan["Raw_Data"][old:n] = frames[old:n]
    chan["Position_Indices"][old:n, 0] = np.arange(old, n)
    chan["Position_Values"][old:n, 0] = np.arange(old, n)
    h5.flush()
    measure(h5, range(old, n))


READER = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    import pyscatter
    from pyscatter.io.xarray import to_xarray
    path = sys.argv[1]
    with pyscatter.open(path) as f:
        group = f.results("AzimuthalIntegration")[-1]
        intensity = f.read(group, "Intensity")
        verified = f.verified(group)
    ds = to_xarray(path, "integrate")
    print(json.dumps({
        "rows": intensity.shape[0],
        "finite": np.isfinite(intensity).all(axis=1).tolist(),
        "verified": verified.tolist(),
        "xr_complete": ds["complete"].values.ravel().tolist(),
        "xr_finite": np.isfinite(ds["Intensity"].values).all(axis=-1).ravel().tolist(),
        "xr_sigma_finite": np.isfinite(ds["Intensity_Sigma"].values).all(axis=-1).ravel().tolist(),
    }))
    """
)


def read_elsewhere(path) -> dict:
    """What another process reads, read-only and without locking, while the watch writes."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    out = subprocess.run(
        [sys.executable, "-c", READER, str(path)], capture_output=True, text=True, env=env
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_growing_series_and_readers(tmp_path, translated):
    with h5py.File(translated, "r") as src:
        frames = src[RAW][()]
    live_id = str(uuid.uuid4())
    ref = series_file(translated, tmp_path / "ref.h5", 12, live_id)
    reference = offline(ref, AzimuthalIntegration, **INTEGRATE)
    path = series_file(translated, tmp_path / "live.h5", 5, live_id)
    with watch(path) as h5:
        raw = h5[RAW]
        sess = AzimuthalIntegration(raw, **INTEGRATE).live_session(locked=True)
        intensity = sess.group["Intensity"]
        assert intensity.maxshape == (None, 90) and intensity.chunks == (1, 90)
        assert intensity.compression is None and np.isnan(intensity.fillvalue)
        assert sess.advance(np.arange(5) < 3) == 3
        seen = read_elsewhere(path)  # 3 of 5 done
        assert seen["verified"] == [True] * 3 + [False] * 2
        assert seen["finite"] == seen["verified"] == seen["xr_complete"] == seen["xr_finite"]
        grow(h5, frames, 9)  # the source grew; the group has not yet
        seen = read_elsewhere(path)
        assert seen["rows"] == 5 and seen["xr_complete"] == [True] * 3 + [False] * 6
        assert seen["xr_finite"] == seen["xr_complete"] == seen["xr_sigma_finite"]
        assert sess.advance(source_ready(raw)) == 6  # grows the group first (journaled)
        assert sess.group.attrs["n_positions"] == 9 and sess.group[FLAGS].shape == (9,)
        assert sess.group["data"].shape == (9, 90)  # the NeXus view follows
        grow(h5, frames, 12)
        ready = source_ready(raw)
        ready[10] = False
        assert sess.advance(ready) == 2
        seen = read_elsewhere(path)
        assert seen["verified"] == [True] * 10 + [False, True]
        assert seen["xr_finite"] == seen["verified"] == seen["xr_complete"]
        assert sess.advance(source_ready(raw)) == 1
        assert arrays(sess.group) == reference
        assert not os.path.exists(str(path) + safety.JOURNAL_SUFFIX)
        sess.close()
    summary = run_on_file(path, AzimuthalIntegration, **INTEGRATE)  # afterwards: reused
    assert summary.reused


# ---------------------------------------------------------------------------------- crash
CHILD = textwrap.dedent(
    """
    import sys
    import numpy as np
    from pyscatter.io import safety
    from pyscatter.processes.integration import AzimuthalIntegration
    from pyscatter.processes.live_session import source_ready
    path = sys.argv[1]
    with safety.job_lock(path, command="crash test watch"):
        safety.repair(path)
        with safety.open_for_writing(path) as h5:
            raw = h5["Measurement_000/Channel_000/Raw_Data"]
            proc = AzimuthalIntegration(raw, npt=90, unit="q_nm^-1", error_model="poisson",
                                        progress=False)
            print("open", flush=True)
            sess = proc.live_session(locked=True)
            print("session", flush=True)
            n = raw.shape[0]
            for k in range(1, n + 1):
                done = sess.advance(source_ready(raw) & (np.arange(n) < k))
                print("advanced", k, done, flush=True)
            print("end", flush=True)
    """
)


def test_sigkill_and_resume(tmp_path, translated):
    path = live_copy(translated, tmp_path / "live.h5")
    with h5py.File(path, "r+") as h5:
        measure(h5, range(12))
    reference = offline(shutil.copy(path, tmp_path / "ref.h5"), AzimuthalIntegration, **INTEGRATE)
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    rng = np.random.default_rng(13)
    kills = 0
    for _cycle in range(5):
        child = subprocess.Popen(
            [sys.executable, str(script), str(path)], stdout=subprocess.PIPE, text=True, env=env
        )
        assert child.stdout is not None
        lines = int(rng.integers(1, 6))  # kill after this many progress lines
        ended = False
        for _ in range(lines):
            line = child.stdout.readline()
            if not line or line.startswith("end"):
                ended = True
                break
        if not ended:
            child.send_signal(signal.SIGKILL)
            kills += 1
        child.wait(120)
        child.stdout.close()
    final = subprocess.run(
        [sys.executable, str(script), str(path)], capture_output=True, text=True, env=env
    )
    assert final.returncode == 0, final.stderr
    assert final.stdout.splitlines()[-1] == "end"
    assert kills >= 3
    with h5py.File(path, "r") as h5:
        groups = [k for k in h5[CHANNEL] if "AzimuthalIntegration" in k]
        assert len(groups) == 1  # resumed every time, never set up twice
        group = h5[CHANNEL][groups[0]]
        assert verified_positions(group).all()
        assert arrays(group) == reference
