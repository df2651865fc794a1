"""compare: IB solutions fed back as layers sit on the bound and satisfy the IB equations; other encoders do not."""

import re

import numpy as np
import pytest
import scipy.sparse as sp
from numpy.testing import assert_allclose, assert_array_equal
from scipy.special import xlogy

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
    _assert_mismatch_equals_brute_force(small_run, res)
    # the rebuilt binned encoder reproduces the run's own binning estimate
    last = small_run["epoch"].values[-1]
    assert_allclose(res["I_XT_sc"].sel(sc_epoch=last).values, small_run["I_XT"].sel(epoch=last).values, atol=1e-9)
    assert_allclose(res["I_TY_sc"].sel(sc_epoch=last).values, small_run["I_TY"].sel(epoch=last).values, atol=1e-9)
    assert res["relevance_gap_ensemble"].dims == ("epoch", "layer")


def _assert_mismatch_equals_brute_force(run, res):
    """The reported M(beta*) of the binned and merged encoders equals sum_x p(x) KL[p(t|x) || q_beta*(t|x)] summed
    term by term over the dense encoder (the code evaluates I + beta E[d] + E[ln Z] on pooled decoders and clamps at
    0: a sign or pooling error shows here, a clamp cannot hide it).  The last two layers (few occupied states)."""
    p_xy = run["p_xy"].values
    last = run["epoch"].values[-1]
    widths = run["width"].values
    for j, lay in enumerate(run["layer"].values[-2:], start=run.sizes["layer"] - 2):
        acts = run["activations"].sel(epoch=last, layer=lay).values[..., : int(widths[j])].astype(np.float64)
        for k in range(run.sizes["repeat"]):
            enc = compare.binned_encoder(acts[k])
            layer = compare.layer_encoder(p_xy, enc)
            merged = compare.merge_equal_decoders(layer.encoder, layer.decoder)
            for key, table in (("", enc), ("_merged", merged)):
                dense = table.toarray()
                dense = dense[:, dense.sum(0) > 0]
                beta = float(res[f"beta_star{key}"].sel(sc_epoch=last).values[j, k])
                got = float(res[f"mismatch{key}"].sel(sc_epoch=last).values[j, k])
                assert_allclose(got, _dense_mismatch(p_xy, dense, beta), atol=1e-9,
                                err_msg=f"mismatch{key}, layer {lay}, repeat {k}, beta* {beta}")


