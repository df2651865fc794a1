"""Information-based early stopping against validation-loss early stopping.

The IB view suggests stopping when the output layer Y_hat stops improving the IB Lagrangian

    L_beta(e) = I(X; Y_hat_e) - beta I(Y_hat_e; Y)     (bits),

measured on the *training* patterns only (uniform p(x) on the training set, p(y|x) one-hot from the training
labels; binning of the softmax outputs with 30 bins on [-1, 1]), so that the rule needs no held-out data.  It is
compared with the usual rule on a validation loss: the held-out patterns of each repeat are split at random into a
validation half and a test half; validation early stopping watches the mean cross-entropy (bits) on the validation
half.  Both rules run on the snapshots of the shared tanh run (:func:`ibtheory.reproduce.runs.paper_run`, whose
``output`` holds the softmax outputs for the per-pattern losses), with the same patience: stop at the first
snapshot after which the watched quantity has not improved (by more than 1e-3) for :data:`PATIENCE` snapshots;
the model kept is the one at the best snapshot, and "epochs used" is the epoch at which the rule stopped (the last
epoch when it never did).  Test accuracy is on the test half.

Rule (at beta = :data:`BETA`): with dA = mean test accuracy (IB rule) - mean test accuracy (validation rule) over
repeats, and E_IB, E_val the mean epochs used, the claim "holds" when dA >= -0.01 and E_IB <= E_val; "holds only
under: more training epochs than validation stopping" when dA >= -0.01 but E_IB > E_val; "does not hold here" when
dA < -0.01.  The numbers also list beta in :data:`BETAS` for sensitivity.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import xarray as xr

from .. import store
from ..estimators import binned_information
from .report import Section, check_size
from .runs import paper_run

__all__ = ["run", "BETA", "BETAS", "PATIENCE", "stop_index", "output_lagrangian", "split_losses"]

BETA = 20.0
BETAS = (5.0, 20.0, 100.0)
PATIENCE = {"tiny": 2, "quick": 3, "full": 10}
MIN_DELTA = 1e-3
RULE = ("stop when the watched quantity has not improved by 1e-3 for the patience in snapshots, keep the best "
        "snapshot; dA = test accuracy(IB rule, beta 20) - test accuracy(validation-loss rule): holds when "
        "dA >= -0.01 and the IB rule uses no more epochs, holds only under more epochs when dA >= -0.01 but it "
        "uses more, does not hold when dA < -0.01")


def stop_index(values: np.ndarray, patience: int, min_delta: float = MIN_DELTA) -> tuple[np.ndarray, np.ndarray]:
    """Early stopping on ``values`` (snapshot, repeat), lower is better.

    Returns (best, stopped): per repeat the index of the best snapshot up to the stop, and the index at which the
    rule stopped (the last index when it never did).
    """
    v = np.asarray(values, dtype=np.float64)
    n, r = v.shape
    best = np.zeros(r, dtype=int)
    stopped = np.full(r, n - 1)
    done = np.zeros(r, dtype=bool)
    best_val = v[0].copy()
    wait = np.zeros(r, dtype=int)
    for i in range(1, n):  # loop over snapshots (sequential by nature), vectorised over repeats
        better = (v[i] < best_val - min_delta) & ~done
        best_val = np.where(better, v[i], best_val)
        best = np.where(better, i, best)
        wait = np.where(better, 0, wait + ~done)
        newly = (wait >= patience) & ~done
        stopped = np.where(newly, i, stopped)
        done |= newly
    return best, stopped


def output_lagrangian(run: xr.Dataset, betas, n_bins: int = 30) -> xr.Dataset:
    """I(X;Y_hat), I(Y_hat;Y) of the output layer on each repeat's training patterns (bits) and L_beta."""
    acts = run["output"].transpose("repeat", "epoch", "x", "y").values
    mask = run["train_mask"].transpose("repeat", "x").values.astype(bool)
    labels = run["labels"].transpose("repeat", "x").values.astype(int)
    n_y = run.sizes["y"]
    ixt = np.empty((run.sizes["epoch"], run.sizes["repeat"]))
    ity = np.empty_like(ixt)
    for k in range(run.sizes["repeat"]):  # each repeat has its own training set (p_x); epochs are vectorised
        p_x = mask[k] / mask[k].sum()
        r = binned_information(acts[k], p_x, np.eye(n_y)[labels[k]], n_bins=n_bins)
        ixt[:, k], ity[:, k] = r.I_XT, r.I_TY
    b = np.asarray(betas, dtype=np.float64)
    ds = xr.Dataset({"I_XT_out": (("epoch", "repeat"), ixt, {"units": "bits"}),
                     "I_TY_out": (("epoch", "repeat"), ity, {"units": "bits"}),
                     "lagrangian": (("beta", "epoch", "repeat"), ixt[None] - b[:, None, None] * ity[None],
                                    {"units": "bits"})},
                    coords={"beta": b, "epoch": run["epoch"].values, "repeat": run["repeat"].values})
    return ds


