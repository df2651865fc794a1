"""The critics' matrix: every knob the critics turned, each setting with a verdict per claim.

Rows: the settings of :mod:`ibtheory.reproduce.settings` (activation, estimator, quantization, optimisation,
data), each one training run seen through one estimate of its layers.  Columns: the claims of
:mod:`ibtheory.reproduce.claims` (two phases; gradient phases aligned with the compression turn under the SNR = 1
rule and under the authors' "minimum of the derivative of the SNR" rule; layers near the IB bound; compression
faster in the deeper layers; a shorter compression phase after an already compressed layer; compression time
growing super-linearly with the compressed bits), each cell computed by that claim's rule from the row's numbers.

The rows run as a sweep on the runner (task kind ``"critique"``, one task per setting): in-process by default, on a
process pool or a dask cluster with ``executor``; finished rows are kept under ``out/critiques_sweep`` and a
rerun resumes.  Outputs: ``critiques_matrix.nc`` (verdict codes -1 n/a, 0 does not hold, 1 partly, 2 holds;
scores; details; dims setting x claim, the settings' labels readable, their group and source as coordinates), the
heat map ``critiques_matrix.png``, the planes of six settings ``critiques.png``, and Goldfeld et al.'s single noisy
neuron ``critiques_neuron.png`` (X uniform on {-3, -1, 1, 3}, T = tanh(w X) + N(0, sigma^2): I(X;T) first rises and
then falls as w grows, while the network's function only sharpens).

Rule of the section (the paper's implicit claim "compression is a general property of training"): a setting *shows
compression* when its two-phases cell is "holds" or "partly" (at least one hidden layer rises by > 0.05 bits and
then falls by > 0.05 bits).  Verdict "holds" when every setting does, "holds only under: <settings>" when some
do, "does not hold here" when none does.

References
----------
1. A. M. Saxe et al., "On the information bottleneck theory of deep learning", ICLR 2018.
2. Z. Goldfeld et al., "Estimating information flow in deep neural networks", ICML 2019.
3. R. A. Amjad and B. C. Geiger, "Learning representations for neural network-based classification using the
   information bottleneck principle", IEEE TPAMI 2019.
4. S. S. Lorenzen, C. Igel and M. Nielsen, "Information bottleneck: exact analysis of (quantized) neural
   networks", ICLR 2022.
5. I. Chelombiev, C. Houghton and C. O'Donnell, "Adaptive estimators show information compression in deep neural
   networks", ICLR 2019.
6. A. Kolchinsky and B. D. Tracey, "Estimating mixture entropy with pairwise distances", Entropy 19, 2017.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import xarray as xr

from .. import store
from ..estimators.gaussian import noisy_neuron_curve
from ..plots.matrix import plot_verdict_matrix
from ..plots.plane import plot_plane
from ..runner import Executor, InProcess, run_sweep
from .claims import CLAIM_LABELS, CLAIMS, HOLDS, PARTLY, RULES, verdict_word
from .report import Section, check_size
from .runs import KDE_PATTERNS, KDE_SNAPSHOTS, NOISE_VAR, RUN_SIZES
from .settings import SETTINGS

__all__ = ["run", "matrix", "PLANE_PANELS", "NEURON_WS"]

RULE = ("a setting shows compression when its two-phases cell holds or holds partly (a hidden layer's I(X;T) "
        "rises by > 0.05 bits, then falls by > 0.05 bits); holds when every setting does, holds only under "
        "<settings> when some do, does not hold when none does; every other cell by its claim's rule (below)")
#: The settings whose information planes ``critiques.png`` shows.
PLANE_PANELS = ("tanh, 30 bins [-1, 1]", "relu, 30 bins own range", "tanh, KDE noise 1e-1",
                "tanh, authors' grid (IDNNs)", "tanh quantized 4 bits, exact", "full-batch GD lr 0.5")
#: Goldfeld et al.'s single neuron: weights w, noise sigma.
NEURON_WS = np.linspace(0.0, 8.0, 161)
NEURON_SIGMA = 0.1


def matrix(sweep: xr.Dataset) -> xr.Dataset:
    """The matrix Dataset (setting, claim) from the merged sweep of the ``critique`` kind: verdict codes, scores
    and details in the settings' order, with each setting's group and source."""
    order = [s.label for s in SETTINGS if s.label in sweep["setting"].values]
    sw = sweep.sel(setting=order)
    out = xr.Dataset({"verdict": sw["verdict"].astype(np.int8), "score": sw["score"], "detail": sw["detail"]})
    out = out.assign_coords(group=("setting", [s.group for s in SETTINGS if s.label in order]),
                            source=("setting", [s.source for s in SETTINGS if s.label in order]),
                            claim_label=("claim", [CLAIM_LABELS[c] for c in out["claim"].values]))
    out["verdict"].attrs.update(flag_values=[-1, 0, 1, 2], flag_meanings="n/a does_not_hold partly holds")
    out["rule"] = ("claim", [RULES[c] for c in out["claim"].values])
    return out


def _table(m: xr.Dataset) -> str:
    """The matrix as a markdown table: one row per setting, one column per claim, the verdict word and score."""
    head = "| setting | group | " + " | ".join(str(v) for v in m["claim_label"].values) + " |"
    rows = [head, "|" + "---|" * (2 + m.sizes["claim"])]
    for i, label in enumerate(m["setting"].values):
        cells = []
        for j in range(m.sizes["claim"]):
            code, score = int(m["verdict"].values[i, j]), float(m["score"].values[i, j])
            cells.append(verdict_word(code) + ("" if not np.isfinite(score) else f" ({score:.2f})"))
        rows.append(f"| {label} | {m['group'].values[i]} | " + " | ".join(cells) + " |")
    return "\n".join(rows)


def _planes_figure(sweep: xr.Dataset, out: Path) -> Path:
    fig, axes = plt.subplots(2, 3, figsize=(17, 9), layout="constrained")
    for ax, label in zip(axes.ravel(), PLANE_PANELS, strict=True):
        row = sweep.sel(setting=label)
        ok = np.isfinite(row["epoch"].values)
        ds = xr.Dataset({"I_XT": row["I_XT"].isel(snapshot=ok), "I_TY": row["I_TY"].isel(snapshot=ok)})
        ds = ds.assign_coords(epoch=("snapshot", row["epoch"].values[ok].astype(np.int64))).swap_dims(
            snapshot="epoch")
        plot_plane(ds, ax=ax)
        two = int(row["verdict"].sel(claim="two_phases"))
        ax.set_title(f"{label}: two phases {verdict_word(two)}", fontsize=9)
    path = out / "critiques.png"
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def _neuron_figure(out: Path) -> tuple[Path, dict]:
    curve = noisy_neuron_curve(NEURON_WS, sigma=NEURON_SIGMA)
    i = curve["I_XT"].values
    k = int(np.argmax(i))
    fig, ax = plt.subplots(figsize=(6, 4), layout="constrained")
    ax.plot(NEURON_WS, i, color="k")
    ax.axvline(NEURON_WS[k], color="grey", lw=0.5)
    ax.set_xlabel("weight w")
    ax.set_ylabel("I(X;T) [bits]")
    ax.set_title(f"single noisy neuron T = tanh(wX) + N(0, {NEURON_SIGMA}^2), X uniform on {{-3,-1,1,3}}",
                 fontsize=9)
    path = out / "critiques_neuron.png"
    fig.savefig(path, dpi=100)
    plt.close(fig)
    numbers = {"neuron_peak_w": round(float(NEURON_WS[k]), 3), "neuron_peak_I_XT_bits": round(float(i[k]), 4),
               "neuron_final_I_XT_bits": round(float(i[-1]), 4)}
    return path, numbers


def run(out: Path, size: str, seed: int, *, device: str = "cpu", executor: Executor | None = None) -> Section:
    """Run the matrix at ``size`` ("tiny" | "quick" | "full") into ``out`` and return its
    :class:`~ibtheory.reproduce.report.Section` (verdict by the rule in the module docstring).  ``device``: torch
    device of the training; ``executor``: the runner's executor for the rows (default in-process)."""
    check_size(size)
    out = Path(out)
    grid = {"kind": "critique", "seed": int(seed), "name": f"critiques-{size}",
            "fixed": {"size": size, "run_seed": int(seed), "device": device},
            "axes": {"setting": [s.label for s in SETTINGS]}}
    res = run_sweep(grid, out / "critiques_sweep", executor or InProcess(), progress=False)
    if res.failures:
        raise RuntimeError("critiques: settings failed: " + "; ".join(e.describe() for e in res.failures))
    sweep = res.dataset
    m = matrix(sweep)
    results = [store.save(store.with_provenance(m, {"size": size}, seed), out / "critiques_matrix.nc")]
    fig = plot_verdict_matrix(m)
    heat = out / "critiques_matrix.png"
    fig.savefig(heat, dpi=100)
    plt.close(fig)
    planes = _planes_figure(sweep, out)
    neuron, numbers = _neuron_figure(out)
    two = m["verdict"].sel(claim="two_phases").values
    shows = {label: bool(v in (HOLDS, PARTLY)) for label, v in zip(m["setting"].values, two, strict=True)}
    yes = [k for k, v in shows.items() if v]
    verdict = ("holds" if len(yes) == len(shows) else "holds only under: " + "; ".join(yes) if yes
               else "does not hold here")
    for label in ("tanh, exact float codes", "tanh quantized 8 bits, exact", "tanh quantized 4 bits, exact"):
        if label in sweep["setting"].values:  # Amjad & Geiger / Lorenzen et al.: the exact H(T) of each layer
            row = sweep["I_XT"].sel(setting=label)
            last = row.isel(snapshot=int(np.flatnonzero(np.isfinite(row.values).all(axis=1))[-1]))
            numbers[f"final_I_XT_bits[{label}]"] = np.round(last.values, 3).tolist()
    for c in CLAIMS:
        v = m["verdict"].sel(claim=c).values
        numbers[f"settings_holding[{c}]"] = f"{int((v == HOLDS).sum())} holds, {int((v == PARTLY).sum())} partly, " \
            f"{int((v == 0).sum())} not, {int((v < 0).sum())} n/a of {v.size}"
    s = RUN_SIZES[size]
    notes = (f"Every row at size {size}: {s['repeats']} repeats x {s['epochs']} epochs (batch 32: a quarter), "
             f"{s['snapshots']} snapshots; KDE rows on {KDE_PATTERNS[size]} random patterns at {KDE_SNAPSHOTS[size]} "
             f"snapshots (noise variance {NOISE_VAR} and 1e-3). Rules of the columns: "
             + " ".join(f"*{CLAIM_LABELS[c]}*: {RULES[c]}" for c in CLAIMS))
    return Section("critiques", "Critiques: the critics' matrix",
                   "Compression appears whatever the activation, the estimator, the optimiser and the data; each "
                   "other claim is checked in every setting.", numbers, [heat, planes, neuron], verdict, RULE,
                   notes=notes, results=results, table=_table(m))
