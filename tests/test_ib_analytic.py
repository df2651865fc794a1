"""Closed forms and the sympy derivations of ibtheory.ib.analytic."""

import numpy as np
import pytest
import sympy as sp
from numpy.testing import assert_allclose

from ibtheory.ib import analytic as A
from ibtheory.ib import solve, trivial_critical_beta


def test_bsc_curve_endpoints_and_gerber():
    assert_allclose(A.bsc_curve(0.1, [0.0]), [0.0], atol=1e-7)
    assert_allclose(A.bsc_curve(0.1, [1.0, 3.0]), 1 - A.binary_entropy(0.1), rtol=1e-12)
    # initial slope (1 - 2p)^2 (the strong data-processing constant of the BSC)
    R = 1e-4
    assert_allclose(A.bsc_curve(0.1, [R])[0] / R, 0.64, rtol=2e-3)


def test_binary_entropy_inverse_roundtrip():
    q = np.linspace(0.01, 0.5, 50)
    assert_allclose(A.binary_entropy(A.binary_entropy_inverse(A.binary_entropy(q))), A.binary_entropy(q), atol=1e-14)


def test_gaussian_scalar_matches_eigen_form():
    rho = 0.8
    lam = A.gaussian_ib_eigenvalues([[1.0]], [[rho]], [[1.0]])
    assert_allclose(lam, [1 - rho**2])
    betas = np.geomspace(1.0 / rho**2 * 1.001, 100, 20)
    ixt, ity = A.gaussian_ib_point(lam, betas)
    assert_allclose(ity, A.gaussian_ib_curve(rho, ixt), atol=1e-12)
    ixt0, ity0 = A.gaussian_ib_point(lam, [0.9 / rho**2])
    assert ixt0[0] == 0 and ity0[0] == 0


def test_sympy_trivial_threshold_matches_numeric():
    p = sp.Symbol("p", positive=True)
    expr = A.trivial_threshold_bsc()
    for pv in (0.05, 0.2, 0.35):
        p_xy = 0.5 * np.array([[1 - pv, pv], [pv, 1 - pv]])
        assert_allclose(float(expr.subs(p, pv)), trivial_critical_beta(p_xy), rtol=1e-12)
        assert_allclose(float(expr.subs(p, pv)), A.bsc_critical_beta(pv), rtol=1e-12)


def test_sympy_gradient_is_ib_form_and_solution_is_stationary():
    p_xy = np.array([[0.3, 0.1], [0.05, 0.25], [0.15, 0.15]])
    s = solve(p_xy, 5.0, n_t=2, init="random", certify=False, tol=1e-14)
    r = A.stationarity_residual(p_xy, s.encoder, 5.0)
    assert r["identity"] < 1e-12, "dL/dp(t|x) differs from p(x)[ln p(t|x)/p(t) + beta KL] by more than a constant"
    assert r["stationarity"] < 1e-7, f"numeric solution not stationary: {r['stationarity']:.3g} nats"
    off = A.stationarity_residual(p_xy, np.array([[0.7, 0.3], [0.2, 0.8], [0.5, 0.5]]), 5.0)
    assert off["stationarity"] > 1e-3, "a non-solution must fail the check"


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: A.bsc_curve("0.1", [0.5]), "^p must be a real number"),
        (lambda: A.bsc_curve(np.nan, [0.5]), "^p must be a finite"),
        (lambda: A.bsc_curve(1.5, [0.5]), "^p must be <= 1"),
        (lambda: A.bsc_curve(0.1, ["a"]), "^R must be a numeric array"),
        (lambda: A.bsc_curve(0.1, [np.nan]), "^R must be >= 0"),
        (lambda: A.bsc_critical_beta(True), "^p must be a real number"),
        (lambda: A.gaussian_ib_curve(1.0, [0.5]), "^rho must be < 1"),
        (lambda: A.gaussian_ib_curve("0.8", [0.5]), "^rho must be a real number"),
        (lambda: A.gaussian_ib_curve(0.8, [-1.0]), "^R must be >= 0"),
        (lambda: A.binary_entropy_inverse(np.array([0.5 + 1j])), "^H must be a numeric array of real numbers"),
    ],
)
def test_bad_scalars_name_the_argument(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_numpy_scalars_and_the_independent_bsc():
    assert_allclose(A.bsc_curve(np.float32(0.25), [1.0]), 1 - A.binary_entropy(0.25), rtol=1e-12)
    assert A.bsc_critical_beta(np.float64(0.5)) == np.inf  # X and Y independent: never non-trivial
    assert_allclose(A.gaussian_ib_curve(np.float32(0.5), [np.inf]), -0.5 * np.log2(1 - 0.25), rtol=1e-7)
