"""Newton's method for |Y| > 2 (ibtheory.ib._newton_multi): its derivatives against finite differences, its optimum
against the |Y| = 2 Newton and the map's own fixed point, and where it declines."""

from __future__ import annotations

import numpy as np
import pytest

from ibtheory.ib import _iterate as it
from ibtheory.ib import _newton_multi as nm
from ibtheory.ib._newton import newton
from ibtheory.ib._problem import ib_problem


def _table(n, n_y, seed):
    rng = np.random.default_rng(seed)
    return rng.dirichlet(np.ones(n))[:, None] * rng.dirichlet(0.5 * np.ones(n_y), size=n)


def _start(prob, K, seed, steps=15, beta=20.0):
    rng = np.random.default_rng(seed)
    st = it.from_encoder(prob, rng.dirichlet(np.ones(K), size=prob.n_s))
    return it.fixed_point(prob, beta, st, 1e-13, steps)[0]


def _coords(log_pt, log_dec):
    K, n_y = log_dec.shape
    ref = np.argmax(log_dec, axis=1)
    free = np.arange(n_y)[None, :] != ref[:, None]
    lab = np.nonzero(free)[1].reshape(K, n_y - 1)
    return log_pt - it.lse(log_pt, axis=0), log_dec - log_dec[np.arange(K), ref][:, None], free, lab


def _theta(rho, eta, lab):
    return np.concatenate([rho[:, None], np.take_along_axis(eta, lab, axis=1)], axis=1).ravel()


def _unpack(theta, eta0, free):
    K, n_y = eta0.shape
    x = theta.reshape(K, n_y)
    eta = eta0.copy()
    eta[free] = x[:, 1:].ravel()
    return x[:, 0], eta


@pytest.mark.parametrize("n_y", [3, 5])
def test_gradient_and_hessian_match_finite_differences(n_y):
    prob = ib_problem(_table(40, n_y, n_y))
    beta = 6.0
    st = _start(prob, 5, 1, beta=beta)
    rho, eta, free, lab = _coords(st.log_pt, st.log_dec)
    sup = it.support(prob, beta, rho, nm._decoders(eta), 1e3)  # every pair
    theta0 = _theta(rho, eta, lab)

    def F(theta):
        return nm._parts(prob, beta, *_unpack(theta, eta, free), sup)[-1]

    def grad(theta):
        return nm._gradient(nm._parts(prob, beta, *_unpack(theta, eta, free), sup), beta, lab)

    parts = nm._parts(prob, beta, rho, eta, sup)
    g, H = nm._gradient(parts, beta, lab), nm._hessian(prob, beta, parts, lab, sup)
    h = 1e-6
    E = np.eye(theta0.size)
    g_fd = np.array([(F(theta0 + h * e) - F(theta0 - h * e)) / (2 * h) for e in E])
    H_fd = np.array([(grad(theta0 + h * e) - grad(theta0 - h * e)) / (2 * h) for e in E])
    assert np.max(np.abs(g - g_fd)) < 1e-7
    assert np.max(np.abs(H - H_fd)) < 1e-5 * max(1.0, np.abs(H).max())
    assert np.allclose(H, H.T, atol=1e-12)


def test_two_labels_agree_with_the_binary_newton():
    """With |Y| = 2 the parametrisation is the binary one's up to the reference label: the same optimum."""
    prob = ib_problem(_table(400, 2, 3))
    beta = 40.0
    st = _start(prob, 4, 4, beta=beta)
    lp_b, ld_b, _, g_b = newton(prob, beta, st.log_pt, st.log_dec)
    lp_m, ld_m, _, g_m = nm.newton_multi(prob, beta, st.log_pt, st.log_dec)
    assert g_b < 1e-8 and g_m < 1e-8
    J_b = it.step(prob, beta, lp_b, ld_b, prob.neg_entropy_rows, np.log(prob.p_s))[3]
    J_m = it.step(prob, beta, lp_m, ld_m, prob.neg_entropy_rows, np.log(prob.p_s))[3]
    assert abs(J_b - J_m) < 1e-12
    order_b, order_m = np.argsort(ld_b[:, 1]), np.argsort(ld_m[:, 1])
    assert np.allclose(np.exp(lp_b[order_b]), np.exp(lp_m[order_m]), atol=1e-8)


@pytest.mark.parametrize("n_y, beta", [(4, 15.0), (6, 60.0)])
def test_newton_reaches_the_map_fixed_point(n_y, beta):
    """From 15 map evaluations Newton lands on a fixed point of the map, with J no higher than 20,000 further
    SQUAREM-accelerated map evaluations reach."""
    prob = ib_problem(_table(500, n_y, 7))
    st = _start(prob, 10, 8, beta=beta)
    lp, ld, evals, g = nm.newton_multi(prob, beta, st.log_pt, st.log_dec)
    assert g < 1e-8 and evals < 100
    pt1, dec1, _, J = it.step(prob, beta, lp, ld, prob.neg_entropy_rows, np.log(prob.p_s))
    assert it.distance(pt1, dec1, lp, ld) < 1e-8
    long, _, _ = it.fixed_point(prob, beta, st, 1e-14, 20000)
    assert J <= long.J + 1e-12


