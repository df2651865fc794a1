"""Users' own tables and samples as tasks: a joint table p(x,y) or a file of observed (x, y) pairs.

:func:`read_joint` reads p(x,y) (rows x, columns y) from a task ``.nc`` written by ``ibtheory task``, a 2-D ``.npy``
array, or a text table (``.csv``, ``.tsv``, ``.txt``) as a spreadsheet saves it; :func:`read_samples` reads two
columns of observed pairs and returns their empirical joint p(x,y) = n(x,y) / n (:func:`ibtheory.tasks.from_samples`).

Text tables (one grammar for both readers)
------------------------------------------
- Encoding UTF-8 with or without a byte-order mark (Excel's "CSV UTF-8"), UTF-16 with a BOM (Excel's "Unicode
  text"), or else Latin-1; Windows, Unix and old Mac line ends.  Blank lines and comment lines (``#`` and a space, as
  ``numpy.savetxt`` writes its header) are skipped; spaces around cells are ignored; empty cells at the end of a row
  (a trailing separator) are dropped.
- Separator: whichever of ``;``, tab and ``,`` occurs on the most lines (ties in that order, so ``0,25;0,75`` is a
  semicolon file); none of them: runs of whitespace (``numpy.savetxt``).  With ``;`` or tab separators a decimal
  comma is read as a decimal point (``0,25`` = 0.25), as a spreadsheet in a European locale writes it.
- Joint tables: row 1 is a header of y labels when none of its cells is a number, or when its first cell is empty
  (then the other cells may be numbers: ``,0,1``).  Column 1 holds x labels when none of its cells below the header
  is a number, or when the header's first cell is empty.  A header of numbers without an empty first cell
  (``0,1`` or ``x\\y,0,1``) reads as data: pass ``header=True`` (``--header yes``) for it (a text first cell above
  numbers is then the corner above a column of x labels).
- Samples: exactly two cells per row, x then y; symbols are integers, reals or strings (a column with any non-number
  is read as strings); missing-value marks (NA, N/A, #N/A, null, None, NaN) and infinities are refused.  Row 1 is a
  header when each of its cells is text that is not a number and either its column holds only numbers below it or
  the text appears nowhere else in its column; ``header=`` overrides this.

Errors are ``ValueError`` naming the argument, the file and, for a bad cell, its row (the line of the file) and column
(both counted from 1): an empty file, ragged rows, a cell that is empty, not a number, not finite or negative, an
unknown extension, a ``.npy`` that is not a 2-D real array, and a table that does not sum to 1 without
``normalize=True`` (``--normalize`` on the command line: a table of counts or weights is rescaled to
p(x,y) = n(x,y) / sum n).
"""

from __future__ import annotations

import csv
import io
import math
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import xarray as xr

from . import store
from ._validate import flag, show
from .info import SUM_TOLERANCE
from .tasks import from_joint, from_samples

__all__ = ["TABLE_SUFFIXES", "SAMPLE_SUFFIXES", "read_joint", "read_samples"]

#: Suffixes (case-insensitive) :func:`read_joint` reads.
TABLE_SUFFIXES = (".nc", ".npy", ".csv", ".tsv", ".txt")
#: Suffixes (case-insensitive) :func:`read_samples` reads.
SAMPLE_SUFFIXES = (".npy", ".csv", ".tsv", ".txt")
_TEXT = (".csv", ".tsv", ".txt")

_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")
_INTEGER = re.compile(r"[+-]?\d+")
_COMMENT = re.compile(r"\s*#(\s|$)")  # "# text" (numpy.savetxt's header), not a cell such as #N/A or #DIV/0!
_NONFINITE = re.compile(r"[+-]?(?:nan|inf|infinity)", re.IGNORECASE)
#: Cells that mark a missing value in spreadsheets, R and pandas (compared in lower case); refused as sample symbols.
_MISSING = frozenset({"na", "n/a", "#n/a", "null", "none", "nan", "-nan"})
_SEPARATORS = {";": "semicolons", "\t": "tabs", ",": "commas", None: "whitespace"}


