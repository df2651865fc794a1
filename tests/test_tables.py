"""Users' tables and samples read from files (ibtheory.tables): one test per format, each against the array or the
pairs that were written (with Python's csv module or numpy), and every bad file refused naming the file and row."""

import csv
import doctest

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from ibtheory import store, tables, tasks

# a 3 x 4 probability table with entries that are not short decimals (exact round trip through repr is tested)
P = np.array([[0.1, 0.05, 0.0, 1 / 30], [0.2, 0.1, 0.05, 0.05], [0.0, 0.1, 0.15, 0.2 - 1 / 30]])
COUNTS = np.array([[12, 3, 0], [1, 30, 7]])


def _write_csv(path, rows, delimiter=",", encoding="utf-8"):
    with open(path, "w", newline="", encoding=encoding) as f:
        csv.writer(f, delimiter=delimiter).writerows(rows)  # csv's default line end is \r\n, as Excel writes
    return path


def test_the_table_sums_to_one():
    assert abs(P.sum() - 1) < 1e-12


def test_plain_csv_is_read_exactly(tmp_path):
    task = tables.read_joint(_write_csv(tmp_path / "p.csv", P.tolist()))
    assert_array_equal(task["p_xy"].values, P)
    assert task.attrs["name"] == "p" and "no header row" in task.attrs["read_as"]
    assert "x_label" not in task.coords and "y_label" not in task.coords


def test_csv_with_header_labels_and_bom_as_excel_saves_it(tmp_path):
    rows = [["x \\ y", "a", "b", "c", "d"]] + [[f"x{i}", *map(repr, row)] for i, row in enumerate(P.tolist())]
    task = tables.read_joint(_write_csv(tmp_path / "p.csv", rows, encoding="utf-8-sig"))
    assert (tmp_path / "p.csv").read_bytes()[:3] == b"\xef\xbb\xbf"
    assert_array_equal(task["p_xy"].values, P)
    assert task["x_label"].values.tolist() == ["x0", "x1", "x2"]
    assert task["y_label"].values.tolist() == ["a", "b", "c", "d"]


def test_header_only_over_the_columns(tmp_path):
    task = tables.read_joint(_write_csv(tmp_path / "p.csv", [["y0", "y1", "y2", "y3"], *P.tolist()]))
    assert_array_equal(task["p_xy"].values, P)
    assert "x_label" not in task.coords


def test_empty_corner_with_numeric_labels_as_pandas_writes_it(tmp_path):
    rows = [["", "0", "1", "2", "3"]] + [[str(i), *row] for i, row in enumerate(P.tolist())]
    task = tables.read_joint(_write_csv(tmp_path / "p.csv", rows))
    assert_array_equal(task["p_xy"].values, P)
    assert task["y_label"].values.tolist() == ["0", "1", "2", "3"]


def test_semicolons_with_decimal_commas(tmp_path):
    rows = [["", "sun", "rain"], ["wet", "0,125", "0,375"], ["dry", "0,375", "0,125"]]
    task = tables.read_joint(_write_csv(tmp_path / "p.csv", rows, delimiter=";"))
    assert_array_equal(task["p_xy"].values, [[0.125, 0.375], [0.375, 0.125]])
    assert "semicolons" in task.attrs["read_as"]


def test_tsv_and_utf16_unicode_text(tmp_path):
    rows = [["a", "b", "c", "d"], *P.tolist()]
    for path, enc in ((tmp_path / "p.tsv", "utf-8"), (tmp_path / "p.txt", "utf-16")):
        task = tables.read_joint(_write_csv(path, rows, delimiter="\t", encoding=enc))
        assert_array_equal(task["p_xy"].values, P)
        assert "tabs" in task.attrs["read_as"]


def test_savetxt_whitespace_with_a_comment_header(tmp_path):
    np.savetxt(tmp_path / "p.txt", P, header="rows x, columns y", fmt="%.17g")
    assert_array_equal(tables.read_joint(tmp_path / "p.txt")["p_xy"].values, P)


def test_spreadsheet_leftovers_are_tolerated(tmp_path):
    # trailing separators, padding spaces, blank lines, no newline at the end, upper-case suffix
    text = "a, b ,\n\n 0.25 , 0.25,\n   \n0.5,0,\n\n0 ,0"
    (tmp_path / "P.CSV").write_text(text)
    assert_array_equal(tables.read_joint(tmp_path / "P.CSV")["p_xy"].values, [[0.25, 0.25], [0.5, 0], [0, 0]])


