"""Read and write IDX files, the format of the MNIST digits, plain or gzip-compressed.

An IDX file is a header followed by the array in row-major (C) order, every number big-endian:

    bytes 0-1   zero
    byte  2     type code: 0x08 uint8, 0x09 int8, 0x0B int16, 0x0C int32, 0x0D float32, 0x0E float64
    byte  3     number of dimensions d (1..255)
    then        d sizes, each a big-endian uint32
    then        prod(sizes) values of the type, big-endian

so the MNIST test images start with the magic number 0x00000803 = 2051 (uint8, 3 dims: 10000, 28, 28) and the
labels with 0x00000801 = 2049 (uint8, 1 dim: 10000).  Compression is recognised by the gzip signature (1f 8b),
not by the file name.  :func:`read_idx` checks everything it reads: a file that is not IDX (non-zero leading
bytes, an unknown type code, zero dimensions), a truncated header or body, or trailing bytes raise ``ValueError``
naming the file and what was wrong.

References
----------
1. Y. LeCun, C. Cortes, C. J. C. Burges, "The MNIST database of handwritten digits",
   http://yann.lecun.com/exdb/mnist/ (the IDX format is described at the bottom of that page).
"""

from __future__ import annotations

import gzip
import os
import tempfile
import zlib
from pathlib import Path

import numpy as np
from numpy.typing import ArrayLike

__all__ = ["IDX_TYPES", "read_idx", "write_idx", "idx_header"]

#: IDX type code -> big-endian numpy dtype.
IDX_TYPES: dict[int, np.dtype] = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_CODES = {dt.newbyteorder("=").str[1:]: code for code, dt in IDX_TYPES.items()}  # "u1" -> 0x08, ...
_GZIP_MAGIC = b"\x1f\x8b"


def _raw_bytes(path: Path) -> bytes:
    """The file's content, decompressed when it starts with the gzip signature."""
    if not path.is_file():
        raise FileNotFoundError(f"path {str(path)!r} does not exist or is not a file")
    raw = path.read_bytes()
    if raw[:2] != _GZIP_MAGIC:
        return raw
    try:
        return gzip.decompress(raw)
    except (EOFError, OSError, zlib.error) as exc:
        raise ValueError(f"path {str(path)!r} is a truncated or corrupt gzip file: {exc}") from None


def _parse_header(buf: bytes, where: str) -> tuple[np.dtype, tuple[int, ...], int]:
    """(big-endian dtype, shape, header length in bytes) of an IDX byte string, or ``ValueError``."""
    if len(buf) < 4:
        raise ValueError(f"{where} is too short for an IDX header ({len(buf)} bytes, need at least 4)")
    if buf[0] != 0 or buf[1] != 0:
        raise ValueError(f"{where} is not an IDX file: the magic number must start with two zero bytes, got "
                         f"{buf[:4].hex()}")
    code, ndim = buf[2], buf[3]
    if code not in IDX_TYPES:
        known = ", ".join(f"0x{c:02X}" for c in IDX_TYPES)
        raise ValueError(f"{where} has the unknown IDX type code 0x{code:02X} (known: {known})")
    if ndim == 0:
        raise ValueError(f"{where} declares 0 dimensions; an IDX array needs at least one")
    header = 4 + 4 * ndim
    if len(buf) < header:
        raise ValueError(f"{where} is truncated inside its header: {ndim} dimensions need {header} bytes, got "
                         f"{len(buf)}")
    shape = tuple(int(s) for s in np.frombuffer(buf, dtype=">u4", count=ndim, offset=4))
    return IDX_TYPES[code], shape, header


def idx_header(path: str | os.PathLike) -> tuple[np.dtype, tuple[int, ...]]:
    """The (native-order dtype, shape) an IDX file declares, without checking its body.

    >>> import tempfile, numpy as np
    >>> p = Path(tempfile.mkdtemp()) / "a.idx"
    >>> _ = write_idx(p, np.zeros((3, 2), np.int16))
    >>> idx_header(p)
    (dtype('int16'), (3, 2))
    """
    path = Path(path)
    dtype, shape, _ = _parse_header(_raw_bytes(path), f"path {str(path)!r}")
    return dtype.newbyteorder("="), shape


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """The array stored in an IDX file (plain or gzip), in native byte order.

    Parameters
    ----------
    path : file path; gzip compression is detected from the content.

    Returns
    -------
    ndarray of the declared shape and dtype (uint8, int8, int16, int32, float32 or float64), writable.

    Raises
    ------
    FileNotFoundError : no such file.
    ValueError : not an IDX file (bad magic number, unknown type code, zero dimensions), a truncated header or
        body, trailing bytes after the declared data, or a corrupt gzip stream.

    Example: the MNIST test labels, ``read_idx("t10k-labels-idx1-ubyte.gz")``, are a (10000,) uint8 array.

    >>> import tempfile, numpy as np
    >>> p = Path(tempfile.mkdtemp()) / "labels.idx.gz"
    >>> _ = write_idx(p, np.array([7, 2, 1], dtype=np.uint8))
    >>> read_idx(p).tolist()
    [7, 2, 1]
    """
    path = Path(path)
    where = f"path {str(path)!r}"
    buf = _raw_bytes(path)
    dtype, shape, header = _parse_header(buf, where)
    count = int(np.prod(shape, dtype=np.int64))
    expected = count * dtype.itemsize
    body = len(buf) - header
    if body < expected:
        raise ValueError(f"{where} is truncated: shape {shape} of {dtype.newbyteorder('=').name} needs {expected} "
                         f"data bytes, the file has {body}")
    if body > expected:
        raise ValueError(f"{where} has {body - expected} trailing bytes after the {expected} data bytes its header "
                         f"declares (shape {shape}); not a valid IDX file")
    data = np.frombuffer(buf, dtype=dtype, count=count, offset=header)
    return data.astype(dtype.newbyteorder("="), copy=True).reshape(shape)


def write_idx(path: str | os.PathLike, array: ArrayLike, compress: bool | None = None) -> Path:
    """Write ``array`` as an IDX file (atomically: temporary file, then rename); return the path.

    Parameters
    ----------
    path : target file; the parent folder must exist.
    array : at least one dimension, every size < 2^32, dtype one of uint8, int8, int16, int32, float32, float64
        (other dtypes raise ``ValueError``; convert explicitly, e.g. ``a.astype(np.uint8)``).
    compress : gzip the file; ``None`` means "when the name ends in .gz".
    """
    a = np.asarray(array)
    key = a.dtype.newbyteorder("=").str[1:]
    if key not in _CODES:
        raise ValueError(f"array has dtype {a.dtype}, which IDX cannot hold; use one of "
                         f"{[IDX_TYPES[c].newbyteorder('=').name for c in IDX_TYPES]}")
    if a.ndim < 1 or a.ndim > 255:
        raise ValueError(f"array must have 1 to 255 dimensions, got {a.ndim}")
    if any(s >= 2**32 for s in a.shape):
        raise ValueError(f"array has a dimension of 2^32 or more, which IDX cannot declare: {a.shape}")
    path = Path(path)
    code = _CODES[key]
    header = bytes([0, 0, code, a.ndim]) + np.asarray(a.shape, dtype=">u4").tobytes()
    payload = header + np.ascontiguousarray(a, dtype=IDX_TYPES[code]).tobytes()
    if compress is None:
        compress = path.name.endswith(".gz")
    if compress:
        payload = gzip.compress(payload, mtime=0)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(payload)
        mask = os.umask(0)
        os.umask(mask)
        os.chmod(tmp, 0o666 & ~mask)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path
