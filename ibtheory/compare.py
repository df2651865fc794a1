"""Layers against the IB bound: distance to the curve and self-consistency with a fitted beta.

A layer T of a network trained on a task with exact p(x, y) defines an encoder p(t|x) (deterministic from binned
activations, stochastic from the ensemble of repeats or from a noisy layer T = h(X) + noise) and, through the
Markov chain Y - X - T, the decoder p(y|t) = sum_x p(y|x) p(x|t).  This module measures how far such a layer is from
the Information Bottleneck optimum of the same p(x, y):

- **Distance to the bound.** With F(R) = max {I(T;Y) : I(X;T) <= R} (``ibtheory.ib.curve_value``), the
  *relevance gap* F(I(X;T)) - I(T;Y) and the *compression gap* I(X;T) - F^-1(I(T;Y)), both >= 0 for any real
  encoder, in bits.  Where the curve carries a certified upper edge, F_upper(I(X;T)) - I(T;Y) too.
- **Self-consistency.** The IB equations say p(t|x) = q_beta(t|x) = p(t) exp(-beta d(x,t)) / Z(x, beta) with
  d(x,t) = KL[p(y|x) || p(y|t)].  The mismatch

      M(beta) = sum_x p(x) KL[p(t|x) || q_beta(t|x)]
              = I(X;T) + beta E[d(X,T)] + sum_x p(x) ln Z(x, beta)          (nats; reported in bits)

  is *convex* in beta (ln Z is a log-sum-exp of functions linear in beta), with M(0) = I(X;T) and
  M'(beta) = E_{p(x,t)}[d] - E_{p(x) q_beta(t|x)}[d] increasing.  beta* = argmin M is found by Brent's root search
  on M' over [beta_min, beta_max] (or is an end point when M' does not change sign there), so the fit is global,
  not "convex in practice".  M(beta*) = 0 exactly when the layer is an IB stationary point.

Everything over x is reduced to the classes of equal p(y|x) (d depends on x only through p(y|x)), and encoders are
scipy sparse matrices, so a 4096-pattern layer with thousands of occupied bins costs milliseconds.

References
----------
1. N. Tishby, F. C. Pereira, W. Bialek, "The information bottleneck method", 1999.
2. R. Shwartz-Ziv and N. Tishby, "Opening the black box of deep neural networks via information", 2017, claim (iii).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from numpy.typing import ArrayLike
from scipy.optimize import brentq
from scipy.special import logsumexp

from .info import mutual_information, validate_distribution
from .tasks import conditional, sufficient_classes

__all__ = [
    "LayerEncoder",
    "SelfConsistency",
    "encoder_from_codes",
    "encoder_from_table",
    "layer_encoder",
    "binned_encoder",
    "ensemble_encoder",
    "noisy_encoder",
    "self_consistency",
    "mismatch",
]

_LN2 = np.log(2.0)


@dataclass(frozen=True)
class LayerEncoder:
    """A layer's encoder p(t|x) on the task's x, with the quantities the IB equations need.

    Attributes
    ----------
    encoder : scipy.sparse.csr_matrix, shape (n_x, n_t)
        p(t|x), rows sum to 1 (only occupied t are kept).
    p_t : ndarray (n_t,)
    decoder : ndarray (n_t, n_y)
        p(y|t) = sum_x p(y|x) p(x|t) (the Markov-chain decoder).
    I_XT, I_TY : float
        bits.
    distortion : ndarray (n_c, n_t)
        d(c, t) = KL[p(y|c) || p(y|t)] in nats for each class c of equal p(y|x) (inf where p(y|t) = 0 < p(y|c)).
    p_c : ndarray (n_c,)
        probability of each class.
    expected_distortion : float
        E_{p(x,t)}[d(x,t)] in nats (equals (I(X;Y) - I(T;Y)) ln 2 for the Markov decoder).
    """

    encoder: sp.csr_matrix
    p_t: np.ndarray
    decoder: np.ndarray
    I_XT: float
    I_TY: float
    distortion: np.ndarray
    p_c: np.ndarray
    expected_distortion: float


@dataclass(frozen=True)
class SelfConsistency:
    """Result of :func:`self_consistency`: beta*, the mismatch M(beta*) in bits, and whether beta* hit a bound."""

    beta_star: float
    mismatch: float
    at_bound: bool
    mismatch_at_zero: float


def encoder_from_codes(codes: ArrayLike) -> sp.csr_matrix:
    """p(t|x) from integer state codes: ``codes`` (n_x,) for a deterministic encoder t = codes[x], or
    (n_draws, n_x) for a stochastic one pooled over draws (ensemble repeats or noise samples):
    p(t|x) = #{k : codes[k, x] = t} / n_draws.  States are renumbered 0..n_t-1 in sorted code order.
    """
    c = np.asarray(codes)
    if c.ndim == 1:
        c = c[None, :]
    if c.ndim != 2 or c.size == 0 or not np.issubdtype(c.dtype, np.integer):
        raise ValueError(f"codes must be a non-empty integer array (n_x,) or (n_draws, n_x), got {c.dtype} {c.shape}")
    n_draws, n_x = c.shape
    uniq, t = np.unique(c, return_inverse=True)
    rows = np.broadcast_to(np.arange(n_x), c.shape).ravel()
    enc = sp.coo_matrix((np.full(c.size, 1.0 / n_draws), (rows, t.ravel())), shape=(n_x, uniq.size))
    return enc.tocsr()


def binned_encoder(
    activations: ArrayLike, n_bins: int = 30, limits=(-1.0, 1.0), scheme: str = "width"
) -> sp.csr_matrix:
    """Deterministic encoder of one network's layer: p(t|x) = [B(h(x)) = t] for binned activations (n_x, units).

    The binning is ``ibtheory.estimators.binning.binned_codes`` (the estimator's own encoder).
    """
    from .estimators.binning import binned_codes

    a = np.asarray(activations)
    if a.ndim != 2:
        raise ValueError(f"activations must have shape (n_x, units) for one network, got {a.shape}")
    return encoder_from_codes(binned_codes(a, n_bins=n_bins, limits=limits, scheme=scheme))


def ensemble_encoder(
    activations: ArrayLike, n_bins: int = 30, limits=(-1.0, 1.0), scheme: str = "width"
) -> sp.csr_matrix:
    """Stochastic encoder pooled over an ensemble: activations (n_repeats, n_x, units) binned on one shared grid,
    p(t|x) = (1/R) #{r : B(h_r(x)) = t} (the "extended" ensemble encoder of Shwartz-Ziv & Tishby 2017).
    """
    from .estimators.binning import binned_codes

    a = np.asarray(activations)
    if a.ndim != 3:
        raise ValueError(f"activations must have shape (n_repeats, n_x, units), got {a.shape}")
    codes = binned_codes(a.reshape(-1, a.shape[-1]), n_bins=n_bins, limits=limits, scheme=scheme)
    return encoder_from_codes(codes.reshape(a.shape[:2]))


def noisy_encoder(
    activations: ArrayLike,
    sigma: float = 0.1,
    n_draws: int = 64,
    seed: int | np.random.Generator | None = 0,
    n_bins: int = 30,
    limits=(-1.0, 1.0),
) -> sp.csr_matrix:
    """Stochastic encoder of a noisy layer T = h(X) + N(0, sigma^2 I), sampled: ``n_draws`` noise draws per
    pattern, binned on the equal-width grid, pooled: p(t|x) = #{k : B(h(x) + sigma z_k) = t} / n_draws.

    activations: (n_x, units) of one network.  The sampled table converges to the quadrature
    prod_u [Phi((b_hi - h_u)/sigma) - Phi((b_lo - h_u)/sigma)] as n_draws grows (error O(n_draws^-1/2) per cell).
    """
    from .estimators.binning import binned_codes

    a = np.asarray(activations, dtype=np.float64)
    if a.ndim != 2:
        raise ValueError(f"activations must have shape (n_x, units) for one network, got {a.shape}")
    if not (np.isfinite(sigma) and sigma > 0):
        raise ValueError(f"sigma must be a positive noise standard deviation, got {sigma!r}")
    if int(n_draws) != n_draws or n_draws < 1:
        raise ValueError(f"n_draws must be a positive integer, got {n_draws!r}")
    rng = np.random.default_rng(seed)
    noisy = a[None] + sigma * rng.standard_normal((int(n_draws),) + a.shape)
    codes = binned_codes(noisy.reshape(-1, a.shape[-1]), n_bins=n_bins, limits=limits)
    return encoder_from_codes(codes.reshape(noisy.shape[:2]))


def encoder_from_table(table: ArrayLike, name: str = "encoder") -> sp.csr_matrix:
    """Validate a dense or sparse p(t|x) table (n_x, n_t): non-negative, finite, rows summing to 1 (1e-8)."""
    enc = sp.csr_matrix(table, dtype=np.float64)
    data = enc.data
    if enc.shape[0] == 0 or enc.shape[1] == 0:
        raise ValueError(f"{name} must be a non-empty (n_x, n_t) table, got shape {enc.shape}")
    if not np.all(np.isfinite(data)) or np.any(data < 0):
        raise ValueError(f"{name} must have finite non-negative entries")
    rows = np.asarray(enc.sum(axis=1)).ravel()
    bad = np.flatnonzero(np.abs(rows - 1.0) > 1e-8)
    if bad.size:
        raise ValueError(f"{name} rows must sum to 1; row {bad[0]} sums to {rows[bad[0]]!r}")
    return enc


def layer_encoder(p_xy: ArrayLike, encoder: ArrayLike | sp.spmatrix) -> LayerEncoder:
    """Everything the bound and the IB equations need about a layer's encoder p(t|x) on the task ``p_xy``.

    ``encoder``: a table (n_x, n_t) (dense or sparse; see :func:`encoder_from_codes` for codes).

    >>> enc = layer_encoder([[0.5, 0.0], [0.0, 0.5]], np.eye(2))
    >>> round(enc.I_XT, 12), round(enc.I_TY, 12)
    (1.0, 1.0)
    """
    p = validate_distribution(p_xy, "p_xy", ndim=2)
    enc = encoder_from_table(encoder)
    if enc.shape[0] != p.shape[0]:
        raise ValueError(f"encoder has {enc.shape[0]} rows but p_xy has n_x = {p.shape[0]}")
    p_x, p_y_x = conditional(p)
    p_xt = sp.diags(p_x) @ enc
    p_t = np.asarray(p_xt.sum(axis=0)).ravel()
    keep = p_t > 0
    enc, p_xt, p_t = enc[:, keep], p_xt[:, keep], p_t[keep]
    p_ty = np.asarray(enc.T @ p)  # (n_t, n_y)
    decoder = p_ty / p_t[:, None]
    coo = p_xt.tocoo()
    i_xt = float(np.sum(coo.data * np.log(coo.data / (p_x[coo.row] * p_t[coo.col]))) / _LN2)
    classes = sufficient_classes(p)
    n_c = classes.max() + 1
    p_c = np.bincount(classes, weights=p_x, minlength=n_c)
    w = np.zeros((n_c, p.shape[1]))
    w[classes] = p_y_x
    with np.errstate(divide="ignore", invalid="ignore"):
        log_ratio = np.where(w[:, None, :] > 0, np.log(w[:, None, :]) - np.log(decoder[None, :, :]), 0.0)
    distortion = np.sum(np.where(w[:, None, :] > 0, w[:, None, :] * log_ratio, 0.0), axis=-1)
    distortion = np.maximum(distortion, 0.0)
    expected = float(np.sum(coo.data * distortion[classes[coo.row], coo.col]))
    return LayerEncoder(
        encoder=enc.tocsr(),
        p_t=p_t,
        decoder=decoder,
        I_XT=max(i_xt, 0.0),
        I_TY=mutual_information(p_ty / p_ty.sum()),
        distortion=distortion,
        p_c=p_c,
        expected_distortion=expected,
    )


def _log_z(layer: LayerEncoder, beta: float) -> np.ndarray:
    """ln Z(c, beta) = ln sum_t p(t) exp(-beta d(c, t)) for every class c (nats)."""
    with np.errstate(invalid="ignore"):
        expo = np.log(layer.p_t)[None, :] - beta * layer.distortion
    expo = np.where(np.isnan(expo), -np.inf, expo)  # 0 * inf at beta = 0 cannot occur for beta > 0; keep safe
    return logsumexp(expo, axis=1)


def mismatch(layer: LayerEncoder, beta: float) -> float:
    """M(beta) = sum_x p(x) KL[p(t|x) || p(t) exp(-beta d(x,t)) / Z(x,beta)] in bits (>= 0; see module doc)."""
    if not (np.isfinite(beta) and beta >= 0):
        raise ValueError(f"beta must be a finite number >= 0, got {beta!r}")
    nats = layer.I_XT * _LN2 + beta * layer.expected_distortion + float(layer.p_c @ _log_z(layer, beta))
    return max(nats, 0.0) / _LN2


def _mismatch_slope(layer: LayerEncoder, beta: float) -> float:
    """M'(beta) in nats: E_{p(x,t)}[d] - E_{p(x) q_beta(t|x)}[d], increasing in beta."""
    log_q = np.log(layer.p_t)[None, :] - beta * layer.distortion - _log_z(layer, beta)[:, None]
    q = np.exp(log_q)
    d = np.where(q > 0, layer.distortion, 0.0)
    return layer.expected_distortion - float(layer.p_c @ np.sum(q * d, axis=1))


def self_consistency(
    layer: LayerEncoder, beta_min: float = 1e-3, beta_max: float = 1e5, xtol: float = 1e-10
) -> SelfConsistency:
    """Fit beta* = argmin_beta M(beta) on [beta_min, beta_max] and report M(beta*) in bits.

    M is convex in beta, so M'(beta) is increasing: beta* is the root of M' (Brent), or ``beta_min`` when
    M'(beta_min) >= 0, or ``beta_max`` when M'(beta_max) <= 0 (``at_bound`` is then True).
    """
    if not (0 < beta_min < beta_max and np.isfinite(beta_max)):
        raise ValueError(f"need 0 < beta_min < beta_max < inf, got {beta_min!r}, {beta_max!r}")
    lo, hi = _mismatch_slope(layer, beta_min), _mismatch_slope(layer, beta_max)
    if lo >= 0:
        beta, at_bound = beta_min, True
    elif hi <= 0:
        beta, at_bound = beta_max, True
    else:
        # search in log beta: M' is increasing in beta, hence in log beta too
        root = brentq(lambda s: _mismatch_slope(layer, np.exp(s)), np.log(beta_min), np.log(beta_max), xtol=xtol)
        beta, at_bound = float(np.exp(root)), False
    return SelfConsistency(float(beta), float(mismatch(layer, beta)), bool(at_bound), float(layer.I_XT))
