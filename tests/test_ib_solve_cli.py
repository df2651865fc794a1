"""`ibtheory solve` and task Datasets as input of the solver: closed forms of the binary symmetric source."""

import numpy as np
import pytest
from numpy.testing import assert_allclose

from ibtheory import store, tasks
from ibtheory.cli import main
from ibtheory.ib import ib_curve, solve


def _h(p: float) -> float:
    return float(-p * np.log2(p) - (1 - p) * np.log2(1 - p))


def test_solve_cli_writes_the_copying_solution_of_the_binary_symmetric_source(tmp_path, capsys):
    # at beta = 50 the optimal T copies X (beta far above 1/(1-2p)^2 = 1.5625): I(X;T) = 1, I(T;Y) = 1 - h(p)
    out = tmp_path / "sol.nc"
    assert main(["solve", "--task", "binary-symmetric", "--p", "0.1", "--beta", "50", "--out", str(out)]) == 0
    sol = store.load(out)
    assert_allclose(float(sol["I_XT"]), 1.0, atol=1e-9)
    assert_allclose(float(sol["I_TY"]), 1 - _h(0.1), atol=1e-9)
    assert_allclose(float(sol["lagrangian"]), float(sol["I_XT"]) - 50 * float(sol["I_TY"]), atol=1e-12)
    assert sol["I_TY"].attrs["units"] == "bits" and float(sol["gap"]) <= 1e-6
    assert_allclose(sol["encoder"].sum("t").values, 1.0, atol=1e-12)
    assert "certified gap" in capsys.readouterr().out


def test_solve_cli_below_the_trivial_threshold_gives_one_cluster(tmp_path):
    out = tmp_path / "sol.nc"
    assert main(["solve", "--task", "binary-symmetric", "--p", "0.1", "--beta", "1.2", "--out", str(out)]) == 0
    sol = store.load(out)
    assert float(sol["I_XT"]) < 1e-9 and float(sol["I_TY"]) < 1e-9


def test_solve_cli_rejects_a_bad_beta(tmp_path, capsys):
    out = tmp_path / "sol.nc"
    assert main(["solve", "--task", "binary-symmetric", "--beta", "0", "--out", str(out)]) == 2
    assert "beta must be a positive" in capsys.readouterr().err and not out.exists()


def test_solver_accepts_a_task_dataset_like_its_table():
    task = tasks.binary_symmetric(0.2)
    a, b = solve(task, 5.0), solve(task["p_xy"].values, 5.0)
    assert a.lagrangian == b.lagrangian
    c = ib_curve(task, n_betas=8)
    assert_allclose(c["I_TY"].values, ib_curve(task["p_xy"], n_betas=8)["I_TY"].values, rtol=0, atol=0)
    with pytest.raises(ValueError, match="p_xy"):
        solve(task.drop_vars("p_xy"), 5.0)
