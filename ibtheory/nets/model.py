"""An ensemble of R fully connected networks held as one set of batched tensors in one flat buffer.

Layer l of repetition r computes h_l = phi(h_{l-1} W_l[r] + b_l[r]) with W_l of shape (R, fan_in, fan_out) and
b_l of shape (R, fan_out).  Activations are held feature-major, shape (R, width, B): a forward pass is one
``torch.baddbmm(b, W^T, h)`` per layer for all R networks, which for these narrow layers runs about four times
faster on CPU than the sample-major (R, B, width) product.  The output layer is linear (logits); its softmax
probabilities are the last "layer" whose information the estimators measure, as in Shwartz-Ziv & Tishby (2017).

All parameters of the ensemble live in ONE flat buffer (:class:`FlatEnsemble`), layer-major: W_1, ..., W_L, then
b_1, ..., b_L, each block (R, ...) contiguous; ``weights`` and ``biases`` are views of it, and the gradients are
written into views of one flat gradient buffer.  The optimiser then updates one tensor (one fused Adam kernel per
step instead of one per parameter), the finiteness check is one sum, and gradient statistics are one operation on
the weights' prefix of the buffer.

Quantized activations (Lorenzen et al. 2022), ``quantize_bits=k``: every hidden activation a = phi(z) is replaced
in the forward pass by the nearest of 2^k uniform levels on the range [lo, hi] of the bounded nonlinearity
(:data:`QUANTIZE_RANGES`: tanh and hardtanh [-1, 1], sigmoid [0, 1]),

    q(a) = lo + (hi - lo) round((a - lo) / (hi - lo) (2^k - 1)) / (2^k - 1)      (round half to even),

so each layer is a discrete function of the input and I(X;T) over the patterns is exact; the backward pass uses the
straight-through estimator, d q(a) / d a := 1 (the gradient of the unquantized activation).

Initialisation (the authors' setup): weights from a normal distribution with std 1/sqrt(fan_in) truncated at two
standard deviations (TensorFlow's ``truncated_normal``), zero biases.  Each repetition draws its weights from its
own ``numpy.random.Generator``, so repetition r is identical whether it trains alone or inside an ensemble.

References
----------
1. R. Shwartz-Ziv and N. Tishby, "Opening the black box of deep neural networks via information", arXiv:1703.00810.
2. S. S. Lorenzen, C. Igel and M. Nielsen, "Information Bottleneck: Exact Analysis of (Quantized) Neural
   Networks", ICLR 2022.
3. Y. Bengio, N. Leonard and A. Courville, "Estimating or propagating gradients through stochastic neurons for
   conditional computation", arXiv:1308.3432 (the straight-through estimator).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch
from scipy.stats import truncnorm

from .._validate import integer, show

__all__ = ["ACTIVATIONS", "DERIVATIVES", "QUANTIZE_RANGES", "BatchedMLP", "FlatEnsemble", "init_weights",
           "check_quantize", "quantize"]


#: Hidden-layer nonlinearities by name (out of place, differentiable by autograd).
ACTIVATIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "tanh": torch.tanh,
    "relu": torch.relu,
    "sigmoid": torch.sigmoid,
    "linear": lambda z: z,
    "hardtanh": torch.nn.functional.hardtanh,
}

#: The same nonlinearities applied in place (the hand-written training step overwrites the pre-activations).
_IN_PLACE: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "tanh": lambda z: torch.tanh(z, out=z),
    "relu": torch.relu_,
    "sigmoid": torch.sigmoid_,
    "linear": lambda z: z,
    "hardtanh": torch.nn.functional.hardtanh_,
}

_aten = torch.ops.aten

#: d phi / dz times an upstream gradient g, written in terms of the output h = phi(z) (what the forward pass
#: keeps); the result overwrites g.
DERIVATIVES: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
    "tanh": lambda g, h: _aten.tanh_backward.grad_input(g, h, grad_input=g),  # g (1 - h^2)
    "relu": lambda g, h: g.mul_(h > 0),
    "sigmoid": lambda g, h: _aten.sigmoid_backward.grad_input(g, h, grad_input=g),  # g h (1 - h)
    "linear": lambda g, h: g,
    "hardtanh": lambda g, h: g.mul_(h.abs() < 1),
}


#: The range [lo, hi] of each bounded nonlinearity: the interval that ``quantize_bits`` divides into 2^k levels.
QUANTIZE_RANGES: dict[str, tuple[float, float]] = {"tanh": (-1.0, 1.0), "hardtanh": (-1.0, 1.0), "sigmoid": (0.0, 1.0)}


def check_quantize(bits, activation: str) -> int | None:
    """``quantize_bits`` checked: None (off) or an integer k in 2..16 for an activation with a bounded range
    (:data:`QUANTIZE_RANGES`); ``ValueError`` naming quantize_bits otherwise (relu and linear are unbounded)."""
    if bits is None:
        return None
    k = integer(bits, "quantize_bits", 2, 16)
    if activation not in QUANTIZE_RANGES:
        raise ValueError(f"quantize_bits needs a bounded activation ({', '.join(QUANTIZE_RANGES)}): activation "
                         f"{activation!r} has an unbounded range, got quantize_bits={k}")
    return k


def quantize(a: torch.Tensor, activation: str, bits: int) -> torch.Tensor:
    """q(a) = lo + (hi - lo) round((a - lo) / (hi - lo) (2^k - 1)) / (2^k - 1), out of place, [lo, hi] the range of
    ``activation`` (:data:`QUANTIZE_RANGES`), k = ``bits``: at most 2^k distinct values (round half to even)."""
    lo, hi = QUANTIZE_RANGES[activation]
    n = float(2**bits - 1)
    return (a - lo).div_(hi - lo).mul_(n).round_().mul_(hi - lo).div_(n).add_(lo)


class _StraightThrough(torch.autograd.Function):
    """Forward q(a) (:func:`quantize`), backward the identity: the straight-through estimator."""

    @staticmethod
    def forward(ctx, a: torch.Tensor, activation: str, bits: int) -> torch.Tensor:
        return quantize(a, activation, bits)

    @staticmethod
    def backward(ctx, g: torch.Tensor):
        return g, None, None


def init_weights(widths: Sequence[int], rngs: Sequence[np.random.Generator]) -> list[np.ndarray]:
    """Truncated-normal weights, one (R, fan_in, fan_out) float64 array per layer, from one generator per repeat.

    W[r] ~ N(0, 1/fan_in) truncated to |w| <= 2/sqrt(fan_in).  Repeat r's draws depend only on ``rngs[r]``.
    """
    out = []
    for fan_in, fan_out in zip(widths[:-1], widths[1:], strict=True):
        std = 1.0 / np.sqrt(fan_in)
        draws = [truncnorm.rvs(-2.0, 2.0, size=(fan_in, fan_out), random_state=g) for g in rngs]  # setup only
        out.append(np.stack(draws) * std)
    return out


class FlatEnsemble(torch.nn.Module):
    """Base of the batched models: the parameters of R networks in one flat buffer, with per-tensor views.

    ``flat`` (n,) holds the weights (each block (R, ...)) and then the biases, layer by layer; ``weights`` and
    ``biases`` are ``torch.nn.Parameter`` views of it (autograd works on them as on any parameter), ``flat_grad``
    is the gradient buffer of the same layout, and ``n_weight_values`` the length of the weights' prefix.
    Subclasses set ``activation`` and ``_phi`` (the hidden nonlinearity) and may set ``quantize_bits``
    (:func:`check_quantize`; None: off); :meth:`activate` applies both.
    """

    quantize_bits: int | None = None

    def activate(self, z: torch.Tensor) -> torch.Tensor:
        """Hidden activation phi(z), quantized to 2^k levels when ``quantize_bits`` = k is set, with the
        straight-through gradient under autograd (see the module docstring)."""
        h = self._phi(z)
        if self.quantize_bits is None:
            return h
        return _StraightThrough.apply(h, self.activation, self.quantize_bits)

    def _allocate(self, weights: Sequence[torch.Tensor], biases: Sequence[torch.Tensor], dtype: torch.dtype,
                  device: str | torch.device) -> None:
        tensors = list(weights) + list(biases)
        n = sum(t.numel() for t in tensors)
        flat = torch.empty(n, dtype=dtype, device=device)
        grad = torch.zeros(n, dtype=dtype, device=device)
        views, grads, start = [], [], 0
        for t in tensors:
            v = flat[start:start + t.numel()].view(t.shape)
            v.copy_(torch.as_tensor(t, dtype=dtype, device=device))
            views.append(v)
            grads.append(grad[start:start + t.numel()].view(t.shape))
            start += t.numel()
        k = len(weights)
        object.__setattr__(self, "flat", flat)  # plain attributes: not registered as parameters
        object.__setattr__(self, "flat_grad", grad)
        self.weights = torch.nn.ParameterList([torch.nn.Parameter(v) for v in views[:k]])
        self.biases = torch.nn.ParameterList([torch.nn.Parameter(v) for v in views[k:]])
        self._grad_views = grads
        self.n_weight_values = sum(t.numel() for t in weights)

    @property
    def repeats(self) -> int:
        return self.weights[0].shape[0]

    def rows(self, flat: torch.Tensor) -> torch.Tensor:
        """A buffer laid out like ``flat`` as one row per repeat, (R, n_params): weights then biases, by layer."""
        r, start, parts = self.repeats, 0, []
        for p in list(self.weights) + list(self.biases):
            parts.append(flat[start:start + p.numel()].reshape(r, -1))
            start += p.numel()
        return torch.cat(parts, dim=1)

    def from_rows(self, rows: torch.Tensor) -> torch.Tensor:
        """Inverse of :meth:`rows`: (R, n_params) rows to a flat buffer."""
        parts, start = [], 0
        for p in list(self.weights) + list(self.biases):
            k = p[0].numel()
            parts.append(rows[:, start:start + k].reshape(-1))
            start += k
        return torch.cat(parts)

    def flat_parameters(self) -> torch.Tensor:
        """All parameters of each repeat as one row, shape (R, n_params): weights then biases, layer by layer."""
        return self.rows(self.flat.detach())

    def load_flat(self, flat: torch.Tensor) -> None:
        """Set all parameters from rows laid out as :meth:`flat_parameters`."""
        with torch.no_grad():
            self.flat.copy_(self.from_rows(flat.to(self.flat)))

    def weight_views(self, g: torch.Tensor) -> list[torch.Tensor]:
        """Per weight tensor and repeat, the views (R, k_l) of a buffer laid out like the weights' prefix."""
        out, start, r = [], 0, self.repeats
        for w in self.weights:
            out.append(g[start:start + w.numel()].view(r, -1))
            start += w.numel()
        return out

    def autograd_step(self, x: torch.Tensor, y: torch.Tensor) -> None:
        """Gradient of the summed per-repeat mean cross-entropy by autograd, written into ``flat_grad``."""
        params = list(self.weights) + list(self.biases)
        for p in params:
            p.grad = None
        with torch.enable_grad():
            logits = self(x)[-1]  # (R, n_y, B)
            loss = torch.nn.functional.cross_entropy(logits, y, reduction="sum") / y.shape[-1]
            loss.backward()
        with torch.no_grad():
            for g, p in zip(self._grad_views, params, strict=True):
                g.copy_(p.grad)
                p.grad = None


