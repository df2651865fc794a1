"""The sufficient-statistic reduction of a joint p(x,y) (public as ``ibtheory.ib.reduce`` and ``ibtheory.ib.Reduced``,
used by the IB solver, the curve, the certificate and ``ibtheory.compare``), and the IB's size and flag checks.

The IB curve of (X, Y) equals that of (S(X), Y) with S the minimal sufficient statistic of X for Y (x ~ x' iff
p(y|x) = p(y|x')): an optimal encoder never separates x with the same p(y|x), because merging them changes neither
p(t) nor p(y|t) and can only lower I(X;T).  The reduced problem is

    p(s) = sum_{x in s} p(x),    W[s, y] = sum_{x in s} p(x, y) / p(s)    (the class's mean p(y|x)),

and an encoder on S maps back as p(t|x) = p(t|s(x)).  With the mean rows, I(X;T) = I(S;T) and I(T;Y) computed on
the reduced problem are *exact* for the original p(x,y) for every class-shared encoder.  Rows with p(x) = 0 are
dropped (``classes[x] = -1``); they get the encoder row p(t) (they carry no mass, so they change nothing).

With ``split_support=True`` rows equal to 12 decimals are also kept apart when their supports {y : p(y|x) > 0}
differ (a 1e-13 tail against an exact 0): KL[p(y|x) || q] is infinite where q = 0 < p(y|x), so a comparison of
layers with the IB equations (``ibtheory.compare``) must not pool them; the IB curve itself does not need it.

References
----------
1. N. Tishby, F. C. Pereira, W. Bialek, "The information bottleneck method", Allerton 1999 (sufficient statistics
   and the IB).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import xarray as xr
from numpy.typing import ArrayLike
from scipy.special import xlogy

from .._validate import flag
from ..info import validate_distribution, xlogx
from ..tasks import sufficient_classes

__all__ = ["Reduced", "reduce", "ib_problem", "as_table", "check_size", "expand_encoder",
           "MAX_CELLS"]

#: Decimal places used to decide that two rows p(y|x) are equal (see ``tasks.sufficient_classes``).
ROW_DECIMALS = 12
#: Largest working set, in float64 cells, that :func:`check_size` lets a solve or a curve allocate (2**28 cells =
#: 2 GiB): checked before any work, so a problem too large for memory fails at once instead of after minutes.
MAX_CELLS = 2**28


@dataclass(frozen=True)
class Reduced:
    """A joint p(x,y) reduced to its minimal sufficient statistic S.

    Attributes
    ----------
    p_s : (n_s,) probabilities of the classes (all > 0).
    W : (n_s, n_y) p(y|s), rows sum to 1.
    classes : (n_x,) class index of every original x, -1 for x with p(x) = 0.
    n_x, n_y : sizes of the original table.
    merge_error : largest |p(y|x) - W[s(x), y]| over merged x (within the rounding to 12 decimals used).
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
        """Number of classes |S|."""
        return int(self.p_s.size)

    @property
    def p_y(self) -> np.ndarray:
        """p(y) = sum_s p(s) W[s, y], shape (n_y,)."""
        return self.p_s @ self.W

    @cached_property
    def neg_entropy_rows(self) -> np.ndarray:
        """sum_y W ln W per class (nats), i.e. -H(Y|S=s); computed once per problem (read-only)."""
        out = xlogx(self.W).sum(axis=1)
        out.flags.writeable = False
        return out

    @cached_property
    def light_costs(self) -> tuple[np.ndarray, np.ndarray]:
        """(order, c): the classes sorted by p(s), and for each prefix L = order[:k + 1] (eps = p(L), Z = [s in L])
        c[k] = I(Z;Y) + eps I_L(S;Y) in nats, I_L on p(s,y | s in L): beta c[k] is what leaving L out costs the
        certificate of ``ibtheory.ib.certify.split_light``.  Vectorised over the prefixes (log1p and per-prefix
        sums keep it accurate at eps ~1e-30)."""
        order = np.argsort(self.p_s, kind="stable")
        p = self.p_s[order]
        J = p[:, None] * self.W[order]
        eps = np.cumsum(p)
        JL = np.cumsum(J, axis=0)
        JH = np.maximum(self.p_y[None, :] - JL, 0.0)
        with np.errstate(divide="ignore", invalid="ignore"):
            # I(Z;Y) = sum_y pL(y) ln(pL(y) / (eps p(y))) + pH(y) ln(pH(y) / ((1 - eps) p(y))), the second by log1p
            izy = (xlogy(JL, JL / (eps[:, None] * self.p_y[None, :]))
                   - np.where(JH > 0, JH * (np.log1p(JL / JH) + np.log1p(-eps)[:, None]), 0.0)).sum(axis=1)
            # eps I_L(S;Y) = sum_{s in L} sum_y p(s,y) ln W(y|s) - sum_y pL(y) ln(pL(y) / eps)
            eil = np.cumsum(xlogy(J, self.W[order]).sum(axis=1)) - xlogy(JL, JL / eps[:, None]).sum(axis=1)
        c = np.maximum(izy, 0.0) + np.maximum(eil, 0.0)
        c[~np.isfinite(c)] = np.inf
        order.flags.writeable = False
        c.flags.writeable = False
        return order, c


