"""Task kinds: named functions ``(config, seed) -> xarray.Dataset`` with a typed field schema and a split rule.

A kind declares every configuration field it accepts (a checker that returns the normalised value or raises
``ValueError`` naming the field), the defaults, and how one grid point is split into tasks (:class:`CountSplit`
for chunks of repeats, :class:`RangeSplit` for ranges of a sorted value list such as beta, :class:`NoSplit`).
The runner validates a whole grid against the schema before anything runs.

Built in here: ``plugin_mi``, a cheap pure-numpy kind (the plug-in estimate of I(X;Y) of a binary symmetric source
from n samples, with its exact value and the Miller-Madow bias) used by tests, examples and benchmarks.  The
``train`` and ``ib_curve`` kinds live in :mod:`ibtheory.runner.builtin`.

References
----------
1. G. A. Miller, "Note on the bias of information estimates", in *Information Theory in Psychology*, 1955.
2. L. Paninski, "Estimation of entropy and mutual information", Neural Computation 15 (2003) 1191-1253.
"""

from __future__ import annotations

import hashlib
import math
import os
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import xarray as xr

from .._validate import show
from ..info import LN2, entropy_rows

__all__ = [
    "Field", "TaskKind", "NoSplit", "CountSplit", "RangeSplit", "register_kind", "get_kind", "kind_names",
    "integer", "number", "choice", "boolean", "int_list", "optional", "plugin_mi", "source_digest",
]

REQUIRED = object()


# ---------------------------------------------------------------- field checkers (value, name) -> value
def integer(minimum: int | None = None) -> Callable[[Any, str], int]:
    """Checker for an integer (not a bool) >= ``minimum``."""
    def check(v: Any, name: str) -> int:
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
            raise ValueError(f"field '{name}' must be an integer, got {type(v).__name__} {v!r}")
        if minimum is not None and v < minimum:
            raise ValueError(f"field '{name}' must be >= {minimum}, got {show(v)}")
        return int(v)
    return check


def number(minimum: float | None = None, maximum: float | None = None) -> Callable[[Any, str], float]:
    """Checker for a finite real number in [minimum, maximum] (integers accepted and converted to float)."""
    def check(v: Any, name: str) -> float:
        if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)) or not math.isfinite(v):
            raise ValueError(f"field '{name}' must be a finite number, got {type(v).__name__} {v!r}")
        if (minimum is not None and v < minimum) or (maximum is not None and v > maximum):
            raise ValueError(f"field '{name}' must lie in [{minimum}, {maximum}], got {show(v)}")
        return float(v)
    return check


def choice(*options: str) -> Callable[[Any, str], str]:
    """Checker for one of the given strings."""
    def check(v: Any, name: str) -> str:
        if not isinstance(v, str) or v not in options:
            raise ValueError(f"field '{name}' must be one of {list(options)}, got {show(v)}")
        return v
    return check


def boolean(v: Any, name: str) -> bool:
    """Checker for true/false."""
    if not isinstance(v, (bool, np.bool_)):
        raise ValueError(f"field '{name}' must be true or false, got {type(v).__name__} {v!r}")
    return bool(v)


def int_list(minimum: int = 1, min_len: int = 1) -> Callable[[Any, str], list[int]]:
    """Checker for a list of integers >= ``minimum`` with at least ``min_len`` entries (e.g. layer widths)."""
    item = integer(minimum)

    def check(v: Any, name: str) -> list[int]:
        if not isinstance(v, (list, tuple)) or len(v) < min_len:
            raise ValueError(f"field '{name}' must be a list of at least {min_len} integer(s), got {show(v)}")
        return [item(x, f"{name}[{i}]") for i, x in enumerate(v)]
    return check


def optional(inner: Callable[[Any, str], Any]) -> Callable[[Any, str], Any]:
    """Checker accepting ``None`` or what ``inner`` accepts (TOML has no null: None only comes from Python)."""
    def check(v: Any, name: str) -> Any:
        return None if v is None else inner(v, name)
    return check


@dataclass(frozen=True)
class Field:
    """A configuration field: its checker, default (``REQUIRED`` when it has none) and a one-line description."""

    check: Callable[[Any, str], Any]
    default: Any = REQUIRED
    doc: str = ""


# ---------------------------------------------------------------- splits: one grid point -> tasks
@dataclass(frozen=True)
class NoSplit:
    """One task per grid point."""

    dim: str | None = None
    control_fields: frozenset = frozenset()
    internal_fields: frozenset = frozenset()

    seed_per_chunk = False

    def chunks(self, config: dict) -> list[tuple[dict, dict]]:
        return [({}, {})]

    def n_chunks(self, config: dict) -> int:
        """Number of tasks per grid point (without building them): 1."""
        return 1

    def place(self, ds: xr.Dataset, info: dict) -> xr.Dataset:
        return ds


