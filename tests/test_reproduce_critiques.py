"""The critics' matrix without training: settings, the runner kind, the IB bound of each task, the heat map."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pytest
import xarray as xr

from ibtheory.info import mutual_information
from ibtheory.plots.matrix import plot_verdict_matrix
from ibtheory.reproduce import settings
from ibtheory.reproduce.claims import CLAIMS
from ibtheory.runner import load_grid


def test_settings_are_unique_and_name_their_run_and_source():
    labels = [s.label for s in settings.SETTINGS]
    assert len(set(labels)) == len(labels) == 25
    for s in settings.SETTINGS:
        assert s.run in settings.RUNS and s.source and s.group in (
            "activation", "estimator", "optimisation", "data")
    with pytest.raises(ValueError, match="setting must be one of"):
        settings.setting("tanh, 31 bins")
    with pytest.raises(ValueError, match="run must be one of"):
        settings.setting_run("adamw", "tiny", 0)


def test_the_runner_kind_refuses_bad_fields_before_running():
    base = {"kind": "critique", "fixed": {"size": "tiny"}, "axes": {"setting": ["tanh, 10 bins"]}}
    assert len(load_grid(base).tasks()) == 1
    for fixed, match in (({"size": "huge"}, "size"), ({"run_seed": -1}, "run_seed"), ({"device": "gpu"}, "device")):
        with pytest.raises(ValueError, match=match):
            load_grid({**base, "fixed": {**base["fixed"], **fixed}})
    with pytest.raises(ValueError, match="setting"):
        load_grid({**base, "axes": {"setting": ["nope"]}})


def test_the_hard_task_bound_is_the_deterministic_line_and_the_soft_one_is_concave_below_it():
    hard = settings.task_bound("hard")
    top = mutual_information(settings.task_of("hard")["p_xy"].values)
    r = np.array([0.0, 0.3, top, 5.0, 12.0])
    np.testing.assert_allclose(hard(r), np.minimum(r, top), atol=0)  # Kolchinsky et al. 2019: F(r) = min(r, H(Y))
    soft = settings.task_bound("soft")
    i_xy = mutual_information(settings.task_of("soft")["p_xy"].values)
    grid = np.linspace(0.0, 12.0, 241)
    f = soft(grid)
    assert (f <= grid + 1e-9).all() and (f <= i_xy + 1e-9).all(), "data processing: F(r) <= min(r, I(X;Y))"
    assert abs(f[-1] - i_xy) < 1e-6 and abs(f[0]) < 1e-9
    assert (np.diff(f, 2) <= 1e-9).all(), "the IB curve is concave"


def _matrix(codes):
    codes = np.asarray(codes)
    return xr.Dataset({"verdict": (("setting", "claim"), codes),
                       "score": (("setting", "claim"), np.where(codes < 0, np.nan, codes / 2.0))},
                      coords={"setting": [f"s{i}" for i in range(codes.shape[0])],
                              "claim": list(CLAIMS[:codes.shape[1]])})


def test_the_heat_map_draws_one_coloured_cell_per_verdict():
    codes = np.array([[-1, 0, 1], [2, 2, 0]])
    fig = plot_verdict_matrix(_matrix(codes))
    ax = fig.axes[0]
    np.testing.assert_array_equal(ax.images[0].get_array(), codes)
    texts = sorted(t.get_text() for t in ax.texts)
    assert texts == sorted(f"{c / 2:.2f}" for c in codes.ravel() if c >= 0)
    assert [t.get_text() for t in ax.get_yticklabels()] == ["s0", "s1"]
    plt.close(fig)


def test_the_heat_map_refuses_bad_input():
    with pytest.raises(ValueError, match="verdict codes must lie in"):
        plot_verdict_matrix(_matrix([[3, 0]]))
    with pytest.raises(ValueError, match="m must hold 'score'"):
        plot_verdict_matrix(_matrix([[1, 0]]).drop_vars("score"))


def test_the_critique_rows_check_their_device_where_they_run(monkeypatch):
    """The critique kind checks the device's spelling with the grid and its existence on the worker (as the train
    kind): "cuda:3" is a valid field, and without CUDA the worker check names it."""
    import ibtheory.reproduce.settings  # noqa: F401  (registers the kind)
    from ibtheory.runner import builtin
    from ibtheory.runner.kinds import get_kind

    kind = get_kind("critique")
    assert kind.fields["device"].check("cuda:3", "device") == "cuda:3"
    with pytest.raises(ValueError, match="'cpu', 'cuda' or 'cuda:N'"):
        kind.fields["device"].check("gpu", "device")
    monkeypatch.setattr(builtin, "check_device", lambda config: f"no {config['device']} here")
    assert kind.worker_check({"device": "cuda:3"}) == "no cuda:3 here"
