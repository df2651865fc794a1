"""The |Y| = 3 branch and bound of :mod:`ibtheory.ib.certify` (private): triangles of s-space fanned from an
interior point over the hull of the rows, split into four at their edge midpoints while their bound exceeds the
target; per cell the exact minimum over lambda of the vertex bound (see ``certify``'s module docstring) and, where
that leaves the cell open, the curved bound of :func:`_curved_bounds` (third order in the cell's size)."""

from __future__ import annotations

import numba
import numpy as np

from ._certify_1d import _GRID_1D, _H, _best, _bound_1d
from ._certify_line import _quad_max1
from ._kernels import GIBBS_CUT, _jit, _run, gibbs_blocks, gibbs_lse, gibbs_moments, gibbs_values

#: Newton steps for the best multiplier on an edge's line of equality and for a new mesh point's multiplier
EDGE_STEPS, POINT_STEPS = 1, 2
CURVED = True


def _newton(a, Wt, v, p, n, t, iters, blk=None):
    """min over t of F(p + t n, v) = A(p + t n) + (p + t n).v for rows v, p (m, 2), n (m, 2, 2), t (m, 2), by
    Newton steps (each kept only where it lowers F), ``iters`` (m,) of them per row: n = I gives a vertex's
    multiplier, n with a zero second row the best multiplier on a line.  Any result is only a candidate (it affects
    the bound's tightness, never its validity).  Returns the multipliers (m, 2) and their A (the same sums, for the
    same floating-point multipliers)."""
    lam = p + (t[:, :, None] * n).sum(axis=1)
    A_lam = np.full(len(t), np.nan)
    for k in range(int(iters.max(initial=0))):
        r = np.flatnonzero(iters > k)
        A, mean, cov = gibbs_moments(a, Wt, lam[r], blk)
        nr = n[r]
        g = (nr @ (v[r] - mean)[:, :, None])[..., 0]
        h = nr @ cov @ nr.transpose(0, 2, 1)
        reg = 1e-12 * (h[:, 0, 0] + h[:, 1, 1]) + 1e-30
        h00, h11, h01 = h[:, 0, 0] + reg, h[:, 1, 1] + reg, h[:, 0, 1]
        det = h00 * h11 - h01 * h01
        # a Gibbs q on one row has no covariance: a zero or rounding-negative det gives a non-finite step, which
        # the size cap and the choice of the smaller finite value below leave out
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            step = -np.stack([h11 * g[:, 0] - h01 * g[:, 1], h00 * g[:, 1] - h01 * g[:, 0]], axis=1) / det[:, None]
            size = np.abs(step).max(axis=1, keepdims=True)
            step *= np.minimum(1.0, 50.0 / np.maximum(size, 1e-300))  # near the corners cov is nearly singular
        step[~np.isfinite(step)] = 0.0
        tt = t[r] + step
        trial = p[r] + (tt[:, :, None] * nr).sum(axis=1)
        At = gibbs_lse(a, Wt, trial, blk)
        with np.errstate(invalid="ignore"):
            take = At + (trial * v[r]).sum(axis=1) < A + (lam[r] * v[r]).sum(axis=1)
        t[r] = np.where(take[:, None], tt, t[r])
        lam[r] = np.where(take[:, None], trial, lam[r])
        A_lam[r] = np.where(take, At, A)
    return lam, A_lam


