"""Canonical edge cases that every check tries first (hypothesis explicit examples), by input kinds.

Random search with a handful of examples can miss the textbook failure modes; these fixed cases make them part of
every run, so a report never depends on luck for them:

- discrete tables: a noiseless 4-symbol copy (I = 2 bits), a binary symmetric channel (crossover 0.1), uniform
  independent tables, a single-state X;
- layer-like activations: 8 bit patterns whose one-unit activations tanh(0.05 b0 + 0.1 b1 + 0.2 b2) lie 0.05 apart
  with parity labels (I(T;Y) = 1 bit; any merge of neighbouring patterns loses information: the binning caveat of
  Saxe et al. 2018), a noisy 3-unit layer with independent labels and a one-unit channel whose three labels share
  one mean (I = 0; many occupied bins bias binning up, more so after widening to 3 units);
- additive-noise channels (well separated and overlapping), correlated and independent Gaussian pairs;
- known-MI laws of two continuous arguments, the failure modes of Czyz et al. 2023: long tails (a 2 x 2 Student-t
  with df = 1 and identity dispersion: uncorrelated, I = 0.62 bits), high MI with sharp edges (additive uniform
  noise, epsilon = 0.1: I = 2.47 bits) and a spiral of a 3 x 3 two-pair normal (I = 1.47 bits);
- transforms: rescaling by 0.1 and by 3 (+0.5); exp(2v) and v^3 + 0.25 v;
- processings: widening to 3 units, narrowing to 1 unit, merging codes.

References
----------
1. A. M. Saxe et al., "On the information bottleneck theory of deep learning", ICLR 2018.
2. P. Czyz et al., "Beyond normal: on the evaluation of mutual information estimators", NeurIPS 2023.
"""

from __future__ import annotations

import numpy as np

from . import benchmark_laws as bl
from . import laws as lw

__all__ = ["canonical_laws", "canonical_transforms", "canonical_processings"]

_BITS3 = ((np.arange(8)[:, None] >> np.array([2, 1, 0])) & 1).astype(float)
_PARITY = _BITS3.sum(axis=1) % 2
_W3 = np.array([[1.2, -0.7, 0.4], [-0.3, 0.9, 1.1], [0.8, 0.5, -1.0]])


def _close_activations() -> lw.LayerLaw:
    p_xy = np.zeros((8, 2))
    p_xy[np.arange(8), _PARITY.astype(int)] = 1 / 8
    return lw.LayerLaw(p_xy, np.array([[0.05], [0.1], [0.2]]), np.array([0.0]), 1.0, 0.0)


def _noisy_independent_layer() -> lw.LayerLaw:
    return lw.LayerLaw(np.full((8, 2), 1 / 16), _W3, np.zeros(3), 1.0, 0.3)


def canonical_laws(x_kind: str, y_kind: str, family: str = "any", independent: bool = False) -> list:
    """The fixed laws of these kinds and family (see :func:`ibtheory.testing.strategies.laws_for`)."""
    if (x_kind, y_kind) == ("discrete", "continuous"):
        return [lw.Swapped(law) for law in canonical_laws(y_kind, x_kind, family, independent)]
    if (x_kind, y_kind) == ("discrete", "discrete"):
        if family in ("continuous", "benchmark"):
            return []
        if independent:
            return [lw.DiscreteLaw(np.full((5, 4), 1 / 20)), lw.DiscreteLaw(np.array([[0.5, 0.5]]))]
        return [lw.DiscreteLaw(np.eye(4) / 4), lw.DiscreteLaw(np.array([[0.45, 0.05], [0.05, 0.45]]))]
    if (x_kind, y_kind) == ("continuous", "discrete"):
        if independent:
            flat = lw.NoisyChannelLaw(np.full(3, 1 / 3), np.zeros(3), 1.0)  # three labels, one noise: I = 0
            return [] if family in ("continuous", "benchmark") else [_noisy_independent_layer(), flat]
        exact = [_close_activations()]
        channels = [lw.NoisyChannelLaw(np.array([0.5, 0.5]), np.array([-1.0, 1.0]), 0.5),
                    lw.NoisyChannelLaw(np.full(3, 1 / 3), np.array([-0.5, 0.0, 0.5]), 0.3)]
        return {"exact-discrete": exact, "continuous": channels, "benchmark": []}.get(family, exact + channels)
    if family == "exact-discrete":
        return []
    if independent:
        return [] if family == "benchmark" else [lw.GaussianLaw(np.zeros(1)), lw.GaussianLaw(np.zeros(2))]
    gaussians = [lw.GaussianLaw(np.array([0.9])), lw.GaussianLaw(np.array([0.5, -0.5]))]
    benchmark = [bl.StudentLaw(2, 2, df=1), bl.AdditiveUniformLaw(0.1),
                 bl.TransformedLaw(bl.MultinormalLaw(3, 3, "2-pair", 0.8), "spiral")]
    return {"any": gaussians, "continuous": gaussians + benchmark, "benchmark": benchmark}[family]


def canonical_transforms(family: str) -> list[lw.MonotoneTransform]:
    """Fixed strictly increasing maps: "affine" (0.1 v, 3 v + 0.5) or "nonlinear" (exp(2 v), v^3 + 0.25 v)."""
    if family == "affine":
        return [lw.MonotoneTransform("affine", 0.1, 0.0), lw.MonotoneTransform("affine", 3.0, 0.5)]
    return [lw.MonotoneTransform("exp", 2.0), lw.MonotoneTransform("cube", 0.25)]


def canonical_processings(kind: str, noise: bool = False) -> list[lw.Processing]:
    """Fixed processing steps: merging codes (discrete) or widening / narrowing next layers (continuous)."""
    if kind == "discrete":
        return [lw.Processing(table=np.array([0, 0, 1])), lw.Processing(table=np.array([0]))]
    sigma = 0.5 if noise else 0.0
    return [lw.Processing(weights=np.vstack([_W3, _W3[:1]]), bias=np.zeros(3), noise=sigma),
            lw.Processing(weights=np.array([[1.0], [-1.0], [0.5], [0.25]]), bias=np.zeros(1), noise=sigma)]
