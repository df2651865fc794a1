"""The training loop of a network ensemble as a generator of snapshots.

:func:`iter_training` trains R networks at once (one batched model, one optimiser; every repetition has its own
initialisation, train/test split, labels and minibatch order, see :mod:`ibtheory.nets.data`) and yields a
:class:`Snapshot` at each snapshot epoch: the activations of every layer for all n_x patterns, the gradient
statistics of that epoch, losses and accuracies, and the state needed to resume.  :func:`ibtheory.nets.train`
turns the snapshots into a Dataset.

The loss of repetition r is the mean cross-entropy over its minibatch; the optimiser minimises the sum over
repetitions, whose gradient with respect to repetition r's parameters is exactly that repetition's own gradient
(Adam and SGD act elementwise), so the ensemble equals R separate trainings.

Training knobs beyond the paper's setting (all off by default, and then the numbers are bit for bit those without
them):

* ``weight_decay`` = lambda: coupled L2, the loss of repetition r becomes CE_r + (lambda / 2) sum W_r^2 over its
  WEIGHTS (not the biases), i.e. lambda W is added to the weight gradients before the optimiser step, for Adam
  and SGD alike (as ``torch.optim.Adam(weight_decay=lambda)`` would, but on the weights only; not AdamW's
  decoupled decay).  The weights are the prefix of the flat buffer, so this is one ``add_`` on that prefix.
  The recorded losses are the cross-entropies alone; the gradient statistics are those of the penalised loss
  (the gradient the optimiser steps with).  Chelombiev et al. 2019 study compression under weight decay.
* Full-batch gradient descent (Saxe et al. 2018): ``batch_size`` >= the number of training patterns makes every
  epoch ONE step on the mean loss over all training patterns; with ``optimizer="sgd"`` that is plain gradient
  descent (the gradient standard deviation of one step per epoch is then NaN).
* ``quantize_bits`` = k: hidden activations quantized to 2^k levels in training and in every snapshot, with the
  straight-through gradient (Lorenzen et al. 2022; see :mod:`ibtheory.nets.model`).  MLP only.

Gradient statistics (Shwartz-Ziv & Tishby 2017, Fig. 4), per weight matrix W_l and repetition, over the K
minibatch gradients g_1..g_K of the snapshot epoch:

    mean_norm = || (1/K) sum_k g_k ||_F,     std_norm = sqrt( trace Cov(g) ) = sqrt( sum_ij Var_k(g_k,ij) ),

with the unbiased (K-1) variance, accumulated in float64.  Epoch 0 (initialisation) has no gradients (NaN).

Divergence: the parameters are checked after every epoch (one sum over all of them, finite iff every entry is;
~30 us on CPU against ~24 ms for an epoch of the paper's setting) and the losses and activations at every snapshot
(~2 ms); NaN or inf raises :class:`TrainingDiverged` naming the epoch and the repeat ids.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
import torch
import xarray as xr

from .._validate import integer, real, show
from .._validate import seed as seed_value
from ..info import LN2
from ..tasks import conditional
from . import data
from .model import ACTIVATIONS, BatchedMLP, FlatEnsemble, check_quantize, init_weights

__all__ = ["TrainConfig", "Snapshot", "TrainingDiverged", "iter_training", "run_epochs", "check_memory", "check_device",
           "OPTIMIZERS", "DTYPES"]

OPTIMIZERS = ("adam", "sgd")


DTYPES = ("float32", "float64")


def _setting(default, text: str, choices: tuple[str, ...] | None = None, kind=None):
    """A :class:`TrainConfig` field: its default and, for the command line and the runner, help text, choices and,
    where the default's type cannot parse a command-line word (a None default), the parser ``kind``."""
    meta = {"help": text, "choices": choices}
    if kind is not None:
        meta["type"] = kind
    return field(default=default, metadata=meta)


def optional_bits(text: str) -> int | None:
    """Command-line form of ``quantize_bits``: "none" or "off" (None), else the integer (checked by TrainConfig).

    >>> optional_bits("4"), optional_bits("none")
    (4, None)
    """
    word = str(text).strip().lower()
    if word in ("none", "off", ""):
        return None
    try:
        return int(word)
    except ValueError:
        raise ValueError(f"quantize_bits must be an integer in 2..16 or 'none', got {text!r}") from None


