"""Claim 1-2: every layer moves in the information plane through a fitting phase then a compression phase.

Run: the paper's tanh network (10-7-5-4-3 + softmax) on the hard task, binning estimate with 30 bins on [-1, 1]
(:func:`ibtheory.reproduce.runs.paper_run`); figure: the repeat-averaged plane coloured by epoch
(:func:`ibtheory.plots.plane.plot_plane`).

Numbers (per hidden layer, from :func:`ibtheory.phases.compression_turn` on the repeat mean): fitting = smoothed
peak of I(X;T) minus its value at initialisation, compression = peak minus final value (bits), turn epoch; the
data-processing check: fraction of (epoch, repeat) where I(X;T_l) >= I(X;T_{l+1}) - 1e-9 for all l.

Rule: a hidden layer *has both phases* when fitting > TOL and compression > TOL (TOL = 0.05 bits).  Verdict
"holds" when at least half of the hidden layers have both phases; "holds only under ... (layers ...)" when some but
fewer than half do; "does not hold here" when none does.

Reference: R. Shwartz-Ziv and N. Tishby, arXiv:1703.00810, Fig. 3.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import xarray as xr

from .. import phases
from ..plots.plane import plot_plane
from .report import Section
from .runs import hidden_layers, paper_run, save_run

__all__ = ["run", "TOL", "two_phase_layers", "phase_verdict"]

TOL = 0.05  # bits
RULE = ("a hidden layer has both phases when I(X;T) rises by > 0.05 bits to its smoothed peak and then falls by "
        "> 0.05 bits to its final value; holds when >= half of the hidden layers do, holds only under ... when "
        "some do, does not hold when none does")


def two_phase_layers(run: xr.Dataset, variable: str = "I_XT", tol: float = TOL, window: int = 5) -> xr.Dataset:
    """Per layer: ``fitting`` (peak - initial), ``compression`` (peak - final), ``turn_epoch`` and ``both``.

    Works on (epoch, layer[, repeat]) variables; the repeat mean is taken first.
    """
    window = int(max(1, min(window, run.sizes["epoch"] // 3)))
    turn = phases.compression_turn(run, variable, window=window, tol=tol)
    traj = run[variable].mean("repeat") if "repeat" in run[variable].dims else run[variable]
    turn["initial"] = traj.isel(epoch=0).assign_attrs(units="bits")
    turn["fitting"] = (turn["peak"] - turn["initial"]).assign_attrs(units="bits")
    turn["both"] = (turn["fitting"] > tol) & (turn["compression"] > tol)
    return turn


def phase_verdict(both: np.ndarray, layers: np.ndarray, what: str = "layers") -> str:
    """The rule's verdict from a boolean per hidden layer."""
    n, k = len(both), int(np.sum(both))
    if n and k * 2 >= n:
        return "holds"
    if k:
        return f"holds only under: {what} {', '.join(map(str, layers[both]))} (of {n})"
    return "does not hold here"


def dpi_fraction(run: xr.Dataset, variable: str = "I_XT") -> float:
    """Fraction of (epoch, repeat) where the layers' I(X;T) decrease with depth (data-processing inequality)."""
    v = run[variable].transpose("epoch", "repeat", "layer").values
    return float(np.mean(np.all(np.diff(v, axis=-1) <= 1e-9, axis=-1)))


def run(out: Path, size: str, seed: int, *, device: str = "cpu") -> Section:
    """Run this claim's experiment at ``size`` ("tiny" | "quick" | "full") into ``out`` (.nc, .png) and return
    its :class:`~ibtheory.reproduce.report.Section`, with the verdict of the rule in the module docstring.
    ``device``: torch device of the training ("cpu", "cuda", "cuda:N")."""
    r = paper_run(size, seed, "tanh", device=device)
    nc = save_run(r, Path(out) / "plane_tanh.nc")
    hid = hidden_layers(r)
    ph = two_phase_layers(r).sel(layer=hid)
    fig = plot_plane(r)
    fig.axes[0].set_title(f"tanh 10-7-5-4-3, 30 bins, mean of {r.sizes['repeat']} repeats, "
                          f"{int(r['epoch'].max())} epochs", fontsize=9)
    png = Path(out) / "plane_tanh.png"
    fig.savefig(png, dpi=100)
    plt.close(fig)
    numbers = {
        "layers": hid.tolist(),
        "fitting_bits": ph["fitting"].values.round(3).tolist(),
        "compression_bits": ph["compression"].values.round(3).tolist(),
        "turn_epoch": ph["turn_epoch"].values.tolist(),
        "final_I_TY_last_hidden_bits": float(r["I_TY"].isel(epoch=-1).sel(layer=hid[-1]).mean()),
        "dpi_ordered_fraction": dpi_fraction(r),
        "test_accuracy": float(r["test_accuracy"].isel(epoch=-1).mean()),
    }
    return Section("plane", "Information plane", "Layers first fit (I(X;T), I(T;Y) grow) then compress "
                   "(I(X;T) shrinks) - tanh, binning.", numbers, [png],
                   phase_verdict(ph["both"].values, hid), RULE,
                   notes=f"{r.sizes['repeat']} repeats x {int(r['epoch'].max())} epochs, "
                   f"{r.sizes['epoch']} snapshots.", results=[nc])
