"""Binning MI of one snapshot (50 repeats x 6 layers x 4096 patterns): vectorised vs per-network np.unique.

Usage: python benchmarks/bench_binning.py [--repeats 50] [--trials 7]

The activations are those of the paper's 12-10-7-5-4-3-2 tanh networks at a real training snapshot (a few epochs
of Adam), so the number of distinct binned rows per layer is realistic.  Wall time and the CPU time of the thread
(``time.thread_time``, the idle-machine estimate) are both reported.  The baseline is the straightforward
implementation: for every network and layer, digitise, ``np.unique(rows, axis=0, return_inverse=True)``, then
p(t) and p(t, y) by ``np.bincount``.  Both are checked to agree; the best of ``--trials`` timings is reported with
the machine load (``os.getloadavg``), since the CPU is shared.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import torch

from ibtheory import tasks
from ibtheory.estimators import binned_information
from ibtheory.nets.loop import TrainConfig, iter_training


def naive(acts_per_layer, p_x, p_y_x, n_bins=30, lo=-1.0, hi=1.0):
    """Per network, per layer: np.unique over binned rows (the baseline)."""
    out = np.zeros((len(acts_per_layer), acts_per_layer[0].shape[0], 2))
    p_joint = p_x[:, None] * p_y_x
    for j, acts in enumerate(acts_per_layer):
        for r in range(acts.shape[0]):
            b = np.clip(np.floor((acts[r] - lo) / (hi - lo) * n_bins), 0, n_bins - 1)
            _, t = np.unique(b, axis=0, return_inverse=True)
            t = t.ravel()
            p_t = np.bincount(t, weights=p_x)
            p_ty = np.stack([np.bincount(t, weights=p_joint[:, y], minlength=p_t.size) for y in range(2)], 1)
            h = lambda p: -np.sum(p[p > 0] * np.log2(p[p > 0]))  # noqa: E731
            out[j, r] = h(p_t), h(p_t) + h(p_joint.sum(0)) - h(p_ty.ravel())
    return out


def best_of(fn, trials, clock=time.perf_counter):
    times = []
    for _ in range(trials):
        t0 = clock()
        res = fn()
        times.append(clock() - t0)
    return min(times), float(np.median(times)), res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=50)
    ap.add_argument("--trials", type=int, default=7)
    args = ap.parse_args()
    torch.set_num_threads(1)
    task = tasks.tishby()
    p_x, p_y_x = tasks.conditional(task["p_xy"].values)
    snaps = list(iter_training(task, TrainConfig(repeats=args.repeats, epochs=30, snapshots=3)))
    acts = snaps[-1].activations  # 6 layers of (R, 4096, width), float32, epoch 30
    print(f"load average before: {os.getloadavg()}")
    fast_best, fast_med, fast = best_of(lambda: [binned_information(a, p_x, p_y_x) for a in acts], args.trials)
    slow_best, slow_med, slow = best_of(lambda: naive(acts, p_x, p_y_x), max(1, args.trials // 3))
    cpu_fast, _, _ = best_of(lambda: [binned_information(a, p_x, p_y_x) for a in acts], args.trials, time.thread_time)
    cpu_slow, _, _ = best_of(lambda: naive(acts, p_x, p_y_x), 1, time.thread_time)
    fast_arr = np.stack([np.stack([r.I_XT, r.I_TY], -1) for r in fast])
    np.testing.assert_allclose(fast_arr, slow, atol=1e-9, err_msg="vectorised and naive binning disagree")
    states = [int(r.n_states.mean()) for r in fast]
    print(f"snapshot: {args.repeats} repeats x {len(acts)} layers x 4096 patterns; mean distinct states per layer "
          f"{states}")
    print(f"vectorised binning: best {fast_best * 1e3:.1f} ms, median {fast_med * 1e3:.1f} ms (target <= 50 ms)")
    print(f"naive np.unique   : best {slow_best * 1e3:.1f} ms, median {slow_med * 1e3:.1f} ms")
    print(f"CPU time of the thread (idle-machine estimate): vectorised {cpu_fast * 1e3:.1f} ms, naive "
          f"{cpu_slow * 1e3:.1f} ms")
    print(f"speed-up (best/best wall): {slow_best / fast_best:.1f}x, (CPU): {cpu_slow / cpu_fast:.1f}x; results agree "
          "to 1e-9 bits")
    print(f"load average after: {os.getloadavg()} on {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
