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

from ._validate import show
from .estimators import RUN_SCHEMA

__all__ = ["smooth", "snr", "transition_epochs", "compression_turn", "detect_phases"]


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


def transition_epochs(run: xr.Dataset, threshold: float = 1.0, window: int = 9) -> xr.DataArray:
    """Drift-to-diffusion transition epoch per layer (NaN where there is none); see the module rules."""
    if not (np.isfinite(threshold) and threshold > 0):
        raise ValueError(f"threshold must be a positive number, got {show(threshold)}")
    ratio = snr(run).transpose("epoch", "layer")
    ratio = ratio.isel(epoch=np.flatnonzero(ratio["epoch"].values > 0))
    log_snr = smooth(np.log10(ratio), window).values
    epochs = ratio["epoch"].values
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
    return xr.DataArray(out, coords={"layer": ratio["layer"].values}, dims="layer", name="transition_epoch",
                        attrs={"long_name": f"first epoch after the SNR maximum with smoothed SNR < {threshold}"})


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
    run: xr.Dataset, variable: str = "I_XT", window: int = 9, threshold: float = 1.0, tol: float = 0.01
) -> xr.Dataset:
    """Both phase boundaries side by side per layer: ``transition_epoch`` (gradients) and ``turn_epoch`` (info).

    Also ``peak``, ``final``, ``compression`` (bits) and ``compresses`` from :func:`compression_turn`, and
    ``lag`` = turn_epoch / transition_epoch (1 when they coincide, as the theory claims).
    """
    turn = compression_turn(run, variable, window, tol)
    turn["transition_epoch"] = transition_epochs(run, threshold, window)
    turn["lag"] = turn["turn_epoch"] / turn["transition_epoch"]
    turn.attrs.update(variable=variable, window=int(window), threshold=float(threshold), tol=float(tol))
    return turn
