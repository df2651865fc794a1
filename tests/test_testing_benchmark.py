"""The benchmark runner and the package estimators' forms for two continuous arguments (ibtheory.testing.benchmark).

The pair forms are compared with brute force (the KDE resubstitution formula, the plug-in of a histogram) and with
the package's own layer estimators (kde_information, binning through the layer adapter with binned y as labels).
"""

import math

import numpy as np
import pytest
from numpy.testing import assert_allclose

from ibtheory.estimators import binned_codes, kde_information
from ibtheory.info import mutual_information
from ibtheory.testing.adapters import package_estimators
from ibtheory.testing.benchmark import (
    benchmark_tasks,
    binned_pair_mi,
    kde_pair_mi,
    pair_estimators,
    pair_not_applicable,
    run_benchmark,
    standardise,
)
from ibtheory.testing.benchmark_laws import AdditiveUniformLaw, MultinormalLaw, StudentLaw, student_t_correction_bits


def _sample(seed=0, n=60, dx=2, dy=1):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, dx))
    return x, x[:, :dy] + 0.5 * rng.standard_normal((n, dy))


def _kde_brute(x, y, var):
    """(1/n) sum_i log2[p(x_i, y_i) / (p(x_i) p(y_i))] with Gaussian KDEs of variance var (kernels unnormalised:
    their constants cancel)."""
    def mix(v):
        d2 = ((v[:, None, :] - v[None, :, :]) ** 2).sum(-1)
        return np.exp(-d2 / (2 * var)).mean(axis=1)

    return np.mean(np.log2(mix(np.hstack([x, y])) / (mix(x) * mix(y))))


@pytest.mark.parametrize("var", [0.1, 0.01, 1.0])
def test_kde_pair_form_is_the_resubstitution_kde_estimate(var):
    x, y = _sample()
    assert_allclose(kde_pair_mi(x, y, var, "KL"), _kde_brute(x, y, var), atol=1e-10)
    assert_allclose(kde_pair_mi(x, y, var, "Bhattacharyya"), _kde_brute(x, y, 4 * var), atol=1e-10)


def test_kde_pair_form_is_kde_information_of_x_y_and_the_joint():
    """U(x) + U(y) - U(x, y) with U the I(X;T) bounds of kde_information (uniform p(x), one label)."""
    x, y = _sample(1, dx=1, dy=2)
    u = lambda v: kde_information(v, np.full(len(v), 1 / len(v)), np.ones((len(v), 1)), noise_var=0.1)  # noqa: E731
    ux, uy, uz = u(x), u(y), u(np.hstack([x, y]))
    assert_allclose(kde_pair_mi(x, y, 0.1), ux.I_XT_upper + uy.I_XT_upper - uz.I_XT_upper, atol=1e-10)
    assert_allclose(kde_pair_mi(x, y, 0.1, "Bhattacharyya"), ux.I_XT_lower + uy.I_XT_lower - uz.I_XT_lower,
                    atol=1e-10)


def test_binned_pair_form_is_the_histogram_and_the_layer_binning_with_binned_labels():
    x, y = _sample(2, n=400)
    bx, by = binned_codes(x, 10, (-1.0, 1.0)), binned_codes(y, 10, (-1.0, 1.0))
    table = np.zeros((bx.max() + 1, by.max() + 1))
    np.add.at(table, (bx, by), 1 / len(bx))
    assert_allclose(binned_pair_mi(x, y, 10, (-1.0, 1.0)), mutual_information(table), atol=1e-12)
    for name, est in pair_estimators().items():
        if name.startswith("binning"):
            opts = package_estimators()[name].options
            assert_allclose(est(x, y), package_estimators()[name](x, binned_codes(y, **opts)), atol=1e-12,
                            err_msg=name)


def test_every_package_estimator_has_a_pair_form_or_a_reason():
    forms, reasons = pair_estimators(), pair_not_applicable()
    assert set(forms) | set(reasons) == set(package_estimators()) and not set(forms) & set(reasons)
    assert {"KSG k=3", "KDE upper (KL), var 0.1", "KDE lower (Bhattacharyya), var 0.1"} <= set(forms)
    x, y = _sample(3)
    assert_allclose(forms["KDE lower (Bhattacharyya), var 0.1"](x, y), kde_pair_mi(x, y, 0.1, "Bhattacharyya"))
    assert_allclose(forms["noisy layer (KL), var 0.01"](x, y), kde_pair_mi(x, y, 0.01, "KL"))


