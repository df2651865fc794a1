"""Sweeps in-process and on a process pool: saved per task, skipped on re-run, failures kept apart, merged exactly."""

import json

import numpy as np
import pytest
import xarray as xr
from numpy.testing import assert_allclose, assert_array_equal

from ibtheory import runner, store
from ibtheory.cli import main
from ibtheory.runner.executors import _whoami

GRID = {"kind": "plugin_mi", "seed": 11, "fixed": {"repeats": 5, "repeats_per_task": 2},
        "axes": {"p": [0.3, 0.1], "n": [20, 200]}}


def test_plugin_mi_known_answer():
    """Mean plug-in estimate = exact 1 - h2(p) + Miller-Madow bias 1/(2 n ln 2), within 4 standard errors."""
    n, repeats = 1000, 4000
    ds = runner.plugin_mi({"p": 0.1, "n": n, "repeats": repeats}, seed=0)
    h2 = -(0.1 * np.log2(0.1) + 0.9 * np.log2(0.9))
    assert_allclose(float(ds["I_exact"]), 1 - h2, rtol=1e-12)
    assert_allclose(float(ds["bias_miller_madow"]), 1 / (2 * n * np.log(2)), rtol=1e-12)
    se = float(ds["I_plugin"].std()) / np.sqrt(repeats)
    expected = 1 - h2 + 1 / (2 * n * np.log(2))
    assert_allclose(float(ds["I_plugin"].mean()), expected, atol=4 * se,
                    err_msg=f"tolerance 4 standard errors = {4 * se:.2e} bits")
    independent = runner.plugin_mi({"p": 0.5, "n": 50, "repeats": 100}, seed=1)
    assert float(independent["I_exact"]) == 0.0
    # each estimate is the information of its empirical joint, recomputed here from the same draws as
    # sum_xy q(x,y) log2 q(x,y) / (q(x) q(y)) (a sign error or a dropped term would not survive a clamp at 0)
    q = np.random.default_rng(1).multinomial(50, [0.25] * 4, size=100).reshape(100, 2, 2) / 50
    outer = q.sum(2, keepdims=True) * q.sum(1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        direct = np.where(q > 0, q * np.log2(q / outer), 0.0).sum((1, 2))
    assert_allclose(independent["I_plugin"].values, direct, rtol=1e-12, atol=1e-15)
    assert direct.max() > 1e-3, "the check needs estimates away from the clamp at 0"


def test_sweep_saves_each_task_and_merges_in_grid_order(tmp_path):
    res = runner.run_sweep(GRID, tmp_path, progress=False)
    ds = res.dataset
    assert dict(ds.sizes) == {"p": 2, "n": 2, "repeat": 5}
    assert_array_equal(ds["p"], [0.3, 0.1])  # the grid's order, not sorted
    assert_array_equal(ds["repeat"], np.arange(5))
    assert ds["I_plugin"].attrs["units"] == "bits"
    assert len(list((tmp_path / "tasks").glob("*.nc"))) == 12
    assert [e.status for e in res.events] == ["done"] * 12 and not res.failures
    # each chunk's seed is the task's seed; the chunk is what the kind computed with that seed
    for spec in runner.load_grid(GRID).tasks():
        start = spec.chunk_info["repeat_start"]
        sel = ds.sel(spec.point).isel(repeat=slice(start, start + spec.config["repeats"]))
        assert (sel["task_seed"] == spec.seed).all()
        direct = runner.plugin_mi(spec.config, spec.seed)
        assert_array_equal(sel["I_plugin"].values, direct["I_plugin"].values)
    xr.testing.assert_identical(store.without_attrs(store.load(tmp_path / "sweep.nc")), store.without_attrs(ds))
    assert "I_plugin_mean" in res.table and "0.3" in res.table


def test_rerun_skips_finished_and_redoes_corrupt(tmp_path):
    first = runner.run_sweep(GRID, tmp_path, progress=False).dataset
    victim = sorted((tmp_path / "tasks").glob("*.nc"))[0]
    victim.write_bytes(victim.read_bytes()[:100])  # a truncated file counts as not finished
    again = runner.run_sweep(GRID, tmp_path, progress=False)
    statuses = [e.status for e in again.events]
    assert statuses.count("skipped") == 11 and statuses.count("done") == 1
    xr.testing.assert_identical(store.without_attrs(first), store.without_attrs(again.dataset))


def test_extending_an_axis_keeps_existing_results(tmp_path):
    small = runner.run_sweep(GRID, tmp_path / "a", progress=False).dataset
    wider = dict(GRID, axes={"p": [0.3, 0.1, 0.45], "n": [20, 200]})
    big = runner.run_sweep(wider, tmp_path / "b", progress=False).dataset
    xr.testing.assert_identical(store.without_attrs(small), store.without_attrs(big.sel(p=[0.3, 0.1])))


FAIL_AT = {"p": 0.1}


def flaky(config, seed):
    """A kind that fails at the points listed in FAIL_AT (module level so it is found by name)."""
    if config["p"] == FAIL_AT.get("p"):
        raise RuntimeError("simulated failure")
    return runner.plugin_mi(config, seed)


runner.register_kind(runner.TaskKind("flaky_test", flaky, runner.get_kind("plugin_mi").fields,
                                     runner.CountSplit()), replace=True)


def per_repeat(config, seed):
    """A kind whose repeat r depends only on (seed, r): chunking must not change its numbers."""
    ids = range(config["repeat_start"], config["repeat_start"] + config["repeats"])
    draws = [np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(r,))).random() for r in ids]
    return xr.Dataset({"u": ("repeat", np.array(draws) * config["scale"])}, coords={"repeat": np.arange(len(draws))})


