"""The built-in task kinds that call the rest of the package: ``train`` (network ensembles) and ``ib_curve``.

``train`` runs :func:`ibtheory.nets.train` on a task (the paper's by default) for one architecture x activation x
training size x chunk of repeats.  Every repeat draws its initialisation, split, labels and minibatch order from
(seed, repeat index), so all chunks of a grid point share the point's seed, get ``repeat_start`` and the merged
result does not depend on ``repeats_per_task`` nor on the number of workers.  ``device`` ("cpu", "cuda",
"cuda:1") is checked on every worker before anything runs.

``ib_curve`` computes the IB curve of a task on a sorted beta list split into ranges (``betas_per_task``).  The
solver anneals both down from the largest beta and up from the smallest; each range is annealed into from
warm-up paths of at most ``warmup`` betas of the list on each side, so ranges run in parallel yet each starts from
a solution continued along beta, as one long annealing run would.  The concave hull and the critical betas are
recomputed over the merged betas.

Both kinds take the task fields of :func:`task_fields`: ``task``, a name of :data:`ibtheory.tasks.BUILTIN`, and the
parameters of the built-in tasks (``gamma``, ``info_bits``, ``p``, ``rho``, ``grid``, ...), read from the task
registry whenever a grid is checked, so a task registered with :func:`ibtheory.tasks.register` is a grid's task
without editing this module.  The train kind's training fields and their defaults (the paper's setting) are
:class:`ibtheory.nets.TrainConfig`'s; its estimator fields are those of :func:`ibtheory.nets.train`: ``estimators``,
the binning grid (``n_bins``, ``limits``, ``scheme`` "width" | "mass" | "idnns", or ``bin_width`` with ``anchor``),
``labels`` ("exact" | "sampled") with ``label_seed``, and ``noise_var``; a point train would refuse (e.g. ``n_bins``
with ``bin_width``) is refused when the grid is loaded.

Torch, :mod:`ibtheory.nets` and :mod:`ibtheory.ib` are imported only when a task of their kind runs or is
validated, so importing the runner stays light.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import numpy as np
import xarray as xr

from .. import tasks
from .._validate import show
from ..estimators import ESTIMATORS
from .kinds import (
    REQUIRED,
    CountSplit,
    Field,
    RangeSplit,
    TaskKind,
    choice,
    int_list,
    integer,
    number,
    optional,
    register_kind,
)

__all__ = ["train_task", "ib_curve_task", "check_device", "device_field", "beta_values", "task_fields", "TRAIN_FIELDS"]


def _text(v: Any, name: str) -> str:
    if not isinstance(v, str) or not v:
        raise ValueError(f"field '{name}' must be a non-empty string, got {show(v)}")
    return v


def device_field(v: Any, name: str) -> str:
    """Field checker of a torch device's spelling: 'cpu', 'cuda' or 'cuda:N' (whether it exists is the worker
    check :func:`check_device`)."""
    v = _text(v, name)
    if not (v == "cpu" or v == "cuda" or (v.startswith("cuda:") and v[5:].isdigit())):
        raise ValueError(f"field '{name}' must be 'cpu', 'cuda' or 'cuda:N', got {show(v)}")
    return v


def check_device(config: dict) -> str | None:
    """Worker check: None when ``config['device']`` exists in this process, else the reason it does not."""
    device = config.get("device", "cpu")
    if device == "cpu":
        return None
    import torch

    if not torch.cuda.is_available():
        return f"device {device!r} was asked for but CUDA is not available (torch {torch.__version__})"
    index = int(device.partition(":")[2] or 0)
    if index >= torch.cuda.device_count():
        return f"device {device!r} was asked for but only {torch.cuda.device_count()} CUDA device(s) exist"
    return None


# ---------------------------------------------------------------- the task p(x,y) of a grid point
def _task_params(config: dict) -> dict:
    """The parameters of the point's task (``config['task']``, a name of :data:`ibtheory.tasks.BUILTIN`) that
    ``config`` holds (a grid's configurations hold all of them; the others take the task's defaults)."""
    return {k: config[k] for k in tasks.BUILTIN[config["task"]].defaults if k in config}


def _task(config: dict) -> xr.Dataset:
    """The point's task: ``tasks.make(config['task'], **its parameters)``."""
    return tasks.make(config["task"], **_task_params(config))


@functools.lru_cache(maxsize=32)
def _check_task(task: tasks.BuiltinTask, params: tuple) -> None:
    tasks.make(task.name, **dict(params))


