"""Steps shared by the IB curve and the solver: warm-started solves, cluster splitting, certification with
polishing and re-seeding (private).

``certify_and_improve`` is what makes every reported point certified: it computes the certificate
(``ibtheory.ib.certify``); while the gap exceeds ``gap_tol`` it polishes the fixed point (Newton, then SQUAREM),
re-seeds a cluster at the certificate's maximiser when a Gibbs witness shows a better solution exists, and as a last
resort restarts from the identity encoder.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import numpy as np

from ..info import LN2
from . import _batch as bt
from . import _iterate as it
from ._certify_batch import certify_many
from ._solution import IBSolution, first_lower, solution_from_state
from .certify import certify_state, seed_cluster

__all__ = ["split", "solve_from", "solve_many", "state_of", "polish", "certify_and_improve", "certify_all",
           "from_neighbours", "better"]


def split(state: it.State, rng: np.random.Generator, eps: float) -> it.State:
    """Every cluster doubled, the copies' log-decoders moved by +-eps along a seeded random direction."""
    n_t, n_y = state.log_dec.shape
    z = rng.standard_normal((n_t, n_y))
    ld = np.concatenate([state.log_dec + eps * z, state.log_dec - eps * z])
    ld -= it.lse(ld, axis=1)[:, None]
    lp = np.concatenate([state.log_pt, state.log_pt]) - LN2
    return it.State(lp, ld)


def solve_from(prob, beta, state, tol, max_iter, loose_merge: float = 1e-4) -> tuple[IBSolution, it.State]:
    """Converge from ``state``; then merge clusters whose decoders are within ``loose_merge`` if, re-converged,
    that does not raise the objective (near-duplicates left by splitting or slow merging)."""
    st, n, res = it.converge(prob, beta, state, tol, max_iter)
    cand = it.prune_merge(st, merge_tol=loose_merge)
    if cand.log_pt.size < st.log_pt.size:
        st2, n2, res2 = it.converge(prob, beta, cand, tol, max_iter)
        n += n2
        if st2.J <= st.J + 1e-13 * max(1.0, abs(st.J)):
            st, res = st2, res2
    return solution_from_state(prob, beta, st, n, res, tol), it.prune_merge(st)


def _converge_many(prob, betas, states, tol, max_iter):
    """:func:`ibtheory.ib._iterate.converge` for many problems at once (batched fixed points)."""
    out = bt.batch_fixed_point(prob, betas, states, tol, max_iter)
    merged = [it.prune_merge(st) for st, _, _ in out]
    redo = [i for i, m in enumerate(merged) if m.log_pt.size < out[i][0].log_pt.size]
    if redo:
        budget = np.array([max(1, max_iter - out[i][1]) for i in redo])
        again = bt.batch_fixed_point(prob, np.asarray(betas)[redo], [merged[i] for i in redo], tol, budget)
        for i, (st, n2, res) in zip(redo, again, strict=True):
            out[i] = (st, out[i][1] + n2, res)
    return out


def solve_many(prob, betas, states, tol, max_iter, loose_merge: float = 1e-4) -> list[tuple[IBSolution, it.State]]:
    """:func:`solve_from` for many (beta, state) pairs at once; same results up to rounding."""
    betas = np.asarray(betas, dtype=np.float64)
    out = _converge_many(prob, betas, states, tol, max_iter)
    cands = [it.prune_merge(st, merge_tol=loose_merge) for st, _, _ in out]
    redo = [i for i, c in enumerate(cands) if c.log_pt.size < out[i][0].log_pt.size]
    if redo:
        again = _converge_many(prob, betas[redo], [cands[i] for i in redo], tol, max_iter)
        for i, (st2, n2, res2) in zip(redo, again, strict=True):
            st, n, res = out[i]
            out[i] = (st2, n + n2, res2) if st2.J <= st.J + 1e-13 * max(1.0, abs(st.J)) else (st, n + n2, res)
    return [(solution_from_state(prob, b, st, n, res, tol), it.prune_merge(st))
            for b, (st, n, res) in zip(betas, out, strict=True)]


def state_of(sol: IBSolution) -> it.State:
    """The iteration state (ln p(t), ln p(y|t)) of a solution."""
    with np.errstate(divide="ignore"):
        return it.State(np.log(sol.p_t), np.log(sol.decoder))


