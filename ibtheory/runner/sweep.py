"""Running a grid: tasks saved as they finish, re-runs skip finished tasks, failures reported, results merged.

Layout of the output folder ``DIR`` (temporary files of saves killed half-way are removed when a sweep starts;
do not run two sweeps into the same folder at once)::

    DIR/tasks/<key>.nc   one file per finished task (ibtheory.store.save: atomic), attrs: config, seed, point
    DIR/sweep.nc         the merged Dataset: the grid's axes are dimensions, plus the split dimension (repeat/beta)

:func:`iter_sweep` is a generator of :class:`TaskEvent` (one per task: ``skipped`` when already on disk, ``done``,
or ``failed`` with the error); :func:`run_sweep` is the thin wrapper that shows a tqdm bar, merges the results
with :func:`merge` (missing points stay NaN and are listed in ``attrs["failed_tasks"]``) and builds the summary
table.  The merged result does not depend on the executor or the number of workers: every task's seed comes from
the grid seed and its coordinates (:func:`ibtheory.runner.grid.task_seed`).
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import netCDF4
import numpy as np
import xarray as xr
from tqdm.auto import tqdm

from .. import store
from .executors import Executor, InProcess, _whoami
from .grid import Grid, TaskSpec, coordinate_label, load_grid

__all__ = ["TaskEvent", "SweepResult", "iter_sweep", "run_sweep", "merge", "summary_table", "run_task", "pending",
           "code_digest"]


@dataclass(frozen=True)
class _Job:
    """What travels to a worker: the kind's function and split rule (pickled by reference) and the task."""

    func: object
    split: object
    spec: TaskSpec

    @property
    def dask_key(self) -> str:
        return f"ibtheory-{self.spec.key}"


def run_task(job: _Job) -> tuple[xr.Dataset, float, str]:
    """Worker side: run one task; returns (Dataset, compute seconds, 'host:pid')."""
    t0 = time.perf_counter()
    ds = job.func(job.spec.config, job.spec.seed)
    if not isinstance(ds, xr.Dataset):
        raise TypeError(f"task kind '{job.spec.kind}' returned {type(ds).__name__}, expected an xarray.Dataset")
    ds = job.split.place(ds, job.spec.chunk_info)
    return ds, time.perf_counter() - t0, _whoami()


@dataclass(frozen=True)
class TaskEvent:
    """The outcome of one task: ``status`` is 'done', 'skipped' (already on disk) or 'failed' (``error`` says why)."""

    spec: TaskSpec
    status: str
    seconds: float = 0.0
    worker: str = ""
    error: str = ""

    def describe(self) -> str:
        return (f"task {self.spec.key} ({self.spec.kind}, point {self.spec.point}, chunk {self.spec.chunk}, "
                f"seed {self.spec.seed}): {self.status}" + (f": {self.error}" if self.error else ""))


@dataclass
class SweepResult:
    """What :func:`run_sweep` returns: the merged Dataset (also in ``path``), every event and the summary table.

    When every task failed, ``dataset`` is empty and ``path`` is None.
    """

    dataset: xr.Dataset
    events: list[TaskEvent]
    table: str
    path: Path | None = None
    failures: list[TaskEvent] = field(default_factory=list)


def _task_path(out: Path, spec: TaskSpec) -> Path:
    return out / "tasks" / f"{spec.key}.nc"


def _finished(path: Path, spec: TaskSpec) -> bool:
    """Whether ``path`` holds this task's result: its ``task_key`` attribute is read without loading the data, and a
    truncated or foreign file counts as not finished."""
    if not path.is_file():
        return False
    try:
        with netCDF4.Dataset(path) as nc:
            return getattr(nc, "task_key", None) == spec.key
    except OSError:
        return False


def pending(grid: Grid | dict | str | os.PathLike, out: str | os.PathLike) -> list[TaskSpec]:
    """The tasks of ``grid`` that have no finished result under ``out/tasks`` (what a run would compute)."""
    grid = grid if isinstance(grid, Grid) else load_grid(grid)
    return [spec for spec in grid.tasks() if not _finished(_task_path(Path(out), spec), spec)]


def _save_task(out: Path, spec: TaskSpec, ds: xr.Dataset, seconds: float, worker: str) -> Path:
    ds = store.with_provenance(ds, config=spec.config, seed=spec.seed)
    ds.attrs.update(task_key=spec.key, kind=spec.kind, point=json.dumps(spec.point, sort_keys=True),
                    chunk=spec.chunk, seconds=float(seconds), worker=worker)
    return store.save(ds, _task_path(out, spec))


