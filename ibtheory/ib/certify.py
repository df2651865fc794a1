"""A certificate of optimality for IB solutions with |Y| = 2 or 3: a rigorous upper bound on the Lagrangian gap.

Write beta I(T;Y) - I(X;T) = H(X) - beta H(Y) + sum_t p(t) phi(q_t), with q_t = p(x|t) and

    phi(q) = H(q) - beta H(q W)          (nats; W = p(y|x), a row-stochastic (n_x, n_y) matrix).

Every decomposition p(x) = sum_t p(t) q_t is an encoder, so the optimum is the upper concave envelope of phi at
p(x).  Any vector a gives the affine function q -> a.q; if phi(q) <= a.q + g for all q then the optimum is at most
a.p(x) + g.  At a self-consistent solution the choice

    a_x = -ln p(x) - beta H(p(y|x)) + ln Z(x, beta)

is a plane touching phi at every q_t, so the achieved value equals a.p(x) and

    gap = a.p(x) - achieved + g,    g = max_q [phi(q) - a.q] >= 0,

bounds how far the Lagrangian I(X;T) - beta I(T;Y) is above the global minimum (reported in bits).  To bound g,
parametrise s = q W (k = |Y| - 1 free coordinates s_1..s_k, lambda in R^k acting on them):

    max {H(q) - a.q : q W = s} = psi(s) = min_lambda F(lambda, s),  F = ln sum_x exp(-a_x - lambda.(W_x - s)),

so g = max_s [psi(s) - beta H(s)].  For fixed lambda, F(lambda, s) - beta H(s) is convex in s (affine minus
concave), so on a simplex cell C of s-space with vertices v_i,

    max_{s in C} [psi(s) - beta H(s)] <= min_lambda max_i [F(lambda, v_i) - beta H(v_i)] <= max_i [...](lambda_c)

for any candidate lambda_c.  By Sion's minimax theorem the middle term equals max_{s in C} [psi(s) - beta Hlin(s)],
Hlin the linear interpolant of H on C (F is affine in s): the only slack is beta max_C (H - Hlin) = O(beta h^2), h
the cell's size, so refining the cells near the maximisers drives the bound to g.

|Y| = 2 (k = 1): cells are intervals between images v(lambda) = E_lambda[W] of chosen lambdas (so their lambda
is known exactly) and the extreme rows of W; the candidates (each vertex's lambda and the lambda equalising both
vertex terms) give the exact minimum over lambda; a cell is split at the image of its equalising lambda.  This
interval branch and bound sums every row for every cell; from ``LINE_ROWS`` classes on, g is bounded instead by the
tangent lines of ``ibtheory.ib._certify_line`` (windowed vertex sums and curved cell bounds: the curves' own
certificate), which bounds the same g to the same target.

|Y| = 3 (k = 2): cells are triangles, first a fan from an interior point over the hull polygon of the rows W~_x
(the domain of s), then split into four at their edges' midpoints while their bound exceeds the target (branch and
bound; a cell is final once its bound is below max(target, best lower bound)).  The minimum over lambda of the
max of three convex terms is attained at one of: the lambda equalising the three terms (F(., v_i) - F(., v_j) is
affine in lambda: a 2x2 linear system; optimal when the Gibbs mean E_lambda[W~] lies in the cell), for each edge
the best lambda on the line where its two terms are equal (the maximiser on that edge; damped Newton), or a
vertex's own lambda (damped Newton), so all of them are candidates, plus the parent cell's best.  Every candidate
gives a valid bound whatever its accuracy; the bound adds a rounding allowance of 1e-14 (|a| + 2|lambda|_1 + 2 c)
nats, which also makes the huge multipliers of degenerate cells harmless.  Rows collinear up to rounding (e.g.
|X| = 2) reduce to the 1-D problem on their segment.  Where a cluster touches the plane, psi - beta H is flat to
second order and the vertex bound's O(beta h^2) slack made cells crowd around it; a cell this bound leaves open
is also bounded through the curvature of psi (``_certify_2d._curved_bounds``: a bound on the Gibbs covariance over
its vertices' multipliers, from the log-convexity of the second moments, gives a quadratic upper model of A and so
of psi; -beta H is bounded by its tangent plus its largest Hessian on the cell), whose slack is third order.

The maximising q (a Gibbs q ~ exp(-a - lambda.W), its value evaluated for the normalised q actually formed, so it
is an exact lower bound on g up to rounding) seeds a new cluster when the gap is too large (``seed_cluster``).

Light rows (``certify_state(tighten=True)``).  Rows of p(x) ~1e-10 and below far from every cluster, alone or as
mixtures, stick out of the tangent plane by up to beta times their distance to the clusters, although clusters of
their own would change the Lagrangian by ~1e-12 of that.  Two more valid bounds, the smallest kept: the plane
raised over the rows the maximiser sits on (``_raised``: a costs delta p(R) in a.p(x) and removes delta q*(R) of
the excess), and the heavy rows' problem certified with the lightest rows charged their largest effect
(:func:`split_light`).

References
----------
1. N. Tishby, F. C. Pereira, W. Bialek, "The information bottleneck method", Allerton 1999.
2. H. S. Witsenhausen and A. D. Wyner, "A conditional entropy bound for a pair of discrete random variables",
   IEEE Trans. Inf. Theory 21 (1975) 493-501 (the envelope formulation).
"""

