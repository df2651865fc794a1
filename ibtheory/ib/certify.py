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

from . import _iterate as it
from ._problem import Reduced

__all__ = ["Certificate", "certify_state", "certify_solution", "seed_cluster"]

_LN2 = np.log(2.0)
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


def _gibbs_values(a, Wt, W, beta, lam):
    """phi(q) - a.q for the (normalised) Gibbs q ~ exp(-a - W~ lambda), rows lambda (m, k); returns (values, q)."""
    logits = -a[None, :] - lam @ Wt.T
    q = np.exp(logits - logits.max(axis=1, keepdims=True))
    q /= q.sum(axis=1, keepdims=True)
    # the value of the q actually formed (not of the exact Gibbs q: with a huge lambda the logits carry rounding
    # errors of |lambda| eps), so that it is a valid lower bound
    with np.errstate(divide="ignore"):
        logq = np.where(q > 0, np.log(q), 0.0)
    s = q @ W
    with np.errstate(divide="ignore", invalid="ignore"):
        Hs = -np.where(s > 0, s * np.log(s), 0.0).sum(axis=1)
    vals = -(q * logq).sum(axis=1) - beta * Hs - q @ a
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
        D = it.kl_nats(W, neg_h, log_dec)
        L = np.log(p_t)[None, :] - beta * D
    logZ = it.lse(L, axis=1)
    a = -np.log(prob.p_s) + beta * neg_h + logZ
    # a.p - achieved = beta I(S;Y) - beta I(T;Y) + I(S;T) + sum_s p(s) ln Z(s)   (nats)
    I_sy = (_mi(prob.p_s[:, None] * W))
    consistency = beta * I_sy - _LN2 * (beta * solution.I_TY - solution.I_XT) + float(prob.p_s @ logZ)
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
        g_up, lower, q_best, n_cells, done, keep_lam = _bound_2d(a, Wt, W, beta, lam, target, 4 * max_rounds,
                                                                 3 * max_points)
    gap = max(consistency + g_up, 0.0) / _LN2
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


def _stats(a, Wt, lam):
    """ln-partition A(lambda) = ln sum_x exp(-a_x - lambda.W~_x), the Gibbs mean m(lambda) of W~ and its
    covariance (m, 2, 2), for rows lambda (m, 2)."""
    logits = -a - lam @ Wt.T
    A = it.lse(logits, axis=1)
    w = np.exp(logits - A[:, None])
    mean = w @ Wt
    second = w @ (Wt[:, :, None] * Wt[:, None, :]).reshape(len(Wt), 4)
    cov = second.reshape(-1, 2, 2) - mean[:, :, None] * mean[:, None, :]
    return A, mean, cov


_STEPS = np.array([1.0, 0.25, 0.0])


def _newton(a, Wt, v, p, n, t, iters=2):
    """min over t of F(p + t n, v) = A(p + t n) + (p + t n).v for rows v, p (m, 2), n (m, 2, 2), t (m, 2), by
    damped Newton: n = I gives a vertex's multiplier, n with a zero second row the best multiplier on a line.
    Any result is only a candidate (it affects the bound's tightness, never its validity)."""
    m = len(t)
    for _ in range(iters):
        lam = p + (t[:, :, None] * n).sum(axis=1)
        _, mean, cov = _stats(a, Wt, lam)
        g = (n @ (v - mean)[:, :, None])[..., 0]
        h = n @ cov @ n.transpose(0, 2, 1)
        reg = 1e-12 * (h[:, 0, 0] + h[:, 1, 1]) + 1e-30
        h00, h11, h01 = h[:, 0, 0] + reg, h[:, 1, 1] + reg, h[:, 0, 1]
        det = h00 * h11 - h01 * h01
        step = -np.stack([h11 * g[:, 0] - h01 * g[:, 1], h00 * g[:, 1] - h01 * g[:, 0]], axis=1) / det[:, None]
        size = np.abs(step).max(axis=1, keepdims=True)
        step *= np.minimum(1.0, 50.0 / np.maximum(size, 1e-300))  # near the corners cov is nearly singular
        tt = t[:, None, :] + _STEPS[None, :, None] * step[:, None, :]  # (m, 5, 2)
        trial = p[:, None, :] + tt @ n
        val = it.lse(-a - trial @ Wt.T, axis=2) + (trial @ v[:, :, None])[..., 0]
        j = np.argmin(np.where(np.isfinite(val), val, np.inf), axis=1)
        t = tt[np.arange(m), j]
    return p + (t[:, :, None] * n).sum(axis=1)


