"""Gaussian channel bound (closed forms, upper bound of the exact mixture information) and the noisy tanh neuron
(against scipy quadrature, limits, the rise-then-fall of Goldfeld et al. 2019)."""

import doctest

import numpy as np
import pytest
from numpy.testing import assert_allclose
from scipy import integrate
from scipy.special import logsumexp
from scipy.stats import norm

import ibtheory.estimators.gaussian
from ibtheory.estimators import kde_information
from ibtheory.estimators.gaussian import gaussian_information, noisy_neuron_curve, noisy_neuron_information

# ---------------------------------------------------------------- Gaussian bound


def _closed_form(layer, p_x, noise_var):
    """1/2 sum_i log2(1 + lambda_i / sigma^2) over the eigenvalues of the p_x-weighted covariance (np.cov)."""
    cov = np.atleast_2d(np.cov(layer.T, aweights=p_x, bias=True))
    return 0.5 * np.sum(np.log2(1 + np.linalg.eigvalsh(cov).clip(0) / noise_var))


def _mixture_1d(centres, p_x, sigma):
    """Exact I(X; c(X) + N(0, sigma^2)) in bits by quadrature of the 1-D mixture (scipy.integrate.quad)."""
    def f(t):
        lp = logsumexp(norm.logpdf(t, centres, sigma), b=p_x)
        return -np.exp(lp) * lp
    edges = np.concatenate([[centres.min() - 12 * sigma], np.unique(centres), [centres.max() + 12 * sigma]])
    h = sum(integrate.quad(f, lo, hi, epsabs=1e-12, epsrel=1e-12, limit=400)[0]
            for lo, hi in zip(edges[:-1], edges[1:], strict=True))
    return (h - 0.5 * np.log(2 * np.pi * np.e * sigma**2)) / np.log(2)


def test_scalar_closed_form():
    rng = np.random.default_rng(0)
    acts = rng.normal(size=(2, 3, 50, 1)) * np.array([0.1, 1.0, 5.0])[:, None, None]
    p_x = rng.dirichlet(np.ones(50))
    for noise_var in (0.01, 0.1, 2.0):
        got = gaussian_information(acts, p_x, noise_var)
        mean = np.einsum("n,...n->...", p_x, acts[..., 0])
        var = np.einsum("n,...n->...", p_x, (acts[..., 0] - mean[..., None]) ** 2)
        assert got.shape == (2, 3)
        assert_allclose(got, 0.5 * np.log2(1 + var / noise_var), rtol=1e-12, err_msg="1/2 log2(1 + var / sigma^2)")


@pytest.mark.parametrize("n_x,units", [(40, 3), (6, 25)])  # units <= n_x, and the Sylvester side n_x < units
def test_multivariate_closed_form(n_x, units):
    rng = np.random.default_rng(n_x)
    acts = rng.normal(size=(4, n_x, units)) @ rng.normal(size=(units, units))
    p_x = rng.dirichlet(np.ones(n_x))
    got = gaussian_information(acts, p_x, 0.3)
    want = [_closed_form(acts[i], p_x, 0.3) for i in range(4)]
    assert_allclose(got, want, rtol=1e-10, err_msg="1/2 log2 det(I + Sigma/sigma^2) vs eigenvalues")


def _mixture_grid(centres, p_x, sigma, step):
    """Exact I(X; c(X) + N(0, sigma^2)) in bits by the trapezoid rule on a grid of spacing ``step`` (spectrally
    accurate for a smooth, fast-decaying density such as a Gaussian mixture)."""
    t = np.arange(centres.min() - 12 * sigma, centres.max() + 12 * sigma, step)
    lp = logsumexp(norm.logpdf(t[:, None], centres[None, :], sigma), b=p_x, axis=1)
    h = -np.trapezoid(np.exp(lp) * lp, t)
    return (h - 0.5 * np.log(2 * np.pi * np.e * sigma**2)) / np.log(2)


def test_exact_for_a_gaussian_layer():
    # equally likely points at the normal quantiles: the noisy layer is Gaussian up to the discretisation, so the
    # exact mixture information approaches the closed form from below
    s, sigma = 1.0, 0.5
    n = 1001
    centres = s * norm.ppf((np.arange(n) + 0.5) / n)
    p_x = np.full(n, 1 / n)
    got = float(gaussian_information(centres[:, None], p_x, sigma**2))
    exact = _mixture_grid(centres, p_x, sigma, sigma / 20)
    assert_allclose(exact, _mixture_grid(centres, p_x, sigma, sigma / 40), atol=1e-10, err_msg="grid converged")
    assert_allclose(got, 0.5 * np.log2(1 + np.var(centres) / sigma**2), rtol=1e-12)
    assert exact <= got + 1e-9 and got - exact < 1e-4, f"Gaussian layer: exact {exact:.6f} vs closed form {got:.6f}"


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("noise_var", [0.01, 0.1, 1.0])
def test_upper_bound_of_the_exact_1d_information(seed, noise_var):
    rng = np.random.default_rng(seed)
    centres = rng.uniform(-1, 1, size=7)
    p_x = rng.dirichlet(np.ones(7))
    exact = _mixture_1d(centres, p_x, np.sqrt(noise_var))
    got = float(gaussian_information(centres[:, None], p_x, noise_var))
    assert exact <= got + 1e-9, f"exact {exact:.6f} <= Gaussian bound {got:.6f}"


