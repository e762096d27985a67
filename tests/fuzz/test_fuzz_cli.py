"""Fuzz: `pyscatter integrate` parameters. Each case exits 2/1 with one line naming an option
it was given, or exits 0 with results equal to pyFAI's on the same frame and options."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from pyscatter.cli import main

from ._cases import pick, rng
from .conftest import record

N_CLI = 120

POOLS: dict[str, list] = {
    "--npt": ["40", "0", "-3", "1e9", "1000000000", "abc", "100001", "7"],
    "--npt-azim": ["8", "0", "40000", "x"],
    "--unit": ["q_nm^-1", "q_A^-1", "2th_deg", "r_mm", "nonsense", "chi_deg"],
    "--method": [
        "bbox,csr,cython",
        "no,csr,cython",
        "full,csr,cython",
        "nonsense",
        "bbox,histogram,cython",
        "bbox,csr,opencl",
        ",,",
        "bbox,csr,cython,extra",
    ],
    "--radial-range": [("0.5", "3"), ("5", "1"), ("nan", "1"), ("1e6", "2e6"), ("-1", "1e9")],
    "--azimuth-range": [("-90", "90"), ("400", "500"), ("inf", "0"), ("0", "0")],
    "--polarization-factor": ["0.99", "2", "nan", "-1"],
    "--exposure-time": ["2", "nan", "0", "-1", "inf", "Counters/none"],
    "--max-mem-mb": ["64", "nan", "0", "-1", "inf", "1e30"],
    "--n-jobs": ["1", "0", "-2"],
    "--error-model": ["poisson", "bogus"],
}
NAMES = {  # how messages may name each option
    "--npt": ("npt",),
    "--npt-azim": ("npt_azim", "npt-azim"),
    "--unit": ("unit",),
    "--method": ("method",),
    "--radial-range": ("radial_range", "radial-range"),
    "--azimuth-range": ("azimuth_range", "azimuth-range"),
    "--polarization-factor": ("polarization",),
    "--exposure-time": ("exposure_time", "exposure-time"),
    "--max-mem-mb": ("max-mem-mb",),
    "--n-jobs": ("n-jobs",),
    "--error-model": ("error-model", "error_model"),
}


def cli_case(seed: int) -> dict[str, object]:
    g = rng(seed)
    options = list(POOLS)
    chosen = [options[i] for i in g.permutation(len(options))[: int(g.integers(1, 4))]]
    return {name: pick(g, POOLS[name]) for name in chosen}


def argv_of(case: dict[str, object]) -> list[str]:
    out: list[str] = []
    for name, value in case.items():
        out += [name, *value] if isinstance(value, tuple) else [name, str(value)]
    return out


@pytest.fixture(scope="module")
def scan_path(tmp_path_factory):
    from pyscatter import datasets
    from pyscatter.translators.images import ImageStackTranslator

    scan = datasets.oriented_map((2, 2), rng=3, frame_shape=(64, 72))
    path = tmp_path_factory.mktemp("cli") / "scan.h5"
    ImageStackTranslator().translate(
        None,
        path,
        frames=scan.frames.reshape(-1, *scan.frame_shape),
        grid="Y=2,X=2",
        poni=scan.integrator().get_config(),
        mask=scan.mask,
    )
    return scan, path


def reference(scan, case: dict[str, object]) -> tuple[np.ndarray, np.ndarray]:
    """pyFAI on frame 0 with the case's options."""
    ai = scan.integrator()
    frame = scan.frames.reshape(-1, *scan.frame_shape)[0]
    method = str(case.get("--method", "bbox,csr,cython")).split(",")
    options = dict(
        unit=str(case.get("--unit", "q_nm^-1")),
        method=("bbox" if method[0] == "bbox" else method[0], "csr", "cython"),
        mask=scan.mask,
        polarization_factor=float(case["--polarization-factor"])
        if "--polarization-factor" in case
        else None,
    )
    if "--radial-range" in case:
        options["radial_range"] = tuple(float(v) for v in case["--radial-range"])
    if "--azimuth-range" in case:
        options["azimuth_range"] = tuple(float(v) for v in case["--azimuth-range"])
    npt = int(case.get("--npt", 1000))
    if "--npt-azim" in case:
        res = ai.integrate2d_ng(frame, npt, int(case["--npt-azim"]), **options)
    else:
        res = ai.integrate1d_ng(frame, npt, **options)
    factor = float(case.get("--exposure-time", 1.0))
    return np.asarray(res.radial), np.asarray(res.intensity).ravel() / factor


@pytest.mark.parametrize("block", range(4))
def test_fuzz_integrate_options(scan_path, capsys, block):
    scan, path = scan_path
    for seed in range(block * N_CLI // 4, (block + 1) * N_CLI // 4):
        case = cli_case(seed)
        code = main(["-q", "integrate", str(path), "--no-progress", *argv_of(case)])
        out, err = capsys.readouterr()
        names = [n for option in case for n in NAMES[option]]
        if code != 0:
            lines = err.strip().splitlines()
            assert code in (1, 2) and "Traceback" not in err, (seed, case, err)
            if lines and lines[0].startswith("usage:"):  # argparse: usage, then one error line
                assert lines[-1].startswith("pyscatter integrate: error: argument"), err
                record("cli integrate", "refused by argparse")
            else:
                assert len(lines) == 1, (seed, case, err)
                record("cli integrate", "refused")
            assert any(n in lines[-1] for n in names), (seed, case, err)
            continue
        group = out.strip().rsplit(":", 1)[1]
        with h5py.File(path, "r") as h5:
            intensity = h5[group]["Intensity"][0]
        radial, expected = reference(scan, case)
        assert intensity.shape == expected.shape, (seed, case)
        np.testing.assert_allclose(
            intensity, expected, rtol=1e-4, atol=1e-5 * np.abs(expected).max(), err_msg=str(case)
        )
        record("cli integrate", "accepted")
