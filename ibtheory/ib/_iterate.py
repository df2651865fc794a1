"""The self-consistent IB map on the reduced problem, in log space, with SQUAREM acceleration (private).

State theta = (ln p(t), ln p(y|t)).  One application of the map G (Tishby, Pereira & Bialek 1999):

    D[s, t]   = KL[W_s || p(y|t)]                                   (nats)
    ln p(t|s) = ln p(t) - beta D[s, t] - ln Z(s),  Z(s) = sum_t p(t) exp(-beta D[s, t])
    p(t)      = sum_s p(s) p(t|s),   p(y|t) = sum_s p(s|t) W[s, y].

It is alternating minimisation of F = I(S;T) + beta E[KL(W_s || p(y|t))], so the objective
J(theta) = -sum_s p(s) ln Z(s) (= min over the encoder of F, nats) never increases under G; SQUAREM (Varadhan &
Roland 2008, scheme S3) extrapolates along G and falls back to the plain double step whenever J would increase.
Anderson acceleration (Walker & Ni 2011; with J as the safeguard, as Henderson & Varadhan 2019 do for EM) is the
alternative the |Y| > 2 active-set sweeps and phases take (``anderson=True``): x' = G(x) - dG gamma with gamma the
least-squares fit of the residual f = G(x) - x by its last ``ANDERSON_MEMORY`` differences dF; an extrapolated
point whose J is above the current one is replaced by G(x) and the memory cleared.
Everything is vectorised over (s, t); entries with p(y|t) = 0 give D = +inf and p(t|s) = 0 exactly.

With many clusters (|Y| > 2 at scale) the map runs on a :class:`Support`: per class s only the clusters t with
ln p(t) - beta D[s, t] within ``SPARSE_CUT`` of the row's largest (the rest weigh less than e^-30 = 9e-14 of it),
found with a k-d tree on sqrt p(y|.) through KL[w || d] >= ||sqrt w - sqrt d||^2 (twice the squared Hellinger
distance).  The encoder is then renormalised over those pairs: still an encoder, and still alternating minimisation
of F over encoders supported there, so J keeps decreasing; its work and memory are O(nnz), never |S| x n_t.

References
----------
1. N. Tishby, F. C. Pereira, W. Bialek, "The information bottleneck method", Allerton 1999.
2. R. Varadhan and C. Roland, "Simple and globally convergent methods for accelerating the convergence of any
   EM algorithm", Scand. J. Statist. 35 (2008) 335-353.
3. D. J. Strouse and D. J. Schwab, "The deterministic information bottleneck", Neural Comput. 29 (2017) 1611-1630.
4. H. F. Walker and P. Ni, "Anderson acceleration for fixed-point iterations", SIAM J. Numer. Anal. 49 (2011)
   1715-1735.
5. N. C. Henderson and R. Varadhan, "Damped Anderson acceleration with restarts and monotonicity control for
   accelerating EM and EM-like algorithms", J. Comput. Graph. Statist. 28 (2019) 834-846.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from itertools import chain

import numpy as np
from scipy.spatial import cKDTree

from ..info import kl_matrix
from . import _kernels
from ._problem import Reduced

__all__ = [
    "State", "Support", "exp_nonpositive", "lse", "step", "sparse_step", "support", "fixed_point",
    "dib_fixed_point", "prune_merge", "distance", "pair_scores", "pair_lse", "from_encoder", "converge",
    "newton_polish", "remap_support", "with_cluster", "SPARSE_CUT",
]

_NEG = -np.inf
_FLUSH = -700.0  # exp(-700) = 1e-304: below it, exp is subnormal or 0 (and 10-30x slower to compute)
#: pairs (s, t) whose log-weight ln p(t) - beta KL[s, t] lies more than this below row s's largest are left out of a
#: sparse map (e^-30 = 9e-14 of the row's largest weight)
SPARSE_CUT = 30.0
#: cells of dense scores computed at a time when a support is built (32 MiB)
_CHUNK_CELLS = 2**22
#: mean candidates per class up to which a support's k-d tree search starts with a k-nearest query
_KNN_MEAN = 16
#: k-d tree leaf size for the supports' searches (scipy's default 16: 20,000 balls, 4.9e6 candidates 1.04 -> 0.71 s)
_LEAF = 32
#: clusters above which prune_merge looks for close decoders with a k-d tree instead of all pairs
_MERGE_DENSE_MAX = 256


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


@dataclass(frozen=True)
class Support:
    """The pairs (s, t) a sparse map evaluates, sorted by s: ``cols[indptr[s]:indptr[s + 1]]`` are the clusters of
    class s (never none).  ``w_rows`` (n_y, nnz) holds W[s, y] per pair, ``neg_h`` sum_y W ln W of its class;
    ``log_pt``, ``log_dec`` are the state it was built for."""

    indptr: np.ndarray
    rows: np.ndarray
    cols: np.ndarray
    n_t: int
    w_rows: np.ndarray
    neg_h: np.ndarray
    log_pt: np.ndarray  # the state it was built for
    log_dec: np.ndarray
    #: nats of the cut spent by carrying it over prunes, merges and moves (``ibtheory.ib._carry``) and to a lower
    #: beta: at its state every pair left out lies at least cut - used below its row's best
    used: float = 0.0
    #: the cut it was built with (nats)
    cut: float = SPARSE_CUT

    @property
    def nnz(self) -> int:
        return int(self.cols.size)


@dataclass
class State:
    """theta = (ln p(t), ln p(y|t)) plus the encoder G produced from it and the objective J (nats).  The encoder is
    (n_s, n_t), or with ``support`` the log p(t|s) of its pairs only (nnz,); ``image`` is G(theta) when known."""

    log_pt: np.ndarray
    log_dec: np.ndarray
    log_enc: np.ndarray | None = None
    J: float = np.inf
    converged: bool = False
    support: Support | None = None
    image: tuple[np.ndarray, np.ndarray] | None = None


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


def pair_scores(W_T: np.ndarray, neg_h: np.ndarray, beta: float, log_pt: np.ndarray, log_dec: np.ndarray,
                 cols: np.ndarray, rows: np.ndarray | None = None) -> np.ndarray:
    """ln p(t) - beta KL[W_s || p(y|t)] (nats) of the pairs (s, t) with clusters ``cols``: their class rows are
    ``W_T`` (n_y, nnz) and ``neg_h`` (nnz,), or with ``rows`` the classes' ``W_T`` (n_y, n_s), ``neg_h`` (n_s,)
    (one compiled pass, :func:`ibtheory.ib._kernels.pair_scores`).  +inf divergence (p(y|t) = 0 < W[s, y]) gives
    -inf."""
    return _kernels.pair_scores(W_T, neg_h, beta, log_pt, log_dec, cols, rows)


def support(prob: Reduced, beta: float, log_pt: np.ndarray, log_dec: np.ndarray, cut: float = SPARSE_CUT,
            max_nnz: int | None = None) -> Support:
    """The pairs (s, t) with ln p(t) - beta KL[s, t] >= max_t' [ln p(t') - beta KL[s, t']] - ``cut`` (nats).

    Candidates come from a k-d tree on sqrt p(y|t): KL[w || d] >= ||sqrt w - sqrt d||^2, so a pair can qualify only
    if ||sqrt W_s - sqrt d_t||^2 <= (max_t ln p(t) - b_s + cut) / beta, b_s the score of the cluster nearest to s
    in that metric; their exact scores then decide.  Where the balls would hold more than a quarter of all pairs
    (small beta, few clusters) the scores are computed densely instead, ``_CHUNK_CELLS`` at a time.  With
    ``max_nnz`` the cut is lowered (the same for all rows) until at most that many pairs remain; each class keeps
    its best cluster.
    """
    n_s, K = prob.n_s, log_pt.size
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        found = _ball_candidates(prob, beta, log_pt, log_dec, cut, max_nnz) if K >= 64 else None
        if found is None:
            rows, cols, below, cut = _dense_candidates(prob, beta, log_pt, log_dec, cut, max_nnz)
        else:
            rows, cols = found
            sc = pair_scores(prob.W.T, prob.neg_entropy_rows, beta, log_pt, log_dec, cols, rows)
            counts = np.bincount(rows, minlength=n_s)
            best = np.maximum.reduceat(sc, np.concatenate([[0], np.cumsum(counts)[:-1]]))
            below = best[rows] - sc  # >= 0; +inf for an infinite divergence (nan where the whole row is)
            below[np.isnan(below)] = 0.0
    keep = below <= cut
    if max_nnz is not None and np.count_nonzero(keep) > max_nnz:
        cut = float(np.partition(below, int(max_nnz) - 1)[int(max_nnz) - 1])  # the lowered cut
        keep = below <= cut
    rows, cols = rows[keep], cols[keep]
    indptr = np.concatenate([[0], np.cumsum(np.bincount(rows, minlength=n_s))])
    return Support(indptr, rows, cols, K, np.ascontiguousarray(prob.W.T[:, rows]), prob.neg_entropy_rows[rows],
                   log_pt, log_dec, cut=float(cut))


def _ball_candidates(prob, beta, log_pt, log_dec, cut, max_nnz=None) -> tuple[np.ndarray, np.ndarray] | None:
    """(classes, clusters) of the pairs in each class's ball (see :func:`support`), sorted by class; None when
    they would exceed n_s n_t / 4 (or 4 ``max_nnz``: the dense blocks then cap them as they go).  With few
    candidates per class (a sample's mean up to ``_KNN_MEAN``) the k nearest clusters (k twice the mean) come in one
    query and classes whose k-th is still inside their ball get a ball query of their own; with more, one ball
    query for all classes (1.2 s for 5.3e6 candidates of 20,000 classes, against 3.0 s the first way; with ~1 per
    class the first way is 2x faster)."""
    n_s, K = prob.n_s, log_pt.size
    root_w = np.sqrt(prob.W)
    tree = cKDTree(np.exp(0.5 * log_dec), leafsize=_LEAF)
    near = tree.query(root_w, k=1)[1]
    b = pair_scores(prob.W.T, prob.neg_entropy_rows, beta, log_pt, log_dec, near)
    radius = ball_radius((np.max(log_pt) - b + cut) / beta)
    sample = np.arange(0, n_s, max(1, n_s // 256))  # the number of candidates, estimated from 256 classes
    mean = tree.query_ball_point(root_w[sample], radius[sample], return_length=True).mean()
    if mean > K / 4 or (max_nnz is not None and mean * n_s > 4 * max_nnz):
        return None
    if mean > _KNN_MEAN:
        return _ball_pairs(tree, root_w, radius, np.arange(n_s))
    k = int(min(K, max(4, 2 * mean + 1)))
    dist, idx = tree.query(root_w, k=k, distance_upper_bound=float(radius.max()))
    more = dist[:, -1] <= radius  # maybe more than k inside the ball
    s_, j_ = np.nonzero((dist <= radius[:, None]) & ~more[:, None])
    rows, cols = s_, idx[s_, j_]
    if more.any():
        r2, c2 = _ball_pairs(tree, root_w[more], radius[more], np.flatnonzero(more))
        rows, cols = np.concatenate([rows, r2]), np.concatenate([cols, c2])
        order = np.argsort(rows, kind="stable")
        rows, cols = rows[order], cols[order]
    return rows, cols


def ball_radius(r2: np.ndarray) -> np.ndarray:
    """The radius in the sqrt p(y|t) metric of the balls whose squared radius is ``r2``: clamped to [0, 4] (below 0
    no cluster can reach, an empty ball rather than a nan one; not finite or above 4: every cluster, as
    ||sqrt w - sqrt d||^2 <= 2), with a margin for rounding."""
    r2 = np.maximum(r2, 0.0)
    return np.sqrt(np.minimum(np.where(np.isfinite(r2), r2, 4.0), 4.0)) * (1 + 1e-9) + 1e-12


def _ball_pairs(tree: cKDTree, points: np.ndarray, radius: np.ndarray,
                classes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(classes, clusters) of the clusters within ``radius`` of each point (one ball query on every core, grouped by
    class: 20,000 balls holding 4.9e6 clusters 1.42 -> 1.00 s on two cores)."""
    found = tree.query_ball_point(points, radius, return_sorted=False, workers=-1)  # the same lists on any cores
    counts = np.fromiter(map(len, found), dtype=np.int64, count=len(found))
    cols = np.fromiter(chain.from_iterable(found), dtype=np.int64, count=int(counts.sum()))
    return np.repeat(classes, counts), cols


def _dense_candidates(prob, beta, log_pt, log_dec, cut, max_nnz=None
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """(classes, clusters, distance below the row's best score) of the pairs within ``cut``, from dense scores
    over blocks of classes (``_CHUNK_CELLS`` cells at a time).  With ``max_nnz``, whenever more than twice that
    many pairs have been collected only the ``max_nnz`` closest to their rows' best (and each row's best) are
    kept, so memory stays O(max_nnz + block); the cut is then lowered for every row.  Also returns the cut."""
    n_s, K = prob.n_s, log_pt.size
    block = max(1, _CHUNK_CELLS // K)
    out, held = [], 0
    for a in range(0, n_s, block):
        sc = (log_pt[:, None] - beta * kl_matrix(prob.W[a:a + block], log_dec,
                                                 prob.neg_entropy_rows[a:a + block], "nats")).T
        below = sc.max(axis=1, keepdims=True) - sc
        below[np.isnan(below)] = 0.0
        s_, t_ = np.nonzero(below <= cut)
        out.append((s_ + a, t_, below[s_, t_]))
        held += s_.size
        if max_nnz is not None and held > 2 * max_nnz:
            rows, cols, bel = (np.concatenate(x) for x in zip(*out, strict=True))
            cut = min(cut, float(np.partition(bel, int(max_nnz) - 1)[int(max_nnz) - 1]))  # lowered for all rows
            keep = bel <= cut
            out, held = [(rows[keep], cols[keep], bel[keep])], int(np.count_nonzero(keep))
    rows, cols, bel = (np.concatenate(x) for x in zip(*out, strict=True))
    return rows, cols, bel, cut


def _pair_exp(L: np.ndarray, sup: Support) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per class of ``sup`` the largest log-weight m (0 for a class whose pairs are all -inf); ``L`` shifted by it
    in place and exponentiated, E; and each class's sum z of E."""
    starts = sup.indptr[:-1]
    m = np.maximum.reduceat(L, starts)
    m[~np.isfinite(m)] = 0.0
    L -= m[sup.rows]
    E = exp_nonpositive(L)
    return m, E, np.add.reduceat(E, starts)


def pair_lse(L: np.ndarray, sup: Support) -> np.ndarray:
    """ln sum over each class's pairs of exp(L) (nats; -inf for a class whose pairs are all -inf); ``L`` is
    overwritten."""
    with np.errstate(divide="ignore", invalid="ignore"):
        m, _, z = _pair_exp(L, sup)
        return m + np.log(z)


def sparse_step(prob: Reduced, beta: float, log_pt: np.ndarray, log_dec: np.ndarray,
                sup: Support) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """One map G on the pairs of ``sup``: returns (ln p(t)', ln p(y|t)', ln p(t|s) of the pairs (nnz,), J(input) in
    nats); the encoder of each class is normalised over its pairs.  One compiled pass over the pairs
    (:func:`ibtheory.ib._kernels.pair_step`).  Call inside ``np.errstate`` like :func:`step`."""
    L, lnZ, p_t, num = _kernels.pair_step(prob.W, prob.neg_entropy_rows, prob.p_s, beta, log_pt, log_dec,
                                          sup.indptr, sup.cols)
    dec = num / np.maximum(p_t, 1e-300)[:, None]
    return np.log(p_t), np.log(dec), L, -float(prob.p_s @ lnZ)


def distance(a_pt, a_dec, b_pt, b_dec) -> float:
    """max |p(t) - p'(t)|, |p(y|t) - p'(y|t)| of two states given in logs (probabilities)."""
    return float(max(np.max(np.abs(np.exp(a_pt) - np.exp(b_pt))), np.max(np.abs(np.exp(a_dec) - np.exp(b_dec)))))


def _normalise(log_pt: np.ndarray, log_dec: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return log_pt - lse(log_pt, axis=0), log_dec - lse(log_dec, axis=1)[:, None]


def fixed_point(prob: Reduced, beta: float, state: State, tol: float, max_iter: int,
                accelerate: bool = True, obj_tol: float = 1e-12,
                remaining_tol: float = 1e-10, support: Support | None = None,
                G: Callable | None = None, anderson: bool = False) -> tuple[State, int, float]:
    """Iterate G from ``state`` until converged; return (state with its encoder, map evaluations, residual).

    Converged means: the fixed-point residual max|G(theta) - theta| (probabilities) is below ``tol``, or the
    objective J has stalled: its last decrease is below ``obj_tol`` and the geometric estimate of all further
    decrease below ``remaining_tol`` (nats, both relative to max(1, |J|)).  The second test ends critical
    slowing down near phase transitions, where theta creeps along a flat valley while the Lagrangian no longer
    changes.  With ``support`` the map is :func:`sparse_step` on its pairs (the returned encoder is theirs); ``G``
    replaces the map ((ln p(t), ln p(y|t)) -> (ln p(t)', ln p(y|t)', encoder, J), as :func:`step`).  ``anderson``:
    Anderson acceleration instead of SQUAREM (module docstring; its stall test needs the last two decreases of J
    both below ``obj_tol``, as one extrapolation's decrease says little of the next).
    """
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        return _fixed_point(prob, beta, state, tol, max_iter, accelerate, obj_tol, remaining_tol, support, G, anderson)


def _fixed_point(prob, beta, state, tol, max_iter, accelerate, obj_tol, remaining_tol, support=None, G=None,
                 anderson=False):
    neg_h = prob.neg_entropy_rows
    log_ps = np.log(prob.p_s)
    if G is None and support is None:
        def G(log_pt, log_dec):
            return step(prob, beta, log_pt, log_dec, neg_h, log_ps)
    elif G is None:
        def G(log_pt, log_dec):
            return sparse_step(prob, beta, log_pt, log_dec, support)
    if accelerate and anderson:
        return _anderson(G, state, tol, max_iter, obj_tol, remaining_tol, support)
    pt0, dec0 = state.log_pt, state.log_dec
    evals = 0
    res = np.inf
    J_prev, dJ_prev = np.inf, np.inf
    n_t = pt0.size
    while evals < max_iter:
        pt1, dec1, enc0, J0 = G(pt0, dec0)
        evals += 1
        res = distance(pt1, dec1, pt0, dec0)
        dJ = J_prev - J0
        if res < tol:
            return State(pt0, dec0, enc0, J0, True, support, (pt1, dec1)), evals, res
        if _stalled(dJ, dJ_prev, J0, obj_tol, remaining_tol):
            return State(pt0, dec0, enc0, J0, True, support, (pt1, dec1)), evals, res
        J_prev, dJ_prev = J0, dJ
        pt2, dec2, _, _ = G(pt1, dec1)
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
        pt3, dec3, _, Jx = G(ptx, decx)
        evals += 1
        if np.isfinite(Jx) and Jx <= J0 and np.all(np.isfinite(pt3) | (pt2 == _NEG)):
            pt0, dec0 = pt3, dec3
        else:
            pt0, dec0 = pt2, dec2
    pt1, dec1, enc0, J0 = G(pt0, dec0)
    return State(pt0, dec0, enc0, J0, support=support, image=(pt1, dec1)), evals + 1, distance(pt1, dec1, pt0, dec0)


def _stalled(dJ: float, dJ_prev: float, J: float, obj_tol: float, remaining_tol: float) -> bool:
    """J has stalled: its last decrease dJ is at most ``obj_tol`` and the geometric estimate of what is left,
    dJ r / (1 - r) with r = dJ / dJ_prev, at most ``remaining_tol`` (nats, both relative to max(1, |J|))."""
    scale = max(1.0, abs(J))
    if not (np.isfinite(dJ) and dJ_prev > 0 and 0 <= dJ <= obj_tol * scale):
        return False
    rate = min(dJ / dJ_prev, 0.999999)
    return dJ * rate / (1 - rate) <= remaining_tol * scale


#: past differences in Anderson acceleration's least squares
ANDERSON_MEMORY = 6


def _anderson(G, state: State, tol, max_iter, obj_tol, remaining_tol, support, memory: int = ANDERSON_MEMORY):
    """Anderson acceleration (type II) of G with J as a safeguard: x' = G(x) - dG gamma, gamma = argmin
    ||f - dF gamma||, f = G(x) - x, over the last ``memory`` differences; an extrapolated point whose J is above
    the current one is replaced by the plain map's image G(x) (and the memory cleared).  Same stopping rules and
    return as :func:`_fixed_point`, except that J has stalled only when its last two decreases are both below
    ``obj_tol`` (one extrapolation's decrease says little of the next)."""
    n_t, shape = state.log_pt.size, state.log_dec.shape

    def flat(pt, dec):
        return np.concatenate([pt, dec.ravel()])

    def parts(v):
        return v[:n_t], v[n_t:].reshape(shape)

    def finite_diff(a, b):  # a - b where both are finite (a cluster's -inf entries stay out of the fit)
        return np.where(np.isfinite(a) & np.isfinite(b), a - b, 0.0)

    x = flat(state.log_pt, state.log_dec)
    pt1, dec1, enc, J = G(state.log_pt, state.log_dec)
    evals, Js = 1, [J]
    gx = flat(pt1, dec1)
    f = finite_diff(gx, x)
    dF: list[np.ndarray] = []
    dG: list[np.ndarray] = []
    while True:
        res = distance(*parts(gx), *parts(x))
        stalled = len(Js) > 2 and Js[-3] - Js[-2] <= obj_tol * max(1.0, abs(J)) and \
            _stalled(Js[-2] - Js[-1], Js[-3] - Js[-2], J, obj_tol, remaining_tol)
        if res < tol or stalled or evals >= max_iter:
            return State(*parts(x), enc, J, res < tol or stalled, support, parts(gx)), evals, res
        xn = gx
        if dF:
            gamma = np.linalg.lstsq(np.array(dF).T, f, rcond=1e-12)[0]
            live = np.isfinite(gx)  # a dead cluster's row (all -inf) stays -inf (normalising it would give nan)
            cand = np.where(live, gx - np.array(dG).T @ gamma, gx)
            xn = np.where(live, flat(*_normalise(*parts(cand))), gx)
            if not np.array_equal(np.isfinite(xn), live):
                xn = gx
        pt2, dec2, enc2, J2 = G(*parts(xn))
        evals += 1
        if xn is not gx and not J2 <= J:  # the extrapolation raised J (or gave nan): the plain step instead
            dF.clear()
            dG.clear()
            xn = gx
            pt2, dec2, enc2, J2 = G(*parts(xn))
            evals += 1
        gn = flat(pt2, dec2)
        fn = finite_diff(gn, xn)
        dF.append(fn - f)
        dG.append(finite_diff(gn, gx))
        if len(dF) > memory:
            del dF[0], dG[0]
        x, gx, f, J, enc = xn, gn, fn, J2, enc2
        Js.append(J)


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


def with_cluster(p_t: np.ndarray, decoder: np.ndarray, new_decoder: np.ndarray, mass: float) -> State:
    """The state of clusters (``p_t``, ``decoder``) plus one with decoder ``new_decoder`` and weight ``mass`` (the
    others scaled by 1 - mass): a seed for a cluster the solution misses."""
    with np.errstate(divide="ignore"):
        return State(np.log(np.concatenate([p_t * (1 - mass), [mass]])),
                     np.log(np.concatenate([decoder, np.asarray(new_decoder)[None, :]])))


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


def prune_merge(state: State, min_pt: float = 1e-13, merge_tol: float = 1e-7,
                mapping: bool = False) -> State | tuple[State, np.ndarray]:
    """Drop clusters with p(t) < ``min_pt`` and merge clusters whose decoders differ by < ``merge_tol`` (max abs).

    Merging clusters with equal p(y|t) leaves I(T;Y) unchanged and lowers I(X;T); dropped mass is renormalised.
    With ``mapping`` also returns, per old cluster, its new index (-1: dropped).
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
    if 1 < p_t.size <= _MERGE_DENSE_MAX:
        close = np.max(np.abs(dec[:, None, :] - dec[None, :, :]), axis=2) < merge_tol
        first = np.argmax(close, axis=1)  # the heaviest cluster each one is close to
        rep = first
    elif p_t.size > 1:  # the same from the close pairs a k-d tree finds (max-abs metric): O(n_t log n_t) memory
        # the Euclidean radius merge_tol sqrt(n_y) holds every max-abs pair; most often no cluster has a neighbour
        # that close, which a nearest-neighbour query tells faster than the search for all pairs
        tree, r = cKDTree(dec), merge_tol * np.sqrt(dec.shape[1])
        if np.isfinite(tree.query(dec, k=2, distance_upper_bound=r)[0][:, 1]).any():
            pairs = tree.query_pairs(r, output_type="ndarray")
            pairs = pairs[np.max(np.abs(dec[pairs[:, 0]] - dec[pairs[:, 1]]), axis=1) < merge_tol]
            np.minimum.at(rep, pairs.max(axis=1), pairs.min(axis=1))
    labels, inv = np.unique(rep, return_inverse=True)
    new_pt = np.bincount(inv, weights=p_t)
    # the merged cluster's decoder is its members' p(t)-weighted mean (the exact p(y|t) of their union), not the
    # heaviest member's: a member can hold a label's only mass (a row of p(x) = 1e-12 whose label no other row
    # has), and dropping it left that row no cluster with a finite score, the next map NaN
    new_dec = np.zeros((labels.size, dec.shape[1]))
    np.add.at(new_dec, inv, p_t[:, None] * dec)
    new_dec /= new_pt[:, None]
    with np.errstate(divide="ignore"):
        out = State(np.log(new_pt / new_pt.sum()), np.log(new_dec))
    if not mapping:
        return out
    where = np.full(state.log_pt.size, -1)
    where[keep[order]] = inv
    return out, where


def remap_support(sup: Support, where: np.ndarray, n_s: int) -> Support | None:
    """``sup`` carried over to the clusters of :func:`prune_merge` (``where``: old cluster -> new, -1 dropped):
    a class keeps the union of its pairs' new clusters, and ``used`` is kept; None when a class would be left without
    a pair.  Each new cluster's reference state is its heaviest old member's (at the support's state): a pair left
    out of every member scores at most that member's old score plus the drift from it
    (``ibtheory.ib._carry.remapped`` then accounts for the rows whose best cluster was dropped or merged into
    another)."""
    n_t = int(where.max(initial=-1)) + 1
    cols = where[sup.cols]
    ok = np.flatnonzero(cols >= 0)
    key, first = np.unique(sup.rows[ok] * n_t + cols[ok], return_index=True)
    idx = ok[first]
    rows, cols = key // n_t, key % n_t
    counts = np.bincount(rows, minlength=n_s)
    if n_t == 0 or np.any(counts == 0):
        return None
    live = np.flatnonzero(where >= 0)
    live = live[np.lexsort((sup.log_pt[live], where[live]))]  # by new cluster, then by weight at the support's state
    last = np.r_[where[live][1:] != where[live][:-1], True]
    ref = np.empty(n_t, dtype=np.int64)
    ref[where[live[last]]] = live[last]  # the heaviest member
    return Support(np.concatenate([[0], np.cumsum(counts)]), rows, cols, n_t, sup.w_rows[:, idx], sup.neg_h[idx],
                   sup.log_pt[ref], sup.log_dec[ref], used=sup.used, cut=sup.cut)


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
