"""``ibtheory sweep GRID.toml --out DIR``: run an experiment grid in-process, on a process pool or with dask.

Examples::

    ibtheory sweep examples/grids/small.toml --out runs/small                  # in-process
    ibtheory sweep examples/grids/small.toml --workers 2 --out runs/small      # dask LocalCluster, 2 processes
    ibtheory sweep grid.toml --scheduler tcp://head:8786 --out runs/paper      # an existing dask cluster
    ibtheory sweep grid.toml --device cuda --out runs/gpu                       # train on the GPU(s) of the workers

The grid is validated before anything runs; finished tasks land in DIR/tasks/ at once and a re-run skips them; the
merged result is DIR/sweep.nc.  Exit code 0 when every task finished, 1 when some failed (they are listed with their
configuration), 2 for a bad grid or arguments.
"""

from __future__ import annotations

import argparse
import sys

from .. import _validate, runner


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("sweep", help="run an experiment grid (TOML) in-process, on a process pool or on dask",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("grid", help="grid file (TOML): kind, seed, [fixed] fields, [axes] lists of values")
    p.add_argument("--out", required=True, help="output folder: tasks/<key>.nc per task and the merged sweep.nc")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--scheduler", default=None, help="address of a running dask scheduler, tcp://HOST:8786")
    where.add_argument("--workers", type=int, default=None, help="start a dask LocalCluster of N worker processes")
    where.add_argument("--processes", type=int, default=None,
                       help="run on a local concurrent.futures pool of N processes (no dask needed)")
    p.add_argument("--device", default=None,
                   help="torch device for kinds that train networks (cpu, cuda, cuda:1); overrides the grid")
    p.add_argument("--retries", type=int, default=0, help="dask: re-run a task that raised up to N times")
    p.add_argument("--dry-run", action="store_true", help="validate the grid and list its tasks; run nothing")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def _grid(args: argparse.Namespace) -> runner.Grid:
    grid = runner.load_grid(args.grid)
    if args.device is not None:
        if "device" not in grid.kind.fields:
            raise ValueError(f"--device: task kind '{grid.kind.name}' has no device field")
        spec = grid.to_dict()
        spec["axes"] = {k: v for k, v in spec["axes"].items() if k != "device"}
        spec["fixed"] = {**spec["fixed"], "device": args.device}
        grid = runner.Grid.from_dict(spec)
    return grid


def run(args: argparse.Namespace) -> int:
    for name in ("workers", "processes"):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise ValueError(f"--{name} must be a positive integer, got {value}")
    if args.retries < 0:
        raise ValueError(f"--retries must be >= 0, got {args.retries}")
    grid = _grid(args)
    if not args.dry_run:
        _validate.writable_dir(args.out, "--out")
    tasks = grid.tasks()
    axes = ", ".join(f"{k} x{len(v)}" for k, v in grid.axes.items()) or "no axes"
    print(f"grid: kind {grid.kind.name}, seed {grid.seed}, {axes}: {len(grid.points())} points, {len(tasks)} tasks")
    if args.dry_run:
        for spec in tasks:
            print(f"  {spec.key}  point {spec.point}  chunk {spec.chunk}  seed {spec.seed}")
        return 0
    todo = runner.pending(grid, args.out)
    print(f"{len(tasks) - len(todo)} task(s) already finished in {args.out}, {len(todo)} to run")
    scheduler, workers, processes = (args.scheduler, args.workers, args.processes) if todo else (None, None, None)
    with runner.make_executor(scheduler, workers, processes, args.retries) as executor:
        print(f"executor: {executor.description}")
        result = runner.run_sweep(grid, args.out, executor, progress=not args.no_progress)
    print(result.table)
    if result.path is not None:
        print(f"wrote {result.path}")
    if result.failures:
        print(f"{len(result.failures)} task(s) failed:", file=sys.stderr)
        for ev in result.failures:
            print(f"  {ev.describe()}\n    config: {ev.spec.config}", file=sys.stderr)
        return 1
    return 0
