"""Claim 4: converged layers lie on or near the IB curve and satisfy the IB self-consistent equations for some
beta* (one beta* per layer, increasing toward the input); and the training-set size moves where they converge.

Task: the soft rule p(y=1|x) = sigmoid(gamma (f(x) - theta) / sd f) with gamma = 19.05 (I(X;Y) = 0.90 bits,
:func:`ibtheory.tasks.tishby`), whose IB curve is non-trivial.  Curve: :func:`ibtheory.ib.ib_curve` at
:data:`N_BETAS` log-spaced betas in [0.5, 2000], certified (upper band); it carries the task's p_xy, so
:func:`ibtheory.compare.against_bound` checks the run against the very table.  Run: the paper's tanh network (80 %
training patterns), labels drawn once per repeat from p(y|x), activations kept.  Two estimators of each hidden
layer at the last snapshot, each with its own encoder p(t|x) on all 4096 patterns:

- *binning*: the deterministic encoder of 30 equal bins on [-1, 1] (the paper's); its gaps come from the run (every
  repeat), its fits from the same encoder with states of equal decoder merged (T' = p(y|T): same I(T;Y), lower
  I(X;T); IB solutions never hold two states with one decoder);
- *noisy layer*: T = h(X) + N(0, 0.1 I) binned on the same grid, sampled with :data:`N_DRAWS` draws per pattern
  (:func:`ibtheory.compare.noisy_encoder`); a proper stochastic encoder, so its gaps and its fit are exact for the
  sampled channel (its I(X;T) overstates the Gaussian channel's on average, by convexity).

Per layer and estimator: the relevance gap F(I(X;T)) - I(T;Y) and compression gap I(X;T) - F^-1(I(T;Y)) (bits),
beta* and the mismatch M(beta*) (bits) with the IB encoder equation (:mod:`ibtheory.compare.consistency`), each as
repeat mean and repeat standard deviation (beta*: geometric mean and std of log10 beta*, decades; the figure
annotates the same value).  The fits run on the first :data:`SC_REPEATS` repeats: all of them at tiny and quick; 10
of 20 at full, where each fit of a 4096-pattern layer (noisy: 16 draws, up to 65,536 states) costs about a second.

Training-set sizes: the same network at train fractions :data:`TRAIN_FRACTIONS` (5 %, 45 %, 85 %, sizes
:data:`FRACTION_RUNS`, no activations kept), each run's binning gaps against the same curve; the figure
``bound_sizes.png`` shows each layer's trajectory and final point (error bars over repeats) per size on the
certified curve; the numbers give, per size, the last hidden layer's relevance gap and I(T;Y).  They illustrate and
do not enter the verdict (claim 6b has its own section, ``sizes``).

Rule, per estimator E in (binning, noisy layer): a hidden layer is *near the curve* when its repeat-mean relevance
gap is <= GAP_TOL = 0.05 bits, and *self-consistent* when its repeat-mean mismatch is <= MISMATCH_TOL = 0.05 bits
with beta* inside the search range in every fitted repeat.  E *supports* the claim when every hidden layer is both,
*partly* when every hidden layer is near (not all self-consistent) or some layers are both, else not.  Verdict
"holds" when both estimators support it; "holds only under: E1 (...); E2 (...)" naming each estimator that
supports it fully or partly (and how); "does not hold here" when neither does.

References: Tishby, Pereira & Bialek 1999; Shwartz-Ziv & Tishby 2017 (claim iii, Fig. 6); Saxe et al. 2018 (noisy
layers).
"""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from .. import store, tasks
from ..compare import against_bound, final_summary
from ..estimators.registry import plane
from ..ib import ib_curve
from ..nets import train
from ..plots.compare import FIT_OF_ESTIMATOR, plot_distance_over_epochs, plot_estimators_on_curve, plot_training_sizes
from .report import Section, check_size
from .runs import PAPER_HIDDEN, save_run

__all__ = ["run", "GAP_TOL", "MISMATCH_TOL", "N_BETAS", "SC_REPEATS", "TRAIN_FRACTIONS", "FRACTION_RUNS",
           "ESTIMATORS", "estimator_support", "verdict_of"]

GAP_TOL = 0.05
MISMATCH_TOL = 0.05
N_BETAS = {"tiny": 12, "quick": 40, "full": 160}
SC_REPEATS = {"tiny": 2, "quick": 4, "full": 10}
N_DRAWS = {"tiny": 4, "quick": 8, "full": 16}
BOUND_RUNS = {
    "tiny": {"repeats": 2, "epochs": 30, "snapshots": 6},
    "quick": {"repeats": 4, "epochs": 500, "snapshots": 16},
    "full": {"repeats": 20, "epochs": 10_000, "snapshots": 60},  # activations kept: 60 x 6 x 20 x 4096 x 10 floats
}
TRAIN_FRACTIONS = (0.05, 0.45, 0.85)
FRACTION_RUNS = {
    "tiny": {"repeats": 2, "epochs": 30, "snapshots": 4},
    "quick": {"repeats": 4, "epochs": 300, "snapshots": 8},
    "full": {"repeats": 20, "epochs": 10_000, "snapshots": 60},
}
#: estimator name in the numbers -> (suffix of its gaps, suffix of its beta* fits) in the comparison Dataset
ESTIMATORS = {"binning": (plane("binning").suffix, FIT_OF_ESTIMATOR[plane("binning").suffix]),
              "noisy": ("_noisy", FIT_OF_ESTIMATOR["_noisy"])}
