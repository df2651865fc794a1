"""The |Y| = 3 branch and bound of :mod:`ibtheory.ib.certify` (private): triangles of s-space fanned from an
interior point over the hull of the rows, split into four at their edge midpoints while their bound exceeds the
target; per cell the exact minimum over lambda of the vertex bound (see ``certify``'s module docstring)."""

from __future__ import annotations

import numpy as np

from ._certify_1d import _GRID_1D, _H, _best, _bound_1d
from ._kernels import GIBBS_CUT, gibbs_lse, gibbs_moments, gibbs_values

_STEPS = np.array([1.0, 0.25, 0.0])


def _newton(a, Wt, v, p, n, t, iters=2):
    """min over t of F(p + t n, v) = A(p + t n) + (p + t n).v for rows v, p (m, 2), n (m, 2, 2), t (m, 2), by
    damped Newton: n = I gives a vertex's multiplier, n with a zero second row the best multiplier on a line.
    Any result is only a candidate (it affects the bound's tightness, never its validity)."""
    m = len(t)
    for _ in range(iters):
        lam = p + (t[:, :, None] * n).sum(axis=1)
        A, mean, cov = gibbs_moments(a, Wt, lam)
        g = (n @ (v - mean)[:, :, None])[..., 0]
        h = n @ cov @ n.transpose(0, 2, 1)
        reg = 1e-12 * (h[:, 0, 0] + h[:, 1, 1]) + 1e-30
        h00, h11, h01 = h[:, 0, 0] + reg, h[:, 1, 1] + reg, h[:, 0, 1]
        det = h00 * h11 - h01 * h01
        # a Gibbs q on one row has no covariance: a zero or rounding-negative det gives a non-finite step, which
        # the size cap and the choice among finite trial values below leave out
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            step = -np.stack([h11 * g[:, 0] - h01 * g[:, 1], h00 * g[:, 1] - h01 * g[:, 0]], axis=1) / det[:, None]
            size = np.abs(step).max(axis=1, keepdims=True)
            step *= np.minimum(1.0, 50.0 / np.maximum(size, 1e-300))  # near the corners cov is nearly singular
        step[~np.isfinite(step)] = 0.0
        tt = t[:, None, :] + _STEPS[None, :, None] * step[:, None, :]  # (m, 3, 2)
        trial = p[:, None, :] + tt[:, :-1] @ n  # the last step (0) is lam itself: its A is known
        val = np.concatenate([gibbs_lse(a, Wt, trial).reshape(m, -1), A[:, None]], axis=1) \
            + (np.concatenate([trial, lam[:, None]], axis=1) @ v[:, :, None])[..., 0]
        j = np.argmin(np.where(np.isfinite(val), val, np.inf), axis=1)
        t = tt[np.arange(m), j]
    return p + (t[:, :, None] * n).sum(axis=1)


def _triangle_bounds(a, Wt, beta, V, c, lam_v, lam0, slot, P_new, edges):
    """Upper bounds of max [psi - beta H] on triangles V (m, 3, 2) of s-space (c = beta H(V)), given the
    vertices' multipliers lam_v (m, 3, 2) and a start lam0 (m, 2): min over candidate lambdas of
    max_i [F(lambda, v_i) - c_i] plus a bound on its rounding error.  Candidates: lam0, the vertices' lambdas, the
    lambda equalising the three vertex terms (F(., v_i) - F(., v_j) is affine in lambda), and for each edge the
    best lambda on the line where its two terms are equal; one of them is the exact minimum (the maximiser of
    psi - beta (linear interpolant of H) lies inside the triangle, on an edge, or at a vertex).  The multipliers
    of the new points P_new (n, 2) are computed on the way (vertex i of cell r is P_new[slot[r, i]] where
    slot >= 0, started from that cell's lam0).  ``edges`` (m, 3) names each cell's edges (i, i + 1) (the same number
    for an edge two cells share, :func:`_edges`): each edge's line is solved once, from the first cell that has it.
    Returns (bounds (m,), best lambda (m, 2), all candidates (m * n_c, 2), multipliers of P_new (n, 2), the rounding
    allowance included in each bound (m,))."""
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
    # one damped Newton run for the edges' lines and the new points (an edge's second direction is zero); an edge
    # shared by two cells is one line (its point p, its normal up to sign, the same objective along it)
    _, once, back = np.unique(edges.ravel(), return_index=True, return_inverse=True)
    ne = len(once)
    first = np.zeros(len(P_new), int)
    rows, cols = np.nonzero(slot >= 0)
    first[slot[rows, cols]] = rows
    nn = np.zeros((ne + len(P_new), 2, 2))
    nn[:ne, 0] = n.reshape(-1, 2)[once]
    nn[ne:] = np.eye(2)
    sol = _newton(a, Wt, np.concatenate([V[:, i].reshape(-1, 2)[once], P_new]),
                  np.concatenate([p.reshape(-1, 2)[once], np.zeros((len(P_new), 2))]), nn,
                  np.concatenate([np.stack([t0.ravel()[once], np.zeros(ne)], 1), lam0[first]]))
    lam_new = sol[ne:]
    on_edges = sol[:ne][back.ravel()].reshape(m, 3, 2)
    lam_v = np.where((slot >= 0)[..., None], lam_new[np.maximum(slot, 0)], lam_v)
    cand = np.concatenate([lam0[:, None], np.where(np.isfinite(lam_v), lam_v, lam0[:, None]), lam_eq[:, None],
                           np.where(okd[..., None], on_edges, lam0[:, None])], axis=1)
    cand = np.where(np.isfinite(cand), cand, 0.0)  # (m, 8, 2)
    # F(lambda, v_i) = A(lambda) + lambda.v_i, A(lambda) = lse_x(-a_x - lambda.W~_x): one sum over the rows for all
    # three vertices; the sum's rounding (~1e-16 (|A| + |lambda|)) is within the allowance err, to which the terms
    # the compiled sum skips (less than n e^-GIBBS_CUT nats) are added
    F = gibbs_lse(a, Wt, cand).reshape(m, -1)[:, :, None] + cand @ V.transpose(0, 2, 1)
    err = 1e-14 * (np.abs(a).max() + 2.0 * np.abs(cand).sum(axis=2) + 2.0 * c.max(axis=1)[:, None] + 1.0) \
        + len(a) * np.exp(-GIBBS_CUT)
    val = (F - c[:, None, :]).max(axis=2) + err
    val = np.where(np.isfinite(val), val, np.inf)
    j = np.argmin(val, axis=1)
    r = np.arange(m)
    return val[r, j], cand[r, j], cand.reshape(-1, 2), lam_new, err[r, j]


