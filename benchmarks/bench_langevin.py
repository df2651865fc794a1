"""Benchmark and heavy accuracy checks of ibtheory.dynamics (issue 6), measured side by side in one run.

1. Speed: 10^6 particles x 1000 steps of the 1-D double well (target <= 20 s), ``langevin`` recording a histogram
   every 10 steps, against a naive baseline in the same run (fresh arrays every step, np.histogram for records).
2. Accuracy at full size: TV(histogram of 10^5 / 10^6 particles, exact Gibbs) for beta in {1, 2, 4} (target
   <= 0.01), with the sampling floor of the TV for comparison; Kramers vs simulated MFPT at beta h = 4 and 5 with
   4,000 particles; SGD vs Lyapunov over learning rates.  ``--figures DIR`` saves the Kramers and SGD figures.

Usage: python benchmarks/bench_langevin.py [--quick]   (prints timings with the machine load from os.getloadavg)
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np

from ibtheory.dynamics import (
    DoubleWell,
    bin_probabilities,
    first_passage_times,
    kramers_rate,
    langevin,
    mfpt_estimate,
    mfpt_exact,
    sample_gibbs,
    total_variation,
)


def naive(potential, x0, beta, dt, n_steps, edges, every, seed):
    """Baseline: the textbook loop, new arrays every step, np.histogram for the records."""
    rng = np.random.default_rng(seed)
    x = x0.copy()
    hists = []
    for k in range(1, n_steps + 1):
        x = x - dt * potential.grad(x) + np.sqrt(2 * dt / beta) * rng.standard_normal(x.shape)
        if k % every == 0:
            hists.append(np.histogram(x[:, 0], edges)[0])
    return x, np.array(hists)


def load() -> str:
    a, b, c = os.getloadavg()
    return f"load average {a:.2f} {b:.2f} {c:.2f} ({os.cpu_count()} cores)"


def speed(n: int, steps: int) -> None:
    dw, edges = DoubleWell(1.0), np.linspace(-3, 3, 121)
    x0 = np.full((n, 1), -1.0)
    print(f"== speed: {n:.0e} particles x {steps} steps, 1-D double well, histogram every 10 steps; {load()}")
    t = time.perf_counter()
    naive(dw, x0, 4.0, 0.005, steps, edges, 10, 0)
    t_naive = time.perf_counter() - t
    print(f"naive baseline (allocating, np.histogram): {t_naive:7.2f} s")
    for scheme in ("euler", "leimkuhler-matthews"):
        for noise in ("numpy", "torch"):
            t = time.perf_counter()
            langevin(dw, x0, 4.0, 0.005, steps, scheme=scheme, record="histogram", bins=edges, every=10, seed=0,
                     noise=noise, progress=False)
            dt_run = time.perf_counter() - t
            flag = "meets" if dt_run <= 20 * (steps / 1000) * (n / 1e6) else "MISSES"
            print(f"langevin {scheme:20s} noise={noise:5s}: {dt_run:7.2f} s  ratio naive/ours "
                  f"{t_naive / dt_run:5.2f}  ({flag} the 20 s target)")
    print(f"after: {load()}")


def accuracy_tv(n: int) -> None:
    dw, edges, grid = DoubleWell(1.0), np.linspace(-2.5, 2.5, 21), np.linspace(-3.5, 3.5, 7001)
    print(f"== TV(histogram of {n:.0e} particles, Gibbs), 20 bins on [-2.5, 2.5], start: Gibbs at beta/2, t = 3")
    for beta in (1.0, 2.0, 4.0):
        q = bin_probabilities(dw, beta, edges)
        floor = np.sqrt(q * (1 - q)).sum() / np.sqrt(2 * np.pi * n)
        x0 = sample_gibbs(dw, beta / 2, n, grid, seed=1)
        for scheme, dt in (("euler", 0.005), ("leimkuhler-matthews", 0.02)):
            ds = langevin(dw, x0, beta, dt, int(3 / dt), scheme=scheme, record="histogram", bins=edges,
                          every=int(3 / dt), seed=2, progress=False)
            tv0 = total_variation(ds["p_hist"].isel(time=0).values, q)
            tv = total_variation(ds["p_hist"].isel(time=-1).values, q)
            print(f"beta {beta:3.0f} {scheme:20s} dt {dt:5.3f}: TV {tv:.4f} (start {tv0:.3f}, sampling floor "
                  f"{floor:.4f}) {'<= 0.01 ok' if tv <= 0.01 else '> 0.01 FAIL'}")


def accuracy_kramers(n: int, figures: Path | None) -> None:
    print(f"== Kramers: MFPT from -1 to +1, {n} particles, LM dt = 0.0025 (h = 1)")
    dw = DoubleWell(1.0)
    rows = []
    for beta in (4.0, 5.0):
        t = time.perf_counter()
        t_max = 6 * mfpt_exact(dw, beta, -1.0, 1.0)  # censor at 6 MFPTs (exponential-law MLE)
        times = first_passage_times(dw, beta, -1.0, 1.0, 0.0025, n, int(t_max / 0.0025), seed=7)
        est = mfpt_estimate(times, t_max=int(t_max / 0.0025) * 0.0025)
        sim, err = float(est["mfpt"]), float(est["stderr"])
        kr = 1 / kramers_rate(dw, beta, -1.0, 0.0)
        ex = mfpt_exact(dw, beta, -1.0, 1.0)
        print(f"beta h = {beta:.0f}: simulated {sim:7.2f} +- {err:.2f}, exact {ex:7.2f}, Kramers {kr:7.2f}; "
              f"|sim - K| / K = {abs(sim - kr) / kr:.3f}, |sim - K| / sim = {abs(sim - kr) / sim:.3f}, "
              f"|exact - K| / K = {abs(ex - kr) / kr:.3f}  ({time.perf_counter() - t:.1f} s)")
        rows.append((beta, sim, err, ex, kr))
    if figures is not None:
        from ibtheory.plots.langevin import kramers_check

        bh, sim, err, ex, kr = map(np.array, zip(*rows, strict=True))
        fine = np.linspace(2.0, 8.0, 25)
        curve = (fine, [mfpt_exact(dw, b, -1.0, 1.0) for b in fine], [1 / kramers_rate(dw, b, -1.0, 0.0)
                                                                        for b in fine])
        kramers_check(bh, sim, err, ex, kr, curve=curve).savefig(figures / "kramers.png", dpi=110)


def accuracy_sgd(figures: Path | None) -> None:
    from ibtheory import dynamics as dyn

    rng = np.random.default_rng(0)
    n, d = 256, 3
    x = rng.normal(size=(n, d)) @ (np.diag([1.2, 0.9, 0.6]) @ np.linalg.qr(rng.normal(size=(d, d)))[0])
    y = x @ np.array([1.0, -0.5, 0.25]) + 0.5 * rng.normal(size=n)
    h = x.T @ x / n
    w_min = np.linalg.solve(h, x.T @ y / n)
    c = dyn.gradient_covariance(dyn.linear_regression_gradients(x, y, w_min))
    print("== SGD on linear regression (n 256, d 3): stationary covariance vs Lyapunov (relative Frobenius)")
    for lr, batch in ((0.02, 16), (0.05, 8), (0.1, 4), (0.2, 4)):
        c_b = dyn.minibatch_covariance(c, batch)
        ds = dyn.sgd_linear_regression(x, y, lr, batch, n_steps=1000, n_chains=5000, w0=w_min, burn_in=int(20 / lr),
                                   every=int(2 / lr), seed=1)
        emp = dyn.empirical_covariance(ds["w"].values)
        cont, disc = dyn.lyapunov_covariance(h, c_b, lr), dyn.lyapunov_covariance(h, c_b, lr, discrete=True)
        print(f"lr {lr:4.2f} B {batch:2d}: vs continuous {dyn.relative_frobenius(emp, cont):.3f}, vs discrete "
              f"{dyn.relative_frobenius(emp, disc):.3f}  (lr lambda_max(H) = {lr * np.linalg.eigvalsh(h).max():.3f})")
        if figures is not None and lr == 0.05:
            from ibtheory.plots.langevin import sgd_vs_lyapunov

            sgd_vs_lyapunov(ds["w"].values, cont, title=f"SGD lr {lr}, B {batch} vs Lyapunov").savefig(
                figures / "sgd_lyapunov.png", dpi=110)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="10x smaller sizes")
    ap.add_argument("--figures", type=Path, default=None, help="save kramers.png and sgd_lyapunov.png here")
    ap.add_argument("--only", choices=["speed", "tv", "kramers", "sgd"], default=None, help="run one part")
    args = ap.parse_args()
    if args.figures is not None:
        args.figures.mkdir(parents=True, exist_ok=True)
    s = 10 if args.quick else 1
    if args.only in (None, "speed"):
        speed(10**6 // s, 1000)
    if args.only in (None, "tv"):
        accuracy_tv(10**5 // s)
        if not args.quick:
            accuracy_tv(10**6)
    if args.only in (None, "kramers"):
        accuracy_kramers(4_000 // s, args.figures)
    if args.only in (None, "sgd"):
        accuracy_sgd(args.figures)


if __name__ == "__main__":
    main()
