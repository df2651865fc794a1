"""``ibtheory plane RUN.nc --out FIG.png``: draw a training run's information plane (and its phases)."""

from __future__ import annotations

import argparse

from .. import _validate, store
from ..estimators.registry import plane_names


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("plane", help="information-plane figure of a run made by `ibtheory train`",
                       description="Draw the repeat-averaged information plane of RUN.nc (points per layer coloured "
                       "by epoch), optionally with the gradient phases and learning curves.")
    p.add_argument("run", help="run file written by `ibtheory train`")
    p.add_argument("--out", required=True, help="output .png")
    p.add_argument("--kind", default="plane", choices=["plane", "gradients", "learning", "all"],
                   help="plane (default), gradients (mean/std with the transition), learning, or all three")
    p.add_argument("--estimator", default="binning", choices=plane_names(),
                   help="which information plane (an estimator's name: its own plane; default binning)")
    p.add_argument("--dpi", type=int, default=120)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..plots import plane

    _validate.writable_file(args.out, "--out")
    dpi = _validate.integer(args.dpi, "--dpi", 1)
    ds = store.load(args.run)
    if args.kind == "plane":
        fig = plane.plot_plane(ds, args.estimator)
    elif args.kind == "gradients":
        fig = plane.plot_gradients(ds)
    elif args.kind == "learning":
        fig = plane.plot_learning(ds)
    else:
        fig = plane.plot_run(ds, args.estimator)
    fig.savefig(args.out, dpi=dpi)
    print(f"wrote {args.out}")
    return 0
