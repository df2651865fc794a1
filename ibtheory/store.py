"""Dataset conventions and netCDF4 storage: atomic writes, checksums, provenance, exact round trips.

``save(ds, path)`` writes to a temporary file ``.<name>.<random>.tmp`` in the target folder and renames it over
``path`` (``os.replace`` is atomic on POSIX), so a reader never sees a half-written file and an interrupted write
leaves the old file intact; a process killed while writing (SIGKILL, power loss) can leave that temporary file
behind, which :func:`remove_stale_temporaries` deletes.  Every variable with at least one dimension and a
fixed-size type is stored chunked with HDF5's Fletcher-32 checksum (``fletcher32=True``), so a flipped bit in its
data makes :func:`load` fail instead of returning wrong numbers; scalars (HDF5 cannot chunk them), variable-length
strings and attributes carry no checksum.

``load(path)`` reads the whole file into memory and returns the same Dataset, or raises ``FileNotFoundError`` for a
missing file, ``IsADirectoryError`` for a folder and ``ValueError`` for a truncated, corrupt (failed checksum) or
foreign (not ibtheory-written) file.
"""

from __future__ import annotations

import datetime as _dt
import errno
import glob
import json
import numbers
import os
import re
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from ._signals import signals_deferred
from ._validate import file_path
from ._version import __version__

__all__ = ["DIMS", "provenance", "with_provenance", "without_attrs", "save", "load", "config_of",
           "remove_stale_temporaries",
           "__version__"]

#: The named dimensions results use (docs/conventions.md), plus ``sample`` for drawn data sets.
DIMS = (
    "x", "y", "t", "bit", "beta", "epoch", "layer", "repeat", "unit", "particle", "time", "dim", "sample",
)

#: numpy dtype kinds that netCDF4 stores as fixed-size values (chunkable, so checksummed): bool, integers, floats,
#: byte strings, datetimes and timedeltas (stored as int64).  Unicode and object (str) variables become
#: variable-length strings.
_CHECKSUMMED_KINDS = "biufSMm"

#: Names of :func:`save`'s temporary files: ``.<name>.<8 random characters of tempfile.mkstemp>.tmp``.
_TEMPORARY = re.compile(r"\..+\.[A-Za-z0-9_]{8}\.tmp")


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


def _json(obj: Any, what: str) -> str:
    """Canonical JSON of ``obj``; ``ValueError`` naming ``what`` when it holds something JSON cannot (a set...)."""
    try:
        return json.dumps(_jsonable(obj), sort_keys=True)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{what} cannot be stored as JSON: {exc}") from None


def provenance(config: dict | None = None, seed: int | None = None) -> dict[str, Any]:
    """Attributes every saved result carries: package version, JSON configuration, seed and creation time (UTC)."""
    return {
        "ibtheory_version": __version__,
        "config": _json(config or {}, "config"),
        "seed": -1 if seed is None else int(seed),
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }


def without_attrs(ds: xr.Dataset) -> xr.Dataset:
    """A shallow copy of ``ds`` without its Dataset attributes (provenance, creation time, configuration), variable
    attributes such as units kept: two runs of the same computation compare ``identical`` this way."""
    out = ds.copy()
    out.attrs = {}
    return out


def with_provenance(ds: xr.Dataset, config: dict | None = None, seed: int | None = None) -> xr.Dataset:
    """A shallow copy of ``ds`` with :func:`provenance` attributes added (existing ones are replaced)."""
    out = ds.copy()
    out.attrs.update(provenance(config, seed))
    return out


def config_of(ds: xr.Dataset) -> dict:
    """The configuration dictionary recorded in ``ds.attrs['config']`` (empty if none)."""
    raw = ds.attrs.get("config", "{}")
    return json.loads(raw) if isinstance(raw, str) else dict(raw)


def _is_real_number(v: Any) -> bool:
    return isinstance(v, numbers.Real) and not isinstance(v, (bool, np.bool_))


