"""Dataset conventions and netCDF4 storage: atomic writes, provenance, exact round trips.

``save(ds, path)`` writes to a temporary file in the target folder and renames it over ``path`` (``os.replace`` is
atomic on POSIX), so a reader never sees a half-written file and an interrupted write leaves the old file intact.
``load(path)`` reads the whole file into memory and returns the same Dataset, or raises ``FileNotFoundError`` for a
missing file and ``ValueError`` for a truncated, corrupt or foreign (not ibtheory-written) file.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

__all__ = ["DIMS", "provenance", "with_provenance", "save", "load", "config_of", "__version__"]

try:
    from importlib.metadata import version as _pkg_version

    __version__ = _pkg_version("ibtheory")
except Exception:  # pragma: no cover - running from a source tree without installation
    __version__ = "0.1.0"

#: The named dimensions results use (DESIGN.md), plus ``sample`` for drawn data sets.
DIMS = (
    "x", "y", "t", "bit", "beta", "epoch", "layer", "repeat", "unit", "particle", "time", "dim", "sample",
)


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    return obj


def provenance(config: dict | None = None, seed: int | None = None) -> dict[str, Any]:
    """Attributes every saved result carries: package version, JSON configuration, seed and creation time (UTC)."""
    return {
        "ibtheory_version": __version__,
        "config": json.dumps(_jsonable(config or {}), sort_keys=True),
        "seed": -1 if seed is None else int(seed),
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }


def with_provenance(ds: xr.Dataset, config: dict | None = None, seed: int | None = None) -> xr.Dataset:
    """A shallow copy of ``ds`` with :func:`provenance` attributes added (existing ones are replaced)."""
    out = ds.copy()
    out.attrs.update(provenance(config, seed))
    return out


def config_of(ds: xr.Dataset) -> dict:
    """The configuration dictionary recorded in ``ds.attrs['config']`` (empty if none)."""
    raw = ds.attrs.get("config", "{}")
    return json.loads(raw) if isinstance(raw, str) else dict(raw)


def _clean_attrs(attrs: dict) -> dict:
    """netCDF attributes cannot hold bools, None or nested containers: convert them losslessly where possible."""
    out = {}
    for key, val in attrs.items():
        if isinstance(val, (bool, np.bool_)):
            out[key] = int(val)
        elif val is None:
            out[key] = ""
        elif isinstance(val, (dict, list, tuple)) and not (
            isinstance(val, (list, tuple)) and all(isinstance(v, (int, float)) for v in val)
        ):
            out[key] = json.dumps(_jsonable(val), sort_keys=True)
        else:
            out[key] = val
    return out


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def save(ds: xr.Dataset, path: str | os.PathLike) -> Path:
    """Write ``ds`` to ``path`` as netCDF4, atomically; add provenance attributes if they are missing.

    Returns the final path.  The parent folder is created when needed.
    """
    if not isinstance(ds, xr.Dataset):
        raise ValueError(f"ds must be an xarray.Dataset, got {type(ds).__name__}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    out = ds.copy()
    if "ibtheory_version" not in out.attrs:
        out.attrs.update(provenance())
    out.attrs = _clean_attrs(out.attrs)
    for name in out.variables:
        out[name].attrs = _clean_attrs(out[name].attrs)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        out.to_netcdf(tmp, engine="netcdf4", format="NETCDF4")
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def load(path: str | os.PathLike) -> xr.Dataset:
    """Read a Dataset written by :func:`save` fully into memory.

    Raises ``FileNotFoundError`` for a missing file, ``ValueError`` for a file that is not readable netCDF (for
    example truncated) or that lacks the ``ibtheory_version`` attribute (a foreign file).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"path {str(path)!r} does not exist")
    try:
        ds = xr.load_dataset(path, engine="netcdf4")
    except Exception as exc:
        raise ValueError(f"path {str(path)!r} is not a readable netCDF4 file (truncated or corrupt?): {exc}") from None
    if "ibtheory_version" not in ds.attrs:
        raise ValueError(f"path {str(path)!r} is a netCDF file but was not written by ibtheory (no provenance)")
    return ds
