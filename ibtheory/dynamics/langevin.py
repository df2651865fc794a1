"""Overdamped Langevin dynamics, vectorised over particles and dimensions.

The SDE (Ito) is

    dx = -M grad L(x) dt + (1 / beta) div M(x) dt + sqrt(2 / beta) D(x)^{1/2} dW,

where L is the potential (energy units), beta the inverse temperature (1 / energy), D the diffusion matrix
(identity by default) and W a standard Wiener process.  With ``precondition=False`` (the default, the form of the
SGD analogy dw = -grad L dt + sqrt(2 D / beta) dW) M = I and the divergence term is absent: for D = I the stationary
density is the Gibbs density p(x) = exp(-beta L(x)) / Z; for an anisotropic D it is not (for a quadratic L its
covariance solves the Lyapunov equation H S + S H = 2 D / beta).  With ``precondition=True`` M = D, and the Gibbs
density is stationary for any positive-definite D(x).

Schemes (step dt, xi_n i.i.d. standard normal, sigma = sqrt(2 dt / beta) D^{1/2}):

* ``"euler"`` (Euler-Maruyama): x_{n+1} = x_n + dt b(x_n) + sigma xi_n; weak order 1, invariant-measure bias
  O(dt).  For the OU process L = k x^2 / 2 its stationary variance is 2 / (beta k (2 - k dt)).
* ``"leimkuhler-matthews"``: x_{n+1} = x_n + dt b(x_n) + sigma (xi_n + xi_{n+1}) / 2; weak order 1 for the
  trajectory but second order, O(dt^2), for the invariant measure, and exact stationary variance 1 / (beta k) for
  the OU process.  Constant D only.

:func:`langevin_steps` is the generator of states; :func:`langevin` runs it and records a Dataset.  A simulation
whose positions become non-finite or exceed ``bound`` stops with :class:`SimulationDiverged` naming the step and
the particle.

References
----------
1. P. E. Kloeden and E. Platen, *Numerical Solution of Stochastic Differential Equations*, Springer 1992.
2. B. Leimkuhler and C. Matthews, "Rational construction of stochastic numerical methods for molecular sampling",
   AMRX 2013(1):34-56; B. Leimkuhler, C. Matthews, G. Stoltz, IMA J. Numer. Anal. 36:13-79 (2016).
3. R. Shwartz-Ziv and N. Tishby, "Opening the black box of deep neural networks via information", 2017, sec. 2.4.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator, Sequence

import numpy as np
import xarray as xr
from numpy.typing import ArrayLike
from tqdm.auto import tqdm

from .. import _validate, store
from .._validate import show
from .potentials import Potential, as_points

__all__ = ["SCHEMES", "RECORDS", "NOISES", "LangevinState", "SimulationDiverged", "langevin_steps", "langevin",
           "histogram_counts", "uniform_edges"]

SCHEMES = ("euler", "leimkuhler-matthews")
NOISES = ("numpy", "torch")
RECORDS = ("trajectory", "moments", "histogram")
_MAX_TRAJECTORY_BYTES = 2 * 1024**3


class SimulationDiverged(ValueError):
    """Raised when positions become non-finite or exceed the bound; the message names the step and particle."""


class LangevinState:
    """One state of the chain: step index, time = step * dt, and the positions ``x`` (n_particles, dim).

    ``x`` is the simulation's live buffer (updated in place by the next step): copy it to keep it.
    """

    __slots__ = ("step", "time", "x")

    def __init__(self, step: int, time: float, x: np.ndarray):
        self.step, self.time, self.x = step, time, x


def _rng(seed: int | np.random.Generator | None) -> np.random.Generator:
    return seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)


def _noise_source(kind: str, seed) -> tuple[Callable[[np.ndarray], np.ndarray], type]:
    """A function filling a buffer with standard normals, and the buffer's dtype."""
    if kind == "numpy":
        rng = _rng(seed)

        def draw(buf: np.ndarray) -> np.ndarray:
            return rng.standard_normal(out=buf)

        return draw, np.float64
    import torch

    if isinstance(seed, np.random.Generator):
        seed = int(seed.integers(2**62))
    gen = torch.Generator().manual_seed(int(np.random.default_rng(seed).integers(2**62)) if seed is None
                                        else int(seed))

    def draw_t(buf: np.ndarray) -> np.ndarray:
        torch.randn(buf.shape, generator=gen, out=torch.from_numpy(buf))
        return buf

    return draw_t, np.float32


