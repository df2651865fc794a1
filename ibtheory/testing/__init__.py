"""``ibtheory.testing``: a public property-based conformance suite for mutual-information estimators.

What scikit-learn's ``check_estimator`` gives model authors, for MI estimators: hypothesis strategies
(:mod:`~ibtheory.testing.strategies`), one named check per property (:mod:`~ibtheory.testing.checks`), and
:func:`check_estimator` / :func:`parametrize_with_checks` (:mod:`~ibtheory.testing.suite`) that run them against
any callable ``estimator(x (n, d_x), y (n, d_y)) -> float`` bits with optional capability attributes
(:mod:`~ibtheory.testing.tags`).  :mod:`~ibtheory.testing.adapters` wraps the package's layer estimators in that
signature.  The laws with known MI are :mod:`~ibtheory.testing.laws`, among them the reference benchmark of Czyz
et al. 2023 (:mod:`~ibtheory.testing.benchmark_laws`: normal, Student-t, additive uniform noise and MI-keeping
transforms, with closed-form MI), which :mod:`~ibtheory.testing.benchmark` runs as the paper does (n = 5,000,
mean log2(estimate / true MI) over seeds) on each package estimator's form for two continuous arguments.

>>> from ibtheory.estimators.plugin import plugin_mi
>>> check_estimator(plugin_mi, properties=["permutation_invariance"], max_examples=3).failed
()
"""

from .checks import (
    EstimatorError,
    check_consistency,
    check_data_processing,
    check_entropy_bound,
    check_exact_agreement,
    check_independence,
    check_known_mi,
    check_monotone_invariance,
    check_non_negativity,
    check_permutation_invariance,
    check_relabelling_invariance,
    check_symmetry,
    estimate,
)
from .report import CheckResult, EstimatorCheckError, EstimatorCheckWarning, Report
from .suite import (
    ALL_CHECKS,
    PROPERTIES,
    check_estimator,
    check_name,
    parametrize_with_checks,
    property_of,
    yield_checks,
)
from .tags import EstimatorTags, estimator_name, estimator_tags, get_tags

__all__ = [
    "ALL_CHECKS", "PROPERTIES", "check_estimator", "parametrize_with_checks", "yield_checks", "check_name",
    "property_of",
    "CheckResult", "Report", "EstimatorCheckError", "EstimatorCheckWarning", "EstimatorError",
    "EstimatorTags", "estimator_tags", "get_tags", "estimator_name",
    "check_non_negativity", "check_symmetry", "check_relabelling_invariance", "check_permutation_invariance",
    "check_monotone_invariance", "check_entropy_bound", "check_data_processing", "check_independence",
    "check_exact_agreement", "check_known_mi", "check_consistency", "estimate",
]
