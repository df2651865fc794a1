"""`ibtheory curve`: built-in task and --p-xy task file, .nc and .png outputs."""

import numpy as np
from numpy.testing import assert_allclose

from ibtheory import store
from ibtheory.cli import main


def test_curve_cli_builtin_and_task_file(tmp_path, capsys):
    nc, png = tmp_path / "bsc.nc", tmp_path / "bsc.png"
    assert main(["curve", "--task", "binary-symmetric", "--p", "0.2", "--n-betas", "12",
                 "--out", str(nc), "--plot", str(png)]) == 0
    c = store.load(nc)
    assert png.stat().st_size > 10_000
    assert c["I_XT"].attrs["units"] == "bits" and "gap" in c
    out = capsys.readouterr().out
    assert "critical betas" in out and "largest certified gap" in out
    task = tmp_path / "task.nc"
    assert main(["task", "--name", "binary-symmetric", "--p", "0.2", "--out", str(task)]) == 0
    assert main(["curve", "--p-xy", str(task), "--n-betas", "12", "--out", str(tmp_path / "c2.nc")]) == 0
    c2 = store.load(tmp_path / "c2.nc")
    assert_allclose(c2.attrs["I_XY"], c.attrs["I_XY"], rtol=1e-12)
    assert np.all(c2["encoder"].sum("t").values > 1 - 1e-12)


def test_curve_cli_hard_labels_say_why(tmp_path, capsys):
    assert main(["curve", "--task", "tishby", "--n-betas", "4", "--out", str(tmp_path / "h.nc")]) == 0
    assert "trivial" in capsys.readouterr().out


def test_curve_cli_bad_file(tmp_path, capsys):
    assert main(["curve", "--p-xy", str(tmp_path / "missing.nc")]) == 2
