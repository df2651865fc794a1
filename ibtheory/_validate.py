"""Validation of scalar arguments and output paths, shared by every module (one home for these checks).

Each checker takes the value and the argument's name and returns the value as a plain Python number (numpy scalars
such as ``np.float32(1e-3)`` and ``np.int64(5)`` are accepted), or raises ``ValueError`` naming the argument, what
was wrong and what was expected.  Strings, bools (for numbers), None and NaN are refused, never cast.
"""

from __future__ import annotations

import math
import numbers
import os
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["show", "flag", "integer", "real", "seed", "probability", "file_path", "writable_file", "writable_dir",
           "MAX_SEED"]

#: Seeds are non-negative integers below 2**63 (what numpy's SeedSequence and torch accept alike).
MAX_SEED = 2**63 - 1


def show(value: Any) -> str:
    """``repr`` of ``value`` with numpy scalars shown as plain numbers (``nan``, not ``np.float64(nan)``)."""
    if isinstance(value, np.generic):
        value = value.item()
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def flag(value: Any, name: str, allow_none: bool = False) -> bool | None:
    """``value`` as a bool (True/False or numpy bools; None too when ``allow_none``), else ``ValueError``: a string
    such as ``"no"`` would otherwise count as True."""
    if value is None and allow_none:
        return None
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    expected = "True, False or None" if allow_none else "True or False"
    raise ValueError(f"{name} must be {expected}, got {show(value)} ({type(value).__name__})")


def integer(value: Any, name: str, low: int | None = None, high: int | None = None) -> int:
    """``value`` as an ``int`` within [low, high]: a Python or numpy integer, or a float with an integral value."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} must be an integer, got {show(value)} ({type(value).__name__})")
    if isinstance(value, numbers.Integral):
        out = int(value)
    else:
        v = float(value)
        if not (math.isfinite(v) and v == int(v)):
            raise ValueError(f"{name} must be an integer, got {show(value)}")
        out = int(v)
    _check_range(out, name, low, high)
    return out


def real(value: Any, name: str, low: float | None = None, high: float | None = None, *,
         low_open: bool = False, high_open: bool = False, finite: bool = True) -> float:
    """``value`` as a ``float`` within the given bounds (``low_open``/``high_open`` exclude them); NaN is refused,
    infinity unless ``finite=False``."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} must be a real number, got {show(value)} ({type(value).__name__})")
    v = float(value)
    if math.isnan(v) or (finite and math.isinf(v)):
        raise ValueError(f"{name} must be a finite number, got {show(value)}")
    if low is not None and (v < low or (low_open and v == low)):
        raise ValueError(f"{name} must be {'>' if low_open else '>='} {low:g}, got {show(value)}")
    if high is not None and (v > high or (high_open and v == high)):
        raise ValueError(f"{name} must be {'<' if high_open else '<='} {high:g}, got {show(value)}")
    return v


def seed(value: Any, name: str = "seed") -> int:
    """A random seed: an integer in [0, 2**63 - 1] (floats with a fractional part, strings and negatives refused)."""
    if isinstance(value, (float, np.floating)):
        raise ValueError(f"{name} must be an integer in [0, 2**63 - 1], got {show(value)} (a float)")
    return integer(value, name, 0, MAX_SEED)


def probability(value: Any, name: str, *, open_low: bool = False, open_high: bool = False) -> float:
    """A number in [0, 1] (ends excluded on request)."""
    return real(value, name, 0.0, 1.0, low_open=open_low, high_open=open_high)


def _check_range(v: int, name: str, low: int | None, high: int | None) -> None:
    if low is not None and v < low:
        raise ValueError(f"{name} must be an integer >= {low}, got {v}")
    if high is not None and v > high:
        raise ValueError(f"{name} must be an integer <= {high}, got {v}")


def file_path(path: str | os.PathLike, name: str = "out") -> Path:
    """``path`` as a ``Path`` where a file could be created: a path (not a bool or empty), not an existing folder,
    with no file where a parent folder should be.  Checks only: nothing is created (see :func:`writable_file`)."""
    if isinstance(path, bool) or not isinstance(path, (str, os.PathLike)) or not str(path):
        raise ValueError(f"{name} must be a file path, got {show(path)}")
    p = Path(path)
    if p.is_dir():
        raise ValueError(f"{name} {str(p)!r} is a directory; give a file path")
    _no_file_above(p.parent, f"the folder of {name} {str(p)!r}")
    return p


def writable_file(path: str | os.PathLike, name: str = "out") -> Path:
    """Check, before any work, that a result file can be written at ``path``; return it as a ``Path``.

    Refused with ``ValueError`` naming ``name`` and the path: an existing directory, a parent that is a file, a
    parent that cannot be created, or a folder where a file cannot be created (probed with a temporary file that
    is removed at once; the target itself is not touched).
    """
    p = file_path(path, name)
    writable_dir(p.parent, name, what=f"the folder of {name} {str(p)!r}")
    return p


def _no_file_above(folder: Path, what: str) -> None:
    """``ValueError`` when the nearest existing one of ``folder`` and its parents is a file, not a folder."""
    for parent in (folder, *folder.parents):
        if parent.exists():
            if not parent.is_dir():
                raise ValueError(f"{what} cannot be created: {str(parent)!r} is a file, not a folder")
            return


def writable_dir(path: str | os.PathLike, name: str = "out", what: str | None = None) -> Path:
    """Check that folder ``path`` exists or can be created and that files can be created in it; return it."""
    if isinstance(path, bool) or not isinstance(path, (str, os.PathLike)) or not str(path):
        raise ValueError(f"{name} must be a folder path, got {show(path)}")
    p = Path(path)
    what = what or f"{name} {str(p)!r}"
    _no_file_above(p, what)
    try:
        p.mkdir(parents=True, exist_ok=True)
        probe = p / f".ibtheory-write-probe-{os.getpid()}"
        with open(probe, "wb"):
            pass
        probe.unlink()
    except OSError as exc:
        raise ValueError(f"{what} is not writable: {exc.strerror or exc}") from None
    return p