def _triangle_bounds(a, Wt, beta, V, c, lam_v, A_v, lam0, A0, slot, P_new, edges, blk=None):
    """Upper bounds of max [psi - beta H] on triangles V (m, 3, 2) of s-space (c = beta H(V)), given the
    vertices' multipliers lam_v (m, 3, 2) with their A_v (m, 3) (nan where unknown) and a start lam0 (m, 2) with
    its A0 (m,): min over candidate lambdas of
    max_i [F(lambda, v_i) - c_i] plus a bound on its rounding error.  Candidates: lam0, the vertices' lambdas, the
    lambda equalising the three vertex terms (F(., v_i) - F(., v_j) is affine in lambda), and for each edge the
    best lambda on the line where its two terms are equal; one of them is the exact minimum (the maximiser of
    psi - beta (linear interpolant of H) lies inside the triangle, on an edge, or at a vertex).  The multipliers
    of the new points P_new (n, 2) are computed on the way (vertex i of cell r is P_new[slot[r, i]] where
    slot >= 0, started from that cell's lam0).  ``edges`` (m, 3) names each cell's edges (i, i + 1) (the same number
    for an edge two cells share, :func:`_edges`): each edge's line is solved once, from the first cell that has it.
    Returns (bounds (m,), best lambda (m, 2), all candidates (m * n_c, 2), multipliers of P_new (n, 2), the rounding
    allowance included in each bound (m,), A of the best lambdas (m,), A of P_new's multipliers (n,))."""
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
    sol, A_sol = _newton(a, Wt, np.concatenate([V[:, i].reshape(-1, 2)[once], P_new]),
                         np.concatenate([p.reshape(-1, 2)[once], np.zeros((len(P_new), 2))]), nn,
                         np.concatenate([np.stack([t0.ravel()[once], np.zeros(ne)], 1), lam0[first]]),
                         np.repeat([EDGE_STEPS, POINT_STEPS], [ne, len(P_new)]), blk)
    lam_new, A_new = sol[ne:], A_sol[ne:]
    on_edges, A_edges = sol[:ne][back.ravel()].reshape(m, 3, 2), A_sol[:ne][back.ravel()].reshape(m, 3)
    new = (slot >= 0)[..., None]
    lam_v = np.where(new, lam_new[np.maximum(slot, 0)], lam_v)
    A_v = np.where(new[..., 0], A_new[np.maximum(slot, 0)], A_v)
    # F(lambda, v_i) = A(lambda) + lambda.v_i, A(lambda) = lse_x(-a_x - lambda.W~_x): one sum over the rows for all
    # three vertices, and only the equalising lambda's is new (the others' come with their multipliers: the
    # parent's best, the mesh points', the edges' Newton); the sum's rounding (~1e-16 (|A| + |lambda|)) is within
    # the allowance err, to which the terms the compiled sum skips (less than n e^-GIBBS_CUT nats) are added
    cand = np.concatenate([lam0[:, None], lam_v, lam_eq[:, None], np.where(okd[..., None], on_edges, np.nan)], axis=1)
    Ac = np.concatenate([A0[:, None], A_v, gibbs_lse(a, Wt, lam_eq, blk)[:, None], A_edges], axis=1)
    bad = ~(np.isfinite(cand).all(axis=2) & np.isfinite(Ac))  # unknown multipliers (hull corners): lam0 instead
    cand = np.where(bad[..., None], lam0[:, None], cand)  # (m, 8, 2)
    Ac = np.where(bad, A0[:, None], Ac)
    F = Ac[:, :, None] + cand @ V.transpose(0, 2, 1)
    err = 1e-14 * (np.abs(a).max() + 2.0 * np.abs(cand).sum(axis=2) + 2.0 * c.max(axis=1)[:, None] + 1.0) \
        + len(a) * np.exp(-GIBBS_CUT)
    val = (F - c[:, None, :]).max(axis=2) + err
    val = np.where(np.isfinite(val), val, np.inf)
    j = np.argmin(val, axis=1)
    r = np.arange(m)
    return val[r, j], cand[r, j], cand.reshape(-1, 2), lam_new, err[r, j], Ac[r, j], A_new


@numba.njit(inline="always", error_model="numpy")
def _qval(f0, g0, g1, q00, q01, q11, x, y):
    return f0 + g0 * x + g1 * y + 0.5 * (q00 * x * x + 2.0 * q01 * x * y + q11 * y * y)


