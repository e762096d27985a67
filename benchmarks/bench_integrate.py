"""Batched sparse-matrix integration against pyFAI's per-frame loop (not a test).

pyFAI's "Eiger 1M" detector (1065 × 1030, 75 µm, module gaps masked, dummy value for dead
pixels), uint32 Poisson frames on two rings with a few dead pixels, 1000 radial bins in q,
polarization 0.99, methods ("bbox", "csr", "cython") and ("no", "csr", "cython"), without and
with Poisson sigma.

- pyFAI: ``integrate1d_ng`` called per frame, its integrator built beforehand (first call
  excluded), with one OpenMP thread (one core per worker, as pyscatter runs them; set
  ``OMP_NUM_THREADS`` to change it).
- pyscatter: :class:`~pyscatter.kernels.integrate.BatchIntegrator` (default
  ``block_frames=16``: longer inputs are integrated 16 frames at a time) called with blocks of
  16/32/64 frames.

The two are timed in alternation (so a busy machine slows both alike); the table gives medians
in frames/s, the ratio batched / pyFAI, the build time of the batched integrator, and the
largest relative deviation of intensity and sigma from pyFAI over the timed frames.

Run: ``.venv/bin/python benchmarks/bench_integrate.py`` (about a minute); ``--azimuthal`` adds
the "azimuthal" error model (bbox), ``--repeat`` changes the number of timed rounds.

``--invalid`` adds (``--invalid-only``: only) the invalid-pixel row (:func:`bench_invalid`): the
same frames as Eiger files store them, the uint32 maximum at every masked pixel (the module
gap, 38,110 pixels, and 1,000 scattered dead pixels) with that value as the dummy, against the same frames with those pixels zeroed
(target: within 10 %) and against pyFAI ``integrate1d_ng`` per frame with the same mask and
dummy; ms per frame, processor time (``time.process_time``: less moved by a busy machine).
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")  # before pyFAI's OpenMP runtime starts

import argparse  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

from pyscatter.kernels.integrate import BatchIntegrator  # noqa: E402

SHAPE = (1065, 1030)
NPT = 1000
BLOCKS = (16, 32, 64)


def make_setup(n_frames: int, seed: int = 0):
    """A pyFAI integrator for the Eiger 1M and seeded uint32 Poisson frames."""
    from pyFAI.detectors import detector_factory
    from pyFAI.integrator.azimuthal import AzimuthalIntegrator

    detector = detector_factory("Eiger 1M")
    assert detector.shape == SHAPE
    ai = AzimuthalIntegrator(
        dist=0.2, poni1=0.045, poni2=0.035, detector=detector, wavelength=1e-10
    )
    q = ai.qArray(SHAPE)  # nm^-1
    rings = 200 * np.exp(-0.5 * ((q - 8) / 0.1) ** 2) + 80 * np.exp(-0.5 * ((q - 14) / 0.15) ** 2)
    rng = np.random.default_rng(seed)
    frames = rng.poisson(20 + rings, size=(n_frames, *SHAPE)).astype(np.uint32)
    frames[:, 300, 400:410] = np.iinfo(np.uint32).max  # dead pixels: the detector dummy
    return ai, frames


def max_rel(a: np.ndarray, b: np.ndarray) -> float:
    keep = b != 0
    return float(np.max(np.abs(a[keep] - b[keep]) / np.abs(b[keep]))) if keep.any() else 0.0


def bench_case(ai, frames, split: str, error_model: str | None, repeat: int) -> dict:
    method = (split, "csr", "cython")
    options = {"method": method, "error_model": error_model, "polarization_factor": 0.99}
    ai.integrate1d_ng(frames[0], NPT, **options)  # pyFAI builds its engine
    t0 = time.perf_counter()
    batch = BatchIntegrator.from_pyfai(ai, SHAPE, npt=NPT, **options)
    build = time.perf_counter() - t0
    batch.integrate(frames[:2])  # warm-up

    pyfai_times: list[float] = []
    batch_times: dict[int, list[float]] = {b: [] for b in BLOCKS}
    refs: dict[int, tuple] = {}
    for r in range(repeat):
        for k in (2 * r, 2 * r + 1):  # two pyFAI frames per round
            i = k % len(frames)
            t0 = time.perf_counter()
            res = ai.integrate1d_ng(frames[i], NPT, **options)
            pyfai_times.append(time.perf_counter() - t0)
            refs[i] = (res.intensity, res.sigma)
        for b in BLOCKS:
            t0 = time.perf_counter()
            out = batch.integrate(frames[:b])
            batch_times[b].append(time.perf_counter() - t0)
    idx = sorted(refs)
    dev_i = max_rel(out.intensity[idx], np.array([refs[i][0] for i in idx]))
    dev_s = float("nan")
    if error_model:
        dev_s = max_rel(out.sigma[idx], np.array([refs[i][1] for i in idx]))
    return {
        "pyfai": 1.0 / float(np.median(pyfai_times)),
        "fps": {b: b / float(np.median(t)) for b, t in batch_times.items()},
        "build_s": build,
        "dev_i": dev_i,
        "dev_s": dev_s,
    }


def bench_invalid(
    ai, frames, repeat: int, block: int = 16, n_dead: int = 1000, seed: int = 1
) -> dict:
    """ms per frame: stored invalid values inside the mask, zeroed, and pyFAI (see above)."""
    invalid = np.iinfo(np.uint32).max
    mask = ai.detector.mask.astype(bool)
    mask[300, 400:410] = True  # the dead pixels of make_setup, masked too
    # and scattered dead pixels as a real pixel_mask has them (here 0.1 %): every pixel piece
    # of the kernel holds some, not only the pieces of the module gap
    rng = np.random.default_rng(seed)
    mask.flat[rng.choice(mask.size, n_dead, replace=False)] = True
    stored, zeroed = frames[:block].copy(), frames[:block].copy()
    stored[:, mask] = invalid
    zeroed[:, mask] = 0
    options = {"method": ("bbox", "csr", "cython"), "polarization_factor": 0.99}
    options.update(mask=mask, dummy=invalid)
    batch = BatchIntegrator.from_pyfai(ai, SHAPE, npt=NPT, **options)
    ai.integrate1d_ng(stored[0], NPT, **options)  # pyFAI builds its engine
    same = (
        batch.integrate(stored).intensity.tobytes() == batch.integrate(zeroed).intensity.tobytes()
    )
    times: dict[str, list[float]] = {"stored": [], "zeroed": [], "pyfai": []}
    for r in range(repeat):
        for name, data in (("stored", stored), ("zeroed", zeroed))[:: 1 if r % 2 else -1]:
            t0 = time.process_time()
            batch.integrate(data)
            times[name].append((time.process_time() - t0) / block)
        t0 = time.process_time()
        ai.integrate1d_ng(stored[r % block], NPT, **options)
        times["pyfai"].append(time.process_time() - t0)
    out = {k: 1e3 * float(np.median(v)) for k, v in times.items()}
    return {**out, "n_invalid": int(mask.sum()), "identical": same}


def print_invalid(ai, frames, repeat: int) -> None:
    r = bench_invalid(ai, frames, repeat)
    print(
        f"\ninvalid pixels: {r['n_invalid']} uint32-maximum pixels, all masked, dummy = 2**32-1, "
        "bbox/csr, no sigma, blocks of 16 (ms per frame, processor time, median)"
    )
    print(
        f"stored {r['stored']:.2f}  zeroed {r['zeroed']:.2f}  stored/zeroed "
        f"{r['stored'] / r['zeroed']:.2f}  pyFAI {r['pyfai']:.2f}  pyFAI/stored "
        f"{r['pyfai'] / r['stored']:.1f}x  identical output: {r['identical']}",
        flush=True,
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7, help="timed rounds per case")
    parser.add_argument("--azimuthal", action="store_true", help="also the azimuthal error model")
    parser.add_argument("--invalid", action="store_true", help="also the invalid-pixel row")
    parser.add_argument("--invalid-only", action="store_true", help="only the invalid-pixel row")
    args = parser.parse_args(argv)

    t_start = time.perf_counter()
    ai, frames = make_setup(max(BLOCKS))
    if args.invalid_only:
        print_invalid(ai, frames, 3 * args.repeat)
        return
    cases = [(split, em) for split in ("bbox", "no") for em in (None, "poisson")]
    if args.azimuthal:
        cases.append(("bbox", "azimuthal"))
    print(
        f"Eiger 1M frames {SHAPE[0]}x{SHAPE[1]} uint32, {NPT} bins q_nm^-1, polarization 0.99, "
        f"OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']}; medians of {args.repeat} rounds"
    )
    header = (
        f"{'method':9s} {'sigma':9s} {'pyFAI/s':>7s} "
        + " ".join(f"{'b' + str(b) + '/s':>7s} {'x':>5s}" for b in BLOCKS)
        + f" {'build s':>7s} {'dev I':>8s} {'dev σ':>8s}"
    )
    print(header)
    print("-" * len(header))
    for split, em in cases:
        r = bench_case(ai, frames, split, em, 1 if em == "azimuthal" else args.repeat)
        cells = " ".join(f"{r['fps'][b]:7.1f} {r['fps'][b] / r['pyfai']:5.1f}" for b in BLOCKS)
        print(
            f"{split + '/csr':9s} {str(em):9s} {r['pyfai']:7.1f} {cells} {r['build_s']:7.2f} "
            f"{r['dev_i']:8.1e} {r['dev_s']:8.1e}",
            flush=True,
        )
    print(
        "frames/s (median); x = batched / pyFAI per frame; dev = largest relative deviation "
        f"from pyFAI; total {time.perf_counter() - t_start:.0f} s"
    )
    if args.invalid:
        print_invalid(ai, frames, 3 * args.repeat)


if __name__ == "__main__":
    main()
