"""The critiques: does compression survive other activations and other estimators?

Thin wrapper of `ibtheory.reproduce.critiques` (its docstring has the rule of the verdict).  Usage::

    python experiments/critiques.py --quick --out results/critiques     # about a minute
    python experiments/critiques.py --out results/critiques             # the paper's size (hours)
"""

import sys

from ibtheory.reproduce.report import section_main

if __name__ == "__main__":
    sys.exit(section_main("critiques"))
