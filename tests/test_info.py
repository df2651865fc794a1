"""Exact measures: identities, inequalities, closed forms and every kind of bad input."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from numpy.testing import assert_allclose

from ibtheory import info

EPS = 1e-9


def _table(shape_strategy):
    """Probability tables with no subnormal entries and some exact zeros."""
    cells = st.one_of(st.just(0.0), st.floats(1e-6, 1.0, allow_subnormal=False))
    return shape_strategy.flatmap(lambda s: arrays(np.float64, s, elements=cells)).filter(
        lambda a: a.sum() > 0
    ).map(lambda a: a / a.sum())


joints = _table(st.tuples(st.integers(1, 6), st.integers(1, 6)))


@given(joints)
def test_mi_nonnegative_symmetric_and_bounded(p):
    mi = info.mutual_information(p)
    assert mi >= 0
    assert_allclose(mi, info.mutual_information(p.T), atol=EPS)
    assert mi <= min(info.entropy(p.sum(1)), info.entropy(p.sum(0))) + EPS


@given(_table(st.integers(1, 8).map(lambda n: (n,))))
def test_mi_of_x_with_itself_is_entropy(px):
    assert_allclose(info.mutual_information(np.diag(px)), info.entropy(px), atol=EPS)


@given(joints)
def test_chain_rule(p):
    # H(X,Y) = H(X) + H(Y|X);  I(X;Y) = H(Y) - H(Y|X)
    assert_allclose(info.entropy(p), info.entropy(p.sum(1)) + info.conditional_entropy(p), atol=EPS)
    assert_allclose(info.mutual_information(p), info.entropy(p.sum(0)) - info.conditional_entropy(p), atol=EPS)


@given(joints, st.randoms(use_true_random=False))
def test_invariant_to_relabelling(p, rnd):
    rows = list(range(p.shape[0]))
    cols = list(range(p.shape[1]))
    rnd.shuffle(rows)
    rnd.shuffle(cols)
    assert_allclose(info.mutual_information(p[np.ix_(rows, cols)]), info.mutual_information(p), atol=EPS)


@given(joints, st.integers(1, 5), st.integers(0, 2**32 - 1))
def test_data_processing_inequality(p_xy, n_t, seed):
    # Markov chain Y - X - T with a random channel p(t|x): I(T;Y) <= I(X;Y).
    rng = np.random.default_rng(seed)
    channel = rng.dirichlet(np.ones(n_t), size=p_xy.shape[0])
    p_ty = channel.T @ p_xy
    assert info.mutual_information(p_ty) <= info.mutual_information(p_xy) + EPS


@given(_table(st.integers(1, 6).map(lambda n: (n,))), _table(st.integers(1, 6).map(lambda n: (n,))))
def test_kl_nonnegative_zero_on_self(p, q):
    assert_allclose(info.kl_divergence(p, p), 0.0, atol=EPS)
    if p.shape == q.shape:
        assert info.kl_divergence(p, q) >= 0


def test_closed_forms():
    assert_allclose(info.entropy([0.25] * 4), 2.0)
    h = lambda a: -a * np.log2(a) - (1 - a) * np.log2(1 - a)  # noqa: E731
    p = 0.11
    bsc = 0.5 * np.array([[1 - p, p], [p, 1 - p]])
    assert_allclose(info.mutual_information(bsc), 1 - h(p), rtol=1e-12)
    assert_allclose(info.kl_divergence([0.5, 0.5], [0.25, 0.75]), 0.5 * np.log2(2) + 0.5 * np.log2(2 / 3))
    assert info.kl_divergence([0.5, 0.5], [1.0, 0.0]) == float("inf")
    # zero cells never produce NaN
    assert info.mutual_information([[0.5, 0.0], [0.0, 0.5]]) == 1.0
    assert info.entropy([1.0, 0.0, 0.0]) == 0.0


def test_tiny_cells_do_not_overflow():
    # p(x) p(y) = 1e-400 underflows; the log-space ratio keeps the answer finite and exact
    mi = info.mutual_information([[1e-200, 0.0], [0.0, 1 - 1e-200]])
    assert np.isfinite(mi) and mi >= 0
    assert_allclose(mi, info.entropy([1e-200, 1 - 1e-200]), atol=1e-15)


def test_entropy_rows_vectorised():
    p = np.array([[0.5, 0.5], [1.0, 0.0]])
    assert_allclose(info.entropy_rows(p), [1.0, 0.0])


BAD = {
    "negative": ([[0.6, -0.1], [0.25, 0.25]], "negative"),
    "nan": ([[np.nan, 0.5], [0.25, 0.25]], "NaN"),
    "inf": ([[np.inf, 0.5], [0.25, 0.25]], "NaN or infinite"),
    "zero-sum": ([[0.0, 0.0], [0.0, 0.0]], "sums to zero"),
    "wrong-ndim": ([0.5, 0.5], "2 dimension"),
    "unnormalised": ([[0.5, 0.5], [0.5, 0.5]], "not 1"),
    "empty": (np.zeros((0, 2)), "empty"),
    "non-numeric": ([["a", "b"]], "numeric"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_joint_raises_naming_argument(case):
    table, fragment = BAD[case]
    with pytest.raises(ValueError, match="p_xy") as exc:
        info.mutual_information(table)
    assert fragment in str(exc.value)


def test_normalize_opt_in():
    assert_allclose(info.mutual_information([[2.0, 0.0], [0.0, 2.0]], normalize=True), 1.0)
    with pytest.raises(ValueError, match="sums to zero"):
        info.entropy([0.0, 0.0], normalize=True)


def test_kl_shape_mismatch():
    with pytest.raises(ValueError, match="same shape"):
        info.kl_divergence([0.5, 0.5], [1 / 3] * 3)


#: Bad 1-D tables for ``entropy`` (argument ``p``) and ``kl_divergence`` (``p`` or ``q``): (table, message fragment).
BAD_1D = {
    "negative": ([0.6, -0.1, 0.5], "negative"),
    "nan": ([np.nan, 0.5, 0.5], "NaN"),
    "inf": ([np.inf, 0.5, 0.5], "NaN or infinite"),
    "zero-sum": ([0.0, 0.0, 0.0], "sums to zero"),
    "wrong-ndim": (0.5, "at least one axis"),  # entropy takes tables of any shape, but not a scalar
    "unnormalised": ([0.5, 0.5, 0.5], "not 1"),
    "empty": (np.zeros(0), "empty"),
    "non-numeric": (["a", "b"], "numeric"),
}


@pytest.mark.parametrize("case", sorted(BAD_1D))
def test_bad_entropy_input_raises_naming_p(case):
    table, fragment = BAD_1D[case]
    with pytest.raises(ValueError, match=r"^p ") as exc:
        info.entropy(table)
    assert fragment in str(exc.value)


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_conditional_entropy_input_raises_naming_p_xy(case):
    table, fragment = BAD[case]
    with pytest.raises(ValueError, match=r"^p_xy ") as exc:
        info.conditional_entropy(table)
    assert fragment in str(exc.value)


@pytest.mark.parametrize("argument", ["p", "q"])
@pytest.mark.parametrize("case", sorted(BAD_1D))
def test_bad_kl_input_raises_naming_the_argument(case, argument):
    table, fragment = BAD_1D[case]
    good = [0.25, 0.25, 0.5]
    args = {"p": good, "q": good, argument: table}
    with pytest.raises(ValueError, match=rf"^{argument} ") as exc:
        info.kl_divergence(args["p"], args["q"])
    assert fragment in str(exc.value)


def test_wrong_ndim_of_two_dimensional_measures_and_kl_shapes():
    for table in ([0.5, 0.5], np.full((2, 2, 2), 1 / 8)):
        with pytest.raises(ValueError, match=r"^p_xy must have 2 dimension"):
            info.conditional_entropy(table)
    with pytest.raises(ValueError, match=r"^p and q must have the same shape"):
        info.kl_divergence([0.5, 0.5], [[0.5, 0.5]])


def test_normalize_opt_in_for_entropy_conditional_entropy_and_kl():
    assert_allclose(info.entropy([2.0, 2.0], normalize=True), 1.0)
    assert_allclose(info.conditional_entropy([[1.0, 1.0], [2.0, 0.0]], normalize=True), 0.5)
    assert_allclose(info.kl_divergence([1.0, 1.0], [1.0, 3.0], normalize=True), info.kl_divergence([0.5, 0.5],
                                                                                                   [0.25, 0.75]))