_LABEL = {"binning": "binning", "noisy": "noisy layer"}
RULE = ("per estimator (binning; noisy layer T = h(X) + N(0, 0.1)): a hidden layer is near the curve when its "
        "repeat-mean relevance gap <= 0.05 bits and self-consistent when its repeat-mean mismatch with the IB "
        "encoder equation <= 0.05 bits at a beta* inside the search range (binning: states of equal decoder "
        "merged); an estimator supports the claim when every hidden layer is both, partly when all are near or "
        "some are both; holds when both estimators support it, holds only under the estimators that support it "
        "fully or partly, does not hold when neither does")


def estimator_support(near: np.ndarray, consistent: np.ndarray, layers: np.ndarray) -> tuple[str, str]:
    """("full" | "partial" | "none", how) for one estimator from per-layer booleans (see the module's rule).

    >>> estimator_support(np.array([True, True]), np.array([True, False]), np.array([1, 2]))
    ('partial', 'near the curve, not self-consistent in every layer')
    """
    both = near & consistent
    if both.all():
        return "full", "every layer"
    if near.all():
        return "partial", "near the curve, not self-consistent in every layer"
    if both.any():
        return "partial", f"layers {', '.join(map(str, layers[both]))} of {layers.size}"
    return "none", ""


def verdict_of(support: dict[str, tuple[str, str]]) -> str:
    """The section's verdict from each estimator's :func:`estimator_support`.

    >>> verdict_of({"binning": ("full", "every layer"), "noisy": ("none", "")})
    'holds only under: binning (every layer)'
    """
    if all(kind == "full" for kind, _ in support.values()):
        return "holds"
    parts = [f"{_LABEL.get(est, est)} ({how})" for est, (kind, how) in support.items() if kind != "none"]
    return f"holds only under: {'; '.join(parts)}" if parts else "does not hold here"


def _r(values, digits: int = 4) -> list:
    return (np.round(np.asarray(values, dtype=np.float64), digits) + 0.0).tolist()  # + 0.0: no -0.0


def _training_sizes(out: Path, size: str, seed: int, task, curve,
                    device: str = "cpu") -> tuple[dict, list[Path], Path]:
    """The soft task at each train fraction: comparisons, numbers and the figure ``bound_sizes.png``."""
    s = FRACTION_RUNS[size]
    comps, numbers, results = {}, {"train_fractions": list(TRAIN_FRACTIONS)}, []
    for frac in TRAIN_FRACTIONS:
        r = train(task, hidden=PAPER_HIDDEN, repeats=s["repeats"], epochs=s["epochs"], snapshots=s["snapshots"],
                  train_fraction=frac, seed=seed, progress=False, estimators=("binning",), device=device)
        pct = round(frac * 100)
        results.append(save_run(r, Path(out) / f"bound_sizes_{pct}.nc"))
        comp = against_bound(r, curve)
        comps[f"{pct} %"] = comp
        last = comp.isel(epoch=-1).sel(layer=r["layer"].values[-2])  # last hidden layer
        numbers[f"relevance_gap_last_hidden_{pct}pct_bits"] = round(float(last["relevance_gap"].mean()), 4)
        numbers[f"relevance_gap_last_hidden_{pct}pct_std_bits"] = round(float(last["relevance_gap"].std()), 4)
        numbers[f"final_I_TY_last_hidden_{pct}pct_bits"] = round(float(last["I_TY"].mean()), 4)
    fig = plot_training_sizes(comps, curve)
    fig.suptitle(f"soft task, tanh, binning: {s['repeats']} repeats x {s['epochs']} epochs per training size",
                 fontsize=10)
    fig.tight_layout()
    png = Path(out) / "bound_sizes.png"
    fig.savefig(png, dpi=90, bbox_inches="tight")
    plt.close(fig)
    return numbers, results, png


