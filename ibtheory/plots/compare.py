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

from .. import store
from ..compare import beta_star_stats
from ..estimators.registry import plane, planes

__all__ = ["plot_layers_on_curve", "plot_distance_over_epochs", "plot_training_sizes", "plot_estimators_on_curve",
           "beta_star_label", "FIT_OF_ESTIMATOR"]


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


#: Which fitted beta* a figure of an estimator's points annotates: the binned points carry the fits of the merged
#: binned encoder (the one :mod:`ibtheory.reproduce.bound` reports; merging keeps I(T;Y) and the decoders).
FIT_OF_ESTIMATOR = {plane("binning").suffix: "_merged", "_merged": "_merged", "_noisy": "_noisy"}
#: Names of the encoders that :func:`ibtheory.compare.against_bound` rebuilds, beside the registry's planes.
_REBUILT = {"_merged": "binning, equal decoders merged", "_noisy": "noisy layer"}


def _name(estimator: str) -> str:
    """What a figure calls the points of suffix ``estimator``: a registered plane's label or a rebuilt encoder's."""
    return _REBUILT.get(estimator) or next((p.label for p in planes() if p.suffix == estimator), estimator)


def _plane_of(comparison: xr.Dataset, estimator: str) -> tuple[xr.DataArray, xr.DataArray, str]:
    """I(X;T), I(T;Y) of an estimator and their epoch dimension: the run's ("epoch") or the fitted encoders'
    ("sc_epoch", for "_merged" and "_noisy")."""
    if f"I_XT{estimator}" in comparison:
        return comparison[f"I_XT{estimator}"], comparison[f"I_TY{estimator}"], "epoch"
    if f"I_XT_sc{estimator}" in comparison:
        return comparison[f"I_XT_sc{estimator}"], comparison[f"I_TY_sc{estimator}"], "sc_epoch"
    raise ValueError(f"comparison has no information-plane variables for estimator {estimator!r} "
                     f"(neither I_XT{estimator} nor I_XT_sc{estimator})")


def beta_star_label(comparison: xr.Dataset, layer, fit: str) -> str | None:
    """The annotation of one layer's fitted beta* (last sc_epoch): the geometric mean over repeats, as
    :func:`ibtheory.compare.final_summary` reports it, with its spread in decades; "≥"/"≤" when some repeat's fit
    sits at the upper/lower end of the search range.  None when the comparison holds no such fit."""
    if f"beta_star{fit}" not in comparison:
        return None
    b = comparison[f"beta_star{fit}"].sel(layer=layer).isel(sc_epoch=-1)
    if "repeat" not in b.dims:
        b = b.expand_dims("repeat")
    mean, std = beta_star_stats(b)
    if not np.isfinite(float(mean)):
        return None
    edge = comparison.get(f"at_bound{fit}")
    sign = "="
    if edge is not None:
        e = edge.sel(layer=layer).isel(sc_epoch=-1).values.astype(bool) & np.isfinite(b.values)
        if e.any():  # which end: the recorded search range (against_bound's config), else beta* above 1
            hi = float(store.config_of(comparison).get("beta_range", [np.nan, 1.0])[1])
            sign = "≥" if float(np.nanmax(b.values[e])) >= (hi * (1 - 1e-9) if np.isfinite(hi) else 1.0) else "≤"
    spread = f" ±{float(std):.2f} dec" if b.sizes["repeat"] > 1 and np.isfinite(float(std)) else ""
    return f"β*{sign}{10 ** float(mean):.3g}{spread}"


