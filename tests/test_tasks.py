"""The paper's task (against the authors' file when present, and by invariants when not) and the other tasks."""

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from ibtheory import info, tasks


@pytest.fixture(scope="module")
def hard():
    return tasks.tishby()


def test_hard_labels_match_authors_file_bit_for_bit(hard, shared_data):
    mat = tasks.from_mat(shared_data / "var_u.mat")
    assert_array_equal(mat["patterns"].values, hard["patterns"].values)
    assert_array_equal(mat["p_xy"].values, hard["p_xy"].values)


def test_hard_task_numbers(hard):
    p = hard["p_xy"].values
    assert int(round(p[:, 1].sum() * 4096)) == 2118
    assert_allclose(p[:, 1].sum(), 0.51709, atol=5e-6)
    assert_allclose(info.mutual_information(p), 0.999157, atol=5e-7)
    assert hard.attrs["deterministic"] == 1
    assert len(np.unique(np.round(hard["f"].values, 9))) == 53
    assert int(hard["f_class"].max()) + 1 == 53


def test_patterns_are_binary_expansions(hard):
    pats = hard["patterns"].values
    codes = pats @ (1 << (11 - np.arange(12)))
    assert_array_equal(codes, np.arange(4096))


def test_vertices_form_regular_icosahedron():
    v = tasks.ICOSAHEDRON
    assert_allclose(np.linalg.norm(v, axis=1), 1.0)
    gram = np.round(v @ v.T, 9)
    # each vertex: 5 neighbours at cos = 1/sqrt5, 5 at -1/sqrt5, 1 antipode
    for row in gram:
        vals, counts = np.unique(row, return_counts=True)
        assert_allclose(vals, [-1, -1 / np.sqrt(5), 1 / np.sqrt(5), 1], atol=1e-8)
        assert_array_equal(counts, [1, 5, 5, 1])


def test_120_label_preserving_permutations(hard):
    perms = tasks.icosahedral_permutations()
    assert len({tuple(p) for p in perms}) == 120
    y = hard["p_xy"].values[:, 1]
    pats = hard["patterns"].values
    weights = 1 << (11 - np.arange(12))
    permuted_codes = (pats[:, perms] * weights).sum(axis=-1)  # (4096, 120)
    assert_array_equal(y[permuted_codes], np.repeat(y[:, None], 120, axis=1))
    # orbits: f and the labels are constant on each orbit
    for var in (hard["f"].values, y):
        spread = np.full(int(hard["orbit"].max()) + 1, -np.inf)
        np.maximum.at(spread, hard["orbit"].values, var)
        lo = np.full_like(spread, np.inf)
        np.minimum.at(lo, hard["orbit"].values, var)
        assert_allclose(spread, lo, atol=1e-9)


def test_label_rule_by_weight(hard):
    # the file's README: y = 0 for <= 4 ones, y = 1 for >= 8 ones
    w = hard["patterns"].values.sum(1)
    y = hard["p_xy"].values[:, 1] * 4096
    assert np.all(y[w <= 4] == 0) and np.all(y[w >= 8] == 1)


def test_soft_task_information():
    soft = tasks.tishby(gamma=tasks.TISHBY_SOFT_GAMMA)
    assert_allclose(soft.attrs["I_XY"], 0.90, atol=1e-4)
    assert soft.attrs["deterministic"] == 0
    g = tasks.gamma_for_information(0.75)
    assert_allclose(tasks.tishby(g).attrs["I_XY"], 0.75, atol=1e-9)
    # soft labels approach the hard ones as gamma grows
    assert_allclose(tasks.tishby(1e4).attrs["I_XY"], 0.999157, atol=1e-3)


def test_sufficient_classes_merge_equal_rows():
    p = np.array([[0.1, 0.1], [0.2, 0.2], [0.3, 0.1]])
    cls = tasks.sufficient_classes(p / p.sum())
    assert cls[0] == cls[1] != cls[2]
    hard_classes = tasks.sufficient_classes(tasks.tishby()["p_xy"].values)
    assert hard_classes.max() + 1 == 2


