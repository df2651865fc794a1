"""Tasks as exact joint distributions p(x, y), held in xarray Datasets.

Every task is a Dataset with at least ``p_xy(x, y)`` (float64, sums to 1).  Tasks whose inputs are bit patterns also
carry ``patterns(x, bit)`` (int8 0/1); the paper's task adds ``f(x)``, ``f_class(x)`` (index of the distinct value
of f, the minimal sufficient statistic of X for Y) and ``orbit(x)`` (orbit under the 120 icosahedral symmetries).
Attributes: ``name``, ``I_XY`` and ``H_Y`` in bits, ``deterministic`` (1 when every p(y|x) is one-hot).

The built-in tasks are also reachable by name: :data:`BUILTIN` maps each name to a :class:`BuiltinTask` (its
constructor and typed :class:`Param` list) and :func:`make` builds one, ``make("binary_symmetric", p=0.2)``.  The
commands (``ibtheory task``, ``curve``, ``solve``, ``train``) and the runner's grids read their task choices and
options from it, so a task added with :func:`register` is reachable everywhere.

References
----------
1. R. Shwartz-Ziv and N. Tishby, "Opening the black box of deep neural networks via information", arXiv:1703.00810.
2. A. Kolchinsky, B. D. Tracey, S. Van Kuyk, "Caveats for information bottleneck in deterministic scenarios",
   ICLR 2019.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

import numpy as np
import xarray as xr
from numpy.typing import ArrayLike
from scipy.optimize import brentq
from scipy.special import expit

from ._validate import flag, integer, probability, real, show
from ._validate import seed as check_seed
from .info import entropy, mutual_information, validate_distribution

__all__ = [
    "ICOSAHEDRON",
    "TISHBY_SOFT_GAMMA",
    "MAX_GRID",
    "MAX_SAMPLES",
    "tishby",
    "tishby_patterns",
    "tishby_f",
    "icosahedral_permutations",
    "gamma_for_information",
    "from_joint",
    "from_mat",
    "binary_symmetric",
    "from_samples",
    "gaussian_discretized",
    "sample",
    "sufficient_classes",
    "conditional",
    "Param",
    "BuiltinTask",
    "BUILTIN",
    "register",
    "unregister",
    "resolve",
    "make",
    "parameters",
]

_PHI = (1.0 + np.sqrt(5.0)) / 2.0
#: Unit vertex v_i of the icosahedron assigned to input bit i (the assignment in docs/tasks.md).
ICOSAHEDRON = np.array(
    [
        (0, 1, _PHI), (1, _PHI, 0), (0, 1, -_PHI), (-1, _PHI, 0), (_PHI, 0, -1), (0, -1, _PHI),
        (1, -_PHI, 0), (-1, -_PHI, 0), (-_PHI, 0, -1), (0, -1, -_PHI), (-_PHI, 0, 1), (_PHI, 0, 1),
    ],
    dtype=np.float64,
) / np.sqrt(1.0 + _PHI**2)
#: gamma of the soft rule that gives I(X;Y) = 0.90 bits (docs/tasks.md).
TISHBY_SOFT_GAMMA = 19.05
#: Largest grid side of :func:`gaussian_discretized` (a 4096 x 4096 table: 16.8 M cells, ~130 MB per array).
MAX_GRID = 4096
#: Largest number of examples :func:`sample` draws in one call (100 M: ~2.4 GB with 12-bit features).
MAX_SAMPLES = 10**8


def tishby_patterns() -> np.ndarray:
    """All 4096 12-bit patterns as an int8 array (4096, 12); row r is r in binary, most significant bit in column 0."""
    r = np.arange(4096)[:, None]
    return ((r >> (11 - np.arange(12))[None, :]) & 1).astype(np.int8)


def tishby_f(patterns: np.ndarray) -> np.ndarray:
    """f(x) = sum_i x_i + |sum_i x_i v_i| for rows x of 0/1 bits (spherically symmetric score)."""
    x = np.asarray(patterns, dtype=np.float64)
    return x.sum(axis=1) + np.linalg.norm(x @ ICOSAHEDRON, axis=1)


def icosahedral_permutations() -> np.ndarray:
    """The 120 symmetries of the icosahedron (rotations and reflections) as bit permutations, shape (120, 12).

    Row g satisfies ``ICOSAHEDRON[perm[g]] = ICOSAHEDRON @ A_g.T`` for an orthogonal A_g.  Every symmetry maps the
    ordered triangle (v0, v_a, v_b) of mutually adjacent vertices to another such triangle; there are 12*5*2 = 120.
    """
    v = ICOSAHEDRON
    gram = v @ v.T
    adjacent = np.isclose(gram, 1.0 / np.sqrt(5.0))
    a, b = np.flatnonzero(adjacent[0])[:2]
    if not adjacent[a, b]:
        b = next(j for j in np.flatnonzero(adjacent[0]) if adjacent[a, j])
    base_inv = np.linalg.inv(v[[0, a, b]].T)
    perms = []
    for i in range(12):
        for j in np.flatnonzero(adjacent[i]):
            for k in np.flatnonzero(adjacent[i] & adjacent[j]):
                A = v[[i, j, k]].T @ base_inv
                images = v @ A.T
                match = np.argmax(images @ v.T, axis=1)
                perms.append(match)
    out = np.array(perms)
    assert out.shape == (120, 12)
    return out


def _orbits(patterns: np.ndarray) -> np.ndarray:
    """Orbit index (0..n_orbits-1) of each pattern under the icosahedral bit permutations."""
    perms = icosahedral_permutations()
    weights = 1 << (11 - np.arange(12))
    codes = (patterns[:, perms] * weights).sum(axis=-1)  # (4096, 120)
    rep = codes.min(axis=1)
    return np.unique(rep, return_inverse=True)[1]


def _soft_p1(f: np.ndarray, theta: float, sd: float, gamma: float) -> np.ndarray:
    return expit(gamma * (f - theta) / sd)


def gamma_for_information(bits: float) -> float:
    """The gamma of the paper's soft rule whose I(X;Y) equals ``bits`` (0 < bits < 0.999157), by Brent's method."""
    pats = tishby_patterns()
    f = tishby_f(pats)
    theta, sd = f.mean(), f.std()
    hard = mutual_information(_joint(np.full(4096, 1 / 4096), (f > theta).astype(float)))
    bits = real(bits, "bits")
    if not 0 < bits < hard:
        raise ValueError(f"bits must lie in (0, {hard:.6f}) for the paper's task, got {show(bits)}")

    def gap(log_gamma: float) -> float:
        p1 = _soft_p1(f, theta, sd, np.exp(log_gamma))
        return mutual_information(_joint(np.full(4096, 1 / 4096), p1)) - bits

    return float(np.exp(brentq(gap, np.log(1e-3), np.log(1e4), xtol=1e-12)))


def _joint(p_x: np.ndarray, p1: np.ndarray) -> np.ndarray:
    return np.stack([p_x * (1 - p1), p_x * p1], axis=1)


def conditional(p_xy: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Split a joint table into p(x) (n_x,) and p(y|x) (n_x, n_y); rows with p(x) = 0 get the uniform p(y|x)."""
    p = validate_distribution(p_xy, "p_xy", ndim=2)
    p_x = p.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        p_y_x = np.where(p_x[:, None] > 0, p / p_x[:, None], 1.0 / p.shape[1])
    return p_x, p_y_x


