"""The benchmark laws of Czyz et al. 2023: closed-form MI against independent numerical computations.

Independent means: quadrature of the density (scipy.integrate) for the 1-D cases, or a Monte Carlo mean of
log p(x, y) / (p(x) p(y)) with the exact densities of scipy.stats evaluated on the law's own draws (transformed
laws pulled back through their inverse maps, whose Jacobians cancel in the ratio).  A Monte Carlo check holds within
5 standard errors of the mean (plus 1e-3 bits); every tolerance is in its assertion message.
"""

import numpy as np
import pytest
from hypothesis import given, settings
from numpy.testing import assert_allclose
from scipy import integrate, stats
from scipy.special import gammaln

from ibtheory.testing import canon
from ibtheory.testing import strategies as S
from ibtheory.testing.benchmark_laws import (
    TRANSFORMS,
    AdditiveUniformLaw,
    MultinormalLaw,
    StudentLaw,
    TransformedLaw,
    additive_uniform_mi_bits,
    student_t_correction_bits,
)

LN2 = np.log(2.0)


# ---- Student-t: quadrature (1 x 1) and Monte Carlo (multivariate) ---------------------------------------------

def _log_t(r2, df, d):
    """log density of the standard d-variate t at squared radius r2 (the textbook formula, not the MI code)."""
    return (gammaln((df + d) / 2) - gammaln(df / 2) - d / 2 * np.log(df * np.pi)
            - (df + d) / 2 * np.log1p(r2 / df))


def _student_1x1_quadrature(df):
    """I(X;Y) bits of the bivariate t with identity dispersion: polar coordinates, quad over r in (0, inf) and
    64-point Gauss-Legendre over theta in (0, pi/2) (the integrand has the 4-fold symmetry of the density)."""
    nodes, weights = np.polynomial.legendre.leggauss(64)
    theta, w_theta = (nodes + 1) * np.pi / 4, weights * np.pi / 4

    def radial(r):
        ratio = _log_t(r * r, df, 2) - _log_t((r * np.cos(theta)) ** 2, df, 1) - _log_t((r * np.sin(theta)) ** 2, df, 1)
        return 4 * r * np.exp(_log_t(r * r, df, 2)) * np.dot(w_theta, ratio)

    value, err = integrate.quad(radial, 0, np.inf, epsabs=1e-12, epsrel=1e-10, limit=500)
    return value / LN2


@pytest.mark.parametrize("df", [1, 2, 3])
def test_student_1x1_correction_matches_quadrature(df):
    exact = student_t_correction_bits(df, 1, 1)
    quad = _student_1x1_quadrature(df)
    assert_allclose(exact, quad, atol=1e-7, err_msg=f"Student-t df={df} 1x1: closed form vs quadrature, 1e-7 bits")
    assert_allclose(StudentLaw(1, 1, df).mi, exact, rtol=1e-15, err_msg="identity dispersion: no Gaussian part")


def _mc_check(law, log_ratio, n=100_000, seed=11):
    """Monte Carlo mean of log_ratio(x, y) (nats) on law.sample(n, seed) vs law.mi within 5 SE + 1e-3 bits."""
    s = law.sample(n, seed)
    r = log_ratio(s.x, s.y) / LN2
    mean, se = r.mean(), r.std() / np.sqrt(n)
    tol = 5 * se + 1e-3
    assert abs(mean - law.mi) <= tol, f"{law!r}: closed form {law.mi:.5f} vs MC {mean:.5f} bits (tolerance {tol:.4f})"


def _student_log_ratio(law):
    s, dx = law.dispersion, law.dim_x

    def log_ratio(x, y):
        t = lambda shape: stats.multivariate_t(np.zeros(len(shape)), shape, df=law.df)  # noqa: E731
        return (t(s).logpdf(np.hstack([x, y])) - t(s[:dx, :dx]).logpdf(x) - t(s[dx:, dx:]).logpdf(y))

    return log_ratio


@pytest.mark.parametrize("law", [StudentLaw(2, 2, 1), StudentLaw(3, 2, 2, "dense", 0.5),
                                 StudentLaw(3, 3, 3, "2-pair", 0.8)], ids=repr)
