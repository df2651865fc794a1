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
from ibtheory.ib import _certify_batch as cb
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
    b = bd.band(w, neg_h, beta, log_pt, np.log(d), np.log1p(-d), cut)
    U = _dense_weights(w, neg_h, log_pt, np.log(d), np.log1p(-d), beta)
    need = U >= U.max(axis=1, keepdims=True) - cut
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


def test_band_log_partition_against_scipy():
    """ln Z(x) over the bands is below the full sum by at most ln(1 + K e^-cut)."""
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
    """The forward path with its maps, encoders and tangent planes on bands (BAND_CELLS = 0) gives the dense
    path's curve: Lagrangians within 1e-9 bits, every gap certified below 1e-6 bits, and it really ran on bands."""
    rng = np.random.default_rng(5)
    table = rng.dirichlet(np.ones(300))[:, None] * rng.dirichlet([0.5, 0.5], size=300)
    b0 = trivial_critical_beta(table)
    betas = np.geomspace(1.1 * b0, 3000 * b0, 30)
    monkeypatch.setattr(fw, "BAND_CELLS", 10**12)
    monkeypatch.setattr(cb, "BAND_CELLS", 10**12)
    dense = ib_curve(table, betas=betas, method="forward")
    monkeypatch.setattr(fw, "BAND_CELLS", 0)
    monkeypatch.setattr(cb, "BAND_CELLS", 0)
    used = []
    real = bd.band

    def spy(*args):
        out = real(*args)
        used.append(out.width)
        return out

    monkeypatch.setattr(bd, "band", spy)
    banded = ib_curve(table, betas=betas, method="forward")
    assert used and min(used) < 300
    assert_allclose(banded["lagrangian"].values, dense["lagrangian"].values, rtol=0, atol=1e-9)
    assert banded.attrs["max_gap"] <= 1e-6 and dense.attrs["max_gap"] <= 1e-6
