"""Figures of a training run: the information plane, the gradient phases, and the learning curves.

- :func:`plot_plane`: the paper's Fig. 3 style: one panel, every layer's repeat-averaged (I(X;T), I(T;Y)) at every
  snapshot, coloured by epoch on a logarithmic colour bar, with thin lines joining the layers of one epoch.
- :func:`plot_gradients`: per layer the repeat-averaged norm of the mean gradient and its batch-to-batch std, both
  divided by the weight norm, on log-log axes, with the drift/diffusion transition of :mod:`ibtheory.phases`
  marked (the paper's Fig. 4).
- :func:`plot_learning`: train/test cross-entropy (bits) and accuracy against epoch.
- :func:`plot_run`: the three side by side.

Every function takes a run Dataset from :func:`ibtheory.nets.train`, checks the variables it draws against
:data:`ibtheory.estimators.RUN_SCHEMA` (``ValueError`` naming a missing one), and returns the matplotlib Figure.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import xarray as xr  # noqa: E402
from matplotlib.colors import LogNorm  # noqa: E402

from .. import phases  # noqa: E402
from ..estimators import RUN_SCHEMA  # noqa: E402
from ..estimators.registry import plane  # noqa: E402

__all__ = ["plot_plane", "plot_gradients", "plot_learning", "plot_run"]


def _axes(ax):
    if ax is None:
        fig, ax = plt.subplots(figsize=(6, 4.5), layout="constrained")
        return fig, ax
    return ax.figure, ax


def _mean(v: xr.DataArray) -> xr.DataArray:
    return v.mean("repeat") if "repeat" in v.dims else v


def plot_plane(run: xr.Dataset, estimator: str = "binning", ax=None, cmap: str = "viridis"):
    """Information plane: repeat-mean (I(X;T), I(T;Y)) of every layer at every snapshot, coloured by epoch.

    ``estimator``: the name of a plane of the estimator registry, or of an estimator for its own plane ("kde": the
    noisy layer's upper bounds); :func:`ibtheory.estimators.registry.plane_names` lists them.
    """
    p = plane(estimator)
    xname, yname = p.variables
    RUN_SCHEMA.require(run, (xname, yname), ("epoch", "layer"))
    fig, ax = _axes(ax)
    ixt = _mean(run[xname]).transpose("epoch", "layer").values
    ity = _mean(run[yname]).transpose("epoch", "layer").values
    epochs = run["epoch"].values
    norm = LogNorm(vmin=max(epochs[epochs > 0].min(), 1), vmax=max(epochs.max(), 2))
    colours = plt.get_cmap(cmap)(norm(np.maximum(epochs, 1)))
    for i in range(len(epochs)):  # one thin line per snapshot joining its layers
        ax.plot(ixt[i], ity[i], color=colours[i], lw=0.4, alpha=0.35, zorder=1)
    sc = None
    for j in range(ixt.shape[1]):
        sc = ax.scatter(ixt[:, j], ity[:, j], c=np.maximum(epochs, 1), cmap=cmap, norm=norm, s=14,
                        edgecolors="none", zorder=2)
        ax.annotate(f"L{int(run['layer'].values[j])}", (ixt[-1, j], ity[-1, j]), xytext=(4, -10),
                    textcoords="offset points", fontsize=8)
    fig.colorbar(sc, ax=ax, label="epoch")
    ax.set_xlabel("I(X;T) [bits]")
    ax.set_ylabel("I(T;Y) [bits]")
    n_rep = run.sizes.get("repeat", 1)
    ax.set_title(f"{run.attrs.get('activation', '')} network, {p.name}, mean of {n_rep} repeats", fontsize=10)
    return fig


def plot_gradients(run: xr.Dataset, ax=None, window: int = 9, threshold: float = 1.0):
    """Repeat-mean gradient mean and std (relative to the weight norm) per layer, transition epochs marked."""
    RUN_SCHEMA.require(run, ("grad_mean_rel", "grad_std_rel", "grad_mean_norm", "grad_std_norm"), ("epoch", "layer"))
    fig, ax = _axes(ax)
    sub = run.isel(epoch=np.flatnonzero(run["epoch"].values > 0))
    trans = phases.transition_epochs(run, threshold=threshold, window=window)
    colours = plt.get_cmap("tab10")
    for j, layer in enumerate(sub["layer"].values):
        c = colours(j % 10)
        ep = sub["epoch"].values
        ax.loglog(ep, _mean(sub["grad_mean_rel"].sel(layer=layer)), color=c, lw=1.2, label=f"L{layer} mean")
        ax.loglog(ep, _mean(sub["grad_std_rel"].sel(layer=layer)), color=c, lw=1.0, ls="--", label=f"L{layer} std")
        t = float(trans.sel(layer=layer))
        if np.isfinite(t):
            ax.axvline(t, color=c, lw=0.8, ls=":", alpha=0.9)
    ax.set_xlabel("epoch")
    ax.set_ylabel("gradient norm / weight norm")
    ax.set_title("gradient mean (solid) and std (dashed); dotted: drift-to-diffusion transition", fontsize=9)
    ax.legend(fontsize=6, ncol=2)
    return fig


def plot_learning(run: xr.Dataset, ax=None):
    """Train/test cross-entropy (bits, left axis) and accuracy (right axis) against epoch, repeat means."""
    RUN_SCHEMA.require(run, ("train_loss", "test_loss", "train_accuracy", "test_accuracy"), ("epoch",))
    fig, ax = _axes(ax)
    ep = np.maximum(run["epoch"].values, 1)
    ax.semilogx(ep, _mean(run["train_loss"]), color="C0", label="train loss")
    ax.semilogx(ep, _mean(run["test_loss"]), color="C1", label="test loss")
    ax.set_xlabel("epoch (epoch 0 drawn at 1)")
    ax.set_ylabel("cross-entropy [bits]")
    ax2 = ax.twinx()
    ax2.semilogx(ep, _mean(run["train_accuracy"]), color="C0", ls="--", label="train accuracy")
    ax2.semilogx(ep, _mean(run["test_accuracy"]), color="C1", ls="--", label="test accuracy")
    ax2.set_ylabel("accuracy")
    ax2.set_ylim(0, 1)
    lines = ax.get_legend_handles_labels()
    lines2 = ax2.get_legend_handles_labels()
    ax.legend(lines[0] + lines2[0], lines[1] + lines2[1], fontsize=7, loc="center left")
    return fig


def plot_run(run: xr.Dataset, estimator: str = "binning"):
    """Information plane, gradient phases and learning curves in one figure (3 panels)."""
    fig, axes = plt.subplots(1, 3, figsize=(17, 4.8), layout="constrained")
    plot_plane(run, estimator, ax=axes[0])
    plot_gradients(run, ax=axes[1])
    plot_learning(run, ax=axes[2])
    return fig
