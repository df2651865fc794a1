"""A layer's encoder p(t|x) on the task's x as a sparse table, its Markov decoder and IB distortions.

A layer T of a network trained on a task with exact p(x, y) defines an encoder p(t|x): deterministic from binned
activations (:func:`binned_encoder`), stochastic from the ensemble of repeats (:func:`ensemble_encoder`) or from a
noisy layer T = h(X) + N(0, sigma^2 I) (:func:`noisy_encoder`).  Through the Markov chain Y - X - T it has the
decoder p(y|t) = sum_x p(y|x) p(x|t).  :func:`layer_encoder` computes everything the bound and the IB equations need:
I(X;T), I(T;Y) (bits), and the distortion d(x,t) = KL[p(y|x) || p(y|t)] on the classes of equal p(y|x) (d depends
on x only through p(y|x), so a 4096-pattern task with 39 classes costs a 39 x n_t matrix).  The classes are those of
the IB solver's own reduction (:func:`ibtheory.ib.reduce`, with ``split_support=True``).

References
----------
1. N. Tishby, F. C. Pereira, W. Bialek, "The information bottleneck method", 1999.
2. R. Shwartz-Ziv and N. Tishby, "Opening the black box of deep neural networks via information", 2017.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from numpy.typing import ArrayLike

from .._validate import integer, real
from ..estimators import binned_codes
from ..ib import Reduced, reduce
from ..info import kl_rowwise, mi_of_cells, mutual_information, validate_distribution

__all__ = [
    "LayerEncoder",
    "encoder_from_codes",
    "encoder_from_table",
    "layer_encoder",
    "binned_encoder",
    "ensemble_encoder",
    "noisy_encoder",
    "TaskTables",
    "task_tables",
    "merge_equal_decoders",
]


@dataclass(frozen=True)
class LayerEncoder:
    """A layer's encoder p(t|x) on the task's x, with the quantities the IB equations need.

    Attributes
    ----------
    encoder : scipy.sparse.csr_matrix, shape (n_x, n_t)
        p(t|x), rows sum to 1 (only occupied t are kept).
    p_t : ndarray (n_t,)
    decoder : ndarray (n_t, n_y)
        p(y|t) = sum_x p(y|x) p(x|t) (the Markov-chain decoder).
    I_XT, I_TY : float
        bits.
    distortion : ndarray (n_c, n_t)
        d(c, t) = KL[p(y|c) || p(y|t)] in nats for each class c of equal p(y|x) (inf where p(y|t) = 0 < p(y|c)).
    p_c : ndarray (n_c,)
        probability of each class.
    expected_distortion : float
        E_{p(x,t)}[d(x,t)] in nats (equals (I(X;Y) - I(T;Y)) ln 2 for the Markov decoder).
    """

    encoder: sp.csr_matrix
    p_t: np.ndarray
    decoder: np.ndarray
    I_XT: float
    I_TY: float
    distortion: np.ndarray
    p_c: np.ndarray
    expected_distortion: float


def encoder_from_codes(codes: ArrayLike) -> sp.csr_matrix:
    """p(t|x) from integer state codes: ``codes`` (n_x,) for a deterministic encoder t = codes[x], or
    (n_draws, n_x) for a stochastic one pooled over draws (ensemble repeats or noise samples):
    p(t|x) = #{k : codes[k, x] = t} / n_draws.  States are renumbered 0..n_t-1 in sorted code order.
    """
    c = np.asarray(codes)
    if c.ndim == 1:
        c = c[None, :]
    if c.ndim != 2 or c.size == 0 or not np.issubdtype(c.dtype, np.integer):
        raise ValueError(f"codes must be a non-empty integer array (n_x,) or (n_draws, n_x), got {c.dtype} {c.shape}")
    n_draws, n_x = c.shape
    uniq, t = np.unique(c, return_inverse=True)
    rows = np.broadcast_to(np.arange(n_x), c.shape).ravel()
    enc = sp.coo_matrix((np.full(c.size, 1.0 / n_draws), (rows, t.ravel())), shape=(n_x, uniq.size))
    return enc.tocsr()


def binned_encoder(
    activations: ArrayLike, n_bins: int = 30, limits=(-1.0, 1.0), scheme: str = "width"
) -> sp.csr_matrix:
    """Deterministic encoder of one network's layer: p(t|x) = [B(h(x)) = t] for binned activations (n_x, units).

    The binning is ``ibtheory.estimators.binned_codes`` (the estimator's own encoder).
    """
    a = np.asarray(activations)
    if a.ndim != 2:
        raise ValueError(f"activations must have shape (n_x, units) for one network, got {a.shape}")
    return encoder_from_codes(binned_codes(a, n_bins=n_bins, limits=limits, scheme=scheme))


def ensemble_encoder(
    activations: ArrayLike, n_bins: int = 30, limits=(-1.0, 1.0), scheme: str = "width"
) -> sp.csr_matrix:
    """Stochastic encoder pooled over an ensemble: activations (n_repeats, n_x, units) binned on one shared grid,
    p(t|x) = (1/R) #{r : B(h_r(x)) = t} (the "extended" ensemble encoder of Shwartz-Ziv & Tishby 2017).
    """
    a = np.asarray(activations)
    if a.ndim != 3:
        raise ValueError(f"activations must have shape (n_repeats, n_x, units), got {a.shape}")
    codes = binned_codes(a.reshape(-1, a.shape[-1]), n_bins=n_bins, limits=limits, scheme=scheme)
    return encoder_from_codes(codes.reshape(a.shape[:2]))


def noisy_encoder(
    activations: ArrayLike,
    sigma: float = 0.1,
    n_draws: int = 64,
    seed: int | np.random.Generator | None = 0,
    n_bins: int = 30,
    limits=(-1.0, 1.0),
) -> sp.csr_matrix:
    """Stochastic encoder of a noisy layer T = h(X) + N(0, sigma^2 I), sampled: ``n_draws`` noise draws per
    pattern, binned on the equal-width grid, pooled: p(t|x) = #{k : B(h(x) + sigma z_k) = t} / n_draws.

    activations: (n_x, units) of one network.  The sampled table converges to the quadrature
    prod_u [Phi((b_hi - h_u)/sigma) - Phi((b_lo - h_u)/sigma)] as n_draws grows (error O(n_draws^-1/2) per cell).
    """
    a = np.asarray(activations, dtype=np.float64)
    if a.ndim != 2:
        raise ValueError(f"activations must have shape (n_x, units) for one network, got {a.shape}")
    sigma = real(sigma, "sigma", 0.0, low_open=True)
    n_draws = integer(n_draws, "n_draws", 1)
    rng = np.random.default_rng(seed)
    noisy = a[None] + sigma * rng.standard_normal((n_draws,) + a.shape)
    codes = binned_codes(noisy.reshape(-1, a.shape[-1]), n_bins=n_bins, limits=limits)
    return encoder_from_codes(codes.reshape(noisy.shape[:2]))


def encoder_from_table(table: ArrayLike, name: str = "encoder") -> sp.csr_matrix:
    """Validate a dense or sparse p(t|x) table (n_x, n_t): non-negative, finite, rows summing to 1 (1e-8)."""
    enc = sp.csr_matrix(table, dtype=np.float64)
    data = enc.data
    if enc.shape[0] == 0 or enc.shape[1] == 0:
        raise ValueError(f"{name} must be a non-empty (n_x, n_t) table, got shape {enc.shape}")
    if not np.all(np.isfinite(data)) or np.any(data < 0):
        raise ValueError(f"{name} must have finite non-negative entries")
    rows = np.asarray(enc.sum(axis=1)).ravel()
    bad = np.flatnonzero(np.abs(rows - 1.0) > 1e-8)
    if bad.size:
        raise ValueError(f"{name} rows must sum to 1; row {bad[0]} sums to {rows[bad[0]]!r}")
    return enc


@dataclass(frozen=True)
class TaskTables:
    """The task's tables that every layer comparison reuses: the joint ``p_xy`` (n_x, n_y), ``p_x`` (n_x,) and
    ``reduced``, the task on its classes of equal p(y|x) (an :class:`ibtheory.ib.Reduced`): ``classes`` (n_x,; -1
    for p(x) = 0), ``p_c`` (n_c,) and ``p_y_c`` (n_c, n_y) are its ``classes``, ``p_s`` and ``W``."""

    p_xy: np.ndarray
    p_x: np.ndarray
    reduced: Reduced

    @property
    def classes(self) -> np.ndarray:
        return self.reduced.classes

    @property
    def p_c(self) -> np.ndarray:
        return self.reduced.p_s

    @property
    def p_y_c(self) -> np.ndarray:
        return self.reduced.W


def task_tables(p_xy: ArrayLike) -> TaskTables:
    """Validate ``p_xy`` (n_x, n_y) once and reduce x to the classes of equal p(y|x) (``ibtheory.ib.reduce``).

    Rows equal to 12 decimals *and* with the same support {y : p(y|x) > 0} share a class (``split_support=True``):
    d(x,t) = KL[p(y|x) || p(y|t)] is infinite where p(y|t) = 0 < p(y|x), so a row with a 1e-13 tail (the soft
    task's extreme patterns) must not be pooled with one that is exactly 0 there.
    """
    p = validate_distribution(p_xy, "p_xy", ndim=2)
    return TaskTables(p, p.sum(axis=1), reduce(p, split_support=True))


def layer_encoder(task: ArrayLike | TaskTables, encoder: ArrayLike | sp.spmatrix) -> LayerEncoder:
    """Everything the bound and the IB equations need about a layer's encoder p(t|x) on a task.

    task: the joint p(x,y) (n_x, n_y) or its :func:`task_tables`; encoder: a table (n_x, n_t) (dense or sparse;
    see :func:`encoder_from_codes`).  Unoccupied states (p(t) = 0) are dropped.

    >>> enc = layer_encoder([[0.5, 0.0], [0.0, 0.5]], np.eye(2))
    >>> round(enc.I_XT, 12), round(enc.I_TY, 12)
    (1.0, 1.0)
    """
    tab = task if isinstance(task, TaskTables) else task_tables(task)
    enc = encoder_from_table(encoder)
    if enc.shape[0] != tab.p_x.size:
        raise ValueError(f"encoder has {enc.shape[0]} rows but the task has n_x = {tab.p_x.size}")
    p_xt = sp.diags(tab.p_x) @ enc
    p_t = np.asarray(p_xt.sum(axis=0)).ravel()
    keep = np.flatnonzero(p_t > 0)
    enc, p_xt, p_t = enc[:, keep], p_xt[:, keep], p_t[keep]
    p_ty = np.asarray(enc.T @ tab.p_xy)  # (n_t, n_y) joint p(t, y)
    decoder = p_ty / p_t[:, None]
    coo = p_xt.tocoo()
    pos = coo.data > 0  # entries of x with p(x) = 0 carry no mass (and have no class)
    row, col, p_cell = coo.row[pos], coo.col[pos], coo.data[pos]
    i_xt = mi_of_cells(p_cell, tab.p_x[row], p_t[col])
    distortion = np.maximum(kl_rowwise(tab.p_y_c[:, None, :], decoder[None, :, :], "nats"), 0.0)
    expected = float(np.sum(p_cell * distortion[tab.classes[row], col]))
    return LayerEncoder(
        encoder=enc.tocsr(),
        p_t=p_t,
        decoder=decoder,
        I_XT=max(i_xt, 0.0),
        I_TY=mutual_information(p_ty / p_ty.sum()),
        distortion=distortion,
        p_c=tab.p_c,
        expected_distortion=expected,
    )


def merge_equal_decoders(encoder: sp.csr_matrix, decoder: np.ndarray, decimals: int = 10) -> sp.csr_matrix:
    """Merge the states of an encoder whose decoders p(y|t) agree (to ``decimals`` places): T' = p(y|T).

    T' is the minimal sufficient statistic of T for Y: I(T';Y) = I(T;Y), I(X;T') <= I(X;T).  IB solutions never
    keep two states with the same decoder, so this is the form in which a layer can satisfy the IB equations.
    """
    groups = np.unique(np.round(decoder, decimals), axis=0, return_inverse=True)[1].ravel()
    merge = sp.csr_matrix((np.ones(groups.size), (np.arange(groups.size), groups)))
    return (encoder @ merge).tocsr()
