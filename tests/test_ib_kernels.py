"""The compiled loops of the |Y| = 2 solver (``ibtheory.ib._kernels``) against the same quantities written out with
numpy on dense (rows x clusters) arrays, on awkward rows (hard rows at w in {0, 1}, clusters at d in {0, 1}, windows
with invalid slots); and Newton's end game, which must not stall on the rounding noise of its objective."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose
from scipy.special import logsumexp

from ibtheory.ib import _iterate as it
from ibtheory.ib import _kernels as kn
from ibtheory.ib import _newton as nw
from ibtheory.ib._problem import ib_problem


def _dense_u(w, neg_h, beta, log_r, log_d1, log_d0):
    """ln r_t - beta KL[w_x || d_t] for every pair, term by term (0 ln 0 = 0)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        a = np.where(w[:, None] == 0, 0.0, w[:, None] * log_d1[None, :])
        b = np.where(w[:, None] == 1, 0.0, (1 - w)[:, None] * log_d0[None, :])
    return log_r[None, :] - beta * np.maximum(neg_h[:, None] - a - b, 0.0)


@st.composite
def window_cases(draw):
    n = draw(st.integers(1, 40))
    K = draw(st.integers(1, 12))
    B = draw(st.integers(1, K))
    seed = draw(st.integers(0, 2**31))
    rng = np.random.default_rng(seed)
    w = rng.choice(np.r_[0.0, 1.0, rng.uniform(size=8)], size=n)  # hard rows among soft ones
    d = rng.choice(np.r_[0.0, 1.0, rng.uniform(0.01, 0.99, size=8)], size=K)  # clusters at the simplex corners
    with np.errstate(divide="ignore", invalid="ignore"):
        log_d1, log_d0 = np.log(d), np.log1p(-d)
        neg_h = np.where(w > 0, w * np.log(w), 0.0) + np.where(w < 1, (1 - w) * np.log1p(-w), 0.0)
    log_r = np.log(rng.dirichlet(np.ones(K)))
    idx = np.stack([rng.permutation(K)[:B] for _ in range(n)])
    valid = rng.uniform(size=(n, B)) < 0.8
    valid[:, 0] = True
    beta = float(draw(st.sampled_from([0.5, 3.0, 40.0, 3000.0])))
    return w, rng.dirichlet(np.ones(n)), neg_h, beta, log_r, log_d1, log_d0, idx, valid


@settings(max_examples=150, deadline=None)
@given(window_cases())
def test_window_parts_equal_dense_posteriors(case):
    """pi and ln Z on the windows equal the dense posteriors restricted to each row's valid window slots."""
    w, p, neg_h, beta, log_r, log_d1, log_d0, idx, valid = case
    pi, lnZ, F = kn.window_parts(w, p, neg_h, beta, log_r, log_d1, log_d0, idx, valid)
    u = np.take_along_axis(_dense_u(w, neg_h, beta, log_r, log_d1, log_d0), idx, axis=1)
    u = np.where(valid, u, -np.inf)
    ref_lnZ = logsumexp(u, axis=1)
    finite = np.isfinite(ref_lnZ)
    assert_allclose(lnZ[finite], ref_lnZ[finite], rtol=1e-13, atol=1e-12)
    assert np.all(lnZ[~finite] == -np.inf)
    with np.errstate(invalid="ignore"):
        ref_pi = np.exp(u - ref_lnZ[:, None])
    assert_allclose(pi[finite], ref_pi[finite], rtol=1e-12, atol=1e-300)
    assert np.all(pi[finite][~valid[finite]] == 0)
    if finite.all():
        assert F == -float(p @ ref_lnZ) or abs(F + float(p @ ref_lnZ)) <= 1e-12 * max(1.0, abs(F))


@settings(max_examples=100, deadline=None)
@given(window_cases())
def test_window_moments_equal_bincount_sums(case):
    """m_t = sum p pi, sum p pi (w - d_t), sum p pi (w - d_t)^2 and beta pi (w - d_t) equal numpy's bincounts."""
    w, p, neg_h, beta, log_r, log_d1, log_d0, idx, valid = case
    pi, _, _ = kn.window_parts(w, p, neg_h, beta, log_r, log_d1, log_d0, idx, valid)
    pi = np.nan_to_num(pi)
    d = np.exp(log_d1)
    K = d.size
    bv, m, s1, s2 = kn.window_moments(pi, idx, valid, w, p, d, beta, K)
    q = np.where(valid, pi, 0.0)
    dw = w[:, None] - d[idx]
    sums = [np.bincount(idx.ravel(), weights=(p[:, None] * q * dw**k).ravel(), minlength=K) for k in range(3)]
    for got, ref in zip((m, s1, s2), sums, strict=True):
        assert_allclose(got, ref, rtol=1e-12, atol=1e-15)
    assert_allclose(bv, beta * q * dw, rtol=1e-14, atol=0)


def test_newton_end_game_does_not_stall_on_rounding(monkeypatch):
    """From starts 1e-12 apart Newton on windows reaches the same minimum with |gradient| <= 1e-10: when a convex
    step's predicted decrease is below F's rounding, the step is taken (before, 3 of 12 such starts stopped at
    |gradient| ~ 2e-7, the line search halving steps on noise)."""
    prob = ib_problem(np.random.default_rng(2).dirichlet(np.ones(400))[:, None]
                      * np.random.default_rng(3).dirichlet([0.5, 0.5], size=400))
    groups = (np.argsort(np.argsort(prob.W[:, 1])) * 40) // prob.n_s
    start = it.from_encoder(prob, np.eye(40)[groups])
    rng = np.random.default_rng(0)
    monkeypatch.setattr(nw, "WINDOW_CELLS", 0)
    Fs = []
    for k in range(12):
        lp, ld, _, g = nw.newton(prob, 3000.0, start.log_pt + (rng.normal(size=40) * 1e-12 if k else 0.0),
                                 start.log_dec)
        assert g <= 1e-10, (k, g)
        Fs.append(nw._parts(prob.W[:, 1], prob.p_s, prob.neg_entropy_rows, 3000.0, lp, ld[:, 1] - ld[:, 0])[4])
    assert np.ptp(Fs) <= 1e-12
