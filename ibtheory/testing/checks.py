"""The conformance properties of a mutual-information estimator, one small named check per property.

Every check has the signature ``check_<property>(name, estimator, *, max_examples=10, shrink=True, **tolerances)``
and returns a :class:`~ibtheory.testing.report.CheckResult`.  It draws laws for the estimator's declared input
kinds (:mod:`ibtheory.testing.strategies`), samples them with explicit seeds, runs the estimator and compares with
the property; hypothesis searches (derandomised: the same examples on every run) and shrinks a violation to a
small reproducible counterexample.  I denotes the estimate in bits, I* the true value of the sampling law.

========================  ==========================================================  ===============================
property                  holds when                                                  default tolerance (bits)
========================  ==========================================================  ===============================
non_negativity            I >= -bias                                                  bias = 0.1 (n = 200)
symmetry                  |I(x, y) - I(y, x)| <= atol (x_kind == y_kind only)         1e-6
relabelling_invariance    recoding discrete values bijectively and permuting          1e-6
                          columns leaves I unchanged
permutation_invariance    reordering the samples (rows) jointly leaves I unchanged    1e-6
monotone_invariance       a strictly increasing map of each continuous coordinate     1e-6
                          ("affine" or "nonlinear") leaves I unchanged
entropy_bound             I <= H of the empirical law of a discrete argument          1e-6
data_processing           I(T2; S) <= I(T1; S) + atol for S -> T1 -> T2               0.05 (n = 500)
independence              |I| <= atol for independent X, Y                            0.1 (n = 1000)
exact_agreement           |I - I*| <= atol on discrete data (tables; activations      0.1 (n = 2000)
                          that are a deterministic function of a discrete X)
known_mi                  |I - I*| <= atol on continuous laws with known MI           0.1 (n = 2000)
consistency               mean |I - I*| at n_large <= max(0.5 x that at n_small,      floor 0.05, 4 repeats
                          floor): the error shrinks with the sample size
========================  ==========================================================  ===============================

References
----------
1. T. M. Cover and J. A. Thomas, *Elements of Information Theory*, 2nd ed., Wiley 2006 (2.6 data processing).
2. L. Paninski, "Estimation of entropy and mutual information", Neural Computation 15 (2003) (plug-in bias
   (|X|-1)(|Y|-1)/(2 n ln 2) bits, consistency).
3. A. Kraskov, H. Stoegbauer, P. Grassberger, "Estimating mutual information", Phys. Rev. E 69, 066138 (2004).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from hypothesis import HealthCheck, Phase, Verbosity, given, settings, target
from hypothesis import strategies as st
from hypothesis.errors import Flaky

from ..info import entropy
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
]


class EstimatorError(Exception):
    """The estimator raised or returned something other than a finite number."""


def estimate(estimator: Callable, x: np.ndarray, y: np.ndarray) -> float:
    """``float(estimator(x, y))``, raising :class:`EstimatorError` for an exception or a non-finite value."""
    try:
        value = float(estimator(x, y))
    except Exception as exc:
        raise EstimatorError(f"raised {type(exc).__name__}: {exc}") from exc
    if not math.isfinite(value):
        raise EstimatorError(f"returned {value!r}, not a finite number of bits")
    return value


@dataclass(frozen=True)
class _Obs:
    """One example's outcome: the property holds iff ``error <= limit``."""

    error: float
    limit: float
    observed: str
    expected: str


class _Violation(Exception):
    pass


