"""The estimator registry: a registered estimator reaches training, the comparison with the bound, the figures and
the command line without any other module naming it; measure() is the estimators' own functions; bad declarations
are refused with messages that name what clashed."""

import doctest
from contextlib import contextmanager

import numpy as np
import pytest
from numpy.testing import assert_array_equal

from ibtheory import compare, nets, store, tasks
from ibtheory.cli import main
from ibtheory.estimators import (
    ESTIMATORS,
    Extra,
    LayerEstimator,
    Plane,
    binned_information,
    ensemble_information,
    kde_information,
    measure,
    register,
    unregister,
)
from ibtheory.estimators import registry as registry_module
from ibtheory.estimators.registry import check_names, plane, plane_names, planes_in
from ibtheory.ib import curve_value, ib_curve
from ibtheory.nets.conv import conv_estimators
from ibtheory.plots.plane import plot_plane
from ibtheory.runner.kinds import get_kind

#: Toys: binning and the ensemble estimator again under other names, with only n_bins taken from training (so the
#: recorded values must equal the built-ins' at the same n_bins and the default limits).
TOY = LayerEstimator("toy", binned_information, (Plane("toy", "_toy", label="binning again"),), options=("n_bins",),
                     extras=(Extra("n_states", "n_states_toy"),))
TOY_POOLED = LayerEstimator("toy_pooled", ensemble_information, (Plane("toy_pooled", "_toy_pooled"),),
                            options=("n_bins",), pools_repeats=True)


@contextmanager
def _registered(*estimators: LayerEstimator):
    for est in estimators:
        register(est)
    try:
        yield
    finally:
        for est in estimators:
            unregister(est.name)


@pytest.fixture
def toys():
    """The toys registered for one test only (the other tests see the built-in estimators alone)."""
    with _registered(TOY, TOY_POOLED):
        yield


@pytest.fixture(scope="module")
def task():
    return tasks.gaussian_discretized(0.8, 16, 4)  # 16 patterns: every estimator (KDE too) costs milliseconds


@pytest.fixture(scope="module")
def toy_run(task):
    with _registered(TOY, TOY_POOLED):
        return nets.train(task, hidden=(3,), repeats=2, epochs=3, snapshots=3, n_bins=4, keep_activations=True,
                          estimators=("binning", "ensemble", "toy", "toy_pooled"), progress=False)


def test_train_records_a_registered_estimator_under_its_variables(toys, toy_run, task):
    run = toy_run
    assert run.attrs["estimators"] == "binning,ensemble,toy,toy_pooled"
    for toy, builtin, dims in (("_toy", "", ("epoch", "layer", "repeat")), ("_toy_pooled", "_ensemble",
                                                                           ("epoch", "layer"))):
        for v in ("I_XT", "I_TY"):
            assert run[f"{v}{toy}"].dims == dims and run[f"{v}{toy}"].attrs == {"units": "bits"}
            assert_array_equal(run[f"{v}{toy}"].values, run[f"{v}{builtin}"].values, err_msg=f"{v}{toy}")
    assert_array_equal(run["n_states_toy"].values, run["n_states"].values)
    assert run["n_states_toy"].attrs == {"units": "1"}
    # and against the estimator called directly on the kept activations (layer 1, its 3 real units)
    acts = run["activations"].isel(epoch=-1, layer=0).values[..., :3]
    p_x, p_yx = tasks.conditional(task["p_xy"].values)
    direct = binned_information(acts, p_x, p_yx, n_bins=4)
    assert_array_equal(run["I_XT_toy"].isel(epoch=-1, layer=0).values, direct.I_XT)
    assert get_kind("train").check("estimators", ["toy"]) == ["toy"], "grids take it too"
    assert conv_estimators() == ("binning", "ensemble", "codes", "toy", "toy_pooled"), "it takes no option conv lacks"


