"""Claim 5: in the diffusion phase SGD behaves like Langevin dynamics, which relaxes to the Gibbs distribution
(the minimiser of the free energy F = E[L] - H/beta) and, so the theory says, compresses the layers.

Thin wrapper of `ibtheory.reproduce.langevin` (its docstring has the rule of the verdict).  Usage::

    python experiments/langevin.py --quick --out results/langevin     # about a minute
    python experiments/langevin.py --out results/langevin             # the paper's size (hours)
"""

import sys

from ibtheory.reproduce.report import section_main

if __name__ == "__main__":
    sys.exit(section_main("langevin"))
