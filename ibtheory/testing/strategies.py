"""Hypothesis strategies for mutual-information estimators: distributions, chains, laws, transforms.

Every float comes from ``st.floats(..., allow_subnormal=False)`` (subnormals made property tests flaky in dit) and
every random draw of samples from an explicit integer seed, so a falsifying example is a readable recipe.

Strategies
----------
- :func:`joint_distributions` -> p(x,y) tables (n_x, n_y) summing to 1: general, deterministic (one-hot rows),
  independent (outer products) and tables with near-zero (1e-12) cells.
- :func:`markov_chains` -> ``(p_x, p(t1|x), p(t2|t1))`` row-stochastic tables of X -> T1 -> T2;
  :func:`chain_laws` the same as laws that sample (x, t1, t2).
- :func:`discrete_laws`, :func:`layer_laws` (layer-like activations of a discrete X, with and without noise),
  :func:`noisy_channel_laws` (additive-noise channels), :func:`gaussian_laws` (correlated Gaussians,
  I = -1/2 log2(1 - rho^2)) -> laws of :mod:`ibtheory.testing.laws` with ``sample(n, seed)`` and the true ``mi``.
- :func:`benchmark_laws` -> the task families of Czyz et al. 2023 (:mod:`ibtheory.testing.benchmark_laws`): normals
  with dense and 2-pair correlations, Student-t (df 1-3), additive uniform noise, and their asinh, half-cube,
  normal-CDF, wiggly, bimodal and spiral transforms, each with its closed-form MI.
- :func:`laws_for` -> the laws whose (x_kind, y_kind) match an estimator's declared input kinds.
- :func:`samples` -> :class:`~ibtheory.testing.laws.Sample` draws from any law strategy.
- :func:`processings`, :func:`monotone_transforms`, :func:`seeds`.

>>> from hypothesis import given, settings
>>> @settings(max_examples=5, derandomize=True)
... @given(joint_distributions())
... def total_is_one(p):
...     assert abs(p.sum() - 1) < 1e-12
>>> total_is_one()
"""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

from .._validate import show
from .benchmark_laws import TRANSFORMS, AdditiveUniformLaw, MultinormalLaw, StudentLaw, TransformedLaw
from .laws import (
    ChainLaw,
    DiscreteLaw,
    GaussianLaw,
    LayerLaw,
    MonotoneTransform,
    NoisyChannelLaw,
    Processing,
    Sample,
    Swapped,
)

__all__ = [
    "KINDS",
    "seeds",
    "probabilities",
    "joint_distributions",
    "markov_chains",
    "chain_laws",
    "discrete_laws",
    "layer_laws",
    "noisy_channel_laws",
    "gaussian_laws",
    "benchmark_laws",
    "laws_for",
    "samples",
    "processings",
    "monotone_transforms",
]

#: The input kinds an estimator may declare for each argument.
KINDS = ("discrete", "continuous")
_NEAR_ZERO = 1e-12


def _floats(lo: float, hi: float, decimals: int = 4) -> st.SearchStrategy[float]:
    """Floats in [lo, hi] rounded to ``decimals`` places (readable counterexamples; bounds with fewer decimals stay
    respected), never subnormal."""
    raw = st.floats(lo, hi, allow_nan=False, allow_infinity=False, allow_subnormal=False)
    return raw.map(lambda v: min(max(round(v, decimals), lo), hi))


def seeds() -> st.SearchStrategy[int]:
    """Seeds for ``numpy.random.default_rng`` (shrink towards 0)."""
    return st.integers(0, 2**32 - 1)


@st.composite
def probabilities(draw, size: int, near_zero: bool = True) -> np.ndarray:
    """A probability vector of length ``size``: integer weights 0..9 (readable, shrink towards simple tables)
    normalised; when ``near_zero`` cells may also be ``1e-12`` or a float in [1e-12, 1], else weights >= 1.

    Weights below 1e-12 are not drawn: with cells of 1e-200, p(x) p(y) underflows to 0 and
    ``ibtheory.info.mutual_information`` returns inf (reported; the suite tests estimators, not that corner).
    """
    if near_zero:
        cell = st.one_of(st.integers(0, 9).map(float), st.just(_NEAR_ZERO), _floats(_NEAR_ZERO, 1.0, 12))
    else:
        cell = st.integers(1, 9).map(float)
    w = np.array(draw(st.lists(cell, min_size=size, max_size=size)), dtype=np.float64)
    if not w.sum() > 0:
        w[draw(st.integers(0, size - 1))] = 1.0
    return w / w.sum()


