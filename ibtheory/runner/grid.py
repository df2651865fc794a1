"""Experiment grids: a Cartesian product of configuration fields, validated before anything runs.

A grid names a task *kind* (see :mod:`ibtheory.runner.kinds`), a grid seed, the ``fixed`` fields shared by every
task and the ``axes``: fields with a list of values each.  The grid's points are the Cartesian product of the axes;
each point is split into tasks along the kind's split dimension (chunks of repeats for training, ranges of beta for
the IB solver).  A grid comes from a TOML file or a Python dict of the same shape::

    kind = "train"
    seed = 2017
    [fixed]
    epochs = 200
    repeats = 8
    repeats_per_task = 4
    [axes]
    activation = ["tanh", "relu"]
    train_fraction = [0.05, 0.8]

Determinism: the seed of a task is drawn from ``numpy.random.SeedSequence(grid_seed, spawn_key=words)`` where
``words`` are 32-bit words of the SHA-256 of the task's coordinates (its axis values, plus the chunk index unless the
kind draws each repeat from (seed, repeat index), see :class:`~ibtheory.runner.kinds.CountSplit`) written as
canonical JSON, so it never depends on the order tasks run in, the number of workers, or Python's salted
``hash()``.  Extending an axis leaves the seeds of the existing points unchanged.

Size: a grid may have at most :data:`MAX_GRID_TASKS` tasks (the product of its axis lengths times the tasks per
point), checked from the axis lengths before anything is expanded, so that a typo such as ``range(3_000_000)``
gives a ``ValueError`` at once rather than minutes of silence and memory exhaustion.

TOML is read with the standard library's ``tomllib`` (Python >= 3.11); on Python 3.10 the ``tomli`` package (same
API) is used when installed, otherwise reading a TOML file raises ``ImportError`` naming ``tomli``.
"""

from __future__ import annotations

import errno
import hashlib
import itertools
import json
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .._validate import show
from .kinds import TaskKind, get_kind

__all__ = ["Grid", "TaskSpec", "load_grid", "stable_digest", "task_seed", "coordinate_label", "MAX_GRID_TASKS"]

#: The most tasks a grid may have (points x tasks per point).  Each task is a few kB in memory and one file on disk;
#: split a larger study into several grids, or put more repeats into each task (``repeats_per_task``).
MAX_GRID_TASKS = 100_000

_TOP_KEYS = {"kind", "seed", "fixed", "axes", "name"}


def _load_toml(path: Path) -> dict:
    try:
        import tomllib
    except ModuleNotFoundError:  # pragma: no cover - Python 3.10
        try:
            import tomli as tomllib
        except ModuleNotFoundError:
            raise ImportError("reading TOML grids on Python 3.10 needs 'tomli' (pip install tomli)") from None
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"grid file {str(path)!r} is not valid TOML: {exc}") from None


def _canonical(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False)


def stable_digest(obj: Any) -> bytes:
    """SHA-256 of the canonical JSON of ``obj`` (sorted keys): the same bytes in every process and Python version.

    >>> stable_digest({"b": 1, "a": [1.5, "x"]}).hex()[:12] == stable_digest({"a": [1.5, "x"], "b": 1}).hex()[:12]
    True
    """
    return hashlib.sha256(_canonical(obj).encode()).digest()


def task_seed(grid_seed: int, coords: Mapping[str, Any]) -> int:
    """The seed (0 <= seed < 2**63) of the task at ``coords`` in a grid with seed ``grid_seed``.

    seed = first 64-bit word of SeedSequence(grid_seed, spawn_key=w) >> 1, w = the eight 32-bit words of
    SHA-256(canonical JSON of coords).  Independent of task order, worker count and process.
    """
    words = np.frombuffer(stable_digest(dict(coords)), dtype="<u4").tolist()
    ss = np.random.SeedSequence(int(grid_seed), spawn_key=tuple(words))
    return int(ss.generate_state(1, dtype=np.uint64)[0] >> np.uint64(1))


