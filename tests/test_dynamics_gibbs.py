"""Gibbs densities: closed forms vs quadrature, free-energy identities, exact sampling, convergence measures."""

import re

import numpy as np
import pytest
from numpy.testing import assert_allclose

from ibtheory.dynamics import (
    CallablePotential,
    DoubleWell,
    Quadratic,
    bin_probabilities,
    gibbs,
    histogram_counts,
    histogram_free_energy,
    kl_bits,
    sample_gibbs,
    total_variation,
)

LN2 = np.log(2.0)


def test_quadratic_closed_form_equals_2d_quadrature():
    q = Quadratic([[2.0, 0.5], [0.5, 1.0]], center=[0.3, -0.2])
    exact = gibbs(q, 2.0)
    axis = np.linspace(-5, 5, 401)
    quad = gibbs(q, 2.0, (axis, axis))
    for name in ("free_energy", "entropy", "mean_energy", "log_partition"):
        assert_allclose(float(quad[name]), float(exact[name]), rtol=1e-8, atol=1e-10, err_msg=name)
    assert exact["entropy"].attrs["units"] == "bits"
    assert_allclose(exact["covariance"].values, np.linalg.inv(q.H) / 2.0)


def test_one_dimensional_known_answers():
    # standard normal: F = -ln sqrt(2 pi), H = log2(2 pi e) / 2 bits
    ds = gibbs(Quadratic(1.0), 1.0, np.linspace(-12, 12, 4001))
    assert_allclose(float(ds["free_energy"]), -0.5 * np.log(2 * np.pi), rtol=1e-10)
    assert_allclose(float(ds["entropy"]), 0.5 * np.log2(2 * np.pi * np.e), rtol=1e-10)


@pytest.mark.parametrize("beta", [0.5, 1.0, 4.0])
def test_free_energy_identity_and_symmetry(beta):
    dw = DoubleWell(1.5)
    ds = gibbs(dw, beta, np.linspace(-3.5, 3.5, 3501))
    f = float(ds["mean_energy"]) - float(ds["entropy"]) * LN2 / beta
    assert_allclose(float(ds["free_energy"]), f, rtol=1e-9, err_msg="F = E[L] - H / beta")
    assert_allclose(ds["density"].values, ds["density"].values[::-1], rtol=1e-12)
    assert_allclose(float(ds["density"].integrate("x")), 1.0, rtol=1e-12)


def test_free_energy_of_any_density_exceeds_gibbs_by_kl_over_beta():
    dw, beta = DoubleWell(1.0), 2.0
    edges = np.linspace(-2.5, 2.5, 201)
    q = bin_probabilities(dw, beta, edges)
    p = bin_probabilities(dw, 1.0, edges)  # a different density
    f_q = histogram_free_energy(q, edges, dw, beta)
    f_p = histogram_free_energy(p, edges, dw, beta)
    kl_nats = kl_bits(p, q) * LN2
    assert_allclose(f_q, float(gibbs(dw, beta, np.linspace(-3, 3, 3001))["free_energy"]), atol=2e-4)
    assert_allclose(f_p - f_q, kl_nats / beta, rtol=0.02, err_msg="F[p] - F = KL(p||Gibbs)/beta (binned)")


def test_sample_gibbs_matches_bin_probabilities():
    dw, beta = DoubleWell(1.0), 3.0
    x = sample_gibbs(dw, beta, 200_000, np.linspace(-3, 3, 6001), seed=4)
    edges = np.linspace(-2, 2, 41)
    counts, outside = histogram_counts(x[:, 0], edges)
    q = bin_probabilities(dw, beta, edges)
    # chi-square-sized tolerance: each bin within 5 sigma
    sigma = np.sqrt(q * (1 - q) / len(x))
    assert np.all(np.abs(counts / len(x) - q) < 5 * sigma + 1e-5)
    assert total_variation(counts / len(x), q) < 0.005
    assert outside / len(x) < 1e-3


def test_histogram_counts_uniform_and_ragged_bins_agree_with_numpy():
    v = np.random.default_rng(0).normal(size=10_000)
    for edges in (np.linspace(-2, 2, 17), np.array([-3.0, -1.0, -0.2, 0.0, 0.7, 2.5])):
        counts, out = histogram_counts(v, edges)
        ref, _ = np.histogram(v, edges)
        assert_allclose(counts, ref)
        assert out == len(v) - ref.sum()


def test_bad_input():
    with pytest.raises(ValueError, match="beta"):
        gibbs(DoubleWell(), 0.0, np.linspace(-3, 3, 101))
    with pytest.raises(ValueError, match="grid does not contain"):
        gibbs(DoubleWell(), 1.0, np.linspace(-1, 1, 101))
    with pytest.raises(ValueError, match="grid is required"):
        gibbs(DoubleWell(), 1.0)
    with pytest.raises(ValueError, match="NaN"), np.errstate(all="ignore"):
        gibbs(CallablePotential(lambda x: np.log(x[:, 0]), 1, grad=lambda x: 1 / x), 1.0, np.linspace(-1, 1, 11))


@pytest.mark.parametrize("bad, message", [
    (np.float64(np.nan), "beta must be a finite number, got nan"),
    (np.float32(-1.0), "beta must be > 0, got -1.0"),
    ("2", "beta must be a real number, got '2' (str)"),
    (True, "beta must be a real number, got True (bool)"),
])
def test_messages_show_numpy_scalars_as_plain_numbers(bad, message):
    # the message names the argument and prints the value as the user wrote it (not np.float64(nan)); no casting
    with pytest.raises(ValueError, match=rf"^{re.escape(message)}$"):
        gibbs(DoubleWell(), beta=bad)
    assert gibbs(DoubleWell(), beta=np.float32(2.0), grid=np.linspace(-3, 3, 201))["density"].notnull().all()
