"""Figure of an exact IB curve: the achievable curve with its certified band, the solutions coloured by beta, the
critical betas, and the slope 1/beta of the curve at a few betas (F'(R) = 1/beta at the solution of beta).

Left panel: I(T;Y) against I(X;T) (bits).  Right panel: I(X;T), I(T;Y) and the number of effective clusters
against beta (log scale), with the critical betas as vertical lines.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import xarray as xr
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure

from ..ib import curve_upper, curve_value

__all__ = ["plot_ib_curve"]


def plot_ib_curve(curve: xr.Dataset, title: str | None = None, n_slopes: int = 4) -> Figure:
    """Plot a Dataset from :func:`ibtheory.ib.ib_curve`; returns the Figure (Agg backend, nothing shown)."""

    fig, (ax, bx) = plt.subplots(1, 2, figsize=(12, 5), gridspec_kw={"width_ratios": [1.3, 1]})
    beta = curve["beta"].values
    ixt, ity = curve["I_XT"].values, curve["I_TY"].values
    I_XY = float(curve.attrs["I_XY"])
    r_max = max(float(ixt.max()) * 1.1, 1e-3)
    R = np.linspace(0.0, r_max, 600)
    ax.plot(R, curve_value(curve, R), color="k", lw=1.4, label="achievable curve F(R) (upper concave hull)", zorder=2)
    if "gap" in curve:
        up = curve_upper(curve, R)
        width = float(np.max(up - curve_value(curve, R)))
        ax.fill_between(R, curve_value(curve, R), up, color="tab:orange", alpha=0.45, lw=0,
                        label=f"certified band (max width {width:.1g} bits; max gap {float(curve.gap.max()):.1g})")
    sc = ax.scatter(ixt, ity, c=beta, cmap="viridis", norm=LogNorm(beta.min(), beta.max()), s=9, zorder=3,
                    label="solutions (colour: beta)")
    fig.colorbar(sc, ax=ax, label="beta (trade-off, unit-free)")
    ax.plot(R, np.minimum(R, I_XY), color="0.6", ls=":", lw=1, label="min(R, I(X;Y))")
    # tangent lines of slope 1/beta at a few solutions
    picks = np.unique(np.searchsorted(ixt, np.linspace(0.1, 0.8, n_slopes) * ixt.max()).clip(0, len(beta) - 1))
    for i in picks:
        if ixt[i] <= 0:
            continue
        dx = 0.05 * r_max
        xs = np.array([ixt[i] - dx, ixt[i] + dx])
        ax.plot(xs, ity[i] + (xs - ixt[i]) / beta[i], color="tab:red", lw=1, alpha=0.8)
        ax.annotate(f"slope 1/{beta[i]:.3g}", (ixt[i], ity[i]), textcoords="offset points", xytext=(6, -12),
                    fontsize=7, color="tab:red")
    crit = curve["critical_betas"].values
    if crit.size:
        cx, cy = np.interp(crit, beta, ixt), np.interp(crit, beta, ity)
        ax.scatter(cx, cy, marker="x", color="tab:red", s=30, zorder=4, label=f"{crit.size} critical betas")
    ax.set_xlabel("I(X;T) (bits)")
    ax.set_ylabel("I(T;Y) (bits)")
    ax.set_xlim(0, r_max)
    ax.set_ylim(0, I_XY * 1.05)
    ax.legend(loc="lower right", fontsize=7)
    ax.set_title(title or f"IB curve, I(X;Y) = {I_XY:.4f} bits")

    bx.semilogx(beta, ixt, color="tab:blue", label="I(X;T)")
    bx.semilogx(beta, ity, color="tab:green", label="I(T;Y)")
    bx.set_xlabel("beta")
    bx.set_ylabel("information (bits)")
    for c in crit:
        bx.axvline(c, color="tab:red", lw=0.6, alpha=0.5)
    cx2 = bx.twinx()
    cx2.step(beta, curve["n_clusters"].values, where="post", color="0.4", lw=1, label="effective clusters")
    cx2.set_ylabel("effective clusters (count)")
    h1, l1 = bx.get_legend_handles_labels()
    h2, l2 = cx2.get_legend_handles_labels()
    bx.legend(h1 + h2, l1 + l2, loc="center right", fontsize=7)
    bx.set_title("phase transitions (red: critical betas)")
    fig.tight_layout()
    return fig
