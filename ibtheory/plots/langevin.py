"""Langevin figures: density over time against the Gibbs density, free-energy decay, Kramers check, SGD vs
Langevin/Lyapunov.  Each function takes results (Datasets/arrays) and returns a matplotlib Figure (Agg backend)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import xarray as xr  # noqa: E402
from matplotlib.colors import Normalize  # noqa: E402
from matplotlib.patches import Ellipse  # noqa: E402

__all__ = ["density_over_time", "free_energy_decay", "kramers_check", "sgd_vs_lyapunov", "sgd_vs_langevin"]


def density_over_time(ds: xr.Dataset, gibbs_density: xr.DataArray | None = None, n_curves: int = 8,
                      title: str = "") -> plt.Figure:
    """Histogram densities of a ``record="histogram"`` run at ``n_curves`` times (colour = time, colour bar),
    with the exact Gibbs density (black, dashed)."""
    fig, ax = plt.subplots(figsize=(6.4, 4.2), constrained_layout=True)
    times = ds["time"].values
    idx = np.unique(np.round(np.geomspace(1, len(times), n_curves)).astype(int) - 1)
    idx = np.unique(np.concatenate([[0], idx]))
    norm = Normalize(times[idx].min(), times[idx].max())
    cmap = plt.get_cmap("viridis")
    for i in idx:
        ax.step(ds["x"].values, ds["density"].values[i], where="mid", color=cmap(norm(times[i])), lw=1.2)
    edges = ds["x_edges"].values
    if gibbs_density is not None:
        ax.plot(gibbs_density["x"].values, gibbs_density.values, "k--", lw=1.5, label="Gibbs exp(-beta L)/Z")
        ax.legend(loc="upper right", frameon=False)
        top = 1.8 * float(gibbs_density.max())
        if ds["density"].values[idx].max() > top:  # a point mass at t = 0 would flatten everything else
            ax.set_ylim(0, top)
            ax.text(0.02, 0.96, "y axis clipped (early densities are peaked)", transform=ax.transAxes,
                    fontsize=8, va="top", color="gray")
    ax.set_xlim(edges[0], edges[-1])
    fig.colorbar(plt.cm.ScalarMappable(norm=norm, cmap=cmap), ax=ax, label="time t")
    ax.set_xlabel("position x")
    ax.set_ylabel("density p_t(x)  (1 / units of x)")
    ax.set_title(title or f"Langevin ({ds.attrs.get('scheme', '')}, beta = {ds.attrs.get('beta', '')}): "
                 "density over time")
    return fig


def free_energy_decay(ds: xr.Dataset, title: str = "") -> plt.Figure:
    """Free energy F[p_t] - F_Gibbs (energy units) and KL(p_t || Gibbs) (bits) and TV against time (log scale),
    from :func:`ibtheory.dynamics.convergence`."""
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.8), constrained_layout=True)
    t = ds["time"].values
    excess = ds["free_energy"].values - ds.attrs["gibbs_free_energy_binned"]
    ax1.plot(t, np.maximum(excess, 1e-12), "C0", lw=1.5)
    ax1.set_yscale("log")
    ax1.set_xlabel("time t")
    ax1.set_ylabel("F[p_t] - F_Gibbs  (energy units of L)")
    ax1.set_title("free energy (non-increasing)")
    ax2.plot(t, np.maximum(ds["kl"].values, 1e-12), "C1", label="KL(p_t || Gibbs) (bits)")
    ax2.plot(t, ds["tv"].values, "C2", label="total variation (probability)")
    ax2.axhline(0.01, color="gray", ls=":", lw=1, label="TV target 0.01")
    ax2.set_yscale("log")
    ax2.set_xlabel("time t")
    ax2.set_ylabel("distance to Gibbs (bits / probability)")
    ax2.legend(frameon=False)
    ax2.set_title("convergence of the histogram")
    if title:
        fig.suptitle(title)
    return fig


def kramers_check(barrier_over_temperature, simulated, stderr, exact, kramers, curve=None) -> plt.Figure:
    """Mean first-passage time (time units) against beta * barrier: simulation (error bars), exact quadrature,
    Kramers' law; log scale.  ``curve = (bh, exact, kramers)`` on a finer grid draws the two as lines."""
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.8), constrained_layout=True)
    bh = np.asarray(barrier_over_temperature, dtype=float)
    lb, le, lk = (bh, exact, kramers) if curve is None else map(np.asarray, curve)
    ax1.errorbar(bh, simulated, yerr=stderr, fmt="o", color="C0", label="simulated (Langevin)")
    ax1.plot(lb, le, "k-", label="exact (quadrature)")
    ax1.plot(lb, lk, "C3--", label="Kramers: 2 pi exp(beta dL) / sqrt(L''(a) |L''(s)|)")
    ax1.set_yscale("log")
    ax1.set_xlabel("barrier / temperature  beta dL")
    ax1.set_ylabel("mean first-passage time (time units)")
    ax1.legend(frameon=False)
    ax2.plot(bh, np.asarray(simulated) / np.asarray(kramers) - 1, "o", color="C0", label="simulated / Kramers - 1")
    ax2.plot(lb, np.asarray(le) / np.asarray(lk) - 1, "k-", label="exact / Kramers - 1")
    ax2.axhspan(-0.15, 0.15, color="gray", alpha=0.15, label="+-15 %")
    ax2.axhline(0, color="gray", lw=0.8)
    ax2.set_xlabel("barrier / temperature  beta dL")
    ax2.set_ylabel("relative deviation from Kramers")
    ax2.legend(frameon=False)
    return fig


