"""The self-consistent IB map and its SQUAREM fixed point for many betas at once (private).

Same map G and stopping rules as :mod:`ibtheory.ib._iterate`, vectorised over a batch of B problems on one reduced
p(s, y): states are padded to a common number of clusters T with empty clusters (ln p(t) = -inf, ln p(y|t) =
-inf), which the map keeps empty, so one numpy call advances every problem.  Problems leave the batch as soon as
they converge; the remaining ones are compacted.  Used wherever many independent solves are needed together: the
bisection of all critical-beta brackets level by level, and the polishing of loosely converged points before they
are certified.  Shapes: ``beta`` (B,), ``log_pt`` (B, T), ``log_dec`` (B, T, Y), log-encoders (B, T, S).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..info import kl_matrix
from . import _iterate as it
from ._problem import Reduced

__all__ = ["pack", "batch_step", "batch_fixed_point"]

_NEG = -np.inf


def pack(states: Sequence[it.State], n_y: int) -> tuple[np.ndarray, np.ndarray]:
    """Stack states into (B, T) and (B, T, Y) arrays, padding with empty clusters."""
    T = max(s.log_pt.size for s in states)
    log_pt = np.full((len(states), T), _NEG)
    log_dec = np.full((len(states), T, n_y), _NEG)
    for i, s in enumerate(states):
        log_pt[i, : s.log_pt.size] = s.log_pt
        log_dec[i, : s.log_pt.size] = s.log_dec
    return log_pt, log_dec


def batch_step(prob: Reduced, beta: np.ndarray, log_pt: np.ndarray, log_dec: np.ndarray,
               neg_h: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """One map G for every problem: (ln p(t)', ln p(y|t)', ln p(t|s) from the input as (B, T, S), J(input) (B,)
    in nats).  Arrays are laid out (B, T, S) so that every reduction over clusters is over a middle axis.

    Call inside ``np.errstate(divide="ignore", invalid="ignore")``.
    """
    L = log_pt[:, :, None] - beta[:, None, None] * kl_matrix(prob.W, log_dec, neg_h, "nats")
    m = L.max(axis=1)
    E = it.exp_nonpositive(L - m[:, None, :])
    z = E.sum(axis=1)
    logZ = m + np.log(z)
    joint = E * (prob.p_s[None, :] / z)[:, None, :]  # p(t, s), (B, T, S)
    p_t = joint.sum(axis=2)
    B, T, S = joint.shape
    dec = (joint.reshape(B * T, S) @ prob.W).reshape(B, T, -1) / np.maximum(p_t, 1e-300)[:, :, None]
    return np.log(p_t), np.log(dec), L - logZ[:, None, :], -(logZ @ prob.p_s)


def _distance(a_pt, a_dec, b_pt, b_dec) -> np.ndarray:
    d1 = np.abs(np.exp(a_pt) - np.exp(b_pt)).max(axis=1)
    d2 = np.abs(np.exp(a_dec) - np.exp(b_dec)).max(axis=(1, 2))
    return np.maximum(d1, d2)


def batch_fixed_point(prob: Reduced, betas: np.ndarray, states: Sequence[it.State], tol: float,
                      max_iter: int | np.ndarray,
                      obj_tol: float = 1e-12, remaining_tol: float = 1e-10,
                      accelerate: bool = True) -> list[tuple[it.State, int, float]]:
    """:func:`ibtheory.ib._iterate.fixed_point` for every (beta, state) pair at once.

    Returns one (state with its encoder, map evaluations, residual) per problem, in the input order; each state
    keeps its own clusters (the padding is removed).  ``max_iter`` may differ per problem.
    """
    betas = np.asarray(betas, dtype=np.float64)
    max_iter = np.broadcast_to(np.asarray(max_iter, dtype=np.int64), betas.shape).copy()
    sizes = [s.log_pt.size for s in states]
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        pt0, dec0 = pack(states, prob.n_y)
        out = _run(prob, betas, pt0, dec0, tol, max_iter, obj_tol, remaining_tol, accelerate)
    results = []
    for i, (pt, dec, enc, J, conv, n, res) in enumerate(out):
        k = sizes[i]
        results.append((it.State(pt[:k], dec[:k], enc[:k].T, float(J), bool(conv)), int(n), float(res)))
    return results


def _run(prob, betas, pt0, dec0, tol, max_iter, obj_tol, remaining_tol, accelerate):
    neg_h = prob.neg_entropy_rows
    B, T = pt0.shape
    idx = np.arange(B)  # original index of each active problem
    evals = np.zeros(B, dtype=np.int64)
    J_prev = np.full(B, np.inf)
    dJ_prev = np.full(B, np.inf)
    step_max = np.ones(B)  # SQUAREM's adaptive bound on the extrapolation length |alpha|
    out: list = [None] * B
    while idx.size:
        pt1, dec1, enc0, J0 = batch_step(prob, betas, pt0, dec0, neg_h)
        evals += 1
        res = _distance(pt1, dec1, pt0, dec0)
        dJ = J_prev - J0
        scale = np.maximum(1.0, np.abs(J0))
        rate = np.minimum(np.where(dJ_prev > 0, dJ / np.where(dJ_prev > 0, dJ_prev, 1.0), 0.0), 0.999999)
        stalled = (np.isfinite(dJ) & (dJ_prev > 0) & (dJ >= 0) & (dJ <= obj_tol * scale)
                   & (dJ * rate / (1 - rate) <= remaining_tol * scale))
        done = (res < tol) | stalled
        spent = evals > max_iter  # this evaluation was the one after the budget (as in _iterate.fixed_point)
        finish = done | spent
        if finish.any():
            for j in np.flatnonzero(finish):
                out[idx[j]] = (pt0[j], dec0[j], enc0[j], J0[j], bool(done[j]), evals[j], res[j])
            keep = ~finish
            if not keep.any():
                break
            idx, betas, evals, max_iter, step_max = idx[keep], betas[keep], evals[keep], max_iter[keep], step_max[keep]
            pt0, dec0, pt1, dec1, J0, dJ = pt0[keep], dec0[keep], pt1[keep], dec1[keep], J0[keep], dJ[keep]
        J_prev, dJ_prev = J0, dJ
        pt2, dec2, _, _ = batch_step(prob, betas, pt1, dec1, neg_h)
        evals += 1
        if not accelerate:
            pt0, dec0 = pt2, dec2
            continue
        n = pt0.shape[0]
        t0 = np.concatenate([pt0, dec0.reshape(n, -1)], axis=1)
        t1 = np.concatenate([pt1, dec1.reshape(n, -1)], axis=1)
        t2 = np.concatenate([pt2, dec2.reshape(n, -1)], axis=1)
        ok = np.isfinite(t0) & np.isfinite(t1) & np.isfinite(t2)
        r = np.where(ok, t1 - t0, 0.0)
        v = np.where(ok, t2 - t1, 0.0) - r
        nv = np.linalg.norm(v, axis=1)
        nr = np.linalg.norm(r, axis=1)
        moving = nv > 0
        alpha = np.clip(-nr / np.where(moving, nv, 1.0), -step_max, -1.0)[:, None]
        tx = np.where(ok, t0 - 2 * alpha * r + alpha**2 * v, t2)
        ptx = tx[:, :T] - it.lse(tx[:, :T], axis=1)[:, None]
        decx = tx[:, T:].reshape(dec0.shape)
        decx = decx - it.lse(decx, axis=2)[:, :, None]
        pt3, dec3, _, Jx = batch_step(prob, betas, ptx, decx, neg_h)
        evals += 1
        good = (moving & np.isfinite(Jx) & (Jx <= J0)
                & np.all(np.isfinite(pt3) | (pt2 == _NEG), axis=1))
        # the bound grows 4x after an accepted step at the bound, shrinks 4x after a rejected one (a trust region:
        # near a critical beta the unbounded step is ~1e3-1e4 times the plain one and nearly always rejected)
        at_bound = alpha[:, 0] <= -step_max
        step_max = np.where(good, np.where(at_bound, 4 * step_max, step_max), np.maximum(1.0, step_max / 4))
        pt0 = np.where(good[:, None], pt3, pt2)
        dec0 = np.where(good[:, None, None], dec3, dec2)
    return out
