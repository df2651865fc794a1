"""Binning estimator of a layer's information: discretise every unit, count the distinct binned rows.

A deterministic layer T = h(X) is replaced by its binned version B(T) = (b(h_1(X)), ..., b(h_k(X))), a function of
X with finitely many states, so

    I(X;T) ~ I(X;B(T)) = H(B(T)),    p(t) = sum_{x: B(h(x)) = t} p(x),
    I(T;Y) ~ I(B(T);Y),              p(t, y) = sum_{x: B(h(x)) = t} p(x) p(y|x),

in bits, with the exact p(x) and p(y|x) of the task (the decoder is p(y|t) = sum_x p(y|x) p(x|t), not a count of
sampled labels).  This is the estimator of Shwartz-Ziv & Tishby (2017): 30 equal-width bins on [-1, 1] over all
4096 patterns.  It measures the geometry of the binned representation, not the information of the continuous
layer (which is H(X) for an injective h); Saxe et al. (2018) and Goldfeld et al. (2019) discuss what that implies,
so the bin count, range and scheme are parameters:

- ``scheme="width"``: ``n_bins`` equal-width bins on ``limits = (lo, hi)``; values outside go to the end bins.
  ``limits="adaptive"`` uses each network's own layer range (min and max over patterns and units of that slice of
  the leading dims), as Saxe et al. (2018) did for ReLU layers.
- ``scheme="mass"``: per slice, bin edges at the k/n_bins quantiles of the pooled activation values (equal-mass
  bins); ``limits`` is ignored.
- ``scheme="idnns"``: the grid of the authors' code (IDNNs): ``np.linspace(lo, hi, n_bins)`` are *edges* and the
  state of a value is ``np.digitize(value, edges)``, so n_bins - 1 bins of width (hi - lo)/(n_bins - 1) plus one
  state for values below lo and one for values >= hi (n_bins + 1 states per unit).  ``n_bins=30`` on [-1, 1] is
  the grid of the paper's figures; the default ``scheme="width"`` instead makes 30 bins of width 1/15 and folds
  hi into the last bin.
- ``bin_width=w, anchor=c`` (instead of ``n_bins``): unbounded bins of width w anchored at c, state
  ``floor((value - c) / w)`` computed in the activations' dtype, as Saxe et al.'s code (``simplebinmi``, w = 0.07,
  c = 0) bins ReLU layers; ``limits`` is not used.

``labels="sampled"`` measures I(T;Y) against one label per pattern drawn from p(y|x) (seeded by ``label_seed``), as
the authors' code does with its sampled labels, instead of the exact p(y|x) (the default ``labels="exact"``).

:func:`binning_options` checks all of these options at once and returns the normalised dict the trainers pass to the
estimators and record in the run's ``config`` attribute.

Counting is vectorised: per unit bin indices are packed into one int64 code per row (``sum_u b_u n_bins^u``,
re-ranked when it would overflow), the pattern index is packed into the low bits,
and one ``numpy.sort`` over (slices, n_x) finds the distinct rows of every (layer, repeat) at once.  For uniform
p(x) and deterministic labels (the paper's task) only counts matter: the label is packed into the key instead of
the pattern index (so narrow layers sort as uint32) and entropies come from a table of c log2 c.

References
----------
1. R. Shwartz-Ziv and N. Tishby, "Opening the black box of deep neural networks via information", arXiv:1703.00810.
2. A. M. Saxe et al., "On the information bottleneck theory of deep learning", ICLR 2018.
3. Z. Goldfeld et al., "Estimating information flow in deep neural networks", ICML 2019.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from numpy.typing import ArrayLike

from .._validate import integer, real, show
from .._validate import seed as _seed
from ._common import information_of_runs, validate_activations, validate_layer_inputs

__all__ = ["BinningResult", "binned_information", "binned_codes", "bin_indices", "binning_options"]


@dataclass(frozen=True)
class BinningResult:
    """Binning estimate for each slice of the leading dims of the activations.

    Attributes
    ----------
    I_XT, I_TY : ndarray, shape ``activations.shape[:-2]``
        I(X;B(T)) = H(B(T)) and I(B(T);Y) in bits.
    n_states : ndarray of int, same shape
        Number of occupied binned states (distinct binned rows with p(t) > 0).
    n_bins : int
        The ``n_bins`` of the grid; with ``bin_width``, the number of bins from the lowest to the highest occupied.
    scheme : str
        ``"width"``, ``"mass"``, ``"idnns"`` or ``"fixed"`` (``bin_width`` given).
    bin_width, anchor : float or None
        The fixed bin width and its anchor, None for the ``n_bins`` grids.
    labels : str
        ``"exact"`` (I(T;Y) from the exact p(y|x)) or ``"sampled"`` (one sampled label per pattern).
    """

    I_XT: np.ndarray
    I_TY: np.ndarray
    n_states: np.ndarray
    n_bins: int
    scheme: str
    bin_width: float | None = None
    anchor: float | None = None
    labels: str = "exact"


_SCHEMES = ("width", "mass", "idnns")


def _check_options(n_bins: int, limits, scheme: str) -> int:
    """Validate the ``n_bins`` grid options (``ValueError`` naming the argument); return ``n_bins`` as an ``int``."""
    n_bins = integer(n_bins, "n_bins", 2)
    if not isinstance(scheme, str) or scheme not in _SCHEMES:
        raise ValueError(f"scheme must be one of {_SCHEMES}, got {show(scheme)}")
    if scheme == "idnns" and isinstance(limits, str):
        raise ValueError(f"limits must be a pair (lo, hi) for scheme 'idnns', got {show(limits)}")
    if scheme in ("width", "idnns") and not (isinstance(limits, str) and limits == "adaptive"):
        try:
            lo, hi = (float(v) for v in limits)
        except (TypeError, ValueError):
            raise ValueError(f"limits must be a pair (lo, hi) or 'adaptive', got {show(limits)}") from None
        if not (np.isfinite(lo) and np.isfinite(hi) and lo < hi):
            raise ValueError(f"limits must be finite with lo < hi, got {show(limits)}")
    return n_bins


@dataclass(frozen=True)
class _Grid:
    """Checked binning options: ``n_bins`` (None with ``bin_width``), ``limits``, ``scheme``, ``bin_width``,
    ``anchor``."""

    n_bins: int | None
    limits: object
    scheme: str
    bin_width: float | None
    anchor: float | None


def _grid(n_bins, limits, scheme, bin_width, anchor) -> _Grid:
    """Validate the grid options of the public functions (``ValueError`` naming the argument)."""
    if bin_width is None:
        if anchor is not None:
            raise ValueError(f"anchor is used only with bin_width; got anchor={show(anchor)} without bin_width")
        n_bins = _check_options(30 if n_bins is None else n_bins, limits, scheme)
        return _Grid(n_bins, limits, scheme, None, None)
    if n_bins is not None:
        raise ValueError(f"n_bins and bin_width exclude each other; got n_bins={show(n_bins)} and "
                         f"bin_width={show(bin_width)}")
    if not (isinstance(scheme, str) and scheme == "width"):
        raise ValueError(f"scheme must be 'width' (the default) with bin_width, got {show(scheme)}")
    bin_width = real(bin_width, "bin_width", 0.0, low_open=True)
    anchor = real(0.0 if anchor is None else anchor, "anchor")
    return _Grid(None, None, "fixed", bin_width, anchor)


def _grid_indices(a: np.ndarray, grid: _Grid, padded: bool = True) -> tuple[np.ndarray, int]:
    """Bin indices (non-negative integers in a float array, shape of ``a``) and their number of values per unit
    (the packing base): n_bins for "width"/"mass", n_bins + 1 for "idnns", the occupied span for a fixed width
    (indices shifted by their minimum over all values)."""
    if grid.bin_width is None:
        idx = _bin_indices(a, grid.n_bins, grid.limits, grid.scheme, padded)
        return idx, grid.n_bins + (grid.scheme == "idnns")
    idx = _fixed_indices(a, grid.bin_width, grid.anchor).astype(np.float64)
    lo, hi = np.nanmin(idx), np.nanmax(idx)
    idx -= lo
    if padded:
        idx[np.isnan(idx)] = 0.0
    return idx, int(hi - lo) + 1


def _fixed_indices(a: np.ndarray, bin_width: float, anchor: float) -> np.ndarray:
    """floor((a - anchor) / bin_width) in the dtype of ``a`` (Saxe et al.'s arithmetic), NaN kept."""
    if a.dtype not in (np.float32, np.float64):
        a = a.astype(np.float64)
    return np.floor((a - anchor) / bin_width)


_LABELS = ("exact", "sampled")


def _check_labels(labels: str) -> str:
    if not (isinstance(labels, str) and labels in _LABELS):
        raise ValueError(f"labels must be 'exact' or 'sampled', got {show(labels)}")
    return labels


def binning_options(
    n_bins: int | None = None, limits=(-1.0, 1.0), scheme: str = "width", *, bin_width: float | None = None,
    anchor: float | None = None, labels: str = "exact", label_seed: int = 0,
) -> dict:
    """Every grid and label option of the binning estimators checked and normalised, as the trainers pass them on
    and record them (``ValueError`` naming the argument otherwise).

    - an ``n_bins`` grid (``bin_width`` None): ``{"n_bins": int (default 30), "limits": (lo, hi) floats or
      "adaptive", "scheme": "width" | "mass" | "idnns"}``;
    - a fixed width: ``{"bin_width": float > 0, "anchor": float (default 0.0)}`` (``n_bins`` must be None and
      ``scheme`` "width"; ``limits`` are not used, so not recorded);
    - ``labels="sampled"`` adds ``{"labels": "sampled", "label_seed": int}``; the default exact labels add nothing.

    Unset options are left out (no None values: the dict is stored as netCDF attributes), so the default options
    give the same dict (and the same recorded run configuration) as before these options existed.  ``label_seed``
    (an integer in [0, 2**63 - 1]) is checked even with exact labels.

    >>> binning_options(10, [-2, 2])
    {'n_bins': 10, 'limits': (-2.0, 2.0), 'scheme': 'width'}
    >>> binning_options(bin_width=0.07, labels="sampled", label_seed=3)
    {'bin_width': 0.07, 'anchor': 0.0, 'labels': 'sampled', 'label_seed': 3}
    """
    grid = _grid(n_bins, limits, scheme, bin_width, anchor)
    labels = _check_labels(labels)
    label_seed = _seed(label_seed, "label_seed")
    if grid.bin_width is not None:
        out = {"bin_width": grid.bin_width, "anchor": grid.anchor}
    else:
        if not isinstance(limits, str):  # checked for "width" and "idnns"; unused but recorded for "mass"
            try:
                limits = tuple(float(v) for v in limits)
            except (TypeError, ValueError):
                raise ValueError(f"limits must be a pair (lo, hi) or 'adaptive', got {show(limits)}") from None
        out = {"n_bins": grid.n_bins, "limits": limits, "scheme": scheme}
    if labels == "sampled":
        out.update(labels=labels, label_seed=label_seed)
    return out


def bin_indices(
    activations: ArrayLike, n_bins: int | None = None, limits=(-1.0, 1.0), scheme: str = "width", *,
    bin_width: float | None = None, anchor: float | None = None,
) -> np.ndarray:
    """Bin index of every activation value, shape ``activations.shape``, floats holding integers.

    0..n_bins-1 for ``scheme="width"``/``"mass"``; ``np.digitize(value, np.linspace(lo, hi, n_bins))`` (0..n_bins)
    for ``"idnns"``; ``floor((value - anchor) / bin_width)`` (any integer) with ``bin_width``.  ``n_bins``
    defaults to 30 and excludes ``bin_width``.  Padding units (NaN for every pattern) get index 0 (NaN with
    ``bin_width``).  See the module docstring for the schemes.

    >>> bin_indices([[-1.0], [0.0], [0.99]], n_bins=2).ravel().tolist()
    [0.0, 1.0, 1.0]
    >>> bin_indices([[-1.0], [0.0], [1.0]], n_bins=3, scheme="idnns").ravel().tolist()
    [1.0, 2.0, 3.0]
    >>> bin_indices([[-0.01], [0.0], [0.15]], bin_width=0.07).ravel().tolist()
    [-1.0, 0.0, 2.0]
    """
    grid = _grid(n_bins, limits, scheme, bin_width, anchor)
    a, _ = validate_activations(activations)
    if grid.bin_width is not None:
        return _fixed_indices(a, grid.bin_width, grid.anchor)
    return _bin_indices(a, grid.n_bins, limits, scheme)


def _bin_indices(a: np.ndarray, n_bins: int, limits, scheme: str, padded: bool = True) -> np.ndarray:
    """Unvalidated core of :func:`bin_indices`; keeps float32 input in float32 (indices are small integers)."""
    if a.dtype not in (np.float32, np.float64):
        a = a.astype(np.float64)
    lead = a.shape[:-2]
    if scheme == "idnns":
        return _digitize(a, float(limits[0]), float(limits[1]), n_bins, padded)
    if scheme == "width":
        if isinstance(limits, str):
            flat = a.reshape(lead + (-1,))
            lo = np.nanmin(flat, axis=-1)[..., None, None]
            hi = np.nanmax(flat, axis=-1)[..., None, None]
            scale = n_bins / np.where(hi > lo, hi - lo, 1.0)
            idx = ((a - lo) * scale).astype(a.dtype)
        else:
            lo, hi = (float(v) for v in limits)
            idx = a - a.dtype.type(lo)
            idx *= a.dtype.type(n_bins / (hi - lo))
        np.floor(idx, out=idx)
        np.clip(idx, 0, n_bins - 1, out=idx)
    else:
        flat = a.reshape(lead + (-1,))
        q = np.arange(1, n_bins) / n_bins
        edges = np.moveaxis(np.nanquantile(flat, q, axis=-1), 0, -1)[..., None, None, :]  # (..., 1, 1, n_bins-1)
        idx = np.zeros_like(a)
        for k in range(n_bins - 1):  # loop over bin edges, vectorised over values
            idx += a > edges[..., k]
    if padded:
        idx[np.isnan(idx)] = 0.0
    return idx


def _digitize(a: np.ndarray, lo: float, hi: float, n_bins: int, padded: bool) -> np.ndarray:
    """``np.digitize(a, np.linspace(lo, hi, n_bins))`` in the dtype of ``a`` (NaN -> 0 when ``padded``).

    The index k satisfies ext[k] <= a < ext[k + 1] with ext = (-inf, edges, +inf); it is guessed by arithmetic on
    the equal spacing and corrected by one comparison with the exact edges each way (cheaper than a binary search).
    """
    ext = np.concatenate([[-np.inf], np.linspace(lo, hi, n_bins), [np.inf]])
    k = a - a.dtype.type(lo)
    k *= a.dtype.type((n_bins - 1) / (hi - lo))
    k += 1
    np.floor(k, out=k)
    np.clip(k, 0, n_bins, out=k)
    if padded:
        k[np.isnan(k)] = 0
    ki = k.astype(np.intp)
    ki -= a < ext[ki]
    ki += a >= ext[ki + 1]
    return ki.astype(a.dtype)


def _pack(idx: np.ndarray, n_bins: int) -> tuple[np.ndarray, int]:
    """One non-negative int64 code per row of ``idx`` (G, n_x, units) and an exclusive upper bound of the codes.

    Equal rows <=> equal codes.  code = sum_u b_u n_bins^(units-1-u) while that stays below 2^62; beyond, the
    running code is replaced by its dense rank within the row before more units are appended (codes < n_x n_bins^k).
    """
    units = idx.shape[-1]
    if units * math.log2(n_bins) < 53:  # n_bins^units exact in float64: one BLAS matrix-vector product
        powers = float(n_bins) ** np.arange(units - 1, -1, -1)
        return (idx.astype(np.float64) @ powers).astype(np.int64), int(n_bins) ** units
    b = idx.astype(np.int64)
    n_x = b.shape[1]
    code = b[:, :, 0].copy()
    bound = int(n_bins)
    for u in range(1, b.shape[-1]):  # loop over units, vectorised over layers, repeats and patterns
        if bound * n_bins >= 2**62:
            code = _dense_rank(code)
            bound = n_x
        code *= n_bins
        code += b[:, :, u]
        bound *= int(n_bins)
    return code, bound


def _dense_rank(codes: np.ndarray) -> np.ndarray:
    """Replace each row's values by their rank among the row's distinct values (0..k-1), shape kept."""
    order = np.argsort(codes, axis=-1, kind="stable")
    s = np.take_along_axis(codes, order, axis=-1)
    ranks_sorted = np.concatenate(
        [np.zeros(s.shape[:-1] + (1,), np.int64), np.cumsum(s[..., 1:] != s[..., :-1], axis=-1)], axis=-1
    )
    out = np.empty_like(ranks_sorted)
    np.put_along_axis(out, order, ranks_sorted, axis=-1)
    return out


def _sorted_states(codes: np.ndarray, bound: int) -> tuple[np.ndarray, np.ndarray]:
    """Group each row's patterns by code: (new_state (G, n_x) bool, x_index (G, n_x)).

    Position j of row g holds pattern ``x_index[g, j]``; rows are sorted by code and ``new_state`` marks where a
    new code (state) begins.  The pattern index is packed into the low bits of the code so that one ``np.sort``
    (uint32 when the packed key fits, int64 otherwise) groups all rows at once; ``argsort`` is the fallback.
    """
    g, n_x = codes.shape
    xbits = max(1, int(np.ceil(np.log2(n_x))))
    if bound << xbits <= 2**32:
        keys = np.sort(((codes << xbits) | np.arange(n_x)).astype(np.uint32), axis=-1)
        x_index, s = (keys & np.uint32((1 << xbits) - 1)).astype(np.int64), keys >> np.uint32(xbits)
    elif bound << xbits <= 2**63:
        keys = np.sort((codes << xbits) | np.arange(n_x, dtype=np.int64), axis=-1)
        x_index, s = keys & ((1 << xbits) - 1), keys >> xbits
    else:
        x_index = np.argsort(codes, axis=-1)
        s = np.take_along_axis(codes, x_index, axis=-1)
    new_state = np.empty((g, n_x), dtype=bool)
    new_state[:, 0] = True
    np.not_equal(s[:, 1:], s[:, :-1], out=new_state[:, 1:])
    return new_state, x_index


@lru_cache(maxsize=8)
def _clogc(n: int) -> np.ndarray:
    """Table of c log2 c for c = 0..n (0 log 0 = 0), read-only."""
    c = np.arange(n + 1, dtype=np.float64)
    out = np.zeros(n + 1)
    out[1:] = c[1:] * np.log2(c[1:])
    out.flags.writeable = False
    return out


def _uniform_hard_information(
    codes: np.ndarray, bound: int, y: np.ndarray, n_y: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Fast path for uniform p(x) and deterministic labels y(x): only counts matter.

    The label is packed into the low bits of each code (key = code * 2^b + y), one sort per row groups equal
    (state, label) pairs inside equal states, and with c_t, c_ty the run lengths,
    H(T) = log2 n - sum_t c_t log2 c_t / n and H(T,Y) likewise; I(X;T) = H(T), I(T;Y) = H(T) + H(Y) - H(T,Y).
    """
    g, n_x = codes.shape
    ybits = max(1, int(np.ceil(np.log2(n_y))))
    if bound << ybits <= 2**32:
        keys = np.sort((codes << ybits).astype(np.uint32) | y.astype(np.uint32), axis=-1)
        states = keys >> np.uint32(ybits)
    elif bound << ybits <= 2**63:
        keys = np.sort((codes << ybits) | y, axis=-1)
        states = keys >> ybits
    else:
        codes = _dense_rank(codes)
        keys = np.sort((codes << ybits) | y, axis=-1)
        states = keys >> ybits
    clogc = _clogc(n_x)

    def sum_clogc(new: np.ndarray) -> np.ndarray:
        starts = np.flatnonzero(new)
        counts = np.diff(starts, append=g * n_x)
        per_row = new.sum(axis=1)
        row_starts = np.concatenate([[0], np.cumsum(per_row)[:-1]])
        return np.add.reduceat(clogc[counts], row_starts), per_row

    new_t = np.empty((g, n_x), dtype=bool)
    new_t[:, 0] = True
    np.not_equal(states[:, 1:], states[:, :-1], out=new_t[:, 1:])
    new_ty = new_t.copy()
    new_ty[:, 1:] |= keys[:, 1:] != keys[:, :-1]
    s_t, n_states = sum_clogc(new_t)
    s_ty, _ = sum_clogc(new_ty)
    h_t = np.log2(n_x) - s_t / n_x
    h_ty = np.log2(n_x) - s_ty / n_x
    p_y = np.bincount(y, minlength=n_y) / n_x
    h_y = -np.sum(p_y[p_y > 0] * np.log2(p_y[p_y > 0]))
    return np.clip(h_t, 0.0, None), np.clip(h_t + h_y - h_ty, 0.0, None), n_states.astype(np.int64)


def _grouped(a: np.ndarray, grid: _Grid, padded: bool = True) -> tuple[np.ndarray, np.ndarray]:
    idx, base = _grid_indices(a, grid, padded)
    return _sorted_states(*_pack(idx.reshape((-1,) + a.shape[-2:]), base))


def binned_codes(
    activations: ArrayLike, n_bins: int | None = None, limits=(-1.0, 1.0), scheme: str = "width", *,
    bin_width: float | None = None, anchor: float | None = None,
) -> np.ndarray:
    """The discrete encoder of binning: state index t(x) of every pattern, shape ``activations.shape[:-1]``.

    States are numbered 0..k-1 per slice of the leading dims, in the order of the packed bin codes, so two
    patterns share a state iff all their units fall in the same bins.  p(t|x) = [t(x) = t] is the encoder the
    binning estimator measures (``compare.py`` builds its tables from it).

    >>> binned_codes([[-0.9, 0.9], [-0.95, 0.95], [0.9, 0.9]], n_bins=2).tolist()
    [0, 0, 1]
    """
    grid = _grid(n_bins, limits, scheme, bin_width, anchor)
    a, _ = validate_activations(activations)
    new_state, x_index = _grouped(a, grid)
    labels = np.cumsum(new_state, axis=-1) - 1
    out = np.empty_like(labels)
    np.put_along_axis(out, x_index, labels, axis=-1)
    return out.reshape(a.shape[:-1])


def binned_information(
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
) -> BinningResult:
    """I(X;T) and I(T;Y) of binned layers, in bits, for every slice of the leading dims at once.

    Parameters
    ----------
    activations : array (..., n_x, units)
        Layer activations for all n_x patterns; leading dims e.g. (repeat,) or (epoch, repeat).
    p_x : array (n_x,)
        Exact input distribution.
    p_y_given_x : array (n_x, n_y)
        Exact channel of the task.
    n_bins : int >= 2, default 30 (excludes ``bin_width``)
    limits : (lo, hi) or "adaptive" (not with "idnns")
    scheme : "width" | "mass" | "idnns"
    bin_width, anchor : float > 0, float (default 0)
        Fixed-width bins floor((a - anchor) / bin_width) instead of an ``n_bins`` grid (Saxe et al.: 0.07, 0).
    labels : "exact" | "sampled"
        I(T;Y) from the exact p(y|x), or from one label per pattern drawn from p(y|x) (the authors' code), the
        same draw for every slice.
    label_seed : int or numpy Generator
        Randomness of ``labels="sampled"`` (required there, unused otherwise).

    Returns
    -------
    BinningResult with ``I_XT``, ``I_TY`` (bits) and ``n_states`` of shape ``activations.shape[:-2]``.

    Example: two patterns that land in different bins carry one bit, and one bit about a copied label.

    >>> r = binned_information([[-0.5], [0.5]], [0.5, 0.5], [[1.0, 0.0], [0.0, 1.0]], n_bins=2)
    >>> float(r.I_XT), float(r.I_TY)
    (1.0, 1.0)
    """
    grid = _grid(n_bins, limits, scheme, bin_width, anchor)
    labels = _check_labels(labels)
    a, px, pyx, padding = validate_layer_inputs(activations, p_x, p_y_given_x)
    if labels == "sampled":
        pyx = _sampled_labels(pyx, label_seed)
    lead = a.shape[:-2]
    idx, base = _grid_indices(a, grid, bool(padding.any()))
    fields = dict(n_bins=grid.n_bins if grid.n_bins is not None else base, scheme=grid.scheme,
                  bin_width=grid.bin_width, anchor=grid.anchor, labels=labels)
    if np.all(px == px[0]) and np.all((pyx == 0) | (pyx == 1)):
        codes, bound = _pack(idx.reshape((-1,) + a.shape[-2:]), base)
        i_xt, i_ty, n_states = _uniform_hard_information(codes, bound, np.argmax(pyx, axis=1), pyx.shape[1])
    else:
        new_state, x_index = _sorted_states(*_pack(idx.reshape((-1,) + a.shape[-2:]), base))
        i_xt, i_ty, n_states = information_of_runs(new_state, x_index, px, pyx)
    return BinningResult(I_XT=i_xt.reshape(lead), I_TY=i_ty.reshape(lead), n_states=n_states.reshape(lead),
                         **fields)


def _sampled_labels(pyx: np.ndarray, label_seed) -> np.ndarray:
    """One-hot p(y|x) of one label per pattern drawn from p(y|x) by inverse CDF (one uniform per pattern)."""
    if label_seed is None:
        raise ValueError("label_seed must be given with labels='sampled' (an integer or a numpy Generator)")
    rng = (label_seed if isinstance(label_seed, np.random.Generator)
           else np.random.default_rng(_seed(label_seed, "label_seed")))
    u = rng.random(pyx.shape[0])
    y = np.minimum((np.cumsum(pyx, axis=1) <= u[:, None]).sum(axis=1), pyx.shape[1] - 1)
    return np.eye(pyx.shape[1])[y]
