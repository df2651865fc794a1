"""The layer estimators by name, and the run variables their results become.

A :class:`LayerEstimator` ties a name that ``nets.train(estimators=...)`` accepts to

- ``function(activations, p_x, p_y_given_x, **options)``, the shared signature of :mod:`ibtheory.estimators`,
  returning a result object whose fields are arrays in bits of shape ``activations.shape[:-2]`` (or
  ``activations.shape[:-3]`` when it ``pools_repeats``, as the ensemble estimator does);
- ``options``: the measuring options of the trainers it takes, a subset of :data:`OPTIONS`;
- ``planes``: the information planes it records.  A :class:`Plane` reads two result fields, I(X;T) and I(T;Y), and
  records them as the run variables ``I_XT<suffix>`` and ``I_TY<suffix>`` (bits); the first plane is the
  estimator's own (the noisy-layer estimator's upper bounds), and a plane's ``name`` is what figures and the
  command line call it;
- ``extras``: further result fields recorded as run variables (binning's ``n_states``).

The trainers (:func:`ibtheory.nets.train`, :func:`ibtheory.nets.conv.train_conv`) measure every snapshot with
:func:`measure`; :func:`ibtheory.compare.against_bound`, the figures, the command line, the runner and the
reproduction find the planes a run carries with :func:`planes_in` and :func:`plane`.  So a new estimator is one
:func:`register` call (here, for a built-in one) and nothing else:

>>> import numpy as np
>>> from ibtheory.estimators import binned_information
>>> coarse = LayerEstimator("coarse", binned_information, (Plane("coarse", "_coarse", label="2 bins"),),
...                         options=("limits",))
>>> _ = register(coarse)
>>> acts = [np.array([[[-0.5], [0.5]]])]  # one layer of one network: two patterns, one unit
>>> out = measure(["binning", "coarse"], acts, [0.5, 0.5], [[1.0, 0.0], [0.0, 1.0]], n_bins=2)
>>> list(out), out["I_XT_coarse"].tolist()
(['I_XT', 'I_TY', 'n_states', 'I_XT_coarse', 'I_TY_coarse'], [[1.0]])
>>> plane("coarse").variables
('I_XT_coarse', 'I_TY_coarse')
>>> _ = unregister("coarse")
"""

from __future__ import annotations

import re
from collections.abc import Callable, Container, Iterable, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from .._validate import show
from .binning import binned_information
from .codes import code_information
from .ensemble import ensemble_information
from .kde import kde_information

__all__ = ["Plane", "Extra", "LayerEstimator", "ESTIMATORS", "OPTIONS", "BINNING_OPTIONS", "register", "unregister",
           "check_names", "planes", "plane", "plane_names", "planes_in", "measure"]

#: The grid and label options of the binning estimators (:func:`ibtheory.estimators.binning_options` checks them).
BINNING_OPTIONS = ("n_bins", "limits", "scheme", "bin_width", "anchor", "labels", "label_seed")

#: The measuring options the trainers pass on; an estimator takes the subset it declares.
OPTIONS = BINNING_OPTIONS + ("noise_var",)

_SUFFIX = re.compile(r"^(_[A-Za-z0-9]+)*$")


@dataclass(frozen=True)
class Plane:
    """One information plane an estimator records: result fields ``x_field`` (I(X;T)) and ``y_field`` (I(T;Y)),
    in bits, become the run variables ``I_XT<suffix>`` and ``I_TY<suffix>``; ``label`` names it in figures."""

    name: str
    suffix: str
    x_field: str = "I_XT"
    y_field: str = "I_TY"
    label: str = ""

    def __post_init__(self) -> None:
        if not (isinstance(self.name, str) and self.name.isidentifier()):
            raise ValueError(f"plane name must be an identifier such as 'kde_upper', got {show(self.name)}")
        if not (isinstance(self.suffix, str) and _SUFFIX.match(self.suffix)):
            raise ValueError(f"plane {self.name!r}: suffix must be '' or like '_name', got {show(self.suffix)}")
        for arg in ("x_field", "y_field"):
            if not (isinstance(getattr(self, arg), str) and getattr(self, arg).isidentifier()):
                raise ValueError(f"plane {self.name!r}: {arg} must name a result field, got {show(getattr(self, arg))}")
        if not self.label:
            object.__setattr__(self, "label", self.name)

    @property
    def variables(self) -> tuple[str, str]:
        """The run variables (I(X;T), I(T;Y)) of this plane."""
        return f"I_XT{self.suffix}", f"I_TY{self.suffix}"

    def values(self, result: Any) -> dict[str, Any]:
        """This plane's run variables -> their values in ``result`` (bits)."""
        x, y = self.variables
        return {x: getattr(result, self.x_field), y: getattr(result, self.y_field)}


