"""Potentials L(x) for Langevin dynamics: small classes with vectorised ``value`` and ``grad``.

Every potential acts on a batch of positions ``x`` of shape ``(n_particles, dim)`` and returns
``value(x)`` of shape ``(n_particles,)`` and ``grad(x)`` of shape ``(n_particles, dim)``.  ``grad`` accepts an
``out`` buffer so the simulation loop allocates nothing per step.  Energies are in the units of L (the Gibbs
weight is exp(-beta L), so beta has units 1/L).

Available: :class:`Quadratic` (any positive-definite Hessian, checked), :class:`DoubleWell`,
:class:`CallablePotential` (a user function, gradient given or by torch autograd).  The loss of a small network is
:class:`ibtheory.dynamics.network.NetworkLoss`.

Example
-------
>>> import numpy as np
>>> dw = DoubleWell(barrier=1.0)
>>> dw.value(np.array([[0.0], [1.0]])).tolist()
[1.0, 0.0]
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from numpy.typing import ArrayLike

from .._validate import show

__all__ = ["Potential", "Quadratic", "DoubleWell", "CallablePotential", "as_points"]


def as_points(x: ArrayLike, dim: int, name: str = "x") -> np.ndarray:
    """``x`` as a float64 array of shape (n, dim); a 1-D array is read as n points when dim == 1, else one point."""
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim == 0:
        arr = arr.reshape(1, 1)
    elif arr.ndim == 1:
        arr = arr.reshape(-1, 1) if dim == 1 else arr.reshape(1, -1)
    if arr.ndim != 2 or arr.shape[1] != dim:
        raise ValueError(f"{name} must have shape (n_particles, {dim}), got {np.shape(x)}")
    return arr


class Potential:
    """Base class: a differentiable potential L: R^dim -> R.

    Subclasses implement ``value(x) -> (n,)`` and ``grad(x, out=None) -> (n, dim)``.  ``hessian(x)`` defaults to
    central differences of ``grad`` and returns (n, dim, dim).
    """

    dim: int = 1
    name: str = "potential"

    def value(self, x: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def grad(self, x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def hessian(self, x: ArrayLike, eps: float = 1e-5) -> np.ndarray:
        """Hessian by central differences of ``grad``: shape (n, dim, dim), symmetrised."""
        x = as_points(x, self.dim)
        n, d = x.shape
        h = np.empty((n, d, d))
        for i in range(d):  # loop over dimensions, not particles
            step = np.zeros(d)
            step[i] = eps
            h[:, i, :] = (self.grad(x + step) - self.grad(x - step)) / (2 * eps)
        return 0.5 * (h + h.transpose(0, 2, 1))

    def config(self) -> dict:
        """A JSON-able description (recorded in results' provenance)."""
        return {"name": self.name, "dim": self.dim}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.config().items() if k != "name")
        return f"{type(self).__name__}({args})"