from __future__ import annotations

import numpy as np

from ..info import LN2, kl_matrix
from . import _iterate as it
from ._certify_1d import _GRID_1D, Certificate, _bound_1d, _gibbs_values, tangent_plane
from ._certify_2d import _bound_2d
from ._certify_line import line_bounds
from ._problem import Reduced, ib_problem

__all__ = ["Certificate", "certify_state", "certify_solution", "seed_cluster", "split_light", "light_rows",
           "light_hope"]

#: nats of the bound that the rows left out by :func:`split_light` may cost: beta (eps I_L(X;Y) + I(Z;Y)) at most
#: this (twice the cell target of :func:`certify_state`)
LIGHT_BUDGET = 4e-8
#: nats the raises of the plane over light rows (``_raised``) may add to the bound in all, and their most rounds
RAISE_BUDGET = 2e-8
RAISE_ROUNDS = 8
#: |Y| = 2 from this many classes: g is bounded by the tangent lines of ``_certify_line`` (windowed vertex sums),
#: below by the interval branch and bound of ``_certify_1d._bound_1d`` (which sums every row for every cell: 53 s
#: for one point of a 16,384 x 2 curve, against 0.09 s; the batched ``_certify_batch.certify_many`` reproduces it)
LINE_ROWS = 128
#: |Y| = 3: the branch and bound's cell budget, in units of ``max_points`` (3 before the fifth session of 7 Dec: on
#: 256 x 3 certificates from beta ~88 up ran out at 60,000 cells and five points ended at 1.0-2.8e-3 bits, their
#: repairs each spending another 60,000-cell certificate; with 10 every point closed below 1.8e-7 bits, 616 -> 490 s)
CELLS_2D = 10
#: ... and at least this many cells per cluster (the cells gather around the clusters: a 1024 x 3 curve's points
#: with 400-800 clusters ran out of 200,000 cells)
CELLS_PER_CLUSTER = 1000

def certify_state(prob: Reduced, beta: float, solution, target: float = 2e-8, max_rounds: int = 60,
                  max_points: int = 20000, warm: np.ndarray | None = None, tighten: bool = False,
                  split: bool = True) -> Certificate:
    """Certificate for an :class:`~ibtheory.ib.solver.IBSolution` on the reduced problem ``prob`` (|Y| <= 3).

    ``target`` (nats) is the cell bound below which refinement stops; ``warm`` (n, k) extra multipliers divided by
    beta (``Certificate.lambdas`` of a nearby beta) seed the mesh (|Y| = 2) or the lower bound (|Y| = 3).  The
    |Y| = 3 branch and bound may use 4 ``max_rounds`` rounds and ``CELLS_2D`` ``max_points`` cells, or
    ``CELLS_PER_CLUSTER`` per cluster if more; a bound that runs out of budget is still valid (``converged``
    False).  With ``tighten`` a gap above 4 ``target`` is tightened where the maximiser sits on light rows: the
    plane raised over them (:func:`_raised`), then, with ``split``, the bound of :func:`split_light` if smaller (the
    curves do this only for points their repairs left above ``gap_tol``: a tighter bound there would leave
    unrepaired points up to ~``gap_tol`` above the optimum instead of ~1e-9).  See the module docstring.
    """
    if prob.n_y > 3:
        raise ValueError(f"the certificate handles |Y| <= 3, got |Y| = {prob.n_y}")
    W = prob.W
    p_t, dec = solution.p_t, solution.decoder
    neg_h = prob.neg_entropy_rows
    with np.errstate(divide="ignore"):
        log_dec = np.log(dec)
        D = kl_matrix(W, log_dec, neg_h, "nats").T
        L = np.log(p_t)[None, :] - beta * D
    a, consistency = tangent_plane(prob, beta, solution, it.lse(L, axis=1))
    k = prob.n_y - 1
    Wt = W[:, 1:]
    with np.errstate(divide="ignore", invalid="ignore"):
        lam_t = beta * (log_dec[:, :1] - log_dec[:, 1:])
    lam_t = lam_t[np.all(np.isfinite(lam_t), axis=1)]
    extra = [np.zeros((1, k))] + ([] if warm is None else [beta * warm])

    def bound(a, more=()):
        if k == 1:  # vertices: cluster points, an asinh-spaced lambda grid, the hull's ends (lambda infinite)
            lam = np.concatenate([lam_t, _GRID_1D[:, None]] + extra + list(more))
            if prob.n_s >= LINE_ROWS:
                return _line_bound(a, Wt, W, beta, lam, target, max_rounds, max_points)
            return _bound_1d(a, Wt, W, beta, lam, target, max_rounds, max_points)
        # the multipliers seed the lower bound only; the mesh starts from the hull of the rows
        return _bound_2d(a, Wt, W, beta, np.concatenate([lam_t] + extra + list(more)), target, 4 * max_rounds,
                         max(CELLS_2D * max_points, CELLS_PER_CLUSTER * len(lam_t)))

    out = bound(a)
    if tighten and consistency + out[0] > 4 * target:
        consistency, out = _raised(prob.p_s, a, consistency, out, bound, target)
    g_up, lower, q_best, n_cells, done, keep_lam = out
    gap = max(consistency + g_up, 0.0) / LN2
    cert = Certificate(gap, g_up, lower, consistency, q_best, n_cells, done, keep_lam / beta)
    if tighten and split and gap * LN2 > 4 * target:
        return split_light(prob, beta, solution, cert, target=target, max_rounds=max_rounds, max_points=max_points)
    return cert


