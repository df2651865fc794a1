"""Every layer of a training run against the IB bound of the same task.

For a layer at (I(X;T), I(T;Y)) and the achievable curve F of ``ibtheory.ib.ib_curve`` (same p(x,y)):

    relevance gap    F(I(X;T)) - I(T;Y)            >= 0 for any encoder of X (bits)
    compression gap  I(X;T) - F^-1(I(T;Y))         >= 0 (bits; F^-1(I) = smallest R with F(R) >= I)
    upper gap        F_upper(I(X;T)) - I(T;Y)      >= relevance gap, against the certified upper edge

A negative gap means the *estimate* lies above what any encoder can achieve (possible for bounds such as the KDE
upper bound, impossible for binning with the exact p(y|x)).  Where the run kept its activations, the encoders of the
chosen epochs are rebuilt (binned per repeat, pooled over repeats, and a noisy layer) and checked against the IB
equations with a fitted beta* (:mod:`ibtheory.compare.consistency`); the curve's own point at beta* is reported
beside them.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from .. import store
from .._validate import integer, real, show
from .._validate import seed as validate_seed
from ..estimators import RUN_SCHEMA
from ..estimators.registry import plane, planes, planes_in
from ..ib import curve_inverse, curve_upper, curve_value
from ..info import mutual_information
from .consistency import self_consistency
from .encoders import (
    binned_encoder,
    ensemble_encoder,
    layer_encoder,
    merge_equal_decoders,
    noisy_encoder,
    task_tables,
)

__all__ = ["bound_gaps", "curve_at_beta", "against_bound", "final_summary", "beta_star_stats", "ESTIMATOR_SUFFIXES"]

#: Suffixes of the built-in estimators' planes (I_XT<suffix>, I_TY<suffix>); :func:`against_bound` compares every
#: plane of the registry (:func:`ibtheory.estimators.registry.planes`), these and any registered later.
ESTIMATOR_SUFFIXES = tuple(p.suffix for p in planes())
_BITS = {"units": "bits"}


def bound_gaps(curve: xr.Dataset, I_XT, I_TY) -> dict[str, np.ndarray]:
    """Relevance, compression and (where certified) upper gaps in bits of points (I_XT, I_TY) of any shape."""
    ixt = np.asarray(I_XT, dtype=np.float64)
    ity = np.asarray(I_TY, dtype=np.float64)
    if ixt.shape != ity.shape:
        raise ValueError(f"I_XT and I_TY must have the same shape, got {ixt.shape} and {ity.shape}")
    if not (np.all(np.isfinite(ixt)) and np.all(np.isfinite(ity))):
        raise ValueError("I_XT and I_TY must be finite")
    ixt, ity = np.maximum(ixt, 0.0), np.maximum(ity, 0.0)
    top = float(curve["hull_I_TY"].values.max())
    out = {
        "relevance_gap": curve_value(curve, ixt.ravel()).reshape(ixt.shape) - ity,
        "compression_gap": ixt - curve_inverse(curve, np.minimum(ity, top).ravel()).reshape(ixt.shape),
        "above_curve": ity > top + 1e-9,
    }
    if "gap" in curve:
        out["upper_gap"] = curve_upper(curve, ixt.ravel()).reshape(ixt.shape) - ity
    return out


def curve_at_beta(curve: xr.Dataset, beta) -> tuple[np.ndarray, np.ndarray]:
    """The curve's (I(X;T), I(T;Y)) at ``beta``, interpolated linearly in log beta, clamped to the computed range."""
    b = np.log(np.asarray(curve["beta"].values))
    lb = np.log(np.asarray(beta, dtype=np.float64))
    return np.interp(lb, b, curve["I_XT"].values), np.interp(lb, b, curve["I_TY"].values)