def _triangle_bounds(a, Wt, beta, V, c, lam_v, lam0, slot, P_new):
    """Upper bounds of max [psi - beta H] on triangles V (m, 3, 2) of s-space (c = beta H(V)), given the
    vertices' multipliers lam_v (m, 3, 2) and a start lam0 (m, 2): min over candidate lambdas of
    max_i [F(lambda, v_i) - c_i] plus a bound on its rounding error.  Candidates: lam0, the vertices' lambdas, the
    lambda equalising the three vertex terms (F(., v_i) - F(., v_j) is affine in lambda), and for each edge the
    best lambda on the line where its two terms are equal; one of them is the exact minimum (the maximiser of
    psi - beta (linear interpolant of H) lies inside the triangle, on an edge, or at a vertex).  The multipliers
    of the new points P_new (n, 2) are computed on the way (vertex i of cell r is P_new[slot[r, i]] where
    slot >= 0, started from that cell's lam0).
    Returns (bounds (m,), best lambda (m, 2), all candidates (m * n_c, 2), multipliers of P_new (n, 2))."""
    m = len(V)
    D = V[:, 1:, :] - V[:, :1, :]
    det = D[:, 0, 0] * D[:, 1, 1] - D[:, 0, 1] * D[:, 1, 0]
    r1, r2 = c[:, 1] - c[:, 0], c[:, 2] - c[:, 0]
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        lam_eq = np.stack([D[:, 1, 1] * r1 - D[:, 0, 1] * r2, D[:, 0, 0] * r2 - D[:, 1, 0] * r1], 1) / det[:, None]
    lam_eq = np.where(np.isfinite(lam_eq), lam_eq, lam0)
    # edges (i, j): lambda = p + t n with d.p = c_j - c_i (d = v_j - v_i) and n perpendicular to d
    i, j = np.array([0, 1, 2]), np.array([1, 2, 0])
    d = V[:, j] - V[:, i]  # (m, 3, 2)
    dd = np.einsum("mek,mek->me", d, d)
    okd = dd > 0
    dd = np.where(okd, dd, 1.0)
    p = ((c[:, j] - c[:, i]) / dd)[..., None] * d
    n = np.stack([-d[..., 1], d[..., 0]], axis=-1) / np.sqrt(dd)[..., None]
    t0 = np.einsum("mek,mek->me", lam0[:, None] - p, n)
    # one damped Newton run for the edges' lines and the new points (an edge's second direction is zero)
    ne = 3 * m
    first = np.zeros(len(P_new), int)
    rows, cols = np.nonzero(slot >= 0)
    first[slot[rows, cols]] = rows
    nn = np.zeros((ne + len(P_new), 2, 2))
    nn[:ne, 0] = n.reshape(-1, 2)
    nn[ne:] = np.eye(2)
    sol = _newton(a, Wt, np.concatenate([V[:, i].reshape(-1, 2), P_new]),
                  np.concatenate([p.reshape(-1, 2), np.zeros((len(P_new), 2))]), nn,
                  np.concatenate([np.stack([t0.ravel(), np.zeros(ne)], 1), lam0[first]]))
    lam_new = sol[ne:]
    lam_v = np.where((slot >= 0)[..., None], lam_new[np.maximum(slot, 0)], lam_v)
    cand = np.concatenate([lam0[:, None], np.where(np.isfinite(lam_v), lam_v, lam0[:, None]), lam_eq[:, None],
                           np.where(okd[..., None], sol[:ne].reshape(m, 3, 2), lam0[:, None])], axis=1)
    cand = np.where(np.isfinite(cand), cand, 0.0)  # (m, 8, 2)
    # F(lambda, v_i) = lse_x(-a_x - lambda.(W~_x - v_i)), shifted inside the lse (no cancellation)
    logits = (-a - cand @ Wt.T)[:, :, None, :] + (cand @ V.transpose(0, 2, 1))[..., None]
    F = it.lse(logits, axis=3)
    err = 1e-14 * (np.abs(a).max() + 2.0 * np.abs(cand).sum(axis=2) + 2.0 * c.max(axis=1)[:, None] + 1.0)
    val = (F - c[:, None, :]).max(axis=2) + err
    val = np.where(np.isfinite(val), val, np.inf)
    j = np.argmin(val, axis=1)
    return val[np.arange(m), j], cand[np.arange(m), j], cand.reshape(-1, 2), lam_new


def _hull2d(P: np.ndarray) -> np.ndarray:
    """Indices of the convex hull's vertices of points P (n, 2), counter-clockwise (monotone chain).  Points within
    rounding (1e-13 of the squared extent) of a hull edge count as on it, so rows p(y|x) that are collinear up to
    rounding give a segment: 1 or 2 indices when the hull is a point or a segment."""
    order = np.lexsort((P[:, 1], P[:, 0]))
    tol = 1e-13 * float(np.ptp(P, axis=0).max()) ** 2

    def chain(idx):
        out = []
        for i in idx:
            while len(out) >= 2:
                o, b = P[out[-2]], P[out[-1]]
                if (b[0] - o[0]) * (P[i][1] - o[1]) - (b[1] - o[1]) * (P[i][0] - o[0]) > tol:
                    break
                out.pop()
            out.append(int(i))
        return out

    lower, upper = chain(order), chain(order[::-1])
    hull = lower[:-1] + upper[:-1]
    if len(hull) < 3:  # a segment (its two ends) or a point
        ends = [int(order[0]), int(order[-1])]
        return np.array(ends[:1] if np.all(P[ends[0]] == P[ends[1]]) else ends)
    return np.array(hull)


