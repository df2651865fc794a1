"""Claim 3: per-layer gradients go from drift (mean >> std) to diffusion (mean << std) when the layer turns from
fitting to compression.

Thin wrapper of `ibtheory.reproduce.gradients` (its docstring has the rule of the verdict).  Usage::

    python experiments/gradients.py --quick --out results/gradients     # about a minute
    python experiments/gradients.py --out results/gradients             # the paper's size (hours)
"""

import sys

from ibtheory.reproduce.report import section_main

if __name__ == "__main__":
    sys.exit(section_main("gradients"))
