"""Estimators of I(X;T) and I(T;Y) for network layers, in bits.

Every estimator has the signature ``f(activations, p_x, p_y_given_x, **options)``: ``activations`` of shape
(..., n_x, units) for the n_x input patterns (leading dims e.g. (repeat,) or (epoch, repeat)), the exact input
distribution ``p_x`` (n_x,) and channel ``p_y_given_x`` (n_x, n_y).  Each returns a frozen dataclass with arrays
``I_XT`` and ``I_TY`` in bits of shape ``activations.shape[:-2]`` (the ensemble estimator pools the repeat axis,
see its docstring).  Trailing units that are NaN for every pattern are padding and ignored; any other NaN, any
inf, and a layer with no real unit (a diverged network) raise ``ValueError``.

- :func:`binned_information` (``"binning"``): equal-width / adaptive / equal-mass bins (Shwartz-Ziv & Tishby 2017);
  :func:`binned_codes` returns the discrete encoder t(x) itself.
- :func:`kde_information` (``"kde"``): noisy layer T + N(0, sigma^2 I), pairwise-distance upper and lower bounds
  (Kolchinsky & Tracey 2017; Saxe et al. 2018).
- :func:`ensemble_information` (``"ensemble"``): binned encoder pooled over the repeats (stochastic p(t|x)).
- :func:`code_information` (``"codes"``): no binning, the distinct float codes of a deterministic layer (exact
  I(X;T) = H(T); Amjad & Geiger 2019, and for quantized networks Lorenzen et al. 2022).
- :func:`gaussian_information` (not a layer estimator: I(X;T) only): the closed form 1/2 log2 det(I + Sigma_T /
  sigma^2) of a noisy linear layer on Gaussian inputs, an upper bound of I(X; T + Z) for any inputs.

:mod:`ibtheory.estimators.registry` holds them by name (:data:`ESTIMATORS`) with the run variables their results
become; :mod:`ibtheory.estimators.schema` describes the whole run Dataset that the trainers write.
"""

from .binning import BinningResult, bin_indices, binned_codes, binned_information, binning_options
from .codes import code_information, distinct_codes
from .ensemble import EnsembleResult, ensemble_information
from .gaussian import gaussian_information, noisy_neuron_curve, noisy_neuron_information
from .kde import KDEResult, kde_information, pairwise_mixture_information
from .registry import ESTIMATORS, Extra, LayerEstimator, Plane, measure, register, unregister
from .schema import RUN_SCHEMA, RunSchema, RunVariable

__all__ = [
    "BinningResult", "bin_indices", "binned_codes", "binned_information", "binning_options",
    "KDEResult", "kde_information", "pairwise_mixture_information",
    "EnsembleResult", "ensemble_information", "code_information", "distinct_codes",
    "gaussian_information", "noisy_neuron_information", "noisy_neuron_curve",
    "ESTIMATORS", "LayerEstimator", "Plane", "Extra", "register", "unregister", "measure",
    "RUN_SCHEMA", "RunSchema", "RunVariable",
]
