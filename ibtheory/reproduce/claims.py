"""The claim rules of the critics' matrix: one verdict per claim of the paper, computed from one run Dataset.

A *setting* (an activation, an estimator, a task, ...) is one run Dataset of :func:`ibtheory.nets.train` with
``I_XT`` and ``I_TY`` (epoch, layer[, repeat]) in bits and, optionally, ``grad_mean_norm`` / ``grad_std_norm``
(epoch, layer, repeat).  :func:`claim_table` applies every rule below to it and returns one row per claim of
:data:`CLAIMS`; a matrix of settings x claims is then a concatenation of tables along a new dimension.

The last layer is the softmax output; the hidden layers are all others (:func:`ibtheory.reproduce.runs.
hidden_layers`), numbered 1, 2, ... from the input (the *depth*).  Trajectories are averaged over repeats first
(unless a rule says otherwise) and smoothed with a moving average of ``w`` snapshots (:func:`ibtheory.phases.smooth`),
w = max(1, min(window, n_snapshots // 3)).  The *turn* of a layer is the epoch of the maximum of its smoothed I(X;T),
its *compression* C = smoothed peak - final value (bits), and it *compresses* when C > tol
(:func:`ibtheory.phases.compression_turn`; tol = :data:`~ibtheory.reproduce.plane.TOL` = 0.05 bits by default).
The *end* of its compression is the first snapshot after the turn where the smoothed I(X;T) <= peak - 0.9 C.

Rules (verdict codes :data:`NA` = -1 "n/a", :data:`NO` = 0, :data:`PARTLY` = 1, :data:`HOLDS` = 2):

- ``two_phases``: a hidden layer has both phases when it fits (smoothed peak - initial > tol) and compresses
  (:func:`ibtheory.reproduce.plane.two_phase_layers`).  score = fraction of hidden layers with both; holds when
  >= half, partly when some, no when none (:func:`ibtheory.reproduce.plane.phase_verdict`).
- ``gradients_snr_one`` / ``gradients_snr_slope``: a hidden layer is aligned when it compresses and
  |log10(turn / transition)| <= 0.5 (:data:`ibtheory.reproduce.gradients.MAX_LOG_LAG`), the transition from
  :func:`ibtheory.phases.detect_phases` with rule ``"snr_one"`` (smoothed SNR first below 1 after its maximum)
  resp. ``"snr_slope"`` (minimum of d log SNR / d log epoch).  score = fraction aligned; holds when >= half, partly
  when some, no when none; n/a without the gradient statistics.
- ``near_bound``: with F the task's IB curve (``bound``: I(X;T) bits -> I(T;Y) bits), the relevance gap
  g_l = F(I(X;T_l)) - I(T_l;Y) of the repeat means at the final snapshot; a layer is near when g_l <= tol.
  score = max_l g_l (bits); holds when all are near, partly when some, no when none; n/a without ``bound`` or I_TY.
- ``deeper_compress_faster``: per compressing hidden layer with its turn at 1 <= epoch < final epoch E, the rate
  r_l = C_l / log10(E / turn_l) (bits per decade of epochs).  score = Spearman rho(depth, r) (0 when all rates are
  equal); n/a with fewer than 2 such layers; holds when rho >= 0.5, partly when 0 < rho < 0.5, no otherwise.
- ``shorter_after_compressed``: per compressing hidden layer with its turn at epoch >= 1 and an end, the duration
  D_l = log10(end_l / turn_l) (decades).  The claim predicts D_{l+1} < D_l for every pair of consecutive hidden
  layers that both have a duration.  score = fraction of such pairs that agree; n/a with no pair; holds when all
  agree, partly when some, no when none.
- ``time_superlinear``: per (hidden layer, repeat), on that repeat's smoothed I(X;T): dI = C when C > tol and the
  compression has an end, dt = end - turn (epochs).  Least squares log10 dt = a + b log10 dI; score = b.  n/a with
  fewer than 3 points (or all dI equal); holds when b > 1 and the 5 % quantile of b over 200 bootstrap resamples of
  the points (seed 0) is > 1, partly when b > 1 only, no otherwise.

References
----------
1. R. Shwartz-Ziv and N. Tishby, "Opening the black box of deep neural networks via information", arXiv:1703.00810.
2. A. M. Saxe et al., "On the information bottleneck theory of deep learning", ICLR 2018.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import xarray as xr
from scipy.stats import spearmanr

from .. import phases
from .._validate import integer, real, show
from ..estimators import RUN_SCHEMA
from .gradients import MAX_LOG_LAG
from .plane import TOL, phase_verdict, two_phase_layers
from .runs import hidden_layers

__all__ = ["CLAIMS", "CLAIM_LABELS", "RULES", "NA", "NO", "PARTLY", "HOLDS", "claim_table", "verdict_word",
           "END_FRACTION", "BOOTSTRAP_RESAMPLES", "BOOTSTRAP_SEED"]

CLAIMS: tuple[str, ...] = ("two_phases", "gradients_snr_one", "gradients_snr_slope", "near_bound",
                           "deeper_compress_faster", "shorter_after_compressed", "time_superlinear")
CLAIM_LABELS: dict[str, str] = {
    "two_phases": "fit then compress",
    "gradients_snr_one": "gradients (SNR = 1)",
    "gradients_snr_slope": "gradients (SNR slope)",
    "near_bound": "near IB bound",
    "deeper_compress_faster": "deeper compress faster",
    "shorter_after_compressed": "shorter after compressed",
    "time_superlinear": "time superlinear",
}
RULES: dict[str, str] = {
    "two_phases": "a hidden layer has both phases when its smoothed I(X;T) rises by > 0.05 bits (tol) to its peak "
                  "and then falls by > 0.05 bits (tol); holds when >= half of the hidden layers do, partly when "
                  "some, no when none.",
    "gradients_snr_one": "a hidden layer is aligned when it compresses and its turn is within 0.5 decades of epochs "
                         "of the first epoch after the SNR maximum with smoothed SNR < 1; holds when >= half are "
                         "aligned, partly when some, no when none.",
    "gradients_snr_slope": "a hidden layer is aligned when it compresses and its turn is within 0.5 decades of "
                           "epochs of the minimum of d log SNR / d log epoch; holds when >= half are aligned, partly "
                           "when some, no when none.",
    "near_bound": "at the final snapshot the relevance gap F(I(X;T)) - I(T;Y) of each hidden layer (repeat means, "
                  "F the task's IB curve) is <= 0.05 bits (tol); holds when all are, partly when some, no when none.",
    "deeper_compress_faster": "Spearman rho of the compression rate (bits per decade from the turn to the final "
                              "epoch) with depth over the compressing hidden layers; holds when rho >= 0.5, partly "
                              "when 0 < rho < 0.5, no otherwise.",
    "shorter_after_compressed": "the compression of hidden layer l+1 lasts fewer decades (turn to 90 % of its "
                                "compression) than that of layer l, for every consecutive pair that both compress; "
                                "holds when all pairs agree, partly when some, no when none.",
    "time_superlinear": "the slope b of log10(compression time) on log10(compressed bits) over (hidden layer, "
                        "repeat) is > 1 and so is its bootstrap 5 % quantile (holds), b > 1 only (partly), else no.",
}
#: Verdict code: the claim does not apply (its inputs are missing, or too few layers compress).
NA: int = -1
#: Verdict code: the claim does not hold.
NO: int = 0
#: Verdict code: the claim holds partly (in some layers, or weakly).
PARTLY: int = 1
#: Verdict code: the claim holds by its rule.
HOLDS: int = 2
_WORDS = {NA: "n/a", NO: "does not hold", PARTLY: "partly", HOLDS: "holds"}
END_FRACTION = 0.9  # the compression ends when 90 % of it is done
BOOTSTRAP_RESAMPLES = 200
BOOTSTRAP_SEED = 0
_GRADS = ("grad_mean_norm", "grad_std_norm")

Row = tuple[int, float, str]


def verdict_word(code: int) -> str:
    """The word of a verdict code: -1 "n/a", 0 "does not hold", 1 "partly", 2 "holds"."""
    return _WORDS[integer(code, "code", NA, HOLDS)]


def claim_table(run: xr.Dataset, bound: Callable[[np.ndarray], np.ndarray] | None = None, *,
                window: int = 5, tol: float = TOL) -> xr.Dataset:
    """Verdict, score and a one-line detail of every claim of :data:`CLAIMS` on ``run`` (rules: module docstring).

    ``bound``: the task's IB curve F, vectorised, I(X;T) bits -> I(T;Y) bits (None: ``near_bound`` is n/a).
    ``window``: smoothing window in snapshots (at most a third of the snapshots are used); ``tol``: bits.
    Returns a Dataset over ``claim`` with ``verdict`` (int8 code), ``score`` (float64, NaN where n/a) and
    ``detail`` (str).
    """
    _check_run(run, bound)
    window = integer(window, "window", 1)
    tol = real(tol, "tol", 0.0)
    w = int(max(1, min(window, run.sizes["epoch"] // 3)))
    hid = hidden_layers(run)
    mean = _repeat_mean(run["I_XT"]).sel(layer=hid)
    turns = _turns(mean, w, tol)
    rows = {
        "two_phases": _two_phases(run, hid, w, tol),
        "gradients_snr_one": _gradients(run, hid, w, tol, "snr_one"),
        "gradients_snr_slope": _gradients(run, hid, w, tol, "snr_slope"),
        "near_bound": _near_bound(run, hid, bound, tol),
        "deeper_compress_faster": _deeper_faster(turns, float(run["epoch"].values[-1])),
        "shorter_after_compressed": _shorter_after(turns),
        "time_superlinear": _superlinear(run, hid, w, tol),
    }
    codes, scores, details = zip(*(rows[c] for c in CLAIMS), strict=True)
    return xr.Dataset(
        {
            "verdict": ("claim", np.array(codes, np.int8),
                        {"long_name": "verdict code", "flag_values": [NA, NO, PARTLY, HOLDS],
                         "flag_meanings": "n/a does_not_hold partly holds"}),
            "score": ("claim", np.array(scores, np.float64), {"long_name": "the rule's number (see RULES)"}),
            "detail": ("claim", np.array(details, dtype=str)),
        },
        coords={"claim": list(CLAIMS)},
        attrs={"window": window, "window_used": w, "tol": tol, "tol_units": "bits"},
    )


def _check_run(run: xr.Dataset, bound: object) -> None:
    RUN_SCHEMA.require(run, ("I_XT",), ("epoch", "layer"))
    if "I_TY" in run:
        RUN_SCHEMA.require(run, ("I_TY",), ("epoch", "layer"))
    if bound is not None and not callable(bound):
        raise ValueError(f"bound must be None or a callable mapping I(X;T) bits to I(T;Y) bits (the task's IB "
                         f"curve), got {show(bound)} ({type(bound).__name__})")
    if run.sizes["layer"] < 2:
        raise ValueError(f"run needs at least two layers (hidden layers and the softmax output), got "
                         f"{run.sizes['layer']}")
    epochs = run["epoch"].values
    if epochs.size < 2 or np.any(np.diff(epochs) <= 0):
        raise ValueError(f"run['epoch'] must hold at least two strictly increasing snapshot epochs, got "
                         f"{show(epochs.tolist())}")


def _repeat_mean(values: xr.DataArray) -> xr.DataArray:
    return (values.mean("repeat") if "repeat" in values.dims else values).transpose("epoch", "layer")


def _turns(traj: xr.DataArray, window: int, tol: float) -> xr.Dataset:
    """:func:`ibtheory.phases.compression_turn` of ``traj`` (epoch, layer) plus ``end_epoch``: the first snapshot
    after the turn where the smoothed trajectory <= peak - END_FRACTION * compression (NaN when none)."""
    turn = phases.compression_turn(xr.Dataset({"I_XT": traj}), "I_XT", window, tol)
    epochs = traj["epoch"].values
    sm = phases.smooth(traj, window).values
    at = np.argmax(epochs[:, None] == turn["turn_epoch"].values[None, :], axis=0)
    level = (turn["peak"] - END_FRACTION * turn["compression"]).values
    done = (np.arange(epochs.size)[:, None] > at[None, :]) & (sm <= level[None, :])
    turn["end_epoch"] = ("layer", np.where(done.any(0), epochs[done.argmax(0)], np.nan))
    return turn


def _layers(layers: np.ndarray) -> str:
    return ", ".join(map(str, layers)) if len(layers) else "none"


def _numbers(values: np.ndarray, fmt: str = ".3g") -> str:
    return "[" + ", ".join(format(float(v), fmt) for v in values) + "]"


def _share_code(flags: np.ndarray, layers: np.ndarray) -> int:
    """HOLDS / PARTLY / NO as :func:`ibtheory.reproduce.plane.phase_verdict` words it."""
    word = phase_verdict(np.asarray(flags, bool), np.asarray(layers))
    return HOLDS if word == "holds" else PARTLY if word.startswith("holds only") else NO


def _all_some(flags: np.ndarray) -> int:
    return HOLDS if flags.all() else PARTLY if flags.any() else NO


def _two_phases(run: xr.Dataset, hid: np.ndarray, window: int, tol: float) -> Row:
    both = two_phase_layers(run, "I_XT", tol, window).sel(layer=hid)["both"].values
    return (_share_code(both, hid), float(both.mean()),
            f"{both.sum()} of {both.size} hidden layers fit then compress by > {tol:g} bits "
            f"(layers {_layers(hid[both])})")


def _gradients(run: xr.Dataset, hid: np.ndarray, window: int, tol: float, rule: str) -> Row:
    if not all(name in run for name in _GRADS):
        return NA, np.nan, "no gradient statistics (grad_mean_norm, grad_std_norm) in the run"
    ph = phases.detect_phases(run, window=window, tol=tol, rule=rule).sel(layer=hid)
    with np.errstate(divide="ignore", invalid="ignore"):  # a turn at epoch 0 gives lag 0: -inf, not aligned
        log_lag = np.log10(ph["lag"].values)
    finite = np.isfinite(log_lag)
    aligned = finite & ph["compresses"].values
    aligned[finite] &= np.abs(log_lag[finite]) <= MAX_LOG_LAG
    return (_share_code(aligned, hid), float(aligned.mean()),
            f"{aligned.sum()} of {aligned.size} hidden layers compress within {MAX_LOG_LAG:g} decades of their "
            f"{rule} transition (layers {_layers(hid[aligned])}); transitions "
            f"{_numbers(ph['transition_epoch'].values)}, turns {_numbers(ph['turn_epoch'].values)}")


def _near_bound(run: xr.Dataset, hid: np.ndarray, bound: Callable | None, tol: float) -> Row:
    if bound is None:
        return NA, np.nan, "no IB curve given"
    if "I_TY" not in run:
        return NA, np.nan, "no I_TY in the run"
    x = _repeat_mean(run["I_XT"]).sel(layer=hid).values[-1]
    y = _repeat_mean(run["I_TY"]).sel(layer=hid).values[-1]
    if not (np.isfinite(x).all() and np.isfinite(y).all()):
        return NA, np.nan, "non-finite information at the final snapshot"
    f = np.asarray(bound(x), dtype=np.float64)
    if f.shape != x.shape or not np.isfinite(f).all():
        raise ValueError(f"bound must map an array of I(X;T) to finite I(T;Y) of the same shape {x.shape}, got "
                         f"{show(f.tolist())}")
    gap = f - y
    near = gap <= tol
    return (_all_some(near), float(gap.max()),
            f"{near.sum()} of {near.size} hidden layers within {tol:g} bits of the IB curve at epoch "
            f"{run['epoch'].values[-1]}; gaps {_numbers(gap)} bits")


def _deeper_faster(turns: xr.Dataset, final_epoch: float) -> Row:
    t, c = turns["turn_epoch"].values.astype(np.float64), turns["compression"].values
    ok = turns["compresses"].values & (t >= 1) & (t < final_epoch)
    if ok.sum() < 2:
        return NA, np.nan, f"{ok.sum()} hidden layer(s) compress with a turn before the last snapshot; needs 2"
    rate = c[ok] / np.log10(final_epoch / t[ok])
    depth = np.flatnonzero(ok) + 1
    rho = float(spearmanr(depth, rate).statistic) if np.ptp(rate) > 0 else 0.0
    code = HOLDS if rho >= 0.5 else PARTLY if rho > 0 else NO
    return (code, rho, f"Spearman rho = {rho:.2f} of the compression rate with depth; rates {_numbers(rate)} "
                       f"bits/decade at depths {_layers(depth)}")


def _durations(turns: xr.Dataset) -> np.ndarray:
    """log10(end / turn) per layer (decades), NaN where the layer does not compress, turns at 0 or never ends."""
    t, end = turns["turn_epoch"].values.astype(np.float64), turns["end_epoch"].values
    ok = turns["compresses"].values & (t >= 1) & np.isfinite(end)
    d = np.full(t.shape, np.nan)
    d[ok] = np.log10(end[ok] / t[ok])
    return d


def _shorter_after(turns: xr.Dataset) -> Row:
    d = _durations(turns)
    pairs = np.isfinite(d[:-1]) & np.isfinite(d[1:])
    if not pairs.any():
        return NA, np.nan, "no two consecutive hidden layers both compress to 90 %"
    agree = d[1:][pairs] < d[:-1][pairs]
    return (_all_some(agree), float(agree.mean()),
            f"{agree.sum()} of {agree.size} consecutive pairs compress for fewer decades in the deeper layer; "
            f"durations {_numbers(d, '.2f')} decades")


def _slopes(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Least-squares slopes of y on x along the last axis (NaN where x is constant)."""
    xc = x - x.mean(-1, keepdims=True)
    yc = y - y.mean(-1, keepdims=True)
    sxx = (xc * xc).sum(-1)
    return np.divide((xc * yc).sum(-1), sxx, out=np.full(sxx.shape, np.nan), where=sxx > 0)


