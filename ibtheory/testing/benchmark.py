"""The benchmark of Czyz et al. (2023) run on the package's estimators: tasks, continuous-pair forms, the runner.

Protocol of the paper: n = 5,000 draws of a task's law per seed, every coordinate of x and y standardised (sample
mean 0, sample standard deviation 1), an estimate I in bits, and per task the mean over seeds of log2(I / I*),
I* the true MI (0: exact; -1: half the information; +1: twice it).

The tasks (:func:`benchmark_tasks`, 39 of the paper's 40: its Swiss-roll embedding is left out) have two continuous
arguments, while the layer estimators of :mod:`ibtheory.estimators` take a discrete label Y.
:func:`pair_estimators` gives each package estimator's form for two continuous arguments, by the names of
:func:`ibtheory.testing.adapters.package_estimators`:

- KSG: itself.
- binning (any width, range or scheme): both arguments binned by the estimator's own binning
  (:func:`~ibtheory.estimators.binned_codes`), then the plug-in MI of the two codes (:func:`binned_pair_mi`) -- the
  binning estimator's I(T;Y) with the binned y as labels.
- KDE / noisy layer: the pairwise-distance estimate of :func:`~ibtheory.estimators.kde.pairwise_mixture_information`
  for x, y and (x, y), which is the resubstitution KDE estimate of I(X;Y) (:func:`kde_pair_mi`).
- the ensemble (pools the encoders of R networks) and the plug-in (discrete data) have none: listed by
  :func:`pair_not_applicable`.

>>> import numpy as np
>>> round(benchmark_tasks()["Normal 1 × 1"].mi, 4)   # correlation 0.75: -1/2 log2(1 - 0.75^2)
0.5963
>>> v = np.array([[-0.5], [0.5], [-0.5], [0.5]])   # y = x, two equally likely bins: one bit
>>> binned_pair_mi(v, v, n_bins=2)
1.0

References
----------
1. P. Czyz, F. Grabowski, J. E. Vogt, N. Beerenwinkel, A. Marx, "Beyond normal: on the evaluation of mutual
   information estimators", NeurIPS 2023.
2. A. Kolchinsky and B. D. Tracey, "Estimating mixture entropy with pairwise distances", Entropy 19(7), 361, 2017.
"""

from __future__ import annotations

import functools
import hashlib
import time
from collections.abc import Callable, Iterable

import numpy as np
import xarray as xr

from .._validate import integer, real
from .._validate import seed as _seed
from ..estimators import binned_codes, binned_information, kde_information
from ..estimators.kde import pairwise_mixture_information
from ..estimators.plugin import plugin_mi
from ..info import LN2
from ._search import EstimatorError, estimate
from .adapters import package_estimators
from .benchmark_laws import AdditiveUniformLaw, MultinormalLaw, StudentLaw, TransformedLaw

__all__ = ["benchmark_tasks", "standardise", "binned_pair_mi", "kde_pair_mi", "pair_estimators",
           "pair_not_applicable", "run_benchmark", "failure_modes", "to_markdown"]