@pytest.mark.parametrize("noise_var", [0.05, 0.5])
def test_upper_bound_in_several_dimensions(noise_var):
    # above the KDE lower bound (a guaranteed lower bound) and a Monte Carlo estimate of the exact mixture information
    rng = np.random.default_rng(11)
    n_x, d = 12, 3
    acts = rng.uniform(-1, 1, size=(1, n_x, d))
    p_x = rng.dirichlet(np.ones(n_x))
    got = float(gaussian_information(acts, p_x, noise_var)[0])
    lower = float(kde_information(acts, p_x, np.eye(2)[np.arange(n_x) % 2], noise_var=noise_var).I_XT_lower[0])
    assert lower <= got + 1e-12
    m = 20000  # I = E[log p(t|x) - log p(t)] over x ~ p_x, t = c(x) + Z
    x = rng.choice(n_x, size=m, p=p_x)
    t = acts[0, x] + np.sqrt(noise_var) * rng.normal(size=(m, d))
    sq = ((t[:, None, :] - acts[0][None, :, :]) ** 2).sum(-1) / (2 * noise_var)  # (m, n_x)
    sample = (-sq[np.arange(m), x] - logsumexp(-sq, b=p_x, axis=1)) / np.log(2)
    mc, se = sample.mean(), sample.std() / np.sqrt(m)
    assert mc - 5 * se <= got, f"Monte Carlo {mc:.4f} +- {se:.4f} <= Gaussian bound {got:.4f}"


def test_invariances_and_padding():
    rng = np.random.default_rng(3)
    acts = rng.normal(size=(3, 30, 4))
    p_x = rng.dirichlet(np.ones(30))
    ref = gaussian_information(acts, p_x, 0.2)
    q, _ = np.linalg.qr(rng.normal(size=(4, 4)))
    assert_allclose(gaussian_information(acts + 7.5, p_x, 0.2), ref, rtol=1e-10, err_msg="adding a constant")
    assert_allclose(gaussian_information(acts @ q, p_x, 0.2), ref, rtol=1e-10, err_msg="rotation")
    assert_allclose(gaussian_information(3 * acts, p_x, 1.8), ref, rtol=1e-10, err_msg="scale with sigma")
    padded = np.concatenate([acts, np.full((3, 30, 2), np.nan)], axis=-1)
    assert_allclose(gaussian_information(padded, p_x, 0.2), ref, rtol=1e-12, err_msg="NaN padding units")
    assert_allclose(gaussian_information(np.full((2, 30, 4), 0.4), p_x, 0.2), 0.0, atol=1e-15)


