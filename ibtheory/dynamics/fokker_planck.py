"""Relaxation to the Gibbs density: the spectral gap of the Fokker-Planck operator, computed exactly on a grid.

The overdamped Langevin generator (D = 1, beta in 1 / energy units)

    (G f)(x) = -grad L . grad f + (1 / beta) laplacian f

is self-adjoint in L^2(p_Gibbs) with eigenvalues 0 = lambda_0 < lambda_1 <= lambda_2 ...  (1 / time); every
observable relaxes as E[f(x_t)] - E_Gibbs[f] = sum_{k>=1} c_k exp(-lambda_k t), so the spectral gap lambda_1 is the
slowest relaxation rate (the Fokker-Planck operator, the adjoint of G, has the same spectrum).

Discretisation: the square-root approximation (SqRA), a reversible jump process between neighbouring grid cells
with rates q_{i->j} = (1 / (beta h^2)) exp(-beta (L_j - L_i) / 2), which has the exact discrete Gibbs weights
pi_i ~ exp(-beta L_i) as its stationary distribution and converges to G as h -> 0.  Symmetrised by pi^{1/2} it is a
symmetric sparse matrix (constant off-diagonals 1 / (beta h^2)), whose smallest eigenvalues are found by
``scipy.sparse.linalg.eigsh`` in shift-invert mode.  Grids are 1-D or 2-D (a pair of axes), reflecting at the
boundary.  Known answer: for L = k x^2 / 2 the eigenvalues are n k (n = 0, 1, ...).

References
----------
1. H. Risken, *The Fokker-Planck Equation*, Springer 1989, sec. 5.4-5.7.
2. H. C. Lie, K. Fackeldey, M. Weber, "A square root approximation of transition rates for a Markov state model",
   SIAM J. Matrix Anal. Appl. 34:738-756 (2013).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import xarray as xr
from numpy.typing import ArrayLike
from scipy import sparse
from scipy.sparse.linalg import eigsh

from .._validate import real, show
from .potentials import Potential

__all__ = ["Spectrum", "generator_matrix", "spectrum", "spectral_gap", "fit_decay_rate", "relaxation_times"]


@dataclass(frozen=True)
class Spectrum:
    """Lowest eigenpairs of the Langevin generator on a grid.

    Attributes
    ----------
    eigenvalues : (k,) ascending relaxation rates lambda_0 = 0 <= lambda_1 <= ... (1 / time)
    eigenfunctions : (k, *grid shape) right eigenfunctions phi_k of G, normalised E_Gibbs[phi_k^2] = 1, phi_0 = 1,
        signed so that E_Gibbs[phi_k x_0] >= 0
    axes : the grid axes
    pi : (*grid shape) discrete Gibbs weights (sum 1)
    """

    eigenvalues: np.ndarray
    eigenfunctions: np.ndarray
    axes: tuple
    pi: np.ndarray

    @property
    def gap(self) -> float:
        """The spectral gap lambda_1 (1 / time)."""
        return float(self.eigenvalues[1])

    def eigenfunction(self, k: int, x: ArrayLike) -> np.ndarray:
        """phi_k at 1-D positions ``x`` (linear interpolation on the grid)."""
        if len(self.axes) != 1:
            raise ValueError("eigenfunction interpolation is implemented for 1-D grids")
        return np.interp(np.asarray(x, dtype=np.float64).reshape(-1), self.axes[0], self.eigenfunctions[k])


def _axes(potential: Potential, grid) -> tuple[tuple[np.ndarray, ...], np.ndarray]:
    if potential.dim == 1:
        axes = (np.asarray(grid, dtype=np.float64),)
    elif potential.dim == 2 and isinstance(grid, (tuple, list)) and len(grid) == 2:
        axes = tuple(np.asarray(g, dtype=np.float64) for g in grid)
    else:
        raise ValueError("grid must be a 1-D array for a 1-D potential or a pair of arrays for a 2-D potential")
    for i, a in enumerate(axes):
        if a.ndim != 1 or len(a) < 3 or not np.all(np.isfinite(a)):
            raise ValueError(f"grid axis {i} must be a finite 1-D array of >= 3 points")
        h = np.diff(a)
        if np.any(h <= 0) or not np.allclose(h, h[0], rtol=1e-9):
            raise ValueError(f"grid axis {i} must be equally spaced and increasing")
    mesh = np.meshgrid(*axes, indexing="ij")
    pts = np.stack([m.ravel() for m in mesh], axis=1)
    return axes, pts


def _sqra(potential: Potential, beta: float, grid):
    """Q (sparse generator), its symmetrisation S = pi^{1/2} Q pi^{-1/2} and ln pi (flat), with the shape."""
    beta = real(beta, "beta", 0.0, low_open=True)
    axes, pts = _axes(potential, grid)
    shape = tuple(len(a) for a in axes)
    energy = potential.value(pts)
    if not np.all(np.isfinite(energy)):
        raise ValueError("potential returned NaN or infinite values on the grid")
    idx = np.arange(energy.size).reshape(shape)
    rows, cols, vals, sym_vals = [], [], [], []
    for axis, a in enumerate(axes):
        h = a[1] - a[0]
        i = np.take(idx, np.arange(shape[axis] - 1), axis=axis).ravel()
        j = np.take(idx, np.arange(1, shape[axis]), axis=axis).ravel()
        de = np.clip(beta * (energy[j] - energy[i]), -1400.0, 1400.0)  # keep exp finite; such rates are ~0
        rows += [i, j]
        cols += [j, i]
        vals += [np.exp(-0.5 * de) / (beta * h * h), np.exp(0.5 * de) / (beta * h * h)]
        sym_vals += [np.full(i.size, 1.0 / (beta * h * h))] * 2  # sqrt(pi_i / pi_j) q_ij = 1 / (beta h^2)
    rows, cols = np.concatenate(rows), np.concatenate(cols)
    n = energy.size
    q = sparse.coo_matrix((np.concatenate(vals), (rows, cols)), shape=(n, n)).tocsr()
    diag = -np.asarray(q.sum(axis=1)).ravel()
    q = (q + sparse.diags(diag)).tocsr()
    sym = (sparse.coo_matrix((np.concatenate(sym_vals), (rows, cols)), shape=(n, n)) + sparse.diags(diag)).tocsr()
    log_pi = -beta * (energy - energy.min())
    log_pi -= np.log(np.exp(log_pi).sum())
    return q, sym, log_pi, axes, shape


def generator_matrix(potential: Potential, beta: float, grid) -> tuple[sparse.csr_matrix, np.ndarray]:
    """The SqRA generator Q (sparse, n_cells x n_cells, rows sum to 0) and the discrete Gibbs weights pi (flat).

    Q_{ij} = exp(-beta (L_j - L_i) / 2) / (beta h^2) for grid neighbours i, j along an axis of spacing h.
    """
    q, _, log_pi, _, _ = _sqra(potential, beta, grid)
    return q, np.exp(log_pi)


def spectrum(potential: Potential, beta: float, grid, k: int = 4) -> Spectrum:
    """The ``k`` smallest eigenvalues and eigenfunctions of the discretised generator (sparse shift-invert on the
    symmetrised matrix, whose off-diagonals are the constants 1 / (beta h^2), so no Gibbs weight is divided by).
    Eigenfunctions are set to 0 where pi < 1e-24 (no probability there, and dividing the eigenvector by
    sqrt(pi) would amplify its round-off).

    Example
    -------
    >>> import numpy as np
    >>> from ibtheory.dynamics import Quadratic
    >>> s = spectrum(Quadratic(2.0), beta=1.0, grid=np.linspace(-6, 6, 601), k=3)
    >>> np.round(s.eigenvalues, 3).tolist()  # n k for L = k x^2 / 2
    [0.0, 2.0, 4.0]
    """
    if int(k) != k or k < 2:
        raise ValueError(f"k must be an integer >= 2, got {show(k)}")
    q, sym, log_pi, axes, shape = _sqra(potential, beta, grid)
    if k >= q.shape[0] - 1:
        raise ValueError(f"k = {k} is too large for a grid of {q.shape[0]} cells")
    scale = float(abs(q.diagonal()).max())
    vals, vecs = eigsh(-sym, k=int(k), sigma=-1e-6 * scale, which="LM", tol=1e-12)
    order = np.argsort(vals)
    vals, vecs = vals[order], vecs[:, order]
    ok = log_pi > np.log(1e-24)
    phi = np.zeros_like(vecs)
    phi[ok] = vecs[ok] * np.exp(-0.5 * log_pi[ok])[:, None]  # right eigenvectors of Q; E_pi[phi^2] = |v|^2
    pi = np.exp(log_pi)
    # sign convention: E_pi[phi_k x_0] >= 0 (phi_k increasing along the first coordinate on average); for modes
    # orthogonal to x_0, the largest |phi_k| is positive
    proj = (pi[:, None] * phi * _axes(potential, grid)[1][:, :1]).sum(axis=0)
    big = phi[np.argmax(np.abs(phi), axis=0), np.arange(phi.shape[1])]
    phi *= np.where(np.abs(proj) > 1e-8, np.sign(proj), np.sign(big))[None, :]
    vals[0] = max(vals[0], 0.0)
    return Spectrum(vals, phi.T.reshape((int(k),) + shape), axes, pi.reshape(shape))


def spectral_gap(potential: Potential, beta: float, grid) -> float:
    """The spectral gap lambda_1 (1 / time) of the discretised Langevin generator; see :func:`spectrum`."""
    return spectrum(potential, beta, grid, k=2).gap


def fit_decay_rate(times: ArrayLike, values: ArrayLike, t_min: float, t_max: float, limit: float = 0.0) -> float:
    """Exponential rate r of ``values`` ~ c exp(-r t) + limit: least-squares slope of -ln|values - limit| over
    t_min <= t <= t_max (1 / time units of ``times``)."""
    t = np.asarray(times, dtype=np.float64)
    v = np.abs(np.asarray(values, dtype=np.float64) - limit)
    m = (t >= t_min) & (t <= t_max) & (v > 0)
    if m.sum() < 3:
        raise ValueError("fit_decay_rate needs at least 3 positive points in the window [t_min, t_max]")
    slope = np.polyfit(t[m], np.log(v[m]), 1)[0]
    return float(-slope)


def relaxation_times(potential_of_barrier, barriers: ArrayLike, beta: float, grid) -> xr.Dataset:
    """Relaxation time 1 / lambda_1 against the barrier height: ``potential_of_barrier(h)`` builds the potential.

    Returns a Dataset over ``barrier`` with ``gap`` (1 / time), ``relaxation_time`` (time) and
    ``barrier_over_temperature`` = beta h, the quantity in the exponent of Arrhenius/Kramers' law.
    """
    beta = real(beta, "beta", 0.0, low_open=True)
    h = np.asarray(barriers, dtype=np.float64).reshape(-1)
    gaps = np.array([spectral_gap(potential_of_barrier(float(b)), beta, grid) for b in h])
    return xr.Dataset(
        {"gap": ("barrier", gaps, {"units": "1/time"}), "relaxation_time": ("barrier", 1.0 / gaps),
         "barrier_over_temperature": ("barrier", beta * h)},
        coords={"barrier": h}, attrs={"beta": float(beta)},
    )