@pytest.mark.parametrize("p", [0.0, 0.11, 0.5])
def test_binary_symmetric(p):
    ds = tasks.binary_symmetric(p)
    h = 0.0 if p in (0.0, 1.0) else -p * np.log2(p) - (1 - p) * np.log2(1 - p)
    assert_allclose(ds.attrs["I_XY"], 1 - h, atol=1e-12)


def test_from_samples_codes_and_rows():
    x = np.array([0, 0, 1, 1, 2, 2, 2, 2])
    y = np.array([0, 1, 1, 1, 0, 0, 0, 0])
    ds = tasks.from_samples(x, y)
    assert_allclose(ds["p_xy"].values, [[1 / 8, 1 / 8], [0, 2 / 8], [4 / 8, 0]])
    rows = np.array([[0, 1], [0, 1], [1, 1]])
    ds2 = tasks.from_samples(rows, np.array([1, 1, 0]))
    assert_allclose(ds2["p_xy"].values, [[0, 2 / 3], [1 / 3, 0]])
    assert_array_equal(ds2["values"].values, [[0, 1], [1, 1]])
    with pytest.raises(ValueError, match="same number of samples"):
        tasks.from_samples(x, y[:3])


def test_gaussian_discretized_converges_to_closed_form():
    rho = 0.8
    exact = -0.5 * np.log2(1 - rho**2)
    errors = [abs(tasks.gaussian_discretized(rho, n, n, 7.0).attrs["I_XY"] - exact) for n in (8, 16, 32)]
    assert errors[2] < errors[1] < errors[0], errors
    assert errors[2] < 1e-8, errors


def test_sample_follows_the_joint():
    ds = tasks.tishby(gamma=tasks.TISHBY_SOFT_GAMMA)
    draw = tasks.sample(ds, 200_000, seed=1)
    p1 = ds["p_xy"].values[:, 1].sum()
    n = draw.sizes["sample"]
    assert abs(draw["label"].values.mean() - p1) < 5 * np.sqrt(p1 * (1 - p1) / n)
    assert_array_equal(draw["features"].values, ds["patterns"].values[draw["x_index"].values])
    again = tasks.sample(ds, 200_000, seed=1)
    assert_array_equal(again["label"].values, draw["label"].values)


def test_sample_hard_labels_are_the_rule():
    ds = tasks.tishby()
    draw = tasks.sample(ds, 1000, seed=3)
    y = ds["p_xy"].values[:, 1] > 0
    assert_array_equal(draw["label"].values, y[draw["x_index"].values].astype(int))


def test_from_mat_errors(tmp_path):
    from scipy.io import savemat

    with pytest.raises(FileNotFoundError, match="does not exist"):
        tasks.from_mat(tmp_path / "nope.mat")
    savemat(tmp_path / "nokeys.mat", {"F": np.zeros((4, 2))})
    with pytest.raises(ValueError, match="lacks the key"):
        tasks.from_mat(tmp_path / "nokeys.mat")
    (tmp_path / "junk.mat").write_bytes(b"not a mat file at all")
    with pytest.raises(ValueError, match="not a readable"):
        tasks.from_mat(tmp_path / "junk.mat")


@pytest.mark.parametrize(
    "call, fragment",
    [
        (lambda: tasks.tishby(gamma=-1.0), "gamma"),
        (lambda: tasks.tishby(gamma=float("nan")), "gamma"),
        (lambda: tasks.binary_symmetric(1.5), "p must"),
        (lambda: tasks.gaussian_discretized(rho=1.0), "rho"),
        (lambda: tasks.gaussian_discretized(n_x=1), "n_x"),
        (lambda: tasks.gamma_for_information(1.2), "bits"),
        (lambda: tasks.sample(tasks.binary_symmetric(0.1), 0), "n must"),
    ],
)
def test_bad_task_arguments(call, fragment):
    with pytest.raises(ValueError, match=fragment):
        call()


def _write_mat(path, F, y):
    from scipy.io import savemat

    savemat(path, {"F": F, "y": y})
    return path


