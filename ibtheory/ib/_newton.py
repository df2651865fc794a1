"""Newton's method on the IB's variational objective for |Y| = 2 (private; the fast local solver at scale).

Minimising the IB Lagrangian over the encoder for fixed cluster weights r and decoders d (d_t = p(y=1|t)) leaves

    F(rho, eta) = -sum_x p(x) ln Z_x,    Z_x = sum_t r_t exp(-beta D_xt),    D_xt = KL[w_x || d_t]   (nats),

with r = softmax(rho), d = sigmoid(eta), w_x = p(y=1|x); the IB map is the EM iteration for F (a mixture fit), which
crawls near bifurcations.  Newton's method converges quadratically there.  With the posterior pi_xt = r_t
exp(-beta D_xt) / Z_x, m_t = sum_x p(x) pi_xt and u_xt = rho_t - beta D_xt (du/drho_t = 1, du/deta_t =
beta (w_x - d_t), d2u/deta_t^2 = -beta d_t (1 - d_t)):

    dF/drho_t = r_t - m_t,    dF/deta_t = beta sum_x p(x) pi_xt (d_t - w_x),
    H = -sum_x p(x) [sum_t pi_xt (grad u_t grad u_t^T + hess u_t) - g_x g_x^T] + diag(r)  (rho block),

g_x = sum_t pi_xt grad u_t.  H is the Hessian of F~ = -sum_x p(x) ln sum_t e^rho_t exp(-beta D_xt) + sum_t e^rho_t
- 1 at sum_t e^rho_t = 1, F with the weights unnormalised and their sum held at 1 by a multiplier: min F~ = min F
(F~(c r) = F(r) - ln c + c - 1), the gradients agree there, and F's own Hessian is H - (r, 0)(r, 0)^T.  Where that
is positive semi-definite (its one null direction rho + c: F does not depend on the weights' scale), H is positive
definite and H^-1 grad is F's Newton step plus a multiple of that direction, which the normalisation of rho
removes.  F~'s H has no dense r r^T term: at large beta each x sees only the few clusters next to it (a window),
so H is banded in the order of d (coordinates rho_t, eta_t interleaved; a band of about twice a window's
clusters) and its factorisation costs O(K u^2) instead of O(K^3).  The posteriors, the per-cluster sums and the
Gram sums are compiled loops over each row's window (:mod:`ibtheory.ib._kernels`).  Steps are saddle-free Newton
(Jacobi-scaled; a Cholesky solve when positive definite, else eigenvalues replaced by their absolute values,
floored) with backtracking on F, so a negative curvature direction,
the instability that splits a cluster, is followed downhill instead of attracting the iteration.

Levels above ``COARSE_ROWS`` classes: the iteration first runs on the rows merged ``COARSE_FACTOR`` at a time into
bins of consecutive w (:func:`binned`; a genuine IB problem whose optimum is within the bins' width of this one;
itself solved the same way while it has more than ``COARSE_ROWS`` bins; only with ``COARSE_PER_CLUSTER`` bins per
cluster or more), where the long walks after a split or a birth cost a fraction as much, and then finishes on every
row from there (a few steps: the start is already near the optimum).  A caller that has seeded a new cluster of
tiny mass (a repair) turns this off: a birth worth 1e-6 nats is below what the bins resolve, so the merged problem
may starve it.

References
----------
1. Y. N. Dauphin et al., "Identifying and attacking the saddle point problem in high-dimensional non-convex
   optimization", NeurIPS 2014 (saddle-free Newton).
"""

from __future__ import annotations

import weakref
from collections.abc import Callable

import numpy as np
from scipy.linalg import cho_factor, cho_solve, eig_banded, eigh
from scipy.linalg.lapack import dgbtrf, dgbtrs, dpbtrf, dpbtrs
from scipy.sparse import csr_matrix

from . import _iterate as it
from ._band import Band, band
from ._kernels import window_newton, window_parts
from ._problem import Reduced

