"""Barrier crossing: Kramers' escape rate, exact mean first-passage times, and simulated first passages.

Overdamped Kramers (high barrier, beta dL >> 1): from a minimum a over a saddle s,

    k = sqrt(L''(a) |L''(s)|) / (2 pi) exp(-beta (L(s) - L(a)))      [1 / time],

and the mean first-passage time (MFPT) from a to a point b well beyond the saddle (for example the other minimum)
is tau ~ 1 / k, with relative corrections O(1 / (beta dL)).  In 1-D the MFPT is known exactly for any barrier
(reflecting at ``lower``, absorbing at b > a, diffusion coefficient 1 / beta):

    tau(a -> b) = beta int_a^b dy exp(beta L(y)) int_lower^y exp(-beta L(z)) dz.

:func:`first_passage_times` simulates it with the Langevin schemes (vectorised over particles; absorbed particles
leave the active set), so the three can be compared (``symbolic.kramers_mfpt`` derives k by Laplace's method).

References
----------
1. H. A. Kramers, "Brownian motion in a field of force and the diffusion model of chemical reactions",
   Physica 7:284-304 (1940).
2. P. Hanggi, P. Talkner, M. Borkovec, "Reaction-rate theory: fifty years after Kramers", Rev. Mod. Phys.
   62:251 (1990), eqs. (4.5) and (4.56).
"""

from __future__ import annotations

import numpy as np
import xarray as xr
from scipy import integrate

from .._validate import integer, real, show
from .langevin import NOISES, SCHEMES, SimulationDiverged, _noise_source, _scalar_step
from .potentials import Potential, as_points

__all__ = ["kramers_rate", "mfpt_exact", "first_passage_times", "mfpt_estimate"]


def kramers_rate(potential: Potential, beta: float, x_min: float, x_saddle: float) -> float:
    """Kramers' rate sqrt(L''(x_min) |L''(x_saddle)|) / (2 pi) exp(-beta (L(x_saddle) - L(x_min))) of a 1-D
    potential (curvatures from ``potential.hessian``); 1 / time.

    Example
    -------
    >>> from ibtheory.dynamics import DoubleWell
    >>> round(1 / kramers_rate(DoubleWell(1.0), 4.0, -1.0, 0.0), 2)  # 2 pi / sqrt(8 * 4) e^4
    60.64
    """
    beta = real(beta, "beta", 0.0, low_open=True)
    if potential.dim != 1:
        raise ValueError("kramers_rate needs a 1-D potential")
    h = potential.hessian(np.array([[x_min], [x_saddle]]))[:, 0, 0]
    if not (h[0] > 0 and h[1] < 0):
        raise ValueError(f"x_min must be a minimum (L'' > 0) and x_saddle a barrier top (L'' < 0); got L'' = {h}")
    dl = float(np.diff(potential.value(np.array([[x_min], [x_saddle]])))[0])
    return float(np.sqrt(h[0] * -h[1]) / (2 * np.pi) * np.exp(-beta * dl))


def mfpt_exact(potential: Potential, beta: float, start: float, target: float, lower: float | None = None,
               n_grid: int = 20001) -> float:
    """Exact 1-D mean first-passage time from ``start`` to ``target`` > start, reflecting at ``lower``
    (default: start - 6, effectively -infinity for a confining potential); trapezoid quadrature, time units."""
    beta = real(beta, "beta", 0.0, low_open=True)
    if potential.dim != 1:
        raise ValueError("mfpt_exact needs a 1-D potential")
    if not target > start:
        raise ValueError(f"target must be greater than start, got start={start}, target={target}")
    lower = start - 6.0 if lower is None else float(lower)
    if not lower < start:
        raise ValueError("lower must be below start")
    x = np.linspace(lower, target, int(n_grid))
    e = potential.value(x.reshape(-1, 1))
    e0 = e.min()
    inner = integrate.cumulative_trapezoid(np.exp(-beta * (e - e0)), x, initial=0.0)
    m = x >= start
    outer = np.exp(beta * (e[m] - e0)) * inner[m]
    return float(beta * integrate.trapezoid(outer, x[m]))