#: Bad authors'-format files: (F, y, message fragment).  F rows are patterns x with p(x) = 1/n each.
BAD_MAT = {
    "nan-in-F": (np.array([[0.0, 1.0], [np.nan, 1.0]]), np.array([[0, 1]]), r"'F' .* 0/1 bits; entry \(1, 0\) is nan"),
    "half-in-F": (np.array([[0.0, 1.0], [0.5, 1.0]]), np.array([[0, 1]]), r"'F' .* entry \(1, 0\) is 0.5"),
    "two-in-F": (np.array([[0, 2], [1, 1]]), np.array([[0, 1]]), r"'F' .* entry \(0, 1\) is 2"),
    "complex-F": (np.array([[0, 1j], [1, 0]]), np.array([[0, 1]]), r"'F' .* complex"),
    "nan-label": (np.array([[0, 1], [1, 1]]), np.array([[0.0, np.nan]]), r"'y' .* 0/1 labels; entry 1 is nan"),
    "soft-label": (np.array([[0, 1], [1, 1]]), np.array([[0.0, 0.7]]), r"'y' .* entry 1 is 0.7"),
    "empty-F": (np.zeros((0, 3)), np.zeros((1, 0)), r"'F' .* at least one row"),
    "duplicate-rows": (np.array([[0, 1], [1, 1], [0, 1]]), np.array([[0, 1, 1]]), r"repeats the pattern of row 0 at "
                       r"row 2"),
    "constant-F": (np.ones((3, 4)), np.array([[0, 1, 0]]), r"repeats the pattern of row 0 at row 1 \(3 of 3"),
    "label-count": (np.array([[0, 1], [1, 1]]), np.array([[0, 1, 1]]), r"'y' has 3 labels"),
}


@pytest.mark.parametrize("case", sorted(BAD_MAT))
def test_from_mat_refuses_what_it_used_to_cast_or_divide_by(case, tmp_path):
    F, y, fragment = BAD_MAT[case]
    path = _write_mat(tmp_path / f"{case}.mat", F, y)
    with pytest.raises(ValueError, match=fragment):
        tasks.from_mat(path)


def test_from_mat_accepts_constant_patterns_and_logicals(tmp_path):
    """All-zeros and all-ones rows are patterns like any other (rows 0 and 4095 of var_u.mat), a constant bit
    column carries no information but is legitimate, and MATLAB logicals load as bits."""
    F = np.array([[0, 0, 1], [0, 1, 1], [1, 0, 1], [1, 1, 1]], dtype=bool)
    ds = tasks.from_mat(_write_mat(tmp_path / "ok.mat", F, np.array([[0, 0, 1, 1]], dtype=np.uint8)))
    assert_allclose(ds["p_xy"].values, [[0.25, 0], [0.25, 0], [0, 0.25], [0, 0.25]])
    assert_array_equal(ds["patterns"].values, F.astype(np.int8))
    assert_allclose(ds.attrs["I_XY"], 1.0)


@pytest.mark.parametrize(
    "x, y, fragment",
    [
        ([0.0, np.nan, 1.0], [0, 1, 1], r"^x has a NaN or infinite code at sample 1"),
        ([0, 1, 1], [0.0, 1.0, np.inf], r"^y has a NaN or infinite code at sample 2"),
        (np.array([0, 1j, 1]), [0, 1, 1], r"^x must hold integer, real, boolean or string codes, got complex"),
        ([0, None, 1], [0, 1, 1], r"^x must hold .* got objects"),
        ([[0, 1], [1]], [0, 1], r"^x must be an array of codes or of rows of equal length"),
        (np.zeros((3, 0)), [0, 1, 1], r"^x must be a non-empty"),
    ],
)
def test_from_samples_refuses_non_symbols(x, y, fragment):
    with pytest.raises(ValueError, match=fragment):
        tasks.from_samples(x, y)


def test_from_samples_string_and_bool_symbols():
    ds = tasks.from_samples(np.array(["a", "b", "a", "b"]), np.array([True, False, True, True]))
    assert_allclose(ds["p_xy"].values, [[0, 2 / 4], [1 / 4, 1 / 4]])