def _clean_attrs(attrs: dict, where: str) -> dict:
    """netCDF attributes hold strings, real numbers and 1-D arrays of numbers or strings only: store bools as 0/1,
    None as "" and other containers as JSON; anything else (a set, a complex number, an object) is a ``ValueError``
    naming it."""
    out = {}
    for key, val in attrs.items():
        what = f"attribute {key!r} of {where}"
        if not isinstance(key, str):
            raise ValueError(f"{what}: attribute names must be strings, got {type(key).__name__}")
        if isinstance(val, (bool, np.bool_)):
            out[key] = int(val)
        elif val is None:
            out[key] = ""
        elif isinstance(val, (str, bytes)) or _is_real_number(val):
            out[key] = val
        elif isinstance(val, (list, tuple)) and all(isinstance(v, numbers.Real) for v in val):
            out[key] = [int(v) if isinstance(v, (bool, np.bool_)) else v for v in val]
        elif isinstance(val, (dict, list, tuple)):
            out[key] = _json(val, what)
        elif isinstance(val, np.ndarray) and val.ndim <= 1 and val.dtype.kind in "biufUS":
            out[key] = val.astype(np.int8) if val.dtype.kind == "b" else val
        else:
            shown = f"an array of shape {val.shape} and dtype {val.dtype}" if isinstance(val, np.ndarray) else (
                f"{type(val).__name__} {val!r}"[:100])
            raise ValueError(f"{what} cannot be stored in netCDF: got {shown}; attributes hold strings, real "
                             "numbers, 1-D arrays of numbers or strings, or lists/dicts (stored as JSON)")
    return out


def _check_variable(name: Any, var: xr.Variable) -> None:
    """Refuse, naming the variable, data netCDF4 cannot round-trip: complex numbers, float16, and object arrays
    that are not all strings (xarray would fail deep inside, or silently turn None into "")."""
    kind = var.dtype.kind
    if kind == "c":
        raise ValueError(f"variable {name!r} is complex ({var.dtype}): netCDF4 has no complex type; store the real "
                         "and imaginary parts as two variables")
    if var.dtype == np.float16:
        raise ValueError(f"variable {name!r} is float16, which netCDF4 cannot store; convert it to float32")
    if kind == "O":
        values = np.asarray(var.values).ravel()
        bad = sorted({type(v).__name__ for v in values if not isinstance(v, str)})
        if bad:
            raise ValueError(f"variable {name!r} has dtype object holding {', '.join(bad)}: only numeric, boolean "
                             "and string data can be stored; convert it (e.g. .astype(float) or .astype(str))")


