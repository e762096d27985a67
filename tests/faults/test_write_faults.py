"""Issue 20: write faults end in one clean line, and the same command resumes to the same bits.

Each case runs ``python -m pyscatter`` in a subprocess with one real fault (see ``harness``), so
a segmentation fault shows as exit code -11 and a traceback as text. ``make stress`` runs 50.
"""

from __future__ import annotations

import shutil

import pytest

from .harness import raw_digest, result_digest, run_cli, write_sources

INTEGRATE = ["--npt", "90", "--error-model", "poisson", "--max-mem-mb", "0.7", "--no-progress"]

CASES = [
    # (command, fault, where in the command's writes: a fraction of the bytes it writes)
    ("translate", {"fsize": 0.5}),
    ("translate", {"inject": "fsync:3:ENOSPC"}),
    ("translate", {"inject": "replace:1:ENOSPC"}),
    ("integrate", {"fsize": 0.3}),
    ("integrate", {"fsize": 0.8}),
    ("integrate", {"inject": "fsync:5:EIO"}),
]


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """Sources, a translated file, and the uninterrupted translate + integrate digests."""
    tmp = tmp_path_factory.mktemp("faults")
    sources = write_sources(tmp / "src")
    ref = tmp / "ref.h5"
    for cmd in (["translate", *sources, "-o", str(ref)], ["integrate", str(ref), *INTEGRATE]):
        out = run_cli(cmd, cwd=tmp)
        assert out.returncode == 0, out.stderr
    translated = tmp / "translated.h5"
    assert run_cli(["translate", *sources, "-o", str(translated)], cwd=tmp).returncode == 0
    return dict(
        tmp=tmp,
        sources=sources,
        translated=translated,
        sizes={
            "translate": (0, translated.stat().st_size),
            "integrate": (translated.stat().st_size, ref.stat().st_size),
        },
        raw=raw_digest(ref),
        result=result_digest(ref),
    )


@pytest.mark.parametrize(("command", "fault"), CASES, ids=lambda v: str(v))
def test_write_fault_is_one_clean_line_and_rerun_resumes_identically(
    reference, command, fault, tally
):
    tmp = reference["tmp"]
    target = tmp / f"{command}_{abs(hash(str(fault)))}.h5"
    if command == "translate":
        cmd = ["translate", *reference["sources"], "-o", str(target)]
    else:
        shutil.copy(reference["translated"], target)
        cmd = ["integrate", str(target), *INTEGRATE]
    if "fsize" in fault:
        low, high = reference["sizes"][command]
        fault = {"fsize": int(low + (high - low) * fault["fsize"])}
    first = run_cli(cmd, cwd=tmp, **fault)
    tally["injected"] += 1
    assert first.fired and first.returncode != 0, first.stderr
    assert first.problems() == [], first.stderr
    assert first.returncode == 3
    error = [line for line in first.lines if line.startswith("pyscatter ")][0]
    assert "resume" in error and ("File too large" in error or "(E" in error), error
    tally["clean"] += 1
    again = run_cli(cmd, cwd=tmp)  # the same command, no fault, no manual clean-up
    assert again.returncode == 0, again.stderr
    assert raw_digest(target) == reference["raw"]
    if command == "integrate":
        assert result_digest(target) == reference["result"]
    tally["identical"] += 1


def test_debug_shows_the_traceback_and_still_does_not_crash(reference):
    tmp = reference["tmp"]
    target = tmp / "debug.h5"
    shutil.copy(reference["translated"], target)
    low, high = reference["sizes"]["integrate"]
    out = run_cli(
        ["--debug", "integrate", str(target), *INTEGRATE], cwd=tmp, fsize=(low + high) // 2
    )
    assert out.returncode == 3, out.stderr[-3000:]
    assert "Traceback" in out.stderr
    assert out.stderr.strip().splitlines()[-1].startswith("pyscatter integrate: could not write")
