"""The whole IB curve: annealing over beta, the achievable curve, critical betas and the certified upper curve.

    F(R) = max { I(T;Y) : I(X;T) <= R }       (bits),   concave and non-decreasing, F(R) = I(X;Y) for R >= H(S),

with S the minimal sufficient statistic of X for Y.  At each beta the Lagrangian L = I(X;T) - beta I(T;Y) is
minimised twice:

* reverse annealing: from the largest beta down, starting at the identity encoder on S (optimal as beta -> inf),
  each solution warm-starting the next; clusters whose decoders meet are merged;
* forward annealing: from the smallest beta up, starting at the trivial encoder, splitting every cluster in two
  (a small seeded perturbation) before each beta, so bifurcations are followed;

and the lower Lagrangian is kept.  For |Y| <= 3 every kept solution is certified (``ibtheory.ib.certify``);
a gap above ``gap_tol`` seeds a new cluster at the certificate's maximiser and re-solves.  Where the number of
clusters changes between neighbouring betas, the bracket is bisected (geometric midpoints) until its ratio is below
``1 + critical_rtol``: those are the critical betas (phase transitions of the IB).

The achievable curve is the upper concave hull of all points found plus (0, 0) and the identity point
(H(S), I(X;Y)).  The certified upper curve is

    F_upper(R) = min( R, I(X;Y), min_beta [R + Vmax(beta)] / beta ),   Vmax(beta) <= beta I_TY - I_XT + gap,

because I(T;Y) - R/beta <= Vmax(beta)/beta for every encoder with I(X;T) <= R.

With deterministic labels (every p(y|x) one-hot) the curve is exactly min(R, H(Y)) (Kolchinsky et al. 2019):
the trivial encoder is optimal for beta < 1 and T = Y for beta > 1, and the result says so in its attrs.

References
----------
1. N. Tishby, F. C. Pereira, W. Bialek, "The information bottleneck method", Allerton 1999.
2. N. Slonim, "The information bottleneck: theory and applications", PhD thesis, Hebrew University 2002 (annealing).
3. A. Kolchinsky, B. D. Tracey, S. Van Kuyk, "Caveats for information bottleneck in deterministic scenarios",
   ICLR 2019.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import xarray as xr
from numpy.typing import ArrayLike
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from scipy.spatial import cKDTree
from tqdm.auto import tqdm

from .._validate import flag, integer, real, show
from .._validate import seed as check_seed
from ..info import _real_array, entropy, mutual_information
from ..store import with_provenance
from . import _forward as fw
from . import _improve as im
from . import _iterate as it
from . import _problem as pr
from ._hull import hull_inverse, hull_value, upper_hull
from ._problem import Reduced, check_size, ib_problem
from ._solution import IBSolution, solution_from_state
from .solver import self_consistent_encoder

__all__ = ["ib_curve", "anneal", "curve_value", "curve_inverse", "curve_upper", "default_betas",
           "trivial_critical_beta", "HARD_LABEL_EXPLANATION", "MAX_BETAS"]

#: Largest number of betas ``ib_curve`` takes in one call (``n_betas`` or ``len(betas)``): ~6 ms each on the paper's
#: task, so 10^4 betas already take about a minute and hold 10^4 encoders.  Split a longer grid into several calls.
MAX_BETAS = 10_000
#: Smallest ``critical_rtol``: brackets are bisected until hi/lo < 1 + critical_rtol, which float64 betas cannot
#: resolve much below 1e-15 (and the transitions themselves are not defined to better than ~0.5 %, see ib_curve).
MIN_CRITICAL_RTOL = 1e-9
#: |S| above which ``method="auto"`` uses the forward path even when one of the annealed path's own flags is given
#: (its working set grows as |S|^2)
AUTO_FORWARD = 256
#: largest encoder, in float64 cells (betas x |X| x clusters), that the curve Dataset stores (256 MiB); a larger one
#: is left out (attrs ``encoder_stored = 0``) and is recomputed from p_t, decoder and beta by the encoder equation
#: (:func:`self_consistent_encoder`)
MAX_ENCODER_CELLS = 2**25
#: map evaluations per solve in the critical-beta bisection (enough to tell the cluster count next to a transition)
_BISECTION_BUDGET = 400

HARD_LABEL_EXPLANATION = (
    "deterministic labels: every p(y|x) is one-hot, so Y = g(X) and I(T;Y) <= min(I(X;T), H(Y)) with equality "
    "for T = Y; the IB curve is the trivial F(R) = min(R, H(Y)) (Kolchinsky, Tracey & Van Kuyk, ICLR 2019); the "
    "Lagrangian's minimiser is the trivial encoder for beta < 1 and T = Y for beta > 1 (beta = 1 is the only "
    "critical beta), and intermediate points are reached only by time-sharing"
)


def trivial_critical_beta(p_xy: ArrayLike | Reduced) -> float:
    """beta_0 = 1 / rho_m^2 at which the trivial solution (T independent of X) loses local stability.

    rho_m is the Hirschfeld-Gebelein-Renyi maximal correlation of (X, Y): the second singular value of
    B[x, y] = p(x, y) / sqrt(p(x) p(y)).  The initial slope of the curve satisfies F'(0) = s* >= rho_m^2 (s* the
    strong data-processing constant), so the curve may leave 0 before beta_0 when s* > rho_m^2; for the binary
    symmetric source and the Gaussian, s* = rho_m^2 and beta_0 = 1/(1 - 2p)^2, 1/rho^2.  Returns inf when X and Y are
    independent.  See ``ibtheory.ib.analytic`` for a symbolic derivation.

    >>> round(trivial_critical_beta([[0.45, 0.05], [0.05, 0.45]]), 6)
    1.5625
    """
    prob = p_xy if isinstance(p_xy, Reduced) else ib_problem(p_xy)
    joint = prob.p_s[:, None] * prob.W
    p_y = prob.p_y
    keep = p_y > 0
    prod = np.outer(prob.p_s, p_y[keep])
    # where p(s) p(y) underflows (two 1e-170 probabilities), sqrt(p(s)) sqrt(p(y)) instead of sqrt(0)
    B = joint[:, keep] / np.where(prod > 1e-300, np.sqrt(prod), np.outer(np.sqrt(prob.p_s), np.sqrt(p_y[keep])))
    sv = np.linalg.svd(B, compute_uv=False)
    rho2 = float(sv[1] ** 2) if sv.size > 1 else 0.0
    return np.inf if rho2 <= 1e-15 else 1.0 / min(rho2, 1.0)


def default_betas(prob: Reduced, n: int = 240, span: float = 1e4) -> np.ndarray:
    """``n`` log-spaced betas from 0.8 min(1/rho_m^2, ...) (still trivial) to ``span`` times that."""
    b0 = trivial_critical_beta(prob)
    lo = 0.8 * (b0 if np.isfinite(b0) else 1.0)
    return np.geomspace(lo, lo * span, n)


def anneal(prob: Reduced, betas: Sequence[float], direction: str = "reverse", tol: float = 1e-12,
           max_iter: int = 20000, seed: int = 0, split_eps: float = 1e-3) -> Iterator[IBSolution]:
    """Yield one solution per beta of ``betas`` (in the given order), each warm-started from the previous one.

    ``direction="reverse"`` starts at the identity encoder on S (use decreasing betas); ``"forward"`` starts at the
    trivial encoder and splits every cluster before each beta (use increasing betas).
    """
    if direction not in ("reverse", "forward"):
        raise ValueError(f"direction must be 'reverse' or 'forward', got {show(direction)}")
    rng = np.random.default_rng(check_seed(seed))
    if direction == "reverse":
        state = it.from_encoder(prob, np.eye(prob.n_s))
    else:
        state = it.from_encoder(prob, np.ones((prob.n_s, 1)))
    for b in betas:
        if direction == "forward":
            state = im.split(state, rng, split_eps)
        sol, state = im.solve_from(prob, float(b), state, tol, max_iter)
        yield sol


def _trivial_solutions(prob: Reduced, betas: np.ndarray) -> list[IBSolution]:
    """Exact solutions for deterministic labels: one cluster for beta < 1, T = S (= Y) for beta >= 1."""
    out = []
    for b in betas:
        enc = np.ones((prob.n_s, 1)) if b < 1.0 else np.eye(prob.n_s)
        st = it.from_encoder(prob, enc)
        with np.errstate(divide="ignore"):
            st.log_enc = np.log(enc)
        out.append(solution_from_state(prob, float(b), st, 0, 0.0, 1.0))
    return out


def ib_curve(p_xy: ArrayLike, betas: ArrayLike | None = None, *, n_betas: int = 240, tol: float = 1e-12,
             max_iter: int = 500, forward: bool | None = None, certify: bool | None = None, gap_tol: float = 2e-7,
             refine_critical: bool | None = None, critical_rtol: float = 3e-3, keep_brackets: bool = False,
             seed: int = 0, progress: bool = False, method: str = "auto") -> xr.Dataset:
    """Compute the IB curve of ``p_xy`` (n_x, n_y) over a grid of betas (see the module docstring).

    Parameters
    ----------
    p_xy : joint distribution (or a task Dataset with ``p_xy``); zero rows are dropped (``x_class = -1``), equal
        rows p(y|x) merged.
    betas : betas to solve at (finite, > 0; at most ``MAX_BETAS`` = 10^4); default ``n_betas`` (2 to ``MAX_BETAS``)
        log-spaced from 0.8 / rho_m^2 over four decades.  Before any work the working set (~ betas x |S| x
        (|X| + |S| + |Y|) float64 cells, twice the betas when refining) is checked against
        ``ibtheory.ib._problem.MAX_CELLS`` (2 GiB); a ``ValueError`` says how to get under it.
    tol, max_iter : fixed-point tolerance and budget of map evaluations per beta during annealing (a point that
        runs out is still certified, and polished to 1e-13 with a larger budget if its gap exceeds ``gap_tol``;
        the polishing of all such points is batched, so a small annealing budget is the faster choice).
    forward : also run forward annealing with cluster splitting (keeps the lower Lagrangian per beta); default:
        only when not certifying (the certificate's re-seeding already guards against local optima).
    certify : certify every point; adds ``gap`` and ``I_TY_upper``.  Default: when |Y| = 2.  |Y| = 3 is
        supported on both paths (gaps <= 2e-7 bits on random problems; the forward path ~3x faster on 64 x 3) but
        many times slower than the uncertified curve, so opt-in.
    gap_tol : a certified gap above this (bits) triggers re-seeding at the certificate's maximiser.
    refine_critical : bisect brackets where the cluster count changes (default: when ``betas`` is None).
    critical_rtol : bisection stops when the bracket's ratio is below 1 + critical_rtol (>= 1e-9).  Finer is rarely
        meaningful: next to a transition the cluster count of a solve depends on its warm start (hysteresis), and
        annealing the same grid from other starts moves the critical betas by up to ~0.5 %.
    keep_brackets : also put the two solutions that end each final bracket on the curve (slow to certify).
    seed : seed of the forward-annealing perturbations (an integer in [0, 2**63 - 1]).
    progress : tqdm progress bar over betas.
    method : ``"anneal"``: reverse annealing from one cluster per class of S (and forward annealing, bisected
        critical betas) as described above; its working set grows as |S|^2.  ``"forward"``: forward annealing with
        splits predicted by linear stability (``ibtheory.ib._forward``): clusters are created only where the
        second variation turns negative, so the work per map evaluation is O(|S| K), K the clusters carrying mass;
        for |Y| = 2 each point is finished by Newton's method and certified by tangent lines
        (``ibtheory.ib._certify_line``), points left above ``gap_tol`` are re-seeded at the certificate's
        maximiser and re-solved from their certified neighbours; critical betas come from the stability
        condition beta rho_t^2 = 1 with their precision.  For |Y| > 2 (uncertified: ``residual`` per point) it
        keeps the lower Lagrangian of that sweep and a reverse sweep from one cluster per class, the maps running
        on sparse supports (pairs (s, t) within e^-30 of each class's largest weight) once |S| x clusters is large;
        its up-front memory estimate (the points, 2 x betas x |S| x (|Y| + 1) float64, plus the larger of the
        supports and the stored encoder) is checked against ``MAX_CELLS``.  ``"auto"`` (default): ``"forward"``
        (for |Y| = 2 faster and certified; for |Y| > 2 never above the annealed path, which on 59 of 108 small
        awkward tables was 1e-6 to 0.06 bits above it), ``"anneal"`` when one of its own flags (``forward``,
        ``refine_critical``, ``keep_brackets``) is given and |S| <= 256.

    Returns
    -------
    xarray.Dataset over ``beta`` (increasing) with I_XT, I_TY, lagrangian (bits), encoder(beta, x, t) (clusters
    padded with p_t = 0 and zero rows where a beta has fewer), decoder(beta, t, y), p_t(beta, t), converged,
    n_clusters, iterations, residual, and when certified gap(beta) and I_TY_upper(beta) (bits); the achievable curve
    hull_I_XT(hull), hull_I_TY(hull); critical_betas(critical) with critical_precision(critical) (relative);
    x_class(x).  The encoder is left out when it would exceed ``MAX_ENCODER_CELLS`` (attrs encoder_stored = 0 and
    encoder_note say how to recompute it).  Attrs: certified (0 adds certificate_note), I_XY, H_Y, H_S (bits),
    deterministic, explanation, beta_trivial (1/rho_m^2), max_gap.

    Examples
    --------
    >>> c = ib_curve([[0.45, 0.05], [0.05, 0.45]], n_betas=20)
    >>> bool(c.I_TY.max() <= c.attrs["I_XY"] + 1e-12)
    True
    """
    user_betas = betas is not None
    bs = _check_betas(betas) if user_betas else None
    n_betas = integer(n_betas, "n_betas", 2)
    if n_betas > MAX_BETAS:
        raise ValueError(f"n_betas = {n_betas} exceeds MAX_BETAS = {MAX_BETAS}: compute the curve over parts of the "
                         f"beta range (betas=...) in several calls and concatenate them, or raise "
                         f"ibtheory.ib.curve.MAX_BETAS")
    tol = real(tol, "tol", 0.0, low_open=True)
    max_iter = integer(max_iter, "max_iter", 1)
    gap_tol = real(gap_tol, "gap_tol", 0.0, low_open=True)
    critical_rtol = real(critical_rtol, "critical_rtol", MIN_CRITICAL_RTOL)
    seed = check_seed(seed)
    forward, certify, refine_critical = (flag(v, nm, allow_none=True) for nm, v in
                                         (("forward", forward), ("certify", certify),
                                          ("refine_critical", refine_critical)))
    keep_brackets, progress = flag(keep_brackets, "keep_brackets"), flag(progress, "progress")
    if method not in ("auto", "anneal", "forward"):
        raise ValueError(f"method must be 'auto', 'anneal' or 'forward', got {show(method)}")
    prob = ib_problem(p_xy)
    if method == "auto":
        anneal_flags = forward is not None or refine_critical is not None or keep_brackets
        wide = prob.n_s > AUTO_FORWARD or not anneal_flags
        method = "forward" if wide and not prob.deterministic else "anneal"
    if method == "forward" and not prob.deterministic:
        return _forward_curve(prob, bs, n_betas, user_betas, tol, max_iter, certify, gap_tol, critical_rtol, seed,
                              progress)
    n_points = len(bs) if user_betas else n_betas
    refine = (not user_betas) if refine_critical is None else refine_critical
    # the fill of steep stretches adds up to as many betas again
    check_size(prob, prob.n_s, n_points * (2 if refine and not prob.deterministic else 1), what="the IB curve",
               hint="use fewer betas, or coarsen X (the curve starts from one cluster per distinct p(y|x) and "
                    "stores an encoder over every x per beta)")
    if not user_betas:
        bs = np.geomspace(0.1, 10.0, n_betas) if prob.deterministic else default_betas(prob, n_betas)
    do_cert = (prob.n_y == 2) if certify is None else certify
    if do_cert and prob.n_y > 3:
        raise ValueError(f"certify=True needs |Y| <= 3, got |Y| = {prob.n_y}")
    forward = (not do_cert) if forward is None else forward
    bar = tqdm(total=len(bs) * (2 if forward else 1), disable=not progress, desc="IB curve", unit="beta")

    if prob.deterministic:
        sols = dict(zip(bs.tolist(), _trivial_solutions(prob, bs), strict=True))
        others: list[IBSolution] = []
        critical = np.array([1.0])
    else:
        sols, others = {}, []
        for sol in anneal(prob, bs[::-1], "reverse", tol, max_iter):
            sols[sol.beta] = sol
            bar.update()
        if forward:
            for sol in anneal(prob, bs, "forward", tol, max_iter, seed=seed):
                if sol.lagrangian < sols[sol.beta].lagrangian - 1e-14:
                    others.append(sols[sol.beta])
                    sols[sol.beta] = sol
                else:
                    others.append(sol)
                bar.update()
        critical = (_refine_critical(prob, sols, tol, max_iter, critical_rtol, keep_brackets)
                    if refine else _brackets(sols))
        if refine:
            _fill(prob, sols, tol, max_iter, max_step=_steep_step(prob, len(bs)), budget=len(bs))
    bar.close()
    if do_cert:
        im.certify_all(prob, sols, tol, max_iter, gap_tol)
    return _dataset(prob, sols, others, critical, do_cert, dict(
        n_betas=int(len(bs)), tol=tol, max_iter=int(max_iter), forward=bool(forward), certify=do_cert,
        gap_tol=gap_tol, refine_critical=refine, critical_rtol=critical_rtol, keep_brackets=bool(keep_brackets),
        seed=int(seed),
        betas_given=user_betas))


def _check_betas(betas: ArrayLike) -> np.ndarray:
    """User betas as a sorted array of distinct floats, or ``ValueError`` naming ``betas``."""
    bs = np.atleast_1d(_real_array(betas, "betas"))
    if bs.ndim != 1 or bs.size == 0:
        raise ValueError(f"betas must be a non-empty 1-D array, got shape {bs.shape}")
    if bs.size > MAX_BETAS:
        raise ValueError(f"betas has {bs.size} values, more than MAX_BETAS = {MAX_BETAS}: compute the curve over "
                         f"parts of the grid in several calls and concatenate them, or raise "
                         f"ibtheory.ib.curve.MAX_BETAS")
    bad = np.flatnonzero(~(np.isfinite(bs) & (bs > 0)))
    if bad.size:
        raise ValueError(f"betas must be positive finite numbers; betas[{bad[0]}] is {show(bs[bad[0]])}")
    return np.unique(bs)


def _n_clusters(sol: IBSolution, tol: float = 1e-4) -> int:
    """Effective clusters: groups of decoders closer than ``tol`` (max abs, single linkage: connected components
    of the graph of close pairs) with p(t) > 1e-9.  Above 256 clusters the close pairs come from a k-d tree
    (memory O(n_t) instead of n_t^2)."""
    dec = sol.decoder[sol.p_t > 1e-9]
    if len(dec) <= 1:
        return len(dec)
    if len(dec) <= 256:
        close = np.max(np.abs(dec[:, None, :] - dec[None, :, :]), axis=2) < tol
        if np.count_nonzero(close) == len(dec):  # no decoder has another within tol
            return len(dec)
        return int(connected_components(close, directed=False)[0])
    tree = cKDTree(dec)
    if not np.isfinite(tree.query(dec, k=2, p=np.inf, distance_upper_bound=tol)[0][:, 1]).any():
        return len(dec)  # no decoder has another within tol
    pairs = tree.query_pairs(tol, p=np.inf, output_type="ndarray")
    pairs = pairs[np.max(np.abs(dec[pairs[:, 0]] - dec[pairs[:, 1]]), axis=1) < tol]
    graph = coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(len(dec), len(dec)))
    return int(connected_components(graph, directed=False)[0])


def _brackets(sols: dict) -> np.ndarray:
    b = np.array(sorted(sols))
    n = np.array([_n_clusters(sols[x]) for x in b])
    idx = np.flatnonzero(n[1:] != n[:-1])
    return np.sqrt(b[idx] * b[idx + 1])


def _steep_step(prob: Reduced, n_betas: int) -> float:
    """Bits of I(X;T) between neighbouring points above which a stretch of the curve gets an extra beta (both
    paths): 2 log2|S| / n_betas."""
    return 2.0 * float(np.log2(prob.n_s)) / n_betas


def _fill(prob, sols: dict, tol, max_iter, max_step: float, budget: int) -> None:
    """Insert geometric-midpoint betas where neighbouring points are more than ``max_step`` bits apart in
    I(X;T) (steep stretches just above a critical beta; :func:`~ibtheory.ib._forward.steep_gaps`, as the forward
    path), at most ``budget`` of them, a round at a time; warm-started from above."""
    added = 0
    while added < budget:
        b = np.array(sorted(sols))
        steep = fw.steep_gaps(b, np.array([sols[x].I_XT for x in b]), max_step, budget - added)
        if steep.size == 0:
            return
        for i in steep:
            mid = float(np.sqrt(b[i] * b[i + 1]))
            sols[mid], _ = im.solve_from(prob, mid, im.state_of(sols[b[i + 1]]), tol, max_iter)
        added += steep.size


def _refine_critical(prob, sols: dict, tol, max_iter, rtol, keep_brackets: bool = False) -> np.ndarray:
    """Bisect every bracket where the cluster count changes until its ratio is below 1 + ``rtol``; return the
    critical betas (geometric midpoints of the final brackets).  All brackets are bisected together, one level at a
    time: the 2 solves per bracket (warm-started from above, and from the split solution below) of a level are one
    batched fixed point.  The bisection's solutions sit within ``rtol`` of a transition, where critical slowing
    down makes them slow to polish and certify; they are added to ``sols`` only with ``keep_brackets`` (the two
    ends of each final bracket)."""
    crit = []
    work = dict(sols)
    counts = {b: _n_clusters(work[b]) for b in work}
    b = sorted(work)
    todo = [(b[i], b[i + 1]) for i in range(len(b) - 1) if counts[b[i]] != counts[b[i + 1]]]
    budget = _BISECTION_BUDGET
    while todo:
        active = []
        for lo, hi in todo:
            if hi / lo < 1 + rtol:
                crit.append(np.sqrt(lo * hi))
                if keep_brackets:
                    sols[lo], sols[hi] = work[lo], work[hi]
            else:
                active.append((lo, hi))
        if not active:
            break
        mids = [float(np.sqrt(lo * hi)) for lo, hi in active]
        starts = ([im.state_of(work[hi]) for _, hi in active]
                  + [im.split(im.state_of(work[lo]), np.random.default_rng(0), 1e-3) for lo, _ in active])
        solved = im.solve_many(prob, mids + mids, starts, tol, budget)
        todo = []
        for j, ((lo, hi), mid) in enumerate(zip(active, mids, strict=True)):
            work[mid] = im.better(solved[j][0], solved[j + len(active)][0])
            counts[mid] = _n_clusters(work[mid])
            if counts[lo] != counts[mid]:
                todo.append((lo, mid))
            if counts[mid] != counts[hi]:
                todo.append((mid, hi))
    return np.sort(np.array(crit))


def _dataset(prob: Reduced, sols: dict, others: list, critical: np.ndarray, certified: bool,
             config: dict, precision: np.ndarray | None = None) -> xr.Dataset:
    betas = np.array(sorted(sols))
    S = [sols[b] for b in betas]
    n_t = max(s.n_t for s in S)
    nb = len(betas)
    store_encoder = nb * prob.n_x * n_t <= MAX_ENCODER_CELLS
    # encoders are built on the classes (n_s rows) and expanded to every x in one gather
    rep = np.zeros(prob.n_s, dtype=np.int64)
    cls = prob.classes
    rep[cls[cls >= 0][::-1]] = np.flatnonzero(cls >= 0)[::-1]  # first x of every class
    enc_s = np.zeros((nb, prob.n_s, n_t)) if store_encoder else None
    dec = np.zeros((nb, n_t, prob.n_y))
    pt = np.zeros((nb, n_t))
    for i, s in enumerate(S):
        order = np.argsort(-s.p_t, kind="stable")
        if store_encoder:
            rows = (s.encoder[rep] if isinstance(s, IBSolution)  # a forward point: the encoder equation
                    else self_consistent_encoder(prob.p_s, prob.W, s.decoder, s.p_t, s.beta))
            enc_s[i, :, : s.n_t] = rows[:, order]
        dec[i, : s.n_t] = s.decoder[order]
        pt[i, : s.n_t] = s.p_t[order]
    enc = None
    if store_encoder:
        enc = enc_s[:, np.maximum(cls, 0), :]
        if np.any(cls < 0):
            enc[:, cls < 0, :] = pt[:, None, :]
    ixt = np.array([s.I_XT for s in S])
    ity = np.array([s.I_TY for s in S])
    I_XY = mutual_information(prob.p_s[:, None] * prob.W, normalize=True)
    H_S = entropy(prob.p_s)
    allx = np.concatenate([ixt, [s.I_XT for s in others], [H_S]])
    ally = np.concatenate([ity, [s.I_TY for s in others], [I_XY]])
    hx, hy = upper_hull(allx, np.minimum(ally, I_XY))
    bits = {"units": "bits"}
    ds = xr.Dataset(
        {
            "I_XT": ("beta", ixt, {**bits, "long_name": "I(X;T)"}),
            "I_TY": ("beta", ity, {**bits, "long_name": "I(T;Y)"}),
            "lagrangian": ("beta", ixt - betas * ity, {**bits, "long_name": "I(X;T) - beta I(T;Y)"}),
            "decoder": (("beta", "t", "y"), dec, {"long_name": "p(y|t) (zero rows: padding, p_t = 0)"}),
            "p_t": (("beta", "t"), pt, {"long_name": "p(t)", "units": "1"}),
            "converged": ("beta", np.array([s.converged for s in S]),
                          {"long_name": "fixed point reached (map residual below tol, the objective stalled, or "
                                        "Newton's gradient below 1e-9)"}),
            "n_clusters": ("beta", np.array([_n_clusters(s) for s in S]), {"long_name": "effective clusters"}),
            "iterations": ("beta", np.array([s.iterations for s in S])),
            "residual": ("beta", np.array([s.residual for s in S]), {"long_name": "max |G(theta) - theta|"}),
            "hull_I_XT": ("hull", hx, {**bits, "long_name": "achievable curve (upper concave hull): I(X;T)"}),
            "hull_I_TY": ("hull", hy, {**bits, "long_name": "achievable curve (upper concave hull): I(T;Y)"}),
            "critical_betas": ("critical", np.asarray(critical, dtype=np.float64),
                               {"long_name": "betas where the number of clusters changes"}),
            "critical_precision": ("critical", (np.full(len(critical), config.get("critical_rtol", np.nan) / 2)
                                                if precision is None else np.asarray(precision, dtype=np.float64)),
                                   {"long_name": "relative precision of each critical beta", "units": "1"}),
            "x_class": ("x", prob.classes, {"long_name": "sufficient-statistic class of x (-1: p(x) = 0)"}),
        },
        coords={"beta": betas, "x": np.arange(prob.n_x), "t": np.arange(n_t), "y": np.arange(prob.n_y)},
    )
    if store_encoder:
        ds["encoder"] = (("beta", "x", "t"), enc, {"long_name": "p(t|x)", "units": "1"})
        ds["encoder"].encoding.update(zlib=True, complevel=1)
    if certified:
        gap = np.array([s.gap for s in S], dtype=np.float64)
        ds["gap"] = ("beta", gap, {**bits, "long_name": "certified bound on L - min L"})
        ds["I_TY_upper"] = ("beta", _upper(ixt, ity, gap, betas, I_XY, ixt),
                            {**bits, "long_name": "certified upper bound on F(I_XT)"})
    ds.attrs.update(
        I_XY=I_XY, H_Y=entropy(prob.p_y), H_S=H_S, n_classes=prob.n_s, deterministic=int(prob.deterministic),
        explanation=HARD_LABEL_EXPLANATION if prob.deterministic else "stochastic labels: non-trivial IB curve",
        beta_trivial=trivial_critical_beta(prob), merge_error=prob.merge_error,
        max_gap=float(ds["gap"].max()) if certified else -1.0, info_units="bits", encoder_stored=int(store_encoder),
        certified=int(certified), method=config.get("method", "anneal"),
    )
    if not store_encoder:
        ds.attrs["encoder_note"] = (
            f"encoder not stored ({nb} betas x {prob.n_x} x {n_t} cells > MAX_ENCODER_CELLS = {MAX_ENCODER_CELLS}); "
            "p(t|x) = ibtheory.ib.self_consistent_encoder(p_x, p_y_x, decoder, p_t, beta) at each beta")
    if not certified:
        ds.attrs["certificate_note"] = (
            "uncertified curve: no bound on the distance to the optimum; 'residual' is each point's self-"
            "consistency residual max |G(theta) - theta| of the IB equations")
    return with_provenance(ds, config=config, seed=config.get("seed"))


def _forward_curve(prob: Reduced, bs, n_betas, user_betas, tol, max_iter, certify, gap_tol, critical_rtol, seed,
                   progress) -> xr.Dataset:
    """``ib_curve(method="forward")``: see ``ibtheory.ib._forward``."""
    if not user_betas:
        bs = default_betas(prob, n_betas)
    do_cert = (prob.n_y == 2) if certify is None else certify
    if do_cert and prob.n_y > 3:
        raise ValueError(f"certify=True needs |Y| <= 3, got |Y| = {prob.n_y}: use certify=False")
    if prob.n_y == 2:
        k_est = _cluster_estimate(prob, float(np.max(bs)))
        check_size(prob, k_est, 1, what="the forward IB curve",
                   hint=f"the estimate assumes {k_est} clusters at the largest beta: use smaller betas or a coarser X")
    else:
        _check_forward_memory(prob, len(bs))
    bar = tqdm(total=len(bs) * (1 if prob.n_y == 2 else 2), disable=not progress, desc="IB curve", unit="beta")
    points, critical, precision = fw.forward_curve(prob, bs, tol, max_iter, do_cert, gap_tol, critical_rtol,
                                                   step=bar.update)
    bar.close()
    if prob.n_y == 2 and not user_betas:  # as the annealed path: extra betas on steep stretches
        points = fw.fill_steep(prob, points, _steep_step(prob, len(bs)), len(bs), tol, max_iter, do_cert, gap_tol)
    sols = {p.beta: p for p in points}
    return _dataset(prob, sols, [], critical, do_cert, dict(
        n_betas=int(len(bs)), tol=tol, max_iter=int(max_iter), forward=True, certify=do_cert, gap_tol=gap_tol,
        refine_critical=True, critical_rtol=critical_rtol, keep_brackets=False, seed=int(seed),
        betas_given=user_betas, method="forward"), precision)


def _cluster_estimate(prob: Reduced, beta_max: float) -> int:
    """A rough bound on the clusters the |Y| = 2 forward path holds at ``beta_max`` (for the size guard): clusters
    are about 1 / sqrt(beta) apart in each of the |Y| - 1 directions of p(y|t), so ~ 4 (beta_max /
    beta_0)^((|Y|-1)/2), at most |S|.  (|Y| > 2: :func:`_forward_memory`.)"""
    b0 = trivial_critical_beta(prob)
    b0 = b0 if np.isfinite(b0) else 1.0
    est = 4.0 * max(beta_max / b0, 1.0) ** ((prob.n_y - 1) / 2.0) + 8
    return int(min(prob.n_s, est))


#: pairs per class the size estimate allows for the |Y| > 2 supports (measured: <= ~200 on random tables)
_PAIRS_PER_CLASS = 256


def _forward_memory(prob: Reduced, n_betas: int) -> tuple[int, str]:
    """Estimated peak memory (bytes) of ``ib_curve(method="forward")`` for |Y| > 2, and what it is made of.

    The reverse sweep starts from one cluster per class at the largest beta, so up to |S| clusters per beta are
    kept: the two sweeps' points, then the Dataset, hold 2 x betas x |S| x (|Y| + 1) float64 cells.  While the
    curve is solved the map runs densely up to ``_forward.SPARSE_CELLS`` cells, else on a sparse support of at
    most min(``_forward.MAX_NNZ``, |S| x 256) pairs (:func:`_pair_bytes` each); afterwards the encoder is stored
    up to ``MAX_ENCODER_CELLS`` (twice: per class and per x).
    """
    points = 2 * n_betas * prob.n_s * (prob.n_y + 1) * 8
    pairs = min(fw.MAX_NNZ, prob.n_s * min(prob.n_s, _PAIRS_PER_CLASS))
    work = max(pairs * _pair_bytes(prob.n_y), 10 * fw.SPARSE_CELLS * 8)
    enc = 2 * 8 * min(n_betas * prob.n_x * prob.n_s, MAX_ENCODER_CELLS)
    what = (f"{n_betas} betas x |S| {prob.n_s} clusters x (|Y| {prob.n_y} + 1) for the points {points / 2**30:.2f} "
            f"GiB, then the larger of {pairs:.3g} support pairs {work / 2**30:.2f} GiB and the encoder "
            f"{enc / 2**30:.2f} GiB")
    return points + max(work, enc), what


def _pair_bytes(n_y: int) -> int:
    """Peak bytes per pair of a |Y| > 2 sparse support: its indices, W per pair, the map's temporaries and, while
    the next support is built, the candidates (measured: 300 with |Y| = 6, 4.2e6 pairs on a 20,000-row table)."""
    return 120 + 30 * n_y


def _check_forward_memory(prob: Reduced, n_betas: int) -> None:
    """Refuse, before any work, a |Y| > 2 forward curve whose :func:`_forward_memory` exceeds
    ``ibtheory.ib._problem.MAX_CELLS`` float64 cells (2 GiB), naming the memory it would need."""
    need, what = _forward_memory(prob, n_betas)
    limit = pr.MAX_CELLS
    if need > limit * 8:
        raise ValueError(
            f"the forward IB curve needs ~{need / 2**30:.1f} GiB ({what}), above the limit MAX_CELLS = "
            f"{limit:.3g} cells ({limit * 8 / 2**30:.3g} GiB); use fewer betas or a coarser X, or raise "
            f"ibtheory.ib._problem.MAX_CELLS if the memory is there")


def _upper(ixt, ity, gap, betas, I_XY, R) -> np.ndarray:
    R = np.asarray(R, dtype=np.float64)
    vals = ity[None, :] + (R.reshape(-1, 1) - ixt[None, :] + gap[None, :]) / betas[None, :]
    return np.minimum(np.minimum(vals.min(axis=1), R.ravel()), I_XY).reshape(R.shape)


def _check_R(R, name) -> np.ndarray:
    arr = _real_array(R, name)
    if not np.all(np.isfinite(arr)) or np.any(arr < 0):
        raise ValueError(f"{name} must be finite and >= 0 (bits)")
    return arr


def _check_curve(curve, needs: tuple[str, ...] = ("hull_I_XT", "hull_I_TY")) -> xr.Dataset:
    if not isinstance(curve, xr.Dataset) or any(k not in curve for k in needs):
        raise ValueError(f"curve must be the Dataset returned by ib_curve (with {', '.join(needs)}), got "
                         f"{type(curve).__name__}")
    return curve


def curve_value(curve: xr.Dataset, R: ArrayLike) -> np.ndarray:
    """F(R) in bits from the achievable curve of :func:`ib_curve` (linear on the concave hull, I(X;Y) beyond).

    >>> c = ib_curve([[0.5, 0.0], [0.0, 0.5]], n_betas=8)
    >>> curve_value(c, [0.25, 2.0]).tolist()
    [0.25, 1.0]
    """
    curve = _check_curve(curve)
    return hull_value(curve["hull_I_XT"].values, curve["hull_I_TY"].values, _check_R(R, "R"))


def curve_inverse(curve: xr.Dataset, I: ArrayLike) -> np.ndarray:
    """Smallest R (bits) with F(R) >= I; +inf for I above I(X;Y) (no encoder reaches it)."""
    curve = _check_curve(curve)
    return hull_inverse(curve["hull_I_XT"].values, curve["hull_I_TY"].values, _check_R(I, "I"))


def curve_upper(curve: xr.Dataset, R: ArrayLike) -> np.ndarray:
    """Certified upper edge F_upper(R) = min(R, I(X;Y), min_beta [I_TY + (R - I_XT + gap) / beta]) in bits.

    Raises ``ValueError`` if the curve carries no certificate (``gap``; |Y| > 3 or ``certify=False``).
    """
    curve = _check_curve(curve, ("I_XT", "I_TY", "beta"))
    if "gap" not in curve:
        raise ValueError("curve has no certificate ('gap'): compute it with certify=True (needs |Y| <= 3)")
    return _upper(curve["I_XT"].values, curve["I_TY"].values, curve["gap"].values, curve["beta"].values,
                  float(curve.attrs["I_XY"]), _check_R(R, "R"))
