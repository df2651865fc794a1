"""`ibtheory solve` and task Datasets as input of the solver: closed forms of the binary symmetric source; users'
tables and samples from files, checked against the same table given in Python."""

import csv

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
    assert "beta must be > 0" in capsys.readouterr().err and not out.exists()


def test_solver_accepts_a_task_dataset_like_its_table():
    task = tasks.binary_symmetric(0.2)
    a, b = solve(task, 5.0), solve(task["p_xy"].values, 5.0)
    assert a.lagrangian == b.lagrangian
    c = ib_curve(task, n_betas=8)
    assert_allclose(c["I_TY"].values, ib_curve(task["p_xy"], n_betas=8)["I_TY"].values, rtol=0, atol=0)
    with pytest.raises(ValueError, match="p_xy"):
        solve(task.drop_vars("p_xy"), 5.0)


def test_solve_cli_from_a_csv_table_equals_solve_of_the_table(tmp_path, capsys):
    # a spreadsheet of counts: header row, a column of x labels, semicolons (as a European-locale Excel saves it)
    # (total 64 and largest count 32, powers of two: the rescaled table is exact however it is divided)
    counts = np.array([[32, 4, 1], [4, 12, 3], [1, 2, 5]])
    with open(tmp_path / "counts.csv", "w", newline="", encoding="utf-8-sig") as f:
        csv.writer(f, delimiter=";").writerows([["", "a", "b", "c"]]
                                                + [[f"x{i}", *row] for i, row in enumerate(counts.tolist())])
    out = tmp_path / "sol.nc"
    assert main(["solve", "--p-xy", str(tmp_path / "counts.csv"), "--normalize", "--beta", "4", "--out",
                 str(out)]) == 0
    assert "3 x 3 table" in capsys.readouterr().out
    want, got = solve(counts / counts.sum(), 4.0), store.load(out)
    for var, value in (("I_XT", want.I_XT), ("I_TY", want.I_TY), ("lagrangian", want.lagrangian)):
        assert_allclose(float(got[var]), value, rtol=0, atol=1e-12, err_msg=var)


def test_solve_cli_from_samples_equals_from_samples(tmp_path):
    x = [3, 1, 2, 3, 3, 1, 2, 2, 1, 3]
    y = ["hi", "lo", "lo", "hi", "lo", "lo", "hi", "lo", "lo", "hi"]
    with open(tmp_path / "pairs.tsv", "w", newline="") as f:
        csv.writer(f, delimiter="\t").writerows([["x", "y"], *zip(x, y, strict=True)])
    out = tmp_path / "sol.nc"
    assert main(["solve", "--samples", str(tmp_path / "pairs.tsv"), "--beta", "8", "--out", str(out)]) == 0
    want, got = solve(tasks.from_samples(x, y), 8.0), store.load(out)
    for var, value in (("I_XT", want.I_XT), ("I_TY", want.I_TY), ("lagrangian", want.lagrangian)):
        assert_allclose(float(got[var]), value, rtol=0, atol=1e-12, err_msg=var)


def test_solve_cli_bad_table_is_one_line_naming_file_and_row(tmp_path, capsys):
    (tmp_path / "t.csv").write_text("0.5,0.25\n0.125\n")
    assert main(["solve", "--p-xy", str(tmp_path / "t.csv"), "--beta", "2"]) == 2
    err = capsys.readouterr().err
    assert err == (f"ibtheory solve: error: --p-xy '{tmp_path / 't.csv'}': row 2 has 1 cell(s) but row 1 has 2 "
                   "(ragged rows: every row needs one cell per column; empty cells at the end of a row are not "
                   "counted)\n")
