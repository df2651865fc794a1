"""|Y| = 2 bands of clusters (``ibtheory.ib._band``): every pair within the cut, checked against the dense
log-weights by brute force on awkward rows (zeros, hard rows, duplicates, dead clusters); ln Z over the bands
against scipy; and a forward curve computed on bands against the same curve on dense arrays."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose
from scipy.special import logsumexp

from ibtheory.ib import _band as bd
from ibtheory.ib import _certify_1d as c1d
from ibtheory.ib import _forward as fw
from ibtheory.ib import ib_curve, trivial_critical_beta
from ibtheory.ib._problem import ib_problem


def _rows(w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    W = np.stack([1 - w, w], axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        neg_h = np.where(W > 0, W * np.log(W), 0.0).sum(axis=1)
    return W, neg_h


def _dense_weights(w, neg_h, log_pt, log_d1, log_d0, beta):
    """ln p(t) - beta KL[w_x || d_t] for every pair, written out cell by cell."""
    W, _ = _rows(w)
    D = np.stack([np.exp(log_d0), np.exp(log_d1)], axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        kl = np.where(W[:, None, :] > 0, W[:, None, :] * (np.log(W[:, None, :]) - np.log(D[None, :, :])), 0.0)
    return log_pt[None, :] - beta * kl.sum(axis=2)


@st.composite
def band_cases(draw):
    n = draw(st.integers(1, 60))
    K = draw(st.integers(1, 25))
    seed = draw(st.integers(0, 2**31 - 1))
    rng = np.random.default_rng(seed)
    w = rng.random(n)
    kind = draw(st.sampled_from(["plain", "hard", "duplicates", "near"]))
    if kind == "hard":
        w[rng.random(n) < 0.3] = 0.0
        w[rng.random(n) < 0.3] = 1.0
    elif kind == "duplicates":
        w = np.repeat(w[: max(1, n // 3)], 3)[:n]
    elif kind == "near":
        w = 0.5 + 1e-12 * rng.standard_normal(n)
    d = np.clip(rng.random(K) ** draw(st.sampled_from([1.0, 3.0])), 1e-12, 1 - 1e-12)
    ends = draw(st.sampled_from(["none", "zero", "one", "ties"]))
    if ends == "zero":
        d[0] = 0.0  # KL = +inf for every row with w > 0
    elif ends == "one":
        d[-1] = 1.0
    elif ends == "ties":
        d[: K // 2] = d[0]
    log_pt = 4 * rng.standard_normal(K)
    log_pt[rng.random(K) < 0.15] = -np.inf
    if not np.isfinite(log_pt).any():
        log_pt[0] = 0.0
    beta = float(10 ** draw(st.floats(-1, 4.5)))
    return w, d, log_pt, beta, draw(st.sampled_from([5.0, 30.0, 80.0]))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(band_cases())
def test_band_holds_every_pair_within_the_cut(case):
    w, d, log_pt, beta, cut = case
    _, neg_h = _rows(w)
    with np.errstate(divide="ignore"):
        log_d1, log_d0 = np.log(d), np.log1p(-d)
    b = bd.band(w, neg_h, beta, log_pt, log_d1, log_d0, cut)
    U = _dense_weights(w, neg_h, log_pt, log_d1, log_d0, beta)
    top = U.max(axis=1, keepdims=True)
    need = (U >= top - cut) & np.isfinite(U)
    rows, cols = b.pairs()
    have = np.zeros_like(need)
    have[rows, cols] = True
    assert not np.any(need & ~have), "a pair within the cut is outside its row's band"
    assert np.all(np.isfinite(log_pt[cols])), "a dead cluster is in a band"
    assert b.contains(*np.nonzero(need))
    # each band is a run of consecutive clusters in the order of p(y=1|t)
    assert np.all(np.diff(d[b.order]) >= 0)


def test_band_is_narrow_at_large_beta_and_contains_rejects_outsiders():
    """At large beta each row sees the few clusters next to it (the point of the bands), and ``contains`` says
    no to a pair outside."""
    rng = np.random.default_rng(0)
    w = np.sort(rng.random(2000))
    d = np.linspace(0.01, 0.99, 100)
    _, neg_h = _rows(w)
    log_pt = np.full(100, -np.log(100))
    b = bd.band(w, neg_h, 1e4, log_pt, np.log(d), np.log1p(-d), 30.0)
    U = _dense_weights(w, neg_h, log_pt, np.log(d), np.log1p(-d), 1e4)
    widest = int((U >= U.max(axis=1, keepdims=True) - 30.0).sum(axis=1).max())  # 8: +-0.039 around w = 1/2
    assert b.width <= widest + 2 <= 10
    far = np.argmax(np.abs(d[None, :] - w[:, None]), axis=1)
    assert not b.contains(np.arange(w.size), far)


@pytest.mark.parametrize("wide", [10**9, 0])
def test_band_log_partition_against_scipy(monkeypatch, wide):
    """ln Z(x) over the bands is below the full sum by at most ln(1 + K e^-cut), summed as windows and as pairs."""
    monkeypatch.setattr(bd, "_WIDE", wide)
    rng = np.random.default_rng(3)
    table = rng.dirichlet(np.ones(500))[:, None] * rng.dirichlet([0.5, 0.5], size=500)
    prob = ib_problem(table)
    K = 40
    d = np.sort(rng.random(K))
    log_pt = np.log(rng.dirichlet(np.ones(K)))
    log_dec = np.log(np.stack([1 - d, d], axis=1))
    for beta, cut in [(3.0, 20.0), (300.0, 20.0), (3e4, 60.0)]:
        U = _dense_weights(prob.W[:, 1], prob.neg_entropy_rows, log_pt, log_dec[:, 1], log_dec[:, 0], beta)
        full = logsumexp(U, axis=1)
        got = bd.band_log_partition(prob, beta, log_pt, log_dec, cut)
        rounding = 1e-14 * beta + 1e-12  # beta KL from two formulas (cross entropy minus entropy, and cell by cell)
        assert np.all(got <= full + rounding)
        assert np.all(full - got <= np.log1p(K * np.exp(-cut)) + rounding)


def test_bad_band_input_is_refused():
    with pytest.raises(ValueError, match="log_pt"):
        bd.band(np.array([0.3]), np.array([-0.6]), 1.0, np.array([-np.inf]), np.array([-1.0]),
                np.array([-0.5]), 30.0)


def test_forward_curve_on_bands_equals_the_dense_one(monkeypatch):
    """The forward path with its maps, encoders, Newton windows and tangent planes on bands (BAND_CELLS =
    WINDOW_CELLS = 0) gives the dense path's curve: Lagrangians within 1e-9 bits, every gap certified below 1e-6
    bits, and it really ran on bands narrower than the clusters."""
    from ibtheory.ib import _newton as nw

    rng = np.random.default_rng(5)
    table = rng.dirichlet(np.ones(300))[:, None] * rng.dirichlet([0.5, 0.5], size=300)
    b0 = trivial_critical_beta(table)
    betas = np.geomspace(1.1 * b0, 3000 * b0, 30)
    monkeypatch.setattr(fw, "BAND_CELLS", 10**12)
    monkeypatch.setattr(c1d, "BAND_CELLS", 10**12)
    monkeypatch.setattr(nw, "WINDOW_CELLS", 10**12)
    dense = ib_curve(table, betas=betas, method="forward")
    monkeypatch.setattr(fw, "BAND_CELLS", 0)
    monkeypatch.setattr(c1d, "BAND_CELLS", 0)
    monkeypatch.setattr(nw, "WINDOW_CELLS", 0)
    used = {"maps": [], "newton": []}
    real = bd.band

    def spy(kind):
        def f(*args):
            out = real(*args)
            used[kind].append((out.width, out.order.size))
            return out
        return f

    monkeypatch.setattr(bd, "band", spy("maps"))
    monkeypatch.setattr(nw, "band", spy("newton"))
    banded = ib_curve(table, betas=betas, method="forward")
    for kind, seen in used.items():
        assert seen and any(width < live for width, live in seen), f"{kind}: never narrower than the clusters"
    assert_allclose(banded["lagrangian"].values, dense["lagrangian"].values, rtol=0, atol=1e-9)
    assert banded.attrs["max_gap"] <= 1e-6 and dense.attrs["max_gap"] <= 1e-6


def test_newton_on_windows_leaves_dead_clusters_out(monkeypatch):
    """A cluster without mass (ln p(t) = -inf, a 0/0 decoder) among live ones: Newton on windows drops it and
    reaches the point it reaches without it (objective to 1e-12 nats)."""
    from ibtheory.ib import _iterate as it
    from ibtheory.ib import _newton as nw

    prob = ib_problem(np.random.default_rng(2).dirichlet(np.ones(400))[:, None]
                      * np.random.default_rng(3).dirichlet([0.5, 0.5], size=400))
    groups = (np.argsort(np.argsort(prob.W[:, 1])) * 40) // prob.n_s
    start = it.from_encoder(prob, np.eye(40)[groups])
    monkeypatch.setattr(nw, "WINDOW_CELLS", 0)
    lp, ld, _, g = nw.newton(prob, 3000.0, start.log_pt, start.log_dec)
    dead_pt = np.concatenate([start.log_pt, [-np.inf]])
    dead_dec = np.concatenate([start.log_dec, [[np.nan, np.nan]]])
    lp2, ld2, _, g2 = nw.newton(prob, 3000.0, dead_pt, dead_dec)
    assert lp2.size == lp.size == 40 and np.all(np.isfinite(lp2)) and g2 < 1e-8
    F = lambda a, b: nw._parts(prob.W[:, 1], prob.p_s, prob.neg_entropy_rows, 3000.0, a,  # noqa: E731
                               b[:, 1] - b[:, 0])[4]
    assert abs(F(lp2, ld2) - F(lp, ld)) <= 1e-12


def test_a_stopped_certificate_is_settled_to_its_end():
    """A point with a cluster missing: its certificate stops early (not converged, a loose bound); ``_settle``
    refines it to the end: converged, a bound no larger, still above the Gibbs witness."""

    rng = np.random.default_rng(1)
    table = rng.dirichlet(np.ones(200))[:, None] * rng.dirichlet([0.5, 0.5], size=200)
    prob = ib_problem(table)
    beta = 40 * trivial_critical_beta(table)
    good = ib_curve(table, betas=[beta], method="forward")
    p_t, dec = good["p_t"].values[0], good["decoder"].values[0]
    keep = np.isfinite(p_t) & (p_t > 0)
    p_t, dec = p_t[keep], dec[keep]
    drop = int(np.argmax(p_t))  # the heaviest cluster merged into its neighbour: far from optimal
    others = np.delete(np.arange(p_t.size), drop)
    st = fw.it.State(np.log(p_t[others] / p_t[others].sum()), np.log(dec[others]))
    point, _ = fw._solve(prob, beta, st, 1e-12, 500)
    stopped = fw._certify(prob, point, None, 2e-7)
    assert not stopped.converged and stopped.gap > 2e-7
    settled = fw._settle(prob, point, stopped, 2e-7)
    assert settled.converged and settled.gap <= stopped.gap + 1e-12
    assert settled.gap * np.log(2) >= settled.g_lower - 1e-12
    assert fw._stop(2e-7) == fw.REPAIR_AT and fw._stop(1e-3) == 2e-3 * np.log(2)
