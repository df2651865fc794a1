"""Exact information measures of discrete distributions, in bits.

Every function takes probability tables (float arrays) and returns bits (log base 2), with the convention
0 log 0 = 0, so zero-probability cells never produce NaN.  Input is validated by :func:`validate_distribution`:
negative entries, NaN/inf, empty axes, a wrong number of dimensions and sums off 1 by more than ``1e-9`` raise a
``ValueError`` that names the argument; ``normalize=True`` is the explicit opt-in to rescale a table that sums to
something positive other than 1.

References
----------
1. T. M. Cover and J. A. Thomas, *Elements of Information Theory*, 2nd ed., Wiley 2006, ch. 2.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

__all__ = [
    "SUM_TOLERANCE",
    "validate_distribution",
    "validate_conditional",
    "entropy",
    "conditional_entropy",
    "kl_divergence",
    "mutual_information",
    "entropy_rows",
]

SUM_TOLERANCE = 1e-9
_LN2 = np.log(2.0)


def validate_distribution(
    p: ArrayLike, name: str = "p", ndim: int | None = None, normalize: bool = False
) -> np.ndarray:
    """Return ``p`` as a float64 probability table, or raise ``ValueError`` naming ``name``.

    Checks: numeric, ``ndim`` dimensions if given, no empty axis, finite, non-negative, positive total, and a total
    within ``SUM_TOLERANCE`` of 1 unless ``normalize=True`` (then the table is divided by its total).
    """
    try:
        arr = np.asarray(p, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be a numeric array: {exc}") from None
    if ndim is not None and arr.ndim != ndim:
        raise ValueError(f"{name} must have {ndim} dimension(s), got shape {arr.shape}")
    if arr.ndim == 0:
        raise ValueError(f"{name} must be an array with at least one axis, got a scalar")
    if arr.size == 0:
        raise ValueError(f"{name} has an empty axis: shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or infinite entries")
    if np.any(arr < 0):
        raise ValueError(f"{name} has negative entries (min {arr.min():.3g})")
    total = arr.sum()
    if not total > 0:
        raise ValueError(f"{name} sums to zero; a probability table needs positive mass")
    if normalize:
        return arr / total
    if abs(total - 1.0) > SUM_TOLERANCE:
        raise ValueError(
            f"{name} sums to {total!r}, not 1 (tolerance {SUM_TOLERANCE}); pass normalize=True to rescale"
        )
    return arr


def validate_conditional(p_y_given_x: ArrayLike, name: str = "p_y_given_x") -> np.ndarray:
    """Return a row-stochastic float64 matrix (each row a distribution over the last axis) or raise."""
    arr = np.asarray(p_y_given_x, dtype=np.float64)
    if arr.ndim != 2 or arr.size == 0:
        raise ValueError(f"{name} must be a non-empty 2-D table, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or infinite entries")
    if np.any(arr < 0):
        raise ValueError(f"{name} has negative entries")
    rows = arr.sum(axis=1)
    bad = np.flatnonzero(np.abs(rows - 1.0) > 1e-8)
    if bad.size:
        raise ValueError(f"{name} rows must sum to 1; row {bad[0]} sums to {rows[bad[0]]!r}")
    return arr


def _xlogx(p: np.ndarray) -> np.ndarray:
    """Elementwise p ln p with 0 ln 0 = 0 (nats)."""
    out = np.zeros_like(p)
    mask = p > 0
    out[mask] = p[mask] * np.log(p[mask])
    return out


def entropy_rows(p: np.ndarray) -> np.ndarray:
    """Entropy in bits of each distribution along the last axis of ``p`` (no validation; vectorised helper).

    H(p) = -sum_i p_i log2 p_i, computed over the last axis, so an array of shape (..., n) gives shape (...).
    """
    return -_xlogx(np.asarray(p, dtype=np.float64)).sum(axis=-1) / _LN2


def entropy(p: ArrayLike, normalize: bool = False) -> float:
    """Shannon entropy H(P) = -sum p log2 p of a (joint) table of any shape, in bits.

    >>> entropy([0.5, 0.5])
    1.0
    """
    arr = validate_distribution(p, "p", normalize=normalize)
    return float(entropy_rows(arr.ravel()))


def conditional_entropy(p_xy: ArrayLike, normalize: bool = False) -> float:
    """H(Y|X) = H(X,Y) - H(X) of a joint table ``p_xy`` of shape (n_x, n_y), in bits.

    >>> conditional_entropy([[0.25, 0.25], [0.5, 0.0]])
    0.5
    """
    arr = validate_distribution(p_xy, "p_xy", ndim=2, normalize=normalize)
    return float(max(entropy_rows(arr.ravel()) - entropy_rows(arr.sum(axis=1)), 0.0))


def kl_divergence(p: ArrayLike, q: ArrayLike, normalize: bool = False) -> float:
    """D(P||Q) = sum p log2(p/q) in bits; ``inf`` where P puts mass on a cell Q gives zero.

    >>> kl_divergence([0.5, 0.5], [0.5, 0.5])
    0.0
    """
    pa = validate_distribution(p, "p", normalize=normalize)
    qa = validate_distribution(q, "q", normalize=normalize)
    if pa.shape != qa.shape:
        raise ValueError(f"p and q must have the same shape, got {pa.shape} and {qa.shape}")
    mask = pa > 0
    if np.any(qa[mask] == 0):
        return float("inf")
    return float(max(np.sum(pa[mask] * np.log(pa[mask] / qa[mask])) / _LN2, 0.0))


def mutual_information(p_xy: ArrayLike, normalize: bool = False) -> float:
    """I(X;Y) = H(X) + H(Y) - H(X,Y) of a joint table of shape (n_x, n_y), in bits.

    Computed as sum p(x,y) log2[p(x,y) / (p(x) p(y))] over cells with p(x,y) > 0, clipped at 0 from rounding.

    >>> mutual_information([[0.5, 0.0], [0.0, 0.5]])
    1.0
    """
    arr = validate_distribution(p_xy, "p_xy", ndim=2, normalize=normalize)
    px = arr.sum(axis=1, keepdims=True)
    py = arr.sum(axis=0, keepdims=True)
    mask = arr > 0
    # in logs: p(x) p(y) can underflow to 0 for tiny cells (1e-200 * 1e-200)
    log_ratio = np.log(arr[mask]) - np.log(np.broadcast_to(px, arr.shape)[mask]) - np.log(
        np.broadcast_to(py, arr.shape)[mask]
    )
    return float(max(np.sum(arr[mask] * log_ratio) / _LN2, 0.0))
