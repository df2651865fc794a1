"""Training runs shared by several sections, their sizes, and small helpers on run Datasets.

The paper's setting (Shwartz-Ziv & Tishby 2017) is the "full" size: widths 10-7-5-4-3 + softmax, tanh, Adam
lr 4e-4, batch 512, 80 % training patterns, 50 repeats, 10,000 epochs, ~300 log-spaced snapshots, 30 bins on
[-1, 1].  "quick" and "tiny" shrink repeats, epochs and snapshots (never the task or the network).

:func:`paper_run` trains the paper's network once per process (cached) with :func:`ibtheory.nets.iter_training` and
measures every snapshot under all the choices the plane, gradients, critiques and early-stopping sections need, so
that no layer's activations are kept (at the full size they would take ~15 GB):

- the planes of three estimators of the registry (:mod:`ibtheory.estimators.registry`), named as in the run layout
  of :func:`ibtheory.nets.train`, in bits: binning with 30 bins (``I_XT``, ``I_TY``), and ``I_XT_bins{n}``,
  ``I_TY_bins{n}`` for n in :data:`OTHER_BINS` (epoch, layer, repeat); the ensemble estimator, the binned encoder
  pooled over repeats (epoch, layer); the noisy layer's own plane (``"kde"``: the upper estimates, noise variance
  :data:`NOISE_VAR`) on :data:`KDE_PATTERNS` random patterns at :data:`KDE_SNAPSHOTS` evenly spaced snapshots, NaN
  at the other snapshots (the estimator costs O(n_x^2) per layer and repeat) (epoch, layer, repeat);
- ``output`` (epoch, repeat, x, y) float32: the softmax output for every pattern (per-pattern losses);
- the gradient statistics, losses and accuracies, ``p_xy``, ``train_mask``, ``labels``, ``width`` of nets.train.

Binning uses [-1, 1] for tanh and each network's own range for ReLU (Saxe et al. 2018).
"""

from __future__ import annotations

import dataclasses
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
import xarray as xr

from .. import store, tasks
from ..estimators import ESTIMATORS, RUN_SCHEMA, measure
from ..nets import TrainConfig, iter_training, snapshot_epochs
from ..nets._parallel import auto_workers, iter_training_parallel
from ..nets.loop import prepare
from .report import check_size

__all__ = ["RUN_SIZES", "PAPER_HIDDEN", "OTHER_BINS", "NOISE_VAR", "KDE_PATTERNS", "KDE_SNAPSHOTS", "KDE_PLANE",
           "paper_run", "save_run", "hidden_layers", "limits_for", "plane_of"]

#: The paper's hidden widths, 10-7-5-4-3 (:class:`ibtheory.nets.TrainConfig`'s default).
PAPER_HIDDEN = TrainConfig.hidden
OTHER_BINS = (10, 100)
NOISE_VAR = 0.1
KDE_PATTERNS = {"tiny": 128, "quick": 512, "full": 1024}  # full: 10 x 6 x 50 estimates of O(n^2)
KDE_SNAPSHOTS = {"tiny": 3, "quick": 6, "full": 10}

#: Training sizes: repeats, epochs, snapshots of the shared runs ("full": the paper's, TrainConfig's defaults).
RUN_SIZES = {
    "tiny": {"repeats": 2, "epochs": 40, "snapshots": 8},
    "quick": {"repeats": 6, "epochs": 1000, "snapshots": 24},
    "full": {"repeats": TrainConfig.repeats, "epochs": TrainConfig.epochs, "snapshots": TrainConfig.snapshots},
}
BOUNDED = ("tanh", "sigmoid", "hardtanh")
#: The noisy layer's plane that the shared runs record (the "kde" estimator's own: its upper estimates).
KDE_PLANE = ESTIMATORS["kde"].plane
_BITS = {"units": "bits"}


def limits_for(activation: str):
    """Binning range: [-1, 1] for bounded activations (the paper's), each network's own range for ReLU/linear
    (Saxe et al. 2018)."""
    return (-1.0, 1.0) if activation in BOUNDED else "adaptive"


def _pad(acts: np.ndarray, width: int) -> np.ndarray:
    """(R, n_x, w) -> (R, n_x, width) with NaN padding (ignored by the estimators)."""
    out = np.full(acts.shape[:2] + (width,), np.nan, dtype=np.float32)
    out[..., : acts.shape[-1]] = acts
    return out


def _measure(acts: list[np.ndarray], p_x, p_yx, limits, kde: tuple[np.ndarray, np.ndarray, np.ndarray] | None,
             max_width: int) -> dict[str, np.ndarray]:
    """Every estimate of one snapshot; all layers at once (NaN-padded to a common width)."""
    a = np.stack([_pad(x, max_width) for x in acts])  # (L, R, n_x, W)
    binning = ESTIMATORS["binning"]
    rec = {}
    for n_bins in (30,) + OTHER_BINS:
        r = binning(a, p_x, p_yx, n_bins=n_bins, limits=limits)
        suffix = "" if n_bins == 30 else f"_bins{n_bins}"
        rec.update({f"{v}{suffix}": value for v, value in binning.plane.values(r).items()})
    rec.update(measure(["ensemble"], acts, p_x, p_yx, n_bins=30, limits=limits))
    if kde is None:
        rec.update({v: np.full(a.shape[:2], np.nan) for v in KDE_PLANE.variables})
    else:
        sub, p_sub, pyx_sub = kde
        rec.update(KDE_PLANE.values(ESTIMATORS["kde"](a[:, :, sub], p_sub, pyx_sub, noise_var=NOISE_VAR)))
    return rec


