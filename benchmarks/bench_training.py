"""Training engine: per-step cost against a textbook autograd + torch.optim loop, and the paper's full run.

Usage: python benchmarks/bench_training.py [--device cpu] [--epochs 10000] [--workers N] [--trials 5] [--skip-run]

Measured side by side in one run, on one device (its name is printed):

1. One minibatch step of the paper's ensemble (50 repeats of 12-10-7-5-4-3-2 tanh, batch 512, Adam lr 4e-4): the
   engine (``BatchedMLP.grad_step``: hand-written backward into one flat gradient buffer, one fused Adam kernel
   called directly over the flat parameter buffer) against the textbook loop on the same batched model (autograd
   ``backward`` and ``torch.optim.Adam`` over the per-layer parameters).  Best and median over ``--trials`` blocks of
   200 steps, in wall time and in CPU time of the calling thread (the CPU may be shared), one torch thread.  The
   arithmetic of a step (forward, weight gradients, backpropagated deltas: 2 x 3 x sum fan_in fan_out x R x B flops,
   less the first layer's deltas) is compared with a large single-thread float32 GEMM measured in the same run: the
   machine's arithmetic limit for one core.
2. The paper's full run through ``ibtheory.nets.train`` (``--epochs``, 300 snapshots, 30-bin binning, gradient
   statistics): wall time, time spent measuring (binning of every snapshot, in the parent process) and the rest
   (training), steps per second.  ``--workers`` as in ``train`` (default: one process per core for a long run).
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import torch

from ibtheory import nets, tasks
from ibtheory.nets import data
from ibtheory.nets import run as run_module
from ibtheory.nets.loop import TrainConfig, _stepper, prepare
from ibtheory.nets.model import BatchedMLP

WIDTHS = (12, 10, 7, 5, 4, 3, 2)


def _device_name(device: str) -> str:
    if device.startswith("cuda"):
        return torch.cuda.get_device_name(torch.device(device))
    with open("/proc/cpuinfo") as f:
        model = next((ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), "cpu")
    return f"{model}, {os.cpu_count()} cores"


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def _blocks(step, device: str, trials: int, n: int = 200) -> tuple[np.ndarray, np.ndarray]:
    """Seconds per step over ``trials`` blocks of ``n`` steps: (wall, thread CPU)."""
    for _ in range(20):
        step()
    wall, cpu = [], []
    for _ in range(trials):
        _sync(device)
        w, c = time.perf_counter(), time.thread_time()
        for _ in range(n):
            step()
        _sync(device)
        wall.append((time.perf_counter() - w) / n)
        cpu.append((time.thread_time() - c) / n)
    return np.array(wall), np.array(cpu)


def _gemm_flops(device: str, trials: int) -> float:
    """Best float32 GEMM rate (flop/s) of 1024 x 1024 matrices on one thread: the arithmetic limit."""
    a = torch.randn(1024, 1024, device=device)
    b = torch.randn(1024, 1024, device=device)
    wall, _ = _blocks(lambda: torch.mm(a, b), device, trials, 10)
    return 2 * 1024**3 / wall.min()


def step_benchmark(device: str, trials: int) -> None:
    task = tasks.tishby()
    cfg = TrainConfig(repeats=50, epochs=1, device=device)
    setup = prepare(task, cfg)
    R, B = 50, 512
    idx = torch.as_tensor(np.take_along_axis(np.nonzero(setup.train_mask)[1].reshape(R, -1),
                                             data.epoch_orders(setup.keys, 1, 3277), axis=1)[:, :B], device=device)
    feats = torch.as_tensor(setup.features, dtype=torch.float32, device=device)
    y_all = torch.as_tensor(setup.labels, device=device)
    xb = feats.index_select(0, idx.reshape(-1)).view(R, B, -1).transpose(1, 2)
    yb = y_all.gather(1, idx)

    engine = BatchedMLP(WIDTHS, "tanh", setup.weights, device=device)
    flat = torch.nn.Parameter(engine.flat, requires_grad=False)
    flat.grad = engine.flat_grad
    opt_step = _stepper(torch.optim.Adam([flat], lr=4e-4, fused=True), flat)  # the loop's direct fused Adam

    def engine_step():
        engine.grad_step(xb, yb)
        opt_step()

    book = BatchedMLP(WIDTHS, "tanh", setup.weights, device=device)
    opt_b = torch.optim.Adam(book.parameters(), lr=4e-4)

    def textbook_step():
        opt_b.zero_grad()
        loss = torch.nn.functional.cross_entropy(book(xb)[-1], yb, reduction="sum") / B
        loss.backward()
        opt_b.step()

    old = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        peak = _gemm_flops(device, trials)
        res = {name: _blocks(f, device, trials) for name, f in (("engine", engine_step), ("textbook", textbook_step))}
    finally:
        torch.set_num_threads(old)
    macs = sum(a * b for a, b in zip(WIDTHS[:-1], WIDTHS[1:], strict=True))
    flops = 2 * R * B * (2 * macs + (macs - WIDTHS[0] * WIDTHS[1]))  # forward + dW + deltas (not into the input)
    print(f"one step, 50 repeats x batch 512, one thread; GEMM limit {peak / 1e9:.1f} GFLOP/s; a step is "
          f"{flops / 1e6:.1f} MFLOP = {flops / peak * 1e3:.3f} ms at that limit")
    for name, (wall, cpu) in res.items():
        print(f"  {name:8s}: wall best {wall.min() * 1e3:.3f} ms, median {np.median(wall) * 1e3:.3f} ms; thread CPU "
              f"best {cpu.min() * 1e3:.3f} ms, median {np.median(cpu) * 1e3:.3f} ms; {1 / wall.min():.0f} steps/s; "
              f"{flops / wall.min() / peak * 100:.1f} % of the GEMM limit")
    e, t = res["engine"][0], res["textbook"][0]
    print(f"  textbook / engine: {t.min() / e.min():.2f}x (best), {np.median(t) / np.median(e):.2f}x (median)")


def run_benchmark(device: str, epochs: int, workers: int | None) -> None:
    task = tasks.tishby()
    spent = {"measure": 0.0}
    real = run_module.measure

    def timed(*args, **kwargs):
        t = time.perf_counter()
        try:
            return real(*args, **kwargs)
        finally:
            spent["measure"] += time.perf_counter() - t

    run_module.measure = timed
    try:
        t0 = time.perf_counter()
        ds = nets.train(task, epochs=epochs, device=device, workers=workers, progress=False)
        wall = time.perf_counter() - t0
    finally:
        run_module.measure = real
    steps = epochs * -(-round(0.8 * 4096) // 512)
    used = workers if workers is not None else nets._parallel.auto_workers(TrainConfig(epochs=epochs, device=device))
    print(f"paper's run, 50 repeats x {epochs} epochs, {ds.sizes['epoch']} snapshots, binning + gradient statistics, "
          f"{used} worker process(es): {wall:.1f} s wall; measuring {spent['measure']:.1f} s (in the parent), "
          f"training and the rest {wall - spent['measure']:.1f} s; {steps / wall:.0f} steps/s; final mean "
          f"I(X;T) {float(ds['I_XT'].isel(epoch=-1).mean()):.6f} bits, I(T;Y) "
          f"{float(ds['I_TY'].isel(epoch=-1).mean()):.6f} bits")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--epochs", type=int, default=10_000)
    ap.add_argument("--workers", type=int, default=None)
    ap.add_argument("--trials", type=int, default=5)
    ap.add_argument("--skip-run", action="store_true", help="only the per-step comparison")
    args = ap.parse_args()
    TrainConfig(device=args.device)  # ValueError for an absent device before anything runs
    print(f"device: {_device_name(args.device)}; torch {torch.__version__}; load average {os.getloadavg()}")
    step_benchmark(args.device, args.trials)
    if not args.skip_run:
        run_benchmark(args.device, args.epochs, args.workers)
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
