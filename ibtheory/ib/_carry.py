"""Sparse supports kept valid while the state moves (private; |Y| > 2 at scale).

A support (``ibtheory.ib._iterate.support``) holds per class s the pairs (s, t) whose log-weight
u(s, t) = ln p(t) - beta KL[W_s || p(y|t)] (nats) lies within its cut c of the row's best b(s), at the state it was
built for (its reference).  Building one is a k-d tree search over every class (~1-2 s for 20,000 classes and
~10^6 pairs), so the solver carries a support while the clusters move, spending part of the cut: ``used`` nats,
kept at most ``DRIFT``, so every pair left out lies at least c - used below its row's best.

- Drift: from the reference to the state, cluster t's log-weights move by at most
  d_t = |d ln p(t)| + beta max_y |d ln p(y|t)| (W_s sums to 1), so a pair left out scores at most its reference
  score plus d_t (:func:`drifts`).
- A merge (:func:`remapped`): ``ibtheory.ib._iterate.remap_support`` maps the pairs onto the merged clusters, each
  with its heaviest member's reference.
- A move (:func:`refreshed`): a row's best over its carried pairs may fall by l(s) = b(s) - b'(s), so the left-out
  pairs lie at least c - used - max_t d_t - max_s l(s) below it.  When that spends more than ``DRIFT``, the few
  clusters that moved more than ``HOT`` nats have their pairs found again for every class (a tree of those clusters
  only), and the few classes whose best fell more than ``HOT`` get a search of their own; the rest then spends only
  max d_t over the other clusters plus max l(s) over the other classes.  More than ``HOT_SHARE`` of either: None
  (a full search is cheaper).  After a merge the 20,000 x 6 reverse sweep's clusters mostly sit still (tens of
  18,000 move more than 0.1 nat), so this replaces most of its searches.
- A lower beta (:func:`lowered`): beta' = r beta moves every score by (1 - r) of its distance to ln p(t).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from scipy.spatial import cKDTree

from . import _iterate as it
from ._problem import Reduced

__all__ = ["DRIFT", "HOT", "HOT_SHARE", "drifts", "drift", "row_best", "remapped", "refreshed", "lowered"]

#: largest share of a support's cut (nats) spent carrying it over merges, moves and lower betas
DRIFT = 2.5
#: a cluster that moved, or a class whose best fell, by more than this (nats) has its pairs found again
HOT = 0.1
#: most share of the clusters (and of the classes) found again; beyond, a full search
HOT_SHARE = 0.1


def drifts(beta: float, log_pt: np.ndarray, log_dec: np.ndarray, sup: it.Support) -> np.ndarray:
    """Per cluster how far (nats) its pairs' log-weights may have moved since ``sup``'s reference state:
    |d ln p(t)| + beta max_y |d ln p(y|t)|; +inf for a cluster that lost all its mass, or whose state is not a
    number; 0 for one dead at the reference (a cluster without mass never regains it under the map)."""
    live = np.isfinite(sup.log_pt)
    same = (log_dec == sup.log_dec) | ~live[:, None]  # equal (also both -inf) or a cluster already dead
    with np.errstate(invalid="ignore"):
        d_dec = np.where(same, 0.0, np.abs(log_dec - sup.log_dec))  # inf where one of them is -inf
        d_pt = np.where(live, np.abs(log_pt - sup.log_pt), 0.0)
    d = d_pt + beta * np.max(d_dec, axis=1, initial=0.0)
    return np.where(np.isnan(d), np.inf, d)


def drift(beta: float, st: it.State, sup: it.Support) -> float:
    """The largest of :func:`drifts` (nats)."""
    return float(np.max(drifts(beta, st.log_pt, st.log_dec, sup), initial=0.0))


def row_best(sup: it.Support, beta: float, log_pt: np.ndarray, log_dec: np.ndarray) -> np.ndarray:
    """Per class the largest score ln p(t) - beta KL[s, t] over its pairs in ``sup`` at (log_pt, log_dec)."""
    return np.maximum.reduceat(it.pair_scores(sup.w_rows, sup.neg_h, beta, log_pt, log_dec, sup.cols),
                               sup.indptr[:-1])


def remapped(prob: Reduced, beta: float, st: it.State, merged: it.State, where: np.ndarray) -> it.Support | None:
    """``st``'s support carried over to ``merged`` (``st`` pruned and merged, ``where`` its map of clusters) and
    made valid there (:func:`refreshed`), or None (|Y| = 2, no support, a class left without a pair, or
    :func:`refreshed` gives None)."""
    old = st.support
    if prob.n_y == 2 or old is None:
        return None
    sup = it.remap_support(old, where, prob.n_s)
    if sup is None:
        return None
    with np.errstate(divide="ignore", invalid="ignore"):
        best_old = row_best(old, beta, old.log_pt, old.log_dec)
    return refreshed(prob, beta, sup, best_old, merged.log_pt, merged.log_dec)


def refreshed(prob: Reduced, beta: float, sup: it.Support, best_ref: np.ndarray, log_pt: np.ndarray,
              log_dec: np.ndarray) -> it.Support | None:
    """``sup`` (on the clusters of the state (log_pt, log_dec); at its reference every pair left out lay at least
    cut - used below ``best_ref``) as a support of that state, the state its new reference (module docstring):
    unchanged but for ``used`` when that stays within ``DRIFT``, else with the pairs of the clusters that moved and
    of the classes whose best fell found again; None when those are more than ``HOT_SHARE``, when ``DRIFT`` is
    still exceeded, or when a class is left without a pair of finite score."""
    n_s, K = prob.n_s, log_pt.size
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        d = drifts(beta, log_pt, log_dec, sup)
        u = it.pair_scores(sup.w_rows, sup.neg_h, beta, log_pt, log_dec, sup.cols)
        best = np.maximum.reduceat(u, sup.indptr[:-1])
        loss = _loss(best_ref, best)
        used = sup.used + float(np.max(d, initial=0.0)) + max(float(np.max(loss, initial=0.0)), 0.0)
        if used <= DRIFT:
            return replace(sup, log_pt=log_pt, log_dec=log_dec, used=used)
        hot = np.flatnonzero(d > HOT)
        if hot.size > HOT_SHARE * K:
            return None
        rows, cols = sup.rows, sup.cols
        if hot.size:  # every class's pairs with the clusters that moved, those not carried
            r2, c2 = _ball(prob, beta, log_pt, log_dec, best, sup.cut, hot, np.arange(n_s))
            is_hot = np.zeros(K, dtype=bool)
            is_hot[hot] = True
            have = np.flatnonzero(is_hot[cols])
            new = ~np.isin(r2 * K + c2, rows[have] * K + cols[have])
            rows, cols, u = _more(prob, beta, log_pt, log_dec, rows, cols, u, r2[new], c2[new], best)
        loss = _loss(best_ref, best)
        fell = np.flatnonzero(~(loss <= HOT))  # +inf (a class whose best is now -inf) and nan too
        if fell.size > HOT_SHARE * n_s:
            return None
        if fell.size:  # those classes' pairs with every cluster, instead of their carried ones
            r2, c2 = _ball(prob, beta, log_pt, log_dec, best[fell], sup.cut, np.arange(K), fell)
            is_fell = np.zeros(n_s, dtype=bool)
            is_fell[fell] = True
            carried = ~is_fell[rows]
            best[fell] = -np.inf
            rows, cols, u = _more(prob, beta, log_pt, log_dec, rows[carried], cols[carried], u[carried], r2, c2, best)
        cold = np.ones(K, dtype=bool)
        cold[hot] = False
        stay = np.ones(n_s, dtype=bool)
        stay[fell] = False
        used = sup.used + float(np.max(d[cold], initial=0.0)) + max(float(np.max(loss[stay], initial=0.0)), 0.0)
        if not used <= DRIFT or not np.all(np.isfinite(best)):
            return None
    keep = u >= best[rows] - sup.cut  # the pairs now further than the cut lie at least the cut below: left out
    order = np.argsort(rows[keep], kind="stable")  # by class
    rows, cols = rows[keep][order], cols[keep][order]
    indptr = np.concatenate([[0], np.cumsum(np.bincount(rows, minlength=n_s))])
    return it.Support(indptr, rows, cols, K, np.ascontiguousarray(prob.W.T[:, rows]), prob.neg_entropy_rows[rows],
                      log_pt, log_dec, used=used, cut=sup.cut)


def _loss(best_ref: np.ndarray, best: np.ndarray) -> np.ndarray:
    """How far each class's best fell (nats; 0 where it had none; +inf where it has none now)."""
    return np.where(np.isfinite(best_ref), best_ref - best, 0.0)


