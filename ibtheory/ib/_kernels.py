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

__all__ = ["window_parts", "window_moments", "window_gram", "pair_scores", "pair_step"]

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


_window_parts_jit = numba.njit(cache=True, error_model="numpy")(_window_parts)
window_moments = numba.njit(cache=True, error_model="numpy")(_window_moments)
_window_gram_jit = numba.njit(cache=True, error_model="numpy")(_window_gram)
_pair_scores_jit = numba.njit(cache=True, error_model="numpy")(_pair_scores)
_pair_step_jit = numba.njit(cache=True, error_model="numpy")(_pair_step)


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
