"""Goldfeld et al. (2019)'s noisy network by sample propagation: against the single-neuron quadrature, against
exact mixture informations computed here on a grid (first layers; a linear two-layer net whose T_2 | X is
Gaussian), the bounds H(X), H(Y), the data-processing inequality, reproducibility and bad input."""

import dataclasses
import doctest

import numpy as np
import pytest
import torch
from numpy.testing import assert_allclose, assert_array_equal
from scipy.special import logsumexp

import ibtheory.nets.noisy_network
from ibtheory.estimators.gaussian import noisy_neuron_information
from ibtheory.nets.model import BatchedMLP
from ibtheory.nets.noisy_network import NoisyNetworkResult, noisy_network_information

X4 = np.array([[-3.0], [-1.0], [1.0], [3.0]])
P4 = np.full(4, 0.25)
SIGN = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, 1.0]])  # Y = sign(X)


def _row(weights, biases):
    """One network's parameter row, laid out as FlatEnsemble's: all weights (row-major), then all biases."""
    return np.concatenate([np.ravel(w) for w in weights] + [np.ravel(b) for b in biases])


def _grid_information(means, cov, p_x, p_y_given_x, step=0.1, reach=8.0):
    """Exact I(X;T) and I(T;Y) in bits of T = m(X) + N(0, cov), by the Riemann sum of each mixture entropy on a
    grid of spacing ``step`` standard deviations over the centres +- ``reach`` (spectrally accurate for these
    smooth, fast-decaying integrands); 1 or 2 dimensions."""
    means = np.asarray(means, float)
    d = means.shape[1]
    sd = np.sqrt(np.diag(cov))
    h = step * sd.min()
    axes = [np.arange(means[:, i].min() - reach * sd[i], means[:, i].max() + reach * sd[i] + h, h) for i in range(d)]
    grid = np.stack(np.meshgrid(*axes, indexing="ij"), -1).reshape(-1, d)
    prec = np.linalg.inv(cov)
    diff = grid[:, None, :] - means[None]
    log_q = -0.5 * np.einsum("nxi,ij,nxj->nx", diff, prec, diff) - 0.5 * np.log(np.linalg.det(2 * np.pi * cov))

    def entropy(w):
        keep = w > 0
        lg = logsumexp(log_q[:, keep], b=w[keep], axis=1)
        return -np.sum(np.exp(lg) * lg) * h**d

    h_t = entropy(np.asarray(p_x, float))
    h_noise = 0.5 * np.log(np.linalg.det(2 * np.pi * np.e * cov))
    joint = np.asarray(p_x, float)[:, None] * np.asarray(p_y_given_x, float)
    p_y = joint.sum(0)
    h_t_y = sum(p_y[y] * entropy(joint[:, y] / p_y[y]) for y in range(joint.shape[1]) if p_y[y] > 0)
    return (h_t - h_noise) / np.log(2), (h_t - h_t_y) / np.log(2)


def _entropy_bits(p):
    p = np.asarray(p, float)
    p = p[p > 0]
    return float(-(p * np.log2(p)).sum())


def _random_net(rng, d, hidden, n_y, repeats, scale=1.5):
    full = (d,) + tuple(hidden) + (n_y,)
    rows = []
    for _ in range(repeats):
        ws = [rng.normal(size=(a, b)) * scale / np.sqrt(a) for a, b in zip(full[:-1], full[1:], strict=True)]
        bs = [rng.normal(size=b) * 0.3 for b in full[1:]]
        rows.append(_row(ws, bs))
    return np.stack(rows)