def _files_digest(paths) -> str:
    h = hashlib.sha256()
    for path in sorted(paths):
        h.update(Path(path).name.encode())
        h.update(Path(path).read_bytes())
    return h.hexdigest()[:16]


#: Digest of the runner's source files as they were when this process imported the runner.
_RUNNER_DIGEST = _files_digest(Path(__file__).resolve().parent.glob("*.py"))


def code_digest(kind: str | None = None) -> tuple[str, str | None]:
    """(runner digest, digest of the module defining ``kind``'s function), both taken when they were imported.

    Workers look a task's function up by name in their own ibtheory, so they must run the driver's code; comparing
    digests catches a worker with another version, or one started after the source was edited.  The kind's digest
    is None where the kind is not registered (a kind defined outside ibtheory that the worker has not imported).
    """
    from .kinds import source_digest

    return _RUNNER_DIGEST, source_digest(kind) if kind else None


def _preflight(grid: Grid, executor: Executor) -> None:
    """Check before any task runs: every worker runs this process's ibtheory code, and the kind's worker check
    (once per distinct ``device``) passes everywhere; ``ValueError`` naming the worker otherwise."""
    here = code_digest(grid.kind.name)
    other = {w: d for w, d in executor.run_everywhere(code_digest, grid.kind.name).items()
             if d[0] != here[0] or (d[1] is not None and here[1] is not None and d[1] != here[1])}
    if other:
        raise ValueError(f"worker(s) {sorted(other)} run different code for kind '{grid.kind.name}' than this process "
                         f"({sorted(set(other.values()))} vs {here}): install the same ibtheory everywhere and "
                         "restart the workers")
    check = grid.kind.worker_check
    if check is None:
        return
    seen = set()
    for spec in grid.tasks():
        sig = json.dumps({k: v for k, v in spec.config.items() if k in ("device",)}, sort_keys=True)
        if sig in seen:
            continue
        seen.add(sig)
        for worker, message in executor.run_everywhere(check, spec.config).items():
            if message:
                raise ValueError(f"worker {worker}: {message}")


def iter_sweep(grid: Grid | dict | str | os.PathLike, out: str | os.PathLike,
               executor: Executor | None = None) -> Iterator[TaskEvent]:
    """Yield one :class:`TaskEvent` per task of ``grid``, saving each finished task under ``out/tasks`` at once.

    Tasks already on disk (same key) are yielded as 'skipped' without running.  The grid is validated and the
    kind's worker check run before any task starts; a task that raises is yielded as 'failed' and the others go on.
    """
    grid = grid if isinstance(grid, Grid) else load_grid(grid)
    out = Path(out)
    executor = executor or InProcess()
    if (out / "tasks").is_dir():  # what a sweep killed while saving left behind
        store.remove_stale_temporaries(out / "tasks")
    store.remove_stale_temporaries(out / "sweep.nc")
    specs = grid.tasks()
    todo = []
    for spec in specs:
        if _finished(_task_path(out, spec), spec):
            yield TaskEvent(spec, "skipped")
        else:
            todo.append(_Job(grid.kind.func, grid.kind.split, spec))
    if not todo:
        return
    _preflight(grid, executor)
    (out / "tasks").mkdir(parents=True, exist_ok=True)
    for job, result, exc in executor.map_unordered(run_task, todo):
        if exc is not None:
            yield TaskEvent(job.spec, "failed", error=f"{type(exc).__name__}: {exc}")
            continue
        ds, seconds, worker = result
        _save_task(out, job.spec, ds, seconds, worker)
        yield TaskEvent(job.spec, "done", seconds, worker)


_TASK_ATTRS = ("ibtheory_version", "config", "seed", "created", "task_key", "kind", "point", "chunk", "seconds",
               "worker")


def _common_attrs(datasets: list[xr.Dataset]) -> dict:
    """Attributes equal in every task (e.g. the task's I_XY), without the per-task provenance."""
    first = {k: v for k, v in datasets[0].attrs.items() if k not in _TASK_ATTRS}
    return {k: v for k, v in first.items()
            if all(k in d.attrs and np.array_equal(np.asarray(d.attrs[k]), np.asarray(v)) for d in datasets[1:])}


_KEEP_ENCODING = ("zlib", "complevel", "shuffle")