def test_npy(tmp_path):
    np.save(tmp_path / "p.npy", P)
    assert_array_equal(tables.read_joint(tmp_path / "p.npy")["p_xy"].values, P)
    np.save(tmp_path / "c.npy", COUNTS)
    assert_allclose(tables.read_joint(tmp_path / "c.npy", normalize=True)["p_xy"].values, COUNTS / COUNTS.sum(),
                    rtol=1e-15)


def test_counts_need_normalize(tmp_path):
    path = _write_csv(tmp_path / "c.csv", [["y0", "y1", "y2"], *COUNTS.tolist()])
    with pytest.raises(ValueError, match=r"path '.*c\.csv' sums to 53, not 1.*normalize=True"):
        tables.read_joint(path)
    task = tables.read_joint(path, normalize=True)
    assert_allclose(task["p_xy"].values, COUNTS / 53, rtol=1e-15)
    assert task.attrs["read_as"].endswith("normalised")


def test_task_file_is_read_as_stored(tmp_path):
    store.save(tasks.binary_symmetric(0.2), tmp_path / "t.nc")
    assert_array_equal(tables.read_joint(tmp_path / "t.nc")["p_xy"].values, tasks.binary_symmetric(0.2)["p_xy"])
    with pytest.raises(ValueError, match="normalize applies to .npy and text tables"):
        tables.read_joint(tmp_path / "t.nc", normalize=True)


def test_a_header_of_numbers_is_data_unless_forced(tmp_path):
    path = _write_csv(tmp_path / "c.csv", [[0, 1], [3, 1], [1, 3]])
    assert tables.read_joint(path, normalize=True).sizes["x"] == 3
    forced = tables.read_joint(path, normalize=True, header=True)
    assert_allclose(forced["p_xy"].values, [[0.375, 0.125], [0.125, 0.375]], rtol=1e-15)
    assert forced["y_label"].values.tolist() == ["0", "1"]
    # a text corner above numeric labels: forced, it is the corner of a column of x labels
    corner = _write_csv(tmp_path / "k.csv", [["x \\ y", 0, 1], [0, 3, 1], [1, 1, 3]])
    with pytest.raises(ValueError, match=r"row 1, column 1 is 'x \\\\ y', not a number .*header=True forces it"):
        tables.read_joint(corner, normalize=True)
    forced = tables.read_joint(corner, normalize=True, header=True)
    assert_allclose(forced["p_xy"].values, [[0.375, 0.125], [0.125, 0.375]], rtol=1e-15)
    assert forced["x_label"].values.tolist() == ["0", "1"]


X = ["red", "red", "green", "blue", "green", "red", "blue", "blue"]
Y = [1, 0, 1, 1, 1, 0, 0, 1]


@pytest.mark.parametrize("header", [True, False])
def test_samples_csv_equal_from_samples(tmp_path, header):
    rows = ([["colour", "label"]] if header else []) + [[x, y] for x, y in zip(X, Y, strict=True)]
    task = tables.read_samples(_write_csv(tmp_path / "s.csv", rows))
    want = tasks.from_samples(np.array(X), np.array(Y))
    assert_array_equal(task["p_xy"].values, want["p_xy"].values)
    assert_array_equal(task["x_value"].values, want["x_value"].values)
    assert task.attrs["n_samples"] == len(X)


def test_samples_numeric_codes_sort_as_numbers_and_npy(tmp_path):
    x, y = [10, 9, 10, 2, 9], [0.5, 1.5, 0.5, 0.5, 1.5]
    task = tables.read_samples(_write_csv(tmp_path / "s.tsv", zip(x, y, strict=True), delimiter="\t"))
    want = tasks.from_samples(np.array(x), np.array(y))
    assert_array_equal(task["p_xy"].values, want["p_xy"].values)
    assert task["x_value"].values.tolist() == [2, 9, 10]
    np.save(tmp_path / "s.npy", np.column_stack([x, y]))
    assert_array_equal(tables.read_samples(tmp_path / "s.npy")["p_xy"].values, want["p_xy"].values)


def test_samples_whose_first_row_is_a_repeated_pair_have_no_header(tmp_path):
    rows = [["a", "b"], ["a", "c"], ["d", "b"]]
    task = tables.read_samples(_write_csv(tmp_path / "s.csv", rows))
    assert task.attrs["n_samples"] == 3


