"""Shared pieces of the benchmarks: timing, memory probes, machine facts, scan files, the table.

Everything here is for ``benchmarks/run.py`` and the ``bench_*.py`` scripts beside it; none of it
is part of the library. Timings alternate the peer and pyscatter within each round (the machine
is shared and noisy) and are reported as medians with their ratio.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")  # one core per worker, before pyFAI's OpenMP

import contextlib  # noqa: E402
import datetime as _dt  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable, Sequence  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from importlib import metadata  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:  # the bench_*.py modules import each other by name
    sys.path.insert(0, str(HERE))

MiB = 2**20

# ----------------------------------------------------------------------------- timing


def interleaved(
    funcs: dict[str, Callable[[], Any]], repeats: int
) -> tuple[dict[str, list[float]], dict[str, Any]]:
    """Time each function once per round, alternating their order every round (AB, BA, …).

    Returns ``({name: [seconds per round]}, {name: result of its last call})``.
    """
    times: dict[str, list[float]] = {name: [] for name in funcs}
    last: dict[str, Any] = {}
    names = list(funcs)
    for r in range(repeats):
        for name in names if r % 2 == 0 else names[::-1]:
            t0 = time.perf_counter()
            last[name] = funcs[name]()
            times[name].append(time.perf_counter() - t0)
    return times, last


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


# ----------------------------------------------------------------------------- memory


def _status_kib(key: str) -> int:
    with open("/proc/self/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    raise KeyError(key)


def rss_mb() -> float:
    """Resident set size of this process now, MiB (``VmRSS``)."""
    return _status_kib("VmRSS") / 1024


def peak_mb() -> float:
    """Peak resident set size since the last :func:`reset_peak`, MiB (``VmHWM``)."""
    return _status_kib("VmHWM") / 1024


def reset_peak() -> None:
    """Reset the kernel's peak-RSS counter of this process (Linux ``clear_refs`` 5)."""
    with open("/proc/self/clear_refs", "w", encoding="ascii") as fh:
        fh.write("5")


@contextlib.contextmanager
def process_marks(cls: Any, after_build: Callable[[Any, Any], None] | None = None):
    """Time stamps of a process's phases while the block is active (instrumentation only).

    Wraps ``cls.__init__`` (parameter and source checks), the first call of
    ``cls._local_function`` (building the integrator) and ``pyscatter.io.safety.write_status``
    (called once per block written) and yields a dict that receives ``init_start``,
    ``init_end``, ``build_start``, ``build_end``, ``block_size`` and ``blocks`` (one
    ``time.perf_counter`` per block written). ``after_build(process, function)`` runs right
    after the build. Everything is restored on exit.
    """
    from pyscatter.io import safety

    marks: dict[str, Any] = {"blocks": []}
    orig_init, orig_local = cls.__init__, cls._local_function
    orig_status = safety.write_status

    def init(self, *args, **kwargs):
        marks["init_start"] = time.perf_counter()
        orig_init(self, *args, **kwargs)
        marks["init_end"] = time.perf_counter()

    def local(self):
        if getattr(self, "_local", None) is not None:
            return orig_local(self)
        marks["build_start"] = time.perf_counter()
        func = orig_local(self)
        marks["block_size"] = self.positions_per_block()
        if after_build is not None:
            after_build(self, func)
        marks["build_end"] = time.perf_counter()
        return func

    def status(*args, **kwargs):
        marks["blocks"].append(time.perf_counter())
        return orig_status(*args, **kwargs)

    cls.__init__, cls._local_function = init, local
    safety.write_status = status
    try:
        yield marks
    finally:
        cls.__init__, cls._local_function = orig_init, orig_local
        safety.write_status = orig_status


def steady_rate(marks: dict[str, Any], n_positions: int, *, workers: int = 1) -> float | None:
    """Positions per second of the blocks after the first (None with one block).

    One worker: the median of the blocks' rates, each block's size over the time since the
    previous block was written; the first block (which still carries set-up costs) is left out
    and the median keeps one slow block (a first-touch buffer, a noisy neighbour) from deciding
    the figure. Several workers finish blocks in bursts, so there the rate is the positions
    written after the first block over the time from the first block to the last.
    """
    stamps = marks["blocks"]
    if len(stamps) < 2:
        return None
    size = min(marks["block_size"], n_positions)
    if workers > 1:
        return (n_positions - size) / (stamps[-1] - stamps[0])
    sizes = [size] * (len(stamps) - 1) + [n_positions - size * (len(stamps) - 1)]
    rates = [k / (t1 - t0) for k, t0, t1 in zip(sizes[1:], stamps[:-1], stamps[1:], strict=True)]
    return median(rates)


