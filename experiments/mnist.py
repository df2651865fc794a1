"""Real data: MNIST test digits in the information plane, an MLP and a small convolutional network.

The task is ``ibtheory.mnist.mnist_task``: p(x) uniform over n test digits (optionally downsampled), one-hot labels,
so H(X) = log2 n and I(X;Y) = H(Y) ~ 3.32 bits.  Both networks are ensembles of R repetitions trained at once; every
layer is measured over all n images with

- the binning estimator (Shwartz-Ziv & Tishby 2017): ``--bins`` equal-width bins, on [-1, 1] for bounded
  activations (tanh, sigmoid, hardtanh) and on each network's own layer range for unbounded ones (ReLU, linear),
  as Saxe et al. (2018) did; averaged over repetitions in the figure;
- the ensemble estimator: the binned encoder pooled over the R repetitions (a stochastic p(t|x)).

Writes into ``--out``: ``mnist_mlp.nc`` and ``mnist_conv.nc`` (run Datasets, information in bits) and
``mnist_plane.png`` (2 x 2 information planes: MLP / conv x binning / ensemble, coloured by epoch), and prints the
test accuracy and, per layer, the fitting and compression of I(X;T) (peak minus initial and peak minus final value
of the repeat-averaged binning estimate, bits).

Usage::

    python experiments/mnist.py --mnist-dir ../shared/data/mnist --out results/mnist --quick   # ~30 s on 1 core
    python experiments/mnist.py --mnist-dir DIR --out DIR2                                      # full size

References: Shwartz-Ziv & Tishby, arXiv:1703.00810; Saxe et al., ICLR 2018; LeCun et al., Proc. IEEE 1998.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch
import xarray as xr

from ibtheory import store
from ibtheory.mnist import mnist_task
from ibtheory.nets import train
from ibtheory.nets.conv import train_conv
from ibtheory.plots.mnist import information_planes

#: (quick, full) defaults of the sizes.
SIZES = {
    "n": (1000, None), "pixels": (14, 28), "repeats": (3, 10), "mlp_epochs": (100, 2000), "conv_epochs": (30, 300),
    "snapshots": (14, 60), "batch_size": (100, 256),
}
BOUNDED = ("tanh", "sigmoid", "hardtanh")


def binning_limits(activation: str):
    """[-1, 1] for bounded activations (the paper's bins), the layer's own range for unbounded ones (ReLU)."""
    return (-1.0, 1.0) if activation in BOUNDED else "adaptive"


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--mnist-dir", required=True, help="folder with t10k-images-idx3-ubyte[.gz], t10k-labels-...")
    p.add_argument("--out", default="results/mnist", help="output folder for .nc and .png files")
    p.add_argument("--quick", action="store_true", help="small sizes (about 30 s on one core)")
    for name, (quick, full) in SIZES.items():
        p.add_argument(f"--{name.replace('_', '-')}", type=int, default=None,
                       help=f"default {quick} with --quick, else {full or 'all'}")
    p.add_argument("--mlp-hidden", default="32,16,8,4", help="MLP hidden widths (narrow tail: see docs/mnist.md)")
    p.add_argument("--mlp-activation", default="tanh")
    p.add_argument("--conv-channels", default="4,8", help="channels of the conv blocks (5x5 conv, 2x2 max pool)")
    p.add_argument("--conv-hidden", default="32,8", help="dense widths after the conv blocks")
    p.add_argument("--conv-activation", default="relu")
    p.add_argument("--bins", type=int, default=30, help="bins per unit of the binning/ensemble estimators")
    p.add_argument("--mlp-lr", type=float, default=1e-3, help="Adam learning rate of the MLP")
    p.add_argument("--conv-lr", type=float, default=3e-3, help="Adam learning rate of the conv net")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (1 is fastest on a shared machine)")
    p.add_argument("--progress", action="store_true", help="show progress bars")
    args = p.parse_args(argv)
    for name, (quick, full) in SIZES.items():
        if getattr(args, name) is None:
            setattr(args, name, quick if args.quick else full)
    return args


def widths(text: str) -> tuple[int, ...]:
    return tuple(int(v) for v in text.split(",") if v.strip())


def layer_summary(run: xr.Dataset) -> xr.Dataset:
    """Per layer, from the repeat-averaged binning I(X;T): fitting (peak - initial) and compression (peak - final)."""
    i_xt = run["I_XT"].mean("repeat").transpose("epoch", "layer").values
    peak = i_xt.max(axis=0)
    return xr.Dataset({"fitting": ("layer", peak - i_xt[0]), "compression": ("layer", peak - i_xt[-1]),
                       "epoch_of_peak": ("layer", run["epoch"].values[i_xt.argmax(axis=0)]),
                       "I_TY_final": ("layer", run["I_TY"].mean("repeat").transpose("epoch", "layer").values[-1])},
                      coords={"layer": run["layer"].values})


def report(name: str, run: xr.Dataset, names: list[str]) -> None:
    acc = run["test_accuracy"].isel(epoch=-1).values
    print(f"{name}: final test accuracy {acc.mean():.3f} +- {acc.std():.3f} over {acc.size} repeats "
          f"(train {run['train_accuracy'].isel(epoch=-1).mean().item():.3f})")
    s = layer_summary(run)
    for j, layer in enumerate(names):
        print(f"  {layer:>8}: I(X;T) fitting {s.fitting.values[j]:6.3f} bits, compression "
              f"{s.compression.values[j]:6.3f} bits (peak at epoch {int(s.epoch_of_peak.values[j])}), "
              f"final I(T;Y) {s.I_TY_final.values[j]:.3f} bits")


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    task = mnist_task(args.mnist_dir, n=args.n, seed=args.seed, pixels=args.pixels)
    print(f"MNIST t10k: {task.sizes['x']} images of {task.attrs['image_height']}x{task.attrs['image_width']} px, "
          f"H(X) = {task.attrs['H_X']:.3f} bits, I(X;Y) = H(Y) = {task.attrs['I_XY']:.3f} bits")
    common = dict(repeats=args.repeats, batch_size=args.batch_size, snapshots=args.snapshots,
                  estimators=("binning", "ensemble"), n_bins=args.bins, seed=args.seed, device=args.device,
                  progress=args.progress)
    mlp_hidden, conv_hidden, channels = widths(args.mlp_hidden), widths(args.conv_hidden), widths(args.conv_channels)
    mlp = train(task, hidden=mlp_hidden, activation=args.mlp_activation, epochs=args.mlp_epochs, lr=args.mlp_lr,
                limits=binning_limits(args.mlp_activation), **common)
    t1 = time.perf_counter()
    conv = train_conv(task, channels=channels, kernel=5, hidden=conv_hidden, activation=args.conv_activation,
                      epochs=args.conv_epochs, lr=args.conv_lr, limits=binning_limits(args.conv_activation), **common)
    t2 = time.perf_counter()
    config = {k: v for k, v in vars(args).items()}
    for name, run in (("mlp", mlp), ("conv", conv)):
        run = run.assign_coords(source_index=("x", task["source_index"].values))
        run.attrs.update(experiment="mnist", mnist_pixels=int(args.pixels), mnist_n=int(task.sizes["x"]))
        store.save(store.with_provenance(run, dict(config, network=name), args.seed), out / f"mnist_{name}.nc")
    mlp_names = [f"h{i + 1}({w})" for i, w in enumerate(mlp_hidden)] + ["softmax"]
    conv_names = ([f"conv{i + 1}({w})" for i, w in enumerate(conv["width"].values[:len(channels)])]
                  + [f"fc{i + 1}({w})" for i, w in enumerate(conv_hidden)] + ["softmax"])
    report(f"MLP {'-'.join(map(str, mlp_hidden))} {args.mlp_activation}", mlp, mlp_names)
    report(f"conv {'-'.join(map(str, channels))} + {'-'.join(map(str, conv_hidden))} {args.conv_activation}", conv,
           conv_names)
    lim = {a: "[-1, 1]" if binning_limits(a) != "adaptive" else "adaptive range"
           for a in (args.mlp_activation, args.conv_activation)}
    panels = [
        (f"MLP ({args.mlp_activation}), binning {args.bins} bins {lim[args.mlp_activation]}, mean of "
         f"{args.repeats}", mlp["I_XT"].mean("repeat"), mlp["I_TY"].mean("repeat")),
        (f"MLP ({args.mlp_activation}), ensemble of {args.repeats}", mlp["I_XT_ensemble"], mlp["I_TY_ensemble"]),
        (f"conv ({args.conv_activation}), binning {args.bins} bins {lim[args.conv_activation]}, mean of "
         f"{args.repeats}", conv["I_XT"].mean("repeat"), conv["I_TY"].mean("repeat")),
        (f"conv ({args.conv_activation}), ensemble of {args.repeats}", conv["I_XT_ensemble"],
         conv["I_TY_ensemble"]),
    ]
    fig = information_planes(panels, task.attrs["H_X"], task.attrs["H_Y"],
                             layer_names=[mlp_names, mlp_names, conv_names, conv_names],
                             suptitle=f"MNIST test digits: n = {task.sizes['x']}, {args.pixels}x{args.pixels} px")
    fig.savefig(out / "mnist_plane.png", dpi=110)
    print(f"times: MLP {t1 - t0:.1f} s, conv {t2 - t1:.1f} s, total {time.perf_counter() - t0:.1f} s")
    print(f"wrote {out / 'mnist_mlp.nc'}, {out / 'mnist_conv.nc'}, {out / 'mnist_plane.png'}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (ValueError, FileNotFoundError) as exc:
        print(f"experiments/mnist.py: error: {exc}", file=sys.stderr)
        sys.exit(2)
