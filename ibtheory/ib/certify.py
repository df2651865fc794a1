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

for any candidate lambda_c.  Candidates: the lambda of each vertex (the point psi(v) is attained at) and the
lambda that makes all vertex terms equal (the linear-interpolation maximiser); for k = 1 these give the exact
minimum over lambda.  Vertices are generated as images v(lambda) = E_lambda[W] of chosen lambdas (so their lambda
is known exactly), plus the extreme rows of W (the corners of the hull of s); cells are intervals (k = 1) or a
Delaunay triangulation (k = 2) of these points, which covers the whole hull conv{W_x}.  Cells whose bound exceeds
the target are refined (branch and bound).  The maximising q (a Gibbs q ~ exp(-a - lambda.W)) seeds a new cluster
when the gap is too large (``seed_cluster``).

References
----------
1. N. Tishby, F. C. Pereira, W. Bialek, "The information bottleneck method", Allerton 1999.
2. H. S. Witsenhausen and A. D. Wyner, "A conditional entropy bound for a pair of discrete random variables",
   IEEE Trans. Inf. Theory 21 (1975) 493-501 (the envelope formulation).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import _iterate as it
from ._problem import Reduced

__all__ = ["Certificate", "certify_state", "certify_solution", "seed_cluster"]

_LN2 = np.log(2.0)


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
    full = np.clip(full, 0.0, 1.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        return -np.where(full > 0, full * np.log(full), 0.0).sum(axis=-1)


def _image(a: np.ndarray, Wt: np.ndarray, lam: np.ndarray) -> np.ndarray:
    """v(lambda) = E_lambda[W~] for rows lambda (m, k): the mean of W~ under q ~ exp(-a - W~ lambda)."""
    logits = -a[None, :] - lam @ Wt.T
    logits -= logits.max(axis=1, keepdims=True)
    w = np.exp(logits)
    w /= w.sum(axis=1, keepdims=True)
    return w @ Wt


def _F(a: np.ndarray, Wt: np.ndarray, lam: np.ndarray, v: np.ndarray) -> np.ndarray:
    """F(lambda, v) = ln sum_x exp(-a_x - lambda.(W~_x - v)) for paired rows (m, k), (m, k); shifted (no cancel)."""
    logits = -a[None, :] - np.einsum("mk,xk->mx", lam, Wt) + np.einsum("mk,mk->m", lam, v)[:, None]
    return it.lse(logits, axis=1)


def _cells(P: np.ndarray) -> np.ndarray:
    """Simplex cells (m, k+1) covering the hull of the points P (n, k)."""
    if P.shape[1] == 1:
        order = np.argsort(P[:, 0], kind="stable")
        return np.stack([order[:-1], order[1:]], axis=1)
    from scipy.spatial import Delaunay

    return Delaunay(P, qhull_options="QJ Qbb").simplices


def _cell_bounds(a, Wt, beta, P, lam, finite, cells):
    """Upper bound of max [psi - beta H] on each cell (nats), one vectorised pass over all candidates."""
    m, kp1 = cells.shape
    k = kp1 - 1
    V = P[cells]  # (m, k+1, k)
    c = beta * _H(V)  # (m, k+1)
    # the equalising lambda: (v_i - v_0).lambda = c_i - c_0
    A = V[:, 1:, :] - V[:, :1, :]
    rhs = c[:, 1:] - c[:, :1]
    if k == 1:
        ok = A[:, 0, 0] != 0
        lam_eq = np.where(ok, rhs[:, 0] / np.where(ok, A[:, 0, 0], 1.0), 0.0)[:, None]
    else:
        ok = np.abs(np.linalg.det(A)) > 1e-13
        lam_eq = np.zeros((m, k))
        lam_eq[ok] = np.linalg.solve(A[ok], rhs[ok][..., None])[..., 0]
    cand = np.concatenate([lam_eq[:, None, :], lam[cells]], axis=1)  # (m, k+2, k)
    valid = np.concatenate([ok[:, None], finite[cells]], axis=1)  # (m, k+2)
    cand = np.where(valid[..., None], cand, 0.0)
    # F(lambda_c, v_i) = lse_x(-a_x - lambda_c.(W_x - v_i)):  (m, k+2, k+1, n_s)
    base = -np.einsum("mck,xk->mcx", cand, Wt)
    shift = np.einsum("mck,mik->mci", cand, V)
    logits = base[:, :, None, :] + shift[..., None] - a
    mx = logits.max(axis=3)
    F = mx + np.log(np.exp(logits - mx[..., None]).sum(axis=3))
    vals = (F - c[:, None, :]).max(axis=2)  # (m, k+2)
    vals = np.where(valid & np.isfinite(vals), vals, np.inf)
    return vals.min(axis=1)


def _gibbs_values(a, Wt, W, beta, lam):
    """Exact phi(q) - a.q for the Gibbs q ~ exp(-a - W~ lambda), rows lambda (m, k); returns (values, q)."""
    logits = -a[None, :] - lam @ Wt.T
    logq = logits - it.lse(logits, axis=1)[:, None]
    q = np.exp(logq)
    s = q @ W
    with np.errstate(divide="ignore", invalid="ignore"):
        Hs = -np.where(s > 0, s * np.log(s), 0.0).sum(axis=1)
    vals = -(q * logq).sum(axis=1) - beta * Hs - q @ a
    return vals, q


def certify_state(prob: Reduced, beta: float, solution, target: float = 2e-8, max_rounds: int = 60,
                  max_points: int = 20000, warm: np.ndarray | None = None) -> Certificate:
    """Certificate for an :class:`~ibtheory.ib.solver.IBSolution` on the reduced problem ``prob`` (|Y| <= 3).

    ``target`` (nats) is the cell bound below which refinement stops; ``warm`` (n, k) extra multipliers divided by
    beta (``Certificate.lambdas`` of a nearby beta) seed the mesh.  See the module docstring.
    """
    if prob.n_y > 3:
        raise ValueError(f"the certificate handles |Y| <= 3, got |Y| = {prob.n_y}")
    W = prob.W
    p_t, dec = solution.p_t, solution.decoder
    neg_h = prob.neg_entropy_rows
    with np.errstate(divide="ignore"):
        log_dec = np.log(dec)
        D = it.kl_nats(W, neg_h, log_dec)
        L = np.log(p_t)[None, :] - beta * D
    logZ = it.lse(L, axis=1)
    a = -np.log(prob.p_s) + beta * neg_h + logZ
    # a.p - achieved = beta I(S;Y) - beta I(T;Y) + I(S;T) + sum_s p(s) ln Z(s)   (nats)
    I_sy = (_mi(prob.p_s[:, None] * W))
    consistency = beta * I_sy - _LN2 * (beta * solution.I_TY - solution.I_XT) + float(prob.p_s @ logZ)
    k = prob.n_y - 1
    Wt = W[:, 1:]
    # vertices: cluster points, a lambda grid (asinh-spaced), the hull corners (lambda infinite)
    with np.errstate(divide="ignore", invalid="ignore"):
        lam_t = beta * (log_dec[:, :1] - log_dec[:, 1:])
    lam_t = lam_t[np.all(np.isfinite(lam_t), axis=1)]
    if k == 1:
        grid = np.sinh(np.arange(-90.0, 90.5, 3.0))[:, None]
    else:  # images of large lambdas crowd the hull's edges and make thin triangles: refinement reaches them
        g = np.sinh(np.arange(-8.0, 8.5, 1.0))
        g1, g2 = np.meshgrid(g, g, indexing="ij")
        grid = np.stack([g1.ravel(), g2.ravel()], axis=1)
    lam = np.concatenate([lam_t, grid, np.zeros((1, k))] + ([] if warm is None else [beta * warm]))
    if k == 1:
        g_up, lower, q_best, n_cells, done, keep_lam = _bound_1d(a, Wt, W, beta, lam, target, max_rounds, max_points)
    else:
        g_up, lower, q_best, n_cells, done, keep_lam = _bound_2d(a, Wt, W, beta, lam, target, min(max_rounds, 12),
                                                                 min(max_points, 4000))
    gap = max(consistency + g_up, 0.0) / _LN2
    return Certificate(gap, g_up, lower, consistency, q_best, n_cells, done, keep_lam / beta)


def _bounds_1d(a, w, beta, sL, sR, lL, lR, fL, fR):
    """Cell bounds on intervals [sL, sR] of s = E[W_1]: min over the 3 candidate lambdas of the max of the two
    vertex terms F(lambda, v) - beta H(v) (exact minimum over lambda for k = 1)."""
    cL, cR = beta * _H(sL[:, None]), beta * _H(sR[:, None])
    width = sR - sL
    ok = width > 0
    lam_eq = np.where(ok, (cR - cL) / np.where(ok, width, 1.0), 0.0)
    cand = np.stack([lam_eq, np.where(fL, lL, 0.0), np.where(fR, lR, 0.0)], axis=1)  # (m, 3)
    valid = np.stack([ok, fL, fR], axis=1)
    base = -a[None, None, :] - cand[..., None] * w[None, None, :]  # (m, 3, n)
    out = np.full(cand.shape, -np.inf)
    for v, c in ((sL, cL), (sR, cR)):
        logits = base + (cand * v[:, None])[..., None]
        mx = logits.max(axis=2)
        F = mx + np.log(np.exp(logits - mx[..., None]).sum(axis=2))
        out = np.maximum(out, F - c[:, None])
    out = np.where(valid & np.isfinite(out), out, np.inf)
    return out.min(axis=1), lam_eq


def _bound_1d(a, Wt, W, beta, lam, target, max_rounds, max_points):
    """Branch and bound over intervals of s in [min W_1, max W_1] (|Y| = 2)."""
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
        ub = float(max(it.lse(-a, axis=0) - beta * _H(pts_s[:1, None])[0], lower))
        return ub, lower, q_best, 1, True, np.zeros((0, 1))
    sL, sR, lL, lR = pts_s[:-1], pts_s[1:], pts_l[:-1], pts_l[1:]
    U, leq = _bounds_1d(a, w, beta, sL, sR, lL, lR, np.isfinite(lL), np.isfinite(lR))
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
        nU, nleq = _bounds_1d(a, w, beta, nsL, nsR, nlL, nlR, np.isfinite(nlL), np.isfinite(nlR))
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


def _bound_2d(a, Wt, W, beta, lam, target, max_rounds, max_points):
    """Branch and bound over a Delaunay triangulation of s-space (|Y| = 3)."""
    k = Wt.shape[1]
    corners = _corners(Wt)
    P_fin = _image(a, Wt, lam)
    lower, q_best = _best(a, Wt, W, beta, lam, -np.inf, None)
    rounds = 0
    while True:
        P = np.concatenate([P_fin, Wt[corners]])
        L_all = np.concatenate([lam, np.zeros((corners.size, k))])
        finite = np.concatenate([np.ones(len(P_fin), bool), np.zeros(corners.size, bool)])
        # drop (near-)duplicate points, keeping corners first, then the newest (its lambda is better resolved)
        order = np.r_[np.arange(len(P) - 1, len(P_fin) - 1, -1), np.arange(len(P_fin) - 1, -1, -1)]
        _, first = np.unique(np.round(P[order], 11), axis=0, return_index=True)
        idx = order[first]
        P, L_all, finite = P[idx], L_all[idx], finite[idx]
        if len(P) < k + 1 or np.linalg.matrix_rank(P[1:] - P[:1], tol=1e-12) < k:
            # the hull of s is a point or a segment: bound psi - beta H by the vertex-lambda candidates only
            ub = float(max(np.min(np.max(_F(a, Wt, np.repeat(lam[:1], len(P), 0), P) - beta * _H(P))), lower))
            return max(ub, lower), lower, q_best, 1, False, np.zeros((0, k))
        cells = _cells(P)
        U = _cell_bounds(a, Wt, beta, P, L_all, finite, cells)
        bad = U > max(target, lower) + 0.25 * target
        if not bad.any() or rounds >= max_rounds or len(P) > max_points:
            break
        rounds += 1
        new = _refine(cells[bad], L_all, finite, P, beta)
        lam = np.concatenate([lam, new])
        P_fin = np.concatenate([P_fin, _image(a, Wt, new)])
        lower, q_best = _best(a, Wt, W, beta, new, lower, q_best)
    g_up = float(max(U.max(), lower))
    return g_up, lower, q_best, len(cells), bool(not bad.any()), np.zeros((0, k))


def _mi(joint: np.ndarray) -> float:
    a, b = joint.sum(axis=1), joint.sum(axis=0)
    m = joint > 0
    return float(np.sum(joint[m] * np.log(joint[m] / np.outer(a, b)[m])))


def _best(a, Wt, W, beta, lam, lower, q_best):
    vals, q = _gibbs_values(a, Wt, W, beta, lam)
    i = int(np.argmax(vals))
    if vals[i] > lower:
        return float(vals[i]), q[i]
    return lower, q_best


def _corners(Wt: np.ndarray) -> np.ndarray:
    """Indices of rows of W~ that are extreme points of their hull (k = 1: min and max)."""
    if Wt.shape[1] == 1:
        return np.unique([int(np.argmin(Wt[:, 0])), int(np.argmax(Wt[:, 0]))])
    from scipy.spatial import ConvexHull, QhullError

    try:
        return np.unique(ConvexHull(Wt, qhull_options="QJ").vertices)
    except (QhullError, ValueError):
        return np.unique(np.concatenate([np.argmin(Wt, axis=0), np.argmax(Wt, axis=0), [np.argmax(Wt.sum(1))]]))


def _refine(cells, lam, finite, P, beta):
    """New lambdas for the cells to split: each cell's equalising lambda (whose image v(lambda) maximises the
    cell's upper bound psi + interpolated -beta H, a cutting-plane step) and the asinh-midpoint of its vertices'."""
    m, kp1 = cells.shape
    V = P[cells]
    c = beta * _H(V)
    A = V[:, 1:, :] - V[:, :1, :]
    ok = np.abs(np.linalg.det(A)) > 1e-13
    lam_eq = np.linalg.solve(A[ok], (c[:, 1:] - c[:, :1])[ok][..., None])[..., 0]
    fin = finite[cells]
    u = np.arcsinh(lam[cells]) * fin[..., None]
    nf = fin.sum(axis=1)
    mid = np.sinh(u.sum(axis=1)[nf > 0] / nf[nf > 0][:, None])
    out = np.concatenate([lam_eq, mid])
    return out[np.all(np.isfinite(out), axis=1)]


def seed_cluster(prob: Reduced, solution, cert: Certificate, mass: float = 0.1) -> it.State:
    """A state with one more cluster at the certificate's maximiser q* (decoder q* W, weight ``mass``)."""
    p_t = np.concatenate([solution.p_t * (1 - mass), [mass]])
    dec = np.concatenate([solution.decoder, (cert.q_star @ prob.W)[None, :]])
    with np.errstate(divide="ignore"):
        return it.State(np.log(p_t), np.log(dec))


def certify_solution(p_xy, solution) -> Certificate:
    """Certify an :class:`~ibtheory.ib.solver.IBSolution` of ``p_xy`` (|Y| <= 3); ``gap`` is in bits."""
    from ._problem import reduce

    prob = reduce(p_xy)
    return certify_state(prob, solution.beta, solution)
