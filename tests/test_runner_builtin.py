"""The built-in train and ib_curve kinds: their fields, the CUDA check before anything runs, beta ranges."""

import numpy as np
import pytest
from numpy.testing import assert_allclose

from ibtheory import runner
from ibtheory.runner import builtin

torch = pytest.importorskip("torch")


def test_cuda_asked_for_without_cuda_is_a_clear_error_before_anything_runs(tmp_path):
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    grid = {"kind": "train", "fixed": {"device": "cuda", "epochs": 1, "repeats": 1}}
    with pytest.raises(ValueError, match="device 'cuda' was asked for but CUDA is not available"):
        runner.run_sweep(grid, tmp_path / "out", progress=False)
    assert not (tmp_path / "out" / "tasks").exists()
    assert builtin.check_device({"device": "cpu"}) is None
    assert "cuda:3" in builtin.check_device({"device": "cuda:3"})


@pytest.mark.parametrize(
    ("axes", "message"),
    [
        ({"device": ["gpu"]}, "field 'device' must be 'cpu', 'cuda' or 'cuda:N'"),
        ({"activation": ["tanhh"]}, "activation must be one of"),
        ({"train_fraction": [0.8, 1.0]}, "train_fraction must lie in (0, 1)"),
        ({"hidden": [[10, 0]]}, "field 'hidden[1]' must be >= 1"),
        ({"epochs": [1.5]}, "field 'epochs' must be an integer"),
    ],
)
def test_train_grid_errors_name_the_field(axes, message):
    with pytest.raises(ValueError) as exc:
        runner.load_grid({"kind": "train", "fixed": {"repeats": 2}, "axes": axes})
    assert message in str(exc.value), str(exc.value)


def test_train_chunks_share_the_point_seed_and_pass_repeat_start():
    grid = runner.load_grid({"kind": "train", "fixed": {"repeats": 5, "repeats_per_task": 2, "epochs": 3},
                             "axes": {"hidden": [[10, 7, 5], [4]]}})
    tasks = grid.tasks()
    assert [t.point["hidden"] for t in tasks] == ["10-7-5"] * 3 + ["4"] * 3
    assert [t.config["repeat_start"] for t in tasks[:3]] == [0, 2, 4]
    assert [t.config["repeats"] for t in tasks[:3]] == [2, 2, 1]
    assert len({t.seed for t in tasks[:3]}) == 1 and tasks[0].seed != tasks[3].seed


def test_beta_lists_and_ranges():
    betas = builtin.beta_values({"start": 0.1, "stop": 1000.0, "num": 5}, "betas")
    assert_allclose(betas, [0.1, 1.0, 10.0, 100.0, 1000.0], rtol=1e-12)
    assert builtin.beta_values([3, 1, 2], "betas") == [1.0, 2.0, 3.0]
    for bad, message in (([], "non-empty"), ([1, 1], "repeated"), ({"start": 1, "stop": 2}, "start, stop, num"),
                         ([1, -2], "betas[1]"), ({"start": 5, "stop": 1, "num": 3}, "must be >= start")):
        with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
            builtin.beta_values(bad, "betas")
    grid = runner.load_grid({"kind": "ib_curve", "fixed": {"betas": {"start": 0.5, "stop": 50.0, "num": 10},
                                                           "betas_per_task": 4}})
    assert [t.config["beta_range"] for t in grid.tasks()] == [[0, 4], [4, 8], [8, 10]]
    assert builtin._warmup_path(list(np.arange(10.0)), 4) == [0.0, 3.0, 6.0, 9.0]
    assert builtin._warmup_path([1.0, 2.0], 5) == [1.0, 2.0] and builtin._warmup_path([], 3) == []


TRAIN = {"kind": "train", "seed": 3, "fixed": {"epochs": 3, "snapshots": 2, "repeats": 2, "hidden": [5, 3]},
         "axes": {"activation": ["tanh", "relu"]}}


def _data(ds):
    out = ds.copy()
    out.attrs = {}
    return out


