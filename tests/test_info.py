"""Exact measures: identities, inequalities, closed forms and every kind of bad input."""

import math

import mpmath
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
LN2 = math.log(2.0)


def _mi_brute(p: np.ndarray) -> float:
    """sum p(x,y) log2[p(x,y) / (p(x) p(y))] by explicit loops in math.log, unclamped (an independent check)."""
    px, py = p.sum(1), p.sum(0)
    return sum(p[i, j] * math.log(p[i, j] / (px[i] * py[j])) for i in range(p.shape[0]) for j in range(p.shape[1])
               if p[i, j] > 0) / LN2


def _kl_brute(p: np.ndarray, q: np.ndarray) -> float:
    return sum(a * math.log(a / b) for a, b in zip(p, q, strict=True) if a > 0) / LN2


@given(joints)
def test_mi_matches_brute_force_symmetric_and_bounded(p):
    # I(X;Y) is compared with an unclamped brute-force sum (a sign error would not survive) and bounded below by
    # Pinsker's inequality I >= ||p(x,y) - p(x)p(y)||_1^2 / (2 ln 2) bits, which is > 0 whenever X, Y are dependent
    mi = info.mutual_information(p)
    assert_allclose(mi, _mi_brute(p), atol=EPS)
    tv = np.abs(p - np.outer(p.sum(1), p.sum(0))).sum()
    assert mi >= tv**2 / (2 * LN2) - EPS, f"Pinsker: I = {mi} bits < {tv**2 / (2 * LN2)}"
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
def test_kl_zero_on_self_brute_force_and_pinsker(p, q):
    assert_allclose(info.kl_divergence(p, p), 0.0, atol=EPS)
    if p.shape == q.shape:
        d = info.kl_divergence(p, q)
        if np.any((q == 0) & (p > 0)):
            assert d == np.inf
        else:
            # the unclamped brute-force sum, and Pinsker's D(P||Q) >= ||p - q||_1^2 / (2 ln 2) bits (not a clamp)
            assert_allclose(d, _kl_brute(p, q), atol=EPS)
            assert d >= np.abs(p - q).sum() ** 2 / (2 * LN2) - EPS


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
    assert_allclose(mi, 1e-200 * math.log2(1e200), rtol=1e-12)  # H = -1e-200 log2 1e-200 - (1 - 1e-200) log2(1)
    assert_allclose(mi, info.entropy([1e-200, 1 - 1e-200]), rtol=1e-12)


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


@pytest.mark.parametrize(("measure", "argument", "case"),
                         [("entropy", "p", c) for c in sorted(BAD_1D)]
                         + [("conditional_entropy", "p_xy", c) for c in sorted(BAD)])
def test_bad_entropy_input_raises_naming_the_argument(measure, argument, case):
    table, fragment = (BAD_1D if argument == "p" else BAD)[case]
    with pytest.raises(ValueError, match=rf"^{argument} ") as exc:
        getattr(info, measure)(table)
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


def test_normalize_survives_entries_near_the_float_maximum():
    # the total 2e308 overflows to inf; scaling by the largest entry first keeps 1 bit (0.0 before)
    assert_allclose(info.mutual_information([[1e308, 0], [0, 1e308]], normalize=True), 1.0, rtol=1e-15)
    assert_allclose(info.entropy([1.7e308, 1.7e308, 1.7e308, 1.7e308], normalize=True), 2.0, rtol=1e-15)
    assert_allclose(info.kl_divergence([1e308, 1e308], [1.0, 3.0], normalize=True),
                    info.kl_divergence([0.5, 0.5], [0.25, 0.75]), rtol=1e-15)
    # and subnormal totals do not lose their ratios
    assert_allclose(info.entropy([1e-320, 1e-320], normalize=True), 1.0, rtol=1e-3)


#: Arrays numpy would silently cast (complex drops its imaginary part with a warning, bools become 0/1) or that are
#: not numbers at all: refused, naming the argument.
NOT_REAL = {
    "complex": (np.array([[0.5 + 0.1j, 0.0], [0.0, 0.5]]), "complex"),
    "complex-with-zero-imaginary": (np.array([[0.5 + 0j, 0.0], [0.0, 0.5]]), "complex"),
    "bool": ([[True, False], [False, True]], "boolean"),
    "object": ([[0.5, None], [0.25, 0.25]], "object"),
    "strings": ([["a", "b"], ["c", "d"]], "string"),
    "ragged": ([[0.5], [0.25, 0.25]], "regular shape"),
}