def test_student_multivariate_matches_monte_carlo(law):
    _mc_check(law, _student_log_ratio(law))


def test_student_correction_is_positive_and_vanishes_in_the_normal_limit():
    for df in (0.5, 1, 2, 3, 7.5, 30, 300):
        for m, k in ((1, 1), (1, 4), (3, 3), (10, 25)):
            assert student_t_correction_bits(df, m, k) > 0, (df, m, k)
    assert student_t_correction_bits(1e7, 5, 5) < 1e-6
    # more degrees of freedom, lighter tails, less information from the shared scale
    c = [student_t_correction_bits(df, 2, 2) for df in (1, 2, 3, 5, 10)]
    assert all(a > b for a, b in zip(c, c[1:], strict=False)), c


# ---- normal laws ----------------------------------------------------------------------------------------------

def _equicorrelation_logdet(d, c):
    """log det of (1 - c) I + c 11^T in d dimensions: (d - 1) log(1 - c) + log(1 + (d - 1) c)."""
    return (d - 1) * np.log1p(-c) + np.log1p((d - 1) * c)


@pytest.mark.parametrize("dims", [(1, 1), (2, 2), (2, 5), (5, 5), (25, 25), (50, 50)])
def test_dense_normal_matches_equicorrelation_determinants(dims):
    m, k = dims
    expected = 0.5 * (_equicorrelation_logdet(m, 0.5) + _equicorrelation_logdet(k, 0.5)
                      - _equicorrelation_logdet(m + k, 0.5)) / LN2
    assert_allclose(MultinormalLaw(m, k, "dense", 0.5).mi, expected, rtol=1e-10)


def test_two_pair_normal_is_two_correlated_pairs():
    for d in (2, 3, 25):
        assert_allclose(MultinormalLaw(d, d, "2-pair", 0.8).mi, -np.log2(1 - 0.64), rtol=1e-12)
    assert_allclose(MultinormalLaw(1, 1, "dense", 0.75).mi, -0.5 * np.log2(1 - 0.75**2), rtol=1e-12)


@pytest.mark.parametrize("law", [MultinormalLaw(2, 3, "dense", 0.5), MultinormalLaw(3, 3, "2-pair", 0.8)], ids=repr)
def test_normal_matches_monte_carlo(law):
    c, dx = law.covariance, law.dim_x
    mvn = lambda cov: stats.multivariate_normal(np.zeros(len(cov)), cov)  # noqa: E731
    _mc_check(law, lambda x, y: mvn(c).logpdf(np.hstack([x, y])) - mvn(c[:dx, :dx]).logpdf(x)
              - mvn(c[dx:, dx:]).logpdf(y))


# ---- additive uniform noise -----------------------------------------------------------------------------------

def _p_y(y, eps):
    """Density of Y = X + N: length of [0, 1] intersected with [y - eps, y + eps], over 2 eps."""
    return np.clip(np.minimum(1.0, y + eps) - np.maximum(0.0, y - eps), 0.0, None) / (2 * eps)


@pytest.mark.parametrize("eps", [0.05, 0.1, 0.3, 0.5, 0.75, 2.0])
def test_additive_uniform_matches_quadrature(eps):
    """I = h(Y) - h(Y|X) = -int p_Y ln p_Y dy - ln(2 eps), by quad with the kinks of p_Y as breakpoints."""
    kinks = sorted({-eps, eps, 1 - eps, 1 + eps})
    h = sum(integrate.quad(lambda y: -_p_y(y, eps) * np.log(_p_y(y, eps)) if _p_y(y, eps) > 0 else 0.0,
                           a, b, epsabs=1e-13)[0] for a, b in zip(kinks, kinks[1:], strict=False))
    quad = (h - np.log(2 * eps)) / LN2
    assert_allclose(additive_uniform_mi_bits(eps), quad, atol=1e-9, err_msg=f"eps={eps}: closed form vs quad, 1e-9")


