"""The conformance properties of a mutual-information estimator, one small named check per property.

Every check has the signature ``check_<property>(name, estimator, *, max_examples=10, shrink=True, **tolerances)``
and returns a :class:`~ibtheory.testing.report.CheckResult`.  It draws laws for the estimator's declared input
kinds (:mod:`ibtheory.testing.strategies`) after the fixed edge cases of :mod:`ibtheory.testing.canon`, samples
them with explicit seeds, runs the estimator and compares with the property.  Hypothesis searches (derandomised:
the same examples on every run, targeting the largest violation), the result keeps the worst error over all
examples, and a violation is shrunk to a small reproducible counterexample (:mod:`ibtheory.testing._search`).
I denotes the estimate in bits, I* the true value of the sampling law.

>>> from ibtheory.estimators.plugin import plugin_mi
>>> check_symmetry("plug-in", plugin_mi, max_examples=3).held
True
>>> check_monotone_invariance("plug-in", plugin_mi).status      # two discrete arguments
'skipped'

========================  ==========================================================  ===============================
property                  holds when                                                  default tolerance (bits)
========================  ==========================================================  ===============================
non_negativity            I >= -bias                                                  bias = 0.1 (n = 200)
symmetry                  |I(x, y) - I(y, x)| <= atol (x_kind == y_kind only)         1e-6
relabelling_invariance    recoding discrete values bijectively and permuting          1e-6
                          columns leaves I unchanged
permutation_invariance    reordering the samples (rows) jointly leaves I unchanged    1e-6
monotone_invariance       strictly increasing maps of the continuous coordinates      1e-6
                          ("affine" or "nonlinear"; x and y separately) leave I
                          unchanged
entropy_bound             I <= H of the empirical law of a discrete argument          1e-6
data_processing           I(T2; S) <= I(T1; S) + atol for S -> T1 -> T2               0.1 (n = 500)
independence              |I| <= atol for independent X, Y                            0.1 (n = 1000)
exact_agreement           |I - I*| <= atol on discrete data (tables; activations      0.1 (n = 2000)
                          that are a deterministic function of a discrete X)
known_mi                  |I - I*| <= atol on continuous laws with known MI           0.1 (n = 2000)
                          (channels, Gaussians; for two continuous arguments also
                          the Czyz et al. 2023 benchmark families)
consistency               mean |I - I*| at n_large <= max(0.5 x that at n_small,      floor 0.05 (200 -> 2000)
                          floor): the error shrinks with the sample size (same laws)
========================  ==========================================================  ===============================

References
----------
1. T. M. Cover and J. A. Thomas, *Elements of Information Theory*, 2nd ed., Wiley 2006 (2.6 data processing).
2. L. Paninski, "Estimation of entropy and mutual information", Neural Computation 15 (2003) (plug-in bias
   (|X|-1)(|Y|-1)/(2 n ln 2) bits, consistency).
3. A. Kraskov, H. Stoegbauer, P. Grassberger, "Estimating mutual information", Phys. Rev. E 69, 066138 (2004).
4. P. Czyz et al., "Beyond normal: on the evaluation of mutual information estimators", NeurIPS 2023 (the
   benchmark families of :mod:`ibtheory.testing.benchmark_laws`).
"""

from __future__ import annotations

import math

import numpy as np
from hypothesis import strategies as st

from ..info import entropy
from . import canon
from ._search import EstimatorError, Obs, estimate, run_property
from .laws import MonotoneTransform
from .report import CheckResult
from .strategies import laws_for, monotone_transforms, processings, seeds
from .tags import estimator_name, get_tags

__all__ = [
    "EstimatorError",
    "check_non_negativity",
    "check_symmetry",
    "check_relabelling_invariance",
    "check_permutation_invariance",
    "check_monotone_invariance",
    "check_entropy_bound",
    "check_data_processing",
    "check_independence",
    "check_exact_agreement",
    "check_known_mi",
    "check_consistency",
    "estimate",
    "not_applicable",
]