@pytest.mark.parametrize("case", sorted(NOT_REAL))
def test_non_real_tables_are_refused_naming_the_argument(case):
    table, fragment = NOT_REAL[case]
    with pytest.raises(ValueError, match=rf"^p_xy must be a numeric array of real numbers.*{fragment}"):
        info.mutual_information(table, normalize=True)
    if case != "ragged":
        with pytest.raises(ValueError, match=rf"^q must be a numeric array.*{fragment}"):
            info.kl_divergence([0.5, 0.5], np.asarray(table)[0])
    with pytest.raises(ValueError, match=r"^p_y_given_x must be a numeric array"):
        info.validate_conditional(table)


def test_integer_and_float32_tables_are_accepted():
    assert_allclose(info.mutual_information(np.array([[2, 0], [0, 2]], dtype=np.int64), normalize=True), 1.0)
    assert_allclose(info.entropy(np.array([0.25, 0.75], dtype=np.float32)), info.entropy([0.25, 0.75]), rtol=1e-7)


def _kl_mp(d, q) -> float:
    """sum_i [p_i ln(p_i / q_i) - p_i + q_i] / ln 2 (bits), p = q + d, with 50-digit mpmath: an independent
    reference (it is D(P||Q) when sum d = 0; the -p + q terms cancel the O(eps t) sum of d left by rounding)."""
    with mpmath.workdps(50):
        total = mpmath.mpf(0)
        for di, qi in zip(d, q, strict=True):
            a, b = mpmath.mpf(qi) + mpmath.mpf(di), mpmath.mpf(qi)
            total += (a * mpmath.log(a / b) if a > 0 else 0) - a + b
        return float(total / mpmath.log(2))


@pytest.mark.parametrize("t", [1e-1, 1e-4, 1e-8, 1e-12, 1e-16])
def test_relative_entropy_from_difference_keeps_relative_precision_near_q(t):
    """D(q + d || q) ~ sum d^2 / (2 q ln 2) bits with d = t q (v - q.v): from the difference it matches 50-digit
    arithmetic to 1e-13 relative at every t, while the direct sum (kl_divergence of q + d) is rounding noise below
    t ~ 1e-8."""
    rng = np.random.default_rng(0)
    q = rng.dirichlet(np.ones(5))
    v = rng.standard_normal(5)
    d = t * q * (v - q @ v)  # sum d = 0 (to rounding): both arguments are distributions
    exact = _kl_mp(d, q)
    assert_allclose(info.relative_entropy_from_difference(d, q), exact, rtol=1e-13, atol=0)
    assert_allclose(info.relative_entropy_from_difference(d, q, units="nats"), exact * LN2, rtol=1e-13)


def test_relative_entropy_from_difference_conventions_and_rows():
    # rows of a 2-D d give one divergence each; q = 0 with d = 0 contributes 0, with d > 0 infinity; p = 0 cells
    d = np.array([[0.5, -0.5, 0.0], [-0.25, 0.25, 0.0]])
    q = np.array([0.5, 0.5, 0.0])
    assert_allclose(info.relative_entropy_from_difference(d, q), [1.0, _kl_brute(q[:2] + d[1, :2], q[:2])])
    assert info.relative_entropy_from_difference([-0.5, 0.0, 0.5], [0.5, 0.5, 0.0]) == np.inf
    for args, match in (
        (([0.1, -0.1], [0.5, -0.5]), r"^q has negative entries"),
        (([-0.6, 0.6], [0.5, 0.5]), r"^q \+ d must be non-negative"),
        (([0.1, np.nan], [0.5, 0.5]), r"^d contains NaN"),
        (([0.1, -0.1], [0.5, 0.25, 0.25]), r"^d and q must have broadcastable shapes"),
        ((["a"], [1.0]), r"^d must be a numeric array"),
    ):
        with pytest.raises(ValueError, match=match):
            info.relative_entropy_from_difference(*args)
    with pytest.raises(ValueError, match=r"^units must be"):
        info.relative_entropy_from_difference([0.0], [1.0], units="dits")


# --- kernels: no validation, one implementation under the checked functions and the solvers ---------------------

_cells = st.one_of(st.just(0.0), st.floats(1e-6, 1.0, allow_subnormal=False))
#: 1 to 4 distributions over 3 values, some exact zeros (each row normalised).
rows3 = st.integers(1, 4).flatmap(lambda n: arrays(np.float64, (n, 3), elements=_cells)).filter(
    lambda a: np.all(a.sum(axis=1) > 0)).map(lambda a: a / a.sum(axis=1, keepdims=True))


