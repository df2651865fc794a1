"""Exact discrete plug-in (maximum-likelihood) estimate of I(X;Y) from samples, in bits.

    I_plugin = sum_{x,y} p_n(x,y) log2[p_n(x,y) / (p_n(x) p_n(y))],   p_n(x,y) = count(x,y) / n

the exact mutual information of the empirical joint law (``ibtheory.tasks.from_samples`` followed by
``ibtheory.info.mutual_information``).  Each distinct value (or row) of x is one state, so it is exactly invariant
to relabelling values and reordering samples, obeys I <= min(H_n(X), H_n(Y)) and the data-processing inequality
for any deterministic processing of a sample; its bias is about +(|X| - 1)(|Y| - 1) / (2 n ln 2) bits (Miller
1955; Paninski 2003).  On continuous data every value is distinct and it returns H_n(Y): use it on discrete data.

>>> plugin_mi([[0], [0], [1], [1]], [[0], [0], [1], [1]])
1.0

References
----------
1. L. Paninski, "Estimation of entropy and mutual information", Neural Computation 15, 1191-1253 (2003).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from ..info import mutual_information
from ..tasks import from_samples

__all__ = ["plugin_mi"]


def plugin_mi(x: ArrayLike, y: ArrayLike) -> float:
    """Plug-in I(X;Y) in bits of samples ``x`` (n,) or (n, d_x) and ``y`` (n,) or (n, d_y): rows are states."""
    xs, ys = np.asarray(x), np.asarray(y)
    for name, arr in (("x", xs), ("y", ys)):
        if arr.ndim not in (1, 2) or arr.size == 0:
            raise ValueError(f"{name} must be a non-empty array of shape (n,) or (n, d), got shape {arr.shape}")
        if arr.dtype.kind == "f" and not np.all(np.isfinite(arr)):
            raise ValueError(f"{name} contains NaN or infinite values")
    return mutual_information(from_samples(xs, ys)["p_xy"].values)


plugin_mi.x_kind = "discrete"
plugin_mi.y_kind = "discrete"
plugin_mi.invariances = ()
