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
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
import xarray as xr

from .. import store, tasks
from ..estimators import ESTIMATORS, RUN_SCHEMA, gaussian_information
from ..nets import TrainConfig, iter_training, snapshot_epochs
from ..nets._parallel import auto_workers, iter_training_parallel
from ..nets.loop import prepare
from ..nets.noisy_network import noisy_network_information
from .report import check_size

__all__ = ["RUN_SIZES", "PAPER_HIDDEN", "OTHER_BINS", "NOISE_VAR", "KDE_PATTERNS", "KDE_SNAPSHOTS", "KDE_PLANE",
           "Probe", "READERS", "CODES", "CRITIQUE_PROBES", "bins", "paper_probes", "measured_run", "task_of",
           "paper_run", "save_run", "hidden_layers", "limits_for", "plane_of"]

#: The paper's hidden widths, 10-7-5-4-3 (:class:`ibtheory.nets.TrainConfig`'s default).
PAPER_HIDDEN = TrainConfig.hidden
OTHER_BINS = (10, 100)
NOISE_VAR = 0.1
KDE_PATTERNS = {"tiny": 128, "quick": 512, "full": 1024}  # full: 10 x 6 x 50 estimates of O(n^2)
KDE_SNAPSHOTS = {"tiny": 3, "quick": 6, "full": 10}
#: Patterns of Goldfeld et al.'s noisy network (sample propagation, 16 draws each) at the KDE snapshots.
NOISY_PATTERNS = 128

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
    """Binning range: the activation's own bounds, [-1, 1] for tanh and hardtanh (the paper's), [0, 1] for the
    sigmoid; each network's own range for ReLU and linear (Saxe et al. 2018)."""
    if activation == "sigmoid":
        return (0.0, 1.0)
    return (-1.0, 1.0) if activation in BOUNDED else "adaptive"


def _pad(acts: np.ndarray, width: int) -> np.ndarray:
    """(R, n_x, w) -> (R, n_x, width) with NaN padding (ignored by the estimators)."""
    out = np.full(acts.shape[:2] + (width,), np.nan, dtype=np.float32)
    out[..., : acts.shape[-1]] = acts
    return out


@dataclass(frozen=True)
class Probe:
    """One estimate of every layer recorded at the snapshots of a measured run: the run variables
    ``I_XT{suffix}``, ``I_TY{suffix}`` from plane ``plane`` of the registered estimator ``estimator`` called with
    ``options`` (a tuple of (name, value) pairs), or a name of :data:`READERS` (``"gaussian"``: the closed form
    of a noisy linear layer, I(T;Y) NaN; ``"noisy_network"``).  ``sparse``: measured only on the
    random pattern subset at the KDE snapshots (:data:`KDE_PATTERNS`, :data:`KDE_SNAPSHOTS`), NaN elsewhere (for
    O(n_x^2) estimators)."""

    suffix: str
    estimator: str
    options: tuple = ()
    sparse: bool = False
    plane: int = 0

    @property
    def variables(self) -> tuple[str, str]:
        return f"I_XT{self.suffix}", f"I_TY{self.suffix}"

    @property
    def pools_repeats(self) -> bool:
        return self.estimator in ESTIMATORS and ESTIMATORS[self.estimator].pools_repeats

    def values(self, snap: _Measured) -> dict[str, np.ndarray]:
        """This probe's two variables at one snapshot (all layers; (layer, R) or (layer,) when the estimator pools
        the repeats): read by the estimator's reader in :data:`READERS`, else from plane ``plane`` of the
        registered estimator."""
        read = READERS.get(self.estimator)
        ixt, ity = (read(snap, dict(self.options)) if read is not None else
                    _read_registered(snap, self.estimator, self.plane, dict(self.options)))
        return {self.variables[0]: ixt, self.variables[1]: ity}


