"""The reference benchmark of Czyz et al. (2023) as sampling laws with closed-form mutual information, in bits.

"Beyond normal" builds its tasks from a few base laws of (X, Y) and maps that leave I(X;Y) unchanged; the same
families here, re-derived from the paper (facts, not code), each with ``law.sample(n, seed)`` -> :class:`Sample`
(draws from ``numpy.random.default_rng(seed)``) and the exact ``law.mi``:

=============================================  =======================================================================
law                                            I(X;Y) in bits
=============================================  =======================================================================
MultinormalLaw(dim_x, dim_y, "dense", c)       1/2 log2(det S_xx det S_yy / det S), S = (1 - c) I + c 11^T (every
                                               pair of the d_x + d_y coordinates has correlation c; paper c = 0.5)
MultinormalLaw(dim_x, dim_y, "2-pair", r)      the same formula, S = I with corr(X_1, Y_1) = corr(X_2, Y_2) = r: the
                                               paper's "2-pair" latent model (loadings 2 and unit noise) gives r = 0.8;
                                               I = -log2(1 - r^2)
StudentLaw(dim_x, dim_y, df, structure, c)     multivariate t: (X, Y) = Z / sqrt(W / nu), Z ~ N(0, S), W ~ chi2_nu;
                                               I = I_gauss(S) + c(nu, d_x, d_y), see :func:`student_t_correction_bits`
AdditiveUniformLaw(epsilon)                    X ~ U(0, 1), Y = X + N, N ~ U(-eps, eps): I = [eps - ln(2 eps)] / ln 2
                                               for eps <= 1/2, 1 / (4 eps ln 2) for eps >= 1/2
TransformedLaw(law, kind)                      law.mi: ``kind`` is a diffeomorphism of x and of y (asinh, half-cube
                                               v sqrt|v|, normal CDF, wiggly, bimodal, spiral), and I(f(X); g(Y)) =
                                               I(X;Y) for invertible f, g
=============================================  =======================================================================

The paper's tasks are sampled at n = 5,000 and every coordinate standardised before estimation (as in
``scripts/estimator_table.py``); the laws here return the unstandardised draws.

References
----------
1. P. Czyz, F. Grabowski, J. E. Vogt, N. Beerenwinkel, A. Marx, "Beyond normal: on the evaluation of mutual
   information estimators", NeurIPS 2023 (the task families; MI invariance under diffeomorphisms).
2. R. B. Arellano-Valle, J. E. Contreras-Reyes, M. G. Genton, "Shannon entropy and mutual information for
   multivariate skew-elliptical distributions", Scand. J. Statist. 40 (2013) 42-62 (Student-t MI).
3. T. M. Cover and J. A. Thomas, *Elements of Information Theory*, 2nd ed., Wiley 2006, ch. 8 (Gaussian MI).
"""

from __future__ import annotations

import numpy as np
from scipy.special import digamma, gammaln, ndtr, ndtri

from .._validate import integer, real, show
from .._validate import seed as _seed
from ..info import LN2
from ._sample import Sample, law_class, law_sample

__all__ = [
    "MultinormalLaw",
    "StudentLaw",
    "AdditiveUniformLaw",
    "TransformedLaw",
    "STRUCTURES",
    "TRANSFORMS",
    "structured_matrix",
    "multinormal_mi_bits",
    "student_t_correction_bits",
    "additive_uniform_mi_bits",
]

#: Correlation structures of the normal and Student-t laws.
STRUCTURES = ("identity", "dense", "2-pair")
#: Kinds of :class:`TransformedLaw`.
TRANSFORMS = ("asinh", "half_cube", "normal_cdf", "wiggly", "bimodal", "spiral")


def structured_matrix(dim_x: int, dim_y: int, structure: str, strength: float) -> np.ndarray:
    """The (d_x + d_y)-square correlation (dispersion) matrix S of a structure, X the first d_x coordinates.

    "identity": S = I.  "dense": S = (1 - c) I + c 11^T, 0 <= c < 1.  "2-pair": S = I except S[i, d_x + i] =
    S[d_x + i, i] = r for i = 0, 1 (needs d_x, d_y >= 2), |r| < 1.

    >>> structured_matrix(2, 2, "2-pair", 0.8)[:2, 2:].tolist()
    [[0.8, 0.0], [0.0, 0.8]]
    """
    d = dim_x + dim_y
    if structure == "identity":
        return np.eye(d)
    if structure == "dense":
        return (1.0 - strength) * np.eye(d) + strength * np.ones((d, d))
    s = np.eye(d)
    for i in range(2):
        s[i, dim_x + i] = s[dim_x + i, i] = strength
    return s


