"""Strategies and laws of ibtheory.testing: valid tables, exact information of the laws, chains obey the DPI."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose

from ibtheory.info import mutual_information
from ibtheory.testing import strategies as S
from ibtheory.testing.laws import (
    DiscreteLaw,
    GaussianLaw,
    LayerLaw,
    NoisyChannelLaw,
    Processing,
    Swapped,
    gaussian_mi_bits,
    noisy_channel_mi_bits,
)

FAST = settings(max_examples=25, derandomize=True, deadline=None, database=None)


@FAST
@given(S.joint_distributions())
def test_joint_distributions_are_valid_tables(p):
    assert p.ndim == 2 and np.all(p >= 0)
    assert_allclose(p.sum(), 1.0, atol=1e-12, err_msg="table must sum to 1 within 1e-12")
    nonzero = p[p > 0]
    assert nonzero.size == 0 or nonzero.min() >= 1e-300, "no subnormal cells"


@FAST
@given(S.joint_distributions(kind="independent"))
def test_independent_tables_have_zero_information(p):
    assert_allclose(mutual_information(p), 0.0, atol=1e-9, err_msg="outer product must give I = 0 within 1e-9")


@FAST
@given(S.joint_distributions(kind="deterministic"))
def test_deterministic_tables_have_one_hot_rows(p):
    assert np.all((p > 0).sum(axis=1) <= 1)


@FAST
@given(S.markov_chains())
def test_markov_chains_obey_data_processing(chain):
    p_x, t1_x, t2_t1 = chain
    assert_allclose(t1_x.sum(axis=1), 1.0, atol=1e-12)
    assert_allclose(t2_t1.sum(axis=1), 1.0, atol=1e-12)
    i1 = mutual_information(p_x[:, None] * t1_x)
    i2 = mutual_information(p_x[:, None] * (t1_x @ t2_t1))
    assert i2 <= i1 + 1e-9, f"I(X;T2) = {i2} > I(X;T1) = {i1} (tolerance 1e-9 bits)"


def test_gaussian_law_matches_closed_form_and_sample_correlation():
    law = GaussianLaw(np.array([0.6, -0.3]))
    assert_allclose(law.mi, -0.5 * (np.log2(1 - 0.36) + np.log2(1 - 0.09)), rtol=1e-12)
    s = law.sample(20000, seed=1)
    corr = [np.corrcoef(s.x[:, i], s.y[:, i])[0, 1] for i in range(2)]
    assert_allclose(corr, [0.6, -0.3], atol=0.03, err_msg="sample correlations within 0.03 of rho")
    assert_allclose(gaussian_mi_bits(np.sqrt([0.75])), 1.0, rtol=1e-12)


def test_noisy_channel_quadrature_limits():
    # well separated means: I = H(Y); equal means: I = 0; binary +-1 with sigma: compare with a fine Monte Carlo
    assert_allclose(noisy_channel_mi_bits(np.array([0.25, 0.75]), np.array([-40.0, 40.0]), 1.0),
                    -(0.25 * np.log2(0.25) + 0.75 * np.log2(0.75)), atol=1e-9)
    assert_allclose(noisy_channel_mi_bits(np.array([0.5, 0.5]), np.array([0.3, 0.3]), 0.7), 0.0, atol=1e-9)
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 400000)
    u = np.where(y == 1, 1.0, -1.0) + rng.standard_normal(y.size)
    log_like = -0.5 * (u[:, None] - np.array([-1.0, 1.0])) ** 2
    post = np.exp(log_like - np.logaddexp.reduce(log_like, axis=1, keepdims=True))
    mc = 1 + np.mean(np.log2(post[np.arange(y.size), y]))
    exact = noisy_channel_mi_bits(np.array([0.5, 0.5]), np.array([-1.0, 1.0]), 1.0)
    assert_allclose(exact, mc, atol=0.005, err_msg="quadrature vs Monte Carlo (400k draws) within 0.005 bits")


def test_layer_law_information_is_that_of_the_merged_patterns():
    # 2 bits, one unit with weights (1, 1): patterns 01 and 10 give the same activation and are merged
    p_xy = np.array([[0.25, 0.0], [0.0, 0.25], [0.25, 0.0], [0.0, 0.25]])
    law = LayerLaw(p_xy, np.array([[1.0], [1.0]]), np.array([0.0]))
    merged = np.array([[0.25, 0.0], [0.25, 0.25], [0.0, 0.25]])
    assert_allclose(law.mi, mutual_information(merged), rtol=1e-12)
    s = law.sample(500, seed=3)
    assert s.x.shape == (500, 1) and s.y.shape == (500, 1)
    assert np.unique(s.x).size == 3
    assert LayerLaw(p_xy, np.array([[1.0], [1.0]]), np.array([0.0]), noise=0.1).mi is None


def test_discrete_law_sampling_is_seeded_and_frequencies_converge():
    p = np.array([[0.1, 0.2], [0.3, 0.4]])
    law = DiscreteLaw(p)
    a, b = law.sample(50000, seed=5), law.sample(50000, seed=5)
    np.testing.assert_array_equal(a.x, b.x)
    freq = np.zeros((2, 2))
    np.add.at(freq, (a.x[:, 0], a.y[:, 0]), 1 / 50000)
    assert_allclose(freq, p, atol=0.01, err_msg="empirical frequencies within 0.01 of p")
    swapped = Swapped(law).sample(10, seed=5)
    np.testing.assert_array_equal(swapped.x, law.sample(10, seed=5).y)


def test_noisy_channel_law_sample_shapes_and_range():
    s = NoisyChannelLaw(np.array([0.5, 0.5]), np.array([-1.0, 1.0]), 0.5).sample(100, seed=0)
    assert s.x.shape == (100, 1) and np.all(np.abs(s.x) < 1)


@FAST
@given(S.laws_for("continuous", "discrete"), S.seeds(), S.processings("continuous"))
def test_layer_processing_is_a_deterministic_next_layer(law, seed, g):
    s = law.sample(50, seed)
    np.testing.assert_array_equal(g(s.x, 0), g(s.x, 1))
    assert g(s.x, 0).shape[0] == 50


@FAST
@given(st.sampled_from(["affine", "nonlinear"]).flatmap(S.monotone_transforms))
def test_monotone_transforms_are_strictly_increasing(g):
    v = np.linspace(-3, 3, 1001)
    assert np.all(np.diff(g(v)) > 0), f"{g!r} is not strictly increasing"


def test_processing_of_codes_merges_states():
    g = Processing(table=np.array([0, 0, 1]))
    np.testing.assert_array_equal(g(np.array([[5], [7], [9], [5]]), 0).ravel(), [0, 0, 1, 0])


@FAST
@given(S.chain_laws(deterministic=True), S.seeds())
def test_chain_samples_obey_data_processing_with_the_plugin(chain, seed):
    from ibtheory.estimators.plugin import plugin_mi

    x, t1, t2 = chain.sample(400, seed)
    i1, i2 = chain.mi
    assert i2 <= i1 + 1e-9, f"exact DPI: I(X;T2) = {i2} > I(X;T1) = {i1}"
    # deterministic channels: T2 is a function of T1 in every sample, so the plug-in obeys the DPI exactly
    assert plugin_mi(x, t2) <= plugin_mi(x, t1) + 1e-12


def test_chain_law_frequencies_converge():
    from ibtheory.testing.laws import ChainLaw

    chain = ChainLaw(np.array([0.3, 0.7]), np.array([[0.9, 0.1], [0.2, 0.8]]), np.array([[0.6, 0.4], [0.1, 0.9]]))
    x, t1, t2 = chain.sample(100000, seed=2)
    assert_allclose(np.mean(t1[x == 0] == 0), 0.9, atol=0.01, err_msg="p(t1=0|x=0) within 0.01")
    assert_allclose(np.mean(t2[t1 == 1] == 1), 0.9, atol=0.01, err_msg="p(t2=1|t1=1) within 0.01")
