"""Sampling laws with known mutual information, the objects the conformance strategies draw.

A *law* is a small, frozen description of a joint distribution of (X, Y) with ``law.sample(n, seed)`` returning a
:class:`Sample` (x of shape (n, d_x), y of shape (n, d_y)) and, where it is known in closed form or by exact
quadrature, the true ``law.mi`` = I(X;Y) in bits.  Laws are tiny (a few numbers), so hypothesis shrinks them
quickly and a counterexample prints as a readable, reproducible recipe: the law's ``repr`` plus ``n`` and ``seed``.

Kinds of data (``x_kind`` / ``y_kind``): ``"discrete"`` (integer codes) or ``"continuous"`` (floats).

=====================  =========  ==========  ====================================================================
law                    x_kind     y_kind      I(X;Y) in bits
=====================  =========  ==========  ====================================================================
DiscreteLaw(p_xy)      discrete   discrete    exact: sum p log2 p/(p_x p_y) of the table
LayerLaw               continuous discrete    exact when noise = 0: I(T;Y) with T = tanh(gain x W + b) a
                                              deterministic map of a discrete bit pattern X (identical rows merged)
NoisyChannelLaw        continuous discrete    T = tanh(mu_Y + sigma Z): quadrature of sum_k p_k KL(N(mu_k) || mix)
GaussianLaw(rho)       continuous continuous  -1/2 sum_i log2(1 - rho_i^2) (independent correlated pairs)
Swapped(law)           y_kind     x_kind      law.mi (x and y exchanged)
MultinormalLaw,        continuous continuous  the reference benchmark of Czyz et al. 2023 (normals with dense and
StudentLaw,                                   2-pair correlations, Student-t, additive uniform noise, and MI-keeping
AdditiveUniformLaw,                           transforms of them): closed forms, defined in
TransformedLaw                                :mod:`ibtheory.testing.benchmark_laws`, importable from here too
=====================  =========  ==========  ====================================================================

References
----------
1. T. M. Cover and J. A. Thomas, *Elements of Information Theory*, 2nd ed., Wiley 2006, ch. 8-9 (Gaussian MI).
2. A. M. Saxe et al., "On the information bottleneck theory of deep learning", ICLR 2018 (layer-like activations
   of discrete inputs; binning measures geometry).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .._validate import show
from ..info import LN2, mutual_information
from ._sample import Sample, law_class, law_sample
from .benchmark_laws import AdditiveUniformLaw as AdditiveUniformLaw  # the benchmark families, importable from here
from .benchmark_laws import MultinormalLaw as MultinormalLaw
from .benchmark_laws import StudentLaw as StudentLaw
from .benchmark_laws import TransformedLaw as TransformedLaw

__all__ = [
    "Sample",
    "DiscreteLaw",
    "LayerLaw",
    "NoisyChannelLaw",
    "GaussianLaw",
    "Swapped",
    "ChainLaw",
    "Processing",
    "MonotoneTransform",
    "gaussian_mi_bits",
    "noisy_channel_mi_bits",
]


def _fmt(a: np.ndarray) -> str:
    """One-line repr of an array (4 significant decimals), rows of a table on the same line."""
    text = np.array2string(np.asarray(a), precision=4, separator=", ", max_line_width=10**6)
    return " ".join(text.split())


def _categorical(rng: np.random.Generator, p: np.ndarray, n: int) -> np.ndarray:
    """n draws of indices 0..len(p)-1 with probabilities p (inverse-CDF, vectorised)."""
    c = np.cumsum(p)
    return np.minimum(np.searchsorted(c / c[-1], rng.random(n), side="right"), p.size - 1)


@law_class("discrete", "discrete")
class DiscreteLaw:
    """(X, Y) ~ p_xy (n_x, n_y); codes 0..n_x-1 and 0..n_y-1 as (n, 1) integer arrays."""

    p_xy: np.ndarray

    @property
    def mi(self) -> float:
        return mutual_information(self.p_xy, normalize=True)

    def sample(self, n: int, seed: int) -> Sample:
        rng = np.random.default_rng(seed)
        p = self.p_xy / self.p_xy.sum()
        cells = _categorical(rng, p.ravel(), n)
        x, y = np.divmod(cells, p.shape[1])
        return law_sample(self, x[:, None], y[:, None], n, seed)

    def __repr__(self) -> str:
        return f"DiscreteLaw(p_xy={_fmt(self.p_xy)})"


def _patterns(bits: int) -> np.ndarray:
    r = np.arange(2**bits)[:, None]
    return ((r >> (bits - 1 - np.arange(bits))[None, :]) & 1).astype(np.float64)


@law_class("continuous", "discrete")
class LayerLaw:
    """Layer-like activations of a discrete input: X ~ p_x over the 2^bits bit patterns, Y ~ p(y|x), and
    T = tanh(gain * pattern(X) @ W + b) + noise * Z, Z standard normal (n, units).

    ``p_xy`` has shape (2^bits, n_y); ``weights`` (bits, units); ``bias`` (units,).  With ``noise = 0`` T is a
    deterministic function of X and I(T;Y) is exact: the joint of (T, Y) merges the patterns with identical rows.
    """

    p_xy: np.ndarray
    weights: np.ndarray
    bias: np.ndarray
    gain: float = 1.0
    noise: float = 0.0

    def activations(self) -> np.ndarray:
        """The noiseless activation of every pattern, shape (2^bits, units)."""
        bits = self.weights.shape[0]
        return np.tanh(self.gain * _patterns(bits) @ self.weights + self.bias)

    @property
    def mi(self) -> float | None:
        if self.noise > 0:
            return None
        _, t = np.unique(np.round(self.activations(), 12), axis=0, return_inverse=True)
        p = self.p_xy / self.p_xy.sum()
        joint = np.zeros((t.max() + 1, p.shape[1]))
        np.add.at(joint, t.ravel(), p)
        return mutual_information(joint)

    def sample(self, n: int, seed: int) -> Sample:
        rng = np.random.default_rng(seed)
        p = self.p_xy / self.p_xy.sum()
        cells = _categorical(rng, p.ravel(), n)
        xi, y = np.divmod(cells, p.shape[1])
        t = self.activations()[xi]
        if self.noise > 0:
            t = t + self.noise * rng.standard_normal(t.shape)
        return law_sample(self, t, y[:, None], n, seed)

    def __repr__(self) -> str:
        return (f"LayerLaw(p_xy={_fmt(self.p_xy)}, weights={_fmt(self.weights)}, bias={_fmt(self.bias)}, "
                f"gain={self.gain:.4g}, noise={self.noise:.4g})")


def noisy_channel_mi_bits(p_y: np.ndarray, mu: np.ndarray, sigma: float, grid: int = 20001) -> float:
    """I(U;Y) in bits for U = mu_Y + sigma Z, Y ~ p_y, Z ~ N(0, 1), by trapezoidal quadrature.

    I = sum_k p_k int N(u; mu_k, sigma^2) log2[N(u; mu_k, sigma^2) / m(u)] du, m = sum_k p_k N(u; mu_k, sigma^2),
    on a grid of ``grid`` points over [min mu - 12 sigma, max mu + 12 sigma] (error far below 1e-6 bits).  A strictly
    monotone map of U (such as tanh) leaves I unchanged.

    >>> round(noisy_channel_mi_bits(np.array([0.5, 0.5]), np.array([-50.0, 50.0]), 1.0), 6)
    1.0
    """
    p = np.asarray(p_y, dtype=np.float64)
    p = p / p.sum()
    mu = np.asarray(mu, dtype=np.float64)
    u = np.linspace(mu.min() - 12 * sigma, mu.max() + 12 * sigma, grid)
    log_n = -0.5 * ((u[None, :] - mu[:, None]) / sigma) ** 2 - np.log(sigma * np.sqrt(2 * np.pi))  # (k, grid)
    with np.errstate(divide="ignore"):
        log_m = np.logaddexp.reduce(np.log(p)[:, None] + log_n, axis=0)
    integrand = np.sum(p[:, None] * np.exp(log_n) * (log_n - log_m[None, :]), axis=0)
    return float(max(np.trapezoid(integrand, u) / LN2, 0.0))


@law_class("continuous", "discrete")
class NoisyChannelLaw:
    """Additive Gaussian noise channel read through a tanh unit: Y ~ p_y, T = tanh(mu_Y + sigma Z), shape (n, 1)."""

    p_y: np.ndarray
    mu: np.ndarray
    sigma: float

    @property
    def mi(self) -> float:
        return noisy_channel_mi_bits(self.p_y, self.mu, self.sigma)

    def sample(self, n: int, seed: int) -> Sample:
        rng = np.random.default_rng(seed)
        y = _categorical(rng, self.p_y / self.p_y.sum(), n)
        t = np.tanh(self.mu[y] + self.sigma * rng.standard_normal(n))
        return law_sample(self, t[:, None], y[:, None], n, seed)

    def __repr__(self) -> str:
        return f"NoisyChannelLaw(p_y={_fmt(self.p_y)}, mu={_fmt(self.mu)}, sigma={self.sigma:.4g})"


def gaussian_mi_bits(rho: np.ndarray) -> float:
    """I(X;Y) = -1/2 sum_i log2(1 - rho_i^2) bits for d independent standard normal pairs with correlations rho_i.

    >>> round(gaussian_mi_bits(np.array([np.sqrt(0.75)])), 12)
    1.0
    """
    r = np.asarray(rho, dtype=np.float64)
    return float(-0.5 * np.sum(np.log1p(-(r**2))) / LN2)


@law_class("continuous", "continuous")
class GaussianLaw:
    """X, Y in R^d, X_i = Z_i, Y_i = rho_i Z_i + sqrt(1 - rho_i^2) Z'_i, all Z independent standard normal."""

    rho: np.ndarray

    @property
    def dim_x(self) -> int:
        return int(np.size(self.rho))

    @property
    def dim_y(self) -> int:
        return int(np.size(self.rho))

    @property
    def mi(self) -> float:
        return gaussian_mi_bits(self.rho)

    def sample(self, n: int, seed: int) -> Sample:
        rng = np.random.default_rng(seed)
        z = rng.standard_normal((2, n, self.rho.size))
        y = self.rho * z[0] + np.sqrt(1 - self.rho**2) * z[1]
        return law_sample(self, z[0], y, n, seed)

    def __repr__(self) -> str:
        return f"GaussianLaw(rho={_fmt(self.rho)})"