def _check_structure(dim_x, dim_y, structure, strength) -> tuple[int, int, float]:
    dim_x, dim_y = integer(dim_x, "dim_x", 1), integer(dim_y, "dim_y", 1)
    if structure not in STRUCTURES:
        raise ValueError(f"structure must be one of {STRUCTURES}, got {show(structure)}")
    if structure == "identity":
        strength = real(strength, "strength", 0.0, 0.0)
    elif structure == "dense":
        strength = real(strength, "strength", 0.0, 1.0, high_open=True)
    else:
        strength = real(strength, "strength", -1.0, 1.0, low_open=True, high_open=True)
        if min(dim_x, dim_y) < 2:
            raise ValueError(f"structure '2-pair' needs dim_x and dim_y >= 2, got dim_x={dim_x}, dim_y={dim_y}")
    return dim_x, dim_y, strength


def multinormal_mi_bits(s: np.ndarray, dim_x: int) -> float:
    """I(X;Y) = 1/2 log2(det S_xx det S_yy / det S) bits for (X, Y) ~ N(0, S), X the first ``dim_x`` coordinates.

    >>> round(multinormal_mi_bits(np.array([[1.0, 0.6], [0.6, 1.0]]), 1), 6)   # -1/2 log2(1 - 0.36)
    0.321928
    """
    s = np.asarray(s, dtype=np.float64)
    logdet = lambda m: np.linalg.slogdet(m)[1]  # noqa: E731
    return float(0.5 * (logdet(s[:dim_x, :dim_x]) + logdet(s[dim_x:, dim_x:]) - logdet(s)) / LN2)


def student_t_correction_bits(df: float, dim_x: int, dim_y: int) -> float:
    """c(nu, m, n) = [f(nu) + f(nu + m + n) - f(nu + m) - f(nu + n)] / ln 2 bits, f(x) = ln G(x/2) - (x/2) psi(x/2).

    The multivariate t law of (X, Y) in R^(m+n) with nu degrees of freedom and dispersion S has
    h = 1/2 ln det S + ln[G(nu/2) (nu pi)^(d/2) / G((nu + d)/2)] + (nu + d)/2 [psi((nu + d)/2) - psi(nu/2)] nats
    in d dimensions, and its marginals are t laws with the same nu and the blocks of S; in h(X) + h(Y) - h(X, Y) the
    log-determinants give the Gaussian MI of S and the rest is c > 0, which depends on nu, m and n only (G the gamma
    function, psi the digamma function).  c -> 0 as nu -> infinity (the normal limit).

    >>> round(student_t_correction_bits(1, 1, 1), 6)   # a bivariate Cauchy with identity dispersion
    0.323411
    """
    df = real(df, "df", 0.0, low_open=True)

    def f(v: float) -> float:
        return gammaln(v / 2) - v / 2 * digamma(v / 2)

    return float((f(df) + f(df + dim_x + dim_y) - f(df + dim_x) - f(df + dim_y)) / LN2)


def additive_uniform_mi_bits(epsilon: float) -> float:
    """I(X; X + N) bits for X ~ U(0, 1), N ~ U(-eps, eps): [eps - ln(2 eps)] / ln 2 (eps <= 1/2), 1/(4 eps ln 2).

    Y has a trapezoid density (ramps of width 2 eps, or 1 when eps > 1/2), so h(Y) = eps (eps <= 1/2) or
    ln(2 eps) + 1/(4 eps) nats, and I = h(Y) - h(Y|X) = h(Y) - ln(2 eps).

    >>> round(additive_uniform_mi_bits(0.5), 6)   # 1/2 nat either way
    0.721348
    """
    eps = real(epsilon, "epsilon", 0.0, low_open=True)
    nats = eps - np.log(2 * eps) if eps <= 0.5 else 0.25 / eps
    return float(nats / LN2)


