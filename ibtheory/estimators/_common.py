"""Input validation and discrete-information helpers shared by the layer estimators (private).

Every layer estimator takes ``(activations, p_x, p_y_given_x, **options)``: ``activations`` of shape
(..., n_x, units) for the n_x input patterns (leading dims such as (repeat,) or (epoch, repeat)), the exact input
distribution ``p_x`` (n_x,) and the exact channel ``p_y_given_x`` (n_x, n_y).  Trailing units whose activation is
NaN for *every* pattern are padding (layers of different widths stacked on one ``unit`` dim) and are ignored; any
other NaN, any inf, and a slice with no real unit (a diverged network) are errors.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from ..info import LN2, validate_conditional, validate_distribution

__all__ = ["validate_activations", "validate_layer_inputs", "information_of_runs"]



def validate_activations(activations: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Check activations of shape (..., n_x, units); return (float array, padding mask of shape (..., units)).

    Padding (layers of different widths stacked on one ``unit`` dim) is the only NaN allowed: in every slice of the
    leading dims, padding units are NaN for every pattern and come after all the real units, and at least one unit
    is real.  Raises ``ValueError`` for fewer than 2 dims, an empty axis, non-numeric values, any +-inf, a NaN in a
    unit that is not entirely NaN or that precedes a real unit, or a slice whose units are all NaN (a diverged
    network, not padding).
    """
    a = np.asarray(activations)
    if not (np.issubdtype(a.dtype, np.number) or a.dtype == bool) or np.iscomplexobj(a):
        raise ValueError(f"activations must be real numeric values, got dtype {a.dtype}")
    if a.ndim < 2:
        raise ValueError(f"activations must have shape (..., n_x, units), got shape {a.shape}")
    if a.shape[-1] == 0 or a.shape[-2] == 0:
        raise ValueError(f"activations has an empty pattern or unit axis: shape {a.shape}")
    if not np.issubdtype(a.dtype, np.floating):
        a = a.astype(np.float64)
    if np.isfinite(a.sum()):  # fast path: no NaN, no inf (a finite sum of finite values)
        return a, np.zeros(a.shape[:-2] + a.shape[-1:], dtype=bool)
    if np.isinf(a).any():
        raise ValueError("activations contain infinite values (did training diverge?)")
    nan = np.isnan(a)
    padding = nan.all(axis=-2)
    if not np.array_equal(nan.any(axis=-2), padding):
        raise ValueError("activations contain NaN in a unit that is not entirely NaN (padding units must be NaN "
                         "for every pattern); did training diverge?")
    where = _slice_index(padding.all(axis=-1))
    if where is not None:
        raise ValueError(f"activations{where} are NaN for every unit and pattern: the network probably diverged "
                         "(NaN is allowed only as padding after a layer's real units)")
    where = _slice_index(np.any(padding[..., :-1] & ~padding[..., 1:], axis=-1))
    if where is not None:
        raise ValueError(f"activations{where} have a NaN unit before a real unit: NaN padding must be whole units "
                         "after the real ones (did training diverge?)")
    return a, padding


def _slice_index(flags: np.ndarray) -> str | None:
    """`` at [i, j]`` for the first True of ``flags`` (shape of the leading dims), ``""`` for no leading dims, or
    None when no flag is set."""
    if not flags.any():
        return None
    if flags.ndim == 0:
        return ""
    return f" at {list(map(int, np.argwhere(flags)[0]))}"


def validate_layer_inputs(
    activations: ArrayLike, p_x: ArrayLike, p_y_given_x: ArrayLike
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Check the shared estimator inputs; return (activations, p_x, p_y_given_x, padding mask (..., units)).

    Besides :func:`validate_activations`: p_x must be a distribution of length n_x and p_y_given_x a
    row-stochastic (n_x, n_y) table; otherwise ``ValueError`` naming the argument.
    """
    a, padding = validate_activations(activations)
    px = validate_distribution(p_x, "p_x", ndim=1)
    if px.size != a.shape[-2]:
        raise ValueError(f"p_x has {px.size} entries but activations have n_x = {a.shape[-2]} patterns")
    pyx = validate_conditional(p_y_given_x, "p_y_given_x")
    if pyx.shape[0] != px.size:
        raise ValueError(f"p_y_given_x has {pyx.shape[0]} rows but p_x has {px.size} entries")
    return a, px, pyx, padding


def information_of_runs(
    new_state: np.ndarray, x_index: np.ndarray, p_x: np.ndarray, p_y_given_x: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """I(X;T), I(T;Y) in bits and the number of occupied states of G deterministic encoders T = t(x).

    The encoders are given in sorted form: row g lists the n_x patterns ``x_index[g]`` grouped by state, and
    ``new_state[g, j]`` is True where a new state begins (``new_state[:, 0]`` is True).  For a deterministic encoder

        I(X;T) = H(T),  p(t) = sum_{x: t(x)=t} p(x);
        I(T;Y) = H(T) + H(Y) - H(T,Y),  p(t, y) = sum_{x: t(x)=t} p(x) p(y|x),

    with the exact channel (the decoder is p(y|t) = sum_x p(y|x) p(x|t)).  The sums over each state's patterns are
    one ``numpy.add.reduceat`` over all (encoder, state) runs at once.  (Uniform p(x) with hard labels never gets
    here: :func:`ibtheory.estimators.binned_information` counts those encoders on its own faster path.)
    """
    g = new_state.shape[0]
    starts = np.flatnonzero(new_state)
    n_states = new_state.sum(axis=1)
    xi = x_index.ravel()
    p_joint = p_x[:, None] * p_y_given_x
    p_y = p_joint.sum(axis=0)
    h_y = -np.sum(p_y[p_y > 0] * np.log(p_y[p_y > 0])) / LN2
    p_t = np.add.reduceat(p_x[xi], starts)
    p_ty = np.add.reduceat(p_joint[xi], starts, axis=0)
    row = np.repeat(np.arange(g), n_states)
    h_t = _entropy_by_row(p_t, row, g)
    h_ty = _entropy_by_row(p_ty.ravel(), np.repeat(row, p_ty.shape[1]), g)
    n_states = np.bincount(row, weights=(p_t > 0), minlength=g).astype(np.int64)
    return np.clip(h_t, 0.0, None), np.clip(h_t + h_y - h_ty, 0.0, None), n_states


def _entropy_by_row(p: np.ndarray, row: np.ndarray, g: int) -> np.ndarray:
    """Entropy in bits of the cells ``p`` grouped by ``row`` (g groups), 0 log 0 = 0."""
    pos = p > 0
    q = p[pos]
    return -np.bincount(row[pos], weights=q * np.log(q), minlength=g) / LN2
