"""SGD noise: gradient covariance, Lyapunov stationary covariance of SGD on linear regression (10 % target)."""

import numpy as np
import pytest
from numpy.testing import assert_allclose

from ibtheory.dynamics import (
    empirical_covariance,
    gradient_covariance,
    linear_regression_gradients,
    lyapunov_covariance,
    minibatch_covariance,
    relative_frobenius,
    sgd_linear_regression,
    sgd_temperature,
)


def _problem(seed=0, n=256, d=3):
    rng = np.random.default_rng(seed)
    basis = np.linalg.qr(rng.normal(size=(d, d)))[0]
    x = rng.normal(size=(n, d)) @ (np.diag([1.2, 0.9, 0.6]) @ basis)
    y = x @ np.array([1.0, -0.5, 0.25]) + 0.5 * rng.normal(size=n)
    h = x.T @ x / n
    w_min = np.linalg.solve(h, x.T @ y / n)
    return x, y, h, w_min


def test_sgd_stationary_covariance_within_10_percent_of_lyapunov():
    x, y, h, w_min = _problem()
    lr, batch = 0.05, 8
    c_b = minibatch_covariance(gradient_covariance(linear_regression_gradients(x, y, w_min)), batch)
    s_cont = lyapunov_covariance(h, c_b, lr)
    s_disc = lyapunov_covariance(h, c_b, lr, discrete=True)
    ds = sgd_linear_regression(x, y, lr, batch, n_steps=300, n_chains=3000, w0=w_min, burn_in=100, every=20,
                               seed=1)
    emp = empirical_covariance(ds["w"].values)
    err = relative_frobenius(emp, s_cont)
    assert err < 0.10, f"SGD covariance vs continuous Lyapunov: {err:.3f} (tol 10 %)"
    assert relative_frobenius(emp, s_disc) < 0.06
    # the O(lr H) difference between continuous and discrete Lyapunov solutions
    assert relative_frobenius(s_disc, s_cont) < lr * np.linalg.eigvalsh(h).max()


def test_lyapunov_known_answers_and_errors():
    assert_allclose(lyapunov_covariance([[2.0]], [[1.0]], 0.1), [[0.025]])
    h = np.diag([1.0, 3.0])
    s = lyapunov_covariance(h, np.eye(2), 0.2)
    assert_allclose(h @ s + s @ h, 0.2 * np.eye(2), atol=1e-14)
    assert_allclose(lyapunov_covariance(h, np.eye(2), 0.2, discrete=True), np.diag(0.04 / (1 - (1 - 0.2 *
                    np.diag(h)) ** 2)), rtol=1e-12)
    with pytest.raises(ValueError, match="positive definite"):
        lyapunov_covariance([[1.0, 0.0], [0.0, -1.0]], np.eye(2), 0.1)
    with pytest.raises(ValueError, match="stability limit"):
        lyapunov_covariance(h, np.eye(2), 1.0, discrete=True)
    with pytest.raises(ValueError, match="lr"):
        lyapunov_covariance(h, np.eye(2), 0.0)


def test_gradient_covariance_and_temperature():
    g = np.random.default_rng(2).normal(size=(500, 4))
    assert_allclose(gradient_covariance(g), np.cov(g.T, bias=True), rtol=1e-12)
    c = np.eye(4) * 2.0
    assert_allclose(sgd_temperature(0.1, minibatch_covariance(c, 10)), 0.1 * 0.2 / 2)
    assert_allclose(minibatch_covariance(c, 10, n=100), c / 10 * 90 / 99)
    with pytest.raises(ValueError, match="batch_size"):
        minibatch_covariance(c, 0)
    with pytest.raises(ValueError, match="per_sample_grads"):
        gradient_covariance(np.ones(3))


def test_sgd_diverges_loudly():
    x, y, _, _ = _problem()
    with pytest.raises(ValueError, match="diverged at step"):
        sgd_linear_regression(x, y, lr=5.0, batch_size=4, n_steps=500, n_chains=3, seed=0)
