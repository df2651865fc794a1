"""The critiques: does compression survive other activations and other estimators?

Saxe et al. (2018) found that compression in the information plane follows from saturating (double-sided)
activations such as tanh and disappears for ReLU, and that binning a deterministic network measures the geometry
of its representation, not information; Goldfeld et al. (2019) showed that the binned I(X;T) tracks clustering and
depends on the bin size.  The same shared runs (:func:`ibtheory.reproduce.runs.paper_run`, tanh and ReLU) are
measured under each choice, snapshot by snapshot during training:

- activation: tanh (30 bins on [-1, 1]) vs ReLU (30 bins on each network's own range, as Saxe et al.);
- bin count: 10, 30, 100 equal bins on [-1, 1] (tanh);
- estimator: binning vs the noisy layer T + N(0, 0.1 I) with the pairwise-distance (KDE) upper bound of Kolchinsky
  & Tracey (2017) (:func:`ibtheory.estimators.kde_information`), for tanh and ReLU, on a random subset of
  ``runs.KDE_PATTERNS`` patterns (uniform p(x) on the subset) at ``runs.KDE_SNAPSHOTS`` evenly spaced snapshots
  (the estimator costs O(n_x^2) per layer and repeat; the "full" size uses 1024 patterns).

Rule: a choice *shows compression* when at least one hidden layer has both phases (fitting > 0.05 bits, then
compression > 0.05 bits, :func:`ibtheory.reproduce.plane.two_phase_layers`).  The claim under test is the paper's
implicit one, "compression is a general property of training"; verdict "holds" when every choice shows compression,
"holds only under: <choices>" when some do, "does not hold here" when none does.

References
----------
1. A. M. Saxe et al., "On the information bottleneck theory of deep learning", ICLR 2018.
2. Z. Goldfeld et al., "Estimating information flow in deep neural networks", ICML 2019.
3. A. Kolchinsky and B. D. Tracey, "Estimating mixture entropy with pairwise distances", Entropy 19, 2017.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt

from .. import store
from ..plots.plane import plot_plane
from .plane import two_phase_layers
from .report import Section, check_size
from .runs import KDE_PATTERNS, KDE_PLANE, KDE_SNAPSHOTS, NOISE_VAR, hidden_layers, paper_run, plane_of

__all__ = ["run"]

RULE = ("a choice shows compression when at least one hidden layer has both phases (I(X;T) up > 0.05 bits, then "
        "down > 0.05 bits); holds when every choice does, holds only under <choices> when some do, does not hold "
        "when none does")


def run(out: Path, size: str, seed: int, *, device: str = "cpu") -> Section:
    """Run this claim's experiment at ``size`` ("tiny" | "quick" | "full") into ``out`` (.nc, .png) and return
    its :class:`~ibtheory.reproduce.report.Section`, with the verdict of the rule in the module docstring.
    ``device``: torch device of the training ("cpu", "cuda", "cuda:N")."""
    check_size(size)
    tanh, relu = paper_run(size, seed, "tanh", device=device), paper_run(size, seed, "relu", device=device)
    choices = {
        "tanh, 30 bins": plane_of(tanh, ""),
        "relu, 30 bins (own range)": plane_of(relu, ""),
        "tanh, noisy layer (KDE)": plane_of(tanh, KDE_PLANE.suffix),
        "tanh, 10 bins": plane_of(tanh, "_bins10"),
        "tanh, 100 bins": plane_of(tanh, "_bins100"),
        "relu, noisy layer (KDE)": plane_of(relu, KDE_PLANE.suffix),
    }
    hid = hidden_layers(tanh)
    fig, axes = plt.subplots(2, 3, figsize=(17, 9), layout="constrained")
    numbers, shows, results = {}, {}, []
    for ax, (label, ds) in zip(axes.ravel(), choices.items(), strict=True):
        ph = two_phase_layers(ds).sel(layer=hid)
        shows[label] = bool(ph["both"].any())
        key = label.replace(", ", "_").replace(" ", "_").replace("(", "").replace(")", "")
        numbers[f"compression_bits[{label}]"] = ph["compression"].values.round(3).tolist()
        numbers[f"fitting_bits[{label}]"] = ph["fitting"].values.round(3).tolist()
        results.append(store.save(store.with_provenance(ds, {"choice": label, "size": size}, seed),
                                  Path(out) / f"critique_{key}.nc"))
        plot_plane(ds, ax=ax)
        ax.set_title(f"{label}: {'compresses' if shows[label] else 'no compression'}", fontsize=9)
    png = Path(out) / "critiques.png"
    fig.savefig(png, dpi=90)
    plt.close(fig)
    yes = [k for k, v in shows.items() if v]
    if len(yes) == len(shows):
        verdict = "holds"
    elif yes:
        verdict = "holds only under: " + "; ".join(yes)
    else:
        verdict = "does not hold here"
    numbers["shows_compression"] = ", ".join(f"{k}: {v}" for k, v in shows.items())
    return Section("critiques", "Critiques: activation, bins, estimator",
                   "Compression appears whatever the activation (tanh/ReLU), the bin count (10/30/100) and the "
                   "estimator (binning/noisy layer).", numbers, [png], verdict, RULE,
                   notes=f"KDE on {min(KDE_PATTERNS[size], tanh.sizes['x'])} random patterns at "
                   f"{KDE_SNAPSHOTS[size]} snapshots, noise variance {NOISE_VAR}.", results=results)
