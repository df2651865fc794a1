"""Training an ensemble on several CPU cores: the repeats split over worker processes, snapshots merged in order.

Repetition r of a run depends only on its own stream (``SeedSequence(seed, spawn_key=(r,))``: weights, split,
labels, minibatch orders), and the batched ensemble equals R separate trainings, so repeats
``repeat_start .. repeat_start + R - 1`` can be cut into contiguous slices, each trained by :func:`iter_training`
in its own process with one torch thread, and the snapshots put side by side along the repeat axis give the
snapshot of the whole ensemble.  Processes, not threads: the per-operation Python work of these small batched
kernels serialises threads on the GIL (two threads of 25 repeats ran slower than one thread of 50), and OpenMP
threads inside one operation spin-wait badly when another job shares the cores.

Divergence: a worker that raises :class:`TrainingDiverged` at epoch e ends the run there; workers that reach a
later point are stopped, and the repeats of every worker that diverged at the same epoch are named together, as the
single-process loop would.
"""

from __future__ import annotations

import dataclasses
import multiprocessing
import os
import threading
import traceback
from collections.abc import Iterator

import numpy as np
import torch
import xarray as xr

from .loop import Snapshot, TrainConfig, TrainingDiverged, iter_training

__all__ = ["iter_training_parallel", "auto_workers"]


def auto_workers(config: TrainConfig) -> int:
    """Worker processes :func:`ibtheory.nets.train` uses by default: on the CPU, one per usable core (at most one
    per repeat) when the run is long enough to pay for starting them (repeats x epochs >= 20,000, i.e. more than
    about ten seconds of training), else 1 (train in this process); also 1 inside a daemonic process (a dask or
    pool worker) or off the main thread."""
    if config.device != "cpu" or config.repeats * config.epochs < 20_000:
        return 1
    # a daemonic process (a dask or multiprocessing pool worker) may not have children, and forking from a thread
    # other than the main one can copy a held lock: train in this process there
    if multiprocessing.current_process().daemon or threading.current_thread() is not threading.main_thread():
        return 1
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, min(cores, config.repeats))


def _slices(config: TrainConfig, workers: int) -> list[tuple[int, int]]:
    """(offset, count) of the repeats of each worker: contiguous, sizes differing by at most one."""
    sizes = np.full(workers, config.repeats // workers)
    sizes[: config.repeats % workers] += 1
    offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    return [(int(o), int(n)) for o, n in zip(offsets, sizes, strict=True) if n > 0]


def _resume_slice(resume: dict | None, offset: int, count: int) -> dict | None:
    if resume is None:
        return None
    out = dict(resume)
    for k in ("params", "opt_m", "opt_v"):
        out[k] = np.asarray(resume[k])[offset:offset + count]
    return out


def _worker(conn, task: xr.Dataset, config: TrainConfig, resume: dict | None) -> None:
    """Train one slice of the repeats and send its snapshots (or its divergence, or an error) down ``conn``."""
    torch.set_num_threads(1)
    try:
        for snap in iter_training(task, config, resume=resume):
            conn.send(("snap", snap))
        conn.send(("done", None))
    except TrainingDiverged as exc:
        conn.send(("diverged", (exc.args[0], exc.epoch, exc.repeats, exc.what)))
    except KeyboardInterrupt:
        pass
    except BaseException as exc:  # noqa: BLE001 (reported to the parent, which raises)
        conn.send(("error", f"{type(exc).__name__}: {exc}\n{traceback.format_exc()}"))
    finally:
        conn.close()


def merge_snapshots(parts: list[Snapshot]) -> Snapshot:
    """The snapshot of the whole ensemble from those of consecutive repeat slices (same epoch)."""
    first = parts[0]
    cat0 = lambda name: np.concatenate([getattr(p, name) for p in parts], axis=0)  # noqa: E731
    cat1 = lambda name: np.concatenate([getattr(p, name) for p in parts], axis=1)  # noqa: E731
    ckpt = {k: np.concatenate([p.checkpoint[k] for p in parts], axis=0) for k in ("params", "opt_m", "opt_v")}
    ckpt["opt_step"] = first.checkpoint["opt_step"]
    return Snapshot(
        epoch=first.epoch,
        activations=[np.concatenate([p.activations[i] for p in parts], axis=0) for i in range(len(first.activations))],
        grad_mean_norm=cat1("grad_mean_norm"), grad_std_norm=cat1("grad_std_norm"), weight_norm=cat1("weight_norm"),
        train_loss=cat0("train_loss"), test_loss=cat0("test_loss"), train_accuracy=cat0("train_accuracy"),
        test_accuracy=cat0("test_accuracy"), checkpoint=ckpt,
    )


def iter_training_parallel(task: xr.Dataset, config: TrainConfig, workers: int,
                           resume: dict | None = None) -> Iterator[Snapshot]:
    """:func:`ibtheory.nets.iter_training` with the repeats split over ``workers`` processes (CPU only).

    Yields the same snapshots as ``iter_training(task, config, resume)`` (each repeat's numbers do not depend on
    which other repeats share its batch); raises :class:`TrainingDiverged` like it.  The workers are forked where
    the platform can (as torch's DataLoader does; ``spawn`` elsewhere, which needs the ``if __name__ ==
    "__main__"`` guard in scripts) and terminated when the generator is closed, interrupted or fails.
    """
    if config.device != "cpu":
        raise ValueError(f"workers > 1 trains on CPU cores; device is {config.device!r}")
    methods = multiprocessing.get_all_start_methods()
    ctx = multiprocessing.get_context("fork" if "fork" in methods else "spawn")
    procs, conns = [], []
    try:
        for offset, count in _slices(config, int(workers)):
            cfg = dataclasses.replace(config, repeats=count, repeat_start=config.repeat_start + offset)
            parent, child = ctx.Pipe(duplex=False)
            p = ctx.Process(target=_worker, args=(child, task, cfg, _resume_slice(resume, offset, count)),
                            daemon=True)
            p.start()
            child.close()
            procs.append(p)
            conns.append(parent)
        while True:
            msgs = []
            for c in conns:
                try:
                    msgs.append(c.recv())
                except EOFError:
                    msgs.append(("error", "a training worker process ended without a result"))
            kinds = [k for k, _ in msgs]
            for k, v in msgs:
                if k == "error":
                    raise RuntimeError(f"training worker failed: {v}")
            if "diverged" in kinds:
                epoch = min(v[1] for k, v in msgs if k == "diverged")
                hits = [v for k, v in msgs if k == "diverged" and v[1] == epoch]
                repeats = [r for v in hits for r in v[2]]
                listed = ", ".join(map(str, repeats[:20])) + (f", ... ({len(repeats)} in all)"
                                                              if len(repeats) > 20 else "")
                raise TrainingDiverged(
                    f"training diverged: non-finite (NaN or inf) {hits[0][3]} at epoch {epoch} in repeat(s) {listed} "
                    f"of {config.repeats} (lr={config.lr:g}, optimizer {config.optimizer!r}); lower the learning rate",
                    epoch, repeats, hits[0][3])
            if all(k == "done" for k in kinds):
                return
            if "done" in kinds:
                raise RuntimeError("training workers fell out of step (one finished before the others)")
            yield merge_snapshots([v for _, v in msgs])
    finally:
        for c in conns:
            c.close()
        for p in procs:
            if p.is_alive():
                p.terminate()
            p.join(timeout=10)