def test_single_tanh_neuron_matches_quadrature():
    """T_1 = tanh(w X) + Z, X uniform on {-3, -1, 1, 3}: Goldfeld et al.'s neuron, one weight per network."""
    ws = np.array([0.05, 0.2, 0.4, 1.0, 2.0])
    params = np.stack([_row([[[w]], [[0.7, -0.4]]], [[0.0], [0.1, -0.2]]) for w in ws])
    res = noisy_network_information(params, [1], "tanh", X4, P4, SIGN, sigma=0.1, n_mc=4000, seed=3)
    exact = noisy_neuron_information(ws, 0.0, 0.1)
    assert res.I_XT.shape == (1, 5)
    assert np.all(np.abs(res.I_XT[0] - exact) <= 4 * res.I_XT_se[0] + 1e-6), (res.I_XT[0], exact, res.I_XT_se[0])
    assert np.all(res.I_XT_se[0] < 0.01)  # the check above is a sharp one
    # the first layer's conditional is one Gaussian: n_draws does not enter it at all
    one = noisy_network_information(params, [1], "tanh", X4, P4, SIGN, sigma=0.1, n_draws=1, n_mc=4000, seed=3)
    assert_array_equal(one.I_XT, res.I_XT)
    assert_array_equal(one.I_TY, res.I_TY)


def test_first_layer_against_grid_with_flat_ensemble_layout():
    """Layer 1 of width 1 under further layers, with biases, non-uniform p(x) and soft labels: the parameter layout
    is FlatEnsemble's (the activations come from BatchedMLP), and both informations match the 1-D grid."""
    rng = np.random.default_rng(7)
    n_x, d, r, sigma = 6, 2, 3, 0.3
    x = rng.normal(size=(n_x, d))
    p_x = rng.dirichlet(np.ones(n_x))
    pyx = rng.dirichlet(np.ones(3), size=n_x)
    weights = [rng.normal(size=(r, a, b)) for a, b in [(d, 1), (1, 3), (3, 3)]]
    model = BatchedMLP((d, 1, 3, 3), "tanh", weights, dtype=torch.float64)
    with torch.no_grad():
        for b in model.biases:
            b.copy_(torch.from_numpy(rng.normal(size=tuple(b.shape))))
        h1 = model(torch.from_numpy(np.broadcast_to(x.T, (r, d, n_x)).copy()))[0][:, 0, :].numpy()  # (R, n_x)
    params = model.flat_parameters().numpy()
    res = noisy_network_information(params, [1, 3], "tanh", x, p_x, pyx, sigma=sigma, n_mc=3000, seed=1)
    assert res.I_XT.shape == (2, r)
    for i in range(r):
        want_xt, want_ty = _grid_information(h1[i][:, None], np.array([[sigma**2]]), p_x, pyx)
        assert abs(res.I_XT[0, i] - want_xt) <= 4 * res.I_XT_se[0, i] + 1e-6, (i, res.I_XT[0, i], want_xt)
        assert abs(res.I_TY[0, i] - want_ty) <= 4 * res.I_TY_se[0, i] + 1e-6, (i, res.I_TY[0, i], want_ty)


def test_linear_two_layers_against_closed_form_conditionals():
    """Linear 1-2-2 net: T_1 | x = N(x W1 + b1, s^2 I) and T_2 | x = N((x W1 + b1) W2 + b2, s^2 (W2^T W2 + I)), so
    both layers' informations are exact mixture informations (2-D grid).  W2 is far from normal, so W2 W2^T (a
    transposed product) would be off by ~0.3 bits, and dropping the propagated noise by more."""
    w1, b1 = np.array([[1.0, 0.4]]), np.array([0.2, -0.1])
    w2, b2 = np.array([[0.2, 1.5], [0.3, -0.2]]), np.array([0.0, 0.3])
    params = _row([w1, w2, [[0.5, -0.5], [1.0, 2.0]]], [b1, b2, [0.1, 0.2]])[None]
    pyx = np.array([[1.0, 0.0], [0.8, 0.2], [0.2, 0.8], [0.0, 1.0]])
    sigma = 0.8
    res = noisy_network_information(params, [2, 2], "linear", X4, P4, pyx, sigma=sigma, n_draws=1024, n_mc=1000,
                                    seed=2)
    m1 = X4 @ w1 + b1
    want1 = _grid_information(m1, sigma**2 * np.eye(2), P4, pyx)
    want2 = _grid_information(m1 @ w2 + b2, sigma**2 * (w2.T @ w2 + np.eye(2)), P4, pyx)
    wrong = _grid_information(m1 @ w2 + b2, sigma**2 * (w2 @ w2.T + np.eye(2)), P4, pyx)
    assert abs(wrong[0] - want2[0]) > 0.2  # the test can tell the two covariances apart
    got_xt, got_ty, se_xt, se_ty = res.I_XT[:, 0], res.I_TY[:, 0], res.I_XT_se[:, 0], res.I_TY_se[:, 0]
    assert abs(got_xt[0] - want1[0]) <= 4 * se_xt[0] + 1e-6
    assert abs(got_ty[0] - want1[1]) <= 4 * se_ty[0] + 1e-6
    # layer 2: Monte Carlo error plus the sample-propagation error of 1024 draws (in this setting we measured a
    # bias of +0.013 bits with 256 draws and none visible with 1024, spread across seeds below the se)
    assert abs(got_xt[1] - want2[0]) <= 4 * se_xt[1] + 0.01, (got_xt[1], want2[0], se_xt[1])
    assert abs(got_ty[1] - want2[1]) <= 4 * se_ty[1] + 0.01, (got_ty[1], want2[1], se_ty[1])
    assert se_xt[1] < 0.025