def _check_same_task(run: xr.Dataset, curve: xr.Dataset, tol: float = 1e-9) -> None:
    """``run`` and ``curve`` must describe one p(x,y).  Checks, in order: n_x; I(X;Y); the tables themselves
    (allclose) when both carry ``p_xy``; else, when the curve carries its solutions, that they are Markov chains of
    the run's p(x,y): p(t) = sum_x p(x) p(t|x) and p(y|t) = sum_x p(x,y) p(t|x) / p(t) (1e-6).  The last two catch
    tasks that share n_x and I(X;Y), e.g. p(x,y) with its rows permuted."""
    for name in ("hull_I_XT", "hull_I_TY", "I_XT", "I_TY"):
        if name not in curve:
            raise ValueError(f"curve lacks {name!r}: it must be a Dataset from ibtheory.ib.ib_curve")
    if "x" in curve.dims and curve.sizes["x"] != run.sizes["x"]:
        raise ValueError(f"run has n_x = {run.sizes['x']} but curve has n_x = {curve.sizes['x']}: different tasks")
    p = np.asarray(run["p_xy"].values, dtype=np.float64)
    i_run = mutual_information(p)
    i_curve = float(curve.attrs.get("I_XY", np.nan))
    if not abs(i_run - i_curve) <= tol:
        raise ValueError(f"run's task has I(X;Y) = {i_run:.9f} bits but curve's has {i_curve:.9f}: different tasks")
    if "p_xy" in curve:
        q = np.asarray(curve["p_xy"].values, dtype=np.float64)
        if q.shape != p.shape or not np.allclose(p, q, rtol=0.0, atol=tol):
            diff = float(np.max(np.abs(p - q))) if q.shape == p.shape else np.inf
            raise ValueError(f"run['p_xy'] and curve['p_xy'] differ (shapes {p.shape}, {q.shape}; max |difference| "
                             f"{diff:.3g} > {tol:g}): different tasks")
        return
    if not all(v in curve for v in ("encoder", "decoder", "p_t")):
        return
    enc = np.nan_to_num(np.asarray(curve["encoder"].transpose("beta", "x", "t").values, dtype=np.float64))
    p_t = np.asarray(curve["p_t"].transpose("beta", "t").values, dtype=np.float64)
    dec = np.asarray(curve["decoder"].transpose("beta", "t", "y").values, dtype=np.float64)
    if enc.shape[1] != p.shape[0] or dec.shape[-1] != p.shape[1]:
        raise ValueError(f"curve's encoder/decoder shapes {enc.shape}, {dec.shape} do not fit run['p_xy'] "
                         f"{p.shape}: different tasks")
    p_t_run = np.einsum("x,bxt->bt", p.sum(axis=1), enc)
    occupied = p_t > 1e-9
    with np.errstate(divide="ignore", invalid="ignore"):
        dec_run = np.einsum("xy,bxt->bty", p, enc) / p_t_run[..., None]
    err = max(float(np.max(np.abs(p_t_run - np.nan_to_num(p_t)), initial=0.0)),
              float(np.max(np.abs(dec_run - dec)[occupied], initial=0.0)))
    if not err <= 1e-6:
        raise ValueError(f"curve's IB solutions are not Markov chains of run['p_xy'] (the decoder p(y|t) = "
                         f"sum_x p(x,y) p(t|x) / p(t) is off by {err:.3g}): different tasks with equal n_x and I(X;Y)")


def _select_epochs(run: xr.Dataset, epochs) -> np.ndarray:
    """The snapshot epochs named by ``epochs``: "last", "all", or one or more of the run's snapshot epochs."""
    all_epochs = run["epoch"].values
    if isinstance(epochs, str):
        if epochs == "last":
            return all_epochs[-1:]
        if epochs == "all":
            return all_epochs
        raise ValueError(f"epochs must be 'last', 'all' or a list of snapshot epochs, got {show(epochs)}")
    items = list(epochs) if isinstance(epochs, (list, tuple, np.ndarray)) else [epochs]
    if not items:
        raise ValueError("epochs must name at least one snapshot epoch, got an empty list")
    chosen = np.array([integer(e, "epochs", low=0) for e in items], dtype=np.int64)
    missing = np.setdiff1d(chosen, all_epochs)
    if missing.size:
        shown = ", ".join(map(str, all_epochs[:8].tolist())) + (", ..." if all_epochs.size > 8 else "")
        raise ValueError(f"epochs {missing.tolist()} are not snapshot epochs of the run; its {all_epochs.size} "
                         f"snapshot epochs are {shown} (last {int(all_epochs[-1])}); or pass 'last' or 'all'")
    return chosen