@dataclass(frozen=True)
class TrainConfig:
    """Everything that determines a training run (validated on construction; bad values raise ``ValueError``).

    The defaults are the paper's setting (Shwartz-Ziv & Tishby 2017): widths 10-7-5-4-3 + softmax, tanh, Adam with
    lr 4e-4, minibatches of 512, 80 % of the patterns for training, 50 repeats, 10,000 epochs, ~300 log-spaced
    snapshots; no weight decay, no quantization (the knobs of the module docstring).  They are written here only:
    ``ibtheory train`` generates its options from these fields (help, choices and, for ``quantize_bits``, the
    parser ``type`` in each field's ``metadata``), the runner's ``train`` fields, :func:`ibtheory.nets.train` and
    the reproduction's runs read their defaults from them (``TrainConfig.lr`` is the default learning rate).
    """

    hidden: tuple[int, ...] = _setting((10, 7, 5, 4, 3), "hidden-layer widths (the softmax output is added)")
    activation: str = _setting("tanh", "hidden nonlinearity", tuple(ACTIVATIONS))
    repeats: int = _setting(50, "networks trained at once, each with its own split, labels and initialisation")
    epochs: int = _setting(10_000, "training epochs")
    lr: float = _setting(4e-4, "learning rate")
    optimizer: str = _setting("adam", "optimiser (full-batch gradient descent: sgd with batch_size >= the number "
                              "of training patterns)", OPTIMIZERS)
    batch_size: int = _setting(512, "minibatch size; >= the number of training patterns: full batch, one step per "
                               "epoch on the mean loss of all training patterns")
    weight_decay: float = _setting(0.0, "coupled L2 penalty lambda: (lambda/2) sum W^2 over the weights (not the "
                                   "biases) added to the loss, for adam and sgd; 0: off")
    quantize_bits: int | None = _setting(None, "quantize the hidden activations to 2^k levels on the activation's "
                                         "range (tanh, hardtanh, sigmoid), straight-through gradient; k in 2..16, "
                                         "none: off", kind=optional_bits)
    train_fraction: float = _setting(0.8, "share of the patterns used for training, in (0, 1)")
    snapshots: int = _setting(300, "log-spaced epochs at which every layer is measured")
    seed: int = _setting(0, "seed: repeat r draws from SeedSequence(seed, spawn_key=(repeat_start + r,))")
    repeat_start: int = _setting(0, "id of the first repeat")
    device: str = _setting("cpu", "torch device: cpu, cuda or cuda:N")
    dtype: str = _setting("float32", "torch dtype of the networks", DTYPES)

    def __post_init__(self) -> None:
        hidden = self.hidden
        if not isinstance(hidden, (tuple, list, np.ndarray)) or len(hidden) < 1:
            raise ValueError(f"hidden must be a non-empty sequence of integer widths >= 1, got {show(hidden)}")
        set_ = lambda name, v: object.__setattr__(self, name, v)  # noqa: E731 (frozen dataclass)
        set_("hidden", tuple(integer(w, f"hidden[{i}]", 1) for i, w in enumerate(hidden)))
        for name, choices in (("activation", tuple(ACTIVATIONS)), ("optimizer", OPTIMIZERS), ("dtype", DTYPES)):
            v = getattr(self, name)
            if not isinstance(v, str) or v not in choices:
                raise ValueError(f"{name} must be one of {choices}, got {show(v)}")
        for name in ("repeats", "epochs", "batch_size", "snapshots", "repeat_start"):
            set_(name, integer(getattr(self, name), name, 0 if name in ("epochs", "repeat_start") else 1))
        lr = real(self.lr, "lr", 0.0, low_open=True)
        cap = 0.1 * float(np.finfo(self.dtype).max)  # Adam's first step lr / (1 - beta1) must be a number of dtype
        if lr > cap:
            raise ValueError(f"lr must be <= {cap:.3g} for {self.dtype} networks (Adam's first step lr / (1 - 0.9) "
                             f"must be a {self.dtype} number), got {show(self.lr)}")
        set_("lr", lr)
        fraction = real(self.train_fraction, "train_fraction")
        if not 0.0 < fraction < 1.0:
            raise ValueError(f"train_fraction must lie in (0, 1), got {show(self.train_fraction)}")
        set_("train_fraction", fraction)
        set_("weight_decay", real(self.weight_decay, "weight_decay", 0.0))
        set_("quantize_bits", check_quantize(self.quantize_bits, self.activation))
        set_("seed", seed_value(self.seed, "seed"))
        set_("device", check_device(self.device))


