"""A batched ensemble of small convolutional networks: R networks at once through grouped convolutions.

Network r maps an image (1, H, W) through convolution blocks and dense layers:

    conv block i:  h_i = maxpool_2( phi( K_i[r] * h_{i-1} + c_i[r] ) ),   K_i[r] of shape (C_i, C_{i-1}, k, k),
    dense layer j: h_j = phi( h_{j-1} W_j[r] + b_j[r] ),                  W_j[r] of shape (fan_in, fan_out),

with 'same' padding (k odd), 2x2 max pooling (floor), and a linear output layer whose softmax is the last measured
layer.  The R networks run as ONE ``conv2d`` per block with ``groups=R``: the input holds repetition r's minibatch
in channel group r (so every repetition can see its own images in its own order), the kernels of all repetitions
are stacked along the output channels, and no Python loop runs over repetitions.  Dense layers are one
``torch.baddbmm`` over (R, fan_in, fan_out) weights, as in :class:`ibtheory.nets.BatchedMLP`.  The model has the
same interface as ``BatchedMLP`` (inputs feature-major (R, n_in, B), a list of feature-major activations out,
``weights``, ``repeats``, ``flat_parameters``), so a loop written for one can drive the other.

Initialisation as in the paper: truncated normal with std 1/sqrt(fan_in) (fan_in = C_{i-1} k^2 for a kernel), zero
biases, every repetition from its own generator (:func:`ibtheory.nets.model.init_weights`).  Training
(:func:`iter_conv_training`, :func:`train_conv`) reuses the ensemble's data helpers (:mod:`ibtheory.nets.data`:
per-repetition splits, labels and minibatch orders) and the layer estimators (binning, ensemble); it yields the
same :class:`ibtheory.nets.Snapshot` states as :func:`ibtheory.nets.iter_training` and returns a Dataset laid out
like :func:`ibtheory.nets.train`'s (see :func:`train_conv`).

References
----------
1. Y. LeCun et al., "Gradient-based learning applied to document recognition", Proc. IEEE 86(11), 1998.
2. R. Shwartz-Ziv and N. Tishby, "Opening the black box of deep neural networks via information", arXiv:1703.00810.
3. A. M. Saxe et al., "On the information bottleneck theory of deep learning", ICLR 2018.
"""

from __future__ import annotations

import dataclasses
import math
import sys
from collections.abc import Iterator, Sequence

import numpy as np
import torch
import torch.nn.functional as F
import xarray as xr
from tqdm.auto import tqdm

from .. import store
from .._validate import integer, show
from ..estimators import RUN_SCHEMA, binning_options
from ..estimators.registry import BINNING_OPTIONS, ESTIMATORS, check_names
from ..tasks import conditional
from . import data
from .loop import Snapshot, TrainConfig, check_memory, run_epochs
from .measure import measure_snapshot
from .model import ACTIVATIONS, FlatEnsemble, init_weights

__all__ = ["BatchedConvNet", "iter_conv_training", "train_conv", "image_shape", "conv_estimators"]



def conv_estimators() -> tuple[str, ...]:
    """The registered estimators :func:`train_conv` can use: those whose options are all binning options (it has no
    ``noise_var``)."""
    return tuple(n for n, est in ESTIMATORS.items() if set(est.options) <= set(BINNING_OPTIONS))


def image_shape(task: xr.Dataset, n_in: int) -> tuple[int, int]:
    """(height, width) of a task's images: attrs ``image_height``/``image_width``, else a square of n_in pixels."""
    h, w = task.attrs.get("image_height"), task.attrs.get("image_width")
    if h is None or w is None:
        side = int(round(math.sqrt(n_in)))
        if side * side != n_in:
            raise ValueError(f"task has no image_height/image_width attributes and its {n_in} inputs are no square")
        h = w = side
    if int(h) * int(w) != n_in:
        raise ValueError(f"task declares {h}x{w} images but has {n_in} input features")
    return int(h), int(w)


