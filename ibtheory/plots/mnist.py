"""Information planes of several runs side by side (the MNIST figure): layers as paths coloured by epoch.

Each panel shows, for every layer l, the points (I(X;T_l), I(T_l;Y)) at the snapshot epochs, joined in epoch order
and coloured by epoch on a symmetric-log scale (epoch 0 = initialisation has a colour), with the bounds
I(X;T) <= H(X) and I(T;Y) <= H(Y) as dashed lines.  Axes are in bits.
"""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import xarray as xr  # noqa: E402
from matplotlib.colors import SymLogNorm  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402

__all__ = ["plane_panel", "information_planes"]


_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*", "h", "<", ">")


def plane_panel(ax, i_xt: xr.DataArray, i_ty: xr.DataArray, norm, cmap: str = "viridis",
                layer_names: Sequence[str] | None = None):
    """Draw one information plane on ``ax`` from ``i_xt``, ``i_ty`` of dims (epoch, layer), bits: one marker shape
    per layer (legend), colour = epoch; return the last scatter artist (for a colour bar)."""
    epochs = i_xt["epoch"].values
    art = None
    for j, layer in enumerate(i_xt["layer"].values):
        x, y = i_xt.sel(layer=layer).values, i_ty.sel(layer=layer).values
        ax.plot(x, y, color="0.7", lw=0.8, zorder=1)
        art = ax.scatter(x, y, c=epochs, cmap=cmap, norm=norm, s=24, marker=_MARKERS[j % len(_MARKERS)],
                         edgecolors="k", linewidths=0.3, zorder=2)
    ax.set_xlabel("I(X;T) (bits)")
    ax.set_ylabel("I(T;Y) (bits)")
    ax.tick_params(labelbottom=True, labelleft=True)
    handles = [Line2D([], [], ls="", marker=_MARKERS[j % len(_MARKERS)], mfc="white", mec="k", ms=6,
                      label=layer_names[j] if layer_names is not None else f"layer {layer}")
               for j, layer in enumerate(i_xt["layer"].values)]
    ax.legend(handles=handles, loc="lower right", fontsize=7, title="layer (width)", title_fontsize=7,
              framealpha=0.8)
    return art


def information_planes(
    panels: Sequence[tuple[str, xr.DataArray, xr.DataArray]],
    h_x: float,
    h_y: float,
    ncols: int = 2,
    layer_names: Sequence[Sequence[str] | None] | None = None,
    suptitle: str | None = None,
) -> Figure:
    """A grid of information planes sharing one epoch colour scale.

    Parameters
    ----------
    panels : (title, I_XT, I_TY) per panel; I_XT and I_TY DataArrays over (epoch, layer) in bits (average over
        repeats before calling, or pass a pooled estimate such as ``I_XT_ensemble``).
    h_x, h_y : H(X) and H(Y) in bits, drawn as the bounds of the plane.
    ncols : panels per row.
    layer_names : per panel, names of its layers (default "L1", "L2", ...).
    suptitle : optional figure title.

    Returns
    -------
    matplotlib Figure with a colour bar "epoch" (symmetric-log scale).
    """
    if not panels:
        raise ValueError("panels must hold at least one (title, I_XT, I_TY) triple")
    nrows = int(np.ceil(len(panels) / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(5.0 * ncols, 4.2 * nrows), squeeze=False, sharex=True,
                             sharey=True, layout="constrained")
    emax = max(int(p[1]["epoch"].max()) for p in panels)
    norm = SymLogNorm(linthresh=1.0, vmin=0, vmax=max(emax, 1), base=10)
    art = None
    for k, (title, i_xt, i_ty) in enumerate(panels):
        ax = axes.flat[k]
        names = layer_names[k] if layer_names is not None else None
        art = plane_panel(ax, i_xt.transpose("epoch", "layer"), i_ty.transpose("epoch", "layer"), norm,
                          layer_names=names)
        ax.axvline(h_x, color="k", ls="--", lw=0.7)
        ax.axhline(h_y, color="k", ls="--", lw=0.7)
        ax.set_title(title, fontsize=10)
        ax.set_xlim(-0.2, h_x * 1.04 + 0.2)
        ax.set_ylim(-0.1, h_y * 1.06 + 0.05)
    for ax in axes.flat[len(panels):]:
        ax.set_visible(False)
    fig.colorbar(art, ax=axes, label="epoch", shrink=0.9)
    if suptitle:
        fig.suptitle(suptitle, fontsize=11)
    return fig
