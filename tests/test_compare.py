"""compare: IB solutions fed back as layers sit on the bound and satisfy the IB equations; other encoders do not."""

import numpy as np
import pytest
import scipy.sparse as sp
from numpy.testing import assert_allclose

from ibtheory import compare, ib, nets, tasks


@pytest.fixture(scope="module")
def problem():
    rng = np.random.default_rng(3)
    p = rng.dirichlet(np.ones(12)).reshape(6, 2)
    p[5] = p[4] = p[4].sum() / 2 * np.array([0.3, 0.7]) / 1.0  # two x with equal p(y|x)
    return p / p.sum()


@pytest.fixture(scope="module")
def curve(problem):
    return ib.ib_curve(problem, betas=np.geomspace(0.5, 200, 40))


def test_ib_solution_fed_back_is_on_the_bound_and_self_consistent(problem, curve):
    beta = float(curve["beta"].values[25])
    sol = ib.solve(problem, beta)
    layer = compare.layer_encoder(problem, sol.encoder)
    assert_allclose([layer.I_XT, layer.I_TY], [sol.I_XT, sol.I_TY], atol=1e-10)
    gaps = compare.bound_gaps(curve, [layer.I_XT], [layer.I_TY])
    assert_allclose(gaps["relevance_gap"], 0.0, atol=1e-7, err_msg="an IB solution lies on the curve")
    assert_allclose(gaps["compression_gap"], 0.0, atol=1e-6)
    assert gaps["upper_gap"][0] >= -1e-9
    fit = compare.self_consistency(layer)
    assert fit.mismatch < 1e-10, fit
    assert_allclose(fit.beta_star, beta, rtol=1e-6, err_msg="beta* recovers the solution's own beta")
    assert not fit.at_bound


def test_random_encoder_has_positive_gaps_and_mismatch(problem, curve):
    rng = np.random.default_rng(0)
    for n_t in (2, 3, 5):
        layer = compare.layer_encoder(problem, rng.dirichlet(np.ones(n_t), size=6))
        gaps = compare.bound_gaps(curve, [layer.I_XT], [layer.I_TY])
        assert gaps["relevance_gap"][0] > 1e-4 and gaps["compression_gap"][0] > 1e-4, gaps
        assert compare.self_consistency(layer).mismatch > 1e-4


def test_sufficient_statistic_encoder_is_the_top_of_the_curve(problem, curve):
    classes = tasks.sufficient_classes(problem)
    layer = compare.layer_encoder(problem, compare.encoder_from_codes(classes))
    assert_allclose(layer.I_TY, tasks.from_joint(problem).attrs["I_XY"], atol=1e-12)
    gaps = compare.bound_gaps(curve, [layer.I_XT], [layer.I_TY])
    assert_allclose(gaps["relevance_gap"], 0.0, atol=1e-9)
    assert_allclose(gaps["compression_gap"], 0.0, atol=1e-6)
    # the identity encoder, merged on equal decoders, becomes that encoder; it is the beta -> infinity solution
    ident = compare.layer_encoder(problem, np.eye(6))
    merged = compare.layer_encoder(problem, compare.merge_equal_decoders(ident.encoder, ident.decoder))
    assert_allclose(merged.I_XT, layer.I_XT, atol=1e-12)
    fit = compare.self_consistency(merged)
    assert fit.at_bound and fit.beta_star == 1e5 and fit.mismatch < 1e-9


def test_decoder_is_the_markov_decoder(problem):
    rng = np.random.default_rng(5)
    enc = rng.dirichlet(np.ones(4), size=6)
    layer = compare.layer_encoder(problem, enc)
    p_x = problem.sum(1)
    p_xt = p_x[:, None] * enc
    brute = np.einsum("xt,xy->ty", p_xt / p_xt.sum(0), problem / p_x[:, None])
    assert_allclose(layer.decoder, brute, atol=1e-14)
    assert_allclose(layer.decoder.sum(1), 1.0)


def test_mismatch_is_convex_and_minimised_at_beta_star(problem):
    rng = np.random.default_rng(7)
    layer = compare.layer_encoder(problem, rng.dirichlet(np.ones(3) * 0.3, size=6))
    betas = np.linspace(0.01, 30, 400)
    m = np.array([compare.mismatch(layer, b) for b in betas])
    assert np.all(np.diff(m, 2) >= -1e-12), "M(beta) must be convex"
    fit = compare.self_consistency(layer)
    assert m.min() >= fit.mismatch - 1e-12
    assert_allclose(compare.mismatch(layer, 0.0), layer.I_XT, atol=1e-12)