def _check_draw(n, seed) -> tuple[int, np.random.Generator]:
    return integer(n, "n", 1), np.random.default_rng(_seed(seed))


def _set_structure(law) -> None:
    """Validate and normalise ``dim_x``, ``dim_y`` and ``strength`` of a frozen law with a ``structure``."""
    dx, dy, c = _check_structure(law.dim_x, law.dim_y, law.structure, law.strength)
    object.__setattr__(law, "dim_x", dx)
    object.__setattr__(law, "dim_y", dy)
    object.__setattr__(law, "strength", c)


@law_class("continuous", "continuous")
class MultinormalLaw:
    """(X, Y) ~ N(0, S) in R^(d_x + d_y) with S = ``structured_matrix(dim_x, dim_y, structure, strength)``."""

    dim_x: int
    dim_y: int
    structure: str = "dense"
    strength: float = 0.5

    def __post_init__(self) -> None:
        _set_structure(self)

    @property
    def covariance(self) -> np.ndarray:
        """S, shape (d_x + d_y, d_x + d_y)."""
        return structured_matrix(self.dim_x, self.dim_y, self.structure, self.strength)

    @property
    def mi(self) -> float:
        return multinormal_mi_bits(self.covariance, self.dim_x)

    def sample(self, n: int, seed: int) -> Sample:
        n, rng = _check_draw(n, seed)
        z = rng.standard_normal((n, self.dim_x + self.dim_y)) @ np.linalg.cholesky(self.covariance).T
        return law_sample(self, z[:, : self.dim_x], z[:, self.dim_x:], n, seed)

    def __repr__(self) -> str:
        return f"MultinormalLaw({self.dim_x}, {self.dim_y}, {self.structure!r}, {self.strength:.4g})"


@law_class("continuous", "continuous")
class StudentLaw:
    """Multivariate t: (X, Y) = Z / sqrt(W / df), Z ~ N(0, S) (S of ``structure``), W ~ chi2_df shared by x and y.

    Uncorrelated is not independent here: with S = I the Gaussian part of I vanishes and I = c(df, d_x, d_y) > 0.
    Tails are polynomial (df = 1: Cauchy marginals, no mean; df <= 2: infinite variance).
    """

    dim_x: int
    dim_y: int
    df: float
    structure: str = "identity"
    strength: float = 0.0

    def __post_init__(self) -> None:
        _set_structure(self)
        object.__setattr__(self, "df", real(self.df, "df", 0.0, low_open=True))

    @property
    def dispersion(self) -> np.ndarray:
        """S, shape (d_x + d_y, d_x + d_y)."""
        return structured_matrix(self.dim_x, self.dim_y, self.structure, self.strength)

    @property
    def mi(self) -> float:
        return (multinormal_mi_bits(self.dispersion, self.dim_x)
                + student_t_correction_bits(self.df, self.dim_x, self.dim_y))

    def sample(self, n: int, seed: int) -> Sample:
        n, rng = _check_draw(n, seed)
        z = rng.standard_normal((n, self.dim_x + self.dim_y)) @ np.linalg.cholesky(self.dispersion).T
        t = z / np.sqrt(rng.chisquare(self.df, n) / self.df)[:, None]
        return law_sample(self, t[:, : self.dim_x], t[:, self.dim_x:], n, seed)

    def __repr__(self) -> str:
        return f"StudentLaw({self.dim_x}, {self.dim_y}, df={self.df:g}, {self.structure!r}, {self.strength:.4g})"


@law_class("continuous", "continuous")
class AdditiveUniformLaw:
    """X ~ U(0, 1), Y = X + N with N ~ U(-epsilon, epsilon) independent of X; x and y of shape (n, 1)."""

    epsilon: float
    dim_x = 1
    dim_y = 1

    def __post_init__(self) -> None:
        object.__setattr__(self, "epsilon", real(self.epsilon, "epsilon", 0.0, low_open=True))

    @property
    def mi(self) -> float:
        return additive_uniform_mi_bits(self.epsilon)

    def sample(self, n: int, seed: int) -> Sample:
        n, rng = _check_draw(n, seed)
        x = rng.random((n, 1))
        return law_sample(self, x, x + rng.uniform(-self.epsilon, self.epsilon, (n, 1)), n, seed)

    def __repr__(self) -> str:
        return f"AdditiveUniformLaw(epsilon={self.epsilon:.4g})"