class _Diffusion:
    """Normalised diffusion: scalar d, constant SPD matrix (Cholesky factor) or a callable diagonal D(x)."""

    def __init__(self, diffusion, dim: int):
        self.kind, self.d, self.chol, self.fn = "scalar", 1.0, None, None
        if diffusion is None:
            return
        if callable(diffusion):
            self.kind, self.fn = "callable", diffusion
            return
        if np.ndim(diffusion) == 0:
            value = diffusion.item() if isinstance(diffusion, np.ndarray) else diffusion
            self.d = _validate.real(value, "diffusion", 0.0, low_open=True)
            return
        arr = np.asarray(diffusion, dtype=np.float64)
        if not np.all(np.isfinite(arr)):
            raise ValueError("diffusion contains NaN or infinite entries")
        if arr.ndim == 1:
            if arr.shape != (dim,) or np.any(arr <= 0):
                raise ValueError(f"a diagonal diffusion must be {dim} positive numbers, got {arr.tolist()}")
            arr = np.diag(arr)
        if arr.shape != (dim, dim) or not np.allclose(arr, arr.T):
            raise ValueError(f"diffusion matrix must be symmetric with shape ({dim}, {dim}), got {arr.shape}")
        if np.linalg.eigvalsh(arr).min() <= 0:
            raise ValueError("diffusion matrix must be positive definite")
        self.kind, self.D, self.chol = "matrix", arr, np.linalg.cholesky(arr)

    def describe(self) -> str:
        return {"scalar": f"{self.d:g}", "matrix": str(getattr(self, "D", np.eye(1)).tolist()),
                "callable": getattr(self.fn, "__name__", "callable")}[self.kind]

    def values(self, x: np.ndarray) -> np.ndarray:
        d = np.asarray(self.fn(x), dtype=np.float64)
        if d.shape != x.shape:
            raise ValueError(f"diffusion(x) must return the diagonal of D, shape {x.shape}; got {d.shape}")
        if not np.all(d > 0):
            raise ValueError("diffusion(x) returned a non-positive or NaN value")
        return d

    def divergence(self, x: np.ndarray, eps: float = 1e-6) -> np.ndarray:
        """d D_ii / d x_i by central differences, shape (n, dim)."""
        out = np.empty_like(x)
        for i in range(x.shape[1]):  # loop over dimensions, not particles
            step = np.zeros(x.shape[1])
            step[i] = eps
            out[:, i] = (self.values(x + step)[:, i] - self.values(x - step)[:, i]) / (2 * eps)
        return out


def _locate_divergence(x: np.ndarray, step: int, time: float, bound: float) -> SimulationDiverged:
    bad = ~np.isfinite(x) | (np.abs(x) > bound)
    idx = np.argwhere(bad)
    p, d = (int(idx[0, 0]), int(idx[0, 1])) if len(idx) else (-1, -1)
    val = float(x[p, d]) if p >= 0 else float("nan")  # a plain float: prints -1.46387e+11 or nan
    return SimulationDiverged(
        f"simulation diverged at step {step} (time {time:.6g}): particle {p} has x[{d}] = {val:.6g} "
        f"({int(bad.any(axis=1).sum())} particle(s) affected); reduce dt or check the potential"
    )


def _scalar_step(x: np.ndarray, g: np.ndarray, noise: np.ndarray, prev: np.ndarray | None, drift_c: float,
                 noise_c: float, lm: bool) -> tuple[np.ndarray | None, np.ndarray]:
    """One step with a scalar diffusion, in place: x += drift_c g + noise_c xi, with xi the fresh normals ``noise``
    (Euler) or (xi + xi_prev) / 2 (Leimkuhler-Matthews, ``lm``; ``prev`` holds xi_prev).  ``g`` (the gradient)
    and ``noise`` are overwritten.  Returns the buffers for the next step: (prev, noise), swapped for ``lm``."""
    g *= drift_c
    x += g
    if lm:
        prev += noise
        prev *= 0.5 * noise_c
        x += prev
        return noise, prev
    noise *= noise_c
    x += noise
    return prev, noise


