"""The Information Bottleneck at one beta: self-consistent encoder, decoder and marginal (stochastic or deterministic).

Problem (Tishby, Pereira & Bialek 1999): over encoders p(t|x), minimise the Lagrangian

    L[p(t|x)] = I(X;T) - beta I(T;Y)          (bits; beta > 0 is unit-free)

for a joint p(x, y).  Its stationary points satisfy the self-consistent equations

    p(t|x) = p(t) exp(-beta KL[p(y|x) || p(y|t)]) / Z(x, beta),    KL in nats,
    p(t)   = sum_x p(x) p(t|x),    p(y|t) = sum_x p(y|x) p(x|t),

which :func:`solve` iterates in log space (no underflow at beta = 1e5 or with p(y|x) in {0, 1}), on the minimal
sufficient statistic of X (identical rows p(y|x) share their encoder), with SQUAREM acceleration.  With
``deterministic=True`` it solves the deterministic IB of Strouse & Schwab (2017), L = H(T) - beta I(T;Y) with a hard
encoder t(x) = argmax_t [ln p(t) - beta KL[p(y|x) || p(y|t)]]; then I(X;T) = H(T).

For |Y| = 2 (and, with ``certify=True``, |Y| = 3) the solution is certified (``ibtheory.ib.certify``): ``gap``
bounds from above, in bits, how much the Lagrangian of the returned solution exceeds the global minimum; a gap
above ``gap_tol`` seeds a new cluster at the certificate's maximiser and re-solves, so a local optimum is not
returned as the optimum.

References
----------
1. N. Tishby, F. C. Pereira, W. Bialek, "The information bottleneck method", Allerton 1999, arXiv:physics/0004057.
2. D. J. Strouse and D. J. Schwab, "The deterministic information bottleneck", Neural Comput. 29 (2017).
3. R. Varadhan and C. Roland, SQUAREM, Scand. J. Statist. 35 (2008).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from .._validate import flag, integer, real
from .._validate import seed as check_seed
from ..info import _real_array, kl_matrix
from . import _iterate as it
from ._improve import certify_and_improve
from ._problem import Reduced, check_size, ib_problem
from ._solution import IBSolution, solution_from_state

__all__ = ["IBSolution", "solve", "kl_rows", "self_consistent_encoder", "solve_reduced", "solution_from_state"]


def kl_rows(p_y_x: ArrayLike, decoder: ArrayLike, units: str = "bits") -> np.ndarray:
    """Pairwise divergences KL[p(y|x) || p(y|t)] of shape (n_x, n_t), in bits (``units="nats"`` for nats).

    KL[a || b] = sum_y a_y log(a_y / b_y), 0 log 0 = 0, +inf where a puts mass on a zero of b.  The checked front
    end of ``ibtheory.info.kl_matrix`` (the kernel of the IB iteration).

    >>> kl_rows([[1.0, 0.0]], [[0.5, 0.5], [1.0, 0.0]]).tolist()
    [[1.0, 0.0]]
    """
    if units not in ("bits", "nats"):
        raise ValueError(f"units must be 'bits' or 'nats', got {units!r}")
    W = _real_array(p_y_x, "p_y_x")
    dec = _real_array(decoder, "decoder")
    if W.ndim != 2 or dec.ndim != 2 or W.shape[1] != dec.shape[1]:
        raise ValueError(f"p_y_x (n_x, n_y) and decoder (n_t, n_y) must share n_y, got {W.shape} and {dec.shape}")
    for nm, a in (("p_y_x", W), ("decoder", dec)):
        if not np.all(np.isfinite(a)) or np.any(a < 0):
            raise ValueError(f"{nm} must be finite and non-negative")
    with np.errstate(divide="ignore"):
        return kl_matrix(W, np.log(dec), units=units).T


def self_consistent_encoder(p_x: ArrayLike, p_y_x: ArrayLike, decoder: ArrayLike, p_t: ArrayLike,
                            beta: float) -> np.ndarray:
    """Right-hand side of the IB encoder equation, shape (n_x, n_t):

        p(t|x) = p(t) exp(-beta KL[p(y|x) || p(y|t)]) / Z(x, beta),   KL in nats,

    computed in log space.  ``p_x`` (n_x,) is only validated (it does not enter the formula); rows sum to 1.

    >>> self_consistent_encoder([0.5, 0.5], [[1, 0], [0, 1]], [[1, 0], [0, 1]], [0.5, 0.5], 2.0).tolist()
    [[1.0, 0.0], [0.0, 1.0]]
    """
    beta = real(beta, "beta", 0.0, low_open=True)
    px = _real_array(p_x, "p_x")
    pt = _real_array(p_t, "p_t")
    if px.ndim != 1 or not np.all(np.isfinite(px)) or np.any(px < 0):
        raise ValueError("p_x must be a 1-D finite non-negative array")
    if pt.ndim != 1 or not np.all(np.isfinite(pt)) or np.any(pt < 0) or pt.sum() <= 0:
        raise ValueError("p_t must be a 1-D finite non-negative array with positive sum")
    D = kl_rows(p_y_x, decoder, units="nats")
    if D.shape != (px.size, pt.size):
        raise ValueError(
            f"shapes disagree: p_x {px.shape}, p_y_x rows {D.shape[0]}, decoder/p_t {D.shape[1]}/{pt.size}"
        )
    with np.errstate(divide="ignore"):
        L = np.log(pt)[None, :] - beta * D
    return np.exp(L - it.lse(L, axis=1)[:, None])


def _initial_state(prob: Reduced, init, n_t: int | None, seed) -> it.State:
    if isinstance(init, it.State):
        return init
    if isinstance(init, IBSolution):
        return it.State(np.log(np.maximum(init.p_t, 1e-300)), _log(init.decoder))
    if init is None or (isinstance(init, str) and init in ("identity", "random")):
        if n_t is None and init != "random":
            return it.from_encoder(prob, np.eye(prob.n_s))
        k = prob.n_s if n_t is None else n_t
        rng = np.random.default_rng(0 if seed is None else seed)
        enc = rng.dirichlet(np.ones(k), size=prob.n_s)
        return it.from_encoder(prob, enc)
    if isinstance(init, str):
        raise ValueError(f"init must be None, 'identity', 'random', an encoder array or an IBSolution, got {init!r}")
    enc = _real_array(init, "init")
    if enc.ndim != 2 or enc.shape[0] != prob.n_x or not np.all(np.isfinite(enc)) or np.any(enc < 0):
        raise ValueError(f"init encoder must be a finite non-negative (n_x={prob.n_x}, n_t) array, got {enc.shape}")
    rows = enc[prob.classes >= 0]
    if not np.allclose(rows.sum(axis=1), 1.0, atol=1e-8):
        raise ValueError("init encoder rows must sum to 1")
    enc_s = np.zeros((prob.n_s, enc.shape[1]))
    np.add.at(enc_s, prob.classes[prob.classes >= 0], rows)
    enc_s /= enc_s.sum(axis=1, keepdims=True)
    return it.from_encoder(prob, enc_s)


def _log(a: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore"):
        return np.log(np.asarray(a, dtype=np.float64))


def solve_reduced(prob: Reduced, beta: float, state: it.State, tol: float = 1e-12, max_iter: int = 20000,
                  deterministic: bool = False, accelerate: bool = True, certify: bool | None = None,
                  gap_tol: float = 1e-7, max_seeds: int = 8) -> IBSolution:
    """Solve on an already reduced problem from ``state`` (used by :func:`solve` and the curve)."""
    if deterministic:
        st, n, res = it.dib_fixed_point(prob, beta, state, max_iter)
        return solution_from_state(prob, beta, st, n, res, 0.5, deterministic=True)
    st, n, res = it.converge(prob, beta, state, tol, max_iter, accelerate)
    do_cert = prob.n_y == 2 if certify is None else certify
    if not do_cert:
        return solution_from_state(prob, beta, st, n, res, tol)

    best, _ = certify_and_improve(prob, solution_from_state(prob, beta, st, n, res, tol), tol, max_iter, gap_tol,
                       max_seeds=max_seeds)
    return best


def solve(p_xy: ArrayLike, beta: float, init=None, n_t: int | None = None, tol: float = 1e-12,
          max_iter: int = 20000, deterministic: bool = False, accelerate: bool = True,
          certify: bool | None = None, seed: int | np.random.Generator | None = None) -> IBSolution:
    """Solve the IB self-consistent equations for the joint ``p_xy`` at one ``beta``.

    Minimises L = I(X;T) - beta I(T;Y) (bits) by iterating, on the minimal sufficient statistic of X,

        p(t|x) = p(t) exp(-beta KL[p(y|x) || p(y|t)]) / Z(x, beta),  p(t) = sum_x p(x) p(t|x),
        p(y|t) = sum_x p(y|x) p(x|t),

    where KL is in nats, until the fixed-point residual is below ``tol``.

    Parameters
    ----------
    p_xy : (n_x, n_y) joint distribution (or a task Dataset with ``p_xy``); rows with p(x) = 0 are dropped
        internally (their encoder row is p(t)).
    beta : trade-off, > 0 (unit-free).
    init : None or "identity" (one cluster per class of the sufficient statistic, the natural start at high beta),
        "random" (Dirichlet encoder with ``n_t`` clusters from ``seed``), an encoder array (n_x, n_t), or an
        :class:`IBSolution` (warm start).
    n_t : number of clusters for a random start (default: number of sufficient-statistic classes).  Before any
        work the working set n_t (|X| + |S| + |Y|) float64 cells is checked against
        ``ibtheory.ib._problem.MAX_CELLS`` (2 GiB).
    tol, max_iter : convergence tolerance (> 0) on max |G(theta) - theta| and the budget of map evaluations (>= 1).
    deterministic : solve the deterministic IB (hard encoder) instead.
    accelerate : SQUAREM acceleration (False gives the plain iteration).
    certify : compute the certificate ``gap`` and re-seed while it exceeds 1e-7 bits (default: when |Y| = 2;
        ``True`` certifies |Y| = 3 too, slower).
    seed : seed (an integer in [0, 2**63 - 1]) or Generator for ``init="random"``.

    Returns
    -------
    IBSolution with encoder (n_x, n_t), decoder (n_t, n_y), p_t (n_t,), I_XT, I_TY, lagrangian (bits), ...

    Examples
    --------
    Binary symmetric source with crossover 0.1 at a large beta: T copies X (up to exp(-50 x 1.76)), so
    I(X;T) = 1 bit and I(T;Y) = 1 - h(0.1) = 0.531 bits.

    >>> s = solve([[0.45, 0.05], [0.05, 0.45]], beta=50.0)
    >>> round(s.I_XT, 3), round(s.I_TY, 3)
    (1.0, 0.531)
    """
    beta = real(beta, "beta", 0.0, low_open=True)
    tol = real(tol, "tol", 0.0, low_open=True)
    max_iter = integer(max_iter, "max_iter", 1)
    n_t = None if n_t is None else integer(n_t, "n_t", 1)
    if seed is not None and not isinstance(seed, np.random.Generator):
        seed = check_seed(seed)
    deterministic = flag(deterministic, "deterministic")
    accelerate = flag(accelerate, "accelerate")
    certify = flag(certify, "certify", allow_none=True)
    if not (init is None or isinstance(init, (str, it.State, IBSolution))):  # an encoder array (n_x, n_t)
        if not (isinstance(init, (list, tuple)) or hasattr(init, "__array__")):
            raise ValueError(f"init must be None, 'identity', 'random', an encoder array or an IBSolution, got "
                             f"{type(init).__name__}")
        init = _real_array(init, "init")
    prob = ib_problem(p_xy)
    if isinstance(init, np.ndarray):
        k = int(init.shape[-1]) if init.ndim >= 1 else 1
    elif isinstance(init, (IBSolution, it.State)):
        k = int(init.p_t.size) if isinstance(init, IBSolution) else int(init.log_pt.size)
    else:
        k = prob.n_s if n_t is None else n_t
    check_size(prob, k, what=f"solve with {k} clusters", hint="start from fewer clusters (n_t=..., a random start)")
    state = _initial_state(prob, init, n_t, seed)
    return solve_reduced(prob, beta, state, tol=tol, max_iter=max_iter, deterministic=deterministic,
                         accelerate=accelerate, certify=False if deterministic else certify)