def check_device(device: str | torch.device, name: str = "device") -> str:
    """The torch device name ``device`` checked to exist here: "cpu", "cuda" or "cuda:N"; returns it as a string.

    ``ValueError`` naming the argument (``name``) for any other spelling, for CUDA when torch sees no CUDA device,
    and for "cuda:N" beyond the devices present: the check every trainer and command runs before any work.

    >>> check_device("cpu")
    'cpu'
    """
    dev = str(device) if isinstance(device, torch.device) else device
    if not (isinstance(dev, str) and (dev == "cpu" or dev == "cuda" or (dev.startswith("cuda:")
                                                                         and dev[5:].isdigit()))):
        raise ValueError(f"{name} must be 'cpu', 'cuda' or 'cuda:N', got {show(device)}")
    if dev.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"{name} {dev!r} was asked for but CUDA is not available")
    if dev.startswith("cuda:") and int(dev[5:]) >= torch.cuda.device_count():
        raise ValueError(f"{name} {dev!r} was asked for but only {torch.cuda.device_count()} CUDA device(s) exist")
    return dev


@dataclass
class Snapshot:
    """The state of all R networks after ``epoch`` epochs.

    activations : list over layers of float32 arrays (R, n_x, width); the last layer is the softmax output.
    grad_mean_norm, grad_std_norm, weight_norm : (n_layers, R) float64 (NaN at epoch 0).
    train_loss, test_loss : (R,) mean cross-entropy in bits; train_accuracy, test_accuracy : (R,) in [0, 1].
    checkpoint : dict with ``params``, ``opt_m``, ``opt_v`` (R, n_params) float arrays and ``opt_step`` (int).
    device_activations : the same activations as float32 tensors on the training device, kept when the trainer
        measures there (training off the CPU, see ``_measures_on_device``), else None.
    """

    epoch: int
    activations: list[np.ndarray]
    grad_mean_norm: np.ndarray
    grad_std_norm: np.ndarray
    weight_norm: np.ndarray
    train_loss: np.ndarray
    test_loss: np.ndarray
    train_accuracy: np.ndarray
    test_accuracy: np.ndarray
    checkpoint: dict = field(repr=False)
    device_activations: list[torch.Tensor] | None = field(default=None, repr=False)


#: Where :func:`ibtheory.nets.train` measures binning (private switch, read at every snapshot): unset or "auto", on
#: the training device when it is not the CPU (where numpy's estimator is faster); "1" on the device always (the
#: tests' way to run the device path on the CPU); "0" on the host always (the reference numbers).
_MEASURE_ON_DEVICE_ENV = "IBTHEORY_MEASURE_ON_DEVICE"


def _measures_on_device(device: torch.device | str) -> bool:
    """Whether snapshots on ``device`` keep their device tensors to be measured there (see
    ``_MEASURE_ON_DEVICE_ENV``)."""
    switch = os.environ.get(_MEASURE_ON_DEVICE_ENV, "auto").strip().lower()
    if switch not in ("auto", "", "0", "1"):
        raise ValueError(f"environment variable {_MEASURE_ON_DEVICE_ENV} must be 'auto', '0' or '1', got {switch!r}")
    return switch == "1" or (switch != "0" and torch.device(device).type != "cpu")


@dataclass
class _Setup:
    features: np.ndarray
    p_x: np.ndarray
    p_y_given_x: np.ndarray
    train_mask: np.ndarray
    labels: np.ndarray
    keys: np.ndarray
    weights: list
    repeat_ids: np.ndarray