def test_ln2_and_units():
    assert info.LN2 == math.log(2.0)
    p = np.array([[0.5, 0.5, 0.0], [0.25, 0.25, 0.5]])
    assert_allclose(info.entropy_rows(p, "nats"), [math.log(2.0), 1.5 * math.log(2.0)], rtol=1e-15)
    assert_allclose(info.entropy_rows(p), [1.0, 1.5], rtol=1e-15)
    for kernel, args in ((info.entropy_rows, (p,)), (info.kl_rowwise, (p, p)),
                         (info.kl_matrix, (p, np.log(p + 0.1))), (info.mi_of_joint, (p / p.sum(),))):
        with pytest.raises(ValueError, match=r"^units must be 'bits' or 'nats', got 'bit'"):
            kernel(*args, units="bit")


@given(rows3, rows3)
def test_kl_matrix_is_every_pair_of_kl_rowwise_and_of_the_brute_force(p, q):
    # the matrix product form (the IB iteration's fast path) against the elementwise form and explicit loops
    with np.errstate(divide="ignore"):
        log_q = np.log(q)
    D = info.kl_matrix(p, log_q)
    assert D.shape == (q.shape[0], p.shape[0])
    pairs = info.kl_rowwise(p[None, :, :], q[:, None, :])
    finite = np.isfinite(pairs)
    assert np.array_equal(np.isfinite(D), finite), "inf exactly where p puts mass on a zero of q"
    assert_allclose(D[finite], np.maximum(pairs[finite], 0.0), atol=1e-12)
    for j in range(q.shape[0]):
        for i in range(p.shape[0]):
            if finite[j, i]:
                assert_allclose(D[j, i], _kl_brute(p[i], q[j]), atol=1e-12, err_msg=f"pair ({j}, {i})")
    # leading batch axes of log_q are kept, and units="nats" is ln 2 times the bits
    batch = info.kl_matrix(p, np.stack([log_q, log_q]), units="nats")
    assert batch.shape == (2,) + D.shape
    assert_allclose(batch[1][finite], D[finite] * LN2, rtol=1e-12, atol=1e-15)


def test_kl_rowwise_conventions_and_broadcasting():
    p = np.array([[0.5, 0.5, 0.0], [1.0, 0.0, 0.0]])
    q = np.array([0.25, 0.75, 0.0])
    d = info.kl_rowwise(p, q)  # p = 0 where q = 0: finite; a (2, 3) batch against one q
    assert_allclose(d, [0.5 * math.log2(2) + 0.5 * math.log2(2 / 3), 2.0], rtol=1e-15)
    assert info.kl_rowwise(np.array([0.5, 0.5]), np.array([1.0, 0.0])) == np.inf


def test_mi_of_cells_sparse_equals_dense_and_tiny_cells_stay_finite():
    rng = np.random.default_rng(4)
    p = rng.dirichlet(np.ones(12)).reshape(4, 3)
    p[1, 2] = 0.0
    p /= p.sum()
    rows, cols = np.nonzero(p)
    a, b = p.sum(1), p.sum(0)
    assert_allclose(info.mi_of_cells(p[rows, cols], a[rows], b[cols]), _mi_brute(p), rtol=1e-13)
    assert_allclose(info.mi_of_joint(p, units="nats"), _mi_brute(p) * LN2, rtol=1e-13)
    # marginals given: a joint whose rows and columns hold one 1e-170 cell: p(x) p(y) = 1e-340 underflows to 0,
    # a ratio p / (p(x) p(y)) would be inf; the sum in logs is exact: the tiny cell adds 1e-170 log2(1e170) bits
    t = np.array([[0.5, 0.0, 0.0], [0.0, 0.5, 0.0], [0.0, 0.0, 1e-170]])
    t /= t.sum()
    assert_allclose(info.mi_of_joint(t), 1.0 + 1e-170 * math.log2(1e170), rtol=1e-15)
    assert np.isfinite(info.mi_of_joint(t, t.sum(1), t.sum(0)))


def test_checked_measures_are_the_kernels():
    rng = np.random.default_rng(5)
    p, q = rng.dirichlet(np.ones(6)).reshape(2, 3), rng.dirichlet(np.ones(6)).reshape(2, 3)
    assert info.mutual_information(p) == max(info.mi_of_joint(p), 0.0)
    assert info.kl_divergence(p, q) == max(float(info.kl_rowwise(p.ravel(), q.ravel())), 0.0)
    assert info.entropy(p) == float(info.entropy_rows(p.ravel()))
