"""The compiled loops of the |Y| = 2 solver and the |Y| = 3 certificate (``ibtheory.ib._kernels``) against the same
quantities written out with numpy (or scipy) on dense (rows x clusters) arrays, on awkward rows (hard rows at w in
{0, 1}, clusters at d in {0, 1}, windows with invalid slots); and Newton's end game, which must not stall on the
rounding noise of its objective."""

from __future__ import annotations

import numpy as np
import pytest
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


def _interleaved_gram(pi, bv, p, idx, valid, pos, tiny=1e-14):
    """sum_x p(x) g_x g_x^T formed densely, g_x with cluster t's pi entry at 2 pos[t] and its beta pi (w - d) entry
    at 2 pos[t] + 1, over the valid slots with pi > tiny."""
    n, B = idx.shape
    K = pos.size
    q = np.where(valid & (pi > tiny), pi, 0.0)
    G = np.zeros((n, 2 * K))
    rows = np.repeat(np.arange(n), B)
    np.add.at(G, (rows, 2 * pos[idx.ravel()]), q.ravel())
    np.add.at(G, (rows, 2 * pos[idx.ravel()] + 1), np.where(q > 0, bv, 0.0).ravel())
    return (G * p[:, None]).T @ G


@settings(max_examples=100, deadline=None)
@given(window_cases(), st.integers(0, 2**31))
def test_window_newton_sums_equal_numpy(case, seed):
    """m_t = sum p pi, sum p pi (w - d_t), sum p pi (w - d_t)^2 equal numpy's bincounts, and the Gram sums (band
    storage covering the whole matrix: these windows are in no order) the dense product, coordinates in a random
    order of the clusters."""
    w, p, neg_h, beta, log_r, log_d1, log_d0, idx, valid = case
    pi, _, _ = kn.window_parts(w, p, neg_h, beta, log_r, log_d1, log_d0, idx, valid)
    pi = np.nan_to_num(pi)
    d = np.exp(log_d1)
    K = d.size
    pos = np.random.default_rng(seed).permutation(K)
    ab, m, s1, s2 = kn.window_newton(pi, idx, valid, w, p, d, beta, pos, u=2 * K - 1)
    q = np.where(valid, pi, 0.0)
    dw = w[:, None] - d[idx]
    sums = [np.bincount(idx.ravel(), weights=(p[:, None] * q * dw**k).ravel(), minlength=K) for k in range(3)]
    for got, ref in zip((m, s1, s2), sums, strict=True):
        assert_allclose(got, ref, rtol=1e-12, atol=1e-15)
    ref = _interleaved_gram(pi, beta * pi * dw, p, idx, valid, pos)
    assert_allclose(nw._band_dense(ab), ref, rtol=0, atol=1e-13 * max(np.abs(ref).max(), 1e-300))


def test_window_newton_refuses_a_cluster_twice_in_a_row():
    """A row whose live slots name one cluster twice is an error (its two entries would land on other entries)."""
    w, p, beta = np.array([0.5]), np.array([1.0]), 1.0
    d = np.array([0.2, 0.5, 0.8])
    idx, valid, pi = np.array([[1, 1]]), np.ones((1, 2), dtype=bool), np.array([[0.5, 0.5]])
    with pytest.raises(ValueError, match="twice"):
        kn.window_newton(pi, idx, valid, w, p, d, beta, np.arange(3), u=5)


def test_a_call_abandoned_while_waiting_does_not_shift_the_next():
    """A caller interrupted while it waits for the worker's half (Ctrl-C in a notebook) leaves that half running;
    the next call still returns only once its own half has run (before, it counted the abandoned one's)."""
    import threading
    import time

    worker = kn._Worker()
    ran, release = [], threading.Event()
    real_wait = worker._wait

    def interrupted(target):
        raise KeyboardInterrupt

    worker._wait = interrupted
    with pytest.raises(KeyboardInterrupt):
        worker.both(lambda: None, lambda: (release.wait(10), time.sleep(0.05), ran.append("first")))
    worker._wait = real_wait
    release.set()
    worker.both(lambda: None, lambda: ran.append("second"))
    assert ran == ["first", "second"]