class TrainingDiverged(ValueError):
    """Training produced non-finite parameters, losses or activations (NaN or +-inf): the run diverged.

    Attributes: ``epoch`` (the epoch after which it was found), ``repeats`` (the repeat ids concerned), ``what``
    (which quantity), and ``dataset``: the run up to the last finite snapshot when :func:`ibtheory.nets.train`
    raised it (None otherwise).
    """

    def __init__(self, message: str, epoch: int, repeats: Sequence[int], what: str = "parameters") -> None:
        super().__init__(message)
        self.epoch = int(epoch)
        self.repeats = tuple(int(r) for r in repeats)
        self.what = what
        self.dataset: xr.Dataset | None = None


def _diverged(epoch: int, bad: np.ndarray, repeat_ids: np.ndarray, what: str, config: TrainConfig) -> None:
    """Raise :class:`TrainingDiverged` for the repeats flagged in ``bad`` (R,) bool."""
    ids = [int(r) for r in np.asarray(repeat_ids)[bad]]
    listed = ", ".join(map(str, ids[:20])) + (f", ... ({len(ids)} in all)" if len(ids) > 20 else "")
    raise TrainingDiverged(
        f"training diverged: non-finite (NaN or inf) {what} at epoch {epoch} in repeat(s) {listed} of "
        f"{len(bad)} (lr={config.lr:g}, optimizer {config.optimizer!r}); lower the learning rate",
        epoch, ids, what)


def check_finite_parameters(epoch: int, params: Sequence[torch.Tensor], repeat_ids: np.ndarray,
                            config: TrainConfig, flat: torch.Tensor | None = None) -> None:
    """Raise :class:`TrainingDiverged` when a parameter (leading dim R) of some repeat is NaN or infinite.

    Fast path: one sum over all parameters (``flat``, the model's flat buffer, when given) is finite iff no entry
    is NaN or inf, unless the sum of finite values overflows, which the exact per-repeat check below then clears.
    One host sync per call.
    """
    with torch.no_grad():
        total = flat.sum() if flat is not None else torch.stack([p.detach().sum() for p in params]).sum()
        if math.isfinite(float(total)):
            return
        r = params[0].shape[0]
        bad = ~torch.stack([torch.isfinite(p.detach().reshape(r, -1)).all(dim=1) for p in params]).all(dim=0)
    bad = bad.cpu().numpy()
    if bad.any():
        _diverged(epoch, bad, repeat_ids, "parameters", config)


def check_finite_snapshot(snap: Snapshot, repeat_ids: np.ndarray, config: TrainConfig) -> None:
    """Raise :class:`TrainingDiverged` when a loss or an activation of some repeat in ``snap`` is not finite."""
    losses = np.stack([snap.train_loss, snap.test_loss])
    bad = ~np.isfinite(losses).all(axis=0)
    if bad.any():
        _diverged(snap.epoch, bad, repeat_ids, "losses", config)
    for a in snap.activations:  # (R, n_x, width) per layer
        if not np.isfinite(a.sum()):  # fast path; an overflowing sum of finite values is cleared below
            bad |= ~np.isfinite(a).all(axis=(1, 2))
    if bad.any():
        _diverged(snap.epoch, bad, repeat_ids, "activations", config)


