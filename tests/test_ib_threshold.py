"""The trivial threshold 1/s* (strong data-processing constant) and the Gaussian IB critical betas, checked against
brute force, canonical correlations and the certified solver."""

import numpy as np
import pytest
from numpy.testing import assert_allclose

from ibtheory.ib import analytic as A
from ibtheory.ib import solve, trivial_critical_beta


def _ratio_brute(p_xy: np.ndarray, n: int = 400001) -> float:
    """sup_r D(rW||pW)/D(r||p) for binary X by a dense grid over r = (u, 1 - u)."""
    p = p_xy.sum(1)
    W = p_xy / p[:, None]
    q = p @ W
    u = np.linspace(1e-7, 1 - 1e-7, n)
    R = np.stack([u, 1 - u], axis=1)
    RW = R @ W
    with np.errstate(divide="ignore", invalid="ignore"):
        num = np.where(RW > 0, RW * np.log(RW / q), 0.0).sum(1)
        den = (R * np.log(R / p)).sum(1)
        ratio = np.where(den > 1e-7, num / den, 0.0)
    return float(ratio.max())


#: The binary symmetric source at crossovers from tiny to next to 1/2 (where rho_m = 1 - 2p -> 0 and the old 0/0
#: ratio near r = p broke first: 0.45 gave 0.0100000013 for 0.01).
BSC_CROSSOVERS = [0.0, 1e-300, 1e-12, 1e-6, 1e-3, 0.01, 0.1, 0.3, 0.45, 0.49, 0.499, 0.4999999]


@pytest.mark.parametrize("mirrored", [False, True], ids=["bsc", "mirrored"])
@pytest.mark.parametrize("p", BSC_CROSSOVERS)
def test_binary_symmetric_source_has_s_star_equal_rho_squared(p, mirrored):
    """s* = rho_m^2 = (1 - 2p)^2 for [[1-p, p], [p, 1-p]] / 2 and its mirror [[p, 1-p], [1-p, p]] / 2.

    Tolerance from the method, not from one machine: the supremum is the local limit r -> p, so the result is
    rho_m^2 from an SVD whose second singular value 1 - 2p is exact to a few ulp of the largest one (1), i.e.
    |rho_m^2 - (1 - 2p)^2| <= 2 |1 - 2p| * few eps; rounding 1 - p in the table adds another eps of rho_m.  The
    ratio evaluated near r = p (relative error ~ eps / rho_m from the cancellation in (r - p) W) must not exceed it
    by more.  32 eps |1 - 2p| covers all of these with margin; relative to (1 - 2p)^2 it is 32 eps / |1 - 2p|.
    """
    table = np.array([[1 - p, p], [p, 1 - p]]) / 2
    p_xy = table[:, ::-1] if mirrored else table
    rho = abs(1 - 2 * p)
    atol = 32 * np.finfo(float).eps * rho
    s = A.strong_dpi_constant(p_xy)
    assert_allclose(s, rho**2, rtol=0, atol=atol, err_msg=f"p={p}, mirrored={mirrored}: s* - rho^2 = {s - rho**2:.3g}")
    # the threshold 1/s* inherits the relative error atol / rho^2
    assert_allclose(A.trivial_threshold(p_xy), A.bsc_critical_beta(p), rtol=atol / rho**2)


def test_independent_source_has_s_star_zero():
    assert A.strong_dpi_constant([[0.25, 0.25], [0.25, 0.25]]) == 0.0
    assert A.trivial_threshold([[0.25, 0.25], [0.25, 0.25]]) == np.inf


@pytest.mark.parametrize("seed", range(3))
def test_ratio_near_p_converges_to_its_quadratic_limit(seed):
    """As z = t v -> 0 the ratio D(rW||q)/D(r||p) tends to the Rayleigh quotient sum (dW)^2/q / sum d^2/p with
    d = p (v - p.v) (second-order expansion of both divergences), with an O(t) correction.  Evaluated from the
    differences it stays exact to ~1e-13 relative down to t = 1e-12, where r - p ~ 1e-12 and the direct
    sum r ln(r/p) is pure rounding (|D| ~ 1e-24 against an absolute error ~ 1e-16)."""
    rng = np.random.default_rng(seed)
    p_xy = rng.dirichlet(np.ones(12)).reshape(4, 3)
    p = p_xy.sum(1)
    W = p_xy / p[:, None]
    q = p @ W
    v = rng.standard_normal(4)
    d = p * (v - p @ v)
    limit = np.sum((d @ W) ** 2 / q) / np.sum(d**2 / p)
    assert limit <= 1 / trivial_critical_beta(p_xy) + 1e-12, "the local limit is at most rho_m^2"
    for t in (1e-3, 1e-6, 1e-9, 1e-12):
        ratio, _ = A._dpi_ratio(t * v, p, W, q)
        assert abs(ratio - limit) <= (20 * t + 1e-12) * limit, f"t={t}: {ratio!r} vs limit {limit!r}"


