"""check_estimator on deliberately broken estimators, expected failures, warnings, validation, the pytest helper and
the command line (the package's own estimators: test_testing_package.py)."""

import json
import warnings

import numpy as np
import pytest

from ibtheory.cli import main
from ibtheory.estimators.ksg import ksg
from ibtheory.estimators.plugin import plugin_mi
from ibtheory.info import entropy
from ibtheory.testing import (
    EstimatorCheckError,
    EstimatorCheckWarning,
    check_estimator,
    estimator_tags,
    get_tags,
    parametrize_with_checks,
)


@estimator_tags("discrete", "discrete")
def negated_plugin(x, y):
    """Sign error: returns H(X,Y) - H(X) - H(Y) = -I."""
    return -plugin_mi(x, y)


@estimator_tags("discrete", "discrete")
def ignores_y(x, y):
    """Returns H(X) of the sample whatever Y is."""
    counts = np.unique(x, axis=0, return_counts=True)[1]
    return entropy(counts / counts.sum())


@pytest.mark.parametrize("broken, caught_by", [(negated_plugin, "non_negativity"), (ignores_y, "independence")])
def test_broken_estimators_are_caught(broken, caught_by):
    report = check_estimator(broken, properties=[caught_by, "exact_agreement"], max_examples=8, on_fail=None)
    assert report.held(caught_by) is False and report.held("exact_agreement") is False, str(report)
    r = report[caught_by]
    assert r.status == "failed" and r.counterexample, str(r)
    with pytest.raises(EstimatorCheckError, match=f"{broken.__name__}.*{caught_by}.*tolerance"):
        check_estimator(broken, properties=[caught_by], max_examples=8, on_fail="raise")


def test_on_fail_warn_and_expected_failures():
    with pytest.warns(EstimatorCheckWarning, match="non_negativity"):
        check_estimator(negated_plugin, properties=["non_negativity"], max_examples=8, on_fail="warn")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        report = check_estimator(negated_plugin, properties=["non_negativity", "symmetry"], max_examples=8,
                                 expected_failed_checks={"non_negativity": "sign error", "symmetry": "holds"},
                                 on_fail="raise")
    assert report["non_negativity"].status == "xfail" and report["non_negativity"].reason == "sign error"
    assert report["symmetry"].status == "xpass"
    assert "| `check_non_negativity()` | xfail |" in report.to_markdown()
    assert {rec["status"] for rec in report.to_records()} == {"xfail", "xpass"}


def test_arguments_are_validated():
    with pytest.raises(ValueError, match="properties"):
        check_estimator(plugin_mi, properties=["no_such_property"])
    with pytest.raises(ValueError, match="on_fail"):
        check_estimator(plugin_mi, on_fail="explode")
    with pytest.raises(ValueError, match="max_examples"):
        check_estimator(plugin_mi, max_examples=0)
    with pytest.raises(ValueError, match="options"):
        check_estimator(plugin_mi, options={"nope": {}})
    with pytest.raises(ValueError, match="x_kind"):
        estimator_tags(x_kind="categorical")
    assert get_tags(lambda x, y: 0.0).x_kind == "continuous"


def test_one_property_string_is_one_property_not_its_letters():
    report = check_estimator(plugin_mi, properties="symmetry", max_examples=2)
    assert [r.property for r in report.results] == ["symmetry"]


@pytest.mark.parametrize("kwargs, match", [
    (dict(properties=[]), "properties is empty"),
    (dict(properties=[1]), "properties must hold property names"),
    (dict(properties=5), "properties must be a property name"),
    (dict(max_examples="3"), r"max_examples must be an integer, got '3'"),
    (dict(max_examples=1.5), "max_examples must be an integer, got 1.5"),
    (dict(max_examples=np.float64(np.nan)), r"max_examples must be an integer, got nan$"),
    (dict(expected_failed_checks={"no_such_check": "why"}), "expected_failed_checks has unknown entries"),
    (dict(expected_failed_checks=["symmetry"]), "expected_failed_checks must be a mapping"),
    (dict(name=3), "name must be a string"),
])
def test_bad_arguments_name_the_argument(kwargs, match):
    with pytest.raises(ValueError, match=match):
        check_estimator(plugin_mi, **kwargs)


def test_numpy_integers_are_accepted_and_non_callables_refused():
    assert check_estimator(plugin_mi, properties=["symmetry"], max_examples=np.int64(2))["symmetry"].held
    with pytest.raises(ValueError, match="estimator must be a callable"):
        check_estimator("plugin_mi")


def test_estimator_exceptions_are_reported_not_raised():
    def crashes(x, y):
        raise ValueError("boom")

    r = check_estimator(crashes, properties=["symmetry"], max_examples=3, on_fail=None)["symmetry"]
    assert r.status == "failed" and "raised ValueError: boom" in r.message