class BatchedConvNet(FlatEnsemble):
    """R convolutional networks of the same architecture, trained at once.

    Parameters
    ----------
    image : (height, width) of the single-channel input images.
    channels : output channels C_1, C_2, ... of the convolution blocks (each conv + activation + 2x2 max pool).
    kernel : odd kernel size k.
    hidden : widths of the dense hidden layers after the last block (may be empty).
    n_out : number of classes (the linear output layer; softmax applied by the loss and the snapshots).
    activation : one of :data:`ibtheory.nets.ACTIVATIONS`.
    rngs : one ``numpy.random.Generator`` per repetition (R = len(rngs)).

    Examples
    --------
    Three networks on 8x8 images, one block of 2 channels (2 x 4 x 4 = 32 units), 5 dense units, 10 classes.

    >>> net = BatchedConvNet((8, 8), (2,), 3, (5,), 10, "relu", [np.random.default_rng(r) for r in range(3)])
    >>> [tuple(a.shape) for a in net(torch.zeros(3, 64, 7))]
    [(3, 32, 7), (3, 5, 7), (3, 10, 7)]
    """

    def __init__(self, image: tuple[int, int], channels: Sequence[int], kernel: int, hidden: Sequence[int],
                 n_out: int, activation: str, rngs: Sequence[np.random.Generator],
                 dtype: torch.dtype = torch.float32, device: str | torch.device = "cpu") -> None:
        super().__init__()
        if not isinstance(activation, str) or activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, got {show(activation)}")
        if integer(kernel, "kernel", 1) % 2 == 0:
            raise ValueError(f"kernel must be an odd positive integer, got {show(kernel)}")
        kernel = int(kernel)
        if not isinstance(channels, (list, tuple, np.ndarray)) or len(channels) == 0:
            raise ValueError(f"channels must be a non-empty sequence of positive integers, got {show(channels)}")
        chans = tuple(integer(c, f"channels[{i}]", 1) for i, c in enumerate(channels))
        h, w = (int(v) for v in image)
        dense_hidden = tuple(integer(v, f"hidden[{i}]", 1) for i, v in enumerate(hidden))
        n_out = integer(n_out, "n_out", 1)
        if len(rngs) < 1:
            raise ValueError("rngs must hold one generator per repetition (at least one)")
        if min(h, w) >> len(chans) < 1:
            raise ValueError(f"{len(chans)} pooling blocks shrink a {h}x{w} image to nothing; use fewer channels")
        self.image, self.kernel, self.activation = (h, w), int(kernel), activation
        self._phi = ACTIVATIONS[activation]
        R = len(rngs)
        kw = dict(dtype=dtype, device=device)
        convs, c_in = [], 1
        for c in chans:  # loop over the (few) blocks; each draws all repetitions
            (k,) = init_weights([c_in * kernel * kernel, c], rngs)  # (R, c_in k k, c)
            convs.append(torch.as_tensor(k.reshape(R, c_in, kernel, kernel, c).transpose(0, 4, 1, 2, 3), **kw))
            c_in = c
        self.block_widths = tuple(ci * (h >> (i + 1)) * (w >> (i + 1)) for i, ci in enumerate(chans))
        dense_widths = (self.block_widths[-1],) + dense_hidden + (int(n_out),)
        dense = [torch.as_tensor(wt, **kw) for wt in init_weights(dense_widths, rngs)]
        self.widths = self.block_widths + dense_widths[1:]
        self._allocate([t.contiguous() for t in convs + dense],
                       [torch.zeros(R, wd, **kw) for wd in chans + dense_widths[1:]], dtype, device)
        self.n_blocks = len(chans)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Activations of every layer, feature-major (R, width, B), for inputs x of shape (R, H*W, B).

        Convolution blocks come flattened channel-major (width C h w); then the dense layers and the logits.
        """
        R, _, B = x.shape
        h = x.permute(2, 0, 1).reshape(B, R, *self.image)  # channel group r = repetition r's images
        out = []
        for i in range(self.n_blocks):
            k, c = self.weights[i], self.biases[i]
            z = F.conv2d(h, k.reshape(-1, *k.shape[2:]), c.reshape(-1), padding=self.kernel // 2, groups=R)
            h = F.max_pool2d(self._phi(z), 2)
            out.append(h.reshape(B, R, -1).permute(1, 2, 0))
        h = out[-1]
        last = len(self.weights) - 1
        for i in range(self.n_blocks, last + 1):
            z = torch.baddbmm(self.biases[i][:, :, None], self.weights[i].transpose(1, 2), h)
            h = z if i == last else self._phi(z)
            out.append(h)
        return out

    def grad_step(self, x: torch.Tensor, y: torch.Tensor) -> None:
        """Gradients of one minibatch into ``flat_grad`` (autograd through the grouped convolutions)."""
        self.autograd_step(x, y)


@dataclasses.dataclass
class _ConvSetup:
    model: BatchedConvNet
    p_x: np.ndarray
    p_y_given_x: np.ndarray
    features: np.ndarray
    train_mask: np.ndarray
    labels: np.ndarray
    keys: np.ndarray


def _build(task: xr.Dataset, config: TrainConfig, channels: Sequence[int], kernel: int) -> _ConvSetup:
    """Model, exact p(x), p(y|x), features, train masks, labels and shuffle keys, drawn in the order of
    :func:`ibtheory.nets.loop.prepare` (weights, split, labels, key) from each repetition's own stream."""
    if not isinstance(task, xr.Dataset) or "p_xy" not in task:
        raise ValueError("task must be a task Dataset with a 'p_xy' variable (see ibtheory.tasks, ibtheory.mnist)")
    p_x, p_yx = conditional(task["p_xy"].values)
    features = data.input_features(task)
    n_x = p_x.size
    n_train = int(round(config.train_fraction * n_x))
    if not 1 <= n_train < n_x:
        raise ValueError(f"train_fraction {config.train_fraction} leaves {n_train} of {n_x} patterns for training")
    rngs = data.repeat_generators(config.seed, np.arange(config.repeat_start, config.repeat_start + config.repeats))
    dtype = torch.float32 if config.dtype == "float32" else torch.float64
    model = BatchedConvNet(image_shape(task, features.shape[1]), channels, kernel, config.hidden, p_yx.shape[1],
                           config.activation, rngs, dtype=dtype, device=config.device)
    check_memory(config, n_x, (features.shape[1],) + model.widths, model.flat.numel() // config.repeats)
    mask = data.split_masks(rngs, n_x, n_train)
    labels = data.draw_labels(rngs, p_yx)
    keys = data.shuffle_keys(rngs)
    return _ConvSetup(model, p_x, p_yx, features, mask, labels, keys)


def iter_conv_training(task: xr.Dataset, config: TrainConfig, channels: Sequence[int] = (4, 8), kernel: int = 5,
                       eval_batch: int = 1000, setup: _ConvSetup | None = None) -> Iterator[Snapshot]:
    """Train R convolutional networks at once; yield a :class:`~ibtheory.nets.Snapshot` at each snapshot epoch.

    ``config.hidden`` are the dense widths after the convolution blocks; every other field of the
    :class:`~ibtheory.nets.TrainConfig` means what it means for the MLP (loss of repetition r: mean cross-entropy
    over its minibatch; the optimiser minimises the sum over repetitions, so the ensemble equals R separate runs).
    Activations of all n_x patterns are evaluated in chunks of ``eval_batch``.  The loop is
    :func:`ibtheory.nets.loop.run_epochs`, the same as the MLP's (gradients by autograd here); gradient statistics
    per weight tensor and the checkpoint (parameters and Adam moments) as there.  ``setup`` is the private result
    of ``_build`` when the caller already drew it.  Divergence
    (NaN or inf parameters after an epoch, losses or activations at a snapshot) raises
    :class:`~ibtheory.nets.TrainingDiverged` naming the epoch and the repeats.
    """
    setup = setup or _build(task, config, channels, kernel)
    ids = np.arange(config.repeat_start, config.repeat_start + config.repeats)
    yield from run_epochs(setup.model, setup.features, setup.labels, setup.train_mask, setup.keys, ids, config,
                          eval_batch=eval_batch)


def train_conv(
    task: xr.Dataset,
    channels: Sequence[int] = (4, 8),
    kernel: int = 5,
    hidden: Sequence[int] = (32,),
    activation: str = "relu",
    repeats: int = 4,
    epochs: int = 100,
    lr: float = 1e-3,
    optimizer: str = "adam",
    batch_size: int = 128,
    train_fraction: float = 0.8,
    snapshots: int = 30,
    estimators: Sequence[str] = ("binning", "ensemble"),
    n_bins: int | None = None,
    limits="adaptive",
    scheme: str = "width",
    bin_width: float | None = None,
    anchor: float | None = None,
    labels: str = "exact",
    label_seed: int = 0,
    device: str = "cpu",
    seed: int = 0,
    progress: bool | None = None,
    dtype: str = "float32",
) -> xr.Dataset:
    """Train ``repeats`` convolutional networks on an image task at once and measure every layer.

    Parameters as in :func:`ibtheory.nets.train`, plus ``channels`` and ``kernel`` of the convolution blocks and
    ``hidden`` the dense widths after them; ``estimators`` registered estimators that take no options but the
    binning ones (:func:`conv_estimators`; built in: "binning", "ensemble").  ReLU layers are unbounded, hence
    ``limits="adaptive"`` (each network's own layer range, Saxe et al. 2018) by default; ``bin_width`` (with
    ``anchor``) gives their fixed-width bins instead, and ``scheme="idnns"`` needs fixed ``limits``.  The binning
    options (``n_bins``, ``limits``, ``scheme``, ``bin_width``, ``anchor``, ``labels``, ``label_seed``) are those of
    :func:`ibtheory.nets.train` and are recorded in the ``config`` attribute.

    Returns
    -------
    Dataset over ``epoch`` (snapshot epochs, 0 = initialisation), ``layer`` (1..L: the blocks, the dense layers,
    the softmax output), ``repeat``: ``I_XT``, ``I_TY``, ``n_states`` (epoch, layer, repeat) and ``I_XT_ensemble``,
    ``I_TY_ensemble`` (epoch, layer) in bits; ``grad_mean_norm``, ``grad_std_norm``, ``weight_norm``, ``grad_snr``
    (epoch, layer, repeat); ``train_loss``, ``test_loss`` (bits), ``train_accuracy``, ``test_accuracy``
    (epoch, repeat); ``width``, ``layer_kind`` ("conv" | "dense" | "softmax") over ``layer``; ``p_xy``,
    ``train_mask``, ``labels``; attrs ``model`` = "conv", ``task``, ``activation``, ``estimators`` and provenance.
    """
    config = TrainConfig(hidden=hidden, activation=activation, repeats=repeats, epochs=epochs, lr=lr,
                         optimizer=optimizer, batch_size=batch_size, train_fraction=train_fraction,
                         snapshots=snapshots, seed=seed, device=device, dtype=dtype)
    names = check_names(estimators, allowed=conv_estimators())
    opts = binning_options(n_bins, limits, scheme, bin_width=bin_width, anchor=anchor, labels=labels,
                           label_seed=label_seed)
    setup = _build(task, config, channels, kernel)  # validates channels and kernel
    full = dict(dataclasses.asdict(config), channels=[int(c) for c in channels], kernel=int(kernel),
                estimators=list(names), model="conv",
                task=str(task.attrs.get("name", "custom")) if hasattr(task, "attrs") else "", **opts)
    bar_on = sys.stderr.isatty() if progress is None else bool(progress)
    records, epochs_done = [], []
    with tqdm(total=config.epochs, disable=not bar_on, unit="epoch", desc=f"conv {activation} x{repeats}") as bar:
        for snap in iter_conv_training(task, config, channels, kernel, setup=setup):
            rec = measure_snapshot(names, snap, setup.p_x, setup.p_y_given_x, opts)
            with np.errstate(divide="ignore", invalid="ignore"):
                rec.update(grad_mean_norm=snap.grad_mean_norm, grad_std_norm=snap.grad_std_norm,
                           weight_norm=snap.weight_norm, grad_snr=snap.grad_mean_norm / snap.grad_std_norm,
                           train_loss=snap.train_loss, test_loss=snap.test_loss,
                           train_accuracy=snap.train_accuracy, test_accuracy=snap.test_accuracy)
            records.append(rec)
            bar.update(snap.epoch - (epochs_done[-1] if epochs_done else 0))
            epochs_done.append(snap.epoch)
    widths = setup.model.widths
    n_blocks = len(tuple(channels))
    kinds = ["conv"] * n_blocks + ["dense"] * (len(widths) - n_blocks - 1) + ["softmax"]
    ds = xr.Dataset(coords={"epoch": np.asarray(epochs_done, dtype=np.int64), "layer": np.arange(1, len(widths) + 1),
                            "repeat": np.arange(config.repeats), "x": task["x"].values, "y": task["y"].values})
    for name in records[0]:
        ds[name] = RUN_SCHEMA.entry(name, np.stack([r[name] for r in records]))
    ds["width"] = RUN_SCHEMA.entry("width", np.asarray(widths))
    ds["layer_kind"] = RUN_SCHEMA.entry("layer_kind", np.asarray(kinds))
    ds["p_xy"] = RUN_SCHEMA.entry("p_xy", task["p_xy"].values)
    ds["train_mask"] = RUN_SCHEMA.entry("train_mask", setup.train_mask.astype(np.int8))
    ds["labels"] = RUN_SCHEMA.entry("labels", setup.labels.astype(np.int8))
    ds = store.with_provenance(ds, full, seed)
    ds.attrs.update(model="conv", task=full["task"], activation=activation, estimators=",".join(names),
                    complete=1, task_I_XY=float(task.attrs.get("I_XY", np.nan)))
    return ds