def plot_layers_on_curve(
    comparison: xr.Dataset, curve: xr.Dataset, estimator: str = "", ax: Axes | None = None, title: str | None = None,
    fit: str | None = None,
) -> Figure:
    """The IB curve (with its certified band) and every layer: mean trajectory over epochs (thin line) and final
    point with error bars of one standard deviation over repeats; where beta* was fitted the point is numbered and
    the legend gives the layer's beta*.

    estimator: suffix of the information-plane variables (a registered plane's, "" for binning, or "_noisy"/"_merged"
    for the rebuilt encoders' points at the fitted snapshots).  fit: suffix of the beta* fits to annotate (default
    :data:`FIT_OF_ESTIMATOR`: the merged binned fits for binning, the noisy fits for the noisy layer); the label is
    :func:`beta_star_label` (geometric mean over repeats, as ``final_summary`` reports).
    """
    fig, ax = (ax.figure, ax) if ax is not None else plt.subplots(figsize=(6.4, 4.8))
    ixt, ity, ep = _plane_of(comparison, estimator)
    fit = FIT_OF_ESTIMATOR.get(estimator) if fit is None else fit
    _draw_curve(ax, curve, float(ixt.max()) * 1.02)
    layers = comparison["layer"].values
    colours = _layer_colours(layers.size)
    has_repeat = "repeat" in ixt.dims
    for j, lay in enumerate(layers):
        x, y = ixt.sel(layer=lay), ity.sel(layer=lay)
        mx, my = (x.mean("repeat"), y.mean("repeat")) if has_repeat else (x, y)
        if mx.sizes[ep] > 1:
            ax.plot(mx, my, color=colours[j], lw=0.8, alpha=0.6)
        fx, fy = x.isel({ep: -1}), y.isel({ep: -1})
        sx, sy = (float(fx.std("repeat")), float(fy.std("repeat"))) if has_repeat else (0.0, 0.0)
        px, py = float(fx.mean()), float(fy.mean())
        text = beta_star_label(comparison, lay, fit) if fit is not None else None
        ax.errorbar(px, py, xerr=sx, yerr=sy, fmt="o", color=colours[j], ms=6, capsize=3,
                    label=f"layer {lay}" + (f": {text}" if text else ""))
        if text:  # the point carries its layer number; the legend its beta* (final points crowd near the top)
            ax.annotate(str(lay), (px, py), textcoords="offset points", xytext=(4, 4), fontsize=7,
                        color=colours[j])
    ax.set_xlabel("I(X;T) [bits]")
    ax.set_ylabel("I(T;Y) [bits]")
    ax.set_title(title or f"layers against the IB bound ({_name(estimator)})")
    ax.legend(fontsize=7, loc="lower right")
    ax.set_ylim(bottom=0)
    ax.set_xlim(left=0)
    return fig


def plot_estimators_on_curve(
    comparison: xr.Dataset, curve: xr.Dataset, estimators: tuple[str, ...] = ("", "_noisy"), title: str | None = None
) -> Figure:
    """One :func:`plot_layers_on_curve` panel per estimator the comparison carries (default: binning and, where the
    run kept its activations, the noisy layer), sharing the I(T;Y) axis."""
    present = [e for e in estimators if f"I_XT{e}" in comparison or f"I_XT_sc{e}" in comparison]
    if not present:
        raise ValueError(f"comparison carries none of the estimators {estimators!r}")
    fig, axes = plt.subplots(1, len(present), figsize=(6.0 * len(present), 4.8), sharey=True, squeeze=False)
    for ax, est in zip(axes[0], present, strict=True):
        plot_layers_on_curve(comparison, curve, estimator=est, ax=ax)
        ax.set_title(_name(est), fontsize=10)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def plot_distance_over_epochs(
    comparison: xr.Dataset, gaps: tuple[str, ...] = ("relevance_gap", "compression_gap"), title: str | None = None
) -> Figure:
    """Gaps to the bound (bits) over epochs per layer, one panel per gap (default: the binning estimate's relevance
    and compression gaps): repeat mean with a band of one standard deviation.  Epoch 0 (initialisation) is drawn at
    1 on the logarithmic epoch axis."""
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
    binning = all(g in ("relevance_gap", "compression_gap", "upper_gap") for g in gaps)
    fig.suptitle(title or ("binning estimate; " if binning else "") + "bands: ±1 std over repeats", fontsize=10)
    fig.tight_layout()
    return fig


def plot_training_sizes(comparisons: Mapping[str, xr.Dataset], curve: xr.Dataset, estimator: str = "") -> Figure:
    """One panel per training-set size (e.g. {"5 %": ..., "45 %": ..., "85 %": ...}) of layers on the curve: each
    layer's trajectory and final point with error bars over repeats (:func:`plot_layers_on_curve`), one shared
    I(T;Y) axis, so that the sizes' final points can be compared (Shwartz-Ziv & Tishby 2017, Fig. 6)."""
    if not comparisons:
        raise ValueError("comparisons must hold at least one labelled comparison Dataset")
    fig, axes = plt.subplots(1, len(comparisons), figsize=(4.6 * len(comparisons), 4.2), sharey=True, squeeze=False)
    for ax, (label, comp) in zip(axes[0], comparisons.items(), strict=True):
        plot_layers_on_curve(comp, curve, estimator=estimator, ax=ax, title=f"training set {label}")
    fig.tight_layout()
    return fig
