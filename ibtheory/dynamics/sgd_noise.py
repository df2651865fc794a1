"""SGD as a stochastic differential equation: minibatch gradient noise, its temperature, and the stationary
covariance of SGD near a minimum (Lyapunov equation).

SGD with learning rate eta and batch size B, w_{k+1} = w_k - eta g_B(w_k), has g_B = grad L + xi with
Cov(xi) = C_B(w).  For batches drawn with replacement C_B = C / B, with C the per-sample gradient covariance

    C(w) = (1/n) sum_i (g_i - gbar)(g_i - gbar)^T,   g_i = grad l(w; x_i, y_i),   gbar = grad L(w).

In time t = k eta this is (to first order in eta) dw = -grad L dt + sqrt(eta C_B) dW, the Langevin equation
dw = -grad L dt + sqrt(2 D / beta) dW with D / beta = eta C_B / 2.  Its isotropic temperature is
1 / beta = eta tr(C_B) / (2 d).  Near a minimum with Hessian H (L ~ (w - w*)^T H (w - w*) / 2, C_B ~ const) the
stationary covariance S of the weights solves the continuous Lyapunov equation

    H S + S H^T = eta C_B                                      (scipy.linalg.solve_continuous_lyapunov),

and the exact covariance of the discrete iteration solves S = A S A^T + eta^2 C_B, A = I - eta H
(scipy.linalg.solve_discrete_lyapunov); the two differ by O(eta H).

References
----------
1. S. Mandt, M. D. Hoffman, D. M. Blei, "Stochastic gradient descent as approximate Bayesian inference",
   JMLR 18(134):1-35 (2017), eq. (8).
2. P. Chaudhari and S. Soatto, "Stochastic gradient descent performs variational inference, converges to limit
   cycles for deep networks", ICLR 2018.
3. R. Shwartz-Ziv and N. Tishby, "Opening the black box of deep neural networks via information", 2017, sec. 2.4.
"""

from __future__ import annotations

import numpy as np
import xarray as xr
from numpy.typing import ArrayLike
from scipy import linalg

from .. import store
from .._validate import show

__all__ = ["gradient_covariance", "minibatch_covariance", "sgd_temperature", "lyapunov_covariance",
           "linear_regression_gradients", "sgd_linear_regression", "empirical_covariance",
           "relative_frobenius"]


def gradient_covariance(per_sample_grads: ArrayLike) -> np.ndarray:
    """Per-sample gradient covariance C = (1/n) sum_i (g_i - gbar)(g_i - gbar)^T of ``per_sample_grads``
    (n, d) -> (d, d)."""
    g = np.asarray(per_sample_grads, dtype=np.float64)
    if g.ndim != 2 or g.shape[0] < 2:
        raise ValueError(f"per_sample_grads must have shape (n >= 2, d), got {g.shape}")
    if not np.all(np.isfinite(g)):
        raise ValueError("per_sample_grads contains NaN or infinite entries")
    z = g - g.mean(axis=0)
    return z.T @ z / g.shape[0]


def minibatch_covariance(c: ArrayLike, batch_size: int, n: int | None = None) -> np.ndarray:
    """Covariance of a minibatch mean gradient: C / B with replacement, C / B (n - B) / (n - 1) without
    replacement (give the data-set size ``n``)."""
    c = np.asarray(c, dtype=np.float64)
    if int(batch_size) != batch_size or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {show(batch_size)}")
    if n is None:
        return c / batch_size
    if batch_size > n:
        raise ValueError(f"batch_size {batch_size} exceeds the data-set size n = {n}")
    return c / batch_size * (n - batch_size) / max(n - 1, 1)


def sgd_temperature(lr: float, c_batch: ArrayLike) -> float:
    """Isotropic temperature 1 / beta = eta tr(C_B) / (2 d) implied by SGD with learning rate ``lr`` (eta) and
    minibatch gradient covariance ``c_batch`` (d, d); energy units of the loss."""
    c = np.atleast_2d(np.asarray(c_batch, dtype=np.float64))
    if not (np.isfinite(lr) and lr > 0):
        raise ValueError(f"lr must be a positive number, got {show(lr)}")
    return float(lr * np.trace(c) / (2 * c.shape[0]))