def _ellipse(ax, cov, color, label, n_std=2.0, ls="-"):
    vals, vecs = np.linalg.eigh(cov)
    angle = np.degrees(np.arctan2(vecs[1, -1], vecs[0, -1]))
    w, h = 2 * n_std * np.sqrt(vals[::-1])
    ax.add_patch(Ellipse((0, 0), w, h, angle=angle, fill=False, color=color, lw=2, ls=ls, label=label))


def sgd_vs_lyapunov(w: np.ndarray, predicted: np.ndarray, dims=(0, 1), title: str = "") -> plt.Figure:
    """Stationary SGD weights (samples (n, d), centred) in two coordinates with the 2-sigma ellipses of their
    empirical covariance and of the Lyapunov prediction."""
    i, j = dims
    z = np.asarray(w, dtype=float).reshape(-1, np.shape(w)[-1])
    z = z - z.mean(axis=0)
    emp = np.cov(z[:, [i, j]].T, bias=True)
    pred = np.asarray(predicted)[np.ix_([i, j], [i, j])]
    fig, ax = plt.subplots(figsize=(5, 4.6), constrained_layout=True)
    sub = z[:: max(1, len(z) // 4000)]
    ax.scatter(sub[:, i], sub[:, j], s=2, alpha=0.3, color="C0", label="SGD weights (stationary)")
    _ellipse(ax, emp, "C0", "empirical covariance (2 sigma)")
    _ellipse(ax, pred, "C3", "Lyapunov H S + S H = lr C_B", ls="--")
    lim = 3.2 * np.sqrt(max(emp.max(), pred.max()))
    ax.set_xlim(-lim, lim)
    ax.set_ylim(-lim, lim)
    ax.set_xlabel(f"w_{i} - mean (weight units)")
    ax.set_ylabel(f"w_{j} - mean (weight units)")
    ax.legend(frameon=False, fontsize=8, loc="upper left")
    ax.set_title(title or "SGD stationary covariance vs Lyapunov")
    return fig


def sgd_vs_langevin(cmp: xr.Dataset) -> plt.Figure:
    """SGD vs Langevin on a network loss: loss and I(X;T) (bits) of each layer over time (means over repeats),
    from :func:`ibtheory.dynamics.network.compare_sgd_langevin`; colour = layer, solid SGD, dashed Langevin,
    dotted noise-free gradient descent (when present)."""
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.2), constrained_layout=True)
    t = cmp["time"].values
    cmp = cmp.mean("repeat") if "repeat" in cmp.dims else cmp
    ax1.plot(t, cmp["loss_sgd"].values, "C0-", label="SGD")
    ax1.plot(t, cmp["loss_langevin"].values, "C3--", label="Langevin at SGD's temperature")
    if "loss_gd" in cmp:
        ax1.plot(t, cmp["loss_gd"].values, "k:", label="gradient descent (no noise)")
    ax1.set_xscale("symlog", linthresh=max(t[1], 1e-9) if len(t) > 1 else 1.0)
    ax1.set_xlabel("time after the switch (= steps x lr)")
    ax1.set_ylabel("training loss (nats / sample)")
    ax1.legend(frameon=False)
    for k, layer in enumerate(cmp["layer"].values):
        ax2.plot(t, cmp["I_XT_sgd"].sel(layer=layer), color=f"C{k}", ls="-", label=f"layer {layer} SGD")
        ax2.plot(t, cmp["I_XT_langevin"].sel(layer=layer), color=f"C{k}", ls="--", label=f"layer {layer} Langevin")
        if "I_XT_gd" in cmp:
            ax2.plot(t, cmp["I_XT_gd"].sel(layer=layer), color=f"C{k}", ls=":", label=f"layer {layer} GD")
    ax2.set_xscale("symlog", linthresh=max(t[1], 1e-9) if len(t) > 1 else 1.0)
    ax2.set_xlabel("time after the switch (= steps x lr)")
    ax2.set_ylabel("I(X;T) (bits)")
    ax2.legend(frameon=False, fontsize=7, ncol=2)
    ax2.set_title("does the diffusion compress?")
    return fig
