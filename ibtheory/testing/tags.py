"""The sample-based estimator signature and the capability tags an estimator may declare.

Signature
---------
An *estimator* is any callable ``estimator(x, y) -> float`` returning an estimate of I(X;Y) in **bits** from n
paired samples: ``x`` of shape (n, d_x) and ``y`` of shape (n, d_y), integer arrays (discrete codes) or float arrays
(continuous values).  Row i of x and row i of y are one draw of (X, Y).

Capabilities (optional attributes of the callable, or of ``.func`` for a ``functools.partial``)
------------------------------------------------------------------------------------------------
``x_kind``, ``y_kind``
    ``"discrete"`` or ``"continuous"`` (default ``"continuous"``): the data the suite feeds to each argument.
``invariances``
    the invariances the estimator claims, a subset of {"affine", "monotone"} ("monotone": strictly increasing maps
    of each coordinate of a continuous argument; implies "affine").  Invariances that are not claimed are still
    checked, but their failure is reported as an expected failure ("xfail"), not a defect.
``name``
    a display name (default: the function's ``__name__`` and the keywords of a partial).

>>> import numpy as np
>>> @estimator_tags(x_kind="discrete", y_kind="discrete")
... def zero(x, y):
...     return 0.0
>>> get_tags(zero).x_kind
'discrete'
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["EstimatorTags", "get_tags", "estimator_tags", "estimator_name", "INVARIANCES"]

#: Invariances an estimator may claim.
INVARIANCES = ("affine", "monotone")
_KINDS = ("discrete", "continuous")


@dataclass(frozen=True)
class EstimatorTags:
    """Declared capabilities: input kinds of x and y and the claimed invariances."""

    x_kind: str = "continuous"
    y_kind: str = "continuous"
    invariances: frozenset = frozenset()

    def __post_init__(self) -> None:
        for nm in ("x_kind", "y_kind"):
            if getattr(self, nm) not in _KINDS:
                raise ValueError(f"{nm} must be one of {_KINDS}, got {getattr(self, nm)!r}")
        bad = set(self.invariances) - set(INVARIANCES)
        if bad:
            raise ValueError(f"invariances must be a subset of {INVARIANCES}, got unknown {sorted(bad)}")

    def claims(self, invariance: str) -> bool:
        """Whether the estimator claims ``invariance`` ("monotone" implies "affine")."""
        return invariance in self.invariances or (invariance == "affine" and "monotone" in self.invariances)


def _base(estimator: Callable) -> Callable:
    while isinstance(estimator, functools.partial):
        estimator = estimator.func
    return estimator


def get_tags(estimator: Callable) -> EstimatorTags:
    """The :class:`EstimatorTags` of ``estimator`` from its attributes (looking through ``functools.partial``)."""
    if not callable(estimator):
        raise ValueError(f"estimator must be callable, got {type(estimator).__name__}")
    sources = [estimator, _base(estimator)]

    def attr(nm: str, default):
        for s in sources:
            if hasattr(s, nm):
                return getattr(s, nm)
        return default

    return EstimatorTags(attr("x_kind", "continuous"), attr("y_kind", "continuous"),
                         frozenset(attr("invariances", ())))


def estimator_tags(
    x_kind: str = "continuous", y_kind: str = "continuous", invariances: tuple[str, ...] = (),
    name: str | None = None,
) -> Callable[[Callable], Callable]:
    """Decorator that validates and attaches the capability attributes to an estimator function."""
    tags = EstimatorTags(x_kind, y_kind, frozenset(invariances))

    def deco(func: Callable) -> Callable:
        func.x_kind, func.y_kind, func.invariances = tags.x_kind, tags.y_kind, tuple(sorted(tags.invariances))
        if name is not None:
            func.name = name
        return func

    return deco


def estimator_name(estimator: Callable) -> str:
    """A readable name: the ``name`` attribute, else ``func(k=v, ...)`` for partials, else ``__name__``."""
    if getattr(estimator, "name", None):
        return str(estimator.name)
    if isinstance(estimator, functools.partial):
        kw = ", ".join(f"{k}={v!r}" for k, v in estimator.keywords.items())
        return f"{estimator_name(estimator.func)}({kw})"
    return getattr(estimator, "__name__", type(estimator).__name__)