@numba.njit(inline="always", error_model="numpy")
def _quad_max(f0, g0, g1, q00, q01, q11, px, py, k, tau):
    """Upper bound on the largest value of f(e) = f0 + g.e + e^T Q e / 2 over the convex polygon (px, py)[:k]
    (local coordinates, vertices in order, either orientation): the largest over the vertices and each edge's
    maximum (a quadratic in its parameter t in [0, 1]), and the unconstrained maximum where Q is clearly negative
    definite (largest eigenvalue below -tau / 2) and its point lies in the polygon (within 1e-6 of its size: the
    point is computed to ~1e-7 at that condition); where Q is not, f + tau |e|^2 / 2 (tau above Q's rounding) has
    a direction of positive curvature, so its maximum is on the boundary, and tau max |e|^2 / 2 is added."""
    best = -np.inf
    diam2 = 0.0
    for a in range(k):
        best = max(best, _qval(f0, g0, g1, q00, q01, q11, px[a], py[a]))
        diam2 = max(diam2, px[a] * px[a] + py[a] * py[a])
    mu = 0.5 * (q00 + q11) + np.hypot(0.5 * (q00 - q11), q01)
    nd = mu < -0.5 * tau
    qd = q00 * q11 - q01 * q01
    ex = -(q11 * g0 - q01 * g1) / qd
    ey = -(q00 * g1 - q01 * g0) / qd
    inside = nd
    diam = np.sqrt(diam2)
    area2 = 0.0  # twice the polygon's signed area: the inside of an edge is to its left when positive
    for a in range(k):
        b = (a + 1) % k
        area2 += px[a] * py[b] - px[b] * py[a]
    orient = 1.0 if area2 >= 0.0 else -1.0
    for a in range(k):
        b = (a + 1) % k
        dx, dy = px[b] - px[a], py[b] - py[a]
        a1 = (g0 + q00 * px[a] + q01 * py[a]) * dx + (g1 + q01 * px[a] + q11 * py[a]) * dy
        a2 = 0.5 * (q00 * dx * dx + 2.0 * q01 * dx * dy + q11 * dy * dy)
        best = max(best, _quad_max1(_qval(f0, g0, g1, q00, q01, q11, px[a], py[a]), a1, a2, 0.0, 1.0))
        cross = orient * (dx * (ey - py[a]) - dy * (ex - px[a]))
        if not cross >= -1e-6 * np.hypot(dx, dy) * diam:
            inside = False
    if nd:
        top = f0 + 0.5 * (g0 * ex + g1 * ey)
        if inside and np.isfinite(top):
            best = max(best, top)
        return best
    return best + 0.5 * tau * diam2


@numba.njit(inline="always", error_model="numpy")
def _hess_bound(px, py, k):
    """K >= -H''(s) on the convex hull of the points (px, py)[:k] of s-space: -H'' = diag(1 / s_1, 1 / s_2) +
    11^T / s_0 decreases in each coordinate, so each coordinate's smallest value over the polygon (at a vertex)
    bounds it.  Returns (K00, K01, K11, the smallest coordinate)."""
    l0 = l1 = l2 = np.inf
    for a in range(k):
        l0, l1, l2 = min(l0, 1.0 - px[a] - py[a]), min(l1, px[a]), min(l2, py[a])
    i0 = 1.0 / l0
    return 1.0 / l1 + i0, i0, 1.0 / l2 + i0, min(l0, l1, l2)


@numba.njit(inline="always", error_model="numpy")
def _ent3(x, y):
    """H (nats) of (1 - x - y, x, y) and its gradient ln(s_0 / s_k) in (x, y)."""
    z = 1.0 - x - y
    return -(z * np.log(z) + x * np.log(x) + y * np.log(y)), np.log(z / x), np.log(z / y)


