"""Validation and the sufficient-statistic reduction shared by the IB solver, the curve and the certificate.

The IB curve of (X, Y) equals that of (S(X), Y) with S the minimal sufficient statistic of X for Y (x ~ x' iff
p(y|x) = p(y|x')): an optimal encoder never separates x with the same p(y|x), because merging them changes neither
p(t) nor p(y|t) and can only lower I(X;T).  The reduced problem is

    p(s) = sum_{x in s} p(x),    W[s, y] = sum_{x in s} p(x, y) / p(s)    (the class's mean p(y|x)),

and an encoder on S maps back as p(t|x) = p(t|s(x)).  With the mean rows, I(X;T) = I(S;T) and I(T;Y) computed on
the reduced problem are *exact* for the original p(x,y) for every class-shared encoder.  Rows with p(x) = 0 are
dropped (``classes[x] = -1``); they get the encoder row p(t) (they carry no mass, so they change nothing).

References
----------
1. N. Tishby, F. C. Pereira, W. Bialek, "The information bottleneck method", Allerton 1999 (sufficient statistics
   and the IB).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from ..info import validate_distribution
from ..tasks import sufficient_classes

__all__ = ["Reduced", "reduce", "validate_beta", "expand_encoder"]

#: Decimal places used to decide that two rows p(y|x) are equal (see ``tasks.sufficient_classes``).
ROW_DECIMALS = 12


@dataclass(frozen=True)
class Reduced:
    """A joint p(x,y) reduced to its minimal sufficient statistic S.

    Attributes
    ----------
    p_s : (n_s,) probabilities of the classes (all > 0).
    W : (n_s, n_y) p(y|s), rows sum to 1.
    classes : (n_x,) class index of every original x, -1 for x with p(x) = 0.
    n_x, n_y : sizes of the original table.
    merge_error : largest |p(y|x) - W[s(x), y]| over merged x (the rounding tolerance used, < 1e-12).
    deterministic : True when every row of W is one-hot (hard labels).
    """

    p_s: np.ndarray
    W: np.ndarray
    classes: np.ndarray
    n_x: int
    n_y: int
    merge_error: float
    deterministic: bool

    @property
    def n_s(self) -> int:
        return int(self.p_s.size)

    @property
    def p_y(self) -> np.ndarray:
        return self.p_s @ self.W

    @property
    def neg_entropy_rows(self) -> np.ndarray:
        """sum_y W ln W per class (nats), i.e. -H(Y|S=s)."""
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(self.W > 0, self.W * np.log(self.W), 0.0).sum(axis=1)


def as_table(p_xy, name: str = "p_xy"):
    """The joint table of ``p_xy``: an array, or a task Dataset (its ``p_xy`` variable) or DataArray."""
    import xarray as xr

    if isinstance(p_xy, xr.Dataset):
        if "p_xy" not in p_xy:
            raise ValueError(f"{name} is a Dataset without a 'p_xy' variable (a task from ibtheory.tasks has one)")
        p_xy = p_xy["p_xy"]
    if isinstance(p_xy, xr.DataArray):
        p_xy = p_xy.values
    return p_xy


def reduce(p_xy: ArrayLike, name: str = "p_xy") -> Reduced:
    """Validate ``p_xy`` (n_x, n_y; an array or a task Dataset) and reduce it to its minimal sufficient statistic
    (see the module docstring).

    Raises ``ValueError`` for an invalid table (NaN, negative, not summing to 1) or when Y takes a single value
    (fewer than two y with positive probability: the IB curve is identically zero and beta is undefined).

    >>> r = reduce([[0.25, 0.25], [0.25, 0.25], [0.0, 0.0]])
    >>> r.n_s, r.classes.tolist()
    (1, [0, 0, -1])
    """
    p = validate_distribution(as_table(p_xy, name), name, ndim=2)
    n_x, n_y = p.shape
    p_y = p.sum(axis=0)
    if n_y < 2 or np.count_nonzero(p_y > 0) < 2:
        raise ValueError(
            f"{name} must give Y at least two values with positive probability, got shape {p.shape} with "
            f"{np.count_nonzero(p_y > 0)} such value(s); the IB curve of a constant Y is identically 0"
        )
    p_x = p.sum(axis=1)
    keep = np.flatnonzero(p_x > 0)
    sub = p[keep]
    cls_kept = sufficient_classes(sub / sub.sum(), decimals=ROW_DECIMALS)
    n_s = int(cls_kept.max()) + 1
    p_s = np.bincount(cls_kept, weights=p_x[keep], minlength=n_s)
    joint_s = np.zeros((n_s, n_y))
    np.add.at(joint_s, cls_kept, sub)
    W = joint_s / p_s[:, None]
    W /= W.sum(axis=1, keepdims=True)
    merge_error = float(np.abs(sub / p_x[keep][:, None] - W[cls_kept]).max())
    classes = np.full(n_x, -1, dtype=np.int64)
    classes[keep] = cls_kept
    deterministic = bool(np.all(W.max(axis=1) == 1.0))
    return Reduced(p_s, W, classes, n_x, n_y, merge_error, deterministic)


def validate_beta(beta: float, name: str = "beta") -> float:
    """Return ``beta`` as a float or raise ``ValueError`` unless it is finite and > 0."""
    try:
        b = float(beta)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a positive finite number, got {beta!r}") from None
    if not (np.isfinite(b) and b > 0):
        raise ValueError(f"{name} must be a positive finite number, got {beta!r}")
    return b


def expand_encoder(enc_s: np.ndarray, classes: np.ndarray, p_t: np.ndarray) -> np.ndarray:
    """Map an encoder on S (n_s, n_t) back to every original x (n_x, n_t); dropped x (class -1) get p(t)."""
    out = enc_s[np.maximum(classes, 0)]
    out[classes < 0] = p_t
    return out
