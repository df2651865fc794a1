"""Ensemble estimator against the explicit pooled encoder p(t|x) and the binning estimator."""

import numpy as np
import pytest
from numpy.testing import assert_allclose

from ibtheory.estimators import bin_indices, binned_information, ensemble_information
from ibtheory.info import mutual_information


def _brute(acts, p_x, p_y_x, n_bins):
    """Build p(x, t) from the pooled binned rows of the R networks and compute the informations exactly."""
    R, n_x, _ = acts.shape
    rows = bin_indices(acts, n_bins=n_bins).reshape(R * n_x, -1)
    _, t = np.unique(rows, axis=0, return_inverse=True)
    t = t.ravel().reshape(R, n_x)
    p_xt = np.zeros((n_x, t.max() + 1))
    for r in range(R):
        p_xt[np.arange(n_x), t[r]] += p_x / R
    p_ty = p_xt.T @ p_y_x
    return mutual_information(p_xt), mutual_information(p_ty)


def test_matches_explicit_encoder():
    rng = np.random.default_rng(0)
    acts = np.round(rng.uniform(-1, 1, size=(2, 5, 40, 2)) * 2) / 2
    p_x = rng.dirichlet(np.ones(40))
    p_y_x = rng.dirichlet(np.ones(2), size=40)
    r = ensemble_information(acts, p_x, p_y_x, n_bins=4)
    assert r.I_XT.shape == (2,)
    for i in range(2):
        ixt, ity = _brute(acts[i], p_x, p_y_x, 4)
        assert_allclose([r.I_XT[i], r.I_TY[i]], [ixt, ity], atol=1e-10, err_msg="pooled encoder, tol 1e-10 bits")


@pytest.mark.parametrize("units", [12, 13, 32, 300])
def test_wide_layers_pool_states_across_repeats(units):
    # 30^13 > 2^62: the packed codes are re-ranked; the ranks must be shared by the repeats.  Repeats share some
    # rows (same state in several networks) and not others, so a per-repeat ranking mislabels states (it gave 108
    # states instead of 75 at 20 units, and a wrong I(T;Y))
    rng = np.random.default_rng(units)
    acts = rng.uniform(-1, 1, size=(3, 40, units))
    acts[1, :20] = acts[0, :20]
    acts[2, 10:30] = acts[0, 10:30]
    acts[2, 35:] = acts[1, 35:]
    p_x = rng.dirichlet(np.ones(40))
    p_y_x = rng.dirichlet(np.ones(2), size=40)
    r = ensemble_information(acts, p_x, p_y_x, n_bins=30)
    ixt, ity = _brute(acts, p_x, p_y_x, 30)
    n_states = len(np.unique(bin_indices(acts, n_bins=30).reshape(120, units), axis=0))
    assert int(r.n_states) == n_states == 75
    assert_allclose([r.I_XT, r.I_TY], [ixt, ity], atol=1e-10, err_msg=f"{units} units, tol 1e-10 bits")


def test_single_network_is_binning_and_identical_networks_too():
    rng = np.random.default_rng(1)
    acts = rng.uniform(-1, 1, size=(1, 64, 3))
    p_x = np.full(64, 1 / 64)
    p_y_x = np.eye(2)[rng.integers(0, 2, 64)]
    b = binned_information(acts, p_x, p_y_x, n_bins=3)
    e = ensemble_information(acts, p_x, p_y_x, n_bins=3)
    e3 = ensemble_information(np.repeat(acts, 3, axis=0), p_x, p_y_x, n_bins=3)
    assert_allclose([e.I_XT, e3.I_XT], b.I_XT[0], atol=1e-12, err_msg="R = 1 or identical nets: binning")
    assert_allclose([e.I_TY, e3.I_TY], b.I_TY[0], atol=1e-12)
    assert_allclose(e3.H_T_given_X, 0.0, atol=1e-12)
