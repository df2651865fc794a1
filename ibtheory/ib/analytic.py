"""Closed forms that verify the IB solver, and symbolic derivations with sympy.  All results in bits.

(a) Doubly symmetric binary source, X uniform on {0,1}, Y = X xor Bernoulli(p) (Witsenhausen & Wyner 1975, "Mrs
    Gerber's lemma"):   F(R) = 1 - h(p * h^-1(1 - R)),   a * b = a(1 - b) + b(1 - a),   h the binary entropy.
(b) Gaussian IB (Chechik, Globerson, Tishby & Weiss 2005): with lambda_i the ascending eigenvalues of
    Sigma_{x|y} Sigma_x^-1, component i becomes active at beta_i = 1 / (1 - lambda_i), and for n(beta) active ones
        I(X;T) = 1/2 sum_{i<=n} log2[(beta - 1)(1 - lambda_i) / lambda_i],
        I(T;Y) = 1/2 sum_{i<=n} log2[(beta - 1) / (beta lambda_i)].
    Scalar X, Y with correlation rho: lambda = 1 - rho^2 and F(R) = -1/2 log2(1 - rho^2 (1 - 2^(-2R))).
(c) :func:`derive_self_consistent`: the Lagrangian I(X;T) - beta I(T;Y) of a small symbolic problem, differentiated
    by sympy; its stationarity conditions are the IB equations p(t|x) ~ p(t) exp(-beta KL[p(y|x)||p(y|t)]).
(d) :func:`trivial_threshold_bsc`: expanding L around the trivial encoder gives the beta below which the trivial
    solution is a local minimum, beta_0 = 1 / (1 - 2p)^2 = 1 / rho_m^2 (see ``ibtheory.ib.trivial_critical_beta``).
    For any p(x,y) the beta below which *only* the trivial solution exists is 1 / s*, with s* the strong
    data-processing constant sup_{r != p_x} D(r W || p_x W) / D(r || p_x) = sup_T I(T;Y) / I(X;T) = F'(0)
    (Anantharam, Gohari, Kamath & Nair 2013); s* >= rho_m^2, with equality for the binary symmetric source and the
    Gaussian: :func:`strong_dpi_constant`, :func:`trivial_threshold`.

References
----------
1. H. S. Witsenhausen and A. D. Wyner, IEEE Trans. Inf. Theory 21 (1975) 493-501.
2. G. Chechik, A. Globerson, N. Tishby, Y. Weiss, "Information bottleneck for Gaussian variables", JMLR 6 (2005).
3. N. Tishby, F. C. Pereira, W. Bialek, "The information bottleneck method", Allerton 1999.
4. V. Anantharam, A. Gohari, S. Kamath, C. Nair, "On maximal correlation, hypercontractivity, and the data
   processing inequality studied by Erkip and Cover", arXiv:1304.6133 (2013).
"""

from __future__ import annotations

import numpy as np
import sympy as sp
from numpy.typing import ArrayLike
from scipy.optimize import minimize
from scipy.special import logsumexp

from .._validate import integer, probability, real
from .._validate import seed as check_seed
from ..info import _phi, _real_array
from ._problem import ib_problem
from .curve import trivial_critical_beta

__all__ = [
    "binary_entropy",
    "binary_entropy_inverse",
    "bsc_curve",
    "bsc_critical_beta",
    "gaussian_ib_eigenvalues",
    "gaussian_ib_point",
    "gaussian_ib_curve",
    "gaussian_ib_critical_betas",
    "strong_dpi_constant",
    "trivial_threshold",
    "derive_self_consistent",
    "stationarity_residual",
    "trivial_threshold_bsc",
]


def binary_entropy(q: ArrayLike) -> np.ndarray:
    """h(q) = -q log2 q - (1 - q) log2(1 - q) in bits, elementwise, h(0) = h(1) = 0."""
    q = _real_array(q, "q")
    with np.errstate(divide="ignore", invalid="ignore"):
        out = -np.where(q > 0, q * np.log2(q), 0.0) - np.where(q < 1, (1 - q) * np.log2(1 - q), 0.0)
    return out


