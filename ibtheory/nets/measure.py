"""Measuring one snapshot of a batched ensemble where its activations are (shared by the MLP and the conv trainer).

:func:`measure_snapshot` gives what ``estimators.measure(names, snap.activations, ...)`` gives, but measures binning
(:func:`~ibtheory.estimators.binning_torch.binned_information_torch`) and the KDE bounds
(:func:`~ibtheory.estimators.kde_information` on tensors) on the snapshot's device tensors when it carries them
(training off the CPU, or the private switch ``loop._MEASURE_ON_DEVICE_ENV``): the same numbers, only
(R,)-sized results copied back.
"""

from __future__ import annotations

import numpy as np

from ..estimators import binned_information, kde_information
from ..estimators import kde as _kde
from ..estimators.binning_torch import DEVICE_SCHEMES, binned_information_torch
from ..estimators.registry import ESTIMATORS, measure
from .loop import Snapshot

__all__ = ["measure_snapshot"]


def _on_device(name: str, opts: dict):
    """The function that measures estimator ``name`` on device tensors with ``opts``, or None (measured on the
    host copy): binning (:func:`~ibtheory.estimators.binning_torch.binned_information_torch`, every grid but
    equal-mass bins) and the KDE bounds (:func:`~ibtheory.estimators.kde_information` takes tensors), while the
    registered functions are the package's own."""
    fn = ESTIMATORS.get(name).function
    if name == "binning" and fn is binned_information and opts.get("scheme", "width") in DEVICE_SCHEMES:
        return binned_information_torch
    if name == "kde" and fn is _kde.kde_information:
        return kde_information
    return None


def measure_snapshot(names: tuple[str, ...], snap: Snapshot, p_x: np.ndarray, p_y_given_x: np.ndarray,
                     opts: dict) -> dict[str, np.ndarray]:
    """Every estimator on one snapshot, as ``measure(names, snap.activations, ...)`` returns it, but binning and
    the KDE bounds measured where the activations are (:func:`_on_device`: the same numbers, only (R,)-sized
    results copied back) when the snapshot carries its device tensors (training off the CPU, or the private switch
    ``loop._MEASURE_ON_DEVICE_ENV``)."""
    device = {n: _on_device(n, opts) for n in names} if snap.device_activations is not None else {}
    device = {n: fn for n, fn in device.items() if fn is not None}
    if not device:
        return measure(names, snap.activations, p_x, p_y_given_x, **opts)
    found: dict[str, list] = {}
    for name, fn in device.items():
        est = ESTIMATORS.get(name)
        kwargs = {k: opts[k] for k in est.options if k in opts}
        for layer in snap.device_activations:  # loop over the (few) layers; each call is vectorised over the nets
            for var, value in est.record(fn(layer, p_x, p_y_given_x, **kwargs)).items():
                found.setdefault(var, []).append(value)
    others = tuple(n for n in names if n not in device)
    out = measure(others, snap.activations, p_x, p_y_given_x, **opts) if others else {}
    out.update({k: np.stack(v) for k, v in found.items()})
    return {var: out[var] for e in ESTIMATORS.values() if e.name in names for var in e.variables}
