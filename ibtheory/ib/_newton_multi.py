"""Newton's method on the IB's variational objective for |Y| > 2 (private; the upward sweep's local solver).

As for |Y| = 2 (:mod:`ibtheory.ib._newton`), minimising the Lagrangian over the encoder for fixed cluster weights r
and decoders d_t = p(.|t) leaves

    F = -sum_s p(s) ln Z_s,   Z_s = sum_t r_t exp(-beta KL[W_s || d_t])   (nats),

with r = softmax(rho) and d_t = softmax(eta_t), eta_t fixed at 0 on one reference label per cluster (its most probable
at the start) and free on the other |Y| - 1: K |Y| coordinates, cluster t's at t |Y| (rho_t first).  With the
posterior pi_st, u_st = ln r_t - beta KL[W_s || d_t] and g_st = du_st / d(rho_t, eta_t) = (1, beta (W_s - d_t) on the
free labels), m_t = sum_s p(s) pi_st and n_ty = sum_s p(s) pi_st W[s, y]:

    dF/drho_t = r_t - m_t,    dF/deta_ty = -beta (n_ty - m_t d_ty),
    H = sum_s p(s) [G_s G_s^T - sum_t pi_st g_st g_st^T] + beta m_t (diag d_t - d_t d_t^T) (free labels)
        + diag(r) - r r^T (rho block),    G_s = sum_t pi_st g_st.

The sums run over a support (:func:`ibtheory.ib._iterate.support`: per class the clusters within ``WINDOW_CUT``
nats of its largest weight), rebuilt at the end if the solution's support reaches outside it; the map's sums come
from :func:`ibtheory.ib._kernels.pair_step` and the Hessian's pair part from
:func:`ibtheory.ib._kernels.pair_hessian`.  The step is the same saddle-free Newton step with backtracking on F
(:func:`ibtheory.ib._newton.direction`, :func:`ibtheory.ib._newton.line_search`), so an unstable direction (a
cluster about to split) is followed downhill.  The dense K |Y| Hessian limits it to ``NEWTON_DIM`` coordinates; the
caller iterates the map above that.  Repairs (a cluster seeded at a certificate's maximiser, a polish before a
certificate) take it up to ``REPAIR_DIM`` coordinates whatever the maps cost: there the map stalls.
"""

from __future__ import annotations

import numpy as np
from scipy.linalg.blas import dsyrk

from . import _iterate as it
from ._kernels import pair_hessian, pair_step
from ._newton import WINDOW_CUT, direction, line_search
from ._problem import Reduced

__all__ = ["applies", "newton_multi", "NEWTON_DIM"]

#: most coordinates K |Y| of the dense Hessian (a 1500 x 1500 Cholesky factorisation: ~30 ms)
NEWTON_DIM = 1500
#: Newton runs only while (K |Y|)^3 <= this x |S| K: a factorisation (and, at a saddle, a partial eigendecomposition,
#: ~10x that) then costs a few map evaluations, which converge slowly; on small tables with many clusters the
#: maps are cheaper (300 x 6, 60 betas: 8.8 s by the map alone, 33.6 s with Newton on every point)
NEWTON_WORK = 600
#: mean share of the clusters a row sees above which the Hessian's pair part is summed by BLAS on dense rows (the
#: compiled per-row sums cost k^2 |Y|^2 a row, BLAS (K |Y|)^2 at ~20x the speed)
DENSE_ROWS = 0.25
#: most coordinates in a repair (``repair=True``): there the alternative is thousands of map evaluations that
#: stall (a cluster seeded at a certificate's maximiser with weight ~1e-5 is pruned or merged before the map settles
#: it), so Newton is taken without the ``NEWTON_WORK`` rule up to a ~0.5 s factorisation
REPAIR_DIM = 3000
#: cells of one dense block of rows of the Hessian's BLAS sum (32 MiB)
_BLOCK_CELLS = 2**22


def _decoders(eta: np.ndarray) -> np.ndarray:
    """ln p(y|t) = eta_t - ln sum_y exp(eta_ty)."""
    return eta - it.lse(eta, axis=1)[:, None]


def _parts(prob: Reduced, beta: float, rho: np.ndarray, eta: np.ndarray, sup: it.Support):
    """(r, ln d, ln pi on the pairs, m, n, F) at (rho, eta) on the support ``sup``."""
    log_r = rho - it.lse(rho, axis=0)
    log_d = _decoders(eta)
    L, lnZ, m, num = pair_step(prob.W, prob.neg_entropy_rows, prob.p_s, beta, log_r, log_d, sup.indptr, sup.cols)
    return np.exp(log_r), log_d, L, m, num, -float(prob.p_s @ lnZ)


def _gradient(parts, beta: float, lab: np.ndarray) -> np.ndarray:
    """dF/d(rho_t, eta_t on lab[t]) at ``parts`` (:func:`_parts`), cluster t's coordinates at t |Y|."""
    r, log_d, _, m, num, _ = parts
    K, n_y = log_d.shape
    d_f = np.take_along_axis(np.exp(log_d), lab, axis=1)
    grad = np.empty((K, n_y))
    grad[:, 0] = r - m
    grad[:, 1:] = -beta * (np.take_along_axis(num, lab, axis=1) - m[:, None] * d_f)
    return grad.ravel()


