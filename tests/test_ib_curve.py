"""The IB curve: closed forms (binary symmetric, Gaussian), hard labels, evaluation helpers, properties."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose

from ibtheory import tasks
from ibtheory.ib import (
    HARD_LABEL_EXPLANATION,
    curve_inverse,
    curve_upper,
    curve_value,
    ib_curve,
    trivial_critical_beta,
)
from ibtheory.ib.analytic import bsc_critical_beta, bsc_curve, gaussian_ib_curve


@pytest.fixture(scope="module")
def bsc():
    return ib_curve(tasks.binary_symmetric(0.1).p_xy.values, n_betas=40)


def test_bsc_every_point_on_closed_form(bsc):
    R = bsc.I_XT.values
    assert_allclose(bsc.I_TY.values, bsc_curve(0.1, R), atol=1e-8, err_msg="BSC curve off closed form (1e-8 bits)")
    assert float(bsc.gap.max()) <= 1e-6
    assert_allclose(bsc.attrs["beta_trivial"], bsc_critical_beta(0.1), rtol=1e-12)
    # the first critical beta is the trivial solution's threshold 1/(1-2p)^2
    assert_allclose(bsc.critical_betas.values[0], bsc_critical_beta(0.1), rtol=2e-3)


def test_curve_helpers(bsc):
    R = np.linspace(0, 1.2, 25)
    F = curve_value(bsc, R)
    exact = bsc_curve(0.1, R)
    assert np.all(F <= exact + 1e-9), "the achievable curve cannot exceed the true curve"
    assert_allclose(F, exact, atol=5e-3, err_msg="hull interpolation within 5e-3 bits on 40+ betas")
    assert_allclose(curve_value(bsc, [5.0]), [bsc.attrs["I_XY"]], atol=1e-9)
    up = curve_upper(bsc, R)
    assert np.all(up >= exact - 1e-9), "certified upper edge must lie above the true curve"
    I = np.array([0.1, 0.3, 0.5])
    Rinv = curve_inverse(bsc, I)
    assert_allclose(curve_value(bsc, Rinv), I, atol=1e-12)
    assert curve_inverse(bsc, [0.9])[0] == np.inf
    with pytest.raises(ValueError, match="R"):
        curve_value(bsc, [-1.0])


def test_curve_upper_needs_certificate():
    p = tasks.gaussian_discretized(0.8, 6, 6, 3.0).p_xy.values
    c = ib_curve(p, betas=[2.0, 5.0])
    assert "gap" not in c
    with pytest.raises(ValueError, match="certificate"):
        curve_upper(c, [0.1])


def test_hard_labels_trivial_curve():
    p_xy = np.array([[0.2, 0.0], [0.0, 0.3], [0.25, 0.0], [0.0, 0.25]])
    c = ib_curve(p_xy, n_betas=12)
    H_Y = c.attrs["H_Y"]
    assert c.attrs["deterministic"] == 1 and c.attrs["explanation"] == HARD_LABEL_EXPLANATION
    R = np.linspace(0, 2, 9)
    assert_allclose(curve_value(c, R), np.minimum(R, H_Y), atol=1e-12)
    b = c.beta.values
    assert_allclose(c.I_XT.values, np.where(b < 1, 0.0, H_Y), atol=1e-12)
    assert_allclose(c.I_TY.values, c.I_XT.values, atol=1e-12)
    assert_allclose(c.critical_betas.values, [1.0])


def test_paper_hard_task_is_trivial():
    c = ib_curve(tasks.tishby().p_xy.values, n_betas=4)
    assert c.attrs["deterministic"] == 1 and "trivial" in c.attrs["explanation"]
    assert_allclose(c.hull_I_TY.values[-1], 0.999157, atol=1e-6)


@pytest.mark.parametrize("n,tol", [(8, 0.1), (16, 0.03)])
def test_discretised_gaussian_approaches_closed_form(n, tol):
    """Discretisation error shrinks with the grid: max |I_TY - F_gauss(I_XT)| < 0.1 bits at 8x8, < 0.03 at 16x16
    (measured 0.077 and 0.018; 32x32 gives 7.6e-4)."""
    d = tasks.gaussian_discretized(0.8, n, n, 4.0)
    c = ib_curve(d.p_xy.values, betas=np.geomspace(1.2, 30, 8))
    err = np.abs(c.I_TY.values - gaussian_ib_curve(0.8, c.I_XT.values))
    assert err.max() < tol, f"Gaussian IB closed form missed by {err.max():.3g} bits (tolerance {tol})"


def test_trivial_critical_beta_independent_is_inf():
    assert trivial_critical_beta([[0.25, 0.25], [0.25, 0.25]]) == np.inf


def test_bad_input():
    with pytest.raises(ValueError, match="betas"):
        ib_curve([[0.4, 0.1], [0.1, 0.4]], betas=[1.0, -2.0])
    with pytest.raises(ValueError, match="NaN"):
        ib_curve([[0.4, np.nan], [0.1, 0.4]])
    with pytest.raises(ValueError, match="two values"):
        ib_curve([[0.5], [0.5]])


@st.composite
def joints(draw):
    n_x = draw(st.integers(2, 5))
    n_y = draw(st.integers(2, 2))
    w = draw(st.lists(st.floats(0.05, 1.0, allow_subnormal=False), min_size=n_x * n_y, max_size=n_x * n_y))
    p = np.array(w).reshape(n_x, n_y)
    return p / p.sum()


@settings(max_examples=12)
@given(joints())
def test_curve_properties(p_xy):
    b0 = trivial_critical_beta(p_xy)
    betas = (b0 if np.isfinite(b0) else 1.0) * np.geomspace(0.8, 40, 8)
    c = ib_curve(p_xy, betas=betas)
    ixt, ity, b = c.I_XT.values, c.I_TY.values, c.beta.values
    eps = 1e-9
    assert np.all(ity <= ixt + eps), "I(T;Y) <= I(X;T)"
    assert np.all(ity <= c.attrs["I_XY"] + eps), "I(T;Y) <= I(X;Y)"
    assert_allclose(c.encoder.sum("t").values, 1.0, atol=1e-12)
    gap = c.gap.values
    assert np.all(gap >= 0)
    # optimality at beta_i against the point of beta_j (both ways), up to the certified gaps
    for i in range(len(b) - 1):
        dx, dy = ixt[i + 1] - ixt[i], ity[i + 1] - ity[i]
        assert b[i] * dy - dx <= gap[i] + 1e-7, "slope above 1/beta_i"
        assert dx - b[i + 1] * dy <= gap[i + 1] + 1e-7, "slope below 1/beta_{i+1}"
    hx, hy = c.hull_I_XT.values, c.hull_I_TY.values
    assert np.all(np.diff(hx) > 0) and np.all(np.diff(hy) >= -eps), "hull non-decreasing"
    slopes = np.diff(hy) / np.diff(hx)
    assert np.all(np.diff(slopes) <= 1e-9), "hull concave"