def _bound_2d(a, Wt, W, beta, lam, target, max_rounds, max_cells):
    """Branch and bound over triangles covering the hull of s = qW (|Y| = 3): a fan from an interior point over
    the hull polygon, cells split into four while their bound exceeds the target (see the module docstring)."""
    lower, q_best = _best(a, Wt, W, beta, lam, -np.inf, None)
    hv = _hull2d(Wt)
    if len(hv) < 3:  # the hull of s is a segment (or a point): a 1-D problem along it
        s0, d = Wt[hv[0]], Wt[hv[-1]] - Wt[hv[0]]
        d = d / max(np.linalg.norm(d), 1e-300)
        tau = (Wt - s0) @ d
        lam1 = np.concatenate([lam @ d, _GRID_1D])[:, None]
        out = _bound_1d(a, tau[:, None], W, beta, lam1, target, max_rounds, max_cells,
                        ent=lambda u: _H(s0 + u * d))
        return out[:5] + ((out[5] * d) if out[5].size else np.zeros((0, 2)),)
    P = np.concatenate([Wt[hv].mean(axis=0, keepdims=True), Wt[hv]])
    lam_p = np.full((len(P), 2), np.nan)  # multipliers of the mesh points (unknown at the hull's corners)
    c_p = beta * _H(P)
    nh = len(hv)
    cells = np.stack([np.zeros(nh, int), 1 + np.arange(nh), 1 + (np.arange(nh) + 1) % nh], axis=1)
    slot = np.where(cells == 0, 0, -1)
    U, best, cand, lam_new = _triangle_bounds(a, Wt, beta, P[cells], c_p[cells], lam_p[cells], np.zeros((nh, 2)),
                                              slot, P[:1])
    lam_p[0] = lam_new[0]
    lower, q_best = _best(a, Wt, W, beta, cand, lower, q_best)
    final, total, rounds = [], len(cells), 0
    while True:
        thr = max(target, lower) + 0.25 * target
        bad = U > thr
        final.append((U[~bad], best[~bad]))
        cells, U, best = cells[bad], U[bad], best[bad]
        if not len(cells) or rounds >= max_rounds or total > max_cells:
            break
        rounds += 1
        # split every cell into four at its edges' midpoints (similar triangles); shared edges share the midpoint
        m = len(cells)
        e0, e1 = cells, np.roll(cells, -1, axis=1)  # edge i joins vertices i and i + 1
        key = np.minimum(e0, e1) * len(P) + np.maximum(e0, e1)
        uk, first, inv = np.unique(key.ravel(), return_index=True, return_inverse=True)
        mid = 0.5 * (P[e0.ravel()[first]] + P[e1.ravel()[first]])
        mids = len(P) + inv.reshape(m, 3)  # midpoint of edge i of each cell
        n_old = len(P)
        P = np.concatenate([P, mid])
        c_p = np.concatenate([c_p, beta * _H(mid)])
        lam_p = np.concatenate([lam_p, np.full((len(mid), 2), np.nan)])
        v0, v1, v2 = cells.T
        m01, m12, m20 = mids.T
        cells = np.concatenate([np.stack(x, 1) for x in ((v0, m01, m20), (m01, v1, m12), (m20, m12, v2),
                                                         (m01, m12, m20))])
        lam0 = np.tile(best, (4, 1))
        # each new point is solved once, started from the first cell (in order) that has it
        slot = np.where(cells >= n_old, cells - n_old, -1)
        owner = np.full(len(mid), -1)
        r_, c_ = np.nonzero(slot >= 0)
        owner[slot[r_, c_][::-1]] = r_[::-1]
        slot = np.where((slot >= 0) & (owner[np.maximum(slot, 0)] == np.arange(len(cells))[:, None]), slot, -1)
        U, best, cand, lam_new = _triangle_bounds(a, Wt, beta, P[cells], c_p[cells], lam_p[cells], lam0, slot, mid)
        lam_p[n_old:] = lam_new
        lower, q_best = _best(a, Wt, W, beta, cand, lower, q_best)
        total += len(cells)
    allU = np.concatenate([u for u, _ in final] + [U])
    allB = np.concatenate([b for _, b in final] + [best])
    keep = allB[np.argsort(-allU)[:32]]
    return float(max(allU.max(), lower)), lower, q_best, int(total), bool(not len(cells)), keep

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
