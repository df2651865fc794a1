"""The Gibbs density p(x) = exp(-beta L(x)) / Z, its free energy and entropy, and convergence measures.

Free energy and entropy (beta in 1 / energy units, H in nats inside, reported in bits):

    Z = int exp(-beta L(x)) dx,   F = -ln(Z) / beta = E_p[L] - H_nats(p) / beta,
    H(p) = -int p ln p dx / ln 2   [bits; differential entropy, so it depends on the units of x].

The Gibbs density minimises the free-energy functional F[p] = E_p[L] - H_nats(p) / beta, and for any p,
F[p] - F = KL(p || p_Gibbs)[nats] / beta >= 0: the free energy of a Langevin ensemble decreases to F.

For a :class:`~ibtheory.dynamics.potentials.Quadratic` potential (Hessian H, dimension d) everything is closed form:
p = N(c, H^{-1}/beta), ln Z = (d/2) ln(2 pi / beta) - (1/2) ln det H, E[L] = d / (2 beta).
Other potentials use quadrature on a 1-D grid or a 2-D grid (trapezoid rule).

Convergence of a particle histogram to the Gibbs density: :func:`bin_probabilities` (exact Gibbs mass per bin),
:func:`total_variation`, :func:`kl_bits`, :func:`wasserstein1`, :func:`histogram_free_energy`.

References
----------
1. H. Risken, *The Fokker-Planck Equation*, 2nd ed., Springer 1989, ch. 5 (stationary solution).
2. R. Jordan, D. Kinderlehrer, F. Otto, "The variational formulation of the Fokker-Planck equation",
   SIAM J. Math. Anal. 29:1-17 (1998) (free energy decreases along the flow).
"""

from __future__ import annotations

import numpy as np
import xarray as xr
from numpy.typing import ArrayLike
from scipy import integrate, stats
from scipy.special import logsumexp

from .._validate import real, show
from ..info import LN2, kl_rowwise, xlogx
from .potentials import Potential, Quadratic

__all__ = ["gibbs", "gibbs_quadratic", "sample_gibbs", "bin_probabilities", "total_variation", "kl_bits",
           "wasserstein1", "histogram_free_energy", "convergence"]

def _check_axis(g: ArrayLike, name: str) -> np.ndarray:
    a = np.asarray(g, dtype=np.float64)
    if a.ndim != 1 or len(a) < 3 or not np.all(np.isfinite(a)) or np.any(np.diff(a) <= 0):
        raise ValueError(f"{name} must be a strictly increasing finite 1-D array of >= 3 points")
    return a


def gibbs_quadratic(potential: Quadratic, beta: float) -> xr.Dataset:
    """Closed-form Gibbs distribution of a quadratic potential: N(c, H^{-1}/beta).

    Returns a Dataset with ``mean(dim)``, ``covariance(dim, dim_)``, and scalars ``log_partition`` (ln Z),
    ``free_energy`` (F = -ln Z / beta, energy units), ``mean_energy`` (d / (2 beta)) and ``entropy`` (bits).

    Example
    -------
    >>> ds = gibbs_quadratic(Quadratic(1.0), beta=1.0)
    >>> round(float(ds["entropy"]), 4)  # 0.5 log2(2 pi e)
    2.0471
    """
    beta = real(beta, "beta", 0.0, low_open=True)
    d = potential.dim
    _, logdet = np.linalg.slogdet(potential.H)
    log_z = 0.5 * d * np.log(2 * np.pi / beta) - 0.5 * logdet
    cov = potential.covariance(beta)
    h_nats = 0.5 * d * (1 + np.log(2 * np.pi)) + 0.5 * np.linalg.slogdet(cov)[1]
    ds = xr.Dataset(
        {
            "mean": ("dim", potential.center.copy()),
            "covariance": (("dim", "dim_"), cov),
            "log_partition": ((), log_z),
            "free_energy": ((), -log_z / beta, {"units": "energy (units of L)"}),
            "mean_energy": ((), d / (2 * beta), {"units": "energy (units of L)"}),
            "entropy": ((), h_nats / LN2, {"units": "bits", "long_name": "differential entropy"}),
        },
        coords={"dim": np.arange(d), "dim_": np.arange(d)},
    )
    ds.attrs.update({"beta": beta, "method": "closed form"})
    return ds


