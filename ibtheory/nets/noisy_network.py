"""Goldfeld et al. (2019)'s noisy network: I(X;T_l) and I(T_l;Y) of every hidden layer by sample propagation.

**The noisy network.**  Every hidden unit gets independent Gaussian noise,

    T_0 = X,    T_l = phi(T_{l-1} W_l + b_l) + Z_l,    Z_l ~ N(0, sigma^2 I),    l = 1..L,

for each of the R networks of a flat parameter buffer (:class:`ibtheory.nets.model.FlatEnsemble`'s layout).  The
softmax output layer is not noisy in their setting and is *skipped*: its parameters are only checked for length.

**Sample propagation (SP).**  Given X = x, T_1 is exactly one Gaussian N(S_1(x), sigma^2 I), S_1(x) = phi(x W_1 +
b_1).  For l >= 2, n = ``n_draws`` noisy samples t_{l-1}^(j) of T_{l-1} | X = x are propagated (each draw follows
its own noisy path through the layers), and

    P(T_l | X = x) ~ g_x = (1/n) sum_j N(S_l^(j)(x), sigma^2 I),    S_l^(j)(x) = phi(t_{l-1}^(j) W_l + b_l);
    g = sum_x p(x) g_x,    g_y = sum_x p(x|y) g_x,    p(x|y) = p(x) p(y|x) / p(y).

Then, in bits,

    I(X;T_l) = h(g) - sum_x p(x) h(g_x) = sum_x p(x) E_{t ~ g_x}[ log2 g_x(t) - log2 g(t) ],
    I(T_l;Y) = h(g) - sum_y p(y) h(g_y) = sum_x p(x) E_{t ~ g_x}[ sum_y p(y|x) (log2 g_y(t) - log2 g(t)) ],

each expectation by Monte Carlo with ``n_mc`` samples per pattern (systematically stratified over the n components
of g_x, with a random offset, so every sample is exactly distributed as g_x), the mixture log-densities by log-sum-exp
over all n_x n centres.  Both entropies share the same samples (common random numbers), so the standard errors
returned are those of the differences: se^2 = sum_x p(x)^2 s_x^2 / n_mc, s_x^2 the sample variance of the integrand
over pattern x's samples (the iid formula: conservative when n divides n_mc, as proportional stratification never
raises the variance).  The integrands are log2 p(x|t)/p(x) <= log2 1/p(x) and sum_y p(y|x) log2 p(y|t)/p(y) <= sum_y
p(y|x) log2 1/p(y), so every estimate is at most H(X), respectively H(Y), for any samples.  They are not clipped at
0: a value near 0 may be a few standard errors below it.

**Bias.**  The Monte Carlo part is unbiased for the mixtures above.  For the first layer g_x is exact, so I(X;T_1)
and I(T_1;Y) carry no other error.  For l >= 2 the mixture of n propagated samples replaces the true P(T_l | X = x)
(the SP estimator of h(P * N(0, sigma^2 I)) by h(P_n * N(0, sigma^2 I)), P_n the empirical measure of n draws):
entropy is concave, so E h(g_x) <= h(true), and g_x, built on n components, is hit harder than g (on n_x n
components); I(X;T_l) therefore tends to be overestimated.  The error decays like c^d / sqrt(n) with a constant
exponential in the layer width d (Goldfeld et al. 2019, 2020; heuristically, for nearly Gaussian conditionals the
deficit of h(g_x) is about tau^2 / (2 n (sigma^2 + tau^2)) nats per unit whose propagated noise has variance tau^2,
the variance the n draws miss).  The draws are random too, which adds a spread that the standard errors (Monte Carlo
only, given the draws) do not include: for a linear 1-2-2 network at I(X;T_2) = 1.11 bits we measured a bias of
+0.05 bits and a spread of 0.07 bits across seeds with 16 draws, +0.03 and 0.04 with 64, and both below 0.012 with
256, against a standard error of 0.015 (1000 samples per pattern).  Increase ``n_draws`` until the estimates stop
moving.

Cost: O(R L n_x^2 n_draws n_mc d) per call (every sample against every centre), computed in blocks of samples
with at most ~2^22 float64 (32 MB) per work array.  256 patterns x 16 draws x 16 samples x 6 layers (widths
10-7-5-4-3-2) x 6 repeats took 2.9 s on one torch thread of a busy 2-core machine.

References
----------
1. Z. Goldfeld, E. van den Berg, K. Greenewald, I. Melnyk, N. Nguyen, B. Kingsbury and Y. Polyanskiy,
   "Estimating information flow in deep neural networks", ICML 2019 (the noisy DNN and the SP estimator).
2. Z. Goldfeld, K. Greenewald, J. Niles-Weed and Y. Polyanskiy, "Convergence of smoothed empirical measures with
   applications to entropy estimation", IEEE Trans. Inf. Theory 66(7), 2020 (the SP estimator's error bounds).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import ArrayLike

from .._validate import integer, real, show
from .._validate import seed as seed_value
from ..info import LN2, validate_conditional, validate_distribution

if TYPE_CHECKING:
    import torch

__all__ = ["NoisyNetworkResult", "noisy_network_information"]

#: Elements of the largest work array (samples x centres, for all repeats): 2^22 float64 = 32 MB.
_BLOCK_ELEMENTS = 2**22


@dataclass(frozen=True)
class NoisyNetworkResult:
    """Sample-propagation estimates for the hidden layers of R noisy networks, arrays of shape (n_hidden, R).

    I_XT, I_TY : I(X;T_l) and I(T_l;Y) in bits, layer l = 1..L (the softmax output is not included).
    I_XT_se, I_TY_se : their Monte Carlo standard errors, bits, given the propagated draws (for l >= 2 the bias and
        spread of a finite n_draws come on top, see the module docstring).
    sigma, n_draws, n_mc : the noise standard deviation, the propagated draws and the samples per pattern.
    """

    I_XT: np.ndarray
    I_TY: np.ndarray
    I_XT_se: np.ndarray
    I_TY_se: np.ndarray
    sigma: float
    n_draws: int
    n_mc: int


def _real_table(value: ArrayLike, name: str, ndim: int) -> np.ndarray:
    """``value`` as a float64 array of ``ndim`` dims, finite real numbers and no empty axis, else ``ValueError``."""
    arr = np.asarray(value)
    if arr.dtype.kind not in "iuf":
        raise ValueError(f"{name} must hold real numbers, got {show(value)} (dtype {arr.dtype})")
    if arr.ndim != ndim or 0 in arr.shape:
        raise ValueError(f"{name} must be a non-empty {ndim}-D array, got shape {arr.shape}")
    arr = arr.astype(np.float64)
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite (no NaN or inf)")
    return arr


def _hidden_widths(widths: Sequence[int]) -> tuple[int, ...]:
    if isinstance(widths, (str, bytes)) or not isinstance(widths, Sequence) or len(widths) == 0:
        raise ValueError(f"widths must be a non-empty sequence of hidden-layer widths, got {show(widths)}")
    return tuple(integer(w, "widths (each hidden width)", 1) for w in widths)


def _layers(params: np.ndarray, full: tuple[int, ...]) -> list[tuple[np.ndarray, np.ndarray]]:
    """(W_l (R, fan_in, fan_out), b_l (R, fan_out)) of the hidden layers from rows laid out as FlatEnsemble's
    (weights W_1..W_{L+1}, then biases b_1..b_{L+1}, each block row-major), the output layer L+1 dropped."""
    pairs = list(zip(full[:-1], full[1:], strict=True))
    need = sum(a * b + b for a, b in pairs)
    if params.shape[1] != need:
        raise ValueError(
            f"params has {params.shape[1]} columns but the layer widths {full} (inputs, hidden widths, one output "
            f"per column of p_y_given_x) need {need}: W_1..W_L then b_1..b_L per network (FlatEnsemble layout)")
    r, start, weights = params.shape[0], 0, []
    for a, b in pairs:
        weights.append(params[:, start:start + a * b].reshape(r, a, b))
        start += a * b
    biases = []
    for _, b in pairs:
        biases.append(params[:, start:start + b])
        start += b
    return list(zip(weights[:-1], biases[:-1], strict=True))


def _generators(seed: int, layer: int, repeats: int) -> list[np.random.Generator]:
    """One generator per (layer stream, repeat): network r's estimate depends on its row of params, r and the seed,
    not on the other networks."""
    return [np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(layer, r))) for r in range(repeats)]


def _normal(seed: int, layer: int, repeats: int, shape: tuple[int, ...]) -> np.ndarray:
    """Standard normal draws (R, *shape), repeat r's from its own stream."""
    return np.stack([g.standard_normal(shape) for g in _generators(seed, layer, repeats)])  # setup, not hot