@st.composite
def joint_distributions(
    draw, max_x: int = 5, max_y: int = 4, kind: str | None = None, min_x: int = 1, min_y: int = 1
) -> np.ndarray:
    """A joint table p(x,y) of shape (n_x, n_y), min_x <= n_x <= max_x, min_y <= n_y <= max_y, summing to 1.

    ``kind`` picks one family ("general" (cells may be 0 or 1e-12), "deterministic" (y = g(x), one-hot rows),
    "independent" (p_x p_y^T)); ``None`` draws any of them.
    """
    n_x = draw(st.integers(min_x, max_x))
    n_y = draw(st.integers(min_y, max_y))
    kind = kind or draw(st.sampled_from(["general", "deterministic", "independent"]))
    if kind == "general":
        return draw(probabilities(n_x * n_y)).reshape(n_x, n_y)
    p_x = draw(probabilities(n_x, near_zero=False))
    if kind == "independent":
        return np.outer(p_x, draw(probabilities(n_y)))
    if kind == "deterministic":
        g = np.array(draw(st.lists(st.integers(0, n_y - 1), min_size=n_x, max_size=n_x)))
        p = np.zeros((n_x, n_y))
        p[np.arange(n_x), g] = p_x
        return p
    raise ValueError(f"kind must be 'general', 'deterministic', 'independent' or None, got {show(kind)}")


@st.composite
def _stochastic(draw, rows: int, cols: int, deterministic: bool) -> np.ndarray:
    if deterministic:
        g = np.array(draw(st.lists(st.integers(0, cols - 1), min_size=rows, max_size=rows)))
        return np.eye(cols)[g]
    return np.stack([draw(probabilities(cols)) for _ in range(rows)])


