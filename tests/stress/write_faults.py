"""Stress: inject write faults into translate and integrate, rerun, compare bits.

Each fault is a real failing write in a real ``python -m pyscatter`` process (see
``tests/faults/harness.py``): a file size limit (EFBIG) at a spread of offsets, or ENOSPC/EIO from
the n-th ``fsync``/``replace``/``pwrite``/``write``. For every fault the command must end with one
clean error line and a documented exit code (no traceback, no crash), and running the same command
again without the fault must finish with bits identical to an uninterrupted run.

    python tests/stress/write_faults.py --faults 50
"""

from __future__ import annotations

import argparse
import itertools
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/ for faults.harness

from faults.harness import raw_digest, result_digest, run_cli, write_sources  # noqa: E402

INTEGRATE = ["--npt", "90", "--error-model", "poisson", "--max-mem-mb", "0.7", "--no-progress"]


KINDS = ("fsize", "fsync:ENOSPC", "replace:ENOSPC", "fsync:EIO", "pwrite:ENOSPC", "write:EDQUOT")


def faults(command: str, kind: str, size: tuple[int, int], rounds: int) -> Iterator[dict]:
    """The faults of one kind for one command: file size limits spread over the bytes the
    command writes (``size``: from, to), or the 1st, 2nd, ... call of an operation failing."""
    if kind == "fsize":
        low, high = size
        for step in range(rounds):
            yield {"fsize": low + int((high - low) * (step + 0.5) / rounds)}
        return
    name, code = kind.split(":")
    for k in range(1, 10_000):
        yield {"inject": f"{name}:{k}:{code}"}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--faults", type=int, default=50)
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        sources = write_sources(tmp / "src")
        ref = tmp / "ref.h5"
        for cmd in (["translate", *sources, "-o", str(ref)], ["integrate", str(ref), *INTEGRATE]):
            out = run_cli(cmd, cwd=tmp)
            if out.returncode != 0:
                print(out.stderr)
                return 1
        translated = tmp / "translated.h5"
        run_cli(["translate", *sources, "-o", str(translated)], cwd=tmp)
        raw_ref, result_ref = raw_digest(ref), result_digest(ref)
        counts = dict(faults=0, clean=0, exit3=0, tolerated=0, resumed=0, identical=0)
        sizes = {
            "translate": (0, translated.stat().st_size),
            "integrate": (translated.stat().st_size, ref.stat().st_size),
        }
        rounds = max(1, -(-args.faults // (2 * len(KINDS))))
        sources_of = {
            (c, k): faults(c, k, sizes[c], rounds)
            for c in ("translate", "integrate")
            for k in KINDS
        }
        for i in itertools.count():
            if counts["faults"] - counts["tolerated"] >= args.faults or not sources_of:
                break
            key = list(sources_of)[i % len(sources_of)]
            command, kind = key
            fault = next(sources_of[key], None)
            target = tmp / f"f{i}.h5"
            if command == "translate":
                cmd = ["translate", *sources, "-o", str(target)]
            else:
                shutil.copy(translated, target)
                cmd = ["integrate", str(target), *INTEGRATE]
            first = run_cli(cmd, cwd=tmp, **fault) if fault else None
            if first is None or not first.fired:  # past the last call: kind exhausted
                del sources_of[key]
                continue
            counts["faults"] += 1
            tolerated = first.returncode == 0  # e.g. the status file could not be updated
            counts["tolerated"] += tolerated
            problems = [] if tolerated else first.problems()
            counts["clean"] += not problems
            counts["exit3"] += first.returncode == 3
            again = first if tolerated else run_cli(cmd, cwd=tmp)
            same = False
            if again.returncode == 0:
                counts["resumed"] += 1
                same = raw_digest(target) == raw_ref
                if command == "integrate":
                    same = same and result_digest(target) == result_ref
                counts["identical"] += same
            if problems or not same or args.verbose:
                print(f"{i} {command} {fault}: exit {first.returncode}; {problems}")
                print("   ", first.stderr.strip().replace("\n", "\n    ")[-3000:])
                if again.returncode != 0:
                    print("    rerun:", again.returncode, again.stderr.strip()[-3000:])
            else:
                print(
                    f"{i} {command} {fault}: exit {first.returncode}: {(first.lines or [''])[-1]}"
                )
        n = counts["faults"]
        print(
            "\n| write faults injected | stopped the command | with one clean error line "
            "| of which exit code 3 | ridden out (status file, lock record) | rerun finished "
            "| identical bits |"
        )
        print("|---|---|---|---|---|---|---|")
        print(
            f"| {n} | {n - counts['tolerated']} | {counts['clean'] - counts['tolerated']} "
            f"| {counts['exit3']} | {counts['tolerated']} | {counts['resumed']}/{n} "
            f"| {counts['identical']}/{n} |"
        )
        return 0 if counts["clean"] == counts["identical"] == counts["resumed"] == n else 1


if __name__ == "__main__":
    sys.exit(main())