# ---- coordinate-wise and rotational diffeomorphisms ------------------------------------------------------------

def _wiggly(v: np.ndarray, side: str) -> np.ndarray:
    """x: v + 0.4 sin v + 0.2 sin(1.7 v + 1) + 0.03 sin(3.3 v - 2.5) (slope >= 0.16); y: v - 0.4 sin(0.4 v)
    + 0.17 sin(1.3 v + 3.5) + 0.02 sin(4.3 v - 2.5) (slope >= 0.53): strictly increasing, so invertible."""
    if side == "x":
        return v + 0.4 * np.sin(v) + 0.2 * np.sin(1.7 * v + 1) + 0.03 * np.sin(3.3 * v - 2.5)
    return v - 0.4 * np.sin(0.4 * v) + 0.17 * np.sin(1.3 * v + 3.5) + 0.02 * np.sin(4.3 * v - 2.5)


#: Two-component normal mixtures (weights, means; unit variances) of the bimodal marginals, by side.
_BIMODAL = {"x": ((0.3, 0.7), (0.0, 5.0)), "y": ((0.5, 0.5), (-1.0, 3.0))}


def _mixture_cdf(v: np.ndarray, side: str, upper: bool) -> np.ndarray:
    """P(V <= v) (or P(V > v) when ``upper``, accurate in the right tail) of the side's normal mixture."""
    w, mu = _BIMODAL[side]
    sign = -1.0 if upper else 1.0
    return sum(wi * ndtr(sign * (v - mi)) for wi, mi in zip(w, mu, strict=True))


def _bisect(f, target: np.ndarray, lo: np.ndarray, hi: np.ndarray, decreasing: bool = False) -> np.ndarray:
    """Solve f(v) = target elementwise for a monotone f by 110 vectorised bisection steps (to float precision)."""
    lo, hi = np.broadcast_to(lo, target.shape).copy(), np.broadcast_to(hi, target.shape).copy()
    for _ in range(110):
        mid = 0.5 * (lo + hi)
        below = (f(mid) > target) if decreasing else (f(mid) < target)
        lo, hi = np.where(below, mid, lo), np.where(below, hi, mid)
    return 0.5 * (lo + hi)


def _bimodal(v: np.ndarray, side: str) -> np.ndarray:
    """F^-1(Phi(v)), F the side's mixture CDF: a normal coordinate made bimodal (strictly increasing).  Solved on
    the lower tail for v <= 0 and on the upper tail for v > 0, so Phi(v) never rounds to 1."""
    lower = _bisect(lambda u: _mixture_cdf(u, side, False), ndtr(v), -60.0, 60.0)
    upper = _bisect(lambda u: _mixture_cdf(u, side, True), ndtr(-v), -60.0, 60.0, decreasing=True)
    return np.where(v <= 0, lower, upper)


def _spiral(v: np.ndarray, side: str, speed: float, inverse: bool = False) -> np.ndarray:
    """Rotate the plane (i, j) ((0, 1) for x, (1, 2) for y) by theta = (speed / d) ||v||^2: a norm-preserving
    diffeomorphism of R^d whose inverse rotates by -theta (same ||v||)."""
    i, j = (0, 1) if side == "x" else (1, 2)
    theta = (speed / v.shape[1]) * np.sum(v * v, axis=1)
    if inverse:
        theta = -theta
    c, s = np.cos(theta), np.sin(theta)
    out = v.copy()
    out[:, i], out[:, j] = c * v[:, i] - s * v[:, j], s * v[:, i] + c * v[:, j]
    return out