def check_memory(config: TrainConfig, n_x: int, widths: Sequence[int], n_params: int | None = None) -> None:
    """Raise ``ValueError`` (naming ``hidden``) when the run cannot fit the memory of ``config.device``.

    Estimate in bytes, with s the size of the dtype and W = sum of the layer widths: parameters, gradients, Adam
    moments and the float64 gradient statistics, 8 s + 16 bytes per parameter; the snapshot forward pass over all
    n_x patterns and its host copies, 3 R n_x W s (plus the binning's int64 codes, 8 R n_x per layer); the
    minibatch activations and deltas, 3 R B W s with B = min(batch_size, n_x) (4 R B W s with quantize_bits: the
    unquantized activations are kept too).  Checked against the free memory of the device (MemAvailable
    on the host, ``torch.cuda.mem_get_info`` on a GPU) before any weight is drawn.
    """
    s = 4 if config.dtype == "float32" else 8
    R, W = config.repeats, int(sum(widths[1:]))
    if n_params is None:
        n_params = sum(int(a) * int(b) + int(b) for a, b in zip(widths[:-1], widths[1:], strict=True))
    B = min(config.batch_size, n_x)  # a batch_size beyond the training set is one full batch
    need = R * n_params * (8 * s + 16) + 3 * R * n_x * W * s + 8 * R * n_x * (len(widths) - 1) \
        + (3 if config.quantize_bits is None else 4) * R * B * W * s
    free = _free_memory(config.device)
    if free is not None and need > free:
        raise ValueError(f"hidden {config.hidden} with {R} repeats and {n_x} patterns needs about {need / 2**30:.2f} "
                         f"GiB on {config.device!r} but only {free / 2**30:.2f} GiB are free; use narrower layers, "
                         "fewer repeats (split them over runs: repeat_start) or another device")


def _free_memory(device: str) -> int | None:
    """Free bytes on ``device``: MemAvailable of the host for the CPU, ``mem_get_info`` for CUDA (None: unknown)."""
    if device.startswith("cuda"):
        return int(torch.cuda.mem_get_info(torch.device(device))[0])
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def prepare(task: xr.Dataset, config: TrainConfig) -> _Setup:
    """Draw every repetition's initial weights, split, labels and shuffle key (the order is part of the contract)."""
    if not isinstance(task, xr.Dataset) or "p_xy" not in task:
        raise ValueError("task must be a task Dataset with a 'p_xy' variable (see ibtheory.tasks)")
    p_x, p_y_x = conditional(task["p_xy"].values)
    features = data.input_features(task)
    n_x = p_x.size
    n_train = int(round(config.train_fraction * n_x))
    if not 1 <= n_train < n_x:
        raise ValueError(f"train_fraction {config.train_fraction} leaves {n_train} of {n_x} patterns for training; "
                         "need at least one training and one test pattern")
    widths = (features.shape[1],) + config.hidden + (p_y_x.shape[1],)
    check_memory(config, n_x, widths)
    ids = np.arange(config.repeat_start, config.repeat_start + config.repeats)
    rngs = data.repeat_generators(config.seed, ids)
    weights = init_weights(widths, rngs)
    mask = data.split_masks(rngs, n_x, n_train)
    labels = data.draw_labels(rngs, p_y_x)
    keys = data.shuffle_keys(rngs)
    return _Setup(features, p_x, p_y_x, mask, labels, keys, weights, ids)


def _optimizer(flat: torch.nn.Parameter, config: TrainConfig) -> torch.optim.Optimizer:
    """One optimiser over the one flat parameter buffer (one fused kernel per step)."""
    if config.optimizer == "adam":
        fused = flat.device.type in ("cpu", "cuda")
        return torch.optim.Adam([flat], lr=config.lr, fused=fused)
    return torch.optim.SGD([flat], lr=config.lr, foreach=True)


def _stepper(opt: torch.optim.Optimizer, flat: torch.nn.Parameter):
    """The optimiser step of the training loop: for fused Adam, ``torch._fused_adam_`` called directly on the one
    flat buffer and its moments, the very kernel (and numbers, bit for bit) of ``opt.step()`` without the ~20 us of
    Python bookkeeping around it per step; ``opt.step`` itself otherwise.  The moments and the step count stay in
    ``opt.state[flat]`` (created here when training starts afresh), where the checkpoints read them."""
    group = opt.param_groups[0]
    fused_adam = isinstance(opt, torch.optim.Adam) and group.get("fused") and hasattr(torch, "_fused_adam_") and \
        not (group["amsgrad"] or group["maximize"] or group["weight_decay"] or group.get("decoupled_weight_decay"))
    if not fused_adam:
        return opt.step
    state = opt.state[flat]
    if not state:  # what Adam's first step would create (a float32 step count for the fused kernel)
        state.update(step=torch.zeros((), dtype=torch.float32, device=flat.device),
                     exp_avg=torch.zeros_like(flat, memory_format=torch.preserve_format),
                     exp_avg_sq=torch.zeros_like(flat, memory_format=torch.preserve_format))
    params, grads, m, v, t = [flat], [flat.grad], [state["exp_avg"]], [state["exp_avg_sq"]], [state["step"]]
    (beta1, beta2), lr, eps = group["betas"], float(group["lr"]), float(group["eps"])

    def step() -> None:
        torch._foreach_add_(t, 1)
        torch._fused_adam_(params, grads, m, v, [], t, amsgrad=False, lr=lr, beta1=float(beta1), beta2=float(beta2),
                           weight_decay=0.0, eps=eps, maximize=False, grad_scale=None, found_inf=None)

    return step