BAD_TABLES = [
    # (file name, content, what the message must contain)
    ("ragged.csv", "0.25,0.25\n0.25\n0.25,0\n", "row 2 has 1 cell(s) but row 1 has 2"),
    ("text.csv", "0.5,0.25\n0.125,abc\n", "row 2, column 2 is 'abc', not a number"),
    ("text-in-header.csv", "y0,y1\n0.5,0.25\n0.25,x\n", "row 3, column 2 is 'x', not a number"),
    ("empty-cell.csv", "0.5,,0.25\n0.25,0,0\n", "row 1, column 2 is empty"),
    ("negative.csv", "0.5,0.25\n\n0.5,-0.25\n", "row 3, column 2 is '-0.25'; entries must be non-negative"),
    ("nan.tsv", "0.5\tnan\n0.25\t0.25\n", "row 1, column 2 is 'nan'; entries must be finite"),
    ("huge.csv", "1e400,0\n", "row 1, column 1 is '1e400', which overflows"),
    ("corner.csv", "x\\y,0,1\n0,0.5,0\n1,0,0.5\n", "row 1, column 1 is 'x\\\\y', not a number (the first row is read "
                                                 "as a header of labels only when none of its cells is a number"),
    ("excel-error.csv", "0.5,0.25\n#DIV/0!,0.25\n", "row 2, column 1 is '#DIV/0!', not a number"),
    ("empty.csv", "", "is empty"),
    ("blank.csv", "\n  \n# only a comment\n", "is empty"),
    ("header-only.csv", "a,b\n", "has a header row but no data rows"),
    ("table.xlsx", "PK", "unknown extension '.xlsx'"),
    ("binary.csv", "\x00\x01", "is a binary file"),
    ("zeros.csv", "0,0\n0,0\n", "sums to 0"),
]


@pytest.mark.parametrize(("fname", "content", "needle"), BAD_TABLES, ids=[b[0] for b in BAD_TABLES])
def test_bad_tables_name_the_file_and_the_cell(tmp_path, fname, content, needle):
    path = tmp_path / fname
    path.write_text(content)
    with pytest.raises(ValueError, match=r"^path '.*" + fname.replace(".", r"\.") + "'") as info:
        tables.read_joint(path)
    assert needle in str(info.value)


@pytest.mark.parametrize(("array", "needle"), [
    (np.array([0.5, 0.5]), "must hold a 2-D array (rows x, columns y), got shape (2,)"),
    (np.full((2, 2, 2), 0.125), "got shape (2, 2, 2)"),
    (np.array([[True, False]]), "must hold real numbers, got dtype bool"),
    (np.array([[0.5, np.nan]]), "entry [0, 1] is nan"),
    (np.array([[1.5, -0.5]]), "entry [0, 1] is -0.5"),
])
def test_bad_npy(tmp_path, array, needle):
    np.save(tmp_path / "a.npy", array)
    with pytest.raises(ValueError, match=r"^path '.*a\.npy'") as info:
        tables.read_joint(tmp_path / "a.npy")
    assert needle in str(info.value)


def test_npy_with_objects_is_refused_not_unpickled(tmp_path):
    np.save(tmp_path / "o.npy", np.array([[0.5, None]], dtype=object), allow_pickle=True)
    with pytest.raises(ValueError, match=r"path '.*o\.npy' is not a readable \.npy array"):
        tables.read_joint(tmp_path / "o.npy")


BAD_SAMPLES = [
    ("three.csv", "x,y\n1,2\n1,2,3\n", "row 3 has 3 cell(s); each row is one sample with two cells"),
    ("one.csv", "1\n", "row 1 has 1 cell(s)"),
    ("hole.csv", "a,b\n,c\n", "row 2, column 1 is empty"),
    ("nan.csv", "1,0.5\n2,nan\n", "row 2, column 2 is 'nan', a missing or infinite value"),
    ("na.csv", "a,b\n#N/A,c\n", "row 2, column 1 is '#N/A', a missing"),
    ("empty.txt", "", "is empty"),
    ("s.json", "[]", "unknown extension '.json'"),
]


@pytest.mark.parametrize(("fname", "content", "needle"), BAD_SAMPLES, ids=[b[0] for b in BAD_SAMPLES])
def test_bad_samples_name_the_file(tmp_path, fname, content, needle):
    path = tmp_path / fname
    path.write_text(content)
    with pytest.raises(ValueError, match=r"^path '.*" + fname.replace(".", r"\.") + "'") as info:
        tables.read_samples(path)
    assert needle in str(info.value)


def test_arguments_are_checked(tmp_path):
    path = _write_csv(tmp_path / "p.csv", P.tolist())
    with pytest.raises(ValueError, match="normalize must be True or False"):
        tables.read_joint(path, normalize="yes")
    with pytest.raises(ValueError, match="header must be True, False or None"):
        tables.read_joint(path, header=1)
    with pytest.raises(ValueError, match="path must be a file path"):
        tables.read_joint(None)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        tables.read_joint(tmp_path / "missing.csv")
    with pytest.raises(IsADirectoryError, match="is a directory"):
        tables.read_samples(tmp_path)


def test_docstring_examples():
    result = doctest.testmod(tables)
    assert result.failed == 0 and result.attempted > 0