def _fresh_encoding(ds: xr.Dataset) -> xr.Dataset:
    """Forget the on-disk dtype/_FillValue/chunking read from a task file (padding turns int variables into float
    with NaN, which the old integer encoding would silently corrupt when saving); keep compression settings."""
    ds = ds.copy()
    for var in ds.variables.values():
        var.encoding = {k: v for k, v in var.encoding.items() if k in _KEEP_ENCODING}
    return ds


def _index_all_dims(datasets: list[xr.Dataset]) -> tuple[list[xr.Dataset], list[str]]:
    """Give dimensions without a coordinate (e.g. ``dim``, ``hull``) an integer index so that datasets of different
    sizes along them can be outer-joined (padded with NaN); returns the datasets and the names to drop again."""
    bare = sorted({d for ds in datasets for d in ds.dims if d not in ds.coords})
    datasets = [_fresh_encoding(ds) for ds in datasets]
    return [ds.assign_coords({d: np.arange(ds.sizes[d]) for d in bare if d in ds.dims}) for ds in datasets], bare


def _point_dataset(grid: Grid, chunks: list[tuple[TaskSpec, xr.Dataset]]) -> xr.Dataset:
    """One grid point: its chunks concatenated along the split dimension, with each chunk's seed as ``task_seed``.

    Variables without the split dimension must agree between chunks; those that differ (e.g. estimates pooled over
    a chunk's repeats) are dropped and named in ``attrs["chunk_dependent_dropped"]``.  The kind's ``finalize``
    hook then recomputes what needs the whole point (e.g. the concave hull of an IB curve).
    """
    dim = grid.kind.split.dim
    attrs = _common_attrs([ds for _, ds in chunks])
    parts = []
    for spec, ds in chunks:
        ds = ds.copy()
        ds.attrs = {}
        if dim is not None and dim in ds.dims:
            ds["task_seed"] = (dim, np.full(ds.sizes[dim], spec.seed, dtype=np.int64))
        else:
            ds["task_seed"] = ((), np.int64(spec.seed))
        parts.append(ds)
    dropped: list[str] = []
    if len(parts) > 1 and dim is not None:
        for name, var in parts[0].data_vars.items():
            if dim not in var.dims and not all(p[name].equals(var) for p in parts[1:] if name in p):
                dropped.append(name)
        parts, bare = _index_all_dims([p.drop_vars([v for v in dropped if v in p]) for p in parts])
        point = xr.concat(parts, dim=dim, data_vars="minimal", coords="minimal", compat="override", join="outer")
        point = point.drop_vars([d for d in bare if d in point.coords])
    else:
        point = parts[0]
    if dropped:
        attrs["chunk_dependent_dropped"] = " ".join(dropped)
    point.attrs = attrs
    if grid.kind.finalize is not None:
        point = grid.kind.finalize(point)
    return point


def merge(grid: Grid | dict | str | os.PathLike, out: str | os.PathLike) -> xr.Dataset:
    """Merge the task files of ``grid`` found under ``out/tasks`` into one Dataset over the grid's axes.

    Axis values become coordinates in the grid's order (list values such as layer widths as labels "10-7-5").
    Points with no finished task are NaN; ``attrs["tasks_missing"]`` counts the tasks not on disk.
    """
    grid = grid if isinstance(grid, Grid) else load_grid(grid)
    out = Path(out)
    by_point: dict[str, list] = {}
    missing = 0
    for spec in grid.tasks():
        path = _task_path(out, spec)
        if not _finished(path, spec):
            missing += 1
            continue
        try:
            ds = store.load(path)
        except ValueError as exc:
            raise ValueError(f"task file {str(path)!r} of point {spec.point} cannot be read ({exc}); delete it and "
                             "run the sweep again to recompute that task") from None
        by_point.setdefault(json.dumps(spec.point, sort_keys=True), []).append((spec, ds))
    if not by_point:
        raise ValueError(f"no finished task of this grid under {str(out / 'tasks')!r}")
    fields = list(grid.axes)
    points = [(json.loads(k), _point_dataset(grid, v)) for k, v in by_point.items()]
    if not fields:
        merged = points[0][1].copy()
    else:
        indexed, bare = _index_all_dims([ds for _, ds in points])
        stacked = xr.concat(indexed, dim="_point", data_vars="all", coords="different",
                            compat="equals", join="outer", combine_attrs="override")
        stacked = stacked.drop_vars([d for d in bare if d in stacked.coords])
        stacked = stacked.assign_coords({f: ("_point", [p[f] for p, _ in points]) for f in fields})
        if len(fields) == 1:
            merged = stacked.swap_dims({"_point": fields[0]})
        else:
            merged = stacked.set_index(_point=fields).unstack("_point")
        merged = merged.reindex({f: [coordinate_label(v) for v in grid.axes[f]] for f in fields})
        merged = merged.transpose(*fields, ...)
        for name, var in merged.data_vars.items():  # text variables: "" (not a float NaN) where a point is missing
            if var.dtype == object or var.dtype.kind == "U":
                merged[name] = var.fillna("").astype(str)
    common = _common_attrs([ds for _, ds in points])
    merged.attrs = {**common, **store.provenance(grid.to_dict(), grid.seed)}
    merged.attrs.update(kind=grid.kind.name, tasks_total=len(grid.tasks()), tasks_missing=missing)
    return merged