def benchmark_tasks() -> dict[str, object]:
    """The paper's tasks (without the Swiss roll) as laws of :mod:`ibtheory.testing.benchmark_laws`, by name."""
    normal = MultinormalLaw(1, 1, "dense", 0.75)
    two_pair = {d: MultinormalLaw(d, d, "2-pair", 0.8) for d in (2, 3, 5, 25)}
    student = {(d, df): StudentLaw(d, d, df) for d, df in ((1, 1), (2, 1), (2, 2), (3, 2), (3, 3), (5, 2), (5, 3))}
    tasks = {
        "Normal 1 × 1": normal,
        "Uniform margins 1 × 1": TransformedLaw(normal, "normal_cdf"),
        "Additive noise ε = 0.1": AdditiveUniformLaw(0.1),
        "Additive noise ε = 0.75": AdditiveUniformLaw(0.75),
        "Bimodal 1 × 1": TransformedLaw(normal, "bimodal"),
        "Wiggly 1 × 1": TransformedLaw(normal, "wiggly"),
        "Half-cube 1 × 1": TransformedLaw(normal, "half_cube"),
        "Student-t 1 × 1 (df = 1)": student[1, 1],
        "Asinh @ Student-t 1 × 1 (df = 1)": TransformedLaw(student[1, 1], "asinh"),
    }
    tasks |= {f"Normal {d} × {d} (dense)": MultinormalLaw(d, d, "dense", 0.5) for d in (2, 3, 5, 25, 50)}
    tasks |= {f"Normal {d} × {d} (2-pair)": law for d, law in two_pair.items()}
    tasks |= {f"Student-t {d} × {d} (df = {df})": law for (d, df), law in student.items() if d > 1}
    for d in (3, 5, 25):
        uniform = TransformedLaw(two_pair[d], "normal_cdf")
        tasks[f"Uniform margins @ {d} × {d} (2-pair)"] = uniform
        tasks[f"Half-cube @ {d} × {d} (2-pair)"] = TransformedLaw(two_pair[d], "half_cube")
        tasks[f"Spiral @ {d} × {d} (2-pair)"] = TransformedLaw(two_pair[d], "spiral")
        tasks[f"Spiral @ uniform margins {d} × {d} (2-pair)"] = TransformedLaw(uniform, "spiral")
    for d, df in ((2, 1), (3, 2), (5, 2)):
        tasks[f"Asinh @ Student-t {d} × {d} (df = {df})"] = TransformedLaw(student[d, df], "asinh")
    return tasks


def standardise(v: np.ndarray) -> np.ndarray:
    """Every column to sample mean 0 and sample standard deviation 1 (constant columns only centred)."""
    v = np.asarray(v, dtype=np.float64)
    sd = v.std(axis=0)
    return (v - v.mean(axis=0)) / np.where(sd > 0, sd, 1.0)


def binned_pair_mi(x: np.ndarray, y: np.ndarray, n_bins: int = 30, limits=(-1.0, 1.0),
                   scheme: str = "width") -> float:
    """Plug-in I(B(X); B(Y)) in bits, B the binning of :func:`~ibtheory.estimators.binned_codes` applied to x (n, d_x)
    and to y (n, d_y) separately (a state = the bins of all coordinates); the histogram estimator of I(X;Y)."""

    return plugin_mi(binned_codes(x, n_bins, limits, scheme), binned_codes(y, n_bins, limits, scheme))


_KDE_CACHE: dict[tuple, np.ndarray] = {}


def _mixture_terms(v: np.ndarray, scales: tuple[float, ...]) -> np.ndarray:
    """U_s(v) = -(1/n) sum_i ln[(1/n) sum_j exp(-s ||v_i - v_j||^2)] nats for each scale s, shape (S,); the last
    few results are kept (keyed by the bytes of v), so the KDE variants share one pass over the same sample."""
    key = (hashlib.blake2b(v.tobytes(), digest_size=16).hexdigest(), v.shape, scales)
    if key not in _KDE_CACHE:
        if len(_KDE_CACHE) >= 6:
            _KDE_CACHE.pop(next(iter(_KDE_CACHE)))
        import torch  # here, not at the top: listing the benchmark's estimators must not load torch

        w = torch.full((1, v.shape[0]), 1.0 / v.shape[0], dtype=torch.float64)
        out = pairwise_mixture_information(torch.from_numpy(np.ascontiguousarray(v))[None], w, scales)
        _KDE_CACHE[key] = out[:, 0, 0].numpy()
    return _KDE_CACHE[key]


#: Noise variances of the package's KDE adapters, computed together on a sample (one pass, three variants).
_KDE_VARS = (0.1, 0.01)