def _checksummed_encoding(var: xr.Variable) -> dict:
    """The variable's encoding with ``fletcher32=True`` where netCDF4 allows it (chunked storage: one dimension or
    more, a fixed-size type), unchanged otherwise."""
    enc = dict(var.encoding)
    if var.ndim >= 1 and var.dtype.kind in _CHECKSUMMED_KINDS and enc.get("dtype") not in (str, "str"):
        enc.pop("contiguous", None)  # a checksum needs chunked storage
        enc["fletcher32"] = True
    return enc


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _target(path: str | os.PathLike) -> Path:
    """``path`` as a ``Path`` whose folder exists (created if needed); ``ValueError`` for a folder given as the
    file, or a parent that is a file (``_validate.file_path``)."""
    path = file_path(path, "path")
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def save(ds: xr.Dataset, path: str | os.PathLike) -> Path:
    """Write ``ds`` to ``path`` as netCDF4 with Fletcher-32 checksums, atomically; add provenance attributes if they
    are missing.

    Returns the final path.  The parent folder is created when needed.  ``ValueError`` (naming the variable or
    attribute) for data netCDF4 cannot store exactly: object arrays other than strings, complex or float16 data,
    set-valued or other non-serialisable attributes; ``ValueError`` for a folder given as ``path``; ``OSError``
    naming ``path`` (not the temporary file) when the folder is not writable or the disk is full.
    """
    if not isinstance(ds, xr.Dataset):
        raise ValueError(f"ds must be an xarray.Dataset, got {type(ds).__name__}")
    path = _target(path)
    out = ds.copy()
    if "ibtheory_version" not in out.attrs:
        out.attrs.update(provenance())
    out.attrs = _clean_attrs(out.attrs, "the Dataset")
    for name, var in out.variables.items():
        _check_variable(name, var)
        var.attrs = _clean_attrs(var.attrs, f"variable {name!r}")
        var.encoding = _checksummed_encoding(var)
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        os.close(fd)
        with signals_deferred():  # a signal's exception inside the writer could leave its lock held (see _signals)
            out.to_netcdf(tmp, engine="netcdf4", format="NETCDF4")
            os.chmod(tmp, 0o666 & ~_umask())
            os.replace(tmp, path)
    except OSError as exc:  # name the target, not the temporary file
        _discard(tmp)
        if exc.errno is not None and exc.errno > 0:
            raise OSError(exc.errno, f"cannot write: {exc.strerror or os.strerror(exc.errno)}", str(path)) from exc
        raise OSError(f"cannot write {str(path)!r}: {exc}") from exc
    except (TypeError, ValueError) as exc:  # what the checks above did not foresee, still naming the file
        _discard(tmp)
        raise ValueError(f"ds cannot be saved to {str(path)!r} as netCDF4: {exc}") from exc
    except BaseException:
        _discard(tmp)
        raise
    return path


def _discard(tmp: str | None) -> None:
    if tmp is not None and os.path.exists(tmp):
        os.unlink(tmp)


def remove_stale_temporaries(path: str | os.PathLike) -> list[Path]:
    """Delete the temporary files ``.<name>.<random>.tmp`` of saves killed half-way, beside file ``path`` (or in
    folder ``path``).

    :func:`save` leaves one when the process is killed (SIGKILL, power loss) while writing; ``path`` itself is never
    half-written (the save renames a finished file over it).  Call it only when no other process is saving there.
    Returns the files removed.
    """
    path = Path(path)
    if path.is_dir():
        candidates = [p for p in path.glob(".*.tmp") if _TEMPORARY.fullmatch(p.name)]
    else:
        candidates = [p for p in path.parent.glob(f".{glob.escape(path.name)}.*.tmp")
                      if _TEMPORARY.fullmatch(p.name)]
    removed = []
    for tmp in candidates:
        try:
            tmp.unlink()
            removed.append(tmp)
        except FileNotFoundError:
            pass
    return removed


def load(path: str | os.PathLike) -> xr.Dataset:
    """Read a Dataset written by :func:`save` fully into memory, verifying the checksums of its variables.

    Raises ``FileNotFoundError`` for a missing file, ``IsADirectoryError`` for a folder, ``PermissionError`` for an
    unreadable one, ``ValueError`` for a file that is not readable netCDF (truncated, or corrupt: a failed
    Fletcher-32 checksum) or that lacks the ``ibtheory_version`` attribute (a foreign file).
    """
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(errno.EISDIR, "is a directory, not a netCDF file", str(path))
    if not path.is_file():
        raise FileNotFoundError(f"path {str(path)!r} does not exist")
    with open(path, "rb"):  # PermissionError naming the path, rather than a netCDF error
        pass
    try:
        ds = xr.load_dataset(path, engine="netcdf4")
    except Exception as exc:
        raise ValueError(f"path {str(path)!r} is truncated or corrupt (a failed checksum, or not a complete "
                         f"netCDF4 file): {exc}") from None
    if "ibtheory_version" not in ds.attrs:
        raise ValueError(f"path {str(path)!r} is a netCDF file but was not written by ibtheory (no provenance)")
    return ds