def _run(
    name: str, estimator: Callable, check: str, prop: str, strategy: st.SearchStrategy,
    evaluate: Callable[[object], _Obs], tolerance: str, max_examples: int, shrink: bool, claimed: bool = True,
    n: int | str = "",
) -> CheckResult:
    """Search ``strategy`` for an example whose ``evaluate`` violates the property; summarise as a CheckResult."""
    name = name or estimator_name(estimator)
    state = {"worst": -math.inf, "n": 0, "fail": None}

    phases = [Phase.explicit, Phase.generate, Phase.target] + ([Phase.shrink] if shrink else [])

    @settings(max_examples=max_examples, derandomize=True, deadline=None, database=None, phases=phases,
              suppress_health_check=list(HealthCheck), print_blob=False, verbosity=Verbosity.quiet,
              report_multiple_bugs=False)
    @given(strategy)
    def search(example):
        try:
            obs = evaluate(example)
        except EstimatorError as exc:
            obs = _Obs(math.inf, 0.0, f"the estimator {exc}", "a finite estimate in bits")
        state["n"] += 1
        err = obs.error if not math.isnan(obs.error) else math.inf
        state["worst"] = max(state["worst"], err)
        if math.isfinite(err - obs.limit):
            target(err - obs.limit)
        if not err <= obs.limit:
            state["fail"] = (example, obs)
            raise _Violation

    t0 = time.perf_counter()
    try:
        search()
        held = True
    except (_Violation, Flaky):
        held = False
    seconds = time.perf_counter() - t0
    if held:
        return CheckResult(name, check, prop, "passed", True, state["worst"], tolerance, n_examples=state["n"],
                           seconds=seconds, claimed=claimed)
    if state["fail"] is None:  # hypothesis saw a failure it could not reproduce
        state["fail"] = ("(not reproducible)", _Obs(math.nan, 0.0, "a violation that did not reproduce when "
                                                    "re-run on the same example", "a deterministic estimator"))
    example, obs = state["fail"]
    recipe = f"{example!r} with n = {n}" if n != "" else repr(example)
    message = (f"estimator {name!r} violates {prop}: observed {obs.observed}; expected {obs.expected} "
               f"(tolerance {tolerance}); counterexample (law, seeds, ...): {recipe}")
    return CheckResult(name, check, prop, "failed", False, state["worst"], tolerance, recipe, message,
                       state["n"], seconds, claimed, example=example)


def _skip(name, estimator, check, prop, reason) -> CheckResult:
    return CheckResult(name or estimator_name(estimator), check, prop, "skipped", None, math.nan, "", reason=reason)


def _name(prop: str, **variant) -> str:
    args = ", ".join(f"{k}={v!r}" for k, v in variant.items())
    return f"check_{prop}({args})"


def _kinds(estimator) -> tuple[str, str]:
    tags = get_tags(estimator)
    return tags.x_kind, tags.y_kind


def _any_law(estimator, independent_too: bool = True) -> st.SearchStrategy:
    xk, yk = _kinds(estimator)
    laws = laws_for(xk, yk)
    return st.one_of(laws, laws_for(xk, yk, independent=True)) if independent_too else laws


def check_non_negativity(name, estimator, *, bias: float = 0.1, n: int = 200, max_examples: int = 10,
                         shrink: bool = True) -> CheckResult:
    """I >= -bias on dependent and independent laws at n samples (mutual information is never negative)."""

    def evaluate(ex):
        law, seed = ex
        s = law.sample(n, seed)
        i = estimate(estimator, s.x, s.y)
        return _Obs(-i, bias, f"I = {i:.4g} bits", f"I >= {-bias:g} bits")

    return _run(name, estimator, _name("non_negativity"), "non_negativity", st.tuples(_any_law(estimator), seeds()),
                evaluate, f"bias {bias:g} bits at n = {n}", max_examples, shrink, n=n)


def check_symmetry(name, estimator, *, atol: float = 1e-6, n: int = 300, max_examples: int = 10,
                   shrink: bool = True) -> CheckResult:
    """I(x, y) = I(y, x) within atol (only when x and y are of the same kind)."""
    xk, yk = _kinds(estimator)
    if xk != yk:
        return _skip(name, estimator, _name("symmetry"), "symmetry", f"x_kind {xk} != y_kind {yk}")

    def evaluate(ex):
        law, seed = ex
        s = law.sample(n, seed)
        a, b = estimate(estimator, s.x, s.y), estimate(estimator, s.y, s.x)
        return _Obs(abs(a - b), atol, f"I(x,y) = {a:.6g}, I(y,x) = {b:.6g} bits", "equal values")

    return _run(name, estimator, _name("symmetry"), "symmetry", st.tuples(_any_law(estimator), seeds()), evaluate,
                f"{atol:g} bits", max_examples, shrink, n=n)


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

    def evaluate(ex):
        law, seed, seed2 = ex
        s = law.sample(n, seed)
        rng = np.random.default_rng(seed2)
        x2, y2 = _recode(s.x, xk, rng), _recode(s.y, yk, rng)
        a, b = estimate(estimator, s.x, s.y), estimate(estimator, x2, y2)
        return _Obs(abs(a - b), atol, f"I = {a:.6g} bits before and {b:.6g} bits after relabelling "
                    f"(relabelling seed {seed2})", "equal values")

    return _run(name, estimator, _name("relabelling_invariance"), "relabelling_invariance",
                st.tuples(_any_law(estimator), seeds(), seeds()), evaluate, f"{atol:g} bits", max_examples, shrink,
                n=n)


