"""The peers' binning grids against their own arithmetic written out here: the authors' code (IDNNs: np.digitize
with np.linspace edges), Saxe et al.'s fixed width (floor((a - anchor) / width)), and sampled labels; for the binning
estimator and for the ensemble estimator (pooled over networks)."""

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from ibtheory.estimators import bin_indices, binned_codes, binned_information, ensemble_information


def _entropy_counts(c):
    p = c[c > 0] / c.sum()
    return float(-np.sum(p * np.log2(p)))


def _brute(codes, p_x, p_y_x):
    """H(T), I(T;Y) of one (n_x, units) array of per-unit codes, states by np.unique over the rows (bits)."""
    _, t = np.unique(codes, axis=0, return_inverse=True)
    t = t.ravel()
    p_ty = np.zeros((t.max() + 1, p_y_x.shape[1]))
    np.add.at(p_ty, t, p_x[:, None] * p_y_x)
    h_t = _entropy_counts(p_ty.sum(axis=1))
    h_y = _entropy_counts(p_ty.sum(axis=0))
    h_ty = _entropy_counts(p_ty.ravel())
    return h_t, h_t + h_y - h_ty


def _idnns_codes(acts, n_bins, lo=-1.0, hi=1.0):
    """The authors' arithmetic: np.linspace edges, np.digitize."""
    return np.digitize(acts, np.linspace(lo, hi, n_bins))


def _problem(seed, n_x=96, units=3, n_y=3, soft=True, uniform=False, low=-1.3, high=1.3):
    rng = np.random.default_rng(seed)
    acts = rng.uniform(low, high, size=(3, n_x, units))
    acts[:, ::7] = np.round(acts[:, ::7] * 2) / 2  # some values exactly on edges, at -1 and at 1.0
    acts[0, :4, 0] = [1.0, -1.0, 0.9999999, 1.5]
    p_x = np.full(n_x, 1 / n_x) if uniform else rng.dirichlet(np.ones(n_x))
    p_y_x = rng.dirichlet(np.ones(n_y), size=n_x) if soft else np.eye(n_y)[rng.integers(0, n_y, n_x)]
    return acts, p_x, p_y_x


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("n_bins", [2, 5, 30])
def test_idnns_indices_are_digitize(n_bins, dtype):
    acts = _problem(0)[0].astype(dtype)
    edges = np.linspace(-1, 1, n_bins).astype(dtype)
    acts[1, : n_bins, 0] = edges  # every edge itself
    assert_array_equal(bin_indices(acts, n_bins, scheme="idnns"), _idnns_codes(acts, n_bins))


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("soft,uniform", [(False, True), (True, False), (True, True)])
@pytest.mark.parametrize("n_bins", [4, 30])
def test_idnns_information_matches_authors_arithmetic(seed, soft, uniform, n_bins):
    acts, p_x, p_y_x = _problem(seed, soft=soft, uniform=uniform)
    acts = np.round(acts * n_bins / 4) / (n_bins / 4)  # collisions of rows at both grids
    r = binned_information(acts, p_x, p_y_x, n_bins=n_bins, scheme="idnns")
    for i in range(acts.shape[0]):
        h_t, i_ty = _brute(_idnns_codes(acts[i], n_bins), p_x, p_y_x)
        assert_allclose(r.I_XT[i], h_t, atol=1e-10, err_msg="idnns I(X;T) vs np.digitize brute force, tol 1e-10")
        assert_allclose(r.I_TY[i], i_ty, atol=1e-10, err_msg="idnns I(T;Y) vs np.digitize brute force, tol 1e-10")
        assert r.n_states[i] == len(np.unique(_idnns_codes(acts[i], n_bins), axis=0))
    assert (r.n_bins, r.scheme) == (n_bins, "idnns")


def test_idnns_separates_one_from_the_last_bin_and_default_does_not():
    acts = np.array([[0.99], [1.0]])
    p_x, p_y_x = np.full(2, 0.5), np.eye(2)
    assert_allclose(binned_information(acts, p_x, p_y_x, scheme="idnns").I_XT, 1.0)
    assert_allclose(binned_information(acts, p_x, p_y_x).I_XT, 0.0)  # the default 30 bins fold 1.0 in


def test_default_grid_unchanged():
    acts, p_x, p_y_x = _problem(3)
    a, b = binned_information(acts, p_x, p_y_x), binned_information(acts, p_x, p_y_x, n_bins=30)
    assert_array_equal(a.I_XT, b.I_XT)
    assert_array_equal(a.I_TY, b.I_TY)
    codes = np.clip(np.floor((acts + 1) / 2 * 30), 0, 29)
    for i in range(acts.shape[0]):
        assert_allclose(a.I_XT[i], _brute(codes[i], p_x, p_y_x)[0], atol=1e-10)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("width,anchor", [(0.07, 0.0), (0.3, -0.05), (1.0, 0.5)])
