"""Ensemble ("extended") estimator: the binned encoder pooled over R independently trained networks.

The authors' view of a layer as a stochastic encoder p(t|x) is realised by the randomness of training: with the
binned states t_r(x) of R networks (same bins for all),

    p(t|x) = (1/R) sum_r [t_r(x) = t],     p(t) = sum_x p(x) p(t|x),     p(t, y) = sum_x p(x) p(y|x) p(t|x),
    I(X;T) = H(T) - sum_x p(x) H(T|X=x),   I(T;Y) = H(T) + H(Y) - H(T,Y),

in bits, with the exact p(x), p(y|x) (or, with ``labels="sampled"``, one label per pattern drawn from p(y|x), the
same draw as the binning estimator's for the same ``label_seed``).  The grids are the binning estimator's
(``scheme`` "width", "mass", "idnns", or a fixed ``bin_width``), shared by the R networks.  With R = 1 it reduces to
the binning estimator.  The repeat axis is
pooled, so results have shape ``activations.shape[:-3]`` (one value per layer and epoch, not per repeat).

States are compared through their packed bin codes across repeats (one sort per slice over R * n_x rows), and
H(T|X=x) from the multiplicities of each pattern's R codes (one sort along the repeat axis).

References
----------
1. R. Shwartz-Ziv and N. Tishby, "Opening the black box of deep neural networks via information", arXiv:1703.00810.
2. A. Kolchinsky, B. D. Tracey, S. Van Kuyk, "Caveats for information bottleneck in deterministic scenarios",
   ICLR 2019 (stochastic encoders).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from ._common import _entropy_by_row, validate_layer_inputs
from .binning import _check_labels, _grid, _grid_indices, _pack, _sampled_labels, _sorted_states

__all__ = ["EnsembleResult", "ensemble_information"]


@dataclass(frozen=True)
class EnsembleResult:
    """Pooled estimates, arrays of shape ``activations.shape[:-3]``.

    I_XT, I_TY : bits.  H_T_given_X : sum_x p(x) H(T|X=x) in bits (0 when all repeats agree on every pattern).
    n_states : occupied pooled states.  repeats : R.
    """

    I_XT: np.ndarray
    I_TY: np.ndarray
    H_T_given_X: np.ndarray
    n_states: np.ndarray
    repeats: int


def ensemble_information(
    activations: ArrayLike,
    p_x: ArrayLike,
    p_y_given_x: ArrayLike,
    n_bins: int | None = None,
    limits=(-1.0, 1.0),
    scheme: str = "width",
    *,
    bin_width: float | None = None,
    anchor: float | None = None,
    labels: str = "exact",
    label_seed: int | np.random.Generator | None = None,
) -> EnsembleResult:
    """I(X;T), I(T;Y) in bits of the binned encoder pooled over the repeat axis (axis -3).

    Parameters
    ----------
    activations : array (..., R, n_x, units), R >= 1 networks of the same architecture.
    p_x, p_y_given_x : exact task distributions, (n_x,) and (n_x, n_y).
    n_bins, limits, scheme, bin_width, anchor : the grid, as in :func:`ibtheory.estimators.binned_information`
        (n_bins default 30; n_bins + 1 states per unit for "idnns"; bins are per network slice for "adaptive" and
        "mass"; a fixed ``bin_width`` is the same for all networks).
    labels, label_seed : "exact" (default) or "sampled" with its seed, as in ``binned_information``.

    Examples
    --------
    Two networks that disagree on one of two patterns.

    >>> r = ensemble_information([[[-0.5], [0.5]], [[-0.5], [-0.5]]], [0.5, 0.5], [[1.0, 0.0], [0.0, 1.0]],
    ...                          n_bins=2)
    >>> round(float(r.H_T_given_X), 6), round(float(r.I_XT), 6)
    (0.5, 0.311278)
    """
    grid = _grid(n_bins, limits, scheme, bin_width, anchor)
    labels = _check_labels(labels)
    a, px, pyx, padding = validate_layer_inputs(activations, p_x, p_y_given_x)
    if a.ndim < 3:
        raise ValueError(f"activations must have shape (..., R, n_x, units) with a repeat axis, got {a.shape}")
    if labels == "sampled":
        pyx = _sampled_labels(pyx, label_seed)
    lead, (R, n_x, units) = a.shape[:-3], a.shape[-3:]
    idx, base = _grid_indices(a, grid, bool(padding.any()))  # base: values per unit (n_bins + 1 for "idnns")
    g = int(np.prod(lead, dtype=np.int64))
    # one packing over all R x n_x rows of a slice: when codes outgrow int64, _pack re-ranks them per packed row,
    # and the ranks must be shared by the repeats (packing each repeat alone mislabels states of wide layers)
    codes, bound = _pack(idx.reshape(g, R * n_x, units), base)
    new_state, pos = _sorted_states(codes, bound)
    xi = (pos % n_x).ravel()
    starts = np.flatnonzero(new_state)
    row = np.repeat(np.arange(g), new_state.sum(axis=1))
    p_joint = px[:, None] * pyx
    p_t = np.add.reduceat(px[xi] / R, starts)
    p_ty = np.add.reduceat(p_joint[xi] / R, starts, axis=0)
    h_t = _entropy_by_row(p_t, row, g)
    h_ty = _entropy_by_row(p_ty.ravel(), np.repeat(row, p_ty.shape[1]), g)
    p_y = p_joint.sum(axis=0)
    h_y = -np.sum(p_y[p_y > 0] * np.log2(p_y[p_y > 0]))
    # H(T|X=x) from the multiplicities of the R codes of each pattern
    per_x = np.sort(codes.reshape(g, R, n_x).transpose(0, 2, 1).reshape(-1, R), axis=1)  # (g * n_x, R)
    run_start = np.ones(per_x.shape, dtype=bool)
    run_start[:, 1:] = per_x[:, 1:] != per_x[:, :-1]
    s = np.flatnonzero(run_start)
    counts = np.diff(s, append=per_x.size)
    clogc = counts * np.log2(counts)
    h_t_x = np.log2(R) - np.bincount(s // R, weights=clogc, minlength=g * n_x) / R  # (g * n_x,)
    h_t_given_x = (h_t_x.reshape(g, n_x) * px).sum(axis=1)
    n_states = np.bincount(row, weights=p_t > 0, minlength=g).astype(np.int64)
    shape = lambda v: np.clip(v, 0.0, None).reshape(lead)  # noqa: E731
    return EnsembleResult(I_XT=shape(h_t - h_t_given_x), I_TY=shape(h_t + h_y - h_ty),
                          H_T_given_X=shape(h_t_given_x), n_states=n_states.reshape(lead), repeats=int(R))
