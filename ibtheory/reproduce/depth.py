"""Claim 6a: more hidden layers reach good generalisation in far fewer epochs, and compress sooner.

Runs: tanh networks with 1..6 hidden layers on the hard task; depth d uses the first d widths of
:data:`DEPTH_WIDTHS` = (10, 7, 5, 4, 3, 3) (the paper's 10-7-5-4-3, one more 3-unit layer for depth 6), the paper's
optimiser, batch and 80 % split, binning 30 bins on [-1, 1].

Numbers per depth: ``epochs_to_threshold``, the first snapshot epoch where the repeat-mean training error is at
most :data:`ERROR_THRESHOLD` of the size (``inf`` when never reached), and ``turn_epoch``, the earliest compression
turn (:func:`ibtheory.phases.compression_turn`) among hidden layers that compress by more than 0.05 bits (``inf``
when none does); final test accuracy.

Rule: with E_d = epochs_to_threshold (inf ranked last), the claim "holds" when the Spearman correlation of E_d
with d is <= -0.7 *and* E_6 <= E_1 / 2 ("far fewer"); "holds only under: deeper is faster but not by 2x" when the
correlation is <= -0.7 but the factor is missing, or "holds only under: depth k..." when E_d decreases for part of
the range (correlation in (-0.7, 0)); "does not hold here" when the correlation is >= 0 or no depth reaches the
threshold.

Reference: R. Shwartz-Ziv and N. Tishby, arXiv:1703.00810, sec. 3.4 and Fig. 6.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from scipy.stats import spearmanr

from .. import phases, tasks
from ..nets import train
from .plane import TOL
from .report import Section, check_size
from .runs import save_run

__all__ = ["run", "DEPTH_WIDTHS", "ERROR_THRESHOLD", "epochs_to_error", "earliest_turn"]

DEPTH_WIDTHS = (10, 7, 5, 4, 3, 3)
ERROR_THRESHOLD = {"tiny": 0.4, "quick": 0.1, "full": 0.02}
DEPTH_RUNS = {
    "tiny": {"repeats": 2, "epochs": 30, "snapshots": 8, "depths": (1, 2, 3)},
    "quick": {"repeats": 4, "epochs": 400, "snapshots": 20, "depths": (1, 2, 3, 4, 5, 6)},
    "full": {"repeats": 50, "epochs": 10_000, "snapshots": 300, "depths": (1, 2, 3, 4, 5, 6)},
}
RULE = ("E_d = first epoch with repeat-mean training error <= threshold (inf ranked last); holds when "
        "Spearman(E_d, d) <= -0.7 and E_deepest <= E_1 / 2; holds only under ... when the correlation is negative "
        "but weaker or the factor 2 is missing; does not hold when it is >= 0 or no depth reaches the threshold")


def epochs_to_error(run, threshold: float) -> float:
    """First snapshot epoch where the repeat-mean training error <= threshold (inf when never)."""
    err = 1.0 - run["train_accuracy"].mean("repeat").values
    hit = np.flatnonzero(err <= threshold)
    return float(run["epoch"].values[hit[0]]) if hit.size else np.inf


def earliest_turn(run, window: int) -> float:
    """Earliest compression-turn epoch among hidden layers that compress by > TOL bits (inf when none)."""
    turn = phases.compression_turn(run, window=window, tol=TOL).isel(layer=slice(0, -1))
    ep = turn["turn_epoch"].values[turn["compresses"].values]
    return float(ep.min()) if ep.size else np.inf


def run(out: Path, size: str, seed: int, *, device: str = "cpu") -> Section:
    """Run this claim's experiment at ``size`` ("tiny" | "quick" | "full") into ``out`` (.nc, .png) and return
    its :class:`~ibtheory.reproduce.report.Section`, with the verdict of the rule in the module docstring.
    ``device``: torch device of the training ("cpu", "cuda", "cuda:N")."""
    s = DEPTH_RUNS[check_size(size)]
    thr = ERROR_THRESHOLD[size]
    task = tasks.tishby()
    e_thr, e_turn, acc, curves, results = [], [], [], {}, []
    for d in s["depths"]:
        r = train(task, hidden=DEPTH_WIDTHS[:d], repeats=s["repeats"], epochs=s["epochs"],
                  snapshots=s["snapshots"], seed=seed, progress=False, device=device)
        results.append(save_run(r, Path(out) / f"depth_{d}.nc"))
        window = int(max(1, min(5, r.sizes["epoch"] // 3)))
        e_thr.append(epochs_to_error(r, thr))
        e_turn.append(earliest_turn(r, window))
        acc.append(float(r["test_accuracy"].isel(epoch=-1).mean()))
        curves[d] = (r["epoch"].values, 1.0 - r["train_accuracy"].mean("repeat").values)
    depths = np.array(s["depths"])
    e = np.array(e_thr)
    finite = np.isfinite(e)
    ranked = np.where(finite, e, np.nanmax(np.where(finite, e, 0)) + s["epochs"] + 1)
    rho = float(spearmanr(ranked, depths).statistic) if np.ptp(ranked) > 0 else 0.0
    if not finite.any() or rho >= 0:
        verdict = "does not hold here"
    elif rho <= -0.7 and e[-1] <= e[0] / 2:
        verdict = "holds"
    elif rho <= -0.7:
        verdict = "holds only under: deeper is faster, but not by a factor 2"
    else:
        verdict = "holds only under: part of the depth range (weak negative correlation)"
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.4), layout="constrained")
    cmap = plt.get_cmap("viridis")
    for i, (d, (ep, err)) in enumerate(curves.items()):
        axes[0].semilogx(np.maximum(ep, 1), err, color=cmap(i / max(len(curves) - 1, 1)), label=f"{d} hidden")
    axes[0].axhline(thr, color="k", ls=":", lw=1, label=f"threshold {thr:g}")
    axes[0].set_xlabel("epoch (0 drawn at 1)")
    axes[0].set_ylabel("training error (fraction, mean over repeats)")
    axes[0].legend(fontsize=7)
    cap = s["epochs"] * 1.5
    axes[1].plot(depths, np.where(np.isfinite(e), e, cap), "o-", label="epochs to error threshold")
    axes[1].plot(depths, np.where(np.isfinite(e_turn), e_turn, cap), "s--", label="epochs to first compression turn")
    axes[1].axhline(cap, color="0.6", lw=0.8, ls=":", label="never (drawn at 1.5 x epochs)")
    axes[1].set_yscale("log")
    axes[1].set_xlabel("number of hidden layers")
    axes[1].set_ylabel("epochs")
    axes[1].legend(fontsize=7)
    axes[1].set_title(f"Spearman(epochs to threshold, depth) = {rho:.2f}", fontsize=9)
    png = Path(out) / "depth.png"
    fig.savefig(png, dpi=100)
    plt.close(fig)
    numbers = {"depths": depths.tolist(), "error_threshold": thr, "epochs_to_threshold": e.tolist(),
               "epochs_to_compression_turn": e_turn, "spearman_epochs_vs_depth": rho,
               "test_accuracy": np.round(acc, 4).tolist()}
    return Section("depth", "Depth", "More hidden layers reach a low training error in far fewer epochs.", numbers,
                   [png], verdict, RULE, notes=f"{s['repeats']} repeats x {s['epochs']} epochs per depth.",
                   results=results)
