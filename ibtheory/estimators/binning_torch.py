"""The binning estimator where the activations are: torch on any device, only (R,)-sized results copied back.

:func:`binned_information_torch` gives the numbers of :func:`ibtheory.estimators.binned_information` (exact
labels, or sampled ones drawn as it draws them) for activations (..., n_x, units) held in a torch tensor, on the
CPU or a GPU, without copying the activations to the host:

1. bin indices on the device with numpy's float arithmetic, operation for operation in the activations' dtype
   (the constants are rounded to that dtype on the host and held as device tensors, never as host scalars, so no
   kernel swaps a division for a multiplication by the reciprocal), so every index equals numpy's, values on an
   edge included; NaN padding units get index 0;
2. the indices of a row packed into int64 words (k units per word, k the most with (base)^k <= 2^53: one exact
   float64 matrix-vector product per word) and the slice index prepended; the distinct (slice, row) keys are ONE
   ``torch.unique(..., return_inverse=True)`` over all slices at once (1-D when one word and the slice index fit
   one int64, rows with ``dim=0`` otherwise), so state t of slice g is the set of patterns x with equal binned
   rows; no hashing, no loop over slices;
3. in float64 on the device, with s(g, x) the state of pattern x in slice g,

       I(X;T) = H(T) = -sum_x p(x) log2 p(s(g, x)),              p(t) = sum_{x: s(g,x)=t} p(x),
       I(T;Y) = H(T) + H(Y) - H(T,Y),  H(T,Y) = -sum_{x,y} p(x) p(y|x) log2 p(s(g, x), y),

   in bits (the sums over patterns are per-slice rows of a (G, n_x) table); for uniform p(x) and hard labels
   (the paper's task) from integer counts (``torch.bincount``, exact): H(T) = log2 n - sum_x log2 c(s(g, x)) / n,
   and likewise H(T,Y) with the counts of (state, label) pairs, as numpy's counting path.  Otherwise p(t) and
   p(t, y) are ``index_add_`` sums of p(x) and p(x) p(y|x) (on a GPU float atomics: the last bits of these sums,
   about 1e-16 bits, may vary from call to call; the count path does not).

Results agree with numpy's to rounding (summation order; < 1e-12 bits), the state counts exactly.  Supported
grids: ``scheme="width"`` (fixed limits or ``"adaptive"``), ``"idnns"`` and a fixed ``bin_width``; ``scheme="mass"``
(equal-mass quantiles, whose interpolation numpy defines) raises ``ValueError``: measure it with
:func:`~ibtheory.estimators.binned_information`.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from numpy.typing import ArrayLike

from ..info import LN2, validate_conditional, validate_distribution
from ._common import validate_activations
from .binning import BinningResult, _check_labels, _Grid, _grid, _sampled_labels

__all__ = ["binned_information_torch", "DEVICE_SCHEMES"]

#: The ``scheme`` values :func:`binned_information_torch` measures (with ``bin_width`` the scheme is "width").
DEVICE_SCHEMES = ("width", "idnns")

#: Elements of float64 scratch for packing one chunk of words (bounds the memory of wide layers: 512 MiB).
_CHUNK = 2**26


def binned_information_torch(
    activations: torch.Tensor | ArrayLike,
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
    """I(X;T) and I(T;Y) of binned layers in bits, computed on the device of ``activations``.

    The arguments and the result are those of :func:`ibtheory.estimators.binned_information` (``activations``
    (..., n_x, units), a torch tensor on any device or an array; ``p_x`` (n_x,) and ``p_y_given_x`` (n_x, n_y) on
    the host); the numbers agree with it to < 1e-12 bits and ``n_states`` exactly.  Only (..,)-sized results are
    copied back.  ``scheme="mass"`` raises ``ValueError`` (use ``binned_information``); bad input raises
    ``ValueError`` naming the argument, as there.

    >>> r = binned_information_torch(torch.tensor([[-0.5], [0.5]]), [0.5, 0.5], [[1.0, 0.0], [0.0, 1.0]], n_bins=2)
    >>> float(r.I_XT), float(r.I_TY), int(r.n_states)
    (1.0, 1.0, 2)
    """
    grid = _grid(n_bins, limits, scheme, bin_width, anchor)
    labels = _check_labels(labels)
    if grid.scheme == "mass":
        raise ValueError("scheme 'mass' (equal-mass quantile bins) is not measured on the device; use "
                         "ibtheory.estimators.binned_information on host activations")
    a, padded = _activations(activations)
    px, pyx = _probabilities(p_x, p_y_given_x, a.shape[-2])
    if labels == "sampled":
        pyx = _sampled_labels(pyx, label_seed)
    lead, (n_x, units) = tuple(a.shape[:-2]), tuple(a.shape[-2:])
    idx, base = _device_indices(a, grid, padded)
    inv, rep, n_states_all = _states(idx.reshape(-1, units), base, n_x)
    g = inv.numel() // n_x
    if np.all(px == px[0]) and np.all((pyx == 0) | (pyx == 1)):
        h_t, h_ty, h_y = _count_entropies(inv.view(g, n_x), np.argmax(pyx, axis=1), pyx.shape[1], n_states_all)
    else:
        h_t, h_ty, h_y, live = _weighted_entropies(inv.view(g, n_x), px, pyx, n_states_all)
        rep = rep[live]  # states of positive mass only
    n_states = torch.bincount(rep, minlength=g).to(torch.float64)  # counts <= n_x: exact in float64
    out = torch.stack([h_t.clamp_min(0.0), (h_t + h_y - h_ty).clamp_min(0.0), n_states]).cpu().numpy()  # one copy
    return BinningResult(
        I_XT=out[0].reshape(lead), I_TY=out[1].reshape(lead), n_states=out[2].astype(np.int64).reshape(lead),
        n_bins=grid.n_bins if grid.n_bins is not None else base, scheme=grid.scheme, bin_width=grid.bin_width,
        anchor=grid.anchor, labels=labels)


def _activations(activations) -> tuple[torch.Tensor, bool]:
    """``activations`` as a float32/float64 tensor checked as :func:`validate_activations` checks arrays (the same
    ``ValueError`` messages), and whether it has NaN padding units; one host sync when the values are finite."""
    if not isinstance(activations, torch.Tensor):
        a, padding = validate_activations(activations)
        return torch.from_numpy(np.require(a, requirements=["C", "W"])), bool(padding.any())
    a = activations.detach()
    if a.is_complex() or not (a.is_floating_point() or a.dtype == torch.bool or _is_integer(a.dtype)):
        raise ValueError(f"activations must be real numeric values, got dtype {a.dtype}")
    if a.ndim < 2:
        raise ValueError(f"activations must have shape (..., n_x, units), got shape {tuple(a.shape)}")
    if a.shape[-1] == 0 or a.shape[-2] == 0:
        raise ValueError(f"activations has an empty pattern or unit axis: shape {tuple(a.shape)}")
    if a.dtype not in (torch.float32, torch.float64):
        a = a.to(torch.float64)  # as numpy bins integers and float16 in float64
    if bool(torch.isfinite(a.sum())):  # fast path: no NaN, no inf
        return a, False
    if bool(torch.isinf(a).any()):
        raise ValueError("activations contain infinite values (did training diverge?)")
    # The NaN layout checks of validate_activations, on a (..., 2, units) stand-in with its two rows NaN where
    # some / every pattern of a unit is NaN (the only facts those checks read): the same errors, tiny copy.
    nan = torch.isnan(a)
    stand_in = torch.stack([nan.any(dim=-2), nan.all(dim=-2)], dim=-2).cpu().numpy()
    validate_activations(np.where(stand_in, np.nan, 0.0))
    return a, True


def _is_integer(dtype: torch.dtype) -> bool:
    return dtype in (torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64)


def _probabilities(p_x, p_y_given_x, n_x: int) -> tuple[np.ndarray, np.ndarray]:
    """p(x) and p(y|x) as checked float64 host arrays (the checks and messages of ``validate_layer_inputs``)."""
    host = lambda v: v.detach().cpu().numpy() if isinstance(v, torch.Tensor) else v  # noqa: E731
    px = validate_distribution(host(p_x), "p_x", ndim=1)
    if px.size != n_x:
        raise ValueError(f"p_x has {px.size} entries but activations have n_x = {n_x} patterns")
    pyx = validate_conditional(host(p_y_given_x), "p_y_given_x")
    if pyx.shape[0] != px.size:
        raise ValueError(f"p_y_given_x has {pyx.shape[0]} rows but p_x has {px.size} entries")
    return px, pyx


def _device_indices(a: torch.Tensor, grid: _Grid, padded: bool) -> tuple[torch.Tensor, int]:
    """Bin indices (non-negative integers, in a float or int64 tensor shaped like ``a``; NaN padding -> 0) and the
    number of values per unit (the packing base): numpy's ``binning._grid_indices`` operation for operation."""
    const = lambda v: torch.tensor(v, dtype=a.dtype, device=a.device)  # noqa: E731 (device scalar in a's dtype)
    nan = torch.isnan(a) if padded else None
    if grid.bin_width is not None:  # floor((a - anchor) / w) in a's dtype, shifted by the minimum over all values
        idx = ((a - const(grid.anchor)) / const(grid.bin_width)).floor_().to(torch.float64)
        low, high = (idx, idx) if nan is None else (idx.masked_fill(nan, math.inf), idx.masked_fill(nan, -math.inf))
        lo, hi = (float(v) for v in torch.stack([low.amin(), high.amax()]).cpu())
        return _unpad(idx.sub_(lo), nan), int(hi - lo) + 1
    n_bins, limits = grid.n_bins, grid.limits
    if grid.scheme == "idnns":
        return _digitize(a, float(limits[0]), float(limits[1]), n_bins), n_bins + 1
    if isinstance(limits, str):  # "adaptive": each slice's own range (min, max over patterns and units)
        flat = a.flatten(-2)
        low, high = (flat, flat) if nan is None else (flat.masked_fill(nan.flatten(-2), math.inf),
                                                       flat.masked_fill(nan.flatten(-2), -math.inf))
        lo, hi = low.amin(dim=-1)[..., None, None], high.amax(dim=-1)[..., None, None]
        idx = (a - lo).mul_(torch.div(const(n_bins), torch.where(hi > lo, hi - lo, const(1.0))))
    else:
        lo, hi = (float(v) for v in limits)
        idx = (a - const(lo)).mul_(const(n_bins / (hi - lo)))
    return _unpad(idx.floor_().clamp_(0, n_bins - 1), nan), n_bins