def _consistency_records(run, curve, tab, sc_epochs, n_bins, limits, sigma, n_draws, seed, beta_range):
    """Self-consistency of binned, merged, noisy and ensemble encoders at the chosen epochs (loops over the few
    layers and repeats: each fit is a scalar root search on its own encoder).  The binned and pooled encoders' fits
    carry the suffixes of the binning and ensemble estimators' planes."""
    layers, repeats = run["layer"].values, run["repeat"].values
    shape = (sc_epochs.size, layers.size, repeats.size)
    binned, pooled = plane("binning").suffix, plane("ensemble").suffix
    kinds = (binned, "_merged", "_noisy")
    rec = {f"{v}{k}": np.zeros(shape) for k in kinds for v in ("beta_star", "mismatch", "I_XT_sc", "I_TY_sc")}
    rec.update({f"at_bound{k}": np.zeros(shape, dtype=bool) for k in kinds})
    ens = {v: np.zeros(shape[:2]) for v in (f"beta_star{pooled}", f"mismatch{pooled}")}
    rng = np.random.default_rng(seed)
    widths = run["width"].values if "width" in run else np.full(layers.size, run.sizes.get("unit", 0))

    def put(key: str, idx, layer) -> None:
        sc = self_consistency(layer, *beta_range)
        rec[f"beta_star{key}"][idx], rec[f"mismatch{key}"][idx] = sc.beta_star, sc.mismatch
        rec[f"at_bound{key}"][idx] = sc.at_bound
        rec[f"I_XT_sc{key}"][idx], rec[f"I_TY_sc{key}"][idx] = layer.I_XT, layer.I_TY

    for i, ep in enumerate(sc_epochs):
        for j, lay in enumerate(layers):
            acts = run["activations"].sel(epoch=ep, layer=lay).values[..., : int(widths[j])].astype(np.float64)
            for k in range(repeats.size):
                enc = layer_encoder(tab, binned_encoder(acts[k], n_bins=n_bins, limits=limits))
                put(binned, (i, j, k), enc)
                put("_merged", (i, j, k), layer_encoder(tab, merge_equal_decoders(enc.encoder, enc.decoder)))
                noisy = noisy_encoder(acts[k], sigma=sigma, n_draws=n_draws, seed=rng, n_bins=n_bins,
                                      limits=limits)
                put("_noisy", (i, j, k), layer_encoder(tab, noisy))
            sc = self_consistency(layer_encoder(tab, ensemble_encoder(acts, n_bins=n_bins, limits=limits)),
                                  *beta_range)
            ens[f"beta_star{pooled}"][i, j], ens[f"mismatch{pooled}"][i, j] = sc.beta_star, sc.mismatch
    dims = ("sc_epoch", "layer", "repeat")
    ds = xr.Dataset(coords={"sc_epoch": sc_epochs})
    for name, val in rec.items():
        attrs = {} if name.startswith(("beta_star", "at_bound")) else dict(_BITS)
        ds[name] = (dims, val, attrs)
    for name, val in ens.items():
        ds[name] = (dims[:2], val, {} if name.startswith("beta") else dict(_BITS))
    for key in kinds:
        cx, cy = curve_at_beta(curve, ds[f"beta_star{key}"].values)
        ds[f"curve_I_XT_at_beta{key}"] = (dims, cx, dict(_BITS, long_name="IB curve's I(X;T) at beta*"))
        ds[f"curve_I_TY_at_beta{key}"] = (dims, cy, dict(_BITS, long_name="IB curve's I(T;Y) at beta*"))
    for key in ("_merged", "_noisy"):  # the binned encoder's gaps are the run's own (epoch, layer, repeat) ones
        for name, val in bound_gaps(curve, ds[f"I_XT_sc{key}"].values, ds[f"I_TY_sc{key}"].values).items():
            ds[f"{name}{key}"] = (dims, val, {} if name == "above_curve" else dict(_BITS))
    return ds