def _checkpoint(model: FlatEnsemble, opt: torch.optim.Optimizer, flat: torch.Tensor, step: int) -> dict:
    state = opt.state.get(flat, {})

    def rows(key: str) -> np.ndarray:
        buf = state[key] if key in state else torch.zeros_like(flat)
        return model.rows(buf.detach()).cpu().numpy()

    return {"params": model.flat_parameters().cpu().numpy(), "opt_m": rows("exp_avg"), "opt_v": rows("exp_avg_sq"),
            "opt_step": int(step)}


def _restore(model: FlatEnsemble, opt: torch.optim.Optimizer, flat: torch.Tensor, ckpt: dict,
             config: TrainConfig) -> None:
    dev, dt = flat.device, flat.dtype
    model.load_flat(torch.as_tensor(np.asarray(ckpt["params"]), dtype=dt, device=dev))
    if config.optimizer != "adam" or int(ckpt["opt_step"]) == 0:
        return
    opt.state[flat] = {
        "step": torch.tensor(float(ckpt["opt_step"]), dtype=torch.float32, device=dev),
        "exp_avg": model.from_rows(torch.as_tensor(np.asarray(ckpt["opt_m"]), dtype=dt, device=dev)),
        "exp_avg_sq": model.from_rows(torch.as_tensor(np.asarray(ckpt["opt_v"]), dtype=dt, device=dev)),
    }


def iter_training(
    task: xr.Dataset, config: TrainConfig, resume: dict | None = None, setup: _Setup | None = None
) -> Iterator[Snapshot]:
    """Train the ensemble and yield a :class:`Snapshot` at every epoch of ``snapshot_epochs(epochs, snapshots)``.

    ``resume`` is a checkpoint dict (as in ``Snapshot.checkpoint``) plus ``epoch``: training continues after that
    epoch and only later snapshots are yielded; the result is the same as an uninterrupted run.

    Divergence stops the generator with :class:`TrainingDiverged` (a ``ValueError``) naming the epoch and the
    repeats: the parameters are checked at the end of every epoch, the losses and activations of every snapshot
    before it is yielded, so every yielded snapshot is finite.
    """
    setup = setup or prepare(task, config)
    dtype = torch.float32 if config.dtype == "float32" else torch.float64
    model = BatchedMLP((setup.features.shape[1],) + config.hidden + (setup.p_y_given_x.shape[1],),
                       config.activation, setup.weights, dtype=dtype, device=torch.device(config.device),
                       quantize_bits=config.quantize_bits)
    yield from run_epochs(model, setup.features, setup.labels, setup.train_mask, setup.keys, setup.repeat_ids,
                          config, resume)


