"""Binning estimator against brute force (per-slice np.unique over binned rows + exact info measures)."""

import numpy as np
import pytest
from numpy.testing import assert_allclose

from ibtheory.estimators import bin_indices, binned_codes, binned_information
from ibtheory.info import entropy, mutual_information


def _brute(acts, p_x, p_y_x, n_bins, lo, hi):
    """I(X;B(T)), I(B(T);Y) of one (n_x, units) layer by np.unique over binned rows."""
    b = np.clip(np.floor((acts - lo) / (hi - lo) * n_bins), 0, n_bins - 1)
    _, t = np.unique(b, axis=0, return_inverse=True)
    t = t.ravel()
    p_ty = np.zeros((t.max() + 1, p_y_x.shape[1]))
    np.add.at(p_ty, t, p_x[:, None] * p_y_x)
    return entropy(p_ty.sum(axis=1)), mutual_information(p_ty)


def _problem(seed, n_x=64, units=3, n_y=3, soft=True, uniform=False):
    rng = np.random.default_rng(seed)
    acts = rng.uniform(-1.2, 1.2, size=(4, n_x, units))
    acts = np.round(acts * 3) / 3  # coarse values so that rows collide
    p_x = np.full(n_x, 1 / n_x) if uniform else rng.dirichlet(np.ones(n_x))
    if soft:
        p_y_x = rng.dirichlet(np.ones(n_y), size=n_x)
    else:
        p_y_x = np.eye(n_y)[rng.integers(0, n_y, n_x)]
    return acts, p_x, p_y_x


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("soft,uniform", [(True, False), (False, True), (False, False)])
def test_matches_brute_force(seed, soft, uniform):
    acts, p_x, p_y_x = _problem(seed, soft=soft, uniform=uniform)
    r = binned_information(acts, p_x, p_y_x, n_bins=5, limits=(-1.0, 1.0))
    for i in range(acts.shape[0]):
        ixt, ity = _brute(acts[i], p_x, p_y_x, 5, -1.0, 1.0)
        assert_allclose(r.I_XT[i], ixt, atol=1e-10, err_msg="I(X;T) vs brute force, tol 1e-10 bits")
        assert_allclose(r.I_TY[i], ity, atol=1e-10, err_msg="I(T;Y) vs brute force, tol 1e-10 bits")


def test_adaptive_limits_match_per_slice_range():
    acts, p_x, p_y_x = _problem(7)
    acts = acts * np.array([1.0, 3.0, 0.5, 10.0])[:, None, None]
    r = binned_information(acts, p_x, p_y_x, n_bins=7, limits="adaptive")
    for i in range(4):
        ixt, ity = _brute(acts[i], p_x, p_y_x, 7, acts[i].min(), acts[i].max())
        assert_allclose([r.I_XT[i], r.I_TY[i]], [ixt, ity], atol=1e-10, err_msg="adaptive range, tol 1e-10")


def test_mass_bins_are_equal_mass_on_distinct_values():
    rng = np.random.default_rng(3)
    a = rng.normal(size=(2, 1000, 1))
    idx = bin_indices(a, n_bins=10, scheme="mass")
    counts = np.stack([np.bincount(idx[i, :, 0].astype(int), minlength=10) for i in range(2)])
    assert_allclose(counts, 100, atol=1, err_msg="equal-mass bins hold n/n_bins values each (+-1)")


@pytest.mark.parametrize("uniform", [True, False])
def test_many_units_overflow_path_matches_unique(uniform):
    # 30 bins ^ 20 units overflows int64: the packed code must be re-ranked, not wrapped
    rng = np.random.default_rng(0)
    base = rng.uniform(-1, 1, size=(40, 20))
    acts = np.concatenate([base, base[:10]])[None]  # 10 duplicated rows -> 40 distinct states of 50
    p_x = np.full(50, 1 / 50) if uniform else rng.dirichlet(np.ones(50))
    r = binned_information(acts, p_x, np.eye(2)[np.arange(50) % 2], n_bins=30)
    assert int(r.n_states[0]) == 40
    ixt, ity = _brute(acts[0], p_x, np.eye(2)[np.arange(50) % 2], 30, -1.0, 1.0)
    assert_allclose([r.I_XT[0], r.I_TY[0]], [ixt, ity], atol=1e-10, err_msg="overflow path, tol 1e-10 bits")