@dataclass(frozen=True)
class CountSplit:
    """Split ``config[total]`` members (e.g. repeats) into chunks of ``config[size]``; the task sees ``total = n``.

    The result's ``dim`` coordinate is shifted to the chunk's global positions start..start+n-1.  When the kind
    accepts the chunk's start (``offset`` names that field, e.g. ``repeat_start``) and draws every member from
    (seed, member index), all chunks of a point share the point's seed and the results do not depend on the chunk
    size either; otherwise (``offset=None``) every chunk gets its own seed.
    """

    dim: str = "repeat"
    total: str = "repeats"
    size: str = "repeats_per_task"
    offset: str | None = None

    @property
    def seed_per_chunk(self) -> bool:
        return self.offset is None

    @property
    def internal_fields(self) -> frozenset:
        return frozenset({self.offset} - {None})

    @property
    def control_fields(self) -> frozenset:
        return frozenset({self.total, self.size})

    def chunks(self, config: dict) -> list[tuple[dict, dict]]:
        total = config[self.total]
        size = config.get(self.size) or total
        extra = (lambda s: {self.offset: s}) if self.offset else (lambda s: {})
        return [({self.total: min(size, total - s), **extra(s)}, {f"{self.dim}_start": s})
                for s in range(0, total, size)]

    def n_chunks(self, config: dict) -> int:
        """Number of tasks per grid point, ceil(total / size), without building them."""
        total = config[self.total]
        return -(-total // (config.get(self.size) or total)) if total else 0

    def place(self, ds: xr.Dataset, info: dict) -> xr.Dataset:
        start = info[f"{self.dim}_start"]
        return ds.assign_coords({self.dim: np.arange(start, start + ds.sizes[self.dim])})


@dataclass(frozen=True)
class RangeSplit:
    """Split the sorted list ``config[values]`` (e.g. betas) into consecutive ranges of ``config[size]`` values.

    The task sees the whole list and ``config["<dim>_range"] = [i0, i1]``: it computes values[i0:i1] and may use
    values[:i0] to warm-start (anneal) into its range.  The result carries its own ``dim`` coordinate.
    """

    dim: str = "beta"
    values: str = "betas"
    size: str = "betas_per_task"
    seed_per_chunk = False

    @property
    def control_fields(self) -> frozenset:
        return frozenset({self.values, self.size})

    @property
    def internal_fields(self) -> frozenset:
        return frozenset({f"{self.dim}_range"})

    def chunks(self, config: dict) -> list[tuple[dict, dict]]:
        n = len(config[self.values])
        size = config.get(self.size) or n
        return [({f"{self.dim}_range": [s, min(s + size, n)]}, {}) for s in range(0, n, size)]

    def n_chunks(self, config: dict) -> int:
        """Number of tasks per grid point, ceil(len(values) / size), without building them."""
        n = len(config[self.values])
        return -(-n // (config.get(self.size) or n)) if n else 0

    def place(self, ds: xr.Dataset, info: dict) -> xr.Dataset:
        return ds


# ---------------------------------------------------------------- kinds and their registry
@dataclass(frozen=True)
class TaskKind:
    """A named task function with its field schema.

    ``func(config, seed) -> Dataset`` must be a module-level function (it is pickled by reference to reach process
    pools and dask workers).  ``summary(ds) -> {name: float}`` reduces one grid point's merged result to a few
    numbers for the sweep's table.  ``validate(config)`` checks a whole point's configuration (relations between
    fields) when the grid is built and raises ``ValueError``.  ``finalize(ds)`` post-processes one grid point's merged
    chunks (e.g. recomputes a concave hull over all its betas).  ``worker_check(config) -> str | None`` runs on every
    worker before anything runs, once per distinct ``device`` value of the grid (e.g. that a requested CUDA device
    exists there), and returns an error message or None.
    """

    name: str
    func: Callable[[dict, int], xr.Dataset]
    fields: Mapping[str, Field]
    split: Any = field(default_factory=NoSplit)
    summary: Callable[[xr.Dataset], dict] | None = None
    validate: Callable[[dict], None] | None = None
    finalize: Callable[[xr.Dataset], xr.Dataset] | None = None
    worker_check: Callable[[dict], str | None] | None = None
    doc: str = ""

    @property
    def defaults(self) -> dict:
        return {k: f.default for k, f in self.fields.items() if f.default is not REQUIRED}

    def check(self, name: str, value: Any) -> Any:
        """The normalised value of field ``name``; ``ValueError`` for an unknown field or a bad value."""
        if name not in self.fields:
            raise ValueError(f"unknown field '{name}' for task kind '{self.name}'; known: {sorted(self.fields)}")
        return self.fields[name].check(value, name)

    def check_complete(self, config: Mapping[str, Any]) -> None:
        """Raise ``ValueError`` naming the required fields that ``config`` lacks."""
        missing = [k for k, f in self.fields.items() if f.default is REQUIRED and k not in config]
        if missing:
            raise ValueError(f"task kind '{self.name}' needs field(s) {missing} in 'fixed' or 'axes'")


_REGISTRY: dict[str, TaskKind] = {}
_DIGESTS: dict[str, str | None] = {}


def _module_digest(func: Callable) -> str | None:
    """SHA-256 (16 hex digits) of the source file of the module defining ``func``, None if it has none."""
    path = getattr(sys.modules.get(getattr(func, "__module__", ""), None), "__file__", None)
    if not path or not os.path.isfile(path):
        return None
    with open(path, "rb") as fh:
        return hashlib.sha256(fh.read()).hexdigest()[:16]


def source_digest(name: str) -> str | None:
    """Digest of the source of kind ``name``'s module when it was registered (None: unknown here)."""
    return _DIGESTS.get(name)


def register_kind(kind: TaskKind, replace: bool = False) -> TaskKind:
    """Add ``kind`` to the registry (``replace=True`` to overwrite an existing name); returns it."""
    if not isinstance(kind, TaskKind):
        raise ValueError(f"kind must be a TaskKind, got {type(kind).__name__}")
    if kind.name in _REGISTRY and not replace:
        raise ValueError(f"a task kind named '{kind.name}' is already registered (pass replace=True)")
    _REGISTRY[kind.name] = kind
    _DIGESTS[kind.name] = _module_digest(kind.func)
    return kind


def get_kind(name: str) -> TaskKind:
    """The registered kind called ``name``; ``ValueError`` lists the known kinds otherwise."""
    if isinstance(name, TaskKind):
        return name
    if not isinstance(name, str) or name not in _REGISTRY:
        raise ValueError(f"unknown task kind {name!r}; registered kinds: {kind_names()}")
    return _REGISTRY[name]


def kind_names() -> list[str]:
    """Names of the registered kinds, sorted."""
    return sorted(_REGISTRY)


# ---------------------------------------------------------------- the cheap pure-numpy kind
def plugin_mi(config: dict, seed: int) -> xr.Dataset:
    """Plug-in estimates of I(X;Y) in bits for a binary symmetric source, one per repeat (vectorised).

    X uniform on {0,1}, Y = X xor Bernoulli(p).  Each repeat draws n pairs, counts N(x,y) ~ Multinomial(n, p_xy)
    and returns I_hat = H(X_hat) + H(Y_hat) - H(X_hat,Y_hat) of the empirical joint.  Exact value
    I(X;Y) = 1 - h2(p) bits; the Miller-Madow first-order bias is (|X|-1)(|Y|-1) / (2 n ln 2) = 1/(2 n ln 2) bits.

    Config: ``p`` (crossover, [0, 1]), ``n`` (samples per repeat), ``repeats``, ``delay_s`` (sleep after computing,
    to emulate long tasks in scheduler tests).  Returns ``I_plugin(repeat)``, ``I_exact``, ``bias_miller_madow``
    (bits).  Known answer: p = 0.5 gives I_exact = 0 and every I_plugin >= 0.
    """
    p, n, repeats = config["p"], config["n"], config["repeats"]
    joint = 0.5 * np.array([1 - p, p, p, 1 - p])
    rng = np.random.default_rng(seed)
    counts = rng.multinomial(n, joint, size=repeats).reshape(repeats, 2, 2) / n
    i_hat = entropy_rows(counts.sum(axis=2)) + entropy_rows(counts.sum(axis=1)) - entropy_rows(
        counts.reshape(repeats, 4))
    exact = 1.0 - float(entropy_rows(np.array([p, 1 - p])))
    if config.get("delay_s", 0.0) > 0:
        time.sleep(config["delay_s"])
    bits = {"units": "bits"}
    return xr.Dataset(
        {
            "I_plugin": ("repeat", np.maximum(i_hat, 0.0), {**bits, "long_name": "plug-in estimate of I(X;Y)"}),
            "I_exact": ((), exact, {**bits, "long_name": "I(X;Y) = 1 - h2(p)"}),
            "bias_miller_madow": ((), 1.0 / (2 * n * LN2), {**bits, "long_name": "1/(2 n ln 2)"}),
        },
        coords={"repeat": np.arange(repeats)},
    )


def _plugin_summary(ds: xr.Dataset) -> dict:
    return {"I_plugin_mean": float(ds["I_plugin"].mean()), "I_exact": float(ds["I_exact"].mean())}


register_kind(TaskKind(
    name="plugin_mi",
    func=plugin_mi,
    fields={
        "p": Field(number(0.0, 1.0), doc="crossover probability of the binary symmetric source"),
        "n": Field(integer(1), doc="samples per repeat"),
        "repeats": Field(integer(1), 1, "estimates per grid point"),
        "repeats_per_task": Field(optional(integer(1)), None, "repeats per task (None: all in one task)"),
        "delay_s": Field(number(0.0), 0.0, "seconds to sleep per task (emulates long tasks)"),
    },
    split=CountSplit(),
    summary=_plugin_summary,
    doc="plug-in MI of a binary symmetric source (cheap, pure numpy)",
))