def test_window_newton_refuses_a_window_wider_than_its_band():
    """Slots of one row farther apart (in band order) than the band holds are an error, not a silent write into
    another entry."""
    w, p, beta = np.array([0.5]), np.array([1.0]), 1.0
    d = np.array([0.2, 0.5, 0.8])
    idx, valid = np.array([[0, 2]]), np.ones((1, 2), dtype=bool)  # positions 0 and 2: 2 B - 1 = 3 < 6
    pi = np.array([[0.5, 0.5]])
    with pytest.raises(ValueError, match="band"):
        kn.window_newton(pi, idx, valid, w, p, d, beta, np.arange(3))


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


def _big_window_case(n: int = 5000, K: int = 60, B: int = 9, seed: int = 7):
    rng = np.random.default_rng(seed)
    w = rng.uniform(size=n)
    w[:50], w[50:100] = 0.0, 1.0
    d = np.r_[0.0, 1.0, rng.uniform(0.01, 0.99, size=K - 2)]
    with np.errstate(divide="ignore", invalid="ignore"):
        log_d1, log_d0 = np.log(d), np.log1p(-d)
        neg_h = np.where(w > 0, w * np.log(w), 0.0) + np.where(w < 1, (1 - w) * np.log1p(-w), 0.0)
    idx = np.stack([rng.permutation(K)[:B] for _ in range(n)])
    valid = rng.uniform(size=(n, B)) < 0.9
    valid[:, 0] = True
    return w, rng.dirichlet(np.ones(n)), neg_h, 40.0, np.log(rng.dirichlet(np.ones(K))), log_d1, log_d0, idx, valid


def test_kernels_split_in_halves_equal_one_pass(monkeypatch):
    """Above ``SPLIT`` rows a call runs as two halves (the second on a worker thread): the posteriors, the
    per-cluster sums, the Hessian's Gram sums (against the dense product) and the sparse map equal the same
    computed in one pass to 1e-13, and the halves give identical results with one core or two."""
    from ibtheory.ib import _problem

    case = _big_window_case()
    w, p, neg_h, beta, log_r, log_d1, log_d0, idx, valid = case
    assert idx.shape[0] >= 2 * kn.SPLIT
    results = {}
    for mode in ("one pass", "one core", "two cores"):
        monkeypatch.setattr(kn, "SPLIT", 10**9 if mode == "one pass" else 2048)
        monkeypatch.setattr(kn, "_two_cores", lambda m=mode: m == "two cores")
        pi, lnZ, F = kn.window_parts(*case)
        d = np.exp(log_d1)
        ab, m, s1, s2 = kn.window_newton(pi, idx, valid, w, p, d, beta, np.arange(d.size), u=2 * d.size - 1)
        results[mode] = (pi, lnZ, m, s1, s2, nw._band_dense(ab))
    for got in (results["one core"], results["two cores"]):
        for k, (a, b) in enumerate(zip(got, results["one pass"], strict=True)):
            # the Hessian's entries are sums with cancellation (1.8e-9 from terms up to 3e-3): their rounding
            # follows the terms, so they are compared to 1e-13 of the largest entry
            atol = 1e-13 * np.abs(b).max() if k == len(got) - 1 else 1e-300
            assert_allclose(a, b, rtol=1e-13, atol=atol)
    for a, b in zip(results["one core"], results["two cores"], strict=True):
        assert np.array_equal(a, b)
    pi, K = results["one pass"][0], log_r.size
    ref = _interleaved_gram(pi, beta * pi * (w[:, None] - np.exp(log_d1)[idx]), p, idx, valid, np.arange(K))
    assert_allclose(results["two cores"][5], ref, rtol=0, atol=1e-13 * np.abs(ref).max())
    # the sparse map on every pair of a 3000 x 5 table against the dense map
    rng = np.random.default_rng(3)
    prob = _problem.ib_problem(rng.dirichlet(np.ones(3000))[:, None] * rng.dirichlet(0.5 * np.ones(5), size=3000))
    log_pt, log_dec = np.log(rng.dirichlet(np.ones(8))), np.log(rng.dirichlet(np.ones(5), size=8))
    sup = it.support(prob, 2.0, log_pt, log_dec, cut=np.inf)
    assert sup.nnz == prob.n_s * 8
    with np.errstate(divide="ignore", invalid="ignore"):
        lp, ld, _, J = it.sparse_step(prob, 2.0, log_pt, log_dec, sup)
        lp0, ld0, _, J0 = it.step(prob, 2.0, log_pt, log_dec, prob.neg_entropy_rows, np.log(prob.p_s))
    assert_allclose(lp, lp0, rtol=0, atol=1e-12)
    assert_allclose(ld, ld0, rtol=0, atol=1e-12)
    assert abs(J - J0) <= 1e-12 * abs(J0)