def _validate_task(config: dict) -> None:
    """Build the point's task once per distinct (task, parameters), so that a value its constructor refuses (gamma
    <= 0, p > 1, ...) stops the grid before anything runs, with the constructor's message naming the parameter."""
    _check_task(tasks.BUILTIN[config["task"]], tuple(_task_params(config).items()))


def _task_name(v: Any, name: str) -> str:
    try:
        return tasks.resolve(v)
    except ValueError:
        raise ValueError(f"field '{name}' must be one of {list(tasks.BUILTIN)}, got {show(v)}") from None


def task_fields() -> dict[str, Field]:
    """The fields that choose a point's task p(x,y), read from :data:`ibtheory.tasks.BUILTIN`: ``task`` (a name;
    aliases and hyphens are stored as the name) and one field per task parameter, with its type and default (the
    parameters of the tasks not chosen are ignored).  Ranges are checked by building the task (``validate``)."""
    fields = {"task": Field(_task_name, "tishby", f"which task p(x,y): {', '.join(tasks.BUILTIN)}")}
    for name, users in tasks.parameters().items():
        p = users[0][1]
        check = integer() if p.type is int else number()
        fields[name] = Field(optional(check) if p.default is None else check, p.default,
                             "; ".join(f"{t}: {q.help}" for t, q in users))
    return fields


class _Fields(Mapping):
    """A kind's fields, assembled when read: :func:`task_fields` (so a task registered after import is accepted),
    then the fields ``late()`` returns (built on first read: the train kind's read TrainConfig, whose import brings
    in torch), then the kind's own.  ``ValueError`` when a task parameter takes the name of a field of the kind."""

    def __init__(self, own: dict[str, Field], late: Callable[[], dict[str, Field]] | None = None) -> None:
        self._own, self._late, self._late_fields = own, late, None

    def _all(self) -> dict[str, Field]:
        if self._late_fields is None:
            self._late_fields = self._late() if self._late else {}
        mine = {**self._late_fields, **self._own}
        shared = task_fields()
        clash = sorted(set(shared) & set(mine))
        if clash:
            raise ValueError(f"task parameter(s) {clash} (ibtheory.tasks.BUILTIN) clash with field(s) of this task "
                             "kind; rename the parameter(s)")
        return {**shared, **mine}

    def __getitem__(self, name: str) -> Field:
        return self._all()[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._all())

    def __len__(self) -> int:
        return len(self._all())


def _train_config_fields() -> dict[str, Field]:
    """The train kind's fields that :class:`ibtheory.nets.TrainConfig` defines, with its defaults (the paper's
    setting) and help; the checkers here check each value, TrainConfig a whole point (``validate``)."""
    from ..nets import TrainConfig

    checks = {"hidden": int_list(1), "activation": _text, "repeats": integer(1), "repeat_start": integer(0),
              "epochs": integer(0), "lr": number(1e-300), "optimizer": choice("adam", "sgd"),
              "batch_size": integer(1), "train_fraction": number(0.0, 1.0), "snapshots": integer(1),
              "device": device_field, "dtype": choice("float32", "float64"), "weight_decay": number(0.0),
              "quantize_bits": optional(integer(2))}
    notes = {"repeat_start": "set by the split", "device": "torch device: cpu, cuda, cuda:N (checked on every worker)"}
    return {f.name: Field(checks[f.name], list(f.default) if isinstance(f.default, tuple) else f.default,
                          notes.get(f.name, f.metadata["help"]))
            for f in dataclasses.fields(TrainConfig) if f.name in checks}


#: Fields passed through to ibtheory.nets.train (names of its keyword arguments).
TRAIN_FIELDS = ("hidden", "activation", "repeats", "repeat_start", "epochs", "lr", "optimizer", "batch_size",
                "weight_decay", "quantize_bits",
                "train_fraction", "snapshots", "device", "dtype", "estimators", "n_bins", "limits", "scheme",
                "bin_width", "anchor", "labels", "label_seed", "noise_var")


def _estimators(v: Any, name: str) -> list[str]:
    if not isinstance(v, (list, tuple)) or not v or any(e not in ESTIMATORS for e in v):
        raise ValueError(f"field '{name}' must be a non-empty list drawn from {list(ESTIMATORS)}, got {show(v)}")
    return list(v)


