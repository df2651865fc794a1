"""Compiled loops for the solver's hot paths (private): one pass over the rows instead of numpy's many.

numpy evaluates an expression such as ``u = ln r[idx] - beta max(h - w ln d1[idx] - (1 - w) ln d0[idx], 0)``
followed by a row log-sum-exp as a dozen passes over (n, B) temporaries; at the solver's sizes (|S| in the
thousands, B ~ 10 clusters a row) that costs ~20 ns a cell, mostly memory traffic and per-call overhead.  The kernels
here (numba, compiled once and cached beside this file) do each row in one pass: ~7 ns a cell.

They are serial on purpose: numba's parallel loops need a threading layer, and the one that ships with its wheels
and survives ``fork`` (``workqueue``, which the training engine's forked workers need) cannot be entered from two
Python threads at once and costs ~0.15 ms a launch; at these sizes two threads on it ran no faster than one.
"""

from __future__ import annotations

import numba
import numpy as np

__all__ = ["window_parts", "window_moments", "window_gram", "pair_scores", "pair_step", "block_sums"]

#: below this exponent exp() is subnormal or 0 (and 10-30x slower): flushed to 0, as ``_iterate.exp_nonpositive``
_FLUSH = -700.0


def _window_parts(w, neg_h, beta, log_r, log_d1, log_d0, idx, valid):
    n, B = idx.shape
    pi = np.empty((n, B))
    lnZ = np.empty(n)
    for i in range(n):
        wi, hi = w[i], neg_h[i]
        m = -np.inf
        for j in range(B):
            u = -np.inf
            if valid[i, j]:
                t = idx[i, j]
                a = 0.0 if wi == 0.0 else wi * log_d1[t]  # 0 ln 0 = 0 (a hard row in a hard cluster)
                b = 0.0 if wi == 1.0 else (1.0 - wi) * log_d0[t]
                kl = hi - a - b
                u = log_r[t] - beta * (0.0 if kl < 0.0 else kl)
            pi[i, j] = u
            if u > m:
                m = u
        if not np.isfinite(m):
            m = 0.0
        z = 0.0
        for j in range(B):
            e = pi[i, j] - m
            e = np.exp(e) if e > _FLUSH else 0.0
            pi[i, j] = e
            z += e
        lnZ[i] = np.log(z) + m
        for j in range(B):
            pi[i, j] /= z
    return pi, lnZ


def _window_moments(pi, idx, valid, w, p, d, beta, K):
    n, B = idx.shape
    bv = np.zeros((n, B))
    m = np.zeros(K)
    s1 = np.zeros(K)
    s2 = np.zeros(K)
    for i in range(n):
        for j in range(B):
            if valid[i, j]:
                t = idx[i, j]
                q = pi[i, j]
                dw = w[i] - d[t]
                bv[i, j] = beta * q * dw
                pq = p[i] * q
                m[t] += pq
                s1[t] += pq * dw
                s2[t] += pq * dw * dw
    return bv, m, s1, s2


def _window_gram(A, Bv, p, idx, valid, K, tiny):
    n, B = idx.shape
    H = np.zeros((2 * K, 2 * K))
    for i in range(n):
        for j1 in range(B):
            a1 = A[i, j1]
            if not valid[i, j1] or a1 <= tiny:
                continue
            t1 = idx[i, j1]
            pa1, pb1 = p[i] * a1, p[i] * Bv[i, j1]
            for j2 in range(B):
                a2 = A[i, j2]
                if not valid[i, j2] or a2 <= tiny:
                    continue
                t2 = idx[i, j2]
                b2 = Bv[i, j2]
                H[t1, t2] += pa1 * a2
                H[t1, K + t2] += pa1 * b2
                H[K + t1, K + t2] += pb1 * b2
    for t1 in range(K):
        for t2 in range(K):
            H[K + t2, t1] = H[t1, K + t2]
    return H


def _pair_scores(Wt, neg_h, beta, log_pt, log_dec, cols, rows, use_rows):
    N = cols.size
    n_y = log_dec.shape[1]
    out = np.empty(N)
    for k in range(N):
        r = rows[k] if use_rows else k
        t = cols[k]
        cross = 0.0
        hit = False
        for y in range(n_y):
            ld = log_dec[t, y]
            wy = Wt[y, r]
            if np.isfinite(ld):
                cross += wy * ld
            elif wy > 0.0:  # p(y|t) = 0 (or a dead cluster's nan) where W[s, y] > 0: KL = +inf
                hit = True
        kl = neg_h[r] - cross
        kl = np.inf if hit else (0.0 if kl < 0.0 else kl)
        out[k] = log_pt[t] - beta * kl
    return out


