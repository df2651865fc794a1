"""Claim 6a: more hidden layers reach good generalisation in far fewer epochs, and compress sooner.

Thin wrapper of `ibtheory.reproduce.depth` (its docstring has the rule of the verdict).  Usage::

    python experiments/depth.py --quick --out results/depth     # about a minute
    python experiments/depth.py --out results/depth             # the paper's size (hours)
"""

import sys

from ibtheory.reproduce.report import section_main

if __name__ == "__main__":
    sys.exit(section_main("depth"))