def _line_bound(a, Wt, W, beta, lam, target, max_rounds, max_points):
    """|Y| = 2: g's bound by the tangent lines of :func:`ibtheory.ib._certify_line.line_bounds` (the curves'
    certificate: windowed vertex sums, curved cell bounds), from multipliers ``lam`` (m, 1); returns (g_upper,
    g_lower, q*, cells, converged, multipliers of the largest cells' ends (n, 1)), as ``_certify_1d._bound_1d``."""
    g, _, lam_b, cells, done, keep = line_bounds(a[None, :], Wt[:, 0], np.array([beta]), lam[:, 0],
                                                 np.zeros(len(lam), dtype=np.intp), target, max_rounds=max_rounds,
                                                 max_vertices=max_points)
    lower, q = _gibbs_values(a, Wt, W, beta, lam_b[:, None])
    return float(g[0]), float(lower[0]), q[0], int(cells[0]), bool(done[0]), keep[0][:, None]


def _raised(p_s: np.ndarray, a: np.ndarray, consistency: float, out: tuple, bound, target: float):
    """Raise the plane over the rows the maximiser q* sits on while that lowers the bound and costs at most
    ``RAISE_BUDGET`` nats in all; returns (consistency with the costs, the bound of the last plane kept).

    Any plane a bounds the optimum by a.p(x) + max_q [phi(q) - a.q].  Raising a on rows R by delta lowers
    phi(q) - a.q by delta q(R) and costs delta p(R) in a.p(x): with R the rows holding 90 % of q*, taken by
    p(x) / q*(x), and delta = g / q*(R), q*'s excess is gone at a cost g p(R) / q*(R), tiny where q* sits on light
    rows.  Such maximisers are mixtures of light rows between two clusters: the entropy of the mixture lifts them
    above the tangent plane by up to ~1e-3 nats although a cluster of theirs would change the Lagrangian by
    ~1e-12 (1-8 rounds, each one bound)."""
    spent = 0.0
    for _ in range(RAISE_ROUNDS):
        g_up, lower, q = out[0], out[1], out[2]
        total = consistency + g_up
        if total <= 2 * target:
            break
        rows, delta, cost = _raise(p_s, q, max(g_up, lower))
        if not np.isfinite(cost) or spent + cost > RAISE_BUDGET:
            break
        a = a.copy()
        a[rows] += delta
        new = bound(a, [out[5]])
        if consistency + cost + new[0] >= total:
            break
        consistency, spent, out = consistency + cost, spent + cost, new
    return consistency, out


def _raise(p_s: np.ndarray, q: np.ndarray, g: float) -> tuple[np.ndarray, float, float]:
    """(rows R holding 90 % of ``q``, taken by p(x) / q(x), delta = g / q(R), cost delta p(R)) for :func:`_raised`."""
    idx = np.flatnonzero(q > 0)
    if idx.size == 0:
        return idx, 0.0, np.inf
    idx = idx[np.argsort(p_s[idx] / q[idx], kind="stable")]
    held = np.cumsum(q[idx])
    n = min(int(np.searchsorted(held, 0.9 * held[-1])) + 1, idx.size)
    delta = g / float(held[n - 1])
    return idx[:n], delta, delta * float(p_s[idx[:n]].sum())


