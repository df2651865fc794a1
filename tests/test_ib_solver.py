"""The IB solver at one beta: closed forms, self-consistency, reduction, bad input."""

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from scipy.optimize import brentq

from ibtheory import tasks
from ibtheory.ib import (
    IBSolution,
    Reduced,
    ib_curve,
    kl_rows,
    reduce,
    self_consistent_encoder,
    solve,
    trivial_critical_beta,
)
from ibtheory.info import kl_matrix


def _h(p):
    return -p * np.log2(p) - (1 - p) * np.log2(1 - p)


def _bsc_curve(p, R):
    """Mrs Gerber's lemma: F(R) = 1 - h(p * h^-1(1 - R))."""
    u = brentq(lambda x: _h(x) - (1 - R), 1e-300, 0.5)
    return 1 - _h(p * (1 - u) + u * (1 - p))


@pytest.mark.parametrize("p,beta", [(0.1, 2.0), (0.1, 3.0), (0.25, 5.0), (0.05, 1.4)])
def test_binary_symmetric_matches_closed_form(p, beta):
    s = solve(tasks.binary_symmetric(p).p_xy.values, beta)
    assert isinstance(s, IBSolution) and s.converged
    if s.I_XT > 1e-9:
        assert_allclose(s.I_TY, _bsc_curve(p, s.I_XT), atol=1e-8, err_msg="BSC point off the closed form (1e-8 bits)")
    assert s.gap is not None and 0 <= s.gap <= 1e-6


def test_below_trivial_critical_beta_is_trivial():
    p = 0.1
    s = solve(tasks.binary_symmetric(p).p_xy.values, 0.95 / (1 - 2 * p) ** 2)
    assert_allclose([s.I_XT, s.I_TY], [0.0, 0.0], atol=1e-10)


def test_solution_is_self_consistent_and_rows_sum_to_one():
    rng = np.random.default_rng(3)
    p_xy = rng.dirichlet(np.ones(12)).reshape(6, 2)
    s = solve(p_xy, 4.0)
    assert_allclose(s.encoder.sum(axis=1), 1.0, atol=1e-12)
    p_x = p_xy.sum(axis=1)
    rhs = self_consistent_encoder(p_x, p_xy / p_x[:, None], s.decoder, s.p_t, s.beta)
    assert_allclose(s.encoder, rhs, atol=1e-6, err_msg="encoder is not a fixed point (atol 1e-6)")
    assert_allclose(s.p_t, p_x @ s.encoder, atol=1e-12)
    assert_allclose(s.lagrangian, s.I_XT - s.beta * s.I_TY, rtol=1e-12)


def test_kl_rows_units_and_infinity():
    D = kl_rows([[1.0, 0.0], [0.5, 0.5]], [[0.5, 0.5], [1.0, 0.0]])
    assert_allclose(D[0], [1.0, 0.0])
    assert D[1, 1] == np.inf
    assert_allclose(kl_rows([[1.0, 0.0]], [[0.5, 0.5]], units="nats"), [[np.log(2)]])


def test_hard_labels_high_beta_no_underflow():
    s = solve([[0.3, 0.0], [0.0, 0.5], [0.2, 0.0]], 1e5)
    assert np.all(np.isfinite(s.encoder)) and s.n_t == 2
    assert_allclose(s.I_TY, s.I_XT, atol=1e-12)


def test_zero_rows_dropped_with_mapping_and_equal_rows_merged():
    p_xy = np.array([[0.2, 0.1], [0.0, 0.0], [0.2, 0.1], [0.1, 0.3]])
    s = solve(p_xy, 10.0)
    assert s.x_class.tolist()[1] == -1 and s.x_class[0] == s.x_class[2]
    assert_allclose(s.encoder[0], s.encoder[2])
    assert_allclose(s.encoder[1], s.p_t)
    assert_allclose(s.encoder.sum(axis=1), 1.0)


@pytest.mark.parametrize(
    "p_xy,beta,match",
    [
        ([[0.5, 0.5]], 0.0, "beta"),
        ([[0.5, 0.5]], -1.0, "beta"),
        ([[0.5, 0.5]], np.nan, "beta"),
        ([[0.5, np.nan], [0.0, 0.0]], 1.0, "NaN"),
        ([[0.5], [0.5]], 1.0, "two values"),
        ([[0.5, 0.0], [0.5, 0.0]], 1.0, "two values"),
        ([[0.5, 0.6]], 1.0, "sums"),
    ],
)
def test_bad_input(p_xy, beta, match):
    with pytest.raises(ValueError, match=match):
        solve(p_xy, beta)


def test_deterministic_ib_gives_hard_encoder():
    rng = np.random.default_rng(1)
    p_xy = rng.dirichlet(np.ones(16)).reshape(8, 2)
    s = solve(p_xy, 20.0, deterministic=True)
    assert set(np.unique(s.encoder)) <= {0.0, 1.0}
    assert_allclose(s.I_XT, -np.sum(s.p_t * np.log2(s.p_t)), atol=1e-12, err_msg="DIB: I(X;T) = H(T)")