def test_bounds_and_limits():
    """I(X;T_l) <= H(X), I(T_l;Y) <= H(Y) (both hold for every sample, see the module docstring) and
    I(T;Y) <= I(X;T); tiny noise on distinct first-layer points gives H(X) and I(X;Y), huge noise gives 0."""
    rng = np.random.default_rng(11)
    n_x, d, hidden = 12, 3, (6, 4, 3)
    x = rng.normal(size=(n_x, d))
    p_x = rng.dirichlet(np.ones(n_x))
    pyx = rng.dirichlet(np.ones(3) * 0.5, size=n_x)
    params = _random_net(rng, d, hidden, 3, repeats=2)
    h_x = _entropy_bits(p_x)
    p_y = p_x @ pyx
    h_y = _entropy_bits(p_y)
    i_xy = h_y - float(p_x @ np.array([_entropy_bits(row) for row in pyx]))
    res = noisy_network_information(params, hidden, "tanh", x, p_x, pyx, sigma=0.2, n_draws=8, n_mc=64)
    assert np.all(res.I_XT <= h_x + 1e-9) and np.all(res.I_TY <= h_y + 1e-9)
    assert np.all(res.I_TY <= res.I_XT + 4 * np.hypot(res.I_XT_se, res.I_TY_se))
    tiny = noisy_network_information(params, hidden, "tanh", x, p_x, pyx, sigma=1e-4, n_draws=2, n_mc=8)
    assert_allclose(tiny.I_XT[0], h_x, atol=1e-9)
    assert_allclose(tiny.I_TY[0], i_xy, atol=1e-9)
    huge = noisy_network_information(params, hidden, "tanh", x, p_x, pyx, sigma=1e3, n_draws=2, n_mc=64)
    assert np.all(np.abs(huge.I_XT) <= 4 * huge.I_XT_se + 1e-6) and np.all(huge.I_XT_se < 1e-3)
    assert np.all(np.abs(huge.I_TY) <= 4 * huge.I_TY_se + 1e-6) and np.all(huge.I_TY_se < 1e-3)


def test_data_processing_inequality():
    """I(X;T_{l+1}) <= I(X;T_l) for the noisy chain X -> T_1 -> T_2 -> T_3, within the combined error."""
    rng = np.random.default_rng(5)
    n_x, d, hidden = 16, 4, (3, 3, 2)
    x = rng.normal(size=(n_x, d))
    pyx = np.eye(2)[rng.integers(0, 2, n_x)]
    params = _random_net(rng, d, hidden, 2, repeats=3)
    res = noisy_network_information(params, hidden, "tanh", x, np.full(n_x, 1 / n_x), pyx, sigma=0.3, n_draws=64,
                                    n_mc=200)
    slack = 4 * np.hypot(res.I_XT_se[1:], res.I_XT_se[:-1])
    assert np.all(res.I_XT[1:] <= res.I_XT[:-1] + slack), (res.I_XT, slack)
    assert np.all(res.I_XT[0] > res.I_XT[-1] + 0.1)  # the chain does lose information here: not a vacuous check


