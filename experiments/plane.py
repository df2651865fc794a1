"""Claim 1-2: every layer moves in the information plane through a fitting phase then a compression phase.

Thin wrapper of `ibtheory.reproduce.plane` (its docstring has the rule of the verdict).  Usage::

    python experiments/plane.py --quick --out results/plane     # about a minute
    python experiments/plane.py --out results/plane             # the paper's size (hours)
"""

import sys

from ibtheory.reproduce.report import section_main

if __name__ == "__main__":
    sys.exit(section_main("plane"))
