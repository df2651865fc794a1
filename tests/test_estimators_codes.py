"""Exact information of deterministic layers (distinct activation rows) against brute force over dicts of tuples."""

import doctest

import numpy as np
import pytest
from numpy.testing import assert_allclose

import ibtheory.estimators.codes
from ibtheory.estimators import binned_information
from ibtheory.estimators.codes import code_information, distinct_codes
from ibtheory.info import entropy, mutual_information


def _brute(layer, p_x, p_y_x):
    """(I(X;T), I(T;Y), n_states with p(t) > 0, n distinct rows) of one (n_x, units) layer: a dict keyed by the
    tuple of each row's real (non-NaN) values; Python floats hash -0.0 and 0.0 alike and compare them equal."""
    joint = {}
    for x, row in enumerate(layer):
        key = tuple(float(v) for v in row if not np.isnan(v))
        joint[key] = joint.get(key, 0.0) + p_x[x] * p_y_x[x]
    p_ty = np.array(list(joint.values()))
    return (entropy(p_ty.sum(axis=1)), mutual_information(p_ty), int((p_ty.sum(axis=1) > 0).sum()), len(joint))


def _problem(seed, lead=(2, 3), n_x=40, units=3, n_y=3, levels=3):
    rng = np.random.default_rng(seed)
    acts = rng.integers(-levels, levels + 1, size=lead + (n_x, units)) / levels  # few values: rows collide
    p_x = rng.dirichlet(np.ones(n_x))
    p_y_x = rng.dirichlet(np.ones(n_y), size=n_x)
    return acts, p_x, p_y_x


def _check(acts, p_x, p_y_x, atol=1e-12):
    r = code_information(acts, p_x, p_y_x)
    d = distinct_codes(acts)
    lead = acts.shape[:-2]
    assert r.I_XT.shape == r.I_TY.shape == r.n_states.shape == d.shape == lead
    for i in np.ndindex(*lead):
        ixt, ity, n_states, n_rows = _brute(acts[i], p_x, p_y_x)
        assert_allclose([r.I_XT[i], r.I_TY[i]], [ixt, ity], atol=atol, err_msg=f"slice {i} vs brute force")
        assert (int(r.n_states[i]), int(d[i])) == (n_states, n_rows), f"slice {i}: state counts"
    return r


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("levels", [1, 3])
def test_matches_brute_force(seed, levels):
    acts, p_x, p_y_x = _problem(seed, levels=levels)
    _check(acts, p_x, p_y_x)


def test_uniform_hard_labels_and_zero_probability_patterns():
    acts, _, _ = _problem(4, n_x=30)
    p_x = np.full(30, 1 / 30)
    _check(acts, p_x, np.eye(2)[np.arange(30) % 2])
    p0 = np.random.default_rng(4).dirichlet(np.ones(30))
    p0[:10] = 0.0
    p0 /= p0.sum()
    r = _check(acts, p0, np.eye(2)[np.arange(30) % 2])
    assert np.all(r.n_states <= distinct_codes(acts)), "n_states counts only states with p(t) > 0"


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.longdouble])
def test_other_float_types(dtype):
    acts, p_x, p_y_x = _problem(5)
    _check(acts.astype(dtype), p_x, p_y_x)


def test_padding_units_are_ignored():
    acts, p_x, p_y_x = _problem(6, units=2)
    padded = np.concatenate([acts, np.full(acts.shape[:-1] + (3,), np.nan)], axis=-1)
    padded[0, 1, :, 1:] = np.nan  # one network of the stack has a narrower layer
    padded[..., ::2, :] *= -1  # -0.0 in the even patterns, 0.0 in the odd ones: equal values
    assert np.signbit(padded[..., ::2, :][padded[..., ::2, :] == 0]).all()
    r = _check(padded, p_x, p_y_x)
    assert r.scheme == "codes"


