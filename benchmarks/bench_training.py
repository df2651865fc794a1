"""Training engine: per-step cost against a textbook autograd + torch.optim loop; full runs of the paper and MNIST.

Usage: python benchmarks/bench_training.py [--device cpu] [--epochs 10000] [--workers N] [--trials 5] [--skip-run]
       [--mnist-dir DIR [--mnist-epochs-mlp 2000] [--mnist-epochs-conv 300] [--mnist-repeats 10] [--mnist-n N]
       [--skip-paper]]

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
3. With ``--mnist-dir`` (the folder with the t10k IDX files), MNIST at the full size of
   ``ibtheory.reproduce.mnist.MNIST_SIZES["full"]`` (all 10,000 test digits at 28x28, 10 repeats, batch 256, 60
   snapshots, binning and ensemble estimators): the per-step comparison of 1. for the MLP 784-32-16-8-4-10 tanh
   (Adam lr 1e-3), then the full runs of the MLP (``ibtheory.nets.train``, ``--mnist-epochs-mlp``, ``--workers``)
   and of the conv net (``ibtheory.nets.conv.train_conv``, ReLU, 5x5 convolutions with 4 and 8 channels, dense
   32-8, Adam lr 3e-3, ``--mnist-epochs-conv``), each timed as 2.  ``--mnist-repeats`` and ``--mnist-n`` change
   the repeats and the number of digits; ``--skip-paper`` leaves out 1. and 2.; ``--skip-run`` leaves out every
   full run.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time
from collections.abc import Iterator

import numpy as np
import torch
import xarray as xr

from ibtheory import nets, tasks
from ibtheory._validate import integer
from ibtheory.mnist import mnist_files, mnist_task
from ibtheory.nets import conv as conv_module
from ibtheory.nets import data
from ibtheory.nets import run as run_module
from ibtheory.nets.loop import TrainConfig, _stepper, prepare
from ibtheory.nets.model import BatchedMLP
from ibtheory.reproduce.mnist import MLP_HIDDEN, MNIST_SIZES
from ibtheory.reproduce.runs import limits_for

WIDTHS = (12, 10, 7, 5, 4, 3, 2)
MNIST_FULL = MNIST_SIZES["full"]
MNIST_LR = {"mlp": 1e-3, "conv": 3e-3}  # the learning rates of ibtheory.reproduce.mnist.run


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


def step_benchmark(device: str, trials: int, task: xr.Dataset | None = None,
                   hidden: tuple[int, ...] = WIDTHS[1:-1], repeats: int = 50, batch_size: int = 512,
                   lr: float = 4e-4, title: str = "") -> None:
    """Per-step cost of the engine against the textbook autograd + torch.optim.Adam loop, R = ``repeats`` tanh MLPs
    (n_in, *hidden, n_out) on ``task`` (default: the paper's), batch B = min(``batch_size``, training patterns).

    A step is 2 R B (2 sum fan_in fan_out + sum fan_in fan_out - n_in w_1) flops (forward, weight gradients, deltas
    not into the input); printed lines start with ``title``."""
    task = tasks.tishby() if task is None else task
    cfg = TrainConfig(hidden=hidden, repeats=repeats, epochs=1, lr=lr, batch_size=batch_size, device=device)
    setup = prepare(task, cfg)
    widths = (setup.features.shape[1],) + cfg.hidden + (setup.p_y_given_x.shape[1],)
    R = repeats
    train_idx = np.nonzero(setup.train_mask)[1].reshape(R, -1)
    B = min(batch_size, train_idx.shape[1])
    idx = torch.as_tensor(np.take_along_axis(train_idx, data.epoch_orders(setup.keys, 1, train_idx.shape[1]),
                                             axis=1)[:, :B], device=device)
    feats = torch.as_tensor(setup.features, dtype=torch.float32, device=device)
    y_all = torch.as_tensor(setup.labels, device=device)
    xb = feats.index_select(0, idx.reshape(-1)).view(R, B, -1).transpose(1, 2)
    yb = y_all.gather(1, idx)

    engine = BatchedMLP(widths, "tanh", setup.weights, device=device)
    flat = torch.nn.Parameter(engine.flat, requires_grad=False)
    flat.grad = engine.flat_grad
    opt_step = _stepper(torch.optim.Adam([flat], lr=lr, fused=True), flat)  # the loop's direct fused Adam

    def engine_step():
        engine.grad_step(xb, yb)
        opt_step()

    book = BatchedMLP(widths, "tanh", setup.weights, device=device)
    opt_b = torch.optim.Adam(book.parameters(), lr=lr)

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
    macs = sum(a * b for a, b in zip(widths[:-1], widths[1:], strict=True))
    flops = 2 * R * B * (2 * macs + (macs - widths[0] * widths[1]))  # forward + dW + deltas (not into the input)
    print(f"{title}one step, {R} repeats x batch {B}, one thread; GEMM limit {peak / 1e9:.1f} GFLOP/s; a step is "
          f"{flops / 1e6:.1f} MFLOP = {flops / peak * 1e3:.3f} ms at that limit")
    for name, (wall, cpu) in res.items():
        print(f"  {name:8s}: wall best {wall.min() * 1e3:.3f} ms, median {np.median(wall) * 1e3:.3f} ms; thread CPU "
              f"best {cpu.min() * 1e3:.3f} ms, median {np.median(cpu) * 1e3:.3f} ms; {1 / wall.min():.0f} steps/s; "
              f"{flops / wall.min() / peak * 100:.1f} % of the GEMM limit")
    e, t = res["engine"][0], res["textbook"][0]
    print(f"  textbook / engine: {t.min() / e.min():.2f}x (best), {np.median(t) / np.median(e):.2f}x (median)")


@contextlib.contextmanager
def _timed_measure(*modules) -> Iterator[dict[str, float]]:
    """Accumulate in ``spent["measure"]`` the seconds spent in ``module.measure`` (the estimators of every snapshot,
    in this process) of each module while the block runs; the originals are restored afterwards."""
    spent = {"measure": 0.0}
    reals = [m.measure for m in modules]

    def wrap(real):
        def timed(*args, **kwargs):
            t = time.perf_counter()
            try:
                return real(*args, **kwargs)
            finally:
                spent["measure"] += time.perf_counter() - t
        return timed

    for m, real in zip(modules, reals, strict=True):
        m.measure = wrap(real)
    try:
        yield spent
    finally:
        for m, real in zip(modules, reals, strict=True):
            m.measure = real


def _steps(n_x: int, epochs: int, batch_size: int, train_fraction: float = 0.8) -> int:
    """Optimiser steps of a run: epochs x ceil(n_train / batch_size), n_train = round(train_fraction n_x)."""
    return epochs * -(-round(train_fraction * n_x) // batch_size)


def run_benchmark(device: str, epochs: int, workers: int | None) -> None:
    task = tasks.tishby()
    with _timed_measure(run_module) as spent:
        t0 = time.perf_counter()
        ds = nets.train(task, epochs=epochs, device=device, workers=workers, progress=False)
        wall = time.perf_counter() - t0
    steps = _steps(4096, epochs, 512)
    used = workers if workers is not None else nets._parallel.auto_workers(TrainConfig(epochs=epochs, device=device))
    print(f"paper's run, 50 repeats x {epochs} epochs, {ds.sizes['epoch']} snapshots, binning + gradient statistics, "
          f"{used} worker process(es): {wall:.1f} s wall; measuring {spent['measure']:.1f} s (in the parent), "
          f"training and the rest {wall - spent['measure']:.1f} s; {steps / wall:.0f} steps/s; final mean "
          f"I(X;T) {float(ds['I_XT'].isel(epoch=-1).mean()):.6f} bits, I(T;Y) "
          f"{float(ds['I_TY'].isel(epoch=-1).mean()):.6f} bits")


def _mnist_name(task: xr.Dataset) -> str:
    return f"{task.sizes['x']} digits {task.attrs['image_height']}x{task.attrs['image_width']}"


def mnist_step_benchmark(device: str, trials: int, task: xr.Dataset, repeats: int) -> None:
    """The per-step comparison for the MNIST MLP 784-32-16-8-4-10 tanh at the full size's batch and Adam lr."""
    widths = (task.sizes["dim"],) + MLP_HIDDEN + (task.sizes["y"],)
    step_benchmark(device, trials, task, MLP_HIDDEN, repeats, MNIST_FULL["batch_size"], MNIST_LR["mlp"],
                   title=f"MNIST MLP {'-'.join(map(str, widths))} tanh ({_mnist_name(task)}), ")


def mnist_run_benchmark(device: str, task: xr.Dataset, epochs_mlp: int, epochs_conv: int, repeats: int,
                        workers: int | None) -> None:
    """Full MNIST runs as ``ibtheory.reproduce.mnist.run`` trains them at the full size: wall time, time in the
    estimators (binning and ensemble of every snapshot, in this process) and the rest (training), steps/s."""
    s = MNIST_FULL
    common = dict(repeats=repeats, batch_size=s["batch_size"], snapshots=s["snapshots"],
                  estimators=("binning", "ensemble"), seed=0, device=device, progress=False)
    n_x, name, dev = task.sizes["x"], _mnist_name(task), _device_name(device)
    widths = (task.sizes["dim"],) + MLP_HIDDEN + (task.sizes["y"],)
    with _timed_measure(run_module) as spent:
        t0 = time.perf_counter()
        mlp = nets.train(task, hidden=MLP_HIDDEN, activation="tanh", epochs=epochs_mlp, lr=MNIST_LR["mlp"],
                         limits=limits_for("tanh"), workers=workers, **common)
        wall = time.perf_counter() - t0
    used = workers if workers is not None else nets._parallel.auto_workers(
        TrainConfig(repeats=repeats, epochs=epochs_mlp, device=device))
    _print_run(f"MNIST MLP {'-'.join(map(str, widths))} tanh, {name}, {repeats} repeats x {epochs_mlp} epochs, "
               f"batch {s['batch_size']}, {min(used, repeats)} worker process(es), on {dev}", mlp, wall,
               spent["measure"], _steps(n_x, epochs_mlp, s["batch_size"]))
    kernel = 5 if task.attrs["image_height"] >= 8 else 3
    threads = torch.get_num_threads()
    with _timed_measure(conv_module) as spent:
        t0 = time.perf_counter()
        conv = conv_module.train_conv(task, channels=s["channels"], kernel=kernel, hidden=s["conv_hidden"],
                                      activation="relu", epochs=epochs_conv, lr=MNIST_LR["conv"],
                                      limits=limits_for("relu"), **common)
        wall = time.perf_counter() - t0
    _print_run(f"MNIST conv net relu, {kernel}x{kernel} convolutions {'-'.join(map(str, s['channels']))} channels, "
               f"dense {'-'.join(map(str, s['conv_hidden']))}, {name}, {repeats} repeats x {epochs_conv} epochs, "
               f"batch {s['batch_size']}, {threads} torch thread(s), on {dev}", conv, wall, spent["measure"],
               _steps(n_x, epochs_conv, s["batch_size"]))


def _print_run(what: str, ds: xr.Dataset, wall: float, measuring: float, steps: int) -> None:
    print(f"{what}: {ds.sizes['epoch']} snapshots, binning + ensemble + gradient statistics: {wall:.1f} s wall; "
          f"measuring {measuring:.1f} s (in the parent), training and the rest {wall - measuring:.1f} s; "
          f"{steps / wall:.1f} steps/s; final mean test accuracy "
          f"{float(ds['test_accuracy'].isel(epoch=-1).mean()):.4f}")


def _checked(args: argparse.Namespace) -> xr.Dataset | None:
    """Validate the options before any work (``ValueError``/``FileNotFoundError`` naming the option); the MNIST task
    when ``--mnist-dir`` is given."""
    TrainConfig(device=args.device)  # ValueError for an absent device before anything runs
    integer(args.trials, "--trials", 1)
    integer(args.epochs, "--epochs", 1)
    if args.workers is not None and integer(args.workers, "--workers", 1) > 1 and args.device != "cpu":
        raise ValueError(f"--workers must be 1 on device {args.device!r} (worker processes split CPU cores)")
    if args.mnist_dir is None:
        if args.skip_paper:
            raise ValueError("--skip-paper leaves nothing to time without --mnist-dir")
        return None
    integer(args.mnist_epochs_mlp, "--mnist-epochs-mlp", 1)
    integer(args.mnist_epochs_conv, "--mnist-epochs-conv", 1)
    integer(args.mnist_repeats, "--mnist-repeats", 1)
    if args.mnist_n is not None:
        integer(args.mnist_n, "--mnist-n", 3)  # 80 % for training and at least one digit for testing
    try:
        mnist_files(args.mnist_dir)
    except FileNotFoundError as exc:
        raise ValueError(f"--mnist-dir: {exc}") from None
    try:
        return mnist_task(args.mnist_dir, n=args.mnist_n, seed=0, pixels=MNIST_FULL["pixels"])
    except ValueError as exc:
        raise ValueError(f"MNIST task (--mnist-dir, --mnist-n): {exc}") from None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu", help="torch device: cpu, cuda or cuda:N")
    ap.add_argument("--epochs", type=int, default=10_000, help="epochs of the paper's run")
    ap.add_argument("--workers", type=int, default=None, help="worker processes of the paper's and the MNIST MLP's "
                    "run (default: as ibtheory.nets.train)")
    ap.add_argument("--trials", type=int, default=5, help="blocks of 200 steps per per-step comparison")
    ap.add_argument("--skip-run", action="store_true", help="only the per-step comparisons, no full run")
    ap.add_argument("--mnist-dir", default=None, help="folder with the t10k MNIST IDX files: also time MNIST at the "
                    "full size")
    ap.add_argument("--mnist-epochs-mlp", type=int, default=MNIST_FULL["mlp_epochs"], help="epochs of the MNIST MLP")
    ap.add_argument("--mnist-epochs-conv", type=int, default=MNIST_FULL["conv_epochs"],
                    help="epochs of the MNIST conv net")
    ap.add_argument("--mnist-repeats", type=int, default=MNIST_FULL["repeats"], help="repeats of the MNIST runs")
    ap.add_argument("--mnist-n", type=int, default=MNIST_FULL["n"], help="MNIST test digits (default: all 10,000)")
    ap.add_argument("--skip-paper", action="store_true", help="time only MNIST (needs --mnist-dir)")
    args = ap.parse_args()
    try:
        task = _checked(args)
    except (ValueError, OSError) as exc:  # OSError: an unreadable MNIST file
        sys.exit(f"{ap.prog}: error: {exc}")
    print(f"device: {_device_name(args.device)}; torch {torch.__version__}; load average {os.getloadavg()}")
    if not args.skip_paper:
        step_benchmark(args.device, args.trials)
        if not args.skip_run:
            run_benchmark(args.device, args.epochs, args.workers)
    if task is not None:
        mnist_step_benchmark(args.device, args.trials, task, args.mnist_repeats)
        if not args.skip_run:
            mnist_run_benchmark(args.device, task, args.mnist_epochs_mlp, args.mnist_epochs_conv,
                                args.mnist_repeats, args.workers)
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