class BatchedMLP(FlatEnsemble):
    """R multilayer perceptrons of the same architecture trained at once.

    Parameters
    ----------
    widths : sequence of int
        Layer widths including input and output, e.g. (12, 10, 7, 5, 4, 3, 2).
    activation : str
        One of :data:`ACTIVATIONS` (hidden layers; the output layer is linear + softmax).
    weights : list of arrays (R, fan_in, fan_out)
        Initial weights, e.g. from :func:`init_weights`; biases start at zero.
    dtype, device : torch dtype and device of the parameters.
    quantize_bits : None, or k in 2..16: hidden activations quantized to 2^k levels (straight-through gradient;
        tanh, hardtanh and sigmoid only).
    """

    def __init__(
        self,
        widths: Sequence[int],
        activation: str,
        weights: Sequence[np.ndarray],
        dtype: torch.dtype = torch.float32,
        device: str | torch.device = "cpu",
        quantize_bits: int | None = None,
    ) -> None:
        super().__init__()
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, got {show(activation)}")
        self.widths = tuple(int(w) for w in widths)
        self.activation = activation
        self._phi = ACTIVATIONS[activation]
        self.quantize_bits = check_quantize(quantize_bits, activation)
        repeats = weights[0].shape[0]
        self._allocate([torch.as_tensor(np.asarray(w)) for w in weights],
                       [torch.zeros(repeats, w) for w in self.widths[1:]], dtype, device)
        self._neg = None

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Activations of every layer, feature-major (R, width, B), for inputs x of shape (R, n_in, B).

        Returns the hidden layers, then the output logits.
        """
        out = []
        h = x
        last = len(self.weights) - 1
        for i, (w, b) in enumerate(zip(self.weights, self.biases, strict=True)):
            z = torch.baddbmm(b[:, :, None], w.transpose(1, 2), h)
            h = z if i == last else self.activate(z)
            out.append(h)
        return out

    @torch.no_grad()
    def _backprop(self, x: torch.Tensor, y: torch.Tensor, loss: bool) -> torch.Tensor | None:
        """Gradients of the sum over repeats of each repeat's mean cross-entropy (nats) into ``flat_grad``.

        x (R, n_in, B) feature-major inputs (a transposed view of sample-major (R, B, n_in) inputs works as well),
        y (R, B) labels.  Hand-written backpropagation (the same numbers as autograd to float rounding, and less
        CPU for these small layers): with the softmax output p, delta_L = (p - onehot(y)) / B and, layer by layer,
        dW_l = h_{l-1} delta_l^T, db_l = sum_b delta_l, delta_{l-1} = phi'(h_{l-1}) * (W_l delta_l); every
        activation is computed in place and every gradient is written straight into its view of ``flat_grad``.
        With ``loss`` False the loss is not computed (the training loop does not need it) and None is returned.
        With ``quantize_bits`` the layers pass q(h) on (and dW_l = q(h_{l-1}) delta_l^T), while phi' is taken at
        the unquantized h: the straight-through estimator.
        """
        n = x.shape[-1]
        last = len(self.weights) - 1
        phi_ = _IN_PLACE[self.activation]
        bits = self.quantize_bits
        hs = [x]  # the layers' outputs as the next layer sees them
        us = hs if bits is None else [x]  # the unquantized activations phi' is computed from
        h = x
        for i, (w, b) in enumerate(zip(self.weights, self.biases, strict=True)):
            h = torch.baddbmm(b[:, :, None], w.transpose(1, 2), h)
            if i < last:
                phi_(h)
                if bits is not None:
                    us.append(h)
                    h = quantize(h, self.activation, bits)
            hs.append(h)
        logits = hs[-1]
        value = None
        if loss:
            logp = torch.log_softmax(logits, dim=1)  # (R, n_y, B)
            value = -logp.gather(1, y[:, None, :]).sum() / n
            delta = logp.exp_()
        else:
            delta = torch.softmax(logits, dim=1)
        if self._neg is None or self._neg.shape != (y.shape[0], 1, n) or self._neg.dtype != delta.dtype:
            self._neg = torch.full((y.shape[0], 1, n), -1.0, dtype=delta.dtype, device=delta.device)
        delta.scatter_add_(1, y[:, None, :], self._neg)
        delta.mul_(1.0 / n)
        deriv = DERIVATIVES[self.activation]
        k = len(self.weights)
        for i in range(last, -1, -1):
            gw, gb = self._grad_views[i], self._grad_views[k + i]
            torch.bmm(hs[i], delta.transpose(1, 2), out=gw)
            torch.sum(delta, dim=2, out=gb)
            if i > 0:
                delta = deriv(torch.bmm(self.weights[i], delta), us[i])
        return value

    @torch.no_grad()
    def loss_and_grad(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Sum over repeats of each repeat's mean cross-entropy (nats) on the batch; gradients into ``.grad``.

        x (R, n_in, B) feature-major inputs, y (R, B) labels; the hand-written backward of :meth:`grad_step`, with
        the loss, and every parameter's ``.grad`` set to its view of ``flat_grad``.
        """
        value = self._backprop(x, y, True)
        for p, g in zip(list(self.weights) + list(self.biases), self._grad_views, strict=True):
            p.grad = g
        return value

    def grad_step(self, x: torch.Tensor, y: torch.Tensor) -> None:
        """Gradients of one minibatch into ``flat_grad`` (the training loop's step; see :meth:`_backprop`)."""
        self._backprop(x, y, False)