def sufficient_classes(p_xy: ArrayLike, decimals: int = 12) -> np.ndarray:
    """Class index of each x under the minimal sufficient statistic of X for Y: x ~ x' iff p(y|x) = p(y|x').

    Rows are compared after rounding to ``decimals`` places (an integer in [0, 17]).  Classes are numbered in order
    of first appearance of their sorted representative (``numpy.unique`` order).
    """
    decimals = integer(decimals, "decimals", 0, 17)
    _, p_y_x = conditional(p_xy)
    return np.unique(np.round(p_y_x, decimals), axis=0, return_inverse=True)[1].ravel()


def from_joint(p_xy: ArrayLike, name: str = "custom", normalize: bool = False, **attrs) -> xr.Dataset:
    """Wrap a joint table (n_x, n_y) as a task Dataset with ``p_xy`` and the information attributes."""
    if not isinstance(name, str) or not name:
        raise ValueError(f"name must be a non-empty string, got {show(name)}")
    normalize = flag(normalize, "normalize")
    p = validate_distribution(p_xy, "p_xy", ndim=2, normalize=normalize)
    p_x, p_y_x = conditional(p)
    deterministic = bool(np.all(np.isclose(p_y_x[p_x > 0].max(axis=1), 1.0, atol=1e-12, rtol=0)))
    ds = xr.Dataset(
        {"p_xy": (("x", "y"), p, {"long_name": "joint probability p(x,y)", "units": "1"})},
        coords={"x": np.arange(p.shape[0]), "y": np.arange(p.shape[1])},
    )
    ds.attrs.update(
        name=name,
        I_XY=mutual_information(p),
        H_Y=entropy(p.sum(axis=0)),
        H_X=entropy(p_x),
        deterministic=int(deterministic),
        info_units="bits",
        **attrs,
    )
    return ds


