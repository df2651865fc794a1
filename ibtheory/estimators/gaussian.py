"""Closed forms for noisy layers: the Gaussian channel bound, and Goldfeld et al.'s single noisy tanh neuron.

**Gaussian bound.**  Adding isotropic noise Z ~ N(0, sigma^2 I) to a layer T = h(X) gives

    I(X; T + Z) = h(T + Z) - h(Z) <= 1/2 log2 det(I + Sigma_T / sigma^2)   bits,

Sigma_T the p(x)-weighted covariance of the layer's units: among all densities of covariance Sigma_T + sigma^2 I
the Gaussian has the largest entropy, and h(T + Z | X) = h(Z).  Equality holds when T is Gaussian (a linear layer
on Gaussian inputs, Saxe et al. 2018's linear networks); for a layer over finitely many patterns it is an upper
bound, above the exact mixture information that the pairwise bounds of :mod:`ibtheory.estimators.kde` bracket.
The determinant is taken over min(units, n_x) dimensions (Sylvester: det(I + A^T A) = det(I + A A^T)).

**Single noisy neuron** (Goldfeld et al. 2019, their minimal example of compression by clustering): X uniform
on {-3, -1, 1, 3}, T = tanh(w X + b) + Z, Z ~ N(0, sigma^2).  T is a mixture of four Gaussians at c_i =
tanh(w x_i + b), so I(X;T) = h(T) - h(Z) is one-dimensional and computed here to ~1e-8 bits by Gauss-Hermite
quadrature.  It is 0 at w = 0, rises towards 2 bits as the four points separate (by more than a few sigma), and
falls towards 1 bit as w grows further: tanh saturates, tanh(w) and tanh(3w) both approach 1 (and their
negatives -1), so the points merge in pairs and only the sign of X is left.  The rise-then-fall of I(X;T) with a
weight is clustering, not a loss of injectivity of the deterministic map.

References
----------
1. A. M. Saxe et al., "On the information bottleneck theory of deep learning", ICLR 2018.
2. Z. Goldfeld et al., "Estimating information flow in deep neural networks", ICML 2019.
3. T. M. Cover and J. A. Thomas, *Elements of Information Theory*, 2nd ed., Wiley 2006, Thm. 8.6.5 (the Gaussian
   maximises entropy at fixed covariance).
"""

from __future__ import annotations

import numpy as np
import xarray as xr
from numpy.typing import ArrayLike

from .._validate import real, show
from ..info import LN2, validate_distribution
from ._common import validate_activations

__all__ = ["gaussian_information", "noisy_neuron_information", "noisy_neuron_curve"]

#: Gauss-Hermite nodes per mixture component: the worst case over separations (about 7 sigma between two
#: components) is ~2e-9 bits against 350 nodes; 100 nodes would give ~2e-7.
_NODES = 200
#: Elements of the (block, K, K, nodes) work array of :func:`noisy_neuron_information` (~16 MB of float64).
_BLOCK_ELEMENTS = 2**21


