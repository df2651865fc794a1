"""Phases of training: the drift-to-diffusion transition of the gradients and the fitting-to-compression turn.

Shwartz-Ziv & Tishby (2017) describe two phases per layer: *drift* (the norm of the mean minibatch gradient is much
larger than its batch-to-batch fluctuation) then *diffusion* (mean << std), and claim that the turn of the layer in
the information plane, from growing to shrinking I(X;T), happens at the same time.  This module measures both from a
run Dataset of :func:`ibtheory.nets.train` so that the claim can be checked rather than assumed.

Rules (documented choices; each has a parameter):

- Both trajectories are first averaged over repeats, then smoothed with a moving average of ``window`` snapshots
  (``scipy.ndimage.uniform_filter1d``, edges repeated).  Snapshots are log-spaced, so this is a smoothing of
  constant width in log(epoch).
- **Transition epoch** of layer l: SNR_l(e) = <|mean g|>_r / <std g>_r (repeat means of the norms of the weight
  gradient, as in the paper's Fig. 4).  On log10 SNR, smoothed, find the maximum; the transition is the first later
  snapshot epoch where the smoothed SNR falls below ``threshold`` (1: mean = std).  NaN when the smoothed SNR never
  exceeds the threshold (no drift phase) or never falls below it after its maximum (no diffusion within the run).
  This is rule ``"snr_one"`` of :func:`detect_phases`.
- **SNR-slope transition** (rule ``"snr_slope"``; the authors' talk: "the phase transition in the information occurs
  at the minimum of the derivative of the SNR of the gradients"): on the same smoothed log10 SNR_l, the slope
  s_l(e) = d log SNR_l / d log e (``np.gradient`` over log10 epoch, dimensionless) and the transition is the epoch
  of its minimum, the steepest fall of the SNR.  NaN when fewer than three snapshots are usable (epoch > 0 and a
  finite smoothed SNR) or when the slope is nowhere below -1e-9 (the SNR never falls; rounding aside).
- **Turn epoch** of layer l: the epoch of the maximum of the smoothed repeat-mean I(X;T) (the end of fitting).
  ``compression`` = smoothed peak minus the final repeat-mean value (bits); the layer ``compresses`` when that
  exceeds ``tol`` bits.

References
----------
1. R. Shwartz-Ziv and N. Tishby, "Opening the black box of deep neural networks via information", arXiv:1703.00810.
2. A. M. Saxe et al., "On the information bottleneck theory of deep learning", ICLR 2018.
"""

from __future__ import annotations

import numpy as np
import xarray as xr
from scipy.ndimage import uniform_filter1d

from ._validate import real, show
from .estimators import RUN_SCHEMA

__all__ = ["smooth", "snr", "transition_epochs", "snr_slope_epochs", "compression_turn", "detect_phases",
           "TRANSITION_RULES"]

#: Rules of :func:`detect_phases` for the drift-to-diffusion transition epoch (see the module docstring).
TRANSITION_RULES = ("snr_one", "snr_slope")
_FLAT_SLOPE = 1e-9  # |d log SNR / d log epoch| below this is rounding, not a fall


def _check_run(run: xr.Dataset, names: tuple[str, ...], dims: tuple[str, ...]) -> None:
    """The run schema's check of ``names`` (each with ``dims``), and at least two snapshots."""
    RUN_SCHEMA.require(run, names, dims)
    if run.sizes.get("epoch", 0) < 2:
        raise ValueError("run needs at least two snapshot epochs")


def _check_window(window: int) -> None:
    if isinstance(window, bool) or int(window) != window or window < 1:
        raise ValueError(f"window must be a positive integer (snapshots), got {show(window)}")


def smooth(values: xr.DataArray, window: int = 9) -> xr.DataArray:
    """Moving average over ``window`` consecutive snapshots along ``epoch`` (edges repeated), NaNs ignored."""
    _check_window(window)
    axis = values.dims.index("epoch")
    v = values.values.astype(np.float64)
    ok = np.isfinite(v)
    num = uniform_filter1d(np.where(ok, v, 0.0), int(window), axis=axis, mode="nearest")
    den = uniform_filter1d(ok.astype(np.float64), int(window), axis=axis, mode="nearest")
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where(den > 0, num / den, np.nan)
    return values.copy(data=out)


def snr(run: xr.DataArray | xr.Dataset) -> xr.DataArray:
    """Gradient signal-to-noise ratio per (epoch, layer): repeat-mean |mean g| over repeat-mean std g."""
    _check_run(run, ("grad_mean_norm", "grad_std_norm"), ("epoch", "layer", "repeat"))
    return run["grad_mean_norm"].mean("repeat") / run["grad_std_norm"].mean("repeat")


def _smoothed_log_snr(run: xr.Dataset, window: int) -> xr.DataArray:
    """Smoothed log10 SNR over (epoch, layer), snapshots at epoch > 0 only (an SNR of 0 or inf counts as missing)."""
    _check_window(window)
    ratio = snr(run).transpose("epoch", "layer")
    ratio = ratio.isel(epoch=np.flatnonzero(ratio["epoch"].values > 0))
    with np.errstate(divide="ignore", invalid="ignore"):
        log_snr = np.log10(ratio)
    return smooth(log_snr, window)


def _check_threshold(threshold: float) -> float:
    return real(threshold, "threshold", 0.0, low_open=True)