def _superlinear(run: xr.Dataset, hid: np.ndarray, window: int, tol: float) -> Row:
    v = run["I_XT"].sel(layer=hid)
    v = (v if "repeat" in v.dims else v.expand_dims("repeat", axis=-1)).transpose("epoch", "layer", "repeat")
    flat = xr.DataArray(v.values.reshape(v.shape[0], -1), dims=("epoch", "layer"),
                        coords={"epoch": v["epoch"].values, "layer": np.arange(v.shape[1] * v.shape[2])})
    turns = _turns(flat, window, tol)
    end = turns["end_epoch"].values
    ok = turns["compresses"].values & np.isfinite(end)
    x = np.log10(turns["compression"].values[ok])
    y = np.log10(end[ok] - turns["turn_epoch"].values[ok])
    if ok.sum() < 3 or np.ptp(x) == 0:
        return NA, np.nan, f"{ok.sum()} (layer, repeat) compressions of distinct size; needs 3"
    b = float(_slopes(x, y))
    a = float(y.mean() - b * x.mean())
    picks = np.random.default_rng(BOOTSTRAP_SEED).integers(0, x.size, size=(BOOTSTRAP_RESAMPLES, x.size))
    boot = _slopes(x[picks], y[picks])
    boot = boot[np.isfinite(boot)]
    q05 = float(np.quantile(boot, 0.05)) if boot.size else np.nan
    code = HOLDS if b > 1 and q05 > 1 else PARTLY if b > 1 else NO
    return (code, b, f"log10 dt = {a:.2f} + {b:.2f} log10 dI over {x.size} (layer, repeat) compressions; "
                     f"bootstrap 5 % quantile of the slope {q05:.2f}")