def tishby(gamma: float | None = None) -> xr.Dataset:
    """The paper's 12-bit icosahedral task with its exact joint p(x, y).

    X uniform over the 4096 patterns; f(x) = sum_i x_i + |sum_i x_i v_i|; theta = mean of f.  Hard rule
    (``gamma=None``): y = [f(x) > theta], I(X;Y) = H(Y) = 0.999157 bits.  Soft rule:
    p(y=1|x) = 1 / (1 + exp(-gamma (f(x) - theta) / sd(f))), sd the population standard deviation; gamma = 19.05
    gives I(X;Y) = 0.90 bits.

    Returns a Dataset with ``p_xy(x, y)``, ``patterns(x, bit)``, ``f(x)``, ``f_class(x)``, ``orbit(x)``.

    >>> round(tishby().attrs["I_XY"], 6)
    0.999157
    """
    if gamma is not None:
        try:
            gamma = real(gamma, "gamma", 0.0, low_open=True)
        except ValueError as exc:
            raise ValueError(f"{exc}; gamma is a positive finite number, or None for the hard labels") from None
    pats = tishby_patterns()
    f = tishby_f(pats)
    theta, sd = float(f.mean()), float(f.std())
    p1 = (f > theta).astype(np.float64) if gamma is None else _soft_p1(f, theta, sd, gamma)
    ds = from_joint(
        _joint(np.full(4096, 1.0 / 4096), p1),
        name="tishby",
        gamma=-1.0 if gamma is None else float(gamma),
        theta=theta,
        sd_f=sd,
        rule="hard" if gamma is None else "soft",
    )
    f_class = np.unique(np.round(f, 9), return_inverse=True)[1].ravel()
    ds["patterns"] = (("x", "bit"), pats, {"long_name": "input bit pattern"})
    ds["f"] = ("x", f, {"long_name": "f(x) = sum x_i + |sum x_i v_i|"})
    ds["f_class"] = ("x", f_class, {"long_name": "index of the distinct value of f (sufficient statistic)"})
    ds["orbit"] = ("x", _orbits(pats), {"long_name": "orbit under the 120 icosahedral symmetries"})
    ds = ds.assign_coords(bit=np.arange(12))
    return ds


def _mat_values(mat: dict, key: str, path: Path) -> np.ndarray:
    """Array ``mat[key]`` of a loaded .mat file; ``ValueError`` unless its entries are real numbers or logicals."""
    arr = np.asarray(mat[key])
    if arr.dtype.kind not in "biuf":
        what = {"c": "complex numbers", "O": "a cell array or struct", "U": "text", "S": "text"}.get(
            arr.dtype.kind, f"dtype {arr.dtype}")
        raise ValueError(f"{key!r} in {str(path)!r} must hold 0/1 numbers, got {what}")
    return arr


def _first_not_binary(arr: np.ndarray) -> tuple[tuple[int, ...], float] | None:
    """Index and value of the first entry of ``arr`` that is not exactly 0 or 1 (NaN included), or None."""
    bad = np.argwhere(~np.isin(arr, (0, 1)))
    if bad.size == 0:
        return None
    idx = tuple(int(i) for i in bad[0])
    return idx, arr[idx].item()