@law_class("continuous", "continuous")
class TransformedLaw:
    """``law`` with x -> f(x) and y -> g(y), f and g diffeomorphisms, so I(f(X); g(Y)) = I(X;Y) = ``law.mi``.

    ``kind`` (both sides, coordinate-wise unless noted):

    - "asinh": asinh v (shortens long tails);  "half_cube": v sqrt|v| (lengthens them);
    - "normal_cdf": Phi(v) (uniform marginals for normal coordinates; meant for normal laws, as in the paper: in
      floating point Phi(v) = 1 for v > 8.3, so long-tailed draws would be merged and the MI no longer kept);
    - "wiggly": v plus small sines (different for x and y), slopes >= 0.16;
    - "bimodal": F^-1(Phi(v)), F the mixture 0.3 N(0, 1) + 0.7 N(5, 1) for x, 0.5 N(-1, 1) + 0.5 N(3, 1) for y
      (also meant for normal laws: exact to |v| ~ 37, where Phi underflows);
    - "spiral": the rotation of one plane by an angle (speed / d) ||v||^2, planes (0, 1) of x and (1, 2) of y
      (needs d_x >= 2, d_y >= 3; the paper's speed 1 normalised by the dimension).
    """

    law: object
    kind: str
    speed: float = 1.0

    def __post_init__(self) -> None:
        if self.kind not in TRANSFORMS:
            raise ValueError(f"kind must be one of {TRANSFORMS}, got {show(self.kind)}")
        if getattr(self.law, "x_kind", None) != "continuous" or getattr(self.law, "y_kind", None) != "continuous":
            raise ValueError(f"law must have two continuous arguments, got {self.law!r}")
        object.__setattr__(self, "speed", real(self.speed, "speed"))
        if self.kind == "spiral" and (self.dim_x < 2 or self.dim_y < 3):
            raise ValueError(f"kind 'spiral' needs dim_x >= 2 and dim_y >= 3, got dim_x={self.dim_x}, "
                             f"dim_y={self.dim_y}")

    @property
    def dim_x(self) -> int:
        return self.law.dim_x

    @property
    def dim_y(self) -> int:
        return self.law.dim_y

    @property
    def mi(self) -> float | None:
        return self.law.mi

    def forward(self, v: np.ndarray, side: str) -> np.ndarray:
        """The map of ``side`` ("x" or "y") applied to v (n, d)."""
        v = np.asarray(v, dtype=np.float64)
        if self.kind == "asinh":
            return np.arcsinh(v)
        if self.kind == "half_cube":
            return v * np.sqrt(np.abs(v))
        if self.kind == "normal_cdf":
            return ndtr(v)
        if self.kind == "wiggly":
            return _wiggly(v, side)
        if self.kind == "bimodal":
            return _bimodal(v, side)
        return _spiral(v, side, self.speed)

    def inverse(self, u: np.ndarray, side: str) -> np.ndarray:
        """The inverse map of ``side``: ``inverse(forward(v, side), side) == v`` to rounding."""
        u = np.asarray(u, dtype=np.float64)
        if self.kind == "asinh":
            return np.sinh(u)
        if self.kind == "half_cube":
            return np.sign(u) * np.abs(u) ** (2.0 / 3.0)
        if self.kind == "normal_cdf":
            return ndtri(u)
        if self.kind == "wiggly":
            return _bisect(lambda v: _wiggly(v, side), u, u - 1.0, u + 1.0)  # |f(v) - v| < 0.7
        if self.kind == "bimodal":
            return np.where(u <= _BIMODAL_MEDIAN[side], ndtri(_mixture_cdf(u, side, False)),
                            -ndtri(_mixture_cdf(u, side, True)))
        return _spiral(u, side, self.speed, inverse=True)

    def sample(self, n: int, seed: int) -> Sample:
        s = self.law.sample(n, seed)
        return law_sample(self, self.forward(s.x, "x"), self.forward(s.y, "y"), s.x.shape[0], seed)

    def __repr__(self) -> str:
        speed = f", speed={self.speed:.4g}" if self.kind == "spiral" else ""
        return f"TransformedLaw({self.law!r}, {self.kind!r}{speed})"


#: F^-1(1/2) of each side's mixture (where the bimodal inverse switches to the upper tail).
_BIMODAL_MEDIAN = {side: float(_bisect(lambda u, s=side: _mixture_cdf(u, s, False), np.array(0.5), -60.0, 60.0))
                   for side in _BIMODAL}
