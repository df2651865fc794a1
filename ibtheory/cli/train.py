"""``ibtheory train``: train a network ensemble on a task, measure its layers, save RUN.nc (and a figure)."""

from __future__ import annotations

import argparse
from pathlib import Path

from .. import _validate, phases
from .task import make_task


def _widths(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(w) for w in text.replace(",", "-").split("-") if w)
    except ValueError:
        raise argparse.ArgumentTypeError(f"widths must look like 10-7-5-4-3, got {text!r}") from None


def _limits(text: str):
    if text == "adaptive":
        return text
    try:
        lo, hi = (float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"limits must be 'LO,HI' or 'adaptive', got {text!r}") from None
    return (lo, hi)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train R networks at once, information plane per layer and epoch -> RUN.nc",
                       description="Train an ensemble of networks on the paper's task (defaults: the paper's "
                       "setting) and save the run Dataset; an existing --out is resumed.")
    p.add_argument("--name", default="tishby", choices=["tishby", "binary-symmetric", "gaussian"], help="task")
    p.add_argument("--gamma", type=float, default=None, help="tishby: soft rule slope (19.05 gives 0.90 bits)")
    p.add_argument("--info-bits", type=float, default=None, help="tishby: choose gamma for this I(X;Y)")
    p.add_argument("--p", type=float, default=0.1, help=argparse.SUPPRESS)
    p.add_argument("--rho", type=float, default=0.8, help=argparse.SUPPRESS)
    p.add_argument("--grid", type=int, default=64, help=argparse.SUPPRESS)
    p.add_argument("--hidden", type=_widths, default=(10, 7, 5, 4, 3), help="hidden widths (default 10-7-5-4-3)")
    p.add_argument("--activation", default="tanh", choices=["tanh", "relu", "sigmoid", "linear", "hardtanh"])
    p.add_argument("--repeats", type=int, default=50)
    p.add_argument("--epochs", type=int, default=10_000)
    p.add_argument("--lr", type=float, default=4e-4)
    p.add_argument("--optimizer", default="adam", choices=["adam", "sgd"])
    p.add_argument("--batch-size", type=int, default=512)
    p.add_argument("--train-fraction", type=float, default=0.8)
    p.add_argument("--snapshots", type=int, default=300)
    p.add_argument("--estimators", default="binning", help="comma list of binning,kde,ensemble")
    p.add_argument("--n-bins", type=int, default=30)
    p.add_argument("--limits", type=_limits, default=(-1.0, 1.0), help="'LO,HI' or 'adaptive' (default -1,1)")
    p.add_argument("--scheme", default="width", choices=["width", "mass"])
    p.add_argument("--noise-var", type=float, default=0.1, help="kde: noise variance")
    p.add_argument("--keep-activations", action="store_true", help="store all activations (large)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="run.nc", help="run file (.nc); resumed when it exists")
    p.add_argument("--checkpoint-seconds", type=float, default=60.0,
                   help="save --out at the first snapshot this long after the last save (default 60)")
    p.add_argument("--plot", default=None, help="also write the three-panel figure to this .png")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from .. import nets

    _validate.writable_file(args.out, "--out")
    if args.plot:
        _validate.writable_file(args.plot, "--plot")
    task = make_task(args)
    ds = nets.train(
        task, hidden=args.hidden, activation=args.activation, repeats=args.repeats, epochs=args.epochs, lr=args.lr,
        optimizer=args.optimizer, batch_size=args.batch_size, train_fraction=args.train_fraction,
        snapshots=args.snapshots, estimators=tuple(e.strip() for e in args.estimators.split(",") if e.strip()),
        n_bins=args.n_bins, limits=args.limits, scheme=args.scheme, noise_var=args.noise_var,
        keep_activations=args.keep_activations, device=args.device, seed=args.seed, out=args.out,
        checkpoint_seconds=args.checkpoint_seconds, progress=False if args.no_progress else None,
    )
    print(f"wrote {Path(args.out)}")
    last = ds.isel(epoch=-1)
    print(f"epoch {int(last['epoch'])}: test accuracy {float(last['test_accuracy'].mean()):.4f} "
          f"(mean of {ds.sizes['repeat']} repeats)")
    if "I_XT" in ds:
        ph = phases.detect_phases(ds)
        print("layer  width  I(X;T) peak epoch  peak [bits]  final [bits]  SNR transition epoch")
        for layer in ph["layer"].values:
            r = ph.sel(layer=layer)
            print(f"{layer:5d}  {int(ds['width'].sel(layer=layer)):5d}  {int(r['turn_epoch']):17d}  "
                  f"{float(r['peak']):11.3f}  {float(r['final']):12.3f}  {float(r['transition_epoch']):20.0f}")
    if args.plot:
        from ..plots.plane import plot_run

        fig = plot_run(ds, "binning" if "I_XT" in ds else args.estimators.split(",")[0].strip())
        fig.savefig(args.plot, dpi=120)
        print(f"wrote {args.plot}")
    return 0