@pytest.mark.parametrize("units", [209, 288, 4000])
@pytest.mark.parametrize("uniform", [True, False])
def test_layers_wider_than_the_float_range_of_n_bins_power_units(units, uniform):
    # 30.0 ** 209 overflows a float64 (it raised OverflowError): a conv feature map of 2 x 12 x 12 = 288 units, and a
    # 4,000-unit layer, against np.unique over the binned rows; duplicated rows and rows differing in one late unit
    rng = np.random.default_rng(units)
    base = rng.uniform(-1, 1, size=(24, units))
    late = base[:6].copy()
    late[:, -1] = -late[:, -1]  # mirrored last unit: these rows differ from base[:6] only at the very end
    acts = np.concatenate([base, base[:8], late])[None]
    n_x = acts.shape[1]
    p_x = np.full(n_x, 1 / n_x) if uniform else rng.dirichlet(np.ones(n_x))
    p_y_x = np.eye(2)[np.arange(n_x) % 2] if uniform else rng.dirichlet(np.ones(2), size=n_x)
    r = binned_information(acts, p_x, p_y_x, n_bins=30)
    ixt, ity = _brute(acts[0], p_x, p_y_x, 30, -1.0, 1.0)
    assert int(r.n_states[0]) == len(np.unique(np.clip(np.floor((acts[0] + 1) * 15), 0, 29), axis=0))
    assert_allclose([r.I_XT[0], r.I_TY[0]], [ixt, ity], atol=1e-10, err_msg=f"{units} units, tol 1e-10 bits")


def test_codes_are_the_encoder():
    acts, p_x, p_y_x = _problem(11)
    t = binned_codes(acts, n_bins=5)
    assert t.shape == acts.shape[:-1]
    b = bin_indices(acts, n_bins=5)
    for i in range(acts.shape[0]):
        same_code = t[i][:, None] == t[i][None, :]
        same_bins = (b[i][:, None, :] == b[i][None, :, :]).all(-1)
        np.testing.assert_array_equal(same_code, same_bins)
        assert set(np.unique(t[i])) == set(range(t[i].max() + 1)), "states are numbered densely 0..k-1"


def test_known_answers_and_invariants():
    n = 16
    p_x = np.full(n, 1 / n)
    y = np.eye(2)[np.arange(n) % 2]
    const = np.zeros((n, 2))
    r0 = binned_information(const, p_x, y)
    assert_allclose([r0.I_XT, r0.I_TY], [0.0, 0.0], atol=1e-12, err_msg="a constant layer carries nothing")
    inj = np.linspace(-0.99, 0.99, n)[:, None]
    r1 = binned_information(inj, p_x, y, n_bins=n)
    assert_allclose([r1.I_XT, r1.I_TY], [4.0, 1.0], atol=1e-12, err_msg="injective binning: H(X)=4, I(X;Y)=1")
    acts, p_x, p_y_x = _problem(5)
    r = binned_information(acts, p_x, p_y_x, n_bins=4)
    assert np.all(r.I_TY <= r.I_XT + 1e-12), "I(T;Y) <= I(X;T) for a deterministic encoder"
    assert np.all(r.I_TY <= mutual_information(p_x[:, None] * p_y_x) + 1e-12), "I(T;Y) <= I(X;Y)"


def test_padding_units_are_ignored_and_partial_nan_rejected():
    acts, p_x, p_y_x = _problem(2)
    padded = np.concatenate([acts, np.full(acts.shape[:-1] + (2,), np.nan)], axis=-1)
    a, b = binned_information(acts, p_x, p_y_x, n_bins=5), binned_information(padded, p_x, p_y_x, n_bins=5)
    assert_allclose(b.I_XT, a.I_XT, atol=1e-12, err_msg="NaN padding units must not change I(X;T)")
    padded[0, 3, -1] = 0.0
    with pytest.raises(ValueError, match="NaN"):
        binned_information(padded, p_x, p_y_x)


@pytest.mark.parametrize(
    "kwargs,match",
    [({"n_bins": 1}, "n_bins"), ({"limits": (1, -1)}, "limits"), ({"limits": "auto"}, "limits"),
     ({"scheme": "quantile"}, "scheme")],
)
def test_bad_options(kwargs, match):
    acts, p_x, p_y_x = _problem(0)
    with pytest.raises(ValueError, match=match):
        binned_information(acts, p_x, p_y_x, **kwargs)


def test_bad_inputs():
    acts, p_x, p_y_x = _problem(0)
    with pytest.raises(ValueError, match="p_x"):
        binned_information(acts, p_x[:-1], p_y_x)
    with pytest.raises(ValueError, match="p_y_given_x"):
        binned_information(acts, p_x, p_y_x * 2)
    with pytest.raises(ValueError, match="activations"):
        binned_information(acts[0, :, 0], p_x, p_y_x)
    with pytest.raises(ValueError, match="infinite"):
        binned_information(np.where(acts > 1.1, np.inf, acts), p_x, p_y_x)