@dataclass(frozen=True)
class Extra:
    """A further result field recorded as a run variable with its units (``"1"`` for a count)."""

    field: str
    variable: str
    units: str = "1"

    def __post_init__(self) -> None:
        for arg in ("field", "variable"):
            if not (isinstance(getattr(self, arg), str) and getattr(self, arg).isidentifier()):
                raise ValueError(f"extra {arg} must be an identifier, got {show(getattr(self, arg))}")
        if not isinstance(self.units, str):
            raise ValueError(f"extra {self.variable!r}: units must be a string such as '1', got {show(self.units)}")


@dataclass(frozen=True)
class LayerEstimator:
    """An estimator of layers by name: its function, the planes and extras it records, the options it takes, and
    whether its results pool the repeat axis (dims (layer,) per snapshot instead of (layer, repeat)).

    Calling it calls ``function``, so ``ESTIMATORS["binning"](activations, p_x, p_y_given_x)`` measures.
    """

    name: str
    function: Callable[..., Any]
    planes: tuple[Plane, ...]
    options: tuple[str, ...] = ()
    extras: tuple[Extra, ...] = ()
    pools_repeats: bool = False

    def __post_init__(self) -> None:
        if not (isinstance(self.name, str) and self.name.isidentifier()):
            raise ValueError(f"estimator name must be an identifier such as 'binning', got {show(self.name)}")
        if not callable(self.function):
            raise ValueError(f"estimator {self.name!r}: function must be callable, got {show(self.function)}")
        for arg, kind in (("planes", Plane), ("extras", Extra)):
            items = getattr(self, arg)
            if isinstance(items, kind) or not isinstance(items, (list, tuple)) or not all(
                    isinstance(p, kind) for p in items):
                raise ValueError(f"estimator {self.name!r}: {arg} must be a sequence of {kind.__name__}, "
                                 f"got {show(items)}")
            object.__setattr__(self, arg, tuple(items))
        if not self.planes:
            raise ValueError(f"estimator {self.name!r} must record at least one plane")
        options = (self.options,) if isinstance(self.options, str) else self.options
        if not isinstance(options, (list, tuple)) or any(o not in OPTIONS for o in options):
            raise ValueError(f"estimator {self.name!r}: options must be drawn from {OPTIONS}, got {show(self.options)}")
        object.__setattr__(self, "options", tuple(options))
        if not isinstance(self.pools_repeats, bool):
            raise ValueError(f"estimator {self.name!r}: pools_repeats must be True or False, "
                             f"got {show(self.pools_repeats)}")
        if len(self.variables) != 2 * len(self.planes) + len(self.extras):
            raise ValueError(f"estimator {self.name!r} records a run variable twice: planes {self.planes}, "
                             f"extras {self.extras}")
        if len({p.name for p in self.planes}) != len(self.planes):
            raise ValueError(f"estimator {self.name!r} has two planes of one name: {self.planes}")

    def __call__(self, activations: ArrayLike, p_x: ArrayLike, p_y_given_x: ArrayLike, **options: Any) -> Any:
        """``function(activations, p_x, p_y_given_x, **options)``: the estimator's result object."""
        return self.function(activations, p_x, p_y_given_x, **options)

    @property
    def plane(self) -> Plane:
        """The estimator's own plane (the first)."""
        return self.planes[0]

    @property
    def variables(self) -> dict[str, tuple[str, str]]:
        """Run variable -> (result field, units), in the order they are recorded: the planes' I(X;T), their
        I(T;Y), then the extras."""
        out = {p.variables[0]: (p.x_field, "bits") for p in self.planes}
        out.update({p.variables[1]: (p.y_field, "bits") for p in self.planes})
        out.update({e.variable: (e.field, e.units) for e in self.extras})
        return out

    @property
    def dims(self) -> tuple[str, ...]:
        """Dims of its run variables: ("epoch", "layer") when it pools the repeats, else with "repeat"."""
        return ("epoch", "layer") if self.pools_repeats else ("epoch", "layer", "repeat")

    def record(self, result: Any) -> dict[str, Any]:
        """Run variable -> value, read from one result of ``function``."""
        return {var: getattr(result, field) for var, (field, _) in self.variables.items()}


_REGISTRY: dict[str, LayerEstimator] = {}

#: The registered estimators by name, a live read-only view (change it with :func:`register`, :func:`unregister`).
ESTIMATORS = MappingProxyType(_REGISTRY)


def register(estimator: LayerEstimator, *, replace: bool = False) -> LayerEstimator:
    """Add ``estimator`` (or replace the one of its name with ``replace=True``); return it.

    ``ValueError`` when the name is taken, or when one of its plane names or run variables is another estimator's
    (names of estimators and planes share one space: a plane is asked for by either).
    """
    if not isinstance(estimator, LayerEstimator):
        raise ValueError(f"estimator must be a LayerEstimator, got {show(estimator)}")
    if estimator.name in _REGISTRY and not replace:
        raise ValueError(f"an estimator named {estimator.name!r} is registered already (replace=True replaces it)")
    own = {estimator.name} | {p.name for p in estimator.planes}
    for other in _REGISTRY.values():
        if other.name == estimator.name:
            continue
        taken = own & ({other.name} | {p.name for p in other.planes})
        if taken:
            raise ValueError(f"estimator {estimator.name!r}: the name(s) {sorted(taken)} belong to {other.name!r}")
        clash = set(estimator.variables) & set(other.variables)
        if clash:
            raise ValueError(f"estimator {estimator.name!r}: run variable(s) {sorted(clash)} are recorded by "
                             f"{other.name!r}")
    _REGISTRY[estimator.name] = estimator
    return estimator