def check_permutation_invariance(name, estimator, *, atol: float = 1e-6, n: int = 300, max_examples: int = 10,
                                 shrink: bool = True) -> CheckResult:
    """Reordering the n samples (the same permutation of the rows of x and y) leaves I unchanged."""

    def evaluate(ex):
        law, seed, seed2 = ex
        s = law.sample(n, seed)
        perm = np.random.default_rng(seed2).permutation(n)
        a, b = estimate(estimator, s.x, s.y), estimate(estimator, s.x[perm], s.y[perm])
        return _Obs(abs(a - b), atol, f"I = {a:.6g} bits before and {b:.6g} bits after permuting the rows "
                    f"(permutation seed {seed2})", "equal values")

    return _run(name, estimator, _name("permutation_invariance"), "permutation_invariance",
                st.tuples(_any_law(estimator), seeds(), seeds()), evaluate, f"{atol:g} bits", max_examples, shrink,
                n=n)


def check_monotone_invariance(name, estimator, *, transform: str = "nonlinear", atol: float = 1e-6, n: int = 300,
                              max_examples: int = 10, shrink: bool = True) -> CheckResult:
    """Strictly increasing maps (one for x, another for y) of each continuous coordinate leave I unchanged.

    ``transform``: "affine" (a v + b, a > 0) or "nonlinear" (v^3 + a v, sinh, exp).  Discrete arguments are left
    alone.  Run on every estimator with a continuous argument; a failure counts only if the estimator claims the
    invariance (tag ``invariances``), else it is reported as an expected failure.
    """
    xk, yk = _kinds(estimator)
    check = _name("monotone_invariance", transform=transform)
    if "continuous" not in (xk, yk):
        return _skip(name, estimator, check, "monotone_invariance", "no continuous argument")
    claimed = get_tags(estimator).claims("affine" if transform == "affine" else "monotone")

    def evaluate(ex):
        law, seed, g, h = ex
        s = law.sample(n, seed)
        x2 = g(s.x) if xk == "continuous" else s.x
        y2 = h(s.y) if yk == "continuous" else s.y
        applied = " and ".join(f"{side}: {f!r}" for side, f, k in (("x", g, xk), ("y", h, yk)) if k == "continuous")
        a, b = estimate(estimator, s.x, s.y), estimate(estimator, x2, y2)
        return _Obs(abs(a - b), atol, f"I = {a:.6g} bits before and {b:.6g} bits after {applied}", "equal values")

    transforms = monotone_transforms(transform)
    return _run(name, estimator, check, "monotone_invariance",
                st.tuples(_any_law(estimator), seeds(), transforms, transforms), evaluate, f"{atol:g} bits",
                max_examples, shrink, claimed, n=n)


def _empirical_entropy(v: np.ndarray) -> float:
    counts = np.unique(v, axis=0, return_counts=True)[1]
    return entropy(counts / counts.sum())


def check_entropy_bound(name, estimator, *, atol: float = 1e-6, n: int = 300, max_examples: int = 10,
                        shrink: bool = True) -> CheckResult:
    """I(X;Y) <= H(X) for a discrete argument X, H that of the sample's empirical law (also <= log2 #values)."""
    xk, yk = _kinds(estimator)
    if "discrete" not in (xk, yk):
        return _skip(name, estimator, _name("entropy_bound"), "entropy_bound", "no discrete argument")

    def evaluate(ex):
        law, seed = ex
        s = law.sample(n, seed)
        h = min(_empirical_entropy(v) for v, k in ((s.x, xk), (s.y, yk)) if k == "discrete") + 0.0
        i = estimate(estimator, s.x, s.y)
        return _Obs(i - h, atol, f"I = {i:.6g} bits", f"I <= H = {h:.6g} bits (empirical entropy)")

    return _run(name, estimator, _name("entropy_bound"), "entropy_bound", st.tuples(_any_law(estimator), seeds()),
                evaluate, f"{atol:g} bits", max_examples, shrink, n=n)


