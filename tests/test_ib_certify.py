"""The certificate: a valid upper bound (never below the true gap), zero at known optima, re-seeding."""

import sys

import numpy as np
import pytest
from numpy.testing import assert_allclose

from ibtheory import tasks
from ibtheory.ib import certify_solution, solve
from ibtheory.ib._problem import reduce

certify_mod = sys.modules["ibtheory.ib.certify"]


def test_gap_small_at_converged_bsc_solution():
    p_xy = tasks.binary_symmetric(0.2).p_xy.values
    s = solve(p_xy, 4.0, certify=False)
    c = certify_solution(p_xy, s)
    assert 0 <= c.gap <= 1e-6 and c.converged


def test_gap_bounds_a_local_optimum_from_above():
    """A one-cluster (trivial) encoder above the critical beta is not optimal: the certified gap must be at least
    the true excess of its Lagrangian over the optimum's (measured by the certified solver)."""
    p_xy = tasks.binary_symmetric(0.1).p_xy.values
    beta = 3.0
    trivial = solve(p_xy, beta, init=np.ones((2, 1)), certify=False)
    best = solve(p_xy, beta)
    excess = trivial.lagrangian - best.lagrangian
    c = certify_solution(p_xy, trivial)
    assert excess > 0.1
    assert c.gap >= excess - 1e-9, f"gap {c.gap} below the true excess {excess}"
    assert best.gap <= 1e-6


def test_seeding_escapes_the_trivial_local_optimum():
    p_xy = np.array([[0.30, 0.05], [0.05, 0.30], [0.15, 0.15]])
    s = solve(p_xy, 6.0, init=np.ones((3, 1)))
    assert s.gap <= 1e-6 and s.I_XT > 0.1


def test_gibbs_lower_values_match_direct_formula():
    """phi(q) - a.q evaluated by the vectorised helper equals the direct formula for a random q of Gibbs form."""
    rng = np.random.default_rng(0)
    W = rng.dirichlet(np.ones(2), size=5)
    a = rng.normal(size=5)
    lam = np.array([[0.7]])
    vals, q = certify_mod._gibbs_values(a, W[:, 1:], W, 2.0, lam)
    s = q[0] @ W
    direct = -(q[0] * np.log(q[0])).sum() + 2.0 * (s * np.log(s)).sum() - q[0] @ a
    assert_allclose(vals[0], direct, rtol=1e-12)


def test_rejects_large_alphabets():
    p_xy = np.full((2, 4), 1 / 8)
    p_xy[0, 0] += 0.05
    p_xy[1, 0] -= 0.05
    s = solve(p_xy, 3.0)
    assert s.gap is None
    with pytest.raises(ValueError, match="Y"):
        certify_mod.certify_state(reduce(p_xy), 3.0, s)
