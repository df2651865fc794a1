"""Information-based early stopping against validation-loss early stopping.

Thin wrapper of `ibtheory.reproduce.early_stopping` (its docstring has the rule of the verdict).  Usage::

    python experiments/early_stopping.py --quick --out results/early_stopping     # about a minute
    python experiments/early_stopping.py --out results/early_stopping             # the paper's size (hours)
"""

import sys

from ibtheory.reproduce.report import section_main

if __name__ == "__main__":
    sys.exit(section_main("early_stopping"))
