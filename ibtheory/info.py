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

from ._validate import show

__all__ = [
    "SUM_TOLERANCE",
    "validate_distribution",
    "validate_conditional",
    "entropy",
    "conditional_entropy",
    "kl_divergence",
    "mutual_information",
    "entropy_rows",
    "relative_entropy_from_difference",
]

SUM_TOLERANCE = 1e-9
_LN2 = np.log(2.0)

#: dtype kinds accepted as probabilities: signed/unsigned integers and reals.  Complex numbers (the imaginary part
#: would be dropped), booleans, strings, objects, dates and raw bytes are refused.
_REAL_KINDS = "iuf"
_KIND_NAMES = {"c": "complex", "b": "boolean", "O": "object", "U": "string", "S": "bytes", "V": "raw (void)",
               "M": "datetime", "m": "timedelta"}


def _real_array(p: ArrayLike, name: str) -> np.ndarray:
    """``p`` as a float64 array; ``ValueError`` naming ``name`` unless its entries are real numbers (ints, floats).

    Complex input is refused rather than cast (numpy would drop the imaginary part with only a warning); booleans,
    strings and object arrays are refused rather than coerced.
    """
    try:
        raw = np.asarray(p)
    except (TypeError, ValueError):  # ragged nested lists
        raise ValueError(f"{name} must be a numeric array of real numbers with a regular shape (rows of equal "
                         f"length), got {show(p)}") from None
    if raw.dtype.kind not in _REAL_KINDS:
        kind = _KIND_NAMES.get(raw.dtype.kind, raw.dtype.kind)
        hint = " (pass np.real(...) or np.abs(...) explicitly if that is what you mean)" if kind == "complex" else ""
        raise ValueError(
            f"{name} must be a numeric array of real numbers, got {kind} entries (dtype {raw.dtype}){hint}"
        )
    return raw.astype(np.float64, copy=False)


def validate_distribution(
    p: ArrayLike, name: str = "p", ndim: int | None = None, normalize: bool = False
) -> np.ndarray:
    """Return ``p`` as a float64 probability table, or raise ``ValueError`` naming ``name``.

    Checks: real numeric entries (integers or floats; complex, boolean, string and object arrays are refused),
    ``ndim`` dimensions if given, no empty axis, finite, non-negative, positive total, and a total within
    ``SUM_TOLERANCE`` of 1 unless ``normalize=True``.  With ``normalize=True`` the table is divided by its total,
    computed after scaling by the largest entry, p / sum(p) = (p / max p) / sum(p / max p), so entries near the
    float64 maximum (1e308) do not overflow the sum.
    """
    arr = _real_array(p, name)
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
    if not arr.max() > 0:
        raise ValueError(f"{name} sums to zero; a probability table needs positive mass")
    if normalize:
        scaled = arr / arr.max()  # entries in [0, 1]: the sum is at most arr.size, never inf
        return scaled / scaled.sum()
    total = arr.sum()
    if abs(total - 1.0) > SUM_TOLERANCE:
        raise ValueError(
            f"{name} sums to {float(total)!r}, not 1 (tolerance {SUM_TOLERANCE}); pass normalize=True to rescale"
        )
    return arr


def validate_conditional(p_y_given_x: ArrayLike, name: str = "p_y_given_x") -> np.ndarray:
    """Return a row-stochastic float64 matrix (each row a distribution over the last axis) or raise ``ValueError``
    naming ``name`` (non-real entries, wrong shape, NaN/inf, negative entries, a row not summing to 1 within 1e-8)."""
    arr = _real_array(p_y_given_x, name)
    if arr.ndim != 2 or arr.size == 0:
        raise ValueError(f"{name} must be a non-empty 2-D table, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or infinite entries")
    if np.any(arr < 0):
        raise ValueError(f"{name} has negative entries")
    rows = arr.sum(axis=1)
    bad = np.flatnonzero(np.abs(rows - 1.0) > 1e-8)
    if bad.size:
        raise ValueError(f"{name} rows must sum to 1; row {bad[0]} sums to {float(rows[bad[0]])!r}")
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


#: |e| up to which phi(e) = (1 + e) ln(1 + e) - e is summed from its Taylor series (alternating with ratio <= 1/2:
#: 50 terms reach 0.5^50 / 2550 ~ 4e-19 relative); beyond it the closed form loses at most ~6 ulp to cancellation.
_PHI_SERIES_MAX = 0.5
#: phi(e) / e^2 = sum_{k >= 0} (-1)^k e^k / ((k + 1)(k + 2)), Horner order (highest power first).
_PHI_COEFFS = np.array([(-1.0) ** k / ((k + 1) * (k + 2)) for k in range(50)])[::-1]