def test_train_sweep_equals_direct_training_and_chunking_changes_only_rounding(tmp_path):
    from ibtheory import nets, tasks

    whole = runner.run_sweep(TRAIN, tmp_path / "whole", progress=False)
    assert not whole.failures and whole.dataset.sizes["activation"] == 2
    assert "final_test_accuracy" in whole.table
    grid = runner.load_grid(TRAIN)
    spec = grid.tasks()[1]  # relu, the only chunk
    direct = nets.train(tasks.tishby(), hidden=(5, 3), activation="relu", repeats=2, epochs=3, snapshots=2,
                        seed=spec.seed, progress=False)
    got = whole.dataset.sel(activation="relu")
    for name in ("I_XT", "I_TY", "train_loss", "grad_snr", "train_mask"):
        xr_equal = np.array_equal(got[name].values, direct[name].values, equal_nan=True)
        assert xr_equal, f"{name}: sweep differs from nets.train with the task's seed"
    split = dict(TRAIN, fixed={**TRAIN["fixed"], "repeats_per_task": 1, "estimators": ["binning", "ensemble"]})
    chunked = runner.run_sweep(split, tmp_path / "chunked", progress=False).dataset
    # the ensemble estimate pools the repeats of one task: chunk-dependent, so dropped and named
    assert "I_XT_ensemble" not in chunked and "I_XT_ensemble" in chunked.attrs["chunk_dependent_dropped"]
    for name in ("I_XT", "I_TY", "train_mask", "labels"):  # discrete results: identical
        np.testing.assert_array_equal(chunked[name].values, whole.dataset[name].values, err_msg=name)
    for name in ("train_loss", "weight_norm", "grad_mean_norm"):  # float32 sums over a different batch of nets
        assert_allclose(chunked[name].values, whole.dataset[name].values, rtol=1e-5, err_msg=f"{name}, rtol 1e-5")


IB_BASE = {"kind": "ib_curve", "seed": 1, "fixed": {"task": "tishby", "gamma": 19.05,
                                                     "betas": {"start": 2.0, "stop": 80.0, "num": 24}}}


@pytest.fixture(scope="module")
def ib_runs(tmp_path_factory):
    """The paper's soft task (|Y| = 2: certified points) on 24 betas: unsplit, and in 4 ranges of 6 betas with
    warm-up paths of 2 betas on each side (warm) and of none (cold: each range anneals down from the identity at
    its own top beta and up from the trivial encoder at its own bottom one)."""
    out = tmp_path_factory.mktemp("ib")
    one = runner.run_sweep(IB_BASE, out / "one", progress=False).dataset
    runs = {}
    for name, warmup in (("warm", 2), ("cold", 0)):
        grid = dict(IB_BASE, fixed={**IB_BASE["fixed"], "betas_per_task": 6, "warmup": warmup})
        res = runner.run_sweep(grid, out / name, progress=False)
        assert len(res.events) == 4 and not res.failures
        runs[name] = res.dataset
    return one, runs["warm"], runs["cold"]


def test_ib_curve_ranges_with_warm_starts_match_one_run(ib_runs):
    """Split into 4 beta ranges with warm starts, the merged curve equals the unsplit one (1e-8 bits)."""
    one, four, _ = ib_runs
    assert float(one["gap"].max()) < 1e-6, "the unsplit points should be certified optimal"
    assert_allclose(four["beta"], one["beta"], rtol=0)
    for name in ("I_XT", "I_TY", "lagrangian"):
        assert_allclose(four[name], one[name], atol=1e-8, err_msg=f"{name} (bits), atol 1e-8")
    assert_allclose(four["hull_I_TY"], one["hull_I_TY"], atol=1e-8)
    assert_allclose(four["critical_betas"], one["critical_betas"], rtol=1e-12)
    assert four["I_XT"].attrs["units"] == "bits" and four.attrs["I_XY"] > 0


