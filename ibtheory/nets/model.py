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

Initialisation (the authors' setup): weights from a normal distribution with std 1/sqrt(fan_in) truncated at two
standard deviations (TensorFlow's ``truncated_normal``), zero biases.  Each repetition draws its weights from its
own ``numpy.random.Generator``, so repetition r is identical whether it trains alone or inside an ensemble.

References
----------
1. R. Shwartz-Ziv and N. Tishby, "Opening the black box of deep neural networks via information", arXiv:1703.00810.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch
from scipy.stats import truncnorm

from .._validate import show

__all__ = ["ACTIVATIONS", "DERIVATIVES", "BatchedMLP", "FlatEnsemble", "init_weights"]


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
    """

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
    """

    def __init__(
        self,
        widths: Sequence[int],
        activation: str,
        weights: Sequence[np.ndarray],
        dtype: torch.dtype = torch.float32,
        device: str | torch.device = "cpu",
    ) -> None:
        super().__init__()
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, got {show(activation)}")
        self.widths = tuple(int(w) for w in widths)
        self.activation = activation
        self._phi = ACTIVATIONS[activation]
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
            h = z if i == last else self._phi(z)
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
        """
        n = x.shape[-1]
        last = len(self.weights) - 1
        phi_ = _IN_PLACE[self.activation]
        hs = [x]
        h = x
        for i, (w, b) in enumerate(zip(self.weights, self.biases, strict=True)):
            h = torch.baddbmm(b[:, :, None], w.transpose(1, 2), h)
            if i < last:
                phi_(h)
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
                delta = deriv(torch.bmm(self.weights[i], delta), hs[i])
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
