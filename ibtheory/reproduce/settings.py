"""The settings of the critics' matrix: every knob the critics turned, each one run and measured as one row.

A *setting* is one training run (:data:`RUNS`: the paper's network on the hard task with one choice changed) seen
through one estimate of its layers (a :class:`~ibtheory.reproduce.runs.Probe` recorded at every snapshot).  The
tanh and ReLU runs are the shared runs of the other sections (:func:`ibtheory.reproduce.runs.paper_run`, which
records every estimator row below); every other run changes one thing:

- activation (Saxe et al. 2018, double-sided saturation): tanh, ReLU, sigmoid (binned on [0, 1]), linear (binned
  on its own range, and the closed-form Gaussian I(X; T + Z) of a noisy linear layer);
- estimator, on the tanh run: 10 / 30 / 100 equal bins on [-1, 1], the authors' grid (IDNNs: ``np.linspace(-1, 1,
  30)`` as edges with ``np.digitize``), 30 bins on the network's own range, 30 equal-mass bins, the noisy layer's
  KDE upper bound at sigma^2 = 0.1 (Saxe et al.) and 1e-3 (ibsgd's notebook), the ensemble estimator, the exact
  float codes (Amjad & Geiger 2019: a deterministic injective network has I(X;T) = H(X)), Goldfeld et al.'s noisy
  network (noise N(0, 0.1) at every hidden unit, propagated through the next layers, I(X;T) and I(T;Y) by sample
  propagation on 128 random patterns at the KDE snapshots, :mod:`ibtheory.nets.noisy_network`); on the ReLU run: 30
  bins on the own range, ibsgd's fixed width 0.07 anchored at 0, the KDE upper bound at 0.1;
- quantized networks (Lorenzen et al. 2022): tanh activations rounded to 2^8 and 2^4 levels in training
  (straight-through gradient), each layer a discrete function of X whose I(X;T) is exact (float codes);
- optimisation: plain SGD (lr 0.1, batch 512), full-batch gradient descent (lr 0.5; Saxe et al.: tanh compresses
  under GD too, so minibatch diffusion is not the cause), batch 32 (a quarter of the epochs: each epoch has 16
  times the steps), weight decay 1e-3 on the weights (Chelombiev et al. 2019);
- data: the soft task (gamma = 19.05, I(X;Y) = 0.90 bits) and 5 % of the patterns for training.

Every run shares the seed (the same initial weights where the architecture allows) and the size of
:data:`ibtheory.reproduce.runs.RUN_SIZES`.  :func:`setting_result` runs one setting and applies the claim rules of
:mod:`ibtheory.reproduce.claims`; it is also the runner's task kind ``"critique"`` (one task per setting), so the
matrix runs in-process, on a process pool or on a dask cluster, and resumes.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import xarray as xr

from ..ib import ib_curve
from ..ib.curve import curve_value
from ..info import mutual_information
from ..runner import Field, TaskKind, builtin, register_kind
from ..runner.kinds import choice, integer
from .claims import claim_table
from .report import SIZES
from .runs import CODES, KDE_PLANE, RUN_SIZES, Probe, bins, limits_for, measured_run, paper_run, task_of

__all__ = ["Setting", "SETTINGS", "RUNS", "setting", "setting_run", "setting_result", "task_bound"]

SGD_LR, GD_LR, WEIGHT_DECAY = 0.1, 0.5, 1e-3


@dataclass(frozen=True)
class Setting:
    """One row of the matrix: ``label`` (readable), ``group`` (which knob), ``source`` (who turned it), the training
    run (a key of :data:`RUNS`) and the probe suffix of the estimate (its run variables I_XT<suffix>)."""

    label: str
    group: str
    source: str
    run: str
    suffix: str = ""


#: Training runs by key: keywords of :func:`ibtheory.reproduce.runs.measured_run` (``None`` for the shared paper
#: runs).  Epochs scale with the size's; ``epoch_scale`` shortens the runs whose epochs hold more steps.
RUNS: dict[str, dict | None] = {
    "tanh": None,
    "relu": None,
    "sigmoid": {"activation": "sigmoid"},
    "linear": {"activation": "linear"},
    "quant8": {"quantize_bits": 8},
    "quant4": {"quantize_bits": 4},
    "sgd": {"optimizer": "sgd", "lr": SGD_LR},
    "gd": {"optimizer": "sgd", "lr": GD_LR, "batch_size": 4096},
    "batch32": {"batch_size": 32, "epoch_scale": 0.25},
    "weight_decay": {"weight_decay": WEIGHT_DECAY},
    "soft": {"task": "soft"},
    "data5": {"train_fraction": 0.05},
}

_GAUSS = Probe("_gauss", "gaussian", (("noise_var", 0.1),))

SETTINGS: tuple[Setting, ...] = (
    Setting("tanh, 30 bins [-1, 1]", "activation", "Shwartz-Ziv & Tishby 2017", "tanh"),
    Setting("relu, 30 bins own range", "activation", "Saxe et al. 2018", "relu"),
    Setting("sigmoid, 30 bins [0, 1]", "activation", "Saxe et al. 2018", "sigmoid"),
    Setting("linear, 30 bins own range", "activation", "Saxe et al. 2018", "linear"),
    Setting("linear, Gaussian closed form (noise 0.1)", "activation", "Saxe et al. 2018", "linear", "_gauss"),
    Setting("tanh, 10 bins", "estimator", "Saxe et al. 2018", "tanh", "_bins10"),
    Setting("tanh, 100 bins", "estimator", "Goldfeld et al. 2019", "tanh", "_bins100"),
    Setting("tanh, authors' grid (IDNNs)", "estimator", "Shwartz-Ziv & Tishby (code)", "tanh", "_idnns"),
    Setting("tanh, 30 bins own range", "estimator", "Saxe et al. 2018", "tanh", "_own"),
    Setting("tanh, 30 equal-mass bins", "estimator", "Chelombiev et al. 2019", "tanh", "_mass"),
    Setting("tanh, KDE noise 1e-1", "estimator", "Saxe et al. 2018; Kolchinsky & Tracey 2017", "tanh",
            KDE_PLANE.suffix),
    Setting("tanh, KDE noise 1e-3", "estimator", "Saxe et al. (ibsgd notebook)", "tanh", "_kde3"),
    Setting("tanh, ensemble estimator", "estimator", "this package (binned encoder pooled over repeats)", "tanh",
            "_ensemble"),
    Setting("tanh, exact float codes", "estimator", "Amjad & Geiger 2019", "tanh", "_codes"),
    Setting("tanh, noisy network (sample propagation)", "estimator", "Goldfeld et al. 2019", "tanh", "_noisy_net"),
    Setting("relu, fixed width 0.07", "estimator", "Saxe et al. (ibsgd)", "relu", "_w007"),
    Setting("relu, KDE noise 1e-1", "estimator", "Saxe et al. 2018", "relu", KDE_PLANE.suffix),
    Setting("tanh quantized 8 bits, exact", "estimator", "Lorenzen et al. 2022", "quant8", "_codes"),
    Setting("tanh quantized 4 bits, exact", "estimator", "Lorenzen et al. 2022", "quant4", "_codes"),
    Setting(f"SGD lr {SGD_LR}", "optimisation", "Saxe et al. 2018", "sgd"),
    Setting(f"full-batch GD lr {GD_LR}", "optimisation", "Saxe et al. 2018", "gd"),
    Setting("Adam, batch 32", "optimisation", "Saxe et al. 2018", "batch32"),
    Setting(f"weight decay {WEIGHT_DECAY:g}", "optimisation", "Chelombiev et al. 2019", "weight_decay"),
    Setting("soft task (gamma 19.05)", "data", "Shwartz-Ziv & Tishby 2017", "soft"),
    Setting("5 % training data", "data", "Shwartz-Ziv & Tishby 2017", "data5"),
)
_BY_LABEL = {s.label: s for s in SETTINGS}


def setting(label: str) -> Setting:
    """The setting of this label; ``ValueError`` listing the labels otherwise."""
    if label not in _BY_LABEL:
        raise ValueError(f"setting must be one of {list(_BY_LABEL)}, got {label!r}")
    return _BY_LABEL[label]


def _probes(run: str) -> tuple[Probe, ...]:
    kw = RUNS[run] or {}
    activation = kw.get("activation", "tanh")
    probes = (Probe("", "binning", bins(30, limits_for(activation))),)
    if run == "linear":
        probes += (_GAUSS,)
    if "quantize_bits" in kw:
        probes += (CODES,)
    return probes


@lru_cache(maxsize=4)
def setting_run(run: str, size: str, seed: int, device: str = "cpu") -> xr.Dataset:
    """The measured training run ``run`` (a key of :data:`RUNS`) at ``size``: the shared paper run for "tanh" and
    "relu", else :func:`~ibtheory.reproduce.runs.measured_run` with the run's changes."""
    if run not in RUNS:
        raise ValueError(f"run must be one of {list(RUNS)}, got {run!r}")
    if RUNS[run] is None:
        return paper_run(size, seed, run, device=device)
    kw = dict(RUNS[run])
    scale = kw.pop("epoch_scale", 1.0)
    epochs = max(1, int(round(RUN_SIZES[size]["epochs"] * scale)))
    return measured_run(size, seed, _probes(run), epochs=epochs, device=device, **kw)