def gibbs(potential: Potential, beta: float, grid: ArrayLike | tuple[ArrayLike, ArrayLike] | None = None,
          tail_tolerance: float = 1e-7) -> xr.Dataset:
    """The Gibbs density exp(-beta L) / Z of ``potential`` on a grid, with its free energy and entropy.

    Parameters
    ----------
    potential : a 1-D or 2-D Potential (any dimension for a Quadratic with ``grid=None``)
    beta : inverse temperature > 0
    grid : 1-D array of positions (1-D potential), or a pair of arrays (2-D potential); ``None`` for a Quadratic
        gives the closed form (:func:`gibbs_quadratic`).
    tail_tolerance : the density at the grid's boundary, relative to its maximum, above which the grid is said not
        to contain the mass (``ValueError``).

    Returns
    -------
    Dataset with ``density(x)`` (1-D) or ``density(x, y)`` (2-D; here x, y are the two coordinates of the state),
    ``energy`` (L on the grid), and scalars ``log_partition``, ``free_energy``, ``mean_energy`` (energy units),
    ``entropy`` (bits).

    Example
    -------
    >>> import numpy as np
    >>> ds = gibbs(Quadratic(1.0), beta=1.0, grid=np.linspace(-10, 10, 2001))
    >>> round(float(ds["free_energy"]), 6)  # -ln sqrt(2 pi)
    -0.918939
    """
    beta = real(beta, "beta", 0.0, low_open=True)
    if grid is None:
        if isinstance(potential, Quadratic):
            return gibbs_quadratic(potential, beta)
        raise ValueError("grid is required unless the potential is Quadratic (closed form)")
    if potential.dim == 1:
        axes = [_check_axis(grid, "grid")]
        pts = axes[0].reshape(-1, 1)
        dims = ("x",)
    elif potential.dim == 2:
        if not (isinstance(grid, (tuple, list)) and len(grid) == 2):
            raise ValueError("grid for a 2-D potential must be a pair of 1-D arrays (x0 axis, x1 axis)")
        axes = [_check_axis(grid[0], "grid[0]"), _check_axis(grid[1], "grid[1]")]
        mesh = np.meshgrid(*axes, indexing="ij")
        pts = np.stack([m.ravel() for m in mesh], axis=1)
        dims = ("x", "y")
    else:
        raise ValueError(f"gibbs by quadrature needs a 1-D or 2-D potential, got dim={potential.dim}")
    shape = tuple(len(a) for a in axes)
    energy = potential.value(pts).reshape(shape)
    if not np.all(np.isfinite(energy)):
        raise ValueError("potential returned NaN or infinite values on the grid")
    logw = -beta * energy
    shift = logw.max()
    w = np.exp(logw - shift)
    z = w
    for axis in reversed(range(len(axes))):
        z = integrate.trapezoid(z, axes[axis], axis=axis)
    log_z = float(np.log(z) + shift)
    density = np.exp(logw - log_z)
    edge = max(np.max(np.take(w, [0, -1], axis=a)) for a in range(len(axes)))
    if edge > tail_tolerance:
        raise ValueError(f"grid does not contain the Gibbs mass: boundary density is {edge:.2g} of the maximum "
                         f"(> tail_tolerance {tail_tolerance:g}); widen the grid")

    def integral(f):
        out = f
        for axis in reversed(range(len(axes))):
            out = integrate.trapezoid(out, axes[axis], axis=axis)
        return float(out)

    mean_energy = integral(density * energy)
    h_nats = integral(-xlogx(density))
    coords = {dims[i]: axes[i] for i in range(len(axes))}
    ds = xr.Dataset(
        {
            "density": (dims, density, {"long_name": "Gibbs density exp(-beta L)/Z"}),
            "energy": (dims, energy, {"units": "energy (units of L)"}),
            "log_partition": ((), log_z),
            "free_energy": ((), -log_z / beta, {"units": "energy (units of L)"}),
            "mean_energy": ((), mean_energy, {"units": "energy (units of L)"}),
            "entropy": ((), h_nats / LN2, {"units": "bits", "long_name": "differential entropy"}),
        },
        coords=coords,
    )
    ds.attrs.update({"beta": beta, "method": "trapezoid quadrature", "potential": str(potential.config())})
    return ds