def _read_registered(snap: _Measured, name: str, plane: int, kwargs: dict) -> tuple[np.ndarray, np.ndarray]:
    """(I(X;T), I(T;Y)) from plane ``plane`` of the registered estimator ``name`` (per repeat when it pools the
    repeats)."""
    est = ESTIMATORS[name]
    if est.pools_repeats:
        vals = [est.planes[plane].values(est(x, snap.p_x, snap.p_yx, **kwargs)) for x in snap.acts]
        got = {k: np.stack([v[k] for v in vals]) for k in vals[0]}
    else:
        got = est.planes[plane].values(est(snap.a, snap.p_x, snap.p_yx, **kwargs))
    x, y = est.planes[plane].variables
    return np.asarray(got[x]), np.asarray(got[y])


def _read_gaussian(snap: _Measured, kwargs: dict) -> tuple[np.ndarray, np.ndarray]:
    """I(X;T) of the closed form of a noisy linear layer (:func:`ibtheory.estimators.gaussian_information`); no
    I(T;Y) (NaN)."""
    ixt = gaussian_information(snap.a, snap.p_x, **kwargs)
    return ixt, np.full(ixt.shape, np.nan)


def _read_noisy_network(snap: _Measured, kwargs: dict) -> tuple[np.ndarray, np.ndarray]:
    """The hidden layers of the noisy network on ``n_patterns`` patterns in the snapshot's random order
    (:func:`ibtheory.nets.noisy_network.noisy_network_information`); NaN at the softmax output."""
    n = min(int(kwargs.pop("n_patterns")), snap.p_x.size)
    i = snap.order[:n]
    p = snap.p_x[i] / snap.p_x[i].sum()
    r = noisy_network_information(snap.params, snap.widths[:-1], snap.activation, snap.features[i], p,
                                  snap.p_yx[i], **kwargs)
    pad = np.full((1, r.I_XT.shape[1]), np.nan)
    return np.vstack([r.I_XT, pad]), np.vstack([r.I_TY, pad])


#: probes that are not registered estimators: name -> reader (snapshot, options) -> (I(X;T), I(T;Y))
READERS = {"gaussian": _read_gaussian, "noisy_network": _read_noisy_network}


@dataclass(frozen=True)
class _Measured:
    """What a probe may read at one snapshot: the padded activations ``a`` (L, R, n_x, W) and their per-layer list
    ``acts``, p(x), p(y|x), and for the noisy network the flat parameters (R, n_params), the layer widths, the
    activation, the input features (n_x, d) and a random order of the patterns."""

    a: np.ndarray
    acts: list
    p_x: np.ndarray
    p_yx: np.ndarray
    params: np.ndarray
    widths: tuple
    activation: str
    features: np.ndarray
    order: np.ndarray

    def subset(self, sub: np.ndarray, order: np.ndarray) -> _Measured:
        p = self.p_x[sub]
        return _Measured(self.a[:, :, sub], [x[:, sub] for x in self.acts], p / p.sum(), self.p_yx[sub],
                         self.params, self.widths, self.activation, self.features[sub], order)


def bins(n_bins: int | None, limits, **more) -> tuple:
    """Binning options as a probe's (name, value) pairs."""
    return (("n_bins", n_bins), ("limits", limits)) + tuple(more.items())


#: The exact information of a deterministic layer: its distinct float codes (no binning).
CODES = Probe("_codes", "codes")
#: The critiques' extra estimates of the shared runs, by activation (see :mod:`ibtheory.reproduce.settings`).
CRITIQUE_PROBES: dict[str, tuple[Probe, ...]] = {
    "tanh": (Probe("_idnns", "binning", bins(30, (-1.0, 1.0), scheme="idnns")),
             Probe("_own", "binning", bins(30, "adaptive")),
             Probe("_mass", "binning", bins(30, "adaptive", scheme="mass")),
             Probe("_kde3", "kde", (("noise_var", 1e-3),), sparse=True), CODES,
             Probe("_noisy_net", "noisy_network", (("sigma", NOISE_VAR ** 0.5), ("n_patterns", NOISY_PATTERNS)),
                   sparse=True)),
    "relu": (Probe("_w007", "binning", bins(None, "adaptive", bin_width=0.07, anchor=0.0)),),
}