def against_bound(
    run: xr.Dataset,
    curve: xr.Dataset,
    *,
    epochs="last",
    n_bins: int | None = None,
    limits=None,
    noise_var: float | None = None,
    n_draws: int = 16,
    seed: int = 0,
    beta_range: tuple[float, float] = (1e-3, 1e5),
) -> xr.Dataset:
    """Distances to the IB bound for every (epoch, layer, repeat) and self-consistency at the chosen epochs.

    Parameters
    ----------
    run : Dataset of ``ibtheory.nets.train`` (``I_XT``/``I_TY`` per estimator, ``p_xy``; ``activations`` when it
        was trained with ``keep_activations=True``, needed for the self-consistency part).
    curve : Dataset of ``ibtheory.ib.ib_curve`` on the same p(x,y) (checked: same n_x and I(X;Y); the p_xy tables
        when both carry one, else the curve's solutions must be Markov chains of the run's p(x,y); ``ValueError``
        otherwise).
    epochs : "last" (default), "all" or a list of snapshot epochs for the self-consistency fits.
    n_bins, limits : binning of the rebuilt encoders; default: the run's own (its config), else 30 on [-1, 1].
    noise_var, n_draws : the noisy layer T = h(X) + N(0, noise_var I) (default: the run's ``noise_var``, as its KDE
        estimator used, else 0.1 as Saxe et al. 2018), sampled with n_draws draws per pattern.
    beta_range : search interval of beta*.

    Returns
    -------
    Dataset with, for each plane of the estimator registry that the run carries
    (:func:`ibtheory.estimators.registry.planes_in`; its variables ``I_XT{s}``, ``I_TY{s}``; binning: s = "",
    no suffix), ``relevance_gap{s}``, ``compression_gap{s}``, ``upper_gap{s}`` (certified curves) and
    ``above_curve{s}`` over the run's (epoch, layer[, repeat]); and, with activations, over (``sc_epoch``, layer,
    repeat): ``beta_star``, ``mismatch`` (bits), ``at_bound``, the encoder's own ``I_XT_sc``/``I_TY_sc`` and
    ``curve_I_XT_at_beta``/``curve_I_TY_at_beta``, each for the binned encoder (no suffix), the same with states
    of equal decoder merged (``_merged``) and the noisy layer (``_noisy``), with the gaps of the last two
    (``relevance_gap_noisy``, ``compression_gap_noisy``, ``upper_gap_noisy``, ``above_curve_noisy`` and the same
    ``_merged``; the binned encoder's gaps are the run's own); ``beta_star_ensemble``/``mismatch_ensemble`` over
    (sc_epoch, layer) for the encoder pooled over repeats.  The noisy layer's encoder is sampled (n_draws per
    pattern): it is a proper encoder, so its gaps are >= 0, but I(X;T) is convex in p(t|x), so the sampled table
    overstates the Gaussian channel's I(X;T) on average (Jensen), the more so the fewer the draws.
    """
    RUN_SCHEMA.require(run, ("p_xy",))
    if not isinstance(curve, xr.Dataset):
        raise ValueError(f"curve must be an xarray Dataset from ibtheory.ib.ib_curve, got {type(curve).__name__}")
    found = planes_in(run)
    if not found:
        raise ValueError("run carries no information-plane variables (I_XT, I_TY, or those of another estimator: "
                         f"{[p.variables[0] for p in planes()]})")
    RUN_SCHEMA.require(run, [v for p in found for v in p.variables], ("epoch", "layer"))
    if "activations" in run:
        RUN_SCHEMA.require(run, ("activations",), RUN_SCHEMA["activations"].dims)
    _check_same_task(run, curve)
    cfg = store.config_of(run) if "config" in run.attrs else {}
    noise_var = real(noise_var if noise_var is not None else cfg.get("noise_var", 0.1), "noise_var", 0.0,
                     low_open=True)
    other = {k: cfg[k] for k in ("bin_width", "scheme") if cfg.get(k) not in (None, "width")}
    if other and n_bins is None and "activations" in run:
        raise ValueError(f"the run was binned with {other}; the encoders rebuilt for the self-consistency fits "
                         "use equal-width bins: give n_bins (and limits) for them")
    n_bins = integer(n_bins if n_bins is not None else cfg.get("n_bins") or 30, "n_bins", low=1)
    n_draws = integer(n_draws, "n_draws", low=1)
    seed = validate_seed(seed)
    if not (isinstance(beta_range, (tuple, list)) and len(beta_range) == 2):
        raise ValueError(f"beta_range must be a pair (beta_min, beta_max), got {show(beta_range)}")
    beta_range = (real(beta_range[0], "beta_range[0]", 0.0, low_open=True),
                  real(beta_range[1], "beta_range[1]", 0.0, low_open=True))
    if not beta_range[0] < beta_range[1]:
        raise ValueError(f"beta_range must have beta_min < beta_max, got {show(beta_range)}")
    sc_epochs = _select_epochs(run, epochs)
    limits = limits if limits is not None else tuple(cfg.get("limits", (-1.0, 1.0)))
    out = xr.Dataset(coords={k: run[k] for k in ("epoch", "layer", "repeat") if k in run.coords})
    for p in found:
        ixt, ity = (run[v] for v in p.variables)
        for name, val in bound_gaps(curve, ixt.values, ity.values).items():
            attrs = {} if name == "above_curve" else dict(_BITS)
            out[f"{name}{p.suffix}"] = (ixt.dims, val, attrs)
        out[p.variables[0]], out[p.variables[1]] = ixt, ity
    if "activations" in run:
        tab = task_tables(run["p_xy"].values)
        sc = _consistency_records(run, curve, tab, sc_epochs, n_bins, limits, np.sqrt(noise_var),
                                  n_draws, seed, beta_range)
        out = out.merge(sc)
    config = {"epochs": epochs if isinstance(epochs, str) else sc_epochs.tolist(), "n_bins": n_bins,
              "limits": list(limits) if not isinstance(limits, str) else limits, "noise_var": noise_var,
              "n_draws": n_draws, "beta_range": list(beta_range), "run_config": cfg}
    out.attrs.update(I_XY=float(curve.attrs["I_XY"]), task=str(run.attrs.get("task", "")))
    return store.with_provenance(out, config=config, seed=seed)


