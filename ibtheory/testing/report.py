"""Typed results of the conformance checks: one :class:`CheckResult` per check, a :class:`Report` per estimator.

Status of a check: ``passed`` (the property held on every example), ``failed`` (a counterexample violated it),
``xfail`` (it failed and the failure was expected: listed in ``expected_failed_checks`` or an invariance the
estimator does not claim), ``xpass`` (expected to fail but held), ``skipped`` (does not apply to the estimator's
declared input kinds).  Errors and tolerances are in bits unless the tolerance text says otherwise.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field, fields, replace

__all__ = ["CheckResult", "Report", "STATUSES", "EstimatorCheckError", "EstimatorCheckWarning"]

STATUSES = ("passed", "failed", "xfail", "xpass", "skipped")


class EstimatorCheckError(AssertionError):
    """Raised by ``check_estimator(..., on_fail="raise")`` and by the pytest helper when a check fails."""


class EstimatorCheckWarning(UserWarning):
    """Issued by ``check_estimator(..., on_fail="warn")`` for each failed check."""


@dataclass(frozen=True)
class CheckResult:
    """The outcome of one check on one estimator.

    ``held``: True / False / None (skipped).  ``worst_error``: the largest error seen over all examples, bits
    (what ``tolerance`` bounds; NaN when skipped).  ``counterexample``: a recipe that reproduces the (shrunk)
    violating example, empty when the property held; ``example`` the example itself (the tuple the check's
    strategy drew: law, seed(s), transform...), for replaying it.  ``message``: names the estimator, the
    property, what was observed, what was expected and the tolerance.
    """

    estimator: str
    check: str
    property: str
    status: str
    held: bool | None
    worst_error: float
    tolerance: str
    counterexample: str = ""
    message: str = ""
    n_examples: int = 0
    seconds: float = 0.0
    claimed: bool = True
    reason: str = ""
    example: object = field(default=None, repr=False, compare=False)

    def with_expectation(self, reason: str) -> CheckResult:
        """This result re-labelled as expected to fail: failed -> xfail, passed -> xpass."""
        status = {"failed": "xfail", "passed": "xpass"}.get(self.status, self.status)
        return replace(self, status=status, reason=reason)

    def __str__(self) -> str:
        text = f"[{self.status}] {self.estimator}: {self.check}"
        if self.status in ("failed", "xfail"):
            text += f" -- {self.message}"
        elif self.reason:
            text += f" ({self.reason})"
        return text


@dataclass(frozen=True)
class Report:
    """All check results for one estimator, in the order they ran."""

    estimator: str
    results: tuple[CheckResult, ...]

    def __iter__(self) -> Iterator[CheckResult]:
        return iter(self.results)

    def __len__(self) -> int:
        return len(self.results)

    def __getitem__(self, check: str) -> CheckResult:
        """The result of the check with this full name (``check_x(...)``) or property name (first variant)."""
        for r in self.results:
            if check in (r.check, r.property):
                return r
        raise KeyError(f"no check named {check!r} in the report of {self.estimator}; have "
                       f"{[r.check for r in self.results]}")

    @property
    def failed(self) -> tuple[CheckResult, ...]:
        """The unexpected failures."""
        return tuple(r for r in self.results if r.status == "failed")

    def held(self, prop: str) -> bool | None:
        """Whether every variant of property ``prop`` held (None if all were skipped)."""
        outcomes = [r.held for r in self.results if r.property == prop and r.held is not None]
        return None if not outcomes else all(outcomes)

    def to_records(self) -> list[dict]:
        """One dictionary per check (for json or ``pandas.DataFrame``)."""
        return [{f.name: getattr(r, f.name) for f in fields(r) if f.name != "example"} for r in self.results]

    def to_markdown(self) -> str:
        """A markdown table: check, status, worst error, tolerance, counterexample (truncated)."""
        lines = ["| check | status | worst error (bits) | tolerance | counterexample |", "|---|---|---|---|---|"]
        for r in self.results:
            err = "" if math.isnan(r.worst_error) else f"{r.worst_error:.3g}"
            ce = r.counterexample.replace("|", "\\|").replace("\n", " ")
            ce = ce if len(ce) <= 160 else ce[:157] + "..."
            lines.append(f"| `{r.check}` | {r.status} | {err} | {r.tolerance} | {ce} |")
        return "\n".join(lines)

    def __str__(self) -> str:
        counts = {s: sum(r.status == s for r in self.results) for s in STATUSES}
        head = f"{self.estimator}: " + ", ".join(f"{v} {k}" for k, v in counts.items() if v)
        return "\n".join([head, *(f"  {r}" for r in self.results)])
