"""Noisy-layer pairwise bounds: bracket the exact mixture information (1-D quadrature), limits, invariances."""

import numpy as np
import pytest
from numpy.testing import assert_allclose
from scipy.special import logsumexp
from scipy.stats import norm

from ibtheory.estimators import kde_information
from ibtheory.info import entropy


def _exact_1d(centres, p_x, sigma):
    """I(X;T) of T = c(X) + N(0, sigma^2) in bits by quadrature of the mixture density on a fine grid."""
    grid = np.linspace(centres.min() - 10 * sigma, centres.max() + 10 * sigma, 40001)
    dens = norm.pdf(grid[:, None], loc=centres[None, :], scale=sigma)  # (grid, n)
    mix = dens @ p_x
    h_t = -np.trapezoid(mix * np.log2(np.maximum(mix, 1e-300)), grid)
    return h_t - 0.5 * np.log2(2 * np.pi * np.e * sigma**2)


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("noise_var", [0.01, 0.1, 1.0])
def test_bounds_bracket_exact_information(seed, noise_var):
    rng = np.random.default_rng(seed)
    c = rng.uniform(-1, 1, size=6)
    p_x = rng.dirichlet(np.ones(6))
    r = kde_information(c[None, :, None], p_x, np.eye(2)[np.arange(6) % 2], noise_var=noise_var)
    exact = _exact_1d(c, p_x, np.sqrt(noise_var))
    assert r.I_XT_lower[0] - 1e-6 <= exact <= r.I_XT_upper[0] + 1e-6, (
        f"lower {r.I_XT_lower[0]:.6f} <= exact {exact:.6f} <= upper {r.I_XT_upper[0]:.6f} (tol 1e-6 bits)")


def test_limits_of_the_noise():
    rng = np.random.default_rng(1)
    acts = rng.uniform(-1, 1, size=(2, 20, 3))
    p_x = rng.dirichlet(np.ones(20))
    p_y_x = np.eye(2)[rng.integers(0, 2, 20)]
    tiny = kde_information(acts, p_x, p_y_x, noise_var=1e-8)
    assert_allclose(tiny.I_XT_upper, entropy(p_x), atol=1e-6, err_msg="sigma -> 0: I(X;T) -> H(X)")
    assert_allclose(tiny.I_XT_lower, entropy(p_x), atol=1e-6, err_msg="sigma -> 0: lower -> H(X)")
    huge = kde_information(acts, p_x, p_y_x, noise_var=1e8)
    assert_allclose([huge.I_XT_upper, huge.I_TY_upper], 0.0, atol=1e-6, err_msg="sigma -> inf: nothing left")


def test_invariances_and_padding():
    rng = np.random.default_rng(2)
    acts = rng.normal(size=(3, 30, 4))
    p_x = np.full(30, 1 / 30)
    p_y_x = rng.dirichlet(np.ones(3), size=30)
    r = kde_information(acts, p_x, p_y_x)
    q, _ = np.linalg.qr(rng.normal(size=(4, 4)))
    moved = kde_information(acts @ q + 5.0, p_x, p_y_x)
    assert_allclose(moved.I_XT_upper, r.I_XT_upper, atol=1e-9, err_msg="rotation and shift invariance")
    padded = np.concatenate([acts, np.full((3, 30, 2), np.nan)], axis=-1)
    assert_allclose(kde_information(padded, p_x, p_y_x).I_TY_upper, r.I_TY_upper, atol=1e-12)
    assert np.all(r.I_XT_lower <= r.I_XT_upper + 1e-12)
    assert_allclose(kde_information(acts, p_x, p_y_x, block=7).I_XT_lower, r.I_XT_lower, atol=1e-12)


def test_bad_noise():
    with pytest.raises(ValueError, match="noise_var"):
        kde_information(np.zeros((4, 1)), np.full(4, 0.25), np.eye(2)[[0, 1, 0, 1]], noise_var=0.0)


def _quadrature_I_TY(centres, p_x, p_yx, noise_var, n=200001):
    """I(T;Y) in bits of T = h(X) + N(0, noise_var) in 1-D by quadrature: H(T) - sum_y p(y) H(T|Y=y)."""
    sd = np.sqrt(noise_var)
    t = np.linspace(centres.min() - 12 * sd, centres.max() + 12 * sd, n)
    dt = t[1] - t[0]
    k = np.exp(-0.5 * (t[None, :] - centres[:, None]) ** 2 / noise_var) / np.sqrt(2 * np.pi * noise_var)

    def H(w):
        f = w @ k
        return float(-np.sum(np.where(f > 0, f * np.log2(np.where(f > 0, f, 1.0)), 0.0)) * dt)

    p_joint = p_x[:, None] * p_yx
    p_y = p_joint.sum(0)
    return H(p_x) - sum(p_y[y] * H(p_joint[:, y] / p_y[y]) for y in range(p_yx.shape[1]))


