"""Real data: do the hidden layers of an MLP and a conv net trained on the MNIST test digits compress?

Thin wrapper of `ibtheory.reproduce.mnist` (its docstring has the rule of the verdict; its `run` takes the sizes
and the device from Python).  Usage::

    python experiments/mnist.py --mnist-dir DIR --quick --out results/mnist     # about a minute
    python experiments/mnist.py --mnist-dir DIR --out results/mnist             # all 10,000 digits (a GPU's work)
"""

import sys

from ibtheory.reproduce.report import section_main

if __name__ == "__main__":
    sys.exit(section_main("mnist"))
