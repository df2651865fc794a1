"""``train``: run a network ensemble on a task and collect the information plane into one Dataset.

The run Dataset (dims ``epoch`` (snapshot epochs, 0 = initialisation), ``layer`` (1..L; the last is the softmax
output), ``repeat``, ``x``, ``y``, ``dim``; ``unit`` only with ``keep_activations``):

- ``I_XT``, ``I_TY`` (epoch, layer, repeat), bits: binning estimate (when "binning" is among the estimators);
  ``n_states`` (epoch, layer, repeat): occupied bins.
- ``I_XT_kde_upper``, ``I_XT_kde_lower``, ``I_TY_kde_upper``, ``I_TY_kde_lower`` (epoch, layer, repeat), bits:
  noisy-layer pairwise-distance estimates (when "kde" is requested).
- ``I_XT_ensemble``, ``I_TY_ensemble`` (epoch, layer), bits: binned encoder pooled over repeats ("ensemble");
  an estimator added to :mod:`ibtheory.estimators.registry` records its own variables the same way.
- ``grad_mean_norm``, ``grad_std_norm``, ``weight_norm``, ``grad_mean_rel`` (= mean / weight norm),
  ``grad_std_rel``, ``grad_snr`` (= mean / std), all (epoch, layer, repeat), for the weight matrix feeding each
  layer, over the minibatches of that epoch (NaN at epoch 0).
- ``train_loss``, ``test_loss`` (epoch, repeat): mean cross-entropy in bits; ``train_accuracy``,
  ``test_accuracy`` (epoch, repeat) in [0, 1].
- ``p_xy`` (x, y): the task's exact joint, so a run can be matched to an IB curve of the same task;
  ``train_mask`` (repeat, x) int8 and ``labels`` (repeat, x) int8: each repeat's split and (sampled) labels;
  ``width`` (layer).
- ``activations`` (epoch, layer, repeat, x, unit) float32 with ``keep_activations=True``: layer l's units in
  ``unit`` 0..width_l-1, NaN beyond (padding the estimators ignore).
- ``checkpoint_params``, ``checkpoint_opt_m``, ``checkpoint_opt_v`` (repeat, dim): parameters and Adam moments at
  the last snapshot (attrs ``checkpoint_epoch``, ``checkpoint_opt_step``), used to resume.

Every variable is written through :data:`ibtheory.estimators.RUN_SCHEMA` (its dims and units), which the readers
of runs check against.

Attributes: ``task`` (name), ``task_rule``, ``task_gamma``, ``task_I_XY`` (bits), ``activation``, ``estimators``,
``complete`` (1 when all epochs ran), and the provenance (``config`` JSON, ``seed``, version, time).  A run stopped
by :class:`~ibtheory.nets.TrainingDiverged` keeps its finite snapshots and is marked ``diverged`` = 1,
``diverged_epoch``, ``diverged_repeats`` (repeat ids) and ``diverged_what`` ("parameters", "losses" or
"activations").
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import xarray as xr
from tqdm.auto import tqdm

from .. import store
from .._signals import terminate_as_interrupt
from .._validate import integer, real, writable_file
from ..estimators import RUN_SCHEMA, binning_options
from ..estimators.registry import ESTIMATORS, check_names
from ._parallel import auto_workers, iter_training_parallel
from .data import snapshot_epochs
from .loop import Snapshot, TrainConfig, TrainingDiverged, iter_training, prepare
from .measure import measure_snapshot

__all__ = ["train", "ESTIMATOR_NAMES"]

#: The built-in estimators' names (the registry :data:`ibtheory.estimators.ESTIMATORS` is the live list).
ESTIMATOR_NAMES = tuple(ESTIMATORS)


#: TrainConfig fields added after run files existed, with the defaults at which a run does not record them.
_NEW_KNOBS = {"weight_decay": 0.0, "quantize_bits": None}


def check_arguments(
    hidden: Sequence[int] = (10, 7, 5, 4, 3), activation: str = "tanh", repeats: int = 50, epochs: int = 10_000,
    lr: float = 4e-4, optimizer: str = "adam", batch_size: int = 512, train_fraction: float = 0.8,
    snapshots: int = 300, estimators: Sequence[str] | str = ("binning",), n_bins: int | None = None,
    limits=(-1.0, 1.0), scheme: str = "width", noise_var: float = 0.1, device: str = "cpu", seed: int = 0,
    repeat_start: int = 0, dtype: str = "float32", bin_width: float | None = None, anchor: float | None = None,
    labels: str = "exact", label_seed: int = 0, weight_decay: float = 0.0, quantize_bits: int | None = None,
) -> tuple[TrainConfig, tuple[str, ...], dict]:
    """Validate :func:`train`'s training and estimator arguments; return (config, estimator names, options).

    Raises ``ValueError`` naming the argument.  Shared with the runner's ``train`` kind, so a grid is refused
    before any of its tasks runs.  Numpy scalars are accepted; a single estimator name may be a string.  The
    options are :func:`ibtheory.estimators.binning_options` (unset ones left out) plus ``noise_var``.
    """
    config = TrainConfig(hidden=hidden, activation=activation, repeats=repeats, epochs=epochs, lr=lr,
                         optimizer=optimizer, batch_size=batch_size, train_fraction=train_fraction,
                         snapshots=snapshots, seed=seed, repeat_start=repeat_start, device=device, dtype=dtype,
                         weight_decay=weight_decay, quantize_bits=quantize_bits)
    names = check_names(estimators)
    opts = dict(binning_options(n_bins, limits, scheme, bin_width=bin_width, anchor=anchor, labels=labels,
                                label_seed=label_seed),
                noise_var=real(noise_var, "noise_var", 0.0, low_open=True))
    return config, names, opts


def _stored_divergence(ds: xr.Dataset, path: Path) -> TrainingDiverged:
    """The error for resuming a file marked ``diverged=1``: resuming would only diverge again."""
    epoch = int(ds.attrs.get("diverged_epoch", -1))
    repeats = [int(r) for r in np.atleast_1d(ds.attrs.get("diverged_repeats", []))]
    exc = TrainingDiverged(
        f"out {str(path)!r} holds a run that diverged (non-finite {ds.attrs.get('diverged_what', 'values')} at "
        f"epoch {epoch} in repeat(s) {', '.join(map(str, repeats))}); resuming it would diverge again: delete it or "
        "choose another path, and lower the learning rate", epoch, repeats, str(ds.attrs.get("diverged_what", "")))
    exc.dataset = ds
    return exc


def _record(snap: Snapshot, est: dict, keep: bool, max_width: int) -> dict[str, np.ndarray]:
    rec = dict(est)
    with np.errstate(divide="ignore", invalid="ignore"):
        rec.update(
            grad_mean_norm=snap.grad_mean_norm, grad_std_norm=snap.grad_std_norm, weight_norm=snap.weight_norm,
            grad_mean_rel=snap.grad_mean_norm / snap.weight_norm, grad_std_rel=snap.grad_std_norm / snap.weight_norm,
            grad_snr=snap.grad_mean_norm / snap.grad_std_norm,
            train_loss=snap.train_loss, test_loss=snap.test_loss, train_accuracy=snap.train_accuracy,
            test_accuracy=snap.test_accuracy,
        )
    if keep:
        R, n_x = snap.activations[0].shape[:2]
        a = np.full((len(snap.activations), R, n_x, max_width), np.nan, dtype=np.float32)
        for i, act in enumerate(snap.activations):
            a[i, :, :, : act.shape[-1]] = act
        rec["activations"] = a
    return rec


def _dataset(epochs, records, setup, config, task, names, ckpt, complete, full_config) -> xr.Dataset:
    widths = np.array(config.hidden + (setup.p_y_given_x.shape[1],))
    coords = {"epoch": np.asarray(epochs, dtype=np.int64), "layer": np.arange(1, widths.size + 1),
              "repeat": setup.repeat_ids, "x": task["x"].values, "y": task["y"].values}
    ds = xr.Dataset(coords=coords)
    for name in records[0] if records else []:
        ds[name] = RUN_SCHEMA.entry(name, np.stack([r[name] for r in records]))
    if "activations" in ds:
        ds = ds.assign_coords(unit=np.arange(ds.sizes["unit"]))
    ds["width"] = RUN_SCHEMA.entry("width", widths)
    ds["p_xy"] = RUN_SCHEMA.entry("p_xy", task["p_xy"].values)
    ds["train_mask"] = RUN_SCHEMA.entry("train_mask", setup.train_mask.astype(np.int8))
    ds["labels"] = RUN_SCHEMA.entry("labels", setup.labels.astype(np.int8))
    if ckpt is not None:
        for k in ("params", "opt_m", "opt_v"):
            ds[f"checkpoint_{k}"] = RUN_SCHEMA.entry(f"checkpoint_{k}", np.asarray(ckpt[k]))
    ds = store.with_provenance(ds, full_config, config.seed)
    ds.attrs.update(
        task=str(task.attrs.get("name", "custom")), task_rule=str(task.attrs.get("rule", "")),
        task_gamma=float(task.attrs.get("gamma", -1.0)), task_I_XY=float(task.attrs.get("I_XY", np.nan)),
        activation=config.activation, estimators=",".join(names), complete=int(complete),
        checkpoint_epoch=int(epochs[-1]) if len(epochs) else -1,
        checkpoint_opt_step=int(ckpt["opt_step"]) if ckpt is not None else 0,
    )
    return ds


def _resume_state(path: Path, full_config: dict) -> tuple[xr.Dataset, list, list, dict] | None:
    ds = store.load(path)
    if store.config_of(ds) != json.loads(json.dumps(store._jsonable(full_config), sort_keys=True)):
        raise ValueError(f"out {str(path)!r} holds a run with a different configuration; choose another path or "
                         "delete it to start afresh")
    epochs = ds["epoch"].values.tolist()
    names = [n for n in ds.data_vars if "epoch" in ds[n].dims]
    records = [{n: ds[n].values[i] for n in names} for i in range(len(epochs))]
    ckpt = {k: ds[f"checkpoint_{k}"].values for k in ("params", "opt_m", "opt_v")}
    ckpt.update(opt_step=int(ds.attrs["checkpoint_opt_step"]), epoch=int(ds.attrs["checkpoint_epoch"]))
    return ds, epochs, records, ckpt


def train(
    task: xr.Dataset,
    hidden: Sequence[int] = (10, 7, 5, 4, 3),
    activation: str = "tanh",
    repeats: int = 50,
    epochs: int = 10_000,
    lr: float = 4e-4,
    optimizer: str = "adam",
    batch_size: int = 512,
    train_fraction: float = 0.8,
    snapshots: int = 300,
    weight_decay: float = 0.0,
    quantize_bits: int | None = None,
    estimators: Sequence[str] = ("binning",),
    n_bins: int | None = None,
    limits=(-1.0, 1.0),
    scheme: str = "width",
    bin_width: float | None = None,
    anchor: float | None = None,
    labels: str = "exact",
    label_seed: int = 0,
    noise_var: float = 0.1,
    keep_activations: bool = False,
    device: str = "cpu",
    seed: int = 0,
    out: str | os.PathLike | None = None,
    progress: bool | None = None,
    repeat_start: int = 0,
    dtype: str = "float32",
    checkpoint_seconds: float = 60.0,
    threads: int | None = 1,
    workers: int | None = None,
) -> xr.Dataset:
    """Train ``repeats`` networks on ``task`` at once and measure every layer in the information plane.

    The paper's setting is the default: widths 10-7-5-4-3 + 2-unit softmax, tanh, truncated-normal init,
    cross-entropy, Adam lr 4e-4, batch 512, 80 % of the patterns for training (a fresh random split per repeat),
    10,000 epochs, ~300 log-spaced snapshots, 30 equal-width bins on [-1, 1] over all patterns.  Labels are the
    task's hard labels, or for a soft task (e.g. ``tasks.tishby(gamma=19.05)``) one draw y ~ p(y|x) per pattern and
    repeat; the estimators use the exact p(y|x) (the binning estimators one sampled label per pattern with
    ``labels="sampled"``).

    Parameters
    ----------
    task : task Dataset with ``p_xy`` (x, y); inputs from ``patterns``/``values`` (x, bit), else one-hot x.
    hidden : hidden widths (each >= 1; 1..6 layers as in the paper's depth experiments, any number works).
    activation : "tanh" | "relu" | "sigmoid" | "linear" | "hardtanh".
    repeats, epochs, lr, batch_size, snapshots : the training schedule (the paper's values are the defaults).
    optimizer : "adam" | "sgd" ("sgd" with ``batch_size`` >= the training patterns is full-batch gradient descent).
    weight_decay : coupled L2 penalty lambda/2 sum W^2 on the weights (not the biases), Chelombiev et al. 2019.
    quantize_bits : None, or k in 2..16: hidden activations rounded to 2^k levels on the activation's range in
        training and measurement (straight-through gradient; tanh, sigmoid, hardtanh), Lorenzen et al. 2022.
    train_fraction : share of the patterns used for training, in (0, 1).
    estimators : names of registered estimators (:data:`ibtheory.estimators.ESTIMATORS`; built in: "binning",
        "kde", "ensemble").
    n_bins, limits, scheme : binning grid (also for "ensemble"): ``n_bins`` per unit (default 30), limits (lo, hi)
        or "adaptive", scheme "width" | "mass" | "idnns" (the authors' np.digitize grid: n_bins + 1 states per
        unit; fixed limits only).
    bin_width, anchor : instead of ``n_bins``, unbounded bins floor((a - anchor) / bin_width) (Saxe et al.: 0.07,
        0; anchor defaults to 0); ``n_bins`` must then be left unset, ``scheme`` "width", and ``limits`` is unused.
    labels, label_seed : "exact" (default): the binning estimators' I(T;Y) uses the exact p(y|x); "sampled": one
        label per pattern drawn from p(y|x) with ``numpy.random.default_rng(label_seed)``, the same draw for every
        layer, repeat and snapshot (the authors' code).  Training labels are not affected.  The run records these
        options (those set) in its ``config`` attribute (:func:`ibtheory.estimators.binning_options`).
    noise_var : variance sigma^2 of the noise of the "kde" estimator (Saxe et al. 2018 use 0.1).
    keep_activations : store every layer's activations at every snapshot (large: epochs x layers x R x n_x x 10).
    device : "cpu", "cuda" or "cuda:N" (ValueError before anything runs when CUDA is not available); the batched
        ensemble is the same on every device.  Off the CPU, binning is measured on the device (the same numbers;
        :mod:`ibtheory.estimators.binning_torch`), except equal-mass bins.
    seed : repetition r uses ``SeedSequence(seed, spawn_key=(repeat_start + r,))``.
    out : .nc path, checked writable before anything runs; saved (atomically) at the first snapshot finished
        ``checkpoint_seconds`` after the previous save, on Ctrl-C or SIGTERM (then the interrupt is re-raised:
        ``KeyboardInterrupt``, for SIGTERM its subclass ``ibtheory._signals.Terminated``), on divergence (marked
        ``diverged=1``) and at the end.  If it exists, the run resumes from its last saved snapshot (same
        configuration required) and gives the same result as an uninterrupted run; this also holds after a
        SIGKILL, which loses only the snapshots since the last save (temporary files that a kill during a save
        leaves beside ``out`` are deleted when the run restarts).  A file marked diverged is not resumed
        (``TrainingDiverged``).
    progress : tqdm bar over epochs (None: only when stderr is a terminal).
    repeat_start : id of the first repeat (train repeats r..r+R-1 alone; used by the equivalence test).
    dtype : "float32" (default) or "float64" for the networks.
    threads : torch intra-op threads while training in this process (restored afterwards); the batched ops are
        small, and one thread avoids OpenMP spin-waits on a shared CPU (None: leave torch's setting).
    workers : processes that train slices of the repeats side by side on the CPU (one torch thread each; see
        :mod:`ibtheory.nets._parallel`; the numbers do not depend on it); None: one per usable core for runs of at
        least 20,000 repeat-epochs on the CPU, else 1 (:func:`ibtheory.nets._parallel.auto_workers`).

    Returns
    -------
    xarray.Dataset described in the module docstring (information in bits).

    Raises
    ------
    ValueError naming the argument for bad input, before anything is trained.
    TrainingDiverged (a ``ValueError``) when parameters (checked after every epoch), losses or activations (every
        snapshot) become NaN or infinite; it names the epoch and the repeats, and its ``dataset`` holds the finite
        snapshots (also saved to ``out``).
    """
    config, names, opts = check_arguments(
        hidden=hidden, activation=activation, repeats=repeats, epochs=epochs, lr=lr, optimizer=optimizer,
        batch_size=batch_size, train_fraction=train_fraction, snapshots=snapshots, estimators=estimators,
        n_bins=n_bins, limits=limits, scheme=scheme, noise_var=noise_var, device=device, seed=seed,
        repeat_start=repeat_start, dtype=dtype, bin_width=bin_width, anchor=anchor, labels=labels,
        label_seed=label_seed, weight_decay=weight_decay, quantize_bits=quantize_bits)
    if threads is not None:
        threads = integer(threads, "threads", 1)
    workers = auto_workers(config) if workers is None else integer(workers, "workers", 1)
    if workers > 1 and config.device != "cpu":
        raise ValueError(f"workers must be 1 on device {config.device!r} (worker processes split CPU cores), got "
                         f"{workers}")
    checkpoint_seconds = real(checkpoint_seconds, "checkpoint_seconds", 0.0, low_open=True)
    path = writable_file(out, "out") if out is not None else None  # before any work: not after hours of training
    recorded = {k: v for k, v in dataclasses.asdict(config).items()  # knobs at their defaults are left out: files
                if not (k in _NEW_KNOBS and v == _NEW_KNOBS[k])}  # written before they existed still resume
    full_config = dict(recorded, estimators=list(names), keep_activations=bool(keep_activations),
                       **opts, task=str(task.attrs.get("name", "custom")) if hasattr(task, "attrs") else "")
    setup = prepare(task, config)
    p_x, p_yx = setup.p_x, setup.p_y_given_x
    max_width = max(config.hidden + (p_yx.shape[1],))
    epochs_done: list[int] = []
    records: list[dict] = []
    resume = None
    if path is not None:
        store.remove_stale_temporaries(path)
    if path is not None and path.exists():
        prev, epochs_done, records, resume = _resume_state(path, full_config)
        if prev.attrs.get("complete", 0):
            return prev
        if prev.attrs.get("diverged", 0):
            raise _stored_divergence(prev, path)
    planned = snapshot_epochs(config.epochs, config.snapshots)
    ckpt = resume

    def build(complete: bool) -> xr.Dataset:
        return _dataset(epochs_done, records, setup, config, task, names, ckpt, complete, full_config)

    bar_on = sys.stderr.isatty() if progress is None else bool(progress)
    bar = tqdm(total=config.epochs, initial=epochs_done[-1] if epochs_done else 0, disable=not bar_on,
               unit="epoch", desc=f"train {config.activation} x{config.repeats}")
    last_save = time.monotonic()
    old_threads = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(int(threads))
    with terminate_as_interrupt():  # SIGTERM (timeout, batch schedulers) raises Terminated: saved like Ctrl-C
        snaps = None
        try:
            snaps = (iter_training(task, config, resume=resume, setup=setup) if workers == 1
                     else iter_training_parallel(task, config, min(workers, config.repeats), resume=resume))
            for snap in snaps:
                est = measure_snapshot(names, snap, p_x, p_yx, opts)
                records.append(_record(snap, est, keep_activations, max_width))
                bar.update(snap.epoch - (epochs_done[-1] if epochs_done else 0))
                epochs_done.append(snap.epoch)
                ckpt = dict(snap.checkpoint, epoch=snap.epoch)
                if path is not None and time.monotonic() - last_save > checkpoint_seconds:
                    store.save(build(False), path)
                    last_save = time.monotonic()
        except KeyboardInterrupt:  # Ctrl-C, and SIGTERM as _signals.Terminated
            if path is not None and records:
                store.save(build(False), path)
            raise
        except TrainingDiverged as exc:  # every recorded snapshot is finite: keep them, marked as diverged
            if records:
                exc.dataset = build(False)
                exc.dataset.attrs.update(diverged=1, diverged_epoch=exc.epoch, diverged_repeats=list(exc.repeats),
                                         diverged_what=exc.what)
                if path is not None:
                    store.save(exc.dataset, path)
                    exc.args = (f"{exc.args[0]}; the {len(records)} finite snapshot(s) up to epoch {epochs_done[-1]} "
                                f"are saved in {str(path)!r}, marked diverged=1",)
            raise
        finally:
            if snaps is not None:
                snaps.close()  # stops the worker processes of a parallel run
            bar.close()
            torch.set_num_threads(old_threads)
        ds = build(len(epochs_done) == len(planned))
        if path is not None:
            store.save(ds, path)
    return ds
