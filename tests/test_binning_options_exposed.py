"""The peers' binning options (the authors' np.digitize grid, Saxe et al.'s fixed width, sampled labels) reach the
trainers, the command line and the runner: the recorded information equals the grid's arithmetic written out here
on the run's own activations, the options are recorded in the run's config, and bad values are refused by name
before anything trains."""

import math

import numpy as np
import pytest
import xarray as xr
from numpy.testing import assert_allclose, assert_array_equal

from ibtheory import nets, runner, store, tasks
from ibtheory.cli import main
from ibtheory.estimators import binning_options
from ibtheory.nets.conv import train_conv
from ibtheory.runner import builtin

torch = pytest.importorskip("torch")

TASK = tasks.gaussian_discretized(0.8, 64, 4)  # 64 patterns, soft p(y|x): sampled labels differ from exact ones
TINY = dict(hidden=(4, 3), repeats=2, epochs=3, snapshots=3, progress=False, keep_activations=True,
            estimators=("binning", "ensemble"))


def _tables(task):
    p_xy = task["p_xy"].values
    p_x = p_xy.sum(axis=1)
    return p_x, p_xy / p_x[:, None]


def _h(p):
    p = p[p > 0]
    return float(-np.sum(p * np.log2(p)))


def _informations(codes, p_x, p_y_x):
    """I(X;T), I(T;Y) (bits) and the number of states of the encoder pooled over the R rows of ``codes``
    (R, n_x, units): states by np.unique over all R * n_x rows, p(x, t) = p(x) #{r: t_r(x) = t} / R."""
    R, n_x, units = codes.shape
    _, t = np.unique(codes.reshape(R * n_x, units), axis=0, return_inverse=True)
    t = t.ravel().reshape(R, n_x)
    p_xt = np.zeros((n_x, t.max() + 1))
    for r in range(R):
        np.add.at(p_xt, (np.arange(n_x), t[r]), p_x / R)
    p_ty = p_xt.T @ p_y_x
    mi = lambda p: _h(p.sum(axis=1)) + _h(p.sum(axis=0)) - _h(p.ravel())  # noqa: E731
    return mi(p_xt), mi(p_ty), int(np.count_nonzero(p_xt.sum(axis=0)))


def _check_run(run, codes_of, p_x, p_y_x):
    """Every recorded binning and ensemble value against the grid ``codes_of`` applied to the kept activations."""
    for e in range(run.sizes["epoch"]):
        for i, width in enumerate(run["width"].values):
            acts = run["activations"].isel(epoch=e, layer=i).values[:, :, :width]  # (repeat, x, unit)
            codes = codes_of(acts)
            for r in range(run.sizes["repeat"]):
                ixt, ity, n = _informations(codes[r:r + 1], p_x, p_y_x)
                at = dict(epoch=e, layer=i, repeat=r)
                assert_allclose([run["I_XT"][at], run["I_TY"][at]], [ixt, ity], atol=1e-10, err_msg=str(at))
                assert int(run["n_states"][at]) == n
            ixt, ity, _ = _informations(codes, p_x, p_y_x)
            assert_allclose([run["I_XT_ensemble"][e, i], run["I_TY_ensemble"][e, i]], [ixt, ity], atol=1e-10)


def _onehot_sampled(p_y_x, label_seed):
    """The documented draw: one uniform per pattern from default_rng(label_seed), label by inverse CDF."""
    u = np.random.default_rng(label_seed).random(p_y_x.shape[0])
    y = [min(int(np.searchsorted(np.cumsum(row), ui, side="right")), len(row) - 1)
         for row, ui in zip(p_y_x, u, strict=True)]
    return np.eye(p_y_x.shape[1])[y]


@pytest.fixture(scope="module")
def exact_run():
    return nets.train(TASK, **TINY)


def test_idnns_run_is_the_authors_digitize_grid():
    run = nets.train(TASK, scheme="idnns", n_bins=8, **TINY)
    edges = np.linspace(-1.0, 1.0, 8)
    _check_run(run, lambda a: np.digitize(a, edges), *_tables(TASK))
    assert store.config_of(run)["scheme"] == "idnns" and store.config_of(run)["n_bins"] == 8


def test_fixed_width_run_is_saxes_floor_grid():
    run = nets.train(TASK, bin_width=0.25, anchor=0.1, **TINY)
    _check_run(run, lambda a: np.floor((a - np.float32(0.1)) / np.float32(0.25)), *_tables(TASK))
    cfg = store.config_of(run)
    assert (cfg["bin_width"], cfg["anchor"]) == (0.25, 0.1)
    assert not {"n_bins", "limits", "scheme", "labels", "label_seed"} & set(cfg), "unused options are not recorded"


