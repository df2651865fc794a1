"""``ibtheory curve``: the exact IB curve of a task (built in or from a task .nc file), saved as netCDF4 and PNG."""

from __future__ import annotations

import argparse
import time

from .. import _validate, store


def add_task_source(p: argparse.ArgumentParser) -> None:
    """The options that choose p(x,y): a built-in task with its parameters, or a task file (shared by ``curve``
    and ``solve``)."""
    src = p.add_mutually_exclusive_group()
    src.add_argument("--task", default="tishby", choices=["tishby", "binary-symmetric", "gaussian"],
                     help="built-in task (default: the paper's 12-bit task)")
    src.add_argument("--p-xy", default=None, metavar="FILE.nc", help="a task file written by `ibtheory task --out`")
    p.add_argument("--gamma", type=float, default=None,
                   help="tishby: slope of the soft rule (omit for hard labels; 19.05 gives 0.90 bits)")
    p.add_argument("--info-bits", type=float, default=None, help="tishby: choose gamma so that I(X;Y) = this")
    p.add_argument("--p", type=float, default=0.1, help="binary-symmetric: crossover probability")
    p.add_argument("--rho", type=float, default=0.8, help="gaussian: correlation")
    p.add_argument("--grid", type=int, default=16, help="gaussian: grid points per axis")


def load_task_source(args: argparse.Namespace):
    """(task Dataset with ``p_xy``, its name) from the options of :func:`add_task_source`."""
    from .task import make_task

    if args.p_xy:
        ds = store.load(args.p_xy)
        if "p_xy" not in ds:
            raise ValueError(f"{args.p_xy!r} has no 'p_xy' variable (write it with `ibtheory task --out`)")
        return ds, ds.attrs.get("name", args.p_xy)
    ds = make_task(argparse.Namespace(name=args.task, gamma=args.gamma, info_bits=args.info_bits, p=args.p,
                                      rho=args.rho, grid=args.grid))
    return ds, ds.attrs["name"]


def check_outputs(args: argparse.Namespace, *names: str) -> None:
    """Check, before any work, that the files given as ``--NAME`` options can be written."""
    for name in names:
        value = getattr(args, name, None)
        if value:
            _validate.writable_file(value, f"--{name.replace('_', '-')}")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("curve", help="exact IB curve of a task: encoders, critical betas, certified band; .nc/.png")
    add_task_source(p)
    p.add_argument("--n-betas", type=int, default=240, help="betas of the automatic grid (before refinement)")
    p.add_argument("--no-certify", action="store_true", help="skip the optimality certificate")
    p.add_argument("--out", default=None, help="write the curve Dataset to this .nc file")
    p.add_argument("--plot", default=None, help="write the figure to this .png file")
    p.add_argument("--progress", action="store_true", help="show a progress bar")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..ib import ib_curve

    check_outputs(args, "out", "plot")
    ds, name = load_task_source(args)
    t0 = time.perf_counter()
    curve = ib_curve(ds["p_xy"].values, n_betas=args.n_betas, certify=False if args.no_certify else None,
                     progress=args.progress)
    wall = time.perf_counter() - t0
    print(f"task {name}: I(X;Y) = {curve.attrs['I_XY']:.6f} bits, {curve.attrs['n_classes']} sufficient classes")
    print(f"{curve.sizes['beta']} betas in {wall:.2f} s; {curve.sizes['critical']} critical betas: "
          + ", ".join(f"{b:.4g}" for b in curve['critical_betas'].values))
    if "gap" in curve:
        print(f"largest certified gap: {float(curve['gap'].max()):.3g} bits")
    if curve.attrs["deterministic"]:
        print(curve.attrs["explanation"])
    if args.out:
        config = {k: v for k, v in vars(args).items() if k != "func"}
        out = store.with_provenance(curve, config=config, seed=0)
        print(f"wrote {store.save(out, args.out)}")
    if args.plot:
        import matplotlib.pyplot as plt

        from ..plots.curve import plot_ib_curve

        fig = plot_ib_curve(curve, title=f"IB curve of {name}, I(X;Y) = {curve.attrs['I_XY']:.3f} bits")
        fig.savefig(args.plot, dpi=120)
        plt.close(fig)
        print(f"wrote {args.plot}")
    return 0