__all__ = ["newton", "binned", "WINDOW_CELLS", "WINDOW_CUT", "COARSE_ROWS", "COARSE_FACTOR", "COARSE_PER_CLUSTER"]

#: |S| x clusters above which Newton works on per-row windows of clusters (``_window``) instead of dense arrays
WINDOW_CELLS = 20_000
#: nats below a row's log-partition from which a cluster's posterior is left out of its window (e^-50 = 2e-22)
WINDOW_CUT = 50.0
#: nats (plus ln B, for windows of B clusters) below a row's largest term from which the window's posteriors count
#: as 0 (no exp): together such terms are below e^-40 = 4e-18 of the sum, which is at least 1, so ln Z does not
#: change in double precision; at 4096 rows (B ~ 13) about a quarter of a window's slots lie there
PARTS_CUT = 40.0
#: classes above which Newton's method starts on bins of ``COARSE_FACTOR`` classes (see the module docstring)
COARSE_ROWS = 8192
COARSE_FACTOR = 4
#: bins per cluster below which the binned level is skipped (coarser bins lose clusters near the top of the curve:
#: 2,000 rows on 500 and 125 bins ended up to 1.2e-3 bits above the one-level curve)
COARSE_PER_CLUSTER = 16
#: relative rounding noise of F (measured: ~1e-14 of |F| on 400 rows at beta = 3000); a convex Newton step that
#: predicts a smaller decrease is accepted unless it raises F by more
F_NOISE = 1e-13
#: a Hessian diagonal below this share of its largest is no curvature (the weight of a cluster of mass 1e-13,
#: pruned anyway, has ~1e-13 of the largest)
FLAT = 1e-24


