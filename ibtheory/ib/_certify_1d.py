"""The one-dimensional half of the certificate (|Y| = 2, and collinear |Y| = 3 rows): the Gibbs distributions
q ~ exp(-a - lambda.W~), their images and values, and the branch and bound over intervals of s = E[W_1]; also the
:class:`Certificate` type.  The method is described in :mod:`ibtheory.ib.certify`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..info import LN2, entropy_rows, kl_matrix, mi_of_joint
from . import _iterate as it
from ._band import BAND_CELLS, band_log_partition
from ._problem import Reduced

__all__ = ["Certificate"]

_GRID_1D = np.sinh(np.arange(-90.0, 90.5, 3.0))


@dataclass(frozen=True)
class Certificate:
    """Result of :func:`certify`: ``gap`` (bits) >= Lagrangian(solution) - min Lagrangian, and where it is largest.

    ``g_upper`` and ``consistency`` are the two terms of the gap in nats; ``q_star`` (n_s,) is the best Gibbs
    distribution found (its value ``g_lower`` in nats is a lower bound on g); ``n_cells`` the final cell count;
    ``lambdas`` (n, k) the multipliers of the final mesh divided by beta (a warm start for a nearby beta).
    """

    gap: float
    g_upper: float
    g_lower: float
    consistency: float
    q_star: np.ndarray
    n_cells: int
    converged: bool
    lambdas: np.ndarray | None = None


#: nats of the bound the rows may spend in all to lift the plane over their own vertices (:func:`lift_plane`;
#: 1/100 of the default gap_tol)
LIFT_BUDGET = 1e-9


def lift_plane(a: np.ndarray, p_s: np.ndarray, beta: float, neg_h: np.ndarray) -> tuple[np.ndarray, float]:
    """The tangent plane ``a`` raised over the vertices q = delta_x of rows too light to matter, and what that adds
    to the bound (nats).

    Any a bounds the optimum by a.p(x) + max_q [phi(q) - a.q].  At the vertex of row x, phi - a = ln p(x) - ln Z(x):
    positive when no cluster is near the row, however light it is, so a row of p(x) = 1e-12 far from every cluster
    made the certified gap 0.04 to 50 bits (its own cluster would change the Lagrangian by ~1e-12 nats), and the
    certificate's maximiser pointed the repairs at that row instead of at a missing cluster.  Raising a_x to
    phi(delta_x) = beta sum_y W ln W removes that vertex at a cost of p(x) (phi(delta_x) - a_x) in a.p(x): the
    cheapest rows are lifted while the costs add up to at most ``LIFT_BUDGET`` (heavier rows keep their witness for
    the repairs).  Returns (a', sum of the costs)."""
    over = beta * neg_h - a
    cand = np.flatnonzero(over > 0)
    if cand.size == 0:
        return a, 0.0
    cost = p_s[cand] * over[cand]
    order = np.argsort(cost, kind="stable")
    take = cand[order[np.cumsum(cost[order]) <= LIFT_BUDGET]]
    if take.size == 0:
        return a, 0.0
    out = a.copy()
    out[take] = beta * neg_h[take]
    return out, float(p_s[take] @ over[take])


def _H(s: np.ndarray) -> np.ndarray:
    """Entropy (nats) of the distributions whose last k coordinates are s (..., k)."""
    full = np.concatenate([1.0 - s.sum(axis=-1, keepdims=True), s], axis=-1)
    return entropy_rows(np.clip(full, 0.0, 1.0), "nats")


def _gibbs_q(a: np.ndarray, Wt: np.ndarray, lam: np.ndarray) -> np.ndarray:
    """The normalised Gibbs q ~ exp(-a - W~ lambda) for rows lambda (m, k); ``a`` is one tangent plane (n,) or one
    per row (m, n) (the batched certificates).  Entries below 1e-304 of the largest are 0."""
    logits = -np.atleast_2d(a) - lam @ Wt.T
    q = it.exp_nonpositive(logits - logits.max(axis=1, keepdims=True))
    q /= q.sum(axis=1, keepdims=True)
    return q


def _image(a: np.ndarray, Wt: np.ndarray, lam: np.ndarray) -> np.ndarray:
    """v(lambda) = E_lambda[W~] for rows lambda (m, k): the mean of W~ under q ~ exp(-a - W~ lambda)."""
    return _gibbs_q(a, Wt, lam) @ Wt


def _gibbs_values(a, Wt, W, beta, lam):
    """phi(q) - a.q for the (normalised) Gibbs q ~ exp(-a - W~ lambda), rows lambda (m, k); returns (values, q).

    ``a`` (n,) or (m, n) and ``beta`` a number or (m,): one problem, or one per row."""
    q = _gibbs_q(a, Wt, lam)
    # the value of the q actually formed (not of the exact Gibbs q: with a huge lambda the logits carry rounding
    # errors of |lambda| eps), so that it is a valid lower bound
    vals = entropy_rows(q, "nats") - beta * entropy_rows(q @ W, "nats") - (q * np.atleast_2d(a)).sum(axis=1)
    return vals, q


def _bounds_1d(a, w, beta, sL, sR, lL, lR, fL, fR, ent=_H):
    """Cell bounds on intervals [sL, sR] of s = E[W_1]: min over the 3 candidate lambdas of the max of the two
    vertex terms F(lambda, v) - beta H(v) (exact minimum over lambda for k = 1).

    ``a`` is the tangent plane (n,) or one per cell (m, n), ``beta`` a number or one per cell (m,) (the batched
    certificates of ``ib._certify_batch`` bound the cells of many betas at once).  Terms of the log-sum-exp below
    1e-304 of the largest are flushed to 0 (exp's subnormal path is 10-30x slower): that lowers F by less than
    n 1e-304 nats, far below the rounding of any reported gap.
    """
    A = np.atleast_2d(a)
    cL, cR = beta * ent(sL[:, None]), beta * ent(sR[:, None])
    width = sR - sL
    ok = width > 0
    lam_eq = np.where(ok, (cR - cL) / np.where(ok, width, 1.0), 0.0)
    cand = np.stack([lam_eq, np.where(fL, lL, 0.0), np.where(fR, lR, 0.0)], axis=1)  # (m, 3)
    valid = np.stack([ok, fL, fR], axis=1)
    base = -A[:, None, :] - cand[..., None] * w[None, None, :]  # (m, 3, n)
    out = np.full(cand.shape, -np.inf)
    for v, c in ((sL, cL), (sR, cR)):
        logits = base + (cand * v[:, None])[..., None]
        mx = logits.max(axis=2)
        F = mx + np.log(it.exp_nonpositive(logits - mx[..., None]).sum(axis=2))
        out = np.maximum(out, F - c[:, None])
    out = np.where(valid & np.isfinite(out), out, np.inf)
    return out.min(axis=1), lam_eq


def _bound_1d(a, Wt, W, beta, lam, target, max_rounds, max_points, ent=_H):
    """Branch and bound over intervals of s in [min W_1, max W_1] (|Y| = 2; ``ent`` maps s (m, 1) to H (nats),
    another line through the simplex for a |Y| = 3 problem whose rows p(y|x) are collinear)."""
    w = Wt[:, 0]
    lam = np.unique(lam[:, 0])
    s = _image(a, Wt, lam[:, None])[:, 0]
    lower, q_best = _best(a, Wt, W, beta, lam[:, None], -np.inf, None)
    # points sorted by s (s decreases with lambda), plus the two ends of the hull with infinite lambda
    pts_s = np.concatenate([[w.min()], s[::-1], [w.max()]])
    pts_l = np.concatenate([[np.inf], lam[::-1], [-np.inf]])
    order = np.argsort(pts_s, kind="stable")
    pts_s, pts_l = pts_s[order], pts_l[order]
    keep = np.r_[True, np.diff(pts_s) > 0]
    pts_s, pts_l = pts_s[keep], pts_l[keep]
    if pts_s.size == 1:  # all rows equal: s is a single point, psi(s) = ln sum exp(-a)
        ub = float(max(it.lse(-a, axis=0) - beta * ent(pts_s[:1, None])[0], lower))
        return ub, lower, q_best, 1, True, np.zeros((0, 1))
    sL, sR, lL, lR = pts_s[:-1], pts_s[1:], pts_l[:-1], pts_l[1:]
    U, leq = _bounds_1d(a, w, beta, sL, sR, lL, lR, np.isfinite(lL), np.isfinite(lR), ent)
    rounds = 0
    while True:
        thr = max(target, lower) + 0.25 * target
        bad = U > thr
        if not bad.any() or rounds >= max_rounds or sL.size > max_points:
            break
        rounds += 1
        new_l = leq[bad]
        new_s = _image(a, Wt, new_l[:, None])[:, 0]
        lower, q_best = _best(a, Wt, W, beta, new_l[:, None], lower, q_best)
        inside = (new_s > sL[bad]) & (new_s < sR[bad])
        if not inside.any():
            break
        idx = np.flatnonzero(bad)[inside]
        ns, nl = new_s[inside], new_l[inside]
        nsL = np.concatenate([sL[idx], ns])
        nsR = np.concatenate([ns, sR[idx]])
        nlL = np.concatenate([lL[idx], nl])
        nlR = np.concatenate([nl, lR[idx]])
        nU, nleq = _bounds_1d(a, w, beta, nsL, nsR, nlL, nlR, np.isfinite(nlL), np.isfinite(nlR), ent)
        rest = np.ones(sL.size, bool)
        rest[idx] = False
        sL, sR = np.concatenate([sL[rest], nsL]), np.concatenate([sR[rest], nsR])
        lL, lR = np.concatenate([lL[rest], nlL]), np.concatenate([lR[rest], nlR])
        U, leq = np.concatenate([U[rest], nU]), np.concatenate([leq[rest], nleq])
    g_up = float(max(U.max(), lower))
    # warm start for a nearby beta: the multipliers of the finest intervals near touching points (at most 64)
    near = np.argsort(-U)[:32]
    warm = np.concatenate([lL[near], lR[near]])
    warm = np.unique(warm[np.isfinite(warm)])[:, None]
    return g_up, lower, q_best, int(sL.size), bool(not (U > max(target, lower) + 0.25 * target).any()), warm


def _best(a, Wt, W, beta, lam, lower, q_best):
    vals, q = _gibbs_values(a, Wt, W, beta, lam)
    i = int(np.argmax(vals))
    if vals[i] > lower:
        return float(vals[i]), q[i]
    return lower, q_best


def tangent_plane(prob: Reduced, beta: float, solution, logZ: np.ndarray) -> tuple[np.ndarray, float]:
    """The plane a_x = -ln p(x) - beta H(p(y|x)) + ln Z(x) of a solution (``logZ`` its ln Z(x), nats), lifted over
    the vertices of rows too light to matter (:func:`~ibtheory.ib._certify_1d.lift_plane`), and the consistency term
    a.p - achieved = beta I(S;Y) - beta I(T;Y) + I(S;T) + sum_s p(s) ln Z(s) + the lift (nats)."""
    neg_h = prob.neg_entropy_rows
    a, lifted = lift_plane(-np.log(prob.p_s) + beta * neg_h + logZ, prob.p_s, beta, neg_h)
    consistency = (beta * mi_of_joint(prob.p_s[:, None] * prob.W, units="nats")
                   - LN2 * (beta * solution.I_TY - solution.I_XT) + float(prob.p_s @ logZ) + lifted)
    return a, consistency


#: |Y| = 2 above ``BAND_CELLS``: nats below a row's largest term from which ln Z(x) of the tangent plane leaves a
#: cluster out (e^-60 = 9e-27 of it; any plane gives a rigorous bound, this one is the full sum's to 1e-24 nats)
PLANE_CUT = 60.0


def _plane(prob: Reduced, beta: float, solution) -> tuple[np.ndarray, float, np.ndarray]:
    """(a, consistency, cluster multipliers) of one solution, as in ``certify_state``."""
    W = prob.W
    neg_h = prob.neg_entropy_rows
    with np.errstate(divide="ignore"):
        log_dec = np.log(solution.decoder)
        log_pt = np.log(solution.p_t)
    if prob.n_y == 2 and prob.n_s * log_pt.size > BAND_CELLS:  # any a gives a bound: ln Z over the bands is one
        logZ = band_log_partition(prob, beta, log_pt, log_dec, PLANE_CUT)
    else:
        with np.errstate(divide="ignore"):
            logZ = it.lse(log_pt[None, :] - beta * kl_matrix(W, log_dec, neg_h, "nats").T, axis=1)
    a, consistency = tangent_plane(prob, beta, solution, logZ)
    with np.errstate(divide="ignore", invalid="ignore"):
        lam_t = beta * (log_dec[:, 0] - log_dec[:, 1])
    return a, consistency, lam_t[np.isfinite(lam_t)]


def _first_by(group: np.ndarray, key: np.ndarray, n_groups: int) -> np.ndarray:
    """Per group the index of its largest ``key`` (-1 for an empty group)."""
    o = np.lexsort((-key, group))
    first = o[np.r_[True, group[o][1:] != group[o][:-1]]] if o.size else o
    out = np.full(n_groups, -1)
    out[group[first]] = first
    return out