def run(out: Path, size: str, seed: int, *, device: str = "cpu") -> Section:
    """Run this claim's experiment at ``size`` ("tiny" | "quick" | "full") into ``out`` (.nc, .png) and return
    its :class:`~ibtheory.reproduce.report.Section`, with the verdict of the rule in the module docstring.
    ``device``: torch device of the training ("cpu", "cuda", "cuda:N")."""
    s = BOUND_RUNS[check_size(size)]
    task = tasks.tishby(tasks.TISHBY_SOFT_GAMMA)
    curve = ib_curve(task["p_xy"].values, betas=np.geomspace(0.5, 2000.0, N_BETAS[size]), certify=True)
    curve["p_xy"] = (("x", "y"), task["p_xy"].values)  # so that against_bound compares the tables themselves
    curve = store.with_provenance(curve, {"gamma": tasks.TISHBY_SOFT_GAMMA, "n_betas": N_BETAS[size]}, seed)
    curve_nc = store.save(curve, Path(out) / "bound_curve.nc")
    r = train(task, hidden=PAPER_HIDDEN, repeats=s["repeats"], epochs=s["epochs"], snapshots=s["snapshots"],
              keep_activations=True, seed=seed, progress=False, estimators=("binning", "ensemble"), device=device)
    run_nc = save_run(r, Path(out) / "bound_run.nc")
    n_sc = min(SC_REPEATS[size], r.sizes["repeat"])
    # binning gaps for every repeat; the self-consistency fits (and the noisy layer) on the first n_sc repeats
    comp = against_bound(r.drop_vars("activations"), curve)
    sc = against_bound(r.isel(repeat=slice(0, n_sc)), curve, epochs="last", seed=seed, n_draws=N_DRAWS[size])
    comp = comp.merge(sc[[v for v in sc.data_vars if "sc_epoch" in sc[v].dims]], join="outer")
    comp_nc = store.save(comp, Path(out) / "bound_compare.nc")
    hid = r["layer"].values[:-1]
    sh = final_summary(comp).sel(layer=hid)
    numbers: dict = {"layers": hid.tolist(), "sc_repeats": n_sc, "repeats": r.sizes["repeat"]}
    support = {}
    for est, (gap, fit) in ESTIMATORS.items():
        g = sh[f"relevance_gap{gap}_mean"].values
        mis = sh[f"mismatch{fit}_mean"].values
        inside = ~sc[f"at_bound{fit}"].sel(layer=hid).isel(sc_epoch=-1).any("repeat").values
        support[est] = estimator_support(g <= GAP_TOL, (mis <= MISMATCH_TOL) & inside, hid)
        ixt = f"I_XT{gap}" if est == "binning" else f"I_XT_sc{gap}"  # the run's plane, or the rebuilt encoder's
        numbers.update({
            f"relevance_gap_{est}_bits": _r(g),
            f"relevance_gap_{est}_std_bits": _r(sh[f"relevance_gap{gap}_std"]),
            f"compression_gap_{est}_bits": _r(sh[f"compression_gap{gap}_mean"]),
            f"compression_gap_{est}_std_bits": _r(sh[f"compression_gap{gap}_std"]),
            f"beta_star_{est}_geomean": [float(f"{v:.4g}") for v in 10 ** sh[f"log10_beta_star{fit}_mean"].values],
            f"log10_beta_star_{est}_std": _r(sh[f"log10_beta_star{fit}_std"], 3),
            f"mismatch_{est}_bits": _r(mis),
            f"mismatch_{est}_std_bits": _r(sh[f"mismatch{fit}_std"]),
            f"beta_star_{est}_inside_range": inside.tolist(),
            f"final_I_XT_{est}_bits": _r(sh[f"{ixt}_mean"], 3),
            f"final_I_TY_{est}_bits": _r(sh[f"{ixt.replace('XT', 'TY')}_mean"], 3),
            f"support_{est}": support[est][0],
        })
    numbers["relevance_gap_ensemble_bits"] = _r(sh[f"relevance_gap{plane('ensemble').suffix}_mean"])
    numbers["I_XY_bits"] = float(curve.attrs["I_XY"])
    numbers["curve_max_certified_gap_bits"] = float(curve.attrs.get("max_gap", np.nan))
    fig = plot_estimators_on_curve(comp, curve, title=f"soft task (gamma {tasks.TISHBY_SOFT_GAMMA}), tanh, "
                                   f"{r.sizes['repeat']} repeats x {s['epochs']} epochs; beta*: geometric mean over "
                                   f"{n_sc} repeats")
    png = Path(out) / "bound.png"
    fig.savefig(png, dpi=100, bbox_inches="tight")
    plt.close(fig)
    fig = plot_distance_over_epochs(comp)
    png_gaps = Path(out) / "bound_gaps.png"
    fig.savefig(png_gaps, dpi=90, bbox_inches="tight")
    plt.close(fig)
    size_numbers, size_results, png_sizes = _training_sizes(out, size, seed, task, curve, device)
    numbers.update(size_numbers)
    f = FRACTION_RUNS[size]
    return Section("bound", "Layers on the IB curve", "Converged layers lie near the IB curve and satisfy the IB "
                   "self-consistent equations with a beta* per layer (soft task), for binning and for a noisy layer.",
                   numbers, [png, png_gaps, png_sizes], verdict_of(support), RULE,
                   notes=f"curve at {N_BETAS[size]} betas; {r.sizes['repeat']} repeats x {s['epochs']} epochs; "
                   f"gaps and fits at the last snapshot; fits (and the noisy layer, {N_DRAWS[size]} noise draws per "
                   f"pattern) on {n_sc} of {r.sizes['repeat']} repeats; training sizes {f['repeats']} repeats x "
                   f"{f['epochs']} epochs each (binning).",
                   results=[curve_nc, run_nc, comp_nc, *size_results])
