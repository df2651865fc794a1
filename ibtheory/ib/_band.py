"""Per-row bands of clusters for |Y| = 2 (private): the clusters a row's encoder can weigh, in O(|S| log K).

With w_x = p(y=1|x) and the clusters sorted by d_t = p(y=1|t), a row's log-weight
u_xt = ln p(t) - beta KL[w_x || d_t] (nats) is at most ln max_t p(t) - beta KL[w_x || d_t], and KL[w || d] is
convex in d with its minimum 0 at d = w: it decreases over the clusters below w and increases over those above.
So with M_x the larger log-weight of the two clusters next to w_x (a lower bound on the row's largest), every
cluster with

    KL[w_x || d_t] > kappa_x = (ln max_t p(t) - M_x + cut) / beta

lies more than ``cut`` nats below the row's largest, and those with KL <= kappa_x form one run of consecutive
clusters around w_x.  Its two ends are found by bisection (log2 K steps, each one KL per row; a compiled loop per
row, :func:`ibtheory.ib._kernels.band_ends`), so a band costs
O(|S| log K) and holds every pair within ``cut`` of its row's largest (usually a few more), exactly, with no
dense (|S|, K) array.  This is the ordering of p(y=1|x) that |Y| = 2 offers: at large beta each row sees the few
clusters next to it.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from . import _iterate as it
from ._kernels import band_ends, window_parts
from ._problem import Reduced

__all__ = ["Band", "band", "band_support", "band_log_partition", "kl_binary", "BAND_CELLS"]

#: |S| x clusters above which the |Y| = 2 map, a point's encoder and a certificate's tangent plane run on bands
BAND_CELLS = 20_000
#: widest band over mean band above which :func:`band_log_partition` sums the band's pairs instead of windows
_WIDE = 4


class Band(NamedTuple):
    """Clusters ``order`` (the live ones, sorted by p(y=1|t)); row x's band is order[first[x] : last[x] + 1]."""

    order: np.ndarray
    first: np.ndarray
    last: np.ndarray

    @property
    def counts(self) -> np.ndarray:
        return self.last - self.first + 1

    @property
    def width(self) -> int:
        return int(self.counts.max()) if self.first.size else 0

    def windows(self) -> tuple[np.ndarray, np.ndarray]:
        """Each row's band as a window of ``width`` slots: (clusters (n, width), valid (n, width)); a row's slots
        past its band repeat a cluster and are not valid."""
        pos = self.first[:, None] + np.arange(self.width)[None, :]
        return self.order[np.minimum(pos, self.order.size - 1)], pos <= self.last[:, None]

    def pairs(self) -> tuple[np.ndarray, np.ndarray]:
        """(rows, clusters) of every pair, sorted by row."""
        k = self.counts
        rows = np.repeat(np.arange(k.size), k)
        pos = np.arange(rows.size) - np.repeat(np.cumsum(k) - k, k) + self.first[rows]
        return rows, self.order[pos]

    def contains(self, rows: np.ndarray, clusters: np.ndarray) -> bool:
        """Whether every pair (rows, clusters) lies in this band (clusters outside ``order`` do not)."""
        rank = np.full(int(max(self.order.max(initial=-1), clusters.max(initial=-1))) + 1, -1)
        rank[self.order] = np.arange(self.order.size)
        r = rank[clusters]
        return bool(np.all((r >= self.first[rows]) & (r <= self.last[rows])))


def kl_binary(w: np.ndarray, neg_h: np.ndarray, log_d1: np.ndarray, log_d0: np.ndarray) -> np.ndarray:
    """KL[(1 - w, w) || (1 - d, d)] in nats from ln d, ln (1 - d) and the rows' negative entropies ``neg_h``
    (broadcast; 0 ln 0 = 0, +inf where d_y = 0 < w_y)."""
    with np.errstate(invalid="ignore"):
        cross = np.where(w > 0, w * log_d1, 0.0) + np.where(w < 1, (1 - w) * log_d0, 0.0)
    return np.maximum(neg_h - cross, 0.0)