def unregister(name: str) -> LayerEstimator:
    """Remove the estimator ``name`` and return it (``ValueError`` when none has that name)."""
    if name not in _REGISTRY:
        raise ValueError(f"no estimator named {show(name)}; registered: {list(_REGISTRY)}")
    return _REGISTRY.pop(name)


def check_names(estimators: Sequence[str] | str, name: str = "estimators",
                allowed: Container[str] | None = None) -> tuple[str, ...]:
    """``estimators`` (one name or a sequence) as a tuple of registered names, repeats dropped; ``ValueError`` naming
    ``name`` for an empty or unknown choice.  ``allowed``: a narrower set of names (default: all registered)."""
    choices = tuple(n for n in _REGISTRY if allowed is None or n in allowed)
    names = (estimators,) if isinstance(estimators, str) else estimators
    if not isinstance(names, (list, tuple)) or not names or any(
            not isinstance(n, str) or n not in choices for n in names):
        raise ValueError(f"{name} must be a non-empty subset of {choices}, got {show(estimators)}")
    return tuple(dict.fromkeys(names))


def planes() -> tuple[Plane, ...]:
    """Every registered plane, estimator by estimator in the order of registration."""
    return tuple(p for est in _REGISTRY.values() for p in est.planes)


def plane_names() -> list[str]:
    """The names :func:`plane` accepts: every plane's and every estimator's, sorted."""
    return sorted({p.name for p in planes()} | set(_REGISTRY))


def plane(name: str, argument: str = "estimator") -> Plane:
    """The plane called ``name``, or the own plane of the estimator called ``name`` (``"kde"``: its upper
    bounds); ``ValueError`` naming ``argument`` otherwise."""
    if isinstance(name, str):
        for p in planes():
            if p.name == name:
                return p
        if name in _REGISTRY:
            return _REGISTRY[name].plane
    raise ValueError(f"{argument} must be one of {plane_names()}, got {show(name)}")


def planes_in(run: Container[str]) -> tuple[Plane, ...]:
    """The registered planes whose two variables ``run`` (a run Dataset, or any container of names) carries."""
    return tuple(p for p in planes() if all(v in run for v in p.variables))


def measure(names: Sequence[str] | str, layers: Iterable[ArrayLike], p_x: ArrayLike, p_y_given_x: ArrayLike,
            **options: Any) -> dict[str, np.ndarray]:
    """Every named estimator on every layer of one snapshot.

    ``layers``: one activation array per layer, (R, n_x, units) for R networks.  ``options``: measuring options
    (:data:`OPTIONS`); each estimator gets those it declares, and its function's defaults for the rest.  Returns
    run variable -> values stacked over the layers, shape (layer, R), or (layer,) for an estimator that pools the
    repeats; estimators in the order of registration.
    """
    names = check_names(names)
    unknown = sorted(set(options) - set(OPTIONS))
    if unknown:
        raise ValueError(f"options {unknown} are not measuring options; expected some of {OPTIONS}")
    layers = list(layers)
    out: dict[str, list] = {}
    for est in _REGISTRY.values():
        if est.name not in names:
            continue
        kwargs = {k: options[k] for k in est.options if k in options}
        for acts in layers:  # loop over the (few) layers; each call is vectorised over the networks
            for var, value in est.record(est(acts, p_x, p_y_given_x, **kwargs)).items():
                out.setdefault(var, []).append(value)
    return {k: np.stack(v) for k, v in out.items()}


register(LayerEstimator(
    "binning", binned_information, (Plane("binning", ""),), options=BINNING_OPTIONS,
    extras=(Extra("n_states", "n_states", "1"),)))
register(LayerEstimator(
    "kde", kde_information,
    (Plane("kde_upper", "_kde_upper", "I_XT_upper", "I_TY_upper", "KDE upper"),
     Plane("kde_lower", "_kde_lower", "I_XT_lower", "I_TY_lower", "KDE lower")),
    options=("noise_var",)))
register(LayerEstimator(
    "ensemble", ensemble_information, (Plane("ensemble", "_ensemble"),), options=BINNING_OPTIONS,
    pools_repeats=True))
register(LayerEstimator(
    "codes", code_information, (Plane("codes", "_codes", label="float codes"),),
    extras=(Extra("n_states", "n_states_codes", "1"),)))