def polish(prob, best, cert, tol, gap_tol, warm):
    """Bring a loosely converged point to residual 1e-13 when its gap exceeds ``gap_tol`` (a first-order
    tangency error from stopping on a stalled objective): Newton's method first, then the accelerated map, a longer
    second round only for points still far off."""
    for budget in (0, 3000, 20000):
        if not (cert.gap > gap_tol and best.residual >= 1e-13) or (budget > 3000 and cert.gap <= 4 * gap_tol):
            break
        if budget == 0:  # Newton first: immune to the critical slowing down of the plain map
            st, n, res = it.newton_polish(prob, best.beta, state_of(best))
        else:
            st, n, res = it.fixed_point(prob, best.beta, state_of(best), 1e-13, budget, obj_tol=1e-16,
                                        remaining_tol=1e-14)
        polished = solution_from_state(prob, best.beta, st, best.iterations + n, res, tol)
        cert2 = certify_state(prob, best.beta, polished, warm=warm)
        if cert2.gap < cert.gap:
            cert, best = cert2, replace(polished, gap=cert2.gap)
    return best, cert


def certify_and_improve(prob, sol, tol, max_iter, gap_tol, warm=None, max_seeds=6):
    """Certify ``sol``; while the gap exceeds ``gap_tol``: polish, then re-solve with a cluster seeded at the
    certificate's maximiser (only on a clearly positive witness), and as a last resort start afresh.

    Returns (best solution with its ``gap``, its certificate).
    """
    cert = certify_state(prob, sol.beta, sol, warm=warm)
    best = replace(sol, gap=cert.gap)
    if not cert.converged and prob.n_y > 2:
        # the branch and bound ran out of budget (|Y| = 3 near the hull's corners): the gap is a valid but loose
        # bound, and re-solving cannot tighten it
        return best, cert
    for _ in range(max_seeds):
        best, cert = polish(prob, best, cert, tol, gap_tol, warm)
        # re-seed only on evidence of a better solution: a q whose value phi(q) - a.q is clearly positive
        if cert.gap <= gap_tol or cert.g_lower <= 0.25 * gap_tol * LN2:
            break
        # the new cluster's best weight is unknown (often small): try weights until one lowers the Lagrangian
        # (the last pair: a cluster of light rows, as light as the maximiser's own mass)
        groups = ((0.01, 0.001), (0.1, 1e-4), (1e-6, float(cert.q_star @ prob.p_s)))
        trial, weak = first_lower(
            (min((solve_from(prob, sol.beta, seed_cluster(prob, best, cert, m), tol, min(max_iter, 600))[0]
                  for m in masses), key=lambda c: c.lagrangian) for masses in groups),
            lambda c: c.lagrangian, best.lagrangian)
        if trial is None:  # lower only within rounding: kept if its certificate is 2x tighter
            if weak is None:
                break
            c_w = certify_state(prob, sol.beta, weak, warm=warm)
            if not c_w.gap < 0.5 * cert.gap:
                break
            cert, best = c_w, replace(weak, gap=c_w.gap)
            continue
        cert = certify_state(prob, sol.beta, trial, warm=warm)
        best = replace(trial, gap=cert.gap)
    if cert.gap > 4 * gap_tol:
        # last resort: a fresh start from the identity encoder (the annealed path may sit on a slow saddle)
        fresh, _ = solve_from(prob, sol.beta, it.from_encoder(prob, np.eye(prob.n_s)), tol, max_iter)
        cert2 = certify_state(prob, sol.beta, fresh, warm=warm)
        fresh, cert2 = polish(prob, replace(fresh, gap=cert2.gap), cert2, tol, gap_tol, warm)
        if cert2.gap < cert.gap and fresh.lagrangian <= best.lagrangian + best.gap:
            cert, best = cert2, fresh
    if cert.gap > gap_tol:  # what the repairs left: tightened over light rows (``certify_state``)
        cert2 = certify_state(prob, sol.beta, best, warm=warm, tighten=True)
        if cert2.gap < cert.gap:
            cert, best = cert2, replace(best, gap=cert2.gap)
    return best, cert


