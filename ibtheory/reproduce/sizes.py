"""Claim 6b: the amount of training data changes where the layers converge (5 %, 45 %, 85 % of the patterns).

Runs: the paper's tanh network on the hard task with ``train_fraction`` 0.05, 0.45 and 0.85 (same seed, so the same
initial weights), binning with 30 bins on [-1, 1] over all 4096 patterns.  Figure: the three information planes side
by side (:func:`ibtheory.plots.plane.plot_plane`, coloured by epoch).

The paper (Fig. 5 of arXiv:1703.00810) shows that with little data the last layers end with lower I(T;Y) (they fit
the training set, which generalises poorly) and that more data pushes the layers higher, toward I(X;Y).

Rule: with I_f the repeat-mean final I(T;Y) of the last hidden layer at fraction f, the claim "holds" when
I_0.05 < I_0.45 < I_0.85 with each step larger than 0.01 bits; "holds only under: 5 % vs 85 %" when only
I_0.85 - I_0.05 > 0.01 bits; "does not hold here" otherwise.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from .. import tasks
from ..nets import train
from ..plots.plane import plot_plane
from .report import Section, check_size
from .runs import PAPER_HIDDEN, hidden_layers, save_run

__all__ = ["run", "FRACTIONS", "SIZE_RUNS", "STEP"]

FRACTIONS = (0.05, 0.45, 0.85)
STEP = 0.01  # bits
SIZE_RUNS = {
    "tiny": {"repeats": 2, "epochs": 30, "snapshots": 6},
    "quick": {"repeats": 4, "epochs": 400, "snapshots": 16},
    "full": {"repeats": 50, "epochs": 10_000, "snapshots": 300},
}
RULE = ("with I_f the repeat-mean final I(T;Y) of the last hidden layer at training fraction f: holds when "
        "I_0.05 < I_0.45 < I_0.85, each step > 0.01 bits; holds only under 5 % vs 85 % when only the end points "
        "differ by > 0.01 bits; does not hold otherwise")


def run(out: Path, size: str, seed: int, *, device: str = "cpu") -> Section:
    """Run this claim's experiment at ``size`` ("tiny" | "quick" | "full") into ``out`` (.nc, .png) and return
    its :class:`~ibtheory.reproduce.report.Section`, with the verdict of the rule in the module docstring.
    ``device``: torch device of the training ("cpu", "cuda", "cuda:N")."""
    s = SIZE_RUNS[check_size(size)]
    task = tasks.tishby()
    fig, axes = plt.subplots(1, len(FRACTIONS), figsize=(16, 4.6), layout="constrained")
    final_ity, final_ixt, acc, results = [], [], [], []
    for ax, frac in zip(axes, FRACTIONS, strict=True):
        r = train(task, hidden=PAPER_HIDDEN, repeats=s["repeats"], epochs=s["epochs"], snapshots=s["snapshots"],
                  train_fraction=frac, seed=seed, progress=False, device=device)
        results.append(save_run(r, Path(out) / f"sizes_{round(frac * 100)}.nc"))
        last = r.isel(epoch=-1).mean("repeat")
        hid = hidden_layers(r)
        final_ity.append(last["I_TY"].sel(layer=hid).values)
        final_ixt.append(last["I_XT"].sel(layer=hid).values)
        acc.append(float(last["test_accuracy"]))
        plot_plane(r, ax=ax)
        ax.set_title(f"training set {frac:.0%} of 4096 patterns; test accuracy {acc[-1]:.3f}", fontsize=9)
    png = Path(out) / "sizes.png"
    fig.savefig(png, dpi=100)
    plt.close(fig)
    top = np.array([v[-1] for v in final_ity])
    steps = np.diff(top)
    if np.all(steps > STEP):
        verdict = "holds"
    elif top[-1] - top[0] > STEP:
        verdict = "holds only under: 5 % vs 85 % (not monotone through 45 %)"
    else:
        verdict = "does not hold here"
    numbers = {"fractions": list(FRACTIONS), "final_I_TY_last_hidden_bits": top.round(4).tolist(),
               "test_accuracy": np.round(acc, 4).tolist()}
    for frac, ity, ixt in zip(FRACTIONS, final_ity, final_ixt, strict=True):
        numbers[f"final_I_TY_per_layer_{round(frac * 100)}pct_bits"] = ity.round(3).tolist()
        numbers[f"final_I_XT_per_layer_{round(frac * 100)}pct_bits"] = ixt.round(3).tolist()
    return Section("sizes", "Training-set size", "More training data moves the converged layers up to higher "
                   "I(T;Y) (5 % < 45 % < 85 %).", numbers, [png], verdict, RULE,
                   notes=f"{s['repeats']} repeats x {s['epochs']} epochs per fraction.", results=results)
