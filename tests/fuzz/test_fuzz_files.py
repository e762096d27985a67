"""Fuzz: positions CSV files, SPEC files (light) and pipeline YAML."""

from __future__ import annotations

import numpy as np
import pytest

from pyscatter.errors import InputError
from pyscatter.pipeline import EXAMPLE, validate_pipeline
from pyscatter.translators.positions import read_positions_csv

from ._cases import assert_clean, pick, rng
from .conftest import record

N_CSV = 300
N_SPEC = 100
N_YAML = 300

LABELS = ["Y[um]", "X[um]", "Z[mm]", "T[K]", "B[mT]", "theta[deg]"]
BAD_LABELS = ["", "Y[", "[um]", "Y[um", "Y[um]]", "1[um]", "1e3", "Y/X[um]", "(", "]"]
BAD_CELLS = ["abc", "", "nan", "inf", "-inf", "1e400", "1.2.3", "--1", "NaN", "0x1p3"]


def csv_case(seed: int) -> tuple[str, list[str] | None, np.ndarray | None]:
    """CSV text and, when the generator made it valid, its labels and values."""
    g = rng(seed)
    n_cols = int(g.integers(1, 4))
    labels = [LABELS[i] for i in g.permutation(len(LABELS))[:n_cols]]
    n_rows = int(g.integers(0, 6))
    values = np.round(g.normal(0, 100, size=(n_rows, n_cols)), int(g.integers(0, 6)))
    cells = [[repr(float(v)) for v in row] for row in values]
    valid = n_rows > 0
    header = list(labels)
    kind = int(g.integers(8))
    if kind == 0:
        header[int(g.integers(n_cols))] = pick(g, BAD_LABELS)
        valid = False if header != labels else valid
    elif kind == 1 and n_rows:
        cells[int(g.integers(n_rows))][int(g.integers(n_cols))] = pick(g, BAD_CELLS)
        valid = False
    elif kind == 2 and n_rows:
        cells[int(g.integers(n_rows))].append("1.0")  # a row too long
        valid = False
    elif kind == 3 and n_rows and n_cols > 1:
        cells[int(g.integers(n_rows))].pop()  # a row too short
        valid = False
    elif kind == 4:
        header.append(header[0])  # a repeated dim
        cells = [[*row, "0"] for row in cells]
        valid = False
    delimiter = pick(g, [",", ";", "\t"])
    lines = [delimiter.join(header)] + [delimiter.join(row) for row in cells]
    if g.random() < 0.3:  # comments and blank lines, which are skipped
        lines.insert(int(g.integers(len(lines) + 1)), pick(g, ["", "# a comment", "   "]))
    if g.random() < 0.1 and n_rows:  # a data line starting with garbage
        i = len(lines) - 1
        lines[i] = pick(g, ["abc", "1.2.3", "--", "é"]) + lines[i]
        valid = False
    text = "\n".join(lines) + "\n"
    return text, (labels if valid else None), (values if valid else None)