def test_sufficient_statistic_reduction_split_and_permute():
    """Splitting an x into two with the same p(y|x), adding a zero row and permuting the rows leave the curve
    unchanged (Lagrangian per beta to 1e-10 bits); x with equal p(y|x) get equal encoder rows."""
    rng = np.random.default_rng(7)
    for n_y in (2, 3):
        p_xy = rng.dirichlet(np.ones(5 * n_y)).reshape(5, n_y)
        split = np.concatenate([0.3 * p_xy[:1], 0.7 * p_xy[:1], p_xy[1:], np.zeros((1, n_y))])
        perm = rng.permutation(len(split))
        betas = trivial_critical_beta(p_xy) * np.geomspace(0.8, 50, 8)
        ref, new = ib_curve(p_xy, betas=betas), ib_curve(split[perm], betas=betas)
        assert_allclose(new.lagrangian.values, ref.lagrangian.values, atol=1e-10, rtol=0)
        enc = new.encoder.values[:, np.argsort(perm)]  # rows back in the order of ``split``
        assert_array_equal(enc[:, 0], enc[:, 1])
        assert_allclose(enc[:, 0], ref.encoder.values[:, 0], atol=1e-8)
        assert_allclose(enc[:, 2:-1], ref.encoder.values[:, 1:], atol=1e-8)
        assert_allclose(enc[:, -1], new.p_t.values, atol=1e-15)  # the zero row gets p(t)


def test_paper_soft_task_reduces_to_at_most_53_classes():
    task = tasks.tishby(19.05)
    s = solve(task.p_xy.values, 10.0, certify=False)
    f = np.round(task.f.values, 9)
    assert np.unique(f).size == 53 and np.unique(s.x_class).size <= 53
    # x with the same f(x) share p(y|x), hence their class and their encoder row
    first = {v: i for i, v in enumerate(f)}
    rep = np.array([first[v] for v in f])
    assert_array_equal(s.x_class, s.x_class[rep])
    assert_array_equal(s.encoder, s.encoder[rep])


@pytest.mark.parametrize("beta", [5.0, 30.0])
def test_plain_iteration_reaches_the_accelerated_lagrangian(beta):
    p_xy = tasks.tishby(19.05).p_xy.values
    fast = solve(p_xy, beta, certify=False)
    plain = solve(p_xy, beta, certify=False, accelerate=False, max_iter=200000)
    assert plain.converged and fast.converged
    assert_allclose(plain.lagrangian, fast.lagrangian, atol=1e-9, rtol=0,
                    err_msg="plain and SQUAREM-accelerated iterations disagree (1e-9 bits)")
    assert plain.iterations > fast.iterations, f"plain {plain.iterations} vs accelerated {fast.iterations} maps"


@pytest.mark.parametrize("seed,beta", [(2, 10.0), (3, 8.0), (4, 40.0)])
def test_deterministic_ib_fixed_point_condition(seed, beta):
    """At a DIB solution every x is assigned to argmax_t [ln p(t) - beta KL(p(y|x) || p(y|t))] (nats), with p(t) and
    p(y|t) those of the hard encoder itself; checked by explicit loops."""
    rng = np.random.default_rng(seed)
    n_x, n_y = 9, 3
    p_xy = rng.dirichlet(np.ones(n_x * n_y)).reshape(n_x, n_y)
    s = solve(p_xy, beta, deterministic=True)
    assert set(np.unique(s.encoder)) <= {0.0, 1.0} and s.n_t >= 2, "a hard encoder with several clusters"
    t_of = np.argmax(s.encoder, axis=1)
    p_x = p_xy.sum(axis=1)
    n_t = s.n_t
    p_t = np.array([p_x[t_of == t].sum() for t in range(n_t)])
    dec = np.array([p_xy[t_of == t].sum(axis=0) / p_t[t] for t in range(n_t)])
    assert_allclose(p_t, s.p_t, atol=1e-12)
    assert_allclose(dec, s.decoder, atol=1e-12)
    for x in range(n_x):
        w = p_xy[x] / p_x[x]
        score = [np.log(p_t[t]) - beta * sum(w[y] * np.log(w[y] / dec[t, y]) for y in range(n_y) if w[y] > 0)
                 for t in range(n_t)]
        assert int(np.argmax(score)) == t_of[x], f"x={x} assigned to {t_of[x]}, argmax is {int(np.argmax(score))}"


