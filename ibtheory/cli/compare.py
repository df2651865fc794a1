"""``ibtheory compare RUN.nc CURVE.nc``: every layer of a training run against the IB bound of the same task."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from .. import store


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("compare", help="place a run's layers against the IB curve: gaps, beta*, self-consistency")
    p.add_argument("run", help="run .nc from `ibtheory train` (activations kept for the self-consistency fits)")
    p.add_argument("curve", help="curve .nc from `ibtheory curve` on the same task")
    p.add_argument("--out", required=True, help="output .nc; figures are written beside it unless --plot is given")
    p.add_argument("--plot", default=None, help="figure of the layers on the curve (default: OUT with .png)")
    p.add_argument("--epochs", default="last",
                   help="epochs of the self-consistency fits: last (default), all, or a comma-separated list")
    p.add_argument("--n-draws", type=int, default=16, help="noise draws per pattern for the noisy-layer encoder")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=run)


def _epochs(text: str):
    if text in ("last", "all"):
        return text
    try:
        return [int(v) for v in text.split(",")]
    except ValueError:
        raise ValueError(f"--epochs must be 'last', 'all' or integers separated by commas, got {text!r}") from None


def run(args: argparse.Namespace) -> int:
    from ..compare import against_bound, final_summary
    from ..plots.compare import plot_distance_over_epochs, plot_layers_on_curve

    run_ds, curve = store.load(args.run), store.load(args.curve)
    comp = against_bound(run_ds, curve, epochs=_epochs(args.epochs), n_draws=args.n_draws, seed=args.seed)
    out = store.save(comp, args.out)
    plot = Path(args.plot) if args.plot else out.with_suffix(".png")
    fig = plot_layers_on_curve(comp, curve)
    fig.savefig(plot, dpi=130, bbox_inches="tight")
    fig2 = plot_distance_over_epochs(comp)
    gap_png = plot.with_name(plot.stem + "_gaps.png")
    fig2.savefig(gap_png, dpi=130, bbox_inches="tight")
    summary = final_summary(comp)
    print("layer  relevance gap [bits]   compression gap [bits]   beta*      mismatch [bits] (merged)")
    for lay in summary["layer"].values:
        s = summary.sel(layer=lay)
        beta = float(s["beta_star_mean"]) if "beta_star_mean" in s else np.nan
        mis = float(s["mismatch_mean"]) if "mismatch_mean" in s else np.nan
        mer = float(s["mismatch_merged_mean"]) if "mismatch_merged_mean" in s else np.nan
        print(f"{lay:>5}  {float(s['relevance_gap_mean']):.4f} ± {float(s['relevance_gap_std']):.4f}"
              f"        {float(s['compression_gap_mean']):.4f} ± {float(s['compression_gap_std']):.4f}"
              f"          {beta:<9.4g}  {mis:.4f} ({mer:.4f})")
    print(f"wrote {out}, {plot}, {gap_png}")
    return 0