def test_kernels_run_in_a_forked_child():
    """The worker thread does not survive ``fork``: a child forked after the parent used it starts its own (before
    the fix the child's call would wait forever on the parent's thread)."""
    import multiprocessing as mp

    case = _big_window_case()
    kn.window_parts(*case)  # the parent's worker thread exists now
    ctx = mp.get_context("fork")
    with ctx.Pool(1) as pool:
        child = pool.apply_async(_child_parts, (case,)).get(timeout=60)
    assert_allclose(child, kn.window_parts(*case)[1], rtol=0, atol=0)


def _child_parts(case):
    return kn.window_parts(*case)[1]


def test_certificate_lines_cover_the_rounding_of_their_exponents():
    """Rows that share one w share the rounding of lambda (w - w0) in their exponents, so the sum is off by up to
    ulp(|lambda dw|) ~ 4e-12 nats at |lambda dw| ~ 5e4, far above the line's allowance of 1e-13 (|C| + 1): the
    vertex sums add that rounding to ln z and to the image's error.  Every line (windowed and dense) lies above
    the log-sum-exp computed with 80 digits (mpmath) and its image s within ``err`` of the exact E[w] (before:
    lines up to 2.9e-12 nats below it)."""
    import mpmath as mp

    from ibtheory.ib import _certify_line as cl

    mp.mp.dps = 80
    rng = np.random.default_rng(0)
    n, w_mid, w_far = 256, 0.31, 0.8
    w = np.r_[w_mid, np.full(n - 1, w_far)]
    for lam0 in rng.uniform(5e4, 1e5, 12):
        a = np.r_[0.0, lam0 * (w_far - w_mid) + rng.uniform(0, 1e-3, n - 1)]
        lam = np.array([-lam0])
        for blk in (cl.blocks(a, w), None):
            C, wr, s, _, err = cl.vertices(a, w, lam, blk)
            f, allow = cl._line(C[0], lam[0], wr[0], wr[0])
            L = mp.mpf(lam[0])
            terms = [mp.exp(-mp.mpf(ax) - L * (mp.mpf(wx) - mp.mpf(wr[0]))) for ax, wx in zip(a, w, strict=True)]
            z = mp.fsum(terms)
            assert mp.mpf(float(f)) + mp.mpf(float(allow)) >= mp.log(z), (lam0, blk is None)
            mean = mp.fsum(t * mp.mpf(wx) for t, wx in zip(terms, w, strict=True)) / z
            assert abs(mp.mpf(float(s[0])) - mean) <= mp.mpf(float(err[0])), (lam0, blk is None)