def test_reproducible_and_per_network():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(10, 3))
    pyx = rng.dirichlet(np.ones(2), size=10)
    params = _random_net(rng, 3, (4, 3), 2, repeats=3)
    args = ((4, 3), "relu", x, np.full(10, 0.1), pyx)
    a = noisy_network_information(params, *args, n_draws=4, n_mc=16, seed=9)
    b = noisy_network_information(params, *args, n_draws=4, n_mc=16, seed=9)
    c = noisy_network_information(params, *args, n_draws=4, n_mc=16, seed=10)
    for name in ("I_XT", "I_TY", "I_XT_se", "I_TY_se"):
        assert_array_equal(getattr(a, name), getattr(b, name))
    assert not np.array_equal(a.I_XT, c.I_XT)
    # network r's estimate depends on its own row (and r and the seed), not on the other networks
    first = noisy_network_information(params[:1], *args, n_draws=4, n_mc=16, seed=9)
    other = params.copy()
    other[1] = _random_net(rng, 3, (4, 3), 2, repeats=1)[0]
    changed = noisy_network_information(other, *args, n_draws=4, n_mc=16, seed=9)
    for res, cols in ((first, [0]), (changed, [0, 2])):
        for name in ("I_XT", "I_TY"):
            assert_allclose(getattr(res, name)[:, cols], getattr(a, name)[:, cols], rtol=1e-12, atol=1e-12)
    assert not np.allclose(changed.I_XT[:, 1], a.I_XT[:, 1])


def test_result_type():
    params = _row([[[1.0]], [[0.5, -0.5]]], [[0.0], [0.0, 0.0]])[None]
    res = noisy_network_information(params, [1], "sigmoid", X4, P4, SIGN, sigma=0.2, n_draws=3, n_mc=5)
    assert isinstance(res, NoisyNetworkResult)
    assert (res.sigma, res.n_draws, res.n_mc) == (0.2, 3, 5)
    for name in ("I_XT", "I_TY", "I_XT_se", "I_TY_se"):
        v = getattr(res, name)
        assert v.shape == (1, 1) and np.all(np.isfinite(v))
    with pytest.raises(dataclasses.FrozenInstanceError):
        res.sigma = 1.0


def test_docstring_examples():
    result = doctest.testmod(ibtheory.nets.noisy_network)
    assert result.attempted > 0 and result.failed == 0


_PARAMS = _row([[[1.0]], [[0.5, -0.5]]], [[0.0], [0.0, 0.0]])[None]  # d = 1, widths [1], 2 outputs: 6 columns


@pytest.mark.parametrize("change,name", [
    ({"sigma": 0.0}, "sigma"),
    ({"sigma": -1.0}, "sigma"),
    ({"sigma": float("nan")}, "sigma"),
    ({"n_draws": 0}, "n_draws"),
    ({"n_draws": 2.5}, "n_draws"),
    ({"n_mc": 1}, "n_mc"),
    ({"seed": -1}, "seed"),
    ({"activation": "softplus"}, "activation"),
    ({"activation": None}, "activation"),
    ({"widths": []}, "widths"),
    ({"widths": [0]}, "widths"),
    ({"widths": "1"}, "widths"),
    ({"params": _PARAMS[:, :-1]}, "params"),
    ({"params": np.hstack([_PARAMS, _PARAMS])}, "params"),
    ({"params": _PARAMS[0]}, "params"),
    ({"params": np.where(np.arange(6) == 0, np.nan, _PARAMS)}, "params"),
    ({"widths": [2]}, "params"),
    ({"inputs": X4[:, 0]}, "inputs"),
    ({"inputs": X4[:3]}, "inputs"),
    ({"inputs": np.hstack([X4, X4])}, "params"),  # two input features need more weights than the row holds
    ({"inputs": np.where(X4 > 2, np.inf, X4)}, "inputs"),
    ({"p_x": [0.5, 0.5]}, "p_x"),
    ({"p_y_given_x": SIGN[:3]}, "p_y_given_x"),
])
def test_bad_input(change, name):
    kwargs = {"params": _PARAMS, "widths": [1], "activation": "tanh", "inputs": X4, "p_x": P4,
              "p_y_given_x": SIGN} | change
    with pytest.raises(ValueError, match=name):
        noisy_network_information(**kwargs)
