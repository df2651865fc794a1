"""ibtheory: put the Information Bottleneck theory of deep learning to the test.

Subpackages and modules: ``info`` (exact measures, bits), ``tasks`` (joint distributions), ``store``
(netCDF4 results), ``ib`` (exact IB solver), ``nets`` (network ensembles), ``estimators`` (MI of layers),
``compare``, ``phases``, ``dynamics`` (Langevin), ``testing`` (estimator conformance), ``plots``, ``cli``.
"""

from . import info, store, tasks
from ._version import __version__
from .info import conditional_entropy, entropy, kl_divergence, mutual_information
from .store import load, save

__all__ = [
    "info", "tasks", "store", "entropy", "conditional_entropy", "kl_divergence", "mutual_information",
    "load", "save", "__version__",
]