@_jit
def _curved_kernel(lo, hi, beta, V, lam, A, mean, cov, n, out, allow):
    cut = n * np.exp(-GIBBS_CUT)
    # the sums' second moments are plain sums (E[w^2] - m^2, w in [0, 1]): off by at most ~n ulp, and by the rows
    # they skip
    eps = 1e-15 + 2.3e-16 * n + 8.0 * cut
    D = np.empty((3, 3))
    px, py = np.empty(4), np.empty(4)
    for c in range(lo, hi):
        out[c], allow[c] = np.inf, 0.0
        ok = True
        for i in range(3):
            ok &= np.isfinite(A[c, i]) and np.isfinite(lam[c, i, 0]) and np.isfinite(lam[c, i, 1]) \
                and np.isfinite(mean[c, i, 0]) and np.isfinite(mean[c, i, 1])
            for k in range(3):
                ok &= np.isfinite(cov[c, i, k])
        if not ok:
            continue
        cx = (V[c, 0, 0] + V[c, 1, 0] + V[c, 2, 0]) / 3.0
        cy = (V[c, 0, 1] + V[c, 1, 1] + V[c, 2, 1]) / 3.0
        # A's Bregman gaps D[i, j] = A_j - A_i + m_i.(lambda_j - lambda_i) (upper bounds: their rounding and the
        # rows the sums skip added)
        size = 0.0
        for j in range(3):
            for i in range(3):
                l0, l1 = lam[c, j, 0] - lam[c, i, 0], lam[c, j, 1] - lam[c, i, 1]
                sz = abs(l0) + abs(l1)
                size = max(size, sz)
                d = A[c, j] - A[c, i] + mean[c, i, 0] * l0 + mean[c, i, 1] * l1
                D[i, j] = max(d + 1e-14 * (abs(A[c, i]) + abs(A[c, j]) + sz) + cut * (1.0 + 2.0 * sz), 0.0)
        # gamma >= max_mu min_i (D mu)_i (the pure strategies i and the uniform one of the minimising player)
        g_pure = np.inf
        for i in range(3):
            g_pure = min(g_pure, max(D[i, 0], D[i, 1], D[i, 2]))
        g_unif = 0.0
        for j in range(3):
            g_unif = max(g_unif, (D[0, j] + D[1, j] + D[2, j]) / 3.0)
        gamma = min(g_pure, g_unif)
        # J maps s - v_0 to lambda - lambda_0: J [v_1 - v_0, v_2 - v_0] = [lambda_1 - lambda_0, lambda_2 - lambda_0]
        a00, a10 = V[c, 1, 0] - V[c, 0, 0], V[c, 1, 1] - V[c, 0, 1]
        a01, a11 = V[c, 2, 0] - V[c, 0, 0], V[c, 2, 1] - V[c, 0, 1]
        det = a00 * a11 - a01 * a10
        if det == 0.0:
            continue
        i00, i01, i10, i11 = a11 / det, -a01 / det, -a10 / det, a00 / det
        b00, b10 = lam[c, 1, 0] - lam[c, 0, 0], lam[c, 1, 1] - lam[c, 0, 1]
        b01, b11 = lam[c, 2, 0] - lam[c, 0, 0], lam[c, 2, 1] - lam[c, 0, 1]
        J00, J01 = b00 * i00 + b01 * i10, b00 * i01 + b01 * i11
        J10, J11 = b10 * i00 + b11 * i10, b10 * i01 + b11 * i11
        jmax = max(abs(J00), abs(J01), abs(J10), abs(J11))
        for a in range(3):
            px[a], py[a] = V[c, a, 0], V[c, a, 1]
        K00, K01, K11, low = _hess_bound(px, py, 3)
        if not low > 0.0:
            continue
        whole, regions, al, bad = np.inf, -np.inf, 0.0, False
        for i in range(3):
            # G_i (e = s - v_i): f0 + g.e + e^T (psi2 + beta K) e / 2, valid on the whole cell; the smallest of its
            # maxima over the cell, and the largest of its maxima over the part of the cell nearest v_i (v_i, the
            # midpoints of its edges and the centre), where it is tighter
            vx, vy = V[c, i, 0], V[c, i, 1]
            # second moments about m_i: S_j = cov_j + (m_j - m_i)(m_j - m_i)^T (+ eps I), S_i = cov_i, and
            # t_j the largest generalised eigenvalue of (S_j, S_i) (S_j <= t_j S_i)
            s0, s1, s2 = cov[c, i, 0] + eps, cov[c, i, 1], cov[c, i, 2] + eps
            da = s0 * s2 - s1 * s1
            if not (da > 0.0 and (s0 + s2) ** 2 / da < 1e8):
                whole, regions = np.inf, np.inf
                break
            j, h = (i + 1) % 3, (i + 2) % 3
            for q in range(2):
                r = j if q == 0 else h
                dx, dy = mean[c, r, 0] - mean[c, i, 0], mean[c, r, 1] - mean[c, i, 1]
                e0, e1, e2 = cov[c, r, 0] + dx * dx + eps, cov[c, r, 1] + dx * dy, cov[c, r, 2] + dy * dy + eps
                db = s0 * e2 + s2 * e0 - 2.0 * s1 * e1
                dc = e0 * e2 - e1 * e1
                tq = max((db + np.sqrt(max(db * db - 4.0 * da * dc, 0.0))) / (2.0 * da), 1.0)
                if q == 0:
                    tj = tq
                else:
                    th = tq
            H, gx, gy = _ent3(vx, vy)
            f0 = A[c, i] + lam[c, i, 0] * vx + lam[c, i, 1] * vy - beta * H
            rx, ry = vx - mean[c, i, 0], vy - mean[c, i, 1]
            g0 = lam[c, i, 0] + J00 * rx + J10 * ry - beta * gx
            g1 = lam[c, i, 1] + J01 * rx + J11 * ry - beta * gy
            base = abs(A[c, i]) + abs(lam[c, i, 0]) + abs(lam[c, i, 1]) + beta * (H + 1.0) + 1.0
            skip = cut * (1.0 + 2.0 * size)
            for region in range(2):
                if region == 0:
                    k = 3
                    for a in range(3):
                        px[a], py[a] = V[c, a, 0] - vx, V[c, a, 1] - vy
                    k00, k01, k11 = K00, K01, K11
                else:
                    k = 4
                    px[0], py[0] = vx, vy
                    px[1], py[1] = 0.5 * (vx + V[c, j, 0]), 0.5 * (vy + V[c, j, 1])
                    px[2], py[2] = cx, cy
                    px[3], py[3] = 0.5 * (vx + V[c, h, 0]), 0.5 * (vy + V[c, h, 1])
                    k00, k01, k11, _ = _hess_bound(px, py, 4)
                    for a in range(4):
                        px[a], py[a] = px[a] - vx, py[a] - vy
                # Cov <= e^gamma sum_j mu_j S_j along lambda_i -> lambda(s), so A's second-order remainder is at
                # most Delta^T e^gamma (S_i / 3 + S_mu / 6) Delta, S_mu <= t S_i over the polygon's mu
                t = max(tj, th) if region == 0 else max(0.5 * (1.0 + tj), 0.5 * (1.0 + th), (1.0 + tj + th) / 3.0)
                f = np.exp(gamma) * (2.0 + t) / 3.0 * (1.0 + 1e-6)
                C0, C1, C2 = f * s0, f * s1, f * s2
                CJ00, CJ01 = C0 * J00 + C1 * J10, C0 * J01 + C1 * J11
                CJ10, CJ11 = C1 * J00 + C2 * J10, C1 * J01 + C2 * J11
                M00 = J00 * CJ00 + J10 * CJ10
                M01 = J00 * CJ01 + J10 * CJ11
                M11 = J01 * CJ01 + J11 * CJ11
                p00, p01, p11 = 2.0 * J00 + M00, J01 + J10 + M01, 2.0 * J11 + M11
                mmax = max(abs(M00), abs(M01), abs(M11))
                scale = 2.0 * jmax + mmax + beta * max(abs(k00), abs(k01), abs(k11))
                h2 = 0.0
                for a in range(k):
                    h2 = max(h2, px[a] * px[a] + py[a] * py[a])
                val = _quad_max(f0, g0, g1, p00 + beta * k00, p01 + beta * k01, p11 + beta * k11, px, py, k,
                                1e-9 * scale)
                err = 1e-13 * (base + (abs(g0) + abs(g1)) * np.sqrt(h2) + scale * h2) + skip
                al = max(al, err)
                if not np.isfinite(val + err):  # max() and min() would drop a nan: no bound for this cell
                    bad = True
                elif region == 0:
                    whole = min(whole, val + err)
                else:
                    regions = max(regions, val + err)
        best = np.inf if bad else min(whole, regions)
        if np.isfinite(best):
            out[c], allow[c] = best, al


