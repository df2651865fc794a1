"""A small network's training loss as a Langevin potential, and SGD vs Langevin on it ("does the diffusion
compress?").

The state is the flat parameter vector w of a fully connected network (the layout of
``ibtheory.nets.BatchedMLP.flat_parameters``: all weight matrices (fan_in, fan_out) row-major, layer by layer, then
all biases), one network per particle.  The potential is the full-batch expected cross-entropy on the training
patterns plus an optional weight decay (which makes exp(-beta L) normalisable):

    L(w) = (1 / |S|) sum_{x in S} sum_y p(y|x) (-ln q_w(y|x)) + (lambda / 2) |w|^2      [nats per sample],

with q_w the network's softmax output.  Gradients by torch autograd (float64), for all particles at once.

:func:`compare_sgd_langevin` trains networks with plain minibatch SGD (learning rate eta, batch B, with
replacement) through the drift phase, measures the minibatch gradient covariance C_B there, and continues from the
same weights both with SGD and with Langevin at SGD's temperature 1 / beta = eta tr(C_B) / (2 d) (time = steps x
eta for both), recording the loss and every layer's binned I(X;T), I(T;Y) (``ibtheory.estimators``, bits).

References
----------
1. R. Shwartz-Ziv and N. Tishby, "Opening the black box of deep neural networks via information", 2017, sec. 2.4.
2. S. Mandt, M. D. Hoffman, D. M. Blei, "Stochastic gradient descent as approximate Bayesian inference", JMLR 2017.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence

import numpy as np
import torch
import xarray as xr
from scipy.stats import wasserstein_distance

from .. import store
from .._validate import flag, real, show
from ..estimators import binned_information
from ..nets.data import input_features, repeat_generators
from ..nets.loop import TrainConfig
from ..nets.model import init_weights
from ..tasks import conditional
from .langevin import langevin_steps
from .potentials import Potential, as_points
from .sgd_noise import sgd_temperature

__all__ = ["NetworkLoss", "compare_sgd_langevin", "sgd_noise_along_training", "torch_threads"]

_ACT = {"tanh": torch.tanh, "relu": torch.relu, "sigmoid": torch.sigmoid, "linear": lambda z: z}


class NetworkLoss(Potential):
    """Full-batch loss of an MLP on a task's training patterns, as a potential of the flat weights.

    Parameters
    ----------
    task : Dataset with ``p_xy(x, y)`` and input features (``patterns`` for the paper's task)
    hidden : hidden widths, e.g. (10, 7, 5, 4, 3)
    activation : "tanh", "relu", "sigmoid" or "linear" (hidden layers; output softmax)
    train : boolean mask or indices of training patterns (default: all)
    weight_decay : lambda >= 0
    """

    name = "network-loss"

    def __init__(self, task: xr.Dataset, hidden: Sequence[int] = TrainConfig.hidden,
                 activation: str = TrainConfig.activation,
                 train: np.ndarray | None = None, weight_decay: float = 0.0):
        if activation not in _ACT:
            raise ValueError(f"activation must be one of {sorted(_ACT)}, got {show(activation)}")
        if not (np.isfinite(weight_decay) and weight_decay >= 0):
            raise ValueError(f"weight_decay must be >= 0, got {show(weight_decay)}")
        if any(int(h) != h or h < 1 for h in hidden):
            raise ValueError(f"hidden widths must be positive integers, got {show(hidden)}")
        self.p_x, self.p_y_given_x = conditional(task["p_xy"].values)
        feats = input_features(task)
        n_x = feats.shape[0]
        idx = np.arange(n_x) if train is None else np.asarray(train)
        if idx.dtype == bool:
            idx = np.flatnonzero(idx)
        if idx.size == 0 or idx.min() < 0 or idx.max() >= n_x:
            raise ValueError("train must select at least one valid pattern")
        self.features = torch.as_tensor(feats, dtype=torch.float64)
        self.train_idx = torch.as_tensor(idx)
        self.targets = torch.as_tensor(self.p_y_given_x, dtype=torch.float64)
        self.widths = (feats.shape[1], *[int(h) for h in hidden], self.p_y_given_x.shape[1])
        self.activation, self.weight_decay = activation, float(weight_decay)
        self._phi = _ACT[activation]
        self.shapes = list(zip(self.widths[:-1], self.widths[1:], strict=True))
        self.dim = sum(a * b for a, b in self.shapes) + sum(b for _, b in self.shapes)

    def config(self) -> dict:
        return {"name": self.name, "dim": self.dim, "widths": list(self.widths), "activation": self.activation,
                "n_train": int(self.train_idx.numel()), "weight_decay": self.weight_decay}

    def unflatten(self, w: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """(R, dim) -> [(W (R, fan_in, fan_out), b (R, fan_out)) per layer] (BatchedMLP's layout)."""
        r = w.shape[0]
        mats, start = [], 0
        for a, b in self.shapes:
            mats.append(w[:, start:start + a * b].reshape(r, a, b))
            start += a * b
        biases = []
        for _, b in self.shapes:
            biases.append(w[:, start:start + b])
            start += b
        return list(zip(mats, biases, strict=True))

    def parameter_layers(self) -> np.ndarray:
        """Layer (1-based) of every flat parameter, (dim,) ints: weight matrices first, then biases."""
        sizes = [a * b for a, b in self.shapes] + [b for _, b in self.shapes]
        n = len(self.shapes)
        return np.repeat(np.concatenate([np.arange(1, n + 1)] * 2), sizes)

    def layers(self, w: torch.Tensor, rows: torch.Tensor | None = None) -> list[torch.Tensor]:
        """Activations (R, n, width) of every hidden layer and the softmax output for patterns ``rows``."""
        x = self.features if rows is None else self.features[rows]
        if rows is not None and rows.ndim == 2:  # per-network minibatches (R, B)
            h = x
        else:
            h = x.expand(w.shape[0], *x.shape)
        out = []
        params = self.unflatten(w)
        for i, (m, b) in enumerate(params):
            z = torch.baddbmm(b[:, None, :], h, m)
            h = torch.softmax(z, dim=-1) if i == len(params) - 1 else self._phi(z)
            out.append(h)
        return out

    def loss_torch(self, w: torch.Tensor, rows: torch.Tensor | None = None) -> torch.Tensor:
        """Per-network loss (R,) on ``rows`` (default: the training set; (R, B) for per-network minibatches)."""
        rows = self.train_idx if rows is None else rows
        x = self.features[rows]
        h = x if rows.ndim == 2 else x.expand(w.shape[0], *x.shape)
        params = self.unflatten(w)
        for i, (m, b) in enumerate(params):
            h = torch.baddbmm(b[:, None, :], h, m)
            if i < len(params) - 1:
                h = self._phi(h)
        logq = torch.log_softmax(h, dim=-1)
        ce = -(self.targets[rows] * logq).sum(-1).mean(-1)
        if self.weight_decay:
            ce = ce + 0.5 * self.weight_decay * (w * w).sum(-1)
        return ce

    def value(self, x: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return self.loss_torch(torch.as_tensor(as_points(x, self.dim))).numpy()

    def grad(self, x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        w = torch.tensor(as_points(x, self.dim), requires_grad=True)
        (g,) = torch.autograd.grad(self.loss_torch(w).sum(), w)
        if out is None:
            return g.numpy()
        out[...] = g.numpy()
        return out

    def initial(self, n: int, seed: int = 0) -> np.ndarray:
        """``n`` initial weight vectors (n, dim): truncated-normal weights std 1/sqrt(fan_in), zero biases
        (``ibtheory.nets.model.init_weights``, one generator per network)."""
        mats = init_weights(self.widths, repeat_generators(seed, np.arange(n)))
        parts = [m.reshape(n, -1) for m in mats] + [np.zeros((n, b)) for _, b in self.shapes]
        return np.concatenate(parts, axis=1)

    def per_sample_gradients(self, w: np.ndarray) -> np.ndarray:
        """Per-sample gradients (R, n_train, dim) of the training loss (weight decay excluded).

        One batched backward pass: network r is replicated once per training sample, each copy sees one sample.
        """
        wt = torch.as_tensor(as_points(w, self.dim))
        r, n = wt.shape[0], self.train_idx.numel()
        rep = wt.repeat_interleave(n, dim=0).requires_grad_(True)  # (R n, dim)
        rows = self.train_idx.repeat(r)[:, None]  # (R n, 1): one sample per copy
        decay, self.weight_decay = self.weight_decay, 0.0
        try:
            (g,) = torch.autograd.grad(self.loss_torch(rep, rows).sum(), rep)
        finally:
            self.weight_decay = decay
        return g.reshape(r, n, self.dim).numpy()

    def information(self, w: np.ndarray, n_bins: int = 30, limits=(-1.0, 1.0)) -> tuple[np.ndarray, np.ndarray]:
        """Binned I(X;T) and I(T;Y) (bits) of every layer over all patterns: two arrays (n_layers, R)."""
        with torch.no_grad():
            acts = self.layers(torch.as_tensor(as_points(w, self.dim)))
        ixt, ity = [], []
        for a in acts:
            res = binned_information(a.numpy(), self.p_x, self.p_y_given_x, n_bins=n_bins, limits=limits)
            ixt.append(res.I_XT)
            ity.append(res.I_TY)
        return np.array(ixt), np.array(ity)


def _sgd(loss: NetworkLoss, w: np.ndarray, lr: float, batch: int, steps: int, gen: torch.Generator):
    """Plain minibatch SGD (batches with replacement, one per network); yields (step, w) after each step."""
    wt = torch.tensor(w)
    n_train = loss.train_idx.numel()
    for k in range(1, steps + 1):
        pick = torch.randint(0, n_train, (wt.shape[0], batch), generator=gen)
        wt.requires_grad_(True)
        (g,) = torch.autograd.grad(loss.loss_torch(wt, loss.train_idx[pick]).sum(), wt)
        wt = (wt - lr * g).detach()
        if not torch.isfinite(wt).all():
            raise ValueError(f"SGD diverged at step {k}; lower lr")
        yield k, wt.numpy()


def sgd_noise_along_training(loss: NetworkLoss, w0: np.ndarray, lr: float, batch_size: int, n_steps: int,
                             n_records: int = 12, seed: int = 0, threads: int | None = 1,
                             keep_covariance: bool = False) -> xr.Dataset:
    """Minibatch gradient noise of SGD along training on ``loss`` (one network per row of ``w0``).

    At about ``n_records`` log-spaced steps: the per-sample gradient covariance C(w) (from all training samples),
    ``trace_c_batch`` = tr C / B, ``grad_norm2`` = |grad L|^2, the signal-to-noise ratio ``snr`` =
    |grad L|^2 / tr C_B (drift >> diffusion when > 1, the paper's two phases), the largest eigenvalue share
    ``top_eig_fraction`` = lambda_max(C) / tr C (anisotropy), the implied temperature ``temperature`` =
    lr tr C_B / (2 d) and the ``loss``; Dataset over (time, repeat), time = steps x lr.

    ``keep_covariance=True`` also keeps the whole minibatch gradient covariance C_B = C / B,
    ``c_batch(time, repeat, dim, dim_)`` ((nats per sample)^2 per weight^2; d^2 numbers per record and network:
    0.7 MB for the paper's network, d = 294), with the coordinates ``parameter_layer(dim)`` and
    ``parameter_layer_(dim_)`` (``NetworkLoss.parameter_layers``) to select a layer's block, e.g.
    ``ds.c_batch.where((ds.parameter_layer == 2) & (ds.parameter_layer_ == 2), drop=True)``.
    Its trace is ``trace_c_batch``.
    """
    if int(batch_size) != batch_size or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {show(batch_size)}")
    keep_covariance = flag(keep_covariance, "keep_covariance")
    rec = np.concatenate([[0], np.unique(np.round(np.geomspace(1, n_steps, n_records)).astype(int))])
    wanted = {int(k): j for j, k in enumerate(rec)}
    r = as_points(w0, loss.dim).shape[0]
    out = {k: np.empty((len(rec), r)) for k in ("trace_c_batch", "grad_norm2", "snr", "top_eig_fraction",
                                                 "temperature", "loss")}
    cov = np.empty((len(rec), r, loss.dim, loss.dim)) if keep_covariance else None

    def record(j, w):
        per = loss.per_sample_gradients(w)
        mean = per.mean(axis=1)
        z = per - mean[:, None, :]
        # eigenvalues of C = Z^T Z / n via the smaller Gram matrix's singular values
        sv = np.linalg.svd(z, compute_uv=False) ** 2 / per.shape[1]
        tr_c = sv.sum(axis=1)
        out["trace_c_batch"][j] = tr_c / batch_size
        out["grad_norm2"][j] = (mean * mean).sum(axis=1)
        out["snr"][j] = out["grad_norm2"][j] / out["trace_c_batch"][j]
        out["top_eig_fraction"][j] = sv[:, 0] / tr_c
        out["temperature"][j] = lr * out["trace_c_batch"][j] / (2 * loss.dim)
        out["loss"][j] = loss.value(w)
        if cov is not None:
            cov[j] = np.einsum("rnd,rne->rde", z, z) / (per.shape[1] * batch_size)

    with torch_threads(threads):
        start = as_points(w0, loss.dim).copy()
        record(0, start)
        gen = torch.Generator().manual_seed(seed)
        for k, wk in _sgd(loss, start, lr, batch_size, n_steps, gen):
            if k in wanted:
                record(wanted[k], wk)
    ds = xr.Dataset({k: (("time", "repeat"), v) for k, v in out.items()}, coords={"time": rec * lr})
    ds["temperature"].attrs["units"] = "energy (nats per sample)"
    if cov is not None:
        layer_of = loss.parameter_layers()
        ds["c_batch"] = (("time", "repeat", "dim", "dim_"), cov,
                         {"long_name": "minibatch gradient covariance C / B",
                          "units": "(nats per sample)^2 per weight^2"})
        ds = ds.assign_coords(parameter_layer=("dim", layer_of), parameter_layer_=("dim_", layer_of))
    return store.with_provenance(ds, {"lr": lr, "batch_size": int(batch_size), "n_steps": int(n_steps),
                                      "keep_covariance": bool(keep_covariance), "network": loss.config()}, seed)


@contextlib.contextmanager
def torch_threads(n: int | None):
    """Temporarily set torch's intra-op threads (these small networks run fastest on one thread; several threads
    on a busy machine can be 10x slower).  ``None`` leaves the setting alone."""
    old = torch.get_num_threads()
    if n is not None:
        torch.set_num_threads(int(n))
    try:
        yield
    finally:
        torch.set_num_threads(old)


def compare_sgd_langevin(task: xr.Dataset, hidden: Sequence[int] = TrainConfig.hidden,
                         activation: str = TrainConfig.activation,
                         lr: float = 0.05, batch_size: int = 32, warmup_steps: int = 2000, n_steps: int = 4000,
                         repeats: int = 4, n_records: int = 20, n_bins: int = 30, weight_decay: float = 0.0,
                         train_fraction: float = TrainConfig.train_fraction, seed: int = 0, threads: int | None = 1,
                         control_gd: bool = True, beta: float | None = None) -> xr.Dataset:
    """SGD vs Langevin from the same weights, after ``warmup_steps`` of SGD (the drift phase).

    Returns a Dataset over ``time`` (steps x lr after the switch), ``layer`` and ``repeat`` with ``loss_sgd``,
    ``loss_langevin`` (nats/sample), ``I_XT_sgd``, ``I_XT_langevin``, ``I_TY_sgd``, ``I_TY_langevin`` (bits),
    ``drift_sgd``/``drift_langevin`` (|w - w_switch|), ``weight_norm_*(time, layer, repeat)`` (Frobenius norms of
    the weight matrices: growing weights saturate tanh units), the final weights ``w_final_*(repeat, dim)``, and
    attrs ``beta`` (Langevin inverse temperature implied by SGD's gradient covariance at the switch),
    ``trace_c_batch``.  ``threads``: torch threads during the run.
    ``control_gd`` adds the noise-free control, full-batch gradient descent (``*_gd`` variables): compression that
    GD shows too comes from the drift, not from the diffusion.
    ``beta`` overrides the Langevin inverse temperature (default None: the one implied by SGD; beta -> infinity
    turns Langevin into the GD control, which the tests use).

    Weight distributions (weight matrices only, biases excluded; each layer's entries pooled over the repeats):
    ``weight_mean_<kind>(time, layer)``, ``weight_std_<kind>(time, layer)`` and the 1-D Wasserstein-1 distances
    between two dynamics' pooled weight values, ``weight_w1_sgd_langevin(time, layer)`` (and, with the control,
    ``weight_w1_sgd_gd``, ``weight_w1_langevin_gd``), all in weight units (dimensionless: the inputs are 0/1 bits).
    W1 = int |F_a(w) - F_b(w)| dw >= |mean_a - mean_b|; it is 0 at time 0 (same start).
    """
    if beta is not None:
        beta = real(beta, "beta", 0.0, low_open=True)
    with torch_threads(threads):
        return _compare(task, hidden, activation, lr, batch_size, warmup_steps, n_steps, repeats, n_records, n_bins,
                        weight_decay, train_fraction, seed, control_gd, beta)


def _weight_distributions(loss: NetworkLoss, snaps: dict[str, np.ndarray]) -> dict:
    """Per-layer pooled weight statistics of snapshots {kind: (time, repeat, dim)}: mean, std, pairwise W1."""
    layer_of = loss.parameter_layers()
    n_w = sum(a * b for a, b in loss.shapes)
    is_w = np.arange(loss.dim) < n_w  # weight matrices come first in the flat layout
    n_layers = len(loss.shapes)
    pooled = {k: [[v[j][:, is_w & (layer_of == m)].ravel() for m in range(1, n_layers + 1)] for j in range(len(v))]
              for k, v in snaps.items()}
    attrs = {"units": "1 (weight value)"}
    data = {}
    for k, p in pooled.items():
        data[f"weight_mean_{k}"] = (("time", "layer"), np.array([[q.mean() for q in row] for row in p]),
                                    {**attrs, "long_name": f"mean of the layer's weights ({k}, pooled over repeats)"})
        data[f"weight_std_{k}"] = (("time", "layer"), np.array([[q.std() for q in row] for row in p]),
                                   {**attrs, "long_name": f"std of the layer's weights ({k}, pooled over repeats)"})
    kinds = list(snaps)
    for i, a in enumerate(kinds):
        for b in kinds[i + 1:]:
            w1 = np.array([[wasserstein_distance(qa, qb) for qa, qb in zip(ra, rb, strict=True)]
                           for ra, rb in zip(pooled[a], pooled[b], strict=True)])
            data[f"weight_w1_{a}_{b}"] = (("time", "layer"), w1,
                                          {**attrs, "long_name": f"W1 between {a} and {b} pooled weights"})
    return data


def _compare(task, hidden, activation, lr, batch_size, warmup_steps, n_steps, repeats, n_records, n_bins,
             weight_decay, train_fraction, seed, control_gd, beta_override=None) -> xr.Dataset:
    rng = np.random.default_rng(seed)
    n_x = task.sizes["x"]
    train = rng.permutation(n_x)[: int(round(train_fraction * n_x))]
    loss = NetworkLoss(task, hidden, activation, train=train, weight_decay=weight_decay)
    gen = torch.Generator().manual_seed(seed)
    w_switch = loss.initial(repeats, seed)
    for _, wk in _sgd(loss, w_switch, lr, batch_size, warmup_steps, gen):
        w_switch = wk
    w_switch = w_switch.copy()
    per = loss.per_sample_gradients(w_switch)  # (R, n, d)
    z = per - per.mean(axis=1, keepdims=True)
    tr_c = float(np.einsum("rnd,rnd->r", z, z).mean() / per.shape[1])  # mean over networks of tr C
    temp = sgd_temperature(lr, np.eye(loss.dim) * tr_c / loss.dim / batch_size)
    beta = 1.0 / temp if beta_override is None else float(beta_override)
    rec = np.unique(np.round(np.geomspace(1, n_steps, n_records)).astype(int))
    rec = np.concatenate([[0], rec])
    n_layers = len(loss.widths) - 1
    kinds = ("sgd", "langevin", "gd") if control_gd else ("sgd", "langevin")
    out = {f"{v}_{k}": np.empty((len(rec), n_layers, repeats)) for v in ("I_XT", "I_TY") for k in kinds}
    scal = {f"{v}_{k}": np.empty((len(rec), repeats)) for v in ("loss", "drift") for k in kinds}
    norms = {f"weight_norm_{k}": np.empty((len(rec), n_layers, repeats)) for k in kinds}
    snaps = {k: np.empty((len(rec), repeats, loss.dim)) for k in kinds}
    final = {}

    def record(j, kind, wk):
        ixt, ity = loss.information(wk, n_bins)
        out[f"I_XT_{kind}"][j], out[f"I_TY_{kind}"][j] = ixt, ity
        scal[f"loss_{kind}"][j] = loss.value(wk)
        scal[f"drift_{kind}"][j] = np.linalg.norm(wk - w_switch, axis=1)
        mats = loss.unflatten(torch.as_tensor(wk))
        norms[f"weight_norm_{kind}"][j] = [torch.linalg.matrix_norm(m).numpy() for m, _ in mats]
        snaps[kind][j] = wk
        final[f"w_final_{kind}"] = wk.copy()

    wanted = {int(s): j for j, s in enumerate(rec)}
    record(0, "sgd", w_switch)
    for k, wk in _sgd(loss, w_switch, lr, batch_size, n_steps, gen):
        if k in wanted:
            record(wanted[k], "sgd", wk)
    for state in langevin_steps(loss, w_switch, beta, lr, n_steps, scheme="euler", seed=seed + 1):
        if state.step in wanted:
            record(wanted[state.step], "langevin", state.x)
    if control_gd:
        wk = w_switch.copy()
        record(0, "gd", wk)
        for k in range(1, n_steps + 1):
            wk -= lr * loss.grad(wk)
            if k in wanted:
                record(wanted[k], "gd", wk)
    data = {k: (("time", "layer", "repeat"), v, {"units": "bits"}) for k, v in out.items()}
    data.update({k: (("time", "repeat"), v) for k, v in scal.items()})
    data.update({k: (("time", "layer", "repeat"), v, {"long_name": "Frobenius norm of the layer's weights"})
                 for k, v in norms.items()})
    data.update({k: (("repeat", "dim"), v) for k, v in final.items()})
    data.update(_weight_distributions(loss, snaps))
    ds = xr.Dataset(data, coords={"time": rec * lr, "layer": np.arange(1, n_layers + 1)})
    ds["w_switch"] = (("repeat", "dim"), w_switch)
    ds.attrs.update({"beta": beta, "trace_c_batch": tr_c / batch_size, "lr": lr, "batch_size": batch_size})
    cfg = {"hidden": list(hidden), "activation": activation, "lr": lr, "batch_size": batch_size,
           "warmup_steps": warmup_steps, "n_steps": n_steps, "repeats": repeats, "n_bins": n_bins,
           "weight_decay": weight_decay, "train_fraction": train_fraction, "beta": beta_override}
    return store.with_provenance(ds, cfg, seed)