def sample_gibbs(potential: Potential, beta: float, n: int, grid: ArrayLike | None = None,
                 seed: int | np.random.Generator | None = None) -> np.ndarray:
    """``n`` exact samples (n, dim) of the Gibbs distribution: multivariate normal for a Quadratic, else inverse
    CDF of the 1-D density on ``grid`` (piecewise-linear density, exact CDF inversion within each cell up to the
    grid's quadrature error)."""
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    if int(n) != n or n < 1:
        raise ValueError(f"n must be a positive integer, got {show(n)}")
    beta = real(beta, "beta", 0.0, low_open=True)
    if isinstance(potential, Quadratic) and grid is None:
        return rng.multivariate_normal(potential.center, potential.covariance(beta), size=int(n))
    if potential.dim != 1 or grid is None:
        raise ValueError("sample_gibbs needs a 1-D potential and a grid (or a Quadratic potential)")
    ds = gibbs(potential, beta, grid)
    xg, p = ds["x"].values, ds["density"].values
    cdf = np.concatenate([[0.0], np.cumsum(0.5 * (p[1:] + p[:-1]) * np.diff(xg))])
    u = rng.random(int(n)) * cdf[-1]
    # invert the piecewise-quadratic CDF of the piecewise-linear density cell by cell (vectorised)
    i = np.clip(np.searchsorted(cdf, u, side="right") - 1, 0, len(xg) - 2)
    h = xg[i + 1] - xg[i]
    p0 = p[i]
    mass = u - cdf[i]
    slope = (p[i + 1] - p0) / h
    with np.errstate(divide="ignore", invalid="ignore"):
        s = np.where(np.abs(slope) * h > 1e-12 * np.maximum(p0, 1e-300),
                     2 * mass / (p0 + np.sqrt(np.maximum(p0 * p0 + 2 * slope * mass, 0.0))),
                     mass / np.maximum(p0, 1e-300))
    return (xg[i] + np.clip(s, 0, h)).reshape(-1, 1)


def bin_probabilities(potential: Potential, beta: float, edges: ArrayLike, refine: int = 64) -> np.ndarray:
    """Exact Gibbs probability of each bin [e_k, e_{k+1}) of a 1-D potential, by Simpson quadrature with
    ``refine`` sub-intervals per bin (the mass outside the edges is 1 - sum)."""
    beta = real(beta, "beta", 0.0, low_open=True)
    e = _check_axis(edges, "edges") if len(np.asarray(edges)) >= 3 else np.asarray(edges, dtype=np.float64)
    if potential.dim != 1:
        raise ValueError("bin_probabilities needs a 1-D potential")
    refine = int(refine) + int(refine) % 2
    t = np.linspace(0.0, 1.0, refine + 1)
    pts = e[:-1, None] + np.diff(e)[:, None] * t[None, :]
    lo, hi = e[0], e[-1]
    span = hi - lo
    wide = np.linspace(lo - 4 * span, hi + 4 * span, 40001)
    logw_wide = -beta * potential.value(wide)
    log_z = logsumexp(logw_wide) + np.log(wide[1] - wide[0])
    logw = -beta * potential.value(pts.reshape(-1)).reshape(pts.shape)
    mass = integrate.simpson(np.exp(logw - log_z), x=pts, axis=1)
    return mass


def _as_probs(p: ArrayLike, name: str) -> np.ndarray:
    a = np.asarray(p, dtype=np.float64)
    if a.ndim < 1 or not np.all(np.isfinite(a)) or np.any(a < 0):
        raise ValueError(f"{name} must be non-negative finite probabilities")
    return a