def _curved_bounds(beta, V, lam, A, mean, cov, n):
    """Upper bounds on max_{s in cell} [psi(s) - beta H(s)] from the curvature of psi, for triangles V (m, 3, 2)
    whose vertices' multipliers lam (m, 3, 2) have the Gibbs sums A (m, 3), means (m, 3, 2) and covariances
    (m, 3, 3: c00, c01, c11) (``gibbs_moments``; n rows), and the rounding allowance each includes; one compiled
    pass over the cells.

    Covariance over the multipliers' triangle T: with c = m_i and S(lambda) = E_lambda[(W~ - c)(W~ - c)^T] >=
    Cov_lambda, for every direction u, ln u^T S u = M_u - A with M_u(lambda) = ln sum_x exp(-a_x - lambda.W~_x)
    (u.(W~_x - c))^2 convex: at barycentric mu, M_u <= sum_j mu_j M_u(lambda_j) and A >= the tangent at lambda_i =
    sum_j mu_j (A_j - D_ij) (D_ij = A_j - A_i + m_i.(lambda_j - lambda_i) >= 0, A's Bregman gaps), so by the
    weighted AM-GM inequality u^T S u <= e^gamma sum_j mu_j u^T S_j u, gamma = max_mu min_i (D mu)_i <= max_j
    (nu^T D)_j for any distribution nu.  Along lambda_i -> lambda Taylor's remainder of A is then at most
    Delta^T e^gamma (S_i / 3 + S_mu / 6) Delta, and S_mu <= t S_i with t from the generalised eigenvalues t_j of
    the S_j against S_i = Cov_i (which keeps the covariances' shape: an isotropic margin would swamp their thin
    directions): max_j t_j over the cell, max((1 + t_j) / 2, (1 + t_j + t_h) / 3) over the quarter nearest v_i.

    Then A(lambda) <= A_i - m_i.(lambda - lambda_i) + (lambda - lambda_i)^T C_i (lambda - lambda_i) / 2 on T
    (C_i = e^gamma (2 + t) / 3 S_i), and
    with the multiplier lambda(s) = lambda_i + J (s - v_i) that interpolates the vertices' (inside T for s in the
    cell), psi(s) <= A(lambda(s)) + lambda(s).s; with -H at most its tangent at v_i plus e^T K e / 2 (K >= -H''
    on the region, from each coordinate's smallest value), the bound is a quadratic in e = s - v_i whose maximum
    over a polygon has a closed form.  Its slack is third order in the cell's size (the vertex bound's: second).
    Cells with a vertex of unknown multiplier, a degenerate shape or a vertex on the simplex's boundary give inf."""
    m = len(V)
    out, allow = np.empty(m), np.empty(m)
    args = [np.ascontiguousarray(x, dtype=np.float64) for x in (V, lam, A, mean, cov)]
    _run(lambda _, lo, hi: _curved_kernel(lo, hi, float(beta), *args, int(n), out, allow), m, extra=0)
    return out, allow


