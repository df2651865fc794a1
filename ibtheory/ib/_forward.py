"""The IB curve by forward annealing with splits predicted by linear stability (private; used by ``ib_curve``).

From the smallest beta up, starting at one cluster, each solution warm-starts the next.  A cluster t is split only
when the theory says it has become unstable: duplicating t into two half-weight copies whose decoders differ by
+-eps v, one application of the IB map multiplies v by beta M_t, with

    M_t[y, y'] = sum_x p(x|t) p(y|x) p(y'|x) / p(y'|t),

whose top eigenvalue 1 belongs to v = p(y|t) (no change of the decoders).  The copies separate iff beta rho_t^2 > 1,
rho_t^2 the second eigenvalue of M_t: the squared maximal (Hirschfeld-Gebelein-Renyi) correlation of X and Y under
p(x|t) p(y|x) (the second variation of the Lagrangian changes sign there; Zaslavsky & Tishby 2019, Wu & Fischer
2020, Gedeon, Parker & Dimitrov 2012).  For the one-cluster solution this is the trivial critical beta
1/rho_m^2.  So the number of clusters grows only as the solution needs them: the work per map evaluation is
O(|S| K), K the clusters carrying mass, never |S|^2.

A split predicted this way is a supercritical (continuous) bifurcation at beta_c = 1 / rho_t^2(beta_c); its value is
found by iterating beta <- 1 / rho_t^2(beta) on the unsplit branch from the last stable beta (a few warm-started
solves), and reported with the last step's relative change as its precision.  A transition the stability test
cannot see (a first-order one, where a new cluster appears with finite weight) is caught by the certificate: its
maximiser q* seeds a new cluster, and the transition is reported at the geometric midpoint of the grid bracket, the
bracket's half-width as its precision.

|Y| > 2 (uncertified).  Forward annealing alone lands in worse local optima there (on random 200 x 6 tables up to
3e-2 bits above the annealed path): with many labels a cluster's p(x|t) turns bimodal long before it turns
unstable.  So the curve is the lower Lagrangian per beta of two sweeps:

- a reverse sweep (:func:`_reverse`, reverse annealing as ``curve.anneal``: from one cluster per class at the
  largest beta down, clusters merged as their decoders meet), which stops after the first beta whose support holds
  more than ``REVERSE_PAIRS`` pairs (at large beta it is the identity encoder and nearly free; below, its
  ~|S| clusters would make every map O(|S|^2)); its sparse support is carried to the next beta when the bound of
  ``ibtheory.ib._carry.lowered`` leaves enough of the cut (a k-d tree search saved), and
- the upward sweep above, from the smallest beta to where the reverse sweep stopped (to the largest beta when it
  did not), as for |Y| = 2 (15 map evaluations, then Newton's method, :mod:`ibtheory.ib._newton_multi`, where its
  dense K |Y| Hessian costs less than the maps; else the map to convergence) but each split's critical beta the
  first secant guess 1 / rho_t^2 (no solves);
  below the reverse sweep, where the upward point is worse than T = S itself, ``IDENTITY_BUDGET`` map
  evaluations from T = S (each lowers the Lagrangian) replace it.

Small points (|S| x clusters <= ``SPARSE_CELLS``) are then checked for two witnesses of a better solution that
need no certificate (:func:`_vertex_repairs`): a zero in p(y|t), which the map can never raise, and rows whose
vertex sticks out of the tangent plane (a first-order transition both sweeps missed); certified |Y| = 3 curves too,
before their certificates (a trapped zero defeats the repairs seeded at the certificate's maximiser).

A repair (:func:`_improve`, certified points) seeds a cluster at the certificate's maximiser with a few weights,
as light as the maximiser's own mass where it sits on light rows, one cluster after another while each lowers the
Lagrangian (up to ``REPAIR_ROUNDS``); what the repairs leave above ``gap_tol`` gets the certificate tightened over
light rows (``ibtheory.ib.certify.certify_state(tighten=True)``).

For |Y| = 2, above ``BAND_CELLS`` = |S| x clusters, the map, each point's encoder and Newton's method run on bands
(``ibtheory.ib._band``: per row the run of clusters, in the order of p(y=1|t), within a cut of its largest
weight).  For |Y| > 2, above ``SPARSE_CELLS``, the map runs on a sparse support (``ibtheory.ib._iterate.support``):
per class only the clusters whose weight is within e^-30 of its largest, so work and memory are O(pairs), never
|S|^2, and at most ``MAX_NNZ`` pairs are kept (dense up to ``DENSE_CELLS`` when the support would hold more than
``DENSE_SHARE`` of the pairs).  On a support the fixed point alternates sweeps of the full map with phases on the
clusters that still move (``ibtheory.ib._active``), and a support is carried over a prune or merge
(``ibtheory.ib._carry``: while at most ``DRIFT`` nats of its cut are spent; the clusters that moved far have
their pairs found again).  On tables small enough to stay dense the reverse sweep is the annealed path's, step for
step, so the curve is never above it.

References
----------
1. N. Zaslavsky and N. Tishby, "Deterministic annealing and the evolution of information bottleneck
   representations", 2019.
2. T. Wu and I. Fischer, "Phase transitions for the information bottleneck in representation learning", ICLR 2020.
3. T. Gedeon, A. E. Parker and A. G. Dimitrov, "The mathematical structure of information bottleneck methods",
   Entropy 14 (2012) 456-479.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import numpy as np
from scipy.sparse import csr_matrix
from threadpoolctl import threadpool_limits

from ..info import LN2, entropy, kl_matrix, mi_of_cells, mi_of_joint
from . import _iterate as it
from ._active import active_fixed_point
from ._band import BAND_CELLS, band_support
from ._carry import DRIFT, drift, lowered, refreshed, remapped, row_best
from ._certify_line import certify_line, certify_lines
from ._improve import from_neighbours
from ._newton import newton
from ._newton_multi import applies as newton_applies
from ._newton_multi import newton_multi
from ._problem import Reduced
from ._solution import _measures, clearly_lower, first_lower
from .certify import LINE_ROWS, certify_state, light_hope, seed_cluster

__all__ = ["Point", "cluster_correlations", "fill_steep", "forward_curve", "SPARSE_CELLS", "MAX_NNZ", "REVERSE_PAIRS"]

#: |Y| > 2: |S| x clusters above which the map runs on a sparse support (``ibtheory.ib._iterate.support``) unless
#: that would hold most pairs (``DENSE_SHARE``); 2^21 before: 2000 x 6 at ~900 clusters then spent 500 dense maps of
#: 17 ms a beta where rows see a few clusters each (the whole curve 480 -> 304 s with 2^16)
SPARSE_CELLS = 2**16
#: |Y| > 2: up to this many |S| x clusters cells the map stays dense when a sparse support would hold more than
#: ``DENSE_SHARE`` of the pairs (the dense map's ~6 arrays of this size: 192 MiB)
DENSE_CELLS = 2**22
DENSE_SHARE = 0.3
#: |Y| = 2: a certificate stops refining once a vertex shows g above this (nats; 72 x the default gap_tol of 2e-7
#: bits; or twice a larger gap_tol): the point is not optimal and is repaired from that vertex's Gibbs q
REPAIR_AT = 1e-5
#: weights tried in turn for a cluster seeded at a certificate's maximiser (:func:`_improve`), then the maximiser's
#: own mass q*.p(x): a missing cluster often carries 1e-5 to 1e-4 of the mass, and a heavier seed is pulled into
#: another local optimum; one of rows of p(x) ~1e-7 and below is found only from a seed about as light (where
#: q*.p(x) < 1e-6, only it, 1e-7 and 1e-4 are tried)
SEED_MASSES = (1e-4, 1e-5, 1e-3, 1e-2, 1e-7)
#: most clusters one repair (:func:`_improve`) seeds one after another, each only while the last one lowered the
#: Lagrangian (a grid that starts far above the first transition can miss ten or more)
REPAIR_ROUNDS = 24
#: rounds of a repair after which its certificate is tightened over light rows (``_settle``) and the repair stops
#: if that brings it below gap_tol
TIGHTEN_AFTER = 6
#: |Y| = 2: nats below a row's largest weight from which the final encoder of a point leaves a pair out
#: (e^-60 = 9e-27 of it)
ENCODER_CUT = 60.0
#: |Y| > 2: most pairs (s, t) a sparse support holds (~1.2 GiB at its peak with |Y| = 6; beyond, the cut is lowered)
MAX_NNZ = 2**22
#: Newton's largest |gradient| of F (nats per coordinate) at which a point counts as converged (``_polish``)
STATIONARY = 1e-9
#: |Y| > 2: map evaluations from T = S at a beta where the upward sweep's point is worse than T = S itself
IDENTITY_BUDGET = 50
#: |Y| > 2: map evaluations more for a small uncertified point still above the tolerance after the sweeps
POLISH_BUDGET = 20000
#: and at most this many (class, cluster) cells over all of them (2^24: ~0.1 s)
POLISH_CELLS = 2**24
#: |Y| > 2, uncertified: most clusters seeded at a point's protruding vertices (:func:`_vertex_repairs`), and the
#: excess (nats) below which a vertex does not count
VERTEX_ROUNDS = 4
VERTEX_MIN = 1e-9
#: share of p(y) mixed into the decoders of an uncertified |Y| > 2 point with a zero in p(y|t) before re-solving
THAW = 1e-6
#: |Y| = 2: points certified together in one batched certificate (``_certify_line.certify_lines``): the first
#: batch and after a repair, and the most while none is needed.  Only up to ``BATCH_CLASSES`` classes: there a
#: certificate's cost is mostly per-call overhead; on larger tables solves dominate and a repair would solve the
#: batch's later points twice, so they are certified one at a time.
CERTIFY_BATCH = (4, 16)
BATCH_CLASSES = 64
#: |Y| > 2: the reverse sweep stops after a beta whose sparse support holds more pairs than this (the work of a
#: dense map at ``SPARSE_CELLS``: below it, ~1e3 map evaluations per beta cost seconds)
REVERSE_PAIRS = 2**21
#: A split's copies start at most this share of the way to the nearest other cluster (``_split``)
NEIGHBOUR_SHARE = 0.25
#: |Y| > 2: map evaluations before Newton's method (``_solve``).  None for |Y| = 2, where Newton's saddle-free steps
#: and the merges after them (``LOOSE_MERGE``) do what the maps were there for: without them (7 Dec 2026, same
#: machine state) 4096 x 2 11.7-12.2 -> 11.3-11.7 s, 16,384 x 2 45 -> 39 s, 65,536 x 2 126 -> 116 s, the soft
#: task 0.77 -> 0.71 s, the Lagrangians within 1e-11 bits and the same critical betas (15 maps before, 5 above
#: 8,192 classes)
EM_STEPS = 15
#: |Y| = 2: where Newton stops short of stationarity (two copies creeping together below their critical beta:
#: their separation is a flat direction), clusters within this of each other in p(y|t) are merged and Newton run
#: again; kept when the Lagrangian is not clearly higher
LOOSE_MERGE = 1e-4


@dataclass(frozen=True)
class Point:
    """One point of the curve without its encoder (recomputed from p(t), p(y|t) and beta by the encoder equation
    when needed): the fields of :class:`~ibtheory.ib.IBSolution` that the curve reports."""

    beta: float
    p_t: np.ndarray
    decoder: np.ndarray
    I_XT: float
    I_TY: float
    lagrangian: float
    iterations: int
    residual: float
    converged: bool
    gap: float | None = None

    @property
    def n_t(self) -> int:
        return int(self.p_t.size)


def cluster_correlations(prob: Reduced, log_enc: np.ndarray, log_pt: np.ndarray, log_dec: np.ndarray,
                         support: it.Support | None = None) -> tuple[np.ndarray, np.ndarray]:
    """rho_t^2 and the split direction v_t (n_t, n_y; probability units, rows summing to 0) of every cluster.

    rho_t^2 is the second eigenvalue of the symmetrised M_t: C_t = D^{-1/2} (sum_x p(x|t) w_x w_x^T) D^{-1/2},
    D = diag p(y|t), eigenvector sqrt(p(y|t)) for 1; v_t = D^{1/2} u_t for the second eigenvector u_t.  With
    ``support`` the encoder ``log_enc`` holds the pairs of that support (``ibtheory.ib._iterate.Support``).
    """
    d = np.exp(log_dec)
    sq = np.sqrt(np.maximum(d, 1e-300))
    n_t, n_y = d.shape
    if support is not None or n_y > 2:  # sum_x p(x|t) w_x w_x^T as one (n_y^2 x n_s)(n_s x n_t) product
        WW = (prob.W[:, :, None] * prob.W[:, None, :]).reshape(prob.n_s, n_y * n_y)
        if support is None:
            px_t = np.exp(log_enc + np.log(prob.p_s)[:, None] - log_pt[None, :])
        else:
            px_t = csr_matrix((np.exp(log_enc + np.log(prob.p_s)[support.rows] - log_pt[support.cols]),
                               support.cols, support.indptr), shape=(prob.n_s, n_t))
        Mom = np.asarray((WW.T @ px_t).T).reshape(n_t, n_y, n_y)
    else:
        px_t = np.exp(log_enc + np.log(prob.p_s)[:, None] - log_pt[None, :])  # p(x|t), (n_s, n_t)
        Mom = np.einsum("st,sy,sz->tyz", px_t, prob.W, prob.W)  # sum_x p(x|t) w_x w_x^T
    Csym = Mom / (sq[:, :, None] * sq[:, None, :])
    Csym = np.where(np.isfinite(Csym), Csym, 0.0)
    # remove the known top eigenpair (1, sqrt d) and take the largest remaining eigenvalue
    Cd = Csym - sq[:, :, None] * sq[:, None, :]
    vals, vecs = np.linalg.eigh(Cd)
    rho2 = vals[:, -1]
    v = sq * vecs[:, :, -1]
    return np.clip(rho2, 0.0, 1.0), v


def _split(state: it.State, which: np.ndarray, v: np.ndarray, eps: float = 0.05) -> it.State:
    """Split the clusters ``which`` into two half-weight copies with decoders p(y|t) +- eps' v_t (eps' keeps both
    inside the simplex: at most ``eps`` of the distance to its boundary along the labels v_t moves, and at most
    ``NEIGHBOUR_SHARE`` of the way to the nearest other live cluster)."""
    which = np.asarray(which, dtype=np.int64)
    pt, dec = state.log_pt.copy(), np.exp(state.log_dec)
    vt = v[which] / np.maximum(np.abs(v[which]).max(axis=1, keepdims=True), 1e-300)
    # the room counts only labels the direction really moves (|v| > 1e-9 of its largest): a label at p(y|t) = 1e-92
    # would otherwise make the copies 1e-93 apart (they merge back at once); those labels keep at least half their
    # probability
    with np.errstate(divide="ignore", invalid="ignore"):
        room = np.min(np.where(np.abs(vt) > 1e-9, dec[which] / np.maximum(np.abs(vt), 1e-300), np.inf), axis=1)
    # and at most a quarter of the way to the nearest other live cluster (max-norm): a copy moved past the midpoint
    # to a neighbour merges into it, and the cluster is split again (4096 x 2: 161 -> 139 reported critical betas,
    # Newton calls 493 -> 430, the same Lagrangians to 4e-12 bits)
    live = np.isfinite(state.log_pt)
    live[which] = False  # a cluster is not its own neighbour (nor another being split now: its copies move too)
    gap = np.abs(dec[which][:, None, :] - dec[live][None, :, :]).max(axis=2).min(axis=1, initial=np.inf)
    step = np.minimum(eps * room, NEIGHBOUR_SHARE * gap)[:, None]
    pt[which] -= LN2
    copies = np.maximum(dec[which] - step * vt, 0.5 * dec[which])
    dec[which] = np.maximum(dec[which] + step * vt, 0.5 * dec[which])
    d = np.concatenate([dec, copies])
    with np.errstate(divide="ignore"):
        return it.State(np.concatenate([pt, pt[which]]), np.log(d / d.sum(axis=1, keepdims=True)))


def _point(prob: Reduced, beta: float, st: it.State, n: int, res: float, tol: float) -> Point:
    """The curve point of the encoder the map produced from ``st`` (clusters without mass dropped)."""
    if st.support is not None:
        p_t, dec, ixt, ity = _sparse_measures(prob, st)
    else:
        enc = np.exp(st.log_enc)
        enc /= enc.sum(axis=1, keepdims=True)
        p_t, dec, ixt, ity = _measures(prob, enc)
    keep = p_t > 0
    return Point(float(beta), p_t[keep], dec[keep], ixt, ity, ixt - beta * ity, int(n), float(res),
                 bool(res < tol or st.converged))


def _sparse_measures(prob: Reduced, st: it.State) -> tuple[np.ndarray, np.ndarray, float, float]:
    """p(t), p(y|t), I(S;T) and I(T;Y) in bits (clipped at 0) of an encoder given on the pairs of a support."""
    sup = st.support
    enc = np.exp(st.log_enc)
    enc /= np.add.reduceat(enc, sup.indptr[:-1])[sup.rows]
    joint = prob.p_s[sup.rows] * enc
    p_t = np.bincount(sup.cols, weights=joint, minlength=sup.n_t)
    joint_ty = (prob.W.T @ csr_matrix((joint, sup.cols, sup.indptr), shape=(prob.n_s, sup.n_t))).T
    with np.errstate(divide="ignore", invalid="ignore"):  # empty clusters (p(t) = 0) are dropped by the caller
        dec = joint_ty / p_t[:, None]
    pos = joint > 0
    ixt = mi_of_cells(joint[pos], prob.p_s[sup.rows[pos]], p_t[sup.cols[pos]])
    return p_t, dec, max(ixt, 0.0), max(mi_of_joint(joint_ty, p_t, prob.p_y), 0.0)


def _state(p: Point) -> it.State:
    with np.errstate(divide="ignore"):
        return it.State(np.log(p.p_t), np.log(p.decoder))


def _slim(st: it.State) -> it.State:
    """``st`` without its encoder and support: what a kept state needs to warm-start a solve (a point's encoder on
    its support would hold ~40 B per pair for every beta of the curve)."""
    return it.State(st.log_pt, st.log_dec)


def _kernel(prob: Reduced, beta: float, st: it.State, cut: float = it.SPARSE_CUT) -> it.Support | None:
    """The sparse support the map of ``st`` runs on, or None (dense): for |Y| = 2 the exact band of the clusters
    within ``cut`` nats of each row's largest (:func:`ibtheory.ib._band.band_support`) above ``BAND_CELLS`` =
    |S| x n_t; for |Y| > 2 :func:`ibtheory.ib._iterate.support` above ``SPARSE_CELLS``."""
    cells = prob.n_s * st.log_pt.size
    if prob.n_y == 2:
        return band_support(prob, beta, st.log_pt, st.log_dec, cut) if cells > BAND_CELLS else None
    if cells <= SPARSE_CELLS:
        return None
    sup = it.support(prob, beta, st.log_pt, st.log_dec, cut, max_nnz=MAX_NNZ)
    # a support holding most pairs (small beta, soft clusters) costs ~3x the dense map per pair
    return None if cells <= DENSE_CELLS and sup.nnz > DENSE_SHARE * cells else sup


def _converge(prob, beta, state: it.State, tol, max_iter, encoder: bool = True,
              sup: it.Support | None = None) -> tuple[it.State, int, float]:
    """:func:`ibtheory.ib._iterate.converge` on the kernel of :func:`_kernel` (the same when dense): converge,
    drop clusters without mass and merge coinciding ones, converge again if that removed clusters.  On a sparse
    support built for the starting state, pairs left out are ``SPARSE_CUT`` below their row's best; once the
    clusters have moved by more than ``DRIFT`` - used / 2 nats (``ibtheory.ib._carry.drift``) one more map
    evaluation, on a support of the final state (the old one refreshed, ``ibtheory.ib._carry.refreshed``, else a
    new search), gives the encoder (not when ``encoder`` is False: a caller that solves on from here).  So every
    pair left out weighs less than e^-(30 - 2 x 2.5) of its row's largest.  After a prune or merge the support is
    carried over when it can be (:func:`_carried`), and ``sup`` gives the starting state's support when the caller
    has it."""
    st, n, res = _fixed_point(prob, beta, state, tol, max_iter, sup if sup is not None else _kernel(prob, beta, state))
    merged, where = it.prune_merge(st, min_pt=min(1e-13, 0.5 * float(prob.p_s.min())), mapping=True)
    if merged.log_pt.size < st.log_pt.size:
        sup = _carried(prob, beta, st, merged, where)
        st, n2, res = _fixed_point(prob, beta, merged, tol, max(1, max_iter - n), sup)
        n += n2
    if encoder and st.support is not None and not drift(beta, st, st.support) <= DRIFT - st.support.used / 2:
        old, sup = st.support, None
        if prob.n_y > 2:  # (a |Y| = 2 band is found anew: its own search is cheap)
            with np.errstate(divide="ignore", invalid="ignore"):
                best = row_best(old, beta, old.log_pt, old.log_dec)
                sup = refreshed(prob, beta, old, best, st.log_pt, st.log_dec)
        sup = sup if sup is not None else _kernel(prob, beta, st)
        _, _, enc, J = _map_once(prob, beta, st, sup)
        st = it.State(st.log_pt, st.log_dec, enc, J, st.converged, sup)
        n += 1
    return st, n, res


def _carried(prob, beta, st: it.State, merged: it.State, where: np.ndarray) -> it.Support | None:
    """The support for ``merged`` (``st`` pruned and merged, ``where`` its map of clusters): for |Y| > 2 ``st``'s
    support carried over when that spends at most ``DRIFT`` nats of its cut (``ibtheory.ib._carry.remapped``),
    else :func:`_kernel` (a new search)."""
    sup = remapped(prob, beta, st, merged, where)
    return sup if sup is not None else _kernel(prob, beta, merged)


def _fixed_point(prob, beta, state: it.State, tol, max_iter, sup: it.Support | None):
    """The fixed point from ``state``: on a |Y| > 2 sparse support with active-set phases
    (:func:`ibtheory.ib._active.active_fixed_point`), else :func:`ibtheory.ib._iterate.fixed_point`."""
    if sup is not None and prob.n_y > 2:
        return active_fixed_point(prob, beta, state, tol, max_iter, sup)
    return it.fixed_point(prob, beta, state, tol, max_iter, support=sup)


def _map_once(prob, beta, st: it.State, sup: it.Support | None):
    """One map evaluation G from ``st``, dense or on ``sup``: (ln p(t)', ln p(y|t)', the encoder, J) as
    :func:`ibtheory.ib._iterate.step`."""
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        if sup is None:
            return it.step(prob, beta, st.log_pt, st.log_dec, prob.neg_entropy_rows, np.log(prob.p_s))
        return it.sparse_step(prob, beta, st.log_pt, st.log_dec, sup)


def _solve_multi(prob, beta, state, tol, max_iter, loose_merge: float | None = 1e-4,
                 sup: it.Support | None = None) -> tuple[Point, it.State]:
    """|Y| > 2: :func:`_converge` (from ``sup`` when given); then, like ``ibtheory.ib._improve.solve_from``, merge
    clusters whose decoders are within ``loose_merge`` (None: not) if, re-converged, that does not raise the
    objective J."""
    st, n, res = _converge(prob, beta, state, tol, max_iter, sup=sup)
    cand, where = it.prune_merge(st, merge_tol=loose_merge, mapping=True) if loose_merge is not None else (st, None)
    if cand.log_pt.size < st.log_pt.size:
        st2, n2, res2 = _converge(prob, beta, cand, tol, max_iter, sup=_carried(prob, beta, st, cand, where))
        n += n2
        if st2.J <= st.J + 1e-13 * max(1.0, abs(st.J)):
            st, res = st2, res2
    return _point(prob, beta, st, n, res, tol), st


def _solve(prob, beta, state, tol, max_iter, em_steps: int | None = None, coarse: bool = True,
           repair: bool = False) -> tuple[Point, it.State]:
    """Converge, then drop clusters without mass and merge coinciding ones (:func:`_converge`).  The map runs only
    ``em_steps`` evaluations (it settles the cluster structure and merges; default ``EM_STEPS`` for |Y| > 2, none
    for |Y| = 2) and Newton's method finishes
    (:mod:`ibtheory.ib._newton`, for |Y| > 2 :mod:`ibtheory.ib._newton_multi`); one more map evaluation gives the
    encoder.  For |Y| > 2 beyond Newton's reach (``NEWTON_DIM`` coordinates, or a decoder with a zero) the map
    goes on to convergence instead (:func:`_solve_multi`, no loose merging: that is for the reverse sweep), from
    the start when the starting state already has too many clusters for it.  ``repair``: Newton's reach for a
    repair (``ibtheory.ib._newton_multi.applies``)."""
    if prob.n_y != 2 and state.log_pt.size > 1 and not newton_applies(prob, state.log_pt.size, repair):
        return _solve_multi(prob, beta, state, tol, max_iter, loose_merge=None)
    if em_steps is None:
        em_steps = 0 if prob.n_y == 2 else EM_STEPS
    st, n, _ = _converge(prob, beta, state, tol, min(em_steps, max_iter), encoder=False) if em_steps else \
        (state, 0, 0.0)
    done = _polish(prob, beta, st, n, tol, coarse, repair)
    if done is not None:
        return done
    p, st2 = _solve_multi(prob, beta, st, tol, max(1, max_iter - n), loose_merge=None)
    return replace(p, iterations=p.iterations + n), st2


def _local_newton(prob, beta, log_pt, log_dec, coarse: bool = True, repair: bool = False):
    """Newton's method for this |Y| (None where :func:`ibtheory.ib._newton_multi.newton_multi` does not apply).  One
    cluster in closed form: F = beta sum_x p(x) KL[p(y|x) || d] is least at d = p(y) (Newton has no curvature in
    its weight coordinate there)."""
    if log_pt.size == 1:
        with np.errstate(divide="ignore"):
            return np.zeros(1), np.log(prob.p_y)[None, :], 0, 0.0
    if prob.n_y == 2:
        return newton(prob, beta, log_pt, log_dec, coarse=coarse)
    return newton_multi(prob, beta, log_pt, log_dec, repair=repair)


def _polish(prob, beta, st: it.State, n: int, tol: float, coarse: bool = True,
            repair: bool = False) -> tuple[Point, it.State] | None:
    """Newton from ``st``, prune and merge, Newton again if that removed clusters; one map evaluation gives the
    encoder.  None when Newton does not apply (|Y| > 2 only).  The point counts as converged when the map's residual
    is below ``tol`` or Newton's gradient is below ``STATIONARY`` (F stationary to its rounding: the map's residual
    can stay larger where a tiny cluster's decoder is barely determined).  |Y| = 2 short of that: see
    ``LOOSE_MERGE``."""
    def newton_from(start: it.State) -> tuple[it.State, int, float] | None:
        """Newton from ``start``, then one map evaluation: (the state with its encoder and ``converged`` flag,
        Newton's evaluations, the map's residual); None where Newton does not apply."""
        out = _local_newton(prob, beta, start.log_pt, start.log_dec, coarse, repair)
        if out is None:
            return None
        lp, ld, evals, g = out
        st2, _, res = _encode(prob, beta, it.State(lp, ld))
        st2.converged = bool(g <= STATIONARY)
        return st2, evals, res

    done = newton_from(st)
    if done is None:
        return None
    st2, evals, res = done
    merged = it.prune_merge(st2)
    if merged.log_pt.size < st2.log_pt.size:
        done = newton_from(merged)
        if done is None:
            return None
        st2, more, res = done
        evals += more
    point = _point(prob, beta, st2, n + evals + 1, res, tol)
    if not st2.converged and prob.n_y == 2:  # copies creeping together: merged, if that is no worse
        loose = it.prune_merge(st2, merge_tol=LOOSE_MERGE)
        if loose.log_pt.size < st2.log_pt.size:
            st3, more, res3 = newton_from(loose)
            p3 = _point(prob, beta, st3, point.iterations + more + 1, res3, tol)
            if not clearly_lower(point.lagrangian, p3.lagrangian):
                return p3, st3
    return point, st2


def _encode(prob, beta, st: it.State) -> tuple[it.State, int, float]:
    """One map evaluation from ``st``: ``st`` with the encoder it gives (on the pairs within ``ENCODER_CUT`` nats
    of each row's largest weight: the band above ``BAND_CELLS`` for |Y| = 2, the sparse support above
    ``SPARSE_CELLS`` for |Y| > 2), 1 (map evaluations) and the residual max |G(theta) - theta| (probabilities)."""
    sup = _kernel(prob, beta, st, ENCODER_CUT)
    pt1, dec1, enc, J = _map_once(prob, beta, st, sup)
    res = it.distance(pt1, dec1, st.log_pt, st.log_dec)
    return it.State(st.log_pt, st.log_dec, enc, J, False, sup), 1, res


def _stop(gap_tol: float) -> float:
    """Where a certificate stops refining (nats): ``REPAIR_AT``, or twice ``gap_tol`` (bits) if that is more."""
    return max(REPAIR_AT, 2.0 * gap_tol * LN2)


def _certify(prob, p: Point, warm, gap_tol: float):
    """|Y| = 2: the tangent-line certificate, stopped early once the point shows it needs repair; |Y| = 3: the
    triangle branch and bound of ``ibtheory.ib.certify`` (each cell costs passes over the rows)."""
    if prob.n_y == 3:
        return certify_state(prob, p.beta, p, warm=warm)
    return certify_line(prob, p.beta, p, warm=warm, stop=_stop(gap_tol))


def _settle(prob, p: Point, cert, gap_tol: float):
    """The certificate of a point left above ``gap_tol``: refined to its end if it had stopped early (its bound
    then is the tightest, not the one where it stopped); below ``LINE_ROWS`` classes also bounded by the interval
    branch and bound (|Y| = 2: the line bound's rounding allowance of 1e-13 beta nats exceeds 1e-6 bits above beta
    ~4e6, that one's is relative to its cells' values), the smaller kept; then tightened over light rows where
    that may help (``ibtheory.ib.certify.light_hope``)."""
    if cert.gap > gap_tol and not cert.converged and prob.n_y == 2:
        cert = certify_line(prob, p.beta, p, warm=cert.lambdas)
    if cert.gap > gap_tol and prob.n_y == 2 and prob.n_s < LINE_ROWS:
        c2 = certify_state(prob, p.beta, p, warm=cert.lambdas)
        cert = c2 if c2.gap < cert.gap else cert
    if cert.gap > gap_tol and light_hope(prob, p.beta, cert):  # ``certify_state``'s tightening: see there
        c2 = certify_state(prob, p.beta, p, warm=cert.lambdas, tighten=True)
        cert = c2 if c2.gap < cert.gap else cert
    return cert


def _densify(p: Point) -> it.State:
    """A finite perturbation for |Y| = 2: a new cluster at the midpoint (in p(y=1|t)) of every pair of neighbouring
    clusters, each cluster's weight shared with its new neighbour; the excess merges back as the map converges."""
    o = np.argsort(p.decoder[:, 1])
    d, w = p.decoder[o], p.p_t[o]
    mid = 0.5 * (d[1:] + d[:-1])
    pt = np.concatenate([w * 0.75, 0.125 * (w[1:] + w[:-1])])
    dec = np.concatenate([d, mid])
    with np.errstate(divide="ignore"):
        return it.State(np.log(pt / pt.sum()), np.log(dec))