def _hessian(prob: Reduced, beta: float, parts, lab: np.ndarray, sup: it.Support) -> np.ndarray:
    """d^2F in the coordinates of :func:`_gradient` (module docstring).  The pair part comes from the compiled
    per-row sums (:func:`ibtheory.ib._kernels.pair_hessian`, O(k^2 |Y|^2) a row with k clusters) when rows see
    fewer than ``DENSE_ROWS`` of the clusters, else from BLAS products on dense rows (:func:`_dense_pair_part`)."""
    r, log_d, L, m, num, _ = parts
    K, n_y = log_d.shape
    d_f = np.take_along_axis(np.exp(log_d), lab, axis=1)
    if sup.nnz > DENSE_ROWS * K * prob.n_s:
        H = _dense_pair_part(prob, beta, log_d, lab, sup, L, m, num)
    else:
        H = pair_hessian(prob.W, prob.p_s, beta, log_d, lab, sup.indptr, sup.cols, L)
    H4 = H.reshape(K, n_y, K, n_y)
    t = np.arange(K)
    H4[t, 1:, t, 1:] += beta * m[:, None, None] * (d_f[:, :, None] * np.eye(n_y - 1)
                                                   - d_f[:, :, None] * d_f[:, None, :])
    H4[:, 0, :, 0] += np.diag(r) - np.outer(r, r)
    return H