def run_epochs(model: FlatEnsemble, features: np.ndarray, labels: np.ndarray, train_mask: np.ndarray,
               keys: np.ndarray, repeat_ids: np.ndarray, config: TrainConfig, resume: dict | None = None,
               eval_batch: int | None = None) -> Iterator[Snapshot]:
    """The one training loop of every batched model (:class:`BatchedMLP`, :class:`ibtheory.nets.conv.BatchedConvNet`).

    Per epoch, the minibatch order of every repeat is :func:`ibtheory.nets.data.epoch_orders` (on a GPU the same
    permutations are computed there by :func:`ibtheory.nets.data.epoch_orders_torch`; on the CPU numpy's sort is
    faster and a worker thread prepares epoch e+1 while e trains).  A step gathers the repeats' minibatches from
    the device-resident inputs and labels (one ``index_select`` and one ``gather``), lets the model write the
    gradient of the summed per-repeat mean cross-entropy into its flat gradient buffer (``model.grad_step``), and
    runs one optimiser step over the flat parameter buffer (after adding ``weight_decay`` x the weights to the
    weights' prefix of the gradient buffer, when set).  ``batch_size`` >= the training patterns: one full batch per
    epoch.  The model's ``quantize_bits`` must be ``config.quantize_bits`` (``ValueError`` naming quantize_bits
    otherwise, e.g. for a model without quantization).  Snapshot epochs accumulate the gradient statistics
    (two float64 operations on the weights' prefix of the buffer) and evaluate all patterns (in chunks of
    ``eval_batch`` when given).
    """
    if getattr(model, "quantize_bits", None) != config.quantize_bits:
        raise ValueError(f"quantize_bits={config.quantize_bits} is not supported by this model "
                         f"({type(model).__name__} quantizes with {getattr(model, 'quantize_bits', None)}); "
                         "quantized activations are implemented for the MLP (BatchedMLP)")
    dtype, dev = model.flat.dtype, model.flat.device
    flat = torch.nn.Parameter(model.flat, requires_grad=False)  # shares the model's storage
    flat.grad = model.flat_grad
    opt = _optimizer(flat, config)
    R, n_x = train_mask.shape
    feats = torch.as_tensor(features, dtype=dtype, device=dev)  # (n_x, n_in), sample-major
    y_all = torch.as_tensor(labels, dtype=torch.long, device=dev)  # (R, n_x)
    mask = torch.as_tensor(train_mask, device=dev)
    snaps = data.snapshot_epochs(config.epochs, config.snapshots)
    snap_set = set(snaps.tolist())
    step, first = 0, 1
    if resume is not None:
        _restore(model, opt, flat, resume, config)
        step = int(resume["opt_step"])
        first = int(resume["epoch"]) + 1
    elif snaps[0] == 0:
        yield _checked(_snapshot(0, model, opt, flat, step, feats, y_all, mask, None, eval_batch), repeat_ids, config)
    opt_step = _stepper(opt, flat)  # after _restore: it steps the restored moments
    orders = _Orders(train_mask, keys, config.batch_size, dev)
    n_w = model.n_weight_values
    decay = config.weight_decay
    w_prefix, gw_prefix = model.flat[:n_w], model.flat_grad[:n_w]  # every weight entry, no bias
    on_cpu = dev.type == "cpu"
    with ThreadPoolExecutor(max_workers=1) as pool:  # CPU: prepares epoch e+1's minibatch indices while e trains
        pending = pool.submit(orders, first) if on_cpu and first <= config.epochs else None
        for epoch in range(first, config.epochs + 1):
            if on_cpu:
                batches = pending.result()
                if epoch < config.epochs:
                    pending = pool.submit(orders, epoch + 1)
            else:
                batches = orders(epoch)
            record = epoch in snap_set
            if record:
                acc = (torch.zeros(n_w, dtype=torch.float64, device=dev),
                       torch.zeros(n_w, dtype=torch.float64, device=dev))
            for idx in batches:  # idx (R, b) pattern indices of this step
                b = idx.shape[1]
                xb = feats.index_select(0, idx.reshape(-1)).view(R, b, -1).transpose(1, 2)  # (R, n_in, b) view
                model.grad_step(xb, y_all.gather(1, idx))
                if decay:
                    gw_prefix.add_(w_prefix, alpha=decay)  # d/dW (lambda/2) sum W^2
                if record:
                    g = model.flat_grad[:n_w].double()
                    acc[0].add_(g)
                    acc[1].addcmul_(g, g)
                opt_step()
                step += 1
            check_finite_parameters(epoch, list(model.weights) + list(model.biases), repeat_ids, config, model.flat)
            if record:
                snap = _snapshot(epoch, model, opt, flat, step, feats, y_all, mask, (acc, len(batches)), eval_batch)
                yield _checked(snap, repeat_ids, config)


def _checked(snap: Snapshot, repeat_ids: np.ndarray, config: TrainConfig) -> Snapshot:
    check_finite_snapshot(snap, repeat_ids, config)
    return snap