def test_sampled_labels_are_reproducible_and_differ_from_exact(exact_run):
    p_x, p_y_x = _tables(TASK)
    a = nets.train(TASK, labels="sampled", label_seed=5, **TINY)
    b = nets.train(TASK, labels="sampled", label_seed=5, **TINY)
    other = nets.train(TASK, labels="sampled", label_seed=6, **TINY)
    xr.testing.assert_identical(a.drop_attrs(), b.drop_attrs())
    onehot = _onehot_sampled(p_y_x, 5)
    _check_run(a, lambda acts: np.clip(np.floor((acts + 1) / 2 * 30), 0, 29), p_x, onehot)
    # training and I(X;T) do not depend on the labels the estimators use; I(T;Y) does
    for v in ("train_loss", "test_loss", "I_XT", "I_XT_ensemble", "activations"):
        assert_array_equal(a[v].values, exact_run[v].values, err_msg=v)
    assert np.any(np.abs(a["I_TY"].values - exact_run["I_TY"].values) > 1e-6)
    assert np.any(np.abs(a["I_TY"].values - other["I_TY"].values) > 1e-6)
    cfg = store.config_of(a)
    assert (cfg["labels"], cfg["label_seed"]) == ("sampled", 5)


def test_default_run_records_the_options_as_before(exact_run):
    cfg = store.config_of(exact_run)
    assert (cfg["n_bins"], cfg["limits"], cfg["scheme"]) == (30, [-1.0, 1.0], "width")
    assert not {"bin_width", "anchor", "labels", "label_seed"} & set(cfg)
    assert binning_options() == {"n_bins": 30, "limits": (-1.0, 1.0), "scheme": "width"}
    assert binning_options(label_seed=9) == binning_options(), "label_seed matters only with sampled labels"


def test_options_survive_saving_and_resuming(tmp_path):
    out = tmp_path / "run.nc"
    kw = dict(TINY, keep_activations=False, bin_width=0.07, labels="sampled", label_seed=2, out=out)
    first = nets.train(TASK, **kw)
    assert all(v is not None for v in store.load(out).attrs.values())
    again = nets.train(TASK, **kw)  # same configuration: the stored complete run comes back
    xr.testing.assert_identical(again.drop_attrs(), first.drop_attrs())
    with pytest.raises(ValueError, match="different configuration"):
        nets.train(TASK, **dict(kw, label_seed=3))


BAD = [
    (dict(bin_width=0.0), "bin_width"),
    (dict(bin_width=-0.07), "bin_width"),
    (dict(bin_width="0.07"), "bin_width"),
    (dict(bin_width=0.07, anchor=math.nan), "anchor"),
    (dict(anchor=0.1), "anchor"),
    (dict(labels="foo"), "labels"),
    (dict(label_seed=-1), "label_seed"),
    (dict(labels="sampled", label_seed=1.5), "label_seed"),
    (dict(scheme="idnns", limits="adaptive"), "limits"),
    (dict(n_bins=30, bin_width=0.07), "n_bins"),
    (dict(bin_width=0.07, scheme="idnns"), "scheme"),
    (dict(scheme="digitize"), "scheme"),
]


@pytest.mark.parametrize("kwargs,name", BAD)
def test_bad_options_are_refused_naming_them(kwargs, name, tmp_path):
    with pytest.raises(ValueError, match=name):
        binning_options(**kwargs)
    with pytest.raises(ValueError, match=name):
        nets.train(TASK, epochs=1, repeats=1, out=tmp_path / "x.nc", **kwargs)
    assert not (tmp_path / "x.nc").exists()


def test_conv_takes_the_options():
    image = tasks.from_joint(tasks.gaussian_discretized(0.8, 16, 4)["p_xy"].values)  # one-hot: a 4x4 image
    kw = dict(channels=(2,), kernel=3, hidden=(3,), repeats=2, epochs=2, snapshots=2, batch_size=8, progress=False)
    # one bin holds every value: one state, I(X;T) = I(T;Y) = 0 exactly
    one = train_conv(image, bin_width=1e3, anchor=-500.0, **kw)
    assert (one["n_states"].values == 1).all() and (one["I_XT"].values == 0).all()
    assert_allclose([one["I_XT_ensemble"].values, one["I_TY_ensemble"].values], 0.0, atol=1e-12)
    assert store.config_of(one)["bin_width"] == 1e3
    exact = train_conv(image, **kw)
    sampled = train_conv(image, labels="sampled", label_seed=1, **kw)
    assert_array_equal(sampled["I_XT"].values, exact["I_XT"].values)
    assert np.any(np.abs(sampled["I_TY"].values - exact["I_TY"].values) > 1e-6)
    with pytest.raises(ValueError, match="label_seed"):
        train_conv(image, labels="sampled", label_seed=-1, **kw)