@dataclass(frozen=True)
class _Rows:
    """The non-blank rows of a text file: cells (stripped, trailing empty cells dropped) and their line numbers."""

    cells: list[list[str]]
    lines: list[int]
    separator: str | None


def _where(name: str, path: Path) -> str:
    return f"{name} {str(path)!r}"


def _check_path(path: str | os.PathLike, name: str, suffixes: tuple[str, ...]) -> tuple[Path, str]:
    """``path`` as a Path and its lower-case suffix; ValueError for an unknown suffix, OSError for a missing file."""
    if isinstance(path, bool) or not isinstance(path, (str, os.PathLike)) or not str(path):
        raise ValueError(f"{name} must be a file path, got {show(path)}")
    p = Path(path)
    if p.is_dir():
        raise IsADirectoryError(f"{_where(name, p)} is a directory, not a file")
    suffix = p.suffix.lower()
    if suffix not in suffixes:
        raise ValueError(f"{_where(name, p)} has an unknown extension {p.suffix or '(none)'!r}; expected one of "
                         f"{', '.join(suffixes)}")
    if not p.is_file():
        raise FileNotFoundError(f"{_where(name, p)} does not exist")
    return p, suffix


def _decode(path: Path, name: str) -> str:
    """The text of ``path``: UTF-16 with a BOM, UTF-8 (BOM dropped) or Latin-1; ValueError for a binary file."""
    data = path.read_bytes()
    if data[:2] in (b"\xff\xfe", b"\xfe\xff"):
        return data.decode("utf-16")
    if b"\x00" in data:
        raise ValueError(f"{_where(name, path)} is a binary file, not a text table (a spreadsheet must be saved "
                         f"as CSV)")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def _separator(lines: list[str]) -> str | None:
    """The candidate separator on the most lines (ties: ``;``, tab, ``,``), or None (whitespace) if none occurs."""
    counts = {sep: sum(sep in line for line in lines) for sep in (";", "\t", ",")}
    best = max(counts.values())
    if best == 0:
        return None
    if counts["\t"] == counts[","] == best > counts[";"] and any(re.search(r",[ ]*\t", ln) for ln in lines):
        return ","  # a comma file padded with tabs after the commas
    return next(sep for sep in (";", "\t", ",") if counts[sep] == best)


def _rows(path: Path, name: str) -> _Rows:
    """Split a text table into rows of stripped cells; ValueError for a file without data."""
    text = _decode(path, name)
    kept = [(i, ln) for i, ln in enumerate(text.splitlines(), 1) if ln.strip() and not _COMMENT.match(ln)]
    sep = _separator([ln for _, ln in kept])
    cells, lines = [], []
    for number, line in kept:
        if sep is None:
            row = line.split()
        elif '"' not in line:
            row = [c.strip() for c in line.split(sep)]
        else:  # quoted cells ("a;b" or "say ""hi""") are split by the csv module
            row = [c.strip() for c in next(csv.reader(io.StringIO(line), delimiter=sep, skipinitialspace=True))]
        while row and not row[-1]:
            row.pop()
        if row:
            cells.append(row)
            lines.append(number)
    if not cells:
        raise ValueError(f"{_where(name, path)} is empty (no rows with cells)")
    return _Rows(cells, lines, sep)


def _number(cell: str, sep: str | None) -> float | None:
    """``cell`` as a float (a decimal comma allowed with ``;`` or tab separators), or None if it is not a number."""
    if sep in (";", "\t") and cell.count(",") == 1 and "." not in cell:
        cell = cell.replace(",", ".")
    if _NUMBER.fullmatch(cell):
        return float(cell)
    return None


def _is_number(cell: str, sep: str | None) -> bool:
    return _number(cell, sep) is not None or bool(_NONFINITE.fullmatch(cell))


def _cell_value(cell: str, sep: str | None, where: str) -> float:
    """The non-negative finite number in ``cell``; ValueError naming ``where`` otherwise."""
    if not cell:
        raise ValueError(f"{where} is empty")
    value = _number(cell, sep)
    if value is None:
        if _NONFINITE.fullmatch(cell):
            raise ValueError(f"{where} is {cell!r}; entries must be finite numbers")
        raise ValueError(f"{where} is {cell!r}, not a number")
    if not math.isfinite(value):
        raise ValueError(f"{where} is {cell!r}, which overflows float64; entries must be finite numbers")
    if value < 0:
        raise ValueError(f"{where} is {cell!r}; entries must be non-negative (probabilities or counts)")
    return value


