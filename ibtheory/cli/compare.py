"""``ibtheory compare RUN.nc CURVE.nc --out OUT``: every layer of a training run against the IB bound of the same task
(gaps, beta*, self-consistency; binning and the noisy layer), as a .nc, two figures and a printed table."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from .. import _validate, store
from ..estimators.registry import plane


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("compare", help="place a run's layers against the IB curve: gaps, beta*, self-consistency")
    p.add_argument("run", help="run .nc from `ibtheory train` (activations kept for the self-consistency fits)")
    p.add_argument("curve", help="curve .nc from `ibtheory curve` on the same task")
    p.add_argument("--out", required=True,
                   help="output .nc file, or a folder (then FOLDER/compare.nc); figures are written beside the .nc "
                        "(NAME.png: layers on the curve, binning and noisy layer; NAME_gaps.png: relevance and "
                        "compression gaps over epochs) unless --plot is given")
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


def _row(summary, lay, gap_key: str, fit: str) -> str:
    s = summary.sel(layer=lay)

    def pm(name: str) -> str:
        m, sd = s.get(f"{name}_mean"), s.get(f"{name}_std")
        if m is None:
            return f"{'-':^17}"
        return f"{float(m) + 0.0:7.4f} ± {float(sd) if sd is not None else np.nan:<7.4f}"  # + 0.0: no -0.0

    lb, lbs = s.get(f"log10_beta_star{fit}_mean"), s.get(f"log10_beta_star{fit}_std")
    beta = f"{10 ** float(lb):9.4g} ±{float(lbs):.2f} dec" if lb is not None else f"{'-':^18}"
    return f"{pm('relevance_gap' + gap_key)}  {pm('compression_gap' + gap_key)}  {beta}  {pm('mismatch' + fit)}"


def run(args: argparse.Namespace) -> int:
    from ..compare import against_bound, final_summary
    from ..plots.compare import FIT_OF_ESTIMATOR, plot_distance_over_epochs, plot_estimators_on_curve

    target = Path(args.out)
    if target.suffix != ".nc":  # a folder
        target = _validate.writable_dir(target, "--out") / "compare.nc"
    _validate.writable_file(target, "--out")
    plot = _validate.writable_file(args.plot, "--plot") if args.plot else target.with_suffix(".png")
    epochs = _epochs(args.epochs)
    run_ds, curve = store.load(args.run), store.load(args.curve)
    comp = against_bound(run_ds, curve, epochs=epochs, n_draws=args.n_draws, seed=args.seed)
    out = store.save(comp, target)
    fig = plot_estimators_on_curve(comp, curve)
    fig.savefig(plot, dpi=130, bbox_inches="tight")
    fig2 = plot_distance_over_epochs(comp)
    gap_png = plot.with_name(plot.stem + "_gaps.png")
    fig2.savefig(gap_png, dpi=130, bbox_inches="tight")
    summary = final_summary(comp)
    print("repeat mean ± std at the last epoch; beta*: geometric mean ± std of log10 (decades); binning fits: "
          "states of equal decoder merged")
    print(f"{'layer':>5}  {'estimator':<12} {'relevance gap [bits]':^17}  {'compression gap [bits]':^17}  "
          f"{'beta*':^18}  {'mismatch [bits]':^17}")
    binned = plane("binning")
    rows = [(binned.label, binned.suffix, FIT_OF_ESTIMATOR[binned.suffix])]
    if "relevance_gap_noisy" in comp:
        rows.append(("noisy layer", "_noisy", FIT_OF_ESTIMATOR["_noisy"]))
    for lay in summary["layer"].values:
        for label, gap_key, fit in rows:
            print(f"{lay:>5}  {label:<12} {_row(summary, lay, gap_key, fit)}")
    print(f"wrote {out}, {plot}, {gap_png}")
    return 0
