"""KSG and plug-in sample estimators: known answers, brute force, input validation."""

import numpy as np
import pytest
from numpy.testing import assert_allclose
from scipy.special import digamma

from ibtheory.estimators.ksg import ksg
from ibtheory.estimators.plugin import plugin_mi
from ibtheory.info import mutual_information


def _ksg_brute(x, y, k):
    """KSG algorithm 1 by explicit O(n^2) distance matrices (max norm), in bits."""
    dx = np.abs(x[:, None, :] - x[None, :, :]).max(axis=-1)
    dy = np.abs(y[:, None, :] - y[None, :, :]).max(axis=-1)
    dz = np.maximum(dx, dy)
    eps = np.sort(dz, axis=1)[:, k]  # column 0 is the sample itself
    n_x = (dx < eps[:, None]).sum(axis=1) - 1
    n_y = (dy < eps[:, None]).sum(axis=1) - 1
    n = x.shape[0]
    return (digamma(k) + digamma(n) - np.mean(digamma(n_x + 1) + digamma(n_y + 1))) / np.log(2)


@pytest.mark.parametrize("k", [1, 3, 7])
def test_ksg_matches_brute_force(k):
    rng = np.random.default_rng(k)
    x = rng.standard_normal((150, 2))
    y = x[:, :1] + 0.5 * rng.standard_normal((150, 1))
    assert_allclose(ksg(x, y, k=k), _ksg_brute(x, y, k), atol=1e-12, err_msg="KDTree vs brute force, 1e-12 bits")


def test_ksg_recovers_gaussian_information():
    rng = np.random.default_rng(0)
    rho = np.array([0.9, 0.5])
    z = rng.standard_normal((2, 5000, 2))
    x, y = z[0], rho * z[0] + np.sqrt(1 - rho**2) * z[1]
    exact = -0.5 * np.sum(np.log2(1 - rho**2))
    assert_allclose(ksg(x, y), exact, atol=0.06, err_msg=f"KSG within 0.06 bits of I = {exact:.4f} at n = 5000")
    assert_allclose(ksg(x, y), ksg(y, x), atol=1e-12, err_msg="KSG is symmetric")


def test_ksg_validates_and_jitters():
    x = np.arange(10.0)
    with pytest.raises(ValueError, match="k must"):
        ksg(x, x, k=10)
    with pytest.raises(ValueError, match="same number"):
        ksg(x, x[:5])
    with pytest.raises(ValueError, match="NaN"):
        ksg(np.r_[x[:-1], np.nan], x)
    with pytest.raises(ValueError, match="jitter"):
        ksg(x, x, jitter=-1.0)
    codes = np.repeat([0.0, 1.0], 50)
    assert ksg(codes, codes, jitter=1e-6, seed=0) == ksg(codes, codes, jitter=1e-6, seed=0)


def test_plugin_is_the_information_of_the_empirical_table():
    rng = np.random.default_rng(1)
    x = rng.integers(0, 4, (300, 2))
    y = (x[:, :1] + rng.integers(0, 2, (300, 1))) % 3
    table = np.zeros((16, 3))
    np.add.at(table, (x[:, 0] * 4 + x[:, 1], y[:, 0]), 1.0 / 300)
    assert_allclose(plugin_mi(x, y), mutual_information(table), rtol=1e-12)
    assert_allclose(plugin_mi(x[:, 0] * 4 + x[:, 1], y[:, 0]), plugin_mi(x, y), rtol=1e-12)


def test_plugin_validates():
    with pytest.raises(ValueError, match="x must"):
        plugin_mi(np.zeros((2, 2, 2)), np.zeros(2))
    with pytest.raises(ValueError, match="same number"):
        plugin_mi(np.zeros(3), np.zeros(2))
    with pytest.raises(ValueError, match="NaN"):
        plugin_mi(np.array([0.0, np.nan]), np.zeros(2))
