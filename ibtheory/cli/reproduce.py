"""``ibtheory reproduce``: run the experiments that test the paper's claims and write DIR/report.md."""

from __future__ import annotations

import argparse
import time
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    from ..reproduce import SECTIONS, SIZES

    p = sub.add_parser("reproduce", help="run the paper's experiments and write a report (report.md, .nc, .png)",
                       description="Run every claim's experiment (or those in --only), write .nc results and .png "
                       "figures into --out and a report.md with one verdict per claim.")
    p.add_argument("--quick", action="store_true", help="same as --size quick (about five minutes on 2 cores)")
    p.add_argument("--size", choices=SIZES, default=None,
                   help="tiny (seconds, for tests), quick, or full (the paper's sizes; hours). Default: full, "
                   "or quick with --quick")
    p.add_argument("--out", default="ibtheory-out", help="output folder (default: ibtheory-out)")
    p.add_argument("--only", default=None, help=f"comma-separated sections, from: {','.join(SECTIONS)}")
    p.add_argument("--mnist-dir", default=None, help="folder with the MNIST t10k IDX files (MNIST is skipped "
                   "without it)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu",
                   help="torch device every section trains on: cpu, cuda or cuda:N (default cpu); checked first")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--processes", type=int, default=None,
                       help="run the rows of the critics' matrix on a local pool of N processes (default: in-process)")
    where.add_argument("--workers", type=int, default=None,
                       help="run the rows of the critics' matrix on a dask LocalCluster of N worker processes")
    where.add_argument("--scheduler", default=None,
                       help="run the rows of the critics' matrix on a running dask scheduler, tcp://HOST:8786")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from .. import _validate, runner
    from ..nets.loop import check_device
    from ..reproduce import run_all

    device = check_device(args.device, "--device")  # before any work: an absent GPU is one line, not a traceback
    _validate.writable_dir(args.out, "--out")
    if args.quick and args.size not in (None, "quick"):
        raise ValueError(f"--quick contradicts --size {args.size}")
    size = args.size or ("quick" if args.quick else "full")
    only = [s.strip() for s in args.only.split(",") if s.strip()] if args.only else None
    for name in ("workers", "processes"):
        if getattr(args, name) is not None and getattr(args, name) < 1:
            raise ValueError(f"--{name} must be a positive integer, got {getattr(args, name)}")
    t0 = time.perf_counter()
    with runner.make_executor(args.scheduler, args.workers, args.processes) as executor:
        path, _ = run_all(Path(args.out), size, args.seed, mnist_dir=args.mnist_dir, only=only, device=device,
                          executor=executor)
    print(f"total {time.perf_counter() - t0:.1f} s")
    print(f"report: {path.resolve()}")
    return 0
