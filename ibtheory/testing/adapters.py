"""Adapters: the package's layer estimators in the sample-based signature ``estimator(x, y) -> bits``.

A layer estimator ``f(activations (..., n_x, units), p_x (n_x,), p_y_given_x (n_x, n_y), **options)`` returns
``I_XT`` and ``I_TY`` in bits.  From n paired samples (x of shape (n, units): layer-like activations, y of shape
(n, d_y): discrete labels) the adapter builds

    activations = x (each sample is its own pattern),  p_x = 1/n (uniform over the samples),
    p(y|x_i) = one-hot of sample i's label (rows of y, recoded 0..n_y-1),

so the layer estimator's I(T;Y) is an estimate of the MI between the continuous T = x and the discrete Y; its
I(X;T) estimates H(T) when the samples are distinct and is not checked here.  The adapters declare
``x_kind="continuous"``, ``y_kind="discrete"`` and the invariances the estimator documents.

The ensemble estimator pools the binned encoder over R networks, but one sample set is one network: in
:func:`package_estimators` it runs with R = 1, where it equals binning.  :func:`ensemble_estimator` exercises the
pooling (R > 1) within the same signature: the R "networks" are copies of the layer shifted by constants
c_r = ((r + 1/2)/R - 1/2) w (w the bin width), the same shift for every sample and unit, so

    p(t|x_i) = (1/R) #{r : B(x_i + c_r) = t},

a dithered binning whose I(T;Y) is still an estimate of I(x; y).  Shifts drawn per sample (noisy copies) would not
fit: the estimate would depend on the order of the samples (the suite's ``permutation_invariance`` check).

:func:`package_estimators` lists every estimator of the package in this signature (binning with 10/30/100 bins,
adaptive range, equal mass; KDE upper/lower bounds; noisy layer; ensemble; plug-in; KSG) for the conformance table
(``scripts/estimator_table.py``).

>>> import numpy as np
>>> from ibtheory.estimators import binned_information
>>> est = layer_estimator(binned_information, name="binning(2)", n_bins=2)
>>> est(np.array([[-0.5], [0.5], [-0.5], [0.5]]), np.array([[0], [1], [0], [1]]))
1.0
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .._validate import show
from ..estimators import binned_information, ensemble_information, kde_information
from ..estimators.ksg import ksg
from ..estimators.plugin import plugin_mi

__all__ = ["layer_estimator", "labels_channel", "ensemble_estimator", "package_estimators"]


def labels_channel(y: np.ndarray) -> np.ndarray:
    """One-hot p(y|x_i) (n, n_y) of the labels ``y`` (n,) or (n, d_y); distinct rows become labels 0..n_y-1."""
    arr = np.asarray(y)
    if arr.ndim not in (1, 2) or arr.shape[0] == 0:
        raise ValueError(f"y must have shape (n,) or (n, d_y) with n >= 1, got {arr.shape}")
    codes = np.unique(arr.reshape(arr.shape[0], -1), axis=0, return_inverse=True)[1].ravel()
    return np.eye(codes.max() + 1)[codes]


def layer_estimator(
    func: Callable, *, quantity: str = "I_TY", name: str | None = None, invariances: tuple[str, ...] = (),
    **options,
) -> Callable[[np.ndarray, np.ndarray], float]:
    """Wrap a layer estimator ``func`` as ``estimator(x (n, units), y (n, d_y)) -> I(T;Y)`` bits.

    ``quantity`` names the result field to return ("I_TY", or a bound such as "I_TY_upper"); ``options`` are
    passed to ``func``; ``invariances`` are the invariances ``func`` documents (tags of the wrapped estimator).
    """
    if quantity.startswith("I_XT"):
        raise ValueError("quantity must be an I(T;Y) field: I(X;T) of samples with distinct x is H(T), not an "
                         f"estimate of I(x; y); got {show(quantity)}")

    def estimator(x, y):
        t = np.asarray(x, dtype=np.float64)
        if t.ndim == 1:
            t = t[:, None]
        if t.ndim != 2:
            raise ValueError(f"x must have shape (n, units), got {np.shape(x)}")
        channel = labels_channel(y)
        if channel.shape[0] != t.shape[0]:
            raise ValueError(f"x and y must have the same number of samples, got {t.shape[0]} and "
                             f"{channel.shape[0]}")
        result = func(t, np.full(t.shape[0], 1.0 / t.shape[0]), channel, **options)
        value = np.asarray(getattr(result, quantity), dtype=np.float64)
        if value.size != 1:
            raise ValueError(f"{quantity} of the wrapped estimator has shape {value.shape}, expected a scalar")
        return float(value.reshape(()))

    kw = ", ".join(f"{k}={v!r}" for k, v in options.items())
    estimator.name = name or f"{getattr(func, '__name__', 'layer')}({kw})"
    estimator.__name__ = estimator.name
    estimator.__doc__ = f"{quantity} of {getattr(func, '__name__', func)!r} with {kw or 'defaults'} from samples."
    estimator.x_kind, estimator.y_kind, estimator.invariances = "continuous", "discrete", tuple(invariances)
    estimator.wrapped, estimator.options, estimator.quantity = func, dict(options), quantity
    return estimator


def ensemble_estimator(repeats: int = 4, n_bins: int = 30, limits: tuple[float, float] = (-1.0, 1.0),
                       name: str | None = None) -> Callable[[np.ndarray, np.ndarray], float]:
    """The ensemble estimator on ``repeats`` shifted copies of a layer, as ``estimator(x, y) -> I(T;Y)`` bits.

    I(T;Y) of the encoder pooled over R copies h_r(x) = x + c_r, c_r = ((r + 1/2)/R - 1/2) w, w = (hi - lo) /
    n_bins: p(t|x_i) = (1/R) #{r : B(x_i + c_r) = t}, B the equal-width binning of ``limits`` (see the module
    docstring).  R = 1 is plain binning.

    >>> est = ensemble_estimator(repeats=2, n_bins=2)   # shifts -0.25, +0.25; bins [-1, 0), [0, 1]
    >>> round(est(np.array([[-0.6], [-0.1], [0.1], [0.6]]), np.array([0, 0, 1, 1])), 6)   # 1 - h(1/4)
    0.188722
    """

    if int(repeats) != repeats or repeats < 1:
        raise ValueError(f"repeats must be a positive integer, got {show(repeats)}")
    lo, hi = (float(v) for v in limits)
    shifts = ((np.arange(int(repeats)) + 0.5) / repeats - 0.5) * (hi - lo) / n_bins

    def ensemble_of_shifted_copies(activations, p_x, p_y_given_x, **options):
        copies = activations[None] + shifts[:, None, None]  # (R, n, units)
        return ensemble_information(copies, p_x, p_y_given_x, **options)

    ensemble_of_shifted_copies.__name__ = "ensemble_information"
    return layer_estimator(ensemble_of_shifted_copies, name=name or f"ensemble {n_bins} bins [{lo:g}, {hi:g}], "
                           f"R = {int(repeats)} shifted copies", n_bins=n_bins, limits=(lo, hi))


def package_estimators() -> dict[str, Callable]:
    """Every estimator of the package in the sample-based signature, by display name.

    Binning with 10/30/100 equal-width bins on [-1, 1], 30 bins on the adaptive range (claims affine invariance:
    the range moves with the data) and 30 equal-mass bins (claims monotone invariance: quantile edges); the
    noisy-layer pairwise-distance estimates of I(T;Y) (KL "upper" and Bhattacharyya "lower" forms) with Saxe et
    al.'s noise variance 0.1 and, as "noisy layer", the KL form with variance 0.01; the ensemble estimator (30
    bins on [-1, 1]; one sample set is one network, R = 1, where it must equal binning) and pooled over R = 4
    shifted copies of the layer (:func:`ensemble_estimator`); plug-in; KSG (k = 3).
    """

    def ensemble_one_network(activations, p_x, p_y_given_x, **options):
        return ensemble_information(activations[None], p_x, p_y_given_x, **options)

    ensemble_one_network.__name__ = "ensemble_information"
    specs = [(f"binning {b} bins [-1, 1]", binned_information, "I_TY", (), dict(n_bins=b, limits=(-1.0, 1.0)))
             for b in (10, 30, 100)]
    specs += [
        ("binning 30 bins adaptive", binned_information, "I_TY", ("affine",), dict(n_bins=30, limits="adaptive")),
        ("binning 30 equal-mass bins", binned_information, "I_TY", ("monotone",), dict(n_bins=30, scheme="mass")),
        ("KDE upper (KL), var 0.1", kde_information, "I_TY_upper", (), dict(noise_var=0.1)),
        ("KDE lower (Bhattacharyya), var 0.1", kde_information, "I_TY_lower", (), dict(noise_var=0.1)),
        ("noisy layer (KL), var 0.01", kde_information, "I_TY_upper", (), dict(noise_var=0.01)),
        ("ensemble 30 bins [-1, 1], R = 1", ensemble_one_network, "I_TY", (), dict(n_bins=30, limits=(-1.0, 1.0))),
    ]
    out: dict[str, Callable] = {
        name: layer_estimator(func, quantity=q, name=name, invariances=inv, **opts)
        for name, func, q, inv, opts in specs
    }
    out["ensemble 30 bins [-1, 1], R = 4 shifted copies"] = ensemble_estimator(repeats=4, n_bins=30)
    out["plug-in"] = plugin_mi
    out["KSG k=3"] = ksg
    return out