def gaussian_information(activations: ArrayLike, p_x: ArrayLike, noise_var: float = 0.1) -> np.ndarray:
    """1/2 log2 det(I + Sigma_T / noise_var) in bits for every slice of the leading dims of the activations.

    The information of the Gaussian channel T + N(0, noise_var I) with T Gaussian of the layer's covariance:
    exact for Gaussian T, an upper bound of I(X; T + Z) for any T (see the module docstring).

    Parameters
    ----------
    activations : array (..., n_x, units)
        Layer activations for all n_x patterns; trailing NaN padding units are ignored (zero variance); other NaN,
        any inf, or a slice with no real unit raise ``ValueError``.
    p_x : array (n_x,)
        Input distribution: Sigma_T = sum_x p(x) (h(x) - mu)(h(x) - mu)^T, mu = sum_x p(x) h(x).
    noise_var : sigma^2 > 0 (Saxe et al. 2018 use 0.1, as :func:`ibtheory.estimators.kde_information` does).

    Returns
    -------
    array of shape ``activations.shape[:-2]``, bits, >= 0.

    Example: one unit of variance 1 under noise of variance 1/3 carries 1/2 log2(1 + 3) = 1 bit.

    >>> round(float(gaussian_information([[-1.0], [1.0]], [0.5, 0.5], noise_var=1 / 3)), 12)
    1.0
    """
    noise_var = real(noise_var, "noise_var", 0.0, low_open=True)
    a, padding = validate_activations(activations)
    px = validate_distribution(p_x, "p_x", ndim=1)
    n_x, units = a.shape[-2:]
    if px.size != n_x:
        raise ValueError(f"p_x has {px.size} entries but activations have n_x = {n_x} patterns")
    x = a.reshape((-1, n_x, units)).astype(np.float64)
    if padding.any():
        x = np.nan_to_num(x, nan=0.0)
    centred = x - np.einsum("n,gnu->gu", px, x)[:, None, :]
    scaled = centred * (np.sqrt(px / noise_var)[None, :, None])  # rows sqrt(p(x)/sigma^2) (h(x) - mu)
    if units <= n_x:
        gram = np.matmul(scaled.transpose(0, 2, 1), scaled)  # (G, units, units): Sigma_T / sigma^2
    else:
        gram = np.matmul(scaled, scaled.transpose(0, 2, 1))  # (G, n_x, n_x): same non-zero eigenvalues
    gram += np.eye(gram.shape[-1])
    _, logdet = np.linalg.slogdet(gram)
    return np.clip(logdet / (2 * LN2), 0.0, None).reshape(a.shape[:-2])


def _real_values(value: ArrayLike, name: str) -> np.ndarray:
    """``value`` as a float64 array of finite real numbers (integers or floats), else ``ValueError`` naming it."""
    arr = np.asarray(value)
    if arr.dtype.kind not in "iuf":
        raise ValueError(f"{name} must hold real numbers, got {show(value)} (dtype {arr.dtype})")
    arr = arr.astype(np.float64)
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite (no NaN or inf), got {show(value)}")
    return arr


def _x_values(x_values: ArrayLike) -> np.ndarray:
    xs = _real_values(x_values, "x_values")
    if xs.ndim != 1 or xs.size == 0:
        raise ValueError(f"x_values must be a non-empty 1-D sequence of input values, got {show(x_values)}")
    if np.unique(xs).size != xs.size:
        raise ValueError(f"x_values must be distinct (X is uniform over them), got {show(x_values)}")
    return xs


