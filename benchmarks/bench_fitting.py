"""Speed of the vectorised profile fit against a ``scipy.optimize.curve_fit`` loop.

Fits the same seeded, noisy synthetic profiles (``--n`` profiles of ``--n-chi`` points, Poisson
sized Gaussian noise) three ways and prints median times, fits per second and ratios:

- ``fit_profiles``: the vectorised Levenberg--Marquardt (pyscatter.kernels.fitting);
- ``curve_fit loop``: what one writes by hand, ``curve_fit(model, chi, y, p0, sigma,
  absolute_sigma=True)`` row by row with default settings (finite-difference Jacobian), from
  the same starting estimates -- the peer of the measurement in docs/design.md;
- ``reference``: ``fit_profiles_reference`` (curve_fit with the analytic Jacobian and 1e-12
  tolerances, the tests' twin), to show how far apart the parameters are in standard errors.

Usage::

    python benchmarks/bench_fitting.py [--model maier_saupe] [--n 2048] [--repeats 3]
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import time
import warnings

import numpy as np
from scipy import optimize

from pyscatter.kernels.fitting import FitStatus, fit_profiles, fit_profiles_reference
from pyscatter.kernels.models import get_model, wrap_deg


def synthetic_profiles(model_name, n, n_chi, rng):
    """Oriented profiles with Poisson-like noise (sigma = sqrt(counts)) and their sigma."""
    chi = np.linspace(-180.0, 180.0, n_chi, endpoint=False) + 180.0 / n_chi
    x0 = rng.uniform(-180.0, 180.0, n)
    if model_name == "maier_saupe":
        kappa = rng.uniform(1.0, 16.0, n)
        params = np.stack(
            [
                rng.uniform(200.0, 2000.0, n) * np.exp(-kappa),
                kappa,
                x0,
                rng.uniform(50.0, 200.0, n),
                rng.uniform(-0.05, 0.05, n),
            ],
            axis=1,
        )
    else:
        params = np.stack(
            [
                rng.uniform(50.0, 200.0, n),
                rng.uniform(200.0, 2000.0, n),
                x0,
                rng.uniform(3.0, 30.0, n),
                rng.uniform(0.1, 0.9, n),
                rng.uniform(-0.05, 0.05, n),
            ],
            axis=1,
        )
    truth = get_model(model_name).func(chi, params)
    sigma = np.sqrt(truth)
    return chi, truth + sigma * rng.standard_normal(truth.shape), sigma


def median_time(func, repeats):
    """Median wall and CPU (this process) seconds over ``repeats`` calls, and the last result.

    The machine may be shared: the CPU time is the steadier number, the wall time the real one.
    """
    wall, cpu, result = [], [], None
    for _ in range(repeats):
        start, start_cpu = time.perf_counter(), time.process_time()
        result = func()
        wall.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    return statistics.median(wall), statistics.median(cpu), result


@contextlib.contextmanager
def single_blas_thread():
    """One BLAS thread, as in a worker process (see docs/design.md), if possible."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # not a pyscatter dependency
        yield
        return
    with threadpool_limits(1):
        yield


def curve_fit_loop(model, chi, profiles, sigma):
    """Plain curve_fit per row, defaults (Levenberg--Marquardt, numeric Jacobian)."""
    p0 = model.estimate(chi, profiles)

    def func(x, *p):
        return model.func(x, np.asarray(p))

    out = np.full(p0.shape, np.nan)
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", optimize.OptimizeWarning)
        for i in range(len(profiles)):
            try:
                out[i] = optimize.curve_fit(
                    func, chi, profiles[i], p0=p0[i], sigma=sigma[i], absolute_sigma=True
                )[0]
            except RuntimeError:
                pass
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="maier_saupe", choices=["maier_saupe", "pseudo_voigt"])
    parser.add_argument("--n", type=int, default=2048, help="profiles")
    parser.add_argument("--n-chi", type=int, default=360, help="points per profile")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    chi, profiles, sigma = synthetic_profiles(
        args.model, args.n, args.n_chi, np.random.default_rng(args.seed)
    )
    model = get_model(args.model)
    with single_blas_thread():
        t_fast, c_fast, fast = median_time(
            lambda: fit_profiles(chi, profiles, sigma, model=args.model), args.repeats
        )
        t_loop, c_loop, _ = median_time(
            lambda: curve_fit_loop(model, chi, profiles, sigma), args.repeats
        )
        t_ref, c_ref, ref = median_time(
            lambda: fit_profiles_reference(chi, profiles, sigma, model=args.model), 1
        )
    diff = fast.params - ref.params
    i_x0 = model.index(model.center)
    diff[:, i_x0] = wrap_deg(diff[:, i_x0], 180.0)
    both = (fast.status == FitStatus.OK) & (ref.status == FitStatus.OK)
    pulls = np.abs(diff[both]) / fast.errors[both]

    n = args.n
    print(f"model {args.model}: {n} profiles x {args.n_chi} points, {args.repeats} repeats")
    print("                          wall s     fits/s    CPU s     fits/s   ratio (CPU)")
    for name, wall, cpu in (
        ("fit_profiles", t_fast, c_fast),
        ("curve_fit loop", t_loop, c_loop),
        ("reference (1 run)", t_ref, c_ref),
    ):
        print(
            f"  {name:20s} {wall:8.3f} {n / wall:10.0f} {cpu:8.3f} {n / cpu:10.0f}"
            f"   {wall / t_fast:5.1f} ({cpu / c_fast:.1f})"
        )
    print(
        f"  status OK             fast {np.mean(fast.status == 0):.3f}"
        f"  reference {np.mean(ref.status == 0):.3f}"
    )
    print(
        f"  |fast - ref| / sigma  median {np.median(pulls):.1e}  max {np.max(pulls):.1e}"
        f"  ({both.sum()} rows, all parameters)"
    )
    print(f"  LM steps per row      median {np.median(fast.n_iter):.0f}  max {fast.n_iter.max()}")


if __name__ == "__main__":
    main()
