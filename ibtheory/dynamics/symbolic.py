"""Symbolic checks (sympy) of the formulas the Langevin module relies on.

* :func:`fokker_planck_stationary_residual`: for a general potential L(x) (an undefined sympy Function) the 1-D
  Fokker-Planck equation  d p / dt = d/dx [ L'(x) p + (1 / beta) d p / dx ]  has p = exp(-beta L) as a stationary
  solution: the probability flux J = -(L' p + p' / beta) vanishes identically (returned residual: 0).
* :func:`kramers_mfpt`: Laplace's method on the exact MFPT  tau = beta int dy e^{beta L(y)} int dz e^{-beta L(z)}
  with L ~ L(a) + k_a (z - a)^2 / 2 near the minimum a and L ~ L(s) - k_s (y - s)^2 / 2 near the saddle s gives
  tau = 2 pi / sqrt(k_a k_s) exp(beta (L(s) - L(a))), i.e. Kramers' rate k = 1 / tau.
* :func:`kramers_rate_of`: that rate for a concrete sympy potential, curvatures from its second derivative.
* :func:`ou_stationary_variances`: the stationary variances of the Euler-Maruyama and Leimkuhler-Matthews schemes
  for L = k x^2 / 2, derived from their recursions: 2 / (beta k (2 - k dt)) and exactly 1 / (beta k).

References
----------
1. H. Risken, *The Fokker-Planck Equation*, Springer 1989, sec. 5.2 and 5.10.
2. H. A. Kramers, Physica 7:284-304 (1940); P. Hanggi, P. Talkner, M. Borkovec, Rev. Mod. Phys. 62:251 (1990).
3. B. Leimkuhler and C. Matthews, AMRX 2013(1):34-56.
"""

from __future__ import annotations

import sympy as sp

__all__ = ["fokker_planck_stationary_residual", "kramers_mfpt", "kramers_rate_of", "ou_stationary_variances"]


def fokker_planck_stationary_residual() -> sp.Expr:
    """The flux J = -(L'(x) p + p'(x) / beta) at p = exp(-beta L(x)), simplified; 0 proves stationarity.

    >>> fokker_planck_stationary_residual()
    0
    """
    x = sp.Symbol("x", real=True)
    beta = sp.Symbol("beta", positive=True)
    lx = sp.Function("L")(x)
    p = sp.exp(-beta * lx)
    flux = -(sp.diff(lx, x) * p + sp.diff(p, x) / beta)
    # zero flux implies d p / dt = -dJ/dx = 0 (detailed balance, stronger than stationarity)
    return sp.simplify(flux)


def kramers_mfpt() -> tuple[sp.Expr, dict[str, sp.Symbol]]:
    """Kramers' MFPT from Laplace's method: returns (tau, symbols), tau in the symbols beta, k_a, k_s, dL.

    >>> tau, s = kramers_mfpt()
    >>> sp.simplify(tau - 2 * sp.pi / sp.sqrt(s["k_a"] * s["k_s"]) * sp.exp(s["beta"] * s["dL"]))
    0
    """
    beta, ka, ks, dl = sp.symbols("beta k_a k_s dL", positive=True)
    z, y = sp.symbols("z y", real=True)
    # inner integral: the Gibbs mass of the well, L(z) - L(a) ~ k_a z^2 / 2 (energy measured from L(a))
    inner = sp.integrate(sp.exp(-beta * ka * z**2 / 2), (z, -sp.oo, sp.oo))
    # outer integral: the barrier region, L(y) - L(a) ~ dL - k_s y^2 / 2
    outer = sp.integrate(sp.exp(beta * (dl - ks * y**2 / 2)), (y, -sp.oo, sp.oo))
    tau = sp.simplify(beta * inner * outer)
    return tau, {"beta": beta, "k_a": ka, "k_s": ks, "dL": dl}


def kramers_rate_of(potential: sp.Expr, x: sp.Symbol, x_min, x_saddle, beta: sp.Symbol) -> sp.Expr:
    """Kramers' rate 1 / tau for a concrete sympy ``potential`` in ``x``: curvatures L''(x_min) and |L''(x_saddle)|.

    >>> x, b, h = sp.symbols("x beta h", positive=True)
    >>> sp.simplify(kramers_rate_of(h * (x**2 - 1)**2, x, -1, 0, b))
    2*sqrt(2)*h*exp(-beta*h)/pi
    """
    tau, s = kramers_mfpt()
    l2 = sp.diff(potential, x, 2)
    ka = sp.simplify(l2.subs(x, x_min))
    ks = sp.simplify(-l2.subs(x, x_saddle))
    dl = sp.simplify(potential.subs(x, x_saddle) - potential.subs(x, x_min))
    return sp.simplify(1 / tau.subs({s["k_a"]: ka, s["k_s"]: ks, s["dL"]: dl, s["beta"]: beta}))


def ou_stationary_variances() -> dict[str, sp.Expr]:
    """Stationary variances of the two schemes for L = k x^2 / 2 (a = 1 - k dt, c = sqrt(2 dt / beta)).

    Euler-Maruyama x' = a x + c xi:  v = a^2 v + c^2.
    Leimkuhler-Matthews x' = a x + (c/2)(xi + xi'): an ARMA(1,1) process; with u = Cov(x, xi) = c / 2 (x_n
    depends on xi_n through the last step only), v = a^2 v + c^2 / 2 + 2 a u (c / 2).

    >>> v = ou_stationary_variances()
    >>> v["leimkuhler-matthews"]
    1/(beta*k)
    """
    k, dt, beta = sp.symbols("k dt beta", positive=True)
    v = sp.Symbol("v")
    a = 1 - k * dt
    c2 = 2 * dt / beta
    em = sp.solve(sp.Eq(v, a**2 * v + c2), v)[0]
    u = sp.sqrt(c2) / 2
    lm = sp.solve(sp.Eq(v, a**2 * v + c2 / 2 + 2 * a * u * sp.sqrt(c2) / 2), v)[0]
    return {"euler": sp.factor(sp.simplify(em)), "leimkuhler-matthews": sp.simplify(lm)}
