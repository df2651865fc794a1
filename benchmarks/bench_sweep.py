"""The same grid in-process and on a dask LocalCluster (1 and N worker processes): wall times, ratios, identity.

Usage::

    python benchmarks/bench_sweep.py                      # examples/grids/bench.toml, workers 1 and 2
    python benchmarks/bench_sweep.py --grid G.toml --workers 1 2 4

Each run writes into a fresh temporary folder, so nothing is skipped.  "start" is the LocalCluster start-up
(worker processes starting and importing torch and ibtheory; pool processes import lazily inside the sweep);
"sweep" the time from the first submitted task to the merged sweep.nc; "ratio" = in-process sweep time / executor
sweep time (> 1: faster than in-process).  The merged Datasets must be identical to the in-process one
(determinism check).  Every executor computes with one thread per worker (the in-process run calls
``torch.set_num_threads(1)``; dask workers and pool processes get OMP_NUM_THREADS=1), so the ratio measures
parallelism over tasks, not BLAS threads.  The machine load (``os.getloadavg``) is printed beside the times because
other processes share the CPUs.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import xarray as xr

from ibtheory import runner

DEFAULT_GRID = Path(__file__).resolve().parents[1] / "examples" / "grids" / "bench.toml"


def _data(ds: xr.Dataset) -> xr.Dataset:
    out = ds.copy()
    out.attrs = {}
    return out


def _load() -> str:
    return "load {:.2f} {:.2f} {:.2f}".format(*os.getloadavg())


def _warm() -> int:
    """Import what the tasks import (torch, ibtheory.nets, ibtheory.ib) in a worker; counted as start-up."""
    import ibtheory.ib  # noqa: F401
    import ibtheory.nets  # noqa: F401

    return os.getpid()


def timed(grid: runner.Grid, executor_factory) -> tuple[float, float, xr.Dataset]:
    """(start-up seconds incl. imports on the workers, sweep seconds, merged Dataset) of one run in a fresh folder."""
    with tempfile.TemporaryDirectory() as out:
        t0 = time.perf_counter()
        with executor_factory() as executor:
            if isinstance(executor, runner.Dask):
                executor.run_everywhere(_warm)
            t1 = time.perf_counter()
            result = runner.run_sweep(grid, out, executor, progress=False)
            t2 = time.perf_counter()
        if result.failures:
            raise RuntimeError(f"{len(result.failures)} task(s) failed: {result.failures[0].describe()}")
        return t1 - t0, t2 - t1, result.dataset


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--grid", default=str(DEFAULT_GRID), help="grid file (TOML)")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="LocalCluster sizes to time")
    parser.add_argument("--processes", action="store_true", help="also time the concurrent.futures pool")
    parser.add_argument("--rounds", type=int, default=1, help="interleaved repetitions; medians are reported")
    args = parser.parse_args(argv)
    grid = runner.load_grid(args.grid)
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:  # pragma: no cover - torch is a dependency
        pass
    print(f"grid {args.grid}: kind {grid.kind.name}, {len(grid.points())} points, {len(grid.tasks())} tasks; "
          f"{os.cpu_count()} CPUs; {_load()}")
    runs = [("in-process", runner.InProcess)]
    runs += [(f"dask LocalCluster, {n} worker(s)", lambda n=n: runner.Dask(workers=n)) for n in args.workers]
    if args.processes:
        runs += [(f"process pool, {n} worker(s)", lambda n=n: runner.ProcessPool(n)) for n in args.workers]
    times: dict[str, list[tuple[float, float]]] = {name: [] for name, _ in runs}
    ref, same = None, {name: True for name, _ in runs}
    for rnd in range(args.rounds):  # interleaved rounds: a change in the machine's load hits every executor
        for name, factory in runs:
            start, sweep, ds = timed(grid, factory)
            ref = _data(ds) if ref is None else ref
            same[name] &= _data(ds).identical(ref)
            times[name].append((start, sweep))
            print(f"  round {rnd + 1} {name}: start {start:.2f} s, sweep {sweep:.2f} s   ({_load()})", flush=True)
    med = {name: (statistics.median(t[0] for t in ts), statistics.median(t[1] for t in ts))
           for name, ts in times.items()}
    base = med["in-process"][1]
    print(f"\nmedians over {args.rounds} interleaved round(s):")
    print("| executor | start-up (s) | sweep (s) | start+sweep (s) | in-process / sweep | identical |")
    print("|---|---:|---:|---:|---:|---|")
    for name, (start, sweep) in med.items():
        print(f"| {name} | {start:.2f} | {sweep:.2f} | {start + sweep:.2f} | {base / sweep:.2f} | {same[name]} |")
    print(f"\n{_load()}")


if __name__ == "__main__":
    main()
