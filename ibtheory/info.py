"""Exact information measures of discrete distributions, in bits.

Every function takes probability tables (float arrays) and returns bits (log base 2), with the convention
0 log 0 = 0, so zero-probability cells never produce NaN.  Input is validated by :func:`validate_distribution`:
negative entries, NaN/inf, empty axes, a wrong number of dimensions and sums off 1 by more than ``1e-9`` raise a
``ValueError`` that names the argument; ``normalize=True`` is the explicit opt-in to rescale a table that sums to
something positive other than 1.

The kernels underneath are public too, for loops that have already validated their tables (the IB solver, the
layer comparisons, the Langevin convergence measures): :data:`LN2`, :func:`xlogx`, :func:`entropy_rows`,
:func:`kl_rowwise` (aligned rows), :func:`kl_matrix` (all pairs of rows, one matrix product),
:func:`mi_of_cells` and :func:`mi_of_joint`.  They check nothing, take ``units="bits"`` (default) or ``"nats"``,
and are the package's one implementation of these sums: the validated functions above call them.

References
----------
1. T. M. Cover and J. A. Thomas, *Elements of Information Theory*, 2nd ed., Wiley 2006, ch. 2.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike

from ._validate import show

__all__ = [
    "SUM_TOLERANCE",
    "LN2",
    "validate_distribution",
    "validate_conditional",
    "entropy",
    "conditional_entropy",
    "kl_divergence",
    "mutual_information",
    "relative_entropy_from_difference",
    "xlogx",
    "entropy_rows",
    "kl_rowwise",
    "kl_matrix",
    "mi_of_cells",
    "mi_of_joint",
]

SUM_TOLERANCE = 1e-9
#: ln 2: a quantity in nats divided by LN2 is in bits.
LN2: float = math.log(2.0)

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
    return float(max(kl_rowwise(pa.ravel(), qa.ravel()), 0.0))


def mutual_information(p_xy: ArrayLike, normalize: bool = False) -> float:
    """I(X;Y) = H(X) + H(Y) - H(X,Y) of a joint table of shape (n_x, n_y), in bits.

    Computed as sum p(x,y) log2[p(x,y) / (p(x) p(y))] over cells with p(x,y) > 0, clipped at 0 from rounding.

    >>> mutual_information([[0.5, 0.0], [0.0, 0.5]])
    1.0
    """
    arr = validate_distribution(p_xy, "p_xy", ndim=2, normalize=normalize)
    return float(max(mi_of_joint(arr), 0.0))


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
    out = _in_units(_kl_nats_from_difference(da, qa), units)
    return float(out) if np.ndim(out) == 0 else out


# --- kernels: no validation (callers pass float arrays they have checked) ----------------------------------------


def _in_units(nats, units: str):
    """``nats`` as they are (``units="nats"``) or divided by ln 2 (``"bits"``)."""
    if units == "bits":
        return nats / LN2
    if units == "nats":
        return nats
    raise ValueError(f"units must be 'bits' or 'nats', got {show(units)}")


def xlogx(p: np.ndarray) -> np.ndarray:
    """Elementwise p ln p in nats with 0 ln 0 = 0 (entries <= 0 give 0; no warnings).

    >>> xlogx(np.array([0.0, 1.0])).tolist()
    [0.0, 0.0]
    """
    pos = p > 0
    return np.where(pos, p * np.log(np.where(pos, p, 1.0)), 0.0)


def entropy_rows(p: ArrayLike, units: str = "bits") -> np.ndarray:
    """Entropy of each distribution along the last axis of ``p``, H(p) = -sum_i p_i log p_i (0 log 0 = 0).

    An array of shape (..., n) gives shape (...), in ``units`` ("bits" or "nats").  No validation.

    >>> entropy_rows(np.array([[0.5, 0.5, 0.0, 0.0], [0.25, 0.25, 0.25, 0.25]])).tolist()
    [1.0, 2.0]
    """
    return _in_units(-xlogx(np.asarray(p, dtype=np.float64)).sum(axis=-1), units)


def kl_rowwise(p: ArrayLike, q: ArrayLike, units: str = "bits") -> np.ndarray:
    """D(p || q) = sum_i p_i log(p_i / q_i) along the last axis, ``p`` and ``q`` broadcast against each other.

    Terms with p_i = 0 are 0; a term with q_i = 0 < p_i is +inf.  Not clipped at 0 (rounding can leave -1e-17
    for p = q), no validation.  Shape: the broadcast shape without its last axis; ``units`` "bits" or "nats".

    >>> kl_rowwise(np.array([[1.0, 0.0], [0.5, 0.5]]), np.array([0.5, 0.5])).tolist()
    [1.0, 0.0]
    """
    p = np.asarray(p, dtype=np.float64)
    q = np.asarray(q, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(p > 0, p * (np.log(p) - np.log(q)), 0.0)
    return _in_units(terms.sum(axis=-1), units)


def kl_matrix(p: np.ndarray, log_q: np.ndarray, neg_entropy: np.ndarray | None = None,
              units: str = "bits") -> np.ndarray:
    """All pairwise divergences D[..., j, i] = KL(p_i || q_j) = sum_y p_iy ln p_iy - sum_y p_iy ln q_jy, laid out
    (..., n_q, n_p), as one matrix product (the fast path of the IB iteration).

    ``p`` (n_p, n_y) rows of distributions, ``log_q`` (..., n_q, n_y) log-rows (any leading batch axes; -inf for
    zeros), ``neg_entropy`` (n_p,) sum_y p ln p in nats if already known.  +inf where p puts mass on a zero of q;
    clipped at 0 (rounding).  No validation.

    >>> kl_matrix(np.array([[1.0, 0.0]]), np.log([[0.5, 0.5], [0.25, 0.75]])).tolist()
    [[1.0], [2.0]]
    """
    if neg_entropy is None:
        neg_entropy = xlogx(p).sum(axis=-1)
    n_y = log_q.shape[-1]
    flat = log_q.reshape(-1, n_y)
    finite = np.isfinite(flat)
    if finite.all():
        D = neg_entropy[None, :] - flat @ p.T
    else:
        D = neg_entropy[None, :] - np.where(finite, flat, 0.0) @ p.T
        D[(~finite).astype(np.float64) @ (p > 0).T.astype(np.float64) > 0] = np.inf
    D = np.maximum(D, 0.0, out=D).reshape(log_q.shape[:-1] + (p.shape[0],))
    return D if units == "nats" else _in_units(D, units)


def mi_of_cells(p: np.ndarray, p_a: np.ndarray, p_b: np.ndarray, units: str = "bits") -> float:
    """sum_k p_k log[p_k / (a_k b_k)] over the cells k of a joint table given as parallel arrays: the positive
    cells ``p`` (dense or the data of a sparse table) and the marginals ``p_a``, ``p_b`` of their row and column.

    Summed in logs, ln p - ln a - ln b, so a product a b that underflows (1e-200 x 1e-200) does no harm.  Not
    clipped at 0, no validation; every p_k must be > 0.

    >>> mi_of_cells(np.array([0.5, 0.5]), np.array([0.5, 0.5]), np.array([0.5, 0.5]))
    1.0
    """
    return float(_in_units(np.sum(p * (np.log(p) - np.log(p_a) - np.log(p_b))), units))


def mi_of_joint(joint: np.ndarray, p_a: np.ndarray | None = None, p_b: np.ndarray | None = None,
                units: str = "bits") -> float:
    """I(A;B) = sum p(a,b) log[p(a,b) / (p(a) p(b))] of a 2-D joint table over its positive cells (0 log 0 = 0);
    the marginals are its row and column sums unless given.  Not clipped at 0, no validation.

    >>> mi_of_joint(np.array([[0.5, 0.0], [0.0, 0.5]]))
    1.0
    """
    rows, cols = np.nonzero(joint > 0)
    a = joint.sum(axis=1) if p_a is None else p_a
    b = joint.sum(axis=0) if p_b is None else p_b
    return mi_of_cells(joint[rows, cols], a[rows], b[cols], units)