def _best_2d(a, Wt, W, beta, lam, lower, q_best, blk=None):
    """``_certify_1d._best`` (the largest Gibbs value phi(q) - a.q among the multipliers ``lam`` when it beats
    ``lower``, and its q): the values of all of them in one compiled pass (``gibbs_values``: H(q) - a.q of the q it
    forms, then - beta H(qW) from its mean), the winner's q formed and valued by ``_best`` itself."""
    v, mean = gibbs_values(a, Wt, lam, blk)
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
    blk = gibbs_blocks(a, Wt)  # the rows in compact blocks: blocks far below a sum's largest term are not visited
    P = np.concatenate([Wt[hv].mean(axis=0, keepdims=True), Wt[hv]])
    lam_p = np.full((len(P), 2), np.nan)  # multipliers of the mesh points (unknown at the hull's corners)
    c_p = beta * _H(P)
    nh = len(hv)
    cells = np.stack([np.zeros(nh, int), 1 + np.arange(nh), 1 + (np.arange(nh) + 1) % nh], axis=1)
    slot = np.where(cells == 0, 0, -1)
    A_p = np.full(len(P), np.nan)  # A(lambda) of the mesh points' multipliers
    U, best, cand, lam_new, E, A_best, A_new = _triangle_bounds(
        a, Wt, beta, P[cells], c_p[cells], lam_p[cells], A_p[cells], np.zeros((nh, 2)),
        np.repeat(gibbs_lse(a, Wt, np.zeros((1, 2)), blk), nh), slot, P[:1], _edges(cells, len(P)), blk)
    lam_p[0], A_p[0] = lam_new[0], A_new[0]
    moments = np.full((len(P), 6), np.nan)  # A, mean, covariance of each mesh point's multiplier, when needed
    lower, q_best = _best_2d(a, Wt, W, beta, cand, lower, q_best, blk)
    final, total, rounds = [], len(cells), 0
    while True:
        # a cell is final below the target or the best lower bound, its rounding allowance (~2e-14 beta nats,
        # which no refinement removes: above beta ~1e6 it exceeds the target) not counted
        thr = max(target, lower) + 0.25 * target
        bad = U - E > thr
        final.append((U[~bad], best[~bad]))
        cells, U, best, A_best = cells[bad], U[bad], best[bad], A_best[bad]
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
        A_p = np.concatenate([A_p, np.full(len(mid), np.nan)])
        v0, v1, v2 = cells.T
        m01, m12, m20 = mids.T
        cells = np.concatenate([np.stack(x, 1) for x in ((v0, m01, m20), (m01, v1, m12), (m20, m12, v2),
                                                         (m01, m12, m20))])
        lam0, A0 = np.tile(best, (4, 1)), np.tile(A_best, 4)
        # each new point is solved once, started from the first cell (in order) that has it
        slot = np.where(cells >= n_old, cells - n_old, -1)
        owner = np.full(len(mid), -1)
        r_, c_ = np.nonzero(slot >= 0)
        owner[slot[r_, c_][::-1]] = r_[::-1]
        slot = np.where((slot >= 0) & (owner[np.maximum(slot, 0)] == np.arange(len(cells))[:, None]), slot, -1)
        U, best, cand, lam_new, E, A_best, A_new = _triangle_bounds(
            a, Wt, beta, P[cells], c_p[cells], lam_p[cells], A_p[cells], lam0, A0, slot, mid, _edges(cells, len(P)),
            blk)
        lam_p[n_old:], A_p[n_old:] = lam_new, A_new
        moments = np.concatenate([moments, np.full((len(mid), 6), np.nan)])
        # the curved bound where the vertex bound leaves a cell open (every vertex's multiplier known): the
        # moments of its vertices' multipliers once per point, then O(1) per cell
        need = np.flatnonzero((U - E > thr) & np.isfinite(lam_p[cells]).all(axis=(1, 2)))
        if CURVED and len(need):
            pts = np.unique(cells[need])
            pts = pts[np.isnan(moments[pts, 0])]
            if len(pts):
                A_, m_, c_ = gibbs_moments(a, Wt, lam_p[pts], blk)
                moments[pts] = np.concatenate([A_[:, None], m_, c_.reshape(-1, 4)[:, [0, 1, 3]]], axis=1)
            mo = moments[cells[need]]
            Uc, Ec = _curved_bounds(beta, P[cells[need]], lam_p[cells[need]], mo[..., 0], mo[..., 1:3], mo[..., 3:],
                                    len(a))
            use = Uc < U[need]
            U[need[use]], E[need[use]] = Uc[use], Ec[use]
        # the Gibbs lower bound g(s(lambda)) at each cell's best multiplier and at the new mesh points' (every
        # candidate's: ~25 % of the certificate, the same bounds and cells on 36 small tables and 64 x 3)
        lower, q_best = _best_2d(a, Wt, W, beta, np.concatenate([best, lam_new]), lower, q_best, blk)
        total += len(cells)
    allU = np.concatenate([u for u, _ in final] + [U])
    allB = np.concatenate([b for _, b in final] + [best])
    keep = allB[np.argsort(-allU)[:32]]
    return float(max(allU.max(), lower)), lower, q_best, int(total), bool(not len(cells)), keep