def split_losses(run: xr.Dataset, seed: int) -> xr.Dataset:
    """Per (epoch, repeat): validation cross-entropy (bits) and test accuracy on a random half of each repeat's
    held-out patterns each."""
    probs = run["output"].transpose("epoch", "repeat", "x", "y").values.astype(np.float64)
    labels = run["labels"].transpose("repeat", "x").values.astype(int)
    held = ~run["train_mask"].transpose("repeat", "x").values.astype(bool)
    u = np.random.default_rng(seed).random(held.shape)
    thresh = np.nanmedian(np.where(held, u, np.nan), axis=1, keepdims=True)  # half of each repeat's held-out set
    val, test = held & (u < thresh), held & (u >= thresh)
    p_true = np.take_along_axis(probs, labels[None, :, :, None], axis=-1)[..., 0]
    ce = -np.log2(np.clip(p_true, 1e-12, None))
    correct = (probs.argmax(-1) == labels[None]).astype(np.float64)
    ds = xr.Dataset({"val_loss": (("epoch", "repeat"), (ce * val).sum(-1) / val.sum(-1), {"units": "bits"}),
                     "test_acc": (("epoch", "repeat"), (correct * test).sum(-1) / test.sum(-1))},
                    coords={"epoch": run["epoch"].values, "repeat": run["repeat"].values})
    return ds


def run(out: Path, size: str, seed: int, *, device: str = "cpu") -> Section:
    """Run this claim's experiment at ``size`` ("tiny" | "quick" | "full") into ``out`` (.nc, .png) and return
    its :class:`~ibtheory.reproduce.report.Section`, with the verdict of the rule in the module docstring.
    ``device``: torch device of the training ("cpu", "cuda", "cuda:N")."""
    check_size(size)
    r = paper_run(size, seed, "tanh", device=device)
    pat = min(PATIENCE[size], r.sizes["epoch"] - 1)
    info = output_lagrangian(r, BETAS)
    sl = split_losses(r, seed)
    epochs = r["epoch"].values
    acc = sl["test_acc"].values
    pick = lambda idx: acc[idx, np.arange(acc.shape[1])]  # noqa: E731
    vb, vs = stop_index(sl["val_loss"].values, pat)
    numbers = {"patience_snapshots": pat, "val_stop_epochs_used": float(epochs[vs].mean()),
               "val_stop_test_accuracy": float(pick(vb).mean()),
               "train_to_end_test_accuracy": float(acc[-1].mean()), "last_epoch": int(epochs[-1])}
    res = {}
    for b in BETAS:
        ib, is_ = stop_index(info["lagrangian"].sel(beta=b).values, pat)
        res[b] = (float(epochs[is_].mean()), float(pick(ib).mean()))
        numbers[f"ib_stop_beta{b:g}_epochs_used"] = res[b][0]
        numbers[f"ib_stop_beta{b:g}_test_accuracy"] = res[b][1]
    e_ib, a_ib = res[BETA]
    d_acc = a_ib - numbers["val_stop_test_accuracy"]
    numbers["delta_test_accuracy"] = d_acc
    if d_acc < -0.01:
        verdict = "does not hold here"
    elif e_ib <= numbers["val_stop_epochs_used"]:
        verdict = "holds"
    else:
        verdict = "holds only under: more training epochs than validation stopping"
    ds = xr.merge([info, sl])
    nc = store.save(store.with_provenance(ds, {"size": size, "betas": list(BETAS), "patience": pat}, seed),
                    Path(out) / "early_stopping.nc")
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.4), layout="constrained")
    ep = np.maximum(epochs, 1)
    for b, c in zip(BETAS, ("C0", "C1", "C2"), strict=True):
        axes[0].semilogx(ep, info["lagrangian"].sel(beta=b).mean("repeat"), color=c,
                         label=f"I(X;Ŷ) - {b:g} I(Ŷ;Y)")
    axes[0].set_xlabel("epoch (0 drawn at 1)")
    axes[0].set_ylabel("IB Lagrangian of the output on training patterns [bits]")
    axes[0].legend(fontsize=7)
    axes[1].semilogx(ep, sl["val_loss"].mean("repeat"), color="C3", label="validation cross-entropy [bits]")
    axes[1].set_xlabel("epoch (0 drawn at 1)")
    axes[1].set_ylabel("validation cross-entropy [bits]")
    ax2 = axes[1].twinx()
    ax2.semilogx(ep, sl["test_acc"].mean("repeat"), color="k", ls="--", label="test accuracy")
    ax2.set_ylabel("test accuracy")
    axes[1].axvline(max(numbers["val_stop_epochs_used"], 1), color="C3", ls=":", label="validation stop (mean)")
    axes[1].axvline(max(e_ib, 1), color="C1", ls=":", label=f"IB stop, beta {BETA:g} (mean)")
    axes[1].legend(fontsize=7, loc="center left")
    png = Path(out) / "early_stopping.png"
    fig.savefig(png, dpi=100)
    plt.close(fig)
    return Section("early_stopping", "Information-based early stopping",
                   f"Stopping when I(X;Ŷ) - {BETA:g} I(Ŷ;Y) of the output stops improving (no validation data) "
                   "is as good as validation-loss early stopping.", numbers, [png], verdict, RULE,
                   notes="snapshots are log-spaced, so the patience in epochs grows with time.", results=[nc])