def _check_rectangular(rows: _Rows, where: str) -> None:
    """ValueError naming the first row whose cell count differs from the first row's."""
    width = len(rows.cells[0])
    for row, line in zip(rows.cells, rows.lines, strict=True):
        if len(row) != width:
            raise ValueError(f"{where}: row {line} has {len(row)} cell(s) but row {rows.lines[0]} has {width} "
                             f"(ragged rows: every row needs one cell per column; empty cells at the end of a row "
                             f"are not counted)")


def _check_header(header: bool | None) -> None:
    if header is not None and not isinstance(header, (bool, np.bool_)):
        raise ValueError(f"header must be True, False or None (detect), got {show(header)}")


def _read_text_table(path: Path, name: str, header: bool | None) -> tuple[np.ndarray, dict, str]:
    """(values (n_x, n_y), label coordinates, description) of a text joint table."""
    rows = _rows(path, name)
    where = _where(name, path)
    first = rows.cells[0]
    blank_corner = first[0] == ""
    if header is None:
        header = blank_corner or not any(_is_number(c, rows.separator) for c in first)
    header = bool(header)
    body = rows.cells[1:] if header else rows.cells
    if not body:
        raise ValueError(f"{where} has a header row but no data rows")
    corner = blank_corner or (not _is_number(first[0], rows.separator) and len(first) > 1
                              and all(_is_number(c, rows.separator) for c in first[1:]))  # "x\\y,0,1" under --header
    labelled = (header and corner) or all(not _is_number(row[0], rows.separator) for row in body)
    _check_rectangular(rows, where)
    start = 1 if labelled else 0
    if len(first) <= start:
        raise ValueError(f"{where}: row {rows.lines[0]} has only x labels; the table needs at least one column of "
                         f"numbers")
    offset = 1 if header else 0
    values = np.empty((len(body), len(first) - start))
    for i, row in enumerate(body):
        line = rows.lines[i + offset]
        for j in range(start, len(row)):
            try:
                values[i, j - start] = _cell_value(row[j], rows.separator, f"{where}, row {line}, column {j + 1}")
            except ValueError as exc:
                if i + offset > 0 or _is_number(row[j], rows.separator):
                    raise
                force = "--header yes" if name.startswith("--") else "header=True"
                raise ValueError(f"{exc} (the first row is read as a header of labels only when none of its cells is "
                                 f"a number or its first cell is empty; {force} forces it)") from None
    coords = {}
    if labelled:
        coords["x_label"] = ("x", np.array([row[0] for row in body], dtype=str))
    if header:
        coords["y_label"] = ("y", np.array(first[start:], dtype=str))
    parts = ["a header row of y labels" if header else "no header row",
             "a first column of x labels" if labelled else "no x-label column",
             f"separated by {_SEPARATORS[rows.separator]}"]
    return values, coords, ", ".join(parts)


