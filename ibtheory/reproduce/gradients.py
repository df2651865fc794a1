"""Claim 3: per-layer gradients go from drift (mean >> std) to diffusion (mean << std) when the layer turns from
fitting to compression.

Run: the shared tanh run (:func:`ibtheory.reproduce.runs.paper_run`).  Per layer, :func:`ibtheory.phases.
detect_phases` gives the drift-to-diffusion ``transition_epoch`` (smoothed repeat-mean SNR = |mean g| / std g first
below 1 after its maximum) and the information-plane ``turn_epoch`` (maximum of the smoothed repeat-mean I(X;T)).
Figure: :func:`ibtheory.plots.plane.plot_gradients` (mean and std of the gradient norm relative to the weight norm,
transitions dotted) beside the plane.

Rule: a hidden layer is *aligned* when both epochs exist and |log10(turn / transition)| <= 0.5 (within a factor
~3 on the log-epoch axis the paper plots), and when the turn is a real compression (peak - final > 0.05 bits).
Verdict "holds" when at least half of the hidden layers are aligned; "holds only under: layers ..." when some are;
"does not hold here" when none is (also when no layer has a drift-to-diffusion transition within the run).

Reference: R. Shwartz-Ziv and N. Tishby, arXiv:1703.00810, Fig. 4.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from .. import phases
from ..plots.plane import plot_gradients, plot_plane
from .plane import TOL, phase_verdict
from .report import Section
from .runs import hidden_layers, paper_run

__all__ = ["run", "MAX_LOG_LAG"]

MAX_LOG_LAG = 0.5  # decades
RULE = ("a hidden layer is aligned when its drift-to-diffusion transition (smoothed SNR < 1) and its compression "
        "turn (peak of smoothed I(X;T), compression > 0.05 bits) are within 0.5 decades of epochs; holds when >= "
        "half of the hidden layers are aligned, holds only under ... when some are, does not hold when none is")


def run(out: Path, size: str, seed: int, *, device: str = "cpu") -> Section:
    """Run this claim's experiment at ``size`` ("tiny" | "quick" | "full") into ``out`` (.nc, .png) and return
    its :class:`~ibtheory.reproduce.report.Section`, with the verdict of the rule in the module docstring.
    ``device``: torch device of the training ("cpu", "cuda", "cuda:N")."""
    r = paper_run(size, seed, "tanh", device=device)
    window = int(max(1, min(5, r.sizes["epoch"] // 3)))
    ph = phases.detect_phases(r, window=window, tol=TOL)
    hid = hidden_layers(r)
    ph_h = ph.sel(layer=hid)
    with np.errstate(divide="ignore", invalid="ignore"):  # a turn at epoch 0 gives lag 0: -inf, not aligned
        log_lag = np.log10(ph_h["lag"].values)
    aligned = np.isfinite(log_lag) & (np.abs(np.nan_to_num(log_lag, nan=np.inf)) <= MAX_LOG_LAG) & \
        ph_h["compresses"].values
    fig, axes = plt.subplots(1, 2, figsize=(13, 4.8), layout="constrained")
    plot_gradients(r, ax=axes[0], window=window)
    plot_plane(r, ax=axes[1])
    for t in ph_h["turn_epoch"].values:
        axes[0].axvline(max(t, 1), color="k", lw=0.5, alpha=0.3)
    axes[0].set_title("gradient mean (solid) / std (dashed); dotted: SNR = 1 transition; grey: I(X;T) turns",
                      fontsize=8)
    png = Path(out) / "gradients.png"
    fig.savefig(png, dpi=100)
    plt.close(fig)
    numbers = {
        "layers": hid.tolist(),
        "transition_epoch": ph_h["transition_epoch"].values.tolist(),
        "turn_epoch": ph_h["turn_epoch"].values.tolist(),
        "log10_turn_over_transition": np.round(log_lag, 3).tolist(),
        "compresses": ph_h["compresses"].values.tolist(),
        "aligned": aligned.tolist(),
        "output_layer_transition_epoch": float(ph["transition_epoch"].values[-1]),
    }
    return Section("gradients", "Gradient phases", "The drift-to-diffusion transition of the gradients coincides "
                   "with the compression turn of each layer.", numbers, [png],
                   phase_verdict(aligned, hid), RULE,
                   notes=f"smoothing window {window} snapshots; SNR threshold 1.")