def _best_2d(a, Wt, W, beta, lam, lower, q_best):
    """``_certify_1d._best`` (the largest Gibbs value phi(q) - a.q among the multipliers ``lam`` when it beats
    ``lower``, and its q): the values of all of them in one compiled pass (``gibbs_values``: H(q) - a.q of the q it
    forms, then - beta H(qW) from its mean), the winner's q formed and valued by ``_best`` itself."""
    v, mean = gibbs_values(a, Wt, lam)
    with np.errstate(invalid="ignore"):
        vals = v - beta * _H(np.clip(mean, 0.0, 1.0))
    vals = np.where(np.isfinite(vals), vals, -np.inf)
    i = int(np.argmax(vals))
    if not vals[i] > lower:
        return lower, q_best
    return _best(a, Wt, W, beta, lam[i:i + 1], lower, q_best)


def _edges(cells: np.ndarray, n_points: int) -> np.ndarray:
    """A number per edge (i, i + 1 mod 3) of each cell (m, 3) of point indices, the same for both cells of an
    edge."""
    e0, e1 = cells, np.roll(cells, -1, axis=1)
    return np.minimum(e0, e1) * n_points + np.maximum(e0, e1)


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
    lower, q_best = _best_2d(a, Wt, W, beta, lam, -np.inf, None)
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
    U, best, cand, lam_new, E = _triangle_bounds(a, Wt, beta, P[cells], c_p[cells], lam_p[cells],
                                                 np.zeros((nh, 2)), slot, P[:1], _edges(cells, len(P)))
    lam_p[0] = lam_new[0]
    lower, q_best = _best_2d(a, Wt, W, beta, cand, lower, q_best)
    final, total, rounds = [], len(cells), 0
    while True:
        # a cell is final below the target or the best lower bound, its rounding allowance (~2e-14 beta nats,
        # which no refinement removes: above beta ~1e6 it exceeds the target) not counted
        thr = max(target, lower) + 0.25 * target
        bad = U - E > thr
        final.append((U[~bad], best[~bad]))
        cells, U, best = cells[bad], U[bad], best[bad]
        if not len(cells) or rounds >= max_rounds or total > max_cells:
            break
        rounds += 1
        # split every cell into four at its edges' midpoints (similar triangles); shared edges share the midpoint
        m = len(cells)
        e0, e1 = cells, np.roll(cells, -1, axis=1)  # edge i joins vertices i and i + 1
        uk, first, inv = np.unique(_edges(cells, len(P)).ravel(), return_index=True, return_inverse=True)
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
        U, best, cand, lam_new, E = _triangle_bounds(a, Wt, beta, P[cells], c_p[cells], lam_p[cells], lam0, slot,
                                                     mid, _edges(cells, len(P)))
        lam_p[n_old:] = lam_new
        # the Gibbs lower bound g(s(lambda)) at each cell's best multiplier and at the new mesh points' (every
        # candidate's: ~25 % of the certificate, the same bounds and cells on 36 small tables and 64 x 3)
        lower, q_best = _best_2d(a, Wt, W, beta, np.concatenate([best, lam_new]), lower, q_best)
        total += len(cells)
    allU = np.concatenate([u for u, _ in final] + [U])
    allB = np.concatenate([b for _, b in final] + [best])
    keep = allB[np.argsort(-allU)[:32]]
    return float(max(allU.max(), lower)), lower, q_best, int(total), bool(not len(cells)), keep