def test_newton_declines_what_it_cannot_take():
    prob = ib_problem(_table(50, 4, 9))
    st = _start(prob, 6, 10)
    dec = st.log_dec.copy()
    dec[0, 1] = -np.inf
    assert nm.newton_multi(prob, 20.0, st.log_pt, dec) is None  # a decoder with a zero
    pt = st.log_pt.copy()
    pt[2] = -np.inf
    assert nm.newton_multi(prob, 20.0, pt, st.log_dec) is None  # a cluster without mass
    big = _start(prob, 50, 11)
    assert big.log_pt.size == 50  # (50 x 4)^3 > NEWTON_WORK x 50 classes x 50 clusters
    assert nm.newton_multi(prob, 20.0, big.log_pt, big.log_dec) is None
    # a repair takes it (up to REPAIR_DIM coordinates, whatever the maps cost): stationary, with J no higher than
    # 20,000 SQUAREM-accelerated map evaluations from the same start reach
    lp, ld, _, g = nm.newton_multi(prob, 20.0, big.log_pt, big.log_dec, repair=True)
    assert g <= 1e-9
    J = it.step(prob, 20.0, lp, ld, prob.neg_entropy_rows, np.log(prob.p_s))[3]
    assert J <= it.fixed_point(prob, 20.0, big, 1e-14, 20000)[0].J + 1e-12
    assert not nm.applies(prob, nm.REPAIR_DIM // prob.n_y + 1, repair=True)


def test_dense_hessian_sums_equal_the_compiled_ones(monkeypatch):
    """The BLAS sums on dense rows (used when rows see many clusters) against the compiled per-row sums."""
    from ibtheory.ib._kernels import pair_hessian

    prob = ib_problem(_table(3000, 5, 12))
    beta = 12.0
    st = _start(prob, 9, 13, beta=beta)
    rho, eta, _, lab = _coords(st.log_pt, st.log_dec)
    sup = it.support(prob, beta, rho, nm._decoders(eta), 50.0)
    _, log_d, L, m, num, _ = nm._parts(prob, beta, rho, eta, sup)
    compiled = pair_hessian(prob.W, prob.p_s, beta, log_d, lab, sup.indptr, sup.cols, L, tiny=0.0)
    monkeypatch.setattr(nm, "_BLOCK_CELLS", 45 * 400)  # several blocks of rows
    dense = nm._dense_pair_part(prob, beta, log_d, lab, sup, L, m, num)
    assert np.max(np.abs(dense - compiled)) < 1e-13 * np.abs(compiled).max()


@pytest.mark.parametrize("n_y", [2, 3])
def test_one_cluster_is_solved_in_closed_form(n_y):
    """Two copies of one cluster that merge back (below its critical beta): the second local solve has one cluster,
    which has no curvature in its weight (Newton declines it; before, a Jacobi scale of 1e150 overflowed), so the
    point is the closed form p(y|t) = p(y), I(X;T) = 0."""
    from ibtheory.ib import _forward as fw

    prob = ib_problem(_table(50, n_y, 6))
    one = it.from_encoder(prob, np.ones((prob.n_s, 1)))
    beta = 0.99 / fw.cluster_correlations(prob, one.log_enc, one.log_pt, one.log_dec)[0][0]
    assert nm.newton_multi(prob, beta, one.log_pt, one.log_dec) is None
    st = it.fixed_point(prob, beta, one, 1e-13, 5)[0]
    rho2, v = fw.cluster_correlations(prob, st.log_enc, st.log_pt, st.log_dec)
    p, _ = fw._solve(prob, beta, fw._split(st, np.array([0]), v), 1e-12, 500)
    assert p.n_t == 1 and abs(p.I_XT) < 1e-12
    assert np.allclose(p.decoder[0], prob.p_y, atol=1e-12)


def test_split_moves_a_cluster_with_a_vanishing_label():
    """A decoder with one label at 1e-92: the split's room counts only the labels its direction moves, so the two
    copies differ by ~eps of the distance to the simplex's boundary along them (not 1e-93), and stay positive."""
    from ibtheory.ib import _forward as fw

    d = np.array([[0.5, 0.3, 0.2 - 1e-92, 1e-92]])
    v = np.array([[0.2, -0.1, -0.1, 1e-47]])
    st = it.State(np.zeros(1), np.log(d))
    out = fw._split(st, np.array([0]), v)
    dec = np.exp(out.log_dec)
    assert dec.shape == (2, 4) and np.all(dec > 0) and np.allclose(dec.sum(axis=1), 1.0)
    assert np.max(np.abs(dec[0] - dec[1])) > 0.01
    assert np.allclose(np.exp(out.log_pt), [0.5, 0.5])