def _phi(e: np.ndarray) -> np.ndarray:
    """phi(e) = (1 + e) ln(1 + e) - e (nats) for e >= -1, elementwise, phi(-1) = 1, to full relative precision.

    The closed form cancels catastrophically near e = 0 (phi ~ e^2 / 2 is the difference of two numbers ~ e); the
    series is used there.
    """
    e = np.asarray(e, dtype=np.float64)
    out = np.empty_like(e)
    small = np.abs(e) <= _PHI_SERIES_MAX
    es = e[small]
    acc = np.zeros_like(es)
    for c in _PHI_COEFFS:
        acc = acc * es + c
    out[small] = es * es * acc
    el = e[~small]
    with np.errstate(divide="ignore", invalid="ignore"):
        out[~small] = np.where(el > -1.0, (1.0 + el) * np.log1p(el), 0.0) - el
    return out


def _kl_nats_from_difference(d: np.ndarray, q: np.ndarray) -> np.ndarray:
    """sum over the last axis of q phi(d / q) in nats (no validation); 0 where q = d = 0, inf where q = 0 < d."""
    with np.errstate(divide="ignore", invalid="ignore"):
        e = np.where(q > 0, d / np.where(q > 0, q, 1.0), 0.0)
    terms = q * _phi(np.maximum(e, -1.0))
    terms = np.where((q == 0) & (d > 0), np.inf, terms)
    return terms.sum(axis=-1)


def relative_entropy_from_difference(d: ArrayLike, q: ArrayLike, units: str = "bits") -> float | np.ndarray:
    """D(q + d || q) from the difference d = p - q, to full relative precision even when p is within rounding of q.

        D = sum_i q_i phi(d_i / q_i),   phi(e) = (1 + e) ln(1 + e) - e   (phi(e) ~ e^2 / 2 near 0),

    which equals sum_i p_i log(p_i / q_i) - sum_i p_i + sum_i q_i: the relative entropy D(P||Q) when sum d = 0 (and
    the generalised one otherwise; it is >= 0 term by term).  Computing p = q + d first and then sum p log(p/q)
    cancels to rounding noise (~1e-16 absolute) when p is close to q; here each term is a product of positive
    factors, so D ~ 1e-30 is still exact to ~1e-15 relative.  Conventions: a term with q_i = 0 is 0 if d_i = 0 and
    +inf if d_i > 0.

    Parameters
    ----------
    d : (..., n) differences p - q (sum over the last axis; rows of a 2-D array give one D each).
    q : (..., n) reference distribution (broadcast against ``d``), finite and >= 0.
    units : "bits" (default) or "nats".

    Returns
    -------
    D in ``units``: a float for 1-D input, else an array over the leading axes.

    >>> d = [1e-10, -1e-10]  # sum d^2 / (2 q) = 2e-20 nats; kl_divergence of 0.5 +- 1e-10 gives rounding noise
    >>> float(f"{relative_entropy_from_difference(d, [0.5, 0.5], units='nats'):.12g}")
    2e-20
    """
    if units not in ("bits", "nats"):
        raise ValueError(f"units must be 'bits' or 'nats', got {units!r}")
    da = _real_array(d, "d")
    qa = _real_array(q, "q")
    try:
        da, qa = np.broadcast_arrays(da, qa)
    except ValueError:
        raise ValueError(f"d and q must have broadcastable shapes, got {da.shape} and {qa.shape}") from None
    if da.ndim == 0 or da.shape[-1] == 0:
        raise ValueError(f"d and q must have a non-empty last axis, got shape {da.shape}")
    for nm, a in (("d", da), ("q", qa)):
        if not np.all(np.isfinite(a)):
            raise ValueError(f"{nm} contains NaN or infinite entries")
    if np.any(qa < 0):
        raise ValueError(f"q has negative entries (min {qa.min():.3g})")
    p = qa + da
    if np.any(p < -1e-12 * np.maximum(qa, np.abs(da))) or np.any((qa == 0) & (da < 0)):
        raise ValueError("q + d must be non-negative (d is the difference p - q of two distributions)")
    out = _kl_nats_from_difference(da, qa)
    if units == "bits":
        out = out / _LN2
    return float(out) if np.ndim(out) == 0 else out