def test_ib_curve_ranges_anneal_in_along_warm_up_paths(ib_runs, monkeypatch):
    """What the warm-up paths are: each range is solved together with up to ``warmup`` grid betas on each side, so
    both annealing passes arrive at the range from a continued solution.  On a certified task they buy no better
    optimum (a cold start reaches the same one: every point is certified and re-seeded until its gap is below
    2e-7 bits; measured within 1e-14 bits here and on random p(x,y) with |X| = 100-300) and, since the points
    next to a critical beta are polished in a batch whose cost depends on the whole range, no reliably smaller
    iteration count either (at the range tops 176, 10, 125 warm vs 199, 33, 102 cold); so this checks the path
    itself, on the task's grid."""
    one, warm, cold = ib_runs
    assert_allclose(cold["lagrangian"], one["lagrangian"], atol=1e-8,
                    err_msg="certified points: a cold start reaches the same optimum (atol 1e-8 bits)")
    import ibtheory.ib as ib_module

    calls = []
    real = ib_module.ib_curve

    def spy(p_xy, betas=None, **kw):
        calls.append(np.asarray(betas).tolist())
        return real(p_xy, betas=betas, **kw)

    monkeypatch.setattr(ib_module, "ib_curve", spy)
    grid_betas = list(np.geomspace(2.0, 80.0, 24))
    # two warm-up betas per side, evenly spaced by index over that side and ending next to the range
    path = [grid_betas[0], grid_betas[5]] + grid_betas[6:12] + [grid_betas[12], grid_betas[23]]
    for warmup, expect in ((2, path), (0, grid_betas[6:12])):
        calls.clear()
        config = {**IB_BASE["fixed"], "betas": grid_betas, "beta_range": (6, 12), "warmup": warmup}
        part = builtin.ib_curve_task(config, seed=0)
        assert_allclose(calls[0], expect, rtol=1e-12, err_msg=f"warmup {warmup}: betas handed to ib_curve")
        assert_allclose(part["beta"], grid_betas[6:12], rtol=1e-12)


def test_task_fields_come_from_the_task_registry():
    """One spelling: the runner takes the registry's names (hyphens stored as underscores) and parameters; the train
    kind now builds every built-in task (binary_symmetric used to need a 'crossover' field it did not have)."""
    from ibtheory import tasks

    grid = runner.load_grid({"kind": "train", "fixed": {"task": "binary-symmetric", "p": 0.2, "epochs": 1}})
    config = grid.tasks()[0].config
    assert config["task"] == "binary_symmetric"
    assert_allclose(builtin._task(config)["p_xy"], [[0.4, 0.1], [0.1, 0.4]], rtol=1e-15)
    params = {p.name for t in tasks.BUILTIN.values() for p in t.params}
    for kind in ("train", "ib_curve"):
        fields = runner.get_kind(kind).fields
        assert {"task", *params} <= set(fields)
        assert {p.name: p.default for t in tasks.BUILTIN.values() for p in t.params} == {
            k: fields[k].default for k in params}
    with pytest.raises(ValueError, match=r"field 'task' must be one of \['tishby', 'binary_symmetric', 'gaussian_d"):
        runner.load_grid({"kind": "ib_curve", "fixed": {"task": "nope", "betas": [1.0]}})
    with pytest.raises(ValueError, match="task kind 'ib_curve': gamma must be > 0"):
        runner.load_grid({"kind": "ib_curve", "fixed": {"gamma": -1.0, "betas": [1.0]}})
    with pytest.raises(ValueError, match=r"task kind 'ib_curve' at point \{'p': 1.5\}: p must be <= 1"):
        runner.load_grid({"kind": "ib_curve", "fixed": {"task": "binary_symmetric", "betas": [1.0]},
                          "axes": {"p": [0.2, 1.5]}})


def test_train_fields_default_to_train_config(monkeypatch):
    """The train kind's training fields are TrainConfig's, with its defaults (the paper's setting)."""
    import dataclasses

    from ibtheory.nets import TrainConfig

    fields = runner.get_kind("train").fields
    for f in dataclasses.fields(TrainConfig):
        if f.name != "seed":
            default = list(f.default) if isinstance(f.default, tuple) else f.default
            assert fields[f.name].default == default, f.name
    snapshots = next(f for f in dataclasses.fields(TrainConfig) if f.name == "snapshots")
    monkeypatch.setattr(snapshots, "default", 12)
    assert builtin._train_config_fields()["snapshots"].default == 12


def test_a_task_parameter_named_like_a_field_of_a_kind_is_refused_by_name():
    from ibtheory import tasks

    tasks.register(tasks.BuiltinTask("clash_task", tasks.binary_symmetric, (tasks.Param("warmup", int, 3),)))
    try:
        with pytest.raises(ValueError, match=r"task parameter\(s\) \['warmup'\] .* clash with field\(s\)"):
            runner.load_grid({"kind": "ib_curve", "fixed": {"betas": [1.0]}})
    finally:
        tasks.unregister("clash_task")
