"""Claim 6b: the amount of training data changes where the layers converge (5 %, 45 %, 85 % of the patterns).

Thin wrapper of `ibtheory.reproduce.sizes` (its docstring has the rule of the verdict).  Usage::

    python experiments/sizes.py --quick --out results/sizes     # about a minute
    python experiments/sizes.py --out results/sizes             # the paper's size (hours)
"""

import sys

from ibtheory.reproduce.report import section_main

if __name__ == "__main__":
    sys.exit(section_main("sizes"))