def not_applicable(prop: str, x_kind: str, y_kind: str) -> str:
    """Why property ``prop`` does not apply to arguments of these kinds ("" when it applies)."""
    kinds = (x_kind, y_kind)
    if prop == "symmetry" and x_kind != y_kind:
        return f"x_kind {x_kind} != y_kind {y_kind}"
    if prop == "monotone_invariance" and "continuous" not in kinds:
        return "no continuous argument"
    if prop == "entropy_bound" and "discrete" not in kinds:
        return "no discrete argument"
    if prop == "exact_agreement" and "discrete" not in kinds:
        return "no discrete data for two continuous arguments"
    if prop == "known_mi" and "continuous" not in kinds:
        return "no continuous argument"
    return ""


def _skip(name, estimator, check, prop, reason) -> CheckResult:
    return CheckResult(name or estimator_name(estimator), check, prop, "skipped", None, math.nan, "", reason=reason)


def _skipped(name, estimator, prop: str, x_kind: str, y_kind: str, check: str | None = None) -> CheckResult | None:
    """The "skipped" result when ``prop`` does not apply to the estimator's kinds of argument, else None."""
    why = not_applicable(prop, x_kind, y_kind)
    return _skip(name, estimator, check or _name(prop), prop, why) if why else None


def _name(prop: str, **variant) -> str:
    args = ", ".join(f"{k}={v!r}" for k, v in variant.items())
    return f"check_{prop}({args})"


def _kinds(estimator) -> tuple[str, str]:
    tags = get_tags(estimator)
    return tags.x_kind, tags.y_kind


def _any_law(estimator) -> tuple[st.SearchStrategy, list]:
    """Strategy and canonical examples of dependent and independent laws of the estimator's kinds."""
    xk, yk = _kinds(estimator)
    laws = st.one_of(laws_for(xk, yk), laws_for(xk, yk, independent=True))
    return laws, canon.canonical_laws(xk, yk) + canon.canonical_laws(xk, yk, independent=True)


def _on_samples(name, estimator, prop: str, laws: st.SearchStrategy, canonical: list, observe, *, n: int,
                tolerance: str, max_examples: int, shrink: bool) -> CheckResult:
    """Check ``prop`` on examples (law, seed): ``observe(law.sample(n, seed))`` -> Obs; the canonical laws at seed 0."""

    def evaluate(ex):
        law, seed = ex
        return observe(law.sample(n, seed))

    return run_property(name, estimator, _name(prop), prop, st.tuples(laws, seeds()), evaluate, tolerance,
                        max_examples, shrink, n=n, examples=[(law, 0) for law in canonical])


def check_non_negativity(name, estimator, *, bias: float = 0.1, n: int = 200, max_examples: int = 10,
                         shrink: bool = True) -> CheckResult:
    """I >= -bias on dependent and independent laws at n samples (mutual information is never negative)."""

    def observe(s):
        i = estimate(estimator, s.x, s.y)
        return Obs(-i, bias, f"I = {i:.4g} bits", f"I >= {-bias:g} bits")

    return _on_samples(name, estimator, "non_negativity", *_any_law(estimator), observe, n=n,
                       tolerance=f"bias {bias:g} bits at n = {n}", max_examples=max_examples, shrink=shrink)


def check_symmetry(name, estimator, *, atol: float = 1e-6, n: int = 300, max_examples: int = 10,
                   shrink: bool = True) -> CheckResult:
    """I(x, y) = I(y, x) within atol (only when x and y are of the same kind)."""
    xk, yk = _kinds(estimator)
    if skipped := _skipped(name, estimator, "symmetry", xk, yk):
        return skipped

    def observe(s):
        a, b = estimate(estimator, s.x, s.y), estimate(estimator, s.y, s.x)
        return Obs(abs(a - b), atol, f"I(x,y) = {a:.6g}, I(y,x) = {b:.6g} bits", "equal values")

    return _on_samples(name, estimator, "symmetry", *_any_law(estimator), observe, n=n, tolerance=f"{atol:g} bits",
                       max_examples=max_examples, shrink=shrink)