def _log_dec(eta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(ln d, ln (1 - d)) for d = sigmoid(eta) = p(y=1|t)."""
    return -np.logaddexp(0.0, -eta), -np.logaddexp(0.0, eta)


def _band(w, neg_h, beta, rho, eta, cut: float) -> Band:
    """:func:`ibtheory.ib._band.band` of the clusters (rho, eta) within ``cut`` nats of each row's largest."""
    return band(w, neg_h, beta, rho, *_log_dec(eta), cut)


#: ln 1e-300: the smallest log-weight a cluster enters the posteriors with
_LOG_TINY = float(np.log(1e-300))


def _log_sum_exp(x: np.ndarray) -> float:
    """ln sum_i exp(x_i) of a short vector (a few numpy calls: :func:`ibtheory.ib._iterate.lse` makes ~10)."""
    m = float(x.max())
    if not np.isfinite(m):
        return float(it.lse(x, axis=0))
    return m + float(np.log(np.exp(x - m).sum()))


def _parts(w, p, neg_h, beta, rho, eta, win=None):
    """(r, d, pi, ln Z, F) at (rho, eta); the posterior pi is (n, K), or (n, B) on the clusters ``win`` = (idx,
    valid, ...) of each row (0 elsewhere).  KL[w || d] is summed term by term (ln (1 - d) + w eta would cancel
    catastrophically for d near 1)."""
    log_r = rho - _log_sum_exp(rho)
    r = np.exp(log_r)
    log_r = np.maximum(log_r, _LOG_TINY)
    log_d1, log_d0 = _log_dec(eta)
    if win is not None:  # one compiled pass per row
        cut = PARTS_CUT + np.log(win[0].shape[1])  # B terms e^-cut add at most e^-40 to a sum >= 1
        pi, lnZ, F = window_parts(w, p, neg_h, beta, log_r, log_d1, log_d0, win[0], win[1], cut)
        return r, np.exp(log_d1), pi, lnZ, F
    idx = slice(None)
    with np.errstate(invalid="ignore"):
        t1, t0 = w[:, None] * log_d1[idx], (1 - w)[:, None] * log_d0[idx]
    if not np.all(np.isfinite(eta)):  # 0 ln 0 = 0: a row at w = 1 (0) in a cluster at d = 1 (0)
        t1, t0 = np.where(w[:, None] == 0, 0.0, t1), np.where(w[:, None] == 1, 0.0, t0)
    u = log_r[idx] - beta * np.maximum(neg_h[:, None] - t1 - t0, 0.0)
    m = u.max(axis=1)
    m[~np.isfinite(m)] = 0.0
    u -= m[:, None]
    pi = it.exp_nonpositive(u)
    z = pi.sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        lnZ = np.log(z) + m
        pi /= z[:, None]
    F = -float(p @ lnZ)
    return r, np.exp(log_d1), pi, lnZ, F


def _window(w: np.ndarray, neg_h: np.ndarray, beta: float, rho: np.ndarray, eta: np.ndarray):
    """Per row the clusters that matter: the :func:`ibtheory.ib._band.band` of the clusters within
    ``WINDOW_CUT`` nats of the row's largest log-weight (in the order of d = p(y=1|t); O(n log K), no dense
    array), one more on each side; returns (idx (n, B), valid (n, B), that band) or None when the widest band
    holds every cluster (then the dense arrays are as cheap; the compiled window loops win below that: a 4096 x 2
    curve 20.8 -> 20.1 s against windows only up to half the clusters)."""
    bd = _band(w, neg_h, beta, rho, eta, WINDOW_CUT)
    K = bd.order.size  # the live clusters (all of them: newton drops the others first)
    bd = Band(bd.order, np.maximum(bd.first - 1, 0), np.minimum(bd.last + 1, K - 1))
    if bd.width >= K:
        return None
    return (*bd.windows(), bd)


def _outer_sum(A: np.ndarray, B: np.ndarray, p: np.ndarray) -> np.ndarray:
    """sum_x p(x) g_x g_x^T for g_x = [A[x], B[x]] (2K x 2K), A and B (n, K) (no windows).  Above 200,000 cells
    entries of pi below 1e-20 are dropped and the product is sparse (their share of the sum is below 1e-20 of
    each term's); windows go through :func:`ibtheory.ib._kernels.window_newton`."""
    n, K = A.shape
    if n * K < 200_000:
        G = np.concatenate([A, B], axis=1)
        return (G * p[:, None]).T @ G
    rows, c = np.nonzero(A > 1e-20)
    G = csr_matrix((np.concatenate([A[rows, c], B[rows, c]]),
                    (np.concatenate([rows, rows]), np.concatenate([c, c + K]))), shape=(n, 2 * K))
    return (G.T @ G.multiply(p[:, None]).tocsr()).toarray()


def _covers(win, w: np.ndarray, neg_h: np.ndarray, beta: float, rho: np.ndarray, eta: np.ndarray) -> bool:
    """Whether every posterior outside the windows ``win`` is below e^-(``WINDOW_CUT`` - 10): the band of the
    clusters within that many nats of each row's largest lies inside them."""
    bd = _band(w, neg_h, beta, rho, eta, WINDOW_CUT - 10.0)
    return win[2].contains(*bd.pairs())


def _saddle_free_step(Hs: np.ndarray, g: np.ndarray) -> np.ndarray:
    """|Hs|^-1 g, |Hs| with every eigenvalue replaced by its absolute value floored at 1e-9 max(1, ||Hs||_inf)
    (Gershgorin: at least max |eigenvalue|).  Only the eigenpairs below the floor are computed (a few: the
    directions of negative curvature; ~3x cheaper than all of them at 2K = 200-360): they are lifted in
    Hs + sum (max(|l|, floor) - l) v v^T, which is then positive definite and Cholesky-solved (all eigenpairs if
    that fails in rounding)."""
    floor = 1e-9 * max(1.0, float(np.abs(Hs).sum(axis=1).max()))
    vals, vecs = eigh(Hs, subset_by_value=(-np.inf, floor), driver="evr", check_finite=False)
    try:
        return cho_solve(cho_factor(Hs + (vecs * (np.maximum(np.abs(vals), floor) - vals)) @ vecs.T), g)
    except np.linalg.LinAlgError:
        vals, vecs = np.linalg.eigh(Hs)
        return vecs @ ((vecs.T @ g) / np.maximum(np.abs(vals), floor))


def direction(H: np.ndarray, grad: np.ndarray, F: float) -> tuple[np.ndarray, float, float] | None:
    """The saddle-free Newton step for Hessian ``H`` and gradient ``grad`` at objective ``F`` (nats): Jacobi scaling
    first (a cluster of weight 1e-5 has curvatures 1e-5 of the others'), then a Cholesky solve when positive
    definite (the usual case near a minimum, ~10x cheaper than eigh), else :func:`_saddle_free_step`.  Returns (step,
    predicted decrease -grad . step, noise allowance of the line search), or None when the predicted decrease is
    below rounding (converged).  The last steps of a convex quadratic model predict less than F resolves
    (``F_NOISE`` |F|): such a full step may then raise F by that much (else the line search halves steps on noise)."""
    diag = np.abs(np.diag(H))
    # a coordinate without curvature (the weights of clusters whose decoders coincide to the last bit: F does not
    # depend on how their mass is shared, and that block of H is exactly 0) is left where it is; scaled by
    # 1/sqrt(1e-300) its rounding noise (~1e-17) became 1e283 and the factorisations NaN
    live = diag > FLAT * diag.max()
    if not live.all():
        step = np.zeros_like(grad)
        found = direction(H[np.ix_(live, live)], grad[live], F) if live.any() else None
        if found is None:
            return None
        step[live] = found[0]
        return (step,) + found[1:]
    sc = 1.0 / np.sqrt(diag)
    Hs = sc[:, None] * H * sc[None, :]
    try:
        Hs[np.diag_indices_from(Hs)] += 1e-9
        step = -sc * cho_solve(cho_factor(Hs), sc * grad)
        convex = True
    except np.linalg.LinAlgError:
        step = _saddle_free_step(Hs, sc * grad) * -sc
        convex = False
    return _judged(step, grad, F, convex)


def _judged(step: np.ndarray, grad: np.ndarray, F: float, convex: bool) -> tuple[np.ndarray, float, float] | None:
    """(step, predicted decrease, line-search noise allowance) as :func:`direction` returns them, or None when the
    predicted decrease is below rounding."""
    predicted = -float(grad @ step)
    scale = max(1.0, abs(F))
    if predicted < 1e-15 * scale:
        return None
    return step, predicted, (F_NOISE * scale if convex and predicted < F_NOISE * scale else 0.0)


def _band_scale(sc: np.ndarray, u: int) -> np.ndarray:
    """sc_r sc_c at each entry (r, c) of upper band storage with ``u`` superdiagonals (0 outside the matrix): row k
    holds offset u - k, so its entries are sc[c - u + k] sc[c], a sliding window of sc padded with u zeros."""
    padded = np.concatenate([np.zeros(u), sc])
    step = padded.strides[0]  # a read-only view: row k starts at padded[k]
    rows = np.lib.stride_tricks.as_strided(padded, (u + 1, sc.size), (step, step), writeable=False)
    return rows * sc[None, :]


def _band_dense(ab: np.ndarray) -> np.ndarray:
    """The symmetric matrix held in upper band storage ``ab`` ((u + 1, n): entry (r, c), r <= c, at [u + r - c,
    c])."""
    u, n = ab.shape[0] - 1, ab.shape[1]
    k = u - np.arange(u + 1)[:, None]  # each storage row's offset c - r
    c = np.broadcast_to(np.arange(n)[None, :], ab.shape)
    r = c - k
    ok = r >= 0
    H = np.zeros((n, n))
    H[r[ok], c[ok]] = ab[ok]
    H[c[ok], r[ok]] = ab[ok]
    return H


def _band_saddle_free(Hs: np.ndarray, g: np.ndarray) -> np.ndarray | None:
    """:func:`_saddle_free_step` for Hs in upper band storage: the eigenvalues below the floor from the band
    (LAPACK's reduction to tridiagonal form, O(n^2 u), no eigenvectors), their eigenvectors by inverse iteration
    (banded LU), and the rest of the step Hs^-1 (g - V V^T g) by one more banded LU solve, projected off V.  None
    where that cannot be trusted (more than 8 such eigenvalues, a singular factor, an eigenvector's residual above
    1e-10 of the norm): the caller then takes the dense path."""
    u, n = Hs.shape[0] - 1, Hs.shape[1]
    norm = float(_band_matvec(np.abs(Hs), np.ones((n, 1))).max())  # the largest row sum of |Hs|
    floor = 1e-9 * max(1.0, norm)
    vals = eig_banded(Hs, eigvals_only=True, select="v", select_range=(-2.0 * norm - 1.0, floor),
                      check_finite=False)
    if vals.size == 0 or vals.size > 8:
        return None
    G = np.zeros((3 * u + 1, n))  # LAPACK's general band storage with u rows for the LU's fill-in
    G[u:2 * u + 1] = Hs
    for k in range(1, u + 1):
        G[2 * u + k, :n - k] = Hs[u - k, k:]

    def solver(shift):
        Gs = G.copy()
        Gs[2 * u] -= shift
        lu, piv, info = dgbtrf(Gs, u, u)
        return None if info != 0 else lambda b: dgbtrs(lu, u, u, b, piv)[0]

    V = np.empty((n, vals.size))
    for i, lam in enumerate(vals):
        solve = solver(lam)
        if solve is None:
            return None
        x = np.ones(n) + np.arange(n) / n
        for _ in range(3):
            x = solve(x)
            x -= V[:, :i] @ (V[:, :i].T @ x)
            x /= np.linalg.norm(x)
        V[:, i] = x
    solve = solver(0.0)
    if solve is None or np.abs(_band_matvec(Hs, V) - V * vals).max() > 1e-10 * max(1.0, norm):
        return None
    c = V.T @ g
    x = solve(g - V @ c)
    if not np.all(np.isfinite(x)):
        return None
    x -= V @ (V.T @ x)
    return x + V @ (c / np.maximum(np.abs(vals), floor))


def _band_matvec(ab: np.ndarray, X: np.ndarray) -> np.ndarray:
    """H X for the symmetric H in upper band storage ``ab`` and X (n, k)."""
    u = ab.shape[0] - 1
    Y = ab[u][:, None] * X
    for k in range(1, u + 1):  # the k-th superdiagonal H[i, i + k] = ab[u - k, i + k], and its mirror
        dk = ab[u - k, k:][:, None]
        Y[:-k] += dk * X[k:]
        Y[k:] += dk * X[:-k]
    return Y


def band_direction(ab: np.ndarray, grad: np.ndarray, F: float) -> tuple[np.ndarray, float, float] | None:
    """:func:`direction` for a Hessian in upper band storage ``ab``: a banded Cholesky factorisation (O(n u^2)
    instead of O(n^3)) where it is positive definite, else :func:`_band_saddle_free`; the dense
    :func:`direction` where neither applies (a coordinate without curvature, more than 8 eigenvalues below the
    floor)."""
    u = ab.shape[0] - 1
    diag = np.abs(ab[u])
    if np.all(diag > FLAT * diag.max()):
        sc = 1.0 / np.sqrt(diag)
        Hs = ab * _band_scale(sc, u)
        Hs[u] += 1e-9
        c, info = dpbtrf(Hs, lower=0)
        if info == 0:
            x, info = dpbtrs(c, sc * grad, lower=0)
            if info == 0:
                return _judged(-sc * x, grad, F, True)
        else:
            x = _band_saddle_free(Hs, sc * grad)
            if x is not None:
                return _judged(-sc * x, grad, F, False)
    return direction(_band_dense(ab), grad, F)


def line_search(trial: Callable[[float], tuple], F: float, predicted: float, noise: float,
                halvings: int = 20) -> tuple[float | None, tuple | None, int]:
    """Backtracking (Armijo, 1e-4) on F along a step: ``trial(t)`` gives the parts at t x step, F last.  Returns (t,
    its parts, evaluations), t None (and no parts) when no halving decreased F enough."""
    t = 1.0
    for k in range(halvings):
        parts = trial(t)
        F2 = parts[-1]
        if np.isfinite(F2) and F2 <= F - 1e-4 * t * predicted + noise:
            return t, parts, k + 1
        t *= 0.5
    return None, None, halvings


def _newton_steps(w, p, neg_h, beta, rho, eta, K, max_steps, gtol, evals, win):
    """The saddle-free Newton iteration of :func:`newton` on the dense (n, K) arrays or the windows ``win`` (idx,
    valid, their band)."""
    idx = None if win is None else win[0]
    if win is not None:  # each cluster's rho coordinate in the band's interleaved order
        at = np.empty(K, dtype=np.intp)
        at[win[2].order] = 2 * np.arange(K)
        pos = at // 2
    gmax = np.inf

    parts = None  # the accepted trial point's parts, reused by the next step
    with np.errstate(divide="ignore", invalid="ignore", over="ignore", under="ignore"):
        for _ in range(max_steps):
            if parts is None:
                parts = _parts(w, p, neg_h, beta, rho, eta, win)
                evals += 1
            r, d, pi, lnZ, F = parts  # pi (n, K), or (n, B) on the windows
            if idx is None:
                ppi = p[:, None] * pi
                m = ppi.sum(axis=0)
                dw = w[:, None] - d[None, :]  # w_x - d_t
                ppi_dw = (ppi * dw).sum(axis=0)
                ppi_dw2 = (ppi * dw**2).sum(axis=0)
                bpd = beta * pi * dw
            else:  # the Hessian's Gram sums come with them (computed even on a last, converged step)
                ab, m, ppi_dw, ppi_dw2 = window_newton(pi, idx, win[1], w, p, d, float(beta), pos)
            g_rho = r - m
            g_eta = -beta * ppi_dw
            grad = np.concatenate([g_rho, g_eta])
            gmax = float(np.abs(grad).max())
            if gmax < gtol or not np.isfinite(gmax):
                break
            b = beta * ppi_dw
            c = beta**2 * ppi_dw2 - beta * d * (1 - d) * m
            if idx is None:
                H = _outer_sum(pi, bpd, p)
                k = np.arange(K)
                H[k, k] -= m
                H[k, K + k] -= b
                H[K + k, k] -= b
                H[K + k, K + k] -= c
                H[k, k] += r  # F~'s Hessian (see band_direction)
                found = direction(H, grad, F)
            else:  # banded, coordinates (rho_t, eta_t) interleaved in the order of d: see band_direction
                u = ab.shape[0] - 1
                ab[u, at] += r - m
                ab[u - 1, at + 1] -= b
                ab[u, at + 1] -= c
                g2 = np.empty(2 * K)
                g2[at], g2[at + 1] = g_rho, g_eta
                found = band_direction(ab, g2, F)
                if found is not None:
                    found = (np.concatenate([found[0][at], found[0][at + 1]]),) + found[1:]
            if found is None:
                break
            step, predicted, noise = found

            def trial(t, step=step, rho=rho, eta=eta):
                return _parts(w, p, neg_h, beta, rho + t * step[:K], eta + t * step[K:], win)

            t, parts, n_eval = line_search(trial, F, predicted, noise)
            evals += n_eval
            if t is None:
                break
            rho, eta = rho + t * step[:K], eta + t * step[K:]  # _parts normalises r itself: parts stay (rho, eta)'s
            rho = rho - _log_sum_exp(rho)
    return rho, eta, evals, gmax


def binned(prob: Reduced, n_bins: int) -> Reduced:
    """|Y| = 2: the classes sorted by w = p(y=1|s) and merged into ``n_bins`` bins of consecutive classes (equal
    counts, to one): p(bin) = sum p(s), p(y=1|bin) the p-weighted mean of w.  Any encoder of the bins is an encoder
    of the classes with the same I(X;T) and I(T;Y), so its IB problem is a genuine one (its classes are the bins)."""
    if prob.n_y != 2 or not 1 <= n_bins <= prob.n_s:
        raise ValueError(f"n_bins must be between 1 and the {prob.n_s} classes of a |Y| = 2 problem, got {n_bins} "
                         f"(|Y| = {prob.n_y})")
    w = prob.W[:, 1]
    order = np.argsort(w, kind="stable")
    starts = (np.arange(n_bins) * prob.n_s) // n_bins
    p = np.add.reduceat(prob.p_s[order], starts)
    wb = np.clip(np.add.reduceat(prob.p_s[order] * w[order], starts) / p, 0.0, 1.0)
    return Reduced(p / p.sum(), np.column_stack([1.0 - wb, wb]), np.arange(n_bins, dtype=np.int64), n_bins, 2,
                   float(np.max(np.abs(w[order] - np.repeat(wb, np.diff(np.append(starts, prob.n_s)))))), False)


_BINNED: dict[int, tuple[weakref.ref, Reduced]] = {}


def _coarse(prob: Reduced) -> Reduced:
    """:func:`binned` of ``prob`` into |S| // ``COARSE_FACTOR`` bins, built once per problem object."""
    key = id(prob)
    held = _BINNED.get(key)
    if held is None or held[0]() is not prob:
        held = (weakref.ref(prob, lambda _, k=key: _BINNED.pop(k, None)), binned(prob, prob.n_s // COARSE_FACTOR))
        _BINNED[key] = held
    return held[1]


def newton(prob: Reduced, beta: float, log_pt: np.ndarray, log_dec: np.ndarray, max_steps: int = 60,
           gtol: float = 1e-13, coarse: bool = True) -> tuple[np.ndarray, np.ndarray, int, float]:
    """Minimise F from (ln p(t), ln p(y|t)); returns (ln p(t), ln p(y|t), objective evaluations, max |gradient|).
    With ``coarse``, more than ``COARSE_ROWS`` classes and at least ``COARSE_PER_CLUSTER`` bins per cluster, first
    on the binned rows (see the module docstring; their evaluations are counted too)."""
    evals = 0
    if coarse and prob.n_s > COARSE_ROWS and prob.n_s // COARSE_FACTOR >= COARSE_PER_CLUSTER * log_pt.size:
        log_pt, log_dec, evals, _ = newton(_coarse(prob), beta, log_pt, log_dec, max_steps, gtol)
    w = prob.W[:, 1]
    p = prob.p_s
    neg_h = prob.neg_entropy_rows
    with np.errstate(invalid="ignore"):
        eta = log_dec[:, 1] - log_dec[:, 0]
    # a cluster without mass (or a 0/0 decoder) is left out; eta = +-inf (p(y=1|t) = 1 or 0, hard rows) is not
    live = np.isfinite(log_pt) & ~np.isnan(eta)
    rho = log_pt[live] - it.lse(log_pt[live], axis=0)
    eta = eta[live]
    K = rho.size
    win = None
    if w.size * K > WINDOW_CELLS:  # rows see only the clusters next to them: (n, B) windows instead of (n, K)
        win = _window(w, neg_h, beta, rho, eta)
    for _ in range(3):  # a window is checked at the end and rebuilt if mass left it
        rho, eta, evals, gmax = _newton_steps(w, p, neg_h, beta, rho, eta, K, max_steps, gtol, evals, win)
        if win is None or _covers(win, w, neg_h, beta, rho, eta):
            break
        win = _window(w, neg_h, beta, rho, eta)
    log_d1, log_d0 = _log_dec(eta)
    log_dec_new = np.stack([log_d0, log_d1], axis=1)
    return rho, log_dec_new, evals, gmax