def run_child(script: Path, payload: dict[str, Any], timeout: float = 900) -> dict[str, Any]:
    """Run ``python script --child JSON`` in a fresh interpreter; return its last JSON line.

    A child per measurement keeps peaks (and allocator state) from mixing.
    """
    env = dict(os.environ, OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "1"))
    proc = subprocess.run(
        [sys.executable, str(script), "--child", json.dumps(payload)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(
            f"{script.name} child failed ({proc.returncode}):\n{proc.stderr[-4000:]}"
        )
    lines = [x for x in proc.stdout.splitlines() if x.startswith("{")]
    return json.loads(lines[-1])


def child_main(argv: list[str], measure: Callable[[dict[str, Any]], dict[str, Any]]) -> bool:
    """If ``argv`` is ``--child JSON``: run ``measure(payload)``, print its JSON, return True."""
    if len(argv) == 2 and argv[0] == "--child":
        result = measure(json.loads(argv[1]))
        print(json.dumps(result), flush=True)
        return True
    return False


# ----------------------------------------------------------------------------- machine


def _version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_facts() -> dict[str, str]:
    """CPU, cores, memory, versions, date and load average, as strings for the report."""
    import psutil

    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        usable = os.cpu_count() or 0
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return {
        "date": _dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "cpu": cpu_model(),
        "cores": f"{os.cpu_count()} logical, {usable} usable",
        "memory": f"{psutil.virtual_memory().total / 2**30:.1f} GiB",
        "os": platform.platform(),
        "python": platform.python_version(),
        "numpy": _version("numpy"),
        "scipy": _version("scipy"),
        "pyFAI": _version("pyFAI"),
        "h5py": _version("h5py"),
        "HDF5": _hdf5_version(),
        "hdf5plugin": _version("hdf5plugin"),
        "pyscatter": _version("pyscatter"),
        "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "unset"),
        "load average (1, 5, 15 min)": load,
    }


def _hdf5_version() -> str:
    import h5py

    return h5py.version.hdf5_version


# ----------------------------------------------------------------------------- scan files


def ring_counts(ai: Any, shape: tuple[int, int], scale: float = 1.0) -> np.ndarray:
    """Expected counts of a frame: flat background plus two powder rings (q = 8, 14 nm⁻¹)."""
    q = ai.qArray(shape)  # nm^-1
    rings = 200 * np.exp(-0.5 * ((q - 8) / 0.1) ** 2) + 80 * np.exp(-0.5 * ((q - 14) / 0.15) ** 2)
    return scale * (20 + rings)


def eiger_integrator():
    """bench_integrate's Eiger 1M geometry (1065 × 1030, module gaps masked by the detector)."""
    from bench_integrate import SHAPE
    from pyFAI.detectors import detector_factory
    from pyFAI.integrator.azimuthal import AzimuthalIntegrator

    detector = detector_factory("Eiger 1M")
    ai = AzimuthalIntegrator(
        dist=0.2, poni1=0.045, poni2=0.035, detector=detector, wavelength=1e-10
    )
    return ai, SHAPE


def small_integrator(shape: tuple[int, int]):
    """A generic 172 µm pixel detector of ``shape`` with the beam near its centre."""
    from pyFAI.detectors import Detector
    from pyFAI.integrator.azimuthal import AzimuthalIntegrator

    detector = Detector(172e-6, 172e-6, max_shape=shape)
    rows, cols = shape
    return AzimuthalIntegrator(
        dist=0.05 * rows / 256,
        poni1=0.45 * rows * 172e-6,
        poni2=0.55 * cols * 172e-6,
        detector=detector,
        wavelength=1e-10,
    )


def ring_frames(ai: Any, shape: tuple[int, int], n: int, *, seed: int = 0, distinct=None):
    """``n`` uint32 frames of counts around :func:`ring_counts`, yielded one at a time.

    Counts are the Gaussian approximation of Poisson noise (mean >= 20 everywhere, rounded,
    3x cheaper to draw than ``rng.poisson`` on a 1M-pixel frame). ``distinct`` frames are drawn
    and then cycled when given. A few pixels in every frame hold the uint32 maximum, the
    Eiger's dead-pixel dummy (pyFAI masks them).
    """
    rows, cols = shape
    lam = ring_counts(ai, shape).astype(np.float32)
    noise = np.sqrt(lam)
    rng = np.random.default_rng(seed)
    pool: list[np.ndarray] = []
    for i in range(n):
        if distinct is not None and len(pool) == distinct:
            yield pool[i % distinct]
            continue
        values = rng.standard_normal(lam.shape, dtype=np.float32)
        values *= noise
        values += lam
        np.rint(values, out=values)
        frame = np.maximum(values, 0).astype(np.uint32)
        frame[rows // 3, cols // 3 : cols // 3 + 10] = np.iinfo(np.uint32).max
        if distinct is not None:
            pool.append(frame)
        yield frame


def position_dims(n: int) -> list:
    """``Time`` (s) for up to 4096 positions, else a ``Y`` × ``X`` raster (µm) of ``n`` points.

    pyscatter's io layer records every dimension's values in an attribute, which HDF5 limits
    to 64 KiB (8192 float64 values): longer scans are written as rasters.
    """
    from pyscatter.io.usid import Dim

    if n <= 4096:
        return [Dim("Time", "s", np.arange(n, dtype=np.float64) * 0.1)]
    nx = max(d for d in range(1, int(np.sqrt(n)) + 1) if n % d == 0)
    if n // nx > 4096:
        raise ValueError(f"{n} positions do not factor into a raster of <= 4096 per axis")
    return [
        Dim("Y", "um", np.arange(n // nx, dtype=np.float64) * 5.0),
        Dim("X", "um", np.arange(nx, dtype=np.float64) * 5.0),
    ]


def write_ring_scan(
    path: Path,
    ai: Any,
    shape: tuple[int, int],
    n_frames: int,
    *,
    seed: int = 0,
    distinct: int | None = None,
) -> Path:
    """A bitshuffle-LZ4 USID scan of ``n_frames`` uint32 frames (:func:`ring_frames`).

    Written through :func:`pyscatter.io.raw.write_measurement` (one frame per chunk) with the
    positions of :func:`position_dims` and the geometry of ``ai``. The translator's fsync
    barrier is relaxed to every 1024 frames while writing: the crash safety of this
    throw-away input is not what the benchmarks measure, and its fsyncs would dominate.
    """
    import pyFAI

    from pyscatter.io import raw as raw_io
    from pyscatter.io.usid import Dim

    rows, cols = shape
    spec = raw_io.MeasurementSpec(
        position_dims=position_dims(n_frames),
        spec_dims=[Dim("Row", "pixel", np.arange(rows)), Dim("Col", "pixel", np.arange(cols))],
        dtype=np.uint32,
        geometry=ai.get_config(),
        attrs={"translator": "benchmarks.common.write_ring_scan", "pyFAI": pyFAI.version},
    )
    frames = ring_frames(ai, shape, n_frames, seed=seed, distinct=distinct)
    saved = getattr(raw_io, "BARRIER_FRAMES", None)
    if saved is not None:
        raw_io.BARRIER_FRAMES = max(saved, 1024)
    try:
        return raw_io.write_measurement(path, spec, frames, compression="bslz4", overwrite=True)
    finally:
        if saved is not None:
            raw_io.BARRIER_FRAMES = saved


# ----------------------------------------------------------------------------- the table


@dataclass
class Row:
    """One figure of the table: pyscatter against its peer measured in the same run."""

    figure: str
    ours: float
    peer: float
    unit: str
    target: str = ""
    passed: bool | None = None
    ratio: float | None = None  # default ours / peer
    note: str = ""

    def __post_init__(self) -> None:
        if self.ratio is None:
            self.ratio = self.ours / self.peer if self.peer else float("nan")


def _num(x: float) -> str:
    if not np.isfinite(x):
        return "–"
    if abs(x) >= 100:
        return f"{x:,.0f}"
    if abs(x) >= 10:
        return f"{x:.1f}"
    return f"{x:.2f}"


def format_table(rows: Sequence[Row]) -> str:
    """The rows as one Markdown table (readable in a terminal too)."""
    head = ["figure", "pyscatter", "peer", "unit", "ratio", "target", ""]
    body = []
    for r in rows:
        mark = "" if r.passed is None else ("ok" if r.passed else "MISSED")
        ratio = r.ratio if r.ratio is not None else float("nan")
        body.append([r.figure, _num(r.ours), _num(r.peer), r.unit, f"{ratio:.2f}×", r.target, mark])
    widths = [
        max(len(h), *(len(b[i]) for b in body)) if body else len(h) for i, h in enumerate(head)
    ]

    def line(cells):
        return "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"

    sep = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([line(head), sep, *(line(b) for b in body)])