def _recode(v: np.ndarray, kind: str, rng: np.random.Generator) -> np.ndarray:
    """Discrete columns: codes mapped by a random injection into [-1000, 1000); all: columns permuted."""
    v = v[:, rng.permutation(v.shape[1])]
    if kind != "discrete":
        return v
    out = np.empty_like(v)
    for j in range(v.shape[1]):  # loop over the (few) columns, not samples
        uniq, inv = np.unique(v[:, j], return_inverse=True)
        out[:, j] = rng.choice(np.arange(-1000, 1000), size=uniq.size, replace=False)[inv.ravel()]
    return out


def check_relabelling_invariance(name, estimator, *, atol: float = 1e-6, n: int = 300, max_examples: int = 10,
                                 shrink: bool = True) -> CheckResult:
    """Bijective recoding of discrete values and a permutation of the columns of x and y leave I unchanged."""
    xk, yk = _kinds(estimator)
    laws, canonical = _any_law(estimator)

    def evaluate(ex):
        law, seed, seed2 = ex
        s = law.sample(n, seed)
        rng = np.random.default_rng(seed2)
        x2, y2 = _recode(s.x, xk, rng), _recode(s.y, yk, rng)
        a, b = estimate(estimator, s.x, s.y), estimate(estimator, x2, y2)
        return Obs(abs(a - b), atol, f"I = {a:.6g} bits before and {b:.6g} bits after relabelling "
                   f"(relabelling seed {seed2})", "equal values")

    return run_property(name, estimator, _name("relabelling_invariance"), "relabelling_invariance",
                        st.tuples(laws, seeds(), seeds()), evaluate, f"{atol:g} bits", max_examples, shrink, n=n,
                        examples=[(law, 0, 1) for law in canonical])


def check_permutation_invariance(name, estimator, *, atol: float = 1e-6, n: int = 300, max_examples: int = 10,
                                 shrink: bool = True) -> CheckResult:
    """Reordering the n samples (the same permutation of the rows of x and y) leaves I unchanged."""
    laws, canonical = _any_law(estimator)

    def evaluate(ex):
        law, seed, seed2 = ex
        s = law.sample(n, seed)
        perm = np.random.default_rng(seed2).permutation(n)
        a, b = estimate(estimator, s.x, s.y), estimate(estimator, s.x[perm], s.y[perm])
        return Obs(abs(a - b), atol, f"I = {a:.6g} bits before and {b:.6g} bits after permuting the rows "
                   f"(permutation seed {seed2})", "equal values")

    return run_property(name, estimator, _name("permutation_invariance"), "permutation_invariance",
                        st.tuples(laws, seeds(), seeds()), evaluate, f"{atol:g} bits", max_examples, shrink, n=n,
                        examples=[(law, 0, 1) for law in canonical])


def check_monotone_invariance(name, estimator, *, transform: str = "nonlinear", atol: float = 1e-6, n: int = 300,
                              max_examples: int = 10, shrink: bool = True) -> CheckResult:
    """Strictly increasing maps (one for x, another for y) of each continuous coordinate leave I unchanged.

    The same map acts on every coordinate of an argument (a layer's units share it), so estimators that pool the
    units (adaptive range, equal-mass quantiles) can claim the invariance.  ``transform``: "affine" (a v + b,
    a > 0) or "nonlinear" (v^3 + a v, sinh, exp).  Discrete arguments are left alone.  Run on every estimator
    with a continuous argument; a failure counts only if the estimator claims the
    invariance (tag ``invariances``), else it is reported as an expected failure.
    """
    xk, yk = _kinds(estimator)
    check = _name("monotone_invariance", transform=transform)
    if skipped := _skipped(name, estimator, "monotone_invariance", xk, yk, check):
        return skipped
    claimed = get_tags(estimator).claims("affine" if transform == "affine" else "monotone")
    laws, canonical = _any_law(estimator)

    def evaluate(ex):
        law, seed, g, h = ex
        s = law.sample(n, seed)
        x2 = g(s.x) if xk == "continuous" else s.x
        y2 = h(s.y) if yk == "continuous" else s.y
        applied = " and ".join(f"{side}: {f!r}" for side, f, k in (("x", g, xk), ("y", h, yk)) if k == "continuous")
        a, b = estimate(estimator, s.x, s.y), estimate(estimator, x2, y2)
        return Obs(abs(a - b), atol, f"I = {a:.6g} bits before and {b:.6g} bits after {applied}", "equal values")

    transforms = monotone_transforms(transform)
    fixed = canon.canonical_transforms(transform)
    identity = MonotoneTransform("affine", 1.0, 0.0)
    examples = [(law, 0, g, identity) for law in canonical for g in fixed]
    if xk == yk:  # also transform y alone
        examples += [(law, 0, identity, g) for law in canonical for g in fixed]
    return run_property(name, estimator, check, "monotone_invariance", st.tuples(laws, seeds(), transforms, transforms),
                        evaluate, f"{atol:g} bits", max_examples, shrink, claimed, n=n, examples=examples)