def langevin_steps(
    potential: Potential,
    x0: ArrayLike,
    beta: float,
    dt: float,
    n_steps: int,
    scheme: str = "euler",
    diffusion: float | ArrayLike | Callable | None = None,
    precondition: bool = False,
    seed: int | np.random.Generator | None = None,
    bound: float = 1e8,
    noise: str = "numpy",
) -> Iterator[LangevinState]:
    """Generator of Langevin states: yields step 0 (x0, copied) and then the state after each of ``n_steps`` steps.

    Parameters
    ----------
    potential : Potential with ``grad(x, out=None)`` vectorised over (n_particles, dim)
    x0 : (n_particles, dim) initial positions (a 1-D array is n particles of a 1-D potential)
    beta : inverse temperature > 0 (1 / energy units of L)
    dt : step > 0 (time units)
    n_steps : number of steps >= 0
    scheme : "euler" or "leimkuhler-matthews"
    diffusion : None (identity), positive scalar, (dim,) diagonal, (dim, dim) SPD matrix, or a callable
        x (n, dim) -> diagonal of D(x) (n, dim) (Euler only)
    precondition : drift -D grad L + div D / beta (Gibbs-stationary) instead of -grad L
    seed : int or numpy Generator for the noise
    bound : positions with |x| > bound count as diverged
    noise : "numpy" (float64 normals from numpy's Generator, the default) or "torch" (float32 normals from a
        torch.Generator seeded from ``seed``: about 3x faster to draw, tails beyond ~5.8 sigma cut by float32
        Box-Muller, a difference invisible in any statistic of 10^9 draws); positions stay float64.

    Raises
    ------
    ValueError
        for bad arguments or a non-finite potential gradient at x0.
    SimulationDiverged
        (a ValueError) naming the step and particle when the chain blows up.
    """
    beta = _validate.real(beta, "beta", 0.0, low_open=True)
    dt = _validate.real(dt, "dt", 0.0, low_open=True)
    bound = _validate.real(bound, "bound", 0.0, low_open=True)
    n_steps = _validate.integer(n_steps, "n_steps", 0)
    if scheme not in SCHEMES:
        raise ValueError(f"scheme must be one of {SCHEMES}, got {show(scheme)}")
    if not isinstance(potential, Potential):
        raise ValueError(f"potential must be an ibtheory.dynamics Potential, got {type(potential).__name__}")
    x = as_points(x0, potential.dim, "x0").copy()
    if x.shape[0] == 0:
        raise ValueError("x0 has no particles")
    if not np.all(np.isfinite(x)):
        raise ValueError("x0 contains NaN or infinite positions")
    diff = _Diffusion(diffusion, potential.dim)
    if diff.kind == "callable" and scheme != "euler":
        raise ValueError("a position-dependent diffusion is supported by scheme='euler' only")
    with np.errstate(all="ignore"):
        v0, g0 = potential.value(x), potential.grad(x)
    bad = ~np.isfinite(v0) | ~np.all(np.isfinite(g0), axis=1)
    if bad.any():
        p = int(np.argmax(bad))
        raise ValueError(f"potential returned NaN/inf at x0 for particle {p} (x = {x[p].tolist()})")
    if noise not in NOISES:
        raise ValueError(f"noise must be one of {NOISES}, got {show(noise)}")
    n, d = x.shape
    g = np.empty_like(x)
    draw, noise_dtype = _noise_source(noise, seed)
    noise = np.empty_like(x, dtype=noise_dtype)
    scale = np.sqrt(2.0 * dt / beta)
    drift_c = -dt * (diff.d if (precondition and diff.kind == "scalar") else 1.0)
    noise_c = scale * np.sqrt(diff.d) if diff.kind == "scalar" else scale
    lm = scheme == "leimkuhler-matthews"
    prev = draw(np.empty_like(noise)) if lm else None
    yield LangevinState(0, 0.0, x)
    with np.errstate(over="ignore", invalid="ignore"):
        for k in range(1, int(n_steps) + 1):
            potential.grad(x, out=g)
            draw(noise)
            if diff.kind == "scalar":
                prev, noise = _scalar_step(x, g, noise, prev, drift_c, noise_c, lm)
            elif diff.kind == "matrix":
                if precondition:
                    g = g @ diff.D
                x += drift_c * g
                if lm:
                    x += (0.5 * noise_c) * ((prev + noise) @ diff.chol.T)
                    prev, noise = noise, prev
                else:
                    x += noise_c * (noise @ diff.chol.T)
            else:
                dx = diff.values(x)
                drift = -(dx * g) + diff.divergence(x) / beta if precondition else -g
                x += dt * drift + noise_c * np.sqrt(dx) * noise
            total = np.add.reduce(x, axis=None)
            if not (np.isfinite(total) and abs(total) <= bound * x.size) or (
                k % 64 == 0 and np.abs(x).max() > bound
            ):
                raise _locate_divergence(x, k, k * dt, bound)
            yield LangevinState(k, k * dt, x)