def binary_entropy_inverse(H: ArrayLike) -> np.ndarray:
    """The q in [0, 1/2] with h(q) = H (bits), elementwise, by 200 steps of vectorised bisection (exact to 1 ulp).

    Near H = 1 the inverse is ill-conditioned (h is flat at 1/2): q is exact to ~sqrt(machine eps) there, while
    h(q) is exact to machine precision.

    >>> round(float(binary_entropy_inverse(1.0)), 6), round(float(binary_entropy_inverse(0.468996)), 6)
    (0.5, 0.1)
    """
    H = _real_array(H, "H")
    if np.any(~np.isfinite(H)) or np.any(H < 0) or np.any(H > 1 + 1e-12):
        raise ValueError("H must lie in [0, 1] bits")
    lo, hi = np.zeros_like(H), np.full_like(H, 0.5)
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        below = binary_entropy(mid) < H
        lo, hi = np.where(below, mid, lo), np.where(below, hi, mid)
    return 0.5 * (lo + hi)


def bsc_curve(p: float, R: ArrayLike) -> np.ndarray:
    """IB curve of the doubly symmetric binary source with crossover ``p``: F(R) = 1 - h(p * h^-1(1 - R)) bits.

    F(R) = 1 - h(p) for R >= 1.

    >>> round(float(bsc_curve(0.1, 1.0)), 6)
    0.531004
    """
    p = probability(p, "p")
    R = _real_array(R, "R")
    if np.any(np.isnan(R)) or np.any(R < 0):
        raise ValueError("R must be >= 0 bits (not NaN)")
    u = binary_entropy_inverse(np.clip(1.0 - R, 0.0, 1.0))
    return 1.0 - binary_entropy(p * (1 - u) + u * (1 - p))


def bsc_critical_beta(p: float) -> float:
    """beta_0 = 1 / (1 - 2p)^2: below it the IB solution of the binary symmetric source is trivial (inf at
    p = 1/2, where X and Y are independent)."""
    p = probability(p, "p")
    return np.inf if p == 0.5 else 1.0 / (1.0 - 2.0 * p) ** 2


def gaussian_ib_eigenvalues(cov_x: ArrayLike, cov_xy: ArrayLike, cov_y: ArrayLike) -> np.ndarray:
    """Ascending eigenvalues lambda_i in [0, 1] of Sigma_{x|y} Sigma_x^-1, Sigma_{x|y} = Sx - Sxy Sy^-1 Syx.

    >>> gaussian_ib_eigenvalues([[1.0]], [[0.8]], [[1.0]]).round(6).tolist()
    [0.36]
    """
    Sx, Sxy, Sy = (np.atleast_2d(np.asarray(a, dtype=np.float64)) for a in (cov_x, cov_xy, cov_y))
    cond = Sx - Sxy @ np.linalg.solve(Sy, Sxy.T)
    lam = np.linalg.eigvals(cond @ np.linalg.inv(Sx))
    return np.sort(np.clip(lam.real, 0.0, 1.0))