def beta_star_stats(beta_star, dim: str = "repeat") -> tuple[xr.DataArray, xr.DataArray]:
    """Repeat mean and standard deviation of log10 beta* (NaN repeats skipped): beta* spans decades, so its centre
    is the geometric mean 10**mean and its spread std(log10 beta*) in decades.  The figures annotate the same
    centre that :func:`final_summary` reports."""
    lb = np.log10(beta_star)
    return lb.mean(dim), lb.std(dim)


def final_summary(comparison: xr.Dataset) -> xr.Dataset:
    """Per layer at the last epoch (or last ``sc_epoch``): repeat mean and standard deviation of every gap, mismatch
    and information (bits), ``<name>_mean`` and ``<name>_std`` over ``layer`` (NaN repeats, e.g. repeats without a
    fit, skipped).  For beta*: ``log10_<name>_mean`` and ``log10_<name>_std`` (:func:`beta_star_stats`) and
    ``<name>_mean`` = 10**log10_mean, the geometric mean; a single fit over layers (the ensemble's) has no std."""
    out = xr.Dataset(coords={"layer": comparison["layer"]})
    for name, var in comparison.data_vars.items():
        if name.startswith("above_curve") or name.startswith("at_bound"):
            continue
        if "epoch" in var.dims:
            last = var.isel(epoch=-1)
        elif "sc_epoch" in var.dims:
            last = var.isel(sc_epoch=-1)
        else:
            continue
        if name.startswith("beta_star"):
            if "repeat" in last.dims:
                out[f"log10_{name}_mean"], out[f"log10_{name}_std"] = beta_star_stats(last)
            else:
                out[f"log10_{name}_mean"] = np.log10(last)
            out[f"{name}_mean"] = (10 ** out[f"log10_{name}_mean"]).assign_attrs(
                long_name="geometric mean of beta* over repeats")
            continue
        if "repeat" in last.dims:
            out[f"{name}_mean"], out[f"{name}_std"] = last.mean("repeat"), last.std("repeat")
            out[f"{name}_std"].attrs = dict(var.attrs)
        else:
            out[f"{name}_mean"] = last
        out[f"{name}_mean"].attrs = dict(var.attrs)
    return out
