"""Exact information of a deterministic layer: its states are the distinct rows of its activations, no bins.

A deterministic layer T = h(X) over the n_x patterns of a finite input is a discrete random variable whose states
are the distinct activation vectors h(x) (compared as floats, exactly).  Its information is then exact, not an
estimate:

    I(X;T) = H(T),                      p(t) = sum_{x: h(x) = t} p(x),
    I(T;Y) = H(T) + H(Y) - H(T,Y),      p(t, y) = sum_{x: h(x) = t} p(x) p(y|x),

in bits, with the exact p(x) and p(y|x) of the task.  For an injective layer (every pattern its own row, the
generic case for real-valued networks) I(X;T) = H(X) and I(T;Y) = I(X;Y) whatever the weights (Amjad & Geiger
2019); in a quantized network the rows repeat and the information is that of the discrete function (Lorenzen et
al. 2022).  Binning with a grid so fine that no two distinct rows share a bin gives the same numbers.

Rows are compared by value: padding units (NaN for every pattern) are ignored, and -0.0 equals 0.0; two rows
that differ in the last bit of one unit are two states.  Counting is vectorised: the rows of each slice are viewed
as raw bytes (one ``numpy.void`` per row, after mapping -0.0 to 0.0), one ``argsort`` along the pattern axis groups
equal rows of every (layer, repeat) at once, and the entropies come from the shared sorted-run helper.

References
----------
1. R. A. Amjad and B. C. Geiger, "Learning representations for neural network-based classification using the
   information bottleneck principle", IEEE TPAMI 42(9), 2020 (early access 2019; arXiv:1802.09766).
2. S. S. Lorenzen, C. Igel and M. Nielsen, "Information bottleneck: exact analysis of (quantized) neural
   networks", ICLR 2022.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from ._common import information_of_runs, validate_activations, validate_layer_inputs
from .binning import BinningResult

__all__ = ["code_information", "distinct_codes"]


def _canonical_rows(a: np.ndarray, padded: bool) -> np.ndarray:
    """``a`` as (G, n_x, units) with padding NaN -> 0.0 and -0.0 -> 0.0, so equal values have equal bytes.

    Copies only when needed (NaN padding or a zero present)."""
    x = a.reshape((-1,) + a.shape[-2:])
    if padded:
        x = np.nan_to_num(x, nan=0.0)  # padding is NaN for every pattern of its slice: a constant unit
        x += 0.0  # -0.0 + 0.0 = +0.0 (round to nearest)
    elif (x == 0).any():
        x = x + 0.0
    return x


def _sorted_rows(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Group each slice's equal rows: (new_state (G, n_x) bool, x_index (G, n_x)) as in ``information_of_runs``.

    Float16/32/64 rows are compared as raw bytes (a void view: one comparison per pair of rows, however wide the
    layer); wider floats (long double, whose storage has unused bytes) by value with ``numpy.lexsort``.
    """
    g, n_x, units = x.shape
    if x.dtype.itemsize in (2, 4, 8):
        rows = np.ascontiguousarray(x).view(np.dtype((np.void, units * x.dtype.itemsize))).reshape(g, n_x)
        x_index = np.argsort(rows, axis=-1)
        s = np.take_along_axis(rows, x_index, axis=-1)
        differs = s[:, 1:] != s[:, :-1]
    else:
        keys = np.moveaxis(x, -1, 0)[::-1]  # lexsort: the last key is the primary one
        x_index = np.lexsort(keys, axis=-1)
        s = np.take_along_axis(x, x_index[..., None], axis=1)
        differs = (s[:, 1:] != s[:, :-1]).any(axis=-1)
    new_state = np.empty((g, n_x), dtype=bool)
    new_state[:, 0] = True
    new_state[:, 1:] = differs
    return new_state, x_index


def distinct_codes(activations: ArrayLike) -> np.ndarray:
    """Number of distinct activation rows (states of T = h(X)) in each slice, shape ``activations.shape[:-2]``.

    Exact float equality over the real units (NaN padding units ignored, -0.0 == 0.0).  Every pattern counts,
    whatever its probability (``code_information``'s ``n_states`` counts only states with p(t) > 0).

    >>> distinct_codes([[[0.0, 1.0], [-0.0, 1.0], [0.5, 1.0]]]).tolist()
    [2]
    """
    a, padding = validate_activations(activations)
    new_state, _ = _sorted_rows(_canonical_rows(a, bool(padding.any())))
    return new_state.sum(axis=1).reshape(a.shape[:-2])


def code_information(activations: ArrayLike, p_x: ArrayLike, p_y_given_x: ArrayLike) -> BinningResult:
    """Exact I(X;T) = H(T) and I(T;Y) in bits of deterministic layers, T's states the distinct activation rows.

    Parameters
    ----------
    activations : array (..., n_x, units)
        Layer activations for all n_x patterns; leading dims e.g. (repeat,) or (epoch, repeat).  Trailing NaN
        padding units are ignored; other NaN, any inf, or a slice with no real unit raise ``ValueError``.
    p_x : array (n_x,)
        Exact input distribution.
    p_y_given_x : array (n_x, n_y)
        Exact channel of the task; p(y|t) pools it over each state's patterns.

    Returns
    -------
    BinningResult with ``I_XT``, ``I_TY`` (bits) and ``n_states`` (states with p(t) > 0) of shape
    ``activations.shape[:-2]``, ``scheme="codes"`` and ``n_bins=0`` (no grid).

    Example: two distinct rows carry one bit, and one bit about a copied label; equal rows carry nothing.

    >>> r = code_information([[[0.1], [0.2]], [[0.3], [0.3]]], [0.5, 0.5], [[1.0, 0.0], [0.0, 1.0]])
    >>> r.I_XT.tolist(), r.I_TY.tolist(), r.n_states.tolist()
    ([1.0, 0.0], [1.0, 0.0], [2, 1])
    """
    a, px, pyx, padding = validate_layer_inputs(activations, p_x, p_y_given_x)
    lead = a.shape[:-2]
    new_state, x_index = _sorted_rows(_canonical_rows(a, bool(padding.any())))
    i_xt, i_ty, n_states = information_of_runs(new_state, x_index, px, pyx)
    return BinningResult(I_XT=i_xt.reshape(lead), I_TY=i_ty.reshape(lead), n_states=n_states.reshape(lead),
                         n_bins=0, scheme="codes")