def _limits(v: Any, name: str) -> str | list[float]:
    """Checker: "adaptive" or a pair [lo, hi] of finite numbers (lo < hi is checked with the other binning options)."""
    if isinstance(v, str) and v == "adaptive":
        return v
    if not isinstance(v, (list, tuple)) or len(v) != 2:
        raise ValueError(f"field '{name}' must be 'adaptive' or a pair [lo, hi], got {show(v)}")
    return [number()(x, f"{name}[{i}]") for i, x in enumerate(v)]


def train_task(config: dict, seed: int) -> xr.Dataset:
    """Train ``config['repeats']`` networks (repeats repeat_start.. of the grid point) with ``ibtheory.nets.train``."""
    from ..nets import train

    kwargs = {k: config[k] for k in TRAIN_FIELDS}
    kwargs["hidden"] = tuple(kwargs["hidden"])
    kwargs["estimators"] = tuple(kwargs["estimators"])
    return train(_task(config), seed=seed, progress=False, **kwargs)


def _validate_train(config: dict) -> None:
    """The checks of ``ibtheory.nets.train`` itself (e.g. n_bins >= 2, lr > 0), so a grid point that train would
    refuse is refused before any task runs; ``device`` is checked on every worker instead."""
    from ..nets.run import check_arguments

    _validate_task(config)
    check_arguments(**{k: config[k] for k in TRAIN_FIELDS if k != "device" and k in config})  # ValueError naming it


def _train_summary(ds: xr.Dataset) -> dict:
    out = {}
    for name in ("train_accuracy", "test_accuracy", "train_loss", "test_loss"):
        if name in ds and "epoch" in ds[name].dims:
            out[f"final_{name}"] = float(ds[name].isel(epoch=-1).mean())
    return out


register_kind(TaskKind(
    name="train",
    func=train_task,
    fields=_Fields(late=_train_config_fields, own={
        "repeats_per_task": Field(optional(integer(1)), None, "networks per task (default: all in one task)"),
        "estimators": Field(_estimators, ["binning"], f"layer MI estimators of the registry ({', '.join(ESTIMATORS)})"),
        "n_bins": Field(optional(integer(1)), None, "bins per unit (binning, ensemble; default 30, not with "
                        "bin_width)"),
        "limits": Field(_limits, [-1.0, 1.0], "binning range [lo, hi] or 'adaptive' (binning, ensemble)"),
        "scheme": Field(choice("width", "mass", "idnns"), "width", "binning scheme (idnns: the authors' np.digitize "
                        "grid, n_bins + 1 states per unit)"),
        "bin_width": Field(optional(number(1e-300)), None, "fixed bin width instead of n_bins (Saxe et al.: 0.07)"),
        "anchor": Field(optional(number()), None, "anchor of the bin_width bins (default 0)"),
        "labels": Field(choice("exact", "sampled"), "exact", "I(T;Y) of binning from the exact p(y|x) or one "
                        "sampled label per pattern"),
        "label_seed": Field(integer(0), 0, "seed of labels = 'sampled'"),
        "noise_var": Field(number(1e-300), 0.1, "noise variance of the kde estimator"),
    }),
    split=CountSplit("repeat", "repeats", "repeats_per_task", offset="repeat_start"),
    summary=_train_summary,
    validate=_validate_train,
    worker_check=check_device,
    doc="network ensembles on the paper's task (ibtheory.nets.train)",
))


# ---------------------------------------------------------------- IB curves on beta ranges
def beta_values(v: Any, name: str) -> list[float]:
    """Checker: a list of positive betas, or a table {start, stop, num} of log-spaced betas; returns them sorted."""
    if isinstance(v, dict):
        unknown = sorted(set(v) - {"start", "stop", "num"})
        if unknown or not {"start", "stop", "num"} <= set(v):
            raise ValueError(f"field '{name}' as a table needs exactly start, stop, num; got keys {sorted(v)}")
        start, stop = number(1e-300)(v["start"], f"{name}.start"), number(1e-300)(v["stop"], f"{name}.stop")
        num = integer(1)(v["num"], f"{name}.num")
        if stop < start:
            raise ValueError(f"field '{name}': stop ({stop}) must be >= start ({start})")
        return [float(b) for b in np.geomspace(start, stop, num)]
    if not isinstance(v, (list, tuple)) or not v:
        raise ValueError(f"field '{name}' must be a non-empty list of betas or a table {{start, stop, num}}")
    values = sorted(number(1e-300)(b, f"{name}[{i}]") for i, b in enumerate(v))
    if len(set(values)) != len(values):
        raise ValueError(f"field '{name}' has repeated betas")
    return values