def from_mat(path: str | os.PathLike) -> xr.Dataset:
    """Load one of the authors' .mat files (keys ``F`` (n, bits) and ``y`` (1, n)) as a task with uniform p(x).

    Row i of ``F`` is the input pattern x_i (0/1 bits) with p(x_i) = 1/n and ``y[i]`` its 0/1 label, so
    p(x_i, y) = [y = y_i] / n.  Refused with ``ValueError`` naming the file and the key: entries of F or y that are
    not exactly 0 or 1 (NaN, 0.5 and 2 are not cast), complex, text or cell arrays, an F without rows or columns,
    a label count different from the row count, and a pattern that appears in two rows of F.  A repeated pattern is
    refused because the task's x *is* the pattern: the uniform 1/n per row would give it twice the probability of
    the others (and, with different labels, a soft p(y|x) that the file never states); samples with repeats belong
    in :func:`from_samples`, which counts them.  Rows whose bits are all equal (the all-zeros and all-ones patterns,
    rows 0 and 4095 of ``var_u.mat``) and constant bit columns are legitimate patterns and are accepted.
    """
    from scipy.io import loadmat

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"path {str(path)!r} does not exist or is not a file")
    try:
        mat = loadmat(path)
    except Exception as exc:  # scipy raises several types for a foreign file
        raise ValueError(f"path {str(path)!r} is not a readable MATLAB .mat file: {exc}") from None
    missing = [k for k in ("F", "y") if k not in mat]
    if missing:
        raise ValueError(f"path {str(path)!r} lacks the key(s) {missing}; expected 'F' (patterns) and 'y' (labels)")
    F_raw = _mat_values(mat, "F", path)
    y_raw = _mat_values(mat, "y", path).ravel()
    if F_raw.ndim != 2 or F_raw.shape[0] == 0 or F_raw.shape[1] == 0:
        raise ValueError(f"'F' in {str(path)!r} must be a (patterns, bits) matrix with at least one row and one "
                         f"column, got shape {F_raw.shape}")
    if F_raw.shape[0] != y_raw.size:
        raise ValueError(f"'F' in {str(path)!r} has shape {F_raw.shape} but 'y' has {y_raw.size} labels")
    for key, arr in (("F", F_raw), ("y", y_raw)):
        bad = _first_not_binary(arr)
        if bad is not None:
            raise ValueError(f"{key!r} in {str(path)!r} must hold 0/1 {'bits' if key == 'F' else 'labels'}; "
                             f"entry {bad[0] if key == 'F' else bad[0][0]} is {bad[1]!r}")
    F = F_raw.astype(np.int8)
    y = y_raw.astype(np.int64)
    _, inv, counts = np.unique(F, axis=0, return_inverse=True, return_counts=True)
    inv = inv.ravel()
    repeated = np.flatnonzero(counts[inv] > 1)
    if repeated.size:
        i = int(repeated[0])
        j = int(repeated[inv[repeated] == inv[i]][1])
        raise ValueError(
            f"'F' in {str(path)!r} repeats the pattern of row {i} at row {j} ({repeated.size} of {F.shape[0]} rows "
            f"share a pattern with another): each row is one input x with p(x) = 1/n, so a repeated pattern would "
            f"get its probability counted twice; for samples with repeats use tasks.from_samples(F, y)"
        )
    n = y.size
    ds = from_joint(_joint(np.full(n, 1.0 / n), y.astype(float)), name=path.stem, source=str(path))
    ds["patterns"] = (("x", "bit"), F)
    return ds.assign_coords(bit=np.arange(F.shape[1]))


def binary_symmetric(p: float) -> xr.Dataset:
    """Doubly symmetric binary source: X uniform on {0,1}, Y = X flipped with probability p; I = 1 - h(p) bits."""
    p = probability(p, "p")
    joint = 0.5 * np.array([[1 - p, p], [p, 1 - p]])
    return from_joint(joint, name="binary_symmetric", crossover=float(p))


