"""Self-consistency of a layer with the IB equations, with a fitted beta.

The IB encoder equation (Tishby, Pereira & Bialek 1999) says p(t|x) = q_beta(t|x) with

    q_beta(t|x) = p(t) exp(-beta d(x,t)) / Z(x, beta),   d(x,t) = KL[p(y|x) || p(y|t)]  (nats),

where p(t) and p(y|t) are the layer's own marginal and Markov decoder.  The mismatch

    M(beta) = sum_x p(x) KL[p(t|x) || q_beta(t|x)]
            = I(X;T) + beta E_{p(x,t)}[d(x,t)] + sum_x p(x) ln Z(x, beta)     (nats; reported in bits)

is *convex* in beta: ln Z is a log-sum-exp of functions affine in beta.  M(0) = I(X;T), and
M'(beta) = E_{p(x,t)}[d] - E_{p(x) q_beta(t|x)}[d] is increasing, so beta* = argmin M is the root of M' (Brent's
method on log beta), or an end of [beta_min, beta_max] when M' keeps one sign there (``at_bound``).  The fit is
therefore global.  M(beta*) = 0 exactly when the layer is an IB stationary point; a deterministic encoder that maps
every x to its closest decoder reaches M -> 0 only as beta -> infinity.

References
----------
1. N. Tishby, F. C. Pereira, W. Bialek, "The information bottleneck method", 1999.
2. R. Shwartz-Ziv and N. Tishby, "Opening the black box of deep neural networks via information", 2017, claim (iii).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import brentq
from scipy.special import logsumexp

from .encoders import LayerEncoder

__all__ = ["SelfConsistency", "mismatch", "self_consistency"]

_LN2 = np.log(2.0)


@dataclass(frozen=True)
class SelfConsistency:
    """beta*, the mismatch M(beta*) in bits, whether beta* is an end of the search range, and M(0) = I(X;T)."""

    beta_star: float
    mismatch: float
    at_bound: bool
    mismatch_at_zero: float


def _log_z(layer: LayerEncoder, beta: float) -> np.ndarray:
    """ln Z(c, beta) = ln sum_t p(t) exp(-beta d(c, t)) for every class c of equal p(y|x) (nats; Z(c, 0) = 1)."""
    if beta == 0:
        return np.zeros(layer.p_c.size)
    return logsumexp(np.log(layer.p_t)[None, :] - beta * layer.distortion, axis=1)


def mismatch(layer: LayerEncoder, beta: float) -> float:
    """M(beta) = sum_x p(x) KL[p(t|x) || p(t) exp(-beta d(x,t)) / Z(x,beta)] in bits (>= 0; see module doc).

    >>> from ibtheory.compare import layer_encoder
    >>> round(mismatch(layer_encoder([[0.5, 0.0], [0.0, 0.5]], [[1.0, 0.0], [0.0, 1.0]]), 0.0), 12)
    1.0
    """
    if not (np.isfinite(beta) and beta >= 0):
        raise ValueError(f"beta must be a finite number >= 0, got {beta!r}")
    nats = layer.I_XT * _LN2 + beta * layer.expected_distortion + float(layer.p_c @ _log_z(layer, beta))
    return max(nats, 0.0) / _LN2


def _slope(layer: LayerEncoder, beta: float) -> float:
    """M'(beta) in nats: E_{p(x,t)}[d] - E_{p(x) q_beta(t|x)}[d]; increasing in beta."""
    log_q = np.log(layer.p_t)[None, :] - beta * layer.distortion - _log_z(layer, beta)[:, None]
    q = np.exp(log_q)  # q = 0 exactly where d = inf
    finite_d = np.where(q > 0, layer.distortion, 0.0)
    return layer.expected_distortion - float(layer.p_c @ np.sum(q * finite_d, axis=1))


def self_consistency(
    layer: LayerEncoder, beta_min: float = 1e-3, beta_max: float = 1e5, xtol: float = 1e-12
) -> SelfConsistency:
    """Fit beta* = argmin_beta M(beta) on [beta_min, beta_max]; report M(beta*) in bits (see module doc)."""
    if not (0 < beta_min < beta_max < np.inf):
        raise ValueError(f"need 0 < beta_min < beta_max < inf, got beta_min={beta_min!r}, beta_max={beta_max!r}")
    if _slope(layer, beta_min) >= 0:
        beta, at_bound = beta_min, True
    elif _slope(layer, beta_max) <= 0:
        beta, at_bound = beta_max, True
    else:
        root = brentq(lambda s: _slope(layer, float(np.exp(s))), np.log(beta_min), np.log(beta_max), xtol=xtol)
        beta, at_bound = float(np.exp(root)), False
    return SelfConsistency(float(beta), float(mismatch(layer, beta)), bool(at_bound), float(layer.I_XT))