def test_options_override_tolerances():
    report = check_estimator(ksg, properties=["independence"], max_examples=5, on_fail=None,
                             options={"independence": {"atol": 1e-9, "n": 300}})
    assert report["independence"].status == "failed" and "1e-09 bits at n = 300" in report["independence"].tolerance


@parametrize_with_checks([plugin_mi], max_examples=3)
def test_parametrize_with_checks(estimator, check):
    check(estimator)


def test_command_line(tmp_path, capsys):
    out = tmp_path / "ksg.json"
    rc = main(["check-estimator", "ibtheory.estimators.ksg:ksg", "--properties", "symmetry,monotone_invariance",
               "--max-examples", "4", "--no-shrink", "--out", str(out)])
    assert rc == 0, capsys.readouterr().out
    records = json.loads(out.read_text())
    assert [r["status"] for r in records] == ["passed", "xfail", "xfail"]
    rc = main(["check-estimator", "ibtheory.estimators.ksg:ksg", "--properties", "independence", "--max-examples",
               "3", "--expect-fail", "independence=demo"])
    assert rc == 0 and "xpass" in capsys.readouterr().out
    assert main(["check-estimator", "ibtheory.estimators.ksg:nope"]) == 2
    assert main(["check-estimator", "no_colon"]) == 2


def test_broken_layer_estimator_returning_entropy_is_caught():
    """A layer estimator that returns H(binned T) = I(X;T) as if it were I(T;Y) (ignores Y) fails I <= H(Y)."""
    from ibtheory.estimators import binned_information
    from ibtheory.testing.adapters import layer_estimator

    def entropy_not_information(activations, p_x, p_y_given_x, **options):
        r = binned_information(activations, p_x, p_y_given_x, **options)

        class Result:
            I_TY = r.I_XT

        return Result()

    broken = layer_estimator(entropy_not_information, name="H(T) as I(T;Y)", n_bins=30)
    report = check_estimator(broken, properties=["entropy_bound", "independence"], max_examples=3, on_fail=None,
                             shrink=False)
    assert report.held("entropy_bound") is False and report.held("independence") is False, str(report)
    assert "H(T) as I(T;Y)" in report["entropy_bound"].message


def _n_values(v):
    return np.unique(v, axis=0).shape[0]


@estimator_tags("discrete", "discrete")
def asymmetric_bias_correction(x, y):
    """Bias-corrected plug-in with a typo: (|X|-1)^2 in place of (|X|-1)(|Y|-1) (Paninski 2003), not symmetric."""
    return plugin_mi(x, y) - (_n_values(x) - 1) ** 2 / (2 * len(x) * np.log(2))


@estimator_tags("discrete", "discrete")
def first_half_only(x, y):
    """Keeps the first half of the rows as if they were a random split (never shuffled): depends on sample order."""
    half = len(x) // 2
    return plugin_mi(x[:half], y[:half])


def constant_bias(bias):
    @estimator_tags("discrete", "discrete", name=f"plug-in + {bias} bits")
    def biased(x, y):
        """The plug-in plus a constant: its error does not shrink with n."""
        return plugin_mi(x, y) + bias

    return biased


@pytest.mark.parametrize("broken, caught_by", [
    (asymmetric_bias_correction, "symmetry"),
    (first_half_only, "permutation_invariance"),
    (constant_bias(0.3), "consistency"),
    (constant_bias(0.06), "consistency"),
], ids=["asymmetric", "sample-order", "bias-0.3", "bias-0.06"])
def test_broken_estimators_are_caught_by_the_named_property(broken, caught_by):
    report = check_estimator(broken, properties=[caught_by], max_examples=4, on_fail=None, shrink=False)
    r = report[caught_by]
    assert r.status == "failed" and r.claimed and r.counterexample and r.example is not None, str(r)
    assert caught_by in r.message and "tolerance" in r.message, r.message
    correct = check_estimator(plugin_mi, properties=[caught_by], max_examples=4, on_fail=None, shrink=False)
    assert correct.held(caught_by) is True, str(correct)  # the property itself is fine for a sound estimator


def test_a_small_constant_bias_passes_the_tolerances_but_not_consistency():
    """0.06 bits is inside the 0.1-bit tolerance of exact agreement and independence: only consistency sees it."""
    report = check_estimator(constant_bias(0.06), properties=["exact_agreement", "independence", "consistency"],
                             max_examples=4, on_fail=None, shrink=False)
    assert report.held("exact_agreement") and report.held("independence"), str(report)
    assert report.held("consistency") is False, str(report)