_BSC = [[0.4, 0.1], [0.1, 0.4]]


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"beta": "a"}, r"^beta must be a real number, got 'a' \(str\)"),
        ({"beta": True}, r"^beta must be a real number, got True \(bool\)"),
        ({"beta": np.inf}, r"^beta must be a finite number, got inf$"),
        ({"beta": 0.0}, r"^beta must be > 0, got 0\.0$"),
        ({"beta": np.float32(-1.0)}, r"^beta must be > 0, got -1\.0$"),
        ({"beta": 2.0, "tol": "1e-9"}, r"^tol must be a real number"),
        ({"beta": 2.0, "tol": -1.0}, r"^tol must be > 0"),
        ({"beta": 2.0, "max_iter": 0}, r"^max_iter must be an integer >= 1"),
        ({"beta": 2.0, "max_iter": 2.5}, r"^max_iter must be an integer"),
        ({"beta": 2.0, "n_t": 1.5}, r"^n_t must be an integer"),
        ({"beta": 2.0, "n_t": 0}, r"^n_t must be an integer >= 1"),
        ({"beta": 2.0, "init": "random", "seed": -1}, r"^seed must be an integer >= 0"),
        ({"beta": 2.0, "init": "random", "seed": "a"}, r"^seed must be an integer"),
        ({"beta": 2.0, "init": "random", "seed": 1.5}, r"^seed must be an integer .* \(a float\)"),
        ({"beta": 2.0, "deterministic": "yes"}, r"^deterministic must be True or False"),
        ({"beta": 2.0, "accelerate": None}, r"^accelerate must be True or False"),
        ({"beta": 2.0, "certify": 1}, r"^certify must be True, False or None"),
        ({"beta": 2.0, "init": object()}, r"^init must be None, 'identity', 'random'"),
        ({"beta": 2.0, "init": [[1.0, 0.0], [0.5]]}, r"^init must be a numeric array .* regular shape"),
        ({"beta": 2.0, "n_t": 10**9}, r"^solve with 1000000000 clusters needs ~\d+\.\d GiB .* MAX_CELLS"),
    ],
)
def test_bad_solve_arguments_name_the_argument(kwargs, match):
    with pytest.raises(ValueError, match=match):
        solve(_BSC, **kwargs)


def test_solve_accepts_numpy_scalars_and_generators():
    ref = solve(_BSC, 3.0, init="random", n_t=2, seed=2, tol=1e-12, max_iter=1000)
    s = solve(_BSC, np.float32(3.0), init="random", n_t=np.int64(2), seed=np.int64(2), tol=np.float64(1e-12),
              max_iter=np.int32(1000), certify=np.bool_(True))
    assert_allclose(s.encoder, ref.encoder, rtol=0, atol=0)
    g = solve(_BSC, 3.0, init="random", n_t=2, seed=np.random.default_rng(2))
    assert_allclose(g.lagrangian, ref.lagrangian, atol=1e-9)


def test_self_consistent_encoder_and_kl_rows_name_non_real_input():
    with pytest.raises(ValueError, match=r"^p_y_x must be a numeric array of real numbers, got complex"):
        kl_rows(np.array([[0.5 + 1j, 0.5]]), [[0.5, 0.5]])
    with pytest.raises(ValueError, match=r"^p_t must be a numeric array of real numbers, got string"):
        self_consistent_encoder([1.0], [[0.5, 0.5]], [[0.5, 0.5]], ["a"], 2.0)


def test_the_reduced_problem_is_public_and_checks_its_flags():
    # rows 0 and 2 agree to 12 decimals, but row 2 has a 1e-13 tail where row 0 is exactly 0
    p = np.array([[0.25, 0.25, 0.0], [0.1, 0.1, 0.3], [0.25, 0.25 - 1e-13, 1e-13]])
    p /= p.sum()
    merged, split = reduce(p), reduce(p, split_support=True)
    assert isinstance(merged, Reduced) and merged.classes[0] == merged.classes[2] and merged.n_s == 2
    assert split.n_s == 3 and len(set(split.classes.tolist())) == 3
    assert_allclose(split.p_s @ split.W, p.sum(axis=0), rtol=1e-12)  # p(y) kept
    assert_allclose(merged.neg_entropy_rows, [np.sum(w[w > 0] * np.log(w[w > 0])) for w in merged.W], rtol=1e-14)
    with pytest.raises(ValueError, match=r"^split_support must be True or False, got 'yes' \(str\)"):
        reduce(p, split_support="yes")
    with pytest.raises(ValueError, match="^p_xy sums to"):
        reduce([[0.5, 0.6]])


def test_reduce_takes_a_constant_y_but_the_ib_refuses_it():
    # a reduction of a constant Y is well defined (one class); the IB of it is not (beta is undefined)
    r = reduce([[0.5], [0.5]])
    assert r.n_s == 1 and r.deterministic and r.classes.tolist() == [0, 0]
    for call in (lambda: solve([[0.5], [0.5]], 1.0), lambda: ib_curve([[0.5, 0.0], [0.5, 0.0]]),
                 lambda: trivial_critical_beta([[0.5, 0.0], [0.5, 0.0]])):
        with pytest.raises(ValueError, match=r"^p_xy must give Y at least two values with positive probability"):
            call()


def test_kl_rows_is_the_kernel_of_the_iteration():
    rng = np.random.default_rng(2)
    W, dec = rng.dirichlet(np.ones(3), size=4), rng.dirichlet(np.ones(3), size=2)
    dec[1, 0] = 0.0
    dec[1] /= dec[1].sum()
    with np.errstate(divide="ignore"):
        brute = np.array([[np.sum(w * np.log2(w / d)) for d in dec] for w in W])  # W > 0: inf where d = 0
        assert_allclose(kl_rows(W, dec), brute, rtol=1e-13)
        assert_array_equal(kl_rows(W, dec, units="nats"), kl_matrix(W, np.log(dec), units="nats").T)
