"""Real data: do the hidden layers of networks trained on the MNIST test digits compress?

Task: :func:`ibtheory.mnist.mnist_task` (uniform p(x) over n test digits, one-hot labels, block-mean downsampled);
networks: an MLP (tanh, 32-16-8-4, :func:`ibtheory.nets.train`) and a small convolutional network (ReLU, 5x5
convolutions with 2x2 max pooling, then dense layers, :func:`ibtheory.nets.conv.train_conv`).  Each layer is
measured with binning (30 bins; [-1, 1] for tanh, each network's own range for ReLU, as Saxe et al. 2018) averaged
over repeats, and with the ensemble estimator (binned encoder pooled over repeats).  Figure:
:func:`ibtheory.plots.mnist.information_planes`, 2 x 2, coloured by epoch, layers named h1(32) .. softmax and
conv1(width) .. fc1(32) .. softmax.

Sizes: :data:`MNIST_SIZES`; :func:`run` takes any of their entries as a keyword to change one (e.g. ``n=1000,
mlp_epochs=100`` for the runs quoted in docs/mnist.md) and ``device="cuda"`` for the full size on a GPU.
``experiments/mnist.py`` is the command line (``--size``, ``--quick``, ``--mnist-dir``, ``--out``, ``--seed``).

Rule: a (network, estimator) pair *shows compression* when at least one hidden layer has both phases (I(X;T) up
by > 0.05 bits, then down by > 0.05 bits; :func:`ibtheory.reproduce.plane.two_phase_layers`).  Verdict "holds" when
all four pairs show compression, "holds only under: <pairs>" when some do, "does not hold here" when none does,
and "skipped" when no MNIST folder is given or it lacks the t10k images or labels IDX file (the reason is in the
verdict).

References: Shwartz-Ziv & Tishby, arXiv:1703.00810; Saxe et al., ICLR 2018; LeCun et al., Proc. IEEE 1998.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt

from .. import store
from ..mnist import mnist_files, mnist_task
from ..nets import train
from ..nets.conv import train_conv
from ..plots.mnist import information_planes
from .plane import two_phase_layers
from .report import Section, check_size
from .runs import limits_for

__all__ = ["run", "MNIST_SIZES"]

MNIST_SIZES = {
    "tiny": {"n": None, "pixels": None, "repeats": 2, "mlp_epochs": 6, "conv_epochs": 3, "snapshots": 4,
             "batch_size": 16, "channels": (2,), "conv_hidden": (8,)},
    "quick": {"n": 600, "pixels": 14, "repeats": 3, "mlp_epochs": 80, "conv_epochs": 15, "snapshots": 12,
              "batch_size": 100, "channels": (4, 8), "conv_hidden": (32, 8)},
    "full": {"n": None, "pixels": 28, "repeats": 10, "mlp_epochs": 2000, "conv_epochs": 300, "snapshots": 60,
             "batch_size": 256, "channels": (4, 8), "conv_hidden": (32, 8)},
}
MLP_HIDDEN = (32, 16, 8, 4)
CLAIM = "The hidden layers of an MLP and a conv net trained on MNIST digits compress, under binning and ensemble."
RULE = ("a (network, estimator) pair shows compression when at least one hidden layer's I(X;T) rises by > 0.05 "
        "bits and then falls by > 0.05 bits; holds when all four pairs do, holds only under <pairs> when some do, "
        "does not hold when none does, skipped without --mnist-dir")


def run(out: Path, size: str, seed: int, mnist_dir: str | Path | None = None, *, device: str = "cpu",
        **sizes) -> Section:
    """Run the MNIST experiment at ``size`` into ``out`` (.nc, .png) and return its Section; "skipped" without
    ``mnist_dir`` (the folder with the t10k IDX files).  Verdict by the rule in the module docstring.

    Also "skipped", with the reason in the verdict, when ``mnist_dir`` lacks the images or the labels file.
    ``sizes`` change entries of ``MNIST_SIZES[size]`` (``ValueError`` naming any other keyword); ``device`` is the
    torch device of both trainers ("cpu", "cuda", "cuda:N")."""
    s = dict(MNIST_SIZES[check_size(size)])
    unknown = sorted(set(sizes) - set(s))
    if unknown:
        raise ValueError(f"unknown size field(s) {unknown} for the MNIST section; choose from {sorted(s)}")
    s.update(sizes)
    needs = "give the folder with t10k-images-idx3-ubyte[.gz] and t10k-labels-idx1-ubyte[.gz]."
    if mnist_dir is None:
        return Section("mnist", "MNIST", CLAIM, {}, [], "skipped (no --mnist-dir given)", RULE, notes=needs)
    try:
        mnist_files(mnist_dir)
    except FileNotFoundError as exc:
        return Section("mnist", "MNIST", CLAIM, {}, [], f"skipped ({exc})", RULE, notes=needs)
    task = mnist_task(mnist_dir, n=s["n"], seed=seed, pixels=s["pixels"])
    common = dict(repeats=s["repeats"], batch_size=s["batch_size"], snapshots=s["snapshots"],
                  estimators=("binning", "ensemble"), seed=seed, device=device, progress=False)
    mlp = train(task, hidden=MLP_HIDDEN, activation="tanh", epochs=s["mlp_epochs"], lr=1e-3,
                limits=limits_for("tanh"), **common)
    conv = train_conv(task, channels=s["channels"], kernel=5 if task.attrs["image_height"] >= 8 else 3,
                      hidden=s["conv_hidden"], activation="relu", epochs=s["conv_epochs"], lr=3e-3,
                      limits=limits_for("relu"), **common)
    results, numbers, shows, panels = [], {}, {}, []
    n_conv = len(s["channels"])
    names = {"mlp": [f"h{i + 1}({w})" for i, w in enumerate(MLP_HIDDEN)] + ["softmax"],
             "conv": [f"conv{i + 1}({w})" for i, w in enumerate(conv["width"].values[:n_conv])]
             + [f"fc{i + 1}({w})" for i, w in enumerate(s["conv_hidden"])] + ["softmax"]}
    for name, r in (("mlp", mlp), ("conv", conv)):
        drop = [v for v in r.data_vars if v.startswith("checkpoint_")]
        results.append(store.save(store.with_provenance(r.drop_vars(drop), dict(s, network=name), seed),
                                  Path(out) / f"mnist_{name}.nc"))
        hid = r["layer"].values[:-1]
        numbers[f"{name}_test_accuracy"] = float(r["test_accuracy"].isel(epoch=-1).mean())
        for est, var in (("binning", "I_XT"), ("ensemble", "I_XT_ensemble")):
            ph = two_phase_layers(r, var).sel(layer=hid)
            shows[f"{name}, {est}"] = bool(ph["both"].any())
            numbers[f"{name}_{est}_compression_bits"] = ph["compression"].values.round(3).tolist()
            numbers[f"{name}_{est}_fitting_bits"] = ph["fitting"].values.round(3).tolist()
            i_ty = "I_TY" if est == "binning" else "I_TY_ensemble"
            mean = (lambda v: v.mean("repeat") if "repeat" in v.dims else v)  # noqa: E731
            panels.append((f"{name} ({r.attrs.get('activation', '')}), {est}", mean(r[var]), mean(r[i_ty])))
    fig = information_planes(panels, task.attrs["H_X"], task.attrs["H_Y"],
                             layer_names=[names["mlp"], names["mlp"], names["conv"], names["conv"]],
                             suptitle=f"MNIST test digits: n = {task.sizes['x']}, "
                             f"{task.attrs['image_height']}x{task.attrs['image_width']} px")
    png = Path(out) / "mnist_plane.png"
    fig.savefig(png, dpi=90)
    plt.close(fig)
    yes = [k for k, v in shows.items() if v]
    verdict = ("holds" if len(yes) == len(shows) else "holds only under: " + "; ".join(yes) if yes
               else "does not hold here")
    numbers["shows_compression"] = ", ".join(f"{k}: {v}" for k, v in shows.items())
    numbers["n_images"] = int(task.sizes["x"])
    numbers["H_X_bits"] = float(task.attrs["H_X"])
    return Section("mnist", "MNIST", CLAIM, numbers, [png], verdict, RULE,
                   notes=f"{s['repeats']} repeats; MLP {s['mlp_epochs']} epochs, conv {s['conv_epochs']} epochs.",
                   results=results)
