"""The |Y| = 2 certificate of :mod:`ibtheory.ib.certify` for many solutions at once (private).

Exactly the branch and bound of ``_certify_1d._bound_1d`` (same vertices, same cell bounds, same refinement and stopping
rules, hence the same rigour), run on all problems together: every interval cell carries the index of its problem
(its beta and tangent plane a), so one numpy call bounds or refines the cells of every problem, and the rounds
of the branch and bound are shared (the one difference: above ``BAND_CELLS`` (class, cluster) cells the tangent
plane's ln Z(x) is summed over each row's band of clusters, see :func:`_plane`).  |Y| = 3 problems and degenerate
ones (a single class) fall back to :func:`ibtheory.ib.certify.certify_state` one by one.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..info import LN2
from ._certify_1d import _GRID_1D, Certificate, _bounds_1d, _first_by, _gibbs_values, _image, _plane
from ._problem import Reduced
from .certify import certify_state

__all__ = ["certify_many"]

def _cell_bounds(A, w, beta, sL, sR, lL, lR):
    """``_certify_1d._bounds_1d`` with a tangent plane (row of A) and a beta per cell."""
    return _bounds_1d(A, w, beta, sL, sR, lL, lR, np.isfinite(lL), np.isfinite(lR))


def _improve_lower(lower, q_best, P, vals, q):
    """Per problem, the best Gibbs value found so far and its q (the ``_certify_1d._best`` update, vectorised)."""
    j = _first_by(P, vals, lower.size)
    for k in np.flatnonzero((j >= 0) & (vals[np.maximum(j, 0)] > lower)):
        lower[k], q_best[k] = float(vals[j[k]]), q[j[k]]


def certify_many(prob: Reduced, betas: Sequence[float], solutions: Sequence, target: float = 2e-8,
                 max_rounds: int = 60, max_points: int = 20000) -> list[Certificate]:
    """``[certify_state(prob, b, s, target, max_rounds, max_points) for b, s in zip(betas, solutions)]`` (no warm
    starts), computed together for |Y| = 2; above ``BAND_CELLS`` the tangent plane's ln Z is summed over bands
    (:func:`_plane`: the full sum's to 1e-24 nats; any plane gives a rigorous bound)."""
    betas = [float(b) for b in betas]
    if prob.n_y != 2 or prob.n_s < 2:
        return [certify_state(prob, b, s, target, max_rounds, max_points)
                for b, s in zip(betas, solutions, strict=True)]
    W = prob.W
    Wt = W[:, 1:]
    w = Wt[:, 0]
    n_p = len(betas)
    beta = np.asarray(betas)
    planes = [_plane(prob, b, s) for b, s in zip(betas, solutions, strict=True)]
    a = np.stack([p[0] for p in planes])  # (n_p, n)
    lams = [np.unique(np.concatenate([p[2], _GRID_1D, [0.0]])) for p in planes]
    P = np.concatenate([np.full(lam.size, i) for i, lam in enumerate(lams)])
    lam = np.concatenate(lams)
    s = _image(a[P], Wt, lam[:, None])[:, 0]
    lower = np.full(n_p, -np.inf)
    q_best: list = [None] * n_p
    _improve_lower(lower, q_best, P, *_gibbs_values(a[P], Wt, W, beta[P], lam[:, None]))
    # vertices per problem: the images s(lambda), plus the hull's ends with infinite lambda; sorted, distinct
    # (ties in s keep the first of [min W_1, s(lambda) by decreasing lambda, max W_1], as _certify_1d._bound_1d)
    pos = np.concatenate([lams[i].size - np.arange(lams[i].size) for i in range(n_p)]
                         + [np.zeros(n_p), np.array([lams[i].size + 1 for i in range(n_p)])])
    Pv = np.concatenate([P, np.arange(n_p), np.arange(n_p)])
    sv = np.concatenate([s, np.full(n_p, w.min()), np.full(n_p, w.max())])
    lv = np.concatenate([lam, np.full(n_p, np.inf), np.full(n_p, -np.inf)])
    order = np.lexsort((pos, sv, Pv))
    Pv, sv, lv = Pv[order], sv[order], lv[order]
    keep = np.r_[True, (Pv[1:] != Pv[:-1]) | (np.diff(sv) > 0)]
    Pv, sv, lv = Pv[keep], sv[keep], lv[keep]
    pair = Pv[1:] == Pv[:-1]
    Pc, sL, sR, lL, lR = Pv[:-1][pair], sv[:-1][pair], sv[1:][pair], lv[:-1][pair], lv[1:][pair]
    U, leq = _cell_bounds(a[Pc], w, beta[Pc], sL, sR, lL, lR)
    active = np.ones(n_p, bool)
    rounds = 0
    while True:
        thr = np.maximum(target, lower) + 0.25 * target
        bad = (U > thr[Pc]) & active[Pc] & (np.bincount(Pc, minlength=n_p) <= max_points)[Pc]
        if not bad.any() or rounds >= max_rounds:
            break
        rounds += 1
        Pb, new_l = Pc[bad], leq[bad]
        new_s = _image(a[Pb], Wt, new_l[:, None])[:, 0]
        _improve_lower(lower, q_best, Pb, *_gibbs_values(a[Pb], Wt, W, beta[Pb], new_l[:, None]))
        inside = (new_s > sL[bad]) & (new_s < sR[bad])
        has_bad = np.bincount(Pb, minlength=n_p) > 0
        active &= ~has_bad | (np.bincount(Pb, weights=inside, minlength=n_p) > 0)  # stuck problems stop, as alone
        inside &= active[Pb]
        if not inside.any():
            continue
        idx = np.flatnonzero(bad)[inside]
        ns, nl, nP = new_s[inside], new_l[inside], Pb[inside]
        nPc = np.concatenate([nP, nP])
        nsL, nsR = np.concatenate([sL[idx], ns]), np.concatenate([ns, sR[idx]])
        nlL, nlR = np.concatenate([lL[idx], nl]), np.concatenate([nl, lR[idx]])
        nU, nleq = _cell_bounds(a[nPc], w, beta[nPc], nsL, nsR, nlL, nlR)
        rest = np.ones(sL.size, bool)
        rest[idx] = False
        Pc = np.concatenate([Pc[rest], nPc])
        sL, sR = np.concatenate([sL[rest], nsL]), np.concatenate([sR[rest], nsR])
        lL, lR = np.concatenate([lL[rest], nlL]), np.concatenate([lR[rest], nlR])
        U, leq = np.concatenate([U[rest], nU]), np.concatenate([leq[rest], nleq])
    out = []
    thr = np.maximum(target, lower) + 0.25 * target
    for i in range(n_p):
        mine = Pc == i
        Ui = U[mine]
        g_up = float(max(Ui.max(), lower[i]))
        near = np.argsort(-Ui)[:32]
        warm = np.concatenate([lL[mine][near], lR[mine][near]])
        warm = np.unique(warm[np.isfinite(warm)])[:, None]
        gap = max(planes[i][1] + g_up, 0.0) / LN2
        out.append(Certificate(gap, g_up, float(lower[i]), planes[i][1], q_best[i], int(mine.sum()),
                               bool(not (Ui > thr[i]).any()), warm / beta[i]))
    return out
