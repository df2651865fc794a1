"""``ibtheory solve``: one IB solution (encoder, decoder, p(t), certificate) of a task at one beta, as netCDF4.

The task is built in or read from a file (``--p-xy`` table, ``--samples`` pairs), as for ``ibtheory curve``.
"""

from __future__ import annotations

import argparse

from .. import store
from .curve import add_task_source, check_outputs, load_task_source
from .task import add_task_parameters


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("solve", help="the IB self-consistent solution of a task at one beta (certified); .nc")
    add_task_source(p)
    p.add_argument("--beta", type=float, required=True, help="trade-off beta > 0")
    p.add_argument("--deterministic", action="store_true", help="deterministic IB (Strouse & Schwab 2017)")
    p.add_argument("--no-certify", action="store_true", help="skip the optimality certificate")
    p.add_argument("--out", default=None, help="write the solution Dataset to this .nc file")
    add_task_parameters(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..ib import solve

    check_outputs(args, "out")
    ds, name = load_task_source(args)
    sol = solve(ds, args.beta, deterministic=args.deterministic, certify=False if args.no_certify else None)
    gap = "not certified" if sol.gap is None else f"certified gap {sol.gap:.3g} bits"
    print(f"task {name}, beta {sol.beta:g}: I(X;T) = {sol.I_XT:.6f} bits, I(T;Y) = {sol.I_TY:.6f} bits, "
          f"L = {sol.lagrangian:.6f} bits, {sol.n_t} clusters, {sol.iterations} map evaluations, {gap}")
    if args.out:
        config = {k: v for k, v in vars(args).items() if k != "func"}
        print(f"wrote {store.save(store.with_provenance(sol.to_dataset(), config=config, seed=0), args.out)}")
    return 0
