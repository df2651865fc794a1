"""sympy derivations: Gibbs stationarity of the Fokker-Planck equation, Kramers' rate, OU scheme variances."""

import numpy as np
import sympy as sp
from numpy.testing import assert_allclose

from ibtheory.dynamics import DoubleWell, kramers_rate
from ibtheory.dynamics.symbolic import (
    fokker_planck_stationary_residual,
    kramers_mfpt,
    kramers_rate_of,
    ou_stationary_variances,
)


def test_gibbs_is_stationary_for_a_general_potential():
    assert fokker_planck_stationary_residual() == 0


def test_kramers_laplace_formula_and_numeric_agreement():
    tau, s = kramers_mfpt()
    assert sp.simplify(tau - 2 * sp.pi / sp.sqrt(s["k_a"] * s["k_s"]) * sp.exp(s["beta"] * s["dL"])) == 0
    x, b, h = sp.symbols("x beta h", positive=True)
    rate = kramers_rate_of(h * (x**2 - 1) ** 2, x, -1, 0, b)
    value = float(rate.subs({h: 1.5, b: 3.0}))
    assert_allclose(value, kramers_rate(DoubleWell(1.5), 3.0, -1.0, 0.0), rtol=1e-8)


def test_ou_scheme_variances():
    v = ou_stationary_variances()
    k, dt, beta = sp.symbols("k dt beta", positive=True)
    assert sp.simplify(v["euler"] - 2 / (beta * k * (2 - k * dt))) == 0
    assert sp.simplify(v["leimkuhler-matthews"] - 1 / (beta * k)) == 0
    # numeric check of EM's recursion by iterating the variance map
    kv, dtv, bv = 2.0, 0.1, 1.0
    var = 0.0
    for _ in range(500):
        var = (1 - kv * dtv) ** 2 * var + 2 * dtv / bv
    assert_allclose(var, float(v["euler"].subs({k: kv, dt: dtv, beta: bv})), rtol=1e-12)
    assert np.isfinite(var)