def _empirical_entropy(v: np.ndarray) -> float:
    counts = np.unique(v, axis=0, return_counts=True)[1]
    return entropy(counts / counts.sum())


def check_entropy_bound(name, estimator, *, atol: float = 1e-6, n: int = 300, max_examples: int = 10,
                        shrink: bool = True) -> CheckResult:
    """I(X;Y) <= H(X) for a discrete argument X, H that of the sample's empirical law (also <= log2 #values)."""
    xk, yk = _kinds(estimator)
    if skipped := _skipped(name, estimator, "entropy_bound", xk, yk):
        return skipped

    def observe(s):
        h = min(_empirical_entropy(v) for v, k in ((s.x, xk), (s.y, yk)) if k == "discrete") + 0.0
        i = estimate(estimator, s.x, s.y)
        return Obs(i - h, atol, f"I = {i:.6g} bits", f"I <= H = {h:.6g} bits (empirical entropy)")

    return _on_samples(name, estimator, "entropy_bound", *_any_law(estimator), observe, n=n,
                       tolerance=f"{atol:g} bits", max_examples=max_examples, shrink=shrink)


def check_data_processing(name, estimator, *, atol: float = 0.1, n: int = 500, max_examples: int = 10,
                          shrink: bool = True) -> CheckResult:
    """I(T2; S) <= I(T1; S) + atol along S -> T1 -> T2 = g(T1): T1 and T2 in the x argument, the source S in y.

    g merges codes (discrete T1), is the next layer tanh(T1 W + b) (continuous T1 with a discrete source, as in a
    network), or that layer plus noise (continuous T1 and source).  Any functional of the empirical law obeys
    the inequality exactly for deterministic g.
    """
    xk, yk = _kinds(estimator)
    noisy = xk == yk == "continuous"

    def evaluate(ex):
        law, seed, g = ex
        s = law.sample(n, seed)
        t2 = g(s.x, seed)
        i1, i2 = estimate(estimator, s.x, s.y), estimate(estimator, t2, s.y)
        return Obs(i2 - i1, atol, f"I(T1;S) = {i1:.6g} bits, I(T2;S) = {i2:.6g} bits for T2 = {g!r}(T1)",
                   "I(T2;S) <= I(T1;S)")

    strategy = st.tuples(laws_for(xk, yk), seeds(), processings(xk, noise=noisy))
    examples = [(law, 0, g) for law in canon.canonical_laws(xk, yk) + canon.canonical_laws(xk, yk, independent=True)
                for g in canon.canonical_processings(xk, noisy)]
    return run_property(name, estimator, _name("data_processing"), "data_processing", strategy, evaluate,
                        f"{atol:g} bits at n = {n}", max_examples, shrink, n=n, examples=examples)


