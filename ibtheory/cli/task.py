"""``ibtheory task``: build a task's exact p(x,y), print its information and save it as netCDF4."""

from __future__ import annotations

import argparse

from .. import _validate, store, tasks


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("task", help="build a task's exact p(x,y), print I(X;Y), H(Y), class count; save .nc")
    p.add_argument("--name", default="tishby", choices=["tishby", "binary-symmetric", "gaussian"],
                   help="which task (default: the paper's 12-bit icosahedral task)")
    p.add_argument("--gamma", type=float, default=None,
                   help="tishby: slope of the soft rule (omit for hard labels; 19.05 gives 0.90 bits)")
    p.add_argument("--info-bits", type=float, default=None,
                   help="tishby: choose gamma so that I(X;Y) equals this many bits")
    p.add_argument("--p", type=float, default=0.1, help="binary-symmetric: crossover probability")
    p.add_argument("--rho", type=float, default=0.8, help="gaussian: correlation")
    p.add_argument("--grid", type=int, default=64, help="gaussian: grid points per axis")
    p.add_argument("--out", default=None, help="write the task to this .nc file")
    p.set_defaults(func=run)


def make_task(args: argparse.Namespace):
    """The task Dataset the arguments describe."""
    if args.name == "tishby":
        gamma = args.gamma
        if args.info_bits is not None:
            if gamma is not None:
                raise ValueError("give either --gamma or --info-bits, not both")
            gamma = tasks.gamma_for_information(args.info_bits)
        return tasks.tishby(gamma)
    if args.name == "binary-symmetric":
        return tasks.binary_symmetric(args.p)
    return tasks.gaussian_discretized(args.rho, args.grid, args.grid)


def run(args: argparse.Namespace) -> int:
    if args.out:
        _validate.writable_file(args.out, "--out")
    ds = make_task(args)
    classes = tasks.sufficient_classes(ds["p_xy"].values)
    print(f"task {ds.attrs['name']}: |X| = {ds.sizes['x']}, |Y| = {ds.sizes['y']}")
    if ds.attrs["name"] == "tishby":
        rule = "hard" if ds.attrs["rule"] == "hard" else f"soft, gamma = {ds.attrs['gamma']:.6g}"
        print(f"rule: {rule}; theta = {ds.attrs['theta']:.6f}, sd(f) = {ds.attrs['sd_f']:.6f}")
        print(f"distinct f values: {int(ds['f_class'].max()) + 1}, icosahedral orbits: {int(ds['orbit'].max()) + 1}")
    print(f"I(X;Y) = {ds.attrs['I_XY']:.6f} bits")
    print(f"H(Y) = {ds.attrs['H_Y']:.6f} bits")
    print(f"sufficient-statistic classes: {classes.max() + 1}")
    if ds.attrs["deterministic"]:
        print("labels are deterministic: the IB curve is the trivial min(I(X;T), H(Y))")
    if args.out:
        config = {k: v for k, v in vars(args).items() if k != "func"}
        path = store.save(store.with_provenance(ds, config=config), args.out)
        print(f"wrote {path}")
    return 0