def _unpad(idx: torch.Tensor, nan: torch.Tensor | None) -> torch.Tensor:
    """Index 0 for the NaN padding values (their index is NaN, or garbage for int64), in place."""
    return idx if nan is None else idx.masked_fill_(nan, 0)


def _digitize(a: torch.Tensor, lo: float, hi: float, n_bins: int) -> torch.Tensor:
    """``np.digitize(a, np.linspace(lo, hi, n_bins))`` (int64; NaN -> 0) as ``binning._digitize`` computes
    it: a guess from the equal spacing in a's dtype, corrected by one float64 comparison with numpy's edges each
    way."""
    ext = torch.from_numpy(np.concatenate([[-np.inf], np.linspace(lo, hi, n_bins), [np.inf]])).to(a.device)
    const = lambda v: torch.tensor(v, dtype=a.dtype, device=a.device)  # noqa: E731
    k = (a - const(lo)).mul_(const((n_bins - 1) / (hi - lo))).add_(const(1.0)).floor_().clamp_(0, n_bins)
    ki = k.nan_to_num_(0.0).to(torch.int64)
    ki -= (a < ext[ki]).to(torch.int64)
    ki += (a >= ext[ki + 1]).to(torch.int64)
    return ki


def _words(idx: torch.Tensor, base: int) -> tuple[torch.Tensor, int]:
    """Rows of indices (N, units) in [0, base) packed into int64 words (N, m), k units per word with base^k <=
    2^53 (float64 products and sums of integers below 2^53 are exact), and the exclusive bound of a word's value
    (base^units when one word holds the row).  Equal rows <=> equal words."""
    n, units = idx.shape
    k = 1
    while k < units and base ** (k + 1) <= 2**53:
        k += 1
    powers = torch.tensor([float(base) ** e for e in range(k - 1, -1, -1)], dtype=torch.float64, device=idx.device)
    full, rest = divmod(units, k)
    words = torch.empty((n, full + (rest > 0)), dtype=torch.int64, device=idx.device)
    step = max(1, _CHUNK // (n * k))
    for j in range(0, full, step):  # chunks of words bound the float64 scratch (one chunk unless very wide)
        j1 = min(full, j + step)
        words[:, j:j1] = (idx[:, j * k:j1 * k].reshape(n, j1 - j, k).to(torch.float64) @ powers).to(torch.int64)
    if rest:
        words[:, full] = (idx[:, full * k:].to(torch.float64) @ powers[k - rest:]).to(torch.int64)
    return words, base ** units if words.shape[1] == 1 else base ** k


def _states(rows: torch.Tensor, base: int, n_x: int) -> tuple[torch.Tensor, torch.Tensor, int]:
    """State of every (slice, pattern) row (G n_x,), the slice of every state, and the number of states, by ONE
    ``torch.unique`` over the keys (slice index, packed row) of all slices: states are numbered in key order."""
    words, bound = _words(rows, base)
    g = torch.arange(rows.shape[0] // n_x, device=rows.device).repeat_interleave(n_x)
    if words.shape[1] == 1 and (g.numel() // n_x) * bound <= 2**63 - 1:  # slice and row fit one int64
        keys, inv = torch.unique(g * bound + words[:, 0], return_inverse=True)
        return inv, keys // bound, keys.numel()
    keys, inv = torch.unique(torch.cat([g[:, None], words], dim=1), dim=0, return_inverse=True)
    return inv, keys[:, 0].contiguous(), keys.shape[0]


def _count_entropies(inv: torch.Tensor, y: np.ndarray, n_y: int, n_states: int):
    """H(T), H(T,Y), H(Y) in bits (H(T), H(T,Y) per slice (G,), float64 on the device) for uniform p(x) and
    labels y(x), from exact integer counts: H = log2 n - sum_x log2 c(x) / n with c(x) the size of x's state
    (of its (state, label) pair for H(T,Y))."""
    n_x = inv.shape[1]
    y_t = torch.from_numpy(y).to(inv.device)
    cell = inv * n_y + y_t
    c_t = torch.bincount(inv.reshape(-1), minlength=n_states)
    c_ty = torch.bincount(cell.reshape(-1), minlength=n_states * n_y)
    h_t = math.log2(n_x) - torch.log2(c_t[inv].to(torch.float64)).sum(dim=1) / n_x
    h_ty = math.log2(n_x) - torch.log2(c_ty[cell].to(torch.float64)).sum(dim=1) / n_x
    p_y = np.bincount(y, minlength=n_y) / n_x
    h_y = -np.sum(p_y[p_y > 0] * np.log2(p_y[p_y > 0]))
    return h_t, h_ty, float(h_y)


def _weighted_entropies(inv: torch.Tensor, px: np.ndarray, pyx: np.ndarray, n_states: int):
    """H(T), H(T,Y), H(Y) in bits and the states of positive mass, for any p(x) and p(y|x): p(t), p(t, y) by
    ``index_add_`` in float64, then -sum_x p(x) log p(s(x)) per slice (xlogy: p(x) = 0 adds 0)."""
    dev = inv.device
    g, n_x = inv.shape
    p_joint = px[:, None] * pyx
    p_y = p_joint.sum(axis=0)
    h_y = -np.sum(p_y[p_y > 0] * np.log(p_y[p_y > 0])) / LN2
    px_t, pj_t = (torch.from_numpy(np.array(v)).to(dev) for v in (px, p_joint))  # copies: px may be read-only
    flat = inv.reshape(-1)
    p_t = torch.zeros(n_states, dtype=torch.float64, device=dev).index_add_(0, flat, px_t.repeat(g))
    p_ty = torch.zeros((n_states, pj_t.shape[1]), dtype=torch.float64, device=dev).index_add_(
        0, flat, pj_t.repeat(g, 1))
    h_t = -torch.special.xlogy(px_t, p_t[inv]).sum(dim=1) / LN2
    h_ty = -torch.special.xlogy(pj_t, p_ty[inv]).sum(dim=(1, 2)) / LN2
    return h_t, h_ty, float(h_y), p_t > 0