def certify_all(prob, sols: dict, tol, max_iter, gap_tol) -> None:
    """Certify every solution of ``sols`` (beta -> IBSolution, replaced in place by the certified best).

    The same steps as :func:`certify_and_improve` applied point by point, batched: all certificates at once
    (``_certify_batch.certify_many``), then for the points whose gap exceeds ``gap_tol`` two rounds of batched
    SQUAREM to residual 1e-13 (3000, then 20000 map evaluations, the second only for gaps still above 4
    ``gap_tol``), each round re-certified together, and the full :func:`certify_and_improve` (Newton, re-seeding,
    fresh start) only for the few points still above ``gap_tol``.  (Newton on every loose point first, as the
    one-point path does, cost more than it saved once the batched SQUAREM bounds its step length.)
    """
    betas = sorted(sols)
    certs = dict(zip(betas, certify_many(prob, betas, [sols[b] for b in betas]), strict=True))
    for b in betas:
        sols[b] = replace(sols[b], gap=certs[b].gap)

    def loose(b, limit):
        return certs[b].gap > limit and sols[b].residual >= 1e-13

    def keep_better(todo, results):
        polished = [solution_from_state(prob, b, st, sols[b].iterations + n, res, tol)
                    for b, (st, n, res) in zip(todo, results, strict=True)]
        for b, sol, cert in zip(todo, polished, certify_many(prob, todo, polished), strict=True):
            if cert.gap < certs[b].gap:
                certs[b], sols[b] = cert, replace(sol, gap=cert.gap)

    for budget, limit in ((3000, gap_tol), (20000, 4 * gap_tol)):
        todo = [b for b in betas if loose(b, limit)]
        if todo:
            keep_better(todo, bt.batch_fixed_point(prob, todo, [state_of(sols[b]) for b in todo], 1e-13, budget,
                                                   obj_tol=1e-16, remaining_tol=1e-14))
    for i, b in enumerate(betas):
        if certs[b].gap > gap_tol:
            prev = certs[betas[i - 1]].lambdas if i else None
            sols[b], certs[b] = certify_and_improve(prob, sols[b], tol, max_iter, gap_tol, prev)
    _from_neighbours(prob, betas, sols, certs, tol, max_iter, gap_tol)


def from_neighbours(n: int, gap: Callable[[int], float], resolve: Callable[[int, int], bool], gap_tol: float,
                    sweeps: int) -> None:
    """Re-solve every point ``i`` of ``n`` (in order of beta) whose ``gap(i)`` exceeds ``gap_tol`` from a certified
    neighbour ``j`` (the next beta first: annealing upward lags behind first-order transitions) by ``resolve(i, j)``
    (which keeps the better certified point and says whether it changed it); a few sweeps, since a repaired point
    can repair its neighbour.  Shared by both paths' certified curves."""
    for _ in range(sweeps):
        changed = False
        for i in [k for k in range(n) if gap(k) > gap_tol]:
            for j in (i + 1, i - 1):
                if not 0 <= j < n or gap(j) > gap_tol:
                    continue
                changed = resolve(i, j) or changed
                if gap(i) <= gap_tol:
                    break
        if not changed:
            return


def _from_neighbours(prob, betas, sols: dict, certs: dict, tol, max_iter, gap_tol, sweeps: int = 2) -> None:
    """:func:`from_neighbours` on the annealed path's solutions (``sols``, ``certs``: beta -> solution,
    certificate; in place), each re-solve polished and certified.  Near a critical beta of a 6 x 2 table with zero
    cells the repairs above had left a point 1.0e-5 bits above the forward path's, at a 2.3e-5-bit gap."""
    def resolve(i: int, j: int) -> bool:
        b, warm = betas[i], certs[betas[j]].lambdas
        cand, _ = solve_from(prob, b, state_of(sols[betas[j]]), tol, max_iter)
        cand, cert = polish(prob, cand, certify_state(prob, b, cand, warm=warm), tol, gap_tol, warm)
        if cert.gap < certs[b].gap and cand.lagrangian <= sols[b].lagrangian + 1e-12:
            sols[b], certs[b] = replace(cand, gap=cert.gap), cert
            return True
        return False

    from_neighbours(len(betas), lambda i: certs[betas[i]].gap, resolve, gap_tol, sweeps)


def better(a: IBSolution | None, b: IBSolution) -> IBSolution:
    """The solution with the lower Lagrangian (``a`` on ties within 1e-14 bits)."""
    return b if a is None or b.lagrangian < a.lagrangian - 1e-14 else a