# ---------------------------------------------------------------- command line
CLI = ["train", "--hidden", "3", "--repeats", "2", "--epochs", "2", "--snapshots", "2", "--no-progress"]


def test_cli_passes_the_options_on(tmp_path):
    out = tmp_path / "run.nc"
    assert main(CLI + ["--scheme", "idnns", "--n-bins", "10", "--labels", "sampled", "--label-seed", "3",
                       "--out", str(out)]) == 0
    api = nets.train(tasks.tishby(), hidden=(3,), repeats=2, epochs=2, snapshots=2, scheme="idnns", n_bins=10,
                     labels="sampled", label_seed=3, progress=False)
    ds = store.load(out)
    xr.testing.assert_equal(ds.drop_attrs(), api.drop_attrs())
    assert {k: store.config_of(ds)[k] for k in ("scheme", "n_bins", "labels", "label_seed")} == dict(
        scheme="idnns", n_bins=10, labels="sampled", label_seed=3)
    out = tmp_path / "fixed.nc"
    assert main(CLI + ["--bin-width", "0.07", "--anchor", "0.5", "--out", str(out)]) == 0
    assert (store.config_of(store.load(out))["bin_width"], store.config_of(store.load(out))["anchor"]) == (0.07, 0.5)


@pytest.mark.parametrize("args,name", [
    (["--scheme", "idnns", "--bin-width", "0.07"], "scheme"),
    (["--n-bins", "30", "--bin-width", "0.07"], "n_bins"),
    (["--bin-width", "0"], "bin_width"),
    (["--bin-width", "0.07", "--anchor", "nan"], "anchor"),
    (["--label-seed", "-1"], "label_seed"),
    (["--scheme", "idnns", "--limits", "adaptive"], "limits"),
])
def test_cli_refuses_bad_options_before_training(args, name, tmp_path, capsys):
    out = tmp_path / "x.nc"
    assert main(CLI + args + ["--out", str(out)]) == 2
    assert name in capsys.readouterr().err and not out.exists()


def test_cli_choices(capsys):
    for args in (["--labels", "foo"], ["--scheme", "digitize"]):
        with pytest.raises(SystemExit) as exc:
            main(CLI + args)
        assert exc.value.code == 2
    assert "idnns" in capsys.readouterr().err


# ---------------------------------------------------------------- runner
def test_runner_grid_takes_the_options():
    grid = runner.load_grid({"kind": "train", "fixed": {"hidden": [3], "repeats": 2, "epochs": 2, "snapshots": 2,
                                                        "labels": "sampled", "label_seed": 4},
                             "axes": {"scheme": ["width", "idnns"], "limits": [[-1.0, 1.0], [-2.0, 2.0]]}})
    task = grid.tasks()[-1]
    assert {k: task.config[k] for k in ("scheme", "limits", "labels", "label_seed")} == dict(
        scheme="idnns", limits=[-2.0, 2.0], labels="sampled", label_seed=4)
    ds = builtin.train_task(task.config, task.seed)
    cfg = store.config_of(ds)
    assert (cfg["scheme"], cfg["limits"], cfg["labels"], cfg["label_seed"]) == ("idnns", [-2.0, 2.0], "sampled", 4)
    fixed = runner.load_grid({"kind": "train", "fixed": {"bin_width": 0.07, "anchor": 0.0}}).tasks()[0]
    assert (fixed.config["bin_width"], fixed.config["anchor"], fixed.config["n_bins"]) == (0.07, 0.0, None)


@pytest.mark.parametrize("fields,message", [
    ({"scheme": "digitize"}, "field 'scheme' must be one of ['width', 'mass', 'idnns']"),
    ({"labels": "foo"}, "field 'labels' must be one of ['exact', 'sampled']"),
    ({"label_seed": -1}, "field 'label_seed' must be >= 0"),
    ({"bin_width": 0.0}, "field 'bin_width' must lie in"),
    ({"anchor": math.nan}, "field 'anchor' must be a finite number"),
    ({"limits": [1.0]}, "field 'limits' must be 'adaptive' or a pair"),
    ({"limits": [1.0, -1.0]}, "limits must be finite with lo < hi"),
    ({"n_bins": 30, "bin_width": 0.07}, "n_bins and bin_width exclude each other"),
    ({"anchor": 0.5}, "anchor is used only with bin_width"),
    ({"scheme": "idnns", "limits": "adaptive"}, "limits must be a pair (lo, hi) for scheme 'idnns'"),
])
def test_runner_refuses_bad_options_before_running(fields, message):
    with pytest.raises(ValueError) as exc:
        runner.load_grid({"kind": "train", "fixed": {"repeats": 2, **fields}})
    assert message in str(exc.value), str(exc.value)