def summary_table(grid: Grid, merged: xr.Dataset, events: list[TaskEvent]) -> str:
    """A text table: one row per grid point with task counts (done / skipped / failed in this run), the compute
    seconds of the tasks run now, and the kind's summary numbers (e.g. final test accuracy, max I(T;Y) in bits)."""
    rows = []
    fields = list(grid.axes)
    for point in grid.points():
        labels = {f: coordinate_label(v) for f, v in point.items()}
        evs = [e for e in events if e.spec.point == labels]
        counts = {s: sum(e.status == s for e in evs) for s in ("done", "skipped", "failed")}
        row = {**{f: str(labels[f]) for f in fields}, **{k: str(v) for k, v in counts.items()},
               "seconds": f"{sum(e.seconds for e in evs):.2f}"}
        if grid.kind.summary is not None and counts["failed"] == 0:
            sel = merged.sel(labels) if fields else merged
            row.update({k: f"{v:.4g}" for k, v in grid.kind.summary(sel).items()})
        rows.append(row)
    cols = list(dict.fromkeys(c for r in rows for c in r))
    width = {c: max(len(c), *(len(r.get(c, "")) for r in rows)) for c in cols}
    lines = ["  ".join(c.rjust(width[c]) for c in cols), "  ".join("-" * width[c] for c in cols)]
    lines += ["  ".join(r.get(c, "-").rjust(width[c]) for c in cols) for r in rows]
    return "\n".join(lines)


def run_sweep(grid: Grid | dict | str | os.PathLike, out: str | os.PathLike, executor: Executor | None = None,
              progress: bool = True) -> SweepResult:
    """Run ``grid`` with ``executor`` (default in-process), save each task under ``out/tasks``, merge into
    ``out/sweep.nc`` and return a :class:`SweepResult`.  Failed tasks are listed in ``failures`` and in
    ``attrs["failed_tasks"]`` (JSON: key, point, chunk, config, error); finished tasks are never lost.

    >>> import tempfile
    >>> res = run_sweep({"kind": "plugin_mi", "fixed": {"n": 100, "repeats": 3}, "axes": {"p": [0.0, 0.5]}},
    ...                 tempfile.mkdtemp(), progress=False)
    >>> res.dataset["I_exact"].values.round(6).tolist()
    [1.0, 0.0]
    """
    grid = grid if isinstance(grid, Grid) else load_grid(grid)
    out = Path(out)
    events = []
    n = len(grid.tasks())
    bar = tqdm(total=n, desc=f"sweep {grid.kind.name}", unit="task",
               disable=not progress or not sys.stderr.isatty())
    with bar:
        for ev in iter_sweep(grid, out, executor):
            events.append(ev)
            bar.update(1)
            if ev.status == "failed":
                bar.write(ev.describe())
    failures = [e for e in events if e.status == "failed"]
    report = json.dumps([{"key": e.spec.key, "point": e.spec.point, "chunk": e.spec.chunk, "config": e.spec.config,
                          "error": e.error} for e in failures], sort_keys=True)
    if len(failures) == len(events):  # nothing finished: nothing to merge
        empty = xr.Dataset(attrs={"failed_tasks": report})
        return SweepResult(empty, events, summary_table(grid, empty, events), None, failures)
    merged = merge(grid, out)
    merged.attrs["failed_tasks"] = report
    path = store.save(merged, out / "sweep.nc")
    return SweepResult(merged, events, summary_table(grid, merged, events), path, failures)
