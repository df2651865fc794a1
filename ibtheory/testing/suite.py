"""``check_estimator`` and the pytest parametrisation: two front ends over one generator of checks.

Modelled on scikit-learn's estimator checks: :func:`yield_checks` yields the checks (variants are
``functools.partial`` objects whose names show in ``pytest -k``); :func:`check_estimator` runs them and returns a
:class:`~ibtheory.testing.report.Report`; :func:`parametrize_with_checks` feeds the same checks to pytest.

>>> import numpy as np
>>> from ibtheory.estimators.plugin import plugin_mi
>>> report = check_estimator(plugin_mi, properties=["symmetry"], max_examples=3)
>>> report["symmetry"].status
'passed'
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping

from .._validate import integer, show
from . import checks as _c
from .report import CheckResult, EstimatorCheckError, EstimatorCheckWarning, Report
from .tags import estimator_name, get_tags

__all__ = ["ALL_CHECKS", "PROPERTIES", "yield_checks", "check_name", "property_of", "check_estimator",
           "parametrize_with_checks"]

#: Every check of the suite, in the order they run (variants as ``functools.partial``).
ALL_CHECKS: tuple[Callable, ...] = (
    _c.check_non_negativity,
    _c.check_symmetry,
    _c.check_relabelling_invariance,
    _c.check_permutation_invariance,
    functools.partial(_c.check_monotone_invariance, transform="affine"),
    functools.partial(_c.check_monotone_invariance, transform="nonlinear"),
    _c.check_entropy_bound,
    _c.check_data_processing,
    _c.check_independence,
    _c.check_exact_agreement,
    _c.check_known_mi,
    _c.check_consistency,
)


def property_of(check: Callable) -> str:
    """The property a check tests: ``check_monotone_invariance`` -> ``"monotone_invariance"``."""
    func = check.func if isinstance(check, functools.partial) else check
    return func.__name__.removeprefix("check_")


def check_name(check: Callable) -> str:
    """The full name of a check with its variant, e.g. ``check_monotone_invariance(transform='affine')``."""
    kw = check.keywords if isinstance(check, functools.partial) else {}
    return f"check_{property_of(check)}(" + ", ".join(f"{k}={v!r}" for k, v in kw.items()) + ")"


#: Property names, in the order the checks run.
PROPERTIES: tuple[str, ...] = tuple(dict.fromkeys(property_of(c) for c in ALL_CHECKS))
#: Every name ``properties`` and ``expected_failed_checks`` accept: the properties and the full check names.
_KNOWN = frozenset(PROPERTIES) | {check_name(c) for c in ALL_CHECKS}


def yield_checks(estimator: Callable, properties: Iterable[str] | None = None) -> Iterator[Callable]:
    """Yield the checks for ``estimator``, optionally only those whose property or full name is in ``properties``.

    Every check accepts ``(name, estimator, *, max_examples, shrink, **tolerances)``; checks that do not apply to
    the estimator's declared input kinds return a "skipped" result at once.
    """
    if not callable(estimator):
        raise ValueError(f"estimator must be a callable (x, y) -> bits, got {type(estimator).__name__}")
    get_tags(estimator)  # validates the declared capabilities
    wanted = _wanted_properties(properties)
    if wanted is not None:
        unknown = wanted - _KNOWN
        if unknown:
            raise ValueError(f"properties has unknown entries {sorted(unknown)}; choose from {list(PROPERTIES)}")
    for check in ALL_CHECKS:
        if wanted is None or property_of(check) in wanted or check_name(check) in wanted:
            yield check


def _wanted_properties(properties: Iterable[str] | str | None) -> set[str] | None:
    """``properties`` as a set of names: one string is one name (not its letters); empty or non-strings refused."""
    if properties is None:
        return None
    if isinstance(properties, str):
        properties = [properties]
    try:
        items = list(properties)
    except TypeError:
        raise ValueError(f"properties must be a property name or a list of them, got {show(properties)}") from None
    if not items:
        raise ValueError(f"properties is empty: name at least one of {list(PROPERTIES)}, or pass None for all")
    if not all(isinstance(p, str) for p in items):
        raise ValueError(f"properties must hold property names (strings), got {show(properties)}")
    return set(items)


#: Checks whose examples cost several estimates run a fraction of ``max_examples`` (at least 1).
EXAMPLE_FRACTION = {"consistency": 0.5}


def _examples_for(check: Callable, max_examples: int) -> int:
    return max(1, round(int(max_examples) * EXAMPLE_FRACTION.get(property_of(check), 1.0)))


def _expectation(result: CheckResult, expected: Mapping[str, str]) -> CheckResult:
    for key in (result.check, result.property):
        if key in expected:
            return result.with_expectation(expected[key])
    if not result.claimed and result.status == "failed":
        return result.with_expectation("the estimator does not claim this invariance")
    return result


def check_estimator(
    estimator: Callable,
    *,
    name: str | None = None,
    properties: Iterable[str] | None = None,
    max_examples: int = 10,
    expected_failed_checks: Mapping[str, str] | None = None,
    on_fail: str | None = "raise",
    shrink: bool = True,
    options: Mapping[str, Mapping] | None = None,
) -> Report:
    """Run the conformance properties against ``estimator(x, y) -> bits`` and return a :class:`Report`.

    Parameters
    ----------
    estimator : callable ``(x (n, d_x), y (n, d_y)) -> float`` bits, with optional capability attributes
        (:mod:`ibtheory.testing.tags`).
    name : display name (default from the estimator).
    properties : property names (:data:`PROPERTIES`) or full check names to run; default all.
    max_examples : hypothesis examples per check (derandomised, so reports are reproducible), after the fixed
        canonical examples of :mod:`ibtheory.testing.canon`; consistency runs half as many (each example costs
        2 x 4 estimates).
    expected_failed_checks : ``{property or check name: reason}``; their failures become "xfail".
    on_fail : "raise" (raise :class:`EstimatorCheckError` listing every unexpected failure after all checks ran),
        "warn" (one :class:`EstimatorCheckWarning` per failure) or None.
    shrink : let hypothesis shrink a counterexample (slower, smaller counterexamples).
    options : ``{property: {keyword: value}}`` overrides of a check's tolerances and sample sizes.

    Returns
    -------
    Report with one :class:`CheckResult` per check (status, held, worst error in bits, tolerance, counterexample).
    """
    if on_fail not in ("raise", "warn", None):
        raise ValueError(f"on_fail must be 'raise', 'warn' or None, got {show(on_fail)}")
    max_examples = integer(max_examples, "max_examples", low=1)
    if name is not None and not isinstance(name, str):
        raise ValueError(f"name must be a string or None, got {show(name)}")
    if not callable(estimator):
        raise ValueError(f"estimator must be a callable (x, y) -> bits, got {type(estimator).__name__}")
    name = name or estimator_name(estimator)
    for arg, value in (("expected_failed_checks", expected_failed_checks), ("options", options)):
        if value is not None and not isinstance(value, Mapping):
            raise ValueError(f"{arg} must be a mapping {{property: ...}} or None, got {show(value)}")
    expected = dict(expected_failed_checks or {})
    if set(expected) - _KNOWN:
        raise ValueError(f"expected_failed_checks has unknown entries {sorted(set(expected) - _KNOWN)}; choose from "
                         f"{list(PROPERTIES)}")
    options = dict(options or {})
    bad = set(options) - set(PROPERTIES)
    if bad:
        raise ValueError(f"options has unknown properties {sorted(bad)}; choose from {list(PROPERTIES)}")
    results = []
    for check in yield_checks(estimator, properties):
        kw = dict(options.get(property_of(check), {}))
        result = check(name, estimator, max_examples=_examples_for(check, max_examples), shrink=shrink, **kw)
        results.append(_expectation(result, expected))
    report = Report(name, tuple(results))
    if report.failed and on_fail == "raise":
        raise EstimatorCheckError("\n".join(r.message for r in report.failed))
    if on_fail == "warn":
        for r in report.failed:
            warnings.warn(r.message, EstimatorCheckWarning, stacklevel=2)
    return report


class _Check:
    """A pytest-callable check: ``check(estimator)`` raises on an unexpected failure, skips when not applicable."""

    def __init__(self, check: Callable, max_examples: int, shrink: bool):
        self.check, self.max_examples, self.shrink = check, max_examples, shrink

    def __repr__(self) -> str:
        return check_name(self.check)

    def __call__(self, estimator: Callable) -> CheckResult:
        import pytest

        result = self.check(estimator_name(estimator), estimator,
                            max_examples=_examples_for(self.check, self.max_examples), shrink=self.shrink)
        if result.status == "skipped":
            pytest.skip(result.reason)
        if result.status == "failed" and not result.claimed:
            pytest.xfail(f"{result.message} (the estimator does not claim this invariance)")
        if result.status == "failed":
            raise EstimatorCheckError(result.message)
        return result


def parametrize_with_checks(
    estimators: Iterable[Callable],
    *,
    max_examples: int = 5,
    shrink: bool = False,
    expected_failed_checks: Callable[[Callable], Mapping[str, str]] | None = None,
):
    """A ``pytest.mark.parametrize("estimator, check", ...)`` over every estimator and its checks.

    ``expected_failed_checks(estimator) -> {property or check name: reason}`` marks those as strict xfail.
    Use as::

        @parametrize_with_checks([plugin_mi, ksg])
        def test_conformance(estimator, check):
            check(estimator)
    """
    import pytest

    params = []
    for est in estimators:
        expected = dict(expected_failed_checks(est)) if expected_failed_checks else {}
        tags = get_tags(est)
        for check in yield_checks(est):
            if _c.not_applicable(property_of(check), tags.x_kind, tags.y_kind):
                continue  # like scikit-learn: only the checks that apply to the declared capabilities
            reason = expected.get(check_name(check), expected.get(property_of(check)))
            marks = [pytest.mark.xfail(reason=reason, strict=True, raises=EstimatorCheckError)] if reason else []
            params.append(pytest.param(est, _Check(check, max_examples, shrink), marks=marks,
                                       id=f"{estimator_name(est)}-{check_name(check)}"))
    return pytest.mark.parametrize("estimator, check", params)