def _pair_step(W, neg_h, p_s, beta, log_pt, log_dec, indptr, cols):
    n_s, n_y = W.shape
    K = log_pt.size
    ld_fin = np.zeros((K, n_y))
    partial = np.zeros(K, dtype=np.bool_)
    for t in range(K):
        for y in range(n_y):
            if np.isfinite(log_dec[t, y]):
                ld_fin[t, y] = log_dec[t, y]
            else:
                partial[t] = True
    L = np.empty(cols.size)
    lnZ = np.empty(n_s)
    p_t = np.zeros(K)
    num = np.zeros((K, n_y))
    E = np.empty(np.max(indptr[1:] - indptr[:-1]))
    for s in range(n_s):
        lo, hi = indptr[s], indptr[s + 1]
        m = -np.inf
        for k in range(lo, hi):
            t = cols[k]
            cross = 0.0
            for y in range(n_y):
                cross += W[s, y] * ld_fin[t, y]
            kl = neg_h[s] - cross
            kl = 0.0 if kl < 0.0 else kl
            if partial[t]:  # p(y|t) = 0 (or not a number) for some y: KL = +inf if W[s, y] > 0 there
                for y in range(n_y):
                    if not np.isfinite(log_dec[t, y]) and W[s, y] > 0.0:
                        kl = np.inf
            u = log_pt[t] - beta * kl
            L[k] = u
            if u > m:
                m = u
        if not np.isfinite(m):
            m = 0.0
        z = 0.0
        for k in range(lo, hi):
            e = L[k] - m
            L[k] = e
            e = np.exp(e) if e > _FLUSH else 0.0
            E[k - lo] = e
            z += e
        lz = np.log(z)
        lnZ[s] = m + lz
        scale = p_s[s] / z
        for k in range(lo, hi):
            L[k] -= lz  # ln p(t|s)
            q = E[k - lo] * scale  # p(t, s)
            t = cols[k]
            p_t[t] += q
            for y in range(n_y):
                num[t, y] += q * W[s, y]
    return L, lnZ, p_t, num


def _neumaier(acc, comp, v):
    t = acc + v
    return t, comp + ((acc - t) + v if abs(acc) >= abs(v) else (v - t) + acc)


def _block_sums(a, w, plane, lam, a0, w0, near, indptr, act_blocks, block):
    m = lam.size
    base = np.empty(m)
    w_ref = np.empty(m)
    w_mid = np.empty(m)
    sums = np.empty((m, 3))
    for i in range(m):
        P, lm, lo, hi = plane[i], lam[i], indptr[i], indptr[i + 1]
        if near[i]:
            c0, cw = a0[i], w0[i]
        else:  # the reference is the row with the largest -a - lambda w (the first on ties, as numpy's argmax)
            best, c0, cw = -np.inf, np.nan, np.nan
            for kk in range(lo, hi):
                for r in range(act_blocks[kk] * block, (act_blocks[kk] + 1) * block):
                    R = -a[P, r] - lm * w[r]
                    if R > best:
                        best, c0, cw = R, a[P, r], w[r]
        mx, a_j, w_j = -np.inf, np.nan, np.nan  # the largest term R_x = c0 - a_x - lambda (w_x - cw), and its row
        for kk in range(lo, hi):
            for r in range(act_blocks[kk] * block, (act_blocks[kk] + 1) * block):
                R = c0 - a[P, r]
                R -= lm * (w[r] - cw)
                if R > mx:
                    mx, a_j, w_j = R, a[P, r], w[r]
        if near[i]:  # the line relative to the largest term's row
            base[i], w_ref[i] = -a_j, w_j
        else:
            base[i], w_ref[i] = -c0 + mx, cw
        w_mid[i] = cw
        z = zc = s1 = s1c = s2 = s2c = 0.0
        for kk in range(lo, hi):
            for r in range(act_blocks[kk] * block, (act_blocks[kk] + 1) * block):
                dw = w[r] - cw
                R = c0 - a[P, r]
                R -= lm * dw
                R = R - mx if R == R else -np.inf  # inf - inf (w = w_ref at lambda = +-inf, padding): no term
                if near[i]:  # clamped at e^-600: every term at least its true value, the sum an upper bound
                    E = np.exp(R if R > -600.0 else -600.0)
                else:
                    E = np.exp(R) if R > _FLUSH else 0.0
                z, zc = _neumaier(z, zc, E)
                E *= dw
                s1, s1c = _neumaier(s1, s1c, E)
                E *= dw
                s2, s2c = _neumaier(s2, s2c, E)
        sums[i, 0], sums[i, 1], sums[i, 2] = z + zc, s1 + s1c, s2 + s2c
    return base, w_ref, w_mid, sums


_window_parts_jit = numba.njit(cache=True, error_model="numpy")(_window_parts)
window_moments = numba.njit(cache=True, error_model="numpy")(_window_moments)
_window_gram_jit = numba.njit(cache=True, error_model="numpy")(_window_gram)
_pair_scores_jit = numba.njit(cache=True, error_model="numpy")(_pair_scores)
_pair_step_jit = numba.njit(cache=True, error_model="numpy")(_pair_step)
_neumaier = numba.njit(inline="always", error_model="numpy")(_neumaier)
_block_sums_jit = numba.njit(cache=True, error_model="numpy")(_block_sums)


