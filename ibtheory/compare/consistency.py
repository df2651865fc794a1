"""Self-consistency of a layer with the IB equations, with a fitted beta.

The IB encoder equation (Tishby, Pereira & Bialek 1999) says p(t|x) = q_beta(t|x) with

    q_beta(t|x) = p(t) exp(-beta d(x,t)) / Z(x, beta),   d(x,t) = KL[p(y|x) || p(y|t)]  (nats),

where p(t) and p(y|t) are the layer's own marginal and Markov decoder.  The mismatch

    M(beta) = sum_x p(x) KL[p(t|x) || q_beta(t|x)]
            = I(X;T) + beta E_{p(x,t)}[d(x,t)] + sum_x p(x) ln Z(x, beta)     (nats; reported in bits)

is *convex* in beta: ln Z is a log-sum-exp of functions affine in beta.  M(0) = I(X;T), and
M'(beta) = E_{p(x,t)}[d] - E_{p(x) q_beta(t|x)}[d] is increasing, so beta* = argmin M is the root of M' (Brent's
method on log beta), or an end of [beta_min, beta_max] when M' keeps one sign there (``at_bound``).  The fit is
therefore global.  Z and the q-average of d depend on t only through the column d(., t), so states with equal
decoders p(y|t) are pooled exactly before the search (a binned 4096-state layer has a few dozen distinct decoders).
This is the minimal sufficient statistic of T for Y with *exact* equality, not the 12-decimal rounding of
``ibtheory.ib.reduce``: d(x,t) depends on ln p(y|t), so decoders [1 - 1e-13, 1e-13] and [1 - 2e-13, 2e-13], equal
to 12 decimals, give columns d(., t) that differ by ln 2 nats for a class with p(y|x) near [0, 1].
M(beta*) = 0 exactly when the layer is an IB stationary point; a deterministic encoder that maps
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

from .._validate import real, show
from ..info import LN2
from .encoders import LayerEncoder

__all__ = ["SelfConsistency", "mismatch", "self_consistency"]


@dataclass(frozen=True)
class SelfConsistency:
    """beta*, the mismatch M(beta*) in bits, whether beta* is an end of the search range, and M(0) = I(X;T)."""

    beta_star: float
    mismatch: float
    at_bound: bool
    mismatch_at_zero: float


class _Pooled:
    """The layer's states pooled over identical decoders p(y|t) (hence identical columns d(., t)): Z(c, beta) and
    the q-average of d depend on t only through d(., t), so sum_t p(t) exp(-beta d(c,t)) = sum_g p(g) exp(-beta
    d(c,g)) exactly, with p(g) the total p(t) of the states of decoder g.  Binned encoders of wide layers hold
    thousands of states but at most as many distinct columns as decoders (39 for the soft paper task at the first
    layers).  Bitwise equality on purpose (see the module docstring)."""

    __slots__ = ("log_p", "d", "d_finite", "p_c")

    def __init__(self, layer: LayerEncoder) -> None:
        # equal decoders p(y|t) give equal columns d(., t); group on the decoder rows' bytes (one 1-D sort)
        dec = np.ascontiguousarray(layer.decoder)
        keys = dec.view(np.dtype((np.void, dec.dtype.itemsize * dec.shape[1]))).ravel()
        _, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
        self.log_p = np.log(np.bincount(inverse.ravel(), weights=layer.p_t, minlength=first.size))
        self.d = np.ascontiguousarray(layer.distortion[:, first])  # (n_c, n_g), may hold inf
        self.d_finite = np.where(np.isfinite(self.d), self.d, 0.0)
        self.p_c = layer.p_c

    def mean_d(self, beta: float) -> np.ndarray:
        """E_{q_beta(t|c)}[d(c, t)] (nats) for every class c, beta > 0 (q = 0 exactly where d = inf)."""
        a = self.log_p[None, :] - beta * self.d
        e = np.exp(a - a.max(axis=1, keepdims=True))
        return (e * self.d_finite).sum(axis=1) / e.sum(axis=1)

    def log_z(self, beta: float) -> np.ndarray:
        """ln Z(c, beta) = ln sum_t p(t) exp(-beta d(c, t)) for every class c (nats; Z(c, 0) = 1)."""
        if beta == 0:
            return np.zeros(self.p_c.size)
        return logsumexp(self.log_p[None, :] - beta * self.d, axis=1)


def mismatch(layer: LayerEncoder, beta: float) -> float:
    """M(beta) = sum_x p(x) KL[p(t|x) || p(t) exp(-beta d(x,t)) / Z(x,beta)] in bits (>= 0; see module doc).

    >>> from ibtheory.compare import layer_encoder
    >>> round(mismatch(layer_encoder([[0.5, 0.0], [0.0, 0.5]], [[1.0, 0.0], [0.0, 1.0]]), 0.0), 12)
    1.0
    """
    beta = real(beta, "beta", 0.0)
    return _mismatch(_Pooled(layer), layer, beta)


def _mismatch(red: _Pooled, layer: LayerEncoder, beta: float) -> float:
    nats = layer.I_XT * LN2 + beta * layer.expected_distortion + float(red.p_c @ red.log_z(beta))
    return float(max(nats, 0.0) / LN2)


def _slope(red: _Pooled, expected_distortion: float, beta: float) -> float:
    """M'(beta) in nats: E_{p(x,t)}[d] - E_{p(x) q_beta(t|x)}[d]; increasing in beta (beta > 0)."""
    return expected_distortion - float(red.p_c @ red.mean_d(beta))


def self_consistency(
    layer: LayerEncoder, beta_min: float = 1e-3, beta_max: float = 1e5, xtol: float = 1e-12
) -> SelfConsistency:
    """Fit beta* = argmin_beta M(beta) on [beta_min, beta_max] (0 < beta_min < beta_max, finite) to ``xtol`` (> 0)
    on log beta; report M(beta*) in bits (see module doc)."""
    beta_min = real(beta_min, "beta_min", 0.0, low_open=True)
    beta_max = real(beta_max, "beta_max", 0.0, low_open=True)
    xtol = real(xtol, "xtol", 0.0, low_open=True)
    if not beta_min < beta_max:
        raise ValueError(f"beta_max must be greater than beta_min, got beta_min={show(beta_min)}, "
                         f"beta_max={show(beta_max)}")
    red = _Pooled(layer)
    e_d = layer.expected_distortion
    if _slope(red, e_d, beta_min) >= 0:
        beta, at_bound = beta_min, True
    elif _slope(red, e_d, beta_max) <= 0:
        beta, at_bound = beta_max, True
    else:
        root = brentq(lambda s: _slope(red, e_d, float(np.exp(s))), np.log(beta_min), np.log(beta_max), xtol=xtol)
        beta, at_bound = float(np.exp(root)), False
    return SelfConsistency(float(beta), float(_mismatch(red, layer, beta)), bool(at_bound), float(layer.I_XT))