def _codes(values: np.ndarray, name: str) -> tuple[np.ndarray, np.ndarray]:
    """Distinct symbols of ``values`` (1-D codes or 2-D rows) and each sample's index among them.

    Symbols are integers, booleans, finite reals or strings; NaN/inf codes (every NaN would be its own symbol, or
    all one, depending on numpy), complex numbers (ordering and equality of rounded parts are ambiguous) and
    object arrays (None, mixed types) are refused.
    """
    try:
        arr = np.asarray(values)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be an array of codes or of rows of equal length, got {show(values)}") from None
    if arr.dtype.kind not in "biufUS":
        kind = {"c": "complex numbers", "O": "objects (None or mixed types)"}.get(arr.dtype.kind, str(arr.dtype))
        raise ValueError(f"{name} must hold integer, real, boolean or string codes, got {kind}")
    if arr.ndim not in (1, 2) or arr.shape[0] == 0 or (arr.ndim == 2 and arr.shape[1] == 0):
        raise ValueError(f"{name} must be a non-empty 1-D array of codes or 2-D array of rows, got {arr.shape}")
    if arr.dtype.kind == "f" and not np.all(np.isfinite(arr)):
        i = int(np.argwhere(~np.isfinite(arr))[0][0])
        raise ValueError(f"{name} has a NaN or infinite code at sample {i}; codes must be finite")
    if arr.ndim == 1:
        uniq, inv = np.unique(arr, return_inverse=True)
    else:
        uniq, inv = np.unique(arr, axis=0, return_inverse=True)
    return uniq, inv.ravel()


def from_samples(x: ArrayLike, y: ArrayLike) -> xr.Dataset:
    """Empirical joint p(x,y) = count(x,y)/n from paired samples (integer codes or rows, one sample per row).

    Distinct x values (or rows) become the ``x`` coordinate in sorted order; row inputs are kept as ``values(x, bit)``.
    Codes are integers, booleans, finite reals or strings: NaN/inf, complex and object codes raise ``ValueError``.
    """
    ux, ix = _codes(x, "x")
    uy, iy = _codes(y, "y")
    if ix.size != iy.size:
        raise ValueError(f"x and y must have the same number of samples, got {ix.size} and {iy.size}")
    counts = np.zeros((len(ux), len(uy)))
    np.add.at(counts, (ix, iy), 1.0)
    ds = from_joint(counts / counts.sum(), name="empirical", n_samples=int(ix.size))
    if ux.ndim == 2:
        ds["values"] = (("x", "bit"), ux)
    else:
        ds = ds.assign_coords(x_value=("x", ux))
    return ds


def _grid_size(n, name: str) -> int:
    n = integer(n, name, 2)
    if n > MAX_GRID:
        raise ValueError(f"{name} = {n} exceeds MAX_GRID = {MAX_GRID} cells per side (the table and its meshgrid "
                         f"take {n}^2 cells each); use a coarser grid, or raise ibtheory.tasks.MAX_GRID")
    return n


def gaussian_discretized(rho: float = 0.8, n_x: int = 64, n_y: int = 64, width: float = 4.0) -> xr.Dataset:
    """Standard bivariate Gaussian (X, Y) with correlation ``rho`` discretised on midpoint grids over [-w, w].

    p(x_i, y_j) is proportional to the bivariate normal density at the grid midpoints (cell width 2w/n), which
    converges to the continuous law as the grid refines.  Closed-form Gaussian IB for scalar X, Y:
    I(X;Y) = -1/2 log2(1 - rho^2); F(R) = -1/2 log2(1 - rho^2 (1 - 2^(-2R))).
    """
    rho = real(rho, "rho", -1.0, 1.0, low_open=True, high_open=True)
    n_x, n_y = (_grid_size(n, nm) for nm, n in (("n_x", n_x), ("n_y", n_y)))
    width = real(width, "width", 0.0, low_open=True)
    gx = -width + (np.arange(n_x) + 0.5) * 2 * width / n_x
    gy = -width + (np.arange(n_y) + 0.5) * 2 * width / n_y
    X, Y = np.meshgrid(gx, gy, indexing="ij")
    logd = -(X**2 - 2 * rho * X * Y + Y**2) / (2 * (1 - rho**2))
    p = np.exp(logd - logd.max())
    ds = from_joint(p / p.sum(), name="gaussian_discretized", rho=float(rho), width=float(width))
    return ds.assign_coords(x_value=("x", gx), y_value=("y", gy))