def test_injective_and_constant_layers():
    rng = np.random.default_rng(7)
    n = 64
    p_x = rng.dirichlet(np.ones(n))
    p_y_x = rng.dirichlet(np.ones(4), size=n)
    inj = rng.normal(size=(3, n, 5))  # distinct rows with probability 1
    r = code_information(inj, p_x, p_y_x)
    assert_allclose(r.I_XT, entropy(p_x), atol=1e-12, err_msg="injective layer: I(X;T) = H(X)")
    assert_allclose(r.I_TY, mutual_information(p_x[:, None] * p_y_x), atol=1e-12, err_msg="I(T;Y) = I(X;Y)")
    assert r.n_states.tolist() == [n] * 3
    const = np.full((2, n, 4), 0.3)
    r0 = code_information(const, p_x, p_y_x)
    assert_allclose([r0.I_XT, r0.I_TY], 0.0, atol=1e-15, err_msg="a constant layer carries nothing")
    assert distinct_codes(const).tolist() == [1, 1]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("units", [1, 300])
def test_rows_differing_in_the_last_ulp_are_distinct(dtype, units):
    rng = np.random.default_rng(units)
    base = rng.uniform(-1, 1, size=(8, units)).astype(dtype)
    near = base.copy()
    near[:, -1] = np.nextafter(near[:, -1], dtype(np.inf))  # one ulp up in the last unit only
    acts = np.concatenate([base, near, base])  # 24 patterns, 16 distinct rows
    p_x = np.full(24, 1 / 24)
    r = code_information(acts, p_x, np.eye(2)[np.arange(24) % 2])
    assert int(distinct_codes(acts)) == 16 and int(r.n_states) == 16
    assert_allclose(r.I_XT, 8 * (2 / 24) * np.log2(12) + 8 * (1 / 24) * np.log2(24), atol=1e-12)


def test_negative_zero_equals_zero():
    acts = np.array([[0.0, 1.0], [-0.0, 1.0], [0.0, -0.0], [-0.0, 0.0]])
    assert int(distinct_codes(acts)) == 2
    r = code_information(acts, np.full(4, 0.25), np.eye(4))
    assert_allclose([r.I_XT, r.I_TY], [1.0, 1.0], atol=1e-15)


def test_agrees_with_binning_on_a_grid_finer_than_the_values():
    # values at the centres of 16 equal bins on [-1, 1]: every distinct row has its own binned row
    rng = np.random.default_rng(8)
    n_bins, n_x = 16, 200
    acts = (rng.integers(0, n_bins, size=(3, n_x, 2)) + 0.5) * (2 / n_bins) - 1
    p_x = rng.dirichlet(np.ones(n_x))
    p_y_x = rng.dirichlet(np.ones(3), size=n_x)
    r = code_information(acts, p_x, p_y_x)
    b = binned_information(acts, p_x, p_y_x, n_bins=n_bins)
    assert_allclose([r.I_XT, r.I_TY], [b.I_XT, b.I_TY], atol=1e-10, err_msg="codes vs fine binning")
    np.testing.assert_array_equal(r.n_states, b.n_states)
    coarse = binned_information(acts, p_x, p_y_x, n_bins=2)
    assert np.all(coarse.I_XT <= r.I_XT + 1e-12), "binning merges states: H(B(T)) <= H(T)"


def test_bad_input():
    acts, p_x, p_y_x = _problem(9, lead=(2,), n_x=6)
    with pytest.raises(ValueError, match="p_x"):
        code_information(acts, p_x * 2, p_y_x)
    with pytest.raises(ValueError, match="p_x"):
        code_information(acts, np.full(5, 0.2), p_y_x[:5])
    with pytest.raises(ValueError, match="p_y_given_x"):
        code_information(acts, p_x, p_y_x * 0.5)
    with pytest.raises(ValueError, match="p_y_given_x"):
        code_information(acts, p_x, p_y_x[:4])
    with pytest.raises(ValueError, match="activations"):
        code_information(acts[0, :, 0], p_x, p_y_x)
    bad = acts.copy()
    bad[0, 2, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        code_information(bad, p_x, p_y_x)
    bad[0, 2, 1] = np.inf
    with pytest.raises(ValueError, match="infinite"):
        distinct_codes(bad)
    with pytest.raises(ValueError, match="activations"):
        distinct_codes(np.zeros((3, 0)))
    with pytest.raises(ValueError, match="activations"):
        distinct_codes(np.array([["a", "b"]]))


def test_docstring_examples():
    result = doctest.testmod(ibtheory.estimators.codes)
    assert result.attempted > 0 and result.failed == 0
