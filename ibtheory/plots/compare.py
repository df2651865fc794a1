"""Figures of layers against the IB bound: the curve with its certified band and the layers on it, distances to
the bound over epochs, and several training-set sizes side by side (Shwartz-Ziv & Tishby 2017, Fig. 4-5 style).
"""

from __future__ import annotations

from collections.abc import Mapping

import matplotlib.pyplot as plt
import numpy as np
import xarray as xr
from matplotlib.axes import Axes
from matplotlib.figure import Figure

__all__ = ["plot_layers_on_curve", "plot_distance_over_epochs", "plot_training_sizes"]


def _layer_colours(n: int) -> np.ndarray:
    return plt.get_cmap("viridis")(np.linspace(0.05, 0.9, n))


def _draw_curve(ax: Axes, curve: xr.Dataset, r_max: float) -> None:
    hx, hy = curve["hull_I_XT"].values, curve["hull_I_TY"].values
    if r_max > hx[-1]:  # F(R) = I(X;Y) beyond the minimal sufficient statistic
        hx, hy = np.append(hx, r_max), np.append(hy, hy[-1])
    ax.plot(hx, hy, color="k", lw=1.5, label="IB curve F(R)")
    if "I_TY_upper" in curve:
        order = np.argsort(curve["I_XT"].values)
        width = float(np.max(curve["I_TY_upper"].values - curve["I_TY"].values))
        ax.fill_between(curve["I_XT"].values[order], curve["I_TY"].values[order], curve["I_TY_upper"].values[order],
                        color="tab:orange", alpha=0.5, lw=2, edgecolor="tab:orange",
                        label=f"certified band (width <= {width:.1g} bits)")
    top = float(curve.attrs.get("I_XY", curve["hull_I_TY"].max()))
    ax.axhline(top, color="0.6", ls=":", lw=1, label=f"I(X;Y) = {top:.3f} bits")


def plot_layers_on_curve(
    comparison: xr.Dataset, curve: xr.Dataset, estimator: str = "", ax: Axes | None = None, title: str | None = None
) -> Figure:
    """The IB curve (with its certified band) and every layer: mean trajectory over epochs (thin line) and final
    point with error bars of one standard deviation over repeats, annotated with beta* where it was fitted.

    estimator: suffix of the information-plane variables ("" binning, "_kde_upper", ...).
    """
    fig, ax = (ax.figure, ax) if ax is not None else plt.subplots(figsize=(6.4, 4.8))
    ixt, ity = comparison[f"I_XT{estimator}"], comparison[f"I_TY{estimator}"]
    _draw_curve(ax, curve, float(ixt.max()) * 1.02)
    layers = comparison["layer"].values
    colours = _layer_colours(layers.size)
    has_repeat = "repeat" in ixt.dims
    for j, lay in enumerate(layers):
        x, y = ixt.sel(layer=lay), ity.sel(layer=lay)
        mx, my = (x.mean("repeat"), y.mean("repeat")) if has_repeat else (x, y)
        ax.plot(mx, my, color=colours[j], lw=0.8, alpha=0.6)
        fx, fy = x.isel(epoch=-1), y.isel(epoch=-1)
        sx, sy = (float(fx.std("repeat")), float(fy.std("repeat"))) if has_repeat else (0.0, 0.0)
        px, py = float(fx.mean()), float(fy.mean())
        ax.errorbar(px, py, xerr=sx, yerr=sy, fmt="o", color=colours[j], ms=6, capsize=3, label=f"layer {lay}")
        if "beta_star" in comparison and not estimator:
            b = comparison["beta_star"].sel(layer=lay).isel(sc_epoch=-1)
            edge = bool(comparison["at_bound"].sel(layer=lay).isel(sc_epoch=-1).all())
            text = f"β*{'≥' if edge else '='}{float(np.median(b)):.3g}"
            ax.annotate(text, (px, py), textcoords="offset points", xytext=(-10, -14 - 11 * (j % 3)),
                        fontsize=8, color=colours[j], ha="right")
    ax.set_xlabel("I(X;T) [bits]")
    ax.set_ylabel("I(T;Y) [bits]")
    ax.set_title(title or "layers against the IB bound")
    ax.legend(fontsize=7, loc="lower right")
    ax.set_ylim(bottom=0)
    ax.set_xlim(left=0)
    return fig


def plot_distance_over_epochs(
    comparison: xr.Dataset, gaps: tuple[str, ...] = ("relevance_gap", "compression_gap")
) -> Figure:
    """Gaps to the bound (bits) over epochs per layer, one panel per gap: repeat mean with a band of one standard
    deviation.  Epoch 0 (initialisation) is drawn at 1 on the logarithmic epoch axis."""
    missing = [g for g in gaps if g not in comparison]
    if missing:
        raise ValueError(f"comparison has no variable(s) {missing}")
    fig, axes = plt.subplots(1, len(gaps), figsize=(5.6 * len(gaps), 4.0), squeeze=False)
    epochs = np.maximum(comparison["epoch"].values, 1)
    colours = _layer_colours(comparison.sizes["layer"])
    for ax, gap in zip(axes[0], gaps, strict=True):
        var = comparison[gap]
        for j, lay in enumerate(comparison["layer"].values):
            v = var.sel(layer=lay)
            m = v.mean("repeat") if "repeat" in v.dims else v
            ax.plot(epochs, m, color=colours[j], label=f"layer {lay}")
            if "repeat" in v.dims:
                s = v.std("repeat")
                ax.fill_between(epochs, m - s, m + s, color=colours[j], alpha=0.2, lw=0)
        ax.set_xscale("log")
        ax.set_xlabel("epoch (0 drawn at 1)")
        ax.set_ylabel(f"{gap.replace('_', ' ')} [bits]")
        ax.axhline(0, color="0.5", lw=0.8)
        ax.set_title(f"{gap.replace('_', ' ')} to the IB bound")
    axes[0, 0].legend(fontsize=7)
    fig.tight_layout()
    return fig


def plot_training_sizes(comparisons: Mapping[str, xr.Dataset], curve: xr.Dataset) -> Figure:
    """One panel per training-set size (e.g. {"5 %": ..., "45 %": ..., "85 %": ...}) of layers on the curve."""
    if not comparisons:
        raise ValueError("comparisons must hold at least one labelled comparison Dataset")
    fig, axes = plt.subplots(1, len(comparisons), figsize=(4.6 * len(comparisons), 4.2), sharey=True, squeeze=False)
    for ax, (label, comp) in zip(axes[0], comparisons.items(), strict=True):
        plot_layers_on_curve(comp, curve, ax=ax, title=f"training set {label}")
    fig.tight_layout()
    return fig