class Quadratic(Potential):
    """L(x) = 1/2 (x - c)^T H (x - c) with a symmetric positive-definite Hessian H (checked).

    Its Gibbs density exp(-beta L) / Z is the normal N(c, H^{-1} / beta); Langevin on it is the
    Ornstein-Uhlenbeck process.

    Parameters
    ----------
    hessian : (dim, dim) array or a positive scalar (then dim = 1)
    center : (dim,) array, default zeros
    """

    name = "quadratic"

    def __init__(self, hessian: ArrayLike, center: ArrayLike | None = None):
        h = np.atleast_2d(np.asarray(hessian, dtype=np.float64))
        if h.ndim != 2 or h.shape[0] != h.shape[1]:
            raise ValueError(f"hessian must be a square matrix, got shape {np.shape(hessian)}")
        if not np.all(np.isfinite(h)):
            raise ValueError("hessian contains NaN or infinite entries")
        if not np.allclose(h, h.T, rtol=1e-10, atol=1e-12 * np.abs(h).max()):
            raise ValueError("hessian must be symmetric")
        eig = np.linalg.eigvalsh(h)
        if eig.min() <= 0:
            raise ValueError(f"hessian must be positive definite; smallest eigenvalue {eig.min():.3g}")
        self.H = 0.5 * (h + h.T)
        self.dim = h.shape[0]
        c = np.zeros(self.dim) if center is None else np.asarray(center, dtype=np.float64).reshape(-1)
        if c.shape != (self.dim,) or not np.all(np.isfinite(c)):
            raise ValueError(f"center must be a finite vector of length {self.dim}, got {np.shape(center)}")
        self.center = c

    def value(self, x: np.ndarray) -> np.ndarray:
        z = as_points(x, self.dim) - self.center
        return 0.5 * np.einsum("ni,ij,nj->n", z, self.H, z)

    def grad(self, x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        z = as_points(x, self.dim) - self.center
        if self.dim == 1:
            return np.multiply(z, self.H[0, 0], out=out)
        return np.matmul(z, self.H, out=out)

    def hessian(self, x: ArrayLike, eps: float = 1e-5) -> np.ndarray:
        n = as_points(x, self.dim).shape[0]
        return np.broadcast_to(self.H, (n, self.dim, self.dim)).copy()

    def covariance(self, beta: float) -> np.ndarray:
        """Covariance H^{-1} / beta of the Gibbs distribution."""
        return np.linalg.inv(self.H) / beta

    def config(self) -> dict:
        return {"name": self.name, "dim": self.dim, "hessian": self.H.tolist(), "center": self.center.tolist()}


class DoubleWell(Potential):
    """L(x) = h (x_0^2 - 1)^2 + a x_0 + (k / 2) sum_{i>0} x_i^2: a double well in the first coordinate.

    With tilt a = 0 the minima are x_0 = +-1 (L = 0), the saddle x_0 = 0 (L = h), so h is the barrier height;
    curvatures L''(+-1) = 8 h and L''(0) = -4 h.  The remaining ``dim - 1`` coordinates are harmonic with stiffness
    k.  Kramers' escape rate for this well is sqrt(8 h * 4 h) / (2 pi) exp(-beta h) (see ``kramers``).
    """

    name = "double-well"

    def __init__(self, barrier: float = 1.0, tilt: float = 0.0, dim: int = 1, stiffness: float = 1.0):
        if not (np.isfinite(barrier) and barrier > 0):
            raise ValueError(f"barrier must be a positive number, got {show(barrier)}")
        if not np.isfinite(tilt):
            raise ValueError(f"tilt must be finite, got {show(tilt)}")
        if int(dim) != dim or dim < 1:
            raise ValueError(f"dim must be a positive integer, got {show(dim)}")
        if not (np.isfinite(stiffness) and stiffness > 0):
            raise ValueError(f"stiffness must be a positive number, got {show(stiffness)}")
        self.barrier, self.tilt, self.dim, self.stiffness = float(barrier), float(tilt), int(dim), float(stiffness)

    def value(self, x: np.ndarray) -> np.ndarray:
        x = as_points(x, self.dim)
        x0 = x[:, 0]
        v = self.barrier * (x0 * x0 - 1.0) ** 2 + self.tilt * x0
        if self.dim > 1:
            v = v + 0.5 * self.stiffness * np.einsum("ni,ni->n", x[:, 1:], x[:, 1:])
        return v

    def grad(self, x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        x = as_points(x, self.dim)
        if out is None:
            out = np.empty_like(x)
        g = out[:, 0]
        x0 = x[:, 0]
        np.multiply(x0, x0, out=g)  # in place: x0^2 -> 4 h x0 (x0^2 - 1) + a
        g -= 1.0
        g *= x0
        g *= 4.0 * self.barrier
        if self.tilt:
            g += self.tilt
        if self.dim > 1:
            np.multiply(x[:, 1:], self.stiffness, out=out[:, 1:])
        return out

    def config(self) -> dict:
        return {"name": self.name, "dim": self.dim, "barrier": self.barrier, "tilt": self.tilt,
                "stiffness": self.stiffness}


class CallablePotential(Potential):
    """A user potential: ``fn(x) -> (n,)`` with a gradient ``grad(x) -> (n, dim)`` or torch autograd.

    Parameters
    ----------
    fn : callable
        Vectorised potential.  With ``grad=None`` it must accept a torch tensor (n, dim) and return (n,) built
        from torch operations; the gradient is then computed by autograd (float64).
    dim : int
        Dimension of the state.
    grad : callable, optional
        Vectorised numpy gradient ``(n, dim) -> (n, dim)``.
    """

    name = "callable"

    def __init__(self, fn: Callable, dim: int, grad: Callable | None = None):
        if not callable(fn):
            raise ValueError("fn must be callable")
        if grad is not None and not callable(grad):
            raise ValueError("grad must be callable or None (torch autograd)")
        if int(dim) != dim or dim < 1:
            raise ValueError(f"dim must be a positive integer, got {show(dim)}")
        self.fn, self._grad, self.dim = fn, grad, int(dim)

    def value(self, x: np.ndarray) -> np.ndarray:
        x = as_points(x, self.dim)
        if self._grad is None:
            import torch

            with torch.no_grad():
                return self.fn(torch.as_tensor(x)).detach().numpy().astype(np.float64).reshape(-1)
        return np.asarray(self.fn(x), dtype=np.float64).reshape(-1)

    def grad(self, x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        x = as_points(x, self.dim)
        if self._grad is None:
            import torch

            xt = torch.tensor(x, dtype=torch.float64, requires_grad=True)
            (g,) = torch.autograd.grad(self.fn(xt).sum(), xt)
            res = g.numpy()
        else:
            res = np.asarray(self._grad(x), dtype=np.float64)
            if res.shape != x.shape:
                raise ValueError(f"grad returned shape {res.shape}, expected {x.shape}")
        if out is None:
            return res
        out[...] = res
        return out

    def config(self) -> dict:
        return {"name": self.name, "dim": self.dim, "fn": getattr(self.fn, "__name__", repr(self.fn)),
                "autograd": self._grad is None}