def light_hope(prob: Reduced, beta: float, cert: Certificate) -> bool:
    """Whether :func:`certify_state`'s tightening may help ``cert`` (a certificate computed without it): raising
    the plane over its maximiser costs at most ``RAISE_BUDGET``, or some rows are light enough for
    :func:`split_light`."""
    cost = _raise(prob.p_s, cert.q_star, max(cert.g_upper, cert.g_lower))[2]
    return bool(cost <= RAISE_BUDGET or light_rows(prob, beta)[0].size)


def light_rows(prob: Reduced, beta: float, budget: float = LIGHT_BUDGET) -> tuple[np.ndarray, float]:
    """The lightest classes L whose removal costs at most ``budget`` nats in :func:`split_light`'s bound, and that
    cost beta (eps I_L(X;Y) + I(Z;Y)) (``Reduced.light_costs``); (empty, 0) when even the lightest class costs more.
    At least two classes stay heavy."""
    order, unit = prob.light_costs
    ok = np.flatnonzero(beta * unit[:-2] <= budget)
    if ok.size == 0:
        return order[:0], 0.0
    k = int(ok[-1]) + 1
    return order[:k], float(beta * unit[k - 1])


def split_light(prob: Reduced, beta: float, solution, cert: Certificate, target: float = 2e-8,
                max_rounds: int = 60, max_points: int = 20000, budget: float = LIGHT_BUDGET) -> Certificate:
    """``cert`` or, if smaller, the bound that certifies the heavy rows' problem and charges the light rows
    (:func:`light_rows`) their largest possible effect.

    With Z = [x in L] a function of X, p(L) = eps and V = beta I(T;Y) - I(X;T) (nats) for any encoder,
    I(X;T) = I(Z;T) + I(X;T|Z) >= I(X;T|Z) and I(T;Y) = I(T;Y|Z) + I(Z;Y) - I(Z;Y|T) <= I(T;Y|Z) + I(Z;Y), so

        V <= (1 - eps) V_H + eps V_L + beta I(Z;Y) <= (1 - eps) max V_H + eps beta I_L(X;Y) + beta I(Z;Y),

    V_H, V_L the objectives of the same encoder on p(x,y | x heavy) and p(x,y | x in L).  max V_H is bounded by
    :func:`certify_state` on the heavy rows with the solution's own clusters.  A row of p(x) = 1e-12 that no
    cluster is near makes the plane's excess at its vertex, max_q [phi(q) - a.q], as large as beta times its
    distance to them (tens of bits), although giving it its own cluster changes the Lagrangian by ~1e-12 x that;
    here the light rows cost beta (I(Z;Y) + eps I_L(X;Y)) ~ beta eps KL(p(y|L) || p(y)) instead, linear in eps.
    The returned certificate's maximiser is the heavy problem's (zero on L), so repairs seed the clusters the
    heavy rows miss."""
    L, cost = light_rows(prob, beta, budget)
    if L.size == 0:
        return cert
    heavy = np.ones(prob.n_s, dtype=bool)
    heavy[L] = False
    eps = float(prob.p_s[L].sum())
    p_h = prob.p_s[heavy] / prob.p_s[heavy].sum()
    W_h = prob.W[heavy]
    if np.count_nonzero(p_h @ W_h > 0) < 2:
        return cert
    sub = Reduced(p_h, W_h, np.arange(p_h.size), p_h.size, prob.n_y, 0.0, bool(np.all(W_h.max(axis=1) == 1.0)))
    c_h = certify_state(sub, beta, solution, target, max_rounds, max_points, tighten=True, split=False)
    value = LN2 * (beta * solution.I_TY - solution.I_XT)
    total = (1.0 - eps) * (c_h.consistency + c_h.g_upper) - eps * value + cost
    gap = max(total, 0.0) / LN2
    if gap >= cert.gap:
        return cert
    q = np.zeros(prob.n_s)
    q[heavy] = c_h.q_star
    return Certificate(gap, c_h.g_upper, c_h.g_lower, total - c_h.g_upper, q, c_h.n_cells, c_h.converged,
                       c_h.lambdas)


def seed_cluster(prob: Reduced, solution, cert: Certificate, mass: float = 0.1) -> it.State:
    """A state with one more cluster at the certificate's maximiser q* (decoder q* W, weight ``mass``)."""
    return it.with_cluster(solution.p_t, solution.decoder, cert.q_star @ prob.W, mass)


def certify_solution(p_xy, solution) -> Certificate:
    """Certify an :class:`~ibtheory.ib.solver.IBSolution` of ``p_xy`` (|Y| <= 3); ``gap`` is in bits."""
    prob = ib_problem(p_xy)
    return certify_state(prob, solution.beta, solution, tighten=True)