@pytest.mark.parametrize("eps", [0.1, 0.75])
def test_additive_uniform_matches_monte_carlo(eps):
    law = AdditiveUniformLaw(eps)
    _mc_check(law, lambda x, y: -np.log(2 * eps) - np.log(_p_y(y[:, 0], eps)))
    s = law.sample(1000, 3)
    assert s.x.min() >= 0 and s.x.max() <= 1 and np.abs(s.y - s.x).max() <= eps


# ---- transforms: invertible, so the MI of the pulled-back draws is the base law's ------------------------------

_TRANSFORMED = [TransformedLaw(MultinormalLaw(1, 1, "dense", 0.75), k) for k in TRANSFORMS if k != "spiral"]
_TRANSFORMED += [TransformedLaw(MultinormalLaw(3, 3, "2-pair", 0.8), "spiral"),
                 TransformedLaw(TransformedLaw(MultinormalLaw(3, 3, "2-pair", 0.8), "normal_cdf"), "spiral", 2.0),
                 TransformedLaw(StudentLaw(2, 2, 1), "asinh"), TransformedLaw(StudentLaw(3, 3, 2), "half_cube")]


def _pull_back(law, v, side):
    while isinstance(law, TransformedLaw):
        v, law = law.inverse(v, side), law.law
    return v, law


@pytest.mark.parametrize("law", _TRANSFORMED, ids=repr)
def test_transformed_law_matches_monte_carlo_of_the_base_density(law):
    _, base = _pull_back(law, np.zeros((1, law.dim_x)), "x")
    c, dx = (base.dispersion if isinstance(base, StudentLaw) else base.covariance), base.dim_x
    if isinstance(base, StudentLaw):
        base_ratio = _student_log_ratio(base)
    else:
        mvn = lambda cov: stats.multivariate_normal(np.zeros(len(cov)), cov)  # noqa: E731
        base_ratio = lambda x, y: (mvn(c).logpdf(np.hstack([x, y])) - mvn(c[:dx, :dx]).logpdf(x)  # noqa: E731
                                   - mvn(c[dx:, dx:]).logpdf(y))
    _mc_check(law, lambda u, v: base_ratio(_pull_back(law, u, "x")[0], _pull_back(law, v, "y")[0]), n=50_000)
    assert law.mi == base.mi


@pytest.mark.parametrize("law", _TRANSFORMED, ids=repr)
def test_transforms_are_the_maps_of_the_base_draws_and_invert(law):
    s, b = law.sample(500, 5), law.law.sample(500, 5)
    assert_allclose(s.x, law.forward(b.x, "x"), rtol=0, atol=0)
    assert_allclose(law.inverse(s.x, "x"), b.x, atol=1e-9)
    assert_allclose(law.inverse(s.y, "y"), b.y, atol=1e-9)
    if law.kind == "spiral":  # a rotation: norms are kept, and the rotation angle varies with the norm
        assert_allclose(np.linalg.norm(s.x, axis=1), np.linalg.norm(b.x, axis=1), rtol=1e-12)
    else:  # coordinate-wise and strictly increasing: ranks are kept
        order = np.argsort(b.y[:, 0])
        assert np.all(np.diff(s.y[order, 0]) > 0)


def test_bimodal_marginal_is_the_mixture():
    s = TransformedLaw(MultinormalLaw(1, 1, "dense", 0.75), "bimodal").sample(20_000, 2)
    cdf = lambda v: 0.3 * stats.norm.cdf(v) + 0.7 * stats.norm.cdf(v - 5)  # noqa: E731
    assert stats.kstest(s.x[:, 0], cdf).pvalue > 1e-3


def test_student_marginal_is_t_and_draws_are_reproducible():
    law = StudentLaw(2, 3, 2)
    a, b = law.sample(20_000, 9), law.sample(20_000, 9)
    np.testing.assert_array_equal(a.x, b.x)
    assert a.x.shape == (20_000, 2) and a.y.shape == (20_000, 3)
    assert stats.kstest(a.y[:, 1], stats.t(df=2).cdf).pvalue > 1e-3
    assert abs(np.corrcoef(a.x[:, 0], a.y[:, 0])[0, 1]) < 0.05  # uncorrelated, yet I > 0
    assert "StudentLaw(2, 3, df=2, 'identity', 0).sample(n=20000, seed=9)" == repr(a)


