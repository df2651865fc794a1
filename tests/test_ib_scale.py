"""The IB at scale: the tangent-line certificate, Newton's method, linear-stability splits and the forward path of
``ib_curve`` (checked against brute force, closed forms, the annealed path and the reduced problem)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose

from ibtheory.ib import _forward as fw
from ibtheory.ib import _iterate as it
from ibtheory.ib import curve as curve_module
from ibtheory.ib import ib_curve, reduce, self_consistent_encoder, trivial_critical_beta
from ibtheory.ib._certify_1d import _bound_1d, _gibbs_values
from ibtheory.ib._certify_line import line_bound
from ibtheory.ib._newton import newton
from ibtheory.ib._problem import ib_problem


def random_table(n_x: int, n_y: int = 2, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.dirichlet(np.ones(n_x))[:, None] * rng.dirichlet(0.5 * np.ones(n_y), size=n_x)


def _h2(s):
    s = np.clip(s, 1e-300, 1 - 1e-16)
    return -(s * np.log(s) + (1 - s) * np.log1p(-s))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_line_bound_is_an_upper_bound_and_tight(seed):
    """g_up >= phi(q) - a.q for every Gibbs q of a dense multiplier grid (each is a valid lower bound), and g_up
    lies within 2 targets of the best of them; it agrees with the interval branch and bound of _certify_1d."""
    rng = np.random.default_rng(seed)
    n, beta = 40, 7.0
    W = rng.dirichlet([0.5, 0.5], size=n)
    a = rng.normal(size=n) * 2 - 5.0  # a positive maximum: the bound is refined only while above the target
    target = 2e-8
    g_up, _, _, _, converged, _ = line_bound(a, W[:, 1], beta, np.zeros(0), target)
    lam = np.concatenate([np.linspace(-200, 200, 40001), np.sinh(np.linspace(-30, 30, 2001))])[:, None]
    vals, _ = _gibbs_values(a, W[:, 1:], W, beta, lam)
    assert converged
    assert g_up >= vals.max() - 1e-12, f"bound {g_up} below a Gibbs value {vals.max()}"
    assert g_up <= vals.max() + 2 * target + 1e-12, f"bound {g_up} not tight: best Gibbs value {vals.max()}"
    old = _bound_1d(a, W[:, 1:], W, beta, np.zeros((1, 1)), target, 60, 20000)[0]
    assert abs(old - g_up) <= 2 * target


def test_line_bound_brute_force_on_three_points():
    """With |X| = 3 the maximum of phi(q) - a.q over the simplex is found by brute force on a fine grid.  (The bound
    is refined only while it is above the target, so the plane is shifted to make the maximum positive.)"""
    W = np.array([[0.9, 0.1], [0.5, 0.5], [0.2, 0.8]])
    a = np.array([0.3, -0.2, 0.1]) - 1.5
    beta = 3.0
    g_up = line_bound(a, W[:, 1], beta, np.zeros(0), 1e-10)[0]
    k = 600
    i, j = np.meshgrid(np.arange(k + 1), np.arange(k + 1), indexing="ij")
    keep = i + j <= k
    q = np.stack([i[keep], j[keep], k - i[keep] - j[keep]], axis=1) / k
    with np.errstate(divide="ignore", invalid="ignore"):
        Hq = -np.nansum(np.where(q > 0, q * np.log(q), 0.0), axis=1)
    vals = Hq - beta * _h2(q @ W[:, 1]) - q @ a
    assert g_up >= vals.max() - 1e-12
    assert g_up <= vals.max() + 1e-4  # the grid's resolution


def test_newton_reaches_the_map_fixed_point():
    """Newton's minimiser of F is a fixed point of the IB map (residual of one map step < 1e-10) and its Lagrangian
    equals that of the map iterated to convergence from the same start."""
    prob = ib_problem(random_table(60, seed=3))
    beta = 40.0
    groups = (np.argsort(np.argsort(prob.W[:, 1])) * 12) // prob.n_s  # 12 runs of classes in the order of w
    start = it.from_encoder(prob, np.eye(12)[groups])
    em, _, res = it.fixed_point(prob, beta, start, 1e-13, 200000, obj_tol=0.0, remaining_tol=0.0)
    lp, ld, _, g = newton(prob, beta, start.log_pt, start.log_dec)
    st2, _, res2 = it.fixed_point(prob, beta, it.State(lp, ld), 1e-15, 1)
    assert res2 < 1e-10, f"Newton's point is not a fixed point: residual {res2:.2e}"
    p_em = fw._point(prob, beta, em, 0, res, 1e-12)
    p_nt = fw._point(prob, beta, st2, 0, res2, 1e-12)
    assert p_nt.lagrangian <= p_em.lagrangian + 1e-10


@pytest.mark.parametrize("seed", [0, 4])
def test_one_cluster_correlation_is_the_maximal_correlation(seed):
    """For the trivial solution rho_t^2 is the squared HGR maximal correlation: 1 / trivial_critical_beta."""
    for n_y in (2, 4):
        prob = ib_problem(random_table(30, n_y, seed))
        st = it.from_encoder(prob, np.ones((prob.n_s, 1)))
        rho2, v = fw.cluster_correlations(prob, np.zeros((prob.n_s, 1)), st.log_pt, st.log_dec)
        assert_allclose(rho2[0], 1.0 / trivial_critical_beta(prob), rtol=1e-10)
        assert_allclose(v.sum(axis=1), 0.0, atol=1e-12)


@pytest.mark.parametrize("p", [0.1, 0.3])
def test_first_critical_beta_of_the_binary_symmetric_source(p):
    """The binary symmetric source splits at beta_c = 1 / (1 - 2p)^2 (closed form); the stability condition finds
    it with its stated precision."""
    table = np.array([[0.5 * (1 - p), 0.5 * p], [0.5 * p, 0.5 * (1 - p)]])
    c = ib_curve(table, betas=np.geomspace(1.0, 40.0, 30), method="forward")
    exact = 1.0 / (1.0 - 2 * p) ** 2
    crit = c["critical_betas"].values
    prec = c["critical_precision"].values
    assert crit.size >= 1
    assert abs(crit[0] - exact) <= max(prec[0], 1e-6) * exact + 1e-9, (crit[0], prec[0], exact)
    assert c.attrs["max_gap"] <= 1e-6


def test_forward_path_never_below_the_annealed_path():
    """At the same betas the forward path's Lagrangian is at most the annealed path's + 1e-9 bits, and every point
    is certified to 1e-6 bits."""
    table = random_table(48, seed=5)
    betas = np.geomspace(2.0, 300.0, 40)
    fwd = ib_curve(table, betas=betas, method="forward")
    ann = ib_curve(table, betas=betas, method="anneal", refine_critical=False)
    assert float(fwd.attrs["max_gap"]) <= 1e-6
    diff = fwd["lagrangian"].values - ann["lagrangian"].values
    assert diff.max() <= 1e-9, f"forward above anneal by {diff.max():.2e} bits at beta {betas[np.argmax(diff)]:.4g}"


def test_large_table_equals_its_reduced_problem():
    """300 rows made of 60 distinct rows (each split into 5 copies of random weight): the forward curve equals the
    curve of the 60-row table at the same betas (the sufficient-statistic reduction is exact)."""
    rng = np.random.default_rng(7)
    base = random_table(60, seed=7)
    w = rng.dirichlet(np.ones(5), size=60)
    big = (base[:, None, :] * w[:, :, None]).reshape(300, 2)
    betas = np.geomspace(2.0, 200.0, 25)
    c_big = ib_curve(big, betas=betas, method="forward")
    c_small = ib_curve(base, betas=betas, method="forward")
    assert reduce(big).n_s == 60
    assert_allclose(c_big["I_XT"].values, c_small["I_XT"].values, atol=1e-7)
    assert_allclose(c_big["I_TY"].values, c_small["I_TY"].values, atol=1e-7)


def test_encoder_left_out_above_the_limit_and_recomputable(monkeypatch):
    table = random_table(40, seed=8)
    betas = np.geomspace(2.0, 50.0, 6)
    full = ib_curve(table, betas=betas, method="forward")
    assert full.attrs["encoder_stored"] == 1
    monkeypatch.setattr(curve_module, "MAX_ENCODER_CELLS", 10)
    slim = ib_curve(table, betas=betas, method="forward")
    assert "encoder" not in slim and slim.attrs["encoder_stored"] == 0 and "encoder_note" in slim.attrs
    p_x = table.sum(axis=1)
    for i, b in enumerate(betas):
        occ = slim["p_t"].values[i] > 0
        enc = self_consistent_encoder(p_x, table / p_x[:, None], slim["decoder"].values[i][occ],
                                      slim["p_t"].values[i][occ], b)
        assert_allclose(enc, full["encoder"].values[i][:, occ], atol=1e-9)


def test_method_and_size_are_checked():
    with pytest.raises(ValueError, match="method"):
        ib_curve(random_table(4), n_betas=4, method="fast")
    with pytest.raises(ValueError, match="certifies"):
        ib_curve(random_table(8, 3), n_betas=4, method="forward", certify=True)
    with pytest.raises(ValueError, match="GiB"):
        ib_curve(random_table(300_000, seed=1), betas=[1e12], method="forward")


@st.composite
def awkward_tables(draw):
    """Small |Y| = 2 tables with zero cells, hard rows, duplicated rows, near-duplicates (1e-9 apart) and p(x) = 0."""
    n = draw(st.integers(2, 7))
    rows = []
    for _ in range(n):
        kind = draw(st.sampled_from(["soft", "hard", "dup", "near", "zero"]))
        if kind == "hard" or (kind in ("dup", "near") and not rows):
            rows.append([1.0, 0.0] if draw(st.booleans()) else [0.0, 1.0])
        elif kind == "soft":
            w = draw(st.floats(0.01, 0.99))
            rows.append([1 - w, w])
        elif kind == "dup":
            rows.append(list(rows[draw(st.integers(0, len(rows) - 1))]))
        elif kind == "near":
            r = rows[draw(st.integers(0, len(rows) - 1))]
            e = 1e-9 if r[1] < 0.5 else -1e-9
            rows.append([r[0] - e, r[1] + e])
        else:
            rows.append([0.0, 0.0])
    W = np.array(rows)
    px = np.array([draw(st.floats(0.05, 1.0)) for _ in range(n)]) * (W.sum(axis=1) > 0)
    if px.sum() == 0:
        px[0], W[0] = 1.0, [0.3, 0.7]
    p = px[:, None] * np.where(W.sum(axis=1, keepdims=True) > 0, W, 0.0)
    return p / p.sum()


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(awkward_tables())
def test_forward_path_on_awkward_tables(p):
    """Certified to 1e-6 bits, within the data-processing bounds, and never above the annealed path's Lagrangian."""
    prob = reduce(p)
    if np.count_nonzero(prob.p_y > 0) < 2:
        return
    betas = np.geomspace(0.5, 200.0, 12)
    fwd = ib_curve(p, betas=betas, method="forward")
    ann = ib_curve(p, betas=betas, method="anneal", refine_critical=False)
    assert np.all(fwd["I_TY"].values <= fwd.attrs["I_XY"] + 1e-9)
    assert np.all(fwd["I_TY"].values <= fwd["I_XT"].values + 1e-9)
    if not prob.deterministic:
        assert float(fwd.attrs["max_gap"]) <= 1e-6
    assert np.max(fwd["lagrangian"].values - ann["lagrangian"].values) <= 1e-9


@pytest.mark.parametrize("method", ["anneal", "forward"])
def test_no_runtime_warning_on_random_tables(method):
    """Random tables used to raise 'invalid value encountered in divide' (an empty cluster's p(y|t) = 0 / 0)."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ib_curve(random_table(64, seed=11), n_betas=24, method=method)
