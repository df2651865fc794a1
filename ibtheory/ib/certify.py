"""A certificate of optimality for IB solutions with |Y| = 2 or 3: a rigorous upper bound on the Lagrangian gap.

Write beta I(T;Y) - I(X;T) = H(X) - beta H(Y) + sum_t p(t) phi(q_t), with q_t = p(x|t) and

    phi(q) = H(q) - beta H(q W)          (nats; W = p(y|x), a row-stochastic (n_x, n_y) matrix).

Every decomposition p(x) = sum_t p(t) q_t is an encoder, so the optimum is the upper concave envelope of phi at
p(x).  Any vector a gives the affine function q -> a.q; if phi(q) <= a.q + g for all q then the optimum is at most
a.p(x) + g.  At a self-consistent solution the choice

    a_x = -ln p(x) - beta H(p(y|x)) + ln Z(x, beta)

is a plane touching phi at every q_t, so the achieved value equals a.p(x) and

    gap = a.p(x) - achieved + g,    g = max_q [phi(q) - a.q] >= 0,

bounds how far the Lagrangian I(X;T) - beta I(T;Y) is above the global minimum (reported in bits).  To bound g,
parametrise s = q W (k = |Y| - 1 free coordinates s_1..s_k, lambda in R^k acting on them):

    max {H(q) - a.q : q W = s} = psi(s) = min_lambda F(lambda, s),  F = ln sum_x exp(-a_x - lambda.(W_x - s)),

so g = max_s [psi(s) - beta H(s)].  For fixed lambda, F(lambda, s) - beta H(s) is convex in s (affine minus
concave), so on a simplex cell C of s-space with vertices v_i,

    max_{s in C} [psi(s) - beta H(s)] <= min_lambda max_i [F(lambda, v_i) - beta H(v_i)] <= max_i [...](lambda_c)

for any candidate lambda_c.  By Sion's minimax theorem the middle term equals max_{s in C} [psi(s) - beta Hlin(s)],
Hlin the linear interpolant of H on C (F is affine in s): the only slack is beta max_C (H - Hlin) = O(beta h^2), h
the cell's size, so refining the cells near the maximisers drives the bound to g.

|Y| = 2 (k = 1): cells are intervals between images v(lambda) = E_lambda[W] of chosen lambdas (so their lambda
is known exactly) and the extreme rows of W; the candidates (each vertex's lambda and the lambda equalising both
vertex terms) give the exact minimum over lambda; a cell is split at the image of its equalising lambda.

|Y| = 3 (k = 2): cells are triangles, first a fan from an interior point over the hull polygon of the rows W~_x
(the domain of s), then split into four at their edges' midpoints while their bound exceeds the target (branch and
bound; a cell is final once its bound is below max(target, best lower bound)).  The minimum over lambda of the
max of three convex terms is attained at one of: the lambda equalising the three terms (F(., v_i) - F(., v_j) is
affine in lambda: a 2x2 linear system; optimal when the Gibbs mean E_lambda[W~] lies in the cell), for each edge
the best lambda on the line where its two terms are equal (the maximiser on that edge; damped Newton), or a
vertex's own lambda (damped Newton), so all of them are candidates, plus the parent cell's best.  Every candidate
gives a valid bound whatever its accuracy; the bound adds a rounding allowance of 1e-14 (|a| + 2|lambda|_1 + 2 c)
nats, which also makes the huge multipliers of degenerate cells harmless.  Rows collinear up to rounding (e.g.
|X| = 2) reduce to the 1-D problem on their segment.

The maximising q (a Gibbs q ~ exp(-a - lambda.W), its value evaluated for the normalised q actually formed, so it
is an exact lower bound on g up to rounding) seeds a new cluster when the gap is too large (``seed_cluster``).

References
----------
1. N. Tishby, F. C. Pereira, W. Bialek, "The information bottleneck method", Allerton 1999.
2. H. S. Witsenhausen and A. D. Wyner, "A conditional entropy bound for a pair of discrete random variables",
   IEEE Trans. Inf. Theory 21 (1975) 493-501 (the envelope formulation).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..info import LN2, entropy_rows, kl_matrix, mi_of_joint
from . import _iterate as it
from ._problem import Reduced, ib_problem

__all__ = ["Certificate", "certify_state", "certify_solution", "seed_cluster"]

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


def certify_state(prob: Reduced, beta: float, solution, target: float = 2e-8, max_rounds: int = 60,
                  max_points: int = 20000, warm: np.ndarray | None = None) -> Certificate:
    """Certificate for an :class:`~ibtheory.ib.solver.IBSolution` on the reduced problem ``prob`` (|Y| <= 3).

    ``target`` (nats) is the cell bound below which refinement stops; ``warm`` (n, k) extra multipliers divided by
    beta (``Certificate.lambdas`` of a nearby beta) seed the mesh (|Y| = 2) or the lower bound (|Y| = 3).  The
    |Y| = 3 branch and bound may use 4 ``max_rounds`` rounds and 3 ``max_points`` cells; a bound that runs out of
    budget is still valid (``converged`` False).  See the module docstring.
    """
    if prob.n_y > 3:
        raise ValueError(f"the certificate handles |Y| <= 3, got |Y| = {prob.n_y}")
    W = prob.W
    p_t, dec = solution.p_t, solution.decoder
    neg_h = prob.neg_entropy_rows
    with np.errstate(divide="ignore"):
        log_dec = np.log(dec)
        D = kl_matrix(W, log_dec, neg_h, "nats").T
        L = np.log(p_t)[None, :] - beta * D
    logZ = it.lse(L, axis=1)
    a = -np.log(prob.p_s) + beta * neg_h + logZ
    # a.p - achieved = beta I(S;Y) - beta I(T;Y) + I(S;T) + sum_s p(s) ln Z(s)   (nats)
    I_sy = mi_of_joint(prob.p_s[:, None] * W, units="nats")
    consistency = beta * I_sy - LN2 * (beta * solution.I_TY - solution.I_XT) + float(prob.p_s @ logZ)
    k = prob.n_y - 1
    Wt = W[:, 1:]
    with np.errstate(divide="ignore", invalid="ignore"):
        lam_t = beta * (log_dec[:, :1] - log_dec[:, 1:])
    lam_t = lam_t[np.all(np.isfinite(lam_t), axis=1)]
    extra = [np.zeros((1, k))] + ([] if warm is None else [beta * warm])
    if k == 1:  # vertices: cluster points, an asinh-spaced lambda grid, the hull's ends (lambda infinite)
        lam = np.concatenate([lam_t, _GRID_1D[:, None]] + extra)
        g_up, lower, q_best, n_cells, done, keep_lam = _bound_1d(a, Wt, W, beta, lam, target, max_rounds, max_points)
    else:  # the multipliers seed the lower bound only; the mesh starts from the hull of the rows
        lam = np.concatenate([lam_t] + extra)
        from ._certify_2d import _bound_2d

        g_up, lower, q_best, n_cells, done, keep_lam = _bound_2d(a, Wt, W, beta, lam, target, 4 * max_rounds,
                                                                 3 * max_points)
    gap = max(consistency + g_up, 0.0) / LN2
    return Certificate(gap, g_up, lower, consistency, q_best, n_cells, done, keep_lam / beta)


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


def seed_cluster(prob: Reduced, solution, cert: Certificate, mass: float = 0.1) -> it.State:
    """A state with one more cluster at the certificate's maximiser q* (decoder q* W, weight ``mass``)."""
    p_t = np.concatenate([solution.p_t * (1 - mass), [mass]])
    dec = np.concatenate([solution.decoder, (cert.q_star @ prob.W)[None, :]])
    with np.errstate(divide="ignore"):
        return it.State(np.log(p_t), np.log(dec))


def certify_solution(p_xy, solution) -> Certificate:
    """Certify an :class:`~ibtheory.ib.solver.IBSolution` of ``p_xy`` (|Y| <= 3); ``gap`` is in bits."""
    prob = ib_problem(p_xy)
    return certify_state(prob, solution.beta, solution)