def paper_probes(activation: str) -> tuple[Probe, ...]:
    """The estimates :func:`paper_run` records (module doc): binning 30/10/100 bins, the ensemble estimator and the
    noisy layer's KDE plane, on the activation's range (:func:`limits_for`), and the critiques' extra estimates
    (:data:`CRITIQUE_PROBES`)."""
    limits = limits_for(activation)
    return ((Probe("", "binning", bins(30, limits)),)
            + tuple(Probe(f"_bins{n}", "binning", bins(n, limits)) for n in OTHER_BINS)
            + (Probe("_ensemble", "ensemble", bins(30, limits)),
               Probe(KDE_PLANE.suffix, "kde", (("noise_var", NOISE_VAR),), sparse=True))
            + CRITIQUE_PROBES.get(activation, ()))


def _measure(snap: _Measured, probes: tuple[Probe, ...], kde: tuple[np.ndarray, np.ndarray] | None
             ) -> dict[str, np.ndarray]:
    """Every probe of one snapshot; all layers at once (NaN-padded to a common width).  ``kde``: (the random
    pattern subset, a random order of it) at the snapshots of the sparse probes, else None."""
    rec = {}
    for probe in probes:
        if not probe.sparse:
            rec.update(probe.values(snap))
        elif kde is None:
            shape = snap.a.shape[:1] if probe.pools_repeats else snap.a.shape[:2]
            rec.update({v: np.full(shape, np.nan) for v in probe.variables})
        else:
            rec.update(probe.values(snap.subset(*kde)))
    return rec


def task_of(name: str) -> xr.Dataset:
    """The reproduction's tasks by name: "hard" (:func:`ibtheory.tasks.tishby`, deterministic labels) and "soft"
    (the same rule with gamma = 19.05, I(X;Y) = 0.90 bits, whose IB curve is non-trivial)."""
    if name == "hard":
        return tasks.tishby()
    if name == "soft":
        return tasks.tishby(gamma=19.05)
    raise ValueError(f"task must be 'hard' or 'soft', got {name!r}")


@lru_cache(maxsize=2)
def paper_run(size: str, seed: int, activation: str = "tanh", device: str = "cpu") -> xr.Dataset:
    """The paper's network on the hard task at ``size``, measured under every estimator choice (module doc).

    ``device``: torch device of the training ("cpu", "cuda", "cuda:N"); on the CPU a long run trains its repeats in
    one worker process per core (:func:`ibtheory.nets._parallel.auto_workers`), with the same numbers.
    """
    return measured_run(size, seed, paper_probes(activation), activation=activation, device=device)