def kde_pair_mi(x: np.ndarray, y: np.ndarray, noise_var: float = 0.1, form: str = "KL") -> float:
    """I(X;Y) ~= [U(x) + U(y) - U(x, y)] / ln 2 bits: the pairwise-distance (Kolchinsky-Tracey) estimate of
    :func:`~ibtheory.estimators.kde_information`'s I(X;T) applied to x, y and the joint (x, y).

    U(v) = -(1/n) sum_i ln[(1/n) sum_j exp(-s ||v_i - v_j||^2)], s = 1/(2 sigma^2) ("KL") or 1/(8 sigma^2)
    ("Bhattacharyya"), sigma^2 = ``noise_var``.  Since ||z_i - z_j||^2 = ||x_i - x_j||^2 + ||y_i - y_j||^2 this is
    the resubstitution estimate (1/n) sum_i ln[p(x_i, y_i) / (p(x_i) p(y_i))] with the Gaussian kernel density
    estimates p of variance 1/(2 s) per coordinate (the kernels' normalising constants cancel).  Not clipped: it
    can be slightly negative.
    """
    noise_var = real(noise_var, "noise_var", 0.0, low_open=True)
    if form not in ("KL", "Bhattacharyya"):
        raise ValueError(f"form must be 'KL' or 'Bhattacharyya', got {form!r}")
    xs, ys = (np.asarray(v, dtype=np.float64) for v in (x, y))
    xs, ys = (v[:, None] if v.ndim == 1 else v for v in (xs, ys))
    if xs.ndim != 2 or ys.ndim != 2 or xs.shape[0] != ys.shape[0] or xs.shape[0] == 0:
        raise ValueError(f"x and y must have shapes (n, d_x) and (n, d_y) with the same n >= 1, got {np.shape(x)} "
                         f"and {np.shape(y)}")
    if not (np.all(np.isfinite(xs)) and np.all(np.isfinite(ys))):
        raise ValueError("x and y must be finite (no NaN or inf)")
    variances = tuple(sorted(set(_KDE_VARS) | {noise_var}))
    scales = tuple(s for v in variances for s in (1 / (2 * v), 1 / (8 * v)))
    pick = scales.index(1 / (2 * noise_var) if form == "KL" else 1 / (8 * noise_var))
    terms = [_mixture_terms(v, scales)[pick] for v in (xs, ys, np.hstack([xs, ys]))]
    return float((terms[0] + terms[1] - terms[2]) / LN2)


def _tagged(func: functools.partial, name: str) -> Callable:
    func.name = func.__name__ = name
    func.x_kind = func.y_kind = "continuous"
    func.invariances = ()
    return func


def pair_estimators() -> dict[str, Callable[[np.ndarray, np.ndarray], float]]:
    """Each package estimator's form for two continuous arguments, ``estimator(x, y) -> bits``, keyed by its name in
    :func:`~ibtheory.testing.adapters.package_estimators` (those with none: :func:`pair_not_applicable`)."""

    out: dict[str, Callable] = {}
    for name, est in package_estimators().items():
        if getattr(est, "x_kind", None) == getattr(est, "y_kind", None) == "continuous":
            out[name] = est
            continue
        wrapped, options = getattr(est, "wrapped", None), dict(getattr(est, "options", {}))
        if wrapped is binned_information:
            out[name] = _tagged(functools.partial(binned_pair_mi, **options), name)
        elif wrapped is kde_information:
            form = "Bhattacharyya" if est.quantity == "I_TY_lower" else "KL"
            out[name] = _tagged(functools.partial(kde_pair_mi, noise_var=options.get("noise_var", 0.1), form=form),
                                name)
    return out


def pair_not_applicable() -> dict[str, str]:
    """Why a package estimator has no form for two continuous arguments, by name."""

    have = pair_estimators()
    reasons = {}
    for name, est in package_estimators().items():
        if name in have:
            continue
        if getattr(est, "x_kind", None) == "discrete":
            reasons[name] = "takes discrete codes: every continuous sample is its own state (I = log2 n)"
        elif getattr(getattr(est, "wrapped", None), "__name__", "") == "ensemble_information":
            reasons[name] = ("pools the binned encoders of R networks against discrete labels; with R = 1 it is "
                             "binning with the same bins, tabulated")
        else:
            reasons[name] = "no form for two continuous arguments"
    return reasons