def _dense_pair_part(prob: Reduced, beta: float, log_d: np.ndarray, lab: np.ndarray, sup: it.Support,
                     L: np.ndarray, m: np.ndarray, num: np.ndarray) -> np.ndarray:
    """The pair part of :func:`ibtheory.ib._kernels.pair_hessian` (every pair of ``sup``) from dense blocks of rows:
    sqrt p(s) G_s = sqrt p(s) (pi_st g_st)_t as a row of a (rows, K |Y|) matrix, sum_s p(s) G_s G_s^T by one
    symmetric rank-k update per block (``_BLOCK_CELLS`` cells), minus each cluster's own sum_s p(s) pi_st g_st
    g_st^T, which comes from its moments m_t = sum_s p(s) pi_st, n_ty = sum_s p(s) pi_st W[s, y] (the map's, on the
    same pairs) and S_tyy' = sum_s p(s) pi_st W[s, y] W[s, y']."""
    K, n_y = log_d.shape
    D = K * n_y
    d = np.exp(log_d)
    d_f = np.take_along_axis(d, lab, axis=1)
    pi = np.exp(L)
    H = np.zeros((D, D), order="F")
    S = np.zeros((K, n_y * n_y))
    WW = (prob.W[:, :, None] * prob.W[:, None, :]).reshape(prob.n_s, n_y * n_y)
    step = max(1, _BLOCK_CELLS // D)
    for a in range(0, prob.n_s, step):
        b = min(a + step, prob.n_s)
        lo, hi = sup.indptr[a], sup.indptr[b]
        P = np.zeros((b - a, K))
        P[sup.rows[lo:hi] - a, sup.cols[lo:hi]] = pi[lo:hi]
        S += (prob.p_s[a:b, None] * P).T @ WW[a:b]
        G = np.empty((b - a, K, n_y))
        G[:, :, 0] = np.sqrt(prob.p_s[a:b])[:, None] * P
        W_f = np.take(prob.W[a:b], lab.ravel(), axis=1).reshape(b - a, K, n_y - 1)  # W[s, lab[t, j]]
        G[:, :, 1:] = beta * G[:, :, :1] * (W_f - d_f[None])
        # H's upper triangle += G^T G, G^T passed as the (D, rows) Fortran array it is (a C-ordered G would be
        # copied: 4x slower at 20,000 x 522)
        dsyrk(1.0, G.reshape(b - a, D).T, beta=1.0, c=H, trans=0, overwrite_c=1)
    S = S.reshape(K, n_y, n_y)
    dd = d[:, :, None] * d[:, None, :]
    C = S - num[:, :, None] * d[:, None, :] - d[:, :, None] * num[:, None, :] + m[:, None, None] * dd  # of W - d
    own = np.empty((K, n_y, n_y))
    own[:, 0, 0] = m
    own[:, 0, 1:] = own[:, 1:, 0] = beta * (np.take_along_axis(num, lab, axis=1) - m[:, None] * d_f)
    own[:, 1:, 1:] = beta**2 * C[np.arange(K)[:, None, None], lab[:, :, None], lab[:, None, :]]
    H = np.triu(H) + np.triu(H, 1).T
    H4 = H.reshape(K, n_y, K, n_y)
    t = np.arange(K)
    H4[t, :, t, :] -= own
    return H


def _steps(prob, beta, rho, eta, free, lab, sup, max_steps, gtol):
    """The saddle-free Newton iteration of :func:`newton_multi` on the support ``sup`` (``free``: (K, |Y|) mask of
    the free labels, ``lab`` their indices)."""
    K, n_y = eta.shape
    evals, gmax, parts, H, s = 0, np.inf, None, None, 0.0
    stepped_fresh = False  # the last step came from a Hessian computed at its start
    for _ in range(max_steps):
        if parts is None:
            parts = _parts(prob, beta, rho, eta, sup)
            evals += 1
        grad = _gradient(parts, beta, lab)
        g_last, gmax = gmax, float(np.abs(grad).max())
        if gmax < gtol or not np.isfinite(gmax):
            break
        # the Hessian (the costly part: O(|S| K^2 |Y|^2) on dense rows) is kept for one more step after a full step
        # of a new one cut the gradient 100-fold (the quadratic model fits: no gain from a new one), else recomputed
        fresh = H is None or not (stepped_fresh and s == 1.0 and gmax <= 0.01 * g_last)
        if fresh:
            H = _hessian(prob, beta, parts, lab, sup)
        found = direction(H, grad, parts[-1])
        if found is None and not fresh:  # converged on an old model: check with a new one
            H, fresh = _hessian(prob, beta, parts, lab, sup), True
            found = direction(H, grad, parts[-1])
        if found is None:
            break
        step, predicted, noise = found
        step = step.reshape(K, n_y)
        d_rho, d_eta = step[:, 0], np.zeros((K, n_y))
        d_eta[free] = step[:, 1:].ravel()  # row-major over (t, lab[t]): lab holds each row's free labels in order

        def trial(t, d_rho=d_rho, d_eta=d_eta, rho=rho, eta=eta):
            return _parts(prob, beta, rho + t * d_rho, eta + t * d_eta, sup)

        s, trial_parts, n_eval = line_search(trial, parts[-1], predicted, noise)
        evals += n_eval
        if s is None and not fresh:  # an old model's step failed: retry from here with a new one
            H, s, stepped_fresh = None, 0.0, False
            continue
        if s is None:
            break
        parts, stepped_fresh = trial_parts, fresh
        rho, eta = rho + s * d_rho, eta + s * d_eta
        rho = rho - it.lse(rho, axis=0)
    return rho, eta, evals, gmax


def _covers(sup: it.Support, inner: it.Support) -> bool:
    """Whether every pair of ``inner`` is a pair of ``sup`` (both over the same clusters)."""
    a = sup.rows.astype(np.int64) * sup.n_t + sup.cols
    b = inner.rows.astype(np.int64) * inner.n_t + inner.cols
    return bool(np.all(np.isin(b, a, assume_unique=False)))


def applies(prob: Reduced, K: int, repair: bool = False) -> bool:
    """Whether Newton takes K clusters: at least 2, at most ``NEWTON_DIM`` coordinates, cheaper than the maps
    (``NEWTON_WORK``); with ``repair`` (a polish or a seeded cluster, where the maps stall) up to ``REPAIR_DIM``
    coordinates, whatever the maps cost."""
    D = K * prob.n_y
    if repair:
        return 2 <= K and D <= REPAIR_DIM
    return 2 <= K and D <= NEWTON_DIM and float(D) ** 3 <= NEWTON_WORK * prob.n_s * K


def newton_multi(prob: Reduced, beta: float, log_pt: np.ndarray, log_dec: np.ndarray, max_steps: int = 60,
                 gtol: float = 1e-13, repair: bool = False) -> tuple[np.ndarray, np.ndarray, int, float] | None:
    """Minimise F from (ln p(t), ln p(y|t)) (|Y| > 2); returns (ln p(t), ln p(y|t), objective evaluations, max
    |gradient|), or None when Newton does not apply: one cluster (no curvature in its weight: the caller has the
    closed form), more than ``NEWTON_DIM`` coordinates, a cluster without mass
    or with p(y|t) = 0 for some y (the map handles those), or costlier than the map (``NEWTON_WORK``; see
    :func:`applies` for ``repair``)."""
    K, n_y = log_dec.shape
    if not applies(prob, K, repair):
        return None
    if not (np.all(np.isfinite(log_pt)) and np.all(np.isfinite(log_dec))):
        return None
    ref = np.argmax(log_dec, axis=1)
    free = np.arange(n_y)[None, :] != ref[:, None]
    lab = np.nonzero(free)[1].reshape(K, n_y - 1)  # each cluster's free labels, in order
    rho = log_pt - it.lse(log_pt, axis=0)
    eta = log_dec - log_dec[np.arange(K), ref][:, None]
    evals, gmax = 0, np.inf
    with np.errstate(divide="ignore", invalid="ignore", over="ignore", under="ignore"):
        sup = it.support(prob, beta, rho, _decoders(eta), WINDOW_CUT)
        for _ in range(3):  # the support is checked at the end and rebuilt if mass left it
            rho, eta, n, gmax = _steps(prob, beta, rho, eta, free, lab, sup, max_steps, gtol)
            evals += n
            if _covers(sup, it.support(prob, beta, rho, _decoders(eta), WINDOW_CUT - 10.0)):
                break
            sup = it.support(prob, beta, rho, _decoders(eta), WINDOW_CUT)
    return rho, _decoders(eta), evals, gmax