def _warmup_path(side: list[float], count: int) -> list[float]:
    """At most ``count`` betas of ``side`` evenly spaced by index, always including its end nearest the range."""
    if count <= 0 or not side:
        return []
    idx = np.unique(np.round(np.linspace(0, len(side) - 1, min(count, len(side)))).astype(int))
    return [side[i] for i in idx]


def ib_curve_task(config: dict, seed: int) -> xr.Dataset:
    """The IB curve at betas[i0:i1] (``beta_range``), annealed into from both sides; Dataset over ``beta``.

    :func:`ibtheory.ib.ib_curve` anneals down from the largest beta (identity start) and up from the smallest
    (trivial start); this task hands it the range plus at most ``warmup`` betas below and ``warmup`` above it from
    the grid's list, so both annealing passes arrive at the range from a continued solution, then keeps the range.
    Variables without ``beta`` that describe the whole computed path (hull, critical betas) are dropped here and
    recomputed over the merged betas by :func:`finalize_ib_curve`.
    """
    from ..ib import ib_curve  # here, as the module docstring says: the command line starts without ibtheory.ib

    betas = config["betas"]
    i0, i1 = config.get("beta_range") or (0, len(betas))
    own = betas[i0:i1]
    below = _warmup_path(betas[:i0], config["warmup"])
    above = _warmup_path(betas[i1:], config["warmup"])
    p_xy = _task(config)["p_xy"].values
    curve = ib_curve(p_xy, betas=np.array(below + own + above), seed=seed, refine_critical=False)
    curve = curve.isel(beta=np.flatnonzero(np.isin(curve["beta"].values, own)))
    return curve.drop_vars([v for v in ("hull_I_XT", "hull_I_TY", "critical_betas") if v in curve])


def finalize_ib_curve(ds: xr.Dataset) -> xr.Dataset:
    """Recompute, over all betas of a merged curve: the achievable curve (upper concave hull of the points and the
    identity point (H_S, I_XY)) as ``hull_I_XT``/``hull_I_TY`` (bits), and ``critical_betas`` (geometric
    midpoints of neighbouring betas whose cluster counts differ); cluster padding is set to 0 (p_t = 0 rows)."""
    from ..ib import upper_hull

    out = ds.copy()
    for name in ("encoder", "decoder", "p_t"):
        if name in out:
            out[name] = out[name].fillna(0.0)
    ixt, ity = out["I_XT"].values, out["I_TY"].values
    i_xy, h_s = float(ds.attrs.get("I_XY", np.nanmax(ity))), float(ds.attrs.get("H_S", np.nanmax(ixt)))
    hx, hy = upper_hull(np.append(ixt, h_s), np.minimum(np.append(ity, i_xy), i_xy))
    bits = {"units": "bits"}
    out["hull_I_XT"] = ("hull", hx, {**bits, "long_name": "achievable curve (upper concave hull): I(X;T)"})
    out["hull_I_TY"] = ("hull", hy, {**bits, "long_name": "achievable curve (upper concave hull): I(T;Y)"})
    if "n_clusters" in out:
        b, n = out["beta"].values, out["n_clusters"].values
        idx = np.flatnonzero(n[1:] != n[:-1])
        out["critical_betas"] = ("critical", np.sqrt(b[idx] * b[idx + 1]),
                                 {"long_name": "betas where the number of clusters changes (bracket midpoints)"})
    return out


def _ib_summary(ds: xr.Dataset) -> dict:
    out = {"max_I_TY": float(ds["I_TY"].max()), "max_I_XT": float(ds["I_XT"].max())}
    if "converged" in ds:
        out["converged"] = float(ds["converged"].mean())
    return out


register_kind(TaskKind(
    name="ib_curve",
    func=ib_curve_task,
    fields=_Fields({
        "betas": Field(beta_values, REQUIRED, "list of betas or {start, stop, num} (log-spaced)"),
        "betas_per_task": Field(optional(integer(1)), None, "betas per task (default: all in one task)"),
        "beta_range": Field(optional(int_list(0, 2)), None, "set by the split"),
        "warmup": Field(integer(0), 16, "betas of the warm-up anneal into each range"),
    }),
    split=RangeSplit("beta", "betas", "betas_per_task"),
    summary=_ib_summary,
    validate=_validate_task,
    finalize=finalize_ib_curve,
    doc="IB curve over a beta list split into ranges with warm starts (ibtheory.ib.ib_curve)",
))