def run_benchmark(estimators: dict[str, Callable], tasks: dict[str, object] | None = None, n: int = 5000,
                  seeds: Iterable[int] = range(5), progress: Callable[[str], None] | None = None) -> xr.Dataset:
    """Estimates of every estimator on every task: n standardised draws per seed (the paper's protocol).

    Returns a Dataset with ``estimate`` (task, estimator, seed) in bits (NaN where the estimator raised or gave a
    non-finite value: ``error`` (task, estimator) says what), ``true_mi`` (task) in bits, ``seconds`` (task,
    estimator) of estimation summed over the seeds, and ``log2_ratio`` (task, estimator), the mean over seeds of
    log2(estimate / true_mi) (NaN if any estimate is <= 0 or NaN; then ``nonpositive`` counts the seeds <= 0).
    Deterministic: draw s of a task is ``law.sample(n, s)``.
    """
    n = integer(n, "n", 2)
    seeds = [_seed(s, "seeds") for s in seeds]
    tasks = benchmark_tasks() if tasks is None else tasks
    shape = (len(tasks), len(estimators), len(seeds))
    est, secs = np.full(shape, np.nan), np.zeros(shape[:2])
    errors = np.full(shape[:2], "", dtype=object)
    for ti, (tname, law) in enumerate(tasks.items()):
        for si, s in enumerate(seeds):
            draw = law.sample(n, s)
            x, y = standardise(draw.x), standardise(draw.y)
            for ei, estimator in enumerate(estimators.values()):
                t0 = time.perf_counter()
                try:
                    est[ti, ei, si] = estimate(estimator, x, y)
                except EstimatorError as exc:
                    errors[ti, ei] = str(exc)
                secs[ti, ei] += time.perf_counter() - t0
        if progress is not None:
            progress(f"{tname}: {secs[ti].sum():.1f} s")
    true = np.array([law.mi for law in tasks.values()])
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.log2(est / true[:, None, None])
    ratio[~(est > 0)] = np.nan
    ds = xr.Dataset(
        {"estimate": (("task", "estimator", "seed"), est), "true_mi": ("task", true),
         "seconds": (("task", "estimator"), secs), "error": (("task", "estimator"), errors.astype(str)),
         "log2_ratio": (("task", "estimator"), ratio.mean(axis=2)),
         "nonpositive": (("task", "estimator"), (est <= 0).sum(axis=2))},
        coords={"task": list(tasks), "estimator": list(estimators), "seed": seeds})
    ds.attrs.update(n=n, units="bits", protocol="Czyz et al. 2023: standardised draws, mean over seeds of "
                    "log2(estimate / true MI)")
    return ds


def _kind(law) -> str:
    return law.kind if isinstance(law, TransformedLaw) else ""


def failure_modes(tasks: dict[str, object]) -> dict[str, list[str]]:
    """Task names by the difficulty they probe (Czyz et al. 2023): a reference (normals up to 5 x 5), long tails
    (Student-t; the same after asinh, which shortens them; half-cube, which lengthens them), high MI (I* >= 2 bits),
    high dimension (d_x >= 25), the spiral.  A task may be in several groups; empty groups are left out."""
    def base(law):
        return base(law.law) if isinstance(law, TransformedLaw) else law

    tests = {
        "normal, d <= 5 (reference)": lambda law: isinstance(law, MultinormalLaw) and law.dim_x <= 5,
        "long tails: Student-t": lambda law: isinstance(law, StudentLaw),
        "asinh of Student-t (tails shortened)": lambda law: _kind(law) == "asinh",
        "half-cube (tails lengthened)": lambda law: _kind(law) == "half_cube",
        "high MI (I* >= 2 bits)": lambda law: law.mi >= 2,
        "high dimension (25 x 25, 50 x 50)": lambda law: law.dim_x >= 25,
        "spiral": lambda law: _kind(law) == "spiral",
        "other invertible maps of a 1 x 1 normal": lambda law: _kind(law) in ("normal_cdf", "wiggly", "bimodal")
        and base(law).dim_x == 1,
    }
    groups = {g: [name for name, law in tasks.items() if test(law)] for g, test in tests.items()}
    return {g: names for g, names in groups.items() if names}