def _ball(prob: Reduced, beta: float, log_pt, log_dec, floor: np.ndarray, cut: float, clusters: np.ndarray,
          classes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(classes, clusters) of the pairs of ``classes`` with ``clusters`` that can score above ``floor`` - ``cut``:
    KL[w || d] >= ||sqrt w - sqrt d||^2, so only those within sqrt((max ln p(t) - floor + cut) / beta) of the
    class in that metric (the ball of ``ibtheory.ib._iterate.support``, from a tree of ``clusters`` only)."""
    top = float(np.max(log_pt[clusters]))
    radius = it.ball_radius((top - floor + cut) / beta)
    tree = cKDTree(np.exp(0.5 * log_dec[clusters]), leafsize=it._LEAF)
    rows, local = it._ball_pairs(tree, np.sqrt(prob.W[classes]), radius, classes)
    return rows, clusters[local]


def _more(prob: Reduced, beta: float, log_pt, log_dec, rows, cols, u, r2, c2, best: np.ndarray
          ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The pairs (rows, cols) with scores ``u`` and the pairs (r2, c2), scored at (log_pt, log_dec); each class's
    ``best`` raised in place to its best over the new ones."""
    u2 = it.pair_scores(prob.W.T, prob.neg_entropy_rows, beta, log_pt, log_dec, c2, r2)
    np.maximum.at(best, r2, u2)
    return np.concatenate([rows, r2]), np.concatenate([cols, c2]), np.concatenate([u, u2])


def lowered(sup: it.Support, beta: float, beta_new: float) -> it.Support | None:
    """A support built at ``beta`` (its state, ``used`` nats of its cut c spent) as a support at ``beta_new`` <
    ``beta`` (the reverse sweep's next beta), or None when that spends more than ``DRIFT`` nats.

    At its state every pair left out scores u_st = ln p(t) - beta KL <= b(s) - (c - used), b(s) = u_sb the row's
    best (cluster b).  At beta' = r beta, u'_st = r u_st + (1 - r) ln p(t), and the row's best is at least
    u'_sb = r b(s) + (1 - r) ln p(b).  So the pairs left out lie at least r (c - used) - (1 - r) (ln max_t p(t) -
    ln p(b)) below it: the support spends (1 - r) (c + max_s [ln max_t p(t) - ln p(b(s))]) + r used."""
    r = beta_new / beta
    with np.errstate(divide="ignore", invalid="ignore"):
        u = it.pair_scores(sup.w_rows, sup.neg_h, beta, sup.log_pt, sup.log_dec, sup.cols)
        starts = sup.indptr[:-1]
        best = np.maximum.reduceat(u, starts)
        log_pb = np.maximum.reduceat(np.where(u == best[sup.rows], sup.log_pt[sup.cols], -np.inf), starts)
    live = np.isfinite(best) & np.isfinite(log_pb)
    top = np.max(sup.log_pt[np.isfinite(sup.log_pt)], initial=-np.inf)
    spread = float(np.max(top - log_pb[live], initial=0.0))
    used = (1.0 - r) * (sup.cut + spread) + r * sup.used
    return replace(sup, used=used) if np.isfinite(used) and used <= DRIFT else None