_CENTRES = np.array([0.0, 1.0, 2.0, 3.5, 5.0, 6.0])
_P_X = np.array([0.1, 0.2, 0.15, 0.25, 0.2, 0.1])
_P_YX = np.array([[0.9, 0.1], [0.8, 0.2], [0.6, 0.4], [0.3, 0.7], [0.1, 0.9], [0.05, 0.95]])


def test_I_TY_of_separated_centres_is_the_quadrature_value():
    # 1-D layer of 6 patterns with a stochastic p(y|x); centres 30 sigma apart: the mixtures do not overlap and
    # both pairwise forms give the exact I(T;Y) = I(X;Y)
    centres = 30.0 * _CENTRES
    exact = _quadrature_I_TY(centres, _P_X, _P_YX, noise_var=1.0)
    r = kde_information(centres[:, None], _P_X, _P_YX, noise_var=1.0)
    for name in ("I_TY_upper", "I_TY_lower"):
        est = float(getattr(r, name))
        assert abs(est - exact) <= 1e-6, f"{name} = {est:.8f} bits vs quadrature {exact:.8f} (tol 1e-6)"


def _pairwise_bits(d2: np.ndarray, w: np.ndarray, scale: float) -> float:
    """-sum_i w_i log2 sum_j w_j exp(-scale d2_ij), by scipy's logsumexp (an implementation independent of kde.py)."""
    m = w > 0
    return float(-np.sum(w[m] * logsumexp(-scale * d2[m], b=w[None, :], axis=1)) / np.log(2))


def test_I_TY_of_overlapping_mixtures_is_the_pairwise_closed_form():
    """Centres 1 sigma apart: the estimates are the Kolchinsky-Tracey differences

        I_TY = P(p_x) - sum_y p(y) P(p(x|y)),   P(w) = -sum_i w_i log2 sum_j w_j exp(-s D_ij),

    with s = 1/(2 sigma^2) (upper, KL) and 1/(8 sigma^2) (lower, Bhattacharyya), recomputed here with logsumexp
    (tol 1e-12 bits).  The closed form is itself checked against quadrature: for every mixture (weights p_x and
    each p(x|y)) P at s = 1/8 and 1/2 brackets the information H(T) - H(T|X) of that mixture (tol 1e-9)."""
    noise_var = 1.0
    d2 = (_CENTRES[:, None] - _CENTRES[None, :]) ** 2
    p_joint = _P_X[:, None] * _P_YX
    p_y = p_joint.sum(axis=0)
    mixtures = [_P_X] + [p_joint[:, y] / p_y[y] for y in range(p_y.size)]
    for w in mixtures:
        exact = _exact_1d(_CENTRES, w, np.sqrt(noise_var))
        low, high = _pairwise_bits(d2, w, 1 / (8 * noise_var)), _pairwise_bits(d2, w, 1 / (2 * noise_var))
        assert low - 1e-9 <= exact <= high + 1e-9, f"closed form {low:.6f} <= quadrature {exact:.6f} <= {high:.6f}"
    r = kde_information(_CENTRES[:, None], _P_X, _P_YX, noise_var=noise_var)
    for name, scale in (("I_TY_upper", 1 / (2 * noise_var)), ("I_TY_lower", 1 / (8 * noise_var))):
        closed = _pairwise_bits(d2, _P_X, scale) - sum(
            p_y[y] * _pairwise_bits(d2, mixtures[1 + y], scale) for y in range(p_y.size))
        assert_allclose(float(getattr(r, name)), closed, rtol=0, atol=1e-12,
                        err_msg=f"{name}: kde_information vs the closed form by logsumexp (tol 1e-12 bits)")


def test_I_TY_is_H_Y_when_labels_are_separated_and_zero_when_centres_coincide():
    p_x = np.full(4, 0.25)
    p_yx = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, 1.0]])
    apart = kde_information(np.array([[0.0], [0.0], [50.0], [50.0]]), p_x, p_yx, noise_var=1.0)
    same = kde_information(np.zeros((4, 1)), p_x, p_yx, noise_var=1.0)
    assert_allclose([float(apart.I_TY_upper), float(apart.I_TY_lower)], 1.0, atol=1e-9)
    assert_allclose([float(same.I_TY_upper), float(same.I_TY_lower)], 0.0, atol=1e-9)
