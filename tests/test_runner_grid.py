"""Grids: validation before anything runs, the task split, and seeds that depend only on the task's coordinates."""

import doctest
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from ibtheory import runner
from ibtheory.cli import main
from ibtheory.runner import grid as grid_module
from ibtheory.runner import kinds as kinds_module

BASE = {"kind": "plugin_mi", "seed": 5, "fixed": {"repeats": 5, "repeats_per_task": 2},
        "axes": {"p": [0.1, 0.2], "n": [50]}}


def _with(**changes):
    spec = {k: (dict(v) if isinstance(v, dict) else v) for k, v in BASE.items()}
    for path, value in changes.items():
        table, _, key = path.partition("__")
        if key:
            spec[table][key] = value
        else:
            spec[table] = value
    return spec


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (_with(fixed__bogus=1), "unknown field 'bogus'"),
        (_with(axes__n=[]), "axis 'n' is empty"),
        (_with(axes__n=["many"]), "field 'n' must be an integer"),
        (_with(axes__n=[True]), "field 'n' must be an integer"),
        (_with(fixed__delay_s="1"), "field 'delay_s' must be a finite number"),
        (_with(axes__p=[0.1, "x"]), "field 'p' must be a finite number"),
        (_with(axes__p=[0.1, 1.5]), "field 'p' must lie in"),
        (_with(axes__p=0.1), "axis 'p' must be a list"),
        (_with(axes__p=[0.1, 0.1]), "axis 'p' has repeated values"),
        (_with(axes__repeats=[2, 4]), "field 'repeats' controls how tasks are split"),
        (_with(fixed__p=0.3), "field(s) ['p'] appear in both"),
        (_with(fixed=[1]), "grid 'fixed' must be a table"),
        (_with(kind="nope"), "unknown task kind 'nope'"),
        (_with(seed=-1), "'seed' must be a non-negative integer"),
        (_with(extra=1), "unknown top-level key(s) ['extra']"),
        ({"kind": "plugin_mi", "fixed": {"n": 3}}, "needs field(s) ['p']"),
    ],
)
def test_bad_grids_are_rejected_naming_the_field(spec, message):
    with pytest.raises(ValueError) as exc:
        runner.load_grid(spec)
    assert message in str(exc.value), f"expected {message!r} in {str(exc.value)!r}"


def test_bad_grid_file_is_rejected_before_anything_runs(tmp_path, capsys):
    bad = tmp_path / "bad.toml"
    bad.write_text('kind = "plugin_mi"\n[fixed]\nn = 10\n[axes]\np = [0.1, 0.2]\nsamples = [1, 2]\n')
    out = tmp_path / "out"
    assert main(["sweep", str(bad), "--out", str(out)]) == 2
    assert "unknown field 'samples'" in capsys.readouterr().err
    assert not out.exists(), "nothing may be written for a rejected grid"
    broken = tmp_path / "broken.toml"
    broken.write_text("kind = \n")
    assert main(["sweep", str(broken), "--out", str(out)]) == 2
    assert "not valid TOML" in capsys.readouterr().err
    assert main(["sweep", str(tmp_path / "missing.toml"), "--out", str(out)]) == 2


def test_tasks_are_the_product_of_axes_times_chunks():
    g = runner.load_grid(_with(axes__n=[10, 20, 30]))
    tasks = g.tasks()
    assert g.shape == {"p": 2, "n": 3}
    assert g.points()[1] == {"p": 0.1, "n": 20}
    assert len(tasks) == 2 * 3 * 3  # 5 repeats in chunks of 2 -> 3 chunks
    assert [t.config["repeats"] for t in tasks[:3]] == [2, 2, 1]
    assert [t.chunk_info["repeat_start"] for t in tasks[:3]] == [0, 2, 4]
    assert len({t.key for t in tasks}) == len(tasks)
    assert len({t.seed for t in tasks}) == len(tasks)


def test_list_values_become_labels():
    assert runner.coordinate_label([10, 7, 5]) == "10-7-5"
    assert runner.coordinate_label("tanh") == "tanh"


def test_seed_depends_only_on_coordinates_not_order_or_other_points():
    small = {(t.point["p"], t.chunk): t.seed for t in runner.load_grid(BASE).tasks()}
    big = {(t.point["p"], t.chunk): t.seed for t in runner.load_grid(_with(axes__p=[0.3, 0.2, 0.1])).tasks()}
    assert all(big[k] == v for k, v in small.items()), "extending or reordering an axis changed existing seeds"
    assert runner.task_seed(1, {"a": 1, "b": "x"}) == runner.task_seed(1, {"b": "x", "a": 1})
    assert runner.task_seed(1, {"a": 1}) != runner.task_seed(2, {"a": 1})
    assert 0 <= runner.task_seed(2**40, {"a": [1, 2]}) < 2**63


def test_seed_is_stable_across_processes_with_different_hash_salts():
    code = "from ibtheory.runner import task_seed; print(task_seed(3, {'activation': 'tanh', '_chunk': 1}))"
    values = set()
    for salt in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": salt}
        res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
        values.add(int(res.stdout))
    values.add(runner.task_seed(3, {"_chunk": 1, "activation": "tanh"}))
    assert len(values) == 1, f"seeds differ between processes: {values}"