def test_encoders_from_activations():
    # two units, 4 patterns: binning merges patterns 0 and 1
    acts = np.array([[-0.9, 0.9], [-0.95, 0.95], [0.9, 0.9], [0.5, -0.5]])
    enc = compare.binned_encoder(acts, n_bins=2)
    assert enc.shape == (4, 3)
    assert_allclose(enc.toarray().sum(1), 1.0)
    ens = compare.ensemble_encoder(np.stack([acts, -acts]), n_bins=2)
    assert_allclose(ens.toarray().sum(1), 1.0)
    assert ens.toarray().max() == 0.5  # the two networks put every pattern in different bins
    noisy = compare.noisy_encoder(acts, sigma=1e-6, n_draws=8, n_bins=2)
    assert_allclose(noisy.toarray(), enc.toarray())  # vanishing noise gives the binned encoder back
    wide = compare.noisy_encoder(acts, sigma=0.5, n_draws=4000, n_bins=2, seed=1).toarray()
    assert wide.shape[1] == 4 and np.all(wide > 0)


def test_bad_inputs(problem, curve):
    with pytest.raises(ValueError, match="rows must sum to 1"):
        compare.layer_encoder(problem, np.full((6, 2), 0.3))
    with pytest.raises(ValueError, match="n_x"):
        compare.layer_encoder(problem, np.eye(5))
    with pytest.raises(ValueError, match="beta"):
        compare.mismatch(compare.layer_encoder(problem, np.eye(6)), -1.0)
    with pytest.raises(ValueError, match="codes"):
        compare.encoder_from_codes(np.array([0.5, 1.0]))
    with pytest.raises(ValueError, match="sigma"):
        compare.noisy_encoder(np.zeros((3, 2)), sigma=0.0)


@pytest.fixture(scope="module")
def small_run():
    task = tasks.tishby(gamma=tasks.TISHBY_SOFT_GAMMA)
    return nets.train(task, hidden=(5, 3), repeats=3, epochs=30, snapshots=4, keep_activations=True,
                      estimators=("binning", "ensemble"), progress=False, seed=2)


@pytest.fixture(scope="module")
def soft_curve():
    return ib.ib_curve(tasks.tishby(gamma=tasks.TISHBY_SOFT_GAMMA)["p_xy"].values, n_betas=40)


def test_against_bound_on_a_training_run(small_run, soft_curve):
    res = compare.against_bound(small_run, soft_curve, epochs="last", n_draws=4)
    assert set(res["relevance_gap"].dims) == {"epoch", "layer", "repeat"}
    assert np.all(res["relevance_gap"].values >= -1e-6), "binning with the exact p(y|x) cannot beat the bound"
    assert np.all(res["compression_gap"].values >= -1e-6)
    assert np.all(res["upper_gap"].values >= res["relevance_gap"].values - 1e-9)
    assert res["beta_star"].dims == ("sc_epoch", "layer", "repeat")
    assert np.all(res["mismatch"].values >= 0) and np.all(res["mismatch_merged"].values >= 0)
    # the rebuilt binned encoder reproduces the run's own binning estimate
    last = small_run["epoch"].values[-1]
    assert_allclose(res["I_XT_sc"].sel(sc_epoch=last).values, small_run["I_XT"].sel(epoch=last).values, atol=1e-9)
    assert_allclose(res["I_TY_sc"].sel(sc_epoch=last).values, small_run["I_TY"].sel(epoch=last).values, atol=1e-9)
    assert res["relevance_gap_ensemble"].dims == ("epoch", "layer")


def test_against_bound_rejects_mismatched_tasks(small_run, problem, curve, soft_curve):
    with pytest.raises(ValueError, match="different tasks"):
        compare.against_bound(small_run, curve)
    hard = small_run.copy()
    hard["p_xy"] = (("x", "y"), tasks.tishby()["p_xy"].values)
    with pytest.raises(ValueError, match="different tasks"):
        compare.against_bound(hard, soft_curve)
    with pytest.raises(ValueError, match="epochs"):
        compare.against_bound(small_run, soft_curve, epochs=[12345])
    with pytest.raises(ValueError, match="nets.train"):
        compare.against_bound(small_run.drop_vars("p_xy"), soft_curve)
    assert sp.issparse(compare.binned_encoder(np.zeros((4, 2))))