# ---- validation ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("make, match", [
    (lambda: MultinormalLaw(0, 1), "dim_x"),
    (lambda: MultinormalLaw(2, 2.5), "dim_y"),
    (lambda: MultinormalLaw(2, 2, "sparse"), "structure"),
    (lambda: MultinormalLaw(2, 2, "dense", 1.0), "strength"),
    (lambda: MultinormalLaw(2, 2, "dense", float("nan")), "strength"),
    (lambda: MultinormalLaw(1, 3, "2-pair", 0.8), "2-pair"),
    (lambda: StudentLaw(1, 1, 0), "df"),
    (lambda: StudentLaw(1, 1, "3"), "df"),
    (lambda: StudentLaw(1, 1, 1, "identity", 0.5), "strength"),
    (lambda: AdditiveUniformLaw(-0.1), "epsilon"),
    (lambda: TransformedLaw(AdditiveUniformLaw(0.1), "log"), "kind"),
    (lambda: TransformedLaw(MultinormalLaw(2, 2), "spiral"), "spiral"),
    (lambda: TransformedLaw(canon.canonical_laws("continuous", "discrete")[0], "asinh"), "law"),
    (lambda: MultinormalLaw(1, 1).sample(0, 1), "n"),
    (lambda: MultinormalLaw(1, 1).sample(10, -1), "seed"),
    (lambda: StudentLaw(1, 1, 1).sample(10, 1.5), "seed"),
])
def test_bad_arguments_are_named(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_numpy_scalars_are_accepted():
    law = StudentLaw(np.int64(2), np.int64(2), np.float32(3.0), "dense", np.float64(0.5))
    assert law.dim_x == 2 and type(law.dim_x) is int and law.df == 3.0
    assert law.sample(np.int64(5), np.int64(1)).x.shape == (5, 2)
    assert_allclose(AdditiveUniformLaw(np.float32(0.75)).mi, 1 / (3 * LN2), rtol=1e-6)


# ---- strategies and canonical cases ----------------------------------------------------------------------------

@settings(max_examples=25, deadline=None, derandomize=True)
@given(S.benchmark_laws())
def test_benchmark_strategy_draws_valid_laws(law):
    s = law.sample(50, 0)
    assert s.x.shape == (50, law.dim_x) and s.y.shape == (50, law.dim_y)
    assert np.all(np.isfinite(s.x)) and np.all(np.isfinite(s.y))
    assert np.isfinite(s.mi) and s.mi > 0
    # invertible in floating point too: no two draws merged (Phi of a Cauchy draw rounds to 1, hence normal bases)
    assert len(np.unique(s.x, axis=0)) == 50 and len(np.unique(s.y, axis=0)) == 50
    if getattr(law, "kind", "") in ("normal_cdf", "bimodal", "spiral"):
        assert isinstance(law.law, MultinormalLaw), law


def test_known_mi_laws_of_two_continuous_arguments_include_the_benchmark():
    fixed = canon.canonical_laws("continuous", "continuous", "continuous")
    assert {type(law).__name__ for law in fixed} >= {"GaussianLaw", "StudentLaw", "AdditiveUniformLaw",
                                                    "TransformedLaw"}
    assert canon.canonical_laws("continuous", "discrete", "benchmark") == []
    assert S.laws_for("continuous", "discrete", "benchmark").is_empty
    with pytest.raises(ValueError, match="family"):
        S.laws_for("continuous", "continuous", "benchmarks")


def test_benchmark_laws_are_found_in_the_laws_module():
    from ibtheory.testing import laws

    assert laws.StudentLaw is StudentLaw and laws.TransformedLaw is TransformedLaw
    spiral = TransformedLaw(laws.GaussianLaw(np.array([0.5, 0.2, 0.1])), "spiral")
    assert spiral.mi == laws.gaussian_mi_bits(np.array([0.5, 0.2, 0.1])) and spiral.sample(4, 0).x.shape == (4, 3)
    with pytest.raises(AttributeError, match="NoSuchLaw"):
        laws.NoSuchLaw  # noqa: B018