def gaussian_ib_point(lambdas: ArrayLike, beta: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """(I(X;T), I(T;Y)) in bits of the optimal Gaussian IB encoder at each ``beta`` (Chechik et al. 2005)."""
    lam = np.sort(np.asarray(lambdas, dtype=np.float64))[None, :]
    b = np.atleast_1d(np.asarray(beta, dtype=np.float64))[:, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        active = b > 1.0 / (1.0 - lam)
        ixt = np.where(active, 0.5 * np.log2((b - 1) * (1 - lam) / lam), 0.0).sum(axis=1)
        ity = np.where(active, 0.5 * np.log2((b - 1) / (b * lam)), 0.0).sum(axis=1)
    return ixt, ity


def gaussian_ib_curve(rho: float, R: ArrayLike) -> np.ndarray:
    """Scalar Gaussian IB curve F(R) = -1/2 log2(1 - rho^2 (1 - 2^(-2R))) in bits (|rho| < 1, R >= 0 bits)."""
    rho = real(rho, "rho", -1.0, 1.0, low_open=True, high_open=True)
    R = _real_array(R, "R")
    if np.any(np.isnan(R)) or np.any(R < 0):
        raise ValueError("R must be >= 0 bits (not NaN)")
    return -0.5 * np.log2(1.0 - rho**2 * (1.0 - 2.0 ** (-2.0 * R)))


def gaussian_ib_critical_betas(lambdas: ArrayLike) -> np.ndarray:
    """Critical betas beta_i = 1 / (1 - lambda_i) of the Gaussian IB (ascending), one per eigenvalue lambda_i < 1
    of Sigma_{x|y} Sigma_x^-1: below beta_1 the optimal T is independent of X; at beta_i the i-th eigen-direction
    joins the encoder.  Eigenvalues equal to 1 (directions of X carrying no information on Y) never join.

    >>> gaussian_ib_critical_betas([0.36, 1.0]).tolist()
    [1.5625]
    """
    lam = np.sort(np.asarray(lambdas, dtype=np.float64).ravel())
    if lam.size == 0 or np.any(~np.isfinite(lam)) or np.any(lam < 0) or np.any(lam > 1 + 1e-12):
        raise ValueError(f"lambdas must be finite eigenvalues in [0, 1], got {lam.tolist()}")
    lam = lam[lam < 1 - 1e-12]
    with np.errstate(divide="ignore"):
        return 1.0 / (1.0 - lam)


def _dpi_ratio(z: np.ndarray, p: np.ndarray, W: np.ndarray, q: np.ndarray) -> tuple[float, np.ndarray]:
    """D(rW || q) / D(r || p) for r = softmax(ln p + z), and its gradient in z (q = pW; unit-free).

    Both divergences are computed from the differences, never from r and p themselves:

        d = r - p = p expm1(z - m),   m = ln sum_i p_i e^{z_i} = log1p(sum_i p_i expm1(z_i)),
        D(r || p) = sum_i p_i phi(d_i / p_i),   D(rW || q) = sum_y q_y phi((dW)_y / q_y),

    with phi(e) = (1 + e) ln(1 + e) - e summed by its series near 0 (``ibtheory.info``).  Every factor keeps full
    relative precision as r -> p, where the direct sum r ln(r/p) is 0/0 in rounding; z is first centred
    (z -> z - p.z, which leaves r unchanged) so that m is small there.  Returns (0, 0) where d vanishes (r = p to
    rounding): the limit there depends on the direction and is at most rho_m^2.
    """
    z = z - p @ z
    if z.max() < 1.0:
        m = float(np.log1p(p @ np.expm1(z)))
    else:  # far from p: the plain log-sum-exp is exact enough and cannot overflow
        m = float(logsumexp(z, b=p))
    u = z - m  # = ln(r / p)
    e_r = np.expm1(u)
    d = p * e_r
    B = float(p @ _phi(e_r))
    if not (np.isfinite(B) and B > 1e-280):
        return 0.0, np.zeros_like(z)
    pos = q > 0
    e_y = np.zeros_like(q)
    e_y[pos] = (d @ W)[pos] / q[pos]
    e_y = np.maximum(e_y, -1.0)
    A = float(q[pos] @ _phi(e_y[pos]))
    ratio = A / B
    with np.errstate(divide="ignore"):
        log_y = np.where(pos & (e_y > -1.0), np.log1p(e_y), 0.0)  # ln(rW / q); 0 where rW = 0 (no gradient)
    # dA/dr = W ln(rW/q) + 1, dB/dr = ln(r/p) + 1; the constants cancel in the softmax Jacobian below
    g_r = (W @ log_y - ratio * u) / B
    r = p * np.exp(u)
    return ratio, r * (g_r - r @ g_r)


def strong_dpi_constant(p_xy: ArrayLike, n_random: int = 20, seed: int = 0) -> float:
    """s*(X;Y) = sup_{r != p_x} D(r W || p_x W) / D(r || p_x)  (W = p(y|x); unit-free, in [0, 1]).

    It is the initial slope F'(0) of the IB curve and sup_T I(T;Y)/I(X;T) over all T - X - Y (Anantharam et al.
    2013), so only the trivial solution exists for beta < 1/s*.  Computed on the sufficient statistic by L-BFGS
    over r = softmax(ln p + z) from the mixtures (1 - t) p + t e_s (every class s, t = 0.5, 0.99) and ``n_random``
    Dirichlet points (0 to 10^5, from ``seed``).  The ratio is evaluated from d = r - p (see :func:`_dpi_ratio`),
    so it keeps full relative precision as r -> p, where its limit is a Rayleigh quotient <= rho_m^2 (rho_m the maximal
    correlation, ``ibtheory.ib.trivial_critical_beta``).  The result is max(best ratio found, rho_m^2): a lower
    bound on s*, exact when the optimiser finds the global maximum (checked against brute force in the tests) and,
    when the supremum is the local limit (binary symmetric source: s* = rho_m^2 = (1 - 2p)^2), exact to the
    precision of the SVD that gives rho_m (~ 1e-16 |rho_m| absolute).

    >>> round(strong_dpi_constant([[0.45, 0.05], [0.05, 0.45]]), 6)   # (1 - 2p)^2 for the binary symmetric source
    0.64
    """
    n_random = integer(n_random, "n_random", 0, 10**5)
    seed = check_seed(seed)
    prob = ib_problem(p_xy)
    p, W = prob.p_s, prob.W
    q = p @ W
    if prob.n_s < 2:
        return 0.0
    rho2 = 1.0 / trivial_critical_beta(prob)

    def neg_ratio(z):
        ratio, grad = _dpi_ratio(z, p, W, q)
        return -ratio, -grad

    rng = np.random.default_rng(seed)
    starts = [(1 - t) * p + t * np.eye(prob.n_s)[i] for i in range(prob.n_s) for t in (0.5, 0.99)]
    starts += list(rng.dirichlet(np.ones(prob.n_s), size=n_random))
    best = rho2
    for r0 in starts:
        res = minimize(neg_ratio, np.log(r0 / p), jac=True, method="L-BFGS-B")
        best = max(best, -float(res.fun))
    return float(min(best, 1.0))


def trivial_threshold(p_xy: ArrayLike, **kwargs) -> float:
    """The beta below which the IB has only the trivial solution (I(X;T) = 0): 1 / s*, see
    :func:`strong_dpi_constant` (keyword arguments go to it).  At most 1 / rho_m^2 (the local threshold of
    ``ibtheory.ib.trivial_critical_beta``), with equality when s* = rho_m^2.

    >>> round(trivial_threshold([[0.45, 0.05], [0.05, 0.45]]), 6)
    1.5625
    """
    s = strong_dpi_constant(p_xy, **kwargs)
    return np.inf if s <= 0 else 1.0 / s


def _symbolic_problem(n_x: int, n_t: int, n_y: int):
    beta = sp.Symbol("beta", positive=True)
    px = sp.symbols(f"px0:{n_x}", positive=True)
    W = sp.Matrix(n_x, n_y, lambda i, j: sp.Symbol(f"w{i}{j}", positive=True))
    E = sp.Matrix(n_x, n_t, lambda i, j: sp.Symbol(f"e{i}{j}", positive=True))
    pt = [sum(px[i] * E[i, t] for i in range(n_x)) for t in range(n_t)]
    py = [sum(px[i] * W[i, y] for i in range(n_x)) for y in range(n_y)]
    pty = [[sum(px[i] * E[i, t] * W[i, y] for i in range(n_x)) for y in range(n_y)] for t in range(n_t)]
    I_xt = sum(px[i] * E[i, t] * sp.log(E[i, t] / pt[t]) for i in range(n_x) for t in range(n_t))
    I_ty = sum(pty[t][y] * sp.log(pty[t][y] / (pt[t] * py[y])) for t in range(n_t) for y in range(n_y))
    return beta, px, W, E, pt, pty, I_xt, I_ty


def derive_self_consistent(n_x: int = 2, n_t: int = 2, n_y: int = 2) -> dict:
    """Differentiate L = I(X;T) - beta I(T;Y) (nats) symbolically with respect to p(t|x) (p(t|x) free symbols).

    Returns a dict with ``lagrangian``, ``gradient`` (Matrix n_x x n_t of dL/dp(t|x)) and ``ib_form`` (Matrix of
    p(x) [ln(p(t|x)/p(t)) + beta KL(p(y|x)||p(y|t))]) and ``symbols``.  The two matrices differ by a term that
    depends on x only (absorbed by the normalisation multiplier), which :func:`stationarity_residual` checks; setting
    the gradient to the multiplier gives p(t|x) = p(t) exp(-beta KL) / Z(x).
    """
    beta, px, W, E, pt, pty, I_xt, I_ty = _symbolic_problem(n_x, n_t, n_y)
    L = I_xt - beta * I_ty
    grad = sp.Matrix(n_x, n_t, lambda i, t: sp.diff(L, E[i, t]))
    dec = [[pty[t][y] / pt[t] for y in range(n_y)] for t in range(n_t)]
    kl = sp.Matrix(n_x, n_t, lambda i, t: sum(W[i, y] * sp.log(W[i, y] / dec[t][y]) for y in range(n_y)))
    ib = sp.Matrix(n_x, n_t, lambda i, t: px[i] * (sp.log(E[i, t] / pt[t]) + beta * kl[i, t]))
    return {"lagrangian": L, "gradient": grad, "ib_form": ib,
            "symbols": {"beta": beta, "p_x": px, "W": W, "E": E}}


def stationarity_residual(p_xy: ArrayLike, encoder: ArrayLike, beta: float, digits: int = 30) -> dict:
    """Check a numeric solution against the symbolic derivation of :func:`derive_self_consistent`.

    Evaluates with ``digits`` significant digits (mpmath) at the given encoder:
    ``identity`` = max over (x, t) of |dL/dp(t|x) - ib_form - c(x)| where c(x) is the t-average of the difference
    (rounding level: the derivative *is* the IB form up to a per-x constant), and ``stationarity`` = max over
    (x, t) of |dL/dp(t|x) - mean_t dL/dp(t|x)| / p(x) (zero at a stationary point: the gradient is constant over t,
    balanced by the multiplier of sum_t p(t|x) = 1), both in nats.
    """
    p = np.asarray(p_xy, dtype=np.float64)
    enc = np.asarray(encoder, dtype=np.float64)
    n_x, n_y = p.shape
    n_t = enc.shape[1]
    d = derive_self_consistent(n_x, n_t, n_y)
    sy = d["symbols"]
    p_x = p.sum(axis=1)
    subs = {sy["beta"]: sp.Float(beta, digits)}
    subs.update({sy["p_x"][i]: sp.Float(p_x[i], digits) for i in range(n_x)})
    subs.update({sy["W"][i, y]: sp.Float(p[i, y] / p_x[i], digits) for i in range(n_x) for y in range(n_y)})
    subs.update({sy["E"][i, t]: sp.Float(enc[i, t], digits) for i in range(n_x) for t in range(n_t)})
    g = np.array(d["gradient"].evalf(digits, subs=subs).tolist(), dtype=object)
    f = np.array(d["ib_form"].evalf(digits, subs=subs).tolist(), dtype=object)
    diff = g - f
    ident = max(abs(diff[i, t] - sum(diff[i]) / n_t) for i in range(n_x) for t in range(n_t))
    stat = max(abs(g[i, t] - sum(g[i]) / n_t) / p_x[i] for i in range(n_x) for t in range(n_t))
    return {"identity": float(ident), "stationarity": float(stat)}


def trivial_threshold_bsc() -> sp.Expr:
    """beta_0 of the binary symmetric source, derived by sympy: expand L(eps) = I(X;T) - beta I(T;Y) for the
    encoder p(t=0|x) = 1/2 + eps (-1)^x to second order; the coefficient of eps^2 changes sign at beta_0.

    >>> trivial_threshold_bsc()
    (2*p - 1)**(-2)
    """
    p, eps, beta = sp.symbols("p epsilon beta", positive=True)
    half = sp.Rational(1, 2)
    enc = [[half + eps, half - eps], [half - eps, half + eps]]  # p(t|x)
    W = [[1 - p, p], [p, 1 - p]]  # p(y|x)
    pt = [half * (enc[0][t] + enc[1][t]) for t in range(2)]
    I_xt = sum(half * enc[x][t] * sp.log(enc[x][t] / pt[t]) for x in range(2) for t in range(2))
    pty = [[sum(half * enc[x][t] * W[x][y] for x in range(2)) for y in range(2)] for t in range(2)]
    I_ty = sum(pty[t][y] * sp.log(pty[t][y] / (pt[t] * half)) for t in range(2) for y in range(2))
    coeff = sp.series(I_xt - beta * I_ty, eps, 0, 3).removeO().coeff(eps, 2)
    return sp.factor(sp.solve(sp.Eq(coeff, 0), beta)[0])
