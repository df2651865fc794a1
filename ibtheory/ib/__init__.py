"""The Information Bottleneck itself: exact solutions, the whole curve, a certificate of optimality, closed forms.

Public names (flat): :func:`solve` -> :class:`IBSolution` (one beta), :func:`ib_curve` -> xarray Dataset over beta,
:func:`curve_value`, :func:`curve_inverse`, :func:`curve_upper` (evaluate a computed curve), :func:`certify_solution`,
:func:`self_consistent_encoder` and :func:`kl_rows` (the IB encoder equation), :func:`trivial_critical_beta`, and
:func:`reduce` -> :class:`Reduced` (a joint p(x,y) on the minimal sufficient statistic of X for Y, the problem every
solver works on; ``ibtheory.compare`` uses it too).  Closed forms for verification live in
:mod:`ibtheory.ib.analytic`.  All information is in bits.
"""

from ._hull import upper_hull
from ._problem import Reduced, reduce
from .certify import Certificate, certify_solution
from .curve import (
    HARD_LABEL_EXPLANATION,
    anneal,
    curve_inverse,
    curve_upper,
    curve_value,
    default_betas,
    ib_curve,
    trivial_critical_beta,
)
from .solver import IBSolution, kl_rows, self_consistent_encoder, solve

__all__ = [
    "IBSolution",
    "solve",
    "ib_curve",
    "anneal",
    "curve_value",
    "curve_inverse",
    "curve_upper",
    "default_betas",
    "trivial_critical_beta",
    "certify_solution",
    "Certificate",
    "kl_rows",
    "self_consistent_encoder",
    "HARD_LABEL_EXPLANATION",
    "Reduced",
    "reduce",
    "upper_hull",
]