def test_against_bound_compares_a_registered_estimator(toys, toy_run, task):
    curve = ib_curve(task["p_xy"].values, betas=np.geomspace(0.5, 50.0, 6))
    comp = compare.against_bound(toy_run.drop_vars("activations"), curve)
    for toy, builtin in (("_toy", ""), ("_toy_pooled", "_ensemble")):
        for gap in ("relevance_gap", "compression_gap"):
            assert_array_equal(comp[f"{gap}{toy}"].values, comp[f"{gap}{builtin}"].values, err_msg=f"{gap}{toy}")
    # the gap is the curve's value at the point minus the point's I(T;Y) (ib.curve_value, another path)
    ixt, ity = toy_run["I_XT_toy"].values, toy_run["I_TY_toy"].values
    want = curve_value(curve, ixt.ravel()).reshape(ixt.shape) - ity
    np.testing.assert_allclose(comp["relevance_gap_toy"].values, want, rtol=0, atol=1e-12)


def test_the_plane_plot_and_the_cli_draw_a_registered_estimator(toys, toy_run, tmp_path):
    assert {"toy", "toy_pooled"} <= set(plane_names())
    for name, mean_over_repeats in (("toy", True), ("toy_pooled", False)):
        fig = plot_plane(toy_run, name)
        ax = fig.axes[0]
        assert name in ax.get_title()
        x, y = (toy_run[v] for v in plane(name).variables)
        if mean_over_repeats:
            x, y = x.mean("repeat"), y.mean("repeat")
        for j, coll in enumerate(ax.collections):  # one scatter per layer, points over epochs
            assert_array_equal(coll.get_offsets(), np.column_stack([x.isel(layer=j), y.isel(layer=j)]))
    run_nc = store.save(toy_run, tmp_path / "run.nc")
    assert main(["plane", str(run_nc), "--out", str(tmp_path / "toy.png"), "--estimator", "toy"]) == 0
    assert (tmp_path / "toy.png").stat().st_size > 0


def test_measure_is_the_estimators_own_functions():
    rng = np.random.default_rng(0)
    layers = [np.tanh(rng.standard_normal((3, 12, w))) for w in (4, 2)]  # 3 networks, 12 patterns
    p_x = np.full(12, 1 / 12)
    p_yx = rng.dirichlet(np.ones(3), size=12)
    out = measure(["ensemble", "kde", "binning"], layers, p_x, p_yx, n_bins=5, limits=(-1, 1), scheme="mass",
                  noise_var=0.3)
    assert list(out) == ["I_XT", "I_TY", "n_states", "I_XT_kde_upper", "I_XT_kde_lower", "I_TY_kde_upper",
                         "I_TY_kde_lower", "I_XT_ensemble", "I_TY_ensemble"], "registry order, planes then extras"
    for j, a in enumerate(layers):
        b = binned_information(a, p_x, p_yx, n_bins=5, limits=(-1, 1), scheme="mass")
        k = kde_information(a, p_x, p_yx, noise_var=0.3)
        e = ensemble_information(a, p_x, p_yx, n_bins=5, scheme="mass")
        for var, value in (("I_XT", b.I_XT), ("n_states", b.n_states), ("I_TY_kde_lower", k.I_TY_lower),
                           ("I_XT_ensemble", e.I_XT)):
            assert_array_equal(out[var][j], value, err_msg=var)
    assert out["I_XT"].shape == (2, 3) and out["I_XT_ensemble"].shape == (2,)


def test_names_and_planes_resolve_through_the_registry():
    assert tuple(ESTIMATORS) == ("binning", "kde", "ensemble", "codes")
    assert plane("kde") is plane("kde_upper") and plane("kde").variables == ("I_XT_kde_upper", "I_TY_kde_upper")
    assert plane("binning").variables == ("I_XT", "I_TY")
    assert [p.name for p in planes_in({"I_XT", "I_TY", "I_XT_ensemble"})] == ["binning"], "both variables needed"
    assert check_names("kde") == ("kde",) and check_names(["binning", "binning"]) == ("binning",)
    assert ESTIMATORS["binning"]([[-0.5], [0.5]], [0.5, 0.5], [[1, 0], [0, 1]], n_bins=2).I_XT == 1.0