@lru_cache(maxsize=2)
def task_bound(task: str):
    """The task's IB curve F(I(X;T)) in bits, vectorised: min(r, I(X;Y)) for the hard task (deterministic labels:
    the curve is that line, Kolchinsky, Tracey & Van Kuyk 2019), the certified curve (:func:`ibtheory.ib.ib_curve`)
    for the soft one."""
    data = task_of(task)
    if task == "hard":
        top = mutual_information(data["p_xy"].values)
        return lambda r: np.minimum(np.maximum(np.asarray(r, dtype=np.float64), 0.0), top)
    curve = ib_curve(data["p_xy"].values)
    return lambda r: curve_value(curve, np.maximum(np.asarray(r, dtype=np.float64), 0.0))


def _plane(run: xr.Dataset, suffix: str) -> xr.Dataset:
    """The run seen through one probe: I_XT, I_TY (snapshots where it was measured) and the gradient statistics."""
    ixt, ity = run[f"I_XT{suffix}"], run[f"I_TY{suffix}"]
    hidden = ixt.isel(layer=slice(0, -1))  # the noisy network has no value at the (noiseless) softmax output
    ok = np.isfinite(hidden.values).reshape(hidden.sizes["epoch"], -1).all(axis=1)
    ds = xr.Dataset({"I_XT": ixt})
    if np.isfinite(ity.values).any():
        ds["I_TY"] = ity
    for v in ("grad_mean_norm", "grad_std_norm"):
        ds[v] = run[v]
    ds = ds.isel(epoch=np.flatnonzero(ok))
    ds.attrs["activation"] = run.attrs.get("activation", "")
    return ds