@pytest.mark.parametrize("block", range(3))
def test_fuzz_positions_csv(tmp_path, block):
    for seed in range(block * N_CSV // 3, (block + 1) * N_CSV // 3):
        text, labels, expected = csv_case(seed)
        path = tmp_path / f"positions_{seed}.csv"
        path.write_text(text)
        try:
            got_labels, values = read_positions_csv(path)
        except InputError as err:
            assert_clean(err, str(path))
            assert labels is None, f"seed {seed}: a valid file was refused ({err})"
            record("positions csv", "refused")
            continue
        assert labels is not None, f"seed {seed}: an invalid file was accepted:\n{text}"
        assert ["{}[{}]".format(*label) for label in got_labels] == labels, seed
        np.testing.assert_array_equal(values, expected)
        record("positions csv", "accepted")


SPEC = """#F fuzz.spec
#E 1455178595
#D Thu Feb 11 09:16:35 2016
#O0 samy  samz
#o0 sy sz

#S 1  ascan  sy 0 2 4 0.1
#D Thu Feb 11 09:16:35 2016
#P0 0 0
#N 3
#L samy  I0  det
0 100 1
0.5 101 2
1 102 3
1.5 103 4
2 104 5
"""
SPEC_ROWS = np.array([[0, 100, 1], [0.5, 101, 2], [1, 102, 3], [1.5, 103, 4], [2, 104, 5]])


def spec_case(seed: int) -> tuple[str, bool]:
    """SPEC text and whether it is the untouched scan."""
    g = rng(seed)
    lines = SPEC.splitlines()
    kind = int(g.integers(6))
    data = [i for i, line in enumerate(lines) if line and line[0] in "0123456789"]
    if kind == 0:
        return SPEC, True
    if kind == 1:  # truncated anywhere
        return SPEC[: int(g.integers(len(SPEC)))], False
    if kind == 2:  # a data cell replaced
        i = data[int(g.integers(len(data)))]
        cells = lines[i].split()
        # values silx parses like Python (garbage such as 'abc' is the xfail case below)
        cells[int(g.integers(len(cells)))] = pick(g, ["1e-300", "7", "-2.5", "1e5"])
        lines[i] = " ".join(cells)
    elif kind == 3:  # a header line dropped
        headers = [i for i, line in enumerate(lines) if line.startswith("#")]
        del lines[headers[int(g.integers(len(headers)))]]
    elif kind == 4:  # #L with another number of labels
        i = lines.index("#L samy  I0  det")
        lines[i] = pick(g, ["#L samy  I0", "#L samy  I0  det  extra", "#L", "#L samy samy det"])
    else:  # random bytes
        return "".join(chr(int(c)) for c in g.integers(1, 127, size=200)), False
    return "\n".join(lines) + "\n", False


def test_fuzz_spec(tmp_path):
    from pyscatter.translators.spec import read_scan

    for seed in range(N_SPEC):
        text, pristine = spec_case(seed)
        path = tmp_path / f"scan_{seed}.spec"
        path.write_text(text)
        try:
            scan = read_scan(path, 1)
        except InputError as err:
            assert_clean(err, str(path), "scan 1")
            assert not pristine, f"seed {seed}: the valid file was refused ({err})"
            record("spec", "refused")
            continue
        assert scan.columns.shape[1] == len(scan.labels), seed
        expected = [
            [float(c) for c in line.split()]
            for line in text.splitlines()
            if line and (line[0].isdigit() or line[0] in "-.")
        ]
        if pristine or len({len(row) for row in expected}) == 1:  # what Python reads
            np.testing.assert_array_equal(scan.columns, np.array(expected)[: scan.n_points])
        record("spec", "accepted")


YAML_VALUES = [
    ".nan",
    ".inf",
    "-1",
    "0",
    "1e999",
    "[]",
    "{}",
    "~",
    "''",
    "yes",
    "'; rm -rf /'",
    "!!python/object/apply:os.system ['true']",
    "&a 1",
    "*a",
    "[1, [2, [3, [4]]]]",
    "x" * 300,
    "'\\x00'",
    "2000000000",
    "-0.5",
    "q_A^-1",
    "bbox,csr,opencl",
]


def yaml_case(seed: int) -> str:
    g = rng(seed)
    lines = EXAMPLE.splitlines()
    for _ in range(int(g.integers(1, 4))):
        candidates = [
            i for i, line in enumerate(lines) if ":" in line and not line.lstrip().startswith("#")
        ]
        i = candidates[int(g.integers(len(candidates)))]
        kind = int(g.integers(5))
        if kind <= 2:  # a value replaced
            key, _, _ = lines[i].partition(":")
            lines[i] = f"{key}: {pick(g, YAML_VALUES)}"
        elif kind == 3:
            del lines[i]
        else:  # indentation broken
            lines[i] = " " * int(g.integers(0, 7)) + lines[i].lstrip()
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("block", range(3))
def test_fuzz_pipeline_yaml(block):
    from pyscatter.processes.registry import get_process

    for seed in range(block * N_YAML // 3, (block + 1) * N_YAML // 3):
        text = yaml_case(seed)
        try:
            pipe = validate_pipeline(text, check_files=False)
        except InputError as err:
            message = str(err)
            assert message.startswith("pipeline"), message  # names the pipeline (and line)
            assert "Traceback" not in message
            record("pipeline yaml", "refused")
            continue
        for step in pipe.steps:  # every step is a real process with known parameters
            assert get_process(step.name) is step.process
        record("pipeline yaml", "accepted")


@pytest.mark.parametrize("line", ["1.2.3 102 3", "abc 102 3", "1 -inf 3", "1 102 nan", "102 3"])
def test_spec_malformed_data_line_is_refused(tmp_path, line):
    from pyscatter.translators.spec import read_scan

    path = tmp_path / "bad.spec"
    path.write_text(SPEC.replace("1 102 3", line))
    # silx alone reads 1.2.3 as 1.2, abc and -inf as 0, and drops a line holding nan or
    # missing a cell, without an error: the translator re-checks the lines
    with pytest.raises(InputError, match=r"bad\.spec: scan 1\.1 .*line 14"):
        read_scan(path, 1)