def first_passage_times(
    potential: Potential,
    beta: float,
    x0: float,
    target: float,
    dt: float,
    n_particles: int,
    max_steps: int,
    scheme: str = "leimkuhler-matthews",
    seed: int | np.random.Generator | None = None,
    noise: str = "numpy",
) -> np.ndarray:
    """Simulated first times at which x[0] >= ``target`` for particles started at ``x0`` (1-D potentials).

    Returns an array (n_particles,) of times; particles not absorbed within ``max_steps`` have ``inf`` (censored).
    Absorbed particles are removed from the active set, so the cost is sum of the passage times / dt.
    ``noise``: "numpy" (float64 normals) or "torch" (float32 normals, about 3x faster to draw), as in
    :func:`~ibtheory.dynamics.langevin`.  Each step costs one fused pass for the absorption and divergence check
    (the maximum of the positions: NaN, inf or >= target triggers the slow path).
    """
    beta = real(beta, "beta", 0.0, low_open=True)
    if scheme not in SCHEMES:
        raise ValueError(f"scheme must be one of {SCHEMES}, got {show(scheme)}")
    dt = real(dt, "dt", 0.0, low_open=True)
    n = integer(n_particles, "n_particles", 1)
    max_steps = integer(max_steps, "max_steps", 0)
    if potential.dim != 1:
        raise ValueError("first_passage_times needs a 1-D potential")
    if not x0 < target:
        raise ValueError("x0 must be below target")
    if noise not in NOISES:
        raise ValueError(f"noise must be one of {NOISES}, got {show(noise)}")
    draw, noise_dtype = _noise_source(noise, seed)
    x = as_points(np.full(n, float(x0)), 1).copy()
    alive = np.arange(n)
    times = np.full(n, np.inf)
    c = np.sqrt(2.0 * dt / beta)
    lm = scheme == "leimkuhler-matthews"
    prev = draw(np.empty((n, 1), dtype=noise_dtype))
    buf = np.empty_like(prev)
    g = np.empty_like(x)
    target = float(target)
    for k in range(1, max_steps + 1):
        potential.grad(x, out=g)
        draw(buf)
        prev, buf = _scalar_step(x, g, buf, prev, -dt, c, lm)  # the step of langevin_steps
        top = x.max()
        if top < target:  # False for NaN as well
            continue
        if not np.isfinite(top) or not np.all(np.isfinite(x)):
            p = int(np.argmax(~np.isfinite(x[:, 0])))
            raise SimulationDiverged(f"first-passage simulation diverged at step {k} (time {k * dt:.6g}): particle "
                                     f"{int(alive[p])} has x = {float(x[p, 0]):.6g}; reduce dt")
        hit = x[:, 0] >= target
        times[alive[hit]] = k * dt
        keep = ~hit
        x, prev, alive = x[keep], prev[keep], alive[keep]
        if alive.size == 0:
            break
        buf, g = np.empty_like(prev), np.empty_like(x)
    return times


def mfpt_estimate(times: np.ndarray, t_max: float | None = None) -> xr.Dataset:
    """Mean first-passage time from (possibly censored, ``inf``) passage times.

    With censoring at time T = ``t_max`` the estimate is the exponential-law MLE
    (sum of observed times + (#censored) T) / (#observed), valid when the passage-time law is close to
    exponential (barrier >> temperature); without censoring it is the sample mean.
    Returns ``mfpt``, ``stderr`` (mfpt / sqrt(#observed)) and ``censored``.
    """
    t = np.asarray(times, dtype=np.float64)
    obs = np.isfinite(t)
    if obs.sum() == 0:
        raise ValueError("no particle reached the target: raise max_steps")
    if (~obs).any() and t_max is None:
        raise ValueError("some passage times are censored (inf): give t_max = max_steps * dt")
    t_cens = 0.0 if t_max is None else float(t_max)
    total = t[obs].sum() + (~obs).sum() * t_cens
    mfpt = total / obs.sum()
    return xr.Dataset({"mfpt": ((), mfpt), "stderr": ((), mfpt / np.sqrt(obs.sum())),
                       "censored": ((), int((~obs).sum()))})