runner.register_kind(runner.TaskKind(
    "per_repeat_test", per_repeat,
    {"scale": runner.Field(lambda v, name: float(v)), "repeats": runner.Field(lambda v, name: int(v)),
     "repeats_per_task": runner.Field(lambda v, name: v, None), "repeat_start": runner.Field(lambda v, name: v, 0)},
    runner.CountSplit(offset="repeat_start")), replace=True)


def test_kinds_drawing_per_repeat_are_independent_of_the_chunk_size(tmp_path):
    results = []
    for size in (1, 3, 7):
        grid = {"kind": "per_repeat_test", "seed": 2, "fixed": {"repeats": 7, "repeats_per_task": size},
                "axes": {"scale": [1.0, 2.0]}}
        assert len(runner.load_grid(grid).tasks()) == 2 * -(-7 // size)
        results.append(runner.run_sweep(grid, tmp_path / str(size), progress=False).dataset)
    for other in results[1:]:
        xr.testing.assert_identical(store.without_attrs(results[0]), store.without_attrs(other))
    seeds = results[0]["task_seed"]
    assert (seeds.sel(scale=1.0) == seeds.sel(scale=1.0)[0]).all(), "chunks of a point must share its seed"
    assert int(seeds.sel(scale=1.0)[0]) != int(seeds.sel(scale=2.0)[0])
    with pytest.raises(ValueError, match="'repeat_start' is set by the task split"):
        runner.load_grid({"kind": "per_repeat_test", "fixed": {"repeats": 2, "repeat_start": 1, "scale": 1.0}})


def ragged(config, seed):
    """A kind whose sizes depend on the point: an int variable over an unindexed dim of config["m"] entries."""
    return xr.Dataset({"count": ("dim", np.arange(1, config["m"] + 1, dtype=np.int64)),
                       "total": ((), np.int64(config["m"] * (config["m"] + 1) // 2))})


runner.register_kind(runner.TaskKind("ragged_test", ragged, {"m": runner.Field(lambda v, name: int(v))}),
                     replace=True)


def test_points_of_different_sizes_are_padded_with_nan_and_saved_exactly(tmp_path):
    res = runner.run_sweep({"kind": "ragged_test", "axes": {"m": [3, 1, 2]}}, tmp_path, progress=False)
    ds = store.load(tmp_path / "sweep.nc")
    assert ds.sizes["dim"] == 3
    expected = [[1, 2, 3], [1, np.nan, np.nan], [1, 2, np.nan]]
    assert_array_equal(ds["count"].values, expected)
    assert_array_equal(ds["total"].values, [6, 1, 3])
    xr.testing.assert_identical(store.without_attrs(ds), store.without_attrs(res.dataset))


def test_failed_task_is_reported_and_others_are_kept(tmp_path, monkeypatch):
    grid = dict(GRID, kind="flaky_test")
    res = runner.run_sweep(grid, tmp_path, progress=False)
    assert len(res.failures) == 6 and all("simulated failure" in e.error for e in res.failures)
    assert all(e.spec.config["p"] == 0.1 for e in res.failures)
    report = json.loads(res.dataset.attrs["failed_tasks"])
    assert {r["config"]["p"] for r in report} == {0.1} and len(report) == 6
    assert res.dataset["I_plugin"].sel(p=0.1).isnull().all()
    assert res.dataset["I_plugin"].sel(p=0.3).notnull().all()
    assert len(list((tmp_path / "tasks").glob("*.nc"))) == 6
    monkeypatch.setitem(FAIL_AT, "p", None)
    fixed = runner.run_sweep(grid, tmp_path, progress=False)
    assert [e.status for e in fixed.events].count("done") == 6 and not fixed.failures
    reference = runner.run_sweep(GRID, tmp_path / "ref", progress=False).dataset
    xr.testing.assert_identical(store.without_attrs(reference), store.without_attrs(fixed.dataset))


def labelled(config, seed):
    """Like flaky, with a text variable (a per-point description) and no split."""
    if config["p"] == FAIL_AT.get("p"):
        raise RuntimeError("simulated failure")
    ds = runner.plugin_mi(config, seed).mean("repeat")
    ds["note"] = ((), f"p = {config['p']}")
    return ds


runner.register_kind(runner.TaskKind("labelled_test", labelled, runner.get_kind("plugin_mi").fields), replace=True)


def test_a_missing_point_of_a_text_variable_is_empty_text_and_the_merge_is_saved(tmp_path):
    res = runner.run_sweep({"kind": "labelled_test", "fixed": {"n": 20, "repeats": 3}, "axes": {"p": [0.3, 0.1]}},
                           tmp_path, progress=False)
    assert len(res.failures) == 1 and res.path is not None and res.path.is_file()
    assert res.dataset["note"].values.tolist() == ["p = 0.3", ""]
    assert store.load(res.path)["note"].values.tolist() == ["p = 0.3", ""]


def test_all_failed_gives_an_empty_result(tmp_path, monkeypatch):
    monkeypatch.setitem(FAIL_AT, "p", 0.2)
    res = runner.run_sweep({"kind": "flaky_test", "fixed": {"n": 5}, "axes": {"p": [0.2]}}, tmp_path,
                           progress=False)
    assert res.path is None and len(res.failures) == 1 and len(res.dataset.data_vars) == 0


def test_process_pool_gives_the_in_process_result(tmp_path):
    ref = runner.run_sweep(GRID, tmp_path / "here", progress=False).dataset
    with runner.ProcessPool(2) as pool:
        res = runner.run_sweep(GRID, tmp_path / "pool", pool, progress=False)
    assert all(e.worker and e.worker != _whoami() for e in res.events), "tasks did not run in the pool"
    xr.testing.assert_identical(store.without_attrs(ref), store.without_attrs(res.dataset))


def test_cli_runs_lists_and_rejects(tmp_path, capsys):
    path = tmp_path / "grid.toml"
    path.write_text('kind = "plugin_mi"\nseed = 11\n[fixed]\nrepeats = 5\nrepeats_per_task = 2\n'
                    '[axes]\np = [0.3, 0.1]\nn = [20, 200]\n')
    assert main(["sweep", str(path), "--out", str(tmp_path / "o"), "--dry-run"]) == 0
    assert "12 tasks" in capsys.readouterr().out and not (tmp_path / "o").exists()
    assert main(["sweep", str(path), "--out", str(tmp_path / "o"), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "I_plugin_mean" in out and "sweep.nc" in out and "12 to run" in out
    assert main(["sweep", str(path), "--out", str(tmp_path / "o"), "--no-progress", "--workers", "2"]) == 0
    out = capsys.readouterr().out
    assert "0 to run" in out and "in-process" in out, "nothing to run: no cluster should be started"
    assert runner.pending(GRID, tmp_path / "o") == []
    ref = runner.run_sweep(GRID, tmp_path / "ref", progress=False).dataset
    xr.testing.assert_identical(store.without_attrs(ref), store.without_attrs(store.load(tmp_path / "o" / "sweep.nc")))
    assert main(["sweep", str(path), "--out", str(tmp_path / "o"), "--device", "cuda"]) == 2
    assert "has no device field" in capsys.readouterr().err
    assert main(["sweep", str(path), "--out", str(tmp_path / "o"), "--workers", "0"]) == 2


def test_executor_choice_is_validated():
    assert isinstance(runner.make_executor(), runner.InProcess)
    with pytest.raises(ValueError, match="at most one"):
        runner.make_executor(scheduler="tcp://x:1", processes=2)
    with pytest.raises(ValueError, match="workers must be a positive integer"):
        runner.ProcessPool(0)


def test_a_sweep_removes_the_temporary_files_of_a_killed_save(tmp_path):
    """A sweep killed while saving a task (or sweep.nc) leaves ``.<name>.<random>.tmp`` files; the next run removes
    them and leaves the results alone."""
    runner.run_sweep(GRID, tmp_path, progress=False)
    stale = [tmp_path / "tasks" / ".t0123456789abcdef0123.nc.k2j4h6g8.tmp", tmp_path / ".sweep.nc.a1b2c3d4.tmp"]
    for path in stale:
        path.write_bytes(b"half a netCDF file")
    again = runner.run_sweep(GRID, tmp_path, progress=False)
    assert [e.status for e in again.events] == ["skipped"] * 12
    assert not any(p.exists() for p in stale)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sweep.nc", "tasks"]


def test_a_corrupt_task_file_is_named_when_merging(tmp_path):
    """A bit flipped in a finished task's data (its attributes intact, so it counts as finished) used to be merged
    silently; the checksum now stops the merge with the file's name and the remedy."""
    first = runner.run_sweep(GRID, tmp_path, progress=False).dataset
    victim = sorted((tmp_path / "tasks").glob("*.nc"))[0]
    values = store.load(victim)["I_plugin"].values
    data = bytearray(victim.read_bytes())
    at = data.find(values.tobytes())
    assert at > 0
    data[at + 7] ^= 0x40
    victim.write_bytes(bytes(data))
    with pytest.raises(ValueError, match=f"task file '{victim}' .* delete it and run the sweep again"):
        runner.run_sweep(GRID, tmp_path, progress=False)
    victim.unlink()
    again = runner.run_sweep(GRID, tmp_path, progress=False).dataset
    xr.testing.assert_identical(store.without_attrs(again), store.without_attrs(first))