def _dense_mismatch(p_xy: np.ndarray, enc: np.ndarray, beta: float) -> float:
    """M(beta) = sum_x p(x) KL[p(t|x) || p(t) exp(-beta d(x,t)) / Z(x)] in bits, d(x,t) = KL[p(y|x) || p(y|t)],
    from dense tables, vectorised over (x, t, y) (0 log 0 = 0; d = inf where p(y|t) = 0 < p(y|x))."""
    p_x = p_xy.sum(1)
    p_y_x = p_xy / p_x[:, None]
    p_t = p_x @ enc
    dec = (enc * p_x[:, None]).T @ p_y_x / p_t[:, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = xlogy(p_y_x[:, None, :], p_y_x[:, None, :]) - np.where(
            p_y_x[:, None, :] > 0, p_y_x[:, None, :] * np.log(dec[None, :, :]), 0.0)
    d = terms.sum(-1)
    log_q = np.log(p_t)[None, :] - beta * d
    log_q -= np.logaddexp.reduce(log_q, axis=1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        kl = np.where(enc > 0, enc * (np.log(enc) - log_q), 0.0).sum(1)
    return float(p_x @ kl / np.log(2))


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


@pytest.mark.parametrize("kwargs, match", [
    (dict(curve=None), "curve must be an xarray Dataset from ibtheory.ib.ib_curve"),
    (dict(run=None), "run must be an xarray Dataset from ibtheory.nets.train"),
    (dict(epochs=4), r"epochs \[4\] are not snapshot epochs of the run; its \d+ snapshot epochs are 0, "),
    (dict(epochs=[1.5]), "epochs must be an integer, got 1.5"),
    (dict(epochs=None), "epochs must be an integer, got None"),
    (dict(epochs=[]), "epochs must name at least one"),
    (dict(epochs="first"), "epochs must be 'last', 'all'"),
    (dict(n_bins="a"), "n_bins must be an integer, got 'a'"),
    (dict(seed=-1), "seed must be an integer >= 0"),
    (dict(seed=1.5), "seed must be an integer"),
    (dict(n_draws=0), "n_draws must be an integer >= 1"),
    (dict(noise_var=np.float64(np.nan)), r"noise_var must be a finite number, got nan$"),
    (dict(beta_range=(5.0, 1.0)), "beta_range must have beta_min < beta_max"),
    (dict(beta_range=5.0), "beta_range must be a pair"),
])
def test_against_bound_bad_arguments_name_the_argument(small_run, soft_curve, kwargs, match):
    args = dict(run=small_run, curve=soft_curve, n_draws=2)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        compare.against_bound(**args)


def test_against_bound_takes_numpy_scalars_and_a_single_epoch(small_run, soft_curve):
    last = int(small_run["epoch"].values[-1])
    res = compare.against_bound(small_run, soft_curve, epochs=np.int64(last), noise_var=np.float32(0.1),
                                n_draws=np.int64(2), seed=np.int64(1))
    assert res["sc_epoch"].values.tolist() == [last]


def _brute_mismatch(problem, enc: np.ndarray, beta: float) -> float:
    """M(beta) from the dense tables, term by term (bits)."""
    p_x = problem.sum(1)
    p_y_x = problem / p_x[:, None]
    p_t = p_x @ enc
    dec = (enc * p_x[:, None]).T @ p_y_x / p_t[:, None]
    d = np.array([[np.sum(p_y_x[x] * np.log(p_y_x[x] / dec[t])) for t in range(enc.shape[1])]
                  for x in range(enc.shape[0])])
    q = p_t[None, :] * np.exp(-beta * d)
    q /= q.sum(1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        kl = np.where(enc > 0, enc * np.log(enc / q), 0.0).sum(1)
    return float(p_x @ kl / np.log(2))


def test_mismatch_with_repeated_decoders_equals_brute_force(problem):
    # x 4 and 5 have equal p(y|x): the identity encoder has two states with one decoder, which the fit pools
    # a random encoder with every state split in two copies (same decoder); a random one without repeats
    rng = np.random.default_rng(11)
    split = rng.dirichlet(np.ones(3), size=6)
    for enc in (np.eye(6), np.hstack([0.3 * split, 0.7 * split]), rng.dirichlet(np.ones(4), size=6)):
        layer = compare.layer_encoder(problem, enc)
        betas = np.geomspace(0.05, 200, 60)
        brute = np.array([_brute_mismatch(problem, enc, b) for b in betas])
        assert_allclose([compare.mismatch(layer, b) for b in betas], brute, atol=1e-10)
        fit = compare.self_consistency(layer, 0.05, 200)
        assert fit.mismatch <= brute.min() + 1e-12, "beta* must minimise M over the grid too"
        assert_allclose(fit.mismatch, _brute_mismatch(problem, enc, fit.beta_star), atol=1e-10)


def test_against_bound_rejects_a_row_permuted_task(small_run, soft_curve):
    """p(x,y) with its rows permuted has the same n_x and I(X;Y): the tables (or the curve's Markov chains) differ."""
    from ibtheory.info import mutual_information

    p = small_run["p_xy"].values
    perm = np.random.default_rng(0).permutation(p.shape[0])
    assert_allclose(mutual_information(p[perm]), mutual_information(p), atol=1e-12)
    permuted = small_run.drop_vars("activations").copy()
    permuted["p_xy"] = (("x", "y"), p[perm])
    # the curve without p_xy (as `ibtheory curve` writes it): its solutions are not Markov chains of the run's task
    with pytest.raises(ValueError, match=r"different tasks.*I\(X;Y\)|Markov"):
        compare.against_bound(permuted, soft_curve)
    # a curve that carries the task's table: the tables are compared
    with_table = soft_curve.assign(p_xy=(("x", "y"), p))
    with pytest.raises(ValueError, match=r"run\['p_xy'\] and curve\['p_xy'\] differ"):
        compare.against_bound(permuted, with_table)
    # the same task passes both checks
    ok = compare.against_bound(small_run.drop_vars("activations"), with_table)
    assert np.all(ok["relevance_gap"].values >= -1e-6)
    compare.against_bound(small_run.drop_vars("activations"), soft_curve)


def test_noisy_and_merged_gaps_and_summary(small_run, soft_curve):
    res = compare.against_bound(small_run, soft_curve, n_draws=4, seed=1)
    for key in ("_noisy", "_merged"):
        gap = res[f"relevance_gap{key}"]
        assert gap.dims == ("sc_epoch", "layer", "repeat") and gap.attrs["units"] == "bits"
        # any proper encoder (the sampled noisy one included) lies under the curve, up to its discretisation
        assert np.all(gap.values >= -1e-6) and np.all(res[f"compression_gap{key}"].values >= -1e-6)
        assert_allclose(res[f"relevance_gap{key}"].values,
                        compare.bound_gaps(soft_curve, res[f"I_XT_sc{key}"].values,
                                           res[f"I_TY_sc{key}"].values)["relevance_gap"])
    # merging equal decoders keeps I(T;Y) and cannot raise I(X;T)
    assert_allclose(res["I_TY_sc_merged"].values, res["I_TY_sc"].values, atol=1e-12)
    assert np.all(res["I_XT_sc_merged"].values <= res["I_XT_sc"].values + 1e-12)
    summ = compare.final_summary(res)
    b = res["beta_star_noisy"].isel(sc_epoch=-1).values
    assert_allclose(summ["log10_beta_star_noisy_mean"].values, np.log10(b).mean(axis=1))
    assert_allclose(summ["log10_beta_star_noisy_std"].values, np.log10(b).std(axis=1))
    assert_allclose(summ["beta_star_noisy_mean"].values, np.exp(np.log(b).mean(axis=1)), rtol=1e-12)
    m = res["mismatch_noisy"].isel(sc_epoch=-1).values
    assert_allclose(summ["mismatch_noisy_mean"].values, m.mean(1))
    assert_allclose(summ["mismatch_noisy_std"].values, m.std(1))
    # the figure's legend gives the same beta* as the summary (geometric mean over repeats)
    import matplotlib

    matplotlib.use("Agg")
    from ibtheory.plots.compare import plot_layers_on_curve

    fig = plot_layers_on_curve(res, soft_curve, estimator="_noisy")
    labels = fig.axes[0].get_legend_handles_labels()[1]
    for lay, mean in zip(res["layer"].values, summ["log10_beta_star_noisy_mean"].values, strict=True):
        label = next(t for t in labels if t.startswith(f"layer {lay}:"))
        shown = float(re.search(r"β\*[=≥≤]([0-9.e+-]+)", label).group(1))
        assert_allclose(shown, 10 ** mean, rtol=5e-3, err_msg=label)


def test_compare_cli_end_to_end(tmp_path, capsys):
    from ibtheory import store
    from ibtheory.cli import main

    run_nc, curve_nc, out = tmp_path / "run.nc", tmp_path / "curve.nc", tmp_path / "cmp"
    assert main(["train", "--gamma", "19.05", "--hidden", "5-3", "--repeats", "2", "--epochs", "20",
                 "--snapshots", "3", "--keep-activations", "--no-progress", "--out", str(run_nc)]) == 0
    assert main(["curve", "--task", "tishby", "--gamma", "19.05", "--n-betas", "30", "--out", str(curve_nc)]) == 0
    capsys.readouterr()
    assert main(["compare", str(run_nc), str(curve_nc), "--out", str(out), "--n-draws", "4"]) == 0
    printed = capsys.readouterr().out
    ds = store.load(out / "compare.nc")
    for name in ("relevance_gap", "compression_gap", "relevance_gap_noisy", "compression_gap_noisy", "mismatch",
                 "mismatch_merged", "mismatch_noisy", "I_XT", "I_TY", "I_XT_sc_noisy", "I_TY_sc_noisy"):
        assert name in ds, f"compare.nc lacks {name}"
        assert ds[name].attrs.get("units") == "bits", f"{name} has no units bits"
    for name in ("relevance_gap", "compression_gap", "relevance_gap_noisy", "compression_gap_noisy"):
        assert np.all(ds[name].values >= -1e-6), f"{name} below the bound"
    assert set(ds["beta_star_noisy"].dims) == {"sc_epoch", "layer", "repeat"}
    for png in (out / "compare.png", out / "compare_gaps.png"):
        assert png.is_file() and png.stat().st_size > 10_000, png
    assert printed.count("noisy layer") == ds.sizes["layer"] and printed.count("binning") >= ds.sizes["layer"]
    # a curve of another task is refused (exit status 2, the reason on stderr), nothing written
    hard_nc = tmp_path / "hard.nc"
    assert main(["curve", "--task", "tishby", "--n-betas", "10", "--out", str(hard_nc)]) == 0
    capsys.readouterr()
    assert main(["compare", str(run_nc), str(hard_nc), "--out", str(tmp_path / "bad.nc")]) == 2
    assert "different tasks" in capsys.readouterr().err
    assert not (tmp_path / "bad.nc").exists()


def test_plot_training_sizes_writes_one_panel_per_size(small_run, soft_curve, tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    from ibtheory.plots.compare import plot_training_sizes

    comps = {f"{p} %": compare.against_bound(small_run.drop_vars("activations").isel(repeat=slice(0, k)),
                                             soft_curve) for p, k in ((5, 1), (45, 2), (85, 3))}
    fig = plot_training_sizes(comps, soft_curve)
    axes = [ax for ax in fig.axes if ax.get_title()]
    assert [ax.get_title() for ax in axes] == ["training set 5 %", "training set 45 %", "training set 85 %"]
    for ax in axes:
        assert "[bits]" in ax.get_xlabel() and "[bits]" in ax.get_ylabel()
        assert ax.get_legend() is not None
    path = tmp_path / "sizes.png"
    fig.savefig(path, dpi=60)
    assert path.is_file() and path.stat().st_size > 5_000
    with pytest.raises(ValueError, match="comparisons"):
        plot_training_sizes({}, soft_curve)


def test_task_tables_are_the_ib_reduction_with_supports_split():
    # rows 0 and 2 agree to 12 decimals, but row 2 has a 1e-13 tail where row 0 is exactly 0: d(x, t) to a decoder
    # without that y is infinite for row 2 only, so they must be separate classes; row 3 has p(x) = 0
    p = np.array([[0.25, 0.25, 0.0], [0.1, 0.1, 0.3], [0.25, 0.25 - 1e-13, 1e-13], [0.0, 0.0, 0.0]])
    p /= p.sum()
    tab = compare.task_tables(p)
    red = ib.reduce(p, split_support=True)
    assert isinstance(tab.reduced, ib.Reduced)
    assert_array_equal(tab.classes, red.classes)
    assert tab.classes[3] == -1 and len(set(tab.classes[:3].tolist())) == 3
    assert_allclose(tab.p_c, red.p_s)
    assert_allclose(tab.p_y_c, red.W)
    layer = compare.layer_encoder(tab, np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [0.5, 0.5]]))
    d = layer.distortion[tab.classes[[0, 2]], 0]  # decoder of t = 0: p(y|t) = mean of rows 0 and 2, y = 2 tiny
    rows = p[[0, 2]] / p[[0, 2]].sum(axis=1, keepdims=True)
    brute = [sum(r[y] * np.log(r[y] / layer.decoder[0, y]) for y in range(3) if r[y] > 0) for r in rows]
    assert np.all(np.isfinite(d))
    assert_allclose(d, brute, atol=1e-14)


def test_a_pattern_of_probability_1e_170_keeps_the_layer_information_finite():
    t = np.diag([0.5, 0.5, 1e-170])
    layer = compare.layer_encoder(t / t.sum(), np.eye(3))
    assert_allclose([layer.I_XT, layer.I_TY], [1.0, 1.0], atol=1e-15)  # was I(X;T) = inf (p(x) p(t) = 1e-340)


@pytest.mark.parametrize("call, match", [
    (lambda layer: compare.mismatch(layer, "1"), r"^beta must be a real number, got '1' \(str\)"),
    (lambda layer: compare.mismatch(layer, np.nan), r"^beta must be a finite number, got nan"),
    (lambda layer: compare.self_consistency(layer, beta_min="1"), r"^beta_min must be a real number"),
    (lambda layer: compare.self_consistency(layer, beta_min=0.0), r"^beta_min must be > 0, got 0\.0"),
    (lambda layer: compare.self_consistency(layer, beta_max=np.inf), r"^beta_max must be a finite number"),
    (lambda layer: compare.self_consistency(layer, 10.0, 1.0), r"^beta_max must be greater than beta_min, got "
                                                              r"beta_min=10\.0, beta_max=1\.0"),
    (lambda layer: compare.self_consistency(layer, xtol=-1.0), r"^xtol must be > 0"),
    (lambda layer: compare.noisy_encoder(np.zeros((3, 2)), sigma="0.1"), r"^sigma must be a real number"),
    (lambda layer: compare.noisy_encoder(np.zeros((3, 2)), n_draws=2.5), r"^n_draws must be an integer"),
])
def test_beta_and_scalar_arguments_are_checked_by_the_shared_validators(problem, call, match):
    layer = compare.layer_encoder(problem, np.eye(6))
    with pytest.raises(ValueError, match=match):
        call(layer)
    fit = compare.self_consistency(layer, np.float32(1e-3), np.int64(10**5))  # numpy scalars accepted
    assert fit.beta_star > 0
