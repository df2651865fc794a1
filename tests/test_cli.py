"""The command line: `ibtheory task` prints the task's information and writes a loadable file; every subcommand
turns bad input, unusable paths and signals into one line on stderr and an exit code, never a traceback."""

import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from ibtheory import _signals, store, tasks
from ibtheory.cli import build_parser, main

ROOT = Path(__file__).resolve().parents[1]
HAS_PROC = sys.platform.startswith("linux") and Path("/proc/self").is_dir()


def _mi_bits(p_xy: np.ndarray) -> float:
    """I(X;Y) = sum p(x,y) log2 p(x,y) / (p(x) p(y)) with 0 log 0 = 0, written out here (not ibtheory.info)."""
    px, py = p_xy.sum(1, keepdims=True), p_xy.sum(0, keepdims=True)
    nz = p_xy > 0
    return float(np.sum(p_xy[nz] * np.log2(p_xy[nz] / (px * py)[nz])))


def test_task_hard_prints_information(capsys, tmp_path):
    assert main(["task", "--name", "tishby", "--out", str(tmp_path / "t.nc")]) == 0
    out = capsys.readouterr().out
    assert "I(X;Y) = 0.999157 bits" in out
    assert "trivial" in out
    ds = store.load(tmp_path / "t.nc")
    assert ds.sizes["x"] == 4096 and store.config_of(ds)["name"] == "tishby"
    # the stored table is the Python API's, and its information (computed here) is the printed value; hard labels:
    # I(X;Y) = H(Y) with p(y=1) the fraction of the 4096 patterns labelled 1
    assert_array_equal(ds["p_xy"].values, tasks.tishby()["p_xy"].values)
    p = ds["p_xy"].values
    assert_allclose(p.sum(), 1.0, rtol=1e-15)
    p1 = p[:, 1].sum()
    assert_allclose(_mi_bits(p), -(p1 * np.log2(p1) + (1 - p1) * np.log2(1 - p1)), rtol=1e-12)
    assert round(_mi_bits(p), 6) == 0.999157


def test_task_soft_prints_its_value(capsys, tmp_path):
    assert main(["task", "--gamma", "19.05", "--out", str(tmp_path / "s.nc")]) == 0
    out = capsys.readouterr().out
    assert "I(X;Y) = 0.8999" in out
    # the printed value is the information of the stored table, computed here
    assert f"I(X;Y) = {_mi_bits(store.load(tmp_path / 's.nc')['p_xy'].values):.6f} bits" in out
    assert main(["task", "--info-bits", "0.9", "--out", str(tmp_path / "i.nc")]) == 0
    assert "I(X;Y) = 0.900000 bits" in capsys.readouterr().out
    assert_allclose(_mi_bits(store.load(tmp_path / "i.nc")["p_xy"].values), 0.9, atol=1e-9)


def test_task_binary_symmetric_file_is_the_closed_form(tmp_path):
    """p(x,y) = (1 - p)/2 on the diagonal and p/2 off it; I(X;Y) = 1 - h2(p)."""
    assert main(["task", "--name", "binary-symmetric", "--p", "0.1", "--out", str(tmp_path / "b.nc")]) == 0
    p_xy = store.load(tmp_path / "b.nc")["p_xy"].values
    assert_allclose(p_xy, [[0.45, 0.05], [0.05, 0.45]], rtol=1e-15)
    assert_allclose(_mi_bits(p_xy), 1 + 0.1 * np.log2(0.1) + 0.9 * np.log2(0.9), rtol=1e-13)


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


# ---------------------------------------------------------------- bad paths and inputs: one line, exit 2
@pytest.fixture
def paths(tmp_path):
    """A regular file, a folder, a valid grid file and a valid task file to point the commands at."""
    (tmp_path / "FILE").write_text("not a folder")
    (tmp_path / "DIR").mkdir()
    (tmp_path / "grid.toml").write_text('kind = "plugin_mi"\n[fixed]\nrepeats = 2\n[axes]\np = [0.1]\nn = [20]\n')
    store.save(tasks.binary_symmetric(0.1), tmp_path / "task.nc")
    return tmp_path


def _run(argv: list[str], capsys) -> tuple[int, str]:
    rc = main(argv)
    err = capsys.readouterr().err
    return rc, err


def _assert_one_line_error(rc: int, err: str, command: str, needle: str) -> None:
    assert rc == 2, err
    assert "Traceback" not in err, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(f"ibtheory {command}: error: "), err
    assert needle in lines[0], f"{needle!r} not in {lines[0]!r}"