def uniform_edges(edges: ArrayLike) -> tuple[float, float, int] | None:
    """(lo, width, n_bins) when ``edges`` are equally spaced (fast binning), else None."""
    e = np.asarray(edges, dtype=np.float64)
    w = np.diff(e)
    if np.allclose(w, w[0], rtol=1e-9, atol=0):
        return float(e[0]), float(w[0]), len(w)
    return None


def histogram_counts(values: np.ndarray, edges: ArrayLike) -> tuple[np.ndarray, int]:
    """Counts of ``values`` in the bins ``edges`` (n_bins + 1, increasing) and the number outside them.

    Equal bins use one multiply and ``np.bincount`` (O(n)); unequal bins use ``np.searchsorted``.
    """
    e = np.asarray(edges, dtype=np.float64)
    uni = uniform_edges(e)
    if uni is not None:
        lo, w, nb = uni
        idx = np.floor((values - lo) * (1.0 / w)).astype(np.int64)
    else:
        nb = len(e) - 1
        idx = np.searchsorted(e, values, side="right") - 1
    idx[values == e[-1]] = nb - 1
    inside = (idx >= 0) & (idx < nb)
    counts = np.bincount(idx[inside], minlength=nb)
    return counts, int(values.size - counts.sum())


def _normalise_record(record: str | Sequence[str]) -> tuple[str, ...]:
    rec = (record,) if isinstance(record, str) else tuple(record)
    bad = [r for r in rec if r not in RECORDS]
    if bad or not rec:
        raise ValueError(f"record must be one or more of {RECORDS}, got {show(record)}")
    return rec


