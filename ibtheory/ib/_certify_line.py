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

The lines' slack is too much where g is flat to within the target over long stretches (near the top of the curve
it touches 0 at every cluster): each cell is also bounded through the curvature of psi (:func:`_curved_bounds`),
whose slack is O(h^3), and keeps the smaller bound.  For that every vertex also returns an upper bound on
Var_lambda(w) and a bound on the error of its image s (rows left out of it, rounding).

Lines are stored relative to the row that dominates them (``w_ref``, where -a_x - lambda w_x is largest), so a
multiplier of 1e38 near the ends of [min w, max w] loses no precision; every bound adds a rounding allowance of
1e-13 (|C| + |lambda (s - w_ref)| + beta + 1) nats.

The lower bound (and the seed q* of a new cluster) is the value phi(q) - a.q of the normalised Gibbs q actually
formed at the best vertex.
"""

from __future__ import annotations

from typing import NamedTuple

import numba
import numpy as np
from scipy.special import entr

from ..info import LN2
from ._certify_1d import Certificate, _first_by, _gibbs_values, _plane
from ._kernels import _jit, _run, block_sums

__all__ = ["certify_line", "certify_lines", "line_bound", "line_bounds", "vertices", "blocks", "Blocks"]

#: initial multipliers: an asinh-spaced grid out to +-6e38 (the ends of the segment)
GRID = np.sinh(np.arange(-90.0, 90.5, 3.0))
_ALLOW = 1e-13
#: largest |lambda| whose windowed sums start from the reference block row (rounding 1e-16 |lambda| nats); beyond,
#: lambda (w - w0) would swamp the differences of a between rows of equal w, and the sums start from the largest
#: row itself
_REF_LAMBDA = 1e5
#: rows per block of the windowed vertices (:func:`blocks`)
BLOCK = 32
#: nats below the largest term from which a whole block of rows is bounded instead of summed
DROP = 40.0


def _h2(s: np.ndarray) -> np.ndarray:
    """Binary entropy in nats of s (clipped to [0, 1])."""
    s = np.clip(s, 0.0, 1.0)
    return entr(s) + entr(1.0 - s)


class Blocks(NamedTuple):
    """The rows sorted by w in blocks of ``BLOCK`` (the last padded with a = +inf, and one more block of padding),
    per plane (rows of ``a``,
    ``top``, ``w_top``) the largest -a of each block and the w of the row attaining it; shared: the smallest and
    largest w of each block and its number of real rows."""

    a: np.ndarray
    w: np.ndarray
    top: np.ndarray
    w_top: np.ndarray
    w_lo: np.ndarray
    w_hi: np.ndarray
    count: np.ndarray


def blocks(a: np.ndarray, w: np.ndarray) -> Blocks | None:
    """:class:`Blocks` of the rows (a, w), ``a`` (n,) or one plane per row (P, n); None (no windowing) when some a
    is not finite or there are fewer than 4 blocks."""
    A = np.atleast_2d(a)
    n, P = w.size, A.shape[0]
    if n < 4 * BLOCK or not np.all(np.isfinite(A)):
        return None
    o = np.argsort(w, kind="stable")
    nb = -(-n // BLOCK)
    pad = nb * BLOCK - n
    # one more block of padding (a = +inf) at the end: the windowed vertices index it for the slots they leave empty
    a_s = np.concatenate([A[:, o], np.full((P, pad + BLOCK), np.inf)], axis=1)
    w_s = np.concatenate([w[o], np.full(pad + BLOCK, w[o][-1])])
    neg, Wb = -a_s[:, :nb * BLOCK].reshape(P, nb, BLOCK), w_s[:nb * BLOCK].reshape(nb, BLOCK)
    j = neg.argmax(axis=2)
    top = np.take_along_axis(neg, j[:, :, None], axis=2)[:, :, 0]
    count = np.full(nb, BLOCK)
    count[-1] -= pad
    return Blocks(a_s, w_s, top, Wb[np.arange(nb)[None, :], j], Wb[:, 0], Wb[:, -1], count)


def vertices(a: np.ndarray, w: np.ndarray, lam: np.ndarray, blk: Blocks | None = None,
             plane: np.ndarray | None = None) -> tuple[np.ndarray, ...]:
    """For each multiplier lambda: (C, w_ref, s, var, err) with F(lambda, v) = C + lambda (v - w_ref),
    s = E_lambda[w], var an upper bound on Var_lambda(w) over the rows summed, and err a bound on how far s, var
    and the normalised moments may be from the full sums' (the share of the partition function in rows left out,
    without ``blk`` none, and the rounding of s; var + err bounds the full variance).

    ``a`` (n,) the plane, or (P, n) planes with ``plane`` (m,) the plane of each multiplier; ``w`` (n,) the rows'
    p(y=1|x); ``lam`` (m,).  The sums are :func:`ibtheory.ib._kernels.block_sums` (compensated).  With ``blk``
    (:func:`blocks` of the same rows) only the blocks of rows whose upper bound max_B(-a) - lambda w_{lo or hi}
    comes within ``DROP`` nats of the largest term are summed; every other block adds the bound (rows) x exp(its
    upper bound) to the sum, so C stays an upper bound (too large by at most n e^-DROP relative, 1e-13 for a
    million rows) and the line stays above psi.
    """
    lam = np.asarray(lam, dtype=np.float64)
    A = np.atleast_2d(a)
    plane = np.zeros(lam.size, dtype=np.intp) if plane is None else np.asarray(plane, dtype=np.intp)
    if blk is not None:
        return _vertices_windowed(blk, lam, plane)
    # every row summed: all of them as one run of blocks (padded with a = +inf, which counts for nothing), the
    # terms relative to each multiplier's largest row (the kernel's branch for |lambda| > _REF_LAMBDA)
    n, m = w.size, lam.size
    pad = -(-n // BLOCK) * BLOCK - n
    A = np.concatenate([A, np.full((A.shape[0], pad), np.inf)], axis=1)
    W = np.concatenate([w, np.full(pad, w[-1] if n else 0.0)])
    nb = W.size // BLOCK
    base, w_ref, w_c, S = block_sums(A, W, plane, lam, np.zeros(m), np.zeros(m), np.zeros(m, dtype=bool),
                                     np.arange(m + 1) * nb, np.tile(np.arange(nb), m), BLOCK)
    log_z, s, var, err = _finish(S[:, 0], S[:, 1], S[:, 2], w_c, None, S[:, 3])
    return base + log_z, w_ref, s, var, err


def _finish(z: np.ndarray, s1: np.ndarray, s2: np.ndarray, w0: np.ndarray, extra: np.ndarray | None,
            spread: np.ndarray | None = None):
    """(ln z, s, var, err) from the sums z = sum E, s1 = sum E dw, s2 = sum E dw^2 (each at most a few ulp off) of
    the terms E at offsets dw = w - w0 from each multiplier's w0: s = w0 + m1 with m1, m2 the first two normalised
    moments of w - w0 (z plus ``extra``, an upper bound on rows left out); var an upper bound on the variance over
    the rows summed (rounding of m2 - m1^2 allowed for), and err a bound on how far s and the normalised moments
    may be from the full sums': the share of the sum's bound that rows left out may hold (w in [0, 1]) plus the
    rounding of s (4 ulp, and 1e-13 sqrt(m2)).
    ``spread`` bounds how far sum E may be off through its terms' own rounding (each term's relative error
    times the term): delta = spread / z is added to ln z (so C stays an upper bound) and 4 delta to ``err`` (a
    relative error delta in the weights moves s by at most 2 delta and the variance by at most 4 delta, w in
    [0, 1])."""
    if extra is not None:
        z = z + extra
    m1 = s1 / z
    m2 = s2 / z
    var = np.maximum(m2 - m1 * m1, 0.0) * (1.0 + 1e-9) + 1e-13 * m2
    err = 4.0 * np.spacing(np.abs(w0 + m1)) + 4.0 * np.spacing(np.abs(w0)) + 1e-13 * np.sqrt(m2)
    if extra is not None:
        err = err + extra / z
    delta = 0.0 if spread is None else spread * (1.0 + 1e-12) / z
    return np.log(z) + delta, w0 + m1, var, err + 4.0 * delta


#: below this U a dropped block adds count e^_FLOOR_U to the bound instead of count e^U
_FLOOR_U = -80.0
_FLOOR_E = float(np.exp(_FLOOR_U))


@_jit
def _select_blocks(top, w_top, w_lo, w_hi, count, plane, lam, drop, a0, w0, k, act, dropped):
    """Per multiplier i (:func:`_vertices_windowed`): the reference block (largest top - lambda w_top, the first on
    ties), U of every block, its active blocks (U >= -drop, and the reference) in order into act[i] (k[i] of them)
    and the bound of the others, sum count exp(min(max(U, _FLOOR_U), 0))."""
    nb = top.shape[1]
    for i in range(lam.size):
        P, lm = plane[i], lam[i]
        best, ref = -np.inf, 0
        for b in range(nb):
            v = top[P, b] - lm * w_top[P, b]
            if v > best:
                best, ref = v, b
        a0[i], w0[i] = -top[P, ref], w_top[P, ref]
        n_act, out = 0, 0.0
        for b in range(nb):
            w_edge = w_lo[b] if lm > 0 else w_hi[b]
            U = (top[P, b] + a0[i]) - lm * (w_edge - w0[i])
            if U != U:
                U = np.inf
            if U >= -drop or b == ref:
                act[i, n_act] = b
                n_act += 1
            elif U > _FLOOR_U:
                out += count[b] * np.exp(U if U < 0.0 else 0.0)
            else:  # e^U <= e^_FLOOR_U: bounded by that, no exp (most blocks, at most 1e-26 of the sum all together)
                out += count[b] * _FLOOR_E
        k[i], dropped[i] = n_act, out


def _vertices_windowed(blk: Blocks, lam: np.ndarray, plane: np.ndarray) -> tuple[np.ndarray, ...]:
    """:func:`vertices` over the blocks that matter (see there): which blocks, and the bound of the others, one
    compiled pass over the blocks (:func:`_select_blocks`); the sums over the rows of each multiplier's blocks
    another (:func:`ibtheory.ib._kernels.block_sums`, compensated sums).  Each block's U >= every row's term -
    the reference row's term (each block's largest -a at its w_top is attained, the best of them is the
    reference, R = 0)."""
    m = lam.size
    nb = blk.top.shape[1]
    a0, w0, dropped = np.empty(m), np.empty(m), np.empty(m)
    k, act = np.empty(m, dtype=np.int64), np.empty((m, nb), dtype=np.int64)
    _select_blocks(blk.top, blk.w_top, blk.w_lo, blk.w_hi, blk.count, plane, lam, DROP, a0, w0, k, act, dropped)
    c = act[np.arange(nb)[None, :] < k[:, None]]  # row-major: each multiplier's active blocks, in order
    base, w_ref, w_c, S = block_sums(blk.a, blk.w, plane, lam, a0, w0, np.abs(lam) <= _REF_LAMBDA,
                                     np.r_[0, np.cumsum(k)], c, BLOCK)
    log_z, s, var, err = _finish(S[:, 0], S[:, 1], S[:, 2], w_c, dropped, S[:, 3])
    return base + log_z, w_ref, s, var, err


def _line(C, lam, wr, v):
    """F(lambda, v) and its rounding allowance."""
    with np.errstate(invalid="ignore"):
        d = lam * (v - wr)
    d = np.where(np.isnan(d), 0.0, d)  # lambda infinite exactly at its own end point
    return C + d, _ALLOW * (np.abs(C) + np.abs(d) + 1.0)


# The cells' bounds, one compiled pass over the cells (numpy's ~200 small operations a round cost more than the
# bounds themselves).  NaN propagates as in numpy (_pmax, _pmin, _clip) and a cell whose bound is not a number gets
# +inf, so a bound is never lost to a comparison with NaN.  _line_at and _h2_1 are the scalar forms of _line and _h2
# (which the rest of line_bounds uses on whole arrays).

@numba.njit(inline="always", error_model="numpy")
def _pmax(a, b):
    return np.nan if (a != a or b != b) else (a if a > b else b)


@numba.njit(inline="always", error_model="numpy")
def _pmin(a, b):
    return np.nan if (a != a or b != b) else (a if a < b else b)


@numba.njit(inline="always", error_model="numpy")
def _clip(x, lo, hi):
    return np.nan if (x != x or lo != lo or hi != hi) else min(max(x, lo), hi)


@numba.njit(inline="always", error_model="numpy")
def _ent(x):
    return -x * np.log(x) if x > 0.0 else (0.0 if x == 0.0 else (-np.inf if x < 0.0 else np.nan))


@numba.njit(inline="always", error_model="numpy")
def _h2_1(s):
    s = _clip(s, 0.0, 1.0)
    return _ent(s) + _ent(1.0 - s)


@numba.njit(inline="always", error_model="numpy")
def _line_at(C, lam, wr, v):
    d = lam * (v - wr)
    if d != d:
        d = 0.0
    return C + d, _ALLOW * (abs(C) + abs(d) + 1.0)


@numba.njit(inline="always", error_model="numpy")
def _spacing(x):
    return np.nextafter(x, np.inf) - x


@numba.njit(inline="always", error_model="numpy")
def _value(C, lam, wr, x, beta):
    """a line plus its allowance, minus beta H2, at x (inf where the line is not a number)"""
    f, e = _line_at(C, lam, wr, x)
    return (np.inf if f != f else f + e) - beta * _h2_1(x)


@_jit
def _lines_kernel(lo, hi, beta, sL, sR, C, lam, wr, out):
    k = C.shape[0]
    for c in range(lo, hi):
        b, a, z = beta[c], sL[c], sR[c]
        ends = -np.inf
        for x in (a, z):
            m = np.inf
            for i in range(k):
                m = _pmin(m, _value(C[i, c], lam[i, c], wr[i, c], x, b))
            ends = _pmax(ends, m)
        near = -np.inf
        for i in range(k):
            for j in range(i + 1, k):
                fA, eA = _line_at(C[i, c], lam[i, c], wr[i, c], a)
                fB, eB = _line_at(C[j, c], lam[j, c], wr[j, c], a)
                slope = lam[i, c] - lam[j, c]
                x = a + (fB - fA) / slope
                cross = _clip(x, a, z) if (np.isfinite(x) and slope != 0.0) else a
                delta = (eA + eB) / abs(slope) + 4.0 * (_spacing(abs(cross)) + _spacing(abs(a)))
                if not np.isfinite(delta):
                    delta = np.inf
                xl, xh = _clip(cross - delta, a, z), _clip(cross + delta, a, z)
                m = np.inf
                for q in range(k):
                    m = _pmin(m, _pmax(_value(C[q, c], lam[q, c], wr[q, c], xl, b),
                                       _value(C[q, c], lam[q, c], wr[q, c], xh, b)))
                near = _pmax(near, m)
        v = _pmax(ends, near) + b * _ALLOW
        out[c] = np.inf if v != v else v


def _cell_bounds(beta, sL, sR, lines):
    """Upper bounds on max_{s in [sL, sR]} psi(s) - beta H2(s) from a few lines above psi (the two vertex lines
    and, where a cell has one, an extra line): the lower envelope of the lines minus beta H2 is convex between two
    consecutive breakpoints, so its maximum is at the cell's ends or at a crossing of two lines.  The ends are
    evaluated where they are; a computed crossing x is within delta = (e_A + e_B) / |lambda_A - lambda_B| + 4 ulp of
    the true one (e the lines' rounding at sL), so there each line minus beta H2 (convex) is bounded by its larger
    value at x -+ delta, and the smallest of these over the lines is the bound (steep lines move by |lambda| ulp).

    ``lines``: (C, lambda, w_ref), each an array (k, n_cells) for k lines per cell; one compiled pass over the
    cells."""
    sL, sR = np.asarray(sL, dtype=np.float64), np.asarray(sR, dtype=np.float64)
    C, lam, wr = (np.ascontiguousarray(v, dtype=np.float64) for v in lines)
    beta = np.ascontiguousarray(np.broadcast_to(np.asarray(beta, dtype=np.float64), sL.shape))
    out = np.empty(sL.size)
    _run(lambda _, lo, hi: _lines_kernel(lo, hi, beta, sL, sR, C, lam, wr, out), sL.size)
    return out


@numba.njit(inline="always", error_model="numpy")
def _quad_max1(a0, a1, a2, lo, hi):
    """max of a0 + a1 x + a2 x^2 over x in [lo, hi]"""
    r = -a1 / (2.0 * a2)
    x = _clip(r, lo, hi)
    inner = a0 + x * (a1 + a2 * x) if (a2 < 0.0 and np.isfinite(x)) else -np.inf
    return _pmax(_pmax(a0 + lo * (a1 + a2 * lo), a0 + hi * (a1 + a2 * hi)), inner)


@_jit
def _curved_kernel(lo, hi, beta, sL, sR, CL, lL, wL, vL, dL, CR, lR, wR, vR, dR, out):
    for c in range(lo, hi):
        b, a, z = beta[c], sL[c], sR[c]
        h, delta = z - a, lL[c] - lR[c]
        fLL, eLL = _line_at(CL[c], lL[c], wL[c], a)
        fRL, eRL = _line_at(CR[c], lR[c], wR[c], a)
        fLR, eLR = _line_at(CL[c], lL[c], wL[c], z)
        fRR, eRR = _line_at(CR[c], lR[c], wR[c], z)
        DL, DR = fRL - fLL, fLR - fRR  # central values: where the parabolas cross (any split point is valid)
        slack = (dL[c] + dR[c]) * (1.0 + delta)
        DLu = _pmax(DL + eRL + eLL + slack, 0.0)
        DRu = _pmax(DR + eLR + eRR + slack, 0.0)
        tot = DLu + DRu
        gap = DLu * DRu / tot if tot > 0.0 else 0.0
        V = _pmax(vL[c] + dL[c], vR[c] + dR[c]) + 0.25 * h * h
        V = _pmax(V * np.exp(gap) * (1.0 + 1e-9), h / delta)  # the multiplier reaching s stays in the cell
        den = DL + DR - h * h / V
        tau = _clip((DL - 0.5 * h * h / V) / den, 0.0, 1.0) if den > 0.0 else 0.5
        B = 1.0 / _pmin(a * (1.0 - a), z * (1.0 - z))
        a2 = 0.5 * (b * B - 1.0 / V)
        gL, gR = np.log1p(-a) - np.log(a), np.log1p(-z) - np.log(z)  # H2'
        left = _quad_max1(fLL - b * _h2_1(a), lL[c] - b * gL, a2, 0.0, tau * h)
        right = _quad_max1(fRR - b * _h2_1(z), lR[c] - b * gR, a2, -(1.0 - tau) * h, 0.0)
        allow = ((_pmax(eLL, eRR) + _ALLOW * (abs(lL[c]) + abs(lR[c]) + b * (abs(gL) + abs(gR)) + 1.0)) * h
                 + _ALLOW * abs(a2) * h * h + (dL[c] + dR[c]) * delta + b * _ALLOW)
        v = _pmax(left, right) + allow
        ok = np.isfinite(v) and np.isfinite(vL[c]) and np.isfinite(vR[c]) and delta > 0.0 and h > 0.0
        out[c] = v if ok else np.inf


def _curved_bounds(beta, sL, sR, left, right):
    """Upper bounds on max_{s in [sL, sR]} psi(s) - beta H2(s) from the curvature of psi between a cell's two
    vertices (``left`` = (C, lambda, w_ref, var, err) of lambda_L at s_L, ``right`` of lambda_R < lambda_L at s_R).

    K(lambda) = ln sum_x exp(-a_x - lambda w_x) is convex, K' = -s, K'' = Var_lambda(w).  On [lambda_R, lambda_L],
    ln E_lambda[(w - c)^2] = M_c - K is at most the chord of the convex M_c minus the larger of K's two end tangents:

        K'' <= V = max(E_L[(w - c)^2], E_R[(w - c)^2]) exp(D_L D_R / (D_L + D_R)),

    c the cell's midpoint, D_L = F(lambda_R, s_L) - F(lambda_L, s_L) >= 0 and D_R = F(lambda_L, s_R) - F(lambda_R,
    s_R) (K's Bregman gaps).  Then K <= its end tangent + V (lambda - end)^2 / 2, so psi(s) = min_lambda K + lambda s
    is at most F(lambda_L, s) - (s - s_L)^2 / (2 V) and F(lambda_R, s) - (s_R - s)^2 / (2 V).  With beta H2 at
    least its tangent at the same end minus beta B (s - end)^2 / 2, B = max 1 / (s (1 - s)) over the cell, each side
    of the parabolas' crossing is a quadratic with a closed-form maximum.  The slack is third order in the cell's
    width (the lines': second order), which is what the flat stretches of g need.  Each vertex's ``err`` (rows left
    out of its sum, the rounding of its s) moves K, s and the moments by at most err (w in [0, 1]); with lambda up
    to 1e9 one ulp of s moves a line by 1e-7 nats, so it enters the Bregman gaps and the parabolas' allowance
    (u err with u <= min(h / V, delta)).  Ends that are not tangent points (var = inf) give inf.  One compiled
    pass over the cells."""
    sL, sR = np.asarray(sL, dtype=np.float64), np.asarray(sR, dtype=np.float64)
    beta = np.ascontiguousarray(np.broadcast_to(np.asarray(beta, dtype=np.float64), sL.shape))
    L = [np.ascontiguousarray(np.broadcast_to(np.asarray(v, dtype=np.float64), sL.shape)) for v in (*left, *right)]
    out = np.empty(sL.size)
    _run(lambda _, lo, hi: _curved_kernel(lo, hi, beta, sL, sR, *L, out), sL.size)
    return out


def line_bound(a: np.ndarray, w: np.ndarray, beta: float, lam0: np.ndarray, target: float,
               max_rounds: int = 80, max_vertices: int = 20000):
    """Upper bound on g = max_s [psi(s) - beta H2(s)] (nats) for the plane ``a`` (see the module docstring):
    :func:`line_bounds` for one plane.  Returns (g_upper, best vertex value (an estimate of g from below), best
    lambda, number of cells, converged, the multipliers of the largest cells' ends (a warm start for a nearby
    beta))."""
    lam0 = np.asarray(lam0, dtype=np.float64).ravel()
    g, lo, lb, nc, done, warm = line_bounds(np.asarray(a)[None, :], w, np.array([beta]), lam0,
                                            np.zeros(lam0.size, dtype=np.intp), target, max_rounds, max_vertices)
    return float(g[0]), float(lo[0]), float(lb[0]), int(nc[0]), bool(done[0]), warm[0]


def _match(keys_a: tuple, keys_b: tuple) -> np.ndarray:
    """For each row of the key columns ``keys_a`` the index of an equal row of ``keys_b`` (-1: none)."""
    na = keys_a[0].size
    cols = [np.concatenate([x, y]) for x, y in zip(keys_a, keys_b, strict=True)]
    tag = np.r_[np.zeros(na, dtype=np.int8), np.ones(keys_b[0].size, dtype=np.int8)]
    o = np.lexsort([tag] + cols[::-1])
    i, j = o[:-1], o[1:]
    same = (tag[i] == 0) & (tag[j] == 1)
    for c in cols:
        same &= c[i] == c[j]
    out = np.full(na, -1)
    out[i[same]] = j[same] - na
    return out


def line_bounds(A: np.ndarray, w: np.ndarray, betas: np.ndarray, lam0: np.ndarray, lam0_plane: np.ndarray,
                target: float, max_rounds: int = 80, max_vertices: int = 20000, stop: float = np.inf):
    """:func:`line_bound` for P planes ``A`` (P, n) at ``betas`` (P,) at once: every round bounds the cells of all
    planes and adds the vertices of all their bad cells in one pass (see the module docstring).

    ``lam0`` (k,) extra multipliers with ``lam0_plane`` (k,) their planes; each plane also gets :data:`GRID`.  A bad
    cell is split at the image of the chord multiplier; when that image falls on one of the cell's ends (at large
    beta the images jump from one row's p(y=1|x) to the next), its line is kept as the cell's extra line instead,
    which makes the cell's bound the exact minimum over the three multipliers.  A plane whose best vertex value
    exceeds ``stop`` (nats: g is known to be at least that) is refined no further; its bound stays an upper bound,
    not converged.  Returns per plane (arrays (P,)):
    g_upper, best vertex value (an estimate of g from below), best lambda, number of cells, converged, and a list
    of the multipliers of each plane's largest cells' ends (a warm start for a nearby beta).
    """
    A = np.atleast_2d(np.asarray(A, dtype=np.float64))
    P = A.shape[0]
    betas = np.broadcast_to(np.asarray(betas, dtype=np.float64), (P,))
    lam0 = np.asarray(lam0, dtype=np.float64).ravel()
    lam = np.concatenate([np.tile(GRID, P), lam0, np.zeros(P)])
    lp = np.concatenate([np.repeat(np.arange(P), GRID.size), np.asarray(lam0_plane, dtype=np.intp), np.arange(P)])
    fin = np.isfinite(lam)
    lam, lp = lam[fin], lp[fin]
    o = np.lexsort((lam, lp))
    lam, lp = lam[o], lp[o]
    keep = np.r_[True, (np.diff(lam) != 0) | (np.diff(lp) != 0)]
    lam, lp = lam[keep], lp[keep]
    blk = blocks(A, w)
    C, wr, s, var, err = vertices(A, w, lam, blk, lp)
    lo_w, hi_w = float(w.min()), float(w.max())
    if hi_w == lo_w:
        at0 = lam == 0.0
        val = C[at0] - betas * _h2(np.array([lo_w]))[0]
        up = val + _ALLOW * (np.abs(val) + betas + 1)
        return up, val, np.zeros(P), np.ones(P, dtype=np.int64), np.ones(P, dtype=bool), [np.zeros(0)] * P

    def assemble(V):
        """vertices (plane, s, lambda, C, w_ref, var, err) sorted by plane and s, one per (plane, s) (the largest
        lambda)"""
        Vp, Vs, Vl = V[0], V[1], V[2]
        order = np.lexsort((-Vl, Vs, Vp))
        V = tuple(v[order] for v in V)
        keep = np.r_[True, (np.diff(V[1]) > 0) | (np.diff(V[0]) != 0)]
        return tuple(v[keep] for v in V)

    def ends(V):
        """per plane its vertices between the two end points of the segment, each end with the line of its nearest
        vertex (the steepest lines: lambda -> +inf at min w, -inf at max w; not tangent there: var = inf)"""
        Vp = V[0]
        cnt = np.bincount(Vp, minlength=P)
        first = np.cumsum(cnt) - cnt
        at = np.arange(Vp.size) + 2 * Vp + 1
        lo_at, hi_at = first + 2 * np.arange(P), first + cnt + 2 * np.arange(P) + 1
        out = []
        for k, v in enumerate(V):
            x = np.empty(Vp.size + 2 * P, dtype=v.dtype)
            x[at] = v
            x[lo_at] = np.arange(P) if k == 0 else lo_w if k == 1 else np.inf if k == 5 else v[first]
            x[hi_at] = np.arange(P) if k == 0 else hi_w if k == 1 else np.inf if k == 5 else v[first + cnt - 1]
            out.append(x)
        return tuple(out)

    V = assemble((lp, np.clip(s, lo_w, hi_w), lam, C, wr, var, err))
    vals = _line(V[3], V[2], V[4], V[1])[0] - betas[V[0]] * _h2(V[1])  # F(lambda, s(lambda)) = psi(s) (rounding)
    best = _first_by(V[0], vals, P)
    lower, lam_best = vals[best].copy(), V[2][best].copy()
    # extra lines, rows (plane, sL, sR, C, lambda, w_ref, -1 | 1: its image on the cell's left | right end) of the
    # cells they belong to
    extra = np.empty((0, 7))
    rounds = 0
    while True:
        Pp, Ps, Pl, PC, Pw, Pv, Pd = ends(V)
        ci = np.flatnonzero(Pp[:-1] == Pp[1:])  # cell j spans points j, j + 1 of one plane
        cp, sL, sR = Pp[ci], Ps[ci], Ps[ci + 1]
        k = _match((cp.astype(np.float64), sL, sR), (extra[:, 0], extra[:, 1], extra[:, 2]))
        has = k >= 0
        ex = np.full((ci.size, 4), np.nan)
        ex[has] = extra[k[has], 3:]
        # a cell without an extra line repeats its right line: the envelope of the three is that of the two
        third = (np.where(has, ex[:, 0], PC[ci + 1]), np.where(has, ex[:, 1], Pl[ci + 1]),
                 np.where(has, ex[:, 2], Pw[ci + 1]))
        U = _cell_bounds(betas[cp], sL, sR, (np.stack([PC[ci], PC[ci + 1], third[0]]),
                                              np.stack([Pl[ci], Pl[ci + 1], third[1]]),
                                              np.stack([Pw[ci], Pw[ci + 1], third[2]])))
        U = np.minimum(U, _curved_bounds(betas[cp], sL, sR, (PC[ci], Pl[ci], Pw[ci], Pv[ci], Pd[ci]),
                                         (PC[ci + 1], Pl[ci + 1], Pw[ci + 1], Pv[ci + 1], Pd[ci + 1])))
        # a cell is final below its plane's best vertex, the target, or twice beta _ALLOW: every cell bound carries
        # beta _ALLOW of H2's rounding, which no refinement removes (at beta ~1e6 it exceeds the target, and the
        # cells were split until the rounds ran out: 63 rounds a certificate on a weak 6 x 2 table)
        thr = np.maximum(np.maximum(target, lower), 2.0 * betas * _ALLOW) + 0.25 * target
        room = (np.bincount(V[0], minlength=P) <= max_vertices) & (lower <= stop)
        bad = np.flatnonzero((U > thr[cp]) & (sR > sL) & room[cp])
        if bad.size == 0 or rounds >= max_rounds:
            break
        rounds += 1
        bL, bR, bp = sL[bad], sR[bad], cp[bad]
        bb = betas[bp]
        chord = bb * (_h2(bR) - _h2(bL)) / (bR - bL)
        # a cell with an extra line has had its chord multiplier (or a bisection) land on one of its ends: bisect
        # (in asinh: the multipliers run to 6e38) between that multiplier and the other end's, towards the cell's
        # inside.  Bisecting between the two ends' multipliers instead cycled at beta >= 1.5e5: the midpoint of 10
        # and 6e38 also landed on the end, its steep line replaced the chord's, the next chord replaced it, and the
        # cell never converged (a 2-row table certified at 0.18 bits)
        stuck = has[bad]
        inner = np.where(ex[bad, 3] < 0, Pl[ci[bad] + 1], Pl[ci[bad]])
        mid = np.sinh(0.5 * (np.arcsinh(ex[bad, 1]) + np.arcsinh(inner)))
        new_l = np.where(stuck, mid, chord)
        # a multiplier the cell already has gives nothing new (one of another cell's vertices is evaluated again,
        # lands outside this cell and becomes its extra line: the next round bisects)
        ok = np.isfinite(new_l) & (new_l != Pl[ci[bad]]) & (new_l != Pl[ci[bad] + 1]) & (new_l != ex[bad, 1])
        if not ok.any():
            break
        bad, new_l, bL, bR, bp, bb = bad[ok], new_l[ok], bL[ok], bR[ok], bp[ok], bb[ok]
        nC, nw, ns, nvar, nd = vertices(A, w, new_l, blk, bp)
        ns = np.clip(ns, lo_w, hi_w)
        nv = _line(nC, new_l, nw, ns)[0] - bb * _h2(ns)
        j = _first_by(bp, nv, P)
        up = (j >= 0) & (nv[np.maximum(j, 0)] > lower)
        lower[up], lam_best[up] = nv[j[up]], new_l[j[up]]
        inside = (ns > bL) & (ns < bR)
        out = ~inside
        # new extra lines replace those of the same cells; the others keep theirs (lines of cells split this round
        # match no cell again)
        kept = np.zeros(ci.size, dtype=bool)
        kept[has] = True
        kept[bad[out]] = False
        rows = np.column_stack([bp[out], bL[out], bR[out], nC[out], new_l[out], nw[out],
                                np.where(ns[out] <= bL[out], -1.0, 1.0)])  # the end its image landed on
        extra = np.concatenate([np.column_stack([cp[kept], sL[kept], sR[kept], ex[kept]]), rows])
        V = assemble(tuple(np.concatenate([v, x[inside]])
                           for v, x in zip(V, (bp, ns, new_l, nC, nw, nvar, nd), strict=True)))
    n_cells = np.bincount(cp, minlength=P)
    first = np.cumsum(n_cells) - n_cells
    U_max = np.maximum.reduceat(U, first)
    g_up = np.maximum(U_max, lower)
    converged = np.bincount(cp, weights=U > thr[cp], minlength=P) == 0  # thr: of the last round's lower
    warm = []
    for q in range(P):
        Uq = U[first[q]:first[q] + n_cells[q]]
        near = ci[first[q] + np.argsort(-Uq)[:32]]
        wq = np.concatenate([Pl[near], Pl[near + 1]])
        warm.append(np.unique(wq[np.isfinite(wq)]))
    return g_up, lower, lam_best, n_cells, converged, warm


def certify_line(prob, beta: float, solution, target: float = 2e-8, warm: np.ndarray | None = None,
                 stop: float = np.inf) -> Certificate:
    """The :class:`~ibtheory.ib._certify_1d.Certificate` of a |Y| = 2 ``solution`` (anything with p_t, decoder,
    I_XT and I_TY in bits) by :func:`line_bound`: the tangent plane and the consistency term as in
    ``certify_state``; ``warm`` multipliers divided by beta (a nearby beta's ``Certificate.lambdas``); refinement
    ends once a vertex shows g above ``stop`` nats (a point to repair: q* is then that vertex's Gibbs q, a seed
    for the repair rather than the maximiser, and the bound is not converged)."""
    return certify_lines(prob, [beta], [solution], warm, target, stop)[0]


def certify_lines(prob, betas, solutions, warm: np.ndarray | None = None, target: float = 2e-8,
                  stop: float = np.inf) -> list[Certificate]:
    """:func:`certify_line` for many solutions (one per beta of ``betas``) at once by :func:`line_bounds`; ``warm``
    multipliers divided by beta, shared by all (scaled by each beta); ``stop`` as in :func:`certify_line`."""
    planes = [_plane(prob, float(b), sol) for b, sol in zip(betas, solutions, strict=True)]
    betas = np.asarray(betas, dtype=np.float64)
    A = np.stack([pl[0] for pl in planes])
    lam0 = [pl[2] for pl in planes]
    if warm is not None:
        lam0 = [np.concatenate([l0, b * np.asarray(warm).ravel()]) for l0, b in zip(lam0, betas, strict=True)]
    plane = np.repeat(np.arange(len(planes)), [l0.size for l0 in lam0])
    g_up, _, lam_best, n_cells, done, keep = line_bounds(A, prob.W[:, 1], betas, np.concatenate(lam0), plane,
                                                        target, stop=stop)
    lower, q = _gibbs_values(A, prob.W[:, 1:], prob.W, betas, lam_best[:, None])
    return [Certificate(max(pl[1] + g, 0.0) / LN2, float(g), float(lo), pl[1], qq, int(nc), bool(dn), kp[:, None] / b)
            for pl, g, lo, qq, nc, dn, kp, b in zip(planes, g_up, lower, q, n_cells, done, keep, betas, strict=True)]