def as_table(p_xy, name: str = "p_xy"):
    """The joint table of ``p_xy``: an array, or a task Dataset (its ``p_xy`` variable) or DataArray."""
    if isinstance(p_xy, xr.Dataset):
        if "p_xy" not in p_xy:
            raise ValueError(f"{name} is a Dataset without a 'p_xy' variable (a task from ibtheory.tasks has one)")
        p_xy = p_xy["p_xy"]
    if isinstance(p_xy, xr.DataArray):
        p_xy = p_xy.values
    return p_xy


def reduce(p_xy: ArrayLike, name: str = "p_xy", *, split_support: bool = False) -> Reduced:
    """Validate ``p_xy`` (n_x, n_y; an array or a task Dataset) and reduce it to its minimal sufficient statistic
    (see the module docstring): x ~ x' when p(y|x) and p(y|x') agree to 12 decimals (and, with ``split_support``,
    have the same support).

    Raises ``ValueError`` naming ``name`` for an invalid table (NaN, negative, not summing to 1).

    >>> r = reduce([[0.25, 0.25], [0.25, 0.25], [0.0, 0.0]])
    >>> r.n_s, r.classes.tolist()
    (1, [0, 0, -1])
    """
    split_support = flag(split_support, "split_support")
    p = validate_distribution(as_table(p_xy, name), name, ndim=2)
    n_x, n_y = p.shape
    p_x = p.sum(axis=1)
    keep = np.flatnonzero(p_x > 0)
    sub = p[keep]
    cls_kept = sufficient_classes(sub / sub.sum(), decimals=ROW_DECIMALS)
    if split_support:
        cls_kept = np.unique(np.column_stack([cls_kept, sub > 0]), axis=0, return_inverse=True)[1].ravel()
    n_s = int(cls_kept.max()) + 1
    p_s = np.bincount(cls_kept, weights=p_x[keep], minlength=n_s)
    # sums to 1 only within rounding (or the 1e-9 tolerance of validate_distribution): with a single class,
    # p_s = [1 + 2e-16] would give H(S) = -3e-16 bits and a hull starting at a negative I(X;T)
    p_s /= p_s.sum()
    joint_s = np.zeros((n_s, n_y))
    np.add.at(joint_s, cls_kept, sub)
    W = joint_s / p_s[:, None]
    W /= W.sum(axis=1, keepdims=True)
    merge_error = float(np.abs(sub / p_x[keep][:, None] - W[cls_kept]).max())
    classes = np.full(n_x, -1, dtype=np.int64)
    classes[keep] = cls_kept
    deterministic = bool(np.all(W.max(axis=1) == 1.0))
    return Reduced(p_s, W, classes, n_x, n_y, merge_error, deterministic)


def ib_problem(p_xy: ArrayLike, name: str = "p_xy") -> Reduced:
    """:func:`reduce` for the IB: also raises ``ValueError`` when Y takes a single value (fewer than two y with
    positive probability: the IB curve is identically zero and beta is undefined)."""
    prob = reduce(p_xy, name)
    n_pos = int(np.count_nonzero(prob.p_y > 0))
    if prob.n_y < 2 or n_pos < 2:
        raise ValueError(
            f"{name} must give Y at least two values with positive probability, got shape {(prob.n_x, prob.n_y)} "
            f"with {n_pos} such value(s); the IB curve of a constant Y is identically 0"
        )
    return prob


def check_size(prob: Reduced, n_t: int, n_points: int = 1, what: str = "this problem", hint: str = "") -> None:
    """Refuse, before any work, a problem whose working set exceeds :data:`MAX_CELLS` float64 cells.

    The working set is ``n_points * n_t * (n_x + n_s + n_y)`` cells: per point (beta) an encoder over every x
    (n_x, n_t), the iteration's (n_t, n_s) divergences and weights, and the decoder (n_t, n_y).
    """
    cells = int(n_points) * int(n_t) * (prob.n_x + prob.n_s + prob.n_y)
    if cells > MAX_CELLS:
        raise ValueError(
            f"{what} needs ~{cells * 8 / 2**30:.1f} GiB ({cells:.3g} float64 cells: {n_points} point(s) x {n_t} "
            f"clusters x (|X| {prob.n_x} + |S| {prob.n_s} + |Y| {prob.n_y})), above the limit MAX_CELLS = "
            f"{MAX_CELLS:.3g} cells ({MAX_CELLS * 8 / 2**30:.3g} GiB){'; ' + hint if hint else ''}; or raise "
            f"ibtheory.ib._problem.MAX_CELLS if the memory is there"
        )


def expand_encoder(enc_s: np.ndarray, classes: np.ndarray, p_t: np.ndarray) -> np.ndarray:
    """Map an encoder on S (n_s, n_t) back to every original x (n_x, n_t); dropped x (class -1) get p(t)."""
    out = enc_s[np.maximum(classes, 0)]
    out[classes < 0] = p_t
    return out
