"""The sample type every law draws: paired draws with the true mutual information (shared by :mod:`laws` and
:mod:`benchmark_laws`)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Sample"]


@dataclass(frozen=True, repr=False)
class Sample:
    """n paired draws: ``x`` (n, d_x), ``y`` (n, d_y); ``mi`` the true I(X;Y) in bits (None if unknown)."""

    x: np.ndarray
    y: np.ndarray
    mi: float | None
    recipe: str

    def __repr__(self) -> str:
        return self.recipe