# (argv with {FILE}, {DIR}, {GRID}, {TASK}, {T} = the temporary folder; what the message must name)
OUT_UNDER_A_FILE = [
    ("task", ["--out", "{FILE}/x.nc"]),
    ("train", ["--out", "{FILE}/x.nc", "--epochs", "2"]),
    ("compare", ["{T}/run.nc", "{T}/curve.nc", "--out", "{FILE}/x.nc"]),
    ("langevin", ["--out", "{FILE}/x"]),
    ("curve", ["--out", "{FILE}/x.nc"]),
    ("solve", ["--beta", "2", "--out", "{FILE}/x.nc"]),
    ("plane", ["{T}/run.nc", "--out", "{FILE}/x.png"]),
    ("reproduce", ["--size", "tiny", "--out", "{FILE}/x"]),
    ("check-estimator", ["ibtheory.estimators.ksg:ksg", "--out", "{FILE}/x.md"]),
]


def _fill(args: list[str], root: Path) -> list[str]:
    names = {"FILE": root / "FILE", "DIR": root / "DIR", "GRID": root / "grid.toml", "TASK": root / "task.nc",
             "T": root}
    return [a.format(**{k: str(v) for k, v in names.items()}) for a in args]


OUT_IS_A_FOLDER = [
    ("task", ["--out", "{DIR}"]),
    ("train", ["--out", "{DIR}", "--epochs", "2"]),
    ("train", ["--out", "{T}/r.nc", "--plot", "{DIR}", "--epochs", "2"]),
    ("curve", ["--out", "{DIR}"]),
    ("curve", ["--plot", "{DIR}"]),
    ("solve", ["--beta", "2", "--out", "{DIR}"]),
    ("plane", ["{TASK}", "--out", "{DIR}"]),
    ("compare", ["{T}/run.nc", "{T}/curve.nc", "--out", "{T}/c.nc", "--plot", "{DIR}"]),
    ("check-estimator", ["ibtheory.estimators.ksg:ksg", "--out", "{DIR}"]),
]


FOLDER_AS_INPUT = [
    ("curve", ["--p-xy", "{DIR}"]),
    ("solve", ["--p-xy", "{DIR}", "--beta", "2"]),
    ("plane", ["{DIR}", "--out", "{T}/p.png"]),
    ("compare", ["{DIR}", "{TASK}", "--out", "{T}/c.nc"]),
    ("sweep", ["{DIR}", "--out", "{T}/o"]),
]


PATH_CASES = ([("output-under-a-file", c, a, "FILE", "is a file, not a folder") for c, a in OUT_UNDER_A_FILE]
              + [("folder-as-output", c, a, "DIR", "is a directory") for c, a in OUT_IS_A_FOLDER]
              + [("folder-as-input", c, a, "DIR", "is a directory") for c, a in FOLDER_AS_INPUT])


@pytest.mark.parametrize(("case", "command", "args", "where", "fragment"), PATH_CASES,
                         ids=[f"{k}-{c}-{i}" for i, (k, c, *_) in enumerate(PATH_CASES)])
def test_a_path_of_the_wrong_kind_is_one_line_naming_it(case, command, args, where, fragment, paths, capsys):
    """`--out FILE/x.nc` used to raise FileExistsError/NotADirectoryError, `task --out DIR` IsADirectoryError, each
    with a traceback; a folder given as an input file was said not to exist."""
    rc, err = _run([command, *_fill(args, paths)], capsys)
    _assert_one_line_error(rc, err, command, str(paths / where))
    assert fragment in err and "does not exist" not in err


def test_sweep_out_a_regular_file_is_one_line(paths, capsys):
    """`sweep --out FILE` used to raise NotADirectoryError with a traceback."""
    rc, err = _run(["sweep", str(paths / "grid.toml"), "--out", str(paths / "FILE"), "--no-progress"], capsys)
    _assert_one_line_error(rc, err, "sweep", str(paths / "FILE"))


def test_langevin_records_zero_is_a_clear_error(paths, capsys):
    """`langevin --records 0` used to raise ZeroDivisionError with a traceback."""
    rc, err = _run(["langevin", "--records", "0", "--out", str(paths / "L"), "--no-progress"], capsys)
    _assert_one_line_error(rc, err, "langevin", "--records must be an integer >= 1, got 0")


@pytest.mark.skipif(not HAS_PROC, reason="needs Linux /proc (a folder where nobody, not even root, can write)")
@pytest.mark.parametrize("command", ["task", "curve", "solve", "train", "check-estimator"])
def test_an_unwritable_output_folder_is_refused_before_any_work(command, paths, capsys, monkeypatch):
    """`train --out /proc/r.nc` used to train to the end and then fail naming a temporary file."""
    from ibtheory.cli import curve, task

    def no_work(*args, **kwargs):
        raise AssertionError("work started before the output path was checked")

    monkeypatch.setattr(task, "make_task", no_work)
    monkeypatch.setattr(curve, "load_task_source", no_work)
    extra = {"solve": ["--beta", "2"], "check-estimator": ["ibtheory.estimators.ksg:ksg"]}.get(command, [])
    rc, err = _run([command, *extra, "--out", "/proc/ibtheory-test.nc"], capsys)
    _assert_one_line_error(rc, err, command, "/proc/ibtheory-test.nc")
    assert "not writable" in err and ".tmp" not in err