def test_fixed_width_indices_are_floor(width, anchor, dtype):
    acts = _problem(1, low=-2.0, high=6.0)[0].astype(dtype)
    assert_array_equal(bin_indices(acts, bin_width=width, anchor=anchor), np.floor((acts - anchor) / width))


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("soft,uniform", [(False, True), (True, False)])
@pytest.mark.parametrize("width,anchor", [(0.07, 0.0), (0.5, 0.2)])
def test_fixed_width_information_matches_brute_force(seed, soft, uniform, width, anchor):
    acts, p_x, p_y_x = _problem(seed, soft=soft, uniform=uniform, low=-0.3, high=3.0)
    acts = np.maximum(acts, 0.0)  # ReLU-like: many exact zeros, wide range
    acts = np.round(acts / width * 0.6) / 0.6 * width
    r = binned_information(acts, p_x, p_y_x, bin_width=width, anchor=anchor)
    for i in range(acts.shape[0]):
        codes = np.floor((acts[i] - anchor) / width)
        h_t, i_ty = _brute(codes, p_x, p_y_x)
        assert_allclose(r.I_XT[i], h_t, atol=1e-10, err_msg="fixed-width I(X;T) vs floor brute force, tol 1e-10")
        assert_allclose(r.I_TY[i], i_ty, atol=1e-10, err_msg="fixed-width I(T;Y) vs floor brute force, tol 1e-10")
    assert (r.scheme, r.bin_width, r.anchor) == ("fixed", width, anchor)
    t = binned_codes(acts, bin_width=width, anchor=anchor)
    for i in range(acts.shape[0]):
        _, ref = np.unique(np.floor((acts[i] - anchor) / width), axis=0, return_inverse=True)
        assert_array_equal(t[i], ref.ravel())  # both number states in the order of the codes


def test_fixed_width_keeps_padding_out():
    acts, p_x, p_y_x = _problem(4, low=0.0, high=2.0)
    padded = np.concatenate([acts, np.full(acts.shape[:-1] + (2,), np.nan)], axis=-1)
    a = binned_information(acts, p_x, p_y_x, bin_width=0.07)
    b = binned_information(padded, p_x, p_y_x, bin_width=0.07)
    assert_allclose(b.I_XT, a.I_XT, atol=1e-12)
    assert_allclose(b.I_TY, a.I_TY, atol=1e-12)


def _inverse_cdf_labels(p_y_x, rng):
    """One label per pattern by inverse CDF of one uniform each (the documented draw), one-hot."""
    u = rng.random(p_y_x.shape[0])
    y = np.array([min(int(np.searchsorted(np.cumsum(row), ui, side="right")), len(row) - 1)
                  for row, ui in zip(p_y_x, u, strict=True)])
    return np.eye(p_y_x.shape[1])[y]


@pytest.mark.parametrize("seed", range(3))
def test_sampled_labels_match_brute_force(seed):
    acts, p_x, p_y_x = _problem(seed, uniform=True)
    r = binned_information(acts, p_x, p_y_x, n_bins=30, scheme="idnns", labels="sampled", label_seed=seed)
    onehot = _inverse_cdf_labels(p_y_x, np.random.default_rng(seed))
    for i in range(acts.shape[0]):
        h_t, i_ty = _brute(_idnns_codes(acts[i], 30), p_x, onehot)
        assert_allclose(r.I_XT[i], h_t, atol=1e-10)
        assert_allclose(r.I_TY[i], i_ty, atol=1e-10, err_msg="sampled-label I(T;Y) vs brute force, tol 1e-10")
    exact = binned_information(acts, p_x, p_y_x, scheme="idnns")
    assert np.all(np.abs(r.I_TY - exact.I_TY) > 1e-6)  # soft task: the sampled labels are another quantity
    g = binned_information(acts, p_x, p_y_x, scheme="idnns", labels="sampled",
                           label_seed=np.random.default_rng(seed))
    assert_array_equal(g.I_TY, r.I_TY)
    assert r.labels == "sampled"


def test_sampled_labels_of_a_deterministic_task_are_the_task():
    acts, p_x, p_y_x = _problem(5, soft=False)
    for s in range(3):
        r = binned_information(acts, p_x, p_y_x, labels="sampled", label_seed=s)
        assert_allclose(r.I_TY, binned_information(acts, p_x, p_y_x).I_TY, atol=1e-12)


