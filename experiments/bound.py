"""Claim 4: converged layers lie on or near the IB curve and satisfy the IB self-consistent equations for some
beta* (one beta* per layer, increasing toward the input).

Thin wrapper of `ibtheory.reproduce.bound` (its docstring has the rule of the verdict).  Usage::

    python experiments/bound.py --quick --out results/bound     # about a minute
    python experiments/bound.py --out results/bound             # the paper's size (hours)
"""

import sys

from ibtheory.reproduce.report import section_main

if __name__ == "__main__":
    sys.exit(section_main("bound"))