@pytest.mark.parametrize("call, match", [
    (lambda: check_names([]),
     r"estimators must be a non-empty subset of \('binning', 'kde', 'ensemble', 'codes'\), got \[\]"),
    (lambda: check_names(["binning", "ksg"]), r"estimators must be a non-empty subset .*got \['binning', 'ksg'\]"),
    (lambda: check_names(["kde"], allowed=("binning",)), r"subset of \('binning',\), got \['kde'\]"),
    (lambda: plane("nope"),
     r"estimator must be one of \['binning', 'codes', 'ensemble', 'kde', 'kde_lower', 'kde_upper'\]"),
    (lambda: unregister("nope"), "no estimator named 'nope'"),
    (lambda: register(LayerEstimator("binning", binned_information, (Plane("b2", "_b2"),))),
     "an estimator named 'binning' is registered already"),
    (lambda: register(LayerEstimator("b2", binned_information, (Plane("kde_upper", "_b2"),))),
     r"the name\(s\) \['kde_upper'\] belong to 'kde'"),
    (lambda: register(LayerEstimator("b2", binned_information, (Plane("b2", "_ensemble"),))),
     r"run variable\(s\) \['I_TY_ensemble', 'I_XT_ensemble'\] are recorded by 'ensemble'"),
    (lambda: LayerEstimator("b2", binned_information, (Plane("b2", "_b2"),), options=("bins",)),
     r"options must be drawn from \('n_bins', 'limits', 'scheme', 'bin_width', 'anchor', 'labels', 'label_seed', "
     r"'noise_var'\), got \('bins',\)"),
    (lambda: LayerEstimator("b2", binned_information, (Plane("b2", "_b2"),), pools_repeats=1),
     "pools_repeats must be True or False, got 1"),
    (lambda: LayerEstimator("b2", binned_information, ()), "must record at least one plane"),
    (lambda: LayerEstimator("b2", "binned_information", (Plane("b2", "_b2"),)), "function must be callable"),
    (lambda: Plane("b2", "b2"), "suffix must be '' or like '_name', got 'b2'"),
    (lambda: Plane("two words", "_b2"), "plane name must be an identifier"),
    (lambda: Extra("n states", "n_states_b2"), "extra field must be an identifier, got 'n states'"),
    (lambda: measure(["binning"], [], [1.0], [[1.0]], bins=3), r"options \['bins'\] are not measuring options"),
])
def test_bad_declarations_and_names_are_refused_naming_them(call, match):
    with pytest.raises(ValueError, match=match):
        call()
    assert tuple(ESTIMATORS) == ("binning", "kde", "ensemble", "codes"), "a refused registration changes nothing"


def test_trainers_and_the_runner_refuse_an_unknown_estimator():
    with pytest.raises(ValueError,
                       match=r"estimators must be a non-empty subset of \('binning', 'kde', 'ensemble', 'codes'\)"):
        nets.train(tasks.binary_symmetric(0.1), estimators=("binning", "toy"), epochs=1, repeats=1)
    with pytest.raises(ValueError, match=r"field 'estimators' must be a non-empty list drawn from \['binning', 'kde'"):
        get_kind("train").check("estimators", ["toy"])
    assert conv_estimators() == ("binning", "ensemble", "codes"), "conv runs have no noise_var: no kde"


def test_docstring_examples_run():
    for module in (registry_module,):
        result = doctest.testmod(module)
        assert result.failed == 0 and result.attempted > 0, f"{module.__name__}: {result}"
    assert "coarse" not in ESTIMATORS, "the docstring's example unregisters its estimator"