@pytest.mark.parametrize("kwargs,name", [
    (dict(n_bins=30, bin_width=0.07), "n_bins"),
    (dict(bin_width=0.0), "bin_width"),
    (dict(bin_width=-0.1), "bin_width"),
    (dict(bin_width=float("nan")), "bin_width"),
    (dict(bin_width="0.07"), "bin_width"),
    (dict(bin_width=0.07, anchor=float("inf")), "anchor"),
    (dict(bin_width=0.07, anchor="0"), "anchor"),
    (dict(anchor=0.0), "anchor"),
    (dict(bin_width=0.07, scheme="mass"), "scheme"),
    (dict(bin_width=0.07, scheme="idnns"), "scheme"),
    (dict(scheme="idnns", limits="adaptive"), "limits"),
    (dict(scheme="idnns", n_bins=1), "n_bins"),
    (dict(scheme="digitize"), "scheme"),
    (dict(labels="soft"), "labels"),
    (dict(labels="sampled"), "label_seed"),
    (dict(labels="sampled", label_seed=-1), "label_seed"),
    (dict(labels="sampled", label_seed=1.5), "label_seed"),
])
def test_bad_options(kwargs, name):
    acts, p_x, p_y_x = _problem(0)
    with pytest.raises(ValueError, match=name):
        binned_information(acts, p_x, p_y_x, **kwargs)
    with pytest.raises(ValueError, match=name):
        ensemble_information(acts, p_x, p_y_x, **kwargs)
    grid = {k: v for k, v in kwargs.items() if k not in ("labels", "label_seed")}
    if grid:
        with pytest.raises(ValueError, match=name):
            bin_indices(acts, **grid)
        with pytest.raises(ValueError, match=name):
            binned_codes(acts, **grid)


def _pooled_brute(codes, p_x, p_y_x):
    """I(X;T), I(T;Y) in bits of the encoder pooled over R networks, from (R, n_x, units) per-unit codes: states by
    np.unique over all R * n_x rows, p(x, t) = p(x) #{r: t_r(x) = t} / R written out with loops."""
    R, n_x, units = codes.shape
    _, t = np.unique(codes.reshape(R * n_x, units), axis=0, return_inverse=True)
    t = t.ravel().reshape(R, n_x)
    p_xt = np.zeros((n_x, t.max() + 1))
    for r in range(R):
        for x in range(n_x):
            p_xt[x, t[r, x]] += p_x[x] / R
    p_ty = p_xt.T @ p_y_x

    def mi(p):
        h = _entropy_counts
        return h(p.sum(axis=1)) + h(p.sum(axis=0)) - h(p.ravel())

    return mi(p_xt), mi(p_ty)


@pytest.mark.parametrize("seed", range(2))
@pytest.mark.parametrize("n_bins", [4, 30])
def test_ensemble_idnns_grid_matches_pooled_digitize(seed, n_bins):
    acts, p_x, p_y_x = _problem(seed)
    acts = np.round(acts * n_bins / 4) / (n_bins / 4)  # rows shared by networks and patterns
    acts[1, :30] = acts[0, :30]
    r = ensemble_information(acts, p_x, p_y_x, n_bins=n_bins, scheme="idnns")
    ixt, ity = _pooled_brute(_idnns_codes(acts, n_bins), p_x, p_y_x)
    assert_allclose([r.I_XT, r.I_TY], [ixt, ity], atol=1e-10, err_msg="pooled np.digitize grid, tol 1e-10 bits")
    # values >= hi get their own state (n_bins + 1 states per unit): not so on the default grid
    edge = np.array([[[0.99], [1.0]]])
    assert_allclose(ensemble_information(edge, np.full(2, 0.5), np.eye(2), scheme="idnns").I_XT, 1.0)
    assert_allclose(ensemble_information(edge, np.full(2, 0.5), np.eye(2)).I_XT, 0.0)


@pytest.mark.parametrize("width,anchor", [(0.07, 0.0), (0.5, 0.2)])
def test_ensemble_fixed_width_matches_pooled_floor(width, anchor):
    acts, p_x, p_y_x = _problem(2, low=-0.3, high=3.0)
    acts = np.maximum(acts, 0.0)
    acts = np.round(acts / width * 0.6) / 0.6 * width
    acts[2, 50:] = acts[0, 50:]
    r = ensemble_information(acts, p_x, p_y_x, bin_width=width, anchor=anchor)
    ixt, ity = _pooled_brute(np.floor((acts - anchor) / width), p_x, p_y_x)
    assert_allclose([r.I_XT, r.I_TY], [ixt, ity], atol=1e-10, err_msg="pooled fixed-width grid, tol 1e-10 bits")


def test_ensemble_sampled_labels_match_pooled_brute_force():
    acts, p_x, p_y_x = _problem(3)
    r = ensemble_information(acts, p_x, p_y_x, n_bins=5, labels="sampled", label_seed=7)
    onehot = _inverse_cdf_labels(p_y_x, np.random.default_rng(7))
    codes = np.clip(np.floor((acts + 1) / 2 * 5), 0, 4)
    ixt, ity = _pooled_brute(codes, p_x, onehot)
    assert_allclose([r.I_XT, r.I_TY], [ixt, ity], atol=1e-10, err_msg="pooled, sampled labels, tol 1e-10 bits")
    exact = ensemble_information(acts, p_x, p_y_x, n_bins=5)
    assert_allclose(exact.I_XT, r.I_XT, atol=1e-12)  # labels change I(T;Y) only
    assert abs(float(exact.I_TY - r.I_TY)) > 1e-6
