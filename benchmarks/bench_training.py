"""Wall time of the paper's full setting, measured on a fraction of the epochs and extrapolated.

Usage: python benchmarks/bench_training.py [--epochs 1000] [--repeats 50]

Setting: 50 repeats of 12-10-7-5-4-3-2 tanh networks, Adam lr 4e-4, batch 512, 80 % train, 30-bin binning of all
4096 patterns at every snapshot, gradient statistics on.  The run goes through ``iter_training`` for ``--epochs``
epochs with snapshots as dense as the full run's early ones; each segment between two snapshots is timed, and
time = a * epochs + b is fitted over segments (a: one epoch of training for all repeats, b: the snapshot's forward
pass and checkpoint copy).  The binning of every snapshot is timed separately (c), and one save of a full-size
run Dataset (s).  Extrapolation to the full run: setup + 10,000 a + n_snap (b + c) + (saves every 60 s) s.
The CPU is shared with other work: the load average is printed next to the numbers, and everything is fitted twice:
with wall-clock time, and with the CPU time of the training thread (``time.thread_time``), which is what the wall
time would be on an idle machine (the minibatch-preparing worker thread runs on the second core).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import numpy as np
import torch
import xarray as xr

from ibtheory import store, tasks
from ibtheory.nets import run as run_module
from ibtheory.nets.data import snapshot_epochs
from ibtheory.nets.loop import TrainConfig, iter_training, prepare


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=1000)
    ap.add_argument("--repeats", type=int, default=50)
    ap.add_argument("--full-epochs", type=int, default=10_000)
    ap.add_argument("--full-snapshots", type=int, default=300)
    args = ap.parse_args()
    torch.set_num_threads(1)
    print(f"load average before: {os.getloadavg()} on {os.cpu_count()} cores")
    task = tasks.tishby()
    # snapshots of the fraction: the full run's schedule restricted to the first --epochs, plus every 100th epoch
    full = snapshot_epochs(args.full_epochs, args.full_snapshots)
    n_snap_full = full.size
    config = TrainConfig(repeats=args.repeats, epochs=args.epochs, snapshots=int((full <= args.epochs).sum()))
    t0 = time.perf_counter()
    setup = prepare(task, config)
    t_setup = time.perf_counter() - t0
    opts = {"n_bins": 30, "limits": (-1.0, 1.0), "scheme": "width", "noise_var": 0.1}
    seg_epochs, seg_times, est_times = [], {"wall": [], "cpu": []}, {"wall": [], "cpu": []}
    clocks = {"wall": time.perf_counter, "cpu": time.thread_time}
    last_epoch, wall0, cpu0 = 0, time.perf_counter(), time.thread_time()
    prev = {k: f() for k, f in clocks.items()}
    for snap in iter_training(task, config, setup=setup):
        got = {k: f() for k, f in clocks.items()}
        if snap.epoch > 0:
            seg_epochs.append(snap.epoch - last_epoch)
            for k in clocks:
                seg_times[k].append(got[k] - prev[k])
        run_module._estimate(snap, ("binning",), setup.p_x, setup.p_y_given_x, opts)
        for k, f in clocks.items():
            est_times[k].append(f() - got[k])
        last_epoch = snap.epoch
        prev = {k: f() for k, f in clocks.items()}
    wall = time.perf_counter() - wall0 + t_setup
    cpu = time.thread_time() - cpu0
    A = np.stack([seg_epochs, np.ones(len(seg_epochs))], axis=1)
    fits = {k: np.linalg.lstsq(A, np.array(seg_times[k]), rcond=None)[0] for k in clocks}
    # one save of a full-size run Dataset
    n_layers = len(config.hidden) + 1
    shape = (n_snap_full, n_layers, args.repeats)
    ds = xr.Dataset({f"v{i}": (("epoch", "layer", "repeat"), np.random.default_rng(i).random(shape))
                                for i in range(14)})
    with tempfile.TemporaryDirectory() as tmp:
        t1 = time.perf_counter()
        store.save(ds, os.path.join(tmp, "x.nc"))
        s = time.perf_counter() - t1
    print(f"measured: {args.epochs} epochs x {args.repeats} repeats with {len(seg_epochs) + 1} snapshots in "
          f"{wall:.1f} s wall, {cpu:.1f} s CPU of the training thread; setup {t_setup:.2f} s; "
          f"save s = {s * 1e3:.0f} ms")
    for k in clocks:
        a, b = fits[k]
        c = float(np.median(est_times[k]))
        train_full = args.full_epochs * a
        snaps_full = n_snap_full * (b + c)
        saves = (train_full + snaps_full) / 60.0 + 1
        total = t_setup + train_full + snaps_full + saves * s
        print(f"[{k}] per epoch a = {a * 1e3:.1f} ms; per snapshot b = {b * 1e3:.1f} ms (forward, checkpoint) + "
              f"c = {c * 1e3:.1f} ms (binning 6 layers)")
        print(f"[{k}] extrapolated full run ({args.full_epochs} epochs, {n_snap_full} snapshots): {total:.0f} s = "
              f"{total / 60:.1f} min (target <= 10 min): training {train_full:.0f} s, snapshots {snaps_full:.0f} s, "
              f"saves {saves * s:.0f} s")
    print(f"load average after: {os.getloadavg()} on {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