def test_an_os_error_inside_a_command_is_one_line_naming_the_path(monkeypatch, tmp_path, capsys):
    """Any OSError (disk full, permissions) is mapped to one line naming the path; it used to be a traceback."""

    def full(ds, path):
        raise OSError(28, "No space left on device", str(path))

    monkeypatch.setattr(store, "save", full)
    rc, err = _run(["task", "--name", "binary-symmetric", "--out", str(tmp_path / "t.nc")], capsys)
    _assert_one_line_error(rc, err, "task", f"'{tmp_path / 't.nc'}': No space left on device")


# Every subcommand on bad inputs: none may end in a traceback (the table must cover every subcommand).
BAD_INPUTS = {
    "task": [["--out", "{DIR}"], ["--out", "{FILE}/x.nc"], ["--gamma", "nan"], ["--p", "1.5", "--name",
                                                                               "binary-symmetric"]],
    "train": [["--out", "{DIR}"], ["--out", "{FILE}/x.nc"], ["--out", "{T}/r.nc", "--plot", "{FILE}/p.png"],
              ["--out", "{T}/r.nc", "--train-fraction", "1.5"], ["--out", "{T}/r.nc", "--hidden", "5-0"]],
    "compare": [["{T}/missing.nc", "{TASK}", "--out", "{T}/c.nc"], ["{DIR}", "{TASK}", "--out", "{T}/c.nc"],
                ["{FILE}", "{TASK}", "--out", "{T}/c.nc"], ["{TASK}", "{TASK}", "--out", "{FILE}/c.nc"],
                ["{TASK}", "{TASK}", "--out", "{FILE}"]],
    "curve": [["--p-xy", "{DIR}"], ["--p-xy", "{T}/missing.nc"], ["--p-xy", "{FILE}"], ["--out", "{DIR}"],
              ["--plot", "{FILE}/x.png"], ["--p-xy", "{GRID}"]],
    "solve": [["--beta", "2", "--p-xy", "{DIR}"], ["--beta", "2", "--out", "{FILE}/x.nc"], ["--beta", "nan"],
              ["--beta", "-1"]],
    "langevin": [["--out", "{FILE}"], ["--out", "{FILE}/x"], ["--out", "{T}/L", "--records", "0"],
                 ["--out", "{T}/L", "--records", "-3"], ["--out", "{T}/L", "--beta", "-1"],
                 ["--out", "{T}/L", "--bins", "1"], ["--out", "{T}/L", "--particles", "0"],
                 ["--out", "{T}/L", "--steps", "-1"]],
    "plane": [["{DIR}", "--out", "{T}/p.png"], ["{T}/missing.nc", "--out", "{T}/p.png"],
              ["{FILE}", "--out", "{T}/p.png"], ["{TASK}", "--out", "{DIR}"], ["{TASK}", "--out", "{T}/p.png",
                                                                               "--dpi", "0"]],
    "reproduce": [["--size", "tiny", "--out", "{FILE}"], ["--size", "tiny", "--out", "{FILE}/x"],
                  ["--quick", "--size", "tiny", "--out", "{T}/r"],
                  ["--size", "tiny", "--out", "{T}/r", "--device", "gpu"]],
    "sweep": [["{DIR}", "--out", "{T}/o"], ["{T}/missing.toml", "--out", "{T}/o"], ["{FILE}", "--out", "{T}/o"],
              ["{GRID}", "--out", "{FILE}"], ["{GRID}", "--out", "{FILE}/o"], ["{GRID}", "--out", "{T}/o",
                                                                                "--workers", "0"]],
    "check-estimator": [["nomodule_xyz:f", "--out", "{T}/r.md"], ["ibtheory.estimators.ksg:ksg", "--out", "{DIR}"],
                        ["ibtheory.estimators.ksg:ksg", "--out", "{FILE}/r.md"], ["ibtheory"]],
}


def test_the_bad_input_table_covers_every_subcommand():
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    assert set(sub.choices) == set(BAD_INPUTS), "add the new subcommand's bad inputs to BAD_INPUTS"


@pytest.mark.parametrize("command", sorted(BAD_INPUTS))
def test_every_subcommand_on_bad_inputs_exits_2_without_a_traceback(command, paths, capsys):
    for args in BAD_INPUTS[command]:
        argv = [command, *_fill(args, paths)]
        try:
            rc = main(argv)
        except SystemExit as exc:  # argparse's own usage errors are also one clean message
            rc = exc.code
        err = capsys.readouterr().err
        assert rc == 2, (argv, err)
        assert "Traceback" not in err and err.strip(), (argv, err)
        assert len(err.strip().splitlines()) == 1 or err.startswith("usage:"), (argv, err)


