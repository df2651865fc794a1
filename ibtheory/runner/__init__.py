"""Running grids of experiments in-process, on a local process pool or on a dask.distributed cluster.

A grid (:func:`load_grid`, from TOML or a dict) is a Cartesian product of configuration fields of a task *kind*
(:func:`register_kind`; built in: ``plugin_mi``, ``train``, ``ib_curve``), validated before anything runs and split
into tasks (chunks of repeats, ranges of beta).  :func:`run_sweep` runs them with an executor
(:class:`InProcess`, :class:`ProcessPool`, :class:`Dask`), saves each finished task at once, skips tasks already on
disk, reports failures with their configuration, and merges everything into one Dataset whose dimensions are the
grid's axes.  Seeds derive from the grid seed and each task's coordinates, so results do not depend on the
executor or the number of workers.  See docs/scaling.md.
"""

from . import builtin  # noqa: F401  (registers the train and ib_curve kinds)
from .executors import Dask, Executor, InProcess, ProcessPool, make_executor
from .grid import MAX_GRID_TASKS, Grid, TaskSpec, coordinate_label, load_grid, stable_digest, task_seed
from .kinds import (
    CountSplit,
    Field,
    NoSplit,
    RangeSplit,
    TaskKind,
    get_kind,
    kind_names,
    plugin_mi,
    register_kind,
)
from .sweep import SweepResult, TaskEvent, iter_sweep, merge, pending, run_sweep, summary_table

__all__ = [
    "Grid", "TaskSpec", "load_grid", "MAX_GRID_TASKS", "stable_digest", "task_seed", "coordinate_label",
    "Field", "TaskKind", "NoSplit", "CountSplit", "RangeSplit", "register_kind", "get_kind", "kind_names",
    "plugin_mi", "Executor", "InProcess", "ProcessPool", "Dask", "make_executor",
    "TaskEvent", "SweepResult", "iter_sweep", "run_sweep", "merge", "summary_table", "pending",
]
