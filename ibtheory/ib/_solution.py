"""The IB solution type and its construction from a state of the reduced problem (shared by the solver, the
annealing curve and the certified improvement, which import it from here)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TypeVar

import numpy as np
import xarray as xr

from ..info import mi_of_joint
from . import _iterate as it
from ._problem import Reduced, expand_encoder

__all__ = ["IBSolution", "solution_from_state", "clearly_lower", "first_lower", "NOISE"]

T = TypeVar("T")

#: relative decrease of a Lagrangian (~10 ulp) below which a candidate counts as lower only within rounding
NOISE = 2e-15


def clearly_lower(new: float, old: float) -> bool:
    """Whether the Lagrangian ``new`` is below ``old`` by more than rounding, ``NOISE`` max(1, |old|) (bits): a
    repair that took a 1-ulp decrease (3.6e-15 at |L| ~16) for an improvement spent its rounds on the same point."""
    return new < old - NOISE * max(1.0, abs(old))


def first_lower(cands: Iterable[T], lagrangian: Callable[[T], float], old: float) -> tuple[T | None, T | None]:
    """A repair's pick among candidates made one at a time: the first whose Lagrangian is clearly lower than
    ``old`` (:func:`clearly_lower`; the rest are not made), else (None, the lowest of those lower by more than
    1e-15 bits only, within rounding, or None)."""
    weak = None
    for c in cands:
        new = lagrangian(c)
        if clearly_lower(new, old):
            return c, None
        if new < old - 1e-15 and (weak is None or new < lagrangian(weak)):
            weak = c
    return None, weak


@dataclass(frozen=True)
class IBSolution:
    """One IB solution at ``beta``.

    Attributes
    ----------
    encoder : (n_x, n_t) p(t|x); every row sums to 1 (rows of x with p(x) = 0 are set to p(t)).
    decoder : (n_t, n_y) p(y|t).
    p_t : (n_t,) p(t).
    I_XT, I_TY : mutual informations in bits.
    lagrangian : I_XT - beta * I_TY in bits.
    iterations : number of evaluations of the self-consistent map.
    residual : max |G(theta) - theta| of the map at the returned point (probabilities).
    converged : residual < tol.
    beta : the trade-off parameter.
    gap : certified upper bound (bits) on lagrangian - min L, or None when not certified (|Y| > 3 or off).
    deterministic : True for the deterministic-IB variant.
    x_class : (n_x,) index of x's sufficient-statistic class, -1 for dropped x with p(x) = 0.
    """

    encoder: np.ndarray
    decoder: np.ndarray
    p_t: np.ndarray
    I_XT: float
    I_TY: float
    lagrangian: float
    iterations: int
    residual: float
    converged: bool
    beta: float
    gap: float | None = None
    deterministic: bool = False
    x_class: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64), repr=False)

    @property
    def n_t(self) -> int:
        return int(self.p_t.size)

    def to_dataset(self) -> xr.Dataset:
        """The solution as a Dataset: encoder(x, t), decoder(t, y), p_t(t), x_class(x) and scalar I_XT, I_TY,
        lagrangian, gap (bits; gap NaN when not certified), beta, iterations, residual, converged."""
        bits = {"units": "bits"}
        ds = xr.Dataset(
            {
                "encoder": (("x", "t"), self.encoder, {"long_name": "p(t|x)", "units": "1"}),
                "decoder": (("t", "y"), self.decoder, {"long_name": "p(y|t)", "units": "1"}),
                "p_t": ("t", self.p_t, {"long_name": "p(t)", "units": "1"}),
                "x_class": ("x", self.x_class, {"long_name": "sufficient-statistic class of x (-1: p(x) = 0)"}),
                "I_XT": ((), self.I_XT, {**bits, "long_name": "I(X;T)"}),
                "I_TY": ((), self.I_TY, {**bits, "long_name": "I(T;Y)"}),
                "lagrangian": ((), self.lagrangian, {**bits, "long_name": "I(X;T) - beta I(T;Y)"}),
                "gap": ((), np.nan if self.gap is None else self.gap,
                        {**bits, "long_name": "certified bound on L - min L (NaN: not certified)"}),
                "beta": ((), self.beta), "iterations": ((), self.iterations),
                "residual": ((), self.residual, {"long_name": "max |G(theta) - theta|"}),
                "converged": ((), self.converged), "deterministic": ((), self.deterministic),
            },
            coords={"x": np.arange(self.encoder.shape[0]), "t": np.arange(self.n_t),
                    "y": np.arange(self.decoder.shape[1])},
        )
        return ds


def _measures(prob: Reduced, enc: np.ndarray) -> tuple[np.ndarray, np.ndarray, float, float]:
    """p(t), p(y|t), I(S;T) and I(T;Y) in bits (clipped at 0) of an encoder p(t|s) (n_s, n_t)."""
    joint_st = prob.p_s[:, None] * enc
    p_t = joint_st.sum(axis=0)
    joint_ty = joint_st.T @ prob.W
    with np.errstate(divide="ignore", invalid="ignore"):  # empty clusters (p(t) = 0) are dropped by the caller
        dec = joint_ty / p_t[:, None]
    return (p_t, dec, max(mi_of_joint(joint_st, prob.p_s, p_t), 0.0),
            max(mi_of_joint(joint_ty, p_t, prob.p_y), 0.0))


def solution_from_state(prob: Reduced, beta: float, state: it.State, iterations: int, residual: float,
                        tol: float, deterministic: bool = False, gap: float | None = None) -> IBSolution:
    """Package a converged state of the reduced problem as an :class:`IBSolution` over the original x."""
    enc_s = np.exp(state.log_enc)
    enc_s /= enc_s.sum(axis=1, keepdims=True)
    p_t, dec, ixt, ity = _measures(prob, enc_s)
    keep = p_t > 0
    enc_s, p_t, dec = enc_s[:, keep], p_t[keep], dec[keep]
    return IBSolution(
        encoder=expand_encoder(enc_s, prob.classes, p_t), decoder=dec, p_t=p_t, I_XT=ixt, I_TY=ity,
        lagrangian=ixt - beta * ity, iterations=int(iterations), residual=float(residual),
        converged=bool(residual < tol or state.converged), beta=float(beta), gap=gap, deterministic=deterministic,
        x_class=prob.classes.copy(),
    )