def test_no_traceback_from_the_console_script(paths):
    """The real process: `ibtheory task --out DIR` prints one line and exits 2."""
    res = subprocess.run([sys.executable, "-m", "ibtheory", "task", "--out", str(paths / "DIR")],
                         capture_output=True, text=True, cwd=ROOT)
    assert res.returncode == 2 and "Traceback" not in res.stderr, res.stderr
    assert res.stderr.strip() == f"ibtheory task: error: --out '{paths / 'DIR'}' is a directory; give a file path"


# ---------------------------------------------------------------- signals
def test_ctrl_c_exits_130_with_one_line(monkeypatch, capsys):
    from ibtheory.cli import task

    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setattr(task, "run", interrupted)
    rc, err = _run(["task"], capsys)
    assert rc == 130 and err.strip() == "ibtheory task: interrupted"


def test_sigterm_exits_143_with_one_line_and_restores_the_handler(monkeypatch, capsys):
    """SIGTERM inside a command raises Terminated (a KeyboardInterrupt, so checkpoints are saved) and exits 143."""
    from ibtheory.cli import task

    reached = []

    def terminated(args):
        os.kill(os.getpid(), signal.SIGTERM)
        reached.append("after the signal")  # never: the handler raises at once
        return 0

    before = signal.getsignal(signal.SIGTERM)
    monkeypatch.setattr(task, "run", terminated)
    rc, err = _run(["task"], capsys)
    assert rc == 143 == int(_signals.Terminated.exit_code)
    assert err.strip() == "ibtheory task: terminated (SIGTERM)" and not reached
    assert signal.getsignal(signal.SIGTERM) is before


# ---------------------------------------------------------------- task names and defaults: one registry
def test_task_names_have_one_spelling_and_the_hyphen_alias(tmp_path):
    """The Python spelling (binary_symmetric, the runner's) is accepted by every command; the hyphen spelling the
    commands used to require stays an alias; files record the one spelling."""
    for name in ("binary_symmetric", "binary-symmetric"):
        out = tmp_path / f"{name}.nc"
        assert main(["task", "--name", name, "--p", "0.2", "--out", str(out)]) == 0
        ds = store.load(out)
        assert_allclose(ds["p_xy"].values, [[0.4, 0.1], [0.1, 0.4]], rtol=1e-15)
        assert store.config_of(ds)["name"] == "binary_symmetric" == ds.attrs["name"]
    with pytest.raises(SystemExit):
        build_parser().parse_args(["task", "--name", "binary symmetric"])


def test_one_gaussian_grid_default_for_task_curve_solve_train_and_grids():
    """`curve`/`solve` used a 16-point grid, `task`, `train` and the runner 64: now all read the registry's default
    (gaussian_discretized's own, 64 points per axis)."""
    from ibtheory import runner
    from ibtheory.cli import task as task_cli
    from ibtheory.cli.curve import load_task_source
    from ibtheory.runner import builtin

    parser = build_parser()
    shapes = {
        "task": task_cli.make_task(parser.parse_args(["task", "--name", "gaussian"]))["p_xy"].shape,
        "curve": load_task_source(parser.parse_args(["curve", "--task", "gaussian"]))[0]["p_xy"].shape,
        "solve": load_task_source(parser.parse_args(["solve", "--task", "gaussian", "--beta", "2"]))[0]["p_xy"].shape,
        "train": task_cli.make_task(parser.parse_args(["train", "--name", "gaussian"]))["p_xy"].shape,
    }
    for kind in ("ib_curve", "train"):
        config = runner.load_grid({"kind": kind, "fixed": {"task": "gaussian", "betas": [1.0]} if kind == "ib_curve"
                                   else {"task": "gaussian", "epochs": 1}}).tasks()[0].config
        shapes[kind] = builtin._task(config)["p_xy"].shape
    assert set(shapes.values()) == {tasks.gaussian_discretized()["p_xy"].shape} == {(64, 64)}, shapes


def test_a_task_parameter_named_like_a_command_option_is_refused_by_name():
    entry = tasks.register(tasks.BuiltinTask("clash_task", tasks.binary_symmetric, (tasks.Param("out", float, 0.1),)))
    try:
        with pytest.raises(ValueError, match=r"parameter 'out' of task\(s\) \['clash_task'\] clashes with an option"):
            build_parser()
    finally:
        tasks.unregister(entry.name)
    build_parser()


def test_building_the_parser_does_not_import_torch():
    """`ibtheory train` reads its defaults from nets.TrainConfig (torch) only when it is the command that runs."""
    code = "import sys; from ibtheory.cli import build_parser; build_parser(); print('torch' in sys.modules)"
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert res.stdout.strip() == "False"
