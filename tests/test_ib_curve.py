"""The IB curve: closed forms (binary symmetric, Gaussian), hard labels, evaluation helpers, properties."""

import numpy as np
import pytest
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose

from ibtheory import tasks
from ibtheory.ib import (
    HARD_LABEL_EXPLANATION,
    anneal,
    curve_inverse,
    curve_upper,
    curve_value,
    ib_curve,
    reduce,
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


@pytest.mark.parametrize("p", [0.01, 0.2, 0.3, 0.45])
def test_bsc_closed_form_at_every_point(p):
    c = ib_curve(tasks.binary_symmetric(p).p_xy.values, n_betas=30)
    err = np.abs(c.I_TY.values - bsc_curve(p, c.I_XT.values))
    worst = float(c.beta[err.argmax()])
    assert err.max() <= 1e-8, f"BSC p={p}: {err.max():.3g} bits off the closed form (1e-8) at beta {worst}"
    assert c.I_XT.values.max() > 0.99 and c.I_XT.values.min() < 1e-9, "the points span the whole curve"


def test_forward_annealing_respects_the_certified_optimum():
    """Forward annealing (trivial start, cluster splitting) can only land at or above the optimum: its Lagrangians
    are >= the certified ones minus their gaps, and the curve that keeps the lower of both directions agrees with
    the reverse-annealed certified curve within both gaps."""
    rng = np.random.default_rng(5)
    p_xy = rng.dirichlet(np.ones(14)).reshape(7, 2)
    betas = trivial_critical_beta(p_xy) * np.geomspace(0.8, 100, 16)
    ref = ib_curve(p_xy, betas=betas)
    both = ib_curve(p_xy, betas=betas, forward=True)
    raw = np.array([s.lagrangian for s in anneal(reduce(p_xy), betas, "forward", max_iter=2000)])
    L, gap = ref.lagrangian.values, ref.gap.values
    assert np.all(raw >= L - gap - 1e-12), "forward annealing below the certified optimum"
    assert np.all(both.lagrangian.values <= raw + 1e-12), "the curve keeps the lower Lagrangian of both directions"
    assert np.all(both.lagrangian.values >= L - gap - 1e-12)
    assert np.all(L >= both.lagrangian.values - both.gap.values - 1e-12)
    assert float(both.gap.max()) <= 1e-6 and both.attrs["max_gap"] <= 1e-6


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


#: Row shapes of :func:`joints`: strictly positive, with exact zeros, one-hot (a hard label), and p(x) = 0.
ROW_KINDS = ("soft", "zeros", "one_hot", "empty")


_BSC = [[0.4, 0.1], [0.1, 0.4]]


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"betas": ["a"]}, r"^betas must be a numeric array of real numbers, got string"),
        ({"betas": [1.0, np.nan]}, r"^betas must be positive finite numbers; betas\[1\] is nan"),
        ({"betas": [[1.0, 2.0]]}, r"^betas must be a non-empty 1-D array"),
        ({"betas": []}, r"^betas must be a non-empty 1-D array"),
        ({"betas": np.ones(10**4 + 1)}, r"^betas has 10001 values, more than MAX_BETAS = 10000: .* several calls"),
        ({"n_betas": 10**7}, r"^n_betas = 10000000 exceeds MAX_BETAS = 10000: .* several calls"),
        ({"n_betas": 2.5}, r"^n_betas must be an integer"),
        ({"n_betas": "10"}, r"^n_betas must be an integer"),
        ({"tol": 0.0}, r"^tol must be > 0"),
        ({"max_iter": "500"}, r"^max_iter must be an integer"),
        ({"gap_tol": np.nan}, r"^gap_tol must be a finite number"),
        ({"critical_rtol": 1e-300}, r"^critical_rtol must be >= 1e-09"),
        ({"seed": -1}, r"^seed must be an integer >= 0"),
        ({"seed": "a"}, r"^seed must be an integer"),
        ({"seed": 1.5}, r"^seed must be an integer in \[0, 2\*\*63 - 1\], got 1.5 \(a float\)"),
        ({"certify": "no"}, r"^certify must be True, False or None, got 'no'"),
        ({"forward": 1}, r"^forward must be True, False or None"),
        ({"keep_brackets": None}, r"^keep_brackets must be True or False"),
        ({"progress": "yes"}, r"^progress must be True or False"),
    ],
)
def test_bad_arguments_name_the_argument(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ib_curve(_BSC, **kwargs)


def test_size_guard_refuses_before_any_work():
    """20000 distinct rows p(y|x) on the annealed path: the curve would hold ~2 x 240 encoders of 20000 x 20000
    (|S| clusters at high beta) cells, ~3 TB; refused at once with the estimate and the way out.  (The default
    path for so many classes is the forward one, whose working set is linear in |S|: tests/test_ib_scale.py.)"""
    rng = np.random.default_rng(0)
    p_xy = rng.random((20000, 2))
    with pytest.raises(ValueError, match=r"^the IB curve needs ~\d+\.\d GiB .* MAX_CELLS .* use fewer betas"):
        ib_curve(p_xy / p_xy.sum(), method="anneal")


def test_numpy_scalars_are_accepted():
    betas = np.geomspace(2.0, 20.0, 5)
    ref = ib_curve(_BSC, betas=betas, tol=1e-12, max_iter=500, seed=1)
    c = ib_curve(_BSC, betas=betas.astype(np.float64), tol=np.float64(1e-12), max_iter=np.int64(500),
                 seed=np.int64(1), n_betas=np.int32(240), certify=np.bool_(True))
    assert_allclose(c.lagrangian.values, ref.lagrangian.values, rtol=0, atol=0)


def test_curve_helpers_name_bad_arguments(bsc):
    with pytest.raises(ValueError, match=r"^curve must be the Dataset returned by ib_curve"):
        curve_value(None, [0.1])
    with pytest.raises(ValueError, match=r"^curve must be the Dataset returned by ib_curve"):
        curve_upper(tasks.binary_symmetric(0.1), [0.1])
    with pytest.raises(ValueError, match=r"^R must be a numeric array of real numbers"):
        curve_value(bsc, ["a"])
    with pytest.raises(ValueError, match=r"^I must be a numeric array of real numbers"):
        curve_inverse(bsc, [0.1 + 1j])


@st.composite
def joints(draw):
    """Joint tables with |X| in 2..5, |Y| in 2..3 and the rows real tasks have: soft rows, rows with exact zeros,
    one-hot rows (deterministic p(y|x)), zero rows (p(x) = 0), and whole tables of hard labels (every non-empty row
    one-hot: the Kolchinsky et al. case).  At least two y keep positive mass (otherwise the IB is undefined and
    ``ib_curve`` refuses the table, tested in ``test_bad_input``)."""
    n_x = draw(st.integers(2, 5))
    n_y = draw(st.integers(2, 3))
    hard = draw(st.booleans())
    weight = st.floats(0.05, 1.0, allow_subnormal=False)
    rows = []
    for _ in range(n_x):
        kind = draw(st.sampled_from(("one_hot", "empty") if hard else ROW_KINDS))
        if kind == "soft":
            row = [draw(weight) for _ in range(n_y)]
        elif kind == "zeros":
            row = [draw(st.one_of(st.just(0.0), weight)) for _ in range(n_y)]
        elif kind == "one_hot":
            row = [0.0] * n_y
            row[draw(st.integers(0, n_y - 1))] = draw(weight)
        else:
            row = [0.0] * n_y
        rows.append(row)
    p = np.array(rows)
    assume(np.count_nonzero(p.sum(axis=0) > 0) >= 2)
    return p / p.sum()


#: Tables every run checks (besides the drawn ones): equal rows whose masses sum to 1 + 2e-16 (a single class with
#: p(s) just above 1 once gave H(S) = -3e-16 bits and a hull starting at a negative I(X;T)); one-hot, zero-mass and
#: zero-containing rows together; hard labels with an empty x.
_EQUAL_ROWS = np.array([[1.0, 1.0], [0.05, 0.05]])
FIXED_JOINTS = [
    _EQUAL_ROWS / _EQUAL_ROWS.sum(),  # p(x) sums to 1.0000000000000002
    np.array([[0.3, 0.0, 0.0], [0.0, 0.0, 0.0], [0.1, 0.2, 0.0], [0.1, 0.1, 0.2]]),
    np.array([[0.0, 0.4], [0.0, 0.0], [0.35, 0.0], [0.25, 0.0]]),
]


@settings(max_examples=25, deadline=None)
@given(joints())
@example(FIXED_JOINTS[0])
@example(FIXED_JOINTS[1])
@example(FIXED_JOINTS[2])
def test_curve_properties(p_xy):
    """|Y| = 2 certified (default), |Y| = 3 uncertified (default): information inequalities, monotonicity in beta,
    optimality between neighbouring betas up to the gaps, raw points <= hull <= certified upper edge.  Checked on
    25 drawn tables (runs of 300, under several seeds, pass too) and the fixed ones above."""
    b0 = trivial_critical_beta(p_xy)
    betas = (b0 if np.isfinite(b0) else 1.0) * np.geomspace(0.8, 40, 8)
    c = ib_curve(p_xy, betas=betas)
    ixt, ity, b = c.I_XT.values, c.I_TY.values, c.beta.values
    eps = 1e-9
    assert c.attrs["H_S"] >= 0 and np.all(c.hull_I_XT.values >= 0), "H(S) and the hull's I(X;T) are entropies"
    assert np.all(ity <= ixt + eps), "I(T;Y) <= I(X;T)"
    assert np.all(ity <= c.attrs["I_XY"] + eps), "I(T;Y) <= I(X;Y)"
    assert_allclose(c.encoder.sum("t").values, 1.0, atol=1e-12)
    certified = "gap" in c
    assert certified == (p_xy.shape[1] == 2), "certified by default exactly when |Y| = 2"
    gap = c.gap.values if certified else np.zeros_like(b)
    # I_XT and I_TY are non-decreasing in beta; with certified gaps the optimality conditions at beta_i and
    # beta_{i+1} bound a decrease of I_TY by (g_i + g_{i+1}) / (beta_{i+1} - beta_i), of I_XT by beta_i times that + g_i
    slack_y = (gap[:-1] + gap[1:]) / np.diff(b) + 1e-7
    slack_x = b[:-1] * slack_y + gap[:-1] + 1e-7
    assert np.all(np.diff(ity) >= -slack_y), f"I_TY decreases in beta: {np.diff(ity).min():.3g} bits"
    assert np.all(np.diff(ixt) >= -slack_x), f"I_XT decreases in beta: {np.diff(ixt).min():.3g} bits"
    hx, hy = c.hull_I_XT.values, c.hull_I_TY.values
    assert np.all(np.diff(hx) > 0) and np.all(np.diff(hy) >= -eps), "hull non-decreasing"
    assert np.all(ity <= curve_value(c, ixt) + eps), "every raw point lies on or below the achievable curve"
    if certified:
        assert np.all(gap >= 0)
        # optimality at beta_i against the point of beta_j (both ways), up to the certified gaps
        for i in range(len(b) - 1):
            dx, dy = ixt[i + 1] - ixt[i], ity[i + 1] - ity[i]
            assert b[i] * dy - dx <= gap[i] + 1e-7, "slope above 1/beta_i"
            assert dx - b[i + 1] * dy <= gap[i + 1] + 1e-7, "slope below 1/beta_{i+1}"
        assert np.all(ity <= curve_upper(c, ixt) + eps), "a raw point above the certified upper edge"
        assert np.all(hy <= curve_upper(c, hx) + eps), "the hull (achievable) above the certified upper edge"


def test_a_class_of_probability_1e_170_keeps_the_information_finite():
    # p(s) p(t) of the tiny class is 1e-340, below the smallest float: I(X;T) is summed in logs, so the curve of
    # this hard-label task is min(R, H(Y)) with H(Y) = 1 + 1e-170 log2(1e170) bits = 1 in float64 (it was inf)
    t = np.diag([0.5, 0.5, 1e-170])
    c = ib_curve(t / t.sum(), betas=[0.5, 50.0], certify=False)
    assert_allclose(c.I_XT.values, [0.0, 1.0], atol=1e-15)
    assert_allclose(c.I_TY.values, [0.0, 1.0], atol=1e-15)
    assert_allclose(c.attrs["beta_trivial"], 1.0, rtol=1e-12)  # rho_m = 1 (hard labels); sqrt(p(s) p(y)) was 0