@lru_cache(maxsize=2)
def paper_run(size: str, seed: int, activation: str = "tanh", device: str = "cpu") -> xr.Dataset:
    """The paper's network on the hard task at ``size``, measured under every estimator choice (module doc).

    ``device``: torch device of the training ("cpu", "cuda", "cuda:N"); on the CPU a long run trains its repeats in
    one worker process per core (:func:`ibtheory.nets._parallel.auto_workers`), with the same numbers.
    """
    check_size(size)
    s = RUN_SIZES[size]
    task = tasks.tishby()
    config = TrainConfig(hidden=PAPER_HIDDEN, activation=activation, repeats=s["repeats"], epochs=s["epochs"],
                         snapshots=s["snapshots"], seed=seed, device=device)
    setup = prepare(task, config)
    p_x, p_yx = setup.p_x, setup.p_y_given_x
    limits = limits_for(activation)
    rng = np.random.default_rng(seed)
    sub = np.sort(rng.choice(p_x.size, size=min(KDE_PATTERNS[size], p_x.size), replace=False))
    p_sub, pyx_sub = p_x[sub] / p_x[sub].sum(), p_yx[sub]
    planned = snapshot_epochs(config.epochs, config.snapshots)
    kde_epochs = set(planned[np.unique(np.round(np.linspace(0, planned.size - 1, KDE_SNAPSHOTS[size])).astype(
        int))].tolist())
    widths = config.hidden + (p_yx.shape[1],)
    records, epochs = [], []
    old = torch.get_num_threads()
    torch.set_num_threads(1)  # the batched ops are small; one thread avoids oversubscription on a shared CPU
    workers = auto_workers(config)
    try:
        snaps = (iter_training(task, config, setup=setup) if workers == 1
                 else iter_training_parallel(task, config, workers))
        for snap in snaps:
            kde = (sub, p_sub, pyx_sub) if snap.epoch in kde_epochs else None
            rec = _measure(snap.activations, p_x, p_yx, limits, kde, max(widths))
            with np.errstate(divide="ignore", invalid="ignore"):
                rec.update(grad_mean_norm=snap.grad_mean_norm, grad_std_norm=snap.grad_std_norm,
                           weight_norm=snap.weight_norm, grad_mean_rel=snap.grad_mean_norm / snap.weight_norm,
                           grad_std_rel=snap.grad_std_norm / snap.weight_norm,
                           grad_snr=snap.grad_mean_norm / snap.grad_std_norm, train_loss=snap.train_loss,
                           test_loss=snap.test_loss, train_accuracy=snap.train_accuracy,
                           test_accuracy=snap.test_accuracy, output=snap.activations[-1])
            records.append(rec)
            epochs.append(snap.epoch)
    finally:
        torch.set_num_threads(old)
    schema = RUN_SCHEMA.variables()  # the run layout of nets.train (the estimators' dims among it), and the output
    dims = {"output": ("epoch", "repeat", "x", "y")} | {k: v.dims for k, v in schema.items()}
    ds = xr.Dataset(coords={"epoch": np.asarray(epochs, dtype=np.int64), "layer": np.arange(1, len(widths) + 1),
                            "repeat": setup.repeat_ids, "x": task["x"].values, "y": task["y"].values})
    for name in records[0]:
        attrs = dict(_BITS) if name.startswith("I_") or name.endswith("_loss") else {}
        ds[name] = (dims.get(name, ("epoch", "layer", "repeat")), np.stack([r[name] for r in records]), attrs)
    ds["width"] = ("layer", np.array(widths))
    ds["p_xy"] = (("x", "y"), task["p_xy"].values)
    ds["train_mask"] = (("repeat", "x"), setup.train_mask.astype(np.int8))
    ds["labels"] = (("repeat", "x"), setup.labels.astype(np.int8))
    ds["kde_patterns"] = ("kde_pattern", sub)
    config_dict = dict(dataclasses.asdict(config), limits=limits if isinstance(limits, str) else list(limits),
                       other_bins=list(OTHER_BINS), noise_var=NOISE_VAR, kde_patterns=int(sub.size),
                       kde_snapshots=KDE_SNAPSHOTS[size], task="tishby")
    ds = store.with_provenance(ds, config_dict, seed)
    ds.attrs.update(activation=activation, task="tishby", complete=1)
    return ds


def plane_of(run: xr.Dataset, suffix: str) -> xr.Dataset:
    """The run's information plane under one estimator: ``I_XT``/``I_TY`` from ``I_XT{suffix}``/``I_TY{suffix}``
    (snapshots where it was not measured dropped), for the plotting and phase functions."""
    ixt, ity = run[f"I_XT{suffix}"], run[f"I_TY{suffix}"]
    ok = np.isfinite(ixt.values).reshape(ixt.sizes["epoch"], -1).all(axis=1)
    ds = xr.Dataset({"I_XT": ixt, "I_TY": ity}).isel(epoch=np.flatnonzero(ok))
    ds.attrs["activation"] = run.attrs.get("activation", "")
    return ds


def save_run(run: xr.Dataset, path: Path) -> Path:
    """Save a run without its (large) activations, outputs and checkpoint."""
    drop = [v for v in run.data_vars if v in ("activations", "output") or v.startswith("checkpoint_")]
    return store.save(run.drop_vars(drop), path)


def hidden_layers(run: xr.Dataset) -> np.ndarray:
    """Layer numbers of the hidden layers (all but the softmax output)."""
    return run["layer"].values[:-1]
