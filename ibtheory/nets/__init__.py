"""Batched ensembles of fully connected networks, trained with snapshots of every layer and gradient statistics.

- :func:`train` runs R networks at once on a task and returns the run Dataset (information plane per estimator over
  (epoch, layer, repeat), gradient statistics, losses, accuracies); see :mod:`ibtheory.nets.run` for the layout.
- :func:`iter_training` is the underlying generator of :class:`Snapshot` states; :class:`TrainConfig` validates a
  configuration; :class:`BatchedMLP` is the model (weights (R, fan_in, fan_out)); :func:`snapshot_epochs` the
  log-spaced snapshot schedule.
- :class:`TrainingDiverged` (a ``ValueError``) stops a run whose parameters, losses or activations stop being finite,
  naming the epoch and the repeats; ``train(out=...)`` then saves the finite snapshots, marked ``diverged=1``.
"""

from .data import snapshot_epochs
from .loop import OPTIMIZERS, Snapshot, TrainConfig, TrainingDiverged, iter_training
from .model import ACTIVATIONS, BatchedMLP
from .run import ESTIMATOR_NAMES, train

__all__ = [
    "train", "iter_training", "Snapshot", "TrainConfig", "TrainingDiverged", "BatchedMLP", "ACTIVATIONS", "OPTIMIZERS",
    "ESTIMATOR_NAMES", "snapshot_epochs",
]