def _tightened(prob, p: Point, st: it.State, tol) -> tuple[Point, it.State]:
    """|Y| > 2: the map from ``st`` (``p``'s state) to a residual of 1e-13, up to 20,000 evaluations, its stall
    test tightened (a loose point polished before or during its repair).  Where the map runs on a sparse support
    (:func:`_kernel`) it first goes there to 1e-12, then on every pair (the pairs left out weigh < e^-25 of their
    row's largest): 512 x 3, 30 betas, certified, 184.8 -> 137.9 s, the same Lagrangians to 1e-14 relative.

    Newton's method comes first where it reaches (``repair``: up to ``REPAIR_DIM`` coordinates) and is kept when
    it ends clearly lower, or stationary and no higher: the map stalls where clusters are about to merge (a
    1024 x 3 point at beta = 970, 469 clusters: 20,000 maps in 196 s to a residual of 2e-8; Newton 2.6 s to a
    gradient of 3e-9, its rounding floor there, 2.1e-9 bits lower)."""
    done = _polish(prob, p.beta, st, p.iterations, tol, repair=True)
    if done is not None and (clearly_lower(done[0].lagrangian, p.lagrangian) or
                             (done[1].converged and not clearly_lower(p.lagrangian, done[0].lagrangian))):
        return done
    sup = _kernel(prob, p.beta, st)
    n1 = 0
    if sup is not None:  # the bulk of the slow stretch on the sparse support, the end on every pair
        st, n1, _ = it.fixed_point(prob, p.beta, st, 1e-12, 20000, obj_tol=1e-15, remaining_tol=1e-13, support=sup)
    st2, n2, res2 = it.fixed_point(prob, p.beta, st, 1e-13, 20000, obj_tol=1e-16, remaining_tol=1e-14)
    return _point(prob, p.beta, st2, p.iterations + n1 + n2, res2, tol), st2