@pytest.mark.parametrize(
    "call, fragment",
    [
        (lambda: tasks.tishby(gamma="19"), r"^gamma must be a real number.*None for the hard labels"),
        (lambda: tasks.tishby(gamma=True), r"^gamma must be a real number"),
        (lambda: tasks.tishby(gamma=np.inf), r"^gamma must be a finite number"),
        (lambda: tasks.gamma_for_information("0.5"), r"^bits must be a real number"),
        (lambda: tasks.gamma_for_information(np.nan), r"^bits must be a finite number"),
        (lambda: tasks.binary_symmetric("0.1"), r"^p must be a real number"),
        (lambda: tasks.binary_symmetric(np.nan), r"^p must be a finite number"),
        (lambda: tasks.gaussian_discretized(rho="0.8"), r"^rho must be a real number"),
        (lambda: tasks.gaussian_discretized(n_x=2.5), r"^n_x must be an integer"),
        (lambda: tasks.gaussian_discretized(n_y="8"), r"^n_y must be an integer"),
        (lambda: tasks.gaussian_discretized(n_x=10**6), r"^n_x = 1000000 exceeds MAX_GRID = 4096.*raise"),
        (lambda: tasks.gaussian_discretized(width=-1.0), r"^width must be > 0"),
        (lambda: tasks.sample(tasks.binary_symmetric(0.1), 1.5), r"^n must be an integer"),
        (lambda: tasks.sample(tasks.binary_symmetric(0.1), 10**9), r"^n = 1000000000 exceeds MAX_SAMPLES"),
        (lambda: tasks.sample(None, 5), r"^task must be a Dataset"),
        (lambda: tasks.sample(tasks.binary_symmetric(0.1), 5, seed=-1), r"^seed must be an integer >= 0"),
        (lambda: tasks.sample(tasks.binary_symmetric(0.1), 5, seed="a"), r"^seed must be an integer"),
        (lambda: tasks.sample(tasks.binary_symmetric(0.1), 5, seed=1.5), r"^seed must be an integer.*float"),
        (lambda: tasks.from_joint([[0.5, 0.5]], name=3), r"^name must be a non-empty string"),
        (lambda: tasks.from_joint([[1.0, 1.0]], normalize="yes"), r"^normalize must be True or False"),
        (lambda: tasks.sufficient_classes([[0.5, 0.5]], decimals=1.5), r"^decimals must be an integer"),
    ],
)
def test_bad_scalars_name_the_argument(call, fragment):
    with pytest.raises(ValueError, match=fragment):
        call()


def test_numpy_scalars_are_accepted_like_python_numbers():
    assert_allclose(tasks.binary_symmetric(np.float32(0.25)).attrs["I_XY"], tasks.binary_symmetric(0.25).attrs["I_XY"])
    g = tasks.gaussian_discretized(np.float64(0.5), np.int64(6), np.int32(5), np.float32(3.0))
    assert g["p_xy"].shape == (6, 5)
    task = tasks.binary_symmetric(0.2)
    a, b = tasks.sample(task, np.int64(50), seed=np.int64(7)), tasks.sample(task, 50, seed=7)
    assert_array_equal(a["label"].values, b["label"].values)
    assert_allclose(tasks.tishby(np.int64(19)).attrs["I_XY"], tasks.tishby(19.0).attrs["I_XY"], rtol=0, atol=0)


# ---------------------------------------------------------------- the registry: tasks by name
def _mi_bits(p_xy) -> float:
    """I(X;Y) = sum p log2 p / (p(x) p(y)), 0 log 0 = 0, written out here (not ibtheory.info)."""
    p = np.asarray(p_xy, dtype=float)
    outer = p.sum(1, keepdims=True) * p.sum(0, keepdims=True)
    nz = p > 0
    return float(np.sum(p[nz] * np.log2(p[nz] / outer[nz])))


