"""The search behind every check: hypothesis over a strategy of examples, the worst error, a shrunk counterexample.

A check supplies a strategy of examples, explicit canonical examples (:mod:`ibtheory.testing.canon`) tried first,
and ``evaluate(example) -> Obs(error, limit, observed, expected)``; the property holds on an example iff
``error <= limit`` (NaN counts as infinite).  :func:`run_property` turns that into a
:class:`~ibtheory.testing.report.CheckResult`.  Searches are derandomised (the same examples on every run) and use
no example database, so reports are reproducible and nothing is written to disk.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from hypothesis import HealthCheck, Phase, Verbosity, given, settings, target
from hypothesis import example as explicit_example
from hypothesis import strategies as st
from hypothesis.errors import Flaky

from .report import CheckResult
from .tags import estimator_name

__all__ = ["EstimatorError", "Obs", "estimate", "run_property"]


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
class Obs:
    """One example's outcome: the property holds iff ``error <= limit``."""

    error: float
    limit: float
    observed: str
    expected: str


class _Violation(Exception):
    pass


def run_property(
    name: str, estimator: Callable, check: str, prop: str, strategy: st.SearchStrategy,
    evaluate: Callable[[object], Obs], tolerance: str, max_examples: int, shrink: bool, claimed: bool = True,
    n: int | str = "", examples: Sequence = (),
) -> CheckResult:
    """Search ``strategy`` for examples whose ``evaluate`` violates the property; summarise as a CheckResult.

    Pass 1 evaluates the explicit ``examples`` and ``max_examples`` generated ones (hypothesis generation plus
    targeting of error - limit), so the worst error is over every example, and keeps the most violating one.
    With ``shrink``, pass 2 replays the same derandomised search, stopping at the first violation, and lets
    hypothesis shrink it to a minimal counterexample.
    """
    name = name or estimator_name(estimator)
    state = {"worst": -math.inf, "n": 0, "fail": None, "excess": -math.inf, "raise": False}

    def observe(example) -> Obs:
        try:
            obs = evaluate(example)
        except EstimatorError as exc:
            obs = Obs(math.inf, 0.0, f"the estimator {exc}", "a finite estimate in bits")
        err = obs.error if not math.isnan(obs.error) else math.inf
        return Obs(err, obs.limit, obs.observed, obs.expected)

    def search(example):
        obs = observe(example)
        excess = obs.error - obs.limit
        if math.isfinite(excess):
            target(excess)
        if state["raise"]:
            if not obs.error <= obs.limit:
                state["fail"] = (example, obs)  # the last failing call is hypothesis's final, shrunk example
                raise _Violation
            return
        state["n"] += 1
        state["worst"] = max(state["worst"], obs.error)
        if not obs.error <= obs.limit and not excess <= state["excess"]:
            state["fail"], state["excess"] = (example, obs), excess

    def run(phases, raise_violations):
        state["raise"] = raise_violations
        test = given(strategy)(search)
        for ex in reversed(examples):
            test = explicit_example(ex)(test)
        wrapped = settings(max_examples=max_examples, derandomize=True, deadline=None, database=None,
                           phases=phases, suppress_health_check=list(HealthCheck), print_blob=False,
                           verbosity=Verbosity.quiet, report_multiple_bugs=False)(test)
        try:
            wrapped()
        except (_Violation, Flaky):
            pass

    t0 = time.perf_counter()
    run([Phase.explicit, Phase.generate, Phase.target], raise_violations=False)
    if state["fail"] is not None and shrink:
        run([Phase.explicit, Phase.generate, Phase.target, Phase.shrink], raise_violations=True)
    seconds = time.perf_counter() - t0
    if state["fail"] is None:
        return CheckResult(name, check, prop, "passed", True, state["worst"], tolerance, n_examples=state["n"],
                           seconds=seconds, claimed=claimed)
    example, obs = state["fail"]
    recipe = f"{example!r} with n = {n}" if n != "" else repr(example)
    message = (f"estimator {name!r} violates {prop}: observed {obs.observed}; expected {obs.expected} "
               f"(tolerance {tolerance}); counterexample (law, seeds, ...): {recipe}")
    return CheckResult(name, check, prop, "failed", False, state["worst"], tolerance, recipe, message,
                       state["n"], seconds, claimed, example=example)