def test_saddle_free_step_equals_the_full_eigendecomposition():
    """Newton's saddle-free step from the eigenpairs below its floor only (lifted, then a Cholesky solve) equals
    |H|^-1 g from every eigenpair (eigenvalues by absolute value, floored at 1e-9 of the Gershgorin bound) on
    indefinite, nearly singular and definite matrices."""
    rng = np.random.default_rng(5)
    for n, spectrum in ((40, np.r_[-0.7, -1e-4, 0.0, 1e-12, rng.uniform(0.01, 2, 36)]),
                        (120, np.r_[-2.0, rng.uniform(0.1, 3, 119)]), (60, rng.uniform(0.5, 1.5, 60))):
        Q, _ = np.linalg.qr(rng.normal(size=(n, n)))
        H = (Q * spectrum) @ Q.T
        H = 0.5 * (H + H.T)
        g = rng.normal(size=n)
        floor = 1e-9 * max(1.0, float(np.abs(H).sum(axis=1).max()))
        vals, vecs = np.linalg.eigh(H)
        ref = vecs @ ((vecs.T @ g) / np.maximum(np.abs(vals), floor))
        got = nw._saddle_free_step(H, g)
        assert_allclose(got, ref, rtol=1e-5, atol=1e-9 * np.abs(ref).max())  # condition number up to 1e9


def test_an_error_in_the_worker_half_reaches_the_caller(monkeypatch):
    """A kernel half that fails on the worker thread raises in the caller, and the worker serves the next call."""
    monkeypatch.setattr(kn, "_two_cores", lambda: True)

    def call(part, lo, hi):
        if part == 1:
            raise ValueError("worker half failed")

    import pytest

    with pytest.raises(ValueError, match="worker half failed"):
        kn._run(call, 10 * kn.SPLIT)
    seen = []
    assert kn._run(lambda part, lo, hi: seen.append((part, lo, hi)), 10 * kn.SPLIT) == 2
    h = 5 * kn.SPLIT + kn.MAIN_EXTRA // 2  # the caller's part has MAIN_EXTRA more units than the worker's
    assert sorted(seen) == [(0, 0, h), (1, h, 10 * kn.SPLIT)]


def test_gibbs_sums_equal_scipy_and_stay_within_their_cut():
    """The |Y| = 3 certificate's compiled Gibbs sums: A(lambda) = ln sum_x exp(-a_x - lambda.W~_x) against scipy's
    logsumexp, never above it and below it by less than n e^-GIBBS_CUT beyond rounding (the certificate adds that to
    its allowance); the mean and covariance against the weighted sums written out (multipliers up to 1e4, so most
    rows are skipped; a row of multipliers at -inf-like size gives a one-row distribution, covariance 0)."""
    rng = np.random.default_rng(3)
    n = 300
    a = rng.normal(size=n) * 3
    Wt = rng.dirichlet(np.ones(3), size=n)[:, 1:]
    lam = np.concatenate([rng.normal(size=(200, 2)) * s for s in (0.1, 10.0, 1e4)] + [[[0.0, 0.0], [-1e9, 0.0]]])
    logits = -a[None, :] - lam @ Wt.T
    ref = logsumexp(logits, axis=1)
    A = kn.gibbs_lse(a, Wt, lam)
    rounding = 1e-13 * (1.0 + np.abs(ref))
    assert np.all(A <= ref + rounding)
    assert np.all(ref - A <= n * np.exp(-kn.GIBBS_CUT) + rounding)
    A2, mean, cov = kn.gibbs_moments(a, Wt, lam)
    assert_allclose(A2, A, rtol=0, atol=1e-12)
    w = np.exp(logits - ref[:, None])
    m_ref = w @ Wt
    c_ref = np.einsum("mx,xi,xj->mij", w, Wt, Wt) - m_ref[:, :, None] * m_ref[:, None, :]
    # the logits carry rounding ~1e-16 (|a| + |lambda|): so do the weights
    tol = 1e-14 * (1.0 + np.abs(a).max() + np.abs(lam).sum(axis=1))
    assert np.all(np.abs(mean - m_ref) <= tol[:, None])
    assert np.all(np.abs(cov - c_ref) <= tol[:, None, None])
    assert np.all(cov[:, 0, 0] >= 0) and np.all(cov[:, 1, 1] >= 0)
    assert_allclose(cov[-1], 0.0, atol=1e-15)
    # the rows in blocks (a Z-order of W~, 10 blocks of 32): the same sums, blocks of only skipped terms unvisited
    blk = kn.gibbs_blocks(a, Wt)
    assert len(blk.top) == 10 and sorted(blk.a.tolist()) == sorted(a.tolist())
    A3, mean3, cov3 = kn.gibbs_moments(None, None, lam, blocks=blk)
    assert np.all(np.abs(A3 - A) <= rounding)
    assert np.all(np.abs(mean3 - mean) <= tol[:, None]) and np.all(np.abs(cov3 - cov) <= tol[:, None, None])
    assert_allclose(kn.gibbs_lse(None, None, lam, blocks=blk), A3, rtol=0, atol=0)