def sample(task: xr.Dataset, n: int, seed: int | np.random.Generator | None = 0) -> xr.Dataset:
    """Draw ``n`` labelled examples (x ~ p(x), y ~ p(y|x)) from a task.

    Returns a Dataset over ``sample`` with ``x_index``, ``label`` and, when the task has ``patterns``, ``features``
    (sample, bit).  The same seed gives the same draw.
    """
    n = integer(n, "n", 1)
    if n > MAX_SAMPLES:
        raise ValueError(f"n = {n} exceeds MAX_SAMPLES = {MAX_SAMPLES} examples per call (memory); draw in "
                         f"several calls with different seeds, or raise ibtheory.tasks.MAX_SAMPLES")
    if not isinstance(task, xr.Dataset) or "p_xy" not in task:
        raise ValueError(f"task must be a Dataset with a 'p_xy' variable (from ibtheory.tasks), got "
                         f"{type(task).__name__}")
    if seed is not None and not isinstance(seed, np.random.Generator):
        seed = check_seed(seed)
    rng = np.random.default_rng(seed)
    p_x, p_y_x = conditional(task["p_xy"].values)
    xi = rng.choice(p_x.size, size=int(n), p=p_x)
    u = rng.random(int(n))
    labels = (u[:, None] > np.cumsum(p_y_x[xi], axis=1)).sum(axis=1)
    labels = np.minimum(labels, p_y_x.shape[1] - 1)
    out = xr.Dataset({"x_index": ("sample", xi), "label": ("sample", labels)})
    if "patterns" in task:
        out["features"] = (("sample", "bit"), task["patterns"].values[xi])
    return out


# ---------------------------------------------------------------- the built-in tasks by name
@dataclass(frozen=True)
class Param:
    """A parameter of a built-in task: the keyword of its constructor, its type (``float`` or ``int``: how a command
    line parses it and a grid checks it), its default (``None``: left to the constructor, e.g. the hard labels of
    ``tishby``) and one line of help.  Ranges are the constructor's to check (``ValueError`` naming the parameter).
    """

    name: str
    type: type = float
    default: float | int | None = None
    help: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.isidentifier():
            raise ValueError(f"Param name must be a Python identifier, got {show(self.name)}")
        if self.type not in (float, int):
            raise ValueError(f"Param {self.name!r}: type must be float or int, got {show(self.type)}")
        if self.default is not None:
            check = integer if self.type is int else real
            object.__setattr__(self, "default", check(self.default, f"Param {self.name!r}: default"))


@dataclass(frozen=True)
class BuiltinTask:
    """A task reachable by name: ``build(**params)`` returns its Dataset; ``params`` are the keyword parameters that
    :func:`make`, the commands and the grids accept (all of them are passed, defaults filled in); ``help`` is one
    line; ``aliases`` are other names it answers to."""

    name: str
    build: Callable[..., xr.Dataset]
    params: tuple[Param, ...] = ()
    help: str = ""
    aliases: tuple[str, ...] = ()

    @property
    def defaults(self) -> dict:
        """Parameter name -> default."""
        return {p.name: p.default for p in self.params}


_BUILTIN: dict[str, BuiltinTask] = {}
#: The tasks by name (read-only view; add with :func:`register`).
BUILTIN = MappingProxyType(_BUILTIN)


def register(task: BuiltinTask, replace: bool = False) -> BuiltinTask:
    """Add ``task`` to :data:`BUILTIN` (``replace=True`` to overwrite a name); returns it.

    Refused with ``ValueError``: a name that is not a Python identifier (the one spelling that files and grids store),
    a name or alias already taken, repeated parameter names, and a parameter name that another task uses with
    another type or default (a command has one option, a grid one field, per parameter name).  A parameter must not
    be named like an option of the commands (``--out``, ``--seed``, ...) or a field of the runner's kinds
    (``repeats``, ``betas``, ...): they refuse it with a ``ValueError`` naming it.  Register at import of the module
    that defines the constructor, so that worker processes of a grid know the task too.
    """
    if not isinstance(task, BuiltinTask):
        raise ValueError(f"task must be a BuiltinTask, got {type(task).__name__}")
    for name in (task.name, *task.aliases):
        if not isinstance(name, str) or not name.isidentifier():
            raise ValueError(f"task name {show(name)} must be a Python identifier (e.g. 'binary_symmetric')")
    if not callable(task.build) or not all(isinstance(p, Param) for p in task.params):
        raise ValueError(f"task {task.name!r}: build must be callable and params a tuple of Param")
    names = [p.name for p in task.params]
    if len(set(names)) != len(names):
        raise ValueError(f"task {task.name!r} repeats a parameter name: {names}")
    others = {k: t for k, t in _BUILTIN.items() if k != task.name or not replace}
    for name in (task.name, *task.aliases):
        owner = next((t.name for t in others.values() if name == t.name or name in t.aliases), None)
        if owner is not None:
            raise ValueError(f"task name {name!r} is taken by task {owner!r} (pass replace=True to overwrite it)")
    for p in task.params:
        for other, q in parameters(others.values()).get(p.name, []):
            if q.type is not p.type or q.default != p.default:
                raise ValueError(f"task {task.name!r}: parameter {p.name!r} ({p.type.__name__}, default {p.default}) "
                                 f"differs from task {other!r}'s ({q.type.__name__}, default {q.default}); one name "
                                 "has one type and default")
    _BUILTIN[task.name] = task
    return task


