"""What every law shares: the sample type (paired draws with the true mutual information), the sample a law returns
and the class decorator of a law (used by :mod:`laws` and :mod:`benchmark_laws`)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Sample", "law_class", "law_sample"]


@dataclass(frozen=True, repr=False)
class Sample:
    """n paired draws: ``x`` (n, d_x), ``y`` (n, d_y); ``mi`` the true I(X;Y) in bits (None if unknown)."""

    x: np.ndarray
    y: np.ndarray
    mi: float | None
    recipe: str

    def __repr__(self) -> str:
        return self.recipe


def law_sample(law, x: np.ndarray, y: np.ndarray, n: int, seed: int) -> Sample:
    """The Sample (x, y) that ``law.sample(n, seed)`` drew, with the law's I* and the recipe to draw it again."""
    return Sample(x, y, law.mi, f"{law!r}.sample(n={n}, seed={seed})")


def law_class(x_kind: str, y_kind: str):
    """Class decorator of a sampling law: a frozen dataclass (its own __repr__) with class attributes
    ``x_kind`` and ``y_kind`` ("discrete" or "continuous"; not dataclass fields)."""

    def make(cls):
        cls.x_kind, cls.y_kind = x_kind, y_kind
        return dataclass(frozen=True, repr=False)(cls)

    return make