def test_gibbs_values_equal_the_formed_distributions_values():
    """``gibbs_values``: H(q) - a.q of the Gibbs q it forms, and its mean of W~, against q formed and valued with
    numpy (the certificate's lower bound, ``_certify_1d._gibbs_values``), multipliers up to 1e4."""
    from ibtheory.ib._certify_1d import _gibbs_values
    from ibtheory.info import entropy_rows

    rng = np.random.default_rng(1)
    n, beta = 256, 50.0
    W = rng.dirichlet(np.ones(3), size=n)
    Wt = W[:, 1:]
    a = rng.normal(size=n) * 3
    lam = np.concatenate([rng.normal(size=(100, 2)) * s for s in (0.1, 10.0, 1e4)])
    ref, q = _gibbs_values(a, Wt, W, beta, lam)
    v, mean = kn.gibbs_values(a, Wt, lam)
    assert_allclose(mean, q @ Wt, rtol=0, atol=1e-12)
    got = v - beta * entropy_rows(np.column_stack([1.0 - mean.sum(axis=1), mean]), "nats")
    assert_allclose(got, ref, rtol=1e-12, atol=1e-11)
    v2, mean2 = kn.gibbs_values(None, None, lam, blocks=kn.gibbs_blocks(a, Wt))  # 8 blocks of rows
    assert_allclose(v2, v, rtol=1e-12, atol=1e-11)
    assert_allclose(mean2, mean, rtol=0, atol=1e-12)


def test_worker_hand_overs_under_stress(monkeypatch):
    """The worker's spinning and blocking hand-overs (``_kernels._Worker``): 3,000 calls from two threads at once,
    with pauses longer than a spin between some of them (so both the spinning and the blocking paths are taken),
    every tenth worker half failing, each call seeing exactly its own halves and errors; no call is lost or hangs
    (the threads are joined with a timeout)."""
    import functools
    import threading

    monkeypatch.setattr(kn._Worker, "SPIN", 2_000)  # spins of a few microseconds: blocking paths are taken often
    worker = kn._Worker()
    failures, errors = [], []

    def theirs(got, fail, name):
        if fail:
            raise ValueError(name)
        got.append("theirs")

    def caller(tag):
        rng = np.random.default_rng(tag)
        for i in range(1500):
            got: list = []
            fail = i % 10 == 3
            try:
                worker.both(functools.partial(got.append, "mine"), functools.partial(theirs, got, fail, f"{tag}-{i}"))
                if fail or sorted(got) != ["mine", "theirs"]:
                    failures.append((tag, i, got))
            except ValueError as exc:
                if not fail or str(exc) != f"{tag}-{i}":
                    failures.append((tag, i, str(exc)))
            except BaseException as exc:  # noqa: BLE001
                errors.append(exc)
            if rng.random() < 0.05:
                import time

                time.sleep(0.002)

    threads = [threading.Thread(target=caller, args=(t,)) for t in (1, 2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "a hand-over hung"
    assert not failures and not errors, (failures[:3], errors[:3])