def setting_result(label: str, size: str, seed: int, device: str = "cpu") -> xr.Dataset:
    """One row of the matrix: the claims' verdicts, scores and details (dim ``claim``) and the repeat-mean
    trajectories ``I_XT``, ``I_TY`` (snapshot, layer) with their ``epoch`` (snapshot), in bits."""
    s = setting(label)
    run = setting_run(s.run, size, seed, device)
    plane = _plane(run, s.suffix)
    task = "soft" if (RUNS[s.run] or {}).get("task") == "soft" else "hard"
    table = claim_table(plane, task_bound(task) if "I_TY" in plane else None)
    mean = (lambda v: v.mean("repeat") if "repeat" in v.dims else v)  # noqa: E731
    traj = xr.Dataset({"I_XT": mean(plane["I_XT"]),
                       "I_TY": mean(plane["I_TY"]) if "I_TY" in plane else xr.full_like(mean(plane["I_XT"]), np.nan)})
    traj = traj.assign_coords(snapshot=("epoch", np.arange(traj.sizes["epoch"]))).swap_dims(epoch="snapshot")
    traj = traj.reset_coords("epoch")
    for v in ("I_XT", "I_TY"):
        traj[v].attrs["units"] = "bits"
    out = xr.merge([table, traj])
    out.attrs.update(setting=label, group=s.group, source=s.source, run=s.run, size=size, run_seed=int(seed))
    return out


def _critique_task(config: dict, seed: int) -> xr.Dataset:
    """The runner's task: one setting (the grid's task seed is not used: every setting shares ``run_seed``, so the
    runs differ only by their knob)."""
    return setting_result(config["setting"], config["size"], config["run_seed"], config["device"])


def _device_here(config: dict) -> str | None:
    """Worker check of the critique kind: the train kind's (the device must exist where the row runs, e.g. on a
    remote dask worker), looked up when called."""
    return builtin.check_device(config)


register_kind(TaskKind(
    name="critique",
    func=_critique_task,
    fields={
        "setting": Field(choice(*_BY_LABEL), doc="a setting of the critics' matrix (ibtheory.reproduce.settings)"),
        "size": Field(choice(*SIZES), "quick", "run size: tiny, quick or full"),
        "run_seed": Field(integer(0), 0, "seed shared by every setting's training run"),
        "device": Field(builtin.device_field, "cpu", "torch device: cpu, cuda, cuda:N (checked on every worker)"),
    },
    doc="one row of the critics' matrix: a training run seen through one estimator, with a verdict per claim",
    worker_check=_device_here,
))