def unregister(name: str) -> BuiltinTask:
    """Remove task ``name`` from :data:`BUILTIN`; returns it."""
    return _BUILTIN.pop(resolve(name))


def resolve(name: str) -> str:
    """The registered name of task ``name``: the name itself, an alias, or the name with hyphens for underscores
    (``binary-symmetric``, the command-line habit, is ``binary_symmetric``); ``ValueError`` lists the names.

    >>> resolve("binary-symmetric")
    'binary_symmetric'
    """
    if isinstance(name, str):
        for candidate in (name, name.replace("-", "_")):
            for task in _BUILTIN.values():
                if candidate == task.name or candidate in task.aliases:
                    return task.name
    raise ValueError(f"task must be one of {list(_BUILTIN)}, got {show(name)}")


def make(name: str, **params) -> xr.Dataset:
    """The task ``name`` of :data:`BUILTIN` built with ``params`` over its defaults.

    ``ValueError`` for an unknown name (listing the names) or a parameter the task does not take (listing its
    parameters); the constructor checks the values.

    >>> round(make("binary_symmetric", p=0.11).attrs["I_XY"], 6)   # 1 - h(0.11) bits
    0.500084
    >>> round(make("tishby", info_bits=0.9).attrs["I_XY"], 9)
    0.9
    """
    task = _BUILTIN[resolve(name)]
    unknown = sorted(set(params) - set(task.defaults))
    if unknown:
        raise ValueError(f"task {task.name!r} takes no parameter(s) {unknown}; its parameters: "
                         f"{list(task.defaults) or 'none'}")
    return task.build(**{**task.defaults, **params})


def parameters(registered=None) -> dict[str, list[tuple[str, Param]]]:
    """Every parameter name of the registered tasks -> the (task name, :class:`Param`) pairs that take it."""
    out: dict[str, list[tuple[str, Param]]] = {}
    for task in _BUILTIN.values() if registered is None else registered:
        for p in task.params:
            out.setdefault(p.name, []).append((task.name, p))
    return out


def _tishby_task(gamma: float | None = None, info_bits: float | None = None) -> xr.Dataset:
    """:func:`tishby` with ``gamma``, or with the gamma whose I(X;Y) is ``info_bits`` (gamma_for_information)."""
    if info_bits is not None:
        if gamma is not None:
            raise ValueError("give gamma or info_bits for the tishby task, not both")
        try:
            gamma = gamma_for_information(info_bits)
        except ValueError as exc:
            raise ValueError(f"info_bits: {exc}") from None
    return tishby(gamma)


def _gaussian_task(rho: float, grid: int) -> xr.Dataset:
    """:func:`gaussian_discretized` on a ``grid`` x ``grid`` table."""
    return gaussian_discretized(rho, grid, grid)


_GAUSSIAN_DEFAULTS = inspect.signature(gaussian_discretized).parameters
register(BuiltinTask("tishby", _tishby_task, (
    Param("gamma", float, None, "slope of the soft rule (omit for hard labels; 19.05 gives 0.90 bits)"),
    Param("info_bits", float, None, "choose gamma so that I(X;Y) equals this many bits")),
    help="the paper's 12-bit icosahedral task"))
register(BuiltinTask("binary_symmetric", binary_symmetric, (Param("p", float, 0.1, "crossover probability"),),
                     help="X a uniform bit, Y = X flipped with probability p"))
register(BuiltinTask("gaussian_discretized", _gaussian_task, (
    Param("rho", float, _GAUSSIAN_DEFAULTS["rho"].default, "correlation"),
    Param("grid", int, _GAUSSIAN_DEFAULTS["n_x"].default, "grid points per axis")),
    help="a bivariate Gaussian discretised on a grid", aliases=("gaussian",)))