def test_make_builds_the_tables_of_the_constructors():
    assert list(tasks.BUILTIN) == ["tishby", "binary_symmetric", "gaussian_discretized"]
    assert_array_equal(tasks.make("tishby")["p_xy"].values, tasks.tishby()["p_xy"].values)
    assert_array_equal(tasks.make("tishby", gamma=19.05)["p_xy"].values, tasks.tishby(19.05)["p_xy"].values)
    assert_allclose(_mi_bits(tasks.make("tishby", info_bits=0.9)["p_xy"]), 0.9, atol=1e-9)
    # p(x, y) = (1 - p)/2 on the diagonal, p/2 off it
    assert_allclose(tasks.make("binary_symmetric", p=0.2)["p_xy"], [[0.4, 0.1], [0.1, 0.4]], rtol=1e-15)
    assert_allclose(tasks.make("binary_symmetric")["p_xy"], [[0.45, 0.05], [0.05, 0.45]], rtol=1e-15)
    assert_array_equal(tasks.make("gaussian_discretized", rho=0.5, grid=6)["p_xy"].values,
                       tasks.gaussian_discretized(0.5, 6, 6)["p_xy"].values)
    # one default: the grid of gaussian_discretized's own signature (64), whichever way the task is reached
    assert tasks.make("gaussian_discretized")["p_xy"].shape == tasks.gaussian_discretized()["p_xy"].shape == (64, 64)


def test_one_spelling_with_documented_aliases():
    assert tasks.resolve("binary_symmetric") == tasks.resolve("binary-symmetric") == "binary_symmetric"
    assert tasks.resolve("gaussian") == "gaussian_discretized"  # the short name the commands and grids used
    assert_array_equal(tasks.make("binary-symmetric", p=0.3)["p_xy"].values,
                       tasks.binary_symmetric(0.3)["p_xy"].values)


@pytest.mark.parametrize(
    ("call", "fragment"),
    [
        (lambda: tasks.make("tishbi"),
         r"^task must be one of \['tishby', 'binary_symmetric', 'gaussian_discretized'\], got 'tishbi'"),
        (lambda: tasks.make(None), r"^task must be one of"),
        (lambda: tasks.make("tishby", rho=0.5), r"^task 'tishby' takes no parameter\(s\) \['rho'\]; its parameters: "
                                                r"\['gamma', 'info_bits'\]"),
        (lambda: tasks.make("tishby", gamma=19.0, info_bits=0.9), r"^give gamma or info_bits .* not both"),
        (lambda: tasks.make("tishby", info_bits=1.5), r"^info_bits: bits must lie in \(0, 0\.999157\)"),
        (lambda: tasks.make("binary_symmetric", p=1.5), r"^p must be <= 1"),
        (lambda: tasks.make("gaussian", grid=1), r"^n_x must be an integer >= 2"),
        (lambda: tasks.register("tishby"), r"^task must be a BuiltinTask"),
        (lambda: tasks.register(tasks.BuiltinTask("my-task", tasks.tishby)), r"^task name 'my-task' must be a Python"),
        (lambda: tasks.register(tasks.BuiltinTask("tishby", tasks.tishby)), r"^task name 'tishby' is taken"),
        (lambda: tasks.register(tasks.BuiltinTask("t2", tasks.tishby, aliases=("binary_symmetric",))), r"is taken"),
        (lambda: tasks.register(tasks.BuiltinTask("t2", tasks.tishby, (tasks.Param("p", int, 3),))),
         r"^task 't2': parameter 'p' \(int, default 3\) differs from task 'binary_symmetric'"),
        (lambda: tasks.register(tasks.BuiltinTask("t2", tasks.tishby, (tasks.Param("p", float, 0.2),))),
         r"differs from task 'binary_symmetric'"),
        (lambda: tasks.register(tasks.BuiltinTask("t2", tasks.tishby, (tasks.Param("a"), tasks.Param("a")))),
         r"^task 't2' repeats a parameter name"),
        (lambda: tasks.Param("k", str), r"^Param 'k': type must be float or int"),
        (lambda: tasks.Param("k", int, 2.5), r"^Param 'k': default must be an integer"),
        (lambda: tasks.Param("k-1"), r"^Param name must be a Python identifier"),
    ],
)
def test_registry_refusals_name_what_is_wrong(call, fragment):
    with pytest.raises(ValueError, match=fragment):
        call()
    assert list(tasks.BUILTIN) == ["tishby", "binary_symmetric", "gaussian_discretized"], "refused: not added"