class _Orders:
    """The minibatch indices of one epoch for all repetitions: a list of (R, b) int64 tensors of pattern indices,
    b = batch size (the last batch may be shorter), in each repetition's order of
    :func:`ibtheory.nets.data.epoch_orders` (numpy on the CPU, releasing the GIL; torch on other devices)."""

    def __init__(self, train_mask: np.ndarray, keys: np.ndarray, batch_size: int, device: torch.device) -> None:
        R = train_mask.shape[0]
        self.train_idx = np.nonzero(train_mask)[1].reshape(R, -1)
        self.n_train = self.train_idx.shape[1]
        self.keys = keys
        self.bounds = [(s, min(s + batch_size, self.n_train)) for s in range(0, self.n_train, batch_size)]
        self.device = device
        if device.type != "cpu":
            self.train_idx_t = torch.as_tensor(self.train_idx, device=device)
            self.keys_t = torch.as_tensor(keys.view(np.int64), device=device)

    def __call__(self, epoch: int) -> list[torch.Tensor]:
        if self.device.type == "cpu":
            order = data.epoch_orders(self.keys, epoch, self.n_train)
            gidx = np.take_along_axis(self.train_idx, order, axis=1)  # (R, n_train) pattern indices
            return [torch.from_numpy(np.ascontiguousarray(gidx[:, s:e])) for s, e in self.bounds]
        order = data.epoch_orders_torch(self.keys_t, epoch, self.n_train)
        gidx = torch.take_along_dim(self.train_idx_t, order, dim=1)
        return [gidx[:, s:e].contiguous() for s, e in self.bounds]


def _snapshot(epoch, model, opt, flat, step, feats, labels, mask, grads, eval_batch=None) -> Snapshot:
    R, n_x = labels.shape
    chunk = n_x if eval_batch is None else int(eval_batch)
    with torch.no_grad():
        parts = [model(feats[s:s + chunk].T[None].expand(R, -1, -1)) for s in range(0, n_x, chunk)]
        acts = [torch.cat([p[i] for p in parts], dim=2).transpose(1, 2) if len(parts) > 1 else
                parts[0][i].transpose(1, 2) for i in range(len(parts[0]))]  # (R, n_x, width)
        logp = torch.log_softmax(acts[-1], dim=-1)
        ce = -logp.gather(-1, labels[..., None])[..., 0] / LN2
        correct = (logp.argmax(dim=-1) == labels).to(logp.dtype)
        m = mask.to(logp.dtype)
        n_tr, n_te = m.sum(1), (1 - m).sum(1)
        layers = [a.float() for a in acts[:-1]] + [logp.exp().float()]  # (R, n_x, width) float32 on the device
        out = [a.cpu().numpy() for a in layers]
        wnorm = np.stack([w.detach().double().reshape(R, -1).norm(dim=1).cpu().numpy() for w in model.weights])
    n_layers = len(model.weights)
    if grads is None:
        gm = gs = np.full((n_layers, R), np.nan)
    else:
        (g1, g2), k = grads
        mean = model.weight_views(g1 / k)
        var = model.weight_views(((g2 - g1 * g1 / k) / max(k - 1, 1)).clamp_min_(0))
        gm = np.stack([v.norm(dim=1).cpu().numpy() for v in mean])
        gs = np.stack([v.sum(1).sqrt().cpu().numpy() for v in var]) if k > 1 else np.full((n_layers, R), np.nan)
    t = lambda v: v.double().cpu().numpy()  # noqa: E731
    return Snapshot(
        epoch=int(epoch), activations=out, grad_mean_norm=gm, grad_std_norm=gs, weight_norm=wnorm,
        train_loss=t((ce * m).sum(1) / n_tr), test_loss=t((ce * (1 - m)).sum(1) / n_te),
        train_accuracy=t((correct * m).sum(1) / n_tr), test_accuracy=t((correct * (1 - m)).sum(1) / n_te),
        checkpoint=_checkpoint(model, opt, flat, step),
        device_activations=layers if _measures_on_device(feats.device) else None,
    )