def _improve(prob, p: Point, st: it.State, cert, tol, max_iter, gap_tol, warm, polished: bool = False):
    """Polish a loose point, then seed a cluster at the certificate's maximiser while the gap exceeds ``gap_tol``
    and the Gibbs witness is clearly positive, at most ``REPAIR_ROUNDS`` rounds; after ``TIGHTEN_AFTER`` rounds only
    while the tightened certificate of :func:`_settle` is above it too and each round adds a cluster or halves the
    gap (rounds that did neither cost 47 certificates and 74 s for one point of a 6 x 3 table).

    |Y| > 2: a point already polished (``polished``, or a repair that Newton ended stationary) is not polished and
    certified again (at 1024 x 3 that was one certificate in three, 2.7 s each)."""
    progress = True
    for r in range(REPAIR_ROUNDS):
        if cert.gap <= gap_tol or (r > TIGHTEN_AFTER and not progress):
            break
        if r == TIGHTEN_AFTER:  # still above: the rest may be light rows' clusters worth ~1e-12 each
            cert = _settle(prob, p, cert, gap_tol)
            if cert.gap <= gap_tol:
                break
        n_before, gap_before = p.n_t, cert.gap
        if p.residual >= 1e-13 and prob.n_y != 2 and not polished:
            polished = True
            p2, st2 = _tightened(prob, p, st, tol)
            c2 = _certify(prob, p2, warm, gap_tol)
            if c2.gap < cert.gap:
                p, st, cert = p2, st2, c2
            if cert.gap <= gap_tol:
                break
        if cert.g_lower <= 0.25 * gap_tol * LN2:
            break
        own = float(cert.q_star @ prob.p_s)  # the maximiser's own mass: tiny where it sits on light rows
        masses = SEED_MASSES + (own,) if own >= 1e-6 else (own, 1e-7, 1e-4)
        seeds = [seed_cluster(prob, p, cert, m) for m in masses] + [_densify(p)]

        def solved(k: int, seeded: it.State, p=p, masses=masses) -> tuple[Point, it.State]:
            if prob.n_y == 2 and k < len(masses):
                return _polish(prob, p.beta, seeded, 0, tol, coarse=False)  # a birth the bins may starve
            return _solve(prob, p.beta, seeded, 1e-13, max_iter * 4, coarse=False, repair=True)

        best, weak = first_lower((solved(k, sd) for k, sd in enumerate(seeds)), lambda c: c[0].lagrangian,
                                 p.lagrangian)
        if best is None:  # lower only within rounding: kept if its certificate is 2x tighter (beta ~1e6, |L| ~1e5)
            if weak is None:
                break
            c_w = _certify(prob, weak[0], warm, gap_tol)
            if not c_w.gap < 0.5 * cert.gap:
                break
            (p, st), cert = weak, c_w
            progress, polished = p.n_t > n_before or cert.gap < 0.5 * gap_before, bool(st.converged)
            continue
        p, st = best
        polished = bool(st.converged)
        cert = _certify(prob, p, warm, gap_tol)
        progress = p.n_t > n_before or cert.gap < 0.5 * gap_before
    return p, st, _settle(prob, p, cert, gap_tol)