def transition_epochs(run: xr.Dataset, threshold: float = 1.0, window: int = 9) -> xr.DataArray:
    """Drift-to-diffusion transition epoch per layer (NaN where there is none); see the module rules.

    Rule ``"snr_one"``: the first snapshot epoch after the maximum of the smoothed log10 SNR where it is below
    log10 ``threshold``.
    """
    threshold = _check_threshold(threshold)
    smoothed = _smoothed_log_snr(run, window)
    log_snr, epochs = smoothed.values, smoothed["epoch"].values
    out = np.full(log_snr.shape[1], np.nan)
    for j in range(log_snr.shape[1]):  # loop over the few layers
        col = log_snr[:, j]
        if not np.isfinite(col).any():
            continue
        peak = int(np.nanargmax(col))
        if col[peak] <= np.log10(threshold):
            continue
        below = np.flatnonzero(col[peak:] < np.log10(threshold))
        if below.size:
            out[j] = epochs[peak + below[0]]
    return xr.DataArray(out, coords={"layer": smoothed["layer"].values}, dims="layer", name="transition_epoch",
                        attrs={"long_name": f"first epoch after the SNR maximum with smoothed SNR < {threshold}"})


def snr_slope_epochs(run: xr.Dataset, window: int = 9) -> xr.DataArray:
    """Epoch of the steepest fall of the gradient SNR per layer (NaN where there is none); rule ``"snr_slope"``.

    On the smoothed repeat-mean log10 SNR_l of :func:`transition_epochs` (snapshots at epoch > 0), the slope
    s_l(e_i) = d log SNR_l / d log e (``np.gradient`` over log10 e: central differences inside, one-sided at the
    ends; dimensionless) and the result is argmin_i s_l(e_i).  Snapshots with a non-finite smoothed SNR are left
    out; NaN with fewer than three usable snapshots or when min_i s_l(e_i) >= -1e-9 (the SNR never falls).
    """
    smoothed = _smoothed_log_snr(run, window)
    log_snr, epochs = smoothed.values, smoothed["epoch"].values.astype(np.float64)
    if np.any(np.diff(epochs) <= 0):
        raise ValueError(f"run['epoch'] must be strictly increasing, got {show(run['epoch'].values.tolist())}")
    log_epoch = np.log10(epochs)
    out = np.full(log_snr.shape[1], np.nan)
    for j in range(log_snr.shape[1]):  # loop over the few layers
        ok = np.isfinite(log_snr[:, j])
        if ok.sum() < 3:
            continue
        slope = np.gradient(log_snr[ok, j], log_epoch[ok])
        k = int(np.argmin(slope))
        if slope[k] < -_FLAT_SLOPE:
            out[j] = epochs[ok][k]
    return xr.DataArray(out, coords={"layer": smoothed["layer"].values}, dims="layer", name="transition_epoch",
                        attrs={"long_name": "epoch of the minimum of d log SNR / d log epoch (smoothed SNR)"})


def compression_turn(run: xr.Dataset, variable: str = "I_XT", window: int = 9, tol: float = 0.01) -> xr.Dataset:
    """Fitting-to-compression turn per layer from the repeat-averaged, smoothed ``variable`` trajectory.

    Returns a Dataset over ``layer`` with ``turn_epoch``, ``peak`` and ``final`` (bits), ``compression``
    (peak - final, bits) and ``compresses`` (compression > tol).
    """
    _check_run(run, (variable,), ("epoch", "layer"))
    traj = run[variable].mean("repeat") if "repeat" in run[variable].dims else run[variable]
    traj = traj.transpose("epoch", "layer")
    sm = smooth(traj, window)
    idx = sm.fillna(-np.inf).argmax("epoch")
    peak = sm.isel(epoch=idx)
    final = traj.isel(epoch=-1)
    bits = {"units": "bits"}
    ds = xr.Dataset(
        {
            "turn_epoch": ("layer", run["epoch"].values[idx.values],
                           {"long_name": f"epoch of the maximum of smoothed {variable}"}),
            "peak": ("layer", peak.values, dict(bits, long_name=f"smoothed maximum of {variable}")),
            "final": ("layer", final.values, dict(bits, long_name=f"{variable} at the last epoch")),
        },
        coords={"layer": traj["layer"].values},
    )
    ds["compression"] = (ds["peak"] - ds["final"]).assign_attrs(bits, long_name="peak - final")
    ds["compresses"] = ds["compression"] > tol
    return ds


def detect_phases(
    run: xr.Dataset, variable: str = "I_XT", window: int = 9, threshold: float = 1.0, tol: float = 0.01,
    rule: str = "snr_one",
) -> xr.Dataset:
    """Both phase boundaries side by side per layer: ``transition_epoch`` (gradients) and ``turn_epoch`` (info).

    ``rule`` picks the transition: ``"snr_one"`` (:func:`transition_epochs`: smoothed SNR first below ``threshold``
    after its maximum) or ``"snr_slope"`` (:func:`snr_slope_epochs`: minimum of d log SNR / d log epoch;
    ``threshold`` is then unused).  Also ``peak``, ``final``, ``compression`` (bits) and ``compresses`` from
    :func:`compression_turn`, and ``lag`` = turn_epoch / transition_epoch (1 when they coincide, as the theory
    claims).  The attrs record ``variable``, ``window``, ``threshold``, ``tol`` and ``rule``.
    """
    if not isinstance(rule, str) or rule not in TRANSITION_RULES:
        raise ValueError(f"rule must be one of {TRANSITION_RULES}, got {show(rule)}")
    threshold = _check_threshold(threshold)
    _check_window(window)
    turn = compression_turn(run, variable, window, tol)
    if rule == "snr_one":
        turn["transition_epoch"] = transition_epochs(run, threshold, window)
    else:
        turn["transition_epoch"] = snr_slope_epochs(run, window)
    turn["lag"] = turn["turn_epoch"] / turn["transition_epoch"]
    turn.attrs.update(variable=variable, window=int(window), threshold=float(threshold), tol=float(tol), rule=rule)
    return turn