def _mixture_information(centres: np.ndarray, sigma: float) -> np.ndarray:
    """I(X;T) in bits of T = c_X + N(0, sigma^2), X uniform over the K centres of each row of ``centres`` (M, K).

    With u_ij = (c_i - c_j) / sigma and xi ~ N(0, 1), in nats
        I = h(T) - h(Z) = -1/2 - (1/K) sum_i E_xi[ log (1/K) sum_j exp(-(u_ij + xi)^2 / 2) ],
    the expectation by Gauss-Hermite quadrature and the inner sum as a log-sum-exp.
    """
    k = centres.shape[-1]
    nodes, weights = np.polynomial.hermite.hermgauss(_NODES)
    shift = np.sqrt(2.0) * nodes  # xi = sqrt(2) * node for the weight exp(-node^2)
    weights = weights / np.sqrt(np.pi)
    out = np.empty(centres.shape[0])
    block = max(1, _BLOCK_ELEMENTS // (k * k * _NODES))
    for start in range(0, centres.shape[0], block):  # blocks of parameter values, vectorised within a block
        c = centres[start:start + block]
        u = (c[:, :, None] - c[:, None, :]) / sigma  # (m, i, j)
        e = u[..., None] + shift  # (m, i, j, nodes)
        e *= e
        e *= -0.5
        top = e.max(axis=2, keepdims=True)  # the j = i term (-xi^2 / 2) is never -inf
        lse = top[:, :, 0, :] + np.log(np.exp(e - top).sum(axis=2)) - np.log(k)  # (m, i, nodes)
        out[start:start + block] = -0.5 - (lse @ weights).mean(axis=-1)
    return np.clip(out / LN2, 0.0, np.log2(k))


def noisy_neuron_information(
    w: ArrayLike, b: ArrayLike = 0.0, sigma: float = 0.1, x_values: ArrayLike = (-3, -1, 1, 3)
) -> np.ndarray:
    """I(X;T) in bits of the noisy neuron T = tanh(w X + b) + N(0, sigma^2), X uniform over ``x_values``.

    Goldfeld et al. (2019)'s single-neuron example: X uniform on {-3, -1, 1, 3} (the default ``x_values``), I(X;T)
    plotted against the weight w at a fixed bias and a small noise level (b = 0 and sigma = 0.01 as we read their
    figure; check against the paper before quoting).  At b = 0 the curve is 0 at w = 0 (all points at tanh(b)),
    rises to about 2 bits as the four points separate by more than a few sigma, and falls towards 1 bit as tanh
    saturates and the points cluster in pairs near -1 and +1: with sigma = 0.01 it stays at 2 bits for w in about
    [0.1, 1.6] and is down to 1.02 bits at w = 3.2; with sigma = 0.1 (the default) it peaks at 1.95 bits near
    w = 0.4 and is at 1.10 bits at w = 1.6.  Computed as the entropy of the K-component Gaussian mixture minus
    h(Z) = 1/2 log2(2 pi e sigma^2), each component's expectation by 200-node Gauss-Hermite quadrature with a
    log-sum-exp mixture density (error below ~1e-8 bits for any separation of the components).

    Parameters
    ----------
    w, b : arrays of real numbers, broadcast against each other (finite).
    sigma : noise standard deviation > 0.
    x_values : the K >= 1 distinct input values, each of probability 1/K.

    Returns
    -------
    array of shape ``np.broadcast_shapes(np.shape(w), np.shape(b))``, bits, in [0, log2 K].

    >>> noisy_neuron_information([0.0, 1.0], sigma=1e-3).round(9).tolist()
    [0.0, 2.0]
    """
    sigma = real(sigma, "sigma", 0.0, low_open=True)
    xs = _x_values(x_values)
    wa = _real_values(w, "w")
    ba = _real_values(b, "b")
    try:
        shape = np.broadcast_shapes(wa.shape, ba.shape)
    except ValueError:
        raise ValueError(f"w and b must broadcast against each other, got shapes {wa.shape} and {ba.shape}") from None
    wf = np.broadcast_to(wa, shape).reshape(-1)
    bf = np.broadcast_to(ba, shape).reshape(-1)
    centres = np.tanh(wf[:, None] * xs[None, :] + bf[:, None])
    return _mixture_information(centres, sigma).reshape(shape)


def noisy_neuron_curve(
    ws: ArrayLike, b: float = 0.0, sigma: float = 0.1, x_values: ArrayLike = (-3, -1, 1, 3)
) -> xr.Dataset:
    """:func:`noisy_neuron_information` along the weights ``ws`` (1-D, non-empty) at one bias ``b``, for plotting.

    Returns a Dataset with dim and coordinate ``w`` and variable ``I_XT`` (bits); attrs ``b``, ``sigma``,
    ``x_values`` and ``model``.

    >>> ds = noisy_neuron_curve([0.0, 1.0], sigma=1e-3)
    >>> ds.I_XT.attrs["units"], ds.I_XT.values.round(9).tolist()
    ('bits', [0.0, 2.0])
    """
    wa = _real_values(ws, "ws")
    if wa.ndim != 1 or wa.size == 0:
        raise ValueError(f"ws must be a non-empty 1-D sequence of weights, got {show(ws)}")
    b = real(b, "b")
    sigma = real(sigma, "sigma", 0.0, low_open=True)
    xs = _x_values(x_values)
    values = noisy_neuron_information(wa, b, sigma, xs)
    return xr.Dataset(
        {"I_XT": ("w", values, {"units": "bits", "long_name": "I(X;T)"})},
        coords={"w": ("w", wa, {"long_name": "weight w"})},
        attrs={"b": b, "sigma": sigma, "x_values": xs,
               "model": "T = tanh(w X + b) + N(0, sigma^2), X uniform over x_values (Goldfeld et al. 2019)"},
    )
