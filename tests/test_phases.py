"""Phase detection on synthetic runs with known transition and turn epochs, and on a short real run."""

import numpy as np
import pytest
import xarray as xr
from numpy.testing import assert_allclose

from ibtheory import phases
from ibtheory.nets import snapshot_epochs


def _run(turns=(50, 200), transitions=(100, 400)):
    epochs = np.union1d(snapshot_epochs(10_000, 200), list(turns) + list(transitions))
    n_l, n_r = len(turns), 3
    e = epochs[:, None, None].astype(float)
    turn = np.array(turns, float)[None, :, None]
    rise, fall = np.log1p(e) / np.log1p(turn), 1 - 0.3 * np.log(np.maximum(e, 1) / turn)
    ixt = 5 + np.where(e <= turn, rise, fall) + np.zeros((1, 1, n_r))
    trans = np.array(transitions, float)[None, :, None]
    mean = np.where(e < trans, 10.0, 0.1) * np.ones((1, 1, n_r))
    mean[0] = np.nan
    dims = ("epoch", "layer", "repeat")
    return xr.Dataset(
        {"I_XT": (dims, ixt), "grad_mean_norm": (dims, mean), "grad_std_norm": (dims, np.ones_like(mean))},
        coords={"epoch": epochs, "layer": np.arange(1, n_l + 1), "repeat": np.arange(n_r)},
    )


def test_known_turn_and_transition():
    run = _run()
    ph = phases.detect_phases(run, window=1)
    assert_allclose(ph["turn_epoch"], [50, 200])
    epochs = run["epoch"].values
    expected = [epochs[epochs >= t][0] for t in (100, 400)]
    assert_allclose(ph["transition_epoch"], expected)
    assert ph["compresses"].all()
    assert_allclose(ph["compression"], ph["peak"] - run["I_XT"].mean("repeat").isel(epoch=-1), atol=1e-12)


def test_smoothing_moves_estimates_little():
    ph = phases.detect_phases(_run(), window=9)
    assert np.all(np.abs(np.log10(ph["turn_epoch"] / np.array([50, 200]))) < 0.3), ph["turn_epoch"].values
    assert np.all(np.abs(np.log10(ph["transition_epoch"] / np.array([100, 400]))) < 0.3)


def test_no_drift_gives_nan_and_no_compression_flag():
    run = _run()
    run["grad_mean_norm"] = run["grad_mean_norm"] * 0 + 0.5
    run["I_XT"] = run["I_XT"] * 0 + np.arange(run.sizes["epoch"])[:, None, None]  # keeps rising
    ph = phases.detect_phases(run, window=3)
    assert np.isnan(ph["transition_epoch"]).all()
    assert not ph["compresses"].any()


def test_bad_input():
    with pytest.raises(ValueError, match="lacks"):
        phases.detect_phases(_run().drop_vars("I_XT"))
    with pytest.raises(ValueError, match="window"):
        phases.detect_phases(_run(), window=0)
    with pytest.raises(ValueError, match="threshold"):
        phases.transition_epochs(_run(), threshold=-1)