def measured_run(size: str, seed: int, probes: tuple[Probe, ...], *, activation: str = "tanh", task: str = "hard",
                 device: str = "cpu", epochs: int | None = None, **training) -> xr.Dataset:
    """The paper's network at ``size`` (:data:`RUN_SIZES`; ``epochs`` overrides its epochs) on ``task``
    (:func:`task_of`), trained with the paper's settings changed by ``training`` (fields of
    :class:`ibtheory.nets.TrainConfig`, e.g. ``optimizer="sgd", lr=0.05``) and measured by ``probes`` at every
    snapshot (no activations kept), with the gradient statistics, losses, accuracies and softmax outputs."""
    check_size(size)
    s = RUN_SIZES[size]
    data = task_of(task)
    config = TrainConfig(hidden=PAPER_HIDDEN, activation=activation, repeats=s["repeats"],
                         epochs=s["epochs"] if epochs is None else epochs, snapshots=s["snapshots"], seed=seed,
                         device=device, **training)
    setup = prepare(data, config)
    p_x, p_yx = setup.p_x, setup.p_y_given_x
    rng = np.random.default_rng(seed)
    sub = np.sort(rng.choice(p_x.size, size=min(KDE_PATTERNS[size], p_x.size), replace=False))
    sub_order = rng.permutation(sub.size)  # the noisy network's patterns: the first n of the subset in this order
    planned = snapshot_epochs(config.epochs, config.snapshots)
    kde_epochs = set(planned[np.unique(np.round(np.linspace(0, planned.size - 1, KDE_SNAPSHOTS[size])).astype(
        int))].tolist())
    widths = config.hidden + (p_yx.shape[1],)
    records, epochs_done = [], []
    old = torch.get_num_threads()
    torch.set_num_threads(1)  # the batched ops are small; one thread avoids oversubscription on a shared CPU
    workers = auto_workers(config)
    try:
        snaps = (iter_training(data, config, setup=setup) if workers == 1
                 else iter_training_parallel(data, config, workers))
        for snap in snaps:
            measured = _Measured(np.stack([_pad(x, max(widths)) for x in snap.activations]), snap.activations, p_x,
                                 p_yx, snap.checkpoint["params"], widths, config.activation, setup.features,
                                 np.arange(p_x.size))
            rec = _measure(measured, probes, (sub, sub_order) if snap.epoch in kde_epochs else None)
            with np.errstate(divide="ignore", invalid="ignore"):
                rec.update(grad_mean_norm=snap.grad_mean_norm, grad_std_norm=snap.grad_std_norm,
                           weight_norm=snap.weight_norm, grad_mean_rel=snap.grad_mean_norm / snap.weight_norm,
                           grad_std_rel=snap.grad_std_norm / snap.weight_norm,
                           grad_snr=snap.grad_mean_norm / snap.grad_std_norm, train_loss=snap.train_loss,
                           test_loss=snap.test_loss, train_accuracy=snap.train_accuracy,
                           test_accuracy=snap.test_accuracy, output=snap.activations[-1])
            records.append(rec)
            epochs_done.append(snap.epoch)
    finally:
        torch.set_num_threads(old)
    schema = RUN_SCHEMA.variables()  # the run layout of nets.train (the estimators' dims among it), and the output
    dims = {"output": ("epoch", "repeat", "x", "y")} | {k: v.dims for k, v in schema.items()}
    dims |= {v: ("epoch", "layer") for p in probes if p.pools_repeats for v in p.variables}
    ds = xr.Dataset(coords={"epoch": np.asarray(epochs_done, dtype=np.int64), "layer": np.arange(1, len(widths) + 1),
                            "repeat": setup.repeat_ids, "x": data["x"].values, "y": data["y"].values})
    for name in records[0]:
        attrs = dict(_BITS) if name.startswith("I_") or name.endswith("_loss") else {}
        ds[name] = (dims.get(name, ("epoch", "layer", "repeat")), np.stack([r[name] for r in records]), attrs)
    ds["width"] = ("layer", np.array(widths))
    ds["p_xy"] = (("x", "y"), data["p_xy"].values)
    ds["train_mask"] = (("repeat", "x"), setup.train_mask.astype(np.int8))
    ds["labels"] = (("repeat", "x"), setup.labels.astype(np.int8))
    ds["kde_patterns"] = ("kde_pattern", sub)
    limits = limits_for(activation)
    config_dict = dict(dataclasses.asdict(config), limits=limits if isinstance(limits, str) else list(limits),
                       other_bins=list(OTHER_BINS), noise_var=NOISE_VAR, kde_patterns=int(sub.size),
                       kde_snapshots=KDE_SNAPSHOTS[size], task="tishby" if task == "hard" else "tishby_soft",
                       probes=[f"{p.suffix or 'default'}: {p.estimator} {dict(p.options)}" for p in probes])
    ds = store.with_provenance(ds, {k: v for k, v in config_dict.items() if v is not None}, seed)
    ds.attrs.update(activation=activation, task=config_dict["task"], complete=1)
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
