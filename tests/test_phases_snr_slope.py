"""The SNR-slope transition rule: the epoch of the steepest fall of the gradient SNR, on synthetic runs where the
SNR follows a known curve in log epoch."""

import numpy as np
import pytest
import xarray as xr
from numpy.testing import assert_allclose, assert_array_equal
from scipy.special import expit

from ibtheory import phases

pytestmark = pytest.mark.filterwarnings("error")

STEP = 0.05  # decades between snapshots
EPOCHS = np.concatenate([[0.0], 10 ** np.arange(0, 4 + STEP / 2, STEP)])  # 0, then 1 .. 10^4 uniform in log


def _logistic(epochs, centre, width=0.3, high=1.0, drop=2.0):
    """log10 SNR = high - drop * sigmoid((log10 e - log10 centre) / width): steepest fall at e = centre."""
    z = (np.log10(np.maximum(epochs, 1e-300)) - np.log10(centre)) / width
    return high - drop * expit(z)


def _run(log_snr, epochs=EPOCHS, repeats=3, ixt=None):
    """A run whose repeat-mean SNR is 10 ** log_snr (epoch, layer); the mean norm of the gradient varies by repeat
    with a repeat-mean of the wanted value, the std is 1; epoch 0 has NaN gradients as in real runs."""
    log_snr = np.asarray(log_snr, float)
    scale = np.linspace(0.5, 1.5, repeats)  # mean 1
    mean = 10 ** log_snr[:, :, None] * scale
    mean[epochs == 0] = np.nan
    dims = ("epoch", "layer", "repeat")
    ixt = np.ones_like(mean) if ixt is None else ixt
    return xr.Dataset(
        {"I_XT": (dims, ixt), "grad_mean_norm": (dims, mean), "grad_std_norm": (dims, np.ones_like(mean))},
        coords={"epoch": epochs, "layer": np.arange(1, log_snr.shape[1] + 1), "repeat": np.arange(repeats)})


CENTRES = (30.0, 300.0, 2000.0)


def _logistic_run(width=0.3, high=1.0):
    return _run(np.stack([_logistic(EPOCHS, c, width, high) for c in CENTRES], axis=1))


@pytest.mark.parametrize("window", [1, 5, 9])
def test_steepest_point_of_a_logistic_drop(window):
    got = phases.snr_slope_epochs(_logistic_run(), window=window)
    assert got.dims == ("layer",)
    assert_array_equal(got["layer"], [1, 2, 3])
    # within one snapshot spacing of the true steepest point (smoothing is symmetric in log epoch here)
    assert np.all(np.abs(np.log10(got.values / np.array(CENTRES))) <= STEP + 1e-9), got.values


def test_matches_central_differences_written_here():
    """window 1, uniform log spacing: np.gradient is (y[i+1] - y[i-1]) / (2 h) inside, one-sided at the ends."""
    rng = np.random.default_rng(3)
    log_snr = np.cumsum(rng.normal(0, 0.2, size=(EPOCHS.size, 4)), axis=0)
    got = phases.snr_slope_epochs(_run(log_snr), window=1).values
    y = log_snr[1:]  # epoch 0 is left out
    slope = np.empty_like(y)
    slope[1:-1] = (y[2:] - y[:-2]) / (2 * STEP)
    slope[0], slope[-1] = (y[1] - y[0]) / STEP, (y[-1] - y[-2]) / STEP
    expected = np.where(slope.min(0) < 0, EPOCHS[1:][slope.argmin(0)], np.nan)
    assert_allclose(got, expected, rtol=1e-9)


def test_differs_from_the_snr_one_rule_and_detect_phases_picks_the_rule():
    """With log10 SNR = 1.5 - 2 sigmoid(z), SNR = 1 where sigmoid = 3/4: z = ln 3, later than the steepest z = 0."""
    width = 0.3
    run = _logistic_run(width=width, high=1.5)
    slope = phases.detect_phases(run, window=1, rule="snr_slope")
    one = phases.detect_phases(run, window=1, rule="snr_one")
    assert slope.attrs["rule"] == "snr_slope" and one.attrs["rule"] == "snr_one"
    assert np.all(np.abs(np.log10(slope["transition_epoch"].values / np.array(CENTRES))) <= STEP + 1e-9)
    crossing = np.array(CENTRES) * 10 ** (width * np.log(3))
    expected_one = [EPOCHS[EPOCHS > c][0] for c in crossing]  # first snapshot with SNR < 1
    assert_allclose(one["transition_epoch"], expected_one)
    assert_allclose(slope["lag"], slope["turn_epoch"] / slope["transition_epoch"])


def test_old_rule_is_the_default_and_unchanged():
    run = _logistic_run(high=1.5)
    default = phases.detect_phases(run, window=3)
    assert default.attrs["rule"] == "snr_one"
    xr.testing.assert_identical(default["transition_epoch"], phases.transition_epochs(run, window=3))
    xr.testing.assert_identical(default, phases.detect_phases(run, window=3, rule="snr_one"))


def test_nan_where_there_is_no_steepest_fall():
    # too few usable snapshots: epochs 0, 1, 2 leave two at epoch > 0
    short = _run(_logistic(np.array([0.0, 1.0, 2.0]), 1.5)[:, None], epochs=np.array([0.0, 1.0, 2.0]))
    assert np.isnan(phases.snr_slope_epochs(short, window=1)).all()
    # a layer with a non-finite SNR everywhere (std 0), a rising one, a flat one; the last layer is fine
    log_snr = np.stack([_logistic(EPOCHS, 100)] * 4, axis=1)
    log_snr[:, 1] = np.log10(np.maximum(EPOCHS, 1))
    log_snr[:, 2] = 0.3
    run = _run(log_snr)
    std = run["grad_std_norm"].values.copy()
    std[:, 0] = 0.0
    run["grad_std_norm"] = (run["grad_std_norm"].dims, std)
    got = phases.snr_slope_epochs(run, window=3).values
    assert np.isnan(got[:3]).all()
    assert abs(np.log10(got[3] / 100)) <= STEP + 1e-9


def test_isolated_missing_snapshots_are_skipped():
    run = _logistic_run()
    mean = run["grad_mean_norm"].values.copy()
    mean[5:7] = np.nan  # two missing snapshots far from the steepest points
    run["grad_mean_norm"] = (run["grad_mean_norm"].dims, mean)
    got = phases.snr_slope_epochs(run, window=1).values
    assert np.all(np.abs(np.log10(got / np.array(CENTRES))) <= STEP + 1e-9)


def test_bad_input():
    run = _logistic_run()
    with pytest.raises(ValueError, match="rule"):
        phases.detect_phases(run, rule="snr_two")
    with pytest.raises(ValueError, match="rule"):
        phases.detect_phases(run, rule=None)
    with pytest.raises(ValueError, match="window"):
        phases.snr_slope_epochs(run, window=0)
    with pytest.raises(ValueError, match="window"):
        phases.detect_phases(run, window=2.5, rule="snr_slope")
    with pytest.raises(ValueError, match="threshold"):
        phases.detect_phases(run, threshold=0.0, rule="snr_slope")
    with pytest.raises(ValueError, match="grad_std_norm"):
        phases.snr_slope_epochs(run.drop_vars("grad_std_norm"))
    with pytest.raises(ValueError, match="strictly increasing"):
        phases.snr_slope_epochs(run.isel(epoch=[0, 1, 3, 2, 4]), window=1)