def check_data_processing(name, estimator, *, atol: float = 0.05, n: int = 500, max_examples: int = 10,
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
        return _Obs(i2 - i1, atol, f"I(T1;S) = {i1:.6g} bits, I(T2;S) = {i2:.6g} bits for T2 = {g!r}(T1)",
                    "I(T2;S) <= I(T1;S)")

    strategy = st.tuples(laws_for(xk, yk), seeds(), processings(xk, noise=noisy))
    return _run(name, estimator, _name("data_processing"), "data_processing", strategy, evaluate,
                f"{atol:g} bits at n = {n}", max_examples, shrink, n=n)


def check_independence(name, estimator, *, atol: float = 0.1, n: int = 1000, max_examples: int = 10,
                       shrink: bool = True) -> CheckResult:
    """|I| <= atol for samples of independent X and Y (true I = 0)."""
    xk, yk = _kinds(estimator)

    def evaluate(ex):
        law, seed = ex
        s = law.sample(n, seed)
        i = estimate(estimator, s.x, s.y)
        return _Obs(abs(i), atol, f"I = {i:.4g} bits", "I = 0")

    return _run(name, estimator, _name("independence"), "independence",
                st.tuples(laws_for(xk, yk, independent=True), seeds()), evaluate, f"{atol:g} bits at n = {n}",
                max_examples, shrink, n=n)


def _agreement(prop, family, name, estimator, atol, n, max_examples, shrink, why_skip) -> CheckResult:
    xk, yk = _kinds(estimator)
    laws = laws_for(xk, yk, family)
    if laws.is_empty:
        return _skip(name, estimator, _name(prop), prop, why_skip)

    def evaluate(ex):
        law, seed = ex
        s = law.sample(n, seed)
        i = estimate(estimator, s.x, s.y)
        return _Obs(abs(i - s.mi), atol, f"I = {i:.4g} bits", f"I* = {s.mi:.4g} bits")

    return _run(name, estimator, _name(prop), prop, st.tuples(laws, seeds()), evaluate, f"{atol:g} bits at n = {n}",
                max_examples, shrink, n=n)


def check_exact_agreement(name, estimator, *, atol: float = 0.1, n: int = 2000, max_examples: int = 10,
                          shrink: bool = True) -> CheckResult:
    """|I - I*| <= atol on discrete data: p(x,y) tables, or activations that are a function of a discrete X."""
    return _agreement("exact_agreement", "exact-discrete", name, estimator, atol, n, max_examples, shrink,
                      "no discrete data for two continuous arguments")


def check_known_mi(name, estimator, *, atol: float = 0.1, n: int = 2000, max_examples: int = 10,
                   shrink: bool = True) -> CheckResult:
    """|I - I*| <= atol on continuous laws with known MI: correlated Gaussians, additive-noise channels."""
    return _agreement("known_mi", "continuous", name, estimator, atol, n, max_examples, shrink,
                      "no continuous argument")


def check_consistency(name, estimator, *, n_small: int = 200, n_large: int = 3200, repeats: int = 4,
                      factor: float = 0.5, floor: float = 0.05, max_examples: int = 5,
                      shrink: bool = True) -> CheckResult:
    """The error shrinks with n: mean |I - I*| over ``repeats`` seeds at n_large <= max(factor x that at n_small,
    floor) on the known-MI laws (continuous laws, or discrete tables for two discrete arguments)."""
    xk, yk = _kinds(estimator)
    laws = laws_for(xk, yk, "exact-discrete" if xk == yk == "discrete" else "continuous")

    def evaluate(ex):
        law, seed = ex
        err = {}
        for m in (n_small, n_large):
            err[m] = np.mean([abs(estimate(estimator, s.x, s.y) - s.mi)
                              for s in (law.sample(m, seed + r) for r in range(repeats))])
        limit = max(factor * err[n_small], floor)
        return _Obs(err[n_large], limit, f"mean |I - I*| = {err[n_small]:.4g} bits at n = {n_small} and "
                    f"{err[n_large]:.4g} bits at n = {n_large} (I* = {law.mi:.4g}, seeds {seed}..{seed + repeats - 1})",
                    f"at most {limit:.4g} bits at n = {n_large}")

    return _run(name, estimator, _name("consistency"), "consistency",
                st.tuples(laws, st.integers(0, 2**31)), evaluate,
                f"max({factor:g} x error at n = {n_small}, {floor:g}) bits", max_examples, shrink,
                n=f"{n_small} and {n_large}")