def window_parts(w: np.ndarray, p: np.ndarray, neg_h: np.ndarray, beta: float, log_r: np.ndarray,
                 log_d1: np.ndarray, log_d0: np.ndarray, idx: np.ndarray, valid: np.ndarray
                 ) -> tuple[np.ndarray, np.ndarray, float]:
    """|Y| = 2 posteriors on windows of clusters: for row x and its window entries t = idx[x, j] (``valid``),

        u_xt = ln r_t - beta max(KL[w_x || d_t], 0),   KL = -H(w_x) - w_x ln d_t - (1 - w_x) ln (1 - d_t)  (nats),

    pi_xt = exp(u_xt - ln Z_x), ln Z_x = ln sum_t exp(u_xt) over the window; returns (pi (n, B), ln Z (n),
    F = -sum_x p(x) ln Z_x).  ``neg_h`` is -H(w_x) in nats, ``log_d1``/``log_d0`` ln d_t / ln (1 - d_t)."""
    pi, lnZ = _window_parts_jit(w, neg_h, float(beta), log_r, log_d1, log_d0, idx, valid)
    return pi, lnZ, -float(p @ lnZ)  # numpy's pairwise sum: Newton's line search compares F to ~1e-15


def window_gram(A: np.ndarray, Bv: np.ndarray, p: np.ndarray, idx: np.ndarray, valid: np.ndarray, K: int,
                tiny: float = 1e-14) -> np.ndarray:
    """sum_x p(x) g_x g_x^T (2K x 2K) for g_x = [A[x, j] at idx[x, j], Bv[x, j] at K + idx[x, j]] over the valid
    window slots (Newton's Hessian sums: A = pi, Bv = beta pi (w - d)); slots with A <= ``tiny`` are left out
    (pi is a row's posterior, at least 1/B in its largest slot: 1e-14 of that is below the sums' rounding)."""
    return _window_gram_jit(A, Bv, p, idx, valid, int(K), float(tiny))


def pair_scores(Wt: np.ndarray, neg_h: np.ndarray, beta: float, log_pt: np.ndarray, log_dec: np.ndarray,
                cols: np.ndarray, rows: np.ndarray | None = None) -> np.ndarray:
    """ln p(t) - beta max(KL[W_s || p(y|t)], 0) (nats) of pairs (s, t = ``cols``): KL = sum_y W ln W - sum_y W ln
    p(y|t), +inf where p(y|t) = 0 (or is not a number) < W[s, y].  ``Wt`` (n_y, N), ``neg_h`` (N,) hold the classes
    (with ``rows`` the column of each pair's class; without, one column per pair)."""
    use = rows is not None
    return _pair_scores_jit(Wt, neg_h, float(beta), log_pt, log_dec, cols,
                            rows if use else np.empty(0, dtype=np.intp), use)


def pair_step(W: np.ndarray, neg_h: np.ndarray, p_s: np.ndarray, beta: float, log_pt: np.ndarray,
              log_dec: np.ndarray, indptr: np.ndarray, cols: np.ndarray
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The IB map on the pairs of a support (class s: clusters ``cols[indptr[s]:indptr[s + 1]]``): per pair
    ln p(t|s) = u_st - ln Z_s with u_st = ln p(t) - beta KL[W_s || p(y|t)] and Z_s summed over the class's pairs
    (terms below e^-700 of the largest flushed to 0); returns (ln p(t|s) (nnz,), ln Z (n_s,), p(t) =
    sum_s p(s) p(t|s) (K,), sum_s p(s) p(t|s) W[s, y] (K, n_y))."""
    return _pair_step_jit(W, neg_h, p_s, float(beta), log_pt, log_dec, indptr, cols)


def block_sums(a: np.ndarray, w: np.ndarray, plane: np.ndarray, lam: np.ndarray, a0: np.ndarray, w0: np.ndarray,
               near: np.ndarray, indptr: np.ndarray, act_blocks: np.ndarray, block: int
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The |Y| = 2 certificate's vertex sums over the active blocks of rows (rows ``act_blocks[indptr[i]:indptr[i +
    1]]`` x ``block`` of ``a[plane[i]]``, ``w``) of each multiplier lambda_i.  With ``near[i]`` the terms are
    R_x = a0 - a_x - lambda (w_x - w0) (``a0``, ``w0`` a reference row), shifted by their largest and clamped at
    e^-600 (so the sum stays an upper bound); else R_x = -(a_x - a_r) - lambda (w_x - w_r) relative to the largest
    row r itself, below e^-700 flushed to 0.  Returns (C0, w_ref, w_c, S): C0 + ln z is the line's value at
    w_ref (the largest term's row), w_c the centre of the moments and S (m, 3) the sums of E, E (w - w_c),
    E (w - w_c)^2, each Neumaier-compensated (error ~2 ulp, below numpy's pairwise sums')."""
    return _block_sums_jit(a, w, plane, lam, a0, w0, near, indptr, act_blocks, int(block))