def check_independence(name, estimator, *, atol: float = 0.1, n: int = 1000, max_examples: int = 10,
                       shrink: bool = True) -> CheckResult:
    """|I| <= atol for samples of independent X and Y (true I = 0)."""
    xk, yk = _kinds(estimator)

    def observe(s):
        i = estimate(estimator, s.x, s.y)
        return Obs(abs(i), atol, f"I = {i:.4g} bits", "I = 0")

    return _on_samples(name, estimator, "independence", laws_for(xk, yk, independent=True),
                       canon.canonical_laws(xk, yk, independent=True), observe, n=n,
                       tolerance=f"{atol:g} bits at n = {n}", max_examples=max_examples, shrink=shrink)


def _agreement(prop, family, name, estimator, atol, n, max_examples, shrink) -> CheckResult:
    xk, yk = _kinds(estimator)
    if skipped := _skipped(name, estimator, prop, xk, yk):
        return skipped

    def observe(s):
        i = estimate(estimator, s.x, s.y)
        return Obs(abs(i - s.mi), atol, f"I = {i:.4g} bits", f"I* = {s.mi:.4g} bits")

    return _on_samples(name, estimator, prop, laws_for(xk, yk, family), canon.canonical_laws(xk, yk, family),
                       observe, n=n, tolerance=f"{atol:g} bits at n = {n}", max_examples=max_examples, shrink=shrink)


def check_exact_agreement(name, estimator, *, atol: float = 0.1, n: int = 2000, max_examples: int = 10,
                          shrink: bool = True) -> CheckResult:
    """|I - I*| <= atol on discrete data: p(x,y) tables, or activations that are a function of a discrete X."""
    return _agreement("exact_agreement", "exact-discrete", name, estimator, atol, n, max_examples, shrink)


def check_known_mi(name, estimator, *, atol: float = 0.1, n: int = 2000, max_examples: int = 10,
                   shrink: bool = True) -> CheckResult:
    """|I - I*| <= atol on continuous laws with known MI: correlated Gaussians, additive-noise channels, and for two
    continuous arguments the benchmark families of Czyz et al. 2023 (normals with dense and 2-pair correlations,
    Student-t with df 1-3, additive uniform noise, asinh / half-cube / normal-CDF / wiggly / bimodal / spiral
    transforms; see :mod:`ibtheory.testing.benchmark_laws`), first of all its long-tailed, high-MI and spiral cases
    (:mod:`ibtheory.testing.canon`)."""
    return _agreement("known_mi", "continuous", name, estimator, atol, n, max_examples, shrink)


def check_consistency(name, estimator, *, n_small: int = 200, n_large: int = 2000, repeats: int = 4,
                      factor: float = 0.5, floor: float = 0.05, max_examples: int = 5,
                      shrink: bool = True) -> CheckResult:
    """The error shrinks with n: mean |I - I*| over ``repeats`` seeds at n_large <= max(factor x that at n_small,
    floor) on the known-MI laws of :func:`check_known_mi` (with the benchmark families for two continuous
    arguments), or on discrete tables for two discrete arguments."""
    xk, yk = _kinds(estimator)
    family = "exact-discrete" if xk == yk == "discrete" else "continuous"

    def evaluate(ex):
        law, seed = ex
        err = {}
        for m in (n_small, n_large):
            err[m] = np.mean([abs(estimate(estimator, s.x, s.y) - s.mi)
                              for s in (law.sample(m, seed + r) for r in range(repeats))])
        limit = max(factor * err[n_small], floor)
        return Obs(err[n_large], limit, f"mean |I - I*| = {err[n_small]:.4g} bits at n = {n_small} and "
                   f"{err[n_large]:.4g} bits at n = {n_large} (I* = {law.mi:.4g}, seeds {seed}..{seed + repeats - 1})",
                   f"at most {limit:.4g} bits at n = {n_large}")

    return run_property(name, estimator, _name("consistency"), "consistency",
                        st.tuples(laws_for(xk, yk, family), st.integers(0, 2**31)), evaluate,
                        f"max({factor:g} x error at n = {n_small}, {floor:g}) bits", max_examples, shrink,
                        n=f"{n_small} and {n_large}",
                        examples=[(law, 0) for law in canon.canonical_laws(xk, yk, family)])