def coordinate_label(value: Any) -> Any:
    """The scalar coordinate used for an axis value: lists (like ``hidden = [10, 7, 5]``) become ``"10-7-5"``."""
    if isinstance(value, (list, tuple)):
        return "-".join(str(coordinate_label(v)) for v in value)
    return value


@dataclass(frozen=True)
class TaskSpec:
    """One unit of work: a kind, its full configuration, coordinates in the grid, chunk and derived seed.

    ``key`` (a file name stem) is the SHA-256 prefix of (kind, config, coords, seed), so a changed configuration never
    reuses a stale result from disk.
    """

    kind: str
    config: dict
    point: dict  # axis field -> coordinate label
    chunk: int
    chunk_info: dict  # what the split put into this chunk (e.g. repeat_start, betas)
    seed: int
    key: str


def _check_size(kind: TaskKind, config: dict, axes: dict[str, list]) -> None:
    """``ValueError`` when the grid would have more than :data:`MAX_GRID_TASKS` tasks, computed from the axis
    lengths and the split of one point (the fields that control the split cannot be axes, so every point splits
    alike) before anything is expanded."""
    points = math.prod(len(v) for v in axes.values())
    counter = getattr(kind.split, "n_chunks", None)
    per_point = counter(config) if counter is not None else len(kind.split.chunks(config))
    n = points * per_point
    if n > MAX_GRID_TASKS:
        shape = " x ".join(f"{len(v)} {k}" for k, v in axes.items()) or "1 point"
        raise ValueError(f"grid has {n:,} tasks ({shape} = {points:,} point(s), {per_point:,} task(s) per point), "
                         f"more than the maximum {MAX_GRID_TASKS:,} (ibtheory.runner.grid.MAX_GRID_TASKS): split it "
                         "into several grids or put more work into each task")