def forward_curve(prob: Reduced, betas: Sequence[float], tol: float, max_iter: int, certify: bool,
                  gap_tol: float, critical_rtol: float = 1e-4,
                  step: Callable[[], None] | None = None) -> tuple[list[Point], np.ndarray, np.ndarray]:
    """Solve at every beta of ``betas`` (increasing) by forward annealing (see the module docstring).

    Returns (points, critical betas, their relative precisions).  With ``certify`` (|Y| = 2) every point carries its
    certified ``gap`` (bits).
    """
    # the dense solves here are small (2K x 2K, K clusters): BLAS threads only add synchronisation (a 200 x 200
    # Cholesky factorisation takes 0.5 ms on one thread, 3 ms on two, 37 ms on two busy cores)
    with threadpool_limits(limits=1, user_api="blas"):
        return _forward_curve(prob, betas, tol, max_iter, certify, gap_tol, critical_rtol, step)


def _forward_curve(prob, betas, tol, max_iter, certify, gap_tol, critical_rtol, step):
    betas = np.sort(np.asarray(betas, dtype=np.float64))
    if prob.n_y == 2:
        return _upward(prob, betas, tol, max_iter, certify, gap_tol, critical_rtol, step)
    top = _reverse(prob, betas, tol, max_iter, step)
    low = min(top, default=len(betas))
    points, crit, prec = _upward(prob, betas[: len(betas) if low == 0 else low + 1], tol, max_iter, False, gap_tol,
                                 critical_rtol, step)
    for i in sorted(top):  # the lower Lagrangian of the two sweeps
        if i >= len(points):
            points.append(top[i])
        elif top[i].lagrangian < points[i].lagrangian:
            points[i] = top[i]
    h_s, i_xy = entropy(prob.p_s), _identity_relevance(prob)
    for i in range(low):  # below the reverse sweep the upward one can lag behind T = S itself
        if h_s - points[i].beta * i_xy < points[i].lagrangian:
            q = _identity_point(prob, points[i].beta, tol)
            points[i] = q if q.lagrangian < points[i].lagrangian else points[i]
    if certify:
        _vertex_repairs(prob, points, tol, max_iter)
        _certify_all(prob, points, tol, max_iter, gap_tol)
    else:
        _polish_loose(prob, points, tol)
        _vertex_repairs(prob, points, tol, max_iter)
    return points, crit, prec


