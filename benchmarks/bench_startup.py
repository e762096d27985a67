"""Start-up: whole fresh processes that import pyscatter, or run a command with nothing to do.

Each figure is the wall time of a fresh interpreter (a subprocess, ``python -c ...``), best of
``repeats`` runs (the median is in the note), alternating with its peer round by round:

- ``import pyscatter.processes``: the package and its (empty) processes package, against a bare
  interpreter (``python -c pass``); target ≤ 1 s;
- ``import pyscatter.processes.base``: the process template (h5py, numpy, the crash-safety
  layer), against ``import h5py``; target ≤ 1 s;
- ``import pyscatter.processes.integration``: the integration process (pyFAI imported only when
  a process is made), against ``import h5py, scipy.sparse``; target ≤ 1 s;
- a no-op ``pyscatter integrate FILE`` (``python -m pyscatter``) on a file whose results are
  complete, so they are reused and nothing is computed, against the reference ``import
  pyFAI.integrator.azimuthal, h5py`` (what that command cannot avoid); target ≤ 1.5 s;
- the reference itself against a bare interpreter (no target: what pyFAI and h5py cost here).

The children import pyscatter from this checkout (``PYTHONPATH``) with one OpenMP thread. The
figures include the interpreter's own start (``python -c pass``, the first row's peer).

Run alone: ``.venv/bin/python benchmarks/bench_startup.py [--repeats 5]``.
"""

# ruff: noqa: I001 (import order: common before numpy, see below)
from __future__ import annotations

import common  # first: sets OMP_NUM_THREADS before numpy and pyFAI load

import argparse
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

SCRIPT = Path(__file__).resolve()
ROOT = SCRIPT.parent.parent  # the pyscatter checkout these benchmarks belong to

#: Targets (seconds, best of the runs): imports of pyscatter's process modules, and a command
#: that has nothing to do.
IMPORT_TARGET_S = 1.0
NOOP_TARGET_S = 1.5
REFERENCE = "import pyFAI.integrator.azimuthal, h5py"
#: Frames of the scan the no-op command runs on (small: its size must not matter).
NOOP_FRAMES = 16
NOOP_SHAPE = (64, 64)


def _env() -> dict[str, str]:
    path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    env = dict(os.environ, PYTHONPATH=path, OMP_NUM_THREADS="1")
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # as installed: compiled once (.pyc)
    return env


def python(code: str) -> list[str]:
    """argv of a fresh interpreter running ``code``."""
    return [sys.executable, "-c", code]


def wall_time(argv: list[str]) -> float:
    """Seconds from start to exit of ``argv`` (which must succeed), output discarded."""
    t0 = time.perf_counter()
    proc = subprocess.run(argv, env=_env(), capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return seconds


@dataclass(frozen=True)
class Timing:
    """Wall times of one command over the runs, seconds."""

    times: tuple[float, ...]

    @property
    def best(self) -> float:
        return min(self.times)

    @property
    def median(self) -> float:
        return common.median(self.times)


def compare(ours: list[str], peer: list[str], repeats: int) -> tuple[Timing, Timing]:
    """``repeats`` runs of each command, alternating which goes first every round."""
    for argv in (ours, peer):  # warm the page cache: the first run reads the files
        wall_time(argv)
    times, _ = common.interleaved(
        {"ours": lambda: wall_time(ours), "peer": lambda: wall_time(peer)}, repeats
    )
    return Timing(tuple(times["ours"])), Timing(tuple(times["peer"]))


def noop_file(directory: Path) -> Path:
    """A small scan whose integration results are complete (the command is run once here)."""
    ai = common.small_integrator(NOOP_SHAPE)
    path = common.write_ring_scan(directory / "startup.h5", ai, NOOP_SHAPE, NOOP_FRAMES)
    wall_time(noop_command(path))
    return path


def noop_command(path: Path) -> list[str]:
    return [sys.executable, "-m", "pyscatter", "-q", "integrate", str(path), "--no-progress"]


def measure(workdir: Path, repeats: int = 5) -> dict[str, tuple[Timing, Timing]]:
    """Every figure: ``{name: (ours, peer)}``; see the module docstring."""
    bare = python("pass")
    path = noop_file(workdir)
    return {
        "processes": compare(python("import pyscatter.processes"), bare, repeats),
        "base": compare(python("import pyscatter.processes.base"), python("import h5py"), repeats),
        "integration": compare(
            python("import pyscatter.processes.integration"),
            python("import h5py, scipy.sparse"),
            repeats,
        ),
        "noop": compare(noop_command(path), python(REFERENCE), repeats),
        "reference": compare(python(REFERENCE), bare, repeats),
    }


def rows(result: dict[str, tuple[Timing, Timing]]) -> list[common.Row]:
    """The table rows of :func:`measure`'s result (best of the runs; medians in the notes)."""
    specs = [
        ("processes", "python -c 'import pyscatter.processes'", "python -c pass", IMPORT_TARGET_S),
        ("base", "python -c 'import pyscatter.processes.base'", "import h5py", IMPORT_TARGET_S),
        (
            "integration",
            "python -c 'import pyscatter.processes.integration'",
            "import h5py, scipy.sparse",
            IMPORT_TARGET_S,
        ),
        (
            "noop",
            f"no-op 'pyscatter integrate' ({NOOP_FRAMES} frames, results complete: reused)",
            REFERENCE,
            NOOP_TARGET_S,
        ),
        ("reference", f"reference: python -c '{REFERENCE}'", "python -c pass", None),
    ]
    out = []
    for key, figure, peer_name, target in specs:
        ours, peer = result[key]
        n = len(ours.times)
        extra = ""
        if key == "noop":  # what the command costs beyond the imports it cannot avoid
            extra = f"; {ours.best - peer.best:+.2f} s over the reference (best vs best)"
        out.append(
            common.Row(
                f"start-up: {figure}, vs {peer_name}",
                ours.best,
                peer.best,
                "s",
                target="" if target is None else f"≤ {target:g} s",
                passed=None if target is None else ours.best <= target,
                note=(
                    f"best of {n} fresh processes; median {ours.median:.2f} s "
                    f"(peer {peer.median:.2f} s){extra}; each run alternating with its peer"
                ),
            )
        )
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="runs of each command (5)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="pyscatter-startup-") as tmp:
        table = rows(measure(Path(tmp), args.repeats))
    print(common.format_table(table))
    print()
    for r in table:
        print(f"- {r.figure}: {r.note}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