@dataclass(frozen=True)
class Grid:
    """A validated experiment grid; build it with :meth:`from_dict` or :func:`load_grid`."""

    kind: TaskKind
    seed: int
    fixed: dict
    axes: dict  # field -> list of values, in the order given
    name: str = ""

    @classmethod
    def from_dict(cls, spec: Mapping[str, Any]) -> Grid:
        """Validate a grid given as a dict (the TOML layout); raise ``ValueError`` naming the offending field."""
        if not isinstance(spec, Mapping):
            raise ValueError(f"grid must be a mapping (TOML table or dict), got {type(spec).__name__}")
        unknown = sorted(set(spec) - _TOP_KEYS)
        if unknown:
            raise ValueError(f"grid has unknown top-level key(s) {unknown}; allowed: {sorted(_TOP_KEYS)}")
        if "kind" not in spec:
            raise ValueError("grid lacks 'kind' (the task kind to run, e.g. 'train' or 'ib_curve')")
        kind = get_kind(spec["kind"])
        seed = spec.get("seed", 0)
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
            raise ValueError(f"grid field 'seed' must be a non-negative integer, got {show(seed)}")
        fixed = spec.get("fixed", {})
        axes = spec.get("axes", {})
        for name, table in (("fixed", fixed), ("axes", axes)):
            if not isinstance(table, Mapping):
                raise ValueError(f"grid '{name}' must be a table of fields, got {type(table).__name__}")
        for k in [*fixed, *axes]:
            if k in kind.split.internal_fields:
                raise ValueError(f"field '{k}' is set by the task split; remove it from the grid")
        for k in axes:
            if k in kind.split.control_fields:
                raise ValueError(f"field '{k}' controls how tasks are split and cannot be an axis; put it in 'fixed'")
        both = sorted(set(fixed) & set(axes))
        if both:
            raise ValueError(f"field(s) {both} appear in both 'fixed' and 'axes'")
        checked_fixed = {k: kind.check(k, v) for k, v in fixed.items()}
        checked_axes: dict[str, list] = {}
        for k, values in axes.items():
            if not isinstance(values, (list, tuple)):
                raise ValueError(f"axis '{k}' must be a list of values, got {type(values).__name__}")
            if len(values) == 0:
                raise ValueError(f"axis '{k}' is empty; give at least one value")
            checked = [kind.check(k, v) for v in values]
            labels = [coordinate_label(v) for v in checked]
            if len(set(map(_canonical, labels))) != len(labels):
                raise ValueError(f"axis '{k}' has repeated values {labels}")
            checked_axes[k] = checked
        kind.check_complete({**checked_fixed, **{k: v[0] for k, v in checked_axes.items()}})
        _check_size(kind, {**kind.defaults, **checked_fixed, **{k: v[0] for k, v in checked_axes.items()}},
                    checked_axes)
        if kind.validate is not None:
            names = list(checked_axes)
            for combo in itertools.product(*(checked_axes[k] for k in names)):
                point = dict(zip(names, combo, strict=True))
                try:
                    kind.validate({**kind.defaults, **checked_fixed, **point})
                except ValueError as exc:
                    where = f" at point {point}" if point else ""
                    raise ValueError(f"task kind '{kind.name}'{where}: {exc}") from None
        name = spec.get("name", "")
        if not isinstance(name, str):
            raise ValueError(f"grid field 'name' must be a string, got {show(name)}")
        return cls(kind=kind, seed=int(seed), fixed=checked_fixed, axes=checked_axes, name=name)

    @property
    def shape(self) -> dict[str, int]:
        """Number of values along each axis."""
        return {k: len(v) for k, v in self.axes.items()}

    def points(self) -> list[dict]:
        """The grid points: dicts field -> value, Cartesian product in axis order (last axis fastest)."""
        names = list(self.axes)
        return [dict(zip(names, combo, strict=True)) for combo in itertools.product(*(self.axes[k] for k in names))]

    def tasks(self) -> list[TaskSpec]:
        """Every task of the grid, in a deterministic order (points, then chunks)."""
        out = []
        for point in self.points():
            config = {**self.kind.defaults, **self.fixed, **point}
            labels = {k: coordinate_label(v) for k, v in point.items()}
            for chunk, (update, info) in enumerate(self.kind.split.chunks(config)):
                coords = {**labels, "_chunk": chunk} if self.kind.split.seed_per_chunk else labels
                seed = task_seed(self.seed, coords)
                full = {**config, **update}
                key = "t" + stable_digest([self.kind.name, full, coords, seed]).hex()[:20]
                out.append(TaskSpec(self.kind.name, full, labels, chunk, info, seed, key))
        return out

    def to_dict(self) -> dict:
        """The grid as given (validated values), JSON-able: goes into the merged result's provenance."""
        return {"kind": self.kind.name, "seed": self.seed, "fixed": self.fixed, "axes": self.axes, "name": self.name}


def load_grid(source: str | os.PathLike | Mapping[str, Any]) -> Grid:
    """A validated :class:`Grid` from a TOML file path or a dict; ``ValueError`` names any bad field.

    >>> g = load_grid({"kind": "plugin_mi", "seed": 1, "fixed": {"n": 64, "repeats": 4, "repeats_per_task": 2},
    ...                "axes": {"p": [0.1, 0.2]}})
    >>> len(g.tasks())
    4
    """
    if isinstance(source, Mapping):
        return Grid.from_dict(source)
    if isinstance(source, bool) or not isinstance(source, (str, os.PathLike)):
        raise ValueError(f"grid must be a TOML file path or a dict, got {type(source).__name__}")
    path = Path(source)
    if path.is_dir():
        raise IsADirectoryError(errno.EISDIR, "is a directory, not a grid file (TOML)", str(path))
    if not path.is_file():
        raise FileNotFoundError(f"grid file {str(path)!r} does not exist")
    return Grid.from_dict(_load_toml(path))