def _polish_loose(prob, points: list[Point], tol) -> None:
    """|Y| > 2, uncertified: points whose map residual is still above ``tol`` get up to ``POLISH_BUDGET`` more map
    evaluations (and ``POLISH_CELLS`` cells) where the map is dense and small (|S| x clusters <= ``SPARSE_CELLS``),
    kept when their Lagrangian is lower; in place.  A 60 x 3 curve had a point the annealed path beat by 7.1e-6 bits
    (residual 2.8e-5 after the sweeps' budget of 500 maps); 256 x 6, 120 betas: 19.1 -> 21.4 s (2^26 cells: 32.3 s)."""
    for j, p in enumerate(points):
        cells = prob.n_s * p.n_t
        if p.residual <= tol or cells > SPARSE_CELLS:
            continue
        st, n, res = it.fixed_point(prob, p.beta, _state(p), tol, min(POLISH_BUDGET, POLISH_CELLS // cells))
        q = _point(prob, p.beta, st, p.iterations + n, res, tol)
        if q.lagrangian < p.lagrangian:
            points[j] = q


def _vertex_excess(prob, p: Point) -> np.ndarray:
    """phi(delta_x) - a_x = ln p(x) - ln Z(x) (nats) for every class: how far the vertex of each row sticks out of
    the point's tangent plane (see ``ibtheory.ib.certify``).  A positive value is a witness that the point is not
    optimal (a cluster at that row's p(y|x) lowers the Lagrangian); dense, |S| x clusters cells."""
    with np.errstate(divide="ignore"):
        D = kl_matrix(prob.W, np.log(p.decoder), prob.neg_entropy_rows, "nats").T
        return np.log(prob.p_s) - it.lse(np.log(p.p_t)[None, :] - p.beta * D, axis=1)


def _vertex_repairs(prob, points: list[Point], tol, max_iter) -> None:
    """|Y| > 2 (certified |Y| = 3 before its certificates): seed a cluster at the row whose vertex sticks out most
    (weighted by p(x)) while one does and the seed lowers the Lagrangian (``VERTEX_ROUNDS`` per point), then
    re-solve the neighbours of each repaired point from its clusters, on each side as far as that lowers them, and
    each point with fewer clusters than a neighbour from that neighbour's; only where |S| x clusters <=
    ``SPARSE_CELLS``; in place.

    Zero cells make first-order transitions the stability test cannot see: on a 3 x 4 table both sweeps kept two
    clusters at beta = 1.69 where three are 2.3e-3 bits lower (row 1's vertex 0.048 nats above the plane), and a
    30 x 5 point kept three clusters 8.9e-4 bits above the four of the next beta's.  They also trap the map: a
    decoder with p(y|t) = 0 gives every row with that label an infinite distance to t, so it stays 0; such points
    are first re-solved from decoders mixed with ``THAW`` of p(y) (a 3 x 4 point was 6.1e-5 bits above the
    optimum, whose decoder has 4e-5 there)."""
    small = [j for j, p in enumerate(points) if prob.n_s * p.n_t <= SPARSE_CELLS]
    repaired = []
    for j in small:
        p = points[j]
        if np.any(p.decoder[:, prob.p_y > 0] == 0):  # a zero in p(y|t) keeps every row with that label out of t
            with np.errstate(divide="ignore"):
                thawed = it.State(np.log(p.p_t), np.log((1 - THAW) * p.decoder + THAW * prob.p_y[None, :]))
            cand = _solve(prob, p.beta, thawed, tol, max_iter)[0]
            p = cand if clearly_lower(cand.lagrangian, p.lagrangian) else p
        for _ in range(VERTEX_ROUNDS):
            excess = _vertex_excess(prob, p)
            x = int(np.argmax(prob.p_s * excess))
            if not excess[x] > VERTEX_MIN:
                break
            seeds = [it.with_cluster(p.p_t, p.decoder, prob.W[x], m) for m in (prob.p_s[x], 0.1 * prob.p_s[x])]
            cand = min((_solve(prob, p.beta, sd, tol, max_iter)[0] for sd in seeds), key=lambda q: q.lagrangian)
            if not clearly_lower(cand.lagrangian, p.lagrangian):
                break
            p = cand
        if p is not points[j]:
            points[j] = p
            repaired.append(j)
    for j in repaired:  # a repaired point warm-starts its neighbours, as far as that lowers them
        for step in (1, -1):
            i, k = j, j + step
            while 0 <= k < len(points) and prob.n_s * points[k].n_t <= SPARSE_CELLS:
                q = _solve(prob, points[k].beta, _state(points[i]), tol, max_iter)[0]
                if not clearly_lower(q.lagrangian, points[k].lagrangian):
                    break
                points[k] = q
                i, k = k, k + step
    # a point with fewer clusters than its neighbour may lag behind a transition: solved again from the neighbour
    # (one map from there is not a reliable filter: on that 30 x 5 table it is higher, the solve 8.9e-4 bits lower)
    for step, order in ((1, small[::-1]), (-1, small)):
        for k in order:
            i = k + step
            if 0 <= i < len(points) and points[i].n_t > points[k].n_t:
                q = _solve(prob, points[k].beta, _state(points[i]), tol, max_iter)[0]
                points[k] = q if clearly_lower(q.lagrangian, points[k].lagrangian) else points[k]


def _certify_all(prob, points: list[Point], tol, max_iter, gap_tol) -> None:
    """|Y| = 3: certify every point in order of beta (each certificate warm-started by the last one's
    multipliers), repair those above ``gap_tol`` (:func:`_improve`: polish, then seeds at the certificate's
    maximiser) and re-solve what is still above it from its certified neighbours; in place, ``gap`` set."""
    certs: list = []
    warm = None
    for j, p in enumerate(points):
        if p.residual >= 1e-13:  # polished first: a loose point's certificate (seconds) would only be redone
            p2, _ = _tightened(prob, p, _state(p), tol)
            p = p2 if p2.lagrangian <= p.lagrangian else p
        cert = _certify(prob, p, warm, gap_tol)
        if cert.gap > gap_tol:
            p, _, cert = _improve(prob, p, _state(p), cert, tol, max_iter, gap_tol, warm, polished=True)
        warm = cert.lambdas
        points[j] = replace(p, gap=cert.gap)
        certs.append(cert)
    _from_neighbours(prob, points, certs, tol, max_iter, gap_tol)


def _identity_relevance(prob: Reduced) -> float:
    """I(S;Y) = I(X;Y) in bits."""
    joint = prob.p_s[:, None] * prob.W
    return max(mi_of_joint(joint, prob.p_s, prob.p_y), 0.0)


def _identity_point(prob: Reduced, beta: float, tol: float) -> Point:
    """From T = S (one cluster per class) ``IDENTITY_BUDGET`` map evaluations (each lowers the Lagrangian)."""
    with np.errstate(divide="ignore"):
        st = it.State(np.log(prob.p_s), np.log(prob.W / prob.W.sum(axis=1, keepdims=True)))
    return _solve_multi(prob, beta, st, tol, IDENTITY_BUDGET, loose_merge=None)[0]


def _reverse(prob: Reduced, betas: np.ndarray, tol, max_iter, step) -> dict[int, Point]:
    """|Y| > 2: reverse annealing (as ``ibtheory.ib.curve.anneal``): from the identity encoder on S at the largest
    beta down, each solution (:func:`_solve_multi`, clusters merged as their decoders meet) warm-starting the next.
    It keeps about one cluster per class, so it stops, leaving the rest to the upward sweep, after the first beta
    whose sparse support holds more than ``REVERSE_PAIRS`` pairs (never while dense).  Returns {index of beta:
    point}."""
    with np.errstate(divide="ignore"):
        state = it.State(np.log(prob.p_s), np.log(prob.W / prob.W.sum(axis=1, keepdims=True)))
    out: dict[int, Point] = {}
    sup = None
    for i in range(len(betas) - 1, -1, -1):
        out[i], st = _solve_multi(prob, float(betas[i]), state, tol, max_iter, sup=sup)
        state, where = it.prune_merge(st, mapping=True)
        # the support carried to the next beta when that spends little of its cut (saves a k-d tree search)
        sup = remapped(prob, float(betas[i]), st, state, where) if i > 0 else None
        sup = lowered(sup, float(betas[i]), float(betas[i - 1])) if sup is not None else None
        if step is not None:
            step()
        cells = st.log_pt.size * prob.n_s
        pairs = st.support.nnz if st.support is not None else cells if cells > SPARSE_CELLS else 0
        if pairs > REVERSE_PAIRS:  # a dense map above SPARSE_CELLS (DENSE_CELLS) counts all its pairs
            break
    return out


def _upward(prob, betas, tol, max_iter, certify, gap_tol, critical_rtol, step):
    """The forward sweep: from one cluster at the smallest beta up, splitting what the stability test finds
    unstable (see the module docstring).  With ``certify`` the points are certified several at a time
    (:func:`_certify_pending`): when one of them had to be repaired into more clusters, the points after it, solved
    from the chain without them, are solved again from the repaired point, as annealing one beta at a time would
    have; the batch grows from ``CERTIFY_BATCH[0]`` to ``CERTIFY_BATCH[1]`` while no repair is needed (one at a time
    above ``BATCH_CLASSES`` classes)."""
    state = it.from_encoder(prob, np.ones((prob.n_s, 1)))
    points: list[Point] = []
    states: list[it.State] = []
    crit: list[tuple[int, float, float]] = []  # (index of the beta whose solve found it, beta_c, precision)
    certs: list = []
    warm: list = [None]
    sizes = CERTIFY_BATCH if prob.n_s <= BATCH_CLASSES else (1, 1)
    batch, i, reached = sizes[0], 0, 0
    while i < len(betas):
        b = betas[i]
        lo = betas[i - 1] if i else 0.0
        p, st = _solve(prob, b, state, tol, max_iter)
        for _ in range(3):  # split what the stability test finds unstable at this beta, re-solve, test again
            rho2, v = cluster_correlations(prob, st.log_enc, st.log_pt, st.log_dec, st.support)
            unstable = np.flatnonzero(b * rho2 > 1.0 + 1e-9)
            if unstable.size == 0:
                break
            for t in unstable:  # |Y| > 2: the first secant guess 1 / rho_t^2(beta), no solves
                bc, pr = _locate_split(prob, st, lo, b, t, tol, max_iter, critical_rtol,
                                       solves=4 if prob.n_y == 2 else 0, rho2=rho2)
                crit.append((i, bc, pr))
            p, st = _solve(prob, b, _split(st, unstable, v), tol, max_iter)
        points.append(p)
        states.append(_slim(st))
        i += 1
        if certify and (len(points) - len(certs) >= batch or i == len(betas)):
            j = _certify_pending(prob, betas, points, states, certs, crit, warm, tol, max_iter, gap_tol)
            if j is not None and j < len(points) - 1:  # solve the points after j again from the repaired j
                del points[j + 1:], states[j + 1:]
                crit[:] = [c for c in crit if c[0] <= j]
                i, batch = j + 1, sizes[0]
            else:
                batch = min(2 * batch, sizes[1])
            st = states[-1]
        state = _slim(st)
        if step is not None and i > reached:
            step()
            reached = i
    if certify:
        _from_neighbours(prob, points, certs, tol, max_iter, gap_tol)
    found = np.array([c[1:] for c in crit], dtype=np.float64).reshape(-1, 2)
    order = np.argsort(found[:, 0])
    return points, found[order, 0], found[order, 1]


def _certify_pending(prob, betas, points, states, certs, crit, warm, tol, max_iter, gap_tol) -> int | None:
    """Certify the points not yet certified (``points[len(certs):]``) in one :func:`certify_lines` call and
    :func:`_improve` each whose gap exceeds ``gap_tol``, in order of beta, in place.  A repair that adds clusters is
    a transition the stability test did not predict (reported at the grid bracket's geometric midpoint); the
    certificates stop there and its index is returned (None when there was none).  ``warm`` holds the last
    certificate's multipliers (a one-item list, updated)."""
    first = len(certs)
    new = certify_lines(prob, betas[first:len(points)], points[first:], warm[0], stop=_stop(gap_tol))
    for j, cert in zip(range(first, len(points)), new, strict=True):
        p, st = points[j], states[j]
        n_before = p.n_t
        if cert.gap > gap_tol:
            p, st, cert = _improve(prob, p, st, cert, tol, max_iter, gap_tol, warm[0])
        warm[0] = cert.lambdas
        points[j], states[j] = replace(p, gap=cert.gap), _slim(st)
        certs.append(cert)
        if p.n_t > n_before:
            if j > 0:
                crit.append((j, float(np.sqrt(betas[j - 1] * p.beta)), float(np.sqrt(p.beta / betas[j - 1]) - 1.0)))
            return j
    return None


def fill_steep(prob: Reduced, points: list[Point], max_step: float, budget: int, tol: float, max_iter: int,
               certify: bool, gap_tol: float) -> list[Point]:
    """|Y| = 2: insert geometric-midpoint betas where neighbouring points are more than ``max_step`` bits apart in
    I(X;T) (steep stretches just above a critical beta), at most ``budget`` of them, as the annealed path does;
    each warm-started from the point above, all midpoints of a round certified together (repaired by
    :func:`_improve` above ``gap_tol``).  Returns the points sorted by beta."""
    with threadpool_limits(limits=1, user_api="blas"):  # small dense solves, as in forward_curve
        return _fill_steep(prob, points, max_step, budget, tol, max_iter, certify, gap_tol)


def steep_gaps(betas: np.ndarray, ixt: np.ndarray, max_step: float, limit: int) -> np.ndarray:
    """Of points sorted by beta, the first ``limit`` indices i where I(X;T) rises by more than ``max_step`` bits
    from point i to i + 1 (betas distinct to 1e-9): the steep stretches whose geometric midpoints both paths add."""
    return np.flatnonzero((np.diff(ixt) > max_step) & (betas[1:] / betas[:-1] > 1 + 1e-9))[:limit]


def _fill_steep(prob, points, max_step, budget, tol, max_iter, certify, gap_tol) -> list[Point]:
    pts = sorted(points, key=lambda q: q.beta)
    added = 0
    while added < budget:
        b = np.array([q.beta for q in pts])
        steep = steep_gaps(b, np.array([q.I_XT for q in pts]), max_step, budget - added)
        if steep.size == 0:
            break
        new = [_solve(prob, float(np.sqrt(b[i] * b[i + 1])), _state(pts[i + 1]), tol, max_iter) for i in steep]
        if certify:
            certs = certify_lines(prob, [q.beta for q, _ in new], [q for q, _ in new], stop=_stop(gap_tol))
            for k, ((q, st), c) in enumerate(zip(new, certs, strict=True)):
                if c.gap > gap_tol:
                    q, st, c = _improve(prob, q, st, c, tol, max_iter, gap_tol, c.lambdas)
                new[k] = (replace(q, gap=c.gap), st)
        pts = sorted(pts + [q for q, _ in new], key=lambda q: q.beta)
        added += steep.size
    return pts


def _locate_split(prob, st: it.State, b_lo: float, b: float, t: int, tol, max_iter,
                  rtol: float, solves: int = 4, rho2: np.ndarray | None = None) -> tuple[float, float]:
    """The root of f(beta) = ln beta + ln rho_t^2(beta) on the unsplit branch through ``st`` (solved at ``b``,
    where f > 0), by secant steps in ln beta from the first guess 1 / rho_t^2(b), at most ``solves``
    warm-started solves, kept within [b_lo, b]; returns (beta_c, relative size of the last step).  ``rho2``: the
    correlations of ``st`` if already known."""
    def f(beta, state):
        if prob.n_y == 2:
            lp, ld, _, _ = newton(prob, beta, state.log_pt, state.log_dec)
            s2, _, _ = _encode(prob, beta, it.State(lp, ld))
        else:
            s2, _, _ = it.fixed_point(prob, beta, state, tol, max_iter)
        r2, _ = cluster_correlations(prob, s2.log_enc, s2.log_pt, s2.log_dec, s2.support)
        return float(np.log(beta) + np.log(max(r2[t], 1e-300))), _slim(s2)

    r2 = cluster_correlations(prob, st.log_enc, st.log_pt, st.log_dec, st.support)[0] if rho2 is None else rho2
    x0, f0 = np.log(b), float(np.log(b) + np.log(max(r2[t], 1e-300)))
    x1 = np.log(min(max(1.0 / max(r2[t], 1e-300), b_lo), b)) if b_lo > 0 else x0 - f0
    cur = _slim(st)
    prec = abs(x1 - x0)
    for _ in range(solves):
        if prec <= rtol:
            break
        f1, cur = f(float(np.exp(x1)), cur)
        x2 = x1 - f1 * (x1 - x0) / (f1 - f0) if f1 != f0 else x1
        if b_lo > 0:
            x2 = min(max(x2, np.log(b_lo)), np.log(b))
        prec = abs(x2 - x1)
        x0, f0, x1 = x1, f1, x2
    return float(np.exp(x1)), float(np.expm1(prec))



def _from_neighbours(prob, points: list[Point], certs: list, tol, max_iter, gap_tol, sweeps: int = 3) -> None:
    """``ibtheory.ib._improve.from_neighbours`` on the forward path's points (in place), each re-solve by Newton
    where it reaches (``repair``) and certified to its end (:func:`_settle`)."""
    def resolve(i: int, j: int) -> bool:
        p, _ = _solve(prob, points[i].beta, _state(points[j]), tol, max_iter, repair=True)
        c = _settle(prob, p, _certify(prob, p, certs[j].lambdas, gap_tol), gap_tol)
        if c.gap < certs[i].gap and p.lagrangian <= points[i].lagrangian + 1e-12:
            points[i], certs[i] = replace(p, gap=c.gap), c
            return True
        return False

    from_neighbours(len(points), lambda i: certs[i].gap, resolve, gap_tol, sweeps)