@dataclass(frozen=True, repr=False)
class Swapped:
    """The law with X and Y exchanged (for estimators whose discrete argument comes first)."""

    law: object

    @property
    def x_kind(self) -> str:
        return self.law.y_kind

    @property
    def y_kind(self) -> str:
        return self.law.x_kind

    @property
    def mi(self) -> float | None:
        return self.law.mi

    def sample(self, n: int, seed: int) -> Sample:
        s = self.law.sample(n, seed)
        return Sample(s.y, s.x, s.mi, f"Swapped({s.recipe})")

    def __repr__(self) -> str:
        return f"Swapped({self.law!r})"


@dataclass(frozen=True, repr=False)
class ChainLaw:
    """A discrete Markov chain X -> T1 -> T2: p_x (n_x,), p(t1|x) (n_x, n_t1), p(t2|t1) (n_t1, n_t2).

    ``sample(n, seed)`` returns codes x, t1, t2, each (n, 1); ``mi`` gives the exact (I(X;T1), I(X;T2)) in bits,
    which obey the data-processing inequality I(X;T1) >= I(X;T2).
    """

    p_x: np.ndarray
    p_t1_x: np.ndarray
    p_t2_t1: np.ndarray

    @property
    def mi(self) -> tuple[float, float]:
        joint1 = self.p_x[:, None] * self.p_t1_x
        return mutual_information(joint1, normalize=True), mutual_information(joint1 @ self.p_t2_t1, normalize=True)

    def sample(self, n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        rng = np.random.default_rng(seed)
        x = _categorical(rng, self.p_x, n)
        # inverse-CDF per row, vectorised over the samples
        t1 = (rng.random(n)[:, None] > np.cumsum(self.p_t1_x, axis=1)[x]).sum(axis=1)
        t1 = np.minimum(t1, self.p_t1_x.shape[1] - 1)
        t2 = (rng.random(n)[:, None] > np.cumsum(self.p_t2_t1, axis=1)[t1]).sum(axis=1)
        t2 = np.minimum(t2, self.p_t2_t1.shape[1] - 1)
        return x[:, None], t1[:, None], t2[:, None]

    def __repr__(self) -> str:
        return f"ChainLaw(p_x={_fmt(self.p_x)}, p_t1_x={_fmt(self.p_t1_x)}, p_t2_t1={_fmt(self.p_t2_t1)})"


@dataclass(frozen=True, repr=False)
class Processing:
    """A processing step T2 = g(T1) of a Markov chain Y -> T1 -> T2.

    Discrete T1 (codes): ``table`` maps code c to ``table[c % len(table)]`` (a deterministic, usually merging map).
    Continuous T1 (n, units): T2 = tanh(T1 @ W + bias) + noise * Z, the next layer of a network, where W takes
    the rows of ``weights`` (k, units_out) cyclically, W[i] = weights[i mod k], to fit any input width.
    """

    table: np.ndarray | None = None
    weights: np.ndarray | None = None
    bias: np.ndarray | None = None
    noise: float = 0.0

    def __call__(self, t1: np.ndarray, seed: int) -> np.ndarray:
        if self.table is not None:
            codes = np.unique(t1, axis=0, return_inverse=True)[1].ravel()
            return self.table[codes % self.table.size][:, None]
        d_in = t1.shape[1]
        w = self.weights[np.arange(d_in) % self.weights.shape[0]]
        t2 = np.tanh(t1 @ w + self.bias)
        if self.noise > 0:
            t2 = t2 + self.noise * np.random.default_rng(seed).standard_normal(t2.shape)
        return t2

    def __repr__(self) -> str:
        if self.table is not None:
            return f"Processing(table={_fmt(self.table)})"
        return f"Processing(weights={_fmt(self.weights)}, bias={_fmt(self.bias)}, noise={self.noise:.4g})"


@dataclass(frozen=True, repr=False)
class MonotoneTransform:
    """A strictly increasing map applied elementwise: ``affine`` a x + b (a > 0), or ``cube`` x^3 + a x, ``sinh``
    sinh(a x), ``exp`` exp(a x) (a > 0)."""

    kind: str
    a: float
    b: float = 0.0

    def __call__(self, v: np.ndarray) -> np.ndarray:
        v = np.asarray(v, dtype=np.float64)
        if self.kind == "affine":
            return self.a * v + self.b
        if self.kind == "cube":
            return v**3 + self.a * v
        if self.kind == "sinh":
            return np.sinh(self.a * v)
        if self.kind == "exp":
            return np.exp(self.a * v)
        raise ValueError(f"kind must be 'affine', 'cube', 'sinh' or 'exp', got {show(self.kind)}")

    def __repr__(self) -> str:
        text = {"affine": f"{self.a:.4g} v + {self.b:.4g}", "cube": f"v^3 + {self.a:.4g} v",
                "sinh": f"sinh({self.a:.4g} v)", "exp": f"exp({self.a:.4g} v)"}[self.kind]
        return f"v -> {text}"