def _read_npy(path: Path, name: str, what: str) -> np.ndarray:
    """A 2-D real array from a ``.npy`` file (no pickles); ValueError naming the file otherwise."""
    where = _where(name, path)
    try:
        arr = np.load(path, allow_pickle=False)
    except Exception as exc:  # numpy raises ValueError, OSError, EOFError or UnpicklingError for a bad file
        raise ValueError(f"{where} is not a readable .npy array: {' '.join(str(exc).split())}") from None
    if not isinstance(arr, np.ndarray):
        raise ValueError(f"{where} is not a single .npy array")
    if arr.ndim != 2:
        raise ValueError(f"{where} must hold a 2-D array ({what}), got shape {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"{where} is empty: shape {arr.shape}")
    return arr


def read_joint(path: str | os.PathLike, normalize: bool = False, header: bool | None = None,
               name: str = "path") -> xr.Dataset:
    """The task p(x,y) (rows x, columns y) in a task ``.nc``, a 2-D ``.npy`` array or a text table.

    The table must be a probability table, sum_xy p(x,y) = 1 (within ``ibtheory.info.SUM_TOLERANCE``), unless
    ``normalize=True``, which rescales counts or weights n(x,y) to p(x,y) = n(x,y) / sum_xy n(x,y).  A task ``.nc``
    is returned as stored (``normalize`` is refused for it: it already holds a distribution).  Text tables follow
    the grammar in the module docstring; their labels become the coordinates ``x_label(x)`` and ``y_label(y)``.

    Parameters
    ----------
    path : the file; its suffix (``.nc``, ``.npy``, ``.csv``, ``.tsv``, ``.txt``, any case) picks the format.
    normalize : rescale the table to sum to 1.
    header : whether row 1 of a text table is a header of y labels; None detects it.
    name : the argument's name in error messages (``--p-xy`` on the command line).

    Returns
    -------
    A task Dataset (:func:`ibtheory.tasks.from_joint`) with ``p_xy(x, y)``, attributes ``name`` (the file's stem),
    ``source`` and ``read_as`` (how the file was read), and I(X;Y), H(X), H(Y) in bits.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> folder = tempfile.TemporaryDirectory()
    >>> f = pathlib.Path(folder.name) / "counts.csv"
    >>> _ = f.write_text("x\\\\y,rain,sun\\nwet,3,1\\ndry,1,3\\n")     # counts typed in a spreadsheet
    >>> task = read_joint(f, normalize=True)
    >>> task["p_xy"].values.tolist(), round(task.attrs["I_XY"], 4)      # 1 - h(1/4) bits
    ([[0.375, 0.125], [0.125, 0.375]], 0.1887)
    >>> task["x_label"].values.tolist(), task["y_label"].values.tolist()
    (['wet', 'dry'], ['rain', 'sun'])
    >>> folder.cleanup()
    """
    p, suffix = _check_path(path, name, TABLE_SUFFIXES)
    normalize = flag(normalize, "normalize")
    _check_header(header)
    where = _where(name, p)
    if suffix == ".nc":
        if header is not None:
            raise ValueError(f"{where}: header applies to text tables, not to a task file")
        if normalize:
            raise ValueError(f"{where} is a task file, which already holds p(x,y); normalize applies to .npy and "
                             f"text tables")
        ds = store.load(p)
        if "p_xy" not in ds:
            raise ValueError(f"{where} has no 'p_xy' variable (write it with `ibtheory task --out`)")
        return ds
    coords: dict = {}
    if suffix == ".npy":
        if header is not None:
            raise ValueError(f"{where}: header applies to text tables, not to a .npy array")
        values = _read_npy(p, name, "rows x, columns y")
        if values.dtype.kind not in "iuf":
            raise ValueError(f"{where} must hold real numbers, got dtype {values.dtype}")
        bad = np.argwhere(~np.isfinite(values) | (values < 0))
        if bad.size:
            i, j = (int(k) for k in bad[0])
            raise ValueError(f"{where}: entry [{i}, {j}] is {values[i, j].item()!r}; entries must be finite and "
                             f"non-negative")
        values = values.astype(np.float64)
        read_as = "a 2-D .npy array"
    else:
        values, coords, read_as = _read_text_table(p, name, header)
    total = float(values.sum())
    if not total > 0:
        raise ValueError(f"{where} sums to 0; a table needs positive mass")
    if not normalize and abs(total - 1.0) > SUM_TOLERANCE:
        how = "--normalize" if name.startswith("--") else "normalize=True"
        raise ValueError(f"{where} sums to {total:.10g}, not 1: a table of counts or weights n(x,y) is rescaled to "
                         f"p(x,y) = n(x,y) / sum n with {how}")
    ds = from_joint(values, name=p.stem, normalize=bool(normalize), source=str(p),
                    read_as=f"{values.shape[0]} x {values.shape[1]} table (rows x, columns y), {read_as}"
                    + (", normalised" if normalize else ""))
    return ds.assign_coords(coords)


def _header_cell(column: list[str], sep: str | None) -> bool:
    """Whether ``column[0]`` reads as a header: text that is not a number, above only numbers or never repeated."""
    first, rest = column[0], set(column[1:])
    return not _is_number(first, sep) and (first not in rest or all(_is_number(c, sep) for c in rest))


def _symbols(cells: list[str], sep: str | None) -> np.ndarray:
    """A sample column as int64 (all integers), float64 (all numbers) or str codes (any other cell)."""
    distinct = set(cells)
    if all(_INTEGER.fullmatch(c) for c in distinct):
        values = {c: int(c) for c in distinct}
        if all(-(2**63) <= v < 2**63 for v in values.values()):
            return np.array([values[c] for c in cells], dtype=np.int64)
    numbers = {c: _number(c, sep) for c in distinct}
    if all(v is not None for v in numbers.values()):
        return np.array([numbers[c] for c in cells], dtype=np.float64)
    return np.array(cells, dtype=str)


def read_samples(path: str | os.PathLike, header: bool | None = None, name: str = "path") -> xr.Dataset:
    """The empirical task p(x,y) = n(x,y) / n of n observed pairs in two columns (x, y) of a text file or ``.npy``.

    Symbols are integers, reals or strings (see the module docstring for the grammar and header detection); the
    task is :func:`ibtheory.tasks.from_samples` of the two columns, with attributes ``name`` (the file's stem),
    ``source`` and ``read_as``.  ``name`` is the argument's name in error messages (``--samples`` on the command line).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> folder = tempfile.TemporaryDirectory()
    >>> f = pathlib.Path(folder.name) / "pairs.csv"
    >>> _ = f.write_text("colour,taste\\nred,sweet\\nred,sweet\\ngreen,sour\\ngreen,sweet\\n")
    >>> task = read_samples(f)
    >>> task["x_value"].values.tolist(), task["p_xy"].values.tolist()   # x sorted, columns y = (sour, sweet)
    (['green', 'red'], [[0.25, 0.25], [0.0, 0.5]])
    >>> folder.cleanup()
    """
    p, suffix = _check_path(path, name, SAMPLE_SUFFIXES)
    _check_header(header)
    where = _where(name, p)
    if suffix == ".npy":
        if header is not None:
            raise ValueError(f"{where}: header applies to text files, not to a .npy array")
        arr = _read_npy(p, name, "one row per sample, columns x and y")
        if arr.shape[1] != 2:
            raise ValueError(f"{where} must have two columns (x, y), got shape {arr.shape}")
        x, y = arr[:, 0], arr[:, 1]
        read_as = ".npy array"
    else:
        rows = _rows(p, name)
        for row, line in zip(rows.cells, rows.lines, strict=True):
            if len(row) != 2:
                raise ValueError(f"{where}: row {line} has {len(row)} cell(s); each row is one sample with two "
                                 f"cells, x and y")
        columns = [[r[j] for r in rows.cells] for j in range(2)]
        for j, column in enumerate(columns):
            bad = [c for c in set(column) if not c or c.lower() in _MISSING or _NONFINITE.fullmatch(c)]
            if bad:
                i = next(i for i, c in enumerate(column) if c in bad)
                what = "is empty" if not column[i] else (f"is {column[i]!r}, a missing or infinite value; remove the "
                                                         f"sample (symbols are finite numbers or text)")
                raise ValueError(f"{where}, row {rows.lines[i]}, column {j + 1} {what}")
        if header is None:
            header = len(rows.cells) > 1 and all(_header_cell(column, rows.separator) for column in columns)
        if header and len(rows.cells) == 1:
            raise ValueError(f"{where} has a header row but no samples")
        x, y = (_symbols(column[1:] if header else column, rows.separator) for column in columns)
        read_as = (f"header row {rows.cells[0]}" if header else "no header row") \
            + f", separated by {_SEPARATORS[rows.separator]}"
    try:
        ds = from_samples(x, y)
    except ValueError as exc:
        raise ValueError(f"{where}: {exc}") from None
    ds.attrs.update(name=p.stem, source=str(p),
                    read_as=f"{x.size} samples, {ds.sizes['x']} x symbols and {ds.sizes['y']} y symbols, {read_as}")
    return ds