def _samples(centres: torch.Tensor, sigma: float, n_mc: int, seed: int, layer: int) -> torch.Tensor:
    """n_mc samples per pattern from g_x: sample k of pattern x from centre (u_x + k) mod n, u_x uniform on 0..n-1
    (drawn per pattern), plus N(0, sigma^2 I).  centres (R, n_x, n, d) -> samples (R, n_x, n_mc, d)."""
    import torch

    r, n_x, n, d = centres.shape
    offsets, noise = [], []
    for g in _generators(seed, layer, r):  # setup, not hot
        offsets.append(g.integers(0, n, size=n_x))
        noise.append(g.standard_normal((n_x, n_mc, d)))
    which = (np.stack(offsets)[:, :, None] + np.arange(n_mc)) % n  # (R, n_x, n_mc)
    base = torch.gather(centres, 2, torch.from_numpy(which)[..., None].expand(r, n_x, n_mc, d))
    return base + sigma * torch.from_numpy(np.stack(noise))


def _logsumexp_(a: torch.Tensor, dim: int) -> torch.Tensor:
    """log sum exp of ``a`` along ``dim`` (overwrites ``a``; about twice as fast as ``torch.logsumexp`` on CPU,
    fastest when ``dim`` is not the last).
    Every slice must hold a finite entry (here: each sample's own centre, each label's own patterns)."""
    top = a.amax(dim, keepdim=True)
    return a.sub_(top).exp_().sum(dim).log_().add_(top.squeeze(dim))


