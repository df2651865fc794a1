"""Training runs shared by several sections, their sizes, and small helpers on run Datasets.

The paper's setting (Shwartz-Ziv & Tishby 2017) is the "full" size: widths 10-7-5-4-3 + softmax, tanh, Adam
lr 4e-4, batch 512, 80 % training patterns, 50 repeats, 10,000 epochs, ~300 log-spaced snapshots, 30 bins on
[-1, 1].  "quick" and "tiny" shrink repeats, epochs and snapshots (never the task or the network).  The tanh run
with its activations is used by the plane, gradients, critiques and early-stopping sections; it is trained once
per process (:func:`paper_run` caches it in memory) and saved without activations.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np
import xarray as xr

from .. import store, tasks
from ..nets import train
from .report import check_size

__all__ = ["RUN_SIZES", "PAPER_HIDDEN", "paper_run", "save_run", "hidden_layers", "limits_for"]

PAPER_HIDDEN = (10, 7, 5, 4, 3)

#: Training sizes: repeats, epochs, snapshots of the shared runs.
RUN_SIZES = {
    "tiny": {"repeats": 2, "epochs": 40, "snapshots": 8},
    "quick": {"repeats": 6, "epochs": 1000, "snapshots": 24},
    "full": {"repeats": 50, "epochs": 10_000, "snapshots": 300},
}
BOUNDED = ("tanh", "sigmoid", "hardtanh")


def limits_for(activation: str):
    """Binning range: [-1, 1] for bounded activations (the paper's), each network's own range for ReLU/linear
    (Saxe et al. 2018)."""
    return (-1.0, 1.0) if activation in BOUNDED else "adaptive"


@lru_cache(maxsize=2)
def paper_run(size: str, seed: int, activation: str = "tanh") -> xr.Dataset:
    """The paper's network on the hard task at ``size``, binning (30 bins) + ensemble, activations kept."""
    check_size(size)
    s = RUN_SIZES[size]
    return train(tasks.tishby(), hidden=PAPER_HIDDEN, activation=activation, repeats=s["repeats"],
                 epochs=s["epochs"], snapshots=s["snapshots"], estimators=("binning", "ensemble"),
                 limits=limits_for(activation), keep_activations=True, seed=seed, progress=False)


def save_run(run: xr.Dataset, path: Path) -> Path:
    """Save a run without its (large) activations and checkpoint."""
    drop = [v for v in run.data_vars if v == "activations" or v.startswith("checkpoint_")]
    return store.save(run.drop_vars(drop), path)


def hidden_layers(run: xr.Dataset) -> np.ndarray:
    """Layer numbers of the hidden layers (all but the softmax output)."""
    return run["layer"].values[:-1]