def _ratio_cell(ds: xr.Dataset, task: str, est: str) -> str:
    r, k = float(ds.log2_ratio.sel(task=task, estimator=est)), int(ds.nonpositive.sel(task=task, estimator=est))
    if k:
        return f"<= 0 ({k}/{ds.sizes['seed']})"
    if not np.isfinite(r):
        return "error"
    return f"{r:+.2f}"


def _table(head: list[str], rows: list[list[str]]) -> list[str]:
    return ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)] + ["| " + " | ".join(r) + " |" for r in rows]


def to_markdown(ds: xr.Dataset, groups: dict[str, list[str]] | None = None,
                highlight: tuple[str, ...] = ("KSG k=3", "KDE upper (KL), var 0.1")) -> str:
    """Markdown of a :func:`run_benchmark` Dataset: the failure modes (``groups`` of tasks, mean log2 ratio over
    each group's tasks; sentences for the ``highlight`` estimators), the task x estimator table of mean log2(I/I*),
    the mean estimates in bits, and the time per estimator."""
    ests, seeds = [str(e) for e in ds.estimator.values], ds.sizes["seed"]
    ratio = ds.log2_ratio.to_pandas()
    lines = []
    if groups:
        rows = []
        for g, names in groups.items():
            cells = []
            for e in ests:
                vals = ratio.loc[names, e]
                bad = int(ds.nonpositive.sel(task=names, estimator=e).sum())
                cell = f"{vals.mean():+.2f}" if vals.notna().any() else "-"
                cells.append(cell + (f" ({bad} <= 0)" if bad else ""))
            rows.append([g, str(len(names)), *cells])
        lines += ["### Failure modes", "",
                  "Mean over each group's tasks of the mean log2(I / I*) (a task whose estimate was <= 0 for some "
                  "seed is left out of its group's mean and counted in brackets).", "",
                  *_table(["tasks", "#", *ests], rows), ""]
        for e in (h for h in highlight if h in ests):
            parts = []
            for g, names in groups.items():
                vals = ratio.loc[names, e].dropna()
                if vals.empty:
                    continue
                worst = vals.idxmin() if abs(vals.min()) >= abs(vals.max()) else vals.idxmax()
                parts.append(f"{g}: {100 * 2 ** vals.mean():.0f} % (worst {worst}: {100 * 2 ** vals[worst]:.0f} %)")
            lines += [f"- **{e}** gives, as a geometric mean of I / I* over the group's tasks, " + "; ".join(parts)
                      + ".", ""]
    rows = [[t, f"{float(ds.true_mi.sel(task=t)):.3f}", *(_ratio_cell(ds, t, e) for e in ests)]
            for t in (str(v) for v in ds.task.values)]
    lines += ["### Mean log2(estimate / true MI) by task", "",
              f"Over {seeds} seeds; 0 is exact, -1 half the information, +1 twice it; \"<= 0 (k/{seeds})\": k "
              "seeds gave an estimate <= 0, where the ratio has no logarithm.", "",
              *_table(["task", "I* (bits)", *ests], rows), ""]
    mean = ds.estimate.mean("seed")
    rows = [[t, f"{float(ds.true_mi.sel(task=t)):.3f}", *(f"{float(mean.sel(task=t, estimator=e)):.3f}"
                                                          for e in ests)] for t in (str(v) for v in ds.task.values)]
    lines += ["### Mean estimate (bits) by task", "", *_table(["task", "I* (bits)", *ests], rows), ""]
    secs = ds.seconds.sum("task")
    lines += ["Estimation time over all tasks and seeds: " + ", ".join(
        f"{e} {float(secs.sel(estimator=e)):.0f} s" for e in ests) + " (the KDE variants share one pass over each "
        "sample, charged to the first).", ""]
    return "\n".join(lines)