def lyapunov_covariance(hessian: ArrayLike, c_batch: ArrayLike, lr: float, discrete: bool = False) -> np.ndarray:
    """Stationary weight covariance S of SGD near a minimum: H S + S H^T = eta C_B (continuous), or
    S = A S A^T + eta^2 C_B with A = I - eta H (``discrete=True``, exact for a quadratic loss and constant noise).

    Raises ``ValueError`` when H is not positive definite (no stationary state) or, for the discrete equation, when
    eta is beyond the stability limit 2 / lambda_max(H).

    Example
    -------
    >>> float(lyapunov_covariance([[2.0]], [[1.0]], lr=0.1)[0, 0])  # eta C / (2 H)
    0.025
    """
    h = np.atleast_2d(np.asarray(hessian, dtype=np.float64))
    c = np.atleast_2d(np.asarray(c_batch, dtype=np.float64))
    if h.shape != c.shape or h.shape[0] != h.shape[1]:
        raise ValueError(f"hessian and c_batch must be square of the same shape, got {h.shape} and {c.shape}")
    if not (np.isfinite(lr) and lr > 0):
        raise ValueError(f"lr must be a positive number, got {show(lr)}")
    eig = np.linalg.eigvals(h).real
    if eig.min() <= 0:
        raise ValueError(f"hessian must be positive definite (smallest eigenvalue {eig.min():.3g})")
    if discrete:
        if lr * eig.max() >= 2:
            raise ValueError(f"lr = {lr} is beyond SGD's stability limit 2 / lambda_max(H) = {2 / eig.max():.3g}")
        a = np.eye(h.shape[0]) - lr * h
        s = linalg.solve_discrete_lyapunov(a, lr * lr * c)
    else:
        s = linalg.solve_continuous_lyapunov(h, lr * c)
    return 0.5 * (s + s.T)


def linear_regression_gradients(x: ArrayLike, y: ArrayLike, w: ArrayLike) -> np.ndarray:
    """Per-sample gradients g_i = x_i (x_i . w - y_i) of l_i = (x_i . w - y_i)^2 / 2: (n, d)."""
    x = np.asarray(x, dtype=np.float64)
    r = x @ np.asarray(w, dtype=np.float64) - np.asarray(y, dtype=np.float64)
    return x * r[:, None]


def sgd_linear_regression(
    x: ArrayLike,
    y: ArrayLike,
    lr: float,
    batch_size: int,
    n_steps: int,
    n_chains: int = 1000,
    w0: ArrayLike | None = None,
    burn_in: int = 0,
    every: int = 1,
    seed: int | np.random.Generator | None = None,
) -> xr.Dataset:
    """Plain SGD on L(w) = (1/2n) sum_i (x_i . w - y_i)^2, ``n_chains`` independent chains at once (batches drawn
    with replacement).  Records w(time, repeat, dim) every ``every`` steps after ``burn_in`` steps; time is
    k * lr (the SDE's time).  Vectorised over chains and batch members."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64).reshape(-1)
    if x.ndim != 2 or x.shape[0] != y.shape[0]:
        raise ValueError(f"x must be (n, d) and y (n,), got {x.shape} and {y.shape}")
    if not (np.isfinite(lr) and lr > 0):
        raise ValueError(f"lr must be a positive number, got {show(lr)}")
    if int(batch_size) != batch_size or not 1 <= batch_size:
        raise ValueError(f"batch_size must be a positive integer, got {show(batch_size)}")
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    n, d = x.shape
    w = np.zeros((n_chains, d)) if w0 is None else np.broadcast_to(np.asarray(w0, float), (n_chains, d)).copy()
    rec_steps = list(range(burn_in, burn_in + n_steps + 1, every))
    out = np.empty((len(rec_steps), n_chains, d))
    j = 0
    for k in range(burn_in + n_steps + 1):
        if j < len(rec_steps) and k == rec_steps[j]:
            out[j] = w
            j += 1
        idx = rng.integers(0, n, size=(n_chains, batch_size))
        xb = x[idx]  # (chains, B, d)
        r = np.einsum("cbd,cd->cb", xb, w) - y[idx]
        w -= lr * np.einsum("cbd,cb->cd", xb, r) / batch_size
        ok = np.abs(w) < 1e8  # False for NaN too
        if not ok.all():
            raise ValueError(f"SGD diverged at step {k} (chain {int(np.argmax(~ok.all(axis=1)))}, |w| > 1e8); "
                             "lower lr")
    ds = xr.Dataset({"w": (("time", "repeat", "dim"), out)},
                    coords={"time": np.asarray(rec_steps) * lr, "dim": np.arange(d)})
    cfg = {"lr": lr, "batch_size": int(batch_size), "n_steps": int(n_steps), "n_chains": int(n_chains),
           "burn_in": int(burn_in), "every": int(every)}
    return store.with_provenance(ds, cfg, seed if isinstance(seed, int) else None)


def empirical_covariance(w: ArrayLike) -> np.ndarray:
    """Covariance (d, d) of weight samples (..., d), pooled over all leading axes (for example time and repeat
    of stationary chains), about their pooled mean."""
    a = np.asarray(w, dtype=np.float64)
    a = a.reshape(-1, a.shape[-1])
    a = a - a.mean(axis=0)
    return a.T @ a / a.shape[0]


def relative_frobenius(a: ArrayLike, b: ArrayLike) -> float:
    """||a - b||_F / ||b||_F."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))