def _toy_copy(k: int):
    """p(x, y) = [x = y] / k: a copy of k equally likely symbols, I(X;Y) = log2 k bits."""
    from ibtheory._validate import integer

    k = integer(k, "k", 2)
    return tasks.from_joint(np.eye(k) / k, name="toy_copy")


@pytest.fixture
def toy_task():
    """A task added by one register call, as docs/architecture.md says; removed afterwards."""
    entry = tasks.register(tasks.BuiltinTask("toy_copy", _toy_copy, (tasks.Param("k", int, 3, "symbols"),),
                                             help="Y = X, uniform on k symbols"))
    yield entry
    tasks.unregister("toy_copy")
    assert "toy_copy" not in tasks.BUILTIN


def test_a_registered_task_reaches_every_command_and_the_runner(toy_task, tmp_path, capsys):
    """Registering is the only edit: `task`, `solve`, `train` and grids of both runner kinds accept the task and its
    parameter, the hyphen spelling included; the results are the copy's closed forms (I = log2 k bits)."""
    from ibtheory import runner, store
    from ibtheory.cli import main
    from ibtheory.runner import builtin

    assert_allclose(_mi_bits(tasks.make("toy_copy")["p_xy"]), np.log2(3), rtol=1e-12)
    assert main(["task", "--name", "toy-copy", "--k", "4", "--out", str(tmp_path / "t.nc")]) == 0
    assert "I(X;Y) = 2.000000 bits" in capsys.readouterr().out
    assert_allclose(store.load(tmp_path / "t.nc")["p_xy"].values, np.eye(4) / 4, rtol=1e-15)
    # beta > 1: T = X is optimal for a copy, I(T;Y) = I(X;Y) = 1 bit at k = 2
    assert main(["solve", "--task", "toy_copy", "--k", "2", "--beta", "5", "--out", str(tmp_path / "s.nc")]) == 0
    assert "I(T;Y) = 1.000000 bits" in capsys.readouterr().out
    assert main(["task", "--name", "toy_copy", "--rho", "0.5"]) == 2
    assert "--rho applies to --name gaussian_discretized, not to --name toy_copy" in capsys.readouterr().err

    grid = {"kind": "ib_curve", "fixed": {"task": "toy-copy", "k": 2, "betas": [0.5, 4.0]}}
    res = runner.run_sweep(grid, tmp_path / "sweep", progress=False)
    assert not res.failures and store.config_of(res.dataset)["fixed"]["task"] == "toy_copy"
    # beta < 1: the trivial encoder (I(T;Y) = 0); beta > 1: the copy (1 bit)
    assert_allclose(res.dataset["I_TY"].values.ravel(), [0.0, 1.0], atol=1e-9)
    train_grid = runner.load_grid({"kind": "train", "fixed": {"task": "toy_copy", "k": 5, "epochs": 1}})
    assert_allclose(builtin._task(train_grid.tasks()[0].config)["p_xy"], np.eye(5) / 5, rtol=1e-15)
    with pytest.raises(ValueError, match="task kind 'ib_curve': k must be an integer >= 2, got 1"):
        runner.load_grid({"kind": "ib_curve", "fixed": {"task": "toy_copy", "k": 1, "betas": [1.0]}})


def test_a_registered_task_trains_from_the_command_line(toy_task, tmp_path):
    from ibtheory import store
    from ibtheory.cli import main

    out = tmp_path / "run.nc"
    assert main(["train", "--name", "toy_copy", "--k", "5", "--hidden", "3", "--repeats", "1", "--epochs", "1",
                 "--snapshots", "1", "--no-progress", "--out", str(out)]) == 0
    run = store.load(out)
    assert_allclose(run["p_xy"].values, np.eye(5) / 5, rtol=1e-15)
    assert run.attrs["task"] == "toy_copy" and run.sizes["repeat"] == 1