def test_gaussian_bad_input():
    acts = np.zeros((2, 5, 3))
    p_x = np.full(5, 0.2)
    for noise_var in (0.0, -1.0, np.nan, np.inf, "0.1"):
        with pytest.raises(ValueError, match="noise_var"):
            gaussian_information(acts, p_x, noise_var)
    with pytest.raises(ValueError, match="p_x"):
        gaussian_information(acts, np.full(5, 0.3), 0.1)
    with pytest.raises(ValueError, match="p_x"):
        gaussian_information(acts, np.full(4, 0.25), 0.1)
    with pytest.raises(ValueError, match="activations"):
        gaussian_information(np.zeros(5), p_x, 0.1)
    bad = acts.copy()
    bad[0, 1, 0] = np.inf
    with pytest.raises(ValueError, match="infinite"):
        gaussian_information(bad, p_x, 0.1)
    bad[0, 1, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        gaussian_information(bad, p_x, 0.1)


# ---------------------------------------------------------------- noisy tanh neuron


def _neuron_quad(w, b, sigma, xs=(-3, -1, 1, 3)):
    c = np.tanh(w * np.asarray(xs, dtype=float) + b)
    return _mixture_1d(c, np.full(c.size, 1 / c.size), sigma)


@pytest.mark.parametrize("w,b,sigma", [(0.3, 0.0, 0.1), (1.0, 0.0, 0.1), (2.5, 0.0, 0.01), (1.7, 0.4, 0.05),
                                       (-0.8, 1.0, 0.3), (4.0, -0.5, 0.01)])
def test_neuron_matches_quad(w, b, sigma):
    got = float(noisy_neuron_information(w, b, sigma))
    assert_allclose(got, _neuron_quad(w, b, sigma), atol=1e-6, err_msg="Gauss-Hermite vs scipy quad, 1e-6 bits")


def test_neuron_limits():
    assert_allclose(noisy_neuron_information(0.0, [0.0, 0.7, -2.0], 0.1), 0.0, atol=1e-12, err_msg="w = 0: nothing")
    assert_allclose(noisy_neuron_information([0.5, 1.0], 0.0, 1e-5), 2.0, atol=1e-9, err_msg="sigma -> 0: H(X)")
    assert_allclose(noisy_neuron_information(1.0, 0.0, 1e3), 0.0, atol=1e-6, err_msg="sigma -> inf: nothing")
    eight = np.arange(-7, 8, 2) / 20  # tanh(x / 20) keeps 8 points ~0.1 apart: separated at sigma = 1e-3
    assert_allclose(noisy_neuron_information(1.0, 0.0, 1e-3, eight), 3.0, atol=1e-9, err_msg="log2(8)")
    assert_allclose(noisy_neuron_information(2.0, 0.0, 0.1, [1.5]), 0.0, atol=1e-12, err_msg="one input value")
    # w -> inf with b = 0: the points merge in pairs at -1 and +1, one bit (the sign of X) remains
    assert_allclose(noisy_neuron_information(20.0, 0.0, 0.1), 1.0, atol=1e-9)


def test_neuron_symmetry_and_broadcasting():
    w = np.array([[0.2], [1.0], [3.0]])
    b = np.array([0.0, 0.5])
    got = noisy_neuron_information(w, b, 0.1)
    assert got.shape == (3, 2)
    for i, j in np.ndindex(3, 2):  # elementwise: each entry is the scalar call
        assert_allclose(got[i, j], noisy_neuron_information(w[i, 0], b[j], 0.1), rtol=1e-14)
    assert_allclose(got[1, 1], _neuron_quad(1.0, 0.5, 0.1), atol=1e-6)
    # x -> -x symmetry of the inputs: (w, b) and (-w, b) give mirrored point sets, the same information
    assert_allclose(noisy_neuron_information(-w, b, 0.1), got, atol=1e-12)


@pytest.mark.parametrize("sigma", [0.01, 0.1])
def test_rise_then_fall_at_b_zero(sigma):
    ws = np.linspace(0.0, 8.0, 161)
    i_xt = noisy_neuron_information(ws, 0.0, sigma)
    k = int(np.argmax(i_xt))
    assert 0 < k < ws.size - 1, f"argmax at w = {ws[k]} is not inside the range"
    assert i_xt[0] < 1e-12 and i_xt[k] > 1.95 and abs(i_xt[-1] - 1.0) < 1e-6
    assert np.all(np.diff(i_xt[: k + 1]) >= -1e-9), "rises up to the maximum"
    assert np.all(np.diff(i_xt[k:]) <= 1e-9), "falls after it (clustering in pairs)"
    assert_allclose(i_xt[40], _neuron_quad(ws[40], 0.0, sigma), atol=1e-6)


def test_curve_dataset():
    ds = noisy_neuron_curve([0.0, 0.5, 20.0], b=0.0, sigma=0.1)
    assert ds.I_XT.dims == ("w",) and ds.I_XT.attrs["units"] == "bits"
    assert ds.w.values.tolist() == [0.0, 0.5, 20.0] and ds.attrs["sigma"] == 0.1 and ds.attrs["b"] == 0.0
    assert_allclose(ds.I_XT.values, [0.0, _neuron_quad(0.5, 0.0, 0.1), 1.0], atol=1e-6)


def test_neuron_bad_input():
    for sigma in (0.0, -0.1, np.nan, np.inf, None):
        with pytest.raises(ValueError, match="sigma"):
            noisy_neuron_information(1.0, 0.0, sigma)
    for xs in ((), [[1.0, 2.0]], [1.0, np.nan], [1.0, 1.0], ["a"]):
        with pytest.raises(ValueError, match="x_values"):
            noisy_neuron_information(1.0, 0.0, 0.1, xs)
    for w in (np.nan, [1.0, np.inf], "1.0", [True]):
        with pytest.raises(ValueError, match="w"):
            noisy_neuron_information(w)
    with pytest.raises(ValueError, match="b"):
        noisy_neuron_information(1.0, np.nan)
    with pytest.raises(ValueError, match="broadcast"):
        noisy_neuron_information([1.0, 2.0], [0.0, 0.1, 0.2])
    for ws in ([], [[0.0, 1.0]], [0.0, np.nan]):
        with pytest.raises(ValueError, match="ws"):
            noisy_neuron_curve(ws)
    with pytest.raises(ValueError, match="b"):
        noisy_neuron_curve([1.0], b=[0.0, 1.0])


def test_docstring_examples():
    result = doctest.testmod(ibtheory.estimators.gaussian)
    assert result.attempted > 0 and result.failed == 0
