"""Reproduce the paper's claims and their critiques end to end, with verdicts computed from the numbers.

One module per claim, each exposing ``run(out, size, seed, *, device="cpu") -> Section`` with its rule in the module
docstring (``device``: the torch device its networks train on):

- :mod:`~ibtheory.reproduce.plane`: fitting then compression in the information plane (tanh, binning);
- :mod:`~ibtheory.reproduce.sizes`: training-set size 5 / 45 / 85 %;
- :mod:`~ibtheory.reproduce.gradients`: drift/diffusion transition aligned with the compression turn;
- :mod:`~ibtheory.reproduce.depth`: 1..6 hidden layers, epochs to a training-error threshold and to compression;
- :mod:`~ibtheory.reproduce.bound`: layers on the certified IB curve of the soft task, beta* per layer;
- :mod:`~ibtheory.reproduce.langevin`: relaxation to Gibbs, free energy, Kramers; SGD vs Langevin on a network;
- :mod:`~ibtheory.reproduce.critiques`: tanh vs ReLU, 10/30/100 bins, binning vs noisy-layer estimator;
- :mod:`~ibtheory.reproduce.mnist`: MNIST test digits with an MLP and a conv net (needs ``mnist_dir``);
- :mod:`~ibtheory.reproduce.early_stopping`: IB-Lagrangian stopping vs validation-loss stopping.

:func:`run_all` runs them and writes ``report.md`` (:mod:`~ibtheory.reproduce.report`).
"""

from .report import SECTIONS, SIZES, VERDICT_KINDS, Section, run_all, write_report

__all__ = ["Section", "run_all", "write_report", "SECTIONS", "SIZES", "VERDICT_KINDS"]
