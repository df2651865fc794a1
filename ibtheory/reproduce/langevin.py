"""Claim 5: in the diffusion phase SGD behaves like Langevin dynamics, which relaxes to the Gibbs distribution
(the minimiser of the free energy F = E[L] - H/beta) and, so the theory says, compresses the layers.

Three parts, all with :mod:`ibtheory.dynamics`:

1. *Relaxation*: :func:`~ibtheory.dynamics.langevin` (Leimkuhler-Matthews, dt = 0.01) of N particles started at
   x = -1 in the double well L(x) = (x^2 - 1)^2 at beta = 2; the histogram's total variation to the exact Gibbs
   bin probabilities and the free energy F[p_t] (energy units) against the Gibbs value
   (:func:`~ibtheory.dynamics.convergence`), and the spectral gap of the Fokker-Planck operator
   (:func:`~ibtheory.dynamics.spectrum`).
2. *Kramers*: simulated mean first-passage times from -1 to +1 (:func:`~ibtheory.dynamics.first_passage_times`,
   censored at 6 exact MFPTs) against the exact MFPT (:func:`~ibtheory.dynamics.mfpt_exact`) and Kramers' rate
   (:func:`~ibtheory.dynamics.kramers_rate`) for beta dL in :data:`KRAMERS_BETAS`.
3. *SGD vs Langevin on the paper's network*: :func:`ibtheory.dynamics.network.compare_sgd_langevin` (plain SGD
   through the drift phase, then SGD and Langevin at SGD's temperature from the same weights); loss and binned
   I(X;T) of every layer, and (reported, not part of the rule) each layer's final weight spread and the
   Wasserstein-1 distance between SGD's and Langevin's pooled weight values.

Rule.  Part 1 passes when the final TV <= 0.02 + sqrt(n_bins / N) (sampling fluctuation) and F_final - F_Gibbs
<= 0.01 + 5 sqrt(n_bins / N) energy units; part 2 when every simulated MFPT is within 3 standard errors + 5 % of
the exact one.  SGD and Langevin *agree* when their repeat-mean losses, averaged over the later half of the
recorded times (SGD's loss jumps from step to step), differ by <= 25 % and the hidden layers' mean change of
I(X;T) after the switch has the same sign for both (or both are within 0.05 bits of 0); a dynamics
*compresses* when that mean change is < -0.05 bits.  Verdict "holds" when parts 1-2 pass, SGD and Langevin
agree and both compress; "holds only under: Langevin relaxes to Gibbs and tracks SGD, but does not compress" when
all but compression hold; "does not hold here" otherwise (the verdict names the failed parts).

References: Shwartz-Ziv & Tishby 2017, sec. 2.4; Kramers 1940; Mandt, Hoffman & Blei 2017.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from .. import store, tasks
from ..dynamics import (
    DoubleWell,
    convergence,
    first_passage_times,
    gibbs,
    kramers_rate,
    langevin,
    mfpt_estimate,
    mfpt_exact,
    spectrum,
)
from ..dynamics.network import compare_sgd_langevin
from ..plots.langevin import density_over_time, free_energy_decay, kramers_check, sgd_vs_langevin
from .report import Section, check_size

__all__ = ["run", "BETA", "KRAMERS_BETAS", "LANGEVIN_SIZES"]

BETA = 2.0
KRAMERS_BETAS = (2.0, 3.0)
N_BINS = 60
LANGEVIN_SIZES = {
    "tiny": {"particles": 2_000, "steps": 1_000, "fpt_particles": 100, "warmup": 60, "sgd_steps": 120,
             "repeats": 2, "records": 6},
    "quick": {"particles": 30_000, "steps": 3_000, "fpt_particles": 1_000, "warmup": 400, "sgd_steps": 800,
              "repeats": 2, "records": 10},
    "full": {"particles": 1_000_000, "steps": 5_000, "fpt_particles": 10_000, "warmup": 2_000, "sgd_steps": 20_000,
             "repeats": 8, "records": 30},
}
RULE = ("relaxation: final TV <= 0.02 + sqrt(bins/N) and F - F_Gibbs <= 0.01 + 5 sqrt(bins/N); Kramers: simulated "
        "MFPT within 3 s.e. + 5 % of exact; SGD and Langevin agree when their late-half mean losses differ <= 25 % "
        "and the mean change of hidden-layer I(X;T) has the same sign; compression: that change < -0.05 bits; "
        "holds when all pass, holds only under ... when all but compression do, does not hold otherwise")


def _relaxation(out: Path, s: dict, seed: int) -> tuple[dict, list[Path], bool]:
    pot = DoubleWell(1.0)
    edges = np.linspace(-2.5, 2.5, N_BINS + 1)
    ds = langevin(pot, np.full(s["particles"], -1.0), BETA, 0.01, s["steps"], scheme="leimkuhler-matthews",
                  record=("histogram", "moments"), bins=edges, every=max(1, s["steps"] // 60), seed=seed,
                  progress=False)
    ds = convergence(ds, pot, BETA)
    grid = np.linspace(-4.0, 4.0, 2401)
    g = gibbs(pot, BETA, grid)
    gap = spectrum(pot, BETA, grid, k=3).gap
    ds.attrs.update(spectral_gap=gap, gibbs_free_energy=float(g["free_energy"]))
    nc = store.save(store.with_provenance(ds, {"part": "relaxation", **s}, seed), out / "langevin_relaxation.nc")
    noise = np.sqrt(N_BINS / s["particles"])
    tv, df = float(ds["tv"][-1]), float(ds["free_energy"][-1]) - ds.attrs["gibbs_free_energy_binned"]
    ok = tv <= 0.02 + noise and df <= 0.01 + 5 * noise
    fig = density_over_time(ds, g["density"], title=f"double well, beta = {BETA:g}, {s['particles']} particles")
    p1 = out / "langevin_density.png"
    fig.savefig(p1, dpi=90)
    plt.close(fig)
    fig = free_energy_decay(ds, title=f"free energy, double well, beta = {BETA:g}")
    p2 = out / "langevin_free_energy.png"
    fig.savefig(p2, dpi=90)
    plt.close(fig)
    numbers = {"final_tv_to_gibbs": tv, "final_kl_to_gibbs_bits": float(ds["kl"][-1]),
               "free_energy_start": float(ds["free_energy"][0]), "free_energy_end_minus_gibbs": df,
               "spectral_gap_per_time": gap, "relaxation_passes": ok}
    return numbers, [p1, p2, nc], ok


def _kramers(out: Path, s: dict, seed: int) -> tuple[dict, list[Path], bool]:
    pot, dt = DoubleWell(1.0), 0.005
    sim, err, exact, kr = [], [], [], []
    for b in KRAMERS_BETAS:  # loop over two temperatures; each simulation is vectorised over particles
        ex = mfpt_exact(pot, b, -1.0, 1.0)
        n_steps = int(6 * ex / dt)
        est = mfpt_estimate(first_passage_times(pot, b, -1.0, 1.0, dt, s["fpt_particles"], n_steps, seed=seed),
                            t_max=n_steps * dt)
        sim.append(float(est["mfpt"]))
        err.append(float(est["stderr"]))
        exact.append(ex)
        kr.append(1.0 / kramers_rate(pot, b, -1.0, 0.0))
    sim, err, exact, kr = map(np.array, (sim, err, exact, kr))
    ok = bool(np.all(np.abs(sim - exact) <= 3 * err + 0.05 * exact))
    fig = kramers_check(np.array(KRAMERS_BETAS), sim, err, exact, kr)
    png = out / "langevin_kramers.png"
    fig.savefig(png, dpi=90)
    plt.close(fig)
    numbers = {"kramers_beta_dL": list(KRAMERS_BETAS), "mfpt_simulated": sim.round(3).tolist(),
               "mfpt_stderr": err.round(3).tolist(), "mfpt_exact": exact.round(3).tolist(),
               "mfpt_kramers": kr.round(3).tolist(), "kramers_passes": ok}
    return numbers, [png], ok


def _network(out: Path, s: dict, seed: int) -> tuple[dict, list[Path], bool, bool]:
    cmp = compare_sgd_langevin(tasks.tishby(), warmup_steps=s["warmup"], n_steps=s["sgd_steps"],
                               repeats=s["repeats"], n_records=s["records"], seed=seed)
    nc = store.save(cmp, out / "langevin_sgd.nc")
    hid = cmp["layer"].values[:-1]
    m = cmp.mean("repeat")
    d_sgd = float((m["I_XT_sgd"].isel(time=-1) - m["I_XT_sgd"].isel(time=0)).sel(layer=hid).mean())
    d_lan = float((m["I_XT_langevin"].isel(time=-1) - m["I_XT_langevin"].isel(time=0)).sel(layer=hid).mean())
    late = slice(m.sizes["time"] // 2, None)  # SGD's loss fluctuates from step to step: average the late half
    l_sgd, l_lan = float(m["loss_sgd"][late].mean()), float(m["loss_langevin"][late].mean())
    same_sign = (np.sign(d_sgd) == np.sign(d_lan)) or (abs(d_sgd) <= 0.05 and abs(d_lan) <= 0.05)
    agree = abs(l_sgd - l_lan) <= 0.25 * max(abs(l_sgd), abs(l_lan)) and bool(same_sign)
    compress = d_sgd < -0.05 and d_lan < -0.05
    fig = sgd_vs_langevin(cmp)
    png = out / "langevin_sgd.png"
    fig.savefig(png, dpi=90)
    plt.close(fig)
    end = cmp.isel(time=-1)
    numbers = {"sgd_temperature_beta": float(cmp.attrs["beta"]), "late_loss_sgd_nats": l_sgd,
               "late_loss_langevin_nats": l_lan, "mean_delta_I_XT_hidden_sgd_bits": d_sgd,
               "mean_delta_I_XT_hidden_langevin_bits": d_lan, "sgd_langevin_agree": agree,
               "both_compress": compress,
               # weight distributions at the end, per layer (weight matrices pooled over repeats; weight units)
               "final_weight_std_sgd": end["weight_std_sgd"].values.round(4).tolist(),
               "final_weight_std_langevin": end["weight_std_langevin"].values.round(4).tolist(),
               "final_weight_w1_sgd_langevin": end["weight_w1_sgd_langevin"].values.round(4).tolist()}
    return numbers, [png, nc], agree, compress


def run(out: Path, size: str, seed: int, *, device: str = "cpu") -> Section:
    """Run this claim's experiment at ``size`` ("tiny" | "quick" | "full") into ``out`` (.nc, .png) and return
    its :class:`~ibtheory.reproduce.report.Section`, with the verdict of the rule in the module docstring.
    ``device`` is accepted like every section's, but unused: :mod:`ibtheory.dynamics` simulates on the CPU."""
    s = LANGEVIN_SIZES[check_size(size)]
    out = Path(out)
    n1, f1, ok1 = _relaxation(out, s, seed)
    n2, f2, ok2 = _kramers(out, s, seed)
    n3, f3, agree, compress = _network(out, s, seed)
    if ok1 and ok2 and agree and compress:
        verdict = "holds"
    elif ok1 and ok2 and agree:
        verdict = "holds only under: Langevin relaxes to Gibbs and tracks SGD, but does not compress"
    else:
        failed = [name for name, ok in (("relaxation", ok1), ("Kramers", ok2), ("SGD = Langevin", agree)) if not ok]
        verdict = f"does not hold here (failed: {', '.join(failed)})"
    figs = [p for p in f1 + f2 + f3 if p.suffix == ".png"]
    results = [p for p in f1 + f2 + f3 if p.suffix == ".nc"]
    return Section("langevin", "Langevin dynamics", "SGD in the diffusion phase behaves like Langevin dynamics, which "
                   "relaxes to Gibbs (free energy minimum) and compresses the layers.", {**n1, **n2, **n3}, figs,
                   verdict, RULE, notes=f"{s['particles']} particles; network: {s['warmup']} SGD warm-up steps, then "
                   f"{s['sgd_steps']} steps of each dynamics, {s['repeats']} repeats.", results=results)
