"""Newton's method on the IB's variational objective for |Y| = 2 (private; the fast local solver at scale).

Minimising the IB Lagrangian over the encoder for fixed cluster weights r and decoders d (d_t = p(y=1|t)) leaves

    F(rho, eta) = -sum_x p(x) ln Z_x,    Z_x = sum_t r_t exp(-beta D_xt),    D_xt = KL[w_x || d_t]   (nats),

with r = softmax(rho), d = sigmoid(eta), w_x = p(y=1|x); the IB map is the EM iteration for F (a mixture fit), which
crawls near bifurcations.  Newton's method converges quadratically there.  With the posterior pi_xt = r_t
exp(-beta D_xt) / Z_x, m_t = sum_x p(x) pi_xt and u_xt = rho_t - beta D_xt (du/drho_t = 1, du/deta_t =
beta (w_x - d_t), d2u/deta_t^2 = -beta d_t (1 - d_t)):

    dF/drho_t = r_t - m_t,    dF/deta_t = beta sum_x p(x) pi_xt (d_t - w_x),
    H = -sum_x p(x) [sum_t pi_xt (grad u_t grad u_t^T + hess u_t) - g_x g_x^T] + diag(r) - r r^T  (rho block),

g_x = sum_t pi_xt grad u_t: one (2K x n) (n x 2K) product per step, sparse at large beta (each x sees the few
clusters next to it).  Steps are saddle-free Newton
(Jacobi-scaled; a Cholesky solve when positive definite, else eigenvalues replaced by their absolute values,
floored) with backtracking on F, so a negative curvature direction,
the instability that splits a cluster, is followed downhill instead of attracting the iteration.

References
----------
1. Y. N. Dauphin et al., "Identifying and attacking the saddle point problem in high-dimensional non-convex
   optimization", NeurIPS 2014 (saddle-free Newton).
"""

from __future__ import annotations

import numpy as np
from scipy.linalg import cho_factor, cho_solve
from scipy.sparse import csr_matrix

from . import _iterate as it
from ._problem import Reduced

__all__ = ["newton"]


def _parts(w, p, neg_h, beta, rho, eta):
    r = np.exp(rho - it.lse(rho, axis=0))
    log_d1 = -np.logaddexp(0.0, -eta)
    log_d0 = -np.logaddexp(0.0, eta)
    D = neg_h[:, None] - w[:, None] * log_d1[None, :] - (1 - w)[:, None] * log_d0[None, :]
    u = np.log(np.maximum(r, 1e-300))[None, :] - beta * np.maximum(D, 0.0)
    lnZ = it.lse(u, axis=1)
    F = -float(p @ lnZ)
    return r, np.exp(log_d1), u, lnZ, F


def _outer_sum(A: np.ndarray, B: np.ndarray, p: np.ndarray) -> np.ndarray:
    """sum_x p(x) g_x g_x^T for g_x = [A[x], B[x]] (2K x 2K).  At large beta each x sees only the few clusters
    next to its p(y|x): entries of pi below 1e-20 are dropped and the product is sparse (O(n) instead of
    O(n K^2)); their share of the sum is below 1e-20 of each term's."""
    n, K = A.shape
    if n * K < 200_000:
        G = np.concatenate([A, B], axis=1)
        return (G * p[:, None]).T @ G
    rows, cols = np.nonzero(A > 1e-20)
    G = csr_matrix((np.concatenate([A[rows, cols], B[rows, cols]]),
                    (np.concatenate([rows, rows]), np.concatenate([cols, cols + K]))), shape=(n, 2 * K))
    return (G.T @ G.multiply(p[:, None]).tocsr()).toarray()


def newton(prob: Reduced, beta: float, log_pt: np.ndarray, log_dec: np.ndarray, max_steps: int = 60,
           gtol: float = 1e-13) -> tuple[np.ndarray, np.ndarray, int, float]:
    """Minimise F from (ln p(t), ln p(y|t)); returns (ln p(t), ln p(y|t), objective evaluations, max |gradient|)."""
    w = prob.W[:, 1]
    p = prob.p_s
    neg_h = prob.neg_entropy_rows
    rho = log_pt - it.lse(log_pt, axis=0)
    eta = log_dec[:, 1] - log_dec[:, 0]
    K = rho.size
    evals = 0
    gmax = np.inf
    parts = None  # the accepted trial point's parts, reused by the next step
    with np.errstate(divide="ignore", invalid="ignore", over="ignore", under="ignore"):
        for _ in range(max_steps):
            if parts is None:
                parts = _parts(w, p, neg_h, beta, rho, eta)
                evals += 1
            r, d, u, lnZ, F = parts
            pi = it.exp_nonpositive(u - lnZ[:, None])  # (n, K)
            ppi = p[:, None] * pi
            m = ppi.sum(axis=0)
            dw = w[:, None] - d[None, :]  # w_x - d_t
            g_rho = r - m
            g_eta = -beta * (ppi * dw).sum(axis=0)
            grad = np.concatenate([g_rho, g_eta])
            gmax = float(np.abs(grad).max())
            if gmax < gtol or not np.isfinite(gmax):
                break
            H = _outer_sum(pi, beta * pi * dw, p)
            a = m
            b = beta * (ppi * dw).sum(axis=0)
            c = beta**2 * (ppi * dw**2).sum(axis=0) - beta * d * (1 - d) * m
            idx = np.arange(K)
            H[idx, idx] -= a
            H[idx, K + idx] -= b
            H[K + idx, idx] -= b
            H[K + idx, K + idx] -= c
            H[:K, :K] += np.diag(r) - np.outer(r, r)
            # Jacobi scaling first (a cluster of weight 1e-5 has curvatures 1e-5 of the others'), then
            # eigenvalues by absolute value, floored
            sc = 1.0 / np.sqrt(np.maximum(np.abs(np.diag(H)), 1e-300))
            Hs = sc[:, None] * H * sc[None, :]
            try:  # positive definite (the usual case near a minimum): a Cholesky solve, ~10x cheaper than eigh
                Hs[np.diag_indices_from(Hs)] += 1e-9
                step = -sc * cho_solve(cho_factor(Hs), sc * grad)
            except np.linalg.LinAlgError:
                vals, vecs = np.linalg.eigh(Hs)
                floor = 1e-9 * max(1.0, float(np.abs(vals).max()))
                step = -sc * (vecs @ ((vecs.T @ (sc * grad)) / np.maximum(np.abs(vals), floor)))
            if -float(grad @ step) < 1e-15 * max(1.0, abs(F)):  # predicted decrease below rounding: converged
                break
            t = 1.0
            for _ in range(20):
                rho2, eta2 = rho + t * step[:K], eta + t * step[K:]
                parts = _parts(w, p, neg_h, beta, rho2, eta2)
                F2 = parts[4]
                evals += 1
                if np.isfinite(F2) and F2 <= F + 1e-4 * t * float(grad @ step):
                    break
                t *= 0.5
            else:
                break
            if F2 > F:  # no decrease even for a tiny step: rounding level
                break
            rho, eta = rho2, eta2  # _parts normalises r itself: parts stay those of (rho, eta)
            rho = rho - it.lse(rho, axis=0)
    log_dec_new = np.stack([-np.logaddexp(0.0, eta), -np.logaddexp(0.0, -eta)], axis=1)
    return rho, log_dec_new, evals, gmax
