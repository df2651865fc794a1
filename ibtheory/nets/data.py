"""Per-repetition randomness of a training run: streams, splits, labels, minibatch orders, snapshot epochs.

Repetition r of a run with seed s draws everything from its own stream
``numpy.random.default_rng(SeedSequence(s, spawn_key=(r,)))`` (the r-th child of ``SeedSequence(s).spawn``), in a
fixed order: initial weights, the train/test split, sampled labels, and a 64-bit shuffle key.  The minibatch
order of epoch e is ``argsort(splitmix64(key_r + (e * 2^20 + i) * golden))`` over the training positions i: a
counter-based hash, so the order of any epoch is computed directly from (key_r, e) (resumption needs no RNG state)
and the orders of all R repetitions come from one vectorised sort.  Hence repetition r is bitwise the same
whether it trains alone (``repeat_start=r, repeats=1``) or with others.

References
----------
1. G. L. Steele, D. Lea, C. H. Flood, "Fast splittable pseudorandom number generators", OOPSLA 2014 (SplitMix64).
"""

from __future__ import annotations

import numpy as np
import torch
import xarray as xr

from ..tasks import conditional

__all__ = ["repeat_generators", "split_masks", "draw_labels", "shuffle_keys", "epoch_orders", "epoch_orders_torch",
           "snapshot_epochs", "input_features"]

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)


def repeat_generators(seed: int, repeat_ids: np.ndarray) -> list[np.random.Generator]:
    """One independent generator per repetition id (the spawn_key of the run's SeedSequence)."""
    return [np.random.default_rng(np.random.SeedSequence(int(seed), spawn_key=(int(r),))) for r in repeat_ids]


def split_masks(rngs: list[np.random.Generator], n_x: int, n_train: int) -> np.ndarray:
    """Boolean train masks (R, n_x) with exactly ``n_train`` True per row, each row its own random subset."""
    masks = np.zeros((len(rngs), n_x), dtype=bool)
    for r, g in enumerate(rngs):  # setup only: one permutation per repetition
        masks[r, g.permutation(n_x)[:n_train]] = True
    return masks


def draw_labels(rngs: list[np.random.Generator], p_y_given_x: np.ndarray) -> np.ndarray:
    """Labels (R, n_x): argmax p(y|x) for a deterministic channel, else one draw y ~ p(y|x) per pattern and repeat.

    Each repetition samples its own labels (a fresh data set per repetition); the uniform variates are drawn
    even for deterministic channels so that the streams stay aligned.
    """
    u = np.stack([g.random(p_y_given_x.shape[0]) for g in rngs])  # (R, n_x)
    if np.all(np.isclose(p_y_given_x.max(axis=1), 1.0, rtol=0, atol=1e-12)):
        return np.broadcast_to(np.argmax(p_y_given_x, axis=1), u.shape).copy()
    cdf = np.cumsum(p_y_given_x, axis=1)
    labels = (u[:, :, None] > cdf[None, :, :]).sum(axis=2)
    return np.minimum(labels, p_y_given_x.shape[1] - 1)


def shuffle_keys(rngs: list[np.random.Generator]) -> np.ndarray:
    """One uint64 shuffle key per repetition."""
    return np.array([g.integers(0, 2**63, dtype=np.uint64) for g in rngs], dtype=np.uint64)


def _splitmix64(z: np.ndarray) -> np.ndarray:
    z = z + _GOLDEN
    z = (z ^ (z >> np.uint64(30))) * _M1
    z = (z ^ (z >> np.uint64(27))) * _M2
    return z ^ (z >> np.uint64(31))


def epoch_orders(keys: np.ndarray, epoch: int, n_train: int) -> np.ndarray:
    """Minibatch order of ``epoch`` for every repetition: (R, n_train) permutations of 0..n_train-1.

    The pattern index is packed into the low 20 bits of the hashed key, so one ``np.sort`` gives the permutation
    (ties of the 44 high hash bits, probability ~n^2 2^-45 per epoch, keep index order).
    """
    if n_train >= 2**20:
        raise ValueError(f"n_train must be < 2^20 for the packed shuffle, got {n_train}")
    i = np.arange(n_train, dtype=np.uint64)
    with np.errstate(over="ignore"):
        counter = np.uint64(epoch) * np.uint64(2**20) + i
        h = _splitmix64(keys[:, None] + counter[None, :] * _GOLDEN)
    packed = (h & ~np.uint64(2**20 - 1)) | i
    return (np.sort(packed, axis=1) & np.uint64(2**20 - 1)).astype(np.int64)


def _as_signed(v: int) -> int:
    """The int64 with the bits of the uint64 ``v`` (torch has no uint64 arithmetic)."""
    return v - 2**64 if v >= 2**63 else v


def _srl(z: torch.Tensor, k: int) -> torch.Tensor:
    """Logical right shift of int64 bits (torch's >> is arithmetic)."""
    return (z >> k) & ((1 << (64 - k)) - 1)


def epoch_orders_torch(keys: torch.Tensor, epoch: int, n_train: int) -> torch.Tensor:
    """:func:`epoch_orders` computed with torch on the keys' device: the same permutations, bit for bit.

    ``keys`` is an int64 tensor holding the bits of the uint64 shuffle keys (``keys_np.view(np.int64)``).  int64
    multiplication and addition wrap around like uint64 (two's complement), shifts are made logical, and flipping
    the sign bit turns the unsigned order of the packed keys into the signed order that ``torch.sort`` uses.
    Returns an int64 tensor (R, n_train) on the keys' device.
    """
    if n_train >= 2**20:
        raise ValueError(f"n_train must be < 2^20 for the packed shuffle, got {n_train}")
    golden, m1, m2 = (_as_signed(int(v)) for v in (_GOLDEN, _M1, _M2))
    i = torch.arange(n_train, dtype=torch.int64, device=keys.device)
    counter = int(epoch) * 2**20 + i
    z = keys[:, None] + counter[None, :] * golden + golden
    z = (z ^ _srl(z, 30)) * m1
    z = (z ^ _srl(z, 27)) * m2
    z = z ^ _srl(z, 31)
    packed = (z & ~(2**20 - 1)) | i
    packed = packed ^ _as_signed(2**63)  # unsigned order -> signed order
    return torch.sort(packed, dim=1).values & (2**20 - 1)


def snapshot_epochs(epochs: int, snapshots: int) -> np.ndarray:
    """About ``snapshots`` log-spaced epochs in 0..epochs, always containing 0 (initialisation) and ``epochs``.

    ``unique(round(logspace(0, log10(epochs), snapshots - 1)))`` plus 0; early epochs are dense, so fewer than
    ``snapshots`` distinct epochs may result when epochs is small.

    >>> snapshot_epochs(100, 5).tolist()
    [0, 1, 5, 22, 100]
    """
    if epochs < 1:
        return np.array([0])
    if snapshots < 2:
        return np.array([0, epochs])
    e = np.unique(np.round(np.logspace(0, np.log10(epochs), snapshots - 1)).astype(np.int64))
    return np.unique(np.concatenate([[0], e, [epochs]]))


def input_features(task: xr.Dataset) -> np.ndarray:
    """Network inputs (n_x, n_in) for a task: ``patterns`` or ``values`` (x, bit), else ``x_value``, else one-hot."""
    for name in ("patterns", "values"):
        if name in task:
            return np.asarray(task[name].values, dtype=np.float64)
    if "x_value" in task.coords:
        return np.asarray(task["x_value"].values, dtype=np.float64)[:, None]
    p_x, _ = conditional(task["p_xy"].values)
    return np.eye(p_x.size)