def band(w: np.ndarray, neg_h: np.ndarray, beta: float, log_pt: np.ndarray, log_d1: np.ndarray,
         log_d0: np.ndarray, cut: float) -> Band:
    """The :class:`Band` of every row (see the module docstring): all clusters t with
    ln p(t) - beta KL[w_x || d_t] >= max_t' [ln p(t') - beta KL[w_x || d_t']] - ``cut`` (nats), and a few more.
    ``log_pt`` need not be normalised; clusters with ln p(t) = -inf are left out."""
    live = np.flatnonzero(np.isfinite(log_pt))
    order = live[np.argsort(log_d1[live] - log_d0[live], kind="stable")]  # by logit d, the same order as d
    L1, L0, LP = log_d1[order], log_d0[order], log_pt[order]
    K = order.size
    if K == 0:
        raise ValueError("log_pt: no cluster has positive weight")
    d = np.exp(L1)
    pos = np.searchsorted(d, w)  # clusters [0, pos) have d < w

    def kl(j):
        return kl_binary(w, neg_h, L1[j], L0[j])

    a, b = np.maximum(pos - 1, 0), np.minimum(pos, K - 1)
    with np.errstate(invalid="ignore"):
        M = np.maximum(LP[a] - beta * kl(a), LP[b] - beta * kl(b))
        kappa = (LP.max() - M + cut) / beta
    first, last = band_ends(w, neg_h, L1, L0, a.astype(np.intp), b.astype(np.intp), kappa)
    return Band(order, first, last)


def band_support(prob: Reduced, beta: float, log_pt: np.ndarray, log_dec: np.ndarray, cut: float) -> it.Support:
    """The pairs of :func:`band` as an :class:`ibtheory.ib._iterate.Support` (the map's sparse kernel)."""
    bd = band(prob.W[:, 1], prob.neg_entropy_rows, beta, log_pt, log_dec[:, 1], log_dec[:, 0], cut)
    rows, cols = bd.pairs()
    indptr = np.concatenate([[0], np.cumsum(bd.counts)])
    return it.Support(indptr, rows, cols, log_pt.size, np.ascontiguousarray(prob.W.T[:, rows]),
                      prob.neg_entropy_rows[rows], log_pt, log_dec, cut=float(cut))


def band_log_partition(prob: Reduced, beta: float, log_pt: np.ndarray, log_dec: np.ndarray,
                       cut: float) -> np.ndarray:
    """ln Z(x) = ln sum_t p(t) exp(-beta KL[w_x || d_t]) (nats) summed over each row's :func:`band` of ``cut``
    nats: below the full sum by at most ln(1 + K e^-cut).  One compiled pass over each row's band laid out as a
    window (:func:`ibtheory.ib._kernels.window_parts`; its posteriors are not used), or, where the widest band is
    more than ``_WIDE`` times the mean (the windows' (rows x widest) arrays would outgrow the pairs), over the
    band's pairs."""
    w, neg_h = prob.W[:, 1], prob.neg_entropy_rows
    bd = band(w, neg_h, beta, log_pt, log_dec[:, 1], log_dec[:, 0], cut)
    if bd.width * w.size > _WIDE * int(bd.counts.sum()) + 4096:
        sup = band_support(prob, beta, log_pt, log_dec, cut)
        with np.errstate(divide="ignore", invalid="ignore"):
            L = it.pair_scores(sup.w_rows, sup.neg_h, beta, log_pt, log_dec, sup.cols)
        return it.pair_lse(L, sup)
    idx, valid = bd.windows()
    log_d1, log_d0 = np.ascontiguousarray(log_dec[:, 1]), np.ascontiguousarray(log_dec[:, 0])  # Newton's layout
    return window_parts(w, prob.p_s, neg_h, float(beta), np.ascontiguousarray(log_pt, dtype=np.float64), log_d1,
                        log_d0, idx, valid)[1]