def test_tasks_are_the_papers_with_known_mi():
    tasks = benchmark_tasks()
    assert len(tasks) == 39 and len({repr(t) for t in tasks.values()}) == 39
    assert all(math.isfinite(t.mi) and t.mi > 0 for t in tasks.values())
    assert_allclose(tasks["Normal 1 × 1"].mi, -0.5 * np.log2(1 - 0.75**2))
    assert_allclose(tasks["Additive noise ε = 0.1"].mi, (0.1 - np.log(0.2)) / np.log(2))
    assert_allclose(tasks["Student-t 5 × 5 (df = 2)"].mi, student_t_correction_bits(2, 5, 5))
    assert tasks["Spiral @ 25 × 25 (2-pair)"].mi == tasks["Normal 25 × 25 (2-pair)"].mi


def test_standardise():
    v = standardise(np.array([[1.0, 5.0], [3.0, 5.0], [8.0, 5.0]]))
    assert_allclose(v.mean(axis=0), 0, atol=1e-15)
    assert_allclose(v.std(axis=0), [1.0, 0.0])


def _const(value):
    def est(x, y):
        return value

    return est


def test_run_benchmark_records_the_papers_ratio_deterministically():
    tasks = {"a": AdditiveUniformLaw(0.75), "n": MultinormalLaw(2, 2, "dense", 0.5), "t": StudentLaw(1, 1, 2)}
    ests = {"KSG k=3": pair_estimators()["KSG k=3"], "half": lambda x, y: 0.5, "neg": _const(-0.1),
            "broken": _const(float("nan"))}
    ds = run_benchmark(ests, tasks, n=300, seeds=[0, 1])
    again = run_benchmark(ests, tasks, n=300, seeds=[0, 1])
    np.testing.assert_array_equal(ds.estimate.values, again.estimate.values)
    assert ds.estimate.dims == ("task", "estimator", "seed") and ds.attrs["n"] == 300
    true = np.array([t.mi for t in tasks.values()])
    assert_allclose(ds.true_mi, true)
    assert_allclose(ds.log2_ratio.sel(estimator="half"), np.log2(0.5 / true))
    ksg = ds.estimate.sel(estimator="KSG k=3").values
    with np.errstate(invalid="ignore"):  # a negative KSG estimate: log2 is NaN, and so is the mean ratio
        assert_allclose(ds.log2_ratio.sel(estimator="KSG k=3"), np.log2(ksg / true[:, None]).mean(axis=1))
    assert np.all(np.isnan(ds.log2_ratio.sel(estimator="neg"))) and np.all(ds.nonpositive.sel(estimator="neg") == 2)
    assert np.all(np.isnan(ds.estimate.sel(estimator="broken"))) and "nan" in str(ds.error.sel(estimator="broken",
                                                                                                 task="a").values)
    # the estimator saw standardised draws of law.sample(n, seed)
    seen = {}

    def spy(x, y):
        seen.setdefault("xy", (x, y))
        return 1.0

    run_benchmark({"spy": spy}, {"a": tasks["a"]}, n=50, seeds=[7])
    draw = tasks["a"].sample(50, 7)
    assert_allclose(seen["xy"][0], standardise(draw.x)) and assert_allclose(seen["xy"][1], standardise(draw.y))


@pytest.mark.parametrize("call, match", [
    (lambda: kde_pair_mi(*_sample(), 0.1, "JS"), "form"),
    (lambda: kde_pair_mi(*_sample(), 0.0), "noise_var"),
    (lambda: kde_pair_mi(np.zeros((5, 1)), np.zeros((4, 1))), "same n"),
    (lambda: kde_pair_mi(np.array([[np.nan]]), np.zeros((1, 1))), "finite"),
    (lambda: run_benchmark({}, {}, n=1), "n"),
    (lambda: run_benchmark({}, {}, seeds=[-1]), "seeds"),
])
def test_bad_arguments_are_named(call, match):
    with pytest.raises(ValueError, match=match):
        call()