def test_ratio_gradient_matches_finite_differences():
    rng = np.random.default_rng(4)
    p_xy = rng.dirichlet(np.ones(15)).reshape(5, 3)
    p = p_xy.sum(1)
    W = p_xy / p[:, None]
    q = p @ W
    for scale in (1.0, 1e-4):
        z = scale * rng.standard_normal(5)
        _, g = A._dpi_ratio(z, p, W, q)
        h = 1e-6 * scale
        fd = np.array([(A._dpi_ratio(z + h * e, p, W, q)[0] - A._dpi_ratio(z - h * e, p, W, q)[0]) / (2 * h)
                       for e in np.eye(5)])
        assert_allclose(g, fd, rtol=1e-5, atol=1e-8 * np.abs(fd).max(), err_msg=f"z scale {scale}")


@pytest.mark.parametrize(
    "kwargs, match",
    [({"n_random": -1}, "n_random"), ({"n_random": 2.5}, "n_random"), ({"n_random": "3"}, "n_random"),
     ({"seed": -1}, "seed"), ({"seed": 1.5}, "seed"), ({"seed": "a"}, "seed")],
)
def test_strong_dpi_constant_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        A.strong_dpi_constant([[0.45, 0.05], [0.05, 0.45]], **kwargs)


def test_strong_dpi_constant_accepts_numpy_scalars():
    s = A.strong_dpi_constant([[0.45, 0.05], [0.05, 0.45]], n_random=np.int64(2), seed=np.uint8(3))
    assert_allclose(s, 0.64, rtol=1e-14)


@pytest.mark.parametrize("seed", range(4))
def test_binary_input_s_star_matches_brute_force_and_exceeds_rho_squared(seed):
    rng = np.random.default_rng(seed)
    n_y = 2 + seed % 2
    p_xy = rng.dirichlet(np.ones(2 * n_y) * 0.7).reshape(2, n_y)
    s = A.strong_dpi_constant(p_xy)
    assert_allclose(s, _ratio_brute(p_xy), rtol=1e-5, err_msg=f"seed {seed}, p_xy {p_xy.tolist()}")
    assert s >= 1 / trivial_critical_beta(p_xy) - 1e-12


def test_z_channel_threshold_is_below_the_local_one():
    # Z channel with uniform input: s* = log2(4/3) = 0.415 > rho_m^2 = 1/3, so the curve leaves 0 before 1/rho_m^2
    p_xy = np.array([[0.5, 0.0], [0.25, 0.25]])
    assert_allclose(A.strong_dpi_constant(p_xy), np.log2(4 / 3), rtol=1e-6)
    assert A.trivial_threshold(p_xy) < trivial_critical_beta(p_xy) - 0.5


@pytest.mark.parametrize("seed", range(3))
def test_certified_solver_is_trivial_below_the_threshold_and_not_above(seed):
    rng = np.random.default_rng(10 + seed)
    p_xy = rng.dirichlet(np.ones(10) * 0.5).reshape(5, 2)
    b = A.trivial_threshold(p_xy)
    below = solve(p_xy, 0.97 * b)
    above = solve(p_xy, 1.3 * b)
    assert below.I_XT < 1e-6 and below.gap <= 1e-6, f"seed {seed}: I_XT {below.I_XT} at 0.97/s*"
    assert above.lagrangian < -1e-6 and above.gap <= 1e-6, f"seed {seed}: L {above.lagrangian} at 1.3/s*"


def test_gaussian_critical_betas_are_inverse_squared_canonical_correlations():
    rng = np.random.default_rng(3)
    M = rng.standard_normal((5, 5))
    S = M @ M.T + 0.5 * np.eye(5)  # joint covariance of (X in R^3, Y in R^2)
    Sx, Sxy, Sy = S[:3, :3], S[:3, 3:], S[3:, 3:]
    lam = A.gaussian_ib_eigenvalues(Sx, Sxy, Sy)
    Lx, Ly = np.linalg.cholesky(Sx), np.linalg.cholesky(Sy)
    rho = np.linalg.svd(np.linalg.solve(Lx, Sxy) @ np.linalg.inv(Ly).T, compute_uv=False)  # canonical correlations
    betas = A.gaussian_ib_critical_betas(lam)
    assert betas.size == 2  # rank Sxy = 2: the third direction of X carries nothing about Y (lambda = 1)
    assert_allclose(np.sort(betas), np.sort(1 / rho**2), rtol=1e-9)
    ixt, ity = A.gaussian_ib_point(lam, [0.99 * betas[0], 1.01 * betas[0], 1.01 * betas[1], 1e9])
    assert ixt[0] == 0 and ixt[1] > 0 and ity[2] > ity[1]
    assert_allclose(ity[3], -0.5 * np.log2(1 - rho**2).sum(), rtol=1e-6)  # I(X;Y) as beta -> inf


def test_gaussian_critical_betas_reject_bad_eigenvalues():
    with pytest.raises(ValueError, match="lambdas"):
        A.gaussian_ib_critical_betas([0.5, 1.5])
