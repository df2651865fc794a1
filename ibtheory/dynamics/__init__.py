"""Langevin dynamics: SGD as diffusion toward the Gibbs distribution p(w) ~ exp(-beta L(w)), verified.

Modules: ``potentials`` (quadratic, double well, user callables), ``langevin`` (Euler-Maruyama and
Leimkuhler-Matthews schemes as a generator of states + the ``langevin`` wrapper), ``gibbs`` (exact Gibbs density,
free energy, entropy in bits, convergence measures), ``fokker_planck`` (spectral gap by a sparse eigen-solver),
``kramers`` (escape rates and first passages), ``sgd_noise`` (minibatch gradient covariance, Lyapunov stationary
covariance of SGD), ``network`` (a small network's loss as a potential; SGD vs Langevin), ``symbolic`` (sympy
derivations).  ``network`` and ``symbolic`` are imported on demand (torch / sympy):
``from ibtheory.dynamics import network, symbolic``.  See docs/langevin.md.
"""

import sys as _sys

from .fokker_planck import *  # noqa: F403
from .gibbs import *  # noqa: F403
from .kramers import *  # noqa: F403
from .langevin import *  # noqa: F403
from .potentials import *  # noqa: F403
from .sgd_noise import *  # noqa: F403

# the functions ``langevin`` and ``gibbs`` shadow their modules' names here; the modules stay importable as
# ``ibtheory.dynamics.langevin`` via ``import ibtheory.dynamics.langevin`` / sys.modules.
_MODULES = ("potentials", "langevin", "gibbs", "fokker_planck", "kramers", "sgd_noise")
__all__ = [name for mod in _MODULES for name in _sys.modules[f"{__name__}.{mod}"].__all__]