def total_variation(p: ArrayLike, q: ArrayLike) -> float:
    """TV(p, q) = (1/2) sum_k |p_k - q_k| + (1/2)|(1 - sum p) - (1 - sum q)| (mass outside the bins counted).

    ``p`` and ``q`` are bin probabilities on the same bins (last axis); a batch (time, bin) gives (time,).
    """
    p, q = _as_probs(p, "p"), _as_probs(q, "q")
    return 0.5 * (np.abs(p - q).sum(axis=-1) + np.abs(q.sum(axis=-1) - p.sum(axis=-1)))


def kl_bits(p: ArrayLike, q: ArrayLike) -> float:
    """KL(p || q) = sum_k p_k log2(p_k / q_k) in bits, over bins (last axis); infinite if p_k > 0 where q_k = 0."""
    return kl_rowwise(_as_probs(p, "p"), _as_probs(q, "q"))


def wasserstein1(samples: ArrayLike, potential: Potential, beta: float, grid: ArrayLike) -> float:
    """W1 between 1-D samples and the Gibbs density on ``grid``: int |F_n(x) - F(x)| dx (scipy)."""
    ds = gibbs(potential, beta, grid)
    xg = ds["x"].values
    w = ds["density"].values * np.gradient(xg)
    return float(stats.wasserstein_distance(np.asarray(samples, dtype=np.float64).reshape(-1), xg, None, w))


def histogram_free_energy(p_hist: ArrayLike, edges: ArrayLike, potential: Potential, beta: float,
                          refine: int = 16) -> np.ndarray:
    """Free energy F[p] = E_p[L] - H_nats(p) / beta of a piecewise-constant histogram density (energy units).

    ``p_hist`` is the fraction of particles per bin (last axis); E_p[L] uses the bin average of L (Simpson with
    ``refine`` sub-intervals), H the differential entropy -sum p_k ln(p_k / w_k).  Mass outside the bins is ignored.
    F[p] - F_Gibbs = KL(p || Gibbs)[nats] / beta >= 0 up to the binning error.
    """
    beta = real(beta, "beta", 0.0, low_open=True)
    p = _as_probs(p_hist, "p_hist")
    e = np.asarray(edges, dtype=np.float64)
    w = np.diff(e)
    refine = int(refine) + int(refine) % 2
    t = np.linspace(0.0, 1.0, refine + 1)
    pts = e[:-1, None] + w[:, None] * t[None, :]
    lbar = integrate.simpson(potential.value(pts.reshape(-1)).reshape(pts.shape), x=t, axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        neg_h = np.where(p > 0, p * np.log(p / w), 0.0).sum(axis=-1)
    return (p * lbar).sum(axis=-1) + neg_h / beta


def convergence(ds: xr.Dataset, potential: Potential, beta: float) -> xr.Dataset:
    """Add the convergence of a histogram-recorded 1-D run (``langevin(..., record="histogram")``) to its Gibbs
    density: ``tv(time)``, ``kl(time)`` (bits, KL(p_t || Gibbs) over the bins), ``free_energy(time)`` (F[p_t],
    energy units, see :func:`histogram_free_energy`), ``gibbs_p(x)`` (Gibbs bin probabilities) and the attrs
    ``gibbs_free_energy_binned`` (F of the binned Gibbs density, the limit of ``free_energy``)."""
    if "p_hist" not in ds:
        raise ValueError("ds must contain p_hist: run langevin with record='histogram'")
    edges = ds["x_edges"].values
    q = bin_probabilities(potential, beta, edges)
    p = ds["p_hist"].values
    out = ds.copy()
    out["gibbs_p"] = ("x", q, {"long_name": "Gibbs probability of each bin"})
    out["tv"] = ("time", total_variation(p, q), {"long_name": "total variation to Gibbs"})
    out["kl"] = ("time", kl_bits(p, q), {"units": "bits", "long_name": "KL(p_t || Gibbs) over the bins"})
    out["free_energy"] = ("time", histogram_free_energy(p, edges, potential, beta),
                          {"units": "energy (units of L)", "long_name": "free energy F[p_t]"})
    out.attrs["gibbs_free_energy_binned"] = float(histogram_free_energy(q, edges, potential, beta))
    return out