@st.composite
def markov_chains(
    draw, max_x: int = 5, max_t1: int = 4, max_t2: int = 3, deterministic: bool | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A Markov chain X -> T1 -> T2 as (p_x (n_x,), p(t1|x) (n_x, n_t1), p(t2|t1) (n_t1, n_t2)).

    ``deterministic`` True makes both channels functions (one-hot rows), False stochastic, None either.
    The data-processing inequality I(X;T1) >= I(X;T2) holds exactly for the joint tables they define.
    """
    det = draw(st.booleans()) if deterministic is None else deterministic
    n_x, n_t1, n_t2 = (draw(st.integers(1, m)) for m in (max_x, max_t1, max_t2))
    return (draw(probabilities(n_x)), draw(_stochastic(n_x, n_t1, det)), draw(_stochastic(n_t1, n_t2, det)))


def chain_laws(**kwargs) -> st.SearchStrategy[ChainLaw]:
    """:class:`~ibtheory.testing.laws.ChainLaw` over :func:`markov_chains` (same keywords): samples (x, t1, t2)."""
    return markov_chains(**kwargs).map(lambda c: ChainLaw(*c))


def discrete_laws(independent: bool = False, max_x: int = 5, max_y: int = 4) -> st.SearchStrategy[DiscreteLaw]:
    """:class:`DiscreteLaw` over :func:`joint_distributions`: any kind with at least 2 x 2 states, or only
    "independent" tables (one state allowed) when ``independent``."""
    if independent:  # includes the one-state edge cases
        return st.builds(DiscreteLaw, joint_distributions(max_x, max_y, kind="independent"))
    return st.builds(DiscreteLaw, joint_distributions(max_x, max_y, min_x=2, min_y=2))


@st.composite
def layer_laws(
    draw, independent: bool = False, noise: bool | None = None, max_bits: int = 4, max_units: int = 4,
    max_y: int = 3,
) -> LayerLaw:
    """Layer-like activations tanh(gain * x W + b) (+ Gaussian noise) of a bit pattern X with labels Y ~ p(y|x).

    ``noise`` True adds noise of standard deviation in [0.05, 0.5], False none, None either.  With
    ``independent`` p(y|x) is the same for every x, so I(T;Y) = 0.
    """
    bits = draw(st.integers(1, max_bits))
    units = draw(st.integers(1, max_units))
    kind = "independent" if independent else draw(st.sampled_from(["general", "deterministic"]))
    p_xy = draw(joint_distributions(2**bits, max_y, kind=kind, min_x=2**bits))
    rng = np.random.default_rng(draw(seeds()))
    weights = np.round(rng.standard_normal((bits, units)), 4)
    bias = np.round(0.1 * rng.standard_normal(units), 4)
    gain = draw(_floats(0.25, 3.0))
    add_noise = draw(st.booleans()) if noise is None else noise
    sigma = draw(_floats(0.05, 0.5)) if add_noise else 0.0
    return LayerLaw(p_xy, weights, bias, gain, sigma)


@st.composite
def noisy_channel_laws(draw, max_y: int = 3) -> NoisyChannelLaw:
    """Y ~ p_y over 2..max_y labels, T = tanh(mu_Y + sigma Z) with mu in [-2, 2], sigma in [0.1, 1.5]."""
    k = draw(st.integers(2, max_y))
    p_y = draw(probabilities(k, near_zero=False))
    mu = np.array(draw(st.lists(_floats(-2.0, 2.0), min_size=k, max_size=k)))
    return NoisyChannelLaw(p_y, mu, draw(_floats(0.1, 1.5)))


@st.composite
def gaussian_laws(draw, independent: bool = False, max_dim: int = 2, max_rho: float = 0.95) -> GaussianLaw:
    """Correlated standard Gaussian pairs in d <= max_dim dimensions, |rho_i| <= max_rho (0 when independent)."""
    d = draw(st.integers(1, max_dim))
    if independent:
        return GaussianLaw(np.zeros(d))
    return GaussianLaw(np.array(draw(st.lists(_floats(-max_rho, max_rho), min_size=d, max_size=d))))


@st.composite
def _base_benchmark_law(draw, max_dim: int, min_x: int = 1, min_y: int = 1, normal: bool | None = None):
    """A normal or Student-t law of the benchmark with d_x in [min_x, max_dim], d_y in [min_y, max_dim] (a normal
    one when ``normal``, a Student-t one when False, either when None)."""
    dim_x, dim_y = draw(st.integers(min_x, max_dim)), draw(st.integers(min_y, max_dim))
    structures = ["dense", "2-pair"] if min(dim_x, dim_y) >= 2 else ["dense"]
    if draw(st.booleans()) if normal is None else normal:
        structure = draw(st.sampled_from(structures))
        return MultinormalLaw(dim_x, dim_y, structure, draw(_floats(0.1, 0.9, 2)))
    structure = draw(st.sampled_from(["identity", *structures]))
    strength = 0.0 if structure == "identity" else draw(_floats(0.1, 0.9, 2))
    return StudentLaw(dim_x, dim_y, draw(st.sampled_from([1, 2, 3])), structure, strength)


@st.composite
def benchmark_laws(draw, max_dim: int = 3) -> object:
    """A law of the Czyz et al. 2023 benchmark families with d_x, d_y <= max_dim: a normal (dense correlation c or
    2-pair r in [0.1, 0.9]), a Student-t (df 1, 2 or 3; identity, dense or 2-pair dispersion), an additive uniform
    noise law (epsilon in [0.05, 2]), or one of the first two under a transform of
    :data:`~ibtheory.testing.benchmark_laws.TRANSFORMS`.  As in the paper, the normal CDF, bimodal and spiral maps
    act on normal laws only (spiral: d_x >= 2, d_y >= 3, even if max_dim < 3): on Cauchy-tailed draws Phi(v) rounds
    to 1 in floating point, which would merge samples and break the invertibility that keeps the MI."""
    kind = draw(st.sampled_from(["base", "additive", "transformed"]))
    if kind == "additive":
        return AdditiveUniformLaw(draw(_floats(0.05, 2.0, 3)))
    if kind == "base":
        return draw(_base_benchmark_law(max_dim))
    transform = draw(st.sampled_from(TRANSFORMS))
    if transform == "spiral":
        return TransformedLaw(draw(_base_benchmark_law(max(max_dim, 3), 2, 3, normal=True)), "spiral",
                              draw(_floats(0.25, 2.0, 2)))
    normal = True if transform in ("normal_cdf", "bimodal") else None
    return TransformedLaw(draw(_base_benchmark_law(max_dim, normal=normal)), transform)


def laws_for(
    x_kind: str, y_kind: str, family: str = "any", independent: bool = False
) -> st.SearchStrategy:
    """Laws whose kinds are (x_kind, y_kind).

    ``family``: "any" (the laws every sample-level property is searched on: discrete tables, layer activations,
    channels, correlated Gaussians), "exact-discrete" (true MI of discrete data: discrete tables, or noiseless
    layer activations of a discrete X), "continuous" (known MI of continuous data: additive-noise channels,
    correlated Gaussians and, for two continuous arguments, the :func:`benchmark_laws`), "benchmark" (the
    benchmark laws alone).  The benchmark laws are kept out of "any": the exp and sinh maps of the
    monotone-invariance check overflow on their Cauchy-tailed draws.  A combination without such laws gives
    ``st.nothing()``.
    """
    for name, kind in (("x_kind", x_kind), ("y_kind", y_kind)):
        if kind not in KINDS:
            raise ValueError(f"{name} must be one of {KINDS}, got {show(kind)}")
    if family not in ("any", "exact-discrete", "continuous", "benchmark"):
        raise ValueError(f"family must be 'any', 'exact-discrete', 'continuous' or 'benchmark', got {show(family)}")
    if (x_kind, y_kind) == ("discrete", "continuous"):
        return laws_for(y_kind, x_kind, family, independent).map(Swapped)
    options: list[st.SearchStrategy] = []
    if (x_kind, y_kind) == ("discrete", "discrete"):
        if family in ("any", "exact-discrete"):
            options.append(discrete_laws(independent))
    elif (x_kind, y_kind) == ("continuous", "discrete"):
        if family in ("any", "exact-discrete"):
            options.append(layer_laws(independent, noise=False if family == "exact-discrete" else None))
        if family in ("any", "continuous") and not independent:
            options.append(noisy_channel_laws())
    else:
        if family in ("any", "continuous"):
            options.append(gaussian_laws(independent))
        if family in ("continuous", "benchmark") and not independent:
            options.append(benchmark_laws())
    return st.one_of(options) if options else st.nothing()


def samples(laws: st.SearchStrategy, n: int = 300) -> st.SearchStrategy[Sample]:
    """``law.sample(n, seed)`` for laws drawn from ``laws`` and a drawn seed."""
    return st.builds(lambda law, seed: law.sample(n, seed), laws, seeds())


@st.composite
def processings(draw, kind: str, noise: bool = False, max_out: int = 3) -> Processing:
    """A processing step g for the chain source -> T1 -> T2 = g(T1).

    Discrete T1: a table mapping codes to at most ``max_out`` codes (merges states).  Continuous T1: the next
    layer tanh(T1 W + b) with at most ``max_out`` units, plus noise (sd in [0.1, 1]) when ``noise``.
    """
    if kind == "discrete":
        size = draw(st.integers(1, 6))
        return Processing(table=np.array(draw(st.lists(st.integers(0, max_out - 1), min_size=size,
                                                           max_size=size))))
    rng = np.random.default_rng(draw(seeds()))
    units = draw(st.integers(1, max_out))
    weights = np.round(rng.standard_normal((4, units)), 4)
    bias = np.round(0.1 * rng.standard_normal(units), 4)
    return Processing(weights=weights, bias=bias, noise=draw(_floats(0.1, 1.0)) if noise else 0.0)


@st.composite
def monotone_transforms(draw, family: str = "nonlinear") -> MonotoneTransform:
    """Strictly increasing maps: ``family`` "affine" (a v + b, a in [0.1, 10], b in [-2, 2]) or "nonlinear"
    (v^3 + a v, sinh(a v), exp(a v) with a in [0.25, 3])."""
    if family == "affine":
        return MonotoneTransform("affine", draw(_floats(0.1, 10.0)), draw(_floats(-2.0, 2.0)))
    if family != "nonlinear":
        raise ValueError(f"family must be 'affine' or 'nonlinear', got {show(family)}")
    return MonotoneTransform(draw(st.sampled_from(["cube", "sinh", "exp"])), draw(_floats(0.25, 3.0)))
