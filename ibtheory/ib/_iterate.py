"""The self-consistent IB map on the reduced problem, in log space, with SQUAREM acceleration (private).

State theta = (ln p(t), ln p(y|t)).  One application of the map G (Tishby, Pereira & Bialek 1999):

    D[s, t]   = KL[W_s || p(y|t)]                                   (nats)
    ln p(t|s) = ln p(t) - beta D[s, t] - ln Z(s),  Z(s) = sum_t p(t) exp(-beta D[s, t])
    p(t)      = sum_s p(s) p(t|s),   p(y|t) = sum_s p(s|t) W[s, y].

It is alternating minimisation of F = I(S;T) + beta E[KL(W_s || p(y|t))], so the objective
J(theta) = -sum_s p(s) ln Z(s) (= min over the encoder of F, nats) never increases under G; SQUAREM (Varadhan &
Roland 2008, scheme S3) extrapolates along G and falls back to the plain double step whenever J would increase.
Everything is vectorised over (s, t); entries with p(y|t) = 0 give D = +inf and p(t|s) = 0 exactly.

References
----------
1. N. Tishby, F. C. Pereira, W. Bialek, "The information bottleneck method", Allerton 1999.
2. R. Varadhan and C. Roland, "Simple and globally convergent methods for accelerating the convergence of any
   EM algorithm", Scand. J. Statist. 35 (2008) 335-353.
3. D. J. Strouse and D. J. Schwab, "The deterministic information bottleneck", Neural Comput. 29 (2017) 1611-1630.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..info import kl_matrix
from ._problem import Reduced

__all__ = [
    "State", "exp_nonpositive", "lse", "step", "fixed_point", "dib_fixed_point", "prune_merge", "from_encoder",
    "converge", "newton_polish",
]

_NEG = -np.inf
_FLUSH = -700.0  # exp(-700) = 1e-304: below it, exp is subnormal or 0 (and 10-30x slower to compute)


def exp_nonpositive(a: np.ndarray) -> np.ndarray:
    """exp(a) for a <= 0 (shifted log-weights), with values below exp(-700) = 1e-304 set to exactly 0.

    Terms that small cannot change a sum whose largest term is 1; flushing them avoids the slow subnormal path of
    exp (and keeps -inf entries, e.g. empty clusters, exactly 0).
    """
    out = np.exp(np.maximum(a, _FLUSH))
    out *= a > _FLUSH
    return out


def lse(a: np.ndarray, axis: int) -> np.ndarray:
    """log-sum-exp along ``axis`` (rows of -inf give -inf)."""
    m = a.max(axis=axis, keepdims=True)
    m[~np.isfinite(m)] = 0.0
    with np.errstate(divide="ignore"):
        return np.log(exp_nonpositive(a - m).sum(axis=axis)) + m.squeeze(axis)


@dataclass
class State:
    """theta = (ln p(t), ln p(y|t)) plus the encoder G produced from it and the objective J (nats)."""

    log_pt: np.ndarray
    log_dec: np.ndarray
    log_enc: np.ndarray | None = None
    J: float = np.inf
    converged: bool = False


def step(prob: Reduced, beta: float, log_pt: np.ndarray, log_dec: np.ndarray, neg_h: np.ndarray,
         log_ps: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """One map G: returns (ln p(t)', ln p(y|t)', ln p(t|s) (n_s, n_t) computed from the input, J(input) in nats).

    Computed cluster-major, (n_t, n_s): D[t, s] = KL[W_s || p(y|t)] in nats from ``ibtheory.info.kl_matrix``.  Call
    inside ``np.errstate(divide="ignore", invalid="ignore")`` (empty clusters give log 0).
    """
    L = log_pt[:, None] - beta * kl_matrix(prob.W, log_dec, neg_h, "nats")
    m = L.max(axis=0)
    E = exp_nonpositive(L - m[None, :])
    z = E.sum(axis=0)
    logZ = m + np.log(z)
    joint = E * (prob.p_s / z)[None, :]  # p(t, s)
    p_t = joint.sum(axis=1)
    dec = (joint @ prob.W) / np.maximum(p_t, 1e-300)[:, None]
    return np.log(p_t), np.log(dec), (L - logZ[None, :]).T, -float(prob.p_s @ logZ)


def _distance(a_pt, a_dec, b_pt, b_dec) -> float:
    return float(max(np.max(np.abs(np.exp(a_pt) - np.exp(b_pt))), np.max(np.abs(np.exp(a_dec) - np.exp(b_dec)))))


def _normalise(log_pt: np.ndarray, log_dec: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return log_pt - lse(log_pt, axis=0), log_dec - lse(log_dec, axis=1)[:, None]


def fixed_point(prob: Reduced, beta: float, state: State, tol: float, max_iter: int,
                accelerate: bool = True, obj_tol: float = 1e-12,
                remaining_tol: float = 1e-10) -> tuple[State, int, float]:
    """Iterate G from ``state`` until converged; return (state with its encoder, map evaluations, residual).

    Converged means: the fixed-point residual max|G(theta) - theta| (probabilities) is below ``tol``, or the
    objective J has stalled: its last decrease is below ``obj_tol`` and the geometric estimate of all further
    decrease below ``remaining_tol`` (nats, both relative to max(1, |J|)).  The second test ends critical
    slowing down near phase transitions, where theta creeps along a flat valley while the Lagrangian no longer
    changes.
    """
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        return _fixed_point(prob, beta, state, tol, max_iter, accelerate, obj_tol, remaining_tol)


def _fixed_point(prob, beta, state, tol, max_iter, accelerate, obj_tol, remaining_tol):
    neg_h = prob.neg_entropy_rows
    log_ps = np.log(prob.p_s)
    pt0, dec0 = state.log_pt, state.log_dec
    evals = 0
    res = np.inf
    J_prev, dJ_prev = np.inf, np.inf
    n_t = pt0.size
    while evals < max_iter:
        pt1, dec1, enc0, J0 = step(prob, beta, pt0, dec0, neg_h, log_ps)
        evals += 1
        res = _distance(pt1, dec1, pt0, dec0)
        dJ = J_prev - J0
        if res < tol:
            return State(pt0, dec0, enc0, J0, True), evals, res
        if np.isfinite(dJ) and dJ_prev > 0 and 0 <= dJ <= obj_tol * max(1.0, abs(J0)):
            rate = min(dJ / dJ_prev, 0.999999)
            if dJ * rate / (1 - rate) <= remaining_tol * max(1.0, abs(J0)):
                return State(pt0, dec0, enc0, J0, True), evals, res
        J_prev, dJ_prev = J0, dJ
        pt2, dec2, _, _ = step(prob, beta, pt1, dec1, neg_h, log_ps)
        evals += 1
        if not accelerate:
            pt0, dec0 = pt2, dec2
            continue
        t0 = np.concatenate([pt0, dec0.ravel()])
        t1 = np.concatenate([pt1, dec1.ravel()])
        t2 = np.concatenate([pt2, dec2.ravel()])
        ok = np.isfinite(t0) & np.isfinite(t1) & np.isfinite(t2)
        r = np.where(ok, t1 - t0, 0.0)
        v = np.where(ok, t2 - t1, 0.0) - r
        nv = np.linalg.norm(v)
        if nv == 0.0:
            pt0, dec0 = pt2, dec2
            continue
        alpha = min(-np.linalg.norm(r) / nv, -1.0)
        tx = np.where(ok, t0 - 2 * alpha * r + alpha**2 * v, t2)
        ptx, decx = _normalise(tx[:n_t], tx[n_t:].reshape(dec0.shape))
        pt3, dec3, _, Jx = step(prob, beta, ptx, decx, neg_h, log_ps)
        evals += 1
        if np.isfinite(Jx) and Jx <= J0 and np.all(np.isfinite(pt3) | (pt2 == _NEG)):
            pt0, dec0 = pt3, dec3
        else:
            pt0, dec0 = pt2, dec2
    pt1, dec1, enc0, J0 = step(prob, beta, pt0, dec0, neg_h, log_ps)
    return State(pt0, dec0, enc0, J0), evals + 1, _distance(pt1, dec1, pt0, dec0)


def dib_fixed_point(prob: Reduced, beta: float, state: State, max_iter: int) -> tuple[State, int, float]:
    """Deterministic IB (Strouse & Schwab 2017): t(s) = argmax_t [ln p(t) - beta D[s, t]] until it repeats."""
    neg_h = prob.neg_entropy_rows
    log_pt, log_dec = state.log_pt, state.log_dec
    assign = np.zeros(0, dtype=np.int64)
    for it in range(1, max_iter + 1):
        D = kl_matrix(prob.W, log_dec, neg_h, "nats").T
        new = np.argmax(log_pt[None, :] - beta * D, axis=1)
        if np.array_equal(new, assign):
            return _hard_state(prob, assign), it, 0.0
        assign = new
        st = _hard_state(prob, assign)
        log_pt, log_dec = st.log_pt, st.log_dec
    return _hard_state(prob, assign), max_iter, 1.0


def _hard_state(prob: Reduced, assign: np.ndarray) -> State:
    labels, idx = np.unique(assign, return_inverse=True)
    enc = np.zeros((prob.n_s, labels.size))
    enc[np.arange(prob.n_s), idx] = 1.0
    return from_encoder(prob, enc)


def from_encoder(prob: Reduced, enc: np.ndarray) -> State:
    """The state (p(t), p(y|t)) induced by an encoder p(t|s) of shape (n_s, n_t); empty clusters removed."""
    joint = prob.p_s[:, None] * enc
    p_t = joint.sum(axis=0)
    keep = p_t > 0
    joint, p_t = joint[:, keep], p_t[keep]
    dec = (joint / p_t).T @ prob.W
    with np.errstate(divide="ignore"):
        return State(np.log(p_t), np.log(dec / dec.sum(axis=1, keepdims=True)),
                     np.log(enc[:, keep]) if np.all(np.isclose(enc[:, keep].sum(1), 1)) else None)


def prune_merge(state: State, min_pt: float = 1e-13, merge_tol: float = 1e-7) -> State:
    """Drop clusters with p(t) < ``min_pt`` and merge clusters whose decoders differ by < ``merge_tol`` (max abs).

    Merging clusters with equal p(y|t) leaves I(T;Y) unchanged and lowers I(X;T); dropped mass is renormalised.
    """
    p_t = np.exp(state.log_pt)
    dec = np.exp(state.log_dec)
    keep = np.flatnonzero(p_t >= min_pt)
    if keep.size == 0:
        keep = np.array([int(np.argmax(p_t))])
    p_t, dec = p_t[keep], dec[keep]
    order = np.argsort(-p_t, kind="stable")
    p_t, dec = p_t[order], dec[order]
    rep = np.arange(p_t.size)
    if p_t.size > 1:
        close = np.max(np.abs(dec[:, None, :] - dec[None, :, :]), axis=2) < merge_tol
        first = np.argmax(close, axis=1)  # the heaviest cluster each one is close to
        rep = first
    labels, inv = np.unique(rep, return_inverse=True)
    new_pt = np.bincount(inv, weights=p_t)
    new_dec = dec[labels]
    with np.errstate(divide="ignore"):
        return State(np.log(new_pt / new_pt.sum()), np.log(new_dec))


def converge(prob: Reduced, beta: float, state: State, tol: float, max_iter: int,
             accelerate: bool = True) -> tuple[State, int, float]:
    """:func:`fixed_point`, then :func:`prune_merge` and, if that removed clusters, :func:`fixed_point` again."""
    st, n, res = fixed_point(prob, beta, state, tol, max_iter, accelerate)
    # a class of weight 1e-170 whose support no other cluster covers keeps its own cluster (dropping it would leave
    # that class with KL = +inf to every cluster, an encoder of NaN)
    merged = prune_merge(st, min_pt=min(1e-13, 0.5 * float(prob.p_s.min())))
    if merged.log_pt.size < st.log_pt.size:
        st, n2, res = fixed_point(prob, beta, merged, tol, max(1, max_iter - n), accelerate)
        n += n2
    return st, n, res


def newton_polish(prob: Reduced, beta: float, state: State, steps: int = 8, tol: float = 1e-13,
                  h: float = 1e-7) -> tuple[State, int, float]:
    """Newton's method on theta - G(theta) = 0 (finite-difference Jacobian, least squares, halving steps).

    Near a critical beta the map G contracts ever more slowly (critical slowing down) while Newton converges
    in a few steps; used to polish a point before it is certified.  Returns (state, map evaluations, residual).
    """
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        neg_h = prob.neg_entropy_rows
        log_ps = np.log(prob.p_s)
        n_t = state.log_pt.size
        shape = state.log_dec.shape

        def G(theta):
            pt, dec = _normalise(theta[:n_t], theta[n_t:].reshape(shape))
            p2, d2, _, _ = step(prob, beta, pt, dec, neg_h, log_ps)
            return np.concatenate([p2, d2.ravel()])

        pt0, dec0 = _normalise(state.log_pt, state.log_dec)
        theta = np.concatenate([pt0, dec0.ravel()])
        evals = 0
        free = np.isfinite(theta)
        g = G(theta)
        evals += 1
        r = np.where(free, g - theta, 0.0)
        res = float(np.max(np.abs(r)))
        for _ in range(steps):
            if res < tol or not np.all(np.isfinite(r)):
                break
            idx = np.flatnonzero(free)
            J = np.empty((idx.size, idx.size))
            for col, i in enumerate(idx):
                tp = theta.copy()
                tp[i] += h
                J[:, col] = (G(tp)[idx] - g[idx]) / h
            evals += idx.size
            A = np.eye(idx.size) - J
            delta = np.linalg.lstsq(A, r[idx], rcond=None)[0]
            t = 1.0
            while t > 1e-3:
                trial = theta.copy()
                trial[idx] += t * delta
                g2 = G(trial)
                evals += 1
                r2 = np.where(free, g2 - trial, 0.0)
                res2 = float(np.max(np.abs(r2)))
                if np.isfinite(res2) and res2 < res:
                    theta, g, r, res = trial, g2, r2, res2
                    break
                t *= 0.5
            else:
                break
        pt, dec = _normalise(theta[:n_t], theta[n_t:].reshape(shape))
        st, n, res_fp = fixed_point(prob, beta, State(pt, dec), tol, 1)
    return st, evals + n, res_fp
