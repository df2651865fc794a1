"""The run Dataset: every variable the trainers write, with its dims and units, and the one check its readers make.

:func:`ibtheory.nets.train` and :func:`ibtheory.nets.conv.train_conv` write each variable through
:meth:`RunSchema.entry` (dims and the ``units`` / ``long_name`` attributes come from here), and
:func:`ibtheory.compare.against_bound`, :mod:`ibtheory.plots.plane` and :mod:`ibtheory.phases` check what they read
with :meth:`RunSchema.require`, which raises a ``ValueError`` naming the missing variable (and what it is, and which
estimator records it), a missing dimension, or units that differ from these.

The information-plane variables come from the estimator registry (:mod:`ibtheory.estimators.registry`): for each
registered estimator its planes' ``I_XT<suffix>``, ``I_TY<suffix>`` in bits and its extras, over (epoch, layer,
repeat), or (epoch, layer) for an estimator that pools the repeats; the rest are fixed (:data:`TRAINING_VARIABLES`).
It lives beside the registry, on a floor that the analysis and the figures import without loading torch.

>>> RUN_SCHEMA["I_XT_ensemble"].dims, RUN_SCHEMA["I_XT_ensemble"].units
(('epoch', 'layer'), 'bits')
>>> RUN_SCHEMA.entry("train_loss", [[0.5]])
(('epoch', 'repeat'), [[0.5]], {'units': 'bits'})
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import xarray as xr

from .._validate import show
from .registry import ESTIMATORS

__all__ = ["RunVariable", "RunSchema", "RUN_SCHEMA", "TRAINING_VARIABLES"]


@dataclass(frozen=True)
class RunVariable:
    """One variable of a run Dataset: ``dims``; ``units`` and ``long_name``, written as attributes when not None;
    ``doc``, what it holds (for messages and readers, not written)."""

    name: str
    dims: tuple[str, ...]
    units: str | None = None
    long_name: str | None = None
    doc: str = ""

    @property
    def attrs(self) -> dict[str, str]:
        """The attributes written with it."""
        out = {} if self.units is None else {"units": self.units}
        return out if self.long_name is None else dict(out, long_name=self.long_name)


_ELR = ("epoch", "layer", "repeat")
_ER = ("epoch", "repeat")

#: The variables of a run besides the estimators' (losses, gradients, the task and the checkpoint).
TRAINING_VARIABLES = (
    RunVariable("grad_mean_norm", _ELR, "1", doc="norm of the epoch's mean minibatch gradient of the weights into "
                "the layer (NaN at epoch 0)"),
    RunVariable("grad_std_norm", _ELR, "1", doc="norm of the batch-to-batch standard deviation of that gradient"),
    RunVariable("weight_norm", _ELR, "1", doc="norm of the weights into the layer"),
    RunVariable("grad_mean_rel", _ELR, "1", doc="grad_mean_norm / weight_norm"),
    RunVariable("grad_std_rel", _ELR, "1", doc="grad_std_norm / weight_norm"),
    RunVariable("grad_snr", _ELR, "1", doc="grad_mean_norm / grad_std_norm"),
    RunVariable("train_loss", _ER, "bits", doc="mean cross-entropy on the training patterns"),
    RunVariable("test_loss", _ER, "bits", doc="mean cross-entropy on the test patterns"),
    RunVariable("train_accuracy", _ER, "1", doc="accuracy on the training patterns"),
    RunVariable("test_accuracy", _ER, "1", doc="accuracy on the test patterns"),
    RunVariable("activations", ("epoch", "layer", "repeat", "x", "unit"), "1",
                doc="every layer's units (NaN padding beyond its width), with keep_activations=True"),
    RunVariable("width", ("layer",), doc="units of each layer"),
    RunVariable("layer_kind", ("layer",), doc='"conv" | "dense" | "softmax" (convolutional runs)'),
    RunVariable("p_xy", ("x", "y"), long_name="joint probability p(x,y) of the task", doc="the task's exact joint"),
    RunVariable("train_mask", ("repeat", "x"), doc="1 for the patterns each network trained on"),
    RunVariable("labels", ("repeat", "x"), doc="each network's (sampled) labels"),
    RunVariable("checkpoint_params", ("repeat", "dim"), doc="parameters at the last snapshot (to resume)"),
    RunVariable("checkpoint_opt_m", ("repeat", "dim"), doc="Adam first moments at the last snapshot"),
    RunVariable("checkpoint_opt_v", ("repeat", "dim"), doc="Adam second moments at the last snapshot"),
)


class RunSchema:
    """The variables of a run Dataset: the registered estimators' (read from the registry at each use, so a newly
    registered estimator is part of it) and the fixed ``training`` ones.  ``producer`` names what writes such runs
    (for messages)."""

    def __init__(self, training: Iterable[RunVariable], producer: str = "ibtheory.nets.train") -> None:
        self._training = {v.name: v for v in training}
        self.producer = producer

    def variables(self) -> dict[str, RunVariable]:
        """Name -> :class:`RunVariable`: the estimators' variables in the order of registration, then the rest."""
        out = {}
        for est in ESTIMATORS.values():
            for var, (_, units) in est.variables.items():
                out[var] = RunVariable(var, est.dims, units, doc=f"recorded by nets.train(estimators=[{est.name!r}])")
        clash = sorted(set(out) & set(self._training))
        if clash:
            raise ValueError(f"estimators record run variables {clash} that the run holds for other purposes")
        out.update(self._training)
        return out

    def __contains__(self, name: object) -> bool:
        return name in self.variables()

    def __getitem__(self, name: str) -> RunVariable:
        variables = self.variables()
        if name not in variables:
            raise KeyError(f"{name!r} is not a run variable; run variables are {sorted(variables)}")
        return variables[name]

    def entry(self, name: str, values: Any) -> tuple[tuple[str, ...], Any, dict[str, str]]:
        """``(dims, values, attrs)`` of variable ``name``, to assign to a Dataset: ``ds[name] = schema.entry(...)``."""
        var = self[name]
        return var.dims, values, var.attrs

    def require(self, run: Any, names: Iterable[str] = (), dims: Iterable[str] = (), what: str = "run") -> None:
        """Check that ``run`` is a Dataset carrying every variable of ``names``, each with all of ``dims`` and, where
        it declares units, this schema's units; else ``ValueError`` naming ``what`` and the variable."""
        if not isinstance(run, xr.Dataset):
            raise ValueError(f"{what} must be an xarray Dataset from {self.producer}, got {type(run).__name__}")
        variables = self.variables()
        names, dims = list(names), tuple(dims)
        missing = [n for n in names if n not in run]
        if missing:
            known = "; ".join(f"{n!r}: {variables[n].doc}" for n in missing if n in variables and variables[n].doc)
            raise ValueError(f"{what} lacks the variable(s) {missing}" + (f" ({known})" if known else "") +
                             f"; it has {sorted(map(str, run.data_vars))}. Was it made by {self.producer}?")
        for n in names:
            lacking = [d for d in dims if d not in run[n].dims]
            if lacking:
                raise ValueError(f"{what}[{n!r}] has dims {run[n].dims} but needs {dims} (it lacks {lacking}); "
                                 "select with a list (isel(epoch=[-1])) to keep a dimension")
            expected = variables[n].units if n in variables else None
            units = run[n].attrs.get("units")
            if expected is not None and units is not None and units != expected:
                raise ValueError(f"{what}[{n!r}] is in {show(units)} but a run holds it in {expected!r}")


#: The run Dataset of :func:`ibtheory.nets.train` and :func:`ibtheory.nets.conv.train_conv`.
RUN_SCHEMA = RunSchema(TRAINING_VARIABLES)