def test_seed_matches_seedsequence_of_the_coordinate_digest():
    coords = {"p": 0.25, "_chunk": 0}
    words = np.frombuffer(runner.stable_digest(coords), dtype="<u4")
    assert words.size == 8
    state = np.random.SeedSequence(9, spawn_key=tuple(int(w) for w in words)).generate_state(1, np.uint64)[0]
    assert runner.task_seed(9, coords) == int(state) >> 1


def test_kind_registry():
    assert "plugin_mi" in runner.kind_names()
    with pytest.raises(ValueError, match="already registered"):
        runner.register_kind(runner.get_kind("plugin_mi"))
    with pytest.raises(ValueError, match="must be a TaskKind"):
        runner.register_kind("plugin_mi")


def test_docstring_examples():
    for module in (grid_module, kinds_module):
        failed, _ = doctest.testmod(module)
        assert failed == 0, f"doctest failures in {module.__name__}"


def test_example_grids_are_valid():
    folder = Path(__file__).resolve().parents[1] / "examples" / "grids"
    files = sorted(folder.glob("*.toml"))
    assert {f.name for f in files} >= {"small.toml", "paper.toml", "ib_beta.toml", "plugin_mi.toml", "bench.toml"}
    sizes = {f.stem: len(runner.load_grid(f).tasks()) for f in files}
    assert sizes["paper"] == 6 * 3 * 3 * 5, "paper-size grid: 54 points x 5 chunks of 10 repeats"


# ---------------------------------------------------------------- size guard, folders
def test_a_grid_of_millions_of_tasks_is_refused_before_expansion(monkeypatch):
    """3e6 points used to be accepted (then minutes of silence and memory exhaustion when the tasks were built);
    the count comes from the axis lengths alone: nothing may be expanded or validated point by point."""
    kind = runner.get_kind("plugin_mi")

    def no_expansion(*args, **kwargs):
        raise AssertionError("the grid was expanded before its size was checked")

    monkeypatch.setattr(kind.split.__class__, "chunks", no_expansion)
    monkeypatch.setattr(grid_module.Grid, "points", no_expansion)
    spec = {"kind": "plugin_mi", "fixed": {"repeats": 1}, "axes": {"p": [i / 1000 for i in range(1000)],
                                                                   "n": list(range(1, 3001))}}
    with pytest.raises(ValueError, match=r"grid has 3,000,000 tasks \(1000 p x 3000 n = 3,000,000 point\(s\), 1 "
                                         r"task\(s\) per point\), more than the maximum 100,000"):
        runner.load_grid(spec)
    chunked = {"kind": "plugin_mi", "fixed": {"repeats": 2000, "repeats_per_task": 1, "n": 5},
               "axes": {"p": [i / 100 for i in range(51)]}}  # 51 points x 2000 chunks
    with pytest.raises(ValueError, match="102,000 tasks"):
        runner.load_grid(chunked)


def test_the_size_limit_is_exact(monkeypatch):
    monkeypatch.setattr(grid_module, "MAX_GRID_TASKS", 12)
    assert len(runner.load_grid(BASE).tasks()) == 2 * 1 * 3  # 2 points x ceil(5 / 2) chunks
    assert len(runner.load_grid(_with(axes__n=[50, 60])).tasks()) == 12  # at the limit: accepted
    with pytest.raises(ValueError, match="grid has 18 tasks .* more than the maximum 12"):
        runner.load_grid(_with(axes__n=[50, 60, 70]))
    assert runner.MAX_GRID_TASKS == 100_000  # the documented default (docs/scaling.md)


@pytest.mark.parametrize("kind", ["plugin_mi", "train", "ib_curve"])
def test_chunk_count_without_expansion_matches_the_expansion(kind):
    split = runner.get_kind(kind).split
    if isinstance(split, runner.RangeSplit):
        configs = [{split.values: list(range(n)), split.size: size} for n in (1, 7, 8, 9) for size in (None, 1, 3, 8)]
    else:
        configs = [{split.total: n, split.size: size} for n in (1, 7, 8, 9) for size in (None, 1, 3, 8, 20)]
    for config in configs:
        assert split.n_chunks(config) == len(split.chunks(config)), config


def test_a_folder_given_as_the_grid_file_says_so(tmp_path, capsys):
    with pytest.raises(IsADirectoryError, match="is a directory"):
        runner.load_grid(tmp_path)
    with pytest.raises(ValueError, match="grid must be a TOML file path or a dict"):
        runner.load_grid(5)
    assert main(["sweep", str(tmp_path), "--out", str(tmp_path / "o"), "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert "is a directory" in err and str(tmp_path) in err and "does not exist" not in err


def test_the_cli_refuses_a_huge_grid_at_once(tmp_path, capsys):
    big = tmp_path / "big.toml"
    p = ", ".join(str(i / 2000) for i in range(2000))
    n = ", ".join(map(str, range(1, 1501)))
    big.write_text(f'kind = "plugin_mi"\n[fixed]\nrepeats = 1\n[axes]\np = [{p}]\nn = [{n}]\n')
    assert main(["sweep", str(big), "--out", str(tmp_path / "o"), "--dry-run"]) == 2
    assert "3,000,000 tasks" in capsys.readouterr().err