def _integrands(
    centres: torch.Tensor, samples: torch.Tensor, sigma: float, log_px: torch.Tensor, log_pxy: torch.Tensor,
    pyx: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-sample integrands in nats, (R, n_x, n_mc) each: log g_x(t) - log g(t), and
    sum_y p(y|x) (log g_y(t) - log g(t)), t the sample of pattern x.

    With the per-sample constant -|t|^2 / (2 sigma^2) and the Gaussian normaliser dropped (they cancel in every
    difference), log N(t; c, sigma^2 I) ~ t.c / sigma^2 - |c|^2 / (2 sigma^2): one batched matrix product against
    the centres augmented by that column.
    """
    import torch

    r, n_x, n, d = centres.shape
    n_mc = samples.shape[2]
    shift = centres.mean(dim=(1, 2), keepdim=True)  # centring keeps t.c small: no cancellation
    c = (centres - shift).transpose(1, 2).reshape(r, n * n_x, d)  # centre j of pattern x at column j n_x + x
    t = (samples - shift).reshape(r, n_x * n_mc, d) / sigma**2
    c_aug = torch.cat([c, -0.5 * (c * c).sum(-1, keepdim=True) / sigma**2], dim=-1).transpose(1, 2)  # (R, d+1, M)
    t_aug = torch.cat([t, torch.ones_like(t[..., :1])], dim=-1)
    own = torch.arange(n_x).repeat_interleave(n_mc)  # the pattern of each sample
    log_n = math.log(n)
    d_xt = torch.empty(r, n_x * n_mc, dtype=centres.dtype)
    d_ty = torch.empty_like(d_xt)
    block = max(1, _BLOCK_ELEMENTS // (r * n_x * n))
    for start in range(0, n_x * n_mc, block):  # blocks of samples, vectorised over repeats and centres
        stop = min(start + block, n_x * n_mc)
        dens = torch.bmm(t_aug[:, start:stop], c_aug).view(r, stop - start, n, n_x)
        lx = _logsumexp_(dens, 2) - log_n  # (R, B, n_x): log g_x'(t) for every pattern x'
        del dens
        lg = _logsumexp_(lx + log_px, -1)  # (R, B)
        mine = own[start:stop]
        lown = lx.gather(2, mine.view(1, -1, 1).expand(r, -1, 1))[..., 0]
        lgy = _logsumexp_(lx[..., None] + log_pxy, 2)  # (R, B, n_y)
        d_xt[:, start:stop] = lown - lg
        d_ty[:, start:stop] = ((lgy - lg[..., None]) * pyx[mine]).sum(-1)
    return d_xt.view(r, n_x, n_mc), d_ty.view(r, n_x, n_mc)


def _estimate(values: torch.Tensor, px: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """sum_x p(x) mean_k v_xk and its standard error sqrt(sum_x p(x)^2 var_k(v_xk) / n_mc), bits, shape (R,)."""
    n_mc = values.shape[-1]
    mean = (values.mean(-1) * px).sum(-1)
    se = ((values.var(-1, correction=1) * px**2).sum(-1) / n_mc).sqrt()
    return mean.numpy() / LN2, se.numpy() / LN2


def noisy_network_information(
    params: ArrayLike,
    widths: Sequence[int],
    activation: str,
    inputs: ArrayLike,
    p_x: ArrayLike,
    p_y_given_x: ArrayLike,
    sigma: float = 0.1,
    n_draws: int = 16,
    n_mc: int = 16,
    seed: int = 0,
) -> NoisyNetworkResult:
    """I(X;T_l) and I(T_l;Y) in bits for every hidden layer of R noisy networks, by sample propagation.

    T_l = phi(T_{l-1} W_l + b_l) + N(0, sigma^2 I), T_0 = X (Goldfeld et al. 2019); see the module docstring for
    the estimator, its Monte Carlo error and the bias of a finite ``n_draws`` (none for the first layer).

    Parameters
    ----------
    params : array (R, n_params)
        The parameters of R networks, one row each, as ``Snapshot.checkpoint["params"]``: the weights W_1..W_{L+1}
        (each (fan_in, fan_out), row-major) then the biases b_1..b_{L+1}; layer L+1 is the softmax output with one
        unit per column of ``p_y_given_x`` (skipped: only its length is checked).
    widths : the L >= 1 hidden-layer widths (not the input or the output).
    activation : the hidden nonlinearity, one of :data:`ibtheory.nets.model.ACTIVATIONS`.
    inputs : array (n_x, d), the input pattern of each x.
    p_x : (n_x,); p_y_given_x : (n_x, n_y) exact.  Patterns with p(x) = 0 are left out.
    sigma : noise standard deviation > 0 of every hidden unit.
    n_draws : propagated noisy samples of T_{l-1} per pattern (>= 1), the components of P(T_l | X = x), l >= 2.
    n_mc : Monte Carlo samples per pattern (>= 2) for the entropies.
    seed : the estimates are a deterministic function of the seed; network r's depend on its own row, r and the
        seed, not on the other rows.

    Returns
    -------
    NoisyNetworkResult with arrays of shape (L, R), bits.

    Example: one tanh unit, X uniform on {-3, -1, 1, 3}, weight 1: the four points tanh(x) are far apart
    compared with sigma = 1e-3, so I(X;T_1) = H(X) = 2 bits and I(T_1;Y) = H(Y) = 1 bit for Y = sign(X).

    >>> pyx = [[1, 0], [1, 0], [0, 1], [0, 1]]
    >>> r = noisy_network_information([[1.0, 0, 0, 0, 0, 0]], [1], "tanh", [[-3], [-1], [1], [3]], [0.25] * 4,
    ...                               pyx, sigma=1e-3)
    >>> r.I_XT.round(9).tolist(), r.I_TY.round(9).tolist()
    ([[2.0]], [[1.0]])
    """
    import torch

    from .model import ACTIVATIONS

    sigma = real(sigma, "sigma", 0.0, low_open=True)
    n_draws = integer(n_draws, "n_draws", 1)
    n_mc = integer(n_mc, "n_mc", 2)
    seed = seed_value(seed)
    if not isinstance(activation, str) or activation not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, got {show(activation)}")
    phi = ACTIVATIONS[activation]
    hidden = _hidden_widths(widths)
    x = _real_table(inputs, "inputs", 2)
    px = validate_distribution(p_x, "p_x", ndim=1)
    if px.size != x.shape[0]:
        raise ValueError(f"inputs must have shape (n_x, d) with n_x = {px.size} (the entries of p_x), "
                         f"got shape {x.shape}")
    pyx = validate_conditional(p_y_given_x, "p_y_given_x")
    if pyx.shape[0] != px.size:
        raise ValueError(f"p_y_given_x has {pyx.shape[0]} rows but p_x has {px.size} entries")
    rows = _real_table(params, "params", 2)
    layers = _layers(rows, (x.shape[1],) + hidden + (pyx.shape[1],))

    keep = px > 0
    x, px, pyx = x[keep], px[keep], pyx[keep]
    p_joint = px[:, None] * pyx
    p_y = p_joint.sum(axis=0)
    pyx = pyx[:, p_y > 0]
    with np.errstate(divide="ignore"):
        log_pxy = np.log(p_joint[:, p_y > 0] / p_y[p_y > 0])  # log p(x|y), -inf where p(x, y) = 0
    t_px, t_pyx = torch.from_numpy(px), torch.from_numpy(pyx)
    log_px, t_log_pxy = torch.log(t_px), torch.from_numpy(log_pxy)

    r, n_x = rows.shape[0], x.shape[0]
    out = np.empty((4, len(layers), r))
    prev = torch.from_numpy(x).expand(r, n_x, x.shape[1])[:, :, None, :]  # (R, n_x, 1, d): T_0 = X, no noise
    with torch.no_grad():
        for i, (w, b) in enumerate(layers):
            centres = phi(torch.matmul(prev, torch.from_numpy(w)[:, None]) + torch.from_numpy(b)[:, None, None])
            samples = _samples(centres, sigma, n_mc, seed, 2 * i)
            d_xt, d_ty = _integrands(centres, samples, sigma, log_px, t_log_pxy, t_pyx)
            out[0, i], out[2, i] = _estimate(d_xt, t_px)
            out[1, i], out[3, i] = _estimate(d_ty, t_px)
            if i + 1 < len(layers):  # n_draws noisy samples of T_l per pattern feed layer l + 1
                draws = centres.expand(r, n_x, n_draws, centres.shape[-1]) if centres.shape[2] == 1 else centres
                noise = _normal(seed, 2 * i + 1, r, draws.shape[1:])
                prev = draws + sigma * torch.from_numpy(noise)
    return NoisyNetworkResult(I_XT=out[0], I_TY=out[1], I_XT_se=out[2], I_TY_se=out[3], sigma=sigma,
                              n_draws=n_draws, n_mc=n_mc)
