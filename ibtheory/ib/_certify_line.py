"""The |Y| = 2 certificate by tangent lines: a bound whose cells cost O(1) and whose vertices cost O(n_s) each.

With the notation of :mod:`ibtheory.ib.certify` (tangent plane a, w_s = p(y=1|s)), the gap's second term is

    g = max_s [psi(s) - beta H2(s)],    psi(s) = min_lambda F(lambda, s),
    F(lambda, s) = ln sum_x exp(-a_x - lambda (w_x - s)) = C(lambda) + lambda (s - w_ref),

(nats; H2 the binary entropy) for s in [min w, max w].  Every lambda gives a line s -> F(lambda, s) lying above
psi everywhere (psi is their lower envelope), touching it at the image s(lambda) = E_lambda[w] of the Gibbs
distribution q ~ exp(-a - lambda w).  On a cell [s_L, s_R] between the images of lambda_L > lambda_R,

    psi(s) - beta H2(s) <= min(F(lambda_L, s), F(lambda_R, s)) - beta H2(s),

a minimum of two lines minus a convex function: on each side of the lines' crossing s* it is convex, so its
maximum over the cell is its largest value at s_L, s* and s_R.  A cell's bound therefore costs three entropies and
four line values, whatever n_s; each new vertex (one lambda) costs one pass over the n_s rows.  The slack of a
cell is O((|psi''| + beta / (s (1 - s))) h^2) for a cell of width h, so cells above the target are split at the
image of the lambda equal to the slope of the chord of beta H2 (the multiplier at which the two vertex terms
balance; the midpoint lambda when that image falls outside the cell), until every cell is below
max(target, best lower bound) + target / 4.

Lines are stored relative to the row that dominates them (``w_ref``, where -a_x - lambda w_x is largest), so a
multiplier of 1e38 near the ends of [min w, max w] loses no precision; every bound adds a rounding allowance of
1e-13 (|C| + |lambda (s - w_ref)| + beta + 1) nats.

The lower bound (and the seed q* of a new cluster) is the value phi(q) - a.q of the normalised Gibbs q actually
formed at the best vertex.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from scipy.special import entr

from ..info import LN2
from . import _iterate as it
from ._certify_1d import Certificate, _gibbs_values
from ._certify_batch import _plane

__all__ = ["line_bound", "vertices", "blocks", "Blocks"]

#: initial multipliers: an asinh-spaced grid out to +-6e38 (the ends of the segment)
GRID = np.sinh(np.arange(-90.0, 90.5, 3.0))
_CHUNK = 1 << 22  # float64 cells per block of the (lambda, x) computation
_ALLOW = 1e-13
#: rows per block of the windowed vertices (:func:`blocks`)
BLOCK = 32
#: nats below the largest term from which a whole block of rows is bounded instead of summed
DROP = 40.0


def _h2(s: np.ndarray) -> np.ndarray:
    """Binary entropy in nats of s (clipped to [0, 1])."""
    s = np.clip(s, 0.0, 1.0)
    return entr(s) + entr(1.0 - s)


class Blocks(NamedTuple):
    """The rows sorted by w in blocks of ``BLOCK`` (the last padded with a = +inf), with per block the largest -a,
    the w of the row attaining it, the smallest and largest w and the number of real rows."""

    a: np.ndarray
    w: np.ndarray
    top: np.ndarray
    w_top: np.ndarray
    w_lo: np.ndarray
    w_hi: np.ndarray
    count: np.ndarray


def blocks(a: np.ndarray, w: np.ndarray) -> Blocks | None:
    """:class:`Blocks` of the rows (a, w), or None (no windowing) when some a is not finite or there are fewer than
    4 blocks."""
    n = w.size
    if n < 4 * BLOCK or not np.all(np.isfinite(a)):
        return None
    o = np.argsort(w, kind="stable")
    nb = -(-n // BLOCK)
    pad = nb * BLOCK - n
    a_s = np.concatenate([a[o], np.full(pad, np.inf)])
    w_s = np.concatenate([w[o], np.full(pad, w[o][-1])])
    A, Wb = -a_s.reshape(nb, BLOCK), w_s.reshape(nb, BLOCK)
    j = A.argmax(axis=1)
    r = np.arange(nb)
    count = np.full(nb, BLOCK)
    count[-1] -= pad
    return Blocks(a_s, w_s, A[r, j], Wb[r, j], Wb[:, 0], Wb[:, -1], count)


def vertices(a: np.ndarray, w: np.ndarray, lam: np.ndarray,
             blk: Blocks | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For each multiplier lambda: (C, w_ref, s) with F(lambda, v) = C + lambda (v - w_ref) and s = E_lambda[w].

    ``a`` and ``w`` (n,) the plane and the rows' p(y=1|x); ``lam`` (m,).  Computed in blocks of ~4M cells.  With
    ``blk`` (:func:`blocks` of the same rows) only the blocks of rows whose upper bound max_B(-a) -
    lambda w_{lo or hi} comes within ``DROP`` nats of the largest term are summed; every other block adds the
    bound (rows) x exp(its upper bound) to the sum, so C stays an upper bound (too large by at most
    n e^-DROP relative, 1e-13 for a million rows) and the line stays above psi.
    """
    lam = np.asarray(lam, dtype=np.float64)
    if blk is not None:
        return _vertices_windowed(blk, lam)
    m, n = lam.size, w.size
    C, wr, s = np.empty(m), np.empty(m), np.empty(m)
    step = max(1, _CHUNK // max(n, 1))
    for lo in range(0, m, step):
        C[lo:lo + step], wr[lo:lo + step], s[lo:lo + step] = _sums(a[None, :], w[None, :], lam[lo:lo + step])
    return C, wr, s


def _sums(a: np.ndarray, w: np.ndarray, lm: np.ndarray, extra: np.ndarray | None = None):
    """(C, w_ref, s) of multipliers ``lm`` (m,) over the rows ``a``, ``w`` ((1, n) shared or (m, n) per
    multiplier; a = +inf rows count for nothing); ``extra`` (m,) an upper bound on rows left out, relative to the
    largest term (added to the normalised sum)."""
    ref = np.argmax(-a - lm[:, None] * w, axis=1)
    rows = np.arange(lm.size) if a.shape[0] > 1 else np.zeros(lm.size, dtype=np.intp)
    a0, w0 = a[rows, ref], w[rows, ref]
    dw = w - w0[:, None]
    with np.errstate(invalid="ignore"):
        R = -(a - a0[:, None]) - lm[:, None] * dw
    R = np.where(np.isnan(R), -np.inf, R)  # inf * 0 where w_x = w_ref and |lambda| = inf; padding rows
    mx = R.max(axis=1)
    E = it.exp_nonpositive(R - mx[:, None])
    z = E.sum(axis=1)
    if extra is not None:
        z = z + extra
    return -a0 + mx + np.log(z), w0, w0 + (E * dw).sum(axis=1) / z


def _vertices_windowed(blk: Blocks, lam: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`vertices` over the blocks that matter (see there); multipliers grouped by how many blocks they need,
    ~4M cells at a time."""
    m = lam.size
    C, wr, s = np.empty(m), np.empty(m), np.empty(m)
    lm = lam[:, None]
    # a row of each block that is attained (its largest -a): the best of them is the reference, R = 0
    L = blk.top[None, :] - lm * blk.w_top[None, :]
    ref = np.argmax(L, axis=1)
    a0, w0 = -blk.top[ref], blk.w_top[ref]
    w_edge = np.where(lm > 0, blk.w_lo[None, :], blk.w_hi[None, :])
    with np.errstate(invalid="ignore"):
        U = (blk.top[None, :] + a0[:, None]) - lm * (w_edge - w0[:, None])  # >= every row's term - ref's term
    U = np.where(np.isnan(U), np.inf, U)
    act = U >= -DROP
    act[np.arange(m), ref] = True
    dropped = np.where(act, 0.0, blk.count[None, :] * np.exp(np.minimum(U, 0.0))).sum(axis=1)  # x exp(ref term)
    k = act.sum(axis=1)
    r, c = np.nonzero(act)
    pos = np.arange(r.size) - np.repeat(np.cumsum(k) - k, k)
    order = np.argsort(k, kind="stable")
    k_sorted = k[order]
    inner = np.arange(BLOCK)
    loc = np.full(m, -1)
    lo = 0
    while lo < m:  # consecutive multipliers of the sorted order, at most ~_CHUNK cells (padded to the widest)
        cost = np.arange(1, m - lo + 1) * k_sorted[lo:] * BLOCK
        hi = lo + max(1, int(np.searchsorted(cost, _CHUNK, side="right")))
        sel, width = order[lo:hi], int(k_sorted[hi - 1])
        loc[sel] = np.arange(sel.size)
        keep = loc[r] >= 0
        idx = np.full((sel.size, width), -1)
        idx[loc[r[keep]], pos[keep]] = c[keep]
        loc[sel] = -1
        rows = (np.where(idx < 0, 0, idx)[:, :, None] * BLOCK + inner).reshape(sel.size, -1)
        a_g = np.where(np.repeat(idx < 0, BLOCK, axis=1), np.inf, blk.a[rows])
        # the dropped blocks' bound is relative to the reference block row's term, which is at most the largest
        # term summed here: added as it is, it bounds the dropped rows relative to that largest term
        C[sel], wr[sel], s[sel] = _sums(a_g, blk.w[rows], lam[sel], dropped[sel])
        lo = hi
    return C, wr, s


def _line(C, lam, wr, v):
    """F(lambda, v) and its rounding allowance."""
    with np.errstate(invalid="ignore"):
        d = lam * (v - wr)
    d = np.where(np.isnan(d), 0.0, d)  # lambda infinite exactly at its own end point
    return C + d, _ALLOW * (np.abs(C) + np.abs(d) + 1.0)


def _cross(A, B, sL, sR):
    """Where lines A and B (C, lambda, w_ref; arrays of one shape) cross, clipped to [sL, sR] (sL where they are
    parallel)."""
    fA, _ = _line(*A, sL)
    fB, _ = _line(*B, sL)
    slope = A[1] - B[1]
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        x = sL + (fB - fA) / slope
    return np.where(np.isfinite(x) & (slope != 0), np.clip(x, sL, sR), sL)


def _cell_bounds(beta, sL, sR, lines):
    """Upper bounds on max_{s in [sL, sR]} psi(s) - beta H2(s) from a few lines above psi (the two vertex lines
    and, where a cell has one, an extra line): the lower envelope of the lines minus beta H2 is convex between two
    consecutive breakpoints, so its maximum is at the cell's ends or at a crossing of two lines, all evaluated.

    ``lines``: (C, lambda, w_ref), each an array (k, n_cells) for k lines per cell; all points and lines are
    evaluated in one broadcast."""
    C, lam, wr = (np.asarray(v, dtype=np.float64) for v in lines)
    i, j = np.triu_indices(C.shape[0], 1)
    cross = _cross((C[i], lam[i], wr[i]), (C[j], lam[j], wr[j]), sL[None, :], sR[None, :])
    x = np.concatenate([sL[None, :], sR[None, :], cross])  # (points, n_cells)
    f, e = _line(C[None, :, :], lam[None, :, :], wr[None, :, :], x[:, None, :])  # (points, k, n_cells)
    env = np.where(np.isnan(f), np.inf, f + e).min(axis=1)
    out = (env - beta * _h2(x)).max(axis=0) + beta * _ALLOW
    return np.where(np.isnan(out), np.inf, out)


def line_bound(a: np.ndarray, w: np.ndarray, beta: float, lam0: np.ndarray, target: float,
               max_rounds: int = 80, max_vertices: int = 20000):
    """Upper bound on g = max_s [psi(s) - beta H2(s)] (nats) for the plane ``a`` (see the module docstring).

    ``lam0`` extra multipliers (the clusters', a nearby beta's) join the grid :data:`GRID`.  A bad cell is split at
    the image of the chord multiplier; when that image falls on one of the cell's ends (at large beta the images
    jump from one row's p(y=1|x) to the next), its line is kept as the cell's extra line instead, which makes the
    cell's bound the exact minimum over the three multipliers.  Returns (g_upper, best vertex value (an estimate of
    g from below), best lambda, number of cells, converged, the multipliers of the largest cells' ends (a warm start
    for a nearby beta)).
    """
    lam = np.unique(np.concatenate([GRID, np.asarray(lam0, dtype=np.float64).ravel(), [0.0]]))
    lam = lam[np.isfinite(lam)]
    blk = blocks(a, w)
    C, wr, s = vertices(a, w, lam, blk)
    lo_w, hi_w = float(w.min()), float(w.max())
    V_s, V_l, V_C, V_w = s, lam, C, wr
    if hi_w == lo_w:
        val = float(C[0] - beta * _h2(np.array([lo_w]))[0])
        return val + _ALLOW * (abs(val) + beta + 1), val, 0.0, 1, True, np.zeros(0)

    def assemble(V_s, V_l, V_C, V_w):
        order = np.lexsort((-V_l, V_s))
        V_s, V_l, V_C, V_w = V_s[order], V_l[order], V_C[order], V_w[order]
        keep = np.r_[True, np.diff(V_s) > 0]
        return V_s[keep], V_l[keep], V_C[keep], V_w[keep]

    def ends(V_s, V_l, V_C, V_w):
        """vertices plus the two end points of the segment, each with the line of its nearest vertex (the
        steepest lines: lambda -> +inf at min w, -inf at max w)."""
        Ps = np.concatenate([[lo_w], V_s, [hi_w]])
        Pl = np.concatenate([[V_l[0]], V_l, [V_l[-1]]])
        PC = np.concatenate([[V_C[0]], V_C, [V_C[-1]]])
        Pw = np.concatenate([[V_w[0]], V_w, [V_w[-1]]])
        return Ps, Pl, PC, Pw

    V_s, V_l, V_C, V_w = assemble(np.clip(V_s, lo_w, hi_w), V_l, V_C, V_w)
    vals = _line(V_C, V_l, V_w, V_s)[0] - beta * _h2(V_s)  # F(lambda, s(lambda)) = psi(s) (up to rounding)
    best = int(np.argmax(vals))
    lower, lam_best = float(vals[best]), float(V_l[best])
    # the extra lines, by the cell (sL, sR) they belong to: rows (sL, sR, C, lambda, w_ref), sorted by sL
    extra = np.empty((0, 5))
    rounds = 0
    while True:
        Ps, Pl, PC, Pw = ends(V_s, V_l, V_C, V_w)
        sL, sR = Ps[:-1], Ps[1:]
        ex = np.full((sL.size, 3), np.nan)
        if extra.shape[0]:
            k = np.clip(np.searchsorted(extra[:, 0], sL), 0, extra.shape[0] - 1)
            same = (extra[k, 0] == sL) & (extra[k, 1] == sR)
            ex[same] = extra[k[same], 2:]
        has = np.isfinite(ex[:, 1])
        # a cell without an extra line repeats its right line: the envelope of the three is that of the two
        third = (np.where(has, ex[:, 0], PC[1:]), np.where(has, ex[:, 1], Pl[1:]), np.where(has, ex[:, 2], Pw[1:]))
        U = _cell_bounds(beta, sL, sR, (np.stack([PC[:-1], PC[1:], third[0]]), np.stack([Pl[:-1], Pl[1:], third[1]]),
                                        np.stack([Pw[:-1], Pw[1:], third[2]])))
        thr = max(target, lower) + 0.25 * target
        bad = np.flatnonzero((U > thr) & (sR > sL))
        if bad.size == 0 or rounds >= max_rounds or V_s.size > max_vertices:
            break
        rounds += 1
        bL, bR = sL[bad], sR[bad]
        chord = beta * (_h2(bR) - _h2(bL)) / (bR - bL)
        # a cell whose chord line is already its extra line: bisect its multipliers instead
        stuck = has[bad] & (ex[bad, 1] == chord)
        mid = 0.5 * (Pl[bad] + Pl[bad + 1])
        new_l = np.where(stuck, mid, chord)
        ok = np.isfinite(new_l) & ~np.isin(new_l, V_l)
        if not ok.any():
            break
        bad, new_l, bL, bR = bad[ok], new_l[ok], bL[ok], bR[ok]
        nC, nw, ns = vertices(a, w, new_l, blk)
        ns = np.clip(ns, lo_w, hi_w)
        nv = _line(nC, new_l, nw, ns)[0] - beta * _h2(ns)
        j = int(np.argmax(nv))
        if nv[j] > lower:
            lower, lam_best = float(nv[j]), float(new_l[j])
        inside = (ns > bL) & (ns < bR)
        out = ~inside
        if out.any():  # new extra lines replace those of the same cells
            rows = np.column_stack([bL[out], bR[out], nC[out], new_l[out], nw[out]])
            old = extra[~np.isin(extra[:, 0], rows[:, 0])] if extra.shape[0] else extra
            extra = np.concatenate([old, rows])
            extra = extra[np.argsort(extra[:, 0], kind="stable")]
        V_s, V_l, V_C, V_w = assemble(np.concatenate([V_s, ns[inside]]), np.concatenate([V_l, new_l[inside]]),
                                      np.concatenate([V_C, nC[inside]]), np.concatenate([V_w, nw[inside]]))
    g_up = float(max(U.max(), lower))
    converged = bool(not (U > max(target, lower) + 0.25 * target).any())
    near = np.argsort(-U)[:32]
    warm = np.concatenate([Pl[near], Pl[near + 1]])
    return g_up, lower, lam_best, int(U.size), converged, np.unique(warm[np.isfinite(warm)])


def certify_line(prob, beta: float, solution, target: float = 2e-8, warm: np.ndarray | None = None) -> Certificate:
    """The :class:`~ibtheory.ib._certify_1d.Certificate` of a |Y| = 2 ``solution`` (anything with p_t, decoder,
    I_XT and I_TY in bits) by :func:`line_bound`: the tangent plane and the consistency term as in
    ``certify_state``; ``warm`` multipliers divided by beta (a nearby beta's ``Certificate.lambdas``)."""
    a, consistency, lam_t = _plane(prob, beta, solution)
    extra = [lam_t] + ([] if warm is None else [beta * np.asarray(warm).ravel()])
    g_up, _, lam_best, n_cells, done, keep = line_bound(a, prob.W[:, 1], beta, np.concatenate(extra), target)
    lower, q = _gibbs_values(a, prob.W[:, 1:], prob.W, beta, np.array([[lam_best]]))
    gap = max(consistency + g_up, 0.0) / LN2
    return Certificate(gap, g_up, float(lower[0]), consistency, q[0], n_cells, done, keep[:, None] / beta)