def langevin(
    potential: Potential,
    x0: ArrayLike,
    beta: float,
    dt: float,
    n_steps: int,
    scheme: str = "euler",
    diffusion: float | ArrayLike | Callable | None = None,
    record: str | Sequence[str] = "trajectory",
    every: int | None = None,
    bins: ArrayLike | None = None,
    hist_dim: int = 0,
    keep_final: bool = False,
    precondition: bool = False,
    seed: int | np.random.Generator | None = None,
    bound: float = 1e8,
    noise: str = "numpy",
    progress: bool = True,
) -> xr.Dataset:
    """Simulate overdamped Langevin dynamics (see the module docstring) and record it as a Dataset.

    Parameters are those of :func:`langevin_steps`, plus

    record : any of "trajectory" (positions ``position(time, particle, dim)``), "moments"
        (``position_mean(time, dim)``, ``position_var(time, dim)``, ``energy(time)`` = mean L), "histogram"
        (``p_hist(time, x)``: fraction of particles in each bin of coordinate ``hist_dim``, ``density(time, x)`` =
        p_hist / width, ``outside(time)``: fraction outside the bins).  Use moments/histogram for big runs
        (10^6 particles), they take O(n_bins) per record.
    every : record every this many steps (default: about 100 records); step 0 and the last step are recorded.
    bins : histogram bin edges (default 121 equal bins on [-3, 3]).
    keep_final : also return the final positions ``position_final(particle, dim)``.

    Returns an ``xarray.Dataset`` with coordinate ``time`` (= step * dt), ``step(time)``, attrs ``scheme``,
    ``beta``, ``dt``, ``n_particles`` and provenance (the full configuration, potential included, as JSON in
    ``attrs["config"]``).

    Example
    -------
    >>> from ibtheory.dynamics import Quadratic
    >>> ds = langevin(Quadratic(2.0), np.zeros(20000), beta=1.0, dt=0.05, n_steps=200,
    ...               scheme="leimkuhler-matthews", record="moments", seed=0, progress=False)
    >>> round(float(ds["position_var"].isel(time=-1, dim=0)), 2)  # exact for this scheme: 1 / (beta k) = 0.5
    0.5
    """
    rec = _normalise_record(record)
    if not isinstance(potential, Potential):
        raise ValueError(f"potential must be an ibtheory.dynamics Potential, got {type(potential).__name__}")
    n_steps_i = _validate.integer(n_steps, "n_steps", 0)
    x0a = as_points(x0, potential.dim, "x0")
    every = max(1, n_steps_i // 100) if every is None else _validate.integer(every, "every", 1)
    rec_steps = sorted(set(range(0, int(n_steps_i) + 1, int(every))) | {int(n_steps_i)})
    n_rec = len(rec_steps)
    if "trajectory" in rec:
        nbytes = n_rec * np.asarray(x0a).size * 8
        if nbytes > _MAX_TRAJECTORY_BYTES:
            raise ValueError(f"record='trajectory' would need {nbytes / 1e9:.1f} GB; use record='histogram' or "
                             "'moments', or a larger `every`")
    edges = np.linspace(-3.0, 3.0, 122) if bins is None else np.asarray(bins, dtype=np.float64)
    if edges.ndim != 1 or len(edges) < 2 or np.any(np.diff(edges) <= 0) or not np.all(np.isfinite(edges)):
        raise ValueError("bins must be at least two finite, strictly increasing edges")
    hist_dim = _validate.integer(hist_dim, "hist_dim", 0, potential.dim - 1)
    gen = langevin_steps(potential, x0a, beta, dt, n_steps_i, scheme, diffusion, precondition, seed, bound,
                         noise)
    n, d = np.asarray(x0a).shape
    traj = np.empty((n_rec, n, d)) if "trajectory" in rec else None
    mean = np.empty((n_rec, d))
    var = np.empty((n_rec, d))
    energy = np.empty(n_rec)
    hist = np.empty((n_rec, len(edges) - 1))
    outside = np.empty(n_rec)
    wanted = set(rec_steps)
    j = 0
    bar = progress and sys.stderr.isatty()
    for state in tqdm(gen, total=int(n_steps_i) + 1, disable=not bar, desc="langevin", leave=False):
        if state.step not in wanted:
            continue
        x = state.x
        if traj is not None:
            traj[j] = x
        if "moments" in rec:
            mean[j] = x.mean(axis=0)
            var[j] = x.var(axis=0)
            energy[j] = potential.value(x).mean()
        if "histogram" in rec:
            counts, out = histogram_counts(x[:, hist_dim], edges)
            hist[j] = counts / n
            outside[j] = out / n
        j += 1
    final = state.x.copy()
    coords = {"time": np.asarray(rec_steps, dtype=np.float64) * float(dt), "dim": np.arange(d)}
    data = {"step": ("time", np.asarray(rec_steps))}
    if traj is not None:
        data["position"] = (("time", "particle", "dim"), traj, {"long_name": "position"})
    if "moments" in rec:
        data["position_mean"] = (("time", "dim"), mean, {"long_name": "mean position"})
        data["position_var"] = (("time", "dim"), var, {"long_name": "variance of position"})
        data["energy"] = ("time", energy, {"long_name": "mean potential E[L]", "units": "energy (units of L)"})
    if "histogram" in rec:
        centres = 0.5 * (edges[1:] + edges[:-1])
        coords["x"] = centres
        data["x_edges"] = ("x_edge", edges)
        data["p_hist"] = (("time", "x"), hist, {"long_name": f"fraction of particles per bin of x[{hist_dim}]"})
        data["density"] = (("time", "x"), hist / np.diff(edges), {"long_name": "histogram density"})
        data["outside"] = ("time", outside, {"long_name": "fraction of particles outside the bins"})
    if keep_final:
        data["position_final"] = (("particle", "dim"), final)
    ds = xr.Dataset(data, coords=coords)
    config = {
        "potential": potential.config(), "beta": float(beta), "dt": float(dt), "n_steps": int(n_steps_i),
        "scheme": scheme, "diffusion": _Diffusion(diffusion, d).describe() if not callable(diffusion) else
        getattr(diffusion, "__name__", "callable"), "precondition": bool(precondition), "record": list(rec),
        "every": int(every), "n_particles": int(n), "hist_dim": int(hist_dim), "noise": noise,
    }
    ds.attrs.update({"scheme": scheme, "beta": float(beta), "dt": float(dt), "n_particles": int(n)})
    seed_attr = seed if isinstance(seed, (int, np.integer)) else None
    return store.with_provenance(ds, config=config, seed=seed_attr)
