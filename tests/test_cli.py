"""The command line: `ibtheory task` prints the task's information and writes a loadable file."""

import subprocess
import sys

import pytest

from ibtheory import store
from ibtheory.cli import main


def test_task_hard_prints_information(capsys, tmp_path):
    assert main(["task", "--name", "tishby", "--out", str(tmp_path / "t.nc")]) == 0
    out = capsys.readouterr().out
    assert "I(X;Y) = 0.999157 bits" in out
    assert "trivial" in out
    ds = store.load(tmp_path / "t.nc")
    assert ds.sizes["x"] == 4096 and store.config_of(ds)["name"] == "tishby"


def test_task_soft_prints_its_value(capsys):
    assert main(["task", "--gamma", "19.05"]) == 0
    assert "I(X;Y) = 0.8999" in capsys.readouterr().out
    assert main(["task", "--info-bits", "0.9"]) == 0
    assert "I(X;Y) = 0.900000 bits" in capsys.readouterr().out


def test_bad_argument_is_a_clear_error(capsys):
    assert main(["task", "--gamma", "-2"]) == 2
    assert "gamma must be" in capsys.readouterr().err


def test_console_help_lists_subcommands():
    res = subprocess.run([sys.executable, "-m", "ibtheory", "--help"], capture_output=True, text=True, check=True)
    assert "task" in res.stdout


@pytest.mark.parametrize("argv", [["task", "--help"]])
def test_help_exits_zero(argv):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 0
